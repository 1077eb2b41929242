#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for the tests: a new cluster in a temporary directory, owned by
# an unprivileged user, listening on loopback only, password-less for local connections.
# Installs Debian's postgresql package when no server binaries are found.
#
#   eval "$(bash tests/postgres/start.sh [PORT])"     (default: a free port)
#
# prints `export DCR_SHIM_TEST_POSTGRES=postgres://…` and `export DCR_SHIM_TEST_PG_DIR=…`;
# `bash tests/postgres/stop.sh` stops it and removes the directory.
set -euo pipefail
port="${1:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
  sudo=""; [[ "$(id -u)" == 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends postgresql >&2
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
dir="$(mktemp -d "${TMPDIR:-/tmp}/dcr-shim-pg-XXXXXX")"
chmod 755 "$dir"
# initdb refuses to run as root: as root, run the server as the package's postgres user (or
# nobody).
as=()
if [[ "$(id -u)" == 0 ]]; then
  user=postgres; id "$user" >/dev/null 2>&1 || user=nobody
  chown "$user" "$dir"
  as=(runuser -u "$user" --)
fi
"${as[@]}" "$bin/initdb" -D "$dir/data" -U dcr --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
# fsync stays on (the default): the store's durability tests mean something.
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300" start >&2 \
  || { cat "$dir/server.log" >&2; exit 1; }
echo "export DCR_SHIM_TEST_POSTGRES=postgres://dcr@127.0.0.1:$port/postgres"
echo "export DCR_SHIM_TEST_PG_DIR=$dir"
