"""Run options (plan, environment, configurations, tags, milestone, defects, public link,
status mapping and filter, xfail/xpass statuses, root suite) and qase-pytest's variables:
each checked in what the local Qase server receives."""

from __future__ import annotations

import pytest
from support import (
    assert_clean,
    by_title,
    clean_environment,
    load_report,
    point_at,
    qase_lines,
    run,
)

from pytest_qase import cli
from pytest_qase.settings import Sources, resolve_from


@pytest.fixture(autouse=True)
def _isolated(pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)
    pytester.makeini("[pytest]\n")


def _errors(result: pytest.RunResult) -> list[str]:
    return sorted({line for line in qase_lines(result) if line.startswith("qase: error:")})


PLAN_SUITE = """
import pytest

@pytest.mark.qase_id(1)
def test_in_plan():
    pass

@pytest.mark.qase_id(3)
def test_not_in_plan():
    pass

@pytest.mark.qase_id(9, 2)
def test_one_id_in_plan():
    pass

def test_without_ids():
    pass

@pytest.mark.qase_id(2)
class TestCart:
    @pytest.mark.parametrize("n", [1, 2])
    def test_add(self, n):
        pass
"""


# ----------------------------------------------------------------------------- the run body


def test_run_body_carries_every_run_option(pytester, qase_server, monkeypatch):
    for n in range(103):  # the slug sits on the second page of 100
        qase_server.add_environment(f"env-{n}")
    staging = qase_server.add_environment("staging")["id"]
    chrome = qase_server.add_configuration("Browser", "Chrome")
    qase_server.add_configuration("OS", "Windows")
    plan_id = qase_server.add_plan([1])
    pytester.makeini(f"""
        [pytest]
        qase_environment = staging
        qase_configurations = Browser=Chrome, OS=Linux, Arch=arm64
        qase_create_configurations = true
        qase_run_tags = nightly, smoke, nightly
        qase_milestone_id = 12
        qase_plan_id = {plan_id}
        qase_run_description = every option
    """)
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server)
    assert result.ret == 0
    assert _errors(result) == []
    [stored] = qase_server.runs.values()
    groups = {g["title"]: {c["title"]: c["id"] for c in g["configurations"]}
              for g in qase_server.configuration_groups["DEMO"]}
    assert set(groups) == {"Browser", "OS", "Arch"}  # Arch was created, with its value
    assert stored["body"] == {
        "title": stored["title"], "is_autotest": True, "description": "every option",
        "plan_id": plan_id, "milestone_id": 12, "tags": ["nightly", "smoke"],
        "environment_id": staging,
        "configurations": [chrome, groups["OS"]["Linux"], groups["Arch"]["arm64"]],
    }
    pages = [r.query for r in qase_server.requests if r.path == "/v1/environment/DEMO"]
    assert pages == [{"limit": ["100"], "offset": ["0"]}, {"limit": ["100"], "offset": ["100"]}]
    assert qase_server.count("POST", "/v1/configuration/DEMO/group") == 1  # OS existed
    created = [r.body for r in qase_server.requests if r.path == "/v1/configuration/DEMO"
               and r.method == "POST"]
    assert [c["title"] for c in created] == ["Linux", "arm64"]
    assert_clean(qase_server)


def test_unknown_environment_and_missing_configuration_cost_one_line_each(
        pytester, qase_server, monkeypatch):
    qase_server.add_environment("staging")
    chrome = qase_server.add_configuration("Browser", "Chrome")
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server, QASE_ENVIRONMENT="prod",
             QASE_CONFIGURATIONS="Browser=Chrome,Browser=Edge")
    result = run(pytester, qase_server)
    assert result.ret == 0
    assert _errors(result) == [
        "qase: error: configuration Browser=Edge does not exist in DEMO: create it in Qase or "
        "set qase_create_configurations = true; the run is created without it",
        "qase: error: environment 'prod' is not an environment of DEMO: use the slug shown in "
        "Qase (Environments) or its numeric id in qase_environment; the run is created "
        "without an environment",
    ]
    [stored] = qase_server.runs.values()
    assert "environment_id" not in stored["body"]
    assert stored["body"]["configurations"] == [chrome]  # nothing was created
    assert qase_server.count("POST", "/v1/configuration") == 0
    assert len(qase_server.results()) == 1 and stored["completed"]


