#!/usr/bin/env bash
# Home-made glue: no tool proves a uv workspace member stands alone (deptry in its own env, wheel installed clean).
#
# Usage: tools/ci/member-check.sh DIR   (run from the workspace root; DIR as in packages/DIR)
#
# In a throw-away virtualenv holding only the member and the dependencies uv.lock gives it
# (`uv export --package NAME --no-dev`: no root dev group, no other member unless it depends on it):
#   1. `uv build --package NAME` (sdist, then the wheel from the sdist) and install that wheel;
#   2. import every module of the wheel's top-level packages;
#   3. every console script of the wheel answers --help (exit 0, or 2 with one line);
#   4. deptry on the member's sources (packages/DIR/src, and alembic/ where present), with its
#      [tool.deptry]: no missing (DEP001) or transitive (DEP003) import, nothing unused.
#      deptry runs from that virtualenv (its click, packaging and requirements-parser join the
#      member there; an undeclared import of those still fails, as transitive).
# Exit codes: 0 the member stands alone; 1 a step failed (it says which); 2 bad usage.
set -euo pipefail

if [[ $# -ne 1 || ! "$1" =~ ^[a-z0-9][a-z0-9_-]*$ ]]; then
  echo "member-check: usage: member-check.sh DIR (a member's directory under packages/)" >&2
  exit 2
fi
dir=$1
member="packages/$dir"
if [[ ! -f "$member/pyproject.toml" ]]; then
  echo "member-check: no $member/pyproject.toml under $PWD (run from the workspace root)" >&2
  exit 2
fi

step() { printf 'member-check %s: %s\n' "$dir" "$*" >&2; }
fail() {
  step "FAILED: $*"
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
venv="$work/venv"
py="$venv/bin/python"
# Nothing from the caller's environment (uv run sets these for the root venv) may leak in.
unset VIRTUAL_ENV PYTHONPATH PYTHONHOME
# The workspace's Python (.python-version, requires-python), nothing installed yet.
uv venv --quiet "$venv" || fail "uv venv"
name=$("$py" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["name"])' \
  "$member/pyproject.toml") || fail "no [project] name in $member/pyproject.toml"

step "build $name"
uv build --quiet --package "$name" --out-dir "$work/dist" || fail "uv build --package $name"
wheels=("$work"/dist/*.whl)
[[ ${#wheels[@]} -eq 1 && -f ${wheels[0]} ]] || fail "uv build made no single wheel"

step "install the wheel into a clean virtualenv, with the lock's versions of its dependencies"
uv export --quiet --locked --package "$name" --no-dev --no-emit-project --no-hashes \
  --output-file "$work/requirements.txt" || fail "uv export --package $name"
uv pip install --quiet --python "$py" -r "$work/requirements.txt" "${wheels[0]}" \
  || fail "installing ${wheels[0]##*/} with its locked dependencies"

step "import every module of the wheel"
# BOARDS_REDIS_URL: the worker's actors module builds its broker at import (no connection made).
BOARDS_REDIS_URL=redis://127.0.0.1:9/0 "$py" - "$name" <<'EOF' || fail "import"
import importlib
import pkgutil
import sys
from importlib.metadata import distribution

files = distribution(sys.argv[1]).files or []
tops = sorted({f.parts[0] for f in files if len(f.parts) == 2 and f.name == "__init__.py"})
if not tops:
    sys.exit(f"{sys.argv[1]}: the wheel holds no package")
count = 0
for top in tops:
    package = importlib.import_module(top)
    count += 1
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        if not info.name.endswith(".__main__"):  # runs the program
            importlib.import_module(info.name)
            count += 1
print(f"member-check: imported {count} modules of {', '.join(tops)}", file=sys.stderr)
EOF

scripts=$("$py" -c 'import sys; from importlib.metadata import distribution as d
print(" ".join(e.name for e in d(sys.argv[1]).entry_points if e.group == "console_scripts"))' "$name")
for script in $scripts; do
  step "$script --help"
  rc=0
  out=$("$venv/bin/$script" --help 2>&1) || rc=$?
  if [[ $rc -ne 0 && ($rc -ne 2 || "$out" == *Traceback*) ]]; then
    printf '%s\n' "$out" >&2
    fail "$script --help exited $rc"
  fi
done

step "deptry (missing, transitive, unused dependencies) in that virtualenv"
uv export --quiet --locked --only-group dev --no-emit-workspace --no-hashes \
  --output-file "$work/dev.txt" || fail "uv export --only-group dev"
uv pip install --quiet --python "$py" --constraint "$work/dev.txt" deptry \
  || fail "installing deptry"
roots=(src)
[[ -d "$member/alembic" ]] && roots+=(alembic)
(cd "$member" && "$venv/bin/deptry" --no-ansi "${roots[@]}") || fail "deptry"
step "ok"
