/*
 * Compiled versions of the per-item loops of the fast path.
 *
 * Everything else of the fast path is numpy; these loops are the ones numpy
 * cannot express (following record lengths) or expresses at a cost of one
 * Python step per packet.  sklearn_flowspectrum/_loops.py holds the
 * pure-Python versions they must agree with (and falls back to them when this
 * module was not built); tests/test_loops.py compares the two.
 *
 * Authors: The sklearn_flowspectrum developers
 * SPDX-License-Identifier: BSD-3-Clause
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Protocol numbers and capture limits, named as in _protocols.py with an FS_
 * prefix (a tuple's values numbered from 1); tests/test_protocols.py checks
 * that they agree. */
#define FS_LINKTYPE_ETHERNET 1
#define FS_LINKTYPE_LINUX_SLL 113
#define FS_LINKTYPE_IPV4 228
#define FS_LINKTYPE_IPV6 229
#define FS_ETHERTYPE_IPV4 0x0800
#define FS_ETHERTYPE_IPV6 0x86DD
#define FS_ETHERTYPE_VLAN_1 0x8100 /* 802.1Q */
#define FS_ETHERTYPE_VLAN_2 0x88A8 /* 802.1ad */
#define FS_ETHERTYPE_VLAN_3 0x9100 /* pre-standard QinQ */
#define FS_ETHERTYPE_PPPOE_SESSION 0x8864
#define FS_ETHERTYPE_MPLS_1 0x8847
#define FS_ETHERTYPE_MPLS_2 0x8848
#define FS_IPPROTO_HOPOPTS 0
#define FS_IPPROTO_IPIP 4
#define FS_IPPROTO_TCP 6
#define FS_IPPROTO_UDP 17
#define FS_IPPROTO_IPV6 41
#define FS_IPPROTO_ROUTING 43
#define FS_IPPROTO_FRAGMENT 44
#define FS_IPPROTO_AH 51
#define FS_IPPROTO_DSTOPTS 60
#define FS_PCAPNG_EPB 6
#define FS_MAX_BLOCK (1u << 26)

/* The buffers a function holds, released together when it returns. */
typedef struct {
    Py_buffer views[16];
    int n;
} held;

static void
release_all(held *h)
{
    while (h->n > 0)
        PyBuffer_Release(&h->views[--h->n]);
}

/* The buffer of obj (C-contiguous, writable when asked); with itemsize > 0,
 * an array of n items of that size (n < 0: any number).  NULL on error. */
static Py_buffer *
hold(held *h, PyObject *obj, int writable, Py_ssize_t itemsize, Py_ssize_t n,
     const char *what)
{
    if (h->n == (int)(sizeof h->views / sizeof h->views[0])) {
        PyErr_SetString(PyExc_SystemError, "too many buffers held");
        return NULL;
    }
    Py_buffer *v = &h->views[h->n];
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, v, flags) < 0)
        return NULL;
    h->n++;
    if (itemsize > 0 && (v->itemsize != itemsize ||
                         (n >= 0 ? v->len != n * itemsize : v->len % itemsize))) {
        if (n >= 0)
            PyErr_Format(PyExc_ValueError, "%s must hold %zd items of %zd bytes",
                         what, n, itemsize);
        else
            PyErr_Format(PyExc_TypeError, "%s must be an array of %zd-byte items",
                         what, itemsize);
        return NULL;
    }
    return v;
}

/* The arguments (buf, starts, lengths) of a loop over byte ranges of buf;
 * checks that every range of positive length lies in buf (those of length
 * zero or less are empty).  Returns the number of ranges, -1 on error. */
static Py_ssize_t
hold_ranges(held *h, PyObject *args, const char *fmt, int writable,
            Py_buffer **buf, const int64_t **starts, const int64_t **lengths)
{
    PyObject *o_buf, *o_s, *o_l;
    Py_buffer *vs, *vl;
    if (!PyArg_ParseTuple(args, fmt, &o_buf, &o_s, &o_l) ||
        !(*buf = hold(h, o_buf, writable, 0, -1, "buf")) ||
        !(vl = hold(h, o_l, 0, 8, -1, "lengths")) ||
        !(vs = hold(h, o_s, 0, 8, vl->len / 8, "starts")))
        return -1;
    Py_ssize_t n = vl->len / 8;
    const int64_t *st = vs->buf, *ln = vl->buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ln[i] > 0 && (st[i] < 0 || st[i] > (int64_t)(*buf)->len - ln[i])) {
            PyErr_Format(PyExc_IndexError, "range %zd [%lld, +%lld) outside the "
                         "buffer of %zd bytes", i, (long long)st[i],
                         (long long)ln[i], (*buf)->len);
            return -1;
        }
    }
    *starts = st;
    *lengths = ln;
    return n;
}

PyDoc_STRVAR(record_headers_doc,
"record_headers(buf, big_endian, /)\n--\n\n"
"Walk the 16-byte pcap record headers in buf from offset 0, following each\n"
"incl_len, while a header fits whole (its body may not).  Returns\n"
"(offsets, words): int64 offsets and, per header, its four uint32 fields\n"
"(ts_sec, ts_frac, incl_len, orig_len) as native numbers, both bytearrays.");

static inline uint32_t
u32(const unsigned char *r, int big)
{
    return big ? ((uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3])
               : ((uint32_t)r[3] << 24 | (uint32_t)r[2] << 16 | (uint32_t)r[1] << 8 | r[0]);
}

