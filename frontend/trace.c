/*
 * trace.c - the tracer: fusec_input / fusec_output / fusec_scalar, the value
 * accessors, and one builder per op of the catalogue (docs/ir.md section 6).
 *
 * A builder is a thin translation of its C arguments into what the text IR
 * would say: the operands, and an ir_attr_init for each attribute the caller
 * actually gave.  It then calls ir_build, the constructor the parser uses
 * too, so tracing and parsing share every check, every default and every
 * message; a traced graph prints exactly as its text form parses.  The
 * tracer itself only checks what ir_build cannot see:
 *
 *  - NULL operands.  A required NULL operand is normally the result of an
 *    earlier failed builder: the graph then already holds its first error,
 *    and the builder returns NULL quietly (sticky errors).  On a graph
 *    without an error it is a misuse and becomes the error.  Optional
 *    trailing operands (bias, mask, ...) take NULL as "not given"; when the
 *    graph already holds an error such a NULL is ambiguous, so the builder
 *    returns NULL rather than silently building without it.  A later
 *    optional operand given without an earlier one (bias without weight) is
 *    an error: the IR's optional operands are positional.
 *  - Foreign operands.  fe_graph_owns (api.c) compares the operand with the
 *    registry of values this graph handed out, so a value from another graph
 *    is refused instead of being wired in.
 *  - Scalars.  fusec_scalar makes an IR literal: a 0-d constant that, as in
 *    the text IR, takes the dtype of the op's first tensor operand (for
 *    `where`, of its first tensor branch); ir_build refuses a value that the
 *    dtype cannot hold.  The scalar's own dtype only says how it is written
 *    (true/false for bool, an integer for integer dtypes when the value is
 *    integral, else a float), so print -> parse -> print is the identity.
 *    An op with no tensor to take that dtype from (every operand a scalar,
 *    or both branches of `where`) is refused: the text IR could not say it.
 *  - Lists given as (pointer, count): a negative count, or a NULL pointer
 *    with a positive count.  (NULL, 0) means "not given" for an attribute
 *    that may be omitted; for a required list (reshape's shape, ...) it is
 *    the empty list, so a reshape to a 0-d tensor is (NULL, 0).  Fixed pairs
 *    (conv2d stride, ...) given as NULL are not given.
 *
 * fusec_input, fusec_output and fusec_value_set_name record their misuse on
 * the graph as well (a duplicate name or a foreign output breaks the trace
 * just as a bad builder call does), besides returning NULL or a status.
 *
 * Errors read "fusec_<op>: <ir_build's message without its 'op: ' prefix>",
 * e.g. "fusec_add: cannot broadcast %a (f32[2, 3]) with %b (f32[4])".
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "frontend/api.h"

/* ---- attributes ---------------------------------------------------------- */

#define MAX_ATTRS 6

/* The attributes a builder gives, in the form ir_build takes.  Lists point
 * into the caller's arrays: ir_build copies what it keeps. */
typedef struct attrs {
    fusec_graph *g;
    const char *fn;
    ir_attr_init a[MAX_ATTRS];
    int n;
    bool bad; /* an argument was malformed; the error is recorded */
} attrs;

static ir_attr_init *at_new(attrs *l, const char *name, ir_attr_kind kind) {
    FC_ASSERT(l->n < MAX_ATTRS);
    ir_attr_init *a = &l->a[l->n++];
    memset(a, 0, sizeof *a);
    a->name = name;
    a->kind = kind;
    a->val.set = true;
    return a;
}

static void at_i(attrs *l, const char *name, int64_t v) { at_new(l, name, IR_AK_INT)->val.i = v; }
static void at_b(attrs *l, const char *name, bool v) { at_new(l, name, IR_AK_BOOL)->val.i = v; }
static void at_f(attrs *l, const char *name, double v) { at_new(l, name, IR_AK_FLOAT)->val.f = v; }
static void at_s(attrs *l, const char *name, const char *v) { at_new(l, name, IR_AK_STR)->val.s = v; }

static bool dtype_ok(fusec_graph *g, const char *fn, fusec_dtype dt, const char *what) {
    if ((unsigned)dt < FUSEC_DTYPE_COUNT) return true;
    fe_graph_fail(g, "%s: %s is not a valid dtype (%d)", fn, what, (int)dt);
    return false;
}

