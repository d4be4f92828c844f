"""Delivering batches of results: 413 splitting, bad-result isolation, lost-answer safety.

Used by the background uploader during a session and by ``python -m pytest_qase upload``
afterwards. Every result keeps its idempotency ``id`` across retries and splits, so a
resend after an ambiguous failure never creates a duplicate in Qase.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional

from . import clock
from .batching import ENVELOPE, Entry, Packer, batch_size, envelope, trim
from .errors import ApiError
from .spool import Spool

if TYPE_CHECKING:  # the client imports requests: only where a request is made
    from .client import QaseClient

OUTAGE_PAUSE = 30.0  # after giving up on a batch, park new ones this long before trying again
MEMORY_BUDGET = 32 * 1024 * 1024  # result bodies held in memory; the rest are read from the spool
HARDER_TRIM = (256 * 1024, 32 * 1024)


class ResultSender:
    """Packs results and delivers them to one run, keeping account of every result."""

    def __init__(self, client: QaseClient, project: str, run_id: int, *, batch_size: int,
                 max_bytes: int, spool: Optional[Spool] = None) -> None:
        self.client = client
        self.project = project
        self.run_id = run_id
        self.packer = Packer(batch_size, max_bytes)
        count, size = client.guard.learned_caps()
        self.packer.lower_caps(count, size)
        self.spool = spool
        self.delivered = 0
        self.undelivered: dict[str, str] = {}  # result id -> why
        self.parked: list[list[Entry]] = []
        self.stopped: Optional[ApiError] = None
        self.requests = 0
        self.split_413 = 0
        self._accepted = (0, 0)  # most results and most bytes that one accepted request held
        # what was left of batches repacked under a lower cap: it joins the next batch sent
        # (the sender thread's own), rather than going out as a small request of its own
        self._carry: list[Entry] = []
        self._outage_until = 0.0
        self._held = 0  # bytes of bodies in memory (the spooler adds, the sender releases)
        self._held_lock = threading.Lock()

    # -- taking results -----------------------------------------------------------------

    def add(self, result_id: str, body: bytes, payload: Callable[[], dict[str, Any]],
            ) -> list[list[Entry]]:
        """Spool and pack one serialized result; return the batches it completed.

        ``payload`` gives the result's body as a dict: one over the byte cap is trimmed.
        """
        if len(body) + ENVELOPE > self.packer.max_bytes:
            body = trim(payload(), self.packer.max_bytes)
        entry = Entry(result_id, body)
        if self.spool is not None:
            entry.offset, entry.source = self.spool.add(body), self.spool
            with self._held_lock:
                if self._held + entry.size > MEMORY_BUDGET:
                    entry.body = None  # read back from the spool when its batch goes
                else:
                    self._held += entry.size
        return self.packer.add(entry)

    def hold(self, payload: dict[str, Any], files: list[dict[str, Any]], why: str) -> None:
        """Keep a result whose attachments could not be uploaded for a later upload.

        The spool gets the result and where its files are kept; ``python -m pytest_qase
        upload`` uploads those files first, then the result.
        """
        body = trim(payload, self.packer.max_bytes)
        result_id = str(payload["id"])
        if self.spool is not None:
            self.spool.add(body)
            self.spool.attachments_pending(result_id, files)
        self.undelivered[result_id] = why

    def _release(self, batch: list[Entry]) -> None:
        freed = sum(e.size for e in batch if e.body is not None)
        with self._held_lock:
            self._held -= freed

    @property
    def pending(self) -> int:
        return (len(self.packer.pending) + len(self._carry)
                + sum(len(b) for b in self.parked))

    # -- sending ----------------------------------------------------------------------------

    def send(self, batch: list[Entry], deadline: clock.Deadline, *, last: bool = False) -> None:
        """Deliver a batch now, or park it (transient trouble) or record why it cannot go.

        ``last``: no batch follows, so nothing may be carried over to the next one.
        """
        if self._carry:
            batch, self._carry = self._carry + batch, []
        if not batch:
            return
        if self.stopped is not None:
            self._give_up(batch, str(self.stopped))
            return
        if clock.monotonic() < self._outage_until:
            self.parked.append(batch)
            return
        self.packer.lower_caps(*self.client.guard.learned_caps())  # what other processes learned
        work = [batch]
        while work or (last and self._carry):
            if not work:  # the last batch: what was carried goes now, in as few requests
                work, self._carry = [self._carry], []
            current = work.pop()
            if len(current) > 1 and self._over_caps(current):
                full, open_batches = self._repack(current)  # formed before a lower cap
                if last and not (work or full or self._carry):  # nothing left to top them up
                    full, open_batches = open_batches, []
                self._carry = [entry for piece in open_batches for entry in piece] + self._carry
                work.extend(reversed(full))
                continue
            try:
                self.requests += 1
                self.client.send_results(self.project, self.run_id, envelope(current), deadline)
            except ApiError as error:
                work.extend(self._after_error(current, error))
                if self.stopped is not None or (error.transient and not error.status == 413):
                    if last and self._carry:
                        work, self._carry = [self._carry] + work, []
                    for rest in reversed(work):
                        self._redirect(rest, error)
                    return
            else:
                self._acknowledge(current)

    def _after_error(self, batch: list[Entry], error: ApiError) -> list[list[Entry]]:
        """What to send next after ``error`` answered ``batch`` (a stack: last goes first)."""
        if error.status == 413:
            return self._split_413(batch)
        if error.status in (400, 422) and error.fields and len(batch) > 1:
            half = len(batch) // 2
            return [batch[half:], batch[:half]]
        if error.status in (400, 422) and error.fields:
            fields = "; ".join(f"{f.get('field')}: {f.get('error')}" for f in error.fields
                               if isinstance(f, dict))
            self._give_up(batch, f"{error} ({fields})")
            return []
        if error.transient:
            self._redirect(batch, error)
            return []
        self.stopped = error
        self._give_up(batch, str(error))
        return []

    def _split_413(self, batch: list[Entry]) -> list[list[Entry]]:
        self.split_413 += 1
        self._learn_from_413(batch)
        if len(batch) > 1 and self._accepted[0] and self._over_caps(batch):
            return [batch]  # caps learned next to an accepted request: repacked under them
        if len(batch) > 1:  # equal counts: if one half passes, the count was not the reason
            half = len(batch) // 2
            return [batch[half:], batch[:half]]
        entry = batch[0]
        for limit in HARDER_TRIM:
            if entry.size > limit:
                smaller = trim(json.loads(entry.load()), limit)
                if len(smaller) < entry.size:
                    return [[Entry(entry.id, smaller)]]
        self._give_up(batch, "Qase refused it as too large (413) even when trimmed")
        return []

    def _learn_from_413(self, batch: list[Entry]) -> None:
        """Lower only a cap that can explain the refusal: one big result costs no count cap.

        A 413 does not say whether there were too many results or too many bytes, but a cap
        that an accepted request already exceeded cannot be the reason. With nothing
        accepted yet, bytes are taken as the reason: proxies cap bytes, and Qase's own count
        cap is the largest batch allowed. The byte cap goes halfway down to the largest
        accepted request, at most 10% at a time, so that a few 413s find it without
        trimming results much more than needed.
        """
        count, size = len(batch), batch_size(batch)
        most_results, most_bytes = self._accepted
        count_possible = count > 1 and count > most_results
        bytes_possible = size > most_bytes
        if count_possible and bytes_possible and not most_results:
            count_possible = False
        learned_count = max(count // 2, most_results) if count_possible else None
        learned_bytes = max((most_bytes + size) // 2, size * 9 // 10) if bytes_possible else None
        if not count_possible and not bytes_possible and count > 1:  # the server's caps fell
            learned_count, learned_bytes = count // 2, size - 1
        self.packer.lower_caps(learned_count, learned_bytes)
        self.client.guard.learn_caps(learned_count, learned_bytes)

    def _over_caps(self, batch: list[Entry]) -> bool:
        return len(batch) > self.packer.max_count or batch_size(batch) > self.packer.max_bytes

    def _repack(self, batch: list[Entry]) -> tuple[list[list[Entry]], list[list[Entry]]]:
        """A batch formed under higher caps, as the batches the current caps fill and the
        ones they leave open (each within the caps)."""
        packer = Packer(self.packer.max_count, self.packer.max_bytes)
        full = [piece for entry in batch for piece in packer.add(entry)]
        return full, packer.take_all()

    def _redirect(self, batch: list[Entry], error: ApiError) -> None:
        if self.stopped is not None:
            self._give_up(batch, str(self.stopped))
        else:
            self.parked.append(batch)
            self._outage_until = clock.monotonic() + OUTAGE_PAUSE
            self.last_error = error

    def _acknowledge(self, batch: list[Entry]) -> None:
        self._accepted = (max(self._accepted[0], len(batch)),
                          max(self._accepted[1], batch_size(batch)))
        self._release(batch)
        self.delivered += len(batch)
        for entry in batch:  # counted as undelivered by a Ctrl-C halfway (see Uploader)
            self.undelivered.pop(entry.id, None)
        if self.spool is not None:
            self.spool.delivered([e.id for e in batch])

    def _give_up(self, batch: list[Entry], why: str) -> None:
        self._release(batch)
        for entry in batch:
            self.undelivered[entry.id] = why

    def flush(self, deadline: clock.Deadline) -> None:
        """Send what is packed and retry what was parked, within ``deadline``."""
        self._outage_until = 0.0
        rest = self._carry + [entry for piece in self.packer.take_all() for entry in piece]
        full, open_batches = self._repack(rest)  # what waits, in the fewest requests
        batches = self.parked + full + open_batches
        self.parked, self._carry = [], []
        for index, batch in enumerate(batches):
            if deadline.expired():
                self.parked.extend(([self._carry] if self._carry else []) + batches[index:])
                self._carry = []
                break
            parked = len(self.parked)
            self.send(batch, deadline, last=index == len(batches) - 1)
            if len(self.parked) > parked:  # still failing: stop trying now
                self.parked.extend(batches[index + 1:])
                break

    def leftover_reason(self) -> Optional[str]:
        error = getattr(self, "last_error", None)
        return str(error) if error is not None else None
