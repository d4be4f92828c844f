"""The runtime API that tests import: ``from pytest_qase import qase``.

Everything here is a harmless no-op when the plugin is off: decorators only add marks.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import pytest

from .marks import QASE_ID

F = TypeVar("F", bound=Callable[..., Any])


class _Qase:
    """Namespace of decorators and helpers; one shared instance, ``qase``."""

    @staticmethod
    def id(*case_ids: int) -> pytest.MarkDecorator:
        """Link a test (function, class or module via ``pytestmark``) to Qase case ids."""
        return getattr(pytest.mark, QASE_ID)(*case_ids)

    def __repr__(self) -> str:
        return "<pytest_qase.qase>"


qase = _Qase()
