"""pcapng: sections, interfaces and packet blocks, read sequentially."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import os
import struct
from typing import NamedTuple

import numpy as np

from sklearn_flowspectrum._loops import pcapng_packets
from sklearn_flowspectrum._protocols import (
    MAX_BLOCK,
    PCAPNG_BYTE_ORDER_MAGIC,
    PCAPNG_EPB,
    PCAPNG_IDB,
    PCAPNG_OPT_ENDOFOPT,
    PCAPNG_OPT_IF_TSOFFSET,
    PCAPNG_OPT_IF_TSRESOL,
    PCAPNG_PB,
    PCAPNG_SHB_MAGIC,
    PCAPNG_SPB,
)
from sklearn_flowspectrum._records import (
    DEFAULT_CHUNK_SIZE,
    PAD_BYTES,
    CaptureError,
    RecordBatch,
    records_batch,
)
from sklearn_flowspectrum._sources import read_available

_PCAPNG_BATCH = 1 << 16
# pcapng blocks read here, by type: name and the bytes of fixed fields that
# their body (without the trailing length) must hold.
_PCAPNG_BLOCKS = {
    PCAPNG_IDB: ("interface description block", 8),  # linktype, reserved, snaplen
    PCAPNG_PB: ("packet block", 20),  # interface, drops, time, caplen, length
    PCAPNG_SPB: ("simple packet block", 4),  # original length
    PCAPNG_EPB: ("enhanced packet block", 20),  # interface, time, caplen, length
}


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
    left), followed by ``PAD_BYTES`` zero bytes; ``skip`` consumes from it.  A
    refill makes a new buffer, so views of an old one stay valid.  Buffers
    are no larger than what is left of the file, and there is no refill
    once the file's end is in the buffer (files of one session are small).
    """

    def __init__(self, f, size, stream_fd=False):
        self.f, self.size = f, size
        # False: a regular file; else a stream, polled on this descriptor
        # (None: never waited on).
        self.stream_fd = stream_fd
        self.buf, self.at, self.end = bytearray(PAD_BYTES), 0, 0
        self.at_eof = False

    def _left(self):
        """Bytes of the file not read yet (as far as its size says)."""
        if self.stream_fd is not False:
            return self.size
        try:
            return os.fstat(self.f.fileno()).st_size - self.f.tell()
        except (OSError, AttributeError, ValueError):  # not a plain file
            return self.size

    def window(self):
        # A stream is refilled only when empty: waiting for more would hold
        # back the packets already here.
        if self.stream_fd is False:
            low = self.end - self.at < self.size // 2
        else:
            low = self.end == self.at
        if not self.at_eof and low:
            rest = self.buf[self.at : self.end]
            left = self._left()
            if left <= 0:
                self.at_eof = True
                return self.buf, self.at, self.end
            room = min(self.size, len(rest) + left)
            buf = bytearray(room + PAD_BYTES)
            buf[: len(rest)] = rest
            with memoryview(buf) as mv:
                if self.stream_fd is False:
                    got = self.f.readinto(mv[len(rest) : room])
                    self.at_eof = got < room - len(rest)
                else:
                    got = read_available(self.f, mv[len(rest) : room], self.stream_fd)
                    self.at_eof = got == 0
            self.buf, self.at, self.end = buf, 0, len(rest) + got
        return self.buf, self.at, self.end

    def empty(self):
        return self.end == self.at

    def holds_block(self, e):
        """Whether the next block is all in the buffer (``e``: byte order)."""
        if e is None or self.end - self.at < 8:
            return False
        (total,) = struct.unpack_from(e + "I", self.buf, self.at + 4)
        return self.end - self.at >= total

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


def pcapng_records(src, runs=False):
    """Yield ``(ts_ns, frame, orig_len, linktype)`` from a pcapng file.

    With ``runs`` (and the compiled loops), consecutive enhanced packet
    blocks come as one ``RecordBatch`` each time instead, walked in one compiled
    call; every other block, and any block the walk does not vouch for, is
    read here, block by block.
    """
    f, name = src.restart(), src.name
    pos = 0
    e = None
    ifaces = []
    walk = runs and pcapng_packets is not None
    # A stream in batches says when it has no more packets ready (None), so
    # that those read so far go on without waiting for the next.
    idle = runs and not src.sized
    if walk or idle:
        reader = _Readahead(f, DEFAULT_CHUNK_SIZE, False if src.sized else src.fd)
        read = reader.read
    else:
        reader, read = None, f.read
    scale = None
    while True:
        if idle and not reader.holds_block(e):
            yield None
            if reader.empty():
                reader.window()
        if walk and ifaces:
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
                yield RecordBatch(
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


def pcapng_batches(src, batch_size=_PCAPNG_BATCH):
    chunk = []
    try:
        for rec in pcapng_records(src, runs=True):
            if rec is None:  # a stream with nothing more ready yet
                if chunk:
                    yield records_batch(chunk)
                    chunk = []
                continue
            if isinstance(rec, RecordBatch):  # a run of packet blocks, already a batch
                if chunk:
                    yield records_batch(chunk)
                    chunk = []
                yield rec
                continue
            chunk.append(rec)
            if len(chunk) >= batch_size:
                yield records_batch(chunk)
                chunk = []
    except CaptureError:
        # Every packet before the problem is delivered first.
        if chunk:
            yield records_batch(chunk)
        raise
    if chunk:
        yield records_batch(chunk)
