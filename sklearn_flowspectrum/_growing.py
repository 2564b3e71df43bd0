# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause
"""numpy arrays that grow by doubling: the per-session state of the readers.

The session builders (:mod:`sklearn_flowspectrum._sessions`,
:mod:`sklearn_flowspectrum._streaming`) and the flow statistics
(:mod:`sklearn_flowspectrum._session_stats`) index them by session id and
call ``ensure`` before writing past the end.
"""

import numpy as np

__all__ = ["GrowingArray", "GrowingRows"]


class GrowingArray:
    """A 1-D numpy array that grows by doubling."""

    def __init__(self, dtype, fill=0):
        self.a = np.full(1024, fill, dtype=dtype)
        self.fill = fill

    def ensure(self, n):
        if n > len(self.a):
            new = np.full(max(n, 2 * len(self.a)), self.fill, dtype=self.a.dtype)
            new[: len(self.a)] = self.a
            self.a = new


class GrowingRows:
    """Rows of a 2-D numpy array that grow by doubling."""

    def __init__(self, width, dtype, fill):
        self.a = np.full((1024, width), fill, dtype=dtype)
        self.fill = fill

    def ensure(self, n):
        if n > len(self.a):
            new = np.full((max(n, 2 * len(self.a)), self.a.shape[1]), self.fill,
                          dtype=self.a.dtype)  # fmt: skip
            new[: len(self.a)] = self.a
            self.a = new
