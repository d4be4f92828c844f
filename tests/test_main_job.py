"""The main job end to end: a real pytest session reports to a local Qase server."""

from __future__ import annotations

import pytest
from qase_server import QaseServer
from support import (
    assert_clean,
    by_title,
    clean_environment,
    load_report,
    point_at,
    qase_lines,
    run,
)

pytest_plugins = ["pytester"]

STATUS_SUITE = '''
import unittest
import pytest

def test_passes():
    assert True

def test_fails():
    assert 1 == 2, "numbers differ"

@pytest.fixture
def broken():
    raise RuntimeError("database is down")

def test_setup_error(broken):
    pass

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("cleanup exploded")

def test_teardown_error(bad_teardown):
    pass

@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    pass

def test_skip_inside():
    pytest.skip("decided at run time")

@pytest.mark.xfail(reason="bug 42")
def test_xfail():
    assert False

@pytest.mark.xfail(reason="bug 43")
def test_xpass():
    assert True

@pytest.mark.xfail(reason="bug 44", strict=True)
def test_xpass_strict():
    assert True

def test_subtests(subtests):
    for i in range(3):
        with subtests.test(msg="case", i=i):
            assert i != 1

class TestUnit(unittest.TestCase):
    def test_subtest(self):
        for n in (1, 2):
            with self.subTest(n=n):
                self.assertEqual(n, 1)
'''


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")  # the session's rootdir is its own folder


def test_every_status_is_folded_into_one_result(pytester, qase_server: QaseServer, monkeypatch):
    pytester.makepyfile(test_statuses=STATUS_SUITE)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server)
    results = by_title(qase_server)
    statuses = {title: r["execution"]["status"] for title, r in results.items()}
    assert statuses == {
        "test_passes": "passed", "test_fails": "failed", "test_setup_error": "blocked",
        "test_teardown_error": "invalid", "test_skipped": "skipped",
        "test_skip_inside": "skipped", "test_xfail": "skipped", "test_xpass": "passed",
        "test_xpass_strict": "failed", "test_subtests": "failed",
        "TestUnit.test_subtest": "failed",
    }
    assert results["test_fails"]["message"] == "AssertionError: numbers differ"
    assert "assert 1 == 2" in results["test_fails"]["execution"]["stacktrace"]
    assert results["test_setup_error"]["message"] == (
        "setup failed: RuntimeError: database is down")
    assert results["test_teardown_error"]["message"] == (
        "teardown failed: RuntimeError: cleanup exploded")
    assert results["test_skipped"]["message"] == "not on this platform"
    assert results["test_skipped"]["execution"]["stacktrace"] is None
    assert results["test_xfail"]["message"] == "XFAIL bug 42"
    assert results["test_xpass"]["message"] == "XPASS bug 43"
    steps = results["test_subtests"]["steps"]
    assert [s["execution"]["status"] for s in steps] == ["passed", "failed", "passed"]
    assert steps[1]["data"]["action"] == "subtest case i=1"
    assert [s["execution"]["status"] for s in results["TestUnit.test_subtest"]["steps"]] == [
        "passed", "failed"]
    for stored in results.values():
        execution = stored["execution"]
        assert execution["end_time"] >= execution["start_time"] > 1.7e9
        assert isinstance(execution["duration"], int) and execution["duration"] >= 0
        assert execution["thread"] == "main"
        assert stored["relations"]["suite"]["data"][0]["title"] == "test_statuses"
        assert stored["signature"].startswith("test_statuses.py::")
    assert_clean(qase_server)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the plugin does not change it