static void at_dt(attrs *l, const char *name, fusec_dtype v) {
    if (!dtype_ok(l->g, l->fn, v, name)) {
        l->bad = true;
        return;
    }
    at_new(l, name, IR_AK_DTYPE)->val.dt = v;
}

/* A list of `count` values at p; see the essay for (NULL, 0). */
static bool list_ok(attrs *l, const char *name, const void *p, int count) {
    if (count < 0 || (!p && count > 0)) {
        fe_graph_fail(l->g, "%s: %s is %s with a count of %d", l->fn, name, p ? "given" : "NULL",
                      count);
        l->bad = true;
        return false;
    }
    return true;
}

static void at_ints(attrs *l, const char *name, const int64_t *p, int count) {
    if (!list_ok(l, name, p, count)) return;
    ir_attr_init *a = at_new(l, name, IR_AK_INTS);
    a->val.n = count;
    a->val.ints = (int64_t *)p;
}

/* An attribute that may be omitted: (NULL, 0) leaves it out. */
static void at_ints_opt(attrs *l, const char *name, const int64_t *p, int count) {
    if (p || count) at_ints(l, name, p, count);
}

static void at_pair(attrs *l, const char *name, const int64_t *p) {
    if (p) at_ints(l, name, p, 2);
}

static void at_floats(attrs *l, const char *name, const double *p, int count) {
    if (!list_ok(l, name, p, count)) return;
    ir_attr_init *a = at_new(l, name, IR_AK_FLOATS);
    a->val.n = count;
    a->val.floats = (double *)p;
}

#define ATTR_LIST(g) {.g = (g), .fn = __func__}

/* ---- the one path into ir_build ------------------------------------------ */

/* Record ir_build's diagnostics as "fn: message": each line loses the
 * "error: " of the location-less diag and the "op: " that ir_build puts in
 * front (fn already names the op); several lines are joined with "; ". */
static void fail_diag(fusec_graph *g, const char *fn, ir_op op, const ir_diag *d) {
    const char *opname = ir_op_get(op)->name;
    size_t oplen = strlen(opname);
    ir_str s = {0};
    ir_str_puts(&s, fn);
    ir_str_puts(&s, ": ");
    const char *p = d->out.buf ? d->out.buf : "";
    bool first = true;
    while (*p) {
        const char *e = strchr(p, '\n');
        if (!e) e = p + strlen(p);
        if (strncmp(p, "error: ", 7) == 0) p += 7;
        if ((size_t)(e - p) > oplen + 1 && strncmp(p, opname, oplen) == 0 && p[oplen] == ':' &&
            p[oplen + 1] == ' ')
            p += oplen + 2;
        if (e > p) {
            if (!first) ir_str_puts(&s, "; ");
            ir_str_printf(&s, "%.*s", (int)(e - p), p);
            first = false;
        }
        p = *e ? e + 1 : e;
    }
    if (first) ir_str_puts(&s, "out of memory");
    fe_graph_fail(g, "%s", s.buf ? s.buf : "out of memory");
    ir_str_free(&s);
}

static const char *operand_name(const char *const *names, int i, char *buf, size_t n) {
    if (names) return names[i];
    snprintf(buf, n, "xs[%d]", i);
    return buf;
}

/* Check the operands (the first nreq required, the rest optional and
 * trailing) and build op.  See the essay for the NULL rules. */
