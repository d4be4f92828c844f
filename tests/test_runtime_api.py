"""The runtime API (steps, metadata, the result hook) against the local Qase server.

Each test runs a real pytest session with the plugin and checks the exact payload the
server stored, and the local report against the Qase Report schemas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import assert_clean, by_title, clean_environment, load_report, point_at, run


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")


def shape(steps: list[dict[str, Any]]) -> list[tuple]:
    """A step tree without times: (action, expected, input, status, comment, children)."""
    return [(s["data"]["action"], s["data"].get("expected_result"), s["data"].get("input_data"),
             s["execution"]["status"], s["execution"].get("comment"), shape(s["steps"]))
            for s in steps]


def report_shape(steps: list[dict[str, Any]], parent: Any = None) -> list[tuple]:
    shaped = []
    for s in steps:
        assert s["parent_id"] == parent
        shaped.append((s["data"]["action"], s["execution"]["status"],
                       report_shape(s["steps"], s["id"])))
    return shaped


def check_times(steps: list[dict[str, Any]], start: float, end: float) -> None:
    """Each step lies inside its parent, with a duration that matches its times."""
    for s in steps:
        execution = s["execution"]
        assert start <= execution["start_time"] <= execution["end_time"] <= end
        expected = (execution["end_time"] - execution["start_time"]) * 1000
        assert abs(execution["duration"] - expected) <= 2
        check_times(s["steps"], execution["start_time"], execution["end_time"])


STEPS_SUITE = """
    import pytest
    from pytest_qase import qase

    @qase.step("Log in as {user} with {password}", expected="logged in")
    def login(user, password="default-pw"):
        return user.upper()

    class Page:
        name = "cart"

        @qase.step("Open the {self.name} page")
        def open(self):
            with qase.step("wait for {self.name}"):  # a with-block title is not formatted
                pass

    @qase.step("Broken {missing}")
    def broken_title(value):
        pass

    @qase.step("Async {n}")
    async def not_awaited(n):
        return n

    def test_steps():
        assert login("alice") == "ALICE"
        with qase.step("Open cart", expected="cart shown", data={"id": 1}):
            with qase.step("level 2"):
                with qase.step("level 3"):
                    with qase.step("level 4"):
                        Page().open()
        broken_title(1)

    def test_failing_step():
        with qase.step("outer"):
            with qase.step("middle"):
                with qase.step("inner"):
                    raise ValueError("boom\\nsecond line")

    def test_caught_failure_still_marks_parents():
        with qase.step("parent"):
            with qase.step("sibling"):
                pass
            try:
                with qase.step("child"):
                    raise KeyError("k")
            except KeyError:
                pass
            with qase.step("after"):
                pass

    def test_skip_inside_step():
        with qase.step("needs network"):
            pytest.skip("offline")

    @pytest.fixture
    def prepared():
        with qase.step("fixture setup"):
            pass
        yield 1
        with qase.step("fixture teardown"):
            pass

    def test_steps_in_fixtures(prepared):
        with qase.step("body"):
            pass
