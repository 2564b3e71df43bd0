"""Static checks of the example gallery (running it is the docs build's job).

Each example trains a network for about a minute, too long for the unit
tests; ``make -C docs html`` runs them all.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import ast
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))


def test_gallery_has_readme_and_examples():
    readme = (EXAMPLES / "README.txt").read_text()
    assert readme.startswith(".. _examples:")
    names = {p.stem for p in SCRIPTS}
    assert {
        "plot_quickstart",
        "plot_read_captures",
        "plot_spectrum_density",
        "plot_attention",
        "plot_grid_search",
        "plot_masking_leakage",
    } <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_structure(script):
    source = script.read_text()
    tree = ast.parse(source)  # compiles
    doc = ast.get_docstring(tree, clean=False)
    assert doc is not None, "sphinx-gallery needs a title docstring"
    lines = doc.strip("\n").splitlines()
    # "====" / title / "====" with bars at least as long as the title
    assert set(lines[0]) == {"="} and set(lines[2]) == {"="}
    assert len(lines[0]) >= len(lines[1]) and len(lines[2]) >= len(lines[1])
    assert source.count("\n# %%") >= 2, "split the example into # %% cells"
    # runs on the bundled data: no paths to data outside the package
    assert "shared/data" not in source and "/work/" not in source
