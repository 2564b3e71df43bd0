# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""Group-of-k accuracy: the authors' evaluation protocol, as a metric and a scorer.

The set-level decision itself is the classifier's
(:meth:`FlowSpectrumClassifier.predict_groups_by_index
<sklearn_flowspectrum.FlowSpectrumClassifier.predict_groups_by_index>`); this
module draws the groups, asks for their labels and counts the right ones.
"""

import numbers
import warnings

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state

from sklearn_flowspectrum._classifier import FlowSpectrumClassifier

__all__ = ["classes_under", "group_of_k_accuracy_score", "make_group_of_k_scorer"]


def _final_step(estimator, X):
    """The last step of a pipeline and X transformed by the steps before it."""
    if isinstance(estimator, Pipeline):
        return estimator[-1], estimator[:-1].transform(X)
    return estimator, X


def group_of_k_accuracy_score(
    estimator, X, y, *, k=10, n_groups_per_class=1000, random_state=None
):
    """Group-of-k accuracy: the authors' evaluation protocol (NOT per-session).

    For each class in ``y``, draws ``n_groups_per_class`` groups of ``k``
    sessions of that class (with replacement, as the Semi-2DCAE test script
    does), classifies every group as a whole and returns the fraction of
    groups labelled correctly.  Each class contributes the same number of
    groups, so this is balanced over classes.  It is usually far higher than
    the per-session accuracy (``estimator.score(X, y)``); always report the
    two side by side and say which is which.

    The group decision is that of ``predict_groups`` of a
    :class:`FlowSpectrumClassifier` (or of the last step of a
    :class:`~sklearn.pipeline.Pipeline` ending in one), through its
    ``predict_groups_by_index``; for any other classifier, the mean of its
    ``predict_proba`` over the group (soft vote).  A group rejected as
    unknown counts as an error.

    Parameters
    ----------
    estimator : estimator object
        A fitted classifier or pipeline.

    X : array-like of shape (n_samples, ...)
        Test sessions, in whatever form the estimator takes.

    y : array-like of shape (n_samples,)
        True labels.

    k : int, default=10
        Sessions per group.

    n_groups_per_class : int, default=1000
        Groups drawn per class.

    random_state : int, RandomState instance or None, default=None
        Controls the draws.

    Returns
    -------
    score : float
        Fraction of groups classified correctly.

    Warns
    -----
    UserWarning
        When a class has fewer than ``k`` sessions: its groups repeat the
        same few sessions.  The warning names those classes and counts.

    See Also
    --------
    make_group_of_k_scorer : The same as a scorer for ``cross_val_score``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum import (
    ...     FlowSpectrumClassifier, group_of_k_accuracy_score)
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, 200), rng.normal(1.5, 1, 200)].reshape(-1, 1)
    >>> y = np.repeat(["a", "b"], 200)
    >>> clf = FlowSpectrumClassifier(bandwidth="scott").fit(X, y)
    >>> per_session = clf.score(X, y)
    >>> group_of_10 = group_of_k_accuracy_score(clf, X, y, k=10, random_state=0)
    >>> bool(group_of_10 > per_session)
    True
    """
    if not (isinstance(k, numbers.Integral) and k >= 1):
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    n_per_class = n_groups_per_class
    if not (isinstance(n_per_class, numbers.Integral) and n_per_class >= 1):
        raise ValueError(
            f"n_groups_per_class must be a positive integer, got {n_per_class!r}."
        )
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}.")
    rng = check_random_state(random_state)
    present = np.unique(y)
    small = classes_under(y, k)
    if small:
        warnings.warn(
            f"group-of-{k} accuracy from classes with fewer than {k} test "
            f"sessions: {small}. Their groups of {k} are drawn with replacement "
            "from those few sessions, so they repeat the same sessions and the "
            "score says little about these classes; test on more sessions or "
            "lower k",
            UserWarning,
            stacklevel=2,
        )
    draws = np.concatenate(
        [
            rng.choice(np.flatnonzero(y == c), size=(n_groups_per_class, k))
            for c in present
        ]
    )
    truth = np.repeat(present, n_groups_per_class)
    n_groups = draws.shape[0]
    final, Xt = _final_step(estimator, X)
    if isinstance(final, FlowSpectrumClassifier):
        # Scores every test session once, then combines the drawn groups.
        pred = final.predict_groups_by_index(Xt, draws)
    elif hasattr(final, "predict_proba"):
        codes = np.repeat(np.arange(n_groups), k)
        proba = final.predict_proba(Xt)[draws.reshape(-1)]
        mean = np.stack(
            [np.bincount(codes, weights=col, minlength=n_groups) for col in proba.T],
            axis=1,
        )
        pred = final.classes_[np.argmax(mean, axis=1)]
    else:
        raise TypeError(
            f"{type(final).__name__} has no predict_groups or predict_proba; "
            "group-of-k scoring needs one of them."
        )
    return float(np.mean(pred == truth))


def classes_under(y, k):
    """``"Email (3), P2P (5)"``: the classes of ``y`` with fewer than ``k``
    sessions and their counts; ``""`` when there are none."""
    present, counts = np.unique(y, return_counts=True)
    small = counts < k
    return ", ".join(f"{c} ({n})" for c, n in zip(present[small], counts[small]))


class _GroupOfKScorer:
    """Callable ``scorer(estimator, X, y)`` for group-of-k accuracy."""

    def __init__(self, k, n_groups_per_class, random_state):
        self.k = k
        self.n_groups_per_class = n_groups_per_class
        self.random_state = random_state

    def __call__(self, estimator, X, y):
        return group_of_k_accuracy_score(
            estimator,
            X,
            y,
            k=self.k,
            n_groups_per_class=self.n_groups_per_class,
            random_state=self.random_state,
        )

    def __repr__(self):
        return (
            f"make_group_of_k_scorer(k={self.k}, "
            f"n_groups_per_class={self.n_groups_per_class}, "
            f"random_state={self.random_state!r})"
        )


def make_group_of_k_scorer(*, k=10, n_groups_per_class=1000, random_state=None):
    """Scorer for the group-of-k accuracy protocol (NOT per-session accuracy).

    Use it beside the plain per-session ``"accuracy"`` scorer, e.g.
    ``cross_validate(pipe, X, y, scoring={"per_session_accuracy": "accuracy",
    "group_of_10_accuracy": make_group_of_k_scorer(k=10)})``.

    Parameters
    ----------
    k : int, default=10
        Sessions per group.

    n_groups_per_class : int, default=1000
        Groups drawn per class.

    random_state : int, RandomState instance or None, default=None
        Controls the draws (an int gives the same draws at every call).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)`` returning
        :func:`group_of_k_accuracy_score`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import cross_validate
    >>> from sklearn_flowspectrum import FlowSpectrumClassifier, make_group_of_k_scorer
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, 100), rng.normal(3, 1, 100)].reshape(-1, 1)
    >>> y = np.repeat([0, 1], 100)
    >>> scoring = {"per_session_accuracy": "accuracy",
    ...            "group_of_10_accuracy": make_group_of_k_scorer(random_state=0)}
    >>> cv = cross_validate(FlowSpectrumClassifier(), X, y, scoring=scoring)
    >>> sorted(key for key in cv if key.startswith("test_"))
    ['test_group_of_10_accuracy', 'test_per_session_accuracy']
    """
    return _GroupOfKScorer(k, n_groups_per_class, random_state)
