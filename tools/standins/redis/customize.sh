#!/bin/sh
# mmdebstrap customize hook ($1 = root file system): the official image's layout.
set -eu
root=$1
in_root() { chroot "$root" "$@"; }

[ "$(in_root id -u redis):$(in_root id -g redis)" = "999:999" ] \
  || { echo "customize: redis is not uid/gid 999" >&2; exit 1; }
in_root mkdir -p /data
in_root chown redis:redis /data
in_root usermod -p '!' redis
in_root redis-server --version >&2

version=$(in_root redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
[ -n "$version" ] || { echo "customize: cannot read the redis-server version" >&2; exit 1; }
echo "REDIS_VERSION=$version" >>"$STANDIN_CTX/build-args"
