"""Capture reading: pcap/pcapng records, bad input, and the numpy decoder."""

import os
import struct

import numpy as np
import pytest

from sklearn_flowspectrum import CaptureError, iter_records
from sklearn_flowspectrum._capture import capture_format, decode_batch, iter_batches
from sklearn_flowspectrum._decode import _SKIP_CODE
from sklearn_flowspectrum._layers import dissect
from tests import _pcaps as P

T0 = 1_600_000_000_123_456_000  # a timestamp representable in microseconds


def _frames():
    return [
        P.eth(P.ipv4(P.tcp(1000, 80, b"GET /"))),
        P.eth(P.ipv4(P.udp(53, 5353, b"answer"), P.B4, P.A4, 17)),
        P.eth(P.ipv6(P.tcp(443, 5000, b"x" * 300)), 0x86DD),
    ]


# -- classic pcap ----------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path, endian, nanosecond):
    frames = _frames()
    step = 1 if nanosecond else 1000  # ns resolution keeps the last digits
    pkts = [
        (T0 + i * 1_000_000 + 7 * step, f, len(f) + i) for i, f in enumerate(frames)
    ]
    path = P.write_pcap(
        tmp_path / "a.pcap", pkts, endian=endian, nanosecond=nanosecond, linktype=1
    )
    assert capture_format(path) == "pcap"
    got = list(iter_records(path))
    assert [(r.ts_ns, r.frame, r.orig_len, r.linktype) for r in got] == [
        (t, f, o, 1) for t, f, o in pkts
    ]


def test_pcap_chunk_boundaries_give_the_same_records(tmp_path):
    frames = [P.eth(P.ipv4(P.udp(1, 2, bytes(i)), proto=17)) for i in range(200)]
    path = P.write_pcap(tmp_path / "c.pcap", frames)
    whole = [
        (b.data[s : s + c], t)
        for b in iter_batches(path)
        for s, c, t in zip(b.start, b.caplen, b.ts_ns)
    ]
    for chunk in (17, 100, 1000):
        batches = list(iter_batches(path, chunk_size=chunk))
        assert len(batches) > 1
        small = [
            (b.data[s : s + c], t)
            for b in batches
            for s, c, t in zip(b.start, b.caplen, b.ts_ns)
        ]
        assert small == whole
    assert [f for f, _ in whole] == frames


def test_pcap_linktype_fcs_bits_are_masked(tmp_path):
    data = bytearray(P.pcap_bytes(_frames(), linktype=1))
    data[20:24] = struct.pack("<I", 0x40000001)  # FCS length 4 in the upper bits
    path = P.write_bytes(tmp_path / "fcs.pcap", bytes(data))
    assert {r.linktype for r in iter_records(path)} == {1}


def test_empty_capture_has_no_records(tmp_path):
    path = P.write_pcap(tmp_path / "e.pcap", [])
    assert list(iter_records(path)) == []
    ng = P.write_pcapng(tmp_path / "e.pcapng", [(1, None)], [])
    assert list(iter_records(ng)) == []


# -- pcapng ------------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_interfaces_blocks_and_resolutions(tmp_path, endian):
    raw6 = P.ipv6(P.udp(1, 2, b"v6"), nxt=17)
    interfaces = [
        (1, None),  # Ethernet, default microseconds
        (101, 9),  # raw IP, nanoseconds
        (113, 0x80 | 20),  # SLL, 2**-20 s
        (1, 3, 0, 100),  # milliseconds with a 100 s offset
    ]
    t_ms = T0 - T0 % 1_000_000
    t_pow2 = (T0 << 20) // 10**9 * 10**9 >> 20  # exactly representable in 2**-20
    pkts = [
        (0, T0, _frames()[0]),
        (1, T0 + 123, raw6),
        (2, t_pow2, P.sll(P.ipv4(P.udp(7, 8, b"s"), proto=17))),
        (3, t_ms, _frames()[1]),
        (0, T0 + 5000, _frames()[2], "pb"),
        (0, 0, _frames()[0][:40], "spb", len(_frames()[0])),
    ]
    path = P.write_pcapng(tmp_path / "m.pcapng", interfaces, pkts, endian=endian)
    assert capture_format(path) == "pcapng"
    got = [tuple(r) for r in iter_records(path)]
    want_ts = [T0, T0 + 123, t_pow2, t_ms, T0 + 5000, 0]
    assert [g[0] for g in got] == want_ts
    assert [g[3] for g in got] == [1, 101, 113, 1, 1, 1]
    assert [g[1] for g in got] == [p[2] for p in pkts]
    # The simple packet block's original length exceeds what it holds.
    assert got[-1][2] == len(_frames()[0]) and len(got[-1][1]) == 40