static PyObject *
record_headers(PyObject *self, PyObject *args)
{
    PyObject *o_buf, *offsets = NULL, *words = NULL, *res = NULL;
    int big;
    if (!PyArg_ParseTuple(args, "Op:record_headers", &o_buf, &big))
        return NULL;
    held h = {.n = 0};
    int64_t *o = NULL;
    uint32_t *w = NULL;
    Py_buffer *buf = hold(&h, o_buf, 0, 0, -1, "buf");
    if (buf == NULL)
        goto done;
    const unsigned char *p = buf->buf;
    Py_ssize_t n = 0, cap = 0;
    /* One pass: the chase from header to header is the slow part. */
    for (int64_t off = 0; off <= (int64_t)buf->len - 16; n++) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            int64_t *o2 = PyMem_Realloc(o, cap * sizeof *o);
            if (o2 != NULL)
                o = o2;
            uint32_t *w2 = PyMem_Realloc(w, 4 * cap * sizeof *w);
            if (w2 != NULL)
                w = w2;
            if (o2 == NULL || w2 == NULL) {
                PyErr_NoMemory();
                goto done;
            }
        }
        const unsigned char *r = p + off;
        o[n] = off;
        for (int j = 0; j < 4; j++)
            w[4 * n + j] = u32(r + 4 * j, big);
        off += 16 + (int64_t)w[4 * n + 2];
    }
    offsets = PyByteArray_FromStringAndSize((const char *)o, n * sizeof *o);
    words = PyByteArray_FromStringAndSize((const char *)w, 4 * n * sizeof *w);
    if (offsets != NULL && words != NULL)
        res = PyTuple_Pack(2, offsets, words);
done:
    PyMem_Free(o);
    PyMem_Free(w);
    Py_XDECREF(offsets);
    Py_XDECREF(words);
    release_all(&h);
    return res;
}

PyDoc_STRVAR(pcapng_packets_doc,
"pcapng_packets(buf, start, end, big_endian, multiplier, offset_ns, /)\n--\n\n"
"Walk the enhanced packet blocks of a pcapng section in buf[start:end] and\n"
"stop at the first block that is anything else: another block type, a block\n"
"not whole in the buffer, or one the Python reader must judge (a bad length\n"
"or trailer, an unknown interface, a packet longer than its block, or a\n"
"timestamp this conversion does not cover).  Per interface, ts_ns =\n"
"ts * multiplier + offset_ns (multiplier 0: leave it to Python).  Returns\n"
"(stop, data_offsets, caplen, orig_len, ts_ns, interface), arrays as int64\n"
"bytearrays.");

static PyObject *
pcapng_packets(PyObject *self, PyObject *args)
{
    PyObject *o_buf, *o_mult, *o_off, *res = NULL;
    Py_ssize_t start, end;
    int big;
    if (!PyArg_ParseTuple(args, "OnnpOO:pcapng_packets", &o_buf, &start, &end, &big,
                          &o_mult, &o_off))
        return NULL;
    held h = {.n = 0};
    int64_t *cols[5] = {NULL};
    PyObject *arrays[5] = {NULL};
    Py_buffer *buf, *vm, *vo;
    if (!(buf = hold(&h, o_buf, 0, 0, -1, "buf")) ||
        !(vm = hold(&h, o_mult, 0, 8, -1, "multiplier")) ||
        !(vo = hold(&h, o_off, 0, 8, vm->len / 8, "offset_ns")))
        goto done;
    if (start < 0 || end < start || end > buf->len) {
        PyErr_SetString(PyExc_IndexError, "start and end outside the buffer");
        goto done;
    }
    const unsigned char *b = buf->buf;
    const int64_t *mult = vm->buf, *off = vo->buf;
    uint32_t n_ifaces = (uint32_t)(vm->len / 8);
    Py_ssize_t n = 0, cap = 0, p = start;
    while (end - p >= 12) {
        const unsigned char *q = b + p;
        uint32_t total = u32(q + 4, big);
        /* The smallest enhanced packet block: 8 + 20 + 4 bytes. */
        if (u32(q, big) != FS_PCAPNG_EPB || total < 32 || total % 4 ||
            total > FS_MAX_BLOCK ||
            (Py_ssize_t)total > end - p || u32(q + total - 4, big) != total)
            break;
        uint32_t iface = u32(q + 8, big), caplen = u32(q + 20, big);
        if (iface >= n_ifaces || mult[iface] <= 0 || caplen > total - 32)
            break;
        uint64_t ts = (uint64_t)u32(q + 12, big) << 32 | u32(q + 16, big);
        /* Exact in int64 (Python's integers never overflow): stay far below. */
        if (ts > (uint64_t)(INT64_MAX / 4) / (uint64_t)mult[iface] ||
            off[iface] > INT64_MAX / 4 || off[iface] < -(INT64_MAX / 4))
            break;
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            for (int j = 0; j < 5; j++) {
                int64_t *grown = PyMem_Realloc(cols[j], cap * sizeof(int64_t));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                cols[j] = grown;
            }
        }
        cols[0][n] = p + 28;
        cols[1][n] = caplen;
        cols[2][n] = u32(q + 24, big);
        cols[3][n] = (int64_t)ts * mult[iface] + off[iface];
        cols[4][n] = iface;
        n++;
        p += total;
    }
    for (int j = 0; j < 5; j++) {
        arrays[j] = PyByteArray_FromStringAndSize((const char *)cols[j],
                                                  n * (Py_ssize_t)sizeof(int64_t));
        if (arrays[j] == NULL)
            goto done;
    }
    res = Py_BuildValue("(nOOOOO)", p, arrays[0], arrays[1], arrays[2], arrays[3],
                        arrays[4]);
done:
    for (int j = 0; j < 5; j++) {
        PyMem_Free(cols[j]);
        Py_XDECREF(arrays[j]);
    }
    release_all(&h);
    return res;
}

