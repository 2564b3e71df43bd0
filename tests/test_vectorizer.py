"""PcapSessionVectorizer: inputs, layouts, masking, sklearn conventions."""

import inspect
import pickle
import struct
import warnings
from pathlib import Path

import dpkt
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

import sklearn_flowspectrum._vectorizer as vectorizer_module
from sklearn_flowspectrum import PcapSessionVectorizer, load_idx_pair, read_sessions
from sklearn_flowspectrum._layouts import batch_from_frames, build_images

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
USTC = DATA / "ustc-tfc2016"
ISCX = DATA / "iscx-vpn2016"

IP_A, IP_B = bytes([192, 168, 0, 1]), bytes([192, 168, 0, 2])


def _frame(payload=b"hello", sport=40000, dport=443, ident=1):
    seg = struct.pack("!HHIIBBHHH", sport, dport, 1, 2, 5 << 4, 0x18, 512, 7, 0)
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), ident, 0, 64, 6, 9, IP_A, IP_B
    )
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + seg + payload


def _table(sessions, keep_bytes=784, linktype=1):
    """A session table as read_sessions returns it (the columns we read)."""
    table = pd.DataFrame(
        {
            "frames": [tuple(f) for f in sessions],
            "frame_ts_ns": [
                tuple(1_600_000_000_000_000_000 + i * 1000 for i in range(len(f)))
                for f in sessions
            ],
            "frame_orig_len": [tuple(len(x) for x in f) for f in sessions],
            "linktype": [linktype] * len(sessions),
            "packets": [len(f) for f in sessions],
        }
    )
    table.attrs["keep_bytes"] = keep_bytes
    return table


@pytest.fixture
def table():
    return _table(
        [
            [_frame(b"a" * 100, ident=i) for i in range(10)],
            [_frame(b"bb", sport=50000, ident=7)],
            [_frame(b"c" * 1400), _frame(b"d" * 1400)],
        ],
        keep_bytes=4000,
    )


def test_defaults_on_session_table(table):
    vec = PcapSessionVectorizer().fit(table)
    X = vec.transform(table)
    assert X.shape == (3, 784) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() <= 1.0
    raw = PcapSessionVectorizer(scale=False).fit_transform(table)
    assert raw.dtype == np.uint8
    np.testing.assert_allclose(X, raw / 255.0, rtol=1e-6)
    assert raw[0, :4].tolist() == [0xA1, 0xB2, 0xC3, 0xD4]
    assert not raw[:, 24:32].any()  # safe mask by default: no timestamps
    unmasked = PcapSessionVectorizer(mask="none", scale=False).fit_transform(table)
    assert unmasked[:, 24:32].any()
    # The second session: one 66+2 byte frame, then zero padding.
    n = 24 + 16 + 14 + 40 + 2
    assert unmasked[1, n - 2 : n].tobytes() == b"bb" and not unmasked[1, n:].any()


@pytest.mark.parametrize("layout", ["ustc", "frames", "packets"])
@pytest.mark.parametrize("layers", ["all", "l7"])
@pytest.mark.parametrize("n_bytes", [1, 100, 784, 1500])
def test_layouts_match_build_images(table, layout, layers, n_bytes):
    vec = PcapSessionVectorizer(
        layout=layout, layers=layers, n_bytes=n_bytes, packet_bytes=1, scale=False
    )
    X = vec.fit_transform(table)
    assert X.shape == (3, n_bytes)
    batch = batch_from_frames(
        table["frames"], table["frame_ts_ns"], table["frame_orig_len"], [1, 1, 1]
    )
    expected = build_images(
        batch,
        layout=layout,
        layers=layers,
        n_bytes=n_bytes,
        packet_bytes=1,
        mask=vec.mask_fields_,
    )
    np.testing.assert_array_equal(X, expected)
    if layers == "l7" and layout != "packets":
        payload = (b"a" * 100 * 10)[:n_bytes]
        assert X[0, : len(payload)].tobytes() == payload


@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("layout", ["ustc", "packets"])
def test_table_imaged_in_blocks_as_a_whole(table, monkeypatch, scale, layout):
    whole = PcapSessionVectorizer(scale=scale, layout=layout).fit_transform(table)
    for size in (1, 2):  # blocks of 1 and 2 sessions, the last one partial
        monkeypatch.setattr(vectorizer_module, "_BLOCK_SESSIONS", size)
        blocks = PcapSessionVectorizer(scale=scale, layout=layout).fit_transform(table)
        assert blocks.dtype == whole.dtype
        np.testing.assert_array_equal(blocks, whole)
    empty = PcapSessionVectorizer(scale=scale).fit(table).transform(table.iloc[:0])
    assert empty.shape == (0, 784) and empty.dtype == whole.dtype


