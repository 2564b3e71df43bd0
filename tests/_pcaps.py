"""Build tiny frames and capture files for the tests (no dependency on dpkt).

Frames: :func:`tcp`/:func:`udp` inside :func:`ipv4`/:func:`ipv6` inside a
link layer (:func:`eth`, :func:`sll`, :func:`sll2`, :func:`null`).  Files:
:func:`write_pcap` (classic, either byte order, micro- or nanoseconds) and
:func:`write_pcapng` / :func:`pcapng_section` (sections, interfaces with their
own link type and timestamp resolution, enhanced/simple/obsolete packet
blocks, either byte order).
"""

import struct

A4, B4, C4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), bytes([192, 168, 1, 9])
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")
MAC_A, MAC_B = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"

TH_FIN, TH_SYN, TH_RST, TH_PUSH, TH_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def _checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


# -- transport ---------------------------------------------------------------


def tcp(
    sport=1234,
    dport=80,
    payload=b"",
    *,
    seq=1000,
    ack=0,
    flags=TH_ACK | TH_PUSH,
    options=b"",
    window=65535,
):
    """A TCP segment (checksum left 0)."""
    options += b"\x00" * (-len(options) % 4)
    off = (20 + len(options)) // 4
    hdr = struct.pack(
        "!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, window, 0, 0
    )
    return hdr + options + payload


