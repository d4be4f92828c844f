"""Tests of the local Qase API server itself, over real HTTPS with ``requests``.

Why: the plugin's integration tests trust this server to behave like Qase (status codes,
limits, faults) and to catch spec violations; these tests pin that behaviour down.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from qase_server import DEFAULT_TOKEN, QaseServer, _escape_pointer, _validator

SERVER_SCRIPT = Path(__file__).resolve().parent / "qase_server.py"


class Api:
    """Small client: passes ``verify=`` on every call (a Session's ``verify`` attribute loses
    against a ``REQUESTS_CA_BUNDLE`` environment variable)."""

    def __init__(self, server: QaseServer) -> None:
        self.server = server
        self.session = requests.Session()

    def call(
        self, method: str, path: str, *, token: str | None = DEFAULT_TOKEN, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Token"] = token
        kwargs.setdefault("timeout", 5)
        return self.session.request(
            method,
            self.server.url + path,
            headers=headers,
            verify=self.server.ca_path,
            **kwargs,
        )

    def create_run(self, title: str = "run") -> int:
        resp = self.call("POST", "/v1/run/DEMO", json={"title": title})
        assert resp.status_code == 200, resp.text
        return int(resp.json()["result"]["id"])

    def post_results(self, run_id: int, results: list[dict[str, Any]]) -> requests.Response:
        return self.call("POST", f"/v2/DEMO/run/{run_id}/results", json={"results": results})


def result(key: str, status: str = "passed", **extra: Any) -> dict[str, Any]:
    """A minimal valid ResultCreate with idempotency key ``key``."""
    body: dict[str, Any] = {"id": key, "title": f"test {key}", "execution": {"status": status}}
    body.update(extra)
    return body


def assert_spec_response(version: str, template: str, method: str, resp: requests.Response) -> None:
    """The server's own answers must match the response schemas of the official spec."""
    pointer = (
        f"/paths/{_escape_pointer(template)}/{method.lower()}/responses/"
        f"{resp.status_code}/content/application~1json/schema"
    )
    errors = [e.message for e in _validator(version, pointer).iter_errors(resp.json())]
    assert errors == []


@pytest.fixture
def api(qase_server: QaseServer) -> Api:
    return Api(qase_server)


# --------------------------------------------------------------------------- auth and routing


def test_missing_wrong_or_revoked_token_is_401(qase_server: QaseServer, api: Api) -> None:
    for token in (None, "wrong-token"):
        resp = api.call("GET", "/v1/project/DEMO", token=token)
        assert resp.status_code == 401
        assert resp.json() == {"status": False, "errorMessage": "Unauthorized"}
    qase_server.revoked = True
    assert api.call("GET", "/v1/project/DEMO").status_code == 401
    records = qase_server.requests
    assert [r.token_ok for r in records] == [False, False, False]
    assert "Token" in records[0].headers or "Token" in records[1].headers
    assert "wrong-token" not in repr(records) and DEFAULT_TOKEN not in repr(records)


def test_read_only_token_reads_but_cannot_write(qase_server: QaseServer, api: Api) -> None:
    qase_server.read_only_token = "read-only"
    assert api.call("GET", "/v1/project/DEMO", token="read-only").status_code == 200
    resp = api.call("POST", "/v1/run/DEMO", token="read-only", json={"title": "x"})
    assert resp.status_code == 403
    assert qase_server.runs == {}


def test_project_found_or_404(qase_server: QaseServer, api: Api) -> None:
    resp = api.call("GET", "/v1/project/DEMO")
    assert resp.status_code == 200
    assert resp.json()["result"]["code"] == "DEMO"
    assert_spec_response("v1", "/project/{code}", "GET", resp)
    resp = api.call("GET", "/v1/project/NOPE")
    assert resp.status_code == 404
    assert resp.json()["status"] is False


def test_unknown_path_404_and_wrong_method_405(qase_server: QaseServer, api: Api) -> None:
    assert api.call("GET", "/v1/nothing-here").status_code == 404
    assert api.call("GET", "/v3/DEMO").status_code == 404
    resp = api.call("PUT", "/v1/run/DEMO/1", json={})
    assert resp.status_code == 405
    assert "GET" in resp.headers["Allow"]
    assert resp.json()["status"] is False


def test_keep_alive_one_connection_even_after_errors(qase_server: QaseServer, api: Api) -> None:
    run_id = api.create_run()
    api.call("GET", "/v1/project/DEMO", token="bad")  # 401 with a body
    api.call(
        "POST",
        f"/v2/DEMO/run/{run_id}/results",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )  # 400, body read fully anyway
    api.call("GET", "/v1/nothing")  # 404
    assert api.post_results(run_id, [result("a")]).status_code == 202
    assert qase_server.connections_opened == 1
    assert {r.status for r in qase_server.requests} == {200, 401, 400, 404, 202}


