/*
 * infer.c - the shape and dtype rule of every op (the `infer` column of
 * ops.def).
 *
 * Each rule sees a node whose operands and attributes are filled in (and
 * whose operand 0 already passed the op's dtype class), checks everything
 * else the op requires, and sets n->out->type.  Ops with no operand (full,
 * iota, constant) find the declared type in n->out->type (rank -1 when none
 * was written).  Messages start with the op name and describe operands as
 * "%x (f32[2, 3])", so they read well from both the parser and the tracer.
 *
 * Semantics follow PyTorch (docs/ir.md); the few choices PyTorch leaves
 * open are listed in docs/ir.md, "Decisions".
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

#define OPNAME(n) (ir_op_get((n)->op)->name)

static bool fail(ir_node *n, ir_diag *d, const char *fmt, ...) IR_PRINTF(3, 4);
static bool fail(ir_node *n, ir_diag *d, const char *fmt, ...) {
    ir_str s = {0};
    va_list ap;
    va_start(ap, fmt);
    ir_str_vprintf(&s, fmt, ap);
    va_end(ap);
    ir_error(d, n->loc, "%s: %s", OPNAME(n), s.buf ? s.buf : "");
    ir_str_free(&s);
    return false;
}

/* A short-lived description of an operand for messages.  Two rotating
 * buffers let one message describe two operands. */
static const char *desc(const ir_value *v) {
    static _Thread_local char buf[4][192];
    static _Thread_local int k;
    ir_str s = {0};
    ir_describe(&s, v);
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s", s.buf ? s.buf : "?");
    ir_str_free(&s);
    return b;
}

static const char *tystr(const ir_type *t) {
    static _Thread_local char buf[2][192];
    static _Thread_local int k;
    ir_str s = {0};
    ir_type_print(&s, t);
    char *b = buf[k++ & 1];
    snprintf(b, sizeof buf[0], "%s", s.buf ? s.buf : "?");
    ir_str_free(&s);
    return b;
}

static ir_type *T(ir_node *n, int i) { return &n->in[i]->type; }

/* Normalize an axis attribute value against rank, or fail naming it. */
static bool axis_of(ir_node *n, ir_diag *d, const char *attr, int64_t axis, int rank, int *out) {
    if (ir_norm_axis(axis, rank, out)) return true;
    if (rank == 0)
        return fail(n, d, "%s = %lld is out of range for a 0-d operand", attr, (long long)axis);
    return fail(n, d, "%s = %lld is out of range for rank %d (expected %d to %d)", attr,
                (long long)axis, rank, -rank, rank - 1);
}

static bool same_dtype(ir_node *n, ir_diag *d, int i, int j) {
    if (T(n, i)->dtype == T(n, j)->dtype) return true;
    return fail(n, d, "operands must share a dtype, got %s and %s (insert a cast)",
                desc(n->in[i]), desc(n->in[j]));
}

static bool check_numel(ir_node *n, ir_diag *d, const ir_type *t) {
    /* every element count must fit comfortably in int64 */
    double total = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dim[i] < 0) return fail(n, d, "result dimension %d is negative (%lld)", i, (long long)t->dim[i]);
        total *= (double)t->dim[i];
    }
    if (total > 4611686018427387904.0) return fail(n, d, "result has too many elements");
    return true;
}

static bool set_out(ir_node *n, ir_diag *d, const ir_type *t) {
    if (!check_numel(n, d, t)) return false;
    n->out->type = *t;
    return true;
}

/* ---- elementwise ---------------------------------------------------- */

bool infer_unary(ir_node *n, ir_diag *d) {
    if (n->op == IR_OP_GELU) {
        const char *a = ir_attr_s(n, "approximate");
        if (strcmp(a, "none") != 0 && strcmp(a, "tanh") != 0)
            return fail(n, d, "approximate must be \"none\" or \"tanh\", got \"%s\"", a);
    }
    if (n->op == IR_OP_CLAMP) {
        bool lo = ir_attr_has(n, "min"), hi = ir_attr_has(n, "max");
        if (!lo && !hi) return fail(n, d, "at least one of 'min' and 'max' must be given");
        if (!ir_dtype_is_float(T(n, 0)->dtype)) {
            double a = lo ? ir_attr_f(n, "min") : 0, b = hi ? ir_attr_f(n, "max") : 0;
            if (a != floor(a) || b != floor(b))
                return fail(n, d, "bounds of an integer clamp must be integers");
        }
    }
    return set_out(n, d, T(n, 0));
}

