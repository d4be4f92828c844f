"""What the runtime API records while one test item runs: the item's context.

The session activates one ``ItemContext`` around each item's run protocol; ``qase.step``,
``qase.attach`` and the runtime metadata calls find it through ``current()``. The test
thread only appends to it; turning it into a payload happens later on the uploader thread.
When the plugin is off, or outside a test, or on another thread, ``current()`` is None and
every runtime call is a no-op that costs one global read.
"""

from __future__ import annotations

import operator
import threading
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Optional

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


def activate(context: Optional[ItemContext]) -> None:
    global _active
    _active = context


def current() -> Optional[ItemContext]:
    """The running item's context, only on the thread that runs it."""
    context = _active
    if context is None or context.thread_id != threading.get_ident():
        return None
    return context