def test_table_checks(table):
    small = table.copy()
    small.attrs["keep_bytes"] = 500
    with pytest.raises(ValueError, match="keep_bytes=500.*n_bytes=784"):
        PcapSessionVectorizer().fit(small).transform(small)
    PcapSessionVectorizer(n_bytes=500).fit(small).transform(small)
    with pytest.raises(ValueError, match="missing: frame_ts_ns"):
        PcapSessionVectorizer().fit(table.drop(columns="frame_ts_ns"))
    # Sessions with fewer kept frames than the 'packets' slots are reported.
    short = table.copy()
    short["packets"] = [10, 1, 50]
    with pytest.warns(UserWarning, match="1 of 3 sessions have fewer kept frames"):
        PcapSessionVectorizer(layout="packets").fit(short).transform(short)


def test_bad_inputs_and_params(table):
    vec = PcapSessionVectorizer()
    with pytest.raises(TypeError, match="not a single path"):
        vec.fit("capture.pcap")
    with pytest.raises(TypeError, match="got dict"):
        vec.fit({"a": 1})
    with pytest.raises(ValueError, match="empty sequence"):
        vec.fit([])
    with pytest.raises(InvalidParameterError, match="layout"):
        PcapSessionVectorizer(layout="mnist").fit(table)
    with pytest.raises(InvalidParameterError, match="n_bytes"):
        PcapSessionVectorizer(n_bytes=0).fit(table)
    with pytest.raises(ValueError, match="unknown mask entry 'mac'"):
        PcapSessionVectorizer(mask=["mac"]).fit(table)
    with pytest.raises(ValueError, match="no slot"):
        PcapSessionVectorizer(layout="packets", n_bytes=50, packet_bytes=112).fit(table)
    vec.fit(table)
    with pytest.raises(ValueError, match="must hold bytes"):
        vec.transform(np.full((2, 784), 0.5))
    with pytest.raises(ValueError, match="2-D array"):
        vec.transform(np.zeros((2, 28, 28), dtype=np.uint8))


def test_not_fitted(table):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        PcapSessionVectorizer().transform(table)


def _pcap_bytes(frames, ts, big_endian=True, linktype=1):
    order = ">" if big_endian else "<"
    out = struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for f, t in zip(frames, ts):
        out += struct.pack(
            order + "IIII", t // 10**9, t % 10**9 // 1000, len(f), len(f)
        )
        out += f
    return out


def test_paths_of_per_session_files(tmp_path, table):
    paths = []
    for i, (frames, ts) in enumerate(zip(table["frames"], table["frame_ts_ns"])):
        path = tmp_path / f"session{i}.pcap"
        path.write_bytes(_pcap_bytes(frames, ts, big_endian=i % 2 == 0))
        paths.append(str(path))
    for kw in (
        {"mask": "none"},
        {},
        {"layers": "l7"},
        {"layout": "packets", "layers": "l7", "packet_bytes": 100},
        {"layout": "packets"},
        {"layout": "frames", "n_bytes": 3000},
    ):
        vec = PcapSessionVectorizer(scale=False, **kw)
        from_files = vec.fit_transform(paths)
        np.testing.assert_array_equal(from_files, vec.transform(table), err_msg=kw)
    # The USTC image of a SplitCap file is the file's first bytes.
    vec = PcapSessionVectorizer(mask="none", scale=False).fit(paths)
    first = Path(paths[0]).read_bytes()[:784]
    assert vec.transform(paths[:1])[0, : len(first)].tobytes() == first
    (tmp_path / "bad.pcap").write_bytes(b"not a capture at all, sorry")
    with pytest.raises(ValueError, match="bad.pcap"):
        vec.transform([str(tmp_path / "bad.pcap")])


