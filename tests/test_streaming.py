"""iter_sessions: sessions handed on as they complete, in bounded memory."""

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sklearn_flowspectrum._streaming as streaming_module
from sklearn_flowspectrum import (
    CaptureError,
    PcapSessionVectorizer,
    iter_sessions,
    read_sessions,
)
from tests import _pcaps as P

NDPI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ndpi-pcaps"
needs_ndpi = pytest.mark.skipif(
    not NDPI.is_dir(), reason=f"shared nDPI captures not found at {NDPI}"
)
T0 = 1_600_000_000_000_000_000


def _all(tables):
    tables = list(tables)
    if not tables:
        return pd.DataFrame()
    return pd.concat(tables).sort_values("session").reset_index(drop=True)


def _udp_sessions(n, gap_s=1.0, port=5000):
    """``n`` one-packet UDP sessions, ``gap_s`` seconds apart."""
    return [
        (
            T0 + int(i * gap_s * 1e9),
            P.eth(P.ipv4(P.udp(port + i % 20000, 53, b"q" * 30), proto=17)),
        )
        for i in range(n)
    ]


@needs_ndpi
@pytest.mark.parametrize("idle, active", [(None, None), (2.0, None), (1.0, 10.0)])
def test_the_sessions_are_those_of_read_sessions(monkeypatch, idle, active):
    monkeypatch.setattr(streaming_module, "_MAX_HOLD", 0.0)  # hand on every read
    kwargs = dict(idle_timeout=idle, active_timeout=active, statistics=True)
    for path in sorted((NDPI / "pcap").iterdir())[:4]:
        try:
            want = read_sessions(path, **kwargs)
        except CaptureError:
            continue
        got = _all(iter_sessions(path, chunk_size=1 << 16, **kwargs))
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        with open(path, "rb") as f:  # a stream: handed on after every read
            streamed = _all(iter_sessions(f, **kwargs))
        pd.testing.assert_frame_equal(
            streamed.drop(columns="file"), want.drop(columns="file")
        )


def test_memory_follows_the_open_sessions(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming_module, "_MAX_HOLD", 0.0)
    path = P.write_pcap(tmp_path / "many.pcap", _udp_sessions(3000))
    held = []
    split_off = streaming_module._StreamingBuilder.split_off

    def watch(self, emit, forget):
        out = split_off(self, emit, forget)
        held.append((self.n, len(self.index)))
        return out

    monkeypatch.setattr(streaming_module._StreamingBuilder, "split_off", watch)
    tables = list(iter_sessions(path, idle_timeout=5, chunk_size=1 << 16))
    assert sum(map(len, tables)) == 3000
    assert len(tables) >= 4  # one per 64 KiB read, about 740 sessions each
    # Sessions and 5-tuples still held after each hand-on: those of the last
    # five seconds of capture time, not the 3000 read.
    assert len(held) == len(tables)
    assert max(n for n, _ in held) <= 6
    assert max(k for _, k in held) <= 6
    everything = _all(tables)
    assert everything["session"].tolist() == list(range(3000))


def test_without_idle_timeout_sessions_end_with_the_input(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming_module, "_MAX_HOLD", 0.0)
    path = P.write_pcap(tmp_path / "many.pcap", _udp_sessions(500))
    tables = list(iter_sessions(path, chunk_size=1 << 16))
    assert len(tables) == 1 and len(tables[0]) == 500


def _long_tcp(n_data=12):
    ips = P.tcp_conversation(
        requests=tuple(b"r" * 200 for _ in range(n_data)),
        replies=tuple(b"a" * 200 for _ in range(n_data)),
    )
    return [(T0 + i * 1_000_000, P.eth(ip)) for i, ip in enumerate(ips)]


def test_emit_image_hands_a_session_on_once_its_image_is_full():
    data = P.pcap_bytes(_long_tcp())
    read_end, write_end = os.pipe()
    # The first 1,200 bytes of packets fill a 784-byte AllLayers image.
    os.write(write_end, data[:1400])
    with open(read_end, "rb") as f:
        tables = iter_sessions(f, emit="image")
        first = next(tables)  # the writer is still open
        os.write(write_end, data[1400:])
        os.close(write_end)
        rest = list(tables)
    assert len(first) == 1 and sum(map(len, rest)) == 0
    row = first.iloc[0]
    full = read_sessions(io.BytesIO(data)).iloc[0]
    assert row["packets"] < full["packets"]
    vectorizer = PcapSessionVectorizer(mask="none")
    np.testing.assert_array_equal(
        vectorizer.fit_transform(first), vectorizer.transform(full.to_frame().T)
    )


def test_emit_image_ends_short_sessions_too(tmp_path):
    path = P.write_pcap(tmp_path / "short.pcap", _udp_sessions(5) + _long_tcp(1))
    got = _all(iter_sessions(path, emit="image"))
    assert len(got) == 6


def test_errors(tmp_path):
    good = P.pcap_bytes(_udp_sessions(50, gap_s=10))
    path = P.write_bytes(tmp_path / "cut.pcap", good[:-10])
    seen = []
    with pytest.raises(CaptureError, match="cut.pcap"):
        for table in iter_sessions(path, idle_timeout=5, chunk_size=1 << 16):
            seen.append(table)
    for bad, message in [
        (dict(emit="now"), "emit must be one of"),
        (dict(idle_timeout=-1), "idle_timeout must be"),
        (dict(keep_bytes=-1), "keep_bytes must be"),
        (dict(chunk_size=10), "chunk_size must be"),
    ]:
        with pytest.raises(ValueError, match=message):
            next(iter_sessions(path, **bad))
