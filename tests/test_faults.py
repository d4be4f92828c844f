"""The fault matrix: every cell delivers each result exactly once (now or through ``upload``),
never changes pytest's exit code, ends in bounded time and never shows the token."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from qase_server import QaseServer
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


def _run(pytester, server, monkeypatch, *args: str, subprocess: bool = False,
         **env: str) -> tuple[pytest.RunResult, float]:
    point_at(monkeypatch, server, QASE_BATCH_SIZE="10", **env)
    started = time.monotonic()
    result = run(pytester, server, *args, subprocess=subprocess)
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


def _cli(pytester, server: QaseServer, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **server.env(), "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "pytest_qase", *args,
                           f"--qase-ca-bundle={server.ca_path}"],
                          env=env, capture_output=True, text=True, timeout=120,
                          cwd=str(pytester.path))


def _upload(pytester, server: QaseServer, path: str, *extra: str) -> subprocess.CompletedProcess:
    return _cli(pytester, server, "upload", path, *extra)


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


def test_upload_of_a_file_that_is_not_a_spool_leaves_it_alone(pytester, qase_server):
    """Naming the wrong file (a report's run.json) is an error; the file is not removed."""
    wrong = pytester.path / "run.json"
    wrong.write_text('{"title": "a report, not a spool"}\n')
    done = _upload(pytester, qase_server, str(wrong))
    assert done.returncode == 1
    assert f"qase: error: {wrong} is not a spool file of pytest-qase" in done.stderr
    assert wrong.exists() and qase_server.requests == []


def test_token_revoked_mid_run_stops_sending(pytester, qase_server, monkeypatch):
    qase_server.inject(path=r"/results$", status=401, times=None,
                       body={"status": False, "errorMessage": "Unauthorized"})
    result, _ = _run(pytester, qase_server, monkeypatch)
    bulk = qase_server.results_requests()
    assert len(bulk) == 1  # no retry storm
    text = "\n".join(qase_lines(result))
    assert "the API token was rejected (401)" in text
    assert "25 of 25 results were not delivered" in text and "pytest_qase upload" in text


def test_without_the_terminal_plugin_the_summary_goes_to_stderr(pytester, qase_server,
                                                                monkeypatch):
    """``-p no:terminal`` calls no terminal-summary hook: what went wrong is still said, on
    stderr (with strict mode, it is the reason for the exit code)."""
    qase_server.inject(path=r"/results$", status=401, times=None,
                       body={"status": False, "errorMessage": "Unauthorized"})
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "-p", "no:terminal")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    errors = [line for line in result.errlines if line.startswith("qase:")]
    assert any("25 of 25 results were not delivered" in line for line in errors), errors
    assert any("the API token was rejected (401)" in line for line in errors), errors
    assert qase_server.token not in result.stdout.str() + result.stderr.str()


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


# ----------------------------------------------------------------------------- refusals

# Injects a fault (JSON in $FAULT) through the server's control endpoint once the first
# batch of 10 results is stored, so the refusal comes in the middle of the session.
MID_SESSION = """
import json, os, ssl, time, urllib.request
import pytest

def _control(method, path, body=None):
    context = ssl.create_default_context(cafile=os.environ["FAULT_CA"])
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(os.environ["QASE_URL"] + path, data=data, method=method)
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        return json.load(answer)

@pytest.fixture(autouse=True)
def _fault_after_the_first_batch(request):
    if request.node.name == "test_n[12]":
        deadline = time.monotonic() + 20
        while _control("GET", "/_test/stats")["results"] < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        _control("POST", "/_test/inject", json.loads(os.environ["FAULT"]))
"""


def _mid_session(pytester, server: QaseServer, monkeypatch, **fault) -> pytest.RunResult:
    pytester.makeconftest(MID_SESSION)
    monkeypatch.setenv("FAULT_CA", server.ca_path)
    monkeypatch.setenv("FAULT", json.dumps({"path": r"/results$", "times": None, **fault}))
    result, _ = _run(pytester, server, monkeypatch, QASE_MAX_WAIT="4")
    assert len(server.results()) == 10  # the batch before the fault, and nothing after it
    return result


