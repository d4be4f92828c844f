"""Instructions a test costs, counted by valgrind instead of timed.

Why: on a shared virtual machine, wall and CPU times of the same session vary by 10 to
30% from run to run, more than the plugin's whole cost per test, so two versions of the
plugin cannot be told apart by timing them (``performance.py`` needs rounds and paired
ratios, and still shows ranges of +-0.2x). The number of instructions a session executes
barely depends on how busy the machine is. This script counts them with valgrind's
cachegrind for sessions of two sizes and takes the difference, so that start-up,
collection set-up and the end of the session cancel out: what is left is the cost of one
more test: without the plugin, with it installed but off (the last version given), and
uploading (each version given).

Usage::

    python benchmarks/instructions.py                          # no plugin vs the checkout
    python benchmarks/instructions.py --refs 7dcc137,worktree  # two versions side by side
    python benchmarks/instructions.py --tests 1000,5000 --repeat 3

A second table counts the test thread's two steps per result on their own, in one process
without threads, so exactly: folding a test's reports into a ``Result``
(``Outcome.finish``), and serializing, spooling and packing it (``ResultSender.add``).
The script runs a real session of 300 tests in-process, keeps each test's ``Outcome``, then
repeats one step over all of them; the count of a process that repeats it 20 times, minus
that of one that repeats it 10 times, divided by 3000, is the step's cost per result.

Each configuration runs ``python -m pytest -q`` on N trivial tests (one parametrized
``pass``), uploading to the fake server of ``tests/qase_server.py`` (20 ms added to every
answer, a fresh server per session), under ``valgrind --tool=cachegrind --cache-sim=no``,
which counts every instruction of the process, all of its threads included. A version
given by a git ref is exported with ``git archive`` (``performance.snapshot``) and put
first on ``PYTHONPATH``; ``worktree`` is the checkout itself. Every version runs once
outside valgrind first, so that compiling its bytecode is not counted. ``PYTHONHASHSEED`` is fixed.

What is still not exact: the background threads' share depends on timing (when the
sender wakes, how often the GIL changes hands), which moves the plugin's count by a few
percent from one session to the next; ``--repeat`` takes the median. Instructions are not
time either: cache misses and the handing over of the GIL cost time without many
instructions, so a session's wall-time ratio is larger than its instruction ratio.

Needs valgrind (``apt-get install valgrind``) and the test requirements of this
repository (``pip install -e '.[test]'``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

# the same fake server (20 ms a request), trivial suite and git snapshots as performance.py
from performance import DEFAULT_WORK, LATENCY, Server, snapshot, trivial_suite  # noqa: E402

INSTRUCTIONS = re.compile(r"I\s+refs:\s+([\d,]+)")
NO_PLUGIN, OFF, UPLOAD = "none", "off", "upload"  # what a session does


def source_of(ref: str) -> Optional[Path]:
    """A folder holding ``pytest_qase`` at ``ref`` (None for the checkout itself)."""
    return None if ref == "worktree" else snapshot(DEFAULT_WORK, ref)


def session(mode: str, source: Optional[Path], suite: Path, valgrind: bool) -> int:
    """One session without the plugin, with it installed but off, or uploading, in the
    ``suite`` folder (see ``trivial_suite``); the instructions it executed (0 outside
    valgrind)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("QASE_", "PYTEST_")) and k not in (
               "PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env["PYTHONHASHSEED"] = "0"
    if source is not None:
        env["PYTHONPATH"] = str(source)
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "-p", "no:rerunfailures", "-p", "no:xdist", "test_trivial.py"]
    server = None
    if mode == NO_PLUGIN:
        args += ["-p", "no:qase"]
    elif mode == UPLOAD:
        server = Server(suite).start()
        env.update(server.env())
        args += ["--qase", f"--qase-ca-bundle={server.ca_path}"]
    if valgrind:
        args = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
                "--cachegrind-out-file=/dev/null", *args]
    try:
        done = subprocess.run(args, env=env, cwd=suite, capture_output=True, text=True)
    finally:
        if server is not None:
            server.stop()
    if done.returncode != 0 or (mode == UPLOAD and "(completed)" not in done.stdout):
        raise SystemExit(f"{mode} ({source or 'worktree'}): the session failed "
                         f"(exit {done.returncode}):\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-2000:]}")
    if not valgrind:
        return 0
    found = INSTRUCTIONS.search(done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


PART_SUITE = """\
import pytest


@pytest.mark.parametrize('i', range(200))
def test_trivial(i):
    pass


class TestGroup:
    @pytest.mark.parametrize('name,value', [('a', 1), ('b', 2.5)] * 50)
    def test_pair(self, name, value):
        pass
"""
PART_ROUNDS = 10
PART_RESULTS = 300  # the tests of PART_SUITE
PARTS = {"finish": "Outcome.finish: fold the reports into a Result",
         "add": "serialize, spool and pack the Result"}


def run_part(part: str, rounds: int) -> None:
    """In a child process (``--part``): a real session, then ``part`` ``rounds`` times over
    its outcomes. Works with this version of the plugin and with older ones."""
    import inspect

    import pytest

    from pytest_qase import context, results, sender, spool

    outcomes: list = []
    takes_store = "store" in inspect.signature(results.Outcome).parameters

    class Keep:
        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_protocol(self, item, nextitem):  # noqa: ANN001, ANN201
            self.outcome = (results.Outcome(item) if takes_store
                            else results.Outcome(item, context.ItemContext()))
            try:
                return (yield)
            finally:
                outcomes.append(self.outcome)

        def pytest_runtest_logreport(self, report):  # noqa: ANN001, ANN201
            self.outcome.add(report)

    Path("test_parts.py").write_text(PART_SUITE)
    pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:qase", "-p", "no:randomly",
                 "-p", "no:rerunfailures", "-p", "no:xdist", "test_parts.py"], plugins=[Keep()])

    class Guard:
        def learned_caps(self):  # noqa: ANN201
            return None, None

    class Client:
        guard = Guard()

    made = [o.finish("main") for o in outcomes]
    into = sender.ResultSender(Client(), "DEMO", 1, batch_size=200, max_bytes=4 << 20,
                               spool=spool.Spool(os.path.abspath("spool.jsonl"), {}))
    new_api = hasattr(results.Result, "api_json")
    for _ in range(rounds):
        if part == "finish":
            for outcome in outcomes:
                outcome.finish("main")
        else:
            for result in made:
                if new_api:
                    into.add(str(result.id), result.api_json(), result.to_api)
                else:
                    into.add(result.to_api())


