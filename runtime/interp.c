/*
 * interp.c - the reference interpreter: runs a graph op by op on dense
 * row-major host tensors.  It is the oracle every backend is compared with,
 * so it favours being obviously right over being fast.
 *
 * The driver (rt_interp_run) checks the inputs against the parameters, then
 * walks the nodes in program order.  Every value of the graph has a slot
 * indexed by its id: parameters borrow the caller's input, literals are
 * materialized as 0-d tensors of their dtype, node results are allocated
 * here (zeroed, at least one byte so size-0 tensors are ordinary).  Before
 * running, one pass records each value's last use; a value is freed right
 * after the node that uses it last, so peak memory follows the live set.
 * Results are copied out (a value may be returned twice, or be a parameter).
 * On any error everything allocated so far is freed.
 *
 * Kernels are found through ONE table indexed by ir_op (designated
 * initializers); rt_interp_run refuses to run if any op lacks a kernel, so a
 * new row in ops.def without a kernel fails every interpreter test at once.
 * This file holds the elementwise (whose per-element math is ir/eval.c,
 * shared with the plan executor and constant folding), reduction,
 * normalisation and creation kernels; runtime/interp_nn.c holds data movement, indexing, contractions,
 * windows and attention (runtime/interp_kernels.h).
 *
 * Numerics (spec §5; the PyTorch 1.13 CPU behaviour where the spec is silent):
 *  - Floats are computed in double and rounded once when stored
 *    (ir_store_f: f32 by C conversion, f16/bf16 to nearest even).  For f16
 *    and bf16 this is the "computed in f32" of the spec, done with more
 *    precision; for f32 it can differ from PyTorch only where f32
 *    intermediates would overflow or underflow (sigmoid(-100) is a tiny
 *    subnormal here, 0 in PyTorch).
 *  - Float sums (sum, mean, var, softmax, norms) accumulate in double with
 *    Neumaier compensation, so f64 results are accurate near 1 ulp.
 *  - Integers are computed in int64 through uint64_t (no signed overflow)
 *    and wrap to the storage width on store, as PyTorch does.  Integer div
 *    truncates toward zero; remainder has the sign of the divisor; division
 *    or remainder by zero is a run-time error.  INT_MIN / -1 wraps to
 *    INT_MIN, INT_MIN % -1 is 0.  Integer pow is exact with wrap-around; a
 *    negative exponent gives trunc(1 / base^|e|), i.e. 1 for base 1, +-1
 *    for base -1 and 0 otherwise (PyTorch's tensor-exponent behaviour).
 *  - cast float -> int truncates toward zero, NaN -> 0, values beyond the
 *    int64 range saturate, then the int64 wraps to the target width (so
 *    300.0 -> i8 is 44 and -1.5 -> u8 is 255, as PyTorch does on x86 for
 *    every finite value within +-2^31; PyTorch leaves NaN/inf/overflow
 *    undefined).  To bool is `!= 0` (NaN is true); bool -> x gives 0 / 1.
 *  - sign(NaN) = 0 and sign(-0.0) = +0.0, relu(-0.0) = -0.0, relu(NaN) =
 *    NaN (PyTorch 1.13).  maximum/minimum propagate NaN; on equal operands
 *    (-0.0 vs 0.0) they return the first.  clamp: NaN input stays NaN, a
 *    NaN bound is ignored, min > max gives max (x<lo?lo:x, then >hi?hi:x).
 *  - Float remainder is fmod(a, b) moved into b's sign (remainder(-5, inf)
 *    = inf, remainder(x, 0) = NaN), exactly PyTorch's formula.
 *  - round is half to even.  softmax of an all -inf row is NaN.  max/min
 *    and argmax/argmin: NaN wins, and the first NaN / first extreme index
 *    is returned on ties.  var divides by max(0, N - correction).
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/interp.h"
#include "runtime/interp_kernels.h"

#define OPNAME(n) (ir_op_get((n)->op)->name)

/* ---- tensors and element access ----------------------------------- */

static int64_t numel_of(const fusec_tensor *t) {
    int64_t k = 1;
    for (int i = 0; i < t->rank; i++) k *= t->shape[i];
    return k;
}

/* Contiguous (row-major) strides of t, in elements. */
static void strides_of(const fusec_tensor *t, int64_t st[IR_MAX_RANK]) {
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= t->shape[i];
    }
}

/* A loaded element: floats as double, integers and bool as int64. */
typedef ir_scalar rt_num;

static rt_num load_num(const fusec_tensor *t, int64_t i) {
    rt_num v;
    if (ir_dtype_is_float(t->dtype)) v.f = ir_load_f(t->dtype, t->data, i);
    else v.i = ir_load_i(t->dtype, t->data, i);
    return v;
}

/* Store in t's domain: ir_store_f rounds to f16/bf16/f32, ir_store_i
 * wraps to the integer width (bool: != 0). */
static void store_num(const fusec_tensor *t, int64_t i, rt_num v) {
    if (ir_dtype_is_float(t->dtype)) ir_store_f(t->dtype, t->data, i, v.f);
    else ir_store_i(t->dtype, t->data, i, v.i);
}