def _kept(result: pytest.RunResult, missing: int, reason: str) -> str:
    """The summary names the refusal once and the spool to upload; returns the spool path."""
    lines = qase_lines(result)
    assert [x for x in lines if "were not delivered" in x] == [
        f"qase: {missing} of 25 results were not delivered: {reason}"]
    path = _spool_path(result)
    assert os.path.isfile(path)
    return path


def _upload_later(pytester, server: QaseServer, path: str, missing: int) -> None:
    """Once the cause is gone, ``upload`` delivers exactly the results the session kept."""
    server.clear_faults()
    done = _upload(pytester, server, path)
    assert done.returncode == 0, done.stderr
    assert f"qase: {missing} results delivered" in done.stderr
    assert server.token not in done.stdout + done.stderr
    assert not os.path.exists(path)
    _delivered_once(server)




def test_read_only_token_403_names_the_missing_permission(pytester, qase_server, monkeypatch):
    created = _cli(pytester, qase_server, "run", "create")  # a CI job with a full token
    assert created.returncode == 0, created.stderr
    qase_server.configure(read_only_token="read-only-token-456")
    result, _ = _run(pytester, qase_server, monkeypatch, QASE_RUN_ID=created.stdout.strip(),
                     QASE_API_TOKEN="read-only-token-456")
    assert "read-only-token-456" not in result.stdout.str() + result.stderr.str()
    assert len(qase_server.results_requests()) == 1  # refused once: no retry storm
    path = _kept(result, 25, (
        "the token may not send results to run 1 of DEMO (403): Forbidden: the token is "
        "read-only; its user lacks the permission to add results to test runs: grant it to "
        "the user's role in Qase (a read-only license never has it), or use a token that has "
        "it"))
    _upload_later(pytester, qase_server, path, 25)


def test_read_only_token_cannot_create_the_run(pytester, qase_server, monkeypatch):
    qase_server.configure(read_only_token="read-only-token-456")
    result, _ = _run(pytester, qase_server, monkeypatch, QASE_API_TOKEN="read-only-token-456")
    assert qase_server.runs == {}
    _local_report_instead(pytester, result, (
        "the token may not create a run in project DEMO (403): Forbidden: the token is "
        "read-only; its user lacks the permission to create test runs: grant it to the user's "
        "role in Qase (a read-only license never has it), or use a token that has it"))


def test_unknown_project_at_the_start(pytester, qase_server, monkeypatch):
    result, _ = _run(pytester, qase_server, monkeypatch, QASE_PROJECT="NOPE")
    assert qase_server.runs == {}
    _local_report_instead(pytester, result, (
        "not found (404) when trying to read project NOPE: Project is not found; check the "
        "project code NOPE (qase_project) and that the token's user is a member of the "
        "project"))


def _local_report_instead(pytester, result: pytest.RunResult, reason: str) -> None:
    """A refusal at the start: one error line, and every result in the local report."""
    report = pytester.path / "qase-report"
    assert qase_lines(result) == [
        f"qase: error: {reason}; the local report is written instead",
        f"qase: local report with 25 results written to {report}"]
    _, results = load_report(report)
    assert sorted(r["params"]["n"] for r in results) == sorted(str(n) for n in range(25))


@pytest.mark.parametrize("status, message, meaning", [
    (404, "Run not found.", "not found (404) when trying to send results to run 1 of DEMO: "
     "Run not found; run 1 is not in project DEMO: it was deleted, or the run id (QASE_RUN_ID) "
     "or the project code is wrong"),
    (410, "Run was deleted.", "gone (410) when trying to send results to run 1 of DEMO: Run "
     "was deleted; the run or project was deleted in Qase"),
])
def test_run_gone_mid_session(pytester, qase_server, monkeypatch, status, message, meaning):
    result = _mid_session(pytester, qase_server, monkeypatch, status=status,
                          body={"status": False, "errorMessage": message})
    path = _kept(result, 15, meaning)
    assert len(qase_server.results_requests()) == 2  # the refusal stopped the sending
    _upload_later(pytester, qase_server, path, 15)


