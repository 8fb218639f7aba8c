/* The compiled fast path of limits + decode (see receiver/ingest/decode.py, "Compiled fast
 * path"): one pass over the raw bytes of an Export request, giving exactly the rows the Python
 * path gives, or None whenever anything is unusual (a limit that would act, an invalid item, a
 * malformed field, ...). None sends the request down the Python path, which then decides and
 * words every answer, so errors, partial success and truncation stay the Python path's.
 *
 * Every read is bounds-checked; recursion (nested AnyValues) stops at MAX_WALK_DEPTH. The GIL
 * is held throughout, so the pair cache needs no lock.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_WALK_DEPTH 20 /* array/kvlist levels judged here (deeper: Python), well within
                           * protobuf's 100 nested messages */
#define CACHE_SLOTS 8192  /* (key, string) pairs of short scalar KeyValues, direct-mapped */
#ifndef CACHE_MAX_BYTES
#define CACHE_MAX_BYTES 256
#endif
#define SMALL_ATTRS 64
#define INT64_MAX_U ((uint64_t)INT64_MAX)

/* Objects from the Python side (configure()). */
static PyObject *g_empty;        /* decode.EMPTY, the shared empty array column */
static PyObject *g_wire_pair;    /* anyvalue.wire_pair */
static PyObject *g_any_value;    /* bytes -> any_value_to_str(AnyValue.FromString(bytes)) */
static PyObject *g_event_name;   /* decode.log_event_name */
static PyObject *g_span_kinds;   /* decode.SPAN_KINDS */
static PyObject *g_status_codes; /* decode.STATUS_CODES */
static PyObject *g_tables;       /* table names, in the order of the T_ enum */
static PyObject *g_true, *g_false, *g_blank, *g_service_key, *g_event_key;

typedef struct {
    long long max_items, max_attributes, max_key, max_value, max_depth, max_events, max_links;
    long long latest, earliest; /* timestamp window; 0 = none */
    PyObject *tenant;           /* str; empty for none */
} Limits;

/* ---- the wire format ------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
} Buf;

typedef struct {
    uint32_t number;
    int wt;
    uint64_t v;
    const uint8_t *data;
    size_t len;
} Field;

static int read_varint(Buf *b, uint64_t *out) {
    uint64_t value = 0;
    for (int i = 0; i < 10; i++) {
        if (b->p >= b->end)
            return 0;
        uint8_t byte = *b->p++;
        if (i == 9 && byte > 1)
            return 0; /* beyond 64 bits: leave it to protobuf */
        value |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (byte < 0x80) {
            *out = value;
            return 1;
        }
    }
    return 0;
}

/* The next field: 1, 0 at the end, -1 for anything protobuf might read differently. */
static int next_field(Buf *b, Field *f) {
    if (b->p >= b->end)
        return 0;
    uint64_t tag;
    if (!read_varint(b, &tag) || tag > 0xFFFFFFFFu)
        return -1;
    f->number = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    if (f->number == 0)
        return -1;
    switch (f->wt) {
    case 0:
        return read_varint(b, &f->v) ? 1 : -1;
    case 1:
        if (b->end - b->p < 8)
            return -1;
        memcpy(&f->v, b->p, 8); /* little-endian hosts only (setup.py builds it there) */
        b->p += 8;
        return 1;
    case 5: {
        uint32_t v32;
        if (b->end - b->p < 4)
            return -1;
        memcpy(&v32, b->p, 4);
        f->v = v32;
        b->p += 4;
        return 1;
    }
    case 2: {
        uint64_t n;
        if (!read_varint(b, &n) || n > (uint64_t)(b->end - b->p))
            return -1;
        f->data = b->p;
        f->len = (size_t)n;
        b->p += n;
        return 1;
    }
    default:
        return -1; /* groups and invalid wire types */
    }
}

static Buf buf_of(const uint8_t *data, size_t len) {
    Buf b = {data, data + len};
    return b;
}

/* A proto3 string: strict UTF-8, which is what protobuf's validation accepts. */
static PyObject *text(const uint8_t *data, size_t len) {
    PyObject *s = PyUnicode_DecodeUTF8((const char *)data, (Py_ssize_t)len, NULL);
    if (s == NULL)
        PyErr_Clear();
    return s;
}

static PyObject *hex(const uint8_t *data, size_t len) {
    static const char digits[] = "0123456789abcdef";
    PyObject *s = PyUnicode_New((Py_ssize_t)(2 * len), 127);
    if (s == NULL) {
        PyErr_Clear();
        return NULL;
    }
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = (Py_UCS1)digits[data[i] >> 4];
        out[2 * i + 1] = (Py_UCS1)digits[data[i] & 15];
    }
    return s;
}

static int all_zero(const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (data[i])
            return 0;
    return 1;
}

/* ---- limits over a nested value ---------------------------------------------------------
 * A superset of what limits.py would act on in one AnyValue: any string or bytes longer than
 * max_value, any kvlist key longer than max_key, nesting deeper than max_depth (or than
 * MAX_WALK_DEPTH). Malformed bytes fail too. 1 = nothing would act. */

static int value_within(const Limits *lim, const uint8_t *data, size_t len, int depth);

static int kv_within(const Limits *lim, const uint8_t *data, size_t len, int depth) {
    Buf b = buf_of(data, len);
    Field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number == 1 && f.wt == 2) {
            if (lim->max_key && (long long)f.len > lim->max_key)
                return 0;
        } else if (f.number == 2 && f.wt == 2) {
            if (!value_within(lim, f.data, f.len, depth))
                return 0;
        }
    }
    return r == 0;
}

static int value_within(const Limits *lim, const uint8_t *data, size_t len, int depth) {
    Buf b = buf_of(data, len);
    Field f;
    int r;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.wt != 2)
            continue;
        if (f.number == 1 || f.number == 7) { /* string_value, bytes_value */
            if (lim->max_value && (long long)f.len > lim->max_value)
                return 0;
        } else if (f.number == 5 || f.number == 6) { /* array_value, kvlist_value */
            int inner = depth + 1;
            if (inner > MAX_WALK_DEPTH || (lim->max_depth && inner > lim->max_depth))
                return 0;
            Buf list = buf_of(f.data, f.len);
            Field item;
            int s;
            while ((s = next_field(&list, &item)) > 0) {
                if (item.number != 1 || item.wt != 2)
                    continue;
                if (f.number == 5 ? !value_within(lim, item.data, item.len, inner)
                                  : !kv_within(lim, item.data, item.len, inner))
                    return 0;
            }
            if (s < 0)
                return 0;
        }
    }
    return r == 0;
}

/* ---- KeyValue -> (key, string) -----------------------------------------------------------
 * Scalar KeyValues (key, then an AnyValue of one string, bool or int, or none) are read here
 * and kept in a direct-mapped cache keyed by their bytes (a pair is a pure function of them),
 * so repeated keys and values are shared objects; everything else goes to anyvalue.wire_pair
 * after the limits walk. */

typedef struct {
    uint8_t *raw;
    size_t len;
    uint64_t hash;
    size_t key_bytes, value_bytes;
    PyObject *key, *value;
} Entry;

static Entry cache[CACHE_SLOTS];

static uint64_t hash_bytes(const uint8_t *data, size_t len) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, data + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    uint64_t tail = 0;
    memcpy(&tail, data + i, len - i);
    h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

typedef struct {
    PyObject *key, *value; /* owned */
    const char *kp;        /* the key's UTF-8, owned by key */
    Py_ssize_t kn;
    size_t index;
} Pair;

