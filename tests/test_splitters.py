import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier

from sklearn_flowspectrum.evaluation import (
    CaptureFileKFold,
    ServerEndpointKFold,
    SessionTimeSplit,
    server_endpoints,
    ustc_session_table,
)


def _table(n=120, n_files=8, seed=0):
    """A small session table with the columns of read_sessions that matter here."""
    rng = np.random.default_rng(seed)
    file = rng.integers(0, n_files, n)
    servers = [("93.184.216.34", 443), ("8.8.8.8", 53), ("10.1.1.1", 80)]
    servers += [(f"172.16.0.{i}", 8000 + i) for i in range(6)]
    s = rng.integers(0, len(servers), n)
    flip = rng.random(n) < 0.3  # some sessions seen from the server side first
    client = [f"192.168.1.{i % 7 + 2}" for i in range(n)]
    cport = rng.integers(49152, 65535, n)
    saddr = np.array([servers[k][0] for k in s], dtype=object)
    sport = np.array([servers[k][1] for k in s])
    table = pd.DataFrame(
        {
            "file": [f"cap{f}.pcap" for f in file],
            "protocol": np.where(sport == 53, "UDP", "TCP"),
            "src_addr": np.where(flip, saddr, client),
            "src_port": np.where(flip, sport, cport),
            "dst_addr": np.where(flip, client, saddr),
            "dst_port": np.where(flip, cport, sport),
            "first_ts": 1.4e9 + rng.integers(0, 50, n).astype(float),  # many ties
            "f0": rng.standard_normal(n),
            "f1": rng.standard_normal(n),
        }
    )
    # The session index restarts in each file, as in read_sessions.
    table["session"] = table.groupby("file").cumcount()
    y = (table["f0"] + 0.3 * rng.standard_normal(n) > 0).astype(int).to_numpy()
    return table, y


def _check_disjoint(splits, n, keys, *, covers=True):
    seen = np.zeros(n, dtype=int)
    for train, test in splits:
        assert len(train) and len(test)
        assert not set(train) & set(test)
        assert not set(keys[train]) & set(keys[test]), "a group on both sides"
        seen[test] += 1
    if covers:
        assert (seen == 1).all(), "each sample is tested exactly once"


def _session_keys(table):
    return (table["file"] + "#" + table["session"].astype(str)).to_numpy()


def test_capture_file_kfold_reads_the_file_column():
    table, _ = _table()
    cv = CaptureFileKFold(n_splits=4)
    splits = list(cv.split(table))
    assert len(splits) == cv.get_n_splits() == 4
    _check_disjoint(splits, len(table), table["file"].to_numpy())
    _check_disjoint(splits, len(table), _session_keys(table))


def test_capture_file_kfold_groups_override_and_arrays():
    table, _ = _table()
    X = np.zeros((len(table), 3))
    groups = table["src_port"].to_numpy() % 5
    splits = list(CaptureFileKFold(n_splits=3).split(X, groups=groups))
    _check_disjoint(splits, len(X), groups)
    with pytest.raises(ValueError, match="no column 'file'"):
        next(CaptureFileKFold().split(X))


def test_capture_file_kfold_shuffle_is_seeded():
    table, _ = _table()
    a = [
        t.tolist()
        for _, t in CaptureFileKFold(3, shuffle=True, random_state=1).split(table)
    ]
    b = [
        t.tolist()
        for _, t in CaptureFileKFold(3, shuffle=True, random_state=1).split(table)
    ]
    assert a == b


def test_too_few_groups_is_a_clear_error():
    table = pd.DataFrame({"file": ["a", "a", "b"]})
    with pytest.raises(ValueError, match="3 splits from 2 distinct capture files"):
        list(CaptureFileKFold(n_splits=3).split(table))
    with pytest.raises(ValueError, match="at least 2"):
        list(CaptureFileKFold(n_splits=1).split(table))
    with pytest.raises(ValueError, match="one entry per sample"):
        list(CaptureFileKFold(n_splits=2).split(table, groups=["a", "b"]))


def test_warns_when_a_training_part_lacks_a_class():
    # telegram lives in one capture: the fold that tests it trains without it.
    table = pd.DataFrame({"file": ["a", "a", "b", "b", "c", "c", "d", "d", "e"]})
    y = np.array(["dns"] * 8 + ["telegram"])
    table.loc[8, "file"] = "t"
    with pytest.warns(UserWarning) as record:
        splits = list(CaptureFileKFold(n_splits=3).split(table, y))
    (message,) = [str(w.message) for w in record]
    (fold,) = [i for i, (train, _) in enumerate(splits) if 8 not in train]
    assert message.startswith(
        "CaptureFileKFold: the training part of 1 of 3 folds lacks a class"
    )
    assert (
        f"fold {fold} lacks telegram (1 session from 1 capture file, all in its "
        "test part)" in message
    )
    # The folds are the ones split(X) gives without labels.
    assert [t.tolist() for _, t in splits] == [
        t.tolist() for _, t in CaptureFileKFold(n_splits=3).split(table)
    ]
    # cross_val_score passes y on: the warning reaches the user there too.
    X = np.zeros((len(y), 1))
    with pytest.warns(UserWarning, match="ServerEndpointKFold: the training part"):
        cross_val_score(
            DecisionTreeClassifier(),
            X,
            y,
            groups=table["file"],
            cv=ServerEndpointKFold(n_splits=3),
        )


