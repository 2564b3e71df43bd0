"""Group the packets of captures into sessions (or flows), clean and account.

:func:`read_sessions` is the entry point.  Per file it streams batches of
packets from :mod:`sklearn_flowspectrum._capture`, decodes them (numpy, with
:func:`~sklearn_flowspectrum._layers.dissect` for the odd ones) and folds
them into per-session state; only the first frames of each session are kept
as Python objects, so memory grows with the number of sessions, not with the
size of the file.  ``engine="python"`` runs the plain reference
implementation (one record and one dict look-up at a time) that the tests
compare the fast path against.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import gc
import ipaddress
import numbers
import operator
import os
import socket
import warnings
from itertools import chain
from typing import NamedTuple

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from joblib.parallel import get_active_backend

from sklearn_flowspectrum._capture import (
    DEFAULT_CHUNK_SIZE,
    CaptureError,
    CaptureWarning,
    decode_batch,
    open_capture,
)
from sklearn_flowspectrum._growing import GrowingArray, GrowingRows
from sklearn_flowspectrum._layers import SKIP_REASONS, dissect
from sklearn_flowspectrum._loops import (
    SessionIndex,
    ipv4_strings,
    ipv6_strings,
    slices,
    split,
)
from sklearn_flowspectrum._protocols import (
    CAPTURE_SUFFIXES,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TRANSPORT_NAMES,
)
from sklearn_flowspectrum._session_stats import (
    STAT_COLUMNS,
    BatchStatistics,
    PacketStatistics,
)
from sklearn_flowspectrum._sources import (
    COMPRESSED_SUFFIXES,
    capture_suffixes,
    check_source,
    is_stream,
    source_name,
)
from sklearn_flowspectrum._split import merge_ranges, pcap_ranges
from sklearn_flowspectrum._validation import check_n_jobs

__all__ = ["SessionReport", "read_sessions"]

REPORT_COLUMNS = (
    "file",
    "format",
    "packets",
    "used",
    *SKIP_REASONS,
    "retransmissions",
    "empty_sessions",
    "duplicate_sessions",
    "dropped_packets",
    "sessions",
    "error",
)
_ON_ERROR = ("raise", "warn", "ignore")
CHUNK_SIZE = DEFAULT_CHUNK_SIZE  # bytes of classic pcap read at once
KEEP_BYTES = 784  # default budget of kept bytes: one 28x28 image


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while building many small objects.

    Reading creates hundreds of thousands of tuples and bytes objects and no
    reference cycles; the collector would rescan them again and again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_DUPLICATES = ("frames", "payload")
_TCP_SYN_FIN = 0x03


# ---------------------------------------------------------------------------
# Fast path: per-session state in numpy arrays


def session_keys(ver, proto, s1, s2, d1, d2, sport, dport, flows):
    """The packed 5-tuple keys of packets, ``(n, 5)`` uint64, and whether
    each packet's endpoints were swapped into the canonical orientation
    (None for flows, which keep their direction)."""
    sp = sport.astype(np.uint64)
    dp = dport.astype(np.uint64)
    meta = (ver.astype(np.uint64) << np.uint64(48)) | (
        proto.astype(np.uint64) << np.uint64(32)
    )
    keys = np.empty((len(sp), 5), dtype=np.uint64)
    if flows:
        swap = None
        keys[:, 0], keys[:, 1], keys[:, 2], keys[:, 3] = s1, s2, d1, d2
        keys[:, 4] = meta | (sp << np.uint64(16)) | dp
    else:
        # Canonical orientation of the endpoint pair: any total order works.
        swap = (s1 > d1) | ((s1 == d1) & ((s2 > d2) | ((s2 == d2) & (sp > dp))))
        keys[:, 0] = np.where(swap, d1, s1)
        keys[:, 1] = np.where(swap, d2, s2)
        keys[:, 2] = np.where(swap, s1, d1)
        keys[:, 3] = np.where(swap, s2, d2)
        keys[:, 4] = (
            meta | (np.where(swap, dp, sp) << np.uint64(16)) | np.where(swap, sp, dp)
        )
    return keys, swap


class SessionBuilder:
    """Fold decoded batches into sessions (vectorised over each batch).

    Per-session counters live in growing numpy arrays indexed by session id;
    a dict maps the packed 5-tuple key of each session to its id.  The kept
    frames are collected flat (session id, frame) and grouped at the end.
    """

    def __init__(
        self,
        flows,
        keep_bytes,
        keep_packets,
        drop_retransmissions,
        statistics=False,
        timeouts=None,
    ):
        self.flows = flows
        self.keep_bytes = keep_bytes
        self.keep_packets = keep_packets
        self.drop_retx = drop_retransmissions
        self.stats = BatchStatistics() if statistics else None
        self.index = SessionIndex()
        # (idle, active) in ns, or None: a 5-tuple is one session.
        self.timeouts = timeouts
        if timeouts is not None:
            self.tuple_last_ts = GrowingArray(np.int64, -1)  # per 5-tuple
            self.tuple_session = GrowingArray(np.int64, -1)
            self.tuple_keys = GrowingRows(5, np.uint64, 0)
            self.start_ts = GrowingArray(np.int64)  # per session
            self.session_tuple = GrowingArray(np.int64, -1)
        self.n = 0
        self.packets_read = 0
        self.skips = np.zeros(len(SKIP_REASONS) + 1, dtype=np.int64)
        self.retransmissions = 0
        self.retx_seen = set()
        self.count = GrowingArray(np.int64)
        self.bytes = GrowingArray(np.int64)
        self.payload = GrowingArray(np.int64)
        self.image = GrowingArray(np.int64)
        self.last_ts = GrowingArray(np.int64)
        self.done = GrowingArray(bool, False)
        self.static = []  # per batch: arrays describing its new sessions
        self.kept_gid = []
        self.kept_frames = []
        self.kept_ts = []
        self.kept_len = []
        # Payload lengths of the kept frames, for merging byte ranges.
        self.kept_plen = None

    def add(self, batch, dec):
        self.packets_read += len(dec.skip)
        self.skips += np.bincount(dec.skip, minlength=len(self.skips))
        ok = dec.idx
        if not len(ok):
            return
        s1, s2, d1, d2 = dec.src_hi, dec.src_lo, dec.dst_hi, dec.dst_lo
        keys, swap = session_keys(
            dec.ip_version, dec.proto, s1, s2, d1, d2, dec.sport, dec.dport, self.flows
        )
        # Local groups, their first packets and their session ids (new
        # sessions numbered in order of their first packet).
        codes, first, gmap = self.index.assign(keys)
        n_old = self.n
        if self.timeouts is None:
            self.n = len(self.index)
        else:
            self.tuple_keys.ensure(len(self.index))
            self.tuple_keys.a[gmap] = keys[first]
            codes, first, gmap = self._split_by_time(codes, gmap, batch.ts_ns[ok])
        new = np.flatnonzero(gmap >= n_old)
        new = new[np.argsort(gmap[new], kind="stable")]  # in session order
        if len(new):
            f = first[new]
            self.static.append(
                (
                    dec.ip_version[f],
                    dec.proto[f],
                    s1[f],
                    s2[f],
                    d1[f],
                    d2[f],
                    dec.sport[f],
                    dec.dport[f],
                    batch.linktype[ok[f]],
                    batch.ts_ns[ok[f]],
                )
            )
            for g in (self.count, self.bytes, self.payload, self.image, self.done):
                g.ensure(self.n)
            self.last_ts.ensure(self.n)

        pay, pay_end = dec.payload, dec.payload_end
        l4, proto, orient = dec.l4, dec.proto, swap
        new_swap = None if swap is None else swap[first[new]]
        if self.drop_retx:
            keep = self._retransmissions(batch, dec, gmap[codes], swap)
            if keep is not None:
                ok, codes, pay, pay_end = (
                    ok[keep],
                    codes[keep],
                    pay[keep],
                    pay_end[keep],
                )
                l4, proto = l4[keep], proto[keep]
                orient = None if swap is None else swap[keep]
        plen = pay_end - pay
        if self.stats is not None:
            self._statistics(batch, ok, codes, gmap, gmap[new], new_swap, orient,
                             plen, l4, proto)  # fmt: skip

        m = len(codes)
        n_local = len(gmap)
        cap = batch.caplen[ok]
        count_before = self.count.a[gmap]
        in_batch = np.bincount(codes, minlength=n_local)
        self.count.a[gmap] += in_batch
        self.bytes.a[gmap] += _isum(codes, batch.orig_len[ok], n_local)
        pay_before = self.payload.a[gmap]
        img_before = self.image.a[gmap]
        self.payload.a[gmap] += _isum(codes, plen, n_local)
        self.image.a[gmap] += _isum(codes, cap + 16, n_local)
        last = np.zeros(n_local, dtype=np.int64)
        np.maximum.at(last, codes, np.arange(m))
        # Sessions whose packets here were all dropped retransmissions keep
        # their last time.
        seen = in_batch > 0
        self.last_ts.a[gmap[seen]] = batch.ts_ns[ok[last[seen]]]

        # Frames to keep: those of sessions whose budgets were not yet all
        # met before the packet (the USTC image, the concatenated payload and
        # the number of frames).
        open_ = ~self.done.a[gmap]
        cand = np.flatnonzero(open_[codes])
        if not len(cand):
            return
        kb, kp = self.keep_bytes, self.keep_packets
        cc = codes[cand]
        order = np.argsort(cc, kind="stable")
        cc = cc[order]
        idx = cand[order]
        img = cap[idx] + 16
        pl = plen[idx]
        head = np.ones(len(cc), dtype=bool)
        head[1:] = cc[1:] != cc[:-1]
        grp = np.cumsum(head) - 1
        starts = np.flatnonzero(head)
        cs_img = np.cumsum(img) - img
        cs_pl = np.cumsum(pl) - pl
        img_prior = img_before[cc] + cs_img - cs_img[starts][grp]
        pl_prior = pay_before[cc] + cs_pl - cs_pl[starts][grp]
        count_prior = count_before[cc] + np.arange(len(cc)) - starts[grp]
        kept = idx[(24 + img_prior < kb) | (pl_prior < kb) | (count_prior < kp)]
        kept.sort()
        pk = ok[kept]
        self.kept_gid.append(gmap[codes[kept]])
        self.kept_frames.extend(slices(batch.data, batch.start[pk], cap[kept]))
        self.kept_ts.append(batch.ts_ns[pk])
        self.kept_len.append(batch.orig_len[pk])
        if self.kept_plen is not None:
            self.kept_plen.append(plen[kept])
        self.done.a[gmap] = (
            (24 + self.image.a[gmap] >= kb)
            & (self.payload.a[gmap] >= kb)
            & (self.count.a[gmap] >= kp)
        )

    def _split_by_time(self, codes, tuples, ts):
        """Cut the packets of each 5-tuple into sessions by the timeouts.

        ``tuples`` maps the batch's groups to 5-tuple ids.  Returns the
        batch's sessions in the form of ``SessionIndex.assign``: each
        packet's local session, each local session's first packet and its
        session id (new ones numbered on from ``self.n`` in order of their
        first packet).
        """
        idle, active = self.timeouts
        self.tuple_last_ts.ensure(len(self.index))
        self.tuple_session.ensure(len(self.index))
        tid = tuples[codes]
        order = np.argsort(tid, kind="stable")
        t, when = tid[order], ts[order]
        m = len(t)
        head = np.ones(m, dtype=bool)
        head[1:] = t[1:] != t[:-1]
        prev = np.empty(m, dtype=np.int64)
        prev[1:] = when[:-1]
        prev[head] = self.tuple_last_ts.a[t[head]]
        current = np.full(m, -1, dtype=np.int64)
        current[head] = self.tuple_session.a[t[head]]
        cut = head & (current < 0)
        if idle is not None:
            cut |= (prev >= 0) & (when - prev > idle)
        if active is not None:
            run = np.cumsum(head | cut) - 1
            starts = np.flatnonzero(head | cut)
            begin = when[starts].copy()
            go_on = ~cut[starts]  # runs that continue an open session
            begin[go_on] = self.start_ts.a[current[starts[go_on]]]
            late = np.flatnonzero(when - begin[run] > active)
            # Each late run is walked in order: a cut restarts its clock.
            for r in np.unique(run[late]).tolist():
                lo = starts[r]
                hi = starts[r + 1] if r + 1 < len(starts) else m
                since = begin[r]
                for i in range(lo, hi):
                    if when[i] - since > active:
                        cut[i] = True
                        since = when[i]
        opens = head | cut
        seg = np.cumsum(opens) - 1
        seg_start = np.flatnonzero(opens)
        is_new = cut[seg_start]
        first = order[seg_start]
        sid = np.empty(len(seg_start), dtype=np.int64)
        sid[~is_new] = current[seg_start[~is_new]]
        new_first = first[is_new]
        rank = np.empty(len(new_first), dtype=np.int64)
        rank[np.argsort(new_first, kind="stable")] = np.arange(len(new_first))
        sid[is_new] = self.n + rank
        self.n += len(new_first)
        self.start_ts.ensure(self.n)
        self.start_ts.a[sid[is_new]] = ts[new_first]
        self.session_tuple.ensure(self.n)
        self.session_tuple.a[sid[is_new]] = t[seg_start[is_new]]
        local = np.empty(m, dtype=np.int64)
        local[order] = seg
        tail = np.ones(m, dtype=bool)
        tail[:-1] = t[1:] != t[:-1]
        self.tuple_last_ts.a[t[tail]] = when[tail]
        self.tuple_session.a[t[tail]] = sid[seg[tail]]
        return local, first, sid

    def _statistics(self, batch, ok, codes, gmap, new_sids, new_swap, swap, plen,
                    l4, proto):  # fmt: skip
        """Feed the flow statistics (before the session counters move on)."""
        sid = gmap[codes]
        order = np.argsort(codes, kind="stable")
        rank = np.empty(len(codes), dtype=np.int64)
        head = np.ones(len(codes), dtype=bool)
        head[1:] = codes[order][1:] != codes[order][:-1]
        grp_start = np.flatnonzero(head)
        within = np.arange(len(codes)) - grp_start[np.cumsum(head) - 1]
        rank[order] = within
        rank += self.count.a[sid]
        flags = np.zeros(len(ok), dtype=np.int64)
        tcp = proto == IPPROTO_TCP
        if tcp.any():
            a = np.frombuffer(batch.data, np.uint8)
            flags[tcp] = a[l4[tcp] + 13]
        if new_swap is None and swap is not None:
            new_swap = np.zeros(0, dtype=bool)
        self.stats.add(
            sid,
            new_sids,
            np.zeros(len(new_sids), bool) if new_swap is None else new_swap,
            swap,
            batch.ts_ns[ok],
            batch.orig_len[ok],
            plen,
            flags,
            rank,
        )

    def _retransmissions(self, batch, dec, gid, swap):
        """Mask of the packets to keep; drops repeated TCP segments."""
        tcp = np.flatnonzero(dec.proto == IPPROTO_TCP)
        if not len(tcp):
            return None
        a = np.frombuffer(batch.data, np.uint8)
        l4 = dec.l4[tcp]
        flags = a[l4 + 13] & _TCP_SYN_FIN
        plen = dec.payload_end[tcp] - dec.payload[tcp]
        sel = (plen > 0) | (flags != 0)
        cand, l4, flags = tcp[sel], l4[sel], flags[sel]
        if not len(cand):
            return None
        seq = (
            (a[l4 + 4].astype(np.int64) << 24)
            | (a[l4 + 5].astype(np.int64) << 16)
            | (a[l4 + 6].astype(np.int64) << 8)
            | a[l4 + 7]
        )
        direction = np.zeros(len(cand), bool) if swap is None else swap[cand]
        data = memoryview(batch.data)
        seen = self.retx_seen
        drop = []
        for i, g, w, q, fl, p, e in zip(
            cand.tolist(),
            gid[cand].tolist(),
            direction.tolist(),
            seq.tolist(),
            flags.tolist(),
            dec.payload[cand].tolist(),
            dec.payload_end[cand].tolist(),
        ):
            key = (g, w, q, fl, e - p, hash(data[p:e].tobytes()))
            if key in seen:
                drop.append(i)
            else:
                seen.add(key)
        if not drop:
            return None
        self.retransmissions += len(drop)
        keep = np.ones(len(dec.idx), dtype=bool)
        keep[drop] = False
        return keep

    def finish(self):
        n = self.n
        if self.static:
            ver, proto, s1, s2, d1, d2, sport, dport, lt, ts = (
                np.concatenate(x) for x in zip(*self.static)
            )
        else:
            ver = proto = sport = dport = lt = ts = np.zeros(0, dtype=np.int64)
            s1 = s2 = d1 = d2 = np.zeros(0, dtype=np.uint64)
        stats = {}
        if self.stats is not None:
            self.stats.grow(max(n, self.stats.n))
            stats = self.stats.columns(n, ts, self.last_ts.a[:n])
        if self.kept_plen is None:
            frames, frame_ts, frame_len = _group_kept(
                n, self.kept_gid, self.kept_frames, self.kept_ts, self.kept_len
            )
            kept = {
                "frames": frames,
                "frame_ts_ns": frame_ts,
                "frame_orig_len": frame_len,
            }
        else:
            # A byte range, for merge_ranges: the kept frames flat (one
            # buffer, cheap to send from a worker), with what carries the
            # budgets across ranges.
            kept = {
                "image_bytes": self.image.a[:n].copy(),
                "kept": self._flat_kept(),
                "keys": session_keys(
                    ver, proto, s1, s2, d1, d2, sport, dport, self.flows
                )[0],
            }
        return (
            stats
            | kept
            | {
                "protocol": np.where(
                    proto == IPPROTO_TCP,
                    TRANSPORT_NAMES[IPPROTO_TCP],
                    TRANSPORT_NAMES[IPPROTO_UDP],
                ).astype(object),
                "ip_version": ver.astype(np.int64),
                "src_addr": _address_strings(ver, s1, s2),
                "src_port": sport.astype(np.int64),
                "dst_addr": _address_strings(ver, d1, d2),
                "dst_port": dport.astype(np.int64),
                "first_ts": ts / 1e9,
                "last_ts": self.last_ts.a[:n] / 1e9,
                "packets": self.count.a[:n].copy(),
                "bytes": self.bytes.a[:n].copy(),
                "payload_bytes": self.payload.a[:n].copy(),
                "linktype": lt.astype(np.int64),
            }
        )

    def _flat_kept(self):
        """The kept frames by session: ``(counts, data, lengths, ts_ns,
        orig_len, payload_len)``, ``data`` all frames end to end."""
        n = self.n
        if not self.kept_gid:
            empty = np.zeros(0, dtype=np.int64)
            return np.zeros(n, dtype=np.int64), b"", empty, empty, empty, empty
        gid = np.concatenate(self.kept_gid)
        order = np.argsort(gid, kind="stable")
        frames = self.kept_frames
        if len(order) > 1:
            frames = operator.itemgetter(*order.tolist())(frames)
        lengths = np.fromiter(map(len, frames), np.int64, len(order))
        return (
            np.bincount(gid, minlength=n),
            b"".join(frames),
            lengths,
            np.concatenate(self.kept_ts)[order],
            np.concatenate(self.kept_len)[order],
            np.concatenate(self.kept_plen)[order],
        )


def _group_kept(n, gids, frames, ts, lens):
    """Tuples of the kept frames (and their times and lengths) per session."""
    if not gids:
        empty = [()] * n
        return empty, list(empty), list(empty)
    gid = np.concatenate(gids)
    order = np.argsort(gid, kind="stable")
    bounds = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(gid, minlength=n), out=bounds[1:])
    # Reordered by session, whose runs are the per-session tuples.
    if len(order) > 1:
        fr = operator.itemgetter(*order.tolist())(frames)
    else:
        fr = tuple(frames)
    return (
        split(fr, bounds),
        split(np.concatenate(ts)[order].tolist(), bounds),
        split(np.concatenate(lens)[order].tolist(), bounds),
    )


def _address_strings(ver, hi, lo):
    """Text form of the addresses (IPv4 in ``hi``; IPv6 as two halves)."""
    out = np.empty(len(ver), dtype=object)
    v4 = ver == 4
    if v4.any():
        u, inv = np.unique(hi[v4], return_inverse=True)
        out[v4] = np.array(ipv4_strings(u), dtype=object)[inv.ravel()]
    if (~v4).any():
        pairs = np.stack([hi[~v4], lo[~v4]], axis=1).astype(np.uint64)
        u, inv = np.unique(pairs, axis=0, return_inverse=True)
        text = ipv6_strings(u[:, 0], u[:, 1])
        out[~v4] = np.array(text, dtype=object)[inv.ravel()]
    return out


def _isum(codes, values, n):
    """Exact integer group sums (float64 weights are exact below 2**53)."""
    return np.bincount(codes, weights=values, minlength=n).astype(np.int64)


_ADDR_CACHE = {}


def _address(raw, version):
    text = _ADDR_CACHE.get((version, raw))
    if text is None:
        if version == 4:
            text = socket.inet_ntop(socket.AF_INET, raw[:4])
        else:
            text = str(ipaddress.IPv6Address(raw))
        if len(_ADDR_CACHE) > 1 << 20:
            _ADDR_CACHE.clear()
        _ADDR_CACHE[(version, raw)] = text
    return text


# ---------------------------------------------------------------------------
# Reference path: one packet at a time


class _ReferenceBuilder:
    """The plain implementation of the session semantics (see read_sessions)."""

    def __init__(
        self,
        flows,
        keep_bytes,
        keep_packets,
        drop_retransmissions,
        statistics=False,
        timeouts=None,
    ):
        self.flows = flows
        self.keep_bytes = keep_bytes
        self.keep_packets = keep_packets
        self.drop_retx = drop_retransmissions
        self.stats = PacketStatistics() if statistics else None
        self.idle, self.active = timeouts if timeouts is not None else (None, None)
        self.rows = []  # every session, in order of its first packet
        self.sessions = {}  # the open session of each 5-tuple
        self.last_seen = {}  # the time of each 5-tuple's last packet
        self.packets_read = 0
        self.skip_counts = dict.fromkeys(SKIP_REASONS, 0)
        self.retransmissions = 0
        self.retx_seen = set()

    def add(self, rec):
        self.packets_read += 1
        d = dissect(rec.frame, rec.linktype)
        if d.skip is not None:
            self.skip_counts[d.skip] += 1
            return
        a, b = (d.src, d.sport), (d.dst, d.dport)
        ends = (a, b) if self.flows or a <= b else (b, a)
        key = (d.ip_version, d.proto, *ends)
        s = self.sessions.get(key)
        last_seen = self.last_seen.get(key)
        self.last_seen[key] = rec.ts_ns
        if s is not None and (
            (self.idle is not None and rec.ts_ns - last_seen > self.idle)
            or (self.active is not None and rec.ts_ns - s["first_ts"] > self.active)
        ):
            s = None  # the timeout ends the session: this packet starts one
        if s is None:
            s = self.sessions[key] = {
                "ip_version": d.ip_version,
                "proto": d.proto,
                "src": a,
                "dst": b,
                "linktype": rec.linktype,
                "first_ts": rec.ts_ns,
                "packets": 0,
                "bytes": 0,
                "payload": 0,
                "image": 0,
                "frames": [],
                "frame_ts": [],
                "frame_len": [],
                "stats": None if self.stats is None else self.stats.new_session(),
                "index": len(self.rows),
            }
            self.rows.append(s)
        payload = rec.frame[d.payload : d.payload_end]
        if self.drop_retx and d.proto == IPPROTO_TCP:
            flags = rec.frame[d.l4 + 13] & _TCP_SYN_FIN
            if payload or flags:
                seq = int.from_bytes(rec.frame[d.l4 + 4 : d.l4 + 8], "big")
                rkey = (s["index"], a == s["src"], seq, flags, payload)
                if rkey in self.retx_seen:
                    self.retransmissions += 1
                    return
                self.retx_seen.add(rkey)
        kb = self.keep_bytes
        if (
            24 + s["image"] < kb
            or s["payload"] < kb
            or s["packets"] < self.keep_packets
        ):
            s["frames"].append(rec.frame)
            s["frame_ts"].append(rec.ts_ns)
            s["frame_len"].append(rec.orig_len)
        if self.stats is not None:
            flags = rec.frame[d.l4 + 13] if d.proto == IPPROTO_TCP else 0
            self.stats.add(
                s["stats"], a != s["src"], rec.ts_ns, rec.orig_len, len(payload), flags
            )
        s["packets"] += 1
        s["bytes"] += rec.orig_len
        s["payload"] += len(payload)
        s["image"] += 16 + len(rec.frame)
        s["last_ts"] = rec.ts_ns

    @property
    def skips(self):
        return np.array([0, *self.skip_counts.values()], dtype=np.int64)

    def finish(self):
        rows = self.rows
        ver = np.array([s["ip_version"] for s in rows], dtype=np.int64)
        stats = {}
        if self.stats is not None:
            stats = self.stats.columns(
                np.array([s["first_ts"] for s in rows], np.int64),
                np.array([s["last_ts"] for s in rows], np.int64),
            )
        return stats | {
            "protocol": [TRANSPORT_NAMES[s["proto"]] for s in rows],
            "ip_version": ver,
            "src_addr": [_address(s["src"][0], s["ip_version"]) for s in rows],
            "src_port": np.array([s["src"][1] for s in rows], dtype=np.int64),
            "dst_addr": [_address(s["dst"][0], s["ip_version"]) for s in rows],
            "dst_port": np.array([s["dst"][1] for s in rows], dtype=np.int64),
            "first_ts": np.array([s["first_ts"] for s in rows], np.int64) / 1e9,
            "last_ts": np.array([s["last_ts"] for s in rows], np.int64) / 1e9,
            "packets": np.array([s["packets"] for s in rows], dtype=np.int64),
            "bytes": np.array([s["bytes"] for s in rows], dtype=np.int64),
            "payload_bytes": np.array([s["payload"] for s in rows], dtype=np.int64),
            "linktype": np.array([s["linktype"] for s in rows], dtype=np.int64),
            "frames": [tuple(s["frames"]) for s in rows],
            "frame_ts_ns": [tuple(s["frame_ts"]) for s in rows],
            "frame_orig_len": [tuple(s["frame_len"]) for s in rows],
        }


# ---------------------------------------------------------------------------
# Files, cleaning, report

_COLUMNS = (
    "file",
    "session",
    "protocol",
    "ip_version",
    "src_addr",
    "src_port",
    "dst_addr",
    "dst_port",
    "first_ts",
    "last_ts",
    "packets",
    "bytes",
    "payload_bytes",
    "linktype",
    "label",
    "frames",
    "frame_ts_ns",
    "frame_orig_len",
)


class SessionReport(tuple):
    """The per-file report of :func:`read_sessions`: a tuple of dicts, one per
    file, kept in the session table's ``attrs["report"]``.

    pandas deep-copies ``attrs`` on every operation and compares them on
    ``concat``; this read-only tuple copies as itself and compares by value.
    :meth:`to_frame` gives the report as a DataFrame.
    """

    __slots__ = ()

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def to_frame(self):
        """The report as a DataFrame, one row per file."""
        try:
            return pd.DataFrame(list(self), columns=list(REPORT_COLUMNS))
        except UnicodeEncodeError:
            # A file name that is not valid UTF-8: pyarrow-backed strings
            # refuse its surrogate escapes; object columns keep it.
            columns = {k: [row.get(k) for row in self] for k in REPORT_COLUMNS}
            return pd.DataFrame(
                {
                    k: pd.Series(v, dtype=object)
                    if any(isinstance(x, str) for x in v)
                    else v
                    for k, v in columns.items()
                }
            )


def _new_report(name):
    report = dict.fromkeys(REPORT_COLUMNS, 0)
    report.update(file=name, format=None, error=None)
    return report


def _read_one(
    source,
    flows,
    keep,
    drop_retx,
    drop_empty,
    on_error,
    engine,
    statistics=False,
    timeouts=None,
):
    """Read one capture into session columns and its report row."""
    with gc_paused():
        return _read_one_paused(
            source, flows, keep, drop_retx, drop_empty, on_error, engine,
            statistics, timeouts,
        )  # fmt: skip


def _read_one_paused(
    source, flows, keep, drop_retx, drop_empty, on_error, engine, statistics,
    timeouts,
):  # fmt: skip
    # keep: (keep_bytes, keep_packets); timeouts: (idle, active) ns or None
    report = _new_report(source_name(source))
    name = report["file"]
    builder_type = _ReferenceBuilder if engine == "python" else SessionBuilder
    builder = builder_type(flows, *keep, drop_retx, statistics, timeouts)
    try:
        with open_capture(source) as capture:
            report["format"] = capture.format
            if engine == "python":
                for rec in capture.records():
                    builder.add(rec)
            else:
                for batch in capture.batches(chunk_size=CHUNK_SIZE, reuse=True):
                    builder.add(batch, decode_batch(batch))
    except CaptureError as exc:
        if on_error == "raise":
            raise
        report["error"] = str(exc)
    except OSError as exc:  # the disk failing under us, not a corrupt file
        err = CaptureError(name, None, f"read error ({exc})")
        if on_error == "raise":
            raise err from exc
        report["error"] = str(err)
    cols = builder.finish()
    return _finish_file(
        cols,
        report,
        builder.packets_read,
        builder.skips,
        builder.retransmissions,
        drop_empty,
    )


def _finish_file(cols, report, packets_read, skips, retransmissions, drop_empty):
    """The report's counts, the session numbers and ``drop_empty``."""
    report["packets"] = packets_read
    report["used"] = int(packets_read - skips[1:].sum())
    for reason, count in zip(SKIP_REASONS, skips[1:].tolist()):
        report[reason] = count
    report["retransmissions"] = retransmissions
    n = len(cols["packets"])
    cols["session"] = np.arange(n, dtype=np.int64)
    if drop_empty and n:
        empty = cols["payload_bytes"] == 0
        report["empty_sessions"] = int(empty.sum())
        report["dropped_packets"] = int(cols["packets"][empty].sum())
        cols = take_rows(cols, np.flatnonzero(~empty))
    report["sessions"] = len(cols["packets"])
    return cols, report