static int pair_set(Pair *pair, PyObject *key, PyObject *value) {
    pair->key = key;
    pair->value = value;
    pair->kp = PyUnicode_AsUTF8AndSize(key, &pair->kn);
    if (pair->kp == NULL) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* The pair of a scalar KeyValue; 1 done, 0 bail, 2 not scalar (wire_pair's case). */
static int scalar_pair(const Limits *lim, const uint8_t *raw, size_t len, Pair *pair) {
    Buf b = buf_of(raw, len);
    Field f;
    int r;
    const uint8_t *key = NULL, *value = NULL;
    size_t key_len = 0, value_len = 0;
    int has_key = 0, has_value = 0;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number == 1 && f.wt == 2 && !has_key) {
            key = f.data, key_len = f.len, has_key = 1;
        } else if (f.number == 2 && f.wt == 2 && !has_value) {
            value = f.data, value_len = f.len, has_value = 1;
        } else {
            return 2;
        }
    }
    if (r < 0)
        return 0;
    if (lim->max_key && (long long)key_len > lim->max_key)
        return 0;
    int kind = 0; /* 0 none, 1 string, 2 bool, 3 int */
    Field v = {0};
    if (has_value) {
        b = buf_of(value, value_len);
        while ((r = next_field(&b, &f)) > 0) {
            if (kind || !((f.number == 1 && f.wt == 2) || (f.number == 2 && f.wt == 0) ||
                          (f.number == 3 && f.wt == 0)))
                return 2;
            kind = (int)f.number;
            v = f;
        }
        if (r < 0)
            return 0;
    }
    PyObject *out;
    size_t value_bytes = 0;
    if (kind == 1) {
        if (lim->max_value && (long long)v.len > lim->max_value)
            return 0;
        out = text(v.data, v.len);
        value_bytes = v.len;
    } else if (kind == 2) {
        out = v.v ? g_true : g_false;
        Py_INCREF(out);
    } else if (kind == 3) {
        char digits[24];
        int n = snprintf(digits, sizeof digits, "%lld", (long long)(int64_t)v.v);
        out = PyUnicode_FromStringAndSize(digits, n);
        if (out == NULL)
            PyErr_Clear();
    } else {
        out = g_blank;
        Py_INCREF(out);
    }
    if (out == NULL)
        return 0;
    PyObject *k = text(key ? key : (const uint8_t *)"", key_len);
    if (k == NULL) {
        Py_DECREF(out);
        return 0;
    }
    PyUnicode_InternInPlace(&k);
    if (!pair_set(pair, k, out)) {
        Py_DECREF(k);
        Py_DECREF(out);
        return 0;
    }
    if (len <= CACHE_MAX_BYTES) {
        uint64_t h = hash_bytes(raw, len);
        Entry *e = &cache[h & (CACHE_SLOTS - 1)];
        uint8_t *copy = e->raw && e->len >= len ? e->raw : PyMem_Realloc(e->raw, len ? len : 1);
        if (copy != NULL) {
            memcpy(copy, raw, len);
            Py_XDECREF(e->key);
            Py_XDECREF(e->value);
            e->raw = copy;
            e->len = len;
            e->hash = h;
            e->key_bytes = key_len;
            e->value_bytes = value_bytes;
            e->key = k;
            e->value = out;
            Py_INCREF(k);
            Py_INCREF(out);
        }
    }
    return 1;
}

static int kv_pair(const Limits *lim, const uint8_t *raw, size_t len, Pair *pair) {
    if (len <= CACHE_MAX_BYTES) {
        uint64_t h = hash_bytes(raw, len);
        Entry *e = &cache[h & (CACHE_SLOTS - 1)];
        if (e->key && e->hash == h && e->len == len && memcmp(e->raw, raw, len) == 0) {
            if ((lim->max_key && (long long)e->key_bytes > lim->max_key) ||
                (lim->max_value && (long long)e->value_bytes > lim->max_value))
                return 0;
            Py_INCREF(e->key);
            Py_INCREF(e->value);
            if (!pair_set(pair, e->key, e->value)) {
                Py_DECREF(e->key);
                Py_DECREF(e->value);
                return 0;
            }
            return 1;
        }
    }
    int done = scalar_pair(lim, raw, len, pair);
    if (done != 2)
        return done;
    if (!kv_within(lim, raw, len, 0))
        return 0;
    PyObject *result = PyObject_CallFunction(g_wire_pair, "y#", (const char *)raw, (Py_ssize_t)len);
    if (result == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (!PyTuple_CheckExact(result) || PyTuple_GET_SIZE(result) != 2 ||
        !PyUnicode_CheckExact(PyTuple_GET_ITEM(result, 0))) {
        Py_DECREF(result);
        return 0;
    }
    PyObject *k = PyTuple_GET_ITEM(result, 0), *v = PyTuple_GET_ITEM(result, 1);
    Py_INCREF(k);
    Py_INCREF(v);
    Py_DECREF(result);
    if (!pair_set(pair, k, v)) {
        Py_DECREF(k);
        Py_DECREF(v);
        return 0;
    }
    return 1;
}

/* ---- attribute lists -> dict (keys sorted, a repeated key keeping its last value) -------- */

static int pair_before(const Pair *a, const Pair *b) {
    Py_ssize_t n = a->kn < b->kn ? a->kn : b->kn;
    int c = memcmp(a->kp, b->kp, (size_t)n);
    if (c == 0)
        c = a->kn < b->kn ? -1 : a->kn > b->kn ? 1 : 0;
    /* UTF-8 byte order is code point order, which is Python's str order. */
    return c < 0 || (c == 0 && a->index < b->index);
}

static int pair_compare(const void *a, const void *b) {
    return pair_before(a, b) ? -1 : pair_before(b, a) ? 1 : 0;
}

static void pairs_release(Pair *pairs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        Py_DECREF(pairs[i].key);
        Py_DECREF(pairs[i].value);
    }
}

/* The attribute dict of field `number` of a message, `count` entries (already counted and
 * checked against max_attributes). With `stamp`, tenant.name is replaced by the tenant. */
static PyObject *attributes(const Limits *lim, const uint8_t *msg, size_t msg_len, uint32_t number,
                            size_t count, int stamp) {
    Pair small[SMALL_ATTRS];
    size_t room = count + 1;
    Pair *pairs = room <= SMALL_ATTRS ? small : PyMem_Malloc(room * sizeof(Pair));
    if (pairs == NULL)
        return NULL;
    size_t n = 0;
    PyObject *dict = NULL;
    Buf b = buf_of(msg, msg_len);
    Field f;
    for (size_t taken = 0; taken < count && next_field(&b, &f) > 0;) {
        if (f.number != number)
            continue;
        taken++;
        if (!kv_pair(lim, f.data, f.len, &pairs[n]))
            goto done;
        pairs[n].index = n;
        if (stamp && PyUnicode_CompareWithASCIIString(pairs[n].key, "tenant.name") == 0) {
            Py_DECREF(pairs[n].key);
            Py_DECREF(pairs[n].value);
            continue;
        }
        n++;
    }
    if (stamp) {
        Py_INCREF(lim->tenant);
        PyObject *key = PyUnicode_InternFromString("tenant.name");
        if (key == NULL || !pair_set(&pairs[n], key, lim->tenant)) {
            PyErr_Clear();
            Py_XDECREF(key);
            Py_DECREF(lim->tenant);
            goto done;
        }
        pairs[n].index = n;
        n++;
    }
    if (n <= 16) { /* stable insertion sort: the usual case */
        for (size_t i = 1; i < n; i++) {
            Pair item = pairs[i];
            size_t j = i;
            while (j > 0 && pair_before(&item, &pairs[j - 1])) {
                pairs[j] = pairs[j - 1];
                j--;
            }
            pairs[j] = item;
        }
    } else {
        qsort(pairs, n, sizeof(Pair), pair_compare);
    }
    dict = PyDict_New();
    if (dict == NULL)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && pairs[i + 1].kn == pairs[i].kn &&
            memcmp(pairs[i + 1].kp, pairs[i].kp, (size_t)pairs[i].kn) == 0)
            continue; /* a repeated key: the last one wins */
        if (PyDict_SetItem(dict, pairs[i].key, pairs[i].value) < 0) {
            Py_CLEAR(dict);
            goto done;
        }
    }
