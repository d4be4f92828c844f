"""The plugin object registered when ``--qase`` is on: one test session's reporting.

It folds each item's reports into a result (``results.Outcome``), hands it to the
uploader, and owns the run's lifecycle: check the project, create or check the run,
deliver, complete, summarise. It never changes pytest's exit code unless strict mode asks.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

import pytest

from . import clock, marks, xdist
from .client import ApiError, QaseClient
from .links import run_link
from .local_report import LocalReport
from .ratelimit import RateGuard, state_directory
from .results import SKIPPED, Outcome
from .runs import run_body, run_title
from .sender import ResultSender
from .settings import Settings, default_report_dir
from .spool import Spool
from .uploader import Uploader

START_DEADLINE = 60.0  # checking the project and creating the run at the start


class QaseSession:
    """Reporting for one pytest session (the controller's, a worker's, or the only one)."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.worker: Optional[dict[str, Any]] = xdist.controller_input(config)
        self.thread = xdist.thread_name()
        self.xdist: Optional[xdist.XdistController] = None
        self.current: Optional[Outcome] = None
        self.client: Optional[QaseClient] = None
        self.sender: Optional[ResultSender] = None
        self.report: Optional[LocalReport] = None
        self.uploader: Optional[Uploader] = None
        self.run_id: Optional[int] = settings.run_id
        self.created_run = False
        self.session_dir: Optional[str] = None
        self.start_time = clock.now()
        self.problems: list[str] = list(settings.errors)
        self.totals = {"results": 0, "delivered": 0, "undelivered": 0, "requests": 0}
        self.reasons: list[str] = []
        self.kept_spools: list[str] = []
        self.completed = False
        self.broken = False
        self.recovered = 0  # results of dead or interrupted workers the controller delivered
        self.stopped_early: Optional[str] = None  # Ctrl-C, -x, --maxfail: why pytest stopped
        self.end_deadline = clock.Deadline(settings.max_wait)

    # -- set-up -----------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        try:
            if xdist.is_worker(self.config) and self.worker is None:
                return  # the controller handed over no run: never create one per worker
            if self.worker is not None:
                self._start_worker(self.worker)
                self.config.pluginmanager.register(xdist.WorkerSpoolGuard(self),
                                                   xdist.WORKER_PLUGIN)
            else:
                self.xdist = xdist.XdistController.attach(self)  # hands workers the run
                self._start_owner()
            self.uploader = Uploader(report=self.report, sender=self.sender)
            self.uploader.start()
        except Exception as exc:  # never an INTERNALERROR: report and carry on without us
            self._fail(f"could not start: {type(exc).__name__}: {exc}")

    def _start_owner(self) -> None:
        """The session's owner checks the project, creates or checks the run, prepares dirs."""
        settings = self.settings
        self.session_dir = xdist.claim_session_dir(
            self.config, os.path.join(state_directory(), "sessions"))
        if settings.can_upload:
            try:
                self._open_run()
            except Exception as error:  # whatever failed, the results go to the local report
                text = str(error) if isinstance(error, ApiError) else (
                    f"could not start the upload: {type(error).__name__}: {error}")
                self.problems.append(f"{text}; the local report is written instead")
                self.client = None
        report_dir = settings.report_dir
        if report_dir is None and self.client is None:
            report_dir = default_report_dir(self.config)
        if report_dir is not None:
            self.report = LocalReport(report_dir)
            self.report.prepare()
        if self.client is not None and self.run_id is not None:
            self.sender = self._make_sender()

    def _open_run(self) -> None:
        settings = self.settings
        assert settings.token is not None and settings.project is not None
        deadline = clock.Deadline(min(START_DEADLINE, settings.max_wait or START_DEADLINE))
        self.client = self._make_client()
        self.client.get_project(settings.project, deadline)
        if self.run_id is not None:
            run = self.client.get_run(settings.project, self.run_id, deadline)
            if run.get("status") == 1 or run.get("status_text") == "complete":
                raise ApiError(f"run {self.run_id} of {settings.project} is already completed "
                               "and takes no more results: create a new run")
            return
        body = run_body(settings, self._run_title())
        self.run_id = self.client.create_run(settings.project, body, deadline)
        self.created_run = True

    def _run_title(self) -> str:
        return run_title(self.settings, self.config.rootpath.name, self.start_time)

    def _start_worker(self, given: dict[str, Any]) -> None:
        """A worker uses what the controller decided: no project check, no run creation."""
        self.session_dir = given["session_dir"]
        self.run_id = given.get("run_id")
        if given.get("report_dir"):
            self.report = LocalReport(given["report_dir"])
        if given.get("upload") and self.settings.can_upload and self.run_id is not None:
            self.client = self._make_client()
            self.sender = self._make_sender()

    def _make_client(self) -> QaseClient:
        settings = self.settings
        assert settings.token is not None
        guard = RateGuard(settings.url, settings.token.reveal(), settings.rate_limit)
        return QaseClient(settings.url, settings.token, verify=settings.verify(),
                          timeout=settings.timeout, guard=guard)

    def _make_sender(self) -> ResultSender:
        assert self.client is not None and self.run_id is not None
        assert self.settings.project is not None and self.session_dir is not None
        spool = Spool(os.path.join(self.session_dir, f"{self.thread}-{os.getpid()}.jsonl"), {
            "url": self.settings.url, "project": self.settings.project, "run_id": self.run_id})
        return ResultSender(self.client, self.settings.project, self.run_id,
                            batch_size=self.settings.batch_size,
                            max_bytes=self.settings.max_request_bytes, spool=spool)

    def workerinput(self) -> dict[str, Any]:
        """What an xdist worker needs from the controller (never the token)."""
        return {"run_id": self.run_id, "session_dir": self.session_dir,
                "report_dir": self.report.directory if self.report else None,
                "upload": self.sender is not None}

    # -- collection -----------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_pycollect_makeitem(self, collector: Any, name: str, obj: Any) -> Any:
        made = yield
        for item in made if isinstance(made, list) else [made]:
            if isinstance(item, pytest.Item):
                marks.check_item(item)
        return made

    # -- each test --------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Any) -> Any:
        outcome = Outcome(item) if self.uploader is not None else None
        self.current = outcome
        interrupted: Optional[BaseException] = None
        try:
            return (yield)
        except KeyboardInterrupt as exc:  # Ctrl-C: the test's result says it never finished
            interrupted = exc
            raise
        finally:
            self.current = None
            if outcome is not None and self.uploader is not None:
                try:
                    result = outcome.finish(self.thread, xdist.plain_nodeid(item.nodeid,
                                                                           item.config))
                    if interrupted is not None and "call" not in outcome.phases:
                        result.status, result.message = SKIPPED, (
                            f"not run: the session was interrupted "
                            f"({type(interrupted).__name__})")
                    if item.config.hook.pytest_qase_result(item=item, result=result) is not False:
                        self.uploader.submit(result)
                except Exception as exc:
                    self._fail(f"could not record {item.nodeid}: {type(exc).__name__}: {exc}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        current = self.current
        if current is not None and report.nodeid == current.item.nodeid:
            current.add(report)

    # -- the end ------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        try:
            self._finish(session)
        except Exception as exc:
            self._fail(f"could not finish: {type(exc).__name__}: {exc}")

    def _finish(self, session: pytest.Session) -> None:
        self.end_deadline = clock.Deadline(self.settings.max_wait)  # bounds all that follows
        self.stopped_early = _stop_reason(session)
        self._close_uploader()
        workeroutput = getattr(self.config, "workeroutput", None)
        if self.worker is not None and workeroutput is not None:
            xdist.hand_back(self, workeroutput)
            return
        if self.xdist is not None:
            self.xdist.gather()  # every worker is down: fold in and deliver what they left
        self._remove_empty_session_dir()
        if self.report is not None:
            self.report.finish(self._run_title(), self.start_time, clock.now())
        self._complete_run()
        if self.settings.strict and session.exitstatus == 0 and (
                self.totals["undelivered"] or self.problems):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _close_uploader(self) -> None:
        uploader = self.uploader
        if uploader is None:
            return
        finished = uploader.close(self.end_deadline.remaining())
        self.totals["results"] += uploader.taken
        self.reasons.extend(uploader.errors)
        sender = self.sender
        if sender is None:
            return
        if not finished:
            self.reasons.append(f"gave up waiting after qase_max_wait={self.settings.max_wait:g}s")
        self.totals["delivered"] += sender.delivered
        left = len(sender.undelivered) + sender.pending
        self.totals["undelivered"] += left
        if sender.stopped is not None:
            self.reasons.append(str(sender.stopped))
        self.reasons.extend(sorted(set(sender.undelivered.values()))[:3])
        if sender.parked and sender.leftover_reason():
            self.reasons.append(str(sender.leftover_reason()))
        if sender.spool is not None and finished:
            kept = sender.spool.close(keep=left > 0)
            if kept:
                self.kept_spools.append(kept)

    def add_totals(self, output: dict[str, Any]) -> None:
        """Fold in an xdist worker's totals (see ``xdist.hand_back``)."""
        for key in self.totals:
            self.totals[key] += int(output.get(key, 0))
        self.reasons.extend(output.get("reasons", []))
        self.kept_spools.extend(output.get("spools", []))

    def _remove_empty_session_dir(self) -> None:
        if self.session_dir and os.path.isdir(self.session_dir) and not os.listdir(
                self.session_dir):
            os.rmdir(self.session_dir)

    def _complete_run(self) -> None:
        settings = self.settings
        wanted = settings.complete_run if settings.complete_run is not None else self.created_run
        if not (wanted and self.client and self.run_id and settings.project):
            return
        if self.totals["undelivered"] or self.broken:
            self.reasons.append("the run was left open because not every result was delivered")
            return
        try:
            # one attempt even when qase_max_wait is spent: it is a single short request
            self.client.complete_run(settings.project, self.run_id, self.end_deadline)
            self.completed = True
        except ApiError as error:
            self.reasons.append(f"could not complete the run: {error}")

    # -- reporting to the user -------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return [f"qase: error: {problem}" for problem in self.settings.errors]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for line in self.summary_lines():
            terminalreporter.write_line(line)

    def summary_lines(self) -> list[str]:
        lines = [f"qase: error: {problem}" for problem in self.problems]
        totals = self.totals
        if self.client is not None and self.run_id is not None and self.settings.project:
            requests = totals["requests"] + self.own_requests()
            lines.append(
                f"qase: {totals['delivered']} results -> run {self.run_id} "
                f"({self.settings.project}) in {requests} requests, "
                f"{run_link(self.settings.url, self.settings.project, self.run_id)}"
                + (" (completed)" if self.completed else ""))
        if totals["undelivered"]:
            reason = self.reasons[0] if self.reasons else "the server did not accept them"
            lines.append(f"qase: {totals['undelivered']} of {totals['results']} results were "
                         f"not delivered: {reason}")
            for path in sorted(set(self.kept_spools)):
                lines.append(f"qase: deliver them later with: python -m pytest_qase upload {path}")
        elif self.reasons and self.client is not None:
            lines.extend(f"qase: {reason}" for reason in self.reasons[:3])
        if (self.run_id is not None and self.client is not None and not self.created_run
                and not self.completed and not totals["undelivered"]
                and self.settings.complete_run is None):  # a CI shard: another job closes it
            lines.append(f"qase: run {self.run_id} is left open (this session did not create "
                         f"it); close it with: python -m pytest_qase run complete "
                         f"{self.run_id}")
        if self.recovered:
            lines.append(f"qase: {self.recovered} results of xdist workers that stopped early "
                         "were delivered from their spool files")
        if self.stopped_early and self.worker is None:
            lines.append(f"qase: pytest stopped early ({self.stopped_early}): the results of "
                         "the tests that ran were sent; tests that did not run have none")
        if self.report is not None:
            lines.append(f"qase: local report with {totals['results']} results written to "
                         f"{self.report.directory}")
        return lines

    def own_requests(self) -> int:
        return self.client.requests_made if self.client is not None else 0

    def _fail(self, message: str) -> None:
        self.broken = True
        self.problems.append(message)
        print(f"qase: error: {message}", file=sys.stderr)


def _stop_reason(session: pytest.Session) -> Optional[str]:
    """Why pytest ended before running every test (-x, --maxfail, Ctrl-C), or None."""
    reason = session.shouldfail or session.shouldstop
    dsession = session.config.pluginmanager.get_plugin("dsession")  # xdist's controller
    reason = reason or getattr(dsession, "shouldstop", None)
    if not reason and session.exitstatus == pytest.ExitCode.INTERRUPTED:
        reason = "interrupted"
    return str(reason) if reason else None
