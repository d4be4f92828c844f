"""The fault matrix: every cell delivers each result exactly once (now or through ``upload``),
never changes pytest's exit code, ends in bounded time and never shows the token."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from qase_server import QaseServer
from support import by_title, clean_environment, point_at, qase_lines, run

SUITE = """
import pytest
@pytest.mark.parametrize("n", range(25))
def test_n(n):
    assert n != 3
"""


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_suite=SUITE)


def _run(pytester, server, monkeypatch, **env: str) -> tuple[pytest.RunResult, float]:
    point_at(monkeypatch, server, QASE_BATCH_SIZE="10", **env)
    started = time.monotonic()
    result = run(pytester, server)
    elapsed = time.monotonic() - started
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # test_n[3] fails; nothing else counts
    assert server.token not in result.stdout.str() + result.stderr.str()
    return result, elapsed


def _delivered_once(server: QaseServer) -> None:
    results = by_title(server)
    assert len(results) == 25
    assert [r["params"]["n"] for r in results.values()
            if r["execution"]["status"] == "failed"] == ["3"]
    assert server.validation_errors == []


def _upload(pytester, server: QaseServer, path: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **server.env(), "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "pytest_qase", "upload", path,
                           f"--qase-ca-bundle={server.ca_path}", *extra],
                          env=env, capture_output=True, text=True, timeout=120,
                          cwd=str(pytester.path))


def _spool_path(result: pytest.RunResult) -> str:
    [line] = [x for x in qase_lines(result) if "python -m pytest_qase upload" in x]
    return line.split("upload ", 1)[1]


def test_5xx_burst_is_retried(pytester, qase_server, monkeypatch):
    qase_server.inject(path=r"/results$", status=503, times=3)
    qase_server.inject(path=r"/results$", status=500, times=1)
    result, _ = _run(pytester, qase_server, monkeypatch)
    _delivered_once(qase_server)
    assert qase_server.run(1)["completed"]
    assert "were not delivered" not in "\n".join(qase_lines(result))


def test_html_502_from_a_proxy_is_retried(pytester, qase_server, monkeypatch):
    qase_server.inject(path=r"/results$", status=502, times=2,
                       body="<html><body><h1>502 Bad Gateway</h1></body></html>")
    _run(pytester, qase_server, monkeypatch)
    _delivered_once(qase_server)


def test_answer_lost_after_the_write_creates_no_duplicate(pytester, qase_server, monkeypatch):
    fault = qase_server.inject(path=r"/results$", status=None, apply_first=True, drop=True,
                               times=2)
    _run(pytester, qase_server, monkeypatch)
    _delivered_once(qase_server)
    assert fault.hits == 2
    assert qase_server.duplicates_ignored >= 10  # the resends reused the idempotency ids


def test_stall_past_the_timeout_is_retried(pytester, qase_server, monkeypatch):
    qase_server.inject(path=r"/results$", status=None, delay=4.0, times=1)
    _, elapsed = _run(pytester, qase_server, monkeypatch, QASE_TIMEOUT="1")
    _delivered_once(qase_server)
    assert elapsed < 60


def test_server_down_for_the_session_then_upload(pytester, qase_server, monkeypatch):
    # the run exists, then the server stops answering results for the whole session
    qase_server.inject(path=r"/results$", status=503, drop=True, times=None)
    result, elapsed = _run(pytester, qase_server, monkeypatch, QASE_MAX_WAIT="4")
    assert qase_server.results() == []
    assert elapsed < 90
    text = "\n".join(qase_lines(result))
    assert "25 of 25 results were not delivered" in text
    assert not qase_server.run(1)["completed"]
    path = _spool_path(result)
    copy = pytester.path / "spool-copy.jsonl"  # as if the first upload died before its acks
    copy.write_bytes(open(path, "rb").read())
    qase_server.clear_faults()
    first = _upload(pytester, qase_server, path)
    assert first.returncode == 0, first.stderr
    assert "qase: 25 results delivered" in first.stderr
    assert not os.path.exists(path)  # fully delivered: the spool is removed
    _delivered_once(qase_server)
    second = _upload(pytester, qase_server, str(copy), "--complete-run")
    assert second.returncode == 0, second.stderr
    assert len(qase_server.results()) == 25  # the same ids again: nothing created twice
    assert qase_server.duplicates_ignored == 25
    assert qase_server.run(1)["completed"]
    assert qase_server.token not in first.stdout + first.stderr


def test_token_revoked_mid_run_stops_sending(pytester, qase_server, monkeypatch):
    qase_server.inject(path=r"/results$", status=401, times=None,
                       body={"status": False, "errorMessage": "Unauthorized"})
    result, _ = _run(pytester, qase_server, monkeypatch)
    bulk = qase_server.results_requests()
    assert len(bulk) == 1  # no retry storm
    text = "\n".join(qase_lines(result))
    assert "the API token was rejected (401)" in text
    assert "25 of 25 results were not delivered" in text and "pytest_qase upload" in text


def test_one_invalid_result_is_isolated_and_named(pytester, qase_server, monkeypatch):
    pytester.makeconftest("""
        def pytest_qase_result(item, result):
            if item.name == "test_n[7]":
                result.fields = {"severity": 5}  # not a string: the API refuses it
    """)
    result, _ = _run(pytester, qase_server, monkeypatch)
    results = by_title(qase_server)
    assert len(results) == 24 and "7" not in {r["params"]["n"] for r in results.values()}
    text = "\n".join(qase_lines(result))
    assert "1 of 25 results were not delivered" in text
    assert "fields.severity" in text or "severity" in text
    assert not qase_server.run(1)["completed"]


def test_redirect_to_another_host_is_not_followed(pytester, qase_server, monkeypatch):
    qase_server.inject(method=None, path=r"/v1/project", redirect_to="https://127.0.0.2:9/x",
                       times=None)
    result, _ = _run(pytester, qase_server, monkeypatch)
    text = "\n".join(qase_lines(result))
    assert "redirects are not followed so the token cannot leak" in text
    assert (pytester.path / "qase-report" / "run.json").exists()  # nothing lost


def test_plugin_traffic_is_immune_to_tests_that_patch_requests(pytester, qase_server,
                                                               monkeypatch):
    pytester.makepyfile(test_suite=SUITE + """
from unittest import mock
import requests
import requests.adapters

@pytest.fixture(autouse=True)
def broken_network():
    def refuse(*args, **kwargs):
        raise requests.exceptions.ConnectionError("patched by the test")
    with mock.patch.object(requests.adapters.HTTPAdapter, "send", refuse), \\
            mock.patch.object(requests.Session, "get_adapter", refuse):
        yield
""")
    _run(pytester, qase_server, monkeypatch)
    _delivered_once(qase_server)


def test_exit_code_of_a_passing_session_is_unchanged_by_failures(pytester, qase_server,
                                                                 monkeypatch):
    pytester.makepyfile(test_suite="def test_ok():\n    pass\n")
    qase_server.inject(method=None, path=".*", status=500, times=None)
    point_at(monkeypatch, qase_server, QASE_MAX_WAIT="2")
    assert run(pytester, qase_server).ret == 0
    assert run(pytester, qase_server, "--qase-strict").ret == pytest.ExitCode.TESTS_FAILED
