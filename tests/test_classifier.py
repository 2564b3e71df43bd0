"""Tests of FlowSpectrumClassifier, the group decision and the scorers.

Expected values are computed here from the formulas (Gaussian kernel, decay
rule, Bayes' rule), never by calling the implementation.
"""

import pickle
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_flowspectrum import (
    FlowSpectrumClassifier,
    group_of_k_accuracy_score,
    make_group_of_k_scorer,
)
from sklearn_flowspectrum._model_file import load_model_file


def phi(u, h, k=1):
    """Isotropic Gaussian kernel in k dimensions, |u| the distance."""
    return np.exp(-(u**2) / (2 * h**2)) / (2 * np.pi * h**2) ** (k / 2)


def normalize(scores):
    scores = np.asarray(scores, dtype=float)
    return scores / scores.sum(axis=-1, keepdims=True)


# Tiny 1-D training set: class "a" has lines 0.0 and 0.2, class "b" 1.0.
X_TINY = np.array([[0.0], [0.2], [1.0]])
Y_TINY = np.array(["a", "a", "b"])


@pytest.mark.parametrize("algorithm", ["exact", "grid"])
def test_kde_posterior_hand_computed(algorithm):
    h = 0.5
    clf = FlowSpectrumClassifier(bandwidth=h, rule="kde", algorithm=algorithm)
    clf.fit(X_TINY, Y_TINY)
    assert clf.algorithm_.tolist() == [algorithm, algorithm]
    q = np.array([0.5, -0.3, 1.7])
    kde_a = (phi(q - 0.0, h) + phi(q - 0.2, h)) / 2
    kde_b = phi(q - 1.0, h)
    expected = normalize(np.c_[2 / 3 * kde_a, 1 / 3 * kde_b])
    rtol = 1e-12 if algorithm == "exact" else 5e-3
    assert_allclose(clf.predict_proba(q[:, None]), expected, rtol=rtol)
    assert_allclose(
        clf.predict_log_proba(q[:, None]), np.log(expected), rtol=rtol, atol=rtol
    )


@pytest.mark.parametrize("algorithm", ["exact", "grid"])
def test_class_log_density_hand_computed(algorithm):
    h = 0.5
    clf = FlowSpectrumClassifier(bandwidth=h, algorithm=algorithm).fit(X_TINY, Y_TINY)
    # near the lines, and far beyond them (where "kde+decay" would decay)
    q = np.array([0.5, -0.3, 1.7, 4.0])
    expected = np.c_[(phi(q - 0.0, h) + phi(q - 0.2, h)) / 2, phi(q - 1.0, h)]
    rtol = 1e-12 if algorithm == "exact" else 1e-2
    assert_allclose(np.exp(clf.class_log_density(q[:, None])), expected, rtol=rtol)
    # a class with zero total weight has no density anywhere
    clf = FlowSpectrumClassifier(bandwidth=h, algorithm=algorithm).fit(
        [[0.0], [1.0]], [0, 1], sample_weight=[1, 0]
    )
    out = clf.class_log_density([[0.0], [1.0]])
    assert np.isneginf(out[:, 1]).all() and np.isfinite(out[:, 0]).all()


@pytest.mark.parametrize("algorithm", ["exact", "grid"])
@pytest.mark.parametrize("decay", [1.0, 0.25])
def test_decay_rule_hand_computed(algorithm, decay):
    # Eqs. 7-8: nearest line A'_r of each class, score
    # pi_r * kde_r(A'_r) * exp(-decay * |A - A'_r|).
    h = 0.5
    clf = FlowSpectrumClassifier(
        bandwidth=h, rule="decay", decay=decay, algorithm=algorithm
    ).fit(X_TINY, Y_TINY)
    q = np.array([3.0, -2.0, 0.15])
    kde_a_at_0 = (phi(0.0, h) + phi(0.2, h)) / 2  # at line 0.0 (and at 0.2)
    kde_b_at_1 = phi(0.0, h)
    nearest_a = np.array([0.2, 0.0, 0.2])
    s_a = 2 / 3 * kde_a_at_0 * np.exp(-decay * np.abs(q - nearest_a))
    s_b = 1 / 3 * kde_b_at_1 * np.exp(-decay * np.abs(q - 1.0))
    rtol = 1e-12 if algorithm == "exact" else 5e-3
    assert_allclose(
        clf.predict_proba(q[:, None]), normalize(np.c_[s_a, s_b]), rtol=rtol
    )