/* int64 arithmetic that wraps instead of overflowing (uint64 is modular;
 * the conversion back is implementation-defined, never undefined, and
 * two's complement on every compiler we support). */
static int64_t wrap(uint64_t u) { return (int64_t)u; }
static int64_t iadd(int64_t a, int64_t b) { return wrap((uint64_t)a + (uint64_t)b); }
static int64_t imul(int64_t a, int64_t b) { return wrap((uint64_t)a * (uint64_t)b); }

/* ---- iteration with broadcasting ----------------------------------- */

/* An odometer over `shape` that keeps one element offset per operand.
 * stride[k][d] is operand k's step along dim d: 0 where the operand is
 * broadcast (or, for reductions, where the dim is reduced away). */
#define RT_MAX_OPS 4
typedef struct rt_iter {
    int rank, nops;
    int64_t shape[IR_MAX_RANK];
    int64_t stride[RT_MAX_OPS][IR_MAX_RANK];
    int64_t idx[IR_MAX_RANK];
    int64_t off[RT_MAX_OPS];
} rt_iter;

static void iter_init(rt_iter *it, const fusec_tensor *space, int nops) {
    memset(it, 0, sizeof *it);
    it->rank = space->rank;
    it->nops = nops;
    memcpy(it->shape, space->shape, sizeof(int64_t) * (size_t)space->rank);
}

/* Set operand k to tensor t broadcast into the iteration space (NumPy
 * rules: align from the right, a size-1 or missing dim stretches). */
static void iter_bcast(rt_iter *it, int k, const fusec_tensor *t) {
    int64_t st[IR_MAX_RANK];
    strides_of(t, st);
    int lead = it->rank - t->rank;
    for (int d = 0; d < it->rank; d++) {
        int td = d - lead;
        it->stride[k][d] = (td < 0 || t->shape[td] == 1) ? 0 : st[td];
    }
}

static void iter_next(rt_iter *it) {
    for (int d = it->rank - 1; d >= 0; d--) {
        for (int k = 0; k < it->nops; k++) it->off[k] += it->stride[k][d];
        if (++it->idx[d] < it->shape[d]) return;
        for (int k = 0; k < it->nops; k++) it->off[k] -= it->stride[k][d] * it->shape[d];
        it->idx[d] = 0;
    }
}

/* ---- elementwise ---------------------------------------------------- */

/* Unary and binary elementwise ops (and comparisons).  The domain is the
 * operands' dtype (they share one); the result is stored in out's. */
static bool k_elementwise(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    ir_ew e;
    ir_ew_init(&e, n);
    rt_iter it;
    iter_init(&it, out, n->nin);
    for (int k = 0; k < n->nin; k++) iter_bcast(&it, k, &in[k]);
    int64_t total = numel_of(out);
    for (int64_t i = 0; i < total; i++, iter_next(&it)) {
        rt_num x[2], r;
        for (int k = 0; k < n->nin; k++) x[k] = load_num(&in[k], it.off[k]);
        if (!ir_ew_eval(&e, x, &r, d)) return false;
        store_num(out, i, r);
    }
    return true;
}

/* cast: the conversion rules are those of ir_store_f / ir_store_i (see
 * the header comment), applied to the value loaded in its own domain. */
static bool k_cast(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)n, (void)d;
    int64_t total = numel_of(out);
    bool from_float = ir_dtype_is_float(in[0].dtype);
    for (int64_t i = 0; i < total; i++) {
        if (from_float) ir_store_f(out->dtype, out->data, i, ir_load_f(in[0].dtype, in[0].data, i));
        else ir_store_i(out->dtype, out->data, i, ir_load_i(in[0].dtype, in[0].data, i));
    }
    return true;
}

/* where(cond, a, b) and masked_fill(x, mask): a select, so elements are
 * copied as bytes (NaN payloads and -0.0 pass through untouched). */
static void select_bytes(const fusec_tensor *cond, const fusec_tensor *a, const fusec_tensor *b,
                         fusec_tensor *out) {
    size_t es = ir_dtype_size(out->dtype);
    rt_iter it;
    iter_init(&it, out, 3);
    iter_bcast(&it, 0, cond);
    iter_bcast(&it, 1, a);
    iter_bcast(&it, 2, b);
    int64_t total = numel_of(out);
    unsigned char *o = out->data;
    for (int64_t i = 0; i < total; i++, iter_next(&it)) {
        bool take_a = ir_load_i(cond->dtype, cond->data, it.off[0]) != 0;
        const unsigned char *src = take_a ? (const unsigned char *)a->data + (size_t)it.off[1] * es
                                          : (const unsigned char *)b->data + (size_t)it.off[2] * es;
        memcpy(o + (size_t)i * es, src, es);
    }
}

static bool k_where(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)n, (void)d;
    select_bytes(&in[0], &in[1], &in[2], out);
    return true;
}

static bool k_masked_fill(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)d;
    uint64_t buf[2] = {0};
    fusec_tensor fill = {.dtype = out->dtype, .rank = 0, .data = buf};
    ir_store_f(fill.dtype, fill.data, 0, ir_attr_f(n, "value"));
    select_bytes(&in[1], &fill, &in[0], out);
    return true;
}

