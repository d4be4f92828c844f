"""What pytest-qase costs a test session, measured beside Qase's own qase-pytest.

Why: a reporter runs inside every test session of a project, so its cost is paid on every
run. This script times the same sessions with and without each reporter, in the same run
on the same machine, with the configurations interleaved and the median of several rounds
taken, so that the ratios stay fair on a busy machine. It prints one table per section:

- ``startup``: sessions of 10 trivial tests, 15 rounds: what an installed but unused
  reporter adds to every session (pytest-qase has no per-test hook when off, so this
  constant is its whole cost; on 10k tests it drowns in the noise of the machine).
- ``trivial``: N trivial tests (one parametrized function): no plugin, installed but off,
  local report (``--qase`` without a token), upload to the local fake Qase server (a
  separate process, 20 ms of latency added to every answer); then qase-pytest: no plugin,
  its default mode (off), its report mode (``--qase-mode=report``).
- ``xdist``: the same with ``-n 2``.
- ``real``: the 26,948 tests of the packaging 25.0 sdist, without the plugin and uploading.
- ``memory``: 100k trivial tests without the plugin and uploading: peak memory of the
  pytest process and the time from the last test's end to the session's end.

Each reporter runs in its own virtualenv under ``benchmarks/_work/venvs/`` (made on the
first run, with the same pytest and pytest-xdist versions as this interpreter), so that
both get the same pytest and no other plugins. pytest-qase is installed from a ``git archive``
of ``--plugin-ref`` (default ``HEAD``), so that edits to the checkout during the half hour of
a run cannot change the code measured; the commit is printed with the tables
(``--plugin-ref worktree`` measures the checkout as it is, editable). Usage::

    python benchmarks/performance.py                     # everything, ~30 min on 2 cores
    python benchmarks/performance.py --quick             # about two minutes once the venvs exist
    python benchmarks/performance.py --sections trivial,xdist --tests 2000 --repeat 5

Exit status: 0 when every session ran and reported what it should (results delivered,
report files written); 1 when one did not; 2 when the set-up (venvs, sdist, server) failed.
The targets are printed with the numbers, never asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_WORK = HERE / "_work"
SERVER_SCRIPT = REPO / "tests" / "qase_server.py"
LATENCY = 0.02  # seconds the local server adds to every answer
QASE_PYTEST = "9.0.0"  # the latest qase-pytest on PyPI when this was written

sys.path.insert(0, str(HERE))
import real_suite  # noqa: E402  (the sdist download and unpacking are shared with it)
from perf_probe import PROBE_ENV  # noqa: E402

OURS, THEIRS = "pytest-qase", "qase-pytest"

TARGETS = {  # measured and printed, never asserted
    "upload": 1.03,  # wall time, x no plugin
    "off": 1.01,
    "vs_theirs": 5.0,  # less overhead per test than qase-pytest's report mode
    "tail": 0.5,  # seconds from the last test's end to the session's end
    "memory": 30.0,  # MB of peak memory above no plugin at 100k results
}


class SetupError(Exception):
    """A virtualenv, the sdist or the server could not be made ready (exit status 2)."""


# =========================================================================== environments


@dataclass
class Venv:
    """A virtualenv with pytest, pytest-xdist and one reporter."""

    name: str
    path: Path
    packages: list[str]

    @property
    def bin(self) -> Path:
        return self.path / ("Scripts" if os.name == "nt" else "bin")

    @property
    def python(self) -> Path:
        return self.bin / ("python.exe" if os.name == "nt" else "python")

    def ensure(self) -> Venv:
        """Create it, or reuse it when it holds exactly these packages."""
        stamp = self.path / ".benchmark-packages"
        wanted = "\n".join(self.packages)
        if self.python.exists() and stamp.exists() and stamp.read_text("utf-8") == wanted:
            return self
        print(f"making the {self.name} virtualenv in {self.path} ...", file=sys.stderr)
        shutil.rmtree(self.path, ignore_errors=True)
        _run_quiet([sys.executable, "-m", "venv", str(self.path)], "python -m venv")
        args = []
        for package in self.packages:
            args += ["-e", package[len("-e "):]] if package.startswith("-e ") else [package]
        _run_quiet([str(self.python), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", *args], f"pip install into {self.path}")
        stamp.write_text(wanted, "utf-8")
        return self


def _run_quiet(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SetupError(f"{what} failed (exit {done.returncode})")


def _installed(name: str) -> Optional[str]:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def snapshot(work: Path, ref: str) -> Path:
    """The repository at the commit ``ref`` names, exported with ``git archive`` into
    ``_work/snapshots/<commit>/`` once: the code measured cannot change while a benchmark
    runs, even when the checkout is edited meanwhile."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SetupError(f"{ref}: not a commit of {REPO} ({exc})") from None
    folder = work / "snapshots" / commit
    if not (folder / "pyproject.toml").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=REPO,
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(folder, filter="data")
            else:  # our own repository's archive
                tar.extractall(folder)
    return folder