bool infer_unary_bool(ir_node *n, ir_diag *d) {
    ir_type t = *T(n, 0);
    t.dtype = FUSEC_DTYPE_BOOL;
    return set_out(n, d, &t);
}

bool infer_cast(ir_node *n, ir_diag *d) {
    ir_type t = *T(n, 0);
    t.dtype = ir_attr_dt(n, "to");
    if ((unsigned)t.dtype >= FUSEC_DTYPE_COUNT) return fail(n, d, "bad dtype in 'to'");
    return set_out(n, d, &t);
}

/* Broadcast operands [first, nin) into *t, naming the pair that fails. */
static bool broadcast_all(ir_node *n, ir_diag *d, int first, ir_type *t) {
    *t = *T(n, first);
    for (int i = first + 1; i < n->nin; i++) {
        ir_type r = *t;
        if (!ir_broadcast_shape(t, T(n, i), &r)) {
            if (i == first + 1)
                return fail(n, d, "cannot broadcast %s with %s", desc(n->in[first]), desc(n->in[i]));
            return fail(n, d, "cannot broadcast %s with the shape %s of the operands before it",
                        desc(n->in[i]), tystr(t));
        }
        *t = r;
    }
    return true;
}

bool infer_binary(ir_node *n, ir_diag *d) {
    if (!same_dtype(n, d, 0, 1)) return false;
    ir_type t;
    if (!broadcast_all(n, d, 0, &t)) return false;
    t.dtype = T(n, 0)->dtype;
    return set_out(n, d, &t);
}

bool infer_compare(ir_node *n, ir_diag *d) {
    if (!same_dtype(n, d, 0, 1)) return false;
    ir_type t;
    if (!broadcast_all(n, d, 0, &t)) return false;
    t.dtype = FUSEC_DTYPE_BOOL;
    return set_out(n, d, &t);
}

bool infer_where(ir_node *n, ir_diag *d) {
    if (!same_dtype(n, d, 1, 2)) return false;
    ir_type t;
    if (!broadcast_all(n, d, 0, &t)) return false;
    t.dtype = T(n, 1)->dtype;
    return set_out(n, d, &t);
}

bool infer_masked_fill(ir_node *n, ir_diag *d) {
    if (T(n, 1)->dtype != FUSEC_DTYPE_BOOL)
        return fail(n, d, "the mask must be bool, got %s", desc(n->in[1]));
    ir_dtype dt = T(n, 0)->dtype;
    double v = ir_attr_f(n, "value");
    if (!ir_value_fits(v, dt))
        return fail(n, d, "value %g cannot be represented in %s", v, ir_dtype_name(dt));
    ir_type t;
    if (!broadcast_all(n, d, 0, &t)) return false;
    t.dtype = dt;
    return set_out(n, d, &t);
}

/* ---- reductions ----------------------------------------------------- */

/* Collect the reduced axes of a reduction into mask[]; false on error.
 * A 0-d operand accepts axis 0 or -1 (as PyTorch does) and reduces nothing. */
static bool reduce_axes(ir_node *n, ir_diag *d, const char *attr, bool mask[IR_MAX_RANK]) {
    int rank = T(n, 0)->rank;
    memset(mask, 0, sizeof(bool) * IR_MAX_RANK);
    if (!ir_attr_has(n, attr)) {
        for (int i = 0; i < rank; i++) mask[i] = true;
        return true;
    }
    int cnt;
    const int64_t *ax = ir_attr_ints(n, attr, &cnt);
    if (cnt == 0) return fail(n, d, "%s must not be empty (omit it to reduce over every axis)", attr);
    for (int i = 0; i < cnt; i++) {
        int a;
        if (rank == 0 && (ax[i] == 0 || ax[i] == -1)) continue;
        if (!axis_of(n, d, attr, ax[i], rank, &a)) return false;
        if (mask[a]) return fail(n, d, "axis %d appears twice in %s", a, attr);
        mask[a] = true;
    }
    return true;
}

static void reduced_type(const ir_type *in, const bool mask[IR_MAX_RANK], bool keepdim, ir_type *t) {
    t->dtype = in->dtype;
    t->rank = 0;
    for (int i = 0; i < in->rank; i++) {
        if (!mask[i]) t->dim[t->rank++] = in->dim[i];
        else if (keepdim) t->dim[t->rank++] = 1;
    }
}

