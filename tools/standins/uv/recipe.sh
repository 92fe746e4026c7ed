# shellcheck shell=bash
# ghcr.io/astral-sh/uv:<version> stand-in: the static (musl) /uv and /uvx binaries of the same
# version's musllinux wheel on PyPI, on scratch, as in the official image.
UV_VERSION=${OFFICIAL##*:}
UV_WHEEL_PLATFORM=musllinux_1_1_x86_64

recipe_params() {
  printf 'uv=%s platform=%s\n' "$UV_VERSION" "$UV_WHEEL_PLATFORM"
}

# pip download with whatever pip the machine has: python3 -m pip, else pip run by uvx.
_pip_download() {
  if python3 -m pip --version >/dev/null 2>&1; then
    python3 -m pip download --quiet "$@"
  elif command -v uvx >/dev/null 2>&1; then
    uvx --quiet pip download --quiet "$@"
  else
    die "neither python3 -m pip nor uvx is available to download the uv wheel"
  fi
}

recipe_context() { # recipe_context WORK CTX
  local work=$1 ctx=$2 wheel bin
  case "$UV_VERSION" in
    [0-9]*.[0-9]*.[0-9]*) ;;
    *) die "cannot read a uv version from $OFFICIAL" ;;
  esac
  log "downloading uv==$UV_VERSION ($UV_WHEEL_PLATFORM wheel) from the package index"
  _pip_download --no-deps --only-binary=:all: --platform "$UV_WHEEL_PLATFORM" \
    --python-version 3.12 --dest "$work/wheel" "uv==$UV_VERSION" >&2
  wheel=$(find "$work/wheel" -name "uv-$UV_VERSION-*.whl" | head -n1)
  [ -n "$wheel" ] || die "no uv $UV_VERSION wheel was downloaded"
  python3 -m zipfile -e "$wheel" "$work/unpacked"
  for bin in uv uvx; do
    install -m 0755 "$work/unpacked/uv-$UV_VERSION.data/scripts/$bin" "$ctx/$bin"
  done
  # The official binaries are static: no ELF interpreter (PT_INTERP) may be requested.
  if command -v readelf >/dev/null 2>&1 && readelf -l "$ctx/uv" | grep -q 'Requesting program interpreter'; then
    die "the uv binary from $(basename "$wheel") is not static"
  fi
  [ "$("$ctx/uv" --version | cut -d' ' -f2)" = "$UV_VERSION" ] || die "uv --version is not $UV_VERSION"
}