def plugin_source(work: Path, ref: str) -> tuple[str, str]:
    """What to install as pytest-qase, and how to name it in the output.

    A git ref (default ``HEAD``) is installed from its ``snapshot`` (not editable).
    ``worktree`` installs the checkout itself in editable mode (uncommitted changes count).
    """
    if ref == "worktree":
        return f"-e {REPO}", "the working tree (editable)"
    try:
        folder = snapshot(work, ref)
    except SetupError as exc:
        raise SetupError(f"--plugin-ref {exc}") from None
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "pytest_qase"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    note = "; uncommitted changes in pytest_qase/ are not measured" if dirty else ""
    return str(folder), f"commit {folder.name[:12]} ({ref}){note}"


def make_venvs(work: Path, qase_pytest: str, ours: str) -> dict[str, Venv]:
    """Both reporters' virtualenvs, with this interpreter's pytest and pytest-xdist."""
    common = [f"pytest=={version('pytest')}"]
    xdist = _installed("pytest-xdist")
    common.append(f"pytest-xdist=={xdist}" if xdist else "pytest-xdist")
    root = work / "venvs"
    return {
        OURS: Venv(OURS, root / OURS, common + [ours]).ensure(),
        THEIRS: Venv(THEIRS, root / THEIRS, common + [f"qase-pytest=={qase_pytest}"]).ensure(),
    }


