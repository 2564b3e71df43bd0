"""The protocol registry (``_protocols.FIELDS``) and the tables derived from it.

The ``OLD_*`` values were printed from the package before these tables were
derived from the registry (commit b88c91e); the derived tables must equal
them, value and type.
"""

import numpy as np

from sklearn_flowspectrum import _layers, _layouts, plotting
from sklearn_flowspectrum._layers import dissect
from sklearn_flowspectrum._protocols import (
    AUDIT_SETS,
    FIELD_BY_NAME,
    FIELD_GROUPS,
    FIELDS,
    MASK_GROUP_NAMES,
    header_fields,
)
from sklearn_flowspectrum.evaluation import _audit
from tests.test_layouts import CASES

OLD_FIELD_GROUPS = {
    "timestamps": ("pcap.ts_sec", "pcap.ts_usec", "tcp.opt.timestamp"),
    "addresses": (
        "eth.dst",
        "eth.src",
        "sll.addr",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
    ),
    "ports": ("tcp.sport", "tcp.dport", "udp.sport", "udp.dport"),
    "ip_id": ("ip.id", "ipv6.vtcfl"),
    "checksums": ("ip.checksum", "tcp.checksum", "udp.checksum"),
    "dns_id": ("dns.id",),
}

OLD_FIELD_NAMES = frozenset(
    {
        "dns.id",
        "eth.dst",
        "eth.src",
        "eth.type",
        "ip.checksum",
        "ip.dst",
        "ip.frag",
        "ip.id",
        "ip.len",
        "ip.options",
        "ip.proto",
        "ip.src",
        "ip.tos",
        "ip.ttl",
        "ip.vhl",
        "ipv6.dst",
        "ipv6.ext",
        "ipv6.hlim",
        "ipv6.nxt",
        "ipv6.plen",
        "ipv6.src",
        "ipv6.vtcfl",
        "mpls.label",
        "null.family",
        "payload",
        "pcap.incl_len",
        "pcap.linktype",
        "pcap.magic",
        "pcap.orig_len",
        "pcap.sigfigs",
        "pcap.snaplen",
        "pcap.thiszone",
        "pcap.ts_sec",
        "pcap.ts_usec",
        "pcap.version",
        "pppoe.header",
        "sll.addr",
        "sll.header",
        "tcp.ack",
        "tcp.checksum",
        "tcp.dport",
        "tcp.offflags",
        "tcp.opt.timestamp",
        "tcp.options",
        "tcp.seq",
        "tcp.sport",
        "tcp.urp",
        "tcp.window",
        "udp.checksum",
        "udp.dport",
        "udp.len",
        "udp.sport",
        "vlan.tag",
    }
)

OLD_SAFE_FIELDS = frozenset(
    {
        "dns.id",
        "eth.dst",
        "eth.src",
        "ip.checksum",
        "ip.dst",
        "ip.id",
        "ip.src",
        "ipv6.dst",
        "ipv6.src",
        "ipv6.vtcfl",
        "pcap.ts_sec",
        "pcap.ts_usec",
        "sll.addr",
        "tcp.checksum",
        "tcp.dport",
        "tcp.opt.timestamp",
        "tcp.sport",
        "udp.checksum",
        "udp.dport",
        "udp.sport",
    }
)

