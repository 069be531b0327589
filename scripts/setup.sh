#!/usr/bin/env bash
# Creates .venv in the checkout and installs latentmorph with its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: a plain range would pull the newest build with gigabytes of CUDA packages
# where a suitable wheel is already at hand; the project itself only needs torch>=2.4.
.venv/bin/python -m pip install --quiet "torch==${LATENTMORPH_TORCH_VERSION:-2.13.0}"
.venv/bin/python -m pip install --quiet -e ".[dev]"
# Debian's chromium, for the browser test of the web UI (skipped where it cannot be installed)
bash scripts/install-browser.sh || echo "setup: chromium not installed; the browser test will be skipped" >&2
echo "latentmorph is installed in .venv: run .venv/bin/latentmorph --help"
