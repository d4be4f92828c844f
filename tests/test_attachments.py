"""``qase.attach`` and captured output: what Qase receives, once, and the local report copies."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import (
    assert_clean,
    by_title,
    clean_environment,
    environ_without_ca,
    load_report,
    point_at,
    qase_lines,
    run,
)


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
BIG = bytes(range(256)) * 8192  # 2 MiB: copied to a file at attach time, not kept in memory

ATTACH_SUITE = f"""
    import os
    from pytest_qase import qase

    def test_attach(tmp_path):
        shot = tmp_path / "screen.png"
        shot.write_bytes({PNG!r})
        big = tmp_path / "dump.bin"
        big.write_bytes({BIG!r})
        qase.attach(str(shot))                                  # the result, mime guessed
        qase.attach(big, "application/x-dump")                  # a path object, mime given
        with qase.step("make an order"):
            qase.attach(content="order 42", filename="order.txt")   # on the step
            with qase.step("pay"):
                qase.attach(content=b"\\x00\\x01", filename="raw", mime="application/x-raw")
        os.remove(shot)  # deleted before the uploader reads it: still attached
        os.remove(big)
        qase.attach(tmp_path / "missing.txt")

    def test_many_files():
        for i in range(25):
            qase.attach(content=f"file {{i}}", filename=f"f{{i}}.txt")
