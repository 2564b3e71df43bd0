"""Benchmark: size and load time of the command line's model files.

Trains the default 784-byte network for one epoch on 48 AllLayers sessions
of the bundled ISCX sample (``flowspectrum fit --save-optimizer``: a pickle
with Adam's state), then saves the same model the way ``fit`` saves by
default (the model format of ``save_model``: JSON, ``.npy`` and safetensors
in one zip, no optimizer state) and as a pickle without the optimizer's
state, and prints the three sizes in bytes.  Load times: ``load_model`` of
the model format and ``load_model_file`` of the pickle (the allowlist, and
skorch's nested pickle unpickled once more to vet it) against plain
``joblib.load`` of the pickle as the baseline, medians over repeats of
wall-clock and CPU time (on a busy shared machine the CPU time is the better
estimate of the wall time on a quiet one).

Run: ``python benchmarks/bench_model_file.py [--repeats 5]``
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np

from sklearn_flowspectrum import load_model, write_idx
from sklearn_flowspectrum._cli import _Console, _save_model, main
from sklearn_flowspectrum._model_file import dump_model_file, load_model_file
from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample


def timed(load, path, repeats):
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        load(path)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus))


def main_():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        X, y = load_iscx_vpn2016_sample(return_X_y=True)
        keep = np.concatenate([np.flatnonzero(y == c)[:12] for c in (0, 3, 5, 9)])
        images = folder / "train-images-idx3-ubyte"
        write_idx(images, X[keep].reshape(-1, 28, 28))
        write_idx(folder / "train-labels-idx1-ubyte", y[keep].astype(np.uint8))
        full, lean = folder / "full.joblib", folder / "lean.joblib"
        default = folder / "model.fsm"
        argv = ["-q", "fit", str(images), "-o", str(full), "--save-optimizer"]
        assert main([*argv, "--epochs", "1", "--device", "cpu"]) == 0
        bundle = load_model_file(full)
        _save_model(bundle, default, _Console(quiet=True))
        bundle["pipeline"].named_steps["embedder"].initialize_optimizer()
        dump_model_file(bundle, lean)
        print(f"{'file':<40}{'bytes':>12}")
        for name, path in (
            ("fit --save-optimizer (pickle)", full),
            ("pickle without optimizer state", lean),
            ("fit (default: model format)", default),
        ):
            print(f"{name:<40}{os.path.getsize(path):>12,}")
        for name, path in (("--save-optimizer", full), ("pickle w/o optimizer", lean)):
            ratio = os.path.getsize(default) / os.path.getsize(path)
            print(f"size ratio model format / {name}: {ratio:.3f}")
        print(f"\nload, median of {args.repeats}        wall s    CPU s")
        rows = {}
        for name, load, path in (
            ("joblib.load (baseline)", joblib.load, lean),
            ("load_model_file (pickle)", load_model_file, lean),
            ("load_model (model format)", load_model, default),
        ):
            rows[name] = timed(load, path, args.repeats)
            print(f"{name:<32}{rows[name][0]:>8.3f}{rows[name][1]:>9.3f}")
        base = rows["joblib.load (baseline)"]
        for name in list(rows)[1:]:
            ours = rows[name]
            print(
                f"ratio {name} / joblib.load: wall {ours[0] / base[0]:.2f}, "
                f"CPU {ours[1] / base[1]:.2f}"
            )


if __name__ == "__main__":
    main_()
