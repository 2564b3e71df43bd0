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


@pytest.mark.parametrize("decoder", ["transposed", "mirror"])
@pytest.mark.parametrize("side", [28, 8, 5])
def test_outputs_have_the_shapes_of_the_2d_network(side, decoder):
    torch.manual_seed(0)
    one_d = AMAE1dModule(side=side, n_classes=3, channels=(8, 4), decoder=decoder)
    x = torch.rand(2, 1, side, side)
    d, logits, recon, w, aux = one_d(x)
    assert d.shape == (2,) and d.dtype == torch.float32
    assert logits.shape == aux.shape == (2, 3)
    assert recon.shape == x.shape and w.shape == (2, side, side)
    assert recon.min() >= 0 and recon.max() <= 1
    # The sequence is padded to a multiple of the pools' product (16).
    length = -(-side * side // 16) * 16
    assert one_d.code_shape == (4, length // 16)
    assert one_d.encode(x).shape == (2, 4, length // 16)
    assert isinstance(one_d.encoder[0], torch.nn.Conv1d)
    assert one_d.encoder[0].kernel_size == (5,)
    kind = torch.nn.ConvTranspose1d if decoder == "transposed" else torch.nn.Conv1d
    assert isinstance(one_d.decoder[-2], kind)


@pytest.mark.parametrize("side", [28, 8])
def test_table1_stages_give_the_code_size_of_the_2d_network(side):
    # Conv(64) - Conv(32) - pool 4 along the sequence: as many code numbers
    # as the 2-D network's Conv(64) - Conv(32) - MaxPool2d(2).
    one_d = AMAE1dModule(
        side=side, n_classes=3, channels=(64, 32), pools=(1, 4), decoder="mirror"
    )
    two_d = AMAEModule(side=side, n_classes=3)
    x = torch.rand(2, 1, side, side)
    assert one_d.encode(x).flatten(1).shape == two_d.encode(x).flatten(1).shape
    assert one_d.mapper[1].in_features == two_d.mapper[1].in_features
    assert one_d(x)[2].shape == x.shape


def test_default_network_is_a_quarter_of_the_2d_one():
    def size(module):
        return sum(p.numel() for p in module.parameters())

    assert size(AMAE1dModule(n_classes=12)) < size(AMAEModule(n_classes=12)) / 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channels=(8, 4), pools=(4,)), "one entry per stage"),
        (dict(channels=(), pools=()), "one entry per stage"),
        (dict(channels=(8, 0), pools=(4, 4)), "must be positive"),
        (dict(pools=(4, 0)), "must be positive"),
        (dict(decoder="deconv"), "decoder must be one of"),
    ],
)
def test_bad_stages_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AMAE1dModule(**kwargs)


def test_convolutions_run_along_the_byte_sequence():
    # A byte's neighbours in the sequence reach its code; its neighbours one
    # row below (28 bytes apart) do not, unlike a 3x3 2-D convolution.
    torch.manual_seed(0)
    module = AMAE1dModule(
        side=28, attention=False, byte_embedding=0, kernel_size=3, pools=(1, 4)
    )
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
