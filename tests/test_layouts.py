"""Image layouts, masking and byte maps (sklearn_flowspectrum._layouts)."""

import struct
from pathlib import Path

import dpkt
import numpy as np
import pytest

from sklearn_flowspectrum._idx import load_idx_pair
from sklearn_flowspectrum._layers import dissect
from sklearn_flowspectrum._layouts import (
    _FAST_FIXED,
    _FAST_VARIABLE,
    FIELD_NAMES,
    MASK_GROUPS,
    SAFE_FIELDS,
    batch_from_frames,
    build_images,
    byte_map_layers,
    dissect_batch,
    mask_ustc_rows,
    mostly_pcap_rows,
    packet_slot_map,
    parse_ustc_rows,
    pcap_row_mask,
    resolve_mask,
    rows_byte_map,
    session_byte_map,
)
from sklearn_flowspectrum._protocols import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ISCX = DATA / "iscx-vpn2016"
NDPI = DATA / "ndpi-pcaps" / "pcap"

MAC_A, MAC_B = b"\xaa" * 6, b"\xbb" * 6
IP_A, IP_B = bytes([10, 1, 2, 3]), bytes([10, 4, 5, 6])
IP6_A, IP6_B = bytes(range(1, 17)), bytes(range(17, 33))
TS_OPT = b"\x01\x01\x08\x0a" + struct.pack("!II", 0x11223344, 0x55667788)


def tcp(payload=b"data", opts=b"", sport=40000, dport=443):
    seg = struct.pack(
        "!HHIIBBHHH", sport, dport, 1000, 2000, (20 + len(opts)) // 4 << 4, 0x18,
        8192, 0xC0DE, 0,
    )  # fmt: skip
    return seg + opts + payload


def udp(payload=b"query", sport=5353, dport=53):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0xBEEF) + payload


def ip4(l4, proto=6, ident=0x4242, options=b""):
    ihl = 20 + len(options)
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl // 4, 0, ihl + len(l4), ident, 0x4000, 64,
        proto, 0xABCD, IP_A, IP_B,
    )  # fmt: skip
    return hdr + options + l4


def ip6(l4, nxt=6, flow=0xABCDE):
    vtcfl = (6 << 28) | (0x5A << 20) | flow
    return struct.pack("!IHBB16s16s", vtcfl, len(l4), nxt, 64, IP6_A, IP6_B) + l4


def eth(ip, ethertype=0x0800, vlan=False):
    tag = struct.pack("!HH", 0x8100, 7) if vlan else b""
    return MAC_B + MAC_A + tag + struct.pack("!H", ethertype) + ip


def sll(ip, ethertype=0x0800):
    return struct.pack("!HHH8sH", 0, 1, 6, MAC_A + b"\0\0", ethertype) + ip


def sll2(ip, ethertype=0x86DD):
    return struct.pack("!HHIHBB8s", ethertype, 0, 3, 1, 0, 6, MAC_A + b"\0\0") + ip


def one_session(frames, linktype, ts0=1_500_000_000_123_456_789):
    ts = [ts0 + i * 1_000_000 for i in range(len(frames))]
    return batch_from_frames([frames], [ts], [[len(f) for f in frames]], [linktype])


