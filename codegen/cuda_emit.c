/*
 * cuda_emit.c - the CUDA generator's context and the small pieces every
 * part of it uses: errors, emitting lines, unique names, the scoped cache
 * of evaluations (cuda_impl.h), and the C spelling of dtypes - compute
 * types, literals rounded to their dtype, rounding after an op, casts with
 * the rules of ir_scalar_cast, loads and stores.
 *
 * Rounding is what keeps fused kernels equal to the interpreter op for op:
 * values are computed in float (f32, f16, bf16), double (f64) or long long
 * (integers and bool as 0/1), and every op's result is rounded to its
 * dtype as the interpreter's store rounds it (f16/bf16 through the
 * preamble's conversions, narrow integers by truncation, bool to 0/1).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda_impl.h"

/* ---- context ------------------------------------------------------------ */

char *cg_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *r = malloc(n);
    if (r) memcpy(r, s, n);
    return r;
}

bool cg_is_library_op(const ir_node *n) {
    ir_category c = ir_op_get(n->op)->category;
    return c == IR_CAT_CONTRACTION || c == IR_CAT_COMPOSITE;
}

int cg_input_buf(const cg *g, const ir_value *v) {
    if (v->kind == IR_VAL_LITERAL) return -1;
    int b = plan_buf_of(g->p, v);
    if (b < 0) return -1;
    int k = (int)(g->k - g->p->kernels);
    return g->p->bufs[b].def != k ? b : -1;
}

int cg_body_index(const cg *g, const ir_value *v) {
    if (v->kind != IR_VAL_NODE || v->id < 0 || v->id >= g->nvals) return -1;
    return g->body_of[v->id];
}

bool cg_init(cg *g, const plan *p, int k, ir_diag *d) {
    memset(g, 0, sizeof *g);
    g->p = p;
    g->k = &p->kernels[k];
    g->d = d;
    g->ok = true;
    g->vec = 1;
    g->nvals = p->g->next_id;
    int nn = g->k->nnodes > 0 ? g->k->nnodes : 1;
    g->body_of = malloc(sizeof(int) * (size_t)(g->nvals > 0 ? g->nvals : 1));
    g->has_load = calloc((size_t)nn, sizeof(bool));
    g->red = calloc((size_t)nn, sizeof(char *));
    g->const_done = calloc((size_t)nn, sizeof(bool));
    if (!g->body_of || !g->has_load || !g->red || !g->const_done) {
        ir_error(d, (ir_loc){0}, "cuda codegen: out of memory");
        g->ok = false;
        return false;
    }
    for (int i = 0; i < g->nvals; i++) g->body_of[i] = -1;
    for (int i = 0; i < g->k->nnodes; i++) g->body_of[g->k->nodes[i]->out->id] = i;
    /* has_load: body nodes are in program order, operands first */
    for (int i = 0; i < g->k->nnodes; i++) {
        const ir_node *n = g->k->nodes[i];
        bool l = false;
        for (int j = 0; j < n->nin && !l; j++) {
            const ir_value *v = n->in[j];
            int bi = cg_body_index(g, v);
            l = cg_input_buf(g, v) >= 0 || (bi >= 0 && g->has_load[bi]);
        }
        g->has_load[i] = l || cg_is_library_op(n);
    }
    return true;
}

void cg_reset(cg *g) {
    for (int i = 0; i < g->nent; i++) free(g->ent[i].key);
    g->nent = 0;
    g->scope = 0;
    g->nvars = 0;
    g->npreds = 0;
    g->indent = 0;
    for (int i = 0; i < g->k->nnodes; i++) g->red[i] = NULL;
}

void cg_free(cg *g) {
    for (int i = 0; i < g->nent; i++) free(g->ent[i].key);
    free(g->ent);
    free(g->vars);
    free(g->preds);
    free(g->body_of);
    free(g->has_load);
    free(g->red);
    free(g->const_done);
    ir_str_free(&g->consts);
    ir_arena_free(&g->mem);
    memset(g, 0, sizeof *g);
}

bool cg_fail(cg *g, const ir_node *n, const char *fmt, ...) {
    if (!g->ok) return false;
    g->ok = false;
    ir_str s = {0};
    va_list ap;
    va_start(ap, fmt);
    ir_str_vprintf(&s, fmt, ap);
    va_end(ap);
    ir_error(g->d, n ? n->loc : (ir_loc){0}, "cuda codegen: kernel %s: %s", g->k->name ? g->k->name : "?",
             s.buf ? s.buf : "out of memory");
    ir_str_free(&s);
    return false;
}

