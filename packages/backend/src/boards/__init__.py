"""boards: an HTTP API and a background worker from one image."""

from __future__ import annotations

# Every `boards` command imports this package, the frequent health check too: no imports here.
_version: str | None = None


def version() -> str:
    """The installed boards-backend version (``0+unknown`` when not installed); read once,
    since the health endpoints report it on every probe."""
    global _version
    if _version is None:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed_version

        try:
            _version = installed_version("boards-backend")
        except PackageNotFoundError:
            _version = "0+unknown"
    return _version
