"""pytest-qase: report pytest results to Qase TestOps.

``qase`` and ``__version__`` are loaded on first use (PEP 562): pytest imports this
package for every session where the plugin is installed, also when it is off, and an
unused plugin should cost nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import qase

__all__ = ["qase", "__version__"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-qase")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


def __getattr__(name: str) -> Any:
    """``qase`` and ``__version__``, computed once and then kept as plain attributes."""
    if name == "qase":
        from .runtime import qase as value
    elif name == "__version__":
        value = _version()
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
