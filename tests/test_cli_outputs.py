"""Command-line outputs: whole or not at all, and valid UTF-8.

Every output goes through a temporary file that replaces the destination
only once complete, and the outputs of one command appear together; a
failure (here a full disk, injected half-way through a write) leaves no
partial file, and a file already there untouched.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sklearn_flowspectrum import read_idx, write_idx
from sklearn_flowspectrum._cli import _escape_undecodable
from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample
from tests.test_cli import MGCP, OICQ, assert_one_line_error, run


def _fail_half_way(monkeypatch, owner, attr, path_of, on_call=1):
    """Make ``owner.attr`` write its output, cut it in half and fail like a
    full disk, on its ``on_call``-th call; ``path_of(args)`` names the file."""
    real = getattr(owner, attr)
    calls = []

    def writer(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(path_of(args))
        if len(calls) == on_call:
            path = calls[-1]
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            raise OSError(errno.ENOSPC, "No space left on device")
        return result

    monkeypatch.setattr(owner, attr, writer)


def _to_csv(monkeypatch, on_call=1):
    _fail_half_way(monkeypatch, pd.DataFrame, "to_csv", lambda a: a[1], on_call)


def _np_save(monkeypatch, on_call=1):
    _fail_half_way(monkeypatch, np, "save", lambda a: a[0], on_call)


def _write_bytes(monkeypatch, on_call=1):  # what write_idx writes with
    _fail_half_way(monkeypatch, Path, "write_bytes", lambda a: a[0], on_call)


def _write_text(monkeypatch, on_call=1):  # the .names.txt legend
    _fail_half_way(monkeypatch, Path, "write_text", lambda a: a[0], on_call)


def _labelled(tmp_path):
    (tmp_path / "voip").mkdir()
    shutil.copy(MGCP, tmp_path / "voip")
    return tmp_path / "voip"


# (command line, outputs, the writer that fails) with {d} the output folder
# and {voip} a class folder.
CASES = {
    "sessions csv": ("sessions {oicq} -o {d}/s.csv", ["s.csv"], _to_csv),
    "sessions csv.gz": ("sessions {oicq} -o {d}/s.csv.gz", ["s.csv.gz"], _to_csv),
    "sessions report": (
        "sessions {oicq} -o {d}/s.csv --report {d}/r.csv",
        ["s.csv", "r.csv"],
        lambda mp: _to_csv(mp, on_call=2),
    ),
    "vectorize npy": ("vectorize {oicq} -o {d}/v.npy", ["v.npy"], _np_save),
    "vectorize idx": (
        "vectorize {oicq} -o {d}/images-idx3-ubyte.gz",
        ["images-idx3-ubyte.gz"],
        _write_bytes,
    ),
    "labels npy": (
        "vectorize {voip} --labels dir -o {d}/v.npy --labels-output {d}/l.npy",
        ["v.npy", "l.npy"],
        lambda mp: _np_save(mp, on_call=2),
    ),
    "labels csv": (
        "vectorize {voip} --labels dir -o {d}/v.npy --labels-output {d}/l.csv",
        ["v.npy", "l.csv"],
        _to_csv,
    ),
    "labels idx": (
        "vectorize {voip} --labels dir -o {d}/images-idx3-ubyte "
        "--labels-output {d}/labels-idx1-ubyte",
        ["images-idx3-ubyte", "labels-idx1-ubyte"],
        lambda mp: _write_bytes(mp, on_call=2),
    ),
    "labels legend": (
        "vectorize {voip} --labels dir -o {d}/images-idx3-ubyte "
        "--labels-output {d}/labels-idx1-ubyte",
        ["images-idx3-ubyte", "labels-idx1-ubyte", "labels-idx1-ubyte.names.txt"],
        _write_text,
    ),
}


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize("case", list(CASES))
def test_failed_write_leaves_no_partial_output(
    capsys, tmp_path, monkeypatch, case, existing
):
    command, outputs, inject = CASES[case]
    out = tmp_path / "out"
    out.mkdir()
    argv = command.format(d=out, oicq=OICQ, voip=_labelled(tmp_path)).split()
    for name in outputs if existing else ():
        (out / name).write_bytes(b"an earlier result")
    inject(monkeypatch)
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, "No space left on device")
    # the error names one of the command's outputs, not a temporary file
    assert any(str(out / name) in err.splitlines()[-1] for name in outputs), err
    assert ".tmp-" not in err
    expected = sorted(outputs) if existing else []
    assert sorted(os.listdir(out)) == expected  # no partial, no temporary file
    for name in expected:
        assert (out / name).read_bytes() == b"an earlier result"


def test_vectorize_without_labels_writes_no_images(capsys, tmp_path):
    # Published rows without a labels file beside them: no labels to write.
    rows = tmp_path / "in" / "rows-images-idx3-ubyte"
    rows.parent.mkdir()
    X, _ = load_iscx_vpn2016_sample(return_X_y=True)
    write_idx(rows, X[:4].reshape(-1, 28, 28))
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(
        capsys,
        "vectorize",
        rows,
        "-o",
        out / "v2.npy",
        "--labels-output",
        out / "l.npy",
    )
    assert_one_line_error(code, err, "no labels to write")
    assert os.listdir(out) == []


def test_escape_undecodable():
    assert _escape_undecodable("plain/naïve.pcap") == "plain/naïve.pcap"
    # Python's name for the byte 0xff of a file name (PEP 383)
    assert _escape_undecodable(os.fsdecode(b"caf\xff.pcap")) == "caf\\xff.pcap"
    assert _escape_undecodable("lone \ud800") == "lone \\ud800"


@pytest.fixture
def undecodable(tmp_path):
    """A class folder and a capture whose names are not UTF-8."""
    try:
        folder = Path(os.fsdecode(bytes(tmp_path) + b"/cl\xffss"))
        folder.mkdir()
        capture = folder / os.fsdecode(b"caf\xff.pcap")
        shutil.copy(OICQ, capture)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    return capture


def test_undecodable_names_are_written_escaped(capsys, tmp_path, undecodable):
    table = tmp_path / "s.csv"
    code, _, err = run(capsys, "sessions", undecodable, "-o", table, "--labels", "dir")
    assert code == 0, err
    sessions = pd.read_csv(table, encoding="utf-8")
    assert len(sessions) == 29
    assert sessions["file"].str.endswith("cl\\xffss/caf\\xff.pcap").all()
    assert (sessions["label"] == "cl\\xffss").all()

    for images, labels in (
        ("images-idx3-ubyte", "labels-idx1-ubyte"),
        ("v.npy", "l.csv"),
    ):
        code, _, err = run(
            capsys,
            "vectorize",
            undecodable,
            "--labels",
            "dir",
            "-o",
            tmp_path / images,
            "--labels-output",
            tmp_path / labels,
        )
        assert code == 0, err
    legend = tmp_path / "labels-idx1-ubyte.names.txt"
    assert legend.read_text(encoding="utf-8") == "0\tcl\\xffss\n"
    assert read_idx(tmp_path / "labels-idx1-ubyte").tolist() == [0] * 29
    assert (pd.read_csv(tmp_path / "l.csv")["label"] == "cl\\xffss").all()


def test_undecodable_names_in_parquet(capsys, tmp_path, undecodable):
    pytest.importorskip("pyarrow")
    table = tmp_path / "s.parquet"
    code, _, err = run(capsys, "sessions", undecodable, "-o", table)
    assert code == 0, err
    assert pd.read_parquet(table)["file"].str.endswith("caf\\xff.pcap").all()


def test_unwritable_table_names_the_file(capsys, tmp_path, monkeypatch):
    def cannot_encode(self, path, **kwargs):
        with open(path, "w") as f:
            f.write("file,session\n" * 23)
        raise UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(pd.DataFrame, "to_csv", cannot_encode)
    table = tmp_path / "s.csv"
    code, _, err = run(capsys, "sessions", OICQ, "-o", table)
    assert_one_line_error(code, err, f"{table}: cannot write the table")
    assert os.listdir(tmp_path) == []
