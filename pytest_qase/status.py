"""What the run options change on each result before it is queued.

In order: the xfail/xpass status, then ``qase_status_mapping``, then the root suite and the
defect flag. ``qase_status_filter`` is applied last, after the ``pytest_qase_result`` hook, so
it sees the status that would really be sent.
"""

from __future__ import annotations

from typing import Any, Optional

from .results import FAILED, PASSED, SKIPPED, Result
from .settings import Settings

XFAIL, XPASS = "xfail", "xpass"


def xfail_kind(phases: dict[str, Any]) -> Optional[str]:
    """``xfail`` when an xfail test failed as expected, ``xpass`` when it passed (not strict).

    ``phases`` are the item's final setup/call/teardown reports (``Outcome.phases``).
    """
    for when in ("setup", "call"):
        report = phases.get(when)
        if report is not None and hasattr(report, "wasxfail"):
            if report.skipped:
                return XFAIL
            if report.passed and when == "call":
                return XPASS
    return None


def apply_rules(result: Result, settings: Settings, kind: Optional[str]) -> None:
    """Change ``result`` in place as the run options say."""
    if kind == XFAIL and result.status == SKIPPED:
        result.status = settings.xfail_status
    elif kind == XPASS and result.status == PASSED:
        result.status = settings.xpass_status
    if settings.status_mapping:
        result.status = settings.status_mapping.get(result.status, result.status)
    if settings.root_suite:
        result.suites = [settings.root_suite, *result.suites]
    if settings.defect and result.status == FAILED:
        result.defect = True


def filtered_out(result: Result, settings: Settings) -> bool:
    """True when ``qase_status_filter`` says the result is not reported."""
    return bool(settings.status_filter) and result.status in (settings.status_filter or ())
