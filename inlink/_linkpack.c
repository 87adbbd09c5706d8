/* Native fast path of inlink.index.rows.pack_fetches: a chunk's links as Arrow buffers.
 *
 * pack_fetches turns the live links of a group of fetches into the columns of one Arrow
 * batch, with two 64-bit XXH3 hashes per link (index.state.link_id and link_attr_hash).
 * In Python that is ~7 us a link: two f-strings, two hash calls, and a trip through
 * pa.array for each of 14 attributes. Here one pass over the Link objects fills
 *
 *   - the 14 attribute columns as Arrow buffers (validity bitmap, int32 offsets, UTF-8 data;
 *     bit-packed booleans; int32 counts), which pyarrow wraps without copying
 *     (pa.Array.from_buffers);
 *   - both hashes, by libxxhash's XXH3_64bits (the xxHash authors' library, loaded with
 *     dlopen from the name `configure` gives; without it the hashes are left to Python), with
 *     the GIL released.
 *
 * `hash_strings` hashes the strings of an Arrow string array from its buffers: the bulk
 * loader's identity and attribute texts (index.bulk.hash64_arrow).
 *
 * rows.py owns the rules (what is hashed, in what layout) and checks this file against its
 * Python twin before using it (docs/ingest.md, "Native packing"). Anything unusual (a lone
 * surrogate, a flag that is not a bool, a non-str text) makes `pack` return None and the
 * caller packs that chunk in Python, so both paths always give the same rows.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

/* libxxhash >= 0.8 (soname libxxhash.so.0): XXH3_64bits(input, length), whose output is
   stable from 0.8.0 on. */
typedef uint64_t (*xxh3_fn)(const void *, size_t);
static xxh3_fn xxh3;

/* Link: its type and the slot offsets of its 14 fields, in dataclass order. */
enum { F_TARGET_URL, F_TARGET_KEY, F_KIND, F_ANCHOR, F_NOFOLLOW, F_UGC, F_SPONSORED, F_ALT,
       F_IMAGE_URL, F_TEXT_PRE, F_TEXT_POST, F_LOCATION, F_LINKS_COUNT, F_HREFLANG,
       LINK_FIELDS };
static PyTypeObject *link_type;
static Py_ssize_t link_offset[LINK_FIELDS];

/* The columns, in rows._LINK_ATTR_NAMES order, and what each holds. */
enum { COL_STR, COL_BOOL, COL_INT };
static const struct {
    int field, type;
} COLUMNS[] = {
    {F_TARGET_KEY, COL_STR}, {F_TARGET_URL, COL_STR}, {F_KIND, COL_STR},
    {F_ANCHOR, COL_STR}, {F_ALT, COL_STR}, {F_IMAGE_URL, COL_STR},
    {F_NOFOLLOW, COL_BOOL}, {F_UGC, COL_BOOL}, {F_SPONSORED, COL_BOOL},
    {F_TEXT_PRE, COL_STR}, {F_TEXT_POST, COL_STR}, {F_LOCATION, COL_STR},
    {F_LINKS_COUNT, COL_INT}, {F_HREFLANG, COL_STR},
};
#define N_COLUMNS ((int)(sizeof(COLUMNS) / sizeof(COLUMNS[0])))

#define FIELD(link, k) (*(PyObject **)((char *)(link) + link_offset[k]))

/* ------------------------------------------------------------------ growable buffers */

#include "_cutil.h"

static inline int buf_byte(buf_t *b, char c) { return buf_add(b, &c, 1); }

static PyObject *buf_bytes(const buf_t *b) {
    return PyBytes_FromStringAndSize(b->data ? b->data : "", (Py_ssize_t)b->len);
}


/* One Arrow column being filled: `bits` is the validity bitmap of a string column or the
   values of a boolean one, `offsets` the int32 offsets (or the int32 values), `data` UTF-8. */
typedef struct {
    buf_t bits, offsets, data;
    Py_ssize_t nulls;
} column_t;