def test_default_rule_switches_between_kde_and_decay():
    h = 0.1
    default = FlowSpectrumClassifier(bandwidth=h, algorithm="exact").fit(X_TINY, Y_TINY)
    kde = FlowSpectrumClassifier(bandwidth=h, rule="kde", algorithm="exact")
    decay = FlowSpectrumClassifier(bandwidth=h, rule="decay", algorithm="exact")
    kde.fit(X_TINY, Y_TINY)
    decay.fit(X_TINY, Y_TINY)
    seen = np.array([[0.05], [0.45], [0.75], [1.29]])  # within 3h of a line
    unseen = np.array([[0.55], [1.31], [-5.0], [40.0]])  # beyond 3h of all
    assert_allclose(default.predict_proba(seen), kde.predict_proba(seen))
    assert_allclose(default.predict_proba(unseen), decay.predict_proba(unseen))
    # Hand check of one seen and one unseen value.
    q = 0.45
    s = [2 / 3 * (phi(q, h) + phi(q - 0.2, h)) / 2, 1 / 3 * phi(q - 1.0, h)]
    assert_allclose(default.predict_proba([[q]])[0], normalize(s))
    q = 0.55
    s = [
        2 / 3 * (phi(0.0, h) + phi(0.2, h)) / 2 * np.exp(-(q - 0.2)),
        1 / 3 * phi(0.0, h) * np.exp(-(1.0 - q)),
    ]
    assert_allclose(default.predict_proba([[q]])[0], normalize(s))


@pytest.mark.parametrize("rule", ["kde+decay", "kde", "decay"])
@pytest.mark.parametrize("algorithm", ["auto", "exact"])
def test_far_values_go_to_the_nearest_class(rule, algorithm):
    # Far outside the training range a pure linear-space KDE underflows to
    # 0/0; all rules here stay finite and pick the nearest class.
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(-5, 0.5, 300), rng.normal(5, 0.5, 300)][:, None]
    y = np.repeat([10, 20], 300)
    clf = FlowSpectrumClassifier(rule=rule, algorithm=algorithm).fit(X, y)
    far = np.array([[-1e4], [-60.0], [60.0], [3e5]])
    proba = clf.predict_proba(far)
    assert np.all(np.isfinite(proba))
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(clf.predict(far), [10, 10, 20, 20])


@pytest.mark.parametrize(
    "params",
    [{}, {"rule": "kde"}, {"rule": "decay"}, {"bandwidth": "silverman"}],
)
def test_predict_proba_rows_sum_to_one(params):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 1)) * 3
    y = rng.integers(0, 4, 500)
    clf = FlowSpectrumClassifier(**params).fit(X, y)
    Xq = np.r_[rng.normal(size=(2000, 1)) * 10, [[1e6], [-1e6]]]
    proba = clf.predict_proba(Xq)
    assert proba.shape == (Xq.shape[0], 4)
    assert np.all(proba >= 0)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(clf.predict(Xq), clf.classes_[proba.argmax(axis=1)])


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["chat", "email", "voip"]),
        np.array([3, -7, 12]),
        np.array([1.0, 2.0, 3.0]),
        np.array(["x", "yy", "zzz"], dtype=object),
        np.array([True, False, True]),
    ],
    ids=["str", "int", "float", "object", "bool"],
)
def test_any_label_type(labels):
    X = np.array([[0.0], [0.1], [5.0], [5.1], [9.0], [9.1]])
    y = np.repeat(labels, 2)
    clf = FlowSpectrumClassifier().fit(X, y)
    assert_array_equal(clf.classes_, sorted(set(labels.tolist())))
    assert_array_equal(clf.predict(X), y)
    assert clf.predict(X).dtype == clf.classes_.dtype


def test_integer_weights_equal_repetition_and_zero_weights_removal():
    rng = np.random.default_rng(2)
    X = np.round(rng.normal(size=(60, 1)), 2)
    y = rng.integers(0, 3, 60)
    w = rng.integers(0, 4, 60)
    Xq = np.linspace(-4, 4, 101)[:, None]
    for params in [{}, {"bandwidth": "scott"}, {"rule": "decay"}]:
        weighted = FlowSpectrumClassifier(**params).fit(X, y, sample_weight=w)
        repeated = FlowSpectrumClassifier(**params).fit(
            np.repeat(X, w, axis=0), np.repeat(y, w)
        )
        assert_allclose(weighted.predict_proba(Xq), repeated.predict_proba(Xq))
        assert_allclose(weighted.class_prior_, np.bincount(y, weights=w) / w.sum())


def test_zero_weight_class_is_never_predicted():
    X = np.array([[0.0], [1.0], [2.0]])
    y = np.array([0, 1, 2])
    clf = FlowSpectrumClassifier().fit(X, y, sample_weight=[1, 0, 1])
    assert clf.algorithm_.tolist()[1] == "none"
    Xq = np.array([[1.0], [0.9], [50.0]])
    assert_array_equal(clf.predict_proba(Xq)[:, 1], 0.0)
    assert 1 not in clf.predict(Xq)
    with pytest.raises(ValueError, match="non-zero"):
        FlowSpectrumClassifier().fit(X, y, sample_weight=[0, 0, 0])


