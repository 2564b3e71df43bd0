# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""The FlowSpectrum Bayesian decision (section 3.2 of the AMAE paper).

Spectra -> decisions: class priors, the decision rules (kernel density, the
exponential decay rule for spectrum values not seen in training, or both), a
set-level (group) decision and an optional "unknown" outcome, on the
class-conditional kernel densities of :mod:`sklearn_flowspectrum._kde`.  The
group-of-k metric that uses the set-level decision is in
:mod:`sklearn_flowspectrum._metrics`.  Pure numpy/scipy: no torch, no capture
code.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from sklearn_flowspectrum._kde import (
    TAIL_RADIUS,
    ClassDensity,
    class_bandwidths,
    distinct_lines,
    logsumexp_rows,
)
from sklearn_flowspectrum._validation import read_by_position, spectrum_feature_names

__all__ = ["FlowSpectrumClassifier"]

# Models pickled before the density engine moved to _kde name it here.
_ClassDensity = ClassDensity

# "kde+decay": a value is "seen" when it lies within this many bandwidths of a
# training line of some class.
_SEEN_RADIUS = 3.0
# Sort 1-D queries first when there are at least this many (cache-friendly
# binary searches and gathers).
_SORT_QUERIES_FROM = 4096
# unknown_threshold="auto": class-stratified folds of the held-out scores.
_UNKNOWN_FOLDS = 5


def _argmax_classes(scores):
    """argmax over axis 0 of a (n_classes, m) array (first maximum wins);
    a loop over the few classes is much faster than np.argmax(axis=0)."""
    best = scores[0].copy()
    arg = np.zeros(scores.shape[1], dtype=np.intp)
    for r in range(1, scores.shape[0]):
        better = scores[r] > best
        arg[better] = r
        np.maximum(best, scores[r], out=best)
    return arg


def _log_normalize(scores):
    """Log-normalise (n_classes, m) scores over the classes (axis 0)."""
    top = scores.max(axis=0)
    top[~np.isfinite(top)] = 0.0
    shifted = scores - top
    with np.errstate(divide="ignore"):
        lse = np.log(np.exp(shifted).sum(axis=0))
    shifted -= lse
    return shifted


def _query_order(X):
    """The sorting permutation of large 1-D inputs (None for others)."""
    if X.shape[1] == 1 and X.shape[0] >= _SORT_QUERIES_FROM:
        return np.argsort(X[:, 0])
    return None


def _unsort(values, order):
    """Undo ``values = values[..., order]`` along the last axis."""
    if order is None:
        return values
    out = np.empty_like(values)
    out[..., order] = values
    return out


def _rows(mask):
    """Index for the True entries of mask: a slice if all, None if none."""
    if mask.all():
        return slice(None)
    if not mask.any():
        return None
    return np.flatnonzero(mask)


def _weighted_quantile(values, weights, q):
    """The q-quantile of values with frequency weights (inverted CDF: the
    smallest value whose cumulative weight share reaches q)."""
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(weights[order])
    i = np.searchsorted(cum, q * cum[-1], side="left")
    return float(values[min(i, values.shape[0] - 1)])


def _encode_labels(y):
    """classes_ (sorted) and integer codes; a bincount for integer labels,
    which is much faster than np.unique on large arrays."""
    if y.dtype.kind in "iu" and y.shape[0]:
        low, high = int(y.min()), int(y.max())
        if high - low <= 4 * y.shape[0] + 1024:
            shifted = (y - low).astype(np.intp) if low else y.astype(np.intp)
            present = np.bincount(shifted) > 0
            classes = (np.flatnonzero(present) + low).astype(y.dtype)
            codes = (np.cumsum(present) - 1)[shifted]
            return classes, codes
    else:
        # Integer labels are always binary or multiclass; check the others
        # (e.g. a continuous float target is refused here).
        check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    return classes, codes.reshape(-1)


