"""Real pytest-xdist workers: one run, every result exactly once, nothing lost on a crash."""

from __future__ import annotations

import json
import os
import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from support import (
    assert_clean,
    by_title,
    clean_environment,
    finished,
    load_report,
    point_at,
    qase_lines,
    run,
    start,
)

from pytest_qase.xdist import plain_nodeid

pytest.importorskip("xdist")

MANY = """
import pytest

@pytest.mark.parametrize("n", range(40))
def test_many(n):
    assert n % 17 != 5

@pytest.mark.skip(reason="skipped on purpose")
def test_skipped():
    pass
"""

GROUPED = """
import pytest

class TestGrouped:
    @pytest.mark.xdist_group("a")
    @pytest.mark.parametrize("k", range(6))
    def test_in_a(self, k):
        pass

    @pytest.mark.xdist_group(name="b")
    def test_in_b(self):
        pass

@pytest.mark.parametrize("m", range(10))
def test_other(m):
    pass
"""

TOTAL = 41 + 7 + 10
FAILED = [5, 22, 39]


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")


def sessions_dir(tmp_path: Path) -> Path:
    """Where the plugin keeps session directories (TMPDIR is per test, see support)."""
    return tmp_path / "tmp" / f"pytest-qase-{os.getuid()}" / "sessions"


def create_posts(server) -> int:
    return sum(1 for r in server.requests if r.method == "POST" and r.path == "/v1/run/DEMO")


def assert_one_completed_run(server, lines: list[str], total: int) -> dict[str, dict[str, Any]]:
    """One run, created once, holding ``total`` results once each, completed after the last."""
    [run_id] = server.runs
    results = by_title(server, run_id)  # asserts no test twice
    assert len(results) == total, lines
    stored = server.run(run_id)
    assert stored["completed"] and stored["completed_order"] > stored["last_result_order"]
    assert stored["complete_calls"] == 1
    assert create_posts(server) == 1
    assert server.count("GET", "/v1/project") == 1  # workers do not check again
    assert_clean(server)
    summary = [line for line in lines if " results -> run " in line]
    assert summary == [f"qase: {total} results -> run {run_id} (DEMO) in "
                       f"{len(server.requests)} requests, "
                       f"{summary[0].split(', ', 1)[1].split(' (completed)')[0]} (completed)"]
    return results


def junit_statuses(path: Path) -> dict[str, str]:
    """pytest's own verdict per test from ``--junitxml``, keyed like ``by_title``."""
    found = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        if not name:  # pytest's entry for the interruption itself
            continue
        kinds = {child.tag for child in case}
        status = ("failed" if kinds & {"failure", "error"} else
                  "skipped" if "skipped" in kinds else "passed")
        found[name] = status
    return found


def qase_statuses(server, run_id: int) -> dict[str, str]:
    """Stored statuses keyed like junit names (``test_many[3]``)."""
    found = {}
    for result in by_title(server, run_id).values():
        name = result["title"].split(".")[-1]
        if result.get("params"):
            name += "[" + "-".join(result["params"].values()) + "]"
        found[name] = result["execution"]["status"]
    return found


# -- every --dist mode --------------------------------------------------------------------


