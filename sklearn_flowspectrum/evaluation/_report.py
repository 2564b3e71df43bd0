"""Evaluation reports whose every number says how it was measured.

Published traffic-classification accuracies mix protocols: per-session versus
group-of-k scoring, masked versus raw headers, random versus capture-disjoint
splits.  :func:`evaluation_report` computes per-session and group-of-k scores
side by side and stamps each with the representation, masking, split and
protocol it came from, in tables (:meth:`EvaluationReport.to_frame`,
:meth:`EvaluationReport.to_markdown`) and on the confusion-matrix plot.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.pipeline import Pipeline

from sklearn_flowspectrum._classifier import FlowSpectrumClassifier
from sklearn_flowspectrum._metrics import classes_under, group_of_k_accuracy_score

__all__ = ["EvaluationReport", "evaluation_report", "markdown_table"]

_CONTEXT = ("representation", "masking", "split", "protocol")


def _fmt(value, floatfmt):
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return "" if np.isnan(value) else format(float(value), floatfmt)
    return "" if value is None else str(value)


def markdown_table(frame, *, floatfmt=".3f", index=False):
    """Render a DataFrame as a GitHub-flavoured Markdown table.

    A small replacement for :meth:`pandas.DataFrame.to_markdown`, which needs
    the optional ``tabulate`` package.  Pipes in cells are escaped and columns
    are padded to one width, so the table also reads as plain text.

    Parameters
    ----------
    frame : DataFrame
    floatfmt : str, default=".3f"
        Format of real numbers; NaN and None become empty cells.
    index : bool, default=False
        Whether to write the index as the first column.

    Returns
    -------
    table : str

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_flowspectrum.evaluation import markdown_table
    >>> print(markdown_table(pd.DataFrame({"model": ["AE"], "acc": [0.91234]})))
    | model | acc   |
    |-------|-------|
    | AE    | 0.912 |
    """
    if index:
        frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    body = [
        [_fmt(v, floatfmt).replace("|", "\\|") for v in row]
        for row in frame.itertuples(index=False)
    ]
    # Pad columns to a common width so the table also reads as plain text.
    widths = [
        max([3, len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)
    ]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in body)])


@dataclass
class EvaluationReport:
    """Per-session and group-of-k scores, labelled with how they were measured.

    Built by :func:`evaluation_report`; see there for the meaning of each
    number.  Attributes are plain values so reports can be compared, pickled
    and concatenated (:meth:`to_frame`).

    Attributes
    ----------
    classes : ndarray
        Class labels, in the order of the confusion matrix and ``per_class``.
    accuracy : float
        Per-session accuracy.
    precision, recall, f1 : float
        Per-session macro averages (unweighted mean over ``classes``).
    per_class : DataFrame
        Per-session precision, recall, F1 and support, one row per class.
    confusion : ndarray of shape (n_classes, n_classes)
        Per-session confusion matrix, rows true, columns predicted.
    n_sessions : int
    group_accuracy : float or None
        Group-of-``k`` accuracy (None when not computed).
    k : int
        Sessions per group.
    n_groups : int or None
        Number of groups scored.
    group_protocol : str
        How groups were formed and decided.
    representation, masking, split, protocol : str
        What was evaluated and how (free text given by the caller).
    n_rejected : int or None
        Sessions predicted as the reject label (None when the predictions
        come from no reject option).
    rejection_rate : float or None
        ``n_rejected / n_sessions``.
    accepted_accuracy : float or None
        Per-session accuracy on the sessions not rejected (nan when all are
        rejected).  ``accuracy`` counts every rejected session as an error.
    """

    classes: np.ndarray
    accuracy: float
    precision: float
    recall: float
    f1: float
    per_class: pd.DataFrame
    confusion: np.ndarray
    n_sessions: int
    group_accuracy: float | None = None
    k: int = 10
    n_groups: int | None = None
    group_protocol: str = ""
    representation: str = "unspecified"
    masking: str = "unspecified"
    split: str = "unspecified"
    protocol: str = "unspecified"
    n_rejected: int | None = None
    rejection_rate: float | None = None
    accepted_accuracy: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def context(self):
        """The four labels of this report, as a dict."""
        return {name: getattr(self, name) for name in _CONTEXT}

    @property
    def title(self):
        """One line naming representation, masking, split and protocol."""
        c = self.context
        return (
            f"{c['representation']} | masking: {c['masking']} | "
            f"split: {c['split']} | protocol: {c['protocol']}"
        )

    @property
    def group_label(self):
        """Name of the group-of-k score, e.g. ``"group-of-10"``."""
        return f"group-of-{self.k}"

    def to_frame(self):
        """All numbers in long format, each row carrying the four labels.

        Returns
        -------
        frame : DataFrame
            Columns ``representation``, ``masking``, ``split``, ``protocol``,
            ``scope`` ("per-session" or "group-of-k"), ``class`` ("all",
            "macro", "accepted" (the sessions not rejected) or a class
            label), ``metric`` and ``value``.  Concatenate
            the frames of several reports and pivot to compare them.
        """
        rows = [("per-session", "all", "accuracy", self.accuracy)]
        for metric in ("precision", "recall", "f1"):
            rows.append(("per-session", "macro", metric, getattr(self, metric)))
        for cls, rec in self.per_class.iterrows():
            for metric in ("precision", "recall", "f1", "support"):
                rows.append(("per-session", str(cls), metric, float(rec[metric])))
        if self.rejection_rate is not None:
            rows.append(("per-session", "all", "rejection rate", self.rejection_rate))
            rows.append(("per-session", "accepted", "accuracy", self.accepted_accuracy))
        if self.group_accuracy is not None:
            rows.append((self.group_label, "all", "accuracy", self.group_accuracy))
        frame = pd.DataFrame(rows, columns=["scope", "class", "metric", "value"])
        for name in reversed(_CONTEXT):
            frame.insert(0, name, getattr(self, name))
        return frame

    def summary(self):
        """The headline numbers as a dict (per-session first, then group)."""
        out = dict(self.context)
        out.update(
            {
                "per-session accuracy": self.accuracy,
                "per-session macro precision": self.precision,
                "per-session macro recall": self.recall,
                "per-session macro F1": self.f1,
                "sessions": self.n_sessions,
            }
        )
        if self.rejection_rate is not None:
            out["rejected sessions"] = self.n_rejected
            out["per-session rejection rate"] = self.rejection_rate
            out["per-session accuracy on accepted sessions"] = self.accepted_accuracy
        if self.group_accuracy is not None:
            out[f"{self.group_label} accuracy"] = self.group_accuracy
            out["groups"] = self.n_groups
        return out

    def to_markdown(self, *, floatfmt=".3f"):
        """The report as Markdown: labels, headline scores, per-class table.

        Parameters
        ----------
        floatfmt : str, default=".3f"

        Returns
        -------
        text : str
        """
        lines = [
            f"**{self.title}**",
            "",
            f"- per-session accuracy: {self.accuracy:{floatfmt}} "
            f"({self.n_sessions} sessions)",
            f"- per-session macro precision / recall / F1: "
            f"{self.precision:{floatfmt}} / {self.recall:{floatfmt}} / "
            f"{self.f1:{floatfmt}}",
        ]
        if self.rejection_rate is not None:
            lines.append(
                f"- rejected as unknown: {self.n_rejected} sessions "
                f"({self.rejection_rate:{floatfmt}}); per-session accuracy on "
                f"the accepted ones: {self.accepted_accuracy:{floatfmt}} "
                "(the accuracy above counts rejections as errors)"
            )
        if self.group_accuracy is not None:
            lines.append(
                f"- {self.group_label} accuracy: {self.group_accuracy:{floatfmt}} "
                f"({self.n_groups} groups; {self.group_protocol}) "
                "-- NOT a per-session accuracy"
            )
        lines += ["", markdown_table(self.per_class, floatfmt=floatfmt, index=True)]
        return "\n".join(lines)

    def __str__(self):
        return self.to_markdown()

    def _repr_markdown_(self):
        return self.to_markdown()

    def plot_confusion_matrix(self, *, normalize="true", ax=None, cmap="Blues"):
        """Draw the per-session confusion matrix, titled with the four labels.

        Parameters
        ----------
        normalize : {"true", "pred", None}, default="true"
            Show row shares (recall on the diagonal), column shares, or counts.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.
        cmap : str, default="Blues"

        Returns
        -------
        ax : matplotlib Axes
        """
        from sklearn_flowspectrum._axes import get_ax

        if normalize not in ("true", "pred", None):
            raise ValueError(
                f"normalize must be 'true', 'pred' or None, got {normalize!r}."
            )
        n = len(self.classes)
        ax = get_ax(ax, (1.2 + 0.6 * n, 1.0 + 0.6 * n))
        cm = self.confusion.astype(float)
        if normalize == "true":
            cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        elif normalize == "pred":
            cm = cm / np.maximum(cm.sum(axis=0, keepdims=True), 1)
        im = ax.imshow(cm, cmap=cmap, vmin=0, vmax=1 if normalize else None)
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        names = [str(c) for c in self.classes]
        ax.set_xticks(range(n), names, rotation=45, ha="right")
        ax.set_yticks(range(n), names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        threshold = np.nanmax(cm) / 2 if cm.size else 0
        for i in range(n):
            for j in range(n):
                text = f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
                color = "white" if cm[i, j] > threshold else "black"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
        subtitle = f"per-session accuracy {self.accuracy:.3f}"
        if self.group_accuracy is not None:
            subtitle += f"; {self.group_label} {self.group_accuracy:.3f}"
        ax.set_title(f"{self.title}\n{subtitle}", fontsize=9)
        return ax


class _Precomputed:
    """Stands in for a fitted classifier whose outputs are already known.

    ``predict_proba(X)`` returns the stored rows ``X[:, 0]``, so
    :func:`~sklearn_flowspectrum.group_of_k_accuracy_score` can draw and
    decide its groups from saved predictions without the model.
    """

    def __init__(self, classes, proba):
        self.classes_ = classes
        self._proba = proba

    def predict_proba(self, X):
        return self._proba[np.asarray(X)[:, 0].astype(np.intp)]


def _check_context(name, value):
    if value is None:
        return "unspecified"
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}.")
    return value


def evaluation_report(
    y_true,
    y_pred,
    *,
    y_proba=None,
    classes=None,
    groups=None,
    k=10,
    n_groups_per_class=1000,
    estimator=None,
    X=None,
    random_state=0,
    representation=None,
    masking=None,
    split=None,
    protocol=None,
    unknown_label=None,
):
    """Per-session and group-of-k scores, labelled with how they were measured.

    Per session: accuracy, macro and per-class precision, recall and F1, and
    the confusion matrix.  Per group: the accuracy of deciding groups of
    sessions together (the authors' group-of-k protocol; see below).  Both
    are always reported side by side and named as what they are.

    Parameters
    ----------
    y_true : array-like of shape (n_sessions,)
        True labels.
    y_pred : array-like of shape (n_sessions,)
        Predicted labels, one per session.
    y_proba : array-like of shape (n_sessions, n_classes), default=None
        Predicted class probabilities (columns in the order of ``classes``);
        used for the group decision when there is no ``estimator``.
    classes : array-like, default=None
        Class labels in display order.  Default: the sorted union of
        ``y_true`` and ``y_pred`` (must be given with ``y_proba``, in the order
        of its columns, e.g. ``clf.classes_``).
    groups : array-like of shape (n_sessions,), default=None
        Explicit test groups (sessions with the same value are decided
        together, e.g. disjoint groups of ``k``, or all sessions of one flow);
        every group must hold one class.  When None, groups of ``k`` are drawn
        as the authors do (below).  With groups of one size, that size is the
        reported ``k``.
    k : int, default=10
        Sessions per drawn group; ``k=None`` skips the group score.
    n_groups_per_class : int, default=1000
        Drawn groups per class.
    estimator, X : fitted classifier and its test input, default=None
        When both are given (and ``groups`` is None), the group score is
        :func:`~sklearn_flowspectrum.group_of_k_accuracy_score`
        ``(estimator, X, y_true)``: the estimator's own set-level decision
        (``predict_groups`` of a FlowSpectrum classifier or pipeline).
    random_state : int, RandomState instance or None, default=0
        Seed of the group draws.
    representation, masking, split, protocol : str, default=None
        What was evaluated and how, e.g. ``"SessionAllLayers 784 B"``,
        ``"none (paper)"`` or ``"safe"``, ``"random 4:1"`` or ``"by capture
        file"``, ``"10 repeats, mean"``.  Stamped on every number and plot
        ("unspecified" when not given).
    unknown_label : str, int or None, default=None
        The label of sessions rejected as unknown in ``y_pred``.  The report
        then gives the rejection rate and the accuracy on the accepted
        sessions beside the accuracy on all (where a rejection is an error).
        When None: the reject label of ``estimator`` if that is a
        :class:`~sklearn_flowspectrum.FlowSpectrumClassifier` (or a pipeline
        ending in one) with a reject threshold; otherwise no rejection is
        reported.

    Returns
    -------
    report : EvaluationReport

    Warns
    -----
    UserWarning
        When groups are drawn and a class has fewer than ``k`` test sessions
        (its groups repeat the same few sessions); the warning names the
        classes and their counts, and so does ``report.group_protocol``.

    Notes
    -----
    Group-of-k follows the Semi-2DCAE test script the AMAE authors' numbers
    appear to come from, through
    :func:`~sklearn_flowspectrum.group_of_k_accuracy_score`: for every class,
    ``n_groups_per_class`` groups of ``k`` test sessions of that class are
    drawn with replacement and each group is classified as a whole.  The
    decision is, in order of preference: the estimator's own
    (``estimator`` and ``X``); the class with the highest mean probability
    (``y_proba``, a soft vote); the most frequent prediction (``y_pred``, a
    hard vote, ties to the first class).  Because the true class of a group
    is known to be shared and errors average out, this accuracy is usually
    far higher than the per-session one and says little about how single
    sessions are classified.

    Examples
    --------
    >>> from sklearn_flowspectrum.evaluation import evaluation_report
    >>> rep = evaluation_report(
    ...     ["a", "a", "b", "b"], ["a", "b", "b", "b"], k=2,
    ...     representation="L7", masking="none", split="random", protocol="demo")
    >>> round(rep.accuracy, 2), round(rep.f1, 3), rep.group_accuracy
    (0.75, 0.733, 0.867)
    >>> rep.title
    'L7 | masking: none | split: random | protocol: demo'
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.shape != y_true.shape:
        raise ValueError(
            "y_true and y_pred must be 1-D and of the same length, got shapes "
            f"{y_true.shape} and {y_pred.shape}."
        )
    if y_true.size == 0:
        raise ValueError("y_true is empty: nothing to evaluate.")
    context = {
        name: _check_context(name, v)
        for name, v in zip(_CONTEXT, (representation, masking, split, protocol))
    }
    if classes is None:
        if y_proba is not None:
            raise ValueError(
                "classes must be given with y_proba (the order of its columns, "
                "e.g. clf.classes_)."
            )
        classes = np.unique(np.concatenate([y_true, y_pred]))
    classes = np.asarray(classes)
    unknown = np.setdiff1d(np.unique(y_true), classes)
    if unknown.size:
        raise ValueError(f"y_true holds labels not in classes: {unknown.tolist()}.")
    # Labels predicted outside `classes` (e.g. a reject label) count as errors
    # in accuracy and recall but get no column of their own.
    accuracy = float(np.mean(y_true == y_pred))
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=None, zero_division=0
    )
    per_class = pd.DataFrame(
        {"precision": p, "recall": r, "f1": f, "support": s.astype(int)},
        index=pd.Index([str(c) for c in classes], name="class"),
    )
    cm = confusion_matrix(y_true, y_pred, labels=classes)
    rejection = _rejection(y_true, y_pred, classes, unknown_label, estimator)

    group_accuracy = n_groups = None
    group_protocol = ""
    if k is not None:
        if not (isinstance(k, numbers.Integral) and k >= 1):
            raise ValueError(f"k must be a positive integer or None, got {k!r}.")
        if groups is not None:
            group_accuracy, n_groups, group_protocol, size = _explicit_groups(
                y_true, y_pred, y_proba, classes, groups
            )
            k = size if size is not None else k
        else:
            n_groups = n_groups_per_class * np.unique(y_true).size
            drawn = (
                f"{n_groups_per_class} groups of {k} same-class test sessions per "
                "class, drawn with replacement"
            )
            small = classes_under(y_true, k)
            if small:
                drawn += f" (fewer than {k} test sessions: {small})"
            if estimator is not None and X is not None:
                group_accuracy = group_of_k_accuracy_score(
                    estimator,
                    X,
                    y_true,
                    k=k,
                    n_groups_per_class=n_groups_per_class,
                    random_state=random_state,
                )
                group_protocol = drawn + "; the estimator's set-level decision"
            else:
                proba, rule = _vote_matrix(y_pred, y_proba, classes)
                group_accuracy = group_of_k_accuracy_score(
                    _Precomputed(classes, proba),
                    np.arange(len(y_true))[:, None],
                    y_true,
                    k=k,
                    n_groups_per_class=n_groups_per_class,
                    random_state=random_state,
                )
                group_protocol = drawn + "; " + rule
    return EvaluationReport(
        classes=classes,
        accuracy=accuracy,
        precision=float(np.mean(p)),
        recall=float(np.mean(r)),
        f1=float(np.mean(f)),
        per_class=per_class,
        confusion=cm,
        n_sessions=int(y_true.size),
        group_accuracy=None if group_accuracy is None else float(group_accuracy),
        k=int(k) if k is not None else 0,
        n_groups=n_groups,
        group_protocol=group_protocol,
        **rejection,
        **context,
    )


