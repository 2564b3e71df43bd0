"""Session image layouts, their byte maps, and masking of leaky fields.

This module is the one place that decides where each byte of a session image
comes from.  :class:`~sklearn_flowspectrum.PcapSessionVectorizer` builds
images with it, masking reads its field ranges, and the byte maps that label
attention weights are computed from the same placement.

Layouts (``n`` is ``n_bytes``; every image is zero padded to ``n``):

``"ustc"``
    The USTC-TK2016 image (Wang et al. 2017), byte for byte: the first ``n``
    bytes of the per-session pcap FILE that SplitCap writes.  A 24-byte
    big-endian global header (magic ``a1b2c3d4``, version 2.4, thiszone 0,
    sigfigs 0, snaplen 65535, the session's linktype), then for each packet a
    16-byte big-endian record header (``ts_sec``, ``ts_usec``, ``incl_len``,
    ``orig_len``) followed by the captured frame from its link-layer header.
``"frames"``
    The captured frames concatenated from their link-layer headers, without
    pcap file or record headers.
``"packets"``
    Fixed per-packet slots of ``packet_bytes`` bytes: slot ``k`` holds the
    ``k``-th packet from its IP header on (the link layer is dropped, so
    images do not depend on the capture's link type), cut or zero padded to
    the slot.  ``n // packet_bytes`` slots; the remainder is padding.  With
    ``n=784`` and ``packet_bytes=112`` each packet fills 4 rows of the 28x28
    image.

With ``layers="l7"`` only TCP/UDP payload bytes are used.  A payload is
bounded by the IP total length (IPv6: payload length), so Ethernet padding is
never payload.  ``"ustc"`` and ``"frames"`` then give the same image, the
payloads concatenated (the USTC-TK2016 L7 image); ``"packets"`` gives one slot
per packet that carries payload.

Byte maps
---------
:func:`session_byte_map` names the field behind every image position.  Field
names are those of :func:`sklearn_flowspectrum._layers.dissect` (``eth.dst``,
``ip.src``, ``tcp.sport``, ``payload``, ...) plus the pcap headers of the
``"ustc"`` layout (``pcap.magic``, ``pcap.version``, ``pcap.thiszone``,
``pcap.sigfigs``, ``pcap.snaplen``, ``pcap.linktype`` in the global header;
``pcap.ts_sec``, ``pcap.ts_usec``, ``pcap.incl_len``, ``pcap.orig_len`` in each
record header), ``trailer`` for frame bytes after the last dissected field
(e.g. Ethernet padding), ``other`` for bytes of frames that could not be
dissected at all, and ``pad`` for the zero padding.  Because packet lengths
vary, the map is per session, except the slot structure of ``"packets"``:
:func:`packet_slot_map` gives each position's packet index and offset, and
:func:`packet_rows_byte_map` names the fields of images in that layout from
the images alone.  The leakage audit, the attention plots and the
explanations (:func:`sklearn_flowspectrum.explain`) all read these maps.

Masking
-------
A mask is a set of field names; their bytes are set to zero in every packet
of the image (blank = zero bytes), with one exception: ``ipv6.vtcfl`` keeps its
version and traffic class and only its 20-bit flow label is zeroed, so a
masked image still says IPv6.  Field groups (:data:`MASK_GROUPS`):

- ``timestamps``: record header ``pcap.ts_sec``, ``pcap.ts_usec``, and the
  TCP timestamp option values ``tcp.opt.timestamp`` (TSval/TSecr count time)
- ``addresses``: ``eth.src``, ``eth.dst``, ``sll.addr``, ``ip.src``,
  ``ip.dst``, ``ipv6.src``, ``ipv6.dst``
- ``ports``: ``tcp.sport``, ``tcp.dport``, ``udp.sport``, ``udp.dport``
- ``ip_id``: ``ip.id`` and the IPv6 flow label (in ``ipv6.vtcfl``)
- ``checksums``: ``ip.checksum``, ``tcp.checksum``, ``udp.checksum``
  (they are sums over the addresses and ports, so they encode them)
- ``dns_id``: ``dns.id``, the 2-byte transaction ID that starts the payload
  of UDP DNS, NetBIOS name service, mDNS and LLMNR packets (port 53, 137,
  5353 or 5355 on either side).  It identifies one query event: the same
  query sent over IPv4 and IPv6, or repeated, becomes several sessions with
  one ID, so a random split scores them by the ID.  In the ISCX training
  data, 8,979 identical "wpad" LLMNR sessions of the Chat and Email captures
  are told apart 79% of the time with the ID and 58% without (chance 50%;
  ``benchmarks/iscx_name_lookups.py``).
  The ID lies inside the payload, so it is blanked in ``layers="l7"``
  images too (built from captures or AllLayers rows; published L7 rows
  carry no ports to find it by).

``"safe"`` is all of these groups; ``"none"`` masks nothing.  The pcap
linktype (byte 23 of ``"ustc"`` images) is kept: it tells how the traffic was
captured (e.g. raw IP for the ISCX VPN captures), use ``"packets"`` to drop
it together with the whole link layer.  TCP sequence numbers are kept: they
are random per session, noise rather than a label.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

from collections.abc import Iterable
from itertools import chain
from typing import NamedTuple

import numpy as np

from sklearn_flowspectrum._layers import dissect
from sklearn_flowspectrum._loops import (
    copy_ranges,
    frame_lengths,
    join_frames,
    zero_ranges,
)
from sklearn_flowspectrum._protocols import (
    DNS_PORTS,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_VLAN,
    FIELD_BY_NAME,
    FIELD_GROUPS,
    FIELDS,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    MAX_SNAPLEN,
    PAD,
    PCAP_GLOBAL_LEN,
    PCAP_MAGIC_NS,
    PCAP_MAGIC_US,
    PCAP_RECORD_LEN,
    RAW_LINKTYPES,
    TRAILER,
    UNDISSECTED,
    header_fields,
)

__all__ = [
    "LAYOUTS",
    "MASK_GROUPS",
    "PCAP_GLOBAL_FIELDS",
    "PCAP_RECORD_FIELDS",
    "byte_map_layers",
    "mostly_pcap_rows",
    "packet_rows_byte_map",
    "packet_slot_map",
    "parse_ustc_rows",
    "pcap_row_mask",
    "resolve_mask",
    "rows_byte_map",
    "session_byte_map",
]

LAYOUTS = ("ustc", "frames", "packets")
LAYERS = ("all", "l7")

# Fields of the big-endian pcap headers SplitCap writes, (name, start, stop).
PCAP_GLOBAL_FIELDS = header_fields("pcap")
PCAP_RECORD_FIELDS = header_fields("pcap record")

MASK_GROUPS = {name: tuple(fields) for name, fields in FIELD_GROUPS.items()}
SAFE_FIELDS = frozenset(chain.from_iterable(MASK_GROUPS.values()))

# Every field name an image position can carry.
FIELD_NAMES = frozenset(FIELD_BY_NAME)
# The record-header part of a mask, relative to the record header.
_RECORD_OFFSETS = {name: (a, z) for name, a, z in PCAP_RECORD_FIELDS}
_GLOBAL_OFFSETS = {name: (a, z) for name, a, z in PCAP_GLOBAL_FIELDS}

# Per-field byte offsets the vectorised dissector knows, by the header they
# sit in (every registry field at a fixed place of these headers).  Other
# fields are found by the reference dissector, frame by frame, except those of
# _FAST_VARIABLE, which dissect_batch places with one branch each.
_FAST_FIXED = {
    name: (header, a, z)
    for header in ("ip4", "ip6", "tcp", "udp", "eth")
    for name, a, z in header_fields(header)
}
_FAST_VARIABLE = frozenset(
    {
        "sll.addr",
        "ip.options",
        "tcp.options",
        "tcp.opt.timestamp",
        "payload",
        "dns.id",
    }
)
_DNS_PORTS = np.array(sorted(DNS_PORTS))
# Maskable fields that lie inside the TCP/UDP payload (so in L7 images too).
_PAYLOAD_FIELDS = frozenset(f.name for f in FIELDS if f.layer == "payload")
_ETH_VLAN = np.array(ETHERTYPE_VLAN)


def resolve_mask(mask):
    """Turn a mask specification into the set of field names to blank.

    Parameters
    ----------
    mask : {"safe", "none"}, str, iterable of str or None
        ``"safe"`` (all groups of :data:`MASK_GROUPS`), ``"none"`` or ``None``
        (nothing), a group name, a field name, or an iterable mixing group
        and field names.

    Returns
    -------
    fields : frozenset of str

    Examples
    --------
    >>> sorted(resolve_mask(["ports", "ip.ttl"]))
    ['ip.ttl', 'tcp.dport', 'tcp.sport', 'udp.dport', 'udp.sport']
    """
    if mask is None:
        return frozenset()
    if isinstance(mask, str):
        if mask == "none":
            return frozenset()
        if mask == "safe":
            return SAFE_FIELDS
        mask = [mask]
    if not isinstance(mask, Iterable):
        raise TypeError(
            f"mask must be 'safe', 'none', None, or an iterable of field or group "
            f"names; got {type(mask).__name__}"
        )
    fields = set()
    for item in mask:
        if not isinstance(item, str):
            raise TypeError(f"mask entries must be strings, got {item!r}")
        if item in MASK_GROUPS:
            fields.update(MASK_GROUPS[item])
        elif item == "safe":
            fields.update(SAFE_FIELDS)
        elif item in FIELD_NAMES:
            fields.add(item)
        elif item != "none":
            raise ValueError(
                f"unknown mask entry {item!r}; use a group "
                f"({', '.join(sorted(MASK_GROUPS))}, safe, none) or a field name "
                f"({', '.join(sorted(FIELD_NAMES))})"
            )
    return frozenset(fields)


# --------------------------------------------------------------------------
# Frames of many sessions, packed into flat numpy arrays.


class FrameBatch(NamedTuple):
    """The frames of ``n_sessions`` sessions, concatenated.

    ``buf`` holds every frame's captured bytes; frame ``i`` is
    ``buf[start[i] : start[i] + length[i]]`` and belongs to session
    ``session[i]`` (non-decreasing, frames in capture order).  ``linktype``
    is per session.
    """

    buf: np.ndarray
    start: np.ndarray
    length: np.ndarray
    session: np.ndarray
    ts_ns: np.ndarray
    orig_len: np.ndarray
    linktype: np.ndarray
    n_sessions: int


def batch_from_frames(
    frames, ts_ns, orig_len, linktype, *, layout=None, layers="all", n_bytes=None,
    packet_bytes=112
):  # fmt: skip
    """Pack per-session sequences of frames (bytes) into a :class:`FrameBatch`.

    With ``layout`` and ``n_bytes`` given, only the frames that can reach an
    image of that layout are packed (a prefix of each session's frames).
    ``ts_ns`` or ``orig_len`` may be ``None`` (zeros) when no image shows them.
    """
    n_sessions = len(frames)
    counts, length = frame_lengths(frames)
    n_frames = len(length)
    # Only "ustc" images of all layers show record headers: skip the columns
    # otherwise (pass None), and the timestamps when they are masked anyway.
    ts = orig = np.zeros(n_frames, dtype=np.int64)
    if ts_ns is not None:
        ts = np.fromiter(chain.from_iterable(ts_ns), dtype=np.int64, count=n_frames)
    if orig_len is not None:
        orig = np.fromiter(
            chain.from_iterable(orig_len), dtype=np.int64, count=n_frames
        )
    session = np.repeat(np.arange(n_sessions, dtype=np.int64), counts)
    linktype = np.asarray(linktype, dtype=np.int64).reshape(n_sessions)
    keep = None
    if layout is not None and layers == "all":
        if layout == "packets":
            keep = _rank_in_session(session) < n_bytes // packet_bytes
        else:
            per_frame = length + (PCAP_RECORD_LEN if layout == "ustc" else 0)
            before = _exclusive_cumsum_in_session(per_frame, session)
            keep = before < n_bytes - (PCAP_GLOBAL_LEN if layout == "ustc" else 0)
        if keep.all():
            keep = None
    if keep is not None:
        idx = np.flatnonzero(keep)
        length, ts, orig, session = length[idx], ts[idx], orig[idx], session[idx]
    # A bytearray: the batch owns a writable copy, so masking needs no other.
    buf = np.frombuffer(join_frames(frames, length.sum(), keep), dtype=np.uint8)
    start = np.cumsum(length) - length
    return FrameBatch(buf, start, length, session, ts, orig, linktype, n_sessions)


def _rank_in_session(session):
    """0-based index of each frame within its session (sessions contiguous)."""
    n = len(session)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    sizes = np.diff(np.r_[first, n])
    return np.arange(n, dtype=np.int64) - np.repeat(first, sizes)


def _exclusive_cumsum_in_session(values, session):
    """Sum of ``values`` over the earlier frames of the same session."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    total = np.cumsum(values) - values
    first = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    sizes = np.diff(np.r_[first, len(values)])
    return total - np.repeat(total[first], sizes)


# --------------------------------------------------------------------------
# Dissection of many frames at once.


class BatchDissection(NamedTuple):
    """Layer offsets of the selected frames, and the byte ranges to blank.

    Offsets are per selected frame (``-1`` when absent).  ``groups`` is a list
    of ``(frame, start, stop, keep)`` arrays: frame index into the batch, byte
    range in the frame, and the AND value applied to it (0 blanks the bytes).
    Most groups hold one field (or adjacent fields) of many frames, so their
    ranges share one length.
    """

    l3: np.ndarray
    payload: np.ndarray
    payload_end: np.ndarray
    groups: list

    @property
    def ranges(self):
        """All groups concatenated: ``(frame, start, stop, keep)``."""
        if not self.groups:
            return tuple(np.zeros(0, np.int64) for _ in range(4))
        return tuple(np.concatenate(part) for part in zip(*self.groups))


def _u8(buf, idx):
    return buf[idx].astype(np.int64)


def _u16(buf, idx):
    return (buf[idx].astype(np.int64) << 8) | buf[idx + 1]


def dissect_batch(batch, frames, mask_fields=frozenset(), *, vectorized=True):
    """Dissect the frames ``frames`` (indices into ``batch``) and find masks.

    Ethernet (up to two VLAN tags), Linux SLL/SLL2 and raw IP frames carrying
    complete IPv4 (unfragmented) or IPv6 (no extension header) TCP/UDP
    headers are dissected with numpy, all at once.  Every other frame goes
    through :func:`~sklearn_flowspectrum._layers.dissect`, as do all frames
    when a masked field is one the vectorised path does not place, or
    ``vectorized=False``.  The tests check that both paths agree.
    """
    frames = np.asarray(frames, dtype=np.int64)
    m = len(frames)
    buf = batch.buf
    s = batch.start[frames]
    n = batch.length[frames]
    lt = batch.linktype[batch.session[frames]]
    l3 = np.full(m, -1, dtype=np.int64)
    ver = np.zeros(m, dtype=np.int64)
    ok = np.zeros(m, dtype=bool)
    unsupported = set(mask_fields) - set(_FAST_FIXED) - _FAST_VARIABLE
    if m and vectorized and not unsupported:
        # Link layer -> ethertype and IP header offset.
        et = np.full(m, -1, dtype=np.int64)
        eth = (lt == LINKTYPE_ETHERNET) & (n >= 14)
        off = np.where(eth, 12, 0)
        et[eth] = _u16(buf, s[eth] + 12)
        for _ in range(2):  # 802.1Q / QinQ tags
            tag = eth & np.isin(et, _ETH_VLAN) & (n >= off + 6)
            off[tag] += 4
            et[tag] = _u16(buf, s[tag] + off[tag])
        eth &= ~np.isin(et, _ETH_VLAN)
        l2 = np.where(eth, off + 2, -1)
        sll = (lt == LINKTYPE_LINUX_SLL) & (n >= 16)
        et[sll] = _u16(buf, s[sll] + 14)
        l2[sll] = 16
        sll2 = (lt == LINKTYPE_LINUX_SLL2) & (n >= 20)
        et[sll2] = _u16(buf, s[sll2])
        l2[sll2] = 20
        ver[et == ETHERTYPE_IPV4] = 4
        ver[et == ETHERTYPE_IPV6] = 6
        raw = np.isin(lt, list(RAW_LINKTYPES)) & (n >= 1)
        l2[raw] = 0
        ver[raw] = _u8(buf, s[raw]) >> 4
        ver[(lt == LINKTYPE_IPV4) & (n >= 1)] = 4
        ver[(lt == LINKTYPE_IPV6) & (n >= 1)] = 6
        l2[np.isin(lt, [LINKTYPE_IPV4, LINKTYPE_IPV6]) & (n >= 1)] = 0
        cand = (l2 >= 0) & (n > l2) & ((ver == 4) | (ver == 6))
        cand[cand] &= (_u8(buf, s[cand] + l2[cand]) >> 4) == ver[cand]
        # IPv4: complete header, unfragmented, consistent total length.
        v4 = cand & (ver == 4) & (n >= l2 + 20)
        i4 = np.flatnonzero(v4)
        b4 = s[i4] + l2[i4]
        ihl = (_u8(buf, b4) & 0x0F) * 4
        total = _u16(buf, b4 + 2)
        frag = _u16(buf, b4 + 6)
        proto4 = _u8(buf, b4 + 9)
        good4 = (
            (ihl >= 20)
            & (n[i4] >= l2[i4] + ihl)
            & ((total == 0) | (total >= ihl))
            & ((frag & 0x3FFF) == 0)
            & ((proto4 == IPPROTO_TCP) | (proto4 == IPPROTO_UDP))
        )
        # IPv6: complete header, TCP/UDP right after it.
        v6 = cand & (ver == 6) & (n >= l2 + 40)
        i6 = np.flatnonzero(v6)
        b6 = s[i6] + l2[i6]
        nxt = _u8(buf, b6 + 6)
        plen = _u16(buf, b6 + 4)
        good6 = (nxt == IPPROTO_TCP) | (nxt == IPPROTO_UDP)
        proto = np.full(m, -1, dtype=np.int64)
        l4 = np.full(m, -1, dtype=np.int64)
        end = np.zeros(m, dtype=np.int64)
        i4, ihl, total, proto4 = i4[good4], ihl[good4], total[good4], proto4[good4]
        l4[i4] = l2[i4] + ihl
        proto[i4] = proto4
        end[i4] = np.where(total == 0, n[i4], np.minimum(l2[i4] + total, n[i4]))
        i6, plen, nxt = i6[good6], plen[good6], nxt[good6]
        l4[i6] = l2[i6] + 40
        proto[i6] = nxt
        end[i6] = np.where(plen == 0, n[i6], np.minimum(l2[i6] + 40 + plen, n[i6]))
        # Transport: complete TCP/UDP header inside the IP length.
        payload = np.full(m, -1, dtype=np.int64)
        tcp = (proto == IPPROTO_TCP) & (n >= l4 + 20)
        it = np.flatnonzero(tcp)
        doff = (_u8(buf, s[it] + l4[it] + 12) >> 4) * 4
        good = (doff >= 20) & (l4[it] + doff <= n[it]) & (l4[it] + doff <= end[it])
        payload[it[good]] = l4[it[good]] + doff[good]
        udp = (proto == IPPROTO_UDP) & (n >= l4 + 8) & (l4 + 8 <= end)
        payload[udp] = l4[udp] + 8
        ok = payload >= 0
        l3[ok] = l2[ok]
        payload_end = np.where(ok, end, -1)
    else:
        payload = np.full(m, -1, dtype=np.int64)
        payload_end = np.full(m, -1, dtype=np.int64)

    # Byte ranges to blank, as (local frame index, start, stop, AND value).
    range_frames, range_starts, range_stops, range_keeps = [], [], [], []

    def emit(sel_idx, start, stop, keep=0):
        range_frames.append(sel_idx)
        range_starts.append(start)
        range_stops.append(stop)
        range_keeps.append(np.full(len(sel_idx), keep, dtype=np.int64))

    if mask_fields and ok.any():
        fi = np.flatnonzero(ok)
        fl3, fl4, fver, fproto = l3[fi], l4[fi], ver[fi], proto[fi]
        anchors = {
            "eth": (lt[fi] == LINKTYPE_ETHERNET, np.zeros(len(fi), dtype=np.int64)),
            "ip4": (fver == 4, fl3),
            "ip6": (fver == 6, fl3),
            "tcp": (fproto == IPPROTO_TCP, fl4),
            "udp": (fproto == IPPROTO_UDP, fl4),
        }
        # Adjacent fixed fields (e.g. ip.checksum, ip.src, ip.dst) become one
        # range: fewer, longer ranges to blank.
        fixed = sorted(
            _FAST_FIXED[name] for name in mask_fields - {"ipv6.vtcfl"}
            if name in _FAST_FIXED
        )  # fmt: skip
        merged = []
        for anchor, a, z in fixed:
            if merged and merged[-1][0] == anchor and merged[-1][2] >= a:
                merged[-1][2] = max(merged[-1][2], z)
            else:
                merged.append([anchor, a, z])
        for anchor, a, z in merged:
            sel, base = anchors[anchor]
            emit(fi[sel], base[sel] + a, base[sel] + z)
        for name in sorted(mask_fields):
            if name == "ipv6.vtcfl":
                # Keep the version and traffic class, zero the flow label.
                sel = fver == 6
                emit(fi[sel], fl3[sel] + 1, fl3[sel] + 2, 0xF0)
                emit(fi[sel], fl3[sel] + 2, fl3[sel] + 4)
            elif name in _FAST_FIXED:
                continue
            elif name == "sll.addr":
                for kind, a in ((LINKTYPE_LINUX_SLL, 6), (LINKTYPE_LINUX_SLL2, 12)):
                    sel = fi[lt[fi] == kind]
                    emit(sel, np.full(len(sel), a), np.full(len(sel), a + 8))
            elif name == "ip.options":
                ihl = (_u8(buf, s[fi] + fl3) & 0x0F) * 4
                sel = (fver == 4) & (ihl > 20)
                emit(fi[sel], fl3[sel] + 20, fl3[sel] + ihl[sel])
            elif name in ("tcp.options", "tcp.opt.timestamp"):
                ft = fi[fproto == IPPROTO_TCP]
                doff = (_u8(buf, s[ft] + l4[ft] + 12) >> 4) * 4
                ft, doff = ft[doff > 20], doff[doff > 20]
                if name == "tcp.options":
                    emit(ft, l4[ft] + 20, l4[ft] + doff)
                else:
                    f_, a_ = _walk_tcp_timestamps(
                        buf, s, ft, l4[ft] + 20, l4[ft] + doff
                    )
                    emit(f_, a_, np.minimum(a_ + 8, n[f_]))
            elif name == "payload":
                sel = fi[payload_end[fi] > payload[fi]]
                emit(sel, payload[sel], payload_end[sel])
            elif name == "dns.id":
                fu = fi[(fproto == IPPROTO_UDP) & (payload_end[fi] > payload[fi])]
                named = np.isin(_u16(buf, s[fu] + l4[fu]), _DNS_PORTS) | np.isin(
                    _u16(buf, s[fu] + l4[fu] + 2), _DNS_PORTS
                )
                fu = fu[named]
                emit(fu, payload[fu], np.minimum(payload[fu] + 2, payload_end[fu]))

    # The reference dissector for the rest.
    slow = np.flatnonzero(~ok)
    if len(slow):
        pieces_of_slow = []  # (local frame index, start, stop, AND value)
        for i in slow.tolist():
            st = int(s[i])
            d = dissect(buf[st : st + int(n[i])].tobytes(), int(lt[i]))
            l3[i] = d.l3
            payload[i] = d.payload
            payload_end[i] = d.payload_end
            for name, a, z in d.fields:
                if name not in mask_fields:
                    continue
                if name == "ipv6.vtcfl":
                    pieces = ((a + 1, min(a + 2, z), 0xF0), (a + 2, z, 0))
                else:
                    pieces = ((a, z, 0),)
                for start, stop, keep in pieces:
                    if start < stop:
                        pieces_of_slow.append((i, start, stop, keep))
        columns = np.array(pieces_of_slow, dtype=np.int64).reshape(-1, 4).T
        for ranges, column in zip(
            (range_frames, range_starts, range_stops, range_keeps), columns
        ):
            ranges.append(column)
    # Local frame indices -> batch frame indices.
    groups = [
        (frames[f], a.astype(np.int64), z.astype(np.int64), k)
        for f, a, z, k in zip(range_frames, range_starts, range_stops, range_keeps)
        if len(f)
    ]
    return BatchDissection(l3, payload, payload_end, groups)


def _walk_tcp_timestamps(buf, fstart, frames, pos, stop):
    """Frame and offset of every TCP timestamp option value (kind 8, length 10).

    ``frames`` index ``fstart``; ``pos``/``stop`` bound each option list.  All
    lists are walked at once, one option per step, as the reference dissector
    does (kind 0 ends a list, kind 1 is a one-byte no-op).
    """
    found_f, found_a = [], []
    pos = pos.copy()
    base = fstart[frames]
    active = np.flatnonzero(pos < stop)
    while len(active):
        p = pos[active]
        kind = _u8(buf, base[active] + p)
        single = kind == 1
        pos[active[single]] += 1
        multi = (kind > 1) & (p + 1 < stop[active])
        am = active[multi]
        length = _u8(buf, base[am] + pos[am] + 1)
        valid = length >= 2
        am, length, kind_m = am[valid], length[valid], kind[multi][valid]
        ts = (kind_m == 8) & (length == 10)
        found_f.append(frames[am[ts]])
        found_a.append(pos[am[ts]] + 2)
        pos[am] += length
        cont = np.concatenate([active[single], am])
        active = cont[pos[cont] < stop[cont]]
    if not found_f:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(found_f), np.concatenate(found_a)


# --------------------------------------------------------------------------
# Placement: where each frame's bytes go in its session's image.


class Placement(NamedTuple):
    """Per visible frame: the frame bytes ``[c0, c1)`` go to image offset ``dst``.

    ``frames`` indexes the batch; ``record`` is the image offset of the frame's
    pcap record header (``-1`` without one); ``global_header`` says whether
    images start with the 24-byte pcap global header.
    """

    frames: np.ndarray
    c0: np.ndarray
    c1: np.ndarray
    dst: np.ndarray
    record: np.ndarray
    global_header: bool
    dissection: BatchDissection | None


def place(batch, *, layout, layers, n_bytes, packet_bytes=112, mask_fields=()):
    """Decide where every frame of ``batch`` lands, dissecting what is needed."""
    mask_fields = frozenset(mask_fields)
    n_all = len(batch.length)
    frame_mask = mask_fields - set(_RECORD_OFFSETS) - set(_GLOBAL_OFFSETS)
    if layers == "l7":  # only fields inside the payload reach its image
        frame_mask &= _PAYLOAD_FIELDS
    rank = _rank_in_session(batch.session)
    if layers == "all" and layout in ("ustc", "frames"):
        if layout == "ustc":
            before = _exclusive_cumsum_in_session(
                batch.length + PCAP_RECORD_LEN, batch.session
            )
            dst_all = PCAP_GLOBAL_LEN + before + PCAP_RECORD_LEN
            rec_all = dst_all - PCAP_RECORD_LEN
            frames = np.flatnonzero(rec_all < n_bytes)
        else:
            dst_all = _exclusive_cumsum_in_session(batch.length, batch.session)
            rec_all = np.full(n_all, -1, dtype=np.int64)
            frames = np.flatnonzero(dst_all < n_bytes)
        dis = dissect_batch(batch, frames, frame_mask) if frame_mask else None
        c0 = np.zeros(len(frames), dtype=np.int64)
        c1 = batch.length[frames]
        dst, rec = dst_all[frames], rec_all[frames]
    elif layers == "all":  # packets
        frames = np.flatnonzero(rank < n_bytes // packet_bytes)
        dis = dissect_batch(batch, frames, frame_mask)
        c0 = np.maximum(dis.l3, 0)
        c1 = np.minimum(batch.length[frames], c0 + packet_bytes)
        dst = rank[frames] * packet_bytes
        rec = np.full(len(frames), -1, dtype=np.int64)
    else:  # l7: every kept frame may hold payload
        frames = np.arange(n_all, dtype=np.int64)
        dis = dissect_batch(batch, frames, frame_mask)
        has = dis.payload_end > dis.payload
        plen = np.where(has, dis.payload_end - dis.payload, 0)
        if layout == "packets":
            slot = _exclusive_cumsum_in_session(has.astype(np.int64), batch.session)
            visible = has & (slot < n_bytes // packet_bytes)
            dst = slot * packet_bytes
            c1 = np.minimum(dis.payload_end, dis.payload + packet_bytes)
        else:
            dst = _exclusive_cumsum_in_session(plen, batch.session)
            visible = has & (dst < n_bytes)
            c1 = dis.payload_end
        frames = frames[visible]
        c0, c1, dst = dis.payload[visible], c1[visible], dst[visible]
        rec = np.full(len(frames), -1, dtype=np.int64)
    return Placement(
        frames, c0, c1, dst, rec, layout == "ustc" and layers == "all", dis
    )


def _zero_ranges(buf, base, a, z, keep=None):
    """``buf[base+a : base+z] &= keep`` for every range (``keep=None``: zero)."""
    length = np.maximum(z - a, 0)
    start = base + a
    if keep is not None and keep.any():
        # Only the one-byte flow-label nibbles keep bits.
        part = keep != 0
        buf[start[part]] &= keep[part].astype(np.uint8)
        start, length = start[~part], length[~part]
    zero_ranges(buf, start, length)


def _blank(buf, batch_start, dissection):
    """Blank the masked fields found by ``dissection`` in ``buf``."""
    for f, a, z, keep in dissection.groups:
        _zero_ranges(buf, batch_start[f], a, z, keep)


def _record_headers(batch, frames, mask_fields):
    """The big-endian pcap record headers of ``frames``, masked, as (m, 16) uint8."""
    ts = batch.ts_ns[frames]
    rec = np.empty((len(frames), 4), dtype=">u4")
    rec[:, 0] = ts // 1_000_000_000
    rec[:, 1] = (ts % 1_000_000_000) // 1000
    rec[:, 2] = batch.length[frames]
    rec[:, 3] = batch.orig_len[frames]
    rec = rec.view(np.uint8).reshape(len(frames), PCAP_RECORD_LEN)
    for name in mask_fields:
        if name in _RECORD_OFFSETS:
            a, z = _RECORD_OFFSETS[name]
            rec[:, a:z] = 0
    return rec


def global_headers(linktype, mask_fields=()):
    """The 24-byte big-endian pcap global headers SplitCap writes, (n, 24) uint8."""
    linktype = np.asarray(linktype, dtype=np.int64)
    hdr = np.zeros((len(linktype), 6), dtype=">u4")
    hdr[:, 0] = PCAP_MAGIC_US
    hdr[:, 1] = 0x00020004  # version 2.4
    hdr[:, 4] = 65535  # snaplen
    hdr[:, 5] = linktype
    hdr = hdr.view(np.uint8).reshape(len(linktype), PCAP_GLOBAL_LEN)
    for name in mask_fields:
        if name in _GLOBAL_OFFSETS:
            a, z = _GLOBAL_OFFSETS[name]
            hdr[:, a:z] = 0
    return hdr


def build_images(
    batch,
    *,
    layout="ustc",
    layers="all",
    n_bytes=784,
    packet_bytes=112,
    mask=(),
    consume=False,
):
    """Session images of every session in ``batch`` as ``(n_sessions, n_bytes)`` uint8.

    Parameters
    ----------
    batch : FrameBatch
    layout : {"ustc", "frames", "packets"}
    layers : {"all", "l7"}
    n_bytes : int
    packet_bytes : int
        Slot size of the ``"packets"`` layout.
    mask : iterable of str
        Field names to blank (see :func:`resolve_mask`).
    consume : bool, default=False
        Blank the fields in ``batch.buf`` itself when it is writable (saves a
        copy; the batch is of no further use).
    """
    mask_fields = frozenset(mask)
    pl = place(
        batch,
        layout=layout,
        layers=layers,
        n_bytes=n_bytes,
        packet_bytes=packet_bytes,
        mask_fields=mask_fields,
    )
    out = np.zeros(batch.n_sessions * n_bytes, dtype=np.uint8)
    src = batch.buf
    if pl.dissection is not None and pl.dissection.groups:
        if not (consume and src.flags.writeable):
            src = src.copy()
        _blank(src, batch.start, pl.dissection)
    row = batch.session[pl.frames] * n_bytes
    length = np.minimum(pl.c1, pl.c0 + n_bytes - pl.dst) - pl.c0
    some = length > 0
    copy_ranges(
        out,
        (row + pl.dst)[some],
        src,
        (batch.start[pl.frames] + pl.c0)[some],
        length[some],
    )
    if pl.global_header:
        ghdr = global_headers(batch.linktype, mask_fields)
        k = min(PCAP_GLOBAL_LEN, n_bytes)
        out.reshape(batch.n_sessions, n_bytes)[:, :k] = ghdr[:, :k]
        rec = np.ascontiguousarray(_record_headers(batch, pl.frames, mask_fields))
        # 16 bytes per record header; the last one may be cut at the image end.
        length = np.minimum(PCAP_RECORD_LEN, n_bytes - pl.record)
        some = length > 0
        copy_ranges(
            out,
            (row + pl.record)[some],
            rec.ravel(),
            (np.arange(len(rec), dtype=np.int64) * PCAP_RECORD_LEN)[some],
            length[some],
        )
    return out.reshape(batch.n_sessions, n_bytes)


# --------------------------------------------------------------------------
# USTC-TK2016 AllLayers rows: recover the packets from the record headers.

# Largest record a row may announce: libpcap's largest snaplen (a row holds
# SplitCap's output, which never raises it); anything larger is not a record.
_MAX_RECORD = MAX_SNAPLEN
# The pcap magics as a row's first four bytes: (byte order, ns per time unit).
# SplitCap writes big-endian microsecond headers.
_ROW_MAGICS = {
    magic.to_bytes(4, order): (">" if order == "big" else "<", scale)
    for magic, scale in ((PCAP_MAGIC_US, 1000), (PCAP_MAGIC_NS, 1))
    for order in ("big", "little")
}


def pcap_row_mask(rows):
    """Which rows start with a pcap global header, as USTC-TK2016 AllLayers rows do.

    Parameters
    ----------
    rows : array-like of shape (n_rows, width)
        Byte values (``uint8``), or bytes scaled to [0, 1] (the vectorizer's
        ``float32`` output); only the first four columns are read.

    Returns
    -------
    mask : ndarray of shape (n_rows,), dtype bool
        True where the row is wide enough for a pcap global header and starts
        with one of its magic numbers (either byte order, micro- or
        nanoseconds).  Published L7 rows (payloads) and images of the
        ``"frames"`` and ``"packets"`` layouts start otherwise.
    """
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape[1] < PCAP_GLOBAL_LEN:
        return np.zeros(len(rows), dtype=bool)
    head = rows[:, :4]
    if head.dtype.kind == "f":
        head = np.rint(np.clip(head, 0.0, 1.0) * 255.0)
    elif head.dtype != np.uint8:
        head = np.where((head >= 0) & (head <= 255), head, 0)
    words = np.ascontiguousarray(head, dtype=np.uint8).view(">u4")[:, 0]
    magics = [int.from_bytes(m, "big") for m in _ROW_MAGICS]
    return np.isin(words, magics)


def mostly_pcap_rows(rows):
    """Whether at least half of ``rows`` start with a pcap global header.

    The rule that tells AllLayers rows (pcap file images, some of which may
    be damaged or blank) from rows of another kind, e.g. L7 payloads.
    """
    mask = pcap_row_mask(rows)
    return bool(mask.size) and bool(mask.mean() >= 0.5)


class UstcRows(NamedTuple):
    """Packets recovered from USTC-TK2016 AllLayers rows.

    ``batch`` views the rows (session ``i`` is row ``i``; a frame cut at the
    row end has its truncated length).  ``records`` are the row offsets of all
    record headers seen, ``(row, offset)``, including one cut by the row end.
    ``status`` per row: ``"ok"``, ``"not_pcap"`` (no pcap magic number, e.g.
    an all-zero row, left untouched) or ``"malformed"`` (a record header with
    an impossible length; the packets before it are used).
    """

    batch: FrameBatch
    record_row: np.ndarray
    record_offset: np.ndarray
    status: np.ndarray


def parse_ustc_rows(rows):
    """Recover the packet boundaries of USTC-TK2016 AllLayers rows.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, width), dtype uint8
        Rows that start with a pcap global header (as SplitCap writes it,
        big-endian; little-endian and nanosecond files are understood too).

    Returns
    -------
    UstcRows
    """
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    n_rows, width = rows.shape
    flat = rows.reshape(-1).view()
    flat.flags.writeable = False  # the caller's rows: never blank them in place
    status = np.full(n_rows, "not_pcap", dtype=object)
    linktype = np.zeros(n_rows, dtype=np.int64)
    big = np.zeros(n_rows, dtype=bool)
    tick = np.zeros(n_rows, dtype=np.int64)
    if width >= PCAP_GLOBAL_LEN:
        magic = rows[:, :4].tobytes()
        for r in range(n_rows):
            fmt = _ROW_MAGICS.get(magic[4 * r : 4 * r + 4])
            if fmt is not None:
                status[r] = "ok"
                big[r] = fmt[0] == ">"
                tick[r] = fmt[1]
        lt = rows[:, 20:24].astype(np.int64)
        linktype = np.where(
            status != "ok",
            0,
            np.where(
                big,
                (lt[:, 0] << 24) | (lt[:, 1] << 16) | (lt[:, 2] << 8) | lt[:, 3],
                (lt[:, 3] << 24) | (lt[:, 2] << 16) | (lt[:, 1] << 8) | lt[:, 0],
            ),
        )
    # Where the zero padding after the last packet starts, per row.
    nonzero = rows != 0
    data_end = np.where(
        nonzero.any(axis=1), width - np.argmax(nonzero[:, ::-1], axis=1), 0
    )
    starts, lengths, sessions, times, origs = [], [], [], [], []
    rec_row, rec_off = [], []
    # Walk all rows at once, one record header per step.
    active = np.flatnonzero(status == "ok")
    pos = np.full(len(active), PCAP_GLOBAL_LEN, dtype=np.int64)
    keep = pos < data_end[active]
    active, pos = active[keep], pos[keep]
    while len(active):
        partial = pos + PCAP_RECORD_LEN > width
        rec_row.append(active[partial])
        rec_off.append(pos[partial])
        active, pos = active[~partial], pos[~partial]
        base = active * width + pos
        fields = flat[base[:, None] + np.arange(PCAP_RECORD_LEN)].astype(np.int64)
        words = fields.reshape(-1, 4, 4)
        be = (words[..., 0] << 24) | (words[..., 1] << 16)
        be |= (words[..., 2] << 8) | words[..., 3]
        le = (words[..., 3] << 24) | (words[..., 2] << 16)
        le |= (words[..., 1] << 8) | words[..., 0]
        sec, frac, incl, orig = np.where(big[active, None], be, le).T
        bad = (incl == 0) | (incl > _MAX_RECORD)
        status[active[bad]] = "malformed"
        good = ~bad
        active, pos = active[good], pos[good]
        sec, frac, incl, orig = sec[good], frac[good], incl[good], orig[good]
        rec_row.append(active)
        rec_off.append(pos)
        cap = np.minimum(incl, width - pos - PCAP_RECORD_LEN)
        has = cap > 0
        starts.append((active * width + pos + PCAP_RECORD_LEN)[has])
        lengths.append(cap[has])
        sessions.append(active[has])
        times.append((sec * 1_000_000_000 + frac * tick[active])[has])
        origs.append(orig[has])
        pos = pos + PCAP_RECORD_LEN + incl
        keep = pos < data_end[active]
        active, pos = active[keep], pos[keep]

    def cat(parts):
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    start = cat(starts)
    order = np.argsort(start, kind="stable")
    batch = FrameBatch(
        flat,
        start[order],
        cat(lengths)[order],
        cat(sessions)[order],
        cat(times)[order],
        cat(origs)[order],
        linktype,
        n_rows,
    )
    rec_row, rec_off = cat(rec_row), cat(rec_off)
    order = np.lexsort((rec_off, rec_row))
    return UstcRows(batch, rec_row[order], rec_off[order], status)


def mask_ustc_rows(rows, mask=()):
    """Blank the fields ``mask`` in every packet of USTC-TK2016 AllLayers rows.

    Rows that are not pcap images (status ``"not_pcap"``) are returned
    unchanged; a ``"malformed"`` row is masked up to its first impossible
    record header.

    Returns
    -------
    masked : ndarray of the shape of ``rows``, uint8
    status : ndarray of str, per row
    """
    mask_fields = frozenset(mask)
    parsed = parse_ustc_rows(rows)
    out = parsed.batch.buf.copy()
    width = rows.shape[1] if rows.ndim == 2 else 0
    frame_mask = mask_fields - set(_RECORD_OFFSETS) - set(_GLOBAL_OFFSETS)
    batch = parsed.batch
    if frame_mask and len(batch.start):
        dis = dissect_batch(batch, np.arange(len(batch.start)), frame_mask)
        _blank(out, batch.start, dis)
    row_base = parsed.record_row * width + parsed.record_offset
    row_end = (parsed.record_row + 1) * width
    for name in mask_fields:
        if name in _RECORD_OFFSETS:
            a, z = _RECORD_OFFSETS[name]
            start = row_base + a
            stop = np.minimum(row_base + z, row_end)
            _zero_ranges(out, np.zeros_like(start), start, stop)
        elif name in _GLOBAL_OFFSETS:
            a, z = _GLOBAL_OFFSETS[name]
            pcap_rows = np.flatnonzero(parsed.status != "not_pcap")
            out.reshape(-1, width)[pcap_rows, a:z] = 0
    return out.reshape(rows.shape), parsed.status


# --------------------------------------------------------------------------
# Byte maps.

def _frame_labels(frame, linktype):
    """Field name of every byte of one frame."""
    d = dissect(frame, linktype)
    labels = [UNDISSECTED] * len(frame)
    last = 0
    for name, a, z in d.fields:
        labels[a:z] = [name] * (z - a)
        last = max(last, z)
    if d.l3 >= 0:
        labels[last:] = [TRAILER] * (len(frame) - last)
    return labels


def batch_byte_map(batch, placement, n_bytes, global_fields=PCAP_GLOBAL_FIELDS):
    """Byte maps of every image of ``batch`` laid out by ``placement``."""
    maps = np.full((batch.n_sessions, n_bytes), PAD, dtype=object)
    if placement.global_header:
        for name, a, z in global_fields:
            maps[:, a : min(z, n_bytes)] = name
    for i, f in enumerate(placement.frames.tolist()):
        r = int(batch.session[f])
        st = int(batch.start[f])
        frame = batch.buf[st : st + int(batch.length[f])].tobytes()
        labels = _frame_labels(frame, int(batch.linktype[r]))
        dst, c0, c1 = int(placement.dst[i]), int(placement.c0[i]), int(placement.c1[i])
        c1 = min(c1, c0 + n_bytes - dst)
        if c1 > c0:
            maps[r, dst : dst + c1 - c0] = labels[c0:c1]
        rec = int(placement.record[i])
        if rec >= 0:
            for name, a, z in PCAP_RECORD_FIELDS:
                maps[r, rec + a : min(rec + z, n_bytes)] = name
    return maps


def session_byte_map(
    frames, linktype, *, layout="ustc", layers="all", n_bytes=784, packet_bytes=112
):
    """Name the field behind every byte of one session's image.

    Parameters
    ----------
    frames : sequence of bytes
        The session's captured frames (from the link layer), in order.
    linktype : int
        Their pcap LINKTYPE.
    layout : {"ustc", "frames", "packets"}, default="ustc"
    layers : {"all", "l7"}, default="all"
    n_bytes : int, default=784
    packet_bytes : int, default=112
        Slot size of the ``"packets"`` layout.

    Returns
    -------
    byte_map : ndarray of shape (n_bytes,), dtype object
        Field names (see the module docstring), ``"pad"`` for padding.

    Examples
    --------
    >>> import struct
    >>> ip = bytes.fromhex("4500001d0001000040110000c0a80001c0a80002")
    >>> frame = ip + struct.pack("!HHHH", 40000, 443, 9, 0) + b"x"
    >>> m = session_byte_map([frame], 101, n_bytes=72)
    >>> m[0], m[24], m[40], m[52], m[68], m[69], m[71]
    ('pcap.magic', 'pcap.ts_sec', 'ip.vhl', 'ip.src', 'payload', 'pad', 'pad')
    """
    batch = batch_from_frames(
        [list(frames)], [[0] * len(frames)], [list(map(len, frames))], [linktype]
    )
    pl = place(
        batch, layout=layout, layers=layers, n_bytes=n_bytes, packet_bytes=packet_bytes
    )
    return batch_byte_map(batch, pl, n_bytes)[0]


def rows_byte_map(rows):
    """Name the field behind every byte of USTC-TK2016 AllLayers rows.

    Rows that are not pcap images map to ``"other"`` throughout.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, width), dtype uint8

    Returns
    -------
    byte_map : ndarray of shape (n_rows, width), dtype object
    """
    rows = np.atleast_2d(np.asarray(rows, dtype=np.uint8))
    parsed = parse_ustc_rows(rows)
    batch = parsed.batch
    width = rows.shape[1]
    n_frames = len(batch.start)
    rec = np.full(n_frames, -1, dtype=np.int64)
    local = batch.start - batch.session * width
    pl = Placement(
        np.arange(n_frames),
        np.zeros(n_frames, dtype=np.int64),
        batch.length,
        local,
        rec,
        True,
        None,
    )
    maps = batch_byte_map(batch, pl, width)
    maps[parsed.status == "not_pcap"] = UNDISSECTED
    for r, off in zip(parsed.record_row.tolist(), parsed.record_offset.tolist()):
        for name, a, z in PCAP_RECORD_FIELDS:
            maps[r, off + a : min(off + z, width)] = name
    return maps


def packet_rows_byte_map(rows, packet_bytes=112):
    """Name the field behind every byte of ``"packets"``-layout images.

    Each slot of ``packet_bytes`` is read from its IP header on; all-zero
    slots and the remainder map to ``"pad"``.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, width), dtype uint8
    packet_bytes : int, default=112

    Returns
    -------
    byte_map : ndarray of shape (n_rows, width), dtype object
    """
    rows = np.atleast_2d(np.asarray(rows, dtype=np.uint8))
    n, width = rows.shape
    names = np.full((n, width), PAD, dtype=object)
    for r in range(n):
        row = rows[r]
        for k in range(width // packet_bytes):
            base = k * packet_bytes
            chunk = row[base : base + packet_bytes]
            if not chunk.any():
                continue
            for name, a, z in dissect(chunk.tobytes(), LINKTYPE_RAW).fields:
                names[r, base + a : base + z] = name
    return names


def packet_slot_map(n_bytes=784, packet_bytes=112):
    """Packet index and offset of every position of the ``"packets"`` layout.

    The slot structure is the same for all sessions (the fields inside a slot
    follow the packet's IP header: with IPv4 and no options, offsets 0..19
    are the IP header and 20..39 the TCP header, or 20..27 the UDP header).

    Returns
    -------
    packet : ndarray of shape (n_bytes,), int
        Index of the packet a position belongs to, ``-1`` in the remainder.
    offset : ndarray of shape (n_bytes,), int
        Offset from the packet's IP header, ``-1`` in the remainder.

    Examples
    --------
    >>> packet, offset = packet_slot_map(10, 4)
    >>> packet.tolist(), offset.tolist()
    ([0, 0, 0, 0, 1, 1, 1, 1, -1, -1], [0, 1, 2, 3, 0, 1, 2, 3, -1, -1])
    """
    pos = np.arange(n_bytes)
    n_slots = n_bytes // packet_bytes
    inside = pos < n_slots * packet_bytes
    packet = np.where(inside, pos // packet_bytes, -1)
    offset = np.where(inside, pos % packet_bytes, -1)
    return packet, offset


# The layer of each field name, and of other names by their prefix: that of
# the first registry field with the prefix ("pcap.x": "pcap header"; built in
# reverse so that the first wins), or the prefix itself ("trailer", "pad").
_LAYER_OF = {f.name: f.layer for f in FIELDS}
_PREFIX_LAYER = {f.name.split(".", 1)[0]: f.layer for f in reversed(FIELDS)}


def byte_map_layers(byte_map):
    """Coarse layer of every position of a byte map, for plots and legends.

    ``"pcap header"``, ``"pcap record"``, ``"link"``, ``"ip"`` (v4 or v6),
    ``"tcp"``, ``"udp"``, ``"payload"``, ``"trailer"``, ``"other"``, ``"pad"``.

    Examples
    --------
    >>> byte_map_layers(["pcap.magic", "pcap.ts_sec", "eth.src", "ipv6.src", "pad"])
    array(['pcap header', 'pcap record', 'link', 'ip', 'pad'], dtype=object)
    """
    byte_map = np.asarray(byte_map, dtype=object)

    def layer(name):
        if name in _LAYER_OF:
            return _LAYER_OF[name]
        prefix = name.split(".", 1)[0]
        return _PREFIX_LAYER.get(prefix, prefix)

    uniq, inverse = np.unique(byte_map.astype(str), return_inverse=True)
    return np.array([layer(u) for u in uniq], dtype=object)[inverse].reshape(
        byte_map.shape
    )