def test_class_prior_parameter():
    h = 0.5
    prior = np.array([0.1, 0.9])
    clf = FlowSpectrumClassifier(bandwidth=h, rule="kde", class_prior=prior)
    clf.fit(X_TINY, Y_TINY)
    assert_allclose(clf.class_prior_, prior)
    q = 0.4
    s = [0.1 * (phi(q, h) + phi(q - 0.2, h)) / 2, 0.9 * phi(q - 1.0, h)]
    assert_allclose(clf.predict_proba([[q]])[0], normalize(s), rtol=5e-3)
    with pytest.raises(ValueError, match="class_prior must have shape"):
        FlowSpectrumClassifier(class_prior=[1.0]).fit(X_TINY, Y_TINY)
    with pytest.raises(ValueError, match="sum to 1"):
        FlowSpectrumClassifier(class_prior=[0.5, 0.6]).fit(X_TINY, Y_TINY)
    with pytest.raises(ValueError, match="nothing could ever be predicted"):
        FlowSpectrumClassifier(class_prior=[1.0, 0.0]).fit(
            X_TINY, Y_TINY, sample_weight=[0, 0, 1]
        )


def test_data_driven_bandwidths_hand_computed():
    X = np.array([[0.0], [1.0], [3.0], [10.0], [10.0], [4.0]])
    y = np.array([0, 0, 0, 1, 1, 2])
    sigma0 = np.std([0.0, 1.0, 3.0])  # population standard deviation
    scott = FlowSpectrumClassifier(bandwidth="scott").fit(X, y)
    # Class 1 (one distinct value) and class 2 (one session) have no spread:
    # they use the pooled within-class spread.
    pooled = np.sqrt(3 * sigma0**2 / 6)
    assert_allclose(
        scott.bandwidth_, [sigma0, pooled, pooled] * np.array([3, 2, 1.0]) ** (-1 / 5)
    )
    silverman = FlowSpectrumClassifier(bandwidth="silverman").fit(X, y)
    n = np.array([3, 2, 1.0])
    assert_allclose(
        silverman.bandwidth_, [sigma0, pooled, pooled] * (n * 3 / 4) ** (-1 / 5)
    )
    fixed = FlowSpectrumClassifier(bandwidth=0.3).fit(X, y)
    assert_allclose(fixed.bandwidth_, 0.3)


def test_spectral_lines_and_weights():
    X = np.array([[2.0], [1.0], [2.0], [7.0]])
    y = np.array(["a", "a", "a", "b"])
    clf = FlowSpectrumClassifier().fit(X, y, sample_weight=[1.0, 2.0, 0.5, 1.0])
    assert_array_equal(clf.spectral_lines_[0], [[1.0], [2.0]])
    assert_array_equal(clf.line_weights_[0], [2.0, 1.5])
    assert_array_equal(clf.spectral_lines_[1], [[7.0]])
    assert_allclose(clf.class_count_, [3.5, 1.0])
    assert_allclose(
        clf.nearest_line_distance([[1.4], [10.0]]), [[0.4, 5.6], [8.0, 3.0]]
    )


def test_multidimensional_spectra_hand_computed():
    # (n, 2) spectra: isotropic 2-D kernels, Euclidean nearest line.
    X = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    y = np.array([0, 0, 1])
    h = 0.8
    q = np.array([[0.5, 0.5], [1.5, 2.0]])
    d_a0 = np.linalg.norm(q - X[0], axis=1)
    d_a1 = np.linalg.norm(q - X[1], axis=1)
    d_b = np.linalg.norm(q - X[2], axis=1)
    kde = FlowSpectrumClassifier(bandwidth=h, rule="kde").fit(X, y)
    s = np.c_[2 / 3 * (phi(d_a0, h, 2) + phi(d_a1, h, 2)) / 2, 1 / 3 * phi(d_b, h, 2)]
    assert_allclose(kde.predict_proba(q), normalize(s))
    assert kde.algorithm_.tolist() == ["exact", "exact"]

    decay = FlowSpectrumClassifier(bandwidth=h, rule="decay").fit(X, y)
    kde_a_line = (phi(0.0, h, 2) + phi(1.0, h, 2)) / 2
    s = np.c_[
        2 / 3 * kde_a_line * np.exp(-np.minimum(d_a0, d_a1)),
        1 / 3 * phi(0.0, h, 2) * np.exp(-d_b),
    ]
    assert_allclose(decay.predict_proba(q), normalize(s))
    assert_allclose(decay.nearest_line_distance(q), np.c_[np.minimum(d_a0, d_a1), d_b])
    with pytest.raises(ValueError, match="1-D spectra only"):
        FlowSpectrumClassifier(algorithm="grid").fit(X, y)


