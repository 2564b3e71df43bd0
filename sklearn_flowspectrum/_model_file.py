# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""Pickle model files of the command line: written, and read back restricted.

``flowspectrum fit`` writes the model format of :mod:`._model_format`, which
loads without pickle; pickles are what ``fit --save-optimizer`` writes (with
the optimizer's state) and what earlier versions wrote.

Unpickling runs whatever callables a file names, so :func:`load_model_file`
only lets a file name the globals that a model saved by ``flowspectrum fit``
is made of (:data:`ALLOWED_GLOBALS`) and refuses any other with
:class:`RefusedGlobalError`.  skorch stores the network, loss and optimizer
of :class:`AMAESpectrumEmbedder` as a second pickle inside the first and
unpickles it in ``__setstate__``; the embedder hands that pickle to
:func:`vet_nested_pickle` first, so the same allowlist covers it.  Tensor
data goes through ``torch.load(weights_only=True)``.

This narrows what a file can do; it does not make an untrusted pickle safe
to load.  Load models only from a trusted source.
"""

import contextvars
import io
import pickle

from sklearn_flowspectrum._atomic import atomic_output

__all__ = [
    "ALLOWED_GLOBALS",
    "RefusedGlobalError",
    "dump_model_file",
    "load_model_file",
]

# numpy moved its private modules from numpy.core to numpy._core in 2.0.
_NUMPY = [
    (core + module, name)
    for core in ("numpy.core", "numpy._core")
    for module, name in (
        (".multiarray", "_reconstruct"),
        (".multiarray", "scalar"),
        (".numeric", "_frombuffer"),
    )
]

#: The ``(module, name)`` globals a model file may name.  Not here on
#: purpose: ``builtins.eval/exec/getattr/__import__/open``, ``os``,
#: ``subprocess`` and everything else that is no part of a model.  The base
#: ``skorch.NeuralNet`` is absent too: it would unpickle its nested pickle
#: without the check of :func:`vet_nested_pickle`.
ALLOWED_GLOBALS = frozenset(
    [
        ("builtins", name)
        for name in (
            "bytearray",
            "complex",
            "dict",
            "frozenset",
            "list",
            "print",  # skorch's PrintLog writes with it
            "range",
            "set",
            "slice",
            "tuple",
        )
    ]
    + [
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("functools", "partial"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        *_NUMPY,
        ("sklearn.pipeline", "Pipeline"),
        ("sklearn_flowspectrum._callbacks", "WarmupCosine"),
        ("sklearn_flowspectrum._classifier", "FlowSpectrumClassifier"),
        ("sklearn_flowspectrum._classifier", "_ClassDensity"),  # older models
        ("sklearn_flowspectrum._embedder", "AMAESpectrumEmbedder"),
        ("sklearn_flowspectrum._kde", "ClassDensity"),
        ("sklearn_flowspectrum._nn", "AMAELoss"),
        ("sklearn_flowspectrum._nn", "AMAEModule"),
        ("sklearn_flowspectrum._nn", "AttentionFusion"),
        ("sklearn_flowspectrum._nn", "GaussianHead"),
        ("sklearn_flowspectrum._nn", "SingleChannelAttention"),
        ("sklearn_flowspectrum._nn", "SpatialAttention"),
        ("sklearn_flowspectrum._nn1d", "AMAE1dModule"),
        ("sklearn_flowspectrum._vectorizer", "PcapSessionVectorizer"),
        ("skorch.callbacks.logging", "EpochTimer"),
        ("skorch.callbacks.logging", "PrintLog"),
        ("skorch.callbacks.scoring", "PassthroughScoring"),
        ("skorch.dataset", "Dataset"),
        ("skorch.history", "History"),
        ("skorch.setter", "optimizer_setter"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch.nn.modules.activation", "PReLU"),
        ("torch.nn.modules.activation", "Sigmoid"),
        ("torch.nn.modules.container", "Sequential"),
        ("torch.nn.modules.conv", "Conv1d"),
        ("torch.nn.modules.conv", "Conv2d"),
        ("torch.nn.modules.conv", "ConvTranspose1d"),
        ("torch.nn.modules.dropout", "Dropout"),
        ("torch.nn.modules.linear", "Linear"),
        ("torch.nn.modules.pooling", "MaxPool1d"),
        ("torch.nn.modules.pooling", "MaxPool2d"),
        ("torch.nn.modules.sparse", "Embedding"),
        ("torch.nn.modules.upsampling", "Upsample"),
        ("torch.optim.adamw", "AdamW"),
        ("torch.utils.data.dataloader", "DataLoader"),
    ]
)

# True while load_model_file runs: the embedder's __setstate__ asks.
_RESTRICTED = contextvars.ContextVar("sklearn_flowspectrum_restricted", default=False)


class RefusedGlobalError(pickle.UnpicklingError):
    """A model file names a global outside :data:`ALLOWED_GLOBALS`.

    Attributes
    ----------
    global_name : str
        The refused global, ``module.name``.
    """

    def __init__(self, module, name):
        self.global_name = f"{module}.{name}"
        super().__init__(
            f"refused to load {self.global_name}, which is no part of a model "
            "saved by 'flowspectrum fit'"
        )


def _load_tensor_bytes(data):
    # What torch.storage._load_from_bytes does, restricted to tensor data.
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


class _RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` (the documented way to
    restrict globals) only returns :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module, name):
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _load_tensor_bytes
        if (module, name) not in ALLOWED_GLOBALS:
            raise RefusedGlobalError(module, name)
        return super().find_class(module, name)


def restricted_loading():
    """True while :func:`load_model_file` is unpickling a file."""
    return _RESTRICTED.get()


def vet_nested_pickle(data):
    """Unpickle ``data`` with the allowlist and discard the result.

    Called on a pickle nested in a model file before a library unpickles it
    without restriction; raises :class:`RefusedGlobalError` for a global
    outside the allowlist, ``pickle.UnpicklingError`` (or another error of
    :mod:`pickle`) for data that is no pickle.
    """
    _RestrictedUnpickler(io.BytesIO(data)).load()


def dump_model_file(obj, path):
    """Pickle ``obj`` to ``path`` (protocol 5), whole or not at all.

    ``joblib.load`` reads the file too.
    """
    with atomic_output(path) as temporary, open(temporary, "wb") as f:
        pickle.dump(obj, f, protocol=5)


def load_model_file(path):
    """Unpickle ``path``, refusing globals outside :data:`ALLOWED_GLOBALS`.

    A pickle can run code when it is loaded; this refuses every file that
    names anything beyond what a model saved by ``flowspectrum fit`` is made
    of.  Load models only from a trusted source all the same.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    obj : object
        The unpickled object.

    Raises
    ------
    RefusedGlobalError
        The file names a global outside the allowlist (which did not run:
        unpickling stops there).
    pickle.UnpicklingError, EOFError, ValueError, ...
        The file is no pickle, or a damaged one.
    """
    token = _RESTRICTED.set(True)
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f).load()
    finally:
        _RESTRICTED.reset(token)
