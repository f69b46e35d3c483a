/*
 * decompose.c - rewrite composite ops into the primitives the fuser knows.
 *
 * The fuser sees elementwise ops, broadcasts, injective data movement,
 * reductions and contractions.  This pass replaces every composite
 * (softmax, log_softmax, layer_norm, rms_norm, batch_norm, sdpa) and every
 * op that is only shorthand for a few primitives (gelu, silu, linear,
 * masked_fill, clamp, mean, var) by an equivalent subgraph, built with
 * ir_build right before the node it replaces (g->ip), so every new node is
 * type-checked by the same rules as parsed ones and inherits the replaced
 * node's source location.  The result takes over the old value's name; the
 * old node is unlinked.  No rewrite emits a composite, so one forward walk
 * over the graph finishes the job.
 *
 * What each rewrite computes must agree with the reference interpreter
 * (runtime/interp.c, runtime/interp_nn.c) within the design's tolerances,
 * with NaN and inf in the same places.  The interpreter works in double
 * and rounds once; the rewrites round after every op, so:
 *  - f16 and bf16 inputs are cast to f32 first and the result is cast back
 *    once, for the normalisations, softmaxes, sdpa, mean and var (spec
 *    5.2: reductions over f16/bf16 accumulate in f32) and also for gelu and
 *    silu, whose formulas cancel (1 + erf(..) near x = -3) so that rounding
 *    every step to f16 would lose the answer.  f32 and f64 stay as they are.
 *  - softmax is max-subtracted exactly like the interpreter: the max
 *    reduction lets NaN win, so a row with a NaN (or +inf, where inf - inf
 *    is NaN) is NaN throughout, and a row of all -inf is NaN (spec 5.5).
 *  - sdpa uses the *safe* softmax of PyTorch >= 2.5 that rt_k_sdpa
 *    implements: a key is masked by adding -inf to its score (where(keep,
 *    s, s + -inf), so a NaN score stays NaN even where masked), the row max
 *    is replaced by 0 where it is -inf (every key masked), and the row sum,
 *    0 exactly in that case and >= 1 otherwise, by 1 - giving weights of 0
 *    and an output of 0 @ v.  The causal rule is ge(iota row, iota col) on
 *    [L, S], an index predicate that mask elimination can fold into the
 *    consuming kernel.  An empty key axis gives zeros, as in the
 *    interpreter.
 *  - clamp becomes minimum(maximum(x, lo), hi).  That is exact, NaN and
 *    signed zeros included: the interpreter's clamp is `x < lo ? lo : x`
 *    then `> hi ? hi : x`, which keeps a NaN x and returns the first
 *    operand on equal values, and maximum/minimum propagate a NaN x and
 *    return the first operand on ties; min > max gives max in both.  A
 *    bound that can never fire (NaN, lo = -inf, hi = +inf, or an integer
 *    bound beyond the dtype's range on the harmless side) is dropped.  A
 *    literal bound rounded to an f16 x is still exact: no f16 value lies
 *    strictly between a bound and its rounding.  An integer clamp whose
 *    bound lies beyond the dtype on the other side (clamp(u8) {min = 300})
 *    is left as it is (still an elementwise op the fuser handles).
 *  - mean is sum / N (0/0 = NaN over an empty axis, like the interpreter);
 *    var is two-pass like the interpreter: sum((x - mean)^2) / max(0, N -
 *    correction).  One caveat: a float sum can overflow before the division
 *    where the interpreter's double sum does not (a mean of values near the
 *    f32 maximum) - outside the ranges the tolerances are meant for.
 *  - linear is matmul(x, transpose(w)) + b in the input dtype; the bias
 *    joins after one rounding of the product instead of before it.
 *  - A composite whose result has no elements becomes `full` 0 (a max over
 *    an empty softmax axis has no identity and could not even be built).
 *
 * Requires: a verified graph.  Invalidates: nothing (every use of a
 * rewritten value is replaced and its node unlinked).
 */
