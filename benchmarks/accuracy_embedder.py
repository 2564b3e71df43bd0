"""Per-session accuracy of the one-number FlowSpectrum on ISCX VPN-nonVPN 2016.

12 classes (non-VPN Chat..VoIP = 0..5, VPN = 6..11), session images of the
shared training data, two representations:

- ``alllayers``: USTC-TK2016 AllLayers rows with the leaky fields
  (timestamps, MAC/IP addresses, ports, IP ID, checksums) blanked in every
  packet by ``PcapSessionVectorizer(mask="safe")``;
- ``l7``: the TCP/UDP payload rows (nothing to mask).

Protocol: stratified 5-fold cross-validation (shuffled, seed 0).  In each
fold the embedder is fitted on the training part only; the spectrum ``d(A)``
of the test part is classified by ``FlowSpectrumClassifier`` fitted on the
training spectra (the paper's 1-D Bayesian decision, bandwidth 0.1), and by
the embedder's own Gaussian head on ``d(A)`` (also 1-D).  For diagnosis we
also report the auxiliary multi-dimensional head (NOT a spectrum result).

Before the CV, an optional sweep (``--sweep``) compares training variants on
an inner split of fold 0's training part (its test part is never used) and
the CV then runs the variant with the best inner 1-D accuracy.  A time budget
(``--budget`` seconds) sizes the number of CV epochs from the measured
training speed.

Run (GPU, full data)::

    python benchmarks/accuracy_embedder.py --sweep --budget 300 --out acc.json

Quick check on a CPU (tiny subset, one epoch)::

    python benchmarks/accuracy_embedder.py --subset 0.02 --epochs 1 --folds 2
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split

from sklearn_flowspectrum import (
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
)
from sklearn_flowspectrum.datasets import load_iscx_vpn2016

# Training variants of the sweep, in priority order.  "base" is the
# embedder's default network; "straight" is the straightforward version of
# issue 3 (linear head on d(A), cross-entropy + MSE, constant lr, no
# auxiliary head).
VARIANTS = {
    "base": {},
    "softmax_mapper": {"module__mapper": "softmax"},
    "byte_emb": {"module__byte_embedding": 8},
    "softmax_emb": {"module__mapper": "softmax", "module__byte_embedding": 8},
    "softmax_emb_wide": {
        "module__mapper": "softmax",
        "module__byte_embedding": 8,
        "module__mapper_hidden": (1024, 256),
    },
    "wide_emb": {
        "module__byte_embedding": 8,
        "module__mapper_hidden": (1024, 256),
        "module__dropout": 0.3,
    },
    "no_attention": {"attention": False},
    "straight": {
        "module__head": "linear",
        "module__aux_head": False,
        "lr_schedule": "constant",
    },
    "light_recon": {
        "criterion__reconstruction_weight": 0.1,
        "criterion__label_smoothing": 0.05,
    },
}


def default_data_path():
    here = Path(__file__).resolve().parents[1]
    for cand in (here / ".devdata", here.parent / "shared" / "data" / "iscx-vpn2016"):
        if (cand / "NovpnSessionAllLayers").is_dir():
            return cand
    return None


def load(path, representation, subset, seed):
    X, y = load_iscx_vpn2016(
        path, representation=representation, subset="session", return_X_y=True
    )
    if representation == "alllayers":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X = PcapSessionVectorizer(mask="safe", scale=False).fit_transform(X)
    X = np.ascontiguousarray(X, dtype=np.uint8)
    y = np.asarray(y)
    if subset < 1.0:
        X, _, y, _ = train_test_split(
            X, y, train_size=subset, stratify=y, random_state=seed
        )
    return X, y


def aux_accuracy(emb, X, y):
    """Accuracy of the auxiliary multi-dimensional head (diagnosis only)."""
    module = emb._plain_module()
    if getattr(module, "aux", None) is None:
        return None
    module.eval()
    device = torch.device(emb.device)
    preds = []
    with torch.no_grad(), emb._autocast():
        for start in range(0, len(X), 8192):
            xb = emb._as_float(emb._to_images(X[start : start + 8192], device))
            preds.append(module(xb)[4].float().argmax(1).cpu())
    pred = emb.classes_[torch.cat(preds).numpy()]
    return float(np.mean(pred == y))


def evaluate(common, variant, Xtr, ytr, Xte, yte, seed):
    params = dict(common)
    params.update(VARIANTS[variant])
    emb = AMAESpectrumEmbedder(random_state=seed, **params)
    t0 = time.perf_counter()
    emb.fit(Xtr, ytr)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    fit_s = time.perf_counter() - t0
    s_tr = emb.transform(Xtr)
    s_te = emb.transform(Xte)
    fsc = FlowSpectrumClassifier().fit(s_tr, ytr)
    acc_fs = float(np.mean(fsc.predict(s_te) == yte))
    head = emb.classes_[emb.class_logits(Xte).argmax(1)]
    return {
        "variant": variant,
        "acc_spectrum_fsc": acc_fs,
        "acc_spectrum_head": float(np.mean(head == yte)),
        "acc_aux_multidim": aux_accuracy(emb, Xte, yte),
        "train_acc_spectrum_head": float(
            np.mean(emb.classes_[emb.class_logits(Xtr).argmax(1)] == ytr)
        ),
        "fit_s": round(fit_s, 2),
        "epochs": params["max_epochs"],
        "samples_per_s": round(len(Xtr) * params["max_epochs"] / fit_s, 1),
        "n_train": int(len(Xtr)),
        "n_test": int(len(Xte)),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="folder with NovpnSessionAllLayers/...")
    p.add_argument("--reps", default="alllayers,l7")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--subset", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=None, help="fixed CV epochs")
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--sweep-epochs", type=int, default=30)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--variant", default="base", help="CV variant without --sweep")
    p.add_argument("--budget", type=float, default=600.0, help="seconds, whole run")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    start = time.perf_counter()
    path = args.data or default_data_path()
    if path is None:
        sys.exit("ISCX data not found; pass --data")
    cuda = torch.cuda.is_available()
    common = {
        "lr": args.lr,
        "batch_size": args.batch_size,
        "precision": "bf16" if cuda else "fp32",
        "max_epochs": args.sweep_epochs if args.epochs is None else args.epochs,
    }
    report = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "args": vars(args),
        "common": dict(common),
        "sweep": [],
        "cv": {},
    }

    def save():
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=1, default=str))

    reps = args.reps.split(",")
    data = {rep: load(path, rep, args.subset, 0) for rep in reps}
    for rep, (X, y) in data.items():
        print(f"{rep}: {X.shape[0]} sessions, {len(np.unique(y))} classes", flush=True)

    variant = args.variant
    speed = None
    if args.sweep:
        # Inner split of fold 0's training part; its test part stays unseen.
        rep = reps[0]
        X, y = data[rep]
        tr, _ = next(
            StratifiedKFold(args.folds, shuffle=True, random_state=0).split(X, y)
        )
        Xa, Xb, ya, yb = train_test_split(
            X[tr], y[tr], test_size=0.2, stratify=y[tr], random_state=1
        )
        common_sweep = dict(common, max_epochs=args.sweep_epochs)
        for name in args.variants.split(","):
            if time.perf_counter() - start > 0.45 * args.budget:
                print(f"sweep: budget reached, skipping {name}", flush=True)
                continue
            r = evaluate(common_sweep, name, Xa, ya, Xb, yb, seed=0)
            r["representation"] = rep
            report["sweep"].append(r)
            print("sweep", json.dumps(r), flush=True)
            save()
        best = max(report["sweep"], key=lambda r: r["acc_spectrum_fsc"])
        variant = best["variant"]
        speed = best["samples_per_s"]
        report["selected_variant"] = variant
        print(f"selected variant: {variant}", flush=True)

    epochs = args.epochs
    if epochs is None:
        remaining = args.budget - (time.perf_counter() - start)
        n_fit = sum(len(data[r][0]) * (args.folds - 1) / args.folds for r in reps)
        n_fit *= args.folds
        if speed is None:
            speed = 1000.0
        # 80% of what is left, leaving room for transforms and the classifier.
        epochs = int(np.clip(0.8 * remaining * speed / n_fit, 5, 100))
    report["cv_epochs"] = epochs
    print(f"CV: variant {variant}, {epochs} epochs", flush=True)
    common_cv = dict(common, max_epochs=epochs)

    skf = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    for rep in reps:
        X, y = data[rep]
        folds = []
        for k, (tr, te) in enumerate(skf.split(X, y)):
            r = evaluate(common_cv, variant, X[tr], y[tr], X[te], y[te], seed=k)
            r["fold"] = k
            folds.append(r)
            print(rep, json.dumps(r), flush=True)
            report["cv"][rep] = folds
            save()
        for key in ("acc_spectrum_fsc", "acc_spectrum_head", "acc_aux_multidim"):
            vals = [f[key] for f in folds if f[key] is not None]
            if vals:
                print(
                    f"{rep:10s} {key:20s} mean {np.mean(vals):.4f} "
                    f"+- {np.std(vals):.4f} over {len(vals)} folds",
                    flush=True,
                )
    report["elapsed_s"] = round(time.perf_counter() - start, 1)
    save()
    print(f"elapsed {report['elapsed_s']} s", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
