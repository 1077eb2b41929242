#!/usr/bin/env bash
# All of dcr-shim's benchmarks in one run, written to docs/benchmarks.md.
#
#   bash benches/run.sh           # full run (about 10 minutes on 2 cores); rewrites docs/benchmarks.md
#   bash benches/run.sh --smoke   # a few iterations of each, dev profile, debug binary; writes nothing
#                                 # (run by .ci/run so the benchmarks keep working)
#
# Parts: benches/compare (a complete login and wrk throughput through dcr-shim, through FastMCP's
# OIDCProxy and directly at oidc-provider, side by side; dcr-shim also on PostgreSQL with one and
# two replicas), benches/scale.rs (1 M clients, on sled and on PostgreSQL),
# benches/registration.rs (CIMD resolution) and benches/gateway.rs (the gateway against a
# minimal Rust MCP server directly and FastMCP's proxy), benches/machine.rs (the client
# credentials grant). PostgreSQL: the server DCR_SHIM_TEST_POSTGRES names,
# else a throwaway one (tests/postgres/start.sh). Stop other work on the machine first:
# everything shares its cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

own_pg=""
stop_pg() { if [[ -n "$own_pg" ]]; then bash tests/postgres/stop.sh || true; fi; }
if [[ -z "${DCR_SHIM_TEST_POSTGRES:-}" ]]; then
  eval "$(bash tests/postgres/start.sh)"
  own_pg=1
fi

if [[ "${1:-}" == "--smoke" ]]; then
  trap stop_pg EXIT
  cargo build --locked --bin dcr-shim
  cargo bench --locked --profile dev --bench registration -- --smoke
  cargo bench --locked --profile dev --bench scale -- --smoke
  cargo bench --locked --profile dev --bench scale -- --smoke --postgres "$DCR_SHIM_TEST_POSTGRES"
  DCR_SHIM_BIN="$root/target/debug/dcr-shim" HELLO_BIN=/nonexistent bash benches/compare/run.sh --smoke >/dev/null
  cargo build --locked --example mcp_backend
  cargo bench --locked --profile dev --bench gateway -- --smoke >/dev/null
  cargo bench --locked --profile dev --bench machine -- --smoke >/dev/null
  echo "benchmark smoke run: ok"
  exit 0
fi

cargo build --locked --release --bin dcr-shim --example hello --example mcp_backend
out="$(mktemp -d)"
trap 'rm -rf "$out"; stop_pg' EXIT
started=$(date +%s)
bash benches/compare/run.sh >"$out/compare.md"
cargo bench --locked --bench scale >"$out/scale.md" 2>"$out/scale.log"
cargo bench --locked --bench scale -- --postgres "$DCR_SHIM_TEST_POSTGRES" >"$out/scale-pg.md" 2>"$out/scale-pg.log"
cargo bench --locked --bench registration >"$out/registration.md" 2>"$out/registration.log"
# After benches/compare, whose venv holds the FastMCP the gateway benchmark puts beside it.
cargo bench --locked --bench gateway >"$out/gateway.md" 2>"$out/gateway.log"
cargo bench --locked --bench machine >"$out/machine.md" 2>"$out/machine.log"
minutes=$(( ($(date +%s) - started + 59) / 60 ))

{
  echo "# Benchmarks"
  echo
  echo "Everything below is from one run of \`bash benches/run.sh\` ($minutes minutes), $(date -u +%Y-%m-%d), commit"
  echo "\`$(git rev-parse --short HEAD)\`, on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
  echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1024/1024}' /proc/meminfo), Linux $(uname -r), $(rustc --version | cut -d' ' -f1-2)."
  echo "Every process, the load generators included, shares those cores, so every figure is paired with"
  echo "its counterpart from the same run and the targets are ratios between them."
  echo
  sed 's/^## /## 1. /' "$out/compare.md"
  echo
  echo "## 2. Scale (\`cargo bench --bench scale\`)"
  echo
  echo "1,000,000 clients across 10 tenants, written in process through the same durable insert that"
  echo "registration uses; latencies (10,000 samples each after 1,000 not counted), start-up and resident"
  echo "memory are those of the real \`dcr-shim\` binary serving that data directory."
  echo
  cat "$out/scale.md"
  echo
  echo "### The same on PostgreSQL (\`cargo bench --bench scale -- --postgres URL\`)"
  echo
  echo "One replica on a local PostgreSQL 15 with its defaults (\`fsync\` and \`synchronous_commit\`"
  echo "on), in a database made for the run, with \`VACUUM ANALYZE\` and a \`CHECKPOINT\` after each fill (what"
  echo "autovacuum and the checkpointer have done long before a deployment has this many clients); the"
  echo "server's memory and start-up do not count PostgreSQL's (the role must be allowed to \`CHECKPOINT\`)."
  echo
  cat "$out/scale-pg.md"
  echo
  echo "## 3. Client metadata documents and in-process registration (\`cargo bench --bench registration\`)"
  echo
  cat "$out/registration.md"
  echo
  cat benches/analysis.md
  echo
  sed 's/^## The gateway/## 7. The gateway/' "$out/gateway.md"
  echo
  sed 's/^## Machine clients/## 8. Machine clients/' "$out/machine.md"
} >docs/benchmarks.md
echo "wrote docs/benchmarks.md"
