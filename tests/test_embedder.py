"""Tests of AMAESpectrumEmbedder (tiny data, one or two epochs)."""

import pickle
import warnings
from pathlib import Path
from unittest import mock

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from skorch.callbacks import Callback, Checkpoint, EarlyStopping
from skorch.dataset import ValidSplit

from sklearn_flowspectrum import AMAE1dModule, AMAEModule, AMAESpectrumEmbedder
from sklearn_flowspectrum._callbacks import WarmupCosine

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _threads():
    # Small nets on tiny data run fastest single-threaded on a shared CI box.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(48, 64), dtype=np.uint8)
    y = np.repeat(np.array(["chat", "email", "voip"]), 16)
    # Make the classes learnable: a class-specific byte value.
    X[:, 5] = np.repeat([10, 120, 250], 16)
    return X, y


def _emb(**kw):
    params = dict(max_epochs=1, batch_size=16, random_state=0)
    params.update(kw)
    return AMAESpectrumEmbedder(**params)


def test_transform_shape_dtype_and_classes(data):
    X, y = data
    emb = _emb().fit(X, y)
    Z = emb.transform(X)
    assert Z.shape == (48, 1)
    assert Z.dtype == np.float32
    assert np.all(np.isfinite(Z))
    assert list(emb.classes_) == ["chat", "email", "voip"]
    assert emb.n_features_in_ == 64 and emb.side_ == 8
    assert emb.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
    assert emb.class_logits(X).shape == (48, 3)


def test_uint8_and_scaled_float_agree(data):
    X, y = data
    emb = _emb().fit(X, y)
    Zu = emb.transform(X)
    Zf = emb.transform(X.astype(np.float32) / 255)
    np.testing.assert_allclose(Zu, Zf, rtol=1e-5, atol=1e-6)


def test_seeded_training_is_reproducible(data):
    X, y = data
    a = _emb(max_epochs=2).fit(X, y).transform(X)
    b = _emb(max_epochs=2).fit(X, y).transform(X)
    np.testing.assert_array_equal(a, b)
    # The global torch RNG is left as it was.
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    _emb().fit(X, y)
    assert torch.equal(torch.rand(1), expected)


@pytest.mark.parametrize("labelled", [True, False])
def test_seeded_cpu_fit_is_reproducible_for_a_fixed_thread_count(data, labelled):
    # What holds on a CPU: same seed, same data, same number of threads ->
    # the same spectra bit for bit (the test above: one thread).  Another
    # thread count may change the last bits (the class Notes, the user guide).
    X, y = data
    y = y if labelled else None
    torch.set_num_threads(2)  # the autouse fixture restores the count
    first = _emb(max_epochs=2, device="cpu").fit(X, y).transform(X)
    again = _emb(max_epochs=2, device="cpu").fit(X, y).transform(X)
    np.testing.assert_array_equal(first, again)
    assert not _emb(device="cpu").__sklearn_tags__().non_deterministic
    assert _emb(device="cuda").__sklearn_tags__().non_deterministic


def test_training_reduces_loss(data):
    X, y = data
    emb = _emb(max_epochs=6, lr=3e-3).fit(X, y)
    losses = emb.history_[:, "train_loss"]
    assert losses[-1] < losses[0]


def test_unsupervised_fit(data):
    X, _ = data
    emb = _emb().fit(X)
    assert not hasattr(emb, "classes_")
    Z = emb.transform(X)
    assert Z.shape == (48, 1)
    # The spectrum is the code's first principal axis scaled to unit
    # variance (on the fitted sessions).
    assert Z.std() == pytest.approx(1.0, rel=0.05)
    assert emb.attention_weights_.shape == (1, 64)
    with pytest.raises(AttributeError, match="without labels"):
        emb.class_logits(X)


