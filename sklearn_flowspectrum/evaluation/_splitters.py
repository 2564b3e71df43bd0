"""Leakage-safe cross-validation splitters for session tables and session images.

Random splits of sessions leak: sessions of one capture file share its day,
its hosts and its addresses, and sessions to one server share its address and
port.  These splitters keep such sessions on one side of every split.  They
follow the scikit-learn cross-validator API (``split(X, y, groups)``,
``get_n_splits``), so they work in :func:`~sklearn.model_selection.cross_val_score`,
:func:`~sklearn.model_selection.cross_validate` and
:class:`~sklearn.model_selection.GridSearchCV`.

When ``X`` is a session table (the output of ``read_sessions``) the splitters
read the columns they need from it; for image arrays the grouping is passed as
``groups`` (or, for the time split, as ``times``).
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import ipaddress
import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold
from sklearn.model_selection._split import BaseCrossValidator, GroupsConsumerMixin

from sklearn_flowspectrum._layers import dissect
from sklearn_flowspectrum._layouts import parse_ustc_rows
from sklearn_flowspectrum._protocols import TRANSPORT_NAMES

__all__ = [
    "CaptureFileKFold",
    "ServerEndpointKFold",
    "SessionTimeSplit",
    "server_endpoints",
    "ustc_session_table",
]


def _n_samples(X):
    if hasattr(X, "shape"):
        return int(X.shape[0])
    return len(X)


def table_column(X, name):
    """Return column ``name`` of a DataFrame-like ``X`` as an array, or None."""
    columns = getattr(X, "columns", None)
    if columns is None or name not in columns:
        return None
    return np.asarray(X[name])


def _check_n_splits(n_splits, name="n_splits"):
    if not isinstance(n_splits, numbers.Integral) or isinstance(n_splits, bool):
        raise TypeError(f"{name} must be an integer, got {n_splits!r}.")
    if n_splits < 2:
        raise ValueError(f"{name} must be at least 2, got {n_splits}.")


def _check_groups_length(groups, n, what):
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n:
        raise ValueError(
            f"{what} must be a 1-D array with one entry per sample ({n}), "
            f"got shape {groups.shape}."
        )
    return groups


def _addr_text(raw):
    if len(raw) in (4, 16):
        return str(ipaddress.ip_address(bytes(raw)))
    return ""


def ustc_session_table(rows):
    """Session-table columns recovered from USTC-TK2016 "AllLayers" rows.

    A published AllLayers row starts with the pcap record header and frame of
    the session's first packet, so its capture time, addresses and ports can
    be read back.  The result has the columns the splitters use, which turns
    the published image files into something :class:`SessionTimeSplit` and
    :class:`ServerEndpointKFold` can split.

    Parameters
    ----------
    rows : array-like of shape (n_sessions, n_bytes), uint8
        AllLayers rows (a 28x28 array per row is flattened).  Read them
        *before* masking: a masked row has zero timestamps and addresses.

    Returns
    -------
    table : DataFrame
        One row per input row: ``protocol`` ("TCP", "UDP" or "" when the
        first frame is neither), ``ip_version``, ``src_addr``, ``src_port``,
        ``dst_addr``, ``dst_port`` (of the first packet; "" and -1 when
        absent), ``first_ts`` (seconds since the epoch, NaN for a row that
        holds no packet) and ``packets`` (records that start in the row).

    Examples
    --------
    >>> import struct
    >>> import numpy as np
    >>> from sklearn_flowspectrum.evaluation import ustc_session_table
    >>> ip = bytes.fromhex("4500001c0001000040110000c0a80001c0a80002")
    >>> frame = ip + struct.pack("!HHHH", 5353, 53, 8, 0)
    >>> row = (struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    ...        + struct.pack(">IIII", 1433000000, 250000, len(frame), len(frame))
    ...        + frame)
    >>> rows = np.frombuffer(row.ljust(784, b"\\0"), np.uint8)[None]
    >>> ustc_session_table(rows).iloc[0].to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'protocol': 'UDP', 'ip_version': 4, 'src_addr': '192.168.0.1', 'src_port': 5353,
     'dst_addr': '192.168.0.2', 'dst_port': 53, 'first_ts': 1433000000.25,
     'packets': 1}
    """
    rows = np.asarray(rows)
    if rows.ndim == 3:
        rows = rows.reshape(rows.shape[0], -1)
    if rows.ndim != 2 or rows.dtype != np.uint8:
        raise ValueError(
            "rows must be a 2-D uint8 array of AllLayers rows, got "
            f"{rows.dtype} of shape {rows.shape}."
        )
    parsed = parse_ustc_rows(rows)
    batch = parsed.batch
    n = rows.shape[0]
    out = {
        "protocol": np.full(n, "", dtype=object),
        "ip_version": np.zeros(n, dtype=np.int64),
        "src_addr": np.full(n, "", dtype=object),
        "src_port": np.full(n, -1, dtype=np.int64),
        "dst_addr": np.full(n, "", dtype=object),
        "dst_port": np.full(n, -1, dtype=np.int64),
        "first_ts": np.full(n, np.nan),
        "packets": np.bincount(parsed.record_row, minlength=n).astype(np.int64),
    }
    session = batch.session
    if session.size:
        # The first frame of each row: frames come row by row in order.
        first = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
        for f in first.tolist():
            r = int(session[f])
            start = int(batch.start[f])
            frame = batch.buf[start : start + int(batch.length[f])].tobytes()
            d = dissect(frame, int(batch.linktype[r]))
            out["first_ts"][r] = batch.ts_ns[f] / 1e9
            out["ip_version"][r] = d.ip_version
            out["protocol"][r] = TRANSPORT_NAMES.get(d.proto, "")
            out["src_addr"][r] = _addr_text(d.src)
            out["dst_addr"][r] = _addr_text(d.dst)
            out["src_port"][r] = d.sport
            out["dst_port"][r] = d.dport
    return pd.DataFrame(out)


class _NSplitsCV(GroupsConsumerMixin, BaseCrossValidator):
    """Cross-validator whose number of splits is its ``n_splits`` parameter."""

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of splitting iterations, ``n_splits``.

        Parameters
        ----------
        X, y, groups : object
            Ignored; present for API compatibility.

        Returns
        -------
        n_splits : int
        """
        return self.n_splits