# Each case: frames of one session, its link type, and for every frame the
# byte ranges the safe mask must zero (frame offsets), plus flow-label bytes.
def _cases():
    l3, l4 = 14, 34
    eth_tcp4 = [(0, 12), (l3 + 4, l3 + 6), (l3 + 10, l3 + 20), (l4, l4 + 4)] + [
        (l4 + 16, l4 + 18),
        (l4 + 24, l4 + 32),
    ]
    v = 18  # VLAN-tagged IPv6 header offset
    eth_vlan_udp6 = [(0, 12), (v + 2, v + 4), (v + 8, v + 40)]
    # udp() sends to port 53: its first two payload bytes are a DNS
    # transaction ID ("dns.id"), blanked too.
    eth_vlan_udp6 += [(v + 40, v + 44), (v + 46, v + 48), (v + 48, v + 50)]
    sll_udp4 = [(6, 14), (16 + 4, 16 + 6), (16 + 10, 16 + 20), (36, 40), (42, 46)]
    sll2_tcp6 = [(12, 20), (22, 24), (28, 60), (60, 64), (76, 78)]
    raw_tcp4_opts = [(4, 6), (10, 20), (28, 32), (44, 46)]  # 8 bytes of IP options
    null_udp4 = [(8, 10), (14, 24), (24, 28), (30, 34)]
    hop = bytes([17, 0]) + b"\0" * 6
    raw_udp6_ext = [(2, 4), (8, 40), (48, 52), (54, 58)]
    return {
        "eth-ipv4-tcp-ts": (
            [eth(ip4(tcp(opts=TS_OPT))), eth(ip4(tcp(b"second", opts=TS_OPT)))],
            LINKTYPE_ETHERNET,
            eth_tcp4,
            [],
        ),
        "eth-vlan-ipv6-udp": (
            [eth(ip6(udp(), nxt=17), 0x86DD, vlan=True)] * 3,
            LINKTYPE_ETHERNET,
            eth_vlan_udp6,
            [v + 1],
        ),
        "sll-ipv4-udp": ([sll(ip4(udp(), proto=17))] * 2, LINKTYPE_LINUX_SLL,
                         sll_udp4, []),
        "sll2-ipv6-tcp": ([sll2(ip6(tcp()))] * 2, LINKTYPE_LINUX_SLL2, sll2_tcp6,
                          [21]),
        "raw-ipv4-options-tcp": (
            [ip4(tcp(), options=b"\x01" * 8)] * 2,
            LINKTYPE_RAW,
            raw_tcp4_opts,
            [],
        ),
        "null-ipv4-udp": (
            [struct.pack("<I", 2) + ip4(udp(), proto=17)] * 2,
            LINKTYPE_NULL,
            null_udp4,
            [],
        ),
        "raw-ipv6-hop-udp": (
            [ip6(hop + udp(), nxt=0)] * 2,
            LINKTYPE_RAW,
            raw_udp6_ext,
            [1],
        ),
    }  # fmt: skip


CASES = _cases()


@pytest.mark.parametrize("vectorized", [True, False])
def test_dns_id_mask_follows_the_name_service_ports(vectorized):
    # The transaction ID is blanked when either port is a DNS-format name
    # service (here LLMNR as destination, NBNS as source), not otherwise.
    frames = [
        eth(ip4(udp(b"\xab\xcdwpad", sport=40000, dport=5355), proto=17)),
        eth(ip4(udp(b"\xab\xcdwpad", sport=137, dport=40000), proto=17)),
        eth(ip4(udp(b"\xab\xcdwpad", sport=40000, dport=40001), proto=17)),
    ]
    batch = one_session(frames, LINKTYPE_ETHERNET)
    dis = dissect_batch(
        batch, np.arange(len(frames)), resolve_mask("dns_id"), vectorized=vectorized
    )
    buf = batch.buf.copy()
    for fi, ai, zi, ki in zip(*dis.ranges):
        s = batch.start[fi]
        buf[s + ai : s + zi] &= np.uint8(ki)
    payloads = [
        buf[batch.start[i] + 42 : batch.start[i] + batch.length[i]].tobytes()
        for i in range(len(frames))
    ]
    assert payloads == [b"\0\0wpad", b"\0\0wpad", b"\xab\xcdwpad"]


@pytest.mark.parametrize("layout", ["ustc", "packets"])
def test_dns_id_is_blanked_in_l7_images(layout):
    # The ID lies inside the payload, so payload-only images lose it too.
    frames = [eth(ip4(udp(b"\xab\xcdwpad", sport=40000, dport=5355), proto=17))]
    args = dict(layout=layout, layers="l7", n_bytes=16, packet_bytes=8)
    safe = build_images(
        one_session(frames, LINKTYPE_ETHERNET), mask=SAFE_FIELDS, **args
    )
    kept = build_images(one_session(frames, LINKTYPE_ETHERNET), **args)
    assert safe[0, :6].tobytes() == b"\0\0wpad"
    assert kept[0, :6].tobytes() == b"\xab\xcdwpad"


def _expected_masked(frame, ranges, nibbles):
    out = bytearray(frame)
    for a, z in ranges:
        out[a:z] = bytes(z - a)
    for i in nibbles:
        out[i] &= 0xF0
    return bytes(out)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("vectorized", [True, False])
