"""Bad input never crashes the plugin: odd text, binary and huge values, broken objects.

Each session here runs twice, once without the plugin for pytest's own exit code, and once
uploading and writing the local report: every result must arrive once, be valid against the
Qase OpenAPI spec and the Qase Report schemas, and leave pytest's exit code alone.
"""

from __future__ import annotations

import resource
import sys

import pytest
from qase_server import QaseServer
from support import assert_clean, clean_environment, load_report, point_at, qase_lines, run

# Text that has broken reporters: non-ASCII, emoji, control characters, terminal escapes,
# bidi overrides, and a lone surrogate (which cannot be encoded as UTF-8 at all).
WEIRD = ["ünïcödé ✓", "emoji 🚀🔥👩‍💻", "nul \x00 byte", "escape \x1b[31mred\x1b[0m",
         "carriage \r return", "lone \ud800 surrogate", "tab\tnew\nline", "bidi \u202eevil",
         "zero\u200bwidth \ufeff", "quote \" back\\slash", "", "   "]


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")


def _check(pytester, server: QaseServer, monkeypatch, count: int, *args: str,
           expected_ret: int | None = None) -> list[dict]:
    """Run the suite with the plugin; the checks every bad-input session must pass."""
    if expected_ret is None:
        expected_ret = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly",
                                          *args).ret
    point_at(monkeypatch, server)
    result = run(pytester, server, "--qase-report=report", *args)
    assert result.ret == expected_ret
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    lines = qase_lines(result)
    assert not [x for x in lines if "error" in x or "not delivered" in x], lines
    stored = server.results()
    assert len(stored) == count == len({r["id"] for r in stored})
    assert_clean(server)
    _, local = load_report(pytester.path / "report")
    assert sorted(r["id"] for r in local) == sorted(r["id"] for r in stored)
    return stored


@pytest.mark.parametrize("ids", ["escaped", "raw"])
def test_odd_text_in_names_params_messages_titles_and_reasons(pytester, qase_server,
                                                              monkeypatch, ids):
    if ids == "raw":  # node ids then carry the text as it is, control characters included
        pytester.makeini("[pytest]\n"
                         "disable_test_id_escaping_and_forfeit_all_rights_to_community_support"
                         " = true\n")
    pytester.makepyfile(test_odd=f"""
        import pytest
        from pytest_qase import qase

        WEIRD = {WEIRD!r}
        IDS = [f"{{i}}-{{text}}" for i, text in enumerate(WEIRD)]

        @pytest.mark.parametrize("text", WEIRD, ids=IDS)
        def test_fails(text):
            qase.title("title " + text)
            qase.suite("suite." + text)
            qase.fields(description=text, severity="major")
            qase.comment(text)
            qase.param("extra", text)
            qase.attach(content=text, filename=text + ".txt")
            with qase.step(text, expected=text, data=text):
                assert False, text

        @pytest.mark.parametrize("text", WEIRD, ids=IDS)
        def test_skipped(text):
            pytest.skip(text)

        @pytest.mark.parametrize("text", WEIRD, ids=IDS)
        @pytest.mark.xfail(reason="xfail " + WEIRD[5])
        def test_xfail(text):
            raise ValueError(text)

        @qase.title(WEIRD[5] + WEIRD[3])
        def test_marked_title():
            pass
    """)
    stored = _check(pytester, qase_server, monkeypatch, 3 * len(WEIRD) + 1)
    failed = [r for r in stored if r["execution"]["status"] == "failed"]
    titles = {r["title"] for r in failed}
    assert "title ünïcödé ✓" in titles and "title emoji 🚀🔥👩‍💻" in titles
    assert "title nul \x00 byte" in titles  # kept, as JSON escapes it
    if ids == "escaped":
        assert len(failed) == len(WEIRD)
        assert "title lone ? surrogate" in titles  # the unencodable surrogate only
    else:
        # pytest itself fails to put a raw lone surrogate into PYTEST_CURRENT_TEST, so that
        # test errors in setup, before its body runs: reported blocked, with pytest's error
        assert len(failed) == len(WEIRD) - 1
        [blocked] = [r for r in stored if r["execution"]["status"] == "blocked"
                     and r["title"] == "test_fails"]
        assert "UnicodeEncodeError" in blocked["message"]
    skipped = {r["message"] for r in stored if r["execution"]["status"] == "skipped"
               and r["title"] == "test_skipped"}
    assert "escape \x1b[31mred\x1b[0m" in skipped


