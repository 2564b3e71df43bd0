"""Reproduce Tables 2 and 3 of the AMAE paper (Cui et al., Symmetry 2024).

Table 2: non-VPN 6 classes; Table 3: VPN 6 classes, both on the ISCX
VPN-nonVPN 2016 session images published with USTC-TK2016 (the TRAIN files in
``../shared/data/iscx-vpn2016``).  The paper's protocol: a 4:1 train/test
split, the training part split 3:1 into training and validation data, and
the mean (and spread) over repeated runs.  Models:

- ``amae``: AMAESpectrumEmbedder (attention) + FlowSpectrumClassifier
- ``ae``: the same with ``attention=False`` (the paper's "AE")
- ``semi-ae``: a semi-supervised conv autoencoder without attention in the
  style of Semi-2DCAE (Yang et al.): a linear map from the code to ``d(A)``
  and a plain linear softmax head on it, no deep supervision; then the
  FlowSpectrum classifier
- ``cnn1d``: the 1D-CNN of Wang et al. (ISI 2017): Conv1d(32, 25) - pool 3 -
  Conv1d(64, 25) - pool 3 - FC 1024 - dropout - softmax on the 784 bytes
- ``extratrees``: ExtraTreesClassifier on the raw bytes (a strong baseline
  the paper does not have)

Each on three representations: ``unmasked`` AllLayers (the paper's setting:
the published rows as they are, pcap timestamps, addresses and ports
included), ``masked`` AllLayers (PcapSessionVectorizer ``mask="safe"``:
timestamps, MAC/IP addresses, ports, IP ID, checksums and DNS transaction IDs
blanked in every packet) and ``l7`` (the published SessionL7 payload images).
Scores: per-session accuracy and macro precision/recall/F1 on the test part,
and group-of-10 accuracy (the authors' protocol: groups of 10 same-class test
sessions drawn with replacement, decided together).

Validation: every model is trained on the 3/4 training part only; the 1/4
validation part is scored after training and reported ("val acc") -- it is
not used for model selection, so it is a second held-out estimate.

Writes a Markdown report (default ``docs/reproduction.md``) with the date,
hardware and settings.  Sizes: ``--epochs``, ``--repeats``,
``--max-per-class``, ``--device``; ``--smoke`` shrinks everything to a CPU
check of the plumbing (its numbers are NOT results and are labelled so).

Run::

    python benchmarks/reproduce_paper.py --epochs 30 --repeats 3 \\
        --max-per-class 2000 --device cuda           # a few minutes on one GPU
    python benchmarks/reproduce_paper.py --smoke      # CPU plumbing check
"""

import argparse
import datetime
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from skorch import NeuralNetClassifier
from torch import nn

