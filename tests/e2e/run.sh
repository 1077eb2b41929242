#!/usr/bin/env bash
# dcr-shim end-to-end suite. Usage: tests/e2e/run.sh
# Env: DCR_SHIM_BIN (default ../../target/debug/dcr-shim relative to this script),
#      E2E_ONLY=<regex of scenario names>, E2E_VERBOSE=1, E2E_KEEP_TMP=1, E2E_SKIP_INSTALL=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DCR_SHIM_BIN="${DCR_SHIM_BIN:-$here/../../target/debug/dcr-shim}"
if [[ ! -x "$DCR_SHIM_BIN" ]]; then echo "dcr-shim binary not found at $DCR_SHIM_BIN (build it, or set DCR_SHIM_BIN)" >&2; exit 2; fi
cd "$here"
if [[ -z "${E2E_SKIP_INSTALL:-}" ]]; then npm ci --no-audit --no-fund --loglevel=error; fi
# The official MCP Python SDK, for the gateway's Python scenario (E2E_PYTHON names a python that
# has it; else a venv from py/requirements.txt).
if [[ -z "${E2E_PYTHON:-}" ]]; then
  E2E_PYTHON="$(bash "$here/../lib/python-venv.sh" e2e-py-venv "$here/py/requirements.txt" mcp)"
  export E2E_PYTHON
fi
exec node run.mjs
