#!/usr/bin/env bash
# Stops the PostgreSQL that tests/postgres/start.sh started and removes its directory.
set -euo pipefail
dir="${DCR_SHIM_TEST_PG_DIR:?not started by tests/postgres/start.sh}"
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as=()
if [[ "$(id -u)" == 0 ]]; then as=(runuser -u "$(stat -c %U "$dir")" --); fi
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
rm -rf "$dir"
