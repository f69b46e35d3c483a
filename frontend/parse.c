/*
 * parse.c - the text IR parser: tokens -> ir_graph (spec sections 3 and 4).
 *
 * A hand-written recursive-descent parser over the grammar of spec section 3,
 * one function per rule, with one token of lookahead.  Nothing nests deeper
 * than an attribute list of numbers, so the recursion depth is fixed and no
 * input can blow the stack.  Each func becomes an ir_graph: parameters through
 * ir_graph_add_param, each statement through ir_build (which owns the op
 * rules: arity, attribute kinds, dtypes, broadcasting, result inference and
 * the check of a declared `: type`), the return through ir_graph_add_result.
 * The parser itself checks what only text has: syntax, names and scopes,
 * attribute names, types as written, and the return against the signature.
 *
 * Names.  Values live in a per-function hash table from the source text of
 * the name to its ir_value.  A statement that fails still binds its name, to
 * a "poisoned" entry (value NULL): later uses of it fail quietly instead of
 * piling up "undefined value" errors behind the one real mistake.
 *
 * Errors and recovery.  Errors go to the ir_diag with a location, so they
 * print as FILE:LINE:COL: error: MSG plus the line and a caret; op-level
 * errors from ir_build point at the op name.  Errors come in two kinds:
 * semantic ones (undefined value, unknown op or attribute, bad dim) are
 * reported and the statement is still read to its end; a syntax error
 * abandons the statement and skips tokens to the next line that starts with
 * a statement, `return`, `}` or `func` (panic mode, as in most hand-written
 * compilers).  At most FE_MAX_ERRORS errors are reported.  Any error means
 * no graph: every graph built so far is freed and fe_parse returns NULL.
 *
 * Every func of the module is parsed and verified; the one asked for (or
 * @main, or the first) is returned, the others are freed as soon as they are
 * done, so a module costs the memory of at most two graphs.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/lexer.h"
#include "frontend/parse.h"

#define FE_MAX_ERRORS 20
/* Types may not describe more elements than this (so byte sizes and
 * strides computed from them never overflow int64). */
#define FE_MAX_NUMEL ((int64_t)1 << 62)

/* ---- a hash table from names (source text) to values ----------------- */

typedef struct fe_sym {
    const char *name; /* NULL = empty slot */
    size_t len;
    ir_value *v; /* NULL = poisoned (its definition failed) */
    ir_loc loc;
} fe_sym;

typedef struct fe_symtab {
    fe_sym *slot;
    size_t cap, count; /* cap is 0 or a power of two */
} fe_symtab;

static size_t name_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return (size_t)h;
}

/* The slot holding name, or the empty slot where it would go. */
static fe_sym *sym_slot(const fe_symtab *t, const char *s, size_t n) {
    size_t i = name_hash(s, n) & (t->cap - 1);
    while (t->slot[i].name && !(t->slot[i].len == n && memcmp(t->slot[i].name, s, n) == 0))
        i = (i + 1) & (t->cap - 1);
    return &t->slot[i];
}

static fe_sym *sym_find(const fe_symtab *t, const char *s, size_t n) {
    if (!t->cap) return NULL;
    fe_sym *e = sym_slot(t, s, n);
    return e->name ? e : NULL;
}

/* Add a name known to be absent; NULL on out-of-memory. */
static fe_sym *sym_add(fe_symtab *t, const char *s, size_t n) {
    if (2 * (t->count + 1) > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        fe_sym *slot = calloc(cap, sizeof *slot);
        if (!slot) return NULL;
        fe_symtab bigger = {slot, cap, t->count};
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i].name) *sym_slot(&bigger, t->slot[i].name, t->slot[i].len) = t->slot[i];
        free(t->slot);
        *t = bigger;
    }
    fe_sym *e = sym_slot(t, s, n);
    e->name = s;
    e->len = n;
    t->count++;
    return e;
}

static void sym_clear(fe_symtab *t) {
    if (t->cap) memset(t->slot, 0, t->cap * sizeof *t->slot);
    t->count = 0;
}

/* ---- the parser state ------------------------------------------------ */

typedef struct fe_parser {
    fe_lexer lx;
    fe_token tok;
    ir_loc prev_end; /* just past the token before tok */
    ir_diag *d;
    int nerr0;  /* d->nerr when parsing started */
    bool stop;  /* too many errors, or out of memory: unwind */

    /* the function being parsed */
    ir_graph *g;
    const char *fname; /* its name as written, for messages */
    int fname_len;
    fe_symtab vals;

    /* growable scratch, reused by every statement */
    ir_value **opnd;
    ir_loc *opnd_loc;
    int nopnd, cap_opnd;
    int64_t *lints;
    double *lnums;
    int nlist, cap_list;
    ir_attr_init *attr;
    ir_loc *attr_seen;
    int cap_attr;
    ir_type *res;
    int nres, cap_res;

    /* functions seen so far, in order, and the graphs kept */
    fe_symtab funcs;
    fe_token *ftok; /* every func's name token, in order */
    int nfuncs, cap_ftok;
    ir_graph *first, *main, *wanted;
    const char *want;
} fe_parser;