#include <math.h>
#include <string.h>

#include "passes/pass.h"

/* ---- building blocks ------------------------------------------------- */

/* Where and how new nodes are built.  Every helper takes possibly-NULL
 * operands and returns NULL when one is NULL, so a rewrite reads as plain
 * formulas and a failure anywhere (reported to d once) surfaces at the end.
 * C leaves the order of evaluating arguments open, so a call never has two
 * arguments that build: intermediate values are named instead, and the
 * output is the same whatever the compiler. */
typedef struct dbuild {
    ir_graph *g;
    ir_diag *d;
    ir_loc loc;
} dbuild;

static ir_value *build(dbuild *b, ir_op op, ir_value *const *in, int nin, const ir_attr_init *attrs,
                       int nattrs, const ir_type *decl) {
    for (int i = 0; i < nin; i++)
        if (!in[i]) return NULL;
    return ir_build(b->g, op, in, nin, attrs, nattrs, decl, b->loc, b->d);
}

static ir_value *lit(dbuild *b, double v) {
    ir_value *l = ir_graph_literal_f(b->g, v, b->loc);
    if (!l) ir_error(b->d, b->loc, "decompose: out of memory");
    return l;
}

static ir_value *un(dbuild *b, ir_op op, ir_value *x) { return build(b, op, &x, 1, NULL, 0, NULL); }

static ir_value *bin(dbuild *b, ir_op op, ir_value *x, ir_value *y) {
    ir_value *in[2] = {x, y};
    return build(b, op, in, 2, NULL, 0, NULL);
}

/* op(x, literal v) */
static ir_value *binl(dbuild *b, ir_op op, ir_value *x, double v) { return bin(b, op, x, lit(b, v)); }

static ir_value *where(dbuild *b, ir_value *c, ir_value *x, ir_value *y) {
    ir_value *in[3] = {c, x, y};
    return build(b, IR_OP_WHERE, in, 3, NULL, 0, NULL);
}

/* A reduction over axes[0..naxes), or over every axis when axes is NULL. */
static ir_value *reduce(dbuild *b, ir_op op, ir_value *x, const int64_t *axes, int naxes, bool keepdim) {
    ir_attr_init a[2] = {
        {.name = "keepdim", .kind = IR_AK_BOOL, .val = {.i = keepdim}, .loc = b->loc},
        {.name = "axes", .kind = IR_AK_INTS, .val = {.ints = (int64_t *)axes, .n = naxes}, .loc = b->loc},
    };
    return build(b, op, &x, 1, a, axes ? 2 : 1, NULL);
}

static ir_value *cast(dbuild *b, ir_value *x, ir_dtype dt) {
    if (!x || x->type.dtype == dt) return x;
    ir_attr_init a = {.name = "to", .kind = IR_AK_DTYPE, .val = {.dt = dt}, .loc = b->loc};
    return build(b, IR_OP_CAST, &x, 1, &a, 1, NULL);
}

static ir_value *reshape(dbuild *b, ir_value *x, const int64_t *shape, int rank) {
    ir_attr_init a = {.name = "shape", .kind = IR_AK_INTS, .val = {.ints = (int64_t *)shape, .n = rank}, .loc = b->loc};
    return build(b, IR_OP_RESHAPE, &x, 1, &a, 1, NULL);
}

static ir_value *transpose_last(dbuild *b, ir_value *x) {
    ir_attr_init a[2] = {
        {.name = "dim0", .kind = IR_AK_INT, .val = {.i = -2}, .loc = b->loc},
        {.name = "dim1", .kind = IR_AK_INT, .val = {.i = -1}, .loc = b->loc},
    };
    return build(b, IR_OP_TRANSPOSE, &x, 1, a, 2, NULL);
}

static ir_value *iota(dbuild *b, int64_t axis, const ir_type *t) {
    ir_attr_init a = {.name = "axis", .kind = IR_AK_INT, .val = {.i = axis}, .loc = b->loc};
    return build(b, IR_OP_IOTA, NULL, 0, &a, 1, t);
}

