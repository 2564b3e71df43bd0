"""Faithfulness of explanations: deletion curves and model randomisation.

An attribution is only worth reading if the bytes it ranks high are the
bytes the model uses.  Two checks, from the literature on saliency maps:

- :func:`deletion_curve`: blank (zero) the top ``k`` % of each session's
  bytes in the order an explanation ranks them and score the pipeline
  again.  A faithful order makes accuracy fall faster than a random order
  (Samek et al. 2017; Petsiuk et al. 2018).  Two baselines ship with it:
  ``"random"`` (a random order per session) and ``"class_attention"`` (the
  embedder's class-average attention ``attention_weights_`` of the class
  predicted for the session, the paper's Figures 7-10 used as an order).
- :func:`randomization_check`: the same explanations of a network whose
  weights were drawn afresh (Adebayo et al. 2018).  An explanation that
  survives randomisation describes the input or the architecture, not what
  the trained model learned; a low rank correlation is what one wants.

Both rank bytes by the absolute value of their attribution; ties are
broken at random, so that a constant stretch (a field's occlusion share, a
row of near-constant attention) is not read in byte order.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import copy
import numbers

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.utils import check_random_state

__all__ = ["deletion_curve", "randomization_check"]

_BASELINES = ("random", "class_attention")


def _fractions(fractions):
    if fractions is None:
        return np.arange(1, 51) / 100.0
    fractions = np.asarray(fractions, dtype=float).ravel()
    if fractions.size == 0 or (fractions <= 0).any() or (fractions > 1).any():
        raise ValueError("fractions must lie in (0, 1]")
    return np.unique(fractions)


def _methods(methods):
    from sklearn_flowspectrum._explain import METHODS

    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown methods {bad}; choose from {METHODS}")
    return methods


def _order(scores, rng):
    """Byte positions of each row, highest score first, ties at random."""
    tiebreak = rng.random(scores.shape)
    return np.lexsort((tiebreak, -scores), axis=-1)


def deletion_curve(
    estimator,
    X,
    y,
    *,
    methods=("gradients", "occlusion", "attention"),
    baselines=_BASELINES,
    fractions=None,
    explain_params=None,
    random_state=None,
):
    """Per-session accuracy as the top-ranked bytes of each session are blanked.

    Parameters
    ----------
    estimator : Pipeline or AMAESpectrumEmbedder
        Fitted; a pipeline predicts with its final step, an embedder alone
        with its own classification head.
    X : array-like or DataFrame
        Sessions (or images) as ``estimator`` takes them.
    y : array-like of shape (n_sessions,)
        True labels.
    methods : str or sequence of str, default=("gradients", "occlusion", \
"attention")
        Methods of :func:`sklearn_flowspectrum.explain` whose orders to score.
    baselines : sequence of {"random", "class_attention"}, default=both
        Orders that need no explanation of the session.
    fractions : array-like of float, default=None
        Shares of the ``n_bytes`` positions to blank, in (0, 1]; None:
        1% to 50% in steps of 1%.  ``round(fraction * n_bytes)`` bytes
        (at least one) are blanked per session.
    explain_params : dict, default=None
        Passed to :func:`~sklearn_flowspectrum.explain` (e.g. ``n_steps``).
    random_state : int, RandomState instance or None, default=None
        Seeds the random order and the tie breaking.

    Returns
    -------
    curve : DataFrame
        One row per order and fraction (and the intact images at
        ``percent=0``): ``order``, ``percent``, ``n_blanked`` (bytes per
        session), ``accuracy`` (per session, on all of ``X``).

    See Also
    --------
    randomization_check : Do the maps depend on the trained weights?
    """
    from sklearn_flowspectrum._explain import PipelineParts, explain

    methods = _methods(methods)
    baselines = tuple(baselines)
    bad = [b for b in baselines if b not in _BASELINES]
    if bad:
        raise ValueError(f"unknown baselines {bad}; choose from {_BASELINES}")
    fractions = _fractions(fractions)
    rng = check_random_state(random_state)
    parts = PipelineParts(estimator)
    images = parts.images(X)
    y = np.asarray(y)
    if len(y) != len(images):
        raise ValueError(f"X has {len(images)} sessions, y has {len(y)} labels")
    n, n_bytes = images.shape
    params = dict(explain_params or {})

    orders = {}
    for m in methods:
        orders[m] = np.abs(explain(estimator, X, method=m, **params))
    if "random" in baselines:
        orders["random"] = rng.random((n, n_bytes))
    if "class_attention" in baselines:
        emb = parts.embedder
        if "attention_weights_" not in emb.__dict__:
            raise ValueError("class_attention needs an embedder with attention")
        weights = emb.attention_weights_
        if len(weights) == 1:
            orders["class_attention"] = np.tile(weights[0], (n, 1))
        else:
            predicted = parts.predict(images)
            index = {c: i for i, c in enumerate(emb.classes_.tolist())}
            rows = np.array([index[c] for c in np.asarray(predicted).tolist()])
            orders["class_attention"] = weights[rows]

    records = [
        {
            "order": "none",
            "percent": 0.0,
            "n_blanked": 0,
            "accuracy": float(np.mean(parts.predict(images) == y)),
        }
    ]
    counts = np.maximum(np.rint(fractions * n_bytes).astype(int), 1)
    rows = np.arange(n)[:, None]
    for name, scores in orders.items():
        ranked = _order(scores, rng)
        for frac, count in zip(fractions.tolist(), counts.tolist()):
            blanked = images.copy()
            blanked[rows, ranked[:, :count]] = 0
            acc = float(np.mean(parts.predict(blanked) == y))
            records.append(
                {
                    "order": name,
                    "percent": 100.0 * frac,
                    "n_blanked": count,
                    "accuracy": acc,
                }
            )
    return pd.DataFrame.from_records(records)


def _randomized(estimator, random_state):
    """A deep copy of ``estimator`` whose embedder has freshly drawn weights."""
    import torch

    from sklearn_flowspectrum._explain import PipelineParts

    clone = copy.deepcopy(estimator)
    module = PipelineParts(clone).embedder._plain_module()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        for sub in module.modules():
            if sub is not module and hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
    return clone


def _rowwise_spearman(a, b, keep=None):
    """Spearman correlation of each row pair, over the ``keep`` positions."""
    if keep is not None:
        a = np.where(keep, a, np.nan)
        b = np.where(keep, b, np.nan)
    ra = rankdata(a, axis=1, nan_policy="omit")
    rb = rankdata(b, axis=1, nan_policy="omit")
    ra -= np.nanmean(ra, axis=1, keepdims=True)
    rb -= np.nanmean(rb, axis=1, keepdims=True)
    ra, rb = np.nan_to_num(ra), np.nan_to_num(rb)
    den = np.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(1) / den, np.nan)


def randomization_check(
    estimator,
    X,
    *,
    methods=("gradients", "occlusion", "attention"),
    positions="nonzero",
    explain_params=None,
    random_state=0,
):
    """Rank correlation of each method's maps: trained against random weights.

    Every layer of the embedder's network that has a ``reset_parameters``
    (convolutions, dense layers, PReLUs, the byte embedding) is drawn afresh
    with PyTorch's default initialisation (so the channel attention's output
    layer, which training starts at zero, is random too, and the random
    network does not attend uniformly); the learned class centres of the
    Gaussian head and the unsupervised projection are kept.  Each session's
    absolute attributions under both networks are rank-correlated
    (Spearman), over the session's non-zero bytes by default: a zero byte
    equals the blank baseline, so integrated gradients give it nothing under
    any weights, and counting those agreements would measure how much of
    the image is padding or masked rather than what the model learned.

    Parameters
    ----------
    estimator : Pipeline or AMAESpectrumEmbedder
        Fitted.
    X : array-like or DataFrame
        Sessions (or images) as ``estimator`` takes them.
    methods : str or sequence of str, default=("gradients", "occlusion", \
"attention")
    positions : {"nonzero", "all"}, default="nonzero"
        The byte positions compared: the session's non-zero bytes, or all.
    explain_params : dict, default=None
        Passed to :func:`~sklearn_flowspectrum.explain`.  ``target`` must
        stay ``"spectrum"``: the pipeline's classifier was fitted on the
        trained network's spectra.
    random_state : int, default=0
        Seed of the fresh weights.

    Returns
    -------
    result : DataFrame
        Indexed by method: ``spearman_mean``, ``spearman_median`` over
        sessions, and ``n_sessions`` (sessions whose maps are not constant
        under both networks).
    """
    from sklearn_flowspectrum._explain import PipelineParts, explain

    methods = _methods(methods)
    if positions not in ("nonzero", "all"):
        raise ValueError(f"positions must be 'nonzero' or 'all', got {positions!r}")
    keep = None
    if positions == "nonzero":
        keep = PipelineParts(estimator).images(X) != 0
    if not isinstance(random_state, numbers.Integral):
        raise ValueError(f"random_state must be an int, got {random_state!r}")
    params = dict(explain_params or {})
    if params.get("target", "spectrum") != "spectrum":
        raise ValueError("randomization_check explains d(A): target='spectrum'")
    rand = _randomized(estimator, int(random_state))
    records = {}
    for m in methods:
        a = np.abs(explain(estimator, X, method=m, **params))
        b = np.abs(explain(rand, X, method=m, **params))
        rho = _rowwise_spearman(a, b, keep)
        ok = np.isfinite(rho)
        records[m] = {
            "spearman_mean": float(rho[ok].mean()) if ok.any() else np.nan,
            "spearman_median": float(np.median(rho[ok])) if ok.any() else np.nan,
            "n_sessions": int(ok.sum()),
        }
    out = pd.DataFrame.from_dict(records, orient="index")
    out.index.name = "method"
    return out
