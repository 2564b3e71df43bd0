"""The per-item loops of the fast path, compiled when possible.

These loops cannot be written as whole-array numpy operations (without
building an index for every byte) because they follow lengths or move
Python objects:

* :func:`record_headers` follows the length fields of classic pcap records
  (each header says where the next one starts) and reads their fields;
* :func:`slices` cuts the kept frames out of a chunk as ``bytes`` objects;
* :class:`SessionIndex` numbers the sessions of packet keys across batches;
* :func:`split` cuts a sequence into the per-session tuples of the table
  and :func:`ipv4_strings` and :func:`ipv6_strings` write its addresses;
* :func:`frame_lengths` and :func:`join_frames` pack the per-session frames
  of a table into one buffer;
* :func:`copy_ranges` copies frames into their places in the images and
  :func:`zero_ranges` blanks the masked fields;
* ``decode_headers`` (compiled only, else ``None``) decodes the link, IP and
  TCP/UDP headers of a batch of packets: the pure-Python side of that loop
  is the numpy decoder in :mod:`sklearn_flowspectrum._decode`, which it
  must agree with;
* ``pcapng_packets`` (compiled only, else ``None``) walks runs of pcapng
  enhanced packet blocks; without it the block-by-block reader in
  :mod:`sklearn_flowspectrum._pcapng` reads them.

``sklearn_flowspectrum._speedups`` (C, built at install when a compiler is
there) runs them in one call each; without it, or with the environment
variable ``SKLEARN_FLOWSPECTRUM_PURE_PYTHON=1`` set before import, the
pure-Python versions below do the same work with one Python step per item.
Both give identical results (``tests/test_loops.py``).
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import ipaddress
import os
import socket
import struct
from itertools import chain

import numpy as np
import pandas as pd

__all__ = [
    "COMPILED",
    "SessionIndex",
    "copy_ranges",
    "decode_headers",
    "frame_lengths",
    "ipv4_strings",
    "ipv6_strings",
    "join_frames",
    "pcapng_packets",
    "record_headers",
    "slices",
    "split",
    "zero_ranges",
]

# incl_len of a 16-byte record header (the pad bytes make a header that does
# not fit whole raise struct.error).
_U32_FROM_8 = {
    False: struct.Struct("<8xI4x").unpack_from,
    True: struct.Struct(">8xI4x").unpack_from,
}


def _int64(a):
    return np.ascontiguousarray(a, dtype=np.int64)


def _uint64(a):
    return np.ascontiguousarray(a, dtype=np.uint64)


def record_headers_py(buf, big_endian):
    """Walk the 16-byte pcap record headers in ``buf`` from offset 0.

    Follows each header's ``incl_len`` while a header fits whole (its body
    may not).  Returns ``(offsets, words)``: the int64 offsets and an
    ``(n, 4)`` uint32 array of the header fields (``ts_sec``, ``ts_frac``,
    ``incl_len``, ``orig_len``).
    """
    unpack = _U32_FROM_8[bool(big_endian)]
    offsets = []
    append = offsets.append
    off = 0
    try:
        while True:
            append(off)
            off += 16 + unpack(buf, off)[0]
    except struct.error:  # the header at `off` runs past the buffer
        offsets.pop()
    offsets = np.array(offsets, dtype=np.int64)
    headers = np.frombuffer(buf, np.uint8)[offsets[:, None] + np.arange(16)]
    words = headers.view((">" if big_endian else "<") + "u4").astype(np.uint32)
    return offsets, words


def slices_py(buf, starts, lengths):
    """``[bytes(buf[s : s + n]) for s, n in zip(starts, lengths)]``."""
    with memoryview(buf) as view:
        view = view.cast("B")
        return [
            view[s : s + n].tobytes()
            for s, n in zip(_int64(starts).tolist(), _int64(lengths).tolist())
        ]


def copy_ranges_py(dst, dst_starts, src, src_starts, lengths):
    """``dst[d : d + n] = src[s : s + n]`` for every range."""
    with memoryview(dst) as out, memoryview(src) as inp:
        out, inp = out.cast("B"), inp.cast("B")
        for d, s, n in zip(
            _int64(dst_starts).tolist(),
            _int64(src_starts).tolist(),
            _int64(lengths).tolist(),
        ):
            out[d : d + n] = inp[s : s + n]


def zero_ranges_py(buf, starts, lengths):
    """``buf[s : s + n] = 0`` for every range (``buf`` a uint8 array)."""
    start, length = _int64(starts), _int64(lengths)
    if len(length) == 0:
        return
    width = int(length.max())
    if width <= 0:
        return
    if (length == width).all():  # the common case: one field of many frames
        buf[(start[:, None] + np.arange(width)).ravel()] = 0
        return
    sel = length > 0
    start, length = start[sel], length[sel]
    # One index for every byte, built from the steps between them.
    total = int(length.sum())
    first = np.cumsum(length) - length
    step = np.ones(total, dtype=np.int64)
    step[0] = start[0]
    step[first[1:]] = start[1:] - (start[:-1] + length[:-1] - 1)
    buf[np.cumsum(step)] = 0


def ipv4_strings_py(addresses):
    """Dotted-quad strings of IPv4 addresses given as numbers."""
    return [
        socket.inet_ntop(socket.AF_INET, a.to_bytes(4, "big"))
        for a in _int64(addresses).tolist()
    ]


def ipv6_strings_py(high, low):
    """Text of IPv6 addresses given as two uint64 halves (as ipaddress writes it)."""
    return [
        str(ipaddress.IPv6Address((h << 64) | lo))
        for h, lo in zip(_uint64(high).tolist(), _uint64(low).tolist())
    ]


def split_py(seq, bounds):
    """``[tuple(seq[bounds[i] : bounds[i + 1]]) for i ...]``."""
    b = _int64(bounds).tolist()
    seq = tuple(seq)
    return [seq[i:j] for i, j in zip(b[:-1], b[1:])]


def frame_lengths_py(sessions):
    """Frames per session and the length of every frame (int64 arrays)."""
    counts = np.fromiter(map(len, sessions), dtype=np.int64, count=len(sessions))
    flat = chain.from_iterable(sessions)
    return counts, np.fromiter(map(len, flat), dtype=np.int64, count=counts.sum())


def join_frames_py(sessions, size, keep=None):
    """A bytearray of the frames (in order) whose ``keep`` flag is set.

    ``size`` is their total length (checked).
    """
    flat = list(chain.from_iterable(sessions))
    if keep is not None:
        flat = [flat[i] for i in np.flatnonzero(keep).tolist()]
    out = bytearray().join(flat)
    if len(out) != size:
        raise ValueError(f"frames of {len(out)} bytes, not {size}")
    return out


# Constants of the 64-bit key hash (odd, from splitmix64); only a hint for
# grouping: every group is verified against the full key.
_H1 = np.uint64(0x9E3779B97F4A7C15)
_H2 = np.uint64(0xBF58476D1CE4E5B9)
_H3 = np.uint64(0x94D049BB133111EB)
_H4 = np.uint64(0xD6E8FEB86659FD93)


def _group(keys):
    """Group rows of ``keys``; codes in order of first appearance.

    Returns the code of every row and the row index of each group's first
    member.  A 64-bit hash feeds pandas' hash table; the result is checked
    against the full keys, and on a (practically impossible) hash collision
    the rows are grouped by exact sorting instead.
    """
    h = keys[:, 0] * _H1
    h ^= keys[:, 1] * _H2
    h ^= keys[:, 2] * _H3
    h ^= keys[:, 3] * _H4
    h ^= keys[:, 4]
    h ^= h >> np.uint64(31)
    h *= _H2
    h ^= h >> np.uint64(29)
    codes, _ = pd.factorize(h)
    first = _first_rows(codes)
    if not (keys == keys[first][codes]).all():
        rows = np.ascontiguousarray(keys).view(np.dtype((np.void, 40))).ravel()
        _, first_sorted, inv = np.unique(rows, return_index=True, return_inverse=True)
        rank = np.empty(len(first_sorted), dtype=np.int64)
        rank[np.argsort(first_sorted, kind="stable")] = np.arange(len(first_sorted))
        codes = rank[inv.ravel()]
        first = _first_rows(codes)
    return codes, first


def _first_rows(codes):
    """Row of each code's first appearance (codes number groups in that order)."""
    if not len(codes):
        return np.zeros(0, dtype=np.int64)
    running = np.maximum.accumulate(codes)
    is_first = np.empty(len(codes), dtype=bool)
    is_first[0] = True
    is_first[1:] = running[1:] > running[:-1]
    return np.flatnonzero(is_first)


