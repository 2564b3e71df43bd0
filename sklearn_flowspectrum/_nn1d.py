# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""AMAE network with 1-D convolutions along the byte sequence.

A session image is a byte sequence folded into ``side`` rows, so the 3x3
convolutions of :class:`~sklearn_flowspectrum._nn.AMAEModule` mix each byte
with the bytes ``side`` positions before and after it, which belong to other
header fields.  :class:`AMAE1dModule` keeps everything else of that network
(attention, byte embeddings, mapper, heads, loss) and replaces the encoder
and decoder by convolutions along the unfolded sequence::

    M_w (+ embeddings) --flatten--> (C, side*side)
        --Conv1d(k)-PReLU-Conv1d(k)-PReLU-MaxPool1d(4)--> code (c2, side*side/4)
        --Upsample(4)-Conv1d(k)-PReLU-Conv1d(k)-Sigmoid--> reconstruction

The code has as many numbers as the 2-D network's (the sequence is zero
padded to the 2-D network's padded image, a multiple of 4), so the mapper
and its widths are unchanged.  Select it with
``AMAESpectrumEmbedder(module=AMAE1dModule)``; the paper-shaped network is
the default ``module=AMAEModule``.
"""

from torch import nn
from torch.nn import functional as F

from sklearn_flowspectrum._nn import AMAEModule

__all__ = ["AMAE1dModule"]

_POOL = 4  # 1-D pooling that keeps the code size of the 2-D MaxPool2d(2)


class AMAE1dModule(AMAEModule):
    """The AMAE network with 1-D convolutions along the byte sequence.

    Parameters
    ----------
    side : int, default=28
        Side of the square session image (``n_bytes = side**2``).
    n_classes : int, default=0
        Number of classes of the classification head; 0 builds no head.
    kernel_size : int, default=5
        Odd width (in bytes) of every 1-D convolution.
    **kwargs
        The other parameters of
        :class:`~sklearn_flowspectrum._nn.AMAEModule` (``attention``,
        ``channels``, ``mapper_hidden``, ``dropout``, ``head``, ``aux_head``,
        ``mapper``, ``byte_embedding``, ``fusion``), with the same meaning and
        defaults.

    See Also
    --------
    sklearn_flowspectrum.AMAEModule : The paper's 2-D network.
    """

    def __init__(self, side=28, n_classes=0, kernel_size=5, **kwargs):
        kernel_size = int(kernel_size)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be a positive odd int, got {kernel_size}"
            )
        super().__init__(side=side, n_classes=n_classes, **kwargs)
        self.kernel_size = kernel_size
        # The widths of the 2-D encoder the parent built from ``channels``.
        c1, c2 = self.encoder[0].out_channels, self.encoder[2].out_channels
        n_in = 1 + self.byte_embedding
        pad = kernel_size // 2
        padded = self.side + self._pad
        self._length = padded * padded
        self.code_shape = (c2, self._length // _POOL)
        self.encoder = nn.Sequential(
            nn.Conv1d(n_in, c1, kernel_size, padding=pad),
            nn.PReLU(c1),
            nn.Conv1d(c1, c2, kernel_size, padding=pad),
            nn.PReLU(c2),
            nn.MaxPool1d(_POOL),
        )
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=_POOL, mode="nearest"),
            nn.Conv1d(c2, c1, kernel_size, padding=pad),
            nn.PReLU(c1),
            nn.Conv1d(c1, 1, kernel_size, padding=pad),
            nn.Sigmoid(),
        )

    def _encode_weighted(self, weighted):
        seq = weighted.flatten(2)
        return self.encoder(F.pad(seq, (0, self._length - seq.shape[-1])))

    def decode(self, code):
        """Return the reconstruction ``(batch, 1, side, side)`` of a code."""
        n = self.side * self.side
        out = self.decoder(code)[:, :, :n]
        return out.reshape(-1, 1, self.side, self.side)
