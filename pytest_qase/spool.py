"""The on-disk spool: every result the uploader takes is kept here until Qase acknowledges it.

A JSON-lines file: one header line (API host, project, run; never the token), then
``{"result": ...}`` lines and ``{"delivered": [ids]}`` lines. A result whose attachments
could not be uploaded is followed by an ``{"attachments": {"result": id, "files": [...]}}``
line that names the kept copy of each file and where its hash goes. What is not marked delivered
at the end stays on disk for ``python -m pytest_qase upload PATH``, which is idempotent
because each result keeps its own idempotency ``id``.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Iterator, Optional

from .results import to_json_bytes

READ_CHUNK = 1 << 20  # bytes read at a time when a spool is searched
RESULT_START = b'{"result":'  # a result line, before the result's own JSON


class Spool:
    """Append-only record of queued and delivered results for one process."""

    def __init__(self, path: str, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.pending = 0
        self._handle: Optional[Any] = None
        self._position = 0
        self._lock = threading.Lock()  # the spooler thread adds, the sender acknowledges

    def _open(self) -> Any:
        if self._handle is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._handle = open(self.path, "ab")
            self._position = self._handle.tell()
            if self._position == 0:
                self._write(to_json_bytes({"spool": 1, **self.header}) + b"\n")
        return self._handle

    def _write(self, line: bytes) -> int:
        start = self._position
        self._handle.write(line)  # type: ignore[union-attr]
        self._position += len(line)
        return start

    def add(self, body: bytes) -> int:
        """Append a result; return where its body starts in the file (to read it back)."""
        with self._lock:
            self._open()
            self.pending += 1  # first: a Ctrl-C between the two keeps the file, never loses it
            return self._write(RESULT_START + body + b"}\n") + len(RESULT_START)

    def holds(self, result_id: str) -> bool:
        """Whether a result's line is in the file (after a Ctrl-C that may have come before
        or after its write; a line is buffered whole or not at all)."""
        self.flush()
        needle = RESULT_START + b'{"id":"' + result_id.encode() + b'"'
        try:
            with open(self.path, "rb") as handle:  # by chunks: a spool can be large
                carried = b""
                while chunk := handle.read(READ_CHUNK):
                    if needle in carried + chunk:
                        return True
                    carried = (carried + chunk)[-len(needle):]
        except OSError:
            pass
        return False

    def read(self, offset: int, length: int) -> bytes:
        """A result body written earlier (its line was flushed before it was handed on)."""
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    def attachments_pending(self, result_id: str, files: list[dict[str, Any]]) -> None:
        """Record the kept files a result still needs uploaded before it can be sent."""
        with self._lock:
            self._open()
            self._write(to_json_bytes({"attachments": {"result": result_id, "files": files}})
                        + b"\n")

    def delivered(self, ids: list[str]) -> None:
        with self._lock:
            self._open()
            self._write(to_json_bytes({"delivered": ids}) + b"\n")
            self.pending -= len(ids)

    def flush(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.flush()

    def close(self, keep: bool) -> Optional[str]:
        """Close; remove the file when everything was delivered. Returns the path if kept."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
        if not os.path.exists(self.path):
            return None
        if keep or self.pending > 0:
            return self.path
        os.remove(self.path)
        return None


def read_spool(path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the results of a spool file that were never acknowledged."""
    header: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {}
    for record in _records(path):
        if "spool" in record:
            header = header or record
        elif "result" in record and isinstance(record["result"], dict):
            results[str(record["result"].get("id"))] = record["result"]
        elif isinstance(record.get("delivered"), list):
            for result_id in record["delivered"]:
                results.pop(str(result_id), None)
    return header, list(results.values())


def unreadable_lines(path: str) -> int:
    """Lines of a spool file that are not records of it (cut short by a crash, edited)."""
    return sum(record is None for record in _lines(path))


def read_pending_attachments(path: str) -> dict[str, list[dict[str, Any]]]:
    """Per result id, the kept files to upload before the result (see ``attachments_pending``)."""
    pending: dict[str, list[dict[str, Any]]] = {}
    for record in _records(path):
        entry = record.get("attachments")
        if isinstance(entry, dict) and isinstance(entry.get("files"), list):
            pending[str(entry.get("result"))] = entry["files"]
    return pending


def _lines(path: str) -> Iterator[Optional[dict[str, Any]]]:
    """Each line of a spool file as its record, or None where it is not one."""
    with open(path, "rb") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short by a crash
                record = None
            yield record if isinstance(record, dict) else None


def _records(path: str) -> Iterator[dict[str, Any]]:
    """The records of a spool file; the rest of the file is still good after a bad line."""
    return (record for record in _lines(path) if record is not None)


SPOOL_START = b'{"spool":'  # every spool file's first line, its header


def spool_files(path: str) -> list[str]:
    """A spool file, or every spool file below a directory.

    Only files that start with a spool header count: a kept copy of an attachment called
    ``events.jsonl`` sits in the same session folder and is not one, and a file named by
    mistake (a report's ``run.json``) must never be read as one, nor removed as empty.
    """
    if os.path.isdir(path):
        found = []
        for folder, _, names in os.walk(path):
            found.extend(os.path.join(folder, n) for n in names if n.endswith(".jsonl"))
        return sorted(p for p in found if is_spool_file(p))
    return [path] if is_spool_file(path) else []


def is_spool_file(path: str) -> bool:
    """Whether ``path`` starts with a spool header (only such files are read or removed)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SPOOL_START)) == SPOOL_START
    except OSError:
        return False


def spool_counts(path: str) -> tuple[int, int]:
    """How many results a spool file holds, and how many of them Qase acknowledged."""
    taken: set[str] = set()
    delivered: set[str] = set()
    try:
        for record in _records(path):
            if "result" in record and isinstance(record["result"], dict):
                taken.add(str(record["result"].get("id")))
            elif isinstance(record.get("delivered"), list):
                delivered.update(str(result_id) for result_id in record["delivered"])
    except OSError:
        return 0, 0
    return len(taken), len(taken & delivered)