@pytest.mark.parametrize("rule", ["kde+decay", "kde", "decay"])
def test_grid_agrees_with_exact(rule):
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(0, 1, 1500), rng.normal(2, 0.3, 800), rng.uniform(-9, 9, 40)]
    y = np.r_[np.zeros(1500), np.ones(800), rng.integers(0, 3, 40)].astype(int)
    Xq = np.r_[rng.uniform(-12, 12, 1000), rng.normal(1, 1, 1000)][:, None]
    grid = FlowSpectrumClassifier(rule=rule, algorithm="grid").fit(X[:, None], y)
    exact = FlowSpectrumClassifier(rule=rule, algorithm="exact").fit(X[:, None], y)
    assert grid.algorithm_.tolist() == ["grid"] * 3
    assert_allclose(
        grid.nearest_line_distance(Xq), exact.nearest_line_distance(Xq), rtol=0
    )
    p_grid, p_exact = grid.predict_proba(Xq), exact.predict_proba(Xq)
    assert np.abs(p_grid - p_exact).max() < 2e-3
    assert np.mean(grid.predict(Xq) == exact.predict(Xq)) > 0.999


def test_grid_log_density_error_within_documented_bounds():
    # Log-density error of the grid: ~1e-3 within 3 bandwidths of the data,
    # ~1e-2 within 8, growing like (d/h)^2 / 8192 in the far tail.
    rng = np.random.default_rng(4)
    X = np.r_[rng.normal(0, 1, 2000), rng.normal(3, 0.05, 300)][:, None]
    y = np.zeros(X.shape[0], dtype=int)
    y[-1] = 1  # a second class far from nothing in particular
    grid = FlowSpectrumClassifier(rule="kde", algorithm="grid").fit(X, y)
    exact = FlowSpectrumClassifier(rule="kde", algorithm="exact").fit(X, y)
    dens_g, dens_e = grid._densities[0], exact._densities[0]
    q = np.r_[rng.uniform(-6, 7, 4000)][:, None]
    idx, dist = dens_e.nearest(q)
    err = np.abs(dens_g.log_kde(q, idx, dist) - dens_e.log_kde(q, idx, dist))
    z = dist / 0.1
    assert err[z <= 3].max() < 3e-3
    assert err[z <= 8].max() < 2e-2
    assert np.all(err <= 5e-3 + z**2 / 8192)


def test_auto_uses_exact_when_the_grid_would_be_huge():
    X = np.array([[0.0], [1e6], [5.0], [2e6]])
    y = np.array([0, 0, 1, 1])
    clf = FlowSpectrumClassifier(bandwidth=0.01).fit(X, y)
    # Two far-apart lines per class: two small grid stretches, not 1e8 nodes.
    assert clf.algorithm_.tolist() == ["grid", "grid"]
    # No gap wider than 24 bandwidths, 7 / (1e-4 / 32) > 2**21 grid nodes.
    dense = np.arange(0, 7, 0.002)[:, None]
    y = np.zeros(len(dense))
    clf = FlowSpectrumClassifier(bandwidth=1e-4).fit(dense, y)
    assert clf.algorithm_.tolist() == ["exact"]
    with pytest.raises(ValueError, match="grid nodes"):
        FlowSpectrumClassifier(bandwidth=1e-4, algorithm="grid").fit(dense, y)


@pytest.mark.parametrize("rule", ["kde+decay", "kde", "decay"])
def test_large_inputs_take_the_sorted_path_consistently(rule):
    # >= 4096 queries are processed sorted (with shortcuts for the queries
    # outside a class's range); results must match per sample, and the grid
    # must agree with exact sums.
    rng = np.random.default_rng(5)
    X = np.r_[
        rng.normal(-3, 0.5, 1500), rng.normal(0, 1, 1500), rng.normal(4, 0.3, 500)
    ]
    y = np.repeat([0, 1, 2], [1500, 1500, 500])
    clf = FlowSpectrumClassifier(rule=rule).fit(X[:, None], y)
    Xq = np.r_[rng.normal(0, 3, 5800), [-50, -7, -6.2, 5.9, 7.5, 90.0] * 25][:, None]
    big = clf.predict_proba(Xq)
    small = np.vstack(
        [clf.predict_proba(Xq[i : i + 1000]) for i in range(0, len(Xq), 1000)]
    )
    assert_allclose(big, small, rtol=1e-10, atol=1e-300)
    assert_array_equal(clf.predict(Xq), clf.classes_[big.argmax(axis=1)])
    brute = np.stack([np.abs(Xq - X[y == c]).min(axis=1) for c in range(3)], axis=1)
    assert_array_equal(clf.nearest_line_distance(Xq), brute)
    exact = FlowSpectrumClassifier(rule=rule, algorithm="exact").fit(X[:, None], y)
    assert np.abs(exact.predict_proba(Xq[::5]) - big[::5]).max() < 2e-3


