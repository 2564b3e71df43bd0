# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""Model files without pickle: :func:`save_model` and :func:`load_model`.

A model file is ONE zip archive (a folder would do as well, but one file is
what a user copies, mails and names with ``-o``, and what
:func:`~sklearn_flowspectrum._atomic.atomic_output` can replace whole; numpy's
``.npz`` and skops' files are zip archives too).  Nothing in it is extracted
to disk; its members are read by name into memory:

``model.json``
    The document: the format's name and version, the package versions that
    wrote it, the estimators (class names, ``get_params()``, fitted
    attributes), optional metadata, and the size and SHA-256 checksum of
    every other member.
``arrays/NNNN.npy``
    Numeric and string arrays, written by :func:`numpy.save` and read with
    ``allow_pickle=False``.
``weights/NNNN.safetensors``
    The state of an embedder's network (and loss), as safetensors, on the
    CPU.  No optimizer state: a fresh optimizer is built on loading, which
    changes no prediction.

Loading executes no code from the file.  Estimators are rebuilt from their
parameters, and only the classes of :data:`ESTIMATOR_CLASSES` (the package's
estimators and scikit-learn's ``Pipeline``) and, as parameter values,
:data:`PARAMETER_CLASSES` and :data:`PARAMETER_FUNCTIONS` can be named;
every other value is data (JSON, npy, safetensors).  A class name off those
lists, a member missing or left over,
a size or checksum that does not match, or state that does not fit the
estimator is a :class:`ValueError` naming the file and the problem.

Saving is the mirror image: every fitted attribute (a public name ending in
``_``) and every parameter must be a value the document can hold (None,
bool, int, float, str, numpy scalars and arrays, lists, tuples, sets and
dicts of those, a class of the lists above, an estimator of the list), or
saving fails, naming it, before anything is written.
"""

import hashlib
import importlib
import io
import json
import math
import re
import sys
import types
import warnings
import zipfile

import numpy as np

from sklearn_flowspectrum._atomic import atomic_output
from sklearn_flowspectrum._version import __version__

__all__ = [
    "ESTIMATOR_CLASSES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PARAMETER_CLASSES",
    "PARAMETER_FUNCTIONS",
    "is_model_format_file",
    "load_model",
    "save_model",
]

FORMAT_NAME = "sklearn_flowspectrum.model-format"
FORMAT_VERSION = 1
DOCUMENT = "model.json"
# The largest document read (arrays and weights are separate members).
_MAX_DOCUMENT_BYTES = 64 * 2**20
_ZIP_MAGIC = b"PK\x03\x04"
# Fixed member dates: the same model gives the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_BLOB_NAME = re.compile(r"(arrays/[0-9]{4,}\.npy|weights/[0-9]{4,}\.safetensors)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FITTED_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*_")
# numpy kinds stored: bool, integers, floats, complex, text (and, in arrays,
# bytes and dates); never objects or structured records.
_SCALAR_KINDS = "biufcU"
_ARRAY_KINDS = "biufcUSmM"

#: Estimators a model file may hold: stable name -> (module, class).
ESTIMATOR_CLASSES = {
    "sklearn.pipeline.Pipeline": ("sklearn.pipeline", "Pipeline"),
    "sklearn_flowspectrum.PcapSessionVectorizer": (
        "sklearn_flowspectrum._vectorizer",
        "PcapSessionVectorizer",
    ),
    "sklearn_flowspectrum.AMAESpectrumEmbedder": (
        "sklearn_flowspectrum._embedder",
        "AMAESpectrumEmbedder",
    ),
    "sklearn_flowspectrum.FlowSpectrumClassifier": (
        "sklearn_flowspectrum._classifier",
        "FlowSpectrumClassifier",
    ),
}

#: Classes a parameter may name (``module=AMAE1dModule``, the optimizer,
#: skorch's data plumbing): stable name -> (module, class).  They are
#: instantiated by the embedder, with arguments from the document only.
PARAMETER_CLASSES = {
    "sklearn_flowspectrum.AMAEModule": ("sklearn_flowspectrum._nn", "AMAEModule"),
    "sklearn_flowspectrum.AMAE1dModule": ("sklearn_flowspectrum._nn1d", "AMAE1dModule"),
    "sklearn_flowspectrum.AMAELoss": ("sklearn_flowspectrum._nn", "AMAELoss"),
    "torch.optim.AdamW": ("torch.optim", "AdamW"),
    "torch.optim.Adam": ("torch.optim", "Adam"),
    "torch.optim.SGD": ("torch.optim", "SGD"),
    "torch.utils.data.DataLoader": ("torch.utils.data", "DataLoader"),
    "skorch.dataset.Dataset": ("skorch.dataset", "Dataset"),
}

#: Functions a parameter may name: skorch's ``PrintLog`` writes with
#: ``print``, the sink the command line sets back after training.
PARAMETER_FUNCTIONS = {"builtins.print": ("builtins", "print")}

# Attributes of the embedder that skorch's ``initialize()`` builds: not
# stored, rebuilt on loading (the network's state goes to safetensors).
_SKORCH_BUILT = frozenset(
    [
        "callbacks_",
        "criterion_",
        "cuda_dependent_attributes_",
        "history_",  # stored, but as data after initialize(): see below
        "init_context_",
        "initialized_",
        "module_",
        "optimizer_",
        "prefixes_",
        "virtual_params_",
    ]
)
_TORCH_PARTS = ("module", "criterion")


def _resolve(table, name):
    module, attr = table[name]
    return getattr(importlib.import_module(module), attr)


def _names_of(table):
    """{class: stable name} for the classes of ``table`` importable here."""
    out = {}
    for name in table:
        try:
            out[_resolve(table, name)] = name
        except (ImportError, AttributeError):  # pragma: no cover - torch missing
            continue
    return out


def _safetensors_torch():
    try:
        import safetensors.torch
    except ImportError as exc:
        raise ImportError(
            "model files store network weights as safetensors; install it "
            "with 'pip install safetensors'"
        ) from exc
    return safetensors.torch


def _versions():
    from importlib.metadata import PackageNotFoundError, version

    out = {
        "python": ".".join(map(str, sys.version_info[:3])),
        "sklearn_flowspectrum": __version__,
    }
    for dist in ("numpy", "scipy", "scikit-learn", "torch", "skorch", "safetensors"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


# ---------------------------------------------------------------------------
# saving


class _Writer:
    """Encodes a model as a JSON-able tree plus blobs (npy, safetensors)."""

    def __init__(self):
        self.blobs = {}
        self._estimators = _names_of(ESTIMATOR_CLASSES)
        self._classes = _names_of(PARAMETER_CLASSES)
        self._functions = _names_of(PARAMETER_FUNCTIONS)

    def _blob(self, kind, suffix, data):
        name = f"{kind}/{len(self.blobs):04d}.{suffix}"
        self.blobs[name] = data
        return name

    def refuse(self, value, where, why=None):
        what = type(value).__module__ + "." + type(value).__qualname__
        raise TypeError(
            f"cannot save {where}: {why or f'a {what} is no value a model file holds'}"
            " (model files hold None, bool, int, float, str, numpy arrays and "
            "scalars, lists, tuples, sets and dicts of those, the package's "
            "estimators and the classes in PARAMETER_CLASSES)"
        )

    def encode(self, value, where):
        kind = type(value)
        if value is None or kind in (bool, int, str):
            return value
        if kind is float:
            if math.isfinite(value):
                return value
            return {"type": "float", "value": repr(value)}
        if kind is list:
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if kind is tuple:
            items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {"type": "tuple", "items": items}
        if kind in (set, frozenset):
            items = [self.encode(v, f"{where} item") for v in value]
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
            return {"type": kind.__name__, "items": items}
        if kind is dict:
            items = []
            for k, v in value.items():
                items.append([self.encode(k, where), self.encode(v, f"{where}[{k!r}]")])
            return {"type": "dict", "items": items}
        if isinstance(value, np.generic):
            return self._scalar(value, where)
        if kind is np.ndarray:
            return self._array(value, where)
        if isinstance(value, type):
            name = self._classes.get(value)
            if name is None:
                self.refuse(
                    value,
                    where,
                    f"the class {value.__module__}.{value.__qualname__} is not "
                    "one a model file may name",
                )
            return {"type": "class", "name": name}
        if kind in self._estimators:
            return self.estimator(value, where)
        if isinstance(value, types.BuiltinFunctionType | types.FunctionType) and (
            value in self._functions
        ):
            return {"type": "function", "name": self._functions[value]}
        if kind.__module__ == "torch" and kind.__name__ == "device":
            return {"type": "torch.device", "value": str(value)}
        if kind.__name__ == "History" and kind.__module__.startswith("skorch"):
            items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {"type": "skorch.History", "items": items}
        self.refuse(value, where)

    def _scalar(self, value, where):
        if value.dtype.kind not in _SCALAR_KINDS:
            self.refuse(value, where)
        item = value.item()
        if value.dtype.kind == "c":
            item = [item.real, item.imag]
        return {
            "type": "numpy.scalar",
            "dtype": value.dtype.str,
            "value": self.encode(item, where),
        }

    def _array(self, value, where):
        if value.dtype.kind == "O":
            # Object arrays (labels of mixed or pandas types) go in the
            # document item by item: npy would pickle them.
            items = [self.encode(v, f"{where} item") for v in value.ravel().tolist()]
            return {"type": "object_array", "shape": list(value.shape), "items": items}
        if value.dtype.kind not in _ARRAY_KINDS or value.dtype.fields is not None:
            self.refuse(value, where, f"an array of dtype {value.dtype} is not stored")
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return {
            "type": "ndarray",
            "blob": self._blob("arrays", "npy", buffer.getvalue()),
        }

    def estimator(self, est, where):
        cls = type(est)
        label = f"{where} ({cls.__name__})"
        if self._estimators[cls] == "sklearn.pipeline.Pipeline" and (
            est.memory is not None
        ):
            raise TypeError(
                f"cannot save {label}: its memory (a cache of fitted "
                "transformers, read back with joblib) is no part of a model "
                "file; set memory=None"
            )
        params = {
            name: self.encode(value, f"{label} parameter {name!r}")
            for name, value in est.get_params(deep=False).items()
        }
        fitted = {}
        names = sorted(
            k for k in vars(est) if k.endswith("_") and not k.startswith("_")
        )
        torch_state = None
        if self._estimators[cls] == "sklearn_flowspectrum.AMAESpectrumEmbedder":
            torch_state = self._network(est, label)
            names = [n for n in names if n not in _SKORCH_BUILT]
            if "history_" in vars(est):
                fitted["history_"] = self.encode(
                    est.history_, f"{label} attribute 'history_'"
                )
        for name in names:
            fitted[name] = self.encode(
                getattr(est, name), f"{label} attribute {name!r}"
            )
        node = {
            "type": "estimator",
            "class": self._estimators[cls],
            "params": params,
            "fitted": fitted,
        }
        if torch_state is not None:
            node["weights"], node["module_kwargs"] = torch_state
        return node

    def _network(self, emb, label):
        """The embedder's network and loss as one safetensors blob and the
        network's constructor arguments (None before ``initialize``)."""
        if not getattr(emb, "initialized_", False):
            return None
        if (
            list(emb._modules) != ["module"]
            or list(emb._criteria) != ["criterion"]
            or list(emb._optimizers) != ["optimizer"]
        ):
            raise TypeError(
                f"cannot save {label}: it has torch modules beyond module_ and "
                f"criterion_ ({emb._modules + emb._criteria}), which a model "
                "file does not hold"
            )
        if not isinstance(emb.module, type) or not isinstance(emb.criterion, type):
            raise TypeError(
                f"cannot save {label}: module and criterion must be classes "
                "(pass the network's arguments as module__<name>), not instances"
            )
        # Every argument, defaults included: a later version with other
        # defaults rebuilds the same network.
        kwargs = {**_constructor_defaults(emb.module), **emb._module_kwargs()}
        _check_rebuilds(emb, kwargs, label)
        tensors = {}
        for part in _TORCH_PARTS:
            obj = emb._plain_module() if part == "module" else emb.criterion_
            for key, tensor in obj.state_dict().items():
                # To the CPU, contiguous (CUDA models are channels_last) and
                # copied (safetensors refuses tensors sharing memory).
                tensors[f"{part}.{key}"] = (
                    tensor.detach().to("cpu", copy=True).contiguous()
                )
        data = _safetensors_torch().save(tensors)
        encoded = self.encode(kwargs, f"{label} network arguments")
        return self._blob("weights", "safetensors", data), encoded


def _constructor_defaults(cls):
    """The keyword defaults of ``cls`` and of the classes it passes
    ``**kwargs`` on to, up to ``torch.nn.Module``."""
    import inspect

    import torch

    defaults = {}
    for klass in cls.__mro__:
        if klass is torch.nn.Module or "__init__" not in vars(klass):
            continue
        for name, param in inspect.signature(klass.__init__).parameters.items():
            if param.default is not inspect.Parameter.empty:
                defaults.setdefault(name, param.default)
    return defaults


def _check_rebuilds(emb, kwargs, label):
    """Refuse to save a network that its arguments do not rebuild (one built
    by an earlier version with other defaults, or changed after building):
    its file would not load."""
    import torch

    with torch.device("meta"):
        probe = emb.module(**kwargs).state_dict()
    actual = emb._plain_module().state_dict()
    if {k: (v.shape, v.dtype) for k, v in probe.items()} != {
        k: (v.shape, v.dtype) for k, v in actual.items()
    }:
        differ = sorted(set(probe) ^ set(actual)) or sorted(
            k for k in probe if probe[k].shape != actual[k].shape
        )
        raise TypeError(
            f"cannot save {label}: its network is not the one its parameters "
            f"build (they differ in {differ[:4]}); a network of an earlier "
            "version with other defaults needs them as module__<name> "
            "parameters"
        )


def _check_metadata(metadata):
    if metadata is None:
        return None
    if type(metadata) is not dict or not all(type(k) is str for k in metadata):
        raise TypeError("metadata must be a dict with str keys")
    return metadata


def save_model(model, path, *, metadata=None):
    """Save a fitted (or unfitted) model to one file, without pickle.

    The file is a zip archive holding a JSON document of the estimators
    (class names, parameters, fitted attributes, package versions and the
    SHA-256 of every other member), the arrays as ``.npy`` and the embedder's
    network as safetensors; see the module documentation.  The optimizer's
    state is not saved.  :func:`load_model` reads it back without running
    code from the file, so a model file can be shared like a data file.

    Parameters
    ----------
    model : Pipeline or estimator of this package
        A :class:`~sklearn.pipeline.Pipeline` of :class:`PcapSessionVectorizer`,
        :class:`AMAESpectrumEmbedder` and :class:`FlowSpectrumClassifier`
        steps, or one of them.  A network trained on a GPU is written from
        the CPU copy of its weights.
    path : str or path-like
        The file to write (whole or not at all); ``.fsm`` is the suffix the
        command line suggests.
    metadata : dict or None, default=None
        Extra values to store beside the model (str keys; values of the kinds
        the model may hold, estimators included), returned by
        ``load_model(path, return_metadata=True)``.

    Raises
    ------
    TypeError
        A parameter or fitted attribute (named in the message) holds a value
        a model file cannot hold, e.g. a skorch callback or a module
        instance.  Nothing is written.

    See Also
    --------
    load_model : Read the file back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn_flowspectrum import FlowSpectrumClassifier, load_model, save_model
    >>> clf = FlowSpectrumClassifier().fit([[0.0], [0.1], [1.0], [1.1]], [0, 0, 1, 1])
    >>> path = os.path.join(tempfile.mkdtemp(), "classifier.fsm")
    >>> save_model(clf, path)
    >>> load_model(path).predict([[0.05], [1.05]])
    array([0, 1])
    """
    writer = _Writer()
    if type(model) not in writer._estimators:
        raise TypeError(
            f"cannot save a {type(model).__name__}: a model file holds a Pipeline "
            "or an estimator of sklearn_flowspectrum"
        )
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": _versions(),
        "model": writer.encode(model, "model"),
        "metadata": None,
    }
    metadata = _check_metadata(metadata)
    if metadata is not None:
        document["metadata"] = writer.encode(metadata, "metadata")
    document["blobs"] = {
        name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in writer.blobs.items()
    }
    text = json.dumps(document, indent=1, sort_keys=True, allow_nan=False)
    with atomic_output(path) as temporary:
        with zipfile.ZipFile(temporary, "w") as archive:
            _write_member(archive, DOCUMENT, text.encode(), zipfile.ZIP_DEFLATED)
            for name, data in writer.blobs.items():
                # Weights barely compress; arrays of lines and labels do.
                method = (
                    zipfile.ZIP_STORED
                    if name.startswith("weights/")
                    else zipfile.ZIP_DEFLATED
                )
                _write_member(archive, name, data, method)


def _write_member(archive, name, data, method):
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = method
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


# ---------------------------------------------------------------------------
# loading


def is_model_format_file(path):
    """Whether ``path`` starts like a model file of :func:`save_model` (a zip
    archive); a pickle starts otherwise."""
    with open(path, "rb") as f:
        return f.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC


class _InvalidModelFile(ValueError):
    """A model file that :func:`load_model` refuses; the message names it."""


class _Reader:
    """Decodes the document of one model file; every error names the file."""

    def __init__(self, path, blobs):
        self.path = path
        self.blobs = blobs
        self.used = set()
        self.device_warned = False

    def fail(self, message):
        raise _InvalidModelFile(f"{self.path}: {message}")

    def blob(self, name, where):
        if not isinstance(name, str) or name not in self.blobs:
            self.fail(f"{where} refers to a member {name!r} the file does not list")
        self.used.add(name)
        return self.blobs[name]

    def decode(self, node, where):
        try:
            return self._decode(node, where)
        except _InvalidModelFile:
            raise
        except (
            AttributeError,
            IndexError,
            KeyError,
            RuntimeError,
            TypeError,
            ValueError,
        ) as exc:
            self.fail(f"{where}: malformed ({type(exc).__name__}: {exc})")

    def _decode(self, node, where):
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is list:
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if type(node) is not dict or not isinstance(node.get("type"), str):
            self.fail(f"{where} is no value of the model format ({node!r:.60})")
        kind = node["type"]
        if kind == "float":
            if node["value"] not in ("nan", "inf", "-inf"):
                self.fail(f"{where}: {node['value']!r} is not a float")
            return float(node["value"])
        if kind in ("tuple", "set", "frozenset", "skorch.History"):
            items = self.decode(node["items"], where)
            if type(items) is not list:
                self.fail(f"{where}: the items of a {kind} must be a list")
            if kind == "skorch.History":
                from skorch.history import History

                return History(items)
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
        if kind == "dict":
            return {
                self.decode(k, where): self.decode(v, f"{where}[{k!r}]")
                for k, v in node["items"]
            }
        if kind == "numpy.scalar":
            return self._scalar(node, where)
        if kind == "ndarray":
            return self._array(node, where)
        if kind == "object_array":
            items = self.decode(node["items"], where)
            shape = tuple(int(n) for n in node["shape"])
            out = np.empty(len(items), dtype=object)
            for i, item in enumerate(items):
                out[i] = item
            return out.reshape(shape)
        if kind == "class":
            return self._class(PARAMETER_CLASSES, node["name"], where)
        if kind == "function":
            return self._class(PARAMETER_FUNCTIONS, node["name"], where)
        if kind == "torch.device":
            import torch

            return torch.device(str(node["value"]))
        if kind == "estimator":
            return self.estimator(node, where)
        self.fail(f"{where}: unknown value type {kind!r}")

    def _scalar(self, node, where):
        dtype = np.dtype(str(node["dtype"]))
        if dtype.kind not in _SCALAR_KINDS:
            self.fail(f"{where}: a scalar of dtype {dtype} is not allowed")
        value = self.decode(node["value"], where)
        if dtype.kind == "c":
            value = complex(*value)
        return dtype.type(value)

    def _array(self, node, where):
        name = node["blob"]
        data = self.blob(name, where)
        try:
            array = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        except ValueError as exc:
            self.fail(f"{name} is no plain .npy array ({exc}); nothing was unpickled")
        if array.dtype.kind not in _ARRAY_KINDS or array.dtype.fields is not None:
            self.fail(f"{name}: arrays of dtype {array.dtype} are not allowed")
        return array

    def _class(self, table, name, where):
        if not isinstance(name, str) or name not in table:
            allowed = ", ".join(sorted(table))
            self.fail(
                f"{where} names the class {name!r}, which a model file may not "
                f"name (allowed: {allowed}); nothing was loaded"
            )
        return _resolve(table, name)

    def estimator(self, node, where):
        cls = self._class(ESTIMATOR_CLASSES, node["class"], f"{where}")
        label = f"{where} ({cls.__name__})"
        params = node["params"]
        fitted = node["fitted"]
        if type(params) is not dict or type(fitted) is not dict:
            self.fail(f"{label}: params and fitted must be objects")
        params = {
            str(k): self.decode(v, f"{label} parameter {k!r}")
            for k, v in params.items()
        }
        fitted = {
            str(k): self.decode(v, f"{label} attribute {k!r}")
            for k, v in fitted.items()
        }
        is_embedder = node["class"] == "sklearn_flowspectrum.AMAESpectrumEmbedder"
        for name in fitted:
            if (
                not _FITTED_NAME.fullmatch(name)
                or hasattr(cls, name)
                or name in params
                or (is_embedder and name in _SKORCH_BUILT - {"history_"})
            ):
                self.fail(f"{label}: {name!r} is no fitted attribute it may have")
        if is_embedder:
            params = self._map_device(params, label)
        try:
            est = cls(**params)
        except (TypeError, ValueError) as exc:
            self.fail(f"{label}: the parameters do not build one ({exc})")
        if is_embedder:
            weights = node.get("weights")
            history = fitted.pop("history_", None)
            vars(est).update(fitted)
            if weights is not None:
                module_kwargs = self.decode(
                    node.get("module_kwargs"), f"{label} network arguments"
                )
                if type(module_kwargs) is not dict or not all(
                    type(k) is str for k in module_kwargs
                ):
                    self.fail(f"{label}: no network arguments beside the weights")
                self._restore_network(est, weights, module_kwargs, label)
                if history is not None:
                    est.history_ = history
            elif history is not None:
                self.fail(f"{label}: a history but no weights")
            if "device_" in fitted:
                est.device_ = str(est.device)
            return est
        if "weights" in node:
            self.fail(f"{label}: only an embedder has weights")
        if node["class"] == "sklearn.pipeline.Pipeline":
            self._check_steps(est.steps, label)
            if est.memory is not None:
                # joblib would unpickle cached transformers from that folder
                self.fail(f"{label}: a pipeline with a memory (cache folder)")
        vars(est).update(fitted)
        if fitted and cls.__name__ == "FlowSpectrumClassifier":
            try:
                est._build_densities(list(est.algorithm_))
            except (AttributeError, TypeError, ValueError, IndexError) as exc:
                self.fail(f"{label}: its fitted spectral lines do not fit ({exc})")
        return est

    def _check_steps(self, steps, label):
        if type(steps) is not list or not steps:
            self.fail(f"{label}: steps must be a non-empty list")
        for step in steps:
            if (
                type(step) is not tuple
                or len(step) != 2
                or type(step[0]) is not str
                or not (
                    step[1] is None
                    or step[1] == "passthrough"
                    or hasattr(step[1], "get_params")
                )
            ):
                self.fail(f"{label}: {step!r:.80} is no (name, estimator) step")

    def _map_device(self, params, label):
        """A model trained (and saved) for CUDA runs on the CPU where CUDA is
        not available, as skorch does for its pickles."""
        import torch

        device = params.get("device", "auto")
        if device is None or str(device) == "auto":
            return params
        try:
            kind = torch.device(device).type
        except (RuntimeError, TypeError):
            self.fail(f"{label}: {device!r} is no torch device")
        if kind == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"{self.path}: the model was saved to run on {str(device)!r}; "
                "CUDA is not available here, so it runs on the CPU",
                UserWarning,
                stacklevel=4,
            )
            params = {**params, "device": "cpu"}
        return params

    def _restore_network(self, emb, name, module_kwargs, label):
        import torch

        data = self.blob(name, f"{label} weights")
        try:
            tensors = _safetensors_torch().load(data)
        except Exception as exc:  # noqa: BLE001 - any parse error of the blob
            self.fail(f"{name} is no safetensors file ({type(exc).__name__}: {exc})")
        # The saved arguments the parameters leave to the defaults go in as
        # module__<name> for the building only (get_params stays as saved).
        explicit = emb._module_kwargs()
        pinned = [k for k in module_kwargs if k not in explicit]
        for k in pinned:
            vars(emb)[f"module__{k}"] = module_kwargs[k]
        # skorch builds a fresh, randomly initialised network: keep the
        # caller's random streams as they were.
        try:
            with torch.random.fork_rng(devices=[]):
                emb.initialize()
        except Exception as exc:  # noqa: BLE001 - parameters that build no network
            self.fail(
                f"{label}: its parameters build no network "
                f"({type(exc).__name__}: {exc})"
            )
        finally:
            for k in pinned:
                vars(emb).pop(f"module__{k}", None)
        differ = sorted(
            k
            for k, v in explicit.items()
            if k in module_kwargs and module_kwargs[k] != v
        )
        if differ:
            self.fail(f"{label}: its network arguments contradict it in {differ}")
        for part in _TORCH_PARTS:
            obj = emb._plain_module() if part == "module" else emb.criterion_
            expected = obj.state_dict()
            prefix = f"{part}."
            state = {
                key[len(prefix) :]: tensor
                for key, tensor in tensors.items()
                if key.startswith(prefix)
            }
            missing = sorted(set(expected) - set(state))
            extra = sorted(set(state) - set(expected))
            if missing or extra:
                self.fail(
                    f"{name} does not fit the {part} built from the parameters "
                    f"(missing: {missing[:5]}, unexpected: {extra[:5]})"
                )
            for key, tensor in state.items():
                want = expected[key]
                if tensor.shape != want.shape or tensor.dtype != want.dtype:
                    self.fail(
                        f"{name}: {part}.{key} is {tensor.dtype} "
                        f"{tuple(tensor.shape)}, the {part} needs {want.dtype} "
                        f"{tuple(want.shape)}"
                    )
            obj.load_state_dict(state, strict=True)
        stray = sorted(
            key
            for key in tensors
            if not key.startswith(tuple(f"{p}." for p in _TORCH_PARTS))
        )
        if stray:
            self.fail(f"{name} holds tensors of no part of the model: {stray[:5]}")


