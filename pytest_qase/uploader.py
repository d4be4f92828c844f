"""The run buffer and its background uploader.

The test thread calls ``submit``. A sender thread delivers full batches, so that a slow or
failing server never holds up a test. What happens in between depends on the result:

- **Uploading, no local report, no files** (the common case): the test thread serializes
  the result, appends it to the spool and packs it, right away: about 35 us inside a
  session. Handing it to another thread costs the tests more: under the GIL that
  thread's Python runs one for one against them anyway, and after each of its system
  calls it must take the GIL back from the busy test thread, up to the 5 ms switch
  interval, forcing a switch (see docs/performance.md, "Why the test thread does the
  spooling").
- **A local report, or files to upload first**: a spooler thread takes the result from a
  queue. Report files are system-call time that can run beside the tests (on the test
  thread they made the loop 2.6x slower); file uploads are network time.

Once the spooler has caught up it pauses for ``SPOOL_PAUSE`` before it looks again, so it
takes the results of many short tests in one go. Every ``SPOOL_TICK`` it also puts what
the test thread spooled on disk (the spool is buffered) and hands over a partial batch
that waited ``FLUSH_INTERVAL``. ``wait_spooled`` and ``close`` cut the pause short.
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import AbstractSet, Any, Optional

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
SPOOL_TICK = 0.5  # how often the spooler puts what the test thread spooled on disk

_STOP = object()
_TICK = object()  # the spooler's periodic look at the spool and the oldest partial batch


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
        # uploading without a local report: results without files are spooled and packed
        # by the test thread itself (see the module docstring); the lock keeps the packer,
        # the spool and the counters whole between it and the spooler thread
        self._direct = report is None and sender is not None
        self._lock = threading.Lock()
        # the spooler is uploading files (network time, rate-limit waits): it cannot flush
        # what the test thread spools, so the test thread flushes each result itself
        self._uploading_files = False

    def start(self) -> None:
        self._threads[0].start()
        if self.sender is not None:
            self._threads[1].start()

    def submit(self, result: Result) -> None:
        self.submitted += 1
        if self._direct and not _files(result):
            with self._lock:
                try:
                    self._take(result, [])
                except Exception as exc:
                    self._drop(result, exc)
                except BaseException:  # Ctrl-C halfway: never a result silently lost
                    self._interrupted(result)
                    raise
                if self._uploading_files:  # the spooler cannot flush now: on disk at once
                    self._flush_spool_locked()
            return
        self._results.put(result)

    def wait_spooled(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until every result submitted so far is on disk.

        xdist workers call it before each test, so a worker that dies in a test leaves every
        earlier result in its spool for the controller. Usually it returns at once.
        """
        wanted = self.submitted
        if self._spooled >= wanted:
            return True
        if self._direct:  # what the test thread spooled needs only a flush
            self._flush_spool()
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
            if item is _TICK:
                self._flush_spool()
                if self._oldest is not None and (
                        clock.monotonic() - self._oldest >= self.flush_interval):
                    self._hand_over_partial()
                continue
            with self._lock:
                try:
                    files_due = self._take(item)
                except Exception as exc:
                    self._drop(item, exc)
                    files_due = False
            if files_due:
                self._upload_files()
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
        with self._lock:
            self._flush_spool_locked()
            spooled = self.taken - len(self._with_files)
        with self._spooled_changed:
            self._spooled = spooled
            self._spooled_changed.notify_all()

    def _flush_spool_locked(self) -> None:
        if self.sender is not None and self.sender.spool:
            self.sender.spool.flush()

    def _interrupted(self, result: Result) -> None:
        """Ctrl-C while the test thread spooled ``result``: it may be in the spool but in no
        batch, or not even in the spool; it counts as undelivered until Qase acknowledges
        it (the sender forgets an acknowledged id), so the run is not completed without it.
        Not in the spool, it is also counted as dropped: an xdist controller counts what is
        left in its workers' spools, plus what never reached one."""
        if self.sender is None:
            return
        self.sender.undelivered.setdefault(
            result.id, "interrupted (Ctrl-C) while its result was being spooled")
        spool = self.sender.spool
        if spool is None or not spool.holds(result.id):
            self.dropped += 1

    def _next(self) -> object:
        """The next queued result, ``_TICK`` when it is time to look at the spool, or _STOP."""
        wait = SPOOL_TICK if self._direct else None
        if self._oldest is not None:
            due = self._oldest + self.flush_interval - clock.monotonic()
            wait = due if wait is None else min(wait, due)
            if wait <= 0:
                return _TICK
        try:
            return self._results.get(timeout=wait)
        except queue.Empty:
            return _TICK

    def _take(self, result: Result, files: Optional[list[tuple[list[int], Any]]] = None,
              ) -> bool:
        """Write, spool and pack one result (under ``_lock``); True when the results waiting
        for their files should be uploaded now (the caller does it, outside the lock).

        ``files``: the result's files (see ``_files``), when the caller already knows them.
        """
        self.taken += 1
        self.warnings.extend(result.warnings)
        if self.report is not None:
            try:
                self.warnings.extend(self.report.write(result))
            except OSError as exc:
                self.errors.append(f"{REPORT_FAILED}: {exc}")
                self.report, self.report_failed = None, True
        files = _files(result) if files is None else files
        if self.sender is None:
            self._release(files, [])
            return False
        if files and self.attachments is not None and self.sender.stopped is None and any(
                a.hash is None for _, a in files):
            # files first, so the result carries their hashes; several results share requests
            self._with_files.append(result)
            return sum(len(list(walk(r))) for r in self._with_files) >= MAX_REQUEST_FILES
        self._queue(result, files=files)
        return False

    def _upload_files(self) -> None:
        """Upload the files of the waiting results, then queue each result.

        The spooler thread's own: the upload runs outside ``_lock``, so that the test
        thread's own spooling never waits for the network.
        """
        waiting = list(self._with_files)  # still counted as not on disk while they upload
        if not waiting or self.attachments is None:
            return
        with self._lock:
            self._uploading_files = True  # set before this flush: nothing is left behind
            self._flush_spool_locked()
        try:
            later = self.attachments.upload(waiting, self._batch_deadline())
        finally:
            self._uploading_files = False
        with self._lock:
            del self._with_files[:len(waiting)]  # only this thread adds to it
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

    def _queue(self, result: Result, later: AbstractSet[str] = frozenset(),
               files: Optional[list[tuple[list[int], Any]]] = None) -> None:
        """Spool and pack a result; one whose files must wait is kept for a later upload."""
        assert self.sender is not None
        files = _files(result) if files is None else files
        missing = [(where, a) for where, a in files if a.id in later] if files else None
        if missing:
            records = [pending_record(where, a, self.store) for where, a in missing]
            self.sender.hold(result.to_api(), [r for r in records if r],
                             f"its attachments could not be uploaded "
                             f"({self.attachments.last_error if self.attachments else ''}); "
                             "it is kept for a later upload")
            self._release(files, [a for _, a in missing])
            return
        body = result.api_json()
        if files:
            self._release(files, [])
        if self._oldest is None:
            self._oldest = clock.monotonic()
        for batch in self.sender.add(str(result.id), body, result.to_api):
            self._hand_over(batch)
        if not self.sender.packer.has_pending:
            self._oldest = None

    @staticmethod
    def _release(files: list[tuple[list[int], Any]], keep: list) -> None:
        """Free the captured bytes and copies that are no longer needed."""
        for _, attachment in files:
            if not any(attachment is kept for kept in keep):
                attachment.release()

    def _hand_over(self, batch: list[Entry]) -> None:
        if self.sender is not None and self.sender.spool is not None:
            self.sender.spool.flush()  # a body may be read back from the file later
        self._batches.put(batch)

    def _hand_over_partial(self) -> None:
        with self._lock:
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


def _files(result: Result) -> list[tuple[list[int], Any]]:
    """The result's files with where each sits (see ``walk``); most results have none."""
    return list(walk(result)) if result.attachments or result.steps else []