def test_numeric_environment_id_is_sent_without_a_lookup(pytester, qase_server, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server, QASE_ENVIRONMENT="42")
    run(pytester, qase_server)
    [stored] = qase_server.runs.values()
    assert stored["body"]["environment_id"] == 42
    assert qase_server.count("GET", "/v1/environment") == 0


def test_cli_run_create_builds_the_same_body(qase_server, monkeypatch, capsys):
    qase_server.add_environment("staging")
    point_at(monkeypatch, qase_server, QASE_TESTOPS_PLAN_ID="4", QASE_RUN_TAGS="ci",
             QASE_ENVIRONMENT="staging", QASE_TESTOPS_RUN_TITLE="shard run")
    code = cli.main(["run", "create", f"--qase-ca-bundle={qase_server.ca_path}"])
    assert code == 0
    [stored] = qase_server.runs.values()
    assert capsys.readouterr().out.strip() == str(stored["id"])
    assert stored["body"] == {"title": "shard run", "is_autotest": True, "plan_id": 4,
                              "tags": ["ci"], "environment_id": 1}
    assert_clean(qase_server)


# ----------------------------------------------------------------------------- test plans


def test_plan_only_runs_the_plan_cases_and_says_how_many_were_deselected(
        pytester, qase_server, monkeypatch):
    plan_id = qase_server.add_plan([1, 2, 77])
    pytester.makepyfile(test_plan=PLAN_SUITE)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, f"--qase-plan-id={plan_id}", "--qase-plan-only")
    assert result.ret == 0
    result.assert_outcomes(passed=4, deselected=2)
    assert sorted(by_title(qase_server)) == [
        'TestCart.test_add{"n": "1"}', 'TestCart.test_add{"n": "2"}', "test_in_plan",
        "test_one_id_in_plan"]
    [stored] = qase_server.runs.values()
    assert stored["body"]["plan_id"] == plan_id
    assert f"qase: test plan {plan_id} (3 cases): 2 tests not in the plan were deselected" \
        in qase_lines(result)
    assert qase_server.count("GET", f"/v1/plan/DEMO/{plan_id}") == 1
    assert_clean(qase_server)


def test_plan_only_under_xdist_deselects_the_same_tests_in_every_worker(
        pytester, qase_server, monkeypatch):
    pytest.importorskip("xdist")
    plan_id = qase_server.add_plan([1, 2])
    pytester.makepyfile(test_plan=PLAN_SUITE)
    point_at(monkeypatch, qase_server, QASE_PLAN_ID=str(plan_id), QASE_PLAN_ONLY="1",
             QASE_ROOT_SUITE="Root", QASE_STATUS_FILTER="skipped")
    result = run(pytester, qase_server, "-n", "2", subprocess=True)
    assert result.ret == 0
    result.assert_outcomes(passed=4)
    results = by_title(qase_server)
    assert sorted(results) == [
        'TestCart.test_add{"n": "1"}', 'TestCart.test_add{"n": "2"}', "test_in_plan",
        "test_one_id_in_plan"]
    assert {r["relations"]["suite"]["data"][0]["title"] for r in results.values()} == {"Root"}
    assert {r["execution"]["thread"] for r in results.values()} == {"gw0", "gw1"}
    assert qase_server.count("GET", "/v1/plan") == 1  # read once, by the controller
    assert f"qase: test plan {plan_id} (2 cases): 2 tests not in the plan were deselected" \
        in qase_lines(result)


