/* What inlink's C extensions (_linkwalk.c, _linkpack.c) share: growable byte buffers on the
 * Python allocator, and the slot offsets of a slots dataclass. Errors set a Python exception
 * and return -1.
 */

#ifndef INLINK_CUTIL_H
#define INLINK_CUTIL_H

#include <Python.h>
#include <structmember.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

static inline int buf_reserve(buf_t *b, size_t extra) {
    if (b->len + extra <= b->cap)
        return 0;
    if (extra > (size_t)PY_SSIZE_T_MAX - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap = cap > (size_t)PY_SSIZE_T_MAX / 2 ? b->len + extra : cap * 2;
    char *p = PyMem_Realloc(b->data, cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

static inline int buf_add(buf_t *b, const void *data, size_t n) {
    if (n == 0)
        return 0;
    if (b->len + n > b->cap && buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

static inline void buf_free(buf_t *b) {
    PyMem_Free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* The offsets of the slots `names` of `type` (a slots dataclass: plain object slots, not
   read-only when `writable`), for reading and filling its instances without attribute
   lookups. */
static inline int slot_offsets(PyObject *type, PyObject *names, Py_ssize_t *offsets,
                               Py_ssize_t n, int writable) {
    if (PyTuple_GET_SIZE(names) != n) {
        PyErr_Format(PyExc_ValueError, "%R has %zd fields, not %zd", type,
                     PyTuple_GET_SIZE(names), n);
        return -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *descr = PyObject_GetAttr(type, PyTuple_GET_ITEM(names, k));
        if (descr == NULL)
            return -1;
        int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
                 ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX &&
                 !(writable && (((PyMemberDescrObject *)descr)->d_member->flags & READONLY));
        if (ok)
            offsets[k] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%R field %zd is not a plain slot", type, k);
            return -1;
        }
    }
    return 0;
}

#endif