def test_pcapng_several_sections(tmp_path):
    a = P.pcapng_section([(1, 6)], [(0, T0, _frames()[0])], endian="<")
    b = P.pcapng_section(
        [(101, 9), (1, 6)],
        [(1, T0 + 1000, _frames()[1]), (0, T0 + 7, P.ipv4(P.udp(), proto=17))],
        endian=">",
    )
    path = P.write_bytes(tmp_path / "s.pcapng", a + b)
    got = list(iter_records(path))
    assert [(r.ts_ns, r.linktype) for r in got] == [
        (T0, 1),
        (T0 + 1000, 1),
        (T0 + 7, 101),
    ]


def test_pcapng_batches_match_records(tmp_path):
    pkts = [(i % 2, T0 + i, f) for i, f in enumerate(_frames() * 5)]
    path = P.write_pcapng(tmp_path / "b.pcapng", [(1, 6), (1, 9)], pkts)
    batched = [
        (b.data[s : s + c], t, lt)
        for b in iter_batches(path)
        for s, c, t, lt in zip(b.start, b.caplen, b.ts_ns, b.linktype)
    ]
    assert batched == [(r.frame, r.ts_ns, r.linktype) for r in iter_records(path)]


# -- bad input -------------------------------------------------------------------


def _read_all(path):
    out = []
    with pytest.raises(ValueError) as info:
        for rec in iter_records(path):
            out.append(rec)
    return out, info.value


def _good_pcap():
    return P.pcap_bytes(_frames())


def _good_pcapng():
    pkts = [(0, T0 + i, f) for i, f in enumerate(_frames())]
    return P.pcapng_section([(1, 6)], pkts, extra_blocks=False)


def test_zero_length_file(tmp_path):
    path = P.write_bytes(tmp_path / "zero.pcap", b"")
    got, err = _read_all(path)
    assert got == [] and isinstance(err, CaptureError)
    assert str(err) == f"{path}: empty file (0 bytes), not a capture"
    assert err.offset == 0 and err.file == str(path)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"GIF89a" + bytes(30), "not a pcap or pcapng file (magic 47494638 at byte 0)"),
        (b"ab", "not a pcap or pcapng file (magic 6162 at byte 0)"),
        (b"\x1f\x8b\x08\x00" + bytes(40), "gzip data is corrupt"),
        (struct.pack("<I", 0xA1B2CD34) + bytes(20), "modified (Kuznetzov) pcap"),
    ],
)
def test_wrong_magic(tmp_path, data, message):
    path = P.write_bytes(tmp_path / "bad.pcap", data)
    got, err = _read_all(path)
    assert got == [] and message in str(err) and str(path) in str(err)


def test_truncated_global_header(tmp_path):
    path = P.write_bytes(tmp_path / "t.pcap", _good_pcap()[:10])
    _, err = _read_all(path)
    assert "truncated pcap global header at byte 0: 10 of 24 bytes" in str(err)


def test_record_running_past_end_of_file(tmp_path):
    data = _good_pcap()
    cut = data[:-12]  # the last frame loses 12 bytes
    path = P.write_bytes(tmp_path / "cut.pcap", cut)
    got, err = _read_all(path)
    assert len(got) == 2  # the records before the damage are delivered
    last = 24 + sum(16 + len(f) for f in _frames()[:2])
    claim = len(_frames()[2])
    assert str(err) == (
        f"{path}: record at byte {last} claims {claim} bytes but only "
        f"{claim - 12} remain"
    )
    assert err.offset == last


