import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.stats import binom  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from sklearn_flowspectrum.evaluation import (  # noqa: E402
    EvaluationReport,
    evaluation_report,
    markdown_table,
)

Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 0])
LABELS = dict(representation="AllLayers", masking="safe", split="file", protocol="t")


def test_per_session_numbers_by_hand():
    rep = evaluation_report(Y_TRUE, Y_PRED, k=None, **LABELS)
    assert rep.accuracy == pytest.approx(4 / 6)
    # class 0: tp 1, predicted 2, true 2 -> P 1/2, R 1/2, F1 1/2
    # class 1: tp 2, predicted 3, true 2 -> P 2/3, R 1,   F1 0.8
    # class 2: tp 1, predicted 1, true 2 -> P 1,   R 1/2, F1 2/3
    np.testing.assert_allclose(rep.per_class["precision"], [1 / 2, 2 / 3, 1])
    np.testing.assert_allclose(rep.per_class["recall"], [1 / 2, 1, 1 / 2])
    np.testing.assert_allclose(rep.per_class["f1"], [1 / 2, 0.8, 2 / 3])
    assert rep.per_class["support"].tolist() == [2, 2, 2]
    assert rep.precision == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert rep.recall == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert rep.f1 == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)
    np.testing.assert_array_equal(rep.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert rep.group_accuracy is None and rep.n_sessions == 6


def test_explicit_groups_hard_and_soft_vote():
    # groups: g0 = sessions 0,1 (class 0; votes 0,1 -> tie -> first class 0: right)
    # g1 = 2,3 (class 1: right), g2 = 4,5 (class 2; votes 2,0 -> tie -> 0: wrong)
    groups = np.array([0, 0, 1, 1, 2, 2])
    rep = evaluation_report(Y_TRUE, Y_PRED, groups=groups, **LABELS)
    assert rep.group_accuracy == pytest.approx(2 / 3)
    assert rep.n_groups == 3 and rep.k == 2 and rep.group_label == "group-of-2"
    assert "hard vote" in rep.group_protocol
    # Soft vote: probabilities decide the tie of g2 in favour of class 2.
    proba = np.eye(3)[Y_PRED] * 0.6 + 0.1
    proba[4] = [0.0, 0.0, 1.0]
    rep = evaluation_report(
        Y_TRUE, Y_PRED, y_proba=proba, classes=[0, 1, 2], groups=groups
    )
    assert rep.group_accuracy == pytest.approx(1.0)
    assert "soft vote" in rep.group_protocol
    with pytest.raises(ValueError, match="mix classes"):
        evaluation_report(Y_TRUE, Y_PRED, groups=[0, 1, 1, 2, 2, 3])


def test_drawn_groups_follow_the_classifier_module():
    # Class 0 is always right, class 1 right in 2 of 3 sessions: group-of-k
    # by hard vote tends to 1 for both as k grows.
    y_true = np.repeat([0, 1], 30)
    y_pred = y_true.copy()
    y_pred[30:40] = 0
    small = evaluation_report(y_true, y_pred, k=1, n_groups_per_class=2000)
    large = evaluation_report(y_true, y_pred, k=25, n_groups_per_class=200)
    assert small.group_accuracy == pytest.approx((1 + 2 / 3) / 2, abs=0.03)
    # A group of class 1 is right when at most 12 of its 25 votes are wrong.
    expected = (1 + binom.cdf(12, 25, 1 / 3)) / 2
    assert large.group_accuracy == pytest.approx(expected, abs=0.02)
    assert large.group_accuracy > large.accuracy
    assert large.n_groups == 400 and "with replacement" in large.group_protocol


def test_estimator_route_matches_soft_vote():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (40, 2)), rng.normal(1, 1, (40, 2))]
    y = np.repeat(["a", "b"], 40)
    clf = LogisticRegression().fit(X, y)
    kwargs = dict(k=5, n_groups_per_class=100, random_state=3)
    via_est = evaluation_report(y, clf.predict(X), estimator=clf, X=X, **kwargs)
    via_proba = evaluation_report(
        y, clf.predict(X), y_proba=clf.predict_proba(X), classes=clf.classes_, **kwargs
    )
    assert via_est.group_accuracy == via_proba.group_accuracy
    assert "estimator" in via_est.group_protocol


def test_warns_when_classes_have_fewer_than_k_test_sessions():
    # 3 and 5 test sessions cannot fill a group of 10 without repeats.
    y_true = np.repeat(["chat", "email", "voip"], [3, 5, 20])
    with pytest.warns(UserWarning, match="fewer than 10 test sessions") as record:
        rep = evaluation_report(y_true, y_true, n_groups_per_class=10)
    (message,) = [str(w.message) for w in record]
    assert "chat (3), email (5)." in message and "voip" not in message
    assert "(fewer than 10 test sessions: chat (3), email (5))" in rep.group_protocol
    # The estimator's own decision draws the same groups: the same warning.
    X = np.linspace(0, 1, y_true.size)[:, None]
    clf = LogisticRegression().fit(X, y_true)
    with pytest.warns(UserWarning, match=r"chat \(3\), email \(5\)"):
        evaluation_report(y_true, y_true, estimator=clf, X=X, n_groups_per_class=10)


def test_no_small_class_warning_without_drawn_groups():
    y_true = np.repeat(["chat", "voip"], [3, 20])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluation_report(y_true, y_true, k=None)
        evaluation_report(y_true, y_true, groups=y_true)  # given, not drawn
        rep = evaluation_report(y_true, y_true, k=3, n_groups_per_class=10)
    assert "fewer than" not in rep.group_protocol


