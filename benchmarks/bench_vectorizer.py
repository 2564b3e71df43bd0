"""Benchmark: PcapSessionVectorizer.transform on a large session table.

The table is read once from the shared nDPI captures with ``read_sessions``
and repeated ``--copies`` times (the transform only sees frames, so repeated
sessions cost what new ones would).  In the same run, a straightforward
per-session implementation builds the same images: for each session, pack
the pcap headers with ``struct``, append the frames, dissect every frame with
``dissect`` and blank the masked fields in a ``bytearray``.  Both outputs are
checked to be identical before timing.

Figures: sessions/s, kept frames/s, and packets/s (packets of the sessions
the table stands for), medians over ``--repeats`` runs, and the speed-up.
Only transform is timed here; the issue's end-to-end target (read_sessions
plus transform, >= 1,000,000 packets/s) is measured by the capture benchmark.

Run: ``python benchmarks/bench_vectorizer.py [--copies 10] [--repeats 3]``
"""

import argparse
import glob
import struct
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from sklearn_flowspectrum import PcapSessionVectorizer, read_sessions
from sklearn_flowspectrum._layers import dissect
from sklearn_flowspectrum._layouts import resolve_mask

NDPI = Path(__file__).resolve().parents[1].parent / "shared/data/ndpi-pcaps/pcap"


def straightforward(table, n_bytes, mask_fields):
    """The obvious implementation: one session, one frame at a time."""
    out = np.zeros((len(table), n_bytes), dtype=np.uint8)
    record_mask = {"pcap.ts_sec", "pcap.ts_usec"} & mask_fields
    for i, (frames, times, origs, lt) in enumerate(
        zip(table.frames, table.frame_ts_ns, table.frame_orig_len, table.linktype)
    ):
        image = bytearray(struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, lt))
        for frame, ts, orig in zip(frames, times, origs):
            if len(image) >= n_bytes:
                break
            sec, usec = (0, 0) if record_mask else (ts // 10**9, ts % 10**9 // 1000)
            image += struct.pack(">IIII", sec, usec, len(frame), orig)
            masked = bytearray(frame)
            for name, a, z in dissect(frame, lt).fields:
                if name == "ipv6.vtcfl" and name in mask_fields:
                    masked[a + 1 : a + 2] = bytes([masked[a + 1] & 0xF0])
                    masked[a + 2 : z] = bytes(max(0, z - a - 2))
                elif name in mask_fields:
                    masked[a:z] = bytes(z - a)
            image += masked
        image = image[:n_bytes]
        out[i, : len(image)] = np.frombuffer(bytes(image), dtype=np.uint8)
    return out


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = read_sessions(sorted(glob.glob(str(NDPI / "*"))), on_error="ignore")
    table = pd.concat([base] * args.copies, ignore_index=True)
    table.attrs["keep_bytes"] = base.attrs["keep_bytes"]
    n_frames = int(table.frames.map(len).sum())
    n_packets = int(table.packets.sum())
    print(
        f"table: {len(table):,} sessions, {n_frames:,} kept frames, "
        f"{n_packets:,} packets ({args.copies} copies of the nDPI captures)"
    )
    header = f"{'case':<28}{'ours s':>9}{'base s':>9}{'ratio':>7}"
    header += f"{'sessions/s':>13}{'frames/s':>12}{'packets/s':>13}"
    print(header)
    for mask in ("none", "safe"):
        vec = PcapSessionVectorizer(mask=mask, scale=False).fit(table)
        fields = resolve_mask(mask)
        sub = table.iloc[: max(1, len(table) // args.copies)]
        sub.attrs["keep_bytes"] = table.attrs["keep_bytes"]
        np.testing.assert_array_equal(
            vec.transform(sub), straightforward(sub, 784, fields)
        )
        ours = median_time(lambda v=vec: v.transform(table), args.repeats)
        # The baseline is slow: time it on one copy and scale.
        base_t = median_time(
            lambda f=fields, s=sub: straightforward(s, 784, f), args.repeats
        ) * (len(table) / len(sub))
        print(
            f"{'ustc 784, mask=' + mask:<28}{ours:>9.3f}{base_t:>9.3f}"
            f"{base_t / ours:>7.1f}{len(table) / ours:>13,.0f}"
            f"{n_frames / ours:>12,.0f}{n_packets / ours:>13,.0f}"
        )
    for kw in ({"layers": "l7"}, {"layout": "frames"}, {"layout": "packets"}):
        vec = PcapSessionVectorizer(scale=False, **kw).fit(table)
        ours = median_time(lambda v=vec: v.transform(table), args.repeats)
        name = ", ".join(f"{k}={v}" for k, v in kw.items()) + ", safe"
        print(
            f"{name:<28}{ours:>9.3f}{'':>9}{'':>7}{len(table) / ours:>13,.0f}"
            f"{n_frames / ours:>12,.0f}{n_packets / ours:>13,.0f}"
        )


if __name__ == "__main__":
    main()
