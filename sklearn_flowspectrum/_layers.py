"""Per-frame header dissection: link layer -> IP -> TCP/UDP, with field byte ranges.

This module is the reference dissector: it finds every field of the
registry (:data:`sklearn_flowspectrum._protocols.FIELDS`, which also gives the
fixed positions of the fields of fixed headers) inside a captured frame.
Session grouping (5-tuples), masking of leaky fields and the byte maps that
label attention weights all read :func:`dissect`, or the vectorised decoders
the tests compare with it.

The dissector is deliberately tolerant: a frame cut short (by the capture's
snaplen, or a published 784-byte image row) still reports every field that
starts inside it, clipped to the captured length, together with the reason it
cannot be used as a TCP/UDP packet.
"""

from typing import NamedTuple

from sklearn_flowspectrum._protocols import (
    AF_INET,
    AF_INET6,
    DNS_PORTS,
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
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    PPP_IPV4,
    PPP_IPV6,
    RAW_LINKTYPES,
    header_fields,
)
from sklearn_flowspectrum._protocols import (  # the mask groups, re-exported
    FIELD_GROUPS as FIELD_GROUPS,
)

SKIP_REASONS = (
    "not_ip",
    "not_tcp_udp",
    "truncated",
    "fragment",
    "malformed",
    "unknown_linktype",
)

# Fixed header layouts as (name, start, stop) relative to the header start,
# from the registry; added as one block, which keeps dissection cheap on the
# hot path.
_ETH_ADDRS = header_fields("eth")
IPV4_HEADER = header_fields("ip4")
IPV6_HEADER = header_fields("ip6")
TCP_HEADER = header_fields("tcp")
UDP_HEADER = header_fields("udp")


class Dissection(NamedTuple):
    """Where the layers of one captured frame start and what they say.

    Offsets are byte positions in the frame; ``-1`` marks a layer that is
    absent or was not reached.  ``fields`` lists ``(name, start, stop)`` byte
    ranges, clipped to the captured length, in frame order.
    """

    l3: int
    ip_version: int
    proto: int
    l4: int
    payload: int
    payload_end: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    skip: str | None
    fields: tuple

    @property
    def payload_length(self):
        """Number of captured TCP/UDP payload bytes (0 when there is none)."""
        if self.payload < 0:
            return 0
        return max(0, self.payload_end - self.payload)


class _Builder:
    """Accumulates the state of one dissection; ends with a skip or success."""

    __slots__ = (
        "frame",
        "n",
        "fields",
        "l3",
        "ip_version",
        "proto",
        "l4",
        "payload",
        "payload_end",
        "src",
        "dst",
        "sport",
        "dport",
    )

    def __init__(self, frame):
        self.frame = frame
        self.n = len(frame)
        self.fields = []
        self.l3 = self.l4 = self.payload = self.payload_end = -1
        self.ip_version = 0
        self.proto = -1
        self.src = self.dst = b""
        self.sport = self.dport = -1

    def add(self, name, start, length):
        if length > 0 and start < self.n:
            self.fields.append((name, start, min(start + length, self.n)))

    def block(self, template, off, size):
        n = self.n
        if off + size <= n:
            self.fields.extend([(name, off + a, off + z) for name, a, z in template])
        else:
            self.fields.extend(
                [
                    (name, off + a, min(off + z, n))
                    for name, a, z in template
                    if off + a < n
                ]
            )

    def u16(self, off):
        return (self.frame[off] << 8) | self.frame[off + 1]

    def result(self, skip=None):
        return Dissection(
            self.l3,
            self.ip_version,
            self.proto,
            self.l4,
            self.payload,
            self.payload_end,
            self.src,
            self.dst,
            self.sport,
            self.dport,
            skip,
            tuple(self.fields),
        )