class _GroupedKFold(_NSplitsCV):
    """K-fold over groups derived from ``X`` or passed as ``groups``."""

    def _groups(self, X, groups):  # pragma: no cover - abstract
        raise NotImplementedError

    def split(self, X, y=None, groups=None):
        """Generate train/test indices; no group ever sits on both sides.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            A session table (the grouping columns are read from it) or any
            array with one row per session.
        y : array-like of shape (n_samples,), default=None
            Class labels: not used to split, but a warning names the classes
            that a fold's training part lacks.
        groups : array-like of shape (n_samples,), default=None
            Group of each sample.  When given it is used instead of the
            columns of ``X``; it is required when ``X`` has no such columns.

        Yields
        ------
        train : ndarray
            The training set indices for that split.
        test : ndarray
            The testing set indices for that split.

        Warns
        -----
        UserWarning
            When the training part of a fold has no session of a class (all
            of that class's groups fell into the fold's test part), naming
            the fold, the class, its sessions and its groups.
        """
        _check_n_splits(self.n_splits)
        n = _n_samples(X)
        keys = self._groups(X, groups)
        keys = _check_groups_length(keys, n, "groups")
        # Factorize first: GroupKFold needs orderable, hashable labels and
        # the keys may be tuples or mixed objects.
        _, codes = np.unique(keys.astype(str), return_inverse=True)
        n_groups = int(codes.max()) + 1 if n else 0
        if n_groups < self.n_splits:
            raise ValueError(
                f"{type(self).__name__}: cannot make {self.n_splits} splits from "
                f"{n_groups} distinct {self._what}; lower n_splits or add data."
            )
        kfold = GroupKFold(
            self.n_splits, shuffle=self.shuffle, random_state=self.random_state
        )
        folds = list(kfold.split(np.zeros((n, 1)), groups=codes))
        if y is not None:
            self._warn_missing_classes(folds, y, codes)
        yield from folds

    def _warn_missing_classes(self, folds, y, codes):
        """Warn about folds whose training part lacks a class of ``y``."""
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != codes.shape[0]:
            return  # not labels of these samples: nothing to say
        classes, y_codes = np.unique(y.astype(str), return_inverse=True)
        missing, n_folds = [], 0
        for i, (train, _) in enumerate(folds):
            lacking = np.setdiff1d(np.arange(classes.size), y_codes[train])
            n_folds += bool(lacking.size)
            for c in lacking.tolist():
                members = y_codes == c
                n_sessions = int(members.sum())
                n_groups = np.unique(codes[members]).size
                sessions = "session" if n_sessions == 1 else "sessions"
                what = self._what[:-1] if n_groups == 1 else self._what
                missing.append(
                    f"fold {i} lacks {classes[c]} ({n_sessions} {sessions} from "
                    f"{n_groups} {what}, all in its test part)"
                )
        if missing:
            warnings.warn(
                f"{type(self).__name__}: the training part of {n_folds} of "
                f"{len(folds)} folds lacks a class, which a model trained on it "
                f"can never predict: {'; '.join(missing)}. Add {self._what} of "
                "these classes or lower n_splits",
                UserWarning,
                stacklevel=3,
            )


