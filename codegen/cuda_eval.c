/*
 * cuda_eval.c - the heart of the CUDA generator: emit the code that
 * evaluates a kernel body's value at a symbolic index, for every lane of a
 * thread at once (see cuda_impl.h for the model).
 *
 * Evaluation mirrors runtime/plan_exec.c op by op: elementwise ops read
 * their operands at the broadcast index and round their result to its
 * dtype (cuda_emit.c), movement ops remap the index, iota/full/constant
 * compute from it, gathers load their index (clamped into range: an
 * out-of-range index reads a valid element instead of faulting), and a
 * reduction's value is the per-row variable its kernel computed before.
 * Integer division by zero gives 0 (the interpreter reports an error; a
 * kernel cannot).
 *
 * Loads of a buffer at lane offsets that are consecutive from a multiple
 * of the lane count, under one validity predicate, become one vector load
 * (uint4 / uint2 / 32-bit / 16-bit raw words, split into lanes); others are
 * scalar loads under each lane's full predicate.  Stores work the same way.
 * Every evaluation is remembered in the scoped cache, keyed by the value,
 * the lanes' coordinates and predicates.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda_impl.h"

/* ---- evaluation ------------------------------------------------------------- */

cg_at *cg_at_new(cg *g, int nl, int rank) {
    cg_at *a = calloc(1, sizeof *a);
    if (!a) {
        cg_fail(g, NULL, "out of memory");
        return NULL;
    }
    a->nl = nl;
    a->rank = rank;
    return a;
}

/* The variable-name stem of a value: v_<name> or v<id>. */
static const char *val_base(cg *g, const ir_value *v) {
    if (!v->name) return cg_strf(g, "v%d", v->id);
    char buf[40];
    size_t n = 0;
    for (const char *s = v->name; *s && n < 24; s++)
        buf[n++] = ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')) ? *s : '_';
    buf[n] = 0;
    return cg_strf(g, "v_%s", buf);
}

static char *at_key(cg *g, const char *tag, int id, const cg_at *at) {
    ir_str s = {0};
    ir_str_printf(&s, "%s%d", tag, id);
    for (int l = 0; l < at->nl; l++) {
        ir_str_putc(&s, '|');
        for (int i = 0; i < at->rank; i++) {
            ir_str_puts(&s, cg_ix_str(g, &at->ix[l][i]));
            ir_str_putc(&s, ',');
        }
        ir_str_printf(&s, "@%d/%d", at->pred[l], at->vpred[l]);
    }
    char *r = cg_strf(g, "%s", s.buf ? s.buf : "");
    ir_str_free(&s);
    return r;
}

/* Are the lanes' offsets consecutive from an aligned start, under one
 * validity predicate?  Then one vector access serves them. */
static bool lanes_vector(const cg *g, const cg_at *at, const cg_ix *off) {
    int V = at->nl;
    if (V <= 1 || g->vec != V) return false;
    for (int l = 1; l < V; l++)
        if (at->vpred[l] != at->vpred[0]) return false;
    if (off[0].c % V != 0) return false;
    for (int i = 0; i < off[0].n; i++)
        if (off[0].t[i].coef % V != 0) return false;
    for (int l = 1; l < V; l++) {
        cg_ix x = off[0];
        x.c += l;
        if (!cg_ix_eq(&x, &off[l])) return false;
    }
    return true;
}

static const char *raw_type(int bytes) {
    switch (bytes) {
    case 16: return "uint4";
    case 8: return "uint2";
    case 4: return "unsigned int";
    default: return "unsigned short";
    }
}

static const char *raw_zero(int bytes) {
    switch (bytes) {
    case 16: return "make_uint4(0u, 0u, 0u, 0u)";
    case 8: return "make_uint2(0u, 0u)";
    case 4: return "0u";
    default: return "(unsigned short)0";
    }
}

/* 32-bit word w of a raw vector q of `bytes` bytes. */
static char *raw_word(cg *g, const char *q, int bytes, int w) {
    static const char *const f[4] = {"x", "y", "z", "w"};
    if (bytes >= 8) return cg_strf(g, "%s.%s", q, f[w]);
    return cg_strf(g, "(unsigned int)%s", q);
}

/* Element l of dtype dt from raw vector q, in dt's compute type. */
static char *raw_elem(cg *g, ir_dtype dt, const char *q, int bytes, int l) {
    int es = (int)ir_dtype_size(dt);
    if (es == 8) {
        char *lo = raw_word(g, q, bytes, 2 * l), *hi = raw_word(g, q, bytes, 2 * l + 1);
        if (dt == FUSEC_DTYPE_F64) return cg_strf(g, "__hiloint2double((int)%s, (int)%s)", hi, lo);
        return cg_strf(g, "(long long)(((unsigned long long)%s << 32) | %s)", hi, lo);
    }
    if (es == 4) {
        char *w = raw_word(g, q, bytes, l);
        if (dt == FUSEC_DTYPE_F32) return cg_strf(g, "__uint_as_float(%s)", w);
        return cg_strf(g, "(long long)(int)%s", w);
    }
    if (es == 2) {
        char *w = raw_word(g, q, bytes, l / 2);
        char *h = cg_strf(g, "(unsigned short)(%s >> %d)", w, 16 * (l % 2));
        if (dt == FUSEC_DTYPE_F16) return cg_strf(g, "fc_h2f(%s)", h);
        if (dt == FUSEC_DTYPE_BF16) return cg_strf(g, "fc_b2f(%s)", h);
        return cg_strf(g, "(long long)(short)%s", h);
    }
    char *w = raw_word(g, q, bytes, l / 4);
    char *b = cg_strf(g, "((%s >> %d) & 0xffu)", w, 8 * (l % 4));
    if (dt == FUSEC_DTYPE_I8) return cg_strf(g, "(long long)(signed char)%s", b);
    if (dt == FUSEC_DTYPE_BOOL) return cg_strf(g, "(long long)(%s != 0u)", b);
    return cg_strf(g, "(long long)%s", b);
}

