"""
====================================
FlowSpectra, densities and decisions
====================================

The FlowSpectrum of a class is the set of spectrum values ``d(A)`` of its
training sessions (the paper's Eq. 2, Fig. 5).  The classifier turns them
into Gaussian kernel densities (Eqs. 20-21, Fig. 6) and decides with Bayes'
rule; far from every known line, the exponential decay rule of Eqs. 7-8
takes over.  This example draws all three for the non-VPN classes of the
bundled sample.
"""

# %%
# Train on the non-VPN classes
# ----------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from sklearn_flowspectrum import (
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
)
from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample
from sklearn_flowspectrum.plotting import plot_spectrum, plot_spectrum_density

data = load_iscx_vpn2016_sample()
rng = np.random.default_rng(0)
subset = np.concatenate(
    [rng.choice(np.flatnonzero(data.target == c), 60, replace=False) for c in range(6)]
)
X, y = data.data[subset], data.target[subset]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
pipe = make_pipeline(
    PcapSessionVectorizer(),
    AMAESpectrumEmbedder(max_epochs=8, batch_size=64, random_state=0, device="cpu"),
    FlowSpectrumClassifier(),
)
pipe.fit(X_train, y_train)
train_spectra = pipe[:-1].transform(X_train)
test_spectra = pipe[:-1].transform(X_test)
print(f"per-session accuracy on held-out sessions: {pipe.score(X_test, y_test):.1%}")

# %%
# The spectral lines
# ------------------
# One row per class, one line per training session (``stacked=False`` draws
# them on one axis, as the paper does).
fig, axes = plt.subplots(
    2, 1, figsize=(9, 6), layout="constrained", height_ratios=[3, 1.2]
)
plot_spectrum(train_spectra, y_train, class_names=data.target_names, ax=axes[0])
plot_spectrum(
    train_spectra, y_train, class_names=data.target_names, stacked=False, ax=axes[1]
)
axes[1].set_title("the same lines on one axis")

# %%
# Densities
# ---------
# The paper uses a bandwidth of ``h = 0.1`` (top), the classifier's default:
# these are the densities it decides with
# (``FlowSpectrumClassifier.class_log_density``).  Scott's rule (bottom)
# adapts ``h`` to the spread of each class, so a class whose lines sit in one
# tight cluster gets a very narrow kernel and a tall spike.  Each row is
# scaled to its own peak (written at its right end), so no class flattens
# the others; ``scale="density"`` draws them all on one density axis.  The
# classifier's ``bandwidth`` parameter is the same ``h`` (and can be tuned,
# see the grid-search example).
fig, axes = plt.subplots(2, 1, figsize=(9, 8), layout="constrained", sharex=True)
plot_spectrum_density(
    train_spectra, y_train, class_names=data.target_names, bandwidth=0.1, ax=axes[0]
)
plot_spectrum_density(
    train_spectra,
    y_train,
    class_names=data.target_names,
    bandwidth="scott",
    ax=axes[1],
)

# %%
# Decisions along the spectrum
# ----------------------------
# The posterior of each class at every spectrum value, including values far
# outside the training lines (grey), where the decay rule decides by the
# nearest known line of each class.  The steps a little beyond the outermost
# lines are where the classifier switches from the kernel densities to the
# decay rule (three bandwidths from the nearest line; ``rule="kde+decay"``).
# Ticks at the bottom: the held-out sessions.
clf = pipe[-1]
lo, hi = train_spectra.min(), train_spectra.max()
grid = np.linspace(lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo), 800).reshape(-1, 1)
proba = clf.predict_proba(grid)
fig, ax = plt.subplots(figsize=(9, 3.8), layout="constrained")
colors = plt.get_cmap("tab10").colors
for k, c in enumerate(clf.classes_):
    ax.plot(grid[:, 0], proba[:, k], color=colors[k], label=data.target_names[c])
    ax.plot(
        test_spectra[y_test == c, 0],
        np.full((y_test == c).sum(), -0.04),
        "|",
        color=colors[k],
        markersize=8,
    )
ax.axvspan(grid[0, 0], lo, color="0.9", zorder=0)
ax.axvspan(hi, grid[-1, 0], color="0.9", zorder=0, label="beyond every line")
ax.set_xlabel("spectrum value d(A)")
ax.set_ylabel("P(class | d(A))")
ax.set_title("Posterior of each class along the FlowSpectrum")
ax.legend(fontsize="small", ncols=2)