class FlowSpectrumClassifier(ClassifierMixin, BaseEstimator):
    """Bayesian decision on FlowSpectrum values (AMAE paper, section 3.2).

    Each training session is a spectral line ``d(A)`` (one value per session,
    or a point in ``k`` dimensions for a multi-dimensional FlowSpectrum).
    For every class the lines give a Gaussian kernel density (paper Eqs.
    20-21); with the class priors, Bayes' rule gives the posterior of each
    class.  Spectrum values not seen in training are scored with the
    exponential decay rule of Eqs. 7-8 from the nearest known line of each
    class.  Groups of sessions can be classified together (Eqs. 3-6), and
    sessions far from every known line can be rejected as unknown.

    Read more in the Notes below for the exact formulas.

    Parameters
    ----------
    bandwidth : float or {"scott", "silverman"}, default=0.1
        Bandwidth ``h`` of the Gaussian kernels, in spectrum units (the
        paper uses 0.1).  ``"scott"`` and ``"silverman"`` choose one
        bandwidth per class from that class's lines: ``sigma_r * n_r **
        (-1 / (k + 4))`` (Scott) or ``sigma_r * (n_r * (k + 2) / 4) **
        (-1 / (k + 4))`` (Silverman), where ``sigma_r`` is the class's
        isotropic standard deviation (square root of the mean per-feature
        variance) and ``n_r`` its total sample weight (number of sessions
        without weights).  A class with zero spread (e.g. one session) uses
        the pooled within-class spread of all classes, then the spread of
        all training data, then 1.0.  These rules suit unimodal classes and
        oversmooth multi-modal ones (e.g. a class made of several kinds of
        sessions); tune a float bandwidth with GridSearchCV for those.

    decay : float, default=1.0
        Rate of the exponential decay rule, per spectrum unit: the score of
        a class falls by ``exp(-decay * distance)`` with the distance to its
        nearest known line.  ``1.0`` is the paper's Eq. 8.

    rule : {"kde+decay", "kde", "decay"}, default="kde+decay"
        How the density of a class at a value ``A`` is scored (see Notes):
        ``"kde"``, the kernel density at ``A``; ``"decay"``, Eqs. 7-8 for
        every value, the density at the nearest known line of the class
        decayed with the distance; ``"kde+decay"``, the kernel density where
        ``A`` lies within 3 bandwidths of a training line of some class
        ("seen" values) and the decay rule elsewhere ("unseen" values).

    class_prior : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes (order of ``classes_``).  None
        uses the (weighted) class frequencies of the training data.

    algorithm : {"auto", "grid", "exact"}, default="auto"
        How 1-D densities are evaluated.  ``"grid"`` bins the lines on a grid
        of step ``bandwidth / 32`` and smooths them with the kernel, then
        interpolates; ``"exact"`` sums over all lines (cost proportional to
        queries x lines).  ``"auto"`` uses the grid for 1-D spectra unless it
        would need more than 2**21 nodes for a class, and exact sums for
        multi-dimensional spectra (the grid is 1-D only).

    unknown_threshold : float, "auto" or None, default=None
        Reject option.  A session whose :meth:`unknown_score` exceeds this
        threshold is predicted as ``unknown_label``.  None disables
        rejection.  ``"auto"`` learns the threshold from the training data
        (``unknown_threshold_``): the training sessions, taken class by
        class (classes in the order of ``classes_``, sessions in input order
        within a class), are dealt in turn to 5 folds, so every class is
        spread evenly; lines fitted on 4 folds score the sessions of the
        fifth, and the threshold is the ``1 -
        unknown_rate`` quantile (weighted by ``sample_weight``) of these
        held-out scores, so it rejects about ``unknown_rate`` of held-out
        training sessions.  New sessions of the known classes are rejected
        somewhat more often when their spectra spread more than the
        training spectra (e.g. spectra of an embedder on the sessions it was
        trained on).

        A float is in the units of ``unknown_measure``: for ``"distance"``,
        spectrum units; one way to set it then is a high quantile ``q`` of
        the leave-one-out nearest-neighbour distances of the training
        spectra, which rejects about a fraction ``1 - q`` of new sessions
        drawn like the training data::

            from sklearn.neighbors import NearestNeighbors
            d, _ = NearestNeighbors(n_neighbors=2).fit(X).kneighbors(X)
            unknown_threshold = np.quantile(d[:, 1], 0.99)

    unknown_rate : float, default=0.01
        With ``unknown_threshold="auto"``: the share of held-out training
        sessions the learned threshold may reject (strictly between 0 and
        1).  Ignored otherwise.

    unknown_measure : {"distance", "density", "posterior"}, default="distance"
        What :meth:`unknown_score` measures (higher is more unknown).
        ``"distance"``: the Euclidean distance to the nearest known line of
        any class, ``min_r dist_r(A)``.  ``"density"``: minus the log of the
        joint score summed over the classes, ``-log sum_r s_r(A)`` (see
        Notes; the log density of the mixture of the known classes where the
        value was seen, the decay rule elsewhere).  ``"posterior"``: ``1 -
        max_r P(r | A)``; it does not flag values far from every line (one
        class takes all the posterior there).  The default was chosen on
        inner splits of ``benchmarks/open_set.py`` (ISCX VPN-nonVPN 2016
        AllLayers, safe mask, one more known class left out of each
        training part, 200 sessions per class, 3 CPU epochs): mean AUROC
        0.59 (distance), 0.49 (density), 0.54 (posterior) over 6 splits.
        On a one-number spectrum, sessions of unseen classes mostly land
        among the known lines, so no measure separates them well there.

    unknown_label : str, int, float or None, default=None
        The label that ``predict`` (and ``predict_groups``) give a rejected
        session.  None means ``"unknown"`` when the classes are strings or
        objects and ``-1`` when they are numbers.  It must differ from every
        class label (checked in ``fit`` when ``unknown_threshold`` is set).

    group_rule : {"mean", "product"}, default="mean"
        Set-level decision of ``predict_groups`` and the group-of-k scorer.
        ``"mean"`` is the paper's spectrum dot product (Eqs. 4 and 6): the
        group's posterior is the mean of its sessions' posteriors.
        ``"product"`` treats the sessions of a group as independent draws of
        one class: ``log P(r | group) = log pi_r + sum_i log p_r(A_i) + c``
        (naive Bayes; sharper, less robust to one odd session).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (any label type).

    class_count_ : ndarray of shape (n_classes,)
        Total sample weight (number of sessions without weights) per class.

    class_prior_ : ndarray of shape (n_classes,)
        The class priors used.

    bandwidth_ : ndarray of shape (n_classes,)
        The bandwidth of each class's kernels (nan for a class with zero
        total weight).

    spectral_lines_ : list of ndarray of shape (n_lines_r, n_features_in_)
        The distinct training spectra of each class, sorted for 1-D
        spectra: the FlowSpectrum ``FS(X_r)`` of Eq. 2.

    line_weights_ : list of ndarray of shape (n_lines_r,)
        Summed sample weight of each spectral line.

    algorithm_ : ndarray of shape (n_classes,)
        ``"grid"`` or ``"exact"``: how each class's density is evaluated
        (``"none"`` for a class with zero total weight).

    unknown_threshold_ : float or None
        The threshold on :meth:`unknown_score` above which sessions are
        rejected: ``unknown_threshold`` itself, the learned one for
        ``"auto"``, or None without rejection.

    n_features_in_ : int
        Number of features seen during fit (1 for the paper's spectrum).

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string feature names.
        The embedder's positional names (``spectrum0``, ...) are read by
        position, so switching ``set_output`` on a fitted pipeline does not
        warn; other names must match, as in scikit-learn.

    See Also
    --------
    group_of_k_accuracy_score : The authors' group-of-k evaluation protocol.
    sklearn.neighbors.KernelDensity : Kernel density estimation.
    sklearn.naive_bayes.GaussianNB : Gaussian naive Bayes.

    Notes
    -----
    For class ``r`` with distinct training lines ``x_j``, summed weights
    ``w_j`` (``W_r = sum_j w_j``) and bandwidth ``h_r``, in ``k``
    dimensions::

        kde_r(A)  = 1/W_r sum_j w_j (2 pi h_r^2)^(-k/2) exp(-|A - x_j|^2 / (2 h_r^2))
        A'_r      = argmin_j |A - x_j|,   dist_r(A) = |A - A'_r|       (Eq. 7)
        decay_r(A) = kde_r(A'_r) exp(-decay * dist_r(A))               (Eq. 8)

    Eq. 21 of the paper prints the normalising constant as
    ``1/sqrt(2 pi h)``; we use the normalised kernel ``1/(sqrt(2 pi) h)``.
    In Eq. 8, ``P_r(A')`` is taken as the joint density ``pi_r kde_r(A'_r)``
    (prior times class density at the nearest line of that class), so all
    classes are scored on one scale.  The unnormalised class scores are::

        "kde":       s_r(A) = pi_r kde_r(A)
        "decay":     s_r(A) = pi_r decay_r(A)
        "kde+decay": s_r(A) = pi_r kde_r(A)    if min_q dist_q(A) / h_q <= 3
                              pi_r decay_r(A)  otherwise

    and ``P(r | A) = s_r(A) / sum_q s_q(A)``, computed in log space (no
    underflow far from the data).  The default switches rules for all
    classes at once: mixing them per class (e.g. ``max(kde_r, decay_r)``)
    lets the slow ``exp(-distance)`` tail of a tightly clustered class
    outscore a broad class's density inside the broad class's range (a
    tight class N(0, 0.02) against a broad N(1, 0.5), h = 0.1: 97%
    per-session accuracy with "kde+decay" or "kde", 50% with "decay" or the
    per-class maximum).

    With ``algorithm="grid"`` (1-D), lines are linearly binned on a grid of
    step ``h/32``, convolved with the kernel truncated at 12 ``h``, and the
    log density is interpolated linearly.  The error in log density is
    below about 2e-3 within 3 bandwidths of the data and 1e-2 within 8.
    Beyond 8 bandwidths from every line of a class, its log density is
    summed from the binned lines within 4 bandwidths of the nearest line on
    each side (the rest weigh less than ``exp(-40)`` relative); the binning
    error there grows like ``(d/h)^2 / 8192`` in log density at distance
    ``d``.  A class whose nearest line is more than 8 bandwidths farther
    (in its bandwidths) than the nearest class's cannot compete for that
    session (its posterior is below about ``exp(-32)`` times a weight
    ratio); its density there is the nearest-line lower bound
    ``w'/W_r phi(dist_r)``.  Memory and time grow with ``range / h`` (at
    most 2**21 grid nodes per class; "auto" falls back to exact sums).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum import FlowSpectrumClassifier
    >>> X = np.array([[-1.0], [-0.9], [-1.1], [1.0], [1.1], [0.9]])
    >>> y = np.array(["chat", "chat", "chat", "voip", "voip", "voip"])
    >>> clf = FlowSpectrumClassifier().fit(X, y)
    >>> clf.predict([[-0.95], [1.05], [40.0]])
    array(['chat', 'voip', 'voip'], dtype='<U4')
    >>> clf.predict_proba([[0.0]]).round(3)
    array([[0.5, 0.5]])
    >>> clf.predict_groups([[-1.0], [-0.8], [1.0], [1.3]], groups=[7, 7, 9, 9])
    array(['chat', 'voip'], dtype='<U4')
    """

    _parameter_constraints: dict = {
        "bandwidth": [
            Interval(numbers.Real, 0, None, closed="neither"),
            StrOptions({"scott", "silverman"}),
        ],
        "decay": [Interval(numbers.Real, 0, None, closed="left")],
        "rule": [StrOptions({"kde+decay", "kde", "decay"})],
        "class_prior": ["array-like", None],
        "algorithm": [StrOptions({"auto", "grid", "exact"})],
        "unknown_threshold": [
            Interval(numbers.Real, None, None, closed="neither"),
            StrOptions({"auto"}),
            None,
        ],
        "unknown_rate": [Interval(numbers.Real, 0, 1, closed="neither")],
        "unknown_measure": [StrOptions({"density", "distance", "posterior"})],
        "unknown_label": "no_validation",
        "group_rule": [StrOptions({"mean", "product"})],
    }

    def __init__(
        self,
        *,
        bandwidth=0.1,
        decay=1.0,
        rule="kde+decay",
        class_prior=None,
        algorithm="auto",
        unknown_threshold=None,
        unknown_rate=0.01,
        unknown_measure="distance",
        unknown_label=None,
        group_rule="mean",
    ):
        self.bandwidth = bandwidth
        self.decay = decay
        self.rule = rule
        self.class_prior = class_prior
        self.algorithm = algorithm
        self.unknown_threshold = unknown_threshold
        self.unknown_rate = unknown_rate
        self.unknown_measure = unknown_measure
        self.unknown_label = unknown_label
        self.group_rule = group_rule

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Build the class-conditional spectra from training spectra.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectrum values: one column for the paper's FlowSpectrum, more
            for a multi-dimensional one.

        y : array-like of shape (n_samples,)
            Class labels, of any type.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, used as frequencies: an integer weight is
            the same as repeating the session.  They weight the kernel
            densities and the empirical priors.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        weighted = sample_weight is not None
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        if self.algorithm == "grid" and X.shape[1] != 1:
            raise ValueError(
                "algorithm='grid' evaluates 1-D spectra only; X has "
                f"{X.shape[1]} features. Use algorithm='auto' or 'exact'."
            )
        self.classes_, codes = _encode_labels(y)
        n_classes = self.classes_.shape[0]
        self.class_count_ = np.bincount(
            codes, weights=sample_weight, minlength=n_classes
        )
        self.class_prior_ = self._check_prior(n_classes)
        if not np.any((self.class_prior_ > 0) & (self.class_count_ > 0)):
            raise ValueError(
                "No class has both a positive prior and a positive total "
                "sample weight; nothing could ever be predicted."
            )

        # Group the samples by class (a stable radix sort of small codes),
        # then sort each class by spectrum value (1-D).
        if weighted:
            keep = sample_weight > 0
            X, codes, sample_weight = X[keep], codes[keep], sample_weight[keep]
        small = np.uint8 if n_classes <= 256 else np.uint16
        if n_classes > 65536:
            small = np.intp
        order = np.argsort(codes.astype(small), kind="stable")
        X, sample_weight = X[order], sample_weight[order]
        bounds = np.concatenate(
            ([0], np.cumsum(np.bincount(codes, minlength=n_classes)))
        )

        lines, weights = [], []
        for r in range(n_classes):
            xr = X[bounds[r] : bounds[r + 1]]
            wr = sample_weight[bounds[r] : bounds[r + 1]]
            if X.shape[1] == 1:
                if weighted:
                    within = np.argsort(xr[:, 0], kind="stable")
                    xr, wr = xr[within], wr[within]
                else:  # all weights are 1: sorting the values is enough
                    xr = np.sort(xr, axis=0)
            lr, wr = distinct_lines(xr, wr)
            lines.append(lr)
            weights.append(wr)
        self.spectral_lines_ = lines
        self.line_weights_ = weights
        self.bandwidth_ = class_bandwidths(self.bandwidth, X, lines, weights)
        self._build_densities([self.algorithm] * n_classes)
        self.algorithm_ = np.array(
            ["none" if d is None else d.algorithm for d in self._densities]
        )
        if self.unknown_threshold is not None:
            self._unknown_label()  # fail early on a label clash
        if isinstance(self.unknown_threshold, str):  # "auto"
            self.unknown_threshold_ = self._learn_unknown_threshold(
                X, codes[order], sample_weight
            )
        elif self.unknown_threshold is None:
            self.unknown_threshold_ = None
        else:
            self.unknown_threshold_ = float(self.unknown_threshold)
        return self

    def _build_densities(self, algorithms):
        """The kernel densities of the fitted spectral lines, one per class.

        ``algorithms``: per class, ``"auto"``, ``"grid"`` or ``"exact"``
        (``"none"`` for a class without lines).  :func:`load_model` passes the
        fitted ``algorithm_``, which rebuilds the densities of ``fit``.
        """
        self._densities = [
            None if lr.shape[0] == 0 else ClassDensity(lr, wr, h, algorithm)
            for lr, wr, h, algorithm in zip(
                self.spectral_lines_, self.line_weights_, self.bandwidth_, algorithms
            )
        ]

    def _learn_unknown_threshold(self, X, codes, sample_weight):
        """The ``1 - unknown_rate`` quantile of held-out unknown scores
        (5 class-stratified folds, see ``unknown_threshold``); ``X``,
        ``codes`` and weights are the training samples grouped by class."""
        n = X.shape[0]
        # Grouped by class, dealt in turn: every class spread evenly.
        fold = np.arange(n) % _UNKNOWN_FOLDS
        y = self.classes_[codes]
        held_out = np.full(n, np.nan)
        inner = clone(self).set_params(unknown_threshold=None)
        for f in range(_UNKNOWN_FOLDS):
            test = fold == f
            if not test.any() or test.all():
                continue
            # Zero weights drop the held-out fold but keep every class (and
            # so the shape of a given class_prior).
            inner.fit(X, y, np.where(test, 0.0, sample_weight))
            held_out[test] = inner.unknown_score(X[test])
        scored = ~np.isnan(held_out)
        if not scored.any():
            raise ValueError(
                "unknown_threshold='auto' cannot learn a threshold from "
                f"{n} sample with positive weight; it needs at least two."
            )
        return _weighted_quantile(
            held_out[scored], sample_weight[scored], 1.0 - self.unknown_rate
        )

    def _check_prior(self, n_classes):
        if self.class_prior is None:
            return self.class_count_ / self.class_count_.sum()
        prior = np.asarray(self.class_prior, dtype=np.float64)
        if prior.shape != (n_classes,):
            raise ValueError(
                f"class_prior must have shape ({n_classes},), one prior per "
                f"class in classes_, got shape {prior.shape}."
            )
        if np.any(prior < 0) or not np.isclose(prior.sum(), 1.0):
            raise ValueError(
                f"class_prior must be non-negative and sum to 1, got {prior.tolist()}."
            )
        return prior

    def _joint_log_scores(self, X):
        """Unnormalised log posteriors ``log s_r(A)``, shape (n_classes, m),
        and the distance to the nearest known line of any class, shape (m,),
        both for the samples in the order ``order`` (None: as given).

        Large 1-D inputs are processed sorted (cache-friendly searches and
        gathers); callers put results back with ``_unsort``.
        """
        m, n_classes = X.shape[0], len(self._densities)
        order = _query_order(X)
        if order is not None:
            X = X[order]
        # One contiguous row per class: (n_classes, m).
        dist = np.empty((n_classes, m))
        idx = np.empty((n_classes, m), dtype=np.intp)
        for r, dens in enumerate(self._densities):
            if dens is None:
                dist[r], idx[r] = np.inf, 0
            else:
                dens.nearest(X, idx[r], dist[r], sorted_queries=order is not None)
        h = np.where(np.isfinite(self.bandwidth_), self.bandwidth_, 1.0)
        z_min = dist[0] / h[0]  # distance to the nearest class, in bandwidths
        for r in range(1, n_classes):
            np.minimum(z_min, dist[r] / h[r], out=z_min)
        if self.rule == "kde":
            use_kde = np.ones(m, dtype=bool)
        elif self.rule == "decay":
            use_kde = np.zeros(m, dtype=bool)
        else:
            use_kde = z_min <= _SEEN_RADIUS
        kde_rows, decay_rows = _rows(use_kde), _rows(~use_kde)
        # A class whose nearest line is more than the tail radius (in
        # bandwidths) farther than the row's nearest class cannot compete:
        # beyond that limit its kernel sum may be replaced by the
        # nearest-line bound.
        limit = z_min + TAIL_RADIUS
        with np.errstate(divide="ignore"):
            log_prior = np.log(self.class_prior_)
        scores = np.empty((n_classes, m))
        for r, dens in enumerate(self._densities):
            if dens is None:
                scores[r] = -np.inf
                continue
            if dens.algorithm == "grid" and kde_rows is not None:
                # All rows at once (cheaper than gathering rows); the decay
                # rows get the cheap bound here and are overwritten below.
                max_dist = limit * dens.h
                if decay_rows is not None:
                    max_dist[decay_rows] = -1.0
                scores[r] = dens.log_kde(
                    X, idx[r], dist[r], max_dist, sorted_queries=order is not None
                )
            elif kde_rows is not None:
                scores[r, kde_rows] = dens.log_kde(
                    X[kde_rows],
                    idx[r, kde_rows],
                    dist[r, kde_rows],
                    limit[kde_rows] * dens.h,
                )
            if decay_rows is not None:
                scores[r, decay_rows] = (
                    dens.log_kde_at_lines(idx[r, decay_rows])
                    - self.decay * dist[r, decay_rows]
                )
            scores[r] += log_prior[r]
        # Scores are only all -inf where squared distances overflow; fall
        # back to the priors there rather than returning nan.
        huge = np.flatnonzero(z_min > 1e100)
        if huge.shape[0]:
            lost = huge[~np.any(np.isfinite(scores[:, huge]), axis=0)]
            scores[:, lost] = log_prior[:, None]
        return scores, dist.min(axis=0), order

    def _validate_X(self, X):
        check_is_fitted(self)
        X = read_by_position(self, X, spectrum_feature_names)
        return validate_data(self, X, dtype=np.float64, reset=False)

    def predict_log_proba(self, X):
        """Log of the class posteriors ``log P(r | A)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectrum values.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log posteriors, columns in the order of ``classes_``.
        """
        scores, _, order = self._joint_log_scores(self._validate_X(X))
        log_proba = _log_normalize(scores).T
        if order is None:
            return np.ascontiguousarray(log_proba)
        out = np.empty_like(log_proba, order="C")
        out[order] = log_proba
        return out

    def predict_proba(self, X):
        """Class posteriors ``P(r | A)``; each row sums to 1.

        The reject option does not change them: they are the posteriors
        over the known classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectrum values.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Posteriors, columns in the order of ``classes_``.
        """
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Per-session decision: the class of highest posterior.

        Sessions whose :meth:`unknown_score` exceeds ``unknown_threshold_``
        get ``unknown_label`` instead.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectrum values.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        scores, min_dist, order = self._joint_log_scores(self._validate_X(X))
        labels = self._labels(_argmax_classes(scores), self._rejected(scores, min_dist))
        return _unsort(labels, order)

    def class_log_density(self, X):
        """Log kernel density of each class at each spectrum value.

        ``log kde_r(A)`` of Eqs. 20-21 (see Notes): the density of the
        class's training lines, with its bandwidth ``bandwidth_[r]``, before
        the prior and without the decay rule.  It is what the ``"kde"`` rule
        decides with, and what
        :func:`sklearn_flowspectrum.plotting.plot_spectrum_density` draws.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectrum values.

        Returns
        -------
        log_density : ndarray of shape (n_samples, n_classes)
            Log densities, columns in the order of ``classes_`` (-inf for a
            class with zero total weight).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_flowspectrum import FlowSpectrumClassifier
        >>> clf = FlowSpectrumClassifier(bandwidth=0.5).fit([[0.0], [4.0]], [0, 1])
        >>> density = np.exp(clf.class_log_density([[0.0]]))
        >>> bool(np.isclose(density[0, 0], 1 / (0.5 * np.sqrt(2 * np.pi))))
        True
        """
        X = self._validate_X(X)
        out = np.full((len(self._densities), X.shape[0]), -np.inf)
        for r, dens in enumerate(self._densities):
            if dens is not None:
                idx, dist = dens.nearest(X)
                out[r] = dens.log_kde(X, idx, dist)
        return np.ascontiguousarray(out.T)

    def nearest_line_distance(self, X):
        """Distance from each session to the nearest known line of each class.

        This is ``dist_r(A)`` of the decay rule; its row minimum is the
        unknown score of ``unknown_measure="distance"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectrum values.

        Returns
        -------
        dist : ndarray of shape (n_samples, n_classes)
            Euclidean distances (inf for a class with zero total weight).
        """
        X = self._validate_X(X)
        order = _query_order(X)
        if order is not None:
            X = X[order]
        dist = np.full((len(self._densities), X.shape[0]), np.inf)
        idx = np.empty(X.shape[0], dtype=np.intp)
        for r, dens in enumerate(self._densities):
            if dens is not None:
                dens.nearest(X, idx, dist[r], sorted_queries=order is not None)
        return np.ascontiguousarray(_unsort(dist, order).T)

    # -- set-level decision (Eqs. 3-6) -----------------------------------------
    def _group_log_proba(self, scores, codes, n_groups):
        """Group log posteriors, shape (n_classes, n_groups), from per-session
        log scores of shape (n_classes, m) (see group_rule)."""
        n_classes = scores.shape[0]
        out = np.empty((n_classes, n_groups))
        if self.group_rule == "product":
            with np.errstate(divide="ignore"):
                log_prior = np.log(self.class_prior_)
            for r in range(n_classes):
                if np.isfinite(log_prior[r]):
                    out[r] = log_prior[r] + np.bincount(
                        codes, weights=scores[r] - log_prior[r], minlength=n_groups
                    )
                else:
                    out[r] = -np.inf
        else:
            proba = np.exp(_log_normalize(scores))
            sizes = np.bincount(codes, minlength=n_groups)
            for r in range(n_classes):
                out[r] = np.bincount(codes, weights=proba[r], minlength=n_groups)
            with np.errstate(divide="ignore"):
                out = np.log(out / sizes)
        return _log_normalize(out)

    def _group_decision(self, scores, min_dist, codes, n_groups):
        log_proba = self._group_log_proba(scores, codes, n_groups)
        # A group is unknown when more than half of its sessions are.
        rejected = np.bincount(
            codes, weights=self._rejected(scores, min_dist), minlength=n_groups
        )
        rejected = rejected > 0.5 * np.bincount(codes, minlength=n_groups)
        return self._labels(_argmax_classes(log_proba), rejected), log_proba

    def _validate_groups(self, X, groups):
        X = self._validate_X(X)
        groups = np.asarray(groups)
        if groups.ndim != 1 or groups.shape[0] != X.shape[0]:
            raise ValueError(
                f"groups must be 1-D with one entry per session ({X.shape[0]}), "
                f"got shape {groups.shape}."
            )
        uniq, codes = np.unique(groups, return_inverse=True)
        return X, codes.reshape(-1), uniq.shape[0]

    def _group_scores(self, X, groups):
        """Per-session log scores and nearest-line distances of ``X``, with
        the group codes in the same (query) order as their columns."""
        X, codes, n_groups = self._validate_groups(X, groups)
        scores, min_dist, order = self._joint_log_scores(X)
        if order is not None:
            codes = codes[order]
        return scores, min_dist, codes, n_groups

    def predict_groups(self, X, groups):
        """Set-level decision: one label per group of sessions (Eqs. 3-6).

        All sessions of a group are assumed to share one class; how their
        evidence is combined is set by ``group_rule``.  A group is predicted
        as ``unknown_label`` when more than half of its sessions are rejected
        (only with ``unknown_threshold`` set).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectrum values.

        groups : array-like of shape (n_samples,)
            Group identifier of each session.

        Returns
        -------
        y_pred : ndarray of shape (n_groups,)
            One label per group, groups in the order of ``np.unique(groups)``.
        """
        scores, min_dist, codes, n_groups = self._group_scores(X, groups)
        return self._group_decision(scores, min_dist, codes, n_groups)[0]

    def predict_groups_proba(self, X, groups):
        """Set-level posteriors: one row per group of sessions (Eqs. 3-6).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectrum values.

        groups : array-like of shape (n_samples,)
            Group identifier of each session.

        Returns
        -------
        proba : ndarray of shape (n_groups, n_classes)
            Group posteriors (rows sum to 1), groups in the order of
            ``np.unique(groups)``, columns in the order of ``classes_``.
        """
        scores, _, codes, n_groups = self._group_scores(X, groups)
        return np.exp(self._group_log_proba(scores, codes, n_groups).T)

    def predict_groups_by_index(self, X, indices):
        """Set-level decision for groups given as row numbers of ``X``.

        The same decision as :meth:`predict_groups`, for groups that share
        sessions: every session of ``X`` is scored once, however many groups
        it is in, and each group combines the scores of its rows.  This is
        how :func:`~sklearn_flowspectrum.group_of_k_accuracy_score` scores
        thousands of groups drawn with replacement from one test set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectrum values.

        indices : array-like of int of shape (n_groups, k)
            Row ``g`` holds the row numbers in ``X`` of the ``k`` sessions of
            group ``g``; a row number may appear in several groups and more
            than once in one.

        Returns
        -------
        y_pred : ndarray of shape (n_groups,)
            One label per group, in the order of the rows of ``indices``
            (``unknown_label`` for a group more than half of whose sessions
            are rejected).

        Examples
        --------
        >>> from sklearn_flowspectrum import FlowSpectrumClassifier
        >>> clf = FlowSpectrumClassifier().fit([[-1.0], [-0.9], [1.0], [1.1]],
        ...                                    ["chat", "chat", "voip", "voip"])
        >>> X_test = [[-1.0], [-0.8], [1.2]]
        >>> clf.predict_groups_by_index(X_test, [[0, 1], [2, 2], [0, 0]])
        array(['chat', 'voip', 'chat'], dtype='<U4')
        """
        X = self._validate_X(X)
        indices = np.asarray(indices)
        if indices.ndim != 2 or indices.shape[1] == 0:
            raise ValueError(
                "indices must be 2-D (n_groups, k) with k >= 1 row numbers per "
                f"group, got shape {indices.shape}."
            )
        if indices.size and indices.dtype.kind not in "iu":
            raise ValueError(
                f"indices must hold integer row numbers, got dtype {indices.dtype}."
            )
        if indices.size and (indices.min() < 0 or indices.max() >= X.shape[0]):
            raise ValueError(
                f"indices must be row numbers of X, in 0..{X.shape[0] - 1}; got "
                f"values from {indices.min()} to {indices.max()}."
            )
        scores, min_dist, order = self._joint_log_scores(X)
        scores, min_dist = _unsort(scores, order), _unsort(min_dist, order)
        n_groups, k = indices.shape
        rows = indices.reshape(-1)
        codes = np.repeat(np.arange(n_groups), k)
        labels, _ = self._group_decision(
            scores[:, rows], min_dist[rows], codes, n_groups
        )
        return labels

    # -- reject option --------------------------------------------------------
    def unknown_score(self, X):
        """How unlike every known class each session is (higher: more unknown).

        The measure is set by ``unknown_measure``; ``predict`` rejects the
        sessions whose score exceeds ``unknown_threshold_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectrum values.

        Returns
        -------
        score : ndarray of shape (n_samples,)
            The distance to the nearest known line (``"distance"``),
            ``-log sum_r s_r(A)`` (``"density"``) or ``1 - max_r P(r | A)``
            (``"posterior"``); may be ``inf``.
        """
        scores, min_dist, order = self._joint_log_scores(self._validate_X(X))
        return _unsort(self._unknown_scores(scores, min_dist), order)

    def _unknown_scores(self, scores, min_dist):
        """Unknown scores from the joint log scores and nearest distances."""
        measure = getattr(self, "unknown_measure", "distance")
        if measure == "distance":
            return min_dist.copy()
        if measure == "posterior":
            return -np.expm1(_log_normalize(scores).max(axis=0))
        out = -logsumexp_rows(scores.T)
        # Where squared distances overflow, the scores fall back to the
        # priors (see _joint_log_scores): such a value is as unknown as any.
        h_min = np.nanmin(self.bandwidth_)
        out[(min_dist > 1e100 * h_min) | ~np.isfinite(min_dist)] = np.inf
        return out

    def _rejected(self, scores, min_dist):
        """Boolean mask of the rejected sessions (all False without a
        threshold)."""
        threshold = self._threshold()
        if threshold is None:
            return np.zeros(min_dist.shape[0], dtype=bool)
        return self._unknown_scores(scores, min_dist) > threshold

    def rejection_label(self):
        """The label :meth:`predict` gives rejected sessions, or None.

        None when no threshold is in effect (``unknown_threshold=None``);
        otherwise ``unknown_label``, or its default for these classes
        (``"unknown"`` for string or object classes, ``-1`` for numbers).  A
        number set as ``unknown_threshold`` on a fitted classifier counts at
        once, as it does in :meth:`predict`.

        Returns
        -------
        label : str, int, float or None
            What rejected sessions are labelled.

        Raises
        ------
        ValueError
            When that label is also a class label.

        Examples
        --------
        >>> from sklearn_flowspectrum import FlowSpectrumClassifier
        >>> clf = FlowSpectrumClassifier().fit([[0.0], [1.0]], [3, 5])
        >>> clf.rejection_label() is None
        True
        >>> clf.set_params(unknown_threshold=0.5).rejection_label()
        -1
        """
        if self._threshold() is None:
            return None
        check_is_fitted(self)
        return self._unknown_label()

    def _threshold(self):
        # A number takes effect without refitting (thresholds are tuned on a
        # fitted model); "auto" is the one learned in fit.
        threshold = self.unknown_threshold
        if isinstance(threshold, str):
            return getattr(self, "unknown_threshold_", None)
        return None if threshold is None else float(threshold)

    def _unknown_label(self):
        label = self.unknown_label
        if label is None:
            label = -1 if self.classes_.dtype.kind in "iuf" else "unknown"
        if np.any(self.classes_ == np.asarray(label, dtype=object)):
            raise ValueError(
                f"unknown_label {label!r} is also a class label; pass another "
                "unknown_label."
            )
        return label

    def _labels(self, class_idx, rejected):
        labels = self.classes_[class_idx]
        if self._threshold() is None:
            return labels
        label = self._unknown_label()
        kind = self.classes_.dtype.kind
        if kind in "iuf" and isinstance(label, numbers.Real):
            dtype = np.result_type(self.classes_.dtype, np.min_scalar_type(label))
        elif kind == "U" and isinstance(label, str):
            dtype = np.result_type(self.classes_.dtype, np.asarray(label).dtype)
        else:
            dtype = object
        labels = labels.astype(dtype)
        labels[rejected] = label
        return labels