class CaptureFileKFold(_GroupedKFold):
    """K-fold by capture file: all sessions of one file are on the same side.

    A :class:`~sklearn.model_selection.GroupKFold` whose groups are the
    ``file`` column of a session table, so that the sessions of one capture
    (same day, same hosts, same addresses) are never split between training
    and test data.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds; at least 2 and at most the number of files.
    column : str, default="file"
        Column of the session table that names the capture.
    shuffle : bool, default=False
        Whether to shuffle the files before assigning them to folds.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffle, used only when ``shuffle=True``.

    See Also
    --------
    ServerEndpointKFold : Group by server endpoint instead.
    SessionTimeSplit : Train on earlier sessions, test on later ones.

    Notes
    -----
    When ``groups`` is passed to :meth:`split` it is used instead of the
    column, so the splitter also works on image arrays (pass the file of each
    row as ``groups``).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_flowspectrum.evaluation import CaptureFileKFold
    >>> table = pd.DataFrame({"file": ["a", "a", "b", "c", "c", "d"]})
    >>> cv = CaptureFileKFold(n_splits=2)
    >>> for train, test in cv.split(table):
    ...     print(sorted(set(table.file[train])), sorted(set(table.file[test])))
    ['a', 'b'] ['c', 'd']
    ['c', 'd'] ['a', 'b']
    """

    _what = "capture files"

    def __init__(self, n_splits=5, *, column="file", shuffle=False, random_state=None):
        self.n_splits = n_splits
        self.column = column
        self.shuffle = shuffle
        self.random_state = random_state

    def _groups(self, X, groups):
        if groups is not None:
            return groups
        col = table_column(X, self.column)
        if col is None:
            raise ValueError(
                f"CaptureFileKFold: X has no column {self.column!r}; pass a "
                "session table or the capture file of each row as `groups`."
            )
        return col


def _server_side(src_addr, src_port, dst_addr, dst_port):
    """Boolean mask: True where the destination is the server side.

    The server is the side with the lower port (a well-known or registered
    port beats an ephemeral one).  Equal ports are broken by the address text,
    so both directions of a flow get the same answer.
    """
    src_port = np.asarray(src_port, dtype=np.int64)
    dst_port = np.asarray(dst_port, dtype=np.int64)
    src_addr = np.asarray(src_addr).astype(str)
    dst_addr = np.asarray(dst_addr).astype(str)
    return (dst_port < src_port) | ((dst_port == src_port) & (dst_addr <= src_addr))


def server_endpoints(table, *, endpoint="server", include_port=True):
    """Server endpoint of each session of a session table, as one string.

    Parameters
    ----------
    table : DataFrame
        A session table with ``src_addr``, ``src_port``, ``dst_addr``,
        ``dst_port`` and (optionally) ``protocol`` columns.
    endpoint : {"server", "dst"}, default="server"
        ``"dst"``: the destination of the session's first packet.
        ``"server"``: the non-ephemeral side, i.e. the endpoint with the lower
        port (ties broken by address), which does not depend on the
        direction of the first packet and so also groups both one-way flows
        of a session together.
    include_port : bool, default=True
        Key on ``protocol/address/port``; with False, on the address only, so
        that all services of one host stay on one side.

    Returns
    -------
    keys : ndarray of str, shape (n_sessions,)

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_flowspectrum.evaluation import server_endpoints
    >>> t = pd.DataFrame({"protocol": ["TCP", "TCP"],
    ...                   "src_addr": ["10.0.0.2", "1.2.3.4"],
    ...                   "src_port": [50000, 443],
    ...                   "dst_addr": ["1.2.3.4", "10.0.0.2"],
    ...                   "dst_port": [443, 50000]})
    >>> server_endpoints(t).tolist()
    ['TCP/1.2.3.4/443', 'TCP/1.2.3.4/443']
    """
    if endpoint not in ("server", "dst"):
        raise ValueError(f"endpoint must be 'server' or 'dst', got {endpoint!r}.")
    needed = ["src_addr", "src_port", "dst_addr", "dst_port"]
    missing = [c for c in needed if table_column(table, c) is None]
    if missing:
        raise ValueError(
            f"server_endpoints: the session table lacks column(s) {missing}; "
            "pass the server endpoint of each row as `groups` instead."
        )
    src_addr, src_port, dst_addr, dst_port = (np.asarray(table[c]) for c in needed)
    if endpoint == "dst":
        use_dst = np.ones(len(src_addr), dtype=bool)
    else:
        use_dst = _server_side(src_addr, src_port, dst_addr, dst_port)
    addr = np.where(use_dst, dst_addr.astype(str), src_addr.astype(str))
    port = np.where(use_dst, dst_port, src_port).astype(np.int64).astype(str)
    proto = table_column(table, "protocol")
    proto = np.full(len(addr), "?") if proto is None else proto.astype(str)
    if include_port:
        return np.char.add(
            np.char.add(np.char.add(proto, "/"), np.char.add(addr, "/")), port
        ).astype(object)
    return addr.astype(object)


