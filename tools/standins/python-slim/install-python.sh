#!/usr/bin/env bash
# mmdebstrap customize hook ($1 = root file system): install the CPython 3.12 found in
# $BOARDS_PYTHON_PREFIX into /usr/local like the official python image's Dockerfile does.
set -euo pipefail
root=$1
src=${BOARDS_PYTHON_PREFIX:?}
dst=$root/usr/local
log() { printf 'install-python: %s\n' "$*" >&2; }

log "copying CPython from $src"
# Only what `make install` puts there; no site-packages (pip comes from ensurepip below).
(
  cd "$src"
  tar -cf - \
    --exclude='lib/python3.12/site-packages/*' --exclude='__pycache__' --exclude='*.pyc' \
    --exclude='*.pyo' --exclude='libpython*.a' \
    bin/python3.12 bin/python3.12-config bin/pydoc3.12 bin/idle3.12 bin/2to3-3.12 \
    lib/libpython3.12.so lib/libpython3.12.so.1.0 lib/libpython3.so \
    lib/pkgconfig include/python3.12 lib/python3.12
) | tar -xf - -C "$dst" --no-same-owner
cp "$src/lib/python3.12/site-packages/README.txt" "$dst/lib/python3.12/site-packages/" 2>/dev/null || true

# What the official image removes: test suites, bytecode, static libraries.
find "$dst" -depth \
  \( \( -type d -a \( -name test -o -name tests -o -name idle_test -o -name __pycache__ \) \) \
  -o \( -type f -a \( -name '*.pyc' -o -name '*.pyo' -o -name 'libpython*.a' \) \) \) \
  -exec rm -rf '{}' +

# The build prefix, wherever it is recorded as text (sysconfig data, Makefile, pkg-config,
# python3.12-config, script shebangs), becomes /usr/local; binaries lose their RUNPATH.
grep -rlI --null -F "$src" "$dst" | xargs -0 -r sed -i "s|$src|/usr/local|g"
find "$dst" -type f \( -name 'python3.12' -o -name '*.so' -o -name '*.so.*' \) -print0 |
  while IFS= read -r -d '' f; do
    if patchelf --print-rpath "$f" >/dev/null 2>&1 && [ -n "$(patchelf --print-rpath "$f")" ]; then
      patchelf --remove-rpath "$f"
    fi
  done
# Stripped like the official build (LDFLAGS=-Wl,--strip-all).
strip --strip-all "$dst/bin/python3.12"
find "$dst/lib" -type f \( -name '*.so' -o -name 'libpython3.12.so.1.0' \) -exec strip --strip-unneeded '{}' +

cd "$dst/bin"
ln -sfT python3.12 python3
ln -sfT python3.12-config python3-config
ln -sfT pydoc3.12 pydoc3
ln -sfT idle3.12 idle3
ln -sfT 2to3-3.12 2to3

in_root() { chroot "$root" env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
in_root ldconfig
log "pip from ensurepip"
in_root python3 -m ensurepip --upgrade >&2
# The official image's unversioned names.
for name in idle3 pip3 pydoc3 python3 python3-config; do
  [ -e "$name" ] || { log "missing /usr/local/bin/$name"; exit 1; }
  ln -sfT "$name" "${name//3/}"
done
find "$dst" -depth \( -name __pycache__ -o -name '*.pyc' \) -exec rm -rf '{}' +

# Every shared library the interpreter and its modules need is there (tkinter excepted).
# shellcheck disable=SC2016 # expanded by the shell inside the chroot
missing=$(in_root sh -c 'for f in /usr/local/bin/python3.12 /usr/local/lib/python3.12/lib-dynload/*.so; do
  case "$f" in *tkinter*) continue ;; esac; ldd "$f" | sed -n "s|^|$f: |; /not found/p"; done')
if [ -n "$missing" ]; then
  log "missing shared libraries:"
  printf '%s\n' "$missing" >&2
  exit 1
fi
in_root env PYTHONDONTWRITEBYTECODE=1 python3 -c \
  'import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, readline, decimal, hashlib, curses, pyexpat; print("python", __import__("sys").version)' >&2
in_root env PYTHONDONTWRITEBYTECODE=1 pip3 --version >&2
find "$dst" -depth \( -name __pycache__ -o -name '*.pyc' \) -exec rm -rf '{}' +
