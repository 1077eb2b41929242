#!/usr/bin/env bash
# Creates (or reuses) the Python venv for the OTLP test receiver and prints the path of its
# python on stdout (tests/lib/python-venv.sh):
#
#   py="$(bash tests/otlp/setup.sh)"
#   "$py" tests/otlp/receiver.py --port 0 --out spans.jsonl --ready-file endpoint.txt &
#
# The venv lives in ${XDG_CACHE_HOME:-$HOME/.cache}/dcr-shim-ci/otlp-venv (DCR_SHIM_OTLP_VENV
# overrides it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../lib/python-venv.sh" "${DCR_SHIM_OTLP_VENV:-otlp-venv}" "$here/requirements.txt" \
  opentelemetry.proto.collector.trace.v1.trace_service_pb2
