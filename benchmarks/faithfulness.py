"""Faithfulness and cost of the explanations of ``sklearn_flowspectrum.explain``.

Protocol (CPU-sized; every figure printed beside its baseline of the same
run): the shared ISCX VPN-nonVPN 2016 train split (USTC-TK2016 session
images), AllLayers rows through ``PcapSessionVectorizer(mask="safe")``, the
classes of ``--vpn`` (default: the 6 non-VPN classes).  ``--train`` sessions
per class are drawn with seed 0 for training and ``--test`` other sessions
per class for scoring (a random split of sessions; the explanations, not the
accuracy, are under test).  Pipeline: vectorizer, ``AMAESpectrumEmbedder``
(defaults except ``--epochs`` and ``--batch-size``), ``FlowSpectrumClassifier``.

Printed:

1. Deletion curve (``evaluation.deletion_curve``): per-session accuracy on
   the test sessions after blanking the top k% of each session's 784 bytes
   by each method, beside the random order and the class-average attention
   order; and whether each method is below random at every k <= 20.
2. Model randomisation (``evaluation.randomization_check``): mean Spearman
   correlation of each method's absolute maps, trained against freshly
   drawn weights.
3. Cost: seconds to explain ``--cost-sessions`` sessions with each method
   (the test sessions repeated), and that rate scaled to 10,000 sessions.
4. The share of each session's attention variance that lies within image
   rows (28-byte rows of the 28x28 image), the mean over test sessions.
5. Path points of integrated gradients: for each ``n_steps``, the
   completeness error ``|sum(attributions) - (d(x) - d(blank))| / |d(x) -
   d(blank)|`` (median and 90th percentile over the test sessions), the
   distance to the 64-point maps and the Spearman correlation of their
   absolute values (what the deletion curve ranks by), beside the time.

Run (the figures in the user guide)::

    nice -n 10 python benchmarks/faithfulness.py

``--model PATH`` caches the fitted pipeline (joblib) between runs.
``--fusion`` trains with another ``AttentionFusion`` mode (``module__fusion``).
``--sections 2 --test 10`` reruns only the randomisation on 10 test sessions
per class.

RESULTS (2-core CPU shared with other jobs, 2026-12-02; defaults above;
table in docs/user_guide/attention.rst, section "Explanations")
--------------------------------------------------------------------------
Paper fusion: intact 74.2%; at k = 5/10/20%: gradients 30.8/20.4/16.2,
occlusion 55.4/47.1/30.4, attention 70.4/60.0/34.6, class-average attention
72.5/62.9/35.0, random 72.9/72.5/69.2; every method below random at every
k <= 20 (class-average attention not at k = 1).  Randomisation, 60 sessions
(``--sections 2 --test 10``), non-zero bytes: gradients -0.004, occlusion
0.078, attention -0.343; all bytes: 0.941, 0.953, -0.173 (240 sessions:
0.942, 0.948, -0.176).  Cost, 1,000 sessions: transform 4.5 s, gradients
384 s (n_steps=16), occlusion 137 s, attention 0.8 s.  Attention variance
within rows 0.0%.

1-D default network, ``--n-steps 8`` (idle CPU, 2026-12-03): intact 80.4%;
at k = 5/10/20%: gradients 33.3/24.2/17.5, occlusion 66.2/46.2/34.2,
attention 72.5/63.3/52.1, random 80.8/78.8/78.3, every method below random
at every k <= 20.  Cost, 1,000 sessions: transform 0.5 s, gradients 6.0 s
(13x; 60 s per 10,000), occlusion 4.3 s.  Section 5, median completeness
error / Spearman with 64 points: 4 points 2.0% / 1.000, 8 points 1.3% /
1.000, 12 points 0.7% / 1.000, 16 points 0.6% / 1.000; 240 sessions take
1.4 s at 8 points and 2.7 s at 16.

``--fusion elementwise``: intact 76.2%; gradients 25.4/22.5/12.9, occlusion
54.6/43.8/28.3, attention 65.0/58.8/35.8, random 75.4/73.3/68.3; attention
variance within rows 79.9%; randomisation, 60 sessions, non-zero bytes:
gradients -0.020, occlusion -0.091, attention -0.041.
"""

