"""The run buffer and its background uploader.

The test thread only calls ``submit`` (a non-blocking queue put). A spooler thread turns
each result into its report file, its spool line and its place in a batch; a sender
thread delivers full batches. Two threads, so that a slow or failing server never delays
spooling: what a test finished is on disk within milliseconds (``SPOOL_PAUSE`` at most,
plus the work), even if the process dies right after. ``close`` flushes within a bounded
time.

Once the spooler has caught up it pauses for ``SPOOL_PAUSE`` before it looks again, so it
takes the results of many short tests in one go: waking it (and handing the GIL back and
forth) for every result would cost the test thread more than the spooling itself.
``wait_spooled`` and ``close`` cut the pause short.
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import AbstractSet, Optional

from . import clock
from .attachments import (
    MAX_REQUEST_FILES,
    AttachmentStore,
    AttachmentUploader,
    pending_record,
    walk,
)
from .batching import Entry
from .local_report import LocalReport
from .results import Result
from .sender import ResultSender

FLUSH_INTERVAL = 10.0  # send a partial batch once its oldest result waited this long
BATCH_DEADLINE = 60.0  # retries of one batch during the session; the rest waits for the end
REPORT_FAILED = "could not write the local report"
MAX_ERRORS = 5  # error lines of one process in the summary; the count says the rest
SPOOL_PAUSE = 0.02  # the spooler's rest once it caught up: results gather, one wake-up takes all

_STOP = object()


class _BatchDeadline(clock.Deadline):
    """A batch's own deadline, cut short once the session ends and ``qase_max_wait`` runs."""

    def __init__(self, seconds: float, uploader: Uploader) -> None:
        super().__init__(seconds)
        self._uploader = uploader

    def remaining(self) -> float:
        closing = self._uploader._closing
        own = super().remaining()
        return own if closing is None else min(own, closing.remaining())


