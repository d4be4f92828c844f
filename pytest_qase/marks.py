"""The ``qase_id`` marker: registration, reading and checking of Qase case ids."""

from __future__ import annotations

from typing import Any

import pytest

QASE_ID = "qase_id"


class CaseIdError(ValueError):
    """A ``qase_id`` argument that is not a positive whole number."""


def register(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{QASE_ID}(*ids): link the test's result to these Qase case ids "
        "(positive integers); on a function, class or module",
    )
    from . import metadata

    metadata.register(config)


def _check(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CaseIdError(f"{value!r}")
    return value


def case_ids(item: pytest.Item) -> list[int]:
    """The case ids of an item, nearest mark first, without repeats.

    Marks closer to the function win: a function's ``qase_id`` replaces its class's and
    module's, which is what a user who overrides a class-wide id expects.
    """
    for mark in item.iter_markers(QASE_ID):
        ids: list[int] = []
        for value in mark.args:
            for one in value if isinstance(value, (list, tuple)) else (value,):
                checked = _check(one)
                if checked not in ids:
                    ids.append(checked)
        if not mark.args:
            raise CaseIdError("(none given)")
        return ids
    return []


def check_item(item: pytest.Item) -> None:
    """Raise a collection error naming the test when its ``qase_id`` is bad."""
    try:
        case_ids(item)
    except CaseIdError as exc:
        raise pytest.Collector.CollectError(
            f"{item.nodeid}: bad @pytest.mark.qase_id value {exc}: "
            "a Qase case id is a positive whole number, e.g. @pytest.mark.qase_id(101)"
        ) from None
    from . import metadata

    problem = metadata.check_item(item)
    if problem:
        raise pytest.Collector.CollectError(f"{item.nodeid}: {problem}")
