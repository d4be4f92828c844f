"""What the runtime API costs on the test thread, with the plugin off and on.

Why: ``qase.step`` and friends sit inside users' tests, so their cost must be close to
nothing when the plugin is off and small when it records. Then one real session: a suite
whose tests use steps and attachments, run with and without ``--qase`` against the local
server of ``tests/qase_server.py``.

Usage::

    python benchmarks/runtime_api.py              # micro timings and a 300-test session
    python benchmarks/runtime_api.py --tests 1000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from pytest_qase import context, qase  # noqa: E402
from pytest_qase.context import ItemContext  # noqa: E402


def plain(user: str) -> str:
    return user


@qase.step("Log in as {user}")
def decorated(user: str) -> str:
    return user


def with_block() -> None:
    with qase.step("a step"):
        pass


def per_call(statement, number: int) -> float:
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6


def micro() -> None:
    payload = b"x" * 100_000
    rows = []
    rows.append(("plain function call", per_call(lambda: plain("a"), 100_000), "-"))
    off_decorated = per_call(lambda: decorated("a"), 100_000)
    off_with = per_call(with_block, 100_000)
    off_attach = per_call(lambda: qase.attach(content=payload, filename="a.bin"), 100_000)
    recording = ItemContext()
    context.activate(recording)
    try:
        on_decorated = per_call(lambda: decorated("a"), 20_000)
        recording.steps.clear()
        on_with = per_call(with_block, 20_000)
        recording.steps.clear()
        on_attach = per_call(lambda: qase.attach(content=payload, filename="a.bin"), 2_000)
        recording.attachments.clear()
    finally:
        context.activate(None)
    rows += [("@qase.step decorated call", off_decorated, on_decorated),
             ("with qase.step(...)", off_with, on_with),
             ("qase.attach(content=100 KB)", off_attach, on_attach)]
    print(f"{'per call, microseconds':34} {'plugin off':>11} {'recording':>11}")
    for name, off, on in rows:
        on_text = f"{on:11.2f}" if isinstance(on, float) else f"{on:>11}"
        print(f"{name:34} {off:11.2f} {on_text}")


SUITE = """
    import pytest
    from pytest_qase import qase

    @qase.step("Log in as {{user}}")
    def login(user):
        return user

    @pytest.mark.parametrize("n", range({tests}))
    @qase.fields(severity="major", layer="unit")
    def test_case(n):
        login(f"user{{n}}")
        with qase.step("work", expected="done"):
            for i in range(3):
                with qase.step(f"part {{i}}"):
                    pass
            qase.attach(content=f"log of {{n}}\\n" * 100, filename="log.txt")
"""


def session(tests: int) -> None:
    from qase_server import QaseServer

    with tempfile.TemporaryDirectory() as work, QaseServer() as server:
        folder = Path(work)
        (folder / "test_bench.py").write_text(textwrap.dedent(SUITE.format(tests=tests)))
        (folder / "pytest.ini").write_text("[pytest]\n")
        env = dict(os.environ, **server.env(), TMPDIR=work)
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                str(folder / "test_bench.py")]
        print(f"\nsession of {tests} tests, each with 6 steps and one 1.5 KB attachment")
        for label, extra in (("without --qase", []),
                             ("--qase, uploading", ["--qase",
                                                    f"--qase-ca-bundle={server.ca_path}"])):
            started = time.perf_counter()
            done = subprocess.run(base + extra, cwd=work, env=env, capture_output=True,
                                  text=True)
            took = time.perf_counter() - started
            summary = [line for line in done.stdout.splitlines() if line.startswith("qase:")]
            print(f"  {label:20} {took:6.2f} s  exit {done.returncode}  "
                  + (summary[0] if summary else ""))
        stats = server.stats()
        uploads = server.count("POST", "/v1/attachment/")
        stored = server.results()
        with_files = sum(1 for r in stored if r.get("steps") and
                         r["steps"][1]["execution"].get("attachments"))
        print(f"  results stored {len(stored)}, with their attachment hash {with_files}, "
              f"attachment requests {uploads}, all requests {stats.get('requests')}, "
              f"validation errors {len(server.validation_errors)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=300)
    args = parser.parse_args()
    micro()
    session(args.tests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
