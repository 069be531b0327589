#!/usr/bin/env bash
# Runs the whole offline test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1
.venv/bin/ruff check src tests benchmarks scripts
exec .venv/bin/python -m pytest "$@"
