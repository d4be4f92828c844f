"""Run pytest-qase on a real third-party test suite and check what the server received.

Why: the plugin's own tests use small made-up suites; a real suite (hundreds of tests,
unittest classes, subtests, parametrization, skips) shows whether every test reaches Qase
exactly once, with the status pytest gave it, in requests that the API spec accepts.

The tests come from the sdist of a pinned pure-Python package on PyPI. The fake Qase server
(``tests/qase_server.py``) runs in this process, so every stored result can be read back;
pytest runs as a subprocess with ``--qase``, ``--junitxml`` and this module loaded as a
plugin (``-p real_suite``) that records each test's outcome, independently of pytest-qase.

Usage::

    python benchmarks/real_suite.py                    # more-itertools, no xdist
    python benchmarks/real_suite.py --workers 0,2      # once without xdist, once with -n 2
    python benchmarks/real_suite.py --package packaging

Exit status: 0 when every pass delivered every test exactly once with its status, in
requests that were all valid, with no signature changing between passes; 1 otherwise; 2 when
the suite could not be set up or pytest could not run it. Tests that share an identity (the
same test run twice with equal parameters) are counted and shown, but are no failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_WORK = HERE / "_work"
RECORD_ENV = "REAL_SUITE_RECORD_DIR"
STATUSES = ("passed", "failed", "blocked", "skipped", "invalid")
MAX_PARAM_CHARS = 1024  # pytest-qase's documented cut for one parameter's text
TRUNCATED = "...[truncated]"


class SetupError(Exception):
    """The suite could not be downloaded, unpacked or read back (exit status 2)."""


@dataclass(frozen=True)
class Package:
    """A PyPI package whose sdist ships a test suite that passes with plain pytest."""

    name: str
    version: str
    tests: str  # the tests folder inside the unpacked sdist
    import_root: str  # what goes on PYTHONPATH so the sdist's code is tested, not an install
    extra: tuple[str, ...] = ()  # test-only requirements, installed into the work folder


PACKAGES: dict[str, Package] = {
    # unittest classes, 671 tests, ~12,000 subTest blocks (sent as steps by pytest-qase)
    "more-itertools": Package("more-itertools", "10.7.0", "tests", "."),
    # heavily parametrized plain pytest tests, params with quotes, unicode and long values
    "packaging": Package("packaging", "25.0", "tests", "src", ("pretend==1.0.9",)),
}


# =========================================================================== the recorder
# Loaded into the pytest subprocess with ``-p real_suite`` (PYTHONPATH has this folder).
# It is pytest's view of each test, kept apart from pytest-qase's so that a bug in the
# plugin's folding of reports cannot hide itself.


def param_text(value: Any) -> str:
    """A parameter as pytest-qase sends it: strings as they are, anything else by repr
    without a memory address (`` at 0x..`` or `` @ 1234567``) before its ``>``."""
    try:
        text = value if isinstance(value, str) else re.sub(
            r" (?:at|@) (?:0x[0-9a-fA-F]+|[0-9]{6,})(?=>)", "", repr(value))
    except Exception as exc:  # a broken __repr__ must not stop the recorder
        text = f"<{type(value).__name__} object: repr failed: {type(exc).__name__}>"
    if len(text) > MAX_PARAM_CHARS:
        text = text[: MAX_PARAM_CHARS - len(TRUNCATED)] + TRUNCATED
    return text


def fold(phases: dict[str, Any], subtests_failed: int) -> str:
    """pytest's phase reports of one test as a Qase status (the mapping pytest-qase promises).

    setup error -> blocked; call failure -> failed; skip and xfail -> skipped; pass and
    xpass -> passed; a failed subtest fails a passing test; a teardown error after a
    pass -> invalid.
    """
    setup, call, teardown = (phases.get(w) for w in ("setup", "call", "teardown"))
    if setup is not None and setup.failed:
        status = "blocked"
    elif setup is not None and setup.skipped:
        status = "skipped"
    elif call is None:
        status = "skipped"
    elif call.failed:
        status = "failed"
    elif call.skipped:
        status = "skipped"
    else:
        status = "passed"
    if subtests_failed and status in ("passed", "skipped"):
        status = "failed"
    if teardown is not None and teardown.failed and status == "passed":
        status = "invalid"
    return status


class OutcomeRecorder:
    """Collects, in one pytest process, each test's reports and parameters into a JSON file.

    Under xdist the controller sees every test's reports (also of a crashed worker) but no
    items, and the workers see the items: the controller's file gives the statuses, the
    workers' files the parameters.
    """

    def __init__(self, config: Any, folder: str) -> None:
        self.config = config
        self.folder = folder
        self.collected = 0
        self.phases: dict[str, dict[str, Any]] = {}
        self.subtests: Counter[str] = Counter()
        self.subtests_failed: Counter[str] = Counter()
        self.items: dict[str, dict[str, Any]] = {}

    def pytest_collection_finish(self, session: Any) -> None:
        """Each test's parameters, and the node id without them, as a Qase signature has them.

        Taken at collection, what the test is, not after it ran: a test that changes its
        own parameter, or is skipped before any setup hook, still gets its identity.
        """
        self.collected = len(session.items)
        for item in session.items:
            callspec = getattr(item, "callspec", None)
            params: dict[str, str] = {}
            base = item.nodeid
            if callspec is not None:
                params = {str(k): param_text(v) for k, v in callspec.params.items()}
                if base.endswith(f"[{callspec.id}]"):
                    base = base[: -len(callspec.id) - 2]
            self.items[item.nodeid] = {"base": base, "params": params}

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.phases.setdefault(nodeid, {})

    def pytest_runtest_logreport(self, report: Any) -> None:
        context = getattr(report, "context", None)
        if context is not None and hasattr(context, "kwargs"):  # a subtest's own report
            self.subtests[report.nodeid] += 1
            if report.failed:
                self.subtests_failed[report.nodeid] += 1
            return
        if report.outcome == "rerun":
            self.phases[report.nodeid] = {}
            return
        self.phases.setdefault(report.nodeid, {})[report.when] = report

    def role(self) -> str:
        """Asked at the end: xdist registers its controller after this plugin's configure."""
        if hasattr(self.config, "workerinput"):
            return "worker"
        return "controller" if self.config.pluginmanager.has_plugin("dsession") else "main"

    def pytest_sessionfinish(self, session: Any) -> None:
        role = self.role()
        outcomes = {
            nodeid: fold(phases, self.subtests_failed[nodeid])
            for nodeid, phases in self.phases.items()
        }
        data = {
            "role": role,
            "collected": self.collected,
            "outcomes": outcomes,
            "subtests": dict(self.subtests),
            # only the tests run here: a repr holding an address differs between processes
            "items": {k: v for k, v in self.items.items() if k in self.phases},
        }
        path = Path(self.folder) / f"{role}-{os.getpid()}.json"
        path.write_text(json.dumps(data), encoding="utf-8")


