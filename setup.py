"""Build hook for the optional compiled loops; metadata is in pyproject.toml.

``sklearn_flowspectrum._speedups`` is optional: without a C compiler the
installation goes on and the package uses its pure-Python loops
(``sklearn_flowspectrum/_loops.py``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sklearn_flowspectrum._speedups",
            ["sklearn_flowspectrum/_speedups.c"],
            optional=True,
        )
    ]
)
