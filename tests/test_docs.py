"""The API reference lists every public name."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import re
from pathlib import Path

import pytest

import sklearn_flowspectrum
import sklearn_flowspectrum.datasets
import sklearn_flowspectrum.evaluation

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _documented():
    text = (DOCS / "api.rst").read_text()
    evaluation = DOCS / "evaluation.rst"
    if evaluation.is_file():
        text += evaluation.read_text()
    return set(re.findall(r"^   (\w+)\s*$", text, flags=re.M))


@pytest.mark.parametrize(
    "module",
    [
        sklearn_flowspectrum,
        sklearn_flowspectrum.datasets,
        sklearn_flowspectrum.evaluation,
    ],
    ids=lambda m: m.__name__,
)
def test_api_reference_is_complete(module):
    # constants (upper case) are described in the prose, not autosummary
    public = {n for n in module.__all__ if not n.isupper() and n != "__version__"}
    missing = sorted(public - _documented())
    assert not missing, f"add to docs/api.rst: {missing}"


def test_plotting_functions_documented():
    pytest.importorskip("matplotlib")
    import sklearn_flowspectrum.plotting as plotting

    public = {n for n in plotting.__all__ if not n.isupper()}
    missing = sorted(public - _documented())
    assert not missing, f"add to docs/api.rst: {missing}"
