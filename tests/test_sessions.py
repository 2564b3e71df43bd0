"""read_sessions: grouping, columns, cleaning, accounting, bad input, real data."""

import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sklearn_flowspectrum import (
    CaptureError,
    CaptureWarning,
    iter_sessions,
    read_sessions,
)
from sklearn_flowspectrum import _sessions as sessions_module
from sklearn_flowspectrum._layers import SKIP_REASONS
from tests import _pcaps as P

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NDPI = DATA / "ndpi-pcaps" / "pcap"
USTC = DATA / "ustc-tfc2016"
needs_ndpi = pytest.mark.skipif(
    not NDPI.is_dir(), reason=f"shared nDPI captures not found at {NDPI}"
)
needs_ustc = pytest.mark.skipif(
    not USTC.is_dir(), reason=f"shared USTC-TFC2016 captures not found at {USTC}"
)

T0 = 1_600_000_000_000_000_000
COLUMNS = [
    "file",
    "session",
    "protocol",
    "ip_version",
    "src_addr",
    "src_port",
    "dst_addr",
    "dst_port",
    "first_ts",
    "last_ts",
    "packets",
    "bytes",
    "payload_bytes",
    "linktype",
    "frames",
    "frame_ts_ns",
    "frame_orig_len",
]


def _timed(frames, step=1_000_000):
    return [(T0 + i * step, f) for i, f in enumerate(frames)]


_STREAMING_OPTIONS = {
    "flows",
    "keep_bytes",
    "keep_packets",
    "drop_retransmissions",
    "statistics",
    "idle_timeout",
    "active_timeout",
}


def both_engines(*args, **kwargs):
    """read_sessions with both engines; asserts equal results, returns one.

    For one capture read with options iter_sessions has, its sessions are
    also compared with those of iter_sessions.
    """
    fast, rep_fast = read_sessions(*args, engine="auto", return_report=True, **kwargs)
    ref, rep_ref = read_sessions(*args, engine="python", return_report=True, **kwargs)
    pd.testing.assert_frame_equal(fast, ref)
    pd.testing.assert_frame_equal(rep_fast, rep_ref)
    source = args[0] if len(args) == 1 else None
    if (
        isinstance(source, (str, os.PathLike))
        and os.path.isfile(source)
        and set(kwargs) <= _STREAMING_OPTIONS
        and rep_fast.loc[0, "error"] is None
    ):
        tables = list(iter_sessions(source, **kwargs))
        streamed = pd.concat(tables) if tables else fast.iloc[:0]
        streamed = streamed.sort_values("session").reset_index(drop=True)
        pd.testing.assert_frame_equal(streamed, fast, check_exact=True)
    return fast, rep_fast


def assert_accounted(report, table=None):
    """Every packet is used or skipped; used packets end in the table or in a
    cleaning count."""
    skipped = report[list(SKIP_REASONS)].sum(axis=1)
    assert (report["used"] + skipped == report["packets"]).all()
    if table is not None:
        per_file = report.groupby("file").sum(numeric_only=True)
        in_table = table.groupby("file")["packets"].agg(["sum", "size"])
        in_table = in_table.reindex(per_file.index, fill_value=0)
        cleaned = per_file["retransmissions"] + per_file["dropped_packets"]
        pd.testing.assert_series_equal(
            per_file["used"], in_table["sum"] + cleaned, check_names=False
        )
        pd.testing.assert_series_equal(
            per_file["sessions"], in_table["size"], check_names=False
        )


# -- grouping and columns --------------------------------------------------------------


def test_tcp_session_both_directions(tmp_path):
    pkts = P.tcp_conversation(requests=[b"GET / HTTP/1.1\r\n\r\n"], replies=[b"ok"])
    frames = [P.eth(p) for p in pkts]
    path = P.write_pcap(tmp_path / "t.pcap", _timed(frames))
    table, report = both_engines(path)
    assert list(table.columns) == COLUMNS
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["protocol"], row["ip_version"]) == ("TCP", 4)
    assert (row["src_addr"], row["src_port"]) == ("10.0.0.1", 40000)
    assert (row["dst_addr"], row["dst_port"]) == ("10.0.0.2", 443)
    assert row["packets"] == len(frames)
    assert row["bytes"] == sum(len(f) for f in frames)
    # Ethernet padding of the short segments is not payload.
    assert row["payload_bytes"] == len(b"GET / HTTP/1.1\r\n\r\n") + 2
    assert row["first_ts"] == T0 / 1e9
    assert row["last_ts"] == (T0 + (len(frames) - 1) * 1_000_000) / 1e9
    assert row["linktype"] == 1 and row["file"] == str(path) and row["session"] == 0
    # Few bytes in all: every frame is kept, with its time and wire length.
    assert row["frames"] == tuple(frames)
    assert row["frame_ts_ns"] == tuple(T0 + i * 1_000_000 for i in range(len(frames)))
    assert row["frame_orig_len"] == tuple(len(f) for f in frames)
    assert report.loc[0, "used"] == report.loc[0, "packets"] == len(frames)
    assert table.attrs["keep_bytes"] == 784
    assert table.attrs["report"][0]["packets"] == len(frames)
    pd.testing.assert_frame_equal(table.attrs["report"].to_frame(), report)
    # The report rides along pandas operations without being copied.
    assert table[["file"]].attrs["report"] is table.attrs["report"]


