#!/usr/bin/env bash
# The README's test command: sets up .venv, lints, and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/python -m ruff check sklearn_flowspectrum tests examples benchmarks
.venv/bin/python -m pytest "$@"
