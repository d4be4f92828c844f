"""A local HTTPS server that behaves like the Qase TestOps API, for integration tests.

Why: the plugin must be tested against real HTTP (TLS, keep-alive, retries, rate limits,
lost answers) without reaching the network.  Every request body is validated against Qase's
official OpenAPI documents (``tests/data/qase-api``), so a test fails when the plugin sends
something the real API would reject.

Use it in-process (``QaseServer``; see ``tests/conftest.py``) or as a standalone process::

    python tests/qase_server.py --port 0 --state-file stats.json

which prints ``{"url": ..., "ca_path": ..., "pid": ..., "token": ...}`` as one JSON line and
serves until SIGTERM/SIGINT, then writes its stats to the state file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import mimetypes
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypedDict, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

import trustme
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_DIR = Path(__file__).resolve().parent / "data" / "qase-api"
"""Where the official OpenAPI documents live (copied unchanged, see NOTICE.md there)."""

DEFAULT_TOKEN = "test-token-123"
BULK_RESULTS = ("v2", "/{project_code}/run/{run_id}/results", "POST")
SINGLE_RESULT = ("v2", "/{project_code}/run/{run_id}/result", "POST")
_BULK_PATH_RE = re.compile(r"/v2/[^/]+/run/[^/]+/results")
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_ERRORS_PER_REQUEST = 50
_KNOBS = frozenset(
    {
        "max_results_per_request",
        "max_body_bytes",
        "max_error_context_chars",
        "error_context_truncate_chars",
        "max_attachment_files",
        "max_attachment_bytes",
        "max_attachment_request_bytes",
        "rate_limit",
        "rate_window",
        "retry_after",
        "block_seconds",
        "latency",
        "revoked",
        "validate",
        "read_only_token",
    }
)


# --------------------------------------------------------------------------- spec handling


def _escape_pointer(segment: str) -> str:
    """Escape one JSON-pointer segment (RFC 6901), since spec paths contain '/'."""
    return segment.replace("~", "~0").replace("/", "~1")


def _walk(doc: Any, pointer: str) -> Any:
    """Follow a JSON pointer (``/a/b/0``) inside a document."""
    target = doc
    for raw in pointer.lstrip("/").split("/"):
        seg = raw.replace("~1", "/").replace("~0", "~")
        target = target[int(seg)] if isinstance(target, list) else target[seg]
    return target


@cache
def _spec(version: str) -> dict[str, Any]:
    """Load one official document once per process (they are large)."""
    with open(SPEC_DIR / f"qase-api-{version}.json", encoding="utf-8") as fh:
        return cast("dict[str, Any]", json.load(fh))


@cache
def _registry() -> Registry:
    """A registry holding both documents so ``$ref``s resolve inside their own document."""
    registry: Registry = Registry()
    for version in ("v1", "v2"):
        resource = Resource.from_contents(_spec(version), default_specification=DRAFT4)
        registry = registry.with_resource(f"urn:qase-api-{version}", resource)
    return registry


class _RefCycle(Exception):
    """A recursive schema cannot be inlined; validation then resolves refs through the registry."""


def _inline_refs(doc: dict[str, Any], node: Any, stack: tuple[str, ...] = ()) -> Any:
    """Copy a schema with its local ``$ref``s replaced by their targets (3x faster to validate).

    In OpenAPI 3.0, keywords beside ``$ref`` are ignored, so replacing the whole node is exact.
    """
    if isinstance(node, list):
        return [_inline_refs(doc, item, stack) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        if ref in stack:
            raise _RefCycle(ref)
        return _inline_refs(doc, _walk(doc, ref[1:]), (*stack, ref))
    return {key: _inline_refs(doc, value, stack) for key, value in node.items()}


@cache
def _validator(version: str, pointer: str) -> OAS30Validator:
    """Build (once) a validator for the schema at ``pointer`` in a document: it is slow to build."""
    doc = _spec(version)
    try:
        schema = _inline_refs(doc, _walk(doc, pointer))
        return OAS30Validator(schema, format_checker=oas30_format_checker)
    except _RefCycle:
        return OAS30Validator(
            {"$ref": f"urn:qase-api-{version}#{pointer}"},
            registry=_registry(),
            format_checker=oas30_format_checker,
        )


@dataclass
class _Param:
    """One path or query parameter of an operation, with where its schema lives."""

    name: str
    location: str
    required: bool
    schema: dict[str, Any]
    pointer: str


@dataclass
class _Operation:
    """One operation of the specs, matched by path template and method."""

    version: str
    template: str
    method: str
    regex: re.Pattern[str]
    literals: int
    params: list[_Param]
    body_required: bool
    media_type: str | None
    body_pointer: str | None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.version, self.template, self.method)

    @property
    def label(self) -> str:
        return f"{self.method} /{self.version}{self.template}"


def _resolve_local(doc: dict[str, Any], obj: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Follow a local ``$ref`` of a parameter object; return it and its pointer."""
    ref = obj.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return obj, None
    return cast("dict[str, Any]", _walk(doc, ref[1:])), ref[1:]