static void err_oom(fe_parser *p);

/* Grow two arrays that share the capacity *cap (elements of size sa and
 * sb) so that each holds at least need elements. */
static bool grow2(fe_parser *p, void **a, size_t sa, void **b, size_t sb, int *cap, int need) {
    if (need <= *cap) return true;
    if (need > INT_MAX / 2) {
        err_oom(p);
        return false;
    }
    int c = *cap ? *cap : 8;
    while (c < need) c *= 2;
    void *na = realloc(*a, (size_t)c * sa);
    if (na) *a = na;
    void *nb = na && b ? realloc(*b, (size_t)c * sb) : NULL;
    if (nb) *b = nb;
    if (!na || (b && !nb)) {
        err_oom(p);
        return false;
    }
    *cap = c;
    return true;
}

static bool errors_since(const fe_parser *p, int mark) { return p->d->nerr > mark; }

/* After any error: stop once the cap is reached. */
static void check_limit(fe_parser *p) {
    if (!p->stop && p->d->nerr - p->nerr0 >= FE_MAX_ERRORS) {
        p->stop = true;
        ir_error(p->d, (ir_loc){0, 0}, "too many errors (%d); stopping", FE_MAX_ERRORS);
    }
}

static void IR_PRINTF(3, 4) err(fe_parser *p, ir_loc loc, const char *fmt, ...) {
    if (p->stop) return;
    va_list ap;
    va_start(ap, fmt);
    ir_verror(p->d, loc, fmt, ap);
    va_end(ap);
    check_limit(p);
}

static void err_oom(fe_parser *p) {
    if (!p->stop) ir_error(p->d, p->tok.loc, "out of memory");
    p->stop = true;
}

static void next(fe_parser *p) {
    if (p->stop) {
        p->tok.kind = FE_TK_EOF;
        return;
    }
    int before = p->d->nerr;
    p->prev_end = p->lx.end_loc;
    p->tok = fe_lex(&p->lx);
    if (p->d->nerr != before) check_limit(p);
}

static bool is_word(const fe_token *t, const char *w) {
    return t->kind == FE_TK_IDENT && t->len == strlen(w) && memcmp(t->text, w, t->len) == 0;
}

/* "expected WHAT, found TOKEN" at loc (WHAT from fmt); an invalid token was
 * reported already. */
static void vexpected_at(fe_parser *p, ir_loc loc, const char *fmt, va_list ap) {
    if (p->tok.kind == FE_TK_ERROR) return;
    ir_str what = {0}, found = {0};
    ir_str_vprintf(&what, fmt, ap);
    fe_token_describe(&found, &p->tok);
    err(p, loc, "expected %s, found %s", what.buf ? what.buf : "?", found.buf ? found.buf : "?");
    ir_str_free(&what);
    ir_str_free(&found);
}

static void IR_PRINTF(3, 4) expected_at(fe_parser *p, ir_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vexpected_at(p, loc, fmt, ap);
    va_end(ap);
}

/* The same, for a missing piece: when TOKEN starts a later line, the caret
 * goes just past the previous token, where the piece belongs. */
static void IR_PRINTF(2, 3) expected(fe_parser *p, const char *fmt, ...) {
    bool later = p->prev_end.line && p->tok.loc.line > p->prev_end.line;
    va_list ap;
    va_start(ap, fmt);
    vexpected_at(p, later ? p->prev_end : p->tok.loc, fmt, ap);
    va_end(ap);
}

static bool accept(fe_parser *p, fe_tok_kind k) {
    if (p->tok.kind != k) return false;
    next(p);
    return true;
}

static bool expect(fe_parser *p, fe_tok_kind k, const char *what) {
    if (accept(p, k)) return true;
    expected(p, "%s", what);
    return false;
}

/* Where a statement can restart after a syntax error. */
static bool at_restart(const fe_parser *p) {
    const fe_token *t = &p->tok;
    if (t->kind == FE_TK_EOF) return true;
    if (!t->bol) return false;
    return t->kind == FE_TK_VALUE || t->kind == FE_TK_RBRACE || is_word(t, "return") ||
           is_word(t, "func");
}

static void sync_stmt(fe_parser *p) {
    while (!at_restart(p)) next(p);
}

