"""Pickle model files of the command line: restricted loading.

``flowspectrum fit`` writes the model format (tests/test_model_format.py);
``--save-optimizer`` writes a pickle with Adam's state.  ``flowspectrum
predict`` warns before loading a pickle and refuses one that names a global
no model is made of, also inside the pickle that skorch nests in the
embedder.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import importlib
import io
import os
import pickle
import warnings
from pathlib import Path
from unittest import mock

import joblib
import numpy as np
import pandas as pd
import pytest

from sklearn_flowspectrum import load_model, read_idx
from sklearn_flowspectrum._cli import _Console, _save_model, build_parser, main
from sklearn_flowspectrum._model_file import (
    ALLOWED_GLOBALS,
    RefusedGlobalError,
    dump_model_file,
    load_model_file,
)
from tests.test_cli import FAST, OICQ, assert_one_line_error, idx_pair, run

_ = idx_pair  # a fixture
# One optimizer step per epoch on the 48 sessions (the network is big).
ONE_STEP = [*FAST, "--batch-size", "64"]


class _WritesMarker:
    """Unpickling this runs ``exec``, which creates ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


@pytest.fixture(scope="module")
def models(idx_pair, tmp_path_factory):
    """The same paper-sized model saved the way ``fit`` saves by default (the
    model format) and by ``fit --save-optimizer`` (a pickle)."""
    folder = tmp_path_factory.mktemp("models")
    lean, full = folder / "lean.fsm", folder / "full.joblib"
    images = str(idx_pair["alllayers"])
    argv = ["-q", "fit", images, "-o", str(full), "--save-optimizer", *ONE_STEP]
    assert main(argv) == 0
    _save_model(load_model_file(full), lean, _Console(quiet=True))
    return lean, full


def test_fit_saves_no_optimizer_state_by_default():
    args = build_parser().parse_args(["fit", "captures/", "-o", "model.joblib"])
    assert args.save_optimizer is False


@pytest.fixture(scope="module")
def rows(idx_pair):
    return read_idx(idx_pair["alllayers"]).reshape(48, -1)


def _outputs(pipe, X):
    return pipe[:-1].transform(X), pipe.predict_proba(X)


def test_saved_model_has_no_optimizer_state(models, rows, capsys, idx_pair, tmp_path):
    lean, full = models
    # 27 MB against 81 MB for this network: Adam keeps two numbers per weight.
    assert os.path.getsize(lean) < 0.5 * os.path.getsize(full)
    # and no larger than a pickle of the network without the optimizer's state
    bundle = load_model_file(full)
    bundle["pipeline"].named_steps["embedder"].initialize_optimizer()
    dump_model_file(bundle, tmp_path / "lean.joblib")
    assert os.path.getsize(lean) <= os.path.getsize(tmp_path / "lean.joblib")
    lean_pipe = load_model(lean)
    full_pipe = load_model_file(full)["pipeline"]
    assert len(lean_pipe.named_steps["embedder"].optimizer_.state) == 0
    full_state = full_pipe.named_steps["embedder"].optimizer_.state
    assert full_state and all("exp_avg" in s for s in full_state.values())
    for a, b in zip(_outputs(lean_pipe, rows), _outputs(full_pipe, rows)):
        np.testing.assert_array_equal(a, b)
    outputs = [run(capsys, "predict", m, idx_pair["alllayers"]) for m in models]
    assert outputs[0][0] == 0 and outputs[0][1] == outputs[1][1]


def test_round_trip_predicts_like_the_model_in_memory(models, rows, tmp_path):
    bundle = load_model_file(models[1])
    before = _outputs(bundle["pipeline"], rows)
    path = tmp_path / "again.joblib"
    _save_model(bundle, path, _Console(quiet=True), optimizer_state=True)
    # the model in memory predicts as before, and so does the file
    for pipe in (bundle["pipeline"], load_model_file(path)["pipeline"]):
        for a, b in zip(_outputs(pipe, rows), before):
            np.testing.assert_array_equal(a, b)
    # joblib reads the file too (the documented Python way)
    assert joblib.load(path)["classes"] == bundle["classes"]


