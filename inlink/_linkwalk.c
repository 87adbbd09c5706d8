/* Native fast path of inlink.extract._walk: the per-link DOM walk in C.
 *
 * Reads the Lexbor tree that selectolax built (through the lexbor functions selectolax's
 * compiled module exports, and a minimal node layout verified at run time by `probe`) and
 * resolves hrefs with ada's C API (the library ada-url's cffi module already loaded). URL
 * identity is not decided here: keys come from inlink.urls (passed in by `configure`).
 * inlink/extract.py owns the rules; this file must give exactly what `_walk` gives, and
 * extract.py checks that before using it (docs/extract.md, "Native fast path").
 */

#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------ foreign declarations */

/* lxb_dom_node_t as documented in selectolax's lexbor.pxd (only fields read here). */
typedef struct lw_node lw_node;
struct lw_node {
    void *events;            /* lxb_dom_event_target_t */
    uintptr_t local_name;    /* tag id */
    uintptr_t prefix;
    uintptr_t ns;
    void *owner_document;
    lw_node *next;
    lw_node *prev;
    lw_node *parent;
    lw_node *first_child;
    lw_node *last_child;
    void *user;
    int type;                /* lxb_dom_node_type_t */
};

/* lxb_dom_character_data_t: the node, then a lexbor_str_t. */
typedef struct {
    lw_node node;
    unsigned char *data;
    size_t length;
} lw_chardata;

typedef void lw_attr;

#define LW_ELEMENT 1

static lw_attr *(*lxb_first_attr)(void *);
static lw_attr *(*lxb_next_attr)(lw_attr *);
static const unsigned char *(*lxb_attr_local_name)(lw_attr *, size_t *);
static const unsigned char *(*lxb_attr_qualified_name)(lw_attr *, size_t *);
static const unsigned char *(*lxb_attr_value)(lw_attr *, size_t *);
static uintptr_t (*lxb_tag_id)(lw_node *);
static lw_node *(*lxb_next)(lw_node *);
static lw_node *(*lxb_prev)(lw_node *);
static lw_node *(*lxb_parent)(lw_node *);
static lw_node *(*lxb_first_child)(lw_node *);
static lw_node *(*lxb_last_child)(lw_node *);
static int (*lxb_type)(lw_node *);

typedef void *ada_url;
typedef struct {
    const char *data;
    size_t length;
} ada_string;

static ada_url (*ada_parse_with_base)(const char *, size_t, const char *, size_t);
static bool (*ada_is_valid)(ada_url);
static ada_string (*ada_get_href)(ada_url);
static void (*ada_free)(ada_url);

/* ------------------------------------------------------------------ configuration */

enum { T_TEXT, T_A, T_AREA, T_LINK, T_META, T_BASE, T_TITLE, T_IMG, T_SCRIPT, T_STYLE,
       T_TEMPLATE, T_NOFRAMES, T_COUNT };
static const char *const TAG_NAMES[T_COUNT] = {
    "-text", "a", "area", "link", "meta", "base", "title", "img", "script", "style",
    "template", "noframes"};

#define MAX_SEMANTIC 32
static struct {
    int ready;
    uintptr_t tag[T_COUNT];
    uintptr_t semantic_id[MAX_SEMANTIC];
    PyObject *semantic_name[MAX_SEMANTIC];
    int n_semantic;
    PyObject *kind_anchor, *kind_image, *kind_meta, *kind_canonical;
    PyObject *value_anchor, *value_image;
    PyObject *key_fn, *invalid_url, *meta_fn, *link_fn, *refresh_fn, *add_head_fn;
    PyObject *collapse_fn, *parse_url_fn, *domain_fn;
    Py_ssize_t max_url_length;
} C;

/* Link: the type and the slot offsets of its 14 fields, in dataclass order. */
#define LINK_FIELDS 14
static PyTypeObject *link_type;
static Py_ssize_t link_offset[LINK_FIELDS];

static PyObject *S_empty, *S_lstrip, *S_rstrip, *S_sep, *S_one;

/* A Link with its slots filled (configure_links checked they are plain slots). */
static PyObject *new_link(PyObject *const values[LINK_FIELDS]) {
    PyObject *link = link_type->tp_alloc(link_type, 0);
    if (link == NULL)
        return NULL;
    for (int k = 0; k < LINK_FIELDS; k++) {
        Py_INCREF(values[k]);
        *(PyObject **)((char *)link + link_offset[k]) = values[k];
    }
    return link;
}

/* ------------------------------------------------------------------ small buffers */

#include "_cutil.h"

/* A str of bytes the caller knows are ASCII, without running the UTF-8 decoder over them. */
static PyObject *ascii_str(const char *s, size_t n) {
    PyObject *r = PyUnicode_New((Py_ssize_t)n, 127);
    if (r != NULL && n > 0)
        memcpy(PyUnicode_DATA(r), s, n);
    return r;
}

/* ------------------------------------------------------------------ whitespace collapsing
 *
 * Python's `" ".join(text.split())` over UTF-8 input fed in pieces, with an optional stop once
 * more than `stop` code points are out (a prefix of the collapsed text never changes when text
 * is appended). Whitespace is Py_UNICODE_ISSPACE, exactly what str.split() uses. Invalid UTF-8
 * sets `bad`: the caller then redoes the work through Python's "replace" decoder.
 */

typedef struct {
    buf_t out;
    Py_ssize_t chars;
    Py_ssize_t stop;    /* < 0: never stop */
    int pending_space;
    int done;
    int bad;
    int nonascii;       /* a non-ASCII character was output: bytes != code points */
    unsigned char carry[4];
    int carry_len;
} collapser;

static void col_init(collapser *c, Py_ssize_t stop) {
    memset(c, 0, sizeof(*c));
    c->stop = stop;
}

/* col_init keeping the output buffer (scratch collapsers reused for a whole walk). */
static inline void col_reset(collapser *c, Py_ssize_t stop) {
    buf_t keep = c->out;
    memset(c, 0, sizeof(*c));
    c->out = keep;
    c->out.len = 0;
    c->stop = stop;
}

