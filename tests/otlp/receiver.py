#!/usr/bin/env python3
"""A small OTLP/HTTP trace receiver for tests, built on the official opentelemetry-proto classes.

It answers like the OpenTelemetry Collector's OTLP/HTTP receiver does:

  POST /v1/traces   Content-Type application/x-protobuf or application/json
                    (Content-Encoding gzip, deflate or identity)
                    -> 200 with an ExportTraceServiceResponse in the request's encoding
  POST /v1/metrics, /v1/logs   decoded and answered the same way, not stored
  malformed body, wrong-length trace/span id, unknown Content-Encoding -> 400 with a
                    google.rpc.Status (code 3, INVALID_ARGUMENT) in the request's encoding
  other Content-Type -> 415; other method -> 405; other path -> 404; body over 20 MiB -> 413
  GET /healthz      -> 200 "ok" (for wait loops; not part of OTLP)

OTLP/JSON follows the OTLP specification: traceId, spanId and parentSpanId are hex strings
(not base64 as plain protobuf JSON would have them), enums may be integers, unknown fields are
ignored.

Every span received is appended to --out as one JSON object per line (flushed before the
response is sent, so a span the exporter saw acknowledged is in the file):

  {"trace_id": "<32 hex>", "span_id": "<16 hex>", "parent_span_id": "<16 hex or empty>",
   "name": "...", "kind": "SERVER", "start_time_unix_nano": ..., "end_time_unix_nano": ...,
   "duration_ms": 1.25, "attributes": {"http.route": "/demo/token", ...},
   "status": {"code": "UNSET|OK|ERROR", "message": ""},
   "resource": {"service.name": "dcr-shim", ...}, "service_name": "dcr-shim",
   "scope": {"name": "...", "version": "..."}, "events": [...], "links": [...],
   "trace_state": "", "flags": 0, "received": {"seq": 1, "content_type": ..., "encoding": ...}}

Usage:
  python receiver.py --port 0 --out spans.jsonl [--ready-file endpoint.txt] [--print-ready]
Once listening it writes the endpoint (http://127.0.0.1:PORT, the value for
OTEL_EXPORTER_OTLP_ENDPOINT) to --ready-file (atomically) and, with --print-ready, prints
"READY http://127.0.0.1:PORT" on stdout. SIGTERM or SIGINT stops it cleanly.
"""

import argparse
import base64
import json
import os
import signal
import socket
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_BODY = 20 * 1024 * 1024  # the collector's default max_request_body_size
INVALID_ARGUMENT = 3  # google.rpc.Code
UNKNOWN = 2

