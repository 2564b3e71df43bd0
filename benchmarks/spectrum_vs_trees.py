"""The one-number spectrum against ExtraTrees(300) on the same bytes and folds.

Fixed protocol (CPU, at most 40 minutes on 2 idle cores with the defaults
below): up to ``--per-class`` sessions of each of the 12 classes of the
shared ISCX VPN-nonVPN 2016 train split (drawn with seed 0), stratified
``--folds``-fold CV (shuffled, seed 0).  In each fold, on the same training
sessions and the same bytes:

- ``spectrum``: ``AMAESpectrumEmbedder`` (the variant: ``default`` is the
  embedder's defaults, ``paper`` the paper-shaped network of Table 1,
  ``conv1d`` the defaults with ``module=AMAE1dModule``; all variants of
  ``accuracy_embedder.py`` are accepted), then
  ``FlowSpectrumClassifier()`` on the one-number training spectra;
- ``trees``: ``ExtraTreesClassifier(n_estimators=300)`` on the bytes.

Representations: ``alllayers`` (USTC-TK2016 AllLayers rows through
``PcapSessionVectorizer(mask="safe")``, laid out as ``--layouts``: ``ustc``
keeps the published layout, ``packets`` gives each packet a fixed slot,
rebuilt from the rows' pcap record headers) and ``l7`` (the published
payload rows; only ``ustc``).  Printed per row: accuracy and macro-F1 (mean
+- std over folds) on all test sessions and, for AllLayers, on the
application test sessions (``background_sessions`` false, read from the
headers before masking), and the median fit time of one fold.

``--inner`` scores on an inner 80/20 split of each training fold instead of
its test fold (the test folds are never used): choose variants that way.

CPU protocol (the table of the closing note)::

    nice -n 10 python benchmarks/spectrum_vs_trees.py

Full data on a GPU (all 35,501 AllLayers and 29,193 L7 sessions)::

    python benchmarks/spectrum_vs_trees.py --per-class 0 --epochs 20 \\
        --batch-size 1024 --lr 4e-3 --precision bf16 --out full.json

RESULTS (2-core CPU, torch fp32; the 3-fold 800/class rows were rerun on the
idle machine, with identical scores and the times below; the other rows ran
while other jobs shared it, so their times are upper bounds). The embedder's
defaults (AMAE1dModule, 20 epochs, batch 256), AllLayers rows with
``mask="safe"``; mean +- std over folds::

    python benchmarks/spectrum_vs_trees.py --per-class 800 --variants default
    python benchmarks/spectrum_vs_trees.py --per-class 800 --variants default \
        --reps alllayers --split time
    python benchmarks/spectrum_vs_trees.py --per-class 300 --variants paper \
        --reps alllayers --no-trees
    python benchmarks/spectrum_vs_trees.py --inner --per-class 300 \
        --variants default --reps alllayers

======================= ======== ========= ========= ========= ========= =====
split                   model    acc       macro-F1  acc apps  F1 apps   fit_s
======================= ======== ========= ========= ========= ========= =====
800/class, 3-fold       spectrum 85.7+-0.7 86.9+-0.6 89.6+-1.3 69.4+-4.4 84
800/class, 3-fold       trees    86.1+-0.9 87.2+-0.8 91.1+-0.8 73.3+-2.5 2.2
800/class, 3-fold, L7   spectrum 80.4+-0.2 81.3+-0.6 -         -         81
800/class, 3-fold, L7   trees    82.8+-0.7 83.9+-0.8 -         -         2.7
800/class, latest third spectrum 81.0      78.8      82.7      53.4      192
800/class, latest third trees    88.0      89.0      91.2      69.3      2.1
300/class, 3-fold       paper    71.4+-1.3 71.5+-1.2 69.6+-2.3 40.6+-3.0 296
300/class, inner        spectrum 84.0+-1.6 83.8+-1.6 86.5+-1.5 57.9+-7.7 249
300/class, inner        trees    85.5+-1.1 85.2+-1.2 89.6+-1.5 64.4+-5.3 1.4
======================= ======== ========= ========= ========= ========= =====

The inner rows chose nothing by themselves; the defaults were chosen on
inner splits of 300 per class before these runs (see the closing note of
the spectrum issue).  Reading: on a random split the one number is within
half a point of ExtraTrees on all sessions and below it on the application
sessions and on L7; on a later capture period of each class it is 7
points below.  On an inner time split (each class's latest 20% of the
training part of the time split) the network's own 12-way head reached
82.6% against 81.3% for the spectrum and 83.1% for the trees: the squeeze
to one number costs about a point there, the network the rest.
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from sklearn_flowspectrum import (
    AMAE1dModule,
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
)
from sklearn_flowspectrum.datasets import load_iscx_vpn2016
from sklearn_flowspectrum.evaluation import background_sessions, ustc_session_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_embedder import VARIANTS, default_data_path  # noqa: E402

# The 1-D network with Table 1's widths (the 1-D option before it became the
# default), beside the embedder's default and the paper's.
VARIANTS = dict(
    VARIANTS,
    conv1d_full={
        "module": AMAE1dModule,
        "module__channels": (64, 32),
        "module__pools": (1, 4),
        "module__decoder": "mirror",
        "module__byte_embedding": 8,
        "module__mapper_hidden": (1024, 256),
    },
)

# KDE bandwidths tried by --bandwidth-cv (the paper's 0.1 among them) and
# the two rules of thumb.
BANDWIDTHS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, "scott", "silverman"]


def per_class_indices(y, per_class, seed):
    """At most ``per_class`` indices of each class (all if 0), sorted."""
    if not per_class:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep.append(rng.choice(idx, min(per_class, len(idx)), replace=False))
    return np.sort(np.concatenate(keep))


def load(path, representation, layout, per_class, seed):
    """Bytes (uint8), labels, application flags and start times (AllLayers).

    Flags and times are None for L7 rows, which hold no headers.
    """
    X, y = load_iscx_vpn2016(
        path, representation=representation, subset="session", return_X_y=True
    )
    keep = per_class_indices(np.asarray(y), per_class, seed)
    X, y = X[keep], np.asarray(y)[keep]
    apps = times = None
    if representation == "alllayers":
        table = ustc_session_table(X)
        apps = ~background_sessions(table)
        times = np.asarray(table["first_ts"], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X = PcapSessionVectorizer(
                mask="safe", layout=layout, scale=False
            ).fit_transform(X)
    elif layout != "ustc":
        raise SystemExit(
            f"layout {layout!r} needs AllLayers rows, not {representation}"
        )
    return np.ascontiguousarray(X, dtype=np.uint8), y, apps, times


def scores(y_true, y_pred, apps):
    """Accuracy and macro-F1, on all sessions and on the application ones."""
    out = {
        "acc": accuracy_score(y_true, y_pred),
        "f1": f1_score(y_true, y_pred, average="macro"),
    }
    if apps is not None and apps.any():
        out["acc_apps"] = accuracy_score(y_true[apps], y_pred[apps])
        out["f1_apps"] = f1_score(y_true[apps], y_pred[apps], average="macro")
    return out


def fit_predict(model, params, Xtr, ytr, Xte, seed, bandwidth_cv=False):
    """Predictions of one model on ``Xte`` and its fit time in seconds.

    With ``bandwidth_cv``, the spectrum gives ``(predictions at the default
    bandwidth, predictions at the CV-chosen bandwidth, that bandwidth)``.
    """
    t0 = time.perf_counter()
    if model == "trees":
        est = ExtraTreesClassifier(n_estimators=300, n_jobs=-1, random_state=seed)
        pred = est.fit(Xtr, ytr).predict(Xte)
        return pred, time.perf_counter() - t0
    emb = AMAESpectrumEmbedder(random_state=seed, **params).fit(Xtr, ytr)
    fit_s = time.perf_counter() - t0
    s_tr, s_te = emb.transform(Xtr), emb.transform(Xte)
    pred = FlowSpectrumClassifier().fit(s_tr, ytr).predict(s_te)
    if not bandwidth_cv:
        return pred, fit_s
    # The bandwidth chosen by 3-fold CV on the training spectra only.
    search = GridSearchCV(
        FlowSpectrumClassifier(), {"bandwidth": BANDWIDTHS}, cv=3, n_jobs=1
    ).fit(s_tr, ytr)
    return (pred, search.predict(s_te), search.best_params_["bandwidth"]), fit_s


def latest_per_class(idx, y, times, fraction):
    """Split ``idx``: per class, the latest ``fraction`` of sessions by start time."""
    early, late = [], []
    for c in np.unique(y[idx]):
        mine = idx[y[idx] == c]
        # Rows without a packet (NaN time) count as the earliest.
        mine = mine[np.argsort(np.nan_to_num(times[mine], nan=-np.inf), kind="stable")]
        cut = len(mine) - max(1, int(round(fraction * len(mine))))
        early.append(mine[:cut])
        late.append(mine[cut:])
    return np.sort(np.concatenate(early)), np.sort(np.concatenate(late))


def splits(X, y, folds, inner, times=None):
    """(train, test) index pairs: CV folds, or inner splits of their training parts.

    With ``times``: one split, each class's latest ``1/folds`` of sessions
    for testing (a later capture period of every class), the inner split
    its training part's latest 20% per class.
    """
    if times is not None:
        tr, te = latest_per_class(np.arange(len(y)), y, times, 1.0 / folds)
        if inner:
            tr, te = latest_per_class(tr, y, times, 0.2)
        yield tr, te
        return
    skf = StratifiedKFold(folds, shuffle=True, random_state=0)
    for tr, te in skf.split(X, y):
        if inner:
            tr, te = train_test_split(tr, test_size=0.2, stratify=y[tr], random_state=1)
        yield tr, te


def summary(rows):
    """Mean +- std over folds of every score, and the median fit time."""
    out = {}
    for key in rows[0]:
        vals = np.array([r[key] for r in rows], float)
        if key == "fit_s":
            out[key] = float(np.median(vals))
        else:
            out[key] = (float(vals.mean()), float(vals.std()))
    return out


def fmt(s, key):
    if key not in s:
        return "      -     "
    m, sd = s[key]
    return f"{100 * m:5.1f} +-{100 * sd:4.1f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with NovpnSessionAllLayers/...")
    p.add_argument("--per-class", type=int, default=300, help="0: all sessions")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--reps", default="alllayers,l7")
    p.add_argument(
        "--layouts", default="ustc", help="AllLayers layouts, e.g. ustc,packets"
    )
    p.add_argument("--variants", default="default,paper", help=f"of {sorted(VARIANTS)}")
    p.add_argument("--no-trees", action="store_true", help="skip ExtraTrees")
    p.add_argument("--epochs", type=int, default=None, help="default: the embedder's")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--precision", default=None)
    p.add_argument(
        "--split",
        choices=("stratified", "time"),
        default="stratified",
        help="time: each class's latest 1/folds of sessions by capture time "
        "are the test set (AllLayers only)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--inner", action="store_true", help="score on inner splits only")
    p.add_argument(
        "--bandwidth-cv",
        action="store_true",
        help="also report the spectrum with the KDE bandwidth chosen by CV on "
        "the training spectra (row spec+cvh)",
    )
    p.add_argument("--out", default=None, help="JSON file for all fold scores")
    args = p.parse_args(argv)

    path = args.data or os.environ.get("FLOWSPECTRUM_ISCX_PATH") or default_data_path()
    if path is None:
        sys.exit("ISCX data not found; pass --data or set FLOWSPECTRUM_ISCX_PATH")
    common = {
        name: value
        for name, value in (
            ("max_epochs", args.epochs),
            ("batch_size", args.batch_size),
            ("lr", args.lr),
            ("precision", args.precision),
        )
        if value is not None
    }
    common["device"] = args.device
    models = [("spectrum", v) for v in args.variants.split(",") if v]
    if not args.no_trees:
        models.append(("trees", "ExtraTrees(300)"))
    start = time.perf_counter()
    results = []
    print(
        f"{'rep':9s} {'layout':7s} {'model':9s} {'variant':15s} "
        f"{'acc':12s} {'macro-F1':12s} {'acc apps':12s} {'F1 apps':12s} fit_s",
        flush=True,
    )
    for rep in args.reps.split(","):
        layouts = args.layouts.split(",") if rep == "alllayers" else ["ustc"]
        for layout in layouts:
            X, y, apps, times = load(path, rep, layout, args.per_class, 0)
            if args.split == "time" and times is None:
                raise SystemExit("--split time needs AllLayers rows (capture times)")
            times = times if args.split == "time" else None
            for model, variant in models:
                params = dict(common, **VARIANTS.get(variant, {}))
                cv_h = args.bandwidth_cv and model == "spectrum"
                rows, rows_cv = [], []
                folds = splits(X, y, args.folds, args.inner, times)
                for k, (tr, te) in enumerate(folds):
                    pred, fit_s = fit_predict(
                        model, params, X[tr], y[tr], X[te], k, bandwidth_cv=cv_h
                    )
                    apps_te = None if apps is None else apps[te]
                    if cv_h:
                        pred, pred_cv, h = pred
                        r = scores(y[te], pred_cv, apps_te)
                        rows_cv.append(dict(r, fit_s=fit_s, bandwidth=h))
                    rows.append(dict(scores(y[te], pred, apps_te), fit_s=fit_s))
                named = [(model, rows)]
                if cv_h:
                    named.append(("spec+cvh", rows_cv))
                for name, fold_rows in named:
                    s = summary(
                        [
                            {k: v for k, v in r.items() if k != "bandwidth"}
                            for r in fold_rows
                        ]
                    )
                    results.append(
                        {
                            "rep": rep,
                            "layout": layout,
                            "model": name,
                            "variant": variant,
                            "n_sessions": int(len(y)),
                            "folds": fold_rows,
                            "summary": s,
                        }
                    )
                    print(
                        f"{rep:9s} {layout:7s} {name:9s} {variant:15s} "
                        f"{fmt(s, 'acc')} {fmt(s, 'f1')} {fmt(s, 'acc_apps')} "
                        f"{fmt(s, 'f1_apps')} {s['fit_s']:.1f}",
                        flush=True,
                    )
                if args.out:
                    Path(args.out).write_text(json.dumps(results, indent=1))
    split = "inner 80/20 splits of the training folds" if args.inner else "test folds"
    if args.split == "time":
        split = f"each class's latest sessions ({split})"
    epochs = args.epochs or AMAESpectrumEmbedder().max_epochs
    print(
        f"{len(results)} rows, {args.folds} folds scored on {split}, "
        f"{args.per_class or 'all'} sessions per class at most, "
        f"{epochs} epochs; elapsed {time.perf_counter() - start:.0f} s",
        flush=True,
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
