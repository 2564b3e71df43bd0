"""``python -m sklearn_flowspectrum``: the ``flowspectrum`` command line."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import sys

from sklearn_flowspectrum._cli import main

if __name__ == "__main__":
    sys.exit(main())