"""


def test_steps_nested_timed_formatted_and_failing(pytester, qase_server, monkeypatch):
    pytester.makepyfile(test_steps=STEPS_SUITE)
    point_at(monkeypatch, qase_server)
    report_dir = pytester.path / "report"
    result = run(pytester, qase_server, f"--qase-report={report_dir}")
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    stored = by_title(qase_server)
    assert shape(stored["test_steps"]["steps"]) == [
        ("Log in as alice with default-pw", "logged in", None, "passed", None, []),
        ("Open cart", "cart shown", "{'id': 1}", "passed", None, [
            ("level 2", None, None, "passed", None, [
                ("level 3", None, None, "passed", None, [
                    ("level 4", None, None, "passed", None, [
                        ("Open the cart page", None, None, "passed", None, [
                            ("wait for {self.name}", None, None, "passed", None, []),
                        ]),
                    ]),
                ]),
            ]),
        ]),
        ("Broken {missing}", None, None, "passed", None, []),
    ]
    assert shape(stored["test_failing_step"]["steps"]) == [
        ("outer", None, None, "failed", "ValueError: boom", [
            ("middle", None, None, "failed", "ValueError: boom", [
                ("inner", None, None, "failed", "ValueError: boom", []),
            ]),
        ]),
    ]
    assert stored["test_failing_step"]["execution"]["status"] == "failed"
    assert shape(stored["test_caught_failure_still_marks_parents"]["steps"]) == [
        ("parent", None, None, "failed", None, [
            ("sibling", None, None, "passed", None, []),
            ("child", None, None, "failed", "KeyError: 'k'", []),
            ("after", None, None, "passed", None, []),
        ]),
    ]
    assert stored["test_caught_failure_still_marks_parents"]["execution"]["status"] == "passed"
    assert shape(stored["test_skip_inside_step"]["steps"]) == [
        ("needs network", None, None, "skipped", "Skipped: offline", [])]
    assert [s[0] for s in shape(stored["test_steps_in_fixtures"]["steps"])] == [
        "fixture setup", "body", "fixture teardown"]
    for stored_result in stored.values():
        execution = stored_result["execution"]
        check_times(stored_result["steps"], execution["start_time"], execution["end_time"])
    _, results = load_report(report_dir)
    reported = {r["title"]: r for r in results}
    assert report_shape(reported["test_failing_step"]["steps"]) == [
        ("outer", "failed", [("middle", "failed", [("inner", "failed", [])])])]
    assert report_shape(reported["test_steps"]["steps"])[1][0] == "Open cart"
    assert_clean(qase_server)


def test_runtime_api_is_a_no_op_when_the_plugin_is_off(pytester):
    pytester.makepyfile(test_off="""
        import pytest
        from pytest_qase import qase

        with qase.step("at import, outside any test"):
            IMPORTED = qase.title("not in a test")

        @qase.step("Log in as {user}")
        def login(user):
            return user * 2

        @qase.title("t")
        @qase.fields(severity="major")
        @qase.muted
        @qase.ignore
        class TestMarked:
            def test_runs(self):
                assert login("ab") == "abab"
                with qase.step("s"):
                    qase.attach(content=b"x", filename="x.bin")
                    qase.attach("/does/not/exist")
                qase.title("x"); qase.comment("c"); qase.param("p", object())
                qase.fields(layer="api"); qase.tags("a"); qase.author("me")
                qase.suite("A.B"); qase.muted(); qase.ignore()

        def test_step_reraises():
            with qase.step("fails"):
                raise ValueError("propagated")

        def test_decorated_step_reraises():
            @qase.step("decorated {x}")
            def boom(x):
                raise KeyError(x)
            with pytest.raises(KeyError):
                boom(1)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*ValueError: propagated*"])
    assert not (pytester.path / "qase-report").exists()
    assert not any("qase:" in line for line in result.outlines + result.errlines)


METADATA_SUITE = """
    import pytest
    from pytest_qase import qase

    pytestmark = qase.fields(layer="e2e", severity="minor")

    class Point:
        def __init__(self, x):
            self.x = x
        def __repr__(self):
            return f"Point(x={self.x})"

    @qase.suite("Shop.Checkout")
    @qase.fields(severity="critical", priority="high")
    @qase.author("alice@example.com")
    @qase.tags("smoke", "cart")
    @qase.param("env", "staging")
    class TestCheckout:
        def test_inherits(self):
            pass

        @qase.title("Pay with a card")
        @qase.fields(priority="low", description="Pays", preconditions="A cart",
                     postconditions="An order", custom_field="42")
        @qase.tags("payment")
        @qase.param("env", "prod")
        @pytest.mark.qase_comment("from a mark")
        def test_nearest_wins(self):
            pass

    @qase.muted
    def test_muted():
        assert False

    @qase.ignore
    def test_ignored():
        open("ignored-ran.txt", "w").close()

    def test_ignored_at_runtime():
        qase.ignore()

    @pytest.mark.parametrize("seed, when", [(7, "2024-01-01")])
    def test_runtime_calls(seed, when):
        qase.title("Set at runtime")
        qase.suite("Runtime.Suite")
        qase.fields(severity="blocker", behavior=None)
        qase.author("bob")
        qase.tags("late")
        qase.comment("first comment")
        qase.comment("second comment")
        qase.param("point", Point(3))
        qase.param("options", {"a": [1, 2]})
        qase.muted()
"""


