# shellcheck shell=bash
# python:3.12-slim-bookworm stand-in: a slim Debian bookworm with the runtime libraries CPython's
# extension modules link against, and this machine's CPython 3.12 copied into /usr/local the way
# the official image installs its own (stripped binaries, no test suites, no bytecode).
#
# The CPython is `uv python find --system 3.12` (or $BOARDS_STANDIN_PYTHON): a build with a
# shared libpython made for Debian bookworm (e.g. pyenv's) is what the recipe is made for.

_host_python() {
  local py=${BOARDS_STANDIN_PYTHON:-}
  if [ -z "$py" ] && command -v uv >/dev/null 2>&1; then
    py=$(cd "$REPO_ROOT" && uv python find --system 3.12 2>/dev/null) || py=""
  fi
  [ -n "$py" ] || py=$(command -v python3.12 || true)
  [ -n "$py" ] || die "no CPython 3.12 on this machine (uv python find --system 3.12)"
  printf '%s\n' "$py"
}

HOST_PYTHON=$(_host_python)
# The installation's prefix (not a virtual environment's) and its exact version.
PYTHON_PREFIX=$("$HOST_PYTHON" -c 'import sys; print(sys.base_prefix)')
PYTHON_VERSION=$("$HOST_PYTHON" -c 'import platform; print(platform.python_version())')
case "$PYTHON_VERSION" in 3.12.*) ;; *) die "$HOST_PYTHON is Python $PYTHON_VERSION, not 3.12" ;; esac
if [ ! -x "$PYTHON_PREFIX/bin/python3.12" ] || [ ! -f "$PYTHON_PREFIX/lib/python3.12/os.py" ]; then
  die "$PYTHON_PREFIX does not look like a CPython 3.12 installation prefix"
fi

recipe_params() {
  printf 'python=%s prefix=%s suite=%s mirror=%s\n' \
    "$PYTHON_VERSION" "$PYTHON_PREFIX" "$DEBIAN_SUITE" "$DEBIAN_MIRROR"
  sha256sum "$PYTHON_PREFIX/bin/python3.12" "$PYTHON_PREFIX"/lib/libpython3.12.so* 2>/dev/null || true
}

# The Debian packages holding the shared libraries the interpreter and its extension modules
# load (tkinter excepted, as in the official image), found with ldd and dpkg -S on this machine.
_runtime_packages() {
  local so pkg
  if ! command -v dpkg >/dev/null 2>&1; then
    # Not a Debian machine: what the official image keeps (its ldd scan on bookworm).
    printf '%s\n' libbz2-1.0 libexpat1 libffi8 libgdbm6 libgdbm-compat4 liblzma5 libncursesw6 \
      libnsl2 libreadline8 libsqlite3-0 libssl3 libtinfo6 libtirpc3 libuuid1 zlib1g
    return
  fi
  {
    printf '%s\n' "$PYTHON_PREFIX/bin/python3.12" "$PYTHON_PREFIX"/lib/libpython3*.so*
    find "$PYTHON_PREFIX/lib/python3.12/lib-dynload" -name '*.so' ! -name '*tkinter*'
  } | while read -r so; do ldd "$so" 2>/dev/null || true; done \
    | awk '/=>/ && $(NF-1) ~ /^\// { print $(NF-1) }' | sort -u \
    | while read -r so; do
      case "$so" in "$PYTHON_PREFIX"/*) continue ;; esac
      pkg=""
      for candidate in "$so" "$(readlink -f "$so")" "${so#/usr}" "/usr${so}"; do
        pkg=$(dpkg -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1) && [ -n "$pkg" ] && break
      done
      if [ -n "$pkg" ]; then printf '%s\n' "$pkg"; else log "warning: no Debian package holds $so"; fi
    done | sort -u
}

recipe_context() { # recipe_context WORK CTX
  need_host_tool strip binutils
  need_host_tool patchelf patchelf
  local pkgs
  pkgs=$(_runtime_packages | paste -sd, -)
  log "Python $PYTHON_VERSION from $PYTHON_PREFIX; runtime packages: ${pkgs:-none found}"
  export BOARDS_PYTHON_PREFIX=$PYTHON_PREFIX
  slim_rootfs "$1" "$2/rootfs.tar" \
    --include="ca-certificates,netbase,tzdata${pkgs:+,$pkgs}" \
    --customize-hook="'$RECIPE_DIR/install-python.sh' \"\$1\""
  echo "PYTHON_VERSION=$PYTHON_VERSION" >>"$2/build-args"
}
