"""Open set: sessions of classes left out of training, against ExtraTrees.

Protocol: ISCX VPN-nonVPN 2016 train split, AllLayers session rows through
``PcapSessionVectorizer(mask="safe")`` (USTC layout), at most
``--per-class`` sessions of each of the 12 classes (drawn with seed 0).
For each pair of classes left out (``--pairs``; default six pairs that
leave every class out once, among them the near pairs Chat/Email and
VPN-Chat/VPN-Email):

- the other 10 classes are split 80/20, stratified, seed 0;
- the spectrum (``AMAESpectrumEmbedder``, then
  ``FlowSpectrumClassifier(unknown_threshold="auto", unknown_rate=R)`` on
  the training spectra) and ``ExtraTreesClassifier(n_estimators=300)`` (on
  the same masked bytes) are trained on the 80%;
- the test set is the 20% of the known classes plus every session of the
  two left out (label "unknown").

Printed per pair, AUROC of telling unknown from known test sessions by
``FlowSpectrumClassifier.unknown_score`` with ``unknown_measure="density"``
(the default) and ``"distance"``, by the embedder's own softmax head
(``1 - max softmax``), and by ExtraTrees' ``1 - max predict_proba``; then,
at the threshold learned from the training spectra: share of known test
sessions rejected, share of unknown sessions rejected, per-session accuracy
of the accepted known test sessions, and the closed-set per-session
accuracy of the spectrum and of the trees on the known test sessions.  The
last line averages every column over the pairs.

The three unknown measures are shown side by side; the default
(``unknown_measure="distance"``) was chosen with ``--inner``, which never
touches the test sessions: within each pair's training part, one more known
class is left out and an inner 80/20 split is scored the same way.  The
rejection columns use ``--measure`` (default: the classifier's default).

CPU subset (7-15 minutes on 2 loaded cores; the tables below)::

    nice -n 10 python benchmarks/open_set.py --per-class 200 --epochs 3
    nice -n 10 python benchmarks/open_set.py --per-class 200 --epochs 3 --inner

Full data (all 35,501 AllLayers sessions; a GPU)::

    python benchmarks/open_set.py --per-class 0 --epochs 20 \\
        --batch-size 1024 --lr 4e-3 --precision bf16 --out open_set.json

RESULTS (2-core AMD EPYC CPU shared with other test runs, torch fp32,
2026-12-02; CPU subset above: 200 sessions per class, 3 epochs, batch 128,
lr 2e-3, variant default; per session; AllLayers, safe mask; 1,600
training and 400 known + 400 unknown test sessions per pair)
--------------------------------------------------------------------------
Test sessions (443 s in all).  AUROC, unknown against known test sessions
(dens, dist, post: the three unknown measures; head: 1 - max softmax of the
embedder; recon: its reconstruction error; ET: ExtraTrees' 1 - max
predict_proba)::

    left out                     dens     dist     post     head    recon       ET
    Chat + Email                0.419    0.702    0.728    0.574    0.298    0.655
    VPN-Chat + VPN-Email        0.719    0.779    0.447    0.574    0.589    0.810
    File + P2P                  0.185    0.422    0.822    0.172    0.444    0.700
    Streaming + VoIP            0.199    0.546    0.609    0.218    0.447    0.867
    VPN-File + VPN-Streaming    0.764    0.840    0.460    0.558    0.524    0.883
    VPN-P2P + VPN-VoIP          0.680    0.816    0.690    0.699    0.456    0.931
    mean                        0.495    0.684    0.626    0.466    0.460    0.808

At the threshold learned with unknown_rate=0.01 (distance): share of known
and of unknown test sessions rejected, accuracy on the accepted known ones;
closed-set accuracy of the spectrum and of ExtraTrees on the known ones::

    left out                   rej kn  rej unk  acc acc acc spec   acc ET    fit_s
    Chat + Email                0.010    0.005    0.725    0.723    0.925   69.620
    VPN-Chat + VPN-Email        0.010    0.065    0.525    0.522    0.838   24.408
    File + P2P                  0.010    0.085    0.528    0.532    0.858   23.772
    Streaming + VoIP            0.010    0.030    0.384    0.385    0.865   82.422
    VPN-File + VPN-Streaming    0.003    0.105    0.589    0.588    0.848  140.002
    VPN-P2P + VPN-VoIP          0.003    0.033    0.474    0.472    0.845   36.701
    mean                        0.008    0.054    0.537    0.537    0.863   62.821

Inner splits (``--inner``; one known class left out of each training
part; 680 s), mean over 6: AUC dens 0.490, AUC dist 0.590, AUC post 0.543,
AUC head 0.389, AUC recon 0.589, AUC ET 0.750.

Reading: the issue's target (AUROC at least 0.90 on average, above
ExtraTrees) is NOT met.  The project's score (nearest-line distance on the
one-number spectrum) averages 0.684 against ExtraTrees' 0.808 and beats it
on one pair of six (Chat + Email, 0.702 against 0.655).  At the threshold
learned with ``unknown_rate=0.01`` it rejects 0.8% of known test sessions
but only 5.4% of unknown ones.  Sessions of unseen classes land among the
known lines of a one-number spectrum; the embedder's softmax head and its
reconstruction error do worse (0.466 and 0.460 on average).
Three CPU epochs leave the network far from trained (closed-set 53.7%
against ExtraTrees' 86.3%), so these numbers say little about a fully
trained model: run the full command on a GPU.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from sklearn_flowspectrum import AMAESpectrumEmbedder, FlowSpectrumClassifier
from sklearn_flowspectrum.datasets import load_iscx_vpn2016

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_embedder import VARIANTS, default_data_path  # noqa: E402
from spectrum_vs_trees import load  # noqa: E402

# Left-out pairs (12-class labels: 0-5 non-VPN Chat, Email, File, P2P,
# Streaming, VoIP; 6-11 the same over VPN): every class once.
PAIRS = "0+1,6+7,2+3,4+5,8+10,9+11"
COLUMNS = (
    ("auc_density", "AUC dens"),
    ("auc_distance", "AUC dist"),
    ("auc_posterior", "AUC post"),
    ("auc_head", "AUC head"),
    ("auc_recon", "AUC recon"),
    ("auc_trees", "AUC ET"),
    ("rej_known", "rej known"),
    ("rej_unknown", "rej unkn"),
    ("acc_accepted", "acc accpt"),
    ("acc_spectrum", "acc spec"),
    ("acc_trees", "acc ET"),
)


def known_split(y, left_out):
    """Training and test indices of the known classes, and the unknown flags."""
    unknown = np.isin(y, left_out)
    known = np.flatnonzero(~unknown)
    tr, te = train_test_split(known, test_size=0.2, stratify=y[known], random_state=0)
    return tr, te, unknown


def one_pair(X, y, left_out, params, rate, seed, measure):
    """Scores of the spectrum and the trees with the classes ``left_out``
    unseen in training."""
    tr, te, unknown = known_split(y, left_out)
    test = np.concatenate([te, np.flatnonzero(unknown)])
    is_unknown = unknown[test]
    t0 = time.perf_counter()
    emb = AMAESpectrumEmbedder(random_state=seed, **params).fit(X[tr], y[tr])
    fit_s = time.perf_counter() - t0
    s_tr, s_te = emb.transform(X[tr]), emb.transform(X[test])
    out = {"fit_s": fit_s, "n_train": int(len(tr)), "n_test": int(len(test))}
    for m in ("density", "distance", "posterior"):
        clf = FlowSpectrumClassifier(
            unknown_threshold="auto", unknown_rate=rate, unknown_measure=m
        ).fit(s_tr, y[tr])
        out[f"auc_{m}"] = roc_auc_score(is_unknown, clf.unknown_score(s_te))
        if m == measure:
            pred = clf.predict(s_te)
            rejected = pred == clf._unknown_label()
            known_te = ~is_unknown
            out["threshold"] = clf.unknown_threshold_
            out["rej_known"] = float(rejected[known_te].mean())
            out["rej_unknown"] = float(rejected[is_unknown].mean())
            accepted = known_te & ~rejected
            out["acc_accepted"] = float(np.mean(pred[accepted] == y[test][accepted]))
            closed = clf.classes_[clf.predict_proba(s_te).argmax(1)]
            out["acc_spectrum"] = float(np.mean(closed[known_te] == y[te]))
    logits = emb.class_logits(X[test])
    soft = np.exp(logits - logits.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    out["auc_head"] = roc_auc_score(is_unknown, 1 - soft.max(1))
    error = (emb.reconstruct(X[test]) - X[test] / 255.0) ** 2
    out["auc_recon"] = roc_auc_score(is_unknown, error.mean(1))
    trees = ExtraTreesClassifier(n_estimators=300, n_jobs=-1, random_state=seed)
    proba = trees.fit(X[tr], y[tr]).predict_proba(X[test])
    out["auc_trees"] = roc_auc_score(is_unknown, 1 - proba.max(1))
    pred_trees = trees.classes_[proba.argmax(1)]
    out["acc_trees"] = float(np.mean(pred_trees[~is_unknown] == y[te]))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with NovpnSessionAllLayers/...")
    p.add_argument("--per-class", type=int, default=200, help="0: all sessions")
    p.add_argument("--pairs", default=PAIRS, help="left-out pairs, e.g. 0+1,6+7")
    p.add_argument("--variant", default="default", help=f"of {sorted(VARIANTS)}")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--device", default="auto")
    p.add_argument("--unknown-rate", type=float, default=0.01)
    p.add_argument(
        "--measure",
        default=FlowSpectrumClassifier().unknown_measure,
        help="unknown_measure of the rejection columns (default: the default)",
    )
    p.add_argument(
        "--inner",
        action="store_true",
        help="never touch the test sessions: within the training part of each "
        "pair, leave one more known class out and score an inner 80/20 split",
    )
    p.add_argument("--out", default=None, help="JSON file for all pair scores")
    args = p.parse_args(argv)

    path = args.data or os.environ.get("FLOWSPECTRUM_ISCX_PATH") or default_data_path()
    if path is None:
        sys.exit("ISCX data not found; pass --data or set FLOWSPECTRUM_ISCX_PATH")
    names = load_iscx_vpn2016(
        path, representation="alllayers", subset="session"
    ).target_names
    X, y, _, _ = load(path, "alllayers", "ustc", args.per_class, 0)
    params = dict(
        VARIANTS[args.variant],
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        precision=args.precision,
        device=args.device,
    )
    start = time.perf_counter()
    print(
        f"{'left out':26s} " + " ".join(f"{h:>9s}" for _, h in COLUMNS) + "  fit_s",
        flush=True,
    )
    rows = []
    for k, pair in enumerate(args.pairs.split(",")):
        left_out = [int(c) for c in pair.split("+")]
        Xp, yp = X, y
        if args.inner:
            tr = known_split(y, left_out)[0]
            Xp, yp = X[tr], y[tr]
            known = np.unique(yp)
            left_out = [int(known[k % len(known)])]
        r = one_pair(Xp, yp, left_out, params, args.unknown_rate, k, args.measure)
        r["left_out"] = [str(names[c]) for c in left_out]
        rows.append(r)
        print(
            f"{' + '.join(r['left_out']):26s} "
            + " ".join(f"{r[c]:9.3f}" for c, _ in COLUMNS)
            + f"  {r['fit_s']:5.0f}",
            flush=True,
        )
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1))
    print(
        f"{'mean':26s} "
        + " ".join(f"{np.mean([r[c] for r in rows]):9.3f}" for c, _ in COLUMNS),
        flush=True,
    )
    print(
        f"{len(rows)} {'inner splits' if args.inner else 'pairs'}; "
        f"rejection by {args.measure}; "
        f"AllLayers, mask='safe', {args.per_class or 'all'} "
        f"sessions per class at most, known classes split 80/20 (seed 0), "
        f"{args.epochs} epochs, variant {args.variant}, unknown_rate "
        f"{args.unknown_rate}; elapsed {time.perf_counter() - start:.0f} s",
        flush=True,
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
