"""Real pytest-xdist workers: one run, every result exactly once, nothing lost on a crash."""

from __future__ import annotations

import pytest
from support import (
    assert_clean,
    by_title,
    clean_environment,
    load_report,
    point_at,
    qase_lines,
    run,
)

pytest.importorskip("xdist")

SUITE = """
import pytest

@pytest.mark.parametrize("n", range(60))
def test_many(n):
    assert n % 17 != 5

@pytest.mark.skip(reason="skipped on purpose")
def test_skipped():
    pass
"""


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")


@pytest.mark.parametrize("dist", ["load", "loadfile", "worksteal"])
def test_two_workers_report_into_one_run(pytester, qase_server, monkeypatch, dist):
    pytester.makepyfile(test_many=SUITE)
    point_at(monkeypatch, qase_server, QASE_BATCH_SIZE="7")
    result = run(pytester, qase_server, "-n", "2", "--dist", dist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [run_id] = qase_server.runs
    results = by_title(qase_server, run_id)  # asserts no test twice
    assert len(results) == 61
    failed = sorted(int(r["params"]["n"]) for r in results.values()
                    if r["execution"]["status"] == "failed")
    assert failed == [5, 22, 39, 56]
    threads = {r["execution"]["thread"] for r in results.values()}
    assert threads == ({"gw0"} if dist == "loadfile" else {"gw0", "gw1"})  # one file
    stored = qase_server.run(run_id)
    assert stored["completed"] and stored["completed_order"] > stored["last_result_order"]
    assert qase_server.count("POST", "/v1/run/DEMO") == 2  # one create, one complete
    assert qase_server.count("GET", "/v1/project") == 1  # workers do not check again
    assert_clean(qase_server)
    assert qase_lines(result)[-1].startswith(f"qase: 61 results -> run {run_id} (DEMO) in ")


def test_worker_that_dies_loses_nothing(pytester, qase_server, monkeypatch):
    pytester.makepyfile(test_crash="""
        import os
        import pytest

        @pytest.mark.parametrize("n", range(30))
        def test_before(n):
            pass

        def test_zz_dies():
            os._exit(3)
    """)
    point_at(monkeypatch, qase_server, QASE_BATCH_SIZE="1000")
    result = run(pytester, qase_server, "-n", "1", "-p", "no:randomly")
    [run_id] = qase_server.runs
    results = by_title(qase_server, run_id)
    assert len(results) == 31, qase_lines(result)
    crashed = results["test_zz_dies"]
    assert crashed["execution"]["status"] == "failed"
    assert "crashed while running" in crashed["message"]
    assert all(r["execution"]["status"] == "passed" for t, r in results.items()
               if t != "test_zz_dies")
    assert qase_server.run(run_id)["completed"]
    assert_clean(qase_server)


def test_xdist_installed_but_disabled_or_unused(pytester, qase_server, monkeypatch):
    pytester.makepyfile(test_many=SUITE)
    point_at(monkeypatch, qase_server)
    run(pytester, qase_server, "-p", "no:xdist")
    run(pytester, qase_server, "-n", "0")
    assert len(qase_server.runs) == 2
    for run_id in qase_server.runs:
        assert len(by_title(qase_server, run_id)) == 61
        assert qase_server.run(run_id)["completed"]


def test_local_report_with_workers(pytester):
    pytester.makepyfile(test_many=SUITE)
    run(pytester, None, "-n", "2")
    run_data, results = load_report(pytester.path / "qase-report")
    assert run_data["stats"]["total"] == 61 == len(results)
    assert run_data["stats"]["failed"] == 4 and run_data["stats"]["skipped"] == 1
    assert sorted(run_data["threads"]) == ["gw0", "gw1"]
