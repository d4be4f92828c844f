"""Every setting of the plugin: where it comes from, how it is checked, what it defaults to.

One table (``OPTIONS``) drives the command line, the ini file and the environment, so the
three can never drift apart. Precedence is CLI > environment > ini > default. Each value is
checked on its own: a bad one yields one line that names the setting, where it came from
and the fix, falls back to its default, and leaves every other setting alone.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

DEFAULT_URL = "https://api.qase.io"
MAX_BATCH_SIZE = 2000


class SettingError(ValueError):
    """A value that cannot be used; its text says what to write instead."""


class Secret:
    """Holds the API token so that no repr, log line or traceback can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickled into xdist workerinput or a spool
        raise TypeError("the Qase token is not serializable")


# ----------------------------------------------------------------------------- parsers

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingError("must be true or false (1/0, yes/no, on/off)")


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise SettingError(f"must be a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise SettingError(f"must be a whole number from {low} to {high}")
        return value

    return parse


def _seconds_in(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise SettingError(f"must be a number of seconds from {low:g} to {high:g}") from None
        if not low <= value <= high:
            raise SettingError(f"must be a number of seconds from {low:g} to {high:g}")
        return value

    return parse


def parse_url(text: str) -> str:
    url = text.strip().rstrip("/")
    if url.lower().startswith("http://"):
        raise SettingError(
            "the Qase API is HTTPS only: use https://" + url[len("http://") :]
        )
    if not re.match(r"^https://[^/\s:]+(:\d+)?(/[^\s]*)?$", url, re.IGNORECASE):
        raise SettingError("must be an https:// address such as https://api.qase.io")
    return re.sub(r"/v[12]$", "", url)


def parse_project(text: str) -> str:
    code = text.strip()
    if not re.match(r"^[A-Za-z0-9_]{1,64}$", code):
        raise SettingError("must be a project code such as DEMO (letters and digits)")
    return code


def parse_text(text: str) -> str:
    return text


def parse_path(text: str) -> str:
    """A directory; made absolute by ``Sources`` before it gets here."""
    if not text.strip():
        raise SettingError("must be a directory path")
    if os.path.exists(text.strip()) and not os.path.isdir(text.strip()):
        raise SettingError(f"{text.strip()} is a file: name a folder (made if missing)")
    return text.strip()


def parse_names(text: str) -> tuple[str, ...]:
    """Comma-separated names (parameters to leave out), e.g. ``seed, run_at``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def parse_existing_path(text: str) -> str:
    path = text.strip()
    if not os.path.exists(path):
        raise SettingError(f"file not found: {path}; give the path of a PEM CA bundle")
    return path


def parse_token(text: str) -> Secret:
    token = text.strip()
    if not token or any(c.isspace() for c in token):
        raise SettingError("must be the API token from Qase, without spaces")
    if not all(" " < c < "\x7f" for c in token):  # it goes in an HTTP header; never echoed
        raise SettingError("must be the API token from Qase: it holds a character that no "
                           "token has (copy it again from Qase)")
    return Secret(token)


def parse_api_host(text: str) -> str:
    """qase-pytest's ``QASE_TESTOPS_API_HOST``: a web host (``qase.io``, ``example.qase.io``)."""
    host = text.strip().rstrip("/")
    if "://" in host:
        return parse_url(host)
    if not re.match(r"^[A-Za-z0-9.-]+(:\d+)?$", host):
        raise SettingError("must be a host name such as qase.io or example.qase.io")
    return parse_url("https://api.qase.io" if host == "qase.io" else f"https://api-{host}")


def parse_mode(text: str) -> bool:
    """qase-pytest's ``QASE_MODE``: testops or report turn the plugin on, off turns it off."""
    value = text.strip().lower()
    if value in ("testops", "report"):
        return True
    if value == "off":
        return False
    raise SettingError("must be testops, report or off")


STATUSES = ("passed", "failed", "blocked", "skipped", "invalid")


def parse_status(text: str) -> str:
    value = text.strip().lower()
    if value not in STATUSES:
        raise SettingError(f"must be one of {', '.join(STATUSES)}")
    return value


def parse_status_mapping(text: str) -> dict[str, str]:
    """``invalid=failed,blocked=skipped``: each status on the left is sent as the right one."""
    mapping: dict[str, str] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        source, sep, target = (x.strip().lower() for x in pair.partition("="))
        if not sep or source not in STATUSES or target not in STATUSES:
            raise SettingError(
                f"{pair!r} is not status=status: write e.g. invalid=failed,blocked=skipped "
                f"with statuses from {', '.join(STATUSES)}")
        mapping[source] = target
    if not mapping:
        raise SettingError("write e.g. invalid=failed,blocked=skipped")
    return mapping


def parse_status_list(text: str) -> frozenset[str]:
    """``passed,skipped``: a set of statuses."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in STATUSES]
    if bad or not names:
        raise SettingError(f"must be a comma-separated list of {', '.join(STATUSES)}"
                           + (f" (not {', '.join(bad)})" if bad else ""))
    return frozenset(names)


def parse_tags(text: str) -> tuple[str, ...]:
    """``a,b``: tags in order, without blanks or repeats."""
    tags: list[str] = []
    for tag in (t.strip() for t in text.split(",")):
        if tag and tag not in tags:
            tags.append(tag)
    if not tags:
        raise SettingError("must be a comma-separated list of tags, e.g. smoke,nightly")
    return tuple(tags)


def parse_configurations(text: str) -> tuple[tuple[str, str], ...]:
    """``Browser=Chrome,OS=Linux``: (group, value) pairs in order."""
    pairs: list[tuple[str, str]] = []
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        group, sep, value = (x.strip() for x in pair.partition("="))
        if not sep or not group or not value:
            raise SettingError(f"{pair!r} is not group=value: write e.g. Browser=Chrome,OS=Linux")
        pairs.append((group, value))
    if not pairs:
        raise SettingError("write e.g. Browser=Chrome,OS=Linux")
    return tuple(pairs)


def parse_environment(text: str) -> str:
    """An environment's slug, or its numeric id."""
    value = text.strip()
    if not value or any(c.isspace() for c in value) or len(value) > 255:
        raise SettingError("must be an environment slug such as staging, or its numeric id")
    return value


def parse_suite(text: str) -> str:
    value = text.strip()
    if not value:
        raise SettingError("must be a suite title such as Backend")
    return value


INI_TOKEN_FIX = (
    "tokens do not belong in committed files: remove it and set QASE_API_TOKEN "
    "in the environment (or pass --qase-token)"
)


def parse_ini_token(text: str) -> Secret:
    raise SettingError(INI_TOKEN_FIX)


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Option:
    """One setting: its sources, its parser and its default."""

    name: str
    help: str
    parse: Callable[[str], Any]
    default: Any = None
    cli: Optional[str] = None
    cli_off: Optional[str] = None  # the negative switch of a yes/no option
    ini: Optional[str] = None
    env: tuple[str, ...] = ()
    ini_parse: Optional[Callable[[str], Any]] = None
    metavar: Optional[str] = None
    needed_to_upload: bool = False  # a bad value stops the upload (never guess a host or CA)
    env_parse: tuple[tuple[str, Callable[[str], Any]], ...] = ()  # variables read differently


OPTIONS: tuple[Option, ...] = (
    Option("enabled", "report results to Qase", parse_bool, False,
           cli="--qase", ini="qase", env=("QASE_ENABLED", "QASE_MODE"),
           env_parse=(("QASE_MODE", parse_mode),)),
    Option("token", "Qase API token (prefer the QASE_API_TOKEN environment variable)",
           parse_token, None, cli="--qase-token", ini="qase_token",
           env=("QASE_API_TOKEN", "QASE_TESTOPS_API_TOKEN"), ini_parse=parse_ini_token,
           metavar="TOKEN", needed_to_upload=True),
    Option("project", "Qase project code", parse_project, None, cli="--qase-project",
           ini="qase_project", env=("QASE_PROJECT", "QASE_TESTOPS_PROJECT"), metavar="CODE",
           needed_to_upload=True),
    Option("url", "Qase API address (https only)", parse_url, DEFAULT_URL, cli="--qase-url",
           ini="qase_url", env=("QASE_URL", "QASE_TESTOPS_API_HOST"), metavar="URL",
           needed_to_upload=True, env_parse=(("QASE_TESTOPS_API_HOST", parse_api_host),)),
    Option("run_id", "report into this existing run instead of creating one",
           _int_in(1, 2**63 - 1), None, cli="--qase-run-id",
           env=("QASE_RUN_ID", "QASE_TESTOPS_RUN_ID"), metavar="ID"),
    Option("run_title", "title of the run the plugin creates", parse_text, None,
           cli="--qase-run-title", ini="qase_run_title",
           env=("QASE_RUN_TITLE", "QASE_TESTOPS_RUN_TITLE"),
           metavar="TITLE"),
    Option("run_description", "description of the run the plugin creates", parse_text, None,
           cli="--qase-run-description", ini="qase_run_description",
           env=("QASE_RUN_DESCRIPTION", "QASE_TESTOPS_RUN_DESCRIPTION"), metavar="TEXT"),
    Option("complete_run", "complete the run at the end (default: when the plugin created it)",
           parse_bool, None, cli="--qase-complete-run", cli_off="--qase-no-complete-run",
           ini="qase_complete_run", env=("QASE_COMPLETE_RUN", "QASE_TESTOPS_RUN_COMPLETE")),
    Option("report_dir", "write the local Qase Report into DIR", parse_path, None,
           cli="--qase-report", ini="qase_report_dir", env=("QASE_REPORT_DIR",),
           metavar="DIR"),
    Option("ca_bundle", "CA bundle (PEM) to verify the Qase server with",
           parse_existing_path, None, cli="--qase-ca-bundle", ini="qase_ca_bundle",
           metavar="PATH", needed_to_upload=True),
    Option("timeout", "timeout of one request, in seconds", _seconds_in(1, 600), 30.0,
           ini="qase_timeout", env=("QASE_TIMEOUT",)),
    Option("batch_size", "results in one bulk request", _int_in(1, MAX_BATCH_SIZE), 200,
           ini="qase_batch_size", env=("QASE_BATCH_SIZE", "QASE_TESTOPS_BATCH_SIZE")),
    Option("max_request_bytes", "bytes of JSON in one bulk request",
           _int_in(16 * 1024, 64 * 1024 * 1024), 4 * 1024 * 1024,
           ini="qase_max_request_bytes", env=("QASE_MAX_REQUEST_BYTES",)),
    Option("rate_limit", "API requests a minute shared by every process using the token",
           _int_in(1, 100_000), 600, ini="qase_rate_limit", env=("QASE_RATE_LIMIT",)),
    Option("max_wait", "longest the plugin waits for the API in total at the end, in seconds",
           _seconds_in(0, 86_400), 300.0, ini="qase_max_wait", env=("QASE_MAX_WAIT",)),
    Option("capture_logs", "attach the captured stdout, stderr and log records of failed tests",
           parse_bool, False, cli="--qase-capture-logs", ini="qase_capture_logs",
           env=("QASE_CAPTURE_LOGS", "QASE_PYTEST_CAPTURE_LOGS")),
    Option("exclude_params", "parameters left out of results (comma-separated names)",
           parse_names, (), cli="--qase-exclude-params", ini="qase_exclude_params",
           env=("QASE_EXCLUDE_PARAMS",), metavar="NAMES"),
    Option("strict", "make undelivered results or bad settings fail the pytest session",
           parse_bool, False, cli="--qase-strict", ini="qase_strict", env=("QASE_STRICT",)),
    # -- run options (docs/configuration.md#run-options) --
    Option("plan_id", "put the run on this test plan", _int_in(1, 2**63 - 1), None,
           cli="--qase-plan-id", ini="qase_plan_id",
           env=("QASE_PLAN_ID", "QASE_TESTOPS_PLAN_ID"), metavar="ID"),
    Option("plan_only", "run only the tests whose case ids are in the plan",
           parse_bool, False, cli="--qase-plan-only", ini="qase_plan_only",
           env=("QASE_PLAN_ONLY",)),
    Option("environment", "environment of the run: its slug or numeric id", parse_environment,
           None, cli="--qase-environment", ini="qase_environment", env=("QASE_ENVIRONMENT",),
           metavar="SLUG"),
    Option("configurations", "configurations of the run, e.g. Browser=Chrome,OS=Linux",
           parse_configurations, None, cli="--qase-configurations", ini="qase_configurations",
           env=("QASE_CONFIGURATIONS", "QASE_TESTOPS_CONFIGURATIONS_VALUES"),
           metavar="GROUP=VALUE,..."),
    Option("create_configurations", "create configurations that do not exist yet",
           parse_bool, False, ini="qase_create_configurations",
           env=("QASE_CREATE_CONFIGURATIONS", "QASE_TESTOPS_CONFIGURATIONS_CREATE_IF_NOT_EXISTS")),
    Option("run_tags", "tags of the run the plugin creates, e.g. smoke,nightly", parse_tags,
           None, cli="--qase-run-tags", ini="qase_run_tags",
           env=("QASE_RUN_TAGS", "QASE_TESTOPS_RUN_TAGS"), metavar="TAG,..."),
    Option("milestone_id", "milestone of the run the plugin creates", _int_in(1, 2**63 - 1),
           None, cli="--qase-milestone-id", ini="qase_milestone_id", env=("QASE_MILESTONE_ID",),
           metavar="ID"),
    Option("defect", "create a Qase defect for each failed result", parse_bool, False,
           cli="--qase-defect", ini="qase_defect", env=("QASE_DEFECT", "QASE_TESTOPS_DEFECT")),
    Option("public_report", "make the run's report public and print its link at the end",
           parse_bool, False, cli="--qase-public-report", ini="qase_public_report",
           env=("QASE_PUBLIC_REPORT", "QASE_TESTOPS_SHOW_PUBLIC_REPORT_LINK")),
    Option("status_mapping", "send statuses as others, e.g. invalid=failed,blocked=skipped",
           parse_status_mapping, None, ini="qase_status_mapping", env=("QASE_STATUS_MAPPING",)),
    Option("status_filter", "do not report results with these statuses, e.g. passed,skipped",
           parse_status_list, None, ini="qase_status_filter",
           env=("QASE_STATUS_FILTER", "QASE_TESTOPS_STATUS_FILTER")),
    Option("xfail_status", "status of an xfail test that failed as expected", parse_status,
           "skipped", ini="qase_xfail_status",
           env=("QASE_XFAIL_STATUS", "QASE_PYTEST_XFAIL_STATUS_XFAIL")),
    Option("xpass_status", "status of an xfail test that passed (not strict)", parse_status,
           "passed", ini="qase_xpass_status",
           env=("QASE_XPASS_STATUS", "QASE_PYTEST_XFAIL_STATUS_XPASS")),
    Option("root_suite", "suite put in front of every result's suite path", parse_suite, None,
           cli="--qase-root-suite", ini="qase_root_suite", env=("QASE_ROOT_SUITE",),
           metavar="TITLE"),
)


def _dest(option: Option) -> str:
    return "qase_opt_" + option.name


def dest(name: str) -> str:
    """The argparse destination of the option called ``name``."""
    return "qase_opt_" + name


def add_options(parser: pytest.Parser) -> None:
    """Register every option's command-line switch and ini key."""
    group = parser.getgroup("qase", "reporting to Qase TestOps")
    for option in OPTIONS:
        if option.cli:
            if option.parse is parse_bool:
                group.addoption(option.cli, action="store_const", const="true",
                                dest=_dest(option), default=None, help=option.help)
                if option.cli_off:
                    group.addoption(option.cli_off, action="store_const", const="false",
                                    dest=_dest(option), default=None,
                                    help="do not " + option.help)
            else:
                group.addoption(option.cli, action="store", dest=_dest(option), default=None,
                                metavar=option.metavar, help=option.help)
        if option.ini:
            ini_help = option.help
            if option.ini_parse is parse_ini_token:
                ini_help = "refused: set QASE_API_TOKEN in the environment instead"
            parser.addini(option.ini, ini_help, type="string", default="")


# ----------------------------------------------------------------------------- resolution


@dataclass
class Settings:
    """The resolved settings of one pytest session."""

    enabled: bool = False
    token: Optional[Secret] = None
    project: Optional[str] = None
    url: str = DEFAULT_URL
    run_id: Optional[int] = None
    run_title: Optional[str] = None
    run_description: Optional[str] = None
    complete_run: Optional[bool] = None
    report_dir: Optional[str] = None
    ca_bundle: Optional[str] = None
    timeout: float = 30.0
    batch_size: int = 200
    max_request_bytes: int = 4 * 1024 * 1024
    rate_limit: int = 600
    max_wait: float = 300.0
    strict: bool = False
    plan_id: Optional[int] = None
    plan_only: bool = False
    environment: Optional[str] = None
    configurations: Optional[tuple[tuple[str, str], ...]] = None
    create_configurations: bool = False
    run_tags: Optional[tuple[str, ...]] = None
    milestone_id: Optional[int] = None
    defect: bool = False
    public_report: bool = False
    status_mapping: Optional[dict[str, str]] = None
    status_filter: Optional[frozenset[str]] = None
    xfail_status: str = "skipped"
    xpass_status: str = "passed"
    root_suite: Optional[str] = None
    capture_logs: bool = False
    exclude_params: tuple[str, ...] = ()
    errors: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    upload_refused: bool = False  # a setting the upload needs was given but is unusable
    report_only: bool = False  # qase-pytest's QASE_MODE=report: any token is left unused

    @property
    def can_upload(self) -> bool:
        return (self.enabled and not self.upload_refused and self.token is not None
                and self.project is not None)

    def verify(self) -> Any:
        """What ``requests`` is told to trust: an explicit bundle beats the environment."""
        if self.ca_bundle:
            return self.ca_bundle
        for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
            value = os.environ.get(name)
            if value and os.path.exists(value):
                return value
        # an explicit path, so a variable naming a missing file cannot break requests
        from requests.certs import where

        return where()


def _ini_value(config: pytest.Config, name: str) -> Any:
    """An ini value as it is written, also a native TOML number or boolean.

    pytest 9's ``[tool.pytest]`` table keeps TOML types, and ``getini`` refuses a number
    for an option registered as a string (which pytest 7 and 8 need), stopping the whole
    session: such a value is taken as written instead, and validated like any other.
    """
    try:
        return config.getini(name)
    except pytest.UsageError:
        raw = getattr(config, "_inicfg", {}).get(name)
        return getattr(raw, "value", raw)


class Sources:
    """Where raw values come from: a pytest config (CLI + ini) or a plain mapping of flags."""

    def __init__(self, cli: Callable[[str], Any], ini: Callable[[str], Any],
                 ini_label: str, ini_dir: Path, overridden: frozenset[str] = frozenset(),
                 ) -> None:
        self.cli = cli
        self.ini = ini
        self.ini_label = ini_label
        self.ini_dir = ini_dir
        self.overridden = overridden  # ini names given with -o NAME=VALUE

    @classmethod
    def from_config(cls, config: pytest.Config) -> Sources:
        inipath = getattr(config, "inipath", None)
        overrides = config.getoption("override_ini", default=None) or []
        return cls(lambda dest: config.getoption(dest, default=None),
                   functools.partial(_ini_value, config),
                   inipath.name if inipath else "the ini file",
                   inipath.parent if inipath else config.rootpath,
                   frozenset(entry.split("=", 1)[0].strip() for entry in overrides))

    def ini_origin(self, name: str) -> str:
        """Where an ini value came from, as an error line names it."""
        return f"-o {name}" if name in self.overridden else f"{name} in {self.ini_label}"

    @classmethod
    def from_flags(cls, flags: dict[str, Any]) -> Sources:
        return cls(flags.get, lambda name: "", "no ini file", Path.cwd())

    def values(self, option: Option, environ: dict[str, str]):
        """Yield (raw value, where it came from, parser), highest precedence first.

        A relative path is relative to the ini file's folder when it comes from the ini
        file, and to the current directory otherwise, as with pytest's own path options.
        """
        is_path = option.parse in (parse_path, parse_existing_path)
        if option.cli:
            value = self.cli(_dest(option))
            if value is not None:
                yield _absolute(value, Path.cwd()) if is_path else value, option.cli, option.parse
        for name in option.env:
            if environ.get(name, "") != "":
                value = environ[name]
                parse = dict(option.env_parse).get(name, option.parse)
                yield _absolute(value, Path.cwd()) if is_path else value, f"${name}", parse
                break
        if option.ini:
            value = self.ini(option.ini)
            if isinstance(value, bool):
                value = "true" if value else "false"
            if value not in ("", None, []):
                typed = option.ini in self.overridden  # -o NAME=VALUE: on the command line
                base = Path.cwd() if typed else self.ini_dir
                value = _absolute(str(value), base) if is_path else str(value)
                yield value, self.ini_origin(option.ini), (
                    option.parse if typed else option.ini_parse or option.parse)


def _absolute(value: str, base: Path) -> str:
    value = value.strip()
    return str((base / os.path.expanduser(value)).resolve()) if value else value


def resolve(config: pytest.Config, environ: Optional[dict[str, str]] = None) -> Settings:
    """The settings of a pytest session."""
    settings = resolve_from(Sources.from_config(config), environ)
    project_given = "project" in settings.origins or any(
        e.startswith("project from") for e in settings.errors)
    if settings.enabled and settings.token is not None and not project_given:
        settings.errors.append(
            "project is not set: pass --qase-project CODE, set qase_project in the ini file "
            "or QASE_PROJECT in the environment; the local report is written instead"
        )
    return settings


def resolve_from(sources: Sources, environ: Optional[dict[str, str]] = None) -> Settings:
    """Read every option from its sources; collect one error line per bad value."""
    environ = dict(os.environ if environ is None else environ)
    settings = Settings()
    for option in OPTIONS:
        for raw, origin, parse in sources.values(option, environ):
            try:
                value = parse(raw)
            except SettingError as exc:
                settings.errors.append(_error_line(option, origin, exc))
                settings.upload_refused |= option.needed_to_upload and parse is not parse_ini_token
            else:
                setattr(settings, option.name, value)
                settings.origins[option.name] = origin
            break
    if "token" in settings.origins and sources.ini("qase_token") and (
            "qase_token" not in sources.overridden):
        # refused even when the environment also has a token: it must leave the repository
        settings.errors.append(
            f"token from {sources.ini_origin('qase_token')}: {INI_TOKEN_FIX}; it is ignored "
            f"and the token from {settings.origins['token']} is used")
    if settings.origins.get("enabled") == "$QASE_MODE" and \
            environ["QASE_MODE"].strip().lower() == "report":
        settings.token = None  # qase-pytest's report mode: the local report only
        settings.origins.pop("token", None)
        settings.report_only = True
    if settings.plan_only and settings.plan_id is None:
        settings.plan_only = False
        settings.errors.append(
            f"plan only from {settings.origins['plan_only']}: it needs a plan: pass "
            "--qase-plan-id ID, set qase_plan_id or QASE_PLAN_ID; every test runs")
    return settings


def _error_line(option: Option, origin: str, exc: Exception) -> str:
    """One line: the setting, where the bad value came from, the fix and what happens now."""
    if option.needed_to_upload:
        note = "; nothing is uploaded, the local report is written instead"
    elif option.default in (None, False):
        note = ""
    else:
        note = f" (using the default {option.default:g})" if isinstance(
            option.default, float) else f" (using the default {option.default})"
    return f"{option.name.replace('_', ' ')} from {origin}: {exc}{note}"


def default_report_dir(config: pytest.Config) -> str:
    return str(config.rootpath / "qase-report")
