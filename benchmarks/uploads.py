"""Uploads at scale: requests, 429s, memory and exactness of the real uploader.

Why: the issue "Uploads that respect the API's limits" promises bulk requests close to the
fewest the caps allow, never more than ``qase_rate_limit`` requests a minute however many
processes share the token, no 429 in normal operation, bounded memory, and every result
stored exactly once. This script measures all of that with the plugin's own upload code
(``Uploader`` + ``ResultSender`` + ``QaseClient`` + ``RateGuard`` with a spool, wired as
``pytest_qase/session.py`` does) sending synthetic results of realistic size to the local
server of ``tests/qase_server.py``, which runs as a process of its own so that its CPU and
memory are not counted in the senders.

Row sets: the defaults at each size; with the smallest size, a server that caps the count
or the bytes lower than the plugin (413s, caps learned; ``--no-learned`` skips them); and
a rate budget that binds (about a minute a row; ``--no-rate`` skips them): one machine,
then two machines (two rate-guard files, as two CI runners) on one token, each with the
whole budget (429s expected) and with the budget split between them.

Usage::

    python benchmarks/uploads.py                                  # 10k and 100k, 1/2/4 processes
    python benchmarks/uploads.py --results 10000 --processes 1,2
    python benchmarks/uploads.py --no-learned --no-rate           # the defaults only
    python benchmarks/uploads.py --results 10k --processes 2 --rate-limit 30 --no-learned --no-rate

Columns: ``minimum`` is a lower bound (per process, by count and by bytes); ``offline`` is
what a packer that knows every size in advance needs, so the true fewest lies between the
two. ``after`` is the ratio counting only the requests after each process's last 413.
``429/p/b``: most 429s one process got in one block. ``peak/60s``: most requests the server
received in any 60 s. ``RSS MB``: the largest peak resident memory of a sending process.
``left``: results not delivered but kept in a spool file; ``lost``: neither stored nor kept.

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
from pytest_qase.results import (  # noqa: E402
    FAILED,
    PASSED,
    SKIPPED,
    Result,
    Step,
    to_json_bytes,
)
from pytest_qase.sender import ResultSender  # noqa: E402
from pytest_qase.settings import Secret  # noqa: E402
from pytest_qase.spool import Spool, read_spool  # noqa: E402
from pytest_qase.uploader import Uploader  # noqa: E402

PROJECT = "DEMO"
TOKEN_VARIABLE = "QASE_API_TOKEN"
DEFAULT_BATCH, DEFAULT_BYTES, DEFAULT_RATE = 200, 4 * 1024 * 1024, 600
SERVER_COUNT_CAP = 2000  # the API's own limit (the server's default)
FAILURE_RATE = 0.05
BIG_TRACE_EVERY = 250  # one result in 250 fails with a 50-500 KB stack trace
AHEAD = 1000  # results handed over but not yet delivered, at most (unless --burst)
SERVER_RETRY_AFTER = 60.0  # the local server's Retry-After and block after a 429

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
    sizes: dict[str, list[int]] = {}  # per process, each stored result's JSON size, in order
    seen: set = set()
    for record in server.requests:
        results = (record.body or {}).get("results") if isinstance(record.body, dict) else None
        threads = Counter(r.get("execution", {}).get("thread") for r in results or [])
        requests.append({"time": record.time, "path": record.path, "status": record.status,
                         "count": len(results or []), "bytes": record.body_size,
                         "thread": threads.most_common(1)[0][0] if threads else None})
        if record.status == 202:
            for result in results or []:
                if result.get("id") not in seen:
                    seen.add(result.get("id"))
                    thread = str(result.get("execution", {}).get("thread"))
                    sizes.setdefault(thread, []).append(len(to_json_bytes(result)))
    stored = [[r["id"], r["title"]] for r in server.results()]
    report = {"requests": requests, "stored": stored, "sizes": sizes,
              "resends_ignored": server.duplicates_ignored,
              "peak_60s": server.max_requests_in_window(60.0),
              "received_429": server.received_429, "internal_errors": server.internal_errors}
    server.stop()
    Path(config["report"]).write_text(json.dumps(report), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- a sending process


def peak_rss_kb() -> int:
    """This process's peak resident memory, in KiB.

    ``VmHWM`` on Linux: ``ru_maxrss`` there keeps the peak of the process image replaced by
    ``exec``, i.e. of the benchmark's own parent process at fork time, which grows with the
    results of earlier rows.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


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
    with open(spec["ids"], "w", encoding="utf-8") as ids:  # on disk: not counted in memory
        for result in synthetic_results(spec["index"], spec["count"], spec["seed"]):
            ids.write(result.id + "\n")
            uploader.submit(result)
            while (spec["ahead"] and not uploader.errors and sender.stopped is None
                   and not sender.parked and uploader.submitted - sender.delivered
                   - len(sender.undelivered) > spec["ahead"]):
                clock.sleep(0.002)  # tests take longer than sending their results
    finished = uploader.close(spec["max_wait"])
    ended = clock.now()
    left = len(sender.undelivered) + sender.pending
    kept = spool.close(keep=left > 0) if finished else spool.path
    print(json.dumps({
        "started": started, "ended": ended, "finished": finished,
        "delivered": sender.delivered, "left": left, "kept": kept,
        "requests": client.requests_made, "rate_limited": client.rate_limited,
        "split_413": sender.split_413, "lock_failures": guard.lock_failures,
        "waited": guard.waited_seconds, "caps": [sender.packer.max_count,
                                                 sender.packer.max_bytes],
        "max_rss_kb": peak_rss_kb(),
        "why": sorted(set(sender.undelivered.values()))[:3],
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
    server_rate_limit: Optional[int] = None  # the token's limit at the server; None: rate_limit
    machines: int = 1  # rate-guard files (one per CI machine); processes are dealt out to them

    @property
    def token_rate_limit(self) -> int:
        return self.server_rate_limit or self.rate_limit


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


def _offline(case: Case, sizes: dict[str, list[int]]) -> int:
    """Requests an offline packer needs for the same results (sizes known in advance).

    With results of mixed size the bound of ``_minimum`` cannot always be reached (a 300 KB
    result and 200 small ones do not share a 512 KiB request), so this is the other side of
    the fewest possible: the results above 1/8 of the byte cap go first, largest first, then
    the rest in their order, each into the first request with room (first fit); the better
    of two ways: each large result opening a request of its own, or sharing one.
    """
    count_cap = min(case.batch_size, case.server_count_cap)
    room = min(case.max_bytes, case.server_byte_cap or case.max_bytes) - ENVELOPE + 1

    def first_fit(costs: list[int], alone: bool) -> int:
        total, smallest = 0, min(costs)
        opened: list[list[int]] = []  # [bytes, count] of the requests that still have room
        for cost in costs:
            large = alone and cost * 8 > room
            target = None if large else next(
                (b for b in opened if b[1] < count_cap and b[0] + cost <= room), None)
            if target is None:
                total += 1
                target = [0, 0]
                opened.append(target)
            target[0] += cost
            target[1] += 1
            if target[1] >= count_cap or room - target[0] < smallest:
                opened.remove(target)
        return total

    total = 0
    for values in sizes.values():
        costs = [size + 1 for size in values]  # a body and its comma
        ordered = (sorted((c for c in costs if c * 8 > room), reverse=True)
                   + [c for c in costs if c * 8 <= room])
        if ordered:
            total += min(first_fit(ordered, True), first_fit(ordered, False))
    return total


def _most_429s_per_block(bulk: list[dict[str, Any]]) -> int:
    """Most 429s one process got within one block: a block starts with a 429 after the
    previous block ended and lasts the server's Retry-After."""
    per: Counter = Counter()
    block, end = 0, -math.inf
    for request in sorted((r for r in bulk if r["status"] == 429), key=lambda r: r["time"]):
        if request["time"] >= end:
            block, end = block + 1, request["time"] + SERVER_RETRY_AFTER
        per[block, request["thread"]] += 1
    return max(per.values(), default=0)


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
    knobs: dict[str, Any] = {"rate_limit": case.token_rate_limit, "rate_window": 60.0,
                             "retry_after": int(SERVER_RETRY_AFTER),
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
        guard_dirs = [work / f"guard-{machine}" for machine in range(case.machines)]
        for guard_dir in guard_dirs:
            guard_dir.mkdir()
        guard = RateGuard(info["url"], token, case.rate_limit, directory=str(guard_dirs[0]))
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
                "guard_dir": str(guard_dirs[index % case.machines]),
                "session_dir": str(work / "sessions"),
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
    kept_ids: set = set()  # left in a spool file for ``python -m pytest_qase upload``
    for output in outputs:
        if output["kept"]:
            kept_ids.update(str(r.get("id")) for r in read_spool(output["kept"])[1])
    missing = set(sent_ids) - set(stored_ids)
    return {
        "case": case, "outputs": outputs,
        "requests": len(bulk), "minimum": _minimum(case, ok),
        "offline": _offline(case, report["sizes"]),
        "after": _after_learning(case, bulk),
        "all_requests": len(report["requests"]),
        "413": sum(r["status"] == 413 for r in bulk), "429": report["received_429"],
        "429_block": _most_429s_per_block(bulk),
        "peak_60s": report["peak_60s"],
        "seconds": max(o["ended"] for o in outputs) - min(o["started"] for o in outputs),
        "rss_mb": max(o["max_rss_kb"] for o in outputs) / 1024,
        "lost": len(missing - kept_ids), "left": len(missing & kept_ids),
        "duplicated": sum(n - 1 for n in stored_titles.values() if n > 1)
                      + len(set(stored_ids) - set(sent_ids)),
        "resends": report["resends_ignored"],
        "kept": [o["kept"] for o in outputs if o["kept"]],
        "errors": [e for o in outputs for e in o["errors"]] + report["internal_errors"],
        "caps": [o["caps"] for o in outputs],
    }


# --------------------------------------------------------------------------- the table

HEADER = (f"{'results':>8} {'procs':>5} {'requests':>8} {'minimum':>7} {'ratio':>5} {'after':>5} "
          f"{'offline':>7} {'413s':>4} {'429s':>4} {'429/p/b':>7} {'peak/60s':>8} {'time s':>6} "
          f"{'RSS MB':>6} {'left':>4} {'lost':>4} {'dup':>4}  caps at the end")


def row(measured: dict[str, Any]) -> str:
    case = measured["case"]
    count, size = min(c for c, _ in measured["caps"]), min(b for _, b in measured["caps"])
    caps = f"{count} results, {size / 1024:.0f} KiB"
    return (f"{case.results:>8} {case.processes:>5} {measured['requests']:>8} "
            f"{measured['minimum']:>7} {measured['requests'] / measured['minimum']:>5.2f} "
            f"{measured['after']:>5.2f} {measured['offline']:>7} "
            f"{measured['413']:>4} {measured['429']:>4} {measured['429_block']:>7} "
            f"{measured['peak_60s']:>8} {measured['seconds']:>6.1f} {measured['rss_mb']:>6.0f} "
            f"{measured['left']:>4} {measured['lost']:>4} {measured['duplicated']:>4}  {caps}")


def describe(case: Case) -> str:
    server = f"server: {case.server_count_cap} results a request"
    if case.server_byte_cap:
        server += f", {case.server_byte_cap // 1024} KiB a request"
    machines = f" on each of {case.machines} machines" if case.machines > 1 else ""
    return (f"{case.label}: qase_batch_size={case.batch_size}, qase_max_request_bytes="
            f"{case.max_bytes // 1024} KiB, qase_rate_limit={case.rate_limit}/min{machines}; "
            f"{server}, {case.token_rate_limit}/min for the token")


def cases(args: argparse.Namespace) -> list[list[Case]]:
    """Row sets: the defaults at each size, then the 413 sets (caps to learn) and the rate
    sets (a budget that binds) unless off."""
    sets = [[Case(n, p, rate_limit=args.rate_limit) for n in args.results
             for p in args.processes]]
    smallest = min(args.results)
    if args.learned:
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
    if args.rate:
        # 4/5 of the requests the smallest size needs: the budget binds, one pause of ~60 s
        budget = max(2, smallest * 4 // (DEFAULT_BATCH * 5))
        several = [p for p in args.processes if p >= 2]
        sets.append([Case(smallest, p, "the budget binds", rate_limit=budget)
                     for p in args.processes])
        if several:
            sets.append([Case(smallest, p, "two machines on one token, each with the whole "
                              "budget (429s expected)", rate_limit=budget, machines=2)
                         for p in several])
            sets.append([Case(smallest, p, "two machines on one token, the budget split",
                              rate_limit=budget // 2, server_rate_limit=budget, machines=2)
                         for p in several])
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
    parser.add_argument("--no-rate", dest="rate", action="store_false",
                        help="skip the row sets where the rate budget binds (about a minute "
                             "a row)")
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
                bad = (measured["lost"] or measured["left"] or measured["duplicated"]
                       or measured["errors"])
                if not bad:
                    shutil.rmtree(work / f"{number}-{index}", ignore_errors=True)
                why = [w for o in measured["outputs"] for w in o["why"]]
                for text in (measured["errors"][:3] + [f"kept: {p}" for p in measured["kept"]]
                             + [f"not delivered: {w}" for w in sorted(set(why))[:3]]):
                    print(f"  ! {text}")
                failures += bool(bad)
            print()
    finally:
        if any(work.iterdir()):
            print(f"the files of the rows that failed are kept in {work}")
        else:
            work.rmdir()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