bool infer_reduce(ir_node *n, ir_diag *d) {
    bool mask[IR_MAX_RANK];
    if (!reduce_axes(n, d, "axes", mask)) return false;
    const ir_type *in = T(n, 0);
    if (n->op == IR_OP_MAX || n->op == IR_OP_MIN) {
        for (int i = 0; i < in->rank; i++)
            if (mask[i] && in->dim[i] == 0)
                return fail(n, d, "reducing %s over axis %d of size 0 has no identity", desc(n->in[0]), i);
    }
    if (n->op == IR_OP_VAR && ir_attr_i(n, "correction") < 0)
        return fail(n, d, "correction must be >= 0, got %lld", (long long)ir_attr_i(n, "correction"));
    ir_type t;
    reduced_type(in, mask, ir_attr_i(n, "keepdim") != 0, &t);
    if ((n->op == IR_OP_SUM || n->op == IR_OP_PROD) && !ir_dtype_is_float(in->dtype))
        t.dtype = FUSEC_DTYPE_I64;
    return set_out(n, d, &t);
}

bool infer_argreduce(ir_node *n, ir_diag *d) {
    const ir_type *in = T(n, 0);
    bool keep = ir_attr_i(n, "keepdim") != 0;
    ir_type t = {.dtype = FUSEC_DTYPE_I64};
    if (!ir_attr_has(n, "axis")) {
        if (ir_type_numel(in) == 0) return fail(n, d, "%s has no elements", desc(n->in[0]));
        if (keep) {
            t.rank = in->rank;
            for (int i = 0; i < in->rank; i++) t.dim[i] = 1;
        }
        return set_out(n, d, &t);
    }
    int64_t ax = ir_attr_i(n, "axis");
    if (in->rank == 0) {
        if (ax != 0 && ax != -1) return axis_of(n, d, "axis", ax, 0, &(int){0});
        return set_out(n, d, &t);
    }
    int a;
    if (!axis_of(n, d, "axis", ax, in->rank, &a)) return false;
    if (in->dim[a] == 0) return fail(n, d, "axis %d of %s has size 0", a, desc(n->in[0]));
    bool mask[IR_MAX_RANK] = {0};
    mask[a] = true;
    reduced_type(in, mask, keep, &t);
    t.dtype = FUSEC_DTYPE_I64;
    return set_out(n, d, &t);
}

/* ---- composites ----------------------------------------------------- */

bool infer_softmax(ir_node *n, ir_diag *d) {
    int rank = T(n, 0)->rank, a;
    int64_t ax = ir_attr_i(n, "axis");
    if (!(rank == 0 && (ax == 0 || ax == -1)) && !axis_of(n, d, "axis", ax, rank, &a)) return false;
    return set_out(n, d, T(n, 0));
}

bool infer_norm(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    int cnt;
    const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
    if (cnt == 0) return fail(n, d, "axes must not be empty");
    bool mask[IR_MAX_RANK] = {0};
    for (int i = 0; i < cnt; i++) {
        int a;
        if (!axis_of(n, d, "axes", ax[i], x->rank, &a)) return false;
        if (mask[a]) return fail(n, d, "axis %d appears twice in axes", a);
        mask[a] = true;
    }
    for (int i = x->rank - cnt; i < x->rank; i++)
        if (!mask[i])
            return fail(n, d, "axes must be the trailing %d dimension%s of %s", cnt, cnt == 1 ? "" : "s",
                        desc(n->in[0]));
    /* weight and bias have the normalized shape */
    for (int k = 1; k < n->nin; k++) {
        const ir_type *w = T(n, k);
        bool ok = w->rank == cnt && w->dtype == x->dtype;
        for (int i = 0; ok && i < cnt; i++) ok = w->dim[i] == x->dim[x->rank - cnt + i];
        if (!ok) {
            ir_type want = {.dtype = x->dtype, .rank = cnt};
            for (int i = 0; i < cnt; i++) want.dim[i] = x->dim[x->rank - cnt + i];
            return fail(n, d, "%s must be %s to match %s, got %s", k == 1 ? "weight" : "bias",
                        tystr(&want), desc(n->in[0]), desc(n->in[k]));
        }
    }
    double eps = ir_attr_f(n, "eps");
    if (!(eps >= 0)) return fail(n, d, "eps must be >= 0, got %g", eps);
    return set_out(n, d, x);
}

bool infer_batch_norm(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    if (x->rank < 2) return fail(n, d, "expected an input of rank >= 2 (N, C, ...), got %s", desc(n->in[0]));
    static const char *role[] = {"", "mean", "var", "weight", "bias"};
    for (int k = 1; k < n->nin; k++) {
        const ir_type *w = T(n, k);
        if (w->rank != 1 || w->dim[0] != x->dim[1] || w->dtype != x->dtype) {
            ir_type want = {.dtype = x->dtype, .rank = 1, .dim = {x->dim[1]}};
            return fail(n, d, "%s must be %s (one per channel of %s), got %s", role[k], tystr(&want),
                        desc(n->in[0]), desc(n->in[k]));
        }
    }
    double eps = ir_attr_f(n, "eps");
    if (!(eps >= 0)) return fail(n, d, "eps must be >= 0, got %g", eps);
    return set_out(n, d, x);
}

