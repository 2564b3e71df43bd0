import struct
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.ensemble import ExtraTreesClassifier  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

from sklearn_flowspectrum import read_idx  # noqa: E402
from sklearn_flowspectrum._layouts import mask_ustc_rows, resolve_mask  # noqa: E402
from sklearn_flowspectrum.evaluation import (  # noqa: E402
    AUDIT_FIELDS,
    LeakageWarning,
    leakage_audit,
    plot_leakage_audit,
)
from sklearn_flowspectrum.evaluation._audit import (  # noqa: E402
    byte_field_map,
    field_features,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ISCX = DATA / "iscx-vpn2016"


def _fast():
    return ExtraTreesClassifier(n_estimators=6, random_state=0)


def _ip_udp(rng, ttl, payload, dport=None):
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + 8 + len(payload),
        int(rng.integers(0, 65536)),  # ip.id
        0,
        ttl,
        17,
        int(rng.integers(0, 65536)),  # checksum: random, leaks nothing here
        rng.bytes(4),
        rng.bytes(4),
    )
    udp = struct.pack(
        "!HHHH",
        int(rng.integers(1024, 65536)),
        int(rng.integers(1024, 65536)) if dport is None else dport,
        8 + len(payload),
        int(rng.integers(0, 65536)),
    )
    return ip + udp + payload