static bool eval_load(cg *g, const ir_value *v, int b, const cg_at *at, const char **names) {
    ir_dtype dt = v->type.dtype;
    const char *ct = cg_ctype(dt), *base = val_base(g, v);
    const char *ptr = cg_strf(g, "b%d", b);
    cg_ix off[CG_MAX_LANES];
    for (int l = 0; l < at->nl; l++) off[l] = cg_ix_linear(g, at->ix[l], v->type.dim, v->type.rank);
    if (lanes_vector(g, at, off)) {
        int bytes = at->nl * (int)ir_dtype_size(dt);
        char *bs = cg_ix_str(g, &off[0]);
        char *key = cg_strf(g, "L%d|%s|%d", b, bs, at->vpred[0]);
        cg_entry *e = cg_cache_find(g, key);
        if (!e) {
            const char *q = cg_fresh(g, cg_strf(g, "q%d", b));
            if (at->vpred[0])
                cg_line(g, "const %s %s = %s ? *(const %s *)(%s + (%s)) : %s;", raw_type(bytes), q,
                        cg_pred_name(g, at->vpred[0]), raw_type(bytes), ptr, bs, raw_zero(bytes));
            else
                cg_line(g, "const %s %s = *(const %s *)(%s + (%s));", raw_type(bytes), q, raw_type(bytes), ptr, bs);
            e = cg_cache_add(g, key);
            if (!e) return false;
            e->nl = at->nl;
            for (int l = 0; l < at->nl; l++) {
                const char *nm = cg_fresh(g, base);
                cg_line(g, "const %s %s = %s;", ct, nm, raw_elem(g, dt, q, bytes, l));
                e->names[l] = nm;
            }
        }
        for (int l = 0; l < at->nl; l++) names[l] = e->names[l];
        return true;
    }
    for (int l = 0; l < at->nl; l++) {
        names[l] = NULL;
        for (int m = 0; m < l && !names[l]; m++)
            if (at->pred[m] == at->pred[l] && cg_ix_eq(&off[m], &off[l])) names[l] = names[m];
        if (names[l]) continue;
        const char *nm = cg_fresh(g, base);
        char *ld = cg_ld(g, dt, ptr, cg_ix_str(g, &off[l]));
        if (at->pred[l])
            cg_line(g, "const %s %s = %s ? %s : (%s)0;", ct, nm, cg_pred_name(g, at->pred[l]), ld, ct);
        else
            cg_line(g, "const %s %s = %s;", ct, nm, ld);
        names[l] = nm;
    }
    return true;
}

void cg_store(cg *g, int b, const cg_at *at, const cg_ix *off, const char **names) {
    ir_dtype dt = g->p->bufs[b].value->type.dtype;
    const char *ptr = cg_strf(g, "b%d", b);
    int es = (int)ir_dtype_size(dt);
    if (lanes_vector(g, at, off)) {
        int V = at->nl, bytes = V * es, nw = bytes >= 4 ? bytes / 4 : 1;
        char *w[4];
        for (int i = 0; i < nw; i++) w[i] = NULL;
        for (int l = 0; l < V; l++) {
            const char *x = names[l];
            char *part[2];
            int np = 1, wi = l * es / 4;
            switch (dt) {
            case FUSEC_DTYPE_F64:
                part[0] = cg_strf(g, "(unsigned int)__double2loint(%s)", x);
                part[1] = cg_strf(g, "(unsigned int)__double2hiint(%s)", x);
                np = 2;
                wi = 2 * l;
                break;
            case FUSEC_DTYPE_I64:
                part[0] = cg_strf(g, "(unsigned int)(unsigned long long)(%s)", x);
                part[1] = cg_strf(g, "(unsigned int)((unsigned long long)(%s) >> 32)", x);
                np = 2;
                wi = 2 * l;
                break;
            case FUSEC_DTYPE_F32: part[0] = cg_strf(g, "__float_as_uint(%s)", x); break;
            case FUSEC_DTYPE_I32: part[0] = cg_strf(g, "(unsigned int)(int)(%s)", x); break;
            case FUSEC_DTYPE_F16:
            case FUSEC_DTYPE_BF16:
            case FUSEC_DTYPE_I16:
                part[0] = cg_strf(g, "((unsigned int)(unsigned short)%s << %d)", cg_st_conv(g, dt, x), 16 * (l % 2));
                break;
            default:
                part[0] = cg_strf(g, "((unsigned int)(unsigned char)%s << %d)", cg_st_conv(g, dt, x), 8 * (l % 4));
                break;
            }
            for (int k = 0; k < np; k++) {
                int wk = wi + k;
                w[wk] = w[wk] ? cg_strf(g, "%s | %s", w[wk], part[k]) : part[k];
            }
        }
        char *val;
        if (bytes == 16) val = cg_strf(g, "make_uint4(%s, %s, %s, %s)", w[0], w[1], w[2], w[3]);
        else if (bytes == 8) val = cg_strf(g, "make_uint2(%s, %s)", w[0], w[1]);
        else if (bytes == 4) val = w[0];
        else val = cg_strf(g, "(unsigned short)(%s)", w[0]);
        char *os = cg_ix_str(g, &off[0]);
        if (at->vpred[0])
            cg_line(g, "if (%s) *(%s *)(%s + (%s)) = %s;", cg_pred_name(g, at->vpred[0]), raw_type(bytes), ptr, os, val);
        else
            cg_line(g, "*(%s *)(%s + (%s)) = %s;", raw_type(bytes), ptr, os, val);
        return;
    }
    for (int l = 0; l < at->nl; l++) {
        char *os = cg_ix_str(g, &off[l]);
        if (at->vpred[l]) {
            cg_line(g, "if (%s) %s[%s] = %s;", cg_pred_name(g, at->vpred[l]), ptr, os, cg_st_conv(g, dt, names[l]));
        } else {
            cg_st(g, dt, ptr, os, names[l]);
        }
    }
}

/* ---- elementwise expressions ---------------------------------------------------- */

static bool ew_exact(const ir_node *n, bool isf) {
    switch (n->op) {
    case IR_OP_RELU: case IR_OP_MAXIMUM: case IR_OP_MINIMUM: case IR_OP_SIGN: case IR_OP_WHERE:
    case IR_OP_MASKED_FILL: case IR_OP_EQ: case IR_OP_NE: case IR_OP_LT: case IR_OP_LE:
    case IR_OP_GT: case IR_OP_GE: case IR_OP_CAST: case IR_OP_ISNAN: case IR_OP_ISINF: return true;
    case IR_OP_NEG: case IR_OP_ABS: case IR_OP_FLOOR: case IR_OP_CEIL: case IR_OP_ROUND: return isf;
    case IR_OP_NOT: case IR_OP_AND: case IR_OP_OR: case IR_OP_XOR: return !isf;
    default: return false;
    }
}

