"""One request budget shared by every process that uses the same API host and token.

xdist workers, the controller, concurrent pytest runs and the ``upload`` command all take
a slot from one sliding-window counter kept in a small JSON file in a per-user temp
directory, named by a hash of host and token (never the token itself) and guarded by
``filelock``. A 429 writes "blocked until T" into the same file so every process pauses.
The file also carries the batch caps learned from 413 answers.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import threading
from typing import Any, Optional

from filelock import FileLock, Timeout

from . import clock

WINDOW_SECONDS = 60.0
SAFETY_SECONDS = 0.5  # servers count windows on their own clock: keep a little margin
LOCK_TIMEOUT = 10.0
MAX_PAUSE = 5.0  # longest single sleep, so deadlines and other processes are rechecked
# Slots taken per trip to the state file while the window is far from full. A trip is about
# 50 system calls (lock, read, write, rename, unlock), each a GIL handoff against the
# busy test thread; four slots a trip cut that to a plain read for three requests of four
# (a 429's block is still seen at once). A slot not used within RESERVE_SECONDS is dropped:
# it stays counted (stamped with that latest time), never lent.
RESERVE = 4
RESERVE_SECONDS = 2.0
CAPS_FRESH = 2.0  # seconds the caps read on a trip are reused before the file is read again


def state_directory() -> str:
    """A private directory for this user's shared state.

    The temp directory is shared by every user of the machine: a folder of that name made
    by someone else (or a link to one) would let them block or read our uploads, so it is
    used only when it is ours and closed to others; else the user's ``~/.cache``.
    """
    try:
        user = str(os.getuid())
    except AttributeError:  # Windows
        user = os.environ.get("USERNAME", "user")
    path = os.path.join(tempfile.gettempdir(), f"pytest-qase-{user}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    if _private(path):
        return path
    fallback = os.path.join(os.path.expanduser("~"), ".cache", "pytest-qase")
    os.makedirs(fallback, mode=0o700, exist_ok=True)
    if _private(fallback):
        return fallback
    raise OSError(f"{path} belongs to another user or others may write to it: remove it")


def _private(path: str) -> bool:
    """A real folder (not a link) of this user that nobody else may write to."""
    if not hasattr(os, "getuid"):
        return True
    info = os.lstat(path)
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and not info.st_mode & 0o022)


def state_name(url: str, token: str) -> str:
    return hashlib.sha256(f"{url}\0{token}".encode()).hexdigest()[:24]


def read_small_file(path: str) -> bytes:
    """A file's bytes in three system calls (``open()`` takes seven): the sender thread's
    every call is a wait for the GIL against the busy test thread (up to 5 ms)."""
    handle = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:  # 64 KiB: the state file's size; a larger buffer is an mmap and munmap
            chunk = os.read(handle, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            if len(chunk) < 1 << 16:  # a regular file: a short read is its end
                break
        return b"".join(chunks)
    finally:
        os.close(handle)


class RateGuard:
    """Takes a slot before each request; waits (boundedly) when the budget is spent."""

    def __init__(self, url: str, token: str, budget: int, directory: Optional[str] = None,
                 window: float = WINDOW_SECONDS, lock_timeout: float = LOCK_TIMEOUT) -> None:
        directory = directory or state_directory()
        base = os.path.join(directory, state_name(url, token))
        self.path = base + ".json"
        self._lock = FileLock(base + ".lock", timeout=lock_timeout)
        self._thread_lock = threading.Lock()
        self.budget = budget
        self.window = window
        self.lock_failures = 0
        self.waited_seconds = 0.0
        self._reserved: list[float] = []  # stamps of slots taken ahead (see RESERVE)
        self._caps: tuple[Optional[int], Optional[int]] = (None, None)
        self._caps_read = -CAPS_FRESH  # when (monotonic) ``_caps`` was read

    # -- the state file ---------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        try:
            state = json.loads(read_small_file(self.path))
            if not isinstance(state, dict) or not isinstance(state.get("sent", []), list):
                raise ValueError("not a state object")
            state["sent"] = [float(t) for t in state.get("sent", [])]
            state["blocked_until"] = float(state.get("blocked_until", 0.0))
            self._remember_caps(state)
            return state
        except (OSError, ValueError, TypeError):  # missing or corrupt: start afresh
            return {"sent": [], "blocked_until": 0.0}

    def _write(self, state: dict[str, Any]) -> None:
        temporary = f"{self.path}.{os.getpid()}.{threading.get_ident()}.tmp"
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(json.dumps(state).encode("utf-8"))
            while view:
                view = view[os.write(handle, view):]
        finally:
            os.close(handle)
        os.replace(temporary, self.path)

    def _update(self, change) -> Any:
        """Run ``change(state)`` under the file lock and save; without the lock, run unsaved."""
        with self._thread_lock:
            try:
                with self._lock:
                    state = self._read()
                    answer = change(state)
                    self._write(state)
                    self._remember_caps(state)
                    return answer
            except (Timeout, OSError):
                # a lock we cannot get must never hang or crash the session: go on alone
                self.lock_failures += 1
                return change(self._read())

    # -- slots --------------------------------------------------------------------------

    def acquire(self, deadline: clock.Deadline) -> bool:
        """Take one request slot; False when the deadline passes first."""
        with self._thread_lock:
            now = clock.now()
            self._reserved = [t for t in self._reserved if t > now]
            # a slot taken ahead goes unless a 429 blocks the token (a read, without the lock)
            if self._reserved and self._read()["blocked_until"] <= now:
                self._reserved.pop(0)
                return True
            self._reserved = []
        while True:
            wait = self._update(self._try_take)
            if wait <= 0:
                return True
            if deadline.expired():
                return False
            pause = min(wait, MAX_PAUSE)
            self.waited_seconds += pause
            if not deadline.sleep(pause) and deadline.expired():
                return False

    def _try_take(self, state: dict[str, Any]) -> float:
        now = clock.now()
        horizon = now - self.window - SAFETY_SECONDS
        sent = [t for t in state["sent"] if t > horizon]
        state["sent"] = sent
        if state["blocked_until"] > now:
            return state["blocked_until"] - now
        if len(sent) >= self.budget:
            return sorted(sent)[-self.budget] - horizon
        sent.append(now)
        if len(sent) + RESERVE <= self.budget // 4:  # far from full: take a few ahead
            ahead = [now + RESERVE_SECONDS] * (RESERVE - 1)
            sent.extend(ahead)
            self._reserved = ahead
        return 0.0

    def block_until(self, until: float) -> None:
        """Every process pauses until ``until`` (after a 429, or when the server says so)."""

        def change(state: dict[str, Any]) -> None:
            state["blocked_until"] = max(state["blocked_until"], until)

        self._reserved = []  # a slot taken ahead must not go out during the block
        self._update(change)

    def observe(self, remaining: Optional[str], reset: Optional[str]) -> None:
        """Slow down before a 429: when the server says none are left, wait for its reset."""
        try:
            if remaining is not None and int(remaining) <= 0 and reset:
                reset_at = float(reset)
                if clock.now() < reset_at < clock.now() + 2 * self.window:
                    self.block_until(reset_at)
        except ValueError:
            pass

    def blocked_until(self) -> float:
        return self._read()["blocked_until"]

    # -- caps learned from 413 ------------------------------------------------------------

    def learned_caps(self) -> tuple[Optional[int], Optional[int]]:
        """The caps learned from 413 answers by any process (at most CAPS_FRESH s old)."""
        if clock.monotonic() - self._caps_read >= CAPS_FRESH:
            self._read()
        return self._caps

    def _remember_caps(self, state: dict[str, Any]) -> None:
        caps = state.get("caps")
        self._caps = (caps.get("count"), caps.get("bytes")) if isinstance(caps, dict) else (
            None, None)
        self._caps_read = clock.monotonic()

    def learn_caps(self, count: Optional[int], size: Optional[int]) -> None:
        def change(state: dict[str, Any]) -> None:
            caps = state.get("caps") if isinstance(state.get("caps"), dict) else {}
            if count is not None:
                caps["count"] = min(count, caps.get("count") or count)
            if size is not None:
                caps["bytes"] = min(size, caps.get("bytes") or size)
            state["caps"] = caps

        self._update(change)
