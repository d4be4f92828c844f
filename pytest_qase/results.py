"""One test item's outcome: setup, call and teardown folded into one Qase result.

The test thread gathers what it must while the item is alive (reports, marks, params,
times) and folds it into a ``Result``. ``api_json`` (the API body) runs once a test too, so
the common result's body is put together from its parts; ``to_api`` and ``to_report`` serve
the rest, and the local report on the spooler thread.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest

from . import attachments as attachment_files
from . import clock, ids, marks, metadata
from .attachments import AttachmentStore
from .context import ItemContext

MAX_PARAM_CHARS = 1024
MAX_MESSAGE_CHARS = 2000
# a stack trace longer than this is cut in the middle when the result is built, so that a
# 50 MB assertion message costs neither memory in the queue nor a 50 MB report file
MAX_TRACE_CHARS = 1_000_000
TRUNCATED = "...[truncated]"
TRIM_MARKER = "\n\n... [{} characters cut by pytest-qase] ...\n\n"
# a memory address in a repr: "<f at 0x7f3a...>" (the default) or "<tag @ 139628485703296>"
_MEMORY_ADDRESS = re.compile(r" (?:at|@) (?:0x[0-9a-fA-F]+|[0-9]{6,})(?=>)")
QASE_MARK_PREFIX = "qase_"  # every marker of the plugin (qase_id, qase_title, ...) starts so

PASSED, FAILED, BLOCKED, SKIPPED, INVALID = "passed", "failed", "blocked", "skipped", "invalid"


@dataclass
class Step:
    """A step of a result: a subtest today, a ``qase.step`` block for the runtime API."""

    title: str
    status: str = PASSED
    start_time: float = 0.0
    end_time: float = 0.0
    expected: Optional[str] = None
    data: Optional[str] = None
    comment: Optional[str] = None
    steps: list[Step] = field(default_factory=list)
    attachments: list[Any] = field(default_factory=list)
    id: str = field(default_factory=ids.new_id)

    def duration_ms(self) -> int:
        return max(0, int(round((self.end_time - self.start_time) * 1000)))

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"action": self.title}
        if self.expected:
            data["expected_result"] = self.expected
        if self.data:
            data["input_data"] = self.data
        execution: dict[str, Any] = {
            "status": self.status if self.status in _STEP_STATUSES else FAILED,
            "start_time": round(self.start_time, 3),
            "end_time": round(self.end_time, 3),
            "duration": self.duration_ms(),
        }
        if self.comment:
            execution["comment"] = self.comment
        hashes = [a.hash for a in self.attachments if getattr(a, "hash", None)]
        if hashes:
            execution["attachments"] = hashes
        return {"data": data, "execution": execution,
                "steps": [step.to_api() for step in self.steps]}

    def to_report(self, parent_id: Optional[str] = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "step_type": "text",
            "data": {"action": self.title, "expected_result": self.expected,
                     "input_data": self.data},
            "parent_id": parent_id,
            "execution": {
                "status": self.status,
                "start_time": round(self.start_time, 3),
                "end_time": round(self.end_time, 3),
                "duration": self.duration_ms(),
                "attachments": _report_attachments(self.attachments),
            },
            "steps": [step.to_report(self.id) for step in self.steps],
        }


_STEP_STATUSES = {PASSED, FAILED, BLOCKED, SKIPPED}


@dataclass
class Result:
    """What Qase gets for one test item."""

    title: str
    signature: str
    status: str
    start_time: float
    end_time: float
    duration_ms: int
    nodeid: str = ""
    case_ids: list[int] = field(default_factory=list)
    message: Optional[str] = None
    stacktrace: Optional[str] = None
    thread: str = "main"
    suites: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    param_groups: list[list[str]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    muted: bool = False
    defect: bool = False  # qase_defect: ask Qase to create a defect for this failed result
    attachments: list[Any] = field(default_factory=list)
    ignore: bool = False  # qase.ignore: the test ran, nothing is reported
    warnings: list[str] = field(default_factory=list)  # shown in the summary, never sent
    id: str = field(default_factory=ids.new_id)

    def _execution(self) -> dict[str, Any]:
        """The ``execution`` object: the same in the API body and in the report file."""
        return {
            "status": self.status,
            "start_time": round(self.start_time, 3),
            "end_time": round(self.end_time, 3),
            "duration": self.duration_ms,
            "stacktrace": self.stacktrace,
            "thread": self.thread,
        }

    def to_api(self) -> dict[str, Any]:
        """The body of one result in ``POST /v2/{code}/run/{id}/results``."""
        payload: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "signature": self.signature,
            "execution": self._execution(),
            "fields": dict(self.fields),
            "steps": [step.to_api() for step in self.steps],
            "steps_type": "classic",
            "params": dict(self.params),
            "param_groups": [list(g) for g in self.param_groups] or None,
            "relations": _relations(self.suites),
            "message": self.message,
        }
        if self.case_ids:
            payload["testops_ids"] = list(self.case_ids)
        if self.defect:
            payload["defect"] = True
        if self.muted:
            payload["fields"].setdefault("muted", "true")
        hashes = [a.hash for a in self.attachments if getattr(a, "hash", None)]
        if hashes:
            payload["attachments"] = hashes
        return payload

    def api_json(self) -> bytes:
        """``to_json_bytes(self.to_api())``: the same bytes, put together from their parts
        for the common result (no steps, fields, files, case ids or flags), about four
        times faster. It runs on the test thread, once a test.

        Anything else, and any value of another type than the plugin's own (a
        ``pytest_qase_result`` hook may set one), takes ``to_api`` and the encoder, so that
        such a result is sent, or refused, exactly as ``to_api`` has it.
        """
        if not self._is_plain():
            return to_json_bytes(self.to_api())
        try:
            text = _plain_api_text(self)
        except Exception:  # a value the parts cannot write as the encoder would: its way
            return to_json_bytes(self.to_api())
        return text.encode("utf-8", "replace")

    def _is_plain(self) -> bool:
        """Whether ``_plain_api_text`` can write this result: the common shape, in the
        plugin's own types (exact ``list``/``dict``/``str``, as ``Outcome.finish`` makes
        them)."""
        return (type(self.steps) is list and not self.steps
                and type(self.fields) is dict and not self.fields
                and type(self.attachments) is list and not self.attachments
                and type(self.case_ids) is list and not self.case_ids
                and self.defect is False and self.muted is False
                and type(self.params) is dict and type(self.param_groups) is list
                and type(self.suites) is list and _all_text(self.suites))

    def to_report(self) -> dict[str, Any]:
        """The content of ``results/<id>.json`` in the Qase Report format."""
        return {
            "id": self.id,
            "title": self.title,
            "signature": self.signature,
            "testops_ids": list(self.case_ids) or None,
            "execution": self._execution(),
            "fields": dict(self.fields),
            "attachments": _report_attachments(self.attachments),
            "steps": [step.to_report() for step in self.steps],
            "params": dict(self.params),
            "param_groups": [list(g) for g in self.param_groups] or None,
            "relations": _relations(self.suites),
            "message": self.message,
            "muted": self.muted,
        }


def _report_attachments(attachments: list[Any]) -> list[dict[str, Any]]:
    entries = (getattr(a, "report_entry", None) for a in attachments)
    return [entry for entry in entries if entry]


def _relations(suites: list[str]) -> Optional[dict[str, Any]]:
    if not suites:
        return None
    return {"suite": {"data": [{"title": title, "public_id": None} for title in suites]}}


_TEXT = json.encoder.encode_basestring  # a JSON string, as the encoder below writes it


def _plain_api_text(result: Result) -> str:
    """The JSON of a result with no steps, fields, files, case ids or flags (see
    ``api_json`` and ``Result._is_plain``); a value the encoder would write differently
    raises."""
    start, end = _time_text(result.start_time), _time_text(result.end_time)
    if type(result.duration_ms) is not int:
        raise TypeError("duration")
    groups = result.param_groups
    return (
        f'{{"id":{_TEXT(result.id)},"title":{_TEXT(result.title)},'
        f'"signature":{_TEXT(result.signature)},"execution":{{"status":{_TEXT(result.status)},'
        f'"start_time":{start},"end_time":{end},"duration":{result.duration_ms},'
        f'"stacktrace":{_text_or_null(result.stacktrace)},"thread":{_TEXT(result.thread)}}},'
        f'"fields":{{}},"steps":[],"steps_type":"classic",'
        f'"params":{{{",".join([_TEXT(k) + ":" + _TEXT(v) for k, v in result.params.items()])}}},'
        f'"param_groups":'
        f'{"[" + ",".join([_text_list(g) for g in groups]) + "]" if groups else "null"},'
        f'"relations":{_relations_text(tuple(result.suites))},'
        f'"message":{_text_or_null(result.message)}}}')


def _time_text(seconds: float) -> str:
    text = float.__repr__(round(seconds, 3))  # an int or a str raise TypeError
    if text[-1] in "nf":  # nan, inf: the encoder writes NaN, Infinity
        raise ValueError(text)
    return text


def _all_text(values: list[Any]) -> bool:
    """Whether every value is text (``True`` and ``1`` are one key to the suites' cache
    below, but not one JSON value); a join is the cheapest way to ask."""
    try:
        "".join(values)
    except TypeError:
        return False
    return True


def _text_or_null(value: Optional[str]) -> str:
    return "null" if value is None else _TEXT(value)


def _text_list(values: list[str]) -> str:
    return "[" + ",".join(map(_TEXT, values)) + "]"


@functools.lru_cache(maxsize=1024)  # the suites of one module or class, for all its tests
def _relations_text(suites: tuple[str, ...]) -> str:
    if not suites:
        return "null"
    return _encode(_C_JSON, _JSON, _relations(list(suites)))


# built once: ``json.dumps`` with options makes a new encoder on every call
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_SIGNATURE_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def _c_encoder(model: json.JSONEncoder) -> Any:
    """The C encoder behind ``model``, made once: ``JSONEncoder.encode`` makes it anew on
    every call, a fifth of the cost of encoding a small result. None without the C part."""
    try:
        return json.encoder.c_make_encoder(  # type: ignore[attr-defined]
            None, model.default, json.encoder.encode_basestring, None, model.key_separator,
            model.item_separator, model.sort_keys, model.skipkeys, model.allow_nan)
    except Exception:  # another Python: the plain encoder does the same, a little slower
        return None


_C_JSON = _c_encoder(_JSON)
_C_SIGNATURE_JSON = _c_encoder(_SIGNATURE_JSON)


def _encode(c_encoder: Any, model: json.JSONEncoder, value: Any) -> str:
    return "".join(c_encoder(value, 0)) if c_encoder is not None else model.encode(value)


def to_json_bytes(payload: Any) -> bytes:
    """UTF-8 JSON; lone surrogates and other unencodable text become '?' instead of failing."""
    return _encode(_C_JSON, _JSON, payload).encode("utf-8", "replace")


# ----------------------------------------------------------------------------- building


def param_text(value: Any) -> str:
    """A parameter's real value as text: strings as they are, anything else by repr.

    A default repr's memory address (``<function f at 0x7f...>``) changes on every run and
    would give the test a new signature, so a new Qase case, each time: it is left out.
    """
    try:
        text = value if isinstance(value, str) else repr(value)
        if text is not value and ">" in text:  # an address always sits before a ">"
            text = _MEMORY_ADDRESS.sub("", text)
    except Exception as exc:  # a broken __repr__ must not lose the result
        text = f"<{type(value).__name__} object: repr failed: {type(exc).__name__}>"
    if len(text) > MAX_PARAM_CHARS:
        text = text[: MAX_PARAM_CHARS - len(TRUNCATED)] + TRUNCATED
    return text


def _item_params(item: pytest.Item, parametrize: Optional[list[Any]] = None,
                 ) -> tuple[dict[str, str], list[list[str]]]:
    """Parameters and their groups; ``parametrize``: the item's parametrize marks, if known."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return {}, []
    params = {str(name): param_text(value) for name, value in callspec.params.items()}
    if parametrize is None:
        parametrize = list(item.iter_markers("parametrize"))
    return params, [list(group) for group in _param_groups(tuple(params), parametrize)]


