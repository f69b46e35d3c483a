/*
 * plan_exec.c - the plan executor: runs a plan (ir/plan.h) on the CPU the
 * way a generated kernel would, so that fusion and memory planning can be
 * checked against the reference interpreter before any code is generated.
 *
 * Memory.  One arena of p->arena_bytes holds every TEMP at its planned
 * offset; OUTPUT buffers get their own allocations (handed to the caller);
 * INPUT buffers are the caller's tensors.  The arena and the outputs start
 * filled with a poison pattern (0xFF bytes: NaN for every float dtype, -1
 * or 255 for integers), and after each kernel every TEMP that dies there is
 * poisoned again - unless a buffer that kernel wrote took its slot in
 * place.  A kernel that reads a value too early, a slot shared by two live
 * buffers, or an element nobody writes therefore shows up as a wrong
 * result, not as a plausible one.
 *
 * Kernels.  A kernel computes each element of each of its outputs by
 * evaluating its body at that element's index.  Evaluating
 * value v at index i (a multi-index over v's shape):
 *   - a literal is its value;
 *   - a value with a buffer that an earlier kernel wrote (or an input) is
 *     loaded from memory at i - it must be one of the kernel's inputs;
 *   - otherwise v is a node of the body: its op maps i to its operands'
 *     indices and evaluates them recursively.  Elementwise ops read every
 *     operand at i broadcast (align right, size-1 dims read index 0) and
 *     compute through ir_ew_eval; movement ops remap i (reshape through
 *     the linear index, permute, slice, concat, pad, expand, the gathers
 *     through an index loaded on the way); iota, full, constant and the
 *     triangle masks compute from i alone; a reduction loops over its
 *     reduced axes, with i fixing the others.
 * Every node's result is rounded to its dtype (ir_scalar_round) exactly as
 * the interpreter's store rounds it, so results agree bit for bit with the
 * unfused graph wherever the interpreter accumulates in the same order.
 * Reductions accumulate like the interpreter (double with Neumaier
 * compensation for float sums, int64 with wrap-around for integer sum and
 * prod, NaN winning max/min, the first index on ties, two-pass var) and
 * are memoized per kernel by output element, so a row's max and sum are
 * computed once per row however many elements use them.  Every other node
 * keeps a one-entry cache (its last index and value), which turns a
 * diamond in the body (x used twice at the same index) from exponential
 * into linear work.
 *
 * Outputs whose shape is the kernel's domain are computed together: all of
 * an element's outputs first, then their stores.  That is the ordering
 * memory planning assumes for in-place reuse (passes/memplan.c): an output
 * may overwrite an input that the kernel reads only at the index being
 * written.  Outputs of another shape (a REDUCE kernel's per-row results)
 * are computed one after another over their own shapes.
 *
 * Errors match the interpreter's: integer division by zero from
 * ir_ew_eval, and out-of-range indices of index_select, embedding and
 * gather (every index of such a node's index operand is checked when its
 * kernel starts, as the interpreter checks every index it is given).  The
 * executor only evaluates elements a result needs, so an integer division
 * by zero in an element nothing depends on is not reported.
 *
 * A PLAN_LIBRARY kernel first computes its library node (matmul, linear,
 * conv2d, pools, sdpa, undecomposed composites) with the interpreter's own
 * kernel, on tensors viewing the planned memory (an operand the body
 * computes, such as a transposed view of a buffer, is evaluated into a
 * scratch tensor first), into a scratch result: the library result is
 * never stored in the plan's memory.  The kernel's outputs are then
 * evaluated as above, with the library result read from the scratch (the
 * elementwise epilogue: bias, activation, residual add).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/interp.h"
#include "runtime/plan_exec.h"

#define POISON 0xFF

static const char *op_name(const ir_node *n) { return ir_op_get(n->op)->name; }

/* Ops only a library routine computes: contractions, windows, composites. */
static bool is_library_op(const ir_node *n) {
    ir_category c = ir_op_get(n->op)->category;
    return c == IR_CAT_CONTRACTION || c == IR_CAT_COMPOSITE || n->op == IR_OP_MAX_POOL2D ||
           n->op == IR_OP_AVG_POOL2D || n->op == IR_OP_ADAPTIVE_AVG_POOL2D;
}

/* ---- indices and elements -------------------------------------------- */

static int64_t lin_of(const ir_type *t, const int64_t *idx) {
    int64_t l = 0;
    for (int i = 0; i < t->rank; i++) l = l * t->dim[i] + idx[i];
    return l;
}

static void delin(const ir_type *t, int64_t l, int64_t *idx) {
    for (int i = t->rank - 1; i >= 0; i--) {
        idx[i] = l % t->dim[i]; /* never called for a size-0 shape */
        l /= t->dim[i];
    }
}

/* Step a row-major multi-index over t's shape, the last dim fastest. */
static void next_index(int64_t *idx, const ir_type *t) {
    for (int i = t->rank - 1; i >= 0; i--) {
        if (++idx[i] < t->dim[i]) return;
        idx[i] = 0;
    }
}

/* The index of operand type `op` read by an elementwise or expand result
 * of type `res` at idx: NumPy broadcasting. */
static void bcast_index(const ir_type *res, const int64_t *idx, const ir_type *op, int64_t *oi) {
    int lead = res->rank - op->rank;
    for (int i = 0; i < op->rank; i++) oi[i] = op->dim[i] == 1 ? 0 : idx[lead + i];
}

