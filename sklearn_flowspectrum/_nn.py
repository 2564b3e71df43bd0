# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""PyTorch modules of the AMAE FlowSpectrum model (Cui et al. 2024, sec. 3.3).

The data flow of one session image ``x`` (``(batch, 1, side, side)``, bytes
scaled to [0, 1]) is::

    x --SingleChannelAttention--> M_c  (side, side)   the query  Q
    x --SpatialAttention-------> M_s  (side, side)   the key    K
    W_m = softmax(Q K^T / sqrt(d)) over all side*side positions
    M_w = side*side * W_m * x                         the weighted input
    M_w --encoder--> code --decoder--> reconstruction of x   (MSE)
                    code --mapper---> d(A), ONE real number  (the spectrum)
                                      d(A) --head--> class logits

The paper leaves several shapes and constants open; each choice is written
down in the docstring of the module that makes it.  The loss lives in
:class:`AMAELoss`.
"""

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "AMAELoss",
    "LOSS_WEIGHTS",
    "AMAEModule",
    "AttentionFusion",
    "FUSIONS",
    "GaussianHead",
    "SingleChannelAttention",
    "order_classes",
    "SpatialAttention",
]


class SingleChannelAttention(nn.Module):
    """Single-channel attention: the query matrix ``M_c`` of the fusion.

    A session image has one channel, so CBAM's per-channel pooling over the
    whole image would reduce it to two numbers.  We follow the paper's remark
    that each row of the image acts as a "feature detector": every row (28
    consecutive bytes of the session for the 28x28 image) is pooled over the
    width axis, giving an average and a maximum vector of length ``side``
    (paper Eq. 10, ``x_avg`` and ``x_max``).  One MLP with weights shared
    between the two statistics (CBAM's design; Fig. 4's "superposition of the
    results of two Dense layers") maps each vector to ``side * side`` values;
    the two outputs are summed and shaped to a ``(side, side)`` matrix: row
    ``i`` of ``M_c`` is the query of image row ``i`` and has ``d = side``
    entries.

    The output layer starts at zero, so an untrained model attends uniformly
    (the fusion then passes the input through unchanged) and training learns
    departures from the plain autoencoder.

    Parameters
    ----------
    side : int
        Side of the square image.
    hidden : int, default=None
        Width of the MLP's hidden layer; ``None`` uses ``side``.
    """

    def __init__(self, side, hidden=None):
        super().__init__()
        hidden = side if hidden is None else hidden
        self.side = side
        self.mlp = nn.Sequential(
            nn.Linear(side, hidden), nn.PReLU(hidden), nn.Linear(hidden, side * side)
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x):
        """Return ``M_c`` of shape ``(batch, side, side)`` for ``x`` (B,1,H,W)."""
        rows = x[:, 0]
        avg = rows.mean(dim=2)
        mx = rows.amax(dim=2)
        return (self.mlp(avg) + self.mlp(mx)).view(-1, self.side, self.side)


class SpatialAttention(nn.Module):
    """Spatial attention: the key matrix ``M_s`` of the fusion (paper Eq. 11-12).

    The channel-wise average and maximum of ``x`` are stacked into two maps
    (for a one-channel image both equal ``x``; the module is written for any
    channel count), mixed by a 1x1 convolution with one kernel (Table 1),
    passed through PReLU (Table 1: "PReLU throughout") and squashed to (0, 1)
    by a sigmoid (the text of sec. 3.3).  ``M_s`` keeps the image shape
    ``(side, side)``: row ``j`` is the key of image row ``j`` with ``d = side``
    entries.
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size=1)
        self.act = nn.PReLU(1)

    def forward(self, x):
        """Return ``M_s`` of shape ``(batch, side, side)`` for ``x`` (B,C,H,W)."""
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], 1)
        return torch.sigmoid(self.act(self.conv(stats)))[:, 0]


#: Fusion modes of :class:`AttentionFusion`.
FUSIONS = ("matmul", "elementwise")


