"""Settings from the CLI, the environment and every kind of ini file; each error on its own."""

from __future__ import annotations

import pytest
from support import by_title, clean_environment, load_report, point_at, qase_lines, run

from pytest_qase.links import run_link, web_base


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    clean_environment(monkeypatch, tmp_path)


def _errors(result: pytest.RunResult) -> list[str]:
    return sorted({line for line in qase_lines(result) if line.startswith("qase: error:")})


@pytest.mark.parametrize("layout", ["pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml"])
def test_every_ini_flavour_configures_the_upload(pytester, qase_server, layout):
    settings = {"qase": "true", "qase_url": qase_server.url, "qase_project": "DEMO",
                "qase_ca_bundle": qase_server.ca_path, "qase_run_title": "from ini"}
    if layout == "pyproject.toml":
        body = "\n".join(f'{k} = "{v}"' for k, v in settings.items())
        pytester.makepyprojecttoml("[tool.pytest.ini_options]\n" + body)
    else:
        section = {"setup.cfg": "[tool:pytest]"}.get(layout, "[pytest]")
        body = "\n".join(f"{k} = {v}" for k, v in settings.items())
        (pytester.path / layout).write_text(f"{section}\n{body}\n")
    pytester.makepyfile("def test_one():\n    pass\n")
    import os

    os.environ["QASE_API_TOKEN"] = qase_server.token  # monkeypatch restores it
    result = pytester.runpytest("-p", "no:cacheprovider")  # enabled by `qase = true`
    assert result.ret == 0
    [run_id] = qase_server.runs
    assert qase_server.run(run_id)["title"] == "from ini"
    assert list(by_title(qase_server)) == ["test_one"]
    assert _errors(result) == []


@pytest.mark.skipif(int(pytest.__version__.split(".")[0]) < 9,
                    reason="pytest 9 brought the native [tool.pytest] table")
def test_native_toml_values_of_pytest_9(pytester, qase_server, monkeypatch):
    """``[tool.pytest]`` keeps TOML's types: a boolean, numbers and a bad value, each read
    and checked like any other (a number must not stop the session)."""
    pytester.makepyprojecttoml(f"""
        [tool.pytest]
        qase = true
        qase_url = "{qase_server.url}"
        qase_project = "DEMO"
        qase_ca_bundle = "{qase_server.ca_path}"
        qase_batch_size = 2
        qase_rate_limit = 300
        qase_timeout = "soon"
    """)
    pytester.makepyfile(test_five="""
        import pytest
        @pytest.mark.parametrize("n", range(5))
        def test_n(n):
            pass
    """)
    monkeypatch.setenv("QASE_API_TOKEN", qase_server.token)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0
    assert _errors(result) == [
        "qase: error: timeout from qase_timeout in pyproject.toml: must be a number of "
        "seconds from 1 to 600 (using the default 30)"]
    assert len(by_title(qase_server)) == 5
    assert [len(r.body["results"]) for r in qase_server.results_requests()] == [2, 2, 1]


def test_precedence_cli_over_env_over_ini(pytester, qase_server, monkeypatch):
    pytester.makeini(f"""
        [pytest]
        qase_run_title = ini title
        qase_run_description = ini description
        qase_project = NOPE
        qase_url = {qase_server.url}
    """)
    pytester.makepyfile("def test_one():\n    pass\n")
    monkeypatch.setenv("QASE_API_TOKEN", qase_server.token)
    monkeypatch.setenv("QASE_RUN_TITLE", "env title")
    monkeypatch.setenv("QASE_PROJECT", "DEMO")  # env beats the ini's NOPE
    run(pytester, qase_server, "--qase-run-title=cli title")
    [stored] = qase_server.runs.values()
    assert stored["body"]["title"] == "cli title"  # CLI > env
    assert stored["body"]["description"] == "ini description"  # ini > default
    assert stored["project"] == "DEMO"


