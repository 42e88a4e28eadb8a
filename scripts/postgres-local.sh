#!/usr/bin/env bash
# A throw-away PostgreSQL server on 127.0.0.1:${HETERO_PG_PORT:-55432} for the history-store tests.
#   bash scripts/postgres-local.sh up     # install (Debian), initdb, start; prints the URL
#   bash scripts/postgres-local.sh down   # stop and remove the data directory
# Tests read HETERO_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:55432/postgres
set -euo pipefail
PORT=${HETERO_PG_PORT:-55432}
DATA=${HETERO_PG_DIR:-/var/tmp/hetero-pg}

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

up() {
    if [ -z "$(pgbin)" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    fi
    local bin; bin=$(pgbin)
    if su postgres -c "$bin/pg_ctl -D $DATA/data status" >/dev/null 2>&1; then
        echo "postgresql://postgres@127.0.0.1:$PORT/postgres"; return  # already running
    fi
    rm -rf "$DATA"; mkdir -p "$DATA"; chown postgres "$DATA"
    su postgres -c "$bin/initdb -D $DATA/data -A trust -U postgres" >/dev/null
    su postgres -c "$bin/pg_ctl -D $DATA/data -l $DATA/server.log -w \
        -o '-p $PORT -k $DATA -c listen_addresses=127.0.0.1' start" >/dev/null
    echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
}

down() {
    local bin; bin=$(pgbin)
    if [ -n "$bin" ] && [ -d "$DATA/data" ]; then
        su postgres -c "$bin/pg_ctl -D $DATA/data -m fast -w stop" >/dev/null 2>&1 || true
    fi
    rm -rf "$DATA"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