/* ---- shape and data movement --------------------------------------- */

bool infer_reshape(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    int cnt;
    const int64_t *shp = ir_attr_ints(n, "shape", &cnt);
    if (cnt > IR_MAX_RANK) return fail(n, d, "shape has rank %d; at most %d is supported", cnt, IR_MAX_RANK);
    ir_type t = {.dtype = x->dtype, .rank = cnt};
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < cnt; i++) {
        if (shp[i] == -1) {
            if (infer_at >= 0) return fail(n, d, "shape may contain only one -1");
            infer_at = i;
            continue;
        }
        if (shp[i] < 0) return fail(n, d, "shape has a negative size %lld", (long long)shp[i]);
        if (shp[i] > 0 && known > INT64_MAX / shp[i]) return fail(n, d, "shape has too many elements");
        known *= shp[i];
        t.dim[i] = shp[i];
    }
    int64_t total = ir_type_numel(x);
    if (infer_at >= 0) {
        if (known == 0) return fail(n, d, "cannot infer the -1 size of a shape with a 0 in it");
        if (total % known) return fail(n, d, "cannot reshape %s into a shape with a multiple of %lld elements", desc(n->in[0]), (long long)known);
        t.dim[infer_at] = total / known;
    } else if (known != total) {
        return fail(n, d, "cannot reshape %s (%lld elements) into %s (%lld elements)", desc(n->in[0]),
                    (long long)total, tystr(&t), (long long)known);
    }
    return set_out(n, d, &t);
}

bool infer_permute(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    int cnt;
    const int64_t *dims = ir_attr_ints(n, "dims", &cnt);
    if (cnt != x->rank)
        return fail(n, d, "dims has %d entries but %s has rank %d", cnt, desc(n->in[0]), x->rank);
    bool seen[IR_MAX_RANK] = {0};
    ir_type t = {.dtype = x->dtype, .rank = cnt};
    for (int i = 0; i < cnt; i++) {
        int a;
        if (!axis_of(n, d, "dims", dims[i], x->rank, &a)) return false;
        if (seen[a]) return fail(n, d, "dims is not a permutation: axis %d appears twice", a);
        seen[a] = true;
        t.dim[i] = x->dim[a];
    }
    return set_out(n, d, &t);
}

bool infer_transpose(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    int a, b;
    if (!axis_of(n, d, "dim0", ir_attr_i(n, "dim0"), x->rank, &a)) return false;
    if (!axis_of(n, d, "dim1", ir_attr_i(n, "dim1"), x->rank, &b)) return false;
    ir_type t = *x;
    t.dim[a] = x->dim[b];
    t.dim[b] = x->dim[a];
    return set_out(n, d, &t);
}

bool infer_expand(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    int cnt;
    const int64_t *shp = ir_attr_ints(n, "shape", &cnt);
    if (cnt > IR_MAX_RANK) return fail(n, d, "shape has rank %d; at most %d is supported", cnt, IR_MAX_RANK);
    if (cnt < x->rank)
        return fail(n, d, "shape has %d entries, fewer than the rank %d of %s", cnt, x->rank, desc(n->in[0]));
    ir_type t = {.dtype = x->dtype, .rank = cnt};
    for (int i = 0; i < cnt; i++) {
        int xi = i - (cnt - x->rank);
        if (xi < 0) {
            if (shp[i] < 0) return fail(n, d, "shape[%d] = %lld: a new leading dimension needs a size >= 0", i, (long long)shp[i]);
            t.dim[i] = shp[i];
            continue;
        }
        int64_t have = x->dim[xi];
        if (shp[i] == -1) t.dim[i] = have;
        else if (shp[i] < 0) return fail(n, d, "shape[%d] = %lld is negative", i, (long long)shp[i]);
        else if (have == shp[i] || have == 1) t.dim[i] = shp[i];
        else
            return fail(n, d, "cannot expand dimension %d of size %lld of %s to %lld", xi,
                        (long long)have, desc(n->in[0]), (long long)shp[i]);
    }
    return set_out(n, d, &t);
}