def pytest_configure(config: Any) -> None:
    """Register the recorder only when the benchmark asked for it."""
    folder = os.environ.get(RECORD_ENV)
    if folder:
        config.pluginmanager.register(OutcomeRecorder(config, folder), "real-suite-recorder")


# =========================================================================== getting a suite


def pip(*args: str) -> None:
    """Run pip quietly through this interpreter; its output only shows when it fails."""
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SetupError(f"pip {' '.join(args)} failed")


def fetch(package: Package, work: Path) -> Path:
    """The unpacked sdist of the pinned version (downloaded once, then reused)."""
    stem = f"{re.sub(r'[-_.]+', '_', package.name)}-{package.version}"
    source = work / "src" / stem
    if (source / package.tests).is_dir():
        return source
    download = work / "sdist"
    download.mkdir(parents=True, exist_ok=True)
    archive = download / f"{stem}.tar.gz"
    if not archive.exists():
        print(f"downloading the {package.name} {package.version} sdist ...", file=sys.stderr)
        pip("download", "--quiet", "--no-deps", "--no-binary", ":all:",
            f"{package.name}=={package.version}", "-d", str(download))
    if not archive.exists():
        raise SetupError(f"pip did not produce {archive}")
    (work / "src").mkdir(exist_ok=True)
    with tarfile.open(archive) as tar:
        root = (work / "src").resolve()
        for member in tar.getmembers():  # an sdist is trusted, but not to write elsewhere
            target = (root / member.name).resolve()
            if root not in target.parents or member.issym() or member.islnk():
                raise SetupError(f"{archive}: refusing member {member.name!r}")
        if hasattr(tarfile, "data_filter"):  # Python 3.12+, and 3.9.17+ / 3.11.4+
            tar.extractall(root, filter="data")
        else:
            tar.extractall(root)  # members checked above
    if not (source / package.tests).is_dir():
        raise SetupError(f"{archive} has no {package.tests}/ folder")
    return source


