/*
 * gen.c - a random graph generator for differential tests (NNSmith-style,
 * but by construction rather than constraint solving).
 *
 * A graph grows one node at a time.  The generator keeps, for every value
 * it has made, the exact type the verifier will infer (the rules of
 * ir/infer.c, restated here on purpose: a disagreement shows up as a parse
 * error in the diff.gen_valid test and means one side is wrong), how often
 * it has been used, and three numerical properties described below.  Each
 * step picks a category of op (weighted), picks operands among the existing
 * values (biased to recent and unused ones, so graphs are deep rather than
 * wide), bends them to what the op needs (a cast for a dtype, a literal, a
 * guard, a helper node) and writes the node with its result type.
 * Parameters are made lazily (up to max_inputs); the signature is written
 * last.  The same seed gives the same text everywhere: no two random draws
 * share one expression (C leaves their order unspecified).
 *
 * Shapes.  Each graph has a base shape (rank 0-4, small dims, <= max_numel/4
 * elements); parameters and created tensors take suffixes of it with some
 * dims set to 1, so broadcasting between different ranks and size-1 dims is
 * the common case.  One graph in eight puts a 0 into the base shape; slices
 * and reshapes make more size-0 values.  No value exceeds max_numel elements.
 *
 * Validity (each rule an error in ir/infer.c): operands of a binary op share
 * a dtype and broadcast; literals fit the dtype they take (integers in range,
 * bool 0/1); max/min/argmax/argmin never reduce a size-0 axis; iota,
 * transpose, slice and concat need rank >= 1, triu/tril rank >= 2;
 * layer_norm/rms_norm axes are the trailing dims and their weight/bias have
 * exactly that shape; reshape keeps the element count (a -1 only where it
 * can be inferred); pads never crop below zero; integer clamp bounds are
 * integers.  Run-time safety: integer div/remainder never divide by a value
 * that can be zero (literal divisors are nonzero; tensor divisors go through
 * where(eq(b, 0), K, b)); indices of index_select/embedding/gather come from
 * clamp(x, 0, D-1) or remainder(iota * k, D), so they are in range.
 *
 * Stability across evaluation orders.  The interpreter computes each node
 * in double and rounds once, and accumulates reductions in double; a fused
 * kernel, a decomposition (softmax into max/exp/sum/div, f32 statistics for
 * f16), FMA contraction or an f32 accumulator computes the same value with
 * other roundings.  The comparison has tolerances for that, so the
 * generator only has to keep rounding differences from being amplified
 * past them.  Three properties per value serve that:
 *
 *   fragile  a float computed by arithmetic (not: parameters, creation ops,
 *            movement, select, casts, and the exact maps neg/abs/relu/
 *            maximum/minimum/clamp/sign/floor/ceil/round of exact values;
 *            max/min reductions keep their input's state).  Ops that are
 *            discontinuous in their input take no fragile float: floor,
 *            ceil, round, sign, isnan, isinf, comparisons, float remainder,
 *            argmax/argmin, and casts from float to integer or bool (one ulp
 *            there flips a result).  Integers and bool are always exact.
 *   mag      a bound on log10 |v| over v's finite elements.  The reference
 *            accumulates in double where an f32 kernel may overflow, so every
 *            float operand of a reduction, composite or contraction is
 *            clamped to [-1024, 1024] first when mag says it may exceed 1e15
 *            (its square or a sum of them would leave f32); prod operands to
 *            [-1, 1] when the product could overflow.
 *   vary     per axis: along it the value is in general position, never a
 *            row of copies of one float.  var and layer_norm need a varying
 *            reduced axis: over a row of copies of one float, x - mean(x) is
 *            exactly 0 in double and an ulp in f32, and layer_norm multiplies
 *            that by 1/sqrt(eps).  Float parameters vary everywhere, iota
 *            along its axis, constant() everywhere; integer and bool
 *            parameters, full, comparisons and the saturating maps (relu,
 *            clamp, sign, floor/ceil/round, maximum/minimum, triu/tril)
 *            nowhere, since a whole row may come out as one value that a
 *            later op (exp, + 0.7) makes inexact.  Arithmetic varies where
 *            any operand varies unbroadcast; a select (where, masked_fill)
 *            where its value operands do; broadcasting, expand, index ops
 *            and reshapes of partly varying values do not.
 *
 * and the guards that use them:
 *
 *   - ops singular at 0 (log, log2, sqrt, rsqrt, reciprocal, a float
 *     divisor, pow with a negative or fractional exponent) get a fragile
 *     operand through add(abs(x), 1); log1p through abs(x);
 *   - ops that turn an absolute input error into a relative output error
 *     (exp, exp2, expm1, sin, cos, tan, softmax, log_softmax) get a fragile
 *     operand clamped to +-L, L chosen per dtype so that eps * L stays well
 *     inside the tolerance: exp-like f64 16, f32 8, f16 4, bf16 1.5 (tan at
 *     most 1.25); softmax f64 1024, f32 64, f16 4, bf16 1.5.  Clamp bounds
 *     are dyadic, so saturated rows keep exact statistics.
 *   - finfo.min-style fills (-3e38, -65504) appear only in a mask that goes
 *     straight into a softmax; those intermediates are hidden from every
 *     other consumer (a sum of them overflows in f32, not in double).
 *
 * Exact operands go in unguarded, so the NaN, inf and -0.0 sprinkled into
 * inputs reach every op.  Known residue, rare and recognisable in a report:
 * the sign of a zero from max/min over a row holding -0.0 and +0.0 (seen by
 * reciprocal), a where/masked_fill mask that happens to select one repeated
 * value for a whole row before var/layer_norm, and f16 chains that overflow
 * 65504 in the reference but not in a kernel that keeps f32 intermediates.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "tests/diff/gen.h"

#define GEN_MAXV 192 /* values per graph (nodes + params), hard cap */
#define GEN_MAXP 4   /* parameters */
#define MAG_LIMIT 15.0  /* operands of reductions, composites, contractions */
#define OVF_CLAMP 1024.0

/* Numerical properties of a value (see the header comment). */
typedef struct props {
    bool frag;
    double mag;
    unsigned vary; /* bit i: varies along axis i */
} props;

typedef struct gval {
    char name[16]; /* "%p0", "%v12" */
    ir_type t;
    props p;
    bool param;
    bool hidden; /* never picked as an operand */
    int uses;
} gval;

typedef struct gen {
    uint64_t s; /* splitmix64 state */
    const gen_opts *o;
    gen_stats *st;
    gval v[GEN_MAXV];
    int nv, nparams, nnodes;
    int param[GEN_MAXP];
    ir_str body;
    ir_type base;
    bool zero_ok; /* this graph may hold size-0 dims */
    ir_dtype fdt; /* the graph's favourite float dtype */
} gen;

static const char *const feature_names[GEN_F_COUNT] = {
    [GEN_F_BROADCAST] = "broadcast",         [GEN_F_RANK_MIX] = "broadcast-rank-mix",
    [GEN_F_SIZE0] = "size-0 value",          [GEN_F_SIZE1] = "size-1 dim",
    [GEN_F_SCALAR] = "0-d value",            [GEN_F_NEG_AXIS] = "negative axis",
    [GEN_F_KEEPDIM] = "keepdim",             [GEN_F_LITERAL] = "literal operand",
    [GEN_F_CAUSAL_MASK] = "causal mask",     [GEN_F_TRIU_MASK] = "triu/tril mask",
    [GEN_F_PAD_MASK] = "padding mask",       [GEN_F_ADDITIVE_MASK] = "additive (1-m)*-1e4 mask",
    [GEN_F_MASK_SOFTMAX] = "mask -> softmax", [GEN_F_GUARD] = "guard",
    [GEN_F_NONZERO_DIV] = "nonzero int divisor", [GEN_F_SLICE_STEP] = "slice step > 1",
    [GEN_F_NEG_PAD] = "negative pad",        [GEN_F_MULTI_RESULT] = "multiple results",
};

const char *gen_feature_name(gen_feature f) {
    return (unsigned)f < GEN_F_COUNT ? feature_names[f] : "?";
}

void gen_opts_default(gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->min_nodes = 3;
    o->max_nodes = 25;
    o->max_inputs = 4;
    o->max_results = 3;
    o->max_numel = 2000;
}

/* ---- randomness ------------------------------------------------------- */