def test_binary_and_huge_params(pytester, qase_server, monkeypatch):
    pytester.makepyfile(test_big="""
        import pytest
        from pytest_qase import qase

        MB = 1024 * 1024

        @pytest.mark.parametrize("value", [b"\\xff\\xfe\\x00", bytes(range(256)), b"\\xff" * MB,
                                           "x" * MB, ["y" * 1000] * 1000, bytearray(b"\\x80")])
        def test_param(value):
            qase.param("runtime", value)
    """)
    stored = _check(pytester, qase_server, monkeypatch, 6)
    for result in stored:
        assert all(len(v) <= 1024 for v in result["params"].values())
    assert {r["params"]["value"] for r in stored} >= {"b'\\xff\\xfe\\x00'", "bytearray(b'\\x80')"}


def test_recursive_and_broken_objects_as_params(pytester, qase_server, monkeypatch):
    pytester.makepyfile(test_objects="""
        import pytest
        from pytest_qase import qase

        loop = []
        loop.append(loop)
        cycle = {}
        cycle["self"] = cycle

        class RaisingRepr:
            def __repr__(self):
                raise RuntimeError("no repr for you")

        class NotStrRepr:
            def __repr__(self):
                return 42

        class SurrogateRepr:
            def __repr__(self):
                return "surrogate \\ud800 repr"

        class RaisingStr(Exception):
            def __str__(self):
                raise RuntimeError("no str for you")

        VALUES = [loop, cycle, RaisingRepr(), NotStrRepr(), SurrogateRepr()]

        @pytest.mark.parametrize("value", VALUES)
        def test_param(value):
            qase.param("runtime", value)
            with qase.step("with data", data=value):
                pass

        def test_exception_whose_str_raises_in_a_step():
            with qase.step("raises"):
                raise RaisingStr()
    """)
    stored = _check(pytester, qase_server, monkeypatch, 6)
    values = sorted(r["params"]["value"] for r in stored if r["title"] == "test_param")
    assert values == sorted([
        "[[...]]", "{'self': {...}}", "<RaisingRepr object: repr failed: RuntimeError>",
        "<NotStrRepr object: repr failed: TypeError>", "surrogate ? repr"])
    [raising] = [r for r in stored if r["title"] == "test_exception_whose_str_raises_in_a_step"]
    assert raising["execution"]["status"] == "failed"
    assert raising["steps"][0]["execution"]["status"] == "failed"


def test_a_50_mb_assertion_message_is_trimmed_and_delivered(pytester, qase_server,
                                                            monkeypatch):
    pytester.makepyfile(test_huge="""
        import pytest

        def test_huge_message():
            assert False, "x" * 50_000_000

        def test_huge_skip_reason():
            pytest.skip("y" * 50_000_000)
    """)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "--qase-report=report", "--tb=short", subprocess=True)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert not [x for x in qase_lines(result) if "error" in x or "not delivered" in x]
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if sys.platform.startswith("linux") and peak_kb > before:
        assert peak_kb < 2 * 1024 * 1024  # pytest itself holds a few copies of the text
    stored = {r["title"]: r for r in qase_server.results()}
    assert set(stored) == {"test_huge_message", "test_huge_skip_reason"}
    trace = stored["test_huge_message"]["execution"]["stacktrace"]
    assert 100_000 < len(trace) <= 1_100_000 and "characters cut by pytest-qase" in trace
    assert len(stored["test_huge_message"]["message"]) <= 2000
    assert len(stored["test_huge_skip_reason"]["message"]) <= 2000
    assert_clean(qase_server)
    report = pytester.path / "report"
    _, local = load_report(report)
    assert len(local) == 2
    assert sum(p.stat().st_size for p in (report / "results").iterdir()) < 4 * 1024 * 1024


