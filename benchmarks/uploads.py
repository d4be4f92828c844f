"""Uploads at scale: requests, 429s, memory and exactness of the real uploader.

Why: the issue "Uploads that respect the API's limits" promises bulk requests close to the
fewest the caps allow, never more than ``qase_rate_limit`` requests a minute however many
processes share the token, no 429 in normal operation, bounded memory, and every result
stored exactly once. This script measures all of that with the plugin's own upload code
(``Uploader`` + ``ResultSender`` + ``QaseClient`` + ``RateGuard`` with a spool, wired as
``pytest_qase/session.py`` does) sending synthetic results of realistic size to the local
server of ``tests/qase_server.py``, which runs as a process of its own so that its CPU and
memory are not counted in the senders.

Usage::

    python benchmarks/uploads.py                                  # 10k and 100k, 1/2/4 processes
    python benchmarks/uploads.py --results 10000 --processes 1,2
    python benchmarks/uploads.py --no-learned                     # skip the 413 rows
    python benchmarks/uploads.py --results 10000 --processes 2 --rate-limit 30 --no-learned

The script runs itself in two other modes, ``--serve`` (the server process) and ``--send``
(one sending process); they are internal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from pytest_qase import clock  # noqa: E402
from pytest_qase.batching import ENVELOPE  # noqa: E402
from pytest_qase.client import QaseClient  # noqa: E402
from pytest_qase.ratelimit import RateGuard  # noqa: E402
from pytest_qase.results import FAILED, PASSED, SKIPPED, Result, Step  # noqa: E402
from pytest_qase.sender import ResultSender  # noqa: E402
from pytest_qase.settings import Secret  # noqa: E402
from pytest_qase.spool import Spool  # noqa: E402
from pytest_qase.uploader import Uploader  # noqa: E402

PROJECT = "DEMO"
TOKEN_VARIABLE = "QASE_API_TOKEN"
DEFAULT_BATCH, DEFAULT_BYTES, DEFAULT_RATE = 200, 4 * 1024 * 1024, 600
SERVER_COUNT_CAP = 2000  # the API's own limit (the server's default)
FAILURE_RATE = 0.05
BIG_TRACE_EVERY = 250  # one result in 250 fails with a 50-500 KB stack trace
AHEAD = 1000  # results handed over but not yet delivered, at most (unless --burst)

# --------------------------------------------------------------------------- synthetic results

AREAS = ["checkout", "login", "search", "cart", "profile", "billing", "orders", "inventory"]
ACTIONS = ["happy_path", "with_coupon", "after_timeout", "as_guest", "bulk_edit", "retry"]
BROWSERS = ["chromium", "firefox", "webkit"]
LOCALES = ["en-US", "de-DE", "ja-JP", "pt-BR"]
FRAME = ("\n    def {name}(self, client, {param}):\n        response = client.post(\"/api/{area}"
         "\", json=payload)\n>       assert response.status_code == 200, response.text\nE   "
         "    AssertionError: expected 200, got 500 (frame {index})\nE       assert 500 == 200"
         "\n\ntests/{area}/test_{area}.py:{line}: AssertionError\n")


def stack_trace(rng: random.Random, area: str, name: str, size: int) -> str:
    """A pytest-like traceback of about ``size`` characters, frames numbered so none repeat."""
    parts, total, index = [], 0, 0
    while total < size:
        frame = FRAME.format(name=name, param="browser", area=area, index=index,
                             line=rng.randint(10, 900))
        parts.append(frame)
        total += len(frame)
        index += 1
    return "".join(parts)[:size]


def synthetic_results(index: int, count: int, seed: int) -> Iterator[Result]:
    """Results shaped like a parametrized UI/API suite's: suites, params, steps, failures."""
    rng = random.Random(seed * 7919 + index)
    for number in range(count):
        area = AREAS[number % len(AREAS)]
        action = ACTIONS[(number // len(AREAS)) % len(ACTIONS)]
        name = f"test_{area}_{action}"
        params = {"browser": rng.choice(BROWSERS), "locale": rng.choice(LOCALES),
                  "user": f"user{number % 97}", "case": f"p{index}-{number}"}
        title = f"{name}[{'-'.join(params.values())}]"
        start = 1_700_000_000.0 + number * 0.8
        big = number % BIG_TRACE_EVERY == BIG_TRACE_EVERY // 2
        failed = big or rng.random() < FAILURE_RATE
        status = FAILED if failed else (SKIPPED if rng.random() < 0.02 else PASSED)
        verbs = ["Open", "Fill in", "Submit", "Check"][:rng.randint(2, 4)]
        steps = [Step(title=f"{verb} the {area} page", status=PASSED, start_time=start + i * 0.1,
                      end_time=start + i * 0.1 + 0.09, expected=f"the {area} page is shown")
                 for i, verb in enumerate(verbs)]
        message = stacktrace = None
        if failed:
            steps[-1].status = FAILED
            message = f"AssertionError: expected 200, got 500 for {title}"
            size = rng.randint(50_000, 500_000) if big else rng.randint(1_500, 8_000)
            stacktrace = stack_trace(rng, area, name, size)
        yield Result(
            title=title,
            signature=f"tests/{area}/test_{area}.py::Test{area.title()}::{name}::"
                      + json.dumps(params, sort_keys=True),
            status=status, start_time=start, end_time=start + 0.75, duration_ms=750,
            nodeid=f"tests/{area}/test_{area}.py::Test{area.title()}::{title}",
            case_ids=[1000 + number % 500] if number % 3 == 0 else [],
            message=message, stacktrace=stacktrace, thread=f"gw{index}",
            suites=["tests", area, f"test_{area}.py", f"Test{area.title()}"],
            params=params, param_groups=[["browser", "locale"]], steps=steps,
            fields={"severity": rng.choice(["normal", "major", "critical"]), "layer": "e2e"},
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)))


