#!/bin/sh
# mmdebstrap customize hook ($1 = root file system): the official image's layout.
set -eu
root=$1
in_root() { chroot "$root" "$@"; }

[ "$(in_root id -u postgres):$(in_root id -g postgres)" = "999:999" ] \
  || { echo "customize: postgres is not uid/gid 999" >&2; exit 1; }
if [ -d "$root/var/lib/postgresql/$PG_MAJOR/main" ]; then
  in_root pg_dropcluster "$PG_MAJOR" main
fi

# en_US.UTF-8, the official image's LANG.
in_root localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8

# Listen on every interface by default (initdb copies the sample into PGDATA).
sample=$root/usr/share/postgresql/$PG_MAJOR/postgresql.conf.sample
sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" "$sample"
grep -qF "listen_addresses = '*'" "$sample"

# Inside the chroot: /var/run is an absolute symlink to /run, which outside would be the host's.
in_root mkdir -p /var/run/postgresql /var/lib/postgresql/data /docker-entrypoint-initdb.d
in_root chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql
in_root chmod 3777 /var/run/postgresql
in_root chmod 1777 /var/lib/postgresql/data
in_root usermod -p '!' postgres

# shellcheck disable=SC2016 # ${Version} is dpkg-query's, not the shell's
version=$(in_root dpkg-query -W -f '${Version}' "postgresql-$PG_MAJOR")
echo "PG_VERSION=$version" >>"$STANDIN_CTX/build-args"