static ir_scalar load(ir_dtype dt, const void *base, int64_t i) {
    ir_scalar v;
    if (ir_dtype_is_float(dt)) v.f = ir_load_f(dt, base, i);
    else v.i = ir_load_i(dt, base, i);
    return v;
}

static void store(ir_dtype dt, void *base, int64_t i, ir_scalar v) {
    if (ir_dtype_is_float(dt)) ir_store_f(dt, base, i, v.f);
    else ir_store_i(dt, base, i, v.i);
}

/* A number as the interpreter materializes it in dtype dt: stored, then
 * loaded back (attributes such as full's value, pad's value, constant's
 * data, and float-written literals). */
static ir_scalar from_double(ir_dtype dt, double v) {
    uint64_t buf = 0;
    ir_store_f(dt, &buf, 0, v);
    return load(dt, &buf, 0);
}

static ir_scalar from_int(ir_dtype dt, int64_t v) {
    uint64_t buf = 0;
    ir_store_i(dt, &buf, 0, v);
    return load(dt, &buf, 0);
}

static ir_scalar literal_value(const ir_value *v) {
    ir_dtype dt = v->type.dtype;
    if (!ir_dtype_is_float(dt) && v->lit_is_int) return from_int(dt, v->lit_i);
    return from_double(dt, v->lit_f);
}

static ir_scalar zero_of(ir_dtype dt) {
    ir_scalar z;
    if (ir_dtype_is_float(dt)) z.f = 0.0;
    else z.i = 0;
    return z;
}

/* int64 arithmetic that wraps (the interpreter's integer reductions). */
static int64_t iadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t imul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }


/* ---- state of a run ---------------------------------------------------- */

/* A body node of the running kernel, with its attributes looked up once. */
typedef struct pe_node {
    const ir_node *n;
    ir_ew ew;                    /* elementwise ops */
    int axis;                    /* slice, concat, gathers, iota; argmax/argmin: -1 = flattened */
    int64_t start, step;         /* slice */
    int64_t diag;                /* triu, tril */
    int perm[IR_MAX_RANK];       /* permute, transpose: result dim i reads operand dim perm[i] */
    int64_t before[IR_MAX_RANK]; /* pad: leading pad per operand dim */
    ir_scalar fill;              /* pad, full: the value in the result dtype */
    const double *data;          /* constant */
    bool red[IR_MAX_RANK];       /* reductions: the reduced operand dims */
    bool keep;                   /* reductions: keepdim */
    int64_t count;               /* reductions: operand elements per result element */
    ir_scalar *memo;             /* reductions: result by linear index */
    unsigned char *done;
    bool cached;                 /* one-entry cache of everything else */
    int64_t cache_at;
    ir_scalar cache;
} pe_node;

typedef struct pe_run {
    const plan *p;
    ir_diag *d;
    unsigned char *arena;
    void **data;           /* buffer id -> its memory */
    bool *handed;          /* buffer id -> an OUTPUT allocation given to the caller */
    int *body_of;          /* value id -> index in the running kernel's body, or -1 */
    bool *readable;        /* buffer id -> an input of the running kernel */
    int nvals;
    int k;                 /* the running kernel */
    const plan_kernel *kn;
    pe_node *nodes;        /* its body */
    const ir_value *lib;   /* a LIBRARY kernel's library result (never stored) */
    fusec_tensor lib_out;  /* ... computed into this scratch tensor */
} pe_run;

static bool plan_error(pe_run *r, const ir_value *v, const char *what) {
    ir_str s = {0};
    ir_value_ref(&s, v);
    ir_error(r->d, v->def ? v->def->loc : v->loc, "plan executor: kernel %s %s %s",
             r->kn->name ? r->kn->name : "?", what, s.buf ? s.buf : "?");
    ir_str_free(&s);
    return false;
}

static bool index_error(pe_run *r, const ir_node *n, int64_t v, int dim, int64_t size) {
    ir_error(r->d, n->loc, "%s: index %" PRId64 " is out of range for dimension %d of size %" PRId64,
             op_name(n), v, dim, size);
    return false;
}

/* ---- evaluation ---------------------------------------------------------- */

static bool eval_node(pe_run *r, int j, const int64_t *idx, ir_scalar *out);

/* Value v at index idx: a literal, a load, or a body node. */
static bool eval_value(pe_run *r, const ir_value *v, const int64_t *idx, ir_scalar *out) {
    if (v->kind == IR_VAL_LITERAL) {
        *out = literal_value(v);
        return true;
    }
    int b = plan_buf_of(r->p, v);
    if (b >= 0 && r->p->bufs[b].def != r->k) {
        if (!r->readable[b]) return plan_error(r, v, "reads a buffer it does not list as an input:");
        *out = load(v->type.dtype, r->data[b], lin_of(&v->type, idx));
        return true;
    }
    if (v == r->lib) {
        *out = load(v->type.dtype, r->lib_out.data, lin_of(&v->type, idx));
        return true;
    }
    int j = v->id >= 0 && v->id < r->nvals ? r->body_of[v->id] : -1;
    if (j < 0) return plan_error(r, v, "needs a value that is neither in memory nor in its body:");
    return eval_node(r, j, idx, out);
}

/* The index read through an index operand (index_select, embedding,
 * gather), checked against the size of the dimension it selects in. */