/* ---- reductions ------------------------------------------------------ */

/* How a reduction maps its input onto its output.  it iterates over the
 * input with operand 0 = the input's own offset and operand 1 = the
 * output element it contributes to (stride 0 along reduced dims, so the
 * keepdim and dropped-dim layouts come out the same).  count = elements
 * per output.  Row-major iteration visits each output's inputs in
 * increasing index order along the reduced dims, which is what "first
 * index on ties" needs. */
typedef struct rt_reduce {
    rt_iter it;
    int64_t count, nin, nout;
} rt_reduce;

static bool reduce_setup(const ir_node *n, const fusec_tensor *x, const fusec_tensor *out,
                         rt_reduce *r, ir_diag *d) {
    bool mask[IR_MAX_RANK] = {0}, all = true;
    int64_t ax_one = 0;
    const int64_t *axes = NULL;
    int cnt = 0;
    if (n->op == IR_OP_ARGMAX || n->op == IR_OP_ARGMIN) {
        if (ir_attr_has(n, "axis")) {
            ax_one = ir_attr_i(n, "axis");
            axes = &ax_one;
            cnt = 1;
            all = false;
        }
    } else if (ir_attr_has(n, "axes")) {
        axes = ir_attr_ints(n, "axes", &cnt);
        all = false;
    }
    for (int i = 0; i < x->rank; i++) mask[i] = all;
    for (int i = 0; i < cnt && x->rank > 0; i++) { /* a 0-d input reduces nothing */
        int a;
        if (!ir_norm_axis(axes[i], x->rank, &a)) {
            ir_error(d, n->loc, "%s: axis %lld out of range", OPNAME(n), (long long)axes[i]);
            return false;
        }
        mask[a] = true;
    }
    int64_t ost[IR_MAX_RANK];
    strides_of(out, ost);
    bool keep = ir_attr_i(n, "keepdim") != 0;
    iter_init(&r->it, x, 2);
    iter_bcast(&r->it, 0, x);
    r->count = 1;
    for (int i = 0, j = 0; i < x->rank; i++) {
        if (mask[i]) {
            r->count *= x->shape[i];
            r->it.stride[1][i] = 0;
            if (keep) j++;
        } else {
            r->it.stride[1][i] = j < out->rank ? ost[j] : 0;
            j++;
        }
    }
    r->nin = numel_of(x);
    r->nout = numel_of(out);
    return true;
}

static bool oom(const ir_node *n, ir_diag *d) {
    ir_error(d, n->loc, "%s: out of memory", OPNAME(n));
    return false;
}

/* Integer and bool inputs: sum and prod in int64 with wrap-around (the
 * result is i64, as in PyTorch), max and min in the input's dtype. */
static bool reduce_int(const ir_node *n, const fusec_tensor *x, fusec_tensor *out, rt_reduce *r,
                       ir_diag *d) {
    int64_t *acc = malloc((size_t)(r->nout > 0 ? r->nout : 1) * sizeof *acc);
    if (!acc) return oom(n, d);
    int64_t init = n->op == IR_OP_PROD ? 1 : n->op == IR_OP_MAX ? INT64_MIN : n->op == IR_OP_MIN ? INT64_MAX : 0;
    for (int64_t o = 0; o < r->nout; o++) acc[o] = init;
    for (int64_t i = 0; i < r->nin; i++, iter_next(&r->it)) {
        int64_t *a = &acc[r->it.off[1]], v = ir_load_i(x->dtype, x->data, r->it.off[0]);
        switch (n->op) {
        case IR_OP_PROD: *a = imul(*a, v); break;
        case IR_OP_MAX: if (v > *a) *a = v; break;
        case IR_OP_MIN: if (v < *a) *a = v; break;
        default: *a = iadd(*a, v); break; /* sum; mean and var are float-only */
        }
    }
    for (int64_t o = 0; o < r->nout; o++) ir_store_i(out->dtype, out->data, o, acc[o]);
    free(acc);
    return true;
}

/* Float inputs, accumulated in double: sums compensated, max/min with
 * NaN winning, var in two passes (squared deviations from the mean,
 * divided by max(0, N - correction): 0/0 is NaN and x/0 is inf, as in
 * PyTorch). */
