"""Compile bytecode for the standard-library modules a list names, into a separate tree.

    python compile-stdlib.py MODULE_LIST OUT_DIR

The base image ships the standard library without bytecode, and the runtime's `boards` user
cannot write any, so every process would compile each stdlib module it imports at every start
(and the HEALTHCHECK is a process every few seconds). MODULE_LIST (stdlib-modules.txt, kept up
to date by tools/image/stdlib_modules.py) names the modules the roles import; only theirs are
compiled (about 4 MB, where the whole stdlib's bytecode is 30 MB).

Each `.pyc` is written under OUT_DIR at the path Python looks for it (OUT_DIR + the stdlib's
`__pycache__/mod.cpython-312.pyc`), so the Dockerfile copies OUT_DIR over `/` as one layer of
bytecode alone. The .pyc records the source's mtime and size: the runtime stage is built on the
same base image, so its stdlib sources are these very files and the bytecode is used as it is.
A name that is not a stdlib source module (a builtin, an extension, a typo) fails the build.
"""

from __future__ import annotations

import importlib.util
import py_compile
import sys
import sysconfig
from pathlib import Path


def source_of(name: str, stdlib: Path) -> Path:
    """The module's source file, found without importing it (or its package)."""
    base = stdlib.joinpath(*name.split("."))
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"compile-stdlib: {name!r} is not a standard-library source module")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: compile-stdlib.py MODULE_LIST OUT_DIR", file=sys.stderr)
        return 2
    listing, out = Path(argv[0]), Path(argv[1])
    stdlib = Path(sysconfig.get_path("stdlib"))
    names = [line.split("#", 1)[0].strip() for line in listing.read_text().splitlines()]
    count = 0
    for name in filter(None, names):
        source = source_of(name, stdlib)
        target = out / Path(importlib.util.cache_from_source(str(source))).relative_to("/")
        py_compile.compile(str(source), cfile=str(target), doraise=True)
        count += 1
    print(f"compile-stdlib: {count} modules compiled")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