# --------------------------------------------------------------------------- runs and results


def test_run_lifecycle_with_idempotent_results(qase_server: QaseServer, api: Api) -> None:
    resp = api.call("POST", "/v1/run/DEMO", json={"title": "nightly", "is_autotest": True})
    assert resp.status_code == 200
    assert resp.json() == {"status": True, "result": {"id": 1}}
    assert_spec_response("v1", "/run/{code}", "POST", resp)
    assert api.create_run("second") == 2

    resp = api.post_results(1, [result("a"), result("b", "failed")])
    assert resp.status_code == 202
    assert resp.json() == {"status": True}
    assert_spec_response("v2", "/{project_code}/run/{run_id}/results", "POST", resp)
    # the same idempotency key again (a retry): acknowledged, not stored twice
    assert api.post_results(1, [result("b", "failed"), result("c")]).status_code == 202
    assert qase_server.duplicates_ignored == 1
    assert [r["id"] for r in qase_server.results(1)] == ["a", "b", "c"]

    resp = api.call("POST", "/v2/DEMO/run/1/result", json=result("d", "skipped"))
    assert resp.status_code == 202
    assert_spec_response("v2", "/{project_code}/run/{run_id}/result", "POST", resp)

    resp = api.call("GET", "/v1/run/DEMO/1")
    assert resp.status_code == 200
    assert resp.json()["result"]["status"] == 0
    assert resp.json()["result"]["stats"]["statuses"] == {"passed": 2, "failed": 1, "skipped": 1}
    assert_spec_response("v1", "/run/{code}/{id}", "GET", resp)

    resp = api.call("POST", "/v1/run/DEMO/1/complete")
    assert resp.status_code == 200
    assert resp.json() == {"status": True}
    assert api.call("GET", "/v1/run/DEMO/1").json()["result"]["status"] == 1
    run = qase_server.run(1)
    assert run["completed"] and run["completed_at"] is not None
    assert run["last_result_order"] is not None and run["completed_order"] is not None
    assert run["completed_order"] > run["last_result_order"]

    resp = api.post_results(1, [result("late")])
    assert resp.status_code == 400
    assert "late" not in qase_server.run(1)["results"]
    assert api.call("GET", "/v1/run/DEMO/99").status_code == 404
    assert api.post_results(99, [result("x")]).status_code == 404
    assert api.call("GET", "/v1/run/OTHER/1").status_code == 404
    assert len(qase_server.results_requests()) == 4
    assert qase_server.count("POST", "/v1/run/") == 3
    assert qase_server.validation_errors == []
    assert qase_server.internal_errors == []


