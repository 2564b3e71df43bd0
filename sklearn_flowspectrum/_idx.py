"""Read and write IDX files (the MNIST format used by USTC-TK2016).

An IDX file is a 4-byte magic number ``0x0000TTNN`` (``TT`` the element type,
``NN`` the number of dimensions), ``NN`` big-endian ``uint32`` dimension sizes,
then the elements in C order, big-endian.  USTC-TK2016 publishes its session
images as ``train-images-idx3-ubyte`` (``uint8``, shape ``(n, 28, 28)``) and
its labels as ``train-labels-idx1-ubyte`` (``uint8``, shape ``(n,)``), usually
gzip-compressed.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from sklearn_flowspectrum._atomic import atomic_output
from sklearn_flowspectrum._protocols import GZIP_MAGIC

__all__ = ["load_idx_pair", "read_idx", "write_idx"]

# IDX element type code -> big-endian numpy dtype (the codes of the MNIST spec).
_CODE_TO_DTYPE = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_TO_CODE = {
    ("u", 1): 0x08,
    ("i", 1): 0x09,
    ("i", 2): 0x0B,
    ("i", 4): 0x0C,
    ("f", 4): 0x0D,
    ("f", 8): 0x0E,
}


def _read_raw(path):
    """Return the (decompressed) bytes of ``path``; gzip is told by magic bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not an IDX file") from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt gzip stream ({exc})") from None
    return data