# -- set-level decision ----------------------------------------------------------
def _two_class_data(seed=6, n=200):
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(0, 1, n), rng.normal(1.5, 1, n)][:, None]
    y = np.repeat(np.array(["a", "b"]), n)
    return X, y


def test_predict_groups_mean_rule_is_the_mean_posterior():
    X, y = _two_class_data()
    clf = FlowSpectrumClassifier(bandwidth="scott").fit(X, y)
    groups = np.array(["g2", "g1", "g2", "g3", "g1", "g3", "g3"])
    Xq = np.array([[0.1], [1.6], [0.3], [5.0], [1.2], [-0.4], [0.9]])
    proba = clf.predict_proba(Xq)
    expected = np.array([proba[groups == g].mean(axis=0) for g in ["g1", "g2", "g3"]])
    assert_allclose(clf.predict_groups_proba(Xq, groups), expected)
    assert_array_equal(
        clf.predict_groups(Xq, groups), clf.classes_[expected.argmax(axis=1)]
    )


def test_predict_groups_product_rule_is_naive_bayes():
    X, y = _two_class_data()
    clf = FlowSpectrumClassifier(group_rule="product", bandwidth="scott").fit(X, y)
    Xq = np.array([[0.1], [0.8], [0.9], [1.0], [1.1]])
    groups = np.array([0, 0, 0, 0, 0])
    # P(r | group) ~ pi_r prod_i p_r(A_i) = prod_i P(r | A_i) / pi_r^(k-1)
    log_post = clf.predict_log_proba(Xq).sum(axis=0) - 4 * np.log(clf.class_prior_)
    expected = normalize(np.exp(log_post - log_post.max()))
    assert_allclose(clf.predict_groups_proba(Xq, groups)[0], expected)
    # Mean and product can disagree: here the product is sharper.
    mean = FlowSpectrumClassifier(bandwidth="scott").fit(X, y)
    assert mean.predict_groups_proba(Xq, groups)[0].max() < expected.max()


def test_predict_groups_validates_groups():
    clf = FlowSpectrumClassifier().fit(X_TINY, Y_TINY)
    with pytest.raises(ValueError, match="one entry per session"):
        clf.predict_groups([[0.0], [1.0]], groups=[1, 2, 3])


def test_predict_groups_by_index_is_predict_groups_on_the_drawn_rows():
    X, y = _two_class_data(n=150)
    rng = np.random.default_rng(1)
    for params, n_test in [
        ({"bandwidth": "scott"}, 300),
        ({"group_rule": "product", "algorithm": "exact"}, 300),
        ({"unknown_threshold": 0.3}, 300),
        ({}, 5000),  # large enough for the sorted evaluation
    ]:
        clf = FlowSpectrumClassifier(**params).fit(X, y)
        X_test = rng.normal(0.75, 2.0, (n_test, 1))
        indices = rng.integers(0, n_test, size=(60, 4))
        indices[0] = indices[0, 0]  # one session four times
        expected = [clf.predict_groups(X_test[row], np.zeros(4))[0] for row in indices]
        assert_array_equal(clf.predict_groups_by_index(X_test, indices), expected)


