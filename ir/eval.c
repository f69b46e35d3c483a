/*
 * eval.c - what each elementwise op computes, for one element.
 *
 * This is the one definition of the elementwise ops' numerics: the
 * reference interpreter, the plan executor and constant folding all call
 * ir_ew_eval, so they cannot drift apart.  Semantics follow PyTorch (the
 * details are in runtime/interp.c's header comment and docs/ir.md,
 * "Decisions"):
 *  - floats are computed in double; the caller rounds to the result dtype
 *    (ir_scalar_round), once per op;
 *  - integers are computed in int64 through uint64_t (no signed overflow)
 *    and wrap to the storage width when rounded; integer division and
 *    remainder by zero are errors;
 *  - casts follow ir_store_f / ir_store_i (dtype.c).
 */
#include <math.h>
#include <string.h>

#include "ir/ir.h"

/* int64 arithmetic that wraps instead of overflowing. */
static int64_t wrap(uint64_t u) { return (int64_t)u; }
static int64_t iadd(int64_t a, int64_t b) { return wrap((uint64_t)a + (uint64_t)b); }
static int64_t isub(int64_t a, int64_t b) { return wrap((uint64_t)a - (uint64_t)b); }
static int64_t imul(int64_t a, int64_t b) { return wrap((uint64_t)a * (uint64_t)b); }

void ir_ksum_add(ir_ksum *a, double x) {
    double t = a->s + x;
    if (isfinite(t)) a->c += fabs(a->s) >= fabs(x) ? (a->s - t) + x : (x - t) + a->s;
    a->s = t;
}

double ir_ksum_get(const ir_ksum *a) { return isfinite(a->s) ? a->s + a->c : a->s; }

ir_scalar ir_scalar_round(ir_dtype dt, ir_scalar v) {
    unsigned char buf[8];
    if (ir_dtype_is_float(dt)) {
        ir_store_f(dt, buf, 0, v.f);
        v.f = ir_load_f(dt, buf, 0);
    } else {
        ir_store_i(dt, buf, 0, v.i);
        v.i = ir_load_i(dt, buf, 0);
    }
    return v;
}

ir_scalar ir_scalar_cast(ir_dtype from, ir_dtype to, ir_scalar v) {
    unsigned char buf[8];
    if (ir_dtype_is_float(from)) ir_store_f(to, buf, 0, v.f);
    else ir_store_i(to, buf, 0, v.i);
    ir_scalar r;
    if (ir_dtype_is_float(to)) r.f = ir_load_f(to, buf, 0);
    else r.i = ir_load_i(to, buf, 0);
    return r;
}

static bool ew_fail(const ir_ew *c, ir_diag *d, const char *what) {
    ir_error(d, c->n->loc, "%s: %s", ir_op_get(c->n->op)->name, what);
    return false;
}

/* torch.remainder for floats: fmod, moved into the divisor's sign. */
static double f_remainder(double a, double b) {
    double m = fmod(a, b);
    if (m != 0 && ((b < 0) != (m < 0))) m += b;
    return m;
}

static double f_gelu(double x, bool tanh_approx) {
    if (tanh_approx) {
        const double k = 0.7978845608028654; /* sqrt(2 / pi) */
        return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
    }
    return 0.5 * x * (1.0 + erf(x * 0.7071067811865476)); /* x / sqrt(2) */
}

/* One element of a float-domain elementwise op.  x holds the operands;
 * the result goes to r->f, or r->i for ops with a bool result. */