PyDoc_STRVAR(slices_doc,
"slices(buf, starts, lengths, /)\n--\n\n"
"List of bytes objects buf[starts[i] : starts[i] + lengths[i]] (lengths of\n"
"zero or less: empty).");

static PyObject *
slices(PyObject *self, PyObject *args)
{
    PyObject *list = NULL;
    held h = {.n = 0};
    Py_buffer *buf;
    const int64_t *st, *ln;
    Py_ssize_t n = hold_ranges(&h, args, "OOO:slices", 0, &buf, &st, &ln);
    if (n < 0 || !(list = PyList_New(n)))
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = ln[i] > 0 ? PyBytes_FromStringAndSize(
                                      (const char *)buf->buf + st[i], ln[i])
                                : PyBytes_FromStringAndSize(NULL, 0);
        if (b == NULL) {
            Py_CLEAR(list);
            goto done;
        }
        PyList_SET_ITEM(list, i, b);
    }
done:
    release_all(&h);
    return list;
}

PyDoc_STRVAR(copy_ranges_doc,
"copy_ranges(dst, dst_starts, src, src_starts, lengths, /)\n--\n\n"
"dst[dst_starts[i] : +lengths[i]] = src[src_starts[i] : +lengths[i]] for all i.");

static PyObject *
copy_ranges(PyObject *self, PyObject *args)
{
    PyObject *o_dst, *o_d, *o_src, *o_s, *o_l, *res = NULL;
    if (!PyArg_ParseTuple(args, "OOOOO:copy_ranges", &o_dst, &o_d, &o_src, &o_s,
                          &o_l))
        return NULL;
    held h = {.n = 0};
    Py_buffer *dst, *src, *vd, *vs, *vl;
    if (!(dst = hold(&h, o_dst, 1, 0, -1, "dst")) ||
        !(src = hold(&h, o_src, 0, 0, -1, "src")) ||
        !(vl = hold(&h, o_l, 0, 8, -1, "lengths")) ||
        !(vd = hold(&h, o_d, 0, 8, vl->len / 8, "dst_starts")) ||
        !(vs = hold(&h, o_s, 0, 8, vl->len / 8, "src_starts")))
        goto done;
    Py_ssize_t n = vl->len / 8;
    const int64_t *d = vd->buf, *s = vs->buf, *l = vl->buf;
    /* Check every range before writing any, so an error leaves dst alone. */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (l[i] < 0 || d[i] < 0 || s[i] < 0 || d[i] > (int64_t)dst->len - l[i] ||
            s[i] > (int64_t)src->len - l[i]) {
            PyErr_Format(PyExc_IndexError, "range %zd outside its buffer", i);
            goto done;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++)
        memmove((char *)dst->buf + d[i], (const char *)src->buf + s[i], (size_t)l[i]);
    res = Py_NewRef(Py_None);
done:
    release_all(&h);
    return res;
}

PyDoc_STRVAR(zero_ranges_doc,
"zero_ranges(buf, starts, lengths, /)\n--\n\n"
"buf[starts[i] : starts[i] + lengths[i]] = 0 for all i (negative lengths:\n"
"nothing).");

static PyObject *
zero_ranges(PyObject *self, PyObject *args)
{
    held h = {.n = 0};
    Py_buffer *buf;
    const int64_t *st, *ln;
    Py_ssize_t n = hold_ranges(&h, args, "OOO:zero_ranges", 1, &buf, &st, &ln);
    for (Py_ssize_t i = 0; i < n; i++)
        if (ln[i] > 0)
            memset((char *)buf->buf + st[i], 0, (size_t)ln[i]);
    release_all(&h);
    return n < 0 ? NULL : Py_NewRef(Py_None);
}

