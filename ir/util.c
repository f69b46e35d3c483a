/*
 * util.c - the small machinery everything else in ir/ leans on: growable
 * strings, the graph arena, and diagnostics.
 *
 * Strings never fail loudly: on allocation failure ir_str keeps what fit and
 * sets `oom`, so callers can report one error at the end instead of checking
 * every append.  The arena is a list of chunks, each at least 64 KiB, from
 * which graph objects are bumped; a graph is freed whole.  Diagnostics render
 * at the point of the error so the message can quote the source line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

_Noreturn void ir_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "fusec: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
    abort();
}

/* ---- strings -------------------------------------------------------- */

static bool str_reserve(ir_str *s, size_t extra) {
    if (s->oom) return false;
    if (s->len + extra + 1 <= s->cap) return true;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < s->len + extra + 1) cap *= 2;
    char *nb = realloc(s->buf, cap);
    if (!nb) {
        s->oom = true;
        return false;
    }
    s->buf = nb;
    s->cap = cap;
    return true;
}

void ir_str_vprintf(ir_str *s, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || !str_reserve(s, (size_t)n)) return;
    vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
    s->len += (size_t)n;
}

void ir_str_printf(ir_str *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ir_str_vprintf(s, fmt, ap);
    va_end(ap);
}

void ir_str_putc(ir_str *s, char c) {
    if (!str_reserve(s, 1)) return;
    s->buf[s->len++] = c;
    s->buf[s->len] = 0;
}

void ir_str_puts(ir_str *s, const char *str) {
    size_t n = strlen(str);
    if (!str_reserve(s, n)) return;
    memcpy(s->buf + s->len, str, n + 1);
    s->len += n;
}

char *ir_str_take(ir_str *s) {
    char *b = s->buf;
    if (!b) b = calloc(1, 1);
    s->buf = NULL;
    s->len = s->cap = 0;
    s->oom = false;
    return b;
}

void ir_str_free(ir_str *s) {
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
    s->oom = false;
}

/* ---- arena ---------------------------------------------------------- */

struct ir_arena_chunk {
    ir_arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *ir_arena_alloc(ir_arena *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    ir_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        c = malloc(sizeof(ir_arena_chunk) + cap);
        if (!c) return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *ir_arena_strndup(ir_arena *a, const char *s, size_t n) {
    char *p = ir_arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *ir_arena_strdup(ir_arena *a, const char *s) { return ir_arena_strndup(a, s, strlen(s)); }

void ir_arena_free(ir_arena *a) {
    ir_arena_chunk *c = a->head;
    while (c) {
        ir_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
}

/* ---- diagnostics ---------------------------------------------------- */

void ir_diag_init(ir_diag *d, const char *file, const char *src, size_t srclen) {
    memset(d, 0, sizeof *d);
    d->file = file;
    d->src = src;
    d->srclen = srclen;
}

void ir_diag_free(ir_diag *d) { ir_str_free(&d->out); }

/* Quote source line `line` and put a caret under column `col`.  A long
 * line is cut to a window around the column, marked with "...". */
static void quote_line(ir_diag *d, int line, int col) {
    enum { WIDTH = 160 };
    const char *p = d->src, *end = d->src + d->srclen;
    for (int l = 1; l < line && p < end; p++)
        if (*p == '\n') l++;
    if (p >= end && line > 1) return;
    const char *e = p;
    while (e < end && *e != '\n') e++;
    if (e > p && e[-1] == '\r') e--;
    const char *from = p;
    bool cut_left = false, cut_right = false;
    if (col - 1 > WIDTH / 2 && e - p > WIDTH) {
        from = p + (col - 1 - WIDTH / 2);
        cut_left = true;
    }
    const char *to = e;
    if (to - from > WIDTH) {
        to = from + WIDTH;
        cut_right = true;
    }
    ir_str_printf(&d->out, "%s%.*s%s\n", cut_left ? "..." : "", (int)(to - from), from, cut_right ? "..." : "");
    int caret = (int)(p + col - 1 - from) + (cut_left ? 3 : 0);
    for (int i = 0; i < caret; i++) {
        const char *c = from + i - (cut_left ? 3 : 0);
        ir_str_putc(&d->out, (c >= from && c < to && *c == '\t') ? '\t' : ' ');
    }
    ir_str_puts(&d->out, "^\n");
}

void ir_verror(ir_diag *d, ir_loc loc, const char *fmt, va_list ap) {
    d->nerr++;
    if (loc.line > 0)
        ir_str_printf(&d->out, "%s:%d:%d: error: ", d->file ? d->file : "<input>", loc.line, loc.col);
    else if (d->file)
        ir_str_printf(&d->out, "%s: error: ", d->file);
    else
        ir_str_puts(&d->out, "error: ");
    ir_str_vprintf(&d->out, fmt, ap);
    ir_str_putc(&d->out, '\n');
    if (loc.line > 0 && d->src) quote_line(d, loc.line, loc.col);
}

void ir_error(ir_diag *d, ir_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ir_verror(d, loc, fmt, ap);
    va_end(ap);
}