class Server:
    """The local fake Qase server of ``tests/qase_server.py``, as a separate process."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.process: Optional[subprocess.Popen[str]] = None
        self.info: dict[str, str] = {}

    def start(self) -> Server:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "--port", "0", "--latency", str(LATENCY),
             "--no-validate"], stdout=subprocess.PIPE, text=True, cwd=self.work)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        try:
            self.info = json.loads(line)
        except ValueError:
            self.stop()
            raise SetupError(f"the local Qase server did not start: {line!r}") from None
        return self

    def env(self) -> dict[str, str]:
        return {"QASE_API_TOKEN": self.info["token"], "QASE_URL": self.info["url"],
                "QASE_PROJECT": "DEMO"}

    @property
    def ca_path(self) -> str:
        return self.info["ca_path"]

    def fresh(self) -> Server:
        """Stop and start again, empty, before each timed session (outside the timing).

        The fake server keeps every result it stored in memory; after a few hundred
        thousand its own garbage-collector pauses last a second and more, and one that
        falls at the end of a session would be billed to the plugin's tail.
        """
        self.stop()
        return self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# =========================================================================== one session


@dataclass
class Config:
    """One way to run a session: which reporter's venv, which arguments and environment."""

    label: str
    reporter: str
    kind: str  # "none", "off", "local", "upload", "report"
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    check: Optional[Callable[[Run, int], Optional[str]]] = None  # a problem, or None
    server: Optional[Server] = None  # uploads go here: started afresh before each session

    def session(self, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        """The arguments and environment of one session (a fresh server's, if any)."""
        if self.server is None:
            return self.args, env
        self.server.fresh()
        return ([*self.args, f"--qase-ca-bundle={self.server.ca_path}"],
                dict(env, **self.server.env()))


@dataclass
class Run:
    """What one session cost."""

    wall: float
    cpu: float
    maxrss_mb: float
    exit_code: int
    output: str
    probe: dict[str, Optional[float]]
    started: float
    cwd: Path

    def phase(self, name: str) -> Optional[float]:
        return self.probe.get(name)

    def _between(self, first: str, last: str) -> Optional[float]:
        start, end = self.phase(first), self.phase(last)
        return end - start if start is not None and end is not None else None

    @property
    def loop(self) -> Optional[float]:
        """From the first test's start to the last test's end."""
        return self._between("first_start", "last_finish")

    @property
    def start(self) -> Optional[float]:
        """From launching the process to the first test's start (imports, collection, run)."""
        first = self.phase("first_start")
        return first - self.started if first is not None else None

    @property
    def tail(self) -> Optional[float]:
        """From the last test's end to pytest's unconfigure (the session's end)."""
        return self._between("last_finish", "unconfigure")

    @property
    def exit_tail(self) -> Optional[float]:
        """From the last test's end to the process's exit."""
        return self._between("last_finish", "exit")


def child_env(venv: Venv, work: Path, extra: dict[str, str],
              pythonpath: tuple[str, ...] = ()) -> dict[str, str]:
    """A clean environment: no QASE_* or PYTEST_* settings of the shell, the venv first on
    PATH (as when activated), bytecode cached outside the repository, a private TMPDIR."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("QASE_", "PYTEST_")) and k not in (
               "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "VIRTUAL_ENV")}
    tmp = work / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update({
        "PATH": os.pathsep.join([str(venv.bin), env.get("PATH", "")]),
        "VIRTUAL_ENV": str(venv.path),
        "PYTHONPYCACHEPREFIX": str(work / "pycache"),  # .pyc reused, as in a normal install
        "PYTHONPATH": os.pathsep.join([str(HERE), *pythonpath]),
        "TMPDIR": str(tmp),  # the plugin's rate-guard state and spools stay in _work
        "PYTHONHASHSEED": "0",  # xdist workers must collect parametrized sets alike
    })
    env.update(extra)
    return env


def run_session(venv: Venv, args: list[str], cwd: Path, env: dict[str, str],
                work: Path) -> Run:
    """Run ``python -m pytest`` once; wall, CPU and peak memory come from ``wait4``."""
    probe = work / "probe.json"
    probe.unlink(missing_ok=True)
    env = dict(env, **{PROBE_ENV: str(probe)})
    log = work / "session.log"
    command = [str(venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "perf_probe", *args]
    with open(log, "w", encoding="utf-8") as output:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    data = json.loads(probe.read_text("utf-8")) if probe.exists() else {}
    return Run(wall=wall, cpu=usage.ru_utime + usage.ru_stime,
               maxrss_mb=usage.ru_maxrss / 1024.0, exit_code=process.returncode,
               output=log.read_text("utf-8", errors="replace"), probe=data,
               started=started, cwd=cwd)


# =========================================================================== checks


def _delivered(run: Run, tests: int) -> Optional[str]:
    """pytest-qase's summary line must say every result reached the server."""
    found = re.search(r"^qase: (\d+) results -> run \d+", run.output, re.M)
    if not found:
        return "no 'qase: N results -> run' line"
    if int(found.group(1)) != tests or "not delivered" in run.output:
        return f"{found.group(1)} of {tests} results delivered"
    return None


def _report_files(folder: str) -> Callable[[Run, int], Optional[str]]:
    def check(run: Run, tests: int) -> Optional[str]:
        results = run.cwd / folder / "results"
        count = len(os.listdir(results)) if results.is_dir() else 0
        return None if count == tests else f"{count} of {tests} result files in {folder}"
    return check


def _no_report(run: Run, tests: int) -> Optional[str]:
    for folder in ("qase-report", "build/qase-report"):
        if (run.cwd / folder).exists():
            return f"{folder} was written"
    return None


def trivial_configs(server: Server, reporters: tuple[str, ...]) -> list[Config]:
    configs = [
        Config("no plugin (-p no:qase)", OURS, "none", ["-p", "no:qase"], check=_no_report),
        Config("installed, off", OURS, "off", [], check=_no_report),
        Config("--qase, local report", OURS, "local", ["--qase"],
               check=_report_files("qase-report")),
        Config(f"--qase, upload ({LATENCY * 1000:.0f} ms/request)", OURS, "upload",
               ["--qase"], check=_delivered, server=server),
        Config("no plugin (-p no:qase_pytest)", THEIRS, "none", ["-p", "no:qase_pytest"],
               check=_no_report),
        Config("installed, mode off (default)", THEIRS, "off", [], check=_no_report),
        Config("--qase-mode=report", THEIRS, "report", ["--qase-mode=report"],
               check=_report_files("build/qase-report")),
    ]
    return [c for c in configs if c.reporter in reporters]


# =========================================================================== measuring


@dataclass
class Row:
    """A configuration's runs, with the no-plugin runs of the same rounds beside them."""

    config: Config
    runs: list[Run] = field(default_factory=list)
    base: Optional[Row] = None
    problems: list[str] = field(default_factory=list)

    def median(self, value: Callable[[Run], Optional[float]]) -> Optional[float]:
        values = [v for v in (value(r) for r in self.runs) if v is not None]
        return statistics.median(values) if values else None

    def paired(self, value: Callable[[Run], Optional[float]],
               combine: Callable[[float, float], float]) -> Optional[float]:
        """Median over rounds of ``combine(this round, the no-plugin run of that round)``."""
        if self.base is None:
            return None
        pairs = [(value(a), value(b)) for a, b in zip(self.runs, self.base.runs)]
        values = [combine(a, b) for a, b in pairs if a is not None and b is not None]
        return statistics.median(values) if values else None

    def ratio(self) -> Optional[float]:
        return self.paired(lambda r: r.wall, lambda a, b: a / b)

    def ratio_range(self) -> Optional[tuple[float, float]]:
        """The lowest and highest per-round ratio: how far the median can be trusted."""
        if self.base is None:
            return None
        values = [a.wall / b.wall for a, b in zip(self.runs, self.base.runs)]
        return (min(values), max(values)) if values else None

    def overhead_ms(self, tests: int) -> Optional[float]:
        """Extra wall time per test over no plugin, everything included (start, end)."""
        value = self.paired(lambda r: r.wall, lambda a, b: a - b)
        return None if value is None else value / tests * 1000

    def loop_overhead_us(self, tests: int) -> Optional[float]:
        """Extra time per test inside the test loop (first start to last end) only."""
        value = self.paired(lambda r: r.loop, lambda a, b: a - b)
        return None if value is None else value / tests * 1e6


def measure(section: str, configs: list[Config], venvs: dict[str, Venv], cwd: Path,
            tests: int, repeat: int, work: Path, extra_args: tuple[str, ...] = (),
            target: tuple[str, ...] = (), pythonpath: tuple[str, ...] = ()) -> list[Row]:
    """Warm each configuration up once, then run ``repeat`` rounds, rotating the order.

    ``extra_args`` go to every run (``-n 2``), ``target`` only to the timed ones (what to
    run); the warm-up runs ten trivial tests, so that every module the configuration
    imports, the reporter's included, is compiled and cached before the first timed run.
    """
    rows = [Row(c) for c in configs]
    for row in rows:
        if row.config.kind != "none":
            row.base = next((r for r in rows if r.config.reporter == row.config.reporter
                             and r.config.kind == "none"), None)
    envs = {id(r): child_env(venvs[r.config.reporter], work, r.config.env, pythonpath)
            for r in rows}
    print(f"  {section}: warming up ...", file=sys.stderr, flush=True)
    warm = trivial_suite(work, 10)
    for row in rows:  # fills the bytecode cache and the OS file cache
        _clean(warm)
        args, env = row.config.session(envs[id(row)])
        run_session(venvs[row.config.reporter], [*extra_args, *args], warm, env, work)
    for round_ in range(repeat):
        order = rows[round_ % len(rows):] + rows[:round_ % len(rows)]
        for row in order:
            _clean(cwd)
            print(f"  {section}: round {round_ + 1}/{repeat}: {row.config.reporter} "
                  f"{row.config.label} ...", file=sys.stderr, flush=True)
            args, env = row.config.session(envs[id(row)])
            run = run_session(venvs[row.config.reporter], [*extra_args, *args, *target], cwd,
                              env, work)
            problem = _problem(run, row.config, tests)
            if problem:
                row.problems.append(problem)
                (work / "failed.log").write_text(run.output, "utf-8")
            row.runs.append(run)
    return rows


def _problem(run: Run, config: Config, tests: int) -> Optional[str]:
    if run.exit_code != 0:
        return f"pytest exited {run.exit_code}"
    if not run.probe or run.probe.get("tests") != tests:
        return f"{run.probe.get('tests') if run.probe else 0} of {tests} tests ran"
    return config.check(run, tests) if config.check else None


def _clean(cwd: Path) -> None:
    for folder in ("qase-report", "build"):
        shutil.rmtree(cwd / folder, ignore_errors=True)


# =========================================================================== output


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(title: str, rows: list[Row], tests: int) -> None:
    print(title)
    header = (f"  {'reporter':<12} {'configuration':<32} {'wall s':>7} {'x none':>7} "
              f"{'x range':>11} {'+ms/test':>8} {'loop +us/test':>13} {'start s':>7} "
              f"{'tail s':>7} {'cpu s':>7} {'rss MB':>7}")
    print(header)
    for row in rows:
        none = row.base is None
        spread = row.ratio_range()
        print(f"  {row.config.reporter:<12} {row.config.label:<32} "
              f"{_fmt(row.median(lambda r: r.wall), '7.2f')} "
              f"{'1.000' if none else _fmt(row.ratio(), '.3f'):>7} "
              f"{'-' if spread is None else f'{spread[0]:.2f}-{spread[1]:.2f}':>11} "
              f"{'-' if none else _fmt(row.overhead_ms(tests), '.3f'):>8} "
              f"{'-' if none else _fmt(row.loop_overhead_us(tests), '.1f'):>13} "
              f"{_fmt(row.median(lambda r: r.start), '7.2f')} "
              f"{_fmt(row.median(lambda r: r.tail), '7.2f')} "
              f"{_fmt(row.median(lambda r: r.cpu), '7.2f')} "
              f"{_fmt(row.median(lambda r: r.maxrss_mb), '7.1f')}"
              + (f"   ! {row.problems[0]}" if row.problems else ""))


def _find(rows: list[Row], reporter: str, kind: str) -> Optional[Row]:
    return next((r for r in rows if r.config.reporter == reporter and r.config.kind == kind),
                None)


def target_line(text: str, ok: bool) -> None:
    print(f"  target: {text:<76} {'met' if ok else 'MISSED'}")


def print_verdicts(rows: list[Row], tests: int, xdist: bool) -> None:
    """The targets beside what was measured (never asserted)."""
    line = target_line
    upload, off = _find(rows, OURS, "upload"), _find(rows, OURS, "off")
    for row, limit in ((upload, TARGETS["upload"]), (off, TARGETS["off"])):
        if row is not None and row.ratio() is not None:
            ratio = row.ratio()
            assert ratio is not None
            line(f"{row.config.label} <= {limit:.2f}x no plugin: {ratio:.3f}x", ratio <= limit)
    if upload is not None and upload.median(lambda r: r.tail) is not None:
        tail = upload.median(lambda r: r.tail)
        extra = upload.paired(lambda r: r.tail, lambda a, b: a - b)
        assert tail is not None
        text = f"upload, last test to session end <= {TARGETS['tail']} s: {tail:.2f} s"
        if extra is not None:
            text += f" ({extra:+.2f} s over no plugin)"
        if xdist and extra is not None:  # xdist's own worker shutdown is part of every tail
            line(text + ", the plugin's share judged", extra <= TARGETS["tail"])
        else:
            line(text, tail <= TARGETS["tail"])
    report = _find(rows, THEIRS, "report")
    for ours in (upload, _find(rows, OURS, "local")):
        if ours is None or report is None:
            continue
        comparisons = [("per test", ours.overhead_ms(tests), report.overhead_ms(tests), "ms")]
        if not xdist:  # under -n 2 the controller's loop mixes both workers' start-up
            comparisons.append(("in the loop", ours.loop_overhead_us(tests),
                                report.loop_overhead_us(tests), "us"))
        for what, mine, theirs, unit in comparisons:
            if mine is None or theirs is None:
                continue
            text = (f"{ours.config.kind} vs qase-pytest report, {what}: {mine:.3g} vs "
                    f"{theirs:.3g} {unit}/test")
            if theirs <= 0:  # theirs lost in the noise: no ratio can be given
                print(f"  target: {text}: no measurable qase-pytest overhead, no ratio")
            elif mine <= 0:
                line(f"{text}, ours within the noise", True)
            else:
                line(f"{text}, {theirs / mine:.1f}x less", theirs / mine >= TARGETS["vs_theirs"])
    if xdist:
        print("  (with -n 2 the start-up of the two workers is part of every configuration)")


def print_load(label: str) -> None:
    one, five, fifteen = os.getloadavg()
    print(f"load average {label}: {one:.2f} {five:.2f} {fifteen:.2f} "
          f"({os.cpu_count()} cores)")


# =========================================================================== sections


def trivial_suite(work: Path, tests: int) -> Path:
    """A folder with one file of ``tests`` trivial tests and an empty ini file."""
    folder = work / f"trivial-{tests}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n", "utf-8")
    source = (f"import pytest\n\n\n@pytest.mark.parametrize('i', range({tests}))\n"
              "def test_trivial(i):\n    pass\n")
    test_file = folder / "test_trivial.py"
    if not test_file.exists() or test_file.read_text("utf-8") != source:
        test_file.write_text(source, "utf-8")
    return folder


