"""Data sets: a bundled ISCX VPN-nonVPN 2016 sample and loaders for the full data."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

from sklearn_flowspectrum.datasets._iscx import (
    load_iscx_vpn2016,
    load_iscx_vpn2016_sample,
)

__all__ = ["load_iscx_vpn2016", "load_iscx_vpn2016_sample"]
