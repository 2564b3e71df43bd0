"""Read pcap and pcapng captures: records, link layers and a fast path.

Two ways lead from a capture file to dissected packets:

* :func:`iter_records` yields one :class:`Record` per captured packet, for
  every format and link type; :func:`~sklearn_flowspectrum._layers.dissect`
  then takes each frame apart.  This is the reference path.
* :func:`iter_batches` reads the file in large chunks (memory stays bounded
  by the chunk size, whatever the file size) and :func:`decode_batch` decodes
  the headers of all packets of a chunk at once: in one compiled loop when
  :mod:`sklearn_flowspectrum._loops` has it, else with numpy (the same
  decisions).  Packets this decoder does not fully understand (fragments,
  IPv6 extension headers, PPPoE, MPLS, deeply nested tunnels, uncommon link
  types, anything odd) are handed to ``dissect`` one by one, so both paths
  give the same answer for every packet.

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

from sklearn_flowspectrum._layers import SKIP_REASONS, dissect
from sklearn_flowspectrum._loops import decode_headers, pcapng_packets, record_headers
from sklearn_flowspectrum._protocols import (
    ETHERTYPE_MPLS,
    ETHERTYPE_PPPOE_SESSION,
    ETHERTYPE_VLAN,
    GZIP_MAGIC,
    IPPROTO_AH,
    IPPROTO_FRAGMENT,
    IPPROTO_IPIP,
    IPPROTO_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_EXT_8,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_MASK,
    MAX_BLOCK,
    MAX_RECORD,
    MAX_SNAPLEN,
    PCAP_GLOBAL_LEN,
    PCAP_MAGIC_MODIFIED,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    PCAPNG_BYTE_ORDER_MAGIC,
    PCAPNG_EPB,
    PCAPNG_IDB,
    PCAPNG_OPT_ENDOFOPT,
    PCAPNG_OPT_IF_TSOFFSET,
    PCAPNG_OPT_IF_TSRESOL,
    PCAPNG_PB,
    PCAPNG_SHB_MAGIC,
    PCAPNG_SPB,
    RAW_LINKTYPES,
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

# Chunks of a few MiB keep the header bytes of a chunk in the CPU caches
# while numpy makes its passes over them; at 4 MiB the per-batch arrays are
# also small enough to be reused rather than mapped afresh for every chunk.
DEFAULT_CHUNK_SIZE = 4 << 20
_PAD = 256
_ZEROS = bytes(_PAD)
_PCAPNG_BATCH = 1 << 16
# pcapng blocks read here, by type: name and the bytes of fixed fields that
# their body (without the trailing length) must hold.
_PCAPNG_BLOCKS = {
    PCAPNG_IDB: ("interface description block", 8),  # linktype, reserved, snaplen
    PCAPNG_PB: ("packet block", 20),  # interface, drops, time, caplen, length
    PCAPNG_SPB: ("simple packet block", 4),  # original length
    PCAPNG_EPB: ("enhanced packet block", 20),  # interface, time, caplen, length
}


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
    """Many records whose frames lie in one buffer (numpy arrays, one entry each).

    ``data`` holds at least ``_PAD`` bytes after the last frame, so that the
    vectorised decoder may read a fixed distance past any frame start without
    bounds checks (what it reads beyond a frame is masked out).
    """

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
    head = f.read(PCAP_GLOBAL_LEN)
    if not head:
        raise CaptureError(name, 0, "empty file (0 bytes), not a capture")
    if head[:4] == PCAPNG_SHB_MAGIC:
        f.seek(0)
        return "pcapng", None
    if len(head) >= 4:
        for endian in "<>":
            (magic,) = struct.unpack(endian + "I", head[:4])
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                if len(head) < PCAP_GLOBAL_LEN:
                    raise CaptureError(
                        name,
                        0,
                        f"truncated pcap global header at byte 0: {len(head)} of "
                        f"{PCAP_GLOBAL_LEN} bytes",
                    )
                _, _, _, _, snaplen, linktype = struct.unpack(
                    endian + "HHiIII", head[4:]
                )
                return "pcap", _PcapHeader(
                    endian,
                    magic == PCAP_MAGIC_NS,
                    snaplen,
                    linktype & LINKTYPE_MASK,
                )
            if magic == PCAP_MAGIC_MODIFIED:
                raise CaptureError(
                    name,
                    0,
                    "modified (Kuznetzov) pcap format is not supported; convert "
                    "it with editcap -F pcap",
                )
    if head[:2] == GZIP_MAGIC:
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


def _strided(data, dtype, length):
    """Values of ``dtype`` starting at every byte of ``data`` (unaligned view)."""
    dtype = np.dtype(dtype)
    n = max(length - dtype.itemsize + 1, 0)
    return np.ndarray((n,), dtype=dtype, buffer=data, strides=(1,))


def _pcap_batches(f, name, header, chunk_size, reuse=False):
    """Batches of whole records, read ``chunk_size`` bytes at a time.

    With ``reuse`` one buffer serves all chunks (no fresh memory to fault in
    per chunk): a batch's data is then only valid until the next one.
    """
    big = header.endian == ">"
    frac_ns = 1 if header.nanosecond else 1000
    limit = max(MAX_SNAPLEN, min(header.snaplen, MAX_RECORD))
    pos = 24  # file offset of buf[0]
    buf = None
    carry = 0  # length of the partial record left at buf[consumed:]
    consumed = 0
    remaining = max(os.fstat(f.fileno()).st_size - pos, 0)
    while True:
        want = min(chunk_size, remaining)
        need = carry + want + _PAD
        if buf is None or not reuse or len(buf) < need:
            if reuse and remaining > want:
                # More chunks follow: leave room for the usual carry (a
                # partial record) so the buffer need not grow again; each
                # regrowth faults in a fresh chunk-sized allocation.
                need = max(need, want + 16 + MAX_SNAPLEN + _PAD)
            new = bytearray(need)
            if carry:
                new[:carry] = buf[consumed : consumed + carry]
            buf = new
        elif carry:
            buf[:carry] = buf[consumed : consumed + carry]
        with memoryview(buf) as mv:
            got = f.readinto(mv[carry : carry + want]) if want else 0
            remaining -= got
            eof = got < want or remaining <= 0
            size = carry + got
            buf[size : size + _PAD] = _ZEROS  # the decoder reads past frame ends
            # The one step that follows record lengths (compiled when built).
            offs, words = record_headers(mv[:size], big)
        n_ok = 0
        consumed = 0
        if len(offs):
            incl = words[:, 2].astype(np.int64)
            bad = np.flatnonzero(incl > limit)
            n_hdr = int(bad[0]) if len(bad) else len(offs)
            ends = offs[:n_hdr] + 16 + incl[:n_hdr]
            n_ok = int(np.searchsorted(ends, size, side="right"))
            if n_ok:
                consumed = int(ends[n_ok - 1])
                w = words[:n_ok]
                ts = w[:, 0].astype(np.int64) * 1_000_000_000
                ts += w[:, 1].astype(np.int64) * frac_ns
                batch = _Batch(
                    buf,
                    offs[:n_ok] + 16,
                    incl[:n_ok],
                    w[:, 3].astype(np.int64),
                    ts,
                    np.full(n_ok, header.linktype, dtype=np.int64),
                )
                yield batch
                del batch
            if n_ok == n_hdr < len(offs):
                at = pos + int(offs[n_hdr])
                raise CaptureError(
                    name,
                    at,
                    f"record at byte {at} claims {int(incl[n_hdr])} bytes, more "
                    f"than the limit of {limit} (snaplen {header.snaplen}); "
                    "corrupt capture",
                )
        carry = size - consumed
        pos += consumed
        if eof:
            if carry:
                if carry < 16:
                    raise CaptureError(
                        name,
                        pos,
                        f"truncated record header at byte {pos}: {carry} of 16 bytes",
                    )
                (claim,) = struct.unpack_from(header.endian + "I", buf, consumed + 8)
                raise CaptureError(
                    name,
                    pos,
                    f"record at byte {pos} claims {claim} bytes but only "
                    f"{carry - 16} remain",
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
        if code == PCAPNG_OPT_ENDOFOPT or len(value) < length:
            break
        if code == PCAPNG_OPT_IF_TSRESOL and length >= 1:
            v = value[0]
            resol = (2, v & 0x7F) if v & 0x80 else (10, v)
        elif code == PCAPNG_OPT_IF_TSOFFSET and length == 8:  # seconds
            (offset_s,) = struct.unpack(e + "q", value)
        pos += 4 + ((length + 3) & ~3)
    return _Interface(linktype, snaplen, resol, offset_s)


class _Readahead:
    """A file read through a buffer of ``size`` bytes that can be looked into.

    ``read`` behaves like the file's; ``window`` returns the buffer and the
    range of unread bytes in it (refilled first when less than half is
    left), followed by ``_PAD`` zero bytes; ``skip`` consumes from it.  A
    refill makes a new buffer, so views of an old one stay valid.  Buffers
    are no larger than what is left of the file, and there is no refill
    once the file's end is in the buffer (files of one session are small).
    """

    def __init__(self, f, size):
        self.f, self.size = f, size
        self.buf, self.at, self.end = bytearray(_PAD), 0, 0
        self.at_eof = False

    def _left(self):
        """Bytes of the file not read yet (as far as its size says)."""
        try:
            return os.fstat(self.f.fileno()).st_size - self.f.tell()
        except (OSError, AttributeError, ValueError):  # not a plain file
            return self.size

    def window(self):
        if not self.at_eof and self.end - self.at < self.size // 2:
            rest = self.buf[self.at : self.end]
            left = self._left()
            if left <= 0:
                self.at_eof = True
                return self.buf, self.at, self.end
            room = min(self.size, len(rest) + left)
            buf = bytearray(room + _PAD)
            buf[: len(rest)] = rest
            with memoryview(buf) as mv:
                got = self.f.readinto(mv[len(rest) : room])
            self.buf, self.at, self.end = buf, 0, len(rest) + got
            self.at_eof = got < room - len(rest)
        return self.buf, self.at, self.end

    def skip(self, n):
        self.at += n

    def read(self, n):
        take = min(n, self.end - self.at)
        out = bytes(self.buf[self.at : self.at + take])
        self.at += take
        if take < n:
            out += self.f.read(n - take)
        return out


def _ts_scale(iface):
    """``(multiplier, offset_ns)`` giving an interface's ``ts_ns`` exactly in
    int64 (decimal resolutions up to nanoseconds); multiplier 0 otherwise."""
    base, exp = iface.resol
    off = iface.offset_s * 1_000_000_000
    if base != 10 or exp > 9 or abs(off) >= 2**61:
        return 0, 0
    return 10 ** (9 - exp), off


def _pcapng_records(f, name, runs=False):
    """Yield ``(ts_ns, frame, orig_len, linktype)`` from a pcapng file.

    With ``runs`` (and the compiled loops), consecutive enhanced packet
    blocks come as one ``_Batch`` each time instead, walked in one compiled
    call; every other block, and any block the walk does not vouch for, is
    read here, block by block.
    """
    pos = 0
    e = None
    ifaces = []
    if runs and pcapng_packets is not None:
        reader = _Readahead(f, DEFAULT_CHUNK_SIZE)
        read = reader.read
    else:
        reader, read = None, f.read
    scale = None
    while True:
        if reader is not None and ifaces:
            if scale is None:  # the interfaces changed
                scale = [np.array(c, np.int64) for c in zip(*map(_ts_scale, ifaces))]
                lts = np.array([i.linktype for i in ifaces], dtype=np.int64)
            buf, at, end = reader.window()
            stop, data, caplen, orig, ts, iface = pcapng_packets(
                buf, at, end, e == ">", *scale
            )
            if stop > at:
                reader.skip(stop - at)
                pos += stop - at
                iface = np.frombuffer(iface, np.int64)
                yield _Batch(
                    buf,
                    np.frombuffer(data, np.int64),
                    np.frombuffer(caplen, np.int64),
                    np.frombuffer(orig, np.int64),
                    np.frombuffer(ts, np.int64),
                    lts[iface],
                )
                continue
        head = read(8)
        if not head:
            return
        if len(head) < 8:
            raise CaptureError(
                name,
                pos,
                f"truncated block header at byte {pos}: {len(head)} of 8 bytes",
            )
        if head[:4] == PCAPNG_SHB_MAGIC:
            bom = read(4)
            if len(bom) < 4:
                raise CaptureError(
                    name, pos, f"truncated section header block at byte {pos}"
                )
            if struct.unpack("<I", bom)[0] == PCAPNG_BYTE_ORDER_MAGIC:
                e = "<"
            elif struct.unpack(">I", bom)[0] == PCAPNG_BYTE_ORDER_MAGIC:
                e = ">"
            else:
                raise CaptureError(
                    name,
                    pos + 8,
                    f"section header block at byte {pos} has a bad byte-order "
                    f"magic ({bom.hex()})",
                )
            (total,) = struct.unpack(e + "I", head[4:])
            ifaces, scale = [], None
            if total < 28 or total % 4 or total > MAX_BLOCK:
                raise CaptureError(
                    name,
                    pos,
                    f"section header block at byte {pos} has an invalid length {total}",
                )
            body = bom + read(total - 12)
        else:
            btype, total = struct.unpack(e + "II", head)
            if total < 12 or total % 4 or total > MAX_BLOCK:
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
        if head[:4] == PCAPNG_SHB_MAGIC:
            btype = None
        elif btype in _PCAPNG_BLOCKS:
            what, fixed = _PCAPNG_BLOCKS[btype]
            if len(body) < fixed:
                raise CaptureError(
                    name,
                    pos,
                    f"{what} at byte {pos} is too short: {total} bytes, its fixed "
                    f"fields need {fixed + 12}",
                )
        if btype == PCAPNG_EPB or btype == PCAPNG_PB:
            if btype == PCAPNG_EPB:
                iface, hi, lo, caplen, orig = struct.unpack_from(e + "IIIII", body, 0)
            else:
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
            ts_ns = _ts_to_ns((hi << 32) | lo, i.resol, i.offset_s)
            if not -(2**63) <= ts_ns < 2**63:
                raise CaptureError(
                    name,
                    pos,
                    f"packet block at byte {pos} has a timestamp of {ts_ns} ns, "
                    "outside the years 1677 to 2262 that 64-bit nanoseconds hold; "
                    "corrupt capture",
                )
            yield (ts_ns, body[20 : 20 + caplen], orig, i.linktype)
        elif btype == PCAPNG_SPB:  # no timestamp, interface 0
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
        elif btype == PCAPNG_IDB:
            ifaces.append(_parse_idb(body, e))
            scale = None
        pos += total


def _pcapng_batches(f, name, batch_size=_PCAPNG_BATCH):
    chunk = []
    try:
        for rec in _pcapng_records(f, name, runs=True):
            if isinstance(rec, _Batch):  # a run of packet blocks, already a batch
                if chunk:
                    yield _records_batch(chunk)
                    chunk = []
                yield rec
                continue
            chunk.append(rec)
            if len(chunk) >= batch_size:
                yield _records_batch(chunk)
                chunk = []
    except CaptureError:
        # Every packet before the problem is delivered first.
        if chunk:
            yield _records_batch(chunk)
        raise
    if chunk:
        yield _records_batch(chunk)


def _records_batch(chunk):
    """A batch of ``(ts_ns, frame, orig_len, linktype)`` records."""
    ts, frames, orig, lt = zip(*chunk)
    caplen = np.fromiter(map(len, frames), dtype=np.int64, count=len(frames))
    start = np.zeros(len(frames), dtype=np.int64)
    np.cumsum(caplen[:-1], out=start[1:])
    return _Batch(
        b"".join((*frames, _ZEROS)),
        start,
        caplen,
        np.array(orig, dtype=np.int64),
        np.array(ts, dtype=np.int64),
        np.array(lt, dtype=np.int64),
    )


# ---------------------------------------------------------------------------
# Public iterators


def iter_batches(path, *, chunk_size=DEFAULT_CHUNK_SIZE, _reuse=False):
    """Yield the packets of a capture in batches (the fast path's input).

    Classic pcap is read ``chunk_size`` bytes at a time, so memory does not
    grow with the file; pcapng through a read-ahead buffer of the default
    chunk size, runs of enhanced packet blocks in one compiled walk each
    (when built) and every other block one at a time.

    Parameters
    ----------
    path : str or os.PathLike
        A pcap or pcapng file.
    chunk_size : int, default=4 MiB
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
            yield from _pcap_batches(f, name, header, int(chunk_size), _reuse)
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
        for b in _pcap_batches(f, name, header, DEFAULT_CHUNK_SIZE, reuse=True):
            with memoryview(b.data) as data:
                for s, c, o, t, lt in zip(
                    b.start.tolist(),
                    b.caplen.tolist(),
                    b.orig_len.tolist(),
                    b.ts_ns.tolist(),
                    b.linktype.tolist(),
                ):
                    yield Record(t, data[s : s + c].tobytes(), o, lt)


# ---------------------------------------------------------------------------
# Vectorised header decoding

_SKIP_CODE = {reason: i + 1 for i, reason in enumerate(SKIP_REASONS)}
_TRUNCATED = _SKIP_CODE["truncated"]
_MALFORMED = _SKIP_CODE["malformed"]
_FRAGMENT = _SKIP_CODE["fragment"]
_NOT_IP = _SKIP_CODE["not_ip"]
_NOT_TCP_UDP = _SKIP_CODE["not_tcp_udp"]
_UNDECIDED = -1
# Ethertypes and next headers that dissect() follows further than the fast path.
_ETH_DEFER = (ETHERTYPE_PPPOE_SESSION, *ETHERTYPE_MPLS)
_IPV6_DEFER = (*IPV6_EXT_8, IPPROTO_FRAGMENT, IPPROTO_AH, IPPROTO_IPIP, IPPROTO_IPV6)
_RAW = tuple(sorted(RAW_LINKTYPES))
_RAW_ARRAY = np.array(_RAW, dtype=np.int64)
_HEADER_CODES = (_TRUNCATED, _MALFORMED, _FRAGMENT, _NOT_IP, _NOT_TCP_UDP)


class _Decoded(NamedTuple):
    """Decoding of a batch: ``skip`` for every packet, the rest for the usable
    packets ``idx`` only (ascending).  Offsets are absolute positions in the
    batch data; IPv4 addresses are in ``*_hi`` (as a big-endian number) with
    ``*_lo == 0``, IPv6 addresses are split in two big-endian 64-bit halves."""

    skip: np.ndarray  # int8, every packet: 0 usable, else 1 + SKIP_REASONS index
    idx: np.ndarray  # int64, the usable packets
    ip_version: np.ndarray  # int8
    proto: np.ndarray  # int16
    src_hi: np.ndarray  # uint64
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    sport: np.ndarray  # int64
    dport: np.ndarray
    l4: np.ndarray  # int64
    payload: np.ndarray
    payload_end: np.ndarray
    n_dissected: int  # packets that went through dissect()


def _isin(x, values):
    """``np.isin`` for a few constants, without its per-call overhead."""
    out = x == values[0]
    for v in values[1:]:
        out |= x == v
    return out


def _link(A, U16, s, c, linktype):
    """Link layer of frames of one link type: ``(skip, l3, want)``.

    ``l3`` is the offset of the IP header, ``want`` the IP version the link
    layer announces (0: read it from the header, -1: not IP).  Undecided frames keep
    ``_UNDECIDED``; frames of a link type handled here only by dissect() are
    all undecided with ``l3`` unset.
    """
    n = len(s)
    skip = np.full(n, _UNDECIDED, dtype=np.int8)
    if linktype == LINKTYPE_ETHERNET or linktype == LINKTYPE_LINUX_SLL:
        eth = linktype == LINKTYPE_ETHERNET
        hdr = 14 if eth else 16
        skip[c < hdr] = _TRUNCATED
        pos = 12 if eth else 14  # position of the ethertype
        et = U16[s + pos]
        if eth:
            tag = _isin(et, ETHERTYPE_VLAN) & (skip == _UNDECIDED)
            if tag.any():
                # Mirrors dissect(): each tag needs 6 bytes to reach the next
                # ethertype; a third tag is left to dissect().
                pos = np.full(n, 12, dtype=np.int64)
                for _ in range(2):
                    cut = tag & (pos + 6 > c)
                    skip[cut] = _TRUNCATED
                    tag &= ~cut
                    pos[tag] += 4
                    et = np.where(tag, U16[s + pos], et)
                    tag = _isin(et, ETHERTYPE_VLAN) & tag
                    if not tag.any():
                        break
        v4 = et == 0x0800
        v6 = et == 0x86DD
        want = np.where(v4, 4, np.where(v6, 6, -1)).astype(np.int8)
        other = ~(v4 | v6) & ~_isin(et, _ETH_DEFER)
        if eth:
            other &= ~_isin(et, ETHERTYPE_VLAN)
        skip[other & (skip == _UNDECIDED)] = _NOT_IP
        return skip, pos + 2, want
    if linktype in RAW_LINKTYPES or linktype in (LINKTYPE_IPV4, LINKTYPE_IPV6):
        want = {LINKTYPE_IPV4: 4, LINKTYPE_IPV6: 6}.get(linktype, 0)
        return skip, 0, np.full(n, want, dtype=np.int8)
    return skip, None, None


class _IPResult(NamedTuple):
    skip: np.ndarray  # int8, _UNDECIDED where dissect() must decide
    ver: np.ndarray
    proto: np.ndarray
    l4: np.ndarray  # offsets relative to the frame start
    payload: np.ndarray
    end: np.ndarray
    tunnel: np.ndarray  # bool: IP-in-IP, to decode again from l4


def _ip_stage(A, U16, start, c, l3, want, skip):
    """IP and TCP/UDP of the frames whose ``skip`` is undecided (mirrors
    ``_layers._ip`` and ``_layers._transport``); ``want`` < 0 marks frames that
    are not IP candidates."""
    ipc = (skip == _UNDECIDED) & (want >= 0)
    p = start + l3
    cut = ipc & (l3 >= c)
    skip[cut] = _TRUNCATED
    ipc &= ~cut
    b0 = A[p]
    nib = b0 >> 4
    # A version the link layer contradicts, or raw data that is not IP, is
    # left to dissect(); it is rare.
    fine = ipc & np.where(want == 0, (nib == 4) | (nib == 6), nib == want)
    v4 = fine & (nib == 4)
    v6 = fine & (nib == 6)

    # One gather serves IPv4's total length and IPv6's payload length, one
    # IPv4's protocol and IPv6's next header.
    length = U16[p + np.where(v6, 4, 2)].astype(np.int64)
    proto = A[p + np.where(v6, 6, 9)].astype(np.int16)
    cut4 = v4 & (l3 + 20 > c)
    ihl = (b0 & 0x0F).astype(np.int64) * 4
    m = v4 & ~cut4
    bad4 = m & ((ihl < 20) | ((length != 0) & (length < ihl)))
    m &= ~bad4
    cut4b = m & (l3 + ihl > c)
    m &= ~cut4b
    frag = m & ((U16[p + 6] & 0x3FFF) != 0)
    m &= ~frag
    tr = (proto == IPPROTO_TCP) | (proto == IPPROTO_UDP)
    tunnel = (proto == 4) | (proto == 41)
    ntu = m & ~tr & ~tunnel
    tr4 = m & tr
    tun = m & tunnel
    skip[cut4 | cut4b] = _TRUNCATED
    skip[bad4] = _MALFORMED
    skip[frag] = _FRAGMENT

    cut6 = v6 & (l3 + 40 > c)
    g6 = v6 & ~cut6
    ntu |= g6 & ~tr & ~_isin(proto, _IPV6_DEFER)
    tr6 = g6 & tr
    tun |= g6 & tunnel
    skip[cut6] = _TRUNCATED
    skip[ntu] = _NOT_TCP_UDP

    hdr = np.where(v6, 40, ihl)
    # Length 0: TSO captures (IPv4) or jumbograms (IPv6); the capture bounds it.
    end = np.where(length == 0, c, np.minimum(l3 + np.where(v6, 40, 0) + length, c))
    l4 = l3 + hdr

    tr = tr4 | tr6
    q = start + l4
    tcp = tr & (proto == IPPROTO_TCP)
    udp = tr & (proto == IPPROTO_UDP)
    cutT = tcp & (l4 + 20 > c)
    tcp &= ~cutT
    doff = (A[q + 12] >> 4).astype(np.int64) * 4
    badT = tcp & (doff < 20)
    tcp &= ~badT
    cutT2 = tcp & (l4 + doff > c)
    tcp &= ~cutT2
    badT2 = tcp & (l4 + doff > end)
    tcp &= ~badT2
    cutU = udp & (l4 + 8 > c)
    udp &= ~cutU
    badU = udp & (l4 + 8 > end)
    udp &= ~badU
    skip[cutT | cutT2 | cutU] = _TRUNCATED
    skip[badT | badT2 | badU] = _MALFORMED
    skip[tcp | udp] = 0
    ver = np.where(v4, 4, 6).astype(np.int8)
    pay = l4 + np.where(tcp, doff, 8)
    return _IPResult(skip, ver, proto, l4, pay, end, tun)


def _headers_numpy(A, U16, start, cap, lt):
    """Link, IP and TCP/UDP headers of all packets, with numpy.

    Returns ``(skip, ver, proto, l3, l4, payload, end)``; ``skip`` is 0 for a
    usable packet, a skip code, or ``_UNDECIDED`` (for dissect()); the other
    arrays are meaningful for usable packets only.
    """
    n = len(start)
    # Link layer, per link type (a pcap batch has one) ---------------------
    if lt[0] == lt[-1] and (lt == lt[0]).all():
        skip, l3, want = _link(A, U16, start, cap, int(lt[0]))
        if l3 is None:
            l3, want = 0, np.full(n, -1, np.int8)
        l3 = np.broadcast_to(np.asarray(l3, dtype=np.int64), (n,))
    else:
        skip = np.full(n, _UNDECIDED, dtype=np.int8)
        l3 = np.zeros(n, np.int64)
        want = np.full(n, -1, np.int8)
        for t in np.unique(lt).tolist():
            i = np.flatnonzero(lt == t)
            sk, o, w = _link(A, U16, start[i], cap[i], t)
            skip[i] = sk
            if o is not None:
                l3[i] = o
                want[i] = w

    # IP and transport; tunnels (IP in IP) again from the inner header -------
    r = _ip_stage(A, U16, start, cap, l3, want, skip)
    skip, ver, proto, l4, pay, end = r.skip, r.ver, r.proto, r.l4, r.payload, r.end
    l3 = l3.copy()
    tun = np.flatnonzero(r.tunnel)
    for _ in range(4):
        if not len(tun):
            break
        inner = l4[tun]
        w = np.where(proto[tun] == 4, 4, 6).astype(np.int8)
        sk = np.full(len(tun), _UNDECIDED, dtype=np.int8)
        t = _ip_stage(A, U16, start[tun], cap[tun], inner, w, sk)
        skip[tun] = t.skip
        ver[tun] = t.ver
        proto[tun] = t.proto
        l3[tun] = inner
        l4[tun] = t.l4
        pay[tun] = t.payload
        end[tun] = t.end
        tun = tun[t.tunnel]
    skip[tun] = _UNDECIDED  # deeper nesting: dissect()
    return skip, ver, proto, l3, l4, pay, end


def _headers_compiled(data, start, cap, lt):
    """:func:`_headers_numpy` in one compiled loop (the same decisions)."""
    n = len(start)
    out = (
        np.zeros(n, np.int8),
        np.zeros(n, np.int8),
        np.zeros(n, np.int16),
        *(np.zeros(n, np.int64) for _ in range(4)),
    )
    decode_headers(data, start, cap, lt, _RAW_ARRAY, _HEADER_CODES, *out)
    return out


def decode_batch(batch):
    """Decode link, IP and TCP/UDP headers of every packet of a batch.

    The common cases (Ethernet with up to two VLAN tags, Linux SLL and raw IP
    carrying IPv4 or IPv6 without extension headers, IP-in-IP tunnels, then
    TCP or UDP; and the plain skips: truncated, malformed, fragment, not IP,
    not TCP/UDP) are decoded for all packets at once, in one compiled loop
    or, without it, with numpy.  Everything else goes through
    :func:`~sklearn_flowspectrum._layers.dissect`, whose results both
    decoders reproduce exactly.

    Parameters
    ----------
    batch : _Batch

    Returns
    -------
    _Decoded
    """
    data = batch.data
    size = len(data)
    A = np.frombuffer(data, np.uint8)
    view = memoryview(data)
    U16 = _strided(data, ">u2", size)
    start, cap, lt = batch.start, batch.caplen, batch.linktype
    n = len(start)
    if n == 0:
        e = np.zeros(0, dtype=np.int64)
        u = np.zeros(0, dtype=np.uint64)
        return _Decoded(np.zeros(0, np.int8), e, e, e, u, u, u, u, e, e, e, e, e, 0)

    if decode_headers is not None:
        skip, ver, proto, l3, l4, pay, end = _headers_compiled(data, start, cap, lt)
    else:
        skip, ver, proto, l3, l4, pay, end = _headers_numpy(A, U16, start, cap, lt)

    # Everything else: one frame at a time through the reference dissector --
    rest = np.flatnonzero(skip == _UNDECIDED)
    if len(rest):
        for i, s, cc, t in zip(
            rest.tolist(), start[rest].tolist(), cap[rest].tolist(), lt[rest].tolist()
        ):
            d = dissect(view[s : s + cc].tobytes(), t)
            if d.skip is not None:
                skip[i] = _SKIP_CODE[d.skip]
                continue
            skip[i] = 0
            ver[i] = d.ip_version
            proto[i] = d.proto
            l3[i] = d.l3
            l4[i] = d.l4
            pay[i] = d.payload
            end[i] = d.payload_end

    # Addresses and ports of the usable packets ----------------------------
    idx = np.flatnonzero(skip == 0)
    s = start[idx]
    ver = ver[idx]
    a3 = s + l3[idx]
    a4 = s + l4[idx]
    U64 = _strided(data, ">u8", size)
    both = U64[a3 + 12]  # IPv4 source and destination in one gather
    src_hi = both >> np.uint64(32)
    dst_hi = both & np.uint64(0xFFFFFFFF)
    src_lo = np.zeros(len(idx), dtype=np.uint64)
    dst_lo = np.zeros(len(idx), dtype=np.uint64)
    ports = _strided(data, ">u4", size)[a4].astype(np.int64)
    i6 = np.flatnonzero(ver == 6)
    if len(i6):
        b = a3[i6]
        src_hi[i6] = U64[b + 8]
        src_lo[i6] = U64[b + 16]
        dst_hi[i6] = U64[b + 24]
        dst_lo[i6] = U64[b + 32]
    return _Decoded(
        skip,
        idx,
        ver,
        proto[idx],
        src_hi,
        src_lo,
        dst_hi,
        dst_lo,
        ports >> 16,
        ports & 0xFFFF,
        a4,
        s + pay[idx],
        s + end[idx],
        len(rest),
    )