def dissect(frame, linktype):
    """Dissect one captured frame down to its TCP/UDP payload.

    Parameters
    ----------
    frame : bytes-like
        The captured bytes, starting at the link layer given by ``linktype``.
    linktype : int
        The pcap LINKTYPE of the frame (``_protocols.LINKTYPE_*``: Ethernet 1,
        Linux SLL 113, SLL2 276, raw IP 101/12/14/228/229, BSD loopback 0/108).

    Returns
    -------
    Dissection
        Layer offsets, the addresses and ports, the field byte ranges and, when
        the frame is not a usable TCP/UDP packet, ``skip``: one of
        :data:`SKIP_REASONS`.

    Examples
    --------
    >>> import struct
    >>> ip = bytes.fromhex("4500001c0001000040110000c0a80001c0a80002")
    >>> udp = struct.pack("!HHHH", 5353, 53, 8, 0)
    >>> d = dissect(ip + udp, 101)
    >>> d.proto, d.sport, d.dport, d.skip
    (17, 5353, 53, None)
    """
    b = _Builder(frame)
    n = b.n
    if linktype == LINKTYPE_ETHERNET:
        b.block(_ETH_ADDRS, 0, 12)
        if n < 14:
            return b.result("truncated")
        off = 12
        ethertype = b.u16(off)
        while ethertype in ETHERTYPE_VLAN:
            if off + 6 > n:
                b.add("vlan.tag", off, 4)
                return b.result("truncated")
            b.add("vlan.tag", off, 4)
            off += 4
            ethertype = b.u16(off)
        b.add("eth.type", off, 2)
        off += 2
        return _after_ethertype(b, ethertype, off)
    if linktype == LINKTYPE_LINUX_SLL:
        b.add("sll.header", 0, 6)
        b.add("sll.addr", 6, 8)
        if n < 16:
            return b.result("truncated")
        b.add("eth.type", 14, 2)
        return _after_ethertype(b, b.u16(14), 16)
    if linktype == LINKTYPE_LINUX_SLL2:
        if n < 20:
            b.add("sll.header", 0, 12)
            b.add("sll.addr", 12, 8)
            return b.result("truncated")
        b.add("eth.type", 0, 2)
        b.add("sll.header", 2, 10)
        b.add("sll.addr", 12, 8)
        return _after_ethertype(b, b.u16(0), 20)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        b.add("null.family", 0, 4)
        if n < 4:
            return b.result("truncated")
        big = int.from_bytes(frame[0:4], "big")
        little = int.from_bytes(frame[0:4], "little")
        # LOOP is always network order; NULL is in the writer's host order.
        families = (big,) if linktype == LINKTYPE_LOOP else (big, little)
        if AF_INET in families:
            return _ip(b, 4, 4)
        if any(f in AF_INET6 for f in families):
            return _ip(b, 4, 6)
        return b.result("not_ip")
    if linktype in RAW_LINKTYPES:
        return _ip(b, 0, None)
    if linktype == LINKTYPE_IPV4:
        return _ip(b, 0, 4)
    if linktype == LINKTYPE_IPV6:
        return _ip(b, 0, 6)
    return b.result("unknown_linktype")


def _after_ethertype(b, ethertype, off):
    if ethertype == ETHERTYPE_IPV4:
        return _ip(b, off, 4)
    if ethertype == ETHERTYPE_IPV6:
        return _ip(b, off, 6)
    if ethertype == ETHERTYPE_PPPOE_SESSION:
        # PPPoE session header (6 bytes) then the 2-byte PPP protocol.
        b.add("pppoe.header", off, 8)
        if off + 8 > b.n:
            return b.result("truncated")
        ppp = b.u16(off + 6)
        if ppp == PPP_IPV4:
            return _ip(b, off + 8, 4)
        if ppp == PPP_IPV6:
            return _ip(b, off + 8, 6)
        return b.result("not_ip")
    if ethertype in ETHERTYPE_MPLS:
        # Walk the label stack to the bottom-of-stack bit, then sniff IP.
        while True:
            if off + 4 > b.n:
                b.add("mpls.label", off, 4)
                return b.result("truncated")
            b.add("mpls.label", off, 4)
            bottom = b.frame[off + 2] & 1
            off += 4
            if bottom:
                return _ip(b, off, None)
    return b.result("not_ip")


