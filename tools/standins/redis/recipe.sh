# shellcheck shell=bash
# redis:7 stand-in: Debian's redis-server (7.0.x) on a slim bookworm, laid out like the
# official image (uid/gid 999, /data volume and workdir, gosu, docker-entrypoint.sh).

recipe_params() {
  printf 'suite=%s mirror=%s\n' "$DEBIAN_SUITE" "$DEBIAN_MIRROR"
}

recipe_context() { # recipe_context WORK CTX
  export STANDIN_CTX=$2
  slim_rootfs "$1" "$2/rootfs.tar" \
    --include="redis-server,gosu" \
    --essential-hook="'$STANDINS_LIB/add-system-user.sh' \"\$1\" redis 999 /home/redis /bin/sh" \
    --customize-hook="'$RECIPE_DIR/customize.sh' \"\$1\""
}