static uint64_t next64(gen *g) {
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rnd(gen *g, int n) { return n <= 1 ? 0 : (int)(next64(g) % (uint64_t)n); }
static bool chance(gen *g, int pct) { return rnd(g, 100) < pct; }
/* Uniform in [lo, hi]. */
static int64_t range(gen *g, int64_t lo, int64_t hi) { return lo + rnd(g, (int)(hi - lo + 1)); }

/* Index into w[0..n), chosen with probability proportional to weight. */
static int weighted(gen *g, const int *w, int n) {
    int total = 0;
    for (int i = 0; i < n; i++) total += w[i];
    int r = rnd(g, total);
    for (int i = 0; i < n; i++) {
        if (r < w[i]) return i;
        r -= w[i];
    }
    return n - 1;
}

static void feat(gen *g, gen_feature f) {
    if (g->st) g->st->feature[f]++;
}

/* ---- types and numerical limits --------------------------------------- */

static bool is_float(ir_dtype dt) { return ir_dtype_is_float(dt); }
static bool is_int(ir_dtype dt) { return ir_dtype_is_int(dt); }
static bool is_bool(ir_dtype dt) { return dt == FUSEC_DTYPE_BOOL; }

static int64_t numel(const ir_type *t) { return ir_type_numel(t); }
static bool fits(const gen *g, const ir_type *t) { return numel(t) <= g->o->max_numel; }

/* log10 of the largest finite value of dt. */
static double max_mag(ir_dtype dt) {
    switch (dt) {
    case FUSEC_DTYPE_F64: return 308.3;
    case FUSEC_DTYPE_F32:
    case FUSEC_DTYPE_BF16: return 38.6;
    case FUSEC_DTYPE_F16: return 4.9;
    case FUSEC_DTYPE_I64: return 19.0;
    case FUSEC_DTYPE_I32: return 9.4;
    case FUSEC_DTYPE_I16: return 4.6;
    case FUSEC_DTYPE_I8: return 2.2;
    case FUSEC_DTYPE_U8: return 2.5;
    default: return 0.0;
    }
}

static double lg(double x) { return x > 1 ? log10(x) : 0.0; }

/* Clamp limits for fragile operands of ops that turn an absolute error
 * into a relative one. */
static double exp_limit(ir_dtype dt) {
    switch (dt) {
    case FUSEC_DTYPE_F64: return 16;
    case FUSEC_DTYPE_F32: return 8;
    case FUSEC_DTYPE_F16: return 4;
    default: return 1.5;
    }
}

static double softmax_limit(ir_dtype dt) {
    switch (dt) {
    case FUSEC_DTYPE_F64: return 1024;
    case FUSEC_DTYPE_F32: return 64;
    case FUSEC_DTYPE_F16: return 4;
    default: return 1.5;
    }
}

/* Rotating buffers so one printf can show several types. */
static const char *tstr(const ir_type *t) {
    static _Thread_local char buf[4][128];
    static _Thread_local int k;
    ir_str s = {0};
    ir_type_print(&s, t);
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s", s.buf ? s.buf : "?");
    ir_str_free(&s);
    return b;
}

static ir_type with_dtype(const ir_type *t, ir_dtype dt) {
    ir_type r = *t;
    r.dtype = dt;
    return r;
}

static ir_dtype rand_float_dt(gen *g) {
    static const ir_dtype f[] = {FUSEC_DTYPE_F32, FUSEC_DTYPE_F16, FUSEC_DTYPE_BF16, FUSEC_DTYPE_F64};
    return chance(g, 60) ? g->fdt : f[rnd(g, 4)];
}

static ir_dtype rand_int_dt(gen *g) {
    static const ir_dtype d[] = {FUSEC_DTYPE_I64, FUSEC_DTYPE_I32, FUSEC_DTYPE_I8, FUSEC_DTYPE_U8,
                                 FUSEC_DTYPE_I16};
    static const int w[] = {30, 30, 15, 15, 10};
    return d[weighted(g, w, 5)];
}

static ir_dtype rand_dt(gen *g) {
    int r = rnd(g, 100);
    return r < 60 ? rand_float_dt(g) : r < 90 ? rand_int_dt(g) : FUSEC_DTYPE_BOOL;
}

static int64_t rand_dim(gen *g) {
    static const int64_t d[] = {1, 2, 3, 4, 5, 6, 7, 8, 2, 3, 4, 1, 12, 16};
    return d[rnd(g, (int)(sizeof d / sizeof d[0]))];
}

/* A shape related to the base: a suffix of it (usually all of it) with
 * some dims set to 1; now and then an unrelated small shape. */
static void derived_shape(gen *g, ir_type *t) {
    const ir_type *b = &g->base;
    if (chance(g, 8)) {
        t->rank = rnd(g, 4);
        for (int i = 0; i < t->rank; i++) t->dim[i] = rand_dim(g);
        return;
    }
    int k = chance(g, 70) ? b->rank : rnd(g, b->rank + 1);
    t->rank = k;
    for (int i = 0; i < k; i++) {
        t->dim[i] = b->dim[b->rank - k + i];
        if (chance(g, 20)) t->dim[i] = 1;
    }
}

/* ---- properties --------------------------------------------------------- */

#define ALL_VARY 0xffu

static props P(const gen *g, int i) { return g->v[i].p; }
static props pr(bool frag, double mag, unsigned vary) { return (props){frag, mag, vary}; }

/* The vary bits of operand `o` seen in a result of type t (broadcasting):
 * an axis where the operand is broadcast repeats it. */
static unsigned vary_in(const gen *g, int o, const ir_type *t) {
    const ir_type *ot = &g->v[o].t;
    unsigned r = 0;
    int lead = t->rank - ot->rank;
    for (int j = 0; j < t->rank; j++) {
        int k = j - lead;
        if (k >= 0 && ot->dim[k] == t->dim[j] && (g->v[o].p.vary >> k & 1)) r |= 1u << j;
    }
    return r;
}

/* Axes of t where nothing repeats: size <= 1, or some operand varies. */
static unsigned vary_of(const gen *g, const ir_type *t, const int *ops, int n) {
    unsigned r = 0;
    for (int j = 0; j < t->rank; j++)
        if (t->dim[j] <= 1) r |= 1u << j;
    for (int i = 0; i < n; i++)
        if (ops[i] >= 0) r |= vary_in(g, ops[i], t);
    return r;
}

/* Can statistics over `axes` (mask) of value i be computed without
 * cancelling a row of copies? */
static bool stats_ok(const gen *g, int i, const bool *axes) {
    const gval *v = &g->v[i];
    bool any_big = false;
    for (int a = 0; a < v->t.rank; a++) {
        if (!axes[a] || v->t.dim[a] <= 1) continue;
        any_big = true;
        if (v->p.vary >> a & 1) return true;
    }
    return !any_big;
}

/* ---- values and nodes ------------------------------------------------- */

static void note_value(gen *g, const ir_type *t) {
    if (!g->st) return;
    g->st->dtype_values[t->dtype & 15]++;
    if (t->rank == 0) feat(g, GEN_F_SCALAR);
    if (numel(t) == 0) feat(g, GEN_F_SIZE0);
    for (int i = 0; i < t->rank; i++)
        if (t->dim[i] == 1) {
            feat(g, GEN_F_SIZE1);
            break;
        }
}

static bool room(const gen *g) { return g->nv < GEN_MAXV - 1; }

static int add_value(gen *g, const ir_type *t, props p, bool param) {
    FC_ASSERT(g->nv < GEN_MAXV);
    int i = g->nv++;
    gval *v = &g->v[i];
    memset(v, 0, sizeof *v);
    v->t = *t;
    if (!is_float(t->dtype)) p.frag = false;
    if (p.mag < 0) p.mag = 0;
    if (p.mag > max_mag(t->dtype)) p.mag = max_mag(t->dtype);
    if (is_bool(t->dtype)) p.mag = 0;
    p.vary &= t->rank ? (1u << t->rank) - 1 : 0;
    v->p = p;
    v->param = param;
    if (param) snprintf(v->name, sizeof v->name, "%%p%d", g->nparams);
    else snprintf(v->name, sizeof v->name, "%%v%d", i);
    note_value(g, t);
    return i;
}

/* A new parameter of type t, or -1 when the graph has all it may have. */
static int new_param(gen *g, const ir_type *t) {
    if (g->nparams >= g->o->max_inputs || g->nparams >= GEN_MAXP || !room(g)) return -1;
    /* inputs: normal floats at scales up to 30 (tests/diff/difftest.c);
     * integers within +-5 */
    double mag = is_float(t->dtype) ? 2.3 : is_bool(t->dtype) ? 0 : 0.8;
    /* small integers and bools repeat along a row too often to count */
    int i = add_value(g, t, pr(false, mag, is_float(t->dtype) ? ALL_VARY : 0), true);
    g->param[g->nparams++] = i;
    return i;
}

/* The name of value i as an operand (counts a use). */
static const char *use(gen *g, int i) {
    g->v[i].uses++;
    return g->v[i].name;
}

/* Write `%vN = <text> : <type>` and return the new value. */
static int node(gen *g, const ir_type *t, props p, const char *fmt, ...) IR_PRINTF(4, 5);
static int node(gen *g, const ir_type *t, props p, const char *fmt, ...) {
    if (!room(g)) return -1;
    int i = add_value(g, t, p, false);
    ir_str_printf(&g->body, "  %s = ", g->v[i].name);
    va_list ap;
    va_start(ap, fmt);
    ir_str_vprintf(&g->body, fmt, ap);
    va_end(ap);
    ir_str_printf(&g->body, " : %s\n", tstr(t));
    g->nnodes++;
    return i;
}

/* ---- picking operands ------------------------------------------------- */

typedef bool (*pred_fn)(const gen *g, const gval *v, const void *arg);

/* A random visible value satisfying p, biased to recent and unused ones. */
static int pick(gen *g, pred_fn p, const void *arg) {
    int cand[GEN_MAXV], w[GEN_MAXV], n = 0;
    for (int i = 0; i < g->nv; i++) {
        if (g->v[i].hidden || !p(g, &g->v[i], arg)) continue;
        cand[n] = i;
        w[n++] = 1 + (g->v[i].uses == 0 ? 2 : 0) + (i >= g->nv - 4 ? 4 : 0);
    }
    return n ? cand[weighted(g, w, n)] : -1;
}

static bool p_any(const gen *g, const gval *v, const void *a) { (void)g, (void)v, (void)a; return true; }
static bool p_float(const gen *g, const gval *v, const void *a) { (void)g, (void)a; return is_float(v->t.dtype); }
static bool p_numeric(const gen *g, const gval *v, const void *a) { (void)g, (void)a; return !is_bool(v->t.dtype); }
static bool p_exact(const gen *g, const gval *v, const void *a) { (void)g, (void)a; return !v->p.frag; }
static bool p_bool(const gen *g, const gval *v, const void *a) { (void)g, (void)a; return is_bool(v->t.dtype); }
static bool p_logical(const gen *g, const gval *v, const void *a) { (void)g, (void)a; return !is_float(v->t.dtype); }
static bool p_exact_numeric(const gen *g, const gval *v, const void *a) {
    return p_exact(g, v, a) && p_numeric(g, v, a);
}
static bool p_rank(const gen *g, const gval *v, const void *a) {
    (void)g;
    return v->t.rank >= *(const int *)a;
}
static bool p_float_rank(const gen *g, const gval *v, const void *a) {
    return p_float(g, v, a) && p_rank(g, v, a);
}

/* Values that broadcast with a given type into at most max_numel elements. */
typedef struct bc_arg {
    const ir_type *t;
    pred_fn also; /* extra condition, or NULL */
} bc_arg;

static bool p_bcast(const gen *g, const gval *v, const void *a) {
    const bc_arg *b = a;
    ir_type r;
    if (!ir_broadcast_shape(b->t, &v->t, &r) || numel(&r) > g->o->max_numel) return false;
    return !b->also || b->also(g, v, NULL);
}

static int pick_bcast(gen *g, const ir_type *t, pred_fn also) {
    bc_arg a = {t, also};
    return pick(g, p_bcast, &a);
}

static void note_bcast(gen *g, const ir_type *a, const ir_type *b) {
    ir_type x = with_dtype(a, FUSEC_DTYPE_F32), y = with_dtype(b, FUSEC_DTYPE_F32);
    if (!ir_type_eq(&x, &y)) feat(g, GEN_F_BROADCAST);
    if (a->rank != b->rank) feat(g, GEN_F_RANK_MIX);
}

/* ---- literals --------------------------------------------------------- */

/* A literal that fits dt (in *mag, log10 of its magnitude).  Floats: plain
 * numbers and, rarely, the specials; integers small enough for every width
 * (u8: non-negative). */
static const char *lit_m(gen *g, ir_dtype dt, double *mag) {
    static _Thread_local char buf[4][32];
    static _Thread_local int k;
    char *b = buf[k++ & 3];
    *mag = 0;
    if (is_float(dt)) {
        static const char *const plain[] = {"0.5", "2.0", "-1.5", "0.125", "3.0", "-2.0", "1.0",
                                            "0.0", "0.001", "-0.25", "10.0", "0.7"};
        static const char *const special[] = {"inf", "-inf", "nan", "-0.0"};
        snprintf(b, 32, "%s", chance(g, 5) ? special[rnd(g, 4)] : plain[rnd(g, 12)]);
        if (!strcmp(b, "10.0")) *mag = 1;
    } else if (is_bool(dt)) {
        snprintf(b, 32, "%s", chance(g, 50) ? "true" : "false");
    } else {
        int64_t v = dt == FUSEC_DTYPE_U8 ? range(g, 0, 6) : range(g, -4, 6);
        snprintf(b, 32, "%lld", (long long)v);
        *mag = 0.8;
    }
    return b;
}

static const char *lit(gen *g, ir_dtype dt) {
    double m;
    return lit_m(g, dt, &m);
}

/* A nonzero integer literal for dt (a divisor). */
static const char *lit_nonzero(gen *g, ir_dtype dt) {
    static _Thread_local char buf[2][16];
    static _Thread_local int k;
    char *b = buf[k++ & 1];
    int64_t v = dt == FUSEC_DTYPE_U8 ? range(g, 1, 7) : (chance(g, 30) ? -range(g, 1, 4) : range(g, 1, 7));
    snprintf(b, 16, "%lld", (long long)v);
    return b;
}

/* A fill value (attribute) that fits dt; *mag as for lit_m. */
static const char *fill_value(gen *g, ir_dtype dt, double *mag) {
    *mag = 0.3;
    if (is_float(dt)) {
        static const char *const f[] = {"-inf", "0.0", "-10000.0", "1.5", "nan", "inf", "-1.0"};
        static const int w[] = {30, 20, 15, 15, 5, 5, 10};
        int i = weighted(g, w, 7);
        if (i == 2) *mag = 4;
        return f[i];
    }
    if (is_bool(dt)) return chance(g, 50) ? "1" : "0";
    static const char *const i[] = {"0", "1", "3", "-2"};
    return i[rnd(g, dt == FUSEC_DTYPE_U8 ? 3 : 4)];
}

static const char *float_lit_print(double v) {
    static _Thread_local char buf[2][32];
    static _Thread_local int k;
    char *b = buf[k++ & 1];
    snprintf(b, 32, "%.17g", v);
    if (!strpbrk(b, ".eEn")) strcat(b, ".0");
    return b;
}

/* ---- helpers that make nodes ------------------------------------------ */

/* v as dtype dt: itself, or a cast.  -1 where a cast would turn a fragile
 * float into an integer or bool. */
static int coerce(gen *g, int vi, ir_dtype dt) {
    if (vi < 0) return -1;
    const gval *v = &g->v[vi];
    if (v->t.dtype == dt) return vi;
    if (v->p.frag && !is_float(dt)) return -1;
    ir_type t = with_dtype(&v->t, dt);
    props p = v->p;
    if (!is_float(dt)) p.mag = is_float(v->t.dtype) ? max_mag(dt) : p.mag; /* float->int saturates/wraps */
    return node(g, &t, p, "cast(%s) {to = %s}", use(g, vi), ir_dtype_name(dt));
}

/* add(abs(x), 1): >= 1, no cancellation; for ops singular at 0. */
static int guard_pos(gen *g, int x) {
    feat(g, GEN_F_GUARD);
    ir_type t = g->v[x].t;
    int a = node(g, &t, P(g, x), "abs(%s)", use(g, x));
    if (a < 0) return -1;
    props p = P(g, a);
    p.frag = true;
    p.mag = p.mag + 0.31;
    return node(g, &t, p, "add(%s, %s)", use(g, a), chance(g, 70) ? "1.0" : "2.0");
}

static int guard_abs(gen *g, int x) {
    feat(g, GEN_F_GUARD);
    return node(g, &g->v[x].t, P(g, x), "abs(%s)", use(g, x));
}

/* clamp(x, -lim, lim); lim dyadic, so saturated rows stay exact. */
static int guard_clamp(gen *g, int x, double lim) {
    if (x < 0) return -1;
    feat(g, GEN_F_GUARD);
    props p = P(g, x);
    p.mag = lg(lim);
    p.vary = 0; /* a saturated row is one repeated value */
    return node(g, &g->v[x].t, p, "clamp(%s) {min = %s, max = %s}", use(g, x), float_lit_print(-lim),
                float_lit_print(lim));
}

/* x ready to be an operand of a reduction, composite or contraction. */
static int tame(gen *g, int x) {
    if (x < 0 || !is_float(g->v[x].t.dtype)) return x;
    double lim = g->v[x].t.dtype == FUSEC_DTYPE_F64 ? 100.0 : MAG_LIMIT;
    return g->v[x].p.mag > lim ? guard_clamp(g, x, OVF_CLAMP) : x;
}

/* Some float value (a cast of another value if there is none). */
static int any_float(gen *g) {
    int x = pick(g, p_float, NULL);
    if (x >= 0 && chance(g, 85)) return x;
    int y = pick(g, p_exact, NULL);
    if (y < 0) return x;
    int c = coerce(g, y, rand_float_dt(g));
    return c >= 0 ? c : x;
}

/* The integer divisor b made nonzero: where(eq(b, 0), K, b). */
static int nonzero(gen *g, int b) {
    feat(g, GEN_F_NONZERO_DIV);
    ir_type tb = g->v[b].t, tc = with_dtype(&tb, FUSEC_DTYPE_BOOL);
    int c = node(g, &tc, pr(false, 0, P(g, b).vary), "eq(%s, 0)", use(g, b));
    if (c < 0) return -1;
    const char *k = lit_nonzero(g, tb.dtype);
    props p = P(g, b);
    p.mag = p.mag > 0.9 ? p.mag : 0.9;
    return node(g, &tb, p, "where(%s, %s, %s)", use(g, c), k, use(g, b));
}

/* A random axis of rank r (r >= 1), written negative now and then. */
static int64_t write_axis(gen *g, int a, int r) {
    if (chance(g, 40)) {
        feat(g, GEN_F_NEG_AXIS);
        return a - r;
    }
    return a;
}

/* A temporary "[a, b, c]" (rotating buffers). */
static const char *ints_str(const int64_t *v, int n) {
    static _Thread_local char buf[4][160];
    static _Thread_local int k;
    ir_str s = {0};
    ir_str_putc(&s, '[');
    for (int i = 0; i < n; i++) ir_str_printf(&s, "%s%lld", i ? ", " : "", (long long)v[i]);
    ir_str_putc(&s, ']');
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s", s.buf ? s.buf : "[]");
    ir_str_free(&s);
    return b;
}

/* ---- creation ---------------------------------------------------------- */

static int make_iota(gen *g, const ir_type *t, int axis) {
    double mag = lg((double)t->dim[axis]);
    return node(g, t, pr(false, mag, 1u << axis), "iota() {axis = %lld}", (long long)write_axis(g, axis, t->rank));
}

static int make_full(gen *g, const ir_type *t, const char *value, double mag) {
    return node(g, t, pr(false, mag, 0), "full() {value = %s}", value);
}

static int make_constant(gen *g, const ir_type *t) {
    ir_str s = {0};
    int64_t n = numel(t);
    ir_str_putc(&s, '[');
    for (int64_t i = 0; i < n; i++) {
        if (i) ir_str_puts(&s, ", ");
        if (is_bool(t->dtype)) ir_str_printf(&s, "%d", rnd(g, 2));
        else if (t->dtype == FUSEC_DTYPE_U8) ir_str_printf(&s, "%d", rnd(g, 10));
        else if (is_int(t->dtype)) ir_str_printf(&s, "%d", rnd(g, 13) - 6);
        else ir_str_printf(&s, "%.2f", (double)(rnd(g, 801) - 400) / 100.0);
    }
    ir_str_putc(&s, ']');
    int r = node(g, t, pr(false, 1, ALL_VARY), "constant() {data = %s}", s.buf ? s.buf : "[]");
    ir_str_free(&s);
    return r;
}

static int em_create(gen *g) {
    ir_type t;
    derived_shape(g, &t);
    int k = rnd(g, 10);
    if (k < 4) {
        t.dtype = rand_dt(g);
        double m;
        const char *v = fill_value(g, t.dtype, &m);
        return make_full(g, &t, v, m);
    }
    if (k < 8) {
        if (t.rank == 0) {
            t.rank = 1;
            t.dim[0] = rand_dim(g);
        }
        t.dtype = chance(g, 70) ? rand_int_dt(g) : rand_float_dt(g);
        return make_iota(g, &t, rnd(g, t.rank));
    }
    t.dtype = rand_dt(g);
    if (numel(&t) > 12) {
        t.rank = 1 + rnd(g, 2);
        for (int i = 0; i < t.rank; i++) t.dim[i] = range(g, 1, 3);
    }
    return make_constant(g, &t);
}

/* ---- elementwise -------------------------------------------------------- */

static bool op_is(const char *op, const char *const *set, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(op, set[i])) return true;
    return false;
}