@pytest.mark.parametrize("body, meaning", [
    (None, "the server does not allow the request to send results to run 1 of DEMO (405): "
     "Method Not Allowed; check that qase_url points at the Qase API (https://api.qase.io for "
     "Qase cloud)"),
    ("<html><head><title>405 Not Allowed</title></head><body>nginx</body></html>",
     'the server answered 405 when trying to send results to run 1 of DEMO, but not as the '
     'Qase API answers (text/html: "405 Not Allowed"): check qase_url and any proxy in '
     'between'),
])
def test_405_stops_sending_and_keeps_the_results(pytester, qase_server, monkeypatch, body,
                                                  meaning):
    qase_server.inject(path=r"/results$", status=405, times=None, body=body)
    result, _ = _run(pytester, qase_server, monkeypatch)
    path = _kept(result, 25, meaning)
    assert len(qase_server.results_requests()) == 1
    _upload_later(pytester, qase_server, path, 25)


@pytest.mark.parametrize("status, phrase", [(500, "Internal Server Error"),
                                            (503, "Service Unavailable")])
def test_5xx_that_never_ends_is_kept_on_disk(pytester, qase_server, monkeypatch, status,
                                              phrase):
    qase_server.inject(path=r"/results$", status=status, times=None)
    result, elapsed = _run(pytester, qase_server, monkeypatch, QASE_MAX_WAIT="3")
    assert elapsed < 60
    path = _kept(result, 25, f"Qase answered {status} when trying to send results to run 1 of "
                             f"DEMO: {phrase}")
    assert not qase_server.run(1)["completed"]
    _upload_later(pytester, qase_server, path, 25)


@pytest.mark.parametrize("body, page", [
    ("Bad Request", 'text/plain: "Bad Request"'),
    ("<html><title>400 Bad Request</title><body><h1>400</h1></body></html>",
     'text/html: "400 Bad Request"'),
    (b"\xff\x00\x1b[31m", "application/octet-stream"),
])
def test_400_whose_body_is_not_json(pytester, qase_server, monkeypatch, body, page):
    qase_server.inject(path=r"/results$", status=400, times=None, body=body)
    result, _ = _run(pytester, qase_server, monkeypatch)
    path = _kept(result, 25, f"the server answered 400 when trying to send results to run 1 of "
                             f"DEMO, but not as the Qase API answers ({page}): check qase_url "
                             f"and any proxy in between")
    assert len(qase_server.results_requests()) == 1
    _upload_later(pytester, qase_server, path, 25)


def test_200_page_from_a_captive_portal_is_not_taken_as_delivered(pytester, qase_server,
                                                                  monkeypatch):
    qase_server.inject(path=r"/results$", status=200, times=None,
                       body="<html><title>Wi-Fi login</title></html>")
    result, _ = _run(pytester, qase_server, monkeypatch)
    path = _kept(result, 25, 'the server answered 200 when trying to send results to run 1 of '
                             'DEMO, but not as the Qase API answers (text/html: "Wi-Fi login"): '
                             'check qase_url and any proxy in between')
    assert not qase_server.run(1)["completed"]
    _upload_later(pytester, qase_server, path, 25)


# ----------------------------------------------------------------------------- tests that patch

# Every test in it runs with the patch of a library that fakes or blocks the network. The
# last one waits (boundedly) for the outer test to see the first two batches in Qase: they
# must get through while the patches are active, not only once the session is over. The
# server drops the connection after the first batch, so a new one has to be opened then.
PATCHED = """
import os, time
import pytest
{head}

def _first_batches_delivered():
    for _ in range(750):
        if os.path.exists({marker!r}):
            return True
        time.sleep(0.02)
    return False

@pytest.mark.parametrize("n", range(25))
{decorator}def test_n(n{fixtures}):
    {body}
    if n == 24:
        assert _first_batches_delivered()
    assert n != 3
"""