# the groups of a parametrized function's cases, made once: (its names, its parametrize
# marks, by identity) -> (those marks, kept alive so that no other mark takes their id; the
# groups); one entry per parametrized function, emptied when full (sessions run one after
# another in one process, such as pytester's, would otherwise keep every session's marks)
_GROUPS: dict[tuple[Any, ...], tuple[list[Any], tuple[tuple[str, ...], ...]]] = {}
MAX_GROUPS = 4096


def _param_groups(names: tuple[str, ...], parametrize: list[Any],
                  ) -> tuple[tuple[str, ...], ...]:
    """Which parameters were given together (one ``parametrize`` call), nearest mark first;
    each of the others alone."""
    key = (names, *map(id, parametrize))
    known = _GROUPS.get(key)
    if known is not None:
        return known[1]
    groups: list[tuple[str, ...]] = []
    grouped: set[str] = set()
    for mark in parametrize:
        given = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(given, str):
            given = [n.strip() for n in given.split(",") if n.strip()]
        group = tuple(n for n in given if n in names and n not in grouped)
        if group:
            groups.append(group)
            grouped.update(group)
    groups.extend((name,) for name in names if name not in grouped)
    if len(_GROUPS) >= MAX_GROUPS:
        _GROUPS.clear()
    _GROUPS[key] = (list(parametrize), tuple(groups))
    return tuple(groups)


