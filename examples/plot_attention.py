"""
==================================================
Which bytes put a session there: attention weights
==================================================

The AMAE network weighs every byte of a session image before encoding it.
After ``fit``, :class:`~sklearn_flowspectrum.AMAESpectrumEmbedder` keeps per
class the weights averaged over the class's training sessions and
standardised, ``attention_weights_``: the material of the paper's
Figures 7-10.  The vectorizer's byte map tells which protocol field sits at
each position, so the weights can be read as fields.
"""

# %%
# Train
# -----
import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import make_pipeline

from sklearn_flowspectrum import (
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
)
from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample
from sklearn_flowspectrum.plotting import (
    majority_byte_fields,
    plot_attention_scatter,
    plot_byte_weights,
    plot_weight_boxplot,
)

data = load_iscx_vpn2016_sample()
rng = np.random.default_rng(0)
subset = np.concatenate(
    [rng.choice(np.flatnonzero(data.target == c), 30, replace=False) for c in range(12)]
)
X, y = data.data[subset], data.target[subset]
pipe = make_pipeline(
    PcapSessionVectorizer(),
    AMAESpectrumEmbedder(max_epochs=6, batch_size=64, random_state=0, device="cpu"),
    FlowSpectrumClassifier(),
)
pipe.fit(X, y)
embedder = pipe.named_steps["amaespectrumembedder"]
print(embedder.attention_weights_.shape)  # (n_classes, 784)

# %%
# The byte map
# ------------
# One field name per byte and session; the field most sessions have at a
# position labels it.  Packet boundaries move with the packet lengths, so
# after the first packet many positions hold different fields in different
# sessions ("mixed").
byte_map = pipe.named_steps["pcapsessionvectorizer"].byte_map(X)
fields = majority_byte_fields(byte_map)
print(fields[20:44])

# %%
# All 784 weights of every class (Fig. 7)
# ---------------------------------------
# The strip at the bottom colours each position by the kind of field behind
# it in most sessions.  Masked fields (timestamps, addresses, ports) are
# zero in every image, so the network has nothing to read there.
plot_attention_scatter(embedder, class_names=data.target_names, byte_fields=byte_map)

# %%
# A range of bytes, per class (Figs. 8-9)
# ---------------------------------------
# The paper shows bytes 100-163.  Here, the first packet's headers: bytes
# 24-87 of the non-VPN classes.
plot_byte_weights(
    embedder,
    start=24,
    stop=88,
    classes=range(6),
    class_names=data.target_names,
    byte_fields=byte_map,
)

# %%
# The distribution of each class's weights (Fig. 10)
# --------------------------------------------------
plot_weight_boxplot(embedder, class_names=data.target_names)

# %%
# One session
# -----------
# ``attention_maps`` gives the weights of single sessions.  The network
# multiplies each byte by its weight times 784, so a weight above 1/784
# amplifies the byte.
maps = embedder.attention_maps(pipe[:1].transform(X[:1]))
fig, axes = plt.subplots(1, 2, figsize=(8, 4), layout="constrained")
axes[0].imshow(pipe[:1].transform(X[:1]).reshape(28, 28), cmap="gray_r")
axes[0].set_title(f"a {data.target_names[y[0]]} session (masked)")
im = axes[1].imshow(maps[0].reshape(28, 28) * 784, cmap="viridis")
axes[1].set_title("its attention weights x 784")
fig.colorbar(im, ax=axes[1], shrink=0.8)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
