"""The body of a new Qase run, built in one place for the plugin and ``python -m pytest_qase``.

A pytest session that creates its own run and ``run create`` for CI shards must send the
same run: every run setting (title, description, and any added later) is read here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .settings import Settings

MAX_TITLE = 255


def run_title(settings: Settings, name: str, started: float) -> str:
    """``qase_run_title``, or ``pytest <name> <UTC time>`` (``name``: the project folder)."""
    if settings.run_title:
        return settings.run_title[:MAX_TITLE]
    stamp = datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"pytest {name} {stamp}"[:MAX_TITLE]


def run_body(settings: Settings, title: str) -> dict[str, Any]:
    """``POST /v1/run/{code}``'s body for a run of automated tests."""
    body: dict[str, Any] = {"title": title[:MAX_TITLE], "is_autotest": True}
    if settings.run_description:
        body["description"] = settings.run_description
    return body
