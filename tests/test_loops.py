"""The compiled byte loops agree with their pure-Python versions."""

import ipaddress
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sklearn_flowspectrum._decode as decode_module
import sklearn_flowspectrum._layouts as layouts_module
import sklearn_flowspectrum._pcap as pcap_module
import sklearn_flowspectrum._pcapng as pcapng_module
import sklearn_flowspectrum._sessions as sessions_module
from sklearn_flowspectrum import PcapSessionVectorizer, _loops, read_sessions
from sklearn_flowspectrum._capture import iter_batches, iter_records
from sklearn_flowspectrum._records import PAD_BYTES, RecordBatch, strided
from tests import _pcaps as P
from tests.test_sessions import both_engines

compiled = pytest.mark.skipif(
    not _loops.COMPILED,
    reason="sklearn_flowspectrum._speedups was not built (no C compiler at "
    "install, or SKLEARN_FLOWSPECTRUM_PURE_PYTHON=1)",
)


def _record_bodies(rng, n, endian):
    out = bytearray()
    for _ in range(n):
        k = int(rng.integers(0, 300))
        out += struct.pack(endian + "IIII", 1, 2, k, k) + rng.bytes(k)
    return bytes(out)


@compiled
@pytest.mark.parametrize("big", [False, True])
def test_record_headers_match(big):
    rng = np.random.default_rng(0)
    body = _record_bodies(rng, 200, ">" if big else "<")
    cases = [b"", b"x" * 15, body[:16], body]
    # Every cut: the last header may fit while its body does not.
    cases += [body[:k] for k in rng.integers(0, len(body), 50).tolist()]
    # Garbage lengths (up to 4 GiB) end the walk the same way.
    cases += [rng.bytes(int(n)) for n in rng.integers(16, 5000, 20)]
    cases.append(b"\xff" * 64)
    for buf in cases:
        offsets, words = _loops.record_headers_py(memoryview(buf), big)
        got_offsets, got_words = _loops.record_headers(memoryview(buf), big)
        assert got_offsets.dtype == np.int64 and got_words.dtype == np.uint32
        np.testing.assert_array_equal(got_offsets, offsets)
        np.testing.assert_array_equal(got_words, words.reshape(-1, 4))
    offsets, words = _loops.record_headers(body, big)
    assert len(offsets) == 200 and offsets[0] == 0
    assert (words[:, :2] == [1, 2]).all() and (words[:, 2] == words[:, 3]).all()


def test_record_headers_python_walk():
    body = struct.pack("<IIII", 5, 6, 3, 3) + b"abc" + struct.pack("<IIII", 0, 0, 9, 9)
    offsets, words = _loops.record_headers_py(body, False)
    np.testing.assert_array_equal(offsets, [0, 19])
    np.testing.assert_array_equal(words, [[5, 6, 3, 3], [0, 0, 9, 9]])
    # Big-endian reading of the same length field: 3 << 24 bytes, past the end.
    offsets, words = _loops.record_headers_py(body, True)
    np.testing.assert_array_equal(offsets, [0])
    assert words.tolist() == [[5 << 24, 6 << 24, 3 << 24, 3 << 24]]


@compiled
def test_slices_and_copy_ranges_match():
    rng = np.random.default_rng(1)
    src = bytearray(rng.bytes(5000))
    starts = rng.integers(0, 4000, 300)
    lengths = rng.integers(0, 1000, 300)
    assert _loops.slices(src, starts, lengths) == _loops.slices_py(src, starts, lengths)
    assert _loops.slices(src, [], []) == []
    dst_c, dst_py = np.zeros(300 * 1000, np.uint8), np.zeros(300 * 1000, np.uint8)
    dst = np.arange(300) * 1000
    _loops.copy_ranges(dst_c, dst, src, starts, lengths)
    _loops.copy_ranges_py(dst_py, dst, src, starts, lengths)
    np.testing.assert_array_equal(dst_c, dst_py)
    assert dst_c.any()
    # Blanking: ranges of one width (the common case), mixed and empty ones.
    for widths in (np.full(300, 7), lengths, np.r_[0, -3, lengths[:50]]):
        at = starts[: len(widths)]
        zc, zpy = dst_c.copy(), dst_c.copy()
        _loops.zero_ranges(zc, at, widths)
        _loops.zero_ranges_py(zpy, at, widths)
        np.testing.assert_array_equal(zc, zpy)
        assert not zc[at[0] : at[0] + max(widths[0], 0)].any()


