#!/usr/bin/env bash
# Make a Docker engine with BuildKit answer on this machine.
#
# Idempotent: when `docker info` answers and `docker buildx` is present it does nothing.
# Otherwise (Debian, as root) it installs Debian's docker.io engine, fetches the buildx and
# compose CLI plugins from Debian trixie *without installing trixie packages* (dpkg -x only,
# so the system's libc is untouched), starts dockerd in the background and waits for it.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
WAIT_SECONDS=${DOCKERD_WAIT_SECONDS:-60}

engine_answers() { docker info >/dev/null 2>&1; }
buildx_present() { docker buildx version >/dev/null 2>&1; }

if engine_answers && buildx_present; then
  exit 0
fi

[ "$(id -u)" = 0 ] || die "no Docker engine answers and installing one needs root"
export DEBIAN_FRONTEND=noninteractive
# apt's own output (progress, debconf notices) goes to a log that is shown only on failure, so
# our lines and the loud stand-in notices stay readable.
apt_log=$(mktemp)
work=
trap 'rm -rf "$apt_log" ${work:+"$work"}' EXIT
quiet() { "$@" >>"$apt_log" 2>&1 || { cat "$apt_log" >&2; die "failed: $*"; }; }

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing Debian's docker.io engine"
  quiet apt-get update -qq
  quiet apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends docker.io iptables
fi

# The docker CLI's plugins: buildx gives `docker build` BuildKit, compose is for users' compose files.
if ! buildx_present || ! docker compose version >/dev/null 2>&1; then
  log "fetching docker-buildx and docker-compose CLI plugins from Debian trixie (extracted, not installed)"
  work=$(mktemp -d)
  mkdir -p "$work/lists/partial" "$work/archives/partial"
  printf 'deb http://deb.debian.org/debian trixie main\n' >"$work/trixie.list"
  apt_opts=(-o "Dir::Etc::SourceList=$work/trixie.list" -o "Dir::Etc::SourceParts=-"
            -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives"
            -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
  quiet apt-get "${apt_opts[@]}" update -qq
  (cd "$work" && quiet apt-get "${apt_opts[@]}" download docker-buildx docker-compose)
  for deb in "$work"/docker-buildx_*.deb "$work"/docker-compose_*.deb; do
    dpkg -x "$deb" "$work/root"
  done
  install -d "$PLUGIN_DIR"
  for plugin in docker-buildx docker-compose; do
    src=$(find "$work/root" -type f -name "$plugin" -path '*cli-plugins*' | head -n1)
    [ -n "$src" ] || die "$plugin not found in the downloaded package"
    install -m 0755 "$src" "$PLUGIN_DIR/$plugin"
  done
fi

if ! engine_answers; then
  log "starting dockerd (log: $DOCKERD_LOG)"
  nohup dockerd --ip 127.0.0.1 >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq "$WAIT_SECONDS"); do
    engine_answers && break
    sleep 1  # polling the engine's socket: there is nothing to wait on but the socket itself
  done
  engine_answers || die "dockerd did not answer within ${WAIT_SECONDS}s; see $DOCKERD_LOG"
fi

buildx_present || die "docker buildx is still missing"
log "engine $(docker version --format '{{.Server.Version}}'), buildx $(docker buildx version | awk '{print $2}')"