def _rows(
    y,
    *,
    leak_ttl=False,
    leak_payload=False,
    leak_len=False,
    leak_dns_id=False,
    seed=0,
    width=784,
    slot=None,
):
    """USTC-TK2016-style rows: pcap global header, then record header + frame.

    Everything is random except what the flags tie to the label.  With
    ``slot``, the same packets in the "packets" layout instead: one slot of
    ``slot`` bytes per packet, from its IP header on.
    """
    rng = np.random.default_rng(seed)
    rows = np.zeros((len(y), width), dtype=np.uint8)
    for i, label in enumerate(y):
        out = bytearray(struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        slots = bytearray()
        for _ in range(int(rng.integers(2, 5))):
            size = int(rng.integers(40, 250))
            if leak_len:
                size = 60 if label else 200
            payload = bytearray(rng.bytes(size))
            if leak_payload:
                payload[:4] = b"\xaa\xbb\xcc\xdd" if label else b"\x11\x22\x33\x44"
            ttl = (64 if label else 128) if leak_ttl else int(rng.integers(30, 255))
            dport = None
            if leak_dns_id:  # LLMNR lookups whose transaction ID gives the label
                dport = 5355
                payload[:2] = b"\xaa\xaa" if label else b"\x11\x11"
            packet = _ip_udp(rng, ttl, bytes(payload), dport)
            frame = rng.bytes(12) + b"\x08\x00" + packet
            ts = int(rng.integers(1.4e9, 1.5e9))
            usec = int(rng.integers(0, 10**6))
            out += struct.pack(">IIII", ts, usec, len(frame), len(frame))
            out += frame
            if slot:
                slots += packet[:slot].ljust(slot, b"\x00")
        out = (slots if slot else out)[:width]
        rows[i, : len(out)] = np.frombuffer(bytes(out), np.uint8)
    return rows


Y = np.repeat([0, 1], 60)


def test_byte_field_map_of_ustc_rows():
    rows = _rows(Y[:4])
    field, packet, names = byte_field_map(rows)
    name_at = lambda r, c: names[field[r, c]]  # noqa: E731
    assert name_at(0, 0) == "pcap.global" and packet[0, 0] == -1
    assert name_at(0, 24) == "pcap.timestamp" and packet[0, 24] == 0
    assert name_at(0, 32) == "pcap.lengths"
    assert name_at(0, 40) == "mac" and name_at(0, 52) == "link.other"
    assert name_at(0, 54 + 8) == "ip.ttl" and name_at(0, 54 + 12) == "ip.addresses"
    assert name_at(0, 54 + 20) == "ports" and name_at(0, 54 + 22) == "ports"
    assert name_at(0, 54 + 28) == "payload"
    # The second packet starts where the first record says.
    incl = int.from_bytes(bytes(rows[0, 32:36]), "big")
    second = 24 + 16 + incl
    assert packet[0, second - 1] == 0 and packet[0, second] == 1
    assert name_at(0, second) == "pcap.timestamp"


def test_rows_without_pcap_header_have_no_fields():
    rows = _rows(Y[:3])
    rows[1] = 0
    field, packet, _ = byte_field_map(rows)
    assert (field[1] == -1).all() and (packet[1] == -1).all()
    assert (field[0] >= 0).any()


def test_masked_rows_still_map():
    rows = _rows(Y[:6])
    masked, status = mask_ustc_rows(rows, ["pcap.ts_sec", "pcap.ts_usec", "ip.src"])
    assert (status == "ok").all()
    f0, p0, _ = byte_field_map(rows)
    f1, p1, _ = byte_field_map(masked)
    np.testing.assert_array_equal(f0, f1)
    np.testing.assert_array_equal(p0, p1)


def test_field_features_slots_per_packet():
    rows = _rows(Y[:5])
    field, packet, names = byte_field_map(rows)
    feats, present = field_features(
        rows, field, packet, names.index("ip.ttl"), n_packets=2
    )
    assert feats.shape == (5, 2) and present.all()
    assert feats[0, 0] == rows[0, 54 + 8]
    ports, _ = field_features(rows, field, packet, names.index("ports"), n_packets=3)
    assert ports.shape == (5, 12)
    # Rows with fewer packets than slots get -1 ("no byte").
    n_pkts = packet.max(axis=1) + 1
    assert ((ports[:, 8:] == -1).all(axis=1) == (n_pkts < 3)).all()


@pytest.fixture(scope="module")
def ttl_audit():
    """The audit of rows whose TTL gives the label away, and its warnings."""
    rows = _rows(Y, leak_ttl=True)
    with pytest.warns(LeakageWarning) as record:
        audit = leakage_audit(rows, Y, cv=3, estimator=_fast())
    return audit, record


def test_audit_names_the_leaking_field(ttl_audit):
    audit, record = ttl_audit
    assert len(record) == 1 and "ip.ttl" in str(record[0].message)
    assert audit.loc[audit["leak"], "field"].tolist() == ["ip.ttl"]
    by = audit.set_index("field")["accuracy"]
    assert by["ip.ttl"] == 1.0
    assert by["majority class"] == pytest.approx(0.5)
    for name in ("ip.addresses", "ports", "pcap.timestamp", "mac", "checksums"):
        assert by[name] < 0.75, name
    assert list(audit["kind"][:2]) == ["baseline", "full"]
    assert audit.attrs["layout"] == "ustc" and audit.attrs["n_sessions"] == len(Y)
    roles = audit.set_index("field")["role"]
    assert roles["ip.ttl"] == "context" and roles["payload"] == "payload"
    assert roles["lengths"] == "shape" and roles["full image"] == ""
    assert "identify the capture" in str(record[0].message)


def test_audit_tells_shape_from_context():
    rows = _rows(Y, leak_len=True, seed=4)
    with pytest.warns(LeakageWarning, match="shape of the traffic") as record:
        audit = leakage_audit(rows, Y, cv=3, estimator=_fast())
    flagged = set(audit.loc[audit["leak"], "field"])
    assert {"lengths", "pcap.lengths"} <= flagged
    assert not flagged & {"ip.ttl", "ports", "ip.addresses", "pcap.timestamp"}
    assert "identify the capture" not in str(record[0].message)


def test_audit_flags_dns_transaction_ids():
    # The ID starts the payload, yet the audit scores it on its own (a
    # context set) and the rest of the payload says nothing.
    rows = _rows(Y, leak_dns_id=True, seed=2)
    with pytest.warns(LeakageWarning, match="identify the capture"):
        audit = leakage_audit(rows, Y, cv=3, estimator=_fast())
    assert audit.loc[audit["leak"], "field"].tolist() == ["dns.id"]
    by = audit.set_index("field")
    assert by.loc["dns.id", "accuracy"] == 1.0 and by.loc["dns.id", "role"] == "context"
    assert by.loc["payload", "accuracy"] < 0.75
    # The safe mask blanks the ID: nothing is left to find.
    masked, _ = mask_ustc_rows(rows, resolve_mask("safe"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeakageWarning)
        audit = leakage_audit(masked, Y, cv=3, estimator=_fast())
    assert not audit["leak"].any()


def test_audit_quiet_when_only_payload_informs():
    rows = _rows(Y, leak_payload=True, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeakageWarning)
        audit = leakage_audit(rows, Y, cv=3, estimator=_fast())
    assert not audit["leak"].any()
    by = audit.set_index("field")["accuracy"]
    assert by["payload"] > 0.95
    assert by[["ip.ttl", "ports", "ip.addresses", "pcap.timestamp"]].max() < 0.75


def test_audit_quiet_on_random_labels():
    rows = _rows(Y, seed=2)
    y = np.random.default_rng(5).permutation(Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeakageWarning)
        audit = leakage_audit(rows, y, cv=3, estimator=_fast())
    assert not audit["leak"].any()


def test_audit_packets_layout_and_floats():
    packets = _rows(Y, leak_ttl=True, seed=3, slot=112)
    field, packet, names = byte_field_map(packets, layout="packets")
    assert names[field[0, 8]] == "ip.ttl" and packet[0, 8] == 0
    assert names[field[0, 112 + 8]] == "ip.ttl" and packet[0, 112 + 8] == 1
    with pytest.warns(LeakageWarning, match=r"ip\.ttl"):
        a = leakage_audit(packets, Y, layout="packets", cv=3, estimator=_fast())
    with pytest.warns(LeakageWarning):
        b = leakage_audit(
            packets.astype(np.float32) / 255,
            Y,
            layout="packets",
            cv=3,
            estimator=_fast(),
        )
    np.testing.assert_allclose(a["accuracy"], b["accuracy"])
    assert "pcap.timestamp" not in set(a["field"])


def test_audit_l7_groups_and_other_estimator():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (60, 16), dtype=np.uint8)
    y = np.repeat([0, 1], 30)
    groups = np.arange(60) // 3
    audit = leakage_audit(
        X, y, layout="l7", groups=groups, cv=3, estimator=KNeighborsClassifier(1)
    )
    assert audit["field"].tolist() == ["majority class", "full image", "payload"]
    assert "GroupKFold" in audit.attrs["cv"] and audit.attrs["grouped"]
    assert "KNeighbors" in audit.attrs["estimator"]


def test_audit_bad_input():
    rows = _rows(Y[:10])
    with pytest.raises(ValueError, match="one label per row"):
        leakage_audit(rows, Y)
    with pytest.raises(ValueError, match="two classes"):
        leakage_audit(rows, np.zeros(10))
    with pytest.raises(ValueError, match="no row starts with a pcap"):
        leakage_audit(np.ones((10, 64), np.uint8), Y[:10] % 2 + (np.arange(10) % 2))
    with pytest.raises(ValueError, match="layout must be"):
        leakage_audit(rows, np.arange(10) % 2, layout="frames")
    with pytest.raises(ValueError, match="outside"):
        leakage_audit(rows * 2.0, np.arange(10) % 2)
    with pytest.raises(ValueError, match="n_packets"):
        leakage_audit(rows, np.arange(10) % 2, n_packets=0)
    with pytest.raises(ValueError, match="2-D"):
        leakage_audit(np.zeros(10), np.arange(10) % 2)
    for n_jobs in (1.5, "2", 0):
        with pytest.raises(ValueError, match="'n_jobs' parameter of leakage_audit"):
            leakage_audit(rows, np.arange(10) % 2, n_jobs=n_jobs)


def test_audit_fields_names_are_known():
    from sklearn_flowspectrum._layouts import FIELD_NAMES

    covered = set()
    for patterns in AUDIT_FIELDS.values():
        for p in patterns:
            import fnmatch

            hits = fnmatch.filter(FIELD_NAMES | {"trailer", "other"}, p)
            assert hits, f"pattern {p!r} matches no field"
            covered |= set(hits)
    assert covered == FIELD_NAMES | {"trailer", "other"}


def test_plot_leakage_audit(ttl_audit):
    audit, _ = ttl_audit
    ax = plot_leakage_audit(audit)
    n_fields = (audit["kind"] == "field").sum()
    assert len(ax.patches) == n_fields
    red = [
        p
        for p in ax.patches
        if p.get_facecolor()[:3] == pytest.approx(matplotlib.colors.to_rgb("tab:red"))
    ]
    assert len(red) == 1
    assert "layout=ustc" in ax.get_title()
    plt.close("all")


@pytest.mark.skipif(not ISCX.is_dir(), reason=f"shared ISCX data absent ({ISCX})")
def test_flags_timestamps_of_published_iscx_alllayers():
    folder = ISCX / "NovpnSessionAllLayers"
    X = read_idx(folder / "train-images-idx3-ubyte.gz").reshape(-1, 784)
    y = read_idx(folder / "train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), 40, replace=False) for c in range(6)]
    )
    with pytest.warns(LeakageWarning, match=r"pcap\.timestamp"):
        audit = leakage_audit(X[idx], y[idx], cv=3, estimator=_fast())
    row = audit.set_index("field").loc["pcap.timestamp"]
    assert row["leak"] and row["accuracy"] > 0.9
    # Once the timestamps are blanked they carry nothing.
    masked, _ = mask_ustc_rows(X[idx], ["pcap.ts_sec", "pcap.ts_usec"])
    field, packet, names = byte_field_map(masked)
    ts, _ = field_features(masked, field, packet, names.index("pcap.timestamp"))
    assert (ts <= 0).all()