def test_flows_split_directions(tmp_path):
    pkts = P.tcp_conversation()
    path = P.write_pcap(tmp_path / "t.pcap", [P.eth(p) for p in pkts])
    table, _ = both_engines(path, flows=True)
    assert len(table) == 2
    assert table["src_port"].tolist() == [40000, 443]
    assert table["packets"].sum() == len(pkts)
    assert table.attrs["flows"] is True


def test_session_order_is_first_packet_order_and_keys(tmp_path):
    # UDP and TCP on the same ports and addresses are different sessions; the
    # session numbering follows the first packet.
    frames = [
        P.eth(P.ipv4(P.udp(53, 5353, b"b"), P.B4, P.A4, 17)),
        P.eth(P.ipv4(P.tcp(5353, 53, b"t"), P.A4, P.B4)),
        P.eth(P.ipv4(P.udp(5353, 53, b"a"), P.A4, P.B4, 17)),
        P.eth(P.ipv6(P.udp(5353, 53, b"6"), nxt=17), 0x86DD),
        P.eth(P.ipv4(P.udp(5354, 53, b"c"), P.A4, P.B4, 17)),
        P.eth(P.ipv6(P.udp(53, 5353, b"6"), P.B6, P.A6, nxt=17), 0x86DD),
    ]
    path = P.write_pcap(tmp_path / "o.pcap", frames)
    table, _ = both_engines(path)
    assert table["session"].tolist() == [0, 1, 2, 3]
    assert table["protocol"].tolist() == ["UDP", "TCP", "IPv6UDP"[4:], "UDP"]
    assert table["packets"].tolist() == [2, 1, 2, 1]
    assert table["src_port"].tolist() == [53, 5353, 5353, 5354]
    assert table.loc[2, "src_addr"] == "2001:db8::1"
    assert table.loc[2, "ip_version"] == 6


def test_keep_bytes_budgets(tmp_path):
    # 10 packets of 60-byte frames carrying 10 payload bytes each.
    frames = [P.eth(P.ipv4(P.udp(1, 2, bytes([i]) * 10), proto=17)) for i in range(10)]
    assert all(len(f) == 60 for f in frames)
    path = P.write_pcap(tmp_path / "k.pcap", frames)
    # Image 24 + 76 k >= 100 after one frame; payload 10 k >= 35 after four.
    t, _ = both_engines(path, keep_bytes=35)
    assert len(t.loc[0, "frames"]) == 4
    # Image budget dominates: 24 + 76 k >= 400 needs five frames.
    t, _ = both_engines(path, keep_bytes=400)
    assert len(t.loc[0, "frames"]) == 10  # payload 100 < 400: all kept
    t, _ = both_engines(path, keep_bytes=100)
    assert len(t.loc[0, "frames"]) == 10  # payload reaches 100 only at the end
    t, _ = both_engines(path, keep_bytes=0)
    assert t.loc[0, "frames"] == ()
    assert t.attrs["keep_bytes"] == 0