def test_ustc_rows_masking_and_relayout(table):
    vec = PcapSessionVectorizer(mask="none", scale=False, n_bytes=784)
    rows = vec.fit_transform(table)
    # Rows in, rows out, unmasked: identical.
    np.testing.assert_array_equal(vec.transform(rows), rows)
    masked_rows = PcapSessionVectorizer(scale=False).fit_transform(rows)
    np.testing.assert_array_equal(
        masked_rows, PcapSessionVectorizer(scale=False).fit_transform(table)
    )
    # Relayout: the frames recovered from the rows, masked, no pcap headers.
    frames = PcapSessionVectorizer(layout="frames", scale=False).fit_transform(rows)
    full = PcapSessionVectorizer(layout="frames", scale=False).fit_transform(table)
    # A row ends 784 bytes into the file; its last frame is cut there.
    # Session 2: one record header, then 744 of the frame's 1454 bytes.
    np.testing.assert_array_equal(frames[2, :744], full[2, :744])
    assert not frames[2, 744:].any()
    # Session 0: 154-byte frames; four whole ones, then 64 bytes of the fifth.
    np.testing.assert_array_equal(frames[0, :680], full[0, :680])
    assert not frames[0, 680:].any()
    l7 = PcapSessionVectorizer(layers="l7", scale=False).fit_transform(rows)
    assert l7[0, :100].tobytes() == b"a" * 100
    # Wider or narrower outputs cut or pad the rows.
    wide = PcapSessionVectorizer(n_bytes=900, mask="none", scale=False)
    assert wide.fit_transform(rows)[:, 784:].sum() == 0
    # The caller's rows are never blanked in place.
    before = rows.copy()
    for layout in ("ustc", "frames", "packets"):
        PcapSessionVectorizer(layout=layout).fit_transform(rows)
    np.testing.assert_array_equal(rows, before)
    garbage = np.vstack([rows, np.zeros((2, 784), np.uint8)])
    with pytest.warns(UserWarning, match="2 of 5 rows are not complete pcap images"):
        out = PcapSessionVectorizer(scale=False).fit_transform(garbage)
    assert not out[3:].any()


def test_warnings_point_at_the_callers_line(table):
    # transform (wrapped by sklearn for set_output) and byte_map both warn at
    # the line that called them, for each helper that finds a problem.
    rows = PcapSessionVectorizer(scale=False).fit_transform(table)
    garbage = np.vstack([rows, np.zeros((2, 784), np.uint8)])
    short = table.copy()
    short["packets"] = [10, 1, 50]
    here = __file__
    calls = [
        (PcapSessionVectorizer().fit(garbage).transform, garbage, "2 of 5 rows"),
        (
            PcapSessionVectorizer(layout="frames").fit(garbage).transform,
            garbage,
            "2 of 5 rows",
        ),
        (
            PcapSessionVectorizer(layout="packets").fit(short).transform,
            short,
            "fewer kept frames",
        ),
        (PcapSessionVectorizer(layout="frames").fit(garbage).byte_map, garbage, "rows"),
        (
            PcapSessionVectorizer(layout="packets").fit(short).byte_map,
            short,
            "fewer kept frames",
        ),
    ]
    for method, X, match in calls:
        with pytest.warns(UserWarning, match=match) as record:
            line = inspect.currentframe().f_lineno + 1
            method(X)
        ours = [w for w in record if match in str(w.message)]
        assert [(w.filename, w.lineno) for w in ours] == [(here, line)], method


def test_fit_records_what_it_was_fitted_on(tmp_path, table):
    rows = PcapSessionVectorizer(mask="none", scale=False).fit_transform(table)
    path = tmp_path / "session.pcap"
    path.write_bytes(_pcap_bytes(table["frames"][1], table["frame_ts_ns"][1]))
    payloads = np.full((3, 784), ord("x"), np.uint8)  # L7 rows: no pcap header
    for X, kind, width in (
        (table, "table", None),
        ([str(path)], "paths", None),
        (rows, "pcap_rows", 784),
        (rows[:, :500], "pcap_rows", 500),
        (payloads, "other_rows", 784),
    ):
        vec = PcapSessionVectorizer(n_bytes=600, layers="l7", layout="frames")
        vec.fit(X)
        assert (vec.input_kind_, vec.n_row_bytes_) == (kind, width)
        assert (vec.n_features_out_, vec.layers_, vec.layout_) == (600, "l7", "frames")
        assert vec.packet_bytes_ == 112