done:
    if (dict == NULL)
        PyErr_Clear();
    pairs_release(pairs, n);
    if (pairs != small)
        PyMem_Free(pairs);
    return dict;
}

/* An attribute list's length against max_attributes. */
static int count_within(const Limits *lim, size_t count) {
    return !(lim->max_attributes && (long long)count > lim->max_attributes);
}

/* ---- resources and scopes -------------------------------------------------------------- */

/* Resource: attributes (1) -> dict; dropped count (2). Any other known field: bail. */
static PyObject *resource_attributes(const Limits *lim, const uint8_t *data, size_t len) {
    Buf b = buf_of(data, len);
    Field f;
    int r;
    size_t count = 0, dropped = 0;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number == 1) {
            if (f.wt != 2)
                return NULL;
            count++;
        } else if (f.number == 2) {
            if (f.wt != 0 || dropped++)
                return NULL;
        } else if (f.number == 3) {
            return NULL; /* entity_refs: strings to check, left to protobuf */
        }
    }
    if (r < 0 || !count_within(lim, count))
        return NULL;
    return attributes(lim, data, len, 1, count, PyUnicode_GET_LENGTH(lim->tenant) > 0);
}

typedef struct {
    PyObject *name, *version, *attributes; /* attributes: NULL unless wanted */
    PyObject *dropped;                     /* dropped_attributes_count */
} Scope;

static void scope_clear(Scope *s) {
    Py_CLEAR(s->dropped);
    Py_CLEAR(s->name);
    Py_CLEAR(s->version);
    Py_CLEAR(s->attributes);
}

/* InstrumentationScope (absent: len 0). Its attributes are checked, and kept if `keep`. */
static int scope_read(const Limits *lim, const uint8_t *data, size_t len, int keep, Scope *s) {
    Buf b = buf_of(data, len);
    Field f;
    int r;
    const uint8_t *name = NULL, *version = NULL;
    size_t name_len = 0, version_len = 0, count = 0;
    uint64_t dropped = 0;
    unsigned seen = 0;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number >= 1 && f.number <= 4) {
            if (f.wt != (f.number == 4 ? 0 : 2))
                return 0;
            if (f.number != 3 && (seen & (1u << f.number)))
                return 0;
            seen |= 1u << f.number;
        }
        if (f.number == 1)
            name = f.data, name_len = f.len;
        else if (f.number == 2)
            version = f.data, version_len = f.len;
        else if (f.number == 3)
            count++;
        else if (f.number == 4)
            dropped = f.v & 0xFFFFFFFFu; /* a uint32 */
    }
    if (r < 0 || !count_within(lim, count))
        return 0;
    s->dropped = PyLong_FromUnsignedLongLong(dropped);
    s->name = text(name ? name : (const uint8_t *)"", name_len);
    s->version = text(version ? version : (const uint8_t *)"", version_len);
    s->attributes = attributes(lim, data, len, 3, count, 0);
    if (s->dropped == NULL || s->name == NULL || s->version == NULL || s->attributes == NULL) {
        PyErr_Clear();
        scope_clear(s);
        return 0;
    }
    if (!keep)
        Py_CLEAR(s->attributes);
    return 1;
}

/* ---- rows ---------------------------------------------------------------------------------- */

static PyObject *new_list(size_t n) {
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (list == NULL)
        PyErr_Clear();
    return list;
}

/* n new lists of count items each in out[0..n) (the caller releases them, also on failure). */
static int new_lists(PyObject **out, int n, size_t count) {
    for (int k = 0; k < n; k++)
        if ((out[k] = new_list(count)) == NULL)
            return 0;
    return 1;
}

enum { T_TRACES, T_LOGS, T_GAUGE, T_SUM, T_HISTOGRAM, TABLES };

/* One request's pass. The item count is checked at the end (a bail discards everything). */
typedef struct {
    const Limits *lim;
    PyObject *lists[TABLES]; /* rows per table */
    int order[TABLES];       /* tables in the order decode.py first meets them */
    int tables;
    long long items;
} Work;

/* The row list of a table (borrowed), made on first use. */
static PyObject *table_list(Work *w, int table) {
    if (w->lists[table] == NULL) {
        if ((w->lists[table] = new_list(0)) == NULL)
            return NULL;
        w->order[w->tables++] = table;
    }
    return w->lists[table];
}

/* Rows leave the garbage collector's tracking: a row holds strings, ints, floats, dicts of
 * strings and lists of those (or EMPTY), so no reference cycle can pass through it, and rows
 * wait about a second in batches, where every collection would walk them again. */
static int append_row(Work *w, int table, PyObject *row) {
    PyObject *list = table_list(w, table);
    PyObject_GC_UnTrack(row);
    return list != NULL && PyList_Append(list, row) == 0;
}

/* limits.py's timestamp window (0: unset, left to decode). */
static int timestamp_in_window(const Limits *lim, uint64_t ns) {
    if (ns == 0)
        return 1;
    if (ns > INT64_MAX_U)
        return 0;
    if (lim->latest && (long long)ns > lim->latest)
        return 0;
    return !((long long)ns < lim->earliest);
}

/* ---- traces ------------------------------------------------------------------------------ */

/* Item i of each list in out[0..n): all of items, which it takes over, or none (then every
 * item is released; a NULL item means its conversion failed). */
static int store_items(PyObject **out, Py_ssize_t i, PyObject **items, int n) {
    int ok = 1;
    for (int k = 0; k < n; k++)
        ok = ok && items[k] != NULL;
    for (int k = 0; k < n; k++) {
        if (ok)
            PyList_SET_ITEM(out[k], i, items[k]);
        else
            Py_XDECREF(items[k]);
    }
    return ok;
}

/* Span.Event and Span.Link lists: the four (events: three) array columns, or NULL. */
static int span_events(const Limits *lim, const uint8_t *span, size_t span_len, size_t count,
                       PyObject *out[3]) {
    if (!new_lists(out, 3, count))
        return 0;
    Buf b = buf_of(span, span_len);
    Field f;
    size_t i = 0;
    while (i < count && next_field(&b, &f) > 0) {
        if (f.number != 11)
            continue;
        Buf e = buf_of(f.data, f.len);
        Field g;
        int r;
        uint64_t time = 0;
        const uint8_t *name = NULL;
        size_t name_len = 0, attrs = 0;
        unsigned seen = 0;
        while ((r = next_field(&e, &g)) > 0) {
            if (g.number >= 1 && g.number <= 4) {
                static const int wire[] = {0, 1, 2, 2, 0};
                if (g.wt != wire[g.number] || (g.number != 3 && (seen & (1u << g.number))))
                    return 0;
                seen |= 1u << g.number;
            }
            if (g.number == 1)
                time = g.v;
            else if (g.number == 2)
                name = g.data, name_len = g.len;
            else if (g.number == 3)
                attrs++;
        }
        if (r < 0 || time > INT64_MAX_U || !count_within(lim, attrs))
            return 0;
        PyObject *items[3] = {PyLong_FromUnsignedLongLong(time),
                              text(name ? name : (const uint8_t *)"", name_len),
                              attributes(lim, f.data, f.len, 3, attrs, 0)};
        if (!store_items(out, i, items, 3)) {
            PyErr_Clear();
            return 0;
        }
        i++;
    }
    return i == count;
}

