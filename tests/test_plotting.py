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


def test_plot_spectrum_rows_follow_order(spectra):
    d, y = spectra
    default = plotting.plot_spectrum(d, y)
    ax = plotting.plot_spectrum(d, y, order=["voip", "chat", "email"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["voip", "chat", "email"]
    # Row 0 holds voip's lines, in voip's colour of the default plot.
    np.testing.assert_allclose(
        np.sort(ax.collections[0].get_positions()), np.sort(d[y == "voip", 0])
    )
    np.testing.assert_allclose(
        ax.collections[0].get_color(), default.collections[2].get_color()
    )
    for bad in (["voip", "chat"], ["voip", "chat", "chat"], ["a", "chat", "email"]):
        with pytest.raises(ValueError, match="order must list each class"):
            plotting.plot_spectrum(d, y, order=bad)


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
    ax = plotting.plot_spectrum_density(
        d, y, bandwidth=0.2, grid_size=2000, scale="density"
    )
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["chat", "email", "voip"]
    for ln in lines:
        x, f = ln.get_data()
        # the grid covers the data with a margin: almost all mass is inside
        assert 0.9 < np.trapezoid(f, x) <= 1.0 + 1e-6
    # the chat density peaks near its mean
    x, f = lines[0].get_data()
    assert abs(x[np.argmax(f)] + 2) < 0.3
    assert ax.get_title().endswith("(Gaussian KDE, h = 0.2)")


def test_plot_spectrum_density_draws_the_classifiers_densities(spectra, monkeypatch):
    from sklearn_flowspectrum import FlowSpectrumClassifier

    d, y = spectra
    calls = []
    real = FlowSpectrumClassifier.class_log_density

    def spy(self, X):
        out = real(self, X)
        calls.append((self.get_params()["bandwidth"], np.asarray(X)[:, 0], out))
        return out

    monkeypatch.setattr(FlowSpectrumClassifier, "class_log_density", spy)
    ax = plotting.plot_spectrum_density(d, y, scale="density")
    ((bandwidth, grid, log_density),) = calls
    assert bandwidth == 0.1  # the classifier's default, the paper's h
    for k, ln in enumerate(ax.get_lines()):
        x, f = ln.get_data()
        np.testing.assert_array_equal(x, grid)
        np.testing.assert_array_equal(f, np.exp(log_density[:, k]))
    # ... which are the paper's Gaussian KDE (Eqs. 20-21) of each class
    h = 0.1
    for k, c in enumerate(["chat", "email", "voip"]):
        lines = d[y == c, 0].astype(float)
        x, f = ax.get_lines()[k].get_data()
        at = x[:: len(x) // 50]
        exact = np.mean(
            np.exp(-0.5 * ((at[:, None] - lines) / h) ** 2) / (np.sqrt(2 * np.pi) * h),
            axis=1,
        )
        np.testing.assert_allclose(f[:: len(x) // 50], exact, rtol=1e-2, atol=1e-12)


def test_plot_spectrum_density_rules_and_bad_input(spectra):
    from sklearn_flowspectrum import FlowSpectrumClassifier

    d, y = spectra
    for rule, name in (("scott", "Scott's"), ("silverman", "Silverman's")):
        ax = plotting.plot_spectrum_density(d, y, bandwidth=rule)
        h = FlowSpectrumClassifier(bandwidth=rule).fit(d, y).bandwidth_
        assert ax.get_title().endswith(
            f", {name} rule, h = {h.min():.3g} to {h.max():.3g} per class)"
        )
    for bad in (0, -1.0, "iqr"):
        with pytest.raises(ValueError, match="bandwidth"):
            plotting.plot_spectrum_density(d, y, bandwidth=bad)
    with pytest.raises(ValueError, match="scale"):
        plotting.plot_spectrum_density(d, y, scale="log")


def test_plot_spectrum_density_every_class_visible():
    # One class in a tight cluster: with Scott's rule its kernel is tiny and
    # its density (over 40) dwarfs the broad classes on one density axis.
    rng = np.random.default_rng(0)
    d = np.r_[rng.normal(0, 3, 100), rng.normal(10, 0.001, 100), rng.normal(20, 4, 100)]
    y = np.repeat(["broad", "spike", "wide"], 100)
    ax = plotting.plot_spectrum_density(d, y, bandwidth="scott", scale="density")
    peaks = [ln.get_ydata().max() for ln in ax.get_lines()]
    assert peaks[1] > 40 and max(peaks[0], peaks[2]) < 0.01 * peaks[1]
    ax = plotting.plot_spectrum_density(d, y, bandwidth="scott")
    baselines = ax.get_yticks()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["broad", "spike", "wide"]
    for ln, base in zip(ax.get_lines(), baselines):
        # each class reaches 0.9 of its row, whatever its peak density
        assert ln.get_ydata().max() - base == pytest.approx(0.9)
        assert ln.get_ydata().min() >= base
    written = [t.get_text() for t in ax.texts]
    assert written == [f"peak {p:.3g}" for p in peaks]
    assert "scaled to its peak" in ax.get_ylabel()


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
    # the field names themselves along the top
    assert {"pcap.ts_sec", "eth.dst", "payload"} <= set(_top_labels(ax))


def _top_labels(ax):
    ax.figure.canvas.draw()
    (top,) = ax.child_axes
    return [t.get_text() for t in top.get_xticklabels()]


def test_plot_attention_scatter_names_the_vectorizers_fields():
    # The byte map the demo uses: PcapSessionVectorizer.byte_map of images.
    from sklearn_flowspectrum import PcapSessionVectorizer
    from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample

    rows = load_iscx_vpn2016_sample().data[::250][:8]
    byte_map = PcapSessionVectorizer().fit(rows).byte_map(rows)
    fields = plotting.majority_byte_fields(byte_map)
    W = np.random.default_rng(0).normal(size=(2, 784))
    ax = plotting.plot_attention_scatter(W, byte_fields=byte_map)
    labels = _top_labels(ax)
    named = {name for label in labels for name in label.split("/")}
    assert labels and named <= set(fields.tolist()) - {"pad", "mixed"}
    # the leaky fields the masking is about are named first, neighbours together
    assert "ip.src/ip.dst" in labels
    assert "pcap.ts_sec/pcap.ts_usec" in labels


def test_field_name_labels_keep_their_distance():
    fields = ["pcap.ts_sec"] * 4 + ["ip.ttl"] + ["ip.src"] * 4 + ["ip.dst"] * 4
    fields = np.array(fields + ["payload"] * 30 + ["pad"] * 9)
    cats = plotting.majority_field_categories(fields)
    placed = plotting._field_name_labels(fields, cats, min_gap=5)
    names = [n for _, n in placed]
    # ip.ttl is too close to its neighbours; the addresses share a label
    assert names == ["pcap.ts_sec", "ip.src/ip.dst", "payload"]
    centres = [p for p, _ in placed]
    assert np.all(np.diff(centres) >= 5)
    everything = plotting._field_name_labels(fields, cats, min_gap=1)
    assert [n for _, n in everything] == [
        "pcap.ts_sec",
        "ip.ttl",
        "ip.src/ip.dst",
        "payload",
    ]


@pytest.mark.parametrize("n", [12, 20, 30])
def test_class_styles_never_repeat(n):
    W = np.random.default_rng(0).normal(size=(n, 50))
    ax = plotting.plot_attention_scatter(W)
    styles = []
    for coll in ax.collections:
        colour = tuple(np.round(coll.get_facecolor()[0][:3], 6))
        marker = coll.get_paths()[0].vertices.round(6).tobytes()
        styles.append((colour, marker))
    assert len(set(styles)) == n
    if n <= 20:
        # distinct colours, and the lighter shade of a hue (class i + 10)
        # also has another marker than its darker shade (class i)
        assert len({c for c, _ in styles}) == n
        for i in range(n - 10):
            assert styles[i][1] != styles[i + 10][1]
    legend = ax.get_legend()
    assert len(legend.legend_handles) == n


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
    # a y scale on every panel, and what it measures
    for ax in fig.axes:
        assert [t for t in ax.get_yticks()] == [0, 0.5, 1]
    assert fig.get_supylabel() == "attention weight (0-1 over the classes shown)"
    assert [ax.get_ylabel() for ax in fig.axes] == ["2", "0"]
    fig = plotting.plot_byte_weights(weights, normalize=False, stop=110)
    np.testing.assert_allclose(
        [p.get_height() for p in fig.axes[1].containers[0]], weights[1, 100:110]
    )
    assert fig.get_supylabel() == "attention weight (standardised)"
    assert len(fig.axes[1].get_yticks()) >= 3


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
