# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""skorch callbacks of the embedder."""

import math

from skorch.callbacks import Callback

__all__ = ["WarmupCosine"]


class WarmupCosine(Callback):
    """Linear warm-up, then cosine decay to zero, over the batches of a fit.

    The length of the schedule is ``max_epochs`` times the number of
    training batches per epoch, counted from the training iterator once the
    validation split is made, so it is right for any ``train_split``.  The
    optimizer's rates are restored when training ends, so that a later
    ``partial_fit`` starts again from them.  The embedder adds it for
    ``lr_schedule="cosine"``.

    Parameters
    ----------
    warmup : float, default=0.05
        Fraction of the steps with a linearly rising rate.
    """

    def __init__(self, warmup=0.05):
        self.warmup = warmup

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.base_lrs_ = [group["lr"] for group in net.optimizer_.param_groups]
        self.total_steps_ = None
        self.step_ = 0

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        if self.total_steps_ is None:
            batches = len(net.get_iterator(dataset_train, training=True))
            self.total_steps_ = max(1, net.max_epochs * batches)

    def factor(self, step):
        """Return the multiplier of the base rates at optimizer step ``step``."""
        total = self.total_steps_
        t = min(step, total)
        warm = max(1, int(self.warmup * total))
        if t < warm:
            return (t + 1) / (warm + 1)
        progress = (t - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training or self.total_steps_ is None:
            return
        factor = self.factor(self.step_)
        for group, base in zip(net.optimizer_.param_groups, self.base_lrs_):
            group["lr"] = base * factor

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.step_ += 1

    def on_train_end(self, net, X=None, y=None, **kwargs):
        for group, base in zip(net.optimizer_.param_groups, self.base_lrs_):
            group["lr"] = base