static bool load_index(pe_run *r, const ir_node *n, const int64_t *ii, int dim, int64_t size,
                       int64_t *out) {
    ir_scalar v;
    if (!eval_value(r, n->in[1], ii, &v)) return false;
    if (v.i < 0 || v.i >= size) return index_error(r, n, v.i, dim, size);
    *out = v.i;
    return true;
}

/* Step the reduced dims rd[0..nr) of xi, row-major. */
static void next_reduced(int64_t *xi, const int *rd, int nr, const ir_type *xt) {
    for (int i = nr - 1; i >= 0; i--) {
        if (++xi[rd[i]] < xt->dim[rd[i]]) return;
        xi[rd[i]] = 0;
    }
}

/* A reduction's result at idx, memoized: loop over the reduced dims of the
 * operand in row-major order, the interpreter's accumulation order. */
static bool eval_reduce(pe_run *r, pe_node *s, const int64_t *idx, ir_scalar *out) {
    const ir_node *n = s->n;
    const ir_type *ot = &n->out->type, *xt = &n->in[0]->type;
    int64_t at = lin_of(ot, idx);
    if (s->done[at]) {
        *out = s->memo[at];
        return true;
    }
    int64_t xi[IR_MAX_RANK];
    int rd[IR_MAX_RANK], nr = 0;
    for (int i = 0, o = 0; i < xt->rank; i++) {
        if (s->red[i]) {
            xi[i] = 0;
            rd[nr++] = i;
            if (s->keep) o++;
        } else {
            xi[i] = idx[o++];
        }
    }
    ir_op op = n->op;
    bool arg = op == IR_OP_ARGMAX || op == IR_OP_ARGMIN;
    if (s->count == 0 && (arg || op == IR_OP_MAX || op == IR_OP_MIN)) {
        ir_error(r->d, n->loc, "%s: reduction over an empty axis has no identity", op_name(n));
        return false;
    }
    bool isf = ir_dtype_is_float(xt->dtype);
    ir_scalar res, v;
    if (arg) {
        bool is_max = op == IR_OP_ARGMAX;
        ir_scalar best = {0};
        int64_t where = -1;
        for (int64_t c = 0; c < s->count; c++, next_reduced(xi, rd, nr, xt)) {
            int64_t pos = s->axis >= 0 ? xi[s->axis] : c;
            if (!eval_value(r, n->in[0], xi, &v)) return false;
            bool take;
            if (where < 0) take = true;
            else if (isf) take = !isnan(best.f) && (isnan(v.f) || (is_max ? v.f > best.f : v.f < best.f));
            else take = is_max ? v.i > best.i : v.i < best.i;
            if (take) best = v, where = pos;
        }
        res.i = where;
    } else if (!isf) {
        int64_t acc = op == IR_OP_PROD ? 1 : op == IR_OP_MAX ? INT64_MIN : op == IR_OP_MIN ? INT64_MAX : 0;
        for (int64_t c = 0; c < s->count; c++, next_reduced(xi, rd, nr, xt)) {
            if (!eval_value(r, n->in[0], xi, &v)) return false;
            switch (op) {
            case IR_OP_PROD: acc = imul(acc, v.i); break;
            case IR_OP_MAX: if (v.i > acc) acc = v.i; break;
            case IR_OP_MIN: if (v.i < acc) acc = v.i; break;
            default: acc = iadd(acc, v.i); break; /* sum; mean and var are float-only */
            }
        }
        res.i = acc;
    } else {
        ir_ksum acc = {op == IR_OP_PROD ? 1 : op == IR_OP_MAX ? -INFINITY : op == IR_OP_MIN ? INFINITY : 0, 0};
        for (int64_t c = 0; c < s->count; c++, next_reduced(xi, rd, nr, xt)) {
            if (!eval_value(r, n->in[0], xi, &v)) return false;
            switch (op) {
            case IR_OP_PROD: acc.s *= v.f; break;
            case IR_OP_MAX: if (!isnan(acc.s) && (isnan(v.f) || v.f > acc.s)) acc.s = v.f; break;
            case IR_OP_MIN: if (!isnan(acc.s) && (isnan(v.f) || v.f < acc.s)) acc.s = v.f; break;
            default: ir_ksum_add(&acc, v.f); break; /* sum, mean, var */
            }
        }
        double count = (double)s->count;
        if (op == IR_OP_VAR) { /* second pass: squared deviations from the mean */
            double mean = ir_ksum_get(&acc) / count;
            acc = (ir_ksum){0, 0};
            for (int64_t c = 0; c < s->count; c++, next_reduced(xi, rd, nr, xt)) {
                if (!eval_value(r, n->in[0], xi, &v)) return false;
                ir_ksum_add(&acc, (v.f - mean) * (v.f - mean));
            }
            count -= (double)ir_attr_i(n, "correction");
            if (count < 0) count = 0;
        }
        res.f = acc.s;
        if (op == IR_OP_SUM) res.f = ir_ksum_get(&acc);
        else if (op == IR_OP_MEAN || op == IR_OP_VAR) res.f = ir_ksum_get(&acc) / count;
    }
    *out = s->memo[at] = ir_scalar_round(ot->dtype, res);
    s->done[at] = 1;
    return true;
}