def test_predict_groups_by_index_validates_indices():
    clf = FlowSpectrumClassifier().fit(X_TINY, Y_TINY)
    X = [[0.0], [1.0]]
    with pytest.raises(ValueError, match=r"2-D \(n_groups, k\)"):
        clf.predict_groups_by_index(X, [0, 1])
    with pytest.raises(ValueError, match="k >= 1"):
        clf.predict_groups_by_index(X, np.zeros((3, 0), dtype=int))
    with pytest.raises(ValueError, match="integer row numbers"):
        clf.predict_groups_by_index(X, [[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"in 0..1; got values from 0 to 2"):
        clf.predict_groups_by_index(X, [[0, 2]])
    with pytest.raises(ValueError, match="from -1 to 1"):
        clf.predict_groups_by_index(X, [[-1, 1]])


def test_group_of_k_accuracy_asks_the_classifiers_public_group_decision():
    # A subclass that changes the set-level decision changes the metric: the
    # metric goes through predict_groups_by_index, not through internals.
    class Contrary(FlowSpectrumClassifier):
        def predict_groups_by_index(self, X, indices):
            labels = super().predict_groups_by_index(X, indices)
            return np.where(labels == "a", "b", "a")

    X, y = _two_class_data(n=100)
    plain = FlowSpectrumClassifier().fit(X, y)
    contrary = Contrary().fit(X, y)
    score = group_of_k_accuracy_score(plain, X, y, k=5, random_state=0)
    flipped = group_of_k_accuracy_score(contrary, X, y, k=5, random_state=0)
    assert 0.5 < score < 1.0
    assert flipped == pytest.approx(1.0 - score)


def test_group_of_k_accuracy_matches_a_manual_computation():
    X, y = _two_class_data(n=150)
    clf = FlowSpectrumClassifier(bandwidth="scott").fit(X, y)
    k, n_groups = 5, 40
    score = group_of_k_accuracy_score(
        clf, X, y, k=k, n_groups_per_class=n_groups, random_state=0
    )
    rng = np.random.RandomState(0)
    hits = []
    for c in np.unique(y):
        draws = rng.choice(np.flatnonzero(y == c), size=(n_groups, k))
        for draw in draws:
            hits.append(clf.predict_groups(X[draw], np.zeros(k))[0] == c)
    assert score == pytest.approx(np.mean(hits))
    # Groups of 10 separate the overlapping classes far better than sessions.
    per_session = clf.score(X, y)
    group_of_10 = group_of_k_accuracy_score(clf, X, y, random_state=0)
    assert per_session < 0.85 < group_of_10


def test_group_of_k_accuracy_on_pipelines_and_other_classifiers():
    X, y = _two_class_data(n=100)
    X2 = np.c_[X, np.zeros_like(X)]  # a second, useless column
    pipe = make_pipeline(PCA(n_components=1), FlowSpectrumClassifier()).fit(X2, y)
    direct = make_pipeline(PCA(n_components=1)).fit(X2)
    clf = FlowSpectrumClassifier().fit(direct.transform(X2), y)
    assert group_of_k_accuracy_score(
        pipe, X2, y, random_state=3
    ) == group_of_k_accuracy_score(clf, direct.transform(X2), y, random_state=3)
    # Another classifier: soft vote of its predict_proba.
    nb = GaussianNB().fit(X, y)
    assert 0.5 < group_of_k_accuracy_score(nb, X, y, random_state=0) <= 1.0
    with pytest.raises(TypeError, match="predict_groups or predict_proba"):
        group_of_k_accuracy_score(RidgeClassifier().fit(X, y), X, y)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        group_of_k_accuracy_score(nb, X, y, k=0)


def test_group_of_k_scorer_in_cross_validate():
    X, y = _two_class_data(n=100)
    scorer = make_group_of_k_scorer(k=10, n_groups_per_class=50, random_state=0)
    assert "k=10" in repr(scorer)
    cv = cross_validate(
        FlowSpectrumClassifier(bandwidth="scott"),
        X,
        y,
        cv=3,
        scoring={"per_session_accuracy": "accuracy", "group_of_10_accuracy": scorer},
    )
    assert np.all(cv["test_group_of_10_accuracy"] > cv["test_per_session_accuracy"])


# -- reject option ----------------------------------------------------------------
def test_rejection_label_is_what_predict_gives_rejected_sessions():
    far = [[40.0]]
    strings = FlowSpectrumClassifier().fit(X_TINY, Y_TINY)
    assert strings.rejection_label() is None
    strings.set_params(unknown_threshold=0.5)  # takes effect without refitting
    assert strings.rejection_label() == "unknown" == strings.predict(far)[0]
    numbers = FlowSpectrumClassifier(unknown_threshold="auto").fit(X_TINY, [0, 0, 1])
    assert numbers.rejection_label() == -1 == numbers.predict(far)[0]
    chosen = FlowSpectrumClassifier(unknown_threshold=0.5, unknown_label="new")
    assert chosen.fit(X_TINY, Y_TINY).rejection_label() == "new"
    chosen.set_params(unknown_label="a")
    with pytest.raises(ValueError, match="also a class label"):
        chosen.rejection_label()


def test_reject_option_string_and_int_labels():
    clf = FlowSpectrumClassifier(unknown_threshold=0.5, unknown_measure="distance").fit(
        X_TINY, Y_TINY
    )
    Xq = np.array([[0.1], [1.4], [1.6], [-3.0]])
    pred = clf.predict(Xq)
    assert_array_equal(pred, ["a", "b", "unknown", "unknown"])
    # Posteriors are over the known classes and unaffected.
    plain = FlowSpectrumClassifier().fit(X_TINY, Y_TINY)
    assert_allclose(clf.predict_proba(Xq), plain.predict_proba(Xq))

    ints = FlowSpectrumClassifier(
        unknown_threshold=0.5, unknown_measure="distance"
    ).fit(X_TINY, [3, 3, 7])
    assert_array_equal(ints.predict(Xq), [3, 7, -1, -1])
    assert ints.predict(Xq).dtype.kind == "i"
    custom = FlowSpectrumClassifier(
        unknown_threshold=0.5, unknown_label="other", unknown_measure="distance"
    )
    assert_array_equal(
        custom.fit(X_TINY, [3, 3, 7]).predict(Xq),
        np.array([3, 7, "other", "other"], dtype=object),
    )


def test_reject_option_label_clash_and_groups():
    with pytest.raises(ValueError, match="also a class label"):
        FlowSpectrumClassifier(unknown_threshold=1.0).fit(X_TINY, [-1, -1, 2])
    with pytest.raises(ValueError, match="also a class label"):
        FlowSpectrumClassifier(unknown_threshold=1.0, unknown_label="a").fit(
            X_TINY, Y_TINY
        )
    clf = FlowSpectrumClassifier(unknown_threshold=0.5, unknown_measure="distance").fit(
        X_TINY, Y_TINY
    )
    Xq = np.array([[0.1], [9.0], [9.5], [0.0], [0.1], [9.0]])
    groups = [1, 1, 1, 2, 2, 2]  # group 1: 2 of 3 rejected; group 2: 1 of 3
    assert_array_equal(clf.predict_groups(Xq, groups), ["unknown", "a"])


def test_reject_threshold_from_training_nearest_neighbour_quantile():
    # The documented recipe: the q-quantile of leave-one-out nearest-neighbour
    # distances rejects about 1 - q of new in-distribution sessions.
    rng = np.random.default_rng(7)
    X = rng.normal(size=(4000, 1))
    y = rng.integers(0, 2, 4000)
    d, _ = NearestNeighbors(n_neighbors=2).fit(X).kneighbors(X)
    threshold = np.quantile(d[:, 1], 0.95)
    clf = FlowSpectrumClassifier(
        unknown_threshold=threshold, unknown_measure="distance"
    ).fit(X, y)
    fresh = rng.normal(size=(20000, 1))
    rejected = np.mean(clf.predict(fresh) == -1)
    assert 0.02 < rejected < 0.09
    assert np.all(clf.predict([[8.0], [-8.0]]) == -1)


@pytest.mark.parametrize("measure", ["density", "distance", "posterior"])
@pytest.mark.parametrize("rate", [0.02, 0.1])
def test_auto_threshold_rejects_about_unknown_rate_of_held_out_sessions(measure, rate):
    # Three classes of different spread; the threshold is learned from the
    # training spectra only and must reject about `rate` of fresh sessions
    # drawn like them, and every session far from all of them.
    rng = np.random.default_rng(3)

    def draw(n):
        y = rng.integers(0, 3, n)
        X = np.choose(
            y, [rng.normal(0, 1, n), rng.normal(5, 0.3, n), rng.normal(9, 2, n)]
        )
        return X[:, None], y

    X, y = draw(6000)
    clf = FlowSpectrumClassifier(
        unknown_threshold="auto", unknown_rate=rate, unknown_measure=measure
    ).fit(X, y)
    fresh, _ = draw(30000)
    rejected = np.mean(clf.predict(fresh) == -1)
    assert 0.6 * rate < rejected < 1.5 * rate
    if measure != "posterior":  # far from all, one class takes the posterior
        assert_array_equal(clf.predict([[-40.0], [60.0]]), [-1, -1])
    assert_array_equal(
        clf.unknown_score(fresh) > clf.unknown_threshold_, clf.predict(fresh) == -1
    )
    # A lower rate: a higher threshold, fewer rejections.
    strict = clone(clf).set_params(unknown_rate=rate / 2).fit(X, y)
    assert strict.unknown_threshold_ > clf.unknown_threshold_


def test_auto_threshold_is_the_quantile_of_the_documented_folds():
    # The docstring's rule, rebuilt by hand: sessions taken class by class
    # are dealt in turn to 5 folds, each scored by lines fitted on the rest.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 1))
    y = np.where(rng.random(500) < 0.3, "x", "y")
    clf = FlowSpectrumClassifier(unknown_threshold="auto", unknown_rate=0.05)
    clf.fit(X, y)
    held_out = np.empty(500)
    fold = np.empty(500, dtype=int)
    fold[np.argsort(y, kind="stable")] = np.arange(500) % 5
    for f in range(5):
        inner = FlowSpectrumClassifier().fit(X[fold != f], y[fold != f])
        held_out[fold == f] = inner.unknown_score(X[fold == f])
    assert np.mean(held_out > clf.unknown_threshold_) <= 0.05
    assert np.mean(held_out >= clf.unknown_threshold_) > 0.05 - 1 / 500
    # Without a threshold nothing is rejected and the attribute says so.
    plain = FlowSpectrumClassifier().fit(X, y)
    assert plain.unknown_threshold_ is None
    assert set(plain.predict(X + 50)) <= {"x", "y"}


def test_unknown_scores_follow_their_definitions():
    # With rule="kde" and empirical priors, sum_r pi_r kde_r is the kernel
    # density of all training spectra together.
    from sklearn.neighbors import KernelDensity

    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1, 300), rng.normal(3, 0.5, 200)][:, None]
    y = np.repeat([0, 1], [300, 200])
    clf = FlowSpectrumClassifier(
        rule="kde", algorithm="exact", unknown_measure="density"
    )
    clf.fit(X, y)
    q = np.linspace(-4, 6, 101)[:, None]
    kde = KernelDensity(bandwidth=0.1).fit(X)
    assert_allclose(clf.unknown_score(q), -kde.score_samples(q), rtol=1e-9)
    dist = clone(clf).set_params(unknown_measure="distance").fit(X, y)
    assert_allclose(dist.unknown_score(q), dist.nearest_line_distance(q).min(axis=1))
    post = clone(clf).set_params(unknown_measure="posterior").fit(X, y)
    assert_allclose(post.unknown_score(q), 1 - post.predict_proba(q).max(axis=1))


