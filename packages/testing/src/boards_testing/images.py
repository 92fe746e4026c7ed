"""Which image to use for each kind the tests and builds need: the official one or a stand-in.

A thin wrapper around ``tools/standins/resolve.sh`` (the build tooling's resolver, which
``tools/image/build.sh`` uses directly): an explicit ``BOARDS_<KIND>_IMAGE`` wins as given; else
the official name when that image is present locally or can be pulled (one ``docker pull``
attempt, ``BOARDS_PULL_TIMEOUT``; a failure is remembered for a day); else the local stand-in
built by ``tools/standins/build.sh``, with a loud notice on stderr. The official names are the
``PYTHON_IMAGE`` and ``UV_IMAGE`` build-arg defaults of ``packages/backend/Dockerfile``,
``postgres:15`` and ``redis:7``.

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
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

KINDS: Final = ("python", "uv", "postgres", "redis")
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


def _resolver(*args: str) -> str:
    """Run tools/standins/resolve.sh; its notices and any stand-in build's progress are passed
    on to our stderr line by line (live, and visible to pytest's capture); its answer is
    returned."""
    script = repo_root() / "tools" / "standins" / "resolve.sh"
    try:
        proc = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
            [str(script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as exc:
        raise ImageError(f"cannot run {script}: {exc}") from exc
    if proc.stdout is None or proc.stderr is None:  # pragma: no cover - both are pipes
        raise ImageError(f"cannot read {script}")
    last = ""
    for line in proc.stderr:  # stdout is one short line: it cannot fill its pipe meanwhile
        sys.stderr.write(line)
        sys.stderr.flush()
        last = line.strip() or last
    answer = proc.stdout.read()
    if proc.wait() != 0:
        detail = last.removeprefix("resolve.sh: ").removeprefix("error: ")
        raise ImageError(f"{script.name} {' '.join(args)} failed: {detail}")
    return answer.strip()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown image kind {kind!r}; expected one of {', '.join(KINDS)}")


def names(kind: str) -> tuple[str, str]:
    """(official name, stand-in name) for a kind."""
    _check_kind(kind)
    official, _, standin = _resolver("--names", kind).partition(" ")
    if not official or not standin:
        raise ImageError(f"resolve.sh --names {kind} gave no names")
    return official, standin


def resolve_uncached(kind: str) -> Resolution:
    """Resolve one kind now, without the per-process memo (tests use this)."""
    _check_kind(kind)
    fields = _resolver("--explain", kind).split("\t")
    if len(fields) != 5 or fields[0] != kind or fields[3] not in ("official", "standin"):
        raise ImageError(f"resolve.sh --explain {kind} answered {fields!r}")
    _, official, used, which, reason = fields
    return Resolution(kind, official, used, which == "standin", reason)


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
