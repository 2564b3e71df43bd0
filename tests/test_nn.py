"""Tests of the AMAE torch modules (sklearn_flowspectrum._nn)."""

import math
import pickle

import numpy as np
import pytest
import torch

from sklearn_flowspectrum._nn import (
    AMAELoss,
    AMAEModule,
    AttentionFusion,
    GaussianHead,
    SingleChannelAttention,
    SpatialAttention,
    order_classes,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _images(n, side):
    return torch.rand(n, 1, side, side)


@pytest.mark.parametrize("side", [28, 5, 4])
def test_module_shapes(side):
    x = _images(3, side)
    m = AMAEModule(side=side, n_classes=4, mapper_hidden=(16, 8)).eval()
    d, logits, recon, w, aux = m(x)
    assert d.shape == (3,)
    assert logits.shape == (3, 4)
    assert recon.shape == x.shape
    assert w.shape == (3, side, side)
    assert aux.shape == (3, 4)
    half = (side + side % 2) // 2
    assert m.encode(x).shape == (3, 32, half, half)
    assert torch.allclose(m.spectrum(x), d)


def test_table1_layers():
    m = AMAEModule(side=28)
    convs = [c for c in m.encoder if isinstance(c, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [
        (64, (3, 3)),
        (32, (3, 3)),
    ]
    assert any(isinstance(c, torch.nn.MaxPool2d) for c in m.encoder)
    assert any(isinstance(c, torch.nn.Upsample) for c in m.decoder)
    # PReLU after every convolution except the decoder's output layer.
    n_prelu = sum(isinstance(c, torch.nn.PReLU) for c in m.modules())
    assert n_prelu >= 4
    assert not any(isinstance(c, torch.nn.ReLU) for c in m.modules())
    # byte_embedding=0 gives the paper's one-channel encoder input.
    assert AMAEModule(side=28, byte_embedding=0).encoder[0].in_channels == 1
    assert m.encoder[0].in_channels == 1 + 8


def test_mapper_auto():
    assert AMAEModule(side=4, n_classes=3).mapper_kind == "softmax"
    assert AMAEModule(side=4, n_classes=3, head="linear").mapper_kind == "mlp"
    assert AMAEModule(side=4, n_classes=0).mapper_kind == "mlp"
    m = AMAEModule(side=4, n_classes=3, mapper="mlp", mapper_hidden=(8,)).eval()
    d, _, _, _, aux = m(_images(2, 4))
    assert m.mapper_out is not None and aux.shape == (2, 3)


def test_attention_false_is_plain_autoencoder():
    x = _images(2, 28)
    m = AMAEModule(side=28, n_classes=3, attention=False)
    assert m.fusion is None
    d, logits, recon, w, aux = m(x)
    assert w is None
    assert d.shape == (2,)


def test_single_channel_attention_pools_rows():
    att = SingleChannelAttention(6)
    x = _images(2, 6)
    q = att(x)
    assert q.shape == (2, 6, 6)
    # Only row statistics enter: permuting the bytes within a row keeps Q.
    perm = x[..., torch.randperm(6)]
    torch.nn.init.normal_(att.mlp[-1].weight)
    assert torch.allclose(att(perm), att(x), atol=1e-6)


def test_spatial_attention_in_unit_interval():
    s = SpatialAttention()(_images(2, 7))
    assert s.shape == (2, 7, 7)
    assert torch.all((s > 0) & (s < 1))


def test_fusion_weights_are_a_distribution_over_bytes():
    fusion = AttentionFusion(8)
    torch.nn.init.normal_(fusion.channel.mlp[-1].weight, std=0.5)
    x = _images(4, 8)
    w = fusion.weights(x)
    assert torch.all(w >= 0)
    assert torch.allclose(w.flatten(1).sum(1), torch.ones(4), atol=1e-5)
    weighted, w2 = fusion(x)
    assert torch.allclose(weighted, x * 64 * w2.unsqueeze(1), atol=1e-6)


def test_fusion_starts_as_identity():
    fusion = AttentionFusion(28)
    x = _images(2, 28)
    weighted, w = fusion(x)
    assert torch.allclose(w, torch.full_like(w, 1 / 784))
    assert torch.allclose(weighted, x, atol=1e-5)


def test_fusion_matches_equation_13():
    fusion = AttentionFusion(5)
    torch.nn.init.normal_(fusion.channel.mlp[-1].weight)
    x = _images(1, 5)
    q = fusion.channel(x)[0]
    k = fusion.spatial(x)[0]
    expected = torch.softmax((q @ k.T / math.sqrt(5)).flatten(), 0).view(5, 5)
    assert torch.allclose(fusion.weights(x)[0], expected, atol=1e-6)


def test_elementwise_fusion_scores_each_position_by_its_own_key():
    fusion = AttentionFusion(5, fusion="elementwise")
    x = _images(2, 5)
    assert torch.allclose(fusion.weights(x), torch.full((2, 5, 5), 1 / 25))
    torch.nn.init.normal_(fusion.channel.mlp[-1].weight)
    q = fusion.channel(x)
    k = fusion.spatial(x)
    expected = torch.softmax((q * k).flatten(1), 1).view(2, 5, 5)
    assert torch.allclose(fusion.weights(x), expected, atol=1e-6)
    module = AMAEModule(side=5, n_classes=2, fusion="elementwise")
    assert module.fusion.fusion == "elementwise"
    assert module(x)[0].shape == (2,)
    with pytest.raises(ValueError, match="fusion must be one of"):
        AttentionFusion(5, fusion="sum")


def test_fusion_saved_before_the_option_loads_as_the_paper():
    import pickle

    fusion = AttentionFusion(4)
    del fusion.__dict__["fusion"]  # as pickled by an earlier version
    loaded = pickle.loads(pickle.dumps(fusion))
    assert loaded.fusion == "matmul"
    assert loaded.weights(_images(1, 4)).shape == (1, 4, 4)


def test_gaussian_head_is_nearest_centre_at_start():
    head = GaussianHead(5)
    centres = head.centres.detach()
    logits = head(centres + 0.1)
    assert torch.equal(logits.argmax(1), torch.arange(5))


def test_linear_head_and_bad_head():
    m = AMAEModule(side=4, n_classes=3, head="linear", aux_head=False)
    _, logits, _, _, aux = m(_images(2, 4))
    assert logits.shape == (2, 3)
    assert aux is None
    with pytest.raises(ValueError, match="head"):
        AMAEModule(side=4, n_classes=3, head="cosine")


def test_loss_terms():
    x = _images(6, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    m = AMAEModule(side=4, n_classes=3, mapper="mlp", mapper_hidden=(8,))
    out = m(x)
    rec_only = AMAELoss()(out, x)
    assert torch.allclose(rec_only, torch.nn.functional.mse_loss(out[2], x))
    full = AMAELoss().set_mapper(m.mapper_kind)(out, x, y)
    assert full > rec_only
    no_aux = AMAELoss(aux_weight=0.0).set_mapper(m.mapper_kind)(out, x, y)
    assert no_aux < full
    full.backward()
    assert m.aux.weight.grad is not None
    assert m.head.centres.grad is not None
    assert m.fusion.channel.mlp[0].weight.grad is not None


@pytest.mark.parametrize(
    "mapper, kwargs, expected",
    [
        ("softmax", {}, (0.0, 1.0)),
        ("mlp", {}, (1.0, 0.5)),
        ("softmax", {"classification_weight": 0.3}, (0.3, 1.0)),
        ("mlp", {"aux_weight": 0}, (1.0, 0.0)),
    ],
)
def test_auto_loss_weights_follow_the_mapper(mapper, kwargs, expected):
    loss = AMAELoss(**kwargs).set_mapper(mapper)
    assert (loss.classification_weight_, loss.aux_weight_) == expected
    with pytest.raises(ValueError, match="mapper must be one of"):
        AMAELoss().set_mapper("linear")


def test_auto_weights_unresolved_is_a_clear_error():
    m = AMAEModule(side=4, n_classes=3, mapper_hidden=(8,))
    x = _images(6, 4)
    with pytest.raises(RuntimeError, match="set_mapper"):
        AMAELoss()(m(x), x, torch.tensor([0, 1, 2, 0, 1, 2]))
    # Numbers need no mapper; old pickles hold numbers only.
    loss = AMAELoss(classification_weight=1.0, aux_weight=0.5)
    assert loss(m(x), x, torch.tensor([0, 1, 2, 0, 1, 2])) > 0
    state = pickle.loads(pickle.dumps(loss)).__dict__
    assert state["classification_weight_"] == 1.0


def test_softmax_mapper_trains_no_gaussian_head_under_auto_weights():
    # d(A) is the posterior-weighted place of the classes: the per-class
    # logits carry the loss and the head on d(A) gets no gradient.
    torch.manual_seed(0)
    m = AMAEModule(side=4, n_classes=3, mapper_hidden=(8,))
    assert m.mapper_kind == "softmax"
    x = _images(6, 4)
    loss = AMAELoss().set_mapper("softmax")
    loss(m(x), x, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    assert m.aux.weight.grad.abs().sum() > 0
    assert m.head.centres.grad is None and m.head.log_sigma.grad is None


def test_temperature_divides_the_logits_of_the_softmax_mapper():
    torch.manual_seed(0)
    warm = AMAEModule(side=4, n_classes=3, mapper_hidden=(8,))
    cold = AMAEModule(side=4, n_classes=3, mapper_hidden=(8,), temperature=0.1)
    cold.load_state_dict(warm.state_dict())
    warm.eval(), cold.eval()
    x = _images(6, 4)
    with torch.no_grad():
        d_warm, logits = warm.map_code(warm.encode(x))
        d_cold, _ = cold.map_code(cold.encode(x))
        centres = warm.head.centres
        assert torch.allclose(d_warm, torch.softmax(logits, 1) @ centres)
        assert torch.allclose(d_cold, torch.softmax(logits / 0.1, 1) @ centres)
        assert not torch.allclose(d_cold, d_warm)
    with pytest.raises(ValueError, match="temperature must be positive"):
        AMAEModule(temperature=0)


def test_order_classes_puts_confused_classes_side_by_side():
    # Chain 0 - 3 - 1 - 4 - 2: each class shares probability with its
    # neighbours in the chain only.
    chain = [0, 3, 1, 4, 2]
    P = []
    for a, b in zip(chain, chain[1:]):
        row = np.zeros(5)
        row[a], row[b] = 0.6, 0.4
        P += [row] * 10
    order = order_classes(np.array(P)).tolist()
    assert order in (chain, chain[::-1])
    assert order.index(0) <= 2  # class 0 on the left
    assert sorted(order) == list(range(5))
    assert order_classes(np.eye(2)).tolist() == [0, 1]


def test_place_classes_moves_centres_and_spectrum():
    torch.manual_seed(0)
    m = AMAEModule(side=4, n_classes=3, mapper_hidden=(8,))
    m.eval()
    before = m.head.centres.detach().clone()
    m.place_classes([2, 0, 1])
    after = m.head.centres.detach()
    assert torch.equal(torch.sort(after).values, torch.sort(before).values)
    assert after[2] < after[0] < after[1]
    with pytest.raises(ValueError, match="permutation"):
        m.place_classes([0, 0, 1])


def test_unsupervised_projection():
    m = AMAEModule(side=4, n_classes=0)
    assert m.head is None and bool(m.use_projection)
    x = _images(5, 4)
    code = m.encode(x).flatten(1)
    mean = code.mean(0)
    axis = torch.randn(code.shape[1])
    m.set_projection(mean, axis)
    assert torch.allclose(m.spectrum(x), (code - mean) @ axis, atol=1e-5)


def test_bf16_autocast_keeps_spectrum_float32():
    m = AMAEModule(side=4, n_classes=2, mapper_hidden=(8,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d, logits, *_ = m(_images(3, 4))
    assert d.dtype == torch.float32
    assert logits.dtype == torch.float32


def test_softmax_mapper_places_sessions_between_class_centres():
    m = AMAEModule(side=4, n_classes=3, mapper="softmax", mapper_hidden=(8,)).eval()
    x = _images(5, 4)
    d, logits, _, _, aux = m(x)
    assert aux.shape == (5, 3)
    expected = torch.softmax(aux, 1) @ m.head.centres
    assert torch.allclose(d, expected, atol=1e-6)
    centres = m.head.centres.detach()
    assert torch.all((d >= centres.min()) & (d <= centres.max()))
    with pytest.raises(ValueError, match="gaussian"):
        AMAEModule(side=4, n_classes=3, mapper="softmax", head="linear")
    with pytest.raises(ValueError, match="mapper"):
        AMAEModule(side=4, n_classes=3, mapper="tree")


def test_byte_embedding_channels():
    m = AMAEModule(side=4, n_classes=2, byte_embedding=3, mapper_hidden=(8,))
    assert m.encoder[0].in_channels == 4
    x = torch.randint(0, 256, (2, 1, 4, 4)).float() / 255
    weighted, w = m.weigh(x)
    assert weighted.shape == (2, 4, 4, 4)
    # Embedding channels carry the same attention weighting as M_w.
    idx = (x[:, 0] * 255).round().long()
    expected = m.embedding(idx).permute(0, 3, 1, 2) * (16 * w).unsqueeze(1)
    assert torch.allclose(weighted[:, 1:], expected, atol=1e-6)
