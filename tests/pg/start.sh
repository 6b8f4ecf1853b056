#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 for tests and prints how to reach it (KEY=value lines).
#
#   tests/pg/start.sh [--port N] [--watch PID] [--password PW]
#
# The server listens on 127.0.0.1:<port> (a free port when none is given) and in a private
# socket dir; `postgres` connects without a password (trust), the role `wand` needs the
# password (scram-sha-256), so wrong-password errors can be tested. With --watch, a watchdog
# stops the server and deletes its files when that process ends (the test binary, also when it
# fails or is killed); without it, stop it with `tests/pg/stop.sh <dir>`.
# initdb refuses to run as root, so as root the server runs as the `postgres` user.
set -euo pipefail

port="" watch="" password="wand-test-password"
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --watch) watch="$2"; shift 2 ;;
    --password) password="$2"; shift 2 ;;
    *) echo "usage: $0 [--port N] [--watch PID] [--password PW]" >&2; exit 2 ;;
  esac
done

bin=/usr/lib/postgresql/15/bin
if [ ! -x "$bin/initdb" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "[pg] installing postgresql-15" >&2
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 >&2 \
      || { env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 >&2; }
  fi
  [ -x "$bin/initdb" ] || { echo "PostgreSQL 15 is missing: apt-get install postgresql-15 (or run scripts/setup)" >&2; exit 1; }
fi

if [ -z "$port" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
    || shuf -i 20000-60000 -n 1)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/wand-pg.XXXXXX")
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$dir"
  chmod 755 "$dir"
  as_owner=(runuser -u postgres --)
fi

"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
host all wand 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
HBA
[ "$(id -u)" -eq 0 ] && chown postgres "$dir/data/pg_hba.conf"
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }
"$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE wand LOGIN SUPERUSER PASSWORD '${password//\'/\'\'}'" >/dev/null

if [ -n "$watch" ]; then
  # Detached from our stdout so the caller's read ends when this script exits.
  setsid bash -c '
    while kill -0 "$1" 2>/dev/null; do sleep 0.5; done
    "$2/tests/pg/stop.sh" "$3"
  ' watchdog "$watch" "$(cd "$(dirname "$0")/../.." && pwd)" "$dir" </dev/null >/dev/null 2>&1 &
fi

echo "PGDIR=$dir"
echo "PGHOST=127.0.0.1"
echo "PGPORT=$port"
echo "PGSOCKET=$dir"
echo "PGUSER=wand"