def test_safe_mask_blanks_exact_bytes_in_every_packet(case, vectorized):
    frames, linktype, ranges, nibbles = CASES[case]
    batch = one_session(frames, linktype)
    dis = dissect_batch(
        batch, np.arange(len(frames)), SAFE_FIELDS, vectorized=vectorized
    )
    buf = batch.buf.copy()
    f, a, z, keep = dis.ranges
    for fi, ai, zi, ki in zip(f, a, z, keep):
        s = batch.start[fi]
        buf[s + ai : s + zi] &= np.uint8(ki)
    for i, frame in enumerate(frames):
        s = batch.start[i]
        got = buf[s : s + len(frame)].tobytes()
        assert got == _expected_masked(frame, ranges, nibbles), (case, i)


@pytest.mark.parametrize("case", sorted(CASES))
def test_ustc_image_masked_frames_and_records(case):
    frames, linktype, ranges, nibbles = CASES[case]
    batch = one_session(frames, linktype)
    image = build_images(batch, n_bytes=1024, mask=SAFE_FIELDS)[0].tobytes()
    expected = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for frame in frames:
        expected += bytes(8) + struct.pack(">II", len(frame), len(frame))
        expected += _expected_masked(frame, ranges, nibbles)
    assert image == expected.ljust(1024, b"\0")[:1024]
    # The frames layout is the same without the pcap headers.
    image = build_images(batch, layout="frames", n_bytes=1024, mask=SAFE_FIELDS)
    frames_only = b"".join(_expected_masked(f, ranges, nibbles) for f in frames)
    assert image[0].tobytes() == frames_only.ljust(1024, b"\0")[:1024]


def test_unmasked_ustc_has_timestamps_and_lengths():
    frame = eth(ip4(tcp()))
    batch = one_session([frame, frame], LINKTYPE_ETHERNET, ts0=7_000_001_234_567)
    image = build_images(batch, n_bytes=200, mask=())[0].tobytes()
    assert image[24:40] == struct.pack(">IIII", 7000, 1234, len(frame), len(frame))
    assert image[40 : 40 + len(frame)] == frame
    second = 40 + len(frame)
    assert image[second : second + 8] == struct.pack(">II", 7000, 2234)


def _ndpi_frames(names, limit=400):
    frames, linktypes = [], []
    for name in names:
        with open(NDPI / name, "rb") as f:
            reader = dpkt.pcap.UniversalReader(f)
            for i, (_, buf) in enumerate(reader):
                if i == limit:
                    break
                frames.append(bytes(buf))
                linktypes.append(reader.datalink())
    return frames, linktypes


@pytest.mark.skipif(not NDPI.is_dir(), reason=f"shared nDPI captures absent ({NDPI})")
def test_vectorised_dissection_matches_reference_on_real_frames():
    names = [
        "443-chrome.pcap", "6in4tunnel.pcap", "4in6tunnel.pcap", "1kxun.pcap",
        "443-opvn.pcap", "quic.pcap", "ipv6_in_gtp.pcap", "dns-tunnel-iodine.pcap",
        "linux-cooked.pcap", "vxlan.pcap", "teams.pcap",
    ]  # fmt: skip
    names = [n for n in names if (NDPI / n).exists()]
    frames, linktypes = _ndpi_frames(names)
    # Hand-built frames and snaplen-cut copies of them reach the edge cases.
    for case in CASES.values():
        for frame in case[0]:
            for cut in (len(frame), 60, 41, 30, 13, 1):
                frames.append(frame[:cut])
                linktypes.append(case[1])
    batch = batch_from_frames(
        [[f] for f in frames],
        [[0]] * len(frames),
        [[len(f)] for f in frames],
        linktypes,
    )
    names_fast = set(_FAST_FIXED) | _FAST_VARIABLE
    idx = np.arange(len(frames))
    fast = dissect_batch(batch, idx, names_fast)
    ref = dissect_batch(batch, idx, names_fast, vectorized=False)
    for attr in ("l3", "payload", "payload_end"):
        np.testing.assert_array_equal(getattr(fast, attr), getattr(ref, attr))

    def blanked(dis):
        buf = batch.buf.copy()
        for f, a, z, keep in zip(*dis.ranges):
            s = batch.start[f]
            buf[s + a : s + z] &= np.uint8(keep)
        return buf

    np.testing.assert_array_equal(blanked(fast), blanked(ref))
    assert (blanked(fast) != batch.buf).sum() > 10000