from sklearn_flowspectrum import (
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
)
from sklearn_flowspectrum._nn import AMAEModule
from sklearn_flowspectrum.datasets import load_iscx_vpn2016
from sklearn_flowspectrum.evaluation import (
    background_sessions,
    evaluation_report,
    markdown_table,
    ustc_session_table,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "iscx-vpn2016"

MODELS = ("amae", "ae", "semi-ae", "cnn1d", "extratrees")
MODEL_NAMES = {
    "amae": "AMAE",
    "ae": "AE",
    "semi-ae": "Semi-AE",
    "cnn1d": "1D-CNN",
    "extratrees": "ExtraTrees",
}
REPRESENTATIONS = ("unmasked", "masked", "l7")
REPR_TEXT = {
    "unmasked": ("SessionAllLayers", "none (paper)"),
    "masked": ("SessionAllLayers", "safe"),
    "l7": ("SessionL7", "none (payload only)"),
}
DATASETS = {
    "nonvpn": ("novpn", "Table 2: non-VPN, 6 classes"),
    "vpn": ("vpn", "Table 3: VPN, 6 classes"),
}
# Per-session accuracy as published (Tables 2 and 3; the paper does not say
# whether these are per-session or group scores; "SAAE" in Table 2 is AMAE).
PAPER_ACCURACY = {
    "nonvpn": {"cnn1d": 76.1, "semi-ae": 81.4, "ae": 97.3, "amae": 99.9},
    "vpn": {"cnn1d": 91.4, "semi-ae": 91.2, "ae": 98.5, "amae": 99.7},
}


# AMAEModule parameters that give the paper-shaped network (Table 1 plus a
# plain MLP mapper to d(A)); see the AMAEModule docstring.
PAPER_NETWORK = {
    "module__mapper": "mlp",
    "module__byte_embedding": 0,
    "module__mapper_hidden": (256, 64),
}


class SemiAEModule(AMAEModule):
    """The Semi-AE baseline: AMAE's autoencoder without attention, Semi-2DCAE style.

    A linear map from the code to ``d(A)`` (no hidden mapper layers), a plain
    ``Linear(1, n_classes)`` softmax head on it and no auxiliary head, trained
    with reconstruction + cross-entropy like the authors' Semi-2DCAE.
    """

    def __init__(self, side=28, n_classes=0, attention=False, **kwargs):
        kwargs.update(
            head="linear",
            aux_head=False,
            mapper_hidden=(),
            mapper="mlp",
            byte_embedding=0,
        )
        super().__init__(side=side, n_classes=n_classes, attention=False, **kwargs)


class Wang1DCNN(nn.Module):
    """The 1D-CNN of Wang et al. (ISI 2017) on 784 bytes.

    Conv1d(1->32, 25, same) - ReLU - MaxPool(3) - Conv1d(32->64, 25, same) -
    ReLU - MaxPool(3) - Linear(1024) - ReLU - Dropout(0.5) - Linear(classes),
    as in their TensorFlow code (SAME padding: 784 -> 262 -> 88 positions).
    """

    def __init__(self, n_classes=6, n_bytes=784):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 32, 25, padding=12),
            nn.ReLU(),
            nn.MaxPool1d(3, ceil_mode=True),
            nn.Conv1d(32, 64, 25, padding=12),
            nn.ReLU(),
            nn.MaxPool1d(3, ceil_mode=True),
        )
        length = math.ceil(math.ceil(n_bytes / 3) / 3)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * length, 1024),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(1024, n_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x.float().unsqueeze(1)))


def _device(name):
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def make_model(name, args, seed, n_classes):
    device = _device(args.device)
    emb_kw = dict(
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        device=device,
        random_state=seed,
        precision=args.precision,
    )
    if args.network == "paper" and name in ("amae", "ae"):
        # The package's default network adds byte embeddings and a wider,
        # softmax-placed mapper; the reproduction uses the paper's shape.
        emb_kw.update(PAPER_NETWORK)
    clf = FlowSpectrumClassifier(bandwidth=args.bandwidth)
    if name == "amae":
        return make_pipeline(AMAESpectrumEmbedder(attention=True, **emb_kw), clf)
    if name == "ae":
        return make_pipeline(AMAESpectrumEmbedder(attention=False, **emb_kw), clf)
    if name == "semi-ae":
        emb = AMAESpectrumEmbedder(SemiAEModule, attention=False, **emb_kw)
        return make_pipeline(emb, clf)
    if name == "cnn1d":
        torch.manual_seed(seed)
        return NeuralNetClassifier(
            Wang1DCNN,
            module__n_classes=n_classes,
            criterion=nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            lr=args.cnn_lr,
            batch_size=args.batch_size,
            max_epochs=args.epochs,
            train_split=None,
            device=device,
            verbose=0,
        )
    if name == "extratrees":
        return ExtraTreesClassifier(
            n_estimators=args.trees, n_jobs=-1, random_state=seed
        )
    raise ValueError(f"unknown model {name!r}")


def load(dataset, representation, data, max_per_class, rng):
    """uint8 rows, int labels, class names and background flags.

    The flags mark UDP name-service and discovery sessions (DNS, LLMNR,
    NetBIOS, ...; :func:`background_sessions`), read from the headers of the
    AllLayers rows before masking; L7 rows have no headers (None).
    """
    vpn, _ = DATASETS[dataset]
    rep = "l7" if representation == "l7" else "alllayers"
    bunch = load_iscx_vpn2016(data, representation=rep, vpn=vpn)
    X, y = bunch.data, bunch.target
    if max_per_class:
        keep = np.concatenate(
            [
                rng.choice(idx, min(max_per_class, idx.size), replace=False)
                for idx in (np.flatnonzero(y == c) for c in np.unique(y))
            ]
        )
        X, y = X[np.sort(keep)], y[np.sort(keep)]
    background = None
    if representation != "l7":
        background = background_sessions(ustc_session_table(X))
    if representation == "masked":
        X = PcapSessionVectorizer(
            layout="ustc", mask="safe", scale=False
        ).fit_transform(X)
    names = [str(n).removeprefix("VPN-") for n in bunch.target_names]
    return np.ascontiguousarray(X), y, names, background


