#!/bin/sh
# Entrypoint of the boards redis stand-in (boards-standin/redis:7). Written for boards; it
# keeps the contract of the official redis image's entrypoint:
#   - a first argument that is an option (`--port 6380`) or a `*.conf` file is for redis-server
#   - started as root, redis-server gets /data (the workdir) chowned and runs as `redis` (gosu)
#   - umask 0077 unless one was set
#   - `exec`, so redis-server is PID 1 and gets the container's signals
# The official image's redis-server is compiled with protected mode off; Debian's is not, so
# `--protected-mode no` is added unless the arguments or the given config file set it.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec gosu redis "$0" "$@"
fi

if [ "$1" = redis-server ]; then
	protected_mode_set=
	for arg in "$@"; do
		[ "$arg" = --protected-mode ] && protected_mode_set=1
	done
	case "${2:-}" in
		*.conf)
			if [ -r "$2" ] && grep -qiE '^[[:space:]]*protected-mode[[:space:]]' "$2"; then
				protected_mode_set=1
			fi
			;;
	esac
	if [ -z "$protected_mode_set" ]; then
		set -- "$@" --protected-mode no
	fi
fi

um=$(umask)
if [ "$um" = 0022 ]; then
	umask 0077
fi

exec "$@"