static fusec_value *build(fusec_graph *g, const char *fn, ir_op op, const char *const *names,
                          fusec_value *const *in, int nin, int nreq, const attrs *al,
                          const ir_type *declared) {
    if (!g) return NULL;
    int given = 0;
    bool tensor = false; /* a tensor that literals can take their dtype from */
    int ref_from = op == IR_OP_WHERE ? 1 : 0;
    char buf[32];
    for (int i = 0; i < nin; i++) {
        const ir_value *v = (const ir_value *)in[i];
        const char *nm = operand_name(names, i, buf, sizeof buf);
        if (!v) {
            if (i < nreq && !g->err) fe_graph_fail(g, "%s: operand %s is NULL", fn, nm);
            if (i < nreq || g->err) return NULL;
            continue;
        }
        if (given < i) {
            fe_graph_fail(g, "%s: %s given without %s", fn, nm, names ? names[given] : "?");
            return NULL;
        }
        if (!fe_graph_owns(g, v)) {
            fe_graph_fail(g, "%s: operand %s is not a value of graph @%s", fn, nm, g->g->name);
            return NULL;
        }
        if (v->kind != IR_VAL_LITERAL && i >= ref_from) tensor = true;
        given++;
    }
    if (al && al->bad) return NULL;
    if (given > ref_from && !tensor) {
        fe_graph_fail(g, "%s: needs a tensor %s; a scalar (fusec_scalar) takes its dtype from one",
                      fn, op == IR_OP_WHERE ? "a or b" : "operand");
        return NULL;
    }
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    ir_value *v = ir_build(g->g, op, (ir_value *const *)in, given, al ? al->a : NULL,
                           al ? al->n : 0, declared, (ir_loc){0, 0}, &d);
    if (!v) fail_diag(g, fn, op, &d);
    ir_diag_free(&d);
    if (!v || !fe_graph_adopt(g, v)) return NULL;
    return (fusec_value *)v;
}

static const char *const x_names[] = {"x"};
static const char *const ab_names[] = {"a", "b"};

static fusec_value *build1(fusec_graph *g, const char *fn, ir_op op, fusec_value *x,
                           const attrs *al) {
    return build(g, fn, op, x_names, &x, 1, 1, al, NULL);
}

static fusec_value *build2(fusec_graph *g, const char *fn, ir_op op, fusec_value *a,
                           fusec_value *b) {
    fusec_value *in[2] = {a, b};
    return build(g, fn, op, ab_names, in, 2, 2, NULL, NULL);
}

/* A tensor type from public arguments; false (error recorded) if bad. */
static bool make_type(fusec_graph *g, const char *fn, fusec_dtype dt, int rank,
                      const int64_t *shape, ir_type *t) {
    if (!dtype_ok(g, fn, dt, "dtype")) return false;
    if (rank < 0 || rank > FUSEC_MAX_RANK) {
        fe_graph_fail(g, "%s: rank %d is out of range (0 to %d)", fn, rank, FUSEC_MAX_RANK);
        return false;
    }
    if (rank > 0 && !shape) {
        fe_graph_fail(g, "%s: shape is NULL for rank %d", fn, rank);
        return false;
    }
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->rank = rank;
    int64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0) {
            fe_graph_fail(g, "%s: shape[%d] = %lld is negative", fn, i, (long long)shape[i]);
            return false;
        }
        if (shape[i] && numel > INT64_MAX / shape[i]) {
            fe_graph_fail(g, "%s: the shape has too many elements", fn);
            return false;
        }
        numel *= shape[i];
        t->dim[i] = shape[i];
    }
    return true;
}

/* ---- inputs, outputs, scalars, names --------------------------------------- */

/* A name for a new or renamed value: valid syntax and not printed by
 * another value yet.  `self` is the value being renamed, or NULL. */
static bool name_ok(fusec_graph *g, const char *fn, const char *name, const ir_value *self) {
    if (!fe_name_valid(name)) {
        fe_graph_fail(g, "%s: invalid name '%s' (names are [A-Za-z_][A-Za-z0-9_.]* or digits)", fn,
                      name ? name : "(null)");
        return false;
    }
    if (fe_name_taken(g, name, self)) {
        fe_graph_fail(g, "%s: the name %%%s is already used in graph @%s", fn, name, g->g->name);
        return false;
    }
    return true;
}

fusec_value *fusec_input(fusec_graph *g, const char *name, fusec_dtype dt, int rank,
                         const int64_t *shape) {
    if (!g) return NULL;
    ir_type t;
    if (!make_type(g, __func__, dt, rank, shape, &t)) return NULL;
    if (name && !name_ok(g, __func__, name, NULL)) return NULL;
    ir_value *v = ir_graph_add_param(g->g, name, &t, (ir_loc){0, 0});
    if (!v) {
        fe_graph_fail(g, "%s: out of memory", __func__);
        return NULL;
    }
    return fe_graph_adopt(g, v) ? (fusec_value *)v : NULL;
}