static inline int set_bit(buf_t *bits, Py_ssize_t i, int on) {
    if ((size_t)(i >> 3) >= bits->len && buf_byte(bits, 0) < 0)
        return -1;
    if (on)
        bits->data[i >> 3] |= (char)(1u << (i & 7));
    return 0;
}

/* ------------------------------------------------------------------ one link */

/* Outcome of reading a value: 0 ok, -1 a Python error, 1 "let Python do this chunk". */
enum { OK = 0, FAILED = -1, DECLINE = 1 };

/* The UTF-8 of a str (None: NULL with *n = 0). Declines anything else and a lone surrogate,
   which Python hashes with surrogatepass but stores with U+FFFD (rows._clean). */
static int utf8_of(PyObject *v, const char **s, Py_ssize_t *n) {
    if (v == Py_None) {
        *s = NULL;
        *n = 0;
        return OK;
    }
    if (!PyUnicode_Check(v))
        return DECLINE;
    *s = PyUnicode_AsUTF8AndSize(v, n);
    if (*s == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
            return FAILED;
        PyErr_Clear();
        return DECLINE;
    }
    return OK;
}

/* f"{value}" of a str or None, appended. */
static int add_text(buf_t *b, PyObject *v) {
    const char *s;
    Py_ssize_t n;
    int r = utf8_of(v, &s, &n);
    if (r != OK)
        return r;
    return s == NULL ? buf_add(b, "None", 4) : buf_add(b, s, (size_t)n);
}

static inline int64_t hash64(const uint8_t *text, size_t n) {
    /* the unsigned 64-bit value as a two's complement int64 (state.hash64's signed int) */
    return (int64_t)xxh3(n ? text : (const uint8_t *)"", n);
}

/* hash64 of n strings of `data`, string i spanning offsets[start + i] .. [start + i + 1]
   (int32 or int64 offsets: `width` 4 or 8), into out[i]; -1 when an offset falls outside
   `data` (nothing read there). Touches no Python object: call it without the GIL. */
static int hash_spans(const uint8_t *data, int64_t data_len, const char *offsets, int width,
                      Py_ssize_t start, Py_ssize_t n, char *out) {
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t a, b;
        if (width == 4) {
            int32_t a4, b4;
            memcpy(&a4, offsets + (start + i) * 4, 4);
            memcpy(&b4, offsets + (start + i + 1) * 4, 4);
            a = a4;
            b = b4;
        } else {
            memcpy(&a, offsets + (start + i) * 8, 8);
            memcpy(&b, offsets + (start + i + 1) * 8, 8);
        }
        if (a < 0 || b < a || b > data_len)
            return -1;
        int64_t h = hash64(data + a, (size_t)(b - a));
        memcpy(out + i * 8, &h, 8);
    }
    return 0;
}

/* Appends state.link_id's text: source \x1f kind \x1f target_key \x1f anchor \x1f (image_url or ""). */
static int id_text(buf_t *b, const char *src, Py_ssize_t src_n, PyObject *link) {
    static const int parts[] = {F_KIND, F_TARGET_KEY, F_ANCHOR, F_IMAGE_URL};
    if (buf_add(b, src, (size_t)src_n) < 0)
        return FAILED;
    for (int k = 0; k < 4; k++) {
        const char *s;
        Py_ssize_t n;
        int r = utf8_of(FIELD(link, parts[k]), &s, &n);
        if (r != OK)
            return r;
        if (s == NULL && parts[k] != F_IMAGE_URL)
            return DECLINE;       /* f"{None}" is "None": only image_url may be None */
        if (buf_byte(b, '\x1f') < 0 || buf_add(b, s, (size_t)n) < 0)
            return FAILED;
    }
    return OK;
}

static int flag_char(PyObject *v, char *c) {
    if (v == Py_True)
        *c = '1';
    else if (v == Py_False)
        *c = '0';
    else
        return DECLINE;           /* _D[flag] wants a bool */
    return OK;
}

