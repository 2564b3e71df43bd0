"""read_sessions(split_size=...): a pcap read as byte ranges equals the serial read."""

import struct
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sklearn_flowspectrum import _sessions as sessions_module
from sklearn_flowspectrum import read_sessions
from sklearn_flowspectrum._split import pcap_ranges
from tests import _pcaps as P

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NDPI = DATA / "ndpi-pcaps" / "pcap"
USTC = DATA / "ustc-tfc2016"
T0 = 1_600_000_000_000_000_000


def _traffic(n_packets=400, seed=0, nanosecond=False):
    """Interleaved TCP and UDP sessions (IPv4 and IPv6), frames of random
    sizes, some sessions long (across many ranges), many short."""
    rng = np.random.default_rng(seed)
    packets = []
    for i in range(n_packets):
        s = int(rng.integers(0, 40)) if rng.random() < 0.7 else 100 + i  # long/new
        payload = bytes(rng.integers(0, 256, int(rng.integers(0, 300)), np.uint8))
        forward = rng.random() < 0.5
        sport, dport = (20000 + s, 443) if forward else (443, 20000 + s)
        if s % 3 == 0:
            l4, proto = P.udp(sport, dport, payload), 17
        else:
            l4, proto = P.tcp(sport, dport, payload, seq=i), 6
        a, b = (P.A4, P.B4) if forward else (P.B4, P.A4)
        if s % 5 == 0:
            a6, b6 = (P.A6, P.B6) if forward else (P.B6, P.A6)
            frame = P.eth(P.ipv6(l4, a6, b6, nxt=proto), 0x86DD)
        else:
            frame = P.eth(P.ipv4(l4, a, b, proto))
        if rng.random() < 0.05:
            frame = b"\x00" * 14  # not IP: counted as skipped
        packets.append((T0 + i * 1_000_003, frame))
    return packets


def _assert_same(path, **kwargs):
    serial, serial_report = read_sessions(path, return_report=True, **kwargs)
    for split_size in (1, 97, 1000, 5000, 40_000):
        split, split_report = read_sessions(
            path, return_report=True, split_size=split_size, **kwargs
        )
        pd.testing.assert_frame_equal(serial, split)
        pd.testing.assert_frame_equal(serial_report, split_report)
        assert serial.attrs == split.attrs
    return serial


def _record_offsets(path):
    data = Path(path).read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    offsets, at = [], 24
    while at + 16 <= len(data):
        offsets.append(at)
        at += 16 + struct.unpack_from(endian + "I", data, at + 8)[0]
    return offsets, len(data)


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_split_read_equals_serial_read(tmp_path, endian, nanosecond):
    path = P.write_pcap(
        tmp_path / "t.pcap", _traffic(), endian=endian, nanosecond=nanosecond
    )
    table = _assert_same(path)
    assert len(table) > 40 and table["packets"].max() > 10


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(flows=True),
        dict(keep_bytes=100, keep_packets=3),
        dict(keep_bytes=5000),
        dict(keep_bytes=0),
        dict(drop_empty=True, drop_duplicates="payload", labels="x"),
    ],
)
def test_split_read_equals_serial_read_with_options(tmp_path, kwargs):
    path = P.write_pcap(tmp_path / "t.pcap", _traffic(seed=1))
    _assert_same(path, **kwargs)


