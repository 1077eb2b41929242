#!/usr/bin/env bash
# Side-by-side benchmark: a complete login and wrk throughput through dcr-shim, through
# FastMCP's OIDCProxy and directly at the same oidc-provider, in one run on loopback. Installs
# what it needs (npm ci here, a Python venv in .venv with requirements.txt, wrk via apt-get),
# writes results.json and results.md here and prints the Markdown.
#
#   bash benches/compare/run.sh           # 200 logins per target, 10 s wrk runs after 2 s warm-ups
#   bash benches/compare/run.sh --smoke   # 3 logins per target, 1 s wrk runs, no warm-up
#   options: --logins N --warmup N (logins not counted) --families N (refresh-token families per
#            server) --duration S --wrk-warmup S --connections N --threads N
#            --distance-logins N (logins at a distance per target, 0: none) --idp-latency MS (added
#            before each IdP answer there, default 10) --db-latency MS (each way, default 1)
# Env: DCR_SHIM_TEST_POSTGRES (a PostgreSQL server for the dcr-shim-on-PostgreSQL target; one is
#      started here when unset), DCR_SHIM_BIN (default target/release/dcr-shim; not built here), HELLO_BIN (default
#      target/release/examples/hello; skipped when missing), BENCH_KEEP_TMP=1 keeps the temp dir
#      (tenant file, data dirs, server logs), which is kept anyway when the run fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export DCR_SHIM_BIN="${DCR_SHIM_BIN:-$root/target/release/dcr-shim}"
export HELLO_BIN="${HELLO_BIN:-$root/target/release/examples/hello}"
if [[ ! -x "$DCR_SHIM_BIN" ]]; then
  echo "dcr-shim binary not found at $DCR_SHIM_BIN (cargo build --release, or set DCR_SHIM_BIN)" >&2
  exit 2
fi
cd "$here"

# One run at a time: npm ci replaces node_modules under a running bench, and the results files
# and the machine's cores are shared.
exec 9>.run.lock
flock -n 9 || { echo "waiting for another benches/compare run to finish" >&2; flock 9; }

# Installs report on stderr: stdout is only the Markdown.
{
  if ! command -v wrk >/dev/null; then
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  fi
  npm ci --no-audit --no-fund --loglevel=error
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
} >&2

tmp="$(mktemp -d "${TMPDIR:-/tmp}/dcr-shim-compare-XXXXXX")"
status=1
# dcr-shim on PostgreSQL is a fourth target: on the server DCR_SHIM_TEST_POSTGRES names, else
# on a throwaway one started here (Debian's package, as in CI).
own_pg=""
if [[ -z "${DCR_SHIM_TEST_POSTGRES:-}" ]]; then
  pg_env="$(bash "$root/tests/postgres/start.sh")" || { echo "PostgreSQL did not start" >&2; exit 1; }
  eval "$pg_env"
  own_pg=1
fi
cleanup() {
  if [[ -n "$own_pg" ]]; then bash "$root/tests/postgres/stop.sh" || true; fi
  # bench.mjs stops its servers itself; this catches any left when it was killed.
  if [[ -f "$tmp/pids" ]]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$tmp/pids"
  fi
  if [[ $status -eq 0 && -z "${BENCH_KEEP_TMP:-}" ]]; then rm -rf "$tmp"; else echo "temp dir kept: $tmp" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Node 22 (the npm package, as in tests/e2e): oidc-provider 9 supports only Node 22 and later.
BENCH_TMP="$tmp" node_modules/node/bin/node bench.mjs "$@" 9>&- && status=0 || status=$?
exit $status