/* Copy a token's text into the current graph's arena, NUL-terminated. */
static const char *tok_str(fe_parser *p, const fe_token *t) {
    char *s = ir_arena_strndup(&p->g->arena, t->text, t->len);
    if (!s) err_oom(p);
    return s;
}

/* ---- unknown-op suggestions ------------------------------------------ */

/* Levenshtein distance, for names of at most 64 bytes. */
static int edit_distance(const char *a, size_t n, const char *b, size_t m) {
    int row[65];
    for (size_t j = 0; j <= m; j++) row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

/* The op name closest to s, if it is close enough to be a likely typo. */
static const char *closest_op(const char *s, size_t n) {
    if (n > 64) return NULL;
    int limit = n / 3 > 1 ? (int)(n / 3) : 1, best = limit + 1;
    const char *pick = NULL;
    for (int i = 0; i < IR_OP_COUNT; i++) {
        const char *name = ir_op_get((ir_op)i)->name;
        size_t m = strlen(name);
        if (m > 64) continue;
        int dist = edit_distance(s, n, name, m);
        if (dist < best) {
            best = dist;
            pick = name;
        }
    }
    return pick;
}

/* ---- types ------------------------------------------------------------ */

typedef enum { TY_OK, TY_BAD, TY_SYNTAX } ty_status;

static const char dtype_list[] = "f64, f32, f16, bf16, i64, i32, i16, i8, u8, bool";

/* type := DTYPE '[' [dim (',' dim)*] ']'.  TY_BAD: a reported error that
 * left the tokens in step (the whole type was read); TY_SYNTAX: not. */
static ty_status parse_type(fe_parser *p, ir_type *t) {
    memset(t, 0, sizeof *t);
    if (p->tok.kind != FE_TK_IDENT) {
        expected(p, "a type (like f32[2, 3])");
        return TY_SYNTAX;
    }
    ir_loc loc = p->tok.loc;
    ty_status st = TY_OK;
    fe_token dt = p->tok;
    if (!ir_dtype_parse(dt.text, dt.len, &t->dtype)) {
        err(p, loc, "unknown dtype '%.*s' (expected one of: %s)", (int)(dt.len > 40 ? 40 : dt.len),
            dt.text, dtype_list);
        next(p);
        if (p->tok.kind != FE_TK_LBRACKET) return TY_BAD;
        st = TY_BAD;
    } else {
        next(p);
    }
    if (p->tok.kind != FE_TK_LBRACKET) {
        expected(p, "'[' after dtype '%.*s' (a scalar is written %.*s[])", (int)dt.len, dt.text,
                 (int)dt.len, dt.text);
        return TY_SYNTAX;
    }
    next(p);
    bool rank_reported = false;
    int64_t numel = 1;
    bool too_big = false;
    if (p->tok.kind != FE_TK_RBRACKET) {
        for (;;) {
            int64_t dim = 1;
            if (p->tok.kind == FE_TK_INT) {
                dim = p->tok.i;
                if (dim < 0) {
                    err(p, p->tok.loc, "negative dim %lld in type", (long long)dim);
                    st = TY_BAD;
                    dim = 1;
                }
            } else if (p->tok.kind == FE_TK_IDENT) {
                err(p, p->tok.loc, "symbolic size '%.*s' is not supported yet",
                    (int)(p->tok.len > 40 ? 40 : p->tok.len), p->tok.text);
                st = TY_BAD;
            } else if (p->tok.kind == FE_TK_FLOAT) {
                err(p, p->tok.loc, "bad dim '%.*s' (a dim is a non-negative integer)",
                    (int)(p->tok.len > 40 ? 40 : p->tok.len), p->tok.text);
                st = TY_BAD;
            } else {
                expected(p, "a dim (a non-negative integer)");
                return TY_SYNTAX;
            }
            if (t->rank == IR_MAX_RANK) {
                if (!rank_reported)
                    err(p, p->tok.loc, "type has more than %d dims (the maximum rank)",
                        IR_MAX_RANK);
                rank_reported = true;
                st = TY_BAD;
            } else {
                t->dim[t->rank++] = dim;
            }
            /* Count zero dims as 1: a type must stay in range whatever a
             * pass computes from its other dims. */
            if (dim > 1 && numel > FE_MAX_NUMEL / dim) too_big = true;
            if (!too_big && dim > 1) numel *= dim;
            next(p);
            if (accept(p, FE_TK_COMMA)) continue;
            if (p->tok.kind == FE_TK_RBRACKET) break;
            expected(p, "',' or ']' in the type");
            return TY_SYNTAX;
        }
    }
    next(p); /* ']' */
    if (too_big) {
        err(p, loc, "type has more than 2^62 elements");
        st = TY_BAD;
    }
    return st;
}

/* ---- statements ---------------------------------------------------------- */

/* Resolve a %name use; NULL if undefined (reported) or poisoned (quiet). */
static ir_value *use_value(fe_parser *p, const fe_token *t, bool *bad) {
    fe_sym *e = sym_find(&p->vals, t->text, t->len);
    if (!e) {
        err(p, t->loc, "use of undefined value '%%%.*s'", (int)t->len, t->text);
        *bad = true;
        return NULL;
    }
    if (!e->v) *bad = true;
    return e->v;
}

/* operand := VALUE | NUMBER | 'true' | 'false'.  false on a syntax error. */
static bool parse_operand(fe_parser *p, bool *bad) {
    fe_token t = p->tok;
    ir_value *v = NULL;
    if (t.kind == FE_TK_VALUE) {
        v = use_value(p, &t, bad);
    } else if (t.kind == FE_TK_INT) {
        v = ir_graph_literal_i(p->g, t.i, false, t.loc);
    } else if (t.kind == FE_TK_FLOAT) {
        v = ir_graph_literal_f(p->g, t.f, t.loc);
    } else if (is_word(&t, "true") || is_word(&t, "false")) {
        v = ir_graph_literal_i(p->g, is_word(&t, "true"), true, t.loc);
    } else {
        expected(p, "an operand (a %%value, a number, true or false)");
        return false;
    }
    if (!v && t.kind != FE_TK_VALUE) {
        err_oom(p);
        return false;
    }
    if (!grow2(p, (void **)&p->opnd, sizeof *p->opnd, (void **)&p->opnd_loc, sizeof *p->opnd_loc,
               &p->cap_opnd, p->nopnd + 1))
        return false;
    p->opnd[p->nopnd] = v;
    p->opnd_loc[p->nopnd++] = t.loc;
    next(p);
    return true;
}

/* '[' [number (',' number)*] ']' -> INTS if every element is an integer,
 * else FLOATS.  Lists do not nest. */
static bool parse_attr_list(fe_parser *p, ir_attr_init *a) {
    next(p); /* '[' */
    p->nlist = 0;
    bool all_int = true;
    if (p->tok.kind != FE_TK_RBRACKET) {
        for (;;) {
            if (p->tok.kind == FE_TK_LBRACKET) {
                err(p, p->tok.loc, "nested lists are not allowed in attribute values");
                return false;
            }
            if (p->tok.kind != FE_TK_INT && p->tok.kind != FE_TK_FLOAT) {
                expected(p, "a number in the list");
                return false;
            }
            if (!grow2(p, (void **)&p->lints, sizeof *p->lints, (void **)&p->lnums,
                       sizeof *p->lnums, &p->cap_list, p->nlist + 1))
                return false;
            if (p->tok.kind == FE_TK_FLOAT) all_int = false;
            p->lints[p->nlist] = p->tok.i;
            p->lnums[p->nlist++] = p->tok.f;
            next(p);
            if (accept(p, FE_TK_COMMA)) continue;
            if (p->tok.kind == FE_TK_RBRACKET) break;
            expected(p, "',' or ']' in the list");
            return false;
        }
    }
    next(p); /* ']' */
    int n = p->nlist;
    a->kind = all_int ? IR_AK_INTS : IR_AK_FLOATS;
    a->val.n = n;
    if (n > 0) {
        a->val.floats = ir_arena_alloc(&p->g->arena, (size_t)n * sizeof(double));
        if (all_int) a->val.ints = ir_arena_alloc(&p->g->arena, (size_t)n * sizeof(int64_t));
        if (!a->val.floats || (all_int && !a->val.ints)) {
            err_oom(p);
            return false;
        }
        memcpy(a->val.floats, p->lnums, (size_t)n * sizeof(double));
        if (all_int) memcpy(a->val.ints, p->lints, (size_t)n * sizeof(int64_t));
    }
    return true;
}

/* attrval := NUMBER | STRING | 'true' | 'false' | DTYPE | list. */
static bool parse_attr_value(fe_parser *p, ir_attr_init *a) {
    fe_token t = p->tok;
    if (t.kind == FE_TK_LBRACKET) return parse_attr_list(p, a);
    if (t.kind == FE_TK_INT) {
        a->kind = IR_AK_INT;
        a->val.i = t.i;
        a->val.f = t.f;
    } else if (t.kind == FE_TK_FLOAT) {
        a->kind = IR_AK_FLOAT;
        a->val.f = t.f;
    } else if (is_word(&t, "true") || is_word(&t, "false")) {
        a->kind = IR_AK_BOOL;
        a->val.i = is_word(&t, "true");
    } else if (t.kind == FE_TK_IDENT && ir_dtype_parse(t.text, t.len, &a->val.dt)) {
        a->kind = IR_AK_DTYPE;
    } else if (t.kind == FE_TK_STRING) {
        char *s = ir_arena_alloc(&p->g->arena, t.len + 1);
        if (!s) {
            err_oom(p);
            return false;
        }
        fe_string_unescape(&t, s);
        a->kind = IR_AK_STR;
        a->val.s = s;
    } else if (t.kind == FE_TK_IDENT) {
        int n = (int)(t.len > 40 ? 40 : t.len);
        err(p, t.loc,
            "bad attribute value '%.*s' (a string is written in double quotes: \"%.*s\"; a dtype "
            "is one of: %s)",
            n, t.text, n, t.text, dtype_list);
        return false;
    } else {
        expected(p, "an attribute value (a number, string, true, false, dtype or list)");
        return false;
    }
    next(p);
    return true;
}

/* "axes, keepdim" for the unknown-attribute message. */
static void attr_names(ir_str *s, ir_op op) {
    const ir_op_info *info = ir_op_get(op);
    for (int i = 0; i < info->nattrs; i++)
        ir_str_printf(s, "%s%s", i ? ", " : "", info->attrs[i].name);
}

/* attrs := '{' NAME '=' attrval (',' NAME '=' attrval)* '}'.  With a known
 * op, names are checked against its spec and each attribute lands in p->attr
 * (*nattr of them).  false on a syntax error. */
static bool parse_attrs(fe_parser *p, bool op_known, ir_op op, int *nattr, bool *bad) {
    int nspec = op_known ? ir_op_get(op)->nattrs : 0;
    if (!grow2(p, (void **)&p->attr, sizeof *p->attr, (void **)&p->attr_seen,
               sizeof *p->attr_seen, &p->cap_attr, nspec + 1))
        return false;
    for (int i = 0; i < nspec; i++) p->attr_seen[i] = (ir_loc){0, 0};
    *nattr = 0;
    next(p); /* '{' */
    for (;;) {
        if (p->tok.kind != FE_TK_IDENT) {
            expected(p, "an attribute name");
            return false;
        }
        fe_token name = p->tok;
        next(p);
        if (p->tok.kind != FE_TK_EQUAL) {
            expected(p, "'=' after attribute name '%.*s'", (int)(name.len > 40 ? 40 : name.len),
                     name.text);
            return false;
        }
        next(p);
        ir_attr_init a;
        memset(&a, 0, sizeof a);
        a.loc = name.loc;
        if (!parse_attr_value(p, &a)) return false;
        if (op_known) {
            a.name = tok_str(p, &name);
            if (!a.name) return false;
            int idx = ir_op_attr_index(op, a.name);
            if (idx < 0) {
                ir_str s = {0};
                attr_names(&s, op);
                if (nspec)
                    err(p, name.loc, "unknown attribute '%s' for op '%s' (expected one of: %s)",
                        a.name, ir_op_get(op)->name, s.buf ? s.buf : "");
                else
                    err(p, name.loc, "unknown attribute '%s' for op '%s' (it takes no attributes)",
                        a.name, ir_op_get(op)->name);
                ir_str_free(&s);
                *bad = true;
            } else if (p->attr_seen[idx].line) {
                err(p, name.loc, "duplicate attribute '%s' (first given at line %d, column %d)",
                    a.name, p->attr_seen[idx].line, p->attr_seen[idx].col);
                *bad = true;
            } else {
                p->attr_seen[idx] = name.loc;
                p->attr[(*nattr)++] = a;
            }
        }
        if (accept(p, FE_TK_COMMA)) continue;
        if (accept(p, FE_TK_RBRACE)) return true;
        expected(p, "',' or '}' in the attribute list");
        return false;
    }
}

/* Bind a statement's or parameter's name (v NULL = poisoned). */
static void bind(fe_parser *p, const fe_token *name, ir_value *v) {
    fe_sym *e = sym_add(&p->vals, name->text, name->len);
    if (!e) {
        err_oom(p);
        return;
    }
    e->v = v;
    e->loc = name->loc;
}

/* Report a redefinition; true if name is already bound. */
static bool redefined(fe_parser *p, const fe_token *name) {
    fe_sym *e = sym_find(&p->vals, name->text, name->len);
    if (!e) return false;
    err(p, name->loc, "redefinition of '%%%.*s' (previously defined at line %d, column %d)",
        (int)name->len, name->text, e->loc.line, e->loc.col);
    return true;
}

/* stmt := VALUE '=' OP '(' [operand (',' operand)*] ')' [attrs] [':' type] */
static void parse_stmt(fe_parser *p) {
    fe_token name = p->tok;
    int mark = p->d->nerr;
    bool bad = false, dup = redefined(p, &name);
    bool op_known = false, has_type = false;
    ir_op op = 0;
    ir_type type;
    int nattr = 0;
    next(p);
    if (!accept(p, FE_TK_EQUAL)) {
        expected(p, "'=' after '%%%.*s'", (int)(name.len > 40 ? 40 : name.len), name.text);
        goto syntax;
    }
    fe_token optok = p->tok;
    if (optok.kind != FE_TK_IDENT) {
        expected(p, "an op name");
        goto syntax;
    }
    op_known = ir_op_lookup(optok.text, optok.len, &op);
    if (!op_known) {
        const char *near = closest_op(optok.text, optok.len);
        int n = (int)(optok.len > 40 ? 40 : optok.len);
        if (near)
            err(p, optok.loc, "unknown op '%.*s'; did you mean '%s'?", n, optok.text, near);
        else
            err(p, optok.loc, "unknown op '%.*s'", n, optok.text);
        bad = true;
    }
    next(p);
    if (!accept(p, FE_TK_LPAREN)) {
        expected(p, "'(' after op name '%.*s'", (int)(optok.len > 40 ? 40 : optok.len), optok.text);
        goto syntax;
    }
    p->nopnd = 0;
    if (!accept(p, FE_TK_RPAREN)) {
        for (;;) {
            if (!parse_operand(p, &bad)) goto syntax;
            if (accept(p, FE_TK_COMMA)) continue;
            if (accept(p, FE_TK_RPAREN)) break;
            expected(p, "',' or ')' in the operand list");
            goto syntax;
        }
    }
    if (p->tok.kind == FE_TK_LBRACE && !parse_attrs(p, op_known, op, &nattr, &bad)) goto syntax;
    if (accept(p, FE_TK_COLON)) {
        ty_status st = parse_type(p, &type);
        if (st == TY_SYNTAX) goto syntax;
        if (st == TY_BAD) bad = true;
        has_type = true;
    }
    if (p->stop) return;
    if (!bad && !dup) {
        ir_value *v = ir_build(p->g, op, p->opnd, p->nopnd, p->attr, nattr,
                               has_type ? &type : NULL, optok.loc, p->d);
        if (v) {
            v->name = tok_str(p, &name);
            bind(p, &name, v);
            return;
        }
        if (!errors_since(p, mark))
            err(p, optok.loc, "could not build op '%s'", ir_op_get(op)->name);
        check_limit(p);
    }
    if (!dup) bind(p, &name, NULL);
    return;
syntax:
    if (!dup) bind(p, &name, NULL);
    sync_stmt(p);
}

/* ret := 'return' VALUE (',' VALUE)*.  Checked against the signature's
 * result types (if they parsed: results_ok). */
static void parse_return(fe_parser *p, bool results_ok) {
    ir_loc loc = p->tok.loc;
    bool bad = false;
    next(p);
    p->nopnd = 0;
    for (;;) {
        if (p->tok.kind != FE_TK_VALUE) {
            expected(p, "a value ('%%name') to return");
            sync_stmt(p);
            return;
        }
        ir_value *v = use_value(p, &p->tok, &bad);
        if (!grow2(p, (void **)&p->opnd, sizeof *p->opnd, (void **)&p->opnd_loc,
                   sizeof *p->opnd_loc, &p->cap_opnd, p->nopnd + 1))
            return;
        p->opnd[p->nopnd] = v;
        p->opnd_loc[p->nopnd++] = p->tok.loc;
        next(p);
        if (!accept(p, FE_TK_COMMA)) break;
    }
    if (bad || !results_ok) return;
    if (p->nopnd != p->nres) {
        err(p, loc, "'return' gives %d value%s but '@%.*s' is declared to return %d", p->nopnd,
            p->nopnd == 1 ? "" : "s", p->fname_len, p->fname, p->nres);
        return;
    }
    bool ok = true;
    for (int i = 0; i < p->nopnd; i++) {
        const ir_value *v = p->opnd[i];
        if (ir_type_eq(&v->type, &p->res[i])) continue;
        ir_str got = {0}, want = {0};
        ir_type_print(&got, &v->type);
        ir_type_print(&want, &p->res[i]);
        err(p, p->opnd_loc[i],
            "returned value '%%%s' has type %s but result %d of '@%.*s' is declared as %s",
            v->name ? v->name : "?", got.buf ? got.buf : "?", i, p->fname_len, p->fname,
            want.buf ? want.buf : "?");
        ir_str_free(&got);
        ir_str_free(&want);
        ok = false;
    }
    for (int i = 0; ok && i < p->nopnd; i++)
        if (!ir_graph_add_result(p->g, p->opnd[i])) err_oom(p);
}

/* ---- functions --------------------------------------------------------- */

/* '(' [param (',' param)*] ')'  with param := VALUE ':' type.  false on a
 * syntax error. */
static bool parse_params(fe_parser *p) {
    if (!expect(p, FE_TK_LPAREN, "'(' after the function name")) return false;
    if (accept(p, FE_TK_RPAREN)) return true;
    for (;;) {
        if (p->tok.kind != FE_TK_VALUE) {
            expected(p, "a parameter ('%%name: type')");
            return false;
        }
        fe_token name = p->tok;
        bool dup = redefined(p, &name);
        next(p);
        ir_type t;
        ty_status st = TY_SYNTAX;
        if (accept(p, FE_TK_COLON))
            st = parse_type(p, &t);
        else
            expected(p, "':' and a type after parameter '%%%.*s'",
                     (int)(name.len > 40 ? 40 : name.len), name.text);
        if (!dup) {
            ir_value *v = NULL;
            if (st == TY_OK) {
                const char *nm = tok_str(p, &name);
                v = nm ? ir_graph_add_param(p->g, nm, &t, name.loc) : NULL;
                if (!v) err_oom(p);
            }
            bind(p, &name, v);
        }
        if (st == TY_SYNTAX) return false;
        if (accept(p, FE_TK_COMMA)) continue;
        if (accept(p, FE_TK_RPAREN)) return true;
        expected(p, "',' or ')' in the parameter list");
        return false;
    }
}

/* results := type | '(' type (',' type)* ')', into p->res.  *ok false if a
 * type was bad; returns false on a syntax error. */
static bool parse_results(fe_parser *p, bool *ok) {
    p->nres = 0;
    bool paren = accept(p, FE_TK_LPAREN);
    for (;;) {
        if (!grow2(p, (void **)&p->res, sizeof *p->res, NULL, 0, &p->cap_res, p->nres + 1))
            return false;
        ty_status st = parse_type(p, &p->res[p->nres++]);
        if (st == TY_SYNTAX) return false;
        if (st == TY_BAD) *ok = false;
        if (!paren) return true;
        if (accept(p, FE_TK_COMMA)) continue;
        if (accept(p, FE_TK_RPAREN)) return true;
        expected(p, "',' or ')' in the result types");
        return false;
    }
}

/* Decide what to keep of a finished, error-free function's graph. */
static void keep_graph(fe_parser *p, ir_graph *g, const fe_token *name) {
    bool is_main = name->len == 4 && memcmp(name->text, "main", 4) == 0;
    if (p->want) {
        if (strlen(p->want) == name->len && memcmp(p->want, name->text, name->len) == 0 &&
            !p->wanted) {
            p->wanted = g;
            return;
        }
    } else if (is_main && !p->main) {
        p->main = g;
        return;
    } else if (!p->first) {
        p->first = g;
        return;
    }
    ir_graph_free(g);
}

/* Skip to the next 'func' keyword (top-level recovery). */
static void sync_func(fe_parser *p) {
    while (p->tok.kind != FE_TK_EOF && !is_word(&p->tok, "func")) next(p);
}

/* func := 'func' '@' NAME '(' params ')' '->' results '{' stmt* ret '}' */
static void parse_func(fe_parser *p) {
    int mark = p->d->nerr;
    next(p); /* 'func' */
    if (p->tok.kind != FE_TK_GLOBAL) {
        expected(p, "a function name ('@name') after 'func'");
        next(p);
        sync_func(p);
        return;
    }
    fe_token name = p->tok;
    if (!grow2(p, (void **)&p->ftok, sizeof *p->ftok, NULL, 0, &p->cap_ftok, p->nfuncs + 1))
        return;
    p->ftok[p->nfuncs++] = name;
    fe_sym *prev = sym_find(&p->funcs, name.text, name.len);
    if (prev) {
        err(p, name.loc, "redefinition of function '@%.*s' (previously defined at line %d)",
            (int)name.len, name.text, prev->loc.line);
    } else {
        fe_sym *e = sym_add(&p->funcs, name.text, name.len);
        if (!e) {
            err_oom(p);
            return;
        }
        e->loc = name.loc;
    }
    p->g = ir_graph_new(NULL);
    if (p->g) p->g->name = ir_arena_strndup(&p->g->arena, name.text, name.len);
    if (!p->g || !p->g->name) {
        err_oom(p);
        return;
    }
    p->fname = name.text;
    p->fname_len = (int)name.len;
    sym_clear(&p->vals);
    next(p);

    bool results_ok = true;
    if (!parse_params(p) ||
        !expect(p, FE_TK_ARROW, "'->' and the result type(s) after the parameter list") ||
        !parse_results(p, &results_ok)) {
        results_ok = false;
        while (p->tok.kind != FE_TK_EOF && p->tok.kind != FE_TK_LBRACE &&
               !(p->tok.bol && is_word(&p->tok, "func")))
            next(p);
    }
    if (!accept(p, FE_TK_LBRACE)) {
        if (!errors_since(p, mark)) expected(p, "'{' to open the function body");
        ir_graph_free(p->g);
        p->g = NULL;
        sync_func(p);
        return;
    }

    bool saw_return = false;
    while (!p->stop) {
        if (p->tok.kind == FE_TK_RBRACE || p->tok.kind == FE_TK_EOF ||
            (p->tok.bol && is_word(&p->tok, "func")))
            break;
        if (is_word(&p->tok, "return")) {
            parse_return(p, results_ok);
            saw_return = true;
            if (p->tok.kind != FE_TK_RBRACE) {
                expected(p, "'}' after the return statement");
                while (p->tok.kind != FE_TK_EOF && !(p->tok.bol && p->tok.kind == FE_TK_RBRACE) &&
                       !(p->tok.bol && is_word(&p->tok, "func")))
                    next(p);
            }
        } else if (p->tok.kind == FE_TK_VALUE) {
            parse_stmt(p);
        } else {
            expected_at(p, p->tok.loc, "a statement ('%%name = op(...)') or 'return'");
            next(p);
            sync_stmt(p);
        }
    }
    if (p->tok.kind == FE_TK_RBRACE) {
        if (!saw_return)
            err(p, p->tok.loc, "missing 'return' at the end of function '@%.*s'", (int)name.len,
                name.text);
        next(p);
    } else if (!errors_since(p, mark)) {
        expected(p, "'}' at the end of the function body");
    }

    ir_graph *g = p->g;
    p->g = NULL;
    if (errors_since(p, mark) || prev || !ir_verify(g, p->d)) {
        ir_graph_free(g);
        check_limit(p);
        return;
    }
    keep_graph(p, g, &name);
}

/* ---- the module ------------------------------------------------------------ */

static void free_parser(fe_parser *p) {
    free(p->vals.slot);
    free(p->funcs.slot);
    free(p->opnd);
    free(p->opnd_loc);
    free(p->lints);
    free(p->lnums);
    free(p->attr);
    free(p->attr_seen);
    free(p->res);
    free(p->ftok);
    if (p->g) ir_graph_free(p->g);
}

ir_graph *fe_parse(const char *src, size_t len, const char *filename, const char *func,
                   ir_diag *d) {
    fe_parser p;
    memset(&p, 0, sizeof p);
    /* A diag set up without the source still gets located, quoted messages. */
    if (!d->file) d->file = filename;
    if (!d->src) {
        d->src = src;
        d->srclen = src ? len : 0;
    }
    p.d = d;
    p.nerr0 = d->nerr;
    p.want = func;
    fe_lexer_init(&p.lx, src ? src : "", src ? len : 0, d);
    next(&p);
    while (p.tok.kind != FE_TK_EOF && !p.stop) {
        if (is_word(&p.tok, "func")) {
            parse_func(&p);
        } else {
            expected_at(&p, p.tok.loc, "'func' to start a function");
            next(&p);
            sync_func(&p);
        }
    }
    if (!p.stop && p.nfuncs == 0 && !errors_since(&p, p.nerr0))
        err(&p, (ir_loc){0, 0},
            "no function in the file (expected 'func @name(...) -> type { ... }')");
    if (!p.stop && func && !sym_find(&p.funcs, func, strlen(func)) && p.nfuncs > 0) {
        ir_str s = {0};
        for (int i = 0; i < p.nfuncs && i < 8; i++)
            ir_str_printf(&s, "%s@%.*s", i ? ", " : "", (int)p.ftok[i].len, p.ftok[i].text);
        if (p.nfuncs > 8) ir_str_puts(&s, ", ...");
        err(&p, (ir_loc){0, 0}, "no function named '@%s' (the file defines %s)", func,
            s.buf ? s.buf : "");
        ir_str_free(&s);
    }

    ir_graph *g = func ? p.wanted : p.main ? p.main : p.first;
    if (errors_since(&p, p.nerr0)) g = NULL;
    if (p.first && p.first != g) ir_graph_free(p.first);
    if (p.main && p.main != g) ir_graph_free(p.main);
    if (p.wanted && p.wanted != g) ir_graph_free(p.wanted);
    free_parser(&p);
    return g;
}
