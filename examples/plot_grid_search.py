"""
=====================================
Tuning the pipeline with GridSearchCV
=====================================

Every step's parameters are ordinary scikit-learn parameters, so
:class:`~sklearn.model_selection.GridSearchCV` tunes them like any other.
Training the embedder is the expensive part; the classifier's bandwidth and
decay rate cost almost nothing.  A ``memory`` cache on the pipeline fits the
embedder once per fold and reuses it for every classifier setting.
"""

# %%
# Data
# ----
# The L7 (payload-only) images need no vectorizer: the embedder takes the
# bytes as they are.
from tempfile import mkdtemp

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from sklearn_flowspectrum import (
    AMAESpectrumEmbedder,
    FlowSpectrumClassifier,
    make_group_of_k_scorer,
)
from sklearn_flowspectrum.datasets import load_iscx_vpn2016_sample

data = load_iscx_vpn2016_sample(representation="l7")
rng = np.random.default_rng(0)
subset = np.concatenate(
    [rng.choice(np.flatnonzero(data.target == c), 30, replace=False) for c in range(12)]
)
X, y = data.data[subset], data.target[subset]

# %%
# The search
# ----------
# Three folds, the embedder fitted once per fold (cached), nine classifier
# settings.  Two scores are recorded: per-session accuracy (used to pick the
# best setting) and group-of-10 accuracy, the authors' protocol.
pipe = Pipeline(
    [
        (
            "embedder",
            AMAESpectrumEmbedder(
                max_epochs=4, batch_size=64, random_state=0, device="cpu"
            ),
        ),
        ("classifier", FlowSpectrumClassifier()),
    ],
    memory=mkdtemp(),
)
param_grid = {
    "classifier__bandwidth": [0.03, 0.1, "scott"],
    "classifier__decay": [0.3, 1.0, 3.0],
}
search = GridSearchCV(
    pipe,
    param_grid,
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
    scoring={
        "per_session": "accuracy",
        "group_of_10": make_group_of_k_scorer(
            k=10, n_groups_per_class=200, random_state=0
        ),
    },
    refit="per_session",
)
search.fit(X, y)

# %%
# Results
# -------
results = pd.DataFrame(search.cv_results_)
columns = [
    "param_classifier__bandwidth",
    "param_classifier__decay",
    "mean_test_per_session",
    "mean_test_group_of_10",
]
print(
    results[columns]
    .sort_values("mean_test_per_session", ascending=False)
    .to_string(index=False)
)
print("best:", search.best_params_)

# %%
# The bandwidth matters where classes overlap on the spectrum; the decay rate
# only for values outside every class's lines.  Embedder parameters (e.g.
# ``embedder__max_epochs`` or ``embedder__attention``) go in the same grid;
# each of their values costs one training per fold.
ax = results.pivot_table(
    index="param_classifier__bandwidth",
    columns="param_classifier__decay",
    values="mean_test_per_session",
).plot.bar(figsize=(7, 4), rot=0)
ax.set_ylabel("per-session accuracy (3-fold CV)")
ax.set_xlabel("bandwidth h")
ax.legend(title="decay")
ax.set_title("Classifier parameters, L7 images")
ax.figure.set_layout_engine("constrained")