def test_l7_bounded_by_ip_total_length():
    frames = [eth(ip4(tcp(b"ab"))) + b"\0" * 6, eth(ip4(udp(b"cde"), proto=17))]
    batch = one_session(frames, LINKTYPE_ETHERNET)
    for layout in ("ustc", "frames"):
        image = build_images(batch, layout=layout, layers="l7", n_bytes=8)
        assert image[0].tobytes() == b"abcde\0\0\0"
    image = build_images(batch, layout="packets", layers="l7", n_bytes=8,
                         packet_bytes=4)  # fmt: skip
    assert image[0].tobytes() == b"ab\0\0cde\0"
    # Payload of the first packets only, cut at n_bytes.
    image = build_images(batch, layers="l7", n_bytes=3)
    assert image[0].tobytes() == b"abc"


def test_packets_layout_slots_start_at_ip_header():
    a, b = eth(ip4(tcp(b"x" * 200))), sll(ip4(udp(b"y"), proto=17))
    batch = batch_from_frames(
        [[a, a], [b]], [[0, 1], [2]], [[len(a)] * 2, [len(b)]],
        [LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL],
    )  # fmt: skip
    image = build_images(batch, layout="packets", n_bytes=250, packet_bytes=112)
    assert image[0, :112].tobytes() == a[14 : 14 + 112]
    assert image[0, 112:224].tobytes() == a[14 : 14 + 112]
    assert not image[0, 224:].any()  # 250 // 112 = 2 slots, then padding
    ip_b = b[16:]
    assert image[1, : len(ip_b)].tobytes() == ip_b and not image[1, len(ip_b) :].any()
    masked = build_images(
        batch, layout="packets", n_bytes=250, packet_bytes=112, mask=SAFE_FIELDS
    )
    for row in (0, 1):
        for slot in range(2 if row == 0 else 1):
            base = slot * 112
            assert not masked[row, base + 12 : base + 24].any()  # addresses, ports
            assert masked[row, base + 9] in (6, 17)  # protocol kept


def test_packet_slot_map_static():
    packet, offset = packet_slot_map(784, 112)
    assert packet.max() == 6 and (offset < 112).all()
    assert packet[112] == 1 and offset[113] == 1


def test_mask_resolution():
    assert resolve_mask("none") == frozenset() == resolve_mask(None)
    assert resolve_mask("safe") == SAFE_FIELDS
    for group in ("timestamps", "addresses", "ports", "ip_id", "checksums", "dns_id"):
        assert set(MASK_GROUPS[group]) <= SAFE_FIELDS
        assert resolve_mask(group) == frozenset(MASK_GROUPS[group])
    assert "pcap.ts_sec" in SAFE_FIELDS and "tcp.opt.timestamp" in SAFE_FIELDS
    assert resolve_mask(["ports", "ip.ttl"]) == {
        "ip.ttl", "tcp.sport", "tcp.dport", "udp.sport", "udp.dport"
    }  # fmt: skip
    assert SAFE_FIELDS <= FIELD_NAMES
    with pytest.raises(ValueError, match="unknown mask entry 'ip.nope'"):
        resolve_mask(["ip.nope"])
    with pytest.raises(TypeError, match="mask entries must be strings"):
        resolve_mask([3])


def test_custom_mask_uses_reference_dissector_for_other_fields():
    frames = [eth(ip4(tcp()), vlan=True)]
    batch = one_session(frames, LINKTYPE_ETHERNET)
    image = build_images(batch, layout="frames", n_bytes=64, mask=["vlan.tag"])
    assert not image[0, 12:16].any() and image[0, :12].tobytes() == frames[0][:12]