/* Appends state.link_attr_hash's text: target_url \x1f nofollow ugc sponsored (0/1) \x1f alt
   \x1f text_pre \x1f text_post \x1f location \x1f links_count \x1f hreflang. */
static int attr_text(buf_t *b, PyObject *link) {
    int r = add_text(b, FIELD(link, F_TARGET_URL));
    if (r != OK)
        return r;
    char flags[4] = {'\x1f', 0, 0, 0};
    if ((r = flag_char(FIELD(link, F_NOFOLLOW), &flags[1])) != OK ||
        (r = flag_char(FIELD(link, F_UGC), &flags[2])) != OK ||
        (r = flag_char(FIELD(link, F_SPONSORED), &flags[3])) != OK)
        return r;
    if (buf_add(b, flags, 4) < 0)
        return FAILED;
    static const int texts[] = {F_ALT, F_TEXT_PRE, F_TEXT_POST, F_LOCATION};
    for (int k = 0; k < 4; k++) {
        if (buf_byte(b, '\x1f') < 0)
            return FAILED;
        if ((r = add_text(b, FIELD(link, texts[k]))) != OK)
            return r;
    }
    PyObject *count = FIELD(link, F_LINKS_COUNT);
    if (!PyLong_CheckExact(count))
        return DECLINE;
    long long c = PyLong_AsLongLong(count);
    if (c == -1 && PyErr_Occurred())
        return FAILED;
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "\x1f%lld\x1f", c);
    if (buf_add(b, digits, (size_t)n) < 0)
        return FAILED;
    return add_text(b, FIELD(link, F_HREFLANG));
}

/* Row i of column c from the link's field. */
static int add_value(column_t *col, int type, Py_ssize_t i, PyObject *v) {
    if (type == COL_BOOL) {
        char c;
        int r = flag_char(v, &c);
        return r != OK ? r : set_bit(&col->bits, i, c == '1');
    }
    if (type == COL_INT) {
        if (!PyLong_CheckExact(v))
            return DECLINE;
        long x = PyLong_AsLong(v);
        if ((x == -1 && PyErr_Occurred()) || x < INT32_MIN || x > INT32_MAX) {
            PyErr_Clear();
            return DECLINE;
        }
        int32_t x32 = (int32_t)x;
        return buf_add(&col->offsets, &x32, 4);
    }
    const char *s;
    Py_ssize_t n;
    int r = utf8_of(v, &s, &n);
    if (r != OK)
        return r;
    if (s == NULL)
        col->nulls++;
    else if (buf_add(&col->data, s, (size_t)n) < 0)
        return FAILED;
    if (col->data.len > INT32_MAX)
        return DECLINE;           /* beyond a string column's int32 offsets */
    int32_t end = (int32_t)col->data.len;
    if (set_bit(&col->bits, i, s != NULL) < 0 || buf_add(&col->offsets, &end, 4) < 0)
        return FAILED;
    return OK;
}

/* ------------------------------------------------------------------ pack */

static PyObject *column_result(column_t *col, int type) {
    if (type == COL_BOOL)
        return buf_bytes(&col->bits);
    if (type == COL_INT)
        return buf_bytes(&col->offsets);
    PyObject *validity = col->nulls ? buf_bytes(&col->bits) : Py_NewRef(Py_None);
    if (validity == NULL)
        return NULL;
    return Py_BuildValue("(NNNn)", validity, buf_bytes(&col->offsets), buf_bytes(&col->data),
                         col->nulls);
}