def test_truncated_record_header(tmp_path):
    data = _good_pcap() + b"\x01\x02\x03\x04\x05"
    path = P.write_bytes(tmp_path / "h.pcap", data)
    got, err = _read_all(path)
    assert len(got) == 3
    assert f"truncated record header at byte {len(data) - 5}: 5 of 16 bytes" in str(err)


def test_absurd_record_length(tmp_path):
    data = bytearray(_good_pcap())
    at = 24 + 16 + len(_frames()[0])
    data[at + 8 : at + 12] = struct.pack("<I", 0x7FFFFFF0)
    path = P.write_bytes(tmp_path / "absurd.pcap", bytes(data))
    got, err = _read_all(path)
    assert len(got) == 1
    assert f"record at byte {at} claims {0x7FFFFFF0} bytes, more than the limit" in (
        str(err)
    )
    assert err.offset == at


def test_absurd_record_length_in_a_later_chunk(tmp_path):
    frames = [P.eth(P.ipv4(P.udp(1, 2, bytes(50)), proto=17))] * 50
    data = bytearray(P.pcap_bytes(frames))
    rec = 16 + len(frames[0])
    at = 24 + 40 * rec
    data[at + 8 : at + 12] = struct.pack("<I", 300000)
    path = P.write_bytes(tmp_path / "absurd2.pcap", bytes(data))
    n = 0
    with pytest.raises(CaptureError, match=f"record at byte {at} claims 300000"):
        for b in iter_batches(path, chunk_size=1000):
            n += len(b.start)
    assert n == 40


def test_directory_missing_and_special_files(tmp_path):
    for path, msg in [
        (tmp_path, "is a directory, not a capture file"),
        (tmp_path / "nope.pcap", "no such file"),
    ]:
        with pytest.raises(ValueError, match=msg):
            list(iter_records(path))
    if os.path.exists("/dev/null"):
        # A character device is read like a stream: here, an empty one.
        with pytest.raises(ValueError, match="empty file"):
            list(iter_records("/dev/null"))
    if os.path.exists("/dev/log") and not os.path.isdir("/dev/log"):
        with pytest.raises(ValueError, match="not a regular file, a FIFO"):
            list(iter_records("/dev/log"))
    with pytest.raises(TypeError, match="a path, '-' .standard input. or a binary"):
        list(iter_records(3))


@pytest.mark.parametrize(
    "mangle, n_good, message",
    [
        (lambda d: d[:-6], 2, "claims"),  # last block cut short
        (lambda d: d + b"\x06\x00", 3, "truncated block header"),
        (lambda d: d[:-4] + b"\x00\x00\x00\x00", 2, "ends with length 0, not"),
    ],
)
def test_pcapng_corruption(tmp_path, mangle, n_good, message):
    path = P.write_bytes(tmp_path / "bad.pcapng", mangle(_good_pcapng()))
    got, err = _read_all(path)
    assert len(got) == n_good
    assert message in str(err) and str(path) in str(err) and "at byte" in str(err)


def test_pcapng_bad_byte_order_magic_and_lengths(tmp_path):
    data = bytearray(_good_pcapng())
    data[8:12] = b"\x00\x11\x22\x33"
    path = P.write_bytes(tmp_path / "bom.pcapng", bytes(data))
    assert "bad byte-order magic" in str(_read_all(path)[1])
    data = bytearray(_good_pcapng())
    shb = struct.unpack_from("<I", data, 4)[0]
    data[shb + 4 : shb + 8] = struct.pack("<I", 13)  # IDB length not a multiple of 4
    path = P.write_bytes(tmp_path / "len.pcapng", bytes(data))
    _, err = _read_all(path)
    assert f"block at byte {shb} (type 0x1) has an invalid length 13" in str(err)


