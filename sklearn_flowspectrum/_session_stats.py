"""Per-session flow statistics: the optional columns of ``read_sessions``.

The quantities flow meters report (nfstream, CICFlowMeter): duration, packets
and bytes per direction, the TCP flags seen, inter-arrival times per
direction and the sizes of the first payloads.  The forward direction is the
session's, from its source (the sender of its first packet) to its
destination.  Two implementations give the same numbers: one vectorised over
the batches of the fast path, one per packet for the reference path.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

from sklearn_flowspectrum._growing import GrowingRows

#: How many first payload sizes a session records.
N_FIRST_PAYLOADS = 8

_DIRECTIONS = ("fwd", "bwd")
_IAT = ("mean", "std", "min", "max")

#: The statistics columns, in table order.
STAT_COLUMNS = (
    "duration",
    *(f"{d}_{what}" for d in _DIRECTIONS for what in ("packets", "bytes")),
    "tcp_flags",
    *(f"{d}_iat_{s}" for d in _DIRECTIONS for s in _IAT),
    "first_payload_sizes",
)


class BatchStatistics:
    """Statistics of sessions fed one decoded batch at a time (vectorised)."""

    def __init__(self):
        self.n = 0
        self.first_swap = GrowingRows(1, bool, False)
        self.count = GrowingRows(2, np.int64, 0)  # per direction
        self.bytes = GrowingRows(2, np.int64, 0)
        self.flags = GrowingRows(1, np.int64, 0)
        self.last_ts = GrowingRows(2, np.int64, -1)
        self.iat_n = GrowingRows(2, np.int64, 0)
        self.iat_sum = GrowingRows(2, np.float64, 0.0)
        self.iat_sq = GrowingRows(2, np.float64, 0.0)
        self.iat_min = GrowingRows(2, np.float64, np.inf)
        self.iat_max = GrowingRows(2, np.float64, -np.inf)
        self.sizes = GrowingRows(N_FIRST_PAYLOADS, np.int64, 0)

    def grow(self, n):
        for g in vars(self).values():
            if isinstance(g, GrowingRows):
                g.ensure(n)
        self.n = n

    def add(self, sid, new_sids, new_swap, swap, ts, orig_len, plen, flags, rank):
        """Fold in the usable packets of a batch, in capture order.

        ``sid``: session of each packet; ``new_sids``/``new_swap``: sessions
        first seen here and the orientation of their first packet; ``swap``:
        each packet's orientation (None: every packet is forward); ``flags``:
        TCP flags (0 for UDP); ``rank``: the packet's number in its session.
        """
        if len(new_sids):
            self.grow(int(new_sids.max()) + 1)
            self.first_swap.a[new_sids, 0] = new_swap
        if swap is None:
            direction = np.zeros(len(sid), dtype=np.int64)
        else:
            direction = (swap != self.first_swap.a[sid, 0]).astype(np.int64)
        np.add.at(self.count.a, (sid, direction), 1)
        np.add.at(self.bytes.a, (sid, direction), orig_len)
        np.bitwise_or.at(self.flags.a, (sid, 0), flags)
        first = rank < N_FIRST_PAYLOADS
        signed = np.where(direction == 0, plen, -plen)
        self.sizes.a[sid[first], rank[first]] = signed[first]
        # Inter-arrival times: the previous packet of the same session and
        # direction is in this batch or is the last one seen before it.
        key = sid * 2 + direction
        order = np.argsort(key, kind="stable")
        k, t = key[order], ts[order]
        prev = np.empty(len(k), dtype=np.int64)
        prev[1:] = t[:-1]
        head = np.ones(len(k), dtype=bool)
        head[1:] = k[1:] != k[:-1]
        flat_last = self.last_ts.a.reshape(-1)
        prev[head] = flat_last[k[head]]
        has = prev >= 0
        gap = (t[has] - prev[has]) / 1e9
        kk = k[has]
        for grown, op in (
            (self.iat_n, None),
            (self.iat_sum, np.add),
            (self.iat_sq, np.add),
            (self.iat_min, np.minimum),
            (self.iat_max, np.maximum),
        ):
            flat = grown.a.reshape(-1)
            if op is None:
                np.add.at(flat, kk, 1)
            elif grown is self.iat_sq:
                op.at(flat, kk, gap * gap)
            else:
                op.at(flat, kk, gap)
        tail = np.ones(len(k), dtype=bool)
        tail[:-1] = k[1:] != k[:-1]
        flat_last[k[tail]] = t[tail]

    def columns(self, n, first_ts_ns, last_ts_ns):
        return _columns(
            n,
            first_ts_ns,
            last_ts_ns,
            self.count.a[:n],
            self.bytes.a[:n],
            self.flags.a[:n, 0],
            self.iat_n.a[:n],
            self.iat_sum.a[:n],
            self.iat_sq.a[:n],
            self.iat_min.a[:n],
            self.iat_max.a[:n],
            self.sizes.a[:n],
        )


class PacketStatistics:
    """The same statistics, one packet at a time (the reference path)."""

    def __init__(self):
        self.rows = []

    def new_session(self):
        self.rows.append(
            {
                "count": [0, 0],
                "bytes": [0, 0],
                "flags": 0,
                "last": [None, None],
                "gaps": ([], []),
                "sizes": [],
            }
        )
        return len(self.rows) - 1

    def add(self, sid, backward, ts_ns, orig_len, plen, flags):
        s = self.rows[sid]
        d = int(backward)
        s["count"][d] += 1
        s["bytes"][d] += orig_len
        s["flags"] |= flags
        if s["last"][d] is not None:
            s["gaps"][d].append((ts_ns - s["last"][d]) / 1e9)
        s["last"][d] = ts_ns
        if len(s["sizes"]) < N_FIRST_PAYLOADS:
            s["sizes"].append(-plen if backward else plen)

    def columns(self, first_ts_ns, last_ts_ns):
        n = len(self.rows)
        iat = {k: np.zeros((n, 2)) for k in ("n", "sum", "sq")}
        iat["min"] = np.full((n, 2), np.inf)
        iat["max"] = np.full((n, 2), -np.inf)
        sizes = np.zeros((n, N_FIRST_PAYLOADS), dtype=np.int64)
        for i, s in enumerate(self.rows):
            sizes[i, : len(s["sizes"])] = s["sizes"]
            for d, gaps in enumerate(s["gaps"]):
                if gaps:
                    g = np.array(gaps)
                    iat["n"][i, d] = len(g)
                    iat["sum"][i, d] = _ordered_sum(g)
                    iat["sq"][i, d] = _ordered_sum(g * g)
                    iat["min"][i, d], iat["max"][i, d] = g.min(), g.max()
        return _columns(
            n,
            first_ts_ns,
            last_ts_ns,
            np.array([s["count"] for s in self.rows], np.int64).reshape(n, 2),
            np.array([s["bytes"] for s in self.rows], np.int64).reshape(n, 2),
            np.array([s["flags"] for s in self.rows], np.int64),
            iat["n"],
            iat["sum"],
            iat["sq"],
            iat["min"],
            iat["max"],
            sizes,
        )


def _ordered_sum(values):
    """Sum in order, one addition at a time, as ``np.add.at`` adds."""
    total = 0.0
    for v in values.tolist():
        total += v
    return total


def _columns(n, first, last, count, nbytes, flags, iat_n, iat_sum, iat_sq, lo, hi,
             sizes):  # fmt: skip
    out = {"duration": (np.asarray(last) - np.asarray(first)) / 1e9}
    for d, name in enumerate(_DIRECTIONS):
        out[f"{name}_packets"] = count[:, d].copy()
        out[f"{name}_bytes"] = nbytes[:, d].copy()
    out["tcp_flags"] = np.asarray(flags, dtype=np.int64).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for d, name in enumerate(_DIRECTIONS):
            k = iat_n[:, d].astype(np.float64)
            some = k > 0
            mean = np.where(some, iat_sum[:, d] / k, np.nan)
            var = np.where(some, iat_sq[:, d] / k - mean * mean, np.nan)
            out[f"{name}_iat_mean"] = mean
            out[f"{name}_iat_std"] = np.sqrt(np.clip(var, 0.0, None))
            out[f"{name}_iat_min"] = np.where(some, lo[:, d], np.nan)
            out[f"{name}_iat_max"] = np.where(some, hi[:, d], np.nan)
    sizes = np.asarray(sizes)
    counts = count.sum(axis=1)
    out["first_payload_sizes"] = [
        tuple(row[: min(int(c), N_FIRST_PAYLOADS)].tolist())
        for row, c in zip(sizes, counts)
    ]
    return out