def test_session_byte_map_matches_dissector():
    frame = eth(ip4(tcp(b"hello", opts=TS_OPT))) + b"\0" * 4
    m = session_byte_map([frame, frame], LINKTYPE_ETHERNET, n_bytes=300)
    assert list(m[:4]) == ["pcap.magic"] * 4 and m[23] == "pcap.linktype"
    assert list(m[24:28]) == ["pcap.ts_sec"] * 4 and m[39] == "pcap.orig_len"
    d = dissect(frame, LINKTYPE_ETHERNET)
    for name, a, z in d.fields:
        if name != "tcp.options":  # the timestamp option is named inside it
            assert set(m[40 + a : 40 + z]) == {name}, name
    assert m[40 + len(frame) - 1] == "trailer"
    second = 40 + len(frame)
    assert m[second] == "pcap.ts_sec" and m[second + 16] == "eth.dst"
    assert m[-1] == "pad"
    layers = byte_map_layers(m)
    assert layers[0] == "pcap header" and layers[24] == "pcap record"
    assert layers[40] == "link" and layers[40 + 14] == "ip" and layers[-1] == "pad"
    m7 = session_byte_map([frame], LINKTYPE_ETHERNET, layers="l7", n_bytes=8)
    assert list(m7) == ["payload"] * 5 + ["pad"] * 3
    mp = session_byte_map([frame], LINKTYPE_ETHERNET, layout="packets", n_bytes=224)
    assert mp[0] == "ip.vhl" and mp[20] == "tcp.sport" and mp[112] == "pad"


def _ustc_row(frames, linktype=LINKTYPE_ETHERNET, width=784, ts=(100, 5)):
    row = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for f in frames:
        row += struct.pack(">IIII", ts[0], ts[1], len(f), len(f)) + f
    return np.frombuffer(row.ljust(width, b"\0")[:width], dtype=np.uint8)


def test_ustc_rows_round_trip_and_garbage():
    frames = [eth(ip4(tcp(b"z" * 300)))] * 3  # the third is cut by the row end
    rows = np.stack(
        [
            _ustc_row(frames),
            np.zeros(784, np.uint8),  # an empty row
            np.random.default_rng(0).integers(0, 256, 784, dtype=np.uint8),
            _ustc_row(frames, width=784)[:784].copy(),
        ]
    )
    rows[3, 24 + 16 + len(frames[0]) + 8 : 24 + 16 + len(frames[0]) + 12] = 0xFF
    parsed = parse_ustc_rows(rows)
    assert parsed.status.tolist() == ["ok", "not_pcap", "not_pcap", "malformed"]
    lengths = parsed.batch.length[parsed.batch.session == 0]
    assert lengths.tolist() == [len(frames[0]), len(frames[0]), 784 - 24 - 3 * 16
                                - 2 * len(frames[0])]  # fmt: skip
    masked, status = mask_ustc_rows(rows, SAFE_FIELDS)
    np.testing.assert_array_equal(masked[1:3], rows[1:3])  # left as they are
    assert not masked[0, 24:32].any() and not masked[3, 24:32].any()
    second = 24 + 16 + len(frames[0])
    assert not masked[0, second : second + 8].any()  # the later packets too
    third = second + 16 + len(frames[0])
    assert not masked[0, third : third + 8].any()
    assert not masked[0, third + 16 : third + 28].any()  # MACs of the cut frame
    # Relayout: "ustc" rows -> "frames" images.
    batch = parsed.batch
    image = build_images(batch, layout="frames", n_bytes=784, mask=())
    expected = (frames[0] * 3)[: lengths.sum()]
    assert image[0].tobytes() == expected.ljust(784, b"\0")
    assert not image[1].any() and not image[2].any()


def test_partial_record_header_at_row_end_is_masked():
    frame = eth(ip4(tcp(b"q" * 100)))
    full = _ustc_row([frame, frame], width=2000)
    end = 24 + 16 + len(frame) + 6  # cut inside the second record's ts_usec
    row = full[:end][None, :].copy()
    masked, status = mask_ustc_rows(row, SAFE_FIELDS)
    assert status.tolist() == ["ok"]
    assert not masked[0, end - 6 :].any()
    m = rows_byte_map(row)
    assert list(m[0, end - 6 :]) == ["pcap.ts_sec"] * 4 + ["pcap.ts_usec"] * 2