static bool ew_float(const ir_ew *c, const ir_scalar *x, ir_scalar *r, ir_diag *d) {
    double a = x[0].f, b = c->n->nin > 1 ? x[1].f : 0;
    switch (c->n->op) {
    case IR_OP_NEG: r->f = -a; break;
    case IR_OP_ABS: r->f = fabs(a); break;
    case IR_OP_SIGN: r->f = a > 0 ? 1.0 : a < 0 ? -1.0 : 0.0; break; /* NaN, -0 -> +0 */
    case IR_OP_EXP: r->f = exp(a); break;
    case IR_OP_EXP2: r->f = exp2(a); break;
    case IR_OP_LOG: r->f = log(a); break;
    case IR_OP_LOG2: r->f = log2(a); break;
    case IR_OP_LOG1P: r->f = log1p(a); break;
    case IR_OP_EXPM1: r->f = expm1(a); break;
    case IR_OP_SQRT: r->f = sqrt(a); break;
    case IR_OP_RSQRT: r->f = 1.0 / sqrt(a); break;
    case IR_OP_RECIPROCAL: r->f = 1.0 / a; break;
    case IR_OP_SIN: r->f = sin(a); break;
    case IR_OP_COS: r->f = cos(a); break;
    case IR_OP_TAN: r->f = tan(a); break;
    case IR_OP_TANH: r->f = tanh(a); break;
    case IR_OP_SIGMOID: r->f = 1.0 / (1.0 + exp(-a)); break;
    case IR_OP_ERF: r->f = erf(a); break;
    case IR_OP_RELU: r->f = a < 0 ? 0.0 : a; break; /* keeps NaN and -0.0 */
    case IR_OP_GELU: r->f = f_gelu(a, c->gelu_tanh); break;
    case IR_OP_SILU: r->f = a / (1.0 + exp(-a)); break;
    case IR_OP_FLOOR: r->f = floor(a); break;
    case IR_OP_CEIL: r->f = ceil(a); break;
    case IR_OP_ROUND: r->f = nearbyint(a); break; /* default mode: half to even */
    case IR_OP_ISNAN: r->i = isnan(a); break;
    case IR_OP_ISINF: r->i = isinf(a); break;
    case IR_OP_CLAMP:
        if (c->has_lo && a < c->lo) a = c->lo;
        if (c->has_hi && a > c->hi) a = c->hi;
        r->f = a;
        break;
    case IR_OP_ADD: r->f = a + b; break;
    case IR_OP_SUB: r->f = a - b; break;
    case IR_OP_MUL: r->f = a * b; break;
    case IR_OP_DIV: r->f = a / b; break;
    case IR_OP_POW: r->f = pow(a, b); break;
    case IR_OP_MAXIMUM: r->f = isnan(a) ? a : isnan(b) ? b : a >= b ? a : b; break;
    case IR_OP_MINIMUM: r->f = isnan(a) ? a : isnan(b) ? b : a <= b ? a : b; break;
    case IR_OP_REMAINDER: r->f = f_remainder(a, b); break;
    case IR_OP_EQ: r->i = a == b; break;
    case IR_OP_NE: r->i = a != b; break;
    case IR_OP_LT: r->i = a < b; break;
    case IR_OP_LE: r->i = a <= b; break;
    case IR_OP_GT: r->i = a > b; break;
    case IR_OP_GE: r->i = a >= b; break;
    default: return ew_fail(c, d, "internal error: not a float elementwise op");
    }
    return true;
}

/* Exact integer power, wrapping like repeated multiplication. */
static int64_t i_pow(int64_t base, int64_t e) {
    if (e < 0) return base == 1 ? 1 : base == -1 ? (e % 2 ? -1 : 1) : 0;
    int64_t r = 1;
    while (e) {
        if (e & 1) r = imul(r, base);
        base = imul(base, base);
        e >>= 1;
    }
    return r;
}

/* Integer bounds of an integer clamp (ir_build checks they are integral);
 * beyond int64 they saturate, which changes nothing. */