def test_qase_testops_variables_of_qase_pytest_are_accepted(pytester, qase_server, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    monkeypatch.setenv("QASE_TESTOPS_API_TOKEN", qase_server.token)
    monkeypatch.setenv("QASE_TESTOPS_PROJECT", "DEMO")
    monkeypatch.setenv("QASE_URL", qase_server.url)
    monkeypatch.setenv("QASE_ENABLED", "1")
    result = pytester.runpytest(f"--qase-ca-bundle={qase_server.ca_path}")
    assert result.ret == 0
    assert len(qase_server.results()) == 1


def test_each_bad_value_is_one_line_and_the_others_still_apply(pytester, qase_server,
                                                                 monkeypatch):
    pytester.makeini("""
        [pytest]
        qase_timeout = soon
        qase_batch_size = 5000
        qase_run_title = still used
    """)
    pytester.makepyfile("""
        import pytest
        @pytest.mark.parametrize("n", range(3))
        def test_n(n):
            pass
    """)
    point_at(monkeypatch, qase_server, QASE_MAX_WAIT="forever")
    result = run(pytester, qase_server)
    assert result.ret == 0
    assert _errors(result) == [
        "qase: error: batch size from qase_batch_size in tox.ini: must be a whole number "
        "from 1 to 2000 (using the default 200)",
        "qase: error: max wait from $QASE_MAX_WAIT: must be a number of seconds from 0 to "
        "86400 (using the default 300)",
        "qase: error: timeout from qase_timeout in tox.ini: must be a number of seconds from "
        "1 to 600 (using the default 30)",
    ]
    [stored] = qase_server.runs.values()
    assert stored["title"] == "still used"
    assert len(qase_server.results()) == 3  # nothing lost


def test_http_url_is_refused_and_the_local_report_keeps_the_results(pytester, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    monkeypatch.setenv("QASE_API_TOKEN", "secret-value-1")
    monkeypatch.setenv("QASE_PROJECT", "DEMO")
    result = run(pytester, None, "--qase-url=http://qase.example.test")
    assert result.ret == 0
    assert _errors(result) == [
        "qase: error: url from --qase-url: the Qase API is HTTPS only: use "
        "https://qase.example.test; nothing is uploaded, the local report is written instead"]
    _, results = load_report(pytester.path / "qase-report")
    assert [r["title"] for r in results] == ["test_one"]
    assert "secret-value-1" not in result.stdout.str() + result.stderr.str()


def test_a_value_given_with_dash_o_is_a_command_line_value(pytester):
    # -o NAME=VALUE sets an ini value from the command line: an error line names it as
    # such, a relative path is from the current folder, and a token is accepted as
    # --qase-token is (only a token written in an ini file is refused)
    (pytester.path / "conf").mkdir()
    (pytester.path / "conf" / "tox.ini").write_text("[pytest]\nqase_batch_size = 100\n")
    pytester.makepyfile("def test_one():\n    pass\n")
    result = run(pytester, None, "-c", "conf/tox.ini", f"--rootdir={pytester.path}",
                 "-o", "qase_token=typed-secret", "-o", "qase_timeout=soon",
                 "-o", "qase_report_dir=out/report")
    assert result.ret == 0
    assert _errors(result) == [
        "qase: error: project is not set: pass --qase-project CODE, set qase_project in the "
        "ini file or QASE_PROJECT in the environment; the local report is written instead",
        "qase: error: timeout from -o qase_timeout: must be a number of seconds from 1 to 600 "
        "(using the default 30)"]
    assert "typed-secret" not in result.stdout.str() + result.stderr.str()
    assert (pytester.path / "out" / "report" / "run.json").exists()  # not conf/out/report


def test_token_in_an_ini_file_is_refused(pytester, monkeypatch):
    pytester.makeini("[pytest]\nqase_token = committed-secret\nqase_project = DEMO\n")
    pytester.makepyfile("def test_one():\n    pass\n")
    result = run(pytester, None)
    assert result.ret == 0
    assert _errors(result) == [
        "qase: error: token from qase_token in tox.ini: tokens do not belong in committed "
        "files: remove it and set QASE_API_TOKEN in the environment (or pass --qase-token); "
        "nothing is uploaded, the local report is written instead"]
    assert "committed-secret" not in result.stdout.str() + result.stderr.str()
    assert (pytester.path / "qase-report" / "run.json").exists()


def test_strict_mode_turns_a_bad_setting_into_a_usage_error(pytester):
    pytester.makepyfile("def test_one():\n    pass\n")
    result = run(pytester, None, "--qase-strict", "--qase-url=http://x.test")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*url from --qase-url: the Qase API is HTTPS only*"])


def test_missing_project_is_named(pytester, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    monkeypatch.setenv("QASE_API_TOKEN", "t")
    result = run(pytester, None)
    assert result.ret == 0
    assert any("project is not set: pass --qase-project CODE" in line
               for line in _errors(result))


def test_explicit_ca_bundle_beats_requests_ca_bundle(pytester, qase_server, monkeypatch):
    """REQUESTS_CA_BUNDLE points at the system CAs here, which do not sign the local server."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server)
    assert run(pytester, qase_server).ret == 0
    assert len(qase_server.results()) == 1
    # without the explicit bundle the environment's CAs are used, and verification fails
    result = pytester.runpytest("--qase", "-p", "no:cacheprovider")
    assert result.ret == 0
    assert any("TLS verification" in line and "qase_ca_bundle" in line
               for line in _errors(result)), qase_lines(result)
    assert len(qase_server.results()) == 1


def test_ca_bundle_that_does_not_exist(pytester, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    monkeypatch.setenv("QASE_API_TOKEN", "t")
    monkeypatch.setenv("QASE_PROJECT", "DEMO")
    result = run(pytester, None, "--qase-ca-bundle=/nonexistent/ca.pem")
    assert _errors(result) == [
        "qase: error: ca bundle from --qase-ca-bundle: file not found: /nonexistent/ca.pem; "
        "give the path of a PEM CA bundle; nothing is uploaded, the local report is written "
        "instead"]


def test_report_dir_from_ini_is_relative_to_the_ini_file(pytester):
    pytester.makeini("[pytest]\nqase_report_dir = reports/qase\n")
    sub = pytester.mkdir("sub")
    (sub / "test_one.py").write_text("def test_one():\n    pass\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(sub)
        run(pytester, None, str(sub))
    run_data, _ = load_report(pytester.path / "reports" / "qase")
    assert run_data["stats"]["total"] == 1


@pytest.mark.parametrize("api, web", [
    ("https://api.qase.io", "https://app.qase.io"),
    ("https://api-acme.qase.example", "https://acme.qase.example"),
    ("https://qase.internal:8443", "https://qase.internal:8443"),
])
def test_web_address_is_derived_from_the_api_address(api, web):
    assert web_base(api) == web
    assert run_link(api, "DEMO", 7) == f"{web}/run/DEMO/dashboard/7"


def test_relative_ca_bundle_in_ini_is_relative_to_the_ini_file(pytester, qase_server,
                                                               monkeypatch):
    import shutil

    shutil.copy(qase_server.ca_path, pytester.path / "ca.pem")
    pytester.makeini("[pytest]\nqase_ca_bundle = ca.pem\n")
    sub = pytester.mkdir("sub")
    (sub / "test_one.py").write_text("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server)
    monkeypatch.chdir(sub)
    result = pytester.runpytest("--qase", "-p", "no:cacheprovider", str(sub))
    assert result.ret == 0 and _errors(result) == []
    assert len(qase_server.results()) == 1


def test_ini_token_beside_an_environment_token_is_flagged_but_env_is_used(
        pytester, qase_server, monkeypatch):
    pytester.makeini("[pytest]\nqase_token = committed-secret\n")
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server)
    assert _errors(result) == [
        "qase: error: token from qase_token in tox.ini: tokens do not belong in committed "
        "files: remove it and set QASE_API_TOKEN in the environment (or pass --qase-token); "
        "it is ignored and the token from $QASE_API_TOKEN is used"]
    assert len(qase_server.results()) == 1


def test_bad_project_is_one_line(pytester, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    monkeypatch.setenv("QASE_API_TOKEN", "t")
    result = run(pytester, None, "--qase-project=no spaces")
    assert _errors(result) == [
        "qase: error: project from --qase-project: must be a project code such as DEMO "
        "(letters and digits); nothing is uploaded, the local report is written instead"]


def test_ca_variable_naming_a_missing_file_breaks_nothing(pytester, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    monkeypatch.setenv("QASE_API_TOKEN", "t")
    monkeypatch.setenv("QASE_PROJECT", "DEMO")
    pytester.makepyfile("def test_one():\n    pass\n")
    # nothing listens on port 9: the start fails fast, the report keeps the result
    result = run(pytester, None, "--qase-url=https://127.0.0.1:9", "-o", "qase_timeout=2")
    assert result.ret == 0
    assert any("could not reach https://127.0.0.1:9" in e for e in _errors(result)), \
        qase_lines(result)
    _, results = load_report(pytester.path / "qase-report")
    assert len(results) == 1


@pytest.mark.parametrize("variable, value, fix", [
    ("QASE_ENABLED", "maybe", "must be true or false (1/0, yes/no, on/off)"),
    ("QASE_MODE", "upload", "must be testops, report or off"),
])
def test_an_unreadable_switch_says_the_plugin_stays_off(pytester, monkeypatch, variable, value,
                                                        fix):
    """The plugin is off, as the value does not say on; but silence would hide the typo."""
    pytester.makepyfile("def test_one():\n    pass\n")
    monkeypatch.setenv(variable, value)
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    assert result.ret == 0
    assert _errors(result) == [
        f"qase: error: enabled from ${variable}: {fix}; the plugin stays off"]
    assert not (pytester.path / "qase-report").exists()


def test_a_token_with_a_character_no_token_has_is_refused_unseen(pytester, qase_server,
                                                                 monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    point_at(monkeypatch, qase_server, QASE_API_TOKEN="tok€en-secret")
    result = run(pytester, qase_server, "--qase-report=report")
    assert result.ret == 0
    assert _errors(result) == [
        "qase: error: token from $QASE_API_TOKEN: must be the API token from Qase: it holds a "
        "character that no token has (copy it again from Qase); nothing is uploaded, the "
        "local report is written instead"]
    output = result.stdout.str() + result.stderr.str()
    assert "€" not in output and "secret" not in output
    assert qase_server.requests == []
    assert len(load_report(pytester.path / "report")[1]) == 1


def test_a_report_dir_that_is_a_file_costs_only_the_report(pytester, qase_server, monkeypatch):
    pytester.makepyfile("def test_one():\n    pass\n")
    (pytester.path / "afile").write_text("keep me")
    point_at(monkeypatch, qase_server)
    result = run(pytester, qase_server, "--qase-report=afile")
    assert result.ret == 0
    assert _errors(result) == [
        f"qase: error: report dir from --qase-report: {pytester.path / 'afile'} is a file: "
        "name a folder (made if missing)"]
    assert any(line.endswith("(completed)") for line in qase_lines(result))
    assert len(by_title(qase_server)) == 1
    assert (pytester.path / "afile").read_text() == "keep me"