def test_one_result_that_cannot_be_sent_costs_only_itself(pytester, qase_server, monkeypatch):
    """A result hook that leaves a value of the wrong type on one result, and an attachment
    named with a lone surrogate: the other results are all delivered and written, the bad
    one is named and counted as not delivered, the run stays open."""
    pytester.makeconftest("""
        def pytest_qase_result(item, result):
            if item.name == "test_n[2]":
                result.start_time = "now"
    """)
    pytester.makepyfile(test_some="""
        import pytest
        from pytest_qase import qase

        @pytest.mark.parametrize("n", range(6))
        def test_n(n):
            if n == 1:
                qase.attach(content=b"x", filename="a\\ud800.txt")
    """)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "--qase-report=report")
    assert result.ret == 0
    lines = qase_lines(result)
    why = ("could not process the result of test_some.py::test_n[2]: TypeError: type str "
           "doesn't define __round__ method")
    assert f"qase: error: {why}" in lines
    assert f"qase: 1 of 6 results were not delivered: {why}" in lines
    assert not [line for line in lines if "upload" in line or "completed" in line], lines
    stored = qase_server.results()
    assert sorted(r["params"]["n"] for r in stored) == ["0", "1", "3", "4", "5"]
    [with_file] = [r for r in stored if r["params"]["n"] == "1"]
    assert len(with_file["attachments"]) == 1
    _, local = load_report(pytester.path / "report")
    assert len(local) == 5
    assert [p.name for p in (pytester.path / "report" / "results").iterdir()
            if not p.name.endswith(".json")] == []
    assert "qase: local report with 5 results written to" in "\n".join(lines)
    assert_clean(qase_server)


@pytest.mark.parametrize("change, delivered", [
    ("result.param_groups = None", False),
    ("result.steps = None", False),
    ("result.fields = None", False),
    ("result.params = sorted(result.params.items())", True),  # to_api takes pairs
], ids=["param_groups None", "steps None", "fields None", "params as pairs"])
def test_a_hooks_odd_value_has_one_fate_whatever_the_results_size(
        pytester, qase_server, monkeypatch, change, delivered):
    """The test thread writes the common result's body from its parts (``api_json``); a
    value of another type than the plugin's own goes ``to_api``'s way instead, so a small
    result and one large enough to be trimmed are both delivered, or both named and kept
    out: never one and not the other."""
    pytester.makeconftest(f"""
        def pytest_qase_result(item, result):
            {change}
    """)
    pytester.makepyfile(test_some="""
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def test_p(n):
            if n == 2:
                raise ValueError("x" * 40000)
    """)
    point_at(monkeypatch, qase_server, QASE_MAX_REQUEST_BYTES="16384")
    result = run(pytester, qase_server)
    assert result.ret == 1  # test_p[2] failed; the plugin changes nothing
    lines = qase_lines(result)
    stored = qase_server.results()
    if delivered:
        assert sorted(r["params"]["n"] for r in stored) == ["1", "2"], lines
        assert_clean(qase_server)
    else:
        assert stored == [], lines
        assert any(line.startswith("qase: 2 of 2 results were not delivered: could not "
                                   "process the result of test_some.py::test_p[")
                   for line in lines), lines


@pytest.mark.parametrize("value", [
    "plain", "é ü 中 \ud800 lone surrogate", {"b": [1, 2.5, None, True], "a": float("nan")},
    {"when": __import__("datetime").date(2026, 12, 4)}, [], 0.1 + 0.2,
])
def test_the_cached_json_encoder_writes_what_json_writes(value):
    """Bodies and signatures come from C encoders made once (``results._c_encoder``); they
    must be byte for byte what the json module's encoders give, or a signature (a Qase
    case's identity) would change between versions."""
    import json

    from pytest_qase import results

    plain = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
    assert results.to_json_bytes(value) == plain.encode(value).encode("utf-8", "replace")
    if isinstance(value, dict) and not any(isinstance(v, float) for v in value.values()):
        params = {str(k): str(v) for k, v in value.items()}
        assert results._signature("t.py::test", [], params) == "t.py::test::" + json.dumps(
            params, ensure_ascii=False, sort_keys=True)
