"""Where an uploading session's extra time goes, by switching the upload off part by part.

Usage::

    python benchmarks/breakdown.py                    # 10,000 trivial tests, 7 rounds
    python benchmarks/breakdown.py --tests 3000 --rounds 5

Four configurations of the same session of N trivial tests, in rounds whose order
rotates, each a whole ``python -m pytest -q`` process against a freshly started
``tests/qase_server.py`` (20 ms added to every answer):

- no plugin (``-p no:qase``);
- ``--qase`` with every result dropped once ``Outcome.finish`` has built it: the hooks,
  the fold, and the session's fixed costs (importing ``requests``, opening and completing
  the run);
- ``--qase`` with the bulk requests answered by the sender thread itself, not sent:
  the above plus serializing, spooling and packing every result on the test thread;
- ``--qase`` uploading: the above plus the sender thread's requests.

The differences between neighbours, per test and paired per round, are the parts'
costs. The switches live in ``breakdown_patch.py``, a pytest plugin loaded with ``-p``
that replaces ``Uploader.submit`` or ``ResultSender.send``; it also counts the CPU time
of the sender thread per bulk request. Timings vary from run to run on a shared machine:
read the medians and their ranges, not single rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from performance import Server, trivial_suite  # noqa: E402  (the same server and suite)

CONFIGS = {  # label: (plugin on, what breakdown_patch switches off)
    "no plugin (-p no:qase)": (False, ""),
    "--qase, results dropped after finish": (True, "submit"),
    "--qase, spooled and packed, not sent": (True, "send"),
    "--qase, upload (20 ms/request)": (True, ""),
}
PARTS = [  # (what a part is, the configuration with it, the one without)
    ("the fold, the hooks, fixed costs", 1, 0),
    ("serialize, spool and pack", 2, 1),
    ("send (sender thread, requests)", 3, 2),
]


def session(plugin: bool, switch_off: str, suite: Path, server: Server,
            sends_file: Path) -> float:
    """One session's wall time in seconds."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("QASE_", "PYTEST_")) and k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(HERE)
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "-p", "no:rerunfailures", "-p", "no:xdist", "test_trivial.py"]
    if plugin:
        server.fresh()
        env.update(server.env(), QASE_BENCH_SWITCH_OFF=switch_off,
                   QASE_BENCH_SENDS=str(sends_file))
        args += ["-p", "breakdown_patch", "--qase", f"--qase-ca-bundle={server.ca_path}"]
    else:
        args += ["-p", "no:qase"]
    started = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=suite, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0 or (plugin and "(completed)" not in done.stdout):
        raise SystemExit(f"the session failed (exit {done.returncode}):\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall


def sender_cpu_ms(sends_file: Path) -> Optional[dict[str, float]]:
    """CPU milliseconds of the sender thread per bulk request in the last session, by part
    (``send`` is the whole)."""
    try:
        sends = json.loads(sends_file.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not sends["requests"]:
        return None
    return {part: cpu * 1000 / sends["requests"] for part, cpu in sends["cpu_s"].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=10_000, help="tests in each session")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the four sessions")
    args = parser.parse_args()
    labels = list(CONFIGS)
    walls: dict[str, list[float]] = {label: [] for label in labels}
    cpu_per_request: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        suite = trivial_suite(work, args.tests)
        server, sends_file = Server(work), work / "sends.json"
        try:
            session(*CONFIGS[labels[-1]], suite, server, sends_file)  # warm-up, not counted
            for round_ in range(args.rounds):
                shift = round_ % len(labels)
                for label in labels[shift:] + labels[:shift]:
                    walls[label].append(session(*CONFIGS[label], suite, server, sends_file))
                    cpu = sender_cpu_ms(sends_file) if CONFIGS[label] == (True, "") else None
                    if cpu is not None:
                        cpu_per_request.append(cpu)
                print(f"  round {round_ + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            server.stop()
    base = walls[labels[0]]

    def per_test_us(label: str) -> list[float]:
        return [(wall - none) * 1e6 / args.tests for wall, none in zip(walls[label], base)]

    print(f"{args.tests} trivial tests, {args.rounds} rounds (medians; x none and +us/test "
          "paired per round)")
    print(f"  {'configuration':40} {'wall s':>7} {'x none':>7} {'x range':>11} {'+us/test':>9}")
    for label in labels:
        ratios = [wall / none for wall, none in zip(walls[label], base)]
        extra = "-" if label == labels[0] else f"{statistics.median(per_test_us(label)):.1f}"
        spread = "-" if label == labels[0] else f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"  {label:40} {statistics.median(walls[label]):7.2f} "
              f"{statistics.median(ratios):7.3f} {spread:>11} {extra:>9}")
    print("\nthe parts, per test (differences of neighbouring rows, paired per round)")
    print(f"  {'part':40} {'us/test':>8} {'range':>15}")
    for part, with_it, without in PARTS:
        diffs = [a - b for a, b in zip(per_test_us(labels[with_it]),
                                       per_test_us(labels[without]))]
        print(f"  {part:40} {statistics.median(diffs):8.1f} "
              f"{min(diffs):7.1f} to {max(diffs):5.1f}")
    if cpu_per_request:
        cpu = {part: statistics.median(c.get(part, 0.0) for c in cpu_per_request)
               for part in ("send", "rate guard", "acknowledge")}
        print(f"\nsender thread CPU per bulk request (uploading, median of "
              f"{len(cpu_per_request)}): {cpu['send']:.2f} ms; of which the rate guard "
              f"{cpu['rate guard']:.2f}, acknowledging {cpu['acknowledge']:.2f}, the request "
              f"itself and the rest {cpu['send'] - cpu['rate guard'] - cpu['acknowledge']:.2f}")


if __name__ == "__main__":
    main()