def _inputs(name, X):
    # Trees and the CNN take scaled floats; the embedder takes the uint8 bytes.
    if name in ("cnn1d", "extratrees"):
        return X.astype(np.float32) / 255.0
    return X


def run(args, t_start):
    records, timings = [], []
    # Representation outermost: the paper's setting (unmasked) for both tables
    # comes first, so a run cut short still has it.
    for representation in args.representations:
        for dataset in args.datasets:
            rng = np.random.default_rng(0)
            X, y, names, background = load(
                dataset, representation, args.data, args.max_per_class, rng
            )
            counts = np.bincount(y, minlength=len(names))
            share = (
                "" if background is None else f"; {background.mean():.0%} background"
            )
            print(
                f"\n== {dataset} / {representation}: {len(y)} sessions "
                f"({', '.join(f'{n} {c}' for n, c in zip(names, counts))}){share}",
                flush=True,
            )
            flags = np.zeros(len(y), bool) if background is None else background
            for repeat in range(args.repeats):
                seed = 1000 * repeat + 7
                # Same seed and stratification as without the flags: the
                # split of X and y does not change.
                X_tr, X_te, y_tr, y_te, _, bg_te = train_test_split(
                    X, y, flags, test_size=0.2, stratify=y, random_state=seed
                )
                X_fit, X_val, y_fit, y_val = train_test_split(
                    X_tr, y_tr, test_size=0.25, stratify=y_tr, random_state=seed
                )
                for name in args.models:
                    model = make_model(name, args, seed, len(names))
                    t0 = time.perf_counter()
                    model.fit(_inputs(name, X_fit), y_fit.astype(np.int64))
                    fit_s = time.perf_counter() - t0
                    Xt = _inputs(name, X_te)
                    pred = model.predict(Xt)
                    val_acc = float(
                        np.mean(model.predict(_inputs(name, X_val)) == y_val)
                    )
                    # Per-session accuracy on the application sessions only
                    # (NaN for L7 rows, whose headers are gone).
                    apps = ~bg_te
                    app_acc = (
                        float(np.mean(pred[apps] == y_te[apps]))
                        if background is not None and apps.any()
                        else float("nan")
                    )
                    rep = evaluation_report(
                        y_te,
                        pred,
                        estimator=model,
                        X=Xt,
                        k=args.k,
                        n_groups_per_class=args.groups_per_class,
                        random_state=seed,
                        representation=REPR_TEXT[representation][0],
                        masking=REPR_TEXT[representation][1],
                        split="random stratified 4:1, train 3:1 train/val",
                        protocol=f"repeat {repeat}",
                    )
                    frame = rep.to_frame()
                    frame["dataset"] = dataset
                    frame["model"] = name
                    frame["representation_key"] = representation
                    frame["repeat"] = repeat
                    records.append(frame)
                    timings.append(
                        dict(
                            dataset=dataset,
                            model=name,
                            representation_key=representation,
                            repeat=repeat,
                            fit_s=fit_s,
                            val_acc=val_acc,
                            app_acc=app_acc,
                            app_share=float(np.mean(~bg_te)),
                            n_fit=len(y_fit),
                            n_test=len(y_te),
                        )
                    )
                    print(
                        f"  {MODEL_NAMES[name]:11s} repeat {repeat}: per-session acc "
                        f"{rep.accuracy:.3f}  macro F1 {rep.f1:.3f}  "
                        f"group-of-{args.k} {rep.group_accuracy:.3f}  "
                        f"apps {app_acc:.3f}  val acc {val_acc:.3f}  fit {fit_s:.1f} s",
                        flush=True,
                    )
            # Rewrite the report after every block, so an interrupted run
            # still leaves every finished number on disk.
            write_report(
                pd.concat(records, ignore_index=True),
                pd.DataFrame(timings),
                args,
                time.perf_counter() - t_start,
                partial=True,
            )
    return pd.concat(records, ignore_index=True), pd.DataFrame(timings)