"""


def test_attachments_are_uploaded_once_and_referenced_by_hash(pytester, qase_server,
                                                              monkeypatch):
    pytester.makepyfile(test_attach=ATTACH_SUITE)
    point_at(monkeypatch, qase_server)
    # the first results request fails and is retried: the files must not be sent again
    qase_server.inject("POST", "/results", status=503, times=1)
    report_dir = pytester.path / "report"
    result = run(pytester, qase_server, f"--qase-report={report_dir}")
    assert result.ret == 0
    lines = qase_lines(result)
    assert any(line.startswith("qase: warning: qase.attach: file not found:")
               and "missing.txt; nothing was attached" in line for line in lines), lines
    stored = by_title(qase_server)
    attach = stored["test_attach"]
    assert attach["attachments"] == [sha1(PNG), sha1(BIG)]
    [order] = attach["steps"]
    assert order["execution"]["attachments"] == [sha1(b"order 42")]
    assert order["steps"][0]["execution"]["attachments"] == [sha1(b"\x00\x01")]
    files = qase_server.attachments
    assert files[sha1(PNG)]["filename"] == "screen.png"
    assert files[sha1(PNG)]["mime"] == "image/png" and files[sha1(PNG)]["content"] == PNG
    assert files[sha1(BIG)]["mime"] == "application/x-dump"
    assert files[sha1(BIG)]["content"] == BIG
    assert files[sha1(b"order 42")]["mime"] == "text/plain"
    assert files[sha1(b"\x00\x01")]["mime"] == "application/x-raw"
    many = stored["test_many_files"]
    assert many["attachments"] == [sha1(f"file {i}".encode()) for i in range(25)]
    uploads = [r for r in qase_server.requests if r.path.startswith("/v1/attachment/")]
    # 29 files, each sent once, at most 20 a request (the server refuses more): results
    # that finish together share requests, so 2 (20 + 9) or 3 (4, then 20 + 5)
    assert len(uploads) in (2, 3) and all(r.status == 200 for r in uploads)
    assert len(qase_server.results_requests()) == 2  # the 503, then the retry
    assert_clean(qase_server)
    # the local report holds copies, referenced as the Qase Report schema says
    _, results = load_report(report_dir)
    reported = {r["title"]: r for r in results}
    entries = reported["test_attach"]["attachments"]
    assert [e["file_name"] for e in entries] == ["screen.png", "dump.bin"]
    assert Path(entries[0]["file_path"]).read_bytes() == PNG
    assert Path(entries[1]["file_path"]).read_bytes() == BIG
    assert entries[1]["mime_type"] == "application/x-dump"
    assert all(Path(e["file_path"]).parent == report_dir / "attachments" for e in entries)
    step = reported["test_attach"]["steps"][0]
    assert Path(step["execution"]["attachments"][0]["file_path"]).read_text() == "order 42"
    inner = step["steps"][0]["execution"]["attachments"][0]
    assert Path(inner["file_path"]).read_bytes() == b"\x00\x01"
    assert len(list((report_dir / "attachments").iterdir())) == 4 + 25


def test_oversized_file_is_skipped_and_507_delivers_without_attachments(
        pytester, qase_server, monkeypatch, tmp_path):
    huge = tmp_path / "huge.bin"
    with open(huge, "wb") as handle:  # sparse: 33 MB on paper, nothing read or copied
        handle.truncate(33 * 1024 * 1024)
    pytester.makepyfile(test_sizes_suite=f"""
        from pytest_qase import qase

        def test_huge():
            qase.attach({str(huge)!r})
            qase.attach(content="small", filename="small.txt")

        def test_no_storage():
            qase.attach(content="x", filename="x.txt")

        def test_after_507():
            qase.attach(content="y", filename="y.txt")
    """)
    point_at(monkeypatch, qase_server)
    qase_server.configure(max_attachment_bytes=40 * 1024 * 1024)
    result = run(pytester, qase_server, "-p", "no:randomly")
    assert result.ret == 0
    stored = by_title(qase_server)
    assert stored["test_huge"]["attachments"] == [sha1(b"small")]
    lines = qase_lines(result)
    assert any("huge.bin of test_huge is 33.0 MB, over Qase's 32 MB limit" in line
               for line in lines), lines

    qase_server.inject("POST", "/v1/attachment/", status=507, times=None,
                       body={"status": False, "errorMessage": "Insufficient Storage"})
    pytester.makepyfile(test_sizes_suite="""
        from pytest_qase import qase

        def test_no_storage():
            qase.attach(content="x", filename="x.txt")

        def test_after_507():
            qase.attach(content="y", filename="y.txt")
    """)
    result = run(pytester, qase_server)
    assert result.ret == 0
    runs = sorted(qase_server.runs)
    second = by_title(qase_server, runs[-1])
    assert sorted(second) == ["test_after_507", "test_no_storage"]
    assert all("attachments" not in r for r in second.values())
    lines = qase_lines(result)
    assert any("no storage left in the Qase workspace (507)" in line for line in lines), lines
    # after a 507 the session stops trying: one refused upload request, not one per test
    uploads = [r for r in qase_server.requests if r.path.startswith("/v1/attachment/")
               and r.status == 507]
    assert len(uploads) == 1
    assert qase_server.run(runs[-1])["completed"]


def test_attachments_kept_through_an_outage_and_uploaded_later(pytester, qase_server,
                                                               monkeypatch):
    pytester.makepyfile(test_outage="""
        from pytest_qase import qase

        def test_with_file(tmp_path):
            path = tmp_path / "events.jsonl"  # its kept copy must not pass for a spool
            path.write_text("the trace")
            with qase.step("collect"):
                qase.attach(path)
            path.unlink()

        def test_plain():
            pass
    """)
    point_at(monkeypatch, qase_server)
    monkeypatch.setenv("QASE_MAX_WAIT", "2")
    qase_server.inject("POST", "/v1/attachment/", status=503, times=None)
    result = run(pytester, qase_server)
    assert result.ret == 0
    lines = qase_lines(result)
    assert any("1 of 2 results were not delivered: its attachments could not be uploaded"
               in line for line in lines), lines
    [command] = [line for line in lines if "python -m pytest_qase upload" in line]
    spool = command.split("upload ", 1)[1]
    assert [r["title"] for r in qase_server.results()] == ["test_plain"]
    qase_server.clear_faults()
    environ = dict(environ_without_ca(), QASE_API_TOKEN=qase_server.token,
                   QASE_URL=qase_server.url)
    uploaded = subprocess.run(  # the whole session folder, as a user may give it
        [sys.executable, "-m", "pytest_qase", "upload", str(Path(spool).parent),
         f"--qase-ca-bundle={qase_server.ca_path}"],
        env=environ, capture_output=True, text=True, timeout=120)
    assert uploaded.returncode == 0, uploaded.stderr
    stored = by_title(qase_server)
    step = stored["test_with_file"]["steps"][0]
    assert step["execution"]["attachments"] == [sha1(b"the trace")]
    assert qase_server.attachments[sha1(b"the trace")]["content"] == b"the trace"
    assert not Path(spool).exists()
    leftovers = [p for p in Path(spool).parent.rglob("*") if p.is_file()]
    assert leftovers == []  # the kept copy went with the spool
    assert qase_server.validation_errors == []


def test_captured_output_of_failed_tests(pytester, qase_server, monkeypatch):
    pytester.makeini("[pytest]\nqase_capture_logs = true\n")
    pytester.makepyfile(test_logs="""
        import logging
        import sys

        def test_fails():
            print("to stdout")
            sys.stderr.write("to stderr\\n")
            logging.getLogger("app").warning("a log record")
            assert False

        def test_passes():
            print("not attached")
    """)
    point_at(monkeypatch, qase_server)
    report_dir = pytester.path / "report"
    run(pytester, qase_server, f"--qase-report={report_dir}")
    stored = by_title(qase_server)
    assert "attachments" not in stored["test_passes"]
    files = qase_server.attachments
    by_name = {files[h]["filename"]: files[h]["content"].decode()
               for h in stored["test_fails"]["attachments"]}
    assert sorted(by_name) == ["log.txt", "stderr.txt", "stdout.txt"]
    assert by_name["stdout.txt"] == "--- call ---\nto stdout\n"
    assert by_name["stderr.txt"] == "--- call ---\nto stderr\n"
    assert "a log record" in by_name["log.txt"]
    _, results = load_report(report_dir)
    [failed] = [r for r in results if r["title"] == "test_fails"]
    assert sorted(a["file_name"] for a in failed["attachments"]) == sorted(by_name)
    assert_clean(qase_server)


def test_local_report_only_copies_attachments(pytester):
    pytester.makepyfile(test_local="""
        from pytest_qase import qase

        def test_one():
            qase.attach(content=b"\\x01\\x02", filename="a.bin")
    """)
    assert run(pytester, None).ret == 0
    report_dir = pytester.path / "qase-report"
    _, [result] = load_report(report_dir)
    [entry] = result["attachments"]
    assert entry["file_name"] == "a.bin" and entry["mime_type"] == "application/octet-stream"
    assert entry["content"] is None
    assert Path(entry["file_path"]).read_bytes() == b"\x01\x02"
    assert json.loads((report_dir / "run.json").read_text())["stats"]["total"] == 1


def test_a_bad_attach_call_is_a_warning_whether_on_or_off(pytester):
    """With the plugin off every runtime call is a no-op; on, a bad call must not fail the
    test either: it is a warning in the summary."""
    pytester.makepyfile(test_bad="""
        from pytest_qase import qase

        def test_number_as_path():
            qase.attach(123)

        def test_object_as_content():
            qase.attach(content=object())
    """)
    assert pytester.runpytest("-p", "no:cacheprovider").ret == 0
    result = run(pytester, None)
    assert result.ret == 0
    lines = qase_lines(result)
    assert ("qase: warning: qase.attach: the path must be text or a path, not int (for "
            "content, use content=); nothing was attached") in lines
    assert "qase: warning: qase.attach: content= must be bytes or str, not object" in lines


def test_special_files_are_not_read(pytester, tmp_path):
    """/dev/zero never ends and a FIFO blocks whoever opens it: neither may hang or eat the
    memory of a test that passes with the plugin off."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    pytester.makepyfile(test_special=f"""
        from pytest_qase import qase

        def test_zero():
            qase.attach("/dev/zero")

        def test_fifo():
            qase.attach({str(fifo)!r})
    """)
    result = run(pytester, None)
    assert result.ret == 0
    lines = qase_lines(result)
    assert "qase: warning: qase.attach: /dev/zero is not a regular file; nothing was " \
           "attached" in lines
    assert f"qase: warning: qase.attach: {fifo} is not a regular file; nothing was " \
           "attached" in lines
