"""The model format without pickle: save_model / load_model and the CLI.

Round trips predict exactly as the model in memory; loading refuses, with an
error naming the file, a class off the allow-list, a changed or missing
member, and a pickle hidden in a member, without running it.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import hashlib
import io
import json
import pickle
import warnings
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.pipeline import Pipeline

import sklearn_flowspectrum
from sklearn_flowspectrum import (
    AMAEModule,
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
    load_model,
    save_model,
)
from sklearn_flowspectrum._model_file import load_model_file
from sklearn_flowspectrum._model_format import (
    DOCUMENT,
    FORMAT_VERSION,
    PARAMETER_CLASSES,
    is_model_format_file,
)
from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample
from tests.test_cli import FAST, assert_one_line_error, idx_pair, run

_ = idx_pair  # a fixture
SMALL_NET = {"module__channels": (8, 4), "module__mapper_hidden": (8,)}


def _embedder(**params):
    return AMAESpectrumEmbedder(
        max_epochs=2, batch_size=16, random_state=0, device="cpu", **SMALL_NET
    ).set_params(**params)


@pytest.fixture(scope="module")
def data():
    X, y = load_iscx_vpn2016_sample(return_X_y=True)
    keep = np.concatenate([np.flatnonzero(y == c)[:10] for c in (0, 3, 5)])
    # Object labels (as pandas gives them): stored item by item, not pickled.
    names = np.array(["chat", "email", "file"], dtype=object)
    return X[keep], names[np.searchsorted([0, 3, 5], y[keep])]


@pytest.fixture(scope="module")
def pipe(data):
    X, y = data
    return Pipeline(
        [
            ("vectorizer", PcapSessionVectorizer()),
            ("embedder", _embedder()),
            ("classifier", FlowSpectrumClassifier(unknown_threshold="auto")),
        ]
    ).fit(X, y)


@pytest.fixture(scope="module")
def saved(pipe, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "model.fsm"
    save_model(pipe, path)
    return path


def _outputs(model, X):
    return (
        model.predict(X),
        model.predict_proba(X),
        model[:-1].transform(X),
        model[-1].unknown_score(model[:-1].transform(X)),
    )


def _assert_same_predictions(a, b, X):
    for left, right in zip(_outputs(a, X), _outputs(b, X)):
        np.testing.assert_array_equal(left, right)
        assert left.dtype == right.dtype


def _plain_params(est):
    return {
        k: v
        for k, v in est.get_params().items()
        if not hasattr(v, "get_params") and k != "steps"
    }


def _rewrite(path, out, edit=None, members=None):
    """Copy model file ``path`` to ``out``, editing the document
    (``edit(document)``) and replacing or adding members (name -> bytes,
    None to drop one)."""
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(contents[DOCUMENT])
    if edit is not None:
        edit(document)
    contents[DOCUMENT] = json.dumps(document).encode()
    for name, data in (members or {}).items():
        if data is None:
            contents.pop(name)
        else:
            contents[name] = data
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return out


def _relist(document, name, data):
    document["blobs"][name] = {
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_round_trip_predicts_identically(pipe, saved, data):
    X, _ = data
    back = load_model(saved)
    assert [type(s) for _, s in back.steps] == [type(s) for _, s in pipe.steps]
    _assert_same_predictions(pipe, back, X)
    emb, emb_back = pipe.named_steps["embedder"], back.named_steps["embedder"]
    np.testing.assert_array_equal(
        emb.attention_maps(X[:5]), emb_back.attention_maps(X[:5])
    )
    # Parameters and fitted attributes as they were.
    for step, step_back in zip(pipe, back):
        assert _plain_params(step_back) == _plain_params(step)
        for name, value in vars(step).items():
            if name.endswith("_") and not name.startswith("_"):
                if name in ("history_",):
                    assert list(step_back.history_) == list(value)
                elif isinstance(value, np.ndarray):
                    np.testing.assert_array_equal(getattr(step_back, name), value)
                    assert getattr(step_back, name).dtype == value.dtype
                elif not hasattr(value, "state_dict") and name not in (
                    "callbacks_",
                    "virtual_params_",
                    "spectral_lines_",
                    "line_weights_",
                ):
                    assert getattr(step_back, name) == value, name
    clf, clf_back = pipe[-1], back[-1]
    for a, b in zip(clf.spectral_lines_, clf_back.spectral_lines_):
        np.testing.assert_array_equal(a, b)
    assert clf_back.classes_.dtype == object
    # No optimizer state: a fresh optimizer, ready for partial_fit.
    assert len(emb_back.optimizer_.state) == 0
    emb_back.partial_fit(pipe[:1].transform(X), data[1])
    assert len(emb_back.optimizer_.state) > 0


def test_file_holds_json_npy_and_safetensors(saved):
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
        document = json.loads(archive.read(DOCUMENT))
    assert names[0] == DOCUMENT
    assert sum(n.endswith(".safetensors") for n in names) == 1
    assert set(names) - {DOCUMENT} == set(document["blobs"])
    assert all(n.endswith((".npy", ".safetensors")) for n in document["blobs"])
    assert document["format_version"] == FORMAT_VERSION
    versions = document["versions"]
    assert versions["sklearn_flowspectrum"] == sklearn_flowspectrum.__version__
    assert {"numpy", "scikit-learn", "torch", "skorch", "safetensors"} <= set(versions)
    steps = document["model"]["params"]["steps"]
    assert [s["items"][1]["class"] for s in steps] == [
        "sklearn_flowspectrum.PcapSessionVectorizer",
        "sklearn_flowspectrum.AMAESpectrumEmbedder",
        "sklearn_flowspectrum.FlowSpectrumClassifier",
    ]
    embedder = steps[1]["items"][1]
    assert embedder["params"]["module"] == {
        "type": "class",
        "name": "sklearn_flowspectrum.AMAE1dModule",
    }
    assert "optimizer_" not in embedder["fitted"]
    assert is_model_format_file(saved)


def test_same_model_same_bytes(pipe, saved, tmp_path):
    again = tmp_path / "again.fsm"
    save_model(pipe, again)
    assert again.read_bytes() == saved.read_bytes()


@pytest.mark.parametrize(
    "embedder",
    [
        pytest.param(lambda: _embedder(module=AMAEModule), id="paper-module"),
        pytest.param(lambda: _embedder(class_order="labels"), id="label-order"),
        pytest.param(lambda: _embedder(attention=False), id="no-attention"),
        pytest.param(
            lambda: _embedder(precision="bf16", module__head="linear"), id="bf16"
        ),
    ],
)
def test_round_trip_of_other_networks(data, embedder, tmp_path):
    X, y = data
    model = Pipeline(
        [
            ("embedder", embedder()),
            ("classifier", FlowSpectrumClassifier(bandwidth="scott")),
        ]
    ).fit(X, y)
    save_model(model, tmp_path / "m.fsm")
    back = load_model(tmp_path / "m.fsm")
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(back[0].transform(X), model[0].transform(X))
    assert back[0].get_params()["module"] is model[0].get_params()["module"]


def test_unsupervised_embedder_alone(data, tmp_path):
    X, _ = data
    emb = _embedder().fit(X)  # the spectrum is a projection of the code
    save_model(emb, tmp_path / "emb.fsm")
    back = load_model(tmp_path / "emb.fsm")
    assert not hasattr(back, "classes_")
    np.testing.assert_array_equal(back.transform(X), emb.transform(X))


def test_unfitted_estimators_and_metadata(tmp_path):
    pipe = Pipeline(
        [("embedder", _embedder(lr=1e-3)), ("classifier", FlowSpectrumClassifier())]
    )
    metadata = {"n_bytes": 784, "classes": ["a", "b"], "vec": PcapSessionVectorizer()}
    save_model(pipe, tmp_path / "u.fsm", metadata=metadata)
    back, meta = load_model(tmp_path / "u.fsm", return_metadata=True)
    assert _plain_params(back) == _plain_params(pipe)
    assert not getattr(back[0], "initialized_", False)
    assert meta["classes"] == ["a", "b"] and meta["n_bytes"] == 784
    assert meta["vec"].get_params() == PcapSessionVectorizer().get_params()
    assert load_model(tmp_path / "u.fsm", return_metadata=False).steps[0][0] == (
        "embedder"
    )


def test_loading_leaves_the_global_torch_rng_alone(saved):
    state = torch.random.get_rng_state()
    load_model(saved)
    assert torch.equal(torch.random.get_rng_state(), state)


# ---------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize(
    "where, name",
    [
        ("estimator", "os.system"),
        ("estimator", "sklearn.ensemble.RandomForestClassifier"),
        ("parameter", "builtins.eval"),
        ("parameter", "sklearn_flowspectrum.AMAESpectrumEmbedder"),
    ],
)
def test_refuses_a_class_off_the_allow_list(saved, tmp_path, where, name):
    def edit(document):
        embedder = document["model"]["params"]["steps"][1]["items"][1]
        if where == "estimator":
            embedder["class"] = name
        else:
            embedder["params"]["module"]["name"] = name

    bad = _rewrite(saved, tmp_path / "bad.fsm", edit)
    with pytest.raises(ValueError, match=name) as info:
        load_model(bad)
    assert str(bad) in str(info.value)
    assert "may not name" in str(info.value)


def test_refuses_a_tampered_member(saved, tmp_path):
    with zipfile.ZipFile(saved) as archive:
        weights = next(n for n in archive.namelist() if n.endswith(".safetensors"))
        data = bytearray(archive.read(weights))
    data[-1] ^= 1  # one bit of one weight
    bad = _rewrite(saved, tmp_path / "bad.fsm", members={weights: bytes(data)})
    with pytest.raises(ValueError, match=f"checksum mismatch for {weights}") as info:
        load_model(bad)
    assert str(bad) in str(info.value)


def test_refuses_a_tampered_checksum(saved, tmp_path):
    def edit(document):
        name = sorted(document["blobs"])[0]
        document["blobs"][name]["sha256"] = "0" * 64

    bad = _rewrite(saved, tmp_path / "bad.fsm", edit)
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_model(bad)


def test_refuses_missing_and_extra_members(saved, tmp_path):
    with zipfile.ZipFile(saved) as archive:
        an_array = next(n for n in archive.namelist() if n.endswith(".npy"))
    missing = _rewrite(saved, tmp_path / "missing.fsm", members={an_array: None})
    with pytest.raises(ValueError, match="listed but missing.*" + an_array):
        load_model(missing)
    extra = _rewrite(saved, tmp_path / "extra.fsm", members={"run.py": b"print(1)"})
    with pytest.raises(ValueError, match="not listed.*run.py"):
        load_model(extra)

    def list_unused(document):
        _relist(document, "arrays/9999.npy", b"x")

    unused = _rewrite(
        saved, tmp_path / "unused.fsm", list_unused, {"arrays/9999.npy": b"x"}
    )
    with pytest.raises(ValueError, match="no part of the model uses.*9999"):
        load_model(unused)


def test_refuses_files_that_are_no_model(tmp_path, saved):
    junk = tmp_path / "junk.fsm"
    junk.write_bytes(b"PK\x03\x04 but no zip")
    with pytest.raises(ValueError, match="junk.fsm: not a model file"):
        load_model(junk)

    def newer(document):
        document["format_version"] = FORMAT_VERSION + 1

    with pytest.raises(ValueError, match="upgrade to read it"):
        load_model(_rewrite(saved, tmp_path / "newer.fsm", newer))


class _WritesMarker:
    """Unpickling this runs ``exec``, which creates ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


