"""How much of ISCX VPN-nonVPN 2016 is name lookups, and what the DNS ID leaks.

The figures behind the ``dns_id`` mask group and ``background_sessions``
(docs: "Evaluation toolkit"), from the shared TRAIN images (12 classes,
SessionAllLayers):

1. the share of UDP name-service/discovery sessions, overall and per class;
2. the LLMNR lookups of "wpad" and, among those of Chat and Email, how many
   distinct transaction IDs their sessions carry;
3. ExtraTrees per-session accuracy (stratified k-fold) on those Chat/Email
   sessions with the safe mask without ``dns.id`` and with it;
4. the same on all 12 classes, overall and on the non-background sessions;
5. with ``--mlp``: the TRAINING accuracy of a small MLP on the bytes, on the
   wpad Chat/Email sessions and on the rest (a smooth model cannot memorise
   two random bytes).

Run::

    python benchmarks/iscx_name_lookups.py [--folds 5] [--trees 100] [--mlp]
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from sklearn_flowspectrum import PcapSessionVectorizer
from sklearn_flowspectrum._layouts import SAFE_FIELDS
from sklearn_flowspectrum.datasets import load_iscx_vpn2016
from sklearn_flowspectrum.evaluation import background_sessions, ustc_session_table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "iscx-vpn2016"
MASKS = {
    "safe without dns.id": sorted(SAFE_FIELDS - {"dns.id"}),
    "safe (with dns.id)": "safe",
}


def masked(rows, mask):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rows that are not pcap data
        return PcapSessionVectorizer(mask=mask, scale=False).fit_transform(rows)


def cv_hits(X, y, args):
    cv = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    model = ExtraTreesClassifier(args.trees, n_jobs=-1, random_state=0)
    return cross_val_predict(model, X, y, cv=cv) == y


def mlp_train_accuracy(X, y, epochs=30, batch=128, lr=2e-3):
    """Training accuracy of Linear(784, 512)-PReLU-Linear on scaled bytes."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(X.shape[1], 512), nn.PReLU(), nn.Dropout(0.1), nn.Linear(512, 12)
    )
    opt = torch.optim.AdamW(net.parameters(), lr)
    steps = epochs * -(-len(X) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    xt = torch.as_tensor(X / 255.0, dtype=torch.float32)
    yt = torch.as_tensor(y)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(xt)).split(batch):
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        return net(xt).argmax(1).numpy() == y


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--mlp", action="store_true")
    p.add_argument("--mlp-sessions", type=int, default=8000)
    args = p.parse_args(argv)
    t0 = time.perf_counter()

    data = load_iscx_vpn2016(args.data, representation="alllayers")
    rows, y = data.data, data.target
    label = np.asarray(data.target_names, dtype=object)[y]
    table = ustc_session_table(rows)
    background = background_sessions(table)
    print(
        f"{len(y)} sessions, 12 classes; UDP name-service/discovery: "
        f"{background.sum()} ({background.mean():.1%})"
    )
    print(pd.Series(background).groupby(label).mean().round(3).to_string())

    # LLMNR lookups of "wpad": the name sits at payload offset 12 of the
    # first packet (a length byte, then the label).
    llmnr = (table["protocol"] == "UDP").to_numpy() & (
        (table["src_port"] == 5355) | (table["dst_port"] == 5355)
    ).to_numpy()
    wpad = llmnr & np.array([b"\x04wpad\x00" in r.tobytes() for r in rows])
    pair = wpad & np.isin(label, ["Chat", "Email"])
    print(f"\nLLMNR sessions {llmnr.sum()}, of them 'wpad' {wpad.sum()}")
    print(pd.Series(label[wpad]).value_counts().to_string())
    bare = masked(rows[pair], MASKS["safe without dns.id"])
    ids = PcapSessionVectorizer(scale=False).fit(rows[pair]).byte_map(rows[pair])
    first = np.argmax(ids == "dns.id", axis=1)  # first ID byte of each session
    at = np.arange(pair.sum())
    txid = bare[at, first].astype(int) * 256 + bare[at, first + 1]
    print(
        f"Chat/Email wpad sessions: {pair.sum()} ({pair.mean():.1%} of all), "
        f"distinct transaction IDs {len(np.unique(txid))}"
    )

    print(
        f"\nExtraTrees({args.trees}), stratified {args.folds}-fold, "
        "per-session accuracy, masked AllLayers bytes:"
    )
    for name, mask in MASKS.items():
        hits_pair = cv_hits(masked(rows[pair], mask), y[pair], args)
        hits = cv_hits(masked(rows, mask), y, args)
        print(
            f"  {name:20s} Chat vs Email on wpad: {hits_pair.mean():.3f}   "
            f"12 classes: {hits.mean():.3f}  non-background "
            f"{hits[~background].mean():.3f}  background {hits[background].mean():.3f}",
            flush=True,
        )
    chance = pd.Series(label[pair]).value_counts(normalize=True).max()
    print(f"  (chance on Chat vs Email: {chance:.3f})")

    if args.mlp:
        rng = np.random.default_rng(0)
        sub = rng.choice(len(y), min(args.mlp_sessions, len(y)), replace=False)
        X = masked(rows[sub], MASKS["safe without dns.id"])
        hits = mlp_train_accuracy(X, y[sub])
        in_pair = pair[sub]
        print(
            f"\nMLP on {len(sub)} random sessions (safe mask without dns.id), "
            f"TRAINING accuracy: all {hits.mean():.3f}, wpad Chat/Email "
            f"{hits[in_pair].mean():.3f}, rest {hits[~in_pair].mean():.3f}; "
            f"share of its training errors on wpad Chat/Email "
            f"{(~hits & in_pair).sum() / max((~hits).sum(), 1):.1%}"
        )
    print(f"\nelapsed {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
