#!/usr/bin/env bash
# Copy the workspace's tracked and new (not ignored) files to DEST, for builds that change files
# without touching the working tree (the cache tests, the code-change benchmark).
#   tools/image/copy-workspace.sh DEST
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: copy-workspace.sh DEST" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$1"
git -C "$root" ls-files -z --cached --others --exclude-standard \
  | tar -C "$root" --null -T - -cf - | tar -C "$1" -xf -