def section_trivial(args: argparse.Namespace, venvs: dict[str, Venv], work: Path,
                    xdist: bool) -> bool:
    tests = args.xdist_tests if xdist else args.tests
    suite = trivial_suite(work, tests)
    extra = ("-n", "2") if xdist else ()
    server = Server(work)
    try:
        rows = measure("xdist" if xdist else "trivial", trivial_configs(server, args.reporters),
                       venvs, suite, tests, args.repeat, work, extra)
    finally:
        server.stop()
    print_table(f"{tests} trivial tests{', -n 2' if xdist else ''} (median of {args.repeat}; "
                "x none and overheads are paired per round)", rows, tests)
    print_verdicts(rows, tests, xdist)
    return not any(r.problems for r in rows)


def section_real(args: argparse.Namespace, venvs: dict[str, Venv], work: Path,
                 perf: Path) -> bool:
    """The packaging sdist's tests (downloaded and unpacked by ``real_suite``)."""
    package = real_suite.PACKAGES["packaging"]
    try:
        source = real_suite.fetch(package, work)
        deps = real_suite.extra_path(package, work)
    except real_suite.SetupError as exc:
        raise SetupError(str(exc)) from None
    ini = perf / "real-pytest.ini"  # the sdist's tests, not this repository's settings
    ini.write_text("[pytest]\n", "utf-8")
    pythonpath = tuple(str(p) for p in (source / package.import_root, deps) if p)
    target = (package.tests, "-c", str(ini), f"--rootdir={source}")
    server = Server(perf)
    try:
        configs = [
            Config("no plugin (-p no:qase)", OURS, "none", ["-p", "no:qase"]),
            Config(f"--qase, upload ({LATENCY * 1000:.0f} ms/request)", OURS, "upload",
                   ["--qase"], check=_delivered, server=server),
        ]
        tests = _count_tests(venvs[OURS], list(target), source, perf, pythonpath)
        rows = measure("real", configs, venvs, source, tests, args.repeat, perf,
                       target=target, pythonpath=pythonpath)
    finally:
        server.stop()
    print_table(f"{package.name} {package.version} sdist, {tests} tests "
                f"(median of {args.repeat})", rows, tests)
    print_verdicts(rows, tests, False)
    return not any(r.problems for r in rows)


