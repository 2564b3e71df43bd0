"""Loaders for the ISCX VPN-nonVPN 2016 session images (USTC-TK2016 output)."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import csv
import gzip
import os
from importlib import resources
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import StrOptions, validate_params

from sklearn_flowspectrum._idx import read_idx
from sklearn_flowspectrum._validation import byte_feature_names

__all__ = ["load_iscx_vpn2016", "load_iscx_vpn2016_sample", "load_sample_captures"]

ISCX_ENV_VAR = "FLOWSPECTRUM_ISCX_PATH"
APPLICATIONS = ("Chat", "Email", "File", "P2P", "Streaming", "VoIP")
#: Names of the 12 classes: targets 0..5 are non-VPN, 6..11 the same over VPN.
TARGET_NAMES = APPLICATIONS + tuple(f"VPN-{a}" for a in APPLICATIONS)
N_BYTES = 784
_REPRESENTATIONS = {"alllayers": "AllLayers", "l7": "L7"}
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def _descr(name):
    return (resources.files(__package__) / "descr" / name).read_text(encoding="utf-8")


def _read_package_idx(name):
    with resources.as_file(resources.files(__package__) / "data" / name) as path:
        return read_idx(path)


def _to_frame(bunch):
    import pandas as pd

    data = pd.DataFrame(bunch.data, columns=bunch.feature_names)
    target = pd.Series(bunch.target, name="target")
    bunch.data, bunch.target = data, target
    bunch.frame = pd.concat([data, target], axis=1)
    return bunch


@validate_params(
    {
        "representation": [StrOptions(set(_REPRESENTATIONS))],
        "return_X_y": ["boolean"],
        "as_frame": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_iscx_vpn2016_sample(
    *, representation="alllayers", return_X_y=False, as_frame=False
):
    """Load the bundled sample of ISCX VPN-nonVPN 2016 session images.

    3,000 sessions per representation, 250 of each of the 12 classes (non-VPN
    and VPN Chat, Email, File, P2P, Streaming, VoIP), drawn from the
    USTC-TK2016 session images published with DeepTraffic (MPL-2.0).  Each
    row is 784 bytes: the paper's 28 x 28 image.  The two representations are
    independent samples (the published files are not row-aligned).

    Read more in the :ref:`User Guide <iscx_vpn2016_sample_dataset>`.

    Parameters
    ----------
    representation : {"alllayers", "l7"}, default="alllayers"
        ``"alllayers"``: the first 784 bytes of the session's pcap file
        (pcap headers, capture timestamps, frames from the link layer on).
        ``"l7"``: the first 784 bytes of the concatenated TCP/UDP payloads.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        Return ``data`` as a pandas DataFrame (columns ``byte0`` ..
        ``byte783``) and ``target`` as a Series, and add ``frame``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : ndarray of shape (3000, 784), dtype uint8, or DataFrame
            The session bytes.
        target : ndarray of shape (3000,), dtype int64, or Series
            The class, 0..11, an index into ``target_names``.
        target_names : ndarray of shape (12,)
            ``Chat`` .. ``VoIP`` (0..5), ``VPN-Chat`` .. ``VPN-VoIP`` (6..11).
        feature_names : ndarray of shape (784,)
            ``byte0`` .. ``byte783``.
        vpn : ndarray of shape (3000,), dtype bool
            Whether the session was captured over the VPN.
        source_folder, source_row : ndarray of shape (3000,)
            Published folder (e.g. ``NovpnSessionAllLayers``) and row of
            each sample row in its TRAIN file.
        representation : str
            ``"alllayers"`` or ``"l7"``.
        frame : DataFrame
            Only with ``as_frame=True``: ``data`` and ``target`` together.
        DESCR : str
            Origin, preprocessing, caveats (leaky header fields, noisy
            labels) and licence.

    (data, target) : tuple if ``return_X_y`` is True

    See Also
    --------
    load_iscx_vpn2016 : The full published images from a local folder.

    Examples
    --------
    >>> from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample
    >>> data = load_iscx_vpn2016_sample()
    >>> data.data.shape, data.data.dtype
    ((3000, 784), dtype('uint8'))
    >>> data.target_names[[0, 11]]
    array(['Chat', 'VPN-VoIP'], dtype=object)
    >>> X, y = load_iscx_vpn2016_sample(representation="l7", return_X_y=True)
    >>> bytes(X[y == 3][0][:12])  # a P2P session: a bencoded BitTorrent DHT query
    b'd1:ad2:id20:'
    """
    stem = f"iscx_vpn2016_sample_{representation}"
    images = _read_package_idx(f"{stem}-images-idx3-ubyte.gz")
    target = _read_package_idx(f"{stem}-labels-idx1-ubyte.gz").astype(np.int64)
    data = images.reshape(images.shape[0], -1)
    with resources.as_file(
        resources.files(__package__) / "data" / f"{stem}-source.csv.gz"
    ) as path:
        with gzip.open(path, "rt", newline="") as f:
            rows = list(csv.DictReader(f))
    bunch = Bunch(
        data=data,
        target=target,
        target_names=np.array(TARGET_NAMES, dtype=object),
        feature_names=byte_feature_names(data.shape[1]),
        vpn=target >= len(APPLICATIONS),
        source_folder=np.array([r["source_folder"] for r in rows], dtype=object),
        source_row=np.array([int(r["source_row"]) for r in rows], dtype=np.int64),
        representation=representation,
        DESCR=_descr("iscx_vpn2016_sample.rst"),
    )
    if as_frame:
        bunch = _to_frame(bunch)
    if return_X_y:
        return bunch.data, bunch.target
    return bunch


def _resolve_root(path):
    if path is None:
        path = os.environ.get(ISCX_ENV_VAR) or None
        if path is None:
            raise FileNotFoundError(
                "ISCX-VPN2016 data folder not given: pass path= or set the "
                f"{ISCX_ENV_VAR} environment variable to the folder that holds "
                "NovpnSessionAllLayers/, VpnSessionAllLayers/, ... (the "
                "USTC-TK2016 IDX files published with DeepTraffic)"
            )
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: no such folder (expected the ISCX-VPN2016 IDX folders "
            "NovpnSessionAllLayers/, VpnSessionAllLayers/, ...)"
        )
    return root


def _find(folder, prefix, kind):
    for suffix in (".gz", ""):
        candidate = folder / f"{prefix}-{kind}-ubyte{suffix}"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{folder / (prefix + '-' + kind + '-ubyte.gz')}: file not found "
        "(expected the layout of the published ISCX-VPN2016 IDX files)"
    )


@validate_params(
    {
        "path": [str, os.PathLike, None],
        "representation": [StrOptions(set(_REPRESENTATIONS))],
        "subset": [StrOptions({"session", "flow"})],
        "vpn": [StrOptions({"both", "vpn", "novpn"})],
        "split": [StrOptions(set(_SPLIT_PREFIX))],
        "return_X_y": ["boolean"],
        "as_frame": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_iscx_vpn2016(
    path=None,
    *,
    representation="alllayers",
    subset="session",
    vpn="both",
    split="train",
    return_X_y=False,
    as_frame=False,
):
    """Load the full ISCX VPN-nonVPN 2016 images from a local folder.

    Reads the USTC-TK2016 IDX files as published with DeepTraffic, laid out
    as ``{Novpn,Vpn}{Session,Flow}{AllLayers,L7}/train-images-idx3-ubyte.gz``
    (with ``train-labels-idx1-ubyte.gz`` beside it, and ``t10k-*`` files for
    the test split).  Plain (not gzipped) files are read too.  The data are
    not downloaded: get them once and point ``path`` (or the environment
    variable ``FLOWSPECTRUM_ISCX_PATH``) at the folder.

    Read more in the :ref:`User Guide <iscx_vpn2016_dataset>`.

    Parameters
    ----------
    path : str or path-like, default=None
        The folder holding ``NovpnSessionAllLayers/`` etc.  ``None`` reads
        the environment variable ``FLOWSPECTRUM_ISCX_PATH``.
    representation : {"alllayers", "l7"}, default="alllayers"
        Pcap-file bytes (``AllLayers``) or TCP/UDP payload bytes (``L7``).
    subset : {"session", "flow"}, default="session"
        Bidirectional sessions or one-directional flows.
    vpn : {"both", "vpn", "novpn"}, default="both"
        ``"both"``: 12 classes, non-VPN as targets 0..5 and VPN as 6..11.
        ``"novpn"`` or ``"vpn"``: the 6 classes of one side, targets 0..5.
    split : {"train", "test"}, default="train"
        ``train-*`` or ``t10k-*`` files.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        Return ``data`` as a DataFrame and ``target`` as a Series, and add
        ``frame``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes ``data`` (uint8,
        ``(n, 784)``), ``target`` (int64), ``target_names``,
        ``feature_names``, ``vpn`` (bool per row), ``filenames`` (the image
        files read), ``representation``, ``subset``, ``split``, ``DESCR``, and
        ``frame`` with ``as_frame=True``.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    FileNotFoundError
        If no folder is given or a file of the layout is missing (the message
        names it).
    ValueError
        If a file is not a valid IDX file, or images and labels disagree.

    See Also
    --------
    load_iscx_vpn2016_sample : A 3,000-session sample bundled with the package.

    Examples
    --------
    >>> from sklearn_flowspectrum.datasets import load_iscx_vpn2016
    >>> data = load_iscx_vpn2016("/data/iscx-vpn2016", vpn="vpn")  # doctest: +SKIP
    >>> data.target_names  # doctest: +SKIP
    array(['VPN-Chat', 'VPN-Email', 'VPN-File', 'VPN-P2P', 'VPN-Streaming',
           'VPN-VoIP'], dtype=object)
    """
    root = _resolve_root(path)
    sides = {"both": ("Novpn", "Vpn"), "novpn": ("Novpn",), "vpn": ("Vpn",)}[vpn]
    prefix = _SPLIT_PREFIX[split]
    images, targets, is_vpn, filenames = [], [], [], []
    for side in sides:
        folder = root / f"{side}{subset.capitalize()}{_REPRESENTATIONS[representation]}"
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder}: folder not found (expected the layout of the "
                "published ISCX-VPN2016 IDX files)"
            )
        images_path = _find(folder, prefix, "images-idx3")
        labels_path = _find(folder, prefix, "labels-idx1")
        X = read_idx(images_path)
        y = read_idx(labels_path)
        if X.ndim < 2 or X.dtype != np.uint8:
            raise ValueError(
                f"{images_path}: expected uint8 images, got {X.dtype} of shape "
                f"{X.shape}"
            )
        X = X.reshape(X.shape[0], -1)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(
                f"{labels_path}: {y.shape[0] if y.ndim else 0} labels for "
                f"{len(X)} images in {images_path}"
            )
        if y.size and y.max() >= len(APPLICATIONS):
            raise ValueError(f"{labels_path}: label {int(y.max())} out of range 0..5")
        offset = len(APPLICATIONS) if side == "Vpn" and vpn == "both" else 0
        images.append(X)
        targets.append(y.astype(np.int64) + offset)
        is_vpn.append(np.full(len(y), side == "Vpn"))
        filenames.append(str(images_path))
    data = np.concatenate(images)
    target = np.concatenate(targets)
    names = {"both": TARGET_NAMES, "novpn": TARGET_NAMES[:6], "vpn": TARGET_NAMES[6:]}
    bunch = Bunch(
        data=data,
        target=target,
        target_names=np.array(names[vpn], dtype=object),
        feature_names=byte_feature_names(data.shape[1]),
        vpn=np.concatenate(is_vpn),
        filenames=filenames,
        representation=representation,
        subset=subset,
        split=split,
        DESCR=_descr("iscx_vpn2016.rst"),
    )
    if as_frame:
        bunch = _to_frame(bunch)
    if return_X_y:
        return bunch.data, bunch.target
    return bunch


_SAMPLE_CAPTURES = (
    ("ndpi_chat_oicq.pcap", "Chat"),
    ("ndpi_chat_threema.pcap", "Chat"),
    ("ndpi_voip_h323.pcap", "VoIP"),
    ("ndpi_voip_mgcp.pcap", "VoIP"),
    ("ndpi_voip_mumble.pcapng", "VoIP"),
    ("ndpi_streaming_dazn.pcapng", "Streaming"),
)


def load_sample_captures():
    """Return the paths of six small real captures bundled with the package.

    Four pcap and two pcapng files from the nDPI test suite (LGPL-3.0):
    Chat, VoIP and Streaming applications, about 50 TCP/UDP sessions in all.
    Use them to try :func:`~sklearn_flowspectrum.read_sessions` and the
    command line; they are far too few to train a classifier on.

    Read more in the :ref:`User Guide <sample_captures_dataset>`.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        filenames : list of str
            Absolute paths of the capture files.
        target : ndarray of shape (6,), dtype object
            nDPI's category of each capture: ``"Chat"``, ``"VoIP"`` or
            ``"Streaming"``.
        target_names : ndarray of shape (3,)
            The categories.
        DESCR : str
            Origin and licence.

    Examples
    --------
    >>> import os
    >>> from sklearn_flowspectrum.datasets import load_sample_captures
    >>> captures = load_sample_captures()
    >>> [os.path.basename(p) for p in captures.filenames[:2]]
    ['ndpi_chat_oicq.pcap', 'ndpi_chat_threema.pcap']
    >>> captures.target.tolist()
    ['Chat', 'Chat', 'VoIP', 'VoIP', 'VoIP', 'Streaming']
    """
    folder = Path(str(resources.files(__package__) / "data"))
    filenames = [str(folder / name) for name, _ in _SAMPLE_CAPTURES]
    missing = [f for f in filenames if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: bundled capture missing from install")
    return Bunch(
        filenames=filenames,
        target=np.array([label for _, label in _SAMPLE_CAPTURES], dtype=object),
        target_names=np.array(["Chat", "VoIP", "Streaming"], dtype=object),
        DESCR=_descr("sample_captures.rst"),
    )