class ServerEndpointKFold(_GroupedKFold):
    """K-fold by server endpoint: one server never sits on both sides.

    Sessions to one server share its address, port and often its payload
    format; a classifier that saw the server during training can recognise it
    instead of the traffic class.  This splitter groups sessions by the
    server endpoint (see :func:`server_endpoints`) and runs a
    :class:`~sklearn.model_selection.GroupKFold` over the groups.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds; at least 2 and at most the number of endpoints.
    endpoint : {"server", "dst"}, default="server"
        ``"server"``: the side with the lower (non-ephemeral) port, ties
        broken by address; ``"dst"``: ``(dst_addr, dst_port)`` as recorded.
    include_port : bool, default=True
        Group on protocol, address and port; with False on the address alone
        (all services of a host on one side).
    shuffle : bool, default=False
        Whether to shuffle the groups before assigning them to folds.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffle, used only when ``shuffle=True``.

    See Also
    --------
    CaptureFileKFold : Group by capture file.
    server_endpoints : The grouping key.

    Notes
    -----
    A few busy servers (a DNS resolver, say) can hold most sessions of a
    class; their fold is then dominated by one class.  Check the class counts
    per fold before reading much into a single fold's score.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_flowspectrum.evaluation import ServerEndpointKFold
    >>> t = pd.DataFrame({"protocol": ["UDP"] * 4,
    ...                   "src_addr": ["10.0.0.2"] * 4,
    ...                   "src_port": [5000, 5001, 5002, 5003],
    ...                   "dst_addr": ["8.8.8.8", "8.8.8.8", "9.9.9.9", "9.9.9.9"],
    ...                   "dst_port": [53, 53, 53, 53]})
    >>> [test.tolist() for _, test in ServerEndpointKFold(n_splits=2).split(t)]
    [[2, 3], [0, 1]]
    """

    _what = "server endpoints"

    def __init__(
        self,
        n_splits=5,
        *,
        endpoint="server",
        include_port=True,
        shuffle=False,
        random_state=None,
    ):
        self.n_splits = n_splits
        self.endpoint = endpoint
        self.include_port = include_port
        self.shuffle = shuffle
        self.random_state = random_state

    def _groups(self, X, groups):
        if groups is not None:
            return groups
        return server_endpoints(
            X, endpoint=self.endpoint, include_port=self.include_port
        )


