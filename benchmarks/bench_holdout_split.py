"""``fit --test-size``: how the held-out part of real captures looks.

The captures of the shared nDPI test suite, each labelled with the category
nDPI gives most of its flows (``flow_labels.csv``), are read once with
``read_sessions``; then, for many seeds, the sessions are split two ways:

- ``GroupShuffleSplit``: whole capture files, ignoring their class (what
  ``fit --test-size`` did before; the baseline);
- ``by class``: whole capture files, class by class (``fit --test-size`` now,
  ``sklearn_flowspectrum._cli._split_files``).

It prints, per way, the held-out share of the sessions (min, median, max over
the seeds), how often a class with two or more captures had no held-out
session, and how often the only capture of a class was held out (so that the
model never saw that class).  No training: this is about the split only.

Run: ``python benchmarks/bench_holdout_split.py [--test-size 0.2]
[--seeds 100] [--data PATH]``
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from sklearn_flowspectrum import read_sessions
from sklearn_flowspectrum._cli import _split_files

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ndpi-pcaps"


def _sessions(folder):
    labels = pd.read_csv(folder / "flow_labels.csv")
    category = labels.groupby("pcap")["cat"].agg(lambda c: c.value_counts().index[0])
    files = [folder / "pcap" / name for name in category.index]
    files = [f for f in files if f.is_file()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # damaged captures: on_error="warn"
        table = read_sessions(
            [str(f) for f in files],
            [category[f.name] for f in files],
            on_error="warn",
            keep_bytes=0,
        )
    return table["file"].to_numpy(), table["label"].to_numpy()


def _describe(name, shares, missing, lost, n_seeds):
    q = np.percentile(shares, [0, 50, 100])
    print(
        f"{name:<18} {q[0]:6.1%} {q[1]:7.1%} {q[2]:6.1%}   "
        f"{missing / n_seeds:14.2f}   {lost / n_seeds:12.2f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not (args.data / "flow_labels.csv").is_file():
        raise SystemExit(f"{args.data}: no nDPI captures (see shared/data/README.md)")
    start = time.perf_counter()
    files, labels = _sessions(args.data)
    n_files = {c: len(np.unique(files[labels == c])) for c in np.unique(labels)}
    multi = [c for c, n in n_files.items() if n >= 2]
    single = [c for c, n in n_files.items() if n == 1]
    print(
        f"{len(files):,} sessions in {len(np.unique(files))} captures, "
        f"{len(n_files)} classes ({len(multi)} with 2+ captures, {len(single)} "
        f"with one); read in {time.perf_counter() - start:.0f} s; "
        f"test size {args.test_size}, seeds 0-{args.seeds - 1}"
    )
    print(
        f"{'split':<18} {'held-out share':>21}   {'classes with 2+':>14}   "
        f"{'one-capture':>12}\n{'':<18} {'min':>6} {'median':>7} {'max':>6}   "
        f"{'captures, none':>14}   {'classes held':>12}\n{'':<18} {'':>21}   "
        f"{'held (per run)':>14}   {'out (per run)':>12}"
    )
    results = {"GroupShuffleSplit": ([], 0, 0), "by class": ([], 0, 0)}
    for seed in range(args.seeds):
        split = GroupShuffleSplit(1, test_size=args.test_size, random_state=seed)
        _, test_idx = next(split.split(files, labels, groups=files))
        old = np.zeros(len(files), dtype=bool)
        old[test_idx] = True
        new, _ = _split_files(files, labels, args.test_size, seed)
        for name, test in (("GroupShuffleSplit", old), ("by class", new)):
            shares, missing, lost = results[name]
            held = set(labels[test])
            shares.append(test.mean())
            missing += sum(c not in held for c in multi)
            lost += sum(c in held for c in single)
            results[name] = (shares, missing, lost)
    for name, (shares, missing, lost) in results.items():
        _describe(name, shares, missing, lost, args.seeds)


if __name__ == "__main__":
    main()
