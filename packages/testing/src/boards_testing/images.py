"""Which container image to use for each kind the tests need, by name.

The name is given, not found: an argument (the plugin's ``--python-image`` ... options), else the
environment variable ``BOARDS_<KIND>_IMAGE``, else the official default where this package can
know it (``postgres:15``, ``redis:7``). The backend's base and uv images are pinned in its
Dockerfile, which this package does not read: for them an unset variable is an error that says
how to set it. This package never builds, pulls or resolves stand-ins; it only notices one (the
``org.boards.standin`` label) so the session can say so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

KINDS: Final = ("python", "uv", "postgres", "redis")
#: The official images this package can name without reading the backend's Dockerfile.
DEFAULTS: Final = {"postgres": "postgres:15", "redis": "redis:7"}
STANDIN_LABEL: Final = "org.boards.standin"
#: What each kind is, for messages.
_WHAT: Final = {
    "python": "the backend's base image (the Dockerfile's PYTHON_IMAGE)",
    "uv": "the uv image (the Dockerfile's UV_IMAGE)",
    "postgres": "the PostgreSQL image",
    "redis": "the Redis image",
}


class ImageNotSet(LookupError):
    """No name was given for a kind that has no default here."""


def env_var(kind: str) -> str:
    """``BOARDS_<KIND>_IMAGE``."""
    _check_kind(kind)
    return f"BOARDS_{kind.upper()}_IMAGE"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown image kind {kind!r}; expected one of {', '.join(KINDS)}")


def image_name(
    kind: str, given: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The image to use for kind: ``given``, else ``BOARDS_<KIND>_IMAGE`` of ``environ`` (default
    ``os.environ``), else the default.

    Raises :class:`ImageNotSet`, with one line saying how to set it, for python and uv."""
    _check_kind(kind)
    environ = os.environ if environ is None else environ
    name = given or environ.get(env_var(kind), "") or DEFAULTS.get(kind, "")
    if not name:
        raise ImageNotSet(
            f"{env_var(kind)} is not set: set it to {_WHAT[kind]} "
            f'(or pass --{kind}-image); in the boards workspace, `eval "$(just standins)"` '
            "prints all four, or run through tools/bootstrap.sh"
        )
    return name


def standin_for(docker_client: Any, image: str) -> str | None:
    """The official image that ``image`` stands in for, if it is a labelled stand-in present
    locally; else None."""
    import docker

    try:
        labels = docker_client.images.get(image).labels or {}
    except docker.errors.ImageNotFound:
        return None
    if labels.get(STANDIN_LABEL) != "true":
        return None
    return str(labels.get(f"{STANDIN_LABEL}.for") or "an official image")
