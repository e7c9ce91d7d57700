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
# shared_buffers 1GB: the million-contact search benchmark's table and indexes (~700 MB) stay cached
# while an import writes; with the default 128MB the import evicted them and dirtied the rest, and
# searches read and wrote pages themselves (p95 2x the target). The background writer, woken more
# often with more pages per round, cleans what the import dirties before a search has to. The
# memory is taken only as pages are used.
SETTINGS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
SETTINGS="$SETTINGS -c shared_buffers=1GB -c bgwriter_delay=50ms -c bgwriter_lru_maxpages=1000 -c bgwriter_lru_multiplier=4"
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 $SETTINGS" -l "$PGDATA/server.log" -w start >/dev/null
"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"