RESPONSES = "import requests\nimport responses"
PING = 'requests.get("https://api.example.test/ping").json() == {"ok": True}'
PATCHES = {
    "responses-decorator": dict(
        head=RESPONSES, decorator="@responses.activate\n",
        body=f'responses.get("https://api.example.test/ping", json={{"ok": True}})\n'
             f'    assert {PING}'),
    "responses-whole-module": dict(head=RESPONSES + """
@pytest.fixture(autouse=True, scope="module")
def _everything_mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.get("https://api.example.test/ping", json={"ok": True})
        yield
""", body=f"assert {PING}"),
    "requests-mock-fixture": dict(
        head="import requests", fixtures=", requests_mock",
        body=f'requests_mock.get("https://api.example.test/ping", json={{"ok": True}})\n'
             f'    assert {PING}'),
    "requests-mock-whole-module": dict(head="""
import requests
import requests_mock

@pytest.fixture(autouse=True, scope="module")
def _everything_mocked():
    with requests_mock.Mocker() as mocked:
        mocked.get("https://api.example.test/ping", json={"ok": True})
        yield
""", body=f"assert {PING}"),
    "pytest-socket-disable-socket": dict(
        head="import socket\nfrom pytest_socket import SocketBlockedError",
        body="with pytest.raises(SocketBlockedError):\n        socket.socket()",
        args=("--disable-socket", "-W", "ignore::UserWarning"), subprocess=True),
    "pytest-socket-allow-hosts": dict(
        head="import socket\nfrom pytest_socket import SocketConnectBlockedError",
        body='with pytest.raises(SocketConnectBlockedError):\n'
             '        socket.create_connection(("127.0.0.1", 9))',
        args=("--allow-hosts=127.0.0.2", "-W", "ignore::UserWarning"), subprocess=True),
    "http-proxy-set-by-a-test": dict(  # a dead proxy the plugin must not start using
        head="", body='os.environ["HTTPS_PROXY"] = os.environ["ALL_PROXY"] = '
                      '"http://127.0.0.1:9"', subprocess=True),
}


@contextlib.contextmanager
def _signal_when_stored(server: QaseServer, marker: Path, count: int) -> Iterator[None]:
    """Create ``marker`` once ``server`` stores ``count`` results, for a test to wait on."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            if len(server.results()) >= count:
                marker.write_text("stored")
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(5)


@pytest.mark.parametrize("name", sorted(PATCHES))
def test_plugin_traffic_gets_through_patching_libraries(pytester, qase_server, monkeypatch,
                                                        name):
    patch = dict(PATCHES[name])
    args, in_subprocess = patch.pop("args", ()), patch.pop("subprocess", False)
    marker = pytester.path / "stored"
    pytester.makepyfile(test_suite=PATCHED.format(
        marker=str(marker), **{"head": "", "decorator": "", "fixtures": "", **patch}))
    qase_server.inject(path=r"/results$", status=None, drop=True, apply_first=True)
    with _signal_when_stored(qase_server, marker, 20):
        _run(pytester, qase_server, monkeypatch, *args, subprocess=in_subprocess)
    _delivered_once(qase_server)
    assert qase_server.duplicates_ignored == 10  # the dropped batch, resent on a new connection
    assert qase_server.run(1)["completed"]


def test_a_test_that_changes_the_working_directory(pytester, qase_server, monkeypatch):
    monkeypatch.chdir(pytester.path)  # whatever the inner tests do, the outer one gets it back
    marker = pytester.path / "stored"
    pytester.makepyfile(test_suite=PATCHED.format(marker=str(marker), decorator="",
                                                  fixtures=", elsewhere", body="", head="""
@pytest.fixture
def elsewhere(tmp_path_factory):
    os.chdir(tmp_path_factory.mktemp("elsewhere"))  # and never back
"""))
    qase_server.inject(path=r"/results$", status=None, drop=True, apply_first=True)
    with _signal_when_stored(qase_server, marker, 20):
        _run(pytester, qase_server, monkeypatch, "--qase-report=report")
    _delivered_once(qase_server)
    _, results = load_report(pytester.path / "report")  # relative to where pytest started
    assert len(results) == 25


def test_a_test_that_clears_the_environment(pytester, qase_server, monkeypatch):
    marker = pytester.path / "stored"
    pytester.makepyfile(test_suite=PATCHED.format(marker=str(marker), decorator="",
                                                  fixtures="", body="", head="""