def test_attention_weights_and_maps(data):
    X, y = data
    emb = _emb().fit(X, y)
    W = emb.attention_weights_
    assert W.shape == (3, 64)
    np.testing.assert_allclose(W.mean(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(W.std(axis=1), 1, rtol=1e-6)
    maps = emb.attention_maps(X)
    assert maps.shape == (48, 64)
    assert np.all(maps >= 0)
    # A softmax over the session's bytes: each map sums to one.
    np.testing.assert_allclose(maps.sum(axis=1), 1, rtol=1e-5)
    # attention_weights_ is the standardised class mean of these maps.
    mean = maps[y == "email"].mean(axis=0)
    np.testing.assert_allclose(W[1], (mean - mean.mean()) / mean.std(), atol=1e-3)


def test_non_square_n_bytes_is_padded(data):
    X, y = data
    emb = _emb().fit(X[:, :50], y)
    assert emb.side_ == 8
    assert emb.transform(X[:, :50]).shape == (48, 1)
    maps = emb.attention_maps(X[:, :50])
    assert maps.shape == (48, 50)
    assert np.all(maps.sum(axis=1) <= 1 + 1e-5)
    assert emb.reconstruct(X[:, :50]).shape == (48, 50)
    with pytest.raises(ValueError, match="features"):
        emb.transform(X)


def test_attention_false_baseline(data):
    X, y = data
    emb = _emb(attention=False).fit(X, y)
    assert emb.module_.fusion is None
    assert not hasattr(emb, "attention_weights_")
    assert emb.transform(X).shape == (48, 1)
    with pytest.raises(AttributeError, match="attention=False"):
        emb.attention_maps(X)


def test_reconstruct(data):
    X, y = data
    rec = _emb().fit(X, y).reconstruct(X)
    assert rec.shape == X.shape and rec.dtype == np.float32
    assert np.all((rec >= 0) & (rec <= 1))


def test_get_set_params_and_clone(data):
    X, y = data
    emb = _emb(module__mapper_hidden=(8,), criterion__aux_weight=0.0)
    params = emb.get_params()
    assert params["device"] == "auto"
    assert params["module__mapper_hidden"] == (8,)
    assert params["attention"] is True
    cloned = clone(emb)
    assert cloned.get_params()["module__mapper_hidden"] == (8,)
    cloned.set_params(module__mapper_hidden=(4, 2), attention=False, max_epochs=1)
    cloned.fit(X, y)
    assert cloned.module_.mapper[-2].out_features == 2
    assert cloned.module_.fusion is None
    assert emb.get_params()["module__mapper_hidden"] == (8,)
    # On a fitted net, module__ parameters re-build the module (skorch).
    cloned.set_params(module__mapper_hidden=(3,))
    assert cloned.module_.mapper[-2].out_features == 3


def test_invalid_parameters_raise(data):
    X, y = data
    with pytest.raises(ValueError, match="precision"):
        _emb(precision="fp8").fit(X, y)
    with pytest.raises(ValueError, match="batch_size"):
        _emb(batch_size=0).fit(X, y)
    with pytest.raises(ValueError, match="iterator_train__shuffle"):
        _emb(iterator_train_shuffle=True).fit(X, y)
    with pytest.raises(ValueError, match="5 labels"):
        _emb().fit(X, y[:5])


def _with_pcap_header(X):
    """``X`` with the pcap file header that starts an AllLayers row."""
    X = X.copy()
    X[:, :24] = np.frombuffer(
        bytes.fromhex("a1b2c3d40002000400000000000000000000ffff00000001"), np.uint8
    )
    return X


def test_refuses_another_kind_of_image_than_it_was_fitted_on(data):
    X, y = data  # random bytes: no pcap header, like L7 payload rows
    pcap = _with_pcap_header(X)
    emb = _emb().fit(X, y)
    assert emb.pcap_images_ is False
    with pytest.raises(ValueError, match="fitted on images without a pcap header"):
        emb.transform(pcap)
    with pytest.raises(ValueError, match="but X holds images that start with a pcap"):
        emb.partial_fit(pcap, y)
    on_pcap = _emb().fit(pcap, y)
    assert on_pcap.pcap_images_ is True
    with pytest.raises(ValueError, match="fitted on images that start with a pcap"):
        on_pcap.transform(X)
    # Scaled images (the vectorizer's float32 output) are told apart alike, and
    # a few rows of the other kind among many do not count.
    np.testing.assert_array_equal(
        on_pcap.transform(pcap / np.float32(255)), on_pcap.transform(pcap)
    )
    mixed = np.vstack([pcap[:40], X[:8]])
    assert on_pcap.transform(mixed).shape == (48, 1)


def test_pipeline_and_set_output(data):
    X, y = data
    pipe = make_pipeline(_emb(max_epochs=2), KNeighborsClassifier(3))
    pipe.fit(X, y)
    assert pipe.predict(X).shape == (48,)
    emb = _emb().set_output(transform="pandas")
    df = emb.fit_transform(X, y)
    assert list(df.columns) == ["spectrum0"]


def test_grid_search_over_module_parameter(data):
    X, y = data
    pipe = make_pipeline(_emb(), KNeighborsClassifier(3))
    gs = GridSearchCV(
        pipe, {"amaespectrumembedder__module__mapper_hidden": [(4,), (8,)]}, cv=2
    )
    gs.fit(X, y)
    assert gs.best_params_["amaespectrumembedder__module__mapper_hidden"] in [
        (4,),
        (8,),
    ]


def test_partial_fit_continues(data):
    X, y = data
    emb = _emb().fit(X, y)
    before = emb.module_.aux.weight.detach().clone()
    emb.partial_fit(X, y)
    assert len(emb.history_) == 2
    assert not torch.equal(before, emb.module_.aux.weight)
    with pytest.raises(ValueError, match="not seen in fit"):
        emb.partial_fit(X, np.repeat(["chat", "ftp", "voip"], 16))


def test_validation_split_early_stopping_checkpoint(data, tmp_path):
    X, y = data
    emb = _emb(
        max_epochs=30,
        train_split=ValidSplit(0.25, stratified=True, random_state=0),
        callbacks=[
            ("stop", EarlyStopping(patience=1, threshold=10.0)),
            ("ckpt", Checkpoint(dirname=str(tmp_path), monitor="valid_loss_best")),
        ],
    ).fit(X, y)
    assert "valid_loss" in emb.history_[-1]
    assert len(emb.history_) < 30
    assert (tmp_path / "params.pt").exists()


def test_verbose_prints_progress(data, capsys):
    X, y = data
    _emb(verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out


def test_bf16_precision_runs(data):
    X, y = data
    Z = _emb(precision="bf16").fit(X, y).transform(X)
    assert Z.dtype == np.float32 and np.all(np.isfinite(Z))


def test_lr_scaling_and_schedule(data):
    X, y = data
    emb = _emb(lr=1e-3, batch_size=1024, lr_scaling="linear").fit(X, y)
    assert emb.optimizer_.param_groups[0]["lr"] == pytest.approx(4e-3)
    emb = _emb(lr=1e-3, batch_size=1024, lr_scaling="sqrt").fit(X, y)
    assert emb.optimizer_.param_groups[0]["lr"] == pytest.approx(2e-3)
    emb = _emb(lr=1e-3, lr_schedule="constant").fit(X, y)
    assert emb.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_cosine_schedule_is_a_skorch_callback(data):
    X, y = data
    seen = []

    class Record(Callback):
        def on_batch_begin(self, net, training=False, **kwargs):
            if training:
                seen.append(net.optimizer_.param_groups[0]["lr"])

    # skorch runs the default callbacks first: Record sees each step's rate.
    emb = _emb(lr=1e-2, max_epochs=4, callbacks=[("record", Record())]).fit(X, y)
    schedule = dict(emb.callbacks_)["warmup_cosine"]
    assert isinstance(schedule, WarmupCosine)
    assert schedule.total_steps_ == 4 * 3  # 48 sessions, batch 16
    factors = [schedule.factor(t) for t in range(12)]
    assert seen == pytest.approx([1e-2 * f for f in factors])
    assert factors[0] < factors[1] == pytest.approx(1.0)  # one warm-up step
    assert factors[-1] < 0.05 and all(np.diff(factors[1:]) <= 0)
    # Training leaves the optimizer at its base rate for a later partial_fit.
    assert emb.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-2)
    constant = _emb(lr_schedule="constant").fit(X, y)
    assert "warmup_cosine" not in dict(constant.callbacks_)


def test_default_network_is_1d_and_the_papers_is_one_parameter_away(data):
    X, y = data
    emb = _emb().fit(X, y)
    assert type(emb.module_) is AMAE1dModule
    paper = _emb(module=AMAEModule).fit(X, y)
    assert type(paper.module_) is AMAEModule
    assert paper.transform(X).shape == (48, 1)


@pytest.mark.parametrize("class_order", ["confusion", "labels"])
def test_class_order_places_classes_on_the_line(data, class_order):
    X, y = data
    emb = _emb(max_epochs=20, lr=1e-2, class_order=class_order).fit(X, y)
    assert sorted(emb.line_order_) == sorted(emb.classes_)
    centres = emb.module_.head.centres.detach().numpy()
    # The centres keep their places; only which class sits where changes.
    np.testing.assert_allclose(np.sort(centres), [-1.0, 0.0, 1.0])
    if class_order == "labels":
        np.testing.assert_allclose(centres, [-1.0, 0.0, 1.0])
    # The spectrum follows the placement: each class's median is nearest to
    # its own centre, and line_order_ reads the line left to right.
    Z = emb.transform(X)[:, 0]
    medians = np.array([np.median(Z[y == c]) for c in emb.classes_])
    nearest = np.abs(medians[:, None] - centres[None, :]).argmin(1)
    np.testing.assert_array_equal(nearest, np.arange(3))
    np.testing.assert_array_equal(emb.line_order_, emb.classes_[np.argsort(medians)])
    with pytest.raises(ValueError, match="class_order"):
        _emb(class_order="alphabetical").fit(X, y)


def test_class_order_confusion_makes_confused_classes_neighbours():
    # Classes a and c share sessions; b stands apart.  In label order the
    # shared sessions would land on b's place; seriation puts a beside c.
    rng = np.random.default_rng(0)
    X = rng.integers(0, 30, size=(90, 64), dtype=np.uint8)
    y = np.repeat(np.array(["a", "b", "c"]), 30)
    X[y == "a", 5] = 100
    X[y == "c", 5] = 100
    X[y == "b", 5] = 250
    X[y == "a", 6] = rng.choice([0, 200], size=30)
    X[y == "c", 6] = rng.choice([0, 200], size=30, p=[0.8, 0.2])
    emb = _emb(max_epochs=15).fit(X, y)
    order = list(emb.line_order_)
    assert abs(order.index("a") - order.index("c")) == 1
    labels = _emb(max_epochs=15, class_order="labels").fit(X, y)
    centres = labels.module_.head.centres.detach().numpy()
    assert abs(centres[0] - centres[2]) == pytest.approx(2.0)


def test_memory_mapped_images_train_batch_by_batch(data, tmp_path):
    X, y = data
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    in_memory = _emb(max_epochs=2).fit(X, y)
    # Never the whole array as one tensor: _to_images is the whole-array copy.
    with mock.patch.object(
        AMAESpectrumEmbedder, "_to_images", side_effect=AssertionError("copied")
    ):
        emb = _emb(max_epochs=2).fit(mapped, y)
    np.testing.assert_array_equal(emb.transform(mapped), in_memory.transform(X))
    np.testing.assert_array_equal(emb.attention_weights_, in_memory.attention_weights_)
    split = _emb(max_epochs=2, train_split=ValidSplit(4)).fit(mapped, y)
    assert np.isfinite(split.history_[-1, "valid_loss"])


def test_transformer_has_no_predict():
    emb = AMAESpectrumEmbedder()
    assert not hasattr(emb, "predict")
    assert not hasattr(emb, "predict_proba")


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_persistence_round_trip(data, tmp_path, dump):
    X, y = data
    emb = _emb().fit(X, y)
    if dump == "pickle":
        loaded = pickle.loads(pickle.dumps(emb))
    else:
        joblib.dump(emb, tmp_path / "emb.joblib")
        loaded = joblib.load(tmp_path / "emb.joblib")
    np.testing.assert_array_equal(loaded.transform(X), emb.transform(X))
    np.testing.assert_array_equal(loaded.attention_weights_, emb.attention_weights_)
    assert loaded.get_params()["device"] == "auto"


def test_gpu_pickle_loads_without_cuda(data, tmp_path):
    # A net whose tensors were saved from CUDA: simulated by a pickle whose
    # recorded device is "cuda"; loading on a machine without CUDA maps
    # everything to the CPU (skorch's get_map_location) with a warning.
    X, y = data
    emb = _emb(device="cpu").fit(X, y)
    state = emb.__getstate__()
    state["device"] = "cuda"
    state["device_"] = "cuda"
    with mock.patch("torch.cuda.is_available", return_value=False):
        loaded = AMAESpectrumEmbedder.__new__(AMAESpectrumEmbedder)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            loaded.__setstate__(state)
        assert any("cuda" in str(m.message).lower() for m in w)
        assert str(loaded.device) == "cpu" and loaded.device_ == "cpu"
        np.testing.assert_array_equal(loaded.transform(X), emb.transform(X))


def test_auto_device_pickle_resolves_on_load(data):
    X, y = data
    emb = _emb().fit(X, y)
    with mock.patch("torch.cuda.is_available", return_value=False):
        loaded = pickle.loads(pickle.dumps(emb))
        assert str(loaded.device) == "cpu"
        assert loaded.get_params()["device"] == "auto"


CUDA_PICKLE = DATA / "embedder_cuda.pkl"


@pytest.mark.skipif(not CUDA_PICKLE.exists(), reason="no committed CUDA pickle")
def test_committed_cuda_pickle_loads_on_cpu():
    # Made on an H100 by benchmarks/gpu_run.sh (fit with device="cuda"); its
    # tensors are CUDA storages.  The expected spectra were computed there.
    with mock.patch("torch.cuda.is_available", return_value=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(CUDA_PICKLE, "rb") as f:
                payload = pickle.load(f)
        emb = payload["embedder"]
        assert str(emb.device) == "cpu"
        assert next(emb.module_.parameters()).device.type == "cpu"
        Z = emb.transform(payload["X"])
    np.testing.assert_allclose(Z, payload["spectrum"], rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_and_cpu_reload(data):
    X, y = data
    emb = _emb(device="cuda", precision="bf16").fit(X, y)
    assert emb.device_.startswith("cuda")
    Z = emb.transform(X)
    with mock.patch("torch.cuda.is_available", return_value=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = pickle.loads(pickle.dumps(emb))
        assert str(loaded.device) == "cpu"
        np.testing.assert_allclose(loaded.transform(X), Z, atol=0.05)
