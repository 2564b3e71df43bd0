"""Protocol facts in one place: the field registry and the protocol numbers.

:data:`FIELDS` has one row per header field that the byte maps name: its
layer, where it sits in a fixed header, its mask group, its plot category,
its audit set and whether it identifies the capture or describes the
traffic.  The dissector's header templates, the mask groups and field names
of :mod:`~sklearn_flowspectrum._layouts`, the plot categories of
:mod:`~sklearn_flowspectrum.plotting` and the field sets of the leakage
audit are all derived from it (``tests/test_protocols.py``).

Then the link types, ethertypes, IP protocol numbers, the pcap and pcapng
magics, block and option types and the size limits the readers enforce.  The
capture readers, the per-frame dissector, the vectorised decoders, the layouts
and the command line all read them from here.  The compiled loops in
``_speedups.c`` repeat the few their fast path needs; the tests compare them
with the Python twins that read this module.
"""

from typing import NamedTuple


class Field(NamedTuple):
    """One header field, as the byte maps name it (``"ip.src"``).

    ``layer`` is what :func:`~sklearn_flowspectrum._layouts.byte_map_layers`
    reports; ``header``, ``start`` and ``stop`` place a field at a fixed
    position of a fixed header (else ``None``: the dissector finds it);
    ``group`` is its mask group (:data:`MASK_GROUP_NAMES`) or ``None``;
    ``category`` its key of ``plotting.FIELD_CATEGORIES``; ``audit`` the
    audit set (:data:`AUDIT_SETS`) its bytes go to; ``context`` is ``True``
    when the field identifies the capture (when, where, which hosts) rather
    than describing the shape of the traffic.
    """

    name: str
    layer: str
    header: str | None
    start: int | None
    stop: int | None
    group: str | None
    category: str
    audit: str
    context: bool


CAPTURE, TRAFFIC = True, False  # values of Field.context


def _rows(layer, header, *rows):
    """Fields of one layer; rows are (name, start, stop, group, category, audit,
    context), with ``start`` ``None`` for a field without a fixed position."""
    return tuple(
        Field(name, layer, None if a is None else header, a, z, *rest)
        for name, a, z, *rest in rows
    )


# Mask groups by the kind of information they carry, in the order the
# documentation lists them; "safe" masks all of them.
MASK_GROUP_NAMES = ("timestamps", "addresses", "ports", "ip_id", "checksums", "dns_id")

