"""Which image to use for each kind the tests and builds need: the official one or a stand-in.

``resolve(kind)`` answers the official name when that image is present locally or can be pulled
(one ``docker pull`` attempt with a short timeout). Otherwise it makes sure the local stand-in
built by ``tools/standins/build.sh`` exists and is up to date (building it takes minutes, reusing
it takes milliseconds), says so loudly on stderr, and answers the stand-in's name.

The official names come from ``tools/standins/build.sh --names KIND``, which reads the
``PYTHON_IMAGE`` and ``UV_IMAGE`` build-arg defaults of ``packages/backend/Dockerfile``.

An explicit ``BOARDS_<KIND>_IMAGE`` environment variable (as printed by ``boards-images env``)
wins over all of this and is used as given.

Command line (``boards-images``)::

    boards-images resolve KIND   print the image to use for KIND
    boards-images ensure         resolve every kind; print "KIND OFFICIAL -> USED" lines
    boards-images env            print BOARDS_<KIND>_IMAGE=... lines for `eval` or $GITHUB_ENV
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

KINDS: Final = ("python", "uv", "postgres", "redis")
PULL_TIMEOUT_SECONDS: Final = float(os.environ.get("BOARDS_PULL_TIMEOUT", "30"))
STANDIN_LABEL: Final = "org.boards.standin"


class ImageError(RuntimeError):
    """An image could be neither found, pulled nor stood in for."""


@dataclass(frozen=True)
class Resolution:
    kind: str
    official: str
    used: str
    standin: bool
    reason: str

    def line(self) -> str:
        return f"{self.kind} {self.official} -> {self.used}"


def env_var(kind: str) -> str:
    return f"BOARDS_{kind.upper()}_IMAGE"


def repo_root() -> Path:
    """The workspace root: the directory holding uv.lock and tools/standins.

    Found by walking up from this module's file, then from the working directory, so it works
    from an editable install in the workspace and from anywhere inside a checkout.
    """
    override = os.environ.get("BOARDS_REPO_ROOT")
    if override:
        return Path(override).resolve()
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "uv.lock").is_file() and (candidate / "tools" / "standins").is_dir():
                return candidate
    raise ImageError("cannot find the workspace root (a directory with uv.lock and tools/standins)")


def _build_script() -> Path:
    return repo_root() / "tools" / "standins" / "build.sh"


def _run_build_script(*args: str) -> str:
    """Run tools/standins/build.sh; its progress goes to our stderr, its answer is returned."""
    script = _build_script()
    try:
        proc = subprocess.run(  # noqa: S603 - our own script, fixed arguments
            [str(script), *args],
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise ImageError(f"cannot run {script}: {exc}") from exc
    if proc.returncode != 0:
        raise ImageError(f"{script.name} {' '.join(args)} failed with exit code {proc.returncode}")
    return proc.stdout.strip()


def names(kind: str) -> tuple[str, str]:
    """(official name, stand-in name) for a kind."""
    _check_kind(kind)
    official, _, standin = _run_build_script("--names", kind).partition(" ")
    if not official or not standin:
        raise ImageError(f"build.sh --names {kind} gave no names")
    return official, standin


def _docker() -> Any:
    """A docker SDK client; starts the engine with tools/engine/ensure-docker.sh if need be."""
    import docker

    def connect() -> Any:
        client = docker.from_env(timeout=int(PULL_TIMEOUT_SECONDS))
        client.ping()
        return client

    try:
        return connect()
    except docker.errors.DockerException:
        ensure = repo_root() / "tools" / "engine" / "ensure-docker.sh"
        subprocess.run([str(ensure)], check=False)  # noqa: S603 - our own script
    try:
        return connect()
    except docker.errors.DockerException as exc:
        raise ImageError(f"no Docker engine answers: {exc}") from exc


def image_labels(name: str) -> dict[str, str] | None:
    """The labels of a local image, or None when there is no such image."""
    import docker

    client = _docker()
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        return None
    finally:
        client.close()
    labels = image.labels or {}
    return {str(k): str(v) for k, v in labels.items()}


def try_pull(name: str) -> str | None:
    """Pull an image once. None on success, else a one-line reason."""
    from docker.errors import APIError
    from docker.utils import parse_repository_tag

    if os.environ.get("BOARDS_IMAGES_PULL", "1").lower() in ("0", "false", "no"):
        return "pulling is disabled (BOARDS_IMAGES_PULL=0)"
    client = _docker()
    repository, tag = parse_repository_tag(name)
    try:
        client.images.pull(repository, tag=tag or "latest")
    except APIError as exc:  # the engine's own words, e.g. "... lookup ghcr.io ...: no such host"
        return " ".join(str(exc.explanation or exc).split()) or type(exc).__name__
    except Exception as exc:  # any other failure (timeout, connection) also means "cannot pull"
        return " ".join(str(exc).split()) or type(exc).__name__
    finally:
        client.close()
    return None


def warn(*lines: str) -> None:
    """A boxed notice on stderr that nobody can miss; long lines are wrapped."""
    lines = tuple(part for line in lines for part in textwrap.wrap(line, 86) or [""])
    width = max(len(line) for line in lines) + 4
    bar = "!" * (width + 4)
    body = "\n".join(f"!! {line.ljust(width - 2)} !!" for line in lines)
    print(f"\n{bar}\n{body}\n{bar}\n", file=sys.stderr, flush=True)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown image kind {kind!r}; expected one of {', '.join(KINDS)}")


def resolve_uncached(kind: str) -> Resolution:
    """Resolve one kind now, without the per-process memo (tests use this)."""
    _check_kind(kind)
    explicit = os.environ.get(env_var(kind))
    official, standin = names(kind)
    if explicit:
        return Resolution(kind, official, explicit, False, f"{env_var(kind)} is set")

    labels = image_labels(official)
    if labels is not None:
        if labels.get(STANDIN_LABEL) == "true":
            warn(
                f"NOTE: THE LOCAL IMAGE {official} IS A RETAGGED STAND-IN",
                f"(built by {labels.get(STANDIN_LABEL + '.recipe', 'tools/standins')}),",
                "NOT THE OFFICIAL IMAGE. USING IT UNDER THE OFFICIAL NAME.",
            )
        return Resolution(kind, official, official, False, "present locally")

    failure = try_pull(official)
    if failure is None:
        return Resolution(kind, official, official, False, "pulled")

    used = _run_build_script(kind)
    if used != standin:
        raise ImageError(f"build.sh {kind} answered {used!r}, expected {standin!r}")
    warn(
        f"USING STAND-IN IMAGE {standin}",
        f"IN PLACE OF THE OFFICIAL {official}:",
        "IT IS NOT PRESENT LOCALLY AND CANNOT BE PULLED",
        f"(pull: {failure})",
        "Stand-ins are built from Debian's archive by tools/standins (see its README).",
    )
    return Resolution(kind, official, standin, True, f"pull failed: {failure}")


_memo: dict[str, Resolution] = {}
_memo_lock = threading.Lock()


def resolution(kind: str) -> Resolution:
    """Resolve one kind, once per process."""
    with _memo_lock:
        if kind not in _memo:
            _memo[kind] = resolve_uncached(kind)
        return _memo[kind]


def resolve(kind: str) -> str:
    """The image name to use for kind (python, uv, postgres, redis)."""
    return resolution(kind).used


def used_standins() -> list[Resolution]:
    """The resolutions made so far in this process that fell back to a stand-in."""
    with _memo_lock:
        return [r for r in _memo.values() if r.standin]


USAGE: Final = f"usage: boards-images resolve KIND | ensure | env   (KIND: {' | '.join(KINDS)})"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["-h"], ["--help"], ["help"]):
        print(USAGE)
        return 0
    command = args[0] if args else ""
    rest = args[1:]
    try:
        if command == "resolve" and len(rest) == 1 and rest[0] in KINDS:
            print(resolve(rest[0]))
        elif command == "ensure" and not rest:
            for kind in KINDS:
                print(resolution(kind).line(), flush=True)
        elif command == "env" and not rest:
            for kind in KINDS:
                print(f"{env_var(kind)}={shlex.quote(resolve(kind))}", flush=True)
        else:
            print(f"boards-images: bad arguments {' '.join(args)!r}; {USAGE}", file=sys.stderr)
            return 2
    except ImageError as exc:
        print(f"boards-images: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