/* Body node j at index idx (over its result's shape). */
static bool eval_node(pe_run *r, int j, const int64_t *idx, ir_scalar *out) {
    pe_node *s = &r->nodes[j];
    const ir_node *n = s->n;
    const ir_type *ot = &n->out->type;
    ir_category cat = ir_op_get(n->op)->category;
    if (is_library_op(n)) {
        ir_error(r->d, n->loc, "plan executor: %s must be the library node of a library kernel, not part of kernel %s",
                 op_name(n), r->kn->name ? r->kn->name : "?");
        return false;
    }
    if (cat == IR_CAT_REDUCTION) return eval_reduce(r, s, idx, out);
    int64_t at = lin_of(ot, idx);
    if (s->cached && s->cache_at == at) {
        *out = s->cache;
        return true;
    }
    const ir_value *x = n->nin > 0 ? n->in[0] : NULL;
    const ir_type *xt = x ? &x->type : NULL;
    int64_t xi[IR_MAX_RANK];
    bool ok = true;
    if (cat == IR_CAT_ELEMENTWISE) {
        ir_scalar ops[3], res;
        FC_ASSERT(n->nin <= 3);
        for (int k = 0; ok && k < n->nin; k++) {
            bcast_index(ot, idx, &n->in[k]->type, xi);
            ok = eval_value(r, n->in[k], xi, &ops[k]);
        }
        if (ok && (ok = ir_ew_eval(&s->ew, ops, &res, r->d))) *out = ir_scalar_round(ot->dtype, res);
    } else {
        switch (n->op) {
        case IR_OP_EXPAND:
            bcast_index(ot, idx, xt, xi);
            ok = eval_value(r, x, xi, out);
            break;
        case IR_OP_RESHAPE:
        case IR_OP_SQUEEZE:
        case IR_OP_UNSQUEEZE: /* row-major order is unchanged */
            delin(xt, at, xi);
            ok = eval_value(r, x, xi, out);
            break;
        case IR_OP_PERMUTE:
        case IR_OP_TRANSPOSE:
            for (int i = 0; i < ot->rank; i++) xi[s->perm[i]] = idx[i];
            ok = eval_value(r, x, xi, out);
            break;
        case IR_OP_SLICE:
            memcpy(xi, idx, sizeof(int64_t) * (size_t)ot->rank);
            xi[s->axis] = s->start + idx[s->axis] * s->step;
            ok = eval_value(r, x, xi, out);
            break;
        case IR_OP_PAD: {
            bool inside = true;
            for (int i = 0; i < xt->rank && inside; i++) {
                xi[i] = idx[i] - s->before[i];
                inside = xi[i] >= 0 && xi[i] < xt->dim[i];
            }
            if (inside) ok = eval_value(r, x, xi, out);
            else *out = s->fill;
            break;
        }
        case IR_OP_CONCAT: {
            memcpy(xi, idx, sizeof(int64_t) * (size_t)ot->rank);
            int k = 0;
            while (k < n->nin - 1 && xi[s->axis] >= n->in[k]->type.dim[s->axis])
                xi[s->axis] -= n->in[k++]->type.dim[s->axis];
            ok = eval_value(r, n->in[k], xi, out);
            break;
        }
        case IR_OP_INDEX_SELECT: {
            int64_t ii[1] = {idx[s->axis]};
            memcpy(xi, idx, sizeof(int64_t) * (size_t)ot->rank);
            ok = load_index(r, n, ii, s->axis, xt->dim[s->axis], &xi[s->axis]) && eval_value(r, x, xi, out);
            break;
        }
        case IR_OP_EMBEDDING: /* weight [V, D]; result = index shape + [D] */
            xi[1] = idx[ot->rank - 1];
            ok = load_index(r, n, idx, 0, xt->dim[0], &xi[0]) && eval_value(r, x, xi, out);
            break;
        case IR_OP_GATHER:
            memcpy(xi, idx, sizeof(int64_t) * (size_t)ot->rank);
            ok = load_index(r, n, idx, s->axis, xt->dim[s->axis], &xi[s->axis]) && eval_value(r, x, xi, out);
            break;
        case IR_OP_IOTA: *out = from_int(ot->dtype, ot->rank > 0 ? idx[s->axis] : 0); break;
        case IR_OP_FULL: *out = s->fill; break;
        case IR_OP_CONSTANT: *out = from_double(ot->dtype, s->data[at]); break;
        case IR_OP_TRIU:
        case IR_OP_TRIL: {
            int64_t i = idx[ot->rank - 2], c = idx[ot->rank - 1];
            bool keep = n->op == IR_OP_TRIU ? c - i >= s->diag : c - i <= s->diag;
            if (keep) ok = eval_value(r, x, idx, out);
            else *out = zero_of(ot->dtype);
            break;
        }
        default: FC_ASSERT(!"an op the executor does not know");
        }
    }
    if (ok) {
        s->cached = true;
        s->cache_at = at;
        s->cache = *out;
    }
    return ok;
}

/* ---- one body node's set-up ------------------------------------------------ */

static int norm_axis(const ir_node *n, const char *name, int rank) {
    int a = 0;
    bool ok = ir_norm_axis(ir_attr_i(n, name), rank, &a);
    FC_ASSERT(ok); /* ir_build checked it */
    return a;
}