def extra_path(package: Package, work: Path) -> Optional[Path]:
    """A folder holding the package's test-only requirements, installed there once."""
    if not package.extra:
        return None
    target = work / "deps" / f"{package.name}-{package.version}"
    marker = target / ".installed"
    if not marker.exists():
        print(f"installing {', '.join(package.extra)} into {target} ...", file=sys.stderr)
        shutil.rmtree(target, ignore_errors=True)
        pip("install", "--quiet", "--no-deps", "--target", str(target), *package.extra)
        marker.write_text("\n".join(package.extra), encoding="utf-8")
    return target


# =========================================================================== reading the results


def junit_status(children: list[ET.Element]) -> str:
    """A test's junit elements as a Qase status ("error" when it is not a test's outcome)."""
    failures = [e for e in children if e.tag == "failure"]
    errors = [e.get("message", "") for e in children if e.tag == "error"]
    skipped = next((e for e in children if e.tag == "skipped"), None)
    if any(m.startswith("failed on setup") for m in errors):
        return "blocked"
    if failures:
        return "failed"
    if errors:
        return "invalid" if all(m.startswith("failed on teardown") for m in errors) else "error"
    if skipped is not None:
        return "skipped"
    return "passed"


def junit_name(nodeid: str) -> tuple[str, str]:
    """(classname, name) that pytest's junitxml writes for a node id."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def read_junit(path: Path) -> list[tuple[tuple[str, str], str]]:
    """Every test of the report: ((classname, name), status); none without a report.

    pytest writes a second ``<testcase>`` of the same name for a teardown error after a
    failed call: both are one test, so their elements are read together.
    """
    if not path.exists():
        return []
    tests: dict[tuple[str, str], list[ET.Element]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        tests.setdefault((case.get("classname", ""), case.get("name", "")), []).extend(case)
    return [(names, junit_status(children)) for names, children in tests.items()]


def signature_key(signature: str, params: dict[str, str]) -> tuple[str, str]:
    """What identifies a test in Qase: the signature's node path, and the parameters."""
    canonical = json.dumps(params, sort_keys=True, ensure_ascii=False)
    suffix = "::" + canonical
    if params and signature.endswith(suffix):
        signature = signature[: -len(suffix)]
    return signature, canonical if params else ""


@dataclass
class Recorded:
    """The recorder's files of one pytest run, merged."""

    collected: int = 0
    status: dict[str, str] = field(default_factory=dict)  # node id -> Qase status
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # node id -> identity
    subtests: int = 0


def read_recorder(folder: Path) -> Recorded:
    """Statuses from the process that saw every report, parameters from those that ran."""
    files = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
    owner = [f for f in files if f["role"] in ("main", "controller")]
    if len(owner) > 1:
        raise SetupError(f"{len(owner)} main/controller outcome files in {folder}")
    recorded = Recorded(status=dict(owner[0]["outcomes"]) if owner else {})
    for data in files:
        if data["role"] != "controller":  # counted where the tests ran, as pytest-qase does
            recorded.subtests += sum(data["subtests"].values())
        recorded.collected = max(recorded.collected, data["collected"])
        for nodeid, item in data["items"].items():
            params = item["params"]
            canonical = json.dumps(params, sort_keys=True, ensure_ascii=False) if params else ""
            recorded.keys[nodeid] = (item["base"], canonical)
    for nodeid in recorded.status:  # a test whose process died before its setup ran
        recorded.keys.setdefault(nodeid, (nodeid.partition("[")[0], "?"))
    return recorded


