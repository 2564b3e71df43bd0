"""Parameter constraints and column names shared by the package's estimators."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval, validate_parameter_constraints
from sklearn.utils.validation import _get_feature_names

__all__ = [
    "N_JOBS_CONSTRAINT",
    "byte_feature_names",
    "check_n_jobs",
    "read_by_position",
    "spectrum_feature_names",
]

#: ``n_jobs`` as joblib and scikit-learn read it: None (one process), a
#: positive number of workers, or a negative one (``-1``: all cores, ``-2``:
#: all but one, ...).  Zero means nothing to joblib.
N_JOBS_CONSTRAINT = [
    Interval(Integral, 1, None, closed="left"),
    Interval(Integral, None, -1, closed="right"),
    None,
]


def check_n_jobs(n_jobs, caller):
    """Raise sklearn's ``InvalidParameterError`` for a bad ``n_jobs``.

    Parameters
    ----------
    n_jobs : object
        The value to check.
    caller : str
        The function named in the error.

    Returns
    -------
    n_jobs : int or None
        ``n_jobs`` unchanged.
    """
    validate_parameter_constraints(
        {"n_jobs": N_JOBS_CONSTRAINT}, {"n_jobs": n_jobs}, caller_name=caller
    )
    return n_jobs


def byte_feature_names(n_bytes):
    """``byte0`` ... ``byte{n_bytes-1}``: the columns of a session image."""
    return np.asarray([f"byte{i}" for i in range(n_bytes)], dtype=object)


def spectrum_feature_names(n_values):
    """``spectrum0`` ...: the columns of the embedder's output."""
    return np.asarray([f"spectrum{i}" for i in range(n_values)], dtype=object)


def read_by_position(estimator, X, names_for):
    """``X`` as ``validate_data(estimator, X, reset=False)`` should see it.

    scikit-learn warns when a DataFrame reaches an estimator fitted on an
    array, or an array one fitted on a DataFrame: the columns might be in
    another order.  Where the names on the one side that has them are
    ``names_for(n)`` (the positional names a previous step of this package
    writes under ``set_output(transform="pandas")``), they say nothing but the
    position, so there is no order to get wrong and no reason to warn.  Other
    names are left to scikit-learn's checks.

    Parameters
    ----------
    estimator : fitted estimator
    X : array-like or DataFrame
    names_for : callable
        :func:`byte_feature_names` or :func:`spectrum_feature_names`.

    Returns
    -------
    X : array-like or DataFrame
        ``X`` itself, or ``X`` without its positional names (when the
        estimator was fitted on an array), or with them (when it was fitted
        on a DataFrame that had them).
    """
    fitted = getattr(estimator, "feature_names_in_", None)
    names = _get_feature_names(X)
    if fitted is None and names is not None:
        if np.array_equal(names, names_for(len(names))):
            return np.asarray(X)
    elif fitted is not None and names is None:
        if np.array_equal(fitted, names_for(len(fitted))):
            X = np.asarray(X)
            if X.ndim == 2 and X.shape[1] == len(fitted):
                return pd.DataFrame(X, columns=fitted, copy=False)
    return X
