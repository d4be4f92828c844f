"""Packing serialized results into bulk requests by count and by bytes, and trimming.

Results are serialized once, on the uploader thread; a batch is then just byte strings
joined into ``{"results":[...]}``, so its exact size is known before it is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Protocol

from .results import TRIM_MARKER, cut_middle, to_json_bytes

ENVELOPE = len(b'{"results":[]}')
MIN_TEXT = 2048
OPEN_BATCHES = 2  # batches being filled at once (see ``Packer``)


class BodySource(Protocol):
    def read(self, offset: int, length: int) -> bytes: ...


@dataclass
class Entry:
    """One serialized result waiting to be sent.

    While the uploader keeps up, the body stays in memory; past the memory budget only its
    place in the spool file is kept and the body is read back when its batch is sent.
    """

    id: str
    body: Optional[bytes]
    size: int = 0
    offset: int = -1
    source: Optional[BodySource] = None

    def __post_init__(self) -> None:
        if self.body is not None:
            self.size = len(self.body)

    def load(self) -> bytes:
        if self.body is not None:
            return self.body
        assert self.source is not None and self.offset >= 0
        return self.source.read(self.offset, self.size)


def envelope(entries: list[Entry]) -> bytes:
    return b'{"results":[' + b",".join(e.load() for e in entries) + b"]}"


def batch_size(entries: list[Entry]) -> int:
    return ENVELOPE + sum(e.size for e in entries) + max(0, len(entries) - 1)


class Packer:
    """Accumulates entries in up to two open batches and hands out the full ones.

    An entry goes into the fullest open batch it fits. A large result that does not fit the
    batch being filled starts the other one instead of closing it half empty, and the small
    results after it top that one up: with a byte cap near the size of the largest stack
    traces, one open batch would send about one request per large result more than needed.
    """

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._open: list[list[Entry]] = []
        self._bytes: list[int] = []  # the serialized size of each open batch

    @property
    def pending(self) -> list[Entry]:
        """Every entry in an open batch."""
        return [entry for batch in self._open for entry in batch]

    @property
    def has_pending(self) -> bool:
        return bool(self._open)

    def add(self, entry: Entry) -> list[list[Entry]]:
        """Add one entry; return the batches that are now complete."""
        if len(self._open) == 1:  # most entries: one batch being filled, and it has room
            size = self._bytes[0] + entry.size + 1
            if size + 1 < self.max_bytes and len(self._open[0]) < self.max_count - 1:
                self._open[0].append(entry)
                self._bytes[0] = size
                return []
        ready: list[list[Entry]] = []
        fitting = [i for i, batch in enumerate(self._open) if len(batch) < self.max_count
                   and self._bytes[i] + entry.size + 1 <= self.max_bytes]
        # the fullest batch it fits: small results top up the batch of a large one
        place = max(fitting, key=self._fullness) if fitting else None
        if place is None:
            if len(self._open) >= OPEN_BATCHES:
                ready.append(self._close(max(range(len(self._open)), key=self._fullness)))
            self._open.append([entry])
            self._bytes.append(ENVELOPE + entry.size)
            place = len(self._open) - 1
        else:
            self._open[place].append(entry)
            self._bytes[place] += entry.size + 1
        if self._fullness(place) >= 1.0:
            ready.append(self._close(place))
        return ready

    def take_all(self) -> list[list[Entry]]:
        """Every open batch, closed now (the end of the session, a flush after a pause)."""
        batches, self._open, self._bytes = self._open, [], []
        return batches

    def _fullness(self, index: int) -> float:
        """1.0 once no further entry can join the open batch ``index``."""
        by_count = len(self._open[index]) / self.max_count
        by_bytes = (self._bytes[index] + 1) / self.max_bytes
        return max(by_count, by_bytes)

    def _close(self, index: int) -> list[Entry]:
        self._bytes.pop(index)
        return self._open.pop(index)

    def lower_caps(self, count: Optional[int], size: Optional[int]) -> None:
        if count:
            self.max_count = max(1, min(self.max_count, count))
        if size:
            self.max_bytes = max(MIN_TEXT * 4, min(self.max_bytes, size))


def trim(payload: dict[str, Any], limit: int) -> bytes:
    """Serialize a result within ``limit`` bytes by cutting its long texts, never dropping it."""
    body = to_json_bytes(payload)
    if len(body) + ENVELOPE <= limit:
        return body
    payload = json.loads(body)  # a private copy to cut down
    execution = payload.get("execution") or {}
    for _ in range(8):
        excess = len(body) + ENVELOPE - limit
        if excess <= 0:
            break
        texts = [(execution, "stacktrace"), (execution, "error_context"), (payload, "message")]
        longest = max(texts, key=lambda t: len(t[0].get(t[1]) or ""))
        value = longest[0].get(longest[1]) or ""
        if len(value) > MIN_TEXT:
            longest[0][longest[1]] = cut_middle(value, _fitting_length(value, excess))
        elif payload.get("steps"):
            payload["steps"] = payload["steps"][: len(payload["steps"]) // 2]
        elif payload.get("params"):
            payload["params"] = {k: v[:200] for k, v in payload["params"].items()}
        else:
            break
        body = to_json_bytes(payload)
    return body


def _fitting_length(text: str, excess: int) -> int:
    """How many characters of ``text`` to keep so that its JSON is ``excess`` bytes shorter.

    Characters and JSON bytes differ (non-ASCII text, escaped control characters), so the
    cut is scaled by this text's own bytes per character, with a small margin: one pass
    usually fits, and the text keeps all it can rather than a fixed minimum.
    """
    encoded = len(to_json_bytes(text))
    wanted = encoded - excess - len(TRIM_MARKER) - 64
    return max(MIN_TEXT, int(wanted * len(text) / encoded * 0.98))
