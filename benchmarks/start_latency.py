"""Time to the first test: the run opened before the collection, or while pytest collects.

Why: opening the run (read the project, create the run) takes at least two round trips to
Qase. The plugin makes them on a background thread while pytest collects, so that a
session does not wait for them before its first test. How much that saves depends on the
latency of the API and on how long the collection takes, so this script measures it at
several latencies, against the same session without the plugin and with the run opened
before the collection (as the plugin does under xdist and with ``--qase-plan-only``).

Usage::

    python benchmarks/start_latency.py                        # 20 and 200 ms, 10k tests
    python benchmarks/start_latency.py --latencies 0,0.1,0.3 --tests 2000 --rounds 7

Each session collects ``--tests`` parametrized tests and stops after the first one (it
fails, ``-x``), so its wall time is start-up, collection and one test. The table shows the
median, over the rounds, of the time from starting the process to the first test. The
configurations of a round run one after the other, in an order that rotates.

The script is also loaded into every session it starts (``-p start_latency``): it notes
when the first test starts and, in the "before" configuration, makes the run opening
synchronous.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIRST_TEST_FILE = "START_LATENCY_FILE"  # where a session writes when its first test started
OPEN_BEFORE = "START_LATENCY_OPEN_BEFORE"  # set: the run is opened before the collection

SUITE = """
import pytest

@pytest.mark.parametrize("n", range({count}))
def test_case(n):
    assert n != 0  # the first test fails and -x ends the session
"""

CONFIGS = [  # name, pytest arguments, environment
    ("no plugin", ["-p", "no:qase"], {}),
    ("run opened before the collection", ["--qase"], {OPEN_BEFORE: "1"}),
    ("run opened while pytest collects", ["--qase"], {}),
]


# -- the plugin side, inside each session ------------------------------------------------

def pytest_configure(config: Any) -> None:
    if os.environ.get(OPEN_BEFORE):
        from pytest_qase import runs

        class OpenedAtOnce(runs.RunOpening):
            """Waits for its thread in the constructor, so the session's thread waits for
            the run before the collection, like the synchronous start."""

            def __init__(self, *args: Any) -> None:
                super().__init__(*args)
                self._thread.join()

        runs.RunOpening = OpenedAtOnce  # type: ignore[misc]


_started = [False]


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    path = os.environ.get(FIRST_TEST_FILE)
    if path and not _started[0]:
        _started[0] = True
        Path(path).write_text(repr(time.time()))


# -- the script ------------------------------------------------------------------------------

def first_test_after(folder: str, server: Any, args: list[str], env: dict[str, str]) -> float:
    """Seconds from starting a pytest process to its first test."""
    marker = Path(folder, "first_test")
    marker.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
               "-p", "start_latency", *args]
    if "--qase" in args:
        command.append(f"--qase-ca-bundle={server.ca_path}")
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("QASE_", "PYTEST_"))}
    environment.update(QASE_API_TOKEN=server.token, QASE_URL=server.url, QASE_PROJECT="DEMO",
                       PYTHONPATH=os.pathsep.join([str(HERE), environment.get("PYTHONPATH", "")]),
                       **{FIRST_TEST_FILE: str(marker)}, **env)
    started = time.time()
    done = subprocess.run(command, cwd=folder, env=environment, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 1 or not marker.exists():  # 1: the first test failed, as planned
        raise SystemExit(f"unexpected session ({' '.join(args)}):\n{done.stdout[-2000:]}"
                         f"{done.stderr[-2000:]}")
    if "--qase" in args and "qase: error" in done.stdout:
        raise SystemExit(f"the plugin reported an error:\n{done.stdout[-2000:]}")
    return float(marker.read_text()) - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latencies", default="0.02,0.2",
                        help="comma-separated seconds the server waits before each answer")
    parser.add_argument("--tests", type=int, default=10000, help="tests collected")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; medians are shown")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "tests"))
    from qase_server import QaseServer

    print(f"time to the first test, {args.tests} tests collected (median of {args.rounds})")
    names = [name for name, _, _ in CONFIGS]
    print(f"  {'latency':>8}  " + "  ".join(f"{name:>33}" for name in names) + "    saved")
    with tempfile.TemporaryDirectory() as folder, QaseServer() as server:
        Path(folder, "test_many.py").write_text(SUITE.format(count=args.tests))
        Path(folder, "pytest.ini").write_text("[pytest]\n")
        for latency in (float(x) for x in args.latencies.split(",")):
            server.configure(latency=latency)
            times: dict[str, list[float]] = {name: [] for name in names}
            for round_number in range(args.rounds):
                shift = round_number % len(CONFIGS)
                for name, pytest_args, env in CONFIGS[shift:] + CONFIGS[:shift]:
                    times[name].append(first_test_after(folder, server, pytest_args, env))
            medians = [statistics.median(times[name]) for name in names]
            print(f"  {latency * 1000:>6.0f}ms  "
                  + "  ".join(f"{median:>32.2f}s" for median in medians)
                  + f"  {medians[1] - medians[2]:>6.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