def test_auto_threshold_with_rare_class_and_given_prior():
    # A class with one session is held out of its own fold: the inner fits
    # keep every class (zero weights), so a given class_prior still fits.
    X = np.r_[np.linspace(0, 1, 40), [5.0]][:, None]
    y = np.r_[np.zeros(40, int), [1]]
    clf = FlowSpectrumClassifier(
        unknown_threshold="auto", class_prior=[0.5, 0.5], unknown_label=9
    ).fit(X, y)
    assert np.isfinite(clf.unknown_threshold_)
    assert clf.predict([[100.0]])[0] == 9
    assert_array_equal(clf.predict_groups([[100.0], [100.0], [0.5]], [1, 1, 2]), [9, 0])


@pytest.mark.parametrize(
    "params",
    [{"unknown_rate": 0.0}, {"unknown_rate": 1.0}, {"unknown_threshold": "learn"}],
)
def test_unknown_parameters_are_validated(params):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        FlowSpectrumClassifier(**params).fit(X_TINY, Y_TINY)


# -- sklearn integration ---------------------------------------------------------
def test_pickle_round_trip_gives_identical_results():
    X, y = _two_class_data()
    for params in [{}, {"algorithm": "exact"}, {"rule": "decay"}]:
        clf = FlowSpectrumClassifier(**params).fit(X, y)
        Xq = np.linspace(-5, 6, 500)[:, None]
        back = pickle.loads(pickle.dumps(clf))
        assert_array_equal(back.predict_proba(Xq), clf.predict_proba(Xq))
        assert_array_equal(back.predict(Xq), clf.predict(Xq))
    X2 = np.c_[X, X**2]
    clf = FlowSpectrumClassifier().fit(X2, y)
    back = pickle.loads(pickle.dumps(clf))
    assert_array_equal(back.predict_proba(X2), clf.predict_proba(X2))


