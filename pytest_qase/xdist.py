"""pytest-xdist: one run for the controller and all its workers, nothing lost when one dies.

The controller checks the project and creates the run before any worker starts, then hands
each worker the run id and the session's state directory through ``workerinput`` (never the
token: workers read it from their own settings). Workers send their own results, keep them
in a spool file in that directory until Qase acknowledges them, and report their totals back
through ``workeroutput`` and a small totals file (which survives an interrupted controller).
At the end the controller folds the totals in, delivers whatever a dead or interrupted worker
left in its spool, and only then may the run be completed.

``XdistController`` is registered only where xdist's controller (``dsession``) is active,
``WorkerSpoolGuard`` only in a worker: with ``-n 0``, ``-p no:xdist`` or no xdist installed,
none of this runs.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Optional

import pytest

from . import clock, ids, status
from .results import crash_result
from .spool import spool_counts
from .upload import deliver_spools

if TYPE_CHECKING:
    from .session import QaseSession

WORKERINPUT_KEY = "qase"
TOTALS_SUFFIX = ".totals.json"
SPOOLED_WAIT = 2.0  # longest a worker waits, before a test, for the last result to be on disk
CONTROLLER_PLUGIN = "qase-session-xdist"
WORKER_PLUGIN = "qase-session-xdist-worker"


def controller_input(config: pytest.Config) -> Optional[dict[str, Any]]:
    """What the controller handed this process, or None when it is not an xdist worker."""
    workerinput = getattr(config, "workerinput", None)
    return workerinput.get(WORKERINPUT_KEY) if workerinput is not None else None


def thread_name() -> str:
    """The xdist worker id (``gw0``...) or ``main``: a result's ``execution.thread``."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def plain_nodeid(nodeid: str, config: pytest.Config) -> str:
    """The node id without the ``@group`` that ``--dist loadgroup`` appends to it.

    Qase must see the same test under every ``--dist`` mode (and without xdist). A ``@``
    inside a parameter id (``test_mail[a@b.c]``) is left alone.
    """
    option = config.option
    if "@" not in nodeid or not (getattr(option, "loadgroup", False)
                                 or getattr(option, "dist", None) == "loadgroup"):
        return nodeid
    head, _, group = nodeid.rpartition("@")
    return head if group and not any(c in group for c in "]/:[") else nodeid


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    return config.pluginmanager.has_plugin("dsession")


def claim_session_dir(config: pytest.Config, sessions: str) -> str:
    """A new directory for this session's spools, named after xdist's ``testrunuid``.

    Outside xdist, or when the controller is about to start its workers without a
    ``--testrunuid``, the id is chosen here (and given to xdist, so that workers see the
    same one in ``PYTEST_XDIST_TESTRUNUID``). A directory that already exists belongs to
    another session (a repeated ``--testrunuid``): it gets a suffix, so no state is shared.
    """
    option = config.option
    testrunuid = getattr(option, "testrunuid", None) if is_controller(config) else None
    if not testrunuid:
        testrunuid = ids.new_uuid().hex
        if is_controller(config):
            option.testrunuid = testrunuid
    os.makedirs(sessions, mode=0o700, exist_ok=True)
    name = str(testrunuid)
    while True:
        path = os.path.join(sessions, name)
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            name = f"{testrunuid}-{ids.new_uuid().hex[:8]}"


def hand_back(owner: QaseSession, workeroutput: dict[str, Any]) -> None:
    """A worker's totals, for the controller: in ``workeroutput`` and in a totals file."""
    totals = dict(owner.totals, requests=owner.own_requests(), reasons=owner.reasons[:5],
                  problems=owner.problems[:20], broken=owner.broken,
                  warnings=owner.warnings[:20], spools=owner.kept_spools,
                  plan_deselected=owner.plan_deselected, worker=thread_name())
    workeroutput[WORKERINPUT_KEY] = totals
    if not owner.session_dir or not os.path.isdir(owner.session_dir):
        return
    path = os.path.join(owner.session_dir, f"{thread_name()}-{os.getpid()}{TOTALS_SUFFIX}")
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(totals, handle)
        os.replace(path + ".tmp", path)
    except OSError:  # only the summary's counts after a Ctrl-C depend on it
        pass


