"""Metadata markers (``qase_title``, ``qase_fields``, ...) and how they shape a result.

Each marker can sit on a function, a class or a module (``pytestmark``); the nearest one
wins, as with ``qase_id``. ``qase_fields`` and ``qase_param`` merge instead: a function's
field or parameter replaces the class's one of the same name and keeps the others. What a
test sets at runtime (``qase.title("...")`` inside the test) wins over every marker.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest

from .context import ItemContext

TITLE, SUITE, FIELDS, AUTHOR, TAGS = "qase_title", "qase_suite", "qase_fields", "qase_author", \
    "qase_tags"
MUTED, IGNORE, COMMENT, PARAM = "qase_muted", "qase_ignore", "qase_comment", "qase_param"

MARKERS = {
    TITLE: "qase_title(text): the result's title in Qase",
    SUITE: "qase_suite('A.B.C'): the result's suite path in Qase, levels separated by dots",
    FIELDS: "qase_fields(**fields): Qase fields (severity, priority, layer, description, "
            "preconditions, postconditions, or a custom field) as name=value",
    AUTHOR: "qase_author(name): the author of the Qase case (member name, email or id)",
    TAGS: "qase_tags(*tags): tags of the Qase case",
    MUTED: "qase_muted: the result is muted in Qase (it does not affect the run's status)",
    IGNORE: "qase_ignore: the test runs but its result is not reported to Qase",
    COMMENT: "qase_comment(text): a comment added to the result's message",
    PARAM: "qase_param(name, value): an extra parameter shown on the result",
}
ONE_TEXT = (TITLE, SUITE, AUTHOR, COMMENT)


def register(config: pytest.Config) -> None:
    for text in MARKERS.values():
        config.addinivalue_line("markers", text)


def check_item(item: pytest.Item) -> Optional[str]:
    """Why a metadata marker of ``item`` is unusable, or None."""
    for name in ONE_TEXT:
        for mark in item.iter_markers(name):
            if len(mark.args) != 1 or mark.kwargs or mark.args[0] in (None, ""):
                return f"@{name} takes one text, e.g. @pytest.mark.{name}('...')"
    for mark in item.iter_markers(FIELDS):
        if mark.args or not mark.kwargs:
            return f"@{FIELDS} takes name=value pairs, e.g. @pytest.mark.{FIELDS}(severity='major')"
    for mark in item.iter_markers(PARAM):
        if len(mark.args) != 2 or mark.kwargs:
            return f"@{PARAM} takes a name and a value, e.g. @pytest.mark.{PARAM}('env', 'staging')"
    return None


def _text(item: pytest.Item, name: str) -> Optional[str]:
    mark = item.get_closest_marker(name)
    return str(mark.args[0]) if mark is not None and mark.args else None


def _merged(item: pytest.Item, name: str) -> dict[str, Any]:
    """Keyword marks from module to function, nearer ones replacing farther ones by name."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers(name))):
        if name == PARAM and len(mark.args) == 2:
            merged[str(mark.args[0])] = mark.args[1]
        else:
            merged.update({str(k): v for k, v in mark.kwargs.items()})
    return merged


def extra_params(item: pytest.Item, recorded: Optional[ItemContext]) -> dict[str, Any]:
    """Parameters added by ``qase_param`` marks and runtime ``qase.param`` calls."""
    params = _merged(item, PARAM)
    if recorded is not None:
        params.update(recorded.params)
    return params


def is_ignored(item: pytest.Item, recorded: Optional[ItemContext]) -> bool:
    return (recorded is not None and recorded.ignore) or item.get_closest_marker(IGNORE) \
        is not None


def apply(result: Any, item: pytest.Item, recorded: Optional[ItemContext]) -> None:
    """Set title, suite, fields, muted and comments from the markers and runtime calls."""
    runtime = recorded or ItemContext()
    title = runtime.title or _text(item, TITLE)
    if title:
        result.title = title
    suite = runtime.suite or _text(item, SUITE)
    if suite:
        levels = [level.strip() for level in suite.split(".") if level.strip()]
        if levels:
            result.suites = levels
    fields = {name: str(value) for name, value in _merged(item, FIELDS).items()
              if value is not None}  # None leaves a field unset
    fields.update(runtime.fields)
    author = runtime.author or _text(item, AUTHOR)
    if author:
        fields["author"] = author
    tags = runtime.tags
    if tags is None:
        mark = item.get_closest_marker(TAGS)
        tags = [str(t) for t in mark.args] if mark is not None else []
    if tags:
        fields["tags"] = ",".join(tags)
    result.fields.update({k: v for k, v in fields.items() if v is not None})
    muted = runtime.muted if runtime.muted is not None else (
        item.get_closest_marker(MUTED) is not None)
    if muted:
        result.muted = True
    comments = ([_text(item, COMMENT)] if _text(item, COMMENT) else []) + runtime.comments
    if comments:
        result.message = "\n".join(filter(None, [result.message] + comments))