class AttentionFusion(nn.Module):
    """Fuse the two attentions into byte weights and weight the input.

    ``W_m = softmax(M_c M_s^T / sqrt(d))`` (paper Eq. 13) with ``Q = M_c`` and
    ``K = M_s``, both ``(side, side)``, so ``d = side`` and ``Q K^T`` is one
    score per image position.  The paper calls ``W_m`` "the pixel weights of
    the 28x28 image, reflecting the importance of 784 bytes", so the softmax
    runs over all ``side * side`` positions of a session (not per row):
    ``W_m`` is a distribution over the session's bytes and sums to one.

    Why these weights are nearly constant along each image row: the score
    at position ``(i, j)`` is ``<Q_i, K_j>``, the match of the query of image
    row ``i`` with the key of image ROW ``j`` (``M_s`` has the image's
    shape, so its ``j``-th row holds the bytes of image row ``j``).  The
    byte at ``(i, j)`` enters only through ``K_i``, which sets column ``i``
    of every row; along row ``i`` the score moves only as far as the row
    keys differ in the direction of ``Q_i``, while ``Q_i`` itself (a dense
    layer on the image's row-pooled statistics) sets the level of the whole
    row.
    ``fusion="elementwise"`` (an option, not the paper) scores each
    position by its own query entry and its own key,
    ``W_m = softmax(M_c * M_s)`` over all positions, so that the weight of a
    byte depends on its value and its place, and can change where the
    protocol fields change inside a row.

    Parameters
    ----------
    side : int
        Side of the square image.
    fusion : {"matmul", "elementwise"}, default="matmul"
        ``"matmul"``: the paper's Eq. 13; ``"elementwise"``: see above.

    Eq. 14 applies it as ``M_w = W_m * x``.  A distribution over 784 bytes has
    mean 1/784, which would shrink the autoencoder's input 784-fold, so we
    rescale: ``M_w = (side * side) * W_m * x``.  Uniform attention is then the
    identity, and the attention re-distributes a fixed budget of emphasis over
    the bytes.
    """

    def __init__(self, side, fusion="matmul"):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.side = side
        self.fusion = fusion
        self.channel = SingleChannelAttention(side)
        self.spatial = SpatialAttention()

    def __setstate__(self, state):
        # Models saved before the fusion option existed fuse as the paper.
        state.setdefault("fusion", "matmul")
        super().__setstate__(state)

    def weights(self, x):
        """Return ``W_m`` of shape ``(batch, side, side)``; each sums to one."""
        q = self.channel(x)
        k = self.spatial(x)
        if self.fusion == "elementwise":
            scores = q * k
        else:
            scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(self.side)
        w = torch.softmax(scores.flatten(1).float(), dim=1)
        return w.view(-1, self.side, self.side)

    def forward(self, x):
        """Return ``(M_w, W_m)``."""
        w = self.weights(x)
        weighted = x * (w.unsqueeze(1) * (self.side * self.side)).to(x.dtype)
        return weighted, w


class GaussianHead(nn.Module):
    """Classification head on the one-dimensional spectrum value ``d(A)``.

    Class ``k`` is a Gaussian on the line with centre ``mu_k`` and width
    ``sigma_k``; its logit is the log of prior times density,
    ``b_k - (d - mu_k)^2 / (2 sigma_k^2) - log sigma_k``, so the softmax over
    classes is the Bayes posterior of a one-dimensional Gaussian class model:
    the same kind of decision that the FlowSpectrum classifier makes on the
    spectrum afterwards.  Centres start evenly spaced ``spacing`` apart and
    centred on zero, in label order, widths at ``spacing / 4``; all are learned.

    Parameters
    ----------
    n_classes : int
        Number of classes.
    spacing : float, default=1.0
        Initial distance between neighbouring class centres.
    """

    def __init__(self, n_classes, spacing=1.0):
        super().__init__()
        centres = torch.arange(n_classes, dtype=torch.float32) - (n_classes - 1) / 2
        self.centres = nn.Parameter(centres * spacing)
        self.log_sigma = nn.Parameter(torch.full((n_classes,), math.log(spacing / 4.0)))
        self.bias = nn.Parameter(torch.zeros(n_classes))

    def forward(self, d):
        """Return logits ``(batch, n_classes)`` for spectrum values ``d`` (batch,)."""
        z = (d.float().unsqueeze(1) - self.centres) * torch.exp(-self.log_sigma)
        return self.bias - 0.5 * z * z - self.log_sigma


