"""Make the third-party packages of a site-packages directory bytecode-only, in place.

    python bytecode-only.py SITE_PACKAGES

Run by the Dockerfile's `deps` stage after `uv sync` has compiled every module
(UV_COMPILE_BYTECODE). Each `pkg/__pycache__/mod.cpython-312.pyc` is moved to `pkg/mod.pyc`
(the "legacy" place, where Python imports it from when `mod.py` is absent) and `mod.py` goes:
the image then holds each module once, as bytecode, instead of twice (21 MB of sources). The
`boards` package is installed later, in the builder stage, so it keeps its sources.

The cost: a traceback through a dependency shows its file and line number but not the line's
text, and anything that reads a module's source at run time gets none. The packages below do
that, and keep their sources:
"""

from __future__ import annotations

import sys
from pathlib import Path

KEEP = {
    # anyio builds its lazy-import table from the source of its own __init__ modules
    # (anyio._lazyimport: inspect.getsource); without it, it imports everything eagerly.
    "anyio",
    # alembic's templates for `alembic init`: files it copies, not modules it imports.
    "alembic/templates",
}
# Read by compilers and type checkers only, never at run time.
BUILD_ONLY = {".pyi", ".c", ".h", ".cpp", ".hpp", ".pxd", ".pyx"}


def kept(path: Path, root: Path) -> bool:
    rel = path.relative_to(root).as_posix()
    return any(rel == keep or rel.startswith(keep + "/") for keep in KEEP)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: bytecode-only.py SITE_PACKAGES", file=sys.stderr)
        return 2
    root = Path(argv[0])
    tag = sys.implementation.cache_tag  # e.g. cpython-312: the tag uv compiled for
    moved = removed = 0
    for cache in sorted(root.rglob("__pycache__")):
        if kept(cache, root):
            continue
        for pyc in cache.glob(f"*.{tag}.pyc"):
            source = cache.parent / (pyc.name.removesuffix(f".{tag}.pyc") + ".py")
            if not source.is_file():
                continue  # no source next to it: not ours to move
            pyc.rename(source.with_suffix(".pyc"))
            source.unlink()
            moved += 1
        if not any(cache.iterdir()):
            cache.rmdir()
    for path in sorted(root.rglob("*")):
        if path.suffix in BUILD_ONLY and path.is_file() and not kept(path, root):
            path.unlink()
            removed += 1
    # A source uv could not compile stays (Python then compiles it at import, as it would have).
    print(f"bytecode-only: {moved} modules as bytecode only, {removed} build-time files removed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