static int span_links(const Limits *lim, const uint8_t *span, size_t span_len, size_t count,
                      PyObject *out[4]) {
    if (!new_lists(out, 4, count))
        return 0;
    Buf b = buf_of(span, span_len);
    Field f;
    size_t i = 0;
    while (i < count && next_field(&b, &f) > 0) {
        if (f.number != 13)
            continue;
        Buf l = buf_of(f.data, f.len);
        Field g;
        int r;
        const uint8_t *trace = NULL, *span_id = NULL, *state = NULL;
        size_t trace_len = 0, span_id_len = 0, state_len = 0, attrs = 0;
        unsigned seen = 0;
        while ((r = next_field(&l, &g)) > 0) {
            if (g.number >= 1 && g.number <= 6) {
                static const int wire[] = {0, 2, 2, 2, 2, 0, 5};
                if (g.wt != wire[g.number] || (g.number != 4 && (seen & (1u << g.number))))
                    return 0;
                seen |= 1u << g.number;
            }
            if (g.number == 1)
                trace = g.data, trace_len = g.len;
            else if (g.number == 2)
                span_id = g.data, span_id_len = g.len;
            else if (g.number == 3)
                state = g.data, state_len = g.len;
            else if (g.number == 4)
                attrs++;
        }
        if (r < 0 || trace_len != 16 || all_zero(trace, 16) || span_id_len != 8 ||
            all_zero(span_id, 8) || !count_within(lim, attrs))
            return 0;
        PyObject *items[4] = {hex(trace, 16), hex(span_id, 8),
                              text(state ? state : (const uint8_t *)"", state_len),
                              attributes(lim, f.data, f.len, 4, attrs, 0)};
        if (!store_items(out, i, items, 4))
            return 0;
        i++;
    }
    return i == count;
}

/* Status: message (2), code (3). */
static int span_status(const uint8_t *data, size_t len, PyObject **message, int64_t *code) {
    Buf b = buf_of(data, len);
    Field f;
    int r;
    const uint8_t *text_data = NULL;
    size_t text_len = 0;
    unsigned seen = 0;
    uint64_t value = 0;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number == 2 || f.number == 3) {
            if (f.wt != (f.number == 2 ? 2 : 0) || (seen & (1u << f.number)))
                return 0;
            seen |= 1u << f.number;
            if (f.number == 2)
                text_data = f.data, text_len = f.len;
            else
                value = f.v;
        }
    }
    if (r < 0 || value > INT32_MAX)
        return 0;
    *code = (int64_t)value;
    *message = text(text_data ? text_data : (const uint8_t *)"", text_len);
    return *message != NULL;
}

enum {
    S_TIMESTAMP, S_TRACE_ID, S_SPAN_ID, S_PARENT, S_STATE, S_NAME, S_KIND, S_SERVICE,
    S_RESOURCE, S_SCOPE_NAME, S_SCOPE_VERSION, S_ATTRIBUTES, S_DURATION, S_STATUS,
    S_STATUS_MESSAGE, S_EVENT_TIMES, S_EVENT_NAMES, S_EVENT_ATTRIBUTES, S_LINK_TRACES,
    S_LINK_SPANS, S_LINK_STATES, S_LINK_ATTRIBUTES, SPAN_COLUMNS
};

static int span_row(Work *w, const uint8_t *data, size_t len, PyObject *service,
                    PyObject *resource, const Scope *scope) {
    static const int wire[] = {-1, 2, 2, 2, 2, 2, 0, 1, 1, 2, 0, 2, 0, 2, 0, 2, 5};
    const Limits *lim = w->lim;
    Buf b = buf_of(data, len);
    Field f;
    int r;
    const uint8_t *trace = NULL, *span_id = NULL, *parent = NULL, *state = NULL, *name = NULL,
                  *status = NULL;
    size_t trace_len = 0, span_id_len = 0, parent_len = 0, state_len = 0, name_len = 0,
           status_len = 0, attrs = 0, events = 0, links = 0;
    uint64_t kind = 0, start = 0, end = 0;
    uint32_t seen = 0;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number > 16)
            continue;
        if (f.wt != wire[f.number])
            return 0;
        if (f.number != 9 && f.number != 11 && f.number != 13) {
            if (seen & (1u << f.number))
                return 0;
            seen |= 1u << f.number;
        }
        switch (f.number) {
        case 1: trace = f.data, trace_len = f.len; break;
        case 2: span_id = f.data, span_id_len = f.len; break;
        case 3: state = f.data, state_len = f.len; break;
        case 4: parent = f.data, parent_len = f.len; break;
        case 5: name = f.data, name_len = f.len; break;
        case 6: kind = f.v; break;
        case 7: start = f.v; break;
        case 8: end = f.v; break;
        case 9: attrs++; break;
        case 11: events++; break;
        case 13: links++; break;
        case 15: status = f.data, status_len = f.len; break;
        default: break;
        }
    }
    if (r < 0 || trace_len != 16 || all_zero(trace, 16) || span_id_len != 8 ||
        all_zero(span_id, 8) || (parent_len != 0 && parent_len != 8) || start > INT64_MAX_U ||
        end > INT64_MAX_U || kind > INT32_MAX || !timestamp_in_window(lim, start) ||
        !count_within(lim, attrs) || (lim->max_events && (long long)events > lim->max_events) ||
        (lim->max_links && (long long)links > lim->max_links))
        return 0;
    w->items++;
    PyObject *row = PyTuple_New(SPAN_COLUMNS);
    if (row == NULL) {
        PyErr_Clear();
        return 0;
    }
    int64_t code = 0;
    PyObject *status_message = NULL;
    if (!span_status(status ? status : (const uint8_t *)"", status_len, &status_message, &code))
        goto fail;
    PyTuple_SET_ITEM(row, S_STATUS_MESSAGE, status_message);
    PyTuple_SET_ITEM(row, S_TIMESTAMP, PyLong_FromUnsignedLongLong(start));
    PyTuple_SET_ITEM(row, S_TRACE_ID, hex(trace, 16));
    PyTuple_SET_ITEM(row, S_SPAN_ID, hex(span_id, 8));
    PyTuple_SET_ITEM(row, S_PARENT,
                     parent_len && !all_zero(parent, 8) ? hex(parent, 8)
                                                        : text((const uint8_t *)"", 0));
    PyTuple_SET_ITEM(row, S_STATE, text(state ? state : (const uint8_t *)"", state_len));
    PyTuple_SET_ITEM(row, S_NAME, text(name ? name : (const uint8_t *)"", name_len));
    PyObject *kind_text = PyTuple_GET_ITEM(g_span_kinds, kind < 6 ? (Py_ssize_t)kind : 0);
    PyObject *code_text = PyTuple_GET_ITEM(g_status_codes, code < 3 ? (Py_ssize_t)code : 0);
    Py_INCREF(kind_text);
    Py_INCREF(code_text);
    Py_INCREF(service);
    Py_INCREF(resource);
    Py_INCREF(scope->name);
    Py_INCREF(scope->version);
    PyTuple_SET_ITEM(row, S_KIND, kind_text);
    PyTuple_SET_ITEM(row, S_SERVICE, service);
    PyTuple_SET_ITEM(row, S_RESOURCE, resource);
    PyTuple_SET_ITEM(row, S_SCOPE_NAME, scope->name);
    PyTuple_SET_ITEM(row, S_SCOPE_VERSION, scope->version);
    PyTuple_SET_ITEM(row, S_ATTRIBUTES, attributes(lim, data, len, 9, attrs, 0));
    PyTuple_SET_ITEM(row, S_DURATION, PyLong_FromUnsignedLongLong(end > start ? end - start : 0));
    PyTuple_SET_ITEM(row, S_STATUS, code_text);
    if (events) {
        PyObject *columns[3] = {NULL, NULL, NULL};
        int ok = span_events(lim, data, len, events, columns);
        for (int k = 0; k < 3; k++)
            PyTuple_SET_ITEM(row, S_EVENT_TIMES + k, columns[k]);
        if (!ok)
            goto fail;
    } else {
        for (int k = 0; k < 3; k++) {
            Py_INCREF(g_empty);
            PyTuple_SET_ITEM(row, S_EVENT_TIMES + k, g_empty);
        }
    }
    if (links) {
        PyObject *columns[4] = {NULL, NULL, NULL, NULL};
        int ok = span_links(lim, data, len, links, columns);
        for (int k = 0; k < 4; k++)
            PyTuple_SET_ITEM(row, S_LINK_TRACES + k, columns[k]);
        if (!ok)
            goto fail;
    } else {
        for (int k = 0; k < 4; k++) {
            Py_INCREF(g_empty);
            PyTuple_SET_ITEM(row, S_LINK_TRACES + k, g_empty);
        }
    }
    for (int k = 0; k < SPAN_COLUMNS; k++)
        if (PyTuple_GET_ITEM(row, k) == NULL)
            goto fail;
    if (!append_row(w, T_TRACES, row))
        goto fail;
    Py_DECREF(row);
    return 1;
