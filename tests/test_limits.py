"""The API's limits against the local server: 413 splitting by count and bytes, trimming, 429,
and one request budget shared by concurrent sessions."""

from __future__ import annotations

import re
import time

import pytest
from support import (
    assert_clean,
    by_title,
    clean_environment,
    finished,
    point_at,
    qase_lines,
    run,
    start,
)

from pytest_qase import clock, uploader
from pytest_qase.ratelimit import RateGuard
from pytest_qase.spool import read_spool


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")


def _many(pytester, count: int, body: str = "pass") -> None:
    pytester.makepyfile(f"""
        import pytest
        @pytest.mark.parametrize("n", range({count}))
        def test_n(n):
            {body}
    """)


def test_413_by_count_splits_and_learns_the_cap(pytester, qase_server, monkeypatch):
    qase_server.max_results_per_request = 30
    _many(pytester, 250)
    point_at(monkeypatch, qase_server)
    assert run(pytester, qase_server).ret == 0
    assert len(by_title(qase_server)) == 250
    answers = [(len(r.body["results"]), r.status) for r in qase_server.results_requests()]
    # 200 -> 100 -> 50 -> 25 are taken as too many bytes (nothing was accepted yet); the next
    # refusal of more results than were ever accepted teaches the count: 25
    assert [status for _, status in answers].count(413) == 4
    assert all(count <= 30 for count, status in answers if status == 202)
    last_refusal = max(i for i, (_, status) in enumerate(answers) if status == 413)
    after = [count for count, _ in answers[last_refusal + 1:]]
    # the cap learned is 25, not less: only batches packed before it was learned are split
    assert len(after) <= -(-sum(after) // 25) + 2
    [run_id] = qase_server.runs
    assert qase_server.run(run_id)["completed"]
    assert_clean(qase_server)


def test_413_by_bytes_splits_every_result_delivered_once(pytester, qase_server, monkeypatch):
    qase_server.max_body_bytes = 60_000
    _many(pytester, 120, "assert n % 2, 'x' * 3000")
    point_at(monkeypatch, qase_server)
    run(pytester, qase_server)
    results = by_title(qase_server)
    assert len(results) == 120
    assert sum(r["execution"]["status"] == "failed" for r in results.values()) == 60
    assert all(r.body_size <= 60_000 for r in qase_server.results_requests()
               if r.status == 202)
    assert_clean(qase_server)


def test_request_byte_cap_is_respected_without_any_413(pytester, qase_server, monkeypatch):
    qase_server.max_body_bytes = 70_000
    _many(pytester, 100, "assert n % 2, 'y' * 3000")
    point_at(monkeypatch, qase_server, QASE_MAX_REQUEST_BYTES="65536")
    run(pytester, qase_server)
    assert len(by_title(qase_server)) == 100
    assert {r.status for r in qase_server.results_requests()} == {202}


def test_several_megabyte_stack_trace_is_trimmed_not_dropped(pytester, qase_server,
                                                             monkeypatch):
    qase_server.max_body_bytes = 1_000_000
    pytester.makepyfile("""
        def test_huge_failure():
            raise ValueError("start-of-message " + "z" * 6_000_000 + " end-of-message")

        def test_small():
            pass
    """)
    point_at(monkeypatch, qase_server)
    run(pytester, qase_server)
    results = by_title(qase_server)
    assert set(results) == {"test_huge_failure", "test_small"}
    trace = results["test_huge_failure"]["execution"]["stacktrace"]
    assert "characters cut by pytest-qase" in trace
    assert "end-of-message" in trace and len(trace) < 1_000_000
    assert len(trace) > 200_000  # cut to what fits, not to a fixed few kilobytes
    assert results["test_huge_failure"]["execution"]["status"] == "failed"
    assert_clean(qase_server)


def test_429_pauses_then_resends_the_same_ids(pytester, qase_server, monkeypatch):
    _many(pytester, 30)
    qase_server.inject(path=r"/results$", status=429, times=1, headers={"Retry-After": "2"},
                       body={"status": False, "errorMessage": "API rate limit exceeded."})
    point_at(monkeypatch, qase_server)
    assert run(pytester, qase_server).ret == 0
    bulk = qase_server.results_requests()
    assert [r.status for r in bulk] == [429, 202]
    assert bulk[1].time - bulk[0].time >= 1.9  # Retry-After honoured
    assert [x["id"] for x in bulk[0].body["results"]] == [x["id"] for x in bulk[1].body["results"]]
    assert len(by_title(qase_server)) == 30
    assert qase_server.received_429 == 1


def test_a_block_longer_than_a_batch_may_wait_is_waited_out_at_the_end(pytester, qase_server,
                                                                       monkeypatch):
    """A Retry-After longer than one batch may wait during the session parks the batch; it
    goes at the end, within qase_max_wait, instead of stopping the uploads for good."""
    monkeypatch.setattr(uploader, "BATCH_DEADLINE", 1.0)  # a 60 s block, 60x faster
    _many(pytester, 9, "time.sleep(0.1)")
    pytester.makeconftest("import time, builtins\nbuiltins.time = time\n")
    qase_server.inject(path=r"/results$", status=429, times=1, headers={"Retry-After": "3"},
                       body={"status": False, "errorMessage": "API rate limit exceeded."})
    point_at(monkeypatch, qase_server, QASE_BATCH_SIZE="3")
    result = run(pytester, qase_server)
    assert result.ret == 0
    lines = qase_lines(result)
    assert any(line.endswith("(completed)") for line in lines), lines
    assert not [line for line in lines if "not delivered" in line or "error" in line], lines
    assert len(by_title(qase_server)) == 9
    assert qase_server.received_429 == 1
    assert_clean(qase_server)


def test_rate_limit_of_the_server_is_never_exceeded(pytester, qase_server, monkeypatch):
    """Budget 6 a minute, 9 requests needed: the guard waits instead of drawing a 429."""
    qase_server.configure(rate_limit=6, rate_window=60.0, retry_after=60)
    _many(pytester, 18)
    point_at(monkeypatch, qase_server, QASE_RATE_LIMIT="6", QASE_BATCH_SIZE="3",
             QASE_MAX_WAIT="3")
    result = run(pytester, qase_server)
    assert qase_server.received_429 == 0
    assert qase_server.max_requests_in_window(60) <= 6
    # the requests that did not fit were not sent; they are kept for later, and said so
    text = "\n".join(qase_lines(result))
    assert "python -m pytest_qase upload" in text
    assert "qase: 12 results -> run 1 (DEMO) in 6 requests" in text
    assert "qase: 6 of 18 results were not delivered" in text
    assert len(qase_server.results()) == 12



def test_one_big_result_teaches_the_byte_cap_not_the_count(pytester, qase_server,
                                                           monkeypatch):
    """A proxy's byte cap refuses the batch that holds one huge failure: the batches after it
    still carry 200 results (halving the count cap on every 413 cost 3x the requests)."""
    qase_server.max_body_bytes = 150_000
    _many(pytester, 1000, "assert n != 300, 'big ' + 'q' * 120_000")
    point_at(monkeypatch, qase_server)
    run(pytester, qase_server)
    assert len(by_title(qase_server)) == 1000
    answers = [(len(r.body["results"]), r.status) for r in qase_server.results_requests()]
    assert [status for _, status in answers].count(413) <= 3
    first_refusal = min(i for i, (_, status) in enumerate(answers) if status == 413)
    after = [count for count, status in answers[first_refusal + 1:] if status == 202]
    assert after.count(200) >= 3  # the small results still go 200 a request
    assert len(answers) <= 10
    assert_clean(qase_server)


BARRIER = """
    import os, pathlib, time
    import pytest

    @pytest.fixture(scope="session", autouse=True)
    def _every_session_opened_its_run():
        # all the sessions' start requests come before any result
        folder = pathlib.Path(os.environ["BARRIER_DIR"])
        (folder / str(os.getpid())).touch()
        end = time.monotonic() + 30
        while len(list(folder.iterdir())) < int(os.environ["BARRIER_COUNT"]):
            assert time.monotonic() < end, "the other sessions did not start"
            time.sleep(0.02)
"""


def _concurrent(pytester, monkeypatch, modules: dict[str, str]) -> None:
    """Test modules for sessions run side by side, behind a barrier after their start."""
    barrier = pytester.path / "barrier"
    barrier.mkdir()
    monkeypatch.setenv("BARRIER_DIR", str(barrier))
    monkeypatch.setenv("BARRIER_COUNT", str(len(modules)))
    pytester.makeconftest(BARRIER)
    pytester.makepyfile(**modules)


def _summary(lines: list[str]) -> tuple[int, int, list[str]]:
    """Run id, results delivered and kept spool files, from one session's qase: lines."""
    delivered = re.search(r"^qase: (\d+) results -> run (\d+) ", "\n".join(lines), re.M)
    assert delivered, lines
    kept = [line.split(" upload ", 1)[1] for line in lines
            if line.startswith("qase: deliver them later with:")]
    return int(delivered.group(2)), int(delivered.group(1)), kept


@pytest.mark.parametrize("sessions, tests", [(2, 10), (3, 6)])
def test_concurrent_sessions_share_the_rate_limit(pytester, qase_server, monkeypatch,
                                                  sessions, tests):
    """20 a minute for all: each session's 2 start requests and its results (one a request)
    need 24 together; what does not fit waits, then stays in a spool file, never lost."""
    qase_server.configure(rate_limit=20, rate_window=60.0, retry_after=60)
    _concurrent(pytester, monkeypatch, {
        f"test_p{k}": f"""
            import pytest
            @pytest.mark.parametrize("n", range({tests}))
            def test_n(n):
                pass
        """ for k in range(sessions)})
    point_at(monkeypatch, qase_server, QASE_RATE_LIMIT="20", QASE_BATCH_SIZE="1",
             QASE_MAX_WAIT="2")
    started = time.monotonic()
    processes = [start(pytester, qase_server, f"test_p{k}.py", log=f"p{k}.log")
                 for k in range(sessions)]
    outputs = [finished(p, pytester, log=f"p{k}.log", timeout=60)
               for k, p in enumerate(processes)]
    assert time.monotonic() - started < 45  # every wait was bounded by qase_max_wait
    assert qase_server.received_429 == 0
    assert qase_server.max_requests_in_window(60) <= 20
    assert len(qase_server.requests) == 20  # the whole budget was used, and no more
    stored_ids: set[str] = set()
    for k, (code, lines) in enumerate(outputs):
        assert code == 0, lines
        run_id, delivered, kept = _summary(lines)
        stored = {r["signature"]: r["id"] for r in qase_server.results(run_id)}
        waiting = {r["signature"]: r["id"] for path in kept for r in read_spool(path)[1]}
        assert len(stored) == delivered
        assert not set(stored) & set(waiting)  # never both delivered and kept
        assert len(stored) + len(waiting) == tests  # every result is in one of the two
        assert all(s.startswith(f"test_p{k}.py::test_n") for s in [*stored, *waiting])
        assert not stored_ids & set(waiting.values())
        stored_ids |= set(stored.values())
        if waiting:
            assert f"qase: {len(waiting)} of {tests} results were not delivered" in "\n".join(
                lines)
    assert len(qase_server.results()) < sessions * tests  # the budget did not fit them all
    assert_clean(qase_server)


def test_a_429_pauses_every_session(pytester, qase_server, monkeypatch):
    """One session draws a 429 with Retry-After: 3; the other, with results ready during the
    block, sends nothing until it ends either; each result arrives once, with its id."""
    qase_server.inject(path=r"/results$", status=429, times=1, headers={"Retry-After": "3"},
                       body={"status": False, "errorMessage": "API rate limit exceeded."})
    go = pytester.path / "go"
    monkeypatch.setenv("GO_FILE", str(go))
    _concurrent(pytester, monkeypatch, {
        "test_first": """
            import time
            import pytest
            @pytest.mark.parametrize("n", range(12))
            def test_first(n):
                if n >= 3:
                    time.sleep(0.2)  # more results while the first batch is blocked
        """,
        "test_second": """
            import os, pathlib, time
            import pytest

            @pytest.fixture(scope="module", autouse=True)
            def _after_the_429():
                end = time.monotonic() + 30
                while not pathlib.Path(os.environ["GO_FILE"]).exists():
                    assert time.monotonic() < end
                    time.sleep(0.02)

            @pytest.mark.parametrize("n", range(9))
            def test_second(n):
                pass
        """})
    point_at(monkeypatch, qase_server, QASE_BATCH_SIZE="3")
    first = start(pytester, qase_server, "test_first.py", log="first.log")
    second = start(pytester, qase_server, "test_second.py", log="second.log")
    guard = RateGuard(qase_server.url, qase_server.token, 600)  # the sessions' shared state
    end = time.monotonic() + 30
    while not (qase_server.received_429 and guard.blocked_until() > clock.now()):
        assert time.monotonic() < end and first.poll() is None, "no 429 was drawn"
        time.sleep(0.01)
    go.touch()  # the second session's tests run now, while every session is blocked
    outputs = [finished(first, pytester, log="first.log", timeout=60),
               finished(second, pytester, log="second.log", timeout=60)]
    for code, lines in outputs:
        assert code == 0, lines
        assert any(line.endswith("(completed)") for line in lines), lines
    [refused] = [r for r in qase_server.requests if r.status == 429]
    assert refused.answered_at is not None
    block_end = refused.answered_at + 3.0
    later = [r for r in qase_server.requests if r.seq > refused.seq]
    assert later and all(r.time >= block_end - 0.05 for r in later)
    assert qase_server.received_429 == 1  # so at most one per session
    results = qase_server.results()
    assert len({r["signature"] for r in results}) == len(results) == 21
    ended_in_block = {r["signature"].split("::")[0] for r in results
                      if r["execution"]["end_time"] < block_end - 0.5}
    assert ended_in_block == {"test_first.py", "test_second.py"}  # both had results waiting
    resent = [r for r in later if r.body and r.body.get("results")
              and {x["id"] for x in r.body["results"]} == {x["id"] for x in
                                                            refused.body["results"]}]
    assert len(resent) == 1 and resent[0].status == 202  # the same ids, once
    assert_clean(qase_server)