@pytest.mark.parametrize(("workers", "dist"), [
    ("2", "load"), ("2", "loadscope"), ("2", "loadfile"), ("2", "loadgroup"),
    ("2", "worksteal"), ("auto", "load"), ("3", "load"),
])
def test_every_dist_mode_reports_into_one_run(pytester, qase_server, monkeypatch,
                                              workers, dist):
    pytester.makepyfile(test_many=MANY, test_grouped=GROUPED)
    point_at(monkeypatch, qase_server, QASE_BATCH_SIZE="7")
    result = run(pytester, qase_server, "-n", workers, "--dist", dist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    results = assert_one_completed_run(qase_server, qase_lines(result), TOTAL)
    failed = sorted(int(r["params"]["n"]) for r in results.values()
                    if r["execution"]["status"] == "failed")
    assert failed == FAILED
    assert results["test_skipped"]["execution"]["status"] == "skipped"
    # the same test as without xdist: no "@group" from loadgroup in titles or signatures
    assert all("@" not in r["signature"] and "@" not in r["title"] for r in results.values())
    assert results['TestGrouped.test_in_a{"k": "0"}']["signature"] == (
        'test_grouped.py::TestGrouped::test_in_a::{"k": "0"}')
    threads = {r["execution"]["thread"] for r in results.values()}
    assert threads <= {f"gw{i}" for i in range(int(workers) if workers.isdigit() else 256)}
    assert len(threads) >= 2


def test_dist_each_gives_one_result_per_test_and_worker(pytester, qase_server, monkeypatch):
    """``--dist each`` runs every test on every worker: Qase gets each of those runs."""
    pytester.makepyfile(test_many=MANY)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "-n", "2", "--dist", "each")
    [run_id] = qase_server.runs
    stored = qase_server.results(run_id)
    assert len(stored) == 2 * 41 == len({r["id"] for r in stored})
    per_worker: dict[str, set[str]] = {"gw0": set(), "gw1": set()}
    for item in stored:
        key = item["signature"]
        assert key not in per_worker[item["execution"]["thread"]], key
        per_worker[item["execution"]["thread"]].add(key)
    assert per_worker["gw0"] == per_worker["gw1"] and len(per_worker["gw0"]) == 41
    run_state = qase_server.run(run_id)
    assert run_state["completed"] and run_state["completed_order"] > run_state["last_result_order"]
    assert_clean(qase_server)
    assert f"qase: 82 results -> run {run_id} (DEMO)" in "\n".join(qase_lines(result))


def test_xdist_installed_but_disabled_or_unused(pytester, qase_server, monkeypatch, tmp_path):
    """``-p no:xdist``, ``-n 0`` and ``-n 2 --dist loadgroup`` give Qase the same tests."""
    pytester.makepyfile(test_many=MANY, test_grouped=GROUPED)
    point_at(monkeypatch, qase_server)
    run(pytester, qase_server, "-p", "no:xdist")
    run(pytester, qase_server, "-n", "0")
    run(pytester, qase_server, "-n", "2", "--dist", "loadgroup")
    assert len(qase_server.runs) == 3
    seen = []
    for run_id in qase_server.runs:
        results = by_title(qase_server, run_id)
        assert len(results) == TOTAL
        assert qase_server.run(run_id)["completed"]
        seen.append(sorted((r["signature"], r["title"], r["execution"]["status"],
                            json.dumps(r["relations"], sort_keys=True))
                           for r in results.values()))
    assert seen[0] == seen[1] == seen[2]
    assert {r["execution"]["thread"] for r in qase_server.results(1)} == {"main"}
    assert list(sessions_dir(tmp_path).glob("*")) == [] or not sessions_dir(
        pytester.path.parent).exists()


def test_loadgroup_suffix_is_not_part_of_the_test():
    """xdist appends ``@group`` to node ids under loadgroup (not every xdist/pytest pair does,
    so the integration tests above may not see it): Qase must get the plain node id."""
    loadgroup = SimpleNamespace(option=SimpleNamespace(dist="loadgroup"))
    other = SimpleNamespace(option=SimpleNamespace(dist="load"))
    assert plain_nodeid("t.py::T::test_a[0]@a", loadgroup) == "t.py::T::test_a[0]"
    assert plain_nodeid("t.py::test_b@db_io", loadgroup) == "t.py::test_b"
    assert plain_nodeid("t.py::test_mail[a@b.c]", loadgroup) == "t.py::test_mail[a@b.c]"
    assert plain_nodeid("t.py::test_mail[a@b.c]@g", loadgroup) == "t.py::test_mail[a@b.c]"
    assert plain_nodeid("t.py::test_b@x", other) == "t.py::test_b@x"


def test_local_report_with_workers(pytester):
    pytester.makepyfile(test_many=MANY)
    run(pytester, None, "-n", "2")
    run_data, results = load_report(pytester.path / "qase-report")
    assert run_data["stats"]["total"] == 41 == len(results)
    assert run_data["stats"]["failed"] == 3 and run_data["stats"]["skipped"] == 1
    assert sorted(run_data["threads"]) == ["gw0", "gw1"]


# -- a worker that dies ---------------------------------------------------------------------

DIES = {
    "exit": "os._exit(3)",
    "kill": "os.kill(os.getpid(), signal.SIGKILL)",
    "segfault": "ctypes.string_at(0)",
}


