"""sessions_to_parquet / read_sessions_parquet / vectorize_partitions."""

import json
import os
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest

from sklearn_flowspectrum import (
    CaptureError,
    PcapSessionVectorizer,
    read_sessions,
    read_sessions_parquet,
    sessions_to_parquet,
    vectorize_partitions,
)
from sklearn_flowspectrum import _parquet as parquet_module
from sklearn_flowspectrum.datasets import load_sample_captures
from tests import _pcaps as P

pytest.importorskip("pyarrow", reason="pyarrow is not installed (the 'dask' extra)")
pytest.importorskip("dask.dataframe", reason="dask is not installed (the 'dask' extra)")


def _same_as_read_sessions(paths, out, labels=None, **kwargs):
    report = sessions_to_parquet(paths, out, labels, **kwargs)
    sessions, parts_report = read_sessions_parquet(out, return_report=True)
    table, expected_report = read_sessions(paths, labels, return_report=True, **kwargs)
    got = sessions.compute()
    pd.testing.assert_frame_equal(table, got)
    pd.testing.assert_frame_equal(expected_report, report)
    pd.testing.assert_frame_equal(expected_report, parts_report)
    for key in ("keep_bytes", "keep_packets", "flows"):
        assert got.attrs[key] == table.attrs[key]
    return sessions, table


@pytest.mark.parametrize(
    "kwargs",
    [{}, dict(statistics=True, flows=True), dict(keep_bytes=100, keep_packets=4)],
)
def test_parts_round_trip_to_the_table_of_read_sessions(tmp_path, kwargs):
    captures = load_sample_captures()
    sessions, table = _same_as_read_sessions(
        captures.filenames, tmp_path / "parts", list(captures.target), **kwargs
    )
    assert sessions.npartitions == len(captures.filenames)
    # One part per capture, a manifest, nothing else (no temporary files).
    names = sorted(os.listdir(tmp_path / "parts"))
    assert names == ["_sessions.json"] + [
        f"part-{i:05d}.parquet" for i in range(len(captures.filenames))
    ]
    assert isinstance(table["frames"][0], tuple)
    assert isinstance(table["frames"][0][0], bytes)


def test_file_names_that_are_not_utf8_and_folders(tmp_path):
    folder = tmp_path / "caps"
    (folder / "dns").mkdir(parents=True)
    odd = os.path.join(os.fsencode(folder / "dns"), b"caf\xe9.pcap")
    P.write_pcap(os.fsdecode(odd), [P.eth(p) for p in P.tcp_conversation()])
    P.write_pcap(folder / "dns" / "plain.pcap", [P.eth(P.ipv4(P.udp(), proto=17))])
    sessions, table = _same_as_read_sessions([str(folder)], tmp_path / "out", "dir")
    assert table["file"].dtype == object
    assert os.fsdecode(odd) in set(sessions.compute()["file"])
    # Other tools see the name with the odd byte escaped.
    import pyarrow.parquet as pq

    shown = pq.read_table(tmp_path / "out" / "part-00000.parquet")["file"][0]
    assert shown.as_py().endswith("caf\\xe9.pcap")


def test_captures_without_sessions_give_an_empty_frame(tmp_path):
    paths = [P.write_pcap(tmp_path / f"{i}.pcap", []) for i in range(2)]
    sessions, table = _same_as_read_sessions(paths, tmp_path / "out")
    assert len(table) == 0 and list(sessions.columns) == list(table.columns)


def test_no_half_written_part(tmp_path, monkeypatch):
    captures = load_sample_captures()
    import pyarrow.parquet as pq

    real = pq.write_table
    calls = []

    def failing(table, where, **kw):
        calls.append(where)
        if len(calls) == 2:
            with open(where, "wb") as f:
                f.write(b"PAR1 half")
            raise OSError(28, "No space left on device")
        return real(table, where, **kw)

    monkeypatch.setattr(pq, "write_table", failing)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        sessions_to_parquet(captures.filenames[:3], out)
    # The first part is whole; the second is not there, nor its temporary
    # file; there is no manifest, so readers refuse the folder.
    assert sorted(os.listdir(out)) == ["part-00000.parquet"]
    assert len(pq.read_table(out / "part-00000.parquet")) > 0
    with pytest.raises(ValueError, match="no _sessions.json"):
        read_sessions_parquet(out)


