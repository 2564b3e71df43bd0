"""Tests of AMAE1dModule, the 1-D convolution network (tiny data, few epochs)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from sklearn_flowspectrum import (
    AMAE1dModule,
    AMAEModule,
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
)


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("side", [28, 8, 5])
def test_outputs_have_the_shapes_of_the_2d_network(side):
    torch.manual_seed(0)
    one_d = AMAE1dModule(side=side, n_classes=3, channels=(8, 4))
    two_d = AMAEModule(side=side, n_classes=3, channels=(8, 4))
    x = torch.rand(2, 1, side, side)
    d, logits, recon, w, aux = one_d(x)
    assert d.shape == (2,) and d.dtype == torch.float32
    assert logits.shape == aux.shape == (2, 3)
    assert recon.shape == x.shape and w.shape == (2, side, side)
    assert recon.min() >= 0 and recon.max() <= 1
    # Same code size, so the mapper (and its widths) is the 2-D network's.
    assert one_d.encode(x).flatten(1).shape == two_d.encode(x).flatten(1).shape
    assert one_d.code_shape == (4, (side + side % 2) ** 2 // 4)
    assert isinstance(one_d.encoder[0], torch.nn.Conv1d)
    assert one_d.encoder[0].kernel_size == (5,)


def test_convolutions_run_along_the_byte_sequence():
    # A byte's neighbours in the sequence reach its code; its neighbours one
    # row below (28 bytes apart) do not, unlike a 3x3 2-D convolution.
    torch.manual_seed(0)
    module = AMAE1dModule(side=28, attention=False, byte_embedding=0, kernel_size=3)
    module.eval()
    x = torch.zeros(1, 1, 28, 28, requires_grad=True)
    code = module.encode(x)
    code[0, :, 100].sum().backward()  # code position 100: bytes 400..403
    touched = np.flatnonzero(x.grad.flatten().abs().numpy())
    assert touched.min() >= 398 and touched.max() <= 405


@pytest.mark.parametrize("kernel_size", [0, 4, -3])
def test_even_or_nonpositive_kernel_is_rejected(kernel_size):
    with pytest.raises(ValueError, match="kernel_size must be a positive odd int"):
        AMAE1dModule(kernel_size=kernel_size)


def _synthetic(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 40, size=(n, 64), dtype=np.uint8)
    y = np.repeat(["a", "b"], n // 2)
    # A class-specific 4-byte field among noisy bytes.
    X[: n // 2, 8:12] = 100
    X[n // 2 :, 8:12] = 220
    return X, y


def _emb(**kw):
    params = dict(
        module=AMAE1dModule,
        module__channels=(8, 4),
        module__mapper_hidden=(16,),
        max_epochs=15,
        batch_size=16,
        random_state=0,
    )
    params.update(kw)
    return AMAESpectrumEmbedder(**params)


def test_embedder_with_1d_module_separates_two_classes():
    X, y = _synthetic(seed=0)
    Xt, yt = _synthetic(seed=1)
    emb = _emb().fit(X, y)
    assert isinstance(emb.module_, AMAE1dModule)
    Z = emb.transform(Xt)
    assert Z.shape == (64, 1) and Z.dtype == np.float32
    acc = FlowSpectrumClassifier().fit(emb.transform(X), y).score(Z, yt)
    assert acc >= 0.9


def test_module_parameters_clone_and_pickle():
    emb = _emb(max_epochs=1, module__kernel_size=3)
    assert clone(emb).get_params()["module__kernel_size"] == 3
    X, y = _synthetic()
    emb.fit(X, y)
    assert emb.module_.encoder[0].kernel_size == (3,)
    loaded = pickle.loads(pickle.dumps(emb))
    np.testing.assert_array_equal(loaded.transform(X), emb.transform(X))
