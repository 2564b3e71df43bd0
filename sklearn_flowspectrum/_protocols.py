"""Protocol numbers and capture-file constants, in one place.

Link types, ethertypes, IP protocol numbers, the pcap and pcapng magics, block
and option types and the size limits the readers enforce.  The capture
readers, the per-frame dissector, the vectorised decoders, the layouts and the
command line all read them from here.  The compiled loops in ``_speedups.c``
repeat the few their fast path needs; the tests compare them with the Python
twins that read this module.
"""

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