/* Decimal digits of v (0-255) at p; returns the next position. */
static inline char *
put_octet(char *p, unsigned v)
{
    if (v >= 100)
        *p++ = (char)('0' + v / 100);
    if (v >= 10)
        *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

PyDoc_STRVAR(ipv4_strings_doc,
"ipv4_strings(addresses, /)\n--\n\n"
"Dotted-quad strings of IPv4 addresses given as int64 numbers.");

static PyObject *
ipv4_strings(PyObject *self, PyObject *o_addr)
{
    PyObject *list = NULL;
    held h = {.n = 0};
    Py_buffer *va = hold(&h, o_addr, 0, 8, -1, "addresses");
    if (va == NULL)
        goto done;
    Py_ssize_t n = va->len / 8;
    const int64_t *a = va->buf;
    list = PyList_New(n);
    if (list == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (a[i] < 0 || a[i] > 0xFFFFFFFFLL) {
            PyErr_Format(PyExc_ValueError, "%lld is not an IPv4 address",
                         (long long)a[i]);
            Py_CLEAR(list);
            goto done;
        }
        char text[16], *p = text;
        for (int shift = 24; shift >= 0; shift -= 8) {
            p = put_octet(p, (unsigned)(a[i] >> shift) & 255);
            *p++ = '.';
        }
        PyObject *str = PyUnicode_DecodeASCII(text, p - text - 1, NULL);
        if (str == NULL) {
            Py_CLEAR(list);
            goto done;
        }
        PyList_SET_ITEM(list, i, str);
    }
done:
    release_all(&h);
    return list;
}

PyDoc_STRVAR(ipv6_strings_doc,
"ipv6_strings(high, low, /)\n--\n\n"
"Text of IPv6 addresses given as two uint64 halves, as Python's ipaddress\n"
"writes them (RFC 5952: lowercase hextets, the first longest run of two or\n"
"more zero hextets as '::'); None for IPv4-mapped addresses, whose text\n"
"depends on the Python version.");

static PyObject *
ipv6_strings(PyObject *self, PyObject *args)
{
    PyObject *o_hi, *o_lo, *list = NULL;
    if (!PyArg_ParseTuple(args, "OO:ipv6_strings", &o_hi, &o_lo))
        return NULL;
    held h = {.n = 0};
    Py_buffer *vh, *vl;
    if (!(vh = hold(&h, o_hi, 0, 8, -1, "high")) ||
        !(vl = hold(&h, o_lo, 0, 8, vh->len / 8, "low")))
        goto done;
    Py_ssize_t n = vh->len / 8;
    const uint64_t *hi = vh->buf, *lo = vl->buf;
    list = PyList_New(n);
    if (list == NULL)
        goto done;
    static const char hex[] = "0123456789abcdef";
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned x[8];
        for (int j = 0; j < 4; j++) {
            x[j] = (unsigned)(hi[i] >> (48 - 16 * j)) & 0xFFFF;
            x[4 + j] = (unsigned)(lo[i] >> (48 - 16 * j)) & 0xFFFF;
        }
        if (!x[0] && !x[1] && !x[2] && !x[3] && !x[4] && x[5] == 0xFFFF) {
            PyList_SET_ITEM(list, i, Py_NewRef(Py_None));
            continue;
        }
        /* The first longest run of zero hextets, if two or more long. */
        int best = -1, best_len = 0;
        for (int j = 0; j < 8;) {
            if (x[j]) {
                j++;
                continue;
            }
            int k = j;
            while (k < 8 && !x[k])
                k++;
            if (k - j > best_len) {
                best = j;
                best_len = k - j;
            }
            j = k;
        }
        if (best_len < 2)
            best = -1;
        char text[48], *p = text;
        for (int j = 0; j < 8; j++) {
            if (j == best) {
                *p++ = ':';
                if (j == 0)
                    *p++ = ':';
                j += best_len - 1;
                continue;
            }
            int started = 0;
            for (int shift = 12; shift >= 0; shift -= 4) {
                unsigned d = (x[j] >> shift) & 15;
                if (d || started || shift == 0) {
                    *p++ = hex[d];
                    started = 1;
                }
            }
            if (j < 7)
                *p++ = ':';
        }
        PyObject *str = PyUnicode_DecodeASCII(text, p - text, NULL);
        if (str == NULL) {
            Py_CLEAR(list);
            goto done;
        }
        PyList_SET_ITEM(list, i, str);
    }
done:
    release_all(&h);
    return list;
}

PyDoc_STRVAR(split_doc,
"split(seq, bounds, /)\n--\n\n"
"List of tuples seq[bounds[i] : bounds[i + 1]] (bounds ascending).");

static PyObject *
split(PyObject *self, PyObject *args)
{
    PyObject *o_seq, *o_bounds, *list = NULL;
    if (!PyArg_ParseTuple(args, "OO:split", &o_seq, &o_bounds))
        return NULL;
    PyObject *seq = PySequence_Fast(o_seq, "split: seq must be a sequence");
    if (seq == NULL)
        return NULL;
    held h = {.n = 0};
    Py_buffer *vb = hold(&h, o_bounds, 0, 8, -1, "bounds");
    if (vb == NULL)
        goto done;
    const int64_t *b = vb->buf;
    Py_ssize_t nb = vb->len / 8, len = PySequence_Fast_GET_SIZE(seq);
    if (nb < 1) {
        PyErr_SetString(PyExc_ValueError, "bounds needs at least one value");
        goto done;
    }
    for (Py_ssize_t i = 0; i < nb; i++) {
        if (b[i] < 0 || b[i] > len || (i && b[i] < b[i - 1])) {
            PyErr_Format(PyExc_IndexError, "bounds[%zd] = %lld is not ascending "
                         "within a sequence of %zd", i, (long long)b[i], len);
            goto done;
        }
    }
    list = PyList_New(nb - 1);
    if (list == NULL)
        goto done;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i + 1 < nb; i++) {
        Py_ssize_t k = (Py_ssize_t)(b[i + 1] - b[i]);
        PyObject *t = PyTuple_New(k);
        if (t == NULL) {
            Py_CLEAR(list);
            goto done;
        }
        for (Py_ssize_t j = 0; j < k; j++) {
            PyObject *x = items[b[i] + j];
            Py_INCREF(x);
            PyTuple_SET_ITEM(t, j, x);
        }
        PyList_SET_ITEM(list, i, t);
    }
done:
    release_all(&h);
    Py_DECREF(seq);
    return list;
}

/* Calls f(frame buffer, i) for every frame of every session, in order;
 * counts[s] receives the number of frames of session s when given. */
typedef int (*frame_fn)(Py_buffer *, Py_ssize_t, void *);

