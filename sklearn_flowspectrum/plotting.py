"""Plots of FlowSpectra and attention weights (the paper's Figures 5-10).

Every function takes plain arrays (or a fitted estimator that holds them),
draws on a matplotlib ``Axes`` (a new figure when ``ax`` is None) and returns
it; :func:`plot_byte_weights` draws one panel per class and returns the
``Figure``.  matplotlib is an optional dependency (the ``plots`` extra) and is
imported only when a function is called.

Byte positions are labelled with the protocol field behind them when a byte
map is given: ``byte_fields`` is either one field name per position, or a
per-session byte map of shape ``(n_sessions, n_bytes)`` (such as the ones
:mod:`sklearn_flowspectrum._layouts` computes), which
:func:`majority_byte_fields` reduces to the field most sessions have there.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

from collections.abc import Mapping

import numpy as np

from sklearn_flowspectrum._axes import get_ax, pyplot
from sklearn_flowspectrum._protocols import FIELD_GROUPS, FIELDS, PAD, TRAILER

__all__ = [
    "FIELD_CATEGORIES",
    "field_category",
    "majority_byte_fields",
    "majority_field_categories",
    "plot_attention_scatter",
    "plot_byte_weights",
    "plot_spectrum",
    "plot_session_attributions",
    "plot_spectrum_density",
    "plot_weight_boxplot",
]

#: Colour of each kind of field in the byte-field track of the attention plots.
FIELD_CATEGORIES = {
    "pcap header": "#7f7f7f",
    "timestamp": "#d62728",
    "link layer": "#9467bd",
    "address": "#ff7f0e",
    "IP header": "#1f77b4",
    "port": "#e377c2",
    "transport header": "#17becf",
    "payload": "#2ca02c",
    "padding": "#f0f0f0",
    "mixed": "#c7c7c7",
}
# The leaky field groups come from the protocol registry, the one place that
# names protocol fields, so plots and masking agree on what "leaky" means.
_LEAKY = {
    "timestamp": FIELD_GROUPS["timestamps"],
    "address": FIELD_GROUPS["addresses"],
    "port": FIELD_GROUPS["ports"],
}
# The category of each registry field, and of other dotted names by their
# prefix: the category of the layer of the registry's fields with that prefix.
_CATEGORY_OF = {f.name: f.category for f in FIELDS}
_LAYER_CATEGORY = {
    "pcap header": "pcap header",
    "pcap record": "pcap header",
    "link": "link layer",
    "ip": "IP header",
    "tcp": "transport header",
    "udp": "transport header",
}
_PREFIX_CATEGORY = {
    f.name.split(".", 1)[0]: _LAYER_CATEGORY[f.layer]
    for f in reversed(FIELDS)  # the first field of a prefix wins
    if "." in f.name and f.layer in _LAYER_CATEGORY
}


def field_category(name):
    """Return the kind of a byte-map field name, a key of :data:`FIELD_CATEGORIES`.

    Parameters
    ----------
    name : str or None
        A field name such as ``"ip.src"``, ``"pcap.ts_sec"``, ``"payload"``.

    Returns
    -------
    category : str

    Examples
    --------
    >>> from sklearn_flowspectrum.plotting import field_category
    >>> field_category("pcap.ts_usec"), field_category("tcp.window")
    ('timestamp', 'transport header')
    """
    if name is None or name == "" or name in (PAD, "padding"):
        return "padding"
    name = str(name)
    if name in _CATEGORY_OF:
        return _CATEGORY_OF[name]
    if name == TRAILER:
        return "payload"
    if "." in name:
        return _PREFIX_CATEGORY.get(name.split(".", 1)[0], "mixed")
    return "mixed"


def majority_byte_fields(byte_map, *, min_share=0.5):
    """Reduce a per-session byte map to one field name per byte position.

    Parameters
    ----------
    byte_map : array-like of shape (n_sessions, n_bytes) or (n_bytes,)
        The field behind each byte of each session's image (strings).  A 1-D
        input is returned as it is.
    min_share : float, default=0.5
        A position gets its most common field when at least this share of
        the sessions has it there, and ``"mixed"`` otherwise.

    Returns
    -------
    fields : ndarray of shape (n_bytes,), dtype object

    Examples
    --------
    >>> from sklearn_flowspectrum.plotting import majority_byte_fields
    >>> majority_byte_fields([["ip.src", "payload"], ["ip.src", "pad"],
    ...                       ["ip.src", "payload"]]).tolist()
    ['ip.src', 'payload']
    """
    fields = np.asarray(byte_map, dtype=object)
    if fields.ndim == 1:
        return fields
    if fields.ndim != 2 or fields.shape[0] == 0:
        raise ValueError(
            f"byte_map must have shape (n_sessions, n_bytes), got {fields.shape}"
        )
    out = np.empty(fields.shape[1], dtype=object)
    for j in range(fields.shape[1]):
        values, counts = np.unique(fields[:, j].astype(str), return_counts=True)
        best = np.argmax(counts)
        out[j] = (
            str(values[best]) if counts[best] >= min_share * len(fields) else "mixed"
        )
    return out


def majority_field_categories(byte_map, *, min_share=0.5):
    """The kind of field (:func:`field_category`) most sessions have at each byte.

    Packet boundaries move from session to session, so beyond the first
    packet the exact field at a position often differs while its kind
    (a timestamp, an address, payload) is shared.

    Parameters
    ----------
    byte_map : array-like of shape (n_sessions, n_bytes) or (n_bytes,)
        Field names, as for :func:`majority_byte_fields`.
    min_share : float, default=0.5
        A position gets its most common category when at least this share of
        the sessions has it there, and ``"mixed"`` otherwise.

    Returns
    -------
    categories : ndarray of shape (n_bytes,), dtype object
        Keys of :data:`FIELD_CATEGORIES`.

    Examples
    --------
    >>> from sklearn_flowspectrum.plotting import majority_field_categories
    >>> majority_field_categories([["ip.src", "tcp.sport"], ["eth.dst", "udp.sport"],
    ...                            ["ipv6.src", "payload"]]).tolist()
    ['address', 'port']
    """
    fields = np.asarray(byte_map, dtype=object)
    categories = np.vectorize(field_category, otypes=[object])(fields)
    if categories.ndim == 1:
        return categories
    return majority_byte_fields(categories, min_share=min_share)


def _byte_fields(byte_fields, n_bytes):
    """(field per position, category per position) or (None, None)."""
    if byte_fields is None:
        return None, None
    fields = majority_byte_fields(byte_fields)
    if len(fields) != n_bytes:
        raise ValueError(
            f"byte_fields names {len(fields)} positions, the weights have {n_bytes}"
        )
    return fields, majority_field_categories(byte_fields)


def _runs(fields, start=0, stop=None):
    """(first, stop, name) runs of equal field names in fields[start:stop]."""
    stop = len(fields) if stop is None else stop
    runs, first = [], start
    for j in range(start + 1, stop + 1):
        if j == stop or fields[j] != fields[first]:
            runs.append((first, j, fields[first]))
            first = j
    return runs


# Markers of the classes beyond the tenth (see _markers).
_MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", ":", "-.")


def _colors(n, colors=None):
    """One colour per class, all different.

    Up to 10 classes: tab10.  Beyond: the dark shades of tab20 then the light
    ones, so class ``i + 10`` has a lighter shade of class ``i``'s hue; the
    plots that overlay classes tell such pairs apart by marker or line style
    (:func:`_markers`, :func:`_linestyles`).
    """
    if colors is not None:
        colors = list(colors)
        if len(colors) < n:
            raise ValueError(f"colors has {len(colors)} entries for {n} classes")
        return colors
    plt = pyplot()
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    if n <= 20:
        order = list(range(0, 20, 2)) + list(range(1, 20, 2))
        return [plt.get_cmap("tab20")(i) for i in order[:n]]
    return [plt.get_cmap("turbo")(i / max(n - 1, 1)) for i in range(n)]


def _markers(n):
    """Scatter marker per class: one per block of ten classes."""
    return [_MARKERS[(i // 10) % len(_MARKERS)] for i in range(n)]


def _linestyles(n):
    """Line style per class: one per block of ten classes."""
    return [_LINESTYLES[(i // 10) % len(_LINESTYLES)] for i in range(n)]


def _labels(y, class_names):
    """Sorted classes of ``y`` and their display names."""
    y = np.asarray(y)
    if y.ndim != 1:
        y = y.ravel()
    classes = np.unique(y)
    if class_names is None:
        return y, classes, [str(c) for c in classes]
    if isinstance(class_names, Mapping):
        return y, classes, [str(class_names.get(c, c)) for c in classes]
    names = list(class_names)
    if np.issubdtype(classes.dtype, np.integer) and (
        classes.min() >= 0 and classes.max() < len(names)
    ):
        # Integer targets index target_names, as in sklearn's datasets.
        return y, classes, [str(names[c]) for c in classes]
    if len(names) == len(classes):
        return y, classes, [str(n) for n in names]
    raise ValueError(
        f"class_names has {len(names)} entries; y has {len(classes)} classes "
        f"({classes[:5].tolist()}...)"
    )


def _spectra(spectra, y):
    d = np.asarray(spectra, dtype=np.float64)
    if d.ndim == 2 and d.shape[1] == 1:
        d = d[:, 0]
    if d.ndim != 1:
        raise ValueError(
            f"spectra must have shape (n_sessions,) or (n_sessions, 1), got {d.shape}"
        )
    if len(np.asarray(y).ravel()) != len(d):
        raise ValueError(f"{len(d)} spectrum values but {len(np.ravel(y))} labels")
    if not np.isfinite(d).all():
        raise ValueError("spectra contain NaN or infinite values")
    return d


def plot_spectrum(
    spectra,
    y,
    *,
    class_names=None,
    stacked=True,
    colors=None,
    linewidth=0.8,
    alpha=0.5,
    order=None,
    ax=None,
):
    """Draw each session as a spectral line at its value ``d(A)`` (paper Fig. 5).

    Parameters
    ----------
    spectra : array-like of shape (n_sessions,) or (n_sessions, 1)
        Spectrum values, e.g. ``AMAESpectrumEmbedder().fit(X, y).transform(X)``.
    y : array-like of shape (n_sessions,)
        Class of each session.
    class_names : sequence or mapping, default=None
        Display names.  With integer ``y``, ``class_names[c]`` names class
        ``c`` (sklearn's ``target_names``); otherwise one name per sorted
        class, or a mapping from class to name.
    stacked : bool, default=True
        One row per class (the classes' intervals side by side); ``False``
        draws every line on one row, as in the paper.
    colors : sequence of colors, default=None
        One colour per class, in the order of the sorted classes.
    linewidth, alpha : float
        Of the spectral lines.
    order : sequence of classes, default=None
        The rows from top to bottom (with ``stacked``), e.g. the embedder's
        ``line_order_``, so that the rows follow the classes' places on the
        line; None keeps the sorted classes.  Colours stay with their class.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum.plotting import plot_spectrum
    >>> ax = plot_spectrum(np.r_[np.zeros(5), np.ones(5)], [0] * 5 + [1] * 5,
    ...                    class_names=["chat", "voip"])
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['chat', 'voip']
    """
    y, classes, names = _labels(y, class_names)
    d = _spectra(spectra, y)
    colors = _colors(len(classes), colors)
    if order is not None:
        rows = [np.flatnonzero(classes == c) for c in order]
        if sorted(i for r in rows for i in r) != list(range(len(classes))) or any(
            len(r) != 1 for r in rows
        ):
            raise ValueError(
                f"order must list each class of y once, got {list(order)} for "
                f"classes {classes.tolist()}"
            )
        rows = [int(r[0]) for r in rows]
        classes = classes[rows]
        names = [names[i] for i in rows]
        colors = [colors[i] for i in rows]
    ax = get_ax(ax, (9, 0.45 * len(classes) + 1.6 if stacked else 2.6))
    positions = [d[y == c] for c in classes]
    offsets = np.arange(len(classes)) if stacked else np.zeros(len(classes))
    styles = ["-"] * len(classes) if stacked else _linestyles(len(classes))
    ax.eventplot(
        positions,
        lineoffsets=offsets,
        linelengths=0.8 if stacked else 1.0,
        linewidths=linewidth,
        colors=colors,
        linestyles=styles,
        alpha=alpha,
    )
    if stacked:
        ax.set_yticks(offsets, names)
        ax.set_ylim(len(classes) - 0.5, -0.5)
    else:
        ax.set_yticks([])
        handles = [
            pyplot().Line2D([], [], color=c, linestyle=ls, label=n)
            for c, ls, n in zip(colors, styles, names)
        ]
        ax.legend(
            handles=handles,
            ncols=min(len(names), 6),
            fontsize="small",
            loc="upper center",
            bbox_to_anchor=(0.5, -0.25),
            frameon=False,
        )
    ax.set_xlabel("spectrum value d(A)")
    ax.set_title("FlowSpectrum: one line per session")
    ax.grid(axis="x", alpha=0.3)
    return ax


def _bandwidth_text(bandwidth, h):
    """``"h = 0.1"``, or the rule and the range of its per-class bandwidths."""
    h = h[np.isfinite(h)]
    if isinstance(bandwidth, str):
        rule = {"scott": "Scott's", "silverman": "Silverman's"}[bandwidth]
        if np.ptp(h) == 0:
            return f"{rule} rule, h = {h[0]:.3g}"
        return f"{rule} rule, h = {h.min():.3g} to {h.max():.3g} per class"
    return f"h = {h[0]:g}"


def plot_spectrum_density(
    spectra,
    y,
    *,
    bandwidth=0.1,
    class_names=None,
    colors=None,
    scale="peak",
    grid_size=None,
    fill=True,
    ax=None,
):
    """Gaussian kernel density of each class's spectral lines (paper Fig. 6).

    The densities are those of a
    :class:`~sklearn_flowspectrum.FlowSpectrumClassifier` fitted on
    ``spectra`` and ``y`` with this ``bandwidth``
    (:meth:`~sklearn_flowspectrum.FlowSpectrumClassifier.class_log_density`):
    with the classifier's own bandwidth they are the densities it decides
    with.

    Parameters
    ----------
    spectra : array-like of shape (n_sessions,) or (n_sessions, 1)
        Spectrum values.
    y : array-like of shape (n_sessions,)
        Class of each session.
    bandwidth : float, "scott" or "silverman", default=0.1
        Kernel bandwidth ``h`` in spectrum units, as the classifier's
        ``bandwidth`` parameter (0.1: the paper's and the classifier's
        default).  The rules choose one bandwidth per class from that class's
        spread.  The title states the bandwidths used.
    class_names : sequence or mapping, default=None
        As in :func:`plot_spectrum`.
    colors : sequence of colors, default=None
        One per class.
    scale : {"peak", "density"}, default="peak"
        ``"peak"``: one row per class, each curve scaled to its own peak
        (written at the right end of the row), so a class whose lines sit in
        one tight cluster does not flatten the others.  ``"density"``: all
        classes on one axis, in density units.
    grid_size : int, default=None
        Number of evaluation points; by default enough for four per
        bandwidth (at least 512, at most 20,000).
    fill : bool, default=True
        Shade under each curve.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum.plotting import plot_spectrum_density
    >>> rng = np.random.default_rng(0)
    >>> d = np.r_[rng.normal(0, 1, 50), rng.normal(5, 1, 50)]
    >>> ax = plot_spectrum_density(d, [0] * 50 + [1] * 50, bandwidth=0.5)
    >>> len(ax.get_lines()), ax.get_title()
    (2, 'Spectral line density per class (Gaussian KDE, h = 0.5)')
    """
    from sklearn_flowspectrum._classifier import FlowSpectrumClassifier

    y, classes, names = _labels(y, class_names)
    d = _spectra(spectra, y)
    if scale not in ("peak", "density"):
        raise ValueError(f"scale must be 'peak' or 'density', got {scale!r}")
    clf = FlowSpectrumClassifier(bandwidth=bandwidth).fit(d[:, None], y)
    h = clf.bandwidth_
    lo, hi = d.min(), d.max()
    pad = max(0.05 * (hi - lo), 3 * np.nanmax(h))
    grid_lo, grid_hi = lo - pad, hi + pad
    if grid_size is None:
        grid_size = int(np.clip((grid_hi - grid_lo) / (np.nanmin(h) / 4), 512, 20000))
    grid = np.linspace(grid_lo, grid_hi, int(grid_size))
    densities = np.exp(clf.class_log_density(grid[:, None])).T
    colors = _colors(len(classes), colors)
    n = len(classes)
    if scale == "peak":
        ax = get_ax(ax, (9, 0.55 * n + 1.6))
        baselines = np.arange(n)[::-1].astype(float)  # the first class on top
    else:
        ax = get_ax(ax, (9, 4))
        baselines = np.zeros(n)
    styles = _linestyles(n)
    for k, (density, name, color) in enumerate(zip(densities, names, colors)):
        base = baselines[k]
        peak = density.max()
        curve = density
        if scale == "peak":
            curve = base + 0.9 * density / peak
            ax.annotate(
                f"peak {peak:.3g}",
                xy=(1.0, base),
                xycoords=("axes fraction", "data"),
                xytext=(3, 0),
                textcoords="offset points",
                va="bottom",
                fontsize="x-small",
            )
        linestyle = "-" if scale == "peak" else styles[k]
        ax.plot(grid, curve, color=color, label=name, linewidth=1.2, ls=linestyle)
        if fill:
            ax.fill_between(grid, base, curve, color=color, alpha=0.15, linewidth=0)
    ax.set_xlabel("spectrum value d(A)")
    ax.set_xlim(grid[0], grid[-1])
    if scale == "peak":
        ax.set_yticks(baselines, names)
        ax.set_ylim(-0.15, n - 0.05)
        ax.set_ylabel("density, each class scaled to its peak")
    else:
        ax.set_ylabel("density")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize="small", ncols=2 if n > 6 else 1)
    ax.set_title(
        "Spectral line density per class "
        f"(Gaussian KDE, {_bandwidth_text(bandwidth, h)})"
    )
    return ax


def _weights(weights, class_names):
    """(classes, names, W) from an array, DataFrame, mapping or fitted estimator."""
    classes = None
    obj = weights
    if hasattr(obj, "steps"):  # a Pipeline: the step that has attention weights
        found = [s for _, s in obj.steps if hasattr(s, "attention_weights_")]
        if not found:
            raise ValueError("no step of the pipeline has attention_weights_")
        obj = found[-1]
    if hasattr(obj, "attention_weights_"):
        classes = getattr(obj, "classes_", None)
        obj = obj.attention_weights_
    if isinstance(obj, Mapping):
        classes = list(obj.keys())
        W = np.asarray([np.asarray(v, dtype=float).ravel() for v in obj.values()])
    elif hasattr(obj, "index") and hasattr(obj, "to_numpy"):  # DataFrame
        classes = list(obj.index)
        W = obj.to_numpy(dtype=float)
    else:
        W = np.asarray(obj, dtype=float)
    if W.ndim == 1:
        W = W[None, :]
    if W.ndim == 3:  # (n_classes, side, side) maps
        W = W.reshape(W.shape[0], -1)
    if W.ndim != 2:
        raise ValueError(
            f"weights must have shape (n_classes, n_bytes), got {np.shape(W)}"
        )
    if classes is None:
        classes = list(range(W.shape[0]))
    classes = np.asarray(classes)
    if len(classes) != W.shape[0]:
        raise ValueError(f"{W.shape[0]} rows of weights for {len(classes)} classes")
    if class_names is None:
        names = [str(c) for c in classes]
    else:
        _, _, names = _labels(classes, class_names)
        # _labels sorts; restore the order of the rows
        order = np.argsort(np.argsort(classes, kind="stable"), kind="stable")
        names = [names[i] for i in order]
    if not np.isfinite(W).all():
        raise ValueError("weights contain NaN or infinite values")
    return classes, names, W


def _field_track(ax, categories, start, stop, height=0.05):
    """Colour the bottom strip of ``ax`` by the field category of each position."""
    trans = ax.get_xaxis_transform()
    used = []
    for first, end, cat in _runs(categories, start, stop):
        used.append(cat)
        ax.add_patch(
            pyplot().Rectangle(
                (first - 0.5, 0),
                end - first,
                height,
                transform=trans,
                facecolor=FIELD_CATEGORIES[cat],
                edgecolor="none",
                zorder=0.5,
            )
        )
    return [c for c in FIELD_CATEGORIES if c in used]


def _category_handles(categories):
    plt = pyplot()
    return [
        plt.Rectangle((0, 0), 1, 1, facecolor=FIELD_CATEGORIES[c], label=c)
        for c in categories
    ]


def _field_name_labels(fields, categories, min_gap):
    """(position, name) of the field runs to name, at least ``min_gap`` apart.

    Runs of the leaky kinds (timestamps, addresses, ports) are placed first,
    then the others, longest first; padding and mixed runs are not named.
    Adjacent runs of one leaky kind are named together (``"ip.src/ip.dst"``).
    """
    leaky = set(_LEAKY)
    runs = []
    for first, end, name in _runs(fields):
        if name in ("pad", "padding", "mixed"):
            continue
        if (
            runs
            and runs[-1][1] == first
            and categories[first] in leaky
            and categories[first] == categories[runs[-1][0]]
        ):
            # Adjacent fields of one leaky kind (ip.src, ip.dst) share a label.
            runs[-1] = (runs[-1][0], end, f"{runs[-1][2]}/{name}")
        else:
            runs.append((first, end, str(name)))

    def priority(run):
        first, end, _ = run
        return (categories[first] not in leaky, -(end - first), first)

    placed = []
    for first, end, name in sorted(runs, key=priority):
        centre = (first + end - 1) / 2
        if all(abs(centre - p) >= min_gap for p, _ in placed):
            placed.append((centre, str(name)))
    return sorted(placed)


def _field_names_on_top(ax, fields, categories):
    """Name the protocol field of the byte positions along the top axis."""
    n_bytes = len(fields)
    # About one label per 8 points of axis width (x-small type, rotated).
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    min_gap = max(1.0, 8.0 * n_bytes / max(width_pt, 1.0))
    labels = _field_name_labels(fields, categories, min_gap)
    top = ax.secondary_xaxis("top")
    top.set_xticks([p for p, _ in labels], [name for _, name in labels])
    top.tick_params(axis="x", labelrotation=90, labelsize="x-small", length=2)
    top.set_xlabel("protocol field at the position in most sessions", fontsize="small")
    return top


def plot_attention_scatter(
    weights,
    *,
    class_names=None,
    byte_fields=None,
    colors=None,
    s=6,
    ax=None,
):
    """Scatter the per-class attention weight of every byte position (paper Fig. 7).

    Parameters
    ----------
    weights : array-like of shape (n_classes, n_bytes), mapping, or estimator
        One row of (standardised) attention weights per class, a mapping from
        class to weights, or a fitted ``AMAESpectrumEmbedder`` (or a Pipeline
        containing one): its ``attention_weights_`` are used.
    class_names : sequence or mapping, default=None
        As in :func:`plot_spectrum`.
    byte_fields : array-like of shape (n_bytes,) or (n_sessions, n_bytes)
        Field name behind each position (or a per-session byte map, reduced
        by :func:`majority_field_categories`), e.g.
        ``PcapSessionVectorizer.byte_map``.  Draws a strip under the points,
        coloured by the kind of field (timestamp, address, port, ...), and
        names the fields along the top axis (as many as fit; timestamps,
        addresses and ports first).
    colors : sequence of colors, default=None
        One per class.  Beyond ten classes each block of ten also gets its
        own marker, so no two classes look alike.
    s : float, default=6
        Marker size.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum.plotting import plot_attention_scatter
    >>> W = np.random.default_rng(0).normal(size=(2, 784))
    >>> ax = plot_attention_scatter(W, class_names=["chat", "voip"])
    >>> [float(x) for x in ax.get_xlim()]
    [-0.5, 783.5]
    """
    classes, names, W = _weights(weights, class_names)
    n_bytes = W.shape[1]
    fields, categories = _byte_fields(byte_fields, n_bytes)
    colors = _colors(len(classes), colors)
    ax = get_ax(ax, (11, 5.6 if fields is not None else 5))
    pos = np.arange(n_bytes)
    for row, name, color, marker in zip(W, names, colors, _markers(len(classes))):
        ax.scatter(
            pos,
            row,
            s=s,
            color=color,
            marker=marker,
            label=name,
            alpha=0.7,
            linewidths=0,
        )
    ax.set_xlim(-0.5, n_bytes - 0.5)
    ax.set_xlabel("byte position in the session image")
    ax.set_ylabel("attention weight (standardised)")
    ax.set_title("Attention weight of each byte position, per class")
    handles, _ = ax.get_legend_handles_labels()
    if categories is not None:
        lo, hi = W.min(), W.max()
        span = hi - lo if hi > lo else 1.0
        ax.set_ylim(lo - 0.12 * span, hi + 0.05 * span)
        used = _field_track(ax, categories, 0, n_bytes)
        # One legend (layout engines make room for one): the classes, then
        # the colours of the field strip under a header entry.
        header = pyplot().Rectangle((0, 0), 1, 1, visible=False)
        header.set_label("bottom strip: field kind")
        handles += [header] + _category_handles(used)
        _field_names_on_top(ax, fields, categories)
    ax.legend(
        handles=handles,
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        markerscale=2,
    )
    return ax


def plot_byte_weights(
    weights,
    *,
    start=100,
    stop=164,
    classes=None,
    class_names=None,
    byte_fields=None,
    normalize=True,
    colors=None,
    fig=None,
):
    """Bar charts of the attention weights of a byte range, one panel per class.

    The paper's Figures 8 and 9 show positions 100-163, the range where the
    weights of the classes differ most.

    Parameters
    ----------
    weights : array-like of shape (n_classes, n_bytes), mapping, or estimator
        As in :func:`plot_attention_scatter`.
    start, stop : int, default=100, 164
        The byte positions ``start .. stop - 1``.
    classes : sequence, default=None
        The classes to draw (rows of ``weights`` by class label); all when None.
    class_names : sequence or mapping, default=None
    byte_fields : array-like of shape (n_bytes,) or (n_sessions, n_bytes)
        Field names; each panel's background is shaded by the kind of field
        (:func:`majority_field_categories`), and the field names most
        sessions share are written over the first panel.
    normalize : bool, default=True
        Min-max scale the shown weights to [0, 1], jointly over all shown
        classes (so the classes stay comparable, as in the paper).  The y
        axis of every panel shows the scale either way.
    colors : sequence of colors, default=None
    fig : matplotlib Figure, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    fig : matplotlib Figure
        One Axes per class, in ``fig.axes``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum.plotting import plot_byte_weights
    >>> W = np.random.default_rng(0).normal(size=(3, 784))
    >>> fig = plot_byte_weights(W, start=100, stop=132)
    >>> len(fig.axes)
    3
    """
    all_classes, names, W = _weights(weights, class_names)
    n_bytes = W.shape[1]
    start, stop = int(start), int(stop)
    if not 0 <= start < stop <= n_bytes:
        raise ValueError(
            f"need 0 <= start < stop <= {n_bytes}, got start={start}, stop={stop}"
        )
    fields, categories = _byte_fields(byte_fields, n_bytes)
    colors = _colors(len(all_classes), colors)
    rows = np.arange(len(all_classes))
    if classes is not None:
        lookup = {c: i for i, c in enumerate(all_classes.tolist())}
        missing = [c for c in classes if c not in lookup]
        if missing:
            raise ValueError(
                f"classes {missing} not in the weights' classes {list(lookup)}"
            )
        rows = np.array([lookup[c] for c in classes])
    shown = W[rows, start:stop]
    if normalize:
        lo, hi = shown.min(), shown.max()
        shown = (shown - lo) / (hi - lo) if hi > lo else np.zeros_like(shown)
    plt = pyplot()
    if fig is None:
        fig = plt.figure(figsize=(11, 1.3 * len(rows) + 1.2), layout="constrained")
    axes = fig.subplots(len(rows), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    pos = np.arange(start, stop)
    for ax, r, values in zip(axes, rows, shown):
        if categories is not None:
            for first, end, cat in _runs(categories, start, stop):
                ax.axvspan(
                    first - 0.5,
                    end - 0.5,
                    facecolor=FIELD_CATEGORIES[cat],
                    alpha=0.3,
                    linewidth=0,
                )
        ax.bar(pos, values, width=0.8, color=colors[r])
        ax.set_ylabel(names[r], rotation=0, ha="right", va="center", labelpad=6)
        ax.tick_params(axis="y", labelsize="x-small")
        ax.margins(x=0.005)
        ax.grid(axis="y", alpha=0.3)
    if normalize:
        axes[0].set_ylim(0, 1.05)
        axes[0].set_yticks([0, 0.5, 1])
    if fields is not None:
        top = axes[0]
        for first, end, name in _runs(fields, start, stop):
            if name in ("pad", "mixed") or end - first < 2:
                continue
            top.annotate(
                str(name),
                xy=((first + end - 1) / 2, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 3),
                textcoords="offset points",
                rotation=90,
                ha="center",
                va="bottom",
                fontsize="x-small",
            )
    step = max(1, (stop - start) // 16)
    axes[-1].set_xticks(pos[::step])
    axes[-1].set_xlabel("byte position in the session image")
    if categories is not None:
        used = [c for c in FIELD_CATEGORIES if c in set(categories[start:stop])]
        fig.legend(
            handles=_category_handles(used),
            loc="outside lower center",
            ncols=len(used),
            fontsize="small",
            title="background: kind of field at each position in most sessions",
            title_fontsize="small",
        )
    what = "min-max normalised" if normalize else "standardised"
    fig.supylabel(
        "attention weight (0-1 over the classes shown)"
        if normalize
        else "attention weight (standardised)",
        fontsize="small",
    )
    fig.suptitle(f"Attention weights of bytes {start}-{stop - 1} per class ({what})")
    return fig


def plot_weight_boxplot(weights, *, class_names=None, sort=True, colors=None, ax=None):
    """Box plots of each class's byte attention weights (paper Fig. 10).

    Parameters
    ----------
    weights : array-like of shape (n_classes, n_bytes), mapping, or estimator
        As in :func:`plot_attention_scatter`.
    class_names : sequence or mapping, default=None
    sort : bool, default=True
        Order the classes by median weight, largest first (as in the paper).
    colors : sequence of colors, default=None
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_flowspectrum.plotting import plot_weight_boxplot
    >>> W = np.array([np.arange(10.0), np.arange(10.0) + 5])
    >>> ax = plot_weight_boxplot(W, class_names=["low", "high"])
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['high', 'low']
    """
    classes, names, W = _weights(weights, class_names)
    colors = _colors(len(classes), colors)
    order = np.arange(len(classes))
    if sort:
        order = np.argsort(-np.median(W, axis=1), kind="stable")
    ax = get_ax(ax, (max(5, 0.8 * len(classes) + 2), 4.5))
    bp = ax.boxplot(
        [W[i] for i in order],
        patch_artist=True,
        flierprops={"marker": "o", "markersize": 2, "alpha": 0.5},
        medianprops={"color": "black"},
    )
    for patch, i in zip(bp["boxes"], order):
        patch.set_facecolor(colors[i])
        patch.set_alpha(0.6)
    ax.set_xticks(np.arange(1, len(order) + 1), [names[i] for i in order])
    if len(classes) > 6:
        for label in ax.get_xticklabels():
            label.set(rotation=40, ha="right", rotation_mode="anchor")
    ax.set_ylabel("attention weight (standardised)")
    title = "Attention weights of all byte positions per class"
    ax.set_title(title + (" (by median)" if sort else ""))
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_session_attributions(
    attributions, byte_fields, *, top=6, start=0, stop=None, title=None, ax=None
):
    """One session's per-byte attributions, coloured and named by protocol field.

    Parameters
    ----------
    attributions : array-like of shape (n_bytes,)
        One row of :func:`sklearn_flowspectrum.explain`.
    byte_fields : array-like of shape (n_bytes,)
        The session's field name at each position (one row of
        :func:`sklearn_flowspectrum.explanation_byte_map`).
    top : int, default=6
        Name the ``top`` fields with the largest absolute attribution (summed
        over all their bytes, in every packet) over each stretch of their
        bytes.
    start, stop : int, default=0, None
        The byte positions drawn; ``stop=None`` draws to the last position
        that is not padding.
    title : str, default=None
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> from sklearn_flowspectrum.plotting import plot_session_attributions
    >>> ax = plot_session_attributions(
    ...     [0.1, 0.3, -0.2, 0.0], ["ip.ttl", "ip.ttl", "tcp.window", "pad"], top=1
    ... )
    >>> [t.get_text() for t in ax.texts]
    ['ip.ttl']
    """
    attr = np.asarray(attributions, dtype=float).ravel()
    fields = np.asarray(byte_fields, dtype=object).ravel()
    if fields.shape != attr.shape:
        raise ValueError(
            f"byte_fields names {fields.size} positions, the attributions have "
            f"{attr.size}"
        )
    if stop is None:
        real = np.flatnonzero(fields != "pad")
        stop = int(real[-1]) + 1 if real.size else attr.size
    start, stop = int(start), int(stop)
    if not 0 <= start < stop <= attr.size:
        raise ValueError(
            f"need 0 <= start < stop <= {attr.size}, got start={start}, stop={stop}"
        )
    ax = get_ax(ax, (11, 3.2))
    categories = np.array([field_category(f) for f in fields], dtype=object)
    pos = np.arange(start, stop)
    colors = [FIELD_CATEGORIES[c] for c in categories[start:stop]]
    ax.bar(pos, attr[start:stop], width=0.9, color=colors)
    ax.axhline(0, color="black", linewidth=0.5)
    totals = {}
    for name, value in zip(fields.tolist(), np.abs(attr).tolist()):
        totals[name] = totals.get(name, 0.0) + value
    totals.pop("pad", None)
    named = sorted(totals, key=totals.get, reverse=True)[: max(int(top), 0)]
    for first, end, name in _runs(fields, start, stop):
        if name not in named:
            continue
        ax.annotate(
            str(name),
            xy=((first + end - 1) / 2, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 3),
            textcoords="offset points",
            rotation=90,
            ha="center",
            va="bottom",
            fontsize="x-small",
        )
    used = [c for c in FIELD_CATEGORIES if c in set(categories[start:stop])]
    ax.legend(
        handles=_category_handles(used), fontsize="x-small", ncols=min(len(used), 5)
    )
    ax.set_xlim(start - 0.5, stop - 0.5)
    ax.set_xlabel("byte position in the session image")
    ax.set_ylabel("attribution")
    if title is not None:
        ax.set_title(title)
    return ax