static int em_unary_float(gen *g) {
    static const char *const smooth[] = {"tanh", "sigmoid", "erf", "gelu", "silu"};
    static const char *const ops[] = {"exp",  "exp2", "log",   "log2",    "log1p", "expm1",
                                      "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tan",
                                      "tanh", "sigmoid", "erf", "gelu", "silu",  "floor",
                                      "ceil", "round", "isnan", "isinf"};
    static const char *const jumps[] = {"floor", "ceil", "round", "isnan", "isinf"};
    static const char *const singular[] = {"log", "log2", "sqrt", "rsqrt", "reciprocal"};
    static const char *const expish[] = {"exp", "exp2", "expm1", "sin", "cos", "tan"};
    int x = any_float(g);
    if (x < 0) return -1;
    const char *op = ops[rnd(g, (int)(sizeof ops / sizeof ops[0]))];
    bool frag = g->v[x].p.frag;
    bool jump = op_is(op, jumps, 5);
    if (frag && jump) op = smooth[rnd(g, 5)], jump = false;
    bool guarded = false;
    if (frag) {
        ir_dtype dt = g->v[x].t.dtype;
        if (op_is(op, singular, 5)) x = guard_pos(g, x), guarded = true;
        else if (!strcmp(op, "log1p")) x = guard_abs(g, x), guarded = true;
        else if (op_is(op, expish, 6)) {
            double lim = exp_limit(dt);
            if (!strcmp(op, "tan") && lim > 1.25) lim = 1.25;
            if (g->v[x].p.mag > lg(lim) || !strcmp(op, "tan")) x = guard_clamp(g, x, lim), guarded = true;
        }
        if (x < 0) return -1;
    }
    ir_type t = g->v[x].t;
    double m = P(g, x).mag, mx = max_mag(t.dtype);
    /* magnitude of the result */
    double mag = m;
    if (!strcmp(op, "exp") || !strcmp(op, "expm1")) mag = pow(10, m) * 0.4343;
    else if (!strcmp(op, "exp2")) mag = pow(10, m) * 0.3011;
    else if (!strcmp(op, "log") || !strcmp(op, "log2") || !strcmp(op, "log1p")) mag = 3.1;
    else if (!strcmp(op, "sqrt")) mag = m / 2;
    else if (!strcmp(op, "rsqrt")) mag = guarded ? 0 : mx / 2;
    else if (!strcmp(op, "reciprocal")) mag = guarded ? 0 : mx;
    else if (!strcmp(op, "tan")) mag = guarded ? 0.5 : mx;
    else if (op_is(op, (const char *const[]){"sin", "cos", "tanh", "sigmoid", "erf"}, 5)) mag = 0;
    bool to_bool = !strcmp(op, "isnan") || !strcmp(op, "isinf");
    if (to_bool) t.dtype = FUSEC_DTYPE_BOOL, mag = 0;
    props p = P(g, x);
    p.frag = !to_bool && (p.frag || !jump);
    p.mag = mag;
    if (jump || to_bool) p.vary = 0; /* few distinct values */
    /* saturating maps: a row of large inputs comes out as copies of (nearly) +-1 */
    if (op_is(op, (const char *const[]){"tanh", "sigmoid", "erf"}, 3)) p.vary = 0;
    if (!strcmp(op, "gelu") && chance(g, 50))
        return node(g, &t, p, "gelu(%s) {approximate = \"tanh\"}", use(g, x));
    return node(g, &t, p, "%s(%s)", op, use(g, x));
}

static int em_clamp(gen *g, int x) {
    ir_dtype dt = g->v[x].t.dtype;
    bool lo = chance(g, 70), hi = !lo || chance(g, 60);
    ir_str a = {0};
    double bound = 0;
    if (is_float(dt)) {
        static const char *const b[] = {"-1.0", "-0.5", "0.0", "0.5", "1.0", "2.0"};
        int i = rnd(g, 6), j = rnd(g, 6);
        if (lo && hi && i > j && chance(g, 85)) { int s = i; i = j; j = s; } /* min > max: rare */
        if (lo) ir_str_printf(&a, "min = %s", b[i]);
        if (hi) ir_str_printf(&a, "%smax = %s", lo ? ", " : "", b[j]);
        bound = 0.31;
    } else {
        int64_t i = dt == FUSEC_DTYPE_U8 ? range(g, 0, 4) : range(g, -3, 2);
        int64_t j = i + range(g, 0, 4);
        if (lo) ir_str_printf(&a, "min = %lld", (long long)i);
        if (hi) ir_str_printf(&a, "%smax = %lld", lo ? ", " : "", (long long)j);
        bound = 0.8;
    }
    props p = P(g, x);
    if (lo && hi) p.mag = bound;
    p.vary = 0; /* saturates */
    int r = node(g, &g->v[x].t, p, "clamp(%s) {%s}", use(g, x), a.buf);
    ir_str_free(&a);
    return r;
}

static int em_unary_numeric(gen *g) {
    int x = pick(g, p_any, NULL);
    if (x < 0) return -1;
    const gval *v = &g->v[x];
    if (is_bool(v->t.dtype)) return node(g, &v->t, pr(false, 0, 0), "not(%s)", use(g, x));
    static const char *const ops[] = {"neg", "abs", "sign", "relu", "clamp"};
    const char *op = ops[rnd(g, 5)];
    if (!strcmp(op, "clamp")) return em_clamp(g, x);
    if (!strcmp(op, "sign") && v->p.frag) op = "relu";
    props p = P(g, x);
    if (!strcmp(op, "sign")) p.mag = 0;
    if (!strcmp(op, "sign") || !strcmp(op, "relu")) p.vary = 0; /* saturate */
    return node(g, &v->t, p, "%s(%s)", op, use(g, x));
}