static bool reduce_float(const ir_node *n, const fusec_tensor *x, fusec_tensor *out, rt_reduce *r,
                         ir_diag *d) {
    size_t nacc = (size_t)(r->nout > 0 ? r->nout : 1);
    ir_ksum *acc = calloc(nacc, sizeof *acc); /* prod, max, min use .s alone */
    if (!acc) return oom(n, d);
    ir_op op = n->op;
    for (int64_t o = 0; o < r->nout; o++)
        acc[o].s = op == IR_OP_PROD ? 1 : op == IR_OP_MAX ? -INFINITY : op == IR_OP_MIN ? INFINITY : 0;
    for (int64_t i = 0; i < r->nin; i++, iter_next(&r->it)) {
        ir_ksum *a = &acc[r->it.off[1]];
        double v = ir_load_f(x->dtype, x->data, r->it.off[0]);
        switch (op) {
        case IR_OP_PROD: a->s *= v; break;
        case IR_OP_MAX: if (!isnan(a->s) && (isnan(v) || v > a->s)) a->s = v; break;
        case IR_OP_MIN: if (!isnan(a->s) && (isnan(v) || v < a->s)) a->s = v; break;
        default: ir_ksum_add(a, v); break; /* sum, mean, var */
        }
    }
    double count = (double)r->count;
    if (op == IR_OP_VAR) {
        double *mean = malloc(nacc * sizeof *mean);
        if (!mean) {
            free(acc);
            return oom(n, d);
        }
        for (int64_t o = 0; o < r->nout; o++) {
            mean[o] = ir_ksum_get(&acc[o]) / count;
            acc[o] = (ir_ksum){0, 0};
        }
        if (!reduce_setup(n, x, out, r, d)) {
            free(mean);
            free(acc);
            return false;
        }
        for (int64_t i = 0; i < r->nin; i++, iter_next(&r->it)) {
            int64_t o = r->it.off[1];
            double dev = ir_load_f(x->dtype, x->data, r->it.off[0]) - mean[o];
            ir_ksum_add(&acc[o], dev * dev);
        }
        free(mean);
        count -= (double)ir_attr_i(n, "correction");
        if (count < 0) count = 0;
    }
    for (int64_t o = 0; o < r->nout; o++) {
        double v = acc[o].s;
        if (op == IR_OP_SUM) v = ir_ksum_get(&acc[o]);
        else if (op == IR_OP_MEAN || op == IR_OP_VAR) v = ir_ksum_get(&acc[o]) / count;
        ir_store_f(out->dtype, out->data, o, v);
    }
    free(acc);
    return true;
}

/* sum, mean, prod, max, min, var.  Over an empty axis sum is 0, prod 1,
 * mean and var NaN; max and min have no identity (ir_build rejects them,
 * checked again here). */
static bool k_reduce(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    rt_reduce r;
    if (!reduce_setup(n, &in[0], out, &r, d)) return false;
    if ((n->op == IR_OP_MAX || n->op == IR_OP_MIN) && r.count == 0 && r.nout > 0) {
        ir_error(d, n->loc, "%s: reduction over an empty axis has no identity", OPNAME(n));
        return false;
    }
    if (ir_dtype_is_float(in[0].dtype)) return reduce_float(n, &in[0], out, &r, d);
    return reduce_int(n, &in[0], out, &r, d);
}

/* argmax / argmin: the index along `axis`, or into the flattened input when
 * axis is absent.  NaN counts as the extreme (the first NaN wins); on ties
 * the first index wins because only a strictly better value replaces. */
static bool k_argreduce(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    const fusec_tensor *x = &in[0];
    rt_reduce r;
    if (!reduce_setup(n, x, out, &r, d)) return false;
    if (r.count == 0 && r.nout > 0) {
        ir_error(d, n->loc, "%s: reduction over an empty axis has no identity", OPNAME(n));
        return false;
    }
    int axis = -1;
    if (ir_attr_has(n, "axis") && x->rank > 0) ir_norm_axis(ir_attr_i(n, "axis"), x->rank, &axis);
    bool is_max = n->op == IR_OP_ARGMAX, is_float = ir_dtype_is_float(x->dtype);
    size_t nacc = (size_t)(r.nout > 0 ? r.nout : 1);
    rt_num *best = calloc(nacc, sizeof *best);
    int64_t *where = malloc(nacc * sizeof *where);
    if (!best || !where) {
        free(best);
        free(where);
        return oom(n, d);
    }
    for (int64_t o = 0; o < r.nout; o++) where[o] = -1;
    for (int64_t i = 0; i < r.nin; i++, iter_next(&r.it)) {
        int64_t o = r.it.off[1];
        int64_t pos = axis >= 0 ? r.it.idx[axis] : i;
        rt_num v = load_num(x, r.it.off[0]);
        bool take;
        if (where[o] < 0) take = true;
        else if (is_float)
            take = !isnan(best[o].f) && (isnan(v.f) || (is_max ? v.f > best[o].f : v.f < best[o].f));
        else take = is_max ? v.i > best[o].i : v.i < best[o].i;
        if (take) {
            best[o] = v;
            where[o] = pos;
        }
    }
    for (int64_t o = 0; o < r.nout; o++) ir_store_i(out->dtype, out->data, o, where[o]);
    free(best);
    free(where);
    return true;
}

/* ---- normalisation -------------------------------------------------- */

/* softmax / log_softmax along one axis, max-subtracted.  A row of all
 * -inf has max -inf, so x - max is NaN and the row is NaN (as PyTorch);
 * a NaN anywhere in a row makes the whole row NaN. */
