"""How much of a score survives an honest split?  Random vs time vs endpoint.

One model (ExtraTrees on masked AllLayers bytes by default) is cross-validated
on the shared ISCX training images three ways in the same run:

- ``random``: StratifiedKFold(5, shuffle=True), the usual practice and the
  baseline;
- ``time``: SessionTimeSplit(5), training on earlier sessions and testing on
  later ones (first-packet capture time read from each row with
  ``ustc_session_table``, before masking);
- ``endpoint``: ServerEndpointKFold(5), so that no server (protocol, address,
  port) sits on both sides.

It prints per-session accuracy (mean and standard deviation over folds), the
ratio to the random split, and how many test sessions belong to classes the
training folds never saw.  All scores are per session.

Run: ``python benchmarks/evaluation_splits.py [--max-per-class 1500]
[--representation masked|unmasked] [--data PATH]``
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.model_selection import StratifiedKFold

from sklearn_flowspectrum import PcapSessionVectorizer
from sklearn_flowspectrum.datasets import load_iscx_vpn2016
from sklearn_flowspectrum.evaluation import (
    ServerEndpointKFold,
    SessionTimeSplit,
    server_endpoints,
    ustc_session_table,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "iscx-vpn2016"


def evaluate(X, y, splits, trees, seed):
    scores, unseen = [], 0
    for train, test in splits:
        model = ExtraTreesClassifier(n_estimators=trees, n_jobs=-1, random_state=seed)
        model.fit(X[train], y[train])
        scores.append(np.mean(model.predict(X[test]) == y[test]))
        unseen += int(np.sum(~np.isin(y[test], y[train])))
    return np.array(scores), unseen


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data", default=os.environ.get("FLOWSPECTRUM_ISCX_PATH", DEFAULT_DATA)
    )
    p.add_argument("--max-per-class", type=int, default=1500, help="0: all")
    p.add_argument("--representation", choices=["masked", "unmasked"], default="masked")
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--splits", type=int, default=5)
    args = p.parse_args()

    print(
        f"ExtraTrees({args.trees}) on {args.representation} SessionAllLayers bytes, "
        f"{args.splits} folds, per-session accuracy; at most "
        f"{args.max_per_class or 'all'} sessions per class"
    )
    print(
        f"{'data':8s} {'split':9s} {'accuracy':>16s} {'vs random':>9s} "
        f"{'unseen':>7s} {'s':>5s}"
    )
    for vpn in ("novpn", "vpn"):
        data = load_iscx_vpn2016(args.data, vpn=vpn)
        rng = np.random.default_rng(0)
        X, y = data.data, data.target
        if args.max_per_class:
            keep = np.sort(
                np.concatenate(
                    [
                        rng.choice(i, min(args.max_per_class, i.size), replace=False)
                        for i in (np.flatnonzero(y == c) for c in np.unique(y))
                    ]
                )
            )
            X, y = X[keep], y[keep]
        table = ustc_session_table(X)  # before masking: it reads times and addresses
        if args.representation == "masked":
            X = PcapSessionVectorizer(mask="safe", scale=False).fit_transform(X)
        X = X.astype(np.float32) / 255
        cvs = {
            "random": StratifiedKFold(args.splits, shuffle=True, random_state=0).split(
                X, y
            ),
            "time": SessionTimeSplit(args.splits).split(table),
            "endpoint": ServerEndpointKFold(args.splits).split(table),
        }
        base = None
        for name, splits in cvs.items():
            t0 = time.perf_counter()
            scores, unseen = evaluate(X, y, splits, args.trees, 0)
            mean = scores.mean()
            base = mean if base is None else base
            print(
                f"{vpn:8s} {name:9s} {mean:8.3f} ± {scores.std():5.3f} "
                f"{mean / base:9.2f} {unseen:7d} {time.perf_counter() - t0:5.0f}",
                flush=True,
            )
        keys = server_endpoints(table)
        print(
            f"{'':8s} ({len(y)} sessions, {len(set(keys))} server endpoints, capture "
            f"times {np.ptp(table['first_ts']) / 86400:.0f} days apart at most)"
        )


if __name__ == "__main__":
    main()
