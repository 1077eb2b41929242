#!/usr/bin/env bash
# OpenTelemetry traces end to end: the shim exports over OTLP/HTTP to a real receiver built on
# the official opentelemetry-proto definitions (tests/otlp/receiver.py), and a whole login
# through the dev IdP, whose requests a trusted proxy forwards with one W3C traceparent, must
# arrive as one trace: a server span per request (route, tenant, client, status) under the
# proxy's span, the IdP call and the store operations inside them, and no token, code or
# secret in any attribute. A traceparent from a peer that is not a trusted proxy is ignored.
#
#   DCR_SHIM_BIN=target/debug/dcr-shim bash tests/otlp/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${DCR_SHIM_BIN:-target/debug/dcr-shim}"
say() { printf '%s\n' "$*"; }
fail() { say "FAIL: $*" >&2; exit 1; }
[[ -x "$bin" ]] || fail "no shim binary at $bin (cargo build first, or set DCR_SHIM_BIN)"

py="$(bash tests/otlp/setup.sh)"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ "${KEEP_TMP:-}" == 1 ]]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

"$py" tests/otlp/receiver.py --port 0 --out "$tmp/spans.jsonl" --ready-file "$tmp/endpoint" \
  --exit-after 600 2>"$tmp/receiver.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$tmp/endpoint" ]] && break; sleep 0.1; done
[[ -s "$tmp/endpoint" ]] || fail "the OTLP receiver did not start: $(cat "$tmp/receiver.log")"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts the shim with tracing on; $1: the --trusted-proxies value.
start_shim() {
  local port
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  OTEL_EXPORTER_OTLP_ENDPOINT="$(cat "$tmp/endpoint")" OTEL_BSP_SCHEDULE_DELAY=200 \
    "$bin" serve --listen "127.0.0.1:$port" --public-url "$base" --tenants tenants \
    --data-dir "$tmp/data-$port" --trusted-proxies "$1" >"$tmp/shim-$port.log" 2>&1 &
  shim_pid=$!
  pids+=("$shim_pid")
  for _ in $(seq 100); do curl -sf -o /dev/null "$base/readyz/demo" && return 0; sleep 0.1; done
  fail "the shim did not become ready: $(cat "$tmp/shim-$port.log")"
}
stop_shim() { kill -TERM "$shim_pid"; wait "$shim_pid" || true; }
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# ---- a login whose requests come through a trusted proxy with one traceparent
start_shim 127.0.0.1/32
grep -q 'OpenTelemetry: exporting spans' "$tmp"/shim-*.log || fail "the shim does not say it exports spans"
trace="$(hex 16)"
DEV_LOGIN_CURL=(-H "traceparent: 00-$trace-$(hex 8)-01")
# shellcheck source=tests/lib/dev-login.sh
source tests/lib/dev-login.sh
dev_login "$base" demo "$tmp" || fail "the login did not complete"
stop_shim   # flushes the last batch

python3 tests/otlp/check_trace.py "$tmp/spans.jsonl" --wait 15 --trace-id "$trace" \
  --allow-remote-parent --roots 6 \
  --require-span "kind=server & name=POST /:tenant/register & tenant=demo & http.response.status_code=201" \
  --require-span "kind=server & name=GET /:tenant/authorize & client_id=$client_id & http.response.status_code=200" \
  --require-span "kind=server & http.route=/:tenant/consent & http.response.status_code=303" \
  --require-span "kind=server & http.route=/:tenant/dev-idp" \
  --require-span "kind=server & http.route=/:tenant/callback & http.response.status_code=302" \
  --require-span "kind=server & name=POST /:tenant/token & client_id=$client_id & http.response.status_code=200" \
  --require-descendant "http.route=/:tenant/callback >> kind=client & name=idp token" \
  --require-descendant "http.route=/:tenant/callback >> name=store take txn" \
  --require-descendant "http.route=/:tenant/token >> name~=^store " \
  --forbid-span "status=ERROR" \
  --forbid-literal="$code" --forbid-literal="$verifier" --forbid-literal="$refresh_token" \
  --forbid-literal="$access_token" --forbid-value 'eyJ[A-Za-z0-9_-]{10,}' \
  || fail "the login's spans do not form the trace expected (receiver log: $(cat "$tmp/receiver.log"))"
say "PASS: a login is one trace under the proxy's traceparent, with the IdP call and the store inside"

# ---- the same header from a peer that is not a trusted proxy starts a trace of the shim's own
start_shim 192.0.2.1/32
foreign="$(hex 16)"
curl -sS -f -o /dev/null -H "traceparent: 00-$foreign-$(hex 8)-01" "$base/demo/register" \
  -H 'content-type: application/json' \
  -d '{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}'
stop_shim
python3 tests/otlp/check_trace.py "$tmp/spans.jsonl" --wait 15 \
  --root "name=POST /:tenant/register & !parent_span_id" --pick last \
  --require-span "kind=server & tenant=demo & http.response.status_code=201" \
  || fail "the untrusted request's span is not a root of its own"
if grep -q "$foreign" "$tmp/spans.jsonl"; then
  fail "a traceparent from an untrusted peer was followed"
fi
say "PASS: a traceparent from a peer that is not a trusted proxy is ignored"
