#!/usr/bin/env bash
# Start a throw-away Redis on 127.0.0.1 as the Celery broker and result backend of the province
# tests (tests/province/test_celery*.py: Dagster steps on Celery workers). Source it: it exports
# CREDIT_ETL_TEST_REDIS_URL and REDIS_STOP (the command that stops the server). Installs Debian's
# redis-server when it is missing and we are root on Debian. No persistence (no RDB, no AOF): a
# test broker keeps nothing; a free port so parallel test runs on one machine do not collide.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis-server not found: the Celery tests will skip" >&2
    return 0 2>/dev/null || exit 0
fi

redis_dir=$(mktemp -d /tmp/credit-etl-redis.XXXXXX)
redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$redis_port" --protected-mode yes \
    --save "" --appendonly no --dir "$redis_dir" \
    --daemonize yes --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log"
for _ in $(seq 1 100); do  # daemonize returns before the socket listens
    [ -s "$redis_dir/redis.pid" ] && python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', $redis_port), 0.2)" 2>/dev/null && break
    sleep 0.1
done
export CREDIT_ETL_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export REDIS_STOP="kill -TERM $(cat "$redis_dir/redis.pid")"
echo "Redis on 127.0.0.1:$redis_port ($redis_dir)"
