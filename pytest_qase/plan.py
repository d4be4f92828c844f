"""``--qase-plan-only``: run only the tests whose case ids are in the Qase test plan.

The plan is read once, by the session's owner before collection (``GET /v1/plan/{code}/{id}``);
xdist workers get its case ids through ``workerinput``, so every process deselects exactly the
same tests and xdist sees the same collection everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import pytest

from . import clock, marks
from .errors import ApiError

if TYPE_CHECKING:  # the client imports requests: only where a request is made
    from .client import QaseClient


def read_plan_cases(client: QaseClient, project: str, plan_id: int,
                    deadline: clock.Deadline) -> list[int]:
    """The case ids of a test plan, sorted."""
    reply = client.call("GET", f"/v1/plan/{project}/{plan_id}",
                        f"read test plan {plan_id} of {project}", deadline)
    result = (reply.data or {}).get("result") or {}
    cases = result.get("cases") if isinstance(result, dict) else None
    if not isinstance(cases, list):
        raise ApiError(f"Qase's answer for test plan {plan_id} of {project} had no cases")
    ids = set()
    for case in cases:
        try:
            ids.add(int(case["case_id"]))
        except (KeyError, TypeError, ValueError):
            continue
    if cases and not ids:  # not one case id readable: no answer of Qase's
        raise ApiError(f"Qase's answer for test plan {plan_id} of {project} had no case ids")
    return sorted(ids)


def in_plan(item: pytest.Item, plan_cases: frozenset[int]) -> bool:
    """A test runs when any of its case ids is in the plan; a test without ids never does."""
    try:
        return any(case_id in plan_cases for case_id in marks.case_ids(item))
    except marks.CaseIdError:
        return False  # a bad id is already a collection error


def deselect(config: pytest.Config, items: list[pytest.Item],
             plan_cases: frozenset[int]) -> int:
    """Deselect the items outside the plan (``pytest_deselected``); return how many."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (kept if in_plan(item, plan_cases) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    return len(dropped)


def summary_line(plan_id: Optional[int], plan_size: int, deselected: int) -> str:
    return (f"qase: test plan {plan_id} ({plan_size} cases): {deselected} tests not in the plan "
            "were deselected")
