"""flowspectrum sessions --output-dir: one Parquet part per capture."""

import shutil

import pandas as pd
import pytest

from sklearn_flowspectrum import read_sessions, read_sessions_parquet
from sklearn_flowspectrum._cli import main
from sklearn_flowspectrum.datasets import load_sample_captures

pytest.importorskip("pyarrow", reason="pyarrow is not installed (the 'dask' extra)")
pytest.importorskip("dask.dataframe", reason="dask is not installed (the 'dask' extra)")

CAPTURES = load_sample_captures().filenames[:3]


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_output_dir_writes_the_parts_of_read_sessions(capsys, tmp_path):
    for label, src in zip(("chat", "chat", "voip"), CAPTURES):
        (tmp_path / "caps" / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, tmp_path / "caps" / label)
    out, report = tmp_path / "parts", tmp_path / "report.csv"
    code, _, err = run(
        capsys, "sessions", tmp_path / "caps", "--output-dir", out,
        "--report", report, "--flows", "--keep-bytes", "100",
    )  # fmt: skip
    assert code == 0, err
    expected = read_sessions(tmp_path / "caps", "dir", flows=True, keep_bytes=100)
    pd.testing.assert_frame_equal(read_sessions_parquet(out).compute(), expected)
    assert f"wrote {len(expected)} flows of 3 capture(s)" in err
    assert pd.read_csv(report)["sessions"].sum() == len(expected)


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ([], "give one of -o/--output FILE and --output-dir DIR"),
        (["-o", "x.csv", "--output-dir", "d"], "give one of -o/--output"),
        (["--output-dir", "d", "--drop-duplicates"], "--drop-duplicates"),
    ],
)
def test_output_dir_refusals(capsys, tmp_path, extra, fragment):
    code, _, err = run(capsys, "sessions", CAPTURES[0], *extra)
    assert code == 1 and fragment in err.strip().splitlines()[-1]
    assert "Traceback" not in err


def test_output_dir_that_holds_parts_is_one_line(capsys, tmp_path):
    out = tmp_path / "parts"
    assert run(capsys, "-q", "sessions", CAPTURES[0], "--output-dir", out)[0] == 0
    code, _, err = run(capsys, "sessions", CAPTURES[0], "--output-dir", out)
    assert code == 1 and "holds session parts already" in err
