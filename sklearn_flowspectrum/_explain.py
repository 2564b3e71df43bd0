# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""Per-byte explanations of a session's spectrum value, and their field sums.

:func:`explain` attributes the spectrum value ``d(A)`` of each session (or,
for occlusion, also the class posterior) to the bytes of its image, by one
of three methods:

``"attention"``
    The network's own attention weights ``W_m`` (non-negative, summing to
    one per session).  They say where the network looked, not what the
    bytes did to ``d(A)`` (Jain & Wallace 2019).
``"gradients"``
    Integrated gradients (Sundararajan et al. 2017) of ``d(A)`` from the
    blank session (every byte zero: the value masking and occlusion give a
    byte).  The network also looks each byte value up in a table of learned
    vectors (``byte_embedding``), a step without a gradient; the path
    therefore runs jointly through the byte intensities, from 0 to ``x``,
    and through the looked-up vectors, from the vector of byte 0 to the
    vector of the byte, as integrated gradients do for word embeddings.  The
    attributions of a session add up to ``d(x) - d(blank)`` up to the error
    of the ``n_steps``-point midpoint rule.
``"occlusion"``
    Blank (zero) one protocol field at a time, in every packet of the image,
    through the byte map of the layout, and measure the shift
    ``d(x) - d(x without the field)`` (or the same shift of the posterior
    of the predicted class, ``target="posterior"``).  The shift is spread
    evenly over the field's bytes, so the field sums of
    :func:`field_attributions` are the shifts themselves.

Integrated gradients are written out here (about thirty lines) rather than
taken from Captum: the joint path through intensities and byte embeddings
needs the network's own hook (:meth:`AMAEModule.weigh` with ``vectors``),
which Captum's ``IntegratedGradients`` would reach only through a wrapper of
the same size, and the package then needs no further dependency.

