#!/usr/bin/env bash
# Stops a server started by tests/pg/start.sh and deletes its files: tests/pg/stop.sh <dir>
set -uo pipefail
dir="${1:?usage: $0 <dir printed as PGDIR by start.sh>}"
case "$dir" in */wand-pg.*) ;; *) echo "not a wand test server dir: $dir" >&2; exit 2 ;; esac
as_owner=()
[ "$(id -u)" -eq 0 ] && as_owner=(runuser -u postgres --)
if [ -f "$dir/data/postmaster.pid" ]; then
  "${as_owner[@]}" /usr/lib/postgresql/15/bin/pg_ctl -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1
fi
rm -rf "$dir"
