/*
 * fold.c - constant folding.
 *
 * A value is *known* when it is a literal, a `full` (one value everywhere)
 * or a `constant` (explicit data).  A known value whose elements are all
 * equal is *uniform*.  One forward walk over the graph rewrites
 *
 *   (a) an elementwise op (cast, where, masked_fill and comparisons
 *       included) whose operands are all uniform into a `full` of its
 *       result type: a full costs nothing at any size, fusion computes it
 *       from the index alone;
 *   (b) a reduction of a uniform value into a `full`: sum -> v * count,
 *       mean/max/min -> v, prod -> v^count, var -> 0 (or NaN where
 *       count - correction <= 0, as the interpreter divides 0 by 0),
 *       argmax/argmin -> 0 (the first index wins ties); a movement op
 *       (reshape, expand, permute, transpose, slice, squeeze, unsqueeze,
 *       and pad or concat that add only the same value) of a uniform value
 *       into a `full`;
 *   (c) an elementwise op whose operands are all known, with a result of at
 *       most FOLD_MAX_ELEMS elements, into a `constant`; a movement op of a
 *       known value with such a result likewise; a `constant` whose
 *       elements are all equal into a `full`.
 *
 * Every element is computed by ir_ew_eval and rounded by ir_scalar_round,
 * the definitions the interpreter itself uses, so a folded graph gives the
 * interpreter's results bit for bit.  Reductions reproduce the
 * interpreter's accumulation (ints wrap in int64; floats accumulate in
 * double) in closed form, and are folded only where that closed form is
 * exact: a float sum of n copies of v is folded when every partial sum k*v
 * is exact in double (the significand bits of v plus those of n fit in 53),
 * so compensated and plain summation agree; a float product is replayed
 * multiplication by multiplication, stopping early at a fixed point, and
 * not folded if that takes too long.
 *
 * Never folded: integer division or remainder by zero (left for the
 * run-time error the interpreter reports), and a result an attribute cannot
 * hold exactly (an integer beyond 2^53: `full` and `constant` carry their
 * values as doubles).  New nodes take the location of the node they
 * replace; the replaced nodes are deleted at the end (dce).
 *
 * Requires: a verified graph.  Invalidates: nothing (results are replaced).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/pass.h"

enum { FOLD_MAX_ELEMS = 64, PROD_MAX_STEPS = 1 << 20 };

/* ---- elements ------------------------------------------------------------ */

/* x converted into dt's domain the way a store and a load convert it. */
static ir_scalar from_double(ir_dtype dt, double x) {
    unsigned char buf[8];
    ir_scalar r;
    ir_store_f(dt, buf, 0, x);
    if (ir_dtype_is_float(dt)) r.f = ir_load_f(dt, buf, 0);
    else r.i = ir_load_i(dt, buf, 0);
    return r;
}

/* The double an attribute must hold so that storing it as dt gives v back
 * exactly; false for integers a double cannot represent. */
static bool to_double(ir_dtype dt, ir_scalar v, double *out) {
    if (ir_dtype_is_float(dt)) {
        *out = v.f;
        return true;
    }
    double d = (double)v.i;
    if (d >= 9223372036854775808.0 || d < -9223372036854775808.0 || (int64_t)d != v.i) return false;
    *out = d;
    return true;
}

static bool same_bits(ir_dtype dt, ir_scalar a, ir_scalar b) {
    if (!ir_dtype_is_float(dt)) return a.i == b.i;
    return memcmp(&a.f, &b.f, sizeof a.f) == 0 || (isnan(a.f) && isnan(b.f));
}

/* A value whose elements are known at compile time. */
typedef struct known {
    ir_dtype dt;
    const ir_type *t;
    bool uniform;
    ir_scalar u;        /* uniform: the element */
    const double *data; /* a constant's data (numel elements), else NULL */
} known;

