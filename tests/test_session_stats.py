"""Flow statistics columns of read_sessions(statistics=True)."""

import math
from pathlib import Path

import numpy as np
import pytest

import sklearn_flowspectrum._sessions as sessions_module
from sklearn_flowspectrum import read_sessions
from sklearn_flowspectrum._session_stats import N_FIRST_PAYLOADS, STAT_COLUMNS
from tests import _pcaps as P
from tests.test_sessions import both_engines

NDPI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ndpi-pcaps"
T0 = 1_600_000_000_000_000_000
MS = 1_000_000


def _conversation(tmp_path):
    """A TCP exchange with known times: handshake, two requests, FIN."""
    ips = P.tcp_conversation(requests=(b"GET", b"MORE"), replies=(b"OK!!", b"X"))
    # ms after T0: 0 SYN, 10 SYN-ACK, 11 ACK, 20 GET, 35 OK!!, 60 MORE, 61 X, 90 FIN
    at = [0, 10, 11, 20, 35, 60, 61, 90]
    packets = [(T0 + t * MS, P.eth(ip)) for t, ip in zip(at, ips)]
    return P.write_pcap(tmp_path / "conv.pcap", packets)


def test_statistics_of_a_known_conversation(tmp_path):
    table, _ = both_engines(_conversation(tmp_path), statistics=True)
    assert list(table.columns[-len(STAT_COLUMNS) :]) == list(STAT_COLUMNS)
    row = table.iloc[0]
    assert row["duration"] == pytest.approx(0.090)
    # Forward: SYN, ACK, GET, MORE, FIN (0, 11, 20, 60, 90 ms); backward:
    # SYN-ACK, OK!!, X (10, 35, 61 ms).
    assert (row["fwd_packets"], row["bwd_packets"]) == (5, 3)
    assert row["fwd_bytes"] + row["bwd_bytes"] == row["bytes"]
    assert row["tcp_flags"] == P.TH_SYN | P.TH_ACK | P.TH_FIN | P.TH_PUSH
    fwd_gaps = np.array([11, 9, 40, 30]) / 1e3
    bwd_gaps = np.array([25, 26]) / 1e3
    assert row["fwd_iat_mean"] == pytest.approx(fwd_gaps.mean())
    assert row["fwd_iat_std"] == pytest.approx(fwd_gaps.std())
    assert (row["fwd_iat_min"], row["fwd_iat_max"]) == pytest.approx((0.009, 0.040))
    assert row["bwd_iat_mean"] == pytest.approx(bwd_gaps.mean())
    assert (row["bwd_iat_min"], row["bwd_iat_max"]) == pytest.approx((0.025, 0.026))
    assert row["first_payload_sizes"] == (0, 0, 0, 3, -4, 4, -1, 0)


def test_one_packet_directions_have_no_inter_arrival_times(tmp_path):
    path = P.write_pcap(
        tmp_path / "dns.pcap",
        [P.eth(P.ipv4(P.udp(5353, 53, b"q"), proto=17)),
         P.eth(P.ipv4(P.udp(53, 5353, b"answer"), P.B4, P.A4, 17))],
    )  # fmt: skip
    row = both_engines(path, statistics=True)[0].iloc[0]
    assert (row["fwd_packets"], row["bwd_packets"]) == (1, 1)
    assert row["tcp_flags"] == 0
    assert all(math.isnan(row[f"{d}_iat_{s}"]) for d in ("fwd", "bwd")
               for s in ("mean", "std", "min", "max"))  # fmt: skip
    assert row["first_payload_sizes"] == (1, -6)


def test_statistics_are_off_by_default(tmp_path):
    table = read_sessions(_conversation(tmp_path))
    assert not set(STAT_COLUMNS) & set(table.columns)
    with pytest.raises(ValueError, match="statistics must be a bool"):
        read_sessions(_conversation(tmp_path), statistics="yes")


