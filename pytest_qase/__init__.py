"""pytest-qase: report pytest results to Qase TestOps."""

from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("pytest-qase")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from .runtime import qase  # noqa: E402

__all__ = ["qase", "__version__"]