fail:
    PyErr_Clear();
    Py_DECREF(row); /* a tuple with NULL slots is released safely */
    return 0;
}

/* The singular submessage `number` of a message (absent: empty), checking it appears once. */
static int single(const uint8_t *data, size_t len, uint32_t number, const uint8_t **out,
                  size_t *out_len) {
    Buf b = buf_of(data, len);
    Field f;
    int r, found = 0;
    *out = (const uint8_t *)"";
    *out_len = 0;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number == number) {
            if (f.wt != 2 || found++)
                return 0;
            *out = f.data;
            *out_len = f.len;
        }
    }
    return r == 0;
}

/* The schema_url (3) of a ResourceX / ScopeX message, checking that its items field (2) is
 * length-delimited. New reference; "" when absent. */
static PyObject *container_url(const uint8_t *data, size_t len) {
    Buf b = buf_of(data, len);
    Field f;
    int r;
    const uint8_t *url = (const uint8_t *)"";
    size_t url_len = 0, urls = 0;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number == 2 && f.wt != 2)
            return NULL;
        if (f.number == 3) {
            if (f.wt != 2 || urls++)
                return NULL;
            url = f.data, url_len = f.len;
        }
    }
    return r == 0 ? text(url, url_len) : NULL;
}

/* What every row of one resource shares. */
typedef struct {
    PyObject *attributes, *service, *url;
} Resource;

typedef int (*ScopeRows)(Work *w, const uint8_t *data, size_t len, const Resource *resource,
                         PyObject *url, const Scope *scope);

/* ScopeX: its scope (1), then rows for its items (2). */
static int scope_walk(Work *w, const uint8_t *data, size_t len, const Resource *resource,
                      int keep_attributes, ScopeRows rows) {
    const uint8_t *scope_data;
    size_t scope_len;
    Scope scope = {NULL, NULL, NULL, NULL};
    PyObject *url = container_url(data, len);
    int ok = url != NULL && single(data, len, 1, &scope_data, &scope_len) &&
             scope_read(w->lim, scope_data, scope_len, keep_attributes, &scope) &&
             rows(w, data, len, resource, url, &scope);
    scope_clear(&scope);
    Py_XDECREF(url);
    return ok;
}

/* ResourceX: its resource (1), then each ScopeX (2). */
static int resource_walk(Work *w, const uint8_t *data, size_t len, int keep_attributes,
                         ScopeRows rows) {
    const uint8_t *res;
    size_t res_len;
    Resource resource = {NULL, NULL, container_url(data, len)};
    int ok = resource.url != NULL && single(data, len, 1, &res, &res_len) &&
             (resource.attributes = resource_attributes(w->lim, res, res_len)) != NULL;
    if (ok) {
        resource.service = PyDict_GetItemWithError(resource.attributes, g_service_key);
        if (resource.service == NULL) {
            PyErr_Clear();
            resource.service = g_blank;
        }
        Py_INCREF(resource.service);
        Buf b = buf_of(data, len);
        Field f;
        while (ok && next_field(&b, &f) > 0)
            if (f.number == 2)
                ok = scope_walk(w, f.data, f.len, &resource, keep_attributes, rows);
    }
    Py_XDECREF(resource.attributes);
    Py_XDECREF(resource.service);
    Py_XDECREF(resource.url);
    return ok;
}

static int span_rows(Work *w, const uint8_t *data, size_t len, const Resource *resource,
                     PyObject *url, const Scope *scope) {
    Buf b = buf_of(data, len);
    Field f;
    int ok = 1;
    while (ok && next_field(&b, &f) > 0)
        if (f.number == 2)
            ok = span_row(w, f.data, f.len, resource->service, resource->attributes, scope);
    return ok;
}

/* ---- logs -------------------------------------------------------------------------------- */

/* A log body (an AnyValue) as the exporter's string: scalars here, the rest by
 * any_value_to_str after the limits walk. New reference or NULL (bail). */
static PyObject *body_text(const Limits *lim, const uint8_t *data, size_t len) {
    Buf b = buf_of(data, len);
    Field f, v = {0};
    int r, fields = 0;
    while ((r = next_field(&b, &f)) > 0) {
        fields++;
        v = f;
    }
    if (r < 0)
        return NULL;
    if (fields == 0) {
        Py_INCREF(g_blank);
        return g_blank;
    }
    if (fields == 1 && v.number == 1 && v.wt == 2) {
        if (lim->max_value && (long long)v.len > lim->max_value)
            return NULL;
        return text(v.data, v.len);
    }
    if (fields == 1 && v.number == 2 && v.wt == 0) {
        PyObject *out = v.v ? g_true : g_false;
        Py_INCREF(out);
        return out;
    }
    if (fields == 1 && v.number == 3 && v.wt == 0) {
        char digits[24];
        int n = snprintf(digits, sizeof digits, "%lld", (long long)(int64_t)v.v);
        PyObject *out = PyUnicode_FromStringAndSize(digits, n);
        if (out == NULL)
            PyErr_Clear();
        return out;
    }
    if (!value_within(lim, data, len, 0))
        return NULL;
    PyObject *out =
        PyObject_CallFunction(g_any_value, "y#", (const char *)data, (Py_ssize_t)len);
    if (out == NULL || !PyUnicode_CheckExact(out)) {
        PyErr_Clear();
        Py_XDECREF(out);
        return NULL;
    }
    return out;
}

/* decode.log_event_name for a record without event_name (Claude Code); the rest in Python. */
static PyObject *event_name(PyObject *record_name, PyObject *body, PyObject *attributes) {
    if (PyUnicode_GET_LENGTH(record_name) > 0)
        return PyObject_CallFunctionObjArgs(g_event_name, record_name, body, attributes, NULL);
    PyObject *name = PyDict_GetItemWithError(attributes, g_event_key);
    if (name == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_INCREF(record_name);
        return record_name;
    }
    Py_ssize_t name_len = PyUnicode_GET_LENGTH(name), body_len = PyUnicode_GET_LENGTH(body);
    if (name_len == 0) {
        Py_INCREF(record_name);
        return record_name;
    }
    if (body_len > name_len && PyUnicode_ReadChar(body, body_len - name_len - 1) == '.' &&
        PyUnicode_Tailmatch(body, name, 0, PY_SSIZE_T_MAX, 1) == 1 &&
        PyUnicode_FindChar(body, ' ', 0, body_len, 1) == -1) {
        Py_INCREF(body);
        return body;
    }
    Py_INCREF(name);
    return name;
}

