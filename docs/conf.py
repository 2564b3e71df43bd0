"""Sphinx configuration for sklearn_flowspectrum.

Build with ``make -C docs html`` (runs the example gallery, a few minutes on a
CPU) or ``make -C docs html-noplot`` (gallery pages without running the
scripts).  Both use ``-W``: a warning fails the build.  Cross-links to the
numpy/sklearn/torch docs (intersphinx) need the network and are off unless
``FLOWSPECTRUM_DOCS_INTERSPHINX=1``.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import os
import sys
from importlib.util import find_spec
from pathlib import Path

import matplotlib
from numpydoc.xref import DEFAULT_LINKS

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sklearn_flowspectrum  # noqa: E402

project = "sklearn_flowspectrum"
author = "The sklearn_flowspectrum developers"
copyright = "The sklearn_flowspectrum developers, BSD-3-Clause"
version = release = sklearn_flowspectrum.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
if os.environ.get("FLOWSPECTRUM_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "pandas": ("https://pandas.pydata.org/docs", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable", None),
        "torch": ("https://pytorch.org/docs/stable", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
    }

templates_path = ["_templates"]
exclude_patterns = ["_build", "sg_execution_times.rst"]
default_role = "literal"
nitpicky = False

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Types in parameter lists become cross-references where Sphinx knows the
# name and stay plain text otherwise (this also keeps "n_features_in_" from
# being read as a reST link).
numpydoc_xref_param_type = True
# Offline builds have no intersphinx inventories: numpydoc's default aliases
# (bool -> python docs, array-like -> numpy glossary) would be broken links,
# so every name stays itself; names Sphinx cannot resolve render as code.
numpydoc_xref_aliases = {name: name for name in DEFAULT_LINKS}
numpydoc_xref_ignore = {
    "of", "shape", "or", "and", "default", "optional", "the", "a", "an", "with",
    "only", "if", "when", "object", "objects", "instance", "like", "type",
    "dtype", "same", "as", "per", "any", "one", "n", "k", "to", "in", "from",
}


def _skip_member(app, what, name, obj, skip, options):
    # sklearn generates set_{fit,score,...}_request methods for metadata
    # routing; their docstrings link into sklearn's own docs.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
    # Show printed output only, not the repr of a cell's last expression.
    "capture_repr": (),
    # Per-object "Examples using ..." sections on the API pages.
    "doc_module": ("sklearn_flowspectrum",),
    "backreferences_dir": "gen_modules/backreferences",
    "inspect_global_variables": False,
}

if find_spec("pydata_sphinx_theme") is not None:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {"navigation_with_keys": False,
                          "show_toc_level": 2}
else:  # the docs extra brings the theme; fall back rather than fail
    html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"sklearn_flowspectrum {version}"