SIGNALS = {
    "/v1/traces": (
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "/v1/metrics": (
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/logs": (
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
}

# OTLP/JSON id fields (hex there, base64 in protobuf's own JSON mapping) and their byte lengths.
ID_FIELDS = {
    "traceId": 16,
    "trace_id": 16,
    "spanId": 8,
    "span_id": 8,
    "parentSpanId": 8,
    "parent_span_id": 8,
}

KIND_NAMES = {v: k.replace("SPAN_KIND_", "") for k, v in trace_pb2.Span.SpanKind.items()}
STATUS_NAMES = {v: k.replace("STATUS_CODE_", "") for k, v in trace_pb2.Status.StatusCode.items()}


class BadRequest(Exception):
    """The body cannot be decoded: answered with 400 like the collector does."""


class TooLarge(Exception):
    """The body is over MAX_BODY: answered with 413."""


# ---------------------------------------------------------------------------------------------
# Decoding


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def rpc_status(code, message, content_type):
    """A google.rpc.Status {code, message} in the given encoding (as the collector writes it)."""
    if content_type == JSON:
        return json.dumps({"code": code, "message": message}, separators=(",", ":")).encode()
    msg = message.encode("utf-8", "replace")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(msg)) + msg


def decompress(body, encoding):
    encoding = (encoding or "").strip().lower()
    try:
        if encoding in ("", "identity"):
            return body
        if encoding in ("gzip", "x-gzip"):
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding in ("deflate", "zlib"):
            d = zlib.decompressobj()  # zlib-wrapped deflate, as Go's compress/zlib writes it
        else:
            raise BadRequest(f"unsupported Content-Encoding: {encoding}")
        out = d.decompress(body, MAX_BODY + 1)
        if len(out) > MAX_BODY or d.unconsumed_tail:
            raise TooLarge(f"decompressed body larger than {MAX_BODY} bytes")
        if not d.eof:
            raise BadRequest(f"truncated {encoding} body")
        return out
    except zlib.error as e:
        raise BadRequest(f"invalid {encoding} body: {e}") from None


def _hex_ids_to_base64(node):
    """Turn OTLP/JSON's hex ids into the base64 that protobuf's JSON mapping expects."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ID_FIELDS and isinstance(value, str):
                size = ID_FIELDS[key]
                if value == "":
                    continue
                if len(value) != 2 * size:
                    raise BadRequest(
                        f"{key}: want {2 * size} hex characters, got {len(value)}: {value!r}"
                    )
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise BadRequest(f"{key}: not hex: {value!r}") from None
                node[key] = base64.b64encode(raw).decode()
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def _check_id_lengths(request):
    """The collector refuses ids of the wrong length (0 bytes means unset)."""
    if not isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
        return
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                where = f"span {span.name!r}"
                checks = [("trace_id", span.trace_id, 16), ("span_id", span.span_id, 8),
                          ("parent_span_id", span.parent_span_id, 8)]
                for link in span.links:
                    checks += [("link trace_id", link.trace_id, 16),
                               ("link span_id", link.span_id, 8)]
                for what, value, size in checks:
                    if len(value) not in (0, size):
                        raise BadRequest(f"{where}: {what} is {len(value)} bytes, want {size}")


def decode_request(body, content_type, request_type):
    request = request_type()
    if content_type == PROTOBUF:
        try:
            request.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as e:
            raise BadRequest(f"proto: {e}") from None
    else:
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise BadRequest(f"json: {e}") from None
        if not isinstance(doc, dict):
            raise BadRequest("json: the body is not an object")
        _hex_ids_to_base64(doc)
        try:
            json_format.ParseDict(doc, request, ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError, TypeError) as e:
            raise BadRequest(f"json: {e}") from None
    _check_id_lengths(request)
    return request


def encode_response(response, content_type):
    if content_type == PROTOBUF:
        return response.SerializeToString()
    return json_format.MessageToJson(response, indent=None).encode()


# ---------------------------------------------------------------------------------------------
# Spans to plain JSON


def any_value(v):
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if which == "bytes_value":
        return v.bytes_value.hex()
    if which == "string_value_strindex":
        return {"strindex": v.string_value_strindex}
    return getattr(v, which)


def attributes(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def span_records(request, meta):
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = {"name": ss.scope.name, "version": ss.scope.version}
            if ss.scope.attributes:
                scope["attributes"] = attributes(ss.scope.attributes)
            for s in ss.spans:
                yield {
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "name": s.name,
                    "kind": KIND_NAMES.get(s.kind, str(s.kind)),
                    "start_time_unix_nano": s.start_time_unix_nano,
                    "end_time_unix_nano": s.end_time_unix_nano,
                    "duration_ms": round((s.end_time_unix_nano - s.start_time_unix_nano) / 1e6, 3),
                    "attributes": attributes(s.attributes),
                    "status": {
                        "code": STATUS_NAMES.get(s.status.code, str(s.status.code)),
                        "message": s.status.message,
                    },
                    "events": [
                        {"name": e.name, "time_unix_nano": e.time_unix_nano,
                         "attributes": attributes(e.attributes)}
                        for e in s.events
                    ],
                    "links": [
                        {"trace_id": ln.trace_id.hex(), "span_id": ln.span_id.hex(),
                         "attributes": attributes(ln.attributes)}
                        for ln in s.links
                    ],
                    "trace_state": s.trace_state,
                    "flags": s.flags,
                    "resource": resource,
                    "service_name": resource.get("service.name"),
                    "scope": scope,
                    "received": meta,
                }


# ---------------------------------------------------------------------------------------------
# The server


class Receiver:
    def __init__(self, out_path, quiet, fail_status, fail_count, delay):
        self.out = open(out_path, "a", encoding="utf-8")
        self.lock = threading.Lock()
        self.seq = 0
        self.spans = 0
        self.quiet = quiet
        self.fail_status = fail_status
        self.fail_left = fail_count
        self.delay = delay

    def log(self, msg):
        if not self.quiet:
            print(f"otlp-receiver: {msg}", file=sys.stderr, flush=True)

    def take_failure(self):
        with self.lock:
            if self.fail_status and self.fail_left > 0:
                self.fail_left -= 1
                return True
            return False

    def store(self, request, content_type, encoding):
        with self.lock:
            self.seq += 1
            meta = {"seq": self.seq, "content_type": content_type, "encoding": encoding or "identity",
                    "time": round(time.time(), 3)}
            n = 0
            for record in span_records(request, meta):
                self.out.write(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
                n += 1
            self.out.flush()
            self.spans += n
            return n

    def close(self):
        with self.lock:
            self.out.close()


def make_handler(receiver):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "otlp-test-receiver"

        def log_message(self, fmt, *args):  # silence http.server's own access log
            pass

        def reply(self, status, content_type, body, close=False):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def read_body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                parts, total = [], 0
                while True:
                    line = self.rfile.readline(1024)
                    try:
                        size = int(line.split(b";")[0].strip(), 16)
                    except ValueError:
                        raise BadRequest("bad chunked encoding") from None
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    total += size
                    if total > MAX_BODY:
                        raise TooLarge(f"body larger than {MAX_BODY} bytes")
                    parts.append(self.rfile.read(size))
                    self.rfile.readline(16)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise TooLarge(f"body larger than {MAX_BODY} bytes")
            return self.rfile.read(length)

        def do_GET(self):
            if self.path == "/healthz":
                self.reply(200, "text/plain; charset=utf-8", b"ok\n")
            elif self.path in SIGNALS:
                self.not_post()
            else:
                self.reply(404, "text/plain; charset=utf-8", b"404 page not found\n")

        def not_post(self):
            self.send_response(405)
            self.send_header("Allow", "POST")
            body = b"405 method not allowed, supported: [POST]"
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        do_PUT = do_DELETE = do_PATCH = lambda self: self.not_post()  # noqa: E731

        def do_POST(self):
            path = self.path.split("?", 1)[0]
            if path not in SIGNALS:
                self.reply(404, "text/plain; charset=utf-8", b"404 page not found\n", close=True)
                receiver.log(f"POST {self.path} 404 (OTLP/HTTP paths: {', '.join(SIGNALS)})")
                return
            raw_type = self.headers.get("Content-Type", "")
            content_type = raw_type.split(";", 1)[0].strip().lower()
            if content_type not in (PROTOBUF, JSON):
                msg = f"{raw_type} unsupported media type, supported: [{JSON}, {PROTOBUF}]"
                self.reply(415, "text/plain", msg.encode(), close=True)
                receiver.log(f"POST {path} 415 {raw_type!r}")
                return
            encoding = self.headers.get("Content-Encoding", "")
            request_type, response_type = SIGNALS[path]
            try:
                body = decompress(self.read_body(), encoding)
                request = decode_request(body, content_type, request_type)
            except TooLarge as e:
                self.reply(413, "text/plain", str(e).encode(), close=True)
                receiver.log(f"POST {path} 413 {e}")
                return
            except BadRequest as e:
                self.reply(400, content_type, rpc_status(INVALID_ARGUMENT, str(e), content_type))
                receiver.log(f"POST {path} 400 {content_type} {encoding or 'identity'}: {e}")
                return
            if receiver.delay:
                time.sleep(receiver.delay)
            if receiver.take_failure():
                status = receiver.fail_status
                self.reply(status, content_type,
                           rpc_status(UNKNOWN, f"failure injected ({status})", content_type))
                receiver.log(f"POST {path} {status} (failure injected, nothing stored)")
                return
            stored = "not stored"
            if path == "/v1/traces":
                stored = f"{receiver.store(request, content_type, encoding)} spans"
            self.reply(200, content_type, encode_response(response_type(), content_type))
            receiver.log(f"POST {path} 200 {content_type} {encoding or 'identity'} {stored}")

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Server6(Server):
    address_family = socket.AF_INET6


def main(argv=None):
    p = argparse.ArgumentParser(description="OTLP/HTTP test receiver (traces to JSON lines)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4318, help="port; 0 picks a free one (default 4318)")
    p.add_argument("--out", required=True, help="JSON-lines file the spans are appended to")
    p.add_argument("--ready-file", help="once listening, write the endpoint URL here (atomically)")
    p.add_argument("--print-ready", action="store_true",
                   help='once listening, print "READY <endpoint>" on stdout')
    p.add_argument("--quiet", action="store_true", help="no per-request log on stderr")
    p.add_argument("--fail-status", type=int, default=0,
                   help="answer trace/metric/log exports with this status instead (e.g. 503)...")
    p.add_argument("--fail-count", type=int, default=1 << 62,
                   help="...for this many requests, then normally (default: all of them)")
    p.add_argument("--delay", type=float, default=0.0,
                   help="seconds to wait before answering an export (a slow collector)")
    p.add_argument("--exit-after", type=float, default=0.0,
                   help="stop by itself after this many seconds (0: never)")
    args = p.parse_args(argv)

    receiver = Receiver(args.out, args.quiet, args.fail_status, args.fail_count, args.delay)
    cls = Server6 if ":" in args.host else Server
    server = cls((args.host, args.port), make_handler(receiver))
    port = server.server_address[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    endpoint = f"http://{host}:{port}"

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_after > 0:
        timer = threading.Timer(args.exit_after, stop)
        timer.daemon = True
        timer.start()

    if args.ready_file:
        tmp = f"{args.ready_file}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(endpoint + "\n")
        os.replace(tmp, args.ready_file)
    if args.print_ready:
        print(f"READY {endpoint}", flush=True)
    receiver.log(f"listening on {endpoint}, spans to {args.out}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        receiver.close()
        receiver.log(f"stopped after {receiver.seq} trace requests, {receiver.spans} spans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