import argparse
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from sklearn.pipeline import make_pipeline

from sklearn_flowspectrum import (
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
    explain,
)
from sklearn_flowspectrum.datasets import load_iscx_vpn2016
from sklearn_flowspectrum.evaluation import deletion_curve, randomization_check

ISCX = Path(__file__).resolve().parents[1].parent / "shared/data/iscx-vpn2016"
METHODS = ("gradients", "occlusion", "attention")
PERCENTS = list(range(1, 21)) + [25, 30, 40, 50]


def draw(y, per_class, rng, exclude=None):
    take = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if exclude is not None:
            idx = np.setdiff1d(idx, exclude)
        take.append(rng.permutation(idx)[:per_class])
    return np.sort(np.concatenate(take))


def within_row_share(maps, side=28):
    """Mean over sessions of (within-row variance) / (total variance)."""
    n = maps.shape[0]
    full = np.zeros((n, side * side))
    full[:, : maps.shape[1]] = maps
    grid = full.reshape(n, side, side)
    total = grid.reshape(n, -1).var(axis=1)
    within = grid.var(axis=2).mean(axis=1)
    ok = total > 0
    return float(np.mean(within[ok] / total[ok]))


def deletion(pipe, Xte, yte, params):
    """Section 1."""
    t = time.perf_counter()
    curve = deletion_curve(
        pipe,
        Xte,
        yte,
        methods=METHODS,
        fractions=np.array(PERCENTS) / 100.0,
        explain_params=params,
        random_state=0,
    )
    print(
        f"\n1. Deletion curve ({time.perf_counter() - t:.0f} s): per-session "
        "accuracy (%) on the test sessions after blanking the top k% bytes"
    )
    base = curve.loc[curve["order"] == "none", "accuracy"].item()
    table = curve[curve["order"] != "none"].pivot(
        index="percent", columns="order", values="accuracy"
    )
    table = table[[*METHODS, "random", "class_attention"]]
    print(f"intact images: {100 * base:.1f}")
    print((100 * table).round(1).to_string())
    upto20 = table[table.index <= 20]
    for m in (*METHODS, "class_attention"):
        below = (upto20[m] < upto20["random"]).all()
        gap = 100 * (upto20["random"] - upto20[m]).mean()
        print(
            f"{m}: below random at every k <= 20: {below}; mean gap over "
            f"k <= 20: {gap:+.1f} points"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ISCX))
    ap.add_argument("--vpn", default="novpn", choices=["novpn", "vpn", "both"])
    ap.add_argument("--train", type=int, default=120, help="sessions per class")
    ap.add_argument("--test", type=int, default=40, help="sessions per class")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--n-steps", type=int, default=8, help="integrated gradients")
    ap.add_argument("--cost-sessions", type=int, default=1000)
    ap.add_argument("--fusion", default=None, help="module__fusion, if given")
    ap.add_argument("--model", default=None, help="cache of the fitted pipeline")
    ap.add_argument("--sections", default="1,2,3,4,5", help="comma-separated, of 1-5")
    args = ap.parse_args()

    X, y = load_iscx_vpn2016(args.data, vpn=args.vpn, return_X_y=True)
    rng = np.random.default_rng(0)
    tr = draw(y, args.train, rng)
    te = draw(y, args.test, rng, exclude=tr)
    print(
        f"ISCX {args.vpn} SessionAllLayers, mask='safe': {len(tr)} training and "
        f"{len(te)} test sessions ({len(np.unique(y))} classes); "
        f"torch threads {torch.get_num_threads()}"
    )
    kw = {}
    if args.fusion:
        kw["module__fusion"] = args.fusion
    cached = args.model and Path(args.model).exists()
    if cached:
        pipe = joblib.load(args.model)
        print(f"model: loaded from {args.model}")
    else:
        pipe = make_pipeline(
            PcapSessionVectorizer(mask="safe"),
            AMAESpectrumEmbedder(
                max_epochs=args.epochs,
                batch_size=args.batch_size,
                random_state=0,
                **kw,
            ),
            FlowSpectrumClassifier(),
        )
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe.fit(X[tr], y[tr])
        print(f"fit: {time.perf_counter() - t:.0f} s ({args.epochs} epochs)")
        if args.model:
            joblib.dump(pipe, args.model)
    Xte, yte = X[te], y[te]
    params = {"n_steps": args.n_steps}
    sections = {int(x) for x in args.sections.split(",")}

    if 1 in sections:
        deletion(pipe, Xte, yte, params)
    if 2 in sections:
        t = time.perf_counter()
        print(
            "\n2. Model randomisation: Spearman rank correlation of "
            "|attributions|, trained vs random weights"
        )
        for positions in ("nonzero", "all"):
            rand = randomization_check(
                pipe, Xte, methods=METHODS, positions=positions, explain_params=params
            )
            print(f"over the {positions} bytes of each session:")
            print(rand.round(3).to_string())
        print(f"({time.perf_counter() - t:.0f} s)")
    if 3 in sections:
        cost(pipe, Xte, yte, args.cost_sessions, params)
    if 4 in sections:
        row_share(pipe, Xte, params)
    if 5 in sections:
        path_points(pipe, Xte)


