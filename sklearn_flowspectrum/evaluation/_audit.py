"""Leakage audit: how well does each protocol field alone predict the label?

Session images carry bytes that identify the capture rather than the traffic:
capture timestamps, MAC and IP addresses, ports, IP IDs, checksums (which
encode the addresses).  A model that reads them scores high without learning
anything that transfers.  :func:`leakage_audit` measures this directly: it
trains a simple model on the bytes of one field at a time and compares its
cross-validated accuracy with the majority-class baseline and with the same
model on the whole image.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import fnmatch
import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.model_selection import (
    GroupKFold,
    StratifiedKFold,
    check_cv,
    cross_val_score,
)

from sklearn_flowspectrum._layouts import (
    packet_rows_byte_map,
    packet_slot_map,
    parse_ustc_rows,
    rows_byte_map,
)
from sklearn_flowspectrum._protocols import AUDIT_SETS, FIELDS
from sklearn_flowspectrum._validation import check_n_jobs

__all__ = [
    "AUDIT_FIELDS",
    "CONTEXT_SETS",
    "LeakageWarning",
    "leakage_audit",
    "plot_leakage_audit",
]


class LeakageWarning(UserWarning):
    """A header field alone predicts the label about as well as the whole image."""


# Field sets the audit scores, roughly in byte order of a frame, from the
# protocol registry.  The byte map of the layout names one field per byte; the
# byte goes to the FIRST set with an ``fnmatch`` pattern that matches that name
# (so the specific sets, e.g. "ip.addresses", come before the catch-alls such
# as "ip.other").  Names are those of ``sklearn_flowspectrum._layouts`` byte
# maps: the registry's fields, "trailer" and "other"; "pad" (zero padding)
# belongs to no set.
AUDIT_FIELDS = {
    name: patterns or tuple(f.name for f in FIELDS if f.audit == name)
    for name, patterns in AUDIT_SETS
}
_PAYLOAD_SETS = frozenset({"payload"})
# Field sets that identify the capture (when and where it was recorded, which
# hosts) rather than describe the traffic.  A score from them is leakage; a
# score from the other header sets (lengths, flags, protocol numbers) comes
# from the shape of the traffic, which may or may not be what the user wants
# the model to learn.
CONTEXT_SETS = frozenset(f.audit for f in FIELDS if f.context)


def _set_index(names, field_sets):
    """Map each field name to the index of the first matching field set."""
    set_names = list(field_sets)
    cache = {}
    for name in names:
        if name in cache:
            continue
        cache[name] = -1
        for i, s in enumerate(set_names):
            if any(fnmatch.fnmatchcase(name, p) for p in field_sets[s]):
                cache[name] = i
                break
    return cache


def _ustc_packet_index(rows):
    """Packet index of every byte of USTC rows (record header + frame), else -1."""
    parsed = parse_ustc_rows(rows)
    n, width = rows.shape
    packet = np.full((n, width), -1, dtype=np.int16)
    r, off = parsed.record_row, parsed.record_offset
    if r.size:
        # Records come row by row in offset order: rank within the row, and
        # each record runs to the next one of its row (or the row end).
        first = np.r_[True, r[1:] != r[:-1]]
        starts_of_run = np.flatnonzero(first)
        rank = np.arange(r.size) - np.repeat(
            starts_of_run, np.diff(np.r_[starts_of_run, r.size])
        )
        last = np.r_[r[1:] != r[:-1], True]
        stop = np.where(last, width, np.r_[off[1:], width])
        ln = stop - off
        pos = np.repeat(off - np.cumsum(ln) + ln, ln) + np.arange(ln.sum())
        packet[np.repeat(r, ln), pos] = np.repeat(rank, ln)
    return packet, parsed.status


def _packets_byte_map(rows, packet_bytes):
    """Field names and packet index of "packets"-layout rows (IP-header slots)."""
    slot, _ = packet_slot_map(rows.shape[1], packet_bytes)
    packet = slot.astype(np.int16)[None, :].repeat(rows.shape[0], axis=0)
    return packet_rows_byte_map(rows, packet_bytes), packet


def byte_field_map(X, *, layout="ustc", field_sets=None, packet_bytes=112):
    """Per-byte field set and packet index of each row of session images.

    Parameters
    ----------
    X : array-like of shape (n_sessions, n_bytes)
        Session images as ``uint8`` bytes (or floats in [0, 1], which are
        scaled back by 255).
    layout : {"ustc", "packets", "l7"}, default="ustc"
        ``"ustc"``: USTC-TK2016 "AllLayers" rows, as published or as
        :class:`~sklearn_flowspectrum.PcapSessionVectorizer` writes them (a
        pcap file: global header, then a record header and a frame per
        packet); each row's own record headers give its packet boundaries
        (:func:`sklearn_flowspectrum._layouts.rows_byte_map`), so masked rows
        map too.  ``"packets"``: the vectorizer's fixed per-packet slots of
        ``packet_bytes``, each from an IP header on.  ``"l7"``: concatenated
        payloads; every byte is payload and packet boundaries are unknown.
        (The ``"frames"`` layout has no record headers and its packet
        boundaries cannot be recovered from a row alone.)
    field_sets : dict of str to tuple of str, default=None
        Field set name to ``fnmatch`` patterns over field names; defaults to
        :data:`AUDIT_FIELDS`.
    packet_bytes : int, default=112
        Slot size of the ``"packets"`` layout.

    Returns
    -------
    field : ndarray of int16, shape (n_sessions, n_bytes)
        Index into ``names`` of the field set of each byte, -1 for bytes no
        set covers (zero padding).
    packet : ndarray of int16, shape (n_sessions, n_bytes)
        0-based packet index of each byte, -1 outside packets (global header,
        padding, or unknown for ``"l7"``).
    names : list of str
        The field set names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum.evaluation._audit import byte_field_map
    >>> field, packet, names = byte_field_map(np.ones((2, 8), np.uint8), layout="l7")
    >>> [names[i] for i in np.unique(field)]
    ['payload']
    """
    field_sets = AUDIT_FIELDS if field_sets is None else field_sets
    names = list(field_sets)
    X = _as_bytes(X)
    n, width = X.shape
    if layout == "l7":
        if "payload" not in names:
            raise ValueError("layout='l7' needs a 'payload' field set.")
        field = np.full((n, width), names.index("payload"), dtype=np.int16)
        return field, np.full((n, width), -1, dtype=np.int16), names
    if layout == "ustc":
        byte_names = rows_byte_map(X)
        packet, status = _ustc_packet_index(X)
        if n and (status == "not_pcap").all():
            raise ValueError(
                "layout='ustc': no row starts with a pcap global header (magic "
                "a1b2c3d4); pass layout='l7' or 'packets' for other images."
            )
    elif layout == "packets":
        byte_names, packet = _packets_byte_map(X, packet_bytes)
    else:
        raise ValueError(f"layout must be 'ustc', 'packets' or 'l7', got {layout!r}.")
    # Hash-based factorization: far faster than sorting 784 strings per row.
    codes, uniq = pd.factorize(byte_names.ravel())
    index = _set_index([str(u) for u in uniq], field_sets)
    lut = np.array([index[str(u)] for u in uniq], dtype=np.int16)
    field = lut[codes].reshape(n, width)
    if layout == "ustc":
        # Rows that are no pcap image (e.g. all zeros) have no fields at all.
        field[status == "not_pcap"] = -1
    return field, packet, names


def _as_bytes(X):
    X = np.asarray(X)
    if X.ndim == 3:
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array of session images, got shape {X.shape}."
        )
    if X.dtype == np.uint8:
        return X
    if np.issubdtype(X.dtype, np.floating):
        if X.size and (np.nanmin(X) < 0 or np.nanmax(X) > 1):
            raise ValueError(
                "X holds floats outside [0, 1]; pass uint8 bytes or the "
                "vectorizer's scaled output (byte / 255)."
            )
        return np.rint(X * 255).astype(np.uint8)
    if np.issubdtype(X.dtype, np.integer):
        if X.size and (X.min() < 0 or X.max() > 255):
            raise ValueError("X holds integers outside 0..255; expected bytes.")
        return X.astype(np.uint8)
    raise TypeError(f"X must hold bytes (uint8) or floats in [0, 1], got {X.dtype}.")


def field_features(X, field, packet, s, *, n_packets=3, max_bytes_per_packet=256):
    """Bytes of field set ``s`` in the first packets, one fixed slot per packet.

    Packet ``j`` (``j < n_packets``) gets a slot as wide as the widest
    occurrence of the field set in packet ``j`` over all rows (capped at
    ``max_bytes_per_packet``); the field's bytes are copied into it in row
    order and the rest of the slot holds -1 ("no byte").  Byte positions with
    no packet index (the global header, or every byte of an ``"l7"`` row)
    form one extra slot.

    Returns
    -------
    features : ndarray of float32, shape (n_sessions, n_features)
    present : ndarray of bool, shape (n_sessions,)
        Whether the row has at least one byte of the field set.
    """
    X = _as_bytes(X)
    blocks = []
    in_set = field == s
    for j in [-1, *range(n_packets)]:
        m = in_set & (packet == j)
        counts = m.sum(axis=1)
        width = int(min(counts.max(initial=0), max_bytes_per_packet))
        if width == 0:
            continue
        rank = np.cumsum(m, axis=1) - 1
        keep = m & (rank < width)
        rows, cols = np.nonzero(keep)
        block = np.full((X.shape[0], width), -1.0, dtype=np.float32)
        block[rows, rank[rows, cols]] = X[rows, cols]
        blocks.append(block)
    if not blocks:
        return np.empty((X.shape[0], 0), np.float32), np.zeros(X.shape[0], bool)
    feats = np.hstack(blocks)
    return feats, (feats >= 0).any(axis=1)


def _default_estimator(random_state):
    return ExtraTreesClassifier(
        n_estimators=50, max_features="sqrt", n_jobs=1, random_state=random_state
    )


def leakage_audit(
    X,
    y,
    *,
    layout="ustc",
    groups=None,
    cv=5,
    estimator=None,
    field_sets=None,
    n_packets=3,
    warn_ratio=0.9,
    random_state=0,
    n_jobs=None,
):
    """Cross-validated accuracy of a simple model on each protocol field alone.

    For each field set of the layout's byte map (capture timestamps, MAC and
    IP addresses, IP ID, TTL, lengths, checksums, ports, TCP sequence and
    acknowledgement numbers, TCP timestamps, payload, ...), a copy of
    ``estimator`` is cross-validated on the bytes of that field alone.  The
    table puts each score next to the majority-class baseline and the same
    model on the whole image.  A non-payload field that comes close to the
    whole image means the labels can be read off the capture, not the traffic.

    Parameters
    ----------
    X : array-like of shape (n_sessions, n_bytes)
        Session images: ``uint8`` rows (for example the published
        USTC-TK2016 "AllLayers" rows) or the vectorizer's output scaled to
        [0, 1].  A ``(n, 28, 28)`` array is flattened.
    y : array-like of shape (n_sessions,)
        Labels.
    layout : {"ustc", "l7"}, default="ustc"
        How to find the fields.  ``"ustc"``: each row is the start of a pcap
        file; its record headers give the packet boundaries and each frame is
        dissected for its fields (so per-session byte maps follow the
        session's own packet sizes).  ``"l7"``: every byte is payload.
    groups : array-like of shape (n_sessions,), default=None
        Groups (capture file, server endpoint, ...) for the cross-validation;
        with an integer ``cv`` they turn it into a ``GroupKFold``.
    cv : int or cross-validation generator, default=5
        Integer: ``StratifiedKFold(cv, shuffle=True)`` (``GroupKFold(cv)``
        when ``groups`` is given).  Any scikit-learn splitter is accepted.
    estimator : classifier, default=None
        The model scored on every field and on the whole image.  Default:
        ``ExtraTreesClassifier(n_estimators=50, max_features="sqrt")``.  A
        tree ensemble treats a low-cardinality field (TTL, a port) as the
        lookup table it is; a 1-nearest-neighbour
        (``KNeighborsClassifier(1)``) is the other common choice, cheaper
        on the whole image for a few thousand rows but arbitrary on ties.
    field_sets : dict of str to tuple of str, default=None
        Field set name to ``fnmatch`` patterns over field names; defaults to
        :data:`AUDIT_FIELDS`.  A byte goes to the first set that matches.
    n_packets : int, default=3
        The feature of a field set is its bytes in the first ``n_packets``
        packets of the row, one fixed-width slot per packet (see
        :func:`field_features`); header fields are thus compared packet by
        packet.  Payload slots are capped at 256 bytes per packet.
    warn_ratio : float, default=0.9
        A non-payload field set is flagged (``leak=True``, and a
        :class:`LeakageWarning` is issued) when its accuracy gain over the
        majority baseline is at least ``warn_ratio`` times the whole image's
        gain, and at least 5 percentage points.
    random_state : int or None, default=0
        Seed of the default estimator and of the default shuffled folds.
    n_jobs : int, default=None
        Parallel folds, passed to :func:`~sklearn.model_selection.cross_val_score`
        (``None``: one process, ``-1``: all cores; not 0).

    Returns
    -------
    audit : DataFrame
        One row for the majority baseline, one for the whole image and one
        per field set present in the data, with columns ``field``, ``kind``
        ("baseline", "full" or "field"), ``n_features``, ``coverage`` (share
        of sessions that have the field), ``accuracy``, ``accuracy_std``
        (over folds), ``relative_gain`` (gain over the baseline divided by the
        whole image's gain), ``role`` ("context" for fields that identify the
        capture: timestamps, addresses, ports, IDs, TTL, checksums, sequence
        numbers; "shape" for the other headers: lengths, flags, protocol
        numbers; "payload") and ``leak``.  ``audit.attrs`` records the
        settings.

    Warns
    -----
    LeakageWarning
        Naming every flagged field set, and saying whether it identifies the
        capture (leakage) or describes the traffic's shape (a shortcut past
        the payload).

    Notes
    -----
    A field's feature also tells how many of the first ``n_packets``
    packets the row holds (absent packets are ``-1``), so even a blanked
    field scores a little above the majority class: that is the number of
    packets in the image, not the field.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum.evaluation import leakage_audit
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, (60, 16), dtype=np.uint8)
    >>> y = np.repeat([0, 1], 30)
    >>> audit = leakage_audit(X, y, layout="l7", cv=3)
    >>> audit[["field", "kind"]].values.tolist()
    [['majority class', 'baseline'], ['full image', 'full'], ['payload', 'field']]
    """
    X = _as_bytes(X)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y must be 1-D with one label per row of X ({X.shape[0]}), "
            f"got shape {y.shape}."
        )
    if not isinstance(n_packets, numbers.Integral) or n_packets < 1:
        raise ValueError(f"n_packets must be an integer >= 1, got {n_packets!r}.")
    if not isinstance(warn_ratio, numbers.Real) or not 0 < warn_ratio <= 1:
        raise ValueError(f"warn_ratio must be in (0, 1], got {warn_ratio!r}.")
    check_n_jobs(n_jobs, "leakage_audit")
    if np.unique(y).size < 2:
        raise ValueError("y must hold at least two classes to audit.")
    if isinstance(cv, numbers.Integral):
        cv = (
            GroupKFold(cv)
            if groups is not None
            else StratifiedKFold(cv, shuffle=True, random_state=random_state)
        )
    cv = check_cv(cv, y, classifier=True)
    estimator = _default_estimator(random_state) if estimator is None else estimator

    def score(est, feats):
        s = cross_val_score(clone(est), feats, y, groups=groups, cv=cv, n_jobs=n_jobs)
        return float(s.mean()), float(s.std())

    field, packet, names = byte_field_map(X, layout=layout, field_sets=field_sets)
    rows = []
    base = score(DummyClassifier(strategy="most_frequent"), np.zeros((len(y), 1)))
    rows.append(("majority class", "baseline", 0, 1.0, *base))
    full = score(estimator, X.astype(np.float32))
    rows.append(("full image", "full", X.shape[1], 1.0, *full))
    for s, name in enumerate(names):
        feats, present = field_features(X, field, packet, s, n_packets=n_packets)
        if feats.shape[1] == 0:
            continue
        rows.append(
            (
                name,
                "field",
                feats.shape[1],
                float(present.mean()),
                *score(estimator, feats),
            )
        )
    audit = pd.DataFrame(
        rows,
        columns=["field", "kind", "n_features", "coverage", "accuracy", "accuracy_std"],
    )
    gain_full = full[0] - base[0]
    gain = audit["accuracy"] - base[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        audit["relative_gain"] = gain / gain_full if gain_full > 0 else np.nan
    audit["role"] = np.select(
        [
            audit["kind"] != "field",
            audit["field"].isin(_PAYLOAD_SETS),
            audit["field"].isin(CONTEXT_SETS),
        ],
        ["", "payload", "context"],
        default="shape",
    )
    audit["leak"] = (
        (audit["kind"] == "field")
        & ~audit["field"].isin(_PAYLOAD_SETS)
        & (gain >= 0.05)
        & (gain >= warn_ratio * max(gain_full, 0.0))
    )
    audit.attrs.update(
        layout=layout,
        estimator=repr(estimator),
        cv=repr(cv),
        n_packets=n_packets,
        warn_ratio=warn_ratio,
        n_sessions=int(X.shape[0]),
        grouped=groups is not None,
    )
    leaks = audit.loc[audit["leak"]]
    if len(leaks):
        parts = ", ".join(
            f"{f} {a:.1%}" for f, a in zip(leaks["field"], leaks["accuracy"])
        )
        context = [f for f in leaks["field"] if f in CONTEXT_SETS]
        shape = [f for f in leaks["field"] if f not in CONTEXT_SETS]
        advice = []
        if context:
            advice.append(
                f"{', '.join(context)} identify the capture (time, hosts, "
                "addresses), not the traffic: a model can score by reading them; "
                "mask them, use L7 images, or split by capture file or time"
            )
        if shape:
            advice.append(
                f"{', '.join(shape)} describe the shape of the traffic (sizes, "
                "flags): a model can score from them without reading the "
                "payload; check that this is what you want to measure"
            )
        warnings.warn(
            f"Header fields alone predict the labels about as well as the whole "
            f"image ({full[0]:.1%}; majority class {base[0]:.1%}): {parts}. "
            + "; ".join(advice)
            + ".",
            LeakageWarning,
            stacklevel=2,
        )
    return audit


def plot_leakage_audit(audit, *, ax=None, title=None):
    """Horizontal bars of a :func:`leakage_audit` table.

    Each field set's accuracy is a bar, with the majority baseline and the
    whole image as vertical lines.  Flagged sets are red when they identify
    the capture (:data:`CONTEXT_SETS`) and orange when they describe the
    traffic's shape.

    Parameters
    ----------
    audit : DataFrame
        The output of :func:`leakage_audit`.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    title : str, default=None
        Axes title; by default names the layout and the number of sessions.

    Returns
    -------
    ax : matplotlib Axes
    """
    from sklearn_flowspectrum._axes import get_ax

    fields = audit[audit["kind"] == "field"]
    base = float(audit.loc[audit["kind"] == "baseline", "accuracy"].iloc[0])
    full = float(audit.loc[audit["kind"] == "full", "accuracy"].iloc[0])
    ax = get_ax(ax, (7, 0.3 * len(fields) + 1.5))
    ypos = np.arange(len(fields))[::-1]
    colors = np.where(
        fields["leak"],
        np.where(fields["field"].isin(CONTEXT_SETS), "tab:red", "tab:orange"),
        "tab:blue",
    )
    ax.barh(
        ypos,
        fields["accuracy"],
        xerr=fields["accuracy_std"],
        color=colors,
        alpha=0.8,
    )
    ax.set_yticks(ypos, fields["field"])
    ax.axvline(base, color="grey", ls="--", label=f"majority class {base:.1%}")
    ax.axvline(full, color="black", ls="-", label=f"full image {full:.1%}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("cross-validated accuracy of the field alone")
    if title is None:
        title = (
            f"Leakage audit: layout={audit.attrs.get('layout', '?')}, "
            f"{audit.attrs.get('n_sessions', '?')} sessions"
        )
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return ax