static int
each_frame(PyObject *sessions, int64_t *counts, frame_fn f, void *ctx)
{
    PyObject *outer = PySequence_Fast(sessions, "frames must be a sequence");
    if (outer == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(outer), k = 0;
    PyObject **rows = PySequence_Fast_ITEMS(outer);
    for (Py_ssize_t s = 0; s < n; s++) {
        PyObject *inner = PySequence_Fast(
            rows[s], "each session's frames must be a sequence of bytes");
        if (inner == NULL)
            goto fail;
        Py_ssize_t m = PySequence_Fast_GET_SIZE(inner);
        PyObject **frames = PySequence_Fast_ITEMS(inner);
        if (counts)
            counts[s] = m;
        for (Py_ssize_t j = 0; j < m; j++, k++) {
            Py_buffer view;
            if (PyObject_GetBuffer(frames[j], &view, PyBUF_SIMPLE) < 0) {
                Py_DECREF(inner);
                goto fail;
            }
            int rc = f(&view, k, ctx);
            PyBuffer_Release(&view);
            if (rc < 0) {
                Py_DECREF(inner);
                goto fail;
            }
        }
        Py_DECREF(inner);
    }
    Py_DECREF(outer);
    return 0;
fail:
    Py_DECREF(outer);
    return -1;
}

typedef struct {
    int64_t *lengths;
    Py_ssize_t n, cap;
} length_ctx;

static int
add_length(Py_buffer *view, Py_ssize_t k, void *p)
{
    length_ctx *c = p;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 4096;
        int64_t *grown = PyMem_Realloc(c->lengths, c->cap * sizeof(int64_t));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->lengths = grown;
    }
    c->lengths[c->n++] = view->len;
    return 0;
}

PyDoc_STRVAR(frame_lengths_doc,
"frame_lengths(sessions, /)\n--\n\n"
"(counts, lengths) as int64 bytearrays: frames per session, length of every frame.");

static PyObject *
frame_lengths(PyObject *self, PyObject *o_sessions)
{
    Py_ssize_t n = PySequence_Size(o_sessions);
    if (n < 0)
        return NULL;
    PyObject *counts = PyByteArray_FromStringAndSize(NULL, n * sizeof(int64_t));
    if (counts == NULL)
        return NULL;
    length_ctx c = {NULL, 0, 0};
    if (each_frame(o_sessions, (int64_t *)PyByteArray_AS_STRING(counts), add_length,
                   &c) < 0) {
        PyMem_Free(c.lengths);
        Py_DECREF(counts);
        return NULL;
    }
    PyObject *lengths = PyByteArray_FromStringAndSize((const char *)c.lengths,
                                                      c.n * sizeof(int64_t));
    PyMem_Free(c.lengths);
    if (lengths == NULL) {
        Py_DECREF(counts);
        return NULL;
    }
    return Py_BuildValue("(NN)", counts, lengths);
}

typedef struct {
    char *out;
    Py_ssize_t size, pos;
    const unsigned char *keep;
    Py_ssize_t n_keep;
} join_ctx;

static int
copy_frame(Py_buffer *view, Py_ssize_t k, void *p)
{
    join_ctx *c = p;
    if (c->keep) {
        if (k >= c->n_keep) {
            PyErr_SetString(PyExc_ValueError, "keep is shorter than the frames");
            return -1;
        }
        if (!c->keep[k])
            return 0;
    }
    if (view->len > c->size - c->pos) {
        PyErr_SetString(PyExc_ValueError, "frames larger than their lengths");
        return -1;
    }
    memcpy(c->out + c->pos, view->buf, view->len);
    c->pos += view->len;
    return 0;
}

PyDoc_STRVAR(join_frames_doc,
"join_frames(sessions, size, keep, /)\n--\n\n"
"bytearray of the frames whose keep flag is set (keep=None: all), in order;\n"
"size is their total length.");

