#!/usr/bin/env bash
# The README's test command: sets up .venv, lints, and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/python -m ruff check sklearn_flowspectrum tests setup.py examples benchmarks
.venv/bin/python -m pytest "$@"
# Users without a C compiler get the pure-Python loops: the tests of the
# capture-to-image path run once more with them.
SKLEARN_FLOWSPECTRUM_PURE_PYTHON=1 .venv/bin/python -m pytest "$@" \
    tests/test_loops.py tests/test_capture.py tests/test_sessions.py \
    tests/test_layouts.py tests/test_vectorizer.py tests/test_sources.py \
    tests/test_session_stats.py tests/test_streaming.py tests/test_split.py