OLD_FIELD_CATEGORIES = {
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

OLD_LEAKY = {
    "timestamp": ("pcap.ts_sec", "pcap.ts_usec", "tcp.opt.timestamp"),
    "address": (
        "eth.dst",
        "eth.src",
        "sll.addr",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
    ),
    "port": ("tcp.sport", "tcp.dport", "udp.sport", "udp.dport"),
}

OLD_CATEGORY_OF = {
    "": "padding",
    "dns.foo": "mixed",
    "dns.id": "mixed",
    "eth.dst": "address",
    "eth.src": "address",
    "eth.type": "link layer",
    "eth.x": "link layer",
    "foo": "mixed",
    "foo.bar": "mixed",
    "ip.checksum": "IP header",
    "ip.dst": "address",
    "ip.frag": "IP header",
    "ip.id": "IP header",
    "ip.len": "IP header",
    "ip.options": "IP header",
    "ip.proto": "IP header",
    "ip.src": "address",
    "ip.tos": "IP header",
    "ip.ttl": "IP header",
    "ip.vhl": "IP header",
    "ipv6.dst": "address",
    "ipv6.ext": "IP header",
    "ipv6.hlim": "IP header",
    "ipv6.nxt": "IP header",
    "ipv6.plen": "IP header",
    "ipv6.src": "address",
    "ipv6.vtcfl": "IP header",
    "ipv6.x": "IP header",
    "mixed": "mixed",
    "mpls.label": "link layer",
    "null.family": "link layer",
    "other": "mixed",
    "pad": "padding",
    "padding": "padding",
    "payload": "payload",
    "pcap.incl_len": "pcap header",
    "pcap.linktype": "pcap header",
    "pcap.magic": "pcap header",
    "pcap.orig_len": "pcap header",
    "pcap.sigfigs": "pcap header",
    "pcap.snaplen": "pcap header",
    "pcap.thiszone": "pcap header",
    "pcap.ts_sec": "timestamp",
    "pcap.ts_usec": "timestamp",
    "pcap.version": "pcap header",
    "pcap.x": "pcap header",
    "pppoe.header": "link layer",
    "sll.addr": "address",
    "sll.header": "link layer",
    "tcp.ack": "transport header",
    "tcp.checksum": "transport header",
    "tcp.dport": "port",
    "tcp.offflags": "transport header",
    "tcp.opt.timestamp": "timestamp",
    "tcp.options": "transport header",
    "tcp.seq": "transport header",
    "tcp.sport": "port",
    "tcp.urp": "transport header",
    "tcp.window": "transport header",
    "tcp.x": "transport header",
    "trailer": "payload",
    "udp.checksum": "transport header",
    "udp.dport": "port",
    "udp.len": "transport header",
    "udp.sport": "port",
    "udp.x": "transport header",
    "vlan.tag": "link layer",
    "vlan.x": "link layer",
}

OLD_LAYER_OF = {
    "": "",
    "dns.foo": "payload",
    "dns.id": "payload",
    "eth.dst": "link",
    "eth.src": "link",
    "eth.type": "link",
    "eth.x": "link",
    "foo": "foo",
    "foo.bar": "foo",
    "ip.checksum": "ip",
    "ip.dst": "ip",
    "ip.frag": "ip",
    "ip.id": "ip",
    "ip.len": "ip",
    "ip.options": "ip",
    "ip.proto": "ip",
    "ip.src": "ip",
    "ip.tos": "ip",
    "ip.ttl": "ip",
    "ip.vhl": "ip",
    "ipv6.dst": "ip",
    "ipv6.ext": "ip",
    "ipv6.hlim": "ip",
    "ipv6.nxt": "ip",
    "ipv6.plen": "ip",
    "ipv6.src": "ip",
    "ipv6.vtcfl": "ip",
    "ipv6.x": "ip",
    "mixed": "mixed",
    "mpls.label": "link",
    "null.family": "link",
    "other": "other",
    "pad": "pad",
    "padding": "padding",
    "payload": "payload",
    "pcap.incl_len": "pcap record",
    "pcap.linktype": "pcap header",
    "pcap.magic": "pcap header",
    "pcap.orig_len": "pcap record",
    "pcap.sigfigs": "pcap header",
    "pcap.snaplen": "pcap header",
    "pcap.thiszone": "pcap header",
    "pcap.ts_sec": "pcap record",
    "pcap.ts_usec": "pcap record",
    "pcap.version": "pcap header",
    "pcap.x": "pcap header",
    "pppoe.header": "link",
    "sll.addr": "link",
    "sll.header": "link",
    "tcp.ack": "tcp",
    "tcp.checksum": "tcp",
    "tcp.dport": "tcp",
    "tcp.offflags": "tcp",
    "tcp.opt.timestamp": "tcp",
    "tcp.options": "tcp",
    "tcp.seq": "tcp",
    "tcp.sport": "tcp",
    "tcp.urp": "tcp",
    "tcp.window": "tcp",
    "tcp.x": "tcp",
    "trailer": "trailer",
    "udp.checksum": "udp",
    "udp.dport": "udp",
    "udp.len": "udp",
    "udp.sport": "udp",
    "udp.x": "udp",
    "vlan.tag": "link",
    "vlan.x": "link",
}

OLD_AUDIT_FIELDS = {
    "pcap.timestamp": ("pcap.ts_sec", "pcap.ts_usec"),
    "pcap.lengths": ("pcap.incl_len", "pcap.orig_len"),
    "pcap.global": ("pcap.*",),
    "mac": ("eth.src", "eth.dst", "sll.addr"),
    "link.other": ("eth.*", "vlan.*", "sll.*", "null.*", "pppoe.*", "mpls.*"),
    "ip.addresses": ("ip.src", "ip.dst", "ipv6.src", "ipv6.dst"),
    "ip.id": ("ip.id", "ipv6.vtcfl"),
    "ip.ttl": ("ip.ttl", "ipv6.hlim"),
    "lengths": ("ip.len", "ipv6.plen", "udp.len"),
    "checksums": ("ip.checksum", "tcp.checksum", "udp.checksum"),
    "ip.other": ("ip.*", "ipv6.*"),
    "ports": ("tcp.sport", "tcp.dport", "udp.sport", "udp.dport"),
    "tcp.seq_ack": ("tcp.seq", "tcp.ack"),
    "tcp.timestamp": ("tcp.opt.timestamp",),
    "tcp.other": ("tcp.*",),
    "udp.other": ("udp.*",),
    "trailer": ("trailer", "other"),
    "dns.id": ("dns.id",),
    "payload": ("payload",),
}

OLD_CONTEXT_SETS = frozenset(
    {
        "checksums",
        "dns.id",
        "ip.addresses",
        "ip.id",
        "ip.ttl",
        "mac",
        "pcap.global",
        "pcap.timestamp",
        "ports",
        "tcp.seq_ack",
        "tcp.timestamp",
    }
)

OLD_HEADERS = {
    "IPV4_HEADER": (
        ("ip.vhl", 0, 1),
        ("ip.tos", 1, 2),
        ("ip.len", 2, 4),
        ("ip.id", 4, 6),
        ("ip.frag", 6, 8),
        ("ip.ttl", 8, 9),
        ("ip.proto", 9, 10),
        ("ip.checksum", 10, 12),
        ("ip.src", 12, 16),
        ("ip.dst", 16, 20),
    ),
    "IPV6_HEADER": (
        ("ipv6.vtcfl", 0, 4),
        ("ipv6.plen", 4, 6),
        ("ipv6.nxt", 6, 7),
        ("ipv6.hlim", 7, 8),
        ("ipv6.src", 8, 24),
        ("ipv6.dst", 24, 40),
    ),
    "TCP_HEADER": (
        ("tcp.sport", 0, 2),
        ("tcp.dport", 2, 4),
        ("tcp.seq", 4, 8),
        ("tcp.ack", 8, 12),
        ("tcp.offflags", 12, 14),
        ("tcp.window", 14, 16),
        ("tcp.checksum", 16, 18),
        ("tcp.urp", 18, 20),
    ),
    "UDP_HEADER": (
        ("udp.sport", 0, 2),
        ("udp.dport", 2, 4),
        ("udp.len", 4, 6),
        ("udp.checksum", 6, 8),
    ),
    "_ETH_ADDRS": (("eth.dst", 0, 6), ("eth.src", 6, 12)),
}

OLD_PCAP_GLOBAL_FIELDS = (
    ("pcap.magic", 0, 4),
    ("pcap.version", 4, 8),
    ("pcap.thiszone", 8, 12),
    ("pcap.sigfigs", 12, 16),
    ("pcap.snaplen", 16, 20),
    ("pcap.linktype", 20, 24),
)

OLD_PCAP_RECORD_FIELDS = (
    ("pcap.ts_sec", 0, 4),
    ("pcap.ts_usec", 4, 8),
    ("pcap.incl_len", 8, 12),
    ("pcap.orig_len", 12, 16),
)

OLD_FAST_FIXED = {
    "ip.vhl": ("ip4", 0, 1),
    "ip.tos": ("ip4", 1, 2),
    "ip.len": ("ip4", 2, 4),
    "ip.id": ("ip4", 4, 6),
    "ip.frag": ("ip4", 6, 8),
    "ip.ttl": ("ip4", 8, 9),
    "ip.proto": ("ip4", 9, 10),
    "ip.checksum": ("ip4", 10, 12),
    "ip.src": ("ip4", 12, 16),
    "ip.dst": ("ip4", 16, 20),
    "ipv6.vtcfl": ("ip6", 0, 4),
    "ipv6.plen": ("ip6", 4, 6),
    "ipv6.nxt": ("ip6", 6, 7),
    "ipv6.hlim": ("ip6", 7, 8),
    "ipv6.src": ("ip6", 8, 24),
    "ipv6.dst": ("ip6", 24, 40),
    "tcp.sport": ("tcp", 0, 2),
    "tcp.dport": ("tcp", 2, 4),
    "tcp.seq": ("tcp", 4, 8),
    "tcp.ack": ("tcp", 8, 12),
    "tcp.offflags": ("tcp", 12, 14),
    "tcp.window": ("tcp", 14, 16),
    "tcp.checksum": ("tcp", 16, 18),
    "tcp.urp": ("tcp", 18, 20),
    "udp.sport": ("udp", 0, 2),
    "udp.dport": ("udp", 2, 4),
    "udp.len": ("udp", 4, 6),
    "udp.checksum": ("udp", 6, 8),
    "eth.dst": ("eth", 0, 6),
    "eth.src": ("eth", 6, 12),
}

OLD_FAST_VARIABLE = frozenset(
    {"dns.id", "ip.options", "payload", "sll.addr", "tcp.opt.timestamp", "tcp.options"}
)

OLD_PAYLOAD_FIELDS = frozenset({"dns.id", "payload"})

OLD_LINK_PREFIXES = ("eth", "vlan", "sll", "null", "pppoe", "mpls")


# More names that are no field, as (category, layer).
OLD_OTHER_NAMES = {
    "pcap": ("mixed", "pcap header"),
    "eth": ("mixed", "link"),
    "tcp": ("mixed", "tcp"),
    "udp": ("mixed", "udp"),
    "dns": ("mixed", "payload"),
    "ip": ("mixed", "ip"),
    "ipv6": ("mixed", "ip"),
    "sll": ("mixed", "link"),
    "payload.x": ("mixed", "payload"),
    "trailer.x": ("mixed", "trailer"),
    "mixed.x": ("mixed", "mixed"),
    "pad.x": ("mixed", "pad"),
    "other.x": ("mixed", "other"),
    "tcp.opt": ("transport header", "tcp"),
    "ip.src.x": ("IP header", "ip"),
    ".x": ("mixed", ""),
    "x.": ("mixed", "x"),
}


def _assert_same(new, old):
    assert type(new) is type(old)
    assert new == old
    if isinstance(old, dict):
        assert list(new) == list(old)  # the order of the keys too
        for key in old:
            assert type(new[key]) is type(old[key])


# One deliberate difference: the registry lists eth.src before eth.dst, the
# order of the audit's "mac" set and of the documentation, so the addresses
# group lists them in that order too (the same fields: masks are sets).
NEW_ADDRESSES = ("eth.src", "eth.dst") + OLD_FIELD_GROUPS["addresses"][2:]
NEW_FIELD_GROUPS = {**OLD_FIELD_GROUPS, "addresses": NEW_ADDRESSES}
NEW_LEAKY = {**OLD_LEAKY, "address": NEW_ADDRESSES}


def test_mask_groups_unchanged():
    assert set(NEW_ADDRESSES) == set(OLD_FIELD_GROUPS["addresses"])
    _assert_same(_layers.FIELD_GROUPS, NEW_FIELD_GROUPS)
    _assert_same(_layouts.MASK_GROUPS, NEW_FIELD_GROUPS)
    _assert_same(_layouts.SAFE_FIELDS, OLD_SAFE_FIELDS)


def test_field_names_unchanged():
    _assert_same(_layouts.FIELD_NAMES, OLD_FIELD_NAMES)


def test_plot_categories_unchanged():
    _assert_same(plotting.FIELD_CATEGORIES, OLD_FIELD_CATEGORIES)
    _assert_same(plotting._LEAKY, NEW_LEAKY)
    for name, category in OLD_CATEGORY_OF.items():
        assert plotting.field_category(name) == category, name
    assert plotting.field_category(None) == "padding"
    for name, (category, _) in OLD_OTHER_NAMES.items():
        assert plotting.field_category(name) == category, name


def test_byte_map_layers_unchanged():
    names = list(OLD_LAYER_OF)
    layers = _layouts.byte_map_layers(names)
    assert dict(zip(names, map(str, layers.tolist()))) == OLD_LAYER_OF
    grid = _layouts.byte_map_layers(np.array(names, dtype=object).reshape(1, -1))
    assert grid.shape == (1, len(names))
    for name, (_, layer) in OLD_OTHER_NAMES.items():
        assert _layouts.byte_map_layers([name])[0] == layer, name


def test_audit_sets_unchanged():
    _assert_same(_audit.AUDIT_FIELDS, OLD_AUDIT_FIELDS)
    _assert_same(_audit.CONTEXT_SETS, OLD_CONTEXT_SETS)


def test_header_templates_unchanged():
    for name, old in OLD_HEADERS.items():
        _assert_same(getattr(_layers, name), old)
    _assert_same(_layouts.PCAP_GLOBAL_FIELDS, OLD_PCAP_GLOBAL_FIELDS)
    _assert_same(_layouts.PCAP_RECORD_FIELDS, OLD_PCAP_RECORD_FIELDS)


def test_fast_path_tables_unchanged():
    _assert_same(_layouts._FAST_FIXED, OLD_FAST_FIXED)
    _assert_same(_layouts._FAST_VARIABLE, OLD_FAST_VARIABLE)
    _assert_same(_layouts._PAYLOAD_FIELDS, OLD_PAYLOAD_FIELDS)


# --------------------------------------------------------------------------
# The registry itself.


def test_registry_rows_are_consistent():
    names = [f.name for f in FIELDS]
    assert len(names) == len(set(names))
    assert _layouts.FIELD_NAMES == frozenset(names) == frozenset(FIELD_BY_NAME)
    audit_sets = [name for name, _ in AUDIT_SETS]
    assert len(audit_sets) == len(set(audit_sets))
    for f in FIELDS:
        assert f.category in plotting.FIELD_CATEGORIES, f
        assert f.group is None or f.group in MASK_GROUP_NAMES, f
        assert f.audit in audit_sets, f
        assert isinstance(f.context, bool), f
        assert (f.header is None) == (f.start is None) == (f.stop is None), f
        if f.start is not None:
            assert 0 <= f.start < f.stop, f
    for group in MASK_GROUP_NAMES:
        assert FIELD_GROUPS[group], group
    # Every registry field is named as its registry layer says.
    assert (_layouts.byte_map_layers(names) == [f.layer for f in FIELDS]).all()


def test_fixed_headers_do_not_overlap():
    for header in {f.header for f in FIELDS} - {None}:
        fields = header_fields(header)
        for (_, _, stop), (_, start, _) in zip(fields, fields[1:]):
            assert stop <= start, header


def test_each_field_goes_to_its_audit_set():
    # First match wins: a field's declared set must be the first that matches.
    index = _audit._set_index(list(FIELD_BY_NAME), _audit.AUDIT_FIELDS)
    sets = list(_audit.AUDIT_FIELDS)
    for f in FIELDS:
        assert sets[index[f.name]] == f.audit, f
    # A set is capture context or traffic shape as a whole.
    for name, _ in AUDIT_SETS:
        kinds = {f.context for f in FIELDS if f.audit == name}
        assert len(kinds) <= 1, name
        assert (name in _audit.CONTEXT_SETS) == (kinds == {True}), name


def test_leaky_groups_have_their_plot_category():
    for kind, fields in plotting._LEAKY.items():
        for name in fields:
            assert FIELD_BY_NAME[name].category == kind, name


def test_the_dissector_names_registry_fields_only():
    seen = set()
    for frames, linktype, _, _ in CASES.values():
        for frame in frames:
            for cut in (len(frame), 30):
                seen |= {name for name, _, _ in dissect(frame[:cut], linktype).fields}
    assert seen <= set(FIELD_BY_NAME)
    # The hand-built frames reach most fields (the rest need PPPoE, MPLS...).
    assert len(seen) > 30


# --------------------------------------------------------------------------
# Fast-path twins.  dissect_batch (_layouts) blanks a mask field in numpy, for
# all frames at once, when it knows where the field is: at a fixed place of a
# fixed header (_FAST_FIXED, from the registry) or by one branch of its own
# (_FAST_VARIABLE).  A mask naming any other field sends EVERY frame through
# the reference dissector, frame by frame; so does a registry field that
# lacks its twin.  The pcap header fields are written (and blanked) by
# _record_headers and global_headers.

# The fields only the reference dissector places; masking one is slow.  A
# new registry field either gets its twin or is listed here.
SLOW_FIELDS = frozenset(
    {
        "eth.type",
        "vlan.tag",
        "sll.header",
        "null.family",
        "pppoe.header",
        "mpls.label",
        "ipv6.ext",
    }
)


def _twin(name):
    if name in _layouts._RECORD_OFFSETS or name in _layouts._GLOBAL_OFFSETS:
        return "pcap headers"
    if name in _layouts._FAST_FIXED:
        return "fixed"
    if name in _layouts._FAST_VARIABLE:
        return "branch"
    return None


def test_every_registry_field_has_its_fast_path_twin():
    missing = [
        f.name for f in FIELDS if _twin(f.name) is None and f.name not in SLOW_FIELDS
    ]
    assert not missing, (
        f"{missing}: no fast-path twin; give each a branch in "
        "_layouts.dissect_batch and list it in _layouts._FAST_VARIABLE (or, "
        "if masking it may be slow, in SLOW_FIELDS here)"
    )
    assert SLOW_FIELDS <= set(FIELD_BY_NAME)
    assert not SLOW_FIELDS & {n for n in FIELD_BY_NAME if _twin(n)}
    # Twins of no registry field are stale.
    assert _layouts._FAST_VARIABLE <= set(FIELD_BY_NAME)


def test_mask_groups_stay_on_the_fast_path():
    assert not _layouts.SAFE_FIELDS & SLOW_FIELDS


def _fast_corpus():
    frames, linktypes = [], []
    for _, (case_frames, linktype, _, _) in sorted(CASES.items()):
        frames += case_frames
        linktypes += [linktype] * len(case_frames)
    return _layouts.batch_from_frames(
        [[f] for f in frames], [[0]] * len(frames), [[len(f)] for f in frames],
        linktypes,
    )  # fmt: skip


def _calls_and_blanked(monkeypatch, batch, mask, vectorized=True):
    calls = []

    def counting(frame, linktype):
        calls.append(linktype)
        return dissect(frame, linktype)

    monkeypatch.setattr(_layouts, "dissect", counting)
    idx = np.arange(len(batch.start))
    dis = _layouts.dissect_batch(batch, idx, mask, vectorized=vectorized)
    buf = batch.buf.copy()
    for f, a, z, keep in zip(*dis.ranges):
        s = batch.start[f]
        buf[s + a : s + z] &= np.uint8(keep)
    return len(calls), buf, len(dis.ranges[0])


def test_fast_path_twins_place_their_fields(monkeypatch):
    # Each field with a twin is blanked without calling the reference
    # dissector for any frame the fast path reads (the frames it cannot read,
    # BSD loopback and IPv6 extension headers here, go to dissect() whatever
    # the mask), and exactly as the reference dissector blanks it.
    batch = _fast_corpus()
    baseline, _, _ = _calls_and_blanked(monkeypatch, batch, {"ip.ttl"})
    assert 0 < baseline < len(batch.start) // 2
    frame_fields = [f.name for f in FIELDS if _twin(f.name) in ("fixed", "branch")]
    for name in frame_fields:
        calls, fast, _ = _calls_and_blanked(monkeypatch, batch, {name})
        assert calls == baseline, f"{name}: frames sent to the reference dissector"
        _, ref, n_ranges = _calls_and_blanked(
            monkeypatch, batch, {name}, vectorized=False
        )
        np.testing.assert_array_equal(fast, ref, err_msg=name)
        # The corpus holds the field, so the comparison means something.
        assert n_ranges, f"{name}: add a frame that carries it to the corpus"

    # A field without a twin sends every frame to the reference dissector.
    calls, _, _ = _calls_and_blanked(monkeypatch, batch, {"vlan.tag"})
    assert calls == len(batch.start)


# --------------------------------------------------------------------------
# The protocol numbers the compiled loops repeat.


def test_compiled_loops_use_the_registry_numbers():
    import re
    from pathlib import Path

    from sklearn_flowspectrum import _protocols

    source = Path(_layouts.__file__).with_name("_speedups.c").read_text()
    defines = dict(re.findall(r"^#define FS_(\w+) (.+?)\s*(?:/\*.*)?$", source, re.M))
    assert len(defines) > 20
    seen = {}
    for name, text in defines.items():
        shift = re.fullmatch(r"\((\d+)u? << (\d+)\)", text)  # (1u << 26)
        value = int(shift[1]) << int(shift[2]) if shift else int(text, 0)
        base, _, number = name.rpartition("_")
        if number.isdigit() and isinstance(getattr(_protocols, base, None), tuple):
            seen.setdefault(base, []).append(value)
        else:
            assert getattr(_protocols, name) == value, name
    for base, values in seen.items():
        assert tuple(values) == getattr(_protocols, base), base
    assert set(seen) == {"ETHERTYPE_VLAN", "ETHERTYPE_MPLS"}
    # No bare protocol number is left in the header decoder.
    decoder = source[source.index("enum { UNDECIDED") :]
    decoder = decoder[: decoder.index("SessionIndex")]
    for number in ("0x8100", "0x88A8", "0x9100", "0x0800", "0x86DD", "113", "228"):
        assert number not in decoder, number
