/*
 * npy.c - reading and writing NumPy .npy files.
 *
 * A .npy file is a 6-byte magic "\x93NUMPY", a major and a minor version
 * byte, the header length (little-endian u16 for version 1.0, u32 for 2.0
 * and 3.0), the header, and the raw array data.  The header is the text of a
 * Python dict literal such as
 *
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *
 * padded with spaces and ended with '\n' so that the data starts at a
 * multiple of 64.  Writers sort the keys; readers must not rely on that.
 *
 * Reading.  The reader is a small hand-written recursive-descent parser for
 * exactly that dict: quoted keys, a quoted descr, True/False, and a tuple of
 * non-negative integers.  It never evaluates anything and never reads past
 * the buffer it was given: every step checks the remaining length first, all
 * size arithmetic is overflow-checked, and the data length must equal what
 * the shape and dtype require (trailing bytes are an error too: a file that
 * holds more than its header says was written by something we do not
 * understand).  The header parser is shared by the file and the buffer entry
 * points, so the fuzzer exercises exactly the code that reads users' files.
 * A file is read whole into memory and the data is slid to the front of the
 * same buffer, so reading costs one copy of the file, not two.
 *
 * Dtypes map one to one onto fusec's (see npy_dtypes); bf16 has no NumPy
 * dtype and travels as '<u2' bit patterns in a file named *.bf16.npy, which
 * the caller signals with the `bf16` flag.  Big-endian data, Fortran order
 * (where it differs from C order), object and structured dtypes are rejected
 * with a message that says so.  We assume a little-endian host.
 *
 * Writing.  Always version 1.0 with the keys in NumPy's order.  The file is
 * first written to a temporary file in the same folder (mkstemp), flushed and
 * fsynced, then renamed over the destination, so readers see either the old
 * file or the complete new one, never a half-written one.
 *
 * Every error names the file: the message is reported through the caller's
 * ir_diag with no source location and the .npy path as the file, so it
 * prints as "PATH: error: PROBLEM".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/fileio.h"
#include "runtime/npy.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64

/* fusec dtype <-> NumPy type code (kind letter and item size).  The byte
 * order character is '|' for 1-byte types and '<' otherwise. */
static const struct {
    fusec_dtype dt;
    char kind;
    int size;
} npy_dtypes[] = {
    {FUSEC_DTYPE_F64, 'f', 8}, {FUSEC_DTYPE_F32, 'f', 4},  {FUSEC_DTYPE_F16, 'f', 2},
    {FUSEC_DTYPE_BF16, 'u', 2}, {FUSEC_DTYPE_I64, 'i', 8}, {FUSEC_DTYPE_I32, 'i', 4},
    {FUSEC_DTYPE_I16, 'i', 2}, {FUSEC_DTYPE_I8, 'i', 1},   {FUSEC_DTYPE_U8, 'u', 1},
    {FUSEC_DTYPE_BOOL, 'b', 1},
};
#define NPY_NDTYPES ((int)(sizeof npy_dtypes / sizeof npy_dtypes[0]))

/* Report "NAME: error: MSG" through d: the diag prints its `file` in front
 * of location-less errors, so name the .npy file there for this message. */
IR_PRINTF(4, 5)
static fusec_status npy_fail(ir_diag *d, const char *name, fusec_status st, const char *fmt, ...) {
    const char *saved = d->file;
    d->file = name;
    va_list ap;
    va_start(ap, fmt);
    ir_verror(d, (ir_loc){0, 0}, fmt, ap);
    va_end(ap);
    d->file = saved;
    return st;
}

/* ---- the header parser --------------------------------------------- */

/* What a header says about the array. */
typedef struct npy_header {
    fusec_dtype dtype;
    int rank;
    int64_t shape[FUSEC_MAX_RANK];
    size_t nbytes; /* numel * item size */
} npy_header;

typedef struct hdr_parser {
    const char *p, *end, *start;
    const char *name;
    ir_diag *d;
} hdr_parser;

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void skip_ws(hdr_parser *h) {
    while (h->p < h->end && is_space(*h->p)) h->p++;
}

