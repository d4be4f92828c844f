"""Hooks pytest-qase offers to ``conftest.py`` files and other plugins."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_qase_result(item: pytest.Item, result: Any) -> Any:
    """Called with each test's result before it is queued for Qase.

    Change ``result`` in place (title, fields, status, ...) and return None to keep it, or
    return False to drop it: it is then neither uploaded nor written to the local report.
    """
