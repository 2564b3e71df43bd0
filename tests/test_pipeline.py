"""The three estimators compose like any sklearn estimators.

Real data throughout: the bundled nDPI captures (session tables) and the
bundled ISCX-VPN2016 sample (USTC-TK2016 rows).  Tiny models, one or two
epochs: these tests check composition, not accuracy.
"""

import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline

from sklearn_flowspectrum import (
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
    read_sessions,
)
from sklearn_flowspectrum.datasets import (
    load_iscx_vpn2016_sample,
    load_sample_captures,
)


def _embedder(**kw):
    # A tiny network: these tests check composition, not accuracy.
    params = dict(
        max_epochs=1,
        batch_size=32,
        random_state=0,
        device="cpu",
        module__channels=(8, 4),
        module__mapper_hidden=(16,),
    )
    params.update(kw)
    return AMAESpectrumEmbedder(**params)


@pytest.fixture(scope="module")
def sessions():
    captures = load_sample_captures()
    table = read_sessions(captures.filenames, labels=list(captures.target))
    assert len(table) > 20
    return table


def sample_rows():
    """12 bundled ISCX rows of each of three classes, and their class names."""
    data = load_iscx_vpn2016_sample()
    rng = np.random.default_rng(0)
    keep = np.concatenate(
        [
            rng.choice(np.flatnonzero(data.target == c), 12, replace=False)
            for c in (0, 1, 5)
        ]
    )
    return data.data[keep], data.target_names[data.target[keep]]


@pytest.fixture(scope="module")
def iscx_rows():
    return sample_rows()


def test_pipeline_fits_and_predicts_from_a_session_table(sessions):
    pipe = make_pipeline(PcapSessionVectorizer(), _embedder(), FlowSpectrumClassifier())
    pipe.fit(sessions, sessions["label"])
    predicted = pipe.predict(sessions)
    assert predicted.shape == (len(sessions),)
    assert set(predicted) <= set(sessions["label"])
    proba = pipe.predict_proba(sessions)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # The embedder's spectrum is one value per session.
    spectra = pipe[:-1].transform(sessions)
    assert spectra.shape == (len(sessions), 1)


def test_grid_search_over_all_three_steps(iscx_rows):
    X, y = iscx_rows
    pipe = make_pipeline(PcapSessionVectorizer(), _embedder(), FlowSpectrumClassifier())
    grid = GridSearchCV(
        pipe,
        {
            "pcapsessionvectorizer__mask": ["none", "safe"],
            "amaespectrumembedder__max_epochs": [1],
            "amaespectrumembedder__module__channels": [(8, 4), (4, 4)],
            "flowspectrumclassifier__bandwidth": [0.1],
            "flowspectrumclassifier__decay": [1.0],
        },
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        error_score="raise",
    )
    grid.fit(X, y)
    assert set(grid.cv_results_["params"][0]) == set(grid.param_grid)
    assert len(grid.cv_results_["mean_test_score"]) == 4
    assert grid.best_estimator_.predict(X).shape == (len(y),)


def test_cross_validation_grouped_by_capture_file(sessions):
    pipe = make_pipeline(PcapSessionVectorizer(), _embedder(), FlowSpectrumClassifier())
    groups = sessions["file"]
    cv = GroupKFold(n_splits=2)
    result = cross_validate(
        pipe, sessions, sessions["label"], groups=groups, cv=cv, error_score="raise"
    )
    assert result["test_score"].shape == (2,)
    for train, test in cv.split(sessions, sessions["label"], groups):
        assert not set(groups.iloc[train]) & set(groups.iloc[test])