class Uploader:
    """Drains the run buffer: ``submit`` from the test thread, ``close`` at the end."""

    def __init__(self, *, report: Optional[LocalReport] = None,
                 sender: Optional[ResultSender] = None,
                 flush_interval: float = FLUSH_INTERVAL,
                 batch_deadline: Optional[float] = None,
                 attachments: Optional[AttachmentUploader] = None,
                 store: Optional[AttachmentStore] = None) -> None:
        self.report = report
        self.sender = sender
        self.attachments = attachments
        self.store = store
        self.warnings: list[str] = []  # attach-time and attachment problems, for the summary
        self._with_files: list[Result] = []  # results waiting for their files to be uploaded
        self.flush_interval = flush_interval
        self.batch_deadline = BATCH_DEADLINE if batch_deadline is None else batch_deadline
        self.taken = 0
        self.dropped = 0  # results that could not be processed (see ``_drop``)
        self.crashed = False  # a thread died: results may be lost (see ``_guarded``)
        self.report_failed = False  # a report file could not be written
        self.errors: list[str] = []
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._batches: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._guarded, args=(work,), daemon=True,
                                          name=f"pytest-qase-{work.__name__.strip('_')}")
                         for work in (self._spool_results, self._send_batches)]
        self._oldest: Optional[float] = None
        self._closing: Optional[clock.Deadline] = None
        self.submitted = 0  # counted by the test thread
        self._spooled = 0  # results taken and on disk (spool flushed, report file written)
        self._spooled_changed = threading.Condition()
        self._nudge = threading.Event()  # ends the spooler's pause (wait_spooled, close)

    def start(self) -> None:
        self._threads[0].start()
        if self.sender is not None:
            self._threads[1].start()

    def submit(self, result: Result) -> None:
        self.submitted += 1
        self._results.put(result)

    def wait_spooled(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until every result submitted so far is on disk.

        xdist workers call it before each test, so a worker that dies in a test leaves every
        earlier result in its spool for the controller. Usually it returns at once.
        """
        wanted = self.submitted
        if self._spooled >= wanted:
            return True
        self._nudge.set()
        deadline = clock.Deadline(timeout)
        with self._spooled_changed:
            while self._spooled < wanted and self._threads[0].is_alive():
                if deadline.expired():
                    return False
                self._spooled_changed.wait(min(deadline.remaining(), 0.1))
        return self._spooled >= wanted

    def close(self, max_wait: float) -> bool:
        """Flush and stop within ``max_wait`` seconds; True when everything finished."""
        self._closing = clock.Deadline(max_wait)
        self._results.put(_STOP)
        self._nudge.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=self._closing.remaining() + 5.0)
        return not any(thread.is_alive() for thread in self._threads)

    def _guarded(self, work) -> None:
        try:
            work()
        except BaseException as exc:  # never let a thread die silently with results
            self.crashed = True
            self.errors.append(f"uploader stopped: {type(exc).__name__}: {exc}")
            print(f"qase: error: uploader stopped: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            self._batches.put(_STOP)

    # -- the spooler thread -----------------------------------------------------------------

    def _spool_results(self) -> None:
        while True:
            item = self._next()
            if item is _STOP:
                break
            if item is None:
                self._hand_over_partial()
                continue
            try:
                self._take(item)
            except Exception as exc:
                self._drop(item, exc)
            if self._results.empty():  # idle: put what we have on disk, then upload files
                self._flush_spool()
                self._upload_files()
                self._flush_spool()
                self._nudge.wait(SPOOL_PAUSE)  # let the next results gather (see above)
                self._nudge.clear()
        self._upload_files()
        self._hand_over_partial()
        self._batches.put(_STOP)

    def _flush_spool(self) -> None:
        """Put every result taken so far on disk and wake ``wait_spooled``.

        A result still waiting for its files to upload is in memory until they are, so it
        does not count as on disk: an xdist worker's ``wait_spooled`` waits for it too.
        """
        if self.sender is not None and self.sender.spool:
            self.sender.spool.flush()
        with self._spooled_changed:
            self._spooled = self.taken - len(self._with_files)
            self._spooled_changed.notify_all()

    def _next(self) -> object:
        if self._oldest is None:
            return self._results.get()
        wait = self._oldest + self.flush_interval - clock.monotonic()
        if wait <= 0:
            return None
        try:
            return self._results.get(timeout=wait)
        except queue.Empty:
            return None

    def _take(self, result: Result) -> None:
        self.taken += 1
        self.warnings.extend(result.warnings)
        if self.report is not None:
            try:
                self.warnings.extend(self.report.write(result))
            except OSError as exc:
                self.errors.append(f"{REPORT_FAILED}: {exc}")
                self.report, self.report_failed = None, True
        if self.sender is None:
            self._release(result, [])
            return
        if self.attachments is not None and self.sender.stopped is None and any(
                a.hash is None for _, a in walk(result)):
            # files first, so the result carries their hashes; several results share requests
            self._with_files.append(result)
            if sum(len(list(walk(r))) for r in self._with_files) >= MAX_REQUEST_FILES:
                self._upload_files()
            return
        self._queue(result)

    def _upload_files(self) -> None:
        """Upload the files of the waiting results, then queue each result."""
        waiting, self._with_files = self._with_files, []
        if not waiting or self.attachments is None:
            return
        later = self.attachments.upload(waiting, self._batch_deadline())
        for result in waiting:
            try:
                self._queue(result, later)
            except Exception as exc:
                self._drop(result, exc)

    def _drop(self, result: Result, exc: Exception) -> None:
        """One result that cannot be written or sent (a hook left a value of the wrong type
        on it): the others go on, and it is counted as not delivered, saying why."""
        why = f"could not process the result of {result.nodeid}: {type(exc).__name__}: {exc}"
        self.dropped += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(why)
        if self.sender is not None:
            self.sender.undelivered[result.id] = why

    def _queue(self, result: Result, later: AbstractSet[str] = frozenset()) -> None:
        """Spool and pack a result; one whose files must wait is kept for a later upload."""
        assert self.sender is not None
        missing = [(where, a) for where, a in walk(result) if a.id in later]
        if missing:
            records = [pending_record(where, a, self.store) for where, a in missing]
            self.sender.hold(result.to_api(), [r for r in records if r],
                             f"its attachments could not be uploaded "
                             f"({self.attachments.last_error if self.attachments else ''}); "
                             "it is kept for a later upload")
            self._release(result, [a for _, a in missing])
            return
        payload = result.to_api()
        self._release(result, [])
        if self._oldest is None:
            self._oldest = clock.monotonic()
        for batch in self.sender.add(payload):
            self._hand_over(batch)
        if not self.sender.packer.has_pending:
            self._oldest = None

    @staticmethod
    def _release(result: Result, keep: list) -> None:
        """Free the captured bytes and copies that are no longer needed."""
        for _, attachment in walk(result):
            if not any(attachment is kept for kept in keep):
                attachment.release()

    def _hand_over(self, batch: list[Entry]) -> None:
        if self.sender is not None and self.sender.spool is not None:
            self.sender.spool.flush()  # a body may be read back from the file later
        self._batches.put(batch)

    def _hand_over_partial(self) -> None:
        self._oldest = None
        if self.sender is not None:
            for batch in self.sender.packer.take_all():
                self._hand_over(batch)

    # -- the sender thread ------------------------------------------------------------------

    def _batch_deadline(self) -> clock.Deadline:
        return _BatchDeadline(self.batch_deadline, self)

    def _send_batches(self) -> None:
        assert self.sender is not None
        while True:
            batch = self._batches.get()
            if batch is _STOP:
                break
            self.sender.send(batch, self._batch_deadline())
        self.sender.flush(self._closing or clock.Deadline(0))
        if self.sender.spool is not None:
            self.sender.spool.flush()
