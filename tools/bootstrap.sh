#!/usr/bin/env bash
# Set up this machine for boards, then run a command in the workspace environment.
#
#   tools/bootstrap.sh just demo    # build the image, run API + worker + PostgreSQL + Redis, one job
#   tools/bootstrap.sh just test    # the whole test suite
#
# Installs only what is missing and is safe to run again:
#   uv (pinned, into its own virtualenv, linked from ~/.local/bin), a Docker engine with BuildKit
#   (tools/engine),
#   and the workspace environment from uv.lock (`uv sync --locked` fails on a stale lock), its
#   bytecode compiled.
# Before the command: the python, uv, postgres and redis images, resolved once by
# tools/standins (the official ones, or local stand-ins where they cannot be pulled, with a loud
# notice), exported as BOARDS_<KIND>_IMAGE for the build and the tests; variables already set win.
set -euo pipefail

# The uv version: the tag of the Dockerfile's UV_IMAGE default, the one place it is written.
UV_VERSION=$(sed -n -E 's|^ARG UV_IMAGE=[^@[:space:]]+:([0-9][0-9.]*)(@[^[:space:]]*)?[[:space:]]*$|\1|p' "$(dirname "${BASH_SOURCE[0]}")/../packages/backend/Dockerfile")
: "${UV_VERSION:?cannot read the uv version from ARG UV_IMAGE in packages/backend/Dockerfile}"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { printf 'bootstrap: %s\n' "$*" >&2; }

# uv goes where uv's own installer puts it, ~/.local/bin (a link into a private virtualenv that
# holds the pinned version), so a new shell finds it after this script has run.
bin_dir=$HOME/.local/bin
if ! command -v uv >/dev/null 2>&1; then
  uv_home=${XDG_DATA_HOME:-$HOME/.local/share}/boards/uv-$UV_VERSION
  if [ ! -x "$uv_home/bin/uv" ]; then
    log "installing uv $UV_VERSION into $uv_home"
    python3 -m venv "$uv_home"
    "$uv_home/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  fi
  mkdir -p "$bin_dir"
  for tool in uv uvx; do
    link=$bin_dir/$tool
    # A uv the user installed there themselves (a file, not a link) is left alone.
    if [ -e "$link" ] && [ ! -L "$link" ]; then continue; fi
    ln -sfn "$uv_home/bin/$tool" "$link"
  done
  case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *) log "uv is in $bin_dir, which is not on your PATH: add it (export PATH=\"\$HOME/.local/bin:\$PATH\") or run $bin_dir/uv" ;;
  esac
  export PATH="$bin_dir:$uv_home/bin:$PATH"
fi

bash tools/engine/ensure-docker.sh

log "syncing the workspace environment (uv.lock)"
# Bytecode compiled once here: every test starts Python processes that import SQLAlchemy, FastAPI
# and dramatiq, and where PYTHONDONTWRITEBYTECODE is set (as on many CI machines) each would
# compile them again from source.
uv sync --locked --quiet --compile-bytecode

[ $# -gt 0 ] || exit 0
images=$(tools/standins/resolve.sh --env) || { log "no image for every kind (tools/standins/README.md)"; exit 1; }
set -a
eval "$images"
set +a
exec uv run --frozen "$@"
