"""CI shards: ``run create``, separate pytest processes into that run, ``run complete``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support import assert_clean, by_title, clean_environment, finished, point_at, run, start

from pytest_qase import cli
from pytest_qase.ratelimit import RESERVE, state_name


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")


def qase_cli(server, *args: str) -> subprocess.CompletedProcess:
    """``python -m pytest_qase`` in its own process, trusting the server's CA."""
    return subprocess.run([sys.executable, "-m", "pytest_qase", *args,
                           f"--qase-ca-bundle={server.ca_path}"],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


def shard_suite(index: int) -> str:
    return f"""
import pytest

@pytest.mark.parametrize("n", range(15))
def test_shard_{index}(n):
    assert n != 7 or {index} != 1
"""


def test_three_shards_report_into_one_run(pytester, qase_server, monkeypatch, tmp_path):
    point_at(monkeypatch, qase_server, QASE_RUN_DESCRIPTION="nightly, 3 shards",
             QASE_BATCH_SIZE="4")
    created = qase_cli(qase_server, "run", "create", "--qase-run-title=shards of 3")
    assert created.returncode == 0, created.stderr
    assert created.stdout == "1\n"  # only the id: QASE_RUN_ID=$(python -m pytest_qase ...)
    assert "created run 1 (DEMO)" in created.stderr
    assert qase_server.token not in created.stdout + created.stderr
    body = qase_server.run(1)["body"]
    assert body == {"title": "shards of 3", "is_autotest": True,
                    "description": "nightly, 3 shards"}

    pytester.makepyfile(**{f"test_shard_{i}": shard_suite(i) for i in range(3)})
    shards = [start(pytester, qase_server, "--qase-run-id=1", f"test_shard_{i}.py",
                    *(["-n", "2"] if i == 1 else []), log=f"shard{i}.log") for i in range(3)]
    outputs = [finished(process, pytester, f"shard{i}.log") for i, process in enumerate(shards)]
    assert [code for code, _ in outputs] == [0, 1, 0]
    for _, lines in outputs:
        summary = [line for line in lines if " results -> run 1 (DEMO)" in line]
        assert len(summary) == 1 and not summary[0].endswith("(completed)"), lines[-10:]
        assert "qase: run 1 is left open (this session did not create it); close it with: " \
            "python -m pytest_qase run complete 1 --qase-project=DEMO" in lines

    assert list(qase_server.runs) == [1]  # no shard created a run
    stored = qase_server.run(1)
    assert not stored["completed"] and stored["complete_calls"] == 0  # nor completed it
    results = by_title(qase_server, 1)
    assert len(results) == 45
    assert [t for t, r in results.items() if r["execution"]["status"] == "failed"] == [
        'test_shard_1{"n": "7"}']
    assert {r["execution"]["thread"] for t, r in results.items()
            if t.startswith("test_shard_1")} == {"gw0", "gw1"}
    # every process (the CLI, three shards, two workers) took its slots from one budget;
    # one may have taken a few more than it used (slots taken ahead count too)
    guard = tmp_path / "tmp" / f"pytest-qase-{os.getuid()}" / (
        state_name(qase_server.url, qase_server.token) + ".json")
    slots = len(json.loads(guard.read_text())["sent"])
    processes = 6  # the CLI, shards 0 and 2, shard 1's controller and its two workers
    assert len(qase_server.requests) <= slots <= len(qase_server.requests) + (
        RESERVE - 1) * processes

    completed = qase_cli(qase_server, "run", "complete", "1")
    assert completed.returncode == 0, completed.stderr
    assert "run 1 (DEMO) completed" in completed.stderr
    stored = qase_server.run(1)
    assert stored["completed"] and stored["completed_order"] > stored["last_result_order"]
    assert_clean(qase_server)

    # the plugin's own run creation sends the same body for the same settings
    run(pytester, qase_server, "--qase-run-title=shards of 3", "test_shard_0.py")
    assert qase_server.run(2)["body"] == body


def test_run_commands_say_what_is_wrong(qase_server, monkeypatch, capsys):
    point_at(monkeypatch, qase_server)
    monkeypatch.delenv("QASE_PROJECT")
    ca = f"--qase-ca-bundle={qase_server.ca_path}"
    assert cli.main(["run", "create", ca]) == 2
    assert capsys.readouterr().err.strip() == (
        "qase: error: no project: pass --qase-project CODE or set QASE_PROJECT")
    assert cli.main(["run", "complete", "99", "--qase-project=DEMO", ca]) == 1
    err = capsys.readouterr().err
    assert err.startswith("qase: error: not found (404) when trying to complete run 99 of DEMO")
    assert qase_server.token not in err
    monkeypatch.delenv("QASE_API_TOKEN")
    assert cli.main(["run", "create", "--qase-project=DEMO", ca]) == 2
    assert "QASE_API_TOKEN" in capsys.readouterr().err
    assert qase_server.runs == {}


def test_a_bad_setting_the_command_does_not_need_stops_nothing(qase_server, monkeypatch,
                                                               capsys):
    """A CI job's environment is shared by its steps: a bad QASE_XFAIL_STATUS (a pytest
    setting) is named, and the run is still created; a bad QASE_URL stops the command."""
    point_at(monkeypatch, qase_server, QASE_XFAIL_STATUS="bogus")
    ca = f"--qase-ca-bundle={qase_server.ca_path}"
    assert cli.main(["run", "create", ca]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "1"
    assert "qase: error: xfail status from $QASE_XFAIL_STATUS" in captured.err
    monkeypatch.setenv("QASE_URL", "http://insecure.example")
    assert cli.main(["run", "complete", "1", ca]) == 2
    assert "qase: error: url from $QASE_URL" in capsys.readouterr().err
    assert not qase_server.run(1)["completed"]
