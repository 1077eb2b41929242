#!/usr/bin/env bash
# Instructions a login and a refresh cost, counted by valgrind's callgrind (Debian's `valgrind`):
# a deterministic figure for comparing two builds, where wall-clock ratios on shared cores
# swing by ±10 %. Each binary serves the shipped demo tenant (its built-in dev IdP) under
# callgrind with instrumentation off; it is switched on for N logins through curl (register,
# authorize, consent, the dev IdP's sign-in, callback, code exchange) and N refreshes, then the
# counters are dumped. Startup is not counted.
#
#   bash benches/callgrind.sh BIN [BIN…]        prints Ir per login+refresh for each
#   CALLGRIND_LOGINS=10 bash benches/callgrind.sh target/release/dcr-shim /tmp/old/dcr-shim
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }
logins="${CALLGRIND_LOGINS:-5}"
# shellcheck source=tests/lib/dev-login.sh
source tests/lib/dev-login.sh

measure() {
  local bin="$1" tmp port base pid out ir
  tmp="$(mktemp -d)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  base="http://127.0.0.1:$port"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/callgrind.out" \
    "$bin" serve --listen "127.0.0.1:$port" --public-url "$base" --data-dir "$tmp/data" \
    --tenants tenants --workers 1 >"$tmp/log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do curl -sf "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf "$base/readyz" >/dev/null || { tail -20 "$tmp/log" >&2; echo "the server did not start" >&2; kill "$pid"; return 1; }
  # One login first, not counted (lazy initialisation, caches).
  dev_login "$base" demo "$tmp" >/dev/null
  callgrind_control -i on "$pid" >/dev/null
  for _ in $(seq "$logins"); do
    dev_login "$base" demo "$tmp" >/dev/null
    curl -sS -f -o /dev/null "$base/demo/token" -d grant_type=refresh_token \
      --data-urlencode "refresh_token=$refresh_token" --data-urlencode "client_id=$client_id"
  done
  callgrind_control -i off "$pid" >/dev/null
  callgrind_control -d "$pid" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  ir=0
  for out in "$tmp"/callgrind.out*; do
    n="$(grep '^totals:' "$out" | tail -1 | awk '{print $2}')"
    ir=$((ir + ${n:-0}))
  done
  echo "$bin: $((ir / logins)) instructions per login and refresh ($logins of each)"
  [[ -n "${CALLGRIND_KEEP:-}" ]] && echo "kept $tmp" || rm -rf "$tmp"
}

for bin in "$@"; do measure "$bin"; done