def _read_range(source, byte_range, flows, keep):
    """The sessions of the records in ``byte_range`` of a classic pcap, for
    :func:`~sklearn_flowspectrum._split.merge_ranges`: ``(cols,
    packets_read, skips)``, or None when the range does not end exactly at
    its end (not a record boundary) or the file is corrupt there; the file
    is then read whole.  A file that cannot be opened is a CaptureError."""
    builder = SessionBuilder(flows, *keep, False)
    builder.kept_plen = []
    try:
        with gc_paused(), open_capture(source) as capture:
            if capture.format != "pcap" or not capture.source.sized:
                return None
            for batch in capture.batches(CHUNK_SIZE, True, byte_range):
                builder.add(batch, decode_batch(batch))
            cols = builder.finish()
    except CaptureError as exc:
        if exc.offset is None:  # cannot be opened (on this worker): say so
            raise
        return None
    except OSError:
        return None
    return cols, builder.packets_read, builder.skips


def _merge_file(source, parts, flows, keep, drop_empty):
    """``_read_one``'s answer for a file read as byte ranges."""
    cols = merge_ranges([p[0] for p in parts], flows, *keep)
    report = _new_report(source_name(source))
    report["format"] = "pcap"
    skips = np.sum([p[2] for p in parts], axis=0)
    return _finish_file(cols, report, sum(p[1] for p in parts), skips, 0, drop_empty)