static bool k_softmax(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)d;
    const fusec_tensor *x = &in[0];
    int axis = 0;
    int64_t len = 1, inner = 1, outer = 1;
    if (x->rank > 0) {
        ir_norm_axis(ir_attr_i(n, "axis"), x->rank, &axis);
        len = x->shape[axis];
        for (int i = 0; i < axis; i++) outer *= x->shape[i];
        for (int i = axis + 1; i < x->rank; i++) inner *= x->shape[i];
    }
    bool log_form = n->op == IR_OP_LOG_SOFTMAX;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < inner; j++) {
            int64_t base = o * len * inner + j;
            double mx = -INFINITY;
            for (int64_t k = 0; k < len; k++) {
                double v = ir_load_f(x->dtype, x->data, base + k * inner);
                if (!isnan(mx) && (isnan(v) || v > mx)) mx = v;
            }
            ir_ksum s = {0, 0};
            for (int64_t k = 0; k < len; k++) ir_ksum_add(&s, exp(ir_load_f(x->dtype, x->data, base + k * inner) - mx));
            double total = ir_ksum_get(&s), lse = log(total);
            for (int64_t k = 0; k < len; k++) {
                int64_t at = base + k * inner;
                double v = ir_load_f(x->dtype, x->data, at) - mx;
                ir_store_f(out->dtype, out->data, at, log_form ? v - lse : exp(v) / total);
            }
        }
    }
    return true;
}

/* layer_norm and rms_norm normalize over the trailing `axes` (ir_build
 * checks they are trailing, and that weight and bias have exactly the
 * normalized shape, so element i uses weight[i % m]).  Statistics are
 * two-pass in double. */
static bool k_trailing_norm(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)d;
    const fusec_tensor *x = &in[0];
    int cnt;
    ir_attr_ints(n, "axes", &cnt);
    int64_t m = 1;
    for (int i = x->rank - cnt; i < x->rank; i++) m *= x->shape[i];
    int64_t total = numel_of(x);
    if (m == 0 || total == 0) return true;
    double eps = ir_attr_f(n, "eps");
    bool rms = n->op == IR_OP_RMS_NORM;
    const fusec_tensor *w = n->nin > 1 ? &in[1] : NULL, *b = n->nin > 2 ? &in[2] : NULL;
    for (int64_t base = 0; base < total; base += m) {
        double mean = 0;
        if (!rms) {
            ir_ksum s = {0, 0};
            for (int64_t j = 0; j < m; j++) ir_ksum_add(&s, ir_load_f(x->dtype, x->data, base + j));
            mean = ir_ksum_get(&s) / (double)m;
        }
        ir_ksum sq = {0, 0};
        for (int64_t j = 0; j < m; j++) {
            double dev = ir_load_f(x->dtype, x->data, base + j) - mean;
            ir_ksum_add(&sq, dev * dev);
        }
        double rstd = 1.0 / sqrt(ir_ksum_get(&sq) / (double)m + eps);
        for (int64_t j = 0; j < m; j++) {
            double y = (ir_load_f(x->dtype, x->data, base + j) - mean) * rstd;
            if (w) y *= ir_load_f(w->dtype, w->data, j);
            if (b) y += ir_load_f(b->dtype, b->data, j);
            ir_store_f(out->dtype, out->data, base + j, y);
        }
    }
    return true;
}

/* batch_norm, inference form: per channel c (axis 1),
 * y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]. */
static bool k_batch_norm(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)d;
    const fusec_tensor *x = &in[0];
    int64_t ch = x->shape[1], inner = 1;
    for (int i = 2; i < x->rank; i++) inner *= x->shape[i];
    double eps = ir_attr_f(n, "eps");
    int64_t total = numel_of(x);
    for (int64_t i = 0; i < total; i++) {
        int64_t c = (i / inner) % ch;
        double mean = ir_load_f(in[1].dtype, in[1].data, c);
        double var = ir_load_f(in[2].dtype, in[2].data, c);
        double y = (ir_load_f(x->dtype, x->data, i) - mean) / sqrt(var + eps);
        if (n->nin > 3) y *= ir_load_f(in[3].dtype, in[3].data, c);
        if (n->nin > 4) y += ir_load_f(in[4].dtype, in[4].data, c);
        ir_store_f(out->dtype, out->data, i, y);
    }
    return true;
}

/* ---- creation --------------------------------------------------------- */

/* full, iota, constant: values converted to the dtype as cast does. */
static bool k_full(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)in, (void)d;
    double v = ir_attr_f(n, "value");
    int64_t total = numel_of(out);
    for (int64_t i = 0; i < total; i++) ir_store_f(out->dtype, out->data, i, v);
    return true;
}

static bool k_iota(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)in;
    int axis = 0;
    if (out->rank > 0 && !ir_norm_axis(ir_attr_i(n, "axis"), out->rank, &axis)) {
        ir_error(d, n->loc, "%s: axis out of range", OPNAME(n));
        return false;
    }
    int64_t inner = 1, len = out->rank > 0 ? out->shape[axis] : 1;
    for (int i = axis + 1; i < out->rank; i++) inner *= out->shape[i];
    int64_t total = numel_of(out);
    for (int64_t i = 0; i < total; i++) ir_store_i(out->dtype, out->data, i, (i / inner) % len);
    return true;
}

