"""A pytest plugin for ``breakdown.py``: switches off one part of pytest-qase's upload.

Loaded with ``-p breakdown_patch`` (``benchmarks/`` on ``PYTHONPATH``), never by users.
``QASE_BENCH_SWITCH_OFF`` says what to switch off:

- ``send``: the sender thread answers each bulk request itself, as if the server had
  taken it, without the network (no request, no rate guard);
- ``submit``: every result is dropped once ``Outcome.finish`` has built it (nothing is
  serialized, spooled, packed or sent).

With ``QASE_BENCH_SENDS`` set to a path, it writes there, at exit, how many bulk
requests the sender made and the CPU time its thread spent in them, in all and in two of
their parts: the shared rate guard, and acknowledging the results (the spool's line).
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from typing import Any

from pytest_qase import ratelimit, sender, uploader

SWITCH_OFF = os.environ.get("QASE_BENCH_SWITCH_OFF", "")
SENDS_FILE = os.environ.get("QASE_BENCH_SENDS", "")
_cpu: dict[str, float] = {}  # CPU seconds of the sender thread, by part
_sends: dict[str, Any] = {"requests": 0, "cpu_s": _cpu}

if SWITCH_OFF == "send":
    def _acknowledge_unsent(self: sender.ResultSender, batch: list[Any], deadline: Any, *,
                            last: bool = False) -> None:
        self._acknowledge(batch)

    sender.ResultSender.send = _acknowledge_unsent  # type: ignore[method-assign]
elif SWITCH_OFF == "submit":
    uploader.Uploader.submit = lambda self, result: None  # type: ignore[method-assign]
elif SWITCH_OFF:
    raise ValueError(f"QASE_BENCH_SWITCH_OFF={SWITCH_OFF!r}: must be 'send' or 'submit'")

if SENDS_FILE:
    SENDER_THREAD = "pytest-qase-send_batches"  # the uploader's name for it

    def _timed(owner: type, name: str, part: str) -> None:
        """Add the sender thread's CPU time in ``owner.name`` to ``part`` (the run's own
        requests, made on other threads, are left out)."""
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread().name != SENDER_THREAD:
                return original(*args, **kwargs)
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                _cpu[part] = _cpu.get(part, 0.0) + time.thread_time() - started
                if part == "send":
                    _sends["requests"] += 1

        setattr(owner, name, timed)

    _timed(sender.ResultSender, "send", "send")
    _timed(ratelimit.RateGuard, "acquire", "rate guard")
    _timed(sender.ResultSender, "_acknowledge", "acknowledge")

    @atexit.register
    def _write_sends() -> None:
        with open(SENDS_FILE, "w", encoding="utf-8") as out:
            json.dump(_sends, out)