def test_unreadable_plan_costs_one_line_and_every_test_runs(pytester, qase_server, monkeypatch):
    pytester.makepyfile(test_plan=PLAN_SUITE)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "--qase-plan-id=99", "--qase-plan-only")
    assert result.ret == 0
    result.assert_outcomes(passed=6)
    [line] = _errors(result)
    assert line.startswith("qase: error: could not read test plan 99: not found (404)")
    assert line.endswith("; every test runs")
    assert len(qase_server.results()) == 6


@pytest.mark.parametrize("body", [[1], {"status": True, "result": [1, 2]},
                                  {"status": True, "result": {"cases": [1, "x", None]}}])
def test_a_plan_answer_of_the_wrong_shape_costs_only_the_plan(pytester, qase_server,
                                                              monkeypatch, body):
    plan_id = qase_server.add_plan([1])
    qase_server.inject(method="GET", path=r"/v1/plan/", status=200, body=body, times=None)
    pytester.makepyfile(test_plan=PLAN_SUITE)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, f"--qase-plan-id={plan_id}", "--qase-plan-only")
    assert result.ret == 0
    result.assert_outcomes(passed=6)
    lines = qase_lines(result)
    [line] = _errors(result)
    assert line.startswith(f"qase: error: could not read test plan {plan_id}: ")
    assert line.endswith("; every test runs")
    assert any(line.endswith("(completed)") for line in lines), lines
    assert len(qase_server.results()) == 6


def test_plan_only_needs_a_plan_id_and_a_connection(pytester):
    pytester.makepyfile(test_plan=PLAN_SUITE)
    result = run(pytester, None, "--qase-plan-only")  # no plan id, no token: local report
    result.assert_outcomes(passed=6)
    assert _errors(result) == [
        "qase: error: plan only from --qase-plan-only: it needs a plan: pass --qase-plan-id ID, "
        "set qase_plan_id or QASE_PLAN_ID; every test runs"]
    result = run(pytester, None, "--qase-plan-only", "--qase-plan-id=3")
    result.assert_outcomes(passed=6)
    assert _errors(result) == [
        "qase: error: test plan 3 cannot be read without a working upload (token and "
        "project); every test runs"]


# ----------------------------------------------------------------------------- statuses


STATUS_SUITE = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("database is down")

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("cleanup failed")

def test_passes():
    pass

def test_fails():
    assert 1 == 2

def test_blocked(broken):
    pass

def test_invalid(bad_teardown):
    pass

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False

@pytest.mark.xfail(reason="fixed already")
def test_xpass():
    pass

@pytest.mark.xfail(strict=True, reason="must fail")
def test_strict_xpass():
    pass

class TestApi:
    def test_inner(self):
        pass