fusec_status fusec_output(fusec_graph *g, fusec_value *value) {
    if (!g) return FUSEC_ERR_INVALID;
    ir_value *v = (ir_value *)value;
    if (!v) {
        fe_graph_fail(g, "%s: value is NULL", __func__); /* kept only if first */
        return FUSEC_ERR_INVALID;
    }
    if (!fe_graph_owns(g, v)) {
        fe_graph_fail(g, "%s: the value is not a value of graph @%s", __func__, g->g->name);
        return FUSEC_ERR_INVALID;
    }
    if (v->kind == IR_VAL_LITERAL) {
        fe_graph_fail(g, "%s: a scalar cannot be an output (make a tensor with fusec_full)",
                      __func__);
        return FUSEC_ERR_INVALID;
    }
    if (!ir_graph_add_result(g->g, v)) {
        fe_graph_fail(g, "%s: out of memory", __func__);
        return FUSEC_ERR_NOMEM;
    }
    return FUSEC_OK;
}

fusec_value *fusec_scalar(fusec_graph *g, double value, fusec_dtype dt) {
    if (!g || !dtype_ok(g, __func__, dt, "dtype")) return NULL;
    ir_value *v;
    ir_loc loc = {0, 0};
    if (dt == FUSEC_DTYPE_BOOL)
        v = ir_graph_literal_i(g->g, value != 0, true, loc);
    else if (!ir_dtype_is_float(dt) && value == floor(value) && fabs(value) < 9.2e18)
        v = ir_graph_literal_i(g->g, (int64_t)value, false, loc);
    else
        v = ir_graph_literal_f(g->g, value, loc);
    if (!v) {
        fe_graph_fail(g, "%s: out of memory", __func__);
        return NULL;
    }
    v->type.dtype = dt; /* what fusec_value_dtype reports; ir_build retypes each use */
    v->type.rank = 0;
    return fe_graph_adopt(g, v) ? (fusec_value *)v : NULL;
}

fusec_status fusec_value_set_name(fusec_graph *g, fusec_value *value, const char *name) {
    if (!g) return FUSEC_ERR_INVALID;
    ir_value *v = (ir_value *)value;
    if (!v) {
        fe_graph_fail(g, "%s: value is NULL", __func__);
        return FUSEC_ERR_INVALID;
    }
    if (!fe_graph_owns(g, v)) {
        fe_graph_fail(g, "%s: the value is not a value of graph @%s", __func__, g->g->name);
        return FUSEC_ERR_INVALID;
    }
    if (v->kind == IR_VAL_LITERAL) {
        fe_graph_fail(g, "%s: a scalar has no name (it prints as its value)", __func__);
        return FUSEC_ERR_INVALID;
    }
    if (!name_ok(g, __func__, name, v)) return FUSEC_ERR_INVALID;
    return fe_name_assign(g, v, name, __func__) ? FUSEC_OK : FUSEC_ERR_NOMEM;
}

/* Accessors of a NULL value answer "no such value": dtype -1, rank -1. */
fusec_dtype fusec_value_dtype(const fusec_value *value) {
    return value ? ((const ir_value *)value)->type.dtype : (fusec_dtype)-1;
}

int fusec_value_rank(const fusec_value *value) {
    return value ? ((const ir_value *)value)->type.rank : -1;
}

int64_t fusec_value_dim(const fusec_value *value, int axis) {
    const ir_value *v = (const ir_value *)value;
    int a;
    if (!v || !ir_norm_axis(axis, v->type.rank, &a)) return -1;
    return v->type.dim[a];
}

/* ---- elementwise ---------------------------------------------------------- */

#define UNARY(NAME, OPE) \
    fusec_value *fusec_##NAME(fusec_graph *g, fusec_value *x) { \
        return build1(g, __func__, IR_OP_##OPE, x, NULL);     \
    }
#define BINARY(NAME, OPE) \
    fusec_value *fusec_##NAME(fusec_graph *g, fusec_value *a, fusec_value *b) { \
        return build2(g, __func__, IR_OP_##OPE, a, b);                          \
    }