def test_a_pickle_in_a_member_is_not_run(saved, tmp_path):
    marker = tmp_path / "payload-ran"
    payload = np.empty(1, dtype=object)
    payload[0] = _WritesMarker(marker)
    buffer = io.BytesIO()
    np.save(buffer, payload, allow_pickle=True)  # an object array: a pickle
    data = buffer.getvalue()
    with zipfile.ZipFile(saved) as archive:
        an_array = next(n for n in archive.namelist() if n.endswith(".npy"))

    def relist(document):
        _relist(document, an_array, data)  # checksums that match the payload

    bad = _rewrite(saved, tmp_path / "bad.fsm", relist, {an_array: data})
    with pytest.raises(ValueError, match=f"{an_array} is no plain .npy array"):
        load_model(bad)
    assert not marker.exists()
    # The payload is live: unpickling the member runs it.
    np.load(io.BytesIO(data), allow_pickle=True)
    assert marker.exists()


def test_refuses_weights_that_do_not_fit(saved, tmp_path, data):
    X, y = data
    other = _embedder(module__channels=(4, 2)).fit(X, y)
    save_model(other, tmp_path / "other.fsm")
    with zipfile.ZipFile(tmp_path / "other.fsm") as archive:
        weights = archive.read("weights/0000.safetensors")
    with zipfile.ZipFile(saved) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".safetensors"))

    def relist(document):
        _relist(document, name, weights)

    bad = _rewrite(saved, tmp_path / "bad.fsm", relist, {name: weights})
    with pytest.raises(ValueError, match=f"{name}: module.* needs"):
        load_model(bad)