/* An operand for a binary op with a: a value that broadcasts with a, cast to
 * a's dtype (needs_exact: only exact values), or -1 (use a literal). */
static int partner(gen *g, int a, bool needs_exact) {
    int b = pick_bcast(g, &g->v[a].t, needs_exact ? p_exact : p_any);
    if (b < 0) return -1;
    if (needs_exact && g->v[b].p.frag) return -1;
    return coerce(g, b, g->v[a].t.dtype);
}

/* How a binary op combines the magnitudes of its operands. */
typedef enum magrule { MR_MAX, MR_ADD, MR_MUL, MR_RHS, MR_FULL } magrule;

static double combine(magrule r, double ma, double mb, ir_dtype dt) {
    switch (r) {
    case MR_ADD: return (ma > mb ? ma : mb) + 0.31;
    case MR_MUL: return ma + mb;
    case MR_RHS: return mb;
    case MR_FULL: return max_mag(dt);
    default: return ma > mb ? ma : mb;
    }
}

/* op(a, b) or op(a, lit) (lit_first: the literal or b goes first). */
static int binary_node(gen *g, const char *op, int a, const char *bl, double blmag, int b, bool lit_first,
                       bool frag, magrule mr) {
    ir_type t = g->v[a].t;
    ir_dtype dt = t.dtype;
    if (b >= 0) {
        if (!ir_broadcast_shape(&g->v[a].t, &g->v[b].t, &t)) return -1;
        t.dtype = dt;
        note_bcast(g, &g->v[a].t, &g->v[b].t);
        int ops[2] = {a, b};
        props p = pr(frag, combine(mr, P(g, a).mag, P(g, b).mag, dt), vary_of(g, &t, ops, 2));
        if (!strcmp(op, "maximum") || !strcmp(op, "minimum")) p.vary = 0; /* saturate */
        const char *an = use(g, a), *bn = use(g, b);
        return node(g, &t, p, "%s(%s, %s)", op, lit_first ? bn : an, lit_first ? an : bn);
    }
    feat(g, GEN_F_LITERAL);
    props p = pr(frag, combine(mr, P(g, a).mag, blmag, dt), P(g, a).vary);
    if (!strcmp(op, "maximum") || !strcmp(op, "minimum")) p.vary = 0;
    const char *an = use(g, a);
    return lit_first ? node(g, &t, p, "%s(%s, %s)", op, bl, an) : node(g, &t, p, "%s(%s, %s)", op, an, bl);
}