# =========================================================================== one pass


@dataclass
class Pass:
    """What one pytest run produced, and how it compares."""

    workers: int
    exit_code: int = 0
    seconds: float = 0.0
    pytest_line: str = ""
    qase_lines: list[str] = field(default_factory=list)
    junit: Counter[str] = field(default_factory=Counter)
    recorder: Counter[str] = field(default_factory=Counter)
    server: Counter[str] = field(default_factory=Counter)
    collected: int = 0
    received: int = 0
    runs: int = 0
    completed: int = 0
    duplicates: int = 0
    missing: int = 0
    unexpected: int = 0
    mismatches: int = 0
    shared: int = 0
    junit_disagree: int = 0
    validation_errors: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    requests: int = 0
    result_posts: int = 0
    resends_ignored: int = 0
    threads: Counter[str] = field(default_factory=Counter)
    subtests: int = 0
    steps: int = 0
    identities: dict[str, tuple[str, str]] = field(default_factory=dict)  # node id -> key
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.exit_code in (0, 1) and self.collected > 0
                and self.received == self.collected
                and not (self.duplicates or self.missing or self.unexpected or self.mismatches
                         or self.junit_disagree or self.validation_errors
                         or self.internal_errors)
                and self.runs == 1)

    def note(self, text: str) -> None:
        if len(self.examples) < 8:
            self.examples.append(text)


def run_pass(package: Package, source: Path, work: Path, workers: int) -> Pass:
    """Run the suite once against a fresh in-process server and compare what arrived."""
    if str(REPO / "tests") not in sys.path:
        sys.path.insert(0, str(REPO / "tests"))
    from qase_server import QaseServer  # the test server lives in tests/

    out = work / "runs" / f"{package.name}-{package.version}-n{workers}"
    shutil.rmtree(out, ignore_errors=True)
    (out / "recorder").mkdir(parents=True)
    ini = out / "pytest.ini"  # the sdist's tests, not this repository's pytest settings
    ini.write_text("[pytest]\n", encoding="utf-8")
    junit = out / "junit.xml"
    result = Pass(workers=workers)

    server = QaseServer().start()
    try:
        pythonpath = [str(HERE), str(source / package.import_root)]
        extra = extra_path(package, work)
        if extra is not None:
            pythonpath.append(str(extra))
        env = dict(os.environ, **server.env("DEMO"))
        env.update({
            RECORD_ENV: str(out / "recorder"),
            "PYTHONPATH": os.pathsep.join(pythonpath + [os.environ.get("PYTHONPATH", "")]),
            "QASE_RUN_TITLE": f"{package.name} {package.version} -n {workers}",
            # set iteration order must not differ between xdist workers (packaging's tests
            # parametrize over sets), and a rerun must collect the same tests
            "PYTHONHASHSEED": "0",
        })
        command = [
            sys.executable, "-m", "pytest", package.tests,
            "-c", str(ini), f"--rootdir={source}", "-p", "real_suite", "-p", "no:cacheprovider",
            "-q", f"--junitxml={junit}", "--qase", f"--qase-ca-bundle={server.ca_path}",
        ]
        if workers:
            command += ["-n", str(workers)]
        started = time.monotonic()
        done = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True)
        result.seconds = time.monotonic() - started
        (out / "pytest.log").write_text(done.stdout + done.stderr, encoding="utf-8")
        result.exit_code = done.returncode
        lines = (done.stdout + done.stderr).splitlines()
        result.qase_lines = [line for line in lines if line.startswith("qase:")]
        result.pytest_line = next((ln.strip("= ") for ln in reversed(lines)
                                   if re.search(r"\d+ (passed|failed|error)", ln)), "")
        compare(result, server, junit, read_recorder(out / "recorder"))
    finally:
        server.stop()
    return result


