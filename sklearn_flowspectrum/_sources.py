"""Where capture bytes come from: files, FIFOs, standard input, open file
objects, and compressed captures, all read front to back without seeking."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import bz2
import gzip
import io
import lzma
import os
import select
import stat
import sys
import zlib
from contextlib import contextmanager
from typing import NamedTuple

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from sklearn_flowspectrum._protocols import (
    CAPTURE_SUFFIXES,
    GZIP_MAGIC,
    PCAP_GLOBAL_LEN,
)
from sklearn_flowspectrum._records import CaptureError

__all__ = ["STDIN", "COMPRESSED_SUFFIXES", "capture_suffixes", "open_source"]

#: The source name that reads standard input.
STDIN = "-"
_STDIN_NAME = "<stdin>"

# Compressions the standard library reads: (magic, name, suffix, opener).
_COMPRESSIONS = (
    (GZIP_MAGIC, "gzip", ".gz", lambda f: gzip.GzipFile(fileobj=f)),
    (b"\xfd7zXZ\x00", "xz", ".xz", lzma.LZMAFile),
    (b"BZh", "bzip2", ".bz2", bz2.BZ2File),
)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
try:  # the standard library reads zstd from Python 3.14 on
    from compression import zstd as _zstd

    _COMPRESSIONS += ((_ZSTD_MAGIC, "zstd", ".zst", _zstd.ZstdFile),)
except ImportError:
    _zstd = None

COMPRESSED_SUFFIXES = tuple(c[2] for c in _COMPRESSIONS)
_DECOMPRESSION_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError) + (
    (_zstd.ZstdError,) if _zstd is not None else ()
)


def capture_suffixes():
    """File name endings read as captures in folders: plain and compressed."""
    return CAPTURE_SUFFIXES + tuple(
        s + c for s in CAPTURE_SUFFIXES for c in COMPRESSED_SUFFIXES
    )


def is_stream(source):
    """Whether ``source`` is an open file object or standard input."""
    return hasattr(source, "read") or (isinstance(source, str) and source == STDIN)


def source_name(source):
    """The name of a capture source in tables and messages."""
    if isinstance(source, str) and source == STDIN:
        return _STDIN_NAME
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return name if isinstance(name, str) else f"<{type(source).__name__}>"
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    raise TypeError(
        "a capture must be a path, '-' (standard input) or a binary file "
        f"object, got {type(source).__name__}"
    )


def check_source(source):
    """Return the name of ``source``; raise :class:`CaptureError` when it is a
    path to nothing readable as a stream of bytes (a folder, a missing file)."""
    name = source_name(source)
    if is_stream(source):
        return name
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise CaptureError(name, None, "no such file") from None
    except OSError as exc:
        raise CaptureError(name, None, f"cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise CaptureError(name, None, "is a directory, not a capture file")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        raise CaptureError(
            name, None, "is not a regular file, a FIFO or a character device"
        )
    return name


class _Stream:
    """Bytes of a stream, ``prefix`` first, read without a buffer of its own.

    ``readinto1`` reads what is available (one read of the underlying file at
    most, straight into the caller's buffer where the file allows), so a
    live capture is decoded as its packets arrive; ``read(n)`` waits for
    ``n`` bytes or the end.  Errors of a decompressor become
    :class:`CaptureError` naming the capture.
    """

    def __init__(self, f, prefix, name, compression=None):
        self._f, self._prefix, self._name = f, bytes(prefix), name
        self._compression = compression
        # A raw file reads one system call into our buffer; a buffered one
        # through read1, which returns its buffered bytes without waiting.
        self._direct = isinstance(f, io.RawIOBase)
        self._read_some = getattr(f, "read1", None) or f.read

    def _failed(self, exc):
        what = f"{self._compression} data is corrupt" if self._compression else None
        if what is None:
            raise exc
        raise CaptureError(self._name, None, f"{what} ({exc})") from None

    def readinto1(self, b):
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        try:
            if self._direct:
                return self._f.readinto(b) or 0
            data = self._read_some(len(b))
        except _DECOMPRESSION_ERRORS as exc:
            self._failed(exc)
        if data is None:  # a non-blocking file with nothing to read yet
            return 0
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CaptureError(
                self._name, None, "is a text stream; open it in binary mode ('rb')"
            )
        b[: len(data)] = data
        return len(data)

    def read(self, n=-1):
        if n is None or n < 0:
            parts = []
            while chunk := self.read(1 << 20):
                parts.append(chunk)
            return b"".join(parts)
        buf = bytearray(n)
        got = 0
        with memoryview(buf) as mv:
            while got < n:
                k = self.readinto1(mv[got:])
                if not k:
                    break
                got += k
        del buf[got:]
        return bytes(buf)

    def readable(self):
        return True

    def close(self):
        pass


def _read_head(f, n, name, compression=None):
    """Up to ``n`` bytes, fewer only at the end of ``f``."""
    parts, got = [], 0
    while got < n:
        try:
            data = f.read(n - got)
        except _DECOMPRESSION_ERRORS as exc:
            what = f"{compression} data is corrupt" if compression else "cannot be read"
            raise CaptureError(name, 0, f"{what} ({exc})") from None
        if isinstance(data, str):
            raise CaptureError(
                name, None, "is a text stream; open it in binary mode ('rb')"
            )
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


_PIPE_SIZE = 1 << 20


def _widen_pipe(fd):
    """Give a pipe a 1 MiB buffer (Linux): the writer then wakes the reader
    16 times less often than with the default 64 KiB, which triples the
    throughput of ``cat capture | ...``."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None or fd is None:
        return
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, set_size, _PIPE_SIZE)
    except OSError:  # not permitted, or above /proc/sys/fs/pipe-max-size
        pass