static ir_value *full(dbuild *b, double v, const ir_type *t) {
    ir_attr_init a = {.name = "value", .kind = IR_AK_FLOAT, .val = {.f = v}, .loc = b->loc};
    return build(b, IR_OP_FULL, NULL, 0, &a, 1, t);
}

/* The dtype statistics are computed in: f32 for the half types. */
static ir_dtype work_dtype(ir_dtype dt) {
    return dt == FUSEC_DTYPE_F16 || dt == FUSEC_DTYPE_BF16 ? FUSEC_DTYPE_F32 : dt;
}

/* Number of elements a reduction of x over `axes` (attribute `name`, all
 * axes when absent) folds into one. */
static int64_t reduced_count(const ir_node *n, const char *name) {
    const ir_type *t = &n->in[0]->type;
    if (!ir_attr_has(n, name)) return ir_type_numel(t);
    int cnt, a;
    const int64_t *axes = ir_attr_ints(n, name, &cnt);
    int64_t k = 1;
    for (int i = 0; i < cnt && t->rank > 0; i++)
        if (ir_norm_axis(axes[i], t->rank, &a)) k *= t->dim[a];
    return k;
}

/* ---- the rewrites ------------------------------------------------------ */

/* Each returns the value replacing n's result, or NULL after an error; a
 * rewrite that declines sets *skip instead. */

static ir_value *dec_softmax(dbuild *b, const ir_node *n) {
    ir_value *x = n->in[0];
    ir_dtype dt = x->type.dtype;
    int64_t ax = ir_attr_i(n, "axis");
    ir_value *xc = cast(b, x, work_dtype(dt));
    ir_value *z = bin(b, IR_OP_SUB, xc, reduce(b, IR_OP_MAX, xc, &ax, 1, true));
    ir_value *e = un(b, IR_OP_EXP, z);
    ir_value *s = reduce(b, IR_OP_SUM, e, &ax, 1, true);
    ir_value *y = n->op == IR_OP_LOG_SOFTMAX ? bin(b, IR_OP_SUB, z, un(b, IR_OP_LOG, s)) : bin(b, IR_OP_DIV, e, s);
    return cast(b, y, dt);
}

/* layer_norm and rms_norm over the trailing `axes`. */
static ir_value *dec_trailing_norm(dbuild *b, const ir_node *n) {
    ir_value *x = n->in[0];
    ir_dtype dt = x->type.dtype, wt = work_dtype(dt);
    int cnt;
    const int64_t *axes = ir_attr_ints(n, "axes", &cnt);
    double m = (double)reduced_count(n, "axes"), eps = ir_attr_f(n, "eps");
    ir_value *xc = cast(b, x, wt);
    if (n->op == IR_OP_LAYER_NORM)
        xc = bin(b, IR_OP_SUB, xc, binl(b, IR_OP_DIV, reduce(b, IR_OP_SUM, xc, axes, cnt, true), m));
    ir_value *var = binl(b, IR_OP_DIV, reduce(b, IR_OP_SUM, bin(b, IR_OP_MUL, xc, xc), axes, cnt, true), m);
    ir_value *y = bin(b, IR_OP_MUL, xc, un(b, IR_OP_RSQRT, binl(b, IR_OP_ADD, var, eps)));
    if (n->nin > 1) y = bin(b, IR_OP_MUL, y, cast(b, n->in[1], wt));
    if (n->nin > 2) y = bin(b, IR_OP_ADD, y, cast(b, n->in[2], wt));
    return cast(b, y, dt);
}

/* Inference batch_norm: the per-channel factor rsqrt(var + eps) * weight is
 * computed on the [C] vectors, which are then reshaped to [C, 1, ...] so
 * that they broadcast over channel axis 1. */
