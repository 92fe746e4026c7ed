#!/usr/bin/env bash
# Entrypoint of the boards postgres stand-in (boards-standin/postgres:15).
#
# Written for boards; it keeps the contract of the official postgres image's entrypoint:
#   - POSTGRES_PASSWORD is required unless POSTGRES_HOST_AUTH_METHOD=trust
#   - POSTGRES_USER (default postgres), POSTGRES_DB (default: the user), POSTGRES_INITDB_ARGS,
#     POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD; each also as *_FILE (docker secrets)
#   - on an empty PGDATA: initdb, `host all all all <method>` in pg_hba.conf (scram-sha-256
#     by default), a socket-only temporary server for /docker-entrypoint-initdb.d/*.sh, *.sql,
#     *.sql.gz, *.sql.xz, *.sql.zst, then stop it; a PGDATA holding a database is left alone
#   - started as root it fixes ownership and re-executes itself as `postgres` (gosu)
#   - finally `exec postgres ...`, so the server is PID 1 and gets the container's signals
#   - a first argument starting with `-` is an option for postgres; other commands run as given
# Not carried over: nss_wrapper for uids missing from /etc/passwd.
set -Eeo pipefail

# file_env VAR [DEFAULT]: VAR, or the contents of the file named by VAR_FILE, or DEFAULT.
file_env() {
	local var=$1 file_var=${1}_FILE def=${2:-} val
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		printf >&2 'error: both %s and %s are set; they are exclusive\n' "$var" "$file_var"
		exit 1
	fi
	val=$def
	if [ -n "${!var:-}" ]; then
		val=${!var}
	elif [ -n "${!file_var:-}" ]; then
		val=$(<"${!file_var}")
	fi
	export "$var"="$val"
	unset "$file_var"
}

_is_sourced() {
	[ "${#FUNCNAME[@]}" -ge 2 ] && [ "${FUNCNAME[0]}" = _is_sourced ] && [ "${FUNCNAME[1]}" = source ]
}

# Options that make postgres print something and exit: no initialisation for those.
_pg_want_help() {
	local arg
	for arg; do
		case "$arg" in
			-'?' | --help | --describe-config | -V | --version) return 0 ;;
		esac
	done
	return 1
}

docker_setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	file_env POSTGRES_HOST_AUTH_METHOD
	DATABASE_ALREADY_EXISTS=
	if [ -s "$PGDATA/PG_VERSION" ]; then
		DATABASE_ALREADY_EXISTS=true
	fi
}

docker_create_db_directories() {
	local uid
	uid=$(id -u)
	mkdir -p "$PGDATA"
	chmod 00700 "$PGDATA" || :
	mkdir -p /var/run/postgresql || :
	chmod 03775 /var/run/postgresql || :
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		mkdir -p "$POSTGRES_INITDB_WALDIR"
		if [ "$uid" = 0 ]; then
			find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
		fi
		chmod 700 "$POSTGRES_INITDB_WALDIR"
	fi
	if [ "$uid" = 0 ]; then
		find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
		find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
	fi
}

docker_verify_minimum_env() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		cat >&2 <<-'EOE'
			Error: the database is uninitialized and no superuser password is given.
			       Set POSTGRES_PASSWORD to a non-empty value, e.g. "-e POSTGRES_PASSWORD=secret"
			       on "docker run", or POSTGRES_HOST_AUTH_METHOD=trust to allow every
			       connection without a password (not recommended).
		EOE
		exit 1
	fi
	if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
		cat >&2 <<-'EOW'
			WARNING: POSTGRES_HOST_AUTH_METHOD=trust: every host may connect without a password.
		EOW
	fi
}

docker_init_database_dir() {
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
	fi
	# POSTGRES_INITDB_ARGS is word-split on purpose, like the official image does.
	eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "$@"'
}

