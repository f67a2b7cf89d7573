#!/usr/bin/env bash
# Start a throw-away PostgreSQL 15 on 127.0.0.1 for the tests that run the Dagster instance on
# PostgreSQL (tests/test_instance_storage.py). Source it: it exports CREDIT_ETL_TEST_PG_URL and
# PG_CTL_STOP (the command that stops the server). Installs Debian's postgresql-15 when the
# server binaries are missing and we are root on Debian. initdb refuses to run as root, so the
# cluster belongs to the "postgres" system user (created by the package) or to a created user.
set -euo pipefail

pg_bin=""
for dir in /usr/lib/postgresql/15/bin /usr/local/bin /usr/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then pg_bin="$dir"; break; fi
done
if [ -z "$pg_bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
    pg_bin=/usr/lib/postgresql/15/bin
fi
if [ -z "$pg_bin" ]; then
    echo "PostgreSQL server binaries not found: the PostgreSQL-backed tests will skip" >&2
    return 0 2>/dev/null || exit 0
fi

pg_user=$(id -un)
if [ "$(id -u)" = 0 ]; then
    pg_user=postgres
    id "$pg_user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$pg_user"
fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$pg_user" -- "$@"; else "$@"; fi; }

pg_dir=$(mktemp -d /tmp/credit-etl-pg.XXXXXX)
chown "$pg_user" "$pg_dir" 2>/dev/null || true
chmod 700 "$pg_dir"
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U credit_etl --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $pg_port -k $pg_dir" start >/dev/null
export CREDIT_ETL_TEST_PG_URL="postgresql://credit_etl@127.0.0.1:$pg_port/postgres"
if [ "$(id -u)" = 0 ]; then
    export PG_CTL_STOP="runuser -u $pg_user -- $pg_bin/pg_ctl -D $pg_dir/data -m fast stop"
else
    export PG_CTL_STOP="$pg_bin/pg_ctl -D $pg_dir/data -m fast stop"
fi
echo "PostgreSQL 15 on 127.0.0.1:$pg_port ($pg_dir)"
