"""Vectorised decoding of link, IP and transport headers for a batch of frames.

The numpy twin of the compiled ``decode_headers`` loop; packets it does not
fully understand go to the reference dissector, ``_layers.dissect``.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

from typing import NamedTuple

import numpy as np

from sklearn_flowspectrum._layers import SKIP_REASONS, dissect
from sklearn_flowspectrum._loops import decode_headers
from sklearn_flowspectrum._protocols import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_MPLS,
    ETHERTYPE_PPPOE_SESSION,
    ETHERTYPE_VLAN,
    IPPROTO_AH,
    IPPROTO_FRAGMENT,
    IPPROTO_IPIP,
    IPPROTO_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_EXT_8,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    RAW_LINKTYPES,
)
from sklearn_flowspectrum._records import strided

# ---------------------------------------------------------------------------
# Vectorised header decoding

_SKIP_CODE = {reason: i + 1 for i, reason in enumerate(SKIP_REASONS)}
_TRUNCATED = _SKIP_CODE["truncated"]
_MALFORMED = _SKIP_CODE["malformed"]
_FRAGMENT = _SKIP_CODE["fragment"]
_NOT_IP = _SKIP_CODE["not_ip"]
_NOT_TCP_UDP = _SKIP_CODE["not_tcp_udp"]
_UNDECIDED = -1
# Ethertypes and next headers that dissect() follows further than the fast path.
_ETH_DEFER = (ETHERTYPE_PPPOE_SESSION, *ETHERTYPE_MPLS)
_IPV6_DEFER = (*IPV6_EXT_8, IPPROTO_FRAGMENT, IPPROTO_AH, IPPROTO_IPIP, IPPROTO_IPV6)
_RAW = tuple(sorted(RAW_LINKTYPES))
_RAW_ARRAY = np.array(_RAW, dtype=np.int64)
_HEADER_CODES = (_TRUNCATED, _MALFORMED, _FRAGMENT, _NOT_IP, _NOT_TCP_UDP)


class _Decoded(NamedTuple):
    """Decoding of a batch: ``skip`` for every packet, the rest for the usable
    packets ``idx`` only (ascending).  Offsets are absolute positions in the
    batch data; IPv4 addresses are in ``*_hi`` (as a big-endian number) with
    ``*_lo == 0``, IPv6 addresses are split in two big-endian 64-bit halves."""

    skip: np.ndarray  # int8, every packet: 0 usable, else 1 + SKIP_REASONS index
    idx: np.ndarray  # int64, the usable packets
    ip_version: np.ndarray  # int8
    proto: np.ndarray  # int16
    src_hi: np.ndarray  # uint64
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    sport: np.ndarray  # int64
    dport: np.ndarray
    l4: np.ndarray  # int64
    payload: np.ndarray
    payload_end: np.ndarray
    n_dissected: int  # packets that went through dissect()


def _isin(x, values):
    """``np.isin`` for a few constants, without its per-call overhead."""
    out = x == values[0]
    for v in values[1:]:
        out |= x == v
    return out


def _link(A, U16, s, c, linktype):
    """Link layer of frames of one link type: ``(skip, l3, want)``.

    ``l3`` is the offset of the IP header, ``want`` the IP version the link
    layer announces (0: read it from the header, -1: not IP).  Undecided frames keep
    ``_UNDECIDED``; frames of a link type handled here only by dissect() are
    all undecided with ``l3`` unset.
    """
    n = len(s)
    skip = np.full(n, _UNDECIDED, dtype=np.int8)
    if linktype == LINKTYPE_ETHERNET or linktype == LINKTYPE_LINUX_SLL:
        eth = linktype == LINKTYPE_ETHERNET
        hdr = 14 if eth else 16
        skip[c < hdr] = _TRUNCATED
        pos = 12 if eth else 14  # position of the ethertype
        et = U16[s + pos]
        if eth:
            tag = _isin(et, ETHERTYPE_VLAN) & (skip == _UNDECIDED)
            if tag.any():
                # Mirrors dissect(): each tag needs 6 bytes to reach the next
                # ethertype; a third tag is left to dissect().
                pos = np.full(n, 12, dtype=np.int64)
                for _ in range(2):
                    cut = tag & (pos + 6 > c)
                    skip[cut] = _TRUNCATED
                    tag &= ~cut
                    pos[tag] += 4
                    et = np.where(tag, U16[s + pos], et)
                    tag = _isin(et, ETHERTYPE_VLAN) & tag
                    if not tag.any():
                        break
        v4 = et == ETHERTYPE_IPV4
        v6 = et == ETHERTYPE_IPV6
        want = np.where(v4, 4, np.where(v6, 6, -1)).astype(np.int8)
        other = ~(v4 | v6) & ~_isin(et, _ETH_DEFER)
        if eth:
            other &= ~_isin(et, ETHERTYPE_VLAN)
        skip[other & (skip == _UNDECIDED)] = _NOT_IP
        return skip, pos + 2, want
    if linktype in RAW_LINKTYPES or linktype in (LINKTYPE_IPV4, LINKTYPE_IPV6):
        want = {LINKTYPE_IPV4: 4, LINKTYPE_IPV6: 6}.get(linktype, 0)
        return skip, 0, np.full(n, want, dtype=np.int8)
    return skip, None, None


class _IPResult(NamedTuple):
    skip: np.ndarray  # int8, _UNDECIDED where dissect() must decide
    ver: np.ndarray
    proto: np.ndarray
    l4: np.ndarray  # offsets relative to the frame start
    payload: np.ndarray
    end: np.ndarray
    tunnel: np.ndarray  # bool: IP-in-IP, to decode again from l4


def _ip_stage(A, U16, start, c, l3, want, skip):
    """IP and TCP/UDP of the frames whose ``skip`` is undecided (mirrors
    ``_layers._ip`` and ``_layers._transport``); ``want`` < 0 marks frames that
    are not IP candidates."""
    ipc = (skip == _UNDECIDED) & (want >= 0)
    p = start + l3
    cut = ipc & (l3 >= c)
    skip[cut] = _TRUNCATED
    ipc &= ~cut
    b0 = A[p]
    nib = b0 >> 4
    # A version the link layer contradicts, or raw data that is not IP, is
    # left to dissect(); it is rare.
    fine = ipc & np.where(want == 0, (nib == 4) | (nib == 6), nib == want)
    v4 = fine & (nib == 4)
    v6 = fine & (nib == 6)

    # One gather serves IPv4's total length and IPv6's payload length, one
    # IPv4's protocol and IPv6's next header.
    length = U16[p + np.where(v6, 4, 2)].astype(np.int64)
    proto = A[p + np.where(v6, 6, 9)].astype(np.int16)
    cut4 = v4 & (l3 + 20 > c)
    ihl = (b0 & 0x0F).astype(np.int64) * 4
    m = v4 & ~cut4
    bad4 = m & ((ihl < 20) | ((length != 0) & (length < ihl)))
    m &= ~bad4
    cut4b = m & (l3 + ihl > c)
    m &= ~cut4b
    frag = m & ((U16[p + 6] & 0x3FFF) != 0)
    m &= ~frag
    tr = (proto == IPPROTO_TCP) | (proto == IPPROTO_UDP)
    tunnel = (proto == IPPROTO_IPIP) | (proto == IPPROTO_IPV6)
    ntu = m & ~tr & ~tunnel
    tr4 = m & tr
    tun = m & tunnel
    skip[cut4 | cut4b] = _TRUNCATED
    skip[bad4] = _MALFORMED
    skip[frag] = _FRAGMENT

    cut6 = v6 & (l3 + 40 > c)
    g6 = v6 & ~cut6
    ntu |= g6 & ~tr & ~_isin(proto, _IPV6_DEFER)
    tr6 = g6 & tr
    tun |= g6 & tunnel
    skip[cut6] = _TRUNCATED
    skip[ntu] = _NOT_TCP_UDP

    hdr = np.where(v6, 40, ihl)
    # Length 0: TSO captures (IPv4) or jumbograms (IPv6); the capture bounds it.
    end = np.where(length == 0, c, np.minimum(l3 + np.where(v6, 40, 0) + length, c))
    l4 = l3 + hdr

    tr = tr4 | tr6
    q = start + l4
    tcp = tr & (proto == IPPROTO_TCP)
    udp = tr & (proto == IPPROTO_UDP)
    cutT = tcp & (l4 + 20 > c)
    tcp &= ~cutT
    doff = (A[q + 12] >> 4).astype(np.int64) * 4
    badT = tcp & (doff < 20)
    tcp &= ~badT
    cutT2 = tcp & (l4 + doff > c)
    tcp &= ~cutT2
    badT2 = tcp & (l4 + doff > end)
    tcp &= ~badT2
    cutU = udp & (l4 + 8 > c)
    udp &= ~cutU
    badU = udp & (l4 + 8 > end)
    udp &= ~badU
    skip[cutT | cutT2 | cutU] = _TRUNCATED
    skip[badT | badT2 | badU] = _MALFORMED
    skip[tcp | udp] = 0
    ver = np.where(v4, 4, 6).astype(np.int8)
    pay = l4 + np.where(tcp, doff, 8)
    return _IPResult(skip, ver, proto, l4, pay, end, tun)


def _headers_numpy(A, U16, start, cap, lt):
    """Link, IP and TCP/UDP headers of all packets, with numpy.

    Returns ``(skip, ver, proto, l3, l4, payload, end)``; ``skip`` is 0 for a
    usable packet, a skip code, or ``_UNDECIDED`` (for dissect()); the other
    arrays are meaningful for usable packets only.
    """
    n = len(start)
    # Link layer, per link type (a pcap batch has one) ---------------------
    if lt[0] == lt[-1] and (lt == lt[0]).all():
        skip, l3, want = _link(A, U16, start, cap, int(lt[0]))
        if l3 is None:
            l3, want = 0, np.full(n, -1, np.int8)
        l3 = np.broadcast_to(np.asarray(l3, dtype=np.int64), (n,))
    else:
        skip = np.full(n, _UNDECIDED, dtype=np.int8)
        l3 = np.zeros(n, np.int64)
        want = np.full(n, -1, np.int8)
        for t in np.unique(lt).tolist():
            i = np.flatnonzero(lt == t)
            sk, o, w = _link(A, U16, start[i], cap[i], t)
            skip[i] = sk
            if o is not None:
                l3[i] = o
                want[i] = w

    # IP and transport; tunnels (IP in IP) again from the inner header -------
    r = _ip_stage(A, U16, start, cap, l3, want, skip)
    skip, ver, proto, l4, pay, end = r.skip, r.ver, r.proto, r.l4, r.payload, r.end
    l3 = l3.copy()
    tun = np.flatnonzero(r.tunnel)
    for _ in range(4):
        if not len(tun):
            break
        inner = l4[tun]
        w = np.where(proto[tun] == IPPROTO_IPIP, 4, 6).astype(np.int8)
        sk = np.full(len(tun), _UNDECIDED, dtype=np.int8)
        t = _ip_stage(A, U16, start[tun], cap[tun], inner, w, sk)
        skip[tun] = t.skip
        ver[tun] = t.ver
        proto[tun] = t.proto
        l3[tun] = inner
        l4[tun] = t.l4
        pay[tun] = t.payload
        end[tun] = t.end
        tun = tun[t.tunnel]
    skip[tun] = _UNDECIDED  # deeper nesting: dissect()
    return skip, ver, proto, l3, l4, pay, end


def _headers_compiled(data, start, cap, lt):
    """:func:`_headers_numpy` in one compiled loop (the same decisions)."""
    n = len(start)
    out = (
        np.zeros(n, np.int8),
        np.zeros(n, np.int8),
        np.zeros(n, np.int16),
        *(np.zeros(n, np.int64) for _ in range(4)),
    )
    decode_headers(data, start, cap, lt, _RAW_ARRAY, _HEADER_CODES, *out)
    return out


def decode_batch(batch):
    """Decode link, IP and TCP/UDP headers of every packet of a batch.

    The common cases (Ethernet with up to two VLAN tags, Linux SLL and raw IP
    carrying IPv4 or IPv6 without extension headers, IP-in-IP tunnels, then
    TCP or UDP; and the plain skips: truncated, malformed, fragment, not IP,
    not TCP/UDP) are decoded for all packets at once, in one compiled loop
    or, without it, with numpy.  Everything else goes through
    :func:`~sklearn_flowspectrum._layers.dissect`, whose results both
    decoders reproduce exactly.

    Parameters
    ----------
    batch : RecordBatch

    Returns
    -------
    _Decoded
    """
    data = batch.data
    size = len(data)
    A = np.frombuffer(data, np.uint8)
    view = memoryview(data)
    U16 = strided(data, ">u2", size)
    start, cap, lt = batch.start, batch.caplen, batch.linktype
    n = len(start)
    if n == 0:
        e = np.zeros(0, dtype=np.int64)
        u = np.zeros(0, dtype=np.uint64)
        return _Decoded(np.zeros(0, np.int8), e, e, e, u, u, u, u, e, e, e, e, e, 0)

    if decode_headers is not None:
        skip, ver, proto, l3, l4, pay, end = _headers_compiled(data, start, cap, lt)
    else:
        skip, ver, proto, l3, l4, pay, end = _headers_numpy(A, U16, start, cap, lt)

    # Everything else: one frame at a time through the reference dissector --
    rest = np.flatnonzero(skip == _UNDECIDED)
    if len(rest):
        for i, s, cc, t in zip(
            rest.tolist(), start[rest].tolist(), cap[rest].tolist(), lt[rest].tolist()
        ):
            d = dissect(view[s : s + cc].tobytes(), t)
            if d.skip is not None:
                skip[i] = _SKIP_CODE[d.skip]
                continue
            skip[i] = 0
            ver[i] = d.ip_version
            proto[i] = d.proto
            l3[i] = d.l3
            l4[i] = d.l4
            pay[i] = d.payload
            end[i] = d.payload_end

    # Addresses and ports of the usable packets ----------------------------
    idx = np.flatnonzero(skip == 0)
    s = start[idx]
    ver = ver[idx]
    a3 = s + l3[idx]
    a4 = s + l4[idx]
    U64 = strided(data, ">u8", size)
    both = U64[a3 + 12]  # IPv4 source and destination in one gather
    src_hi = both >> np.uint64(32)
    dst_hi = both & np.uint64(0xFFFFFFFF)
    src_lo = np.zeros(len(idx), dtype=np.uint64)
    dst_lo = np.zeros(len(idx), dtype=np.uint64)
    ports = strided(data, ">u4", size)[a4].astype(np.int64)
    i6 = np.flatnonzero(ver == 6)
    if len(i6):
        b = a3[i6]
        src_hi[i6] = U64[b + 8]
        src_lo[i6] = U64[b + 16]
        dst_hi[i6] = U64[b + 24]
        dst_lo[i6] = U64[b + 32]
    return _Decoded(
        skip,
        idx,
        ver,
        proto[idx],
        src_hi,
        src_lo,
        dst_hi,
        dst_lo,
        ports >> 16,
        ports & 0xFFFF,
        a4,
        s + pay[idx],
        s + end[idx],
        len(rest),
    )