@cache
def _operations() -> dict[str, list[_Operation]]:
    """Index every operation of both documents, most specific templates first."""
    index: dict[str, list[_Operation]] = {}
    for version in ("v1", "v2"):
        doc = _spec(version)
        ops: list[_Operation] = []
        for template, item in doc["paths"].items():
            item_ptr = "/paths/" + _escape_pointer(template)
            segments = template.strip("/").split("/")
            pattern = "/".join(
                f"(?P<{s[1:-1]}>[^/]+)" if s.startswith("{") else re.escape(s) for s in segments
            )
            regex = re.compile("/" + pattern)
            literals = sum(1 for s in segments if not s.startswith("{"))
            for method, op in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                params: dict[tuple[str, str], _Param] = {}
                sources = [
                    ("", item.get("parameters", [])),
                    (f"/{method}", op.get("parameters", [])),
                ]
                for prefix, plist in sources:
                    for i, raw in enumerate(plist):
                        resolved, ref_ptr = _resolve_local(doc, raw)
                        ptr = ref_ptr or f"{item_ptr}{prefix}/parameters/{i}"
                        if resolved.get("in") not in ("path", "query"):
                            continue
                        params[(resolved["name"], resolved["in"])] = _Param(
                            name=resolved["name"],
                            location=resolved["in"],
                            required=bool(resolved.get("required", False)),
                            schema=resolved.get("schema", {}),
                            pointer=ptr + "/schema",
                        )
                body = op.get("requestBody")
                media_type = body_ptr = None
                if body:
                    media_type = next(iter(body["content"]))
                    body_ptr = (
                        f"{item_ptr}/{method}/requestBody/content/"
                        f"{_escape_pointer(media_type)}/schema"
                    )
                ops.append(
                    _Operation(
                        version=version,
                        template=template,
                        method=method.upper(),
                        regex=regex,
                        literals=literals,
                        params=list(params.values()),
                        body_required=bool(body and body.get("required", False)),
                        media_type=media_type,
                        body_pointer=body_ptr,
                    )
                )
        ops.sort(key=lambda o: -o.literals)
        index[version] = ops
    return index


def _match(method: str, path: str) -> tuple[_Operation | None, dict[str, str], list[str]]:
    """Find the operation for a request; returns (op, path params, allowed methods if none)."""
    version, _, rest = path.lstrip("/").partition("/")
    candidates = _operations().get(version, [])
    allowed: list[str] = []
    for op in candidates:
        m = op.regex.fullmatch("/" + rest)
        if m is None:
            continue
        if op.method == method:
            return op, {k: unquote(v) for k, v in m.groupdict().items()}, []
        if op.method not in allowed:
            allowed.append(op.method)
    return None, {}, allowed


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    """Turn a query/path string into the JSON type its schema expects, when it looks like one."""
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


def _field_name(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "body"


def _reject_constant(name: str) -> Any:
    """json.loads hook: NaN/Infinity are not JSON and the real API refuses them."""
    raise ValueError(f"invalid JSON constant {name}")


# --------------------------------------------------------------------------- records and state


@dataclass
class RequestRecord:
    """What the server saw of one request (never the token value, only whether it was good)."""

    seq: int
    method: str
    path: str
    query: dict[str, list[str]]
    time: float
    body_size: int
    body: Any
    headers: list[str]
    token_ok: bool
    user_agent: str | None
    status: int | None = None
    endpoint: str | None = None
    fault: str | None = None
    dropped: bool = False
    answered_at: float | None = None


class RunState(TypedDict):
    """A test run as stored by the server (``QaseServer.runs`` values)."""

    id: int
    project: str
    title: str
    body: dict[str, Any]
    created_at: float
    completed: bool
    completed_at: float | None
    completed_order: int | None
    complete_calls: int
    results: dict[str, dict[str, Any]]
    result_times: dict[str, float]
    last_result_at: float | None
    last_result_order: int | None


@dataclass
class Fault:
    """An injected failure for the next ``times`` matching requests (``None`` = forever)."""

    method: str | None
    path: re.Pattern[str]
    status: int | None
    times: int | None
    body: Any
    headers: dict[str, str]
    apply_first: bool
    drop: bool
    delay: float
    redirect_to: str | None
    hits: int = 0

    @property
    def passthrough(self) -> bool:
        """True when the fault only delays/drops and the normal answer is otherwise kept."""
        return self.status is None and self.redirect_to is None and self.body is None

    def describe(self) -> str:
        parts = []
        if self.apply_first:
            parts.append("apply_first")
        if self.drop:
            parts.append("drop")
        elif self.redirect_to:
            parts.append(f"redirect:{self.status or 307}")
        elif not self.passthrough:
            parts.append(f"status:{self.status}")
        if self.delay:
            parts.append(f"delay:{self.delay}")
        return ",".join(parts) or "passthrough"


@dataclass
class _Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    received: float
    json: Any = None
    json_error: str | None = None


def _json_response(status: int, obj: Any, headers: Iterable[tuple[str, str]] = ()) -> _Response:
    data = json.dumps(obj, separators=(",", ":")).encode()
    return _Response(status, data, [("Content-Type", "application/json"), *headers])


def _error(status: int, message: str, fields: list[tuple[str, str]] | None = None) -> _Response:
    body: dict[str, Any] = {"status": False, "errorMessage": message}
    if fields is not None:
        body["errorFields"] = [{"field": f, "error": e} for f, e in fields]
    return _json_response(status, body)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


# --------------------------------------------------------------------------- HTTP plumbing


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that skips the reverse DNS lookup and keeps errors quiet."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], qase: QaseServer) -> None:
        self.qase = qase
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which may stall without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, OSError):
            self.qase._note_internal_error(f"{type(exc).__name__}: {exc}")


