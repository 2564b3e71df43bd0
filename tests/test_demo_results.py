"""The README's demo numbers come from the demo's own results.json."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

from sklearn_flowspectrum._cli import main

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--epochs", "1", "--batch-size", "16", "--device", "cpu"]


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "update_readme", ROOT / "scripts" / "update_readme.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return _load_script()


@pytest.fixture(scope="module")
def committed():
    return json.loads((ROOT / "docs" / "_static" / "demo_results.json").read_text())


def _schema(value):
    """The keys and value types of a JSON value (ints and floats alike)."""
    if isinstance(value, dict):
        return {k: _schema(v) for k, v in value.items()}
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _assert_same_schema(got, expected, where="results"):
    """Same keys at every level, same value types (null matches any scalar:
    ``n_per_class`` and ``mask`` are null in some runs)."""
    if isinstance(expected, dict) or isinstance(got, dict):
        assert isinstance(got, dict) and isinstance(expected, dict), where
        assert sorted(got) == sorted(expected), where
        for key in expected:
            _assert_same_schema(got[key], expected[key], f"{where}.{key}")
    elif "null" not in (got, expected):
        assert got == expected, where


def test_readme_numbers_are_the_committed_demo_results(script, committed):
    readme = (ROOT / "README.md").read_text()
    caption = script.caption(readme)
    acc = committed["accuracy"]
    expected = [
        f"{acc['per_session']:.1%}",
        f"{acc['group_of_10']:.1%}",
        f"{acc['extra_trees_per_session']:.1%}",
    ]
    # Every percentage of the caption, in order, is one of the run's.
    assert re.findall(r"\d+\.\d%", caption) == expected
    assert caption == script.render(committed)
    assert f"{committed['split']['n_test']:,} held-out" in caption
    assert f"{committed['epochs']} epochs" in caption
    # Outside the generated block the README quotes no accuracy.
    outside = readme.replace(caption, "")
    assert not re.findall(r"\d+\.\d%", outside)


def test_readme_picture_is_the_runs(committed):
    picture = ROOT / committed["readme_picture"]["path"]
    digest = hashlib.sha256(picture.read_bytes()).hexdigest()
    assert digest == committed["readme_picture"]["sha256"]
    assert (
        f"]({committed['readme_picture']['path']})" in (ROOT / "README.md").read_text()
    )


def test_committed_results_are_a_default_run(script, committed):
    script.check_default_run(committed)
    assert committed["torch_threads"] == 2  # what scripts/demo.sh sets
    assert committed["split"]["n_test"] == 600


@pytest.mark.filterwarnings("ignore:group-of-10 accuracy from classes")
def test_demo_writes_results_json_of_the_committed_schema(
    capsys, tmp_path, monkeypatch, committed
):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    monkeypatch.setenv("DEMO_TORCH_THREADS", "1")
    out = tmp_path / "demo"
    code = main(["demo", "--n-per-class", "6", "--no-plots", "--out", str(out), *FAST])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert torch.get_num_threads() == threads  # restored after the run
    results = json.loads((out / "results.json").read_text())
    expected = _schema(committed)
    del expected["readme_picture"]  # added by scripts/update_readme.py
    _assert_same_schema(_schema(results), expected)
    assert results["torch_threads"] == 1
    assert results["split"]["n_per_class"] == 6
    assert results["epochs"] == 1 and results["batch_size"] == 16
    # the numbers are those the demo prints
    acc = results["accuracy"]
    assert f"per-session accuracy:          {acc['per_session']:.1%}" in stdout
    assert f"group-of-10 accuracy:          {acc['group_of_10']:.1%}" in stdout
    assert f"per-session: {acc['extra_trees_per_session']:.1%}" in stdout
    assert results["protocol"][0] in stdout


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_demo_refuses_a_bad_thread_count(capsys, tmp_path, monkeypatch, value):
    monkeypatch.setenv("DEMO_TORCH_THREADS", value)
    code = main(["demo", "--n-per-class", "6", "--no-plots", "--out", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines() == [
        f"flowspectrum demo: error: DEMO_TORCH_THREADS must be a positive "
        f"integer, got {value!r}"
    ]
    assert not (tmp_path / "results.json").exists()


def test_update_readme_rewrites_only_the_block(script, committed):
    readme = (ROOT / "README.md").read_text()
    other = json.loads(json.dumps(committed))
    other["accuracy"] = {
        "per_session": 0.5,
        "group_of_10": 0.625,
        "extra_trees_per_session": 0.75,
    }
    new = script.update(readme, other)
    assert re.findall(r"\d+\.\d%", script.caption(new)) == ["50.0%", "62.5%", "75.0%"]
    assert new.replace(script.caption(new), "") == readme.replace(
        script.caption(readme), ""
    )
    with pytest.raises(ValueError, match="no .*demo-results"):
        script.caption("no markers here")


def test_update_readme_refuses_other_runs(script, committed):
    for key, value in (("seed", 3), ("mask", "none"), ("device", "cuda")):
        other = dict(committed, **{key: value})
        with pytest.raises(ValueError, match=key):
            script.check_default_run(other)
    other = json.loads(json.dumps(committed))
    other["split"]["n_per_class"] = 6
    with pytest.raises(ValueError, match="n_per_class"):
        script.check_default_run(other)
