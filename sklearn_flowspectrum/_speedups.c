/*
 * Compiled versions of the three per-item byte loops of the fast path.
 *
 * Everything else of the fast path is numpy; these loops are the ones numpy
 * cannot express (following record lengths) or expresses at a cost of one
 * Python step per packet.  sklearn_flowspectrum/_byteops.py holds the
 * pure-Python versions they must agree with (and falls back to them when this
 * module was not built); tests/test_byteops.py compares the two.
 *
 * Authors: The sklearn_flowspectrum developers
 * SPDX-License-Identifier: BSD-3-Clause
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Native-endian int64 array from any buffer whose item size is 8 (numpy
 * int64 arrays, contiguous). */
static int
get_int64s(PyObject *obj, Py_buffer *view, const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (view->itemsize != 8 || view->format == NULL ||
        (strcmp(view->format, "q") != 0 && strcmp(view->format, "l") != 0 &&
         strcmp(view->format, "<q") != 0 && strcmp(view->format, "=q") != 0)) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous int64 array", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(record_offsets_doc,
"record_offsets(buf, big_endian, /)\n--\n\n"
"Offsets (int64 bytes) of the 16-byte pcap record headers in buf that fit\n"
"whole, following each header's incl_len from offset 0.");

static PyObject *
record_offsets(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    int big;
    if (!PyArg_ParseTuple(args, "y*p:record_offsets", &buf, &big))
        return NULL;
    const unsigned char *p = (const unsigned char *)buf.buf;
    Py_ssize_t size = buf.len;
    Py_ssize_t cap = 1024, n = 0;
    int64_t *out = PyMem_Malloc(cap * sizeof(int64_t));
    if (out == NULL) {
        PyBuffer_Release(&buf);
        return PyErr_NoMemory();
    }
    int64_t off = 0;
    /* off + 16 <= size: the header fits whole (the body may not). */
    while (off <= (int64_t)size - 16) {
        if (n == cap) {
            cap *= 2;
            int64_t *grown = PyMem_Realloc(out, cap * sizeof(int64_t));
            if (grown == NULL) {
                PyMem_Free(out);
                PyBuffer_Release(&buf);
                return PyErr_NoMemory();
            }
            out = grown;
        }
        out[n++] = off;
        const unsigned char *h = p + off + 8;
        uint32_t incl = big ? ((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
                               (uint32_t)h[2] << 8 | h[3])
                            : ((uint32_t)h[3] << 24 | (uint32_t)h[2] << 16 |
                               (uint32_t)h[1] << 8 | h[0]);
        off += 16 + (int64_t)incl;
    }
    PyBuffer_Release(&buf);
    PyObject *res = PyBytes_FromStringAndSize((const char *)out, n * sizeof(int64_t));
    PyMem_Free(out);
    return res;
}

PyDoc_STRVAR(slices_doc,
"slices(buf, starts, lengths, /)\n--\n\n"
"List of bytes objects buf[starts[i] : starts[i] + lengths[i]].");

static PyObject *
slices(PyObject *self, PyObject *args)
{
    Py_buffer buf, vs, vl;
    PyObject *o_starts, *o_lengths;
    if (!PyArg_ParseTuple(args, "y*OO:slices", &buf, &o_starts, &o_lengths))
        return NULL;
    if (get_int64s(o_starts, &vs, "starts") < 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    if (get_int64s(o_lengths, &vl, "lengths") < 0) {
        PyBuffer_Release(&vs);
        PyBuffer_Release(&buf);
        return NULL;
    }
    PyObject *list = NULL;
    Py_ssize_t n = vs.len / 8;
    if (vl.len / 8 != n) {
        PyErr_SetString(PyExc_ValueError, "starts and lengths differ in length");
        goto done;
    }
    const int64_t *st = vs.buf, *ln = vl.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (st[i] < 0 || ln[i] < 0 || st[i] > (int64_t)buf.len - ln[i]) {
            PyErr_Format(PyExc_IndexError, "slice %zd [%lld, +%lld) outside the "
                         "buffer of %zd bytes", i, (long long)st[i],
                         (long long)ln[i], buf.len);
            goto done;
        }
    }
    list = PyList_New(n);
    if (list == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)buf.buf + st[i], ln[i]);
        if (b == NULL) {
            Py_CLEAR(list);
            goto done;
        }
        PyList_SET_ITEM(list, i, b);
    }
done:
    PyBuffer_Release(&vl);
    PyBuffer_Release(&vs);
    PyBuffer_Release(&buf);
    return list;
}

PyDoc_STRVAR(copy_ranges_doc,
"copy_ranges(dst, dst_starts, src, src_starts, lengths, /)\n--\n\n"
"dst[dst_starts[i] : +lengths[i]] = src[src_starts[i] : +lengths[i]] for all i.");

static PyObject *
copy_ranges(PyObject *self, PyObject *args)
{
    Py_buffer dst, src, vd, vs, vl;
    PyObject *o_d, *o_s, *o_l;
    if (!PyArg_ParseTuple(args, "w*Oy*OO:copy_ranges", &dst, &o_d, &src, &o_s, &o_l))
        return NULL;
    PyObject *res = NULL;
    int got = 0;
    if (get_int64s(o_d, &vd, "dst_starts") < 0)
        goto release;
    got = 1;
    if (get_int64s(o_s, &vs, "src_starts") < 0)
        goto release;
    got = 2;
    if (get_int64s(o_l, &vl, "lengths") < 0)
        goto release;
    got = 3;
    Py_ssize_t n = vl.len / 8;
    if (vd.len / 8 != n || vs.len / 8 != n) {
        PyErr_SetString(PyExc_ValueError, "index arrays differ in length");
        goto release;
    }
    const int64_t *d = vd.buf, *s = vs.buf, *l = vl.buf;
    /* Check every range before writing any, so an error leaves dst alone. */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (l[i] < 0 || d[i] < 0 || s[i] < 0 || d[i] > (int64_t)dst.len - l[i] ||
            s[i] > (int64_t)src.len - l[i]) {
            PyErr_Format(PyExc_IndexError, "range %zd outside its buffer", i);
            goto release;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++)
        memmove((char *)dst.buf + d[i], (const char *)src.buf + s[i], (size_t)l[i]);
    res = Py_NewRef(Py_None);
release:
    if (got >= 3)
        PyBuffer_Release(&vl);
    if (got >= 2)
        PyBuffer_Release(&vs);
    if (got >= 1)
        PyBuffer_Release(&vd);
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return res;
}

static PyMethodDef methods[] = {
    {"record_offsets", record_offsets, METH_VARARGS, record_offsets_doc},
    {"slices", slices, METH_VARARGS, slices_doc},
    {"copy_ranges", copy_ranges, METH_VARARGS, copy_ranges_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups",
    "Compiled byte loops of the fast path (see _byteops.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
