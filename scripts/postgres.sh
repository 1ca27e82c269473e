#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the relay's PostgreSQL tests.
#
#   scripts/postgres.sh start DIR   initdb + start under DIR (a fresh temp dir),
#                                   trust auth for the local user `alcove`,
#                                   listening on a free port on 127.0.0.1 only;
#                                   prints the URL (also kept in DIR/url)
#   scripts/postgres.sh stop DIR    stops it (the caller removes DIR)
#
# The cluster runs with fsync off (a throwaway: tests need no durability);
# ALCOVE_PG_FSYNC=on keeps it on, as the relay_load benchmark wants, so
# PostgreSQL and SQLite (synchronous = FULL) pay for durability alike.
#
# initdb refuses to run as root: as root the cluster is run by the
# `postgres` system user (the Debian package creates it) on a directory it
# owns. Tests make one database per test (CREATE DATABASE) on this cluster.
set -euo pipefail

bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  echo "postgres.sh: no PostgreSQL server binaries (run scripts/setup.sh)" >&2
  exit 1
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
bin=$(bindir)

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U alcove --auth=trust -E UTF8 --no-locale \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # A free port: try a few random ones (another cluster may hold one).
    for _ in 1 2 3 4 5 6 7 8; do
      port=$(( 20000 + RANDOM % 30000 ))
      if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
          -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=${ALCOVE_PG_FSYNC:-off}" \
          start >/dev/null 2>&1; then
        url="postgres://alcove@127.0.0.1:$port/postgres"
        echo "$url" | as_owner tee "$dir/url" >/dev/null
        echo "$url"
        exit 0
      fi
    done
    echo "postgres.sh: the server did not start; its log:" >&2
    cat "$dir/server.log" >&2 || true
    exit 1
    ;;
  stop)
    [ -d "$dir/data" ] || exit 0
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