@pytest.mark.parametrize("how", sorted(DIES))
def test_worker_that_dies_loses_nothing(pytester, qase_server, monkeypatch, how):
    """Its undelivered results come from its spool; its test fails; a new worker takes over."""
    pytester.makepyfile(test_crash=f"""
        import ctypes, os, signal
        import pytest

        @pytest.mark.parametrize("n", range(20))
        def test_before(n):
            pass

        def test_dies():
            {DIES[how]}

        @pytest.mark.parametrize("n", range(20))
        def test_zafter(n):
            pass
    """)
    # nothing is sent before the end: the dead worker's results exist only in its spool
    point_at(monkeypatch, qase_server, QASE_BATCH_SIZE="1000")
    result = run(pytester, qase_server, "-n", "2", "--max-worker-restart=2",
                 "-p", "no:faulthandler")
    lines = qase_lines(result)
    results = assert_one_completed_run(qase_server, lines, 41)
    crashed = results["test_dies"]
    assert crashed["execution"]["status"] == "failed"
    assert "crashed while running 'test_crash.py::test_dies'" in crashed["message"]
    assert all(r["execution"]["status"] == "passed" for t, r in results.items()
               if t != "test_dies")
    assert "replacing crashed worker" in result.stdout.str()
    assert any("were delivered from their spool files" in line for line in lines), lines


def test_worker_that_dies_keeps_results_still_waiting_for_their_files(pytester, qase_server,
                                                                      monkeypatch):
    """Attachment uploads are slow; the worker dies right after tests that attached files:
    their results are in its spool all the same, with their files."""
    qase_server.inject(method="POST", path=r"/v1/attachment/", status=None, times=None,
                       delay=0.5)
    pytester.makepyfile(test_files="""
        import os
        from pytest_qase import qase

        def test_a():
            qase.attach(content=b"shot a", filename="a.png")

        def test_b():
            qase.attach(content=b"shot b", filename="b.png")

        def test_c_dies():
            os._exit(1)

        def test_d():
            pass
    """)
    point_at(monkeypatch, qase_server, QASE_BATCH_SIZE="1000")
    result = run(pytester, qase_server, "-n", "1", "-p", "no:randomly")
    [run_id] = qase_server.runs
    results = by_title(qase_server, run_id)  # asserts no test twice
    assert sorted(results) == ["test_a", "test_b", "test_c_dies", "test_d"]
    assert qase_server.run(run_id)["completed"]
    assert any(line.startswith("qase: 4 results -> run") for line in qase_lines(result))
    assert results["test_c_dies"]["execution"]["status"] == "failed"
    assert len(results["test_a"]["attachments"]) == len(results["test_b"]["attachments"]) == 1


def test_worker_restarts_disabled(pytester, qase_server, monkeypatch):
    """``--max-worker-restart=0``: the session ends early; what ran is delivered, once."""
    pytester.makepyfile(test_crash="""
        import os
        import pytest

        @pytest.mark.parametrize("n", range(10))
        def test_before(n):
            pass

        def test_dies():
            os._exit(3)
    """)
    point_at(monkeypatch, qase_server, QASE_BATCH_SIZE="1000")
    result = run(pytester, qase_server, "-n", "2", "--max-worker-restart=0")
    assert "worker restarting disabled" in result.stdout.str()
    [run_id] = qase_server.runs
    results = by_title(qase_server, run_id)
    assert results["test_dies"]["execution"]["status"] == "failed"
    assert set(results) <= {"test_dies"} | {f'test_before{{"n": "{n}"}}' for n in range(10)}
    assert qase_server.run(run_id)["completed"]
    assert_clean(qase_server)


# -- interrupted sessions -------------------------------------------------------------------