BAD_BODIES = {
    "wrong type": ({"results": [{"title": 1, "execution": {"status": "passed"}}]}, "title"),
    "missing execution": ({"results": [{"title": "t"}]}, "execution"),
    "both testops ids": (
        {"results": [result("a", testops_id=1, testops_ids=[1, 2])]},
        "testops_ids",
    ),
    # nullable does not add null to an enum (OAS 3.0.3): send no steps_type instead of null
    "null enum": ({"results": [result("a", steps_type=None)]}, "steps_type"),
    "bad step status": (
        {
            "results": [
                result("a", steps=[{"data": {"action": "x"}, "execution": {"status": "ok"}}])
            ]
        },
        "status",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_spec_violations_are_400_and_recorded(qase_server: QaseServer, api: Api, case: str) -> None:
    body, field = BAD_BODIES[case]
    run_id = api.create_run()
    resp = api.call("POST", f"/v2/DEMO/run/{run_id}/results", json=body)
    assert resp.status_code == 400
    fields = resp.json()["errorFields"]
    assert any(field in f["field"] or field in f["error"] for f in fields), fields
    assert qase_server.validation_errors
    assert all(
        e.startswith(f"POST /v2/DEMO/run/{run_id}/results: ") for e in qase_server.validation_errors
    )
    assert qase_server.results() == []


def test_content_type_json_and_strict_json(qase_server: QaseServer, api: Api) -> None:
    run_id = api.create_run()
    path = f"/v2/DEMO/run/{run_id}/results"
    payload = json.dumps({"results": [result("a")]})
    resp = api.call("POST", path, data=payload, headers={"Content-Type": "text/plain"})
    assert resp.status_code == 400
    assert resp.json()["errorFields"][0]["field"] == "Content-Type"
    nan_body = '{"results": [{"title": "t", "execution": {"status": "passed", "duration": NaN}}]}'
    resp = api.call("POST", path, data=nan_body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert api.call("POST", "/v1/run/DEMO", json={"description": "no title"}).status_code == 400
    assert len(qase_server.validation_errors) == 3
    assert qase_server.results() == []


def test_query_and_path_parameters_are_validated(qase_server: QaseServer, api: Api) -> None:
    assert api.call("GET", "/v1/environment/DEMO", params={"limit": 1000}).status_code == 400
    assert api.call("GET", "/v1/run/DEMO/abc").status_code == 400
    assert len(qase_server.validation_errors) == 2


# --------------------------------------------------------------------------- limits


def _limit_case(server: QaseServer, case: str) -> list[dict[str, Any]]:
    if case == "count":
        server.max_results_per_request = 3
        return [result(str(i)) for i in range(4)]
    if case == "bytes":
        server.max_body_bytes = 500
        return [result(str(i), message="x" * 100) for i in range(5)]
    server.max_error_context_chars = 100
    return [
        result(str(i), "failed", execution={"status": "failed", "error_context": "e" * 60})
        for i in range(2)
    ]


@pytest.mark.parametrize("case", ["count", "bytes", "error_context"])
def test_413_rejects_the_whole_batch(qase_server: QaseServer, api: Api, case: str) -> None:
    run_id = api.create_run()
    batch = _limit_case(qase_server, case)
    resp = api.post_results(run_id, batch)
    assert resp.status_code == 413
    assert resp.json()["status"] is False
    assert qase_server.results() == []
    assert api.post_results(run_id, batch[:1]).status_code == 202
    assert len(qase_server.results()) == 1


def test_long_error_context_is_truncated_on_storage(qase_server: QaseServer, api: Api) -> None:
    run_id = api.create_run()
    item = result("a", "failed", execution={"status": "failed", "error_context": "x" * 300_000})
    assert api.post_results(run_id, [item]).status_code == 202
    stored = qase_server.results(run_id)[0]
    assert len(stored["execution"]["error_context"]) == 262_144


def test_rate_limit_429_then_block_then_recovery(qase_server: QaseServer, api: Api) -> None:
    qase_server.configure(rate_limit=3, rate_window=1, retry_after=1, block_seconds=0.6)
    answers = [api.call("GET", "/v1/project/DEMO") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert int(answers[0].headers["X-RateLimit-Reset"]) >= math.floor(time.time())
    limited = api.call("GET", "/v1/project/DEMO")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {"status": False, "errorMessage": "API rate limit exceeded."}
    time.sleep(0.3)
    assert api.call("GET", "/v1/project/DEMO").status_code == 429  # still blocked
    time.sleep(0.75)  # block over and the first three requests left the 1 s window
    assert api.call("GET", "/v1/project/DEMO").status_code == 200
    assert qase_server.received_429 == 2
    assert len(qase_server.times_429) == 2
    assert qase_server.max_requests_in_window(1.0) >= 4


# --------------------------------------------------------------------------- fault injection


def test_inject_503_then_success(qase_server: QaseServer, api: Api) -> None:
    run_id = api.create_run()
    fault = qase_server.inject("POST", r"/results$", status=503, times=2)
    assert api.post_results(run_id, [result("a")]).status_code == 503
    assert api.post_results(run_id, [result("a")]).status_code == 503
    assert qase_server.results() == []
    assert api.post_results(run_id, [result("a")]).status_code == 202
    assert fault.hits == 2 and len(qase_server.results()) == 1
    assert [r.fault is not None for r in qase_server.results_requests()] == [True, True, False]


def test_inject_proxy_html_page_and_headers(qase_server: QaseServer, api: Api) -> None:
    qase_server.inject(
        "GET",
        "/v1/project",
        status=502,
        body="<html><body>Bad Gateway</body></html>",
        headers={"Retry-After": "2"},
    )
    resp = api.call("GET", "/v1/project/DEMO")
    assert resp.status_code == 502
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.headers["Retry-After"] == "2"
    assert api.call("GET", "/v1/project/DEMO").status_code == 200


def test_drop_closes_without_answer_and_stores_nothing(qase_server: QaseServer, api: Api) -> None:
    run_id = api.create_run()
    qase_server.inject("POST", "/results", drop=True)
    with pytest.raises(requests.ConnectionError):
        api.post_results(run_id, [result("a")])
    assert qase_server.results() == []
    assert api.post_results(run_id, [result("a")]).status_code == 202
    assert qase_server.results_requests()[0].dropped


def test_apply_first_drop_stores_but_answer_is_lost(qase_server: QaseServer, api: Api) -> None:
    run_id = api.create_run()
    qase_server.inject("POST", "/results", apply_first=True, drop=True)
    with pytest.raises(requests.ConnectionError):
        api.post_results(run_id, [result("a"), result("b")])
    assert [r["id"] for r in qase_server.results()] == ["a", "b"]
    # the client's retry with the same ids is acknowledged without duplicates
    assert api.post_results(run_id, [result("a"), result("b")]).status_code == 202
    assert qase_server.duplicates_ignored == 2
    assert len(qase_server.results()) == 2


def test_apply_first_with_status_stores_then_answers_502(qase_server: QaseServer, api: Api) -> None:
    run_id = api.create_run()
    qase_server.inject("POST", "/results", status=502, apply_first=True)
    assert api.post_results(run_id, [result("a")]).status_code == 502
    assert len(qase_server.results()) == 1


def test_delay_times_out_client_and_stop_stays_fast() -> None:
    server = QaseServer().start()
    try:
        api = Api(server)
        server.inject("GET", "/v1/project", status=None, delay=30)
        started = time.monotonic()
        with pytest.raises(requests.ReadTimeout):
            api.call("GET", "/v1/project/DEMO", timeout=0.3)
        assert time.monotonic() - started < 2
    finally:
        started = time.monotonic()
        server.stop()
    assert time.monotonic() - started < 2


def test_delay_passthrough_answers_normally(qase_server: QaseServer, api: Api) -> None:
    qase_server.inject("GET", "/v1/project", status=None, delay=0.2)
    started = time.monotonic()
    assert api.call("GET", "/v1/project/DEMO").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_redirect_fault(qase_server: QaseServer, api: Api) -> None:
    qase_server.inject("GET", "/v1/project", redirect_to="https://elsewhere.invalid/v1/project")
    resp = api.call("GET", "/v1/project/DEMO", allow_redirects=False)
    assert resp.status_code == 307
    assert resp.headers["Location"] == "https://elsewhere.invalid/v1/project"


def test_latency_knob(qase_server: QaseServer, api: Api) -> None:
    qase_server.latency = 0.15
    started = time.monotonic()
    assert api.call("GET", "/v1/project/DEMO").status_code == 200
    assert time.monotonic() - started >= 0.15


# --------------------------------------------------------------------------- attachments, envs


def test_attachments_upload_returns_sha1_hashes(qase_server: QaseServer, api: Api) -> None:
    blobs = {"log.txt": b"line\r\n--not-a-boundary\r\n", "shot.png": bytes(range(256)) * 40}
    files = [("file[]", (name, data)) for name, data in blobs.items()]
    resp = api.call("POST", "/v1/attachment/DEMO", files=files)
    assert resp.status_code == 200, resp.text
    assert_spec_response("v1", "/attachment/{code}", "POST", resp)
    got = resp.json()["result"]
    assert [a["hash"] for a in got] == [hashlib.sha1(d).hexdigest() for d in blobs.values()]
    assert [a["size"] for a in got] == [len(d) for d in blobs.values()]
    assert got[1]["mime"] == "image/png" and got[1]["extension"] == "png"
    stored = qase_server.attachments
    assert stored[got[0]["hash"]]["content"] == blobs["log.txt"]

    too_many = [("file[]", (f"f{i}.txt", b"x")) for i in range(21)]
    assert api.call("POST", "/v1/attachment/DEMO", files=too_many).status_code == 400
    qase_server.max_attachment_bytes = 100
    big = [("file[]", ("big.bin", b"x" * 101))]
    assert api.call("POST", "/v1/attachment/DEMO", files=big).status_code == 413
    wrong_name = [("file", ("a.txt", b"x"))]
    assert api.call("POST", "/v1/attachment/DEMO", files=wrong_name).status_code == 400
    assert len(qase_server.validation_errors) == 1


def test_environments_paging(qase_server: QaseServer, api: Api) -> None:
    for slug in ("dev", "staging", "prod"):
        qase_server.add_environment(slug, title=slug.title())
    resp = api.call("GET", "/v1/environment/DEMO", params={"limit": 2, "offset": 1})
    assert resp.status_code == 200
    assert_spec_response("v1", "/environment/{code}", "GET", resp)
    page = resp.json()["result"]
    assert (page["total"], page["filtered"], page["count"]) == (3, 3, 2)
    assert [e["slug"] for e in page["entities"]] == ["staging", "prod"]
    page = api.call("GET", "/v1/environment/DEMO", params={"slug": "prod"}).json()["result"]
    assert [e["id"] for e in page["entities"]] == [3]


def test_plans_configurations_and_public_runs(qase_server: QaseServer, api: Api) -> None:
    plan_id = qase_server.add_plan([5, 7], title="smoke")
    resp = api.call("GET", f"/v1/plan/DEMO/{plan_id}")
    assert resp.status_code == 200
    assert_spec_response("v1", "/plan/{code}/{id}", "GET", resp)
    assert [c["case_id"] for c in resp.json()["result"]["cases"]] == [5, 7]
    assert api.call("GET", "/v1/plan/DEMO/99").status_code == 404

    chrome = qase_server.add_configuration("Browser", "Chrome")
    resp = api.call("POST", "/v1/configuration/DEMO/group", json={"title": "OS"})
    assert resp.status_code == 200
    assert_spec_response("v1", "/configuration/{code}/group", "POST", resp)
    group_id = resp.json()["result"]["id"]
    resp = api.call("POST", "/v1/configuration/DEMO", json={"title": "Linux", "group_id": group_id})
    assert_spec_response("v1", "/configuration/{code}", "POST", resp)
    linux = resp.json()["result"]["id"]
    resp = api.call("GET", "/v1/configuration/DEMO")
    assert_spec_response("v1", "/configuration/{code}", "GET", resp)
    groups = {g["title"]: g["configurations"] for g in resp.json()["result"]["entities"]}
    assert groups == {"Browser": [{"id": chrome, "title": "Chrome"}],
                      "OS": [{"id": linux, "title": "Linux"}]}
    assert api.call("POST", "/v1/configuration/DEMO/group", json={"title": "OS"}).status_code == 422
    assert api.call("POST", "/v1/configuration/DEMO", json={"title": "x"}).status_code == 400

    run_id = api.create_run()
    resp = api.call("PATCH", f"/v1/run/DEMO/{run_id}/public", json={"status": True})
    assert resp.status_code == 200
    assert_spec_response("v1", "/run/{code}/{id}/public", "PATCH", resp)
    assert resp.json()["result"]["url"].startswith(qase_server.url)
    assert qase_server.public_runs == {run_id}
    assert api.call("GET", f"/v1/run/DEMO/{run_id}").json()["result"]["public"] is True
    assert api.call("PATCH", f"/v1/run/DEMO/{run_id}/public", json={}).status_code == 400
    assert len(qase_server.validation_errors) == 2  # the two bodies without a required field


# --------------------------------------------------------------------------- modes and stats


def test_plain_http_mode() -> None:
    with QaseServer(tls=False) as server:
        assert server.url.startswith("http://127.0.0.1:")
        resp = requests.get(
            server.url + "/v1/project/DEMO", headers={"Token": server.token}, timeout=5
        )
        assert resp.status_code == 200


def test_concurrent_clients_all_stored(qase_server: QaseServer, api: Api) -> None:
    run_id = api.create_run()

    def worker(n: int) -> None:
        client = Api(qase_server)
        for batch in range(5):
            batch_items = [result(f"{n}-{batch}-{i}") for i in range(10)]
            assert client.post_results(run_id, batch_items).status_code == 202

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(qase_server.results(run_id)) == 200
    assert qase_server.validation_errors == [] and qase_server.internal_errors == []
    assert qase_server.max_requests_in_window(60) == 21


def test_standalone_process(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", "0", "--state-file", str(state)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["url"].startswith("https://127.0.0.1:")
        url, ca = info["url"], info["ca_path"]
        headers = {"Token": info["token"]}
        resp = requests.post(
            f"{url}/v1/run/DEMO", json={"title": "x"}, headers=headers, verify=ca, timeout=5
        )
        assert resp.status_code == 200
        resp = requests.post(
            f"{url}/_test/config", json={"max_results_per_request": 1}, verify=ca, timeout=5
        )
        assert resp.status_code == 200
        resp = requests.post(
            f"{url}/v2/DEMO/run/1/results",
            headers=headers,
            verify=ca,
            json={"results": [result("a"), result("b")]},
            timeout=5,
        )
        assert resp.status_code == 413
        stats = requests.get(f"{url}/_test/stats", verify=ca, timeout=5).json()
        assert stats["requests"] == 2 and stats["by_status"] == {"200": 1, "413": 1}
        assert json.loads(state.read_text())["requests"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
    final = json.loads(state.read_text())
    assert final["runs"]["1"]["completed"] is False
    assert final["validation_errors"] == []
