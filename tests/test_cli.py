"""Tests for the flowspectrum command line (in-process, tiny data, 1 epoch)."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import io
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sklearn_flowspectrum import read_idx, write_idx
from sklearn_flowspectrum._cli import main
from sklearn_flowspectrum.datasets import (
    load_iscx_vpn2016_sample,
    load_sample_captures,
)
from tests import _pcaps as P

CAPTURES = load_sample_captures().filenames
OICQ, THREEMA, H323, MGCP, MUMBLE, DAZN = CAPTURES
FAST = ["--epochs", "1", "--batch-size", "16", "--device", "cpu"]


def run(capsys, *argv):
    """Run the CLI; return (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors and --help
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    """Exit status 1 and one error line (after any progress messages)."""
    assert code == 1
    lines = err.strip().splitlines()
    errors = [line for line in lines if "error" in line.lower()]
    assert errors == [lines[-1]], err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


@pytest.fixture(scope="module")
def idx_pair(tmp_path_factory):
    """48 AllLayers and 48 L7 rows of 4 classes as IDX files with labels."""
    folder = tmp_path_factory.mktemp("idx")
    paths = {}
    for rep in ("alllayers", "l7"):
        X, y = load_iscx_vpn2016_sample(representation=rep, return_X_y=True)
        keep = np.concatenate([np.flatnonzero(y == c)[:12] for c in (0, 3, 5, 9)])
        images = folder / f"{rep}-images-idx3-ubyte.gz"
        write_idx(images, X[keep].reshape(-1, 28, 28))
        write_idx(folder / f"{rep}-labels-idx1-ubyte.gz", y[keep].astype(np.uint8))
        paths[rep] = images
    return paths


@pytest.fixture(scope="module")
def idx_model(idx_pair, tmp_path_factory):
    model = tmp_path_factory.mktemp("model") / "model.joblib"
    assert main(["-q", "fit", str(idx_pair["alllayers"]), "-o", str(model), *FAST]) == 0
    return model


def test_help_and_usage(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("sessions", "vectorize", "fit", "predict", "demo"):
        assert command in out
    code, _, err = run(capsys)
    assert code == 2 and "usage" in err
    code, _, err = run(capsys, "fit")
    assert code == 2 and "required" in err
    code, out, _ = run(capsys, "--version")
    assert code == 0


def test_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "sklearn_flowspectrum", "predict", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "spectrum value" in out.stdout


def test_sessions_csv(capsys, tmp_path):
    from sklearn_flowspectrum import read_sessions

    out = tmp_path / "sessions.csv"
    report = tmp_path / "report.csv"
    code, _, err = run(capsys, "sessions", OICQ, MUMBLE, "-o", out, "--report", report)
    assert code == 0, err
    table = pd.read_csv(out)
    expected = read_sessions([OICQ, MUMBLE])
    assert len(table) == len(expected)
    assert {"file", "src_addr", "dst_port", "protocol", "packets"} <= set(table)
    assert "frames" not in table
    np.testing.assert_array_equal(table["src_port"], expected["src_port"])
    assert pd.read_csv(report)["packets"].tolist() == [29, 10]
    assert "32 sessions" in err


def test_sessions_labels_from_folders(capsys, tmp_path):
    for label, src in (("chat", OICQ), ("voip", MGCP)):
        (tmp_path / "caps" / label).mkdir(parents=True)
        shutil.copy(src, tmp_path / "caps" / label)
    out = tmp_path / "s.csv"
    code, _, err = run(
        capsys, "sessions", tmp_path / "caps", "-o", out, "--labels", "dir"
    )
    assert code == 0, err
    table = pd.read_csv(out)
    assert set(table["label"]) == {"chat", "voip"}
    assert (table["label"] == "chat").sum() == 29


def test_sessions_parquet_without_pyarrow(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import fails
    code, _, err = run(capsys, "sessions", OICQ, "-o", tmp_path / "s.parquet")
    assert_one_line_error(code, err, "pyarrow")
    assert not (tmp_path / "s.parquet").exists()


def _bad_input(folder, kind):
    if kind == "missing":
        return folder / "missing.pcap"
    if kind == "text":
        (folder / "notes.txt").write_text("hello, not a capture")
        return folder / "notes.txt"
    if kind == "empty":
        (folder / "empty.pcap").write_bytes(b"")
        return folder / "empty.pcap"
    (folder / "d").mkdir()
    return folder / "d"


@pytest.mark.parametrize(
    "kind, fragment",
    [
        ("missing", "no such file"),
        ("text", "not a pcap or pcapng file"),
        ("empty", "empty"),
        ("folder", "holds no capture files"),
    ],
)
def test_bad_inputs_one_line(capsys, tmp_path, kind, fragment):
    path = _bad_input(tmp_path, kind)
    for command in (
        ["sessions", path, "-o", tmp_path / "s.csv"],
        ["vectorize", path, "-o", tmp_path / "x.npy"],
    ):
        code, _, err = run(capsys, *command)
        assert_one_line_error(code, err, fragment)


def test_damaged_pcapng_block_is_one_line_or_a_warning(capsys, tmp_path):
    data, start, _ = P.pcapng_fuzz_file("spb", 0, "zeros")
    bad = P.write_bytes(tmp_path / "spb.pcapng", data)
    out = tmp_path / "s.csv"
    code, _, err = run(capsys, "sessions", OICQ, bad, "-o", out)
    assert_one_line_error(code, err, f"{bad}: simple packet block at byte {start}")
    assert not out.exists()
    code, _, err = run(capsys, "sessions", OICQ, bad, "-o", out, "--on-error", "warn")
    assert code == 0, err
    assert f"{bad}: simple packet block at byte {start}" in err
    table = pd.read_csv(out)
    assert (table["file"] == OICQ).sum() == 29
    assert (table["file"] == str(bad)).sum() == 1


def test_on_error_warn_treats_a_named_file_as_one_in_a_folder(capsys, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(OICQ, folder / "good.pcap")
    (folder / "empty.pcap").write_bytes(b"")
    (folder / "text.pcap").write_text("hello, not a capture")
    (folder / "cut.pcap").write_bytes(open(MGCP, "rb").read()[:-10])
    named = sorted(str(p) for p in folder.iterdir())
    outputs = []
    for inputs in ([folder], named):
        out, report = tmp_path / "s.csv", tmp_path / "r.csv"
        code, _, err = run(
            capsys,
            "sessions",
            *inputs,
            "-o",
            out,
            "--report",
            report,
            "--on-error",
            "warn",
        )
        assert code == 0, err
        for bad in ("empty.pcap", "text.pcap", "cut.pcap"):
            assert f"{folder / bad}: " in err
        outputs.append((pd.read_csv(out), pd.read_csv(report)))
        code, _, err = run(capsys, "sessions", *inputs, "-o", out)
        assert_one_line_error(code, err, str(folder / "cut.pcap"))
    (by_folder, report_folder), (by_name, report_name) = outputs
    pd.testing.assert_frame_equal(by_folder, by_name)
    pd.testing.assert_frame_equal(report_folder, report_name)
    assert report_folder["error"].notna().sum() == 3


def test_image_commands_read_what_their_images_need(capsys, tmp_path):
    # vectorize and fit have no --keep-bytes: they must not need it.
    from sklearn_flowspectrum import PcapSessionVectorizer, read_sessions

    out = tmp_path / "x.npy"
    code, _, err = run(capsys, "vectorize", THREEMA, "-o", out, "--n-bytes", "1000")
    assert code == 0, err
    wide = PcapSessionVectorizer(n_bytes=1000, scale=False)
    expected = wide.fit_transform(read_sessions(THREEMA, keep_bytes=1000))
    np.testing.assert_array_equal(np.load(out), expected)
    # Sessions of big packets: the byte budgets alone keep 4 frames of 14.
    conversation = P.tcp_conversation(
        requests=[b"q" * 1000] * 5, replies=[b"r" * 1000] * 5
    )
    big = P.write_pcap(tmp_path / "big.pcap", [P.eth(p) for p in conversation])
    code, _, err = run(capsys, "vectorize", big, "-o", out, "--layout", "packets")
    assert code == 0, err
    assert ": warning: " not in err  # no advice to read with keep_packets
    slots = PcapSessionVectorizer(layout="packets", scale=False)
    expected = slots.fit_transform(read_sessions(big, keep_packets=7))
    np.testing.assert_array_equal(np.load(out), expected)
    assert np.load(out)[0, 6 * 112 :].any()
    model = tmp_path / "wide.joblib"
    code, _, err = run(
        capsys,
        "fit",
        OICQ,
        H323,
        "-o",
        model,
        "--n-bytes",
        "1000",
        *FAST,
        "--labels",
        _labels_csv(tmp_path, {OICQ: "chat", H323: "voip"}),
    )
    assert code == 0, err
    code, out, err = run(capsys, "predict", model, THREEMA)
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(out))) == 6


def _labels_csv(tmp_path, labels):
    path = tmp_path / "labels.csv"
    pd.DataFrame({"file": list(labels), "label": list(labels.values())}).to_csv(
        path, index=False
    )
    return path


def test_bad_output_names(capsys, tmp_path):
    code, _, err = run(capsys, "sessions", OICQ, "-o", tmp_path / "s.txt")
    assert_one_line_error(code, err, ".csv")
    code, _, err = run(capsys, "vectorize", OICQ, "-o", tmp_path / "x.bin")
    assert_one_line_error(code, err, ".npy")


@pytest.mark.parametrize("value", ["0", "1.5", "two"])
def test_n_jobs_must_be_a_nonzero_integer(capsys, tmp_path, value):
    code, _, err = run(
        capsys, "sessions", OICQ, "-o", tmp_path / "s.csv", "--n-jobs", value
    )
    assert code == 2
    assert "argument --n-jobs: must be a non-zero integer" in err.splitlines()[-1]
    assert not (tmp_path / "s.csv").exists()


def test_vectorize_captures_matches_library(capsys, tmp_path):
    from sklearn_flowspectrum import PcapSessionVectorizer, read_sessions

    out = tmp_path / "images.npy"
    code, _, err = run(capsys, "vectorize", OICQ, H323, "-o", out, "--layers", "l7")
    assert code == 0, err
    images = np.load(out)
    expected = PcapSessionVectorizer(layers="l7", scale=False).fit_transform(
        read_sessions([OICQ, H323])
    )
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(images, expected)


def test_vectorize_to_idx_with_labels(capsys, tmp_path):
    images = tmp_path / "train-images-idx3-ubyte.gz"
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    (tmp_path / "voip").mkdir()
    shutil.copy(MGCP, tmp_path / "voip")
    code, _, err = run(
        capsys,
        "vectorize",
        tmp_path / "voip",
        "-o",
        images,
        "--labels",
        "dir",
        "--labels-output",
        labels,
    )
    assert code == 0, err
    X = read_idx(images)
    assert X.shape[1:] == (28, 28)
    assert read_idx(labels).tolist() == [0] * len(X)
    assert (
        tmp_path / "train-labels-idx1-ubyte.gz.names.txt"
    ).read_text() == "0\tvoip\n"
    # masked by default: no capture timestamp in the first record header
    assert not X.reshape(len(X), -1)[:, 24:32].any()


def test_vectorize_remasks_published_rows(capsys, tmp_path, idx_pair):
    from sklearn_flowspectrum import PcapSessionVectorizer

    out = tmp_path / "masked.npy"
    code, _, err = run(capsys, "vectorize", idx_pair["alllayers"], "-o", out)
    assert code == 0, err
    rows = read_idx(idx_pair["alllayers"]).reshape(48, -1)
    expected = PcapSessionVectorizer(scale=False).fit_transform(rows)
    np.testing.assert_array_equal(np.load(out), expected)
    code, _, err = run(capsys, "vectorize", idx_pair["l7"], "-o", out)
    assert_one_line_error(code, err, "not USTC-TK2016 AllLayers")
    # Label codes of published files stay codes (no legend, no renumbering).
    labels = tmp_path / "masked-labels-idx1-ubyte"
    (tmp_path / "masked-labels-idx1-ubyte.names.txt").write_text("0\tstale\n")
    code, _, err = run(
        capsys,
        "vectorize",
        idx_pair["alllayers"],
        "-o",
        out,
        "--labels-output",
        labels,
    )
    assert code == 0, err
    beside = str(idx_pair["alllayers"]).replace("images-idx3", "labels-idx1")
    np.testing.assert_array_equal(read_idx(labels), read_idx(beside))
    assert not (tmp_path / "masked-labels-idx1-ubyte.names.txt").exists()


def test_fit_predict_idx(capsys, tmp_path, idx_pair, idx_model):
    out = tmp_path / "pred.csv"
    code, _, err = run(capsys, "predict", idx_model, idx_pair["alllayers"], "-o", out)
    assert code == 0, err
    pred = pd.read_csv(out)
    assert list(pred.columns) == [
        "row",
        "true_label",
        "predicted",
        "probability",
        "spectrum",
    ]
    assert len(pred) == 48
    assert set(pred["predicted"]) <= {0, 3, 5, 9}
    assert pred["probability"].between(0, 1).all()
    assert np.isfinite(pred["spectrum"]).all()


def test_predict_rejects_what_does_not_fit(capsys, tmp_path, idx_pair, idx_model):
    code, _, err = run(
        capsys, "predict", idx_model, idx_pair["l7"], "-o", tmp_path / "p.csv"
    )
    assert_one_line_error(code, err, "payload-only (L7)")
    narrow = tmp_path / "narrow-images-idx3-ubyte"
    write_idx(narrow, np.zeros((3, 10, 10), dtype=np.uint8))
    code, _, err = run(capsys, "predict", idx_model, narrow)
    assert_one_line_error(code, err, "784-byte images", "100-byte")
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"not a pickle at all")
    code, _, err = run(capsys, "predict", junk, OICQ)
    assert_one_line_error(code, err, "not a model saved by 'flowspectrum fit'")
    code, _, err = run(capsys, "predict", tmp_path / "none.joblib", OICQ)
    assert_one_line_error(code, err, "model file not found")


def _class_root(tmp_path):
    """captures/{chat,chat/2024,voip,streaming -> elsewhere} of the sample
    captures; voip/mumble.pcapng links to a file in a folder named chat."""
    root = tmp_path / "captures"
    elsewhere = tmp_path / "elsewhere"
    for folder in ("chat/2024", "voip"):
        (root / folder).mkdir(parents=True)
    for folder in ("streams", "chat"):
        (elsewhere / folder).mkdir(parents=True)
    shutil.copy(OICQ, root / "chat" / "oicq.pcap")
    shutil.copy(THREEMA, root / "chat" / "2024" / "threema.pcap")
    shutil.copy(H323, root / "voip" / "h323.pcap")
    shutil.copy(MGCP, root / "voip" / "mgcp.pcap")
    shutil.copy(DAZN, elsewhere / "streams" / "dazn.pcapng")
    shutil.copy(MUMBLE, elsewhere / "chat" / "mumble.pcapng")
    (root / "streaming").symlink_to(elsewhere / "streams", target_is_directory=True)
    (root / "voip" / "mumble.pcapng").symlink_to(elsewhere / "chat" / "mumble.pcapng")
    return root


def test_commands_read_class_folders_like_read_sessions(capsys, tmp_path):
    from sklearn_flowspectrum import read_sessions

    root = _class_root(tmp_path)
    expected = read_sessions(root, labels="dir")
    by_file = expected.groupby("file", sort=False)["label"].first()
    assert by_file.to_dict() == {
        str(root / "chat" / "2024" / "threema.pcap"): "chat",  # nested: the class
        str(root / "chat" / "oicq.pcap"): "chat",
        str(root / "streaming" / "dazn.pcapng"): "streaming",  # a linked folder
        str(root / "voip" / "h323.pcap"): "voip",
        str(root / "voip" / "mgcp.pcap"): "voip",
        str(root / "voip" / "mumble.pcapng"): "voip",  # the link's folder
    }
    out = tmp_path / "s.csv"
    code, _, err = run(capsys, "sessions", root, "-o", out)  # labels by default
    assert code == 0, err
    table = pd.read_csv(out)
    assert table["file"].tolist() == expected["file"].tolist()
    assert table["label"].tolist() == expected["label"].tolist()
    labels = tmp_path / "y.npy"
    code, _, err = run(
        capsys, "vectorize", root, "-o", tmp_path / "x.npy", "--labels-output", labels
    )
    assert code == 0, err
    assert np.load(labels).tolist() == expected["label"].tolist()


def test_vectorize_outputs_feed_fit_and_predict(capsys, tmp_path):
    root = _class_root(tmp_path)
    # sessions -> a labels CSV (chat renamed) -> vectorize .npy -> fit -> predict
    table = tmp_path / "sessions.csv"
    assert run(capsys, "sessions", root, "-o", table)[0] == 0
    edited = pd.read_csv(table).replace({"label": {"chat": "messaging"}})
    edited.to_csv(table, index=False)
    images, labels = tmp_path / "x.npy", tmp_path / "y.npy"
    code, _, err = run(
        capsys,
        "vectorize",
        root,
        "-o",
        images,
        "--labels",
        table,
        "--labels-output",
        labels,
    )
    assert code == 0, err
    model = tmp_path / "npy.joblib"
    code, _, err = run(capsys, "fit", images, "--labels", labels, "-o", model, *FAST)
    assert code == 0, err
    assert "classes: messaging (35), streaming (3), voip (14)" in err
    code, out, err = run(capsys, "predict", model, images)
    assert code == 0, err
    assert set(pd.read_csv(io.StringIO(out))["predicted"]) <= {
        "messaging",
        "streaming",
        "voip",
    }
    code, _, err = run(capsys, "fit", images, "-o", model, *FAST)
    assert_one_line_error(code, err, "x.npy: no labels file", "--labels FILE")
    # vectorize IDX with its legend -> fit (class names, not codes) -> predict
    idx_images = tmp_path / "train-images-idx3-ubyte.gz"
    idx_labels = tmp_path / "train-labels-idx1-ubyte.gz"
    code, _, err = run(
        capsys, "vectorize", root, "-o", idx_images, "--labels-output", idx_labels
    )
    assert code == 0, err
    model = tmp_path / "idx.joblib"
    code, _, err = run(capsys, "fit", idx_images, "-o", model, *FAST)
    assert code == 0, err
    assert "classes: chat (35), streaming (3), voip (14)" in err
    code, out, err = run(capsys, "predict", model, idx_images)
    assert code == 0, err
    pred = pd.read_csv(io.StringIO(out))
    assert pred["true_label"].value_counts().to_dict() == {
        "chat": 35,
        "voip": 14,
        "streaming": 3,
    }
    assert set(pred["predicted"]) <= {"chat", "streaming", "voip"}


def test_labels_files_that_do_not_fit(capsys, tmp_path):
    root = _class_root(tmp_path)
    images, labels = tmp_path / "x.npy", tmp_path / "y.csv"
    assert (
        run(capsys, "vectorize", root, "-o", images, "--labels-output", labels)[0] == 0
    )
    short = tmp_path / "short.csv"
    pd.read_csv(labels).head(5).to_csv(short, index=False)
    code, _, err = run(capsys, "fit", images, "--labels", short, "-o", tmp_path / "m")
    assert_one_line_error(code, err, "short.csv: 5 labels for 52 images")
    code, _, err = run(capsys, "fit", images, "--labels", "dir", "-o", tmp_path / "m")
    assert_one_line_error(code, err, "--labels dir is for captures")
    # one capture, two labels in a labels CSV
    twice = tmp_path / "twice.csv"
    pd.DataFrame({"file": [OICQ, OICQ], "label": ["a", "b"]}).to_csv(twice)
    code, _, err = run(
        capsys, "sessions", OICQ, "--labels", twice, "-o", tmp_path / "s.csv"
    )
    assert_one_line_error(code, err, "gives it 2 labels (a, b)")


def test_fit_needs_labels_and_two_classes(capsys, tmp_path):
    lone = tmp_path / "lone-images-idx3-ubyte"
    write_idx(lone, np.zeros((3, 28, 28), dtype=np.uint8))
    code, _, err = run(capsys, "fit", lone, "-o", tmp_path / "m.joblib", *FAST)
    assert_one_line_error(code, err, "no labels file")
    (tmp_path / "only").mkdir()
    shutil.copy(OICQ, tmp_path / "only")
    code, _, err = run(
        capsys, "fit", tmp_path / "only", "-o", tmp_path / "m.joblib", *FAST
    )
    assert_one_line_error(code, err, "at least two classes")


def test_fit_captures_predict_captures(capsys, tmp_path):
    for label, srcs in (("chat", [OICQ, THREEMA]), ("voip", [H323, MGCP])):
        (tmp_path / label).mkdir()
        for src in srcs:
            shutil.copy(src, tmp_path / label)
    model = tmp_path / "m.joblib"
    code, _, err = run(
        capsys, "fit", tmp_path / "chat", tmp_path / "voip", "-o", model, *FAST
    )
    assert code == 0, err
    assert "classes: chat" in err
    code, out, err = run(capsys, "predict", model, DAZN)
    assert code == 0, err
    pred = pd.read_csv(io.StringIO(out))
    assert list(pred.columns[:7]) == [
        "file",
        "session",
        "protocol",
        "src_addr",
        "src_port",
        "dst_addr",
        "dst_port",
    ]
    assert {"predicted", "probability", "spectrum"} <= set(pred.columns)
    assert "label" not in pred.columns  # ground truth elsewhere, not a prediction
    assert set(pred["predicted"]) <= {"chat", "voip"}
    assert len(pred) == 3


def test_demo_tiny(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "demo"
    code, stdout, err = run(
        capsys,
        "demo",
        "--n-per-class",
        "6",
        "--out",
        out,
        *FAST,
    )
    assert code == 0, err
    assert "per-session accuracy" in stdout and "group-of-10 accuracy" in stdout
    assert "masking: safe" in stdout and "split: stratified random 80%/20%" in stdout
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(
        [
            "attention_scatter.png",
            "byte_weights_nonvpn.png",
            "byte_weights_vpn.png",
            "confusion_matrix.png",
            "spectrum.png",
            "spectrum_density.png",
            "weight_boxplot.png",
        ]
    )
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "per-session accuracy" in (out / "results.txt").read_text()


def test_fit_holds_out_whole_captures(capsys, tmp_path):
    for label, srcs in (("chat", [OICQ, THREEMA]), ("voip", [H323, MGCP])):
        (tmp_path / label).mkdir()
        for src in srcs:
            shutil.copy(src, tmp_path / label)
    model = tmp_path / "m.joblib"
    code, out, err = run(
        capsys, "fit", tmp_path, "-o", model, "--test-size", "0.5", *FAST
    )
    assert code == 0, err
    assert "held-out sessions" in out
    assert "2 of 4 capture files held out whole" in out
    code, _, err = run(capsys, "fit", tmp_path, "-o", model, "--test-size", "1.5")
    assert code == 2
    assert "argument --test-size: must be a share between 0 and 1" in err


def test_l7_model_takes_l7_rows_and_captures(capsys, tmp_path, idx_pair):
    model = tmp_path / "l7.joblib"
    code, _, err = run(capsys, "fit", idx_pair["l7"], "-o", model, *FAST)
    assert code == 0, err
    code, out, err = run(capsys, "predict", model, MGCP)
    assert code == 0, err
    pred = pd.read_csv(io.StringIO(out))
    assert len(pred) == 5 and set(pred["predicted"]) <= {0, 3, 5, 9}
    code, _, err = run(capsys, "predict", model, idx_pair["alllayers"])
    assert_one_line_error(code, err, "payload-only (L7) images", "AllLayers")
