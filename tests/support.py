"""Helpers for running the plugin in a real pytest session (pytester) against QaseServer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml
from jsonschema import Draft202012Validator
from qase_server import QaseServer
from referencing import Registry, Resource

REPORT_SCHEMAS = Path(__file__).parent / "data" / "qase-api" / "report"

# Variables of the developer's or CI's shell that must not leak into a pytester session.
QASE_VARIABLES = [
    "QASE_ENABLED", "QASE_API_TOKEN", "QASE_TESTOPS_API_TOKEN", "QASE_PROJECT",
    "QASE_TESTOPS_PROJECT", "QASE_URL", "QASE_RUN_ID", "QASE_TESTOPS_RUN_ID", "QASE_RUN_TITLE",
    "QASE_RUN_DESCRIPTION", "QASE_COMPLETE_RUN", "QASE_REPORT_DIR", "QASE_TIMEOUT",
    "QASE_BATCH_SIZE", "QASE_MAX_REQUEST_BYTES", "QASE_RATE_LIMIT", "QASE_MAX_WAIT",
    "QASE_STRICT", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS",
    # run options and the qase-pytest names they accept
    "QASE_PLAN_ID", "QASE_TESTOPS_PLAN_ID", "QASE_PLAN_ONLY", "QASE_ENVIRONMENT",
    "QASE_CONFIGURATIONS", "QASE_TESTOPS_CONFIGURATIONS_VALUES", "QASE_CREATE_CONFIGURATIONS",
    "QASE_TESTOPS_CONFIGURATIONS_CREATE_IF_NOT_EXISTS", "QASE_RUN_TAGS", "QASE_TESTOPS_RUN_TAGS",
    "QASE_MILESTONE_ID", "QASE_DEFECT", "QASE_TESTOPS_DEFECT", "QASE_PUBLIC_REPORT",
    "QASE_TESTOPS_SHOW_PUBLIC_REPORT_LINK", "QASE_STATUS_MAPPING", "QASE_STATUS_FILTER",
    "QASE_TESTOPS_STATUS_FILTER", "QASE_XFAIL_STATUS", "QASE_PYTEST_XFAIL_STATUS_XFAIL",
    "QASE_XPASS_STATUS", "QASE_PYTEST_XFAIL_STATUS_XPASS", "QASE_ROOT_SUITE", "QASE_MODE",
    "QASE_TESTOPS_API_HOST", "QASE_TESTOPS_RUN_TITLE", "QASE_TESTOPS_RUN_DESCRIPTION",
    "QASE_TESTOPS_RUN_COMPLETE", "QASE_TESTOPS_BATCH_SIZE",
    "QASE_STRICT", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS", "QASE_CAPTURE_LOGS",
    "QASE_EXCLUDE_PARAMS", "QASE_PYTEST_CAPTURE_LOGS",
]


def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in QASE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # the rate-guard state lives in the per-user temp dir: give every test its own
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    # a failure under test must end in seconds, not the five minutes a user gets
    monkeypatch.setenv("QASE_MAX_WAIT", "20")


def point_at(monkeypatch: pytest.MonkeyPatch, server: QaseServer, **extra: str) -> None:
    """Environment for the plugin to upload to ``server`` (token, URL, project)."""
    for name, value in {**server.env(), **extra}.items():
        monkeypatch.setenv(name, value)


def run(pytester: pytest.Pytester, server: Optional[QaseServer], *args: str,
        subprocess: bool = False) -> pytest.RunResult:
    """Run pytest with ``--qase`` and the server's CA passed explicitly."""
    argv = ["--qase", "-p", "no:cacheprovider", "-p", "no:randomly"]
    if server is not None:
        # the "=" form: a bare path argument would take part in pytest's rootdir choice
        argv += [f"--qase-ca-bundle={server.ca_path}"]
    argv += list(args)
    if subprocess:
        return pytester.runpytest_subprocess(*argv, timeout=240)
    return pytester.runpytest(*argv)


def by_title(server: QaseServer, run_id: Optional[int] = None) -> dict[str, dict[str, Any]]:
    """Stored results keyed by title (each title must be unique in the test's suite)."""
    found: dict[str, dict[str, Any]] = {}
    for result in server.results(run_id):
        key = result["title"]
        if result.get("params"):
            key += json.dumps(result["params"], sort_keys=True)
        assert key not in found, f"{key} delivered twice"
        found[key] = result
    return found


def qase_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines + result.errlines if line.startswith("qase:")]


@lru_cache(maxsize=None)
def _report_registry() -> Registry:
    resources = []
    for path in REPORT_SCHEMAS.rglob("*.yaml"):
        schema = yaml.safe_load(path.read_text(encoding="utf-8"))
        resources.append((path.resolve().as_uri(), Resource.opaque(schema)))
    return Registry().with_resources(resources)


def _report_validator(name: str) -> Draft202012Validator:
    path = (REPORT_SCHEMAS / name).resolve()
    schema = dict(yaml.safe_load(path.read_text(encoding="utf-8")))
    schema["$id"] = path.as_uri()
    return Draft202012Validator(schema, registry=_report_registry())


def _nullable_ok(errors: list[Any]) -> list[str]:
    """The report schemas are OpenAPI-style (``nullable``): null is fine where it is declared."""
    messages = []
    for error in errors:
        if error.instance is None and error.schema.get("nullable"):
            continue
        messages.append(f"{list(error.absolute_path)}: {error.message}")
    return messages


def load_report(directory: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read a local report, asserting every file is valid against the Qase Report schemas."""
    run_file = directory / "run.json"
    assert run_file.is_file(), f"no run.json in {directory}"
    run_data = json.loads(run_file.read_text(encoding="utf-8"))
    problems = _nullable_ok(list(_report_validator("root.yaml").iter_errors(run_data)))
    results = []
    result_validator = _report_validator("result.yaml")
    for path in sorted((directory / "results").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert path.stem == data["id"]
        problems += [f"{path.name} {p}" for p in
                     _nullable_ok(list(result_validator.iter_errors(data)))]
        results.append(data)
    assert problems == []
    return run_data, results


def assert_clean(server: QaseServer) -> None:
    """Every request the server got was valid, and the server itself had no bug."""
    assert server.validation_errors == []
    assert server.internal_errors == []
    assert server.duplicates_ignored == 0


def environ_without_ca() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}


def start(pytester: pytest.Pytester, server: Optional[QaseServer], *args: str,
          log: str = "pytest.log", new_session: bool = False) -> subprocess.Popen:
    """Start ``pytest --qase`` as a separate process (concurrent sessions, signals).

    Its output goes to ``log`` in the pytester folder; ``new_session`` puts it in a process
    group of its own, so that ``os.killpg`` reaches it and its xdist workers like a Ctrl-C.
    """
    argv = [sys.executable, "-m", "pytest", "--qase", "-p", "no:cacheprovider",
            "-p", "no:randomly"]
    if server is not None:
        argv += [f"--qase-ca-bundle={server.ca_path}"]
    argv += list(args)
    with open(pytester.path / log, "wb") as output:
        return subprocess.Popen(argv, cwd=pytester.path, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=new_session)


def finished(process: subprocess.Popen, pytester: pytest.Pytester,
             log: str = "pytest.log", timeout: float = 120) -> tuple[int, list[str]]:
    """Wait for a process from ``start``; its exit code and its output lines."""
    try:
        code = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    return code, (pytester.path / log).read_text(encoding="utf-8", errors="replace").splitlines()
