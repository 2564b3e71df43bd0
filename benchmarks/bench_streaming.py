"""Benchmark: reading a capture from a pipe and compressed, against the file.

Builds the classic Ethernet pcap of ``bench_read_sessions.py`` (replays of the
shared nDPI captures), then, each run in a fresh subprocess pinned to one
core, times ``read_sessions`` on:

* the file by name (the baseline);
* the same bytes piped through standard input (``cat FILE | ... '-'``), what
  ``tcpdump -w - | flowspectrum ...`` gives;
* the file gzip-compressed (``.pcap.gz``, level 1), read by name;
* the file again with ``statistics=True`` (the flow statistics columns).

It prints packets/s (median over repeats) and each one's ratio to the file
in the same run.  Usage::

    python benchmarks/bench_streaming.py [--size-mb 200] [--repeats 3]

Measured on the 2-core AMD EPYC build machine while other jobs loaded it
(load average 6-8, so the absolute figures are low; the ratios are from the
same run), ``--size-mb 60 --repeats 3``: file 406,031 packets/s, stdin
410,257 (1.01 of the file; an earlier run 0.85), gzip file 104,622 (0.26;
Python's GzipFile decompresses in 8 KiB steps, which dominates), file with
``statistics=True`` 282,086 (0.69).
"""

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_read_sessions import NDPI, build_capture  # noqa: E402

_CHILD = """
import sys, time
from sklearn_flowspectrum import read_sessions
t0 = time.perf_counter()
table = read_sessions(sys.argv[1], statistics=sys.argv[2] == "1")
print(time.perf_counter() - t0, int(table["packets"].sum()), len(table))
"""


def _pin():
    return ["taskset", "-c", "0"] if shutil.which("taskset") else []


def _run(source, path, statistics=False):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    name = "-" if source == "stdin" else path
    cmd = [*_pin(), sys.executable, "-c", _CHILD, name, str(int(statistics))]
    if source == "stdin":
        cat = subprocess.Popen(["cat", path], stdout=subprocess.PIPE)
        out = subprocess.run(cmd, stdin=cat.stdout, capture_output=True, env=env)
        cat.stdout.close()
        cat.wait()
    else:
        out = subprocess.run(cmd, capture_output=True, env=env)
    if out.returncode:
        raise SystemExit(out.stderr.decode())
    seconds, packets, sessions = out.stdout.split()
    return float(seconds), int(packets), int(sessions)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not NDPI.is_dir():
        raise SystemExit(f"needs the shared nDPI captures in {NDPI}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.pcap")
        n_packets, _ = build_capture(path, args.size_mb)
        packed = path + ".gz"
        with open(path, "rb") as f, gzip.open(packed, "wb", compresslevel=1) as g:
            shutil.copyfileobj(f, g, 1 << 20)
        sources = {
            "file": path,
            "stdin": path,
            "gzip file": packed,
            "file, statistics": path,
        }
        times = {k: [] for k in sources}
        counts = {}
        for _ in range(args.repeats):  # alternated, so drift hits all alike
            for kind, p in sources.items():
                kind_of_source = kind.split()[0].rstrip(",")
                seconds, packets, sessions = _run(
                    kind_of_source, p, statistics="statistics" in kind
                )
                times[kind].append(seconds)
                counts[kind] = (packets, sessions)
        size = os.path.getsize(path) / 1e6
        print(
            f"{size:.0f} MB classic pcap, {n_packets:,} packets; read_sessions, "
            f"one core, median of {args.repeats}"
        )
        base = statistics.median(times["file"])
        for kind in sources:
            med = statistics.median(times[kind])
            packets, sessions = counts[kind]
            print(
                f"  {kind:16s} {packets / med:12,.0f} packets/s  {med:6.2f} s  "
                f"ratio to file {base / med:4.2f}  ({sessions:,} sessions)"
            )
        if len(set(counts.values())) != 1:
            raise SystemExit(f"the sources disagree: {counts}")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"({time.perf_counter() - start:.0f} s in all)")