static ir_value *dec_batch_norm(dbuild *b, const ir_node *n) {
    ir_value *x = n->in[0];
    ir_dtype dt = x->type.dtype, wt = work_dtype(dt);
    int64_t vshape[IR_MAX_RANK];
    int vrank = x->type.rank - 1;
    vshape[0] = x->type.dim[1];
    for (int i = 1; i < vrank; i++) vshape[i] = 1;
    ir_value *s = un(b, IR_OP_RSQRT, binl(b, IR_OP_ADD, cast(b, n->in[2], wt), ir_attr_f(n, "eps")));
    if (n->nin > 3) s = bin(b, IR_OP_MUL, s, cast(b, n->in[3], wt));
    ir_value *mean = cast(b, n->in[1], wt), *bias = n->nin > 4 ? cast(b, n->in[4], wt) : NULL;
    if (vrank > 1) {
        s = reshape(b, s, vshape, vrank);
        mean = reshape(b, mean, vshape, vrank);
        if (bias) bias = reshape(b, bias, vshape, vrank);
    }
    ir_value *y = bin(b, IR_OP_MUL, bin(b, IR_OP_SUB, cast(b, x, wt), mean), s);
    if (n->nin > 4) y = bin(b, IR_OP_ADD, y, bias);
    return cast(b, y, dt);
}

/* gelu with the interpreter's formulas, operation for operation:
 * 0.5 * x * (1 + erf(x * 0.7071067811865476)) and
 * 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x^3))). */
static ir_value *dec_gelu(dbuild *b, const ir_node *n) {
    ir_dtype dt = n->in[0]->type.dtype;
    ir_value *x = cast(b, n->in[0], work_dtype(dt)), *t;
    if (strcmp(ir_attr_s(n, "approximate"), "tanh") == 0) {
        ir_value *x3 = bin(b, IR_OP_MUL, bin(b, IR_OP_MUL, x, x), x);
        ir_value *inner = bin(b, IR_OP_ADD, x, binl(b, IR_OP_MUL, x3, 0.044715));
        t = un(b, IR_OP_TANH, binl(b, IR_OP_MUL, inner, 0.7978845608028654));
    } else {
        t = un(b, IR_OP_ERF, binl(b, IR_OP_MUL, x, 0.7071067811865476));
    }
    ir_value *half_x = binl(b, IR_OP_MUL, x, 0.5);
    return cast(b, bin(b, IR_OP_MUL, half_x, binl(b, IR_OP_ADD, t, 1.0)), dt);
}

static ir_value *dec_silu(dbuild *b, const ir_node *n) {
    ir_dtype dt = n->in[0]->type.dtype;
    ir_value *x = cast(b, n->in[0], work_dtype(dt));
    return cast(b, bin(b, IR_OP_MUL, x, un(b, IR_OP_SIGMOID, x)), dt);
}

static ir_value *dec_linear(dbuild *b, const ir_node *n) {
    ir_value *y = bin(b, IR_OP_MATMUL, n->in[0], transpose_last(b, n->in[1]));
    return n->nin > 2 ? bin(b, IR_OP_ADD, y, n->in[2]) : y;
}

static ir_value *dec_masked_fill(dbuild *b, const ir_node *n) {
    return where(b, n->in[1], lit(b, ir_attr_f(n, "value")), n->in[0]);
}

/* How one clamp bound applies to dtype dt: used, dropped (it never fires),
 * or beyond the dtype on the side where it always fires (then the clamp is
 * left alone: its result is the bound wrapped to dt). */
typedef enum { BOUND_USE, BOUND_DROP, BOUND_KEEP_OP } bound_use;

static bound_use clamp_bound(const ir_node *n, const char *name, bool is_lo) {
    if (!ir_attr_has(n, name)) return BOUND_DROP;
    double v = ir_attr_f(n, name);
    ir_dtype dt = n->in[0]->type.dtype;
    if (isnan(v) || v == (is_lo ? -INFINITY : INFINITY)) return BOUND_DROP;
    if (ir_dtype_is_float(dt) || ir_value_fits(v, dt)) return BOUND_USE;
    /* an integral bound outside dt's range */
    bool below = v < 0;
    return below == is_lo ? BOUND_DROP : BOUND_KEEP_OP;
}