def compare(result: Pass, server: Any, junit: Path, recorded: Recorded) -> None:
    """Fill ``result`` from the junit report, the recorder and the server's stored results."""
    cases = read_junit(junit)
    result.junit = Counter(status for _, status in cases)
    result.recorder = Counter(recorded.status.values())
    result.collected = recorded.collected
    result.subtests = recorded.subtests
    result.identities = recorded.keys

    # the recorder is checked against junit test by test, so its numbers can be trusted
    by_name = Counter((junit_name(n), s) for n, s in recorded.status.items())
    only_junit, only_recorder = Counter(cases) - by_name, by_name - Counter(cases)
    result.junit_disagree = sum(only_junit.values()) + sum(only_recorder.values())
    for (names, status), _ in (only_junit + only_recorder).most_common(3):
        side = "junit" if (names, status) in only_junit else "recorder"
        result.note(f"only in {side}: {'::'.join(n for n in names if n)} {status}")

    stored = server.results()
    runs = server.runs
    result.runs = len(runs)
    result.completed = sum(1 for run in runs.values() if run["completed"])
    result.received = len(stored)
    result.validation_errors = server.validation_errors
    result.internal_errors = server.internal_errors
    result.requests = len(server.requests)
    result.result_posts = len(server.results_requests())
    result.resends_ignored = server.duplicates_ignored

    expected: dict[tuple[str, str], list[str]] = {}
    for nodeid, status in recorded.status.items():
        expected.setdefault(recorded.keys[nodeid], []).append(status)
    got: dict[tuple[str, str], list[str]] = {}
    for item in stored:
        execution = item.get("execution") or {}
        status = str(execution.get("status"))
        result.server[status] += 1
        result.threads[str(execution.get("thread"))] += 1
        result.steps += len(item.get("steps") or [])
        key = signature_key(str(item.get("signature")), dict(item.get("params") or {}))
        got.setdefault(key, []).append(status)

    for key in expected.keys() | got.keys():
        want, have = expected.get(key, []), got.get(key, [])
        name = key[0] + (f" {key[1]}" if key[1] else "")
        if len(want) > 1:
            result.shared += len(want)
            result.note(f"{len(want)} tests share one identity: {name}")
        if not want:
            result.unexpected += len(have)
            result.note(f"received a result for no test: {name}")
            continue
        if len(have) < len(want):
            result.missing += len(want) - len(have)
            result.note(f"missing: {name}")
        elif len(have) > len(want):
            result.duplicates += len(have) - len(want)
            result.note(f"received {len(have)} times: {name}")
        paired = min(len(want), len(have))
        agree = sum((Counter(want) & Counter(have)).values())
        if agree < paired:
            result.mismatches += paired - agree
            result.note(f"status: pytest {sorted(want)} vs server {sorted(have)}: {name}")


# =========================================================================== output


