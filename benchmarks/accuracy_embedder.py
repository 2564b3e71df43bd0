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

    python benchmarks/accuracy_embedder.py --subset 0.03 --epochs 1 --folds 2

RESULTS (one NVIDIA H100 80GB HBM3, torch 2.11, bf16; 2026-11-27)
-----------------------------------------------------------------
Per-session accuracy, 12 classes, stratified 5-fold CV (mean +- std over
folds; 35,501 AllLayers and 29,193 L7 sessions):

==========  ===========  ==================================  ===========  ==========
rep.        masking      1-D classifier on d(A)              run 1        run 2
==========  ===========  ==================================  ===========  ==========
AllLayers   safe, every  FlowSpectrumClassifier (h=0.1)      79.1 +-0.5   81.7 +-0.3
AllLayers   packet       Gaussian head of the embedder       75.6 +-0.4   80.0 +-1.4
AllLayers                (aux multi-dim head, not 1-D)       76.6         80.2
L7          none needed  FlowSpectrumClassifier (h=0.1)      79.8 +-0.6   84.3 +-0.6
L7                       Gaussian head of the embedder       80.0 +-0.7   84.2 +-0.6
L7                       (aux multi-dim head, not 1-D)       80.2         84.6
==========  ===========  ==================================  ===========  ==========

Same folds, ExtraTreesClassifier(200) on the same bytes (CPU): 88.2 +-0.2
(masked AllLayers), 86.1 +-0.5 (L7).  The targets of issue 3 (95% / 90%)
are NOT reached.

- run 1: ``bash benchmarks/gpu_run.sh`` (sweep at 20 epochs, batch 256,
  lr 2e-3; CV with the selected ``softmax_emb`` for 10 epochs, all the
  budget left).  Sweep, inner validation (22,720 / 5,680 sessions of fold
  0's training part, masked AllLayers), FlowSpectrumClassifier accuracy:
  paper 76.3, softmax_mapper 78.4, byte_emb 78.3, softmax_emb 80.7,
  wide_emb 79.0 (no_attention, straight, light_recon: not reached).
- run 2: ``TOTAL=300 ACC_BUDGET=235 SKIP_BENCH=1 PYTEST_K=cuda
  ACC_ARGS="--sweep --sweep-epochs 50 --variants softmax_emb,softmax_emb_wide
  --batch-size 1024 --lr 4e-3" bash benchmarks/gpu_run.sh``.  Sweep:
  softmax_emb 80.4, softmax_emb_wide (then "default", now "conv2d") 81.2;
  CV with it for 46 epochs.

Both runs used the safe mask of that morning, before ``dns.id`` (the
DNS/LLMNR transaction ID) joined it.

Reading: the 1-D spectrum loses nothing against the network's own
multi-dimensional head (81.7 vs 80.2 on AllLayers), so the squeeze to one
number is solved by the softmax mapper; what limits accuracy is the
network's discriminative power at this training length: training accuracy
is only 84% (AllLayers; 93% L7), still rising with epochs (run 1 -> run 2:
+2.6 / +4.4 points).

Later finding (CPU, 2026-11-27 afternoon; ``benchmarks/iscx_name_lookups.py
--mlp``): most of that gap is the data, not the network.  8,979 of the
35,501 sessions (25.3%) are LLMNR lookups of "wpad" from the Chat and Email
captures whose masked bytes differ only in the transaction ID; a smooth
model (MLP on the bytes, 8,000 random sessions) fits them at 56% on its own
TRAINING data, and they hold 75% of its training errors.  ExtraTrees
separates them 79.0% of the time only by memorising the ID, which links the
sibling sessions of one lookup across a random split (58.3% with the ID
blanked; chance 50.4%).  The honest ceiling of this per-session score is
therefore near 100 - 25.3 x 0.42 = 89.4%, whatever the model: the 95%
target cannot be met on these data without a leak.  The safe mask now
blanks the ID (``dns.id``).

CPU check with that mask (2-core AMD EPYC, 2026-11-27; a 20% stratified
subset, 7,100 sessions, 3-fold stratified CV, ``default`` variant of then
(now ``conv2d``), 12 epochs,
batch 64; ``--subset 0.2 --folds 3 --epochs 12 --batch-size 64 --reps
alllayers``): spectrum through FlowSpectrumClassifier 76.5 +- 0.6 per
session, 65.2 +- 1.5 on the application sessions (the 16.6% that are not
DNS/LLMNR/... background), aux multi-dim head 77.0; ExtraTrees(200) on the
same folds 80.4 +- 0.5, 80.0 +- 0.6 on application sessions.  The
embedder's remaining gap is on the application sessions, the minority of
its training data.  Trained and tested on the 5,993 application sessions
alone (3-fold, same settings; a /tmp script feeding this file's
``evaluate``): spectrum 80.4 +- 1.2, aux head 84.3 +- 0.9, training
accuracy 95.6; ExtraTrees(200) 87.4 +- 0.7.  There the one-number squeeze
costs about 4 points against the multi-dimensional head.
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
    AMAEModule,
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
)
from sklearn_flowspectrum.datasets import load_iscx_vpn2016
from sklearn_flowspectrum.evaluation import background_sessions, ustc_session_table