@pytest.mark.parametrize("mode", [("-n", "2"), ("-p", "no:xdist")])
def test_keyboard_interrupt_in_a_test(pytester, qase_server, monkeypatch, mode):
    """A test raising KeyboardInterrupt: one result for it (skipped), the rest delivered."""
    pytester.makepyfile(test_stop="""
        import pytest

        @pytest.mark.parametrize("n", range(30))
        def test_before(n):
            pass

        def test_interrupts():
            raise KeyboardInterrupt

        @pytest.mark.parametrize("n", range(30))
        def test_zafter(n):
            pass
    """)
    point_at(monkeypatch, qase_server)
    # in-process, pytester passes a KeyboardInterrupt on to the outer session
    result = run(pytester, qase_server, *mode, "--junitxml=junit.xml", subprocess=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    [run_id] = qase_server.runs
    results = by_title(qase_server, run_id)  # asserts no test twice
    stopped = results["test_interrupts"]
    assert stopped["execution"]["status"] == "skipped"
    assert stopped["message"] == "not run: the session was interrupted (KeyboardInterrupt)"
    reported = junit_statuses(pytester.path / "junit.xml")
    stored = qase_statuses(qase_server, run_id)
    assert {k: v for k, v in stored.items() if k != "test_interrupts"} == {
        k: v for k, v in reported.items() if k != "test_interrupts"}
    assert qase_server.run(run_id)["completed"]
    assert_clean(qase_server)
    assert any("pytest stopped early (" in line for line in qase_lines(result))


def test_ctrl_c_to_the_process_group(pytester, qase_server, monkeypatch, tmp_path):
    """A real SIGINT to the controller and its workers, as a terminal's Ctrl-C sends it."""
    pytester.makepyfile(test_slow="""
        import pathlib, time
        import pytest

        @pytest.mark.parametrize("n", range(80))
        def test_slow(n):
            if n == 10:
                pathlib.Path("started").touch()
            time.sleep(0.05)
    """)
    point_at(monkeypatch, qase_server)
    process = start(pytester, qase_server, "-n", "2", "--junitxml=junit.xml",
                    new_session=True)
    deadline = time.monotonic() + 60
    while not (pytester.path / "started").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "the suite never started"
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGINT)
    code, lines = finished(process, pytester)
    assert code == pytest.ExitCode.INTERRUPTED, lines[-30:]
    [run_id] = qase_server.runs
    reported = junit_statuses(pytester.path / "junit.xml")
    stored = qase_statuses(qase_server, run_id)  # asserts no test twice
    assert 10 < len(stored) < 80
    # every test pytest saw pass is in Qase as passed; the ones cut short are "skipped"
    missing = [name for name, status in reported.items()
               if status == "passed" and stored.get(name) != "passed"]
    assert missing == [], (missing, {k: stored.get(k) for k in missing}, lines[-40:])
    assert set(stored.values()) <= {"passed", "skipped"}
    assert qase_server.run(run_id)["completed"]
    assert_clean(qase_server)
    qase = [line for line in lines if line.startswith("qase:")]
    assert any("pytest stopped early (" in line for line in qase), qase
    assert any(f"qase: {len(stored)} results -> run {run_id}" in line for line in qase), qase
    assert list(sessions_dir(tmp_path).iterdir()) == []


@pytest.mark.parametrize("option", ["-x", "--maxfail=2"])
def test_stop_after_failures(pytester, qase_server, monkeypatch, option):
    pytester.makepyfile(test_fails="""
        import time
        import pytest

        @pytest.mark.parametrize("n", range(60))
        def test_fails(n):
            time.sleep(0.01)
            assert n % 7 != 3
    """)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "-n", "2", option, "--junitxml=junit.xml")
    assert result.ret in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED)
    [run_id] = qase_server.runs
    stored = qase_statuses(qase_server, run_id)
    assert stored == junit_statuses(pytester.path / "junit.xml")
    assert len(stored) < 60 and "failed" in stored.values()
    assert qase_server.run(run_id)["completed"]
    assert_clean(qase_server)
    assert any("pytest stopped early (stopping after" in line for line in qase_lines(result))


# -- sessions side by side --------------------------------------------------------------------


