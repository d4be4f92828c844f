"""pytest entry point: registers options and the marker, and the reporting object when on.

Like pytest-reportlog, nothing but option parsing happens unless ``--qase`` (or its ini or
environment twin) is on, so an installed but unused plugin costs nothing: the reporting
modules are imported only once the plugin is on, and ``requests`` only once it uploads.
"""

from __future__ import annotations

from typing import Any

import pytest

from . import marks, settings

PLUGIN_NAME = "qase-session"
OFF_NOTICE_NAME = PLUGIN_NAME + "-off"


class OffNotice:
    """Says, at the end (also under ``-q``), why a setting meant to turn the plugin on left
    it off."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for line in self.lines:
            terminalreporter.write_line(line)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    marks.register(config)
    resolved = settings.resolve(config)
    if not resolved.enabled:
        unreadable = [e for e in resolved.errors if e.startswith("enabled from ")]
        if unreadable:
            config.pluginmanager.register(OffNotice(
                [f"qase: error: {e}; the plugin stays off" for e in unreadable]),
                OFF_NOTICE_NAME)
        return
    if resolved.strict and resolved.errors:
        raise pytest.UsageError("qase: " + "\nqase: ".join(resolved.errors))
    from .session import QaseSession  # here, not at the top: off costs no import

    config.pluginmanager.register(QaseSession(config, resolved), PLUGIN_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    for name in (PLUGIN_NAME + "-xdist", PLUGIN_NAME + "-xdist-worker", PLUGIN_NAME,
                 OFF_NOTICE_NAME):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin, name)
