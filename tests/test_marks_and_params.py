"""Case ids from marks on functions, classes and modules; params by their real values."""

from __future__ import annotations

import pytest
from support import by_title, clean_environment, point_at, run


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")


def test_case_ids_on_function_class_and_module(pytester, qase_server, monkeypatch):
    pytester.makepyfile(test_module_marked="""
        import pytest
        pytestmark = pytest.mark.qase_id(7)

        def test_module_level():
            pass

        @pytest.mark.qase_id(8, 9)
        def test_function_wins():
            pass
    """, test_plain="""
        import pytest
        from pytest_qase import qase

        def test_unmarked():
            pass

        @qase.id(101)
        def test_runtime_api():
            pass

        @qase.id(102, 103)
        def test_runtime_api_two():
            pass

        @pytest.mark.qase_id(5)
        class TestMarked:
            def test_inherits(self):
                pass

            @pytest.mark.qase_id(6)
            def test_overrides(self):
                pass
    """)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "--strict-markers")
    assert result.ret == 0
    ids = {title: r.get("testops_ids") for title, r in by_title(qase_server).items()}
    assert ids == {
        "test_module_level": [7], "test_function_wins": [8, 9], "test_unmarked": None,
        "test_runtime_api": [101], "test_runtime_api_two": [102, 103],
        "TestMarked.test_inherits": [5], "TestMarked.test_overrides": [6],
    }
    assert qase_server.validation_errors == []


@pytest.mark.parametrize("bad", ["0", "-3", "'12'", "1.5", "True", ""])
def test_bad_case_id_is_a_collection_error_naming_the_test(pytester, bad):
    pytester.makepyfile(test_bad=f"""
        import pytest
        @pytest.mark.qase_id({bad})
        def test_wrong_id():
            pass
        def test_fine():
            pass
    """)
    result = run(pytester, None)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*test_bad.py::test_wrong_id: bad @pytest.mark.qase_id value*"
        "a Qase case id is a positive whole number*",
        "*1 error*",
    ])


def test_every_bad_mark_of_a_module_is_named_at_once(pytester):
    # one run of the suite tells the user every test to mend, not one per run
    pytester.makepyfile(test_bad="""
        import pytest
        @pytest.mark.qase_id(0)
        def test_zero():
            pass
        @pytest.mark.qase_id("abc")
        def test_text():
            pass
        def test_fine():
            pass
    """)
    result = run(pytester, None)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*test_bad.py::test_zero: bad @pytest.mark.qase_id value 0*",
        "*test_bad.py::test_text: bad @pytest.mark.qase_id value 'abc'*",
        "*1 error*",
    ])


def test_bad_case_id_on_a_unittest_class_is_a_collection_error_too(pytester):
    pytester.makepyfile(test_unit="""
        import unittest
        import pytest

        @pytest.mark.qase_id("abc")
        class TestOld(unittest.TestCase):
            def test_x(self):
                pass

        def test_fine():
            pass
    """)
    result = run(pytester, None)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*test_unit.py::TestOld::test_x: bad @pytest.mark.qase_id value 'abc': a Qase case "
        "id is a positive whole number*",
        "*1 error*",
    ])


def test_marker_is_registered(pytester):
    pytester.makepyfile("""
        import pytest
        @pytest.mark.qase_id(1)
        def test_one():
            pass
    """)
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider")  # plugin off
    assert result.ret == 0
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.qase_id(*ids): link the test's result*"])


def test_untitled_tests_get_a_stable_signature(pytester, qase_server, monkeypatch):
    pytester.makepyfile(test_sig="""
        import pytest
        class TestGroup:
            @pytest.mark.qase_id(4)
            @pytest.mark.parametrize("user", ["alice", "bob"])
            def test_login(self, user):
                pass
    """)
    point_at(monkeypatch, qase_server)
    run(pytester, qase_server)
    run(pytester, qase_server)
    signatures = sorted(r["signature"] for r in qase_server.results())
    assert signatures == sorted(2 * [
        'test_sig.py::TestGroup::test_login::4::{"user": "alice"}',
        'test_sig.py::TestGroup::test_login::4::{"user": "bob"}',
    ])
    assert {r["id"] for r in qase_server.results()}.__len__() == 4  # ids are unique