def test_no_warning_when_every_training_part_has_every_class():
    table, y = _table()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(CaptureFileKFold(n_splits=4).split(table, y))
        list(ServerEndpointKFold(n_splits=3).split(table, y))


def test_server_endpoints_direction_independent():
    table, _ = _table()
    keys = server_endpoints(table)
    rev = table.rename(
        columns={
            "src_addr": "dst_addr",
            "dst_addr": "src_addr",
            "src_port": "dst_port",
            "dst_port": "src_port",
        }
    )
    np.testing.assert_array_equal(keys, server_endpoints(rev))
    # The server is the side with the well-known port, whoever sent first.
    assert set(keys) <= {
        "TCP/93.184.216.34/443",
        "UDP/8.8.8.8/53",
        "TCP/10.1.1.1/80",
        *(f"TCP/172.16.0.{i}/{8000 + i}" for i in range(6)),
    }
    dst = server_endpoints(table, endpoint="dst")
    assert len(set(dst)) > len(set(keys))  # "dst" takes the reversed ones at face value
    addr = server_endpoints(table, include_port=False)
    assert set(addr) <= {"93.184.216.34", "8.8.8.8", "10.1.1.1"} | {
        f"172.16.0.{i}" for i in range(6)
    }
    with pytest.raises(ValueError, match="endpoint must be"):
        server_endpoints(table, endpoint="client")
    with pytest.raises(ValueError, match="lacks column"):
        server_endpoints(table.drop(columns="dst_port"))


def test_equal_ports_tie_broken_by_address():
    t = pd.DataFrame(
        {
            "protocol": ["UDP", "UDP"],
            "src_addr": ["10.0.0.9", "10.0.0.1"],
            "src_port": [137, 137],
            "dst_addr": ["10.0.0.1", "10.0.0.9"],
            "dst_port": [137, 137],
        }
    )
    keys = server_endpoints(t)
    assert keys[0] == keys[1] == "UDP/10.0.0.1/137"


def test_server_endpoint_kfold_never_splits_a_server():
    table, _ = _table()
    splits = list(ServerEndpointKFold(n_splits=3).split(table))
    _check_disjoint(splits, len(table), server_endpoints(table))
    _check_disjoint(splits, len(table), _session_keys(table))
    with pytest.raises(ValueError, match="lacks column"):
        next(ServerEndpointKFold().split(np.zeros((4, 2))))


def test_session_time_split_trains_on_the_past():
    table, _ = _table()
    t = table["first_ts"].to_numpy()
    splits = list(SessionTimeSplit(n_splits=4).split(table))
    assert len(splits) == 4
    for train, test in splits:
        assert not set(train) & set(test)
        # strictly earlier, ties included: a shared start time never straddles
        assert t[train].max() < t[test].min()
    tested = np.concatenate([test for _, test in splits])
    assert len(tested) == len(set(tested))


def test_session_time_split_gap_and_max_train_size():
    t = np.arange(60, dtype=float)
    X = np.zeros((60, 1))
    for train, test in SessionTimeSplit(n_splits=3, times=t, gap=5).split(X):
        assert t[test].min() - t[train].max() >= 5
    for train, _ in SessionTimeSplit(3, times=t, max_train_size=4).split(X):
        assert len(train) == 4
    with pytest.raises(ValueError, match="no training sessions"):
        list(SessionTimeSplit(n_splits=3, times=t, gap=100).split(X))
    with pytest.raises(ValueError, match="no column 'first_ts'"):
        list(SessionTimeSplit().split(X))
    with pytest.raises(ValueError, match="gap"):
        list(SessionTimeSplit(times=t, gap=-1).split(X))
    with pytest.raises(ValueError, match="NaN"):
        list(SessionTimeSplit(times=np.full(60, np.nan)).split(X))
    with pytest.raises(ValueError, match="share a start time"):
        list(SessionTimeSplit(times=np.zeros(60)).split(X))


def test_session_time_split_purges_groups_across_the_cut():
    table, _ = _table()
    files = table["file"].to_numpy()
    for train, test in SessionTimeSplit(n_splits=3).split(table, groups=files):
        assert not set(files[train]) & set(files[test])


