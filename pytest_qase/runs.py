"""The run results go to: opened (checked or created) at the start, its body, its public link.

One function (``run_body``) serves both the plugin's run creation and
``python -m pytest_qase run create``, so the two always create the same kind of run.
Looking up an environment or a configuration can fail on its own: that costs one clear
line and the run is created without that piece, never the whole upload. ``RunOpening``
opens the run on a background thread, so that its round trips overlap pytest's collection.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from . import clock
from .errors import ApiError
from .results import to_json_bytes
from .settings import Settings

if TYPE_CHECKING:  # the client imports requests: only where a request is made
    from .client import QaseClient

MAX_TITLE = 255
ENVIRONMENT_PAGE = 100  # the largest page GET /v1/environment/{code} allows
MAX_ENVIRONMENT_PAGES = 1000  # offset is capped at 100000 by the API
# how long past its deadline the session waits for the run: a request under way when the
# deadline passes takes up to qase_timeout, and each one after it a last short attempt
OPEN_GRACE = 20.0


def run_title(settings: Settings, name: str, started: float) -> str:
    """``qase_run_title``, or ``pytest <name> <UTC time>`` (``name``: the project folder)."""
    if settings.run_title:
        return settings.run_title[:MAX_TITLE]
    stamp = datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"pytest {name} {stamp}"[:MAX_TITLE]


@dataclass
class RunBody:
    """What to send to ``POST /v1/run/{code}``, and what could not be put in it."""

    body: dict[str, Any]
    problems: list[str] = field(default_factory=list)


def run_body(settings: Settings, title: str, client: Optional[QaseClient],
             deadline: clock.Deadline) -> RunBody:
    """The body of a new run: title, description, plan, milestone, tags, environment, configs.

    ``client`` is needed only to look up an environment slug or configurations.
    """
    body: dict[str, Any] = {"title": title[:MAX_TITLE], "is_autotest": True}
    built = RunBody(body)
    if settings.run_description:
        body["description"] = settings.run_description[:10000]
    if settings.plan_id is not None:
        body["plan_id"] = settings.plan_id
    if settings.milestone_id is not None:
        body["milestone_id"] = settings.milestone_id
    if settings.run_tags:
        body["tags"] = list(settings.run_tags)
    project = settings.project or ""
    if settings.environment:
        environment_id = _environment_id(settings.environment, project, client, deadline,
                                         built.problems)
        if environment_id is not None:
            body["environment_id"] = environment_id
    if settings.configurations:
        ids = _configuration_ids(settings, project, client, deadline, built.problems)
        if ids:
            body["configurations"] = ids
    return built


@dataclass
class OpenedRun:
    """The run this session reports to, and what could not be put in it when created."""

    run_id: int
    created: bool
    problems: list[str] = field(default_factory=list)


def open_run(settings: Settings, client: QaseClient, title: str, deadline: clock.Deadline,
             abandoned: Optional[threading.Event] = None) -> OpenedRun:
    """Check the project, then check the run of ``qase_run_id`` or create a new one.

    ``abandoned``: set once the session went on without the run (it waited too long, or
    Ctrl-C): no run is created after that, so none is left behind empty.
    """
    project = settings.project
    assert project is not None
    client.get_project(project, deadline)
    if settings.run_id is not None:
        run = client.get_run(project, settings.run_id, deadline)
        if run.get("status") == 1 or run.get("status_text") == "complete":
            raise ApiError(f"run {settings.run_id} of {project} is already completed and "
                           "takes no more results: create a new run")
        return OpenedRun(settings.run_id, created=False)
    built = run_body(settings, title, client, deadline)
    if abandoned is not None and abandoned.is_set():
        raise ApiError("the session went on without the run before it was created")
    return OpenedRun(client.create_run(project, built.body, deadline), created=True,
                     problems=built.problems)


class RunOpening:
    """``open_run`` on a background thread: its round trips (two at least, each a network
    latency) overlap pytest's collection instead of delaying the first test.

    The thread touches nothing but its own two fields; ``wait`` hands over the outcome, or
    raises what the thread raised, on the session's thread.
    """

    def __init__(self, settings: Settings, client: QaseClient, title: str,
                 deadline: clock.Deadline) -> None:
        self._deadline = deadline
        self._opener = functools.partial(open_run, settings, client, title, deadline)
        self._abandoned = threading.Event()
        self._opened: Optional[OpenedRun] = None
        self._error: Optional[Exception] = None
        self._thread = threading.Thread(target=self._open, name="pytest-qase-open-run",
                                        daemon=True)
        self._thread.start()

    def _open(self) -> None:
        try:
            self._opened = self._opener(abandoned=self._abandoned)
        except Exception as exc:  # raised again by ``wait``, on the session's thread
            self._error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def abandon(self) -> None:
        """The session goes on without the run: the thread creates none after this."""
        self._abandoned.set()

    def wait(self, grace: float) -> OpenedRun:
        """The opened run, waited for until ``grace`` seconds past the opening's deadline
        (a request under way at the deadline, and those after it, still take their time)."""
        timeout = self._deadline.remaining() + grace
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.abandon()
            raise ApiError(f"the run was still not open after {timeout:.0f}s: Qase answers "
                           "too slowly for qase_timeout and qase_max_wait (raise them)")
        if self._error is not None:
            raise self._error
        if self._opened is None:
            raise ApiError("the run could not be opened")
        return self._opened


def _environment_id(wanted: str, project: str, client: Optional[QaseClient],
                    deadline: clock.Deadline, problems: list[str]) -> Optional[int]:
    """A numeric id as it is; a slug looked up over every page of the project's environments."""
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    if client is None:
        return None
    try:
        for environment in _environments(client, project, deadline):
            if environment.get("slug") == wanted:
                return int(environment["id"])
    except (ApiError, AttributeError, KeyError, TypeError, ValueError) as error:
        problems.append(f"environment {wanted!r}: could not read the environments of "
                        f"{project}: {error}; the run is created without an environment")
        return None
    problems.append(f"environment {wanted!r} is not an environment of {project}: use the slug "
                    "shown in Qase (Environments) or its numeric id in qase_environment; the "
                    "run is created without an environment")
    return None