def test_metadata_from_marks_and_runtime_calls(pytester, qase_server, monkeypatch):
    pytester.makepyfile(test_meta=METADATA_SUITE)
    point_at(monkeypatch, qase_server)
    report_dir = pytester.path / "report"
    result = run(pytester, qase_server, "--strict-markers", f"--qase-report={report_dir}",
                 "--qase-exclude-params=when")
    result.assert_outcomes(passed=5, failed=1)
    assert (pytester.path / "ignored-ran.txt").exists()
    stored = {r["title"]: r for r in qase_server.results()}
    assert sorted(stored) == ["Pay with a card", "Set at runtime", "TestCheckout.test_inherits",
                              "test_muted"]
    inherits = stored["TestCheckout.test_inherits"]
    assert inherits["fields"] == {"layer": "e2e", "severity": "critical", "priority": "high",
                                  "author": "alice@example.com", "tags": "smoke,cart"}
    assert inherits["relations"] == {"suite": {"data": [
        {"title": "Shop", "public_id": None}, {"title": "Checkout", "public_id": None}]}}
    assert inherits["params"] == {"env": "staging"} and inherits["param_groups"] == [["env"]]
    nearest = stored["Pay with a card"]
    assert nearest["fields"] == {
        "layer": "e2e", "severity": "critical", "priority": "low", "description": "Pays",
        "preconditions": "A cart", "postconditions": "An order", "custom_field": "42",
        "author": "alice@example.com", "tags": "payment"}
    assert nearest["params"] == {"env": "prod"}
    assert nearest["message"] == "from a mark"
    assert nearest["signature"] == 'test_meta.py::TestCheckout::test_nearest_wins::{"env": "prod"}'
    assert stored["test_muted"]["fields"] == {"layer": "e2e", "severity": "minor",
                                              "muted": "true"}
    assert stored["test_muted"]["execution"]["status"] == "failed"
    runtime = stored["Set at runtime"]
    assert runtime["fields"] == {"layer": "e2e", "severity": "blocker", "author": "bob",
                                 "tags": "late", "muted": "true"}
    assert runtime["relations"]["suite"]["data"] == [
        {"title": "Runtime", "public_id": None}, {"title": "Suite", "public_id": None}]
    assert runtime["message"] == "first comment\nsecond comment"
    assert runtime["params"] == {"seed": "7", "point": "Point(x=3)", "options": "{'a': [1, 2]}"}
    assert runtime["param_groups"] == [["seed"], ["point"], ["options"]]
    assert "when" not in runtime["signature"] and '"seed": "7"' in runtime["signature"]
    _, results = load_report(report_dir)
    reported = {r["title"]: r for r in results}
    assert sorted(reported) == sorted(stored)
    assert reported["test_muted"]["muted"] is True
    assert reported["Set at runtime"]["muted"] is True
    assert reported["Pay with a card"]["fields"] == nearest["fields"]
    assert_clean(qase_server)


def test_exclude_params_from_the_ini_file(pytester):
    pytester.makeini("[pytest]\nqase_exclude_params = stamp, seed\n")
    pytester.makepyfile(test_ex="""
        import pytest
        @pytest.mark.parametrize("user, stamp", [("ann", 1.5)])
        @pytest.mark.parametrize("seed", [3])
        def test_one(user, stamp, seed):
            pass
    """)
    assert run(pytester, None).ret == 0
    _, [result] = load_report(pytester.path / "qase-report")
    assert result["params"] == {"user": "ann"}
    assert result["param_groups"] == [["user"]]
    assert result["signature"] == 'test_ex.py::test_one::{"user": "ann"}'


@pytest.mark.parametrize("mark, problem", [
    ("qase_title()", "@qase_title takes one text"),
    ("qase_fields('major')", "@qase_fields takes name=value pairs"),
    ("qase_param('only-a-name')", "@qase_param takes a name and a value"),
])
def test_bad_metadata_mark_is_a_collection_error(pytester, mark, problem):
    pytester.makepyfile(test_bad=f"""
        import pytest
        @pytest.mark.{mark}
        def test_wrong():
            pass
    """)
    result = run(pytester, None)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*test_bad.py::test_wrong: {problem}*"])


def test_every_marker_is_registered(pytester):
    result = pytester.runpytest("--markers")
    for name in ("qase_title", "qase_suite", "qase_fields", "qase_author", "qase_tags",
                 "qase_muted", "qase_ignore", "qase_comment", "qase_param"):
        result.stdout.fnmatch_lines([f"@pytest.mark.{name}*"])


