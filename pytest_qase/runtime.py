"""The runtime API that tests import: ``from pytest_qase import qase``.

Everything here is a harmless no-op when the plugin is off or no test is running:
decorators only add marks, ``qase.step`` still runs its body and re-raises, and the
runtime calls cost one global read. Inside a running test (on its own thread) the calls
record into the item's context (``context.py``); nothing is sent from the test thread.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, TypeVar, Union

import pytest

from . import attachments, context, metadata
from .marks import QASE_ID
from .steps import StepBlock

F = TypeVar("F", bound=Callable[..., Any])


def _mark(name: str, *args: Any, **kwargs: Any) -> pytest.MarkDecorator:
    return getattr(pytest.mark, name)(*args, **kwargs)


class _Qase:
    """Namespace of decorators and helpers; one shared instance, ``qase``.

    The metadata helpers return a mark, so each works as a decorator on a function or a
    class; called inside a running test they also apply to that test right away.
    """

    @staticmethod
    def id(*case_ids: int) -> pytest.MarkDecorator:
        """Link a test (function, class or module via ``pytestmark``) to Qase case ids."""
        return _mark(QASE_ID, *case_ids)

    @staticmethod
    def step(title: str, expected: Optional[str] = None, data: Any = None) -> StepBlock:
        """A step: ``with qase.step("Open the cart"):`` or ``@qase.step("Log in as {user}")``."""
        return StepBlock(title, expected, data)

    @staticmethod
    def attach(path: Optional[Union[str, os.PathLike]] = None, mime: Optional[str] = None, *,
               content: Optional[Union[bytes, str]] = None,
               filename: Optional[str] = None) -> None:
        """Attach a file, or ``content=`` bytes or text, to the current step or the result."""
        recorded = context.current()
        if recorded is None:
            return
        try:
            attachment = attachments.capture(path, mime, content=content, filename=filename,
                                             store=recorded.store)
        except ValueError as exc:  # a bad call: its text says the fix
            recorded.warnings.append(f"qase.attach: {exc}")
            return
        except Exception as exc:  # never fail a test that passes with the plugin off
            recorded.warnings.append(f"qase.attach: {type(exc).__name__}: {exc}; nothing was "
                                     "attached")
            return
        recorded.add_attachment(attachment)

    @staticmethod
    def title(text: str) -> pytest.MarkDecorator:
        """The result's title in Qase."""
        recorded = context.current()
        if recorded is not None:
            recorded.title = str(text)
        return _mark(metadata.TITLE, str(text))

    @staticmethod
    def suite(path: str) -> pytest.MarkDecorator:
        """The suite path, levels separated by dots: ``qase.suite("Shop.Checkout")``."""
        recorded = context.current()
        if recorded is not None:
            recorded.suite = str(path)
        return _mark(metadata.SUITE, str(path))

    @staticmethod
    def fields(**values: Any) -> pytest.MarkDecorator:
        """Qase fields: severity, priority, layer, description, preconditions, ... ."""
        recorded = context.current()
        if recorded is not None:
            recorded.fields.update({str(k): str(v) for k, v in values.items() if v is not None})
        return _mark(metadata.FIELDS, **values)

    @staticmethod
    def author(name: str) -> pytest.MarkDecorator:
        recorded = context.current()
        if recorded is not None:
            recorded.author = str(name)
        return _mark(metadata.AUTHOR, str(name))

    @staticmethod
    def tags(*names: str) -> pytest.MarkDecorator:
        recorded = context.current()
        if recorded is not None:
            recorded.tags = [str(n) for n in names]
        return _mark(metadata.TAGS, *[str(n) for n in names])

    @staticmethod
    def muted(func: Optional[F] = None) -> Any:
        """``@qase.muted``, ``@qase.muted()``, or ``qase.muted()`` inside the test."""
        if func is not None:
            return _mark(metadata.MUTED)(func)
        recorded = context.current()
        if recorded is not None:
            recorded.muted = True
        return _mark(metadata.MUTED)

    @staticmethod
    def ignore(func: Optional[F] = None) -> Any:
        """The test runs but nothing is reported: ``@qase.ignore`` or ``qase.ignore()``."""
        if func is not None:
            return _mark(metadata.IGNORE)(func)
        recorded = context.current()
        if recorded is not None:
            recorded.ignore = True
        return _mark(metadata.IGNORE)

    @staticmethod
    def comment(text: str) -> pytest.MarkDecorator:
        """A comment, added as a line to the result's message."""
        recorded = context.current()
        if recorded is not None:
            recorded.comments.append(str(text))
        return _mark(metadata.COMMENT, str(text))

    @staticmethod
    def param(name: str, value: Any) -> pytest.MarkDecorator:
        """An extra parameter shown on the result (and part of its signature)."""
        recorded = context.current()
        if recorded is not None:
            recorded.params[str(name)] = value
        return _mark(metadata.PARAM, str(name), value)

    def __repr__(self) -> str:
        return "<pytest_qase.qase>"


qase = _Qase()
