"""Capture sources read front to back: compressed files, file objects, FIFOs,
standard input (sklearn_flowspectrum._sources)."""

import bz2
import gzip
import io
import lzma
import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from sklearn_flowspectrum import CaptureError, iter_records, read_sessions
from sklearn_flowspectrum._capture import iter_batches, open_capture
from sklearn_flowspectrum._sources import COMPRESSED_SUFFIXES
from tests import _pcaps as P

COMPRESSORS = {".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress}


def _packets(n_sessions=6):
    frames = []
    for k in range(n_sessions):
        conv = P.tcp_conversation(sport=40000 + k, requests=(b"q" * (k + 1),))
        frames.extend(P.eth(ip) for ip in conv)
    return frames


def _pcap():
    return P.pcap_bytes(_packets())


def _pcapng(extra_blocks=True):
    packets = [(0, 1_600_000_000_000_000_000 + i, f) for i, f in enumerate(_packets())]
    return P.pcapng_section([(1, 9)], packets, extra_blocks=extra_blocks)


def _sessions_of(table):
    """A table without its ``file`` column, to compare sources."""
    return table.drop(columns="file").reset_index(drop=True)


@pytest.fixture(params=["pcap", "pcapng"])
def capture(request, tmp_path):
    data = _pcap() if request.param == "pcap" else _pcapng()
    path = P.write_bytes(tmp_path / f"plain.{request.param}", data)
    return data, path, read_sessions(path)


def test_the_suffixes_follow_the_standard_library():
    assert set(COMPRESSORS) <= set(COMPRESSED_SUFFIXES)


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_compressed_captures_read_like_plain_ones(tmp_path, capture, suffix):
    data, path, plain = capture
    packed = P.write_bytes(tmp_path / f"c{suffix}", COMPRESSORS[suffix](data))
    table = read_sessions(packed)
    pd.testing.assert_frame_equal(_sessions_of(table), _sessions_of(plain))
    assert set(table["file"]) == {str(packed)}
    assert [tuple(r) for r in iter_records(packed)] == [
        tuple(r) for r in iter_records(path)
    ]
    python = read_sessions(packed, engine="python")
    pd.testing.assert_frame_equal(_sessions_of(python), _sessions_of(plain))


def test_folders_hold_compressed_captures(tmp_path):
    folder = tmp_path / "captures"
    folder.mkdir()
    P.write_bytes(folder / "a.pcap.gz", gzip.compress(_pcap()))
    P.write_bytes(folder / "b.pcapng.xz", lzma.compress(_pcapng()))
    P.write_bytes(folder / "notes.txt.gz", gzip.compress(b"not a capture"))
    table, report = read_sessions(folder, return_report=True)
    assert [os.path.basename(f) for f in report["file"]] == [
        "a.pcap.gz",
        "b.pcapng.xz",
    ]
    assert len(table) == 12


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_a_damaged_compressed_capture_names_the_file(tmp_path, suffix):
    packed = COMPRESSORS[suffix](_pcap())
    path = P.write_bytes(tmp_path / f"cut{suffix}", packed[: len(packed) // 2])
    with pytest.raises(CaptureError, match=str(path)):
        read_sessions(path)
    # With on_error="warn" the packets before the damage are kept.
    with pytest.warns(UserWarning, match=str(path)):
        _, report = read_sessions(path, on_error="warn", return_report=True)
    assert report.loc[0, "error"] is not None


def test_binary_file_objects(capture):
    data, _, plain = capture
    table = read_sessions(io.BytesIO(data), labels="chat")
    pd.testing.assert_frame_equal(
        _sessions_of(table).drop(columns="label"), _sessions_of(plain)
    )
    assert set(table["label"]) == {"chat"}
    assert set(table["file"]) == {"<BytesIO>"}
    with open(capture[1], "rb") as f:
        named = read_sessions(f)
    assert set(named["file"]) == {str(capture[1])}
    # A compressed stream, and a mix of a stream and a path read in parallel.
    both = read_sessions([io.BytesIO(gzip.compress(data)), capture[1]], n_jobs=2)
    assert len(both) == 2 * len(plain)


def test_text_streams_and_folder_labels_are_refused(capture):
    data, _, _ = capture
    with pytest.raises(CaptureError, match="binary mode"):
        read_sessions(io.StringIO("not bytes"))
    with pytest.raises(ValueError, match="give the labels of standard input"):
        read_sessions(io.BytesIO(data), labels="dir")


def test_fifos_are_read_as_they_fill(tmp_path, capture):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    data, _, plain = capture
    fifo = tmp_path / "live"
    os.mkfifo(fifo)

    def write_slowly():
        with open(fifo, "wb") as f:
            for at in range(0, len(data), 333):
                f.write(data[at : at + 333])
                f.flush()
                time.sleep(0.001)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    table = read_sessions(fifo)
    writer.join()
    pd.testing.assert_frame_equal(_sessions_of(table), _sessions_of(plain))


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_a_live_stream_yields_packets_before_it_ends(kind):
    data = _pcap() if kind == "pcap" else _pcapng()
    read_end, write_end = os.pipe()
    first_half = data[: len(data) // 2]
    os.write(write_end, first_half)
    got = []
    with open(read_end, "rb") as f, open_capture(f) as capture:
        batches = capture.batches()
        got.append(next(batches))  # returns although the writer is still open
        os.write(write_end, data[len(first_half) :])
        os.close(write_end)
        got.extend(batches)
    packets = sum(len(b.start) for b in got)
    assert packets == len(_packets())
    assert len(got) >= 2


def test_standard_input(tmp_path, capture):
    data, _, plain = capture
    code = (
        "from sklearn_flowspectrum import read_sessions\n"
        "t = read_sessions('-')\n"
        "print(len(t), t['packets'].sum(), t['file'].iloc[0])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=gzip.compress(data),
        capture_output=True,
        check=True,
        env=env,
        timeout=120,
    )
    assert out.stdout.decode().split() == [
        str(len(plain)),
        str(plain["packets"].sum()),
        "<stdin>",
    ]


def test_batches_from_a_stream_equal_those_of_the_file(capture):
    data, path, _ = capture
    from_file = [tuple(r) for r in iter_records(path)]
    frames = []
    for b in iter_batches(io.BytesIO(data)):
        starts, lengths = b.start.tolist(), b.caplen.tolist()
        frames.extend(bytes(b.data[s : s + c]) for s, c in zip(starts, lengths))
    assert frames == [r[1] for r in from_file]


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_a_stream_cut_inside_a_record(kind):
    # pcapng without blocks after the packets: the cut is in the last packet.
    data = _pcap() if kind == "pcap" else _pcapng(extra_blocks=False)
    whole = read_sessions(io.BytesIO(data))
    read_end, write_end = os.pipe()

    def write_most():
        with open(write_end, "wb") as f:
            f.write(data[:-7])  # the last record loses its last bytes

    writer = threading.Thread(target=write_most)
    writer.start()
    with open(read_end, "rb") as f, pytest.warns(UserWarning, match="byte"):
        table, report = read_sessions(f, on_error="warn", return_report=True)
    writer.join()
    # Every packet before the cut is kept, and the report says where it was.
    assert report.loc[0, "packets"] == whole["packets"].sum() - 1
    assert report.loc[0, "error"] is not None
    assert table["packets"].sum() == whole["packets"].sum() - 1
