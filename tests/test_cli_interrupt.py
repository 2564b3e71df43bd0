"""Ctrl-C during training: exit status 130, nothing saved.

skorch ends training quietly on ``KeyboardInterrupt``; the command line must
not save that half-trained model over a good one.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import os
import signal
import subprocess
import sys
import time

import pytest
from skorch.callbacks import Callback

from sklearn_flowspectrum import _cli
from tests.test_cli import FAST, idx_pair, run

_ = idx_pair  # a fixture
# One optimizer step per epoch on the 48 sessions (the network is big).
ONE_STEP = [*FAST, "--batch-size", "64"]


class _CtrlCAtEpoch(Callback):
    """Raise ``KeyboardInterrupt`` at the end of epoch ``epoch``, as Ctrl-C."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture
def ctrl_c_at_epoch_2(monkeypatch):
    make_pipeline = _cli._make_pipeline

    def with_ctrl_c(args, input_kind):
        pipe = make_pipeline(args, input_kind)
        pipe.named_steps["embedder"].set_params(
            callbacks=[("ctrl_c", _CtrlCAtEpoch(2))]
        )
        return pipe

    monkeypatch.setattr(_cli, "_make_pipeline", with_ctrl_c)


def test_ctrl_c_in_fit_exits_130_and_keeps_the_model(
    capsys, tmp_path, idx_pair, ctrl_c_at_epoch_2
):
    model = tmp_path / "model.joblib"
    model.write_bytes(b"a good model")
    argv = ["fit", idx_pair["alllayers"], "-o", model, *ONE_STEP, "--epochs", "5"]
    code, _, err = run(capsys, *argv)
    assert code == 130, err
    assert err.strip().splitlines()[-1] == (
        "flowspectrum fit: interrupted (training stopped after 2 of 5 epochs; "
        "no model was saved)"
    )
    assert "saved the model" not in err and "Traceback" not in err
    assert model.read_bytes() == b"a good model"
    assert os.listdir(tmp_path) == ["model.joblib"]


def test_ctrl_c_in_demo_exits_130_and_writes_nothing(
    capsys, tmp_path, ctrl_c_at_epoch_2
):
    out = tmp_path / "demo"
    model = tmp_path / "demo.joblib"
    argv = ["demo", "--n-per-class", "6", "--no-plots", "--out", out]
    code, stdout, err = run(
        capsys, *argv, "--save-model", model, *ONE_STEP, "--epochs", "3"
    )
    assert code == 130, err
    assert "training stopped after 2 of 3 epochs" in err
    assert "accuracy" not in stdout
    assert not model.exists() and not (out / "results.txt").exists()


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_sigint_during_fit(tmp_path, idx_pair):
    model = tmp_path / "model.joblib"
    model.write_bytes(b"a good model")
    argv = ["fit", idx_pair["alllayers"], "-o", model, *ONE_STEP, "--epochs", "100000"]
    process = subprocess.Popen(
        [sys.executable, "-m", "sklearn_flowspectrum", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = []
        deadline = time.monotonic() + 120
        # skorch's epoch table: training is under way.
        while not any("train_loss" in line for line in lines):
            line = process.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(lines) + rest
    assert process.returncode == 130, output
    assert "flowspectrum fit: interrupted (training stopped after" in output
    assert model.read_bytes() == b"a good model"
    assert os.listdir(tmp_path) == ["model.joblib"]