class SessionIndexPy:
    """Session ids of packet keys across the batches of a capture.

    :meth:`assign` groups the rows of ``keys`` (n x 5 uint64) and returns
    ``(codes, first, ids)``: the group of each row (groups numbered in order
    of first appearance), the first row of each group, and each group's
    session id, new sessions numbered on from ``len(index)`` in order of first
    appearance.  Numpy grouping within the batch, a dict across batches.
    """

    def __init__(self):
        self._ids = {}

    def __len__(self):
        return len(self._ids)

    def assign(self, keys):
        codes, first = _group(keys)
        key_bytes = np.ascontiguousarray(keys[first]).view("S40").ravel().tolist()
        ids = self._ids
        gmap = np.array([ids.setdefault(k, len(ids)) for k in key_bytes], np.int64)
        return codes, first, gmap


_speedups = None
if os.environ.get("SKLEARN_FLOWSPECTRUM_PURE_PYTHON", "") in ("", "0"):
    try:
        from sklearn_flowspectrum import _speedups
    except ImportError:  # built without a C compiler: the Python loops serve
        pass

#: Whether the compiled loops are in use.
COMPILED = _speedups is not None

if COMPILED:

    def record_headers(buf, big_endian):
        offsets, words = _speedups.record_headers(buf, big_endian)
        words = np.frombuffer(words, np.uint32).reshape(-1, 4)
        return np.frombuffer(offsets, np.int64), words

    def slices(buf, starts, lengths):
        return _speedups.slices(buf, _int64(starts), _int64(lengths))

    def copy_ranges(dst, dst_starts, src, src_starts, lengths):
        _speedups.copy_ranges(
            dst, _int64(dst_starts), src, _int64(src_starts), _int64(lengths)
        )

    def split(seq, bounds):
        return _speedups.split(seq, _int64(bounds))

    pcapng_packets = _speedups.pcapng_packets

    def zero_ranges(buf, starts, lengths):
        _speedups.zero_ranges(buf, _int64(starts), _int64(lengths))

    def ipv4_strings(addresses):
        return _speedups.ipv4_strings(_int64(addresses))

    def ipv6_strings(high, low):
        high, low = _uint64(high), _uint64(low)
        text = _speedups.ipv6_strings(high, low)
        # IPv4-mapped addresses: written as this Python's ipaddress writes them.
        for i in [i for i, t in enumerate(text) if t is None]:
            text[i] = ipv6_strings_py(high[i : i + 1], low[i : i + 1])[0]
        return text

    def decode_headers(data, start, caplen, linktype, raw_linktypes, codes, *out):
        _speedups.decode_headers(
            data,
            _int64(start),
            _int64(caplen),
            _int64(linktype),
            _int64(raw_linktypes),
            codes,
            *out,
        )

    def frame_lengths(sessions):
        counts, lengths = _speedups.frame_lengths(sessions)
        return np.frombuffer(counts, np.int64), np.frombuffer(lengths, np.int64)

    def join_frames(sessions, size, keep=None):
        if keep is not None:
            keep = np.ascontiguousarray(keep, dtype=bool)
        return _speedups.join_frames(sessions, int(size), keep)

    class SessionIndex(SessionIndexPy):
        __doc__ = SessionIndexPy.__doc__

        def __init__(self):
            self._index = _speedups.SessionIndex()

        def __len__(self):
            return len(self._index)

        def assign(self, keys):
            keys = np.ascontiguousarray(keys, dtype=np.uint64)
            return tuple(np.frombuffer(a, np.int64) for a in self._index.assign(keys))

    for _c, _py in (
        (record_headers, record_headers_py),
        (slices, slices_py),
        (copy_ranges, copy_ranges_py),
        (zero_ranges, zero_ranges_py),
        (ipv4_strings, ipv4_strings_py),
        (ipv6_strings, ipv6_strings_py),
        (split, split_py),
        (frame_lengths, frame_lengths_py),
        (join_frames, join_frames_py),
    ):
        _c.__doc__ = _py.__doc__
else:
    record_headers, slices, copy_ranges = (
        record_headers_py,
        slices_py,
        copy_ranges_py,
    )
    split, frame_lengths, join_frames = split_py, frame_lengths_py, join_frames_py
    zero_ranges, ipv4_strings = zero_ranges_py, ipv4_strings_py
    ipv6_strings = ipv6_strings_py
    decode_headers = pcapng_packets = None
    SessionIndex = SessionIndexPy
