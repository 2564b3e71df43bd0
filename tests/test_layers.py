"""Tests of the per-frame dissector against frames built with dpkt."""

import struct

import dpkt
import pytest

from sklearn_flowspectrum._layers import FIELD_GROUPS, dissect
from sklearn_flowspectrum._protocols import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)

SRC4, DST4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SRC6, DST6 = bytes(range(16)), bytes(range(16, 32))


def _tcp(payload=b"hello", opts=b""):
    t = dpkt.tcp.TCP(sport=1234, dport=443, seq=7, ack=9, flags=dpkt.tcp.TH_ACK)
    t.opts = opts
    t.off = (20 + len(opts)) // 4
    t.data = payload
    return t


def _ip4(l4, p=dpkt.ip.IP_PROTO_TCP, **kw):
    ip = dpkt.ip.IP(src=SRC4, dst=DST4, p=p, id=0x4242, **kw)
    ip.data = l4
    ip.len = 20 + len(bytes(l4))
    return ip


def _ip6(l4, nxt=dpkt.ip.IP_PROTO_TCP):
    ip = dpkt.ip6.IP6(src=SRC6, dst=DST6, nxt=nxt, hlim=64)
    ip.data = l4
    ip.plen = len(bytes(l4))
    return ip


def _eth(ip, type_=dpkt.ethernet.ETH_TYPE_IP):
    return bytes(
        dpkt.ethernet.Ethernet(
            src=b"\x02" * 6, dst=b"\x04" * 6, type=type_, data=bytes(ip)
        )
    )


def _ranges(d, name):
    return [(s, e) for n, s, e in d.fields if n == name]


def test_ethernet_ipv4_tcp_offsets():
    frame = _eth(_ip4(_tcp()))
    d = dissect(frame, LINKTYPE_ETHERNET)
    assert d.skip is None
    assert (d.l3, d.ip_version, d.proto, d.l4, d.payload) == (14, 4, 6, 34, 54)
    assert d.payload_end == len(frame)
    assert (d.src, d.dst, d.sport, d.dport) == (SRC4, DST4, 1234, 443)
    assert frame[d.payload : d.payload_end] == b"hello"
    assert _ranges(d, "ip.src") == [(26, 30)]
    assert _ranges(d, "tcp.checksum") == [(50, 52)]
    assert _ranges(d, "eth.src") == [(6, 12)]


def test_ethernet_padding_is_not_payload():
    frame = _eth(_ip4(_tcp(b"")))  # 54 bytes, padded on the wire to 60
    d = dissect(frame + b"\x00" * 6, LINKTYPE_ETHERNET)
    assert d.skip is None and d.payload_length == 0
    assert not _ranges(d, "payload")


@pytest.mark.parametrize("tags", [[0x8100], [0x88A8, 0x8100]])
def test_vlan_and_qinq(tags):
    ip = bytes(_ip4(dpkt.udp.UDP(sport=53, dport=5353, data=b"x", ulen=9), p=17))
    frame = b"\x04" * 6 + b"\x02" * 6
    for t in tags:
        frame += struct.pack("!HH", t, 100)
    frame += struct.pack("!H", 0x0800) + ip
    d = dissect(frame, LINKTYPE_ETHERNET)
    assert d.skip is None and d.proto == 17
    assert d.l3 == 14 + 4 * len(tags)
    assert len(_ranges(d, "vlan.tag")) == len(tags)
    assert (d.sport, d.dport) == (53, 5353)


def test_ipv6_extension_headers_and_fragments():
    tcp = bytes(_tcp(b"abc"))
    hop = bytes([dpkt.ip.IP_PROTO_TCP, 0]) + b"\x00" * 6  # 8-byte hop-by-hop
    ip = dpkt.ip6.IP6(src=SRC6, dst=DST6, nxt=0, hlim=64, plen=len(hop) + len(tcp))
    raw = bytes(ip)[:40] + hop + tcp
    d = dissect(raw, LINKTYPE_RAW)
    assert d.skip is None and d.l4 == 48 and d.proto == 6
    assert _ranges(d, "ipv6.ext") == [(40, 48)]
    frag = bytes([dpkt.ip.IP_PROTO_TCP, 0]) + struct.pack("!HI", 0x0001, 1)
    ip.nxt, ip.plen = 44, len(frag) + len(tcp)
    d = dissect(bytes(ip)[:40] + frag + tcp, LINKTYPE_RAW)
    assert d.skip == "fragment"


def test_ipv4_fragment_and_non_tcp_udp():
    d = dissect(_eth(_ip4(_tcp(), mf=1)), LINKTYPE_ETHERNET)
    assert d.skip == "fragment"
    icmp = _ip4(dpkt.icmp.ICMP(type=8, data=b"ping"), p=dpkt.ip.IP_PROTO_ICMP)
    assert dissect(_eth(icmp), LINKTYPE_ETHERNET).skip == "not_tcp_udp"
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\x00" * 28
    assert dissect(arp, LINKTYPE_ETHERNET).skip == "not_ip"