def _fileno(f):
    try:
        return f.fileno()
    except (OSError, AttributeError, ValueError):
        return None


def read_available(f, buf, fd):
    """Read into ``buf`` what a stream has now, waiting only for the first bytes.

    Returns the number of bytes read: 0 only at the end of the stream, fewer
    than ``len(buf)`` when no more were ready (so a live capture is decoded
    as its packets arrive).  ``fd`` is the descriptor to poll, or None for
    a source that is never waited on (in memory, or decompressed).
    """
    got = 0
    while got < len(buf):
        if got and fd is not None and not select.select([fd], [], [], 0)[0]:
            break
        n = f.readinto1(buf[got:])
        if not n:
            break
        got += n
    return got


class Source(NamedTuple):
    """An opened capture: its bytes after ``head``, ready to read.

    ``file`` reads on from where ``head`` stops.  ``sized`` is True for an
    uncompressed regular file, whose length bounds the reads; other sources
    are streams, read with :func:`read_available` (``fd``: the descriptor
    it polls).  ``restart`` returns a file reading from the first byte again
    (``head`` included).
    """

    name: str
    file: object
    head: bytes
    sized: bool
    fd: object
    compression: object  # name of the compression, or None
    restart: object


@contextmanager
def open_source(source):
    """Open a capture source and read its first :data:`PCAP_GLOBAL_LEN` bytes.

    Compressed captures (gzip, xz, bzip2, and zstd where the standard
    library has it) are recognised by their magic and decompressed on the
    fly.  Files this function opens are closed on exit; file objects and
    standard input given to it are not.
    """
    name = check_source(source)
    owned = []
    try:
        if isinstance(source, str) and source == STDIN:
            # Nothing has read standard input before: its raw file reads
            # straight into our buffers.
            raw = getattr(sys.stdin.buffer, "raw", sys.stdin.buffer)
        elif hasattr(source, "read"):
            raw = source
        else:
            # A FIFO unbuffered, so that it reads straight into our buffers.
            regular = stat.S_ISREG(os.stat(name).st_mode)
            try:
                raw = open(name, "rb", buffering=-1 if regular else 0)  # noqa: SIM115
            except OSError as exc:
                raise CaptureError(
                    name, None, f"cannot be opened ({exc.strerror})"
                ) from None
            owned.append(raw)
        sized = not is_stream(source) and stat.S_ISREG(os.fstat(raw.fileno()).st_mode)
        head = _read_head(raw, PCAP_GLOBAL_LEN, name)
        compression = None
        for magic, what, _, opener in _COMPRESSIONS:
            if head.startswith(magic):
                compression, sized = what, False
                raw = opener(_Stream(raw, head, name))
                owned.append(raw)
                head = _read_head(raw, PCAP_GLOBAL_LEN, name, what)
                break
        if sized:
            f = raw

            def restart():
                raw.seek(0)
                return raw

        else:
            f = _Stream(raw, b"", name, compression)

            def restart():  # the head goes back in front
                return _Stream(raw, head, name, compression)

        if not head:
            what = f"{compression} stream" if compression else "file"
            raise CaptureError(name, 0, f"empty {what} (0 bytes), not a capture")
        fd = None if compression is not None else _fileno(raw)
        _widen_pipe(_fileno(raw) if compression is None else None)
        yield Source(name, f, head, sized, fd, compression, restart)
    finally:
        for f in reversed(owned):
            f.close()