enum {
    L_TIMESTAMP, L_TRACE_ID, L_SPAN_ID, L_FLAGS, L_SEVERITY_TEXT, L_SEVERITY, L_SERVICE, L_BODY,
    L_RESOURCE_URL, L_RESOURCE, L_SCOPE_URL, L_SCOPE_NAME, L_SCOPE_VERSION, L_SCOPE_ATTRIBUTES,
    L_ATTRIBUTES, L_EVENT_NAME, LOG_COLUMNS
};

/* An id column: lower-case hex, "" when absent or all zeros. */
static PyObject *hex_id(const uint8_t *data, size_t len) {
    if (len == 0 || all_zero(data, len))
        return text((const uint8_t *)"", 0);
    return hex(data, len);
}

static int log_row(Work *w, const uint8_t *data, size_t len, const Resource *resource,
                   PyObject *url, const Scope *scope) {
    static const int wire[] = {-1, 1, 0, 2, -1, 2, 2, 0, 5, 2, 2, 1, 2};
    const Limits *lim = w->lim;
    Buf b = buf_of(data, len);
    Field f;
    int r;
    const uint8_t *trace = NULL, *span_id = NULL, *severity_text = NULL, *body = NULL,
                  *record_name = NULL;
    size_t trace_len = 0, span_id_len = 0, severity_len = 0, body_len = 0, name_len = 0,
           attrs = 0;
    uint64_t time = 0, observed = 0, severity = 0, flags = 0;
    uint32_t seen = 0;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number > 12 || f.number == 4)
            continue;
        if (f.wt != wire[f.number])
            return 0;
        if (f.number != 6) {
            if (seen & (1u << f.number))
                return 0;
            seen |= 1u << f.number;
        }
        switch (f.number) {
        case 1: time = f.v; break;
        case 2: severity = f.v; break;
        case 3: severity_text = f.data, severity_len = f.len; break;
        case 5: body = f.data, body_len = f.len; break;
        case 6: attrs++; break;
        case 8: flags = f.v; break;
        case 9: trace = f.data, trace_len = f.len; break;
        case 10: span_id = f.data, span_id_len = f.len; break;
        case 11: observed = f.v; break;
        case 12: record_name = f.data, name_len = f.len; break;
        default: break;
        }
    }
    if (r < 0 || (trace_len != 0 && trace_len != 16) || (span_id_len != 0 && span_id_len != 8) ||
        time > INT64_MAX_U || observed > INT64_MAX_U || severity > INT32_MAX ||
        !timestamp_in_window(lim, time ? time : observed) || !count_within(lim, attrs))
        return 0;
    w->items++;
    PyObject *row = PyTuple_New(LOG_COLUMNS);
    if (row == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyObject *shared[] = {resource->service, resource->url,  resource->attributes, url,
                          scope->name,       scope->version, scope->attributes};
    int columns[] = {L_SERVICE,    L_RESOURCE_URL,    L_RESOURCE,         L_SCOPE_URL,
                     L_SCOPE_NAME, L_SCOPE_VERSION, L_SCOPE_ATTRIBUTES};
    for (int k = 0; k < 7; k++) {
        Py_INCREF(shared[k]);
        PyTuple_SET_ITEM(row, columns[k], shared[k]);
    }
    PyTuple_SET_ITEM(row, L_TIMESTAMP, PyLong_FromUnsignedLongLong(time ? time : observed));
    PyTuple_SET_ITEM(row, L_TRACE_ID, hex_id(trace, trace_len));
    PyTuple_SET_ITEM(row, L_SPAN_ID, hex_id(span_id, span_id_len));
    PyTuple_SET_ITEM(row, L_FLAGS, PyLong_FromUnsignedLong((unsigned long)(flags & 0xFF)));
    PyTuple_SET_ITEM(row, L_SEVERITY_TEXT,
                     text(severity_text ? severity_text : (const uint8_t *)"", severity_len));
    PyTuple_SET_ITEM(row, L_SEVERITY, PyLong_FromUnsignedLongLong(severity));
    PyObject *body_value = body_text(lim, body ? body : (const uint8_t *)"", body_len);
    PyTuple_SET_ITEM(row, L_BODY, body_value);
    PyObject *attributes_value = attributes(lim, data, len, 6, attrs, 0);
    PyTuple_SET_ITEM(row, L_ATTRIBUTES, attributes_value);
    PyObject *name = text(record_name ? record_name : (const uint8_t *)"", name_len);
    if (name != NULL && body_value != NULL && attributes_value != NULL) {
        PyTuple_SET_ITEM(row, L_EVENT_NAME, event_name(name, body_value, attributes_value));
    }
    Py_XDECREF(name);
    for (int k = 0; k < LOG_COLUMNS; k++)
        if (PyTuple_GET_ITEM(row, k) == NULL)
            goto fail;
    if (!append_row(w, T_LOGS, row))
        goto fail;
    Py_DECREF(row);
    return 1;
fail:
    PyErr_Clear();
    Py_DECREF(row);
    return 0;
}