CVS = [
    CaptureFileKFold(n_splits=3),
    ServerEndpointKFold(n_splits=3),
    SessionTimeSplit(n_splits=3),
]


def _pipe():
    select = ColumnTransformer([("num", "passthrough", ["f0", "f1"])])
    return make_pipeline(select, DecisionTreeClassifier(random_state=0))


@pytest.mark.parametrize("cv", CVS, ids=lambda c: type(c).__name__)
def test_usable_in_cross_val_score_and_grid_search(cv):
    table, y = _table()
    scores = cross_val_score(_pipe(), table, y, cv=cv)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    grid = GridSearchCV(
        _pipe(), {"decisiontreeclassifier__max_depth": [1, 3]}, cv=cv
    ).fit(table, y)
    assert grid.best_params_["decisiontreeclassifier__max_depth"] in (1, 3)
    assert len(grid.cv_results_["split2_test_score"]) == 2


def test_groups_routed_with_metadata_routing():
    table, y = _table()
    X = table[["f0", "f1"]].to_numpy()
    with sklearn.config_context(enable_metadata_routing=True):
        res = cross_validate(
            LogisticRegression(),
            X,
            y,
            cv=CaptureFileKFold(n_splits=3),
            params={"groups": table["file"].to_numpy()},
            return_indices=True,
        )
    files = table["file"].to_numpy()
    for tr, te in zip(res["indices"]["train"], res["indices"]["test"]):
        assert not set(files[tr]) & set(files[te])


def test_repr_and_params():
    cv = ServerEndpointKFold(n_splits=4, endpoint="dst")
    assert "endpoint='dst'" in repr(cv) and "n_splits=4" in repr(cv)
    assert "gap=2" in repr(SessionTimeSplit(gap=2))


def _ustc_row(ts, src, sport, dst, dport, proto=17, width=128):
    import ipaddress
    import struct

    l4 = struct.pack("!HHHH", sport, dport, 8, 0)
    if proto == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x18, 1024, 0, 0)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        1,
        0,
        64,
        proto,
        0,
        ipaddress.ip_address(src).packed,
        ipaddress.ip_address(dst).packed,
    )
    frame = b"\x00" * 12 + b"\x08\x00" + ip + l4
    row = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    row += struct.pack(">IIII", int(ts), int(ts % 1 * 1e6), len(frame), len(frame))
    row += frame + struct.pack(">IIII", int(ts) + 1, 0, len(frame), len(frame)) + frame
    return np.frombuffer(row[:width].ljust(width, b"\x00"), np.uint8)


def test_ustc_session_table_reads_first_packet():
    rows = np.stack(
        [
            _ustc_row(1.4e9 + 0.5, "10.0.0.2", 50000, "8.8.8.8", 53),
            _ustc_row(1.4e9 + 7, "1.2.3.4", 443, "10.0.0.2", 50001, proto=6),
            np.zeros(128, np.uint8),
        ]
    )
    table = ustc_session_table(rows)
    assert table["protocol"].tolist() == ["UDP", "TCP", ""]
    assert table["src_addr"].tolist() == ["10.0.0.2", "1.2.3.4", ""]
    assert table["dst_port"].tolist() == [53, 50001, -1]
    np.testing.assert_allclose(table["first_ts"][:2], [1.4e9 + 0.5, 1.4e9 + 7])
    assert np.isnan(table["first_ts"][2])
    # 128 bytes hold the first packet (16 + 42) and the start of the second.
    assert table["packets"].tolist() == [2, 2, 0]
    assert server_endpoints(table[:2]).tolist() == ["UDP/8.8.8.8/53", "TCP/1.2.3.4/443"]
    with pytest.raises(ValueError, match="uint8"):
        ustc_session_table(rows.astype(float))


DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ISCX = DATA / "iscx-vpn2016"


@pytest.mark.skipif(not ISCX.is_dir(), reason=f"shared ISCX data absent ({ISCX})")
def test_splitters_on_published_iscx_rows():
    from sklearn_flowspectrum import read_idx

    folder = ISCX / "VpnSessionAllLayers"
    X = read_idx(folder / "train-images-idx3-ubyte.gz").reshape(-1, 784)[::20]
    table = ustc_session_table(X)
    assert (table["protocol"] != "").mean() > 0.99
    assert table["first_ts"].between(1.4e9, 1.5e9).all()  # 2014-2017
    keys = server_endpoints(table)
    for train, test in ServerEndpointKFold(n_splits=3).split(table):
        assert not set(keys[train]) & set(keys[test])
    t = table["first_ts"].to_numpy()
    for train, test in SessionTimeSplit(n_splits=3, gap=3600).split(table):
        assert t[test].min() - t[train].max() >= 3600