def _count_tests(venv: Venv, common: list[str], source: Path, work: Path,
                 pythonpath: tuple[str, ...]) -> int:
    run = run_session(venv, common + ["-p", "no:qase", "--co"], source,
                      child_env(venv, work, {}, pythonpath), work)
    found = re.search(r"(\d+) tests? collected", run.output)
    if not found:
        raise SetupError(f"could not collect the real suite:\n{run.output[-2000:]}")
    return int(found.group(1))


def section_memory(args: argparse.Namespace, venvs: dict[str, Venv], work: Path) -> bool:
    tests = args.memory_tests
    suite = trivial_suite(work, tests)
    server = Server(work)
    try:
        configs = [
            Config("no plugin (-p no:qase)", OURS, "none", ["-p", "no:qase"]),
            Config(f"--qase, upload ({LATENCY * 1000:.0f} ms/request)", OURS, "upload",
                   ["--qase"], check=_delivered, server=server),
        ]
        rows = measure("memory", configs, venvs, suite, tests, args.memory_repeat, work)
    finally:
        server.stop()
    print_table(f"{tests} trivial tests: peak memory and the end of the session "
                f"(median of {args.memory_repeat})", rows, tests)
    upload = rows[1]
    extra = upload.paired(lambda r: r.maxrss_mb, lambda a, b: a - b)
    tail, exit_tail = upload.median(lambda r: r.tail), upload.median(lambda r: r.exit_tail)
    if extra is not None:
        target_line(f"upload, peak memory above no plugin <= {TARGETS['memory']:.0f} MB: "
                    f"{extra:+.1f} MB", extra <= TARGETS["memory"])
    if tail is not None and exit_tail is not None:
        tail_extra = upload.paired(lambda r: r.tail, lambda a, b: a - b)
        target_line(f"upload, last test to session end <= {TARGETS['tail']} s: {tail:.2f} s "
                    f"({_fmt(tail_extra, '+.2f')} s over no plugin; to process exit "
                    f"{exit_tail:.2f} s)", tail <= TARGETS["tail"])
    return not any(r.problems for r in rows)


