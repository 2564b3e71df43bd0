# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""The FlowSpectrum Bayesian decision (section 3.2 of the AMAE paper).

Spectra -> decisions: class-conditional Gaussian kernel densities over the
training spectral lines, class priors, the exponential decay rule for spectrum
values not seen in training, a set-level (group) decision, and an optional
"unknown" outcome.  Pure numpy/scipy: no torch, no capture code.
"""

import numbers
import warnings

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from sklearn_flowspectrum._validation import read_by_position, spectrum_feature_names

__all__ = [
    "FlowSpectrumClassifier",
    "group_of_k_accuracy_score",
    "make_group_of_k_scorer",
]

# Grid evaluation of the 1-D densities (see the class docstring, "Notes").
_GRID_STEPS_PER_BANDWIDTH = 32  # grid step = bandwidth / 32
_KERNEL_RADIUS = 12  # kernel truncated at 12 bandwidths: exp(-72) ~ 5e-32
_TAIL_RADIUS = 8  # beyond 8 bandwidths from every line: tail evaluation
_TAIL_WINDOW = 4  # tail uses the lines within 4 bandwidths of the nearest ones
_MAX_GRID_NODES = 2**21  # per class; larger grids fall back to exact sums
# "kde+decay": a value is "seen" when it lies within this many bandwidths of a
# training line of some class.
_SEEN_RADIUS = 3.0
# Exact sums are done in chunks of at most this many (query, line) pairs.
_CHUNK_PAIRS = 2**21
# Sort 1-D queries first when there are at least this many (cache-friendly
# binary searches and gathers).
_SORT_QUERIES_FROM = 4096
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
_LOG_FLOOR = -1e300  # finite stand-in for log(0) on the grid
# unknown_threshold="auto": class-stratified folds of the held-out scores.
_UNKNOWN_FOLDS = 5


def _logsumexp_rows(a):
    """Row-wise log(sum(exp(a))), -inf for all -inf rows; faster than scipy's."""
    m = np.max(a, axis=1)
    finite = np.isfinite(m)
    shift = np.where(finite, m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - shift[:, None]), axis=1))
    out += shift
    out[~finite] = m[~finite]
    return out


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