static bool k_constant(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)in;
    int cnt;
    const double *data = ir_attr_floats(n, "data", &cnt);
    int64_t total = numel_of(out);
    if (cnt != total) {
        ir_error(d, n->loc, "%s: data has %d values, the type needs %lld", OPNAME(n), cnt,
                 (long long)total);
        return false;
    }
    for (int64_t i = 0; i < total; i++) ir_store_f(out->dtype, out->data, i, data[i]);
    return true;
}

/* ---- the dispatch table ---------------------------------------------- */

static const rt_kernel_fn kernels[IR_OP_COUNT] = {
    [IR_OP_NEG] = k_elementwise,        [IR_OP_ABS] = k_elementwise,
    [IR_OP_SIGN] = k_elementwise,       [IR_OP_EXP] = k_elementwise,
    [IR_OP_EXP2] = k_elementwise,       [IR_OP_LOG] = k_elementwise,
    [IR_OP_LOG2] = k_elementwise,       [IR_OP_LOG1P] = k_elementwise,
    [IR_OP_EXPM1] = k_elementwise,      [IR_OP_SQRT] = k_elementwise,
    [IR_OP_RSQRT] = k_elementwise,      [IR_OP_RECIPROCAL] = k_elementwise,
    [IR_OP_SIN] = k_elementwise,        [IR_OP_COS] = k_elementwise,
    [IR_OP_TAN] = k_elementwise,        [IR_OP_TANH] = k_elementwise,
    [IR_OP_SIGMOID] = k_elementwise,    [IR_OP_ERF] = k_elementwise,
    [IR_OP_RELU] = k_elementwise,       [IR_OP_GELU] = k_elementwise,
    [IR_OP_SILU] = k_elementwise,       [IR_OP_FLOOR] = k_elementwise,
    [IR_OP_CEIL] = k_elementwise,       [IR_OP_ROUND] = k_elementwise,
    [IR_OP_NOT] = k_elementwise,        [IR_OP_ISNAN] = k_elementwise,
    [IR_OP_ISINF] = k_elementwise,      [IR_OP_CAST] = k_cast,
    [IR_OP_CLAMP] = k_elementwise,

    [IR_OP_ADD] = k_elementwise,        [IR_OP_SUB] = k_elementwise,
    [IR_OP_MUL] = k_elementwise,        [IR_OP_DIV] = k_elementwise,
    [IR_OP_POW] = k_elementwise,        [IR_OP_MAXIMUM] = k_elementwise,
    [IR_OP_MINIMUM] = k_elementwise,    [IR_OP_REMAINDER] = k_elementwise,
    [IR_OP_AND] = k_elementwise,        [IR_OP_OR] = k_elementwise,
    [IR_OP_XOR] = k_elementwise,        [IR_OP_EQ] = k_elementwise,
    [IR_OP_NE] = k_elementwise,         [IR_OP_LT] = k_elementwise,
    [IR_OP_LE] = k_elementwise,         [IR_OP_GT] = k_elementwise,
    [IR_OP_GE] = k_elementwise,         [IR_OP_WHERE] = k_where,
    [IR_OP_MASKED_FILL] = k_masked_fill,

    [IR_OP_SUM] = k_reduce,             [IR_OP_MEAN] = k_reduce,
    [IR_OP_PROD] = k_reduce,            [IR_OP_MAX] = k_reduce,
    [IR_OP_MIN] = k_reduce,             [IR_OP_VAR] = k_reduce,
    [IR_OP_ARGMAX] = k_argreduce,       [IR_OP_ARGMIN] = k_argreduce,

    [IR_OP_SOFTMAX] = k_softmax,        [IR_OP_LOG_SOFTMAX] = k_softmax,
    [IR_OP_LAYER_NORM] = k_trailing_norm, [IR_OP_RMS_NORM] = k_trailing_norm,
    [IR_OP_BATCH_NORM] = k_batch_norm,

    [IR_OP_RESHAPE] = rt_k_copy,        [IR_OP_SQUEEZE] = rt_k_copy,
    [IR_OP_UNSQUEEZE] = rt_k_copy,      [IR_OP_PERMUTE] = rt_k_permute,
    [IR_OP_TRANSPOSE] = rt_k_permute,   [IR_OP_EXPAND] = rt_k_expand,
    [IR_OP_SLICE] = rt_k_slice,         [IR_OP_CONCAT] = rt_k_concat,
    [IR_OP_PAD] = rt_k_pad,             [IR_OP_INDEX_SELECT] = rt_k_index_select,
    [IR_OP_EMBEDDING] = rt_k_embedding, [IR_OP_GATHER] = rt_k_gather,

    [IR_OP_FULL] = k_full,              [IR_OP_IOTA] = k_iota,
    [IR_OP_CONSTANT] = k_constant,      [IR_OP_TRIU] = rt_k_tri,
    [IR_OP_TRIL] = rt_k_tri,

    [IR_OP_MATMUL] = rt_k_matmul,       [IR_OP_LINEAR] = rt_k_linear,
    [IR_OP_CONV2D] = rt_k_conv2d,       [IR_OP_MAX_POOL2D] = rt_k_pool2d,
    [IR_OP_AVG_POOL2D] = rt_k_pool2d,   [IR_OP_ADAPTIVE_AVG_POOL2D] = rt_k_adaptive_avg_pool2d,
    [IR_OP_SDPA] = rt_k_sdpa,
};

