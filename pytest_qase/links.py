"""Addresses in the Qase web app derived from the API address."""

from __future__ import annotations

from urllib.parse import urlsplit


def web_base(api_url: str) -> str:
    """``api.qase.io`` -> ``app.qase.io``; ``api-<host>`` -> ``<host>``; else the host itself."""
    parts = urlsplit(api_url)
    host = parts.hostname or ""
    if host == "api.qase.io":
        host = "app.qase.io"
    elif host.startswith("api-"):
        host = host[len("api-"):]
    elif host.startswith("api."):
        host = "app." + host[len("api."):]
    port = f":{parts.port}" if parts.port else ""
    return f"https://{host}{port}"


def run_link(api_url: str, project: str, run_id: int) -> str:
    return f"{web_base(api_url)}/run/{project}/dashboard/{run_id}"
