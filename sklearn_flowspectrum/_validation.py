"""Parameter constraints shared by the package's functions and estimators."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral

from sklearn.utils._param_validation import Interval, validate_parameter_constraints

__all__ = ["N_JOBS_CONSTRAINT", "check_n_jobs"]

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