# --------------------------------------------------------------------------- the server process


def serve(config_path: str) -> int:
    """Run the local Qase server until SIGTERM, then write what it saw to a report file."""
    from qase_server import QaseServer

    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    server = QaseServer(token=config["token"])
    server.configure(validate=False, **config["knobs"])  # validation is for the tests
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    server.start()
    print(json.dumps({"url": server.url, "ca_path": server.ca_path}), flush=True)
    done.wait()
    requests = []
    for record in server.requests:
        results = (record.body or {}).get("results") if isinstance(record.body, dict) else None
        threads = Counter(r.get("execution", {}).get("thread") for r in results or [])
        requests.append({"time": record.time, "path": record.path, "status": record.status,
                         "count": len(results or []), "bytes": record.body_size,
                         "thread": threads.most_common(1)[0][0] if threads else None})
    stored = [[r["id"], r["title"]] for r in server.results()]
    report = {"requests": requests, "stored": stored,
              "resends_ignored": server.duplicates_ignored,
              "peak_60s": server.max_requests_in_window(60.0),
              "received_429": server.received_429, "internal_errors": server.internal_errors}
    server.stop()
    Path(config["report"]).write_text(json.dumps(report), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- a sending process


def send(spec_path: str) -> int:
    """One sending process: the plugin's uploader fed synthetic results as fast as they come."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    token = os.environ[TOKEN_VARIABLE]
    guard = RateGuard(spec["url"], token, spec["rate_limit"], directory=spec["guard_dir"])
    client = QaseClient(spec["url"], Secret(token), verify=spec["ca_path"], timeout=30.0,
                        guard=guard)
    spool = Spool(os.path.join(spec["session_dir"], f"gw{spec['index']}-{os.getpid()}.jsonl"),
                  {"url": spec["url"], "project": PROJECT, "run_id": spec["run_id"]})
    sender = ResultSender(client, PROJECT, spec["run_id"], batch_size=spec["batch_size"],
                          max_bytes=spec["max_bytes"], spool=spool)
    uploader = Uploader(sender=sender)
    started = clock.now()
    uploader.start()
    ids = []
    for result in synthetic_results(spec["index"], spec["count"], spec["seed"]):
        ids.append(result.id)
        uploader.submit(result)
        while (spec["ahead"] and not uploader.errors and sender.stopped is None
               and not sender.parked and uploader.submitted - sender.delivered
               - len(sender.undelivered) > spec["ahead"]):
            clock.sleep(0.002)  # tests take longer than sending their results
    finished = uploader.close(spec["max_wait"])
    ended = clock.now()
    left = len(sender.undelivered) + sender.pending
    kept = spool.close(keep=left > 0) if finished else spool.path
    Path(spec["ids"]).write_text("\n".join(ids), encoding="utf-8")
    print(json.dumps({
        "started": started, "ended": ended, "finished": finished,
        "delivered": sender.delivered, "left": left, "kept": kept,
        "requests": client.requests_made, "rate_limited": client.rate_limited,
        "split_413": sender.split_413, "lock_failures": guard.lock_failures,
        "waited": guard.waited_seconds, "caps": [sender.packer.max_count,
                                                 sender.packer.max_bytes],
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "errors": uploader.errors}), flush=True)
    return 0


# --------------------------------------------------------------------------- one measurement


@dataclass
class Case:
    results: int
    processes: int
    label: str = "defaults"
    batch_size: int = DEFAULT_BATCH
    max_bytes: int = DEFAULT_BYTES
    rate_limit: int = DEFAULT_RATE
    server_count_cap: int = SERVER_COUNT_CAP
    server_byte_cap: Optional[int] = None


def _minimum(case: Case, ok_requests: list[dict[str, Any]]) -> int:
    """The fewest result requests the caps allow: per process, by count and by bytes.

    A request of k results holds their bodies, k-1 commas and the envelope, so by bytes a
    process needs at least ceil(sum(body + 1) / (cap - envelope + 1)) requests.
    """
    count_cap = min(case.batch_size, case.server_count_cap)
    byte_cap = min(case.max_bytes, case.server_byte_cap or case.max_bytes)
    counts: Counter = Counter()
    sizes: Counter = Counter()
    for request in ok_requests:  # every result once, as it was stored (trimmed or not)
        counts[request["thread"]] += request["count"]
        sizes[request["thread"]] += request["bytes"] - ENVELOPE + 1
    return sum(max(math.ceil(counts[t] / count_cap),
                   math.ceil(sizes[t] / (byte_cap - ENVELOPE + 1))) for t in counts)


def _after_learning(case: Case, bulk: list[dict[str, Any]]) -> float:
    """Requests per the fewest possible, counting only each process's requests after its
    last 413: what the learned caps cost once they are learned."""
    last_413 = {r["thread"]: r["time"] for r in bulk if r["status"] == 413}
    later = [r for r in bulk if r["time"] > last_413.get(r["thread"], 0.0)]
    fewest = _minimum(case, [r for r in later if r["status"] == 202])
    return len(later) / fewest if fewest else 1.0


def measure(case: Case, seed: int, work: Path, ahead: int) -> dict[str, Any]:
    """Start a fresh server and guard, create a run, send from N processes, and count.

    ``ahead``: how many results a process may hand over beyond those already delivered
    (0: all at once).
    """
    work.mkdir(parents=True)
    token = f"bench-{uuid.uuid4().hex}"
    knobs: dict[str, Any] = {"rate_limit": case.rate_limit, "rate_window": 60.0,
                             "max_results_per_request": case.server_count_cap,
                             "max_body_bytes": case.server_byte_cap}
    config = work / "server.json"
    config.write_text(json.dumps({"token": token, "knobs": knobs,
                                  "report": str(work / "report.json")}), encoding="utf-8")
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(config)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        guard_dir = work / "guard"
        guard_dir.mkdir()
        guard = RateGuard(info["url"], token, case.rate_limit, directory=str(guard_dir))
        client = QaseClient(info["url"], Secret(token), verify=info["ca_path"], timeout=30.0,
                            guard=guard)
        deadline = clock.Deadline(60)
        client.get_project(PROJECT, deadline)  # what a session does first, from the budget
        run_id = client.create_run(PROJECT, {"title": "uploads benchmark", "is_autotest": True},
                                   deadline)
        client.close()
        children = []
        share, extra = divmod(case.results, case.processes)
        for index in range(case.processes):
            spec = work / f"send-{index}.json"
            spec.write_text(json.dumps({
                "url": info["url"], "ca_path": info["ca_path"], "run_id": run_id,
                "guard_dir": str(guard_dir), "session_dir": str(work / "sessions"),
                "index": index, "count": share + (1 if index < extra else 0), "seed": seed,
                "batch_size": case.batch_size, "max_bytes": case.max_bytes,
                "rate_limit": case.rate_limit, "max_wait": 300.0, "ahead": ahead,
                "ids": str(work / f"ids-{index}.txt")}), encoding="utf-8")
            children.append(subprocess.Popen(
                [sys.executable, __file__, "--send", str(spec)], stdout=subprocess.PIPE,
                text=True, env=dict(os.environ, **{TOKEN_VARIABLE: token})))
        outputs = []
        for child in children:
            out, _ = child.communicate(timeout=1800)
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
    report = json.loads((work / "report.json").read_text(encoding="utf-8"))
    sent_ids: list[str] = []
    for index in range(case.processes):
        sent_ids += (work / f"ids-{index}.txt").read_text(encoding="utf-8").split()
    stored_ids = Counter(entry[0] for entry in report["stored"])
    stored_titles = Counter(entry[1] for entry in report["stored"])
    bulk = [r for r in report["requests"] if r["path"].endswith("/results")]
    ok = [r for r in bulk if r["status"] == 202]
    return {
        "case": case, "outputs": outputs,
        "requests": len(bulk), "minimum": _minimum(case, ok),
        "after": _after_learning(case, bulk),
        "all_requests": len(report["requests"]),
        "413": sum(r["status"] == 413 for r in bulk), "429": report["received_429"],
        "peak_60s": report["peak_60s"],
        "seconds": max(o["ended"] for o in outputs) - min(o["started"] for o in outputs),
        "rss_mb": max(o["max_rss_kb"] for o in outputs) / 1024,
        "lost": len(set(sent_ids) - set(stored_ids)),
        "duplicated": sum(n - 1 for n in stored_titles.values() if n > 1)
                      + len(set(stored_ids) - set(sent_ids)),
        "resends": report["resends_ignored"],
        "kept": [o["kept"] for o in outputs if o["kept"]],
        "errors": [e for o in outputs for e in o["errors"]] + report["internal_errors"],
        "caps": [o["caps"] for o in outputs],
    }


# --------------------------------------------------------------------------- the table

HEADER = (f"{'results':>8} {'procs':>5} {'requests':>8} {'minimum':>7} {'ratio':>5} {'after':>5} "
          f"{'413s':>4} {'429s':>4} {'peak/60s':>8} {'time s':>6} {'RSS MB':>6} "
          f"{'lost':>4} {'dup':>4}  caps at the end")


def row(measured: dict[str, Any]) -> str:
    case = measured["case"]
    count, size = min(c for c, _ in measured["caps"]), min(b for _, b in measured["caps"])
    caps = f"{count} results, {size / 1024:.0f} KiB"
    return (f"{case.results:>8} {case.processes:>5} {measured['requests']:>8} "
            f"{measured['minimum']:>7} {measured['requests'] / measured['minimum']:>5.2f} "
            f"{measured['after']:>5.2f} "
            f"{measured['413']:>4} {measured['429']:>4} {measured['peak_60s']:>8} "
            f"{measured['seconds']:>6.1f} {measured['rss_mb']:>6.0f} "
            f"{measured['lost']:>4} {measured['duplicated']:>4}  {caps}")


def describe(case: Case) -> str:
    server = f"server: {case.server_count_cap} results a request"
    if case.server_byte_cap:
        server += f", {case.server_byte_cap // 1024} KiB a request"
    return (f"{case.label}: qase_batch_size={case.batch_size}, qase_max_request_bytes="
            f"{case.max_bytes // 1024} KiB, qase_rate_limit={case.rate_limit}/min; "
            f"{server}, {case.rate_limit}/min")


def cases(args: argparse.Namespace) -> list[list[Case]]:
    """Row sets: the defaults at each size, then the 413 sets (caps to learn) unless off."""
    sets = [[Case(n, p, rate_limit=args.rate_limit) for n in args.results
             for p in args.processes]]
    if args.learned:
        smallest = min(args.results)
        sets.append([Case(smallest, p, "server caps the count", batch_size=400,
                          rate_limit=args.rate_limit, server_count_cap=200)
                     for p in args.processes])
        proxy = 512 * 1024
        sets.append([Case(smallest, p, "server caps the bytes (a proxy), cap learned from 413s",
                          rate_limit=args.rate_limit, server_byte_cap=proxy)
                     for p in args.processes])
        sets.append([Case(smallest, p, "the same, cap known (no 413)", max_bytes=proxy,
                          rate_limit=args.rate_limit, server_byte_cap=proxy)
                     for p in args.processes])
    return sets


def _numbers(text: str) -> list[int]:
    return [int(part.replace("_", "").replace("k", "000")) for part in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=_numbers, default=[10_000, 100_000],
                        help="comma-separated result counts (default 10000,100000)")
    parser.add_argument("--processes", type=_numbers, default=[1, 2, 4],
                        help="comma-separated sending process counts (default 1,2,4)")
    parser.add_argument("--rate-limit", type=int, default=DEFAULT_RATE,
                        help="qase_rate_limit of the senders and the server's limit a minute")
    parser.add_argument("--no-learned", dest="learned", action="store_false",
                        help="skip the row sets where the server's lower caps force 413s")
    parser.add_argument("--burst", action="store_true",
                        help="hand every result over at once (default: at most "
                             f"{AHEAD} ahead of those delivered, as when tests are slower "
                             "than sending their results)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--send", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    if args.send:
        return send(args.send)
    work = Path(tempfile.mkdtemp(prefix="qase-uploads-"))
    failures = 0
    try:
        for number, row_set in enumerate(cases(args)):
            print(describe(row_set[0]))
            print(HEADER, flush=True)
            for index, case in enumerate(row_set):
                measured = measure(case, args.seed, work / f"{number}-{index}",
                                   0 if args.burst else AHEAD)
                print(row(measured), flush=True)
                bad = measured["lost"] or measured["duplicated"] or measured["errors"]
                for text in measured["errors"][:3] + [f"kept: {p}" for p in measured["kept"]]:
                    print(f"  ! {text}")
                failures += bool(bad)
            print()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