def cost(pipe, Xte, yte, n_sessions, params):
    """Section 3."""
    print(f"\n3. Cost: {n_sessions} sessions per method")
    reps = -(-n_sessions // len(Xte))
    Xc = np.concatenate([Xte] * reps)[:n_sessions]
    images = pipe[0].transform(Xc)
    t = time.perf_counter()
    pipe[1].transform(images)
    spec = time.perf_counter() - t
    print(f"spectrum only (transform, the baseline): {spec:.1f} s")
    for m in METHODS:
        t = time.perf_counter()
        explain(pipe[1:], images, method=m, **params)
        dt = time.perf_counter() - t
        print(
            f"{m}: {dt:.1f} s = {dt / spec:.1f}x transform; "
            f"{dt * 10000 / len(Xc):.0f} s per 10,000 sessions"
        )


def row_share(pipe, Xte, params):
    """Section 4."""
    maps = pipe[1].attention_maps(pipe[0].transform(Xte))
    print(
        "\n4. Attention variance within 28-byte rows: "
        f"{100 * within_row_share(maps):.1f}% of the total (mean over sessions)"
    )
    grads = explain(pipe, Xte, method="gradients", **params)
    print(
        "   integrated gradients, same measure: "
        f"{100 * within_row_share(np.abs(grads)):.1f}%"
    )


def path_points(pipe, Xte, steps=(4, 8, 12, 16, 32), reference=64):
    """Section 5."""
    images = pipe[0].transform(Xte)
    emb = pipe[1]
    # The blank session has no pcap header: skip the check of the rows' kind.
    blank = emb._spectrum(np.zeros_like(images[:1]), validated=True)[0, 0]
    gain = emb.transform(images)[:, 0] - blank
    ref = explain(emb, images, method="gradients", n_steps=reference)
    print(
        f"\n5. Integrated-gradients path points (reference: {reference} points); "
        "completeness error relative to |d(x) - d(blank)|"
    )
    rows = []
    for n in steps:
        t = time.perf_counter()
        a = explain(emb, images, method="gradients", n_steps=n)
        seconds = time.perf_counter() - t
        err = np.abs(a.sum(1) - gain) / np.abs(gain)
        dist = np.linalg.norm(a - ref, axis=1) / np.linalg.norm(ref, axis=1)
        rho = [spearmanr(np.abs(a[i]), np.abs(ref[i]))[0] for i in range(len(a))]
        rows.append(
            {
                "n_steps": n,
                "seconds": round(seconds, 1),
                "error_median": np.median(err),
                "error_p90": np.quantile(err, 0.9),
                "distance_median": np.median(dist),
                "spearman_median": np.nanmedian(rho),
                "spearman_min": np.nanmin(rho),
            }
        )
    print(pd.DataFrame(rows).round(4).to_string(index=False))


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    main()
