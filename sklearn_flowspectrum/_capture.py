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

from sklearn_flowspectrum._decode import decode_batch
from sklearn_flowspectrum._pcap import _pcap_batches, _PcapHeader
from sklearn_flowspectrum._pcapng import _pcapng_batches, _pcapng_records
from sklearn_flowspectrum._protocols import (
    GZIP_MAGIC,
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

__all__ = [
    "CaptureError",
    "CaptureWarning",
    "Record",
    "capture_format",
    "iter_batches",
    "iter_records",
    "decode_batch",
]

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
