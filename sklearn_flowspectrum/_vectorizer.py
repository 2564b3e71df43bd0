"""PcapSessionVectorizer: network sessions -> fixed-size byte images."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import os
import warnings
from collections import Counter
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from sklearn_flowspectrum._capture import Record, iter_batches
from sklearn_flowspectrum._layers import dissect
from sklearn_flowspectrum._layouts import (
    LAYERS,
    LAYOUTS,
    batch_byte_map,
    batch_from_frames,
    build_images,
    mask_ustc_rows,
    mostly_pcap_rows,
    parse_ustc_rows,
    place,
    resolve_mask,
    rows_byte_map,
)
from sklearn_flowspectrum._protocols import LINKTYPE_ETHERNET
from sklearn_flowspectrum._validation import byte_feature_names

__all__ = ["PcapSessionVectorizer"]

_TABLE_COLUMNS = ("frames", "frame_ts_ns", "frame_orig_len", "linktype")
# Sessions of a table imaged at once by transform (a few MB of frames).
_BLOCK_SESSIONS = 4096


class PcapSessionVectorizer(TransformerMixin, BaseEstimator):
    """Turn network sessions into fixed-size byte images (USTC-TK2016 and more).

    Each session becomes one row of ``n_bytes`` bytes, the input of the AMAE
    embedder: with the defaults, the 784-byte (28x28) image of Wang et al.
    2017 that the AMAE paper uses, with the fields that leak the capture
    (timestamps, addresses, ports, IP ID, checksums, DNS transaction IDs)
    blanked in every packet.

    Parameters
    ----------
    n_bytes : int, default=784
        Bytes per image.  Any positive number; a square (784 = 28x28) when the
        images feed a 2-D network.
    layers : {"all", "l7"}, default="all"
        ``"all"``: the packets from their link-layer header; ``"l7"``: only
        the TCP/UDP payloads, each bounded by the IP total length (so Ethernet
        padding is never payload).
    layout : {"ustc", "frames", "packets"}, default="ustc"
        ``"ustc"``: the bytes of the session's pcap file as SplitCap writes it
        (big-endian global and record headers, then the frames), the
        USTC-TK2016 format byte for byte.  ``"frames"``: the frames
        concatenated, no pcap headers.  ``"packets"``: fixed slots of
        ``packet_bytes`` bytes, one per packet, from its IP header on.  With
        ``layers="l7"``, ``"ustc"`` and ``"frames"`` both give the
        concatenated payloads and ``"packets"`` one slot per payload.  The
        byte map of each layout is documented in
        :mod:`sklearn_flowspectrum._layouts`; :meth:`byte_map` computes it.
    mask : {"safe", "none"}, str, list of str or None, default="safe"
        Fields blanked (set to zero) in every packet of the image.  ``"safe"``
        blanks the groups ``timestamps`` (pcap record time, TCP timestamp
        option), ``addresses`` (MAC, SLL, IPv4, IPv6), ``ports``, ``ip_id``
        (IPv4 ID, IPv6 flow label), ``checksums`` (IP, TCP, UDP) and
        ``dns_id`` (the transaction ID that starts UDP DNS, NetBIOS name,
        mDNS and LLMNR payloads: it ties together the sessions of one query
        event); ``"none"`` reproduces the published images.  A list may mix group
        names and field names (e.g. ``["ports", "ip.ttl"]``).
    packet_bytes : int, default=112
        Slot size of ``layout="packets"`` (``n_bytes // packet_bytes`` slots;
        112 makes each packet 4 rows of a 28x28 image).  Unused otherwise.
    scale : bool, default=True
        Return ``float32`` bytes / 255 in [0, 1]; ``False`` returns the
        ``uint8`` bytes.

    Attributes
    ----------
    mask_fields_ : frozenset of str
        The field names the mask blanks.
    n_features_out_ : int
        ``n_bytes``.
    layers_, layout_, packet_bytes_ : str, str, int
        ``layers``, ``layout`` and ``packet_bytes`` at ``fit``.
    input_kind_ : {"table", "paths", "pcap_rows", "other_rows"} or None
        What ``fit`` was given: a session table, per-session capture files,
        rows that start with a pcap header (USTC-TK2016 AllLayers rows) or
        other rows (e.g. published L7 payload rows, passed through); None
        for an empty array of rows.
    n_row_bytes_ : int or None
        Width of the rows given to ``fit``; None for tables and files.

    See Also
    --------
    read_sessions : Read captures into the session table this transformer takes.
    read_idx : Read published USTC-TK2016 images (rows this transformer masks).

    Notes
    -----
    ``transform`` accepts three kinds of input:

    - a session table from :func:`read_sessions` (a DataFrame with the columns
      ``frames``, ``frame_ts_ns``, ``frame_orig_len`` and ``linktype``; its
      ``attrs["keep_bytes"]`` must be at least ``n_bytes``);
    - a sequence of paths to per-session pcap/pcapng files (the output of a
      session splitter such as SplitCap): all packets of a file are one
      session;
    - a 2-D ``uint8`` array of USTC-TK2016 AllLayers rows (e.g. from
      :func:`read_idx`).  Their pcap record headers give the packet
      boundaries back, so they can be masked and re-laid out; a frame cut by
      the row end is used as far as it goes.  Rows that are not pcap images
      (e.g. all zeros) are returned unmasked, with a warning that counts them.
      With ``layers="l7"`` the payloads come from the packets inside the row
      only, so they are shorter than a published L7 row of the same session.

    ``transform`` makes the images that ``fit`` saw the making of, or raises a
    ``ValueError`` naming the difference: parameters changed since ``fit``;
    rows without a pcap header after fitting on sessions or AllLayers rows
    (or the other way round); rows too narrow to fill the bytes of each
    image that the training images had (e.g. 500-byte rows after fitting on
    sessions with ``n_bytes=784``).  Session tables, per-session files and
    AllLayers rows of full width give the same images and can replace each
    other.

    Masking blanks bytes: a masked field reads as zero in every packet of the
    image (only the IPv6 flow label is cleared bit-wise inside
    ``ipv6.vtcfl``).  Lengths, TTL, flags, sequence numbers and payloads stay;
    the pcap linktype (byte 23 of a ``"ustc"`` image) stays too and tells raw
    IP captures (e.g. the ISCX VPN ones) from Ethernet ones: the
    ``"packets"`` layout drops the link layer altogether.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum import PcapSessionVectorizer
    >>> rows = np.zeros((1, 784), dtype=np.uint8)
    >>> header = bytes.fromhex("a1b2c3d4000200040000000000000000" "0000ffff00000065")
    >>> record = bytes.fromhex("5a0000010000000a0000001d0000001d")
    >>> ip = bytes.fromhex("4500001d0001000040110000c0a80001c0a80002")
    >>> udp = bytes.fromhex("14e9003500090000") + b"x"
    >>> packet = header + record + ip + udp
    >>> rows[0, : len(packet)] = list(packet)
    >>> vec = PcapSessionVectorizer(scale=False).fit(rows)
    >>> image = vec.transform(rows)
    >>> image.shape, image[0, 24:32].tolist()  # the timestamp is blanked
    ((1, 784), [0, 0, 0, 0, 0, 0, 0, 0])
    >>> image[0, 52:60].tolist()  # so are the IP addresses
    [0, 0, 0, 0, 0, 0, 0, 0]
    """

    _parameter_constraints = {
        "n_bytes": [Interval(Integral, 1, None, closed="left")],
        "layers": [StrOptions(set(LAYERS))],
        "layout": [StrOptions(set(LAYOUTS))],
        "mask": [str, list, tuple, set, frozenset, None],
        "packet_bytes": [Interval(Integral, 1, None, closed="left")],
        "scale": ["boolean"],
    }

    def __init__(
        self,
        *,
        n_bytes=784,
        layers="all",
        layout="ustc",
        mask="safe",
        packet_bytes=112,
        scale=True,
    ):
        self.n_bytes = n_bytes
        self.layers = layers
        self.layout = layout
        self.mask = mask
        self.packet_bytes = packet_bytes
        self.scale = scale

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the parameters; the transformer learns nothing from data.

        Parameters
        ----------
        X : DataFrame, sequence of str or path-like, or ndarray of uint8
            Only its kind is checked (see :meth:`transform`).
        y : None
            Ignored.

        Returns
        -------
        self : PcapSessionVectorizer
        """
        self.mask_fields_ = resolve_mask(self.mask)
        if self.layout == "packets" and self.packet_bytes > self.n_bytes:
            raise ValueError(
                f"packet_bytes={self.packet_bytes} is larger than "
                f"n_bytes={self.n_bytes}: the 'packets' layout would have no slot"
            )
        self.input_kind_, self.n_row_bytes_ = _describe_input(X)
        self.n_features_out_ = int(self.n_bytes)
        self.layers_ = self.layers
        self.layout_ = self.layout
        self.packet_bytes_ = int(self.packet_bytes)
        return self

    def transform(self, X):
        """Build one image per session.

        Parameters
        ----------
        X : DataFrame, sequence of str or path-like, or ndarray of uint8
            A session table from :func:`read_sessions`, paths of per-session
            capture files, or USTC-TK2016 AllLayers rows; see Notes.

        Returns
        -------
        images : ndarray of shape (n_sessions, n_bytes)
            ``float32`` in [0, 1] when ``scale=True``, else ``uint8``.

        Raises
        ------
        ValueError
            When ``X`` or the parameters differ from what ``fit`` saw in a way
            that changes the images (see Notes).
        """
        check_is_fitted(self)
        self._check_like_fit(X)
        notes = []
        try:
            if _input_kind(X) != "table":
                return self._scaled(self._images(X, notes))
            # Sessions of a table are imaged a block at a time: the
            # intermediate arrays stay small (in the CPU caches, no memory to
            # fault in) and only the output grows with the table.
            columns = self._table_columns(X, notes)
            n = len(X)
            dtype = np.float32 if self.scale else np.uint8
            images = np.empty((n, self.n_bytes), dtype)
            for a in range(0, max(n, 1), _BLOCK_SESSIONS):
                block = [c[a : a + _BLOCK_SESSIONS] for c in columns]
                self._scaled(self._images_of(self._table_batch(*block)), images[a:])
            return images
        finally:
            _warn_caller(notes, type(self).transform)

    def _check_like_fit(self, X):
        """Raise when ``X`` or the parameters would give other images than fit's."""
        if "input_kind_" not in self.__dict__:
            return  # fitted before fit recorded its input and parameters
        fitted = {
            "n_bytes": self.n_features_out_,
            "layers": self.layers_,
            "layout": self.layout_,
            "packet_bytes": self.packet_bytes_,
        }
        changed = [
            f"{name}={getattr(self, name)!r} (fitted with {value!r})"
            for name, value in fitted.items()
            if getattr(self, name) != value
        ]
        if resolve_mask(self.mask) != self.mask_fields_:
            changed.append(f"mask={self.mask!r} (fitted with another mask)")
        if changed:
            raise ValueError(
                f"PcapSessionVectorizer parameters changed since fit: "
                f"{', '.join(changed)}; the images would not be those the next "
                "step was fitted on. Call fit again"
            )
        kind, width = _describe_input(X)
        if kind is None or self.input_kind_ is None:
            return  # no rows on one side: nothing to image, or nothing known
        sessions = ("table", "paths", "pcap_rows")
        if (kind in sessions) != (self.input_kind_ in sessions):
            raise ValueError(
                f"PcapSessionVectorizer was fitted on {_KIND_TEXT[self.input_kind_]} "
                f"but X holds {_KIND_TEXT[kind]}: the two are not imaged alike. "
                "Fit on the kind of input you transform"
            )
        reach = self.n_bytes if width is None else min(width, self.n_bytes)
        fitted_width = self.n_row_bytes_
        fitted_reach = self.n_bytes if fitted_width is None else fitted_width
        fitted_reach = min(fitted_reach, self.n_bytes)
        if reach != fitted_reach:
            fitted_text = (
                _KIND_TEXT[self.input_kind_]
                if fitted_width is None
                else f"rows of {fitted_width} bytes"
            )
            given = _KIND_TEXT[kind] if width is None else f"rows of {width} bytes"
            raise ValueError(
                f"PcapSessionVectorizer was fitted on {fitted_text} (images with "
                f"{fitted_reach} of their n_bytes={self.n_bytes} bytes from the "
                f"session) but X holds {given} (images with {reach}): the next "
                "step would see zeros where it learned session bytes, or the "
                "other way round"
            )

    def _scaled(self, images, out=None):
        """``images`` as the output dtype, written to ``out`` when given."""
        if out is not None:
            out = out[: len(images)]
        if self.scale:
            # One pass, no intermediate float copy; same values as
            # ``images.astype(np.float32) / np.float32(255)``.
            return np.divide(images, np.float32(255), dtype=np.float32, out=out)
        if out is None:
            return images
        out[...] = images
        return out

    def byte_map(self, X):
        """Name the field behind every position of every image.

        Parameters
        ----------
        X : DataFrame, sequence of str or path-like, or ndarray of uint8
            As for :meth:`transform`.

        Returns
        -------
        byte_map : ndarray of shape (n_sessions, n_bytes), dtype object
            Field names as :func:`sklearn_flowspectrum._layers.dissect` gives
            them (``"eth.src"``, ``"ip.ttl"``, ``"tcp.seq"``, ``"payload"``,
            ...), the pcap header fields (``"pcap.ts_sec"``, ...),
            ``"trailer"`` (frame bytes after the last dissected field),
            ``"other"`` (undissectable bytes) and ``"pad"``.  Use
            :func:`byte_map_layers` for coarse layer names.
        """
        check_is_fitted(self)
        kind = _input_kind(X)
        if kind == "rows" and self.layers == "all" and self.layout == "ustc":
            rows = _as_rows(X)
            maps = rows_byte_map(rows)
            return _fit_width(maps, self.n_bytes, fill="pad")
        notes = []
        try:
            batch = self._batch(X, kind, notes)
        finally:
            _warn_caller(notes, type(self).byte_map)
        pl = place(
            batch,
            layout=self.layout,
            layers=self.layers,
            n_bytes=self.n_bytes,
            packet_bytes=self.packet_bytes,
        )
        return batch_byte_map(batch, pl, self.n_bytes)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: ``byte0`` ... ``byte{n_bytes-1}``.

        Parameters
        ----------
        input_features : None
            Ignored; the input has no feature names.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        return byte_feature_names(self.n_features_out_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Session tables, paths or raw uint8 rows: not a generic 2-D array.
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return tags

    # ------------------------------------------------------------------

    def _images(self, X, notes):
        kind = _input_kind(X)
        if kind == "rows" and self.layers == "all" and self.layout == "ustc":
            masked, status = mask_ustc_rows(_as_rows(X), self.mask_fields_)
            _note_rows(status, notes)
            return _fit_width(masked, self.n_bytes, fill=0)
        return self._images_of(self._batch(X, kind, notes))

    def _images_of(self, batch):
        return build_images(
            batch,
            layout=self.layout,
            layers=self.layers,
            n_bytes=self.n_bytes,
            packet_bytes=self.packet_bytes,
            mask=self.mask_fields_,
            consume=True,
        )

    def _batch(self, X, kind, notes):
        if kind == "table":
            return self._table_batch(*self._table_columns(X, notes))
        if kind == "rows":
            parsed = parse_ustc_rows(_as_rows(X))
            _note_rows(parsed.status, notes)
            return parsed.batch
        return self._read_files(X)

    def _table_columns(self, table, notes):
        _check_table(table, self.n_bytes, self.layout, self.packet_bytes, notes)
        # One column access: pandas deep-copies .attrs on each one.
        return table[list(_TABLE_COLUMNS)].to_numpy().T

    def _table_batch(self, frames, ts, orig, linktype):
        records = self.layout == "ustc" and self.layers == "all"
        times = {"pcap.ts_sec", "pcap.ts_usec"} - self.mask_fields_
        return batch_from_frames(
            frames,
            ts if records and times else None,
            orig if records else None,
            linktype.astype(np.int64),
            layout=self.layout,
            layers=self.layers,
            n_bytes=self.n_bytes,
            packet_bytes=self.packet_bytes,
        )

    def _read_files(self, paths):
        frames, ts, orig, linktypes = [], [], [], []
        n_slots = self.n_bytes // self.packet_bytes
        l7, slots = self.layers == "l7", self.layout == "packets"
        for path in paths:
            kept, kept_ts, kept_orig, lts = [], [], [], set()
            size = payload = with_payload = 0
            for rec in _records(path):
                kept.append(rec.frame)
                kept_ts.append(rec.ts_ns)
                kept_orig.append(rec.orig_len)
                lts.add(rec.linktype)
                size += len(rec.frame)
                if l7:
                    n = dissect(rec.frame, rec.linktype).payload_length
                    payload += n
                    with_payload += n > 0
                # Stop reading once the image is complete.
                if l7 and slots:
                    done = with_payload >= n_slots
                elif l7:
                    done = payload >= self.n_bytes
                else:
                    done = len(kept) >= n_slots if slots else size >= self.n_bytes
                if done:
                    break
            if len(lts) > 1:
                raise ValueError(
                    f"{os.fspath(path)}: packets of several link types "
                    f"{sorted(lts)}; one session image needs one link type"
                )
            frames.append(kept)
            ts.append(kept_ts)
            orig.append(kept_orig)
            linktypes.append(lts.pop() if lts else LINKTYPE_ETHERNET)
        return batch_from_frames(frames, ts, orig, linktypes)


def _records(path):
    """The records of one per-session capture, read in a chunk of its size.

    Session files are small; a chunk the size of the file (at most 1 MiB, the
    images need only the first packets) avoids reading and walking a large
    empty buffer per file.
    """
    try:
        chunk = min(max(os.path.getsize(path), 64), 1 << 20)
    except OSError:
        chunk = 1 << 20  # the capture reader reports the problem
    for batch in iter_batches(path, chunk_size=chunk):
        data = batch.data
        for s, c, o, t, lt in zip(
            batch.start.tolist(),
            batch.caplen.tolist(),
            batch.orig_len.tolist(),
            batch.ts_ns.tolist(),
            batch.linktype.tolist(),
        ):
            yield Record(t, bytes(data[s : s + c]), o, lt)


def _input_kind(X):
    """``"table"``, ``"paths"`` or ``"rows"``; TypeError for anything else."""
    if isinstance(X, pd.DataFrame):
        missing = [c for c in _TABLE_COLUMNS if c not in X.columns]
        if missing:
            raise ValueError(
                "a session table needs the columns "
                f"{', '.join(_TABLE_COLUMNS)} (as read_sessions returns); "
                f"missing: {', '.join(missing)}"
            )
        return "table"
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(
            "PcapSessionVectorizer expects a sequence of capture paths, not a "
            f"single path ({X!r}); wrap it in a list"
        )
    if isinstance(X, np.ndarray) and X.dtype.kind in "uif":
        return "rows"
    if isinstance(X, (list, tuple, np.ndarray, pd.Series)):
        items = list(X)
        if items and all(isinstance(p, (str, os.PathLike)) for p in items):
            return "paths"
        if not items:
            raise ValueError("PcapSessionVectorizer got an empty sequence")
        return "rows"
    raise TypeError(
        "PcapSessionVectorizer takes a session table (read_sessions), a sequence "
        "of per-session capture paths, or a 2-D uint8 array of USTC-TK2016 rows; "
        f"got {type(X).__name__}"
    )


_KIND_TEXT = {
    "table": "a session table",
    "paths": "per-session capture files",
    "pcap_rows": "rows that start with a pcap header (AllLayers rows)",
    "other_rows": "rows without a pcap header (e.g. L7 payload rows)",
}


def _describe_input(X):
    """``(kind, width)``: ``_input_kind``, with rows told apart by content.

    ``kind`` is ``"table"``, ``"paths"``, ``"pcap_rows"`` (most rows start
    with a pcap global header), ``"other_rows"`` or None (no rows to tell);
    ``width`` is the row width, None for tables and paths.
    """
    kind = _input_kind(X)
    if kind != "rows":
        return kind, None
    rows = _as_rows(X)
    if not rows.shape[0]:
        return None, rows.shape[1]
    return ("pcap_rows" if mostly_pcap_rows(rows) else "other_rows"), rows.shape[1]


def _as_rows(X):
    rows = np.asarray(X)
    if rows.ndim != 2:
        raise ValueError(
            f"USTC-TK2016 rows must be a 2-D array (n_sessions, width), got "
            f"shape {rows.shape}"
        )
    if rows.dtype != np.uint8:
        if (
            rows.dtype.kind not in "iu"
            or rows.size
            and (rows.min() < 0 or rows.max() > 255)
        ):
            raise ValueError(
                "USTC-TK2016 rows must hold bytes (uint8 values 0..255); got "
                f"dtype {rows.dtype}. Scaled images cannot be masked: pass the "
                "uint8 rows that read_idx returns"
            )
        rows = rows.astype(np.uint8)
    return rows


def _fit_width(array, width, fill):
    """Cut or pad the rows of ``array`` to ``width`` columns."""
    n, w = array.shape
    if w >= width:
        return np.ascontiguousarray(array[:, :width])
    out = np.full((n, width), fill, dtype=array.dtype)
    out[:, :w] = array
    return out


def _warn_caller(notes, method):
    """Issue the warnings ``notes`` gathered by a public ``method`` so that
    they point at the line that called it.

    The helpers below the public methods append their messages to ``notes``
    rather than warn, so that one place knows how deep the call is: this
    function, the method, then its caller; sklearn wraps ``transform`` for
    ``set_output`` (``functools.wraps`` leaves ``__wrapped__``), one frame
    more.
    """
    stacklevel = 3 + hasattr(method, "__wrapped__")
    for message in notes:
        warnings.warn(message, UserWarning, stacklevel=stacklevel)


def _note_rows(status, notes):
    counts = Counter(status.tolist())
    counts.pop("ok", None)
    if counts:
        details = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        notes.append(
            f"{sum(counts.values())} of {len(status)} rows are not complete pcap "
            f"images ({details}): not_pcap rows are left as they are, malformed "
            "ones are used up to their first impossible record header"
        )


def frames_needed(n_bytes, layout, packet_bytes):
    """What a session table must keep for these images: ``(keep_bytes,
    keep_packets)``, the arguments of :func:`read_sessions` that give it."""
    return n_bytes, (n_bytes // packet_bytes if layout == "packets" else 0)


def _check_table(table, n_bytes, layout, packet_bytes, notes):
    """Raise for a table that cannot give these images; append to ``notes``
    what makes them incomplete."""
    keep_bytes, keep_packets = frames_needed(n_bytes, layout, packet_bytes)
    keep = table.attrs.get("keep_bytes")
    if keep is not None and keep < keep_bytes:
        raise ValueError(
            f"the session table keeps the frames of {keep} bytes per session "
            f"(read_sessions(keep_bytes={keep})), fewer than n_bytes={n_bytes}; "
            f"read the captures again with keep_bytes>={keep_bytes}"
        )
    if keep_packets and "packets" in table.columns:
        kept = table["frames"].map(len).to_numpy()
        wanted = np.minimum(table["packets"].to_numpy(), keep_packets)
        short = int((kept < wanted).sum())
        if short:
            notes.append(
                f"{short} of {len(table)} sessions have fewer kept frames than "
                "slots of the 'packets' layout; their last slots stay empty. "
                f"Read the captures with keep_packets={keep_packets} to fill them"
            )