def test_truncated_frames_keep_clipped_fields():
    frame = _eth(_ip4(_tcp()))
    d = dissect(frame[:30], LINKTYPE_ETHERNET)
    assert d.skip == "truncated"
    assert _ranges(d, "ip.src") == [(26, 30)]
    assert not _ranges(d, "ip.dst")
    assert dissect(frame[:4], LINKTYPE_ETHERNET).skip == "truncated"
    assert dissect(b"", LINKTYPE_RAW).skip == "truncated"


def test_malformed_headers():
    ip = bytearray(bytes(_ip4(_tcp())))
    ip[0] = 0x43  # IHL of 12 bytes
    assert dissect(bytes(ip), LINKTYPE_RAW).skip == "malformed"
    ip = bytearray(bytes(_ip4(_tcp())))
    ip[2:4] = struct.pack("!H", 30)  # total length ends inside the TCP header
    assert dissect(bytes(ip), LINKTYPE_RAW).skip == "malformed"


def test_snaplen_cut_payload_is_usable():
    frame = _eth(_ip4(_tcp(b"x" * 500)))
    d = dissect(frame[:100], LINKTYPE_ETHERNET)
    assert d.skip is None and d.payload_end == 100


def test_tcp_timestamp_option_is_a_field():
    opts = b"\x01\x01\x08\x0a" + struct.pack("!II", 111, 222)
    d = dissect(_eth(_ip4(_tcp(opts=opts))), LINKTYPE_ETHERNET)
    assert d.skip is None
    ((start, stop),) = _ranges(d, "tcp.opt.timestamp")
    assert (stop - start, start) == (8, 34 + 20 + 4)


@pytest.mark.parametrize(
    "sport, dport, payload, expected",
    [
        (40000, 5355, b"\xab\xcd\x00\x00wpad", [(42, 44)]),  # LLMNR query
        (53, 40000, b"\x12\x34\x81\x80", [(42, 44)]),  # DNS response
        (137, 137, b"\x01", [(42, 43)]),  # NetBIOS name service, cut ID
        (5353, 5353, b"", []),  # no payload, no ID
        (40000, 40001, b"\xab\xcdquery", []),  # not a name service port
    ],
)
def test_dns_transaction_id_is_a_field(sport, dport, payload, expected):
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = 8 + len(payload)
    d = dissect(_eth(_ip4(udp, p=dpkt.ip.IP_PROTO_UDP)), LINKTYPE_ETHERNET)
    assert d.skip is None and d.payload == 42
    assert _ranges(d, "dns.id") == expected
    # The payload keeps its place: L7 images still start at the ID.
    assert _ranges(d, "payload") == ([(42, 42 + len(payload))] if payload else [])
    assert "dns.id" in FIELD_GROUPS["dns_id"]


def test_other_link_layers():
    ip = bytes(_ip4(_tcp()))
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0800) + ip
    assert dissect(sll, LINKTYPE_LINUX_SLL).l3 == 16
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 3, 1, 0, 6, b"\x02" * 8) + ip
    d = dissect(sll2, LINKTYPE_LINUX_SLL2)
    assert d.l3 == 20 and _ranges(d, "sll.addr") == [(12, 20)]
    for fam in (struct.pack("<I", 2), struct.pack(">I", 2)):
        assert dissect(fam + ip, LINKTYPE_NULL).l3 == 4
    ip6 = bytes(_ip6(_tcp()))
    assert dissect(struct.pack(">I", 30) + ip6, LINKTYPE_LOOP).ip_version == 6
    assert dissect(struct.pack("<I", 24) + ip6, LINKTYPE_NULL).ip_version == 6
    assert dissect(ip, 9999).skip == "unknown_linktype"


def test_ip_in_ip_tunnel_uses_inner_packet():
    inner = _ip4(_tcp())
    outer = dpkt.ip.IP(src=b"\x01" * 4, dst=b"\x02" * 4, p=4, data=bytes(inner))
    outer.len = 20 + len(bytes(inner))
    d = dissect(bytes(outer), LINKTYPE_RAW)
    assert d.skip is None and d.l3 == 20 and d.src == SRC4
    assert len(_ranges(d, "ip.src")) == 2  # both headers' addresses are fields


def test_field_groups_name_known_fields():
    frame = _eth(_ip4(_tcp()))
    names = {n for n, _, _ in dissect(frame, LINKTYPE_ETHERNET).fields}
    for group in ("addresses", "ports", "checksums"):
        assert names & set(FIELD_GROUPS[group])
