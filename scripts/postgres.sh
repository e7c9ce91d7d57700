#!/usr/bin/env bash
# Start a private PostgreSQL cluster on PGPORT (default 55432) unless one already answers there.
# Prints nothing on success but the port; idempotent. Used by `make test` and CI.
set -euo pipefail
PGPORT="${PGPORT:-55432}"
PGDATA="${PGDATA_DIR:-/tmp/wecare-pg-$PGPORT}"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
if [ -z "$PGBIN" ]; then
  echo "PostgreSQL server binaries not found: install the postgresql package." >&2
  exit 1
fi
as_pg() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then
  exit 0
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  [ "$(id -u)" = "0" ] && chown postgres:postgres "$PGDATA"
  as_pg "$PGBIN/initdb" -D "$PGDATA" -U wecare --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" -l "$PGDATA/server.log" -w start >/dev/null
"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"
