#!/usr/bin/env bash
# Runs the benchmarks. `--smoke` runs a few iterations with the dev profile (used by CI so the
# benchmarks keep compiling and running); without it, a full release run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--smoke" ]]; then
  cargo bench --locked --profile dev --bench registration -- --smoke
  cargo bench --locked --profile dev --bench login -- --smoke
  cargo bench --locked --profile dev --bench scale -- --smoke
else
  cargo bench --locked --bench registration
  cargo bench --locked --bench login
  cargo bench --locked --bench scale
fi
