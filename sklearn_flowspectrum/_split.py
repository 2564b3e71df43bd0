"""One big classic pcap on several cores: byte ranges of whole records.

:func:`pcap_ranges` cuts a classic pcap file into byte ranges that start at
record headers, found by resynchronising at each cut: the first offset whose
16 bytes are a plausible record header (fraction of a second below one
second, ``incl_len`` at least 1, within the snap length and not above
``orig_len``) followed by a chain of plausible headers less than a week
apart.  Each range is then read on its
own (``read_sessions`` does that in parallel) and :func:`merge_ranges` folds
their sessions together into the sessions of the whole file.

A plausible chain is not a proof: the readers prove it.  The first range
starts at the first record (byte 24) and each range must end exactly where
the next one starts, with no record running past it; by induction every
cut is then a true record boundary.  A range that does not end so (or any
error in a range) makes ``read_sessions`` read the file whole, serially,
which also reports a corrupt file exactly as a serial read does.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import os
import struct

import numpy as np

from sklearn_flowspectrum._pcap import PcapHeader, record_limit
from sklearn_flowspectrum._protocols import (
    LINKTYPE_MASK,
    PCAP_GLOBAL_LEN,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
)
from sklearn_flowspectrum._records import strided

__all__ = ["merge_ranges", "pcap_ranges"]

CHAIN = 8  # headers after a candidate that must be plausible too
MAX_ORIG_LEN = 1 << 20  # a larger wire length is not believed
MAX_GAP = 7 * 86400  # seconds between records of a chain, at most
_WINDOW = 1 << 20  # bytes searched after a cut, doubled while nothing is found
_MAX_WINDOW = 64 << 20


def _pcap_header(head):
    """The :class:`PcapHeader` of a classic pcap's first 24 bytes, or None."""
    if len(head) < PCAP_GLOBAL_LEN:
        return None
    for endian in "<>":
        (magic,) = struct.unpack(endian + "I", head[:4])
        if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            _, _, _, _, snaplen, linktype = struct.unpack(endian + "HHiIII", head[4:])
            return PcapHeader(
                endian, magic == PCAP_MAGIC_NS, snaplen, linktype & LINKTYPE_MASK
            )
    return None


def pcap_ranges(path, split_size):
    """Byte ranges of whole records that cover a classic pcap file.

    Parameters
    ----------
    path : str or path-like
        A capture file.
    split_size : int
        Bytes per range, about: each cut moves on to the next record header.

    Returns
    -------
    ranges : list of (int, int) or None
        ``(start, end)`` file offsets, the first starting at byte 24 and each
        ending where the next starts, the last at the end of the file; None
        when the file is not an uncompressed classic pcap, cannot be read,
        or gives only one range.
    """
    try:
        with open(path, "rb") as f:
            header = _pcap_header(f.read(PCAP_GLOBAL_LEN))
            if header is None:  # pcapng, compressed, or not a capture
                return None
            size = os.fstat(f.fileno()).st_size
            cuts = [PCAP_GLOBAL_LEN]
            k = 0
            while True:
                k += 1
                target = PCAP_GLOBAL_LEN + k * split_size
                if target >= size:
                    break
                if target <= cuts[-1]:
                    continue  # the previous cut moved past this one
                at = _resync(f, target, size, header, split_size)
                if at is None or at >= size:
                    break
                cuts.append(at)
    except OSError:
        return None
    if len(cuts) < 2:
        return None
    cuts.append(size)
    return list(zip(cuts[:-1], cuts[1:]))


def _resync(f, start, size, header, split_size):
    """The first offset at or after ``start`` where a plausible chain of
    record headers begins, or None."""
    window = min(_WINDOW, max(1 << 16, 2 * split_size))
    while True:
        f.seek(start)
        buf = f.read(window)
        found = _first_chain(buf, start, size, header)
        if found is not None or start + len(buf) >= size or window >= _MAX_WINDOW:
            return found
        window *= 2


def _first_chain(buf, base, size, header):
    n = len(buf)
    m = n - 15  # offsets whose 16 header bytes are all in buf
    if m <= 0:
        return None
    u32 = strided(buf, header.endian + "u4", n).astype(np.int64)
    sec, frac = u32[:m], u32[4 : 4 + m]
    incl, orig = u32[8 : 8 + m], u32[12 : 12 + m]
    limit = record_limit(header)
    if 0 < header.snaplen < limit:
        limit = header.snaplen
    valid = (
        (frac < (1_000_000_000 if header.nanosecond else 1_000_000))
        & (incl >= 1)  # runs of zero bytes are no chain of records
        & (incl <= limit)
        & (incl <= orig)
        & (orig <= MAX_ORIG_LEN)
    )
    cand = np.flatnonzero(valid)
    pos = cand.copy()
    alive = np.ones(len(cand), dtype=bool)
    ended = np.zeros(len(cand), dtype=bool)  # the chain reached the file's end
    for _ in range(CHAIN):
        act = np.flatnonzero(alive & ~ended)
        if not len(act):
            break
        p = pos[act] + 16 + incl[pos[act]]
        at_end = base + p == size
        inside = p < m
        q = np.minimum(p, m - 1)
        close = np.abs(sec[q] - sec[pos[act]]) <= MAX_GAP
        good = at_end | (inside & valid[q] & close)
        alive[act[~good]] = False
        ended[act[at_end]] = True
        pos[act] = p
    hits = cand[alive]
    return int(base + hits[0]) if len(hits) else None


