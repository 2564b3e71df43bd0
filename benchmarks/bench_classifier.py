"""Benchmark: FlowSpectrumClassifier fit + predict on 1,000,000 1-D spectra.

Target (issue 4): fit + predict together in under 1 s on the project's 2-core
CPU machine.  Baselines in the same run, on the same data: sklearn's
KNeighborsClassifier (a nearest-line classifier on 1-D) and GaussianNB.

Data: 1,000,000 training and 1,000,000 test spectra from 6 overlapping
Gaussian classes placed like the paper's Figure 5 spectra (values in the
tens, spreads of a few units), integer labels.  Accuracies printed are
per-session accuracies on the test spectra.

Times are medians over repeats of wall-clock time and of this process's CPU
time (numpy runs these single-threaded, so on a busy shared machine the CPU
time is the better estimate of the wall time on a quiet one).

Run: ``python benchmarks/bench_classifier.py [--n 1000000] [--repeats 5]``
"""

import argparse
import time

import numpy as np
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier

from sklearn_flowspectrum import FlowSpectrumClassifier

CENTERS = np.array([-40.0, -22.0, -8.0, 4.0, 15.0, 30.0])
SPREADS = np.array([6.0, 4.0, 3.0, 5.0, 2.5, 7.0])


def make_spectra(n, rng):
    y = rng.integers(0, CENTERS.shape[0], size=n)
    X = rng.normal(CENTERS[y], SPREADS[y]).reshape(-1, 1)
    return X, y


def time_fit_predict(make_estimator, X, y, X_test, y_test, repeats):
    walls, cpus, fits = [], [], []
    for _ in range(repeats):
        est = make_estimator()
        c0, t0 = time.process_time(), time.perf_counter()
        est.fit(X, y)
        c1 = time.process_time()
        pred = est.predict(X_test)
        c2, t2 = time.process_time(), time.perf_counter()
        walls.append(t2 - t0)
        cpus.append(c2 - c0)
        fits.append(c1 - c0)
    accuracy = float(np.mean(pred == y_test))
    return np.median(walls), np.median(cpus), np.median(fits), accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--knn-repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X, y = make_spectra(args.n, rng)
    X_test, y_test = make_spectra(args.n, rng)
    print(f"{args.n:,} training + {args.n:,} test spectra, 1-D, 6 classes")
    print(
        f"{'estimator':42s} {'fit+predict':>11s} {'(cpu)':>7s} "
        f"{'fit cpu':>7s} {'accuracy':>8s}"
    )

    rows = [
        ("FlowSpectrumClassifier()", FlowSpectrumClassifier, args.repeats),
        (
            "FlowSpectrumClassifier(bandwidth='scott')",
            lambda: FlowSpectrumClassifier(bandwidth="scott"),
            args.repeats,
        ),
        ("GaussianNB()", GaussianNB, args.repeats),
        ("KNeighborsClassifier()", KNeighborsClassifier, args.knn_repeats),
    ]
    results = {}
    for name, make, repeats in rows:
        wall, cpu, fit, acc = time_fit_predict(make, X, y, X_test, y_test, repeats)
        results[name] = wall, cpu
        print(f"{name:42s} {wall:10.3f}s {cpu:6.3f}s {fit:6.3f}s {acc:8.4f}")

    wall, cpu = results["FlowSpectrumClassifier()"]
    print(
        "seconds, median over repeats; accuracy is per-session on the test set.\n"
        f"FlowSpectrumClassifier() fit+predict: {wall:.3f} s wall, {cpu:.3f} s cpu "
        f"(target < 1 s: {'met' if wall < 1.0 else 'NOT met'} on wall time)"
    )
    for name in ("KNeighborsClassifier()", "GaussianNB()"):
        other = results[name]
        print(
            f"  {name} / FlowSpectrumClassifier(): {other[0] / wall:.2f}x wall, "
            f"{other[1] / cpu:.2f}x cpu"
        )


if __name__ == "__main__":
    main()
