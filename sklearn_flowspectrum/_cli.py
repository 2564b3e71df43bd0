"""The ``flowspectrum`` command line (also ``python -m sklearn_flowspectrum``).

Sub-commands: ``sessions``, ``vectorize``, ``fit``, ``predict``, ``evaluate``,
``explain`` and ``demo``; ``flowspectrum COMMAND --help`` explains each.
Results go to files or stdout, progress, messages and warnings to stderr.
Exit status: 0 on success, 1 when the input is wrong (missing file, not a
capture, a model that does not fit the input: a one-line message), 2 on a
usage error, 130 when interrupted.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import json
import os
import re
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sklearn_flowspectrum._atomic import all_or_nothing, atomic_output
from sklearn_flowspectrum._protocols import GZIP_MAGIC
from sklearn_flowspectrum._version import __version__

MODEL_FORMAT = "sklearn_flowspectrum.model"
MODEL_VERSION = 1
# Suffixes that promise a pickle: ``fit`` warns when it writes the model
# format to one.
_PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
_MODEL_HELP = (
    "a model saved by 'flowspectrum fit': its model format (.fsm) loads "
    "without running code from the file; a pickle (.joblib, from fit "
    "--save-optimizer) only from a trusted source"
)
NPY_MAGIC = b"\x93NUMPY"
# Columns of the session table that hold packet bytes: not written to CSV.
_BYTE_COLUMNS = ("frames", "frame_ts_ns", "frame_orig_len")
_MASK_HELP = (
    "fields blanked in every packet: 'safe' (timestamps, addresses, ports, "
    "IP ID, checksums, DNS transaction IDs; the default), 'none' (the "
    "published images), or a comma-separated list of groups/fields, "
    "e.g. 'ports,timestamps'"
)


class CLIError(Exception):
    """A problem with the user's input: reported in one line, exit status 1."""


# ---------------------------------------------------------------------------
# small helpers


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _Console:
    """Messages, warnings and progress on stderr; only errors with ``--quiet``.

    Each distinct warning is printed once, as ``flowspectrum COMMAND:
    warning: MESSAGE``; :meth:`capture_warnings` routes Python warnings
    (of this package, sklearn, torch, ...) through the same line.
    """

    def __init__(self, quiet=False, command=None):
        self.quiet = quiet
        self.command = command
        self._warned = set()

    def info(self, message):
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def warn(self, message):
        message = " ".join(str(message).split())  # one line
        if self.quiet or message in self._warned:
            return
        self._warned.add(message)
        prefix = f"flowspectrum {self.command}: " if self.command else ""
        print(f"{prefix}warning: {message}", file=sys.stderr, flush=True)

    @contextmanager
    def capture_warnings(self):
        """Show Python warnings as :meth:`warn` lines (no source file, no
        source line), each once; none under ``--quiet``."""

        def show(message, category, filename, lineno, file=None, line=None):
            self.warn(message)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if self.quiet else "always")
            warnings.showwarning = show
            yield

    def epoch_line(self, text):
        """Sink of skorch's epoch table: stderr, colours only on a terminal."""
        if self.quiet:
            return
        if not sys.stderr.isatty():
            text = _ANSI.sub("", text)
        print(text, file=sys.stderr, flush=True)

    def progress(self, iterable, total=None, desc="", unit="file"):
        if self.quiet:
            return iterable
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - tqdm comes with skorch
            return iterable
        return tqdm(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            file=sys.stderr,
            leave=False,
            disable=None,  # no bar when stderr is not a terminal
        )

    @contextmanager
    def working(self, what, big=True, position=None, every=30.0):
        """Show that a long step (reading a big file) is still running.

        On a terminal, one line refreshed twice a second with the elapsed
        time and ``position()`` (text such as ": 12 of 80 MiB"); elsewhere
        (a log file) a line every ``every`` seconds.  Nothing under
        ``--quiet`` or when the step is not ``big``.
        """
        if self.quiet or not big:
            yield
            return
        tty = sys.stderr.isatty()
        done = threading.Event()
        start = time.perf_counter()

        def tick():
            while not done.wait(0.5 if tty else every):
                elapsed = time.perf_counter() - start
                read = "" if position is None else position()
                line = f"{what}{read} ({elapsed:.0f} s)"
                if tty:
                    print(f"\r{line}\x1b[K", end="", file=sys.stderr)
                else:
                    print(line, file=sys.stderr)
                sys.stderr.flush()

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            if tty:
                print("\r\x1b[K", end="", file=sys.stderr, flush=True)


# Inputs this big (bytes) get a sign of life while they are read.
BIG_INPUT = 64 * 2**20


def _bytes_read(path):
    """A callable giving how far this process has read ``path``, as text
    (": 12 of 80 MiB"), from the file offset Linux shows in /proc; "" where
    that is not known."""
    real = os.path.realpath(path)
    try:
        total = os.path.getsize(real)
    except OSError:
        total = 0

    def position():
        try:
            for fd in os.listdir("/proc/self/fd"):
                if os.readlink(f"/proc/self/fd/{fd}") != real:
                    continue
                with open(f"/proc/self/fdinfo/{fd}") as info:
                    pos = int(info.readline().split()[1])  # "pos:\tN"
                return f": {pos / 2**20:,.0f} of {total / 2**20:,.0f} MiB"
        except (OSError, ValueError, IndexError):
            pass
        return ""

    return position


class _Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def _mask_arg(text):
    from sklearn_flowspectrum._layouts import resolve_mask

    text = text.strip()
    if text in ("safe", "none"):
        return text
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("empty mask")
    try:
        resolve_mask(parts)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return parts


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _float_or_nan(text):
    try:
        return float(text)
    except ValueError:
        return float("nan")  # fails every range check


