"""The local Qase Report: ``run.json`` plus ``results/<id>.json``, readable by Qase's tools.

Each process writes its own result files (on the uploader thread); the process that owns
the session (the xdist controller, or the only process) clears stale files at the start and
writes ``run.json`` from the result files at the end, so xdist workers need no extra channel.
It reads back only the files of other processes: its own are summarised as they are written.
A file is written with three system calls (``os.open``, ``write``, ``close``): each one
is a GIL handoff against the busy test thread, and ``open()`` adds three more.
"""

from __future__ import annotations

import json
import os
import platform
import socket
from collections import Counter
from typing import Any, Optional

from . import __version__
from .attachments import copy_for_report, walk
from .results import Result, to_json_bytes

STATUSES = ("passed", "failed", "skipped", "blocked", "invalid")


class LocalReport:
    """Writes one session's report into ``directory``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.results_dir = os.path.join(directory, "results")
        self.written = 0
        self._made = False  # the results folder exists (``prepare``, or the first write)
        self._summaries: dict[str, Summary] = {}  # file name -> what run.json needs of it

    def prepare(self) -> None:
        """Create the folders and remove the files an earlier session left (only ours)."""
        os.makedirs(self.results_dir, exist_ok=True)
        os.makedirs(os.path.join(self.directory, "attachments"), exist_ok=True)
        self._made = True
        for name in os.listdir(self.results_dir):
            if name.endswith(".json"):
                os.remove(os.path.join(self.results_dir, name))
        run_file = os.path.join(self.directory, "run.json")
        if os.path.exists(run_file):
            os.remove(run_file)

    def write(self, result: Result) -> list[str]:
        """Write the result's file, with copies of its attachments; returns warnings."""
        if not self._made:  # once: a folder check per result is a system call per result
            os.makedirs(self.results_dir, exist_ok=True)
            self._made = True
        warnings = []
        files = list(walk(result))
        if files:
            folder = os.path.join(self.directory, "attachments")
            os.makedirs(folder, exist_ok=True)
            for _, attachment in files:
                problem = copy_for_report(attachment, folder)
                if problem:
                    warnings.append(problem)
        data = result.to_report()
        content = to_json_bytes(data)  # first: a result that fails leaves no file
        name = f"{result.id}.json"
        # written in place, not through a temporary file and a rename, which costs 1.6x the
        # time per file (65 vs 41 us on ext4, with 20,000 files in the folder); a file cut
        # short by a crash is skipped by ``finish`` and removed by the next ``prepare``
        handle = os.open(os.path.join(self.results_dir, name),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(handle, view):]
        finally:
            os.close(handle)
        self._summaries[name] = _summary(data)
        self.written += 1
        return warnings

    def finish(self, title: str, start_time: float, end_time: float,
               environment: Optional[str] = None) -> dict[str, Any]:
        """Write ``run.json`` summarising every result file of the session."""
        summaries: list[dict[str, Any]] = []
        suites: set[str] = set()
        threads: set[str] = set()
        muted = 0
        for name in sorted(os.listdir(self.results_dir)):
            if not name.endswith(".json"):
                continue
            found = self._summaries.get(name) or _read_summary(os.path.join(self.results_dir,
                                                                            name))
            if found is None:
                continue
            summary, suite, is_muted = found
            summaries.append(summary)
            if summary["thread"]:
                threads.add(summary["thread"])
            muted += is_muted
            if suite:
                suites.add(suite)
        counts = Counter(s["status"] for s in summaries)
        run = {
            "title": title,
            "execution": {
                "start_time": round(start_time, 3),
                "end_time": round(end_time, 3),
                "duration": int(round((end_time - start_time) * 1000)),
                "cumulative_duration": sum(int(s["duration"]) for s in summaries),
            },
            "stats": {"total": len(summaries), **{s: counts.get(s, 0) for s in STATUSES},
                      "muted": muted},
            "results": summaries,
            "threads": sorted(threads),
            "suites": sorted(suites),
            "environment": environment,
            "host_data": host_data(),
        }
        with open(os.path.join(self.directory, "run.json"), "wb") as handle:
            handle.write(to_json_bytes(run))
        return run


# a result's line in run.json, its suite path (or None) and whether it is muted
Summary = tuple[dict[str, Any], Optional[str], bool]


def _summary(data: dict[str, Any]) -> Summary:
    execution = data.get("execution") or {}
    relation = ((data.get("relations") or {}).get("suite") or {}).get("data") or []
    return ({"id": data.get("id"), "title": data.get("title"),
             "status": execution.get("status"),
             "duration": execution.get("duration") or 0, "thread": execution.get("thread")},
            ".".join(str(s.get("title")) for s in relation) if relation else None,
            bool(data.get("muted")))


def _read_summary(path: str) -> Optional[Summary]:
    """The summary of a result file another process wrote (None if it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return _summary(data) if isinstance(data, dict) else None


def host_data() -> dict[str, str]:
    import pytest

    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "node": socket.gethostname(),
        "python": platform.python_version(),
        "pytest": pytest.__version__,
        "reporter": f"pytest-qase {__version__}",
    }
