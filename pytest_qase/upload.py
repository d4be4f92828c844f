"""Delivering spooled results later: after a worker died, or by ``python -m pytest_qase upload``.

Each spool file names its API host, project and run; results keep their idempotency ids,
so delivering the same spool twice creates nothing twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from . import clock
from .attachments import Attachment, AttachmentUploader, place_hash
from .batching import Entry, trim
from .sender import ResultSender
from .spool import Spool, read_pending_attachments, read_spool, spool_files, unreadable_lines

if TYPE_CHECKING:  # the client imports requests: only where a request is made
    from .client import QaseClient


@dataclass
class UploadOutcome:
    delivered: int = 0
    undelivered: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    kept: list[str] = field(default_factory=list)  # spool files still holding results
    runs: set[tuple[str, int]] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


def deliver_spools(path: str, client: QaseClient, *, batch_size: int, max_bytes: int,
                   deadline: clock.Deadline, expect_run: Optional[int] = None,
                   expect_url: Optional[str] = None) -> UploadOutcome:
    """Send every unacknowledged result found under ``path``; remove spools fully delivered.

    A spool written for another API host is left alone: the token is only ever sent to
    the host it was configured for.
    """
    outcome = UploadOutcome()
    for spool_path in spool_files(path):
        header, results = read_spool(spool_path)
        project, run_id = header.get("project"), header.get("run_id")
        damaged = unreadable_lines(spool_path)
        if damaged:  # a result on such a line cannot be sent: the file stays, for a look
            outcome.warnings.append(f"{damaged} line(s) of {spool_path} could not be read (a "
                                    "crash cut them short?); the results on them are lost, "
                                    "the file is kept")
        if not results:
            if not damaged:
                os.remove(spool_path)
            continue
        why = _unusable(header, expect_run, expect_url)
        if why:
            outcome.kept.append(spool_path)
            outcome.undelivered.update({str(r.get("id")): why for r in results})
            continue
        outcome.runs.add((str(project), int(str(run_id))))
        # acknowledgements go to the same file, so a second upload skips what this one sent
        spool = Spool(spool_path, header)
        spool.pending = len(results)
        sender = ResultSender(client, str(project), int(str(run_id)), batch_size=batch_size,
                              max_bytes=max_bytes, spool=spool)
        pending = read_pending_attachments(spool_path)
        files = AttachmentUploader(client, str(project))
        for result in results:
            why = _upload_pending(files, result, pending.get(str(result.get("id")), []),
                                  deadline)
            if why:
                sender.undelivered[str(result.get("id"))] = why
                continue
            entry = Entry(str(result.get("id")), trim(result, sender.packer.max_bytes))
            for batch in sender.packer.add(entry):
                sender.send(batch, deadline)
        sender.flush(deadline)
        spool.flush()
        outcome.delivered += sender.delivered
        outcome.requests += sender.requests
        outcome.undelivered.update(sender.undelivered)
        for batch in sender.parked:
            for entry in batch:
                outcome.undelivered[entry.id] = sender.leftover_reason() or "not delivered"
        outcome.warnings.extend(files.warnings)
        kept = spool.close(keep=bool(sender.undelivered or sender.parked or damaged))
        if kept:
            outcome.kept.append(kept)
        else:  # every result is in Qase: the kept copies of its attachments can go
            for records in pending.values():
                for record in records:
                    if record.get("owned") and os.path.isfile(str(record.get("path"))):
                        os.remove(str(record["path"]))
    return outcome


def _upload_pending(files: AttachmentUploader, result: dict, records: list[dict],
                    deadline: clock.Deadline) -> str:
    """Upload the kept attachments of a spooled result and put their hashes on it.

    Returns why the result must wait (the upload failed again), or "" when it can go. A
    kept file that is gone is left out, with a warning.
    """
    items = []
    for record in records:
        path = str(record.get("path"))
        if not os.path.isfile(path):
            files.warn(f"attachment {record.get('filename')} is gone ({path}): the result is "
                       "sent without it")
            continue
        items.append((list(record.get("where") or []), Attachment(
            filename=str(record.get("filename") or os.path.basename(path)),
            mime=str(record.get("mime") or "application/octet-stream"),
            size=os.path.getsize(path), path=path)))
    if not items:
        return ""
    if files.upload_items([(str(result.get("title")), a) for _, a in items], deadline):
        return f"its attachments could not be uploaded ({files.last_error})"
    for where, attachment in items:
        if attachment.hash:
            try:
                place_hash(result, where, attachment.hash)
            except (KeyError, IndexError, TypeError):  # trimmed steps: keep it on the result
                place_hash(result, [], attachment.hash)
    return ""


def _unusable(header: dict, expect_run: Optional[int], expect_url: Optional[str]) -> str:
    if not header.get("project") or not str(header.get("run_id", "")).isdigit():
        return "the spool file names no project or run"
    if expect_run is not None and header.get("run_id") != expect_run:
        return f"the spool file belongs to run {header.get('run_id')}, not {expect_run}"
    if expect_url is not None and str(header.get("url", "")).rstrip("/") != expect_url:
        return (f"the spool file was written for {header.get('url')}; set QASE_URL to that "
                "address to deliver it")
    return ""