def _mean_std(values, scale=100.0):
    values = np.asarray(values, dtype=float) * scale
    if values.size == 0:
        return ""
    if values.size == 1:
        return f"{values[0]:.1f}"
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def summarise(frame, timings, dataset, args):
    rows = []
    sub = frame[frame["dataset"] == dataset]
    for representation in args.representations:
        for name in args.models:
            m = sub[
                (sub["model"] == name) & (sub["representation_key"] == representation)
            ]
            t = timings[
                (timings["dataset"] == dataset)
                & (timings["model"] == name)
                & (timings["representation_key"] == representation)
            ]
            if t.empty:
                continue

            def pick(scope, cls, metric, m=m):
                sel = m[
                    (m["scope"] == scope)
                    & (m["class"] == cls)
                    & (m["metric"] == metric)
                ]
                return sel.sort_values("repeat")["value"].to_numpy()

            paper = (
                PAPER_ACCURACY[dataset].get(name)
                if representation == "unmasked"
                else None
            )
            rows.append(
                {
                    "model": MODEL_NAMES[name],
                    "representation": representation,
                    "accuracy %": _mean_std(pick("per-session", "all", "accuracy")),
                    "precision %": _mean_std(pick("per-session", "macro", "precision")),
                    "recall %": _mean_std(pick("per-session", "macro", "recall")),
                    "F1 %": _mean_std(pick("per-session", "macro", "f1")),
                    f"group-of-{args.k} acc %": _mean_std(
                        pick(f"group-of-{args.k}", "all", "accuracy")
                    ),
                    "apps acc %": _mean_std(
                        t.sort_values("repeat")["app_acc"].dropna()
                    ),
                    "val acc %": _mean_std(t.sort_values("repeat")["val_acc"]),
                    "fit s": f"{np.median(t['fit_s']):.1f}",
                    "paper acc %": "" if paper is None else f"{paper}",
                }
            )
    return pd.DataFrame(rows)


def hardware():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    text = f"CPU: {cpu}, {os.cpu_count()} logical cores"
    if torch.cuda.is_available():
        text += f"; GPU: {torch.cuda.get_device_name(0)}"
    else:
        text += "; no GPU"
    return text