@pytest.fixture(autouse=True)
def _hostile_environment():
    os.environ.clear()  # and never restored
    os.environ.update(HTTPS_PROXY="http://127.0.0.1:9", ALL_PROXY="http://127.0.0.1:9",
                      REQUESTS_CA_BUNDLE="/nonexistent/ca.pem", SSL_CERT_FILE="/nonexistent",
                      QASE_URL="https://127.0.0.2:9", TMPDIR="/nonexistent", HOME="/nonexistent")
"""))
    qase_server.inject(path=r"/results$", status=None, drop=True, apply_first=True)
    # the CA comes from the environment too, and the tests remove it
    point_at(monkeypatch, qase_server, QASE_BATCH_SIZE="10", REQUESTS_CA_BUNDLE=qase_server.ca_path)
    with _signal_when_stored(qase_server, marker, 20):
        result = run(pytester, None, subprocess=True)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert qase_server.token not in result.stdout.str() + result.stderr.str()
    _delivered_once(qase_server)
    assert qase_server.run(1)["completed"]


def test_upload_under_freezegun_with_the_clock_in_the_past(pytester, qase_server, monkeypatch,
                                                           tmp_path):
    pytester.makeconftest("""
        from freezegun import freeze_time

        def pytest_collection_finish(session):
            freeze_time("2001-01-01").start()  # for the rest of the session, its end included
    """)
    qase_server.inject(path=r"/results$", status=503, times=None)
    result, elapsed = _run(pytester, qase_server, monkeypatch, QASE_MAX_WAIT="3",
                           subprocess=True)
    assert elapsed < 90  # the deadlines ran on the real clock
    path = _kept(result, 25, "Qase answered 503 when trying to send results to run 1 of DEMO: "
                             "Service Unavailable")
    [state] = (tmp_path / "tmp").glob("pytest-qase-*/*.json")  # the rate guard's window
    sent = json.loads(state.read_text())["sent"]
    assert len(sent) >= 4 and min(sent) > time.time() - 600  # real times, not 2001
    _upload_later(pytester, qase_server, path, 25)
    assert min(r["execution"]["start_time"] for r in qase_server.results()) > time.time() - 600


def test_tests_that_fix_uuid4_and_urandom_still_get_one_result_each(pytester, qase_server,
                                                                    monkeypatch):
    """Result ids are Qase's idempotency keys: a suite that pins ``uuid.uuid4`` and
    ``os.urandom`` (for reproducible data) must not make its results, steps and attachment
    copies share ids, which would make Qase keep one result of five."""
    (pytester.path / "test_suite.py").unlink()  # only the pinned tests here
    pytester.makepyfile(test_ids="""
        import uuid
        from unittest import mock
        import pytest
        from pytest_qase import qase

        @pytest.fixture(scope="session", autouse=True)
        def pinned_ids():
            with mock.patch("uuid.uuid4", return_value=uuid.UUID(int=1)), \\
                    mock.patch("os.urandom", return_value=b"\\\\0" * 16):
                yield

        @pytest.mark.parametrize("i", range(5))
        def test_pinned(i):
            qase.attach(content=f"log of test {i}", filename="log.txt")
            with qase.step(f"step {i}"):
                pass
    """)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "--qase-report=report")
    assert result.ret == 0
    stored = qase_server.results()
    assert len(stored) == len({r["id"] for r in stored}) == 5
    assert len({r["attachments"][0] for r in stored}) == 5
    _, local = load_report(pytester.path / "report")
    assert len({r["id"] for r in local}) == 5
    assert len({s["id"] for r in local for s in r["steps"]}) == 5
    copies = sorted(p.read_text() for p in (pytester.path / "report" / "attachments").iterdir())
    assert copies == [f"log of test {i}" for i in range(5)]
    assert_clean(qase_server)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_while_the_last_results_are_sent(pytester, qase_server, monkeypatch, signum):
    """The server is slow at the end and the user presses Ctrl-C (or CI cancels the job
    with SIGTERM): no traceback, the summary says what happened and where the results
    wait; nothing is lost."""
    qase_server.inject(path=r"/results$", status=None, delay=30, times=None)
    point_at(monkeypatch, qase_server)
    process = start(pytester, qase_server, log="slow.log", new_session=True)
    log = pytester.path / "slow.log"
    end = time.monotonic() + 60
    while "[100%]" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < end and process.poll() is None, "the tests never finished"
        time.sleep(0.05)
    time.sleep(0.5)  # in the final flush now, waiting for the slow answer
    started = time.monotonic()
    os.killpg(process.pid, signum)
    code, lines = finished(process, pytester, log="slow.log", timeout=60)
    assert time.monotonic() - started < 15
    assert code == pytest.ExitCode.TESTS_FAILED, lines[-20:]  # pytest's: test_n[3] failed
    assert not [line for line in lines if "Traceback" in line or "INTERNALERROR" in line]
    qase = [line for line in lines if line.startswith("qase:")]
    assert any(line.startswith("qase: ") and "were not delivered: interrupted (Ctrl-C or "
               "SIGTERM) while the last results were sent" in line for line in qase), qase
    [path] = [line.split(" upload ", 1)[1] for line in qase if " upload " in line]
    qase_server.clear_faults()
    done = _upload(pytester, qase_server, path)
    assert done.returncode == 0, done.stderr
    # the slow request may have been stored after all: the upload's resend creates nothing twice
    assert len(qase_server.results()) == len(by_title(qase_server)) == 25


def test_ctrl_c_while_the_run_is_being_created(pytester, qase_server, monkeypatch):
    """Ctrl-C while the plugin waits, before the first test, for Qase's answer to the run
    creation (held back 30 s): the session ends at once, with no traceback, and the
    summary says that nothing was reported."""
    qase_server.inject("POST", r"^/v1/run/DEMO$", status=None, delay=30)
    point_at(monkeypatch, qase_server)
    process = start(pytester, qase_server, log="interrupted.log", new_session=True)
    end = time.monotonic() + 60
    while not any(r.path == "/v1/run/DEMO" for r in qase_server.requests):
        assert time.monotonic() < end and process.poll() is None, "no run was asked for"
        time.sleep(0.05)
    time.sleep(1.0)  # the suite is collected by now: waiting for the run at its end
    _ctrl_c_ends_the_session_at_once(pytester, qase_server, process, "interrupted.log",
                                     "/v1/run/DEMO")
    assert qase_server.results() == []


def _ctrl_c_ends_the_session_at_once(pytester, qase_server: QaseServer, process, log: str,
                                     held_path: str) -> None:
    """Ctrl-C now: the session ends while Qase still holds back its answer to
    ``held_path``, with no traceback and one line that says nothing was reported."""
    os.killpg(process.pid, signal.SIGINT)
    code, lines = finished(process, pytester, log=log, timeout=90)
    [held] = [r for r in qase_server.requests if r.path == held_path]
    assert held.answered_at is None  # the session ended while the answer was held back
    assert code == pytest.ExitCode.INTERRUPTED, lines[-20:]
    assert not [line for line in lines if "Traceback" in line or "INTERNALERROR" in line]
    assert "qase: error: interrupted (Ctrl-C) while the run was being created: nothing is " \
           "reported (a run created meanwhile stays open)" in lines, lines[-20:]


def test_ctrl_c_in_the_collection_does_not_wait_for_the_run(pytester, qase_server,
                                                            monkeypatch):
    """Ctrl-C while a test module is still being imported and Qase holds back its answer
    to the project check (60 s): the session ends at once, not when the run is open."""
    pytester.makepyfile(test_slow_import="""
        import time
        from pathlib import Path
        Path("importing").write_text("")
        time.sleep(30)
        def test_one():
            pass
    """)
    qase_server.inject("GET", r"^/v1/project/DEMO$", status=None, delay=60, times=None)
    point_at(monkeypatch, qase_server)
    process = start(pytester, qase_server, log="collecting.log", new_session=True)
    end = time.monotonic() + 60
    while not (pytester.path / "importing").exists():
        assert time.monotonic() < end and process.poll() is None, "the module was not imported"
        time.sleep(0.05)
    _ctrl_c_ends_the_session_at_once(pytester, qase_server, process, "collecting.log",
                                     "/v1/project/DEMO")
    assert qase_server.runs == {}  # abandoned: no run is created after the session ended


def test_a_slow_api_within_its_limits_gets_the_results(pytester, qase_server, monkeypatch):
    """Each start request answered in 0.9 s, inside qase_timeout=1, with qase_max_wait=0
    (every request is a last attempt): the session waits for the run as long as the
    requests may take, so the results are uploaded, not written to the local report."""
    qase_server.add_environment("staging")
    for method, path in (("GET", r"^/v1/project/DEMO$"), ("GET", r"^/v1/environment/DEMO$"),
                         ("POST", r"^/v1/run/DEMO$")):
        qase_server.inject(method, path, status=None, delay=0.9, times=None)
    result, _ = _run(pytester, qase_server, monkeypatch, QASE_MAX_WAIT="0", QASE_TIMEOUT="1",
                     QASE_ENVIRONMENT="staging")
    assert not [line for line in qase_lines(result) if "error" in line], qase_lines(result)
    [run_id] = qase_server.runs
    assert qase_server.run(run_id)["body"]["environment_id"] == 1
    assert len(qase_server.results(run_id)) == 25 and qase_server.run(run_id)["completed"]


def test_a_damaged_spool_says_so_and_is_kept(pytester, qase_server, monkeypatch):
    """A line cut short (a crash while writing) or of the wrong shape: the readable results
    go, the damage is named, and the file stays for a look."""
    qase_server.inject(path=r"/results$", status=503, drop=True, times=None)
    result, _ = _run(pytester, qase_server, monkeypatch, QASE_MAX_WAIT="2")
    path = Path(_spool_path(result))
    lines = path.read_bytes().splitlines(keepends=True)
    cut = lines[-1][: len(lines[-1]) // 2]  # the last result, half written
    path.write_bytes(b"".join(lines[:-1]) + b'{"delivered": 5}\n' + cut)  # 5: ignored
    qase_server.clear_faults()
    done = _upload(pytester, qase_server, str(path))
    assert done.returncode == 0, done.stderr
    assert "qase: 24 results delivered" in done.stderr
    assert f"qase: warning: 1 line(s) of {path} could not be read (a crash cut them short?); " \
           "the results on them are lost, the file is kept" in done.stderr
    assert path.exists() and len(qase_server.results()) == 24


def test_completing_a_run_with_a_login_page_for_an_answer_is_not_completing(
        pytester, qase_server, monkeypatch):
    qase_server.inject(path=r"/complete$", status=200, times=None,
                       body="<html><title>Wi-Fi login</title></html>",
                       headers={"Content-Type": "text/html"})
    result, _ = _run(pytester, qase_server, monkeypatch)
    lines = qase_lines(result)
    assert not any(line.endswith("(completed)") for line in lines), lines
    assert any(line.startswith("qase: could not complete the run: the server answered 200 when"
                               " trying to complete run 1 of DEMO") and "Wi-Fi login" in line
               for line in lines), lines
    assert not qase_server.run(1)["completed"]


def test_finished_results_are_on_disk_while_a_long_test_runs(pytester, qase_server,
                                                             monkeypatch):
    """The test thread spools results itself (no local report, no files): what it buffered
    reaches the spool file within the spooler's tick, not only at the next test or the end,
    so a process killed during a long test leaves them for ``upload``."""
    pytester.makepyfile(test_suite="""
        import glob, os, tempfile, time

        def test_a():
            pass

        def test_b():
            pass

        def test_long():
            pattern = os.path.join(tempfile.gettempdir(), "pytest-qase-*", "sessions", "*",
                                   "*.jsonl")
            end = time.monotonic() + 10
            while time.monotonic() < end:
                lines = [line for path in glob.glob(pattern)
                         for line in open(path, encoding="utf-8")]
                if sum(line.startswith('{"result":') for line in lines) >= 2:
                    return
                time.sleep(0.05)
            raise AssertionError(f"the two earlier results never reached the spool: {lines}")
    """)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server)
    result.assert_outcomes(passed=3)
    assert sorted(by_title(qase_server)) == ["test_a", "test_b", "test_long"]


def test_results_reach_the_spool_while_files_upload_slowly(pytester, qase_server,
                                                           monkeypatch):
    """While the spooler thread waits on a slow file upload it cannot flush the spool, so
    the test thread puts each result without files on disk itself: none waits in a buffer
    for the upload to end (a process killed meanwhile would lose it)."""
    qase_server.inject(path=r"/v1/attachment/", status=None, delay=6.0, times=1)
    pytester.makepyfile(test_suite="""
        import glob, os, tempfile, time
        import pytest
        from pytest_qase import qase

        def test_with_a_file():
            qase.attach(content=b"log", filename="log.txt")

        @pytest.mark.parametrize("n", range(3))
        def test_plain(n):
            time.sleep(0.7)  # the file upload has started by now

        def test_check():
            pattern = os.path.join(tempfile.gettempdir(), "pytest-qase-*", "sessions", "*",
                                   "*.jsonl")
            lines = [line for path in glob.glob(pattern) for line in open(path)]
            plain = [line for line in lines if '"title":"test_plain"' in line]
            assert len(plain) == 3, lines
    """)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server)
    result.assert_outcomes(passed=5)
    assert len(qase_server.results()) == 5


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_a_spool_is_searched_across_its_read_chunks(tmp_path, monkeypatch, chunk):
    """After a Ctrl-C, ``Spool.holds`` tells whether a result's line was written: a line
    that straddles the chunks the file is read in is found too."""
    from pytest_qase import spool as spool_module

    monkeypatch.setattr(spool_module, "READ_CHUNK", chunk)
    spool = spool_module.Spool(str(tmp_path / "s.jsonl"), {"url": "https://q", "run_id": 1})
    spool.add(b'{"id":"first","title":"a"}')
    spool.add(b'{"id":"second","title":"b"}')
    assert spool.holds("first") and spool.holds("second")
    assert not spool.holds("third") and not spool.holds("firs")
    spool.close(keep=True)


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["no-xdist", "xdist"])
@pytest.mark.parametrize("moment", ["before-write", "after-write", "packing"])
def test_ctrl_c_while_the_test_thread_spools_loses_nothing(pytester, qase_server, monkeypatch,
                                                           moment, workers):
    """A Ctrl-C that lands inside the test thread's spooling (before the spool line is
    written, right after it, or while the result is packed) never loses a result silently:
    it is delivered (an xdist controller sends what its worker's spool holds), or kept in a
    spool named for ``upload``, or counted as not delivered; and the run is completed only
    when every result that ran is in it."""
    pytester.makeconftest("""
        import pytest
        from pytest_qase import batching, spool

        MOMENT = %r
        real_add, real_write = batching.Packer.add, spool.Spool._write

        def interrupt_now(moment):
            if MOMENT == moment and getattr(pytest, "interrupt_next", False):
                pytest.interrupt_next = False
                raise KeyboardInterrupt

        def add(self, entry):
            interrupt_now("packing")
            return real_add(self, entry)

        def write(self, line):
            if line.startswith(b'{"result":'):
                interrupt_now("before-write")
            start = real_write(self, line)
            if line.startswith(b'{"result":'):  # a SIGINT handled as the write returns
                interrupt_now("after-write")
            return start

        batching.Packer.add, spool.Spool._write = add, write
    """ % moment)
    pytester.makepyfile(test_suite="""
        import pytest

        def test_a():
            pass

        def test_b():
            pytest.interrupt_next = True  # its own result is being spooled at Ctrl-C

        def test_c():
            pass
    """)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, *workers, subprocess=True)  # a real Ctrl-C
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    text = "\n".join(qase_lines(result))
    stored = sorted(r["title"] for r in qase_server.results())
    if stored == ["test_a", "test_b"]:  # the controller delivered it from the spool
        assert workers and moment != "before-write"
        assert qase_server.run(1)["completed"], text
        return
    assert stored == ["test_a"], stored
    assert not qase_server.run(1)["completed"], text
    assert "1 of 2 results were not delivered" in text, text
    if moment == "before-write":  # never written: nothing to upload later, and it says so
        assert "interrupted (Ctrl-C) while its result was being spooled" in text, text
        return
    uploaded = _upload(pytester, qase_server, _spool_path(result))
    assert uploaded.returncode == 0, uploaded.stderr
    assert sorted(r["title"] for r in qase_server.results()) == ["test_a", "test_b"]