UNARY(neg, NEG)
UNARY(abs, ABS)
UNARY(sign, SIGN)
UNARY(exp, EXP)
UNARY(exp2, EXP2)
UNARY(log, LOG)
UNARY(log2, LOG2)
UNARY(log1p, LOG1P)
UNARY(expm1, EXPM1)
UNARY(sqrt, SQRT)
UNARY(rsqrt, RSQRT)
UNARY(reciprocal, RECIPROCAL)
UNARY(sin, SIN)
UNARY(cos, COS)
UNARY(tan, TAN)
UNARY(tanh, TANH)
UNARY(sigmoid, SIGMOID)
UNARY(erf, ERF)
UNARY(relu, RELU)
UNARY(silu, SILU)
UNARY(floor, FLOOR)
UNARY(ceil, CEIL)
UNARY(round, ROUND)
UNARY(not, NOT)
UNARY(isnan, ISNAN)
UNARY(isinf, ISINF)

BINARY(add, ADD)
BINARY(sub, SUB)
BINARY(mul, MUL)
BINARY(div, DIV)
BINARY(pow, POW)
BINARY(maximum, MAXIMUM)
BINARY(minimum, MINIMUM)
BINARY(remainder, REMAINDER)
BINARY(and, AND)
BINARY(or, OR)
BINARY(xor, XOR)
BINARY(eq, EQ)
BINARY(ne, NE)
BINARY(lt, LT)
BINARY(le, LE)
BINARY(gt, GT)
BINARY(ge, GE)

fusec_value *fusec_gelu(fusec_graph *g, fusec_value *x, const char *approximate) {
    attrs al = ATTR_LIST(g);
    if (approximate) at_s(&al, "approximate", approximate);
    return build1(g, __func__, IR_OP_GELU, x, &al);
}

fusec_value *fusec_cast(fusec_graph *g, fusec_value *x, fusec_dtype to) {
    attrs al = ATTR_LIST(g);
    at_dt(&al, "to", to);
    return build1(g, __func__, IR_OP_CAST, x, &al);
}

fusec_value *fusec_clamp(fusec_graph *g, fusec_value *x, bool has_min, double min, bool has_max,
                         double max) {
    attrs al = ATTR_LIST(g);
    if (has_min) at_f(&al, "min", min);
    if (has_max) at_f(&al, "max", max);
    return build1(g, __func__, IR_OP_CLAMP, x, &al);
}

fusec_value *fusec_where(fusec_graph *g, fusec_value *cond, fusec_value *a, fusec_value *b) {
    static const char *const names[] = {"cond", "a", "b"};
    fusec_value *in[3] = {cond, a, b};
    return build(g, __func__, IR_OP_WHERE, names, in, 3, 3, NULL, NULL);
}

fusec_value *fusec_masked_fill(fusec_graph *g, fusec_value *x, fusec_value *mask, double value) {
    static const char *const names[] = {"x", "mask"};
    fusec_value *in[2] = {x, mask};
    attrs al = ATTR_LIST(g);
    at_f(&al, "value", value);
    return build(g, __func__, IR_OP_MASKED_FILL, names, in, 2, 2, &al, NULL);
}

/* ---- reductions ------------------------------------------------------------ */

static fusec_value *reduce(fusec_graph *g, const char *fn, ir_op op, fusec_value *x,
                           const int64_t *axes, int naxes, bool keepdim, attrs *al) {
    at_ints_opt(al, "axes", axes, naxes);
    at_b(al, "keepdim", keepdim);
    return build1(g, fn, op, x, al);
}