def test_joblib_round_trip_gives_identical_predictions(iscx_rows, tmp_path):
    X, y = iscx_rows
    pipe = make_pipeline(
        PcapSessionVectorizer(), _embedder(), FlowSpectrumClassifier()
    ).fit(X, y)
    path = tmp_path / "pipe.joblib"
    joblib.dump(pipe, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    np.testing.assert_array_equal(loaded[:-1].transform(X), pipe[:-1].transform(X))
    np.testing.assert_allclose(loaded.predict_proba(X), pipe.predict_proba(X))


def test_clone_of_fitted_pipeline_is_unfitted(iscx_rows):
    X, y = iscx_rows
    pipe = make_pipeline(
        PcapSessionVectorizer(), _embedder(), FlowSpectrumClassifier()
    ).fit(X, y)
    fresh = clone(pipe)
    assert not hasattr(fresh[-1], "classes_")
    assert fresh.get_params()["amaespectrumembedder__max_epochs"] == 1


def test_classifier_after_another_one_dimensional_embedding(iscx_rows):
    X, y = iscx_rows
    pipe = make_pipeline(
        PcapSessionVectorizer(mask="safe"),
        PCA(n_components=1),
        FlowSpectrumClassifier(),
    )
    scores = cross_val_score(pipe, X, y, cv=StratifiedKFold(3))
    # Three classes: a working 1-D embedding + decision beats chance.
    assert scores.mean() > 1 / 3


@pytest.fixture
def torch_warns_always():
    # torch issues some warnings once per process; the tests below must see
    # them even when another test triggered them first.
    import torch

    before = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    yield
    torch.set_warn_always(before)


@pytest.mark.parametrize("fitted_with", ["default", "pandas"])
def test_set_output_switched_after_fit_warns_nothing(
    iscx_rows, fitted_with, torch_warns_always
):
    X, y = iscx_rows
    pipe = make_pipeline(PcapSessionVectorizer(), _embedder(), FlowSpectrumClassifier())
    pipe.set_output(transform=fitted_with).fit(X, y)
    predicted = pipe.predict(X)
    spectra = np.asarray(pipe[:-1].transform(X))
    pipe.set_output(transform="default" if fitted_with == "pandas" else "pandas")
    with warnings.catch_warnings():
        # Neither sklearn's feature-name warnings nor torch's "non-writable
        # NumPy array" one.
        warnings.simplefilter("error")
        np.testing.assert_array_equal(pipe.predict(X), predicted)
        np.testing.assert_array_equal(np.asarray(pipe[:-1].transform(X)), spectra)


def test_other_column_names_are_still_checked(iscx_rows):
    # Only the package's positional names are read by position; a DataFrame
    # with other names keeps sklearn's warning.
    X, y = iscx_rows
    images = PcapSessionVectorizer().fit_transform(X)
    emb = _embedder().fit(images, y)
    frame = pd.DataFrame(images, columns=[f"col{i}" for i in range(784)])
    with pytest.warns(UserWarning, match="X has feature names"):
        emb.transform(frame)
    clf = FlowSpectrumClassifier().fit(emb.transform(images), y)
    with pytest.warns(UserWarning, match="X has feature names"):
        clf.predict(pd.DataFrame(emb.transform(images), columns=["d"]))


def test_pipelines_refuse_rows_unlike_their_training_data(sessions, iscx_rows):
    alllayers, _ = iscx_rows
    l7, l7_y = load_iscx_vpn2016_sample(representation="l7", return_X_y=True)
    on_l7 = make_pipeline(_embedder(), FlowSpectrumClassifier()).fit(
        l7[:60], l7_y[:60]
    )
    with pytest.raises(ValueError, match="fitted on images without a pcap header"):
        on_l7.predict(alllayers)
    on_captures = make_pipeline(
        PcapSessionVectorizer(), _embedder(), FlowSpectrumClassifier()
    ).fit(sessions, sessions["label"])
    with pytest.raises(ValueError, match="X holds rows without a pcap header"):
        on_captures.predict(l7[:5])
    with pytest.raises(ValueError, match="X holds rows of 500 bytes"):
        on_captures.predict(alllayers[:, :500])
    # AllLayers rows are images of the same kind as the captures' sessions.
    assert on_captures.predict(alllayers).shape == (len(alllayers),)
