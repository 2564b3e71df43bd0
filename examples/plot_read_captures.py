"""
=========================
Reading your own captures
=========================

From pcap/pcapng files to labelled session images and predictions.  The
package bundles six small real captures from the nDPI test suite (Chat,
VoIP and Streaming applications); replace their paths with your own.
"""

# %%
# Sessions
# --------
# :func:`~sklearn_flowspectrum.read_sessions` groups the TCP/UDP packets of
# each capture by bidirectional 5-tuple.  ``labels`` gives every session of a
# file the label of that file (here nDPI's category of the application).
import os

import matplotlib.pyplot as plt
import numpy as np

from sklearn_flowspectrum import (
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    PcapSessionVectorizer,
    read_sessions,
)
from sklearn_flowspectrum.datasets import load_sample_captures
from sklearn_flowspectrum.plotting import FIELD_CATEGORIES, field_category

captures = load_sample_captures()
sessions, report = read_sessions(
    captures.filenames, labels=list(captures.target), return_report=True
)
columns = [
    "protocol",
    "src_addr",
    "src_port",
    "dst_addr",
    "dst_port",
    "packets",
    "label",
]
print(sessions[columns].head(8).to_string())

# %%
# Every packet is accounted for: read, used, or skipped with a reason.
print(
    report[["file", "format", "packets", "used", "not_ip", "sessions"]]
    .assign(file=report["file"].map(os.path.basename))
    .to_string(index=False)
)

# %%
# Session images and their byte map
# ---------------------------------
# The vectorizer lays each session out as the USTC-TK2016 image (the bytes of
# the session's own pcap file) and blanks the leaky fields.  Its byte map
# names the field behind every byte, which the attention plots use.
vectorizer = PcapSessionVectorizer(scale=False).fit(sessions)
images = vectorizer.transform(sessions)
byte_map = vectorizer.byte_map(sessions)
print(images.shape, images.dtype)

first = 0
kinds = np.array([field_category(f) for f in byte_map[first]])
palette = {kind: i for i, kind in enumerate(FIELD_CATEGORIES)}
fig, (ax_bytes, ax_fields) = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained")
ax_bytes.imshow(images[first].reshape(28, 28), cmap="gray_r")
ax_bytes.set_title("session bytes (masked fields are 0)")
cmap = plt.matplotlib.colors.ListedColormap(list(FIELD_CATEGORIES.values()))
ax_fields.imshow(
    np.vectorize(palette.get)(kinds).reshape(28, 28),
    cmap=cmap,
    vmin=-0.5,
    vmax=len(FIELD_CATEGORIES) - 0.5,
)
ax_fields.set_title("kind of field behind each byte")
handles = [
    plt.Rectangle((0, 0), 1, 1, color=FIELD_CATEGORIES[k], label=k)
    for k in FIELD_CATEGORIES
    if k in set(kinds)
]
ax_fields.legend(
    handles=handles, loc="center left", bbox_to_anchor=(1, 0.5), fontsize="small"
)
for ax in (ax_bytes, ax_fields):
    ax.set_xticks([])
    ax.set_yticks([])

# %%
# Train and predict
# -----------------
# The vectorizer takes the session table directly, so the pipeline goes from
# captures to labels.  Fifty sessions are far too few to learn traffic
# classes: this shows the calls, not an accuracy (the predictions below are
# on the training sessions themselves).
from sklearn.pipeline import make_pipeline

pipe = make_pipeline(
    PcapSessionVectorizer(),
    AMAESpectrumEmbedder(max_epochs=10, batch_size=16, random_state=0, device="cpu"),
    FlowSpectrumClassifier(bandwidth="scott"),
)
pipe.fit(sessions, sessions["label"])

new = read_sessions(captures.filenames[-1])  # in practice: a new capture
new["predicted"] = pipe.predict(new)
new["probability"] = pipe.predict_proba(new).max(axis=1)
new["spectrum"] = pipe[:-1].transform(new)[:, 0]
print(
    new[
        [
            "protocol",
            "src_addr",
            "dst_addr",
            "dst_port",
            "predicted",
            "probability",
            "spectrum",
        ]
    ].to_string()
)

# %%
# The command line does the same: ``flowspectrum fit captures/ -o model.fsm``
# (one folder per class) and ``flowspectrum predict model.fsm new.pcap``.