/* A malformed header: say what was expected and where. */
static fusec_status hdr_bad(hdr_parser *h, const char *what) {
    if (h->p >= h->end)
        return npy_fail(h->d, h->name, FUSEC_ERR_INVALID,
                        "malformed header: expected %s, found the end of the header", what);
    char c = *h->p;
    if (c >= 0x20 && c < 0x7f)
        return npy_fail(h->d, h->name, FUSEC_ERR_INVALID,
                        "malformed header: expected %s at header offset %d, found '%c'", what,
                        (int)(h->p - h->start), c);
    return npy_fail(h->d, h->name, FUSEC_ERR_INVALID,
                    "malformed header: expected %s at header offset %d, found byte 0x%02x", what,
                    (int)(h->p - h->start), (unsigned char)c);
}

static bool accept(hdr_parser *h, char c) {
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return true;
    }
    return false;
}

static bool accept_word(hdr_parser *h, const char *w) {
    size_t n = strlen(w);
    skip_ws(h);
    if ((size_t)(h->end - h->p) >= n && memcmp(h->p, w, n) == 0) {
        h->p += n;
        return true;
    }
    return false;
}

/* A Python string literal in single or double quotes (no escapes: neither
 * keys nor dtype strings contain them).  On success *s and *n point into the
 * header. */
static fusec_status parse_string(hdr_parser *h, const char **s, size_t *n, const char *what) {
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return hdr_bad(h, what);
    char q = *h->p++;
    const char *b = h->p;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || *h->p == '\n') return hdr_bad(h, "a closing quote");
        h->p++;
    }
    if (h->p >= h->end) return hdr_bad(h, "a closing quote");
    *s = b;
    *n = (size_t)(h->p - b);
    h->p++;
    return FUSEC_OK;
}

/* Quote up to 24 characters of s for a message. */
static void quote_snippet(char *buf, size_t cap, const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap && i < 24; i++)
        buf[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (n > 24 && k + 4 < cap) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = 0;
}

static const char *kind_name(char kind) {
    switch (kind) {
    case 'f': return "float";
    case 'i': return "int";
    case 'u': return "uint";
    case 'b': return "bool";
    case 'c': return "complex";
    case 'O': return "object";
    case 'U': return "unicode string";
    case 'S': case 'a': return "byte string";
    case 'V': return "void (structured or raw bytes)";
    case 'M': return "datetime64";
    case 'm': return "timedelta64";
    default: return NULL;
    }
}

/* Map a descr such as '<f4' onto a fusec dtype. */
static fusec_status parse_descr(hdr_parser *h, const char *s, size_t n, bool bf16,
                                fusec_dtype *out) {
    char shown[40];
    quote_snippet(shown, sizeof shown, s, n);
    size_t i = 0;
    char order = '=';
    if (n > 0 && s[0] && strchr("<>=|", s[0])) order = s[i++];
    char kind = i < n ? s[i++] : 0;
    int size = 0;
    bool digits = i < n;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || size > 1000) {
            digits = false;
            break;
        }
        size = size * 10 + (s[i] - '0');
    }
    const char *kname = kind_name(kind);
    if (!kname)
        return npy_fail(h->d, h->name, FUSEC_ERR_UNSUPPORTED, "unknown dtype '%s' in header",
                        shown);
    if (kind == 'O')
        return npy_fail(h->d, h->name, FUSEC_ERR_UNSUPPORTED,
                        "object arrays ('%s') are not supported", shown);
    if (bf16 && !(kind == 'u' && size == 2))
        return npy_fail(h->d, h->name, FUSEC_ERR_INVALID,
                        "a .bf16.npy file must hold bf16 bit patterns as '<u2', found '%s'",
                        shown);
    if (!digits || size == 0)
        return npy_fail(h->d, h->name, FUSEC_ERR_UNSUPPORTED, "unsupported dtype '%s'", shown);
    int idx = -1;
    for (int k = 0; k < NPY_NDTYPES; k++)
        if (npy_dtypes[k].kind == kind && npy_dtypes[k].size == size) idx = k;
    if (idx < 0 && strchr("fiucb", kind) && kind)
        return npy_fail(h->d, h->name, FUSEC_ERR_UNSUPPORTED, "unsupported dtype %s%d ('%s')",
                        kname, size * 8, shown);
    if (idx < 0)
        return npy_fail(h->d, h->name, FUSEC_ERR_UNSUPPORTED, "unsupported dtype '%s' (%s)",
                        shown, kname);
    if (size > 1 && order == '>')
        return npy_fail(h->d, h->name, FUSEC_ERR_UNSUPPORTED,
                        "big-endian data ('%s') is not supported; save it little-endian, "
                        "e.g. with a.astype('<%c%d')",
                        shown, kind, size);
    if (size > 1 && order == '|')
        return npy_fail(h->d, h->name, FUSEC_ERR_UNSUPPORTED,
                        "dtype '%s' has no byte order", shown);
    fusec_dtype dt = npy_dtypes[idx].dt;
    if (dt == FUSEC_DTYPE_BF16 && !bf16)
        return npy_fail(h->d, h->name, FUSEC_ERR_UNSUPPORTED,
                        "unsupported dtype uint16 ('%s'); bf16 bit patterns must be in a file "
                        "named *.bf16.npy",
                        shown);
    *out = dt;
    return FUSEC_OK;
}