def scan_marks(item: pytest.Item) -> tuple[bool, list[Any]]:
    """Whether any of the plugin's markers sits on the item or a parent (class, module,
    package), and the item's parametrize marks, nearest first.

    One walk up the nodes, as ``iter_markers`` walks them, without its generators: it runs
    for every test.
    """
    qase = False
    parametrize = []
    node: Any = item
    while node is not None:
        for mark in node.own_markers:
            if mark.name == "parametrize":
                parametrize.append(mark)
            elif mark.name.startswith(QASE_MARK_PREFIX):
                qase = True
        node = node.parent
    return qase, parametrize


def _signature(base: str, case_ids: list[int], params: dict[str, str]) -> str:
    signature = base
    if case_ids:
        signature += "::" + "-".join(str(i) for i in case_ids)
    if params:
        signature += "::" + _encode(_C_SIGNATURE_JSON, _SIGNATURE_JSON, params)
    return signature


def cut_middle(text: str, limit: int) -> str:
    """Keep the head and the tail of a long text, with a visible marker in between."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(TRIM_MARKER) - 10)
    head, tail = keep // 2, keep - keep // 2
    cut = len(text) - head - tail
    return text[:head] + TRIM_MARKER.format(cut) + (text[-tail:] if tail else "")


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()[:MAX_MESSAGE_CHARS]
    return ""


def _crash_message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        reason = str(longrepr[2])
        reason = reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
        return reason[:MAX_MESSAGE_CHARS]
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return _first_line(crash.message)
    return _first_line(str(longrepr)) if longrepr is not None else ""


def _trace(report: pytest.TestReport) -> Optional[str]:
    if report.longrepr is None or report.skipped:
        return None
    try:
        text = report.longreprtext
    except Exception:  # a longrepr pytest itself cannot render
        text = str(report.longrepr)
    return cut_middle(text, MAX_TRACE_CHARS)


def _nodeid_names(nodeid: str) -> tuple[str, list[str], str]:
    """Title, suite path and the signature's base, from a node id (classes kept in order)."""
    bare = nodeid[: nodeid.index("[")] if nodeid.endswith("]") and "[" in nodeid else nodeid
    title, suites, base = _bare_names(bare)
    return title, list(suites), base


