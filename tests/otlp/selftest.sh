#!/usr/bin/env bash
# Self-test of the OTLP test receiver (receiver.py) and checker (check_trace.py), no Rust needed.
# Sends one fake login as one trace in three requests (protobuf, gzip'd protobuf, OTLP/JSON)
# plus an unrelated trace, then malformed and unsupported requests, and checks the answers and
# the spans written. About 2 s once the venv exists (setup.sh).
#
#   bash tests/otlp/selftest.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="$(bash "$here/setup.sh")"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/otlp-selftest-XXXXXX")"
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$py" "$here/receiver.py" --port 0 --out "$tmp/spans.jsonl" --ready-file "$tmp/endpoint" \
  --exit-after 120 2>"$tmp/receiver.log" &
pid=$!
for _ in $(seq 100); do [[ -s "$tmp/endpoint" ]] && break; sleep 0.1; done
[[ -s "$tmp/endpoint" ]] || { cat "$tmp/receiver.log" >&2; echo "receiver did not start" >&2; exit 1; }
endpoint="$(cat "$tmp/endpoint")"

# The requests, built with the same official classes, sent with urllib; prints ok:/FAIL: lines.
"$py" - "$endpoint" <<'PY' | tee "$tmp/results"
import base64, gzip, json, sys, urllib.error, urllib.request
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as ms
from opentelemetry.proto.trace.v1 import trace_pb2

endpoint = sys.argv[1]
TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
OTHER = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
sid = lambda n: bytes([0, 0, 0, 0, 0, 0, 0, n])
SERVER, CLIENT, INTERNAL = 2, 3, 1

def request(spans, service="dcr-shim-selftest"):
    req = ts.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add(); kv.key = "service.name"; kv.value.string_value = service
    ss = rs.scope_spans.add(); ss.scope.name = "selftest"
    for trace_id, span_id, parent, name, kind, attrs in spans:
        s = ss.spans.add(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name,
                         kind=kind, start_time_unix_nano=1_000_000_000 * span_id[-1],
                         end_time_unix_nano=1_000_000_000 * span_id[-1] + 5_000_000)
        for k, v in attrs.items():
            a = s.attributes.add(); a.key = k
            if isinstance(v, int): a.value.int_value = v
            else: a.value.string_value = v
    return req

def otlp_json(req):
    """OTLP/JSON: protobuf JSON mapping, but ids in hex."""
    doc = json_format.MessageToDict(req)
    def walk(n):
        if isinstance(n, dict):
            for k, v in n.items():
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                    n[k] = base64.b64decode(v).hex()
                else: walk(v)
        elif isinstance(n, list):
            for v in n: walk(v)
    walk(doc)
    return json.dumps(doc).encode()

def post(body, ctype, path="/v1/traces", encoding=None, method="POST"):
    headers = {"Content-Type": ctype}
    if encoding: headers["Content-Encoding"] = encoding
    r = urllib.request.Request(endpoint + path, data=body if method == "POST" else None,
                               headers=headers, method=method)
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()

def expect(what, got, want):
    print(("ok: " if got == want else "FAIL: ") + what + ("" if got == want else f": got {got!r}, want {want!r}"))

PB, JS = "application/x-protobuf", "application/json"
authorize = request([
    (TRACE, sid(1), b"", "GET /demo/authorize", SERVER, {"http.route": "/demo/authorize", "http.response.status_code": 302}),
    (TRACE, sid(2), sid(1), "store.lookup", INTERNAL, {"client_id": "demo-client"}),
])
callback = request([
    (TRACE, sid(3), sid(1), "GET /demo/callback", SERVER, {"http.route": "/demo/callback"}),
    (TRACE, sid(4), sid(3), "POST upstream /token", CLIENT, {"server.address": "127.0.0.1"}),
])
token = request([(TRACE, sid(5), sid(3), "POST /demo/token", SERVER, {"http.route": "/demo/token", "http.response.status_code": 200})])
health = request([(OTHER, sid(9), b"", "GET /healthz", SERVER, {"http.route": "/healthz"})])

st, ct, body = post(authorize.SerializeToString(), PB)
expect("protobuf export answered 200 application/x-protobuf", (st, ct), (200, PB))
expect("protobuf answer is an ExportTraceServiceResponse",
       ts.ExportTraceServiceResponse.FromString(body).HasField("partial_success"), False)