static ir_value *dec_clamp(dbuild *b, const ir_node *n, bool *skip) {
    bound_use lo = clamp_bound(n, "min", true), hi = clamp_bound(n, "max", false);
    if (lo == BOUND_KEEP_OP || hi == BOUND_KEEP_OP) {
        *skip = true;
        return NULL;
    }
    ir_value *y = n->in[0];
    if (lo == BOUND_USE) y = binl(b, IR_OP_MAXIMUM, y, ir_attr_f(n, "min"));
    if (hi == BOUND_USE) y = binl(b, IR_OP_MINIMUM, y, ir_attr_f(n, "max"));
    return y;
}

/* mean and var: the axes attribute passed on as it is. */
static ir_value *dec_moment(dbuild *b, const ir_node *n) {
    ir_value *x = n->in[0];
    ir_dtype dt = x->type.dtype;
    int cnt = 0;
    const int64_t *axes = ir_attr_has(n, "axes") ? ir_attr_ints(n, "axes", &cnt) : NULL;
    bool keep = ir_attr_i(n, "keepdim") != 0;
    double count = (double)reduced_count(n, "axes");
    ir_value *xc = cast(b, x, work_dtype(dt));
    if (n->op == IR_OP_MEAN) return cast(b, binl(b, IR_OP_DIV, reduce(b, IR_OP_SUM, xc, axes, cnt, keep), count), dt);
    ir_value *c = bin(b, IR_OP_SUB, xc, binl(b, IR_OP_DIV, reduce(b, IR_OP_SUM, xc, axes, cnt, true), count));
    double denom = count - (double)ir_attr_i(n, "correction");
    if (denom < 0) denom = 0;
    return cast(b, binl(b, IR_OP_DIV, reduce(b, IR_OP_SUM, bin(b, IR_OP_MUL, c, c), axes, cnt, keep), denom), dt);
}

/* softmax(q @ k^T * scale + mask) @ v with rt_k_sdpa's safe softmax (see
 * the header comment).  q [.., L, E], k [.., S, E], v [.., S, Ev]. */
static ir_value *dec_sdpa(dbuild *b, const ir_node *n) {
    ir_value *q = n->in[0], *mask = n->nin > 3 ? n->in[3] : NULL;
    ir_dtype dt = q->type.dtype, wt = work_dtype(dt);
    int64_t L = q->type.dim[q->type.rank - 2], E = q->type.dim[q->type.rank - 1];
    int64_t S = n->in[1]->type.dim[n->in[1]->type.rank - 2];
    double scale = ir_attr_has(n, "scale") ? ir_attr_f(n, "scale") : 1.0 / sqrt((double)E);
    ir_value *qc = cast(b, q, wt);
    ir_value *s = bin(b, IR_OP_MATMUL, qc, transpose_last(b, cast(b, n->in[1], wt)));
    s = binl(b, IR_OP_MUL, s, scale);
    ir_value *keep = NULL;
    if (mask && mask->type.dtype == FUSEC_DTYPE_BOOL) keep = mask;
    else if (mask) s = bin(b, IR_OP_ADD, s, cast(b, mask, wt));
    if (ir_attr_i(n, "is_causal")) {
        ir_type it = {.dtype = FUSEC_DTYPE_I64, .rank = 2, .dim = {L, S}};
        ir_value *row = iota(b, 0, &it);
        ir_value *causal = bin(b, IR_OP_GE, row, iota(b, 1, &it)); /* key j <= query i */
        keep = keep ? bin(b, IR_OP_AND, causal, keep) : causal;
    }
    if (keep) s = where(b, keep, s, binl(b, IR_OP_ADD, s, -INFINITY));
    int64_t last = -1;
    ir_value *m = reduce(b, IR_OP_MAX, s, &last, 1, true);
    ir_value *no_key = binl(b, IR_OP_EQ, m, -INFINITY);
    m = where(b, no_key, lit(b, 0.0), m);
    ir_value *e = un(b, IR_OP_EXP, bin(b, IR_OP_SUB, s, m));
    ir_value *z = reduce(b, IR_OP_SUM, e, &last, 1, true);
    ir_value *zero_sum = binl(b, IR_OP_EQ, z, 0.0);
    z = where(b, zero_sum, lit(b, 1.0), z);
    ir_value *p = bin(b, IR_OP_DIV, e, z);
    return cast(b, bin(b, IR_OP_MATMUL, p, cast(b, n->in[2], wt)), dt);
}

