#!/usr/bin/env bash
# Two builds of dcr-shim side by side: the same wrk runs against each, alternating, for a change
# that must not cost speed (a refactor). Each server gets its own data directory and the shipped
# demo tenant with its registration rate limit lifted.
#
#   bash benches/ab.sh OLD_BIN NEW_BIN [ROUNDS]    (6 rounds by default, about 3 minutes)
#
# Build the old one from a worktree, e.g.:
#   git worktree add /tmp/old <rev> && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release)
#   cargo build --release && bash benches/ab.sh /tmp/old-target/release/dcr-shim target/release/dcr-shim
# Needs wrk (apt-get install wrk). Prints one line per round and server, then the means.
set -euo pipefail
old_bin="${1:?old binary}"; new_bin="${2:?new binary}"; rounds="${3:-6}"
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
tmp="$(mktemp -d "${TMPDIR:-/tmp}/dcr-shim-ab-XXXXXX")"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tenants"
sed 's/^registrations_per_minute = .*/registrations_per_minute = 1000000000/' \
  "$root/tenants/demo.toml" >"$tmp/tenants/demo.toml"
start() { # name binary port
  mkdir -p "$tmp/$1"
  RUST_LOG=warn "$2" serve --tenants "$tmp/tenants" --data-dir "$tmp/$1" --workers 2 \
    --listen "127.0.0.1:$3" --public-url "http://127.0.0.1:$3" >"$tmp/$1.log" 2>&1 &
  pids+=($!)
}
start old "$old_bin" 18081
start new "$new_bin" 18082
for port in 18081 18082; do
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
cat >"$tmp/register.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"redirect_uris":["http://127.0.0.1:3000/cb"],"token_endpoint_auth_method":"none","client_name":"ab"}'
LUA
# CPU ticks (utime + stime) of a process.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# "requests/s cpu-µs-per-request" of one wrk run against the server with pid $1.
measure() {
  local pid="$1"; shift
  local before after out
  before=$(ticks "$pid")
  out=$(wrk -t2 -c64 -d5s --latency "$@")
  after=$(ticks "$pid")
  awk -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n = $1}
    /Requests\/sec/ {r = $2}
    END {printf "%.0f %.1f", r, t / hz * 1e6 / n}' <<<"$out"
}
# Each cell: requests/s, then the server's own CPU time per request in µs (less sensitive to
# what else the machine is doing than the rate).
printf '%-6s %-4s %20s %24s %20s\n' round bin "metadata" "authorize error page" "registration"
for round in $(seq "$rounds"); do
  # Odd rounds start with the old build, even rounds with the new one.
  order="old new"; (( round % 2 == 0 )) && order="new old"
  for which in $order; do
    if [[ $which == old ]]; then port=18081; pid=${pids[0]}; else port=18082; pid=${pids[1]}; fi
    read -r m mc <<<"$(measure "$pid" "http://127.0.0.1:$port/.well-known/oauth-authorization-server/demo")"
    read -r a ac <<<"$(measure "$pid" "http://127.0.0.1:$port/demo/authorize?client_id=nope")"
    read -r r rc <<<"$(measure "$pid" -s "$tmp/register.lua" "http://127.0.0.1:$port/demo/register")"
    printf '%-6s %-4s %12s %7s %16s %7s %12s %7s\n' "$round" "$which" "$m/s" "${mc}µs" "$a/s" "${ac}µs" "$r/s" "${rc}µs"
    echo "$which $m $mc $a $ac $r $rc" >>"$tmp/rows"
  done
done
awk '{m[$1]+=$2; mc[$1]+=$3; a[$1]+=$4; ac[$1]+=$5; r[$1]+=$6; rc[$1]+=$7}
  END {
    printf "new/old, means over the rounds: requests/s: metadata %.2fx, authorize error page %.2fx, registration %.2fx\n",
      m["new"]/m["old"], a["new"]/a["old"], r["new"]/r["old"]
    printf "new/old, means over the rounds: CPU per request: metadata %.2fx, authorize error page %.2fx, registration %.2fx\n",
      mc["new"]/mc["old"], ac["new"]/ac["old"], rc["new"]/rc["old"]
  }' "$tmp/rows"