@pytest.mark.skipif(not ISCX.is_dir(), reason=f"shared ISCX data absent ({ISCX})")
@pytest.mark.parametrize("folder", ["NovpnSessionAllLayers", "VpnSessionAllLayers"])
def test_mask_published_iscx_rows(folder):
    X, _ = load_idx_pair(ISCX / folder)
    masked, status = mask_ustc_rows(X, SAFE_FIELDS)
    assert (status == "ok").all()
    assert not masked[:, 24:32].any()  # first packet's timestamp, every row
    # Every byte the byte map attributes to a leaky field is zero, in every
    # packet; every other byte is unchanged (checked on a slice of rows).
    sub = slice(0, 600)
    names = rows_byte_map(X[sub]).astype(str)
    leaky = np.isin(names, sorted(SAFE_FIELDS - {"ipv6.vtcfl"}))
    flow = names == "ipv6.vtcfl"
    assert not masked[sub][leaky].any()
    np.testing.assert_array_equal(masked[sub][~leaky & ~flow], X[sub][~leaky & ~flow])
    later = np.zeros_like(leaky)
    later[:, 24 + 16 + 60 :] = True  # beyond the first packet of most rows
    assert (leaky & later & (X[sub] != 0)).sum() > 500
    frames = parse_ustc_rows(X[sub]).batch
    assert np.bincount(frames.session).max() > 3  # rows hold several packets


def test_corrupted_rows_never_crash():
    rng = np.random.default_rng(1)
    frames = [eth(ip4(tcp(b"p" * 40))), sll(ip4(udp(), proto=17)), ip6(udp(), nxt=17)]
    rows = np.stack(
        [_ustc_row(frames[:2]), _ustc_row(frames[1:2] * 5)]
        + [_ustc_row([frames[2]] * 4, linktype=LINKTYPE_RAW)] * 2
    )
    rows = np.repeat(rows, 50, axis=0)
    where = rng.integers(0, 784, size=(len(rows), 4))
    rows[np.arange(len(rows))[:, None], where] = rng.integers(0, 256, where.shape)
    masked, status = mask_ustc_rows(rows, SAFE_FIELDS)
    assert set(status) <= {"ok", "not_pcap", "malformed"} and (status == "ok").any()
    for layout in ("ustc", "frames", "packets"):
        for layers in ("all", "l7"):
            images = build_images(
                parse_ustc_rows(rows).batch, layout=layout, layers=layers,
                mask=SAFE_FIELDS,
            )  # fmt: skip
            assert images.shape == (len(rows), 784)
    assert rows_byte_map(rows[:20]).shape == (20, 784)


def test_pcap_row_mask_knows_every_pcap_magic():
    rows = np.zeros((6, 30), np.uint8)
    for i, magic in enumerate(("a1b2c3d4", "d4c3b2a1", "a1b23c4d", "4d3cb2a1")):
        rows[i, :4] = list(bytes.fromhex(magic))
    rows[4, :4] = list(b"GET ")  # an L7 payload row
    assert pcap_row_mask(rows).tolist() == [True] * 4 + [False] * 2
    # Scaled images read alike; a row too narrow for a pcap header has none.
    assert (
        pcap_row_mask(rows / np.float32(255)).tolist() == pcap_row_mask(rows).tolist()
    )
    assert not pcap_row_mask(rows[:, :20]).any()
    assert mostly_pcap_rows(rows) and not mostly_pcap_rows(rows[3:])
    assert not mostly_pcap_rows(rows[:0])


def test_packet_rows_byte_map_reads_each_slot_from_its_ip_header():
    import struct

    from sklearn_flowspectrum._layouts import packet_rows_byte_map

    ip = bytes.fromhex("4500001d0001000040110000c0a80001c0a80002")
    packet = ip + struct.pack("!HHHH", 40000, 443, 9, 0) + b"x"
    row = np.zeros((1, 70), np.uint8)
    row[0, 32 : 32 + len(packet)] = np.frombuffer(packet, np.uint8)
    names = packet_rows_byte_map(row, packet_bytes=32)[0]
    assert (names[:32] == "pad").all()  # an empty slot
    assert names[32] == "ip.vhl" and names[32 + 12] == "ip.src"
    assert names[32 + 20] == "udp.sport" and names[32 + 28] == "payload"
    assert (names[32 + 29 :] == "pad").all()  # slot rest and the remainder