/* ---- the driver ------------------------------------------------------- */

/* One value's storage during a run. */
typedef struct rt_slot {
    fusec_tensor t;
    bool owned; /* t.data was allocated here */
    int last;   /* index of the last node that reads it; INT_MAX for results */
} rt_slot;

typedef struct rt_run {
    const ir_graph *g;
    ir_diag *d;
    rt_slot *slots;
    int nslots;
} rt_run;

static void slot_release(rt_slot *s) {
    if (s->owned) free(s->t.data);
    s->t.data = NULL;
    s->owned = false;
}

/* Allocate a zeroed tensor of type t; at least one byte, so a size-0
 * tensor has a real pointer.  False on overflow or out of memory. */
static bool tensor_alloc(fusec_tensor *out, const ir_type *t) {
    out->data = NULL;
    out->dtype = t->dtype;
    out->rank = t->rank;
    int64_t k = 1;
    for (int i = 0; i < t->rank; i++) {
        out->shape[i] = t->dim[i];
        if (t->dim[i] < 0 || (t->dim[i] > 0 && k > INT64_MAX / t->dim[i])) return false;
        k *= t->dim[i];
    }
    size_t es = ir_dtype_size(t->dtype);
    if (es == 0 || (uint64_t)k > SIZE_MAX / es) return false;
    out->data = calloc(k ? (size_t)k : 1, es);
    return out->data != NULL;
}

static void type_of_tensor(const fusec_tensor *t, ir_type *ty) {
    ty->dtype = t->dtype;
    ty->rank = t->rank;
    for (int i = 0; i < t->rank; i++) ty->dim[i] = t->shape[i];
}

/* An input must match its parameter's type exactly. */
static bool check_input(const ir_value *p, const fusec_tensor *t, ir_diag *d) {
    ir_str want = {0}, got = {0}, name = {0};
    ir_type_print(&want, &p->type);
    ir_value_ref(&name, p);
    bool ok = false;
    if ((unsigned)t->dtype >= FUSEC_DTYPE_COUNT) {
        ir_error(d, p->loc, "input %s: expected %s, got an invalid dtype (%d)", name.buf, want.buf,
                 (int)t->dtype);
    } else if (t->rank < 0 || t->rank > IR_MAX_RANK) {
        ir_error(d, p->loc, "input %s: expected %s, got a tensor of rank %d", name.buf, want.buf,
                 t->rank);
    } else {
        ir_type ty;
        type_of_tensor(t, &ty);
        ir_type_print(&got, &ty);
        if (!ir_type_eq(&ty, &p->type)) {
            ir_error(d, p->loc, "input %s: expected %s, got %s", name.buf, want.buf, got.buf);
        } else if (!t->data && numel_of(t) > 0) {
            ir_error(d, p->loc, "input %s (%s): data is NULL", name.buf, want.buf);
        } else {
            ok = true;
        }
    }
    ir_str_free(&want);
    ir_str_free(&got);
    ir_str_free(&name);
    return ok;
}

fusec_status rt_check_io(const ir_graph *g, const fusec_tensor *in, int nin, fusec_tensor *out,
                         int nout, ir_diag *d) {
    if (nin != g->nparams) {
        ir_error(d, g->loc, "@%s takes %d input%s, got %d", g->name ? g->name : "?", g->nparams,
                 g->nparams == 1 ? "" : "s", nin);
        return FUSEC_ERR_INVALID;
    }
    if (nout != g->nresults) {
        ir_error(d, g->loc, "@%s returns %d value%s, got room for %d", g->name ? g->name : "?",
                 g->nresults, g->nresults == 1 ? "" : "s", nout);
        return FUSEC_ERR_INVALID;
    }
    for (int i = 0; i < nout; i++) out[i].data = NULL; /* nothing allocated, whatever happens */
    for (int i = 0; i < g->nparams; i++)
        if (!check_input(g->params[i], &in[i], d)) return FUSEC_ERR_INVALID;
    return FUSEC_OK;
}

static rt_slot *slot_of(rt_run *r, const ir_value *v) {
    FC_ASSERT(v->id >= 0 && v->id < r->nslots);
    return &r->slots[v->id];
}

/* A literal operand as a 0-d tensor of its (already assigned) dtype. */
static bool materialize_literal(rt_run *r, const ir_value *v) {
    rt_slot *s = slot_of(r, v);
    if (s->t.data) return true;
    ir_type t = {.dtype = v->type.dtype, .rank = 0};
    if (!tensor_alloc(&s->t, &t)) return false;
    s->owned = true;
    if (ir_dtype_is_float(t.dtype)) ir_store_f(t.dtype, s->t.data, 0, v->lit_f);
    else if (v->lit_is_int) ir_store_i(t.dtype, s->t.data, 0, v->lit_i);
    else ir_store_f(t.dtype, s->t.data, 0, v->lit_f);
    return true;
}