def test_transform_refuses_input_unlike_the_fit(table):
    rows = PcapSessionVectorizer(mask="none", scale=False).fit_transform(table)
    payloads = np.full((3, 784), ord("x"), np.uint8)
    on_table = PcapSessionVectorizer().fit(table)
    with pytest.raises(
        ValueError,
        match="fitted on a session table but X holds rows without a pcap header",
    ):
        on_table.transform(payloads)
    with pytest.raises(ValueError, match="X holds rows of 500 bytes"):
        on_table.transform(rows[:, :500])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "3 of 3 rows are not complete pcap ..."
        on_payloads = PcapSessionVectorizer().fit(payloads)
    with pytest.raises(ValueError, match="fitted on rows without a pcap header"):
        on_payloads.transform(table)
    with pytest.raises(ValueError, match="fitted on rows of 784 bytes"):
        on_payloads.transform(payloads[:, :500])
    on_narrow = PcapSessionVectorizer().fit(rows[:, :500])
    with pytest.raises(ValueError, match="fitted on rows of 500 bytes"):
        on_narrow.transform(table)
    # Tables, files and full-width AllLayers rows give the same images.
    np.testing.assert_array_equal(on_table.transform(rows), on_table.transform(table))
    wide = np.pad(rows, ((0, 0), (0, 200)))
    np.testing.assert_array_equal(on_table.transform(wide), on_table.transform(rows))
    assert on_narrow.transform(rows[:, :500]).shape == (3, 784)
    # No rows: nothing to image, nothing to refuse.
    assert on_table.transform(np.zeros((0, 500), np.uint8)).shape == (0, 784)


@pytest.mark.parametrize(
    "change",
    [
        {"layers": "l7"},
        {"layout": "frames"},
        {"n_bytes": 500},
        {"mask": "none"},
        {"layout": "packets", "packet_bytes": 100},
    ],
)
def test_transform_refuses_parameters_changed_since_fit(table, change):
    vec = PcapSessionVectorizer(
        layout="packets" if "packet_bytes" in change else "ustc"
    )
    vec.fit(table).set_params(**change)
    with pytest.raises(ValueError, match="parameters changed since fit"):
        vec.transform(table)
    # Fitting again takes the new parameters.
    assert vec.fit(table).transform(table).shape[1] == vec.n_bytes
    vec.set_params(scale=False)  # the same images, as bytes: nothing to refuse
    assert vec.transform(table).dtype == np.uint8


def test_byte_map(table):
    vec = PcapSessionVectorizer(n_bytes=100).fit(table)
    maps = vec.byte_map(table)
    assert maps.shape == (3, 100)
    assert maps[0, 0] == "pcap.magic" and maps[0, 40] == "eth.dst"
    rows = PcapSessionVectorizer(n_bytes=784, mask="none", scale=False).fit_transform(
        table
    )
    np.testing.assert_array_equal(vec.byte_map(rows), maps)
    masked = vec.transform(table)
    leaky = np.isin(maps.astype(str), sorted(vec.mask_fields_ - {"ipv6.vtcfl"}))
    assert not masked[leaky].any()


def test_sklearn_conventions(table):
    vec = PcapSessionVectorizer(n_bytes=64, mask=["ports", "ip.ttl"], layout="frames")
    params = vec.get_params()
    assert params["mask"] == ["ports", "ip.ttl"] and params["n_bytes"] == 64
    other = clone(vec)
    assert other.get_params() == params and not hasattr(other, "mask_fields_")
    other.set_params(n_bytes=32, layers="l7")
    assert other.n_bytes == 32 and other.layers == "l7" and vec.n_bytes == 64
    vec.fit(table)
    restored = pickle.loads(pickle.dumps(vec))
    np.testing.assert_array_equal(restored.transform(table), vec.transform(table))
    names = vec.get_feature_names_out()
    assert names[0] == "byte0" and names[-1] == "byte63" and len(names) == 64
    vec.set_output(transform="pandas")
    frame = vec.transform(table)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(names) and frame.shape == (3, 64)
    tags = vec.__sklearn_tags__()
    assert not tags.input_tags.two_d_array and tags.input_tags.string


def test_in_a_pipeline(table):
    big = pd.concat([table] * 4, ignore_index=True)
    big.attrs["keep_bytes"] = 784
    y = [0, 1, 2] * 4
    pipe = make_pipeline(
        PcapSessionVectorizer(), ExtraTreesClassifier(n_estimators=5, random_state=0)
    )
    assert pipe.fit(big, y).score(big, y) == 1.0


# ---------------------------------------------------------------------------
# USTC-TK2016 reproduction on the raw USTC-TFC2016 captures.