static ir_scalar known_at(const known *k, int64_t i) {
    return k->data ? from_double(k->dt, k->data[i]) : k->u;
}

static bool known_of(const ir_value *v, known *k) {
    memset(k, 0, sizeof *k);
    k->dt = v->type.dtype;
    k->t = &v->type;
    if (v->kind == IR_VAL_LITERAL) {
        k->uniform = true;
        if (v->lit_is_int && !ir_dtype_is_float(k->dt)) {
            k->u.i = v->lit_i;
            k->u = ir_scalar_round(k->dt, k->u);
        } else {
            k->u = from_double(k->dt, v->lit_f);
        }
        return true;
    }
    if (v->kind != IR_VAL_NODE) return false;
    const ir_node *n = v->def;
    if (n->op == IR_OP_FULL) {
        k->uniform = true;
        k->u = from_double(k->dt, ir_attr_f(n, "value"));
        return true;
    }
    if (n->op != IR_OP_CONSTANT) return false;
    int cnt;
    k->data = ir_attr_floats(n, "data", &cnt);
    if (cnt != ir_type_numel(&v->type)) return false;
    /* a constant of equal elements is uniform too */
    k->uniform = cnt > 0;
    for (int i = 0; i < cnt && k->uniform; i++)
        k->uniform = same_bits(k->dt, known_at(k, i), known_at(k, 0));
    if (k->uniform) k->u = known_at(k, 0);
    return true;
}

/* ---- building ------------------------------------------------------------ */

/* Build a creation node of type t before `at`; NULL if ir_build refuses
 * (which would be a bug here: nothing is reported). */
static ir_value *build_creation(ir_graph *g, ir_node *at, ir_op op, const ir_attr_init *a, const ir_type *t) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    ir_node *ip = g->ip;
    g->ip = at;
    ir_value *r = ir_build(g, op, NULL, 0, a, 1, t, at->loc, &d);
    g->ip = ip;
    ir_diag_free(&d);
    return r;
}

static ir_value *make_full(ir_graph *g, ir_node *at, ir_scalar v) {
    double x;
    if (!to_double(at->out->type.dtype, v, &x)) return NULL;
    ir_attr_init a = {.name = "value", .kind = IR_AK_FLOAT, .val = {.f = x}, .loc = at->loc};
    return build_creation(g, at, IR_OP_FULL, &a, &at->out->type);
}

static ir_value *make_constant(ir_graph *g, ir_node *at, const ir_scalar *v, int n) {
    double data[FOLD_MAX_ELEMS];
    for (int i = 0; i < n; i++)
        if (!to_double(at->out->type.dtype, v[i], &data[i])) return NULL;
    ir_attr_init a = {.name = "data", .kind = IR_AK_FLOATS, .val = {.n = n, .floats = data}, .loc = at->loc};
    return build_creation(g, at, IR_OP_CONSTANT, &a, &at->out->type);
}

/* ---- elementwise ops ----------------------------------------------------- */

/* Flat index into operand t of element `flat` of the broadcast result r. */
static int64_t bcast_index(const ir_type *r, const ir_type *t, int64_t flat) {
    int64_t idx = 0, stride = 1;
    for (int d = r->rank - 1, td = t->rank - 1; d >= 0 && td >= 0; d--, td--) {
        int64_t i = flat % r->dim[d];
        flat /= r->dim[d];
        if (t->dim[td] != 1) idx += i * stride;
        stride *= t->dim[td];
    }
    return idx;
}

/* One result element from operand elements; false where folding must not
 * happen (integer division by zero, or any error ir_ew_eval reports). */
static bool eval_one(const ir_ew *e, const ir_node *n, const ir_scalar *x, ir_scalar *r) {
    bool int_div = (n->op == IR_OP_DIV || n->op == IR_OP_REMAINDER) && !ir_dtype_is_float(e->in_dtype);
    if (int_div && x[1].i == 0) return false;
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    bool ok = ir_ew_eval(e, x, r, &d);
    ir_diag_free(&d);
    if (ok) *r = ir_scalar_round(n->out->type.dtype, *r);
    return ok;
}

