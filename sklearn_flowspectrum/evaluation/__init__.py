"""Honest evaluation: leakage-safe splitters, a leakage audit, labelled reports,
and faithfulness checks of explanations.

Everything here is imported from this subpackage, not from the top-level
package, in the way :mod:`sklearn.model_selection` sits beside
:mod:`sklearn`::

    from sklearn_flowspectrum.evaluation import CaptureFileKFold, leakage_audit
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

from sklearn_flowspectrum.evaluation._audit import (
    AUDIT_FIELDS,
    CONTEXT_SETS,
    LeakageWarning,
    leakage_audit,
    plot_leakage_audit,
)
from sklearn_flowspectrum.evaluation._background import (
    BACKGROUND_UDP_PORTS,
    background_sessions,
)
from sklearn_flowspectrum.evaluation._faithfulness import (
    deletion_curve,
    randomization_check,
)
from sklearn_flowspectrum.evaluation._report import (
    EvaluationReport,
    evaluation_report,
    markdown_table,
)
from sklearn_flowspectrum.evaluation._splitters import (
    CaptureFileKFold,
    ServerEndpointKFold,
    SessionTimeSplit,
    server_endpoints,
    ustc_session_table,
)

__all__ = [
    "AUDIT_FIELDS",
    "BACKGROUND_UDP_PORTS",
    "CONTEXT_SETS",
    "background_sessions",
    "deletion_curve",
    "evaluation_report",
    "leakage_audit",
    "markdown_table",
    "plot_leakage_audit",
    "randomization_check",
    "server_endpoints",
    "ustc_session_table",
    "CaptureFileKFold",
    "EvaluationReport",
    "LeakageWarning",
    "ServerEndpointKFold",
    "SessionTimeSplit",
]