static int log_rows(Work *w, const uint8_t *data, size_t len, const Resource *resource,
                    PyObject *url, const Scope *scope) {
    Buf b = buf_of(data, len);
    Field f;
    int ok = 1;
    while (ok && next_field(&b, &f) > 0)
        if (f.number == 2)
            ok = log_row(w, f.data, f.len, resource, url, scope);
    return ok;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* (body, tenant, limits) -> {table: rows} (tables with rows only), or None. */
static PyObject *decode_request(PyObject *args, int keep_scope_attributes, ScopeRows rows) {
    Py_buffer body;
    Limits lim;
    if (!PyArg_ParseTuple(args, "y*U(LLLLLLLLL)", &body, &lim.tenant, &lim.max_items,
                          &lim.max_attributes, &lim.max_key, &lim.max_value, &lim.max_depth,
                          &lim.max_events, &lim.max_links, &lim.latest, &lim.earliest))
        return NULL;
    Work w = {&lim, {NULL}, {0}, 0, 0};
    int ok = 1;
    Buf b = buf_of(body.buf, (size_t)body.len);
    Field f;
    int r = 0;
    while (ok && (r = next_field(&b, &f)) > 0)
        if (f.number == 1)
            ok = f.wt == 2 && resource_walk(&w, f.data, f.len, keep_scope_attributes, rows);
    PyBuffer_Release(&body);
    PyObject *tables = NULL;
    if (ok && r == 0 && !(lim.max_items && w.items > lim.max_items)) {
        tables = PyDict_New();
        for (int k = 0; tables != NULL && k < w.tables; k++) {
            PyObject *rows = w.lists[w.order[k]];
            if (PyList_GET_SIZE(rows) &&
                PyDict_SetItem(tables, PyTuple_GET_ITEM(g_tables, w.order[k]), rows) < 0)
                Py_CLEAR(tables);
        }
    }
    for (int k = 0; k < TABLES; k++)
        Py_XDECREF(w.lists[k]);
    if (tables == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return tables;
}

static PyObject *fast_traces(PyObject *self, PyObject *args) {
    return decode_request(args, 0, span_rows);
}

static PyObject *fast_logs(PyObject *self, PyObject *args) {
    return decode_request(args, 1, log_rows);
}

/* ---- metrics (gauge, sum, histogram; the rare exponential histograms and summaries take
 * the Python path) ------------------------------------------------------------------------ */

static PyObject *float_of_bits(uint64_t bits) {
    double value;
    memcpy(&value, &bits, 8);
    return PyFloat_FromDouble(value);
}

/* A NumberDataPoint's or Exemplar's value: float(as_int) or as_double (0.0 when neither). */
typedef struct {
    int kind; /* 0 none, 1 double, 2 int */
    uint64_t bits;
} Number;

static PyObject *number_value(const Number *n) {
    if (n->kind == 2)
        return PyFloat_FromDouble((double)(int64_t)n->bits);
    return float_of_bits(n->kind == 1 ? n->bits : 0);
}

/* The five Exemplars.* columns of a point's exemplars (field `number`), or NULL slots. */
static int exemplar_columns(const Limits *lim, const uint8_t *point, size_t point_len,
                            uint32_t number, size_t count, PyObject *out[5]) {
    if (count == 0) {
        for (int k = 0; k < 5; k++) {
            Py_INCREF(g_empty);
            out[k] = g_empty;
        }
        return 1;
    }
    if (!new_lists(out, 5, count))
        return 0;
    Buf b = buf_of(point, point_len);
    Field f;
    size_t i = 0;
    while (i < count && next_field(&b, &f) > 0) {
        if (f.number != number)
            continue;
        static const int wire[] = {-1, -1, 1, 1, 2, 2, 1, 2};
        Buf e = buf_of(f.data, f.len);
        Field g;
        int r;
        const uint8_t *span_id = NULL, *trace = NULL;
        size_t span_id_len = 0, trace_len = 0, attrs = 0;
        uint64_t time = 0;
        Number value = {0, 0};
        unsigned seen = 0;
        while ((r = next_field(&e, &g)) > 0) {
            if (g.number < 2 || g.number > 7)
                continue;
            if (g.wt != wire[g.number])
                return 0;
            if (g.number != 7) {
                if (seen & (1u << g.number))
                    return 0;
                seen |= 1u << g.number;
            }
            switch (g.number) {
            case 2: time = g.v; break;
            case 3: case 6:
                if (value.kind)
                    return 0; /* both oneof members: left to protobuf */
                value.kind = g.number == 3 ? 1 : 2, value.bits = g.v;
                break;
            case 4: span_id = g.data, span_id_len = g.len; break;
            case 5: trace = g.data, trace_len = g.len; break;
            case 7: attrs++; break;
            default: break;
            }
        }
        if (r < 0 || time > INT64_MAX_U || (trace_len != 0 && trace_len != 16) ||
            (span_id_len != 0 && span_id_len != 8) || !count_within(lim, attrs))
            return 0;
        PyObject *items[5] = {attributes(lim, f.data, f.len, 7, attrs, 0),
                              PyLong_FromUnsignedLongLong(time), number_value(&value),
                              hex_id(span_id, span_id_len), hex_id(trace, trace_len)};
        if (!store_items(out, i, items, 5))
            return 0;
        i++;
    }
    return i == count;
}

/* Packed or not, a repeated fixed64 (ints) or double (floats) field as a new list. */
static PyObject *fixed64_list(const uint8_t *point, size_t point_len, uint32_t number,
                              int floats) {
    PyObject *list = new_list(0);
    if (list == NULL)
        return NULL;
    Buf b = buf_of(point, point_len);
    Field f;
    while (next_field(&b, &f) > 0) {
        if (f.number != number)
            continue;
        const uint8_t *p = (const uint8_t *)&f.v;
        size_t n = 1;
        if (f.wt == 2) {
            if (f.len % 8)
                goto fail;
            p = f.data, n = f.len / 8;
        } else if (f.wt != 1) {
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t bits;
            memcpy(&bits, p + 8 * i, 8);
            PyObject *item = floats ? float_of_bits(bits) : PyLong_FromUnsignedLongLong(bits);
            if (item == NULL || PyList_Append(list, item) < 0) {
                Py_XDECREF(item);
                goto fail;
            }
            Py_DECREF(item);
        }
    }
    return list;
fail:
    PyErr_Clear();
    Py_DECREF(list);
    return NULL;
}

enum { KIND_GAUGE = 5, KIND_SUM = 7, KIND_HISTOGRAM = 9 };
#define COMMON_COLUMNS 11
#define MAX_POINT_COLUMNS (COMMON_COLUMNS + 16) /* a histogram point's row */

/* One data point's row: the metric's common columns, then the point's. */
static int point_row(Work *w, int kind, const uint8_t *data, size_t len, PyObject **common,
                     PyObject *temporality, PyObject *monotonic) {
    /* wire types by field number, NumberDataPoint then HistogramDataPoint (-2: packed or 1) */
    static const int number_wire[] = {-1, -1, 1, 1, 1, 2, 1, 2, 0};
    static const int histogram_wire[] = {-1, -1, 1, 1, 1, 1, -2, -2, 2, 2, 0, 1, 1};
    const int histogram = kind == KIND_HISTOGRAM;
    const int *wire = histogram ? histogram_wire : number_wire;
    const uint32_t last = histogram ? 12 : 8;
    const uint32_t attrs_field = histogram ? 9 : 7, exemplars_field = histogram ? 8 : 5;
    const Limits *lim = w->lim;
    Buf b = buf_of(data, len);
    Field f;
    int r;
    uint64_t start = 0, time = 0, flags = 0, count = 0, sum = 0, min = 0, max = 0;
    Number value = {0, 0};
    size_t attrs = 0, exemplars = 0;
    uint32_t seen = 0;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number < 2 || f.number > last)
            continue;
        if (wire[f.number] == -2 ? (f.wt != 1 && f.wt != 2) : f.wt != wire[f.number])
            return 0;
        if (f.number == attrs_field) {
            attrs++;
            continue;
        }
        if (f.number == exemplars_field) {
            exemplars++;
            continue;
        }
        if (wire[f.number] == -2)
            continue;
        if (seen & (1u << f.number))
            return 0;
        seen |= 1u << f.number;
        switch (histogram ? f.number + 100 : f.number) {
        case 2: case 102: start = f.v; break;
        case 3: case 103: time = f.v; break;
        case 4: case 6:
            if (value.kind)
                return 0;
            value.kind = f.number == 4 ? 1 : 2, value.bits = f.v;
            break;
        case 8: case 110: flags = f.v; break;
        case 104: count = f.v; break;
        case 105: sum = f.v; break;
        case 111: min = f.v; break;
        case 112: max = f.v; break;
        default: break;
        }
    }
    if (r < 0 || start > INT64_MAX_U || time > INT64_MAX_U || flags > UINT32_MAX ||
        !timestamp_in_window(lim, time) || !count_within(lim, attrs))
        return 0;
    w->items++;
    /* The cells are filled in a local array and only then moved into a tuple of their number,
     * so a miscounted layout cannot write past a tuple. */
    PyObject *cells[MAX_POINT_COLUMNS];
    int c = 0;
    for (int k = 0; k < COMMON_COLUMNS; k++) {
        Py_INCREF(common[k]);
        cells[c++] = common[k];
    }
    cells[c++] = attributes(lim, data, len, attrs_field, attrs, 0);
    cells[c++] = PyLong_FromUnsignedLongLong(start);
    cells[c++] = PyLong_FromUnsignedLongLong(time);
    PyObject *exemplar[5] = {NULL, NULL, NULL, NULL, NULL};
    int ok = exemplar_columns(lim, data, len, exemplars_field, exemplars, exemplar);
    if (histogram) {
        cells[c++] = PyLong_FromUnsignedLongLong(count);
        cells[c++] = float_of_bits(sum);
        cells[c++] = fixed64_list(data, len, 6, 0); /* BucketCounts */
        cells[c++] = fixed64_list(data, len, 7, 1); /* ExplicitBounds */
    } else {
        cells[c++] = number_value(&value);
        cells[c++] = PyLong_FromUnsignedLongLong(flags);
    }
    for (int k = 0; k < 5; k++)
        cells[c++] = exemplar[k];
    if (histogram) {
        cells[c++] = PyLong_FromUnsignedLongLong(flags);
        cells[c++] = float_of_bits(min);
        cells[c++] = float_of_bits(max);
        Py_INCREF(temporality);
        cells[c++] = temporality;
    } else if (kind == KIND_SUM) {
        Py_INCREF(temporality);
        Py_INCREF(monotonic);
        cells[c++] = temporality;
        cells[c++] = monotonic;
    }
    PyObject *row = PyTuple_New(c);
    for (int k = 0; k < c; k++) {
        ok = ok && cells[k] != NULL;
        if (row != NULL)
            PyTuple_SET_ITEM(row, k, cells[k]);
        else
            Py_XDECREF(cells[k]);
    }
    int table = histogram ? T_HISTOGRAM : kind == KIND_SUM ? T_SUM : T_GAUGE;
    if (row == NULL || !ok || !append_row(w, table, row)) {
        PyErr_Clear();
        Py_XDECREF(row);
        return 0;
    }
    Py_DECREF(row);
    return 1;
}

