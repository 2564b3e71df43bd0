"""Benchmark: pcap -> session images on one core, against straightforward dpkt.

Builds a classic Ethernet pcap of the requested size by replaying the Ethernet
packets of the shared nDPI captures (``../shared/data/ndpi-pcaps``); each
replay shifts the IPv4 and IPv6 addresses (so it adds new sessions) and the
timestamps.  Then, each run in a fresh subprocess pinned to one core:

* ours: ``read_sessions(path)`` then ``PcapSessionVectorizer().transform``,
  with the compiled loops and again with the pure-Python ones
  (``SKLEARN_FLOWSPECTRUM_PURE_PYTHON=1``, what users without a C compiler
  get), the two alternated; then the same packets written as pcapng
  (enhanced packet blocks, what Wireshark and dumpcap save);
* baseline: ``dpkt.pcap.Reader`` + ``dpkt.ethernet.Ethernet`` decode of every
  packet, grouping by the bidirectional 5-tuple and keeping the first 784
  bytes of frames per session (the straightforward implementation).

It prints packets/s of both (median over repeats), their ratio, and the peak
resident memory (``VmHWM``) of each subprocess for two file sizes, plus a
file of the larger size whose extra replays reuse the addresses (more packets,
the same sessions) to show that memory follows sessions, not file size.

Usage::

    python benchmarks/bench_read_sessions.py [--size-mb 200] [--repeats 3]

Measured on the 2-core AMD EPYC build machine (``--repeats 7
--dpkt-repeats 2``): at commit 97444eb, two runs back to back,
read_sessions + transform 1,048,038 and 1,060,360 packets/s, 24.2x and 23.9x
the dpkt loop (43,246 and 44,332 packets/s); pure-Python loops 585,173 and
568,739 packets/s (13.5x, 12.8x).  At commit 48b8d87: 1,149,169 packets/s,
23.4x (dpkt 49,145), the same packets as pcapng 1,174,414, pure-Python loops
673,775 (13.7x).  At commit 5957e99: 1,143,902 packets/s, 24.0x (dpkt
47,667), pcapng 1,022,702, pure-Python loops 562,805 (11.8x).  Memory of
read_sessions: 85 MB allocated at most for the
213 MB file, 101 MB for twice the packets of the same sessions, 165 MB for
twice the packets and sessions.
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NDPI = ROOT.parent / "shared" / "data" / "ndpi-pcaps" / "pcap"


def _ethernet_records():
    """Ethernet records of all nDPI captures as one classic-pcap body."""
    sys.path.insert(0, str(ROOT))
    from sklearn_flowspectrum import iter_records

    parts, frames_at, lens, ts = [], [], [], []
    pos = 0
    for name in sorted(os.listdir(NDPI)):
        try:
            for r in iter_records(NDPI / name):
                if r.linktype != 1:
                    continue
                frames_at.append(pos + 16)
                lens.append(len(r.frame))
                ts.append(r.ts_ns)
                parts.append(bytes(16) + r.frame)  # header filled per replay
                pos += 16 + len(r.frame)
        except ValueError:
            pass
    return b"".join(parts), np.array(frames_at), np.array(lens), np.array(ts)


def build_capture(path, size_mb, *, distinct_replays=None):
    """Write a classic little-endian Ethernet pcap of about ``size_mb`` MB.

    Replay ``k`` adds ``k`` to every IPv4 address (and to the last 32 bits of
    IPv6 addresses), so each replay is new sessions; with
    ``distinct_replays=m``, replay ``k`` reuses the addresses of replay
    ``k % m`` (more packets, no more sessions).  Returns the packet count
    and the number of replays.
    """
    body, at, lens, ts = _ethernet_records()
    base = np.frombuffer(body, np.uint8)
    a = base.copy()
    hdr = at - 16
    et = (a[at + 12].astype(np.int64) << 8) | a[at + 13]
    v4 = at[(et == 0x0800) & (lens >= 34)]
    v6 = at[(et == 0x86DD) & (lens >= 54)]
    hour = 3600 * 1_000_000_000
    caplen = lens.astype("<u4")
    n_target = int(size_mb * 1e6)
    written = packets = 0
    with open(path, "wb") as f:
        f.write(
            np.array([0xA1B2C3D4], "<u4").tobytes()
            + np.array([2, 4], "<u2").tobytes()
            + np.array([0, 0, 65535, 1], "<u4").tobytes()
        )
        k = 0
        while written < n_target:
            shift = k if distinct_replays is None else k % distinct_replays
            a[:] = base
            stamp = ts + k * hour  # each replay an hour after the previous
            sec, usec = stamp // 1_000_000_000, stamp % 1_000_000_000 // 1000
            h = np.stack(
                [sec.astype("<u4"), usec.astype("<u4"), caplen, caplen], axis=1
            )
            a[hdr[:, None] + np.arange(16)] = h.view(np.uint8).reshape(-1, 16)
            for offsets, first in ((v4, 26), (v6, 34)):
                for addr in (first, first + (4 if first == 26 else 16)):
                    idx = (offsets + addr)[:, None] + np.arange(4)
                    word = a[idx].view(">u4").ravel().astype(np.uint64)
                    a[idx] = (
                        ((word + shift) % 2**32)
                        .astype(">u4")
                        .view(np.uint8)
                        .reshape(-1, 4)
                    )
            f.write(a.tobytes())
            written += len(body)
            packets += len(at)
            k += 1
    return packets, k


def write_pcapng(pcap, path):
    """The packets of ``pcap`` as a pcapng file (one interface, microseconds)."""
    sys.path.insert(0, str(ROOT))
    from sklearn_flowspectrum import iter_records

    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack(
        "<I", 28
    )
    idb = struct.pack("<IIHHII", 1, 20, 1, 0, 0, 20)
    with open(path, "wb") as f:
        f.write(shb + idb)
        for r in iter_records(pcap):
            pad = -len(r.frame) % 4
            total = 32 + len(r.frame) + pad
            units = r.ts_ns // 1000
            f.write(
                struct.pack(
                    "<IIIIIII",
                    6,
                    total,
                    0,
                    units >> 32,
                    units & 0xFFFFFFFF,
                    len(r.frame),
                    r.orig_len,
                )  # fmt: skip
                + r.frame
                + bytes(pad)
                + struct.pack("<I", total)
            )


# -- the measured runs (each in its own subprocess) ------------------------------------


def _rss_mb():
    """Peak resident memory of this process so far, in MB.

    ``VmHWM`` where Linux has it: ``ru_maxrss`` would also count the parent's
    memory at the fork that started this process (Linux keeps that high-water
    mark across exec), here the parent's copy of the replayed capture.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_read(path, trace=False):
    sys.path.insert(0, str(ROOT))
    import tracemalloc

    from sklearn_flowspectrum import read_sessions

    base = _rss_mb()
    if trace:
        tracemalloc.start()
    t, c = time.perf_counter(), time.process_time()
    table = read_sessions(path)
    out = {
        "seconds": time.perf_counter() - t,
        "cpu": time.process_time() - c,
        "packets": table.attrs["report"][0]["packets"],
        "sessions": len(table),
        "frames": int(table["frames"].map(len).sum()),
        "import_mb": base,
    }
    if trace:
        out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    return out


