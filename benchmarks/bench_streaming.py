"""Benchmark: reading a capture from a pipe and compressed, against the file.

Builds the classic Ethernet pcap of ``bench_read_sessions.py`` (replays of the
shared nDPI captures), then, each run in a fresh subprocess pinned to one
core, times ``read_sessions`` on:

* the file by name (the baseline);
* the same bytes piped through standard input (``cat FILE | ... '-'``), what
  ``tcpdump -w - | flowspectrum ...`` gives;
* the file gzip-compressed (``.pcap.gz``, level 1), read by name;
* the file again with ``statistics=True`` (the flow statistics columns);
* :func:`iter_sessions` from standard input (``emit="end"``, no timeout).

Then the peak memory of ``iter_sessions(idle_timeout=60)`` from standard
input on the capture and on one five times as long (the same sessions
repeated, each replay an hour after the previous).

It prints packets/s (median over repeats) and each one's ratio to the file
in the same run.  Usage::

    python benchmarks/bench_streaming.py [--size-mb 200] [--repeats 3]

Measured on the 2-core AMD EPYC build machine, otherwise idle, default
``--size-mb 200 --repeats 3`` (213 MB, 612,192 packets, 49,294 sessions):
file 1,077,028 packets/s; stdin 946,391 (0.88 of the file); gzip file
234,421 (0.22: Python's GzipFile decompresses in 8 KiB steps);
``statistics=True`` 712,353 (0.66); ``iter_sessions`` from stdin 868,440
(0.81).  Peak memory of ``iter_sessions(idle_timeout=60)`` from stdin: 168 MB
for the 213 MB capture, 171 MB for the 1,030 MB one (1.01x).  The replays
are concatenations of captures whose times jump back, so there the idle
timeout cuts a few more sessions than ``read_sessions`` would (see
``iter_sessions``).
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
from sklearn_flowspectrum import iter_sessions, read_sessions
source, mode = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if mode.startswith("iter"):
    idle = float(mode[4:]) if len(mode) > 4 else None
    packets = sessions = 0
    for table in iter_sessions(source, idle_timeout=idle):
        packets += int(table["packets"].sum())
        sessions += len(table)
else:
    table = read_sessions(source, statistics=mode == "stats")
    packets, sessions = int(table["packets"].sum()), len(table)
seconds = time.perf_counter() - t0
with open("/proc/self/status") as f:
    hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM")][0]
print(seconds, packets, sessions, hwm / 1024)
"""


def _pin():
    return ["taskset", "-c", "0"] if shutil.which("taskset") else []


def _run(source, path, mode="read"):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    name = "-" if source == "stdin" else path
    cmd = [*_pin(), sys.executable, "-c", _CHILD, name, mode]
    if source == "stdin":
        cat = subprocess.Popen(["cat", path], stdout=subprocess.PIPE)
        out = subprocess.run(cmd, stdin=cat.stdout, capture_output=True, env=env)
        cat.stdout.close()
        cat.wait()
    else:
        out = subprocess.run(cmd, capture_output=True, env=env)
    if out.returncode:
        raise SystemExit(out.stderr.decode())
    seconds, packets, sessions, peak_mb = out.stdout.split()
    return float(seconds), int(packets), int(sessions), float(peak_mb)


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
        # kind: (source, path, mode)
        sources = {
            "file": ("file", path, "read"),
            "stdin": ("stdin", path, "read"),
            "gzip file": ("file", packed, "read"),
            "file, statistics": ("file", path, "stats"),
            "stdin, iter_sessions": ("stdin", path, "iter"),
        }
        times = {k: [] for k in sources}
        counts = {}
        for _ in range(args.repeats):  # alternated, so drift hits all alike
            for kind, (source, p, mode) in sources.items():
                seconds, packets, sessions, _ = _run(source, p, mode)
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
                f"  {kind:20s} {packets / med:12,.0f} packets/s  {med:6.2f} s  "
                f"ratio to file {base / med:4.2f}  ({sessions:,} sessions)"
            )
        if len(set(counts.values())) != 1:
            raise SystemExit(f"the sources disagree: {counts}")
        _memory(tmp, path, args.size_mb)


def _memory(tmp, path, size_mb):
    """Peak memory of streaming 1x and 5x the capture, idle timeout 60 s."""
    longer = os.path.join(tmp, "longer.pcap")
    # Five replays per file size, each an hour after the previous, reusing
    # the addresses: the same sessions again and again.
    build_capture(longer, 5 * size_mb, distinct_replays=1)
    single = os.path.join(tmp, "single.pcap")
    build_capture(single, size_mb, distinct_replays=1)
    print("peak memory (VmHWM) of iter_sessions(idle_timeout=60) from stdin:")
    peaks = {}
    for name, p in (("1x", single), ("5x", longer)):
        _, packets, sessions, peak = _run("stdin", p, "iter60")
        peaks[name] = peak
        print(
            f"  {name}: {os.path.getsize(p) / 1e6:6.0f} MB, {packets:,} packets, "
            f"{sessions:,} sessions, {peak:6.0f} MB"
        )
    print(f"  ratio 5x / 1x: {peaks['5x'] / peaks['1x']:.2f}")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"({time.perf_counter() - start:.0f} s in all)")