def test_refusals(tmp_path):
    path = P.write_pcap(tmp_path / "a.pcap", [P.eth(p) for p in P.tcp_conversation()])
    out = tmp_path / "out"
    with pytest.raises(TypeError, match="drop_duplicates.*across all captures"):
        sessions_to_parquet(path, out, drop_duplicates=True)
    with pytest.raises(ValueError, match="keep_bytes must be an int"):
        sessions_to_parquet(path, out, keep_bytes=-1)
    assert not out.exists() or not os.listdir(out)  # nothing written
    with pytest.raises(CaptureError, match="missing.pcap: no such file"):
        sessions_to_parquet([path, tmp_path / "missing.pcap"], out)
    sessions_to_parquet(path, out)
    with pytest.raises(ValueError, match="holds session parts already"):
        sessions_to_parquet(path, out)
    other = tmp_path / "other"
    other.mkdir()
    (other / "_sessions.json").write_text(json.dumps({"format": "x"}))
    with pytest.raises(ValueError, match="not a session manifest"):
        read_sessions_parquet(other)


def test_a_damaged_capture_warns_here_and_keeps_what_was_read(tmp_path):
    good = P.write_pcap(tmp_path / "a.pcap", [P.eth(p) for p in P.tcp_conversation()])
    data = P.pcap_bytes([P.eth(p) for p in P.tcp_conversation()])
    bad = P.write_bytes(tmp_path / "b.pcap", data[:-5])
    with pytest.warns(UserWarning, match="b.pcap"):
        report = sessions_to_parquet([good, bad], tmp_path / "out", on_error="warn")
    assert report.loc[1, "error"] is not None and report.loc[1, "packets"] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = read_sessions([good, bad], on_error="ignore")
    pd.testing.assert_frame_equal(
        table, read_sessions_parquet(tmp_path / "out").compute()
    )


def test_parallel_writers_equal_the_serial_one(tmp_path):
    captures = load_sample_captures()
    sessions_to_parquet(captures.filenames, tmp_path / "serial")
    with joblib.parallel_config(backend="threading"):
        sessions_to_parquet(captures.filenames, tmp_path / "parallel", n_jobs=2)
    pd.testing.assert_frame_equal(
        read_sessions_parquet(tmp_path / "serial").compute(),
        read_sessions_parquet(tmp_path / "parallel").compute(),
    )


def test_parts_written_by_dask_workers(tmp_path):
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (the 'dask' extra)"
    )
    captures = load_sample_captures()
    local = sessions_to_parquet(captures.filenames, tmp_path / "local", n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.Client(
            processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as client:
            with distributed.get_task_stream(client) as tasks:
                with joblib.parallel_config(backend="dask"):
                    remote = sessions_to_parquet(
                        captures.filenames, tmp_path / "dask", n_jobs=-1
                    )
            assert tasks.data
            on_dask = read_sessions_parquet(tmp_path / "dask").compute()
    pd.testing.assert_frame_equal(local, remote)
    pd.testing.assert_frame_equal(
        read_sessions_parquet(tmp_path / "local").compute(), on_dask
    )


@pytest.mark.parametrize("scale", [True, False])
def test_vectorize_partitions_equals_transform(tmp_path, scale):
    captures = load_sample_captures()
    sessions_to_parquet(captures.filenames, tmp_path / "out")
    sessions = read_sessions_parquet(tmp_path / "out")
    images = vectorize_partitions(PcapSessionVectorizer(scale=scale), sessions)
    assert images.numblocks[0] == sessions.npartitions
    expected = PcapSessionVectorizer(scale=scale).fit_transform(
        read_sessions(captures.filenames)
    )
    got = images.compute()
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    # A fitted vectorizer is used as it is; a filtered frame works too.
    fitted = PcapSessionVectorizer(scale=scale, mask="none").fit(sessions._meta)
    tcp = sessions[sessions["protocol"] == "TCP"]
    np.testing.assert_array_equal(
        vectorize_partitions(fitted, tcp).compute(),
        fitted.transform(sessions.compute().query("protocol == 'TCP'")),
    )


def test_missing_pyarrow_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(ImportError, match=r"sklearn-flowspectrum\[dask\]"):
        parquet_module.sessions_to_parquet("x.pcap", "out")