class _ClassDensity:
    """Spectral lines of one class and the evaluation of its kernel density.

    ``lines`` are the distinct training spectra of the class (sorted ascending
    in 1-D), ``weights`` their summed sample weights, ``h`` the bandwidth.
    The density is ``kde(a) = sum_j w_j phi_h(a - x_j) / sum_j w_j`` with the
    isotropic Gaussian kernel ``phi_h(u) = (2 pi h^2)^(-k/2) exp(-|u|^2/(2h^2))``.
    """

    def __init__(self, lines, weights, h, algorithm):
        self.lines = lines
        self.weights = weights
        self.h = float(h)
        n_features = lines.shape[1]
        self.log_w = np.log(weights)
        # log of 1 / (W (2 pi)^(k/2) h^k)
        self.log_norm = -np.log(weights.sum()) - n_features * (
            _LOG_SQRT_2PI + np.log(self.h)
        )
        self.tree = cKDTree(lines) if n_features > 1 else None
        if n_features == 1:
            # Sentinels make the nearest-line search branch-free: with
            # right = searchsorted(upper, a), lower[right] < a <= upper[right].
            self.upper = np.concatenate(([-np.inf], lines[:, 0], [np.inf]))
            self.lower = np.concatenate(([-np.inf], self.upper[:-1]))
        self.algorithm = "exact"
        if n_features == 1 and algorithm in ("auto", "grid"):
            if self._build_grid():
                self.algorithm = "grid"
            elif algorithm == "grid":
                raise ValueError(
                    "algorithm='grid' needs more than "
                    f"{_MAX_GRID_NODES} grid nodes for a class whose spectral "
                    f"lines span {np.ptp(lines):.6g} with bandwidth {self.h:.6g}; "
                    "use algorithm='auto' or 'exact', or a larger bandwidth."
                )

    # -- nearest line -------------------------------------------------------
    def nearest(self, A, idx=None, dist=None, sorted_queries=False):
        """Index of the nearest line and the Euclidean distance to it
        (written into ``idx`` and ``dist`` when given).

        With ``sorted_queries`` (1-D queries in ascending order), those below
        the first line or above the last are done without a search.
        """
        if sorted_queries and self.tree is None:
            a = A[:, 0]
            x = self.lines[:, 0]
            lo = np.searchsorted(a, x[0], side="left")
            hi = np.searchsorted(a, x[-1], side="right")
            if idx is None:
                idx, dist = np.empty(a.shape[0], dtype=np.intp), np.empty_like(a)
            idx[:lo], idx[hi:] = 0, x.shape[0] - 1
            np.subtract(x[0], a[:lo], out=dist[:lo])
            np.subtract(a[hi:], x[-1], out=dist[hi:])
            self.nearest(A[lo:hi], idx[lo:hi], dist[lo:hi])
            return idx, dist
        if self.tree is not None:
            d, i = self.tree.query(A, k=1)
            if idx is None:
                return i.astype(np.intp), d
            idx[...], dist[...] = i, d
            return idx, dist
        a = A[:, 0]
        right = np.searchsorted(self.upper, a)
        d_left = self.lower.take(right)
        np.subtract(a, d_left, out=d_left)
        d_right = self.upper.take(right)
        d_right -= a
        # right - 2 is the index (in self.lines) of the line left of a
        idx = np.subtract(right, 2, out=idx)
        idx += d_right < d_left
        dist = np.minimum(d_left, d_right, out=dist)
        return idx, dist

    # -- density ------------------------------------------------------------
    def log_kde(self, A, idx, dist, max_dist=None, sorted_queries=False):
        """log kde(A) for queries A (m, k), given their nearest lines.

        Grid only: where A lies beyond the tail radius and ``dist >
        max_dist``, the nearest-line lower bound ``log(w'/W) + log
        phi_h(dist)`` replaces the sum (for classes that cannot compete).
        With ``sorted_queries`` (1-D, ascending), the queries beyond the tail
        radius of the first or last line skip the grid interpolation.
        """
        if self.algorithm == "exact":
            return self._log_kde_exact(A)
        a = A[:, 0]
        if max_dist is None:
            max_dist = np.full_like(a, np.inf)
        if not sorted_queries:
            return self._log_kde_grid(a, idx, dist, max_dist)
        x = self.lines[:, 0]
        reach = _TAIL_RADIUS * self.h
        lo = np.searchsorted(a, x[0] - reach, side="left")
        hi = np.searchsorted(a, x[-1] + reach, side="right")
        out = np.empty_like(a)
        inner = slice(lo, hi)
        out[inner] = self._log_kde_grid(
            a[inner], idx[inner], dist[inner], max_dist[inner]
        )
        for outer in (slice(0, lo), slice(hi, a.shape[0])):
            out[outer] = self._bound(idx[outer], dist[outer])
            tail = np.flatnonzero(dist[outer] <= max_dist[outer]) + outer.start
            if tail.shape[0]:
                out[tail] = self._log_kde_tail(a[tail], idx[tail])
        return out

    def _bound(self, idx, dist):
        """Nearest-line lower bound of log kde: log(w'/W) + log phi_h(dist)."""
        bound = dist / self.h
        bound *= bound
        bound *= -0.5
        bound += self.log_w.take(idx)
        bound += self.log_norm
        return bound

    def _log_kde_grid(self, a, idx, dist, max_dist):
        out = self._interpolate(a, idx)  # meaningless where far
        far = dist > _TAIL_RADIUS * self.h
        if not far.any():
            return out
        # Branch-free: the bound everywhere, kept where far (cheaper than
        # gathering the far rows, often most of them for a distant class).
        np.copyto(out, self._bound(idx, dist), where=far)
        tail = np.flatnonzero(far & (dist <= max_dist))
        if tail.shape[0]:
            out[tail] = self._log_kde_tail(a[tail], idx[tail])
        return out

    def log_kde_at_lines(self, idx):
        """log kde at the training lines ``self.lines[idx]``."""
        if self.algorithm == "grid":
            return self.log_kde_lines_grid[idx]
        # Evaluate each distinct line once: at most min(m, n_lines) sums.
        uniq, inverse = np.unique(idx, return_inverse=True)
        return self._log_kde_exact(self.lines[uniq])[inverse.reshape(-1)]

    def _log_kde_exact(self, A):
        n_lines = self.lines.shape[0]
        out = np.empty(A.shape[0])
        step = max(1, _CHUNK_PAIRS // n_lines)
        scale = 0.5 / self.h**2
        for start in range(0, A.shape[0], step):
            sq = cdist(A[start : start + step], self.lines, "sqeuclidean")
            sq *= -scale
            sq += self.log_w
            out[start : start + step] = _logsumexp_rows(sq)
        return out + self.log_norm

    # -- grid (1-D) ---------------------------------------------------------
    def _build_grid(self):
        """Bin the lines on a fine grid and smooth them with the kernel.

        Lines are split into clusters separated by more than two kernel radii,
        each with its own stretch of grid (so an empty range costs nothing);
        the stretches are concatenated with zero margins at least one kernel
        radius wide, so one direct convolution smooths all of them exactly.
        Returns False (and builds nothing) when the grid would be too large.
        """
        x = self.lines[:, 0]
        h = self.h
        G = _GRID_STEPS_PER_BANDWIDTH
        R = _KERNEL_RADIUS * G  # kernel radius in grid steps
        step = h / G
        split = np.flatnonzero(np.diff(x) > 2 * _KERNEL_RADIUS * h) + 1
        starts = np.concatenate(([0], split))
        ends = np.concatenate((split, [x.shape[0]]))
        origin = x[starts] - (R + 1) * step
        spans = np.floor((x[ends - 1] - origin) / step)
        if not np.all(np.isfinite(spans)):
            return False
        n_nodes = spans.astype(np.int64) + R + 3
        if n_nodes.sum() > _MAX_GRID_NODES:
            return False
        offsets = np.concatenate(([0], np.cumsum(n_nodes)[:-1]))
        cluster = np.repeat(np.arange(starts.shape[0]), ends - starts)

        # Linear binning: each line's weight split between its two nodes.
        line_origin = origin[cluster]
        line_offset = offsets[cluster]
        pos = (x - line_origin) / step
        j = np.floor(pos)
        t = pos - j
        node = line_offset + j.astype(np.intp)
        total = int(n_nodes.sum())
        counts = np.bincount(node, weights=self.weights * (1.0 - t), minlength=total)
        counts += np.bincount(node + 1, weights=self.weights * t, minlength=total)
        taps = np.exp(-0.5 * (np.arange(-R, R + 1) / G) ** 2)
        smooth = np.convolve(counts, taps, mode="same")
        with np.errstate(divide="ignore"):
            self.log_counts = np.log(counts)
            log_density = np.log(smooth) + self.log_norm
        # Nodes beyond the kernel's reach (never interpolated for a value
        # within the tail radius) get a finite floor: no inf arithmetic.
        log_density[smooth <= 0] = _LOG_FLOOR

        self.step = step
        self.single = starts.shape[0] == 1
        self.origin = float(origin[0])
        self.line_origin = line_origin
        self.line_offset = line_offset
        self.line_node = node
        self.log_density = log_density
        self.log_density_next = np.append(log_density[1:], _LOG_FLOOR)
        self.log_kde_lines_grid = self._interpolate(x, np.arange(x.shape[0]))
        return True

    def _interpolate(self, a, idx):
        """Linear interpolation of the log density around the nearest line
        ``idx`` (only meaningful within the tail radius of it)."""
        if self.single:
            pos = a - self.origin
            pos /= self.step
        else:
            pos = a - self.line_origin.take(idx)
            pos /= self.step
            pos += self.line_offset.take(idx)
        np.clip(pos, 0, self.log_density.shape[0] - 2, out=pos)
        t, node = np.modf(pos, out=(pos, np.empty_like(pos)))
        node = node.astype(np.intp)
        lo = self.log_density.take(node)
        out = self.log_density_next.take(node)
        out -= lo
        out *= t
        out += lo
        return out

    def _log_kde_tail(self, a, idx):
        """log kde far from every line, from the binned lines near the
        nearest line on each side (the rest are exp(-40) smaller)."""
        # right: position of a among the lines (as np.searchsorted gives it)
        right = idx + (self.lines[idx, 0] < a)
        out = np.empty_like(a)
        step = 2**14  # bounds the (chunk, 2 * window) temporaries
        for start in range(0, a.shape[0], step):
            chunk = slice(start, start + step)
            out[chunk] = self._log_kde_tail_chunk(a[chunk], right[chunk])
        return out

    def _log_kde_tail_chunk(self, a, i):
        n = self.lines.shape[0]
        G = _GRID_STEPS_PER_BANDWIDTH
        width = _TAIL_WINDOW * G + 2
        # Left window: nodes node(x_L) - 4G .. node(x_L) + 1; right window:
        # node(x_R) .. node(x_R) + 4G + 1.  Margins keep both in the stretch.
        left = np.maximum(i - 1, 0)
        right = np.minimum(i, n - 1)
        ar = np.arange(width)
        windows = []
        for line, start, present in (
            (left, -_TAIL_WINDOW * G, i > 0),
            (right, 0, i < n),
        ):
            nodes = self.line_node[line][:, None] + (start + ar)
            node_x = self.line_origin[line][:, None] + self.step * (
                nodes - self.line_offset[line][:, None]
            )
            terms = self.log_counts[nodes] - 0.5 * ((a[:, None] - node_x) / self.h) ** 2
            terms[~present] = -np.inf
            windows.append(terms)
        return _logsumexp_rows(np.concatenate(windows, axis=1)) + self.log_norm


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


def _isotropic_scale(lines, weights):
    """Weighted isotropic standard deviation: sqrt of the mean per-feature
    variance (population form, weights as frequencies)."""
    mean = np.average(lines, axis=0, weights=weights)
    var = np.average((lines - mean) ** 2, axis=0, weights=weights)
    return float(np.sqrt(var.mean()))


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
            lr, wr = self._distinct_lines(xr, wr)
            lines.append(lr)
            weights.append(wr)
        self.spectral_lines_ = lines
        self.line_weights_ = weights
        self.bandwidth_ = self._bandwidths(X, lines, weights)
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
            None if lr.shape[0] == 0 else _ClassDensity(lr, wr, h, algorithm)
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

    @staticmethod
    def _distinct_lines(x, w):
        """Distinct lines and summed weights (x sorted for 1-D)."""
        if x.shape[0] == 0:
            return x, w
        if x.shape[1] == 1:
            new = np.empty(x.shape[0], dtype=bool)
            new[0] = True
            np.not_equal(x[1:, 0], x[:-1, 0], out=new[1:])
            starts = np.flatnonzero(new)
            return x[starts], np.add.reduceat(w, starts)
        uniq, inverse = np.unique(x, axis=0, return_inverse=True)
        return uniq, np.bincount(inverse.reshape(-1), weights=w)

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

    def _bandwidths(self, X, lines, weights):
        n_classes = len(lines)
        if not isinstance(self.bandwidth, str):
            return np.where(
                [lr.shape[0] > 0 for lr in lines], float(self.bandwidth), np.nan
            )
        k = X.shape[1]
        sigmas = np.array(
            [
                _isotropic_scale(lr, wr) if lr.shape[0] else np.nan
                for lr, wr in zip(lines, weights)
            ]
        )
        totals = np.array([wr.sum() for wr in weights])
        present = totals > 0
        # Fallbacks for classes with zero spread: pooled within-class spread,
        # then the spread of all data, then 1.
        pooled = np.sqrt(
            np.sum(totals[present] * sigmas[present] ** 2) / totals[present].sum()
        )
        fallback = pooled
        if not fallback > 0:
            fallback = _isotropic_scale(X, np.ones(X.shape[0]))
        if not fallback > 0:
            fallback = 1.0
        sigmas = np.where(present & ~(sigmas > 0), fallback, sigmas)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.bandwidth == "scott":
                factor = totals ** (-1.0 / (k + 4))
            else:
                factor = (totals * (k + 2) / 4.0) ** (-1.0 / (k + 4))
            out = np.where(present, sigmas * factor, np.nan)
        return out.reshape(n_classes)

    # -- scores ---------------------------------------------------------------
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
        limit = z_min + _TAIL_RADIUS
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
        out = -_logsumexp_rows(scores.T)
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


# -- the authors' group-of-k protocol -------------------------------------------
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

    The group decision is ``predict_groups`` of a
    :class:`FlowSpectrumClassifier` (or of the last step of a
    :class:`~sklearn.pipeline.Pipeline` ending in one); for any other
    classifier, the mean of its ``predict_proba`` over the group (soft
    vote).  A group rejected as unknown counts as an error.

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
    small = _classes_under(y, k)
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
    codes = np.repeat(np.arange(n_groups), k)
    final, Xt = _final_step(estimator, X)
    if isinstance(final, FlowSpectrumClassifier):
        # Score every test session once, then aggregate the drawn groups.
        scores, min_dist, order = final._joint_log_scores(final._validate_X(Xt))
        scores, min_dist = _unsort(scores, order), _unsort(min_dist, order)
        flat = draws.reshape(-1)
        pred, _ = final._group_decision(
            scores[:, flat], min_dist[flat], codes, n_groups
        )
    elif hasattr(final, "predict_proba"):
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


def _classes_under(y, k):
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
