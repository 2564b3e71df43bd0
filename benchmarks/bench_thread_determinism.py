"""Seeded CPU training: how the spectra depend on the number of torch threads.

``AMAESpectrumEmbedder(random_state=0)`` fixes the weights' initialisation,
dropout and batch order, so two fits with the same number of torch threads
give the same spectra bit for bit.  With another number of threads,
PyTorch's parallel reductions (the loss means over a batch, oneDNN's
convolution gradients) add their terms in another order: the first step's
gradients differ in the last bits and the difference grows with training.

Turning oneDNN off (``torch.backends.mkldnn.enabled = False``) is no way out:
the other reductions still depend on the thread count, and training is
slower.  The script shows both: for each setting it fits the default network
on the bundled ISCX sample with 1 thread and ``--repeats`` times with
``--threads`` threads, and prints whether the fits with the same thread count
agree, the largest spectrum difference between 1 and ``--threads`` threads,
and the median fit time at ``--threads`` threads (ratio to oneDNN on).

RESULTS (this project's shared 2-core CPU box, torch 2.13.0+cpu, 2026-12-02,
``--repeats 2``; the box ran other jobs at a load of about 17, so read the
ratio, not the seconds)::

    256 sessions, 1 epoch(s), batch 64, torch 2.13.0+cpu, oneDNN available: True
    oneDNN   same threads     |d(1) - d(2)|    fit s (2 thr)  ratio
    on          identical          7.45e-06             36.5   1.00
    off         identical          1.55e-06             90.1   2.47

Run::

    python benchmarks/bench_thread_determinism.py
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

from sklearn_flowspectrum import AMAESpectrumEmbedder
from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample


def _fit(X, y, threads, onednn, epochs, batch_size):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.backends.mkldnn.flags(enabled=onednn):
            start = time.perf_counter()
            emb = AMAESpectrumEmbedder(
                max_epochs=epochs, batch_size=batch_size, random_state=0, device="cpu"
            ).fit(X, y)
            seconds = time.perf_counter() - start
        return emb.transform(X)[:, 0], seconds
    finally:
        torch.set_num_threads(before)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="training sessions")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed fits")
    args = parser.parse_args(argv)
    # torch.backends.mkldnn.flags notes a TF32 option of Intel GPUs each time.
    warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")

    X, y = load_iscx_vpn2016_sample(return_X_y=True)
    take = np.random.default_rng(0).permutation(len(y))[: args.n]
    X, y = X[take], y[take]
    fit = dict(epochs=args.epochs, batch_size=args.batch_size)
    print(
        f"{args.n} sessions, {args.epochs} epoch(s), batch {args.batch_size}, "
        f"torch {torch.__version__}, oneDNN available: "
        f"{torch.backends.mkldnn.is_available()}"
    )
    header = (
        f"{'oneDNN':7} {'same threads':>13} {f'|d(1) - d({args.threads})|':>17} "
        f"{f'fit s ({args.threads} thr)':>16} {'ratio':>6}"
    )
    print(header)
    baseline = None
    for onednn in (True, False):
        one, _ = _fit(X, y, 1, onednn, **fit)
        runs = [_fit(X, y, args.threads, onednn, **fit) for _ in range(args.repeats)]
        same = all(np.array_equal(runs[0][0], r[0]) for r in runs[1:])
        diff = float(np.abs(one - runs[0][0]).max())
        seconds = statistics.median(s for _, s in runs)
        baseline = seconds if baseline is None else baseline
        print(
            f"{'on' if onednn else 'off':7} {'identical' if same else 'DIFFER':>13} "
            f"{diff:17.3g} {seconds:16.1f} {seconds / baseline:6.2f}"
        )


if __name__ == "__main__":
    main()