static int64_t clamp_bound(double v) {
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

/* The expression of elementwise node n over operand expressions x (not yet
 * rounded to the result dtype), or NULL for an op it does not know. */
static char *ew_expr(cg *g, const ir_node *n, const ir_ew *e, const char **x) {
    ir_dtype in = e->in_dtype, od = e->out_dtype;
    const char *a = x[0], *b = n->nin > 1 ? x[1] : "";
    switch (n->op) {
    case IR_OP_CAST: return cg_cast(g, in, od, a);
    case IR_OP_WHERE: return cg_strf(g, "(%s ? %s : %s)", a, b, x[2]);
    case IR_OP_MASKED_FILL: {
        ir_scalar f = e->fill;
        char *fill = ir_dtype_is_float(od) ? cg_lit_f(g, od, f.f) : cg_lit_i(g, od, f.i);
        return cg_strf(g, "(%s ? %s : %s)", b, fill, a);
    }
    default: break;
    }
    if (ir_dtype_is_float(in)) {
        bool dbl = in == FUSEC_DTYPE_F64;
        const char *f = dbl ? "" : "f", *T = dbl ? "double" : "float", *one = dbl ? "1.0" : "1.0f",
                   *zero = dbl ? "0.0" : "0.0f";
        switch (n->op) {
        case IR_OP_NEG: return cg_strf(g, "(-%s)", a);
        case IR_OP_ABS: return cg_strf(g, "fabs%s(%s)", f, a);
        case IR_OP_SIGN: return cg_strf(g, "(%s > %s ? (%s)1 : %s < %s ? (%s)-1 : %s)", a, zero, T, a, zero, T, zero);
        case IR_OP_EXP: return cg_strf(g, "exp%s(%s)", f, a);
        case IR_OP_EXP2: return cg_strf(g, "exp2%s(%s)", f, a);
        case IR_OP_LOG: return cg_strf(g, "log%s(%s)", f, a);
        case IR_OP_LOG2: return cg_strf(g, "log2%s(%s)", f, a);
        case IR_OP_LOG1P: return cg_strf(g, "log1p%s(%s)", f, a);
        case IR_OP_EXPM1: return cg_strf(g, "expm1%s(%s)", f, a);
        case IR_OP_SQRT: return cg_strf(g, "sqrt%s(%s)", f, a);
        case IR_OP_RSQRT: return cg_strf(g, "(%s / sqrt%s(%s))", one, f, a);
        case IR_OP_RECIPROCAL: return cg_strf(g, "(%s / %s)", one, a);
        case IR_OP_SIN: return cg_strf(g, "sin%s(%s)", f, a);
        case IR_OP_COS: return cg_strf(g, "cos%s(%s)", f, a);
        case IR_OP_TAN: return cg_strf(g, "tan%s(%s)", f, a);
        case IR_OP_TANH: return cg_strf(g, "tanh%s(%s)", f, a);
        case IR_OP_SIGMOID: return cg_strf(g, "(%s / (%s + exp%s(-%s)))", one, one, f, a);
        case IR_OP_ERF: return cg_strf(g, "erf%s(%s)", f, a);
        case IR_OP_RELU: return cg_strf(g, "(%s < %s ? %s : %s)", a, zero, zero, a);
        case IR_OP_GELU: return cg_strf(g, "%s(%s)", e->gelu_tanh ? "fc_gelu_tanh" : "fc_gelu", a);
        case IR_OP_SILU: return cg_strf(g, "(%s / (%s + exp%s(-%s)))", a, one, f, a);
        case IR_OP_FLOOR: return cg_strf(g, "floor%s(%s)", f, a);
        case IR_OP_CEIL: return cg_strf(g, "ceil%s(%s)", f, a);
        case IR_OP_ROUND: return cg_strf(g, "rint%s(%s)", f, a);
        case IR_OP_ISNAN: return cg_strf(g, "(long long)(%s != %s)", a, a);
        case IR_OP_ISINF: return cg_strf(g, "(long long)(fabs%s(%s) == (%s)INFINITY)", f, a, T);
        case IR_OP_CLAMP: {
            /* the bounds compare in double, as eval.c does */
            char *r = (char *)a;
            if (e->has_lo) {
                char *lo = cg_lit_double(g, FUSEC_DTYPE_F64, e->lo);
                r = cg_strf(g, "((double)%s < %s ? (%s)%s : %s)", r, lo, T, lo, r);
            }
            if (e->has_hi) {
                char *hi = cg_lit_double(g, FUSEC_DTYPE_F64, e->hi);
                const char *cur = r;
                if (e->has_lo) {
                    const char *t = cg_fresh(g, "c");
                    cg_line(g, "const %s %s = %s;", T, t, r);
                    cur = t;
                }
                r = cg_strf(g, "((double)%s > %s ? (%s)%s : %s)", cur, hi, T, hi, cur);
            }
            return r;
        }
        case IR_OP_ADD: return cg_strf(g, "(%s + %s)", a, b);
        case IR_OP_SUB: return cg_strf(g, "(%s - %s)", a, b);
        case IR_OP_MUL: return cg_strf(g, "(%s * %s)", a, b);
        case IR_OP_DIV: return cg_strf(g, "(%s / %s)", a, b);
        case IR_OP_POW: return cg_strf(g, "pow%s(%s, %s)", f, a, b);
        case IR_OP_MAXIMUM: return cg_strf(g, "fc_fmax(%s, %s)", a, b);
        case IR_OP_MINIMUM: return cg_strf(g, "fc_fmin(%s, %s)", a, b);
        case IR_OP_REMAINDER: return cg_strf(g, "fc_frem(%s, %s)", a, b);
        case IR_OP_EQ: return cg_strf(g, "(long long)(%s == %s)", a, b);
        case IR_OP_NE: return cg_strf(g, "(long long)(%s != %s)", a, b);
        case IR_OP_LT: return cg_strf(g, "(long long)(%s < %s)", a, b);
        case IR_OP_LE: return cg_strf(g, "(long long)(%s <= %s)", a, b);
        case IR_OP_GT: return cg_strf(g, "(long long)(%s > %s)", a, b);
        case IR_OP_GE: return cg_strf(g, "(long long)(%s >= %s)", a, b);
        default: return NULL;
        }
    }
    switch (n->op) {
    case IR_OP_NEG: return cg_strf(g, "fc_ineg(%s)", a);
    case IR_OP_ABS: return cg_strf(g, "(%s < 0 ? fc_ineg(%s) : %s)", a, a, a);
    case IR_OP_SIGN: return cg_strf(g, "(long long)((%s > 0) - (%s < 0))", a, a);
    case IR_OP_RELU: return cg_strf(g, "(%s < 0 ? 0LL : %s)", a, a);
    case IR_OP_NOT: return cg_strf(g, "(long long)(%s == 0)", a);
    case IR_OP_CLAMP: {
        char *r = (char *)a;
        if (e->has_lo) {
            char *lo = cg_lit_int64(g, clamp_bound(e->lo));
            r = cg_strf(g, "(%s < %s ? %s : %s)", r, lo, lo, r);
        }
        if (e->has_hi) {
            char *hi = cg_lit_int64(g, clamp_bound(e->hi));
            const char *cur = r;
            if (e->has_lo) {
                const char *t = cg_fresh(g, "c");
                cg_line(g, "const long long %s = %s;", t, r);
                cur = t;
            }
            r = cg_strf(g, "(%s > %s ? %s : %s)", cur, hi, hi, cur);
        }
        return r;
    }
    case IR_OP_ADD: return cg_strf(g, "fc_iadd(%s, %s)", a, b);
    case IR_OP_SUB: return cg_strf(g, "fc_isub(%s, %s)", a, b);
    case IR_OP_MUL: return cg_strf(g, "fc_imul(%s, %s)", a, b);
    case IR_OP_DIV: return cg_strf(g, "fc_idiv(%s, %s)", a, b);
    case IR_OP_REMAINDER: return cg_strf(g, "fc_irem(%s, %s)", a, b);
    case IR_OP_POW: return cg_strf(g, "fc_ipow(%s, %s)", a, b);
    case IR_OP_MAXIMUM: return cg_strf(g, "(%s >= %s ? %s : %s)", a, b, a, b);
    case IR_OP_MINIMUM: return cg_strf(g, "(%s <= %s ? %s : %s)", a, b, a, b);
    case IR_OP_AND: return cg_strf(g, "(%s & %s)", a, b);
    case IR_OP_OR: return cg_strf(g, "(%s | %s)", a, b);
    case IR_OP_XOR: return cg_strf(g, "(%s ^ %s)", a, b);
    case IR_OP_EQ: return cg_strf(g, "(long long)(%s == %s)", a, b);
    case IR_OP_NE: return cg_strf(g, "(long long)(%s != %s)", a, b);
    case IR_OP_LT: return cg_strf(g, "(long long)(%s < %s)", a, b);
    case IR_OP_LE: return cg_strf(g, "(long long)(%s <= %s)", a, b);
    case IR_OP_GT: return cg_strf(g, "(long long)(%s > %s)", a, b);
    case IR_OP_GE: return cg_strf(g, "(long long)(%s >= %s)", a, b);
    default: return NULL;
    }
}

/* ---- evaluation of body nodes ------------------------------------------------------ */

static char *literal_expr(cg *g, const ir_value *v) {
    ir_dtype dt = v->type.dtype;
    if (!ir_dtype_is_float(dt) && v->lit_is_int) return cg_lit_i(g, dt, v->lit_i);
    return cg_lit_f(g, dt, v->lit_f);
}

/* Operand at of a broadcasting op: align right, size-1 dims read 0. */
static void bcast_at(const cg_at *at, const ir_type *res, const ir_type *op, cg_at *sub) {
    sub->nl = at->nl;
    sub->rank = op->rank;
    memcpy(sub->pred, at->pred, sizeof at->pred);
    memcpy(sub->vpred, at->vpred, sizeof at->vpred);
    int lead = res->rank - op->rank;
    for (int l = 0; l < at->nl; l++)
        for (int i = 0; i < op->rank; i++)
            sub->ix[l][i] = op->dim[i] == 1 ? cg_ixc(0) : at->ix[l][lead + i];
}

static void copy_at(const cg_at *at, cg_at *sub, int rank) {
    sub->nl = at->nl;
    sub->rank = rank;
    memcpy(sub->pred, at->pred, sizeof at->pred);
    memcpy(sub->vpred, at->vpred, sizeof at->vpred);
}

static int norm_axis(const ir_node *n, const char *name, int rank) {
    int a = 0;
    bool ok = ir_norm_axis(ir_attr_i(n, name), rank, &a);
    FC_ASSERT(ok);
    return a;
}

/* Emit `const T name = expr;` once per distinct lane expression. */
/* The name of an earlier lane with lane l's expression, or NULL. */
static const char *same_as_earlier(char **expr, const char **names, int l) {
    for (int m = 0; m < l; m++)
        if (strcmp(expr[m], expr[l]) == 0) return names[m];
    return NULL;
}

static void emit_lanes(cg *g, const ir_value *v, const cg_at *at, char **expr, const char **names) {
    const char *ct = cg_ctype(v->type.dtype), *base = val_base(g, v);
    for (int l = 0; l < at->nl; l++) {
        if ((names[l] = same_as_earlier(expr, names, l))) continue;
        const char *nm = cg_fresh(g, base);
        cg_line(g, "const %s %s = %s;", ct, nm, expr[l]);
        names[l] = nm;
    }
}

/* emit_lanes for bf16 results not yet rounded: distinct lanes are rounded
 * in pairs (fc_rb2), the odd one out alone. */
static void emit_lanes_bf16(cg *g, const ir_value *v, const cg_at *at, char **expr, const char **names) {
    const char *base = val_base(g, v);
    int pend = -1; /* a distinct lane waiting for its partner */
    for (int l = 0; l < at->nl; l++) {
        if ((names[l] = same_as_earlier(expr, names, l))) continue;
        names[l] = cg_fresh(g, base);
        if (pend < 0) {
            pend = l;
            continue;
        }
        cg_line(g, "float %s, %s;", names[pend], names[l]);
        cg_line(g, "fc_rb2(%s, %s, %s, %s);", expr[pend], expr[l], names[pend], names[l]);
        pend = -1;
    }
    if (pend >= 0) cg_line(g, "const float %s = fc_rb(%s);", names[pend], expr[pend]);
}

static bool eval_elementwise(cg *g, const ir_node *n, const cg_at *at, const char **names) {
    const ir_type *ot = &n->out->type;
    ir_ew e;
    ir_ew_init(&e, n);
    const char *x[3][CG_MAX_LANES];
    cg_at *sub = cg_at_new(g, at->nl, 0);
    if (!sub) return false;
    /* where / masked_fill read only the branch a scalar lane needs */
    int cond_op = n->op == IR_OP_WHERE ? 0 : n->op == IR_OP_MASKED_FILL ? 1 : -1;
    bool ok = true;
    if (cond_op >= 0) {
        bcast_at(at, ot, &n->in[cond_op]->type, sub);
        ok = cg_eval(g, n->in[cond_op], sub, x[cond_op]);
    }
    for (int k = 0; ok && k < n->nin; k++) {
        if (k == cond_op) continue;
        bcast_at(at, ot, &n->in[k]->type, sub);
        int bi = cg_body_index(g, n->in[k]);
        bool loads = cg_input_buf(g, n->in[k]) >= 0 || (bi >= 0 && g->has_load[bi]);
        if (cond_op >= 0 && at->nl == 1 && loads) {
            /* where's true branch where the condition holds; its false
             * branch and masked_fill's x where it does not */
            bool want = n->op == IR_OP_WHERE && k == 1;
            sub->pred[0] = cg_pred_and(g, at->pred[0], cg_strf(g, "%s %s 0", x[cond_op][0], want ? "!=" : "=="));
        }
        ok = cg_eval(g, n->in[k], sub, x[k]);
    }
    free(sub);
    if (!ok) return false;
    char *expr[CG_MAX_LANES];
    /* Every op's result is rounded to its dtype, f16/bf16 included: spec
     * 5.2 defines f16/bf16 ops as computed in f32 and rounded per op (as
     * PyTorch's eager ops do).  Keeping fused intermediates in f32, as
     * torch.compile does, is faster but changes results beyond the f16
     * tolerance in ill-conditioned graphs (a row masked with -10000 in f16
     * becomes uniform only after rounding). */
    bool exact = ew_exact(n, ir_dtype_is_float(e.in_dtype));
    /* a cast to bf16 from a type held in float is a rounding, paired too */
    bool bf16_cast = n->op == IR_OP_CAST && ot->dtype == FUSEC_DTYPE_BF16 &&
                     (e.in_dtype == FUSEC_DTYPE_F32 || e.in_dtype == FUSEC_DTYPE_F16);
    for (int l = 0; l < at->nl; l++) {
        const char *xl[3] = {x[0][l], n->nin > 1 ? x[1][l] : NULL, n->nin > 2 ? x[2][l] : NULL};
        expr[l] = bf16_cast ? (char *)xl[0] : ew_expr(g, n, &e, xl);
        if (!expr[l]) return cg_fail(g, n, "op %s is not supported by the cuda backend", ir_op_get(n->op)->name);
        if (!exact && ot->dtype != FUSEC_DTYPE_BF16) expr[l] = cg_round(g, ot->dtype, expr[l]);
    }
    if ((!exact || bf16_cast) && ot->dtype == FUSEC_DTYPE_BF16) emit_lanes_bf16(g, n->out, at, expr, names);
    else emit_lanes(g, n->out, at, expr, names);
    return g->ok;
}

/* An index loaded through an index operand, clamped into [0, size). */
static cg_ix index_var(cg *g, const char *val, int64_t size) {
    const char *t = cg_fresh(g, "ix");
    cg_line(g, "const idx_t %s = (idx_t)fc_clampi(%s, %" PRId64 "LL);", t, val, size - 1);
    return cg_ixv(cg_var_new(g, t, 0, size > 0 ? size - 1 : 0), 1);
}

/* The form lane l's range condition on coordinate form `own` tests: lane
 * 0's form `first` when the lanes are consecutive from a multiple of the
 * lane count V and every bound is a multiple of V too - then all lanes
 * agree, the predicate is shared and their accesses can stay one vector. */
static const cg_ix *cond_form(int V, int l, const cg_ix *first, const cg_ix *own, const int64_t *bounds, int nb) {
    if (V <= 1 || l == 0 || first->c % V) return own;
    for (int i = 0; i < first->n; i++)
        if (first->t[i].coef % V) return own;
    for (int b = 0; b < nb; b++)
        if (bounds[b] % V) return own;
    cg_ix x = *first;
    x.c += l;
    return cg_ix_eq(&x, own) ? first : own;
}

static bool eval_movement(cg *g, const ir_node *n, const cg_at *at, const char **names) {
    const ir_type *ot = &n->out->type;
    const ir_value *x0 = n->nin > 0 ? n->in[0] : NULL;
    const ir_type *xt = x0 ? &x0->type : NULL;
    cg_at *sub = cg_at_new(g, at->nl, xt ? xt->rank : 0);
    if (!sub) return false;
    bool ok = true;
    switch (n->op) {
    case IR_OP_EXPAND:
        bcast_at(at, ot, xt, sub);
        ok = cg_eval(g, x0, sub, names);
        break;
    case IR_OP_RESHAPE:
    case IR_OP_SQUEEZE:
    case IR_OP_UNSQUEEZE: {
        copy_at(at, sub, xt->rank);
        /* the same dims apart from size-1 ones: coordinates carry over */
        int i = 0, j = 0;
        bool same = true;
        while (same) {
            while (i < ot->rank && ot->dim[i] == 1) i++;
            while (j < xt->rank && xt->dim[j] == 1) j++;
            if (i == ot->rank || j == xt->rank) {
                same = i == ot->rank && j == xt->rank;
                break;
            }
            same = ot->dim[i] == xt->dim[j];
            i++, j++;
        }
        for (int l = 0; l < at->nl; l++) {
            if (same) {
                int a = 0;
                for (int b = 0; b < xt->rank; b++) {
                    if (xt->dim[b] == 1) {
                        sub->ix[l][b] = cg_ixc(0);
                        continue;
                    }
                    while (ot->dim[a] == 1) a++;
                    sub->ix[l][b] = at->ix[l][a++];
                }
            } else {
                cg_ix lin = cg_ix_linear(g, at->ix[l], ot->dim, ot->rank);
                cg_ix_split(g, &lin, xt->dim, xt->rank, sub->ix[l]);
            }
        }
        ok = cg_eval(g, x0, sub, names);
        break;
    }
    case IR_OP_PERMUTE:
    case IR_OP_TRANSPOSE: {
        int perm[IR_MAX_RANK];
        if (n->op == IR_OP_PERMUTE) {
            int cnt;
            const int64_t *dims = ir_attr_ints(n, "dims", &cnt);
            for (int i = 0; i < cnt; i++) {
                bool okk = ir_norm_axis(dims[i], xt->rank, &perm[i]);
                FC_ASSERT(okk);
            }
        } else {
            for (int i = 0; i < xt->rank; i++) perm[i] = i;
            int a = norm_axis(n, "dim0", xt->rank), b = norm_axis(n, "dim1", xt->rank);
            perm[a] = b, perm[b] = a;
        }
        copy_at(at, sub, xt->rank);
        for (int l = 0; l < at->nl; l++)
            for (int i = 0; i < ot->rank; i++) sub->ix[l][perm[i]] = at->ix[l][i];
        ok = cg_eval(g, x0, sub, names);
        break;
    }
    case IR_OP_SLICE: {
        int ax = norm_axis(n, "axis", xt->rank);
        int64_t size = xt->dim[ax], start = ir_attr_i(n, "start"), step = ir_attr_i(n, "step");
        if (start < 0) start = start < -size ? 0 : start + size;
        if (start > size) start = size;
        copy_at(at, sub, xt->rank);
        for (int l = 0; l < at->nl; l++) {
            memcpy(sub->ix[l], at->ix[l], sizeof(cg_ix) * (size_t)ot->rank);
            cg_ix c = at->ix[l][ax];
            cg_ix_scale(g, &c, step);
            cg_ix s = cg_ixc(start);
            cg_ix_add(g, &c, &s);
            sub->ix[l][ax] = c;
        }
        ok = cg_eval(g, x0, sub, names);
        break;
    }
    case IR_OP_PAD: {
        int np;
        const int64_t *pads = ir_attr_ints(n, "pads", &np);
        int64_t before[IR_MAX_RANK] = {0};
        for (int k = 0; k < np / 2; k++) before[xt->rank - np / 2 + k] = pads[2 * k];
        char *fill = cg_lit_f(g, xt->dtype, ir_attr_f(n, "value"));
        copy_at(at, sub, xt->rank);
        bool dead[CG_MAX_LANES];
        for (int l = 0; l < at->nl && ok; l++) {
            ir_str cond = {0};
            dead[l] = false;
            for (int i = 0; i < xt->rank; i++) {
                cg_ix c = at->ix[l][i], off = cg_ixc(-before[i]);
                cg_ix_add(g, &c, &off);
                sub->ix[l][i] = c;
                int64_t bounds[2] = {before[i], xt->dim[i]}, lo, hi;
                c = *cond_form(at->nl, l, &sub->ix[0][i], &c, bounds, 2);
                cg_ix_range(g, &c, &lo, &hi);
                if (hi < 0 || lo >= xt->dim[i]) dead[l] = true;
                char *cs = cg_ix_str(g, &c);
                if (lo < 0) ir_str_printf(&cond, "%s%s >= 0", cond.len ? " && " : "", cs);
                if (hi >= xt->dim[i]) ir_str_printf(&cond, "%s%s < %" PRId64, cond.len ? " && " : "", cs, xt->dim[i]);
            }
            const char *cs = cond.buf ? cg_strf(g, "%s", cond.buf) : "1";
            ir_str_free(&cond);
            if (!dead[l]) {
                sub->pred[l] = cg_pred_and(g, at->pred[l], cs);
                sub->vpred[l] = cg_pred_and(g, at->vpred[l], cs);
            }
        }
        /* dead lanes read nothing: evaluate the others (a dead lane keeps a
         * harmless copy of a live one's coordinates) */
        int live = -1;
        for (int l = 0; l < at->nl; l++)
            if (!dead[l]) live = l;
        if (live < 0) {
            for (int l = 0; l < at->nl; l++) names[l] = fill;
            break;
        }
        for (int l = 0; l < at->nl; l++)
            if (dead[l]) {
                memcpy(sub->ix[l], sub->ix[live], sizeof(cg_ix) * (size_t)xt->rank);
                sub->pred[l] = sub->pred[live];
                sub->vpred[l] = sub->vpred[live];
            }
        const char *xv[CG_MAX_LANES];
        ok = cg_eval(g, x0, sub, xv);
        char *expr[CG_MAX_LANES];
        for (int l = 0; ok && l < at->nl; l++) {
            if (dead[l]) expr[l] = fill;
            else if (sub->vpred[l] == at->vpred[l]) expr[l] = (char *)xv[l];
            else expr[l] = cg_strf(g, "(%s ? %s : %s)", cg_pred_name(g, sub->vpred[l]), xv[l], fill);
        }
        if (ok) emit_lanes(g, n->out, at, expr, names);
        break;
    }
    case IR_OP_CONCAT: {
        int ax = norm_axis(n, "axis", ot->rank);
        char *expr[CG_MAX_LANES];
        for (int l = 0; l < at->nl; l++) expr[l] = NULL;
        int64_t off = 0;
        /* the last operand first: earlier ones wrap it in selects */
        int64_t offs[64], *offv = n->nin <= 64 ? offs : malloc(sizeof(int64_t) * (size_t)n->nin);
        if (!offv) {
            ok = cg_fail(g, n, "out of memory");
            break;
        }
        for (int k = 0; k < n->nin; k++) {
            offv[k] = off;
            off += n->in[k]->type.dim[ax];
        }
        for (int k = n->nin - 1; k >= 0 && ok; k--) {
            const ir_value *xk = n->in[k];
            int64_t lo_k = offv[k], hi_k = offv[k] + xk->type.dim[ax];
            copy_at(at, sub, ot->rank);
            bool live[CG_MAX_LANES], any = false;
            const char *conds[CG_MAX_LANES];
            for (int l = 0; l < at->nl; l++) {
                memcpy(sub->ix[l], at->ix[l], sizeof(cg_ix) * (size_t)ot->rank);
                cg_ix c = at->ix[l][ax], o = cg_ixc(-lo_k);
                cg_ix_add(g, &c, &o);
                sub->ix[l][ax] = c;
                int64_t bounds[2] = {lo_k, hi_k}, lo, hi;
                const cg_ix *cf = cond_form(at->nl, l, &at->ix[0][ax], &at->ix[l][ax], bounds, 2);
                cg_ix_range(g, cf, &lo, &hi);
                char *cs = cg_ix_str(g, cf);
                live[l] = hi >= lo_k && lo < hi_k && hi_k > lo_k;
                ir_str cond = {0};
                if (lo < lo_k) ir_str_printf(&cond, "%s >= %" PRId64, cs, lo_k);
                if (hi >= hi_k) ir_str_printf(&cond, "%s%s < %" PRId64, cond.len ? " && " : "", cs, hi_k);
                conds[l] = cond.buf ? cg_strf(g, "%s", cond.buf) : "1";
                ir_str_free(&cond);
                any |= live[l];
            }
            if (!any) continue;
            int livel = 0;
            for (int l = 0; l < at->nl; l++)
                if (live[l]) {
                    sub->pred[l] = cg_pred_and(g, at->pred[l], conds[l]);
                    sub->vpred[l] = cg_pred_and(g, at->vpred[l], conds[l]);
                    livel = l;
                }
            for (int l = 0; l < at->nl; l++)
                if (!live[l]) {
                    memcpy(sub->ix[l], sub->ix[livel], sizeof(cg_ix) * (size_t)ot->rank);
                    sub->pred[l] = sub->pred[livel];
                    sub->vpred[l] = sub->vpred[livel];
                }
            const char *xv[CG_MAX_LANES];
            ok = cg_eval(g, xk, sub, xv);
            for (int l = 0; ok && l < at->nl; l++) {
                if (!live[l]) continue;
                if (!expr[l] || strcmp(conds[l], "1") == 0) expr[l] = (char *)xv[l];
                else expr[l] = cg_strf(g, "(%s ? %s : %s)", cg_pred_name(g, sub->vpred[l]), xv[l], expr[l]);
            }
        }
        if (offv != offs) free(offv);
        for (int l = 0; ok && l < at->nl; l++)
            if (!expr[l]) expr[l] = ir_dtype_is_float(ot->dtype) ? cg_lit_f(g, ot->dtype, 0) : (char *)"0LL";
        if (ok) emit_lanes(g, n->out, at, expr, names);
        break;
    }
    case IR_OP_INDEX_SELECT:
    case IR_OP_GATHER:
    case IR_OP_EMBEDDING: {
        const ir_value *iv = n->in[1];
        int ax = n->op == IR_OP_EMBEDDING ? 0 : norm_axis(n, "axis", xt->rank);
        cg_at *isub = cg_at_new(g, at->nl, iv->type.rank);
        if (!isub) {
            ok = false;
            break;
        }
        copy_at(at, isub, iv->type.rank);
        for (int l = 0; l < at->nl; l++) {
            if (n->op == IR_OP_INDEX_SELECT) isub->ix[l][0] = at->ix[l][ax];
            else memcpy(isub->ix[l], at->ix[l], sizeof(cg_ix) * (size_t)iv->type.rank);
        }
        const char *iname[CG_MAX_LANES];
        ok = cg_eval(g, iv, isub, iname);
        free(isub);
        copy_at(at, sub, xt->rank);
        for (int l = 0; ok && l < at->nl; l++) {
            cg_ix ix = cg_ixc(0);
            bool reuse = false;
            for (int m = 0; m < l && !reuse; m++)
                if (iname[m] == iname[l] || strcmp(iname[m], iname[l]) == 0) {
                    ix = sub->ix[m][ax];
                    reuse = true;
                }
            if (!reuse) ix = index_var(g, iname[l], xt->dim[ax]);
            if (n->op == IR_OP_EMBEDDING) {
                sub->ix[l][0] = ix;
                sub->ix[l][1] = at->ix[l][ot->rank - 1];
            } else {
                memcpy(sub->ix[l], at->ix[l], sizeof(cg_ix) * (size_t)ot->rank);
                sub->ix[l][ax] = ix;
            }
        }
        if (ok) ok = cg_eval(g, x0, sub, names);
        break;
    }
    case IR_OP_IOTA: {
        char *expr[CG_MAX_LANES];
        int ax = ot->rank > 0 ? norm_axis(n, "axis", ot->rank) : -1;
        for (int l = 0; l < at->nl; l++) {
            char *c = ax >= 0 ? cg_strf(g, "(long long)(%s)", cg_ix_str(g, &at->ix[l][ax])) : (char *)"0LL";
            expr[l] = cg_cast(g, FUSEC_DTYPE_I64, ot->dtype, c);
        }
        emit_lanes(g, n->out, at, expr, names);
        break;
    }
    case IR_OP_FULL: {
        char *v = cg_lit_f(g, ot->dtype, ir_attr_f(n, "value"));
        for (int l = 0; l < at->nl; l++) names[l] = v;
        break;
    }
    case IR_OP_CONSTANT: {
        int cnt, j = cg_body_index(g, n->out);
        const double *data = ir_attr_floats(n, "data", &cnt);
        if (cnt != ir_type_numel(ot)) {
            ok = cg_fail(g, n, "constant has %d values, its type needs %" PRId64, cnt, ir_type_numel(ot));
            break;
        }
        ir_dtype dt = ot->dtype;
        bool isf = ir_dtype_is_float(dt), dbl = dt == FUSEC_DTYPE_F64;
        const char *tab = cg_strf(g, "fc_const%d", n->out->id);
        if (!g->const_done[j]) {
            g->const_done[j] = true;
            ir_str_printf(&g->consts, "/* %%%s: constant %s */\n__device__ const %s %s[%d] = {",
                          n->out->name ? n->out->name : "", ir_dtype_name(dt),
                          isf ? (dbl ? "unsigned long long" : "unsigned int") : "long long", tab, cnt > 0 ? cnt : 1);
            for (int i = 0; i < cnt; i++) {
                unsigned char buf[8] = {0};
                ir_store_f(dt, buf, 0, data[i]);
                if (i % 8 == 0) ir_str_puts(&g->consts, "\n    ");
                if (dbl) {
                    uint64_t u;
                    double dv = ir_load_f(dt, buf, 0);
                    memcpy(&u, &dv, 8);
                    ir_str_printf(&g->consts, "0x%016" PRIx64 "ull, ", u);
                } else if (isf) {
                    float fv = (float)ir_load_f(dt, buf, 0);
                    uint32_t u;
                    memcpy(&u, &fv, 4);
                    ir_str_printf(&g->consts, "0x%08" PRIx32 "u, ", u);
                } else {
                    ir_str_printf(&g->consts, "%" PRId64 "LL, ", ir_load_i(dt, buf, 0));
                }
            }
            ir_str_puts(&g->consts, cnt > 0 ? "\n};\n" : "0};\n");
        }
        char *expr[CG_MAX_LANES];
        for (int l = 0; l < at->nl; l++) {
            cg_ix lin = cg_ix_linear(g, at->ix[l], ot->dim, ot->rank);
            char *e = cg_strf(g, "%s[%s]", tab, cg_ix_str(g, &lin));
            expr[l] = dbl ? cg_strf(g, "__longlong_as_double((long long)%s)", e)
                          : isf ? cg_strf(g, "__uint_as_float(%s)", e) : e;
        }
        emit_lanes(g, n->out, at, expr, names);
        break;
    }
    case IR_OP_TRIU:
    case IR_OP_TRIL: {
        int64_t diag = ir_attr_i(n, "diagonal");
        int r = ot->rank;
        bool upper = n->op == IR_OP_TRIU;
        char *zero = ir_dtype_is_float(ot->dtype) ? cg_lit_f(g, ot->dtype, 0) : (char *)"0LL";
        const char *keep[CG_MAX_LANES];
        copy_at(at, sub, r);
        int bi = cg_body_index(g, x0);
        bool loads = cg_input_buf(g, x0) >= 0 || (bi >= 0 && g->has_load[bi]);
        for (int l = 0; l < at->nl; l++) {
            memcpy(sub->ix[l], at->ix[l], sizeof(cg_ix) * (size_t)r);
            cg_ix dif = at->ix[l][r - 2];
            cg_ix_scale(g, &dif, -1);
            cg_ix_add(g, &dif, &at->ix[l][r - 1]); /* column - row */
            int64_t lo, hi;
            cg_ix_range(g, &dif, &lo, &hi);
            bool always = upper ? lo >= diag : hi <= diag, never = upper ? hi < diag : lo > diag;
            /* compared in idx_t where everything fits 32 bits (a 64-bit
             * compare per element costs a causal softmax real time) */
            bool narrow = lo >= INT32_MIN && hi <= INT32_MAX && diag >= INT32_MIN && diag <= INT32_MAX;
            keep[l] = always ? "1" : never ? "0" : cg_strf(g, "%s %s %" PRId64 "%s", cg_ix_str(g, &dif),
                                                          upper ? ">=" : "<=", diag, narrow ? "" : "LL");
            if (at->nl == 1 && loads && !always) sub->pred[l] = cg_pred_and(g, at->pred[l], keep[l]);
        }
        const char *xv[CG_MAX_LANES];
        ok = cg_eval(g, x0, sub, xv);
        char *expr[CG_MAX_LANES];
        for (int l = 0; ok && l < at->nl; l++) {
            if (strcmp(keep[l], "1") == 0) expr[l] = (char *)xv[l];
            else if (strcmp(keep[l], "0") == 0) expr[l] = zero;
            else expr[l] = cg_strf(g, "((%s) ? %s : %s)", keep[l], xv[l], zero);
        }
        if (ok) emit_lanes(g, n->out, at, expr, names);
        break;
    }
    default:
        ok = cg_fail(g, n, "op %s is not supported by the cuda backend in a %s kernel", ir_op_get(n->op)->name,
                     g->k->kind == PLAN_LIBRARY ? "library" : g->k->kind == PLAN_REDUCE ? "reduce" : "pointwise");
        break;
    }
    free(sub);
    return ok && g->ok;
}

bool cg_eval(cg *g, const ir_value *v, const cg_at *at, const char **names) {
    if (!g->ok) return false;
    if (v->kind == IR_VAL_LITERAL) {
        char *s = literal_expr(g, v);
        for (int l = 0; l < at->nl; l++) names[l] = s;
        return true;
    }
    if (v == g->lib) {
        for (int l = 0; l < at->nl; l++) names[l] = g->lib_expr;
        return true;
    }
    char *key = at_key(g, "V", v->id, at);
    cg_entry *e = cg_cache_find(g, key);
    if (e) {
        for (int l = 0; l < at->nl; l++) names[l] = e->names[l];
        return true;
    }
    bool ok;
    int b = cg_input_buf(g, v), j = cg_body_index(g, v);
    if (b >= 0) {
        ok = eval_load(g, v, b, at, names);
    } else if (j < 0) {
        return cg_fail(g, v->def, "value %%%s is neither in memory nor computed by the kernel",
                       v->name ? v->name : "?");
    } else {
        const ir_node *n = v->def;
        ir_category cat = ir_op_get(n->op)->category;
        if (cat == IR_CAT_REDUCTION) {
            if (!g->red[j]) return cg_fail(g, n, "reduction %s is used before the kernel computes it",
                                           ir_op_get(n->op)->name);
            for (int l = 0; l < at->nl; l++) names[l] = g->red[j];
            ok = true;
        } else if (cat == IR_CAT_ELEMENTWISE) {
            ok = eval_elementwise(g, n, at, names);
        } else if (cg_is_library_op(n)) {
            return cg_fail(g, n, "op %s is not supported by the cuda backend%s", ir_op_get(n->op)->name,
                           ir_op_get(n->op)->category == IR_CAT_COMPOSITE ? " without the decompose pass"
                                                                          : " inside a non-library kernel");
        } else {
            ok = eval_movement(g, n, at, names);
        }
    }
    if (!ok || !g->ok) return false;
    e = cg_cache_add(g, key);
    if (!e) return false;
    e->nl = at->nl;
    for (int l = 0; l < at->nl; l++) e->names[l] = names[l];
    return true;
}
