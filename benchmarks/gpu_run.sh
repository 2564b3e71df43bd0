#!/usr/bin/env bash
# One prepared GPU session for the embedder (issue 3): CUDA tests, the
# throughput benchmark, the accuracy cross-validation, and the committed
# CUDA-pickle test fixture (tests/data/embedder_cuda.pkl).
#
# On the device machine, from the repository root, with skorch/dpkt wheels in
# .whl/ and the ISCX session IDX folders in .devdata/:
#     OUT=/some/dir bash benchmarks/gpu_run.sh
# Dry run on a CPU with tiny settings (checks the commands, not the numbers):
#     QUICK=1 NO_WHEELS=1 PY=.venv/bin/python OUT=/tmp/out bash benchmarks/gpu_run.sh
set -u
OUT=${OUT:-/tmp/gpu_out}
PY=${PY:-python3}
TOTAL=${TOTAL:-420}          # seconds this script may use
ACC_BUDGET=${ACC_BUDGET:-210}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
start=$(date +%s)
left() { echo $((TOTAL - ($(date +%s) - start))); }
log="$OUT/run.log"

{
if [ -z "${NO_WHEELS:-}" ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/skorch-*.whl .whl/dpkt-*.whl || exit 1
    if ! $PY -c "import sklearn, sys; v = tuple(int(p) for p in sklearn.__version__.split('.')[:2]); sys.exit(v < (1, 6))"; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --upgrade --target /tmp/site .whl/scikit_learn-*.whl || exit 1
    fi
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
$PY - <<'PYEOF'
import platform, torch, sklearn, skorch, numpy, scipy, pandas
print("python", platform.python_version(), "torch", torch.__version__,
      "sklearn", sklearn.__version__, "skorch", skorch.__version__,
      "numpy", numpy.__version__, "scipy", scipy.__version__, "pandas", pandas.__version__)
print("cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "")
import sklearn_flowspectrum
print("package import ok")
PYEOF
echo "== [$(left) s left] CUDA pickle fixture"
OUT="$OUT" timeout 60 $PY - <<'PYEOF'
import os, pickle
import numpy as np, torch
from sklearn_flowspectrum import AMAESpectrumEmbedder
torch.backends.cudnn.allow_tf32 = False  # fp32 spectra comparable to a CPU
rng = np.random.default_rng(0)
X = rng.integers(0, 256, size=(24, 16), dtype=np.uint8)
y = np.repeat(["a", "b", "c"], 8)
dev = "cuda" if torch.cuda.is_available() else "cpu"
emb = AMAESpectrumEmbedder(max_epochs=2, batch_size=8, random_state=0, device=dev,
                           module__mapper_hidden=(8,), module__channels=(8, 4))
emb.fit(X, y)
Z = emb.transform(X)
print("fixture device", emb.device_, next(emb.module_.parameters()).device, Z[:3].ravel())
with open(os.path.join(os.environ["OUT"], "embedder_cuda.pkl"), "wb") as f:
    pickle.dump({"embedder": emb, "X": X, "spectrum": Z}, f)
PYEOF
echo "== [$(left) s left] pytest (CUDA tests)"
timeout 120 $PY -m pytest tests/test_embedder.py tests/test_nn.py -q -p no:cacheprovider -k "${PYTEST_K:-cuda or persistence or shape}" 2>&1 | tail -15
echo "== [$(left) s left] throughput benchmark"
if [ -n "${SKIP_BENCH:-}" ]; then
    echo "skipped (SKIP_BENCH)"
elif [ -n "${QUICK:-}" ]; then
    timeout 300 $PY benchmarks/bench_embedder.py --cpu-n 64 --cpu-epochs 2 --repeats 1 --out "$OUT/bench.json"
else
    timeout 150 $PY benchmarks/bench_embedder.py --no-cpu --cuda-configs fp32,bf16 --out "$OUT/bench.json"
fi
echo "== [$(left) s left] accuracy cross-validation"
if [ -n "${QUICK:-}" ]; then
    timeout 900 $PY benchmarks/accuracy_embedder.py --data .devdata --subset 0.03 --sweep \
        --sweep-epochs 1 --epochs 1 --folds 2 --variants base,straight --out "$OUT/accuracy.json"
else
    # ACC_ARGS overrides the sweep settings (e.g. a second, large-batch run).
    timeout $((ACC_BUDGET + 60)) $PY benchmarks/accuracy_embedder.py --data .devdata \
        ${ACC_ARGS:---sweep --sweep-epochs 20} --budget "$ACC_BUDGET" --out "$OUT/accuracy.json"
fi
rem=$(left)
echo "== [$rem s left] compiled throughput"
if [ -z "${QUICK:-}" ] && [ -z "${SKIP_BENCH:-}" ] && [ "$rem" -gt 70 ]; then
    timeout $((rem - 10)) $PY benchmarks/bench_embedder.py --no-cpu --cuda-configs bf16c \
        --repeats 2 --out "$OUT/bench_compile.json"
fi
echo "== done after $(( $(date +%s) - start )) s"
} 2>&1 | tee "$log"
