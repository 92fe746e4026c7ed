#!/usr/bin/env bash
# Build the backend image from the workspace root with its scoped context.
#
#   tools/image/build.sh [--tag NAME:TAG] [--context DIR] [extra `docker build` arguments...]
#
# --context: a copy of the workspace to build from (the tests use it to change files safely).
#
# Base images: BOARDS_PYTHON_IMAGE and BOARDS_UV_IMAGE, when set, are passed as the build args
# PYTHON_IMAGE and UV_IMAGE; unset, the Dockerfile's pinned defaults stand, and this is the same
# build as a plain `docker build -f packages/backend/Dockerfile .`. A build that fails because a
# base image cannot be had says in one line how to get local stand-ins (tools/standins).
# Network options (all optional, none of them lands in the image; see docs/image.md):
#   BOARDS_BUILD_CA_BUNDLE  PEM bundle handed in as the `ssl_ca` BuildKit secret
#                           (default: $SSL_CERT_FILE when that file exists; set empty to disable)
#   BOARDS_BUILD_INDEX_URL  package index URL (build arg UV_DEFAULT_INDEX)
#   BOARDS_BUILD_NETRC      netrc file with index credentials (the `netrc` BuildKit secret)
# Exit codes: 0 built, 2 bad usage, otherwise docker build's own.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

tag=boards-backend:local
context=$root
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) [ $# -ge 2 ] || { echo "build.sh: --tag needs a value" >&2; exit 2; }; tag=$2; shift 2 ;;
    --tag=*) tag=${1#--tag=}; shift ;;
    --context) [ $# -ge 2 ] || { echo "build.sh: --context needs a value" >&2; exit 2; }; context=$2; shift 2 ;;
    *) break ;;
  esac
done

# The [project] version, as `uv version` would print it, without starting uv.
version=$(sed -n -E 's/^version[[:space:]]*=[[:space:]]*"([^"]+)".*/\1/p' packages/backend/pyproject.toml | head -n1)
[ -n "$version" ] || { echo "build.sh: no version in packages/backend/pyproject.toml" >&2; exit 2; }
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)

args=(
  --file "$context/packages/backend/Dockerfile"
  --tag "$tag"
  --build-arg "VERSION=$version"
  --build-arg "REVISION=$revision"
)
base="the Dockerfile's default base and uv images"
if [ -n "${BOARDS_PYTHON_IMAGE:-}" ] || [ -n "${BOARDS_UV_IMAGE:-}" ]; then
  base="base ${BOARDS_PYTHON_IMAGE:-(default)}, uv ${BOARDS_UV_IMAGE:-(default)}"
fi
[ -z "${BOARDS_PYTHON_IMAGE:-}" ] || args+=(--build-arg "PYTHON_IMAGE=$BOARDS_PYTHON_IMAGE")
[ -z "${BOARDS_UV_IMAGE:-}" ] || args+=(--build-arg "UV_IMAGE=$BOARDS_UV_IMAGE")
ca_bundle=${BOARDS_BUILD_CA_BUNDLE-${SSL_CERT_FILE:-}}
if [ -n "$ca_bundle" ]; then
  [ -f "$ca_bundle" ] || { echo "build.sh: CA bundle '$ca_bundle' does not exist" >&2; exit 2; }
  args+=(--secret "id=ssl_ca,src=$ca_bundle")
fi
if [ -n "${BOARDS_BUILD_NETRC:-}" ]; then
  [ -f "$BOARDS_BUILD_NETRC" ] || { echo "build.sh: netrc '$BOARDS_BUILD_NETRC' does not exist" >&2; exit 2; }
  args+=(--secret "id=netrc,src=$BOARDS_BUILD_NETRC")
fi
[ -z "${BOARDS_BUILD_INDEX_URL:-}" ] || args+=(--build-arg "UV_DEFAULT_INDEX=$BOARDS_BUILD_INDEX_URL")

echo "build.sh: building $tag ($base, version $version)" >&2
# docker's output is passed on as it comes and kept, to tell a base image that cannot be had
# (BuildKit names the failed step "[internal] load metadata for IMAGE") from other failures.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
{ DOCKER_BUILDKIT=1 docker build "${args[@]}" "$@" "$context" 2>&1 >&3 3>&- | tee "$log" >&2; } 3>&1 || status=$?
if [ "$status" != 0 ]; then
  missing=$(sed -n 's/^ > \[internal\] load metadata for \(.*\):$/\1/p' "$log" | head -n1)
  [ -z "$missing" ] || echo "build.sh: cannot get the image $missing; where no registry is reachable, build local stand-ins and pass them on: eval \"\$(just standins)\" (or run through tools/bootstrap.sh)" >&2
fi
exit "$status"