def _ip(b, off, version):
    frame, n = b.frame, b.n
    if off >= n:
        return b.result("truncated")
    nibble = frame[off] >> 4
    if version is None:
        version = nibble
    if nibble != version or version not in (4, 6):
        return b.result("not_ip" if version not in (4, 6) else "malformed")
    b.l3 = off
    b.ip_version = version
    if version == 4:
        ihl = (frame[off] & 0x0F) * 4
        b.block(IPV4_HEADER, off, 20)
        if ihl > 20:
            b.add("ip.options", off + 20, ihl - 20)
        if off + 20 > n:
            return b.result("truncated")
        if ihl < 20:
            return b.result("malformed")
        total = b.u16(off + 2)
        # Captures taken before TCP segmentation offload can carry a zero total
        # length; the captured bytes are then the only bound.
        end = n if total == 0 else off + total
        if total and total < ihl:
            return b.result("malformed")
        b.src = bytes(frame[off + 12 : off + 16])
        b.dst = bytes(frame[off + 16 : off + 20])
        proto = frame[off + 9]
        b.proto = proto
        frag = b.u16(off + 6)
        if off + ihl > n:
            return b.result("truncated")
        if frag & 0x3FFF:  # more-fragments flag or a non-zero offset
            return b.result("fragment")
        return _transport(b, proto, off + ihl, min(end, n))
    # IPv6
    b.block(IPV6_HEADER, off, 40)
    if off + 40 > n:
        return b.result("truncated")
    plen = b.u16(off + 4)
    end = n if plen == 0 else off + 40 + plen  # plen 0: jumbogram or TSO
    b.src = bytes(frame[off + 8 : off + 24])
    b.dst = bytes(frame[off + 24 : off + 40])
    nxt = frame[off + 6]
    pos = off + 40
    while nxt in IPV6_EXT_8 or nxt in (IPPROTO_FRAGMENT, IPPROTO_AH):
        if pos + 8 > n:
            b.add("ipv6.ext", pos, 8)
            return b.result("truncated")
        if nxt == IPPROTO_FRAGMENT:
            length = 8
            offset_flags = b.u16(pos + 2)
            if offset_flags & 0xFFF9:  # fragment offset or more-fragments set
                b.add("ipv6.ext", pos, length)
                b.proto = frame[pos]
                return b.result("fragment")
        elif nxt == IPPROTO_AH:
            length = (frame[pos + 1] + 2) * 4
        else:
            length = (frame[pos + 1] + 1) * 8
        b.add("ipv6.ext", pos, length)
        nxt = frame[pos]
        pos += length
        if pos > min(end, n):
            return b.result("truncated" if pos > n else "malformed")
    b.proto = nxt
    return _transport(b, nxt, pos, min(end, n))


def _transport(b, proto, off, end):
    frame = b.frame
    if proto in (IPPROTO_IPIP, IPPROTO_IPV6):
        # IP-in-IP and 6in4 tunnels: the session is the inner packet's.
        return _ip(b, off, 4 if proto == IPPROTO_IPIP else 6)
    if proto == IPPROTO_TCP:
        b.l4 = off
        b.block(TCP_HEADER, off, 20)
        if off + 20 > b.n:
            return b.result("truncated")
        doff = (frame[off + 12] >> 4) * 4
        _tcp_options(b, off + 20, off + doff)
        b.sport = b.u16(off)
        b.dport = b.u16(off + 2)
        if doff < 20:
            return b.result("malformed")
        if off + doff > b.n:
            return b.result("truncated")
        if off + doff > end:  # the IP length ends inside the TCP header
            return b.result("malformed")
        b.payload = off + doff
        b.payload_end = max(end, b.payload)
        if b.payload < end:
            b.add("payload", b.payload, end - b.payload)
        return b.result()
    if proto == IPPROTO_UDP:
        b.l4 = off
        b.block(UDP_HEADER, off, 8)
        if off + 8 > b.n:
            return b.result("truncated")
        if off + 8 > end:
            return b.result("malformed")
        b.sport = b.u16(off)
        b.dport = b.u16(off + 2)
        b.payload = off + 8
        b.payload_end = end
        if b.payload < end:
            b.add("payload", b.payload, end - b.payload)
            if b.sport in DNS_PORTS or b.dport in DNS_PORTS:
                b.add("dns.id", b.payload, min(2, end - b.payload))
        return b.result()
    return b.result("not_tcp_udp")


def _tcp_options(b, start, stop):
    """Record the options area and, inside it, the TCP timestamp values."""
    frame = b.frame
    if stop <= start:
        return
    b.add("tcp.options", start, stop - start)
    pos = start
    stop = min(stop, b.n)
    while pos < stop:
        kind = frame[pos]
        if kind == 0:  # end of option list
            break
        if kind == 1:  # no-operation
            pos += 1
            continue
        if pos + 1 >= stop:
            break
        length = frame[pos + 1]
        if length < 2:
            break
        if kind == 8 and length == 10:
            b.add("tcp.opt.timestamp", pos + 2, 8)
        pos += length