class AMAEModule(nn.Module):
    """The AMAE network: attention, convolutional autoencoder, spectrum mapper.

    Encoder and decoder follow Table 1 of the paper: the encoder is
    Conv3x3(64) - PReLU - Conv3x3(32) - PReLU - MaxPool(2) (PReLU after every
    layer: "PReLU activation functions are employed in all neural layers"),
    the decoder mirrors it with Upsample(2) - Conv3x3(64) - PReLU -
    Conv3x3(1) - sigmoid.  Convolutions use padding 1, so a ``side x side``
    image gives a ``32 x side/2 x side/2`` code (odd sides are zero padded by
    one row and column before the encoder and cropped after the decoder).
    The decoder reconstructs the unweighted input ``x``, not ``M_w``: with
    ``M_w`` as target the attention could make reconstruction trivial.

    The mapper (the paper only says "mapped through a mapper") is an MLP on
    the flattened code (``code -> mapper_hidden...``, PReLU and dropout
    between layers), then either one linear output (``mapper="mlp"``) or
    the posterior-weighted position of the classes on the line
    (``mapper="softmax"``, the default); the spectrum is computed in float32
    even under mixed precision, because it is the model's product.

    Defaults beyond the paper, and the evidence for them (12-class ISCX
    session images, masked AllLayers (safe mask without ``dns.id``), inner
    validation split of 5,680
    sessions, one H100; ``benchmarks/accuracy_embedder.py``): at 20 epochs,
    1-D accuracy (FlowSpectrumClassifier on ``d(A)``) was 76.3% for the
    paper-shaped network (``mapper="mlp"``, ``byte_embedding=0``), 78.4%
    with the softmax mapper, 78.3% with byte embeddings and 80.7% with both;
    at 50 epochs and batch 1024 the wide mapper ``(1024, 256)`` gave 81.2%
    against 80.4% for ``(256, 64)``.  ``mapper="mlp", byte_embedding=0,
    mapper_hidden=(256, 64)`` rebuilds the paper-shaped network.

    Without labels (``n_classes=0``) there is nothing for the mapper to learn:
    the spectrum is then the projection of the code onto its first principal
    axis, stored in buffers by :meth:`set_projection` after training.

    Parameters
    ----------
    side : int, default=28
        Side of the square session image (``n_bytes = side**2``).
    n_classes : int, default=0
        Number of classes of the classification head; 0 builds no head.
    attention : bool, default=True
        ``False`` builds the paper's "AE" baseline (no attention module).
    channels : tuple of two int, default=(64, 32)
        Output channels of the two encoder convolutions (Table 1).
    mapper_hidden : tuple of int, default=(1024, 256)
        Hidden layer widths of the mapper.
    dropout : float, default=0.1
        Dropout before each hidden mapper layer.
    head : {"gaussian", "linear"}, default="gaussian"
        ``"linear"`` is the plain ``Linear(1, n_classes)`` head on ``d(A)``.
    aux_head : bool, default=True
        With ``mapper="mlp"``: also classify from the first hidden mapper
        layer (deep supervision; its loss weight is :class:`AMAELoss`'s
        ``aux_weight``), which trains the encoder towards discriminative
        codes even while the one-dimensional squeeze is still poor.  With
        ``mapper="softmax"`` the per-class logits always exist and this
        parameter is ignored.
    mapper : {"auto", "softmax", "mlp"}, default="auto"
        How the last hidden mapper layer becomes ``d(A)``.  ``"mlp"``: a
        linear layer to one number.  ``"softmax"`` (needs labels and the
        Gaussian head): a linear layer to one logit per class, and
        ``d(A) = sum_k softmax(logits)_k * mu_k``, the posterior-weighted
        position of the classes on the line (``mu_k`` are the Gaussian head's
        centres).  A confident session lands on its class's place; a session
        between two classes lands between their places.  The paper's "the
        spectrum output is obtained through the softmax function" admits
        this reading.  The per-class logits are then the auxiliary head's
        output, trained with ``aux_weight``.  ``"auto"``: ``"softmax"`` with
        the Gaussian head, ``"mlp"`` with the linear head or without labels.
    byte_embedding : int, default=8
        If positive, each byte value (``round(255 x)``) also gets a learned
        vector of this length, stacked as extra channels beside ``M_w`` and
        weighted by the same attention (``side**2 * W_m``).  Bytes are
        categories (protocol numbers, flags, characters) more than
        intensities; a 3x3 convolution on intensities separates values only
        by thresholds.  0 keeps the paper's one-channel input.
    fusion : {"matmul", "elementwise"}, default="matmul"
        How the two attentions become ``W_m`` (:class:`AttentionFusion`):
        the paper's ``softmax(M_c M_s^T / sqrt(d))``, or
        ``softmax(M_c * M_s)``, which lets the weights vary inside an image
        row.
    temperature : float, default=1.0
        With ``mapper="softmax"``: ``d(A) = sum_k softmax(logits / T)_k
        mu_k``.  Below 1, sessions sit closer to their class's place on the
        line.  On an inner split of the ISCX training data (300 sessions
        per class, AllLayers safe mask) 0.5 and 0.25 changed the spectrum's
        accuracy by less than 0.5 points, so the default leaves the
        posterior as it is.
    """

    def __init__(
        self,
        side=28,
        n_classes=0,
        attention=True,
        channels=(64, 32),
        mapper_hidden=(1024, 256),
        dropout=0.1,
        head="gaussian",
        aux_head=True,
        mapper="auto",
        byte_embedding=8,
        fusion="matmul",
        temperature=1.0,
    ):
        super().__init__()
        self.side = int(side)
        self.n_classes = int(n_classes)
        self.attention = bool(attention)
        self.head_kind = head
        self.temperature = float(temperature)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.fusion = AttentionFusion(self.side, fusion) if self.attention else None
        self.byte_embedding = int(byte_embedding)
        self.embedding = (
            nn.Embedding(256, self.byte_embedding) if self.byte_embedding else None
        )
        self.encoder, self.decoder, self.code_shape = self._build_autoencoder(
            1 + self.byte_embedding, tuple(channels)
        )
        code_dim = math.prod(self.code_shape)
        layers = []
        width = code_dim
        for h in mapper_hidden:
            layers += [nn.Dropout(dropout), nn.Linear(width, h), nn.PReLU(h)]
            width = h
        self.mapper = nn.Sequential(*layers)
        if mapper not in ("auto", "mlp", "softmax"):
            raise ValueError(
                f"mapper must be 'auto', 'mlp' or 'softmax', got {mapper!r}"
            )
        if mapper == "auto":
            mapper = "softmax" if head == "gaussian" else "mlp"
        self.mapper_kind = mapper if self.n_classes > 0 else "mlp"
        self.mapper_out = nn.Linear(width, 1) if self.mapper_kind == "mlp" else None

        if self.n_classes > 0:
            if head == "gaussian":
                self.head = GaussianHead(self.n_classes)
            elif head == "linear":
                self.head = nn.Linear(1, self.n_classes)
            else:
                raise ValueError(f"head must be 'gaussian' or 'linear', got {head!r}")
            if mapper == "softmax":
                if head != "gaussian":
                    raise ValueError(
                        "mapper='softmax' needs head='gaussian' (its class "
                        "centres); use mapper='mlp' with head='linear'"
                    )
                self.aux = nn.Linear(width, self.n_classes)
            else:
                aux_width = mapper_hidden[0] if mapper_hidden else code_dim
                self.aux = nn.Linear(aux_width, self.n_classes) if aux_head else None
        else:
            self.head = None
            self.aux = None
        self.register_buffer("proj_mean", torch.zeros(code_dim))
        self.register_buffer("proj_axis", torch.zeros(code_dim))
        self.register_buffer("use_projection", torch.tensor(self.n_classes == 0))

    def __setstate__(self, state):
        # Models saved before the temperature option existed use T = 1.
        state.setdefault("temperature", 1.0)
        super().__setstate__(state)

    def _build_autoencoder(self, n_in, channels):
        """Return ``(encoder, decoder, code_shape)`` for ``n_in`` input channels.

        Table 1's network; :class:`~sklearn_flowspectrum.AMAE1dModule`
        overrides this hook and keeps everything else.
        """
        c1, c2 = channels
        padded = self.side + self.side % 2
        self._pad = padded - self.side
        half = padded // 2
        encoder = nn.Sequential(
            nn.Conv2d(n_in, c1, 3, padding=1),
            nn.PReLU(c1),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.PReLU(c2),
            nn.MaxPool2d(2),
        )
        decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(c2, c1, 3, padding=1),
            nn.PReLU(c1),
            nn.Conv2d(c1, 1, 3, padding=1),
            nn.Sigmoid(),
        )
        return encoder, decoder, (c2, half, half)

    @torch.no_grad()
    def place_classes(self, order):
        """Move the class centres so that ``order`` runs left to right.

        The centres keep their set of positions on the line; class
        ``order[i]`` takes the ``i``-th smallest.  With ``mapper="softmax"``
        this moves every session's ``d(A)`` with its class's place.

        Parameters
        ----------
        order : sequence of int
            A permutation of ``range(n_classes)``.
        """
        order = torch.as_tensor(list(order), dtype=torch.long)
        if self.head_kind != "gaussian" or sorted(order.tolist()) != list(
            range(self.n_classes)
        ):
            raise ValueError(
                "place_classes needs the Gaussian head and a permutation of "
                f"range({self.n_classes}), got {order.tolist()}"
            )
        centres = self.head.centres
        positions = torch.sort(centres).values
        centres[order.to(centres.device)] = positions

    # -- pieces -----------------------------------------------------------
    def byte_vectors(self, x):
        """Return the byte embeddings ``(batch, side, side, byte_embedding)``."""
        idx = (x[:, 0] * 255.0).round().clamp(0, 255).long()
        return self.embedding(idx)

    def weigh(self, x, vectors=None):
        """Return the encoder input and ``W_m`` (None without attention).

        The encoder input is ``M_w`` (one channel), followed by the weighted
        byte embeddings when ``byte_embedding > 0``.  ``vectors`` replaces
        the embeddings of ``x``'s bytes (:meth:`byte_vectors`), so that
        gradients can follow a path between embeddings (integrated
        gradients, :func:`sklearn_flowspectrum.explain`).
        """
        if self.fusion is None:
            weighted, w = x, None
        else:
            weighted, w = self.fusion(x)
        if self.embedding is None:
            return weighted, w
        if vectors is None:
            vectors = self.byte_vectors(x)
        emb = vectors.permute(0, 3, 1, 2).to(weighted.dtype)
        if w is not None:
            emb = emb * (w.unsqueeze(1) * (self.side * self.side)).to(emb.dtype)
        return torch.cat([weighted, emb], dim=1), w

    def encode(self, x):
        """Return the code ``(batch, *code_shape)`` of images ``x`` (B,1,H,W)."""
        weighted, _ = self.weigh(x)
        return self.encode_weighted(weighted)

    def encode_weighted(self, weighted):
        """Return the code of an encoder input (the output of :meth:`weigh`)."""
        if self._pad:
            weighted = F.pad(weighted, (0, self._pad, 0, self._pad))
        return self.encoder(weighted)

    def decode(self, code):
        """Return the reconstruction ``(batch, 1, side, side)`` of a code."""
        out = self.decoder(code)
        if self._pad:
            out = out[:, :, : self.side, : self.side]
        return out

    def map_code(self, code):
        """Return ``(d(A), class logits of the mapper or None)`` of a code."""
        flat = code.flatten(1)
        if bool(self.use_projection):
            return (flat.float() - self.proj_mean) @ self.proj_axis, None
        hidden = flat
        first = None
        for layer in self.mapper:
            hidden = layer(hidden)
            if first is None and isinstance(layer, nn.PReLU):
                first = hidden
        if self.mapper_kind == "softmax":
            logits = self.aux(hidden)
            with torch.autocast(device_type=hidden.device.type, enabled=False):
                posterior = torch.softmax(logits.float() / self.temperature, dim=1)
                d = posterior @ self.head.centres
            return d, logits
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            d = self.mapper_out(hidden.float())[:, 0]
        if self.aux is None:
            return d, None
        return d, self.aux(flat if first is None else first)

    def spectrum(self, x):
        """Return the spectrum values ``d(A)`` (batch,) of images ``x``."""
        return self.map_code(self.encode(x))[0]

    @torch.no_grad()
    def set_projection(self, mean, axis):
        """Use ``(code - mean) @ axis`` as the spectrum (unsupervised models)."""
        self.proj_mean.copy_(mean)
        self.proj_axis.copy_(axis)
        self.use_projection.fill_(True)

    def forward(self, x):
        """Run the whole network.

        Returns
        -------
        spectrum : Tensor (batch,)
            ``d(A)``.
        logits : Tensor (batch, n_classes) or None
            Head output on ``d(A)``.
        reconstruction : Tensor (batch, 1, side, side)
            Decoder output.
        weights : Tensor (batch, side, side) or None
            ``W_m`` (sums to one per session); None without attention.
        aux_logits : Tensor (batch, n_classes) or None
            Auxiliary head output.
        """
        weighted, w = self.weigh(x)
        code = self.encode_weighted(weighted)
        recon = self.decode(code)
        d, aux = self.map_code(code)
        logits = None
        if self.head is not None:
            logits = self.head(d.unsqueeze(1) if self.head_kind == "linear" else d)
        return d, logits, recon, w, aux


