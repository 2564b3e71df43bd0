"""Time to fit the default embedder on the whole shared ISCX train split.

The training-cost target of the spectrum: ``AMAESpectrumEmbedder()`` with
its defaults (CPU, fp32) fitted on every AllLayers session of the shared
ISCX VPN-nonVPN 2016 train split (35,501 sessions, ``mask="safe"``), timed
beside ``ExtraTreesClassifier(n_estimators=300)`` on the same bytes in the
same run.  Only time is measured here (the split's held-out part is not
shared); accuracy is ``spectrum_vs_trees.py``'s.

    python benchmarks/fit_time.py [--per-class N] [--epochs E]

``--per-class`` draws at most N sessions per class (seed 0) for a shorter
run; the printed sample-epochs per second then estimate the full fit.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from sklearn.ensemble import ExtraTreesClassifier

from sklearn_flowspectrum import AMAESpectrumEmbedder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_embedder import default_data_path  # noqa: E402
from spectrum_vs_trees import load  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None)
    p.add_argument("--per-class", type=int, default=0, help="0: all sessions")
    p.add_argument("--epochs", type=int, default=None, help="default: the embedder's")
    args = p.parse_args(argv)
    path = args.data or os.environ.get("FLOWSPECTRUM_ISCX_PATH") or default_data_path()
    if path is None:
        sys.exit("ISCX data not found; pass --data or set FLOWSPECTRUM_ISCX_PATH")
    X, y, _, _ = load(path, "alllayers", "ustc", args.per_class, 0)
    params = {"random_state": 0, "device": "cpu"}
    if args.epochs is not None:
        params["max_epochs"] = args.epochs
    emb = AMAESpectrumEmbedder(**params)
    print(
        f"{len(y)} AllLayers sessions (safe mask), {emb.max_epochs} epochs, batch "
        f"{emb.batch_size}, {torch.get_num_threads()} torch threads",
        flush=True,
    )
    t0 = time.perf_counter()
    ExtraTreesClassifier(n_estimators=300, n_jobs=-1, random_state=0).fit(X, y)
    trees_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb.fit(X, y)
    emb_s = time.perf_counter() - t0
    print(f"ExtraTrees(300) fit: {trees_s:.1f} s")
    print(
        f"embedder fit: {emb_s:.0f} s ({emb_s / 60:.1f} min), "
        f"{len(y) * emb.max_epochs / emb_s:.0f} sample-epochs/s; "
        f"{emb_s / trees_s:.0f}x the trees' time"
    )
    if args.per_class:
        full = 35501 * emb.max_epochs / (len(y) * emb.max_epochs / emb_s)
        print(f"at that rate the 35,501 sessions would take {full / 60:.1f} min")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