static PyObject *
join_frames(PyObject *self, PyObject *args)
{
    PyObject *o_sessions, *o_keep;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "OnO:join_frames", &o_sessions, &size, &o_keep))
        return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "size must be >= 0");
        return NULL;
    }
    Py_buffer vk;
    int have_keep = o_keep != Py_None;
    if (have_keep && PyObject_GetBuffer(o_keep, &vk, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (have_keep && vk.itemsize != 1) {
        PyErr_SetString(PyExc_TypeError, "keep must be a bool or uint8 array");
        PyBuffer_Release(&vk);
        return NULL;
    }
    PyObject *out = PyByteArray_FromStringAndSize(NULL, size);
    if (out != NULL) {
        join_ctx c = {PyByteArray_AS_STRING(out), size, 0,
                      have_keep ? vk.buf : NULL, have_keep ? vk.len : 0};
        if (each_frame(o_sessions, NULL, copy_frame, &c) < 0) {
            Py_CLEAR(out);
        } else if (c.pos != size) {
            PyErr_SetString(PyExc_ValueError, "frames shorter than their lengths");
            Py_CLEAR(out);
        }
    }
    if (have_keep)
        PyBuffer_Release(&vk);
    return out;
}

/* ------------------------------------------------------------------------
 * Link, IP and TCP/UDP headers of the common packets: the same decisions,
 * field by field, as _link() and _ip_stage() in _decode.py (their numpy
 * versions), which mirror _layers.dissect().  A packet this code does not
 * fully understand is left "undecided" for dissect().  Every read is checked
 * against the captured length first.
 */

enum { UNDECIDED = -1 };

typedef struct {
    int8_t truncated, malformed, fragment, not_ip, not_tcp_udp;
} skip_codes;

typedef struct {
    int8_t skip, ver;
    int16_t proto;
    int64_t l4, pay, end;
    int tunnel;
} ip_result;

static inline int
u16(const unsigned char *p)
{
    return (p[0] << 8) | p[1];
}

static void
ip_stage(const unsigned char *f, int64_t c, int64_t l3, int want,
         const skip_codes *k, ip_result *r)
{
    r->tunnel = 0;
    r->skip = UNDECIDED;
    if (l3 >= c) {
        r->skip = k->truncated;
        return;
    }
    int b0 = f[l3], nib = b0 >> 4;
    if (want == 0 ? (nib != 4 && nib != 6) : nib != want)
        return; /* the link layer and the header disagree: dissect() */
    int64_t length, hdr;
    int proto;
    if (nib == 4) {
        if (l3 + 20 > c) {
            r->skip = k->truncated;
            return;
        }
        length = u16(f + l3 + 2);
        proto = f[l3 + 9];
        hdr = (int64_t)(b0 & 0x0F) * 4;
        if (hdr < 20 || (length != 0 && length < hdr)) {
            r->skip = k->malformed;
            return;
        }
        if (l3 + hdr > c) {
            r->skip = k->truncated;
            return;
        }
        if (u16(f + l3 + 6) & 0x3FFF) {
            r->skip = k->fragment;
            return;
        }
        if (proto == FS_IPPROTO_IPIP || proto == FS_IPPROTO_IPV6)
            r->tunnel = 1;
        else if (proto != FS_IPPROTO_TCP && proto != FS_IPPROTO_UDP) {
            r->skip = k->not_tcp_udp;
            return;
        }
        r->end = length == 0 ? c : (l3 + length < c ? l3 + length : c);
    }
    else {
        if (l3 + 40 > c) {
            r->skip = k->truncated;
            return;
        }
        length = u16(f + l3 + 4);
        proto = f[l3 + 6];
        hdr = 40;
        if (proto == FS_IPPROTO_IPIP || proto == FS_IPPROTO_IPV6)
            r->tunnel = 1;
        else if (proto == FS_IPPROTO_HOPOPTS || proto == FS_IPPROTO_ROUTING ||
                 proto == FS_IPPROTO_DSTOPTS || proto == FS_IPPROTO_FRAGMENT ||
                 proto == FS_IPPROTO_AH)
            return; /* extension headers: dissect() */
        else if (proto != FS_IPPROTO_TCP && proto != FS_IPPROTO_UDP) {
            r->skip = k->not_tcp_udp;
            return;
        }
        r->end = length == 0 ? c : (l3 + 40 + length < c ? l3 + 40 + length : c);
    }
    int64_t l4 = l3 + hdr;
    r->ver = (int8_t)nib;
    r->proto = (int16_t)proto;
    r->l4 = l4;
    if (r->tunnel)
        return; /* undecided until the inner header is decoded */
    if (proto == FS_IPPROTO_TCP) {
        if (l4 + 20 > c) {
            r->skip = k->truncated;
            return;
        }
        int64_t doff = (int64_t)(f[l4 + 12] >> 4) * 4;
        if (doff < 20) {
            r->skip = k->malformed;
            return;
        }
        if (l4 + doff > c) {
            r->skip = k->truncated;
            return;
        }
        if (l4 + doff > r->end) {
            r->skip = k->malformed;
            return;
        }
        r->pay = l4 + doff;
    }
    else {
        if (l4 + 8 > c) {
            r->skip = k->truncated;
            return;
        }
        if (l4 + 8 > r->end) {
            r->skip = k->malformed;
            return;
        }
        r->pay = l4 + 8;
    }
    r->skip = 0;
}

static inline int
is_vlan(int et)
{
    return et == FS_ETHERTYPE_VLAN_1 || et == FS_ETHERTYPE_VLAN_2 ||
           et == FS_ETHERTYPE_VLAN_3;
}

/* Offset of the IP header and the IP version the link layer announces (0:
 * read it from the header); returns 0, or a skip code / UNDECIDED. */
static int
link_stage(const unsigned char *f, int64_t c, int64_t lt, const int64_t *raw,
           Py_ssize_t n_raw, const skip_codes *k, int64_t *l3, int *want)
{
    if (lt == FS_LINKTYPE_ETHERNET || lt == FS_LINKTYPE_LINUX_SLL) {
        int eth = lt == FS_LINKTYPE_ETHERNET;
        if (c < (eth ? 14 : 16))
            return k->truncated;
        int64_t pos = eth ? 12 : 14;
        int et = u16(f + pos);
        if (eth) {
            /* Up to two VLAN tags; a third is left to dissect(). */
            for (int t = 0; t < 2 && is_vlan(et); t++) {
                if (pos + 6 > c)
                    return k->truncated;
                pos += 4;
                et = u16(f + pos);
            }
            if (is_vlan(et))
                return UNDECIDED;
        }
        *l3 = pos + 2;
        if (et == FS_ETHERTYPE_IPV4)
            *want = 4;
        else if (et == FS_ETHERTYPE_IPV6)
            *want = 6;
        else if (et == FS_ETHERTYPE_PPPOE_SESSION || et == FS_ETHERTYPE_MPLS_1 ||
                 et == FS_ETHERTYPE_MPLS_2)
            return UNDECIDED; /* PPPoE, MPLS: dissect() */
        else
            return k->not_ip;
        return 0;
    }
    *l3 = 0;
    if (lt == FS_LINKTYPE_IPV4 || lt == FS_LINKTYPE_IPV6) {
        *want = lt == FS_LINKTYPE_IPV4 ? 4 : 6;
        return 0;
    }
    for (Py_ssize_t i = 0; i < n_raw; i++) {
        if (lt == raw[i]) {
            *want = 0;
            return 0;
        }
    }
    return UNDECIDED;
}

PyDoc_STRVAR(decode_headers_doc,
"decode_headers(data, start, caplen, linktype, raw_linktypes, codes,\n"
"               skip, ver, proto, l3, l4, payload, end, /)\n--\n\n"
"Decode the link, IP and TCP/UDP headers of every packet into the output\n"
"arrays (skip int8, ver int8, proto int16, offsets int64 from the frame\n"
"start); skip is 0 for a usable packet, a skip code, or -1 (undecided).\n"
"codes: (truncated, malformed, fragment, not_ip, not_tcp_udp).");

static PyObject *
decode_headers(PyObject *self, PyObject *args)
{
    PyObject *o_data, *o_in[3], *o_raw, *o_out[7];
    skip_codes k;
    if (!PyArg_ParseTuple(args, "OOOOO(bbbbb)OOOOOOO:decode_headers", &o_data,
                          &o_in[0], &o_in[1], &o_in[2], &o_raw, &k.truncated,
                          &k.malformed, &k.fragment, &k.not_ip, &k.not_tcp_udp,
                          &o_out[0], &o_out[1], &o_out[2], &o_out[3], &o_out[4],
                          &o_out[5], &o_out[6]))
        return NULL;
    static const Py_ssize_t out_size[7] = {1, 1, 2, 8, 8, 8, 8};
    static const char *in_name[3] = {"start", "caplen", "linktype"};
    static const char *out_name[7] = {"skip", "ver", "proto", "l3",
                                      "l4", "payload", "end"};
    PyObject *res = NULL;
    held h = {.n = 0};
    Py_buffer *data, *raw, *in[3], *out[7];
    Py_ssize_t n = PyObject_Length(o_in[0]);
    if (n < 0 || !(data = hold(&h, o_data, 0, 0, -1, "data")) ||
        !(raw = hold(&h, o_raw, 0, 8, -1, "raw_linktypes")))
        goto done;
    for (int i = 0; i < 3; i++)
        if (!(in[i] = hold(&h, o_in[i], 0, 8, n, in_name[i])))
            goto done;
    for (int i = 0; i < 7; i++)
        if (!(out[i] = hold(&h, o_out[i], 1, out_size[i], n, out_name[i])))
            goto done;
    const int64_t *start = in[0]->buf, *cap = in[1]->buf, *lt = in[2]->buf,
                  *raws = raw->buf;
    Py_ssize_t n_raw = raw->len / 8;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (start[i] < 0 || cap[i] < 0 || start[i] > data->len - cap[i]) {
            PyErr_Format(PyExc_IndexError, "packet %zd outside the data", i);
            goto done;
        }
    }
    int8_t *skip = out[0]->buf, *ver = out[1]->buf;
    int16_t *proto = out[2]->buf;
    int64_t *l3s = out[3]->buf, *l4s = out[4]->buf, *pays = out[5]->buf,
            *ends = out[6]->buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        const unsigned char *f = (const unsigned char *)data->buf + start[i];
        int64_t c = cap[i], l3 = 0;
        int want = -1;
        int code = link_stage(f, c, lt[i], raws, n_raw, &k, &l3, &want);
        if (code) {
            skip[i] = (int8_t)code;
            continue;
        }
        ip_result r;
        ip_stage(f, c, l3, want, &k, &r);
        /* IP in IP: up to four inner headers, then dissect(). */
        for (int depth = 0; r.tunnel && depth < 4; depth++) {
            l3 = r.l4;
            ip_stage(f, c, l3, r.proto == FS_IPPROTO_IPIP ? 4 : 6, &k, &r);
        }
        skip[i] = r.tunnel ? UNDECIDED : r.skip;
        if (skip[i] == 0) {
            ver[i] = r.ver;
            proto[i] = r.proto;
            l3s[i] = l3;
            l4s[i] = r.l4;
            pays[i] = r.pay;
            ends[i] = r.end;
        }
    }
    res = Py_NewRef(Py_None);