def test_frames_kept_across_chunks(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    frames = []
    for i in range(300):
        k = int(rng.integers(0, 12))
        payload = bytes(int(rng.integers(0, 200)))
        if i % 3:
            frames.append(P.eth(P.ipv4(P.udp(1000 + k, 53, payload), proto=17)))
        else:
            frames.append(P.eth(P.ipv4(P.tcp(53, 2000 + k, payload), P.B4, P.A4)))
    path = P.write_pcap(tmp_path / "many.pcap", frames)
    whole, _ = both_engines(path, keep_bytes=300)
    monkeypatch.setattr(sessions_module, "CHUNK_SIZE", 1000)
    chunked, _ = both_engines(path, keep_bytes=300)
    pd.testing.assert_frame_equal(whole, chunked)
    assert whole["packets"].sum() == 300


@pytest.mark.parametrize(
    "linktype, wrap",
    [
        (1, lambda ip, v: P.eth(ip, 0x0800 if v == 4 else 0x86DD)),
        (1, lambda ip, v: P.eth(ip, 0x0800 if v == 4 else 0x86DD, vlans=[(0x8100, 7)])),
        (
            1,
            lambda ip, v: P.eth(
                ip, 0x0800 if v == 4 else 0x86DD, vlans=[(0x88A8, 1), (0x8100, 2)]
            ),
        ),
        (113, lambda ip, v: P.sll(ip, 0x0800 if v == 4 else 0x86DD)),
        (276, lambda ip, v: P.sll2(ip, 0x0800 if v == 4 else 0x86DD)),
        (101, lambda ip, v: ip),
        (12, lambda ip, v: ip),
        (0, lambda ip, v: P.null(ip, 2 if v == 4 else 30)),
        (0, lambda ip, v: P.null(ip, 2 if v == 4 else 24, "big")),
        (108, lambda ip, v: P.null(ip, 2 if v == 4 else 28, "big")),
    ],
)
def test_every_link_type(tmp_path, linktype, wrap):
    frames = []
    for v, (a, b) in ((4, (P.A4, P.B4)), (6, (P.A6, P.B6))):
        ip = P.ipv4 if v == 4 else P.ipv6
        frames.append(wrap(ip(P.tcp(1, 2, b"syn", flags=P.TH_SYN), a, b), v))
        frames.append(wrap(ip(P.tcp(2, 1, b"ack"), b, a), v))
    path = P.write_pcap(tmp_path / "l.pcap", frames, linktype=linktype)
    table, report = both_engines(path)
    assert table["ip_version"].tolist() == [4, 6]
    assert table["packets"].tolist() == [2, 2]
    assert table["src_addr"].tolist() == ["10.0.0.1", "2001:db8::1"]
    assert table["payload_bytes"].tolist() == [6, 6]
    assert (table["linktype"] == linktype).all()
    assert report.loc[0, "used"] == 4


def test_ipv4_only_link_types(tmp_path):
    ip = P.ipv4(P.udp(1, 2, b"x"), proto=17)
    for linktype in (228, 14):
        path = P.write_pcap(tmp_path / f"{linktype}.pcap", [ip], linktype=linktype)
        table, _ = both_engines(path)
        assert table["packets"].tolist() == [1]
    ip6 = P.ipv6(P.udp(1, 2, b"x"), nxt=17)
    path = P.write_pcap(tmp_path / "229.pcap", [ip6], linktype=229)
    assert both_engines(path)[0]["ip_version"].tolist() == [6]


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_byte_orders_and_resolutions(tmp_path, endian, nanosecond):
    frames = [P.eth(p) for p in P.tcp_conversation()]
    pkts = [
        (T0 + i * 1_000_003_000 + (7 if nanosecond else 0), f)
        for i, f in enumerate(frames)
    ]
    path = P.write_pcap(tmp_path / "b.pcap", pkts, endian=endian, nanosecond=nanosecond)
    table, _ = both_engines(path)
    assert table.loc[0, "frame_ts_ns"] == tuple(t for t, _ in pkts)


def test_pcapng_interfaces_with_their_own_link_types(tmp_path):
    conv = P.tcp_conversation()
    pkts = []
    for i, ip in enumerate(conv):
        if i % 2:
            pkts.append((1, T0 + i * 1000, ip))  # raw IP, nanoseconds
        else:
            pkts.append((0, T0 + i * 1000, P.eth(ip)))  # Ethernet, microseconds
    pkts.append((2, T0 + 10**9, P.sll(P.ipv4(P.udp(9, 10, b"q"), proto=17), 0x0800)))
    path = P.write_pcapng(tmp_path / "n.pcapng", [(1, 6), (101, 9), (113, 6)], pkts)
    table, report = both_engines(path)
    assert table["packets"].tolist() == [len(conv), 1]
    assert table["linktype"].tolist() == [1, 113]
    assert table.loc[0, "frame_ts_ns"][1] == T0 + 1000
    assert report.loc[0, "format"] == "pcapng"


def test_ipv6_extension_headers_and_fragments(tmp_path):
    hop = (0, b"\x01\x02\x00\x00")
    dst = (60, b"")
    frames = [
        P.eth(P.ipv6(P.udp(7, 8, b"a"), nxt=17, ext=[hop, dst]), 0x86DD),
        P.eth(P.ipv6(P.udp(8, 7, b"b"), P.B6, P.A6, nxt=17, ext=[hop]), 0x86DD),
        P.eth(
            P.ipv6(P.tcp(5, 6, b"c"), nxt=6, ext=[(43, b"\x00\x00" + bytes(4))]), 0x86DD
        ),
        # An atomic fragment (offset 0, no more fragments) is a whole packet.
        P.eth(P.ipv6(P.udp(7, 8, b"d"), nxt=17, ext=[(44, bytes(6))]), 0x86DD),
        P.eth(
            P.ipv6(P.udp(7, 8, b"e"), nxt=17, ext=[(44, b"\x00\x01" + bytes(4))]),
            0x86DD,
        ),
        P.eth(P.ipv4(P.udp(7, 8, b"f"), proto=17, frag=0x2000)),
        P.eth(P.ipv4(P.udp(7, 8, b"g"), proto=17, frag=0x0003)),
    ]
    path = P.write_pcap(tmp_path / "x.pcap", frames)
    table, report = both_engines(path)
    assert table["packets"].tolist() == [3, 1]
    assert table["payload_bytes"].tolist() == [3, 1]
    assert report.loc[0, "fragment"] == 3
    assert_accounted(report, table)


def test_tunnels_count_as_the_inner_session(tmp_path):
    inner = P.ipv4(P.udp(7, 8, b"in"), P.A4, P.B4, 17)
    frames = [
        P.eth(P.ipv4(inner, P.C4, P.C4, 4)),
        P.eth(P.ipv4(P.ipv6(P.tcp(1, 2, b"6in4")), P.C4, P.C4, 41)),
        P.eth(P.ipv6(inner, nxt=4), 0x86DD),
    ]
    path = P.write_pcap(tmp_path / "tun.pcap", frames)
    table, _ = both_engines(path)
    assert table["src_addr"].tolist() == ["10.0.0.1", "2001:db8::1"]
    assert table["packets"].tolist() == [2, 1]


def test_skips_are_counted_by_reason(tmp_path):
    good = P.eth(P.ipv4(P.udp(1, 2, b"ok"), proto=17))
    frames = [
        good,
        P.eth(b"\x00\x01\x08\x00\x06\x04" + bytes(22), 0x0806),  # ARP: not IP
        P.eth(P.ipv4(b"\x08\x00" + bytes(10), proto=1)),  # ICMP: not TCP/UDP
        P.eth(P.ipv4(P.tcp(1, 2, b"x")), pad=False)[:40],  # snaplen cut
        b"\x00\x01\x02\x03",  # a 4-byte frame, as in Tinba.pcap
        P.eth(P.ipv4(P.udp(1, 2, b"y"), proto=17, frag=0x2000)),
        P.eth(b"\x42" + bytes(40)),  # IHL 2: malformed
    ]
    path = P.write_pcap(tmp_path / "s.pcap", frames)
    table, report = both_engines(path)
    row = report.iloc[0]
    assert row["packets"] == 7 and row["used"] == 1
    assert row[list(SKIP_REASONS)].tolist() == [1, 1, 2, 1, 1, 0]
    path = P.write_pcap(tmp_path / "ppp.pcap", [good], linktype=9)
    table, report = both_engines(path)
    assert len(table) == 0 and report.loc[0, "unknown_linktype"] == 1
    assert list(table.columns) == COLUMNS


# -- cleaning --------------------------------------------------------------------------


def test_drop_empty(tmp_path):
    frames = [
        P.eth(P.ipv4(P.tcp(1, 2, flags=P.TH_SYN))),
        P.eth(P.ipv4(P.tcp(2, 1, flags=P.TH_SYN | P.TH_ACK), P.B4, P.A4)),
        P.eth(P.ipv4(P.udp(3, 4, b"data"), proto=17)),
    ]
    path = P.write_pcap(tmp_path / "e.pcap", frames)
    table, report = both_engines(path, drop_empty=True)
    assert table["protocol"].tolist() == ["UDP"]
    assert table["session"].tolist() == [1]  # the index before cleaning
    assert report.loc[0, "empty_sessions"] == 1
    assert report.loc[0, "dropped_packets"] == 2
    assert_accounted(report, table)


def test_drop_retransmissions(tmp_path):
    a, b = P.A4, P.B4
    syn = P.ipv4(P.tcp(1, 2, seq=100, flags=P.TH_SYN), a, b)
    data = P.ipv4(P.tcp(1, 2, b"hello", seq=101), a, b)
    ack = P.ipv4(P.tcp(2, 1, seq=500, ack=106, flags=P.TH_ACK), b, a)
    other = P.ipv4(P.tcp(1, 2, b"HELLO", seq=101), a, b)  # same seq, new bytes
    frames = [P.eth(x) for x in (syn, syn, data, ack, data, ack, ack, other)]
    path = P.write_pcap(tmp_path / "r.pcap", frames)
    table, report = both_engines(path, drop_retransmissions=True)
    # The repeated SYN and data segment go; duplicate ACKs and new bytes stay.
    assert report.loc[0, "retransmissions"] == 2
    assert table.loc[0, "packets"] == 6
    assert table.loc[0, "payload_bytes"] == 10
    assert len(table.loc[0, "frames"]) == 6
    assert_accounted(report, table)
    table, report = both_engines(path)
    assert table.loc[0, "packets"] == 8 and report.loc[0, "retransmissions"] == 0


def test_drop_duplicates(tmp_path):
    conv = [P.eth(p) for p in P.tcp_conversation()]
    first = P.write_pcap(tmp_path / "a.pcap", _timed(conv))
    again = P.write_pcap(tmp_path / "b.pcap", _timed(conv, step=7))  # other times
    moved = [
        P.eth(p) for p in P.tcp_conversation(a=P.C4, requests=[b"hello"])
    ]  # same payload, other address
    third = P.write_pcap(tmp_path / "c.pcap", moved)
    paths = [first, again, third]
    table, report = both_engines(paths, drop_duplicates=True)
    assert table["file"].tolist() == [str(first), str(third)]
    assert report["duplicate_sessions"].tolist() == [0, 1, 0]
    assert report["dropped_packets"].tolist() == [0, len(conv), 0]
    assert_accounted(report, table)
    table, report = both_engines(paths, drop_duplicates="payload")
    assert table["file"].tolist() == [str(first)]
    assert report["duplicate_sessions"].tolist() == [0, 1, 1]
    table, _ = both_engines(paths, drop_duplicates=False)
    assert len(table) == 3


def test_sessions_without_payload_are_not_payload_duplicates(tmp_path):
    frames = [
        P.eth(P.ipv4(P.tcp(1, 2, flags=P.TH_SYN))),
        P.eth(P.ipv4(P.tcp(3, 4, flags=P.TH_SYN))),
    ]
    path = P.write_pcap(tmp_path / "p.pcap", frames)
    table, _ = both_engines(path, drop_duplicates="payload")
    assert len(table) == 2


# -- paths, labels, parallelism --------------------------------------------------------


def _two_files(tmp_path):
    d = tmp_path / "caps"
    d.mkdir()
    a = P.write_pcap(d / "b_second.pcap", [P.eth(p) for p in P.tcp_conversation()])
    b = P.write_pcapng(
        d / "a_first.pcapng",
        [(1, 6)],
        [(0, T0, P.eth(P.ipv4(P.udp(1, 2, b"x"), proto=17)))],
    )
    (d / "notes.txt").write_text("not a capture")
    (d / "sub").mkdir()
    return d, b, a


def test_directory_expands_to_sorted_capture_files(tmp_path):
    d, first, second = _two_files(tmp_path)
    table, report = both_engines(d, labels="lab")
    assert report["file"].tolist() == [str(first), str(second)]
    assert table["file"].tolist() == [str(first), str(second)]
    assert (table["label"] == "lab").all()
    assert list(table.columns) == COLUMNS[:14] + ["label"] + COLUMNS[14:]


def test_labels_per_path_dict_and_errors(tmp_path):
    d, first, second = _two_files(tmp_path)
    t = read_sessions([second, first], labels=["web", "dns"])
    assert t["label"].tolist() == ["web", "dns"]
    assert t["file"].tolist() == [str(second), str(first)]
    t = read_sessions([first, second], labels={str(second): 1, first: 0})
    assert t["label"].tolist() == [0, 1]
    t = read_sessions([d], labels=["all"])
    assert t["label"].tolist() == ["all", "all"]
    with pytest.raises(ValueError, match="labels has 1 entries but paths has 2"):
        read_sessions([first, second], labels=["x"])
    with pytest.raises(ValueError, match="labels has no entry for"):
        read_sessions([first, second], labels={first: 0})
    assert "label" not in read_sessions(first).columns


def _class_folders(tmp_path):
    """captures/{dns,http/2024,tls -> elsewhere}/..., a capture directly in the
    root, a symbolic link into another class and a text file."""
    root = tmp_path / "captures"
    dns = P.write_pcap(
        _mkdir(root / "dns") / "q.pcap", [P.eth(P.ipv4(P.udp(1, 53, b"q"), proto=17))]
    )
    http = P.write_pcap(
        _mkdir(root / "http" / "2024") / "get.pcap",
        [P.eth(p) for p in P.tcp_conversation(dport=80)],
    )
    elsewhere = _mkdir(tmp_path / "elsewhere" / "data")
    P.write_pcapng(
        elsewhere / "hello.pcapng",
        [(1, 6)],
        [(0, T0, P.eth(P.ipv4(P.udp(2, 443, b"tls"), proto=17)))],
    )
    (root / "tls").symlink_to(elsewhere, target_is_directory=True)
    (root / "http" / "linked.pcap").symlink_to(dns)  # a DNS capture filed as http
    top = P.write_pcap(root / "top.cap", [P.eth(P.ipv4(P.udp(3, 4, b"t"), proto=17))])
    (root / "dns" / "notes.txt").write_text("not a capture")
    return root, dns, http, top


def _mkdir(path):
    path.mkdir(parents=True)
    return path


def test_class_folders_are_read_recursively_with_labels_from_folders(tmp_path):
    root, dns, http, top = _class_folders(tmp_path)
    table, report = both_engines(root, labels="dir")
    expected = [
        (str(dns), "dns"),
        (str(http), "http"),  # the class is the folder directly under the root
        (str(root / "http" / "linked.pcap"), "http"),  # the link's folder
        (str(root / "tls" / "hello.pcapng"), "tls"),  # a linked class folder
        (str(top), "captures"),  # directly in the root: the root's name
    ]
    assert report["file"].tolist() == [f for f, _ in expected]
    assert report["error"].isna().all()
    per_file = table.groupby("file", sort=False)["label"].agg(set)
    assert {f: labels for f, labels in per_file.items()} == {
        f: {label} for f, label in expected
    }
    # A class folder given itself, and files given by name (one a link).
    t = read_sessions([root / "http", dns, root / "tls" / "hello.pcapng"], "dir")
    assert t.groupby("file", sort=False)["label"].first().tolist() == [
        "2024",
        "http",
        "dns",
        "tls",
    ]
    # Without labels="dir" the same files are read.
    assert read_sessions(root)["file"].unique().tolist() == [f for f, _ in expected]
    assert read_sessions([dns, http], labels=["dir", "dir"])["label"].eq("dir").all()


def test_a_link_back_up_is_not_followed_forever(tmp_path):
    root, dns, http, top = _class_folders(tmp_path)
    (root / "http" / "2024" / "up").symlink_to(root, target_is_directory=True)
    once = read_sessions(root)["file"].tolist()
    assert len(once) == len(set(once)) == 5


def test_folder_problems_are_reported_like_file_problems(tmp_path, monkeypatch):
    root, *_ = _class_folders(tmp_path)
    (root / "dns" / "gone.pcap").symlink_to(tmp_path / "nowhere.pcap")
    with pytest.raises(CaptureError, match="gone.pcap: no such file"):
        read_sessions(root)
    scandir = os.scandir

    def refuse_http(path):
        if os.fspath(path).endswith("http"):
            raise PermissionError(13, "Permission denied")
        return scandir(path)

    monkeypatch.setattr(sessions_module.os, "scandir", refuse_http)
    with pytest.warns(CaptureWarning) as caught:
        table, report = read_sessions(
            root, labels="dir", on_error="warn", return_report=True
        )
    errors = dict(zip(report["file"], report["error"]))
    assert errors[str(root / "http")] == (
        f"{root / 'http'}: folder cannot be read (Permission denied)"
    )
    assert errors[str(root / "dns" / "gone.pcap")].endswith("no such file")
    assert len(caught) == 2
    assert set(table["label"]) == {"dns", "tls", "captures"}


def test_keep_packets_keeps_the_first_frames_too(tmp_path, monkeypatch):
    from sklearn_flowspectrum import PcapSessionVectorizer

    # Big payloads: the byte budgets are met after the handshake and one packet.
    conversation = P.tcp_conversation(
        requests=[b"q" * 1000] * 5, replies=[b"r" * 1000] * 5
    )
    path = P.write_pcap(tmp_path / "big.pcap", [P.eth(p) for p in conversation])
    few, _ = both_engines(path)
    many, _ = both_engines(path, keep_packets=7)
    assert len(few.loc[0, "frames"]) == 4 and len(many.loc[0, "frames"]) == 7
    assert many.loc[0, "frames"] == tuple(P.eth(p) for p in conversation[:7])
    assert (few.attrs["keep_packets"], many.attrs["keep_packets"]) == (0, 7)
    assert len(read_sessions(path, keep_packets=100).loc[0, "frames"]) == 14
    monkeypatch.setattr(sessions_module, "CHUNK_SIZE", 1500)  # a few per batch
    pd.testing.assert_frame_equal(read_sessions(path, keep_packets=7), many)
    monkeypatch.undo()
    packets = PcapSessionVectorizer(layout="packets", scale=False)  # 7 slots
    with pytest.warns(UserWarning, match="with keep_packets=7 to fill them"):
        packets.fit(few).transform(few)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = packets.fit(many).transform(many)
    assert images[0, 6 * 112 :].any()  # the last slot holds a packet


def test_parameter_validation(tmp_path):
    path = P.write_pcap(tmp_path / "v.pcap", [])
    for kwargs, msg in [
        ({"on_error": "skip"}, "on_error must be one of"),
        ({"engine": "c"}, "engine must be"),
        ({"drop_duplicates": "yes"}, "drop_duplicates must be"),
        ({"keep_bytes": -1}, "keep_bytes must be an int"),
        ({"keep_bytes": 7.5}, "keep_bytes must be an int"),
        ({"keep_packets": -1}, "keep_packets must be an int"),
        ({"flows": "no"}, "flows must be a bool"),
    ]:
        with pytest.raises(ValueError, match=msg):
            read_sessions(path, **kwargs)
    with pytest.raises(ValueError, match="paths is empty"):
        read_sessions([])
    with pytest.raises(TypeError, match="str or os.PathLike"):
        read_sessions([path, 5])
    with pytest.raises(TypeError, match="paths must be"):
        read_sessions(5)


def test_empty_capture_gives_an_empty_table(tmp_path):
    path = P.write_pcap(tmp_path / "empty.pcap", [])
    table, report = both_engines(path, labels="x")
    assert len(table) == 0 and list(table.columns) == (
        COLUMNS[:14] + ["label"] + COLUMNS[14:]
    )
    assert report.loc[0, "packets"] == 0 and report.loc[0, "error"] is None


def test_n_jobs_gives_the_same_table(tmp_path):
    import joblib

    d, _, _ = _two_files(tmp_path)
    serial = read_sessions(d)
    # Threads keep the test fast; the results cross processes by pickling,
    # which test_tables_concatenate_and_pickle covers.
    with joblib.parallel_config(backend="threading"):
        parallel = read_sessions(d, n_jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)
    assert serial.attrs == parallel.attrs


@pytest.mark.parametrize("n_jobs", [1.5, "2", 0])
def test_n_jobs_is_validated_like_sklearn(tmp_path, n_jobs):
    # A single file never reaches joblib, so nothing else would catch these.
    path = P.write_pcap(tmp_path / "one.pcap", [P.eth(p) for p in P.tcp_conversation()])
    with pytest.raises(ValueError, match="'n_jobs' parameter of read_sessions"):
        read_sessions(path, n_jobs=n_jobs)


def test_negative_n_jobs_counts_back_from_all_cores(tmp_path):
    import joblib

    d, _, _ = _two_files(tmp_path)
    # joblib's rule: -5 is "all cores but four", at least one worker.
    with joblib.parallel_config(backend="threading"):
        table = read_sessions(d, n_jobs=-5)
    pd.testing.assert_frame_equal(table, read_sessions(d))


def test_tables_concatenate_and_pickle(tmp_path):
    import pickle

    d, first, second = _two_files(tmp_path)
    a, b = read_sessions(first), read_sessions(second)
    both = pd.concat([a, b], ignore_index=True)
    assert len(both) == 2
    back = pickle.loads(pickle.dumps(a))
    pd.testing.assert_frame_equal(a, back)


# -- bad input in a batch --------------------------------------------------------------


def _batch_with_a_corrupt_file(tmp_path):
    good = P.write_pcap(
        tmp_path / "good.pcap", [P.eth(p) for p in P.tcp_conversation()]
    )
    frames = [P.eth(P.ipv4(P.udp(1, 2, bytes(i)), proto=17)) for i in range(5)]
    data = P.pcap_bytes(frames)
    cut = P.write_bytes(tmp_path / "cut.pcap", data[:-10])
    zero = P.write_bytes(tmp_path / "zero.pcap", b"")
    return [good, cut, zero, tmp_path / "missing.pcap", good]


def test_corrupt_file_raises_by_default(tmp_path):
    paths = _batch_with_a_corrupt_file(tmp_path)
    # Paths that are not files are reported before anything is read.
    with pytest.raises(ValueError, match="missing.pcap: no such file"):
        read_sessions(paths)
    with pytest.raises(CaptureError, match=r"cut.pcap: record at byte \d+ claims"):
        read_sessions(paths[:2])
    with pytest.raises(ValueError, match="zero.pcap: empty file"):
        read_sessions(paths[2])


@pytest.mark.parametrize("engine", ["auto", "python"])
def test_lenient_modes_keep_going(tmp_path, engine):
    paths = _batch_with_a_corrupt_file(tmp_path)
    with pytest.warns(CaptureWarning) as caught:
        table, report = read_sessions(
            paths, on_error="warn", return_report=True, engine=engine
        )
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3
    assert "cut.pcap: record at byte" in messages[0]
    assert "kept the 4 packets read before it" in messages[0]
    n = len(P.tcp_conversation())
    assert report["packets"].tolist() == [n, 4, 0, 0, n]
    assert report["error"].notna().tolist() == [False, True, True, True, False]
    assert table["file"].tolist() == [str(paths[0]), str(paths[1]), str(paths[4])]
    assert table.loc[1, "packets"] == 4
    assert_accounted(report, table)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet, report2 = read_sessions(paths, on_error="ignore", return_report=True)
    pd.testing.assert_frame_equal(report, report2)


@pytest.mark.parametrize("cut", [6, 30])
def test_corrupt_pcapng_keeps_the_packets_before_the_problem(tmp_path, cut):
    # The fast path once dropped the packets of a pcapng read before its error.
    frames = [P.eth(P.ipv4(P.udp(1000 + i, 53, b"x" * 20), proto=17)) for i in range(5)]
    pkts = [(0, T0 + i, f) for i, f in enumerate(frames)]
    data = P.pcapng_section([(1, 6)], pkts, extra_blocks=False)[:-cut]
    path = P.write_bytes(tmp_path / "cut.pcapng", data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        table, report = both_engines(path, on_error="warn")
    assert report["packets"].tolist() == [4] and len(table) == 4
    assert "claims" in report["error"].iloc[0]


@pytest.mark.parametrize("engine", ["auto", "python"])
def test_damaged_pcapng_blocks_warn_and_keep_the_other_files(tmp_path, engine):
    # Every pcapng block type with bodies of 0 to 40 bytes (the multiples of 4,
    # which get past the length check, and 1 to 3; test_capture reads every
    # length), in one call with good files: each damaged file is reported and warned
    # about, nothing raises, and the good files are read; with one job and
    # two (threads keep it fast; errors cross processes by pickling, which
    # test_capture_error_pickles covers).  A 12-byte simple packet block once
    # escaped on_error="warn" (struct.error) and lost the good files.
    import joblib

    good = P.write_pcap(
        tmp_path / "good.pcap", [P.eth(p) for p in P.tcp_conversation()]
    )
    damaged = []
    for kind, n, fill in P.pcapng_fuzz_cases():
        if fill == "real" and (n % 4 == 0 or n < 4):
            data, start, _ = P.pcapng_fuzz_file(kind, n, fill)
            path = P.write_bytes(tmp_path / f"{kind}-{n}.pcapng", data)
            damaged.append((str(path), start))
    paths = [good, *(p for p, _ in damaged), good]
    results = []
    for n_jobs in (1, 2):
        with (
            pytest.warns(CaptureWarning) as caught,
            joblib.parallel_config(backend="threading"),
        ):
            table, report = read_sessions(
                paths,
                on_error="warn",
                n_jobs=n_jobs,
                engine=engine,
                return_report=True,
            )
        results.append((table, report))
        errors = report["error"].dropna()
        assert sorted(str(w.message).split(" (kept")[0] for w in caught) == sorted(
            errors
        )
    (table, report), (table2, report2) = results
    pd.testing.assert_frame_equal(table, table2)
    pd.testing.assert_frame_equal(report, report2)
    n = len(P.tcp_conversation())
    assert report["packets"].iloc[[0, -1]].tolist() == [n, n]
    assert report["error"].iloc[[0, -1]].isna().all()
    assert (table["file"] == str(good)).sum() == 2
    rows = report.iloc[1:-1]
    for (path, start), file, packets, error in zip(
        damaged, rows["file"], rows["packets"], rows["error"]
    ):
        assert file == path and packets >= 1
        if isinstance(error, str):
            assert error.startswith(f"{path}: ") and f"at byte {start}" in error
    spb = report.set_index("file").loc[str(tmp_path / "spb-0.pcapng")]
    assert "simple packet block at byte" in spb["error"]
    assert "is too short" in spb["error"] and spb["packets"] == 1
    assert_accounted(report, table)


def test_directory_without_captures(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no capture files"):
        read_sessions(tmp_path / "empty")
    with pytest.warns(CaptureWarning, match="holds no capture files"):
        t = read_sessions([tmp_path / "empty"], on_error="warn")
    assert len(t) == 0


# -- real captures ---------------------------------------------------------------------


def _independent_record_count(path):
    """Records in a capture by a bare walk over its headers (None if odd)."""
    data = Path(path).read_bytes()
    if data[:4] == b"\n\r\r\n":
        count, pos, e = 0, 0, "<"
        while pos + 12 <= len(data):
            if data[pos : pos + 4] == b"\n\r\r\n":
                e = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            btype, length = struct.unpack_from(e + "II", data, pos)
            count += btype in (2, 3, 6)
            pos += length
        return count if pos == len(data) else None
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    count, pos = 0, 24
    while pos + 16 <= len(data):
        pos += 16 + struct.unpack_from(e + "I", data, pos + 8)[0]
        count += 1
    return count if pos == len(data) else None


@needs_ndpi
def test_all_ndpi_captures_are_accounted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        table, report = read_sessions(NDPI, on_error="warn", return_report=True)
    assert len(report) == 543
    assert_accounted(report, table)
    assert report["packets"].sum() > 100_000
    errors = report[report["error"].notna()]
    # The only damaged file: its first record claims 524501 bytes.
    assert errors["file"].map(os.path.basename).tolist() == ["fuzz-2021-10-13.pcap"]
    compared = 0
    for _, row in report[report["error"].isna()].iterrows():
        count = _independent_record_count(row["file"])
        if count is not None:
            assert count == row["packets"], row["file"]
            compared += 1
    assert compared > 500
    # Link types seen in the set, all grouped.
    assert {1, 101, 113, 0, 228} <= set(table["linktype"])
    assert (table["ip_version"] == 6).sum() > 50


@needs_ndpi
@pytest.mark.slow
@pytest.mark.parametrize(
    "kwargs", [{}, {"flows": True, "drop_retransmissions": True, "keep_bytes": 100}]
)
def test_ndpi_fast_path_equals_reference(kwargs):
    files = sorted(NDPI.iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)
        both_engines(files, on_error="ignore", **kwargs)


@needs_ustc
def test_ustc_tinba_survives_its_4_byte_first_frame():
    table, report = read_sessions(USTC / "Tinba.pcap", return_report=True)
    row = report.iloc[0]
    assert row["packets"] == 22_000 or row["packets"] > 20_000
    assert row["truncated"] >= 1
    assert 8000 <= len(table) <= 9000
    assert_accounted(report, table)


@needs_ustc
def test_ustc_facetime_one_packet_sessions():
    table, report = read_sessions(USTC / "Facetime.pcap", return_report=True)
    assert len(table) == 6000
    assert (table["packets"] == 1).all()
    assert (table["protocol"] == "UDP").all()
    assert report.loc[0, "used"] == 6000
    assert all(len(f) == 1 for f in table["frames"])