def _rejection(y_true, y_pred, classes, unknown_label, estimator):
    """n_rejected, rejection_rate and accepted_accuracy (all None when
    there is no reject label)."""
    if unknown_label is None and estimator is not None:
        final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
        if isinstance(final, FlowSpectrumClassifier):
            unknown_label = final.rejection_label()
    if unknown_label is None:
        return {}
    if np.any(classes == np.asarray(unknown_label, dtype=object)):
        raise ValueError(
            f"unknown_label {unknown_label!r} is also a class label; it must "
            "mark rejected sessions only."
        )
    rejected = y_pred == np.asarray(unknown_label, dtype=object)
    accepted = ~rejected
    return {
        "n_rejected": int(rejected.sum()),
        "rejection_rate": float(rejected.mean()),
        "accepted_accuracy": (
            float(np.mean(y_true[accepted] == y_pred[accepted]))
            if accepted.any()
            else float("nan")
        ),
    }


def _vote_matrix(y_pred, y_proba, classes):
    """Per-session class scores for the group vote, and the rule's name."""
    if y_proba is not None:
        proba = np.asarray(y_proba, dtype=float)
        if proba.shape != (len(y_pred), len(classes)):
            raise ValueError(
                f"y_proba must have shape (n_sessions, n_classes) = "
                f"({len(y_pred)}, {len(classes)}), got {proba.shape}."
            )
        return proba, "soft vote (highest mean probability)"
    # One-hot predictions: the mean is the vote share; a prediction outside
    # `classes` (a reject) votes for nothing.
    onehot = (y_pred[:, None] == classes[None, :]).astype(float)
    return onehot, "hard vote (most frequent prediction)"