def section_startup(args: argparse.Namespace, venvs: dict[str, Venv], work: Path) -> bool:
    """What an installed but unused reporter adds to every session, measured precisely.

    Off, pytest-qase has no per-test hook (only option parsing at configure), so its whole
    cost is a constant per session. Against a 10k-test session that constant is far below
    the run-to-run noise; many short sessions, paired round by round, resolve it.
    """
    tests = 10
    suite = trivial_suite(work, tests)
    configs = [
        Config("no plugin (-p no:qase)", OURS, "none", ["-p", "no:qase"], check=_no_report),
        Config("installed, off", OURS, "off", [], check=_no_report),
        Config("no plugin (-p no:qase_pytest)", THEIRS, "none", ["-p", "no:qase_pytest"],
               check=_no_report),
        Config("installed, mode off (default)", THEIRS, "off", [], check=_no_report),
    ]
    configs = [c for c in configs if c.reporter in args.reporters]
    rows = measure("startup", configs, venvs, suite, tests, args.startup_repeat, work)
    print(f"{tests}-test sessions: the fixed cost per session (median of "
          f"{args.startup_repeat}; paired per round)")
    print(f"  {'reporter':<12} {'configuration':<32} {'wall s':>7} {'+ms/session':>11} "
          f"{'range ms':>15}")
    for row in rows:
        extra = None if row.base is None else row.paired(lambda r: r.wall, lambda a, b: a - b)
        spread = None if row.base is None else [
            (a.wall - b.wall) * 1000 for a, b in zip(row.runs, row.base.runs)]
        print(f"  {row.config.reporter:<12} {row.config.label:<32} "
              f"{_fmt(row.median(lambda r: r.wall), '7.3f')} "
              f"{'-' if extra is None else format(extra * 1000, '11.1f'):>11} "
              f"{'-' if not spread else f'{min(spread):.1f} to {max(spread):.1f}':>15}"
              + (f"   ! {row.problems[0]}" if row.problems else ""))
    off = _find(rows, OURS, "off")
    extra = off.paired(lambda r: r.wall, lambda a, b: a - b) if off else None
    if extra is not None:
        shortest = max(extra, 0.0) / (TARGETS["off"] - 1)
        print(f"  installed, off stays within {TARGETS['off']:.2f}x no plugin for every session "
              f"longer than {shortest:.2f} s ({max(extra, 0.0) * 1000:.1f} ms / "
              f"{(TARGETS['off'] - 1) * 100:.0f}%); it has no per-test cost")
    return not any(r.problems for r in rows)


