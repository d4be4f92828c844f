"""What the runtime API records while one test item runs: the item's context.

Around each item's run protocol the session activates a maker of its ``ItemContext``;
``qase.step``, ``qase.attach`` and the runtime metadata calls find the context through
``current()``, which makes it on the first call. Most tests make no runtime call, so they
never pay for one. The test thread only appends to it; turning it into a payload happens
later. When the plugin is off, or outside a test, or on another thread, ``current()`` is
None and every runtime call is a no-op that costs one global read.
"""

from __future__ import annotations

import operator
import threading
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from .attachments import Attachment, AttachmentStore
    from .results import Step


@dataclass
class ItemContext:
    """Everything the runtime API recorded for the item running on ``thread_id``."""

    store: Optional[AttachmentStore] = None
    thread_id: int = field(default_factory=threading.get_ident)
    steps: list[Step] = field(default_factory=list)
    stack: list[Step] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    title: Optional[str] = None
    suite: Optional[str] = None
    fields: dict[str, str] = field(default_factory=dict)
    author: Optional[str] = None
    tags: Optional[list[str]] = None
    muted: Optional[bool] = None
    ignore: bool = False
    comments: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add_step(self, step: Step) -> None:
        """Open ``step`` under the innermost open step (or at the top)."""
        (self.stack[-1].steps if self.stack else self.steps).append(step)
        self.stack.append(step)

    def close_step(self, step: Step) -> None:
        if step in self.stack:
            del self.stack[self.stack.index(step):]

    def add_attachment(self, attachment: Attachment) -> None:
        """On the innermost open step, or on the result when no step is open."""
        (self.stack[-1].attachments if self.stack else self.attachments).append(attachment)

    def is_empty(self) -> bool:
        """True while no runtime call recorded anything (every field still at its default).

        Lets the result skip the metadata readers for the common test that uses none.
        """
        return not any(_recorded_values(self))

    def take_attempt(self) -> tuple[list[Step], list[Attachment]]:
        """Steps and attachments so far, handed to a finished attempt (reruns) and cleared."""
        steps, attachments = self.steps, self.attachments
        self.steps, self.attachments, self.stack = [], [], []
        return steps, attachments


# what runtime calls fill in (``store`` and ``thread_id`` are set by the session itself)
_recorded_values = operator.attrgetter(
    *(f.name for f in fields(ItemContext) if f.name not in ("store", "thread_id")))

_active: Optional[ItemContext] = None
_make: Optional[Callable[[], ItemContext]] = None  # makes the running item's context
_make_thread = 0  # the thread that runs the item: only it makes the context


def activate(make: Optional[Callable[[], ItemContext]]) -> None:
    """Around an item's run: ``make`` builds its context on the first runtime call; None
    after the item."""
    global _active, _make, _make_thread
    _active, _make, _make_thread = None, make, threading.get_ident()


def current() -> Optional[ItemContext]:
    """The running item's context, only on the thread that runs it."""
    context = _active
    if context is None:
        if _make is None or _make_thread != threading.get_ident():
            return None
        context = _activate_made(_make)
    elif context.thread_id != threading.get_ident():
        return None
    return context


def _activate_made(make: Callable[[], ItemContext]) -> ItemContext:
    global _active
    _active = make()
    return _active