static ir_value *fold_elementwise(ir_graph *g, ir_node *n, int64_t *nfull, int64_t *nconst) {
    known k[3];
    bool uniform = true;
    if (n->nin > 3) return NULL;
    for (int i = 0; i < n->nin; i++) {
        if (!known_of(n->in[i], &k[i])) return NULL;
        uniform = uniform && k[i].uniform;
    }
    ir_ew e;
    ir_ew_init(&e, n);
    ir_scalar x[3], r;
    if (uniform) {
        for (int i = 0; i < n->nin; i++) x[i] = k[i].u;
        if (!eval_one(&e, n, x, &r)) return NULL;
        ir_value *v = make_full(g, n, r);
        *nfull += v != NULL;
        return v;
    }
    const ir_type *t = &n->out->type;
    int64_t total = ir_type_numel(t);
    if (total == 0 || total > FOLD_MAX_ELEMS) return NULL;
    ir_scalar out[FOLD_MAX_ELEMS];
    for (int64_t j = 0; j < total; j++) {
        for (int i = 0; i < n->nin; i++) x[i] = known_at(&k[i], k[i].data ? bcast_index(t, k[i].t, j) : 0);
        if (!eval_one(&e, n, x, &out[j])) return NULL;
    }
    ir_value *v = make_constant(g, n, out, (int)total);
    *nconst += v != NULL;
    return v;
}

/* ---- reductions ---------------------------------------------------------- */

/* The interpreter's float sum of n copies of x, where it is exact. */
static bool sum_copies(double x, int64_t n, double *out) {
    if (n == 0 || x == 0) { /* +0 + -0 = +0: a sum of zeros is +0 */
        *out = 0;
        return true;
    }
    if (!isfinite(x)) {
        *out = x;
        return true;
    }
    int e, bits_n = 0, bits_x;
    double m = frexp(fabs(x), &e) * 9007199254740992.0; /* the 53-bit significand, an integer */
    uint64_t sig = (uint64_t)m;
    bits_x = 53;
    while (bits_x > 1 && !(sig & 1)) {
        sig >>= 1;
        bits_x--;
    }
    for (uint64_t u = (uint64_t)n; u; u >>= 1) bits_n++;
    if (bits_x + bits_n > 53) return false;
    *out = x * (double)n; /* exact (or an overflow to inf, which summing reaches too) */
    return true;
}

/* The interpreter's float product: acc = 1, then acc *= x, n times.
 * Rounding to nearest is symmetric in sign, so the magnitudes are replayed
 * with |x| and the sign is the parity of n; the replay stops at a fixed
 * point (0, inf, or a magnitude |x| no longer moves). */
static bool prod_copies(double x, int64_t n, double *out) {
    if (n > 0 && isnan(x)) {
        *out = x;
        return true;
    }
    double mag = 1;
    for (int64_t k = 0; k < n; k++) {
        double next = mag * fabs(x);
        if (next == mag) break;
        if (k >= PROD_MAX_STEPS) return false;
        mag = next;
    }
    *out = signbit(x) && n % 2 ? -mag : mag;
    return true;
}

static int64_t wrap_pow(int64_t base, int64_t e) {
    uint64_t r = 1, b = (uint64_t)base;
    for (uint64_t u = (uint64_t)e; u; u >>= 1) {
        if (u & 1) r *= b;
        b *= b;
    }
    return (int64_t)r;
}

