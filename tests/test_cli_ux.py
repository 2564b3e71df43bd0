"""Command line: held-out split by file and class, argument and output checks
before any reading, stdout/stderr streams and warnings, ``predict`` columns and
``evaluate`` (in-process, tiny data, 1-2 epochs on the CPU)."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import io
import os
import shutil
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from sklearn_flowspectrum import _cli, read_idx
from sklearn_flowspectrum._cli import _Console, _load_model, _save_model
from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample
from tests.test_cli import (
    DAZN,
    FAST,
    H323,
    MGCP,
    OICQ,
    THREEMA,
    assert_one_line_error,
    idx_model,
    idx_pair,
    run,
)

_ = idx_pair, idx_model  # fixtures


def _bundle(model):
    """The bundle of a model file, as the commands read it."""
    return _load_model(model, _Console(quiet=True))


def _class_folders(root, single=True):
    """root/{chat: 2 captures, voip: 2 captures[, streaming: 1 capture]}."""
    classes = {"chat": [OICQ, THREEMA], "voip": [H323, MGCP]}
    if single:
        classes["streaming"] = [DAZN]
    for label, srcs in classes.items():
        (root / label).mkdir(parents=True)
        for src in srcs:
            shutil.copy(src, root / label)
    return root


# ---------------------------------------------------------------------------
# fit --test-size: whole captures, class by class


def _synthetic_sessions(rng):
    """Files and labels of sessions: class a in 12 captures of very different
    sizes, b in 3, c in one."""
    files, labels = [], []
    for cls, sizes in (("a", rng.integers(1, 60, 12)), ("b", [5, 40, 9]), ("c", [30])):
        for i, n in enumerate(sizes):
            files += [f"{cls}/{i}.pcap"] * int(n)
            labels += [cls] * int(n)
    return np.array(files), np.array(labels)


@pytest.mark.parametrize("test_size", [0.2, 0.3])
def test_split_holds_out_captures_of_every_class(test_size):
    files, labels = _synthetic_sessions(np.random.default_rng(1))
    shares, splits = [], set()
    for seed in range(30):
        test, single = _cli._split_files(files, labels, test_size, seed)
        assert single == {"c": "c/0.pcap"}
        assert not test[labels == "c"].any()  # one capture: training only
        for cls in ("a", "b"):
            held = np.unique(files[(labels == cls) & test])
            kept = np.unique(files[(labels == cls) & ~test])
            assert len(held) >= 1 and len(kept) >= 1
            assert not set(held) & set(kept)  # whole captures on one side
        in_a = labels == "a"
        shares.append(test[in_a].mean())
        splits.add(tuple(np.unique(files[test])))
    # Class a has 12 captures: its held-out share is close to test_size for
    # every seed (GroupShuffleSplit's ranged from 3% to 48% for 0.2).
    assert max(abs(s - test_size) for s in shares) < 0.05, shares
    assert len(splits) > 1  # the seed changes the split


def test_fit_test_size_warns_about_a_single_capture_class(capsys, tmp_path):
    root = _class_folders(tmp_path / "train")
    model = tmp_path / "m.joblib"
    argv = ["fit", root, "-o", model, "--test-size", "0.3", *FAST]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    warning = (
        "flowspectrum fit: warning: --test-size: class streaming has one "
        f"capture file ({root / 'streaming' / os.path.basename(DAZN)}); it is "
        "used for training only, so no held-out session is of this class"
    )
    assert err.count(warning) == 1, err
    # Two captures held out (one of chat, one of voip), never the one of
    # streaming: its class is in training but not in the held-out report.
    assert "2 of 5 capture files held out whole, by class" in out
    lines = out.splitlines()
    header = lines.index("per class (per session):")
    table = [line.split() for line in lines[header + 1 :]]
    assert table[0] == ["class", "precision", "recall", "f1", "sessions"]
    assert [row[0] for row in table[1:]] == ["chat", "voip", "macro"]
    accuracy = float(lines[0].split(": ")[1].split("%")[0]) / 100
    support = {row[0]: int(row[4]) for row in table[1:3]}
    recall = {row[0]: float(row[2]) for row in table[1:3]}
    # per-session accuracy = support-weighted recall of the held-out classes
    weighted = sum(recall[c] * support[c] for c in support) / sum(support.values())
    assert abs(weighted - accuracy) < 0.005 + 1e-9
    assert "streaming" in _bundle(model)["classes"]


# ---------------------------------------------------------------------------
# --device


def test_device_gpu_is_a_usage_error(capsys, tmp_path):
    code, _, err = run(
        capsys, "fit", tmp_path / "none", "-o", tmp_path / "m.joblib", "--device", "gpu"
    )
    assert code == 2
    assert err.splitlines()[-1] == (
        "flowspectrum fit: error: argument --device: must be 'auto', 'cpu', "
        "'cuda' or 'cuda:N', got 'gpu'"
    )


@pytest.mark.parametrize("command", ["fit", "demo"])
def test_device_cuda_without_cuda_fails_before_reading(
    capsys, tmp_path, monkeypatch, idx_pair, command
):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if command == "fit":
        argv = ["fit", idx_pair["alllayers"], "-o", tmp_path / "m.joblib"]
    else:
        argv = ["demo", "--no-plots", "--out", tmp_path / "demo"]
    code, _, err = run(capsys, *argv, "--device", "cuda")
    assert_one_line_error(code, err, "--device cuda: no CUDA device is available")
    assert "read" not in err and os.listdir(tmp_path) == []


def test_device_cuda_index_beyond_the_devices(capsys, tmp_path, monkeypatch, idx_pair):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    argv = ["fit", idx_pair["alllayers"], "-o", tmp_path / "m.joblib"]
    code, _, err = run(capsys, *argv, "--device", "cuda:3")
    assert_one_line_error(code, err, "--device cuda:3: this machine has 1 CUDA")


# ---------------------------------------------------------------------------
# arguments and outputs, checked before reading or training


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--epochs", "0", "must be a positive integer, got '0'"),
        ("--epochs", "-1", "must be a positive integer, got '-1'"),
        ("--n-bytes", "0", "must be a positive integer, got '0'"),
        ("--batch-size", "0", "must be a positive integer, got '0'"),
        ("--bandwidth", "0", "must be a positive number, got '0'"),
        ("--mask", "foo", "unknown mask entry 'foo'"),
        ("--mask", "ports,foo", "unknown mask entry 'foo'"),
        ("--test-size", "1", "must be a share between 0 and 1"),
    ],
)
def test_bad_arguments_are_usage_errors(capsys, tmp_path, option, value, message):
    code, _, err = run(capsys, "fit", OICQ, "-o", tmp_path / "m.joblib", option, value)
    assert code == 2
    assert f"flowspectrum fit: error: argument {option}: {message}" in err
    assert "Traceback" not in err and os.listdir(tmp_path) == []


def test_missing_labels_file_fails_before_reading(capsys, tmp_path, idx_pair):
    for command in ("fit", "vectorize"):
        out = tmp_path / ("m.joblib" if command == "fit" else "x.npy")
        argv = [command, idx_pair["alllayers"], "-o", out, "--labels", "none.npy"]
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, "--labels none.npy: labels file not found")
        assert "read " not in err


@pytest.mark.parametrize("command", ["fit", "vectorize"])
def test_packets_layout_needs_a_slot(capsys, tmp_path, command):
    out = tmp_path / ("m.joblib" if command == "fit" else "x.npy")
    argv = [command, OICQ, "-o", out, "--layout", "packets", "--n-bytes", "100"]
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, "--n-bytes 100: --layout packets needs at least")
    assert "read " not in err and "packet_bytes" not in err


def test_keep_bytes_must_be_positive(capsys, tmp_path):
    code, _, err = run(
        capsys, "sessions", OICQ, "-o", tmp_path / "s.csv", "--keep-bytes", "0"
    )
    assert code == 2 and "argument --keep-bytes: must be a positive" in err


def _outputs_cases(tmp_path):
    root = _class_folders(tmp_path / "train", single=False)
    capture = root / "chat" / os.path.basename(OICQ)
    folder = tmp_path / "existing"
    folder.mkdir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file")
    model = tmp_path / "m.joblib"  # not there: outputs are checked first
    images = tmp_path / "x.npy"
    np.save(images, np.zeros((2, 784), np.uint8))
    return (
        root,
        capture,
        {
            "folder": (["fit", root, "-o", folder], "-o", "is a folder"),
            "under a file": (
                ["fit", root, "-o", a_file / "m.joblib"],
                "-o",
                "notes.txt is a file, not a folder",
            ),
            "input capture": (
                ["fit", root, "-o", capture],
                "-o",
                "is one of the inputs",
            ),
            "report not a table": (
                ["sessions", capture, "-o", tmp_path / "s.csv", "--report", capture],
                "--report",
                "output must end in .csv",
            ),
            "input images given by name": (
                ["vectorize", images, "-o", images],
                "-o",
                "is one of the inputs",
            ),
            "same output twice": (
                [
                    "sessions",
                    root,
                    "-o",
                    tmp_path / "s.csv",
                    "--report",
                    tmp_path / "s.csv",
                ],
                "--report",
                "--report and -o name the same file",
            ),
            "labels over images": (
                [
                    "vectorize",
                    root,
                    "-o",
                    tmp_path / "x.npy",
                    "--labels-output",
                    capture,
                ],
                "--labels-output",
                "is one of the inputs",
            ),
            "predict output not a table": (
                ["predict", model, root, "-o", tmp_path / "existing"],
                "-o",
                "output must end in .csv",
            ),
            "demo folder is a file": (
                ["demo", "--no-plots", "--out", a_file],
                "--out",
                "a file, not a folder",
            ),
            "evaluate figure": (
                ["evaluate", model, root, "--confusion", tmp_path / "cm.txt"],
                "--confusion",
                "a figure file ends in .png",
            ),
        },
    )


CASES = [
    "folder",
    "under a file",
    "input capture",
    "report not a table",
    "input images given by name",
    "same output twice",
    "labels over images",
    "predict output not a table",
    "demo folder is a file",
    "evaluate figure",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_outputs_fail_before_reading(capsys, tmp_path, case):
    root, capture, cases = _outputs_cases(tmp_path)
    argv, option, fragment = cases[case]
    before = capture.read_bytes()
    listing = sorted(os.listdir(tmp_path))
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, option, fragment)
    assert "read " not in err  # nothing was read
    assert capture.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing


def test_unwritable_output_folder(capsys, tmp_path, monkeypatch):
    root = _class_folders(tmp_path / "train", single=False)
    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access

    def no_writing_in_locked(path, mode, **kwargs):
        if os.path.realpath(path) == str(locked) and mode & os.W_OK:
            return False  # what a read-only folder answers (root may write anywhere)
        return access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", no_writing_in_locked)
    code, _, err = run(capsys, "fit", root, "-o", locked / "sub" / "m.joblib")
    assert_one_line_error(code, err, "-o", f"cannot write in the folder {locked}")
    assert "read " not in err


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user"
)
def test_read_only_folder(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = run(capsys, "sessions", OICQ, "-o", locked / "s.csv")
    finally:
        locked.chmod(0o755)
    assert_one_line_error(code, err, "cannot write in the folder")


# ---------------------------------------------------------------------------
# streams and warnings


def test_epoch_table_on_stderr_without_colours(capsys, tmp_path, idx_pair):
    model = tmp_path / "m.joblib"
    argv = ["fit", idx_pair["alllayers"], "-o", model, *FAST, "--epochs", "2"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert out == ""  # nothing but data on stdout
    assert "train_loss" in err and "\x1b[" not in err
    assert len([line for line in err.splitlines() if line.split()[:1] == ["2"]]) == 1
    # The model keeps skorch's own sink, which the model file may name.
    emb = _bundle(model)["pipeline"].named_steps["embedder"]
    assert dict(emb.callbacks_)["print_log"].sink is print
    code, out, err = run(capsys, "predict", model, idx_pair["alllayers"])
    assert code == 0, err


def test_quiet_prints_only_data_and_errors(capsys, tmp_path, idx_pair):
    model = tmp_path / "m.joblib"
    argv = ["-q", "fit", idx_pair["alllayers"], "-o", model, *FAST, "--epochs", "2"]
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (0, "", "")
    code, out, err = run(capsys, "predict", "-q", model, idx_pair["alllayers"])
    assert code == 0 and err == "" and len(pd.read_csv(io.StringIO(out))) == 48
    # -q with a class of one capture: no warning either
    root = _class_folders(tmp_path / "train")
    code, out, err = run(
        capsys, "-q", "fit", root, "-o", model, "--test-size", "0.3", *FAST
    )
    assert code == 0 and err == "" and "per-session accuracy" in out


def test_each_warning_once_in_the_cli_format(capsys):
    console = _cli._Console(command="fit")
    with console.capture_warnings():
        for _ in range(3):
            warnings.warn("some/file.pcap: something odd", UserWarning, stacklevel=1)
        warnings.warn("another\nwarning", RuntimeWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "flowspectrum fit: warning: some/file.pcap: something odd",
        "flowspectrum fit: warning: another warning",
    ]
    quiet = _cli._Console(quiet=True, command="fit")
    with quiet.capture_warnings():
        warnings.warn("hidden", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == ""


def test_capture_warning_names_the_file_once(capsys, tmp_path):
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(open(MGCP, "rb").read()[:-10])
    code, _, err = run(
        capsys, "sessions", cut, "-o", tmp_path / "s.csv", "--on-error", "warn"
    )
    assert code == 0, err
    warnings_ = [line for line in err.splitlines() if ": warning: " in line]
    assert len(warnings_) == 1, err
    assert warnings_[0].startswith(f"flowspectrum sessions: warning: {cut}: ")
    assert warnings_[0].count(str(cut)) == 1
    assert ".py:" not in err and "warnings.warn" not in err


def test_working_shows_progress_at_a_low_rate(capsys, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (3 * 2**20))
    with open(big, "rb") as f:
        f.read(2 * 2**20)
        position = _cli._bytes_read(big)
        if os.path.isdir("/proc/self/fdinfo"):
            assert position() == ": 2 of 3 MiB"
        console = _cli._Console(command="predict")
        with console.working("reading big.bin", position=position, every=0.05):
            time.sleep(0.3)
        with console.working("small", big=False, every=0.05):
            time.sleep(0.2)
        with _cli._Console(quiet=True).working("quiet", every=0.05):
            time.sleep(0.2)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("reading big.bin") for line in lines)
    assert len(lines) <= 7  # not a flood


# ---------------------------------------------------------------------------
# predict and evaluate


def test_predict_proba_columns(capsys, tmp_path, idx_pair, idx_model):
    code, out, err = run(capsys, "predict", idx_model, idx_pair["alllayers"], "--proba")
    assert code == 0, err
    pred = pd.read_csv(io.StringIO(out))
    proba = pred[[f"proba_{c}" for c in (0, 3, 5, 9)]].to_numpy()
    assert list(pred.columns[:5]) == [
        "row",
        "true_label",
        "predicted",
        "probability",
        "spectrum",
    ]
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert (np.array([0, 3, 5, 9])[proba.argmax(axis=1)] == pred["predicted"]).all()
    np.testing.assert_allclose(proba.max(axis=1), pred["probability"], atol=1e-6)


def test_predict_in_chunks_predicts_the_same(
    capsys, tmp_path, monkeypatch, idx_pair, idx_model
):
    code, whole, _ = run(capsys, "predict", idx_model, idx_pair["alllayers"])
    monkeypatch.setattr(_cli, "PREDICT_CHUNK", 7)
    code, chunked, err = run(capsys, "predict", idx_model, idx_pair["alllayers"])
    assert code == 0, err
    pd.testing.assert_frame_equal(
        pd.read_csv(io.StringIO(chunked)), pd.read_csv(io.StringIO(whole))
    )
    assert "classifying" not in err  # no bar when stderr is not a terminal


def test_predict_unknown_column_with_a_reject_option(
    capsys, tmp_path, idx_pair, idx_model
):
    bundle = _bundle(idx_model)
    bundle["pipeline"][-1].set_params(unknown_threshold=0.0)
    model = tmp_path / "open-set.fsm"
    _save_model(bundle, model, _Console(quiet=True))
    # Sessions the model was not trained on: off every known line.
    X, y = load_iscx_vpn2016_sample(representation="alllayers", return_X_y=True)
    new = tmp_path / "new.npy"
    np.save(new, X[[np.flatnonzero(y == c)[20] for c in (0, 3, 5, 9)]])
    code, out, err = run(capsys, "predict", model, new)
    assert code == 0, err
    pred = pd.read_csv(io.StringIO(out))
    assert list(pred.columns) == [
        "row",
        "predicted",
        "probability",
        "unknown",
        "unknown_score",
        "spectrum",
    ]
    assert pred["unknown"].sum() >= 2
    assert ((pred["predicted"] == -1) == pred["unknown"]).all()
    code, out, _ = run(capsys, "predict", idx_model, new)
    assert "unknown" not in pd.read_csv(io.StringIO(out)).columns


def test_evaluate_idx(capsys, tmp_path, idx_pair, idx_model):
    pytest.importorskip("matplotlib")
    confusion, scores = tmp_path / "cm" / "confusion.png", tmp_path / "scores.csv"
    argv = ["evaluate", idx_model, idx_pair["alllayers"], "--confusion", confusion]
    code, out, err = run(capsys, *argv, "-o", scores)
    assert code == 0, err
    assert "Traceback" not in err
    lines = out.splitlines()
    assert lines[0] == "Protocol"
    assert "  representation: AllLayers, 784-byte session images" in lines
    assert "  masking: safe" in lines
    assert any(line.startswith("  split: none, every given session") for line in lines)
    _, pred, _ = run(capsys, "predict", idx_model, idx_pair["alllayers"])
    pred = pd.read_csv(io.StringIO(pred))
    accuracy = (pred["predicted"] == pred["true_label"]).mean()
    assert f"per-session accuracy on 48 sessions: {accuracy:.1%}" in out
    assert "group-of-10 accuracy: " in out and "not a per-session accuracy" in out
    assert [line.split()[0] for line in lines[-5:]] == ["0", "3", "5", "9", "macro"]
    assert confusion.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frame = pd.read_csv(scores)
    row = frame[(frame["scope"] == "per-session") & (frame["metric"] == "accuracy")]
    assert row["value"].item() == pytest.approx(accuracy)
    assert set(frame["masking"]) == {"safe"}


def test_evaluate_class_folders(capsys, tmp_path):
    root = _class_folders(tmp_path / "train", single=False)
    model = tmp_path / "m.joblib"
    code, _, err = run(capsys, "-q", "fit", root, "-o", model, *FAST)
    assert code == 0, err
    other = _class_folders(tmp_path / "test")  # streaming: unknown to the model
    code, out, err = run(capsys, "evaluate", model, other)
    assert code == 0, err
    assert "classes the model was not trained on: streaming" in err
    assert "per-session accuracy on 49 sessions" in out
    table = out.split("per class (per session):")[1].split()
    assert table[table.index("streaming") + 2] == "0.000"  # recall of streaming
    code, _, err = run(capsys, "evaluate", model, OICQ, "--labels", "nope.csv")
    assert_one_line_error(code, err, "--labels nope.csv: labels file not found")


def test_evaluate_refuses_unlabelled_images_and_bad_models(
    capsys, tmp_path, idx_pair, idx_model
):
    images = tmp_path / "x.npy"
    np.save(images, read_idx(idx_pair["alllayers"]).reshape(48, -1))
    code, _, err = run(capsys, "evaluate", idx_model, images)
    assert_one_line_error(code, err, "x.npy: no labels file", "--labels FILE")
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"not a pickle")
    code, _, err = run(capsys, "evaluate", junk, idx_pair["alllayers"])
    assert_one_line_error(code, err, "not a model saved by 'flowspectrum fit'")


class _TouchesMarker:
    """Pickles as a call that creates a file: code run by unpickling."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


def test_evaluate_loads_models_restricted(capsys, tmp_path, idx_pair, idx_model):
    import pickle

    marker = tmp_path / "payload-ran"
    bundle = _bundle(idx_model)
    bundle["notes"] = _TouchesMarker(marker)
    evil = tmp_path / "evil.joblib"
    evil.write_bytes(pickle.dumps(bundle, protocol=5))
    code, out, err = run(capsys, "evaluate", evil, idx_pair["alllayers"])
    assert_one_line_error(code, err, str(evil), "builtins.exec", "trusted source")
    assert out == "" and not marker.exists()


def test_help_lists_evaluate_and_stays_tidy(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "evaluate" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    code, out, _ = run(capsys, "evaluate", "--help")
    assert code == 0 and "trusted source" in out and "--confusion" in out
    code, out, _ = run(capsys, "predict", "--help")
    assert "--proba" in out and "'predicted'" in out


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q", "-x"]))
