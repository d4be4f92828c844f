"""Shared fixtures for the pytest-qase tests.

Why: integration tests run the plugin (through ``pytester``) against a real local HTTPS
server that behaves like the Qase API (``tests/qase_server.py``).  More fixtures may be added
below by other tests; keep these ones stable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:  # also works under --import-mode=importlib
    sys.path.insert(0, _TESTS_DIR)

from qase_server import QaseServer  # noqa: E402

pytest_plugins = ["pytester"]


@pytest.fixture
def qase_server() -> Iterator[QaseServer]:
    """A started local Qase API (HTTPS, token ``server.token``, project DEMO), stopped after."""
    server = QaseServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def qase_env(qase_server: QaseServer) -> dict[str, str]:
    """Environment for a pytester run against ``qase_server``: token, URL and project.

    The CA is not in it: pass ``--qase-ca-bundle`` / ini ``qase_ca_bundle`` =
    ``qase_server.ca_path`` explicitly.  For another server instance use ``server.env()``.
    """
    return qase_server.env()