static ir_value *fold_reduction(ir_graph *g, ir_node *n) {
    known k;
    if (!known_of(n->in[0], &k) || !k.uniform) return NULL;
    int64_t nin = ir_type_numel(&n->in[0]->type), nout = ir_type_numel(&n->out->type);
    int64_t count = nout > 0 ? nin / nout : 0;
    ir_dtype out_dt = n->out->type.dtype;
    ir_scalar v = k.u, r = {0};
    bool ok = true;
    if (n->op == IR_OP_ARGMAX || n->op == IR_OP_ARGMIN) {
        if (count == 0 && nout > 0) return NULL; /* a run-time error */
        r.i = 0;
    } else if (!ir_dtype_is_float(k.dt)) {
        switch (n->op) {
        case IR_OP_SUM: r.i = (int64_t)((uint64_t)v.i * (uint64_t)count); break;
        case IR_OP_PROD: r.i = wrap_pow(v.i, count); break;
        case IR_OP_MAX:
        case IR_OP_MIN: r = v; break;
        default: return NULL;
        }
    } else {
        double s = 0, sq = 0;
        switch (n->op) {
        case IR_OP_SUM: ok = sum_copies(v.f, count, &r.f); break;
        case IR_OP_MEAN:
            ok = sum_copies(v.f, count, &s);
            r.f = s / (double)count;
            break;
        case IR_OP_PROD: ok = prod_copies(v.f, count, &r.f); break;
        case IR_OP_MAX:
        case IR_OP_MIN: r = v; break;
        case IR_OP_VAR: {
            /* two passes as the interpreter does: the mean, then the
             * squared deviations summed and divided by max(0, n - corr) */
            ok = sum_copies(v.f, count, &s);
            double dev = v.f - s / (double)count;
            ok = ok && sum_copies(dev * dev, count, &sq);
            double den = (double)count - (double)ir_attr_i(n, "correction");
            r.f = sq / (den < 0 ? 0 : den);
            break;
        }
        default: return NULL;
        }
    }
    if (!ok) return NULL;
    return make_full(g, n, ir_scalar_round(out_dt, r));
}

/* ---- movement ops -------------------------------------------------------- */

static bool is_movement(ir_op op) {
    switch (op) {
    case IR_OP_RESHAPE:
    case IR_OP_EXPAND:
    case IR_OP_PERMUTE:
    case IR_OP_TRANSPOSE:
    case IR_OP_SLICE:
    case IR_OP_SQUEEZE:
    case IR_OP_UNSQUEEZE: return true;
    default: return false;
    }
}

/* Flat index into n's operand of element `flat` of n's result, for the
 * movement ops above. */
static int64_t source_index(const ir_node *n, int64_t flat) {
    const ir_type *o = &n->out->type, *x = &n->in[0]->type;
    if (n->op == IR_OP_RESHAPE || n->op == IR_OP_SQUEEZE || n->op == IR_OP_UNSQUEEZE) return flat;
    if (n->op == IR_OP_EXPAND) return bcast_index(o, x, flat);
    int64_t oi[IR_MAX_RANK], xi[IR_MAX_RANK];
    for (int d = o->rank - 1; d >= 0; d--) {
        oi[d] = flat % o->dim[d];
        flat /= o->dim[d];
    }
    memcpy(xi, oi, sizeof xi);
    int a, b, cnt;
    if (n->op == IR_OP_PERMUTE) {
        const int64_t *p = ir_attr_ints(n, "dims", &cnt);
        for (int i = 0; i < cnt; i++)
            if (ir_norm_axis(p[i], o->rank, &a)) xi[a] = oi[i];
    } else if (n->op == IR_OP_TRANSPOSE) {
        ir_norm_axis(ir_attr_i(n, "dim0"), o->rank, &a);
        ir_norm_axis(ir_attr_i(n, "dim1"), o->rank, &b);
        xi[a] = oi[b];
        xi[b] = oi[a];
    } else { /* slice: start clamped as Python (and infer_slice) clamp it */
        ir_norm_axis(ir_attr_i(n, "axis"), o->rank, &a);
        int64_t size = x->dim[a], s = ir_attr_i(n, "start");
        if (s < 0) s = s < -size ? 0 : s + size;
        if (s > size) s = size;
        xi[a] = s + ir_attr_i(n, "step") * oi[a];
    }
    int64_t idx = 0;
    for (int d = 0; d < x->rank; d++) idx = idx * x->dim[d] + xi[d];
    return idx;
}

