"""The shared rate guard with real processes and a real file lock (short windows for speed)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from pytest_qase import clock
from pytest_qase.ratelimit import RESERVE, RESERVE_SECONDS, RateGuard, state_name

URL, TOKEN = "https://api.example.test", "guard-token"


def _hammer(directory: str, budget: int, window: float, count: int, out) -> None:
    guard = RateGuard(URL, TOKEN, budget, directory=directory, window=window)
    deadline = clock.Deadline(30)
    stamps = []
    for _ in range(count):
        assert guard.acquire(deadline)
        stamps.append(time.time())
    out.put(stamps)


def _peak(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    best = start = 0
    for end, t in enumerate(stamps):
        while t - stamps[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("processes", [2, 3])
def test_processes_never_exceed_the_budget_in_any_window(tmp_path, processes):
    budget, window, each = 5, 1.0, 6
    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_hammer,
                                       args=(str(tmp_path), budget, window, each, queue))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    stamps = [t for _ in workers for t in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=10)
    assert len(stamps) == processes * each  # nobody gave up
    assert _peak(stamps, window) <= budget
    # the work could not have fitted in fewer windows than the budget allows
    assert max(stamps) - min(stamps) >= window * ((processes * each - 1) // budget) * 0.9


def test_a_block_pauses_every_process(tmp_path):
    first = RateGuard(URL, TOKEN, 100, directory=str(tmp_path))
    second = RateGuard(URL, TOKEN, 100, directory=str(tmp_path))
    first.block_until(clock.now() + 1.0)
    started = time.monotonic()
    assert second.acquire(clock.Deadline(10))
    assert time.monotonic() - started >= 0.9


def test_deadline_bounds_every_wait(tmp_path):
    guard = RateGuard(URL, TOKEN, 1, directory=str(tmp_path), window=60)
    assert guard.acquire(clock.Deadline(1))
    started = time.monotonic()
    assert not guard.acquire(clock.Deadline(0.5))
    assert time.monotonic() - started < 5


def test_corrupt_state_file_is_replaced(tmp_path):
    path = tmp_path / (state_name(URL, TOKEN) + ".json")
    for garbage in (b"\x00\xff{not json", b"[1, 2]", b'{"sent": "nope"}'):
        path.write_bytes(garbage)
        guard = RateGuard(URL, TOKEN, 3, directory=str(tmp_path))
        assert guard.acquire(clock.Deadline(1))
        state = json.loads(path.read_text())
        assert len(state["sent"]) == 1


def test_stale_lock_file_does_not_block(tmp_path):
    (tmp_path / (state_name(URL, TOKEN) + ".lock")).write_text("left by a crashed run")
    guard = RateGuard(URL, TOKEN, 3, directory=str(tmp_path))
    assert guard.acquire(clock.Deadline(1))
    assert guard.lock_failures == 0


def test_a_hung_lock_holder_never_hangs_us(tmp_path):
    lock = tmp_path / (state_name(URL, TOKEN) + ".lock")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from filelock import FileLock; "
        f"l = FileLock({str(lock)!r}); l.acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        guard = RateGuard(URL, TOKEN, 3, directory=str(tmp_path), lock_timeout=0.5)
        started = time.monotonic()
        assert guard.acquire(clock.Deadline(5))  # goes on alone rather than hang
        assert guard.lock_failures == 1 and time.monotonic() - started < 3
    finally:
        holder.kill()
        holder.wait()


def test_state_file_name_never_contains_the_token(tmp_path):
    guard = RateGuard(URL, TOKEN, 3, directory=str(tmp_path))
    guard.acquire(clock.Deadline(1))
    guard.learn_caps(50, 100_000)
    for name in os.listdir(tmp_path):
        assert TOKEN not in name
        assert TOKEN not in (tmp_path / name).read_text(errors="replace")
    assert guard.learned_caps() == (50, 100_000)


def test_server_headers_slow_us_down_before_a_429(tmp_path):
    guard = RateGuard(URL, TOKEN, 100, directory=str(tmp_path))
    guard.observe("0", str(clock.now() + 1.0))
    assert guard.blocked_until() > clock.now() + 0.5
    guard.observe("12", str(clock.now() + 50))  # some left: no pause
    assert guard.blocked_until() < clock.now() + 1.5


@pytest.mark.skipif(not hasattr(os, "chown") or os.getuid() != 0,
                    reason="making a folder of another user needs root")
def test_a_state_folder_of_another_user_is_not_used(tmp_path, monkeypatch):
    """Someone made $TMPDIR/pytest-qase-<uid> first, open to all, with a block in it: our
    state goes to ~/.cache/pytest-qase instead, and their block does not stop us."""
    import tempfile

    from pytest_qase.ratelimit import state_directory

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    theirs = tmp_path / f"pytest-qase-{os.getuid()}"
    theirs.mkdir(mode=0o777)
    os.chmod(theirs, 0o777)
    os.chown(theirs, 1234, 1234)
    (theirs / f"{state_name(URL, TOKEN)}.json").write_text(
        json.dumps({"sent": [], "blocked_until": 9e9}))
    assert state_directory() == str(tmp_path / "home" / ".cache" / "pytest-qase")
    guard = RateGuard(URL, TOKEN, 10)
    assert guard.acquire(clock.Deadline(1))


def test_a_retry_after_of_a_day_blocks_ten_minutes_at_most():
    from pytest_qase.client import MAX_RETRY_AFTER, parse_retry_after

    assert parse_retry_after("86400") == MAX_RETRY_AFTER == 600
    assert parse_retry_after("Wed, 21 Oct 2099 07:28:00 GMT") == 600
    assert parse_retry_after("nan") == 60 and parse_retry_after("3") == 3


def test_slots_taken_ahead_are_counted_and_never_outlast_a_block(tmp_path):
    """Far from a full window, one trip to the state file takes RESERVE slots: all of them
    count in the shared window at once (the ones ahead stamped with their latest use), the
    next requests take them without the file lock, and a 429 seen by another process stops
    them at once."""
    guard = RateGuard(URL, TOKEN, 600, directory=str(tmp_path))
    state_file = tmp_path / f"{state_name(URL, TOKEN)}.json"
    assert guard.acquire(clock.Deadline(1))
    stamps = json.loads(state_file.read_text())["sent"]
    assert len(stamps) == RESERVE
    assert max(stamps) - min(stamps) == pytest.approx(RESERVE_SECONDS, abs=0.01)
    for _ in range(RESERVE - 1):
        assert guard.acquire(clock.Deadline(1))
    assert len(json.loads(state_file.read_text())["sent"]) == RESERVE  # no trip: taken ahead
    assert guard.acquire(clock.Deadline(1))
    assert len(json.loads(state_file.read_text())["sent"]) == 2 * RESERVE

    other = RateGuard(URL, TOKEN, 600, directory=str(tmp_path))
    other.block_until(clock.now() + 30)  # another process drew a 429
    assert not guard.acquire(clock.Deadline(0.3))  # its slots taken ahead do not go


def test_a_nearly_full_window_takes_one_slot_a_trip(tmp_path):
    guard = RateGuard(URL, TOKEN, 8, directory=str(tmp_path))
    for _ in range(3):
        assert guard.acquire(clock.Deadline(1))
    assert len(json.loads((tmp_path / f"{state_name(URL, TOKEN)}.json").read_text())["sent"]) == 3
