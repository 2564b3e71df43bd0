# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""AMAESpectrumEmbedder: session images -> one spectrum value per session."""

import math
import mmap
import numbers
from contextlib import nullcontext

import numpy as np
import torch
from sklearn.base import TransformerMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet

from sklearn_flowspectrum._callbacks import WarmupCosine
from sklearn_flowspectrum._layouts import mostly_pcap_rows
from sklearn_flowspectrum._model_file import restricted_loading, vet_nested_pickle
from sklearn_flowspectrum._nn import AMAELoss, order_classes
from sklearn_flowspectrum._nn1d import AMAE1dModule
from sklearn_flowspectrum._protocols import PCAP_GLOBAL_LEN
from sklearn_flowspectrum._validation import (
    byte_feature_names,
    read_by_position,
    spectrum_feature_names,
)

__all__ = ["AMAESpectrumEmbedder"]

# ``lr`` is the learning rate at this batch size (the default); ``lr_scaling``
# scales it for other batch sizes.
_REFERENCE_BATCH = 256


def _resolve_device(device):
    if device is None or str(device) != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _never(self):
    return False


class _TensorDataset(torch.utils.data.Dataset):
    """Images (n, 1, side, side) and optional labels (n,), already as tensors.

    skorch's ``ValidSplit`` wraps it in ``torch.utils.data.Subset``; the
    embedder's iterator reads the tensors back out of either.
    """

    def __init__(self, X, y=None):
        self.X = X
        self.y = y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], (self.y[i] if self.y is not None else torch.zeros(()))