class SessionTimeSplit(_NSplitsCV):
    """Forward-chaining split in time: train on earlier sessions, test on later.

    Sessions are ordered by their start time (the ``first_ts`` column of a
    session table, or ``times``) and cut into ``n_splits + 1`` consecutive
    blocks of (nearly) equal size, as in
    :class:`~sklearn.model_selection.TimeSeriesSplit`.  Split ``i`` tests on
    block ``i + 1`` and trains on the sessions that started at least ``gap``
    seconds before the first test session.  Sessions that start at the same
    instant are never separated: the cut moves forward past ties.

    Parameters
    ----------
    n_splits : int, default=5
        Number of splits; at least 2.
    times : array-like of shape (n_samples,), default=None
        Start time of each sample in seconds.  Used when ``X`` has no
        ``time_column`` (for example an image array).
    time_column : str, default="first_ts"
        Column of the session table that holds the start time.
    gap : float, default=0.0
        Seconds between the latest training session's start and the first
        test session's start; sessions inside the gap are left out of the
        training set.  Use it to keep sessions that overlap the test window
        out of training.
    max_train_size : int, default=None
        Keep at most this many of the latest training sessions.

    See Also
    --------
    CaptureFileKFold, ServerEndpointKFold

    Notes
    -----
    If ``groups`` is passed to :meth:`split`, training sessions whose group
    also occurs in the test block are removed ("purged") from that split's
    training set, so that, e.g., a capture file that runs across the cut does
    not sit on both sides.

    On data whose classes were captured on different days (ISCX VPN-nonVPN
    2016) an early block may hold one class only and a later block classes
    never seen in training: this is what a deployed model meets, and the
    scores are low for that reason.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum.evaluation import SessionTimeSplit
    >>> t = np.array([5.0, 1.0, 2.0, 4.0, 3.0, 6.0])
    >>> for train, test in SessionTimeSplit(n_splits=2, times=t).split(t[:, None]):
    ...     print(t[train].tolist(), t[test].tolist())
    [1.0, 2.0] [4.0, 3.0]
    [1.0, 2.0, 4.0, 3.0] [5.0, 6.0]
    """

    def __init__(
        self,
        n_splits=5,
        *,
        times=None,
        time_column="first_ts",
        gap=0.0,
        max_train_size=None,
    ):
        self.n_splits = n_splits
        self.times = times
        self.time_column = time_column
        self.gap = gap
        self.max_train_size = max_train_size

    def _times(self, X, n):
        col = table_column(X, self.time_column)
        if col is None:
            if self.times is None:
                raise ValueError(
                    f"SessionTimeSplit: X has no column {self.time_column!r} and "
                    "no `times` were given; pass a session table or times=..."
                )
            col = self.times
        col = np.asarray(col)
        if col.ndim != 1 or col.shape[0] != n:
            raise ValueError(
                f"SessionTimeSplit: times must have one entry per sample ({n}), "
                f"got shape {col.shape}."
            )
        try:
            col = col.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                "SessionTimeSplit: times must be numbers (seconds since the epoch)."
            ) from None
        if not np.all(np.isfinite(col)):
            raise ValueError("SessionTimeSplit: times contain NaN or infinity.")
        return col

    def split(self, X, y=None, groups=None):
        """Generate train/test indices, training always before testing.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            A session table (with ``time_column``) or any array; then the
            constructor's ``times`` give the order.
        y : array-like of shape (n_samples,), default=None
            Ignored; present for API compatibility.
        groups : array-like of shape (n_samples,), default=None
            Optional groups (e.g. capture files); training sessions of a group
            that occurs in the test block are dropped from that split.

        Yields
        ------
        train : ndarray
            The training set indices for that split.
        test : ndarray
            The testing set indices for that split.
        """
        _check_n_splits(self.n_splits)
        if not isinstance(self.gap, numbers.Real) or self.gap < 0:
            raise ValueError(f"gap must be a number >= 0, got {self.gap!r}.")
        if self.max_train_size is not None and (
            not isinstance(self.max_train_size, numbers.Integral)
            or self.max_train_size < 1
        ):
            raise ValueError(
                f"max_train_size must be None or an integer >= 1, "
                f"got {self.max_train_size!r}."
            )
        n = _n_samples(X)
        times = self._times(X, n)
        if groups is not None:
            groups = _check_groups_length(groups, n, "groups").astype(str)
        order = np.argsort(times, kind="stable")
        sorted_t = times[order]
        n_folds = self.n_splits + 1
        if n < n_folds:
            raise ValueError(
                f"SessionTimeSplit: cannot make {self.n_splits} splits from {n} "
                "samples."
            )
        test_size = n // n_folds
        bounds = [n - (self.n_splits - i) * test_size for i in range(self.n_splits + 1)]
        # Move every cut past sessions that start at the same instant, so that
        # training never contains a session as recent as a test session.
        cuts = [
            int(np.searchsorted(sorted_t, sorted_t[b], side="left"))
            for b in bounds[:-1]
        ]
        cuts.append(n)
        for i in range(self.n_splits):
            start, stop = cuts[i], cuts[i + 1]
            if stop <= start:
                raise ValueError(
                    "SessionTimeSplit: too many sessions share a start time to "
                    f"make {self.n_splits} splits; lower n_splits."
                )
            test = order[start:stop]
            limit = sorted_t[start] - self.gap
            n_train = int(np.searchsorted(sorted_t, limit, side="left"))
            n_train = min(n_train, start)
            train = order[:n_train]
            if train.size == 0:
                raise ValueError(
                    f"SessionTimeSplit: split {i} has no training sessions "
                    f"(gap={self.gap} s reaches back past the earliest session); "
                    "lower gap or n_splits."
                )
            if groups is not None and train.size:
                train = train[~np.isin(groups[train], np.unique(groups[test]))]
            if self.max_train_size is not None:
                train = train[-self.max_train_size :]
            yield np.sort(train), np.sort(test)