def test_concurrent_sessions_do_not_share_a_run(pytester, qase_server, monkeypatch, tmp_path):
    pytester.makepyfile(test_many=MANY, test_grouped=GROUPED)
    point_at(monkeypatch, qase_server, QASE_BATCH_SIZE="5")
    first = start(pytester, qase_server, "-n", "2", log="first.log")
    second = start(pytester, qase_server, "-n", "2", log="second.log")
    outputs = [finished(first, pytester, "first.log")[1],
               finished(second, pytester, "second.log")[1]]
    assert sorted(qase_server.runs) == [1, 2]
    for run_id in qase_server.runs:
        assert len(by_title(qase_server, run_id)) == TOTAL
        stored = qase_server.run(run_id)
        assert stored["completed"] and stored["completed_order"] > stored["last_result_order"]
    assert_clean(qase_server)
    named = sorted(next(line for line in lines if " results -> run " in line).split()[5]
                   for lines in outputs)
    assert named == ["1", "2"]
    assert not any(sessions_dir(tmp_path).iterdir())


def test_session_dir_is_named_after_testrunuid_and_never_reused(pytester, qase_server,
                                                                monkeypatch, tmp_path):
    """A repeated ``--testrunuid`` gets a fresh directory: an earlier session's spool stays."""
    stale_dir = sessions_dir(tmp_path) / "fixed"
    stale_dir.mkdir(parents=True)
    stale = stale_dir / "gw0-1.jsonl"
    stale.write_text(json.dumps({"spool": 1, "url": qase_server.url, "project": "DEMO",
                                 "run_id": 77}) + "\n" + json.dumps(
        {"result": {"id": "0" * 32, "title": "old"}}) + "\n", encoding="utf-8")
    before = stale.read_bytes()
    pytester.makepyfile(test_uid="""
        import os, pathlib

        def test_uid():
            pathlib.Path("uid").write_text(os.environ["PYTEST_XDIST_TESTRUNUID"])
    """)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "-n", "2", "--testrunuid=fixed")
    assert not any("not delivered" in line for line in qase_lines(result)), qase_lines(result)
    assert qase_server.run(1)["completed"] and len(by_title(qase_server, 1)) == 1
    assert stale.read_bytes() == before
    assert [p.name for p in sessions_dir(tmp_path).iterdir()] == ["fixed"]

    # without --testrunuid the plugin picks the id and xdist's workers get the same one;
    # a refused upload keeps the spool there, named in the summary
    qase_server.inject("POST", "/results", status=401, times=None)
    result = run(pytester, qase_server, "-n", "2")
    uid = (pytester.path / "uid").read_text()
    assert uid != "fixed"
    hint = [line for line in qase_lines(result) if "deliver them later" in line]
    assert hint and all(f"/sessions/{uid}/gw" in line for line in hint), qase_lines(result)


def test_a_workers_own_errors_reach_the_controller(pytester, qase_server, monkeypatch):
    """A result a worker could not record is named in the summary, keeps the run open and,
    in strict mode, fails the session; without strict mode the exit code stays pytest's."""
    pytester.makepyfile(test_many=MANY.replace("n % 17 != 5", "True"))  # every test passes
    pytester.makeconftest("""
        def pytest_qase_result(item, result):
            if item.name == "test_many[3]":
                raise RuntimeError("a broken result hook")
    """)
    point_at(monkeypatch, qase_server)
    for strict, expected in (((), pytest.ExitCode.OK),
                             (("--qase-strict",), pytest.ExitCode.TESTS_FAILED)):
        result = run(pytester, qase_server, "-n", "2", *strict)
        assert result.ret == expected
        lines = qase_lines(result)
        assert [line for line in lines if line.startswith("qase: error:")] == [
            "qase: error: could not record test_many.py::test_many[3]: RuntimeError: a broken "
            "result hook"], lines
        assert not any(line.endswith("(completed)") for line in lines), lines
    assert len(qase_server.runs) == 2
    assert not any(qase_server.run(run_id)["completed"] for run_id in qase_server.runs)


def test_a_result_a_worker_could_not_process_keeps_the_run_open(pytester, qase_server,
                                                                monkeypatch):
    """It is in no spool, so the controller's recovery must not count it as delivered."""
    pytester.makepyfile(test_many=MANY)
    pytester.makeconftest("""
        def pytest_qase_result(item, result):
            if item.name == "test_many[3]":
                result.start_time = "yesterday"
    """)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "-n", "2")
    lines = qase_lines(result)
    assert any(line.startswith("qase: 1 of 41 results were not delivered: could not process "
                               "the result of test_many.py::test_many[3]") for line in lines), lines
    assert not any(line.endswith("(completed)") for line in lines), lines
    assert len(qase_server.results()) == 40