def _file_results(done, plan, args, on_error, engine):
    """Per file, ``_read_one``'s answer from the answers of its tasks."""
    flows, keep, _, drop_empty = args
    for name, tasks in plan:
        if isinstance(tasks, int):
            yield done[tasks]
            continue
        parts = done[tasks.start : tasks.stop]
        if any(p is None for p in parts):
            # A cut that is not a record boundary, or a corrupt range: the
            # serial read, which reports a corrupt file as it always does.
            yield _read_one(name, *args, on_error, engine)
        else:
            yield _merge_file(name, parts, flows, keep, drop_empty)


class Packed:
    """A task's answer, sent back from a worker in one piece.

    Pickled, its columns of tuples travel flat (all frames in one buffer,
    the integers in arrays); tens of thousands of small tuples would cost
    loky a slow pickle and Dask far more (its serialisation walks lists and
    tuples item by item).
    """

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return _unpacked, (_pack(self.value),)


def _unpacked(value):
    return Packed(_unpack(value))


def _packed_call(function, arguments):
    return Packed(function(*arguments))


class _FlatTuples(NamedTuple):
    counts: np.ndarray  # items per tuple
    data: object  # bytes: the items end to end, or an int64 array of them
    lengths: object  # the length of each item (bytes only), or None


def _pack(value):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in TUPLE_COLUMNS and isinstance(v, list):
                counts = np.fromiter(map(len, v), np.int64, len(v))
                items = list(chain.from_iterable(v))
                if items and isinstance(items[0], bytes):
                    lengths = np.fromiter(map(len, items), np.int64, len(items))
                    v = _FlatTuples(counts, b"".join(items), lengths)
                else:
                    v = _FlatTuples(counts, np.array(items, np.int64), None)
            out[k] = v
        return out
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(_pack(v) for v in value)
    return value