def _environments(client: QaseClient, project: str, deadline: clock.Deadline):
    """Every environment of the project, page by page, until a short or empty page."""
    for page in range(MAX_ENVIRONMENT_PAGES):
        if page and deadline.expired():  # one page is always asked for, never a thousand late
            raise ApiError("the start deadline (qase_max_wait) passed while they were listed")
        reply = client.call("GET", f"/v1/environment/{project}",
                            f"list the environments of {project}", deadline,
                            params={"limit": ENVIRONMENT_PAGE,
                                    "offset": page * ENVIRONMENT_PAGE})
        result = (reply.data or {}).get("result") or {}
        entities = result.get("entities") or []
        yield from entities
        if len(entities) < ENVIRONMENT_PAGE:
            return


def _configuration_ids(settings: Settings, project: str, client: Optional[QaseClient],
                       deadline: clock.Deadline, problems: list[str]) -> list[int]:
    """The ids of ``Group=Value`` configurations, creating missing ones when asked."""
    wanted = settings.configurations or ()
    shown = ",".join(f"{g}={v}" for g, v in wanted)
    if client is None:
        return []
    try:
        reply = client.call("GET", f"/v1/configuration/{project}",
                            f"list the configurations of {project}", deadline)
        groups = ((reply.data or {}).get("result") or {}).get("entities") or []
        ids: list[int] = []
        for group_title, value in wanted:
            found = _find_configuration(groups, group_title, value)
            if found is None and settings.create_configurations:
                found = _create_configuration(client, project, groups, group_title, value,
                                              deadline)
            if found is None:
                problems.append(
                    f"configuration {group_title}={value} does not exist in {project}: create "
                    "it in Qase or set qase_create_configurations = true; the run is created "
                    "without it")
            elif found not in ids:
                ids.append(found)
        return ids
    except (ApiError, AttributeError, KeyError, TypeError, ValueError) as error:
        problems.append(f"configurations {shown}: could not read or create them in {project}: "
                        f"{error}; the run is created without configurations")
        return []


def _find_configuration(groups: list[dict[str, Any]], group_title: str,
                        value: str) -> Optional[int]:
    for group in groups:
        if group.get("title") == group_title:
            for item in group.get("configurations") or []:
                if item.get("title") == value:
                    return int(item["id"])
    return None


def _create_configuration(client: QaseClient, project: str, groups: list[dict[str, Any]],
                          group_title: str, value: str, deadline: clock.Deadline) -> int:
    """Create the value (and its group when missing); remember both in ``groups``."""
    group = next((g for g in groups if g.get("title") == group_title), None)
    if group is None:
        reply = client.call("POST", f"/v1/configuration/{project}/group",
                            f"create configuration group {group_title} in {project}", deadline,
                            body=to_json_bytes({"title": group_title[:255]}), idempotent=False)
        group = {"id": int(reply.data["result"]["id"]), "title": group_title,
                 "configurations": []}
        groups.append(group)
    reply = client.call("POST", f"/v1/configuration/{project}",
                        f"create configuration {group_title}={value} in {project}", deadline,
                        body=to_json_bytes({"title": value[:255], "group_id": int(group["id"])}),
                        idempotent=False)
    created = int(reply.data["result"]["id"])
    group.setdefault("configurations", []).append({"id": created, "title": value})
    return created


def make_public(client: QaseClient, project: str, run_id: int,
                deadline: clock.Deadline) -> str:
    """Turn on the run's public report; return its address."""
    data = client.call_json("PATCH", f"/v1/run/{project}/{run_id}/public",
                            f"make run {run_id} of {project} public", deadline,
                            body=to_json_bytes({"status": True}))
    result = data.get("result")
    url = result.get("url") if isinstance(result, dict) else None
    if not url:
        raise ApiError(f"Qase made run {run_id} public but its answer had no link")
    return str(url)