def test_ctrl_c_while_saving_keeps_the_existing_model(models, tmp_path, monkeypatch):
    bundle = load_model_file(models[1])
    path = tmp_path / "model.joblib"
    path.write_bytes(b"a good model")
    real_dump = pickle.dump

    def dump_then_ctrl_c(obj, f, protocol=None):
        real_dump(obj, f, protocol=protocol)
        if str(getattr(f, "name", "")).endswith("model.joblib"):
            f.truncate(f.tell() // 2)
            raise KeyboardInterrupt

    monkeypatch.setattr(pickle, "dump", dump_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        _save_model(bundle, path, _Console(quiet=True), optimizer_state=True)
    assert path.read_bytes() == b"a good model"
    assert os.listdir(tmp_path) == ["model.joblib"]
    # the same for the model format, interrupted while writing the weights
    from sklearn_flowspectrum import _model_format

    real_write = _model_format._write_member

    def write_then_ctrl_c(archive, name, data, method):
        real_write(archive, name, data[: len(data) // 2], method)
        if name.startswith("weights/"):
            raise KeyboardInterrupt

    monkeypatch.setattr(_model_format, "_write_member", write_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        _save_model(bundle, path, _Console(quiet=True))
    assert path.read_bytes() == b"a good model"
    assert os.listdir(tmp_path) == ["model.joblib"]


@pytest.mark.parametrize("where", ["bundle", "skorch's nested pickle"])
def test_predict_refuses_code_in_a_model(models, tmp_path, capsys, where, idx_pair):
    marker = tmp_path / "payload-ran"
    bundle = load_model_file(models[1])
    if where == "bundle":
        bundle["notes"] = _WritesMarker(marker)
    else:
        # skorch pickles module_ into bytes of its own and unpickles them
        # in __setstate__, out of reach of the outer unpickler's find_class.
        bundle["pipeline"].named_steps["embedder"].module_.notes = _WritesMarker(marker)
    evil = tmp_path / "evil.joblib"
    evil.write_bytes(pickle.dumps(bundle, protocol=5))
    del bundle
    for argv in (
        ("predict", evil, idx_pair["alllayers"]),
        ("predict", evil, OICQ, "-o", tmp_path / "p.csv"),
    ):
        code, out, err = run(capsys, *argv)
        assert_one_line_error(code, err, str(evil), "builtins.exec", "trusted source")
        # the warning comes before loading
        assert "trusted files only" in err.splitlines()[0]
        assert out == ""
        assert not marker.exists()
        assert not (tmp_path / "p.csv").exists()
    with pytest.raises(RefusedGlobalError, match="builtins.exec"):
        load_model_file(evil)
    assert not marker.exists()
    # The payload is live: an unrestricted load runs it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pickle.loads(evil.read_bytes())
    assert marker.exists()


def test_predict_refuses_old_joblib_models(models, tmp_path, capsys):
    old = tmp_path / "old.joblib"
    joblib.dump(load_model_file(models[1]), old)
    code, _, err = run(capsys, "predict", old, OICQ)
    assert_one_line_error(code, err, str(old), "joblib format", "flowspectrum fit")


def test_predict_writes_undecodable_capture_names_escaped(models, tmp_path, capsys):
    try:
        capture = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xff.pcap"))
        capture.write_bytes(Path(OICQ).read_bytes())
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    code, out, err = run(capsys, "predict", models[0], capture)
    assert code == 0, err
    files = pd.read_csv(io.StringIO(out))["file"]
    assert files.str.endswith("caf\\xff.pcap").all() and len(files) > 0


def test_predict_help_says_trusted_source(capsys):
    code, out, _ = run(capsys, "predict", "--help")
    assert code == 0
    assert "trusted source" in " ".join(out.split())


def test_allowlist_names_no_code_runner():
    for name in (
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("builtins", "getattr"),
        ("builtins", "setattr"),
        ("builtins", "__import__"),
        ("builtins", "compile"),
        ("builtins", "open"),
        ("os", "system"),
        ("posix", "system"),
        ("nt", "system"),
        ("subprocess", "Popen"),
        ("pickle", "loads"),
        ("joblib", "load"),
        ("torch", "load"),
        ("skorch", "NeuralNet"),  # its __setstate__ unpickles unvetted
        ("skorch.net", "NeuralNet"),
    ):
        assert name not in ALLOWED_GLOBALS, name
    numpy_2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
    numpy_core = "numpy._core" if numpy_2 else "numpy.core"
    for module, name in ALLOWED_GLOBALS:
        if module.startswith(("numpy.core", "numpy._core")):
            if not module.startswith(numpy_core + "."):
                continue
        assert hasattr(importlib.import_module(module), name), (module, name)


CUDA_PICKLE = Path(__file__).parent / "data" / "embedder_cuda.pkl"


@pytest.mark.skipif(not CUDA_PICKLE.exists(), reason="no committed CUDA pickle")
def test_cuda_trained_embedder_passes_the_allowlist():
    with mock.patch("torch.cuda.is_available", return_value=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = load_model_file(CUDA_PICKLE)
        emb = payload["embedder"]
        assert next(emb.module_.parameters()).device.type == "cpu"
        Z = emb.transform(payload["X"])
    np.testing.assert_allclose(Z, payload["spectrum"], rtol=1e-4, atol=1e-4)