OLD_PICKLE = Path(__file__).parent / "data" / "classifier_before_kde_split.pkl"


def test_models_pickled_before_the_density_engine_moved_still_load():
    # Made by FlowSpectrumClassifier when its densities were
    # sklearn_flowspectrum._classifier._ClassDensity: a grid model with a
    # learned reject threshold and an exact one, with their outputs.
    assert b"_ClassDensity" in OLD_PICKLE.read_bytes()
    for payload in (pickle.loads(OLD_PICKLE.read_bytes()), load_model_file(OLD_PICKLE)):
        for kind in ("grid", "exact"):
            clf, X = payload[kind], payload["X"]
            assert_array_equal(clf.predict_proba(X), payload[f"proba_{kind}"])
            assert_array_equal(clf.predict(X), payload[f"pred_{kind}"])
        assert "unknown" in payload["pred_grid"]


def test_in_pipeline_with_pca():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(), PCA(n_components=1), FlowSpectrumClassifier(bandwidth="scott")
    )
    scores = cross_val_score(pipe, X, y, cv=5)
    assert scores.mean() > 0.85
    pipe.fit(X, y)
    assert pipe[-1].n_features_in_ == 1
    assert_allclose(pipe.predict_proba(X).sum(axis=1), 1.0)


def test_grid_search_tunes_bandwidth_and_decay():
    X, y = _two_class_data(n=120)
    search = GridSearchCV(
        FlowSpectrumClassifier(),
        {
            "bandwidth": [0.02, "scott"],
            "decay": [0.5, 2.0],
            "rule": ["kde+decay", "kde"],
        },
        cv=3,
    ).fit(X, y)
    assert search.best_params_["bandwidth"] in (0.02, "scott")
    assert len(search.cv_results_["params"]) == 8


def test_invalid_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match="bandwidth"):
        FlowSpectrumClassifier(bandwidth=-1.0).fit(X_TINY, Y_TINY)
    with pytest.raises(ValueError, match="rule"):
        FlowSpectrumClassifier(rule="max").fit(X_TINY, Y_TINY)
    with pytest.raises(ValueError, match="decay"):
        FlowSpectrumClassifier(decay=-0.1).fit(X_TINY, Y_TINY)
    with pytest.raises(ValueError, match="Unknown label type"):
        FlowSpectrumClassifier().fit(X_TINY, [0.5, 1.2, 3.7])
    with pytest.raises(ValueError, match="features"):
        FlowSpectrumClassifier().fit(X_TINY, Y_TINY).predict([[0.0, 1.0]])