def run_ours(path):
    sys.path.insert(0, str(ROOT))
    from sklearn_flowspectrum import PcapSessionVectorizer, _loops, read_sessions

    t, c = time.perf_counter(), time.process_time()
    table = read_sessions(path)
    t_read, c_read = time.perf_counter() - t, time.process_time() - c
    images = PcapSessionVectorizer().fit(table).transform(table)
    total, c_total = time.perf_counter() - t, time.process_time() - c
    report = table.attrs["report"][0]
    return {
        "seconds": total,
        "cpu": c_total,
        "read_seconds": t_read,
        "read_cpu": c_read,
        "packets": report["packets"],
        "sessions": len(table),
        "images": list(images.shape),
        "compiled": _loops.COMPILED,
    }


def run_dpkt(path):
    import dpkt

    t, c = time.perf_counter(), time.process_time()
    sessions = {}
    packets = 0
    with open(path, "rb") as f:
        for _, buf in dpkt.pcap.Reader(f):
            packets += 1
            try:
                eth = dpkt.ethernet.Ethernet(buf)
            except dpkt.UnpackError:  # frames shorter than their headers
                continue
            ip = eth.data
            if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
                continue
            l4 = ip.data
            if not isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                continue
            a, b = (ip.src, l4.sport), (ip.dst, l4.dport)
            key = (ip.p if isinstance(ip, dpkt.ip.IP) else ip.nxt, *sorted((a, b)))
            s = sessions.get(key)
            if s is None:
                s = sessions[key] = [bytearray(), 0]
            s[1] += 1
            if len(s[0]) < 784:
                s[0] += buf
    images = np.zeros((len(sessions), 784), dtype=np.uint8)
    for i, (data, _) in enumerate(sessions.values()):
        chunk = bytes(data[:784])
        images[i, : len(chunk)] = np.frombuffer(chunk, np.uint8)
    images = images.astype(np.float32) / 255
    return {
        "seconds": time.perf_counter() - t,
        "cpu": time.process_time() - c,
        "packets": packets,
        "sessions": len(sessions),
    }


