#!/usr/bin/env bash
# Build the backend image from the workspace root with its scoped context.
#
#   tools/image/build.sh [--tag NAME:TAG] [--context DIR] [extra `docker build` arguments...]
#
# --context: a copy of the workspace to build from (the tests use it to change files safely).
#
# Base images: tools/standins/resolve.sh answers the Dockerfile's pinned defaults when they are
# here or pullable, else local stand-ins (and says so loudly); BOARDS_PYTHON_IMAGE and
# BOARDS_UV_IMAGE, when set, are used as given. With the official images, a plain
# `docker build -f packages/backend/Dockerfile .` is the same build.
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

# Both at once (each is mostly a wait for the engine); a failure stops the build.
uv_answer=$(mktemp)
trap 'rm -f "$uv_answer"' EXIT
tools/standins/resolve.sh uv >"$uv_answer" &
uv_resolver=$!
python_image=$(tools/standins/resolve.sh python)
wait "$uv_resolver"
uv_image=$(<"$uv_answer")
# The [project] version, as `uv version` would print it, without starting uv.
version=$(sed -n -E 's/^version[[:space:]]*=[[:space:]]*"([^"]+)".*/\1/p' packages/backend/pyproject.toml | head -n1)
[ -n "$version" ] || { echo "build.sh: no version in packages/backend/pyproject.toml" >&2; exit 2; }
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)

args=(
  --file "$context/packages/backend/Dockerfile"
  --tag "$tag"
  --build-arg "PYTHON_IMAGE=$python_image"
  --build-arg "UV_IMAGE=$uv_image"
  --build-arg "VERSION=$version"
  --build-arg "REVISION=$revision"
)
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

echo "build.sh: building $tag (base $python_image, uv $uv_image, version $version)" >&2
rm -f "$uv_answer"
DOCKER_BUILDKIT=1 exec docker build "${args[@]}" "$@" "$context"