def test_params_are_real_values_and_grouped_by_parametrize(pytester, qase_server, monkeypatch):
    pytester.makepyfile(test_params="""
        import pytest

        class Point:
            def __init__(self, x):
                self.x = x
            def __repr__(self):
                return f"Point({self.x})"

        class Recursive(list):
            pass

        loop = Recursive()
        loop.append(loop)

        @pytest.fixture(params=["sqlite"])
        def db(request):
            return request.param

        @pytest.mark.parametrize("text, number", [("a-b", 1)], ids=["custom-id-with-dashes"])
        @pytest.mark.parametrize("obj", [{"k": [1, 2]}, Point(3), None, b"\\x00\\xff", loop])
        def test_values(db, text, number, obj):
            pass

        def helper():
            pass

        class Plain:
            pass

        class Tagged:  # packaging's Tag: "<py3-none-any @ 139628485703296>"
            def __repr__(self):
                return f"<py3-none-any @ {id(self)}>"

        @pytest.mark.parametrize("func, instance, tagged", [(helper, Plain(), Tagged())])
        def test_addresses(func, instance, tagged):
            pass

        @pytest.mark.parametrize("huge", ["x" * 5000])
        def test_huge(huge):
            pass
    """)
    point_at(monkeypatch, qase_server)
    assert run(pytester, qase_server).ret == 0
    results = [r for r in qase_server.results() if r["title"] == "test_values"]
    objs = sorted(r["params"]["obj"] for r in results)
    assert objs == sorted(["{'k': [1, 2]}", "Point(3)", "None", "b'\\x00\\xff'", "[[...]]"])
    for stored in results:
        assert stored["params"]["text"] == "a-b" and stored["params"]["number"] == "1"
        assert stored["params"]["db"] == "sqlite"
        assert stored["param_groups"] == [["obj"], ["text", "number"], ["db"]]
    [addresses] = [r for r in qase_server.results() if r["title"] == "test_addresses"]
    # no memory address: the signature (so the Qase case) is the same on every run
    assert addresses["params"]["func"] == "<function helper>"
    assert addresses["params"]["instance"] == "<test_params.Plain object>"
    assert addresses["params"]["tagged"] == "<py3-none-any>"
    assert "0x" not in addresses["signature"]
    [huge] = [r for r in qase_server.results() if r["title"] == "test_huge"]
    assert len(huge["params"]["huge"]) == 1024 and huge["params"]["huge"].endswith(
        "...[truncated]")
    assert qase_server.validation_errors == []


def test_param_groups_are_each_functions_own(pytester, qase_server, monkeypatch):
    # the groups are worked out once per parametrized function: functions with the same
    # parameter names, in one module or two, and a mark added to one case keep their own
    pytester.makepyfile(test_together="""
        import pytest

        @pytest.mark.parametrize("a, b", [(1, 2), (3, 4)])
        def test_pair(a, b):
            pass

        @pytest.mark.parametrize("b", [2])
        @pytest.mark.parametrize("a", [1])
        def test_apart(a, b):
            pass

        @pytest.mark.parametrize("a, b", [(1, 2), pytest.param(3, 4, marks=pytest.mark.qase_id(9))])
        def test_marked(a, b):
            pass
    """, test_other="""
        import pytest

        def pytest_generate_tests(metafunc):
            if "b" in metafunc.fixturenames:
                metafunc.parametrize("a", [1])
                metafunc.parametrize("b", [2])

        def test_pair(a, b):
            pass
    """)
    point_at(monkeypatch, qase_server)
    assert run(pytester, qase_server).ret == 0
    groups = {(r["signature"].split("::")[0], r["title"], r["params"]["a"]): r["param_groups"]
              for r in qase_server.results()}
    assert groups == {
        ("test_together.py", "test_pair", "1"): [["a", "b"]],
        ("test_together.py", "test_pair", "3"): [["a", "b"]],
        ("test_together.py", "test_apart", "1"): [["a"], ["b"]],
        ("test_together.py", "test_marked", "1"): [["a", "b"]],
        ("test_together.py", "test_marked", "3"): [["a", "b"]],
        ("test_other.py", "test_pair", "1"): [["a"], ["b"]],
    }
    [marked] = [r for r in qase_server.results() if r.get("testops_ids")]
    assert marked["testops_ids"] == [9] and marked["params"] == {"a": "3", "b": "4"}


def test_param_groups_memo_stays_bounded(monkeypatch):
    # sessions run one after another in one process (pytester's, an IDE's) keep adding
    # parametrized functions: the memo is emptied when full, and still answers right
    from pytest_qase import results

    monkeypatch.setattr(results, "MAX_GROUPS", 3)
    monkeypatch.setattr(results, "_GROUPS", {})
    for n in range(10):
        mark = pytest.mark.parametrize("a, b", [(n, n)]).mark
        assert results._param_groups(("a", "b", "c"), [mark]) == (("a", "b"), ("c",))
        assert len(results._GROUPS) <= 3


def test_times_come_from_the_real_clock_under_freezegun(pytester, qase_server, monkeypatch):
    pytest.importorskip("freezegun")
    pytester.makepyfile("""
        import time
        from freezegun import freeze_time

        @freeze_time("2001-01-01")
        def test_frozen():
            assert time.time() < 1e9
            time.sleep(0.05)
    """)
    point_at(monkeypatch, qase_server)
    assert run(pytester, qase_server).ret == 0
    [stored] = qase_server.results()
    execution = stored["execution"]
    assert execution["start_time"] > 1.7e9  # not 2001
    assert execution["duration"] >= 50
    assert execution["end_time"] - execution["start_time"] >= 0.05