# Training variants of the sweep, in priority order, spelt out in full so
# that their meaning does not move with the embedder's defaults.  "paper" is
# the paper-shaped network (Table 1's 2-D convolutions, one-channel input,
# MLP mapper to d(A), Gaussian head, auxiliary head, the loss weights of the
# first releases, classes in label order); "conv2d" is the embedder's default
# of the H100 study below (the 2-D network with the softmax mapper, byte
# embeddings and the wide mapper); "default" is whatever the embedder's
# defaults are now (the 1-D network); "straight" is the straightforward
# version of issue 3 (linear head on d(A), cross-entropy + MSE, constant lr).
PAPER = {
    "module": AMAEModule,
    "module__mapper": "mlp",
    "module__byte_embedding": 0,
    "module__mapper_hidden": (256, 64),
    "criterion__classification_weight": 1.0,
    "criterion__aux_weight": 0.5,
    "class_order": "labels",
}
CONV2D = dict(
    PAPER,
    module__mapper="softmax",
    module__byte_embedding=8,
    module__mapper_hidden=(1024, 256),
)
VARIANTS = {
    "paper": dict(PAPER),
    "softmax_mapper": dict(PAPER, module__mapper="softmax"),
    "byte_emb": dict(PAPER, module__byte_embedding=8),
    "softmax_emb": dict(PAPER, module__mapper="softmax", module__byte_embedding=8),
    "conv2d": CONV2D,
    "default": {},
    "wide_emb": dict(
        PAPER,
        module__byte_embedding=8,
        module__mapper_hidden=(1024, 256),
        module__dropout=0.3,
    ),
    "no_attention": dict(PAPER, attention=False),
    "straight": dict(
        PAPER, module__head="linear", module__aux_head=False, lr_schedule="constant"
    ),
    "light_recon": dict(
        PAPER,
        criterion__reconstruction_weight=0.1,
        criterion__label_smoothing=0.05,
    ),
}
# Names used in the H100 runs of 2026-11-27 (see RESULTS): "base" was
# "paper" and "softmax_emb_wide" was the default of then, "conv2d".
VARIANTS["base"] = VARIANTS["paper"]
VARIANTS["softmax_emb_wide"] = CONV2D


def default_data_path():
    here = Path(__file__).resolve().parents[1]
    for cand in (here / ".devdata", here.parent / "shared" / "data" / "iscx-vpn2016"):
        if (cand / "NovpnSessionAllLayers").is_dir():
            return cand
    return None


def load(path, representation, subset, seed):
    """Rows, labels and background flags (AllLayers; None for L7).

    The flags mark UDP name-service/discovery sessions (DNS, LLMNR, ...),
    read from the headers before masking; accuracy on the other sessions is
    reported beside the overall one.
    """
    X, y = load_iscx_vpn2016(
        path, representation=representation, subset="session", return_X_y=True
    )
    background = None
    if representation == "alllayers":
        background = background_sessions(ustc_session_table(X))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X = PcapSessionVectorizer(mask="safe", scale=False).fit_transform(X)
    X = np.ascontiguousarray(X, dtype=np.uint8)
    y = np.asarray(y)
    if subset < 1.0:
        flags = np.zeros(len(y), bool) if background is None else background
        X, _, y, _, flags, _ = train_test_split(
            X, y, flags, train_size=subset, stratify=y, random_state=seed
        )
        background = None if background is None else flags
    return X, y, background


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


def evaluate(common, variant, Xtr, ytr, Xte, yte, seed, background_te=None):
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
    hit = fsc.predict(s_te) == yte
    acc_fs = float(np.mean(hit))
    apps = None if background_te is None else ~background_te
    head = emb.classes_[emb.class_logits(Xte).argmax(1)]
    return {
        "variant": variant,
        "acc_spectrum_fsc": acc_fs,
        # Sessions that are not DNS/LLMNR/NetBIOS/... background (AllLayers).
        "acc_spectrum_fsc_apps": (
            float(np.mean(hit[apps])) if apps is not None and apps.any() else None
        ),
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
    p.add_argument(
        "--variants",
        default="paper,softmax_mapper,byte_emb,softmax_emb,default,no_attention,straight",
    )
    p.add_argument("--variant", default="default", help="CV variant without --sweep")
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
    for rep, (X, y, _) in data.items():
        print(f"{rep}: {X.shape[0]} sessions, {len(np.unique(y))} classes", flush=True)

    variant = args.variant
    speed = None
    if args.sweep:
        # Inner split of fold 0's training part; its test part stays unseen.
        rep = reps[0]
        X, y, _ = data[rep]
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
        X, y, background = data[rep]
        folds = []
        for k, (tr, te) in enumerate(skf.split(X, y)):
            bg_te = None if background is None else background[te]
            r = evaluate(
                common_cv,
                variant,
                X[tr],
                y[tr],
                X[te],
                y[te],
                seed=k,
                background_te=bg_te,
            )
            r["fold"] = k
            folds.append(r)
            print(rep, json.dumps(r), flush=True)
            report["cv"][rep] = folds
            save()
        for key in (
            "acc_spectrum_fsc",
            "acc_spectrum_fsc_apps",
            "acc_spectrum_head",
            "acc_aux_multidim",
        ):
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
