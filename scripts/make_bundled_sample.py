"""Write the ISCX-VPN2016 sample bundled in ``sklearn_flowspectrum/datasets/data``.

Reads the published USTC-TK2016 session images of ISCX VPN-nonVPN 2016 (the
``{Novpn,Vpn}Session{AllLayers,L7}/train-*-ubyte.gz`` files of DeepTraffic) and
draws, with a fixed seed, the same number of distinct sessions from each of the
12 classes (non-VPN 0..5, VPN 6..11) for each representation.

The AllLayers and L7 files were produced with different session filters, so
their rows are not aligned: row i of one is not the session of row i of the
other.  Each representation is therefore sampled on its own.

Usage::

    python scripts/make_bundled_sample.py [SOURCE_DIR] [--per-class 250] [--seed 0]

SOURCE_DIR defaults to ``$FLOWSPECTRUM_ISCX_PATH`` or ``../shared/data/iscx-vpn2016``
next to the repository.  The output is byte-for-byte reproducible.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import gzip
import os
import sys
from pathlib import Path

import numpy as np

from sklearn_flowspectrum import load_idx_pair, write_idx

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "sklearn_flowspectrum" / "datasets" / "data"
REPRESENTATIONS = {"alllayers": "SessionAllLayers", "l7": "SessionL7"}
# (folder prefix, offset added to its 6-class labels)
PARTS = (("Novpn", 0), ("Vpn", 6))


def sample(source, representation, per_class, rng):
    """Return images, 12-class labels, source folders and source rows."""
    images, labels, folders, rows = [], [], [], []
    for prefix, offset in PARTS:
        folder = f"{prefix}{REPRESENTATIONS[representation]}"
        X, y = load_idx_pair(source / folder / "train-images-idx3-ubyte.gz")
        # Keep the first of byte-identical rows, so that no random split of the
        # sample can put the same image on both sides.
        _, first = np.unique(X, axis=0, return_index=True)
        distinct = np.zeros(len(X), dtype=bool)
        distinct[first] = True
        for k in range(6):
            candidates = np.flatnonzero((y == k) & distinct)
            if len(candidates) < per_class:
                raise SystemExit(
                    f"{folder}: class {k} has {len(candidates)} distinct rows, "
                    f"fewer than --per-class {per_class}"
                )
            chosen = np.sort(rng.choice(candidates, per_class, replace=False))
            images.append(X[chosen])
            labels.append(np.full(per_class, k + offset, dtype=np.uint8))
            folders.extend([folder] * per_class)
            rows.append(chosen)
    images = np.concatenate(images)
    labels = np.concatenate(labels)
    folders = np.array(folders)
    rows = np.concatenate(rows)
    order = rng.permutation(len(labels))
    return images[order], labels[order], folders[order], rows[order]


def main(argv=None):
    default = os.environ.get("FLOWSPECTRUM_ISCX_PATH") or (
        ROOT.parent / "shared" / "data" / "iscx-vpn2016"
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=Path(default))
    parser.add_argument("--per-class", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        sys.exit(f"error: {args.source} is not a folder with the ISCX IDX files")
    args.out.mkdir(parents=True, exist_ok=True)
    for i, representation in enumerate(REPRESENTATIONS):
        # One generator per representation: the two samples are independent.
        rng = np.random.default_rng([args.seed, i])
        X, y, folders, rows = sample(args.source, representation, args.per_class, rng)
        stem = args.out / f"iscx_vpn2016_sample_{representation}"
        write_idx(f"{stem}-images-idx3-ubyte.gz", X.reshape(-1, 28, 28))
        write_idx(f"{stem}-labels-idx1-ubyte.gz", y)
        lines = ["source_folder,source_row"]
        lines += [f"{f},{r}" for f, r in zip(folders, rows)]
        with open(f"{stem}-source.csv.gz", "wb") as f:
            f.write(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
        print(f"{representation}: {X.shape[0]} sessions x {X.shape[1]} bytes")
    for p in sorted(args.out.glob("iscx_vpn2016_sample_*")):
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