def _explicit_groups(y_true, y_pred, y_proba, classes, groups):
    groups = np.asarray(groups)
    if groups.shape != y_true.shape:
        raise ValueError(
            f"groups must have one entry per session ({y_true.size}), "
            f"got shape {groups.shape}."
        )
    uniq, codes = np.unique(groups, return_inverse=True)
    truth_codes = np.unique(y_true, return_inverse=True)[1]
    lo = np.full(uniq.size, np.iinfo(np.int64).max)
    hi = np.full(uniq.size, -1)
    np.minimum.at(lo, codes, truth_codes)
    np.maximum.at(hi, codes, truth_codes)
    mixed = np.flatnonzero(lo != hi)
    if mixed.size:
        raise ValueError(
            f"{mixed.size} group(s) mix classes (e.g. group {uniq[mixed[0]]!r}); "
            "a group-of-k score needs groups of one class."
        )
    proba, rule = _vote_matrix(y_pred, y_proba, classes)
    sums = np.stack(
        [np.bincount(codes, weights=col, minlength=uniq.size) for col in proba.T],
        axis=1,
    )
    decided = classes[np.argmax(sums, axis=1)]
    first = np.zeros(uniq.size, dtype=np.intp)
    first[codes[::-1]] = np.arange(codes.size)[::-1]
    truth = y_true[first]
    sizes = np.bincount(codes)
    size_text = (
        f"{sizes[0]}" if sizes.min() == sizes.max() else f"{sizes.min()}-{sizes.max()}"
    )
    text = f"{uniq.size} given groups of {size_text} same-class sessions; {rule}"
    size = int(sizes[0]) if sizes.min() == sizes.max() else None
    return float(np.mean(decided == truth)), int(uniq.size), text, size
