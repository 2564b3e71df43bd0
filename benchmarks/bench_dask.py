"""Benchmark: scale-out -- Dask against loky, one big file on two cores, Parquet
parts under a memory cap.

In one run, side by side:

1. ``read_sessions`` over the nDPI captures (``../shared/data/ndpi-pcaps``,
   543 files) and over ``--copies`` copies (symbolic links) of the 200 MB
   benchmark capture of ``bench_read_sessions.py``: loky with ``n_jobs=2``
   against a ``LocalCluster`` of 2 worker processes (one thread each) under
   ``joblib.parallel_config(backend="dask")``.  Both warm (the loky workers
   and the cluster started before the timed rounds; the cluster's start is
   printed apart); the tables are checked equal.  The ratio Dask / loky is
   the overhead of Dask on one machine.
2. One big classic pcap: ``read_sessions(path)`` on one core against
   ``read_sessions(path, split_size=size // 2 + 1, n_jobs=2)`` (two byte
   ranges in two loky workers), on the 200 MB benchmark capture (new
   sessions in every replay: about 12 packets per session) and on one of the
   same size whose replays reuse the sessions (long sessions); tables
   checked equal.
3. ``sessions_to_parquet`` against ``read_sessions`` in a subprocess whose
   address space is capped (``RLIMIT_AS``, what ``ulimit -v`` sets) at
   ``--cap-mb``, on copies of the 200 MB capture adding up to three times
   the cap: the serial ``read_sessions`` runs out of memory, the parts are
   written within the cap.

Times are medians of ``--rounds`` rounds, wall clock.  The machine is
printed; on a machine whose cores other work also uses, two workers get
less than two cores and the ratios say so.

Usage::

    python benchmarks/bench_dask.py [--rounds 3] [--copies 40] [--cap-mb 2000]

Measured at commit cf70c7f on the 2-core development machine (Intel Xeon),
whose two cores other work kept busy throughout (load average 3.3 to 4.0),
``--rounds 3 --copies 8 --cap-mb 2000``:

1. Dask / loky: nDPI captures (8,566 sessions) 0.50 s against 0.65 s,
   1.30x; 8 copies of the 200 MB capture (394,352 sessions) 3.87 s against
   4.88 s, 1.26x (cluster start, 0.8 s, not counted).  An earlier run at a
   load average of 3.6 to 4.6 gave 1.11x and 1.38x.
2. One big file, 1 core against 2 ranges on 2 cores: 0.28 s against 0.44 s
   (0.63x) on the 200 MB benchmark capture, 0.17 s against 0.30 s (0.55x)
   with long sessions; in CPU seconds 0.27 serially, 0.16 in the calling
   process + 0.26 in the two workers.  The target of 1.7x is not reached,
   and would not be on two idle cores either: this reader decodes at about
   1 GB/s, so building the table's Python objects -- in the calling process,
   whichever way the ranges are read -- and merging the ranges cost about
   half the serial time.
3. 30 copies (6.4 GB) under a 2,000 MB address-space cap: ``read_sessions``
   fails (MemoryError) after 9.9 s; ``sessions_to_parquet`` writes the
   1,478,820 sessions in 14.5 s, peak address space 1,611 MB, peak RSS
   403 MB.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

NDPI = ROOT.parent / "shared" / "data" / "ndpi-pcaps"


def _median_time(function, rounds):
    times, out = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        out = function()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _machine():
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores ({_cpu_name()}), load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start"
    )


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def compare_backends(sets, rounds):
    import joblib
    import pandas as pd
    from distributed import Client, LocalCluster

    from sklearn_flowspectrum import read_sessions

    rows = []
    for name, paths in sets:
        # loky, warm
        read_sessions(paths, n_jobs=2, on_error="ignore")
        rows.append(
            [name, *_median_time(
                lambda p=paths: read_sessions(p, n_jobs=2, on_error="ignore"),
                rounds,
            )]
        )  # fmt: skip
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster),
        ):
            start = time.perf_counter() - t
            with joblib.parallel_config(backend="dask"):
                for row, (_, paths) in zip(rows, sets):
                    read_sessions(paths, n_jobs=-1, on_error="ignore")  # warm
                    row += _median_time(
                        lambda p=paths: read_sessions(p, n_jobs=-1, on_error="ignore"),
                        rounds,
                    )
    print(
        f"1. read_sessions, loky n_jobs=2 against a 2-worker LocalCluster "
        f"(started in {start:.1f} s, not counted)"
    )
    print(f"   {'':34s}{'sessions':>10s}{'loky s':>9s}{'dask s':>9s}{'dask/loky':>11s}")
    for name, loky_s, loky_table, dask_s, dask_table in rows:
        pd.testing.assert_frame_equal(loky_table, dask_table)
        print(
            f"   {name:34s}{len(loky_table):>10,}{loky_s:9.2f}{dask_s:9.2f}"
            f"{dask_s / loky_s:10.2f}x"
        )
        del loky_table, dask_table


def _children_cpu():
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def _timed_cpu(function, rounds):
    """Median wall, this process's CPU and its children's CPU per round."""
    walls, own, kids, out = [], [], [], None
    for _ in range(rounds):
        k, c, t = _children_cpu(), time.process_time(), time.perf_counter()
        out = function()
        walls.append(time.perf_counter() - t)
        own.append(time.process_time() - c)
        kids.append(_children_cpu() - k)
    med = statistics.median
    return med(walls), med(own), med(kids), out


def compare_split(files, rounds):
    import pandas as pd

    from sklearn_flowspectrum import read_sessions

    print("2. one big classic pcap: 1 core against 2 byte ranges on 2 cores (loky)")
    print(
        f"   {'':44s}{'sessions':>9s}{'1 core s':>10s}{'2 cores s':>11s}"
        f"{'speed-up':>10s}   CPU s: 1 core | 2 cores: here + workers"
    )
    for name, path in files:
        half = path.stat().st_size // 2 + 1
        read_sessions(path, split_size=half, n_jobs=2)  # warm the workers
        one_s, one_cpu, _, one = _timed_cpu(lambda p=path: read_sessions(p), rounds)
        two_s, two_cpu, workers_cpu, two = _timed_cpu(
            lambda p=path, h=half: read_sessions(p, split_size=h, n_jobs=2), rounds
        )
        pd.testing.assert_frame_equal(one, two)
        print(
            f"   {name:44s}{len(one):>9,}{one_s:10.2f}{two_s:11.2f}"
            f"{one_s / two_s:9.2f}x   {one_cpu:.2f} | {two_cpu:.2f} + "
            f"{workers_cpu:.2f}"
        )
    print(
        "   (wall seconds above CPU seconds: the process waited for a core; "
        "the workers' CPU is of both together)"
    )


def _capped(which, folder, out, cap_mb):
    """Run ``which`` ("read" or "parquet") in a subprocess capped at cap_mb."""
    cap = cap_mb << 20

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", which, str(folder), str(out)],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.perf_counter() - t
    lines = proc.stdout.strip().splitlines()
    result = lines[-1] if lines and proc.returncode == 0 else None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        result = f"failed ({tail[:70]})"
    return seconds, result


def _child(which, folder, out):
    from sklearn_flowspectrum import read_sessions, sessions_to_parquet

    paths = sorted(str(p) for p in Path(folder).iterdir())
    if which == "read":
        table = read_sessions(paths)
        n = len(table)
    else:
        n = int(sessions_to_parquet(paths, out)["sessions"].sum())
    with open("/proc/self/status") as f:
        peak = [int(line.split()[1]) // 1024 for line in f
                if line.startswith(("VmPeak", "VmHWM"))]  # fmt: skip
    print(f"{n:,} sessions, peak address space {peak[0]:,} MB, peak RSS {peak[1]:,} MB")


def compare_memory(big, tmp, cap_mb):
    size = big.stat().st_size
    n = -(-3 * cap_mb * (1 << 20) // size)  # three times the cap, rounded up
    folder = tmp / "capped"
    folder.mkdir()
    for i in range(n):
        os.symlink(big, folder / f"copy{i:03d}.pcap")
    total = n * size / 1e9
    print(
        f"3. {n} copies of the 200 MB capture ({total:.1f} GB, symbolic links) "
        f"in a process capped at {cap_mb:,} MB of address space (RLIMIT_AS)"
    )
    for which, what in (
        ("read", "read_sessions (serial, one table)"),
        ("parquet", "sessions_to_parquet (serial, a part each)"),
    ):
        out = tmp / "parts"
        shutil.rmtree(out, ignore_errors=True)
        seconds, result = _capped(which, folder, out, cap_mb)
        print(f"   {what:44s}{seconds:7.1f} s  {result}")
    shutil.rmtree(tmp / "parts", ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=40)
    parser.add_argument("--size-mb", type=float, default=200)
    parser.add_argument("--cap-mb", type=int, default=2000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    if not NDPI.is_dir():
        sys.exit(f"needs the nDPI captures in {NDPI}")
    from bench_read_sessions import build_capture

    print(f"machine: {_machine()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        big, dense = tmp / "bench.pcap", tmp / "long_sessions.pcap"
        t = time.perf_counter()
        n_packets, _ = build_capture(big, args.size_mb)
        build_capture(dense, args.size_mb, distinct_replays=1)
        print(
            f"built two {big.stat().st_size / 1e6:.0f} MB captures of "
            f"{n_packets:,} packets in {time.perf_counter() - t:.1f} s"
        )
        copies = tmp / "copies"
        copies.mkdir()
        for i in range(args.copies):
            os.symlink(big, copies / f"copy{i:03d}.pcap")
        compare_backends(
            [
                ("nDPI captures (543 files, 38 MB)", [str(NDPI / "pcap")]),
                (f"{args.copies} copies of the 200 MB capture", [str(copies)]),
            ],
            args.rounds,
        )
        compare_split(
            [
                ("200 MB benchmark capture (~12 packets/session)", big),
                ("200 MB, replays reuse the sessions", dense),
            ],
            args.rounds,
        )
        compare_memory(big, tmp, args.cap_mb)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
