"""Interpretable encrypted-traffic classification with the AMAE FlowSpectrum.

The data flow is the architecture: captures -> packets -> sessions -> byte
images -> spectra -> decisions.  Each stage lives in its own private module
and is re-exported here.
"""

from sklearn_flowspectrum._version import __version__

# --- captures -> sessions (sklearn_flowspectrum._capture, ._sessions) ---
from sklearn_flowspectrum._capture import CaptureError, CaptureWarning, iter_records
from sklearn_flowspectrum._sessions import SessionReport, read_sessions
# --- sessions -> byte images (._layers, ._vectorizer, ._idx) ---
from sklearn_flowspectrum._idx import load_idx_pair, read_idx, write_idx
from sklearn_flowspectrum._layouts import byte_map_layers, packet_slot_map
from sklearn_flowspectrum._vectorizer import PcapSessionVectorizer
# --- images -> spectra (._nn, ._embedder) ---
from sklearn_flowspectrum._embedder import AMAESpectrumEmbedder
from sklearn_flowspectrum._nn import AMAELoss, AMAEModule
# --- spectra -> decisions (._classifier) ---
from sklearn_flowspectrum._classifier import (
    FlowSpectrumClassifier,
    group_of_k_accuracy_score,
    make_group_of_k_scorer,
)

__all__ = ["__version__", "AMAESpectrumEmbedder", "AMAELoss", "AMAEModule", "CaptureError", "CaptureWarning", "iter_records", "read_sessions", "SessionReport", "PcapSessionVectorizer", "byte_map_layers", "load_idx_pair", "read_idx", "write_idx", "packet_slot_map", "FlowSpectrumClassifier", "group_of_k_accuracy_score", "make_group_of_k_scorer"]