def order_classes(posteriors):
    """Order classes so that the ones the network confuses are neighbours.

    Spectral seriation: with ``P`` the ``(n_sessions, n_classes)`` class
    posteriors of the training sessions, ``S = P^T P / n`` says how much
    probability two classes share across sessions; the order of the entries
    of the Fiedler vector of the graph Laplacian of ``S`` (its eigenvector of
    the second smallest eigenvalue) places strongly linked classes side by
    side.  On a line every class has at most two neighbours, so this matters
    for the softmax mapper: a session torn between two classes lands between
    their places, and with the label order that spot belongs to an unrelated
    class.

    Parameters
    ----------
    posteriors : array-like of shape (n_sessions, n_classes)

    Returns
    -------
    order : ndarray of shape (n_classes,)
        A permutation of ``range(n_classes)``, left to right; class 0 is in
        the left half (the eigenvector's sign is arbitrary).
    """
    P = np.asarray(posteriors, dtype=np.float64)
    k = P.shape[1]
    if k < 3:
        return np.arange(k)
    S = P.T @ P / max(1, len(P))
    laplacian = np.diag(S.sum(axis=1)) - S
    _, vectors = np.linalg.eigh(laplacian)
    order = np.argsort(vectors[:, 1], kind="stable")
    if np.flatnonzero(order == 0)[0] > (k - 1) / 2:
        order = order[::-1].copy()
    return order