#define REDUCE(NAME, OPE)                                                                     \
    fusec_value *fusec_##NAME(fusec_graph *g, fusec_value *x, const int64_t *axes, int naxes, \
                              bool keepdim) {                                                 \
        attrs al = ATTR_LIST(g);                                                                  \
        return reduce(g, __func__, IR_OP_##OPE, x, axes, naxes, keepdim, &al);                \
    }

REDUCE(sum, SUM)
REDUCE(mean, MEAN)
REDUCE(prod, PROD)
REDUCE(max, MAX)
REDUCE(min, MIN)

fusec_value *fusec_var(fusec_graph *g, fusec_value *x, const int64_t *axes, int naxes,
                       bool keepdim, int64_t correction) {
    attrs al = ATTR_LIST(g);
    at_i(&al, "correction", correction);
    return reduce(g, __func__, IR_OP_VAR, x, axes, naxes, keepdim, &al);
}

fusec_value *fusec_argmax(fusec_graph *g, fusec_value *x, int64_t axis, bool keepdim) {
    attrs al = ATTR_LIST(g);
    at_i(&al, "axis", axis);
    at_b(&al, "keepdim", keepdim);
    return build1(g, __func__, IR_OP_ARGMAX, x, &al);
}

fusec_value *fusec_argmin(fusec_graph *g, fusec_value *x, int64_t axis, bool keepdim) {
    attrs al = ATTR_LIST(g);
    at_i(&al, "axis", axis);
    at_b(&al, "keepdim", keepdim);
    return build1(g, __func__, IR_OP_ARGMIN, x, &al);
}

/* ---- normalisation and activation composites ------------------------------- */

fusec_value *fusec_softmax(fusec_graph *g, fusec_value *x, int64_t axis) {
    attrs al = ATTR_LIST(g);
    at_i(&al, "axis", axis);
    return build1(g, __func__, IR_OP_SOFTMAX, x, &al);
}

fusec_value *fusec_log_softmax(fusec_graph *g, fusec_value *x, int64_t axis) {
    attrs al = ATTR_LIST(g);
    at_i(&al, "axis", axis);
    return build1(g, __func__, IR_OP_LOG_SOFTMAX, x, &al);
}

fusec_value *fusec_layer_norm(fusec_graph *g, fusec_value *x, fusec_value *weight,
                              fusec_value *bias, const int64_t *axes, int naxes, double eps) {
    static const char *const names[] = {"x", "weight", "bias"};
    fusec_value *in[3] = {x, weight, bias};
    attrs al = ATTR_LIST(g);
    at_ints_opt(&al, "axes", axes, naxes);
    at_f(&al, "eps", eps);
    return build(g, __func__, IR_OP_LAYER_NORM, names, in, 3, 1, &al, NULL);
}

fusec_value *fusec_rms_norm(fusec_graph *g, fusec_value *x, fusec_value *weight,
                            const int64_t *axes, int naxes, double eps) {
    static const char *const names[] = {"x", "weight"};
    fusec_value *in[2] = {x, weight};
    attrs al = ATTR_LIST(g);
    at_ints_opt(&al, "axes", axes, naxes);
    at_f(&al, "eps", eps);
    return build(g, __func__, IR_OP_RMS_NORM, names, in, 2, 1, &al, NULL);
}

fusec_value *fusec_batch_norm(fusec_graph *g, fusec_value *x, fusec_value *mean,
                              fusec_value *var, fusec_value *weight, fusec_value *bias,
                              double eps) {
    static const char *const names[] = {"x", "mean", "var", "weight", "bias"};
    fusec_value *in[5] = {x, mean, var, weight, bias};
    attrs al = ATTR_LIST(g);
    at_f(&al, "eps", eps);
    return build(g, __func__, IR_OP_BATCH_NORM, names, in, 5, 3, &al, NULL);
}

/* ---- shape and data movement ------------------------------------------------ */

fusec_value *fusec_reshape(fusec_graph *g, fusec_value *x, const int64_t *shape, int rank) {
    attrs al = ATTR_LIST(g);
    at_ints(&al, "shape", shape, rank);
    return build1(g, __func__, IR_OP_RESHAPE, x, &al);
}

fusec_value *fusec_permute(fusec_graph *g, fusec_value *x, const int64_t *dims, int rank) {
    attrs al = ATTR_LIST(g);
    at_ints(&al, "dims", dims, rank);
    return build1(g, __func__, IR_OP_PERMUTE, x, &al);
}

fusec_value *fusec_transpose(fusec_graph *g, fusec_value *x, int64_t dim0, int64_t dim1) {
    attrs al = ATTR_LIST(g);
    at_i(&al, "dim0", dim0);
    at_i(&al, "dim1", dim1);
    return build1(g, __func__, IR_OP_TRANSPOSE, x, &al);
}

fusec_value *fusec_expand(fusec_graph *g, fusec_value *x, const int64_t *shape, int rank) {
    attrs al = ATTR_LIST(g);
    at_ints(&al, "shape", shape, rank);
    return build1(g, __func__, IR_OP_EXPAND, x, &al);
}

fusec_value *fusec_squeeze(fusec_graph *g, fusec_value *x, const int64_t *axes, int naxes) {
    attrs al = ATTR_LIST(g);
    at_ints_opt(&al, "axes", axes, naxes);
    return build1(g, __func__, IR_OP_SQUEEZE, x, &al);
}

fusec_value *fusec_unsqueeze(fusec_graph *g, fusec_value *x, int64_t axis) {
    attrs al = ATTR_LIST(g);
    at_i(&al, "axis", axis);
    return build1(g, __func__, IR_OP_UNSQUEEZE, x, &al);
}

fusec_value *fusec_slice(fusec_graph *g, fusec_value *x, int64_t axis, int64_t start, int64_t end,
                         int64_t step) {
    attrs al = ATTR_LIST(g);
    at_i(&al, "axis", axis);
    at_i(&al, "start", start);
    at_i(&al, "end", end);
    at_i(&al, "step", step);
    return build1(g, __func__, IR_OP_SLICE, x, &al);
}

fusec_value *fusec_concat(fusec_graph *g, fusec_value *const *xs, int n, int64_t axis) {
    if (!g) return NULL;
    if (n < 0 || (!xs && n > 0)) {
        fe_graph_fail(g, "%s: xs is %s with a count of %d", __func__, xs ? "given" : "NULL", n);
        return NULL;
    }
    attrs al = ATTR_LIST(g);
    at_i(&al, "axis", axis);
    return build(g, __func__, IR_OP_CONCAT, NULL, xs, n, n, &al, NULL);
}

fusec_value *fusec_pad(fusec_graph *g, fusec_value *x, const int64_t *pads, int npads,
                       double value) {
    attrs al = ATTR_LIST(g);
    at_ints(&al, "pads", pads, npads);
    at_f(&al, "value", value);
    return build1(g, __func__, IR_OP_PAD, x, &al);
}

fusec_value *fusec_index_select(fusec_graph *g, fusec_value *x, fusec_value *idx, int64_t axis) {
    static const char *const names[] = {"x", "idx"};
    fusec_value *in[2] = {x, idx};
    attrs al = ATTR_LIST(g);
    at_i(&al, "axis", axis);
    return build(g, __func__, IR_OP_INDEX_SELECT, names, in, 2, 2, &al, NULL);
}

fusec_value *fusec_embedding(fusec_graph *g, fusec_value *weight, fusec_value *idx) {
    static const char *const names[] = {"weight", "idx"};
    fusec_value *in[2] = {weight, idx};
    return build(g, __func__, IR_OP_EMBEDDING, names, in, 2, 2, NULL, NULL);
}

fusec_value *fusec_gather(fusec_graph *g, fusec_value *x, fusec_value *idx, int64_t axis) {
    static const char *const names[] = {"x", "idx"};
    fusec_value *in[2] = {x, idx};
    attrs al = ATTR_LIST(g);
    at_i(&al, "axis", axis);
    return build(g, __func__, IR_OP_GATHER, names, in, 2, 2, &al, NULL);
}

/* ---- creation ----------------------------------------------------------------- */

fusec_value *fusec_full(fusec_graph *g, double value, fusec_dtype dt, int rank,
                        const int64_t *shape) {
    ir_type t;
    if (!g || !make_type(g, __func__, dt, rank, shape, &t)) return NULL;
    attrs al = ATTR_LIST(g);
    at_f(&al, "value", value);
    return build(g, __func__, IR_OP_FULL, NULL, NULL, 0, 0, &al, &t);
}

fusec_value *fusec_iota(fusec_graph *g, int64_t axis, fusec_dtype dt, int rank,
                        const int64_t *shape) {
    ir_type t;
    if (!g || !make_type(g, __func__, dt, rank, shape, &t)) return NULL;
    attrs al = ATTR_LIST(g);
    at_i(&al, "axis", axis);
    return build(g, __func__, IR_OP_IOTA, NULL, NULL, 0, 0, &al, &t);
}

fusec_value *fusec_constant(fusec_graph *g, const double *data, fusec_dtype dt, int rank,
                            const int64_t *shape) {
    ir_type t;
    if (!g || !make_type(g, __func__, dt, rank, shape, &t)) return NULL;
    int64_t numel = ir_type_numel(&t);
    if (numel > INT_MAX) {
        fe_graph_fail(g, "%s: %lld elements are too many for a constant", __func__,
                      (long long)numel);
        return NULL;
    }
    attrs al = ATTR_LIST(g);
    at_floats(&al, "data", data, (int)numel);
    return build(g, __func__, IR_OP_CONSTANT, NULL, NULL, 0, 0, &al, &t);
}

fusec_value *fusec_triu(fusec_graph *g, fusec_value *x, int64_t diagonal) {
    attrs al = ATTR_LIST(g);
    at_i(&al, "diagonal", diagonal);
    return build1(g, __func__, IR_OP_TRIU, x, &al);
}

fusec_value *fusec_tril(fusec_graph *g, fusec_value *x, int64_t diagonal) {
    attrs al = ATTR_LIST(g);
    at_i(&al, "diagonal", diagonal);
    return build1(g, __func__, IR_OP_TRIL, x, &al);
}

/* ---- contractions and windows ------------------------------------------------- */

fusec_value *fusec_matmul(fusec_graph *g, fusec_value *a, fusec_value *b) {
    return build2(g, __func__, IR_OP_MATMUL, a, b);
}

fusec_value *fusec_linear(fusec_graph *g, fusec_value *x, fusec_value *w, fusec_value *b) {
    static const char *const names[] = {"x", "w", "b"};
    fusec_value *in[3] = {x, w, b};
    return build(g, __func__, IR_OP_LINEAR, names, in, 3, 2, NULL, NULL);
}

fusec_value *fusec_conv2d(fusec_graph *g, fusec_value *x, fusec_value *w, fusec_value *b,
                          const int64_t stride[2], const int64_t padding[2],
                          const int64_t dilation[2], int64_t groups) {
    static const char *const names[] = {"x", "w", "b"};
    fusec_value *in[3] = {x, w, b};
    attrs al = ATTR_LIST(g);
    at_pair(&al, "stride", stride);
    at_pair(&al, "padding", padding);
    at_pair(&al, "dilation", dilation);
    at_i(&al, "groups", groups);
    return build(g, __func__, IR_OP_CONV2D, names, in, 3, 2, &al, NULL);
}

static fusec_value *pool(fusec_graph *g, const char *fn, ir_op op, fusec_value *x,
                         const int64_t kernel[2], const int64_t stride[2],
                         const int64_t padding[2]) {
    attrs al = {.g = g, .fn = fn};
    at_pair(&al, "kernel", kernel);
    at_pair(&al, "stride", stride);
    at_pair(&al, "padding", padding);
    return build1(g, fn, op, x, &al);
}

fusec_value *fusec_max_pool2d(fusec_graph *g, fusec_value *x, const int64_t kernel[2],
                              const int64_t stride[2], const int64_t padding[2]) {
    return pool(g, __func__, IR_OP_MAX_POOL2D, x, kernel, stride, padding);
}

fusec_value *fusec_avg_pool2d(fusec_graph *g, fusec_value *x, const int64_t kernel[2],
                              const int64_t stride[2], const int64_t padding[2]) {
    return pool(g, __func__, IR_OP_AVG_POOL2D, x, kernel, stride, padding);
}

fusec_value *fusec_adaptive_avg_pool2d(fusec_graph *g, fusec_value *x,
                                       const int64_t output_size[2]) {
    attrs al = ATTR_LIST(g);
    at_pair(&al, "output_size", output_size);
    return build1(g, __func__, IR_OP_ADAPTIVE_AVG_POOL2D, x, &al);
}

/* ---- attention ------------------------------------------------------------------ */

fusec_value *fusec_sdpa(fusec_graph *g, fusec_value *q, fusec_value *k, fusec_value *v,
                        fusec_value *mask, bool is_causal, double scale) {
    static const char *const names[] = {"q", "k", "v", "mask"};
    fusec_value *in[4] = {q, k, v, mask};
    attrs al = ATTR_LIST(g);
    at_b(&al, "is_causal", is_causal);
    if (!(scale <= 0)) at_f(&al, "scale", scale); /* NaN and inf reach ir_build's check */
    return build(g, __func__, IR_OP_SDPA, names, in, 4, 3, &al, NULL);
}
