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

import operator
import os
import stat
import struct

import numpy as np

from sklearn_flowspectrum._loops import slices, split
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
_MAX_WINDOW = 16 << 20  # a chain of records of up to about 1 MiB each


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
        when the file is not an uncompressed classic pcap (or not a regular
        file), cannot be read, or gives only one range.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a FIFO or a device: read once, front to back
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
    u32 = strided(buf, header.endian + "u4", n)  # a view: no copy
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
        here = pos[act]
        p = here + 16 + incl[here].astype(np.int64)
        at_end = base + p == size
        inside = p < m
        q = np.minimum(p, m - 1)
        gap = sec[q].astype(np.int64) - sec[here].astype(np.int64)
        close = np.abs(gap) <= MAX_GAP
        good = at_end | (inside & valid[q] & close)
        alive[act[~good]] = False
        ended[act[at_end]] = True
        pos[act] = p
    hits = cand[alive]
    return int(base + hits[0]) if len(hits) else None


_STATIC = ("protocol", "ip_version", "src_addr", "src_port", "dst_addr",
           "dst_port", "first_ts", "linktype")  # fmt: skip
_SUMS = ("packets", "bytes", "payload_bytes", "image_bytes")
_FRAMES = ("frames", "frame_ts_ns", "frame_orig_len")


def _expand(cols):
    """The kept frames of a range (``cols["kept"]``) as tuples per session;
    ``first_frame`` (per session, its first in the flat arrays), the frame
    lengths and payload lengths flat."""
    counts, data, lengths, ts, orig, plen = cols["kept"]
    bounds = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    out = dict(cols)
    out["frames"] = split(slices(data, starts, lengths), bounds)
    out["frame_ts_ns"] = split(ts.tolist(), bounds)
    out["frame_orig_len"] = split(orig.tolist(), bounds)
    out["flat"] = (bounds, lengths, plen)
    return out


def merge_ranges(parts, flows, keep_bytes, keep_packets):
    """The session columns of a file from those of its consecutive ranges.

    Parameters
    ----------
    parts : list of dict
        Per range, in file order, the columns of its sessions as
        ``SessionBuilder.finish`` gives them for a range: with
        ``image_bytes`` (the per-session sum of ``16 + caplen``) and the
        kept frames flat in ``kept`` (see ``SessionBuilder._flat_kept``),
        payload lengths included.
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
    parts = [_expand(cols) for cols in parts]
    sizes = [len(p["packets"]) for p in parts]
    offsets = np.cumsum([0, *sizes])
    cat = {}
    for k in (*_STATIC, *_SUMS, "last_ts"):
        chunks = [p[k] for p in parts]
        if isinstance(chunks[0], np.ndarray):
            cat[k] = np.concatenate(chunks)
        else:
            cat[k] = [x for c in chunks for x in c]
    # The sessions of the file: rows of all ranges with the same key, in
    # order of their first row (ranges in file order, sessions in order).
    keys = np.ascontiguousarray(np.concatenate([p["keys"] for p in parts]))
    rows = keys.view(np.dtype((np.void, keys.dtype.itemsize * keys.shape[1])))
    _, first, inverse = np.unique(rows.ravel(), return_index=True,
                                  return_inverse=True)  # fmt: skip
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    gid = rank[inverse.ravel()]
    first = first[order]  # per session, its first row
    n = len(first)
    out = {}
    for k in _STATIC:
        v = cat[k]
        out[k] = v[first] if isinstance(v, np.ndarray) else [v[i] for i in first]
    sums = {}
    for k in _SUMS:
        sums[k] = np.zeros(n, dtype=np.int64)
        np.add.at(sums[k], gid, cat[k])
    last_row = np.zeros(n, dtype=np.int64)  # per session, its last range's row
    np.maximum.at(last_row, gid, np.arange(len(gid)))
    last_ts = np.asarray(cat["last_ts"])[last_row]
    frames = {}
    for k in _FRAMES:
        flat = [x for p in parts for x in p[k]]
        frames[k] = (
            list(operator.itemgetter(*first.tolist())(flat))
            if n > 1
            else [flat[i] for i in first.tolist()]
        )
    # Rows that continue a session of an earlier range: replay the budgets.
    later = np.ones(len(gid), dtype=bool)
    later[first] = False
    kb, kp = keep_bytes, keep_packets
    img = np.zeros(n, dtype=np.int64)
    pay = np.zeros(n, dtype=np.int64)
    cnt = np.zeros(n, dtype=np.int64)
    for r, p in enumerate(parts):
        lo, hi = offsets[r], offsets[r + 1]
        own = gid[lo:hi]
        cont = np.flatnonzero(later[lo:hi])
        # Sessions whose budgets the earlier ranges met keep nothing more.
        g = own[cont]
        cont = cont[(24 + img[g] < kb) | (pay[g] < kb) | (cnt[g] < kp)]
        bounds, lengths, plen = p["flat"]
        for i, g in zip(cont.tolist(), own[cont].tolist()):
            f_img, f_pay, f_cnt = int(img[g]), int(pay[g]), int(cnt[g])
            n_keep = 0
            a, b = int(bounds[i]), int(bounds[i + 1])
            for length, payload in zip(lengths[a:b].tolist(), plen[a:b].tolist()):
                if not (24 + f_img < kb or f_pay < kb or f_cnt < kp):
                    break
                n_keep += 1
                f_img += 16 + length
                f_pay += payload
                f_cnt += 1
            if n_keep:
                for k in _FRAMES:
                    frames[k][g] = frames[k][g] + tuple(p[k][i][:n_keep])
        # The totals after this range, for the ranges after it.
        np.add.at(img, own, p["image_bytes"])
        np.add.at(pay, own, p["payload_bytes"])
        np.add.at(cnt, own, p["packets"])
    for k in ("packets", "bytes", "payload_bytes"):
        out[k] = sums[k]
    out["last_ts"] = last_ts
    out.update(frames)
    return out