def _reference_sessions(path):
    """Sessions of ``path`` built with struct + dpkt, independently of the package.

    Returns ``{key: [(record_header_fields, frame, payload)]}`` in order of
    first packet, and the link type.
    """
    raw = path.read_bytes()
    magic = raw[:4]
    order = ">" if magic == b"\xa1\xb2\xc3\xd4" else "<"
    linktype = struct.unpack(order + "I", raw[20:24])[0]
    sessions = {}
    pos = 24
    while pos + 16 <= len(raw):
        sec, usec, incl, orig = struct.unpack(order + "IIII", raw[pos : pos + 16])
        frame = raw[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        try:
            eth = dpkt.ethernet.Ethernet(frame)
        except (dpkt.UnpackError, dpkt.NeedData):
            continue
        ip = eth.data
        assert not getattr(eth, "vlan_tags", None)  # l3 is at 14 in these files
        l3 = 14
        if isinstance(ip, dpkt.ip.IP):
            end, l4_off = l3 + ip.len, l3 + ip.hl * 4
        elif isinstance(ip, dpkt.ip6.IP6):
            end = l3 + 40 + ip.plen
            l4_off = l3 + len(bytes(ip)) - len(bytes(ip.data))  # + extension headers
        else:
            continue
        l4 = ip.data
        if not isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
            continue
        header = l4.off * 4 if isinstance(l4, dpkt.tcp.TCP) else 8
        # The payload ends with the IP packet: Ethernet padding is not payload.
        payload = frame[l4_off + header : end]
        ends = sorted([(ip.src, l4.sport), (ip.dst, l4.dport)])
        key = (ip.p if isinstance(ip, dpkt.ip.IP) else ip.nxt, *ends)
        sessions.setdefault(key, []).append(((sec, usec, incl, orig), frame, payload))
    return sessions, linktype


def _reference_images(sessions, linktype, n=784):
    allb, l7 = [], []
    for packets in sessions.values():
        data = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
        for rec, frame, _ in packets:
            data += struct.pack(">IIII", *rec) + frame
            if len(data) >= n:
                break
        allb.append(data.ljust(n, b"\0")[:n])
        payload = b"".join(p for _, _, p in packets)
        l7.append(payload.ljust(n, b"\0")[:n])
    to_array = lambda rows: np.frombuffer(b"".join(rows), np.uint8).reshape(-1, n)  # noqa: E731
    return to_array(allb), to_array(l7)


@pytest.mark.skipif(not USTC.is_dir(), reason=f"shared USTC-TFC2016 absent ({USTC})")
@pytest.mark.parametrize("name", ["Facetime.pcap", "Tinba.pcap"])
def test_ustc_layout_reproduces_ustc_tk2016(name):
    sessions, linktype = _reference_sessions(USTC / name)
    ref_all, ref_l7 = _reference_images(sessions, linktype)
    table = read_sessions([USTC / name])
    assert len(table) == len(sessions)
    got = PcapSessionVectorizer(mask="none", scale=False).fit_transform(table)
    # Big-endian pcap global header, record headers, frames, zero padding.
    assert (got[:, :8] == [0xA1, 0xB2, 0xC3, 0xD4, 0, 2, 0, 4]).all()
    np.testing.assert_array_equal(got, ref_all)
    # The published L7 images are unmasked (the safe mask would blank the
    # DNS transaction IDs inside the payloads).
    got_l7 = PcapSessionVectorizer(layers="l7", mask="none", scale=False).fit_transform(
        table
    )
    np.testing.assert_array_equal(got_l7, ref_l7)
    # Masked, the leaky fields of every packet are gone, nothing else changed.
    vec = PcapSessionVectorizer(scale=False).fit(table)
    masked = vec.transform(table)
    sub = slice(0, 300)
    names = vec.byte_map(table.iloc[sub]).astype(str)
    # ipv6.vtcfl keeps its version and traffic class: only the flow label goes.
    leaky = np.isin(names, sorted(vec.mask_fields_ - {"ipv6.vtcfl"}))
    assert not masked[sub][leaky].any()
    keep = ~leaky & (names != "ipv6.vtcfl")
    np.testing.assert_array_equal(masked[sub][keep], ref_all[sub][keep])


@pytest.mark.skipif(not ISCX.is_dir(), reason=f"shared ISCX data absent ({ISCX})")
def test_published_iscx_rows_masked():
    X, _ = load_idx_pair(ISCX / "VpnSessionAllLayers")
    X = X[:2000]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every published row is a pcap image
        masked = PcapSessionVectorizer(scale=False).fit_transform(X)
    assert not masked[:, 24:32].any()
    assert (masked[:, :24] == X[:, :24]).all()
    changed = (masked != X).sum(axis=1)
    assert (changed > 8).mean() > 0.9  # addresses, ports... beyond the timestamp