def count_part(source: Optional[Path], part: str, rounds: int, valgrind: bool = True) -> int:
    """The instructions of one ``--part`` child (0 outside valgrind)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env["PYTHONHASHSEED"] = "0"
    if source is not None:
        env["PYTHONPATH"] = str(source)
    args = [sys.executable, str(Path(__file__).resolve()), "--part", part,
            "--rounds", str(rounds)]
    if valgrind:
        args = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
                "--cachegrind-out-file=/dev/null", *args]
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(args, env=env, cwd=folder, capture_output=True, text=True)
    found = INSTRUCTIONS.search(done.stderr)
    if done.returncode != 0 or (valgrind and found is None):
        raise SystemExit(f"--part {part} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", "")) if valgrind else 0


def print_parts(plugin_refs: list[str], sources: dict[str, Optional[Path]], jobs: int) -> None:
    """Each step's count at ``PART_ROUNDS`` and twice as many rounds: the difference is
    ``PART_ROUNDS`` rounds of the step alone, whatever the process does once (start-up,
    the session, a first import) cancelling out."""
    for ref in plugin_refs:  # compile the harness's imports outside the count
        count_part(sources[ref], "finish", 0, valgrind=False)
    with ThreadPoolExecutor(jobs) as pool:
        counts = {(ref, part, rounds): pool.submit(count_part, sources[ref], part, rounds)
                  for ref in plugin_refs for part in PARTS
                  for rounds in (PART_ROUNDS, 2 * PART_ROUNDS)}
        per_result = {(ref, part): (counts[ref, part, 2 * PART_ROUNDS].result()
                                    - counts[ref, part, PART_ROUNDS].result())
                      / (PART_ROUNDS * PART_RESULTS)
                      for ref in plugin_refs for part in PARTS}
    print("\ninstructions per result of the test thread's two steps, on their own "
          f"({PART_RESULTS} results of a real session, {PART_ROUNDS} more rounds)")
    print(f"  {'step':48} " + " ".join(f"{ref:>14}" for ref in plugin_refs))
    for part, label in PARTS.items():
        print(f"  {label:48} " + " ".join(f"{per_result[ref, part]:14,.0f}"
                                          for ref in plugin_refs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refs", default="worktree",
                        help="comma-separated versions to count: git refs or 'worktree'")
    parser.add_argument("--tests", default="1000,3000",
                        help="the two session sizes (default 1000,3000)")
    parser.add_argument("--repeat", type=int, default=1, help="sessions of each kind")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind sessions at once")
    parser.add_argument("--no-parts", action="store_true",
                        help="skip the table of the test thread's steps on their own")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        run_part(args.part, args.rounds)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    small, large = sorted(int(n) for n in args.tests.split(","))
    refs = [r.strip() for r in args.refs.split(",") if r.strip()]
    sources = {ref: source_of(ref) for ref in refs}
    # (what the session does, the plugin's version): the last version also installed but off
    kinds = [(NO_PLUGIN, refs[-1]), (OFF, refs[-1])] + [(UPLOAD, ref) for ref in refs]
    with tempfile.TemporaryDirectory() as folder:
        suites = {n: trivial_suite(Path(folder), n) for n in (small, large)}
        for mode, ref in kinds:  # compile every version's bytecode outside the count
            session(mode, sources[ref], suites[small], valgrind=False)
        with ThreadPoolExecutor(args.jobs) as pool:
            counts = {(kind, n, i): pool.submit(session, kind[0], sources[kind[1]], suites[n],
                                                True)
                      for kind in kinds for n in (small, large) for i in range(args.repeat)}
            per_test = {kind: statistics.median(
                (counts[kind, large, i].result() - counts[kind, small, i].result())
                / (large - small) for i in range(args.repeat)) for kind in kinds}
    base = per_test[kinds[0]]
    print(f"instructions per trivial test (valgrind cachegrind: sessions of {large} minus "
          f"{small} tests, median of {args.repeat}; uploading at {LATENCY} s a request)")
    print(f"  {'configuration':34} {'instr/test':>12} {'+instr/test':>12} {'x none':>7}")
    labels = {NO_PLUGIN: "no plugin (-p no:qase)", OFF: "installed but off, {}",
              UPLOAD: "upload, {}"}
    for kind in kinds:
        extra = "-" if kind[0] == NO_PLUGIN else f"{per_test[kind] - base:,.0f}"
        print(f"  {labels[kind[0]].format(kind[1]):34} {per_test[kind]:12,.0f} {extra:>12} "
              f"{per_test[kind] / base:7.3f}")
    if not args.no_parts:
        print_parts(refs, sources, args.jobs)


if __name__ == "__main__":
    main()
