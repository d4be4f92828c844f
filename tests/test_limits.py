"""The API's limits against the local server: 413 splitting by count and bytes, trimming, 429."""

from __future__ import annotations

import pytest
from support import assert_clean, by_title, clean_environment, point_at, qase_lines, run


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
    # 200 -> 100 -> 50 -> 25: three 413s teach the cap; nothing after that is refused
    assert [status for _, status in answers].count(413) == 3
    assert all(count <= 30 for count, status in answers if status == 202)
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
