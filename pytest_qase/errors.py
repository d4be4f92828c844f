"""The error every request to Qase ends in when it does not succeed.

Apart from the HTTP client, so that the modules that only catch or raise it (the sender, the
run, the plan, the session) do not import ``requests``: a session that writes only the
local report never loads it.
"""

from __future__ import annotations

from typing import Any, Optional


class ApiError(Exception):
    """A request that did not succeed; ``str()`` is one line for the user."""

    def __init__(self, message: str, status: Optional[int] = None, *,
                 transient: bool = False, retry_after: Optional[float] = None,
                 fields: Optional[list[dict[str, Any]]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        self.fields = fields or []
        self.ambiguous = False  # the server may have applied it though no answer came

    @property
    def stops_sending(self) -> bool:
        """Answers after which no further request can succeed in this session."""
        return self.status in (401, 403, 404, 405, 410)
