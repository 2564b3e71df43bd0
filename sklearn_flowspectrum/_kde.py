# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""The 1-D (and k-D) kernel density engine of the FlowSpectrum decision.

One :class:`ClassDensity` per class holds that class's spectral lines and
evaluates its Gaussian kernel density: on a fine grid for 1-D spectra, by
exact sums otherwise, with the nearest-line search the decay rule needs.
:func:`class_bandwidths` holds the bandwidth rules and :func:`distinct_lines`
turns training spectra into lines.  :class:`FlowSpectrumClassifier
<sklearn_flowspectrum.FlowSpectrumClassifier>` decides with these densities,
and :func:`~sklearn_flowspectrum.plotting.plot_spectrum_density` draws them
through the classifier's ``class_log_density``.  The grid's accuracy is
documented in the classifier's Notes.
"""

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

__all__ = [
    "TAIL_RADIUS",
    "ClassDensity",
    "class_bandwidths",
    "distinct_lines",
    "logsumexp_rows",
]

# Grid evaluation of the 1-D densities (see FlowSpectrumClassifier, "Notes").
_GRID_STEPS_PER_BANDWIDTH = 32  # grid step = bandwidth / 32
_KERNEL_RADIUS = 12  # kernel truncated at 12 bandwidths: exp(-72) ~ 5e-32
TAIL_RADIUS = 8  # beyond 8 bandwidths from every line: tail evaluation
_TAIL_WINDOW = 4  # tail uses the lines within 4 bandwidths of the nearest ones
_MAX_GRID_NODES = 2**21  # per class; larger grids fall back to exact sums
# Exact sums are done in chunks of at most this many (query, line) pairs.
_CHUNK_PAIRS = 2**21
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
_LOG_FLOOR = -1e300  # finite stand-in for log(0) on the grid


def logsumexp_rows(a):
    """Row-wise log(sum(exp(a))), -inf for all -inf rows; faster than scipy's."""
    m = np.max(a, axis=1)
    finite = np.isfinite(m)
    shift = np.where(finite, m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - shift[:, None]), axis=1))
    out += shift
    out[~finite] = m[~finite]
    return out


def distinct_lines(x, w):
    """The distinct rows of training spectra ``x`` (n, k) and their summed
    weights ``w``; ``x`` must be sorted ascending when ``k == 1``."""
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


def _isotropic_scale(lines, weights):
    """Weighted isotropic standard deviation: sqrt of the mean per-feature
    variance (population form, weights as frequencies)."""
    mean = np.average(lines, axis=0, weights=weights)
    var = np.average((lines - mean) ** 2, axis=0, weights=weights)
    return float(np.sqrt(var.mean()))


def class_bandwidths(bandwidth, X, lines, weights):
    """The kernel bandwidth of each class: ``bandwidth`` itself, or the rule
    of thumb it names (``"scott"`` or ``"silverman"``) on each class's lines.

    ``X`` is all training data (the last fallback spread for a class with
    zero spread); a class without lines gets nan.  The rules are those of
    the ``bandwidth`` parameter of
    :class:`~sklearn_flowspectrum.FlowSpectrumClassifier`.
    """
    n_classes = len(lines)
    if not isinstance(bandwidth, str):
        return np.where([lr.shape[0] > 0 for lr in lines], float(bandwidth), np.nan)
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
        if bandwidth == "scott":
            factor = totals ** (-1.0 / (k + 4))
        else:
            factor = (totals * (k + 2) / 4.0) ** (-1.0 / (k + 4))
        out = np.where(present, sigmas * factor, np.nan)
    return out.reshape(n_classes)


class ClassDensity:
    """Spectral lines of one class and the evaluation of its kernel density.

    ``lines`` are the distinct training spectra of the class (sorted ascending
    in 1-D), ``weights`` their summed sample weights, ``h`` the bandwidth.
    The density is ``kde(a) = sum_j w_j phi_h(a - x_j) / sum_j w_j`` with the
    isotropic Gaussian kernel ``phi_h(u) = (2 pi h^2)^(-k/2) exp(-|u|^2/(2h^2))``.
    ``algorithm`` is the classifier's parameter: ``"grid"`` or ``"auto"``
    build the 1-D grid when it fits, ``"exact"`` sums over the lines.

    Fitted classifiers pickle these objects with their attributes, so a
    renamed attribute breaks the models saved before.
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
        reach = TAIL_RADIUS * self.h
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
        far = dist > TAIL_RADIUS * self.h
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
            out[start : start + step] = logsumexp_rows(sq)
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
        return logsumexp_rows(np.concatenate(windows, axis=1)) + self.log_norm
