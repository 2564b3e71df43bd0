"""Sessions that are network housekeeping rather than the labelled application.

A capture of "Chat" traffic also holds the name lookups, address
configuration and service discovery of the capturing host.  Session-level
labels taken from the capture file call all of them "Chat".  On the ISCX
VPN-nonVPN training images these sessions are the majority (83% of the 12
classes' sessions are UDP name-service or discovery sessions; 42% alone are
LLMNR lookups of "wpad").  Scoring them measures how well a model recognises
the capturing host, not the application, so an honest report shows them
apart.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

from sklearn_flowspectrum.evaluation._splitters import table_column

__all__ = ["BACKGROUND_UDP_PORTS", "background_sessions"]

# UDP services that every host runs whatever application is being captured.
BACKGROUND_UDP_PORTS = {
    53: "DNS",
    67: "DHCP",
    68: "DHCP",
    123: "NTP",
    137: "NetBIOS name service",
    138: "NetBIOS datagram service",
    546: "DHCPv6",
    547: "DHCPv6",
    1900: "SSDP",
    3702: "WS-Discovery",
    5353: "mDNS",
    5355: "LLMNR",
}


def background_sessions(table, ports=None):
    """Which sessions are UDP name-service or discovery traffic.

    Parameters
    ----------
    table : DataFrame
        A session table with ``protocol``, ``src_port`` and ``dst_port``
        columns: the output of :func:`~sklearn_flowspectrum.read_sessions`,
        or :func:`ustc_session_table` of published USTC-TK2016 AllLayers rows.
    ports : iterable of int, default=None
        UDP ports that mark a background session when either side uses one.
        ``None`` uses the keys of :data:`BACKGROUND_UDP_PORTS` (DNS, DHCP,
        NTP, NetBIOS, DHCPv6, SSDP, WS-Discovery, mDNS, LLMNR).

    Returns
    -------
    background : ndarray of bool, shape (n_sessions,)
        True for UDP sessions with a background port on either side.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_flowspectrum.evaluation import background_sessions
    >>> t = pd.DataFrame({"protocol": ["UDP", "TCP", "UDP"],
    ...                   "src_port": [50000, 50001, 50002],
    ...                   "dst_port": [5355, 443, 3478]})
    >>> background_sessions(t).tolist()
    [True, False, False]
    """
    cols = {c: table_column(table, c) for c in ("protocol", "src_port", "dst_port")}
    missing = [c for c, v in cols.items() if v is None]
    if missing:
        raise ValueError(
            f"background_sessions: the session table lacks column(s) {missing}; "
            "use read_sessions() or ustc_session_table() to build one."
        )
    ports = np.fromiter(
        BACKGROUND_UDP_PORTS if ports is None else ports, dtype=np.int64
    )
    udp = cols["protocol"].astype(str) == "UDP"
    src, dst = (cols[c].astype(np.int64) for c in ("src_port", "dst_port"))
    return udp & (np.isin(src, ports) | np.isin(dst, ports))