def table(package: Package, result: Pass) -> str:
    """The pass's numbers as plain text: per status, then the totals."""
    mode = f"-n {result.workers}" if result.workers else "no xdist"
    lines = [f"{package.name} {package.version} sdist tests, {mode}",
             f"  pytest: {result.pytest_line or '(no summary line)'} (exit {result.exit_code})"]
    lines.append(f"  {'status':<10}{'junit':>8}{'recorder':>10}{'server':>8}")
    extra = sorted((set(result.junit) | set(result.server)) - set(STATUSES))
    for status in (*STATUSES, *extra):
        row = (result.junit[status], result.recorder[status], result.server[status])
        flag = "" if len(set(row)) == 1 else "  <-"
        lines.append(f"  {status:<10}{row[0]:>8}{row[1]:>10}{row[2]:>8}{flag}")
    totals = (sum(result.junit.values()), sum(result.recorder.values()),
              sum(result.server.values()))
    lines.append(f"  {'total':<10}{totals[0]:>8}{totals[1]:>10}{totals[2]:>8}")
    threads = " ".join(f"{k}={v}" for k, v in sorted(result.threads.items()))
    rows = [
        ("tests collected", result.collected, ""),
        ("results received", result.received,
         f"runs created {result.runs}, completed {result.completed}"),
        ("duplicates", result.duplicates, "same test stored more than once"),
        ("missing", result.missing, ""),
        ("unexpected", result.unexpected, "results that match no test"),
        ("status mismatches", result.mismatches, ""),
        ("shared identities", result.shared, "same test, equal params: one Qase case"),
        ("junit disagreements", result.junit_disagree, "recorder vs junit, test by test"),
        ("validation errors", len(result.validation_errors), "against the Qase OpenAPI spec"),
        ("server errors", len(result.internal_errors), ""),
        ("requests made", result.requests,
         f"{result.result_posts} result POSTs, {result.resends_ignored} resends ignored"),
        ("subtests / steps", f"{result.subtests}/{result.steps}",
         "subtest reports vs steps received"),
        ("threads", threads or "-", ""),
        ("time", f"{result.seconds:.1f} s", "pytest wall clock, plugin included"),
    ]
    for label, value, comment in rows:
        lines.append(f"  {label:<21}{value!s:>12}" + (f"   ({comment})" if comment else ""))
    for text in result.validation_errors[:5] + result.internal_errors[:5] + result.examples:
        lines.append(f"  ! {text[:300]}")
    for text in result.qase_lines:
        lines.append(f"  {text[:300]}")
    lines.append(f"  verdict: {'OK' if result.ok else 'FAILED'}")
    return "\n".join(lines)


def unstable(passes: list[Pass]) -> list[str]:
    """Tests whose identity (signature and params) differs from one pass to another.

    Qase links a run's results to the cases of earlier runs by signature, so a signature
    that changes between two runs of the same code starts a new case every time.
    """
    first = passes[0].identities
    lines = []
    for nodeid, key in first.items():
        for other in passes[1:]:
            again = other.identities.get(nodeid)
            if again is not None and again != key:
                lines.append(f"{nodeid}: {key[1] or key[0]} -> {again[1] or again[0]}")
                break
    return lines


def parse_workers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of worker counts") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("worker counts are whole numbers >= 0")
    return values


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--package", choices=sorted(PACKAGES), default="more-itertools",
        help="whose sdist tests to run: "
        + ", ".join(f"{p.name} {p.version}" for p in PACKAGES.values())
        + " (default more-itertools)")
    parser.add_argument("--workers", type=parse_workers, default=[0],
                        help="xdist worker counts, comma-separated; 0 = no xdist (default 0)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK,
                        help="scratch folder for the sdist, logs and reports")
    args = parser.parse_args(argv)
    package = PACKAGES[args.package]
    work: Path = args.work_dir.resolve()
    passes = []
    try:
        source = fetch(package, work)
        for workers in args.workers:
            passes.append(run_pass(package, source, work, workers))
            result = passes[-1]
            if result.exit_code not in (0, 1):
                print(f"pytest exited {result.exit_code}; see {work / 'runs'}", file=sys.stderr)
            print(table(package, result), flush=True)
            print()
    except SetupError as exc:
        print(f"real_suite: {exc}", file=sys.stderr)
        return 2
    changed = unstable(passes) if len(passes) > 1 else []
    if len(passes) > 1:
        modes = ", ".join(f"-n {p.workers}" if p.workers else "no xdist" for p in passes)
        print(f"across passes ({modes}): {len(changed)} of {len(passes[0].identities)} tests "
              "changed signature")
        for line in changed[:5]:
            print(f"  ! {line[:300]}")
    if any(p.exit_code not in (0, 1) for p in passes):
        return 2
    return 0 if all(p.ok for p in passes) and not changed else 1


if __name__ == "__main__":
    sys.exit(main())
