"""Outputs are written whole or not at all (sklearn_flowspectrum._atomic)."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import errno
import os
import stat

import pytest

from sklearn_flowspectrum._atomic import all_or_nothing, atomic_output


def _disk_full(path):
    """Half-write ``path``, then fail like a full disk."""
    with open(path, "wb") as f:
        f.write(b"half of a")
    raise OSError(errno.ENOSPC, "No space left on device")


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-"))


def test_atomic_output_replaces_when_complete(tmp_path):
    path = tmp_path / "out.csv.gz"
    path.write_text("old")
    with atomic_output(path) as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.endswith("-out.csv.gz")  # same suffixes
        assert temporary.exists() and path.read_text() == "old"
        temporary.write_text("new")
    assert path.read_text() == "new"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize("error", [OSError, ValueError, KeyboardInterrupt])
def test_atomic_output_failure_leaves_nothing(tmp_path, existing, error):
    path = tmp_path / "model.joblib"
    if existing:
        path.write_bytes(b"a good model")
    with pytest.raises(error):
        with atomic_output(path) as temporary:
            temporary.write_bytes(b"half of a")
            raise error("injected")
    if existing:
        assert path.read_bytes() == b"a good model"
    else:
        assert not path.exists()
    assert _leftovers(tmp_path) == []


def test_errors_name_the_destination_not_the_temporary(tmp_path):
    path = tmp_path / "out.npy"
    with pytest.raises(OSError) as info:
        with atomic_output(path) as temporary:
            _disk_full(temporary)
    assert info.value.filename == str(path)
    assert str(path) in str(info.value) and ".tmp-" not in str(info.value)
    (tmp_path / "folder").mkdir()
    with pytest.raises(OSError) as info:  # renaming over a folder fails
        with atomic_output(tmp_path / "folder") as temporary:
            temporary.write_text("x")
    assert info.value.filename == str(tmp_path / "folder")
    assert _leftovers(tmp_path) == []
    with pytest.raises(OSError) as info:
        with atomic_output(tmp_path / "missing" / "out.csv"):
            pass
    assert info.value.filename == str(tmp_path / "missing" / "out.csv")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_permissions_follow_the_umask(tmp_path):
    with atomic_output(tmp_path / "atomic") as temporary:
        temporary.write_text("x")
    with open(tmp_path / "plain", "w") as f:
        f.write("x")
    mode = stat.S_IMODE
    assert mode(os.stat(tmp_path / "atomic").st_mode) == mode(
        os.stat(tmp_path / "plain").st_mode
    )


def test_all_or_nothing_commits_together(tmp_path):
    a, b = tmp_path / "images.npy", tmp_path / "labels.npy"
    with all_or_nothing():
        with atomic_output(a) as temporary:
            temporary.write_text("images")
        assert not a.exists()  # waits for the block
        with all_or_nothing():  # nested: joins the outer block
            with atomic_output(b) as temporary:
                temporary.write_text("labels")
        assert not b.exists()
    assert a.read_text() == "images" and b.read_text() == "labels"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_all_or_nothing_failure_writes_none(tmp_path, error):
    a, b = tmp_path / "images.npy", tmp_path / "labels.npy"
    a.write_text("old images")
    with pytest.raises(error):
        with all_or_nothing():
            with atomic_output(a) as temporary:
                temporary.write_text("new images")
            with atomic_output(b) as temporary:
                temporary.write_text("labels")
            raise error("the command fails after writing both")
    assert a.read_text() == "old images" and not b.exists()
    assert _leftovers(tmp_path) == []
    # outside a block, outputs are committed at once again
    with atomic_output(b) as temporary:
        temporary.write_text("labels")
    assert b.read_text() == "labels"
