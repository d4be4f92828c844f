"""The real clock, kept out of reach of tests that freeze or patch time.

``freezegun`` and similar tools replace ``time.time`` and friends in every loaded module's
globals. Holding the original functions as attributes of an instance keeps them out of
that sweep, so result timestamps, upload deadlines and rate-limit windows stay real.
"""

from __future__ import annotations

import time


class _RealClock:
    __slots__ = ("wall", "monotonic", "sleep")

    def __init__(self) -> None:
        self.wall = time.time
        self.monotonic = time.monotonic
        self.sleep = time.sleep


CLOCK = _RealClock()


def now() -> float:
    """Seconds since the epoch, from the real wall clock."""
    return CLOCK.wall()


def monotonic() -> float:
    """A real monotonic reading, for durations and deadlines."""
    return CLOCK.monotonic()


def sleep(seconds: float) -> None:
    """Sleep for real, even while a test patches ``time.sleep``."""
    if seconds > 0:
        CLOCK.sleep(seconds)


class Deadline:
    """A point in real time after which waiting stops; every wait in the plugin uses one."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` or until the deadline; True if the full sleep fitted."""
        allowed = min(seconds, self.remaining())
        sleep(allowed)
        return allowed >= seconds