static PyObject *lw_pack(PyObject *self, PyObject *args) {
    PyObject *groups;
    int with_hashes;
    if (!PyArg_ParseTuple(args, "O!p", &PyList_Type, &groups, &with_hashes))
        return NULL;
    if (link_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_linkpack.configure() was not called");
        return NULL;
    }
    with_hashes = with_hashes && xxh3 != NULL;
    column_t cols[N_COLUMNS];
    memset(cols, 0, sizeof(cols));
    /* each link's id text and attribute text, with int64 end offsets after a leading 0 */
    buf_t ids = {0}, hashes = {0}, id_texts = {0}, id_ends = {0}, attr_texts = {0},
          attr_ends = {0};
    PyObject *result = NULL;
    int r = OK;
    Py_ssize_t row = 0;
    int32_t zero = 0;
    int64_t end = 0;
    for (int c = 0; c < N_COLUMNS; c++)
        if (COLUMNS[c].type == COL_STR && buf_add(&cols[c].offsets, &zero, 4) < 0)
            goto done;
    if (with_hashes && (buf_add(&id_ends, &end, 8) < 0 || buf_add(&attr_ends, &end, 8) < 0))
        goto done;

    for (Py_ssize_t g = 0; g < PyList_GET_SIZE(groups) && r == OK; g++) {
        PyObject *group = PyList_GET_ITEM(groups, g);
        if (!PyTuple_CheckExact(group) || PyTuple_GET_SIZE(group) != 2 ||
            !PyList_CheckExact(PyTuple_GET_ITEM(group, 1))) {
            PyErr_SetString(PyExc_TypeError, "a group is not a (source_key, [Link]) tuple");
            goto done;
        }
        const char *src;
        Py_ssize_t src_n;
        if ((r = utf8_of(PyTuple_GET_ITEM(group, 0), &src, &src_n)) != OK || src == NULL) {
            r = r == OK ? DECLINE : r;
            break;
        }
        PyObject *links = PyTuple_GET_ITEM(group, 1);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(links); i++, row++) {
            PyObject *link = PyList_GET_ITEM(links, i);
            if (!Py_IS_TYPE(link, link_type)) {
                r = DECLINE;
                break;
            }
            for (int c = 0; c < N_COLUMNS && r == OK; c++)
                r = add_value(&cols[c], COLUMNS[c].type, row, FIELD(link, COLUMNS[c].field));
            if (r == OK && with_hashes && (r = id_text(&id_texts, src, src_n, link)) == OK &&
                (r = buf_add(&id_ends, &(int64_t){(int64_t)id_texts.len}, 8)) == OK &&
                (r = attr_text(&attr_texts, link)) == OK)
                r = buf_add(&attr_ends, &(int64_t){(int64_t)attr_texts.len}, 8);
            if (r != OK)
                break;
        }
    }
    if (r == FAILED)
        goto done;
    if (r == DECLINE) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (with_hashes) {
        /* The hashing is most of the work and touches no Python object: other threads
           (the index writer) run meanwhile. */
        if (buf_reserve(&ids, (size_t)row * 8) < 0 || buf_reserve(&hashes, (size_t)row * 8) < 0)
            goto done;
        Py_BEGIN_ALLOW_THREADS
        hash_spans((const uint8_t *)id_texts.data, (int64_t)id_texts.len, id_ends.data, 8, 0,
                   row, ids.data);
        hash_spans((const uint8_t *)attr_texts.data, (int64_t)attr_texts.len, attr_ends.data,
                   8, 0, row, hashes.data);
        Py_END_ALLOW_THREADS
        ids.len = hashes.len = (size_t)row * 8;
    }
    PyObject *columns = PyTuple_New(N_COLUMNS);
    if (columns == NULL)
        goto done;
    for (int c = 0; c < N_COLUMNS; c++) {
        PyObject *item = column_result(&cols[c], COLUMNS[c].type);
        if (item == NULL) {
            Py_DECREF(columns);
            goto done;
        }
        PyTuple_SET_ITEM(columns, c, item);
    }
    if (with_hashes)
        result = Py_BuildValue("(nNNN)", row, buf_bytes(&ids), buf_bytes(&hashes), columns);
    else
        result = Py_BuildValue("(nOON)", row, Py_None, Py_None, columns);

