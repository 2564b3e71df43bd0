"""The package's public surface and its import-time promises."""

import subprocess
import sys

import sklearn_flowspectrum


def test_all_names_resolve():
    for name in sklearn_flowspectrum.__all__:
        assert getattr(sklearn_flowspectrum, name) is not None
    assert set(sklearn_flowspectrum.__all__) <= set(dir(sklearn_flowspectrum))


def test_unknown_attribute_raises_attribute_error():
    try:
        sklearn_flowspectrum.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_capture_and_classifier_stages_do_not_import_torch():
    # Parsing captures in joblib workers and classifying spectra must not pay
    # for torch; the embedder is imported on first use.
    code = (
        "import sys, sklearn_flowspectrum as s;"
        "s.read_sessions, s.PcapSessionVectorizer, s.FlowSpectrumClassifier;"
        "print('torch' in sys.modules);"
        "s.AMAESpectrumEmbedder;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "True"]