def test_run_lifecycle_and_summary_line(pytester, qase_server: QaseServer, monkeypatch):
    pytester.makepyfile("""
        import pytest
        @pytest.mark.parametrize("n", range(450))
        def test_many(n):
            pass
    """)
    point_at(monkeypatch, qase_server, QASE_RUN_TITLE="nightly", QASE_RUN_DESCRIPTION="from CI")
    result = run(pytester, qase_server)
    assert result.ret == 0
    [run_id] = qase_server.runs
    stored_run = qase_server.run(run_id)
    assert stored_run["body"] == {"title": "nightly", "description": "from CI",
                                  "is_autotest": True}
    assert len(qase_server.results(run_id)) == 450
    # 450 results in batches of at most 200: three bulk requests, each valid
    sizes = [len(r.body["results"]) for r in qase_server.results_requests()]
    assert sorted(sizes) == [50, 200, 200]
    assert stored_run["completed"] and stored_run["completed_order"] > stored_run[
        "last_result_order"]
    methods = [(r.method, r.endpoint) for r in qase_server.requests]
    assert methods[0][0] == "GET" and "project" in methods[0][1]
    assert methods[1][0] == "POST" and "run" in methods[1][1]
    line = qase_lines(result)[-1]
    port = qase_server.url.rsplit(":", 1)[1]
    assert line == (f"qase: 450 results -> run {run_id} (DEMO) in 6 requests, "
                    f"https://127.0.0.1:{port}/run/DEMO/dashboard/{run_id} (completed)")
    assert_clean(qase_server)


def test_existing_run_is_checked_and_left_open(pytester, qase_server: QaseServer, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server)
    first = run(pytester, qase_server, "--qase-no-complete-run")
    [run_id] = qase_server.runs
    assert not qase_server.run(run_id)["completed"] and first.ret == 0
    run(pytester, qase_server, "--qase-run-id", str(run_id))
    assert list(qase_server.runs) == [run_id]  # no second run created
    assert len(qase_server.results(run_id)) == 2
    assert not qase_server.run(run_id)["completed"]  # never completes a run it did not create
    run(pytester, qase_server, "--qase-run-id", str(run_id), "--qase-complete-run")
    assert qase_server.run(run_id)["completed"]


def test_the_run_is_created_while_pytest_collects(pytester, qase_server, monkeypatch):
    """The run's round trips overlap the collection: a test module imported while Qase still
    holds back its answer to the run creation (3 s) is imported before that answer."""
    pytester.makepyfile(test_late="""
        import time
        from pathlib import Path
        Path("imported_at").write_text(repr(time.time()))
        def test_one():
            pass
    """)
    point_at(monkeypatch, qase_server)
    qase_server.inject("POST", r"^/v1/run/DEMO$", status=None, delay=3.0)
    result = run(pytester, qase_server)
    assert result.ret == 0
    imported_at = float((pytester.path / "imported_at").read_text())
    [create] = [r for r in qase_server.requests if r.method == "POST" and r.path == "/v1/run/DEMO"]
    assert imported_at < create.answered_at - 1.0  # collected while the answer was held
    [run_id] = qase_server.runs
    assert [r["title"] for r in qase_server.results(run_id)] == ["test_one"]
    assert qase_server.run(run_id)["completed"]
    assert_clean(qase_server)


def test_a_collection_error_while_the_run_is_created_ends_cleanly(pytester, qase_server,
                                                                 monkeypatch):
    """pytest stops after a broken module while the run is still being created: the session
    waits for it, then completes it (no test ran, nothing is missing) and says what happened."""
    pytester.makepyfile(test_ok="def test_one():\n    pass\n", test_broken="def (:\n")
    point_at(monkeypatch, qase_server)
    qase_server.inject("POST", r"^/v1/run/DEMO$", status=None, delay=1.0)
    result = run(pytester, qase_server)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # pytest's own, for the collection error
    [run_id] = qase_server.runs
    assert qase_server.results(run_id) == [] and qase_server.run(run_id)["completed"]
    text = "\n".join(qase_lines(result))
    assert f"qase: 0 results -> run {run_id} (DEMO)" in text and "error" not in text
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_unknown_run_id_falls_back_to_the_local_report(pytester, qase_server, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server, QASE_RUN_ID="999")
    result = run(pytester, qase_server)
    assert result.ret == 0
    assert qase_server.results() == []
    lines = qase_lines(result)
    assert any("not found (404)" in line and "run 999" in line for line in lines), lines
    _, results = load_report(pytester.path / "qase-report")
    assert [r["title"] for r in results] == ["test_one"]


def test_run_is_not_completed_when_results_were_refused(pytester, qase_server, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server, QASE_MAX_WAIT="5")
    qase_server.inject(path=r"/results$", status=403, times=None,
                       body={"status": False, "errorMessage": "no access to results"})
    result = run(pytester, qase_server)
    assert result.ret == 0
    [run_id] = qase_server.runs
    assert not qase_server.run(run_id)["completed"]
    text = "\n".join(qase_lines(result))
    assert "1 of 1 results were not delivered" in text
    assert "may not send results to run" in text and "(403)" in text
    assert "python -m pytest_qase upload" in text