# fmt: off
FIELDS = (
    # The pcap global header of the "ustc" layout (24 bytes, SplitCap's).
    *_rows("pcap header", "pcap",
        ("pcap.magic", 0, 4, None, "pcap header", "pcap.global", CAPTURE),
        ("pcap.version", 4, 8, None, "pcap header", "pcap.global", CAPTURE),
        ("pcap.thiszone", 8, 12, None, "pcap header", "pcap.global", CAPTURE),
        ("pcap.sigfigs", 12, 16, None, "pcap header", "pcap.global", CAPTURE),
        ("pcap.snaplen", 16, 20, None, "pcap header", "pcap.global", CAPTURE),
        ("pcap.linktype", 20, 24, None, "pcap header", "pcap.global", CAPTURE),
    ),
    # The 16-byte pcap record header before each frame of the "ustc" layout.
    *_rows("pcap record", "pcap record",
        ("pcap.ts_sec", 0, 4, "timestamps", "timestamp", "pcap.timestamp", CAPTURE),
        ("pcap.ts_usec", 4, 8, "timestamps", "timestamp", "pcap.timestamp", CAPTURE),
        ("pcap.incl_len", 8, 12, None, "pcap header", "pcap.lengths", TRAFFIC),
        ("pcap.orig_len", 12, 16, None, "pcap header", "pcap.lengths", TRAFFIC),
    ),
    # Link layers: Ethernet (and its VLAN tags), Linux SLL/SLL2, BSD loopback,
    # PPPoE, MPLS.
    *_rows("link", "eth",
        ("eth.src", 6, 12, "addresses", "address", "mac", CAPTURE),
        ("eth.dst", 0, 6, "addresses", "address", "mac", CAPTURE),
        ("vlan.tag", None, None, None, "link layer", "link.other", TRAFFIC),
        ("eth.type", None, None, None, "link layer", "link.other", TRAFFIC),
        ("sll.header", None, None, None, "link layer", "link.other", TRAFFIC),
        ("sll.addr", None, None, "addresses", "address", "mac", CAPTURE),
        ("null.family", None, None, None, "link layer", "link.other", TRAFFIC),
        ("pppoe.header", None, None, None, "link layer", "link.other", TRAFFIC),
        ("mpls.label", None, None, None, "link layer", "link.other", TRAFFIC),
    ),
    *_rows("ip", "ip4",
        ("ip.vhl", 0, 1, None, "IP header", "ip.other", TRAFFIC),
        ("ip.tos", 1, 2, None, "IP header", "ip.other", TRAFFIC),
        ("ip.len", 2, 4, None, "IP header", "lengths", TRAFFIC),
        ("ip.id", 4, 6, "ip_id", "IP header", "ip.id", CAPTURE),
        ("ip.frag", 6, 8, None, "IP header", "ip.other", TRAFFIC),
        ("ip.ttl", 8, 9, None, "IP header", "ip.ttl", CAPTURE),
        ("ip.proto", 9, 10, None, "IP header", "ip.other", TRAFFIC),
        ("ip.checksum", 10, 12, "checksums", "IP header", "checksums", CAPTURE),
        ("ip.src", 12, 16, "addresses", "address", "ip.addresses", CAPTURE),
        ("ip.dst", 16, 20, "addresses", "address", "ip.addresses", CAPTURE),
        ("ip.options", None, None, None, "IP header", "ip.other", TRAFFIC),
    ),
    # ipv6.vtcfl: version, traffic class and flow label; masking blanks the
    # flow label only.
    *_rows("ip", "ip6",
        ("ipv6.vtcfl", 0, 4, "ip_id", "IP header", "ip.id", CAPTURE),
        ("ipv6.plen", 4, 6, None, "IP header", "lengths", TRAFFIC),
        ("ipv6.nxt", 6, 7, None, "IP header", "ip.other", TRAFFIC),
        ("ipv6.hlim", 7, 8, None, "IP header", "ip.ttl", CAPTURE),
        ("ipv6.src", 8, 24, "addresses", "address", "ip.addresses", CAPTURE),
        ("ipv6.dst", 24, 40, "addresses", "address", "ip.addresses", CAPTURE),
        ("ipv6.ext", None, None, None, "IP header", "ip.other", TRAFFIC),
    ),
    # tcp.opt.timestamp: the TSval/TSecr of the timestamp option, inside
    # tcp.options.
    *_rows("tcp", "tcp",
        ("tcp.sport", 0, 2, "ports", "port", "ports", CAPTURE),
        ("tcp.dport", 2, 4, "ports", "port", "ports", CAPTURE),
        ("tcp.seq", 4, 8, None, "transport header", "tcp.seq_ack", CAPTURE),
        ("tcp.ack", 8, 12, None, "transport header", "tcp.seq_ack", CAPTURE),
        ("tcp.offflags", 12, 14, None, "transport header", "tcp.other", TRAFFIC),
        ("tcp.window", 14, 16, None, "transport header", "tcp.other", TRAFFIC),
        ("tcp.checksum", 16, 18, "checksums", "transport header", "checksums",
         CAPTURE),
        ("tcp.urp", 18, 20, None, "transport header", "tcp.other", TRAFFIC),
        ("tcp.options", None, None, None, "transport header", "tcp.other", TRAFFIC),
        ("tcp.opt.timestamp", None, None, "timestamps", "timestamp",
         "tcp.timestamp", CAPTURE),
    ),
    *_rows("udp", "udp",
        ("udp.sport", 0, 2, "ports", "port", "ports", CAPTURE),
        ("udp.dport", 2, 4, "ports", "port", "ports", CAPTURE),
        ("udp.len", 4, 6, None, "transport header", "lengths", TRAFFIC),
        ("udp.checksum", 6, 8, "checksums", "transport header", "checksums",
         CAPTURE),
    ),
    # The TCP/UDP payload and, at its start, the transaction ID of the
    # DNS-format name services (see DNS_PORTS).  The plots have always shown
    # dns.id as "mixed".
    *_rows("payload", None,
        ("payload", None, None, None, "payload", "payload", TRAFFIC),
        ("dns.id", None, None, "dns_id", "mixed", "dns.id", CAPTURE),
    ),
)
# fmt: on
FIELD_BY_NAME = {f.name: f for f in FIELDS}

# What the byte maps write where no header field is: frame bytes after the
# last dissected field (e.g. Ethernet padding), bytes of frames that could
# not be dissected, and the zero padding of an image.
TRAILER = "trailer"
UNDISSECTED = "other"
PAD = "pad"

