"""What the capture readers produce: records, batches and their errors."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

from typing import NamedTuple

import numpy as np

# Chunks of a few MiB keep the header bytes of a chunk in the CPU caches
# while numpy makes its passes over them; at 4 MiB the per-batch arrays are
# also small enough to be reused rather than mapped afresh for every chunk.
DEFAULT_CHUNK_SIZE = 4 << 20
PAD_BYTES = 256
ZERO_PAD = bytes(PAD_BYTES)


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


class RecordBatch(NamedTuple):
    """Many records whose frames lie in one buffer (numpy arrays, one entry each).

    ``data`` holds at least ``PAD_BYTES`` bytes after the last frame, so that the
    vectorised decoder may read a fixed distance past any frame start without
    bounds checks (what it reads beyond a frame is masked out).
    """

    data: bytes
    start: np.ndarray  # offset of each frame in data
    caplen: np.ndarray
    orig_len: np.ndarray
    ts_ns: np.ndarray
    linktype: np.ndarray


def records_batch(chunk):
    """A batch of ``(ts_ns, frame, orig_len, linktype)`` records."""
    ts, frames, orig, lt = zip(*chunk)
    caplen = np.fromiter(map(len, frames), dtype=np.int64, count=len(frames))
    start = np.zeros(len(frames), dtype=np.int64)
    np.cumsum(caplen[:-1], out=start[1:])
    return RecordBatch(
        b"".join((*frames, ZERO_PAD)),
        start,
        caplen,
        np.array(orig, dtype=np.int64),
        np.array(ts, dtype=np.int64),
        np.array(lt, dtype=np.int64),
    )


def strided(data, dtype, length):
    """Values of ``dtype`` starting at every byte of ``data`` (unaligned view)."""
    dtype = np.dtype(dtype)
    n = max(length - dtype.itemsize + 1, 0)
    return np.ndarray((n,), dtype=dtype, buffer=data, strides=(1,))
