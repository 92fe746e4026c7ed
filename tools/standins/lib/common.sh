# Shared helpers for the stand-in recipes. Sourced by tools/standins/build.sh, never run.
# shellcheck shell=bash

STANDINS_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Debian archive. Plain HTTP on purpose: apt verifies the signed Release files itself.
DEBIAN_SUITE=${BOARDS_DEBIAN_SUITE:-bookworm}
DEBIAN_MIRROR=${BOARDS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${BOARDS_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

log() { printf 'standins: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The loud notice: a stand-in is about to be used or built in place of an official image.
banner() {
  local line
  line=$(printf '%*s' 78 '' | tr ' ' '!')
  {
    printf '\n%s\n' "$line"
    for msg in "$@"; do printf '!!  %-72s!!\n' "$msg"; done
    printf '%s\n\n' "$line"
  } >&2
}

# Install Debian packages on the build machine when a command is missing (CI starts fresh).
need_host_tool() { # need_host_tool COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "$1 is missing; install the Debian package $2 (needs root)"
  log "installing $2 on the build machine (for $1)"
  if [ -z "${_STANDINS_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    _STANDINS_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >&2
}

# The dpkg filters of Debian's "slim" images (debuerreotype): no docs except copyright
# notices, no man/info pages, no translations. They stay in the image (dpkg.cfg.d/99mmdebstrap)
# so packages installed later are slimmed too, as in debian:bookworm-slim.
SLIM_DPKG_EXCLUDE='/usr/share/doc/* /usr/share/man/* /usr/share/groff/* /usr/share/info/*
  /usr/share/lintian/* /usr/share/linda/* /usr/share/locale/* /usr/share/gnome/help/*
  /usr/share/help/* /usr/share/omf/*'
SLIM_DPKG_INCLUDE='/usr/share/doc/*/copyright /usr/share/locale/locale.alias'
SLIM_DPKG_OPTS=()
# read -a splits on white space without expanding the globs, which are dpkg's patterns.
read -r -d '' -a _slim_paths <<<"$SLIM_DPKG_EXCLUDE" || true
for _path in "${_slim_paths[@]}"; do SLIM_DPKG_OPTS+=("--dpkgopt=path-exclude=$_path"); done
read -r -d '' -a _slim_paths <<<"$SLIM_DPKG_INCLUDE" || true
for _path in "${_slim_paths[@]}"; do SLIM_DPKG_OPTS+=("--dpkgopt=path-include=$_path"); done

# slim_rootfs WORKDIR OUT_TAR [mmdebstrap options...]
# A Debian minbase root file system with the slim filters, merged /usr (without the usrmerge
# package and its perl), apt configured like Debian's container images, no apt lists, caches
# or logs, written as a tar (numeric owners, empty /dev, /proc, /sys) for `ADD rootfs.tar /`.
slim_rootfs() {
  local dir=$1/rootfs out=$2 mmlog=${STANDIN_LOG:-$1/mmdebstrap.log} status
  shift 2
  need_host_tool mmdebstrap mmdebstrap
  log "mmdebstrap $DEBIAN_SUITE (minbase, slim) from $DEBIAN_MIRROR; full log: $mmlog"
  # Progress on stderr: mmdebstrap's own I:/W:/E: lines and our hooks' lines.
  set +e
  mmdebstrap \
    --mode=root --variant=minbase --format=directory \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    "${SLIM_DPKG_OPTS[@]}" \
    --aptopt='Acquire::Languages "none"' \
    --customize-hook="sync-in '$STANDINS_LIB/overlay' /" \
    "$@" \
    "$DEBIAN_SUITE" "$dir" \
    "deb $DEBIAN_MIRROR $DEBIAN_SUITE main" \
    "deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main" \
    "deb $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security main" 2>&1 |
    tee "$mmlog" | grep --line-buffered -E '^(I|W|E): |^(install-python|customize|add-system-user): ' >&2
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" != 0 ]; then
    log "mmdebstrap failed (exit $status); the end of its log:"
    tail -n 40 "$mmlog" >&2
    exit 1
  fi
  "$STANDINS_LIB/slim-cleanup.sh" "$dir"
  log "root file system: $(du -sh --apparent-size "$dir" | cut -f1)"
  tar --numeric-owner --sort=name --xattrs -C "$dir" -cf "$out" \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' .
  rm -rf "$dir"
}
