"""Compile the third-party packages of a site-packages directory to bytecode only, in place.

    python bytecode-only.py SITE_PACKAGES

Run by the Dockerfile's `deps` stage after `uv sync` (which compiles nothing there) and after
the bundled test suites are gone, so no time goes into compiling what is deleted. Each `mod.py`
is compiled to `mod.pyc` beside it (compileall's "legacy" layout: where Python imports a
module from when its source is absent) and `mod.py` goes: the image holds each module once,
as bytecode, instead of twice (21 MB of sources). The `boards` package is installed later, in
the builder stage, so it keeps its sources.

The cost: a traceback through a dependency shows its file and line number but not the line's
text, and anything that reads a module's source at run time gets none. The packages below do
that, and keep their sources:
"""

from __future__ import annotations

import compileall
import re
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
    kept_paths = [root / keep for keep in sorted(KEEP)]
    # Kept packages: bytecode in __pycache__ beside their sources, as uv would have compiled it.
    skip_kept = re.compile("|".join(re.escape(f"{path}/") for path in kept_paths))
    compileall.compile_dir(root, quiet=1, legacy=True, workers=0, rx=skip_kept)
    for path in kept_paths:
        compileall.compile_dir(path, quiet=1, workers=0)
    # A file that does not compile (compileall has said which) has no .pyc and keeps its source.
    moved = removed = 0
    for source in sorted(root.rglob("*.py")):
        if not kept(source, root) and source.with_suffix(".pyc").is_file():
            source.unlink()
            moved += 1
    for path in sorted(root.rglob("*")):
        if path.suffix in BUILD_ONLY and path.is_file() and not kept(path, root):
            path.unlink()
            removed += 1
    print(f"bytecode-only: {moved} modules as bytecode only, {removed} build-time files removed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