static bool node_init(pe_run *r, pe_node *s, const ir_node *n) {
    memset(s, 0, sizeof *s);
    s->n = n;
    s->axis = -1;
    const ir_type *ot = &n->out->type, *xt = n->nin > 0 ? &n->in[0]->type : NULL;
    ir_category cat = ir_op_get(n->op)->category;
    if (cat == IR_CAT_ELEMENTWISE) {
        ir_ew_init(&s->ew, n);
        return true;
    }
    if (is_library_op(n)) return true;
    switch (n->op) {
    case IR_OP_PERMUTE: {
        int cnt;
        const int64_t *dims = ir_attr_ints(n, "dims", &cnt);
        for (int i = 0; i < cnt; i++) {
            bool ok = ir_norm_axis(dims[i], xt->rank, &s->perm[i]);
            FC_ASSERT(ok);
        }
        break;
    }
    case IR_OP_TRANSPOSE: {
        for (int i = 0; i < xt->rank; i++) s->perm[i] = i;
        int a = norm_axis(n, "dim0", xt->rank), b = norm_axis(n, "dim1", xt->rank);
        s->perm[a] = b, s->perm[b] = a;
        break;
    }
    case IR_OP_SLICE: {
        s->axis = norm_axis(n, "axis", xt->rank);
        int64_t size = xt->dim[s->axis], start = ir_attr_i(n, "start");
        if (start < 0) start = start < -size ? 0 : start + size; /* Python's clamping */
        s->start = start > size ? size : start;
        s->step = ir_attr_i(n, "step");
        break;
    }
    case IR_OP_PAD: {
        int np;
        const int64_t *pads = ir_attr_ints(n, "pads", &np);
        for (int k = 0; k < np / 2; k++) s->before[xt->rank - np / 2 + k] = pads[2 * k];
        s->fill = from_double(xt->dtype, ir_attr_f(n, "value"));
        break;
    }
    case IR_OP_CONCAT:
    case IR_OP_INDEX_SELECT:
    case IR_OP_GATHER: s->axis = norm_axis(n, "axis", xt->rank); break;
    case IR_OP_IOTA:
        if (ot->rank > 0) s->axis = norm_axis(n, "axis", ot->rank);
        break;
    case IR_OP_FULL: s->fill = from_double(ot->dtype, ir_attr_f(n, "value")); break;
    case IR_OP_CONSTANT: {
        int cnt;
        s->data = ir_attr_floats(n, "data", &cnt);
        if (cnt != ir_type_numel(ot)) {
            ir_error(r->d, n->loc, "%s: data has %d values, the type needs %lld", op_name(n), cnt,
                     (long long)ir_type_numel(ot));
            return false;
        }
        break;
    }
    case IR_OP_TRIU:
    case IR_OP_TRIL: s->diag = ir_attr_i(n, "diagonal"); break;
    case IR_OP_SUM: case IR_OP_MEAN: case IR_OP_PROD: case IR_OP_MAX: case IR_OP_MIN:
    case IR_OP_VAR: case IR_OP_ARGMAX: case IR_OP_ARGMIN: {
        bool arg = n->op == IR_OP_ARGMAX || n->op == IR_OP_ARGMIN;
        const char *axes_name = arg ? "axis" : "axes";
        bool all = !ir_attr_has(n, axes_name);
        for (int i = 0; i < xt->rank; i++) s->red[i] = all;
        if (arg && !all && xt->rank > 0) {
            s->axis = norm_axis(n, "axis", xt->rank);
            s->red[s->axis] = true;
        } else if (!all && xt->rank > 0) {
            int cnt;
            const int64_t *axes = ir_attr_ints(n, "axes", &cnt);
            for (int i = 0; i < cnt; i++) {
                int a;
                bool ok = ir_norm_axis(axes[i], xt->rank, &a);
                FC_ASSERT(ok);
                s->red[a] = true;
            }
        }
        s->keep = ir_attr_i(n, "keepdim") != 0;
        s->count = 1;
        for (int i = 0; i < xt->rank; i++)
            if (s->red[i]) s->count *= xt->dim[i];
        int64_t m = ir_type_numel(ot);
        s->memo = malloc((size_t)(m > 0 ? m : 1) * sizeof *s->memo);
        s->done = calloc((size_t)(m > 0 ? m : 1), 1);
        if (!s->memo || !s->done) {
            ir_error(r->d, n->loc, "%s: out of memory", op_name(n));
            return false;
        }
        break;
    }
    default: break; /* expand, reshape, squeeze, unsqueeze, embedding: nothing to look up;
                       library ops are refused when evaluated */
    }
    return true;
}

/* Every index an index_select, embedding or gather of the body will be
 * given is checked before the kernel runs, as the interpreter checks every
 * index of its index operand. */
static bool check_indices(pe_run *r, const ir_node *n) {
    if (n->op != IR_OP_INDEX_SELECT && n->op != IR_OP_GATHER && n->op != IR_OP_EMBEDDING) return true;
    const ir_type *xt = &n->in[0]->type, *it = &n->in[1]->type;
    int dim = n->op == IR_OP_EMBEDDING ? 0 : norm_axis(n, "axis", xt->rank);
    int64_t ii[IR_MAX_RANK] = {0}, cnt = ir_type_numel(it), v;
    for (int64_t e = 0; e < cnt; e++, next_index(ii, it))
        if (!load_index(r, n, ii, dim, xt->dim[dim], &v)) return false;
    return true;
}

/* ---- kernels ------------------------------------------------------------- */

static void tensor_view(fusec_tensor *t, const ir_type *ty, void *data) {
    t->dtype = ty->dtype;
    t->rank = ty->rank;
    for (int i = 0; i < ty->rank; i++) t->shape[i] = ty->dim[i];
    t->data = data;
}

