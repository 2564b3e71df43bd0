"""Session tables larger than memory: one Parquet part per capture.

:func:`sessions_to_parquet` reads each capture on a worker of joblib's
backend (loky, or Dask's with a ``distributed.Client``) and writes its
sessions to a Parquet part of its own, so that no process holds more than
one capture's sessions; :func:`read_sessions_parquet` returns a
``dask.dataframe.DataFrame`` over the parts and :func:`vectorize_partitions`
turns one into a ``dask.array`` of session images, a partition at a time.
pyarrow and dask are optional (the ``dask`` extra).
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib.parallel import get_active_backend

from sklearn_flowspectrum._atomic import atomic_output
from sklearn_flowspectrum._capture import CaptureWarning
from sklearn_flowspectrum._sessions import (
    _ON_ERROR,
    KEEP_BYTES,
    TUPLE_COLUMNS,
    SessionReport,
    expand_paths,
    read_sessions,
    run_on_workers,
    session_frame,
)
from sklearn_flowspectrum._validation import check_n_jobs

__all__ = ["read_sessions_parquet", "sessions_to_parquet", "vectorize_partitions"]

MANIFEST = "_sessions.json"  # a leading "_": Parquet readers skip it
FORMAT = "sklearn_flowspectrum.sessions"
_PART = "part-{:05d}.parquet"
_PART_NAME = re.compile(r"part-\d{5,}\.parquet")
_META_KEY = b"sklearn_flowspectrum"


def _need(module, what):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ImportError(
            f"{what} needs {module.split('.')[0]}: pip install "
            "'sklearn-flowspectrum[dask]' (or pyarrow and dask[dataframe])"
        ) from None


def _name_bytes(name):
    """A file name as bytes (names that are not UTF-8 included) in hex, for
    JSON and Parquet metadata."""
    return os.fsencode(name).hex()


def _name_of(hexed):
    return os.fsdecode(bytes.fromhex(hexed))


def _report_json(row):
    out = dict(row)
    out["file"] = _name_bytes(row["file"])
    return out


def _report_row(row):
    out = dict(row)
    out["file"] = _name_of(row["file"])
    return out


# ---------------------------------------------------------------------------
# Writing


def _write_part(file, label, with_labels, destination, kwargs):
    """Read one capture and write its sessions to ``destination`` (on a
    worker); return its report row."""
    table, report = read_sessions(
        [file], [label] if with_labels else None, return_report=True, **kwargs
    )
    row = {k: (v.item() if isinstance(v, np.generic) else v)
           for k, v in report.iloc[0].items()}  # fmt: skip
    row["file"] = file  # exactly as given, not as a pandas string column made it
    write_part(table, destination, file, row)
    return row


def write_part(table, destination, file, report_row):
    """Write a session table of one capture to a Parquet file, atomically.

    Tuple columns become lists (of binary for ``frames``); ``file`` is a
    string column (bytes that are not UTF-8 shown as ``\\x..``) and, exact,
    in the file's metadata with the table's ``attrs`` and its report row.
    """
    pa = _need("pyarrow", "write_part")
    pq = _need("pyarrow.parquet", "write_part")
    arrays, names = [], []
    for k in table.columns:
        col = table[k]
        if k == "frames":
            arr = pa.array(col.tolist(), pa.list_(pa.binary()))
        elif k in TUPLE_COLUMNS:
            arr = pa.array(col.tolist(), pa.list_(pa.int64()))
        elif k == "file":
            shown = os.fsencode(file).decode("utf-8", "backslashreplace")
            arr = pa.array([shown] * len(col), pa.string())
        elif col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
            arr = pa.array(col.tolist())
        else:
            arr = pa.array(col.to_numpy())
        arrays.append(arr)
        names.append(k)
    meta = {
        "file": _name_bytes(file),
        "keep_bytes": table.attrs.get("keep_bytes"),
        "keep_packets": table.attrs.get("keep_packets"),
        "flows": table.attrs.get("flows"),
        "report": _report_json(report_row),
    }
    arrow = pa.Table.from_arrays(arrays, names=names)
    arrow = arrow.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    with atomic_output(destination) as tmp:
        pq.write_table(arrow, tmp)


def sessions_to_parquet(
    paths,
    out_dir,
    labels=None,
    *,
    n_jobs=None,
    on_error="raise",
    **kwargs,
):
    """Read captures into Parquet parts, one per capture, never all at once.

    Each capture is read by a worker of joblib's backend (``n_jobs``; under
    ``joblib.parallel_config(backend="dask")`` the workers of a
    ``distributed.Client``), which writes its sessions to
    ``out_dir/part-NNNNN.parquet`` itself: only paths and parameters travel,
    and memory holds one capture's sessions per worker, whatever the number
    of captures.  Each part is written to a temporary file and renamed when
    complete, so no part is ever half-written; the list of parts, the
    parameters and the report are written last, to ``out_dir/_sessions.json``.

    Parameters
    ----------
    paths : str, os.PathLike or list of them
        Capture files or folders, as :func:`read_sessions` takes them
        (streams are not offered: a worker could not read them).
    out_dir : str or os.PathLike
        Folder of the parts, created if missing.  It must hold no parts of
        an earlier call (remove them first): the parts of two calls would
        mix for readers that take every Parquet file of a folder.
    labels : None, "dir", scalar, sequence or dict, default=None
        As for :func:`read_sessions`.
    n_jobs : int, default=None
        Captures read in parallel, as for :func:`read_sessions`.
    on_error : {"raise", "warn", "ignore"}, default="raise"
        As for :func:`read_sessions`; with ``"warn"`` or ``"ignore"`` a
        capture that cannot be read gets a part with the sessions read
        before the problem (possibly none), and the report its error.
    **kwargs
        The other parameters of :func:`read_sessions` that act on each
        capture alone: ``flows``, ``keep_bytes``, ``keep_packets``,
        ``drop_empty``, ``drop_retransmissions``, ``engine``,
        ``statistics``, ``idle_timeout``, ``active_timeout``.
        ``drop_duplicates`` compares sessions across all captures and is not
        offered here.

    Returns
    -------
    report : pandas.DataFrame
        One row per capture, as ``read_sessions(..., return_report=True)``
        gives it.

    Raises
    ------
    ValueError
        For bad parameters, a folder that already holds parts, or (with
        ``on_error="raise"``) a capture that cannot be read, naming it.
    ImportError
        When pyarrow is not installed.

    See Also
    --------
    read_sessions_parquet : The parts as one ``dask.dataframe.DataFrame``.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_flowspectrum import sessions_to_parquet, read_sessions_parquet
    >>> from sklearn_flowspectrum.datasets import load_sample_captures
    >>> captures = load_sample_captures()
    >>> with tempfile.TemporaryDirectory() as out:
    ...     report = sessions_to_parquet(captures.filenames[:3], out)
    ...     sessions = read_sessions_parquet(out)
    ...     table = sessions.compute()
    >>> sessions.npartitions, len(table) == int(report["sessions"].sum())
    (3, True)
    """
    _need("pyarrow", "sessions_to_parquet")
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be one of {_ON_ERROR}, got {on_error!r}")
    allowed = {
        "flows",
        "keep_bytes",
        "keep_packets",
        "drop_empty",
        "drop_retransmissions",
        "engine",
        "statistics",
        "idle_timeout",
        "active_timeout",
    }
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        extra = (
            " (it compares sessions across all captures; drop duplicates from "
            "the table of the parts)"
            if "drop_duplicates" in unknown
            else ""
        )
        raise TypeError(
            f"sessions_to_parquet got unexpected parameter(s) {unknown}{extra}; "
            f"it takes {sorted(allowed)}"
        )
    check_n_jobs(n_jobs, "sessions_to_parquet")
    entries = expand_paths(paths, labels)
    if any(not isinstance(e.source, (str, os.PathLike)) or e.file == "-"
           for e in entries):  # fmt: skip
        raise ValueError("sessions_to_parquet reads files, not streams")
    if on_error == "raise":
        for entry in entries:
            if entry.error is not None:
                raise entry.error
    # Check every parameter once, here, before any worker starts.
    _check_kwargs(kwargs)
    out = Path(os.path.abspath(out_dir))  # where workers elsewhere write too
    out.mkdir(parents=True, exist_ok=True)
    stale = [p.name for p in out.iterdir()
             if p.name == MANIFEST or _PART_NAME.fullmatch(p.name)]  # fmt: skip
    if stale:
        raise ValueError(
            f"{out}: holds session parts already ({stale[0]}); remove them or "
            "write to another folder"
        )
    # The workers do not warn (their warnings would stay on their machine):
    # the report says what happened, and the warnings are given here.
    quiet = "ignore" if on_error == "warn" else on_error
    with_labels = labels is not None
    todo = [
        (entry.file, entry.label, with_labels, str(out / _PART.format(i)),
         dict(kwargs, on_error=quiet))
        for i, entry in enumerate(entries)
    ]  # fmt: skip
    if n_jobs is None:
        # sklearn's rule: None is 1 unless a joblib.parallel_config says more.
        n_jobs = get_active_backend()[1]
    if n_jobs is None or n_jobs == 1 or len(todo) < 2:
        rows = [_write_part(*a) for a in todo]
    else:
        rows = run_on_workers(_write_part, todo, n_jobs)
    for row in rows:
        if row["error"] is not None and on_error == "warn":
            warnings.warn(
                f"{row['error']} (kept the {row['packets']} packets read before it)",
                CaptureWarning,
                stacklevel=2,
            )
    manifest = {
        "format": FORMAT,
        "version": 1,
        "parts": [
            {
                "part": Path(a[3]).name,
                "file": _name_bytes(a[0]),
                "sessions": int(row["sessions"]),
            }
            for a, row in zip(todo, rows)
        ],  # fmt: skip
        "keep_bytes": int(kwargs.get("keep_bytes", KEEP_BYTES)),
        "keep_packets": int(kwargs.get("keep_packets", 0)),
        "flows": bool(kwargs.get("flows", False)),
        "statistics": bool(kwargs.get("statistics", False)),
        "labels": with_labels,
        "report": [_report_json(row) for row in rows],
    }
    with atomic_output(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return SessionReport(rows).to_frame()


def _check_kwargs(kwargs):
    """Raise read_sessions' error for a bad parameter, before any worker
    starts: read a capture of no packets with them."""
    import io

    empty = io.BytesIO(
        bytes.fromhex("d4c3b2a102000400" + "00" * 8 + "ffff000001000000")
    )
    read_sessions(empty, **kwargs)


# ---------------------------------------------------------------------------
# Reading


def _manifest(out_dir):
    path = Path(out_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(
            f"{out_dir}: no {MANIFEST}; not a folder written by "
            "sessions_to_parquet (or the call did not finish)"
        ) from None
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a session manifest of sklearn_flowspectrum")
    return manifest


def read_part(path, start=0, file_dtype=None):
    """One Parquet part as a session table (the dtypes of read_sessions).

    Parameters
    ----------
    path : str or os.PathLike
        A part written by :func:`sessions_to_parquet`.
    start : int, default=0
        Index of its first row.
    file_dtype : None or "object", default=None
        ``"object"`` for a ``file`` column of Python strings (what
        read_sessions gives when one of the names is not UTF-8).

    Returns
    -------
    sessions : pandas.DataFrame
    """
    pq = _need("pyarrow.parquet", "read_part")
    arrow = pq.read_table(path)
    meta = json.loads(arrow.schema.metadata[_META_KEY])
    file = _name_of(meta["file"])
    data = {}
    for k in arrow.column_names:
        col = arrow.column(k)
        if k in TUPLE_COLUMNS:
            data[k] = [tuple(x) for x in col.to_pylist()]
        elif k == "file":
            data[k] = [file] * len(col)
        elif k in ("protocol", "src_addr", "dst_addr", "label"):
            data[k] = col.to_pylist()
        else:
            data[k] = col.to_numpy()
    table = session_frame(data)
    if file_dtype == "object" and "file" in table.columns:
        table["file"] = table["file"].astype(object)
    table.index = pd.RangeIndex(start, start + len(table))
    for k in ("keep_bytes", "keep_packets", "flows"):
        table.attrs[k] = meta[k]
    return table


def _is_utf8(name):
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_sessions_parquet(out_dir, *, return_report=False):
    """The sessions that :func:`sessions_to_parquet` wrote, as a dask DataFrame.

    One partition per capture that has sessions, in the order of the
    captures, indexed by the row number in the whole table: computed, it is
    the table that :func:`read_sessions` gives for the same captures and
    parameters (``drop_duplicates`` aside), with the same dtypes, tuple
    columns and ``attrs["keep_bytes"]``, ``["keep_packets"]`` and
    ``["flows"]`` (the report is not in ``attrs``: see ``return_report``).

    Parameters
    ----------
    out_dir : str or os.PathLike
        A folder written by :func:`sessions_to_parquet`.
    return_report : bool, default=False
        Also return the per-capture report as a pandas DataFrame.

    Returns
    -------
    sessions : dask.dataframe.DataFrame
        Nothing is read until it is computed (the parts are read by the
        workers of dask's scheduler, or of a ``distributed.Client``).
    report : pandas.DataFrame
        Only with ``return_report=True``.

    Raises
    ------
    ValueError
        When ``out_dir`` holds no manifest of ``sessions_to_parquet``.
    ImportError
        When dask or pyarrow is not installed.

    See Also
    --------
    vectorize_partitions : Session images of the partitions, as a dask array.
    """
    dask = _need("dask", "read_sessions_parquet")
    dd = _need("dask.dataframe", "read_sessions_parquet")
    _need("pyarrow", "read_sessions_parquet")
    manifest = _manifest(out_dir)
    folder = Path(os.path.abspath(out_dir))  # the workers may run elsewhere
    parts = manifest["parts"]
    names = [_name_of(p["file"]) for p in parts]
    file_dtype = None if all(map(_is_utf8, names)) else "object"
    full = [p for p in parts if p["sessions"]]
    report = SessionReport(_report_row(r) for r in manifest["report"])
    # The dtypes of read_sessions, not those dask would convert strings to.
    with dask.config.set({"dataframe.convert-string": False}):
        if not full:
            meta = read_part(folder / parts[0]["part"], 0, file_dtype)
            ddf = dd.from_pandas(meta, npartitions=1)
        else:
            starts = np.cumsum([0] + [p["sessions"] for p in full])
            paths = [str(folder / p["part"]) for p in full]
            meta = read_part(paths[0], 0, file_dtype).iloc[:0]
            ddf = dd.from_map(
                read_part,
                paths,
                starts[:-1].tolist(),
                args=(file_dtype,),
                meta=meta,
                divisions=(*starts[:-1].tolist(), int(starts[-1]) - 1),
            )
    if return_report:
        return ddf, report.to_frame()
    return ddf


def _transform(vectorizer, part):
    return vectorizer.transform(part)


def vectorize_partitions(vectorizer, sessions):
    """Session images of a dask DataFrame of sessions, a partition at a time.

    Parameters
    ----------
    vectorizer : PcapSessionVectorizer
        Fitted, or not: an unfitted one is fitted on the DataFrame's empty
        ``meta`` (the transformer learns nothing from data).
    sessions : dask.dataframe.DataFrame
        Session tables as partitions, e.g. from :func:`read_sessions_parquet`
        (each with ``attrs["keep_bytes"]``).

    Returns
    -------
    images : dask.array.Array of shape (n_sessions, n_bytes)
        One block per partition (their lengths unknown until computed:
        ``images.compute_chunk_sizes()``), of the dtype ``transform`` gives.
        Each block is made by the worker that reads its partition: no
        process holds all images unless the array is computed whole.
    """
    da = _need("dask.array", "vectorize_partitions")
    dask = _need("dask", "vectorize_partitions")
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(vectorizer)
    except NotFittedError:
        vectorizer = vectorizer.fit(sessions._meta)
    dtype = np.float32 if vectorizer.scale else np.uint8
    transform = dask.delayed(_transform, pure=True)
    blocks = [
        da.from_delayed(
            transform(vectorizer, part),
            shape=(np.nan, int(vectorizer.n_features_out_)),
            dtype=dtype,
        )
        for part in sessions.to_delayed()
    ]
    return da.concatenate(blocks, axis=0)