char *cg_strf(cg *g, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *r = ir_arena_alloc(&g->mem, (size_t)n + 1);
    if (!r) {
        cg_fail(g, NULL, "out of memory");
        return (char *)"0";
    }
    if ((size_t)n < sizeof small) {
        memcpy(r, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(r, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return r;
}

void cg_line(cg *g, const char *fmt, ...) {
    for (int i = 0; i < g->indent; i++) ir_str_puts(g->out, "    ");
    va_list ap;
    va_start(ap, fmt);
    ir_str_vprintf(g->out, fmt, ap);
    va_end(ap);
    ir_str_putc(g->out, '\n');
}

const char *cg_fresh(cg *g, const char *base) { return cg_strf(g, "%s_%d", base, g->counter++); }

void cg_scope_push(cg *g) { g->scope++; }

void cg_scope_pop(cg *g) {
    while (g->nent > 0 && g->ent[g->nent - 1].scope >= g->scope) free(g->ent[--g->nent].key);
    g->scope--;
}

/* ---- the cache ---------------------------------------------------------- */

static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

cg_entry *cg_cache_find(cg *g, const char *key) {
    uint64_t h = fnv(key);
    for (int i = g->nent - 1; i >= 0; i--)
        if (g->ent[i].hash == h && strcmp(g->ent[i].key, key) == 0) return &g->ent[i];
    return NULL;
}

cg_entry *cg_cache_add(cg *g, const char *key) {
    if (g->nent == g->cent) {
        int nc = g->cent ? g->cent * 2 : 64;
        cg_entry *ne = realloc(g->ent, sizeof *ne * (size_t)nc);
        if (!ne) {
            cg_fail(g, NULL, "out of memory");
            return NULL;
        }
        g->ent = ne;
        g->cent = nc;
    }
    cg_entry *e = &g->ent[g->nent];
    memset(e, 0, sizeof *e);
    e->key = cg_strdup(key);
    if (!e->key) {
        cg_fail(g, NULL, "out of memory");
        return NULL;
    }
    e->hash = fnv(key);
    e->scope = g->scope;
    g->nent++;
    return e;
}

/* ---- dtypes -------------------------------------------------------------- */

bool cg_is_f(ir_dtype dt) { return ir_dtype_is_float(dt); }

const char *cg_ctype(ir_dtype dt) {
    if (dt == FUSEC_DTYPE_F64) return "double";
    if (ir_dtype_is_float(dt)) return "float";
    return "long long";
}

const char *cg_stype(ir_dtype dt) {
    switch (dt) {
    case FUSEC_DTYPE_F64: return "double";
    case FUSEC_DTYPE_F32: return "float";
    case FUSEC_DTYPE_F16:
    case FUSEC_DTYPE_BF16: return "unsigned short";
    case FUSEC_DTYPE_I64: return "long long";
    case FUSEC_DTYPE_I32: return "int";
    case FUSEC_DTYPE_I16: return "short";
    case FUSEC_DTYPE_I8: return "signed char";
    default: return "unsigned char"; /* u8, bool */
    }
}

char *cg_round(cg *g, ir_dtype dt, const char *x) {
    switch (dt) {
    case FUSEC_DTYPE_F16: return cg_strf(g, "fc_rh(%s)", x);
    case FUSEC_DTYPE_BF16: return cg_strf(g, "fc_rb(%s)", x);
    case FUSEC_DTYPE_I32: return cg_strf(g, "(long long)(int)(%s)", x);
    case FUSEC_DTYPE_I16: return cg_strf(g, "(long long)(short)(%s)", x);
    case FUSEC_DTYPE_I8: return cg_strf(g, "(long long)(signed char)(%s)", x);
    case FUSEC_DTYPE_U8: return cg_strf(g, "(long long)(unsigned char)(%s)", x);
    case FUSEC_DTYPE_BOOL: return cg_strf(g, "(long long)((%s) != 0)", x);
    default: return (char *)x; /* f32, f64, i64: computed in their own type */
    }
}

char *cg_lit_double(cg *g, ir_dtype dt, double v) {
    bool dbl = dt == FUSEC_DTYPE_F64;
    if (isnan(v)) return cg_strf(g, dbl ? "((double)NAN)" : "NAN");
    if (isinf(v)) return cg_strf(g, dbl ? "((double)%sINFINITY)" : "(%sINFINITY)", v < 0 ? "-" : "");
    char buf[64];
    snprintf(buf, sizeof buf, dbl ? "%.17g" : "%.9g", v);
    bool has_dot = strpbrk(buf, ".e") != NULL;
    return cg_strf(g, "%s%s%s%s%s", v < 0 || signbit(v) ? "(" : "", buf, has_dot ? "" : ".0", dbl ? "" : "f",
                   v < 0 || signbit(v) ? ")" : "");
}

char *cg_lit_int64(cg *g, int64_t v) {
    if (v == INT64_MIN) return cg_strf(g, "(-9223372036854775807LL - 1)");
    if (v < 0) return cg_strf(g, "(%" PRId64 "LL)", v);
    return cg_strf(g, "%" PRId64 "LL", v);
}

char *cg_lit_f(cg *g, ir_dtype dt, double v) {
    unsigned char buf[8] = {0};
    ir_store_f(dt, buf, 0, v);
    if (ir_dtype_is_float(dt)) return cg_lit_double(g, dt, ir_load_f(dt, buf, 0));
    return cg_lit_int64(g, ir_load_i(dt, buf, 0));
}

char *cg_lit_i(cg *g, ir_dtype dt, int64_t v) {
    unsigned char buf[8] = {0};
    ir_store_i(dt, buf, 0, v);
    if (ir_dtype_is_float(dt)) return cg_lit_double(g, dt, ir_load_f(dt, buf, 0));
    return cg_lit_int64(g, ir_load_i(dt, buf, 0));
}

char *cg_cast(cg *g, ir_dtype from, ir_dtype to, const char *x) {
    if (ir_dtype_is_float(from)) {
        if (to == FUSEC_DTYPE_BOOL) return cg_strf(g, "(long long)((%s) != 0)", x);
        if (!ir_dtype_is_float(to)) return cg_round(g, to, cg_strf(g, "fc_f2i((double)(%s))", x));
        if (to == FUSEC_DTYPE_F64) return from == to ? (char *)x : cg_strf(g, "(double)(%s)", x);
        const char *f = from == FUSEC_DTYPE_F64 ? cg_strf(g, "(float)(%s)", x) : x;
        if (to == FUSEC_DTYPE_F32 || from == to) return (char *)f;
        return cg_round(g, to, f);
    }
    if (to == FUSEC_DTYPE_F64) return cg_strf(g, "(double)(%s)", x);
    if (ir_dtype_is_float(to)) return cg_round(g, to, cg_strf(g, "(float)(double)(%s)", x));
    return cg_round(g, to, x);
}

char *cg_ld(cg *g, ir_dtype dt, const char *ptr, const char *off) {
    switch (dt) {
    case FUSEC_DTYPE_F16: return cg_strf(g, "fc_h2f(%s[%s])", ptr, off);
    case FUSEC_DTYPE_BF16: return cg_strf(g, "fc_b2f(%s[%s])", ptr, off);
    case FUSEC_DTYPE_F32:
    case FUSEC_DTYPE_F64:
    case FUSEC_DTYPE_I64: return cg_strf(g, "%s[%s]", ptr, off);
    case FUSEC_DTYPE_BOOL: return cg_strf(g, "(long long)(%s[%s] != 0)", ptr, off);
    default: return cg_strf(g, "(long long)%s[%s]", ptr, off);
    }
}

char *cg_st_conv(cg *g, ir_dtype dt, const char *x) {
    switch (dt) {
    case FUSEC_DTYPE_F16: return cg_strf(g, "fc_f2h(%s)", x);
    case FUSEC_DTYPE_BF16: return cg_strf(g, "fc_b2s(%s)", x); /* x is rounded already */
    case FUSEC_DTYPE_I32: return cg_strf(g, "(int)(%s)", x);
    case FUSEC_DTYPE_I16: return cg_strf(g, "(short)(%s)", x);
    case FUSEC_DTYPE_I8: return cg_strf(g, "(signed char)(%s)", x);
    case FUSEC_DTYPE_U8: return cg_strf(g, "(unsigned char)(%s)", x);
    case FUSEC_DTYPE_BOOL: return cg_strf(g, "(unsigned char)((%s) != 0)", x);
    default: return (char *)x;
    }
}

void cg_st(cg *g, ir_dtype dt, const char *ptr, const char *off, const char *val) {
    cg_line(g, "%s[%s] = %s;", ptr, off, cg_st_conv(g, dt, val));
}