def udp(sport=5353, dport=53, payload=b""):
    """A UDP datagram (checksum left 0)."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


# -- network -----------------------------------------------------------------


def ipv4(
    l4,
    src=A4,
    dst=B4,
    proto=6,
    *,
    ident=1,
    frag=0,
    ttl=64,
    total=None,
    options=b"",
):
    """An IPv4 packet around ``l4``; ``frag`` is the 16-bit flags+offset field."""
    ihl = (20 + len(options)) // 4
    if total is None:
        total = 20 + len(options) + len(l4)
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0, total, ident, frag, ttl, proto, 0, src, dst
    )
    hdr = hdr[:10] + struct.pack("!H", _checksum(hdr + options)) + hdr[12:]
    return hdr + options + l4


def ipv6(l4, src=A6, dst=B6, nxt=6, *, ext=(), plen=None):
    """An IPv6 packet; ``ext`` is a list of ``(header_type, body)`` extension
    headers (hop-by-hop 0, routing 43, destination options 60: body padded to
    a multiple of 8 with its first two bytes set here; fragment 44: body of
    6 bytes after next-header/reserved)."""
    chain = b""
    types = [t for t, _ in ext] + [nxt]
    for i, (t, body) in enumerate(ext):
        following = types[i + 1]
        if t == 44:
            chain += bytes([following, 0]) + body
        else:
            raw = body + b"\x00" * (-(len(body) + 2) % 8)
            chain += bytes([following, (len(raw) + 2) // 8 - 1]) + raw
    first = types[0]
    if plen is None:
        plen = len(chain) + len(l4)
    hdr = struct.pack("!IHBB16s16s", 6 << 28, plen, first, 64, src, dst)
    return hdr + chain + l4


# -- link layers ---------------------------------------------------------------


def eth(payload, ethertype=0x0800, *, src=MAC_A, dst=MAC_B, vlans=(), pad=True):
    """An Ethernet II frame; ``vlans``: list of (tpid, tci); padded to 60 bytes."""
    tags = b"".join(struct.pack("!HH", tpid, tci) for tpid, tci in vlans)
    frame = dst + src + tags + struct.pack("!H", ethertype) + payload
    if pad and len(frame) < 60:
        frame += b"\x00" * (60 - len(frame))
    return frame


def sll(payload, ethertype=0x0800):
    """A Linux cooked (SLL) frame."""
    return struct.pack("!HHH8sH", 0, 1, 6, MAC_A + b"\x00\x00", ethertype) + payload


def sll2(payload, ethertype=0x0800):
    """A Linux cooked v2 (SLL2) frame."""
    return struct.pack("!HHIHBB8s", ethertype, 0, 2, 1, 0, 6, MAC_A + b"\0\0") + payload


def null(payload, family=2, byteorder="little"):
    """A BSD loopback frame (DLT_NULL: host order; LOOP: big-endian)."""
    return family.to_bytes(4, byteorder) + payload


# -- files -------------------------------------------------------------------


def _records(packets):
    """Normalise packets to (ts_ns, frame, orig_len)."""
    out = []
    for i, p in enumerate(packets):
        if isinstance(p, (bytes, bytearray)):
            p = (1_600_000_000_000_000_000 + i * 1_000_000, bytes(p))
        ts, frame = p[0], bytes(p[1])
        orig = p[2] if len(p) > 2 else len(frame)
        out.append((ts, frame, orig))
    return out


def pcap_bytes(packets, *, linktype=1, endian="<", nanosecond=False, snaplen=65535):
    """Bytes of a classic pcap file; packets are frames or (ts_ns, frame[, orig])."""
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    unit = 1 if nanosecond else 1000
    for ts, frame, orig in _records(packets):
        sec, frac = divmod(ts, 1_000_000_000)
        out.append(struct.pack(endian + "IIII", sec, frac // unit, len(frame), orig))
        out.append(frame)
    return b"".join(out)


def write_pcap(path, packets, **kwargs):
    """Write a classic pcap file (see :func:`pcap_bytes`); return the path."""
    with open(path, "wb") as f:
        f.write(pcap_bytes(packets, **kwargs))
    return path


def _block(e, btype, body):
    body += b"\x00" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total)


def _option(e, code, value):
    return struct.pack(e + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def pcapng_section(interfaces, packets, *, endian="<", extra_blocks=True):
    """Bytes of one pcapng section.

    interfaces : list of ``(linktype, tsresol)`` or ``(linktype, tsresol,
        snaplen[, tsoffset_s])``; ``tsresol`` is the raw if_tsresol byte
        (6: microseconds, 9: nanoseconds, 0x80 | k: 2**-k s) or None for the
        default (microseconds, no option written).
    packets : list of ``(iface, ts_ns, frame)`` or ``(iface, ts_ns, frame,
        kind[, orig_len])`` with kind "epb" (default), "spb" or "pb".
    """
    e = endian
    out = [
        _block(
            e,
            0x0A0D0D0A,
            struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)
            + _option(e, 4, b"tests/_pcaps.py")
            + _option(e, 0, b""),
        )
    ]
    resols = []
    for itf in interfaces:
        linktype, tsresol = itf[0], itf[1]
        snaplen = itf[2] if len(itf) > 2 else 0
        opts = b""
        if tsresol is not None:
            opts += _option(e, 9, bytes([tsresol]))
        offset = itf[3] if len(itf) > 3 else 0
        if offset:
            opts += _option(e, 14, struct.pack(e + "q", offset))
        if opts:
            opts += _option(e, 0, b"")
        out.append(_block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts))
        resols.append((tsresol if tsresol is not None else 6, offset))
    if extra_blocks:
        # A name resolution block and a custom block: readers must skip them.
        out.append(_block(e, 4, struct.pack(e + "HH", 0, 0)))
        out.append(_block(e, 0x00000BAD, struct.pack(e + "I", 32473) + b"xyz"))
    for p in packets:
        iface, ts_ns, frame = p[0], p[1], bytes(p[2])
        kind = p[3] if len(p) > 3 else "epb"
        orig = p[4] if len(p) > 4 else len(frame)
        raw, offset = resols[iface]
        ts_ns -= offset * 1_000_000_000
        # Nearest unit, so that a time the reader produced is written back exactly.
        if raw & 0x80:
            units = ((ts_ns << (raw & 0x7F)) + 500_000_000) // 1_000_000_000
        else:
            units = (ts_ns * 10**raw + 500_000_000) // 1_000_000_000
        hi, lo = units >> 32, units & 0xFFFFFFFF
        if kind == "epb":
            body = struct.pack(e + "IIIII", iface, hi, lo, len(frame), orig) + frame
            out.append(_block(e, 6, body))
        elif kind == "pb":
            body = struct.pack(e + "HHIIII", iface, 0, hi, lo, len(frame), orig) + frame
            out.append(_block(e, 2, body))
        elif kind == "spb":
            out.append(_block(e, 3, struct.pack(e + "I", orig) + frame))
        else:
            raise ValueError(kind)
    if extra_blocks and interfaces:
        # An interface statistics block after the packets.
        out.append(_block(e, 5, struct.pack(e + "III", 0, 0, 0)))
    return b"".join(out)


def write_pcapng(path, interfaces, packets, *, endian="<"):
    """Write a one-section pcapng file (see :func:`pcapng_section`)."""
    with open(path, "wb") as f:
        f.write(pcapng_section(interfaces, packets, endian=endian))
    return path


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


# -- ready-made traffic ------------------------------------------------------------


def tcp_conversation(
    a=A4, b=B4, sport=40000, dport=443, requests=(b"hello",), replies=(b"world",)
):
    """IPv4 packets (no link layer) of a TCP exchange: handshake, data both
    ways, FIN.  Returns a list of IP packets in capture order."""
    ca, cb = 1000, 5000
    pk = [
        ipv4(tcp(sport, dport, seq=ca, flags=TH_SYN), a, b),
        ipv4(tcp(dport, sport, seq=cb, ack=ca + 1, flags=TH_SYN | TH_ACK), b, a),
        ipv4(tcp(sport, dport, seq=ca + 1, ack=cb + 1, flags=TH_ACK), a, b),
    ]
    ca += 1
    cb += 1
    for q, r in zip(requests, replies):
        pk.append(ipv4(tcp(sport, dport, q, seq=ca, ack=cb), a, b))
        ca += len(q)
        pk.append(ipv4(tcp(dport, sport, r, seq=cb, ack=ca), b, a))
        cb += len(r)
    pk.append(ipv4(tcp(sport, dport, seq=ca, ack=cb, flags=TH_FIN | TH_ACK), a, b))
    return pk


# -- damaged pcapng --------------------------------------------------------------

# Every kind of pcapng block a reader meets: the section header (as the start of a
# second section), interface description, the obsolete packet block, simple packet,
# name resolution, interface statistics, enhanced packet, custom (copyable and not)
# and a type no reader knows.
PCAPNG_BLOCK_TYPES = {
    "shb": 0x0A0D0D0A,
    "idb": 1,
    "pb": 2,
    "spb": 3,
    "nrb": 4,
    "isb": 5,
    "epb": 6,
    "custom": 0x00000BAD,
    "custom_nocopy": 0x40000BAD,
    "unknown": 0x7FFF0001,
}
FUZZ_FILLS = ("zeros", "ones", "real")


def _real_body(kind, e="<"):
    """A well-formed body (without the length fields) of a block of ``kind``."""
    frame = eth(ipv4(udp(7, 53, b"fuzz"), proto=17))
    hi, lo = 0x5F5E1, 0x12345678
    bodies = {
        "shb": struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)
        + _option(e, 4, b"fuzz")
        + _option(e, 0, b""),
        "idb": struct.pack(e + "HHI", 1, 0, 0)
        + _option(e, 9, b"\x09")
        + _option(e, 14, struct.pack(e + "q", 3))
        + _option(e, 0, b""),
        "pb": struct.pack(e + "HHIIII", 0, 0, hi, lo, len(frame), len(frame)) + frame,
        "spb": struct.pack(e + "I", len(frame)) + frame,
        "nrb": struct.pack(e + "HH", 1, 9)
        + A4
        + b"host\0"
        + b"\0" * 3
        + struct.pack(e + "HH", 0, 0),
        "isb": struct.pack(e + "III", 0, hi, lo) + _option(e, 4, bytes(8)),
        "epb": struct.pack(e + "IIIII", 0, hi, lo, len(frame), len(frame)) + frame,
        "custom": struct.pack(e + "I", 32473) + b"custom data",
        "unknown": bytes(range(1, 41)),
    }
    bodies["custom_nocopy"] = bodies["custom"]
    return bodies[kind]


def pcapng_fuzz_file(kind, body_len, fill, *, endian="<"):
    """A pcapng file of two good sections with a damaged block between them.

    The block has the type of ``kind`` (a key of :data:`PCAPNG_BLOCK_TYPES`), a
    body of ``body_len`` bytes (the total length field says ``12 + body_len``,
    whether or not that is a multiple of 4) filled with zeros, 0xFF bytes or the
    start of a well-formed body of its type (``fill`` "zeros", "ones", "real").

    Returns ``(data, start, stop)``: the file's bytes and the damaged block's
    byte range.  Each good section holds one UDP packet.
    """
    e = endian
    if fill == "zeros":
        body = bytes(body_len)
    elif fill == "ones":
        body = b"\xff" * body_len
    else:
        body = (_real_body(kind, e) + bytes(body_len))[:body_len]
    frame = eth(ipv4(udp(5000, 53, b"good"), proto=17))
    good = pcapng_section(
        [(1, 6)], [(0, 1_600_000_000_000_000_000, frame)], endian=e, extra_blocks=False
    )
    total = 12 + body_len
    block = (
        struct.pack(e + "II", PCAPNG_BLOCK_TYPES[kind], total)
        + body
        + struct.pack(e + "I", total)
    )
    return good + block + good, len(good), len(good) + len(block)


def pcapng_fuzz_cases(max_body=40):
    """``(kind, body_len, fill)`` of every block kind, body length and fill."""
    return [
        (kind, n, fill)
        for kind in PCAPNG_BLOCK_TYPES
        for n in range(max_body + 1)
        for fill in FUZZ_FILLS
    ]