/* Length of the UTF-8 sequence a lead byte starts; 0 when it cannot start one. */
static inline int utf8_len(unsigned char b) {
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

/* Decode one complete sequence of length n (lead already checked); -1 when invalid. */
static inline long utf8_decode(const unsigned char *s, int n) {
    unsigned char b0 = s[0];
    if (n == 2) {
        if ((s[1] & 0xC0) != 0x80) return -1;
        return ((long)(b0 & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (n == 3) {
        unsigned char lo = 0x80, hi = 0xBF;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;  /* no surrogates, as Python's decoder */
        if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80) return -1;
        return ((long)(b0 & 0x0F) << 12) | ((long)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
    if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return -1;
    return ((long)(b0 & 0x07) << 18) | ((long)(s[1] & 0x3F) << 12) |
           ((long)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

static inline int col_char(collapser *c, const unsigned char *s, int n, long cp) {
    if (Py_UNICODE_ISSPACE((Py_UCS4)cp)) {
        if (c->chars > 0)
            c->pending_space = 1;
        return 0;
    }
    c->nonascii |= cp >= 0x80;
    if (c->pending_space) {
        if (buf_add(&c->out, " ", 1) < 0) return -1;
        c->chars++;
        c->pending_space = 0;
    }
    if (buf_add(&c->out, s, (size_t)n) < 0) return -1;
    c->chars++;
    if (c->stop >= 0 && c->chars > c->stop)
        c->done = 1;
    return 0;
}

/* ASCII whitespace as str.split() sees it (filled from Py_UNICODE_ISSPACE at import). */
static unsigned char ws_ascii[128];

/* Eight bytes that collapse to themselves: printable ASCII or " " (nothing below 0x20, no
   high bit) without two spaces in a row. Exact bit tests, no false positives. */
static inline int plain8(uint64_t v) {
    const uint64_t hi = 0x8080808080808080ULL, low7 = 0x7F7F7F7F7F7F7F7FULL;
    if (v & hi)
        return 0;
    if (~((v & low7) + 0x6060606060606060ULL) & hi)  /* a byte below 0x20 */
        return 0;
    uint64_t x = v ^ 0x2020202020202020ULL;          /* spaces become zero bytes */
    uint64_t sp = ~(((x & low7) + low7) | x) & hi;   /* the high bit of each space */
    return (sp & (sp << 8)) == 0;
}

/* Collapse the ASCII bytes at the start of s[0:n] into c without a branch per character:
   every byte is written (whitespace as " ") and the write position advances unless it is
   whitespace after whitespace. A pending space is written first and a trailing one taken
   back, so the state afterwards is what the character-at-a-time steps leave. Stops at the
   first non-ASCII byte; returns the bytes read. Room for n + 1 bytes must be reserved. */
static size_t col_ascii(collapser *c, const unsigned char *s, size_t n) {
    char *o = c->out.data + c->out.len;
    size_t k = 0, i = 0;
    unsigned prev = c->chars == 0 || c->pending_space;
    if (c->pending_space)
        o[k++] = ' ';
    for (; i < n; i++) {
        /* common prose: eight bytes at a time, copied as they are */
        while (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (!plain8(v) || (prev && s[i] == ' '))
                break;
            memcpy(o + k, s + i, 8);
            k += 8;
            i += 8;
            prev = s[i - 1] == ' ';
        }
        if (i >= n)
            break;
        unsigned char ch = s[i];
        if (ch >= 0x80)
            break;
        unsigned sp = ws_ascii[ch];
        o[k] = sp ? ' ' : (char)ch;
        k += !(sp & prev);
        prev = sp;
    }
    c->pending_space = 0;
    if (k > 0 && o[k - 1] == ' ') {
        k--;
        c->pending_space = 1;
    }
    c->out.len += k;
    c->chars += (Py_ssize_t)k;
    if (c->stop >= 0 && c->chars > c->stop)
        c->done = 1;
    return i;
}

static int col_feed(collapser *c, const unsigned char *s, size_t n) {
    size_t i = 0;
    if (c->bad || c->done)
        return 0;
    /* output never exceeds input + one space + a carried sequence, nor (with a stop)
       stop + 1 characters of at most 4 bytes each */
    size_t want = n + 8;
    if (c->stop >= 0 && want > (size_t)(c->stop + 2) * 4 + 8)
        want = (size_t)(c->stop + 2) * 4 + 8;
    if (c->out.len + want > c->out.cap && buf_reserve(&c->out, want) < 0)
        return -1;
    if (c->carry_len) {
        int need = utf8_len(c->carry[0]);
        while (c->carry_len < need && i < n)
            c->carry[c->carry_len++] = s[i++];
        if (c->carry_len < need)
            return 0;
        long cp = utf8_decode(c->carry, need);
        c->carry_len = 0;
        if (cp < 0) {
            c->bad = 1;
            return 0;
        }
        if (col_char(c, c->carry, need, cp) < 0) return -1;
    }
    while (i < n && !c->done) {
        unsigned char b = s[i];
        if (b < 0x80) {
            /* ASCII: branch-free, at most what can still be kept (at least one byte) */
            size_t m = n - i;
            if (c->stop >= 0) {
                Py_ssize_t room = c->stop + 1 - c->chars - c->pending_space;
                if (room < 1)
                    room = 1;
                if ((size_t)room < m)
                    m = (size_t)room;
            }
            if (c->out.len + m + 1 > c->out.cap && buf_reserve(&c->out, m + 1) < 0)
                return -1;
            i += col_ascii(c, s + i, m);
            continue;
        }
        int len = utf8_len(b);
        if (len == 0) {
            c->bad = 1;
            return 0;
        }
        if (i + (size_t)len > n) {
            /* a sequence split across pieces: only ever the case for invalid input, but
               text() joins the bytes of text nodes before decoding, so carry it over */
            for (size_t k = i; k < n; k++) {
                if (k > i && (s[k] & 0xC0) != 0x80) {
                    c->bad = 1;
                    return 0;
                }
                c->carry[c->carry_len++] = s[k];
            }
            return 0;
        }
        long cp = utf8_decode(s + i, len);
        if (cp < 0) {
            c->bad = 1;
            return 0;
        }
        if (col_char(c, s + i, len, cp) < 0) return -1;
        i += (size_t)len;
    }
    return 0;
}

/* End of a unit Python decodes on its own (one text() call): a cut sequence is invalid. */
static void col_end_unit(collapser *c) {
    if (c->carry_len && !c->done)
        c->bad = 1;
    c->carry_len = 0;
}

/* Byte offset just after the first `n` code points of valid UTF-8. */
static size_t utf8_prefix(const char *s, size_t len, Py_ssize_t n) {
    size_t i = 0;
    while (i < len && n > 0) {
        i += (size_t)utf8_len((unsigned char)s[i]);
        n--;
    }
    return i > len ? len : i;
}

/* The first `cap` code points of the collapsed text, as str; rstrip when asked. */
static PyObject *col_head(collapser *c, Py_ssize_t cap, int rstrip) {
    size_t end = c->out.len;
    if (cap >= 0 && c->chars > cap)
        end = c->nonascii ? utf8_prefix(c->out.data, c->out.len, cap) : (size_t)cap;
    while (rstrip && end > 0 && c->out.data[end - 1] == ' ')
        end--;
    if (!c->nonascii)
        return ascii_str(c->out.data, end);
    return PyUnicode_DecodeUTF8(c->out.data ? c->out.data : "", (Py_ssize_t)end, "strict");
}

/* ------------------------------------------------------------------ DOM helpers */

static inline uintptr_t tag_of(lw_node *n) { return n->local_name; }
static inline int is_text(lw_node *n) { return n->local_name == C.tag[T_TEXT]; }
static inline int is_element(lw_node *n) { return n->type == LW_ELEMENT; }

/* Next node in document order within `root`'s subtree (root excluded), or NULL. */
static inline lw_node *next_in(lw_node *node, lw_node *root) {
    if (node->first_child)
        return node->first_child;
    while (node != NULL && node != root && node->next == NULL)
        node = node->parent;
    if (node == root || node == NULL)
        return NULL;
    return node->next;
}

static int name_is(const unsigned char *name, size_t len, const char *want) {
    size_t n = strlen(want);
    return name != NULL && len == n && memcmp(name, want, n) == 0;
}

/* attributes.get(name) as selectolax's .attributes gives it: keyed by qualified name,
   the last duplicate wins; *found=0 when absent, value NULL for a valueless attribute. */
static const unsigned char *attr_get(lw_node *el, const char *name, size_t *vlen, int *found) {
    const unsigned char *value = NULL;
    *found = 0;
    *vlen = 0;
    if (!is_element(el))
        return NULL;
    for (lw_attr *a = lxb_first_attr(el); a != NULL; a = lxb_next_attr(a)) {
        size_t qlen = 0;
        const unsigned char *q = lxb_attr_qualified_name(a, &qlen);
        if (name_is(q, qlen, name)) {
            size_t l = 0;
            value = lxb_attr_value(a, &l);
            *vlen = value ? l : 0;
            *found = 1;
        }
    }
    return value;
}

/* The CSS [name] test Lexbor's selector engine applies: by local name. */
static int has_attr_local(lw_node *el, const char *name) {
    for (lw_attr *a = lxb_first_attr(el); a != NULL; a = lxb_next_attr(a)) {
        size_t len = 0;
        const unsigned char *l = lxb_attr_local_name(a, &len);
        if (name_is(l, len, name))
            return 1;
    }
    return 0;
}

static PyObject *decode(const unsigned char *s, size_t n) {
    return PyUnicode_DecodeUTF8((const char *)(s ? s : (const unsigned char *)""),
                                (Py_ssize_t)n, "replace");
}

/* attributes.get(name) as a new reference: str or None. */
static PyObject *attr_str(lw_node *el, const char *name) {
    size_t n;
    int found;
    const unsigned char *v = attr_get(el, name, &n, &found);
    if (v == NULL)
        Py_RETURN_NONE;
    return decode(v, n);
}

/* node.attributes */
static PyObject *attr_dict(lw_node *el) {
    PyObject *d = PyDict_New();
    if (d == NULL || !is_element(el))
        return d;
    for (lw_attr *a = lxb_first_attr(el); a != NULL; a = lxb_next_attr(a)) {
        size_t qlen = 0, vlen = 0;
        const unsigned char *q = lxb_attr_qualified_name(a, &qlen);
        const unsigned char *v = lxb_attr_value(a, &vlen);
        PyObject *key = decode(q, q ? qlen : 0);
        PyObject *val = v ? decode(v, vlen) : (Py_INCREF(Py_None), Py_None);
        if (key == NULL || val == NULL || PyDict_SetItem(d, key, val) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(val);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(val);
    }
    return d;
}

/* Feed node.text() (the node's own data for a text node, else its descendants' text). */
static int feed_text(collapser *c, lw_node *node) {
    if (is_text(node)) {
        lw_chardata *t = (lw_chardata *)node;
        return col_feed(c, t->data, t->data ? t->length : 0);
    }
    for (lw_node *n = node->first_child; n != NULL && !c->done && !c->bad; n = next_in(n, node)) {
        if (is_text(n)) {
            lw_chardata *t = (lw_chardata *)n;
            if (t->data && col_feed(c, t->data, t->length) < 0)
                return -1;
        }
    }
    return 0;
}

/* node.text() as bytes appended to b. */
static int text_bytes(buf_t *b, lw_node *node) {
    if (is_text(node)) {
        lw_chardata *t = (lw_chardata *)node;
        return t->data ? buf_add(b, t->data, t->length) : 0;
    }
    for (lw_node *n = node->first_child; n != NULL; n = next_in(n, node)) {
        if (is_text(n)) {
            lw_chardata *t = (lw_chardata *)n;
            if (t->data && buf_add(b, t->data, t->length) < 0)
                return -1;
        }
    }
    return 0;
}

/* node.text() as str */
static PyObject *text_str(lw_node *node) {
    buf_t b = {0};
    if (text_bytes(&b, node) < 0) {
        buf_free(&b);
        return NULL;
    }
    PyObject *s = decode((const unsigned char *)b.data, b.len);
    buf_free(&b);
    return s;
}

/* collapse(s)[:cap] (cap < 0: no cap) through Python: the slow path for invalid UTF-8. */
static PyObject *py_collapse_head(PyObject *s, Py_ssize_t cap) {
    PyObject *col = PyObject_CallOneArg(C.collapse_fn, s);
    if (col == NULL || cap < 0 || PyUnicode_GET_LENGTH(col) <= cap)
        return col;
    PyObject *cut = PyUnicode_Substring(col, 0, cap);
    Py_DECREF(col);
    return cut;
}

/* collapse(text)[:cap] of raw UTF-8 bytes (an attribute value). */
static PyObject *collapse_bytes(const unsigned char *s, size_t n, Py_ssize_t cap) {
    collapser c;
    col_init(&c, cap);
    if (col_feed(&c, s, n) < 0) {
        buf_free(&c.out);
        return NULL;
    }
    col_end_unit(&c);
    PyObject *r;
    if (c.bad) {
        PyObject *str = decode(s, n);
        r = str ? py_collapse_head(str, cap) : NULL;
        Py_XDECREF(str);
    } else {
        r = col_head(&c, cap, 0);
    }
    buf_free(&c.out);
    return r;
}

/* collapse(node.text())[:cap] */
static PyObject *collapsed_text(lw_node *node, Py_ssize_t cap) {
    collapser c;
    col_init(&c, cap);
    if (feed_text(&c, node) < 0) {
        buf_free(&c.out);
        return NULL;
    }
    col_end_unit(&c);
    PyObject *r;
    if (c.bad) {
        PyObject *str = text_str(node);
        r = str ? py_collapse_head(str, cap) : NULL;
        Py_XDECREF(str);
    } else {
        r = col_head(&c, cap, 0);
    }
    buf_free(&c.out);
    return r;
}

/* Siblings whose text counts for text_pre/text_post: text nodes and elements other than
   script/style/template/noframes (comments and doctypes have no text). */
static inline int context_sibling(lw_node *s) {
    if (is_text(s))
        return 1;
    if (!is_element(s))
        return 0;
    uintptr_t t = tag_of(s);
    return t != C.tag[T_SCRIPT] && t != C.tag[T_STYLE] && t != C.tag[T_TEMPLATE] &&
           t != C.tag[T_NOFRAMES];
}

/* The Python-level reading of _context for invalid UTF-8: every allowed sibling's text()
   joined in document order, collapsed, cut and stripped. */
static PyObject *context_slow(lw_node *node, int forward, Py_ssize_t limit, long budget) {
    PyObject *parts = PyList_New(0);
    if (parts == NULL)
        return NULL;
    lw_node *sib = forward ? node->next : node->prev;
    for (; sib != NULL && budget > 0; budget--, sib = forward ? sib->next : sib->prev) {
        if (!context_sibling(sib))
            continue;
        PyObject *t = text_str(sib);
        if (t == NULL || PyList_Append(parts, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(parts);
            return NULL;
        }
        Py_DECREF(t);
    }
    if (!forward && PyList_Reverse(parts) < 0) {
        Py_DECREF(parts);
        return NULL;
    }
    PyObject *joined = PyUnicode_Join(S_empty, parts);
    Py_DECREF(parts);
    if (joined == NULL)
        return NULL;
    PyObject *col = PyObject_CallOneArg(C.collapse_fn, joined);
    Py_DECREF(joined);
    if (col == NULL)
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(col);
    PyObject *cut = forward ? PyUnicode_Substring(col, 0, limit)
                            : PyUnicode_Substring(col, n > limit ? n - limit : 0, n);
    Py_DECREF(col);
    if (cut == NULL)
        return NULL;
    PyObject *r = PyObject_CallMethodNoArgs(cut, forward ? S_rstrip : S_lstrip);
    Py_DECREF(cut);
    return r;
}

/* Scratch buffers of text_pre/text_post, kept for a whole walk (no allocation per link). */
typedef struct {
    collapser fwd;  /* text_post */
    buf_t rev;      /* text_pre, collapsed backwards: it grows towards the front, and */
    size_t start;   /* rev.data[start:rev.cap] is the collected text in document order */
    Py_ssize_t chars;
    int pending, done, bad;
    int nonascii;   /* a non-ASCII character was collected */
} ctx_scratch;

static void ctx_free(ctx_scratch *x) {
    buf_free(&x->fwd.out);
    buf_free(&x->rev);
}

/* Room for n more bytes in front of the text collected in x->rev. */
static int rev_room(ctx_scratch *x, size_t n) {
    if (x->start >= n)
        return 0;
    size_t used = x->rev.cap - x->start;
    size_t cap = x->rev.cap ? x->rev.cap : 256;
    while (cap < used + n) {
        if (cap > (size_t)PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *d = PyMem_Malloc(cap);
    if (d == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (used)
        memcpy(d + cap - used, x->rev.data + x->start, used);
    PyMem_Free(x->rev.data);
    x->rev.data = d;
    x->rev.cap = cap;
    x->start = cap - used;
    return 0;
}

/* rev_feed's ASCII steps, branch-free as in col_ascii, reading s[:i] backwards and writing
   in front of the collected text: at most `room` bytes (so no more than `limit` characters
   are ever out), stopping at a non-ASCII byte; returns the bytes read. rev_room(room + 1)
   must have been called. */
static size_t rev_ascii(ctx_scratch *x, const unsigned char *s, size_t i, size_t room,
                        Py_ssize_t limit) {
    char *o = x->rev.data;
    size_t pos = x->start, used = 0;
    unsigned prev = x->chars == 0 || x->pending;
    if (x->pending)
        o[--pos] = ' ';
    for (; used < room && used < i; used++) {
        while (used + 8 <= room && used + 8 <= i) {
            const unsigned char *b = s + i - used - 8;  /* the block, last byte first */
            uint64_t v;
            memcpy(&v, b, 8);
            if (!plain8(v) || (prev && b[7] == ' '))
                break;
            pos -= 8;
            memcpy(o + pos, b, 8);
            used += 8;
            prev = b[0] == ' ';
        }
        if (used >= room || used >= i)
            break;
        unsigned char ch = s[i - 1 - used];
        if (ch >= 0x80)
            break;
        unsigned sp = ws_ascii[ch];
        o[pos - 1] = sp ? ' ' : (char)ch;
        pos -= !(sp & prev);
        prev = sp;
    }
    x->pending = 0;
    if (pos < x->start && o[pos] == ' ') {  /* a space written last is owed, not out */
        pos++;
        x->pending = 1;
    }
    x->chars += (Py_ssize_t)(x->start - pos);
    x->start = pos;
    if (x->chars >= limit)
        x->done = 1;
    return used;
}

/* Collapse one unit (a text node's data) from its end towards its start, in front of what
   is collected, until `limit` characters are out: the kept end of the collapsed text is then
   fixed. Only characters actually read are decoded; a character that starts with a lead
   byte can never be part of an invalid sequence before it, so the result equals Python's
   `collapse("".join(parts))[-limit:]` unless the bytes read are invalid (x->bad: a sequence
   cut at a node's start is one, and the caller then reads the text the Python way). */
static int rev_feed(ctx_scratch *x, const unsigned char *s, size_t n, Py_ssize_t limit) {
    size_t i = n;
    while (i > 0 && !x->done) {
        size_t j = i - 1;
        long cp = s[j];
        Py_ssize_t room = limit - x->chars - x->pending;
        if (cp < 0x80 && room >= 1) {
            size_t m = (size_t)room < i ? (size_t)room : i;
            if (rev_room(x, m + 1) < 0)
                return -1;
            i -= rev_ascii(x, s, i, m, limit);
            continue;
        }
        if (cp >= 0x80) {
            int k = 0;
            while (j > 0 && (s[j] & 0xC0) == 0x80 && k < 3) {
                j--;
                k++;
            }
            int len = utf8_len(s[j]);
            if (len == 0 || (size_t)len != i - j || (cp = utf8_decode(s + j, len)) < 0) {
                x->bad = 1;
                return 0;
            }
        }
        if (Py_UNICODE_ISSPACE((Py_UCS4)cp)) {
            if (x->chars > 0)
                x->pending = 1;
            i = j;
            continue;
        }
        if (rev_room(x, i - j + 1) < 0)
            return -1;
        if (x->pending) {
            x->rev.data[--x->start] = ' ';
            x->pending = 0;
            if (++x->chars >= limit) {
                x->done = 1;
                break;
            }
        }
        x->start -= i - j;
        memcpy(x->rev.data + x->start, s + j, i - j);
        x->nonascii |= cp >= 0x80;
        i = j;
        if (++x->chars >= limit)
            x->done = 1;
    }
    return 0;
}

/* rev_feed of node.text(): the text nodes of its subtree from the last one backwards,
   stopping once the kept end is fixed. */
static int rev_feed_node(ctx_scratch *x, lw_node *node, Py_ssize_t limit) {
    lw_node *n = node;
    while (n->last_child != NULL)
        n = n->last_child;
    if (n == node && !is_text(n))
        return 0;
    for (;;) {
        if (is_text(n)) {
            lw_chardata *t = (lw_chardata *)n;
            if (t->data && rev_feed(x, t->data, t->length, limit) < 0)
                return -1;
            if (x->done || x->bad)
                return 0;
        }
        while (n != node && n->prev == NULL)
            n = n->parent;
        if (n == node)
            return 0;
        n = n->prev;
        while (n->last_child != NULL)
            n = n->last_child;
    }
}

/* text_pre (forward=0) / text_post (forward=1); see _context in extract.py. */
static PyObject *context(ctx_scratch *x, lw_node *node, int forward, Py_ssize_t limit,
                         long siblings) {
    lw_node *sib = forward ? node->next : node->prev;
    if (sib == NULL || limit <= 0)
        return PyUnicode_FromStringAndSize("", 0);
    long budget = siblings;
    if (forward) {
        collapser *c = &x->fwd;
        col_reset(c, limit);
        for (; sib != NULL && budget > 0 && !c->done && !c->bad; budget--, sib = sib->next) {
            if (!context_sibling(sib))
                continue;
            if (feed_text(c, sib) < 0)
                return NULL;
            col_end_unit(c);
        }
        return c->bad ? context_slow(node, 1, limit, siblings) : col_head(c, limit, 1);
    }
    x->start = x->rev.cap;
    x->chars = 0;
    x->pending = x->done = x->bad = x->nonascii = 0;
    for (; sib != NULL && budget > 0 && !x->done && !x->bad; budget--, sib = sib->prev) {
        if (context_sibling(sib) && rev_feed_node(x, sib, limit) < 0)
            return NULL;
    }
    if (x->bad)
        return context_slow(node, 0, limit, siblings);
    /* lstrip: only the first character can be a space */
    const char *d = x->rev.data ? x->rev.data + x->start : "";
    size_t n = x->rev.cap - x->start;
    while (n > 0 && *d == ' ') {
        d++;
        n--;
    }
    if (!x->nonascii)
        return ascii_str(d, n);
    return PyUnicode_DecodeUTF8(d, (Py_ssize_t)n, "strict");
}

/* The semantic tag names by tag id, for the ids below 256 (all of HTML's own tags). */
#define SEMANTIC_TABLE 256
static PyObject *semantic_by_id[SEMANTIC_TABLE];

/* Nearest ancestor among the semantic tags: its name, or None (borrowed). */
static PyObject *location(lw_node *node) {
    for (lw_node *p = node->parent; p != NULL; p = p->parent) {
        if (!is_element(p))
            continue;
        uintptr_t t = tag_of(p);
        if (t < SEMANTIC_TABLE) {
            if (semantic_by_id[t] != NULL)
                return semantic_by_id[t];
            continue;
        }
        for (int i = 0; i < C.n_semantic; i++)
            if (C.semantic_id[i] == t)
                return C.semantic_name[i];
    }
    return Py_None;
}

/* _owner: `anchor` is the nearest ancestor <a> with an href attribute (by qualified name). */
static int owner_is(lw_node *img, lw_node *anchor) {
    for (lw_node *p = img->parent; p != NULL; p = p->parent) {
        if (is_element(p) && tag_of(p) == C.tag[T_A]) {
            size_t n;
            int found;
            attr_get(p, "href", &n, &found);
            if (found)
                return p == anchor;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ byte-string tables
 *
 * Per-walk open-addressing tables keyed by byte strings (an href's raw attribute bytes; a
 * link identity), so repeats are found without making Python objects. Keys are copied into
 * one arena; values are indexes into the caller's arrays. Bounded by the walk (each entry
 * comes from one visited node).
 */

typedef struct {
    uint64_t hash;
    size_t off, len;
    Py_ssize_t value;   /* -1: empty slot */
    uint32_t gen;       /* a slot of an earlier walk (gen != the table's) is empty too */
} ht_slot;

typedef struct {
    ht_slot *slots;
    size_t cap, used;
    uint32_t gen;
    buf_t arena;
} htab;

static inline int ht_used(const htab *t, const ht_slot *s) {
    return s->gen == t->gen && s->value >= 0;
}

static inline uint64_t rotl64(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

/* Two independent multiply-rotate lanes over 16 bytes a step, the tail read as one
   zero-padded word, then a final mix (table positions use the high bits). */
static inline uint64_t hash_bytes(const unsigned char *s, size_t n) {
    const uint64_t k1 = 0x9E3779B97F4A7C15ULL, k2 = 0xC2B2AE3D27D4EB4FULL;
    uint64_t a = k1 ^ n, b = k2;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint64_t v, u;
        memcpy(&v, s + i, 8);
        memcpy(&u, s + i + 8, 8);
        a = rotl64(a ^ v, 29) * k2;
        b = rotl64(b ^ u, 31) * k1;
    }
    if (i + 8 <= n) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        a = rotl64(a ^ v, 29) * k2;
        i += 8;
    }
    if (i < n) {
        uint64_t v = 0;
        memcpy(&v, s + i, n - i);
        b = rotl64(b ^ v, 31) * k1;
    }
    uint64_t h = a ^ rotl64(b, 32);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 29;
    return h;
}

static void ht_free(htab *t) {
    PyMem_Free(t->slots);
    buf_free(&t->arena);
    memset(t, 0, sizeof(*t));
}

static int ht_grow(htab *t) {
    size_t ncap = t->cap ? t->cap * 2 : 512;
    ht_slot *ns = PyMem_Malloc(ncap * sizeof(ht_slot));
    if (ns == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < ncap; i++)
        ns[i].value = -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (!ht_used(t, &t->slots[i]))
            continue;
        size_t j = (size_t)(t->slots[i].hash >> 7) & (ncap - 1);
        while (ns[j].value >= 0)
            j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    PyMem_Free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

/* Empty the table for the next walk without touching its slots (a new generation). */
static void ht_clear(htab *t) {
    if (++t->gen == 0)  /* wrapped: stale slots could look current */
        for (size_t i = 0; i < t->cap; i++)
            t->slots[i].value = -1;
    t->used = 0;
    t->arena.len = 0;
}

/* The slot of `key`: found (value >= 0) or a fresh one whose value the caller must set
   (*fresh = 1); NULL on memory error. */
static ht_slot *ht_get(htab *t, const void *key, size_t len, int *fresh) {
    *fresh = 0;
    if ((t->used + 1) * 2 > t->cap && ht_grow(t) < 0)
        return NULL;
    uint64_t h = hash_bytes(key, len);
    size_t j = (size_t)(h >> 7) & (t->cap - 1);
    for (;;) {
        ht_slot *s = &t->slots[j];
        if (!ht_used(t, s))
            break;
        if (s->hash == h && s->len == len && memcmp(t->arena.data + s->off, key, len) == 0)
            return s;
        j = (j + 1) & (t->cap - 1);
    }
    size_t off = t->arena.len;
    if (buf_add(&t->arena, key, len) < 0)
        return NULL;
    ht_slot *s = &t->slots[j];
    s->hash = h;
    s->off = off;
    s->len = len;
    s->value = 0;
    s->gen = t->gen;
    t->used++;
    *fresh = 1;
    return s;
}

/* ------------------------------------------------------------------ index key
 *
 * key_from_href: a compiled twin of inlink.urls._key_from_href_py, which stays the definition
 * of URL identity (tests/test_urls.py checks the two agree on arbitrary and WPT hrefs). It
 * handles the ASCII hrefs ada serializes; anything else (non-ASCII, no "://", a re-parse
 * that fails, more than KEY_ROUNDS re-parses) is handed to the Python function itself, so
 * the two can differ only by a bug in the common path below.
 */

static ada_url (*ada_parse_abs)(const char *, size_t);
static PyObject *key_fallback;  /* urls._key_from_href_py */
#define KEY_ROUNDS 8

static const char *const SESSION_PARAMS[] = {
    "jsessionid", "phpsessid", "sid", "sessionid", "session_id", "sessid", "aspsessionid",
    "cfid", "cftoken", "oscsid", "zenid", "ps_session", "s_sid"};
static const char *const PATH_SESSION[] = {"jsessionid", "phpsessid", "sessionid", "sid"};
static const char *const SESSION_HINTS[] = {"sid", "sess", "cfid", "cftoken", "zenid"};

static inline unsigned char lower_ascii(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* s[0:len(lit)] equals the lowercase literal, ASCII case-insensitively. */
static inline int iprefix(const char *s, size_t n, const char *lit) {
    size_t m = strlen(lit);
    if (n < m)
        return 0;
    for (size_t i = 0; i < m; i++)
        if (lower_ascii((unsigned char)s[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

static inline int icontains(const char *s, size_t n, const char *lit) {
    size_t m = strlen(lit);
    for (size_t i = 0; i + m <= n; i++)
        if (iprefix(s + i, n - i, lit))
            return 1;
    return 0;
}

static inline const char *find_byte(const char *s, size_t n, char c) {
    return n ? memchr(s, c, n) : NULL;
}

/* The first "://" in s (str.index("://")), with the two usual schemes checked first. */
static inline const char *find_sep(const char *s, size_t n) {
    if (n >= 8 && memcmp(s, "https://", 8) == 0)
        return s + 5;
    if (n >= 7 && memcmp(s, "http://", 7) == 0)
        return s + 4;
    return n >= 3 ? memmem(s, n, "://", 3) : NULL;
}

static inline int is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline int hex_val(unsigned char c) {
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static inline int unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* One call of _key_from_href_py on ASCII `h` without its final re-parse: the key is left in
   `out`. Returns 0 (key == h, nothing to do), 1 (key in out, no re-parse), 2 (key in out,
   re-parse needed: `changed`), -2 (hand over to Python), -1 (error set). */
/* The href holds none of _FAST_PATH_BLOCKERS ("?" is checked too): one pass. */
static int key_unchanged(const char *h, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c > '@' || c < '#')
            continue;  /* none of # % ; @ . ? / : lies outside '#'..'@' */
        if (c == '?' || c == '#' || c == '%' || c == ';' || c == '@')
            return 0;
        if (c == '.' && i + 1 < n && (h[i + 1] == '/' || h[i + 1] == ':'))
            return 0;
    }
    return 1;
}

static int key_round(const char *h, size_t n, buf_t *out, buf_t *tmp) {
    if (key_unchanged(h, n))
        return 0;
    const char *sep = find_sep(h, n);
    if (sep == NULL)
        return -2;  /* str.index raises ValueError: let Python say it */
    size_t scheme_end = (size_t)(sep - h) + 3;
    const char *slash = find_byte(h + scheme_end, n - scheme_end, '/');
    size_t path_start = slash ? (size_t)(slash - h) : n;
    size_t a0 = scheme_end, a1 = path_start;  /* authority */
    int changed = 0;
    for (size_t i = a1; i > a0; i--) {
        if (h[i - 1] == '@') {  /* credentials are not part of identity */
            a0 = i;
            changed = 1;
            break;
        }
    }
    size_t host_end = a1, port_start = a1;
    if (find_byte(h + a0, a1 - a0, '.') && !(a1 > a0 && h[a0] == '[')) {
        const char *colon = find_byte(h + a0, a1 - a0, ':');
        size_t hend = colon ? (size_t)(colon - h) : a1;
        size_t stripped = hend;
        while (stripped > a0 && h[stripped - 1] == '.')
            stripped--;
        if (stripped != hend) {
            host_end = stripped;
            port_start = hend;
            changed = 1;
        }
    }
    out->len = 0;
    /* h[:scheme_end] + authority (credentials and trailing host dots dropped) */
    if (buf_add(out, h, scheme_end) < 0 || buf_add(out, h + a0, host_end - a0) < 0 || buf_add(out, h + port_start, a1 - port_start) < 0)
        return -1;
    size_t key_rest = out->len;
    /* rest = h[path_start:], cut at "#" */
    const char *rest = h + path_start;
    size_t rn = n - path_start;
    const char *hash = find_byte(rest, rn, '#');
    if (hash)
        rn = (size_t)(hash - rest);
    /* _PATH_SESSION_RE.sub("", rest) */
    if (find_byte(rest, rn, ';')) {
        tmp->len = 0;
        size_t i = 0;
        int removed = 0;
        while (i < rn) {
            if (rest[i] == ';') {
                size_t m = 0;
                for (int k = 0; k < 4 && !m; k++) {
                    size_t l = strlen(PATH_SESSION[k]);
                    if (iprefix(rest + i + 1, rn - i - 1, PATH_SESSION[k]) && i + 1 + l < rn &&
                        rest[i + 1 + l] == '=')
                        m = l;
                }
                if (m) {
                    size_t j = i + 1 + m + 1;
                    while (j < rn && rest[j] != '/' && rest[j] != '?' && rest[j] != '#')
                        j++;
                    i = j;
                    removed = 1;
                    continue;
                }
            }
            if (buf_add(tmp, rest + i, 1) < 0)
                return -1;
            i++;
        }
        changed |= removed;
        if (buf_add(out, tmp->data, tmp->len) < 0)
            return -1;
    } else if (buf_add(out, rest, rn) < 0) {
        return -1;
    }
    /* _PERCENT_RE.sub(_percent_fix, rest), in place over out[key_rest:] */
    if (find_byte(out->data + key_rest, out->len - key_rest, '%')) {
        char *s = out->data + key_rest;
        size_t sn = out->len - key_rest, w = 0, i = 0;
        while (i < sn) {
            unsigned char c = (unsigned char)s[i];
            if (c == '%' && i + 2 < sn && is_hex((unsigned char)s[i + 1]) &&
                is_hex((unsigned char)s[i + 2])) {
                unsigned char hi = (unsigned char)s[i + 1], lo = (unsigned char)s[i + 2];
                unsigned char ch = (unsigned char)(hex_val(hi) * 16 + hex_val(lo));
                if (unreserved(ch)) {
                    s[w++] = (char)ch;
                    changed = 1;
                } else {
                    unsigned char uh = (unsigned char)Py_TOUPPER(hi), ul = (unsigned char)Py_TOUPPER(lo);
                    if (uh != hi || ul != lo)
                        changed = 1;
                    s[w++] = '%';
                    s[w++] = (char)uh;
                    s[w++] = (char)ul;
                }
                i += 3;
                continue;
            }
            s[w++] = s[i++];
        }
        out->len = key_rest + w;
    }
    /* session parameters in the query; an empty query is dropped */
    {
        char *s = out->data + key_rest;
        size_t sn = out->len - key_rest;
        const char *q = find_byte(s, sn, '?');
        if (q != NULL) {
            size_t q0 = (size_t)(q - s) + 1;  /* query start */
            const char *query = s + q0;
            size_t qn = sn - q0;
            int hint = 0;
            for (int k = 0; k < 5 && !hint; k++)
                hint = icontains(query, qn, SESSION_HINTS[k]);
            if (hint) {
                tmp->len = 0;
                size_t i = 0;
                int first = 1;
                for (;;) {
                    const char *amp = find_byte(query + i, qn - i, '&');
                    size_t pe = amp ? (size_t)(amp - query) : qn;
                    const char *p = query + i;
                    size_t pn = pe - i;
                    const char *eq = find_byte(p, pn, '=');
                    size_t name_n = eq ? (size_t)(eq - p) : pn;
                    int drop = iprefix(p, pn, "aspsessionid");
                    for (int k = 0; k < 13 && !drop; k++)
                        drop = name_n == strlen(SESSION_PARAMS[k]) &&
                               iprefix(p, name_n, SESSION_PARAMS[k]);
                    if (!drop) {
                        if ((!first && buf_add(tmp, "&", 1) < 0) || buf_add(tmp, p, pn) < 0)
                            return -1;
                        first = 0;
                    }
                    if (amp == NULL)
                        break;
                    i = pe + 1;
                }
                /* query = "&".join(kept); note: kept [""] joins to "" as well */
                out->len = key_rest + q0;
                if (buf_add(out, tmp->data, tmp->len) < 0)
                    return -1;
                s = out->data + key_rest;
                qn = tmp->len;
            }
            if (qn == 0)
                out->len = key_rest + q0 - 1;  /* rest[:query_at], no "?" */
        }
    }
    return changed ? 2 : 1;
}

/* _key_from_href(href) for one str; new reference. */
static PyObject *key_of(PyObject *href) {
    if (!PyUnicode_CheckExact(href) || !PyUnicode_IS_ASCII(href) || ada_parse_abs == NULL)
        return PyObject_CallOneArg(key_fallback, href);
    /* scratch kept between calls (only read before any call back into Python, so a
       re-entrant call through the fallback cannot disturb a caller) */
    static buf_t out, tmp, cur;
    const char *h = (const char *)PyUnicode_DATA(href);
    size_t n = (size_t)PyUnicode_GET_LENGTH(href);
    PyObject *result = NULL;
    for (int round = 0; round < KEY_ROUNDS; round++) {
        int rc = key_round(h, n, &out, &tmp);
        if (rc == -1)
            goto done;
        if (rc == -2)
            break;
        if (rc == 0) {
            if (round == 0) {
                Py_INCREF(href);
                result = href;
            } else {
                result = ascii_str(h, n);
            }
            goto done;
        }
        if (rc == 1) {
            if (round == 0 && out.len == n && memcmp(out.data, h, n) == 0) {
                Py_INCREF(href);  /* looked at, nothing to change: the href is its key */
                result = href;
            } else {
                result = ascii_str(out.data, out.len);
            }
            goto done;
        }
        /* changed: re-parse so the key is a fixpoint (see the Python twin) */
        ada_url u = ada_parse_abs(out.data ? out.data : "", out.len);
        if (!ada_is_valid(u)) {
            ada_free(u);
            break;  /* Python raises InvalidUrl: let it */
        }
        ada_string s = ada_get_href(u);
        int ok = (s.length >= 7 && memcmp(s.data, "http://", 7) == 0) ||
                 (s.length >= 8 && memcmp(s.data, "https://", 8) == 0);
        for (size_t i = 0; ok && i < s.length; i++)
            ok = (unsigned char)s.data[i] < 0x80;
        if (!ok) {
            ada_free(u);
            break;
        }
        if (s.length == out.len && memcmp(s.data, out.data, out.len) == 0) {
            ada_free(u);
            result = ascii_str(out.data, out.len);
            goto done;
        }
        cur.len = 0;
        int rc2 = buf_add(&cur, s.data, s.length);
        ada_free(u);
        if (rc2 < 0)
            goto done;
        h = cur.data;
        n = cur.len;
    }
    result = PyObject_CallOneArg(key_fallback, href);
done:
    if (out.cap > 65536 || tmp.cap > 65536 || cur.cap > 65536) {  /* after a huge URL */
        buf_free(&out);
        buf_free(&tmp);
        buf_free(&cur);
    }
    return result;
}

static PyObject *lw_key_from_href(PyObject *self, PyObject *href) {
    if (key_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_linkwalk.configure_keys() was not called");
        return NULL;
    }
    return key_of(href);
}

/* ------------------------------------------------------------------ nesting guard
 *
 * nesting_cut: a compiled twin of inlink.extract.nesting_cut (the numpy reference): per tag
 * name a count of open elements clipped at zero, summed in document order; the offset of the
 * first start tag that takes the sum above max_depth.
 */

#define MAX_FLAT 64
static uint64_t flat_keys[MAX_FLAT];
static int n_flat = -1;

static inline int is_flat(uint64_t k) {
    int lo = 0, hi = n_flat - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (flat_keys[mid] == k)
            return 1;
        if (flat_keys[mid] < k)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

static inline int name_delim(unsigned char c) {
    return c == '\t' || c == '\n' || c == 0x0c || c == '\r' || c == ' ' || c == '/' ||
           c == '>' || c == 0;
}

static PyObject *lw_nesting_cut(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t max_depth;
    if (!PyArg_ParseTuple(args, "y*n", &buf, &max_depth))
        return NULL;
    if (n_flat < 0 || max_depth < 0) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "configure_nesting() not called, or max_depth < 0");
        return NULL;
    }
    const unsigned char *d = buf.buf;
    size_t n = (size_t)buf.len;
    /* open-addressing table: tag key -> open count (key 0 never occurs: the first byte of a
       counted name is a letter) */
    size_t cap = 256, used = 0;
    uint64_t *keys = PyMem_Calloc(cap, sizeof(uint64_t));
    Py_ssize_t *open = PyMem_Calloc(cap, sizeof(Py_ssize_t));
    PyObject *result = NULL;
    if (keys == NULL || open == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    Py_ssize_t depth = 0;
    const unsigned char *p = d, *end = d + n;
    while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        size_t lt = (size_t)(p - d);
        p++;
#define AT(i) ((i) < n ? d[(i)] : 0)
        int is_end = AT(lt + 1) == '/';
        size_t start = lt + 1 + (size_t)is_end;
        unsigned char first = AT(start) | 0x20;
        if (first < 'a' || first > 'z')
            continue;
        uint64_t key = 0;
        int j;
        for (j = 0; j < 9; j++) {
            unsigned char c = AT(start + (size_t)j);
            if (name_delim(c))
                break;
            if (j < 8) {
                if (c >= 'A' && c <= 'Z')
                    c += 32;
                key |= (uint64_t)c << (8 * j);
            }
        }
#undef AT
        if (j == 9)
            key |= (uint64_t)1 << 63;
        if (is_flat(key))
            continue;
        size_t mask = cap - 1, slot = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 32) & mask;
        while (keys[slot] != 0 && keys[slot] != key)
            slot = (slot + 1) & mask;
        if (keys[slot] == 0) {
            if (is_end)
                continue;  /* a stray end tag closes nothing */
            keys[slot] = key;
            open[slot] = 0;
            if (++used * 2 > cap) {
                size_t ncap = cap * 2;
                uint64_t *nk = PyMem_Calloc(ncap, sizeof(uint64_t));
                Py_ssize_t *no = PyMem_Calloc(ncap, sizeof(Py_ssize_t));
                if (nk == NULL || no == NULL) {
                    PyMem_Free(nk);
                    PyMem_Free(no);
                    PyErr_NoMemory();
                    goto out;
                }
                for (size_t i = 0; i < cap; i++) {
                    if (keys[i] == 0)
                        continue;
                    size_t s = (size_t)((keys[i] * 0x9E3779B97F4A7C15ULL) >> 32) & (ncap - 1);
                    while (nk[s] != 0)
                        s = (s + 1) & (ncap - 1);
                    nk[s] = keys[i];
                    no[s] = open[i];
                    if (keys[i] == key)
                        slot = s;
                }
                PyMem_Free(keys);
                PyMem_Free(open);
                keys = nk;
                open = no;
                cap = ncap;
            }
        }
        if (is_end) {
            if (open[slot] > 0) {
                open[slot]--;
                depth--;
            }
        } else {
            open[slot]++;
            if (++depth > max_depth) {
                result = PyLong_FromSize_t(lt);
                goto out;
            }
        }
    }
    Py_INCREF(Py_None);
    result = Py_None;
out:
    PyMem_Free(keys);
    PyMem_Free(open);
    PyBuffer_Release(&buf);
    return result;
}

/* data.count(b"<"), eight bytes at a time: extract() asks it of every page before deciding
   whether the nesting guard must run. */
static PyObject *lw_count_lt(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *d = view.buf;
    size_t n = (size_t)view.len, i = 0, count = 0;
    const uint64_t ones = 0x0101010101010101ULL, low7 = 0x7F7F7F7F7F7F7F7FULL;
#ifdef __SSE2__
    /* sixteen bytes a step: per-byte counters (-1 per match), summed every 255 steps */
    const __m128i lt = _mm_set1_epi8('<'), zero = _mm_setzero_si128();
    while (i + 16 <= n) {
        __m128i acc = zero;
        for (int k = 0; k < 255 && i + 16 <= n; k++, i += 16)
            acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(d + i)),
                                                   lt));
        __m128i sums = _mm_sad_epu8(acc, zero);
        count += (size_t)_mm_cvtsi128_si32(sums) +
                 (size_t)_mm_cvtsi128_si32(_mm_srli_si128(sums, 8));
    }
#endif
    while (i + 8 <= n) {
        /* per-byte counters (at most 255 steps), then summed */
        uint64_t acc = 0;
        for (int k = 0; k < 255 && i + 8 <= n; k++, i += 8) {
            uint64_t v;
            memcpy(&v, d + i, 8);
            v ^= ones * '<';                       /* '<' bytes become zero */
            uint64_t t = ((v & low7) + low7) | v;  /* high bit set where a byte != 0 */
            acc += (~t & ~low7) >> 7;
        }
        const uint64_t m16 = 0x00FF00FF00FF00FFULL;
        acc = (acc & m16) + ((acc >> 8) & m16);
        count += (size_t)((acc * 0x0001000100010001ULL) >> 48);
    }
    for (; i < n; i++)
        count += d[i] == '<';
    PyBuffer_Release(&view);
    return PyLong_FromSize_t(count);
}

/* extract._utf8_valid without decoding: len(data) when it is all valid UTF-8 (as Python's
   strict decoder sees it), the offset of a sequence cut off at the very end (Python's
   "unexpected end of data"), else None. */
static PyObject *lw_utf8_valid(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *d = view.buf;
    size_t n = (size_t)view.len, i = 0;
    const uint64_t hi = 0x8080808080808080ULL;
    PyObject *result = NULL;
    while (i < n) {
#ifdef __SSE2__
        while (i + 32 <= n) {  /* ASCII, 32 bytes at a time */
            __m128i a = _mm_loadu_si128((const __m128i *)(d + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(d + i + 16));
            if (_mm_movemask_epi8(_mm_or_si128(a, b)))
                break;
            i += 32;
        }
#endif
        while (i + 32 <= n) {  /* ASCII, 32 bytes at a time */
            uint64_t a, b, c, e;
            memcpy(&a, d + i, 8);
            memcpy(&b, d + i + 8, 8);
            memcpy(&c, d + i + 16, 8);
            memcpy(&e, d + i + 24, 8);
            if ((a | b | c | e) & hi)
                break;
            i += 32;
        }
        if (i >= n)
            break;
        unsigned char lead = d[i];
        if (lead < 0x80) {
            i++;
            continue;
        }
        int len = utf8_len(lead);
        if (len == 0)
            goto invalid;  /* invalid start byte */
        unsigned char lo = 0x80, up = 0xBF;  /* the second byte's range (no overlongs, */
        if (lead == 0xE0) lo = 0xA0;          /* surrogates or code points past U+10FFFF) */
        else if (lead == 0xED) up = 0x9F;
        else if (lead == 0xF0) lo = 0x90;
        else if (lead == 0xF4) up = 0x8F;
        for (int k = 1; k < len; k++) {
            if (i + (size_t)k >= n) {  /* cut off by the end: at most 3 bytes from it */
                result = PyLong_FromSize_t(i);
                goto done;
            }
            unsigned char b = d[i + (size_t)k];
            if (k == 1 ? (b < lo || b > up) : (b & 0xC0) != 0x80)
                goto invalid;
        }
        i += (size_t)len;
    }
    result = PyLong_FromSize_t(n);
    goto done;
invalid:
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&view);
    return result;
}

static PyObject *lw_configure_nesting(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "flat keys must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
    if (m > MAX_FLAT) {
        Py_DECREF(seq);
        return PyErr_Format(PyExc_ValueError, "more than %d flat tags", MAX_FLAT);
    }
    uint64_t tmp[MAX_FLAT];
    for (Py_ssize_t i = 0; i < m; i++) {
        tmp[i] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (PyErr_Occurred() || (i > 0 && tmp[i] <= tmp[i - 1])) {
            Py_DECREF(seq);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "flat keys must be sorted and distinct");
            return NULL;
        }
    }
    Py_DECREF(seq);
    memcpy(flat_keys, tmp, sizeof(uint64_t) * (size_t)m);
    n_flat = (int)m;
    Py_RETURN_NONE;
}

static PyObject *lw_configure_keys(PyObject *self, PyObject *args) {
    const char *ada_path;
    PyObject *fallback;
    if (!PyArg_ParseTuple(args, "sO", &ada_path, &fallback))
        return NULL;
    void *ada = dlopen(ada_path, RTLD_NOW | RTLD_NOLOAD);
    if (ada == NULL)
        return PyErr_Format(PyExc_ImportError, "ada module not loaded: %s", ada_path);
    void *parse = dlsym(ada, "ada_parse"), *valid = dlsym(ada, "ada_is_valid");
    void *get = dlsym(ada, "ada_get_href"), *fr = dlsym(ada, "ada_free");
    if (!parse || !valid || !get || !fr)
        return PyErr_Format(PyExc_ImportError, "ada C API symbols missing in %s", ada_path);
    *(void **)(&ada_parse_abs) = parse;
    *(void **)(&ada_is_valid) = valid;
    *(void **)(&ada_get_href) = get;
    *(void **)(&ada_free) = fr;
    Py_INCREF(fallback);
    Py_XSETREF(key_fallback, fallback);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ the walk */

enum { P_A, P_AREA, P_LINK, P_META };

typedef struct {
    int tag;
    lw_node *node;
    lw_node *img;     /* first owned <img> (a only) */
    PyObject *attrs;  /* link/meta: the attribute dict (owned) */
} pending_t;

/* What resolving one href gave: url NULL when it is not a link (resolve_link -> None). */
typedef struct {
    PyObject *url;    /* owned */
    PyObject *key;    /* owned; often the same object as url */
    int internal;
} got_t;

typedef struct {
    PyObject *page;
    PyObject *base_utf8;    /* bytes */
    struct base_s *base;    /* base_utf8 split for resolve_simple */
    buf_t joined;           /* scratch: a URL resolve_simple made */
    PyObject *page_domain;
    const char *page_domain_s;  /* its UTF-8 (kept alive by page_domain) */
    Py_ssize_t page_domain_n;
    PyObject *domains;      /* page.domains: authority -> registrable domain */
    PyObject *rows, *counts, *index, *dropped;
    Py_ssize_t max_links, max_anchor, max_alt, context_chars;
    long context_siblings;
    long internal, external;
    htab hrefs;             /* raw href bytes -> index into got[] */
    htab hosts;             /* host bytes -> internal flag, for hosts that needed the PSL */
    got_t *got;             /* resolve results for those hrefs (owned) */
    size_t n_got, cap_got;
    htab idents;            /* link identity bytes -> index into ids[] */
    struct ident_t { Py_ssize_t row; Py_ssize_t count; } *ids;  /* row -1: dropped */
    size_t n_ids, cap_ids;
    Py_ssize_t dropped_native;  /* distinct <a>/<area> identities beyond max_links */
    buf_t key;              /* scratch: the identity being looked up */
    collapser anchor;       /* scratch: anchor text */
    ctx_scratch ctx;        /* scratch: text_pre / text_post */
} walk_t;

/* _Page.domain_of(key): the registrable domain of the key's authority, cached in
   page.domains; new reference. */
static PyObject *domain_for(walk_t *w, PyObject *key) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(key);
    Py_ssize_t at = PyUnicode_Find(key, S_sep, 0, len, 1);
    if (at < -1)
        return NULL;
    if (at == -1) {
        PyErr_SetString(PyExc_ValueError, "substring not found");  /* str.index */
        return NULL;
    }
    Py_ssize_t start = at + 3;
    Py_ssize_t end = PyUnicode_FindChar(key, '/', start, len, 1);
    if (end < -1)
        return NULL;
    PyObject *authority = PyUnicode_Substring(key, start, end < 0 ? len : end);
    if (authority == NULL)
        return NULL;
    PyObject *domain = PyDict_GetItemWithError(w->domains, authority);
    if (domain != NULL) {
        Py_DECREF(authority);
        Py_INCREF(domain);
        return domain;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(authority);
        return NULL;
    }
    Py_ssize_t alen = PyUnicode_GET_LENGTH(authority);
    Py_ssize_t cut;
    if (alen > 0 && PyUnicode_READ_CHAR(authority, 0) == '[') {
        cut = PyUnicode_FindChar(authority, ']', 0, alen, 1);  /* [:find("]") + 1] */
        cut = cut < -1 ? -2 : cut + 1;
    } else {
        cut = PyUnicode_FindChar(authority, ':', 0, alen, 1);  /* partition(":")[0] */
        cut = cut == -1 ? alen : cut;
    }
    PyObject *host = cut < 0 ? NULL : PyUnicode_Substring(authority, 0, cut);
    domain = host ? PyObject_CallOneArg(C.domain_fn, host) : NULL;
    Py_XDECREF(host);
    if (domain == NULL || PyDict_SetItem(w->domains, authority, domain) < 0) {
        Py_DECREF(authority);
        Py_XDECREF(domain);
        return NULL;
    }
    Py_DECREF(authority);
    return domain;
}

/* domain_of(key) == page_domain: 1, 0, or -1 with an exception set.
 *
 * A registrable domain is always its host or a label-aligned suffix of it (the PSL's
 * private suffix, else the host itself; keys hold lowercase hosts without a trailing dot),
 * so a host that neither equals the page's domain nor ends with "." + that domain is
 * external without asking the PSL. Only the others go through domain_for, as in Python.
 * tests/test_extract_native.py checks the suffix property on generated hosts. */
static int domain_is_page(walk_t *w, PyObject *key) {
    PyObject *dom = domain_for(w, key);
    if (dom == NULL)
        return -1;
    int eq = PyObject_RichCompareBool(dom, w->page_domain, Py_EQ);
    Py_DECREF(dom);
    return eq;
}

static int internal_of(walk_t *w, PyObject *key) {
    Py_ssize_t kn;
    const char *k = PyUnicode_AsUTF8AndSize(key, &kn);
    if (k == NULL)
        return -1;
    const char *sep = find_sep(k, (size_t)kn);
    if (sep != NULL) {
        const char *a0 = sep + 3, *end = k + kn;
        const char *slash = memchr(a0, '/', (size_t)(end - a0));
        const char *a1 = slash ? slash : end;
        const char *h1;
        if (a1 > a0 && *a0 == '[') {
            const char *rb = memchr(a0, ']', (size_t)(a1 - a0));
            h1 = rb ? rb + 1 : a0;
        } else {
            const char *colon = memchr(a0, ':', (size_t)(a1 - a0));
            h1 = colon ? colon : a1;
        }
        size_t hn = (size_t)(h1 - a0), dn = (size_t)w->page_domain_n;
        int maybe = hn == dn ? memcmp(a0, w->page_domain_s, dn) == 0
                  : hn > dn && a0[hn - dn - 1] == '.' &&
                    memcmp(a0 + hn - dn, w->page_domain_s, dn) == 0;
        if (!maybe)
            return 0;
        /* the same host again (most internal links): the answer is known */
        int fresh;
        ht_slot *slot = ht_get(&w->hosts, a0, hn, &fresh);
        if (slot == NULL)
            return -1;
        if (!fresh)
            return (int)slot->value;
        int eq = domain_is_page(w, key);
        if (eq < 0) {
            slot->value = -1;
            w->hosts.used--;
            return -1;
        }
        slot->value = eq;
        return eq;
    }
    return domain_is_page(w, key);  /* raises str.index's error: no "://" */
}

static inline int is_ascii(const char *s, size_t n) {
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= (unsigned char)s[i];
    return acc < 0x80;
}

/* ------------------------------------------------------------------ relative resolution
 *
 * ada_parse_with_base parses the base again for every href (about half its time). Most
 * hrefs are plain relative references, whose WHATWG resolution (URL Standard §4.4, the
 * relative, path and query/fragment states) is string work on the serialized base: those
 * are resolved here against a base split once per walk; everything else goes to ada.
 * "Plain" means ASCII bytes from url_safe only (nothing WHATWG trims, removes, percent-
 * encodes or decodes: no whitespace, controls, quotes, "%", "\", "<", ">", "^", "`", "{",
 * "}", "|"), not scheme-relative ("//"), and no ":" before the first "/", "?" or "#" (that
 * would be a scheme). tests/test_extract_native.py compares this with ada on generated hrefs
 * and bases.
 */

typedef struct base_s {
    int ok;             /* an ASCII http(s) base with a path */
    const char *s;
    size_t n;
    size_t origin_end;  /* the "/" that starts the path */
    size_t dir_end;     /* the path's last "/" */
    size_t path_end;    /* "?", "#" or n */
    size_t query_end;   /* "#" or n */
} base_t;

static unsigned char url_safe[128];

static void base_init(base_t *b, const char *s, size_t n) {
    memset(b, 0, sizeof(*b));
    size_t p;
    if (n >= 7 && memcmp(s, "http://", 7) == 0)
        p = 7;
    else if (n >= 8 && memcmp(s, "https://", 8) == 0)
        p = 8;
    else
        return;
    if (!is_ascii(s, n))
        return;
    size_t i = p;
    while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#')
        i++;
    if (i >= n || s[i] != '/')
        return;  /* ada always serializes a special URL with a path */
    b->origin_end = b->dir_end = i;
    while (i < n && s[i] != '?' && s[i] != '#') {
        if (s[i] == '/')
            b->dir_end = i;
        i++;
    }
    b->path_end = i;
    while (i < n && s[i] != '#')
        i++;
    b->query_end = i;
    b->s = s;
    b->n = n;
    b->ok = 1;
}

/* The serialization of href `h` parsed against the base into `out`: 1 when done here, 0
   when the href is not plain (ask ada), -1 on memory error. */
static int resolve_simple(const base_t *b, const char *h, size_t n, buf_t *out) {
    if (!b->ok)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c >= 0x80 || !url_safe[c])
            return 0;
    }
    out->len = 0;
    if (n == 0 || h[0] == '#')  /* the base without its fragment, then the href's */
        return buf_add(out, b->s, b->query_end) < 0 || buf_add(out, h, n) < 0 ? -1 : 1;
    if (h[0] == '?')            /* the base's path, then the href's query */
        return buf_add(out, b->s, b->path_end) < 0 || buf_add(out, h, n) < 0 ? -1 : 1;
    size_t pe = 0;
    while (pe < n && h[pe] != '?' && h[pe] != '#')
        pe++;
    size_t i;
    if (h[0] == '/') {
        if (n > 1 && h[1] == '/')
            return 0;           /* scheme-relative: a new authority */
        if (buf_add(out, b->s, b->origin_end) < 0)
            return -1;
        i = 1;
    } else {
        for (size_t k = 0; k < pe && h[k] != '/'; k++)
            if (h[k] == ':')
                return 0;       /* maybe a scheme */
        /* the base's path with its last segment removed ("shorten") */
        if (buf_add(out, b->s, b->dir_end) < 0)
            return -1;
        i = 0;
    }
    size_t root = b->origin_end;  /* out[:root] is scheme://authority */
    /* path state: one segment at a time; "." and ".." as in the URL Standard */
    for (;;) {
        size_t j = i;
        while (j < pe && h[j] != '/')
            j++;
        size_t len = j - i;
        int last = j >= pe;
        if (len == 2 && h[i] == '.' && h[i + 1] == '.') {
            if (out->len > root) {
                const char *slash = memrchr(out->data + root, '/', out->len - root);
                out->len = slash ? (size_t)(slash - out->data) : root;
            }
            if (last && buf_add(out, "/", 1) < 0)
                return -1;
        } else if (len == 1 && h[i] == '.') {
            if (last && buf_add(out, "/", 1) < 0)
                return -1;
        } else if (buf_add(out, "/", 1) < 0 || buf_add(out, h + i, len) < 0) {
            return -1;
        }
        if (last)
            break;
        i = j + 1;
    }
    return buf_add(out, h + pe, n - pe) < 0 ? -1 : 1;
}

/* resolve_simple(href, base) for tests: the URL, or None when ada would be asked. */
static PyObject *lw_resolve_simple(PyObject *self, PyObject *args) {
    const char *h, *s;
    Py_ssize_t hn, sn;
    if (!PyArg_ParseTuple(args, "s#s#", &h, &hn, &s, &sn))
        return NULL;
    base_t b;
    base_init(&b, s, (size_t)sn);
    buf_t out = {0};
    int rc = resolve_simple(&b, h, (size_t)hn, &out);
    PyObject *r = rc < 0 ? NULL
        : rc == 0 ? (Py_INCREF(Py_None), Py_None)
        : PyUnicode_FromStringAndSize(out.data ? out.data : "", (Py_ssize_t)out.len);
    buf_free(&out);
    return r;
}

/* urls._key_from_href(url): the compiled twin directly when urls installed it. */
static int key_is_c;  /* C.key_fn is lw_key_from_href (set by configure) */

static int key_and_domain(walk_t *w, PyObject *href_out, got_t *g);

/* resolve_link(href, page.base) on the href's UTF-8 + the internal flag: fills *g (url NULL
   for None); -1 with an exception set. */
static int resolve_utf8(walk_t *w, const char *data, size_t n, got_t *g) {
    g->url = g->key = NULL;
    g->internal = 0;
    PyObject *href_out = NULL;
    int simple = resolve_simple(w->base, data, n, &w->joined);
    if (simple < 0)
        return -1;
    if (simple) {
        if (w->joined.len > (size_t)C.max_url_length)
            return 0;
        href_out = ascii_str(w->joined.data, w->joined.len);  /* ASCII href and base */
        if (href_out == NULL)
            return -1;
        return key_and_domain(w, href_out, g);
    }
    const char *base = PyBytes_AS_STRING(w->base_utf8);
    size_t base_n = (size_t)PyBytes_GET_SIZE(w->base_utf8);
    /* an absolute http(s) href never reads the base (URL Standard §4.4, special authority
       slashes state): parse it alone, which is several times cheaper */
    ada_url url = (n >= 7 && memcmp(data, "http://", 7) == 0) ||
                  (n >= 8 && memcmp(data, "https://", 8) == 0)
        ? ada_parse_abs(data, n) : ada_parse_with_base(data, n, base, base_n);
    if (ada_is_valid(url)) {
        ada_string s = ada_get_href(url);
        int http = (s.length >= 7 && memcmp(s.data, "http://", 7) == 0) ||
                   (s.length >= 8 && memcmp(s.data, "https://", 8) == 0);
        /* len(url) > MAX_URL_LENGTH counts characters: bytes are an upper bound */
        if (http && (s.length <= (size_t)C.max_url_length || !is_ascii(s.data, s.length))) {
            href_out = is_ascii(s.data, s.length)
                ? ascii_str(s.data, s.length)
                : PyUnicode_DecodeUTF8(s.data, (Py_ssize_t)s.length, "strict");
            if (href_out == NULL) {
                ada_free(url);
                return -1;
            }
            if (PyUnicode_GET_LENGTH(href_out) > C.max_url_length)
                Py_CLEAR(href_out);
        }
    }
    ada_free(url);
    if (href_out == NULL)
        return 0;
    return key_and_domain(w, href_out, g);
}

/* The rest of resolve_utf8 for a resolved http(s) URL (a reference stolen): its key and
   internal flag into *g; a key that raises InvalidUrl leaves *g empty. */
static int key_and_domain(walk_t *w, PyObject *href_out, got_t *g) {
    PyObject *key = key_is_c ? key_of(href_out) : PyObject_CallOneArg(C.key_fn, href_out);
    if (key == NULL) {
        Py_DECREF(href_out);
        if (!PyErr_ExceptionMatches(C.invalid_url))
            return -1;
        PyErr_Clear();
        return 0;
    }
    int internal = internal_of(w, key);
    if (internal < 0) {
        Py_DECREF(href_out);
        Py_DECREF(key);
        return -1;
    }
    g->url = href_out;
    g->key = key;
    g->internal = internal;
    return 0;
}

/* resolve_utf8 for a str (None or absent: ""). */
static int resolve(walk_t *w, PyObject *href, got_t *g) {
    PyObject *s = (href == NULL || href == Py_None) ? S_empty : href;
    Py_ssize_t n;
    const char *data = PyUnicode_AsUTF8AndSize(s, &n);
    if (data == NULL) {
        g->url = g->key = NULL;
        g->internal = 0;
        if (!PyErr_ExceptionMatches(PyExc_UnicodeError))
            return -1;
        PyErr_Clear();  /* lone surrogates: not a URL */
        return 0;
    }
    return resolve_utf8(w, data, (size_t)n, g);
}

/* (kind, ...) flags of rel: nofollow, ugc, sponsored. ASCII here; anything else in Python. */
static int rel_flags(lw_node *el, int *nf, int *ugc, int *sp) {
    size_t n;
    int found;
    const unsigned char *v = attr_get(el, "rel", &n, &found);
    *nf = *ugc = *sp = 0;
    if (v == NULL || n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] >= 0x80) {
            /* Unicode lowercasing and whitespace: ask str itself */
            PyObject *s = decode(v, n);
            if (s == NULL)
                return -1;
            PyObject *low = PyObject_CallMethod(s, "lower", NULL);
            Py_DECREF(s);
            if (low == NULL)
                return -1;
            PyObject *toks = PyUnicode_Split(low, NULL, -1);
            Py_DECREF(low);
            if (toks == NULL)
                return -1;
            const char *words[3] = {"nofollow", "ugc", "sponsored"};
            int *flags[3] = {nf, ugc, sp};
            for (int k = 0; k < 3; k++) {
                PyObject *w = PyUnicode_FromString(words[k]);
                int has = w ? PySequence_Contains(toks, w) : -1;
                Py_XDECREF(w);
                if (has < 0) {
                    Py_DECREF(toks);
                    return -1;
                }
                *flags[k] = has;
            }
            Py_DECREF(toks);
            return 0;
        }
    }
    size_t i = 0;
    while (i < n) {
        while (i < n && Py_UNICODE_ISSPACE(v[i]))
            i++;
        size_t j = i;
        while (j < n && !Py_UNICODE_ISSPACE(v[j]))
            j++;
        size_t len = j - i;
        char tok[10];
        if (len > 0 && len <= 9) {
            for (size_t k = 0; k < len; k++)
                tok[k] = (char)Py_TOLOWER(v[i + k]);
            tok[len] = 0;
            if (strcmp(tok, "nofollow") == 0) *nf = 1;
            else if (strcmp(tok, "ugc") == 0) *ugc = 1;
            else if (strcmp(tok, "sponsored") == 0) *sp = 1;
        }
        i = j;
    }
    return 0;
}

/* resolve() of an <a>/<area>/<img> attribute by its raw bytes (NULL: absent or valueless,
   which resolve as ""): the borrowed result, NULL on error. Repeats are found by bytes,
   without decoding the attribute again; ASCII values (nearly all) are resolved from the
   bytes themselves (decoding them as selectolax does gives back the same bytes). */
static got_t *resolve_attr(walk_t *w, const unsigned char *v, size_t n) {
    int fresh;
    ht_slot *slot = ht_get(&w->hrefs, v ? (const void *)v : "", v ? n : 0, &fresh);
    if (slot == NULL)
        return NULL;
    if (!fresh)
        return &w->got[slot->value];
    if (w->n_got == w->cap_got) {
        size_t cap = w->cap_got ? w->cap_got * 2 : 256;
        got_t *ng = PyMem_Realloc(w->got, cap * sizeof(got_t));
        if (ng == NULL) {
            slot->value = -1;  /* forget the key: the walk fails anyway */
            w->hrefs.used--;
            PyErr_NoMemory();
            return NULL;
        }
        w->got = ng;
        w->cap_got = cap;
    }
    got_t *g = &w->got[w->n_got];
    int rc;
    if (v == NULL) {
        rc = resolve_utf8(w, "", 0, g);
    } else if (is_ascii((const char *)v, n)) {
        rc = resolve_utf8(w, (const char *)v, n, g);
    } else {
        PyObject *href = decode(v, n);
        rc = href ? resolve(w, href, g) : -1;
        Py_XDECREF(href);
    }
    if (rc < 0) {
        slot->value = -1;
        w->hrefs.used--;
        return NULL;
    }
    slot->value = (Py_ssize_t)w->n_got++;
    return g;
}


/* The collapsed text in `c` (fed from `node`'s text, or from attribute bytes `v`), cut to
   `cap` code points, as UTF-8 bytes; when the input was not valid UTF-8, the Python reading
   as a str in *obj (new reference) and its UTF-8. */
static int collapsed_bytes(collapser *c, lw_node *node, const unsigned char *v, size_t n,
                           Py_ssize_t cap, const char **out, size_t *out_len, PyObject **obj) {
    *obj = NULL;
    col_reset(c, cap);
    if ((node ? feed_text(c, node) : col_feed(c, v, v ? n : 0)) < 0)
        return -1;
    col_end_unit(c);
    if (!c->bad) {
        size_t end = c->out.len;
        if (cap >= 0 && c->chars > cap)
            end = c->nonascii ? utf8_prefix(c->out.data, c->out.len, cap) : (size_t)cap;
        *out = c->out.data ? c->out.data : "";
        *out_len = end;
        return 0;
    }
    PyObject *str = node ? text_str(node) : decode(v, v ? n : 0);
    *obj = str ? py_collapse_head(str, cap) : NULL;
    Py_XDECREF(str);
    if (*obj == NULL)
        return -1;
    Py_ssize_t len;
    *out = PyUnicode_AsUTF8AndSize(*obj, &len);
    if (*out == NULL) {
        Py_CLEAR(*obj);
        return -1;
    }
    *out_len = (size_t)len;
    return 0;
}

static int key_add_part(buf_t *b, const char *s, size_t n) {
    uint32_t len = (uint32_t)n;
    return buf_add(b, &len, sizeof(len)) < 0 ? -1 : buf_add(b, s, n);
}

/* One <a>/<area> occurrence: count it, and append its Link when its identity is new. The
   identity (kind, target_key, anchor, image_url) is looked up as bytes; Python objects are
   made only for a new row. */
static int add_anchor(walk_t *w, pending_t *p) {
    lw_node *node = p->node;
    size_t n;
    int found;
    const unsigned char *hv = attr_get(node, "href", &n, &found);
    got_t *got = resolve_attr(w, hv, n);
    if (got == NULL)
        return -1;
    if (got->url == NULL)
        return 0;
    if (got->internal)
        w->internal++;
    else
        w->external++;
    PyObject *anchor = NULL, *alt = NULL, *link = NULL, *pre = NULL, *post = NULL;
    PyObject *image_url = Py_None;  /* borrowed */
    int rc = -1;
    const char *abytes;
    size_t alen;
    if (p->tag == P_A) {
        if (collapsed_bytes(&w->anchor, node, NULL, 0, w->max_anchor, &abytes, &alen,
                            &anchor) < 0)
            goto out;
    } else {
        const unsigned char *v = attr_get(node, "alt", &n, &found);
        if (collapsed_bytes(&w->anchor, NULL, v, v ? n : 0, w->max_anchor, &abytes, &alen,
                            &anchor) < 0)
            goto out;
    }
    if (p->img != NULL) {
        const unsigned char *src = attr_get(p->img, "src", &n, &found);
        if (src != NULL && n > 0) {  /* `if img_attrs.get("src")`: "" is falsy */
            got_t *g = resolve_attr(w, src, n);
            if (g == NULL)
                goto out;
            if (g->url != NULL)
                image_url = g->url;
        }
    }
    /* identity bytes: kind, key, image_url (or none), anchor */
    {
        Py_ssize_t klen;
        const char *kb = PyUnicode_AsUTF8AndSize(got->key, &klen);
        if (kb == NULL)
            goto out;
        w->key.len = 0;
        char kind = p->img ? 'i' : 'a';
        if (buf_add(&w->key, &kind, 1) < 0 || key_add_part(&w->key, kb, (size_t)klen) < 0)
            goto out;
        if (image_url != Py_None) {
            Py_ssize_t ilen;
            const char *ib = PyUnicode_AsUTF8AndSize(image_url, &ilen);
            if (ib == NULL || buf_add(&w->key, "u", 1) < 0 ||
                key_add_part(&w->key, ib, (size_t)ilen) < 0)
                goto out;
        } else if (buf_add(&w->key, "n", 1) < 0) {
            goto out;
        }
        if (buf_add(&w->key, abytes, alen) < 0)
            goto out;
    }
    int fresh;
    ht_slot *slot = ht_get(&w->idents, w->key.data, w->key.len, &fresh);
    if (slot == NULL)
        goto out;
    if (!fresh) {
        struct ident_t *id = &w->ids[slot->value];
        if (id->row >= 0)
            id->count++;
        rc = 0;
        goto out;
    }
    if (w->n_ids == w->cap_ids) {
        size_t cap = w->cap_ids ? w->cap_ids * 2 : 256;
        struct ident_t *ni = PyMem_Realloc(w->ids, cap * sizeof(*ni));
        if (ni == NULL) {
            PyErr_NoMemory();
            goto out;
        }
        w->ids = ni;
        w->cap_ids = cap;
    }
    slot->value = (Py_ssize_t)w->n_ids;
    struct ident_t *id = &w->ids[w->n_ids++];
    id->count = 1;
    Py_ssize_t row = PyList_GET_SIZE(w->rows);
    if (row >= w->max_links) {
        id->row = -1;
        w->dropped_native++;
        rc = 0;
        goto out;
    }
    id->row = -1;  /* until the row exists */
    if (anchor == NULL &&
        (anchor = w->anchor.nonascii ? PyUnicode_DecodeUTF8(abytes, (Py_ssize_t)alen, "strict")
                                     : ascii_str(abytes, alen)) == NULL)
        goto out;
    Py_INCREF(Py_None);
    alt = Py_None;
    if (p->img != NULL) {
        const unsigned char *a = attr_get(p->img, "alt", &n, &found);
        if (a != NULL) {
            Py_SETREF(alt, collapse_bytes(a, n, w->max_alt));
            if (alt == NULL)
                goto out;
        }
    }
    int nf, ugc, sp;
    if (rel_flags(node, &nf, &ugc, &sp) < 0)
        goto out;
    pre = context(&w->ctx, node, 0, w->context_chars, w->context_siblings);
    if (pre == NULL)
        goto out;
    post = context(&w->ctx, node, 1, w->context_chars, w->context_siblings);
    if (post == NULL)
        goto out;
    {
        PyObject *values[LINK_FIELDS] = {
            got->url, got->key,
            p->img ? C.kind_image : C.kind_anchor, anchor,
            nf ? Py_True : Py_False, ugc ? Py_True : Py_False, sp ? Py_True : Py_False,
            alt, image_url, pre, post, location(node), S_one, Py_None};
        link = new_link(values);
    }
    if (link == NULL || PyList_Append(w->rows, link) < 0 || PyList_Append(w->counts, S_one) < 0)
        goto out;
    id->row = row;
    rc = 0;
out:
    Py_XDECREF(anchor);
    Py_XDECREF(alt);
    Py_XDECREF(link);
    Py_XDECREF(pre);
    Py_XDECREF(post);
    return rc;
}

/* resolve() for a head link: (url, key) or None, new reference. */
static PyObject *resolve_pair(walk_t *w, PyObject *href) {
    got_t g;
    if (resolve(w, href, &g) < 0)
        return NULL;
    if (g.url == NULL)
        Py_RETURN_NONE;
    PyObject *pair = PyTuple_Pack(2, g.url, g.key);
    Py_DECREF(g.url);
    Py_DECREF(g.key);
    return pair;
}

static int add_link(walk_t *w, pending_t *p, PyObject **canonical) {
    PyObject *kh = PyObject_CallOneArg(C.link_fn, p->attrs);
    if (kh == NULL)
        return -1;
    if (kh == Py_None) {
        Py_DECREF(kh);
        return 0;
    }
    PyObject *href = PyDict_GetItemString(p->attrs, "href");  /* borrowed */
    PyObject *got = resolve_pair(w, href);
    int rc = -1;
    if (got == NULL)
        goto out;
    if (got == Py_None) {
        rc = 0;
        goto out;
    }
    PyObject *kind = PyTuple_GET_ITEM(kh, 0);
    if (kind == C.kind_canonical && *canonical == Py_None) {
        Py_SETREF(*canonical, PyTuple_GET_ITEM(got, 0));
        Py_INCREF(*canonical);
    }
    PyObject *rel = PyDict_GetItemString(p->attrs, "rel");
    PyObject *r = PyObject_CallFunctionObjArgs(C.add_head_fn, w->page, kind, got,
                                               PyTuple_GET_ITEM(kh, 1), rel ? rel : Py_None,
                                               NULL);
    if (r != NULL) {
        Py_DECREF(r);
        rc = 0;
    }
out:
    Py_DECREF(kh);
    Py_XDECREF(got);
    return rc;
}

static int add_refresh(walk_t *w, pending_t *p) {
    PyObject *content = PyDict_GetItemString(p->attrs, "content");
    PyObject *arg = (content == NULL || content == Py_None) ? S_empty : content;
    if (PyObject_IsTrue(arg) <= 0)
        arg = S_empty;
    PyObject *target = PyObject_CallOneArg(C.refresh_fn, arg);
    if (target == NULL)
        return -1;
    int truth = PyObject_IsTrue(target);
    if (truth <= 0) {
        Py_DECREF(target);
        return truth;
    }
    PyObject *got = resolve_pair(w, target);
    Py_DECREF(target);
    if (got == NULL)
        return -1;
    int rc = 0;
    if (got != Py_None) {
        PyObject *r = PyObject_CallFunctionObjArgs(C.add_head_fn, w->page, C.kind_meta, got,
                                                   Py_None, Py_None, NULL);
        rc = r ? 0 : -1;
        Py_XDECREF(r);
    }
    Py_DECREF(got);
    return rc;
}

static int get_ssize(PyObject *obj, const char *name, Py_ssize_t *out) {
    PyObject *v = PyObject_GetAttrString(obj, name);
    if (v == NULL)
        return -1;
    *out = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int set_long(PyObject *obj, const char *name, long add) {
    PyObject *v = PyObject_GetAttrString(obj, name);
    if (v == NULL)
        return -1;
    PyObject *d = PyLong_FromLong(add);
    PyObject *s = d ? PyNumber_Add(v, d) : NULL;
    Py_DECREF(v);
    Py_XDECREF(d);
    if (s == NULL)
        return -1;
    int rc = PyObject_SetAttrString(obj, name, s);
    Py_DECREF(s);
    return rc;
}

/* The tables and buffers of a walk, kept for the next one: allocating and freeing them for
   every page cost page faults as well as time. A walk that starts while another is inside
   a Python callback (another thread) makes its own and frees them. Anything grown past a
   few MiB by a huge page is freed rather than kept. */
typedef struct {
    htab hrefs, hosts, idents;
    got_t *got;
    size_t cap_got;
    struct ident_t *ids;
    size_t cap_ids;
    buf_t key, joined, anchor, fwd, rev;
    pending_t *pending;
    size_t cap_pending;
} spare_t;

static spare_t spare;
static int spare_busy;

#define KEEP_SLOTS ((size_t)1 << 16)
#define KEEP_BYTES ((size_t)1 << 22)
#define TABLE_SLOTS ((size_t)1 << 10)

static void spare_take(walk_t *w, pending_t **pending, size_t *cap_pending) {
    w->hrefs = spare.hrefs;
    w->hosts = spare.hosts;
    w->idents = spare.idents;
    w->got = spare.got;
    w->cap_got = spare.cap_got;
    w->ids = spare.ids;
    w->cap_ids = spare.cap_ids;
    w->key = spare.key;
    w->joined = spare.joined;
    w->anchor.out = spare.anchor;
    w->ctx.fwd.out = spare.fwd;
    w->ctx.rev = spare.rev;
    *pending = spare.pending;
    *cap_pending = spare.cap_pending;
    memset(&spare, 0, sizeof(spare));
    spare_busy = 1;
}

static void ht_recycle(htab *t) {
    if (t->arena.cap > KEEP_BYTES) {
        ht_free(t);
        return;
    }
    if (t->cap > TABLE_SLOTS) {
        /* a page with many links grew it: a big table would spread the next page's few
           entries over more cache lines than they need, so start small again */
        PyMem_Free(t->slots);
        t->slots = NULL;
        t->cap = 0;
    }
    ht_clear(t);
}

static buf_t buf_recycle(buf_t *b) {
    if (b->cap > KEEP_BYTES)
        buf_free(b);
    b->len = 0;
    return *b;
}

/* A slot array kept for the next walk, unless one page grew it past KEEP_SLOTS. */
static void *keep_slots(void *p, size_t *cap) {
    if (*cap > KEEP_SLOTS) {
        PyMem_Free(p);
        *cap = 0;
        return NULL;
    }
    return p;
}

/* Give the (emptied) tables and buffers back for the next walk. */
static void spare_give(walk_t *w, pending_t *pending, size_t cap_pending) {
    ht_recycle(&w->hrefs);
    ht_recycle(&w->hosts);
    ht_recycle(&w->idents);
    spare.hrefs = w->hrefs;
    spare.hosts = w->hosts;
    spare.idents = w->idents;
    spare.got = w->got = keep_slots(w->got, &w->cap_got);
    spare.cap_got = w->cap_got;
    spare.ids = w->ids = keep_slots(w->ids, &w->cap_ids);
    spare.cap_ids = w->cap_ids;
    spare.key = buf_recycle(&w->key);
    spare.joined = buf_recycle(&w->joined);
    spare.anchor = buf_recycle(&w->anchor.out);
    spare.fwd = buf_recycle(&w->ctx.fwd.out);
    spare.rev = buf_recycle(&w->ctx.rev);
    if (cap_pending > KEEP_SLOTS) {
        PyMem_Free(pending);
        pending = NULL;
        cap_pending = 0;
    }
    spare.pending = pending;
    spare.cap_pending = cap_pending;
    spare_busy = 0;
}

/* Upper bound on nodes visited by one walk: far above what 8 MiB of markup can make. */
#define MAX_NODES ((size_t)1 << 28)

static PyObject *lw_walk(PyObject *self, PyObject *args) {
    unsigned long long root_addr;
    PyObject *keepalive, *page, *limits;
    if (!PyArg_ParseTuple(args, "KOOO", &root_addr, &keepalive, &page, &limits))
        return NULL;
    if (!C.ready || link_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_linkwalk.configure*() were not called");
        return NULL;
    }
    (void)keepalive;  /* the caller's reference keeps the parser (and the tree) alive */
    lw_node *root = (lw_node *)(uintptr_t)root_addr;
    walk_t w;
    base_t base_split;
    memset(&w, 0, sizeof(w));
    memset(&base_split, 0, sizeof(base_split));
    w.base = &base_split;
    w.page = page;
    pending_t *pending = NULL;
    size_t n_pending = 0, cap_pending = 0;
    PyObject *title = NULL, *canonical = NULL, *robots = NULL, *result = NULL;
    PyObject *base_href = NULL;
    Py_ssize_t max_title, siblings;
    if (get_ssize(limits, "max_links", &w.max_links) < 0 ||
        get_ssize(limits, "max_anchor", &w.max_anchor) < 0 ||
        get_ssize(limits, "max_alt", &w.max_alt) < 0 ||
        get_ssize(limits, "max_title", &max_title) < 0 ||
        get_ssize(limits, "context_chars", &w.context_chars) < 0 ||
        get_ssize(limits, "context_siblings", &siblings) < 0)
        return NULL;
    w.context_siblings = siblings > 1 << 20 ? 1 << 20 : (long)siblings;
    int took = !spare_busy;
    if (took)
        spare_take(&w, &pending, &cap_pending);
    robots = PyList_New(0);
    if (robots == NULL)
        goto fail;
    Py_INCREF(Py_None);
    canonical = Py_None;

    /* Pass 1: document order (the order of tree.css(_LINK_SELECTOR)), <base>, robots,
       image ownership. */
    {
        size_t last_a = (size_t)-1;
        size_t visited = 0;
        for (lw_node *n = root ? root->first_child : NULL; n != NULL; n = next_in(n, root)) {
            if (++visited > MAX_NODES) {
                PyErr_SetString(PyExc_RuntimeError, "document too large for the native walk");
                goto fail;
            }
            if (!is_element(n))
                continue;
            uintptr_t t = tag_of(n);
            int ptag = -1;
            if (t == C.tag[T_A]) {
                if (!has_attr_local(n, "href"))
                    continue;
                ptag = P_A;
            } else if (t == C.tag[T_IMG]) {
                if (last_a != (size_t)-1 && pending[last_a].img == NULL &&
                    owner_is(n, pending[last_a].node))
                    pending[last_a].img = n;
                continue;
            } else if (t == C.tag[T_AREA] || t == C.tag[T_LINK]) {
                if (!has_attr_local(n, "href"))
                    continue;
                ptag = t == C.tag[T_AREA] ? P_AREA : P_LINK;
            } else if (t == C.tag[T_META]) {
                PyObject *attrs = attr_dict(n);
                if (attrs == NULL)
                    goto fail;
                PyObject *role = PyObject_CallOneArg(C.meta_fn, attrs);
                if (role == NULL) {
                    Py_DECREF(attrs);
                    goto fail;
                }
                if (role == Py_None) {
                    Py_DECREF(attrs);
                    Py_DECREF(role);
                    continue;
                }
                if (PyUnicode_CompareWithASCIIString(role, "robots") == 0) {
                    PyObject *content = PyDict_GetItemString(attrs, "content");
                    int rc = content ? PyList_Append(robots, content) : 0;
                    Py_DECREF(attrs);
                    Py_DECREF(role);
                    if (rc < 0)
                        goto fail;
                    continue;
                }
                Py_DECREF(role);
                ptag = P_META;
                if (n_pending == cap_pending) {
                    size_t cap = cap_pending ? cap_pending * 2 : 256;
                    pending_t *np = PyMem_Realloc(pending, cap * sizeof(pending_t));
                    if (np == NULL) {
                        Py_DECREF(attrs);
                        PyErr_NoMemory();
                        goto fail;
                    }
                    pending = np;
                    cap_pending = cap;
                }
                pending[n_pending++] = (pending_t){P_META, n, NULL, attrs};
                continue;
            } else if (t == C.tag[T_BASE]) {
                if (base_href == NULL && has_attr_local(n, "href")) {
                    base_href = attr_str(n, "href");
                    if (base_href == NULL)
                        goto fail;
                }
                continue;
            } else if (t == C.tag[T_TITLE]) {
                if (title == NULL) {
                    title = collapsed_text(n, max_title);
                    if (title == NULL)
                        goto fail;
                }
                continue;
            } else {
                continue;
            }
            if (n_pending == cap_pending) {
                size_t cap = cap_pending ? cap_pending * 2 : 256;
                pending_t *np = PyMem_Realloc(pending, cap * sizeof(pending_t));
                if (np == NULL) {
                    PyErr_NoMemory();
                    goto fail;
                }
                pending = np;
                cap_pending = cap;
            }
            PyObject *attrs = NULL;
            if (ptag == P_LINK && (attrs = attr_dict(n)) == NULL)
                goto fail;
            pending[n_pending] = (pending_t){ptag, n, NULL, attrs};
            if (ptag == P_A)
                last_a = n_pending;
            n_pending++;
        }
    }
    if (base_href != NULL) {
        /* HTML §2.4.1 frozen base URL: parse_url(href or "", page.base) or page.base */
        PyObject *old = PyObject_GetAttrString(page, "base");
        if (old == NULL)
            goto fail;
        int truth = PyObject_IsTrue(base_href);
        PyObject *got = truth < 0 ? NULL
            : PyObject_CallFunctionObjArgs(C.parse_url_fn, truth ? base_href : S_empty, old, NULL);
        if (got == NULL) {
            Py_DECREF(old);
            goto fail;
        }
        truth = PyObject_IsTrue(got);
        int rc = truth < 0 ? -1 : PyObject_SetAttrString(page, "base", truth ? got : old);
        Py_DECREF(old);
        Py_DECREF(got);
        if (rc < 0)
            goto fail;
        PyObject *resolved = PyObject_GetAttrString(page, "resolved");
        if (resolved == NULL)
            goto fail;
        if (PyDict_Check(resolved))
            PyDict_Clear(resolved);
        Py_DECREF(resolved);
    }

    /* Pass 2 */
    {
        PyObject *base = PyObject_GetAttrString(page, "base");
        if (base == NULL)
            goto fail;
        w.base_utf8 = PyUnicode_AsUTF8String(base);
        Py_DECREF(base);
        if (w.base_utf8 == NULL)
            goto fail;
        base_init(&base_split, PyBytes_AS_STRING(w.base_utf8),
                  (size_t)PyBytes_GET_SIZE(w.base_utf8));
        w.base = &base_split;
    }
    if ((w.page_domain = PyObject_GetAttrString(page, "page_domain")) == NULL ||
        (w.domains = PyObject_GetAttrString(page, "domains")) == NULL ||
        (w.rows = PyObject_GetAttrString(page, "rows")) == NULL ||
        (w.counts = PyObject_GetAttrString(page, "counts")) == NULL ||
        (w.index = PyObject_GetAttrString(page, "index")) == NULL ||
        (w.dropped = PyObject_GetAttrString(page, "dropped")) == NULL)
        goto fail;
    if (!PyList_Check(w.rows) || !PyList_Check(w.counts) || !PyDict_Check(w.index) ||
        !PyDict_Check(w.domains) ||
        !PySet_Check(w.dropped)) {
        PyErr_SetString(PyExc_TypeError, "unexpected page state types");
        goto fail;
    }
    if (!PyUnicode_Check(w.page_domain)) {
        PyErr_SetString(PyExc_TypeError, "page_domain is not a str");
        goto fail;
    }
    w.page_domain_s = PyUnicode_AsUTF8AndSize(w.page_domain, &w.page_domain_n);
    if (w.page_domain_s == NULL)
        goto fail;
    for (size_t i = 0; i < n_pending; i++) {
        pending_t *p = &pending[i];
        int rc;
        if (p->tag == P_A || p->tag == P_AREA)
            rc = add_anchor(&w, p);
        else if (p->tag == P_LINK)
            rc = add_link(&w, p, &canonical);
        else
            rc = add_refresh(&w, p);
        if (rc < 0)
            goto fail;
    }
    /* counts of the rows made here (the identities counted in C) */
    for (size_t i = 0; i < w.n_ids; i++) {
        if (w.ids[i].row < 0 || w.ids[i].count == 1)
            continue;
        PyObject *c = PyLong_FromSsize_t(w.ids[i].count);
        if (c == NULL || PyList_SetItem(w.counts, w.ids[i].row, c) < 0)
            goto fail;
    }
    if (set_long(page, "internal", w.internal) < 0 || set_long(page, "external", w.external) < 0)
        goto fail;
    if (title == NULL) {
        Py_INCREF(Py_None);
        title = Py_None;
    }
    {
        PyObject *dropped = PyLong_FromSsize_t(w.dropped_native);
        if (dropped != NULL) {
            result = PyTuple_Pack(4, title, canonical, robots, dropped);
            Py_DECREF(dropped);
        }
    }
fail:
    for (size_t i = 0; i < w.n_got; i++) {
        Py_XDECREF(w.got[i].url);
        Py_XDECREF(w.got[i].key);
    }
    for (size_t i = 0; i < n_pending; i++)
        Py_XDECREF(pending[i].attrs);
    if (took) {
        spare_give(&w, pending, cap_pending);
    } else {
        PyMem_Free(w.got);
        PyMem_Free(w.ids);
        ht_free(&w.hrefs);
        ht_free(&w.hosts);
        ht_free(&w.idents);
        buf_free(&w.key);
        buf_free(&w.joined);
        buf_free(&w.anchor.out);
        ctx_free(&w.ctx);
        PyMem_Free(pending);
    }
    Py_XDECREF(title);
    Py_XDECREF(canonical);
    Py_XDECREF(robots);
    Py_XDECREF(base_href);
    Py_XDECREF(w.base_utf8);
    Py_XDECREF(w.page_domain);
    Py_XDECREF(w.domains);
    Py_XDECREF(w.rows);
    Py_XDECREF(w.counts);
    Py_XDECREF(w.index);
    Py_XDECREF(w.dropped);
    return result;
}

/* ------------------------------------------------------------------ configuration, probes */

static void *sym(void *handle, const char *name) {
    void *p = dlsym(handle, name);
    if (p == NULL)
        PyErr_Format(PyExc_ImportError, "symbol %s not found", name);
    return p;
}

#define LOAD(h, var, name) \
    do { *(void **)(&(var)) = sym((h), (name)); if ((var) == NULL) return NULL; } while (0)

static PyObject *lw_configure(PyObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {
        "lexbor_path", "ada_path", "tag_ids", "semantic", "kinds", "key_fn", "invalid_url",
        "max_url_length", "meta_fn", "link_fn", "refresh_fn", "add_head_fn", "collapse_fn",
        "parse_url_fn", "domain_fn", NULL};
    const char *lexbor_path, *ada_path;
    PyObject *tag_ids, *semantic, *kinds, *key_fn, *invalid_url, *meta_fn, *link_fn;
    PyObject *refresh_fn, *add_head_fn, *collapse_fn, *parse_url_fn, *domain_fn;
    Py_ssize_t max_url_length;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ssO!O!O!OOnOOOOOOO", names, &lexbor_path,
                                     &ada_path, &PyDict_Type, &tag_ids, &PyDict_Type, &semantic,
                                     &PyTuple_Type, &kinds, &key_fn, &invalid_url,
                                     &max_url_length, &meta_fn, &link_fn, &refresh_fn,
                                     &add_head_fn, &collapse_fn, &parse_url_fn, &domain_fn))
        return NULL;
    C.ready = 0;
    /* RTLD_NOLOAD: only libraries the interpreter already loaded (selectolax, ada-url). */
    void *lx = dlopen(lexbor_path, RTLD_NOW | RTLD_NOLOAD);
    if (lx == NULL)
        return PyErr_Format(PyExc_ImportError, "lexbor module not loaded: %s", lexbor_path);
    void *ada = dlopen(ada_path, RTLD_NOW | RTLD_NOLOAD);
    if (ada == NULL)
        return PyErr_Format(PyExc_ImportError, "ada module not loaded: %s", ada_path);
    LOAD(lx, lxb_first_attr, "lxb_dom_element_first_attribute_noi");
    LOAD(lx, lxb_next_attr, "lxb_dom_element_next_attribute_noi");
    LOAD(lx, lxb_attr_local_name, "lxb_dom_attr_local_name_noi");
    LOAD(lx, lxb_attr_qualified_name, "lxb_dom_attr_qualified_name");
    LOAD(lx, lxb_attr_value, "lxb_dom_attr_value_noi");
    LOAD(lx, lxb_tag_id, "lxb_dom_node_tag_id_noi");
    LOAD(lx, lxb_next, "lxb_dom_node_next_noi");
    LOAD(lx, lxb_prev, "lxb_dom_node_prev_noi");
    LOAD(lx, lxb_parent, "lxb_dom_node_parent_noi");
    LOAD(lx, lxb_first_child, "lxb_dom_node_first_child_noi");
    LOAD(lx, lxb_last_child, "lxb_dom_node_last_child_noi");
    LOAD(lx, lxb_type, "lxb_dom_node_type_noi");
    LOAD(ada, ada_parse_with_base, "ada_parse_with_base");
    LOAD(ada, ada_is_valid, "ada_is_valid");
    LOAD(ada, ada_get_href, "ada_get_href");
    LOAD(ada, ada_free, "ada_free");
    LOAD(ada, ada_parse_abs, "ada_parse");
    /* dlopen(NOLOAD) took a reference; the modules stay loaded for the process anyway */
    for (int i = 0; i < T_COUNT; i++) {
        PyObject *v = PyDict_GetItemString(tag_ids, TAG_NAMES[i]);
        if (v == NULL)
            return PyErr_Format(PyExc_ValueError, "tag id of %s missing", TAG_NAMES[i]);
        C.tag[i] = (uintptr_t)PyLong_AsUnsignedLongLong(v);
        if (PyErr_Occurred())
            return NULL;
    }
    for (int i = 0; i < C.n_semantic; i++)
        Py_CLEAR(C.semantic_name[i]);
    C.n_semantic = 0;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(semantic, &pos, &k, &v)) {
        if (C.n_semantic >= MAX_SEMANTIC || !PyUnicode_Check(v))
            return PyErr_Format(PyExc_ValueError, "bad semantic tag table");
        C.semantic_id[C.n_semantic] = (uintptr_t)PyLong_AsUnsignedLongLong(k);
        if (PyErr_Occurred())
            return NULL;
        Py_INCREF(v);
        C.semantic_name[C.n_semantic++] = v;
    }
    memset(semantic_by_id, 0, sizeof(semantic_by_id));
    for (int i = 0; i < C.n_semantic; i++)
        if (C.semantic_id[i] < SEMANTIC_TABLE)
            semantic_by_id[C.semantic_id[i]] = C.semantic_name[i];
    PyObject *ka, *ki, *km, *kc;
    if (!PyArg_ParseTuple(kinds, "OOOO", &ka, &ki, &km, &kc))
        return NULL;
    PyObject *va = PyObject_GetAttrString(ka, "value");
    PyObject *vi = va ? PyObject_GetAttrString(ki, "value") : NULL;
    if (vi == NULL) {
        Py_XDECREF(va);
        return NULL;
    }
#define KEEP(field, obj) do { Py_INCREF(obj); Py_XSETREF(C.field, obj); } while (0)
    KEEP(kind_anchor, ka);
    KEEP(kind_image, ki);
    KEEP(kind_meta, km);
    KEEP(kind_canonical, kc);
    Py_XSETREF(C.value_anchor, va);
    Py_XSETREF(C.value_image, vi);
    KEEP(key_fn, key_fn);
    key_is_c = PyCFunction_Check(key_fn) &&
               PyCFunction_GET_FUNCTION(key_fn) == (PyCFunction)lw_key_from_href &&
               key_fallback != NULL;
    KEEP(invalid_url, invalid_url);
    KEEP(meta_fn, meta_fn);
    KEEP(link_fn, link_fn);
    KEEP(refresh_fn, refresh_fn);
    KEEP(add_head_fn, add_head_fn);
    KEEP(collapse_fn, collapse_fn);
    KEEP(parse_url_fn, parse_url_fn);
    KEEP(domain_fn, domain_fn);
    C.max_url_length = max_url_length;
    C.ready = 1;
    Py_RETURN_NONE;
}

/* Compare the node layout declared above with lexbor's accessor functions over a tree:
   True when every node agrees. Run on a small trusted document before any walk. */
static PyObject *lw_probe(PyObject *self, PyObject *args) {
    unsigned long long addr;
    PyObject *keepalive;
    if (!PyArg_ParseTuple(args, "KO", &addr, &keepalive))
        return NULL;
    if (lxb_next == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_linkwalk.configure() was not called");
        return NULL;
    }
    lw_node *root = (lw_node *)(uintptr_t)addr;
    size_t count = 0;
    for (lw_node *n = root; n != NULL && count < 100000; n = next_in(n, root), count++) {
        if (n->next != lxb_next(n) || n->prev != lxb_prev(n) || n->parent != lxb_parent(n) ||
            n->first_child != lxb_first_child(n) || n->last_child != lxb_last_child(n) ||
            n->type != lxb_type(n) ||
            n->local_name != lxb_tag_id(n))
            Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

/* node.text() for one node address (checks the character-data layout). */
static PyObject *lw_text(PyObject *self, PyObject *args) {
    unsigned long long addr;
    PyObject *keepalive;
    if (!PyArg_ParseTuple(args, "KO", &addr, &keepalive))
        return NULL;
    if (!C.ready) {
        PyErr_SetString(PyExc_RuntimeError, "_linkwalk.configure() was not called");
        return NULL;
    }
    return text_str((lw_node *)(uintptr_t)addr);
}

/* collapse(text)[:cap] through the C collapser (for tests). */
static PyObject *lw_collapse(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t cap = -1;
    if (!PyArg_ParseTuple(args, "U|n", &text, &cap))
        return NULL;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s == NULL)
        return NULL;
    if (!C.ready) {
        PyErr_SetString(PyExc_RuntimeError, "_linkwalk.configure() was not called");
        return NULL;
    }
    return collapse_bytes((const unsigned char *)s, (size_t)n, cap);
}


/* [Link(*row[:4], row[4] or nofollow, *row[5:12], count, row[12]) for row, count in ...]:
   the objects Link(...) makes (a frozen slots dataclass without __post_init__, checked by
   configure_links), without running its generated __init__ (~3 us for 14 object.__setattr__). */
static PyObject *lw_build_links(PyObject *self, PyObject *args) {
    PyObject *rows, *counts;
    int nofollow;
    if (!PyArg_ParseTuple(args, "O!O!p", &PyList_Type, &rows, &PyList_Type, &counts, &nofollow))
        return NULL;
    if (link_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_linkwalk.configure_links() was not called");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(rows);
    if (PyList_GET_SIZE(counts) != n) {
        PyErr_SetString(PyExc_ValueError, "rows and counts differ in length");
        return NULL;
    }
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (Py_IS_TYPE(row, link_type)) {
            /* made by walk(): only its count and the page-level nofollow are missing */
            PyObject **count = (PyObject **)((char *)row + link_offset[12]);
            PyObject **nf = (PyObject **)((char *)row + link_offset[4]);
            PyObject *c = PyList_GET_ITEM(counts, i);
            Py_INCREF(c);
            Py_XSETREF(*count, c);
            if (nofollow && *nf != Py_True) {
                Py_INCREF(Py_True);
                Py_XSETREF(*nf, Py_True);
            }
            Py_INCREF(row);
            PyList_SET_ITEM(out, i, row);
            continue;
        }
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 13) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_TypeError, "a link row is not a 13-tuple");
            return NULL;
        }
        PyObject *values[LINK_FIELDS];
        for (int k = 0; k < 12; k++)
            values[k] = PyTuple_GET_ITEM(row, k);
        if (nofollow) {
            int truth = PyObject_IsTrue(values[4]);
            if (truth < 0) {
                Py_DECREF(out);
                return NULL;
            }
            if (!truth)
                values[4] = Py_True;
        }
        values[12] = PyList_GET_ITEM(counts, i);
        values[13] = PyTuple_GET_ITEM(row, 12);
        PyObject *link = link_type->tp_alloc(link_type, 0);
        if (link == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        for (int k = 0; k < LINK_FIELDS; k++) {
            Py_INCREF(values[k]);
            *(PyObject **)((char *)link + link_offset[k]) = values[k];
        }
        PyList_SET_ITEM(out, i, link);
    }
    return out;
}

static PyObject *lw_configure_links(PyObject *self, PyObject *args) {
    PyObject *type, *names;
    if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &type, &PyTuple_Type, &names))
        return NULL;
    Py_ssize_t offsets[LINK_FIELDS];
    if (slot_offsets(type, names, offsets, LINK_FIELDS, 1) < 0)
        return NULL;
    Py_INCREF(type);
    Py_XSETREF(link_type, (PyTypeObject *)type);
    memcpy(link_offset, offsets, sizeof(offsets));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))lw_configure, METH_VARARGS | METH_KEYWORDS,
     "Bind lexbor/ada symbols and inlink's rules; raises ImportError when unavailable."},
    {"walk", lw_walk, METH_VARARGS,
     "walk(root_address, parser, page, limits) -> (title, canonical, robots contents)."},
    {"build_links", lw_build_links, METH_VARARGS,
     "build_links(rows, counts, nofollow) -> list[Link] (see extract())."},
    {"configure_links", lw_configure_links, METH_VARARGS,
     "configure_links(Link, field_names): bind the Link slots build_links fills."},
    {"probe", lw_probe, METH_VARARGS, "probe(root_address, parser) -> layout agrees"},
    {"text", lw_text, METH_VARARGS, "text(node_address, parser) -> node.text()"},
    {"collapse", lw_collapse, METH_VARARGS, "collapse(text, cap=-1) -> collapsed text"},
    {"key_from_href", lw_key_from_href, METH_O,
     "key_from_href(href) -> index key: the compiled twin of urls._key_from_href_py."},
    {"configure_keys", lw_configure_keys, METH_VARARGS,
     "configure_keys(ada_path, python_key_fn): bind ada's parser and the Python twin."},
    {"nesting_cut", lw_nesting_cut, METH_VARARGS,
     "nesting_cut(data, max_depth) -> offset or None: twin of extract.nesting_cut."},
    {"resolve_simple", lw_resolve_simple, METH_VARARGS,
     "resolve_simple(href, base) -> URL, or None when the href is left to ada (tests)."},
    {"utf8_valid", lw_utf8_valid, METH_O,
     "utf8_valid(data) -> int or None: twin of extract._utf8_valid."},
    {"count_lt", lw_count_lt, METH_O, "count_lt(data) -> data.count(b'<')"},
    {"configure_nesting", lw_configure_nesting, METH_O,
     "configure_nesting(sorted_flat_keys): the tag keys nesting_cut ignores."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_linkwalk",
    "Native fast path of inlink.extract's link walk (see docs/extract.md).", -1, methods};

PyMODINIT_FUNC PyInit__linkwalk(void) {
    for (int ch = 0; ch < 128; ch++)
        ws_ascii[ch] = Py_UNICODE_ISSPACE((Py_UCS4)ch) ? 1 : 0;
    for (const char *c = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                         "-._~!$&()*+,;=:@/?#"; *c; c++)
        url_safe[(unsigned char)*c] = 1;
    S_empty = PyUnicode_InternFromString("");
    S_lstrip = PyUnicode_InternFromString("lstrip");
    S_rstrip = PyUnicode_InternFromString("rstrip");
    S_sep = PyUnicode_InternFromString("://");
    S_one = PyLong_FromLong(1);
    if (!S_empty || !S_lstrip || !S_rstrip || !S_sep || !S_one)
        return NULL;
    return PyModule_Create(&module);
}
