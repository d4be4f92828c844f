"""The one HTTP client that talks to Qase: auth, TLS, timeouts, retries and error meaning.

Every request goes through ``QaseClient.call``: it takes a slot from the shared rate guard,
sends with a timeout and without following redirects (the token must never reach another
host), retries transient failures with capped exponential backoff and jitter under a
deadline, and turns every other answer into an ``ApiError`` whose text is one clear line.
"""

from __future__ import annotations

import email.utils
import random
import re
import socket
from dataclasses import dataclass
from typing import Any, Optional

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

from . import __version__, clock
from .errors import ApiError
from .ratelimit import RateGuard
from .settings import Secret

# 520-524: a CDN in front of the API (Cloudflare) could not reach it or timed out
TRANSIENT_STATUSES = {408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
LAST_ATTEMPT_TIMEOUT = 2.0  # seconds a request may take once its deadline is spent
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
DEFAULT_RETRY_AFTER = 60.0
MAX_RETRY_AFTER = 600.0

# Captured at import, before any test can patch them: ``responses`` replaces
# ``HTTPAdapter.send``; ``requests-mock`` replaces ``Session.send``, which swaps in its own
# adapter; pytest-socket replaces ``socket.socket`` and ``socket.getaddrinfo``
# (``--disable-socket``) and ``socket.socket.connect`` (``--allow-hosts``).
_REAL_SEND = HTTPAdapter.send
_REAL_GET_ADAPTER = requests.Session.get_adapter
_REAL_SESSION_SEND = requests.Session.send
_REAL_REQUEST = requests.Session.request
_REAL_SOCKET = socket.socket
_REAL_CONNECT = socket.socket.connect
_REAL_GETADDRINFO = socket.getaddrinfo


def _open_socket(address: tuple[str, int], timeout: Any, source_address: Any,
                 options: Any) -> socket.socket:
    """urllib3's ``create_connection``, with the socket functions as they were at import."""
    host, port = address
    error: Optional[OSError] = None
    for family, kind, proto, _, where in _REAL_GETADDRINFO(host.strip("[]"), port,
                                                          allowed_gai_family(),
                                                          socket.SOCK_STREAM):
        sock = None
        try:
            sock = _REAL_SOCKET(family, kind, proto)
            for option in options or ():
                sock.setsockopt(*option)
            if timeout is None or isinstance(timeout, (int, float)):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            _REAL_CONNECT(sock, where)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    raise error if error is not None else OSError("getaddrinfo returned no address")


class _Connection(HTTPSConnection):
    """Opens its socket past any patching, and never prints what it sends."""

    debuglevel = 0  # ``http.client.HTTPConnection.debuglevel = 1`` would print the token

    def _new_conn(self) -> socket.socket:
        try:
            return _open_socket((self._dns_host, self.port), self.timeout,
                                self.source_address, self.socket_options)
        except socket.timeout as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. "
                                            f"(connect timeout={self.timeout})") from exc
        except OSError as exc:
            raise NewConnectionError(
                self, f"Failed to establish a new connection: {exc}") from exc


class _Pool(HTTPSConnectionPool):
    ConnectionCls = _Connection


_POOLS = {"http": HTTPConnectionPool, "https": _Pool}


class _Adapter(HTTPAdapter):
    send = _REAL_SEND

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


class _Session(requests.Session):
    get_adapter = _REAL_GET_ADAPTER
    send = _REAL_SESSION_SEND
    request = _REAL_REQUEST


@dataclass
class Reply:
    status: int
    data: Any
    page: Optional[str] = None  # what came instead of a JSON object (see ``_page``)


