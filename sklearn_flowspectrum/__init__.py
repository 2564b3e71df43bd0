"""Interpretable encrypted-traffic classification with the AMAE FlowSpectrum.

The data flow is the architecture: captures -> packets -> sessions -> byte
images -> spectra -> decisions.  Each stage lives in its own private module
and is re-exported here:

- captures -> sessions: ``_capture`` (pcap/pcapng records), ``_sessions``
  (:func:`read_sessions`), ``_split`` (one classic pcap as byte ranges read
  in parallel), ``_parquet`` (:func:`sessions_to_parquet`,
  :func:`read_sessions_parquet`, :func:`vectorize_partitions`: tables larger
  than memory, with pyarrow and dask)
- sessions -> byte images: ``_layers`` (frame dissection), ``_layouts`` (image
  layouts, byte maps, masking), ``_vectorizer`` (:class:`PcapSessionVectorizer`),
  ``_idx`` (USTC-TK2016 / MNIST IDX files)
- images -> spectra: ``_nn`` (torch modules, the paper's network, the
  loss), ``_nn1d`` (the 1-D convolution network, the default),
  ``_callbacks`` (skorch callbacks: the learning-rate schedule),
  ``_embedder`` (:class:`AMAESpectrumEmbedder`)
- spectra -> decisions: ``_kde`` (the class-conditional kernel densities),
  ``_classifier`` (:class:`FlowSpectrumClassifier`: priors, decision rules,
  group decision, reject option), ``_metrics``
  (:func:`group_of_k_accuracy_score`)
- explanations: ``_explain`` (:func:`explain`, :func:`field_attributions`)
- model files: ``_model_format`` (:func:`save_model`, :func:`load_model`:
  JSON, npy and safetensors in one zip file, loaded without pickle)

The torch-based names are imported on first use, so reading captures,
imaging sessions and classifying spectra never pay for importing torch (and
joblib workers that only parse captures start quickly).
"""

import importlib

from sklearn_flowspectrum._capture import CaptureError, CaptureWarning, iter_records
from sklearn_flowspectrum._classifier import FlowSpectrumClassifier
from sklearn_flowspectrum._idx import load_idx_pair, read_idx, write_idx
from sklearn_flowspectrum._layouts import byte_map_layers, packet_slot_map
from sklearn_flowspectrum._metrics import (
    group_of_k_accuracy_score,
    make_group_of_k_scorer,
)
from sklearn_flowspectrum._model_format import load_model, save_model
from sklearn_flowspectrum._parquet import (
    read_sessions_parquet,
    sessions_to_parquet,
    vectorize_partitions,
)
from sklearn_flowspectrum._sessions import SessionReport, read_sessions
from sklearn_flowspectrum._streaming import iter_sessions
from sklearn_flowspectrum._vectorizer import PcapSessionVectorizer
from sklearn_flowspectrum._version import __version__

# name -> private module, for the names that need torch.
_LAZY = {
    "AMAESpectrumEmbedder": "sklearn_flowspectrum._embedder",
    "AMAELoss": "sklearn_flowspectrum._nn",
    "AMAEModule": "sklearn_flowspectrum._nn",
    "AMAE1dModule": "sklearn_flowspectrum._nn1d",
    "WarmupCosine": "sklearn_flowspectrum._callbacks",
    "order_classes": "sklearn_flowspectrum._nn",
    "explain": "sklearn_flowspectrum._explain",
    "explanation_byte_map": "sklearn_flowspectrum._explain",
    "field_attributions": "sklearn_flowspectrum._explain",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    # captures -> sessions
    "CaptureError",
    "CaptureWarning",
    "SessionReport",
    "iter_records",
    "iter_sessions",
    "read_sessions",
    "read_sessions_parquet",
    "sessions_to_parquet",
    # sessions -> byte images
    "PcapSessionVectorizer",
    "byte_map_layers",
    "load_idx_pair",
    "packet_slot_map",
    "read_idx",
    "vectorize_partitions",
    "write_idx",
    # images -> spectra
    "AMAE1dModule",
    "AMAELoss",
    "AMAEModule",
    "AMAESpectrumEmbedder",
    "WarmupCosine",
    "order_classes",
    # spectra -> decisions
    "FlowSpectrumClassifier",
    "group_of_k_accuracy_score",
    "make_group_of_k_scorer",
    # explanations
    "explain",
    "explanation_byte_map",
    "field_attributions",
    # model files
    "load_model",
    "save_model",
]