"""


def test_status_options_shape_every_result(pytester, qase_server, monkeypatch):
    pytester.makeini("""
        [pytest]
        qase_xfail_status = blocked
        qase_xpass_status = invalid
        qase_status_mapping = invalid=failed, blocked=skipped
        qase_status_filter = passed
        qase_root_suite = Backend
        qase_defect = true
    """)
    pytester.makepyfile(test_status=STATUS_SUITE)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    results = by_title(qase_server)
    statuses = {title: r["execution"]["status"] for title, r in results.items()}
    assert statuses == {
        "test_fails": "failed",
        "test_blocked": "skipped",  # blocked, mapped to skipped
        "test_invalid": "failed",  # invalid, mapped to failed
        "test_skipped": "skipped",
        "test_xfail": "skipped",  # xfail -> blocked -> skipped
        "test_xpass": "failed",  # xpass -> invalid -> failed
        "test_strict_xpass": "failed",  # a strict xpass is a failure, never an xpass
    }  # test_passes and TestApi.test_inner were passed: filtered out
    defects = sorted(title for title, r in results.items() if r.get("defect") is True)
    assert defects == ["test_fails", "test_invalid", "test_strict_xpass", "test_xpass"]
    assert all("defect" not in r for title, r in results.items() if title not in defects)
    suites = {title: [s["title"] for s in r["relations"]["suite"]["data"]]
              for title, r in results.items()}
    assert set(map(tuple, suites.values())) == {("Backend", "test_status")}
    assert ("qase: 2 results with a status in qase_status_filter (passed) were not reported"
            in qase_lines(result))
    assert qase_lines(result)[-1].startswith("qase: 7 results -> run 1 (DEMO)")
    assert_clean(qase_server)


def test_local_report_has_default_xfail_statuses_root_suite_and_environment(
        pytester, monkeypatch):
    monkeypatch.setenv("QASE_ROOT_SUITE", "Backend")
    monkeypatch.setenv("QASE_ENVIRONMENT", "staging")
    pytester.makepyfile(test_status=STATUS_SUITE)
    run(pytester, None, "--qase-report=out")
    run_data, results = load_report(pytester.path / "out")
    assert run_data["environment"] == "staging"
    assert "Backend.test_status.TestApi" in run_data["suites"]
    statuses = {r["title"]: r["execution"]["status"] for r in results}
    assert (statuses["test_xfail"], statuses["test_xpass"]) == ("skipped", "passed")
    assert statuses["test_strict_xpass"] == "failed"
    inner = next(r for r in results if r["title"] == "TestApi.test_inner")
    assert [s["title"] for s in inner["relations"]["suite"]["data"]] == [
        "Backend", "test_status", "TestApi"]


def test_public_report_link_is_printed(pytester, qase_server, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server, QASE_TESTOPS_SHOW_PUBLIC_REPORT_LINK="true")
    result = run(pytester, qase_server)
    [run_id] = qase_server.runs
    [patch] = [r for r in qase_server.requests if r.method == "PATCH"]
    assert (patch.path, patch.body) == (f"/v1/run/DEMO/{run_id}/public", {"status": True})
    assert qase_server.public_runs == {run_id}
    [line] = [x for x in qase_lines(result) if x.startswith("qase: public report: ")]
    assert line.split(": ", 2)[2].startswith(qase_server.url + "/public/report/")
    assert qase_server.run(run_id)["completed"]
    assert_clean(qase_server)


def test_public_report_failure_is_one_line(pytester, qase_server, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    qase_server.inject("PATCH", path="/public", status=403, times=None)
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "--qase-public-report")
    assert result.ret == 0
    [line] = _errors(result)
    assert line.startswith("qase: error: could not make the run public: the token may not "
                           "make run 1 of DEMO public (403)")
    assert len(qase_server.results()) == 1


# ----------------------------------------------------------------------------- bad values


def test_each_bad_run_option_is_one_line_and_the_run_still_happens(
        pytester, qase_server, monkeypatch):
    pytester.makeini("""
        [pytest]
        qase_status_mapping = invalid=broken
        qase_status_filter = passed,green
        qase_xfail_status = maybe
        qase_configurations = Browser
        qase_run_tags = ,
        qase_milestone_id = next
        qase_plan_id = -1
    """)
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server)
    assert result.ret == 0
    statuses = "passed, failed, blocked, skipped, invalid"
    assert _errors(result) == sorted([
        f"qase: error: status mapping from qase_status_mapping in tox.ini: 'invalid=broken' is "
        f"not status=status: write e.g. invalid=failed,blocked=skipped with statuses from "
        f"{statuses}",
        f"qase: error: status filter from qase_status_filter in tox.ini: must be a "
        f"comma-separated list of {statuses} (not green)",
        f"qase: error: xfail status from qase_xfail_status in tox.ini: must be one of "
        f"{statuses} (using the default skipped)",
        "qase: error: configurations from qase_configurations in tox.ini: 'Browser' is not "
        "group=value: write e.g. Browser=Chrome,OS=Linux",
        "qase: error: run tags from qase_run_tags in tox.ini: must be a comma-separated list "
        "of tags, e.g. smoke,nightly",
        "qase: error: milestone id from qase_milestone_id in tox.ini: must be a whole number "
        "from 1 to 9223372036854775807",
        "qase: error: plan id from qase_plan_id in tox.ini: must be a whole number from 1 to "
        "9223372036854775807",
    ])
    [stored] = qase_server.runs.values()
    assert stored["body"] == {"title": stored["title"], "is_autotest": True}
    assert len(qase_server.results()) == 1


# ----------------------------------------------------------------------------- qase-pytest


def test_qase_pytest_variables_mean_the_same_here(pytester, qase_server, monkeypatch):
    qase_server.add_environment("staging")
    pytester.makepyfile(test_status=STATUS_SUITE)
    for name, value in {
        "QASE_MODE": "testops", "QASE_TESTOPS_API_TOKEN": qase_server.token,
        "QASE_TESTOPS_PROJECT": "DEMO", "QASE_URL": qase_server.url,
        "QASE_TESTOPS_PLAN_ID": "5", "QASE_TESTOPS_RUN_TITLE": "regress",
        "QASE_TESTOPS_RUN_DESCRIPTION": "from qase-pytest", "QASE_TESTOPS_RUN_COMPLETE": "false",
        "QASE_TESTOPS_DEFECT": "true", "QASE_TESTOPS_RUN_TAGS": "a, b",
        "QASE_ENVIRONMENT": "staging", "QASE_ROOT_SUITE": "Root",
        "QASE_TESTOPS_BATCH_SIZE": "3", "QASE_TESTOPS_STATUS_FILTER": "skipped",
        "QASE_STATUS_MAPPING": "blocked=failed", "QASE_PYTEST_XFAIL_STATUS_XPASS": "skipped",
        "QASE_TESTOPS_CONFIGURATIONS_VALUES": "OS=Linux",
        "QASE_TESTOPS_CONFIGURATIONS_CREATE_IF_NOT_EXISTS": "true",
    }.items():
        monkeypatch.setenv(name, value)
    result = pytester.runpytest("-p", "no:cacheprovider", f"--qase-ca-bundle={qase_server.ca_path}")
    assert _errors(result) == []
    [stored] = qase_server.runs.values()
    assert stored["body"] == {"title": "regress", "is_autotest": True,
                              "description": "from qase-pytest", "plan_id": 5,
                              "tags": ["a", "b"], "environment_id": 1, "configurations": [2]}
    assert not stored["completed"]
    results = by_title(qase_server)
    assert set(results) == {"test_passes", "test_fails", "test_blocked", "test_invalid",
                            "test_strict_xpass", "TestApi.test_inner"}  # skips filtered out
    assert results["test_blocked"]["execution"]["status"] == "failed"
    assert results["test_blocked"]["defect"] is True
    assert results["test_passes"]["relations"]["suite"]["data"][0]["title"] == "Root"
    assert max(len(r.body["results"]) for r in qase_server.results_requests()) <= 3


def test_qase_mode_report_writes_the_local_report_even_with_a_token(pytester, qase_server,
                                                                      monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server, QASE_MODE="report")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0
    assert qase_server.requests == []
    _, results = load_report(pytester.path / "qase-report")
    assert [r["title"] for r in results] == ["test_one"]
    monkeypatch.setenv("QASE_MODE", "off")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert qase_lines(result) == []


@pytest.mark.parametrize("host, url", [
    ("qase.io", "https://api.qase.io"),
    ("example.qase.io", "https://api-example.qase.io"),
    ("https://api.example.com/v1", "https://api.example.com"),
])
def test_qase_testops_api_host_becomes_the_api_address(host, url):
    settings = resolve_from(Sources.from_flags({}), {"QASE_TESTOPS_API_HOST": host})
    assert (settings.url, settings.errors) == (url, [])
    settings = resolve_from(Sources.from_flags({}), {"QASE_TESTOPS_API_HOST": "bad host"})
    assert settings.errors == ["url from $QASE_TESTOPS_API_HOST: must be a host name such as "
                               "qase.io or example.qase.io; nothing is uploaded, the local "
                               "report is written instead"]
