#!/usr/bin/env bash
# `make test`: install what the tests need, start PostgreSQL and Redis on free ports, run the
# static checks, run the whole suite on the embedded stack (SQLite, in-memory channel layer) and
# again on PostgreSQL + Redis, and stop what it started, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
started=$(date +%s)

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v redis-server >/dev/null || need_apt+=(redis-server)
[ -x "$PG_BIN/initdb" ] || need_apt+=(postgresql-15)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "make test needs these Debian packages: ${need_apt[*]}" >&2
    echo "Install them (sudo apt-get install ${need_apt[*]}) or run make test as root." >&2
    exit 1
  fi
fi

work=$(mktemp -d -t homeroom-test.XXXXXX)
pg_data="$work/pg"
redis_port=""
as_pg() {
  # From $work: the postgres user may not be able to enter the checkout's directory.
  if [ "$(id -u)" -eq 0 ]; then (cd "$work" && runuser -u postgres -- "$@"); else "$@"; fi
}
cleanup() {
  status=$?
  if [ -f "$pg_data/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "$redis_port" ]; then
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  echo "== make test finished in $(( $(date +%s) - started )) s (exit $status)"
  exit $status
}
trap cleanup EXIT INT TERM

free_port() { $BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

bash .ci/lint.sh

echo "== pytest: embedded stack (SQLite, in-memory channel layer)"
env -u DATABASE_URL -u REDIS_URL HOMEROOM_DATA_DIR="$work/embedded" $BIN/pytest -p no:cacheprovider

echo "== starting PostgreSQL and Redis"
[ "$(id -u)" -eq 0 ] && chown postgres "$work"
pg_port=$(free_port)
as_pg "$PG_BIN/initdb" -D "$pg_data" -A trust -U postgres --no-sync >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$pg_data" -l "$work/pg.log" -w \
  -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start >/dev/null
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --logfile "$work/redis.log" --dir "$work"
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "== pytest: PostgreSQL $pg_port + Redis $redis_port"
DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/homeroom" \
REDIS_URL="redis://127.0.0.1:$redis_port/0" \
HOMEROOM_DATA_DIR="$work/production" \
  $BIN/pytest -p no:cacheprovider