bool infer_squeeze(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    bool mask[IR_MAX_RANK];
    if (!reduce_axes(n, d, "axes", mask)) return false;
    ir_type t = {.dtype = x->dtype};
    for (int i = 0; i < x->rank; i++)
        if (!(mask[i] && x->dim[i] == 1)) t.dim[t.rank++] = x->dim[i];
    return set_out(n, d, &t);
}

bool infer_unsqueeze(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    if (x->rank >= IR_MAX_RANK) return fail(n, d, "result would have rank %d; at most %d is supported", x->rank + 1, IR_MAX_RANK);
    int a;
    if (!axis_of(n, d, "axis", ir_attr_i(n, "axis"), x->rank + 1, &a)) return false;
    ir_type t = {.dtype = x->dtype, .rank = x->rank + 1};
    for (int i = 0, j = 0; i < t.rank; i++) t.dim[i] = i == a ? 1 : x->dim[j++];
    return set_out(n, d, &t);
}

/* Python slice bounds: negatives count from the end, then clamp. */
static int64_t clamp_bound(int64_t b, int64_t size) {
    if (b < 0) b = b < -size ? 0 : b + size;
    return b > size ? size : b;
}

bool infer_slice(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    int a;
    if (!axis_of(n, d, "axis", ir_attr_i(n, "axis"), x->rank, &a)) return false;
    int64_t step = ir_attr_i(n, "step");
    if (step < 1) return fail(n, d, "step must be >= 1, got %lld", (long long)step);
    int64_t size = x->dim[a];
    int64_t s = clamp_bound(ir_attr_i(n, "start"), size), e = clamp_bound(ir_attr_i(n, "end"), size);
    ir_type t = *x;
    t.dim[a] = e > s ? (e - s - 1) / step + 1 : 0;
    return set_out(n, d, &t);
}

bool infer_concat(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    int a;
    if (!axis_of(n, d, "axis", ir_attr_i(n, "axis"), x->rank, &a)) return false;
    ir_type t = *x;
    for (int k = 1; k < n->nin; k++) {
        const ir_type *y = T(n, k);
        if (!same_dtype(n, d, 0, k)) return false;
        bool ok = y->rank == x->rank;
        for (int i = 0; ok && i < x->rank; i++) ok = i == a || y->dim[i] == x->dim[i];
        if (!ok)
            return fail(n, d, "%s does not match %s outside axis %d", desc(n->in[k]), desc(n->in[0]), a);
        if (t.dim[a] > INT64_MAX - y->dim[a]) return fail(n, d, "result is too large");
        t.dim[a] += y->dim[a];
    }
    return set_out(n, d, &t);
}

bool infer_pad(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    int cnt;
    const int64_t *p = ir_attr_ints(n, "pads", &cnt);
    if (cnt % 2) return fail(n, d, "pads must hold (before, after) pairs, got %d values", cnt);
    if (cnt / 2 > x->rank)
        return fail(n, d, "pads covers %d dimensions but %s has rank %d", cnt / 2, desc(n->in[0]), x->rank);
    double v = ir_attr_f(n, "value");
    if (!ir_value_fits(v, x->dtype))
        return fail(n, d, "value %g cannot be represented in %s", v, ir_dtype_name(x->dtype));
    ir_type t = *x;
    int first = x->rank - cnt / 2;
    for (int k = 0; k < cnt / 2; k++) {
        int i = first + k;
        if (p[2 * k] < -INT64_MAX / 4 || p[2 * k] > INT64_MAX / 4 || p[2 * k + 1] < -INT64_MAX / 4 || p[2 * k + 1] > INT64_MAX / 4)
            return fail(n, d, "pad sizes are too large");
        int64_t sz = x->dim[i] + p[2 * k] + p[2 * k + 1];
        if (sz < 0)
            return fail(n, d, "pads (%lld, %lld) crop dimension %d of size %lld below zero",
                        (long long)p[2 * k], (long long)p[2 * k + 1], i, (long long)x->dim[i]);
        t.dim[i] = sz;
    }
    return set_out(n, d, &t);
}

static bool index_dtype(ir_node *n, ir_diag *d, int k) {
    ir_dtype dt = T(n, k)->dtype;
    if (dt == FUSEC_DTYPE_I64 || dt == FUSEC_DTYPE_I32) return true;
    return fail(n, d, "indices must be i64 or i32, got %s", desc(n->in[k]));
}

