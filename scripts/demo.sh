#!/usr/bin/env bash
# The README's first command: set up .venv (scripts/bootstrap.sh) and run the
# demo on the ISCX-VPN2016 sample bundled with the package.  It trains the
# pipeline, prints per-session and group-of-10 accuracy with the protocol that
# produced them, and writes PNG plots and results.json to ./flowspectrum-demo/
# (scripts/update_readme.py copies those numbers and the spectrum picture into
# the README).  Seeded CPU training repeats only with the same number of torch
# threads: 2 here, unless DEMO_TORCH_THREADS says otherwise.
# Extra arguments go to `flowspectrum demo` (see --help), e.g.
#   bash scripts/demo.sh --representation l7 --epochs 30
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export DEMO_TORCH_THREADS="${DEMO_TORCH_THREADS:-2}"
exec .venv/bin/python -m sklearn_flowspectrum demo "$@"