/* A shape tuple: '(' [INT (',' INT)* [',']] ')'.  Python 2 era files may
 * write a trailing 'L' on each integer. */
static fusec_status parse_shape(hdr_parser *h, npy_header *hd) {
    if (accept(h, '['))
        return npy_fail(h->d, h->name, FUSEC_ERR_INVALID,
                        "malformed header: 'shape' must be a tuple, not a list");
    if (!accept(h, '(')) return hdr_bad(h, "a shape tuple '(...)'");
    hd->rank = 0;
    for (;;) {
        if (accept(h, ')')) return FUSEC_OK;
        skip_ws(h);
        bool neg = h->p < h->end && *h->p == '-';
        if (neg) h->p++;
        if (h->p >= h->end || *h->p < '0' || *h->p > '9') return hdr_bad(h, "a dimension");
        int64_t v = 0;
        bool overflow = false;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            int dg = *h->p++ - '0';
            if (v > (INT64_MAX - dg) / 10) overflow = true;
            else v = v * 10 + dg;
        }
        if (h->p < h->end && *h->p == 'L') h->p++;
        if (neg && v != 0)
            return npy_fail(h->d, h->name, FUSEC_ERR_INVALID,
                            "negative dimension -%lld in shape", (long long)v);
        if (overflow)
            return npy_fail(h->d, h->name, FUSEC_ERR_INVALID,
                            "dimension %d of the shape does not fit in 64 bits", hd->rank);
        if (hd->rank >= FUSEC_MAX_RANK)
            return npy_fail(h->d, h->name, FUSEC_ERR_UNSUPPORTED,
                            "rank greater than %d is not supported", FUSEC_MAX_RANK);
        hd->shape[hd->rank++] = v;
        if (accept(h, ')')) return FUSEC_OK;
        if (!accept(h, ',')) return hdr_bad(h, "',' or ')' in the shape");
    }
}

/* Format a shape the way NumPy prints it: (), (3,), (2, 3). */
static void format_shape(char *buf, size_t cap, int rank, const int64_t *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "(");
    for (int i = 0; i < rank && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, rank == 1 ? ",)" : ")");
}