static int64_t clamp_bound(double v) {
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

/* One element of an integer- or bool-domain elementwise op. */
static bool ew_int(const ir_ew *c, const ir_scalar *x, ir_scalar *r, ir_diag *d) {
    int64_t a = x[0].i, b = c->n->nin > 1 ? x[1].i : 0;
    switch (c->n->op) {
    case IR_OP_NEG: r->i = isub(0, a); break;
    case IR_OP_ABS: r->i = a < 0 ? isub(0, a) : a; break;
    case IR_OP_SIGN: r->i = (a > 0) - (a < 0); break;
    case IR_OP_RELU: r->i = a < 0 ? 0 : a; break;
    case IR_OP_NOT: r->i = !a; break;
    case IR_OP_CLAMP:
        if (c->has_lo && a < clamp_bound(c->lo)) a = clamp_bound(c->lo);
        if (c->has_hi && a > clamp_bound(c->hi)) a = clamp_bound(c->hi);
        r->i = a;
        break;
    case IR_OP_ADD: r->i = iadd(a, b); break;
    case IR_OP_SUB: r->i = isub(a, b); break;
    case IR_OP_MUL: r->i = imul(a, b); break;
    case IR_OP_DIV:
        if (b == 0) return ew_fail(c, d, "integer division by zero");
        r->i = b == -1 ? isub(0, a) : a / b; /* C truncates toward zero */
        break;
    case IR_OP_REMAINDER:
        if (b == 0) return ew_fail(c, d, "integer remainder by zero");
        r->i = b == -1 ? 0 : a % b;
        if (r->i != 0 && ((r->i < 0) != (b < 0))) r->i += b; /* |r| < |b|: no overflow */
        break;
    case IR_OP_POW: r->i = i_pow(a, b); break;
    case IR_OP_MAXIMUM: r->i = a >= b ? a : b; break;
    case IR_OP_MINIMUM: r->i = a <= b ? a : b; break;
    case IR_OP_AND: r->i = wrap((uint64_t)a & (uint64_t)b); break;
    case IR_OP_OR: r->i = wrap((uint64_t)a | (uint64_t)b); break;
    case IR_OP_XOR: r->i = wrap((uint64_t)a ^ (uint64_t)b); break;
    case IR_OP_EQ: r->i = a == b; break;
    case IR_OP_NE: r->i = a != b; break;
    case IR_OP_LT: r->i = a < b; break;
    case IR_OP_LE: r->i = a <= b; break;
    case IR_OP_GT: r->i = a > b; break;
    case IR_OP_GE: r->i = a >= b; break;
    default: return ew_fail(c, d, "internal error: not an integer elementwise op");
    }
    return true;
}

void ir_ew_init(ir_ew *e, const ir_node *n) {
    memset(e, 0, sizeof *e);
    e->n = n;
    e->out_dtype = n->out->type.dtype;
    e->in_dtype = n->in[n->op == IR_OP_WHERE ? 1 : 0]->type.dtype;
    if (n->op == IR_OP_GELU) e->gelu_tanh = strcmp(ir_attr_s(n, "approximate"), "tanh") == 0;
    if (n->op == IR_OP_CLAMP) {
        e->has_lo = ir_attr_has(n, "min");
        e->has_hi = ir_attr_has(n, "max");
        e->lo = e->has_lo ? ir_attr_f(n, "min") : 0;
        e->hi = e->has_hi ? ir_attr_f(n, "max") : 0;
    }
    if (n->op == IR_OP_MASKED_FILL) {
        ir_scalar v = {.f = ir_attr_f(n, "value")};
        e->fill = ir_scalar_cast(FUSEC_DTYPE_F64, e->out_dtype, v);
    }
}

bool ir_ew_eval(const ir_ew *e, const ir_scalar *x, ir_scalar *r, ir_diag *d) {
    switch (e->n->op) {
    case IR_OP_CAST: *r = ir_scalar_cast(e->in_dtype, e->out_dtype, x[0]); return true;
    case IR_OP_WHERE: *r = x[0].i ? x[1] : x[2]; return true;
    case IR_OP_MASKED_FILL: *r = x[1].i ? e->fill : x[0]; return true;
    default: break;
    }
    return ir_dtype_is_float(e->in_dtype) ? ew_float(e, x, r, d) : ew_int(e, x, r, d);
}