The byte map (field name of every image position) comes from the one place
that lays images out, :mod:`sklearn_flowspectrum._layouts`, through the
pipeline's :meth:`PcapSessionVectorizer.byte_map` or, for an embedder
alone on AllLayers rows, :func:`~sklearn_flowspectrum._layouts.rows_byte_map`.
"""

import numpy as np
import pandas as pd
import torch
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from sklearn_flowspectrum._embedder import AMAESpectrumEmbedder
from sklearn_flowspectrum._layouts import rows_byte_map
from sklearn_flowspectrum._vectorizer import PcapSessionVectorizer

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "explain",
    "explanation_byte_map",
    "field_attributions",
]

#: The attribution methods of :func:`explain`.
METHODS = ("attention", "gradients", "occlusion")
#: The method the command line and :func:`explain` use by default.
DEFAULT_METHOD = "gradients"
_TARGETS = ("spectrum", "posterior")


class PipelineParts:
    """A fitted pipeline cut around its embedder: images, spectra, decisions."""

    def __init__(self, estimator):
        if isinstance(estimator, AMAESpectrumEmbedder):
            self.pre, self.embedder, self.post = [], estimator, []
        elif isinstance(estimator, Pipeline):
            steps = [s for _, s in estimator.steps if s not in (None, "passthrough")]
            at = [i for i, s in enumerate(steps) if isinstance(s, AMAESpectrumEmbedder)]
            if not at:
                raise TypeError("the pipeline has no AMAESpectrumEmbedder step")
            self.pre, self.embedder = steps[: at[0]], steps[at[0]]
            self.post = steps[at[0] + 1 :]
        else:
            raise TypeError(
                "explain needs an AMAESpectrumEmbedder or a Pipeline that "
                f"contains one, got {type(estimator).__name__}"
            )
        check_is_fitted(self.embedder)

    def images(self, X):
        for step in self.pre:
            X = step.transform(X)
        return self.embedder._check_X(X, reset=False)

    def byte_map(self, X, images):
        """Field name of every image position (see :func:`explanation_byte_map`)."""
        if len(self.pre) == 1 and isinstance(self.pre[0], PcapSessionVectorizer):
            return np.asarray(self.pre[0].byte_map(X), dtype=object)
        rows = _as_uint8(images)
        if self.embedder.pcap_images_:
            return rows_byte_map(rows)
        # Images of unknown layout: the bytes up to the last non-zero one of
        # the session are "other", the zero tail is padding.
        out = np.full(rows.shape, "pad", dtype=object)
        nz = rows != 0
        last = np.where(nz.any(1), rows.shape[1] - np.argmax(nz[:, ::-1], 1), 0)
        out[np.arange(rows.shape[1])[None, :] < last[:, None]] = "other"
        return out

    @property
    def classes_(self):
        if self.post:
            return self.post[-1].classes_
        return getattr(self.embedder, "classes_", None)

    def spectrum(self, images):
        """``d(A)`` of images from :meth:`images`, bytes blanked or not."""
        return self.embedder._spectrum(images, validated=True)[:, 0]

    def proba(self, images):
        """Class posteriors of images (the pipeline's final step, or the head)."""
        if self.post:
            Z = self.spectrum(images)[:, None]
            for step in self.post[:-1]:
                Z = step.transform(Z)
            return self.post[-1].predict_proba(Z)
        if getattr(self.embedder, "classes_", None) is None:
            raise ValueError(
                "target='posterior' needs class posteriors: an embedder fitted "
                "with labels, or a pipeline ending in a classifier"
            )
        logits = self.embedder._class_logits(images, validated=True)
        logits = logits - logits.max(1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True)

    def predict(self, images):
        if self.post and not hasattr(self.post[-1], "predict_proba"):
            Z = self.spectrum(images)[:, None]
            for step in self.post[:-1]:
                Z = step.transform(Z)
            return self.post[-1].predict(Z)
        return np.asarray(self.classes_)[self.proba(images).argmax(1)]


def _as_uint8(images):
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


def explanation_byte_map(estimator, X):
    """Name the protocol field behind every image position of each session.

    The map :func:`explain` blanks fields by and :func:`field_attributions`
    sums over: the pipeline's :meth:`PcapSessionVectorizer.byte_map` when
    the pipeline starts with the vectorizer; for an embedder alone, the
    field map of AllLayers (pcap file) rows read from their own record
    headers, or, for other images, ``"other"`` up to each session's last
    non-zero byte and ``"pad"`` after it.

    Parameters
    ----------
    estimator : Pipeline or AMAESpectrumEmbedder
        Fitted.
    X : array-like or DataFrame
        What ``estimator`` takes (sessions for a pipeline, images for an
        embedder).

    Returns
    -------
    byte_map : ndarray of shape (n_sessions, n_bytes), dtype object
    """
    parts = PipelineParts(estimator)
    return parts.byte_map(X, parts.images(X))


def _torch_images(embedder, images):
    device = torch.device(embedder.device)
    return embedder._as_float(embedder._to_images(images, device))


def _integrated_gradients(parts, images, n_steps, batch_size):
    emb = parts.embedder
    module = emb._plain_module()
    module.eval()
    n_bytes = images.shape[1]
    out = np.empty(images.shape, dtype=np.float32)
    alphas = (np.arange(n_steps) + 0.5) / n_steps  # midpoint rule
    for start in range(0, len(images), batch_size):
        x = _torch_images(emb, images[start : start + batch_size])
        grads_x = torch.zeros_like(x)
        vec = base = grads_v = None
        if module.embedding is not None:
            with torch.no_grad():
                vec = module.byte_vectors(x)
                base = module.byte_vectors(torch.zeros_like(x))
            grads_v = torch.zeros_like(vec)
        for a in alphas:
            xa = (a * x).requires_grad_(True)
            inputs = [xa]
            va = None
            if vec is not None:
                va = (base + a * (vec - base)).requires_grad_(True)
                inputs.append(va)
            d = module.map_code(module.encode_weighted(module.weigh(xa, va)[0]))[0]
            g = torch.autograd.grad(d.sum(), inputs)
            grads_x += g[0]
            if vec is not None:
                grads_v += g[1]
        attr = (x * grads_x)[:, 0].flatten(1) / n_steps
        if vec is not None:
            attr = attr + ((vec - base) * grads_v).sum(-1).flatten(1) / n_steps
        out[start : start + len(attr)] = attr[:, :n_bytes].detach().cpu().numpy()
    return out


def _occlusion(parts, images, byte_map, target, batch_size):
    n, n_bytes = images.shape
    codes, names = pd.factorize(byte_map.ravel())
    k = max(len(names), 1)
    # (session, field) cell of every byte.
    cell = (np.repeat(np.arange(n, dtype=np.int64), n_bytes) * k + codes).reshape(
        n, n_bytes
    )
    codes = codes.reshape(n, n_bytes)
    # One occluded image per (session, field) with a non-zero byte: blanking
    # zeros changes nothing, so the other shifts are zero without a pass.
    pair = np.unique(cell[images != 0])
    rows, fields = pair // k, pair % k
    if target == "spectrum":
        full = parts.spectrum(images)
    else:
        proba = parts.proba(images)
        cls = proba.argmax(1)
        full = proba[np.arange(n), cls]
    shift = np.zeros(n * k)
    for start in range(0, len(pair), batch_size):
        r = rows[start : start + batch_size]
        f = fields[start : start + batch_size]
        occluded = images[r].copy()
        occluded[codes[r] == f[:, None]] = 0
        if target == "spectrum":
            value = parts.spectrum(occluded)
        else:
            value = parts.proba(occluded)[np.arange(len(r)), cls[r]]
        shift[pair[start : start + batch_size]] = full[r] - value
    count = np.bincount(cell.ravel(), minlength=n * k)
    return (shift[cell] / count[cell]).astype(np.float32)


def explain(
    estimator,
    X,
    *,
    method="gradients",
    target="spectrum",
    n_steps=8,
    byte_map=None,
    batch_size=256,
):
    """Attribute each session's spectrum value to the bytes of its image.

    Parameters
    ----------
    estimator : Pipeline or AMAESpectrumEmbedder
        A fitted embedder, or a fitted pipeline that contains one (the steps
        before it make the images, the steps after it classify ``d(A)``).
    X : array-like or DataFrame
        What ``estimator`` takes: sessions for a pipeline that starts with
        :class:`PcapSessionVectorizer`, images ``(n_sessions, n_bytes)`` for
        an embedder.
    method : {"gradients", "occlusion", "attention"}, default="gradients"
        See the module notes: integrated gradients of ``d(A)`` from the blank
        session; the shift of ``d(A)`` (or of the posterior) when one field
        is blanked; the attention weights ``W_m``.
    target : {"spectrum", "posterior"}, default="spectrum"
        What occlusion measures: the shift of ``d(A)``, or of the posterior
        probability of the class predicted for the intact session (the
        pipeline's final classifier, or the embedder's own head).
        ``"gradients"`` explains ``d(A)`` and ``"attention"`` is what it is;
        both accept only ``"spectrum"``.
    n_steps : int, default=8
        Points of the integrated-gradients path.
    byte_map : array-like of shape (n_sessions, n_bytes), default=None
        Field name of every image position, for occlusion; None reads it
        from the estimator (:func:`explanation_byte_map`).
    batch_size : int, default=256
        Sessions (occlusion: occluded images) per forward pass.

    Returns
    -------
    attributions : ndarray of shape (n_sessions, n_bytes), dtype float32
        Per byte: attention weight, integrated gradient, or the field's
        shift shared evenly over its bytes.  Sum them per field with
        :func:`field_attributions`.

    See Also
    --------
    field_attributions : Sums per protocol field (session x field).
    sklearn_flowspectrum.evaluation.deletion_curve : Faithfulness check.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum import AMAESpectrumEmbedder, explain
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(20, 64), dtype=np.uint8)
    >>> y = np.repeat(["chat", "voip"], 10)
    >>> emb = AMAESpectrumEmbedder(max_epochs=1, batch_size=10, random_state=0)
    >>> emb = emb.fit(X, y)
    >>> explain(emb, X[:3], method="gradients", n_steps=4).shape
    (3, 64)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if target not in _TARGETS:
        raise ValueError(f"target must be one of {_TARGETS}, got {target!r}")
    if target != "spectrum" and method != "occlusion":
        raise ValueError(f"method={method!r} explains d(A) only; use target='spectrum'")
    if int(n_steps) < 1 or int(batch_size) < 1:
        raise ValueError("n_steps and batch_size must be positive ints")
    parts = PipelineParts(estimator)
    images = parts.images(X)
    if method == "attention":
        return parts.embedder.attention_maps(images)
    if method == "gradients":
        return _integrated_gradients(parts, images, int(n_steps), int(batch_size))
    if byte_map is None:
        byte_map = parts.byte_map(X, images)
    byte_map = np.asarray(byte_map, dtype=object)
    if byte_map.shape != images.shape:
        raise ValueError(
            f"byte_map has shape {byte_map.shape}, the images {images.shape}"
        )
    return _occlusion(parts, images, byte_map, target, int(batch_size))


def field_attributions(attributions, byte_map, *, absolute=False):
    """Sum per-byte attributions per protocol field.

    A field that occurs in several packets (``ip.ttl``, ``tcp.window``...)
    is summed over all of them, as masking blanks it in all of them.

    Parameters
    ----------
    attributions : array-like of shape (n_sessions, n_bytes)
        From :func:`explain`.
    byte_map : array-like of shape (n_sessions, n_bytes) or (n_bytes,)
        Field name of every position (:func:`explanation_byte_map`,
        :meth:`PcapSessionVectorizer.byte_map`).
    absolute : bool, default=False
        Sum absolute values (how much a field moves the output either way).

    Returns
    -------
    fields : DataFrame of shape (n_sessions, n_fields)
        One column per field name, in order of first appearance; a row sums
        to the session's total attribution.

    Examples
    --------
    >>> from sklearn_flowspectrum import field_attributions
    >>> field_attributions([[1.0, 2.0, 0.5]], ["ip.src", "ip.src", "payload"])
       ip.src  payload
    0     3.0      0.5
    """
    attr = np.asarray(attributions, dtype=np.float64)
    if attr.ndim != 2:
        raise ValueError(f"attributions must be 2-D, got shape {attr.shape}")
    fields = np.asarray(byte_map, dtype=object)
    if fields.ndim == 1 and fields.shape[0] == attr.shape[1]:
        fields = np.broadcast_to(fields, attr.shape)
    if fields.shape != attr.shape:
        raise ValueError(
            f"byte_map has shape {fields.shape}, the attributions {attr.shape}"
        )
    if absolute:
        attr = np.abs(attr)
    n = attr.shape[0]
    codes, names = pd.factorize(fields.ravel())
    k = len(names)
    sums = np.bincount(
        (np.repeat(np.arange(n), attr.shape[1]) * k + codes),
        weights=attr.ravel(),
        minlength=n * k,
    ).reshape(n, k)
    return pd.DataFrame(sums, columns=[str(c) for c in names])