def test_no_token_writes_a_valid_local_report(pytester, monkeypatch):
    pytester.makepyfile(test_statuses=STATUS_SUITE)
    result = run(pytester, None)
    report_dir = pytester.path / "qase-report"
    assert f"qase: local report with 11 results written to {report_dir}" in result.outlines
    run_data, results = load_report(report_dir)
    assert run_data["stats"]["total"] == 11
    assert run_data["stats"]["failed"] == 4 and run_data["stats"]["blocked"] == 1
    assert run_data["stats"]["invalid"] == 1 and run_data["stats"]["skipped"] == 3
    assert {r["id"] for r in run_data["results"]} == {r["id"] for r in results}
    fails = next(r for r in results if r["title"] == "test_fails")
    assert fails["message"] == "AssertionError: numbers differ"
    assert fails["execution"]["status"] == "failed"


def test_the_local_report_never_loads_the_http_client(pytester):
    """Without a token nothing is sent, so the client (and ``requests``, about 50 ms of
    imports) is never imported: only the session's own modules are."""
    pytester.makepyfile("def test_one():\n    pass\n")
    pytester.makeconftest("""
        import sys
        from pathlib import Path

        def pytest_sessionfinish(session):
            wanted = ("pytest_qase.session", "pytest_qase.client")
            Path("loaded.txt").write_text(" ".join(m for m in wanted if m in sys.modules))
    """)
    result = run(pytester, None, subprocess=True)
    assert result.ret == 0
    assert (pytester.path / "loaded.txt").read_text() == "pytest_qase.session"
    assert (pytester.path / "qase-report" / "run.json").is_file()


def test_report_and_upload_carry_the_same_content(pytester, qase_server, monkeypatch):
    pytester.makepyfile(test_statuses=STATUS_SUITE)
    point_at(monkeypatch, qase_server)
    run(pytester, qase_server, "--qase-report=out")
    _, results = load_report(pytester.path / "out")
    uploaded = {r["id"]: r for r in qase_server.results()}
    assert set(uploaded) == {r["id"] for r in results}
    for local in results:
        sent = uploaded[local["id"]]
        for key in ("title", "signature", "message", "params", "param_groups", "relations"):
            assert local[key] == sent[key], key
        assert local["execution"] == {k: sent["execution"][k] for k in local["execution"]}


def test_second_session_replaces_the_old_report(pytester):
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    run(pytester, None)
    (pytester.path / "test_a.py").unlink()
    pytester.makepyfile(test_b="def test_b():\n    pass\n")
    run(pytester, None)
    run_data, results = load_report(pytester.path / "qase-report")
    assert [r["title"] for r in results] == ["test_b"]


def test_plugin_off_does_nothing(pytester, qase_server, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0
    assert qase_server.requests == []
    assert not (pytester.path / "qase-report").exists()
    assert qase_lines(result) == []


@pytest.mark.parametrize("flag", ["--collect-only", "--co", "--fixtures", "--fixtures-per-test",
                                  "--setup-plan", "--setup-only", "--cache-show"])
def test_collect_only_creates_no_run_and_no_report(pytester, qase_server, monkeypatch, flag):
    """pytest lists, shows or plans, and runs no test: nothing to report."""
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server)
    if flag == "--cache-show":  # the cache plugin is on here, unlike in ``run``
        result = pytester.runpytest("--qase", f"--qase-ca-bundle={qase_server.ca_path}", flag)
    else:
        result = run(pytester, qase_server, flag)
    assert result.ret == 0
    assert qase_server.requests == []
    assert not (pytester.path / "qase-report").exists()
    assert qase_lines(result) == []


def test_completed_run_is_refused_at_the_start(pytester, qase_server, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server)
    run(pytester, qase_server)
    [run_id] = qase_server.runs
    assert qase_server.run(run_id)["completed"]
    result = run(pytester, qase_server, f"--qase-run-id={run_id}")
    assert any(f"run {run_id} of DEMO is already completed and takes no more results" in line
               for line in qase_lines(result))
    assert len(qase_server.results(run_id)) == 1
    assert (pytester.path / "qase-report" / "run.json").exists()
