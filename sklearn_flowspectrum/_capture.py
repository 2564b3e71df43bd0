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

import struct
from contextlib import contextmanager
from typing import NamedTuple

from sklearn_flowspectrum._decode import decode_batch
from sklearn_flowspectrum._pcap import PcapHeader, pcap_batches
from sklearn_flowspectrum._pcapng import pcapng_batches, pcapng_records
from sklearn_flowspectrum._protocols import (
    LINKTYPE_MASK,
    PCAP_GLOBAL_LEN,
    PCAP_MAGIC_MODIFIED,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    PCAPNG_SHB_MAGIC,
)
from sklearn_flowspectrum._records import (
    DEFAULT_CHUNK_SIZE,
    CaptureError,
    CaptureWarning,
    Record,
)
from sklearn_flowspectrum._sources import Source, open_source

__all__ = [
    "CaptureError",
    "CaptureWarning",
    "Record",
    "OpenCapture",
    "capture_format",
    "open_capture",
    "iter_batches",
    "iter_records",
    "decode_batch",
]

# ---------------------------------------------------------------------------
# Opening and sniffing


def _sniff(head, name):
    """Identify the format from the first bytes: ``("pcap", header)`` or
    ``("pcapng", None)``."""
    if head[:4] == PCAPNG_SHB_MAGIC:
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
                return "pcap", PcapHeader(
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
    raise CaptureError(
        name,
        0,
        f"not a pcap or pcapng file (magic {head[:4].hex()} at byte 0)",
    )


class OpenCapture(NamedTuple):
    """A capture opened by :func:`open_capture`: its format and its packets."""

    name: str
    format: str  # "pcap" or "pcapng"
    source: Source
    header: object  # the pcap global header (pcap only)

    def batches(self, chunk_size=DEFAULT_CHUNK_SIZE, reuse=False, byte_range=None):
        """The packets in batches, as :func:`iter_batches` yields them.

        ``byte_range=(start, end)``: only the records between those file
        offsets (an uncompressed classic pcap file only; see
        :func:`~sklearn_flowspectrum._pcap.pcap_batches`).
        """
        if self.format == "pcap":
            if byte_range is not None and not self.source.sized:
                raise ValueError(f"{self.name}: byte ranges need an uncompressed file")
            return pcap_batches(
                self.source, self.header, int(chunk_size), reuse, byte_range
            )
        if byte_range is not None:
            raise ValueError(f"{self.name}: byte ranges need a classic pcap file")
        return pcapng_batches(self.source)

    def records(self):
        """The packets one by one, as :func:`iter_records` yields them."""
        if self.format == "pcapng":
            for rec in pcapng_records(self.source):
                yield Record(*rec)
            return
        for b in pcap_batches(self.source, self.header, DEFAULT_CHUNK_SIZE, True):
            with memoryview(b.data) as data:
                for s, c, o, t, lt in zip(
                    b.start.tolist(),
                    b.caplen.tolist(),
                    b.orig_len.tolist(),
                    b.ts_ns.tolist(),
                    b.linktype.tolist(),
                ):
                    yield Record(t, data[s : s + c].tobytes(), o, lt)


@contextmanager
def open_capture(source):
    """Open a capture and identify its format; read it once, front to back.

    Parameters
    ----------
    source : str, os.PathLike or binary file object
        A capture file, a FIFO, ``"-"`` for standard input, or an open binary
        file; gzip, xz and bzip2 captures are decompressed on the fly.

    Yields
    ------
    capture : OpenCapture

    Raises
    ------
    CaptureError
        When the source cannot be opened or is not a capture.
    """
    with open_source(source) as src:
        fmt, header = _sniff(src.head, src.name)
        yield OpenCapture(src.name, fmt, src, header)


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
    with open_capture(path) as capture:
        return capture.format


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
    path : str, os.PathLike or binary file object
        A pcap or pcapng capture, as :func:`iter_records` takes it.  Streams
        yield the packets that have arrived without waiting for more.
    chunk_size : int, default=4 MiB
        Bytes read at once from a classic pcap file.

    Yields
    ------
    batch : RecordBatch
        ``data`` (bytes) and per-record numpy arrays ``start``, ``caplen``,
        ``orig_len``, ``ts_ns``, ``linktype``.

    Raises
    ------
    CaptureError
        When the file is not a capture or is corrupt, after every batch before
        the problem has been yielded.
    """
    with open_capture(path) as capture:
        yield from capture.batches(chunk_size, _reuse)


def iter_records(path):
    """Yield every packet of a pcap or pcapng file as a :class:`Record`.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        A classic pcap file (either byte order, micro- or nanosecond
        timestamps) or a pcapng file (any number of sections and interfaces,
        enhanced, simple and obsolete packet blocks); gzip, xz or bzip2
        compressed, a FIFO, ``"-"`` for standard input, or an open file.

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
    with open_capture(path) as capture:
        yield from capture.records()