def test_result_hook_changes_are_uploaded_and_reported(pytester, qase_server, monkeypatch):
    pytester.makeconftest("""
        from pytest_qase.results import Step

        def pytest_qase_result(item, result):
            if item.name == "test_dropped":
                return False
            result.title = "Renamed " + result.title
            result.fields["severity"] = "major"
            result.params["build"] = "1234"
            result.steps.append(Step(title="added by the hook", status="passed",
                                     start_time=result.start_time, end_time=result.end_time))
            if item.name == "test_flaky_known":
                result.status = "skipped"
                result.message = "known flaky, see JIRA-1"
    """)
    pytester.makepyfile(test_hooked="""
        def test_kept():
            pass

        def test_dropped():
            pass

        def test_flaky_known():
            assert False
    """)
    point_at(monkeypatch, qase_server)
    report_dir = pytester.path / "report"
    run(pytester, qase_server, f"--qase-report={report_dir}")
    stored = {r["title"]: r for r in qase_server.results()}
    assert sorted(stored) == ["Renamed test_flaky_known", "Renamed test_kept"]
    kept = stored["Renamed test_kept"]
    assert kept["fields"] == {"severity": "major"} and kept["params"] == {"build": "1234"}
    assert shape(kept["steps"]) == [("added by the hook", None, None, "passed", None, [])]
    flaky = stored["Renamed test_flaky_known"]
    assert flaky["execution"]["status"] == "skipped"
    assert flaky["message"] == "known flaky, see JIRA-1"
    _, results = load_report(report_dir)
    reported = {r["title"]: r for r in results}
    assert sorted(reported) == sorted(stored)
    assert reported["Renamed test_flaky_known"]["execution"]["status"] == "skipped"
    assert reported["Renamed test_kept"]["params"] == {"build": "1234"}
    assert_clean(qase_server)


def test_example_suite_of_the_readme(pytester):
    """``pytest --qase examples/`` with no token: exit 1 on purpose, a full local report."""
    example = Path(__file__).resolve().parent.parent / "examples" / "test_examples.py"
    pytester.makepyfile(test_examples=example.read_text(encoding="utf-8"))
    result = run(pytester, None)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report_dir = pytester.path / "qase-report"
    assert f"qase: local report with 13 results written to {report_dir}" in result.outlines
    _, results = load_report(report_dir)
    reported = {r["title"]: r for r in results if r["title"] != "test_parametrized"}
    cart = reported["TestCheckout.test_cart"]
    assert [s["data"]["action"] for s in cart["steps"]] == ["Log in as alice", "Add an item"]
    assert [a["file_name"] for a in cart["attachments"]] == ["cart.txt"]
    assert reported["test_fails"]["fields"]["severity"] == "critical"
    assert {r["params"].get("viewport") for r in results if r["title"] == "test_parametrized"} \
        == {"{'width': 1280, 'height': 720}", "{'width': 800, 'height': 450}"}


@pytest.mark.parametrize("call, shown", [
    ("pytest.skip('not this one')", "Skipped: not this one"),
    ("pytest.fail('not this one')", "Failed: not this one"),
    ("sys.exit(3)", "SystemExit: 3"),
    ("raise KeyError('k')", "KeyError: 'k'"),
])
def test_a_result_hook_that_raises_costs_only_its_result(pytester, call, shown):
    """No INTERNALERROR and no stop: the session runs on, pytest's exit code is unchanged."""
    pytester.makeconftest(f"""
        import sys
        import pytest

        def pytest_qase_result(item, result):
            if item.name == "test_b":
                {call}
    """)
    pytester.makepyfile(test_hooked="def test_a():\n    pass\n\ndef test_b():\n    pass\n\n"
                                    "def test_c():\n    pass\n")
    result = pytester.runpytest("--qase", "-p", "no:cacheprovider", "--qase-report=report")
    assert result.ret == 0
    result.assert_outcomes(passed=3)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert f"qase: error: could not record test_hooked.py::test_b: {shown}" in result.outlines
    _, local = load_report(pytester.path / "report")
    assert sorted(r["title"] for r in local) == ["test_a", "test_c"]