# ---------------------------------------------------------------------------
# saving what a file cannot hold


def test_save_names_what_it_cannot_hold(data, tmp_path):
    X, y = data
    from skorch.callbacks import EarlyStopping

    emb = _embedder(callbacks=[("stop", EarlyStopping())])
    with pytest.raises(TypeError, match="parameter 'callbacks'.*EarlyStopping"):
        save_model(emb, tmp_path / "x.fsm")
    clf = FlowSpectrumClassifier().fit(np.arange(6.0)[:, None], [0, 0, 0, 1, 1, 1])
    clf.notes_ = object()
    with pytest.raises(TypeError, match="attribute 'notes_'"):
        save_model(clf, tmp_path / "x.fsm")
    with pytest.raises(TypeError, match="class .*RandomForest.* not one"):
        from sklearn.ensemble import RandomForestClassifier

        save_model(_embedder(module=RandomForestClassifier), tmp_path / "x.fsm")
    with pytest.raises(TypeError, match="memory"):
        save_model(Pipeline([("c", clf)], memory=str(tmp_path)), tmp_path / "x.fsm")
    with pytest.raises(TypeError, match="cannot save a dict"):
        save_model({"model": clf}, tmp_path / "x.fsm")
    assert list(tmp_path.iterdir()) == []  # nothing written


