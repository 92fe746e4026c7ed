#!/bin/sh
# mmdebstrap essential hook: tell postgresql-common not to create the 15/main cluster on
# installation (the official image does the same); the entrypoint runs initdb on PGDATA.
set -eu
mkdir -p "$1/etc/postgresql-common/createcluster.d"
echo 'create_main_cluster = false' >"$1/etc/postgresql-common/createcluster.d/boards-standin.conf"
