# shellcheck shell=bash
# postgres:15 stand-in: Debian's postgresql-15 on a slim bookworm, laid out like the official
# image (uid/gid 999, PGDATA volume, en_US.UTF-8, gosu, docker-entrypoint.sh).
PG_MAJOR=15

recipe_params() {
  printf 'pg_major=%s suite=%s mirror=%s\n' "$PG_MAJOR" "$DEBIAN_SUITE" "$DEBIAN_MIRROR"
}

recipe_context() { # recipe_context WORK CTX
  export STANDIN_CTX=$2 PG_MAJOR
  slim_rootfs "$1" "$2/rootfs.tar" \
    --include="postgresql-$PG_MAJOR,locales,gosu,xz-utils,zstd" \
    --essential-hook="'$STANDINS_LIB/add-system-user.sh' \"\$1\" postgres 999 /var/lib/postgresql /bin/bash" \
    --essential-hook="'$RECIPE_DIR/no-main-cluster.sh' \"\$1\"" \
    --customize-hook="'$RECIPE_DIR/customize.sh' \"\$1\""
}