# The leakage audit's field sets, in the order a byte is matched against them
# (the first set that matches takes it): a set lists the fnmatch patterns
# given here, or, with none, the names of its fields.  The specific sets come
# before the catch-alls of their layer.
AUDIT_SETS = (
    ("pcap.timestamp", ()),
    ("pcap.lengths", ()),
    ("pcap.global", ("pcap.*",)),
    ("mac", ()),
    ("link.other", ("eth.*", "vlan.*", "sll.*", "null.*", "pppoe.*", "mpls.*")),
    ("ip.addresses", ()),
    ("ip.id", ()),
    ("ip.ttl", ()),
    ("lengths", ()),
    ("checksums", ()),
    ("ip.other", ("ip.*", "ipv6.*")),
    ("ports", ()),
    ("tcp.seq_ack", ()),
    ("tcp.timestamp", ()),
    ("tcp.other", ("tcp.*",)),
    ("udp.other", ("udp.*",)),
    ("trailer", (TRAILER, UNDISSECTED)),
    ("dns.id", ()),
    ("payload", ()),
)

# Field names of each mask group, in registry order.
FIELD_GROUPS = {
    group: tuple(f.name for f in FIELDS if f.group == group)
    for group in MASK_GROUP_NAMES
}


def header_fields(header):
    """``(name, start, stop)`` of the fields of a fixed header, in byte order."""
    return tuple(
        sorted(
            ((f.name, f.start, f.stop) for f in FIELDS if f.header == header),
            key=lambda t: t[1],
        )
    )


# Link types (tcpdump.org LINKTYPE_* values, as written in capture headers).
LINKTYPE_NULL = 0  # BSD loopback, host-order address family
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # bare IPv4 or IPv6
LINKTYPE_LOOP = 108  # OpenBSD loopback, network-order address family
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# DLT_RAW is 12 on most BSDs and 14 on OpenBSD; both hold bare IP packets.
RAW_LINKTYPES = frozenset({LINKTYPE_RAW, 12, 14})
# LT_LINKTYPE(): the upper bits of a pcap header's link-type field carry FCS flags.
LINKTYPE_MASK = 0x03FFFFFF

# Ethertypes.
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad, pre-standard QinQ
ETHERTYPE_PPPOE_SESSION = 0x8864
ETHERTYPE_MPLS = (0x8847, 0x8848)  # unicast, multicast
# PPP protocol numbers after a PPPoE session header.
PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057

# Address families of DLT_NULL/LOOP headers: AF_INET is 2 everywhere,
# AF_INET6 differs by OS (Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30).
AF_INET = 2
AF_INET6 = frozenset({10, 24, 28, 30})

# IP protocol numbers (IPv4 protocol, IPv6 next header).
IPPROTO_HOPOPTS = 0
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_AH = 51
IPPROTO_DSTOPTS = 60
# IPv6 extension headers whose length field counts 8-byte units.
IPV6_EXT_8 = (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS)
# Names of the transport protocols a session can have, as the session table writes them.
TRANSPORT_NAMES = {IPPROTO_TCP: "TCP", IPPROTO_UDP: "UDP"}

# UDP ports of the DNS-format name services (DNS, NetBIOS name service, mDNS,
# LLMNR): their payload starts with a 2-byte transaction ID ("dns.id").  It
# names one query event, not the traffic: the same query sent over IPv4 and
# IPv6 or repeated becomes several sessions sharing the ID.
DNS_PORTS = frozenset({53, 137, 5353, 5355})

# Classic pcap (as the file's first four bytes read in the file's byte order).
PCAP_MAGIC_US = 0xA1B2C3D4  # microsecond timestamps
PCAP_MAGIC_NS = 0xA1B23C4D  # nanosecond timestamps
PCAP_MAGIC_MODIFIED = 0xA1B2CD34  # Kuznetzov's patched libpcap (24-byte records)
PCAP_GLOBAL_LEN = 24
PCAP_RECORD_LEN = 16
# libpcap refuses records larger than its MAXIMUM_SNAPLEN unless the header's
# snaplen is larger; MAX_RECORD is the hard limit whatever the header says.
MAX_SNAPLEN = 262144
MAX_RECORD = 1 << 26

# pcapng.
PCAPNG_SHB_MAGIC = b"\x0a\x0d\x0d\x0a"  # section header block type, any byte order
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_IDB = 1  # interface description block
PCAPNG_PB = 2  # packet block (obsolete)
PCAPNG_SPB = 3  # simple packet block
PCAPNG_EPB = 6  # enhanced packet block
PCAPNG_OPT_ENDOFOPT = 0
PCAPNG_OPT_IF_TSRESOL = 9
PCAPNG_OPT_IF_TSOFFSET = 14
MAX_BLOCK = 1 << 26

GZIP_MAGIC = b"\x1f\x8b"

# File names the folder walkers read as captures (any case).
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
