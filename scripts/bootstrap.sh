#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install the
# package with its test extras.  Used by the README's quick-start commands.
#
# TORCH_SPEC selects the torch requirement.  The default pins the CPU build
# that CI machines have on disk; set TORCH_SPEC=torch (or a CUDA build) for
# your own hardware.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-tests}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.flowspectrum-installed
# The compiled loops are built at install: a changed C source reinstalls too.
want="$TORCH_SPEC|$EXTRAS|$(cat pyproject.toml setup.py sklearn_flowspectrum/*.c | cksum)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    # pip's notes about local package mirrors are noise here; errors still show.
    pip_q() { .venv/bin/python -m pip install -q "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }; }
    pip_q --upgrade pip
    pip_q "$TORCH_SPEC"
    pip_q -e ".[$EXTRAS]"
    .venv/bin/python -c "import sklearn_flowspectrum, torch, skorch, dpkt" \
        || { echo "bootstrap: installation failed" >&2; exit 1; }
    .venv/bin/python -c "from sklearn_flowspectrum import _loops as b; b.COMPILED or print(
        'bootstrap: the compiled loops were not built (no C compiler?); '
        'the slower pure-Python loops will be used')"
    echo "$want" > "$stamp"
fi