done:
    for (int c = 0; c < N_COLUMNS; c++) {
        buf_free(&cols[c].bits);
        buf_free(&cols[c].offsets);
        buf_free(&cols[c].data);
    }
    buf_free(&ids);
    buf_free(&hashes);
    buf_free(&id_texts);
    buf_free(&id_ends);
    buf_free(&attr_texts);
    buf_free(&attr_ends);
    return result;
}

/* hash_strings(offsets, data, start, n, offset_width) -> bytes: state.hash64 of each of n
   strings of an Arrow string (width 4) or large_string (width 8) array, from its offsets
   and data buffers (the array's own offset `start`; no nulls: the caller checks). The bulk
   loader's hash step (index.bulk.hash64_arrow). */
static PyObject *lw_hash_strings(PyObject *self, PyObject *args) {
    Py_buffer offsets, data;
    Py_ssize_t start, n;
    int width;
    if (!PyArg_ParseTuple(args, "y*y*nni", &offsets, &data, &start, &n, &width))
        return NULL;
    PyObject *out = NULL;
    if (xxh3 == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "libxxhash is not loaded (configure)");
        goto done;
    }
    if ((width != 4 && width != 8) || start < 0 || n < 0 ||
        (size_t)offsets.len < ((size_t)start + (size_t)n + 1) * (size_t)width) {
        PyErr_SetString(PyExc_ValueError, "offsets do not cover the strings");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, n * 8);
    if (out == NULL)
        goto done;
    int bad;
    Py_BEGIN_ALLOW_THREADS
    bad = hash_spans((const uint8_t *)data.buf, (int64_t)data.len, (const char *)offsets.buf,
                     width, start, n, PyBytes_AS_STRING(out));
    Py_END_ALLOW_THREADS
    if (bad) {
        Py_CLEAR(out);
        PyErr_SetString(PyExc_ValueError, "a string's offsets are outside the data buffer");
    }
done:
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return out;
}

/* ------------------------------------------------------------------ configuration */

static PyObject *lw_configure(PyObject *self, PyObject *args) {
    PyObject *type, *names;
    const char *lib_path = NULL;
    if (!PyArg_ParseTuple(args, "O!O!z", &PyType_Type, &type, &PyTuple_Type, &names,
                          &lib_path))
        return NULL;
    Py_ssize_t offsets[LINK_FIELDS];
    if (slot_offsets(type, names, offsets, LINK_FIELDS, 0) < 0)
        return NULL;
    xxh3_fn fn = NULL;
    if (lib_path != NULL) {
        void *lib = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
        if (lib == NULL)
            return PyErr_Format(PyExc_ImportError, "cannot load %s: %s", lib_path, dlerror());
        fn = (xxh3_fn)dlsym(lib, "XXH3_64bits");
        if (fn == NULL)
            return PyErr_Format(PyExc_ImportError, "%s has no XXH3_64bits", lib_path);
    }
    Py_INCREF(type);
    Py_XSETREF(link_type, (PyTypeObject *)type);
    memcpy(link_offset, offsets, sizeof(offsets));
    xxh3 = fn;
    return PyBool_FromLong(xxh3 != NULL);
}

static PyMethodDef methods[] = {
    {"configure", lw_configure, METH_VARARGS,
     "configure(Link, field_names, libxxhash_path | None) -> whether pack can hash."},
    {"pack", lw_pack, METH_VARARGS,
     "pack([(source_key, [Link, ...]), ...], hashes) -> (rows, ids | None, attr hashes | "
     "None, columns) or None when Python must pack this chunk (see rows.pack_fetches)."},
    {"hash_strings", lw_hash_strings, METH_VARARGS,
     "hash_strings(offsets, data, start, n, offset_width) -> bytes of n int64 hashes."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_linkpack",
    "Native fast path of inlink.index.rows.pack_fetches (see docs/ingest.md).", -1, methods};

PyMODINIT_FUNC PyInit__linkpack(void) { return PyModule_Create(&module); }
