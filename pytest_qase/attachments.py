"""Files attached to a result or a step: captured on the test thread, uploaded later.

``capture`` runs on the test thread and only makes the attachment safe to read later:
small content stays in memory, a file is copied into the session's attachment store (so a
test may delete it right away), only files too big for Qase are read at upload time.
``AttachmentUploader`` runs on the uploader thread: it sends each file once through
``POST /v1/attachment/{code}`` (at most 20 files and 128 MB a request, 32 MB a file) and
puts the returned hashes on the result or step, before the result is serialized, so a
retried batch resends hashes, never files.
"""

from __future__ import annotations

import mimetypes
import os
import re
import shutil
import stat
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Union

from . import clock, ids

MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_REQUEST_BYTES = 128 * 1024 * 1024
MAX_REQUEST_FILES = 20
IN_MEMORY_BYTES = 1024 * 1024  # larger content and files are kept as a file copy
OUTAGE_PAUSE = 30.0  # after a failed upload, later ones are kept for later without trying
MAX_WARNINGS = 50


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def safe_name(name: str) -> str:
    """A file name safe in any folder: no separators, no control characters, not empty."""
    base = os.path.basename(str(name).replace("\\", "/")) or "attachment"
    base = re.sub(r"[\x00-\x1f/:*?\"<>|\ud800-\udfff]", "_", base)  # lone surrogates too
    return base[:120] or "attachment"


@dataclass
class Attachment:
    """One attached file. ``hash`` is set once Qase has it; it is never uploaded again."""

    filename: str
    mime: str
    size: int
    content: Optional[bytes] = None  # small attachments, captured at attach time
    path: Optional[str] = None  # our copy (``owned``), or the user's file when too big to copy
    owned: bool = False
    hash: Optional[str] = None
    report_entry: Optional[dict[str, Any]] = None
    id: str = field(default_factory=ids.new_id)

    def read(self) -> bytes:
        if self.content is not None:
            return self.content
        assert self.path is not None
        with open(self.path, "rb") as handle:
            return handle.read()

    def release(self) -> None:
        """Forget the captured bytes and remove our copy (after upload and report)."""
        self.content = None
        if self.owned and self.path:
            try:
                os.remove(self.path)
            except OSError:
                pass
            self.path = None

    def to_report(self) -> Optional[dict[str, Any]]:
        return self.report_entry


class AttachmentStore:
    """A folder of copies that live until their attachment is uploaded and reported."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    def _target(self, filename: str) -> str:
        with self._lock:
            os.makedirs(self.directory, exist_ok=True)
        return os.path.join(self.directory, f"{ids.new_uuid().hex}-{safe_name(filename)}")

    def write(self, content: bytes, filename: str) -> str:
        target = self._target(filename)
        with open(target, "wb") as handle:
            handle.write(content)
        return target

    def copy(self, source: str, filename: str) -> str:
        target = self._target(filename)
        shutil.copyfile(source, target)
        return target

    def remove_if_empty(self) -> None:
        try:
            os.rmdir(self.directory)
        except OSError:
            pass


def capture(path: Optional[Union[str, os.PathLike]] = None, mime: Optional[str] = None, *,
            content: Optional[Union[bytes, str]] = None, filename: Optional[str] = None,
            store: Optional[AttachmentStore] = None) -> Attachment:
    """An attachment that can be read later, whatever the test does with its file.

    Raises ``ValueError`` (with the fix in its text) for a bad call or a missing file.
    """
    if content is not None:
        if path is not None:
            raise ValueError("give either a path or content=, not both")
        if isinstance(content, str):
            data = content.encode("utf-8")
            name = filename or "attachment.txt"
            kind = mime or mimetypes.guess_type(name)[0] or "text/plain"
        elif isinstance(content, (bytes, bytearray, memoryview)):
            data = bytes(content)
            name = filename or "attachment.bin"
            kind = mime or mimetypes.guess_type(name)[0] or "application/octet-stream"
        else:
            raise ValueError(f"content= must be bytes or str, not {type(content).__name__}")
        attachment = Attachment(filename=safe_name(name), mime=kind, size=len(data))
        attachment.content = data
        if len(data) > IN_MEMORY_BYTES and store is not None:
            try:
                attachment.path, attachment.owned = store.write(data, name), True
                attachment.content = None
            except OSError:  # a full disk, no file descriptors left: it stays in memory
                pass
        return attachment
    if path is None:
        raise ValueError("give a file path, or content= with the bytes or text to attach")
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"the path must be text or a path, not {type(path).__name__} "
                         "(for content, use content=); nothing was attached")
    source = os.fspath(path)
    try:
        info = os.stat(source)
    except OSError:
        raise ValueError(f"file not found: {source}; nothing was attached") from None
    if not stat.S_ISREG(info.st_mode):  # /dev/zero never ends, a FIFO blocks the test
        raise ValueError(f"{source} is not a regular file; nothing was attached")
    size = info.st_size
    name = filename or os.path.basename(source)
    attachment = Attachment(filename=safe_name(name),
                            mime=mime or mimetypes.guess_type(name)[0]
                            or "application/octet-stream", size=size)
    try:
        if size <= IN_MEMORY_BYTES or store is None and size <= MAX_FILE_BYTES:
            with open(source, "rb") as handle:  # it may have grown since: read what fits
                attachment.content = handle.read(MAX_FILE_BYTES + 1)
            attachment.size = len(attachment.content)
        elif size <= MAX_FILE_BYTES and store is not None:
            attachment.path, attachment.owned = store.copy(source, name), True
        else:  # too big for Qase anyway: only the local report copies it, at the end
            attachment.path = source
    except OSError as exc:
        raise ValueError(f"could not read {source}: {exc.strerror or exc}; "
                         "nothing was attached") from None
    return attachment


def walk(result: Any) -> Iterator[tuple[list[int], Attachment]]:
    """Every attachment of a result with where it sits: ``[]`` the result, else step indexes."""
    for attachment in result.attachments:
        yield [], attachment
    yield from _walk_steps(result.steps, [])


def _walk_steps(steps: list[Any], where: list[int]) -> Iterator[tuple[list[int], Attachment]]:
    for index, step in enumerate(steps):
        for attachment in step.attachments:
            yield where + [index], attachment
        yield from _walk_steps(step.steps, where + [index])


def pending_record(where: list[int], attachment: Attachment,
                   store: Optional[AttachmentStore]) -> Optional[dict[str, Any]]:
    """What the spool keeps to upload an attachment later: a kept file's path."""
    if attachment.path is None:
        if store is None or attachment.content is None:
            return None
        attachment.path, attachment.owned = store.write(attachment.content,
                                                        attachment.filename), True
    return {"where": where, "path": attachment.path, "filename": attachment.filename,
            "mime": attachment.mime, "owned": attachment.owned}