@functools.lru_cache(maxsize=4096)  # a parametrized test's cases share their bare node id
def _bare_names(bare: str) -> tuple[str, tuple[str, ...], str]:
    parts = bare.split("::")
    path, inner = parts[0], parts[1:-1]
    function = parts[-1] if len(parts) > 1 else parts[0]
    directories = [p for p in os.path.dirname(path).replace("\\", "/").split("/") if p]
    module = os.path.splitext(os.path.basename(path))[0]
    suites = directories + ([module] if module else []) + inner
    return ".".join(inner + [function]), tuple(suites), "::".join([path] + inner + [function])


def crash_result(report: pytest.TestReport, thread: str,
                 nodeid: Optional[str] = None) -> Result:
    """The result of a test whose xdist worker died while running it (no item is left)."""
    stop = clock.now()
    message = _first_line(str(report.longrepr or "worker crashed"))
    nodeid = nodeid or report.nodeid
    title, suites, base = _nodeid_names(nodeid)
    return Result(title=title, signature=base, status=FAILED, start_time=stop, end_time=stop,
                  duration_ms=0, nodeid=nodeid, message=message,
                  stacktrace=cut_middle(str(report.longrepr or ""), MAX_TRACE_CHARS),
                  thread=thread, suites=suites)


class Outcome:
    """Collects the reports of one test item while it runs, then folds them."""

    def __init__(self, item: pytest.Item, store: Optional[AttachmentStore] = None, *,
                 capture_logs: bool = False, exclude_params: tuple[str, ...] = ()) -> None:
        self.item = item
        self.store = store
        self.recorded: Optional[ItemContext] = None  # made by the first runtime call
        self.capture_logs = capture_logs
        self.exclude_params = exclude_params
        self.start_time = clock.now()
        self._started = clock.monotonic()
        self.phases: dict[str, pytest.TestReport] = {}
        self.subtests: list[Step] = []
        self.subtest_traces: list[str] = []
        self.steps: list[Step] = []
        self.attempts = 0
        self.attempt_steps: list[Step] = []  # earlier attempts under pytest-rerunfailures
        self._rerun: Optional[tuple[pytest.TestReport, list[Step]]] = None
        self._attempt_start = self.start_time

    def context(self) -> ItemContext:
        """The item's runtime context, made on the first runtime call (``context.activate``):
        most tests make none and never pay for it."""
        if self.recorded is None:
            self.recorded = ItemContext(store=self.store)
        return self.recorded

    def add(self, report: pytest.TestReport) -> None:
        if report.outcome == "rerun":  # pytest-rerunfailures: this attempt failed, one follows
            if self._rerun is None:
                self._rerun = (report, list(self.subtests))
            self.phases.clear()
            self.subtests.clear()
            self.subtest_traces.clear()
            return
        if type(report) is not pytest.TestReport:  # a subtest's report is a subclass
            context = getattr(report, "context", None)
            if context is not None and hasattr(context, "kwargs"):
                self._add_subtest(report, context)
                return
        self.phases[report.when] = report

    def new_attempt(self) -> None:
        """A rerun starts: seal the failed attempt into a step with what it recorded."""
        if self._rerun is None:
            return
        report, subtests = self._rerun
        self._rerun = None
        self.attempts += 1
        steps, files = self.recorded.take_attempt() if self.recorded else ([], [])
        now = clock.now()
        self.attempt_steps.append(Step(
            title=f"attempt {self.attempts}: failed", status=FAILED,
            start_time=self._attempt_start, end_time=max(now, self._attempt_start),
            comment=_crash_message(report) or None, steps=steps + subtests, attachments=files))
        self._attempt_start = now
    def _add_subtest(self, report: pytest.TestReport, context: Any) -> None:
        words = [str(context.msg)] if getattr(context, "msg", None) is not None else []
        words += [f"{k}={param_text(v)}" for k, v in dict(context.kwargs).items()]
        status = FAILED if report.failed else SKIPPED if report.skipped else PASSED
        stop = getattr(report, "stop", None) or clock.now()
        start = getattr(report, "start", None) or stop - float(report.duration or 0)
        step = Step(title="subtest " + (" ".join(words) or "(unnamed)"), status=status,
                    start_time=start, end_time=stop)
        if report.failed:
            step.comment = _crash_message(report)
            trace = _trace(report)
            if trace:
                self.subtest_traces.append(f"--- {step.title} ---\n{trace}")
        self.subtests.append(step)

    def finish(self, thread: str, nodeid: Optional[str] = None) -> Result:
        """The result; ``nodeid`` replaces the item's (xdist's loadgroup adds ``@group``)."""
        item = self.item
        if self._rerun is not None:  # a rerun report with no attempt after it (defensive)
            self.new_attempt()
        recorded = self.recorded
        nodeid = nodeid or item.nodeid
        end_time = clock.now()
        duration_ms = int(round((clock.monotonic() - self._started) * 1000))
        status, message, traces = self._fold()
        qase_marks, parametrize = scan_marks(item)
        # without any qase_* marker and with nothing recorded at runtime, the marker and
        # metadata readers below would find nothing: skip their many walks over the marks
        plain = not qase_marks and (recorded is None or recorded.is_empty())
        case_ids = [] if plain else marks.case_ids(item)
        params, groups = self._params(parametrize, plain)
        title, suites, base = _nodeid_names(nodeid)
        steps = self.steps + recorded.steps + self.subtests if recorded else (
            self.steps + self.subtests)
        files = list(recorded.attachments) if recorded else []
        if self.attempt_steps:  # one result for every attempt: the last one is a step too
            last = Step(title=f"attempt {self.attempts + 1}: {status}", status=status,
                        start_time=self._attempt_start, end_time=max(end_time,
                                                                     self._attempt_start),
                        steps=steps, attachments=files)
            steps, files = self.attempt_steps + [last], []
        result = Result(
            title=title,
            signature=_signature(base, case_ids, params),
            status=status,
            start_time=self.start_time,
            end_time=max(end_time, self.start_time),
            duration_ms=duration_ms,
            nodeid=nodeid,
            case_ids=case_ids,
            message=message or None,
            stacktrace=(cut_middle("\n\n".join(traces), MAX_TRACE_CHARS) or None) if traces
            else None,
            thread=thread,
            suites=suites,
            params=params,
            param_groups=groups,
            steps=steps,
            attachments=files,
        )
        if self.attempt_steps:
            tries = self.attempts + 1
            if status == PASSED:
                result.fields["is_flaky"] = "true"
                note = f"flaky: passed on attempt {tries} of {tries}"
            else:
                note = f"{status} on every one of {tries} attempts"
            result.message = "\n".join(filter(None, [result.message, note]))
        if not plain:
            metadata.apply(result, item, recorded)
            result.ignore = metadata.is_ignored(item, recorded)
        if recorded is not None:
            result.warnings.extend(recorded.warnings)
        if self.capture_logs and status in (FAILED, BLOCKED, INVALID):
            result.attachments.extend(self._captured_output())
        return result

    def _params(self, parametrize: Optional[list[Any]] = None, plain: bool = False,
                ) -> tuple[dict[str, str], list[list[str]]]:
        """Parametrize values, plus ``qase_param`` ones, minus ``qase_exclude_params``.

        ``plain``: the item has no qase_* marker and recorded nothing, so no extra params.
        """
        params, groups = _item_params(self.item, parametrize)
        extra = {} if plain else metadata.extra_params(self.item, self.recorded)
        for name, value in extra.items():
            params[name] = param_text(value)
            if not any(name in group for group in groups):
                groups.append([name])
        if self.exclude_params:
            params = {k: v for k, v in params.items() if k not in self.exclude_params}
            groups = [kept for kept in ([n for n in g if n in params] for g in groups) if kept]
        return params, groups

    def _captured_output(self) -> list[Any]:
        """stdout, stderr and log records of a failed test, as text attachments."""
        files = []
        last = list(self.phases.values())[-1:]  # pytest gives each report all sections so far
        sections = last[0].sections if last else []
        for name, prefix in (("stdout", "Captured stdout "), ("stderr", "Captured stderr "),
                             ("log", "Captured log ")):
            parts = [f"--- {title[len(prefix):]} ---\n{text}"
                     for title, text in sections if title.startswith(prefix) and text]
            if parts:
                files.append(attachment_files.capture(
                    content="\n".join(parts), filename=f"{name}.txt", mime="text/plain",
                    store=self.store))
        return files

    def _fold(self) -> tuple[str, str, list[str]]:
        """Status, one-line message and stack traces from the phases (see docs/statuses.md)."""
        setup = self.phases.get("setup")
        call = self.phases.get("call")
        teardown = self.phases.get("teardown")
        if (call is not None and call.outcome == PASSED and setup is not None
                and setup.outcome == PASSED and not self.subtests
                and (teardown is None or teardown.outcome == PASSED)
                and not hasattr(call, "wasxfail")):
            return PASSED, "", []  # most tests: every phase passed
        traces: list[str] = []
        if setup is not None and setup.failed:
            status, message = BLOCKED, "setup failed: " + _crash_message(setup)
            traces.append(_trace(setup) or "")
        elif setup is not None and setup.skipped:
            status, message = SKIPPED, _skip_message(setup)
        elif call is None:
            status, message = SKIPPED, "not run"
        elif call.failed:
            status, message = FAILED, _crash_message(call)
            traces.append(_trace(call) or "")
        elif call.skipped:
            status, message = SKIPPED, _skip_message(call)
        else:
            status = PASSED
            message = f"XPASS {call.wasxfail}".strip() if hasattr(call, "wasxfail") else ""
        failed_subtests = [s for s in self.subtests if s.status == FAILED]
        if failed_subtests and status in (PASSED, SKIPPED):
            status = FAILED
            message = f"{len(failed_subtests)} subtest(s) failed: {failed_subtests[0].title}"
        traces.extend(self.subtest_traces)
        if teardown is not None and teardown.failed:
            if status == PASSED:
                status = INVALID
                message = "teardown failed: " + _crash_message(teardown)
            traces.append("teardown:\n" + (_trace(teardown) or ""))
        return status, message, [t for t in traces if t]


def _skip_message(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return f"XFAIL {report.wasxfail}".strip()
    return _crash_message(report)
