"""Data sets: bundled ISCX VPN-nonVPN 2016 and capture samples, full-data loaders."""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

from sklearn_flowspectrum.datasets._iscx import (
    load_iscx_vpn2016,
    load_iscx_vpn2016_sample,
    load_sample_captures,
)

__all__ = ["load_iscx_vpn2016", "load_iscx_vpn2016_sample", "load_sample_captures"]