def test_ranges_start_at_records_and_cuts_fall_inside_records(tmp_path):
    path = P.write_pcap(tmp_path / "t.pcap", _traffic(seed=2))
    offsets, size = _record_offsets(path)
    for split_size in (1, 97, 1000):
        ranges = pcap_ranges(path, split_size)
        assert ranges[0][0] == 24 and ranges[-1][1] == size
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert {start for start, _ in ranges} <= set(offsets)
    # Most cuts at 1000 bytes fall inside a record: the range moves on.
    targets = [24 + k * 1000 for k in range(1, size // 1000)]
    assert len(set(targets) - set(offsets)) > len(targets) // 2
    assert len(pcap_ranges(path, 1000)) == len(targets) + 1


def test_parallel_ranges_equal_the_serial_read(tmp_path):
    import joblib

    path = P.write_pcap(tmp_path / "t.pcap", _traffic(n_packets=1500, seed=3))
    other = P.write_pcap(tmp_path / "u.pcap", _traffic(seed=4))
    serial = read_sessions([path, other])
    with joblib.parallel_config(backend="threading"):
        split = read_sessions([path, other], split_size=3000, n_jobs=2)
    pd.testing.assert_frame_equal(serial, split)


def _fake_chain(n=12):
    """Bytes that look like a chain of pcap records (1-byte frames)."""
    return b"".join(
        struct.pack("<IIII", 1_600_000_000, 5, 1, 1) + b"x" for _ in range(n)
    )


def test_a_false_chain_of_headers_falls_back_to_the_serial_read(tmp_path, monkeypatch):
    # Payloads that hold a chain of plausible record headers: a cut in
    # them resynchronises on the fake chain, the range before does not end
    # there, and the file is read whole.
    fake = _fake_chain()
    packets = [
        (T0 + i, P.eth(P.ipv4(P.udp(1000 + i % 4, 53, fake * 3), proto=17)))
        for i in range(30)
    ]
    path = P.write_pcap(tmp_path / "fake.pcap", packets)
    offsets, _ = _record_offsets(path)
    ranges = pcap_ranges(path, 300)
    assert {s for s, _ in ranges} - set(offsets), "no cut on the fake chain"
    whole = []
    real = sessions_module._read_one
    monkeypatch.setattr(
        sessions_module,
        "_read_one",
        lambda *a, **k: whole.append(a[0]) or real(*a, **k),
    )
    serial = read_sessions(path)
    split = read_sessions(path, split_size=300)
    pd.testing.assert_frame_equal(serial, split)
    assert whole == [str(path)] * 2  # the serial call, and the fallback


@pytest.mark.parametrize("damage", ["truncated_tail", "huge_record"])
def test_a_corrupt_file_is_reported_as_by_the_serial_read(tmp_path, damage):
    data = bytearray(P.pcap_bytes(_traffic(seed=5)))
    offsets, _ = _record_offsets_bytes(data)
    if damage == "truncated_tail":
        del data[-7:]
    else:
        struct.pack_into("<I", data, offsets[len(offsets) // 2] + 8, 1 << 30)
    path = P.write_bytes(tmp_path / "bad.pcap", bytes(data))
    with pytest.raises(ValueError) as serial_error:
        read_sessions(path)
    with pytest.raises(ValueError) as split_error:
        read_sessions(path, split_size=500)
    assert str(serial_error.value) == str(split_error.value)
    with pytest.warns(UserWarning) as serial_warnings:
        serial = read_sessions(path, on_error="warn", return_report=True)
    with pytest.warns(UserWarning) as split_warnings:
        split = read_sessions(path, on_error="warn", return_report=True, split_size=500)
    assert [str(w.message) for w in serial_warnings] == [
        str(w.message) for w in split_warnings
    ]
    pd.testing.assert_frame_equal(serial[0], split[0])
    pd.testing.assert_frame_equal(serial[1], split[1])


def _record_offsets_bytes(data):
    offsets, at = [], 24
    while at + 16 <= len(data):
        offsets.append(at)
        at += 16 + struct.unpack_from("<I", data, at + 8)[0]
    return offsets, len(data)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(statistics=True),
        dict(drop_retransmissions=True),
        dict(idle_timeout=0.01),
        dict(engine="python"),
    ],
)
def test_options_whose_state_crosses_ranges_read_the_file_whole(tmp_path, kwargs):
    path = P.write_pcap(tmp_path / "t.pcap", _traffic(seed=6))
    serial = read_sessions(path, **kwargs)
    pd.testing.assert_frame_equal(serial, read_sessions(path, split_size=97, **kwargs))


def test_pcapng_and_compressed_files_are_read_whole(tmp_path):
    import gzip

    packets = _traffic(seed=7)
    plain = P.write_pcap(tmp_path / "t.pcap", packets)
    gz = tmp_path / "t.pcap.gz"
    gz.write_bytes(gzip.compress(Path(plain).read_bytes()))
    ng = P.write_pcapng(
        tmp_path / "t.pcapng", [(1, 6)], [(0, ts, frame) for ts, frame in packets]
    )
    assert pcap_ranges(gz, 100) is None and pcap_ranges(ng, 100) is None
    for path in (gz, ng):
        pd.testing.assert_frame_equal(
            read_sessions(path), read_sessions(path, split_size=100)
        )


@pytest.mark.parametrize("split_size", [0, -5, 1.5, "1000", True])
def test_split_size_is_validated(tmp_path, split_size):
    path = P.write_pcap(tmp_path / "t.pcap", _traffic(n_packets=5))
    with pytest.raises(ValueError, match="split_size must be an int >= 1"):
        read_sessions(path, split_size=split_size)


def _shared_pcaps():
    found = []
    for folder in (NDPI, USTC):
        if folder.is_dir():
            found += sorted(p for p in folder.rglob("*") if p.is_file())
    return [p for p in found if pcap_ranges(p, 1 << 12)]


@pytest.mark.skipif(
    not NDPI.is_dir() and not USTC.is_dir(),
    reason=f"shared captures not found at {NDPI} or {USTC}",
)
def test_split_read_equals_serial_read_on_every_shared_capture():
    paths = _shared_pcaps()
    assert len(paths) > 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in paths:
            serial = read_sessions(path, on_error="ignore", return_report=True)
            split = read_sessions(
                path, on_error="ignore", return_report=True, split_size=1 << 12
            )
            pd.testing.assert_frame_equal(serial[0], split[0])
            pd.testing.assert_frame_equal(serial[1], split[1])


@pytest.mark.parametrize(
    "kwargs", [dict(keep_bytes=20), dict(keep_bytes=0, keep_packets=17)]
)
def test_budgets_carry_across_ranges_to_the_byte(tmp_path, kwargs):
    # One session of 1-byte payloads over many ranges: the kept frames end
    # at exactly the 20th byte of payload (or the 17th frame).
    packets = [
        (T0 + i, P.eth(P.ipv4(P.udp(1000, 53, b"x"), proto=17))) for i in range(40)
    ]
    path = P.write_pcap(tmp_path / "one.pcap", packets)
    assert len(pcap_ranges(path, 97)) > 20
    table = _assert_same(path, **kwargs)
    assert len(table["frames"][0]) == kwargs.get("keep_packets", 20)


@pytest.mark.parametrize("kwargs", [{}, dict(statistics=True), dict(keep_bytes=0)])
def test_answers_of_workers_pickle_to_themselves(tmp_path, kwargs):
    # What a worker sends back travels flat (Packed) and comes back equal.
    import pickle

    path = P.write_pcap(tmp_path / "t.pcap", _traffic(seed=8))
    empty = P.write_pcap(tmp_path / "e.pcap", [])
    for source in (path, empty):
        keep = (kwargs.get("keep_bytes", 784), 0)
        answer = sessions_module._read_one(
            str(source), False, keep, False, False, "raise", "auto",
            kwargs.get("statistics", False),
        )  # fmt: skip
        back = pickle.loads(pickle.dumps(sessions_module.Packed(answer))).value
        assert back[1] == answer[1]
        assert back[0].keys() == answer[0].keys()
        for k, v in answer[0].items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(back[0][k], v)
            else:
                assert list(back[0][k]) == list(v), k
    pd.testing.assert_frame_equal(
        read_sessions([path, empty], **kwargs),
        read_sessions([path, empty], n_jobs=2, **kwargs),  # loky: pickled
    )


def test_a_range_of_a_file_that_cannot_be_opened_is_an_error(tmp_path):
    # Not the serial fallback, which would hide that a worker cannot read
    # the file (the parent could): the error names it.
    from sklearn_flowspectrum import CaptureError

    gone = str(tmp_path / "gone.pcap")
    with pytest.raises(CaptureError, match="gone.pcap"):
        sessions_module._read_range(gone, (24, 1000), False, (784, 0))


def test_a_fifo_is_read_once_whole(tmp_path):
    # Cutting would read a FIFO's first bytes away (and block before a
    # writer opens it): it is never cut.
    import os
    import threading

    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    data = P.pcap_bytes(_traffic(seed=9))
    plain = P.write_bytes(tmp_path / "plain.pcap", data)
    fifo = tmp_path / "live"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    table = read_sessions(fifo, split_size=100)
    writer.join()
    expected = read_sessions(plain)
    assert len(table) == len(expected) > 0
    assert table.drop(columns="file").equals(expected.drop(columns="file"))


@pytest.mark.parametrize("middle", [False, True])
def test_ranges_without_sessions(tmp_path, middle):
    # Ranges of packets that are not IP only; one session in the middle one.
    junk = [b"\x00" * 60] * 20
    packets = junk + ([P.eth(P.ipv4(P.udp(1, 2, b"x"), proto=17))] if middle else [])
    path = P.write_pcap(tmp_path / "j.pcap", packets + junk)
    assert len(pcap_ranges(path, 100)) > 10
    table = _assert_same(path)
    assert len(table) == int(middle)
