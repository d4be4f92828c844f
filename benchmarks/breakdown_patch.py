"""A pytest plugin for ``breakdown.py``: switches off one part of pytest-qase's upload.

Loaded with ``-p breakdown_patch`` (``benchmarks/`` on ``PYTHONPATH``), never by users.
``QASE_BENCH_SWITCH_OFF`` says what to switch off:

- ``send``: the sender thread answers each bulk request itself, as if the server had
  taken it, without the network (no request, no rate guard);
- ``submit``: every result is dropped once ``Outcome.finish`` has built it (nothing is
  serialized, spooled, packed or sent).

With ``QASE_BENCH_SENDS`` set to a path, it writes there, at exit, how many bulk
requests the sender made and the CPU time its thread spent in them.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from typing import Any

from pytest_qase import sender, uploader

SWITCH_OFF = os.environ.get("QASE_BENCH_SWITCH_OFF", "")
SENDS_FILE = os.environ.get("QASE_BENCH_SENDS", "")
_sends = {"requests": 0, "cpu_s": 0.0}

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
    _send = sender.ResultSender.send

    def _timed_send(self: sender.ResultSender, batch: list[Any], deadline: Any, *,
                    last: bool = False) -> None:
        started = time.thread_time()
        try:
            _send(self, batch, deadline, last=last)
        finally:
            _sends["requests"] += 1
            _sends["cpu_s"] += time.thread_time() - started

    sender.ResultSender.send = _timed_send  # type: ignore[method-assign]

    @atexit.register
    def _write_sends() -> None:
        with open(SENDS_FILE, "w", encoding="utf-8") as out:
            json.dump(_sends, out)