bool infer_index_select(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0), *idx = T(n, 1);
    if (!index_dtype(n, d, 1)) return false;
    if (idx->rank != 1) return fail(n, d, "indices must be 1-D, got %s", desc(n->in[1]));
    int a;
    if (!axis_of(n, d, "axis", ir_attr_i(n, "axis"), x->rank, &a)) return false;
    ir_type t = *x;
    t.dim[a] = idx->dim[0];
    return set_out(n, d, &t);
}

bool infer_embedding(ir_node *n, ir_diag *d) {
    const ir_type *w = T(n, 0), *idx = T(n, 1);
    if (w->rank != 2) return fail(n, d, "weight must be 2-D [num, dim], got %s", desc(n->in[0]));
    if (!index_dtype(n, d, 1)) return false;
    if (idx->rank + 1 > IR_MAX_RANK) return fail(n, d, "result rank exceeds %d", IR_MAX_RANK);
    ir_type t = *idx;
    t.dtype = w->dtype;
    t.dim[t.rank++] = w->dim[1];
    return set_out(n, d, &t);
}

bool infer_gather(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0), *idx = T(n, 1);
    if (!index_dtype(n, d, 1)) return false;
    if (idx->rank != x->rank)
        return fail(n, d, "indices %s must have the rank of %s", desc(n->in[1]), desc(n->in[0]));
    int a;
    if (!axis_of(n, d, "axis", ir_attr_i(n, "axis"), x->rank, &a)) return false;
    for (int i = 0; i < x->rank; i++)
        if (i != a && idx->dim[i] > x->dim[i])
            return fail(n, d, "indices %s are larger than %s in dimension %d", desc(n->in[1]),
                        desc(n->in[0]), i);
    ir_type t = *idx;
    t.dtype = x->dtype;
    return set_out(n, d, &t);
}

/* ---- creation ------------------------------------------------------- */

bool infer_creation(ir_node *n, ir_diag *d) {
    ir_type t = n->out->type;
    if (t.rank < 0)
        return fail(n, d, "the result type is required: write '%s(...) {...} : f32[...]'", OPNAME(n));
    bool is_float = ir_dtype_is_float(t.dtype);
    if (n->op == IR_OP_FULL) {
        double v = ir_attr_f(n, "value");
        if (!ir_value_fits(v, t.dtype))
            return fail(n, d, "value %g cannot be represented in %s", v, ir_dtype_name(t.dtype));
    } else if (n->op == IR_OP_IOTA) {
        int a;
        if (!axis_of(n, d, "axis", ir_attr_i(n, "axis"), t.rank, &a)) return false;
    } else {
        int cnt;
        const double *data = ir_attr_floats(n, "data", &cnt);
        if (!check_numel(n, d, &t)) return false;
        if ((int64_t)cnt != ir_type_numel(&t))
            return fail(n, d, "data has %d values but %s holds %lld", cnt, tystr(&t),
                        (long long)ir_type_numel(&t));
        for (int i = 0; i < cnt && !is_float; i++)
            if (!ir_value_fits(data[i], t.dtype))
                return fail(n, d, "data[%d] = %g cannot be represented in %s", i, data[i], ir_dtype_name(t.dtype));
    }
    return set_out(n, d, &t);
}

bool infer_tri(ir_node *n, ir_diag *d) {
    if (T(n, 0)->rank < 2) return fail(n, d, "expected rank >= 2, got %s", desc(n->in[0]));
    return set_out(n, d, T(n, 0));
}

/* ---- contractions and windows -------------------------------------- */

bool infer_matmul(ir_node *n, ir_diag *d) {
    const ir_type *a = T(n, 0), *b = T(n, 1);
    if (!same_dtype(n, d, 0, 1)) return false;
    if (a->rank == 0 || b->rank == 0) return fail(n, d, "operands must be at least 1-D, got %s and %s", desc(n->in[0]), desc(n->in[1]));
    int64_t ka = a->dim[a->rank - 1], kb = b->rank == 1 ? b->dim[0] : b->dim[b->rank - 2];
    if (ka != kb)
        return fail(n, d, "contraction sizes differ: %s has %lld, %s has %lld", desc(n->in[0]),
                    (long long)ka, desc(n->in[1]), (long long)kb);
    /* batch dims broadcast */
    ir_type ba = {.rank = a->rank > 2 ? a->rank - 2 : 0}, bb = {.rank = b->rank > 2 ? b->rank - 2 : 0}, t = {0};
    memcpy(ba.dim, a->dim, sizeof(int64_t) * (size_t)ba.rank);
    memcpy(bb.dim, b->dim, sizeof(int64_t) * (size_t)bb.rank);
    if (!ir_broadcast_shape(&ba, &bb, &t))
        return fail(n, d, "batch dimensions of %s and %s do not broadcast", desc(n->in[0]), desc(n->in[1]));
    if (a->rank >= 2) t.dim[t.rank++] = a->dim[a->rank - 2];
    if (b->rank >= 2) t.dim[t.rank++] = b->dim[b->rank - 1];
    t.dtype = a->dtype;
    return set_out(n, d, &t);
}

