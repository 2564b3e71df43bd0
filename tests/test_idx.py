import gzip
from pathlib import Path

import numpy as np
import pytest

from sklearn_flowspectrum import load_idx_pair, read_idx, write_idx

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ISCX = DATA / "iscx-vpn2016"


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
)
@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = tmp_path / name
    write_idx(path, x)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")
    y = read_idx(path)
    assert y.dtype == np.dtype(dtype) and y.dtype.isnative
    np.testing.assert_array_equal(x, y)
    y[0, 0, 0] = 1  # a writable copy, not a view on the file buffer


def test_exact_bytes_big_endian(tmp_path):
    path = tmp_path / "x"
    write_idx(path, np.array([[1, 258]], dtype=np.int16))
    assert path.read_bytes() == (
        b"\x00\x00\x0b\x02" + b"\x00\x00\x00\x01\x00\x00\x00\x02" + b"\x00\x01\x01\x02"
    )


def test_gzip_detected_by_magic_not_suffix(tmp_path):
    x = np.arange(10, dtype=np.uint8)
    plain_named_gz = tmp_path / "plain.gz"
    write_idx(plain_named_gz, x, compress=False)
    gz_named_plain = tmp_path / "gz-idx1-ubyte"
    write_idx(gz_named_plain, x, compress=True)
    assert gz_named_plain.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(plain_named_gz), x)
    np.testing.assert_array_equal(read_idx(gz_named_plain), x)


def test_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match=r"bad\.idx: bad IDX magic"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x05")  # unknown type code
    with pytest.raises(ValueError, match="bad IDX magic"):
        read_idx(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "shorter than the 4-byte magic"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x04\x01\x02", "truncated IDX data"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "IDX size mismatch"),
        (b"\x00\x00\x0c\x01\x00\x00\x00\x01\x01\x02\x03", "truncated IDX data"),
    ],
)
def test_bad_sizes(tmp_path, content, message):
    path = tmp_path / "broken-idx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"broken-idx: .*{message}"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07" * 50)[:20])
    with pytest.raises(ValueError, match="cut.gz: corrupt gzip"):
        read_idx(path)


def test_directory_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        read_idx(tmp_path)


def test_write_rejects_unsupported(tmp_path):
    with pytest.raises(TypeError, match="IDX cannot store dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))


class _HalfThenDiskFull:
    """A file whose first write stores half its data, then fails."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("existing", [False, True])
def test_write_failure_leaves_no_partial_file(tmp_path, monkeypatch, existing):
    import builtins
    import io

    path = tmp_path / "train-images-idx3-ubyte.gz"
    if existing:
        write_idx(path, np.ones((2, 28, 28), dtype=np.uint8))
    before = path.read_bytes() if existing else None
    real_open = builtins.open

    def failing_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if "w" in mode and str(file).endswith(path.name):
            return _HalfThenDiskFull(f)
        return f

    monkeypatch.setattr(builtins, "open", failing_open)
    monkeypatch.setattr(io, "open", failing_open)
    with pytest.raises(OSError, match="No space left") as info:
        write_idx(path, np.zeros((3, 28, 28), dtype=np.uint8))
    monkeypatch.undo()
    assert str(path) in str(info.value)
    assert path.exists() == existing
    assert (path.read_bytes() if existing else None) == before
    assert [p.name for p in tmp_path.iterdir()] == ([path.name] if existing else [])


def test_load_idx_pair(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([3, 4], dtype=np.uint8))
    X, y = load_idx_pair(tmp_path / "t10k-images-idx3-ubyte")
    assert X.shape == (2, 784) and y.tolist() == [3, 4]
    np.testing.assert_array_equal(X[1], images[1].ravel())
    X3, _ = load_idx_pair(tmp_path, flatten=False)
    assert X3.shape == (2, 28, 28)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([3], dtype=np.uint8))
    with pytest.raises(ValueError, match="has 2 samples but .* has 1 labels"):
        load_idx_pair(tmp_path)


@pytest.mark.skipif(not ISCX.is_dir(), reason=f"shared ISCX data absent ({ISCX})")
def test_shared_iscx_files():
    X, y = load_idx_pair(ISCX / "VpnSessionAllLayers")
    assert X.dtype == np.uint8 and X.shape[1] == 784
    assert X.shape[0] == y.shape[0] == 3664 + 268 + 918 + 429 + 593 + 5400
    assert set(np.unique(y)) == set(range(6))
    # USTC-TK2016 AllLayers rows start with a big-endian pcap global header.
    assert (X[:, :4] == [0xA1, 0xB2, 0xC3, 0xD4]).all()
    images = read_idx(ISCX / "VpnSessionL7" / "train-images-idx3-ubyte.gz")
    assert images.ndim == 3 and images.shape[1:] == (28, 28)


def test_class_names_legend(tmp_path):
    from sklearn_flowspectrum._idx import (
        format_legend,
        labels_beside,
        legend_path,
        named_labels,
    )

    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    assert labels_beside(tmp_path / "train-images-idx3-ubyte.gz") == labels
    assert labels_beside(tmp_path / "images.npy") is None
    codes = np.array([1, 0, 1, 2], dtype=np.uint8)
    write_idx(labels, codes)
    assert named_labels(codes, labels) is codes  # no legend: the codes
    legend = legend_path(labels)
    assert legend.name == "train-labels-idx1-ubyte.gz.names.txt"
    legend.write_text(format_legend(["chat", "dns", "web mail"]))
    assert named_labels(read_idx(labels), labels).tolist() == [
        "dns",
        "chat",
        "dns",
        "web mail",
    ]
    legend.write_text("0\tchat\n1\tdns\n")
    with pytest.raises(ValueError, match="names.txt: no class name for label code 2"):
        named_labels(codes, labels)
    legend.write_text("0\tchat\nchat without a code\n")
    with pytest.raises(ValueError, match=r"names.txt: line 2 is not 'code<TAB>"):
        named_labels(codes, labels)
    with pytest.raises(ValueError, match="tab or a line break"):
        format_legend(["a\tb"])