/* Metric: name (1), description (2), unit (3), one of gauge (5), sum (7), histogram (9). */
static int metric_rows(Work *w, const uint8_t *data, size_t len, PyObject **common) {
    Buf b = buf_of(data, len);
    Field f;
    int r, kind = 0;
    const uint8_t *texts[4] = {NULL, NULL, NULL, NULL}, *body = NULL;
    size_t lens[4] = {0, 0, 0, 0}, body_len = 0;
    unsigned seen = 0;
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number > 12 || f.number == 4 || f.number == 6 || f.number == 8)
            continue;
        if (f.wt != 2 || f.number == 10 || f.number == 11)
            return 0; /* exponential histograms and summaries: the Python path */
        if (f.number == 12)
            continue; /* metadata: bytes in the wire twin, not read */
        if (f.number <= 3) {
            if (seen & (1u << f.number))
                return 0;
            seen |= 1u << f.number;
            texts[f.number] = f.data, lens[f.number] = f.len;
        } else {
            if (kind)
                return 0;
            kind = (int)f.number, body = f.data, body_len = f.len;
        }
    }
    if (r < 0)
        return 0;
    for (int k = 1; k <= 3; k++)
        if ((common[7 + k] = text(texts[k] ? texts[k] : (const uint8_t *)"", lens[k])) == NULL)
            return 0;
    if (!kind)
        return 1; /* no data: no rows, and no table either */
    if (!table_list(w, kind == KIND_HISTOGRAM ? T_HISTOGRAM : kind == KIND_SUM ? T_SUM : T_GAUGE))
        return 0;
    /* Gauge: points (1). Sum: points (1), temporality (2), monotonic (3). Histogram: (1), (2). */
    uint64_t temporality = 0, monotonic = 0;
    seen = 0;
    b = buf_of(body, body_len);
    while ((r = next_field(&b, &f)) > 0) {
        if (f.number == 1) {
            if (f.wt != 2)
                return 0;
        } else if ((f.number == 2 && kind != KIND_GAUGE) || (f.number == 3 && kind == KIND_SUM)) {
            if (f.wt != 0 || (seen & (1u << f.number)))
                return 0;
            seen |= 1u << f.number;
            if (f.number == 2)
                temporality = f.v;
            else
                monotonic = f.v;
        }
    }
    if (r < 0 || temporality > INT32_MAX)
        return 0;
    PyObject *temporality_value = PyLong_FromUnsignedLongLong(temporality);
    if (temporality_value == NULL) {
        PyErr_Clear();
        return 0;
    }
    int ok = 1;
    b = buf_of(body, body_len);
    while (ok && next_field(&b, &f) > 0)
        if (f.number == 1)
            ok = point_row(w, kind, f.data, f.len, common, temporality_value,
                           monotonic ? Py_True : Py_False);
    Py_DECREF(temporality_value);
    return ok;
}

static int metrics_rows(Work *w, const uint8_t *data, size_t len, const Resource *resource,
                        PyObject *url, const Scope *scope) {
    /* ResourceAttributes, ResourceSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes,
     * ScopeDroppedAttrCount, ScopeSchemaUrl, ServiceName, then per metric its name,
     * description and unit. */
    PyObject *common[COMMON_COLUMNS] = {resource->attributes, resource->url, scope->name,
                                        scope->version, scope->attributes, scope->dropped, url,
                                        resource->service, NULL, NULL, NULL};
    Buf b = buf_of(data, len);
    Field f;
    int ok = 1;
    while (ok && next_field(&b, &f) > 0) {
        if (f.number != 2)
            continue;
        ok = metric_rows(w, f.data, f.len, common);
        for (int k = 8; k < COMMON_COLUMNS; k++)
            Py_CLEAR(common[k]);
    }
    return ok;
}

static PyObject *fast_metrics(PyObject *self, PyObject *args) {
    return decode_request(args, 1, metrics_rows);
}

/* ---- module ------------------------------------------------------------------------------ */

static PyObject *configure(PyObject *self, PyObject *args) {
    PyObject *empty, *wire_pair, *any_value, *event_name, *kinds, *codes, *tables;
    if (!PyArg_ParseTuple(args, "O!OOOO!O!O!", &PyList_Type, &empty, &wire_pair, &any_value,
                          &event_name, &PyTuple_Type, &kinds, &PyTuple_Type, &codes,
                          &PyTuple_Type, &tables))
        return NULL;
    if (PyTuple_GET_SIZE(kinds) != 6 || PyTuple_GET_SIZE(codes) != 3 ||
        PyTuple_GET_SIZE(tables) != TABLES) {
        PyErr_SetString(PyExc_ValueError,
                        "six span kinds, three status codes and five tables expected");
        return NULL;
    }
    PyObject *objects[] = {empty, wire_pair, any_value, event_name, kinds, codes, tables};
    PyObject **slots[] = {&g_empty,      &g_wire_pair,    &g_any_value, &g_event_name,
                          &g_span_kinds, &g_status_codes, &g_tables};
    for (int i = 0; i < 7; i++) {
        Py_INCREF(objects[i]);
        Py_XSETREF(*slots[i], objects[i]);
    }
    Py_RETURN_NONE;
}

static PyObject *not_configured(PyObject *self, PyObject *args) {
    PyErr_SetString(PyExc_RuntimeError, "_fastdecode.configure() was not called");
    return NULL;
}

static PyObject *dispatch_traces(PyObject *self, PyObject *args) {
    return g_empty ? fast_traces(self, args) : not_configured(self, args);
}

static PyObject *dispatch_logs(PyObject *self, PyObject *args) {
    return g_empty ? fast_logs(self, args) : not_configured(self, args);
}

static PyObject *dispatch_metrics(PyObject *self, PyObject *args) {
    return g_empty ? fast_metrics(self, args) : not_configured(self, args);
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(EMPTY, wire_pair, any_value_of_bytes, log_event_name, SPAN_KINDS, "
     "STATUS_CODES, (traces, logs, gauge, sum, histogram table names))"},
    {"traces", dispatch_traces, METH_VARARGS,
     "traces(body, tenant, limits) -> {otel_traces: rows}, or None for the Python path"},
    {"logs", dispatch_logs, METH_VARARGS,
     "logs(body, tenant, limits) -> {otel_logs: rows}, or None for the Python path"},
    {"metrics", dispatch_metrics, METH_VARARGS,
     "metrics(body, tenant, limits) -> {otel_metrics_*: rows}, or None for the Python path"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastdecode",
    "Compiled fast path of limits + decode (receiver.ingest.decode).", -1, methods,
};

PyMODINIT_FUNC PyInit__fastdecode(void) {
    g_true = PyUnicode_InternFromString("true");
    g_false = PyUnicode_InternFromString("false");
    g_blank = PyUnicode_InternFromString("");
    g_service_key = PyUnicode_InternFromString("service.name");
    g_event_key = PyUnicode_InternFromString("event.name");
    if (!g_true || !g_false || !g_blank || !g_service_key || !g_event_key)
        return NULL;
    return PyModule_Create(&module);
}
