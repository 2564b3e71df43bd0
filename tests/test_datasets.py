"""Tests for the bundled ISCX sample and the full-data loader."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import gzip
from pathlib import Path

import numpy as np
import pytest

from sklearn_flowspectrum import write_idx
from sklearn_flowspectrum.datasets import (
    load_iscx_vpn2016,
    load_iscx_vpn2016_sample,
)

SHARED_ISCX = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "iscx-vpn2016"
)


@pytest.mark.parametrize("representation", ["alllayers", "l7"])
def test_sample_shapes_and_balance(representation):
    data = load_iscx_vpn2016_sample(representation=representation)
    assert data.data.shape == (3000, 784)
    assert data.data.dtype == np.uint8
    assert data.target.dtype == np.int64
    assert np.bincount(data.target).tolist() == [250] * 12
    assert list(data.target_names[:6]) == [
        "Chat",
        "Email",
        "File",
        "P2P",
        "Streaming",
        "VoIP",
    ]
    assert list(data.target_names[6:]) == ["VPN-" + n for n in data.target_names[:6]]
    assert data.feature_names[0] == "byte0" and len(data.feature_names) == 784
    np.testing.assert_array_equal(data.vpn, data.target >= 6)
    assert data.representation == representation
    assert "MPL" in data.DESCR and "not aligned" in data.DESCR
    # no duplicate rows: a random split cannot put one image on both sides
    assert len(np.unique(data.data, axis=0)) == 3000
    # the source folder agrees with the VPN flag and the representation
    suffix = {"alllayers": "SessionAllLayers", "l7": "SessionL7"}[representation]
    expected = np.where(data.vpn, "Vpn" + suffix, "Novpn" + suffix)
    np.testing.assert_array_equal(data.source_folder.astype(str), expected)


def test_sample_alllayers_rows_are_pcap_files():
    X, _ = load_iscx_vpn2016_sample(return_X_y=True)
    # every AllLayers row starts with a big-endian pcap global header
    assert (X[:, :4] == [0xA1, 0xB2, 0xC3, 0xD4]).all()
    linktype = X[:, 20:24].astype(np.uint32) @ np.array([1 << 24, 1 << 16, 1 << 8, 1])
    assert set(np.unique(linktype)) <= {1, 101}


def test_sample_l7_differs_from_alllayers():
    a, _ = load_iscx_vpn2016_sample(representation="alllayers", return_X_y=True)
    b, _ = load_iscx_vpn2016_sample(representation="l7", return_X_y=True)
    assert not (b[:, :4] == [0xA1, 0xB2, 0xC3, 0xD4]).all(axis=1).any()
    assert not np.array_equal(a, b)


def test_sample_as_frame():
    data = load_iscx_vpn2016_sample(as_frame=True)
    assert data.frame.shape == (3000, 785)
    assert list(data.frame.columns[[0, -1]]) == ["byte0", "target"]
    X, y = load_iscx_vpn2016_sample(as_frame=True, return_X_y=True)
    assert X.shape == (3000, 784) and y.name == "target"


def test_sample_bad_parameter():
    with pytest.raises(ValueError, match="representation"):
        load_iscx_vpn2016_sample(representation="L8")


@pytest.mark.skipif(
    not SHARED_ISCX.is_dir(), reason="../shared/data/iscx-vpn2016 absent"
)
def test_sample_rows_match_published_files():
    from sklearn_flowspectrum import load_idx_pair

    data = load_iscx_vpn2016_sample(representation="l7")
    for folder in ("NovpnSessionL7", "VpnSessionL7"):
        X, y = load_idx_pair(SHARED_ISCX / folder / "train-images-idx3-ubyte.gz")
        sel = data.source_folder == folder
        np.testing.assert_array_equal(data.data[sel], X[data.source_row[sel]])
        offset = 6 if folder.startswith("Vpn") else 0
        np.testing.assert_array_equal(
            data.target[sel], y[data.source_row[sel]] + offset
        )


def _fake_iscx(root, n=(5, 4), split="train", gz=True):
    """Write a tiny folder with the published layout; returns the rows."""
    rng = np.random.default_rng(0)
    rows = {}
    for side, count in zip(("Novpn", "Vpn"), n):
        folder = root / f"{side}SessionAllLayers"
        folder.mkdir(parents=True)
        X = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        y = (np.arange(count) % 6).astype(np.uint8)
        ext = ".gz" if gz else ""
        write_idx(folder / f"{split}-images-idx3-ubyte{ext}", X)
        write_idx(folder / f"{split}-labels-idx1-ubyte{ext}", y)
        rows[side] = (X.reshape(count, -1), y)
    return rows


def test_full_loader_layout(tmp_path):
    rows = _fake_iscx(tmp_path)
    data = load_iscx_vpn2016(tmp_path)
    assert data.data.shape == (9, 784)
    np.testing.assert_array_equal(data.data[:5], rows["Novpn"][0])
    np.testing.assert_array_equal(data.target[5:], rows["Vpn"][1] + 6)
    assert data.vpn.tolist() == [False] * 5 + [True] * 4
    assert len(data.target_names) == 12
    X, y = load_iscx_vpn2016(tmp_path, vpn="vpn", return_X_y=True)
    np.testing.assert_array_equal(y, rows["Vpn"][1])
    data = load_iscx_vpn2016(tmp_path, vpn="novpn", as_frame=True)
    assert data.frame.shape == (5, 785)
    assert list(data.target_names) == [
        "Chat",
        "Email",
        "File",
        "P2P",
        "Streaming",
        "VoIP",
    ]


def test_full_loader_plain_files_and_test_split(tmp_path):
    _fake_iscx(tmp_path, split="t10k", gz=False)
    assert load_iscx_vpn2016(tmp_path, split="test").data.shape == (9, 784)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_iscx_vpn2016(tmp_path, split="train")


def test_full_loader_env_var(tmp_path, monkeypatch):
    _fake_iscx(tmp_path)
    monkeypatch.setenv("FLOWSPECTRUM_ISCX_PATH", str(tmp_path))
    assert load_iscx_vpn2016().data.shape == (9, 784)


def test_full_loader_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWSPECTRUM_ISCX_PATH", raising=False)
    with pytest.raises(FileNotFoundError, match="FLOWSPECTRUM_ISCX_PATH"):
        load_iscx_vpn2016()
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_iscx_vpn2016(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="NovpnFlowL7"):
        load_iscx_vpn2016(tmp_path, subset="flow", representation="l7")


def test_full_loader_bad_files(tmp_path):
    rows = _fake_iscx(tmp_path)
    labels = tmp_path / "VpnSessionAllLayers" / "train-labels-idx1-ubyte.gz"
    write_idx(labels, rows["Vpn"][1][:2])
    with pytest.raises(ValueError, match="2 labels for 4 images"):
        load_iscx_vpn2016(tmp_path)
    labels.write_bytes(gzip.compress(b"not an idx file"))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz"):
        load_iscx_vpn2016(tmp_path)
    write_idx(labels, np.array([0, 1, 7, 2], dtype=np.uint8))
    with pytest.raises(ValueError, match="label 7 out of range"):
        load_iscx_vpn2016(tmp_path)


@pytest.mark.skipif(
    not SHARED_ISCX.is_dir(), reason="../shared/data/iscx-vpn2016 absent"
)
def test_full_loader_on_shared_data():
    data = load_iscx_vpn2016(SHARED_ISCX, vpn="vpn")
    assert data.data.shape == (11272, 784)
    assert np.bincount(data.target).tolist() == [3664, 268, 918, 429, 593, 5400]


def test_sample_captures_are_captures():
    from sklearn_flowspectrum._capture import capture_format
    from sklearn_flowspectrum.datasets import load_sample_captures

    captures = load_sample_captures()
    assert len(captures.filenames) == len(captures.target) == 6
    formats = [capture_format(p) for p in captures.filenames]
    assert formats == ["pcap"] * 4 + ["pcapng"] * 2
    assert set(captures.target) == set(captures.target_names)
    assert "LGPL-3.0" in captures.DESCR