/* pad and concat are uniform when everything they add equals the rest. */
static bool uniform_fill(const ir_node *n, known *k) {
    if (n->op == IR_OP_PAD) {
        if (!known_of(n->in[0], k) || !k->uniform) return false;
        return same_bits(k->dt, k->u, from_double(k->dt, ir_attr_f(n, "value")));
    }
    if (n->op != IR_OP_CONCAT) return false;
    for (int i = 0; i < n->nin; i++) {
        known ki;
        if (!known_of(n->in[i], &ki) || !ki.uniform) return false;
        if (i == 0) *k = ki;
        else if (!same_bits(k->dt, k->u, ki.u)) return false;
    }
    return true;
}

static ir_value *fold_movement(ir_graph *g, ir_node *n, int64_t *nfull, int64_t *nconst) {
    known k;
    ir_value *v = NULL;
    if (uniform_fill(n, &k)) {
        v = make_full(g, n, k.u);
        *nfull += v != NULL;
        return v;
    }
    if (!is_movement(n->op) || !known_of(n->in[0], &k)) return NULL;
    if (k.uniform) {
        v = make_full(g, n, k.u);
        *nfull += v != NULL;
        return v;
    }
    int64_t total = ir_type_numel(&n->out->type);
    if (total == 0 || total > FOLD_MAX_ELEMS) return NULL;
    ir_scalar out[FOLD_MAX_ELEMS];
    for (int64_t j = 0; j < total; j++) out[j] = known_at(&k, source_index(n, j));
    v = make_constant(g, n, out, (int)total);
    *nconst += v != NULL;
    return v;
}

/* ---- the pass -------------------------------------------------------------- */

bool pass_fold(ir_graph *g, pass_ctx *ctx) {
    int cap = g->next_id + 1;
    ir_value **repl = calloc((size_t)cap, sizeof *repl); /* old value id -> folded value */
    if (!repl) {
        ir_error(ctx->diag, (ir_loc){0}, "fold: out of memory");
        return false;
    }
    int64_t nfull = 0, nconst = 0, nred = 0;
    for (ir_node *n = g->first; n; n = n->next) {
        /* operands are folded before their users: forward them first */
        for (int i = 0; i < n->nin; i++)
            if (n->in[i]->id < cap && repl[n->in[i]->id]) n->in[i] = repl[n->in[i]->id];
        if (n->out->id >= cap) continue; /* made by this pass */
        ir_value *v = NULL;
        switch (ir_op_get(n->op)->category) {
        case IR_CAT_ELEMENTWISE: v = fold_elementwise(g, n, &nfull, &nconst); break;
        case IR_CAT_REDUCTION:
            v = fold_reduction(g, n);
            nred += v != NULL;
            break;
        case IR_CAT_BROADCAST:
        case IR_CAT_INJECTIVE: v = fold_movement(g, n, &nfull, &nconst); break;
        case IR_CAT_OPAQUE: { /* a constant of equal elements is a full */
            known k;
            if (n->op == IR_OP_CONSTANT && known_of(n->out, &k) && k.uniform) v = make_full(g, n, k.u);
            nfull += v != NULL;
            break;
        }
        default: break;
        }
        if (v) repl[n->out->id] = v;
    }
    for (int i = 0; i < g->nresults; i++)
        if (g->results[i]->id < cap && repl[g->results[i]->id]) g->results[i] = repl[g->results[i]->id];
    free(repl);
    pass_stat(ctx, "to-full", nfull);
    pass_stat(ctx, "to-constant", nconst);
    pass_stat(ctx, "reductions", nred);
    if (nfull + nconst + nred == 0) return true;
    return pass_dce(g, ctx);
}