class WorkerSpoolGuard:
    """In a worker: before each test, the results of the tests before it are on disk.

    A worker that dies in a test (``os._exit``, a segfault, a kill) then leaves every
    earlier result in its spool file, where the controller finds it.
    """

    def __init__(self, owner: QaseSession) -> None:
        self.owner = owner

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        uploader = self.owner.uploader
        if uploader is not None:
            uploader.wait_spooled(SPOOLED_WAIT)


class XdistController:
    """The controller's side: workerinput, crashed tests, worker totals, spool recovery."""

    def __init__(self, owner: QaseSession) -> None:
        self.owner = owner
        self.reported: set[str] = set()  # workers whose totals were folded in
        self.last_report = clock.monotonic()  # when a worker's last test report came

    @classmethod
    def attach(cls, owner: QaseSession) -> Optional[XdistController]:
        """Register the controller's hooks when xdist's controller is active."""
        manager = owner.config.pluginmanager
        if not is_controller(owner.config):
            return None
        controller = cls(owner)
        manager.register(controller, CONTROLLER_PLUGIN)
        return controller

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKERINPUT_KEY] = self.owner.workerinput()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """xdist's report for the test a worker died in (``when == "???"``): failed.

        Seen here, after ``pytest_handlecrashitem`` ran, so a plugin that reschedules the
        test (its outcome is then ``rerun``) gets no result until the test runs again. A
        worker stopped by Ctrl-C finished its session and reported that test itself, so
        xdist's "crashed" report for it is not sent a second time.
        """
        self.last_report = clock.monotonic()
        if report.when != "???" or report.outcome != "failed":  # type: ignore[comparison-overlap]
            return
        uploader = self.owner.uploader
        node = getattr(report, "node", None)
        if uploader is not None and node is not None and str(node.gateway.id) not in self.reported:
            nodeid = plain_nodeid(report.nodeid, self.owner.config)
            result = crash_result(report, str(node.gateway.id), nodeid)
            status.apply_rules(result, self.owner.settings, None)
            self.owner.submit(result)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        worker = str(node.gateway.id)
        output = getattr(node, "workeroutput", None) or {}
        totals = output.get(WORKERINPUT_KEY)
        if totals and worker not in self.reported:  # xdist may call this twice for a node
            self.reported.add(worker)
            self.owner.add_totals(totals)

    # -- at the end --------------------------------------------------------------------------

    def gather(self) -> None:
        """Fold in what workers left on disk, then deliver what they did not."""
        directory = self.owner.session_dir
        if not directory or not os.path.isdir(directory):
            return
        self._fold_totals_files(directory)
        self._count_dead_workers(directory)
        self._recover_spools(directory)

    def _fold_totals_files(self, directory: str) -> None:
        """Totals of workers whose ``workeroutput`` never arrived (the controller was stopped)."""
        for name in sorted(os.listdir(directory)):
            if not name.endswith(TOTALS_SUFFIX):
                continue
            path = os.path.join(directory, name)
            try:
                with open(path, encoding="utf-8") as handle:
                    totals = json.load(handle)
            except (OSError, ValueError):
                totals = None
            if isinstance(totals, dict) and str(totals.get("worker")) not in self.reported:
                self.reported.add(str(totals.get("worker")))
                self.owner.add_totals(totals)
            os.remove(path)

    def _count_dead_workers(self, directory: str) -> None:
        """What a worker that never reported took and delivered, from its spool file."""
        for name in sorted(os.listdir(directory)):
            worker = name.split("-", 1)[0]
            if name.endswith(".jsonl") and worker not in self.reported and worker != "main":
                taken, delivered = spool_counts(os.path.join(directory, name))
                self.owner.totals["results"] += taken
                self.owner.totals["delivered"] += delivered

    def _recover_spools(self, directory: str) -> None:
        owner = self.owner
        sender = owner.sender
        if owner.client is None or sender is None or sender.stopped is not None:
            return  # nothing can be sent: the spools stay for ``python -m pytest_qase upload``
        outcome = deliver_spools(directory, owner.client,
                                 batch_size=owner.settings.batch_size,
                                 max_bytes=owner.settings.max_request_bytes,
                                 deadline=owner.end_deadline,
                                 expect_run=owner.run_id, expect_url=owner.settings.url)
        owner.totals["delivered"] += outcome.delivered
        # the spools hold every result that is still to go, except those never spooled
        owner.totals["undelivered"] = len(outcome.undelivered) + owner.totals["dropped"]
        owner.reasons.extend(sorted(set(outcome.undelivered.values()))[:3])
        owner.kept_spools = outcome.kept
        owner.recovered = outcome.delivered