done:
    release_all(&h);
    return res;
}

/* ------------------------------------------------------------------------
 * SessionIndex: session ids of packet keys across the batches of a capture
 * (an open-addressing hash table of 5 x uint64 keys).  The pure-Python
 * version is _loops.SessionIndexPy (numpy grouping and a dict).
 */

typedef struct {
    PyObject_HEAD
    uint64_t *keys;   /* cap x 5 */
    int64_t *ids;     /* cap; -1: empty slot */
    int64_t *stamp;   /* cap: the call that last saw the session */
    int64_t *local;   /* cap: its group number within that call */
    Py_ssize_t cap, n;
    int64_t calls;
} SessionIndex;

static inline uint64_t
mix(const uint64_t *k)
{
    uint64_t h = k[0] * 0x9E3779B97F4A7C15ULL;
    h ^= k[1] * 0xBF58476D1CE4E5B9ULL;
    h ^= k[2] * 0x94D049BB133111EBULL;
    h ^= k[3] * 0xD6E8FEB86659FD93ULL;
    h ^= k[4];
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
    return h;
}

static int
index_alloc(SessionIndex *self, Py_ssize_t cap)
{
    self->keys = PyMem_Malloc(cap * 5 * sizeof(uint64_t));
    self->ids = PyMem_Malloc(cap * sizeof(int64_t));
    self->stamp = PyMem_Malloc(cap * sizeof(int64_t));
    self->local = PyMem_Malloc(cap * sizeof(int64_t));
    if (!self->keys || !self->ids || !self->stamp || !self->local) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < cap; i++)
        self->ids[i] = -1;
    self->cap = cap;
    return 0;
}

static void
index_free(SessionIndex *self)
{
    PyMem_Free(self->keys);
    PyMem_Free(self->ids);
    PyMem_Free(self->stamp);
    PyMem_Free(self->local);
    self->keys = NULL;
    self->ids = self->stamp = self->local = NULL;
}

static int
index_grow(SessionIndex *self)
{
    SessionIndex old = *self;
    if (index_alloc(self, 2 * old.cap) < 0) {
        index_free(self);
        *self = old;
        return -1;
    }
    size_t mask = (size_t)self->cap - 1;
    for (Py_ssize_t i = 0; i < old.cap; i++) {
        if (old.ids[i] < 0)
            continue;
        size_t j = mix(old.keys + 5 * i) & mask;
        while (self->ids[j] >= 0)
            j = (j + 1) & mask;
        memcpy(self->keys + 5 * j, old.keys + 5 * i, 5 * sizeof(uint64_t));
        self->ids[j] = old.ids[i];
        self->stamp[j] = old.stamp[i];
        self->local[j] = old.local[i];
    }
    index_free(&old);
    return 0;
}

