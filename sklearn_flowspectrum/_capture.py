"""Read pcap and pcapng captures: records, link layers and a fast numpy path.

Two ways lead from a capture file to dissected packets:

* :func:`iter_records` yields one :class:`Record` per captured packet, for
  every format and link type; :func:`~sklearn_flowspectrum._layers.dissect`
  then takes each frame apart.  This is the reference path.
* :func:`iter_batches` reads the file in large chunks (memory stays bounded
  by the chunk size, whatever the file size) and :func:`decode_batch` decodes
  the headers of all packets of a chunk at once with numpy.  Packets the
  vectorised decoder does not fully understand (fragments, IPv6 extension
  headers, tunnels, uncommon link types, anything truncated or odd) are handed
  to ``dissect`` one by one, so both paths give the same answer for every
  packet.

A corrupt capture raises :class:`CaptureError` (a :class:`ValueError`) that
names the file and the byte offset of the problem, after every record before
it has been delivered.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import os
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sklearn_flowspectrum._layers import (
    _RAW_LINKTYPES,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    SKIP_REASONS,
    dissect,
)

__all__ = [
    "CaptureError",
    "CaptureWarning",
    "Record",
    "capture_format",
    "iter_batches",
    "iter_records",
    "decode_batch",
]

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")

_PCAP_MAGIC_US = 0xA1B2C3D4
_PCAP_MAGIC_NS = 0xA1B23C4D
_PCAP_MAGIC_MODIFIED = 0xA1B2CD34  # Kuznetzov's patched libpcap (24-byte records)
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAPNG_BOM = 0x1A2B3C4D
# libpcap refuses records larger than this (its MAXIMUM_SNAPLEN); a larger
# snaplen in the header raises the limit, up to 64 MiB.
_MAX_SNAPLEN = 262144
_MAX_RECORD = 1 << 26
_MAX_BLOCK = 1 << 26
# LT_LINKTYPE(): the upper bits of the header's link-type field carry FCS flags.
_LINKTYPE_MASK = 0x03FFFFFF

DEFAULT_CHUNK_SIZE = 32 << 20
_PCAPNG_BATCH = 1 << 16


class CaptureError(ValueError):
    """A capture file that cannot be read: not a capture, or corrupt.

    Attributes
    ----------
    file : str
        The path as given.
    offset : int or None
        Byte offset of the problem in the file (``None`` when the file could
        not be opened at all).
    reason : str
        The message without the file name.
    """

    def __init__(self, file, offset, reason):
        self.file = str(file)
        self.offset = offset
        self.reason = reason
        super().__init__(f"{self.file}: {reason}")

    def __reduce__(self):
        return type(self), (self.file, self.offset, self.reason)


class CaptureWarning(UserWarning):
    """Warning issued for a corrupt capture when reading with ``on_error="warn"``."""


class Record(NamedTuple):
    """One captured packet as stored in the file."""

    ts_ns: int  #: capture time, integer nanoseconds since the epoch
    frame: bytes  #: captured bytes, from the link layer on
    orig_len: int  #: length of the packet on the wire
    linktype: int  #: LINKTYPE of the frame (pcapng: of its interface)


class _Batch(NamedTuple):
    """Many records whose frames lie in one buffer (numpy arrays, one entry each)."""

    data: bytes
    start: np.ndarray  # offset of each frame in data
    caplen: np.ndarray
    orig_len: np.ndarray
    ts_ns: np.ndarray
    linktype: np.ndarray


class _PcapHeader(NamedTuple):
    endian: str
    nanosecond: bool
    snaplen: int
    linktype: int


# ---------------------------------------------------------------------------
# Opening and sniffing


def _check_file(path):
    """Return the name of ``path`` for messages; raise if it is not a readable file."""
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
    if not isinstance(name, str):
        raise TypeError(
            f"capture paths must be str or os.PathLike, got {type(path).__name__}"
        )
    p = Path(name)
    if p.is_dir():
        raise CaptureError(name, None, "is a directory, not a capture file")
    if not p.exists():
        raise CaptureError(name, None, "no such file")
    if not p.is_file():
        raise CaptureError(name, None, "is not a regular file")
    return name


def _open(path):
    name = _check_file(path)
    try:
        f = open(name, "rb")  # noqa: SIM115 - closed by the callers' finally
    except OSError as exc:
        raise CaptureError(name, None, f"cannot be opened ({exc.strerror})") from None
    return name, f


def _sniff(f, name):
    """Identify the format: ``("pcap", header)`` or ``("pcapng", None)``."""
    head = f.read(24)
    if not head:
        raise CaptureError(name, 0, "empty file (0 bytes), not a capture")
    if head[:4] == _PCAPNG_SHB:
        f.seek(0)
        return "pcapng", None
    if len(head) >= 4:
        for endian in "<>":
            (magic,) = struct.unpack(endian + "I", head[:4])
            if magic in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
                if len(head) < 24:
                    raise CaptureError(
                        name,
                        0,
                        f"truncated pcap global header at byte 0: {len(head)} of "
                        "24 bytes",
                    )
                _, _, _, _, snaplen, linktype = struct.unpack(
                    endian + "HHiIII", head[4:]
                )
                return "pcap", _PcapHeader(
                    endian,
                    magic == _PCAP_MAGIC_NS,
                    snaplen,
                    linktype & _LINKTYPE_MASK,
                )
            if magic == _PCAP_MAGIC_MODIFIED:
                raise CaptureError(
                    name,
                    0,
                    "modified (Kuznetzov) pcap format is not supported; convert "
                    "it with editcap -F pcap",
                )
    if head[:2] == b"\x1f\x8b":
        raise CaptureError(
            name, 0, "is gzip-compressed; decompress it first (magic 1f8b at byte 0)"
        )
    raise CaptureError(
        name,
        0,
        f"not a pcap or pcapng file (magic {head[:4].hex()} at byte 0)",
    )


def capture_format(path):
    """Return ``"pcap"`` or ``"pcapng"``; raise :class:`CaptureError` otherwise.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "x.pcap")
    ...     with open(p, "wb") as f:
    ...         _ = f.write(bytes.fromhex("d4c3b2a10200040000000000"))
    ...         _ = f.write(bytes.fromhex("00000000ffff000001000000"))
    ...     capture_format(p)
    'pcap'
    """
    name, f = _open(path)
    with f:
        return _sniff(f, name)[0]


# ---------------------------------------------------------------------------
# Classic pcap: chunked record walk

# incl_len of a 16-byte record header (the pad bytes make a header that does
# not fit whole raise struct.error).
_U32_FROM_8 = {
    "<": struct.Struct("<8xI4x").unpack_from,
    ">": struct.Struct(">8xI4x").unpack_from,
}
_ARANGE16 = np.arange(16, dtype=np.int64)


def _walk(buf, unpack):
    """Offsets of the record headers in ``buf`` that fit whole (bodies may not).

    The tight loop is the one per-record Python step of the fast path: it
    only follows the length fields; numpy reads everything else afterwards.
    """
    offsets = []
    append = offsets.append
    off = 0
    try:
        while True:
            append(off)
            off += 16 + unpack(buf, off)[0]
    except struct.error:  # the header at `off` runs past the buffer
        offsets.pop()
    return offsets


def _pcap_batches(f, name, header, chunk_size):
    unpack = _U32_FROM_8[header.endian]
    u4 = np.dtype(header.endian + "u4")
    frac_ns = 1 if header.nanosecond else 1000
    limit = max(_MAX_SNAPLEN, min(header.snaplen, _MAX_RECORD))
    pos = 24  # file offset of buf[0]
    carry = b""
    while True:
        data = f.read(chunk_size)
        eof = len(data) < chunk_size
        buf = carry + data if carry else data
        offs = np.array(_walk(buf, unpack), dtype=np.int64)
        n_ok = 0
        consumed = 0
        if len(offs):
            a = np.frombuffer(buf, np.uint8)
            hdr = a[offs[:, None] + _ARANGE16].view(u4).astype(np.int64)
            incl = hdr[:, 2]
            bad = np.flatnonzero(incl > limit)
            n_hdr = int(bad[0]) if len(bad) else len(offs)
            ends = offs[:n_hdr] + 16 + incl[:n_hdr]
            n_ok = int(np.searchsorted(ends, len(buf), side="right"))
            if n_ok:
                consumed = int(ends[n_ok - 1])
                yield _Batch(
                    buf,
                    offs[:n_ok] + 16,
                    incl[:n_ok],
                    hdr[:n_ok, 3],
                    hdr[:n_ok, 0] * 1_000_000_000 + hdr[:n_ok, 1] * frac_ns,
                    np.full(n_ok, header.linktype, dtype=np.int64),
                )
            if n_ok == n_hdr < len(offs):
                at = pos + int(offs[n_hdr])
                raise CaptureError(
                    name,
                    at,
                    f"record at byte {at} claims {int(incl[n_hdr])} bytes, more "
                    f"than the limit of {limit} (snaplen {header.snaplen}); "
                    "corrupt capture",
                )
        carry = buf[consumed:]
        pos += consumed
        if eof:
            if carry:
                if len(carry) < 16:
                    raise CaptureError(
                        name,
                        pos,
                        f"truncated record header at byte {pos}: {len(carry)} of "
                        "16 bytes",
                    )
                (claim,) = unpack(carry, 0)
                raise CaptureError(
                    name,
                    pos,
                    f"record at byte {pos} claims {claim} bytes but only "
                    f"{len(carry) - 16} remain",
                )
            return


# ---------------------------------------------------------------------------
# pcapng: block walk


def _ts_to_ns(ts, resol, offset_s):
    base, exp = resol
    if base == 10:
        ns = ts * 10 ** (9 - exp) if exp <= 9 else ts // 10 ** (exp - 9)
    else:
        ns = (ts * 1_000_000_000) >> exp
    return ns + offset_s * 1_000_000_000


class _Interface(NamedTuple):
    linktype: int
    snaplen: int
    resol: tuple
    offset_s: int


def _parse_idb(body, e):
    linktype, _, snaplen = struct.unpack_from(e + "HHI", body, 0)
    resol = (10, 6)
    offset_s = 0
    pos = 8
    # Options are read tolerantly: a broken option list only loses the options.
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(e + "HH", body, pos)
        value = body[pos + 4 : pos + 4 + length]
        if code == 0 or len(value) < length:
            break
        if code == 9 and length >= 1:  # if_tsresol
            v = value[0]
            resol = (2, v & 0x7F) if v & 0x80 else (10, v)
        elif code == 14 and length == 8:  # if_tsoffset, seconds
            (offset_s,) = struct.unpack(e + "q", value)
        pos += 4 + ((length + 3) & ~3)
    return _Interface(linktype, snaplen, resol, offset_s)


def _pcapng_records(f, name):
    """Yield ``(ts_ns, frame, orig_len, linktype)`` from a pcapng file."""
    pos = 0
    e = None
    ifaces = []
    read = f.read
    while True:
        head = read(8)
        if not head:
            return
        if len(head) < 8:
            raise CaptureError(
                name,
                pos,
                f"truncated block header at byte {pos}: {len(head)} of 8 bytes",
            )
        if head[:4] == _PCAPNG_SHB:
            bom = read(4)
            if len(bom) < 4:
                raise CaptureError(
                    name, pos, f"truncated section header block at byte {pos}"
                )
            if struct.unpack("<I", bom)[0] == _PCAPNG_BOM:
                e = "<"
            elif struct.unpack(">I", bom)[0] == _PCAPNG_BOM:
                e = ">"
            else:
                raise CaptureError(
                    name,
                    pos + 8,
                    f"section header block at byte {pos} has a bad byte-order "
                    f"magic ({bom.hex()})",
                )
            (total,) = struct.unpack(e + "I", head[4:])
            ifaces = []
            if total < 28 or total % 4 or total > _MAX_BLOCK:
                raise CaptureError(
                    name,
                    pos,
                    f"section header block at byte {pos} has an invalid length {total}",
                )
            body = bom + read(total - 12)
        else:
            btype, total = struct.unpack(e + "II", head)
            if total < 12 or total % 4 or total > _MAX_BLOCK:
                raise CaptureError(
                    name,
                    pos,
                    f"block at byte {pos} (type {btype:#x}) has an invalid length "
                    f"{total}",
                )
            body = read(total - 8)
        if len(body) < total - 8:
            raise CaptureError(
                name,
                pos,
                f"block at byte {pos} claims {total} bytes but only "
                f"{8 + len(body)} remain",
            )
        (trailer,) = struct.unpack_from(e + "I", body, len(body) - 4)
        if trailer != total:
            raise CaptureError(
                name,
                pos,
                f"block at byte {pos} ends with length {trailer}, not {total}; "
                "corrupt capture",
            )
        body = body[:-4]
        if head[:4] == _PCAPNG_SHB:
            pass
        elif btype == 6 or btype == 2:  # enhanced packet block / obsolete packet block
            if btype == 6:
                if len(body) < 20:
                    raise CaptureError(
                        name, pos, f"enhanced packet block at byte {pos} is too short"
                    )
                iface, hi, lo, caplen, orig = struct.unpack_from(e + "IIIII", body, 0)
            else:
                if len(body) < 20:
                    raise CaptureError(
                        name, pos, f"packet block at byte {pos} is too short"
                    )
                iface, _, hi, lo, caplen, orig = struct.unpack_from(
                    e + "HHIIII", body, 0
                )
            if iface >= len(ifaces):
                raise CaptureError(
                    name,
                    pos,
                    f"packet block at byte {pos} refers to interface {iface}, but "
                    f"the section defines {len(ifaces)}",
                )
            if 20 + caplen > len(body):
                raise CaptureError(
                    name,
                    pos,
                    f"packet block at byte {pos} claims {caplen} captured bytes "
                    f"but holds {len(body) - 20}",
                )
            i = ifaces[iface]
            yield (
                _ts_to_ns((hi << 32) | lo, i.resol, i.offset_s),
                body[20 : 20 + caplen],
                orig,
                i.linktype,
            )
        elif btype == 3:  # simple packet block: no timestamp, interface 0
            if not ifaces:
                raise CaptureError(
                    name,
                    pos,
                    f"simple packet block at byte {pos} but the section defines "
                    "no interface",
                )
            (orig,) = struct.unpack_from(e + "I", body, 0)
            i = ifaces[0]
            caplen = min(orig, len(body) - 4)
            if i.snaplen:
                caplen = min(caplen, i.snaplen)
            # libpcap also reports time 0 for simple packet blocks.
            yield (0, body[4 : 4 + caplen], orig, i.linktype)
        elif btype == 1:  # interface description block
            if len(body) < 8:
                raise CaptureError(
                    name, pos, f"interface description block at byte {pos} is too short"
                )
            ifaces.append(_parse_idb(body, e))
        pos += total


def _pcapng_batches(f, name, batch_size=_PCAPNG_BATCH):
    records = _pcapng_records(f, name)
    while True:
        chunk = []
        for rec in records:
            chunk.append(rec)
            if len(chunk) >= batch_size:
                break
        if not chunk:
            return
        ts, frames, orig, lt = zip(*chunk)
        caplen = np.fromiter(map(len, frames), dtype=np.int64, count=len(frames))
        start = np.zeros(len(frames), dtype=np.int64)
        np.cumsum(caplen[:-1], out=start[1:])
        yield _Batch(
            b"".join(frames),
            start,
            caplen,
            np.array(orig, dtype=np.int64),
            np.array(ts, dtype=np.int64),
            np.array(lt, dtype=np.int64),
        )
        if len(chunk) < batch_size:
            return


# ---------------------------------------------------------------------------
# Public iterators


def iter_batches(path, *, chunk_size=DEFAULT_CHUNK_SIZE):
    """Yield the packets of a capture in batches (the fast path's input).

    Classic pcap is read ``chunk_size`` bytes at a time, so memory does not
    grow with the file; pcapng is read block by block and grouped.

    Parameters
    ----------
    path : str or os.PathLike
        A pcap or pcapng file.
    chunk_size : int, default=32 MiB
        Bytes read at once from a classic pcap file.

    Yields
    ------
    batch : _Batch
        ``data`` (bytes) and per-record numpy arrays ``start``, ``caplen``,
        ``orig_len``, ``ts_ns``, ``linktype``.

    Raises
    ------
    CaptureError
        When the file is not a capture or is corrupt, after every batch before
        the problem has been yielded.
    """
    name, f = _open(path)
    with f:
        fmt, header = _sniff(f, name)
        if fmt == "pcap":
            yield from _pcap_batches(f, name, header, int(chunk_size))
        else:
            yield from _pcapng_batches(f, name)


def iter_records(path):
    """Yield every packet of a pcap or pcapng file as a :class:`Record`.

    Parameters
    ----------
    path : str or os.PathLike
        A classic pcap file (either byte order, micro- or nanosecond
        timestamps) or a pcapng file (any number of sections and interfaces,
        enhanced, simple and obsolete packet blocks).

    Yields
    ------
    record : Record
        ``(ts_ns, frame, orig_len, linktype)``.

    Raises
    ------
    CaptureError
        A :class:`ValueError` naming the file and the byte offset when the
        file is not a capture or is corrupt, raised after every record before
        the problem has been yielded.

    Examples
    --------
    >>> import os, struct, tempfile
    >>> frame = bytes(60)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "one.pcap")
    ...     with open(p, "wb") as f:
    ...         _ = f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    ...         _ = f.write(struct.pack("<IIII", 1, 500, 60, 60) + frame)
    ...     [(r.ts_ns, len(r.frame), r.linktype) for r in iter_records(p)]
    [(1000500000, 60, 1)]
    """
    name, f = _open(path)
    with f:
        fmt, header = _sniff(f, name)
        if fmt == "pcapng":
            for rec in _pcapng_records(f, name):
                yield Record(*rec)
            return
        for b in _pcap_batches(f, name, header, DEFAULT_CHUNK_SIZE):
            data = b.data
            for s, c, o, t, lt in zip(
                b.start.tolist(),
                b.caplen.tolist(),
                b.orig_len.tolist(),
                b.ts_ns.tolist(),
                b.linktype.tolist(),
            ):
                yield Record(t, data[s : s + c], o, lt)


# ---------------------------------------------------------------------------
# Vectorised header decoding

_SKIP_CODE = {reason: i + 1 for i, reason in enumerate(SKIP_REASONS)}
_TRUNCATED = _SKIP_CODE["truncated"]
_MALFORMED = _SKIP_CODE["malformed"]
_FRAGMENT = _SKIP_CODE["fragment"]
_NOT_IP = _SKIP_CODE["not_ip"]
_NOT_TCP_UDP = _SKIP_CODE["not_tcp_udp"]
_UNDECIDED = -1
_VLAN = (0x8100, 0x88A8, 0x9100)
# Ethertypes and next headers that dissect() follows further than the fast path.
_ETH_DEFER = (0x8864, 0x8847, 0x8848)
_IP_DEFER = (4, 41)
_IPV6_DEFER = (0, 43, 60, 44, 51, 4, 41)
_RAW = tuple(sorted(_RAW_LINKTYPES))
_ARANGE4 = np.arange(4, dtype=np.int64)


class _Decoded(NamedTuple):
    """Per-packet decoding of a batch; fields other than ``skip`` hold only
    where ``skip == 0``.  Offsets are absolute positions in the batch data."""

    skip: np.ndarray  # int8: 0 usable, else 1 + index in SKIP_REASONS
    ip_version: np.ndarray  # int8
    proto: np.ndarray  # int16
    src: np.ndarray  # (n, 16) uint8, IPv4 in the first 4 bytes
    dst: np.ndarray
    sport: np.ndarray  # int32
    dport: np.ndarray
    l4: np.ndarray  # int64
    payload: np.ndarray  # int64
    payload_end: np.ndarray  # int64
    n_dissected: int  # packets that went through dissect()


def _isin(x, values):
    """``np.isin`` for a few constants, without its per-call overhead."""
    out = x == values[0]
    for v in values[1:]:
        out |= x == v
    return out


def _be16(a, idx):
    return (a[idx].astype(np.int64) << 8) | a[idx + 1]


def decode_batch(batch):
    """Decode link, IP and TCP/UDP headers of every packet of a batch.

    The common cases (Ethernet with up to two VLAN tags, Linux SLL and raw IP
    carrying IPv4 or IPv6 without extension headers, then TCP or UDP; and
    the plain skips: truncated, malformed, fragment, not IP, not TCP/UDP) are
    decoded for all packets at once.  Everything else goes through
    :func:`~sklearn_flowspectrum._layers.dissect`, whose results the
    vectorised decoding reproduces exactly.

    Parameters
    ----------
    batch : _Batch

    Returns
    -------
    _Decoded
    """
    a = np.frombuffer(batch.data, np.uint8)
    start, cap, lt = batch.start, batch.caplen, batch.linktype
    n = len(start)
    skip = np.full(n, _UNDECIDED, dtype=np.int8)
    ver = np.zeros(n, dtype=np.int8)
    proto = np.full(n, -1, dtype=np.int16)
    src = np.zeros((n, 16), dtype=np.uint8)
    dst = np.zeros((n, 16), dtype=np.uint8)
    sport = np.full(n, -1, dtype=np.int32)
    dport = np.full(n, -1, dtype=np.int32)
    l4 = np.full(n, -1, dtype=np.int64)
    pay = np.full(n, -1, dtype=np.int64)
    pay_end = np.full(n, -1, dtype=np.int64)
    l3 = np.full(n, -1, dtype=np.int64)  # relative to the frame start
    want = np.zeros(n, dtype=np.int8)  # IP version the link layer announced

    def dispatch(idx, ethertype, off):
        # Mirrors _layers._after_ethertype for the cases decided here.
        v4 = ethertype == 0x0800
        v6 = ethertype == 0x86DD
        l3[idx[v4]] = off[v4]
        want[idx[v4]] = 4
        l3[idx[v6]] = off[v6]
        want[idx[v6]] = 6
        other = ~(v4 | v6)
        skip[idx[other & ~_isin(ethertype, _ETH_DEFER)]] = _NOT_IP

    # Link layers ----------------------------------------------------------
    idx = np.flatnonzero(lt == LINKTYPE_ETHERNET)
    if len(idx):
        c = cap[idx]
        short = c < 14
        skip[idx[short]] = _TRUNCATED
        idx, c = idx[~short], c[~short]
        s = start[idx]
        pos = np.full(len(idx), 12, dtype=np.int64)
        et = _be16(a, s + 12)
        for _ in range(2):
            tag = _isin(et, _VLAN)
            if not tag.any():
                break
            cut = tag & (pos + 6 > c)
            skip[idx[cut]] = _TRUNCATED
            tag &= ~cut
            pos[tag] += 4
            et[tag] = _be16(a, s[tag] + pos[tag])
            keep = ~cut
            idx, c, s, pos, et = idx[keep], c[keep], s[keep], pos[keep], et[keep]
        deep = _isin(et, _VLAN)  # a third tag: left to dissect()
        dispatch(idx[~deep], et[~deep], pos[~deep] + 2)

    idx = np.flatnonzero(lt == LINKTYPE_LINUX_SLL)
    if len(idx):
        short = cap[idx] < 16
        skip[idx[short]] = _TRUNCATED
        idx = idx[~short]
        dispatch(idx, _be16(a, start[idx] + 14), np.full(len(idx), 16))

    raw = _isin(lt, _RAW)
    l3[raw] = 0
    l3[lt == LINKTYPE_IPV4] = 0
    want[lt == LINKTYPE_IPV4] = 4
    l3[lt == LINKTYPE_IPV6] = 0
    want[lt == LINKTYPE_IPV6] = 6

    # IP -------------------------------------------------------------------
    idx = np.flatnonzero((l3 >= 0) & (skip == _UNDECIDED))
    c = cap[idx]
    o = l3[idx]
    cut = o >= c
    skip[idx[cut]] = _TRUNCATED
    idx, c, o = idx[~cut], c[~cut], o[~cut]
    p = start[idx] + o
    nib = (a[p] >> 4).astype(np.int8)
    w = want[idx]
    # A version the link layer contradicts, or raw data that is not IP, is
    # left to dissect(); it is rare.
    fine = np.where(w == 0, (nib == 4) | (nib == 6), nib == w)
    idx, c, o, p, nib = idx[fine], c[fine], o[fine], p[fine], nib[fine]

    t_idx = []  # transport candidates: (idx, c, l4 rel, end rel, proto)

    m4 = nib == 4
    if m4.any():
        i, cc, oo, pp = idx[m4], c[m4], o[m4], p[m4]
        cut = oo + 20 > cc
        skip[i[cut]] = _TRUNCATED
        i, cc, oo, pp = i[~cut], cc[~cut], oo[~cut], pp[~cut]
        ihl = (a[pp] & 0x0F).astype(np.int64) * 4
        total = _be16(a, pp + 2)
        bad = (ihl < 20) | ((total != 0) & (total < ihl))
        skip[i[bad]] = _MALFORMED
        cut = ~bad & (oo + ihl > cc)
        skip[i[cut]] = _TRUNCATED
        ok = ~(bad | cut)
        i, cc, oo, pp, ihl, total = i[ok], cc[ok], oo[ok], pp[ok], ihl[ok], total[ok]
        ver[i] = 4
        pr = a[pp + 9].astype(np.int16)
        proto[i] = pr
        src[i, :4] = a[(pp + 12)[:, None] + _ARANGE4]
        dst[i, :4] = a[(pp + 16)[:, None] + _ARANGE4]
        frag = (_be16(a, pp + 6) & 0x3FFF) != 0
        skip[i[frag]] = _FRAGMENT
        end = np.where(total == 0, cc, np.minimum(oo + total, cc))
        tr = ~frag & ((pr == IPPROTO_TCP) | (pr == IPPROTO_UDP))
        skip[i[~frag & ~tr & ~_isin(pr, _IP_DEFER)]] = _NOT_TCP_UDP
        t_idx.append((i[tr], cc[tr], (oo + ihl)[tr], end[tr], pr[tr]))

    m6 = nib == 6
    if m6.any():
        i, cc, oo, pp = idx[m6], c[m6], o[m6], p[m6]
        cut = oo + 40 > cc
        skip[i[cut]] = _TRUNCATED
        i, cc, oo, pp = i[~cut], cc[~cut], oo[~cut], pp[~cut]
        plen = _be16(a, pp + 4)
        end = np.where(plen == 0, cc, np.minimum(oo + 40 + plen, cc))
        nxt = a[pp + 6].astype(np.int16)
        tr = (nxt == IPPROTO_TCP) | (nxt == IPPROTO_UDP)
        skip[i[~tr & ~_isin(nxt, _IPV6_DEFER)]] = _NOT_TCP_UDP
        ver[i] = 6
        proto[i] = nxt
        ar16 = np.arange(16, dtype=np.int64)
        src[i] = a[(pp + 8)[:, None] + ar16]
        dst[i] = a[(pp + 24)[:, None] + ar16]
        t_idx.append((i[tr], cc[tr], (oo + 40)[tr], end[tr], nxt[tr]))

    # Transport ------------------------------------------------------------
    for i, cc, o4, end, pr in t_idx:
        s = start[i]
        tcp = pr == IPPROTO_TCP
        # TCP
        ti, tc, to, te, ts = i[tcp], cc[tcp], o4[tcp], end[tcp], s[tcp]
        cut = to + 20 > tc
        skip[ti[cut]] = _TRUNCATED
        ti, tc, to, te, ts = ti[~cut], tc[~cut], to[~cut], te[~cut], ts[~cut]
        doff = (a[ts + to + 12] >> 4).astype(np.int64) * 4
        bad = doff < 20
        skip[ti[bad]] = _MALFORMED
        cut = ~bad & (to + doff > tc)
        skip[ti[cut]] = _TRUNCATED
        bad2 = ~bad & ~cut & (to + doff > te)
        skip[ti[bad2]] = _MALFORMED
        ok = ~(bad | cut | bad2)
        ti, to, te, ts, doff = ti[ok], to[ok], te[ok], ts[ok], doff[ok]
        skip[ti] = 0
        l4[ti] = ts + to
        pay[ti] = ts + to + doff
        pay_end[ti] = ts + te
        # UDP
        ui, uc, uo, ue, us = i[~tcp], cc[~tcp], o4[~tcp], end[~tcp], s[~tcp]
        cut = uo + 8 > uc
        skip[ui[cut]] = _TRUNCATED
        bad = ~cut & (uo + 8 > ue)
        skip[ui[bad]] = _MALFORMED
        ok = ~(cut | bad)
        ui, uo, ue, us = ui[ok], uo[ok], ue[ok], us[ok]
        skip[ui] = 0
        l4[ui] = us + uo
        pay[ui] = us + uo + 8
        pay_end[ui] = us + ue

    ok = np.flatnonzero(skip == 0)
    q = l4[ok]
    sport[ok] = _be16(a, q)
    dport[ok] = _be16(a, q + 2)

    # Everything else: one frame at a time through the reference dissector --
    rest = np.flatnonzero(skip == _UNDECIDED)
    data = batch.data
    for i, s, cc, t in zip(
        rest.tolist(), start[rest].tolist(), cap[rest].tolist(), lt[rest].tolist()
    ):
        d = dissect(data[s : s + cc], t)
        if d.skip is not None:
            skip[i] = _SKIP_CODE[d.skip]
            continue
        skip[i] = 0
        src[i] = dst[i] = 0
        ver[i] = d.ip_version
        proto[i] = d.proto
        src[i, : len(d.src)] = np.frombuffer(d.src, np.uint8)
        dst[i, : len(d.dst)] = np.frombuffer(d.dst, np.uint8)
        sport[i] = d.sport
        dport[i] = d.dport
        l4[i] = s + d.l4
        pay[i] = s + d.payload
        pay_end[i] = s + d.payload_end
    return _Decoded(
        skip, ver, proto, src, dst, sport, dport, l4, pay, pay_end, len(rest)
    )
