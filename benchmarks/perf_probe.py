"""A pytest plugin that ``performance.py`` loads into every session it times (``-p perf_probe``).

Why: wall time alone mixes start-up, the test loop and the end of the session. The probe
notes when the first test started, when the last one finished, when pytest unconfigured and
when the process exited (``time.monotonic``, which every process on the machine shares), and
writes them as JSON to the file named by ``PERF_PROBE_FILE``. It is loaded in every
configuration, with and without a reporter, so its own small cost is the same for each.
Under xdist only the controller writes (it sees every test start and finish).
"""

from __future__ import annotations

import atexit
import json
import os
import time
from typing import Any, Optional

import pytest

PROBE_ENV = "PERF_PROBE_FILE"

_times: dict[str, Optional[float]] = {"first_start": None, "last_finish": None,
                                      "unconfigure": None, "exit": None}
_tests = [0]


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(PROBE_ENV)
    if path and not hasattr(config, "workerinput"):
        atexit.register(_write, path)


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    if _times["first_start"] is None:
        _times["first_start"] = time.monotonic()


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    _times["last_finish"] = time.monotonic()
    _tests[0] += 1


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _times["unconfigure"] = time.monotonic()


def _write(path: str) -> None:
    """At process exit: after pytest returned, the reporter's threads included."""
    _times["exit"] = time.monotonic()
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({**_times, "tests": _tests[0]}, handle)
