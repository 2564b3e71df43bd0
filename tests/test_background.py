"""Tests of background_sessions (UDP name-service and discovery sessions)."""

import numpy as np
import pandas as pd
import pytest

from sklearn_flowspectrum import PcapSessionVectorizer, read_sessions
from sklearn_flowspectrum.evaluation import (
    BACKGROUND_UDP_PORTS,
    background_sessions,
    ustc_session_table,
)
from tests._pcaps import eth, ipv4, tcp, udp, write_pcap


def _table(protocol, src_port, dst_port):
    return pd.DataFrame(
        {"protocol": protocol, "src_port": src_port, "dst_port": dst_port}
    )


def test_either_side_udp_only():
    t = _table(
        ["UDP", "UDP", "UDP", "TCP", "UDP"],
        [50000, 5355, 40000, 50000, 40000],
        [53, 50000, 40001, 53, 3478],
    )
    assert background_sessions(t).tolist() == [True, True, False, False, False]


def test_custom_ports():
    t = _table(["UDP", "UDP"], [50000, 50000], [3478, 53])
    assert background_sessions(t, ports=[3478]).tolist() == [True, False]
    assert background_sessions(t, ports=[]).tolist() == [False, False]
    assert {53, 5355, 137, 5353} <= set(BACKGROUND_UDP_PORTS)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"\['dst_port'\]"):
        background_sessions(pd.DataFrame({"protocol": ["UDP"], "src_port": [53]}))
    with pytest.raises(ValueError, match="protocol"):
        background_sessions(np.zeros((2, 3)))


def test_on_read_sessions_and_published_rows(tmp_path):
    # A capture with one LLMNR lookup and one TLS session.
    path = tmp_path / "mixed.pcap"
    write_pcap(
        path,
        [
            eth(ipv4(udp(50000, 5355, payload=b"\x12\x34query"), proto=17)),
            eth(ipv4(tcp(50001, 443, payload=b"hello"))),
        ],
    )
    table = read_sessions(path)
    flags = dict(zip(table["dst_port"], background_sessions(table)))
    assert flags == {5355: True, 443: False}
    # The same sessions as published USTC-TK2016 AllLayers rows.
    rows = PcapSessionVectorizer(mask="none", scale=False).fit_transform(table)
    published = ustc_session_table(rows)
    assert published["dst_port"].tolist() == table["dst_port"].tolist()
    assert (
        background_sessions(published).tolist() == background_sessions(table).tolist()
    )
