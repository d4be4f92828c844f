"""What the run options cost: the environment lookup at the start, and plan-only selection.

Why: an environment slug is found by paging through every environment of the project, and
``--qase-plan-only`` reads the plan and filters every collected item; both happen before the
first test runs, so their cost is paid by every session that uses them.

Usage::

    python benchmarks/run_options.py                  # both tables
    python benchmarks/run_options.py --latency 0.05   # each API answer 50 ms late

It prints two tables: the time to build a run body whose environment is the last of N
environments (with the number of requests made), and the wall time of
``pytest --collect-only`` on a suite of parametrized tests linked to cases, with and without
``--qase-plan-only`` (the plan holds every other case).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from qase_server import QaseServer  # noqa: E402

from pytest_qase import clock  # noqa: E402
from pytest_qase.client import QaseClient  # noqa: E402
from pytest_qase.ratelimit import RateGuard  # noqa: E402
from pytest_qase.runs import run_body  # noqa: E402
from pytest_qase.settings import Secret, Settings  # noqa: E402


def environment_lookup(server: QaseServer, counts: list[int]) -> None:
    print("environment slug lookup (the slug is the last environment)")
    print(f"  {'environments':>12}  {'requests':>8}  {'seconds':>8}")
    made = 0
    for count in counts:
        while made < count:
            server.add_environment(f"env-{made}")
            made += 1
        settings = Settings(enabled=True, project="DEMO", url=server.url,
                            environment=f"env-{count - 1}")
        client = QaseClient(server.url, Secret(server.token), verify=server.ca_path, timeout=30,
                            guard=RateGuard(server.url, server.token, 100_000))
        started = time.perf_counter()
        built = run_body(settings, "bench", client, clock.Deadline(60))
        elapsed = time.perf_counter() - started
        assert built.body.get("environment_id") == count, built.problems
        print(f"  {count:>12}  {client.requests_made:>8}  {elapsed:>8.3f}")
        client.close()


SUITE = """
import pytest

@pytest.mark.parametrize("n", [pytest.param(i, marks=pytest.mark.qase_id(i + 1))
                               for i in range({count})])
def test_case(n):
    pass
"""


def plan_selection(server: QaseServer, counts: list[int]) -> None:
    print("pytest --collect-only, all tests vs --qase-plan-only (plan: every other case)")
    print(f"  {'tests':>7}  {'all, s':>7}  {'plan-only, s':>12}  {'selected':>8}")
    env = dict(os.environ, QASE_API_TOKEN=server.token, QASE_URL=server.url,
               QASE_PROJECT="DEMO", QASE_COMPLETE_RUN="0")
    for count in counts:
        plan_id = server.add_plan(range(1, count + 1, 2))
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "test_many.py").write_text(SUITE.format(count=count))
            Path(folder, "pytest.ini").write_text("[pytest]\n")
            base = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p",
                    "no:cacheprovider", "--qase", f"--qase-ca-bundle={server.ca_path}"]
            times = []
            for extra in ([], [f"--qase-plan-id={plan_id}", "--qase-plan-only"]):
                started = time.perf_counter()
                done = subprocess.run(base + extra, cwd=folder, env=env, capture_output=True,
                                      text=True, timeout=600)
                times.append(time.perf_counter() - started)
            selected = sum(1 for line in done.stdout.splitlines() if "::test_case[" in line)
        print(f"  {count:>7}  {times[0]:>7.2f}  {times[1]:>12.2f}  {selected:>8}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds the server waits before each answer")
    args = parser.parse_args()
    with QaseServer() as server:
        server.configure(latency=args.latency)
        environment_lookup(server, [1, 100, 1000, 5000])
        plan_selection(server, [1000, 10000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