/* Every op must have a kernel: checked on each run (a cheap scan, and no
 * mutable static state, so concurrent runs stay safe). */
static bool check_kernels(rt_run *r) {
    for (int op = 0; op < IR_OP_COUNT; op++) {
        if (!kernels[op]) {
            ir_error(r->d, r->g->loc, "interpreter: no kernel for op '%s'", ir_op_get((ir_op)op)->name);
            return false;
        }
    }
    return true;
}

static fusec_status run_nodes(rt_run *r, const fusec_tensor *in) {
    const ir_graph *g = r->g;
    int maxin = 1;
    for (const ir_node *n = g->first; n; n = n->next)
        if (n->nin > maxin) maxin = n->nin;
    fusec_tensor *args = calloc((size_t)maxin, sizeof *args);
    if (!args) {
        ir_error(r->d, g->loc, "interpreter: out of memory");
        return FUSEC_ERR_NOMEM;
    }
    /* an empty input may come with data NULL; kernels and memcpy get a
     * real (never dereferenced) pointer instead */
    static const uint64_t empty[1];
    for (int i = 0; i < g->nparams; i++) {
        rt_slot *s = slot_of(r, g->params[i]);
        s->t = in[i];
        if (!s->t.data) s->t.data = (void *)empty;
    }

    fusec_status st = FUSEC_OK;
    int k = 0;
    for (const ir_node *n = g->first; n; n = n->next, k++) {
        for (int i = 0; i < n->nin; i++) {
            const ir_value *v = n->in[i];
            if (v->kind == IR_VAL_LITERAL && !materialize_literal(r, v)) {
                ir_error(r->d, n->loc, "%s: out of memory", OPNAME(n));
                st = FUSEC_ERR_NOMEM;
                goto done;
            }
            args[i] = slot_of(r, v)->t;
            FC_ASSERT(args[i].data != NULL);
        }
        rt_slot *res = slot_of(r, n->out);
        if (!tensor_alloc(&res->t, &n->out->type)) {
            ir_error(r->d, n->loc, "%s: cannot allocate the result", OPNAME(n));
            st = FUSEC_ERR_NOMEM;
            goto done;
        }
        res->owned = true;
        if (!kernels[n->op](n, args, &res->t, r->d)) {
            st = FUSEC_ERR_RUNTIME;
            goto done;
        }
        for (int i = 0; i < n->nin; i++) {
            rt_slot *s = slot_of(r, n->in[i]);
            if (s->last <= k) slot_release(s);
        }
        if (res->last <= k) slot_release(res); /* dead value */
    }
done:
    free(args);
    return st;
}

fusec_status rt_interp_run(const ir_graph *g, const fusec_tensor *in, int nin, fusec_tensor *out,
                           int nout, ir_diag *d) {
    rt_run r = {.g = g, .d = d};
    if (!check_kernels(&r)) return FUSEC_ERR_UNSUPPORTED;
    fusec_status st = rt_check_io(g, in, nin, out, nout, d);
    if (st != FUSEC_OK) return st;

    /* slots, by value id; last uses */
    int maxid = -1;
    for (int i = 0; i < g->nparams; i++)
        if (g->params[i]->id > maxid) maxid = g->params[i]->id;
    for (const ir_node *n = g->first; n; n = n->next) {
        if (n->out->id > maxid) maxid = n->out->id;
        for (int i = 0; i < n->nin; i++)
            if (n->in[i]->id > maxid) maxid = n->in[i]->id;
    }
    r.nslots = maxid + 1;
    r.slots = calloc((size_t)(r.nslots > 0 ? r.nslots : 1), sizeof *r.slots);
    if (!r.slots) {
        ir_error(d, g->loc, "interpreter: out of memory");
        return FUSEC_ERR_NOMEM;
    }
    int k = 0;
    for (const ir_node *n = g->first; n; n = n->next, k++) {
        slot_of(&r, n->out)->last = k;
        for (int i = 0; i < n->nin; i++) slot_of(&r, n->in[i])->last = k;
    }
    for (int i = 0; i < g->nresults; i++) slot_of(&r, g->results[i])->last = INT_MAX;

    st = run_nodes(&r, in);

    /* copy the results out */
    int filled = 0;
    for (; st == FUSEC_OK && filled < g->nresults; filled++) {
        const fusec_tensor *src = &slot_of(&r, g->results[filled])->t;
        fusec_tensor *dst = &out[filled];
        if (!tensor_alloc(dst, &g->results[filled]->type)) {
            ir_error(d, g->loc, "interpreter: cannot allocate result %d", filled);
            st = FUSEC_ERR_NOMEM;
            break;
        }
        memcpy(dst->data, src->data, (size_t)numel_of(dst) * ir_dtype_size(dst->dtype));
    }
    if (st != FUSEC_OK) {
        for (int i = 0; i < filled; i++) {
            free(out[i].data);
            out[i].data = NULL;
        }
    }
    for (int i = 0; i < r.nslots; i++) slot_release(&r.slots[i]);
    free(r.slots);
    return st;
}