def _unpack(value):
    if isinstance(value, dict):
        return {k: _unflat(v) if isinstance(v, _FlatTuples) else v
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(_unpack(v) for v in value)
    return value


def _unflat(flat):
    bounds = np.zeros(len(flat.counts) + 1, dtype=np.int64)
    np.cumsum(flat.counts, out=bounds[1:])
    if flat.lengths is None:
        return split(flat.data.tolist(), bounds)
    starts = np.zeros(len(flat.lengths), dtype=np.int64)
    np.cumsum(flat.lengths[:-1], out=starts[1:])
    return split(slices(flat.data, starts, flat.lengths), bounds)


def run_on_workers(function, arguments, n_jobs):
    """``[function(*a) for a in arguments]`` on the workers of joblib's backend.

    A capture that a worker cannot open though this process could (the
    checks of :func:`expand_paths` ran here) is a :class:`CaptureError` that
    names the file and says where captures must lie.
    """
    if callable(function):
        function = [function] * len(arguments)
    tasks = (delayed(_packed_call)(f, a) for f, a in zip(function, arguments))
    try:
        return [packed.value for packed in Parallel(n_jobs=n_jobs)(tasks)]
    except CaptureError as exc:
        if exc.offset is not None or _file_error(exc.file) is not None:
            raise
        raise CaptureError(
            exc.file,
            None,
            f"{exc.reason} on a worker of the joblib backend, though it can be "
            "read here: the captures must lie on a path that every worker "
            "reads (a shared file system), under the same name",
        ) from exc


def take_rows(cols, idx):
    out = {}
    for k, v in cols.items():
        if isinstance(v, np.ndarray):
            out[k] = v[idx]
        else:
            out[k] = [v[i] for i in idx.tolist()]
    return out


_FOLDER_SUFFIXES = capture_suffixes()

# The ``labels`` value that takes each capture's class from its folder.
LABELS_FROM_FOLDERS = "dir"


class CaptureEntry(NamedTuple):
    """One capture to read, from :func:`expand_paths`."""

    file: str  # the path as given, or as found in a folder given
    label: object
    error: object  # a CaptureError known before reading, or None
    given: str  # the entry of ``paths`` it comes from
    source: object  # what to open: the path, or a stream


def _captures_in(folder):
    """Capture files under ``folder``: ``[(path, parts, error)]``, sorted.

    Every file in the folder and its subfolders whose name ends in one of
    :data:`CAPTURE_SUFFIXES` (any case), in the order of its path below
    ``folder`` (``parts``: the names of the subfolders and the file).
    Symbolic links to files and folders are followed (a link back to a
    folder above it, which would never end, is not); a folder that cannot be
    listed is an entry of its own with an error.
    """
    found = []

    def visit(path, parts, above):
        try:
            with os.scandir(path) as it:
                items = sorted(it, key=operator.attrgetter("name"))
        except OSError as exc:
            err = CaptureError(path, None, f"folder cannot be read ({exc.strerror})")
            found.append((path, parts, err))
            return
        for item in items:
            child = os.path.join(path, item.name)
            try:
                is_dir = item.is_dir()  # follows symbolic links
            except OSError:
                is_dir = False
            if is_dir:
                real = os.path.realpath(child)
                if real not in above:
                    visit(child, (*parts, item.name), above | {real})
            elif item.name.lower().endswith(_FOLDER_SUFFIXES):
                found.append((child, (*parts, item.name), None))

    visit(folder, (), frozenset([os.path.realpath(folder)]))
    return found


def _folder_label(given, parts):
    """The class of a capture by the folder rule of ``labels="dir"``.

    ``parts`` are the names below the folder ``given`` (``None``: the capture
    was given by name).  The names are those of the paths, not of the targets
    of symbolic links.
    """
    if parts is None:
        return os.path.basename(os.path.dirname(os.path.abspath(given)))
    if len(parts) > 1:
        return parts[0]
    return os.path.basename(os.path.abspath(given))


def expand_paths(paths, labels):
    """The captures of ``paths``, folders expanded: a list of :class:`CaptureEntry`.

    These are the folder and label rules of :func:`read_sessions` (and of
    the command line, which calls this function).
    """
    if isinstance(paths, (str, os.PathLike)) or is_stream(paths):
        given = [paths]
    else:
        try:
            given = list(paths)
        except TypeError:
            raise TypeError(
                "paths must be a path, a directory or a list of paths, got "
                f"{type(paths).__name__}"
            ) from None
    if not given:
        raise ValueError("paths is empty: give at least one capture file")
    for p in given:
        if not isinstance(p, (str, os.PathLike)) and not is_stream(p):
            raise TypeError(
                "capture paths must be str or os.PathLike, '-' (standard input) "
                f"or binary file objects, got {type(p).__name__} ({p!r})"
            )
    names = [source_name(p) for p in given]
    by_folder = isinstance(labels, str) and labels == LABELS_FROM_FOLDERS
    if by_folder and any(map(is_stream, given)):
        raise ValueError(
            f"labels={LABELS_FROM_FOLDERS!r} takes classes from folder names; "
            "give the labels of standard input or a file object explicitly"
        )
    if labels is None or by_folder:
        per_path = [None] * len(names)
    elif isinstance(labels, dict):
        norm = {os.fspath(k): v for k, v in labels.items()}
        missing = [p for p in names if p not in norm]
        if missing:
            raise ValueError(f"labels has no entry for {missing[0]!r}")
        per_path = [norm[p] for p in names]
    elif isinstance(labels, (str, bytes, numbers.Number)) or np.ndim(labels) == 0:
        per_path = [labels] * len(names)
    else:
        per_path = list(labels)
        if len(per_path) != len(names):
            raise ValueError(
                f"labels has {len(per_path)} entries but paths has {len(names)}; "
                "give one label per path, a dict path -> label, one label "
                f"for all, or {LABELS_FROM_FOLDERS!r} (folder names)"
            )
    out = []
    for source, name, label in zip(given, names, per_path):
        if is_stream(source):
            out.append(CaptureEntry(name, label, None, name, source))
            continue
        if os.path.isdir(name):
            found = _captures_in(name)
            if not found:
                err = CaptureError(
                    name,
                    None,
                    "folder holds no capture files "
                    f"({', '.join('*' + s for s in CAPTURE_SUFFIXES)}, or those "
                    f"compressed: {', '.join(COMPRESSED_SUFFIXES)}), not in "
                    "its subfolders either",
                )
                out.append(CaptureEntry(name, label, err, name, name))
            for file, parts, err in found:
                if err is None:
                    err = _file_error(file)
                if by_folder:
                    label = _folder_label(name, parts)
                out.append(CaptureEntry(file, label, err, name, file))
            continue
        if by_folder:
            label = _folder_label(name, None)
        out.append(CaptureEntry(name, label, _file_error(name), name, name))
    return out


def _file_error(name):
    """The CaptureError of a path that is not a readable file, or None."""
    try:
        check_source(name)
    except CaptureError as exc:
        return exc
    return None


def _dedupe_key(frames, linktype, mode, keep_bytes):
    if mode == "payload":
        parts = []
        for f in frames:
            d = dissect(f, linktype)
            parts.append(f[d.payload : d.payload_end] if d.skip is None else b"")
        key = b"".join(parts)[:keep_bytes]
        return key if key else None  # sessions without payload: never duplicates
    return b"".join(frames)[:keep_bytes]


def read_sessions(
    paths,
    labels=None,
    *,
    flows=False,
    keep_bytes=KEEP_BYTES,
    keep_packets=0,
    drop_empty=False,
    drop_duplicates=False,
    drop_retransmissions=False,
    on_error="raise",
    n_jobs=None,
    return_report=False,
    engine="auto",
    statistics=False,
    idle_timeout=None,
    active_timeout=None,
    split_size=None,
):
    """Read packet captures into a table with one row per TCP/UDP session.

    A session is the set of packets that share protocol and the unordered
    pair of endpoints (address, port): both directions of a conversation, as
    SplitCap's session mode and USTC-TK2016 define it.  With ``flows=True``
    each direction is its own flow.  Without ``idle_timeout`` and
    ``active_timeout`` all packets of a 5-tuple in a file form one session.
    The source of a session is the sender of its first packet.

    Parameters
    ----------
    paths : str, os.PathLike, binary file object or list of them
        Capture files (classic pcap in either byte order with micro- or
        nanosecond timestamps, or pcapng with any number of sections and
        interfaces), or folders.  A folder stands for every file in it and
        in its subfolders whose name ends in ``.pcap``, ``.pcapng`` or
        ``.cap`` (any case), or in one of those followed by ``.gz``, ``.xz``
        or ``.bz2``, sorted by path; symbolic links to files and folders are
        followed.  Captures compressed with gzip, xz or bzip2 are recognised
        by their first bytes and decompressed as they are read.  ``"-"``
        reads standard input, and FIFOs and open binary file objects are read
        front to back without seeking (their ``file`` is ``"<stdin>"`` or the
        object's ``name``); streams are read in this process whatever
        ``n_jobs`` says.  Link types:
        Ethernet (with 802.1Q/QinQ tags, PPPoE, MPLS), Linux SLL and SLL2,
        raw IPv4/IPv6, BSD loopback (NULL/LOOP); IPv6 extension headers and
        IP-in-IP tunnels (the inner packet counts) are followed.
    labels : None, "dir", scalar, sequence or dict, default=None
        A ``label`` column.  ``"dir"``: each capture's class is a folder
        name -- for a capture found in a folder of ``paths``, the subfolder
        directly under that folder (``captures/dns/2024/a.pcap`` in
        ``captures``: ``"dns"``), or the folder's own name when the capture
        lies directly in it; for a file given by name, the folder it is in.
        The names are those of the paths, not of the targets of symbolic
        links.  Otherwise one label for all files, one per entry of
        ``paths`` (a folder's label applies to all its files), or a dict
        mapping each entry of ``paths`` to its label (a list ``["dir"]`` is
        the label ``"dir"``).
    flows : bool, default=False
        Group by the one-directional 5-tuple (flows) instead of sessions.
    keep_bytes : int, default=784
        Frames of a session are kept (column ``frames``) from its first
        packet on until both budgets are met: the USTC-TK2016 image
        ``24 + sum(16 + len(frame))`` and the concatenated TCP/UDP payload
        each reach ``keep_bytes``.  Frames are stored whole.
    keep_packets : int, default=0
        Also keep at least the first ``keep_packets`` frames of every
        session (the ``"packets"`` layout of :class:`PcapSessionVectorizer`
        takes one frame per slot, ``n_bytes // packet_bytes`` of them).
    drop_empty : bool, default=False
        Drop sessions without any TCP/UDP payload (``payload_bytes == 0``).
    drop_duplicates : bool or {"frames", "payload"}, default=False
        Drop byte-identical duplicate sessions, keeping the first in table
        order (across all files).  ``True`` or ``"frames"``: the first
        ``keep_bytes`` bytes of the concatenated kept frames are equal (link
        layer on, so addresses and ports are compared too; capture times are
        not).  ``"payload"``: the first ``keep_bytes`` bytes of the
        concatenated payloads of the kept frames are equal (USTC-TK2016's L7
        cleaning); sessions without payload are never duplicates.
    drop_retransmissions : bool, default=False
        Drop TCP segments that repeat an earlier segment of the same session
        in the same direction: same sequence number, same SYN/FIN flags and a
        byte-identical payload.  Segments without payload and without
        SYN/FIN (pure ACKs) are never dropped.  Memory for this option grows
        with the number of TCP data segments (one small tuple each).
    on_error : {"raise", "warn", "ignore"}, default="raise"
        What a corrupt or unreadable capture (or a path that is not a file)
        does: raise a :class:`ValueError` naming the file and byte offset;
        or warn (:class:`~sklearn_flowspectrum.CaptureWarning`),
        keep the packets read before the problem and go on with the other
        files; ``"ignore"`` does the same silently.  The report lists the
        error either way.
    n_jobs : int, default=None
        Number of files read in parallel with joblib (``None``: one process
        unless a :func:`joblib.parallel_config` context says otherwise,
        ``-1``: all cores, ``-2``: all but one, ...; not 0).  Any joblib
        backend works: under ``joblib.parallel_config(backend="dask")`` the
        files are read by the workers of a ``distributed.Client``, which are
        sent only the paths and the parameters; the captures must then lie
        on a path that every worker reads (see :ref:`dask`).
    return_report : bool, default=False
        Also return the per-file report as a DataFrame.
    engine : {"auto", "python"}, default="auto"
        ``"auto"`` decodes packets in numpy batches (the dissector handles the
        uncommon ones); ``"python"`` is the plain reference implementation,
        one packet at a time, with identical results.
    statistics : bool, default=False
        Add the flow statistics columns (see :data:`STAT_COLUMNS`):
        ``duration`` (seconds), ``fwd_packets``/``bwd_packets`` and
        ``fwd_bytes``/``bwd_bytes`` per direction (forward: from the
        session's source), ``tcp_flags`` (the OR of the flags of its TCP
        packets), ``fwd_iat_mean``/``_std``/``_min``/``_max`` and the same
        for ``bwd`` (inter-arrival times in seconds, NaN with fewer than two
        packets in that direction) and ``first_payload_sizes`` (the payload
        lengths of its first 8 packets, negative for backward packets).
        They count the packets the table counts (after
        ``drop_retransmissions``).
    idle_timeout, active_timeout : float or None, default=None
        Seconds.  A packet more than ``idle_timeout`` after the previous
        packet of its 5-tuple, or more than ``active_timeout`` after the
        first packet of its session, starts a new session of that 5-tuple,
        as flow meters do.  None (the default) keeps every packet of a
        5-tuple in one session, as SplitCap and the published datasets do.
        The times are the capture's, in capture order; retransmissions
        count for the idle time even when dropped.
    split_size : int or None, default=None
        Read each uncompressed classic pcap file larger than ``split_size``
        bytes as byte ranges of about that size, cut at record boundaries
        and read in parallel (``n_jobs``), so that one big capture uses
        several cores; the table is identical to that of a serial read
        (same sessions in the same order, same frames).  A cut moves on to
        the first offset where a chain of plausible record headers begins,
        and each range must end exactly where the next begins: otherwise,
        or when a range is corrupt, the file is read whole, serially (and a
        corrupt file reported as usual).  pcapng, compressed files and
        streams are always read whole, and so is every file with
        ``statistics``, ``drop_retransmissions``, ``idle_timeout``,
        ``active_timeout`` or ``engine="python"``, whose state would have
        to cross range boundaries.  The merge and the table are made in
        the calling process, which bounds the gain (see :ref:`dask`); a few
        hundred MB per range suits most machines.  ``None`` reads every
        file whole.

    Returns
    -------
    sessions : pandas.DataFrame
        One row per session, files in the given order and sessions in order
        of their first packet.  Columns: ``file`` (the path as given or
        found in a directory), ``session`` (index of the session in its file
        before cleaning), ``protocol`` ("TCP"/"UDP"), ``ip_version``,
        ``src_addr``, ``src_port``, ``dst_addr``, ``dst_port``,
        ``first_ts``/``last_ts`` (seconds since the epoch, of the first and
        the last packet in file order), ``packets``, ``bytes`` (sum of wire
        lengths), ``payload_bytes`` (TCP/UDP payload bounded by the IP total
        length and the captured bytes), ``linktype``, ``label`` (when
        labels are given), ``frames`` (tuple of bytes), ``frame_ts_ns`` and
        ``frame_orig_len`` (tuples of int, one per kept frame).
        ``attrs["keep_bytes"]`` and ``attrs["keep_packets"]`` hold
        ``keep_bytes`` and ``keep_packets``, ``attrs["flows"]``
        ``flows``, and ``attrs["report"]`` the per-file report (a
        :class:`SessionReport`: a tuple of one dict per file, as cheap to
        carry through pandas operations as a DataFrame is not;
        ``.to_frame()`` gives the DataFrame that ``return_report`` returns).
    report : pandas.DataFrame
        Only with ``return_report=True``.  One row per file: ``file``,
        ``format``, ``packets`` (records read), ``used`` (TCP/UDP packets
        grouped into sessions) and the skipped packets by reason (``not_ip``,
        ``not_tcp_udp``, ``truncated``, ``fragment``, ``malformed``,
        ``unknown_linktype``), so that ``packets == used + skipped`` always;
        then the cleaning: ``retransmissions`` (packets),
        ``empty_sessions``, ``duplicate_sessions``, ``dropped_packets``
        (packets of dropped sessions), ``sessions`` (rows in the table) and
        ``error`` (message, or None).  ``used == retransmissions +
        dropped_packets +`` the file's ``packets`` in the table.

    Raises
    ------
    ValueError
        A path that is not a capture file or a corrupt capture (with
        ``on_error="raise"``), naming the file and the byte offset; bad
        parameters.

    Examples
    --------
    >>> import os, struct, tempfile
    >>> from sklearn_flowspectrum import read_sessions
    >>> def udp(src, dst, sport, dport, payload):
    ...     ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0,
    ...                      64, 17, 0, bytes(src), bytes(dst))
    ...     l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    ...     return ip + l4 + payload
    >>> pkts = [udp([10, 0, 0, 1], [10, 0, 0, 2], 5000, 53, b"query"),
    ...         udp([10, 0, 0, 2], [10, 0, 0, 1], 53, 5000, b"answer")]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "dns.pcap")
    ...     with open(path, "wb") as f:
    ...         _ = f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
    ...         for i, p in enumerate(pkts):
    ...             _ = f.write(struct.pack("<IIII", 100 + i, 0, len(p), len(p)) + p)
    ...     table, report = read_sessions(path, labels="dns", return_report=True)
    >>> table[["protocol", "src_addr", "src_port", "dst_port", "packets", "label"]]
      protocol  src_addr  src_port  dst_port  packets label
    0      UDP  10.0.0.1      5000        53        2   dns
    >>> int(report.loc[0, "packets"]), int(report.loc[0, "used"])
    (2, 2)
    """
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be one of {_ON_ERROR}, got {on_error!r}")
    if engine not in ("auto", "python"):
        raise ValueError(f"engine must be 'auto' or 'python', got {engine!r}")
    if isinstance(drop_duplicates, (bool, np.bool_)):
        dup_mode = "frames" if drop_duplicates else None
    elif isinstance(drop_duplicates, str) and drop_duplicates in _DUPLICATES:
        dup_mode = drop_duplicates
    else:
        raise ValueError(
            "drop_duplicates must be False, True, 'frames' or 'payload', got "
            f"{drop_duplicates!r}"
        )
    for param, value in (("keep_bytes", keep_bytes), ("keep_packets", keep_packets)):
        if (
            not isinstance(value, numbers.Integral)
            or isinstance(value, bool)
            or value < 0
        ):
            raise ValueError(f"{param} must be an int >= 0, got {value!r}")
    for flag, value in (
        ("flows", flows),
        ("drop_empty", drop_empty),
        ("drop_retransmissions", drop_retransmissions),
        ("return_report", return_report),
        ("statistics", statistics),
    ):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{flag} must be a bool, got {value!r}")
    keep_bytes, keep_packets = int(keep_bytes), int(keep_packets)
    check_n_jobs(n_jobs, "read_sessions")
    if split_size is not None and (
        not isinstance(split_size, numbers.Integral)
        or isinstance(split_size, bool)
        or split_size < 1
    ):
        raise ValueError(f"split_size must be an int >= 1 or None, got {split_size!r}")
    timeouts = check_timeouts(idle_timeout, active_timeout)

    entries = expand_paths(paths, labels)
    if on_error == "raise":
        for entry in entries:
            if entry.error is not None:
                raise entry.error
    todo = [entry.source for entry in entries if entry.error is None]
    args = (
        bool(flows),
        (keep_bytes, keep_packets),
        bool(drop_retransmissions),
        bool(drop_empty),
    )
    if n_jobs is None:
        # sklearn's rule: None is 1 unless a joblib.parallel_config says more.
        n_jobs = get_active_backend()[1]
    # Tasks: a whole file, or a byte range of one (split_size).
    functions, arguments, plan = [], [], []
    splittable = (
        split_size is not None
        and engine == "auto"
        and not statistics
        and not drop_retransmissions
        and timeouts is None
    )
    for name in todo:
        ranges = None
        if splittable and not is_stream(name):
            ranges = pcap_ranges(name, split_size)
        if ranges:
            plan.append((name, range(len(functions), len(functions) + len(ranges))))
            for r in ranges:
                functions.append(_read_range)
                arguments.append((name, r, bool(flows), args[1]))
        else:
            plan.append((name, len(functions)))
            functions.append(_read_one)
            arguments.append((name, *args, on_error, engine, statistics, timeouts))
    if n_jobs is None or n_jobs == 1 or len(functions) < 2 or any(map(is_stream, todo)):
        # Streams are read here: they cannot travel to another process.
        done = [f(*a) for f, a in zip(functions, arguments)]
    else:
        # Only the paths and the parameters travel to the workers (of any
        # joblib backend: loky, or Dask's with a distributed.Client); each
        # worker opens its files itself.
        done = run_on_workers(functions, arguments, n_jobs)
    results = iter(_file_results(done, plan, args, on_error, engine))

    parts, reports, file_labels = [], [], []
    for name, label, err, *_ in entries:
        if err is not None:
            cols, report = None, _new_report(name)
            report["error"] = str(err)
        else:
            cols, report = next(results)
        if report["error"] is not None and on_error == "warn":
            warnings.warn(
                f"{report['error']} (kept the {report['packets']} packets read "
                "before it)",
                CaptureWarning,
                stacklevel=2,
            )
        reports.append(report)
        parts.append(cols)
        file_labels.append(label)

    table = assemble_table(entries, parts, file_labels, labels is not None, statistics)
    if dup_mode is not None and len(table):
        keys = pd.Series(
            [
                _dedupe_key(f, lt, dup_mode, keep_bytes)
                for f, lt in zip(table["frames"], table["linktype"])
            ],
            index=table.index,
        )
        dup = keys.duplicated() & keys.notna()
        if dup.any():
            per_file = table.loc[dup].groupby("file", sort=False)["packets"]
            counts, pkts = per_file.size(), per_file.sum()
            for report in reports:
                if report["file"] in counts.index:
                    report["duplicate_sessions"] = int(counts[report["file"]])
                    report["dropped_packets"] += int(pkts[report["file"]])
                    report["sessions"] -= int(counts[report["file"]])
            table = table.loc[~dup].reset_index(drop=True)
    table.attrs["keep_bytes"] = keep_bytes
    table.attrs["keep_packets"] = keep_packets
    table.attrs["flows"] = bool(flows)
    report = SessionReport(reports)
    table.attrs["report"] = report
    if return_report:
        return table, report.to_frame()
    return table


_OBJECT_COLUMNS = frozenset(
    (
        "file",
        "protocol",
        "src_addr",
        "dst_addr",
        "label",
        "frames",
        "frame_ts_ns",
        "frame_orig_len",
    )
)


_FLOAT_COLUMNS = frozenset(
    ("first_ts", "last_ts", "duration") + tuple(c for c in STAT_COLUMNS if "_iat_" in c)
)


def check_timeouts(idle_timeout, active_timeout):
    """``(idle, active)`` in integer nanoseconds (None: no such timeout), or
    None when neither is set."""
    out = []
    for name, value in (
        ("idle_timeout", idle_timeout),
        ("active_timeout", active_timeout),
    ):
        if value is None:
            out.append(None)
            continue
        if (
            not isinstance(value, numbers.Real)
            or isinstance(value, bool)
            or not value > 0
            or not np.isfinite(value)
        ):
            raise ValueError(
                f"{name} must be a number of seconds > 0 or None, got {value!r}"
            )
        out.append(round(float(value) * 1e9))
    return None if out == [None, None] else tuple(out)


def _text_column(values):
    """Paths as pandas' string column; object dtype for names that are not
    valid UTF-8 (surrogate escapes), which pyarrow-backed strings refuse."""
    try:
        return pd.Series(values, dtype="str")
    except (UnicodeEncodeError, TypeError):
        return pd.Series(values, dtype=object)


def assemble_table(entries, parts, file_labels, with_labels, statistics=False):
    names = _COLUMNS + (STAT_COLUMNS if statistics else ())
    columns = {c: [] for c in names}
    for (name, *_), cols, label in zip(entries, parts, file_labels):
        if cols is None:
            continue
        n = len(cols["packets"])
        columns["file"].append(np.full(n, name, dtype=object))
        columns["label"].append([label] * n)
        for k, v in cols.items():
            columns[k].append(v)
    data = {}
    for k in names:
        if k == "label" and not with_labels:
            continue
        chunks = columns[k]
        if k in _OBJECT_COLUMNS or k == "first_payload_sizes":
            data[k] = list(chain.from_iterable(chunks))
        elif k in _FLOAT_COLUMNS:
            data[k] = np.concatenate(chunks) if chunks else np.zeros(0)
        else:
            data[k] = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    return session_frame(data)


# Columns of tuples (one entry per kept frame, or per first packet).
TUPLE_COLUMNS = ("frames", "frame_ts_ns", "frame_orig_len", "first_payload_sizes")


def session_frame(data):
    """The session table of its columns (a dict: lists and arrays), with the
    dtypes of :func:`read_sessions`."""
    for k in ("file", "label"):
        # Labels from folder names are text too, and may not be UTF-8.
        if k in data and all(isinstance(v, str) for v in data[k]):
            data[k] = _text_column(data[k])
    table = pd.DataFrame(data)
    for k in TUPLE_COLUMNS:
        if k in table.columns:
            table[k] = table[k].astype(object)
    return table