static int em_binary(gen *g) {
    static const char *const ops[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder"};
    static const int w[] = {20, 15, 20, 12, 7, 8, 8, 6};
    const char *op = ops[weighted(g, w, 8)];
    int a = pick(g, p_numeric, NULL);
    if (a < 0 || chance(g, 10)) {
        int src = pick(g, p_exact, NULL);
        a = coerce(g, src, chance(g, 50) ? rand_int_dt(g) : rand_float_dt(g));
    }
    if (a < 0) return -1;
    ir_dtype dt = g->v[a].t.dtype;
    bool fl = is_float(dt);
    bool use_lit = chance(g, 30);
    double lm;

    if (!strcmp(op, "remainder") && fl && g->v[a].p.frag) op = "sub";
    if (!strcmp(op, "div") || !strcmp(op, "remainder")) {
        bool rem = !strcmp(op, "remainder");
        magrule mr = rem ? MR_RHS : MR_MAX;
        if (!fl) {
            if (use_lit) return binary_node(g, op, a, lit_nonzero(g, dt), 0.9, -1, false, false, mr);
            int b = partner(g, a, true);
            if (b < 0) return binary_node(g, op, a, lit_nonzero(g, dt), 0.9, -1, false, false, mr);
            b = nonzero(g, b);
            return b < 0 ? -1 : binary_node(g, op, a, NULL, 0, b, false, false, mr);
        }
        if (use_lit) {
            const char *l = lit_m(g, dt, &lm);
            /* a literal divisor as small as 0.001 scales a by 1000 */
            return binary_node(g, op, a, l, rem ? lm : 3, -1, false, true, rem ? MR_RHS : MR_ADD);
        }
        int b = partner(g, a, rem);
        if (b < 0) {
            const char *l = lit_m(g, dt, &lm);
            return binary_node(g, op, a, l, rem ? lm : 3, -1, false, true, rem ? MR_RHS : MR_ADD);
        }
        if (rem) return binary_node(g, op, a, NULL, 0, b, false, true, MR_RHS);
        if (g->v[b].p.frag) {
            if ((b = guard_pos(g, b)) < 0) return -1;
            return binary_node(g, op, a, NULL, 0, b, false, true, MR_MAX); /* divisor >= 1 */
        }
        return binary_node(g, op, a, NULL, 0, b, false, true, MR_FULL); /* exact divisor: may be tiny */
    }
    if (!strcmp(op, "pow")) {
        if (!fl) {
            if (!chance(g, 30)) return binary_node(g, op, a, lit(g, FUSEC_DTYPE_U8), 0, -1, false, false, MR_FULL);
            int b = partner(g, a, true);
            if (b < 0) return -1;
            b = node(g, &g->v[b].t, pr(false, 0.5, P(g, b).vary), "clamp(%s) {min = 0, max = 3}", use(g, b));
            return b < 0 ? -1 : binary_node(g, op, a, NULL, 0, b, false, false, MR_FULL);
        }
        static const char *const ex[] = {"2.0", "3.0", "0.5", "-1.0", "1.5", "0.0", "-2.0", "1.0"};
        static const double exv[] = {2, 3, 0.5, -1, 1.5, 0, -2, 1};
        int e = rnd(g, 8);
        if (!g->v[a].p.frag && chance(g, 25)) {
            int b = partner(g, a, true);
            if (b >= 0) return binary_node(g, op, a, NULL, 0, b, false, true, MR_FULL);
        }
        bool guarded = false;
        if (g->v[a].p.frag && (e == 2 || e == 3 || e == 4 || e == 6)) {
            if ((a = guard_pos(g, a)) < 0) return -1;
            guarded = true;
        }
        ir_type t = g->v[a].t;
        props p = P(g, a);
        p.frag = true;
        p.mag = exv[e] >= 0 ? fabs(exv[e]) * p.mag : guarded ? 0 : max_mag(t.dtype);
        feat(g, GEN_F_LITERAL);
        return node(g, &t, p, "pow(%s, %s)", use(g, a), ex[e]);
    }
    /* add sub mul maximum minimum: no domain restriction */
    bool arith = strcmp(op, "maximum") && strcmp(op, "minimum");
    magrule mr = !strcmp(op, "mul") ? MR_MUL : arith ? MR_ADD : MR_MAX;
    bool lit_first = chance(g, 25);
    if (use_lit) {
        const char *l = lit_m(g, dt, &lm);
        return binary_node(g, op, a, l, lm, -1, lit_first, fl && (arith || g->v[a].p.frag), mr);
    }
    int b = partner(g, a, false);
    if (b < 0) {
        const char *l = lit_m(g, dt, &lm);
        return binary_node(g, op, a, l, lm, -1, lit_first, fl && (arith || g->v[a].p.frag), mr);
    }
    bool frag = fl && (arith || g->v[a].p.frag || g->v[b].p.frag);
    return binary_node(g, op, a, NULL, 0, b, lit_first, frag, mr);
}

static int em_logical(gen *g) {
    static const char *const ops[] = {"and", "or", "xor"};
    const char *op = ops[rnd(g, 3)];
    int a = pick(g, p_logical, NULL);
    if (a < 0) return -1;
    ir_dtype dt = g->v[a].t.dtype;
    if (chance(g, 30)) return binary_node(g, op, a, lit(g, dt), 0.8, -1, false, false, MR_MAX);
    int b = partner(g, a, true);
    if (b < 0) return binary_node(g, op, a, lit(g, dt), 0.8, -1, false, false, MR_MAX);
    return binary_node(g, op, a, NULL, 0, b, false, false, MR_MAX);
}

/* A comparison of exact values: a bool value, or -1. */
static int em_compare(gen *g) {
    static const char *const ops[] = {"eq", "ne", "lt", "le", "gt", "ge"};
    const char *op = ops[rnd(g, 6)];
    int a = pick(g, p_exact, NULL);
    if (a < 0) return -1;
    ir_type t = with_dtype(&g->v[a].t, FUSEC_DTYPE_BOOL);
    int b = chance(g, 40) ? -1 : partner(g, a, true);
    if (b < 0) {
        feat(g, GEN_F_LITERAL);
        const char *l = lit(g, g->v[a].t.dtype);
        return node(g, &t, pr(false, 0, 0), "%s(%s, %s)", op, use(g, a), l);
    }
    ir_broadcast_shape(&g->v[a].t, &g->v[b].t, &t);
    t.dtype = FUSEC_DTYPE_BOOL;
    note_bcast(g, &g->v[a].t, &g->v[b].t);
    props p = pr(false, 0, 0);
    const char *an = use(g, a);
    return node(g, &t, p, "%s(%s, %s)", op, an, use(g, b));
}

static int bool_value(gen *g) {
    int c = chance(g, 60) ? pick(g, p_bool, NULL) : -1;
    return c >= 0 ? c : em_compare(g);
}

static int em_where(gen *g) {
    int c = bool_value(g);
    if (c < 0) return -1;
    int a = pick_bcast(g, &g->v[c].t, p_any);
    if (a < 0) return -1;
    ir_type t;
    ir_broadcast_shape(&g->v[c].t, &g->v[a].t, &t);
    ir_dtype dt = g->v[a].t.dtype;
    t.dtype = dt;
    int b = chance(g, 35) ? -1 : pick_bcast(g, &t, p_any);
    b = coerce(g, b, dt);
    bool swap = chance(g, 50);
    note_bcast(g, &g->v[c].t, &g->v[a].t);
    if (b < 0) {
        feat(g, GEN_F_LITERAL);
        double lm;
        const char *l = lit_m(g, dt, &lm);
        /* a select varies where its value operands do: a mask may pick one
         * repeated value for a whole row */
        props p = pr(g->v[a].p.frag, P(g, a).mag > lm ? P(g, a).mag : lm, vary_of(g, &t, &a, 1));
        const char *cn = use(g, c), *an = use(g, a);
        return swap ? node(g, &t, p, "where(%s, %s, %s)", cn, l, an) : node(g, &t, p, "where(%s, %s, %s)", cn, an, l);
    }
    ir_type t2;
    ir_broadcast_shape(&t, &g->v[b].t, &t2);
    t2.dtype = dt;
    int ops[2] = {a, b};
    props p = pr(g->v[a].p.frag || g->v[b].p.frag, combine(MR_MAX, P(g, a).mag, P(g, b).mag, dt),
                 vary_of(g, &t2, ops, 2));
    const char *cn = use(g, c), *an = use(g, a), *bn = use(g, b);
    return node(g, &t2, p, "where(%s, %s, %s)", cn, swap ? bn : an, swap ? an : bn);
}

static int em_masked_fill(gen *g) {
    int x = pick(g, p_any, NULL);
    if (x < 0) return -1;
    int m = pick_bcast(g, &g->v[x].t, p_bool);
    if (m < 0) {
        m = em_compare(g);
        if (m < 0) return -1;
        ir_type r;
        if (!ir_broadcast_shape(&g->v[x].t, &g->v[m].t, &r) || !fits(g, &r)) return -1;
    }
    ir_type t;
    ir_broadcast_shape(&g->v[x].t, &g->v[m].t, &t);
    t.dtype = g->v[x].t.dtype;
    note_bcast(g, &g->v[x].t, &g->v[m].t);
    double fm;
    const char *fv = fill_value(g, t.dtype, &fm);
    props p = pr(g->v[x].p.frag, P(g, x).mag > fm ? P(g, x).mag : fm, vary_of(g, &t, &x, 1));
    const char *xn = use(g, x);
    return node(g, &t, p, "masked_fill(%s, %s) {value = %s}", xn, use(g, m), fv);
}

static int em_cast(gen *g) {
    int x = pick(g, p_any, NULL);
    if (x < 0) return -1;
    ir_dtype to = g->v[x].p.frag ? rand_float_dt(g) : rand_dt(g);
    if (to == g->v[x].t.dtype) /* an identity cast (canonicalize removes it) */
        return node(g, &g->v[x].t, P(g, x), "cast(%s) {to = %s}", use(g, x), ir_dtype_name(to));
    return coerce(g, x, to);
}

/* ---- reductions --------------------------------------------------------- */

static int em_reduce(gen *g) {
    static const char *const ops[] = {"sum", "mean", "prod", "max", "min", "argmax", "argmin", "var"};
    static const int w[] = {25, 15, 7, 12, 10, 8, 6, 9};
    int k = weighted(g, w, 8);
    const char *op = ops[k];
    bool arg = k == 5 || k == 6, nonempty = k == 3 || k == 4 || arg, float_only = k == 1 || k == 7;
    int x = float_only ? any_float(g) : arg ? pick(g, p_exact_numeric, NULL) : pick(g, p_any, NULL);
    if (x < 0) return -1;
    const ir_type in = g->v[x].t;
    int r = in.rank;
    bool mask[IR_MAX_RANK] = {0}, keep = chance(g, 40);
    int64_t axes[IR_MAX_RANK];
    int nax = 0;
    bool all = r == 0 ? chance(g, 50) : chance(g, 25);
    if (all && nonempty && numel(&in) == 0) all = false;
    if (!all) {
        if (r == 0) {
            axes[nax++] = chance(g, 50) ? 0 : -1;
        } else if (arg) {
            int a = rnd(g, r);
            if (in.dim[a] == 0) return -1;
            mask[a] = true;
            axes[nax++] = write_axis(g, a, r);
        } else {
            int want = chance(g, 60) ? 1 : 1 + rnd(g, r);
            int order[IR_MAX_RANK];
            for (int i = 0; i < r; i++) order[i] = i;
            for (int i = r - 1; i > 0; i--) {
                int j = rnd(g, i + 1), s = order[i];
                order[i] = order[j], order[j] = s;
            }
            for (int i = 0; i < r && nax < want; i++) {
                int a = order[i];
                if (nonempty && in.dim[a] == 0) continue;
                mask[a] = true;
                axes[nax++] = write_axis(g, a, r);
            }
            if (nax == 0) return -1;
        }
    } else {
        for (int i = 0; i < r; i++) mask[i] = true;
    }
    if (k == 7 && !stats_ok(g, x, mask)) return -1; /* var over copies of one float */
    int64_t n = 1; /* elements per output */
    for (int i = 0; i < r; i++)
        if (mask[i]) n *= in.dim[i];
    ir_type t = {.dtype = in.dtype};
    unsigned vary = 0;
    for (int i = 0; i < r; i++) {
        if (!mask[i]) {
            if (g->v[x].p.vary >> i & 1) vary |= 1u << t.rank;
            t.dim[t.rank++] = in.dim[i];
        } else if (keep) {
            vary |= 1u << t.rank;
            t.dim[t.rank++] = 1;
        }
    }
    double m = P(g, x).mag, mag = m;
    if (arg) {
        t.dtype = FUSEC_DTYPE_I64;
        mag = lg((double)n);
        if (all && keep) { /* argmax over everything, keepdim: all ones */
            t.rank = r;
            for (int i = 0; i < r; i++) t.dim[i] = 1;
        } else if (all) {
            t.rank = 0;
        }
    } else if ((k == 0 || k == 2) && !is_float(in.dtype)) {
        t.dtype = FUSEC_DTYPE_I64;
        mag = k == 0 ? m + lg((double)n) : 19;
    } else if (is_float(in.dtype)) {
        /* operands of float sums must not overflow f32 on the way */
        if (k == 2 && (double)n * (m > 0 ? m : 0) > 30) x = guard_clamp(g, x, 1.0);
        else if (k != 3 && k != 4) x = tame(g, x);
        if (x < 0) return -1;
        m = P(g, x).mag;
        mag = k == 0 ? m + lg((double)n) : k == 2 ? (double)n * m : k == 7 ? 2 * m + 0.3 : m;
    }
    if (keep) feat(g, GEN_F_KEEPDIM);
    bool frag = is_float(t.dtype) && (k == 0 || k == 1 || k == 2 || k == 7 || g->v[x].p.frag);
    ir_str a = {0};
    const char *sep = "";
    if (!all) {
        if (arg) ir_str_printf(&a, "axis = %lld", (long long)axes[0]);
        else ir_str_printf(&a, "axes = %s", ints_str(axes, nax));
        sep = ", ";
    }
    if (keep || chance(g, 10)) ir_str_printf(&a, "%skeepdim = %s", sep, keep ? "true" : "false"), sep = ", ";
    if (k == 7 && chance(g, 60)) ir_str_printf(&a, "%scorrection = %d", sep, rnd(g, 3));
    props p = pr(frag, mag, vary);
    int res = a.len ? node(g, &t, p, "%s(%s) {%s}", op, use(g, x), a.buf) : node(g, &t, p, "%s(%s)", op, use(g, x));
    ir_str_free(&a);
    return res;
}

/* ---- data movement ------------------------------------------------------- */

static int em_reshape(gen *g, int x) {
    const ir_type *in = &g->v[x].t;
    int64_t n = numel(in), dims[6];
    int r = rnd(g, 5);
    if (chance(g, 5)) r += 2;
    if (n == 0) {
        if (r == 0) r = 1;
        int z = rnd(g, r);
        for (int i = 0; i < r; i++) dims[i] = i == z ? 0 : range(g, 1, 4);
    } else {
        int64_t m = n;
        for (int i = 0; i < r - 1; i++) {
            int64_t divs[32];
            int nd = 0;
            for (int64_t d = 1; d <= m && d <= 16 && nd < 32; d++)
                if (m % d == 0) divs[nd++] = d;
            dims[i] = divs[rnd(g, nd)];
            m /= dims[i];
        }
        if (r == 0) {
            if (n != 1) return -1;
        } else {
            dims[r - 1] = m;
        }
    }
    ir_type t = {.dtype = in->dtype, .rank = r};
    for (int i = 0; i < r; i++) t.dim[i] = dims[i];
    if (r > 0 && chance(g, 35)) {
        int j = rnd(g, r);
        if (n > 0 || dims[j] == 0) dims[j] = -1;
    }
    /* rows of the result mix the input's axes: they vary if all did */
    props p = P(g, x);
    unsigned full = in->rank ? (1u << in->rank) - 1 : 0, need = 0;
    for (int i = 0; i < in->rank; i++)
        if (in->dim[i] > 1) need |= 1u << i;
    p.vary = (p.vary & full & need) == need ? ALL_VARY : 0;
    return node(g, &t, p, "reshape(%s) {shape = %s}", use(g, x), ints_str(dims, r));
}

/* Bits of `vary` moved by a permutation: out axis i is in axis perm[i]. */
static unsigned permute_bits(unsigned vary, const int64_t *perm, int r) {
    unsigned o = 0;
    for (int i = 0; i < r; i++)
        if (vary >> perm[i] & 1) o |= 1u << i;
    return o;
}

static int em_permute(gen *g, int x) {
    const ir_type *in = &g->v[x].t;
    int r = in->rank;
    int64_t p[IR_MAX_RANK], w[IR_MAX_RANK];
    for (int i = 0; i < r; i++) p[i] = i;
    for (int i = r - 1; i > 0; i--) {
        int j = rnd(g, i + 1);
        int64_t s = p[i];
        p[i] = p[j], p[j] = s;
    }
    ir_type t = {.dtype = in->dtype, .rank = r};
    for (int i = 0; i < r; i++) {
        t.dim[i] = in->dim[p[i]];
        w[i] = write_axis(g, (int)p[i], r);
    }
    props pp = P(g, x);
    pp.vary = permute_bits(pp.vary, p, r);
    return node(g, &t, pp, "permute(%s) {dims = %s}", use(g, x), ints_str(w, r));
}

static int em_transpose(gen *g, int x) {
    const ir_type *in = &g->v[x].t;
    int r = in->rank;
    if (r < 1) return -1;
    int a = rnd(g, r), b = rnd(g, r);
    ir_type t = *in;
    t.dim[a] = in->dim[b];
    t.dim[b] = in->dim[a];
    int64_t perm[IR_MAX_RANK];
    for (int i = 0; i < r; i++) perm[i] = i;
    perm[a] = b, perm[b] = a;
    props p = P(g, x);
    p.vary = permute_bits(p.vary, perm, r);
    int64_t wa = write_axis(g, a, r), wb = write_axis(g, b, r);
    return node(g, &t, p, "transpose(%s) {dim0 = %lld, dim1 = %lld}", use(g, x), (long long)wa, (long long)wb);
}

static int em_expand(gen *g, int x) {
    const ir_type *in = &g->v[x].t;
    int lead = in->rank < 4 ? rnd(g, 3) : 0;
    if (lead + in->rank > 6) lead = 0;
    ir_type t = {.dtype = in->dtype, .rank = lead + in->rank};
    int64_t shp[IR_MAX_RANK];
    unsigned vary = 0;
    for (int i = 0; i < lead; i++) {
        t.dim[i] = (g->zero_ok && chance(g, 5)) ? 0 : rand_dim(g);
        shp[i] = t.dim[i];
        if (t.dim[i] <= 1) vary |= 1u << i;
    }
    for (int i = 0; i < in->rank; i++) {
        int64_t have = in->dim[i], to = have;
        if (have == 1 && chance(g, 60)) to = (g->zero_ok && chance(g, 5)) ? 0 : rand_dim(g);
        t.dim[lead + i] = to;
        shp[lead + i] = (to == have && chance(g, 30)) ? -1 : to;
        if (to <= 1 || (to == have && (g->v[x].p.vary >> i & 1))) vary |= 1u << (lead + i);
    }
    if (!fits(g, &t)) return -1;
    props p = P(g, x);
    p.vary = vary;
    return node(g, &t, p, "expand(%s) {shape = %s}", use(g, x), ints_str(shp, t.rank));
}

static int em_squeeze(gen *g, int x) {
    const ir_type *in = &g->v[x].t;
    int r = in->rank;
    ir_type t = {.dtype = in->dtype};
    props p = P(g, x);
    unsigned vary = 0;
    bool mask[IR_MAX_RANK] = {0};
    int64_t ax[IR_MAX_RANK];
    int n = 0;
    bool all = chance(g, 30) || r == 0;
    if (!all) {
        for (int i = 0; i < r; i++) {
            /* prefer size-1 dims; a size > 1 dim named in axes stays (torch) */
            if (chance(g, in->dim[i] == 1 ? 70 : 15)) {
                mask[i] = true;
                ax[n++] = write_axis(g, i, r);
            }
        }
        if (n == 0) {
            int i = rnd(g, r);
            mask[i] = true;
            ax[n++] = write_axis(g, i, r);
        }
    }
    for (int i = 0; i < r; i++) {
        if ((all || mask[i]) && in->dim[i] == 1) continue;
        if (p.vary >> i & 1) vary |= 1u << t.rank;
        t.dim[t.rank++] = in->dim[i];
    }
    p.vary = vary;
    if (all) return node(g, &t, p, "squeeze(%s)", use(g, x));
    return node(g, &t, p, "squeeze(%s) {axes = %s}", use(g, x), ints_str(ax, n));
}

static int em_unsqueeze(gen *g, int x) {
    const ir_type *in = &g->v[x].t;
    if (in->rank >= 6) return -1;
    int a = rnd(g, in->rank + 1);
    ir_type t = {.dtype = in->dtype, .rank = in->rank + 1};
    props p = P(g, x);
    unsigned vary = 1u << a;
    for (int i = 0, j = 0; i < t.rank; i++) {
        if (i == a) {
            t.dim[i] = 1;
            continue;
        }
        if (p.vary >> j & 1) vary |= 1u << i;
        t.dim[i] = in->dim[j++];
    }
    p.vary = vary;
    return node(g, &t, p, "unsqueeze(%s) {axis = %lld}", use(g, x), (long long)write_axis(g, a, t.rank));
}

/* Python slice bounds, as ir/infer.c clamps them. */
static int64_t clamp_bound(int64_t b, int64_t size) {
    if (b < 0) b = b < -size ? 0 : b + size;
    return b > size ? size : b;
}

static int em_slice(gen *g, int x) {
    const ir_type *in = &g->v[x].t;
    int r = in->rank;
    if (r < 1) return -1;
    int a = rnd(g, r);
    int64_t s = in->dim[a];
    int64_t starts[] = {0, 1, -1, -2, s / 2, s + 3, -s - 2, 0};
    int64_t ends[] = {INT64_MAX, s, -1, 1, s / 2 + 1, 100, INT64_MAX, s - 1};
    int64_t st = starts[rnd(g, 8)], en = ends[rnd(g, 8)];
    int64_t step = chance(g, 65) ? 1 : range(g, 2, 3);
    int64_t b = clamp_bound(st, s), e = clamp_bound(en, s);
    ir_type t = *in;
    t.dim[a] = e > b ? (e - b - 1) / step + 1 : 0;
    if (t.dim[a] == 0 && s > 0 && !g->zero_ok && chance(g, 80)) return -1;
    if (step > 1) feat(g, GEN_F_SLICE_STEP);
    ir_str at = {0};
    ir_str_printf(&at, "axis = %lld", (long long)write_axis(g, a, r));
    if (st != 0 || chance(g, 20)) ir_str_printf(&at, ", start = %lld", (long long)st);
    if (en != INT64_MAX) ir_str_printf(&at, ", end = %lld", (long long)en);
    if (step != 1 || chance(g, 10)) ir_str_printf(&at, ", step = %lld", (long long)step);
    int res = node(g, &t, P(g, x), "slice(%s) {%s}", use(g, x), at.buf);
    ir_str_free(&at);
    return res;
}

typedef struct cat_arg {
    const ir_type *t;
    int axis;
} cat_arg;

static bool p_concat(const gen *g, const gval *v, const void *a) {
    (void)g;
    const cat_arg *c = a;
    if (v->t.dtype != c->t->dtype || v->t.rank != c->t->rank) return false;
    for (int i = 0; i < v->t.rank; i++)
        if (i != c->axis && v->t.dim[i] != c->t->dim[i]) return false;
    return true;
}

static int em_concat(gen *g, int x) {
    const ir_type *in = &g->v[x].t;
    int r = in->rank;
    if (r < 1) return -1;
    int a = rnd(g, r), parts[3] = {x}, n = 1 + rnd(g, 3);
    cat_arg ca = {in, a};
    for (int k = 1; k < n; k++) {
        int y = pick(g, p_concat, &ca);
        if (y < 0 || chance(g, 20)) { /* make a partner from x */
            y = chance(g, 50) ? em_slice(g, x) : -1;
            if (y >= 0 && !p_concat(g, &g->v[y], &ca)) y = -1;
            if (y < 0) y = x;
        }
        parts[k] = y;
    }
    ir_type t = *in;
    t.dim[a] = 0;
    props p = pr(false, 0, ALL_VARY);
    bool along = false; /* some part of size >= 2 varies along the axis */
    for (int k = 0; k < n; k++) {
        props q = P(g, parts[k]);
        t.dim[a] += g->v[parts[k]].t.dim[a];
        p.frag |= q.frag;
        p.mag = q.mag > p.mag ? q.mag : p.mag;
        p.vary &= q.vary;
        along |= g->v[parts[k]].t.dim[a] >= 2 && (q.vary >> a & 1);
    }
    /* concat(x, x) of a size-1 x repeats one value along the axis */
    if (!along && t.dim[a] > 1) p.vary &= ~(1u << a);
    if (!fits(g, &t)) return -1;
    ir_str ops = {0};
    for (int k = 0; k < n; k++) ir_str_printf(&ops, "%s%s", k ? ", " : "", use(g, parts[k]));
    int res = node(g, &t, p, "concat(%s) {axis = %lld}", ops.buf, (long long)write_axis(g, a, r));
    ir_str_free(&ops);
    return res;
}

static int em_pad(gen *g, int x) {
    const ir_type *in = &g->v[x].t;
    int r = in->rank;
    if (r < 1) return -1;
    int k = 1 + rnd(g, r < 3 ? r : 3);
    int64_t p[2 * IR_MAX_RANK];
    ir_type t = *in;
    for (int i = 0; i < k; i++) {
        int d = r - k + i;
        int64_t b = range(g, -2, 3), e = range(g, -2, 3);
        if (in->dim[d] + b + e < 0) b = -in->dim[d] / 2, e = -(in->dim[d] + b);
        if (in->dim[d] + b + e < 0) b = e = 0;
        if (b < 0 || e < 0) feat(g, GEN_F_NEG_PAD);
        p[2 * i] = b, p[2 * i + 1] = e;
        t.dim[d] = in->dim[d] + b + e;
    }
    if (!fits(g, &t)) return -1;
    props pp = P(g, x);
    const char *xn = use(g, x);
    if (chance(g, 40)) return node(g, &t, pp, "pad(%s) {pads = %s}", xn, ints_str(p, 2 * k));
    double fm;
    const char *fv = fill_value(g, in->dtype, &fm);
    if (fm > pp.mag) pp.mag = fm;
    return node(g, &t, pp, "pad(%s) {pads = %s, value = %s}", xn, ints_str(p, 2 * k), fv);
}

static int em_tri(gen *g, int x) {
    if (g->v[x].t.rank < 2) return -1;
    const char *op = chance(g, 50) ? "triu" : "tril";
    int diag = rnd(g, 5) - 2;
    props p = P(g, x);
    p.vary = 0; /* whole rows may be zeroed */
    return node(g, &g->v[x].t, p, "%s(%s) {diagonal = %d}", op, use(g, x), diag);
}

static int em_move(gen *g) {
    static int (*const fns[])(gen *, int) = {em_reshape, em_permute, em_transpose, em_expand, em_squeeze,
                                              em_unsqueeze, em_slice, em_concat, em_pad, em_tri};
    static const int w[] = {20, 10, 12, 12, 8, 10, 14, 8, 9, 5};
    int x = pick(g, p_any, NULL);
    if (x < 0) return -1;
    return fns[weighted(g, w, 10)](g, x);
}

/* ---- masks -------------------------------------------------------------- */

/* The mask-to-softmax input: fragile scores clamped for the dtype. */
static int softmax_operand(gen *g, int x) {
    x = tame(g, x);
    if (x >= 0 && g->v[x].p.frag && g->v[x].p.mag > lg(softmax_limit(g->v[x].t.dtype)))
        x = guard_clamp(g, x, softmax_limit(g->v[x].t.dtype));
    return x;
}

static void hide(gen *g, int i) {
    if (i >= 0) g->v[i].hidden = true;
}

/* The finfo.min of dt, as models write it. */
static const char *finfo_min(ir_dtype dt) { return dt == FUSEC_DTYPE_F16 ? "-65504.0" : "-3.0e38"; }

/* Scores x masked where m is true (m broadcasts to x), in one of the ways
 * models write it.  *huge: the result holds finfo.min values. */
static int apply_mask(gen *g, int x, int m, bool *huge) {
    ir_type t;
    if (!ir_broadcast_shape(&g->v[x].t, &g->v[m].t, &t)) return -1;
    t.dtype = g->v[x].t.dtype;
    props p = pr(g->v[x].p.frag, P(g, x).mag, vary_of(g, &t, &x, 1));
    int k = rnd(g, 4);
    *huge = k == 3;
    const char *xn = use(g, x), *mn = use(g, m);
    switch (k) {
    case 0: return node(g, &t, p, "masked_fill(%s, %s) {value = -inf}", xn, mn);
    case 1: return node(g, &t, p, "where(%s, -inf, %s)", mn, xn);
    case 2: {
        bool finite = chance(g, 50);
        const char *fill = finite ? "-10000.0" : "-inf";
        if (finite) p.mag = 4;
        int keep = node(g, &g->v[m].t, P(g, m), "not(%s)", mn);
        return keep < 0 ? -1 : node(g, &t, p, "where(%s, %s, %s)", use(g, keep), xn, fill);
    }
    default: p.mag = max_mag(t.dtype); return node(g, &t, p, "masked_fill(%s, %s) {value = %s}", xn, mn, finfo_min(t.dtype));
    }
}

static int em_mask(gen *g) {
    int one = 1;
    int x = pick(g, p_float_rank, &one);
    if (x < 0) {
        int y = pick(g, p_rank, &one);
        if (y < 0 || (x = coerce(g, y, rand_float_dt(g))) < 0 || !is_float(g->v[x].t.dtype)) return -1;
    }
    if ((x = softmax_operand(g, x)) < 0) return -1;
    const ir_type *xt = &g->v[x].t;
    ir_dtype fdt = xt->dtype;
    int r = xt->rank;
    int64_t S1 = r >= 2 ? xt->dim[r - 2] : 1, S2 = xt->dim[r - 1];
    ir_dtype idt = chance(g, 70) ? FUSEC_DTYPE_I64 : FUSEC_DTYPE_I32;
    int pattern = rnd(g, 4), masked = -1;
    bool huge = false;
    if (pattern == 0) { /* causal / sliding window from iota and comparisons */
        feat(g, GEN_F_CAUSAL_MASK);
        if (r == 1) {
            ir_type it = {.dtype = idt, .rank = 1, .dim = {S2}};
            int i = make_iota(g, &it, 0);
            if (i < 0) return -1;
            ir_type bt = with_dtype(&it, FUSEC_DTYPE_BOOL);
            int m = node(g, &bt, pr(false, 0, ALL_VARY), "gt(%s, %lld)", use(g, i), (long long)(S2 / 2));
            masked = m < 0 ? -1 : apply_mask(g, x, m, &huge);
        } else {
            ir_type it = {.dtype = idt, .rank = 2, .dim = {S1, S2}};
            ir_type bt = with_dtype(&it, FUSEC_DTYPE_BOOL);
            int row = make_iota(g, &it, 0), col = make_iota(g, &it, 1);
            if (row < 0 || col < 0) return -1;
            static const char *const cmp[] = {"gt", "ge"};
            const char *cn = use(g, col), *rn = use(g, row);
            int m = node(g, &bt, pr(false, 0, ALL_VARY), "%s(%s, %s)", cmp[rnd(g, 2)], cn, rn);
            if (m >= 0 && chance(g, 30)) { /* sliding window: also mask keys too far back */
                int dlt = node(g, &it, pr(false, 1.3, ALL_VARY), "sub(%s, %s)", use(g, row), use(g, col));
                int far = dlt < 0 ? -1 : node(g, &bt, pr(false, 0, ALL_VARY), "gt(%s, %d)", use(g, dlt), 1 + rnd(g, 3));
                if (far >= 0) {
                    const char *mn = use(g, m);
                    m = node(g, &bt, pr(false, 0, ALL_VARY), "or(%s, %s)", mn, use(g, far));
                }
            }
            masked = m < 0 ? -1 : apply_mask(g, x, m, &huge);
        }
    } else if (pattern == 1 && r >= 2) { /* additive triu(full(-inf)) or tril of ones */
        feat(g, GEN_F_TRIU_MASK);
        ir_type ft = {.dtype = fdt, .rank = 2, .dim = {S1, S2}};
        if (chance(g, 60)) {
            huge = chance(g, 40);
            const char *v = huge ? finfo_min(fdt) : "-inf";
            int f = make_full(g, &ft, v, huge ? max_mag(fdt) : 0);
            int diag = rnd(g, 3); /* 0, 1 or 2 */
            int tu = f < 0 ? -1 : node(g, &ft, P(g, f), "triu(%s) {diagonal = %d}", use(g, f), diag);
            if (tu < 0) return -1;
            if (huge) hide(g, f), hide(g, tu);
            ir_type t;
            ir_broadcast_shape(xt, &ft, &t);
            t.dtype = fdt;
            int ops[2] = {x, tu};
            props p = pr(true, huge ? max_mag(fdt) : P(g, x).mag, vary_of(g, &t, ops, 2));
            const char *xn = use(g, x);
            masked = node(g, &t, p, "add(%s, %s)", xn, use(g, tu));
        } else {
            ir_type bt = {.dtype = FUSEC_DTYPE_BOOL, .rank = 2, .dim = {S1, S2}};
            int f = make_full(g, &bt, "1", 0);
            int tl = f < 0 ? -1 : node(g, &bt, P(g, f), "tril(%s)", use(g, f));
            int m = tl < 0 ? -1 : node(g, &bt, P(g, tl), "not(%s)", use(g, tl));
            masked = m < 0 ? -1 : apply_mask(g, x, m, &huge);
        }
    } else { /* padding: true at padded key positions, [B, 1, ..., 1, S] */
        ir_type mt = {.dtype = FUSEC_DTYPE_BOOL, .rank = r};
        for (int i = 0; i < r; i++) mt.dim[i] = 1;
        mt.dim[0] = xt->dim[0];
        mt.dim[r - 1] = S2;
        int pad = -1;
        if (chance(g, 40)) pad = new_param(g, &mt);
        if (pad < 0) {
            ir_type it = with_dtype(&mt, idt);
            int i = make_iota(g, &it, r - 1);
            if (i < 0) return -1;
            ir_type lt = it;
            lt.dim[r - 1] = 1;
            int len = chance(g, 50) ? new_param(g, &lt) : -1; /* per-sequence lengths */
            const char *in = use(g, i);
            if (len >= 0) pad = node(g, &mt, pr(false, 0, ALL_VARY), "ge(%s, %s)", in, use(g, len));
            else pad = node(g, &mt, pr(false, 0, ALL_VARY), "ge(%s, %lld)", in, (long long)range(g, 0, S2));
        }
        if (pad < 0) return -1;
        if (pattern == 3 && chance(g, 50)) { /* BERT: x + (1 - keep) * -10000 */
            feat(g, GEN_F_ADDITIVE_MASK);
            int keep = node(g, &mt, P(g, pad), "not(%s)", use(g, pad));
            ir_type ft = with_dtype(&mt, fdt);
            int kf = keep < 0 ? -1 : node(g, &ft, P(g, keep), "cast(%s) {to = %s}", use(g, keep), ir_dtype_name(fdt));
            int inv = kf < 0 ? -1 : node(g, &ft, P(g, kf), "sub(1.0, %s)", use(g, kf));
            if (inv < 0) return -1;
            props pm = P(g, inv);
            pm.mag = 4;
            int add = node(g, &ft, pm, "mul(%s, -10000.0)", use(g, inv));
            if (add < 0) return -1;
            ir_type t;
            ir_broadcast_shape(xt, &ft, &t);
            t.dtype = fdt;
            int ops[2] = {x, add};
            props p = pr(true, 4.1, vary_of(g, &t, ops, 2));
            const char *xn = use(g, x);
            masked = node(g, &t, p, "add(%s, %s)", xn, use(g, add));
        } else {
            feat(g, GEN_F_PAD_MASK);
            masked = apply_mask(g, x, pad, &huge);
        }
    }
    if (masked < 0) return -1;
    if (!huge && !chance(g, 75)) return masked;
    feat(g, GEN_F_MASK_SOFTMAX);
    if (huge) hide(g, masked); /* finfo.min values go into the softmax only */
    props p = P(g, masked);
    p.frag = true;
    p.mag = 0;
    bool log = !huge && chance(g, 20);
    if (log) p.mag = 4.5;
    return node(g, &g->v[masked].t, p, "%s(%s) {axis = -1}", log ? "log_softmax" : "softmax", use(g, masked));
}

/* ---- composites ---------------------------------------------------------- */

typedef struct type_arg {
    const ir_type *t;
} type_arg;

static bool p_type(const gen *g, const gval *v, const void *a) {
    (void)g;
    return ir_type_eq(&v->t, ((const type_arg *)a)->t) && v->p.mag <= MAG_LIMIT;
}

/* A tensor of exactly type t: an existing value, a new parameter, or a
 * creation op (positive: for a variance). */
static int tensor_of(gen *g, const ir_type *t, bool positive) {
    type_arg ta = {t};
    int v = positive ? -1 : pick(g, p_type, &ta);
    if (v >= 0 && chance(g, 70)) return v;
    v = chance(g, 60) ? new_param(g, t) : -1;
    if (v >= 0) return positive ? node(g, t, P(g, v), "abs(%s)", use(g, v)) : v;
    if (chance(g, 50) && numel(t) <= 12) return make_constant(g, t);
    return make_full(g, t, positive ? "0.5" : "1.5", 0.2);
}

static int em_composite(gen *g) {
    int k = rnd(g, 10);
    if (k < 4) {
        int x = any_float(g);
        if (x < 0 || (x = softmax_operand(g, x)) < 0) return -1;
        int r = g->v[x].t.rank;
        int64_t ax = r == 0 ? (chance(g, 50) ? 0 : -1) : write_axis(g, rnd(g, r), r);
        bool log = !chance(g, 70);
        props p = P(g, x);
        p.frag = true;
        p.mag = log ? p.mag + 0.5 : 0;
        return node(g, &g->v[x].t, p, "%s(%s) {axis = %lld}", log ? "log_softmax" : "softmax", use(g, x),
                    (long long)ax);
    }
    if (k < 9) { /* layer_norm / rms_norm over trailing axes */
        int one = 1;
        int x = pick(g, p_float_rank, &one);
        if (x < 0 || (x = tame(g, x)) < 0) return -1;
        bool rms = k >= 7;
        const ir_type xt = g->v[x].t;
        int r = xt.rank, cnt = 1;
        if (r >= 2 && chance(g, 35)) cnt++;
        if (r >= 3 && cnt == 2 && chance(g, 40)) cnt++;
        bool mask[IR_MAX_RANK] = {0};
        for (int i = r - cnt; i < r; i++) mask[i] = true;
        if (!rms && !stats_ok(g, x, mask)) return -1; /* layer_norm over copies of one float */
        int64_t axes[3];
        bool neg = chance(g, 60);
        for (int i = 0; i < cnt; i++) {
            int a = r - cnt + i;
            axes[i] = neg ? a - r : a;
        }
        if (cnt == 2 && chance(g, 20)) { int64_t s = axes[0]; axes[0] = axes[1]; axes[1] = s; }
        ir_type wt = {.dtype = xt.dtype, .rank = cnt};
        for (int i = 0; i < cnt; i++) wt.dim[i] = xt.dim[r - cnt + i];
        int nw = rnd(g, rms ? 2 : 3), w[2] = {-1, -1};
        double mag = 0.5 * lg((double)numel(&wt)) + 0.1;
        for (int i = 0; i < nw; i++) {
            if ((w[i] = tensor_of(g, &wt, false)) < 0) return -1;
            mag = i == 0 ? mag + P(g, w[i]).mag : (mag > P(g, w[i]).mag ? mag : P(g, w[i]).mag) + 0.31;
        }
        ir_str s = {0};
        ir_str_puts(&s, use(g, x));
        for (int i = 0; i < nw; i++) ir_str_printf(&s, ", %s", use(g, w[i]));
        static const char *const eps[] = {"1e-5", "1e-6", "0.001"};
        bool axes_default = cnt == 1 && chance(g, 30);
        ir_str at = {0};
        if (!axes_default) ir_str_printf(&at, "axes = %s", ints_str(axes, cnt));
        if (chance(g, 40)) ir_str_printf(&at, "%seps = %s", at.len ? ", " : "", eps[rnd(g, 3)]);
        props p = P(g, x);
        p.frag = true;
        p.mag = mag;
        const char *op = rms ? "rms_norm" : "layer_norm";
        int res = at.len ? node(g, &xt, p, "%s(%s) {%s}", op, s.buf, at.buf) : node(g, &xt, p, "%s(%s)", op, s.buf);
        ir_str_free(&s);
        ir_str_free(&at);
        return res;
    }
    /* batch_norm, inference form: channel axis 1 */
    int two = 2;
    int x = pick(g, p_float_rank, &two);
    if (x < 0 || (x = tame(g, x)) < 0) return -1;
    const ir_type xt = g->v[x].t;
    ir_type ct = {.dtype = xt.dtype, .rank = 1, .dim = {xt.dim[1]}};
    int nin = 2 + rnd(g, 3), in[4];
    double mag = P(g, x).mag + 2.6; /* / sqrt(var + eps) with var >= 0 */
    for (int i = 0; i < nin; i++) {
        if ((in[i] = tensor_of(g, &ct, i == 1)) < 0) return -1;
        if (i == 2) mag += P(g, in[i]).mag;
    }
    ir_str s = {0};
    ir_str_puts(&s, use(g, x));
    for (int i = 0; i < nin; i++) ir_str_printf(&s, ", %s", use(g, in[i]));
    props p = P(g, x);
    p.frag = true;
    p.mag = mag + 0.31;
    int res = node(g, &xt, p, "batch_norm(%s)", s.buf);
    ir_str_free(&s);
    return res;
}

/* ---- indexing ------------------------------------------------------------- */

/* An index tensor of shape t (integer dtype) with values in [0, D). */
static int indices(gen *g, ir_type t, int64_t D) {
    t.dtype = chance(g, 70) ? FUSEC_DTYPE_I64 : FUSEC_DTYPE_I32;
    int k = rnd(g, 3);
    props p = pr(false, lg((double)D), 0);
    if (k == 0 && t.rank >= 1) { /* remainder(iota * m, D): a spread of valid indices */
        int i = make_iota(g, &t, rnd(g, t.rank));
        int m = i < 0 ? -1 : node(g, &t, P(g, i), "mul(%s, %d)", use(g, i), 1 + rnd(g, 5));
        return m < 0 ? -1 : node(g, &t, p, "remainder(%s, %lld)", use(g, m), (long long)D);
    }
    int src = k == 1 ? new_param(g, &t) : -1;
    if (src < 0) {
        type_arg ta = {&t};
        src = pick(g, p_type, &ta);
    }
    if (src < 0) {
        if (t.rank == 0) return make_full(g, &t, "0", 0);
        src = make_iota(g, &t, rnd(g, t.rank));
        if (src < 0) return -1;
    }
    return node(g, &t, p, "clamp(%s) {min = 0, max = %lld}", use(g, src), (long long)(D - 1));
}

static int em_index(gen *g) {
    int one = 1, two = 2, k = rnd(g, 3);
    if (k == 0) { /* index_select: the selected axis repeats rows */
        int x = pick(g, p_rank, &one);
        if (x < 0) return -1;
        int r = g->v[x].t.rank, a = rnd(g, r);
        int64_t D = g->v[x].t.dim[a];
        if (D == 0) return -1;
        ir_type it = {.rank = 1, .dim = {range(g, 1, 8)}};
        ir_type t = g->v[x].t;
        t.dim[a] = it.dim[0];
        if (!fits(g, &t)) return -1;
        int idx = indices(g, it, D);
        if (idx < 0) return -1;
        props p = P(g, x);
        p.vary &= ~(1u << a);
        const char *xn = use(g, x);
        return node(g, &t, p, "index_select(%s, %s) {axis = %lld}", xn, use(g, idx), (long long)write_axis(g, a, r));
    }
    if (k == 1) { /* embedding */
        int w = pick(g, p_rank, &two);
        if (w < 0 || g->v[w].t.rank != 2 || g->v[w].t.dim[0] == 0) return -1;
        ir_type it = {.rank = 1 + rnd(g, 2)};
        for (int i = 0; i < it.rank; i++) it.dim[i] = range(g, 1, 5);
        ir_type t = it;
        t.dtype = g->v[w].t.dtype;
        t.dim[t.rank++] = g->v[w].t.dim[1];
        if (!fits(g, &t)) return -1;
        int idx = indices(g, it, g->v[w].t.dim[0]);
        if (idx < 0) return -1;
        props p = P(g, w);
        p.vary = (p.vary >> 1 & 1) ? 1u << it.rank : 0;
        const char *wn = use(g, w);
        return node(g, &t, p, "embedding(%s, %s)", wn, use(g, idx));
    }
    /* gather */
    int x = pick(g, p_rank, &one);
    if (x < 0) return -1;
    const ir_type *xt = &g->v[x].t;
    int r = xt->rank, a = rnd(g, r);
    if (xt->dim[a] == 0) return -1;
    ir_type it = {.rank = r};
    for (int i = 0; i < r; i++) it.dim[i] = i == a ? range(g, 1, 6) : (xt->dim[i] ? range(g, 1, xt->dim[i]) : 0);
    int64_t D = xt->dim[a];
    int idx = indices(g, it, D);
    if (idx < 0) return -1;
    ir_type t = with_dtype(&it, g->v[x].t.dtype);
    props p = P(g, x);
    p.vary &= ~(1u << a);
    const char *xn = use(g, x);
    return node(g, &t, p, "gather(%s, %s) {axis = %lld}", xn, use(g, idx), (long long)write_axis(g, a, r));
}

/* ---- contractions --------------------------------------------------------- */

typedef struct mm_arg {
    const ir_type *a;
} mm_arg;

static bool p_matmul_rhs(const gen *g, const gval *v, const void *arg) {
    const ir_type *a = ((const mm_arg *)arg)->a, *b = &v->t;
    if (b->dtype != a->dtype || b->rank < 1) return false;
    int64_t K = a->dim[a->rank - 1];
    if (b->rank == 1) return b->dim[0] == K && a->rank >= 1;
    if (b->dim[b->rank - 2] != K) return false;
    ir_type ba = {.rank = a->rank > 2 ? a->rank - 2 : 0}, bb = {.rank = b->rank - 2}, t;
    memcpy(ba.dim, a->dim, sizeof(int64_t) * (size_t)ba.rank);
    memcpy(bb.dim, b->dim, sizeof(int64_t) * (size_t)bb.rank);
    if (!ir_broadcast_shape(&ba, &bb, &t)) return false;
    int64_t M = a->rank >= 2 ? a->dim[a->rank - 2] : 1;
    return numel(&t) * M * b->dim[b->rank - 1] <= g->o->max_numel;
}

static bool varies_everywhere(const gen *g, int i) {
    int r = g->v[i].t.rank;
    unsigned full = r ? (1u << r) - 1 : 0;
    return (g->v[i].p.vary & full) == full;
}

static props contract_props(const gen *g, int a, int b, int64_t K) {
    double m = P(g, a).mag + P(g, b).mag + lg((double)K);
    bool all = varies_everywhere(g, a) && varies_everywhere(g, b);
    return pr(true, m, all ? ALL_VARY : 0);
}

static int em_contract(gen *g) {
    int one = 1;
    int a = pick(g, p_float_rank, &one);
    if (a < 0 || (a = tame(g, a)) < 0) return -1;
    const ir_type at = g->v[a].t;
    int r = at.rank;
    int64_t K = at.dim[r - 1];
    if (chance(g, 25)) { /* linear(x, w[N, K], [b]) */
        ir_type wt = {.dtype = at.dtype, .rank = 2, .dim = {range(g, 1, 6), K}};
        ir_type t = at;
        t.dim[r - 1] = wt.dim[0];
        if (!fits(g, &t)) return -1;
        int w = tensor_of(g, &wt, false);
        if (w < 0) return -1;
        ir_type bt = {.dtype = at.dtype, .rank = 1, .dim = {wt.dim[0]}};
        int b = chance(g, 50) ? tensor_of(g, &bt, false) : -1;
        props p = contract_props(g, a, w, K);
        if (b >= 0) p.mag = (p.mag > P(g, b).mag ? p.mag : P(g, b).mag) + 0.31;
        const char *an = use(g, a), *wn = use(g, w);
        if (b >= 0) return node(g, &t, p, "linear(%s, %s, %s)", an, wn, use(g, b));
        return node(g, &t, p, "linear(%s, %s)", an, wn);
    }
    mm_arg ma = {&at};
    int b = pick(g, p_matmul_rhs, &ma);
    if (b >= 0 && g->v[b].p.mag > MAG_LIMIT) b = -1;
    if (b < 0 || chance(g, 30)) {
        if (r >= 2 && chance(g, 50)) { /* a @ a^T */
            ir_type tt = at;
            tt.dim[r - 1] = at.dim[r - 2];
            tt.dim[r - 2] = K;
            int64_t perm[IR_MAX_RANK];
            for (int i = 0; i < r; i++) perm[i] = i;
            perm[r - 1] = r - 2, perm[r - 2] = r - 1;
            props p = P(g, a);
            p.vary = permute_bits(p.vary, perm, r);
            b = node(g, &tt, p, "transpose(%s) {dim0 = -2, dim1 = -1}", use(g, a));
        } else {
            ir_type bt = {.dtype = at.dtype, .rank = 2, .dim = {K, range(g, 1, 6)}};
            b = tensor_of(g, &bt, false);
        }
        if (b < 0 || !p_matmul_rhs(g, &g->v[b], &ma)) return -1;
    }
    const ir_type *bt = &g->v[b].t;
    ir_type ba = {.rank = r > 2 ? r - 2 : 0}, bb = {.rank = bt->rank > 2 ? bt->rank - 2 : 0}, t = {0};
    memcpy(ba.dim, at.dim, sizeof(int64_t) * (size_t)ba.rank);
    memcpy(bb.dim, bt->dim, sizeof(int64_t) * (size_t)bb.rank);
    ir_broadcast_shape(&ba, &bb, &t);
    if (r >= 2) t.dim[t.rank++] = at.dim[r - 2];
    if (bt->rank >= 2) t.dim[t.rank++] = bt->dim[bt->rank - 1];
    t.dtype = at.dtype;
    if (!fits(g, &t)) return -1;
    props p = contract_props(g, a, b, K);
    const char *an = use(g, a);
    return node(g, &t, p, "matmul(%s, %s)", an, use(g, b));
}

/* ---- the graph ------------------------------------------------------------ */

static void init_graph(gen *g) {
    static const ir_dtype f[] = {FUSEC_DTYPE_F32, FUSEC_DTYPE_F16, FUSEC_DTYPE_BF16, FUSEC_DTYPE_F64};
    static const int fw[] = {50, 15, 15, 20};
    g->fdt = f[weighted(g, fw, 4)];
    static const int rw[] = {5, 20, 30, 30, 15};
    ir_type *b = &g->base;
    b->rank = weighted(g, rw, 5);
    for (int i = 0; i < b->rank; i++) b->dim[i] = rand_dim(g);
    while (numel(b) > g->o->max_numel / 4) {
        int i = rnd(g, b->rank);
        b->dim[i] = b->dim[i] > 1 ? b->dim[i] / 2 : 1;
    }
    g->zero_ok = chance(g, 12);
    if (g->zero_ok && b->rank > 0) b->dim[rnd(g, b->rank)] = 0;
    int np = 1 + rnd(g, g->o->max_inputs < 2 ? g->o->max_inputs : 2);
    for (int i = 0; i < np; i++) {
        ir_type t;
        derived_shape(g, &t);
        t.dtype = chance(g, 65) ? g->fdt : rand_dt(g);
        new_param(g, &t);
    }
}

typedef int (*emitter)(gen *);

char *gen_graph(uint64_t seed, const gen_opts *opts) {
    gen_opts def;
    if (!opts) {
        gen_opts_default(&def);
        opts = &def;
    }
    gen *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->s = seed * 0x2545f4914f6cdd1dull + 0x1234567;
    g->o = opts;
    g->st = opts->stats;
    init_graph(g);

    static const emitter em[] = {em_unary_float, em_unary_numeric, em_binary, em_logical, em_compare,
                                 em_where, em_masked_fill, em_cast, em_reduce, em_move, em_create,
                                 em_mask, em_composite, em_index, em_contract};
    static const int w[] = {14, 6, 18, 3, 5, 5, 3, 5, 11, 16, 3, 5, 7, 3, 3};
    int n = (int)(sizeof em / sizeof em[0]);
    int lo = opts->min_nodes, hi = opts->max_nodes < lo ? lo : opts->max_nodes;
    int target = lo + rnd(g, hi - lo + 1);
    for (int tries = 0; g->nnodes < target && tries < 400 && g->nv < GEN_MAXV - 24; tries++)
        em[weighted(g, w, n)](g);
    while (g->nnodes == 0 && room(g)) em_unary_numeric(g); /* a body is never empty */

    /* results: the last visible node, then unused values, then anything */
    int last = g->nv - 1;
    while (last > 0 && (g->v[last].param || g->v[last].hidden)) last--;
    int nres = 1;
    if (opts->max_results > 1 && chance(g, 45)) nres++;
    if (opts->max_results > 2 && nres == 2 && chance(g, 40)) nres++;
    int res[3] = {last}, nr = 1;
    for (int k = 1; k < nres; k++) {
        int cand[GEN_MAXV], nc = 0;
        for (int i = 0; i < g->nv; i++) {
            bool taken = false;
            for (int j = 0; j < nr; j++) taken |= res[j] == i;
            if (!taken && !g->v[i].param && !g->v[i].hidden && g->v[i].uses == 0) cand[nc++] = i;
        }
        if (nc == 0)
            for (int i = 0; i < g->nv; i++)
                if (!g->v[i].param && !g->v[i].hidden) cand[nc++] = i;
        if (nc == 0) break;
        res[nr++] = chance(g, 3) ? res[0] : cand[rnd(g, nc)];
    }
    if (nr > 1) feat(g, GEN_F_MULTI_RESULT);

    ir_str out = {0};
    ir_str_printf(&out, "# generated by tests/diff/gen.c, seed %llu\nfunc @g%llu(", (unsigned long long)seed,
                  (unsigned long long)seed);
    for (int i = 0; i < g->nparams; i++) {
        const gval *p = &g->v[g->param[i]];
        ir_str_printf(&out, "%s%s: %s", i ? ", " : "", p->name, tstr(&p->t));
    }
    ir_str_puts(&out, ") -> ");
    if (nr > 1) ir_str_putc(&out, '(');
    for (int i = 0; i < nr; i++) ir_str_printf(&out, "%s%s", i ? ", " : "", tstr(&g->v[res[i]].t));
    if (nr > 1) ir_str_putc(&out, ')');
    ir_str_printf(&out, " {\n%s  return ", g->body.buf ? g->body.buf : "");
    for (int i = 0; i < nr; i++) ir_str_printf(&out, "%s%s", i ? ", " : "", g->v[res[i]].name);
    ir_str_puts(&out, "\n}\n");
    if (g->st) {
        g->st->graphs++;
        g->st->nodes += g->nnodes;
        g->st->params += g->nparams;
        g->st->results += nr;
    }
    ir_str_free(&g->body);
    free(g);
    if (out.oom) {
        ir_str_free(&out);
        return NULL;
    }
    return ir_str_take(&out);
}