@compiled
def test_split_and_frame_packing_match():
    rng = np.random.default_rng(3)
    sessions = [
        tuple(rng.bytes(int(k)) for k in rng.integers(0, 300, int(m)))
        for m in rng.integers(0, 6, 200)
    ]
    counts, lengths = _loops.frame_lengths(sessions)
    counts_py, lengths_py = _loops.frame_lengths_py(sessions)
    np.testing.assert_array_equal(counts, counts_py)
    np.testing.assert_array_equal(lengths, lengths_py)
    assert counts.flags.writeable and lengths.dtype == np.int64
    # An object array of tuples (a table column) and bytes-like frames work too.
    column = np.empty(len(sessions), dtype=object)
    column[:] = sessions
    keep = rng.random(len(lengths)) < 0.6
    for frames in (sessions, column, [[bytearray(f) for f in s] for s in sessions]):
        for k in (None, keep):
            size = lengths.sum() if k is None else lengths[k].sum()
            got = _loops.join_frames(frames, size, k)
            assert isinstance(got, bytearray)
            assert got == _loops.join_frames_py(frames, size, k)
    addresses = np.r_[0, 2**32 - 1, 0x7F000001, rng.integers(0, 2**32, 500)]
    assert _loops.ipv4_strings(addresses) == _loops.ipv4_strings_py(addresses)
    assert _loops.ipv4_strings([0x0A000001]) == ["10.0.0.1"]
    texts = [
        "::", "::1", "1::", "::ffff:1.2.3.4", "::1.2.3.4", "1:0:0:2:0:0:3:4",
        "1:0:2:0:0:3::", "2001:db8::1", "1:2:3:4:5:6:7:0", "0:1:0:2:0:3:0:4",
        "fe80::abcd:0:0:1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ]  # fmt: skip
    numbers = [int(ipaddress.IPv6Address(t)) for t in texts]
    numbers += [int(x) for x in rng.integers(0, 2**63, 300, dtype=np.uint64)]
    numbers += [int(x) << 64 for x in rng.integers(0, 2**16, 50)]  # runs of zeros
    high = np.array([x >> 64 for x in numbers], dtype=np.uint64)
    low = np.array([x & (2**64 - 1) for x in numbers], dtype=np.uint64)
    got = _loops.ipv6_strings(high, low)
    assert got == _loops.ipv6_strings_py(high, low)
    assert got == [str(ipaddress.IPv6Address(x)) for x in numbers]
    flat = list(range(int(counts.sum())))
    bounds = np.r_[0, np.cumsum(counts)]
    assert _loops.split(flat, bounds) == _loops.split_py(flat, bounds)
    assert _loops.split(flat, bounds)[1] == tuple(flat[counts[0] : bounds[2]])
    assert _loops.split([], [0]) == []


@compiled
def test_session_index_matches():
    rng = np.random.default_rng(5)
    # 3,000 sessions whose keys differ in single words, over 7 batches.
    pool = np.tile(rng.integers(0, 2**63, 5, dtype=np.uint64), (3000, 1))
    pool[np.arange(3000), np.arange(3000) % 5] += np.arange(3000, dtype=np.uint64)
    c, py = _loops.SessionIndex(), _loops.SessionIndexPy()
    seen = set()
    for size in (1, 500, 2000, 0, 4000, 3000, 10):
        drawn = rng.integers(0, 3000, size)
        got, want = c.assign(pool[drawn]), py.assign(pool[drawn])
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
        seen.update(drawn.tolist())
        assert len(c) == len(py) == len(seen)
    assert len(seen) > 2048  # the table grew past its first sizes
    with pytest.raises(TypeError, match="n x 5"):
        c.assign(np.zeros((2, 4), np.uint64))
    with pytest.raises(RuntimeError, match="initialised"):
        type(c._index).__new__(type(c._index)).assign(pool[:1])


def test_session_index_python_groups_despite_hash_collisions(monkeypatch):
    # A hash that maps every key to one value: grouping falls back to sorting.
    keys = np.array([[1, 0, 0, 0, 0], [2, 0, 0, 0, 0], [1, 0, 0, 0, 0]], np.uint64)
    monkeypatch.setattr(_loops, "_H1", np.uint64(0))
    codes, first, ids = _loops.SessionIndexPy().assign(keys)
    assert codes.tolist() == [0, 1, 0] and first.tolist() == [0, 1]
    assert ids.tolist() == [0, 1]


@compiled
def test_compiled_loops_check_their_ranges():
    src = bytes(100)
    with pytest.raises(IndexError, match="outside"):
        _loops.slices(src, [90], [20])
    with pytest.raises(IndexError, match="outside"):
        _loops.slices(src, [-1], [2])
    assert _loops.slices(src, [-1, 200], [0, -2]) == [b"", b""]
    assert _loops.slices_py(src, [-1, 200], [0, -2]) == [b"", b""]
    dst = np.zeros(10, np.uint8)
    with pytest.raises(IndexError, match="outside"):
        _loops.copy_ranges(dst, [5], src, [0], [6])
    assert not dst.any()  # nothing written before the check
    with pytest.raises(ValueError, match="dst_starts must hold 1 items"):
        _loops.copy_ranges(dst, [0, 1], src, [0], [1])
    with pytest.raises(BufferError):
        _loops.copy_ranges(b"read-only", [0], src, [0], [1])
    with pytest.raises(IndexError, match="outside"):
        _loops.zero_ranges(dst, [8], [3])
    _loops.zero_ranges(dst, [-5], [0])  # empty ranges may point anywhere
    with pytest.raises(ValueError, match="not an IPv4 address"):
        _loops.ipv4_strings([2**32])
    with pytest.raises(IndexError, match="ascending"):
        _loops.split([1, 2, 3], [0, 2, 1])
    with pytest.raises(IndexError, match="ascending"):
        _loops.split([1, 2, 3], [0, 4])
    with pytest.raises(ValueError, match="shorter"):
        _loops.join_frames([[b"ab"]], 3)
    with pytest.raises(ValueError, match="larger"):
        _loops.join_frames([[b"ab"]], 1)
    with pytest.raises(ValueError, match="keep"):
        _loops.join_frames([[b"ab", b"c"]], 2, [True])
    with pytest.raises(TypeError):
        _loops.frame_lengths([[1]])


def test_whole_path_same_with_pure_python_loops(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    frames = []
    for i in range(400):
        k = int(rng.integers(0, 20))
        payload = rng.bytes(int(rng.integers(0, 300)))
        if i % 2:
            frames.append(P.eth(P.ipv4(P.udp(1000 + k, 53, payload), proto=17)))
        else:
            frames.append(P.eth(P.ipv6(P.tcp(443, 2000 + k, payload)), 0x86DD))
    path = P.write_pcap(tmp_path / "mix.pcap", frames)
    # Small chunks: records cut at chunk ends go through the carry.
    monkeypatch.setattr(sessions_module, "CHUNK_SIZE", 4096)
    table = read_sessions(path)
    images = PcapSessionVectorizer().fit(table).transform(table)
    monkeypatch.setattr(pcap_module, "record_headers", _loops.record_headers_py)
    monkeypatch.setattr(sessions_module, "slices", _loops.slices_py)
    monkeypatch.setattr(layouts_module, "copy_ranges", _loops.copy_ranges_py)
    table_py = read_sessions(path)
    pd.testing.assert_frame_equal(table, table_py)
    np.testing.assert_array_equal(
        images, PcapSessionVectorizer().fit(table_py).transform(table_py)
    )
    assert table["packets"].sum() == 400


# -- the compiled header decoder against the numpy one -----------------------------

NDPI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ndpi-pcaps"


def _frames_of_every_kind(rng):
    """Valid frames of each link type, then copies cut short and with header
    bytes overwritten, so that every decision of the decoder is taken."""
    seg = [
        (6, P.tcp(443, 1000, b"x" * 30)),
        (17, P.udp(53, 5353, b"y" * 12)),
        (6, P.tcp(1, 2, options=b"\x01" * 8)),
    ]
    ip = []
    for proto, l4 in seg:
        ip += [
            P.ipv4(l4, proto=proto),
            P.ipv4(l4, proto=proto, options=b"\x01" * 4),
            P.ipv4(l4, proto=proto, frag=0x2000),
            P.ipv4(l4, proto=proto, total=0),
            P.ipv6(l4, nxt=proto),
            P.ipv6(l4, nxt=proto, plen=0),
            P.ipv6(l4, nxt=proto, ext=[(0, b"")]),
            P.ipv4(P.ipv4(l4, proto=proto), proto=4),
            P.ipv4(P.ipv6(l4, nxt=proto), proto=41),
            P.ipv6(P.ipv4(P.ipv4(l4, proto=proto), proto=4), nxt=4),
        ]
    nested = P.ipv4(seg[0][1])
    for _ in range(6):  # deeper than the decoder follows
        nested = P.ipv4(nested, proto=4)
    ip += [nested, P.ipv4(b"icmp", proto=1), P.ipv6(b"icmp", nxt=58)]
    ethertype = {4: 0x0800, 6: 0x86DD}
    frames = []
    for packet in ip:
        et = ethertype[packet[0] >> 4]
        frames += [
            (1, P.eth(packet, et)),
            (1, P.eth(packet, et, vlans=[(0x8100, 5)])),
            (1, P.eth(packet, et, vlans=[(0x88A8, 1), (0x8100, 2)])),
            (1, P.eth(packet, et, vlans=[(0x8100, 1)] * 3)),
            (113, P.sll(packet, et)),
            (276, P.sll2(packet, et)),
            (0, P.null(packet)),
            (101, packet),
            (12, packet),
            (228 if et == 0x0800 else 229, packet),
            (228, packet),  # a link type that contradicts the header
        ]
    frames += [(1, P.eth(b"arp" * 10, 0x0806)), (113, P.sll(b"x" * 30, 0x0806))]
    frames += [(1, P.eth(b"\x11\x00" * 20, 0x8864)), (147, b"unknown" * 9)]
    out = list(frames)
    for lt, f in frames:
        for cut in sorted(set(rng.integers(0, len(f), 4).tolist())):
            out.append((lt, f[:cut]))
        for _ in range(6):
            g = bytearray(f)
            at = int(rng.integers(0, min(len(g), 80)))
            g[at] = int(rng.integers(0, 256))
            out.append((lt, bytes(g)))
    return out


def _batch(frames):
    data = b"".join(f for _, f in frames) + bytes(PAD_BYTES)
    lengths = np.array([len(f) for _, f in frames], dtype=np.int64)
    start = np.cumsum(lengths) - lengths
    lt = np.array([t for t, _ in frames], dtype=np.int64)
    return RecordBatch(data, start, lengths, lengths, np.zeros(len(lt), np.int64), lt)


def _assert_same_headers(batch):
    A = np.frombuffer(batch.data, np.uint8)
    U16 = strided(batch.data, ">u2", len(batch.data))
    args = (batch.start, batch.caplen, batch.linktype)
    want = decode_module._headers_numpy(A, U16, *args)
    got = decode_module._headers_compiled(batch.data, *args)
    np.testing.assert_array_equal(got[0], want[0])
    usable = want[0] == 0
    for g, w in zip(got[1:], want[1:]):
        w = np.broadcast_to(w, usable.shape)  # numpy's l3 may be one number
        np.testing.assert_array_equal(g[usable], w[usable])
    return want[0]


@compiled
def test_compiled_header_decoder_matches_numpy():
    rng = np.random.default_rng(4)
    frames = _frames_of_every_kind(rng)
    skip = _assert_same_headers(_batch(frames))
    # Every outcome occurs: usable, each skip reason, and undecided (dissect).
    assert set(skip.tolist()) >= {-1, 0, 1, 2, 3, 4, 5}
    # One link type per batch, as in a classic pcap file.
    for lt in sorted({t for t, _ in frames}):
        _assert_same_headers(_batch([x for x in frames if x[0] == lt]))


@pytest.mark.parametrize("linktype", [1, 113, 101, 229])
def test_damaged_frames_read_alike_by_both_engines(tmp_path, linktype):
    # End to end, through whichever decoder is in use, the session builder
    # and dissect(): the same table and accounting as the reference path.
    rng = np.random.default_rng(linktype)
    frames = [f for lt, f in _frames_of_every_kind(rng) if lt == linktype]
    path = P.write_pcap(tmp_path / "damaged.pcap", frames, linktype=linktype)
    table, report = both_engines(path)
    assert report["packets"].sum() == len(frames)
    assert 0 < report["used"].sum() < len(frames)
    assert report["truncated"].sum() > 0


@compiled
def test_compiled_header_decoder_checks_its_arguments():
    batch = _batch([(1, P.eth(P.ipv4(P.tcp())))])
    with pytest.raises(IndexError, match="outside"):
        decode_module._headers_compiled(
            batch.data, batch.start + len(batch.data), batch.caplen, batch.linktype
        )
    with pytest.raises(ValueError, match="items"):
        decode_module._headers_compiled(
            batch.data, batch.start, batch.caplen[:0], batch.linktype
        )


@compiled
@pytest.mark.skipif(not NDPI.is_dir(), reason=f"needs the nDPI captures in {NDPI}")
def test_compiled_header_decoder_matches_numpy_on_ndpi():
    files = sorted((NDPI / "pcap").iterdir())
    seen = 0
    for path in files:
        try:
            for batch in iter_batches(path):
                _assert_same_headers(batch)
                seen += len(batch.start)
        except ValueError:  # corrupt files end early; what came before counts
            pass
    assert seen > 100_000


# -- pcapng: compiled runs of packet blocks against the block-by-block reader ------

T0 = 1_600_000_000_123_456_000


def _pcapng_variants():
    frames = [
        P.eth(P.ipv4(P.tcp(443, 1000 + i, b"x" * (i * 37 % 200)))) for i in range(30)
    ]
    many = [(i % 2, T0 + 1000 * i, f) for i, f in enumerate(frames)]
    ok = P.pcapng_section([(1, 6), (1, 9)], many)
    mixed = P.pcapng_section(
        [(1, None), (101, 9), (113, 0x80 | 20), (1, 3, 0, 100)],
        [
            (0, T0, frames[0]),
            (1, T0 + 123, P.ipv6(P.udp(1, 2, b"v6"), nxt=17)),
            (2, T0 - T0 % 10**9, P.sll(P.ipv4(P.udp(7, 8, b"s"), proto=17))),
            (3, T0 - T0 % 10**6, frames[1]),
            (0, T0 + 5000, frames[2], "pb"),
            (0, 0, frames[3][:40], "spb", len(frames[3])),
            *many[:10],
        ],
        endian=">",
    )
    two_sections = ok + P.pcapng_section([(101, 9)], [(0, T0, frames[4])], endian=">")
    plain = P.pcapng_section([(1, 6), (1, 9)], many, extra_blocks=False)
    first = plain.index(frames[0]) - 28  # the first packet block
    second = first + struct.unpack_from("<I", plain, first + 4)[0]
    cases = {
        "ok": ok,
        "mixed": mixed,
        "two sections": two_sections,
        "cut short": plain[:-6],
        "truncated block header": plain + b"\x06\x00",
        "bad trailer": plain[:-4] + bytes(4),
    }
    bad_iface = bytearray(plain)
    bad_iface[second + 8 : second + 12] = struct.pack("<I", 7)
    cases["unknown interface"] = bytes(bad_iface)
    long_caplen = bytearray(plain)
    long_caplen[second + 20 : second + 24] = struct.pack("<I", 10_000)
    cases["caplen past the block"] = bytes(long_caplen)
    odd_length = bytearray(plain)
    odd_length[second + 4 : second + 8] = struct.pack("<I", 30)
    cases["bad length"] = bytes(odd_length)
    # Milliseconds: 10**13 of them do not fit 64-bit nanoseconds.
    cases["timestamp out of range"] = P.pcapng_section(
        [(1, 3)], [(0, T0 - T0 % 10**6, frames[0]), (0, 10**19, frames[1])]
    )
    return cases


def _via_batches(path):
    out, err = [], None
    try:
        for b in iter_batches(path):
            for s, c, o, t, lt in zip(
                b.start, b.caplen, b.orig_len, b.ts_ns, b.linktype
            ):
                out.append((int(t), bytes(b.data[s : s + c]), int(o), int(lt)))
    except ValueError as exc:
        err = str(exc)
    return out, err


def _via_records(path):
    out, err = [], None
    try:
        out.extend(tuple(r) for r in iter_records(path))
    except ValueError as exc:
        err = str(exc)
    return out, err


@pytest.mark.parametrize("case", sorted(_pcapng_variants()))
@pytest.mark.parametrize("chunk", [64, 200, 1000, 1 << 22])
def test_pcapng_packet_runs_read_as_block_by_block(tmp_path, monkeypatch, case, chunk):
    # Small read-ahead buffers: blocks straddle them and runs stop at their ends.
    monkeypatch.setattr(pcapng_module, "DEFAULT_CHUNK_SIZE", chunk)
    path = P.write_bytes(tmp_path / "x.pcapng", _pcapng_variants()[case])
    batched, batched_err = _via_batches(path)
    records, records_err = _via_records(path)
    assert batched == records
    assert batched_err == records_err
    assert (records_err is None) == (case in ("ok", "mixed", "two sections"))
    assert len(records) > 0
    if case == "timestamp out of range":
        assert "outside the years 1677 to 2262" in records_err