/* ---- the pass ---------------------------------------------------------- */

static bool decomposable(ir_op op) {
    switch (op) {
    case IR_OP_SOFTMAX:
    case IR_OP_LOG_SOFTMAX:
    case IR_OP_LAYER_NORM:
    case IR_OP_RMS_NORM:
    case IR_OP_BATCH_NORM:
    case IR_OP_GELU:
    case IR_OP_SILU:
    case IR_OP_LINEAR:
    case IR_OP_MASKED_FILL:
    case IR_OP_CLAMP:
    case IR_OP_MEAN:
    case IR_OP_VAR:
    case IR_OP_SDPA: return true;
    default: return false;
    }
}

static ir_value *rewrite(dbuild *b, const ir_node *n, bool *skip) {
    if (ir_type_numel(&n->out->type) == 0) return full(b, 0, &n->out->type);
    switch (n->op) {
    case IR_OP_SOFTMAX:
    case IR_OP_LOG_SOFTMAX: return dec_softmax(b, n);
    case IR_OP_LAYER_NORM:
    case IR_OP_RMS_NORM: return dec_trailing_norm(b, n);
    case IR_OP_BATCH_NORM: return dec_batch_norm(b, n);
    case IR_OP_GELU: return dec_gelu(b, n);
    case IR_OP_SILU: return dec_silu(b, n);
    case IR_OP_LINEAR: return dec_linear(b, n);
    case IR_OP_MASKED_FILL: return dec_masked_fill(b, n);
    case IR_OP_CLAMP: return dec_clamp(b, n, skip);
    case IR_OP_MEAN:
    case IR_OP_VAR: return dec_moment(b, n);
    case IR_OP_SDPA:
        /* no keys: every row is fully masked, the output is zeros */
        if (n->in[1]->type.dim[n->in[1]->type.rank - 2] == 0) return full(b, 0, &n->out->type);
        return dec_sdpa(b, n);
    default: FC_ASSERT(!"not a decomposable op");
    }
    return NULL;
}

bool pass_decompose(ir_graph *g, pass_ctx *ctx) {
    int first_new = g->next_id;
    for (ir_node *n = g->first, *next; n; n = next) {
        next = n->next;
        if (!decomposable(n->op)) continue;
        dbuild b = {.g = g, .d = ctx->diag, .loc = n->loc};
        bool skip = false;
        int nerr = ctx->diag->nerr;
        ir_node *ip = g->ip;
        g->ip = n;
        ir_value *v = rewrite(&b, n, &skip);
        g->ip = ip;
        if (skip) continue;
        if (!v || !ir_type_eq(&v->type, &n->out->type)) {
            if (ctx->diag->nerr == nerr || v)
                ir_error(ctx->diag, n->loc, "decompose: internal error rewriting %s", ir_op_get(n->op)->name);
            return false;
        }
        /* a value built here takes over the old name, so dumps stay readable */
        if (v->kind == IR_VAL_NODE && v->id >= first_new && !v->name) v->name = n->out->name;
        ir_replace_uses(g, n->out, v);
        ir_node_remove(g, n);
        pass_stat(ctx, ir_op_get(n->op)->name, 1);
    }
    return true;
}