/* Parse the header text [s, s+n) into *hd. */
static fusec_status parse_header(const char *s, size_t n, const char *name, bool bf16,
                                 ir_diag *d, npy_header *hd) {
    hdr_parser h = {.p = s, .end = s + n, .start = s, .name = name, .d = d};
    bool seen_descr = false, seen_order = false, seen_shape = false, fortran = false;
    fusec_status st;
    if (!accept(&h, '{')) return hdr_bad(&h, "'{'");
    while (!accept(&h, '}')) {
        const char *key;
        size_t klen;
        if ((st = parse_string(&h, &key, &klen, "a quoted key or '}'"))) return st;
        if (!accept(&h, ':')) return hdr_bad(&h, "':' after the key");
        bool *seen;
        if (klen == 5 && memcmp(key, "descr", 5) == 0) seen = &seen_descr;
        else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) seen = &seen_order;
        else if (klen == 5 && memcmp(key, "shape", 5) == 0) seen = &seen_shape;
        else {
            char shown[40];
            quote_snippet(shown, sizeof shown, key, klen);
            return npy_fail(d, name, FUSEC_ERR_INVALID, "unexpected key '%s' in header", shown);
        }
        if (*seen)
            return npy_fail(d, name, FUSEC_ERR_INVALID, "key '%.*s' appears twice in header",
                            (int)klen, key);
        *seen = true;
        if (seen == &seen_descr) {
            skip_ws(&h);
            if (h.p < h.end && *h.p == '[')
                return npy_fail(d, name, FUSEC_ERR_UNSUPPORTED,
                                "structured dtypes are not supported");
            const char *ds;
            size_t dn;
            if ((st = parse_string(&h, &ds, &dn, "a quoted dtype string"))) return st;
            if ((st = parse_descr(&h, ds, dn, bf16, &hd->dtype))) return st;
        } else if (seen == &seen_order) {
            if (accept_word(&h, "True")) fortran = true;
            else if (accept_word(&h, "False")) fortran = false;
            else return hdr_bad(&h, "True or False");
        } else {
            if ((st = parse_shape(&h, hd))) return st;
        }
        if (!accept(&h, ',')) {
            if (!accept(&h, '}')) return hdr_bad(&h, "',' or '}'");
            break;
        }
    }
    skip_ws(&h);
    if (h.p < h.end) return hdr_bad(&h, "the end of the header after '}'");
    const char *missing = !seen_descr ? "descr" : !seen_order ? "fortran_order"
                        : !seen_shape ? "shape" : NULL;
    if (missing) return npy_fail(d, name, FUSEC_ERR_INVALID, "header has no '%s' key", missing);

    /* The element count and byte size, overflow-checked against both
     * int64 (tensor sizes) and size_t (allocation). */
    uint64_t numel = 1;
    bool overflow = false, empty = false;
    for (int i = 0; i < hd->rank; i++) {
        uint64_t dim = (uint64_t)hd->shape[i];
        if (dim == 0) empty = true;
        else if (numel > (uint64_t)INT64_MAX / dim) overflow = true;
        else numel *= dim;
    }
    uint64_t esize = ir_dtype_size(hd->dtype);
    if (!empty && !overflow && numel > (uint64_t)INT64_MAX / esize) overflow = true;
    if (!empty && !overflow && numel * esize > (uint64_t)SIZE_MAX) overflow = true;
    if (overflow && !empty) {
        char shp[FUSEC_MAX_RANK * 24 + 8];
        format_shape(shp, sizeof shp, hd->rank, hd->shape);
        return npy_fail(d, name, FUSEC_ERR_INVALID, "shape %s is too large", shp);
    }
    hd->nbytes = empty ? 0 : (size_t)(numel * esize);

    /* Fortran order is the same byte layout as C order when at most one
     * dimension is larger than 1; otherwise we would need a transpose. */
    if (fortran) {
        int big = 0;
        for (int i = 0; i < hd->rank; i++) big += hd->shape[i] > 1;
        if (big > 1)
            return npy_fail(d, name, FUSEC_ERR_UNSUPPORTED,
                            "Fortran-order arrays are not supported; save "
                            "np.ascontiguousarray(a) instead");
    }
    return FUSEC_OK;
}

/* Check the preamble and parse the header of a whole file image.  On
 * success *data_off is where the data starts; the data length is checked
 * against hd->nbytes. */