#: Loss weights ``(classification, aux)`` that ``"auto"`` gives per mapper.
LOSS_WEIGHTS = {"softmax": (0.0, 1.0), "mlp": (1.0, 0.5)}


class AMAELoss(nn.Module):
    """Loss of the AMAE model: reconstruction plus classification.

    ``reconstruction_weight * MSE(reconstruction, x)`` always;
    with labels also ``classification_weight * CE(head logits, y)`` and
    ``aux_weight * CE(aux logits, y)``.  The paper trains the autoencoder with
    MSE and the spectrum head with softmax cross-entropy but gives no
    weights.  Reconstruction errors of byte images are small (MSE ~ 0.01 to
    0.05) next to a cross-entropy of ~2.5 at the start, so classification
    dominates, which is what the spectrum needs; the reconstruction term
    keeps the code a faithful summary of the session.

    ``"auto"`` weights depend on the module's mapper (:data:`LOSS_WEIGHTS`;
    the embedder calls :meth:`set_mapper`).  With ``mapper="softmax"`` the
    spectrum is the posterior-weighted place of the classes, so the
    cross-entropy of the per-class logits (``aux``) trains it, and the
    Gaussian head's cross-entropy is left out: on the spectrum that head
    rewards squeezing sessions towards the centres, which fought the
    posterior (on an inner ISCX split, 300 sessions per class, AllLayers
    safe mask, 1-D network without attention: spectrum accuracy 80.0% with
    weights 1 and 0.5, 84.0% with 0 and 1).  With ``mapper="mlp"`` the
    head on ``d(A)`` is what makes the spectrum separate classes: weights 1
    and 0.5.

    Parameters
    ----------
    reconstruction_weight : float, default=1.0
    classification_weight : float or "auto", default="auto"
    aux_weight : float or "auto", default="auto"
    label_smoothing : float, default=0.0
        Passed to :func:`torch.nn.functional.cross_entropy`.

    Attributes
    ----------
    classification_weight_, aux_weight_ : float
        The weights in use, set by :meth:`set_mapper`.
    """

    def __init__(
        self,
        reconstruction_weight=1.0,
        classification_weight="auto",
        aux_weight="auto",
        label_smoothing=0.0,
    ):
        super().__init__()
        self.reconstruction_weight = reconstruction_weight
        self.classification_weight = classification_weight
        self.aux_weight = aux_weight
        self.label_smoothing = label_smoothing
        if "auto" not in (classification_weight, aux_weight):
            self.classification_weight_ = float(classification_weight)
            self.aux_weight_ = float(aux_weight)

    def __setstate__(self, state):
        # Losses saved before "auto" existed hold numbers only.
        super().__setstate__(state)
        if "classification_weight_" not in self.__dict__:
            if "auto" not in (self.classification_weight, self.aux_weight):
                self.classification_weight_ = float(self.classification_weight)
                self.aux_weight_ = float(self.aux_weight)

    def set_mapper(self, mapper):
        """Resolve ``"auto"`` weights for a module's ``mapper_kind``.

        Parameters
        ----------
        mapper : {"softmax", "mlp"}

        Returns
        -------
        self : AMAELoss
        """
        if mapper not in LOSS_WEIGHTS:
            raise ValueError(
                f"mapper must be one of {sorted(LOSS_WEIGHTS)}, got {mapper!r}"
            )
        auto_cw, auto_aux = LOSS_WEIGHTS[mapper]
        cw, aux = self.classification_weight, self.aux_weight
        self.classification_weight_ = auto_cw if cw == "auto" else float(cw)
        self.aux_weight_ = auto_aux if aux == "auto" else float(aux)
        return self

    def forward(self, outputs, x, y=None):
        """Return the scalar loss for module ``outputs``, images ``x``, labels ``y``."""
        _, logits, recon, _, aux = outputs
        loss = self.reconstruction_weight * F.mse_loss(recon.float(), x.float())
        if y is not None and logits is not None:
            if "classification_weight_" not in self.__dict__:
                raise RuntimeError(
                    "AMAELoss has 'auto' weights: call set_mapper(module."
                    "mapper_kind) before training"
                )
            if self.classification_weight_:
                loss = loss + self.classification_weight_ * F.cross_entropy(
                    logits.float(), y, label_smoothing=self.label_smoothing
                )
            if aux is not None and self.aux_weight_:
                loss = loss + self.aux_weight_ * F.cross_entropy(
                    aux.float(), y, label_smoothing=self.label_smoothing
                )
        return loss