def parse_retry_after(value: Optional[str]) -> float:
    """Seconds to wait from a ``Retry-After`` header: seconds or an HTTP date; absent: 60.

    At most ``MAX_RETRY_AFTER``: the block is shared by every later session on the token,
    and Qase's own blocks last a minute, so a day from a broken proxy must not stop them.
    """
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - clock.now()
        except (TypeError, ValueError, OverflowError):
            return DEFAULT_RETRY_AFTER
    if seconds != seconds:  # NaN
        return DEFAULT_RETRY_AFTER
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def backoff_delay(attempt: int) -> float:
    """Full-jitter exponential backoff, capped."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt)))


def _error_text(data: Any) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(data, dict):
        message = str(data.get("errorMessage") or data.get("message") or "")
        fields = data.get("errorFields")
        return message, fields if isinstance(fields, list) else []
    return "", []


# What a token refused with 403 lacks, by the start of the action it was refused.
_PERMISSIONS = (
    ("send results", "add results to test runs"),
    ("create a run", "create test runs"),
    ("complete run", "complete test runs"),
    ("make run", "make test run reports public"),
    ("read run", "view test runs"),
    ("read project", "view the project (its user must be a member of it)"),
    ("read test plan", "view test plans"),
    ("list the environments", "view environments"),
    ("list the configurations", "view configurations"),
    ("create configuration", "create configurations"),
    ("upload", "upload attachments"),
)
_RUN_IN_ACTION = re.compile(r"\brun (\d+) of (\w+)")
_PROJECT_IN_ACTION = re.compile(r"\bproject (\w+)")


def _permission(action: str) -> str:
    return next((needed for start, needed in _PERMISSIONS if action.startswith(start)), action)


def _not_found_hint(action: str) -> str:
    run = _RUN_IN_ACTION.search(action)
    if run:
        return (f"run {run.group(1)} is not in project {run.group(2)}: it was deleted, or the "
                "run id (QASE_RUN_ID) or the project code is wrong")
    project = _PROJECT_IN_ACTION.search(action)
    if project:
        return (f"check the project code {project.group(1)} (qase_project) and that the "
                "token's user is a member of the project")
    return "check the project code, the ids in the settings and qase_url"


def describe(status: int, action: str, server_message: str,
             page: Optional[str] = None, location: str = "") -> str:
    """The one line a user reads for an unsuccessful answer.

    ``page`` says what came instead of the Qase API's JSON (a proxy's HTML page, an empty
    body): such a status says little about Qase, and the line says so.
    """
    if 300 <= status < 400:
        to = f" to {location}" if location else ""
        return (f"the server redirected the request to {action}{to} ({status}); redirects are "
                "not followed so the token cannot leak: set qase_url to the Qase API address")
    if page is not None and (status >= 500 or status in TRANSIENT_STATUSES):
        return (f"the server answered {status} when trying to {action} ({page}): Qase or a "
                "proxy in between failed")
    if page is not None:
        return (f"the server answered {status} when trying to {action}, but not as the Qase "
                f"API answers ({page}): check qase_url and any proxy in between")
    said = f": {server_message[:-1] if server_message.endswith('.') else server_message}" \
        if server_message else ""
    meanings = {
        400: f"Qase refused the request to {action} (400){said}",
        401: f"the API token was rejected (401) when trying to {action}: check QASE_API_TOKEN "
             "(a valid, unrevoked token of this workspace)",
        403: f"the token may not {action} (403){said}; its user lacks the permission to "
             f"{_permission(action)}: grant it to the user's role in Qase (a read-only license "
             "never has it), or use a token that has it",
        404: f"not found (404) when trying to {action}{said}; {_not_found_hint(action)}",
        405: f"the server does not allow the request to {action} (405){said}; check that "
             "qase_url points at the Qase API (https://api.qase.io for Qase cloud)",
        410: f"gone (410) when trying to {action}{said}; the run or project was deleted in "
             "Qase",
        413: f"request too large (413) when trying to {action}",
        422: f"Qase could not process the request to {action} (422){said}",
        429: f"rate limit reached (429) when trying to {action}",
        507: f"no storage left in the Qase workspace (507) when trying to {action}",
    }
    if status in meanings:
        return meanings[status]
    return f"Qase answered {status} when trying to {action}{said}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TITLE = re.compile(rb"<(title|h1)[^>]*>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def clean_text(text: str, secret: str = "", limit: int = 300) -> str:
    """Server text fit for one terminal line: no control characters, no token, bounded."""
    if len(secret) >= 6:
        text = text.replace(secret, "***")
    text = " ".join(_CONTROL.sub(" ", text).split())
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _page(response: requests.Response, secret: str) -> str:
    """What came instead of a JSON object: its type, and an HTML page's title or a text's
    first line."""
    content = response.content or b""
    if not content.strip():
        return "an empty answer"
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    head = content[:65536]
    match = _TITLE.search(head)
    words = ""
    if match:
        words = _TAG.sub(" ", match.group(2).decode("utf-8", "replace"))
    elif kind.startswith("text/") or kind.endswith(("json", "xml")):
        words = head.decode("utf-8", "replace").strip().splitlines()[0]
    words = clean_text(words, secret, 100)
    kind = clean_text(kind, secret, 60) or "no content type"
    return f'{kind}: "{words}"' if words else kind


class QaseClient:
    """Talks to one Qase API host with one token."""

    def __init__(self, url: str, token: Secret, *, verify: Any, timeout: float,
                 guard: RateGuard) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.verify = verify
        self.timeout = timeout
        self.guard = guard
        self.requests_made = 0
        self.rate_limited = 0
        self._session = _Session()
        # the environment as it is now: a test that sets HTTPS_PROXY or clears os.environ
        # later must not reroute or break the uploads
        self._session.trust_env = False
        self._session.proxies = get_environ_proxies(self.url)
        self._session.mount("https://", _Adapter(pool_connections=1, pool_maxsize=4))
        self._session.mount("http://", _Adapter())  # present only so nothing else is used
        self._session.headers.update({"User-Agent": f"pytest-qase/{__version__}",
                                      "Accept": "application/json"})

    def __repr__(self) -> str:
        return f"QaseClient(url={self.url!r})"

    def close(self) -> None:
        self._session.close()

    def call(self, method: str, path: str, action: str, deadline: clock.Deadline, *,
             body: Optional[bytes] = None, files: Any = None, params: Any = None,
             idempotent: bool = True) -> Reply:
        """Send one request (retrying what is transient) and return the decoded answer.

        A request that is not idempotent (creating a run) is retried only when it surely
        did not reach the server, so a lost answer can never create a second run.
        """
        attempt = 0
        while True:
            error = self._attempt(method, path, action, deadline, body, files, params)
            if isinstance(error, Reply):
                return error
            if not error.transient or (error.ambiguous and not idempotent):
                raise error
            attempt += 1
            delay = 0.0 if error.status == 429 else backoff_delay(attempt)
            if deadline.remaining() <= delay:
                raise error
            clock.sleep(delay)

    def _attempt(self, method: str, path: str, action: str, deadline: clock.Deadline,
                 body: Optional[bytes], files: Any, params: Any) -> Any:
        if not self.guard.acquire(deadline):
            # transient: the batch waits for the end of the session (qase_max_wait), it
            # does not stop sending the way a refusal does
            return ApiError(f"gave up waiting for the rate limit when trying to {action}",
                            transient=True)
        headers = {"Token": self._token.reveal()}
        if body is not None:
            headers["Content-Type"] = "application/json"
        # a spent deadline (qase_max_wait=0, or the end of a long flush) still allows one
        # short attempt, never the full qase_timeout
        timeout = min(self.timeout, max(deadline.remaining(), LAST_ATTEMPT_TIMEOUT))
        self.requests_made += 1
        try:
            response = self._session.request(
                method, self.url + path, data=body, files=files, params=params,
                headers=headers, timeout=(min(10.0, timeout), timeout), verify=self.verify,
                allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            return ApiError(f"TLS verification of {self.url} failed when trying to {action}: "
                            f"{_short(exc)}; set qase_ca_bundle to the CA that signs it")
        except requests.exceptions.InvalidHeader:
            return ApiError("the API token contains characters that cannot be sent in a header")
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            error = ApiError(f"could not reach {self.url} when trying to {action}: "
                             f"{_short(exc)}", transient=True)
            error.ambiguous = not _surely_unsent(exc)
            return error
        except requests.exceptions.RequestException as exc:
            return ApiError(f"request to {action} failed: {_short(exc)}")
        headers_in = response.headers
        self.guard.observe(headers_in.get("X-RateLimit-Remaining"),
                           headers_in.get("X-RateLimit-Reset"))
        try:
            data = response.json()
        except ValueError:  # an HTML page from a proxy: judged by its status, and described
            data = None
        status = response.status_code
        secret = self._token.reveal()
        page = None if isinstance(data, dict) else _page(response, secret)
        data = data if isinstance(data, dict) else None  # a JSON array is no Qase answer
        response.close()
        if 200 <= status < 300:
            return Reply(status, data, page)
        message, fields = _error_text(data)
        message = clean_text(message, secret)
        retry_after = None
        if status == 429:
            self.rate_limited += 1
            retry_after = parse_retry_after(headers_in.get("Retry-After"))
            self.guard.block_until(clock.now() + retry_after)
        location = clean_text(headers_in.get("Location", ""), secret, 200)
        return ApiError(describe(status, action, message, page, location), status,
                        transient=status in TRANSIENT_STATUSES, retry_after=retry_after,
                        fields=fields)

    # -- the endpoints ------------------------------------------------------------------

    def call_json(self, method: str, path: str, action: str, deadline: clock.Deadline,
                  **options: Any) -> dict[str, Any]:
        """``call`` for an answer that must be Qase's JSON: a 2xx page (a captive portal's
        login page) means the request did nothing, and says so."""
        reply = self.call(method, path, action, deadline, **options)
        if reply.page is not None:
            raise ApiError(describe(reply.status, action, "", reply.page), reply.status)
        return reply.data or {}

    def get_project(self, code: str, deadline: clock.Deadline) -> dict[str, Any]:
        data = self.call_json("GET", f"/v1/project/{code}", f"read project {code}", deadline)
        return data.get("result") or {}

    def create_run(self, code: str, body: dict[str, Any], deadline: clock.Deadline) -> int:
        from .results import to_json_bytes

        data = self.call_json("POST", f"/v1/run/{code}", f"create a run in project {code}",
                              deadline, body=to_json_bytes(body), idempotent=False)
        try:
            return int(data["result"]["id"])
        except (KeyError, TypeError, ValueError):
            raise ApiError("Qase answered the request to create a run without a run id") \
                from None

    def get_run(self, code: str, run_id: int, deadline: clock.Deadline) -> dict[str, Any]:
        data = self.call_json("GET", f"/v1/run/{code}/{run_id}", f"read run {run_id} of {code}",
                              deadline)
        return data.get("result") or {}

    def complete_run(self, code: str, run_id: int, deadline: clock.Deadline) -> None:
        self.call_json("POST", f"/v1/run/{code}/{run_id}/complete",
                       f"complete run {run_id} of {code}", deadline)

    def send_results(self, code: str, run_id: int, body: bytes,
                     deadline: clock.Deadline) -> None:
        """Deliver a bulk of results; only Qase's JSON answer counts as delivered.

        A 2xx that is not JSON (a captive portal's login page) stored nothing: the results
        are kept for ``upload`` instead of being counted as delivered.
        """
        self.call_json("POST", f"/v2/{code}/run/{run_id}/results",
                       f"send results to run {run_id} of {code}", deadline, body=body)

    def upload_attachments(self, code: str, files: list[tuple[str, bytes, str]],
                           deadline: clock.Deadline) -> list[str]:
        """Upload files (name, content, mime) in one multipart request; their hashes, in order."""
        parts = [("file[]", (name, content, mime)) for name, content, mime in files]
        data = self.call_json("POST", f"/v1/attachment/{code}",
                              f"upload {len(files)} attachment(s) to project {code}", deadline,
                              files=parts)
        listed = data.get("result")
        hashes = [str(entry.get("hash")) for entry in listed or [] if isinstance(entry, dict)]
        if len(hashes) != len(files) or not all(hashes):
            raise ApiError("Qase stored the attachments but did not answer with their hashes")
        return hashes


def _surely_unsent(exc: Exception) -> bool:
    """Connection refused or a connect timeout: the request never reached the server."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text


_POOL = re.compile(r"\w*(?:Pool|Connection)\(host=[^)]*\): ")
_WRAPPED = re.compile(r"^\w+\(([\"'])(.*)\1\)$")
_CAUSE = re.compile(r"\(Caused by (.*)\)$")
_OBJECT = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>: ")
_SSL_REASON = re.compile(r"\[SSL[^\]]*\] ([^'\"(]+)")


def _short(exc: Exception) -> str:
    """What went wrong, without urllib3's wrapping (pools, retries, object reprs)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    reason = _SSL_REASON.search(text)
    if reason:  # "certificate verify failed: unable to get local issuer certificate"
        return reason.group(1).strip()
    cause = _CAUSE.search(text)
    text = _OBJECT.sub("", _POOL.sub("", cause.group(1) if cause else text))
    wrapped = _WRAPPED.match(text)  # NewConnectionError("...") -> ...
    text = wrapped.group(2) if wrapped else text
    return (text or type(exc).__name__)[:300]