def _positive_float(text):
    value = _float_or_nan(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _share_arg(text):
    """A held-out share: 0 (none; fit's default) or strictly between 0 and 1."""
    value = _float_or_nan(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a share between 0 and 1 (e.g. 0.2), got {text!r}"
        )
    return value


_DEVICES = "'auto', 'cpu', 'cuda' or 'cuda:N'"


def _device_arg(text):
    device = text.strip().lower()
    if device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", device):
        return device
    raise argparse.ArgumentTypeError(f"must be {_DEVICES}, got {text!r}")


def _check_device(device):
    """Fail before reading anything when ``--device`` names a missing GPU."""
    if not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        built = "with" if torch.version.cuda else "without"
        raise CLIError(
            f"--device {device}: no CUDA device is available (torch "
            f"{torch.__version__}, built {built} CUDA); use --device cpu or auto"
        )
    index = int(device.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise CLIError(
            f"--device {device}: this machine has {count} CUDA device(s), "
            f"cuda:0 to cuda:{count - 1}"
        )


def _n_jobs_arg(text):
    try:
        n_jobs = int(text)
    except ValueError:
        n_jobs = None
    if not n_jobs:  # not a number, or 0 (no workers at all)
        raise argparse.ArgumentTypeError(
            f"must be a non-zero integer (-1: all cores), got {text!r}"
        )
    return n_jobs


def _mask_text(mask):
    return mask if isinstance(mask, str) else ",".join(mask)


def _image_format(path):
    """``"idx"`` (plain or gzip) or ``"npy"`` when ``path`` holds session
    images, else None."""
    import gzip

    try:
        with open(path, "rb") as f:
            head = f.read(len(NPY_MAGIC))
            if head == NPY_MAGIC:
                return "npy"
            if head[:2] == GZIP_MAGIC:
                f.seek(0)
                with gzip.open(f) as g:
                    head = g.read(4)
    except (OSError, EOFError):
        return None
    if len(head) >= 4 and head[:2] == b"\0\0" and head[2] in (8, 9, 11, 12, 13, 14):
        return "idx"
    return None


def _expand_inputs(inputs):
    """Split the inputs into captures and session-image files (IDX, .npy).

    Folders and the files that are not image files are captures, expanded by
    the folder rules of :func:`read_sessions`: ``captures`` is a list of its
    entries (``file``, ``label`` by the folder rule, ``error``, ``given``).
    An input that does not exist, or a folder without captures, stops the
    command here.  Whether a file is a readable capture is left to reading,
    so that ``--on-error`` treats a file given by name as it treats the same
    file in a folder.
    """
    from sklearn_flowspectrum._sessions import LABELS_FROM_FOLDERS, expand_paths

    capture_inputs, images = [], []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            capture_inputs.append(str(raw))
            continue
        if not path.exists():
            raise CLIError(f"{raw}: no such file or folder")
        if not path.is_file():
            raise CLIError(f"{raw}: not a regular file")
        if _image_format(path):
            images.append(str(path))
            continue
        capture_inputs.append(str(raw))
    captures = []
    if capture_inputs:
        captures = expand_paths(capture_inputs, LABELS_FROM_FOLDERS)
    for entry in captures:
        if entry.error is not None and entry.file == entry.given:
            raise CLIError(str(entry.error))  # a folder without captures
    if captures and images:
        raise CLIError(
            "give either capture files or image files (IDX, .npy), not both "
            f"(captures: {captures[0].file}, ...; images: {images[0]}, ...)"
        )
    return captures, images


def _labels_for(captures, how):
    """One label per capture: by the folder rule (``how`` None or "dir", the
    default of every command), or from a CSV file.

    The CSV has the columns ``file`` and ``label`` (more are ignored, so a
    table written by ``flowspectrum sessions`` serves); a capture is found by
    its path, else by its file name, and must have one label.
    """
    from sklearn_flowspectrum._sessions import LABELS_FROM_FOLDERS

    if how is None or how == LABELS_FROM_FOLDERS:
        return [entry.label for entry in captures]
    import pandas as pd

    table_path = Path(how)
    if not table_path.is_file():
        raise CLIError(
            f"{how}: labels file not found (expected 'dir' or a CSV: file,label)"
        )
    try:
        table = pd.read_csv(table_path, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - any parse error is the user's input
        raise CLIError(f"{how}: cannot read labels CSV ({exc})") from None
    if not {"file", "label"} <= set(table.columns):
        raise CLIError(f"{how}: labels CSV needs the columns 'file' and 'label'")
    by_path, by_name = {}, {}
    for file, label in zip(table["file"], table["label"]):
        by_path.setdefault(os.path.normpath(file), set()).add(label)
        by_name.setdefault(Path(file).name, set()).add(label)
    labels = []
    for entry in captures:
        found = by_path.get(os.path.normpath(entry.file))
        if found is None:
            found = by_name.get(Path(entry.file).name)
        if found is None:
            raise CLIError(f"{entry.file}: no label for this capture in {how}")
        if len(found) > 1:
            raise CLIError(
                f"{entry.file}: {how} gives it {len(found)} labels "
                f"({', '.join(sorted(found))}); a capture has one label"
            )
        labels.append(next(iter(found)))
    return labels


def _read_captures(captures, labels, args, console, vectorizer=None):
    """read_sessions over the captures, with a per-file progress bar.

    With a ``vectorizer``, the frames its images need are kept.
    """
    import pandas as pd

    from sklearn_flowspectrum._capture import CaptureError
    from sklearn_flowspectrum._sessions import KEEP_BYTES, read_sessions
    from sklearn_flowspectrum._vectorizer import frames_needed

    kwargs = {
        "idle_timeout": getattr(args, "idle_timeout", None),
        "active_timeout": getattr(args, "active_timeout", None),
        "flows": getattr(args, "flows", False),
        "drop_empty": getattr(args, "drop_empty", False),
        "drop_duplicates": getattr(args, "drop_duplicates", False),
        "drop_retransmissions": getattr(args, "drop_retransmissions", False),
        "on_error": getattr(args, "on_error", "raise"),
        "return_report": True,
    }
    if getattr(args, "keep_bytes", None) is not None:
        kwargs["keep_bytes"] = args.keep_bytes
    if vectorizer is not None:
        keep_bytes, keep_packets = frames_needed(
            vectorizer.n_bytes, vectorizer.layout, vectorizer.packet_bytes
        )
        kwargs["keep_bytes"] = max(KEEP_BYTES, keep_bytes)
        kwargs["keep_packets"] = keep_packets
    files = [entry.file for entry in captures]
    n_jobs = getattr(args, "n_jobs", None)
    tables, reports = [], []
    with _Timer() as timer:
        try:
            if n_jobs not in (None, 1) or len(files) == 1:
                # joblib reads the files in parallel: no per-file progress, but
                # a sign of life while big files are read.
                size = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
                if len(files) == 1:
                    what, position = f"reading {files[0]}", _bytes_read(files[0])
                else:
                    what, position = "reading the captures", None
                with console.working(what, big=size >= BIG_INPUT, position=position):
                    table, report = read_sessions(
                        files, labels, n_jobs=n_jobs, **kwargs
                    )
                tables, reports = [table], [report]
            else:
                for i, path in enumerate(
                    console.progress(files, total=len(files), desc="captures")
                ):
                    # A list: a class folder named "dir" is a label, not a rule.
                    label = None if labels is None else [labels[i]]
                    table, report = read_sessions([path], label, **kwargs)
                    tables.append(table)
                    reports.append(report)
        except CaptureError as exc:
            raise CLIError(str(exc)) from None
    sessions = pd.concat(tables, ignore_index=True)
    sessions.attrs = {
        key: tables[0].attrs.get(key) for key in ("keep_bytes", "keep_packets")
    }
    report = pd.concat(reports, ignore_index=True)
    sessions.attrs["report"] = report
    unit = "flows" if kwargs["flows"] else "sessions"
    console.info(
        f"read {len(files)} capture(s): {int(report['packets'].sum()):,} "
        f"packets, {int(report['used'].sum()):,} TCP/UDP, {len(sessions):,} "
        f"{unit} ({timer.seconds:.1f} s)"
    )
    # A damaged capture under --on-error warn: read_sessions warns (a
    # CaptureWarning naming the file), which main() shows once.
    if len(sessions) == 0:
        raise CLIError(
            f"no TCP/UDP {unit} in the given captures "
            f"({', '.join(files[:3])}{', ...' if len(files) > 3 else ''})"
        )
    return sessions


def _read_image_file(path):
    """Session images ``(n, n_bytes)`` uint8 from an IDX or .npy file."""
    from sklearn_flowspectrum._idx import read_idx

    try:
        if _image_format(path) == "npy":
            images = np.load(path, allow_pickle=False)
        else:
            images = read_idx(path)
    except (ValueError, OSError, EOFError) as exc:
        raise CLIError(f"{path}: cannot read the images ({exc})") from None
    if images.dtype != np.uint8 or images.ndim < 2:
        raise CLIError(
            f"{path}: expected uint8 session images, got {images.dtype} of "
            f"shape {images.shape}"
        )
    return images.reshape(images.shape[0], -1)


def _read_labels_file(path):
    """Labels from a file as ``vectorize --labels-output`` writes it: .npy,
    CSV with a ``label`` column, or IDX (class names from its legend)."""
    from sklearn_flowspectrum._idx import named_labels, read_idx

    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise CLIError(f"{path}: labels file not found")
    try:
        if name.endswith((".csv", ".csv.gz")):
            import pandas as pd

            table = pd.read_csv(path, dtype=str, keep_default_na=False)
            if "label" not in table.columns:
                raise CLIError(f"{path}: labels CSV needs a 'label' column")
            y = table["label"].to_numpy(dtype=object)
        elif _image_format(path) == "npy":
            y = np.load(path, allow_pickle=False)
        elif _image_format(path) == "idx":
            y = named_labels(read_idx(path), path)
        else:
            raise CLIError(
                f"{path}: not a labels file (.npy, .csv or IDX, as "
                "'flowspectrum vectorize --labels-output' writes them)"
            )
    except (ValueError, OSError, EOFError) as exc:
        raise CLIError(f"{path}: cannot read the labels ({exc})") from None
    if y.ndim != 1:
        raise CLIError(f"{path}: labels must be one per image, got shape {y.shape}")
    return y


def _read_idx_inputs(idx_files, console, need_labels=False, labels_file=None):
    """Rows (n, n_bytes) uint8 and labels (or None) from session-image files.

    Labels come from ``labels_file`` (for all the images, in order), else
    from the labels-idx1 file beside each images-idx3 file (class names from
    its legend, when there is one).
    """
    from sklearn_flowspectrum._idx import labels_beside, named_labels, read_idx
    from sklearn_flowspectrum._sessions import LABELS_FROM_FOLDERS

    if labels_file == LABELS_FROM_FOLDERS:
        raise CLIError(
            f"--labels {LABELS_FROM_FOLDERS} is for captures in class folders; "
            "image files take a labels file (--labels FILE) or the labels-idx1 "
            "file beside them"
        )
    rows, labels, unlabelled = [], [], []
    for path in idx_files:
        images = _read_image_file(path)
        rows.append(images)
        if labels_file is not None:
            continue
        label_path = labels_beside(path)
        if label_path is None or not label_path.is_file():
            unlabelled.append((path, label_path))
            continue
        try:
            y = named_labels(read_idx(label_path), label_path)
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        if y.ndim != 1 or len(y) != len(images):
            raise CLIError(
                f"{label_path}: {y.size} labels for {len(images)} images in {path}"
            )
        labels.append(y)
    widths = {r.shape[1] for r in rows}
    if len(widths) > 1:
        raise CLIError(f"image inputs have different image sizes: {sorted(widths)}")
    X = np.concatenate(rows)
    if labels_file is not None:
        y = _read_labels_file(labels_file)
        if len(y) != len(X):
            raise CLIError(
                f"{labels_file}: {len(y)} labels for {len(X)} images in "
                f"{', '.join(map(str, idx_files))}"
            )
    elif unlabelled:
        if need_labels:
            path, beside = unlabelled[0]
            where = f" beside it (expected {beside.name})" if beside else ""
            raise CLIError(
                f"{path}: no labels file{where}; give --labels FILE, as "
                "'flowspectrum vectorize --labels-output' writes it"
            )
        y = None
    else:
        y = np.concatenate(labels)
    console.info(f"read {len(X):,} session images of {X.shape[1]} bytes")
    return X, y


def _are_pcap_rows(X):
    """Share of rows that start like a USTC-TK2016 AllLayers image."""
    from sklearn_flowspectrum._layouts import pcap_row_mask

    return float(np.mean(pcap_row_mask(X))) if len(X) else 0.0


def _check_table_path(path, option="-o"):
    """Fail early (before reading anything) on a table we cannot write."""
    name = str(path).lower()
    if name.endswith(".parquet"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise CLIError(
                "writing Parquet needs pyarrow (pip install pyarrow); "
                f"or write CSV: {option} {Path(path).with_suffix('.csv')}"
            ) from None
    elif not name.endswith((".csv", ".csv.gz")):
        raise CLIError(f"{option} {path}: output must end in .csv, .csv.gz or .parquet")


def _check_images_path(path, option="-o"):
    name = Path(path).name.lower()
    if not (name.endswith(".npy") or "idx" in name):
        raise CLIError(
            f"{option} {path}: output must be .npy or an IDX name such as "
            "images-idx3-ubyte.gz"
        )


_FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def _check_figure_path(path, option):
    if Path(path).suffix.lower() not in _FIGURE_SUFFIXES:
        raise CLIError(
            f"{option} {path}: a figure file ends in {', '.join(_FIGURE_SUFFIXES)}"
        )


_KIND_CHECKS = {
    "table": _check_table_path,
    "images": _check_images_path,
    "figure": _check_figure_path,
}


def _nearest_existing(path):
    for parent in [path, *path.parents]:
        if os.path.lexists(parent):
            return parent
    return Path(".")  # pragma: no cover - a relative path ends in "."


def _check_outputs(outputs, inputs=()):
    """Check every output of a command before it reads or trains anything.

    ``outputs`` holds ``(option, path, kind)``: the option as the user typed
    it (``-o``, ``--report``), None for an output not asked for, and the kind
    ("table", "table or stdout" where ``-`` means stdout, "images",
    "figure", "folder", or None for any file).  An
    output must not be an existing folder (a file for "folder"), sit under a
    file, lie in a folder we cannot write, name an input (a capture, image,
    labels or model file, ``inputs``), or be another output of the command.
    """
    inputs = {os.path.realpath(p) for p in inputs}
    seen = {}
    for option, path, kind in outputs:
        if path is None or (kind == "table or stdout" and str(path) == "-"):
            continue
        if kind == "table or stdout":
            kind = "table"
        if kind in _KIND_CHECKS:
            _KIND_CHECKS[kind](path, option)
        where = Path(path)
        if kind == "folder":
            if where.exists() and not where.is_dir():
                raise CLIError(f"{option} {path}: a file, not a folder")
        elif where.is_dir():
            raise CLIError(f"{option} {path}: is a folder; give a file name")
        existing = _nearest_existing(where if kind == "folder" else where.parent)
        if not existing.is_dir():
            raise CLIError(f"{option} {path}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise CLIError(f"{option} {path}: cannot write in the folder {existing}")
        real = os.path.realpath(where)
        if real in inputs:
            raise CLIError(
                f"{option} {path}: is one of the inputs; writing it would "
                "overwrite it (choose another output)"
            )
        if real in seen:
            raise CLIError(f"{option} and {seen[real]} name the same file {path}")
        seen[real] = option


def _escape_undecodable(text):
    """``text`` as valid UTF-8: each undecodable byte of a file name as ``\\xNN``.

    Python reads such bytes of a file name as lone surrogates (PEP 383),
    which no UTF-8 file can hold.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that stand for no byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def _escaped_table(table):
    """``table`` with :func:`_escape_undecodable` applied to its text cells."""
    from pandas.api.types import is_string_dtype

    columns = {
        name: table[name].map(
            lambda v: _escape_undecodable(v) if isinstance(v, str) else v
        )
        for name in table.columns
        if is_string_dtype(table[name].dtype)  # object and str columns
    }
    return table.assign(**columns) if columns else table


def _write_table(table, path, console):
    _check_table_path(path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = _escaped_table(table)
    # pandas writes attrs into Parquet metadata as JSON; the read report
    # there is a table of its own, reported on the console instead.
    table = table.copy(deep=False)
    table.attrs = {}
    try:
        with atomic_output(path) as temporary:
            if path.name.lower().endswith(".parquet"):
                table.to_parquet(temporary, index=False)
            else:
                table.to_csv(temporary, index=False)
    except (ValueError, TypeError) as exc:  # incl. pyarrow's ArrowInvalid
        raise CLIError(f"{path}: cannot write the table ({exc})") from None
    console.info(f"wrote {len(table):,} rows to {path}")


def _public_columns(sessions):
    return sessions[[c for c in sessions.columns if c not in _BYTE_COLUMNS]]


# ---------------------------------------------------------------------------
# streams: standard input and FIFOs, read as they fill


def _stream_input(inputs):
    """The input to read as a stream (``-`` or one FIFO), or None."""
    if len(inputs) != 1:
        if "-" in inputs:
            raise CLIError("'-' (standard input) must be the only input")
        return None
    raw = inputs[0]
    if raw == "-":
        return raw
    try:
        import stat

        return raw if stat.S_ISFIFO(os.stat(raw).st_mode) else None
    except OSError:
        return None


def _stream_name(source):
    return "standard input" if source == "-" else source


def _check_stream_output(args):
    if args.output != "-":
        raise CLIError(
            f"-o {args.output}: with a stream input the rows go to standard "
            "output, one line per session as it completes; redirect them "
            "(> file) to keep them"
        )


class _LineWriter:
    """Rows to standard output as CSV (one header) or JSON Lines, flushed
    after every table so that a pipe reader sees each session at once."""

    def __init__(self, fmt, stream=None):
        self.fmt, self.stream, self.header = fmt, stream or sys.stdout, True
        self.rows = 0

    def write(self, table):
        if not len(table):
            return
        table = _escaped_table(table)
        if self.fmt == "jsonl":
            text = table.to_json(orient="records", lines=True, double_precision=15)
            text = text if text.endswith("\n") else text + "\n"
        else:
            text = table.to_csv(index=False, header=self.header)
            self.header = False
        self.stream.write(text)
        self.stream.flush()
        self.rows += len(table)


def _stream_sessions(source, args, vectorizer=None, emit="end"):
    """Session tables of a stream as they complete (iter_sessions)."""
    from sklearn_flowspectrum._sessions import KEEP_BYTES
    from sklearn_flowspectrum._streaming import iter_sessions
    from sklearn_flowspectrum._vectorizer import frames_needed

    keep_bytes, keep_packets = getattr(args, "keep_bytes", None) or KEEP_BYTES, 0
    if vectorizer is not None:
        keep_bytes, keep_packets = frames_needed(
            vectorizer.n_bytes, vectorizer.layout, vectorizer.packet_bytes
        )
        keep_bytes = max(KEEP_BYTES, keep_bytes)
    return iter_sessions(
        source,
        emit=emit,
        idle_timeout=args.idle_timeout,
        active_timeout=args.active_timeout,
        flows=args.flows,
        keep_bytes=keep_bytes,
        keep_packets=keep_packets,
        drop_retransmissions=args.drop_retransmissions,
    )


def _stream_rows(tables, fmt, each):
    """Write ``each(table)`` for every table; returns the number of rows."""
    from sklearn_flowspectrum._capture import CaptureError

    writer = _LineWriter(fmt)
    try:
        for table in tables:
            writer.write(each(table))
    except CaptureError as exc:
        raise CLIError(str(exc)) from None
    except BrokenPipeError:  # the reader went away (| head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return writer.rows


# ---------------------------------------------------------------------------
# sessions


def _check_labels_arg(labels):
    """``--labels``: 'dir' or an existing file, checked before reading."""
    from sklearn_flowspectrum._sessions import LABELS_FROM_FOLDERS

    if labels not in (None, LABELS_FROM_FOLDERS) and not Path(labels).is_file():
        raise CLIError(
            f"--labels {labels}: labels file not found (expected 'dir' or a "
            "labels file)"
        )


def _input_files(captures, images=(), *more):
    """The files a command reads: no output may name one of them."""
    files = [entry.file for entry in captures] + list(images)
    return files + [str(p) for p in more if p is not None and Path(p).is_file()]


def _cmd_sessions(args, console):
    source = _stream_input(args.inputs)
    if source is not None:
        _check_stream_output(args)
        if args.report or args.labels not in (None, "dir"):
            raise CLIError("--report and --labels need capture files, not a stream")
        if args.output_dir is not None:
            raise CLIError("--output-dir needs capture files, not a stream")
        tables = _stream_sessions(source, args)
        n = _stream_rows(tables, args.format, _public_columns)
        console.info(f"wrote {n:,} sessions of {_stream_name(source)}")
        return 0
    captures, idx = _expand_inputs(args.inputs)
    if idx:
        raise CLIError(f"{idx[0]}: a session-image file, not a capture")
    if (args.output is None) == (args.output_dir is None):
        raise CLIError("give one of -o/--output FILE and --output-dir DIR")
    if args.output_dir is not None:
        return _write_session_parts(captures, args, console)
    _check_outputs(
        [("-o", args.output, "table or stdout"), ("--report", args.report, "table")],
        _input_files(captures, (), args.labels),
    )
    _check_labels_arg(args.labels)
    labels = _labels_for(captures, args.labels)
    sessions = _read_captures(captures, labels, args, console)
    if args.output == "-":
        _LineWriter(args.format).write(_public_columns(sessions))
    else:
        _write_table(_public_columns(sessions), args.output, console)
    if args.report:
        _write_table(sessions.attrs["report"], args.report, console)
    return 0


def _write_session_parts(captures, args, console):
    """``sessions --output-dir``: one Parquet part per capture (the library's
    sessions_to_parquet), frames included."""
    from sklearn_flowspectrum._capture import CaptureError
    from sklearn_flowspectrum._parquet import sessions_to_parquet

    if args.drop_duplicates:
        raise CLIError(
            "--drop-duplicates compares sessions across all captures; it is "
            "not offered with --output-dir"
        )
    _check_outputs(
        [("--report", args.report, "table")],
        _input_files(captures, (), args.labels),
    )
    _check_labels_arg(args.labels)
    labels = _labels_for(captures, args.labels)
    kwargs = {
        "flows": args.flows,
        "drop_empty": args.drop_empty,
        "drop_retransmissions": args.drop_retransmissions,
        "idle_timeout": args.idle_timeout,
        "active_timeout": args.active_timeout,
    }
    if args.keep_bytes is not None:
        kwargs["keep_bytes"] = args.keep_bytes
    files = [entry.file for entry in captures]
    with _Timer() as timer:
        try:
            with console.working(f"writing the sessions of {len(files)} capture(s)"):
                report = sessions_to_parquet(
                    files,
                    args.output_dir,
                    labels,
                    n_jobs=args.n_jobs,
                    on_error=args.on_error,
                    **kwargs,
                )
        except (CaptureError, ImportError, ValueError) as exc:
            raise CLIError(str(exc)) from None
    unit = "flows" if args.flows else "sessions"
    console.info(
        f"wrote {int(report['sessions'].sum()):,} {unit} of {len(files)} "
        f"capture(s) to {args.output_dir}, one Parquet part each "
        f"({timer.seconds:.1f} s)"
    )
    if args.report:
        _write_table(report, args.report, console)
    return 0


# ---------------------------------------------------------------------------
# vectorize


def _vectorizer(args, scale=False):
    from sklearn_flowspectrum._vectorizer import PcapSessionVectorizer

    return PcapSessionVectorizer(
        n_bytes=args.n_bytes,
        layers=args.layers,
        layout=args.layout,
        mask=args.mask,
        scale=scale,
    )


def _check_image_args(args):
    """The image options together, in the CLI's names, before reading."""
    packet_bytes = _vectorizer(args).packet_bytes
    if args.layout == "packets" and args.n_bytes < packet_bytes:
        raise CLIError(
            f"--n-bytes {args.n_bytes}: --layout packets needs at least "
            f"{packet_bytes} bytes (one packet slot of {packet_bytes} bytes)"
        )


def _save_images(images, path, console):
    from sklearn_flowspectrum._idx import write_idx

    _check_images_path(path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.lower().endswith(".npy"):
        with atomic_output(path) as temporary:
            np.save(temporary, images)
    else:
        # USTC-TK2016 stores square images as (n, side, side).
        side = int(round(np.sqrt(images.shape[1])))
        if side * side == images.shape[1]:
            images = images.reshape(len(images), side, side)
        write_idx(path, images)
    console.info(f"wrote {images.shape[0]:,} session images to {path}")


def _save_labels(labels, path, console):
    """Write labels that ``fit`` and ``predict`` read back (see _read_labels_file)."""
    from sklearn_flowspectrum._idx import format_legend, legend_path, write_idx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels)
    if labels.dtype == object:  # class names: as text, not pickled objects
        labels = labels.astype(str)
    name = path.name.lower()
    if name.endswith(".npy"):
        with atomic_output(path) as temporary:
            np.save(temporary, labels)
    elif name.endswith((".csv", ".csv.gz")):
        import pandas as pd

        if labels.dtype.kind == "U":
            # Escaped first: pandas' (pyarrow) strings refuse surrogates.
            labels = [_escape_undecodable(v) for v in labels.tolist()]
        table = pd.DataFrame({"label": labels})
        with atomic_output(path) as temporary:
            table.to_csv(temporary, index=False)
    elif labels.dtype.kind in "iu" and np.all((labels >= 0) & (labels < 256)):
        # Codes already (labels of published IDX files): kept as they are.
        write_idx(path, labels.astype(np.uint8))
        legend_path(path).unlink(missing_ok=True)
    else:
        names, codes = np.unique(labels, return_inverse=True)
        if len(names) > 256:
            raise CLIError("more than 256 classes do not fit an IDX label file")
        try:
            legend_text = format_legend([_escape_undecodable(str(n)) for n in names])
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        write_idx(path, codes.astype(np.uint8))
        legend = legend_path(path)
        with atomic_output(legend) as temporary:
            temporary.write_text(legend_text, encoding="utf-8")
        console.info(f"label codes: {legend}")
    console.info(f"wrote {len(labels):,} labels to {path}")


def _cmd_vectorize(args, console):
    captures, idx = _expand_inputs(args.inputs)
    _check_outputs(
        [("-o", args.output, "images"), ("--labels-output", args.labels_output, None)],
        _input_files(captures, idx, args.labels),
    )
    _check_labels_arg(args.labels)
    _check_image_args(args)
    vec = _vectorizer(args, scale=False)
    labels = None
    try:
        if captures:
            labels = _labels_for(captures, args.labels)
            sessions = _read_captures(captures, labels, args, console, vec)
            labels = sessions["label"].to_numpy()
            images = vec.fit_transform(sessions)
        else:
            X, labels = _read_idx_inputs(idx, console, labels_file=args.labels)
            if _are_pcap_rows(X) < 0.5:
                raise CLIError(
                    f"{idx[0]}: rows are not USTC-TK2016 AllLayers (pcap file) "
                    "images, so they cannot be masked or re-laid out"
                )
            images = vec.fit_transform(X)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.labels_output and labels is None:
        raise CLIError(
            "no labels to write: give --labels FILE (or a labels-idx1 file "
            "beside the images-idx3 file)"
        )
    # main() runs the command all-or-nothing: the images appear only together
    # with their labels.
    _save_images(images, args.output, console)
    if args.labels_output:
        _save_labels(labels, args.labels_output, console)
    return 0


# ---------------------------------------------------------------------------
# fit / predict


def _make_pipeline(args, input_kind):
    """The estimator for ``input_kind`` "sessions" (captures, AllLayers rows)
    or "payload-rows" (published L7 images, which need no vectorizer)."""
    from sklearn.pipeline import Pipeline

    from sklearn_flowspectrum._classifier import FlowSpectrumClassifier
    from sklearn_flowspectrum._embedder import AMAESpectrumEmbedder

    steps = []
    if input_kind == "sessions":
        steps.append(("vectorizer", _vectorizer(args, scale=True)))
    params = {
        "max_epochs": args.epochs,
        "attention": not args.no_attention,
        "device": args.device,
        "random_state": args.seed,
        "verbose": 0 if args.quiet else 1,
    }
    batch_size = args.batch_size
    if batch_size is None and not _on_gpu(args.device):
        batch_size = CPU_BATCH_SIZE  # see CPU_BATCH_SIZE
    if batch_size is not None:  # else the embedder's own default (GPU)
        params["batch_size"] = batch_size
    steps.append(("embedder", AMAESpectrumEmbedder(**params)))
    clf = FlowSpectrumClassifier(bandwidth=args.bandwidth)
    if getattr(args, "unknown_rate", None) is not None:
        clf.set_params(unknown_threshold="auto", unknown_rate=args.unknown_rate)
    steps.append(("classifier", clf))
    return Pipeline(steps)


class _TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, which skorch turns into an early return."""


def _check_training_complete(pipe):
    """Raise :class:`_TrainingInterrupted` when training stopped early.

    skorch's ``partial_fit`` ends training quietly on ``KeyboardInterrupt``
    (its documented way of stopping: EarlyStopping raises it too, which the
    command line does not use); an epoch counts once its duration is in the
    history.
    """
    emb = pipe.named_steps["embedder"]
    done = sum("dur" in epoch for epoch in emb.history_)
    if done < emb.max_epochs:
        raise _TrainingInterrupted(
            f"training stopped after {done} of {emb.max_epochs} epochs; "
            "no model was saved"
        )


def _save_model(bundle, path, console, optimizer_state=False):
    """Write the model bundle in the model format (no pickle, no optimizer
    state), or as a pickle with the optimizer's state when asked.

    The model format (:func:`save_model`) loads without running code from
    the file.  Adam's two moment estimates per weight are twice the size of
    the network and serve only to resume training; only a pickle holds them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if optimizer_state:
        from sklearn_flowspectrum._model_file import dump_model_file

        dump_model_file(bundle, path)
        console.info(
            f"saved the model with its optimizer state to {path} (a pickle: "
            "trusted files only)"
        )
        return
    from sklearn_flowspectrum._model_format import save_model

    if path.suffix.lower() in _PICKLE_SUFFIXES:
        console.warn(
            f"{path}: written in the model format of 'flowspectrum fit' (a zip "
            "of JSON, .npy and safetensors), which joblib.load cannot read; "
            "name it .fsm, or pass --save-optimizer for a pickle"
        )
    metadata = {key: value for key, value in bundle.items() if key != "pipeline"}
    try:
        save_model(bundle["pipeline"], path, metadata=metadata)
    except ImportError as exc:
        raise CLIError(f"cannot save {path}: {exc}") from None
    console.info(f"saved the model to {path}")


@contextmanager
def _training_log(pipe, console):
    """Send skorch's epoch table to stderr while ``pipe`` trains.

    skorch's documented hook, ``PrintLog(sink=...)``, is set for the training
    only: the model keeps ``print`` (the sink it is saved with, which the
    model file's allowlist knows), not a function of the command line.
    """
    emb = pipe.named_steps["embedder"]
    if console.quiet:  # verbose=0: skorch prints nothing with `print`
        yield
        return
    emb.set_params(callbacks__print_log__sink=console.epoch_line)
    try:
        yield
    finally:
        emb.set_params(callbacks__print_log__sink=print)


def _representation(bundle_input, layers):
    if bundle_input == "payload-rows" or layers == "l7":
        return "L7 (TCP/UDP payload only)"
    return "AllLayers"


def _masking_text(pipe, bundle_input):
    if bundle_input == "payload-rows" or "vectorizer" not in pipe.named_steps:
        return "not needed (payload bytes only, no headers)"
    vec = pipe.named_steps["vectorizer"]
    if vec.layers == "l7":
        return _mask_text(vec.mask) + " (payload bytes only)"
    return _mask_text(vec.mask)


def _print_scores(report, what, split=True):
    """Per-session accuracy, per-class precision/recall/F1 (and group score)
    of ``report`` on stdout; ``split``: name the split after the accuracy."""
    how = f" (split: {report.split})" if split else ""
    print(
        f"per-session accuracy on {report.n_sessions:,} {what}: "
        f"{report.accuracy:.1%}{how}"
    )
    if report.group_accuracy is not None:
        print(
            f"{report.group_label} accuracy: {report.group_accuracy:.1%} "
            f"({report.group_protocol}; not a per-session accuracy)"
        )
    rows = [
        (str(name), rec["precision"], rec["recall"], rec["f1"], int(rec["support"]))
        for name, rec in report.per_class.iterrows()
    ]
    rows.append(("macro average", report.precision, report.recall, report.f1, ""))
    width = max(len("class"), *(len(row[0]) for row in rows))
    lines = [f"{'class':<{width}}  precision  recall     f1  sessions"]
    lines += [
        f"{name:<{width}}  {p:9.3f}  {r:6.3f}  {f:5.3f}  {n:>8}"
        for name, p, r, f, n in rows
    ]
    print("per class (per session):\n  " + "\n  ".join(lines), flush=True)
    if getattr(report, "n_rejected", None) is not None:
        print(
            f"rejected as unknown: {report.rejection_rate:.1%} of the {what}; "
            f"per-session accuracy on the accepted ones: "
            f"{report.accepted_accuracy:.1%}",
            flush=True,
        )


def _cmd_fit(args, console):
    _check_device(args.device)
    if args.unknown_rate is not None and not 0 < args.unknown_rate < 1:
        raise CLIError(
            f"--unknown-rate must be between 0 and 1, got {args.unknown_rate}"
        )
    captures, idx = _expand_inputs(args.inputs)
    _check_outputs(
        [("-o", args.output, None)], _input_files(captures, idx, args.labels)
    )
    _check_labels_arg(args.labels)
    _check_image_args(args)
    if captures:
        labels = _labels_for(captures, args.labels)
        X = _read_captures(captures, labels, args, console, _vectorizer(args))
        y = X["label"].to_numpy()
        input_kind = "sessions"
        capture_vectorizer = None
    else:
        X, y = _read_idx_inputs(idx, console, need_labels=True, labels_file=args.labels)
        if _are_pcap_rows(X) >= 0.5:
            if args.layers != "all":
                raise CLIError(
                    f"{idx[0]}: these are AllLayers (pcap file) images; "
                    "--layers l7 needs payload (L7) images"
                )
            input_kind = "sessions"
            capture_vectorizer = None
        else:
            # Published L7 rows are payload bytes: the embedder takes them as
            # they are; captures given to `predict` get the l7 vectorizer.
            input_kind = "payload-rows"
            args.layers = "l7"
            capture_vectorizer = _vectorizer(args, scale=False)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise CLIError(
            f"need sessions of at least two classes to fit, got {classes.tolist()}"
        )
    console.info("classes: " + ", ".join(f"{c} ({n})" for c, n in zip(classes, counts)))
    X_fit, y_fit, held_out = X, y, None
    if args.test_size:
        X_fit, y_fit, held_out = _hold_out(X, y, captures, args, console)
    pipe = _make_pipeline(args, input_kind)
    console.info(
        f"training on {len(y_fit):,} sessions: {args.epochs} epochs, "
        f"device {args.device} ..."
    )
    try:
        with _Timer() as timer, _training_log(pipe, console):
            pipe.fit(X_fit, y_fit)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    _check_training_complete(pipe)
    console.info(f"trained in {timer.seconds:.1f} s")
    if args.unknown_rate is not None:
        console.info(
            f"unknown threshold {pipe[-1].unknown_threshold_:.4g}: rejects about "
            f"{args.unknown_rate:.1%} of held-out training spectra"
        )
    if held_out is None:
        train_acc = float(np.mean(pipe.predict(X_fit) == y_fit))
        console.info(
            f"per-session accuracy on the TRAINING sessions: {train_acc:.1%} "
            "(not an estimate of accuracy on new traffic; use --test-size)"
        )
    else:
        from sklearn_flowspectrum.evaluation import evaluation_report

        X_test, y_test, how = held_out
        unknown = pipe[-1].rejection_label() if args.unknown_rate else None
        report = evaluation_report(
            y_test,
            pipe.predict(X_test),
            classes=np.unique(y_test),  # the classes held out
            k=None,
            representation=_representation(input_kind, args.layers),
            masking=_masking_text(pipe, input_kind),
            split=how,
            unknown_label=unknown,
        )
        _print_scores(report, "held-out sessions")
    bundle = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "package_version": __version__,
        "pipeline": pipe,
        "input": input_kind,
        "capture_vectorizer": capture_vectorizer,
        "n_bytes": int(args.n_bytes),
        "classes": classes.tolist(),
    }
    _save_model(bundle, args.output, console, optimizer_state=args.save_optimizer)
    return 0


def _split_files(files, labels, test_size, seed, n_draws=200):
    """Hold out whole capture files, class by class.

    For every class with two or more capture files, some (at least one) of
    its files are held out and some (at least one) kept, the held-out files
    holding as close to ``test_size`` of the class's sessions as the best of
    ``n_draws`` random orders of its files gives.  A class with one capture
    file is kept whole for training.

    Parameters
    ----------
    files, labels : ndarray of shape (n_sessions,)
        Capture file and class of every session (one class per file).

    Returns
    -------
    test : ndarray of bool, shape (n_sessions,)
        The held-out sessions.
    single : dict
        ``{class: file}`` of the classes with one capture file.
    """
    rng = np.random.default_rng(seed)
    test = np.zeros(len(files), dtype=bool)
    single = {}
    for cls in np.unique(labels):
        in_class = labels == cls
        names, counts = np.unique(files[in_class], return_counts=True)
        if len(names) < 2:
            single[cls] = names[0]
            continue
        target = test_size * counts.sum()
        best, best_gap = None, np.inf
        for _ in range(n_draws):
            order = rng.permutation(len(names))
            # Prefixes of 1 .. n-1 files: something held out, something kept.
            sizes = np.cumsum(counts[order])[:-1]
            i = int(np.argmin(np.abs(sizes - target)))
            if abs(sizes[i] - target) < best_gap:
                best, best_gap = order[: i + 1], abs(sizes[i] - target)
        test |= in_class & np.isin(files, names[best])
    return test, single


def _hold_out(X, y, captures, args, console):
    """Training part and (X_test, y_test, description) of the data."""
    from sklearn.model_selection import train_test_split

    if captures:
        files = X["file"].to_numpy()
        # Whole captures on one side: sessions of one capture share hosts,
        # addresses and time, which would leak across a random split.
        test, single = _split_files(files, y, args.test_size, args.seed)
        for cls, file in single.items():
            console.warn(
                f"--test-size: class {cls} has one capture file ({file}); it is "
                "used for training only, so no held-out session is of this class"
            )
        if not test.any():
            raise CLIError(
                "--test-size needs a class with at least two capture files "
                "(whole captures are held out, class by class)"
            )
        train = ~test
        how = (
            f"{len(np.unique(files[test]))} of {len(np.unique(files))} capture "
            f"files held out whole, by class ({test.mean():.0%} of the sessions), "
            f"seed {args.seed}"
        )
        return X.iloc[train], y[train], (X.iloc[test], y[test], how)
    try:
        train, test = train_test_split(
            np.arange(len(y)),
            test_size=args.test_size,
            stratify=y,
            random_state=args.seed,
        )
    except ValueError as exc:
        raise CLIError(f"--test-size: {exc}") from None
    how = f"stratified random {args.test_size:.0%} of the sessions, seed {args.seed}"
    return X[train], y[train], (X[test], y[test], how)


def _load_model(path, console):
    """The bundle of a model file: the model format (no code runs), or a
    pickle through the restricted loader after a warning."""
    from sklearn_flowspectrum._model_format import is_model_format_file

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"{path}: model file not found")
    try:
        model_format = is_model_format_file(path)
    except OSError as exc:
        raise CLIError(f"{path}: cannot read the model file ({exc.strerror})") from None
    if model_format:
        bundle = _load_model_format(path)
    else:
        console.warn(
            f"{path}: a pickle (joblib) model; loading a pickle can run code "
            "from it: trusted files only"
        )
        bundle = _load_pickle_model(path)
    if not isinstance(bundle, dict) or bundle.get("format") != MODEL_FORMAT:
        raise CLIError(f"{path}: not a model saved by 'flowspectrum fit'")
    if bundle.get("version", 0) > MODEL_VERSION:
        raise CLIError(
            f"{path}: saved by a newer sklearn_flowspectrum "
            f"({bundle.get('package_version')}); upgrade to read it"
        )
    return bundle


def _load_model_format(path):
    from sklearn_flowspectrum._model_format import load_model

    try:
        pipeline, metadata = load_model(path, return_metadata=True)
    except ImportError as exc:
        raise CLIError(f"{path}: {exc}") from None
    except ValueError as exc:  # the message names the file
        raise CLIError(str(exc)) from None
    if not isinstance(metadata, dict):
        raise CLIError(f"{path}: a model file, but not one of 'flowspectrum fit'")
    return {**metadata, "pipeline": pipeline}


def _load_pickle_model(path):
    from sklearn_flowspectrum._model_file import RefusedGlobalError, load_model_file

    try:
        bundle = load_model_file(path)
    except RefusedGlobalError as exc:
        if exc.global_name.startswith("joblib."):
            raise CLIError(
                f"{path}: a model in the joblib format of an earlier development "
                "version, which cannot be checked for code before loading; "
                "train it again with 'flowspectrum fit'"
            ) from None
        raise CLIError(
            f"{path}: {exc}; load models only from a trusted source"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any unpickling error: not a model
        raise CLIError(
            f"{path}: not a model saved by 'flowspectrum fit' ({type(exc).__name__})"
        ) from None
    return bundle


# Columns of the session table that identify a session in predictions.
_SESSION_ID_COLUMNS = (
    "file",
    "session",
    "protocol",
    "src_addr",
    "src_port",
    "dst_addr",
    "dst_port",
    "first_ts",
    "packets",
)
# Sessions classified per step of the progress display.
PREDICT_CHUNK = 4096


def _model_inputs(bundle, args, console, captures, idx, labels=None):
    """The model's input ``X``, a table naming each session, and the true
    labels (None when the inputs carry none).

    ``labels``: how captures are labelled (``--labels``; None: unlabelled);
    image inputs take the labels-idx1 file beside them or ``labels``.
    """
    import pandas as pd

    pipe, n_bytes = bundle["pipeline"], bundle["n_bytes"]
    y = None
    if captures:
        if bundle["input"] == "sessions":
            vectorizer = pipe.named_steps["vectorizer"]
        else:
            vectorizer = bundle["capture_vectorizer"]
        names = None if labels is False else _labels_for(captures, labels)
        sessions = _read_captures(captures, names, args, console, vectorizer)
        X = (
            sessions
            if bundle["input"] == "sessions"
            else vectorizer.fit_transform(sessions)
        )
        columns = [c for c in _SESSION_ID_COLUMNS if c in sessions.columns]
        out = _public_columns(sessions)[columns].copy()
        if names is not None:
            y = sessions["label"].to_numpy()
        return X, out, y
    labels_file = labels if labels not in (None, False) else None
    X, y = _read_idx_inputs(
        idx, console, need_labels=labels is not False, labels_file=labels_file
    )
    if X.shape[1] != n_bytes:
        raise CLIError(
            f"{args.model}: the model takes {n_bytes}-byte images, "
            f"{idx[0]} has {X.shape[1]}-byte images"
        )
    pcap_share = _are_pcap_rows(X)
    if bundle["input"] == "sessions" and pcap_share < 0.5:
        raise CLIError(
            f"{args.model}: the model takes AllLayers (pcap file) images; "
            f"{idx[0]} holds payload-only (L7) images"
        )
    if bundle["input"] == "payload-rows" and pcap_share >= 0.5:
        raise CLIError(
            f"{args.model}: the model takes payload-only (L7) images; "
            f"{idx[0]} holds AllLayers (pcap file) images"
        )
    return X, pd.DataFrame({"row": np.arange(len(X))}), y


def _classify(pipe, X, console):
    """Spectra (n, n_components), predicted labels and class probabilities,
    ``PREDICT_CHUNK`` sessions at a time (with a progress bar on a terminal)."""
    n = len(X)
    starts = range(0, n, PREDICT_CHUNK)
    if len(starts) > 1 and console is not None:
        starts = console.progress(
            starts, total=len(starts), desc=f"classifying {n:,} sessions", unit="chunk"
        )
    parts = []
    for start in starts:
        rows = slice(start, start + PREDICT_CHUNK)
        part = X.iloc[rows] if hasattr(X, "iloc") else X[rows]
        parts.append(pipe[:-1].transform(part))
    spectra = np.concatenate(parts)
    clf = pipe[-1]
    return spectra, clf.predict(spectra), clf.predict_proba(spectra)


def _can_reject(clf):
    """Whether the classifier has an open-set reject threshold."""
    return clf.rejection_label() is not None


def _unknown(clf, predicted):
    """Which predictions are the classifier's open-set reject label (None
    when the classifier has no reject option)."""
    label = clf.rejection_label()
    if label is None:
        return None
    return np.asarray(predicted == np.asarray(label, dtype=object))


def _predictions(pipe, X, sessions_out, proba_columns, console=None):
    """The prediction table of ``X``: ``sessions_out`` (the columns naming
    each session) then predicted, probability, [unknown, unknown_score,]
    spectrum[, proba_*]."""
    clf = pipe[-1]
    spectra, predicted, proba = _classify(pipe, X, console)
    out = sessions_out
    out["predicted"] = predicted
    out["probability"] = np.round(proba.max(axis=1), 6)
    unknown = _unknown(clf, predicted)
    if unknown is not None:
        out["unknown"] = unknown
        out["unknown_score"] = np.round(clf.unknown_score(spectra), 6)
    out["spectrum"] = spectra[:, 0]
    if proba_columns:
        for j, cls in enumerate(clf.classes_):
            out[f"proba_{_escape_undecodable(str(cls))}"] = np.round(proba[:, j], 6)
    return out


def _check_unknown_arg(args, pipe):
    if args.unknown and not _can_reject(pipe[-1]):
        raise CLIError(
            f"{args.model}: this model has no unknown threshold; train it with "
            "'flowspectrum fit --unknown-rate R' to mark unknown sessions"
        )


def _predict_stream(args, console, source):
    """``predict MODEL -``: one line per session as soon as its image is in."""
    _check_stream_output(args)
    bundle = _load_model(args.model, console)
    pipe = bundle["pipeline"]
    _check_unknown_arg(args, pipe)
    if bundle["input"] == "sessions":
        vectorizer = pipe.named_steps["vectorizer"]
    else:
        vectorizer = bundle["capture_vectorizer"]
    columns = ["protocol", "src_addr", "src_port", "dst_addr", "dst_port", "first_ts"]

    def each(table):
        X = table if bundle["input"] == "sessions" else vectorizer.fit_transform(table)
        try:
            return _predictions(pipe, X, table[columns].copy(), args.proba)
        except ValueError as exc:
            raise CLIError(
                f"{args.model}: model does not fit the input ({exc})"
            ) from None

    tables = _stream_sessions(source, args, vectorizer, emit="image")
    n = _stream_rows(tables, args.format, each)
    console.info(f"classified {n:,} sessions of {_stream_name(source)}")
    return 0


def _cmd_predict(args, console):
    import pandas as pd

    source = _stream_input(args.inputs)
    if source is not None:
        return _predict_stream(args, console, source)
    captures, idx = _expand_inputs(args.inputs)
    _check_outputs(
        [("-o", args.output, "table or stdout")],
        _input_files(captures, idx, args.model),
    )
    bundle = _load_model(args.model, console)
    pipe = bundle["pipeline"]
    _check_unknown_arg(args, pipe)
    try:
        X, out, y = _model_inputs(bundle, args, console, captures, idx, labels=False)
        if y is not None:
            out["true_label"] = y
        with _Timer() as timer:
            out = _predictions(pipe, X, out, args.proba, console)
    except ValueError as exc:
        raise CLIError(f"{args.model}: model does not fit the input ({exc})") from None
    predicted = out["predicted"]
    console.info(f"classified {len(out):,} sessions ({timer.seconds:.1f} s)")
    if args.output == "-":
        _LineWriter(args.format).write(out)
    else:
        _write_table(out, args.output, console)
    counts = pd.Series(predicted).value_counts()
    console.info("predicted: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def _cmd_evaluate(args, console):
    from sklearn_flowspectrum.evaluation import evaluation_report

    captures, idx = _expand_inputs(args.inputs)
    _check_outputs(
        [("--confusion", args.confusion, "figure"), ("-o", args.output, "table")],
        _input_files(captures, idx, args.model, args.labels),
    )
    _check_labels_arg(args.labels)
    if args.confusion:
        try:
            import matplotlib

            matplotlib.use("Agg")
        except ImportError:
            raise CLIError(
                "--confusion needs matplotlib: pip install "
                '"sklearn-flowspectrum[plots]"'
            ) from None
    bundle = _load_model(args.model, console)
    pipe = bundle["pipeline"]
    clf = pipe[-1]
    try:
        X, _, y = _model_inputs(
            bundle, args, console, captures, idx, labels=args.labels
        )
        spectra, predicted, _ = _classify(pipe, X, console)
    except ValueError as exc:
        raise CLIError(f"{args.model}: model does not fit the input ({exc})") from None
    classes = list(clf.classes_)
    unseen = [c for c in np.unique(y) if c not in set(classes)]
    if unseen:
        console.warn(
            f"classes the model was not trained on: {', '.join(map(str, unseen))}; "
            "every session of them counts as an error"
        )
    layers = getattr(pipe.named_steps.get("vectorizer"), "layers", "l7")
    split = "none, every given session scored"
    report = evaluation_report(
        y,
        predicted,
        classes=np.array(classes + unseen, dtype=object if unseen else None),
        k=10,
        estimator=clf,
        X=spectra,
        random_state=args.seed,
        representation=_representation(bundle["input"], layers),
        masking=_masking_text(pipe, bundle["input"]),
        split=split,
        protocol=f"model {Path(args.model).name}",
    )
    print(
        "Protocol\n"
        f"  representation: {report.representation}, {bundle['n_bytes']}-byte "
        "session images\n"
        f"  masking: {report.masking}\n"
        f"  split: {report.split} (a fair score only for sessions the model "
        "was not trained on)\n"
        f"  model: {args.model}"
    )
    _print_scores(report, "sessions", split=False)
    if args.output:
        _write_table(report.to_frame(), args.output, console)
    if args.confusion:
        import matplotlib.pyplot as plt

        ax = report.plot_confusion_matrix()
        Path(args.confusion).parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(args.confusion) as temporary:
            ax.figure.savefig(
                temporary,
                dpi=110,
                bbox_inches="tight",  # the title names the whole protocol
                format=Path(args.confusion).suffix[1:].lower(),
            )
        plt.close(ax.figure)
        console.info(f"wrote the confusion matrix to {args.confusion}")
    return 0


# ---------------------------------------------------------------------------
# explain


def _cmd_explain(args, console):
    from sklearn_flowspectrum._explain import (
        DEFAULT_METHOD,
        explain,
        explanation_byte_map,
        field_attributions,
    )

    method = args.method or DEFAULT_METHOD
    captures, idx = _expand_inputs(args.inputs)
    if idx:
        raise CLIError(f"{idx[0]}: explain reads captures (pcap/pcapng), not images")
    _check_outputs(
        [("-o", args.output, "table")], _input_files(captures, idx, args.model)
    )
    bundle = _load_model(args.model, console)
    pipe = bundle["pipeline"]
    if bundle["input"] == "sessions":
        vectorizer = pipe.named_steps["vectorizer"]
    else:
        vectorizer = bundle["capture_vectorizer"]
    sessions = _read_captures(captures, None, args, console, vectorizer)
    try:
        with _Timer() as timer:
            if bundle["input"] == "sessions":
                X, byte_map = sessions, explanation_byte_map(pipe, sessions)
            else:
                X, byte_map = (
                    vectorizer.transform(sessions),
                    vectorizer.byte_map(sessions),
                )
            labels = pipe.predict(X)
            attr = explain(pipe, X, method=method, byte_map=byte_map)
    except ValueError as exc:
        raise CLIError(f"{args.model}: model does not fit the input ({exc})") from None
    fields = field_attributions(attr, byte_map).drop(columns="pad", errors="ignore")
    net = fields.abs().to_numpy()
    share = net / np.maximum(net.sum(axis=1, keepdims=True), 1e-30)
    order = np.argsort(-share, axis=1, kind="stable")[:, : args.top]
    names = np.asarray(fields.columns, dtype=object)
    keep = ("file", "session", "protocol", "src_addr", "src_port", "dst_addr")
    keep += ("dst_port", "first_ts")
    out = _public_columns(sessions)[[c for c in keep if c in sessions.columns]].copy()
    out["label"] = labels
    rows = np.arange(len(out))
    for k in range(order.shape[1]):
        out[f"field{k + 1}"] = names[order[:, k]]
        out[f"share{k + 1}"] = np.round(share[rows, order[:, k]], 4)
    console.info(f"explained {len(out):,} sessions by {method} ({timer.seconds:.1f} s)")
    _write_table(out, args.output, console)
    return 0


# ---------------------------------------------------------------------------
# demo


_DEMO_PLOTS = {
    "spectrum.png": "FlowSpectrum of the held-out sessions: one line per session, "
    "one row per class (paper Fig. 5)",
    "spectrum_density.png": "kernel density of each class's spectrum values, "
    "held-out sessions, with the classifier's bandwidth; one row per class, "
    "each scaled to its peak (paper Fig. 6)",
    "attention_scatter.png": "per-class attention weight of each of the 784 byte "
    "positions, with the kind of field of each position and the names of the "
    "fields along the top (paper Fig. 7)",
    "byte_weights_nonvpn.png": "attention weights of bytes 100-163, non-VPN "
    "classes (paper Fig. 8)",
    "byte_weights_vpn.png": "attention weights of bytes 100-163, VPN classes "
    "(paper Fig. 9)",
    "weight_boxplot.png": "distribution of each class's 784 attention weights, "
    "by median (paper Fig. 10)",
    "confusion_matrix.png": "per-session confusion matrix of the held-out sessions",
}


# Demo training budget: what a 2-core laptop CPU trains in a few minutes on
# the 2,400 training sessions, and the default of the embedder on a GPU.
# Chosen on an inner 75/25 split of the demo's training part, never on its
# held-out sessions (benchmarks/demo_budget.py, batch 64, 2 threads): 6
# epochs 79.8% per session, 12 epochs 82.8%, 20 epochs 83.2%, ExtraTrees
# 83.5%; 20 epochs train in about a minute on an idle 2-core CPU.  On the
# CPU the paper's batch of 64 gives four times the optimizer steps of the
# embedder's default batch of 256 for the same time.
DEMO_EPOCHS_CPU = 20
DEMO_EPOCHS_GPU = 20
CPU_BATCH_SIZE = 64


def _on_gpu(device):
    import torch

    return str(device).startswith("cuda") or (
        str(device) == "auto" and torch.cuda.is_available()
    )


def _demo_epochs(device):
    return DEMO_EPOCHS_GPU if _on_gpu(device) else DEMO_EPOCHS_CPU


#: Environment variable that fixes the demo's torch thread count (seeded CPU
#: training gives the same numbers only for the same count); scripts/demo.sh
#: sets it for the run whose numbers the README shows.
DEMO_THREADS_ENV = "DEMO_TORCH_THREADS"
#: Version of the layout of the demo's results.json.
DEMO_RESULTS_SCHEMA = 1


def _demo_threads():
    """The thread count asked for in DEMO_TORCH_THREADS, or None."""
    text = os.environ.get(DEMO_THREADS_ENV, "").strip()
    if not text:
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise CLIError(f"{DEMO_THREADS_ENV} must be a positive integer, got {text!r}")
    return n


def demo_results(
    args,
    embedder,
    *,
    names,
    n_train,
    n_test,
    protocol,
    scores,
    train_seconds,
    total_seconds,
):
    """The machine-readable record of a demo run (``results.json``).

    ``scores`` maps ``per_session``, ``group_of_10`` and
    ``extra_trees_per_session`` to accuracies in [0, 1];
    ``scripts/update_readme.py`` copies them into the README.
    """
    import torch

    return {
        "schema": DEMO_RESULTS_SCHEMA,
        "package_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "data": "bundled ISCX-VPN2016 sample",
        "representation": "AllLayers" if args.representation == "alllayers" else "L7",
        "mask": args.mask if args.representation == "alllayers" else None,
        "classes": [str(n) for n in names],
        "split": {
            "kind": "stratified random split of sessions",
            "test_size": float(args.test_size),
            "n_per_class": args.n_per_class,
            "n_train": int(n_train),
            "n_test": int(n_test),
        },
        "epochs": int(args.epochs),
        "batch_size": int(embedder.batch_size),
        "device": str(embedder.device),
        "seed": int(args.seed),
        "bandwidth": float(args.bandwidth),
        "torch_threads": int(torch.get_num_threads()),
        "accuracy": {
            "per_session": float(scores["per_session"]),
            "group_of_10": float(scores["group_of_10"]),
            "extra_trees_per_session": float(scores["extra_trees_per_session"]),
        },
        "train_seconds": round(float(train_seconds), 1),
        "total_seconds": round(float(total_seconds), 1),
        "protocol": list(protocol),
    }


def _cmd_demo(args, console):
    threads = _demo_threads()
    if threads is None:
        return _run_demo(args, console)
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_demo(args, console)
    finally:
        torch.set_num_threads(before)


def _run_demo(args, console):
    started = time.perf_counter()
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.model_selection import train_test_split

    from sklearn_flowspectrum._metrics import group_of_k_accuracy_score
    from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample

    if not args.no_plots:
        try:
            import matplotlib

            matplotlib.use("Agg")
        except ImportError:
            raise CLIError(
                "the demo's plots need matplotlib: pip install "
                '"sklearn-flowspectrum[plots]", or run with --no-plots'
            ) from None
    if not args.test_size:
        raise CLIError("--test-size must be between 0 and 1, got 0")
    _check_device(args.device)
    _check_outputs(
        [("--out", args.out, "folder"), ("--save-model", args.save_model, None)]
    )
    if args.n_per_class is not None and not 2 <= args.n_per_class <= 250:
        raise CLIError(
            f"--n-per-class must be between 2 and 250, got {args.n_per_class}"
        )
    data = load_iscx_vpn2016_sample(representation=args.representation)
    X, y, names = data.data, data.target, data.target_names
    if args.n_per_class is not None:
        rng = np.random.default_rng(args.seed)
        keep = np.concatenate(
            [
                rng.choice(np.flatnonzero(y == c), args.n_per_class, replace=False)
                for c in np.unique(y)
            ]
        )
        X, y = X[np.sort(keep)], y[np.sort(keep)]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, stratify=y, random_state=args.seed
    )
    alllayers = args.representation == "alllayers"
    if args.epochs is None:
        args.epochs = _demo_epochs(args.device)
    args.n_bytes, args.layout = X.shape[1], "ustc"
    args.layers = "all" if alllayers else "l7"
    pipe = _make_pipeline(args, "sessions" if alllayers else "payload-rows")
    emb = pipe.named_steps["embedder"]

    if alllayers:
        masking = (
            "none: the published bytes, with capture timestamps, addresses and "
            "ports (LEAKY: scores overstate what the model learned)"
            if args.mask == "none"
            else f"{_mask_text(args.mask)}"
            + (
                " (capture timestamps, MAC/IP addresses, ports, IP ID, "
                "checksums and DNS transaction IDs blanked in every packet)"
                if args.mask == "safe"
                else ""
            )
        )
    else:
        masking = "not needed (payload bytes only, no headers)"
    protocol = [
        f"data: bundled ISCX-VPN2016 sample, "
        f"{'AllLayers' if alllayers else 'L7'} session images (USTC-TK2016), "
        f"{len(names)} classes x {np.bincount(y).min()} sessions",
        f"masking: {masking}",
        f"split: stratified random {1 - args.test_size:.0%}/{args.test_size:.0%} "
        f"of sessions, seed {args.seed}: {len(y_train):,} train / "
        f"{len(y_test):,} held-out (the sample carries no capture ids, so "
        "sessions of one capture can sit on both sides)",
        f"model: {' -> '.join(type(s).__name__ for _, s in pipe.steps)}; "
        f"{args.epochs} epoch{'s' * (args.epochs != 1)}, batch {emb.batch_size}, "
        f"lr {emb.lr:g}, device {emb.device}, seed {args.seed}",
    ]
    console.info(
        f"training on {len(y_train):,} {'AllLayers' if alllayers else 'L7'} "
        f"sessions ({args.epochs} epochs on {emb.device}); "
        f"{len(y_test):,} held out ..."
    )
    with _Timer() as timer, _training_log(pipe, console):
        pipe.fit(X_train, y_train)
    _check_training_complete(pipe)
    console.info(f"trained in {timer.seconds:.0f} s")

    per_session = pipe.score(X_test, y_test)
    group_of_10 = group_of_k_accuracy_score(
        pipe, X_test, y_test, k=10, n_groups_per_class=1000, random_state=args.seed
    )
    images_train = pipe[:-2].transform(X_train) if alllayers else X_train
    images_test = pipe[:-2].transform(X_test) if alllayers else X_test
    trees = ExtraTreesClassifier(n_estimators=300, n_jobs=-1, random_state=args.seed)
    trees_score = trees.fit(images_train, y_train).score(images_test, y_test)
    results = [
        f"Results on the {len(y_test):,} held-out sessions",
        f"  per-session accuracy:          {per_session:.1%}",
        f"  group-of-10 accuracy:          {group_of_10:.1%}  (authors' protocol: "
        "1000 groups of 10 same-class held-out sessions per class, drawn with "
        "replacement, each classified as a whole)",
        f"  reference, ExtraTrees (300) on the same bytes, per-session: "
        f"{trees_score:.1%}",
        f"  training time: {timer.seconds:.0f} s",
    ]
    print("Protocol\n  " + "\n  ".join(protocol))
    print("\n".join(results), flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "results.txt") as temporary:
        temporary.write_text(
            "Protocol\n  " + "\n  ".join(protocol) + "\n" + "\n".join(results) + "\n"
        )
    if args.save_model:
        _save_model(
            {
                "format": MODEL_FORMAT,
                "version": MODEL_VERSION,
                "package_version": __version__,
                "pipeline": pipe,
                "input": "sessions" if alllayers else "payload-rows",
                "capture_vectorizer": None if alllayers else _vectorizer(args),
                "n_bytes": int(args.n_bytes),
                "classes": [int(c) for c in np.unique(y)],
            },
            args.save_model,
            console,
        )
    if not args.no_plots:
        _demo_plots(pipe, X_train, X_test, y_test, names, alllayers, out, console)
    # Written last, so that total_seconds covers the plots too.
    record = demo_results(
        args,
        emb,
        names=names,
        n_train=len(y_train),
        n_test=len(y_test),
        protocol=protocol,
        scores={
            "per_session": per_session,
            "group_of_10": group_of_10,
            "extra_trees_per_session": trees_score,
        },
        train_seconds=timer.seconds,
        total_seconds=time.perf_counter() - started,
    )
    with atomic_output(out / "results.json") as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n")
    console.info(f"wrote {out / 'results.json'}: the numbers above, machine-readable")
    return 0


def _demo_plots(pipe, X_train, X_test, y_test, names, alllayers, out, console):
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    from sklearn_flowspectrum import plotting

    emb = pipe.named_steps["embedder"]
    spectra = pipe[:-1].transform(X_test)
    what = "AllLayers" if alllayers else "L7"
    fields = None
    if alllayers:
        # The byte map of the training images: the field most sessions have
        # at each position labels the attention plots.
        fields = plotting.majority_byte_fields(
            pipe.named_steps["vectorizer"].byte_map(X_train)
        )

    def save(fig, name):
        with atomic_output(out / name) as temporary:
            fig.savefig(temporary, dpi=110)
        plt.close(fig)
        console.info(f"wrote {out / name}: {_DEMO_PLOTS[name]}")

    ax = plotting.plot_spectrum(
        spectra, y_test, class_names=names, order=emb.line_order_
    )
    ax.set_title(f"FlowSpectrum of {len(y_test)} held-out {what} sessions")
    save(ax.figure, "spectrum.png")
    ax = plotting.plot_spectrum_density(
        spectra, y_test, class_names=names, bandwidth=pipe[-1].bandwidth
    )
    save(ax.figure, "spectrum_density.png")
    if getattr(emb, "attention_weights_", None) is not None and hasattr(
        emb, "classes_"
    ):
        ax = plotting.plot_attention_scatter(emb, class_names=names, byte_fields=fields)
        save(ax.figure, "attention_scatter.png")
        classes = list(emb.classes_)
        for name, part in (("nonvpn", classes[:6]), ("vpn", classes[6:])):
            fig = plotting.plot_byte_weights(
                emb,
                start=100,
                stop=164,
                classes=part,
                class_names=names,
                byte_fields=fields,
            )
            save(fig, f"byte_weights_{name}.png")
        ax = plotting.plot_weight_boxplot(emb, class_names=names)
        save(ax.figure, "weight_boxplot.png")
    fig, ax = plt.subplots(figsize=(9, 8), layout="constrained")
    ConfusionMatrixDisplay.from_predictions(
        y_test,
        pipe[-1].predict(spectra),
        display_labels=list(names),
        ax=ax,
        colorbar=False,
        xticks_rotation=45,
    )
    ax.set_title(f"Per-session confusion matrix, {len(y_test)} held-out sessions")
    save(fig, "confusion_matrix.png")


# ---------------------------------------------------------------------------
# the parser


def _add_stream_options(p):
    p.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        default="csv",
        help="rows written to standard output as CSV (the default) or JSON Lines",
    )
    p.add_argument(
        "--idle-timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="a packet this long after the previous one of its 5-tuple starts a "
        "new session (default: none, every packet of a 5-tuple in one session, "
        "as the published datasets have it; set one for long live captures, "
        "whose memory then holds only the sessions still open)",
    )
    p.add_argument(
        "--active-timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="a packet this long after the first one of its session starts a "
        "new session (default: none)",
    )


def _add_common_capture_options(p, labels=True):
    p.add_argument(
        "--flows",
        action="store_true",
        help="one row per one-directional flow instead of per bidirectional session",
    )
    p.add_argument(
        "--on-error",
        choices=("raise", "warn"),
        default="raise",
        help="a corrupt or unreadable capture, given by name or found in a "
        "folder, stops the command (raise, the default) or is reported and the "
        "packets before the problem are used (warn)",
    )
    p.add_argument(
        "--n-jobs",
        type=_n_jobs_arg,
        default=None,
        help="read this many captures in parallel (-1: all cores, -2: all but one)",
    )
    p.add_argument(
        "--drop-empty",
        action="store_true",
        help="drop sessions without TCP/UDP payload",
    )
    p.add_argument(
        "--drop-duplicates",
        action="store_true",
        help="drop byte-identical duplicate sessions",
    )
    p.add_argument(
        "--drop-retransmissions",
        action="store_true",
        help="drop repeated TCP segments (same direction, sequence and payload)",
    )
    if labels:
        p.add_argument(
            "--labels",
            metavar="dir|FILE",
            help="the class of every session of a capture.  'dir' (the "
            "default): the name of the folder directly under the folder given "
            "(captures/dns/2024/a.pcap in captures: dns; a capture directly in "
            "the folder given: that folder's name; a capture given by name: "
            "the folder it is in; symbolic links: the link's folder, not the "
            "target's).  A CSV file with columns file,label (a 'sessions' "
            "table serves) maps capture files to labels.  Image inputs (IDX, "
            ".npy): a labels file as 'vectorize --labels-output' writes it "
            "(default: the labels-idx1 file beside an images-idx3 file)",
        )


def _add_image_options(p):
    p.add_argument(
        "--layers",
        choices=("all", "l7"),
        default="all",
        help="'all': packets from the link layer on; 'l7': TCP/UDP payloads only",
    )
    p.add_argument(
        "--layout",
        choices=("ustc", "frames", "packets"),
        default="ustc",
        help="'ustc': USTC-TK2016 images (the session's pcap file bytes, as in "
        "the paper); 'frames': frames only; 'packets': a fixed slot per packet",
    )
    p.add_argument("--mask", type=_mask_arg, default="safe", help=_MASK_HELP)
    p.add_argument(
        "--n-bytes",
        type=_positive_int,
        default=784,
        help="bytes per session image (default 784 = 28x28)",
    )


def _add_training_options(p, epochs):
    if epochs is None:  # the demo
        text = (
            f"training epochs of the embedder (default {DEMO_EPOCHS_CPU} on a CPU, "
            f"a few minutes; {DEMO_EPOCHS_GPU} on a GPU; the paper: 250)"
        )
    else:
        text = f"training epochs of the embedder (default {epochs}; the paper: 250)"
    batch = (
        f"training batch size (default {CPU_BATCH_SIZE} on a CPU, the paper's; "
        "AMAESpectrumEmbedder's default on a GPU)"
    )
    p.add_argument("--epochs", type=_positive_int, default=epochs, help=text)
    p.add_argument("--batch-size", type=_positive_int, default=None, help=batch)
    p.add_argument(
        "--device",
        type=_device_arg,
        default="auto",
        help="'auto' (CUDA when available, else CPU; the default), 'cpu', "
        "'cuda' or 'cuda:N'",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--no-attention",
        action="store_true",
        help="train the paper's 'AE' baseline without the attention module",
    )
    p.add_argument(
        "--bandwidth",
        type=_positive_float,
        default=0.1,
        help="kernel bandwidth of the FlowSpectrum classifier (default 0.1, the "
        "paper's)",
    )


def _add_model_and_inputs(p):
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="capture, folder, IDX or .npy images"
    )


def build_parser():
    """Return the ``argparse`` parser of the ``flowspectrum`` command."""
    parser = argparse.ArgumentParser(
        prog="flowspectrum",
        description=(
            "Interpretable encrypted-traffic classification with the AMAE "
            "FlowSpectrum: read captures into sessions, turn them into 784-byte "
            "images, map each to one spectrum value and classify it."
        ),
        epilog=(
            "Start with 'flowspectrum demo' (trains on the bundled ISCX-VPN2016 "
            "sample, prints accuracy, writes plots).  Your own traffic: put the "
            "captures of each class in a folder named after the class, then "
            "'flowspectrum fit DIR -o model.fsm' and "
            "'flowspectrum predict model.fsm new.pcap -o predictions.csv'."
        ),
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="only errors: no progress, messages or warnings",
    )
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show the full Python traceback of an error (for bug reports)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # -q/--traceback are accepted after the command name too; SUPPRESS keeps
    # a sub-command's default from overwriting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only errors: no progress, messages or warnings",
    )
    common.add_argument(
        "--traceback",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full Python traceback of an error",
    )

    p = sub.add_parser(
        "sessions",
        parents=[common],
        help="read captures into a session table (CSV or Parquet)",
        description="Read pcap/pcapng captures (files or folders) and write one "
        "row per TCP/UDP session: file, 5-tuple, times, packet and byte counts, "
        "label (see --labels; the packet bytes themselves are not written).",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="CAPTURE", help="capture file or folder"
    )
    p.add_argument(
        "-o",
        "--output",
        help="sessions.csv or .parquet, or - for standard output",
    )
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        help="instead of -o: one Parquet part per capture in DIR, the packet "
        "bytes included, for archives larger than memory (read them with "
        "read_sessions_parquet; needs pyarrow)",
    )
    p.add_argument("--report", help="also write the per-file packet accounting here")
    p.add_argument(
        "--keep-bytes",
        type=_positive_int,
        default=None,
        help="bytes of each session kept for images (default 784)",
    )
    _add_common_capture_options(p)
    _add_stream_options(p)
    p.set_defaults(func=_cmd_sessions)

    p = sub.add_parser(
        "vectorize",
        parents=[common],
        help="turn captures or IDX/.npy images into session images (IDX or .npy)",
        description="Turn captures (files or folders) into one byte image per "
        "session, or re-mask / re-lay out published USTC-TK2016 AllLayers IDX "
        "images.  The output holds uint8 bytes: .npy, or IDX (USTC-TK2016 "
        "format) for a name like images-idx3-ubyte.gz.",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="capture, folder, IDX or .npy images"
    )
    p.add_argument("-o", "--output", required=True, help="images .npy or IDX file")
    p.add_argument(
        "--labels-output",
        help="also write the labels (.npy, .csv, or IDX with a .names.txt legend)",
    )
    _add_image_options(p)
    _add_common_capture_options(p)
    p.set_defaults(func=_cmd_vectorize)

    p = sub.add_parser(
        "fit",
        parents=[common],
        help="train a model on labelled captures or IDX images and save it",
        description="Train PcapSessionVectorizer -> AMAESpectrumEmbedder -> "
        "FlowSpectrumClassifier on labelled sessions and save it in the "
        "model format: one zip file of JSON (steps, parameters, classes, "
        "package versions, checksums), .npy arrays and the network's weights "
        "as safetensors, which sklearn_flowspectrum.load_model reads without "
        "running code from it and without the optimizer's state (see "
        "--save-optimizer).  "
        "Captures: a folder per class (the folder name is the label; or "
        "--labels CSV).  Images: IDX images-idx3 files with labels-idx1 files "
        "beside them, or what 'vectorize' wrote (.npy or IDX) with "
        "--labels FILE (AllLayers images are masked like captures; L7 images "
        "are used as they are).  Ctrl-C stops training without saving (exit "
        "status 130).",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="capture, folder, IDX or .npy images"
    )
    p.add_argument("-o", "--output", required=True, help="model file (e.g. model.fsm)")
    p.add_argument(
        "--save-optimizer",
        action="store_true",
        help="write a pickle (joblib.load reads it) that also holds the "
        "optimizer's state (Adam's moment estimates: twice the size of the "
        "network) to resume training exactly with partial_fit; prediction "
        "does not need it.  Loading a pickle can run code: trusted files only",
    )
    p.add_argument(
        "--test-size",
        type=_share_arg,
        default=0.0,
        help="hold this share out and print the per-session accuracy and "
        "per-class precision, recall and F1 on it (captures: whole capture "
        "files are held out, class by class, so that every class with two or "
        "more captures has some held out; a class with one capture is used "
        "for training only; the saved model is trained on the rest)",
    )
    p.add_argument(
        "--unknown-rate",
        type=float,
        default=None,
        metavar="R",
        help="learn a threshold that marks sessions unlike every training "
        "class as unknown, rejecting about this share (e.g. 0.01) of held-out "
        "training sessions; 'predict' then writes the columns 'unknown' and "
        "'unknown_score' and labels those sessions 'unknown'",
    )
    _add_image_options(p)
    _add_training_options(p, epochs=20)
    _add_common_capture_options(p)
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser(
        "predict",
        parents=[common],
        help="classify the sessions of new captures with a saved model",
        description="Classify every session of the given captures (or the rows "
        "of IDX images) and write a CSV: the 5-tuple (captures) or row number "
        "(images), then 'predicted' (the predicted class), 'probability' (its "
        "probability), 'unknown' and 'unknown_score' (only for a model with an "
        "open-set reject option, see fit --unknown-rate: whether the session "
        "was rejected as of no known class, and how unlike them it is), "
        "'spectrum' (the session's spectrum value d(A)) and, with --proba, "
        "'proba_CLASS' for every class; image rows with a labels file beside "
        "them also get 'true_label'.  A model file of 'fit' loads "
        "without running code from it.  A pickle model (fit --save-optimizer, "
        "or earlier versions) can run code when loaded: use one only from a "
        "trusted source (a warning says so; files that name anything beyond "
        "what a model of 'flowspectrum fit' is made of are refused).",
    )
    _add_model_and_inputs(p)
    p.add_argument("-o", "--output", default="-", help="CSV file (default: stdout)")
    p.add_argument(
        "--proba",
        action="store_true",
        help="also write every class's probability (columns proba_CLASS)",
    )
    p.add_argument(
        "--unknown",
        action="store_true",
        help="require the 'unknown' and 'unknown_score' columns (sessions unlike "
        "every training class): fail unless the model was fitted with "
        "--unknown-rate, whose models always write them",
    )
    _add_common_capture_options(p, labels=False)
    _add_stream_options(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "evaluate",
        parents=[common],
        help="score a saved model on labelled captures or IDX images",
        description="Classify labelled sessions with a saved model and print "
        "how well it does, with the protocol (representation, masking, split): "
        "per-session accuracy, group-of-10 accuracy (the authors' protocol: "
        "groups of 10 same-class sessions decided together, far higher than "
        "per session), and per-class precision, recall and F1.  Captures: a "
        "folder per class, as for 'fit' (or --labels CSV); images: IDX files "
        "with labels-idx1 files beside them, or --labels FILE.  Score only "
        "sessions the model was not trained on.  A pickle model (fit "
        "--save-optimizer) can run code when loaded: use one only from a "
        "trusted source.",
    )
    _add_model_and_inputs(p)
    p.add_argument(
        "--confusion",
        metavar="PATH",
        help="also draw the per-session confusion matrix (.png, .pdf or .svg)",
    )
    p.add_argument(
        "-o",
        "--output",
        help="also write every score as a table (.csv or .parquet)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the group-of-10 draws (default 0)"
    )
    _add_common_capture_options(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "explain",
        parents=[common],
        help="name the protocol fields behind each session's spectrum value",
        description="Explain every session of the given captures with a saved "
        "model: attribute its spectrum value d(A) to its bytes (integrated "
        "gradients, field occlusion or the attention weights), sum per protocol "
        "field and write the top fields of each session with their share of "
        "the session's total (absolute) attribution.  A pickle model can run "
        "code when loaded: use one only from a trusted source (see "
        "'flowspectrum predict --help').",
    )
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument(
        "inputs", nargs="+", metavar="CAPTURE", help="capture file or folder"
    )
    p.add_argument("-o", "--output", required=True, help="fields.csv or .parquet")
    p.add_argument(
        "--method",
        choices=("gradients", "occlusion", "attention"),
        default=None,
        help="attribution method (default: the most faithful in the "
        "benchmarks, see the user guide)",
    )
    p.add_argument(
        "--top",
        type=_positive_int,
        default=3,
        help="fields written per session (default 3)",
    )
    _add_common_capture_options(p, labels=False)
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="train and evaluate on the bundled ISCX-VPN2016 sample, write plots",
        description="The whole method on the ISCX-VPN2016 sample bundled with the "
        "package (12 classes, 250 sessions each): split, train the pipeline on "
        "the CPU (a few minutes) or GPU, print per-session and group-of-10 "
        "accuracy with the protocol that produced them, and write the "
        "FlowSpectrum and attention plots as PNG files.",
    )
    p.add_argument(
        "--representation",
        choices=("alllayers", "l7"),
        default="alllayers",
        help="AllLayers images (pcap headers and frames; the default) or L7 "
        "(payload only)",
    )
    p.add_argument("--mask", type=_mask_arg, default="safe", help=_MASK_HELP)
    p.add_argument(
        "--test-size", type=_share_arg, default=0.2, help="held-out share (default 0.2)"
    )
    p.add_argument(
        "--out",
        default="flowspectrum-demo",
        help="folder for the PNG plots and results (default ./flowspectrum-demo)",
    )
    p.add_argument(
        "--n-per-class",
        type=int,
        default=None,
        help="use only this many sessions of each class (2-250; default all 250) "
        "for a quicker run",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--save-model", help="also save the trained model (model format, e.g. .fsm)"
    )
    _add_training_options(p, epochs=None)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None):
    """Run the ``flowspectrum`` command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    console = _Console(quiet=args.quiet, command=args.command)
    try:
        # The outputs of a command appear together, once it has succeeded.
        with all_or_nothing(), console.capture_warnings():
            return args.func(args, console)
    except CLIError as exc:
        if args.traceback:
            raise
        print(f"flowspectrum {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError) as exc:
        if args.traceback:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"flowspectrum {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        why = f" ({exc})" if str(exc) else ""
        print(f"flowspectrum {args.command}: interrupted{why}", file=sys.stderr)
        return 130
