"""boards: an HTTP API and a background worker from one image."""

from __future__ import annotations

from functools import cache


@cache  # read once: the health endpoints report it on every probe
def version() -> str:
    """The installed boards-backend version (``0+unknown`` when not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        return _version("boards-backend")
    except PackageNotFoundError:
        return "0+unknown"