# ---------------------------------------------------------------------------
# GPU-trained models on a CPU-only machine


def test_weights_leave_in_cpu_contiguous_layout(data, tmp_path):
    # On CUDA the network runs channels_last: its conv weights are not
    # contiguous, which safetensors refuses; the file holds plain CPU tensors.
    # (The 2-D network: channels_last leaves 1-D convolutions as they are.)
    X, y = data
    emb = _embedder(module=AMAEModule).fit(X, y)
    before = emb.transform(X)
    emb.module_.to(memory_format=torch.channels_last)
    assert not emb.module_.encoder[0].weight.is_contiguous()
    save_model(emb, tmp_path / "e.fsm")
    back = load_model(tmp_path / "e.fsm")
    assert all(p.device.type == "cpu" for p in back.module_.parameters())
    np.testing.assert_array_equal(back.transform(X), before)


def test_model_saved_for_cuda_runs_on_cpu(data, tmp_path):
    X, y = data
    emb = _embedder().fit(X, y)
    save_model(emb, tmp_path / "e.fsm")

    def on_cuda(document):
        document["model"]["params"]["device"] = "cuda"
        document["model"]["fitted"]["device_"] = "cuda"

    cuda = _rewrite(tmp_path / "e.fsm", tmp_path / "cuda.fsm", on_cuda)
    with mock.patch("torch.cuda.is_available", return_value=False):
        with pytest.warns(UserWarning, match="CUDA is not available here"):
            back = load_model(cuda)
        assert back.device == "cpu" and back.device_ == "cpu"
        assert next(back.module_.parameters()).device.type == "cpu"
        np.testing.assert_array_equal(back.transform(X), emb.transform(X))