def _child(which, path):
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    run = {
        "ours": run_ours,
        "read": run_read,
        "mem": lambda p: run_read(p, trace=True),
        "dpkt": run_dpkt,
    }[which]
    result = run(path)
    result["maxrss_mb"] = _rss_mb()
    print(json.dumps(result))


def _measure(which, path, pure_python=False):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if pure_python:  # the loops users without a C compiler get
        env["SKLEARN_FLOWSPECTRUM_PURE_PYTHON"] = "1"
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, str(path)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode:
        sys.exit(f"{which} run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dpkt-repeats", type=int, default=1)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    if not NDPI.is_dir():
        sys.exit(f"needs the nDPI captures in {NDPI}")
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "replay.pcap"
        t = time.perf_counter()
        n, replays = build_capture(small, args.size_mb)
        print(
            f"built {small.stat().st_size / 1e6:.0f} MB, {n} packets in "
            f"{time.perf_counter() - t:.1f} s"
        )
        ours, pure = [], []
        for _ in range(args.repeats):  # alternated, so both see the same noise
            ours.append(_measure("ours", small))
            pure.append(_measure("ours", small, pure_python=True))
        base = [_measure("dpkt", small) for _ in range(args.dpkt_repeats)]
        ng = small.with_suffix(".pcapng")
        write_pcapng(small, ng)
        ours_ng = [_measure("ours", ng) for _ in range(args.repeats)]
        ng.unlink()

        def med(runs, key):
            return statistics.median(r[key] for r in runs)

        print(f"sessions: ours {ours[0]['sessions']}, dpkt {base[0]['sessions']}")
        print(
            "one core; wall = elapsed seconds, cpu = CPU seconds of the process "
            "(the two differ when other processes share the core)"
        )
        head = f"{'':28s}{'wall s':>8s}{'pkt/s':>12s}{'cpu s':>8s}{'pkt/s':>12s}"
        print(head + f"{'peak MB':>9s}")
        rows = [
            ("read_sessions", "read_seconds", "read_cpu", ours),
            ("read_sessions + transform", "seconds", "cpu", ours),
            ("  the same, pure-Python loops", "seconds", "cpu", pure),
            ("  the same packets as pcapng", "seconds", "cpu", ours_ng),
            ("straightforward dpkt", "seconds", "cpu", base),
        ]
        for name, wall, cpu, runs in rows:
            w, c = med(runs, wall), med(runs, cpu)
            print(
                f"{name:28s}{w:8.2f}{n / w:12,.0f}{c:8.2f}{n / c:12,.0f}"
                f"{runs[0]['maxrss_mb']:9.0f}"
            )
        print(
            "ratio dpkt / ours (incl. transform): "
            f"wall {med(base, 'seconds') / med(ours, 'seconds'):.1f}x, "
            f"cpu {med(base, 'cpu') / med(ours, 'cpu'):.1f}x "
            f"(pure-Python loops: cpu {med(base, 'cpu') / med(pure, 'cpu'):.1f}x)"
        )
        if not ours[0]["compiled"]:
            print("NOTE: sklearn_flowspectrum._speedups is not built here")

        print()
        print(
            "memory of read_sessions alone: peak of the memory it allocates "
            "(tracemalloc, numpy included) and the process's peak RSS"
        )
        r = _measure("mem", small)
        _print_memory(small, n, r)
        small.unlink()
        for label, distinct in (
            ("same sessions as above, twice the packets", replays),
            ("twice the packets and sessions", None),
        ):
            big = Path(tmp) / "big.pcap"
            m, _ = build_capture(big, 2 * args.size_mb, distinct_replays=distinct)
            print(f"  ({label})")
            _print_memory(big, m, _measure("mem", big))
            big.unlink()


def _print_memory(path, n, r):
    print(
        f"  {path.stat().st_size / 1e6:5.0f} MB file, {n:>9,} packets, "
        f"{r['sessions']:>7,} sessions, {r['frames']:>8,} kept frames: "
        f"peak {r['traced_peak_mb']:4.0f} MB allocated, "
        f"peak RSS {r['maxrss_mb']:4.0f} MB (of which imports {r['import_mb']:.0f})"
    )


if __name__ == "__main__":
    main()