def code_version():
    """The git commit of the code that ran (or the COMMIT file of a snapshot)."""
    stamp = ROOT / "COMMIT"
    if stamp.is_file():
        return stamp.read_text().strip()
    try:
        import subprocess

        def git(*cmd):
            return subprocess.run(
                ["git", "-C", str(ROOT), *cmd],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()

        dirty = git("status", "--porcelain", "--", "sklearn_flowspectrum", "benchmarks")
        return git("rev-parse", "--short", "HEAD") + (
            " + local changes" if dirty else ""
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _app_share_text(timings):
    parts = []
    for dataset in DATASETS:
        t = timings[
            (timings["dataset"] == dataset) & (timings["representation_key"] != "l7")
        ]
        if len(t):
            parts.append(f"{dataset} {t['app_share'].mean():.0%}")
    return f" (their share of the test sessions: {', '.join(parts)})" if parts else ""


def write_report(frame, timings, args, elapsed, partial=False):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = []
    if args.smoke:
        lines += [
            "# SMOKE RUN -- plumbing check on tiny data, NOT results",
            "",
            "> Produced with `--smoke`: a handful of sessions per class and one or two",
            "> epochs.  The numbers below only show that every model, representation",
            "> and score runs end to end; they say nothing about the methods.",
            "",
        ]
    else:
        lines += ["# Reproduction of the AMAE paper's Tables 2 and 3", ""]
    if partial:
        lines += ["**PARTIAL: the run is still going (or was interrupted).**", ""]
    settings = []
    if {"amae", "ae", "semi-ae"} & set(args.models):
        settings.append(
            f"- embedders (AMAE, AE, Semi-AE): {args.epochs} epochs, batch "
            f"{args.batch_size}, lr {args.lr}, precision {args.precision}, "
            f"{args.network} network; "
            f"FlowSpectrumClassifier bandwidth {args.bandwidth}"
        )
    if "cnn1d" in args.models:
        settings.append(
            f"- 1D-CNN: {args.epochs} epochs, Adam lr {args.cnn_lr}, batch "
            f"{args.batch_size}"
        )
    if "extratrees" in args.models:
        settings.append(f"- ExtraTrees: {args.trees} trees, all cores")
    skipped = [MODEL_NAMES[m] for m in MODELS if m not in args.models]
    if skipped:
        lines += [
            f"**Models in this run: {', '.join(MODEL_NAMES[m] for m in args.models)}. "
            f"Not run: {', '.join(skipped)} (see `--models`).**",
            "",
        ]
    lines += [
        f"- date: {now}; total run time {elapsed / 60:.1f} min",
        f"- hardware: {hardware()}; device used: {_device(args.device)}",
        f"- software: Python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}; sklearn_flowspectrum commit "
        f"{code_version()}",
        f"- data: `{args.data}` (USTC-TK2016 TRAIN files of ISCX VPN-nonVPN 2016, "
        "SessionAllLayers and SessionL7)"
        + (
            f", at most {args.max_per_class} sessions per class"
            if args.max_per_class
            else ""
        ),
        f"- protocol: {args.repeats} repeat(s); each a random stratified 4:1 "
        "train/test split, the training part split 3:1 into fit/validation; "
        "mean ± standard deviation over repeats",
        *settings,
        f"- group-of-{args.k}: {args.groups_per_class} groups of {args.k} same-class "
        "test sessions per class, drawn with replacement, decided together "
        "(the authors' protocol; NOT a per-session score)",
        "- accuracy / precision / recall / F1: per session, macro over classes; "
        "val acc: per-session accuracy on the validation quarter (not used for "
        "selection); fit s: median training time",
        "- apps acc: per-session accuracy on the test sessions that are NOT UDP "
        "name-service or discovery traffic (DNS, LLMNR, NetBIOS, mDNS, SSDP, "
        "DHCP, ...: `background_sessions`), i.e. on the application's own "
        "sessions; AllLayers only (L7 rows carry no ports)" + _app_share_text(timings),
        "- paper acc: the accuracy printed in the paper (unmasked AllLayers; "
        "the paper does not say whether it is per session or per group)",
        "",
    ]
    for dataset in args.datasets:
        if not (timings["dataset"] == dataset).any():
            continue
        lines += [f"## {DATASETS[dataset][1]}", ""]
        lines.append(markdown_table(summarise(frame, timings, dataset, args)))
        lines.append("")
    text = "\n".join(lines)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    csv = out.with_suffix(".csv")
    frame.merge(
        timings, on=["dataset", "model", "representation_key", "repeat"]
    ).to_csv(csv, index=False)
    return text, csv


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "--data", default=os.environ.get("FLOWSPECTRUM_ISCX_PATH", DEFAULT_DATA)
    )
    p.add_argument(
        "--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS)
    )
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument(
        "--representations",
        nargs="+",
        choices=REPRESENTATIONS,
        default=list(REPRESENTATIONS),
    )
    p.add_argument(
        "--network",
        choices=["paper", "default"],
        default="paper",
        help="AMAE/AE network: the paper's shape, or the package's default",
    )
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-per-class", type=int, default=2000, help="0: all sessions")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3, help="embedder learning rate")
    p.add_argument("--cnn-lr", type=float, default=1e-3)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--bandwidth", type=float, default=0.1)
    p.add_argument("--trees", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--groups-per-class", type=int, default=1000)
    p.add_argument("--output", default=str(ROOT / "docs" / "reproduction.md"))
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny CPU plumbing check (labelled as such in the output)",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs = min(args.epochs, 1)
        args.repeats = min(args.repeats, 2)
        args.max_per_class = min(args.max_per_class or 40, 40)
        args.trees = min(args.trees, 20)
        args.groups_per_class = min(args.groups_per_class, 50)
        args.batch_size = min(args.batch_size, 64)
        if args.output == str(ROOT / "docs" / "reproduction.md"):
            args.output = str(ROOT / "docs" / "reproduction_smoke.md")
    return args


def main(argv=None):
    args = parse_args(argv)
    if not Path(args.data).is_dir():
        sys.exit(f"{args.data}: ISCX-VPN2016 folder not found (pass --data)")
    print(f"{hardware()}; device {_device(args.device)}", flush=True)
    t0 = time.perf_counter()
    frame, timings = run(args, t0)
    text, csv = write_report(frame, timings, args, time.perf_counter() - t0)
    print("\n" + text)
    print(f"wrote {args.output} and {csv}")


if __name__ == "__main__":
    main()