static bool same_shape(const ir_type *a, const ir_type *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

/* The value of output buffer b, which the running kernel must compute. */
static const ir_value *output_value(pe_run *r, int b) {
    const ir_value *v = r->p->bufs[b].value;
    if (v == r->lib || (v->id >= 0 && v->id < r->nvals && r->body_of[v->id] >= 0)) return v;
    plan_error(r, v, "writes a buffer its body does not compute:");
    return NULL;
}

static bool run_outputs(pe_run *r) {
    const plan_kernel *kn = r->kn;
    const ir_value **val = malloc(sizeof *val * (size_t)(kn->nout + 1));
    bool *joint = malloc(sizeof(bool) * (size_t)(kn->nout + 1));
    ir_scalar *x = malloc(sizeof(ir_scalar) * (size_t)(kn->nout + 1));
    bool ok = val && joint && x, any_joint = false;
    if (!ok) ir_error(r->d, r->p->g->loc, "plan executor: out of memory");
    for (int o = 0; ok && o < kn->nout; o++) {
        ok = (val[o] = output_value(r, kn->out[o])) != NULL;
        joint[o] = ok && same_shape(&val[o]->type, &kn->domain);
        any_joint |= joint[o];
    }
    int64_t idx[IR_MAX_RANK] = {0};
    /* outputs over the domain, together: every output of an element is
     * computed before any is stored (in-place reuse relies on it) */
    int64_t cnt = any_joint ? ir_type_numel(&kn->domain) : 0;
    for (int64_t e = 0; ok && e < cnt; e++, next_index(idx, &kn->domain)) {
        for (int o = 0; ok && o < kn->nout; o++)
            if (joint[o]) ok = eval_value(r, val[o], idx, &x[o]);
        for (int o = 0; ok && o < kn->nout; o++)
            if (joint[o]) store(val[o]->type.dtype, r->data[kn->out[o]], e, x[o]);
    }
    /* the others over their own shapes */
    for (int o = 0; ok && o < kn->nout; o++) {
        if (joint[o]) continue;
        const ir_type *t = &val[o]->type;
        memset(idx, 0, sizeof idx);
        cnt = ir_type_numel(t);
        for (int64_t e = 0; ok && e < cnt; e++, next_index(idx, t))
            if ((ok = eval_value(r, val[o], idx, &x[0]))) store(t->dtype, r->data[kn->out[o]], e, x[0]);
    }
    free(val);
    free(joint);
    free(x);
    return ok;
}

/* A malloc'd dense tensor of type t (at least one byte); false on OOM. */
static bool tensor_new(fusec_tensor *x, const ir_type *t) {
    size_t bytes = (size_t)ir_type_numel(t) * ir_dtype_size(t->dtype);
    tensor_view(x, t, malloc(bytes ? bytes : 1));
    return x->data != NULL;
}

/* Run one node through the interpreter: a graph of that node alone, its
 * operands as parameters (literals stay literals), attributes copied, run
 * by rt_interp_run (the interpreter's kernels are private to it), and the
 * result copied into out.  A direct per-node entry into the interpreter
 * would save the graph and the copy; the results are the same. */
static bool run_library_node(const ir_node *n, const fusec_tensor *args, fusec_tensor *out,
                             ir_diag *d) {
    const ir_op_info *info = ir_op_get(n->op);
    ir_graph *g = ir_graph_new(op_name(n));
    ir_value **ins = calloc((size_t)n->nin + 1, sizeof *ins);
    ir_attr_init *attrs = calloc((size_t)info->nattrs + 1, sizeof *attrs);
    fusec_tensor *params = calloc((size_t)n->nin + 1, sizeof *params);
    bool ok = g && ins && attrs && params;
    int np = 0, na = 0;
    for (int k = 0; ok && k < n->nin; k++) {
        const ir_value *v = n->in[k];
        if (v->kind == IR_VAL_LITERAL) {
            ins[k] = v->lit_is_int ? ir_graph_literal_i(g, v->lit_i, v->lit_is_bool, v->loc)
                                   : ir_graph_literal_f(g, v->lit_f, v->loc);
        } else {
            char name[16];
            snprintf(name, sizeof name, "a%d", k);
            ins[k] = ir_graph_add_param(g, name, &v->type, v->loc);
            params[np++] = args[k];
        }
        ok = ins[k] != NULL;
    }
    for (int i = 0; ok && i < info->nattrs; i++)
        if (n->attrs[i].set)
            attrs[na++] = (ir_attr_init){.name = info->attrs[i].name, .kind = info->attrs[i].kind,
                                         .val = n->attrs[i], .loc = n->loc};
    ir_value *res = NULL;
    if (ok) {
        res = ir_build(g, n->op, ins, n->nin, attrs, na, &n->out->type, n->loc, d);
        ok = res && ir_graph_add_result(g, res);
    } else {
        ir_error(d, n->loc, "%s: out of memory", op_name(n));
    }
    fusec_tensor t = {0};
    if (ok) ok = rt_interp_run(g, params, np, &t, 1, d) == FUSEC_OK;
    if (ok && ir_type_numel(&n->out->type) > 0)
        memcpy(out->data, t.data, (size_t)ir_type_numel(&n->out->type) * ir_dtype_size(out->dtype));
    free(t.data);
    free(ins);
    free(attrs);
    free(params);
    if (g) ir_graph_free(g);
    return ok;
}

/* The library node L of a LIBRARY kernel, into r->lib_out.  Operands in
 * memory are passed as views; an operand the body computes (a transposed
 * view of a buffer, say) is evaluated into a scratch tensor first. */
static bool run_library(pe_run *r, const ir_node *L) {
    fusec_tensor *args = calloc((size_t)L->nin + 1, sizeof *args);
    bool *owned = calloc((size_t)L->nin + 1, sizeof *owned);
    bool ok = args && owned && tensor_new(&r->lib_out, &L->out->type);
    if (!ok) ir_error(r->d, L->loc, "%s: out of memory", op_name(L));
    for (int k = 0; ok && k < L->nin; k++) {
        const ir_value *v = L->in[k];
        if (v->kind == IR_VAL_LITERAL) continue; /* run_library_node keeps it a literal */
        int b = plan_buf_of(r->p, v);
        if (b >= 0 && r->p->bufs[b].def != r->k) {
            if (!r->readable[b]) ok = plan_error(r, v, "reads a buffer it does not list as an input:");
            else tensor_view(&args[k], &v->type, r->data[b]);
            continue;
        }
        if (!(ok = owned[k] = tensor_new(&args[k], &v->type))) {
            ir_error(r->d, L->loc, "%s: out of memory", op_name(L));
            break;
        }
        int64_t idx[IR_MAX_RANK] = {0}, cnt = ir_type_numel(&v->type);
        ir_scalar x;
        for (int64_t e = 0; ok && e < cnt; e++, next_index(idx, &v->type))
            if ((ok = eval_value(r, v, idx, &x))) store(v->type.dtype, args[k].data, e, x);
    }
    if (ok) ok = run_library_node(L, args, &r->lib_out, r->d);
    if (ok) r->lib = L->out;
    for (int k = 0; owned && k < L->nin; k++)
        if (owned[k]) free(args[k].data);
    free(args);
    free(owned);
    return ok;
}

/* One kernel: set up its body, run its library node if it has one, check
 * its index operands, then compute its outputs. */
static bool run_kernel(pe_run *r) {
    const plan_kernel *kn = r->kn;
    const ir_node *lib = NULL;
    bool ok = true;
    int set = 0;
    for (; ok && set < kn->nnodes; set++) {
        const ir_node *n = kn->nodes[set];
        FC_ASSERT(n->out->id >= 0 && n->out->id < r->nvals);
        r->body_of[n->out->id] = set;
        ok = node_init(r, &r->nodes[set], n);
        if (ok && is_library_op(n) && kn->kind == PLAN_LIBRARY) {
            if (lib) {
                ir_error(r->d, n->loc, "plan executor: library kernel %s has two library nodes",
                         kn->name ? kn->name : "?");
                ok = false;
            }
            lib = n;
        }
    }
    if (ok && kn->kind == PLAN_LIBRARY && !lib) {
        ir_error(r->d, r->p->g->loc, "plan executor: library kernel %s has no library node",
                 kn->name ? kn->name : "?");
        ok = false;
    }
    if (ok && lib) ok = run_library(r, lib);
    for (int j = 0; ok && j < kn->nnodes; j++) ok = check_indices(r, kn->nodes[j]);
    if (ok) ok = run_outputs(r);
    for (int j = 0; j < set; j++) {
        r->body_of[kn->nodes[j]->out->id] = -1;
        free(r->nodes[j].memo);
        free(r->nodes[j].done);
    }
    free(r->lib_out.data);
    r->lib_out.data = NULL;
    r->lib = NULL;
    return ok;
}

/* ---- the driver --------------------------------------------------------- */

/* An input must match its parameter's type exactly (the interpreter's
 * rule and wording). */
/* Poison the TEMPs that die at kernel k, except a slot that a buffer
 * written by k took over in place. */
static void poison_dead(pe_run *r, int k) {
    const plan *p = r->p;
    for (int i = 0; i < p->nbufs; i++) {
        const plan_buf *b = &p->bufs[i];
        int end = b->last_use > b->def ? b->last_use : b->def;
        if (b->kind != PLAN_BUF_TEMP || end != k || b->bytes == 0) continue;
        bool taken = false;
        for (int o = 0; o < p->kernels[k].nout; o++) taken |= p->bufs[p->kernels[k].out[o]].reuses == b->id;
        if (!taken) memset(r->data[i], POISON, (size_t)b->bytes);
    }
}

static fusec_status run_kernels(pe_run *r) {
    const plan *p = r->p;
    for (int k = 0; k < p->nkernels; k++) {
        r->k = k;
        r->kn = &p->kernels[k];
        for (int i = 0; i < r->kn->nin; i++) r->readable[r->kn->in[i]] = true;
        bool ok = run_kernel(r);
        for (int i = 0; i < r->kn->nin; i++) r->readable[r->kn->in[i]] = false;
        if (!ok) return FUSEC_ERR_RUNTIME;
        poison_dead(r, k);
    }
    return FUSEC_OK;
}

/* Check the plan's buffers against its arena and allocate their memory. */
static fusec_status setup_memory(pe_run *r, const fusec_tensor *in) {
    const plan *p = r->p;
    static const uint64_t empty[1]; /* the data of an empty input given as NULL */
    for (int i = 0; i < p->nbufs; i++) {
        const plan_buf *b = &p->bufs[i];
        if (b->kind == PLAN_BUF_TEMP && (b->offset < 0 || b->offset + b->bytes > p->arena_bytes)) {
            ir_str s = {0};
            ir_value_ref(&s, b->value);
            ir_error(r->d, p->g->loc, "plan executor: buffer %d (%s) has no arena slot (run memory planning)",
                     b->id, s.buf ? s.buf : "?");
            ir_str_free(&s);
            return FUSEC_ERR_INVALID;
        }
    }
    size_t asize = (size_t)(p->arena_bytes + PLAN_ARENA_ALIGN - 1) / PLAN_ARENA_ALIGN * PLAN_ARENA_ALIGN;
    r->arena = aligned_alloc(PLAN_ARENA_ALIGN, asize ? asize : PLAN_ARENA_ALIGN);
    if (!r->arena) goto oom;
    memset(r->arena, POISON, asize);
    for (int i = 0; i < p->nbufs; i++) {
        const plan_buf *b = &p->bufs[i];
        switch (b->kind) {
        case PLAN_BUF_INPUT:
            FC_ASSERT(b->value->kind == IR_VAL_PARAM);
            r->data[i] = in[b->value->param_index].data ? in[b->value->param_index].data : (void *)empty;
            break;
        case PLAN_BUF_TEMP: r->data[i] = r->arena + b->offset; break;
        case PLAN_BUF_OUTPUT:
            r->data[i] = malloc(b->bytes > 0 ? (size_t)b->bytes : 1);
            if (!r->data[i]) goto oom;
            memset(r->data[i], POISON, (size_t)b->bytes);
            break;
        }
    }
    return FUSEC_OK;
oom:
    ir_error(r->d, p->g->loc, "plan executor: out of memory");
    return FUSEC_ERR_NOMEM;
}

/* Hand the results to the caller: an OUTPUT allocation the first time,
 * a copy for a result that is an input, a TEMP or already handed out. */
static fusec_status take_results(pe_run *r, fusec_tensor *out) {
    const plan *p = r->p;
    for (int i = 0; i < p->g->nresults; i++) {
        const ir_value *v = p->g->results[i];
        int b = plan_buf_of(p, v);
        tensor_view(&out[i], &v->type, NULL);
        if (b < 0) {
            ir_str s = {0};
            ir_value_ref(&s, v);
            ir_error(r->d, p->g->loc, "plan executor: result %d (%s) has no buffer", i, s.buf ? s.buf : "?");
            ir_str_free(&s);
            return FUSEC_ERR_INVALID;
        }
        if (p->bufs[b].kind == PLAN_BUF_OUTPUT && !r->handed[b]) {
            out[i].data = r->data[b];
            r->handed[b] = true;
            continue;
        }
        size_t bytes = (size_t)ir_type_numel(&v->type) * ir_dtype_size(v->type.dtype);
        out[i].data = malloc(bytes ? bytes : 1);
        if (!out[i].data) {
            ir_error(r->d, p->g->loc, "plan executor: cannot allocate result %d", i);
            return FUSEC_ERR_NOMEM;
        }
        if (bytes) memcpy(out[i].data, r->data[b], bytes);
    }
    return FUSEC_OK;
}

fusec_status rt_plan_run(const plan *p, const fusec_tensor *in, int nin, fusec_tensor *out,
                         int nout, ir_diag *d) {
    const ir_graph *g = p->g;
    fusec_status st0 = rt_check_io(g, in, nin, out, nout, d);
    if (st0 != FUSEC_OK) return st0;

    pe_run r = {.p = p, .d = d, .nvals = g->next_id};
    int maxnodes = 1;
    for (int k = 0; k < p->nkernels; k++)
        if (p->kernels[k].nnodes > maxnodes) maxnodes = p->kernels[k].nnodes;
    size_t nb = (size_t)(p->nbufs > 0 ? p->nbufs : 1), nv = (size_t)(r.nvals > 0 ? r.nvals : 1);
    r.data = calloc(nb, sizeof *r.data);
    r.handed = calloc(nb, sizeof *r.handed);
    r.readable = calloc(nb, sizeof *r.readable);
    r.body_of = malloc(nv * sizeof *r.body_of);
    r.nodes = malloc((size_t)maxnodes * sizeof *r.nodes);
    fusec_status st = FUSEC_OK;
    if (!r.data || !r.handed || !r.readable || !r.body_of || !r.nodes) {
        ir_error(d, g->loc, "plan executor: out of memory");
        st = FUSEC_ERR_NOMEM;
    }
    if (st == FUSEC_OK) {
        for (size_t i = 0; i < nv; i++) r.body_of[i] = -1;
        st = setup_memory(&r, in);
    }
    if (st == FUSEC_OK) st = run_kernels(&r);
    if (st == FUSEC_OK) st = take_results(&r, out);
    if (st != FUSEC_OK) {
        for (int i = 0; i < nout; i++) {
            int b = plan_buf_of(p, g->results[i]);
            bool handed = b >= 0 && r.handed && r.handed[b] && out[i].data == r.data[b];
            if (!handed) free(out[i].data); /* a handed buffer is freed below */
            out[i].data = NULL;
        }
    }
    for (int i = 0; r.data && i < p->nbufs; i++)
        if (p->bufs[i].kind == PLAN_BUF_OUTPUT && (st != FUSEC_OK || !r.handed[i])) free(r.data[i]);
    free(r.arena);
    free(r.data);
    free(r.handed);
    free(r.readable);
    free(r.body_of);
    free(r.nodes);
    return st;
}
