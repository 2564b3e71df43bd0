"""Classic pcap: the global header and a chunked walk over the records."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import os
import struct
from typing import NamedTuple

import numpy as np

from sklearn_flowspectrum._loops import record_headers
from sklearn_flowspectrum._protocols import (
    MAX_RECORD,
    MAX_SNAPLEN,
)
from sklearn_flowspectrum._records import PAD_BYTES, ZERO_PAD, CaptureError, RecordBatch
from sklearn_flowspectrum._sources import read_available


class PcapHeader(NamedTuple):
    endian: str
    nanosecond: bool
    snaplen: int
    linktype: int


def record_limit(header):
    """The largest ``incl_len`` a record of this capture may claim."""
    return max(MAX_SNAPLEN, min(header.snaplen, MAX_RECORD))


# ---------------------------------------------------------------------------
# Classic pcap: chunked record walk


def pcap_batches(src, header, chunk_size, reuse=False, byte_range=None):
    """Batches of whole records, read ``chunk_size`` bytes at a time.

    ``src`` is a :class:`~sklearn_flowspectrum._sources.Source` whose global
    header has been read.  A stream yields what has arrived, as it arrives.
    With ``reuse`` one buffer serves all chunks (no fresh memory to fault in
    per chunk): a batch's data is then only valid until the next one.
    ``byte_range=(start, end)`` (a sized file only) reads the records from
    file offset ``start``, which must be that of a record header, to
    ``end``, as if the file ended there: a record that runs past ``end``
    is a :class:`CaptureError`.
    """
    f, name = src.file, src.name
    big = header.endian == ">"
    frac_ns = 1 if header.nanosecond else 1000
    limit = record_limit(header)
    pos = 24  # file offset of buf[0]
    buf = None
    carry = 0  # length of the partial record left at buf[consumed:]
    consumed = 0
    # A stream's length is not known: read until it ends.
    remaining = max(os.fstat(f.fileno()).st_size - pos, 0) if src.sized else None
    if byte_range is not None:
        pos, end = byte_range
        f.seek(pos)
        remaining = max(end - pos, 0)
    while True:
        want = chunk_size if remaining is None else min(chunk_size, remaining)
        need = carry + want + PAD_BYTES
        if buf is None or not reuse or len(buf) < need:
            if reuse and (remaining is None or remaining > want):
                # More chunks follow: leave room for the usual carry (a
                # partial record) so the buffer need not grow again; each
                # regrowth faults in a fresh chunk-sized allocation.
                need = max(need, want + 16 + MAX_SNAPLEN + PAD_BYTES)
            new = bytearray(need)
            if carry:
                new[:carry] = buf[consumed : consumed + carry]
            buf = new
        elif carry:
            buf[:carry] = buf[consumed : consumed + carry]
        with memoryview(buf) as mv:
            if remaining is None:
                got = read_available(f, mv[carry : carry + want], src.fd)
                eof = got == 0
            else:
                got = f.readinto(mv[carry : carry + want]) if want else 0
                remaining -= got
                eof = got < want or remaining <= 0
            size = carry + got
            buf[size : size + PAD_BYTES] = ZERO_PAD  # the decoder reads past frame ends
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
                batch = RecordBatch(
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