bool infer_linear(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0), *w = T(n, 1);
    if (!same_dtype(n, d, 0, 1)) return false;
    if (x->rank < 1) return fail(n, d, "input must be at least 1-D, got %s", desc(n->in[0]));
    if (w->rank != 2) return fail(n, d, "weight must be 2-D [out, in], got %s", desc(n->in[1]));
    if (w->dim[1] != x->dim[x->rank - 1])
        return fail(n, d, "weight %s does not match the last dimension %lld of %s", desc(n->in[1]),
                    (long long)x->dim[x->rank - 1], desc(n->in[0]));
    if (n->nin == 3) {
        const ir_type *b = T(n, 2);
        if (!same_dtype(n, d, 0, 2)) return false;
        if (b->rank != 1 || b->dim[0] != w->dim[0])
            return fail(n, d, "bias must be [%lld], got %s", (long long)w->dim[0], desc(n->in[2]));
    }
    ir_type t = *x;
    t.dim[t.rank - 1] = w->dim[0];
    return set_out(n, d, &t);
}

/* Read a 2-element integer attribute with a lower bound. */
static bool pair(ir_node *n, ir_diag *d, const char *attr, int64_t lo, int64_t out[2]) {
    int cnt;
    const int64_t *v = ir_attr_ints(n, attr, &cnt);
    if (cnt != 2) return fail(n, d, "%s must have 2 values, got %d", attr, cnt);
    for (int i = 0; i < 2; i++) {
        if (v[i] < lo || v[i] > (INT64_C(1) << 40))
            return fail(n, d, "%s = [%lld, %lld] must be >= %lld", attr, (long long)v[0], (long long)v[1], (long long)lo);
        out[i] = v[i];
    }
    return true;
}

bool infer_conv2d(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0), *w = T(n, 1);
    if (!same_dtype(n, d, 0, 1)) return false;
    if (x->rank != 4) return fail(n, d, "input must be 4-D NCHW, got %s", desc(n->in[0]));
    if (w->rank != 4) return fail(n, d, "weight must be 4-D [Cout, Cin/groups, kH, kW], got %s", desc(n->in[1]));
    int64_t st[2], pd[2], dl[2], groups = ir_attr_i(n, "groups");
    if (!pair(n, d, "stride", 1, st) || !pair(n, d, "padding", 0, pd) || !pair(n, d, "dilation", 1, dl)) return false;
    if (groups < 1) return fail(n, d, "groups must be >= 1, got %lld", (long long)groups);
    if (x->dim[1] % groups || w->dim[0] % groups)
        return fail(n, d, "groups = %lld must divide the input channels %lld and output channels %lld",
                    (long long)groups, (long long)x->dim[1], (long long)w->dim[0]);
    if (w->dim[1] * groups != x->dim[1])
        return fail(n, d, "weight %s expects %lld input channels, %s has %lld", desc(n->in[1]),
                    (long long)(w->dim[1] * groups), desc(n->in[0]), (long long)x->dim[1]);
    if (n->nin == 3) {
        const ir_type *b = T(n, 2);
        if (!same_dtype(n, d, 0, 2)) return false;
        if (b->rank != 1 || b->dim[0] != w->dim[0])
            return fail(n, d, "bias must be [%lld], got %s", (long long)w->dim[0], desc(n->in[2]));
    }
    ir_type t = {.dtype = x->dtype, .rank = 4, .dim = {x->dim[0], w->dim[0], 0, 0}};
    for (int i = 0; i < 2; i++) {
        int64_t eff = dl[i] * (w->dim[2 + i] - 1) + 1;
        int64_t o = (x->dim[2 + i] + 2 * pd[i] - eff);
        if (w->dim[2 + i] < 1 || o < 0)
            return fail(n, d, "kernel %s does not fit the padded input %s", desc(n->in[1]), desc(n->in[0]));
        t.dim[2 + i] = o / st[i] + 1;
    }
    return set_out(n, d, &t);
}