def memory_mapped(X):
    """Whether ``X`` (an array) is a view of a memory-mapped file."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


class _MappedImages:
    """Session images read on demand from a memory-mapped ``(n, n_bytes)`` array.

    Indexing with a slice or with indices returns those images as a
    ``(k, 1, side, side)`` tensor on ``device``, read from the file then; the
    whole array is never in memory at once.  ``rows`` restricts it to a
    subset without reading it (skorch's validation split).
    """

    def __init__(self, X, side, device, rows=None):
        self.X = X
        self.side = side
        self.device = torch.device(device)
        self.rows = rows

    def __len__(self):
        return len(self.X) if self.rows is None else len(self.rows)

    def subset(self, indices):
        indices = np.asarray(indices)
        rows = indices if self.rows is None else self.rows[indices]
        return _MappedImages(self.X, self.side, self.device, rows)

    def __getitem__(self, key):
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        if self.rows is not None:
            key = self.rows[key]
        if isinstance(key, slice):
            block = self.X[key]
        else:
            # Sorted reads run through the file front to back.
            key = np.atleast_1d(np.asarray(key))
            order = np.argsort(key, kind="stable")
            block = np.empty((len(key), self.X.shape[1]), dtype=self.X.dtype)
            block[order] = self.X[key[order]]
        block = np.array(block, dtype=block.dtype)  # off the file, writable
        n, n_bytes = block.shape
        t = torch.from_numpy(block)
        if n_bytes != self.side * self.side:
            t = torch.nn.functional.pad(t, (0, self.side * self.side - n_bytes))
        return t.view(n, 1, self.side, self.side).to(self.device)


class _TensorBatches:
    """Mini-batches sliced from tensors that already sit on the compute device.

    Replaces a ``DataLoader``: no per-sample ``__getitem__`` and collation,
    and on a GPU no host-to-device copy per batch; one ``randperm`` per epoch
    (drawn on the device, from a seeded generator) and one gather per batch.
    """

    def __init__(self, X, y, batch_size, shuffle, generator):
        self.X = X
        self.y = y
        self.batch_size = len(X) if batch_size == -1 else batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return max(1, math.ceil(len(self.X) / self.batch_size)) if len(self.X) else 0

    def __iter__(self):
        n = len(self.X)
        bs = self.batch_size
        if self.shuffle:
            order = torch.randperm(
                n, generator=self.generator, device=self.generator.device
            ).to(self.X.device)
            for start in range(0, n, bs):
                idx = order[start : start + bs]
                yield self.X[idx], (None if self.y is None else self.y[idx])
        else:
            for start in range(0, n, bs):
                sl = slice(start, start + bs)
                yield self.X[sl], (None if self.y is None else self.y[sl])


class AMAESpectrumEmbedder(TransformerMixin, NeuralNet):
    """Map session images to their FlowSpectrum value with the AMAE network.

    A skorch :class:`~skorch.NeuralNet` around the AMAE network: attention
    over the session's bytes, a convolutional autoencoder, and a mapper from
    the code to ONE real number per session, ``d(A)`` (Cui et al. 2024,
    sec. 3.3).  With labels, a classification head on ``d(A)`` is trained
    together with the reconstruction loss, so that classes occupy separate
    intervals of the line; without labels the network is a plain autoencoder
    and ``d(A)`` is the first principal axis of its code.

    Parameters
    ----------
    module : torch module class or instance, default=AMAE1dModule
        The network; its ``side`` and ``n_classes`` are set from the data.
        Further arguments go through ``module__<name>`` (e.g.
        ``module__mapper_hidden=(128,)``).  The default,
        :class:`AMAE1dModule`, convolves along the byte sequence;
        ``module=AMAEModule`` is the paper's network (Table 1, 3x3
        convolutions on the 28x28 image).
    criterion : torch module class, default=AMAELoss
        Loss; weights through ``criterion__<name>``.
    optimizer : torch optimizer class, default=torch.optim.AdamW
        On CUDA the fused implementation is used when the optimizer offers it.
    lr : float, default=2e-3
        Peak learning rate (before ``lr_scaling``).  The paper uses 5e-4 at
        batch 64 for 250 epochs; with AdamW, a 5% warm-up and cosine decay,
        2e-3 at batch 256 trains in tens of epochs; on a GPU, batch 1024
        with ``lr_scaling="sqrt"`` (so 4e-3) was the setting of the accuracy
        study (``benchmarks/accuracy_embedder.py``).
    max_epochs : int, default=20
        Passes over the training data (the paper: 250).  Twenty is a
        laptop-sized default (the full network trains at a few hundred
        sessions per second on a laptop CPU); on a GPU, raise it.
    batch_size : int, default=256
        Training batch size; -1 trains on the whole set at once.
    attention : bool, default=True
        ``False`` trains the paper's "AE" baseline without attention.
    lr_schedule : {"cosine", "constant"}, default="cosine"
        ``"cosine"``: linear warm-up over the first 5% of the optimizer steps
        of a ``fit``, then cosine decay to zero (the skorch callback
        :class:`WarmupCosine`, named ``"warmup_cosine"``).  ``"constant"``
        leaves the learning rate to the optimizer and to any skorch
        ``LRScheduler`` callback.
    class_order : {"confusion", "labels"}, default="confusion"
        Where the classes sit on the line (the softmax mapper places each
        session at the posterior-weighted place of the classes).
        ``"confusion"``: after training, classes the network confuses on the
        training sessions are made neighbours (:func:`order_classes`), so a
        session torn between two classes lands between them and not on a
        third.  ``"labels"``: in the sorted order of the labels (models
        saved before this option existed load with it).
        Has no effect with ``module__mapper="mlp"``, whose line is learned.
    lr_scaling : {"sqrt", "linear"} or None, default=None
        Scale ``lr`` by ``sqrt(batch_size / 256)`` or ``batch_size / 256``
        (``lr`` is the rate for the default batch of 256), so that large
        batches on a GPU keep the per-sample progress of small ones.
    precision : {"fp32", "bf16"}, default="fp32"
        ``"bf16"`` runs the network under bfloat16 autocast (weights, loss,
        spectrum head and the mapper's output layer stay float32).
    inference_batch_size : int or None, default=None
        Batch size of ``transform`` and friends; None picks 512 on CPU and
        16384 on CUDA.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, dropout and batch order (the global torch
        RNG state is restored afterwards).  With an int, CPU training is
        reproducible for a given number of torch threads; see Notes.
    train_split : callable or None, default=None
        skorch's validation split, e.g. ``skorch.dataset.ValidSplit(0.2)``;
        None trains on all data.  Use with callbacks such as
        ``skorch.callbacks.EarlyStopping`` or ``Checkpoint``.
    callbacks : list or None, default=None
        skorch callbacks, e.g. ``[("stop", EarlyStopping(patience=5))]``;
        ``skorch.callbacks.ProgressBar()`` shows progress per batch.
    verbose : int, default=0
        ``1`` prints skorch's per-epoch table (losses, duration).
    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.  On CUDA the whole
        training set is copied to the device once and batches are sliced
        there.
    compile : bool, default=False
        ``torch.compile`` the module (skorch's option; ``compile__<name>``
        arguments are passed on).
    **kwargs
        Other skorch ``NeuralNet`` arguments (``warm_start``,
        ``iterator_train__shuffle``, ``optimizer__weight_decay``...).

    Attributes
    ----------
    module_ : AMAE1dModule or AMAEModule
        The trained network.
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in ``fit`` (only when ``y`` was given).
    n_features_in_ : int
        Number of bytes per session seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen in ``fit``, when ``X`` was a DataFrame.  The
        vectorizer's positional names (``byte0``, ``byte1``, ...) are read by
        position, so switching ``set_output`` on a fitted pipeline does not
        warn; other names must match, as in scikit-learn.
    pcap_images_ : bool
        Whether most training images start with a pcap global header
        (USTC-TK2016 AllLayers rows; the vectorizer's ``"ustc"`` layout of
        all layers).  ``transform`` and ``partial_fit`` raise a ``ValueError``
        on images of the other kind: L7 payloads or frames where the model
        learned pcap images, or the other way round.
    line_order_ : ndarray of shape (n_classes,)
        The classes from left to right on the line (by the median spectrum
        of their training sessions).  Only when fitted with labels.
    side_ : int
        Side of the square image the bytes are laid out on
        (``ceil(sqrt(n_features_in_))``; missing positions are zero).
    attention_weights_ : ndarray of shape (n_classes, n_features_in_)
        Per class, the attention weights ``W_m`` averaged over the class's
        training sessions and standardised (zero mean, unit variance over
        the bytes), as in the paper's Figures 7-10.  One row when fitted
        without labels.  Not set when ``attention=False``.
    device_ : str
        The device the model was trained on.
    history_ : skorch.History
        Per-epoch losses and timings.

    See Also
    --------
    AMAE1dModule : The default network.
    AMAEModule : The paper's network.

    Notes
    -----
    Pixels: bytes as ``float32`` in [0, 1] (the vectorizer's output) or as
    ``uint8`` (divided by 255); other dtypes are converted to ``float32``
    unchanged.  The reconstruction head ends in a sigmoid, so values outside
    [0, 1] cannot be reconstructed.

    Reproducibility: with an int ``random_state``, two CPU fits with the same
    data and the same number of torch threads (``torch.get_num_threads()``)
    give identical spectra.  Another thread count gives other spectra:
    PyTorch's parallel reductions (loss means, oneDNN's convolution
    gradients) add in another order, and the last-bit differences grow with
    training (``benchmarks/bench_thread_determinism.py``).  The count changes
    with the machine, ``OMP_NUM_THREADS`` and joblib workers (e.g.
    ``cross_val_score(..., n_jobs=2)``); fix it with
    ``torch.set_num_threads`` to reproduce a fit.  CUDA training is not
    reproducible (tag ``non_deterministic``).

    ``predict``/``predict_proba`` of ``NeuralNet`` are not offered: this is a
    transformer; classify its output with a classifier on the spectrum.

    Speed (``benchmarks/bench_embedder.py``): on a 2-core CPU the default
    network trains as fast as a hand-written PyTorch loop of the same
    network (1,440 against 1,333 samples/s, batch 256, fp32; the 2-D
    network: 402 samples/s), and fits the 35,501 sessions of the ISCX train
    split in under 9 minutes (``benchmarks/fit_time.py``); on one H100 the
    paper's 2-D network trained at 165,000 samples/s at batch 4096 in bf16,
    within 2% of such a loop (the 1-D default has not been measured on a
    GPU). Accuracy of the one-number spectrum on the 12-class ISCX session
    data, masked AllLayers rows (``mask="safe"``), default settings, 800
    sessions per class, stratified 3-fold
    (``benchmarks/spectrum_vs_trees.py``): 85.7% per session and macro-F1
    0.869, against 86.1% and 0.872 for ExtraTrees(300) on the same bytes and
    folds; see :ref:`spectrum_standing` for the other settings. About a
    quarter of those sessions are LLMNR lookups shared by two classes, which
    caps any honest per-session score near 90%; see
    :ref:`evaluation_toolkit`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum import AMAESpectrumEmbedder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(40, 64), dtype=np.uint8)  # 8x8 images
    >>> y = np.repeat(["chat", "voip"], 20)
    >>> emb = AMAESpectrumEmbedder(max_epochs=2, batch_size=16, random_state=0)
    >>> emb.fit_transform(X, y).shape
    (40, 1)
    >>> emb.attention_weights_.shape
    (2, 64)
    """

    _parameter_constraints = {
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, -1, None, closed="left")],
        "attention": ["boolean"],
        "lr_schedule": [StrOptions({"cosine", "constant"})],
        "class_order": [StrOptions({"confusion", "labels"})],
        "lr_scaling": [StrOptions({"sqrt", "linear"}), None],
        "precision": [StrOptions({"fp32", "bf16"})],
        "inference_batch_size": [
            Interval(numbers.Integral, 1, None, closed="left"),
            None,
        ],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        module=AMAE1dModule,
        *,
        criterion=AMAELoss,
        optimizer=torch.optim.AdamW,
        lr=2e-3,
        max_epochs=20,
        batch_size=256,
        attention=True,
        lr_schedule="cosine",
        class_order="confusion",
        lr_scaling=None,
        precision="fp32",
        inference_batch_size=None,
        random_state=None,
        train_split=None,
        callbacks=None,
        verbose=0,
        device="auto",
        compile=False,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks,
            verbose=verbose,
            device=device,
            compile=compile,
            **kwargs,
        )
        self.attention = attention
        self.lr_schedule = lr_schedule
        self.class_order = class_order
        self.lr_scaling = lr_scaling
        self.precision = precision
        self.inference_batch_size = inference_batch_size
        self.random_state = random_state

    # ------------------------------------------------------------------
    # device="auto": the public parameter keeps what the user passed (so
    # get_params/clone see it unchanged); skorch's internals read the
    # resolved device through this property.
    @property
    def device(self):
        return _resolve_device(self.__dict__.get("device", "auto"))

    @device.setter
    def device(self, value):
        self.__dict__["device"] = value

    def _get_param_names(self):
        # skorch lists every public attribute as a parameter, which includes
        # its private bookkeeping set ``_params_to_validate``; that is no
        # constructor argument.
        return [k for k in super()._get_param_names() if not k.startswith("_")]

    def get_params(self, deep=True, **kwargs):
        params = super().get_params(deep=deep, **kwargs)
        if "device" in params:
            params["device"] = self.__dict__.get("device", "auto")
        return params

    def set_params(self, **kwargs):
        # skorch builds the callbacks as soon as ``callbacks`` is set; before
        # the first fit, store it like any other parameter (sklearn's rule:
        # validate in fit, never in set_params).
        if "callbacks" in kwargs and not self.initialized_:
            self.__dict__["callbacks"] = kwargs.pop("callbacks")
        return super().set_params(**kwargs)

    def __setstate__(self, state):
        # Models saved before class_order existed keep the label order.
        state.setdefault("class_order", "labels")
        vetted = restricted_loading()
        if vetted:
            # skorch unpickles module_, criterion_ and optimizer_ from this
            # nested pickle without restriction: vet it with the model file's
            # allowlist first, and read its tensors as weights only.
            vet_nested_pickle(state["__cuda_dependent_attributes__"])
            torch_load_kwargs = state.get("torch_load_kwargs")
            state = {**state, "torch_load_kwargs": {"weights_only": True}}
        raw = state.get("device", "auto")
        if raw is not None and str(raw) == "auto":
            # Map tensors saved on a GPU to whatever this machine has.
            state = dict(state)
            state["device"] = _resolve_device("auto")
            super().__setstate__(state)
            self.__dict__["device"] = "auto"
            if "device_" in self.__dict__:
                self.__dict__["device_"] = str(_resolve_device("auto"))
        else:
            super().__setstate__(state)
            if "device_" in self.__dict__:
                self.__dict__["device_"] = str(self.device)
        if vetted:
            self.__dict__["torch_load_kwargs"] = torch_load_kwargs

    # ------------------------------------------------------------------
    # sklearn API plumbing
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Seeded CPU training is reproducible for a fixed number of torch
        # threads, which is what sklearn's checks compare (two fits in one
        # process); across thread counts it is not (see the class Notes), a
        # property of the environment that no tag expresses.  CUDA kernels
        # (atomics in the convolution backward pass) are not reproducible.
        tags.non_deterministic = torch.device(self.device).type != "cpu"
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def _validate_params(self):
        # skorch's own check (unknown or misspelt ``prefix__`` arguments)
        # and sklearn's declarative constraints on the parameters it knows.
        # skorch registers the module/criterion/optimizer prefixes only when
        # it builds them; before the first fit, accept them explicitly.
        missing = [
            p for p in ("module", "criterion", "optimizer") if p not in self.prefixes_
        ]
        if missing:
            had_own = "prefixes_" in self.__dict__
            previous = self.prefixes_
            self.__dict__["prefixes_"] = list(previous) + missing
            try:
                super()._validate_params()
            finally:
                if had_own:
                    self.__dict__["prefixes_"] = previous
                else:
                    del self.__dict__["prefixes_"]
        else:
            super()._validate_params()
        validate_parameter_constraints(
            self._parameter_constraints,
            self.get_params(deep=False),
            caller_name=self.__class__.__name__,
        )
        if self.batch_size == 0 or self.batch_size < -1:
            raise ValueError(
                "The 'batch_size' parameter of AMAESpectrumEmbedder must be a "
                f"positive int or -1, got {self.batch_size!r}."
            )

    @available_if(_never)
    def predict(self, X):
        """Not available: the embedder is a transformer."""

    @available_if(_never)
    def predict_proba(self, X):
        """Not available: the embedder is a transformer."""

    def get_feature_names_out(self, input_features=None):
        """Return ``["spectrum0"]``, the name of the single output column.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; present for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self, "n_features_in_")
        return spectrum_feature_names(1)

    # ------------------------------------------------------------------
    # data
    def _check_X(self, X, reset):
        if not reset:
            X = read_by_position(self, X, byte_feature_names)
        X = validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float32, np.float64, np.uint8],
            ensure_min_samples=1,
        )
        if X.dtype != np.uint8:
            X = X.astype(np.float32, copy=False)
        pcap = mostly_pcap_rows(X[:, :PCAP_GLOBAL_LEN])
        if reset:
            self.side_ = int(math.ceil(math.sqrt(X.shape[1])))
            self.pcap_images_ = pcap
        elif pcap != self.__dict__.get("pcap_images_", pcap):
            # Same width, another kind of image: AllLayers (pcap file) rows
            # against L7 payloads or frames.  The numbers would be garbage.
            kinds = {
                True: "images that start with a pcap header (AllLayers rows, "
                "the vectorizer's 'ustc' layout of all layers)",
                False: "images without a pcap header (e.g. L7 payload rows, "
                "the 'frames' or 'packets' layout)",
            }
            raise ValueError(
                f"AMAESpectrumEmbedder was fitted on {kinds[self.pcap_images_]}, "
                f"but X holds {kinds[pcap]}; make them the way the training "
                "images were made"
            )
        return X

    def _to_images(self, X, device=None):
        """(n, n_bytes) array -> (n, 1, side, side) tensor on ``device``."""
        side = self.side_
        n, n_bytes = X.shape
        X = np.ascontiguousarray(X)
        if not X.flags.writeable:
            # torch cannot share read-only memory (pandas' output, a
            # read-only memmap) and warns; the images are only read, but a
            # copy is the one way to hand them over without the warning.
            X = X.copy()
        t = torch.from_numpy(X)
        if n_bytes != side * side:
            t = torch.nn.functional.pad(t, (0, side * side - n_bytes))
        t = t.view(n, 1, side, side)
        if device is not None:
            t = t.to(device, non_blocking=False)
        return t

    @staticmethod
    def _as_float(xb):
        if xb.dtype == torch.uint8:
            return xb.float().div_(255.0)
        return xb.float()

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(
                device_type=torch.device(self.device).type, dtype=torch.bfloat16
            )
        return nullcontext()

    def _infer_batch_size(self):
        if self.inference_batch_size is not None:
            return self.inference_batch_size
        return 16384 if torch.device(self.device).type == "cuda" else 512

    # ------------------------------------------------------------------
    # skorch hooks
    def _module_kwargs(self):
        """The arguments ``initialize_module`` builds the network with."""
        kwargs = self.get_params_for("module")
        kwargs.setdefault("attention", self.attention)
        if "side_" in self.__dict__:
            kwargs.setdefault("side", self.side_)
            kwargs.setdefault(
                "n_classes", len(self.classes_) if hasattr(self, "classes_") else 0
            )
        return kwargs

    def initialize_module(self):
        kwargs = self._module_kwargs()
        module = self.initialized_instance(self.module, kwargs)
        if torch.device(self.device).type == "cuda":
            # NHWC lets cuDNN use its tensor-core convolutions without
            # transposing every activation.
            module = module.to(memory_format=torch.channels_last)
        self.module_ = module
        return self

    def initialize_criterion(self):
        super().initialize_criterion()
        set_mapper = getattr(self.criterion_, "set_mapper", None)
        if set_mapper is not None:
            set_mapper(getattr(self._plain_module(), "mapper_kind", "mlp"))
        return self

    def get_default_callbacks(self):
        callbacks = list(super().get_default_callbacks())
        if self.lr_schedule == "cosine":
            callbacks.append(("warmup_cosine", WarmupCosine()))
        return callbacks

    def initialize_optimizer(self, triggered_directly=None):
        named_parameters = self.get_all_learnable_params()
        args, kwargs = self.get_params_for_optimizer("optimizer", named_parameters)
        if self.lr_scaling is not None and self.batch_size > 0:
            ratio = self.batch_size / _REFERENCE_BATCH
            factor = math.sqrt(ratio) if self.lr_scaling == "sqrt" else ratio
            kwargs["lr"] = kwargs.get("lr", self.lr) * factor
        if (
            torch.device(self.device).type == "cuda"
            and "fused" not in kwargs
            and self.optimizer in (torch.optim.Adam, torch.optim.AdamW)
        ):
            kwargs["fused"] = True
        self.optimizer_ = self.optimizer(*args, **kwargs)
        return self

    def get_dataset(self, X, y=None):
        if isinstance(X, torch.utils.data.Dataset):
            return X
        device = self.device
        if isinstance(X, _MappedImages):
            Xt = X
        else:
            Xt = X if isinstance(X, torch.Tensor) else self._to_images(X)
            Xt = Xt.to(device)
        yt = None
        if y is not None:
            yt = torch.as_tensor(np.asarray(y), dtype=torch.int64, device=device)
        return _TensorDataset(Xt, yt)

    def get_iterator(self, dataset, training=False):
        base = dataset
        indices = None
        if isinstance(dataset, torch.utils.data.Subset):
            base, indices = dataset.dataset, dataset.indices
        if not isinstance(base, _TensorDataset):
            return super().get_iterator(dataset, training=training)
        X, y = base.X, base.y
        if indices is not None:
            idx = torch.as_tensor(
                np.asarray(indices), dtype=torch.long, device=X.device
            )
            X = X.subset(indices) if isinstance(X, _MappedImages) else X[idx]
            y = None if y is None else y[idx]
        if training:
            kwargs = self.get_params_for("iterator_train")
            shuffle = kwargs.get("shuffle", True)
        else:
            kwargs = self.get_params_for("iterator_valid")
            shuffle = False
        batch_size = kwargs.get("batch_size", self.batch_size)
        return _TensorBatches(X, y, batch_size, shuffle, self._batch_generator)

    def _prepare(self, Xi):
        Xi = Xi if isinstance(Xi, torch.Tensor) else torch.as_tensor(Xi)
        return self._as_float(Xi.to(self.device, non_blocking=True))

    def infer(self, x, **fit_params):
        with self._autocast():
            return self.module_(self._prepare(x), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if y_true is not None:
            if "classes_" not in self.__dict__:
                # skorch's own Dataset yields placeholder targets without y.
                y_true = None
            else:
                y_true = torch.as_tensor(y_true, device=X.device).long()
        return self.criterion_(y_pred, X, y_true)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = batch
        x = self._prepare(Xi)
        with self._autocast():
            y_pred = self.module_(x, **fit_params)
            loss = self.get_loss(y_pred, yi, X=x, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        Xi, yi = batch
        x = self._prepare(Xi)
        with torch.no_grad(), self._autocast():
            y_pred = self.module_(x, **fit_params)
            loss = self.get_loss(y_pred, yi, X=x, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # As skorch's, but the batch losses stay on the device until the
        # epoch ends: one synchronisation per epoch instead of one per batch
        # (skorch offers no hook for it; on a GPU the per-batch ``.item()``
        # cost a tenth of the throughput).
        if iterator is None:
            return
        losses = []
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach())
            self.history.record_batch(prefix + "_batch_size", len(batch[0]))
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        if losses:
            values = torch.stack(losses).float().tolist()
            batches = self.history[-1]["batches"]
            for entry, value in zip(batches[-batch_count:], values):
                entry[prefix + "_loss"] = value
        self.history.record(prefix + "_batch_count", batch_count)

    # ------------------------------------------------------------------
    # fitting
    def _encode_y(self, y, reset):
        if y is None:
            if reset and hasattr(self, "classes_"):
                del self.classes_
            return None
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        check_classification_targets(y)
        if reset:
            enc = LabelEncoder().fit(y)
            self.classes_ = enc.classes_
            return enc.transform(y)
        if not hasattr(self, "classes_"):
            raise ValueError(
                "This AMAESpectrumEmbedder was fitted without labels; "
                "partial_fit cannot add them."
            )
        unseen = np.setdiff1d(y, self.classes_)
        if unseen.size:
            raise ValueError(
                f"y contains labels not seen in fit: {unseen[:5].tolist()}"
            )
        return np.searchsorted(self.classes_, y)

    def _rng_context(self, seed):
        if seed is None:
            return nullcontext()
        devices = []
        if torch.device(self.device).type == "cuda" and torch.cuda.is_available():
            devices = [torch.cuda.current_device()]
        return torch.random.fork_rng(devices=devices)

    def _train(self, X, y, reset):
        rng = check_random_state(self.random_state)
        seed = None if self.random_state is None else int(rng.randint(2**31 - 1))
        device = torch.device(self.device)
        gen_device = device if device.type == "cuda" else torch.device("cpu")
        self._batch_generator = torch.Generator(device=gen_device)
        self._batch_generator.manual_seed(
            seed if seed is not None else int(torch.randint(2**31 - 1, ()).item())
        )
        if memory_mapped(X):
            Xt = _MappedImages(X, self.side_, device)
        else:
            Xt = self._to_images(X, device)
        cudnn_benchmark = torch.backends.cudnn.benchmark
        if device.type == "cuda":
            # Fixed batch shapes: let cuDNN pick its fastest kernels.
            torch.backends.cudnn.benchmark = True
        try:
            self._fit_on_device(Xt, y, seed, reset)
        finally:
            torch.backends.cudnn.benchmark = cudnn_benchmark
            del self._batch_generator
        self.device_ = str(device)
        return self

    def _fit_on_device(self, Xt, y, seed, reset):
        with self._rng_context(seed):
            if seed is not None:
                torch.manual_seed(seed)
            if reset and (not self.warm_start or not self.initialized_):
                self.initialize()
            # NeuralNet.partial_fit, not ours: skorch's fit would route
            # through the overridden public partial_fit.
            NeuralNet.partial_fit(
                self, Xt, y, _routing_method="fit" if reset else "partial_fit"
            )
            self._after_fit(Xt, y)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the network on session images.

        Parameters
        ----------
        X : array-like of shape (n_sessions, n_bytes)
            Session bytes, ``float32`` in [0, 1] or ``uint8``.  A
            memory-mapped array (``np.load(path, mmap_mode="r")``) is read
            batch by batch from its file and never held in memory, or on
            the device, at once: the way to train on more images than fit.
        y : array-like of shape (n_sessions,), default=None
            Class labels (any hashable type, e.g. strings).  Without labels
            the network trains as a plain autoencoder.

        Returns
        -------
        self : AMAESpectrumEmbedder

        Notes
        -----
        As in skorch, Ctrl-C (``KeyboardInterrupt``) during training stops it
        without an error: ``fit`` returns the partly trained embedder.  Its
        ``history_`` tells: an epoch that ran to the end has a ``"dur"``
        entry, so ``sum("dur" in e for e in history_) < max_epochs`` after an
        interruption.  ``flowspectrum fit`` checks this and exits with status
        130 without saving.
        """
        previous = (
            self.__dict__.get("side_"),
            tuple(self.classes_) if "classes_" in self.__dict__ else None,
        )
        X = self._check_X(X, reset=True)
        y_enc = self._encode_y(y, reset=True)
        if y_enc is not None and len(y_enc) != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} sessions but y has {len(y_enc)} labels."
            )
        current = (
            self.side_,
            tuple(self.classes_) if y_enc is not None else None,
        )
        if current != previous:
            # warm_start cannot continue a network of another shape.
            self.initialized_ = False
        return self._train(X, y_enc, reset=True)

    def partial_fit(self, X, y=None, classes=None):
        """Continue training for ``max_epochs`` epochs (warm start).

        Fits from scratch when the embedder is not fitted yet.  Ctrl-C stops
        training without an error, as in :meth:`fit`.

        Parameters
        ----------
        X : array-like of shape (n_sessions, n_bytes)
        y : array-like of shape (n_sessions,), default=None
        classes : ignored
            Present for API consistency.

        Returns
        -------
        self : AMAESpectrumEmbedder
        """
        if not hasattr(self, "side_") or not self.initialized_:
            return self.fit(X, y)
        X = self._check_X(X, reset=False)
        y_enc = self._encode_y(y, reset=False) if hasattr(self, "classes_") else None
        return self._train(X, y_enc, reset=False)

    @torch.no_grad()
    def _after_fit(self, Xt, y):
        """Unsupervised projection and per-class attention weights."""
        module = self._plain_module()
        module.eval()
        bs = self._infer_batch_size()
        n = len(Xt)
        if module.n_classes > 0 and y is not None:
            self._place_classes(module, Xt, y, bs)
        if module.n_classes == 0:
            self.__dict__.pop("line_order_", None)
            rng = check_random_state(self.random_state)
            take = np.sort(rng.permutation(n)[: min(n, 4096)])
            idx = torch.as_tensor(take, device=Xt.device)
            codes = []
            for start in range(0, len(idx), bs):
                xb = self._as_float(Xt[idx[start : start + bs]])
                with self._autocast():
                    codes.append(module.encode(xb).flatten(1).float())
            codes = torch.cat(codes)
            mean = codes.mean(0)
            centred = codes - mean
            axis = self._principal_axis(centred)
            proj = centred @ axis
            # Fixed sign (positive correlation with the code's mean
            # activation) and unit variance make the spectrum comparable
            # across refits.
            if torch.dot(proj, codes.mean(1) - codes.mean()) < 0:
                axis = -axis
            scale = proj.std() if len(proj) > 1 else torch.tensor(1.0)
            if not torch.isfinite(scale) or scale <= 0:
                scale = torch.tensor(1.0)
            module.set_projection(mean, axis / scale.to(axis.device))
        if module.fusion is None:
            if "attention_weights_" in self.__dict__:
                del self.attention_weights_
            return
        groups = 1 if y is None else len(self.classes_)
        labels = (
            torch.zeros(n, dtype=torch.long, device=Xt.device)
            if y is None
            else torch.as_tensor(y, dtype=torch.long, device=Xt.device)
        )
        side = self.side_
        sums = torch.zeros(groups, side * side, dtype=torch.float64, device=Xt.device)
        for start in range(0, n, bs):
            xb = self._as_float(Xt[start : start + bs])
            with self._autocast():
                w = module.fusion.weights(xb).flatten(1).double()
            sums.index_add_(0, labels[start : start + bs], w)
        counts = torch.bincount(labels, minlength=groups).clamp(min=1)
        mean = (sums / counts[:, None]).cpu().numpy()[:, : self.n_features_in_]
        std = mean.std(axis=1, keepdims=True)
        std[std == 0] = 1.0
        self.attention_weights_ = (mean - mean.mean(axis=1, keepdims=True)) / std

    def _place_classes(self, module, Xt, y, bs):
        """Seriate the classes on the line (``class_order``); set ``line_order_``."""
        spectra, posteriors = [], []
        for start in range(0, len(Xt), bs):
            xb = self._as_float(Xt[start : start + bs])
            with self._autocast():
                d, logits = module.map_code(module.encode(xb))
            spectra.append(d.float())
            if logits is not None:
                posteriors.append(torch.softmax(logits.float() / module.temperature, 1))
        spectra = torch.cat(spectra).cpu().numpy()
        if module.mapper_kind == "softmax":
            P = torch.cat(posteriors).cpu().numpy()
            if self.class_order == "confusion":
                order = order_classes(P)
            else:
                order = np.arange(module.n_classes)
            module.place_classes(order)
            spectra = P @ module.head.centres.detach().float().cpu().numpy()
        y = np.asarray(y)
        medians = [
            np.median(spectra[y == k]) if np.any(y == k) else np.inf
            for k in range(module.n_classes)
        ]
        self.line_order_ = self.classes_[np.argsort(medians, kind="stable")]

    @staticmethod
    def _principal_axis(centred, n_iter=50):
        """First principal axis by power iteration (deterministic start).

        A full SVD of a 4096 x 6272 code matrix takes minutes on a laptop CPU;
        fifty products with the matrix take milliseconds.
        """
        norms = centred.norm(dim=1)
        if centred.shape[0] < 2 or float(norms.max()) == 0.0:
            axis = torch.zeros(centred.shape[1], device=centred.device)
            axis[0] = 1.0
            return axis
        v = centred[int(torch.argmax(norms))].clone()
        v /= v.norm()
        for _ in range(n_iter):
            v = centred.T @ (centred @ v)
            v /= v.norm().clamp_min(1e-30)
        return v

    # ------------------------------------------------------------------
    # inference
    def _plain_module(self):
        return getattr(self.module_, "_orig_mod", self.module_)

    @torch.no_grad()
    def _batched(self, X, fn, validated=False):
        """``fn(module, batch)`` over ``X``; ``validated``: X is from ``_check_X``.

        Explanations pass images they have blanked bytes of (a blanked pcap
        magic no longer reads as an AllLayers row) as ``validated``.
        """
        check_is_fitted(self)
        if not validated:
            X = self._check_X(X, reset=False)
        module = self.module_
        module.eval()
        device = torch.device(self.device)
        bs = self._infer_batch_size()
        out = []
        for start in range(0, X.shape[0], bs):
            xb = self._to_images(X[start : start + bs], device)
            with self._autocast():
                out.append(fn(module, self._as_float(xb)).float())
        return torch.cat(out).cpu().numpy()

    def transform(self, X):
        """Return the spectrum value ``d(A)`` of each session.

        Parameters
        ----------
        X : array-like of shape (n_sessions, n_bytes)

        Returns
        -------
        spectrum : ndarray of shape (n_sessions, 1), dtype float32
        """
        return self._spectrum(X).astype(np.float32, copy=False)

    def attention_maps(self, X):
        """Return the attention weights ``W_m`` of each session.

        Parameters
        ----------
        X : array-like of shape (n_sessions, n_bytes)

        Returns
        -------
        weights : ndarray of shape (n_sessions, n_bytes), dtype float32
            Non-negative; each row of the full ``side x side`` map sums to
            one (the softmax of the fusion), so a row sums to one up to the
            weight on padding positions when ``n_bytes`` is not a square.
            The network multiplies byte ``i`` by ``side**2 * weights[i]``.
        """
        plain = self._plain_module()
        if plain.fusion is None:
            raise AttributeError(
                "This AMAESpectrumEmbedder was built with attention=False; "
                "it has no attention weights."
            )
        w = self._batched(X, lambda m, xb: plain.fusion.weights(xb).flatten(1))
        return w[:, : self.n_features_in_].astype(np.float32, copy=False)

    def reconstruct(self, X):
        """Return the autoencoder's reconstruction of each session.

        Parameters
        ----------
        X : array-like of shape (n_sessions, n_bytes)

        Returns
        -------
        reconstruction : ndarray of shape (n_sessions, n_bytes), dtype float32
            Bytes scaled to [0, 1].
        """
        plain = self._plain_module()
        rec = self._batched(X, lambda m, xb: plain.decode(plain.encode(xb)).flatten(1))
        return rec[:, : self.n_features_in_].astype(np.float32, copy=False)

    def class_logits(self, X):
        """Return the spectrum head's class scores (fitted with labels only).

        Parameters
        ----------
        X : array-like of shape (n_sessions, n_bytes)

        Returns
        -------
        logits : ndarray of shape (n_sessions, n_classes)
            Unnormalised log-posteriors of ``classes_`` given ``d(A)``.
        """
        return self._class_logits(X)

    def _class_logits(self, X, validated=False):
        plain = self._plain_module()
        if plain.head is None:
            raise AttributeError("This embedder was fitted without labels.")

        def fn(m, xb):
            d = plain.spectrum(xb)
            return plain.head(d.unsqueeze(1) if plain.head_kind == "linear" else d)

        return self._batched(X, fn, validated)

    def _spectrum(self, X, validated=False):
        plain = self._plain_module()
        return self._batched(X, lambda m, xb: plain.spectrum(xb), validated)[:, None]