class _Handler(BaseHTTPRequestHandler):
    """Reads each request fully, hands it to the QaseServer, writes or withholds the answer."""

    protocol_version = "HTTP/1.1"
    server_version = "QaseTestServer/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 60
    server: _HTTPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging: tests assert on records instead."""

    def handle(self) -> None:
        qase = self.server.qase
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()  # here, not in accept(): keeps the loop free
            except OSError:
                self.close_connection = True
                return
        qase._conn_opened(self.connection)
        try:
            super().handle()
        except OSError:
            pass  # peer went away or stop() shut the socket
        finally:
            qase._conn_closed(self.connection)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        data = self.rfile.read(length) if length else b""
        if len(data) != length:
            raise ValueError("body shorter than Content-Length")
        return data

    def _send(self, resp: _Response) -> None:
        self.send_response(resp.status)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    def _dispatch(self) -> None:
        received = time.time()
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._send(_error(400, f"Malformed request: {exc}"))
            return
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        qase = self.server.qase
        if split.path.startswith("/_test/"):
            self._send(qase._control(self.command, split.path, body))
            return
        req = _Request(self.command, split.path, query, self.headers, body, received)
        resp = qase._serve(req)
        if resp is None or qase._stopping.is_set():
            self.close_connection = True  # drop: close the connection, answer nothing
            return
        self._send(resp)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


# --------------------------------------------------------------------------- the server


class QaseServer:
    """A fake Qase API over real HTTPS (or plain HTTP) on 127.0.0.1, recording what it gets.

    Knobs are plain attributes, read at each request, so a test may change them while the
    server runs (or call ``configure(**knobs)``).  All recorded state sits behind one lock;
    the public accessors return snapshots.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        projects: Iterable[str] = ("DEMO",),
        tls: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        read_only_token: str | None = None,
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.token = token
        self.projects: set[str] = set(projects)
        self.tls = tls
        self.host = host
        self.port = port
        self.state_file = Path(state_file) if state_file is not None else None
        # knobs
        self.max_results_per_request: int = 2000
        self.max_body_bytes: int | None = None
        self.max_error_context_chars: int = 4_194_304
        self.error_context_truncate_chars: int = 262_144
        self.max_attachment_files: int = 20
        self.max_attachment_bytes: int = 32 * 1024 * 1024
        self.max_attachment_request_bytes: int = 128 * 1024 * 1024
        self.rate_limit: int | None = None
        self.rate_window: float = 60.0
        self.retry_after: int | str = 60
        self.block_seconds: float | None = None
        self.latency: float = 0.0
        self.revoked: bool = False
        self.validate: bool = True
        self.read_only_token: str | None = read_only_token
        # configurable data
        self.environments: dict[str, list[dict[str, Any]]] = {}
        self.plans: dict[str, dict[int, dict[str, Any]]] = {}
        self.configuration_groups: dict[str, list[dict[str, Any]]] = {}
        self.public_runs: set[int] = set()
        # recorded state
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._runs: dict[int, RunState] = {}
        self._attachments: dict[str, dict[str, Any]] = {}
        self._validation_errors: list[str] = []
        self._internal_errors: list[str] = []
        self._times_429: list[float] = []
        self._faults: list[Fault] = []
        self._rl_hits: dict[str, deque[float]] = {}
        self._rl_blocked: dict[str, float] = {}
        self._conns: set[socket.socket] = set()
        self.duplicates_ignored = 0
        self.connections_opened = 0
        self._next_run_id = 1
        self._next_env_id = 1
        self._next_plan_id = 1
        self._next_config_id = 1
        self._auto_key = 0
        self._order = 0
        # runtime
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None
        self._tmpdir = tempfile.mkdtemp(prefix="qase-server-")
        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert("localhost", "127.0.0.1")
        self.ca_path = os.path.join(self._tmpdir, "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:43123`` (API paths go under it: ``/v1/...``)."""
        if self._url is None:
            raise RuntimeError("QaseServer is not started")
        return self._url

    def start(self) -> QaseServer:
        """Bind, wrap in TLS and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("QaseServer already started")
        _operations()  # build the index before the first request, not during it
        httpd = _HTTPServer((self.host, self.port), self)
        if self.tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._cert.configure_cert(ctx)
            httpd.socket = ctx.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._httpd = httpd
        self.port = httpd.server_port
        self._url = f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"qase-server-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop quickly even with stalled handlers or idle keep-alive connections."""
        httpd = self._httpd
        if self._stopping.is_set():
            return
        self._stopping.set()
        if httpd is None:  # never started: only the temporary CA files to remove
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.state_file is not None:
            self.write_state()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> QaseServer:  # noqa: PYI034 - typing.Self is Python >= 3.11
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self, project: str = "DEMO") -> dict[str, str]:
        """Environment variables pointing the plugin at this server (CA path is separate)."""
        return {"QASE_API_TOKEN": self.token, "QASE_URL": self.url, "QASE_PROJECT": project}

    def configure(self, **knobs: Any) -> None:
        """Set several knobs at once, refusing unknown names (typos would silently do nothing)."""
        unknown = set(knobs) - _KNOBS
        if unknown:
            raise TypeError(f"unknown QaseServer knobs: {sorted(unknown)}")
        with self._lock:
            for name, value in knobs.items():
                setattr(self, name, value)

    # ------------------------------------------------------------------ test-facing helpers

    def inject(
        self,
        method: str | None = "POST",
        path: str = ".*",
        status: int | None = 503,
        times: int | None = 1,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        apply_first: bool = False,
        drop: bool = False,
        delay: float = 0.0,
        redirect_to: str | None = None,
    ) -> Fault:
        """Make the next ``times`` requests matching ``method`` and ``path`` (regex searched in
        the URL path; method None = any) fail instead of being served.

        ``status=None`` keeps the normal answer (use with ``delay``/``drop``); ``apply_first``
        serves the request normally (results stored) before answering with the fault or
        dropping; ``redirect_to`` answers 307 (or ``status`` if 3xx) with that Location.
        """
        if redirect_to is not None and (status is None or not 300 <= status < 400):
            status = 307
        fault = Fault(
            method=method.upper() if method else None,
            path=re.compile(path),
            status=status,
            times=times,
            body=body,
            headers=dict(headers or {}),
            apply_first=apply_first,
            drop=drop,
            delay=delay,
            redirect_to=redirect_to,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def add_environment(
        self, slug: str, title: str | None = None, project: str = "DEMO", host: str | None = None
    ) -> dict[str, Any]:
        """Add an environment to a project (for ``GET /v1/environment/{code}``)."""
        with self._lock:
            env = {
                "id": self._next_env_id,
                "slug": slug,
                "title": title or slug,
                "description": None,
                "host": host,
            }
            self._next_env_id += 1
            self.environments.setdefault(project, []).append(env)
        return dict(env)

    def add_plan(
        self, case_ids: Iterable[int], title: str = "plan", project: str = "DEMO"
    ) -> int:
        """Add a test plan holding these cases (for ``GET /v1/plan/{code}/{id}``); its id."""
        with self._lock:
            plan_id = self._next_plan_id
            self._next_plan_id += 1
            self.plans.setdefault(project, {})[plan_id] = {
                "id": plan_id,
                "title": title,
                "cases": [{"case_id": int(c), "assignee_id": None} for c in case_ids],
            }
        return plan_id

    def add_configuration(self, group: str, title: str, project: str = "DEMO") -> int:
        """Add a configuration (and its group when new); returns the configuration's id."""
        with self._lock:
            return self._add_configuration(project, self._group(project, group)["id"], title)

    def _group(self, project: str, title: str) -> dict[str, Any]:
        """The configuration group with this title, created when missing (lock held)."""
        groups = self.configuration_groups.setdefault(project, [])
        for group in groups:
            if group["title"] == title:
                return group
        group = {"id": self._next_config_id, "title": title, "configurations": []}
        self._next_config_id += 1
        groups.append(group)
        return group

    def _add_configuration(self, project: str, group_id: int, title: str) -> int:
        """Add a configuration to an existing group (lock held); returns its id."""
        for group in self.configuration_groups.get(project, []):
            if group["id"] == group_id:
                config_id = self._next_config_id
                self._next_config_id += 1
                group["configurations"].append({"id": config_id, "title": title})
                return config_id
        raise KeyError(group_id)

    @property
    def requests(self) -> list[RequestRecord]:
        """Records of every API request received, in arrival order (control calls excluded)."""
        with self._lock:
            return list(self._records)

    @property
    def runs(self) -> dict[int, RunState]:
        """Snapshot of the runs: id -> RunState (results keyed by their id, in arrival order)."""
        with self._lock:
            return {rid: self._copy_run(run) for rid, run in self._runs.items()}

    def run(self, run_id: int) -> RunState:
        with self._lock:
            return self._copy_run(self._runs[run_id])

    @staticmethod
    def _copy_run(run: RunState) -> RunState:
        copy = cast(RunState, dict(run))
        copy["results"] = dict(run["results"])
        copy["result_times"] = dict(run["result_times"])
        return copy

    def results(self, run_id: int | None = None) -> list[dict[str, Any]]:
        """Stored results (one per idempotency key) of one run, or of all runs by run id."""
        with self._lock:
            runs = [self._runs[run_id]] if run_id is not None else list(self._runs.values())
            return [r for run in runs for r in run["results"].values()]

    def results_requests(self) -> list[RequestRecord]:
        """Records of the bulk-result POSTs, whatever they were answered."""
        return [r for r in self.requests if r.method == "POST" and _BULK_PATH_RE.fullmatch(r.path)]

    @property
    def attachments(self) -> dict[str, dict[str, Any]]:
        """Uploaded files by sha1 hash: filename, mime, extension, size, content, project."""
        with self._lock:
            return {h: dict(a) for h, a in self._attachments.items()}

    @property
    def validation_errors(self) -> list[str]:
        """Every spec violation seen, as "METHOD /path: field: error" (tests assert == [])."""
        with self._lock:
            return list(self._validation_errors)

    @property
    def internal_errors(self) -> list[str]:
        """Bugs of this server itself (answered 500); should stay empty."""
        with self._lock:
            return list(self._internal_errors)

    @property
    def received_429(self) -> int:
        """How many 429 answers were sent (rate limit or injected)."""
        with self._lock:
            return len(self._times_429)

    @property
    def times_429(self) -> list[float]:
        with self._lock:
            return list(self._times_429)

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        """Number of recorded requests with this method (None = any) and path prefix."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper()) and r.path.startswith(path_prefix)
        )

    def max_requests_in_window(self, seconds: float = 60.0) -> int:
        """Peak number of requests received within any sliding window of ``seconds``."""
        times = sorted(r.time for r in self.requests)
        best = start = 0
        for end, t in enumerate(times):
            while t - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    def stats(self) -> dict[str, Any]:
        """Counters as JSON-able data (the ``GET /_test/stats`` answer and the state file)."""
        records = self.requests
        runs = self.runs
        return {
            "url": self._url,
            "requests": len(records),
            "by_status": dict(Counter(str(r.status) for r in records)),
            "by_endpoint": dict(Counter(r.endpoint or f"{r.method} {r.path}" for r in records)),
            "connections_opened": self.connections_opened,
            "runs": {
                str(rid): {
                    "project": run["project"],
                    "title": run["title"],
                    "completed": run["completed"],
                    "results": len(run["results"]),
                    "completed_after_last_result": run["completed_order"] is not None
                    and (run["last_result_order"] or 0) < run["completed_order"],
                }
                for rid, run in runs.items()
            },
            "results": sum(len(run["results"]) for run in runs.values()),
            "duplicates_ignored": self.duplicates_ignored,
            "validation_errors": self.validation_errors,
            "internal_errors": self.internal_errors,
            "received_429": self.received_429,
            "max_requests_in_window_60": self.max_requests_in_window(60),
            "attachments": len(self._attachments),
        }

    def write_state(self) -> None:
        """Write ``stats()`` atomically to ``state_file`` (for multi-process tests)."""
        if self.state_file is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.stats(), indent=1), encoding="utf-8")
        os.replace(tmp, self.state_file)

    # ------------------------------------------------------------------ internals

    def _note_internal_error(self, text: str) -> None:
        with self._lock:
            self._internal_errors.append(text)

    def _conn_opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)
            self.connections_opened += 1

    def _conn_closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _next_order(self) -> int:
        """Monotonic event counter (call with the lock held)."""
        self._order += 1
        return self._order

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method not in (None, "*", method) or not fault.path.search(path):
                    continue
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _token_ok(self, headers: Message) -> bool:
        token = headers.get("Token")
        return (
            not self.revoked
            and token is not None
            and token
            in (
                self.token,
                self.read_only_token,
            )
        )

    def _serve(self, req: _Request) -> _Response | None:
        """Serve one API request; None means "drop the connection without an answer"."""
        media = req.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if req.body and media == "application/json":
            try:  # parsed once, strictly: the record keeps it and validation uses it
                req.json = json.loads(req.body.decode("utf-8"), parse_constant=_reject_constant)
            except ValueError as exc:  # UnicodeDecodeError is a ValueError too
                req.json_error = f"invalid JSON: {exc}"
        with self._lock:
            record = RequestRecord(
                seq=len(self._records) + 1,
                method=req.method,
                path=req.path,
                query=req.query,
                time=req.received,
                body_size=len(req.body),
                body=req.json,
                headers=list(req.headers.keys()),
                token_ok=self._token_ok(req.headers),
                user_agent=req.headers.get("User-Agent"),
            )
            self._records.append(record)
        fault = self._take_fault(req.method, req.path)
        self._sleep(self.latency)
        resp: _Response | None
        try:
            if fault is None:
                resp = self._process(req, record)
            else:
                record.fault = fault.describe()
                processed = None
                if fault.apply_first or fault.passthrough:
                    processed = self._process(req, record)
                self._sleep(fault.delay)
                if fault.drop:
                    resp = None
                elif fault.passthrough:
                    resp = processed
                else:
                    resp = self._fault_response(fault)
        except Exception as exc:  # noqa: BLE001 - a server bug must not look like a network failure
            self._note_internal_error(f"{req.method} {req.path}: {type(exc).__name__}: {exc}")
            resp = _error(500, f"Internal test-server error: {exc}")
        with self._lock:
            record.answered_at = time.time()
            if resp is None:
                record.dropped = True
            else:
                record.status = resp.status
                if resp.status == 429:
                    self._times_429.append(record.answered_at)
        return resp

    @staticmethod
    def _fault_response(fault: Fault) -> _Response:
        status = fault.status or 503
        headers: list[tuple[str, str]] = []
        if fault.redirect_to is not None:
            headers.append(("Location", fault.redirect_to))
        body = fault.body
        if body is None:
            resp = _json_response(
                status, {"status": False, "errorMessage": HTTPStatus(status).phrase}, headers
            )
        elif isinstance(body, bytes):
            resp = _Response(status, body, [("Content-Type", "application/octet-stream"), *headers])
        elif isinstance(body, str):
            kind = "text/html" if body.lstrip().startswith("<") else "text/plain"
            resp = _Response(
                status, body.encode(), [("Content-Type", f"{kind}; charset=utf-8"), *headers]
            )
        else:
            resp = _json_response(status, body, headers)
        if fault.headers:
            names = {k.lower() for k in fault.headers}
            resp.headers = [(k, v) for k, v in resp.headers if k.lower() not in names]
            resp.headers.extend(fault.headers.items())
        return resp

    def _rate_check(self, token: str) -> tuple[bool, list[tuple[str, str]]]:
        """Sliding-window limit per token; returns (limited, headers to add)."""
        with self._lock:
            limit = self.rate_limit
            if limit is None:
                return False, []
            key = hashlib.sha256(token.encode()).hexdigest()
            now = time.time()
            window = float(self.rate_window)
            hits = self._rl_hits.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            blocked_until = self._rl_blocked.get(key, 0.0)
            limited = now < blocked_until
            if not limited and len(hits) >= limit:
                limited = True
                block = self.block_seconds
                if block is None:
                    try:
                        block = float(self.retry_after)
                    except ValueError:  # an HTTP-date Retry-After: fall back to a minute
                        block = 60.0
                blocked_until = now + block
                self._rl_blocked[key] = blocked_until
            if not limited:
                hits.append(now)
            reset = blocked_until if limited else (hits[0] + window if hits else now + window)
            headers = [
                ("X-RateLimit-Limit", str(limit)),
                ("X-RateLimit-Remaining", "0" if limited else str(max(0, limit - len(hits)))),
                ("X-RateLimit-Reset", str(math.ceil(reset))),
            ]
            if limited:
                headers.append(("Retry-After", str(self.retry_after)))
            return limited, headers

    def _reject(self, req: _Request, errors: list[tuple[str, str]]) -> _Response:
        """Answer 400 with errorFields and keep the errors for the test to assert on."""
        shown = errors[:_MAX_ERRORS_PER_REQUEST]
        if len(errors) > len(shown):
            shown.append(("body", f"... and {len(errors) - len(shown)} more errors"))
        with self._lock:
            self._validation_errors.extend(f"{req.method} {req.path}: {f}: {e}" for f, e in shown)
        return _error(400, "Data is invalid.", shown)

    def _process(self, req: _Request, record: RequestRecord) -> _Response:
        op, path_params, allowed = _match(req.method, req.path)
        if op is not None:
            record.endpoint = op.label
        if not self._token_ok(req.headers):
            return _error(401, "Unauthorized")
        token = cast(str, req.headers.get("Token"))
        limited, rl_headers = self._rate_check(token)
        if limited:
            return _json_response(
                429, {"status": False, "errorMessage": "API rate limit exceeded."}, rl_headers
            )
        resp = self._process_authorized(req, op, path_params, allowed, token)
        resp.headers.extend(rl_headers)
        return resp

    def _process_authorized(
        self,
        req: _Request,
        op: _Operation | None,
        path_params: dict[str, str],
        allowed: list[str],
        token: str,
    ) -> _Response:
        if op is None:
            if allowed:
                resp = _error(405, f"Method {req.method} not allowed on {req.path}")
                resp.headers.append(("Allow", ", ".join(allowed)))
                return resp
            return _error(404, f"Not found: {req.method} {req.path}")
        if req.method in _WRITE_METHODS and token != self.token:
            return _error(403, "Forbidden: the token is read-only.")
        handler = _HANDLERS.get(op.key)
        if handler is None:
            return _error(404, f"Not implemented by the local Qase test server: {op.label}")
        max_body = self.max_body_bytes
        if max_body is not None and len(req.body) > max_body:
            return _error(413, "Payload Too Large.")
        params, errors = self._check_params(req, op, path_params)
        if not errors and op.media_type is not None:
            errors = self._check_content(req, op)
        if errors:
            return self._reject(req, errors)
        if op.key == BULK_RESULTS:
            too_big = self._check_bulk_limits(req.json)
            if too_big is not None:
                return too_big
        if op.media_type == "application/json" and op.body_pointer is not None and self.validate:
            errors = self._check_body(req, op)
            if errors:
                return self._reject(req, errors)
        return handler(self, req, params)

    @staticmethod
    def _check_params(
        req: _Request, op: _Operation, path_params: dict[str, str]
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        values: dict[str, Any] = {}
        errors: list[tuple[str, str]] = []
        for param in op.params:
            if param.location == "path":
                raw: str | None = path_params.get(param.name)
            else:
                found = req.query.get(param.name)
                raw = found[0] if found else None
            if raw is None:
                if param.required:
                    errors.append((param.name, "is required"))
                elif "default" in param.schema:
                    values[param.name] = param.schema["default"]
                continue
            value = _coerce(raw, param.schema)
            for err in _validator(op.version, param.pointer).iter_errors(value):
                errors.append((param.name, err.message))
            values[param.name] = value
        return values, errors

    @staticmethod
    def _check_content(req: _Request, op: _Operation) -> list[tuple[str, str]]:
        ctype = req.headers.get("Content-Type", "")
        media = ctype.split(";")[0].strip().lower()
        if media != op.media_type:
            return [("Content-Type", f"expected {op.media_type}, got {ctype or 'nothing'}")]
        if not req.body:
            return [("body", "request body is required")] if op.body_required else []
        if req.json_error is not None:
            return [("body", req.json_error)]
        return []

    @staticmethod
    def _check_body(req: _Request, op: _Operation) -> list[tuple[str, str]]:
        if req.json is None and not req.body:
            return []
        validator = _validator(op.version, cast(str, op.body_pointer))
        errors = [
            (_field_name(err.absolute_path), err.message)
            for err in sorted(validator.iter_errors(req.json), key=lambda e: list(map(str, e.path)))
        ]
        # Prose in the spec: "Cannot be specified together with testops_ids".
        if op.key == BULK_RESULTS and isinstance(req.json, dict):
            items = req.json.get("results")
            pairs = list(enumerate(items)) if isinstance(items, list) else []
            prefix = "results."
        elif op.key == SINGLE_RESULT:
            pairs, prefix = [("", req.json)], ""
        else:
            pairs, prefix = [], ""
        for idx, item in pairs:
            if (
                isinstance(item, dict)
                and item.get("testops_id") is not None
                and item.get("testops_ids") is not None
            ):
                name = f"{prefix}{idx}.testops_ids" if prefix else "testops_ids"
                errors.append((name, "testops_id and testops_ids cannot both be set"))
        return errors

    def _check_bulk_limits(self, body: Any) -> _Response | None:
        """413 rules of the bulk endpoint, applied before anything is stored."""
        items = body.get("results") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return None
        if len(items) > self.max_results_per_request:
            return _error(
                413, f"Too many results in one request (max {self.max_results_per_request})."
            )
        total = 0
        for item in items:
            execution = item.get("execution") if isinstance(item, dict) else None
            context = execution.get("error_context") if isinstance(execution, dict) else None
            if isinstance(context, str):
                total += len(context)
        if total > self.max_error_context_chars:
            return _error(413, "Combined execution.error_context is too large.")
        return None

    # ------------------------------------------------------------------ endpoint handlers

    def _h_get_project(self, req: _Request, params: dict[str, Any]) -> _Response:
        code = params["code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        with self._lock:
            runs = [r for r in self._runs.values() if r["project"] == code]
            active = sum(1 for r in runs if not r["completed"])
        return _json_response(
            200,
            {
                "status": True,
                "result": {
                    "title": f"{code} project",
                    "code": code,
                    "counts": {
                        "cases": 0,
                        "suites": 0,
                        "milestones": 0,
                        "runs": {"total": len(runs), "active": active},
                        "defects": {"total": 0, "open": 0},
                    },
                },
            },
        )

    def _h_create_run(self, req: _Request, params: dict[str, Any]) -> _Response:
        code = params["code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        body = cast("dict[str, Any]", req.json)
        with self._lock:
            run_id = self._next_run_id
            self._next_run_id += 1
            self._runs[run_id] = RunState(
                id=run_id,
                project=code,
                title=body["title"],
                body=body,
                created_at=time.time(),
                completed=False,
                completed_at=None,
                completed_order=None,
                complete_calls=0,
                results={},
                result_times={},
                last_result_at=None,
                last_result_order=None,
            )
        return _json_response(200, {"status": True, "result": {"id": run_id}})

    def _find_run(self, code: str, run_id: int) -> RunState | None:
        """The run if it exists in that project (call with the lock held)."""
        run = self._runs.get(run_id)
        return run if run is not None and run["project"] == code else None

    def _h_get_run(self, req: _Request, params: dict[str, Any]) -> _Response:
        code = params["code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        with self._lock:
            run = self._find_run(code, params["id"])
            if run is None:
                return _error(404, "Run not found.")
            statuses = Counter(
                str(r.get("execution", {}).get("status", "untested"))
                for r in run["results"].values()
            )
            body = run["body"]
            env = None
            for item in self.environments.get(code, []):
                if item["id"] == body.get("environment_id") or item["slug"] == body.get(
                    "environment_slug"
                ):
                    env = {
                        "title": item["title"],
                        "description": "",
                        "slug": item["slug"],
                        "host": item.get("host") or "",
                    }
            result = {
                "id": run["id"],
                "run_id": run["id"],
                "title": run["title"],
                "description": body.get("description"),
                "status": 1 if run["completed"] else 0,
                "status_text": "complete" if run["completed"] else "active",
                "start_time": _iso(run["created_at"]),
                "end_time": _iso(run["completed_at"]),
                "public": run["id"] in self.public_runs,
                "stats": {"total": len(run["results"]), "statuses": dict(statuses)},
                "time_spent": 0,
                "elapsed_time": 0,
                "environment": env,
                "milestone": None,
                "custom_fields": [],
                "tags": [
                    {"title": t, "internal_id": i} for i, t in enumerate(body.get("tags", []))
                ],
                "cases": list(body.get("cases", [])),
                "plan_id": body.get("plan_id"),
                "configurations": list(body.get("configurations", [])),
            }
        return _json_response(200, {"status": True, "result": result})

    def _h_complete_run(self, req: _Request, params: dict[str, Any]) -> _Response:
        code = params["code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        with self._lock:
            run = self._find_run(code, params["id"])
            if run is None:
                return _error(404, "Run not found.")
            run["complete_calls"] += 1
            if not run["completed"]:  # completing twice is accepted, the first time is kept
                run["completed"] = True
                run["completed_at"] = time.time()
                run["completed_order"] = self._next_order()
        return _json_response(200, {"status": True})

    def _store_results(
        self, params: dict[str, Any], items: list[dict[str, Any]]
    ) -> _Response | None:
        """Store results idempotently by ``id``; returns an error answer, or None when stored."""
        code = params["project_code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        limit = self.error_context_truncate_chars
        with self._lock:
            run = self._find_run(code, params["run_id"])
            if run is None:
                return _error(404, "Run not found.")
            if run["completed"]:
                return _error(400, "Run is already completed.")
            now = time.time()
            for item in items:
                key = item.get("id")
                if key is None:
                    self._auto_key += 1
                    key = f"_auto-{self._auto_key}"
                if key in run["results"]:
                    self.duplicates_ignored += 1
                    continue
                stored = dict(item)
                execution = stored.get("execution")
                if isinstance(execution, dict):
                    context = execution.get("error_context")
                    if isinstance(context, str) and len(context) > limit:
                        stored["execution"] = {**execution, "error_context": context[:limit]}
                run["results"][key] = stored
                run["result_times"][key] = now
            run["last_result_at"] = now
            run["last_result_order"] = self._next_order()
        return None

    def _h_results(self, req: _Request, params: dict[str, Any]) -> _Response:
        items = cast("dict[str, Any]", req.json).get("results") or []
        failed = self._store_results(params, items)
        return failed or _json_response(202, {"status": True})

    def _h_result(self, req: _Request, params: dict[str, Any]) -> _Response:
        item = cast("dict[str, Any]", req.json)
        failed = self._store_results(params, [item])
        if failed is not None:
            return failed
        key = str(item.get("id") or "")
        return _json_response(
            202,
            {
                "status": True,
                "result": {
                    "case_id": item.get("testops_id"),
                    "hash": hashlib.sha1(key.encode()).hexdigest(),
                },
            },
        )

    def _h_upload(self, req: _Request, params: dict[str, Any]) -> _Response:
        code = params["code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        if len(req.body) > self.max_attachment_request_bytes:
            return _error(413, "Payload Too Large.")
        try:
            parts = _parse_multipart(req.headers.get("Content-Type", ""), req.body)
        except ValueError as exc:
            return self._reject(req, [("body", f"invalid multipart body: {exc}")])
        files = [p for p in parts if p[0] == "file[]"]
        if not files:
            names = sorted({p[0] for p in parts})
            return self._reject(req, [("file[]", f"no file[] parts (got {names})")])
        if len(files) > self.max_attachment_files:
            return _error(
                400,
                f"Too many files (max {self.max_attachment_files} per request).",
                [("file[]", f"at most {self.max_attachment_files} files")],
            )
        if any(len(p[3]) > self.max_attachment_bytes for p in files):
            return _error(413, "File is too large.")
        out = []
        with self._lock:
            for _name, filename, mime, content in files:
                digest = hashlib.sha1(content).hexdigest()
                filename = filename or "file"
                extension = Path(filename).suffix.lstrip(".")
                mime = mime or mimetypes.guess_type(filename)[0] or "application/octet-stream"
                url = f"{self.url}/attachment/{digest}/{quote(filename)}"
                self._attachments[digest] = {
                    "filename": filename,
                    "mime": mime,
                    "extension": extension,
                    "size": len(content),
                    "content": content,
                    "project": code,
                    "url": url,
                }
                out.append(
                    {
                        "filename": filename,
                        "mime": mime,
                        "extension": extension,
                        "url": url,
                        "size": len(content),
                        "hash": digest,
                    }
                )
        return _json_response(200, {"status": True, "result": out})

    def _h_environments(self, req: _Request, params: dict[str, Any]) -> _Response:
        code = params["code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        with self._lock:
            envs = [dict(e) for e in self.environments.get(code, [])]
        search, slug = params.get("search"), params.get("slug")
        chosen = [
            e
            for e in envs
            if (search is None or str(search).lower() in e["title"].lower())
            and (slug is None or e["slug"] == slug)
        ]
        limit, offset = int(params.get("limit", 10)), int(params.get("offset", 0))
        page = chosen[offset : offset + limit]
        return _json_response(
            200,
            {
                "status": True,
                "result": {
                    "total": len(envs),
                    "filtered": len(chosen),
                    "count": len(page),
                    "entities": page,
                },
            },
        )

    def _h_get_plan(self, req: _Request, params: dict[str, Any]) -> _Response:
        code = params["code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        with self._lock:
            plan = self.plans.get(code, {}).get(params["id"])
            if plan is None:
                return _error(404, "Plan not found.")
            cases = [dict(c) for c in plan["cases"]]
        return _json_response(
            200,
            {
                "status": True,
                "result": {
                    "id": plan["id"],
                    "title": plan["title"],
                    "cases_count": len(cases),
                    "created_at": _iso(0),
                    "updated_at": _iso(0),
                    "average_time": 0,
                    "cases": cases,
                },
            },
        )

    def _h_configurations(self, req: _Request, params: dict[str, Any]) -> _Response:
        code = params["code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        with self._lock:
            groups = [
                {**g, "configurations": [dict(c) for c in g["configurations"]]}
                for g in self.configuration_groups.get(code, [])
            ]
        result = {"total": len(groups), "filtered": len(groups), "count": len(groups)}
        return _json_response(200, {"status": True, "result": {**result, "entities": groups}})

    def _h_create_configuration_group(self, req: _Request, params: dict[str, Any]) -> _Response:
        code = params["code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        title = cast("dict[str, Any]", req.json)["title"]
        with self._lock:
            if any(g["title"] == title for g in self.configuration_groups.get(code, [])):
                return _error(422, "The group already exists.", [("title", "must be unique")])
            group_id = self._group(code, title)["id"]
        return _json_response(200, {"status": True, "result": {"id": group_id}})

    def _h_create_configuration(self, req: _Request, params: dict[str, Any]) -> _Response:
        code = params["code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        body = cast("dict[str, Any]", req.json)
        with self._lock:
            try:
                config_id = self._add_configuration(code, body["group_id"], body["title"])
            except KeyError:
                return _error(422, "Group not found.", [("group_id", "does not exist")])
        return _json_response(200, {"status": True, "result": {"id": config_id}})

    def _h_run_public(self, req: _Request, params: dict[str, Any]) -> _Response:
        code = params["code"]
        if code not in self.projects:
            return _error(404, "Project is not found.")
        public = bool(cast("dict[str, Any]", req.json)["status"])
        with self._lock:
            run = self._find_run(code, params["id"])
            if run is None:
                return _error(404, "Run not found.")
            if public:
                self.public_runs.add(run["id"])
            else:
                self.public_runs.discard(run["id"])
        url = f"{self.url}/public/report/{hashlib.sha1(str(run['id']).encode()).hexdigest()}"
        return _json_response(200, {"status": True, "result": {"url": url} if public else {}})

    # ------------------------------------------------------------------ control endpoints

    def _control(self, method: str, path: str, body: bytes) -> _Response:
        """``/_test/...``: no token, no validation, not recorded (for scripts and processes)."""
        try:
            if method == "GET" and path == "/_test/stats":
                stats = self.stats()
                self.write_state()
                return _json_response(200, stats)
            if method == "POST" and path == "/_test/config":
                self.configure(**json.loads(body or b"{}"))
                return _json_response(200, {"status": True})
            if method == "POST" and path == "/_test/inject":
                self.inject(**json.loads(body or b"{}"))
                return _json_response(200, {"status": True})
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc))
        return _error(404, f"Unknown control endpoint {method} {path}")


_HANDLERS: dict[
    tuple[str, str, str], Callable[[QaseServer, _Request, dict[str, Any]], _Response]
] = {
    ("v1", "/project/{code}", "GET"): QaseServer._h_get_project,
    ("v1", "/run/{code}", "POST"): QaseServer._h_create_run,
    ("v1", "/run/{code}/{id}", "GET"): QaseServer._h_get_run,
    ("v1", "/run/{code}/{id}/complete", "POST"): QaseServer._h_complete_run,
    ("v1", "/attachment/{code}", "POST"): QaseServer._h_upload,
    ("v1", "/environment/{code}", "GET"): QaseServer._h_environments,
    ("v1", "/plan/{code}/{id}", "GET"): QaseServer._h_get_plan,
    ("v1", "/configuration/{code}", "GET"): QaseServer._h_configurations,
    ("v1", "/configuration/{code}", "POST"): QaseServer._h_create_configuration,
    ("v1", "/configuration/{code}/group", "POST"): QaseServer._h_create_configuration_group,
    ("v1", "/run/{code}/{id}/public", "PATCH"): QaseServer._h_run_public,
    BULK_RESULTS: QaseServer._h_results,
    SINGLE_RESULT: QaseServer._h_result,
}


def _parse_multipart(
    content_type: str, body: bytes
) -> list[tuple[str, str | None, str | None, bytes]]:
    """Split a multipart/form-data body into (name, filename, mime, content) parts.

    Hand-rolled (bytes split on the boundary) because it is fast for big files and exact about
    binary content; the part headers are parsed by the email package for quoting rules.
    """
    header = message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1"), policy=email_policy.HTTP
    )
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("no boundary in Content-Type")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 2 or not pieces[-1].startswith(b"--"):
        raise ValueError("missing closing boundary")
    parts = []
    for piece in pieces[1:-1]:
        head, sep, content = piece.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without header/body separator")
        headers = message_from_bytes(
            head.lstrip(b" \t").removeprefix(b"\r\n"), policy=email_policy.HTTP
        )
        name = headers.get_param("name", header="content-disposition")
        if not name:
            raise ValueError("part without a name")
        filename = headers.get_filename()
        mime = headers.get_content_type() if headers.get("Content-Type") else None
        parts.append((str(name), filename, mime, content))
    return parts


# --------------------------------------------------------------------------- standalone mode


def main(argv: list[str] | None = None) -> int:
    """Run the server as a process: print url/ca_path as one JSON line, serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-file", default=None)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--read-only-token", default=None)
    parser.add_argument("--project", action="append", default=None, help="repeatable; default DEMO")
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    parser.add_argument("--rate-limit", type=int, default=None)
    parser.add_argument("--rate-window", type=float, default=60.0)
    parser.add_argument("--retry-after", type=int, default=60)
    parser.add_argument("--block-seconds", type=float, default=None)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--max-results-per-request", type=int, default=2000)
    parser.add_argument("--max-body-bytes", type=int, default=None)
    parser.add_argument(
        "--no-validate", action="store_true", help="skip schema validation (for benchmarks)"
    )
    args = parser.parse_args(argv)

    server = QaseServer(
        token=args.token,
        projects=args.project or ["DEMO"],
        tls=not args.http,
        host=args.host,
        port=args.port,
        read_only_token=args.read_only_token,
        state_file=args.state_file,
    )
    server.configure(
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        retry_after=args.retry_after,
        block_seconds=args.block_seconds,
        latency=args.latency,
        max_results_per_request=args.max_results_per_request,
        max_body_bytes=args.max_body_bytes,
        validate=not args.no_validate,
    )
    done = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server.start()
    info = {"url": server.url, "ca_path": server.ca_path, "pid": os.getpid(), "token": server.token}
    print(json.dumps(info), flush=True)
    try:
        while not done.wait(0.2):
            pass
    finally:
        server.stop()  # writes the state file when one was given
    return 0


if __name__ == "__main__":
    sys.exit(main())