# A member that zipfile cannot read: damaged, encrypted (RuntimeError) or
# compressed by a method it lacks (NotImplementedError).
_UNREADABLE = (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError)


def _read_archive(path):
    """(document, {blob name: bytes}) of ``path``, every member checked."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path}: not a model file of save_model ({exc})") from None
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            doubled = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"{path}: members stored twice: {doubled}")
        by_name = {info.filename: info for info in infos}
        if DOCUMENT not in by_name:
            raise ValueError(f"{path}: not a model file of save_model (no {DOCUMENT})")
        if by_name[DOCUMENT].file_size > _MAX_DOCUMENT_BYTES:
            raise ValueError(f"{path}: {DOCUMENT} is larger than any model's document")
        try:
            document = json.loads(archive.read(DOCUMENT))
        except _UNREADABLE as exc:
            raise ValueError(f"{path}: {DOCUMENT} is damaged ({exc})") from None
        except ValueError as exc:  # UnicodeDecodeError too
            raise ValueError(f"{path}: {DOCUMENT} is not JSON ({exc})") from None
        _check_header(path, document)
        listed = document["blobs"]
        present = set(by_name) - {DOCUMENT}
        missing = sorted(set(listed) - present)
        extra = sorted(present - set(listed))
        if missing:
            raise ValueError(f"{path}: members listed but missing: {missing}")
        if extra:
            raise ValueError(f"{path}: members not listed in {DOCUMENT}: {extra}")
        blobs = {}
        for name, entry in listed.items():
            if (
                not _BLOB_NAME.fullmatch(name)
                or type(entry) is not dict
                or type(entry.get("bytes")) is not int
                or not isinstance(entry.get("sha256"), str)
                or not _SHA256.fullmatch(entry["sha256"])
            ):
                raise ValueError(f"{path}: a malformed entry for member {name!r}")
            if by_name[name].file_size != entry["bytes"]:
                raise ValueError(
                    f"{path}: {name} has {by_name[name].file_size} bytes, "
                    f"{DOCUMENT} says {entry['bytes']}"
                )
            try:
                data = archive.read(name)
            except _UNREADABLE as exc:
                raise ValueError(f"{path}: {name} is damaged ({exc})") from None
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise ValueError(
                    f"{path}: checksum mismatch for {name}: the file was changed "
                    "or damaged after it was saved"
                )
            blobs[name] = data
    return document, blobs


def _check_header(path, document):
    if type(document) is not dict or document.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: not a model file of save_model")
    version = document.get("format_version")
    if type(version) is not int:
        raise ValueError(f"{path}: no format version")
    if version > FORMAT_VERSION:
        saved_by = document.get("versions", {}).get("sklearn_flowspectrum", "?")
        raise ValueError(
            f"{path}: model format {version}, written by sklearn_flowspectrum "
            f"{saved_by}; this version ({__version__}) reads format "
            f"{FORMAT_VERSION} or older: upgrade to read it"
        )
    if type(document.get("blobs")) is not dict or "model" not in document:
        raise ValueError(f"{path}: a malformed {DOCUMENT} (no model or member list)")


def load_model(path, *, return_metadata=False):
    """Load a model saved by :func:`save_model`, running no code from the file.

    Every member's size and SHA-256 is checked first.  Estimators are then
    rebuilt from their parameters (only the classes of
    :data:`ESTIMATOR_CLASSES` and :data:`PARAMETER_CLASSES` may be named),
    their fitted attributes set from JSON and ``.npy`` data (read with
    ``allow_pickle=False``), and the embedder's network from safetensors.
    Predictions are those of the saved model.  A model saved for CUDA loads
    on a machine without it, on the CPU (with a warning).

    Parameters
    ----------
    path : str or path-like
    return_metadata : bool, default=False
        Also return the ``metadata`` given to :func:`save_model` (None if
        none).

    Returns
    -------
    model : Pipeline or estimator
    metadata : dict or None
        Only when ``return_metadata``.

    Raises
    ------
    ValueError
        The file is no model file, was changed or damaged (a checksum or size
        that does not match, a member missing or left over), names a class
        outside the lists, or holds state that does not fit the estimator;
        the message names the file and the problem.
    """
    path = str(path)
    document, blobs = _read_archive(path)
    reader = _Reader(path, blobs)
    model = reader.decode(document["model"], "model")
    if not hasattr(model, "get_params"):
        reader.fail("the model is no estimator")
    metadata = reader.decode(document.get("metadata"), "metadata")
    if metadata is not None and type(metadata) is not dict:
        reader.fail("metadata is not a dict")
    unused = sorted(set(blobs) - reader.used)
    if unused:
        reader.fail(f"members that no part of the model uses: {unused}")
    if return_metadata:
        return model, metadata
    return model