static int
SessionIndex_init(SessionIndex *self, PyObject *args, PyObject *kwds)
{
    if (!PyArg_ParseTuple(args, ":SessionIndex"))
        return -1;
    index_free(self);
    self->n = 0;
    self->calls = 0;
    return index_alloc(self, 1024);
}

static void
SessionIndex_dealloc(SessionIndex *self)
{
    index_free(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
SessionIndex_len(SessionIndex *self)
{
    return self->n;
}

PyDoc_STRVAR(assign_doc,
"assign(keys, /)\n--\n\n"
"Group the rows of keys (n x 5 uint64) and number their sessions.\n\n"
"Returns (codes, first, ids) as int64 bytearrays: the group of each row\n"
"(groups numbered in order of first appearance), the first row of each\n"
"group, and each group's session id (new sessions numbered on from\n"
"len(index), in order of first appearance).");

static PyObject *
SessionIndex_assign(SessionIndex *self, PyObject *o_keys)
{
    if (self->ids == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "SessionIndex was not initialised");
        return NULL;
    }
    Py_buffer vk;
    if (PyObject_GetBuffer(o_keys, &vk, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    PyObject *codes = NULL, *first = NULL, *ids = NULL, *res = NULL;
    if (vk.itemsize != 8 || vk.len % 40) {
        PyErr_SetString(PyExc_TypeError, "keys must be a contiguous n x 5 uint64 array");
        goto done;
    }
    Py_ssize_t n = vk.len / 40, n_local = 0;
    codes = PyByteArray_FromStringAndSize(NULL, n * 8);
    first = PyByteArray_FromStringAndSize(NULL, n * 8);
    ids = PyByteArray_FromStringAndSize(NULL, n * 8);
    if (!codes || !first || !ids)
        goto done;
    int64_t *c = (int64_t *)PyByteArray_AS_STRING(codes);
    int64_t *f = (int64_t *)PyByteArray_AS_STRING(first);
    int64_t *g = (int64_t *)PyByteArray_AS_STRING(ids);
    const uint64_t *keys = vk.buf;
    int64_t call = ++self->calls;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (2 * (self->n + 1) > self->cap && index_grow(self) < 0)
            goto done;
        const uint64_t *k = keys + 5 * i;
        size_t mask = (size_t)self->cap - 1, j = mix(k) & mask;
        while (self->ids[j] >= 0 &&
               memcmp(self->keys + 5 * j, k, 5 * sizeof(uint64_t)) != 0)
            j = (j + 1) & mask;
        if (self->ids[j] < 0) { /* a new session */
            memcpy(self->keys + 5 * j, k, 5 * sizeof(uint64_t));
            self->ids[j] = self->n++;
            self->stamp[j] = 0;
        }
        if (self->stamp[j] != call) { /* first packet of it in this call */
            self->stamp[j] = call;
            self->local[j] = n_local;
            f[n_local] = i;
            g[n_local] = self->ids[j];
            n_local++;
        }
        c[i] = self->local[j];
    }
    if (PyByteArray_Resize(first, n_local * 8) < 0 ||
        PyByteArray_Resize(ids, n_local * 8) < 0)
        goto done;
    res = PyTuple_Pack(3, codes, first, ids);
done:
    Py_XDECREF(codes);
    Py_XDECREF(first);
    Py_XDECREF(ids);
    PyBuffer_Release(&vk);
    return res;
}

static PyMethodDef SessionIndex_methods[] = {
    {"assign", (PyCFunction)SessionIndex_assign, METH_O, assign_doc},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods SessionIndex_as_sequence = {
    .sq_length = (lenfunc)SessionIndex_len,
};

static PyTypeObject SessionIndexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sklearn_flowspectrum._speedups.SessionIndex",
    .tp_doc = PyDoc_STR("Session ids of packet keys, across calls (see assign)."),
    .tp_basicsize = sizeof(SessionIndex),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)SessionIndex_init,
    .tp_dealloc = (destructor)SessionIndex_dealloc,
    .tp_methods = SessionIndex_methods,
    .tp_as_sequence = &SessionIndex_as_sequence,
};

static PyMethodDef methods[] = {
    {"record_headers", record_headers, METH_VARARGS, record_headers_doc},
    {"pcapng_packets", pcapng_packets, METH_VARARGS, pcapng_packets_doc},
    {"slices", slices, METH_VARARGS, slices_doc},
    {"copy_ranges", copy_ranges, METH_VARARGS, copy_ranges_doc},
    {"zero_ranges", zero_ranges, METH_VARARGS, zero_ranges_doc},
    {"split", split, METH_VARARGS, split_doc},
    {"ipv4_strings", ipv4_strings, METH_O, ipv4_strings_doc},
    {"ipv6_strings", ipv6_strings, METH_VARARGS, ipv6_strings_doc},
    {"frame_lengths", frame_lengths, METH_O, frame_lengths_doc},
    {"join_frames", join_frames, METH_VARARGS, join_frames_doc},
    {"decode_headers", decode_headers, METH_VARARGS, decode_headers_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups",
    "Compiled loops of the fast path (see _loops.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&SessionIndexType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SessionIndexType);
    if (PyModule_AddObject(m, "SessionIndex", (PyObject *)&SessionIndexType) < 0) {
        Py_DECREF(&SessionIndexType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