def test_pcapng_packet_for_an_undefined_interface(tmp_path):
    head = P.pcapng_section([(1, 6)], [(0, T0, _frames()[0])], extra_blocks=False)
    frame = _frames()[1]
    body = struct.pack("<IIIII", 3, 0, 0, len(frame), len(frame)) + frame
    body += b"\0" * (-len(body) % 4)
    epb = (
        struct.pack("<II", 6, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    )
    path = P.write_bytes(tmp_path / "if.pcapng", head + epb)
    got, err = _read_all(path)
    assert len(got) == 1
    assert f"packet block at byte {len(head)} refers to interface 3" in str(err)


def test_pcapng_simple_packet_without_interface(tmp_path):
    shb = P.pcapng_section([], [], extra_blocks=False)
    spb = struct.pack("<III", 3, 20, 4) + b"abcd" + struct.pack("<I", 20)
    path = P.write_bytes(tmp_path / "spb.pcapng", shb + spb)
    assert "defines no interface" in str(_read_all(path)[1])


def _read_both_ways(path):
    """Packets and error (or None) through the record path and the batch path."""
    out = []
    for batched in (False, True):
        packets, error = [], None
        try:
            if batched:
                for b in iter_batches(path):
                    packets.extend(
                        (int(t), bytes(b.data[s : s + c]), int(o), int(lt))
                        for s, c, o, t, lt in zip(
                            b.start, b.caplen, b.orig_len, b.ts_ns, b.linktype
                        )
                    )
            else:
                packets.extend(tuple(r) for r in iter_records(path))
        except CaptureError as exc:
            error = exc
        out.append((packets, error))
    return out


@pytest.mark.parametrize("kind", list(P.PCAPNG_BLOCK_TYPES))
def test_pcapng_block_fuzz(tmp_path, kind):
    # A block of every type with every body length from 0 to 40 bytes (zeros,
    # 0xFF bytes, or the start of a real body) between two good sections:
    # reading gives the packets before it and then either goes on or raises a
    # CaptureError naming the file and an offset inside the block; both paths
    # agree.  A 12-byte simple packet block once raised struct.error.
    frame = P.eth(P.ipv4(P.udp(5000, 53, b"good"), proto=17))
    endings = set()
    for n in range(41):
        for fill in P.FUZZ_FILLS:
            data, start, stop = P.pcapng_fuzz_file(kind, n, fill)
            path = P.write_bytes(tmp_path / f"{kind}-{n}-{fill}.pcapng", data)
            (records, rec_err), (batched, batch_err) = _read_both_ways(path)
            case = f"{kind}, body of {n} bytes, {fill}"
            assert records == batched, case
            assert str(rec_err) == str(batch_err), case
            assert records[0][1] == frame, case
            if rec_err is None:
                assert records[-1][1] == frame and len(records) >= 2, case
                endings.add("read")
            else:
                assert rec_err.file == str(path), case
                assert start <= rec_err.offset < stop, (case, str(rec_err))
                assert str(rec_err).startswith(f"{path}: "), case
                assert f"at byte {start}" in str(rec_err), (case, str(rec_err))
                endings.add("error")
    # every kind has lengths that are refused (not a multiple of 4)
    assert "error" in endings


def test_pcapng_short_simple_packet_block(tmp_path):
    for endian in "<>":
        data, start, _ = P.pcapng_fuzz_file("spb", 0, "zeros", endian=endian)
        path = P.write_bytes(tmp_path / f"spb{endian == '<'}.pcapng", data)
        for packets, err in _read_both_ways(path):
            assert len(packets) == 1
            assert str(err) == (
                f"{path}: simple packet block at byte {start} is too short: 12 "
                "bytes, its fixed fields need 16"
            )


def test_short_simple_packet_block_in_the_vectorizer(tmp_path):
    from sklearn_flowspectrum import PcapSessionVectorizer

    data, start, _ = P.pcapng_fuzz_file("spb", 0, "zeros")
    bad = P.write_bytes(tmp_path / "spb.pcapng", data)
    good = P.write_bytes(tmp_path / "good.pcapng", _good_pcapng())
    vectorizer = PcapSessionVectorizer().fit([good])
    with pytest.raises(
        CaptureError, match=f"spb.pcapng: simple packet block at byte {start}"
    ):
        vectorizer.transform([good, bad])


def test_capture_error_pickles():
    import pickle

    err = pickle.loads(pickle.dumps(CaptureError("x.pcap", 12, "boom")))
    assert (str(err), err.offset, err.file) == ("x.pcap: boom", 12, "x.pcap")


# -- the numpy decoder agrees with dissect() ---------------------------------------


def _odd_frames():
    """(frame, linktype) of every link type plus the awkward cases."""
    ip4 = P.ipv4(P.tcp(1, 2, b"data"))
    ip4u = P.ipv4(P.udp(3, 4, b"dns"), proto=17)
    ip6 = P.ipv6(P.tcp(5, 6, b"six"))
    out = [
        (P.eth(ip4), 1),
        (P.eth(ip4u), 1),
        (P.eth(ip6, 0x86DD), 1),
        (P.eth(ip4, vlans=[(0x8100, 5)]), 1),
        (P.eth(ip6, 0x86DD, vlans=[(0x88A8, 1), (0x8100, 2)]), 1),
        (P.eth(ip4, vlans=[(0x8100, 1)] * 3), 1),  # three tags: dissect()
        (P.eth(b"\x00\x01\x08\x00\x06\x04", 0x0806), 1),  # ARP
        (P.eth(b"\x11\x00\x00\x01\x00\x00\x00\x21" + ip4, 0x8864), 1),  # PPPoE
        (P.eth(struct.pack("!I", (16 << 12) | 0x100 | 64) + ip4, 0x8847), 1),
        (P.eth(ip4)[:13], 1),  # shorter than the Ethernet header
        (P.eth(ip4, vlans=[(0x8100, 1)])[:16], 1),
        (P.eth(ip4, pad=False)[:30], 1),  # IP header cut
        (P.eth(ip4, pad=False)[:40], 1),  # TCP header cut
        (P.eth(P.ipv4(P.tcp(1, 2, b"x", options=b"\x01" * 12)), pad=False)[:60], 1),
        (P.eth(P.ipv4(P.tcp(1, 2, b"y"), frag=0x2000)), 1),  # more fragments
        (P.eth(P.ipv4(P.udp(1, 2, b"y"), proto=17, frag=0x0010)), 1),  # offset
        (P.eth(P.ipv4(P.tcp(1, 2, b"z"), total=0)), 1),  # TSO: total length 0
        (P.eth(P.ipv4(P.tcp(1, 2, b"z"), total=30)), 1),  # ends inside TCP
        (P.eth(P.ipv4(P.tcp(1, 2, b"z"), total=12)), 1),  # shorter than header
        (P.eth(P.ipv4(P.udp(1, 2), proto=17, total=24)), 1),
        (P.eth(P.ipv4(b"\x08\x00" + bytes(10), proto=1)), 1),  # ICMP
        (P.eth(P.ipv4(P.tcp(1, 2, b"o"), options=b"\x01\x01\x01\x00")), 1),
        (P.eth(P.ipv4(ip4, proto=4)), 1),  # IP in IP
        (P.eth(P.ipv4(ip6, proto=41)), 1),  # 6in4
        (P.eth(b"\x45" + bytes(19)), 1),  # zero IHL... (0x45 ok, rest zero)
        (P.eth(b"\x42" + bytes(30)), 1),  # IHL 2
        (P.eth(b"\x60" + bytes(50), 0x0800), 1),  # version mismatch
        (P.eth(P.tcp(1, 2)[:12] + b"\x30" + bytes(7)), 1),
        (P.eth(P.ipv4(P.tcp(1, 2)[:12] + b"\x30" + bytes(7))), 1),  # doff 12
        (
            P.eth(P.ipv6(P.udp(7, 8, b"e"), nxt=17, ext=[(0, b"\x01\x02"), (60, b"")])),
            1,
        ),
        (
            P.eth(P.ipv6(P.udp(7, 8), nxt=17, ext=[(44, b"\x00\x01\x00\x00\x00\x01")])),
            1,
        ),
        (
            P.eth(P.ipv6(P.udp(7, 8), nxt=17, ext=[(44, b"\x00\x08\x00\x00\x00\x01")])),
            1,
        ),
        (P.eth(P.ipv6(P.udp(7, 8), nxt=17, plen=0)), 1),  # jumbo / TSO
        (P.eth(P.ipv6(b"\x80" + bytes(7), nxt=58)), 1),  # ICMPv6
        (P.sll(ip4), 113),
        (P.sll(ip6, 0x86DD), 113),
        (P.sll(ip4)[:15], 113),
        (P.sll(ip4, 0x8100), 113),
        (P.sll2(ip4), 276),
        (P.sll2(ip6, 0x86DD), 276),
        (P.null(ip4), 0),
        (P.null(ip4, byteorder="big"), 0),
        (P.null(ip6, 30), 0),
        (P.null(ip6, 24, "big"), 108),
        (P.null(ip4, 7), 0),
        (ip4, 101),
        (ip6, 101),
        (ip4u, 12),
        (ip4, 14),
        (ip4u, 228),
        (ip6, 229),
        (ip6, 228),  # announced IPv4 but holds IPv6
        (b"\x10" + bytes(30), 101),  # raw, not IP
        (b"", 101),
        (b"", 1),
        (ip4, 9),  # PPP: unknown to both
        (ip4, 147),
    ]
    return out


def _batch_of(frames_lts):
    from sklearn_flowspectrum._records import PAD_BYTES, RecordBatch

    frames = [f for f, _ in frames_lts]
    caplen = np.array([len(f) for f in frames], dtype=np.int64)
    start = np.cumsum(caplen) - caplen
    n = len(frames)
    return RecordBatch(
        b"".join(frames) + bytes(PAD_BYTES),
        start,
        caplen,
        caplen.copy(),
        np.arange(n, dtype=np.int64),
        np.array([lt for _, lt in frames_lts], dtype=np.int64),
    )


def _address_bytes(version, hi, lo):
    if version == 4:
        return int(hi).to_bytes(4, "big")
    return int(hi).to_bytes(8, "big") + int(lo).to_bytes(8, "big")


def assert_decoded_like_dissect(batch, dec):
    """Every packet of ``batch`` decodes as dissect() says."""
    usable = []
    for i in range(len(batch.start)):
        s, c = int(batch.start[i]), int(batch.caplen[i])
        d = dissect(batch.data[s : s + c], int(batch.linktype[i]))
        code = 0 if d.skip is None else _SKIP_CODE[d.skip]
        assert dec.skip[i] == code, (i, d.skip, dec.skip[i])
        if code == 0:
            usable.append((i, s, d))
    assert dec.idx.tolist() == [i for i, _, _ in usable]
    for j, (_, s, d) in enumerate(usable):
        v = int(dec.ip_version[j])
        got = (
            v,
            int(dec.proto[j]),
            _address_bytes(v, dec.src_hi[j], dec.src_lo[j]),
            _address_bytes(v, dec.dst_hi[j], dec.dst_lo[j]),
            int(dec.sport[j]),
            int(dec.dport[j]),
            int(dec.l4[j]) - s,
            int(dec.payload[j]) - s,
            int(dec.payload_end[j]) - s,
        )
        want = (
            d.ip_version,
            d.proto,
            d.src,
            d.dst,
            d.sport,
            d.dport,
            d.l4,
            d.payload,
            d.payload_end,
        )
        assert got == want, j


def test_decode_batch_agrees_with_dissect_on_every_case():
    cases = _odd_frames()
    batch = _batch_of(cases)
    dec = decode_batch(batch)
    assert_decoded_like_dissect(batch, dec)
    # The plain cases are decided without dissect().
    assert dec.n_dissected < len(cases) // 2
    # Every skip reason is exercised.
    assert set(dec.skip.tolist()) == set(range(len(_SKIP_CODE) + 1))


def test_decode_batch_in_one_shuffled_batch():
    cases = _odd_frames() * 3
    rng = np.random.default_rng(0)
    cases = [cases[i] for i in rng.permutation(len(cases))]
    batch = _batch_of(cases)
    assert_decoded_like_dissect(batch, decode_batch(batch))


def test_decode_empty_batch():
    dec = decode_batch(_batch_of([]))
    assert len(dec.skip) == 0