def test_labels_everywhere():
    rep = evaluation_report(Y_TRUE, Y_PRED, k=2, n_groups_per_class=10, **LABELS)
    assert rep.title == "AllLayers | masking: safe | split: file | protocol: t"
    frame = rep.to_frame()
    assert (frame[list(LABELS)] == pd.Series(LABELS)).all().all()
    assert set(frame["scope"]) == {"per-session", "group-of-2"}
    acc = frame.query("scope == 'per-session' and metric == 'accuracy'")["value"]
    assert acc.item() == pytest.approx(4 / 6)
    md = rep.to_markdown()
    assert md.startswith("**AllLayers | masking: safe")
    assert "per-session accuracy: 0.667" in md and "NOT a per-session" in md
    assert "| 1     | 0.667     | 1.000  | 0.800 | 2       |" in md
    assert str(rep) == md
    summary = rep.summary()
    assert summary["masking"] == "safe" and "group-of-2 accuracy" in summary
    unlabelled = evaluation_report(Y_TRUE, Y_PRED, k=None)
    assert unlabelled.split == "unspecified"


def test_confusion_plot_is_titled():
    rep = evaluation_report(Y_TRUE, Y_PRED, k=None, **LABELS)
    ax = rep.plot_confusion_matrix()
    assert "masking: safe" in ax.get_title() and "split: file" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    texts = [t.get_text() for t in ax.texts]
    assert texts[:3] == ["0.50", "0.50", "0.00"]
    counts = rep.plot_confusion_matrix(normalize=None)
    assert [t.get_text() for t in counts.texts][:3] == ["1", "1", "0"]
    with pytest.raises(ValueError, match="normalize"):
        rep.plot_confusion_matrix(normalize="all")
    plt.close("all")


def test_bad_input():
    with pytest.raises(ValueError, match="same length"):
        evaluation_report([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        evaluation_report([], [])
    with pytest.raises(ValueError, match="classes must be given"):
        evaluation_report([0, 1], [0, 1], y_proba=[[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="shape"):
        evaluation_report([0, 1], [0, 1], y_proba=[[1, 0]], classes=[0, 1])
    with pytest.raises(ValueError, match="not in classes"):
        evaluation_report([0, 2], [0, 0], classes=[0, 1])
    with pytest.raises(TypeError, match="masking must be a string"):
        evaluation_report([0, 1], [0, 1], masking=1)
    with pytest.raises(ValueError, match="k must be"):
        evaluation_report([0, 1], [0, 1], k=0)


def test_reject_label_counts_as_error():
    rep = evaluation_report([0, 0, 1], [0, -1, 1], classes=[0, 1], k=None)
    assert rep.accuracy == pytest.approx(2 / 3)
    assert rep.per_class.loc["0", "recall"] == pytest.approx(0.5)
    assert isinstance(rep, EvaluationReport)


def test_rejection_rate_and_accuracy_on_accepted_sessions():
    y_true = [0, 0, 0, 1, 1, 1, 1, 2]
    y_pred = [0, -1, 1, 1, -1, -1, 1, 2]
    rep = evaluation_report(y_true, y_pred, classes=[0, 1, 2], k=None, unknown_label=-1)
    assert rep.n_rejected == 3
    assert rep.rejection_rate == pytest.approx(3 / 8)
    # accepted: (0,0) (0,1) (1,1) (1,1) (2,2) -> 4 of 5 right
    assert rep.accepted_accuracy == pytest.approx(4 / 5)
    assert rep.accuracy == pytest.approx(4 / 8)
    frame = rep.to_frame()
    row = frame[(frame["class"] == "accepted") & (frame["metric"] == "accuracy")]
    assert row["value"].tolist() == pytest.approx([4 / 5])
    assert rep.summary()["per-session rejection rate"] == pytest.approx(3 / 8)
    assert "rejected as unknown: 3 sessions" in rep.to_markdown()
    # Without a reject label nothing is said about rejection.
    plain = evaluation_report(y_true, y_pred, classes=[0, 1, 2], k=None)
    assert plain.rejection_rate is None and "rejected" not in plain.to_markdown()
    assert "per-session rejection rate" not in plain.summary()
    with pytest.raises(ValueError, match="also a class label"):
        evaluation_report(y_true, y_pred, k=None, unknown_label=2)


def test_rejection_label_read_from_a_rejecting_classifier():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from sklearn_flowspectrum import FlowSpectrumClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 1))
    y = np.where(X[:, 0] > 0, "b", "a")
    Xq = np.r_[X[:50], [[30.0], [-30.0]]]
    yq = np.r_[y[:50], ["a", "a"]]
    for est in (
        FlowSpectrumClassifier(unknown_threshold="auto"),
        make_pipeline(
            FunctionTransformer(), FlowSpectrumClassifier(unknown_threshold="auto")
        ),
    ):
        est.fit(X, y)
        pred = est.predict(Xq)
        rep = evaluation_report(yq, pred, classes=["a", "b"], k=None, estimator=est)
        assert rep.n_rejected == int(np.sum(pred == "unknown")) >= 2
        assert rep.accepted_accuracy == pytest.approx(
            np.mean(pred[pred != "unknown"] == yq[pred != "unknown"])
        )
    plain = FlowSpectrumClassifier().fit(X, y)
    rep = evaluation_report(yq, plain.predict(Xq), k=None, estimator=plain)
    assert rep.rejection_rate is None


def test_markdown_table():
    frame = pd.DataFrame({"a": ["x|y", None], "b": [1.23456, np.nan], "c": [3, 4]})
    assert markdown_table(frame, floatfmt=".2f").splitlines() == [
        "| a    | b    | c   |",
        "|------|------|-----|",
        "| x\\|y | 1.23 | 3   |",
        "|      |      | 4   |",
    ]
