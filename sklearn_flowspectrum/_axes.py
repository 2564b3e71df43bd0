# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""matplotlib, imported on first use, and the Axes every plot draws on.

:mod:`sklearn_flowspectrum.plotting` and the evaluation plots
(:meth:`EvaluationReport.plot_confusion_matrix
<sklearn_flowspectrum.evaluation.EvaluationReport.plot_confusion_matrix>`,
:func:`~sklearn_flowspectrum.evaluation.plot_leakage_audit`) share these, so
matplotlib stays an optional dependency with one error message.
"""

__all__ = ["get_ax", "pyplot"]


def pyplot():
    """``matplotlib.pyplot``, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "sklearn_flowspectrum.plotting needs matplotlib: "
            'pip install "sklearn-flowspectrum[plots]" (or pip install matplotlib)'
        ) from exc
    return plt


def get_ax(ax, figsize):
    """``ax``, or the Axes of a new figure of ``figsize`` when it is None."""
    if ax is not None:
        return ax
    _, ax = pyplot().subplots(figsize=figsize, layout="constrained")
    return ax