@pytest.mark.skipif(not NDPI.is_dir(), reason=f"shared nDPI captures not at {NDPI}")
@pytest.mark.parametrize("flows", [False, True])
@pytest.mark.parametrize("drop_retransmissions", [False, True])
def test_both_engines_agree_across_batches(monkeypatch, flows, drop_retransmissions):
    # Small chunks: sessions and their inter-arrival times span many batches.
    monkeypatch.setattr(sessions_module, "CHUNK_SIZE", 8192)
    files = sorted((NDPI / "pcap").iterdir())[:6]
    table, _ = both_engines(
        files,
        statistics=True,
        flows=flows,
        drop_retransmissions=drop_retransmissions,
        on_error="warn",
    )
    assert (table["fwd_packets"] + table["bwd_packets"] == table["packets"]).all()
    assert (table["fwd_bytes"] + table["bwd_bytes"] == table["bytes"]).all()
    if flows:
        assert (table["bwd_packets"] == 0).all()
    sizes = table["first_payload_sizes"].map(len)
    assert (sizes == np.minimum(table["packets"], N_FIRST_PAYLOADS)).all()
    # Exactly: a session whose packets in one batch were all dropped
    # retransmissions keeps its last time in both engines.
    kwargs = dict(flows=flows, drop_retransmissions=drop_retransmissions)
    ref = read_sessions(files, on_error="warn", engine="python", **kwargs)
    np.testing.assert_array_equal(table["last_ts"], ref["last_ts"])


def _bursts(tmp_path):
    """One UDP 5-tuple: packets at 0, 1, 2 s, then 10, 10.5 s, then 30 s, and
    a second 5-tuple in between."""
    times = [0, 1, 2, 10, 10.5, 30]
    packets = [
        (T0 + int(t * 1e9), P.eth(P.ipv4(P.udp(5000, 53, b"x" * (i + 1)), proto=17)))
        for i, t in enumerate(times)
    ]
    packets.insert(2, (T0 + int(1.5e9), P.eth(P.ipv4(P.udp(6000, 53, b"y"), proto=17))))
    return P.write_pcap(tmp_path / "bursts.pcap", packets)


@pytest.mark.parametrize(
    "idle, active, expected",
    [
        (None, None, [6, 1]),
        (5, None, [3, 1, 2, 1]),  # idle gaps of 8 s and 19.5 s
        (None, 9, [3, 1, 2, 1]),  # 10 s > 9 s after 0; 30 s > 9 s after 10
        (None, 1.2, [2, 1, 1, 2, 1]),
        (30, 0.5, [1, 1, 1, 1, 2, 1]),  # 10.5 s is not more than 0.5 s after 10
        (9, 10, [4, 1, 1, 1]),  # 10 s is not more than 10 s after 0; 10.5 is
    ],
)
def test_timeouts_cut_sessions(tmp_path, idle, active, expected):
    table, report = both_engines(
        _bursts(tmp_path), idle_timeout=idle, active_timeout=active
    )
    assert table["packets"].tolist() == expected
    assert table["first_ts"].is_monotonic_increasing
    assert report.loc[0, "used"] == table["packets"].sum() == 7


def test_timeouts_are_validated(tmp_path):
    for bad in (0, -1, float("nan"), "5", True):
        with pytest.raises(ValueError, match="idle_timeout must be a number"):
            read_sessions(_bursts(tmp_path), idle_timeout=bad)
    with pytest.raises(ValueError, match="active_timeout must be a number"):
        read_sessions(_bursts(tmp_path), active_timeout=0)


@pytest.mark.skipif(not NDPI.is_dir(), reason=f"shared nDPI captures not at {NDPI}")
@pytest.mark.parametrize("idle, active", [(1.0, None), (None, 5.0), (0.5, 20.0)])
def test_timeouts_agree_across_engines_and_batches(monkeypatch, idle, active):
    monkeypatch.setattr(sessions_module, "CHUNK_SIZE", 8192)
    files = sorted((NDPI / "pcap").iterdir())[:6]
    kwargs = dict(idle_timeout=idle, active_timeout=active, on_error="warn")
    table, report = both_engines(files, drop_retransmissions=True, **kwargs)
    plain = read_sessions(files, on_error="warn")
    assert len(table) > len(plain)
    assert table["packets"].sum() + report["retransmissions"].sum() == plain[
        "packets"
    ].sum()
    ref = read_sessions(files, engine="python", **kwargs)
    np.testing.assert_array_equal(table["first_ts"], ref["first_ts"])
    np.testing.assert_array_equal(table["last_ts"], ref["last_ts"])
    span = table["last_ts"] - table["first_ts"]
    if active is not None:
        assert (span <= active + 1e-6).all()
