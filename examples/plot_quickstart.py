"""
==============================================
Quick start: classify sessions by FlowSpectrum
==============================================

The whole method in a scikit-learn :class:`~sklearn.pipeline.Pipeline`:

1. :class:`~sklearn_flowspectrum.PcapSessionVectorizer` turns each session
   into a 784-byte image and blanks the fields that leak the label
   (capture timestamps, addresses, ports, IP ID, checksums and DNS
   transaction IDs);
2. :class:`~sklearn_flowspectrum.AMAESpectrumEmbedder` maps each image to
   one real number, the session's place on the FlowSpectrum;
3. :class:`~sklearn_flowspectrum.FlowSpectrumClassifier` decides the class
   from that number.

We use the ISCX VPN-nonVPN 2016 sample bundled with the package, a few
dozen sessions per class and a few epochs so that the example runs in about
a minute on a CPU; see ``flowspectrum demo`` for a longer run.
"""

# %%
# Load the bundled data
# ---------------------
# 12 classes (six applications, with and without VPN), 250 sessions each.
# Each row holds the first 784 bytes of the session's pcap file, exactly as
# in the published USTC-TK2016 images.
import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from sklearn_flowspectrum import (
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
    group_of_k_accuracy_score,
)
from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample
from sklearn_flowspectrum.plotting import plot_spectrum

data = load_iscx_vpn2016_sample()
print(data.data.shape, data.target_names)

# A small, balanced subset keeps the example quick.
rng = np.random.default_rng(0)
subset = np.concatenate(
    [rng.choice(np.flatnonzero(data.target == c), 40, replace=False) for c in range(12)]
)
X, y = data.data[subset], data.target[subset]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# Build and train the pipeline
# ----------------------------
# ``mask="safe"`` is the default; it is spelled out here because it matters.
pipe = make_pipeline(
    PcapSessionVectorizer(mask="safe"),
    AMAESpectrumEmbedder(max_epochs=8, batch_size=64, random_state=0, device="cpu"),
    FlowSpectrumClassifier(),
)
pipe.fit(X_train, y_train)

# %%
# Evaluate, per session and per group
# -----------------------------------
# Per-session accuracy is what a classifier of live traffic achieves.  The
# paper's near-100% figures come from classifying groups of 10 same-class
# sessions together, which is much easier; we print both, labelled.
per_session = pipe.score(X_test, y_test)
group_of_10 = group_of_k_accuracy_score(pipe, X_test, y_test, k=10, random_state=0)
print(f"per-session accuracy: {per_session:.1%}")
print(f"group-of-10 accuracy: {group_of_10:.1%}")

# %%
# The FlowSpectrum of the held-out sessions
# -----------------------------------------
# Each vertical line is one session at its spectrum value ``d(A)``; each row
# is one class.  Classes the model separates occupy different intervals.
spectra = pipe[:-1].transform(X_test)
ax = plot_spectrum(spectra, y_test, class_names=data.target_names)
ax.set_title("FlowSpectrum of the held-out sessions")