# =========================================================================== main

SECTIONS = ("startup", "trivial", "xdist", "real", "memory")


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--tests", type=int, default=10_000,
                        help="trivial tests in the trivial section (default 10000)")
    parser.add_argument("--xdist-tests", type=int, default=None,
                        help="trivial tests in the xdist section (default: --tests)")
    parser.add_argument("--memory-tests", type=int, default=100_000,
                        help="trivial tests in the memory section (default 100000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of every configuration; medians are shown (default 3)")
    parser.add_argument("--startup-repeat", type=int, default=15,
                        help="rounds of the short sessions of the startup section (default 15)")
    parser.add_argument("--memory-repeat", type=int, default=None,
                        help="rounds in the memory section (default: --repeat)")
    parser.add_argument("--reporters", default=f"{OURS},{THEIRS}",
                        help=f"whose configurations to run: {OURS}, {THEIRS} or both")
    parser.add_argument("--plugin-ref", default="HEAD",
                        help="the pytest-qase commit to measure (default HEAD, installed from a "
                        "git archive), or 'worktree' for the checkout itself, editable")
    parser.add_argument("--qase-pytest-version", default=QASE_PYTEST,
                        help=f"the qase-pytest release to compare with (default {QASE_PYTEST})")
    parser.add_argument("--quick", action="store_true",
                        help="a run of about two minutes: startup (5 rounds), trivial and "
                        "memory sections, 1000 tests, 5000 in the memory section, one round")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK,
                        help="scratch folder for the venvs, the sdist and the suites")
    args = parser.parse_args(argv)
    if args.quick:
        args.sections, args.tests, args.memory_tests, args.repeat = "startup,trivial,memory", \
            1000, 5000, 1
        args.startup_repeat = 5
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    args.reporters = tuple(r.strip() for r in args.reporters.split(",") if r.strip())
    if not set(args.reporters) <= {OURS, THEIRS} or OURS not in args.reporters:
        parser.error(f"--reporters: {OURS} and optionally {THEIRS}")
    args.xdist_tests = args.xdist_tests or args.tests
    args.memory_repeat = args.memory_repeat or args.repeat
    if min(args.tests, args.xdist_tests, args.memory_tests, args.repeat,
           args.startup_repeat) < 1:
        parser.error("sizes and --repeat must be at least 1")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    work = args.work_dir.resolve()
    perf = work / "performance"
    perf.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    ok = True
    try:
        ours, measured = plugin_source(work, args.plugin_ref)
        venvs = make_venvs(work, args.qase_pytest_version, ours)
        print(f"pytest {version('pytest')}, Python {sys.version.split()[0]}, "
              f"qase-pytest {args.qase_pytest_version}; each reporter in its own venv")
        print(f"pytest-qase: {measured}")
        print_load("at the start")
        for section in args.sections:
            print()
            if section in ("trivial", "xdist"):
                ok &= section_trivial(args, venvs, perf, xdist=section == "xdist")
            elif section == "real":
                ok &= section_real(args, venvs, work, perf)
            elif section == "startup":
                ok &= section_startup(args, venvs, perf)
            elif section == "memory":
                ok &= section_memory(args, venvs, perf)
            print_load(f"after {section}")
            sys.stdout.flush()
    except SetupError as exc:
        print(f"performance: {exc}", file=sys.stderr)
        return 2
    print(f"\ntook {time.monotonic() - began:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
