#!/usr/bin/env bash
# Build (or reuse) a local stand-in for an official image that can be neither found locally nor
# pulled. Stand-ins are built from Debian's archive with mmdebstrap; see README.md.
#
#   build.sh KIND            ensure the stand-in; prints its image name on stdout
#   build.sh --force KIND    rebuild even when an up-to-date stand-in exists
#   build.sh --names KIND    print "OFFICIAL STANDIN" and exit (nothing is built)
#   build.sh --hash KIND     print the recipe hash and exit
#
# KIND: python | uv | postgres | redis. Logs go to stderr; stdout carries only the answer.
# A stand-in is reused while its label org.boards.standin.hash matches the hash of its recipe
# (every file of lib/, this script and the kind's folder, plus versions such as the host
# Python's), so changing a recipe rebuilds it and an unchanged one is never rebuilt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib/common.sh
source "$HERE/lib/common.sh"

usage() {
  printf 'usage: %s [--force | --names | --hash] python|uv|postgres|redis\n' "$0" >&2
  exit 2
}

mode=ensure
case "${1:-}" in
  --force) mode=force; shift ;;
  --names) mode=names; shift ;;
  --hash) mode='hash'; shift ;;
  -h | --help) usage ;;
esac
[ $# -eq 1 ] || usage
KIND=$1

# The backend Dockerfile is the single source of truth for the base and uv images.
BACKEND_DOCKERFILE=${BOARDS_BACKEND_DOCKERFILE:-$REPO_ROOT/packages/backend/Dockerfile}
dockerfile_arg() { # dockerfile_arg NAME FALLBACK
  local value=""
  if [ -f "$BACKEND_DOCKERFILE" ]; then
    value=$(sed -n -E "s/^ARG[[:space:]]+$1=\"?([^\" ]+)\"?[[:space:]]*$/\1/p" "$BACKEND_DOCKERFILE" | head -n1)
  fi
  printf '%s\n' "${value:-$2}"
}

# Image reference without registry host and digest: ghcr.io/astral-sh/uv:0.1@sha256:.. -> uv:0.1
short_name() {
  local ref=${1%%@*}
  printf '%s\n' "${ref##*/}"
}

case "$KIND" in
  python)
    OFFICIAL=$(dockerfile_arg PYTHON_IMAGE python:3.12-slim-bookworm)
    RECIPE=python-slim
    ;;
  uv)
    OFFICIAL=$(dockerfile_arg UV_IMAGE ghcr.io/astral-sh/uv:0.13.9)
    RECIPE=uv
    ;;
  postgres)
    OFFICIAL=${BOARDS_POSTGRES_OFFICIAL:-postgres:15}
    RECIPE=postgres
    ;;
  redis)
    OFFICIAL=${BOARDS_REDIS_OFFICIAL:-redis:7}
    RECIPE=redis
    ;;
  *) usage ;;
esac
# What the recipe builds. postgres, redis and python build one exact major/minor version, so
# their stand-in names are fixed; uv's follows the official tag (the recipe takes any version).
case "$KIND" in
  python) STANDIN=boards-standin/python:3.12-slim-bookworm ;;
  uv) STANDIN=boards-standin/$(short_name "$OFFICIAL") ;;
  postgres) STANDIN=boards-standin/postgres:15 ;;
  redis) STANDIN=boards-standin/redis:7 ;;
esac
RECIPE_DIR=$HERE/$RECIPE

if [ "$mode" = names ]; then
  printf '%s %s\n' "$OFFICIAL" "$STANDIN"
  exit 0
fi

# The recipe: recipe_params prints version facts that belong in the hash; recipe_context WORK CTX
# fills the docker build context CTX (rootfs.tar, files, a build-args file of KEY=VALUE lines).
# shellcheck source=/dev/null
source "$RECIPE_DIR/recipe.sh"

recipe_hash() {
  {
    printf 'kind=%s standin=%s\n' "$KIND" "$STANDIN"
    recipe_params
    (cd "$HERE" && find build.sh lib "$RECIPE" -type f -print0 | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}
HASH=$(recipe_hash)
if [ "$mode" = hash ]; then
  printf '%s\n' "$HASH"
  exit 0
fi

"$REPO_ROOT/tools/engine/ensure-docker.sh"

current_hash() {
  docker image inspect -f '{{ index .Config.Labels "org.boards.standin.hash" }}' "$STANDIN" 2>/dev/null || true
}

# One build per kind at a time on this machine; whoever waited reuses the result.
LOCK=/var/tmp/boards-standin-$KIND.lock
exec 9>"$LOCK"
if ! flock -n 9; then
  log "another build of the $KIND stand-in is running; waiting for it"
  flock 9
fi

if [ "$mode" != force ] && [ "$(current_hash)" = "$HASH" ]; then
  log "reusing $STANDIN (recipe $HASH) in place of $OFFICIAL"
  printf '%s\n' "$STANDIN"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "building the $KIND stand-in needs root (mmdebstrap --mode=root)"
banner "BUILDING A STAND-IN: $STANDIN" \
  "FOR THE OFFICIAL IMAGE $OFFICIAL, TO BE USED ONLY WHEN" \
  "THAT IS NEITHER PRESENT LOCALLY NOR PULLABLE." \
  "From Debian's archive by tools/standins/$RECIPE (about a minute)."

STANDIN_LOG=/var/tmp/boards-standin-$KIND.log
export STANDIN_LOG
WORK=$(mktemp -d /var/tmp/boards-standin-build.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
CTX=$WORK/context
mkdir -p "$CTX"
: >"$CTX/build-args"
started=$(date +%s)

recipe_context "$WORK" "$CTX"

for f in "$RECIPE_DIR"/*; do
  case "$(basename "$f")" in recipe.sh | *.md) ;; *) cp -p "$f" "$CTX/" ;; esac
done

build_args=()
while IFS= read -r kv; do
  [ -n "$kv" ] && build_args+=(--build-arg "$kv")
done <"$CTX/build-args"

previous=$(docker image inspect -f '{{.Id}}' "$STANDIN" 2>/dev/null || true)
log "docker build $STANDIN"
DOCKER_BUILDKIT=1 docker build --progress=plain \
  "${build_args[@]}" \
  --label org.boards.standin=true \
  --label "org.boards.standin.for=$OFFICIAL" \
  --label "org.boards.standin.hash=$HASH" \
  --label "org.boards.standin.recipe=tools/standins/$RECIPE" \
  --label "org.boards.standin.built=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -t "$STANDIN" "$CTX" >&2

# The replaced stand-in goes, unless something still uses or tags it.
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$STANDIN")" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi
size=$(docker image inspect -f '{{.Size}}' "$STANDIN")
log "built $STANDIN in $(($(date +%s) - started)) s; size $size bytes ($((size / 1000000)) MB)"
printf '%s\n' "$STANDIN"