def place_hash(payload: dict[str, Any], where: list[int], digest: str) -> None:
    """Put an uploaded file's hash on an API payload (a result or one of its steps)."""
    if not where:
        payload.setdefault("attachments", []).append(digest)
        return
    node: dict[str, Any] = payload
    for index in where:
        node = node["steps"][index]
    node.setdefault("execution", {}).setdefault("attachments", []).append(digest)


class AttachmentUploader:
    """Uploads the attachments of results, on the uploader thread."""

    def __init__(self, client: Any, project: str) -> None:
        self.client = client
        self.project = project
        self.warnings: list[str] = []
        self.uploaded = 0
        self.requests = 0
        self.no_storage = False  # after a 507 or a refusal, no later upload can succeed
        self.last_error = "the attachment upload failed"
        self._outage_until = 0.0

    def warn(self, text: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)

    def upload(self, results: list[Any], deadline: clock.Deadline) -> set[str]:
        """Upload what the results need, sharing requests; the ids of what must wait."""
        items = [(result.title, attachment) for result in results
                 for _, attachment in walk(result)]
        return {attachment.id for _, attachment in self.upload_items(items, deadline)}

    def upload_items(self, items: list[tuple[str, Attachment]],
                     deadline: clock.Deadline) -> list[tuple[str, Attachment]]:
        """Upload (title, attachment) pairs without a hash; return those that must wait."""
        waiting = [(t, a) for t, a in items if a.hash is None]
        ready: list[tuple[str, Attachment]] = []
        for title, attachment in waiting:
            if attachment.size > MAX_FILE_BYTES:
                self.warn(f"attachment {attachment.filename} of {title} is "
                          f"{_megabytes(attachment.size)}, over Qase's 32 MB limit for a file: "
                          "not uploaded")
            elif self.no_storage:
                continue
            else:
                ready.append((title, attachment))
        later: list[tuple[str, Attachment]] = []
        for group in _requests(ready):
            if clock.monotonic() < self._outage_until:
                later.extend(group)
                continue
            try:
                files = [(a.filename, a.read(), a.mime) for _, a in group]
            except OSError as exc:
                self.warn(f"could not read an attachment of {group[0][0]}: {exc}; "
                          "the result is sent without it")
                continue
            try:
                self.requests += 1
                hashes = self.client.upload_attachments(self.project, files, deadline)
            except Exception as error:
                if getattr(error, "status", None) == 507:
                    self.no_storage = True
                    self.warn(f"{error}: attachments are not uploaded, the results are "
                              "delivered without them")
                    return later
                if getattr(error, "transient", False):
                    self.last_error = str(error)
                    self._outage_until = clock.monotonic() + OUTAGE_PAUSE
                    later.extend(group)
                    continue
                self.warn(f"attachments of {group[0][0]} were not uploaded: {error}")
                if getattr(error, "stops_sending", False):
                    self.no_storage = True
                    return later
                continue
            for (_, attachment), digest in zip(group, hashes):
                attachment.hash = digest
                self.uploaded += 1
        return later


def _requests(items: list[tuple[str, Attachment]]) -> Iterator[list[tuple[str, Attachment]]]:
    """Groups of at most 20 files and 128 MB (with room for the multipart framing)."""
    group: list[tuple[str, Attachment]] = []
    size = 0
    for item in items:
        cost = item[1].size + 1024
        if group and (len(group) >= MAX_REQUEST_FILES or size + cost > MAX_REQUEST_BYTES):
            yield group
            group, size = [], 0
        group.append(item)
        size += cost
    if group:
        yield group


def copy_for_report(attachment: Attachment, directory: str) -> Optional[str]:
    """Copy an attachment into the report's ``attachments/``; a warning text if it failed."""
    target = os.path.join(directory, f"{attachment.id}-{attachment.filename}")
    try:
        if attachment.content is not None:
            with open(target, "wb") as handle:
                handle.write(attachment.content)
        elif attachment.path is not None:
            shutil.copyfile(attachment.path, target)
        else:
            return f"attachment {attachment.filename} was released before it was reported"
    except OSError as exc:
        return f"could not copy attachment {attachment.filename} into the report: {exc}"
    attachment.report_entry = {"id": attachment.id, "file_name": attachment.filename,
                               "file_path": target, "mime_type": attachment.mime,
                               "content": None}
    return None