# host all all all <method>; the default method is what password_encryption says.
pg_setup_hba_conf() {
	if [ "${1:-}" = postgres ]; then
		shift
	fi
	if [ -z "$POSTGRES_HOST_AUTH_METHOD" ]; then
		POSTGRES_HOST_AUTH_METHOD=$(postgres -C password_encryption "$@")
	fi
	{
		printf '\n'
		if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
			printf '# warning: trust is enabled for all connections\n'
		fi
		printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
	} >>"$PGDATA/pg_hba.conf"
}

# A temporary server on the unix socket only: nothing outside sees it before init is done.
docker_temp_server_start() {
	if [ "${1:-}" = postgres ]; then
		shift
	fi
	set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
	PGUSER=${PGUSER:-$POSTGRES_USER} pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

docker_temp_server_stop() {
	PGUSER=${PGUSER:-postgres} pg_ctl -D "$PGDATA" -m fast -w stop
}

# docker_process_sql [psql options]: psql against the temporary server, stopping on errors.
docker_process_sql() {
	local runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
	if [ -n "$POSTGRES_DB" ]; then
		runner+=(--dbname "$POSTGRES_DB")
	fi
	PGHOST='' PGHOSTADDR='' "${runner[@]}" "$@"
}

docker_setup_db() {
	local exists
	# POSTGRES_DB='' is for docker_process_sql; "$POSTGRES_DB" in the arguments is the real name.
	# shellcheck disable=SC2097,SC2098
	exists=$(POSTGRES_DB='' docker_process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<-'EOSQL'
		SELECT 1 FROM pg_database WHERE datname = :'db' ;
	EOSQL
	)
	if [ -z "$exists" ]; then
		# shellcheck disable=SC2097,SC2098
		POSTGRES_DB='' docker_process_sql --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
		printf '\n'
	fi
}

docker_process_init_files() {
	local f
	printf '\n'
	for f; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					printf '%s: running %s\n' "$0" "$f"
					"$f"
				else
					printf '%s: sourcing %s\n' "$0" "$f"
					# shellcheck disable=SC1090
					. "$f"
				fi
				;;
			*.sql)
				printf '%s: running %s\n' "$0" "$f"
				docker_process_sql -f "$f"
				printf '\n'
				;;
			*.sql.gz)
				printf '%s: running %s\n' "$0" "$f"
				gunzip -c "$f" | docker_process_sql
				printf '\n'
				;;
			*.sql.xz)
				printf '%s: running %s\n' "$0" "$f"
				xzcat "$f" | docker_process_sql
				printf '\n'
				;;
			*.sql.zst)
				printf '%s: running %s\n' "$0" "$f"
				zstd -dc "$f" | docker_process_sql
				printf '\n'
				;;
			*) printf '%s: ignoring %s\n' "$0" "$f" ;;
		esac
	done
}

_main() {
	if [ "${1:0:1}" = - ]; then
		set -- postgres "$@"
	fi

	if [ "$1" = postgres ] && ! _pg_want_help "$@"; then
		docker_setup_env
		docker_create_db_directories
		if [ "$(id -u)" = 0 ]; then
			exec gosu postgres "${BASH_SOURCE[0]}" "$@"
		fi

		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			docker_verify_minimum_env
			# fail early when the init directory is not readable
			ls /docker-entrypoint-initdb.d/ >/dev/null
			docker_init_database_dir
			pg_setup_hba_conf "$@"
			export PGPASSWORD=${PGPASSWORD:-$POSTGRES_PASSWORD}
			docker_temp_server_start "$@"
			docker_setup_db
			shopt -s nullglob
			docker_process_init_files /docker-entrypoint-initdb.d/*
			shopt -u nullglob
			docker_temp_server_stop
			unset PGPASSWORD
			printf '\nPostgreSQL init process complete; ready for start up.\n\n'
		else
			printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
		fi
	fi

	exec "$@"
}

if ! _is_sourced; then
	_main "$@"
fi
