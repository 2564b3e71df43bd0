"""The demo's CPU training budget, chosen on an inner split of its training part.

``flowspectrum demo`` splits the bundled ISCX-VPN2016 sample (12 classes x
250 AllLayers sessions) 80/20 with seed 0 and prints the held-out scores.
Choosing its number of epochs on those held-out sessions would tune the
demo to its own test set, so this script splits the demo's TRAINING part
once more (stratified 75/25, seed 1) and fits the demo's pipeline
(``mask="safe"``, batch 64 on the CPU, seed 0) for each ``--epochs`` on the
inner part, with ExtraTrees(300) on the same bytes beside it.  Printed per
row: inner accuracy and macro-F1 and the fit time.  The held-out 20% is
never read.

    python benchmarks/demo_budget.py --epochs 6,12,20

RESULTS: see the closing note of the spectrum issue and the comment at
``DEMO_EPOCHS_CPU`` in ``sklearn_flowspectrum/_cli.py``.
"""

import argparse
import os
import time

import torch
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from sklearn_flowspectrum import (
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
)
from sklearn_flowspectrum._cli import CPU_BATCH_SIZE
from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", default="6,12,20")
    p.add_argument("--threads", type=int, default=2, help="torch threads (demo: 2)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y = load_iscx_vpn2016_sample(return_X_y=True)
    # The demo's split (test_size 0.2, seed 0); its test part is dropped.
    X_train, _, y_train, _ = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    X_fit, X_val, y_fit, y_val = train_test_split(
        X_train, y_train, test_size=0.25, stratify=y_train, random_state=1
    )
    vec = PcapSessionVectorizer(mask="safe").fit(X_fit)
    print(
        f"{len(y_fit)} inner-train / {len(y_val)} inner-validation sessions of the "
        f"demo's {len(y_train)} training sessions; {args.threads} torch threads"
    )
    print(f"{'model':24s} {'acc':>6s} {'macro-F1':>9s} {'fit_s':>7s}", flush=True)
    t0 = time.perf_counter()
    trees = ExtraTreesClassifier(n_estimators=300, n_jobs=-1, random_state=0)
    pred = trees.fit(vec.transform(X_fit), y_fit).predict(vec.transform(X_val))
    fit_s = time.perf_counter() - t0
    print(
        f"{'ExtraTrees(300)':24s} {accuracy_score(y_val, pred):6.3f} "
        f"{f1_score(y_val, pred, average='macro'):9.3f} {fit_s:7.1f}",
        flush=True,
    )
    for epochs in [int(e) for e in args.epochs.split(",")]:
        pipe = Pipeline(
            [
                ("vectorizer", PcapSessionVectorizer(mask="safe")),
                (
                    "embedder",
                    AMAESpectrumEmbedder(
                        max_epochs=epochs,
                        batch_size=CPU_BATCH_SIZE,
                        random_state=0,
                        device="cpu",
                    ),
                ),
                ("classifier", FlowSpectrumClassifier()),
            ]
        )
        t0 = time.perf_counter()
        pipe.fit(X_fit, y_fit)
        fit_s = time.perf_counter() - t0
        pred = pipe.predict(X_val)
        print(
            f"{f'spectrum, {epochs} epochs':24s} {accuracy_score(y_val, pred):6.3f} "
            f"{f1_score(y_val, pred, average='macro'):9.3f} {fit_s:7.1f}",
            flush=True,
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