st, ct, body = post(gzip.compress(callback.SerializeToString()), PB + "; charset=utf-8", encoding="gzip")
expect("gzip'd protobuf export answered 200", (st, ct), (200, PB))
st, ct, body = post(otlp_json(token), JS)
expect("OTLP/JSON export answered 200 application/json", (st, ct), (200, JS))
json_format.Parse(body, ts.ExportTraceServiceResponse())
st, ct, body = post(gzip.compress(otlp_json(health)), JS, encoding="gzip")
expect("gzip'd OTLP/JSON export answered 200", st, 200)
st, ct, body = post(b"\xff\xffnot protobuf", PB)
expect("malformed protobuf: 400 with a google.rpc.Status, code 3", (st, ct, body[:2]), (400, PB, b"\x08\x03"))
st, ct, body = post(b'{"resourceSpans": [', JS)
expect("malformed JSON: 400 with a JSON Status, code 3", (st, ct, json.loads(body)["code"]), (400, JS, 3))
b64 = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": base64.b64encode(TRACE).decode(), "spanId": sid(7).hex(), "name": "x"}]}]}]})
expect("JSON with a base64 trace id (not OTLP/JSON): 400", post(b64.encode(), JS)[0], 400)
short = request([(TRACE, b"\x01\x02\x03", b"", "short id", SERVER, {})])
expect("protobuf with a 3-byte span id: 400", post(short.SerializeToString(), PB)[0], 400)
expect("bad gzip body: 400", post(b"not gzip", PB, encoding="gzip")[0], 400)
expect("unknown Content-Encoding: 400", post(b"", PB, encoding="br")[0], 400)
expect("text/plain: 415", post(b"x", "text/plain")[0], 415)
expect("GET /v1/traces: 405", post(b"", PB, method="GET")[0], 405)
expect("POST /v1/other: 404", post(b"", PB, path="/v1/other")[0], 404)
expect("empty metrics export: 200", post(ms.ExportMetricsServiceRequest().SerializeToString(), PB, path="/v1/metrics")[0], 200)
PY

ct=("$py" "$here/check_trace.py" "$tmp/spans.jsonl" -q)
run() {  # run WANT_EXIT WHAT CMD...
  local want="$1" what="$2" got=0
  shift 2
  "$@" >"$tmp/out" 2>&1 || got=$?
  if [[ "$got" == "$want" ]]; then echo "ok: $what"; else
    echo "FAIL: $what (exit $got, want $want)"; cat "$tmp/out"; fi | tee -a "$tmp/results"
}
run 0 "6 spans written, one line each" test "$(wc -l <"$tmp/spans.jsonl")" -eq 6
run 0 "the login's spans form one trace" "${ct[@]}" --select service=dcr-shim-selftest \
  --expect-root-route /demo/authorize --expect-traces 2 \
  --require-attr http.route=/demo/callback --require-attr http.route=/demo/token \
  --require-span 'name~=^POST & kind=server & http.response.status_code=200' \
  --require-child 'http.route=/demo/callback > kind=client' \
  --require-descendant 'http.route=/demo/authorize >> http.route=/demo/token' \
  --count kind=server 3 --forbid-span status=error
run 1 "a missing span fails" "${ct[@]}" --expect-root-route /demo/authorize --require-span name=nothing
run 1 "a forbidden value fails" "${ct[@]}" --expect-root-route /demo/authorize --forbid-value demo-client
run 1 "a forbidden literal fails" "${ct[@]}" --expect-root-route /demo/authorize --forbid-literal=demo-client
run 0 "a literal beginning with '-' is a value, not an option" "${ct[@]}" \
  --expect-root-route /demo/authorize --forbid-literal=-not.in.any.span
run 0 "a literal is not a pattern: demo.client does not match demo-client" "${ct[@]}" --expect-root-route /demo/authorize --forbid-literal=demo.client
run 1 "two traces where one is expected fails" "${ct[@]}" --expect-traces 1
run 1 "a span in another trace fails" "${ct[@]}" --expect-root-route /demo/authorize \
  --require-attr http.route=/healthz

passed=$(grep -c '^ok: ' "$tmp/results" || true)
failed=$(grep -c '^FAIL: ' "$tmp/results" || true)
echo "selftest: $passed passed, $failed failed"
[[ "$failed" == 0 && "$passed" -gt 0 ]]
