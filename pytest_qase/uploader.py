"""The run buffer and its background uploader.

The test thread only calls ``submit`` (a non-blocking queue put). One daemon thread turns
results into report files, spool lines and bulk requests while the tests run, so the test
thread never waits on disk or network. ``close`` flushes within a bounded time.
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import Callable, Optional

from . import clock
from .local_report import LocalReport
from .results import Result
from .sender import ResultSender

FLUSH_INTERVAL = 10.0  # send a partial batch once its oldest result waited this long
BATCH_DEADLINE = 60.0  # retries of one batch during the session; the rest waits for the end

_STOP = object()


class Uploader:
    """Drains the run buffer: ``submit`` from the test thread, ``close`` at the end."""

    def __init__(self, *, report: Optional[LocalReport] = None,
                 sender: Optional[ResultSender] = None,
                 enrich: Optional[Callable[[Result], None]] = None,
                 flush_interval: float = FLUSH_INTERVAL,
                 batch_deadline: float = BATCH_DEADLINE) -> None:
        self.report = report
        self.sender = sender
        self.flush_interval = flush_interval
        self.batch_deadline = batch_deadline
        self.taken = 0
        self.errors: list[str] = []
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pytest-qase-uploader",
                                        daemon=True)
        self._oldest: Optional[float] = None
        self._closing: Optional[clock.Deadline] = None

    def start(self) -> None:
        self._thread.start()

    def submit(self, result: Result) -> None:
        self._queue.put(result)

    def close(self, max_wait: float) -> bool:
        """Flush and stop within ``max_wait`` seconds; True when the thread finished."""
        self._closing = clock.Deadline(max_wait)
        self._queue.put(_STOP)
        self._thread.join(timeout=max_wait + 5.0)
        return not self._thread.is_alive()

    # -- the background thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                item = self._next()
                if item is _STOP:
                    break
                if item is None:
                    self._send_partial()
                    continue
                self._take(item)
            self._finish()
        except BaseException as exc:  # never let the thread die silently with results
            self.errors.append(f"uploader stopped: {type(exc).__name__}: {exc}")
            print(f"qase: uploader stopped: {type(exc).__name__}: {exc}", file=sys.stderr)

    def _next(self) -> object:
        if self._oldest is None:
            return self._queue.get()
        wait = self._oldest + self.flush_interval - clock.monotonic()
        if wait <= 0:
            return None
        try:
            return self._queue.get(timeout=wait)
        except queue.Empty:
            return None

    def _take(self, result: Result) -> None:
        self.taken += 1
        if self.report is not None:
            try:
                self.report.write(result)
            except OSError as exc:
                self.errors.append(f"could not write the local report: {exc}")
                self.report = None
        if self.sender is None:
            return
        if self._oldest is None:
            self._oldest = clock.monotonic()
        for batch in self.sender.add(result.to_api()):
            self._send(batch)
        if not self.sender.packer.pending:
            self._oldest = None

    def _send(self, batch: list) -> None:
        assert self.sender is not None
        if self.sender.spool is not None:
            self.sender.spool.flush()
        self.sender.send(batch, clock.Deadline(self.batch_deadline))
        if self.sender.spool is not None:
            self.sender.spool.flush()

    def _send_partial(self) -> None:
        self._oldest = None
        if self.sender is not None and self.sender.packer.pending:
            self._send(self.sender.packer.take())

    def _finish(self) -> None:
        if self.sender is None:
            return
        deadline = self._closing or clock.Deadline(0)
        self.sender.flush(deadline)
        if self.sender.spool is not None:
            self.sender.spool.flush()
