"""Faithfulness checks: deletion curves and model randomisation."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.pipeline import make_pipeline

from sklearn_flowspectrum import AMAESpectrumEmbedder, FlowSpectrumClassifier
from sklearn_flowspectrum.evaluation import deletion_curve, randomization_check
from sklearn_flowspectrum.evaluation._faithfulness import (
    _randomized,
    _rowwise_spearman,
)

LEAK = slice(24, 32)  # 8 of the 64 bytes carry the class


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def leaky():
    rng = np.random.default_rng(0)
    X = rng.integers(1, 256, size=(128, 64), dtype=np.uint8)
    y = np.repeat(np.array(["a", "b"]), 64)
    X[:, LEAK] = np.where(y == "a", 30, 230)[:, None]
    torch.set_num_threads(1)
    emb = AMAESpectrumEmbedder(
        max_epochs=15,
        batch_size=16,
        random_state=0,
        module__channels=(8, 8),
        module__mapper_hidden=(32,),
    )
    pipe = make_pipeline(emb, FlowSpectrumClassifier()).fit(X, y)
    return pipe, X[40:88], y[40:88]  # both classes


def test_deletion_curve_table(leaky):
    pipe, X, y = leaky
    curve = deletion_curve(
        pipe, X, y, methods="gradients", fractions=[0.05, 0.125, 0.5], random_state=0
    )
    assert list(curve.columns) == ["order", "percent", "n_blanked", "accuracy"]
    assert set(curve["order"]) == {"none", "gradients", "random", "class_attention"}
    assert curve.loc[curve["order"] == "none", "accuracy"].item() > 0.9
    assert curve.loc[curve["order"] == "random", "n_blanked"].tolist() == [3, 8, 32]
    assert curve["accuracy"].between(0, 1).all()


def test_deletion_by_a_faithful_order_drops_faster_than_random(leaky):
    pipe, X, y = leaky
    curve = deletion_curve(
        pipe,
        X,
        y,
        methods=("gradients", "occlusion"),
        baselines=("random",),
        fractions=[0.125],
        explain_params={"byte_map": np.repeat(np.arange(8), 8)[None].repeat(48, 0)},
        random_state=0,
    ).set_index("order")
    # Blanking the 8 leak bytes (to 0, nearer class a) makes every session
    # look like class a; 8 random bytes rarely hit the leak.
    for method in ("gradients", "occlusion"):
        assert curve.loc[method, "accuracy"] < curve.loc["random", "accuracy"] - 0.2


def test_deletion_curve_bad_arguments(leaky):
    pipe, X, y = leaky
    with pytest.raises(ValueError, match="unknown methods"):
        deletion_curve(pipe, X, y, methods=["saliency"])
    with pytest.raises(ValueError, match="unknown baselines"):
        deletion_curve(pipe, X, y, methods=[], baselines=["shuffle"])
    with pytest.raises(ValueError, match="fractions"):
        deletion_curve(pipe, X, y, methods=[], fractions=[0.0])
    with pytest.raises(ValueError, match="labels"):
        deletion_curve(pipe, X, y[:3], methods=[])


def test_rowwise_spearman_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 20)), rng.random((3, 20))
    b[1] = a[1] * 2 + 1
    rho = _rowwise_spearman(a, b)
    for i in range(3):
        assert rho[i] == pytest.approx(spearmanr(a[i], b[i]).statistic)
    assert np.isnan(_rowwise_spearman(np.ones((1, 5)), a[:1, :5])[0])
    keep = np.ones((3, 20), bool)
    keep[:, 15:] = False
    rho = _rowwise_spearman(a, b, keep)
    for i in range(3):
        want = spearmanr(a[i, :15], b[i, :15]).statistic
        assert rho[i] == pytest.approx(want)


def test_randomized_copy_has_new_weights_and_leaves_the_model(leaky):
    pipe, X, _ = leaky
    before = pipe[0].transform(X).copy()
    rand = _randomized(pipe, 0)
    assert not np.allclose(rand[0].transform(X), before)
    np.testing.assert_array_equal(pipe[0].transform(X), before)
    # The random network does not attend uniformly (its channel attention's
    # output layer, zero at the start of training, is drawn too).
    w = rand[0].attention_maps(X)
    assert w.std(axis=1).min() > 0


def test_randomization_check(leaky):
    pipe, X, _ = leaky
    out = randomization_check(pipe, X[:16], methods=("gradients", "attention"))
    assert list(out.index) == ["gradients", "attention"]
    assert list(out.columns) == ["spearman_mean", "spearman_median", "n_sessions"]
    assert (out["spearman_mean"].abs() < 0.99).all()
    every = randomization_check(pipe, X[:16], methods="attention", positions="all")
    assert every.loc["attention", "n_sessions"] == 16
    with pytest.raises(ValueError, match="positions must be"):
        randomization_check(pipe, X, positions="some")
    with pytest.raises(ValueError, match="target='spectrum'"):
        randomization_check(pipe, X, explain_params={"target": "posterior"})