bool infer_pool2d(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    if (x->rank != 4 && x->rank != 3) return fail(n, d, "input must be 4-D NCHW or 3-D CHW, got %s", desc(n->in[0]));
    int64_t k[2], st[2], pd[2];
    if (!pair(n, d, "kernel", 1, k) || !pair(n, d, "padding", 0, pd)) return false;
    if (ir_attr_has(n, "stride")) {
        if (!pair(n, d, "stride", 1, st)) return false;
    } else {
        st[0] = k[0], st[1] = k[1];
    }
    ir_type t = *x;
    for (int i = 0; i < 2; i++) {
        if (pd[i] * 2 > k[i])
            return fail(n, d, "padding %lld must be at most half the kernel size %lld", (long long)pd[i], (long long)k[i]);
        int64_t o = x->dim[x->rank - 2 + i] + 2 * pd[i] - k[i];
        if (o < 0) return fail(n, d, "kernel [%lld, %lld] is larger than the padded input %s", (long long)k[0], (long long)k[1], desc(n->in[0]));
        t.dim[x->rank - 2 + i] = o / st[i] + 1;
    }
    return set_out(n, d, &t);
}

bool infer_adaptive_pool2d(ir_node *n, ir_diag *d) {
    const ir_type *x = T(n, 0);
    if (x->rank != 4 && x->rank != 3) return fail(n, d, "input must be 4-D NCHW or 3-D CHW, got %s", desc(n->in[0]));
    int64_t o[2];
    if (!pair(n, d, "output_size", 1, o)) return false;
    for (int i = 0; i < 2; i++)
        if (x->dim[x->rank - 2 + i] == 0) return fail(n, d, "input %s has an empty spatial dimension", desc(n->in[0]));
    ir_type t = *x;
    t.dim[x->rank - 2] = o[0];
    t.dim[x->rank - 1] = o[1];
    return set_out(n, d, &t);
}

bool infer_sdpa(ir_node *n, ir_diag *d) {
    const ir_type *q = T(n, 0), *k = T(n, 1), *v = T(n, 2);
    if (!same_dtype(n, d, 0, 1) || !same_dtype(n, d, 0, 2)) return false;
    if (q->rank < 2 || k->rank < 2 || v->rank < 2)
        return fail(n, d, "q, k and v must be at least 2-D ([..., L, E])");
    int64_t L = q->dim[q->rank - 2], E = q->dim[q->rank - 1];
    int64_t S = k->dim[k->rank - 2], Ev = v->dim[v->rank - 1];
    if (k->dim[k->rank - 1] != E) return fail(n, d, "key %s must have head size %lld like %s", desc(n->in[1]), (long long)E, desc(n->in[0]));
    if (v->dim[v->rank - 2] != S) return fail(n, d, "value %s must have %lld rows like key %s", desc(n->in[2]), (long long)S, desc(n->in[1]));
    ir_type bq = {.rank = q->rank - 2}, bk = {.rank = k->rank - 2}, bv = {.rank = v->rank - 2}, t = {0};
    memcpy(bq.dim, q->dim, sizeof(int64_t) * (size_t)bq.rank);
    memcpy(bk.dim, k->dim, sizeof(int64_t) * (size_t)bk.rank);
    memcpy(bv.dim, v->dim, sizeof(int64_t) * (size_t)bv.rank);
    if (!ir_broadcast_shape(&bq, &bk, &t) || !ir_broadcast_shape(&t, &bv, &t))
        return fail(n, d, "batch dimensions of q, k and v do not broadcast");
    if (t.rank + 2 > IR_MAX_RANK) return fail(n, d, "result rank exceeds %d", IR_MAX_RANK);
    if (n->nin == 4) {
        const ir_type *m = T(n, 3);
        if (m->dtype != FUSEC_DTYPE_BOOL && m->dtype != q->dtype)
            return fail(n, d, "mask must be bool or %s, got %s", ir_dtype_name(q->dtype), desc(n->in[3]));
        ir_type scores = t, r = {0};
        scores.dim[scores.rank++] = L;
        scores.dim[scores.rank++] = S;
        bool ok = ir_broadcast_shape(&scores, m, &r) && r.rank == scores.rank;
        for (int i = 0; ok && i < r.rank; i++) ok = r.dim[i] == scores.dim[i];
        if (!ok)
            return fail(n, d, "mask %s does not broadcast to the scores [..., %lld, %lld]",
                        desc(n->in[3]), (long long)L, (long long)S);
    }
    if (ir_attr_has(n, "scale")) {
        double s = ir_attr_f(n, "scale");
        if (isnan(s) || isinf(s)) return fail(n, d, "scale must be finite");
    }
    t.dtype = q->dtype;
    t.dim[t.rank++] = L;
    t.dim[t.rank++] = Ev;
    return set_out(n, d, &t);
}
