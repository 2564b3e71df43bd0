"""Tests for sklearn_flowspectrum.plotting (Agg backend, tiny inputs)."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sklearn_flowspectrum import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def spectra():
    rng = np.random.default_rng(0)
    d = np.r_[rng.normal(-2, 0.3, 40), rng.normal(1, 0.5, 30), rng.normal(4, 1, 30)]
    y = np.array(["chat"] * 40 + ["email"] * 30 + ["voip"] * 30)
    return d.reshape(-1, 1).astype(np.float32), y


@pytest.fixture
def weights():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(3, 784))
    W[1] += 1.0  # class 1 has the largest median
    return W


def test_plot_spectrum_stacked(spectra):
    d, y = spectra
    ax = plotting.plot_spectrum(d, y)
    # one event collection per class, at the class's values
    cols = ax.collections
    assert len(cols) == 3
    np.testing.assert_allclose(
        np.sort(cols[0].get_positions()), np.sort(d[y == "chat", 0])
    )
    assert [t.get_text() for t in ax.get_yticklabels()] == ["chat", "email", "voip"]
    assert ax.get_xlabel() == "spectrum value d(A)"


def test_plot_spectrum_one_row_with_names(spectra):
    d, y = spectra
    codes = np.unique(y, return_inverse=True)[1]
    ax = plotting.plot_spectrum(
        d, codes, class_names=["Chat", "Email", "VoIP"], stacked=False
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "Chat",
        "Email",
        "VoIP",
    ]
    assert len(ax.get_yticks()) == 0


def test_plot_spectrum_target_names_indexing():
    # integer targets index target_names, even when some classes are absent
    ax = plotting.plot_spectrum([0.0, 1.0, 2.0], [2, 5, 5], class_names=list("abcdef"))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "f"]


def test_plot_spectrum_bad_input(spectra):
    d, y = spectra
    with pytest.raises(ValueError, match="100 spectrum values but 99 labels"):
        plotting.plot_spectrum(d, y[:-1])
    with pytest.raises(ValueError, match="shape"):
        plotting.plot_spectrum(np.zeros((100, 2)), y)
    with pytest.raises(ValueError, match="NaN"):
        plotting.plot_spectrum(np.full(100, np.nan), y)
    with pytest.raises(ValueError, match="class_names has 2 entries"):
        plotting.plot_spectrum(d, y, class_names=["a", "b"])


def test_plot_spectrum_density_integrates_to_one(spectra):
    d, y = spectra
    ax = plotting.plot_spectrum_density(d, y, bandwidth=0.2, grid_size=2000)
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["chat", "email", "voip"]
    for ln in lines:
        x, f = ln.get_data()
        # the grid covers the data with a margin: almost all mass is inside
        assert 0.9 < np.trapezoid(f, x) <= 1.0 + 1e-6
    # the chat density peaks near its mean
    x, f = lines[0].get_data()
    assert abs(x[np.argmax(f)] + 2) < 0.3


def test_plot_spectrum_density_scott_and_bad_bandwidth(spectra):
    d, y = spectra
    ax = plotting.plot_spectrum_density(d, y)
    assert "Scott" in ax.get_title()
    for bad in (0, -1.0, "silverman"):
        with pytest.raises(ValueError, match="bandwidth"):
            plotting.plot_spectrum_density(d, y, bandwidth=bad)


def test_kde_matches_paper_formula():
    values = np.array([0.0, 1.0])
    grid = np.array([0.0, 0.5])
    h = 0.1
    density, _ = plotting._kde(values, grid, h)
    expected = [
        np.mean(np.exp(-((g - values) ** 2) / (2 * h * h)) / (np.sqrt(2 * np.pi) * h))
        for g in grid
    ]
    np.testing.assert_allclose(density, expected)


def test_plot_attention_scatter_with_fields(weights):
    fields = np.array(["payload"] * 784, dtype=object)
    fields[24:32] = "pcap.ts_sec"
    fields[40:46] = "eth.dst"
    fields[700:] = "pad"
    ax = plotting.plot_attention_scatter(
        weights, class_names=["a", "b", "c"], byte_fields=fields
    )
    assert len(ax.collections) == 3
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 1], weights[0])
    # the field strip is drawn and both legends are there
    assert len(ax.patches) == len(plotting._runs(fields))
    texts = [
        t.get_text()
        for leg in ax.findobj(matplotlib.legend.Legend)
        for t in leg.get_texts()
    ]
    assert {"a", "b", "c", "timestamp", "address", "payload", "padding"} <= set(texts)


def test_plot_attention_scatter_from_estimator_like(weights):
    class Fitted:
        attention_weights_ = weights
        classes_ = np.array(["x", "y", "z"])

    class Pipe:
        steps = [("emb", Fitted()), ("clf", object())]

    ax = plotting.plot_attention_scatter(Pipe())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["x", "y", "z"]
    # mapping input, 28x28 maps
    ax = plotting.plot_attention_scatter({"p": weights[0].reshape(28, 28)})
    assert len(ax.collections) == 1
    with pytest.raises(ValueError, match="attention_weights_"):
        plotting.plot_attention_scatter(type("P", (), {"steps": [("a", object())]})())


def test_plot_byte_weights(weights):
    fields = np.array(["ip.src"] * 784, dtype=object)
    fields[110:120] = "tcp.sport"
    fig = plotting.plot_byte_weights(
        weights, start=100, stop=132, classes=[2, 0], byte_fields=fields
    )
    assert len(fig.axes) == 2
    heights = [p.get_height() for p in fig.axes[0].containers[0]]
    assert len(heights) == 32
    # normalised jointly over the classes shown
    all_h = [p.get_height() for ax in fig.axes for p in ax.containers[0]]
    assert min(all_h) == 0.0 and max(all_h) == 1.0
    annotations = [t.get_text() for t in fig.axes[0].texts]
    assert annotations == ["ip.src", "tcp.sport", "ip.src"]
    fig = plotting.plot_byte_weights(weights, normalize=False, stop=110)
    np.testing.assert_allclose(
        [p.get_height() for p in fig.axes[1].containers[0]], weights[1, 100:110]
    )


def test_plot_byte_weights_bad_range_and_class(weights):
    with pytest.raises(ValueError, match="start < stop"):
        plotting.plot_byte_weights(weights, start=700, stop=800)
    with pytest.raises(ValueError, match=r"classes \[7\]"):
        plotting.plot_byte_weights(weights, classes=[7])
    with pytest.raises(ValueError, match="names 10 positions"):
        plotting.plot_byte_weights(weights, byte_fields=["payload"] * 10)


def test_plot_weight_boxplot_sorted_by_median(weights):
    ax = plotting.plot_weight_boxplot(weights, class_names=["a", "b", "c"])
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "b"
    medians = [ln.get_ydata()[0] for ln in ax.get_lines()[4::6]]
    assert medians == sorted(medians, reverse=True)
    ax = plotting.plot_weight_boxplot(weights, sort=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]


def test_majority_byte_fields_and_categories():
    byte_map = np.array(
        [
            ["ip.src", "pad", "tcp.sport"],
            ["ip.src", "payload", "udp.sport"],
            ["eth.dst", "payload", "payload"],
        ]
    )
    out = plotting.majority_byte_fields(byte_map)
    assert out.tolist() == ["ip.src", "payload", "mixed"]
    assert plotting.majority_byte_fields(byte_map, min_share=0.3).tolist()[2] in {
        "payload",
        "tcp.sport",
        "udp.sport",
    }
    cats = [
        plotting.field_category(f)
        for f in (
            "pcap.ts_sec",
            "pcap.linktype",
            "sll.header",
            "ipv6.dst",
            "ip.ttl",
            "udp.dport",
            "tcp.seq",
            "payload",
            "pad",
            None,
            "mixed",
            "weird",
        )
    ]
    assert cats == [
        "timestamp",
        "pcap header",
        "link layer",
        "address",
        "IP header",
        "port",
        "transport header",
        "payload",
        "padding",
        "padding",
        "mixed",
        "mixed",
    ]
    assert set(cats) <= set(plotting.FIELD_CATEGORIES)


def test_plot_session_attributions_names_the_top_fields():
    fields = np.array(
        ["ip.ttl"] * 2 + ["tcp.window"] * 4 + ["ip.ttl"] * 2 + ["pad"] * 4
    )
    attr = np.array([0.5, 0.5, 0.1, 0.1, 0.1, 0.1, 0.4, 0.4, 0, 0, 0, 0])
    ax = plotting.plot_session_attributions(attr, fields, top=1, title="s0")
    # ip.ttl (1.8 over both packets) beats tcp.window (0.4): named at both
    # of its stretches; padding is not drawn.
    assert [t.get_text() for t in ax.texts] == ["ip.ttl", "ip.ttl"]
    assert len(ax.patches) == 8 and ax.get_title() == "s0"
    ax = plotting.plot_session_attributions(attr, fields, top=2, stop=12)
    assert sorted({t.get_text() for t in ax.texts}) == ["ip.ttl", "tcp.window"]
    with pytest.raises(ValueError, match="names 3 positions"):
        plotting.plot_session_attributions(attr, fields[:3])
    with pytest.raises(ValueError, match="start < stop"):
        plotting.plot_session_attributions(attr, fields, start=5, stop=2)


def test_draws_on_given_axes(spectra, weights):
    d, y = spectra
    fig, axes = plt.subplots(2, 2)
    assert plotting.plot_spectrum(d, y, ax=axes[0, 0]) is axes[0, 0]
    assert plotting.plot_spectrum_density(d, y, ax=axes[0, 1]) is axes[0, 1]
    assert plotting.plot_attention_scatter(weights, ax=axes[1, 0]) is axes[1, 0]
    assert plotting.plot_weight_boxplot(weights, ax=axes[1, 1]) is axes[1, 1]
    fig2 = plt.figure()
    assert plotting.plot_byte_weights(weights, fig=fig2) is fig2


def test_core_does_not_import_plotting_or_matplotlib():
    import subprocess
    import sys

    code = (
        "import sys, sklearn_flowspectrum, sklearn_flowspectrum.datasets;"
        "print('matplotlib' in sys.modules,"
        " 'sklearn_flowspectrum.plotting' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
