"""pytest-rerunfailures: one result per test, earlier attempts as steps, ``is_flaky`` set."""

from __future__ import annotations

import pytest
from support import assert_clean, by_title, clean_environment, load_report, point_at, run

pytest.importorskip("pytest_rerunfailures")


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)


RERUN_SUITE = """
    import itertools
    import pytest
    from pytest_qase import qase

    flaky_calls = itertools.count(1)
    setup_calls = itertools.count(1)

    def test_passes_on_second_attempt():
        attempt = next(flaky_calls)
        with qase.step(f"try {attempt}"):
            qase.attach(content=f"attempt {attempt}", filename="trace.txt")
        assert attempt >= 2, f"attempt {attempt} failed"

    def test_always_fails():
        with qase.step("doomed"):
            assert False, "still broken"

    def test_passes_first_time():
        pass

    @pytest.fixture
    def shaky():
        if next(setup_calls) == 1:
            raise RuntimeError("db not ready")

    def test_setup_fails_once(shaky):
        pass

    @pytest.mark.xfail(reason="known bug", strict=True)
    def test_strict_xpass():
        pass

    @pytest.mark.xfail(reason="known bug")
    def test_xfail():
        assert False
"""


def test_reruns_give_one_result_with_attempts_and_flaky_flag(pytester, qase_server,
                                                             monkeypatch):
    pytester.makeini("[pytest]\nxfail_strict = true\n")
    pytester.makepyfile(test_flaky_suite=RERUN_SUITE)
    point_at(monkeypatch, qase_server)
    report_dir = pytester.path / "report"
    result = run(pytester, qase_server, "--reruns=2", f"--qase-report={report_dir}")
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["xfailed"], outcomes["rerun"]) \
        == (3, 2, 1, 6)
    stored = by_title(qase_server)  # asserts one result per test
    assert len(qase_server.results()) == 6

    flaky = stored["test_passes_on_second_attempt"]
    assert flaky["execution"]["status"] == "passed"
    assert flaky["fields"] == {"is_flaky": "true"}
    assert flaky["message"] == "flaky: passed on attempt 2 of 2"
    first, second = flaky["steps"]
    assert first["data"]["action"] == "attempt 1: failed"
    assert first["execution"]["status"] == "failed"
    assert first["execution"]["comment"] == "AssertionError: attempt 1 failed"
    assert [s["data"]["action"] for s in first["steps"]] == ["try 1"]
    assert second["data"]["action"] == "attempt 2: passed"
    assert [s["data"]["action"] for s in second["steps"]] == ["try 2"]
    for step, content in ((first, b"attempt 1"), (second, b"attempt 2")):
        assert step["steps"][0]["execution"]["attachments"] == [
            qase_server_hash(qase_server, content)]
    assert first["execution"]["end_time"] <= second["execution"]["start_time"]

    broken = stored["test_always_fails"]
    assert broken["execution"]["status"] == "failed"
    assert "is_flaky" not in broken["fields"]
    assert [s["data"]["action"] for s in broken["steps"]] == [
        "attempt 1: failed", "attempt 2: failed", "attempt 3: failed"]
    assert broken["message"] == "AssertionError: still broken\nfailed on every one of 3 attempts"

    assert stored["test_passes_first_time"]["steps"] == []
    assert "is_flaky" not in stored["test_passes_first_time"]["fields"]

    setup = stored["test_setup_fails_once"]
    assert setup["execution"]["status"] == "passed" and setup["fields"] == {"is_flaky": "true"}
    assert setup["steps"][0]["execution"]["comment"] == "RuntimeError: db not ready"

    strict = stored["test_strict_xpass"]
    assert strict["execution"]["status"] == "failed"
    assert strict["message"].startswith("[XPASS(strict)] known bug")
    assert len(strict["steps"]) == 3
    assert stored["test_xfail"]["execution"]["status"] == "skipped"
    assert stored["test_xfail"]["steps"] == []

    _, results = load_report(report_dir)
    assert len(results) == 6
    reported = {r["title"]: r for r in results}
    assert reported["test_passes_on_second_attempt"]["fields"] == {"is_flaky": "true"}
    assert [s["data"]["action"] for s in reported["test_always_fails"]["steps"]] == [
        "attempt 1: failed", "attempt 2: failed", "attempt 3: failed"]
    assert_clean(qase_server)


def qase_server_hash(server, content: bytes) -> str:
    [digest] = [h for h, a in server.attachments.items() if a["content"] == content]
    return digest


def test_reruns_under_xdist_give_one_result_per_test(pytester, qase_server, monkeypatch):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_reruns_xdist="""
        import os

        def test_flaky(tmp_path_factory):
            marker = tmp_path_factory.getbasetemp().parent / "flaky-ran-once"
            if not marker.exists():
                marker.write_text("x")
                assert False, "first attempt"

        def test_stable():
            from pytest_qase import qase
            with qase.step("on a worker"):
                qase.attach(content=b"from a worker", filename="w.bin")
    """)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "--reruns=1", "-n", "2", subprocess=True)
    assert result.ret == 0
    stored = by_title(qase_server)
    assert sorted(stored) == ["test_flaky", "test_stable"]
    assert stored["test_flaky"]["fields"] == {"is_flaky": "true"}
    assert stored["test_flaky"]["execution"]["thread"].startswith("gw")
    [step] = stored["test_stable"]["steps"]
    [digest] = step["execution"]["attachments"]
    assert qase_server.attachments[digest]["content"] == b"from a worker"
    assert_clean(qase_server)