def _session_keys(cols, flows):
    ends = zip(
        cols["ip_version"].tolist(),
        cols["protocol"],
        cols["src_addr"],
        cols["src_port"].tolist(),
        cols["dst_addr"],
        cols["dst_port"].tolist(),
    )
    if flows:
        return [(v, p, a, ap, b, bp) for v, p, a, ap, b, bp in ends]
    return [
        (v, p, a, ap, b, bp) if (a, ap) <= (b, bp) else (v, p, b, bp, a, ap)
        for v, p, a, ap, b, bp in ends
    ]


_STATIC = ("protocol", "ip_version", "src_addr", "src_port", "dst_addr",
           "dst_port", "first_ts", "linktype")  # fmt: skip
_SUMS = ("packets", "bytes", "payload_bytes", "image_bytes")
_FRAMES = ("frames", "frame_ts_ns", "frame_orig_len", "frame_payload_len")


def merge_ranges(parts, flows, keep_bytes, keep_packets):
    """The session columns of a file from those of its consecutive ranges.

    Parameters
    ----------
    parts : list of dict
        Per range, in file order, the columns of its sessions as
        ``SessionBuilder.finish`` gives them, with ``image_bytes`` (the
        per-session sum of ``16 + caplen``) and ``frame_payload_len`` (the
        payload length of each kept frame).
    flows : bool
        Sessions are one-directional flows.
    keep_bytes, keep_packets : int
        The budgets of kept frames (see ``read_sessions``).

    Returns
    -------
    cols : dict
        The columns of the file's sessions, in order of their first packet,
        exactly those of a serial read.

    Notes
    -----
    A session seen in several ranges takes its first range's static columns
    (orientation, first time, link type), its last range's ``last_ts`` and
    the sums of its counters.  The frames a range kept are those of a
    session whose budgets were not met before them counting that range only:
    as the budgets only fill up, the frames the whole file keeps are a
    prefix of those, found by replaying the budget rule from the session's
    totals over the earlier ranges.
    """
    total = sum(len(p["packets"]) for p in parts)
    index = {}
    static = {k: [] for k in _STATIC}
    sums = {k: np.zeros(total, dtype=np.int64) for k in _SUMS}
    last_ts = np.zeros(total, dtype=np.float64)
    frames = {k: [] for k in _FRAMES}
    kb, kp = keep_bytes, keep_packets
    for cols in parts:
        n_before = len(index)
        keys = _session_keys(cols, flows)
        gid = np.fromiter(
            (index.setdefault(k, len(index)) for k in keys), np.int64, len(keys)
        )
        new = gid >= n_before
        take = np.flatnonzero(new)
        for k in _STATIC:
            v = cols[k]
            static[k].append(v[take] if isinstance(v, np.ndarray) else
                             [v[i] for i in take.tolist()])  # fmt: skip
        for k in _FRAMES:
            frames[k].extend(cols[k][i] for i in take.tolist())
        old = np.flatnonzero(~new)
        img, pay, cnt = sums["image_bytes"], sums["payload_bytes"], sums["packets"]
        for i, g in zip(old.tolist(), gid[old].tolist()):
            f_img, f_pay, f_cnt = int(img[g]), int(pay[g]), int(cnt[g])
            n_keep = 0
            for frame, plen in zip(cols["frames"][i], cols["frame_payload_len"][i]):
                if not (24 + f_img < kb or f_pay < kb or f_cnt < kp):
                    break
                n_keep += 1
                f_img += 16 + len(frame)
                f_pay += plen
                f_cnt += 1
            if n_keep:
                for k in _FRAMES:
                    frames[k][g] = frames[k][g] + tuple(cols[k][i][:n_keep])
        for k in _SUMS:
            np.add.at(sums[k], gid, cols[k])
        last_ts[gid] = cols["last_ts"]
    n = len(index)
    out = {}
    for k in _STATIC:
        chunks = static[k]
        if isinstance(chunks[0], np.ndarray):
            out[k] = np.concatenate(chunks)
        else:
            out[k] = [x for c in chunks for x in c]
    for k in ("packets", "bytes", "payload_bytes"):
        out[k] = sums[k][:n]
    out["last_ts"] = last_ts[:n]
    for k in ("frames", "frame_ts_ns", "frame_orig_len"):
        out[k] = frames[k]
    return out
