"""``flowspectrum explain``: top protocol fields of each session (tiny, 1 epoch)."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import shutil

import numpy as np
import pandas as pd
import pytest

from sklearn_flowspectrum import read_sessions
from sklearn_flowspectrum._cli import main
from sklearn_flowspectrum.datasets import load_sample_captures
from tests.test_cli import FAST, assert_one_line_error, run

OICQ, THREEMA, H323, MGCP, MUMBLE, DAZN = load_sample_captures().filenames


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("captures")
    for label, srcs in (("chat", [OICQ, THREEMA]), ("voip", [H323, MGCP])):
        (root / label).mkdir()
        for src in srcs:
            shutil.copy(src, root / label)
    path = root / "m.joblib"
    argv = ["-q", "fit", str(root / "chat"), str(root / "voip"), "-o", str(path)]
    assert main([*argv, *FAST]) == 0
    return path


@pytest.mark.parametrize("method", ["gradients", "occlusion", "attention"])
def test_explain_writes_top_fields_with_shares(capsys, tmp_path, model, method):
    out = tmp_path / "fields.csv"
    code, _, err = run(
        capsys, "explain", model, DAZN, "-o", out, "--method", method, "--top", "2"
    )
    assert code == 0, err
    assert f"by {method}" in err
    table = pd.read_csv(out)
    assert len(table) == len(read_sessions(DAZN)) == 3
    assert list(table.columns[:2]) == ["file", "session"]
    assert {"label", "field1", "share1", "field2", "share2"} <= set(table)
    assert "field3" not in table
    assert set(table["label"]) <= {"chat", "voip"}
    shares = table[["share1", "share2"]].to_numpy()
    assert ((shares >= 0) & (shares <= 1)).all()
    assert (shares[:, 0] >= shares[:, 1]).all()
    assert (shares.sum(axis=1) <= 1 + 1e-3).all()
    assert "pad" not in set(table["field1"]) | set(table["field2"])
    assert table["field1"].str.match(r"^[a-z0-9_.]+$").all()


def test_explain_default_method_and_errors(capsys, tmp_path, model):
    out = tmp_path / "fields.csv"
    code, _, err = run(capsys, "explain", model, DAZN, "-o", out)
    assert code == 0, err
    assert "by gradients" in err
    code, _, err = run(capsys, "explain", model, DAZN, "-o", out, "--top", "0")
    assert code == 2 and "--top" in err  # a usage error, as for every option
    code, _, err = run(capsys, "explain", tmp_path / "none.joblib", DAZN, "-o", out)
    assert_one_line_error(code, err, "model file not found")
    images = tmp_path / "x.npy"
    np.save(images, np.zeros((2, 784), np.uint8))
    code, _, err = run(capsys, "explain", model, images, "-o", out)
    assert_one_line_error(code, err, "x.npy", "captures")
    code, _, err = run(capsys, "explain", model, DAZN)
    assert code == 2 and "required" in err