CUDA_PICKLE = Path(__file__).parent / "data" / "embedder_cuda.pkl"


@pytest.mark.skipif(not CUDA_PICKLE.exists(), reason="no committed CUDA pickle")
def test_cuda_trained_embedder_in_the_model_format(tmp_path):
    # An embedder trained on a GPU (committed as a pickle, with its spectra
    # computed there), saved in the model format and loaded on the CPU.
    with mock.patch("torch.cuda.is_available", return_value=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = load_model_file(CUDA_PICKLE)
        emb = payload["embedder"]
        # An earlier version built it, with other network defaults: the file
        # would not load, so saving refuses it until they are pinned.
        with pytest.raises(TypeError, match="not the one its parameters build"):
            save_model(emb, tmp_path / "cuda.fsm")
        # (set_params would build a new network: write the parameters only)
        vars(emb).update(module__byte_embedding=0, module__mapper="mlp")
        save_model(emb, tmp_path / "cuda.fsm")
        back = load_model(tmp_path / "cuda.fsm")
        Z = back.transform(payload["X"])
    np.testing.assert_allclose(Z, payload["spectrum"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(Z, payload["embedder"].transform(payload["X"]))


# ---------------------------------------------------------------------------
# the command line


@pytest.fixture(scope="module")
def cli_model(idx_pair, tmp_path_factory):
    model = tmp_path_factory.mktemp("cli") / "model.fsm"
    assert main_quiet("fit", idx_pair["alllayers"], "-o", model, *FAST) == 0
    return model


def main_quiet(*argv):
    from sklearn_flowspectrum._cli import main

    return main(["-q", *map(str, argv)])


def test_cli_fit_writes_the_model_format_and_predict_reads_it(
    cli_model, idx_pair, capsys
):
    assert is_model_format_file(cli_model)
    bundle_model, metadata = load_model(cli_model, return_metadata=True)
    assert metadata["input"] == "sessions" and metadata["n_bytes"] == 784
    assert metadata["classes"] == [0, 3, 5, 9]
    code, out, err = run(capsys, "predict", cli_model, idx_pair["alllayers"])
    assert code == 0, err
    assert "trusted" not in err and "warning" not in err
    assert out.count("\n") == 49
    code, out2, _ = run(capsys, "evaluate", cli_model, idx_pair["alllayers"])
    assert code == 0 and "per-session accuracy" in out2


def test_cli_predict_warns_before_loading_a_pickle(
    cli_model, idx_pair, tmp_path, capsys
):
    from sklearn_flowspectrum._cli import _Console, _load_model
    from sklearn_flowspectrum._model_file import dump_model_file

    bundle = _load_model(cli_model, _Console(quiet=True))
    pickled = tmp_path / "model.joblib"
    dump_model_file(bundle, pickled)
    _, expected, _ = run(capsys, "predict", cli_model, idx_pair["alllayers"])
    code, out, err = run(capsys, "predict", pickled, idx_pair["alllayers"])
    assert code == 0
    assert out == expected
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "trusted files only" in warning[0]
    assert str(pickled) in warning[0]


def test_cli_refuses_a_tampered_model_in_one_line(
    cli_model, idx_pair, tmp_path, capsys
):
    def edit(document):
        document["model"]["params"]["steps"][0]["items"][1]["class"] = "os.system"

    bad = _rewrite(cli_model, tmp_path / "bad.fsm", edit)
    code, out, err = run(capsys, "predict", bad, idx_pair["alllayers"])
    assert_one_line_error(code, err, str(bad), "os.system", "may not name")
    assert out == ""


def test_cli_default_loading_runs_no_pickle_payload(
    cli_model, idx_pair, tmp_path, capsys
):
    # A payload in a member of a model-format file: refused, never run.
    marker = tmp_path / "payload-ran"
    data = pickle.dumps(_WritesMarker(marker))
    with zipfile.ZipFile(cli_model) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".safetensors"))

    def relist(document):
        _relist(document, name, data)

    bad = _rewrite(cli_model, tmp_path / "bad.fsm", relist, {name: data})
    code, _, err = run(capsys, "predict", bad, idx_pair["alllayers"])
    assert_one_line_error(code, err, str(bad), "no safetensors file")
    assert not marker.exists()


def test_cli_warns_when_a_pickle_suffix_gets_the_model_format(
    idx_pair, tmp_path, capsys
):
    model = tmp_path / "m.joblib"
    code, _, err = run(capsys, "fit", idx_pair["alllayers"], "-o", model, *FAST)
    assert code == 0
    assert "joblib.load cannot read" in " ".join(err.split())
    assert is_model_format_file(model)


def test_parameter_classes_resolve():
    from sklearn_flowspectrum._model_format import _resolve

    for name in PARAMETER_CLASSES:
        assert isinstance(_resolve(PARAMETER_CLASSES, name), type), name


def test_clone_of_a_loaded_model_refits(saved, data):
    X, y = data
    fresh = clone(load_model(saved)).fit(X, y)
    assert fresh.predict(X).shape == (len(X),)


def test_values_keep_their_types(tmp_path):
    metadata = {
        "tuple": (1, 2.5, float("nan"), float("-inf")),
        "dict": {1: "x", "k": None, (1, 2): [True]},
        "frozenset": frozenset({"p", "q"}),
        "set": {3, 4},
        "float32": np.float32(1.5),
        "bool_": np.bool_(True),
        "complex": np.complex128(1 - 2j),
        "ints": np.arange(3, dtype=np.int16),
        "objects": np.array(["a", 1, None], dtype=object),
        "bytes": np.array([b"ab", b"c"]),
        "dates": np.array(["2024-01-01"], dtype="datetime64[D]"),
    }
    clf = FlowSpectrumClassifier()
    save_model(clf, tmp_path / "v.fsm", metadata=metadata)
    _, back = load_model(tmp_path / "v.fsm", return_metadata=True)
    assert back.keys() == metadata.keys()
    for key, value in metadata.items():
        got = back[key]
        assert type(got) is type(value), key
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got, value)
            assert got.dtype == value.dtype
        elif key == "tuple":
            assert got[:2] == value[:2] and np.isnan(got[2]) and got[3] == -np.inf
        else:
            assert got == value and getattr(got, "dtype", None) == getattr(
                value, "dtype", None
            ), key


def test_refuses_a_document_whose_model_is_no_estimator(saved, tmp_path):
    def edit(document):
        document["model"] = [1, 2]

    with pytest.raises(ValueError, match="the model is no estimator"):
        load_model(_rewrite(saved, tmp_path / "bad.fsm", edit))


def test_refuses_a_pipeline_with_a_cache_folder(saved, tmp_path):
    def edit(document):
        document["model"]["params"]["memory"] = str(tmp_path)

    with pytest.raises(ValueError, match="memory"):
        load_model(_rewrite(saved, tmp_path / "bad.fsm", edit))
