"""The plugin object registered when ``--qase`` is on: one test session's reporting.

It folds each item's reports into a result (``results.Outcome``), hands it to the
uploader, and owns the run's lifecycle: check the project, create or check the run,
deliver, complete, summarise. It never changes pytest's exit code unless strict mode asks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Optional

import pytest

from . import clock, context, marks, plan, runs, status, xdist
from .attachments import AttachmentStore, AttachmentUploader
from .errors import ApiError
from .links import run_link
from .local_report import LocalReport
from .ratelimit import RateGuard, state_directory
from .results import SKIPPED, Outcome, Result, scan_marks
from .runs import run_title
from .sender import ResultSender
from .settings import Settings, default_report_dir
from .spool import Spool
from .uploader import REPORT_FAILED, Uploader

if TYPE_CHECKING:  # the client imports requests: only where a request is made
    from .client import QaseClient

START_DEADLINE = 60.0  # checking the project and creating the run at the start
# pytest options under which no test runs (it lists, shows or plans): no run, no report
NOTHING_RUNS = ("collectonly", "showfixtures", "show_fixtures_per_test", "setupplan",
                "setuponly", "cacheshow")


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
        self._opening: Optional[runs.RunOpening] = None  # the run, opened while pytest collects
        self.start_time = clock.now()
        self.problems: list[str] = list(settings.errors)
        # "dropped": results that could not be processed, so never reached a spool
        self.totals = {"results": 0, "delivered": 0, "undelivered": 0, "requests": 0,
                       "filtered": 0, "dropped": 0}
        self.reasons: list[str] = []
        self.kept_spools: list[str] = []
        self.completed = False
        self.broken = False
        self.recovered = 0  # results of dead or interrupted workers the controller delivered
        self.stopped_early: Optional[str] = None  # Ctrl-C, -x, --maxfail: why pytest stopped
        self.end_deadline = clock.Deadline(settings.max_wait)
        self.nothing_runs = any(config.getoption(name, False) for name in NOTHING_RUNS)
        self.report_failed = False  # a local report file or folder could not be written
        self.plan_cases: Optional[frozenset[int]] = None  # --qase-plan-only: the plan's cases
        self.plan_deselected = 0
        self.public_url: Optional[str] = None
        self.report_total: Optional[int] = None  # result files in the local report at the end
        self.attachment_store: Optional[AttachmentStore] = None
        self.warnings: list[str] = []

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
                if self.nothing_runs or self._opening is not None:
                    return  # nothing runs, or the rest follows the run (``_run_opened``)
            self._start_uploader()
        except Exception as exc:  # never an INTERNALERROR: report and carry on without us
            self._fail(f"could not start: {type(exc).__name__}: {exc}")

    def _start_owner(self) -> None:
        """The session's owner checks the project, creates or checks the run, prepares dirs.

        Without xdist and a test plan to select by, nothing needs the run before the first
        test: it is opened on a background thread while pytest collects.
        """
        settings = self.settings
        self.session_dir = xdist.claim_session_dir(
            self.config, os.path.join(state_directory(), "sessions"))
        if settings.can_upload and self.nothing_runs:
            self.client = self._make_client()  # only to read the plan of --qase-plan-only
        elif settings.can_upload:
            self._open_run(background=self.xdist is None and not settings.plan_only)
            if self._opening is not None:
                return
        self._prepare_output()

    def _open_run(self, background: bool) -> None:
        settings = self.settings
        try:
            self.client = self._make_client()
            deadline = clock.Deadline(min(START_DEADLINE, settings.max_wait))
            if background:
                self._opening = runs.RunOpening(settings, self.client, self._run_title(),
                                                deadline)
            else:
                self._use_run(runs.open_run(settings, self.client, self._run_title(), deadline))
        except Exception as error:  # whatever failed, the results go to the local report
            self._upload_failed(error)

    def _use_run(self, opened: runs.OpenedRun) -> None:
        self.run_id, self.created_run = opened.run_id, opened.created
        self.problems.extend(opened.problems)

    def _upload_failed(self, error: Exception) -> None:
        text = _error_text(error, "could not start the upload: ")
        self.problems.append(f"{text}; the local report is written instead")
        self.client = None

    def _run_opened(self) -> None:
        """The rest of the start once the run opened in the background is open (or is not):
        the local report if needed, the sender, the uploader. Called before the test loop,
        and at the end in case pytest never reached it (only the first call acts)."""
        opening, self._opening = self._opening, None
        if opening is None:
            return
        try:
            try:
                self._use_run(opening.wait(self.settings.timeout + runs.OPEN_GRACE))
            except Exception as error:
                self._upload_failed(error)
            except KeyboardInterrupt:  # Ctrl-C while waiting: no test runs after it
                self._interrupted_opening(opening)
                raise
            self._prepare_output()
            self._start_uploader()
        except Exception as exc:  # never an INTERNALERROR: report and carry on without us
            self._fail(f"could not start: {type(exc).__name__}: {exc}")

    def _interrupted_opening(self, opening: runs.RunOpening) -> None:
        opening.abandon()
        self.client = None
        self.problems.append("interrupted (Ctrl-C) while the run was being created: nothing "
                             "is reported (a run created meanwhile stays open)")

    def _prepare_output(self) -> None:
        """The plan to select by, the local report (asked for, or instead of the upload) and
        the sender (with a run to send to)."""
        settings = self.settings
        self._read_plan()
        if self.nothing_runs:
            return  # nothing runs, so nothing is sent or written
        report_dir = settings.report_dir
        if report_dir is None and self.client is None:
            report_dir = default_report_dir(self.config)
        if report_dir is not None:
            try:
                self.report = LocalReport(report_dir)
                self.report.prepare()
            except OSError as exc:  # the upload, if any, goes on without the report
                self.report, self.report_failed = None, True
                self.problems.append(f"{REPORT_FAILED} in {report_dir}: {exc}; set "
                                     "qase_report_dir (--qase-report) to a folder you can "
                                     "write to")
        if self.client is not None and self.run_id is not None:
            self.sender = self._make_sender()

    def _start_uploader(self) -> None:
        self.uploader = self._make_uploader()
        self.uploader.start()

    def _read_plan(self) -> None:
        """For --qase-plan-only: the plan's case ids, or one line and every test runs."""
        settings = self.settings
        if not settings.plan_only or settings.plan_id is None:
            return
        if self.client is None or settings.project is None:
            self.problems.append(f"test plan {settings.plan_id} cannot be read without a "
                                 "working upload (token and project); every test runs")
            return
        deadline = clock.Deadline(min(START_DEADLINE, settings.max_wait))
        try:
            self.plan_cases = frozenset(plan.read_plan_cases(
                self.client, settings.project, settings.plan_id, deadline))
        except Exception as error:  # an answer of an unexpected shape costs only the plan
            text = _error_text(error)
            self.problems.append(f"could not read test plan {settings.plan_id}: {text}; "
                                 "every test runs")

    def _run_title(self) -> str:
        return run_title(self.settings, self.config.rootpath.name, self.start_time)

    def _start_worker(self, given: dict[str, Any]) -> None:
        """A worker uses what the controller decided: no project check, no run creation."""
        self.session_dir = given["session_dir"]
        self.run_id = given.get("run_id")
        if given.get("plan_cases") is not None:
            self.plan_cases = frozenset(given["plan_cases"])
        if given.get("report_dir"):
            self.report = LocalReport(given["report_dir"])
        if given.get("upload") and self.settings.can_upload and self.run_id is not None:
            self.client = self._make_client()
            self.sender = self._make_sender()

    def _make_client(self) -> QaseClient:
        from .client import QaseClient  # here: a session without a token never loads requests

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

    def _make_uploader(self) -> Uploader:
        """The uploader, with the attachment store and (when uploading) attachment upload."""
        if self.session_dir is not None:
            self.attachment_store = AttachmentStore(os.path.join(
                self.session_dir, f"attachments-{self.thread}-{os.getpid()}"))
        files = None
        if self.sender is not None and self.client is not None and self.settings.project:
            files = AttachmentUploader(self.client, self.settings.project)
        return Uploader(report=self.report, sender=self.sender, attachments=files,
                        store=self.attachment_store)

    def workerinput(self) -> dict[str, Any]:
        """What an xdist worker needs from the controller (never the token)."""
        return {"run_id": self.run_id, "session_dir": self.session_dir,
                "report_dir": self.report.directory if self.report else None,
                "upload": self.sender is not None,
                "plan_cases": sorted(self.plan_cases) if self.plan_cases is not None else None}

    # -- collection -----------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Any:
        """A bad mark on a test fails the collection of what holds it (module, class,
        unittest ``TestCase``), naming every such test: one check for every kind of
        collector."""
        report = yield
        if report.passed:
            problems = []
            for item in report.result:
                if isinstance(item, pytest.Item) and scan_marks(item)[0]:  # one walk, not seven
                    try:
                        marks.check_item(item)
                    except pytest.Collector.CollectError as error:
                        problems.append(str(error))
            if problems:
                report.outcome, report.longrepr, report.result = "failed", "\n".join(problems), []
        return report

    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        if self.plan_cases is not None:
            self.plan_deselected = plan.deselect(config, items, self.plan_cases)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        self._run_opened()  # the first test needs the run

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        """Ctrl-C before the first test (in the collection): the session ends now, without
        waiting for a run that is not open yet."""
        opening = self._opening
        if opening is not None and not opening.done:
            self._opening = None
            self._interrupted_opening(opening)

    # -- each test --------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Any) -> Any:
        outcome = Outcome(item, self.attachment_store,
                          capture_logs=self.settings.capture_logs,
                          exclude_params=self.settings.exclude_params,
                          ) if self.uploader is not None else None
        self.current = outcome
        context.activate(outcome.context if outcome is not None else None)
        interrupted: Optional[BaseException] = None
        try:
            return (yield)
        except KeyboardInterrupt as exc:  # Ctrl-C: the test's result says it never finished
            interrupted = exc
            raise
        finally:
            self.current = None
            context.activate(None)
            if outcome is not None and self.uploader is not None:
                try:
                    result = outcome.finish(self.thread, xdist.plain_nodeid(item.nodeid,
                                                                           item.config))
                    if interrupted is not None and "call" not in outcome.phases:
                        result.status, result.message = SKIPPED, (
                            f"not run: the session was interrupted "
                            f"({type(interrupted).__name__})")
                    if not result.ignore:  # qase.ignore: the test ran, nothing is reported
                        status.apply_rules(result, self.settings,
                                           status.xfail_kind(outcome.phases))
                        hook = item.config.hook.pytest_qase_result
                        # no implementation: nothing can drop the result, skip the hook call
                        if not hook.get_hookimpls() or hook(item=item,
                                                            result=result) is not False:
                            self.submit(result)
                except USER_CODE_ERRORS as exc:  # a result hook may skip, fail or exit too
                    self._fail(f"could not record {item.nodeid}: {type(exc).__name__}: {exc}")

    def submit(self, result: Result) -> None:
        """Queue a finished result unless qase_status_filter leaves it out."""
        assert self.uploader is not None
        if status.filtered_out(result, self.settings):
            self.totals["filtered"] += 1
        else:
            self.uploader.submit(result)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        current = self.current
        if current is not None and nodeid == current.item.nodeid:
            current.new_attempt()  # pytest-rerunfailures starts another attempt

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
        if self.settings.strict and self.worker is None and session.exitstatus == 0 and (
                self.totals["undelivered"] or self.problems):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.worker is None and not self.config.pluginmanager.has_plugin("terminalreporter"):
            for line in self.summary_lines():  # -p no:terminal: no summary hook is called
                print(line, file=sys.stderr)

    def _finish(self, session: pytest.Session) -> None:
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: stop waiting
            self._run_opened()  # pytest stopped before its test loop (a usage error)
        # bounds all that follows; under xdist the workers' own flush already took part of it
        spent = clock.monotonic() - self.xdist.last_report if self.xdist is not None else 0.0
        self.end_deadline = clock.Deadline(max(0.0, self.settings.max_wait - spent))
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
            try:
                run = self.report.finish(self._run_title(), self.start_time, clock.now(),
                                         environment=self.settings.environment)
                self.report_total = int(run["stats"]["total"])  # every process's files
            except OSError as exc:
                self.report_failed = True
                self.problems.append(f"{REPORT_FAILED}: {exc}")
        self._complete_run()
        self._make_public()

    def _close_uploader(self) -> None:
        uploader = self.uploader
        if uploader is None:
            return
        try:
            with _sigterm_as_interrupt():
                finished = uploader.close(self.end_deadline.remaining())
        except KeyboardInterrupt:  # Ctrl-C while the last results go: stop waiting, keep them
            finished = False
            self.reasons.append("interrupted (Ctrl-C or SIGTERM) while the last results were "
                                "sent")
        # unfinished: results still queued or in a request count as taken and not delivered
        taken = uploader.taken if finished else max(uploader.taken, uploader.submitted)
        self.totals["results"] += taken
        self.totals["dropped"] += uploader.dropped
        self.problems.extend(uploader.errors)
        self.broken = self.broken or uploader.crashed
        self.report_failed = self.report_failed or uploader.report_failed
        self.warnings.extend(uploader.warnings)
        if uploader.attachments is not None:
            self.warnings.extend(uploader.attachments.warnings)
        if self.attachment_store is not None and finished:
            self.attachment_store.remove_if_empty()
        sender = self.sender
        if sender is None:
            return
        if not finished and not self.reasons:
            self.reasons.append(f"gave up waiting after qase_max_wait={self.settings.max_wait:g}s")
        self.totals["delivered"] += sender.delivered
        left = len(sender.undelivered) + sender.pending
        if not finished:
            left = max(left, taken - sender.delivered)
        if sender.spool is not None:  # a batch lost to a Ctrl-C halfway is still in it
            left = max(left, sender.spool.pending)
        self.totals["undelivered"] += left
        if sender.stopped is not None:
            self.reasons.append(str(sender.stopped))
        self.reasons.extend(sorted(set(sender.undelivered.values()))[:3])
        if sender.parked and sender.leftover_reason():
            self.reasons.append(str(sender.leftover_reason()))
        if sender.spool is not None and finished:
            kept = sender.spool.close(keep=False)  # kept while a result in it is unacknowledged
            if kept:
                self.kept_spools.append(kept)
        elif sender.spool is not None and os.path.exists(sender.spool.path):
            self.kept_spools.append(sender.spool.path)  # still being written: what is in it

    def add_totals(self, output: dict[str, Any]) -> None:
        """Fold in an xdist worker's totals (see ``xdist.hand_back``)."""
        for key in self.totals:
            self.totals[key] += int(output.get(key, 0))
        self.reasons.extend(output.get("reasons", []))
        for problem in output.get("problems", []):  # the same settings error in every worker
            if problem not in self.problems:
                self.problems.append(problem)
        self.broken = self.broken or bool(output.get("broken"))
        self.plan_deselected = max(self.plan_deselected, int(output.get("plan_deselected", 0)))
        self.warnings.extend(output.get("warnings", []))
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

    def _make_public(self) -> None:
        settings = self.settings
        if not (settings.public_report and self.client and self.run_id and settings.project):
            return
        try:  # one short request, like completing the run
            self.public_url = runs.make_public(self.client, settings.project, self.run_id,
                                               self.end_deadline)
        except ApiError as error:
            self.problems.append(f"could not make the run public: {error}")

    # -- reporting to the user -------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return [f"qase: error: {problem}" for problem in self.settings.errors]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for line in self.summary_lines():
            terminalreporter.write_line(line)

    def summary_lines(self) -> list[str]:
        lines = [f"qase: error: {problem}" for problem in self.problems]
        if self.plan_cases is not None:
            lines.append(plan.summary_line(self.settings.plan_id, len(self.plan_cases),
                                           self.plan_deselected))
        if self.totals["filtered"]:
            shown = ", ".join(sorted(self.settings.status_filter or ()))
            lines.append(f"qase: {self.totals['filtered']} results with a status in "
                         f"qase_status_filter ({shown}) were not reported")
        lines += [f"qase: warning: {text}" for text in self.warnings[:5]]
        if len(self.warnings) > 5:
            lines.append(f"qase: warning: and {len(self.warnings) - 5} more")
        totals = self.totals
        if self.client is not None and self.run_id is not None and self.settings.project:
            requests = totals["requests"] + self.own_requests()
            lines.append(
                f"qase: {totals['delivered']} results -> run {self.run_id} "
                f"({self.settings.project}) in {requests} requests, "
                f"{run_link(self.settings.url, self.settings.project, self.run_id)}"
                + (" (completed)" if self.completed else ""))
        if self.public_url:
            lines.append(f"qase: public report: {self.public_url}")
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
                         f"{self.run_id} --qase-project={self.settings.project}")
        if self.recovered:
            lines.append(f"qase: {self.recovered} results of xdist workers that stopped early "
                         "were delivered from their spool files")
        went = "sent" if self.client is not None and self.run_id is not None else "written"
        if self.stopped_early and self.worker is None and (self.uploader or self.xdist):
            lines.append(f"qase: pytest stopped early ({self.stopped_early}): the results of "
                         f"the tests that ran were {went}; tests that did not run have none")
        if self.report is not None:
            written = totals["results"] if self.report_total is None else self.report_total
            lines.append(f"qase: local report with {written} results written to "
                         f"{self.report.directory}"
                         + (" (incomplete: see the error above)" if self.report_failed else ""))
        return lines

    def own_requests(self) -> int:
        return self.client.requests_made if self.client is not None else 0

    def _fail(self, message: str) -> None:
        self.broken = True
        self.problems.append(message)
        print(f"qase: error: {message}", file=sys.stderr)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the last results go, SIGTERM (a cancelled CI job) stops the wait like Ctrl-C,
    so that the summary still says where the undelivered results are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except (ValueError, OSError):  # no SIGTERM here (or not the main interpreter)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _error_text(error: Exception, unexpected: str = "") -> str:
    """An API error's own line, or the type and text of anything else, after ``unexpected``."""
    if isinstance(error, ApiError):
        return str(error)
    return f"{unexpected}{type(error).__name__}: {error}"


# what a ``pytest_qase_result`` hook in a conftest.py may raise: never an INTERNALERROR
USER_CODE_ERRORS = (Exception, SystemExit, pytest.skip.Exception, pytest.fail.Exception)


def _stop_reason(session: pytest.Session) -> Optional[str]:
    """Why pytest ended before running every test (-x, --maxfail, Ctrl-C), or None."""
    reason = session.shouldfail or session.shouldstop
    dsession = session.config.pluginmanager.get_plugin("dsession")  # xdist's controller
    reason = reason or getattr(dsession, "shouldstop", None)
    if not reason and session.exitstatus == pytest.ExitCode.INTERRUPTED:
        reason = "interrupted"
    return str(reason) if reason else None