def read_idx(path):
    """Read an IDX file (plain or gzip-compressed) into a numpy array.

    Parameters
    ----------
    path : str or path-like
        The IDX file.  Gzip compression is recognised by its magic bytes,
        whatever the file name.

    Returns
    -------
    array : ndarray
        The data, with the shape given by the file's dimensions, in the native
        byte order of the matching numpy dtype (``uint8`` for type ``0x08``,
        ``int8``, ``int16``, ``int32``, ``float32``, ``float64`` for ``0x09``,
        ``0x0B``, ``0x0C``, ``0x0D``, ``0x0E``).

    Raises
    ------
    ValueError
        Naming the file, if the magic number is not an IDX one, the header is
        truncated, or the data size does not match the dimensions.

    See Also
    --------
    write_idx : The inverse operation.
    load_idx_pair : Read a USTC-TK2016 images/labels pair.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sklearn_flowspectrum import read_idx, write_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx3-ubyte.gz")
    >>> write_idx(path, np.arange(8, dtype=np.uint8).reshape(2, 2, 2))
    >>> read_idx(path).shape
    (2, 2, 2)
    """
    data = _read_raw(path)
    if len(data) < 4:
        raise ValueError(
            f"{path}: not an IDX file ({len(data)} bytes, shorter than the "
            "4-byte magic number)"
        )
    zero, code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or code not in _CODE_TO_DTYPE:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{data[:4].hex()} (expected "
            "0x0000TTNN with element type TT in 08, 09, 0B, 0C, 0D, 0E)"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need "
            f"{header_len} bytes, the file has {len(data)}"
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    dtype = _CODE_TO_DTYPE[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header_len
    if got != expected:
        what = "truncated IDX data" if got < expected else "IDX size mismatch"
        raise ValueError(
            f"{path}: {what}: dimensions {shape} of {dtype.name} need "
            f"{expected} data bytes, the file has {got}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    # Native byte order, writable, and not a view on the file buffer.
    return array.astype(dtype.newbyteorder("="))


def write_idx(path, array, *, compress=None):
    """Write a numpy array to an IDX file.

    Parameters
    ----------
    path : str or path-like
        Destination.
    array : array-like
        Data of dtype ``uint8``, ``int8``, ``int16``, ``int32``, ``float32`` or
        ``float64``, with 1 to 255 dimensions each smaller than 2**32.
    compress : bool, default=None
        Gzip the file.  ``None`` compresses when the name ends in ``.gz``.

    Notes
    -----
    The file is written to a temporary file in the same folder and renamed
    to ``path`` when complete: an error leaves no partial file, and a file
    already at ``path`` stays as it was.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sklearn_flowspectrum import read_idx, write_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> write_idx(path, np.array([0, 5, 2], dtype=np.uint8))
    >>> read_idx(path)
    array([0, 5, 2], dtype=uint8)
    """
    array = np.asarray(array)
    code = _KIND_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise TypeError(
            f"IDX cannot store dtype {array.dtype}; use uint8, int8, int16, "
            "int32, float32 or float64"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {array.ndim}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX dimensions must be < 2**32, got {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    payload = header + np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    if compress is None:
        compress = os.fspath(path).endswith(".gz")
    if compress:
        # mtime=0 makes the output reproducible byte for byte.
        payload = gzip.compress(payload, mtime=0)
    with atomic_output(path) as temporary:
        temporary.write_bytes(payload)


def load_idx_pair(images_path, labels_path=None, *, flatten=True):
    """Read a USTC-TK2016 / MNIST images file and its labels file.

    Parameters
    ----------
    images_path : str or path-like
        The ``*-images-idx3-ubyte[.gz]`` file, or a folder holding exactly one
        ``*images-idx3*`` file and one ``*labels-idx1*`` file.
    labels_path : str or path-like, default=None
        The ``*-labels-idx1-ubyte[.gz]`` file.  ``None`` takes the file whose
        name replaces ``images-idx3`` by ``labels-idx1`` (or the folder's one).
    flatten : bool, default=True
        Return images as rows ``(n, height * width)`` (the byte order of the
        session, as :class:`PcapSessionVectorizer` wants them), instead of
        ``(n, height, width)``.

    Returns
    -------
    images : ndarray of shape (n, n_bytes) or (n, height, width)
    labels : ndarray of shape (n,)

    Raises
    ------
    ValueError
        If the two files disagree on the number of samples, or cannot be found.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sklearn_flowspectrum import load_idx_pair, write_idx
    >>> d = tempfile.mkdtemp()
    >>> write_idx(os.path.join(d, "train-images-idx3-ubyte.gz"),
    ...           np.zeros((3, 28, 28), dtype=np.uint8))
    >>> write_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"),
    ...           np.array([1, 0, 1], dtype=np.uint8))
    >>> X, y = load_idx_pair(d)
    >>> X.shape, y.tolist()
    ((3, 784), [1, 0, 1])
    """
    images_path = Path(images_path)
    if images_path.is_dir():
        folder = images_path
        images_path = _single(folder, "*images-idx3*")
        if labels_path is None:
            labels_path = _single(folder, "*labels-idx1*")
    elif labels_path is None:
        labels_path = labels_beside(images_path)
        if labels_path is None:
            raise ValueError(
                f"{images_path}: cannot guess the labels file; pass labels_path"
            )
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: labels must be 1-D, got {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_path} has {images.shape[0]} samples but {labels_path} "
            f"has {labels.shape[0]} labels"
        )
    if flatten and images.ndim > 2:
        images = images.reshape(images.shape[0], -1)
    return images, labels


def _single(folder, pattern):
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise ValueError(
            f"{folder}: expected one file matching {pattern!r}, found "
            f"{[p.name for p in found]}"
        )
    return found[0]


def labels_beside(images_path):
    """The labels file named after an images file (``images-idx3`` ->
    ``labels-idx1``, as USTC-TK2016 and MNIST name them), whether or not it
    exists; ``None`` when the name has no ``images-idx3``."""
    images_path = Path(images_path)
    if "images-idx3" not in images_path.name:
        return None
    return images_path.with_name(images_path.name.replace("images-idx3", "labels-idx1"))


# An IDX label file holds codes 0-255; class names go to a legend beside it,
# one "code<TAB>name" line per class.
LEGEND_SUFFIX = ".names.txt"


def legend_path(labels_path):
    """The legend of class names beside an IDX labels file."""
    return Path(os.fspath(labels_path) + LEGEND_SUFFIX)


def format_legend(names):
    """The legend of ``names`` (code ``i`` is ``names[i]``)."""
    for name in names:
        if "\t" in name or "\n" in name or "\r" in name:
            raise ValueError(
                f"class name {name!r} holds a tab or a line break, which the "
                f"{LEGEND_SUFFIX} legend of an IDX label file cannot"
            )
    return "".join(f"{i}\t{name}\n" for i, name in enumerate(names))


def _read_legend(labels_path):
    """Class names by code from the legend beside ``labels_path``, or None."""
    legend = legend_path(labels_path)
    if not legend.is_file():
        return None
    names = {}
    with open(legend, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            code, tab, name = line.rstrip("\r\n").partition("\t")
            if not tab or not code.isdigit():
                raise ValueError(
                    f"{legend}: line {number} is not 'code<TAB>class name'"
                )
            names[int(code)] = name
    return names


def named_labels(codes, labels_path):
    """``codes`` read from ``labels_path`` as class names when a legend lies
    beside it (else the codes as they are)."""
    names = _read_legend(labels_path)
    if names is None:
        return codes
    unnamed = sorted(set(np.unique(codes).tolist()) - set(names))
    if unnamed:
        raise ValueError(
            f"{legend_path(labels_path)}: no class name for label code "
            f"{unnamed[0]} of {labels_path}"
        )
    lookup = np.array([names.get(i, "") for i in range(max(names) + 1)], dtype=object)
    return lookup[codes.astype(np.intp)]
