"""``qase.step``: a context manager and a decorator that record nested, timed steps.

As a decorator the title is formatted with the call's bound arguments (defaults applied),
so ``@qase.step("Log in as {user}")`` gives ``Log in as alice``. An exception marks the step
and every open parent failed and is re-raised. Outside a test (or with the plugin off) the
body still runs and exceptions still propagate; nothing is recorded.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional, TypeVar

import pytest

from . import clock, context
from .results import FAILED, PASSED, SKIPPED, Step, param_text

F = TypeVar("F", bound=Callable[..., Any])


def format_title(title: str, func: Callable[..., Any], args: tuple, kwargs: dict) -> str:
    """``title`` with ``{name}`` replaced by the call's arguments; unchanged if that fails."""
    if "{" not in title:
        return title
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
        bound.apply_defaults()
        return title.format_map(bound.arguments)
    except Exception:  # a title that does not fit the call is shown as written
        return title


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class StepBlock:
    """One ``qase.step(...)``: usable as ``with`` block or as a decorator."""

    def __init__(self, title: str, expected: Optional[str] = None, data: Any = None) -> None:
        self.title = str(title)
        self.expected = None if expected is None else str(expected)
        self.data = None if data is None else param_text(data)
        self._open: list[tuple[Optional[context.ItemContext], Optional[Step]]] = []

    def __enter__(self) -> StepBlock:
        self._open.append(_start(self.title, self.expected, self.data))
        return self

    def __exit__(self, kind: Any, exc: Optional[BaseException], tb: Any) -> None:
        owner, step = self._open.pop() if self._open else (None, None)
        _finish(owner, step, exc)

    def __call__(self, func: F) -> F:
        title, expected, data = self.title, self.expected, self.data
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                owner, step = _start(format_title(title, func, args, kwargs), expected, data)
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    _finish(owner, step, exc)
                    raise
                _finish(owner, step, None)
                return result

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            if context.current() is None:  # the plugin is off or no test runs: no overhead
                return func(*args, **kwargs)
            owner, step = _start(format_title(title, func, args, kwargs), expected, data)
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                _finish(owner, step, exc)
                raise
            _finish(owner, step, None)
            return result

        return run  # type: ignore[return-value]


def _start(title: str, expected: Optional[str],
           data: Optional[str]) -> tuple[Optional[context.ItemContext], Optional[Step]]:
    owner = context.current()
    if owner is None:
        return None, None
    now = clock.now()
    step = Step(title=title, expected=expected, data=data, start_time=now, end_time=now)
    owner.add_step(step)
    return owner, step


def _finish(owner: Optional[context.ItemContext], step: Optional[Step],
            exc: Optional[BaseException]) -> None:
    if owner is None or step is None:
        return
    step.end_time = max(clock.now(), step.start_time)
    if exc is not None:
        if isinstance(exc, pytest.skip.Exception):
            step.status = SKIPPED
        else:
            step.status = FAILED
            for parent in owner.stack[:owner.stack.index(step)] if step in owner.stack else []:
                parent.status = FAILED
        step.comment = describe_error(exc)
    elif step.status not in (FAILED, SKIPPED):
        step.status = PASSED
    owner.close_step(step)