static fusec_status parse_image(const unsigned char *buf, size_t len, const char *name, bool bf16,
                                ir_diag *d, npy_header *hd, size_t *data_off) {
    size_t mlen = len < NPY_MAGIC_LEN ? len : NPY_MAGIC_LEN;
    if (len == 0 || memcmp(buf, NPY_MAGIC, mlen) != 0)
        return npy_fail(d, name, FUSEC_ERR_INVALID,
                        "not a NumPy .npy file (bad magic: it must start with \\x93NUMPY)");
    if (len < NPY_MAGIC_LEN + 2)
        return npy_fail(d, name, FUSEC_ERR_INVALID, "truncated header (the file is %zu bytes)",
                        len);
    int major = buf[6], minor = buf[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return npy_fail(d, name, FUSEC_ERR_UNSUPPORTED,
                        "unsupported .npy format version %d.%d (1.0, 2.0 and 3.0 are supported)",
                        major, minor);
    size_t pre = major == 1 ? 10 : 12;
    if (len < pre)
        return npy_fail(d, name, FUSEC_ERR_INVALID, "truncated header (the file is %zu bytes)",
                        len);
    uint64_t hlen = (uint64_t)buf[8] | (uint64_t)buf[9] << 8;
    if (major != 1) hlen |= (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24;
    if (hlen > len - pre)
        return npy_fail(d, name, FUSEC_ERR_INVALID,
                        "truncated header: it should be %llu bytes but the file ends after %zu",
                        (unsigned long long)hlen, len - pre);
    fusec_status st = parse_header((const char *)buf + pre, (size_t)hlen, name, bf16, d, hd);
    if (st) return st;
    size_t off = pre + (size_t)hlen, have = len - off;
    char shp[FUSEC_MAX_RANK * 24 + 8];
    format_shape(shp, sizeof shp, hd->rank, hd->shape);
    if (have < hd->nbytes)
        return npy_fail(d, name, FUSEC_ERR_INVALID,
                        "truncated data: shape %s of %s needs %zu bytes, the file has %zu", shp,
                        ir_dtype_name(hd->dtype), hd->nbytes, have);
    if (have > hd->nbytes)
        return npy_fail(d, name, FUSEC_ERR_INVALID,
                        "%zu extra bytes after the data (shape %s of %s needs %zu bytes)",
                        have - hd->nbytes, shp, ir_dtype_name(hd->dtype), hd->nbytes);
    *data_off = off;
    return FUSEC_OK;
}

/* Fill *t from a parsed header; data is already in place. */
static void fill_tensor(const npy_header *hd, void *data, fusec_tensor *t) {
    memset(t, 0, sizeof *t);
    t->dtype = hd->dtype;
    t->rank = hd->rank;
    memcpy(t->shape, hd->shape, sizeof(int64_t) * (size_t)hd->rank);
    t->data = data;
    /* Every fusec kernel assumes bools are 0 or 1; NumPy's truth is != 0. */
    if (hd->dtype == FUSEC_DTYPE_BOOL) {
        unsigned char *b = data;
        for (size_t i = 0; i < hd->nbytes; i++) b[i] = b[i] != 0;
    }
}

fusec_status rt_npy_parse(const void *buf, size_t len, const char *name, bool bf16,
                          fusec_tensor *t, ir_diag *d) {
    npy_header hd;
    size_t off = 0;
    memset(t, 0, sizeof *t);
    fusec_status st = parse_image(buf, len, name, bf16, d, &hd, &off);
    if (st) return st;
    void *data = malloc(hd.nbytes ? hd.nbytes : 1);
    if (!data)
        return npy_fail(d, name, FUSEC_ERR_NOMEM, "out of memory reading %zu bytes", hd.nbytes);
    memcpy(data, (const unsigned char *)buf + off, hd.nbytes);
    fill_tensor(&hd, data, t);
    return FUSEC_OK;
}

/* Read the whole of an open file; works for pipes as well as files. */
static fusec_status read_all(FILE *f, const char *path, unsigned char **out, size_t *outlen,
                             ir_diag *d) {
    struct stat sb;
    size_t cap = 4096, len = 0;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
        (uint64_t)sb.st_size < SIZE_MAX)
        cap = (size_t)sb.st_size + 1; /* +1 to see EOF without growing */
    unsigned char *buf = malloc(cap);
    if (!buf) return npy_fail(d, path, FUSEC_ERR_NOMEM, "out of memory reading the file");
    for (;;) {
        if (len == cap) {
            size_t ncap = cap * 2;
            unsigned char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                free(buf);
                return npy_fail(d, path, FUSEC_ERR_NOMEM, "out of memory reading the file");
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        return npy_fail(d, path, FUSEC_ERR_IO, "cannot read: %s", strerror(e));
    }
    *out = buf;
    *outlen = len;
    return FUSEC_OK;
}

fusec_status rt_npy_read(const char *path, bool bf16, fusec_tensor *t, ir_diag *d) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) return npy_fail(d, path, FUSEC_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return npy_fail(d, path, FUSEC_ERR_IO, "is a directory, not a .npy file");
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    fusec_status st = read_all(f, path, &buf, &len, d);
    fclose(f);
    if (st) return st;
    npy_header hd;
    size_t off = 0;
    st = parse_image(buf, len, path, bf16, d, &hd, &off);
    if (st) {
        free(buf);
        return st;
    }
    /* Slide the data to the front and give back the rest. */
    memmove(buf, buf + off, hd.nbytes);
    unsigned char *shrunk = realloc(buf, hd.nbytes ? hd.nbytes : 1);
    fill_tensor(&hd, shrunk ? shrunk : buf, t);
    return FUSEC_OK;
}

/* ---- writing ------------------------------------------------------- */

/* The full preamble + header for t in *out (at most cap bytes); returns its
 * length, a multiple of NPY_ALIGN. */
static size_t build_header(const fusec_tensor *t, char *out, size_t cap) {
    int idx = 0;
    for (int k = 0; k < NPY_NDTYPES; k++)
        if (npy_dtypes[k].dt == t->dtype) idx = k;
    char shp[FUSEC_MAX_RANK * 24 + 8];
    format_shape(shp, sizeof shp, t->rank, t->shape);
    char dict[sizeof shp + 80];
    int n = snprintf(dict, sizeof dict, "{'descr': '%c%c%d', 'fortran_order': False, 'shape': %s, }",
                     npy_dtypes[idx].size == 1 ? '|' : '<', npy_dtypes[idx].kind,
                     npy_dtypes[idx].size, shp);
    size_t used = 10 + (size_t)n + 1; /* preamble, dict, '\n' */
    size_t total = (used + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    FC_ASSERT(total <= cap && total - 10 <= 0xffff);
    size_t hlen = total - 10;
    memcpy(out, NPY_MAGIC, NPY_MAGIC_LEN);
    out[6] = 1;
    out[7] = 0;
    out[8] = (char)(hlen & 0xff);
    out[9] = (char)(hlen >> 8);
    memcpy(out + 10, dict, (size_t)n);
    memset(out + 10 + n, ' ', total - used);
    out[total - 1] = '\n';
    return total;
}

fusec_status rt_npy_write(const char *path, const fusec_tensor *t, ir_diag *d) {
    if ((unsigned)t->dtype >= FUSEC_DTYPE_COUNT || t->rank < 0 || t->rank > FUSEC_MAX_RANK)
        return npy_fail(d, path, FUSEC_ERR_INVALID, "cannot write: invalid tensor description");
    uint64_t numel = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->shape[i] < 0)
            return npy_fail(d, path, FUSEC_ERR_INVALID, "cannot write: negative dimension");
        if (t->shape[i] && numel > (uint64_t)INT64_MAX / (uint64_t)t->shape[i])
            return npy_fail(d, path, FUSEC_ERR_INVALID, "cannot write: shape is too large");
        numel *= (uint64_t)t->shape[i];
    }
    uint64_t esize = ir_dtype_size(t->dtype);
    if (numel > (uint64_t)SIZE_MAX / esize)
        return npy_fail(d, path, FUSEC_ERR_INVALID, "cannot write: shape is too large");
    size_t nbytes = (size_t)(numel * esize);
    if (nbytes && !t->data)
        return npy_fail(d, path, FUSEC_ERR_INVALID, "cannot write: tensor has no data");

    char header[512];
    size_t hsize = build_header(t, header, sizeof header);

    const void *parts[2] = {header, t->data};
    size_t lens[2] = {hsize, nbytes};
    return rt_write_file_atomic(path, parts, lens, 2, 0644, d);
}
