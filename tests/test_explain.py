"""Per-byte explanations: shapes, field sums, ignored fields, a named leak."""

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline

from sklearn_flowspectrum import (
    AMAEModule,
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
    explain,
    explanation_byte_map,
    field_attributions,
)
from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample

METHODS = ("attention", "gradients", "occlusion")
# Synthetic images: 8 fields of 8 bytes each.
FIELDS = np.repeat([f"f{i}" for i in range(8)], 8).astype(object)
LEAK = "f3"


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _tiny(**kw):
    params = dict(
        max_epochs=1,
        batch_size=16,
        random_state=0,
        module__channels=(8, 8),
        module__mapper_hidden=(32,),
    )
    params.update(kw)
    return AMAESpectrumEmbedder(**params)


def _leaky_data(n=96, seed=0):
    """Noise everywhere except field LEAK, which carries the class."""
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 256, size=(n, 64), dtype=np.uint8)
    y = np.repeat(np.array(["a", "b"]), n // 2)
    X[:, FIELDS == LEAK] = np.where(y == "a", 30, 230)[:, None]
    return X, y


class _Blind(AMAEModule):
    """An AMAE network that multiplies the positions ``blind`` by zero first."""

    def __init__(self, side=28, n_classes=0, blind=(), **kwargs):
        super().__init__(side=side, n_classes=n_classes, **kwargs)
        keep = torch.ones(side * side)
        keep[list(blind)] = 0.0
        self.register_buffer("keep", keep.view(1, 1, side, side))

    def weigh(self, x, vectors=None):
        x = x * self.keep
        if vectors is not None:
            vectors = vectors * self.keep[0, 0, :, :, None]
        return super().weigh(x, vectors)


@pytest.fixture(scope="module")
def sample_pipe():
    X, y = load_iscx_vpn2016_sample(return_X_y=True)
    take = np.random.default_rng(0).permutation(len(X))[:96]
    X, y = X[take], y[take]
    torch.set_num_threads(1)
    pipe = make_pipeline(
        PcapSessionVectorizer(), _tiny(), FlowSpectrumClassifier()
    ).fit(X, y)
    return pipe, X[:12]


@pytest.mark.parametrize("method", METHODS)
def test_attributions_have_the_input_shape(sample_pipe, method):
    pipe, X = sample_pipe
    a = explain(pipe, X, method=method, n_steps=4)
    assert a.shape == X.shape and a.dtype == np.float32
    assert np.isfinite(a).all() and np.abs(a).sum() > 0
    # The embedder alone, on the images, gives the same attributions (with
    # the vectorizer's byte map: read from masked rows, the map cannot find
    # dns.id, whose ports are blanked).
    images = pipe[0].transform(X)
    b = explain(pipe[1], images, method=method, n_steps=4, byte_map=pipe[0].byte_map(X))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_field_sums_equal_the_field_table(sample_pipe):
    pipe, X = sample_pipe
    a = explain(pipe, X, method="gradients", n_steps=4)
    byte_map = explanation_byte_map(pipe, X)
    np.testing.assert_array_equal(byte_map, pipe[0].byte_map(X))
    table = field_attributions(a, byte_map)
    assert table.shape[0] == len(X)
    for i in (0, 5):
        for name in set(byte_map[i]):
            want = a[i][byte_map[i] == name].astype(np.float64).sum()
            assert table.loc[i, name] == pytest.approx(want, rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(table.sum(axis=1), a.sum(1), rtol=1e-5, atol=1e-6)
    absolute = field_attributions(a, byte_map, absolute=True)
    assert (absolute.to_numpy() >= np.abs(table.to_numpy()) - 1e-12).all()


def test_occlusion_field_shifts_are_the_blanked_spectra(sample_pipe):
    pipe, X = sample_pipe
    a = explain(pipe, X[:2], method="occlusion")
    byte_map = explanation_byte_map(pipe, X[:2])
    table = field_attributions(a, byte_map)
    images = pipe[0].transform(X[:2])
    emb = pipe[1]
    full = emb._spectrum(images, validated=True)[:, 0]
    for name in ("ip.len", "payload"):
        blanked = np.where(byte_map == name, 0, images).astype(np.float32)
        shift = full - emb._spectrum(blanked, validated=True)[:, 0]
        np.testing.assert_allclose(table[name], shift, rtol=1e-4, atol=1e-6)


def test_occlusion_blanking_the_pcap_magic_does_not_refuse_the_image(sample_pipe):
    # One occluded image per batch: a blanked pcap magic makes a row that no
    # longer reads as an AllLayers image; it must still be scored.
    pipe, X = sample_pipe
    a = explain(pipe, X[:1], method="occlusion", batch_size=1)
    table = field_attributions(a, explanation_byte_map(pipe, X[:1]))
    assert "pcap.magic" in table


def test_occlusion_of_the_posterior(sample_pipe):
    pipe, X = sample_pipe
    a = explain(pipe, X, method="occlusion", target="posterior")
    table = field_attributions(a, explanation_byte_map(pipe, X))
    assert table.shape[0] == len(X)
    assert (table.abs().to_numpy() <= 1 + 1e-9).all()


def test_integrated_gradients_add_up_to_the_spectrum_change():
    X, y = _leaky_data()
    emb = _tiny(max_epochs=2).fit(X, y)
    a = explain(emb, X[:10], method="gradients", n_steps=32)
    d = emb.transform(X[:10])[:, 0]
    d0 = emb._spectrum(np.zeros((1, 64), np.uint8), validated=True)[0, 0]
    np.testing.assert_allclose(a.sum(1), d - d0, rtol=0.05, atol=0.02)


def test_a_field_the_model_ignores_gets_zero():
    X, y = _leaky_data()
    blind = np.flatnonzero(FIELDS == "f6")
    emb = _tiny(module=_Blind, module__blind=blind.tolist()).fit(X, y)
    for method in ("occlusion", "gradients"):
        table = field_attributions(
            explain(emb, X[:16], method=method, byte_map=np.tile(FIELDS, (16, 1))),
            FIELDS,
        )
        assert (table["f6"] == 0).all(), method
        assert (table["f5"] != 0).any(), method


def test_a_leak_in_one_field_is_named_by_every_method():
    X, y = _leaky_data(n=128)
    emb = _tiny(max_epochs=15).fit(X, y)
    maps = np.tile(FIELDS, (32, 1))
    for method in METHODS:
        a = explain(emb, X[:32], method=method, byte_map=maps)
        table = field_attributions(a, FIELDS, absolute=True)
        assert table.mean().idxmax() == LEAK, (method, table.mean().round(4))


def test_byte_map_of_images_without_a_vectorizer():
    X, y = _leaky_data()
    X[:, 40:] = 0
    emb = _tiny().fit(X, y)
    m = explanation_byte_map(emb, X[:3])
    assert (m[:, :40] == "other").all() and (m[:, 40:] == "pad").all()


def test_bad_arguments_raise(sample_pipe):
    pipe, X = sample_pipe
    with pytest.raises(ValueError, match="method must be"):
        explain(pipe, X, method="saliency")
    with pytest.raises(ValueError, match="target must be"):
        explain(pipe, X, target="logit")
    with pytest.raises(ValueError, match="explains d\\(A\\) only"):
        explain(pipe, X, method="gradients", target="posterior")
    with pytest.raises(ValueError, match="byte_map has shape"):
        explain(pipe, X, method="occlusion", byte_map=FIELDS)
    with pytest.raises(TypeError, match="AMAESpectrumEmbedder"):
        explain(FlowSpectrumClassifier(), X)
    with pytest.raises(ValueError, match="byte_map has shape"):
        field_attributions(np.zeros((2, 3)), ["a", "b"])
