/*
 * test_interp.c - unit tests of the reference interpreter (runtime/interp.c).
 *
 * Each test builds a small graph with ir_build, runs it with rt_interp_run
 * and compares the outputs with values worked out by hand (or with Python's
 * math module for transcendental functions), never with the interpreter
 * itself.  The systematic comparison against PyTorch lives in tests/oracle;
 * these tests pin the rules that are easy to get subtly wrong: broadcasting,
 * integer wrap-around, division by zero, NaN and -0.0, f16/bf16 rounding,
 * empty reductions, softmax of an all -inf row, argmax ties and NaN, and
 * that every op has a kernel.
 */
#include <math.h>

#include "ir/ir.h"
#include "runtime/interp.h"
#include "test.h"

#define F64 FUSEC_DTYPE_F64
#define F32 FUSEC_DTYPE_F32
#define F16 FUSEC_DTYPE_F16
#define BF16 FUSEC_DTYPE_BF16
#define I64 FUSEC_DTYPE_I64
#define I32 FUSEC_DTYPE_I32
#define I16 FUSEC_DTYPE_I16
#define I8 FUSEC_DTYPE_I8
#define U8 FUSEC_DTYPE_U8
#define BOOL FUSEC_DTYPE_BOOL

#define S(...) ((const int64_t[]){__VA_ARGS__})
#define V(...) ((const double[]){__VA_ARGS__})
#define IN(...) ((ir_value *const[]){__VA_ARGS__})
#define NARGS(...) ((int)(sizeof((ir_value *const[]){__VA_ARGS__}) / sizeof(ir_value *)))
#define ATTRS(...) ((const ir_attr_init[]){__VA_ARGS__}), \
    ((int)(sizeof((const ir_attr_init[]){__VA_ARGS__}) / sizeof(ir_attr_init)))
#define NOATTR NULL, 0

/* ---- a small graph-building harness ---------------------------------- */

typedef struct tctx {
    ir_graph *g;
    ir_diag d;
    int nin;
    fusec_tensor in[8];
} tctx;

static void t_init(tctx *c) {
    memset(c, 0, sizeof *c);
    c->g = ir_graph_new("t");
    ir_diag_init(&c->d, NULL, NULL, 0);
}

static void t_free(tctx *c, fusec_tensor *out, int nout) {
    for (int i = 0; i < c->nin; i++) free(c->in[i].data);
    for (int i = 0; out && i < nout; i++) free(out[i].data);
    ir_graph_free(c->g);
    ir_diag_free(&c->d);
}

static const char *t_msg(const tctx *c) { return c->d.out.buf ? c->d.out.buf : ""; }

static ir_type ty(ir_dtype dt, int rank, const int64_t *shape) {
    ir_type t = {.dtype = dt, .rank = rank};
    for (int i = 0; i < rank; i++) t.dim[i] = shape[i];
    return t;
}

/* A parameter holding `vals` (numel of them, converted like a store), or
 * zeros when vals is NULL. */
static ir_value *t_in(tctx *c, ir_dtype dt, int rank, const int64_t *shape, const double *vals) {
    ir_type t = ty(dt, rank, shape);
    char name[8];
    snprintf(name, sizeof name, "x%d", c->nin);
    fusec_tensor *x = &c->in[c->nin++];
    x->dtype = dt;
    x->rank = rank;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= (x->shape[i] = shape[i]);
    x->data = calloc(n ? (size_t)n : 1, ir_dtype_size(dt));
    for (int64_t i = 0; vals && i < n; i++) ir_store_f(dt, x->data, i, vals[i]);
    return ir_graph_add_param(c->g, name, &t, (ir_loc){0});
}

/* Integer parameter given exactly (values beyond 2^53 survive). */
static ir_value *t_in_i(tctx *c, ir_dtype dt, int rank, const int64_t *shape, const int64_t *vals) {
    ir_value *v = t_in(c, dt, rank, shape, NULL);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    for (int64_t i = 0; i < n; i++) ir_store_i(dt, c->in[c->nin - 1].data, i, vals[i]);
    return v;
}

static ir_value *t_op(tctx *c, ir_op op, ir_value *const *ins, int nin, const ir_attr_init *a, int na) {
    ir_value *v = ir_build(c->g, op, ins, nin, a, na, NULL, (ir_loc){0}, &c->d);
    if (!v) fprintf(stderr, "ir_build(%s) failed: %s", ir_op_get(op)->name, t_msg(c));
    return v;
}

/* Ops with no operand take their result type. */
static ir_value *t_make(tctx *c, ir_op op, ir_type t, const ir_attr_init *a, int na) {
    ir_value *v = ir_build(c->g, op, NULL, 0, a, na, &t, (ir_loc){0}, &c->d);
    if (!v) fprintf(stderr, "ir_build(%s) failed: %s", ir_op_get(op)->name, t_msg(c));
    return v;
}

static ir_value *lit_f(tctx *c, double v) { return ir_graph_literal_f(c->g, v, (ir_loc){0}); }
static ir_value *lit_i(tctx *c, int64_t v) { return ir_graph_literal_i(c->g, v, false, (ir_loc){0}); }

/* Return `res` and run; out[] must have room for nres. */
static fusec_status t_run_n(tctx *c, ir_value *const *res, int nres, fusec_tensor *out) {
    for (int i = 0; i < nres; i++) {
        if (!res[i]) return FUSEC_ERR_INVALID;
        ir_graph_add_result(c->g, res[i]);
    }
    memset(out, 0, sizeof *out * (size_t)nres);
    return rt_interp_run(c->g, c->in, c->nin, out, nres, &c->d);
}

static fusec_status t_run(tctx *c, ir_value *res, fusec_tensor *out) { return t_run_n(c, &res, 1, out); }

static ir_attr_init a_int(const char *nm, int64_t v) {
    return (ir_attr_init){.name = nm, .kind = IR_AK_INT, .val = {.i = v}};
}
static ir_attr_init a_flt(const char *nm, double v) {
    return (ir_attr_init){.name = nm, .kind = IR_AK_FLOAT, .val = {.f = v}};
}
static ir_attr_init a_bool(const char *nm, bool v) {
    return (ir_attr_init){.name = nm, .kind = IR_AK_BOOL, .val = {.i = v}};
}
static ir_attr_init a_str(const char *nm, const char *v) {
    return (ir_attr_init){.name = nm, .kind = IR_AK_STR, .val = {.s = v}};
}
static ir_attr_init a_dt(const char *nm, ir_dtype v) {
    return (ir_attr_init){.name = nm, .kind = IR_AK_DTYPE, .val = {.dt = v}};
}
static ir_attr_init a_ints(const char *nm, int n, const int64_t *v) {
    return (ir_attr_init){.name = nm, .kind = IR_AK_INTS, .val = {.n = n, .ints = (int64_t *)v}};
}
static ir_attr_init a_flts(const char *nm, int n, const double *v) {
    return (ir_attr_init){.name = nm, .kind = IR_AK_FLOATS, .val = {.n = n, .floats = (double *)v}};
}

static double at_f(const fusec_tensor *t, int64_t i) { return ir_load_f(t->dtype, t->data, i); }
static int64_t at_i(const fusec_tensor *t, int64_t i) { return ir_load_i(t->dtype, t->data, i); }

/* Same value: NaN equals NaN, and zeros must agree in sign. */
static bool same(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}
static bool near(double a, double b, double rel) {
    if (isnan(a) || isnan(b) || isinf(a) || isinf(b)) return same(a, b);
    return fabs(a - b) <= rel * fmax(fabs(b), 1e-300);
}

#define CHECK_F(t, i, want) CHECK(same(at_f(t, i), (want)))
#define CHECK_NEAR(t, i, want) CHECK(near(at_f(t, i), (want), 1e-12))
#define CHECK_I(t, i, want) CHECK_EQ_INT(at_i(t, i), (want))
#define CHECK_SHAPE(t, ...)                                                          \
    do {                                                                             \
        const int64_t want_[] = {__VA_ARGS__};                                       \
        CHECK_EQ_INT((t)->rank, (int)(sizeof want_ / sizeof want_[0]));             \
        for (int k_ = 0; k_ < (t)->rank && k_ < (int)(sizeof want_ / sizeof want_[0]); k_++) \
            CHECK_EQ_INT((t)->shape[k_], want_[k_]);                                 \
    } while (0)
#define CHECK_MSG(c, sub) CHECK(strstr(t_msg(c), (sub)) != NULL)

/* Run a one-node graph op(x) on a fresh f64 vector and check each result. */
static void unary_f64(ir_op op, const ir_attr_init *a, int na, int n, const double *x, const double *want) {
    tctx c;
    t_init(&c);
    ir_value *p = t_in(&c, F64, 1, (int64_t[]){n}, x);
    fusec_tensor out;
    CHECK_EQ_INT(t_run(&c, t_op(&c, op, IN(p), 1, a, na), &out), FUSEC_OK);
    for (int i = 0; i < n; i++) {
        if (!near(at_f(&out, i), want[i], 1e-15)) {
            fprintf(stderr, "  %s(%.17g) = %.17g, want %.17g\n", ir_op_get(op)->name, x[i],
                    at_f(&out, i), want[i]);
            CHECK(0);
        }
    }
    t_free(&c, &out, 1);
}

/* Run a one-node graph op(a, b) on two same-shaped 1-D tensors of dtype dt. */
static fusec_status binary_1d(tctx *c, ir_op op, ir_dtype dt, int n, const int64_t *a,
                              const int64_t *b, fusec_tensor *out) {
    t_init(c);
    ir_value *x = t_in_i(c, dt, 1, (int64_t[]){n}, a);
    ir_value *y = t_in_i(c, dt, 1, (int64_t[]){n}, b);
    return t_run(c, t_op(c, op, IN(x, y), 2, NOATTR), out);
}

/* ---- tests ------------------------------------------------------------- */

TEST(broadcast_add) {
    tctx c;
    t_init(&c);
    /* [2,1,3] + [4,1] -> [2,4,3]: out[i,j,k] = a[i,0,k] + b[j,0] */
    ir_value *a = t_in(&c, F32, 3, S(2, 1, 3), V(1, 2, 3, 4, 5, 6));
    ir_value *b = t_in(&c, F32, 2, S(4, 1), V(10, 20, 30, 40));
    fusec_tensor out;
    CHECK_EQ_INT(t_run(&c, t_op(&c, IR_OP_ADD, IN(a, b), 2, NOATTR), &out), FUSEC_OK);
    CHECK_SHAPE(&out, 2, 4, 3);
    CHECK_EQ_INT(out.dtype, F32);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++)
                CHECK_F(&out, (i * 4 + j) * 3 + k, (double)(1 + i * 3 + k) + 10.0 * (j + 1));
    t_free(&c, &out, 1);
}

TEST(broadcast_scalar_literal_and_where) {
    tctx c;
    t_init(&c);
    /* where(cond[2], x[2,1], -inf) -> [2,2]; then mul by a literal */
    ir_value *cond = t_in(&c, BOOL, 1, S(2), V(1, 0));
    ir_value *x = t_in(&c, F32, 2, S(2, 1), V(1, 2));
    ir_value *w = t_op(&c, IR_OP_WHERE, IN(cond, x, lit_f(&c, -INFINITY)), 3, NOATTR);
    ir_value *m = t_op(&c, IR_OP_MUL, IN(w, lit_f(&c, 0.125)), 2, NOATTR);
    fusec_tensor out[2];
    CHECK_EQ_INT(t_run_n(&c, IN(w, m), 2, out), FUSEC_OK);
    CHECK_SHAPE(&out[0], 2, 2);
    CHECK_F(&out[0], 0, 1.0);
    CHECK_F(&out[0], 1, -INFINITY);
    CHECK_F(&out[0], 2, 2.0);
    CHECK_F(&out[0], 3, -INFINITY);
    CHECK_F(&out[1], 0, 0.125);
    CHECK_F(&out[1], 3, -INFINITY);
    t_free(&c, out, 2);
}

TEST(int_wraparound) {
    tctx c;
    fusec_tensor out;
    CHECK_EQ_INT(binary_1d(&c, IR_OP_ADD, I8, 3, S(100, -128, 127), S(100, -1, 1), &out), FUSEC_OK);
    CHECK_I(&out, 0, -56);
    CHECK_I(&out, 1, 127);
    CHECK_I(&out, 2, -128);
    t_free(&c, &out, 1);

    CHECK_EQ_INT(binary_1d(&c, IR_OP_SUB, U8, 2, S(0, 5), S(1, 250), &out), FUSEC_OK);
    CHECK_I(&out, 0, 255);
    CHECK_I(&out, 1, 11);
    t_free(&c, &out, 1);

    CHECK_EQ_INT(binary_1d(&c, IR_OP_MUL, I32, 2, S(65536, -2147483647 - 1), S(65536, -1), &out),
                 FUSEC_OK);
    CHECK_I(&out, 0, 0);
    CHECK_I(&out, 1, INT32_MIN);
    t_free(&c, &out, 1);

    /* i64 overflow must wrap, not be undefined behaviour */
    CHECK_EQ_INT(binary_1d(&c, IR_OP_ADD, I64, 2, S(INT64_MAX, INT64_MIN), S(1, -1), &out), FUSEC_OK);
    CHECK(at_i(&out, 0) == INT64_MIN);
    CHECK(at_i(&out, 1) == INT64_MAX);
    t_free(&c, &out, 1);

    CHECK_EQ_INT(binary_1d(&c, IR_OP_MUL, I64, 1, S(INT64_MAX), S(3), &out), FUSEC_OK);
    CHECK(at_i(&out, 0) == INT64_MAX - 2); /* 3 * (2^63 - 1) mod 2^64 */
    t_free(&c, &out, 1);

    /* neg and abs of the minimum wrap to itself, as in PyTorch */
    t_init(&c);
    ir_value *x = t_in(&c, I8, 1, S(3), V(-128, -5, 7));
    ir_value *ng = t_op(&c, IR_OP_NEG, IN(x), 1, NOATTR);
    ir_value *ab = t_op(&c, IR_OP_ABS, IN(x), 1, NOATTR);
    ir_value *sg = t_op(&c, IR_OP_SIGN, IN(x), 1, NOATTR);
    ir_value *rl = t_op(&c, IR_OP_RELU, IN(x), 1, NOATTR);
    fusec_tensor o[4];
    CHECK_EQ_INT(t_run_n(&c, IN(ng, ab, sg, rl), 4, o), FUSEC_OK);
    CHECK_I(&o[0], 0, -128);
    CHECK_I(&o[0], 1, 5);
    CHECK_I(&o[1], 0, -128);
    CHECK_I(&o[1], 2, 7);
    CHECK_I(&o[2], 0, -1);
    CHECK_I(&o[2], 2, 1);
    CHECK_I(&o[3], 1, 0);
    CHECK_I(&o[3], 2, 7);
    t_free(&c, o, 4);
}

TEST(int_div_remainder) {
    tctx c;
    fusec_tensor out;
    /* div truncates toward zero; remainder takes the divisor's sign */
    CHECK_EQ_INT(binary_1d(&c, IR_OP_DIV, I32, 4, S(7, -7, 7, -7), S(2, 2, -2, -2), &out), FUSEC_OK);
    CHECK_I(&out, 0, 3);
    CHECK_I(&out, 1, -3);
    CHECK_I(&out, 2, -3);
    CHECK_I(&out, 3, 3);
    t_free(&c, &out, 1);

    CHECK_EQ_INT(binary_1d(&c, IR_OP_REMAINDER, I32, 4, S(5, -5, 5, -5), S(3, 3, -3, -3), &out),
                 FUSEC_OK);
    CHECK_I(&out, 0, 2);
    CHECK_I(&out, 1, 1);
    CHECK_I(&out, 2, -1);
    CHECK_I(&out, 3, -2);
    t_free(&c, &out, 1);

    CHECK_EQ_INT(binary_1d(&c, IR_OP_REMAINDER, I8, 2, S(-7, 7), S(-128, -128), &out), FUSEC_OK);
    CHECK_I(&out, 0, -7);
    CHECK_I(&out, 1, -121);
    t_free(&c, &out, 1);

    /* INT64_MIN / -1 and % -1: defined (wraps / 0), never a trap */
    CHECK_EQ_INT(binary_1d(&c, IR_OP_DIV, I64, 1, S(INT64_MIN), S(-1), &out), FUSEC_OK);
    CHECK(at_i(&out, 0) == INT64_MIN);
    t_free(&c, &out, 1);
    CHECK_EQ_INT(binary_1d(&c, IR_OP_REMAINDER, I64, 1, S(INT64_MIN), S(-1), &out), FUSEC_OK);
    CHECK_I(&out, 0, 0);
    t_free(&c, &out, 1);
}

TEST(int_division_by_zero_is_an_error) {
    tctx c;
    fusec_tensor out;
    t_init(&c);
    ir_value *x = t_in(&c, I32, 1, S(3), V(1, 2, 3));
    ir_value *y = t_in(&c, I32, 1, S(3), V(1, 0, 1));
    ir_value *q = ir_build(c.g, IR_OP_DIV, IN(x, y), 2, NULL, 0, NULL, (ir_loc){4, 9}, &c.d);
    ir_value *e = t_op(&c, IR_OP_EXP, IN(t_op(&c, IR_OP_CAST, IN(q), 1, ATTRS(a_dt("to", F32)))), 1,
                       NOATTR);
    CHECK_EQ_INT(t_run(&c, e, &out), FUSEC_ERR_RUNTIME);
    CHECK(out.data == NULL);
    CHECK_MSG(&c, "<input>:4:9: error: div: integer division by zero");
    t_free(&c, &out, 1);

    CHECK_EQ_INT(binary_1d(&c, IR_OP_REMAINDER, U8, 2, S(1, 2), S(1, 0), &out), FUSEC_ERR_RUNTIME);
    CHECK(out.data == NULL);
    CHECK_MSG(&c, "remainder: integer remainder by zero");
    t_free(&c, &out, 1);

    /* a literal zero divisor, too */
    t_init(&c);
    x = t_in(&c, I64, 1, S(2), V(1, 2));
    CHECK_EQ_INT(t_run(&c, t_op(&c, IR_OP_DIV, IN(x, lit_i(&c, 0)), 2, NOATTR), &out), FUSEC_ERR_RUNTIME);
    t_free(&c, &out, 1);
}

TEST(int_pow) {
    tctx c;
    fusec_tensor out;
    CHECK_EQ_INT(binary_1d(&c, IR_OP_POW, I8, 3, S(3, -2, 0), S(5, 3, 0), &out), FUSEC_OK);
    CHECK_I(&out, 0, -13); /* 243 wraps */
    CHECK_I(&out, 1, -8);
    CHECK_I(&out, 2, 1);
    t_free(&c, &out, 1);
    CHECK_EQ_INT(binary_1d(&c, IR_OP_POW, I32, 2, S(2, 3), S(31, 2), &out), FUSEC_OK);
    CHECK_I(&out, 0, INT32_MIN);
    CHECK_I(&out, 1, 9);
    t_free(&c, &out, 1);
    /* negative exponents: trunc(1 / base^|e|) */
    CHECK_EQ_INT(binary_1d(&c, IR_OP_POW, I64, 5, S(2, 1, -1, -1, 0), S(-1, -5, -3, -2, -1), &out),
                 FUSEC_OK);
    CHECK_I(&out, 0, 0);
    CHECK_I(&out, 1, 1);
    CHECK_I(&out, 2, -1);
    CHECK_I(&out, 3, 1);
    CHECK_I(&out, 4, 0);
    t_free(&c, &out, 1);
}

TEST(int_logic_and_compare) {
    tctx c;
    fusec_tensor out;
    CHECK_EQ_INT(binary_1d(&c, IR_OP_AND, I64, 2, S(-1, 6), S(5, 3), &out), FUSEC_OK);
    CHECK_I(&out, 0, 5);
    CHECK_I(&out, 1, 2);
    t_free(&c, &out, 1);
    CHECK_EQ_INT(binary_1d(&c, IR_OP_XOR, BOOL, 2, S(1, 0), S(1, 1), &out), FUSEC_OK);
    CHECK_I(&out, 0, 0);
    CHECK_I(&out, 1, 1);
    t_free(&c, &out, 1);
    /* i64 compare must be exact beyond 2^53 */
    CHECK_EQ_INT(binary_1d(&c, IR_OP_LT, I64, 1, S((INT64_C(1) << 60) + 1), S((INT64_C(1) << 60) + 2), &out),
                 FUSEC_OK);
    CHECK_EQ_INT(out.dtype, BOOL);
    CHECK_I(&out, 0, 1);
    t_free(&c, &out, 1);
}

TEST(float_division_and_remainder) {
    tctx c;
    t_init(&c);
    ir_value *a = t_in(&c, F64, 1, S(8), V(1, -1, 0, 5, -5, -0.0, -5, 5));
    ir_value *b = t_in(&c, F64, 1, S(8), V(0, 0, 0, 3, 3, 2, INFINITY, -INFINITY));
    ir_value *q = t_op(&c, IR_OP_DIV, IN(a, b), 2, NOATTR);
    ir_value *r = t_op(&c, IR_OP_REMAINDER, IN(a, b), 2, NOATTR);
    fusec_tensor o[2];
    CHECK_EQ_INT(t_run_n(&c, IN(q, r), 2, o), FUSEC_OK);
    CHECK_F(&o[0], 0, INFINITY);
    CHECK_F(&o[0], 1, -INFINITY);
    CHECK_F(&o[0], 2, NAN);
    CHECK_F(&o[1], 0, NAN); /* x % 0 */
    CHECK_F(&o[1], 3, 2.0);
    CHECK_F(&o[1], 4, 1.0);
    CHECK_F(&o[1], 5, -0.0);
    CHECK_F(&o[1], 6, INFINITY); /* torch.remainder(-5, inf) */
    CHECK_F(&o[1], 7, -INFINITY);
    t_free(&c, o, 2);
}

TEST(nan_and_signed_zero_rules) {
    tctx c;
    t_init(&c);
    ir_value *a = t_in(&c, F32, 1, S(4), V(NAN, 1, -0.0, 0.0));
    ir_value *b = t_in(&c, F32, 1, S(4), V(1, NAN, 0.0, -0.0));
    ir_value *mx = t_op(&c, IR_OP_MAXIMUM, IN(a, b), 2, NOATTR);
    ir_value *mn = t_op(&c, IR_OP_MINIMUM, IN(a, b), 2, NOATTR);
    ir_value *sg = t_op(&c, IR_OP_SIGN, IN(a), 1, NOATTR);
    ir_value *rl = t_op(&c, IR_OP_RELU, IN(a), 1, NOATTR);
    ir_value *cl = t_op(&c, IR_OP_CLAMP, IN(a), 1, ATTRS(a_flt("min", 0.5), a_flt("max", 0.75)));
    ir_value *eq = t_op(&c, IR_OP_EQ, IN(a, a), 2, NOATTR);
    ir_value *ne = t_op(&c, IR_OP_NE, IN(a, a), 2, NOATTR);
    fusec_tensor o[7];
    CHECK_EQ_INT(t_run_n(&c, IN(mx, mn, sg, rl, cl, eq, ne), 7, o), FUSEC_OK);
    CHECK_F(&o[0], 0, NAN);
    CHECK_F(&o[0], 1, NAN);
    CHECK_F(&o[0], 2, -0.0); /* equal operands: the first, as PyTorch */
    CHECK_F(&o[0], 3, 0.0);
    CHECK_F(&o[1], 0, NAN);
    CHECK_F(&o[1], 1, NAN);
    CHECK_F(&o[1], 2, -0.0);
    CHECK_F(&o[1], 3, 0.0);
    CHECK_F(&o[2], 0, 0.0); /* torch 1.13: sign(NaN) = 0, sign(-0.0) = +0.0 */
    CHECK_F(&o[2], 1, 1.0);
    CHECK_F(&o[2], 2, 0.0);
    CHECK_F(&o[3], 0, NAN);
    CHECK_F(&o[3], 2, -0.0); /* relu keeps -0.0 */
    CHECK_F(&o[4], 0, NAN);  /* clamp keeps NaN */
    CHECK_F(&o[4], 1, 0.75);
    CHECK_F(&o[4], 2, 0.5);
    CHECK_I(&o[5], 0, 0);
    CHECK_I(&o[5], 1, 1);
    CHECK_I(&o[6], 0, 1);
    t_free(&c, o, 7);

    /* clamp with min > max gives max; a one-sided integer clamp */
    t_init(&c);
    ir_value *x = t_in(&c, F32, 1, S(3), V(0, 3, 5));
    ir_value *k = t_in(&c, I32, 1, S(3), V(1, 5, 9));
    cl = t_op(&c, IR_OP_CLAMP, IN(x), 1, ATTRS(a_flt("min", 4), a_flt("max", 2)));
    ir_value *ki = t_op(&c, IR_OP_CLAMP, IN(k), 1, ATTRS(a_flt("max", 7)));
    CHECK_EQ_INT(t_run_n(&c, IN(cl, ki), 2, o), FUSEC_OK);
    for (int i = 0; i < 3; i++) CHECK_F(&o[0], i, 2.0);
    CHECK_I(&o[1], 0, 1);
    CHECK_I(&o[1], 2, 7);
    t_free(&c, o, 2);
}

TEST(unary_math) {
    const double inf = INFINITY;
    unary_f64(IR_OP_ROUND, NOATTR, 6, V(0.5, 1.5, 2.5, -0.5, -1.5, -2.5), V(0, 2, 2, -0.0, -2, -2));
    unary_f64(IR_OP_FLOOR, NOATTR, 2, V(-0.5, 1.5), V(-1, 1));
    unary_f64(IR_OP_CEIL, NOATTR, 2, V(-0.5, 1.5), V(-0.0, 2));
    unary_f64(IR_OP_RSQRT, NOATTR, 4, V(4, 0, -0.0, inf), V(0.5, inf, -inf, 0));
    unary_f64(IR_OP_RECIPROCAL, NOATTR, 2, V(-0.0, 4), V(-inf, 0.25));
    unary_f64(IR_OP_SIGMOID, NOATTR, 3, V(0, -inf, inf), V(0.5, 0, 1));
    unary_f64(IR_OP_SILU, NOATTR, 3, V(1, -inf, 0), V(0.7310585786300049, NAN, 0));
    unary_f64(IR_OP_GELU, NOATTR, 4, V(1, 0, inf, -inf), V(0.8413447460685429, 0, inf, NAN));
    unary_f64(IR_OP_GELU, ATTRS(a_str("approximate", "tanh")), 2, V(1, -inf), V(0.8411919906082768, NAN));
    unary_f64(IR_OP_EXP2, NOATTR, 2, V(3, -inf), V(8, 0));
    unary_f64(IR_OP_LOG, NOATTR, 3, V(1, -0.0, -1), V(0, -inf, NAN));
    unary_f64(IR_OP_ABS, NOATTR, 2, V(-0.0, -3), V(0.0, 3));
    unary_f64(IR_OP_NEG, NOATTR, 1, V(0.0), V(-0.0));

    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, F32, 1, S(3), V(NAN, INFINITY, -1));
    ir_value *n = t_op(&c, IR_OP_ISNAN, IN(x), 1, NOATTR);
    ir_value *i = t_op(&c, IR_OP_ISINF, IN(x), 1, NOATTR);
    ir_value *nb = t_op(&c, IR_OP_NOT, IN(n), 1, NOATTR);
    fusec_tensor o[3];
    CHECK_EQ_INT(t_run_n(&c, IN(n, i, nb), 3, o), FUSEC_OK);
    CHECK_EQ_INT(o[0].dtype, BOOL);
    CHECK_I(&o[0], 0, 1);
    CHECK_I(&o[0], 1, 0);
    CHECK_I(&o[1], 1, 1);
    CHECK_I(&o[1], 2, 0);
    CHECK_I(&o[2], 0, 0);
    CHECK_I(&o[2], 2, 1);
    t_free(&c, o, 3);
}

TEST(half_rounding) {
    tctx c;
    t_init(&c);
    /* f16 has 11 significant bits: 2048 + 1 ties to 2048, 2048 + 3 to 2052 */
    ir_value *h = t_in(&c, F16, 1, S(3), V(2048, 2048, 65504));
    ir_value *hd = t_in(&c, F16, 1, S(3), V(1, 3, 16));
    /* bf16 has 8: 256 + 1 ties to 256, 256 + 3 to 260 */
    ir_value *b = t_in(&c, BF16, 1, S(2), V(256, 256));
    ir_value *bd = t_in(&c, BF16, 1, S(2), V(1, 3));
    ir_value *hs = t_op(&c, IR_OP_ADD, IN(h, hd), 2, NOATTR);
    ir_value *bs = t_op(&c, IR_OP_ADD, IN(b, bd), 2, NOATTR);
    /* f32 -> f16: 65519 rounds down to the max, 65520 up to inf */
    ir_value *f = t_in(&c, F32, 1, S(3), V(65519, 65520, 0.1));
    ir_value *fh = t_op(&c, IR_OP_CAST, IN(f), 1, ATTRS(a_dt("to", F16)));
    fusec_tensor o[3];
    CHECK_EQ_INT(t_run_n(&c, IN(hs, bs, fh), 3, o), FUSEC_OK);
    CHECK_F(&o[0], 0, 2048.0);
    CHECK_F(&o[0], 1, 2052.0);
    CHECK_F(&o[0], 2, INFINITY); /* 65520 overflows */
    CHECK_F(&o[1], 0, 256.0);
    CHECK_F(&o[1], 1, 260.0);
    CHECK_F(&o[2], 0, 65504.0);
    CHECK_F(&o[2], 1, INFINITY);
    CHECK_F(&o[2], 2, (double)ir_f16_to_f32(0x2e66)); /* 0.0999755859375 */
    t_free(&c, o, 3);
}

TEST(cast_rules) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, F32, 1, S(7), V(NAN, INFINITY, 300, -1.5, -200.5, 2.9, -2.9));
    ir_value *i8 = t_op(&c, IR_OP_CAST, IN(x), 1, ATTRS(a_dt("to", I8)));
    ir_value *u8 = t_op(&c, IR_OP_CAST, IN(x), 1, ATTRS(a_dt("to", U8)));
    ir_value *i64 = t_op(&c, IR_OP_CAST, IN(x), 1, ATTRS(a_dt("to", I64)));
    ir_value *bl = t_op(&c, IR_OP_CAST, IN(x), 1, ATTRS(a_dt("to", BOOL)));
    ir_value *back = t_op(&c, IR_OP_CAST, IN(bl), 1, ATTRS(a_dt("to", F32)));
    ir_value *big = t_in_i(&c, I64, 1, S(2), S(200, -1));
    ir_value *n8 = t_op(&c, IR_OP_CAST, IN(big), 1, ATTRS(a_dt("to", I8)));
    fusec_tensor o[6];
    CHECK_EQ_INT(t_run_n(&c, IN(i8, u8, i64, bl, back, n8), 6, o), FUSEC_OK);
    CHECK_I(&o[0], 0, 0);   /* NaN -> 0 */
    CHECK_I(&o[0], 1, -1);  /* inf saturates to INT64_MAX, whose low byte is -1 */
    CHECK_I(&o[0], 2, 44);  /* 300 wraps */
    CHECK_I(&o[0], 3, -1);
    CHECK_I(&o[0], 4, 56);  /* -200 wraps */
    CHECK_I(&o[0], 5, 2);   /* toward zero */
    CHECK_I(&o[0], 6, -2);
    CHECK_I(&o[1], 3, 255); /* -1 -> u8 */
    CHECK(at_i(&o[2], 1) == INT64_MAX);
    CHECK_I(&o[2], 2, 300);
    CHECK_I(&o[3], 0, 1); /* NaN != 0 */
    CHECK_I(&o[3], 5, 1);
    CHECK_F(&o[4], 0, 1.0);
    CHECK_I(&o[5], 0, -56);
    CHECK_I(&o[5], 1, -1);
    t_free(&c, o, 6);
}

TEST(masked_fill) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, I32, 2, S(2, 2), V(1, 2, 3, 4));
    ir_value *m = t_in(&c, BOOL, 1, S(2), V(0, 1));
    fusec_tensor out;
    CHECK_EQ_INT(t_run(&c, t_op(&c, IR_OP_MASKED_FILL, IN(x, m), 2, ATTRS(a_flt("value", -7))), &out),
                 FUSEC_OK);
    CHECK_I(&out, 0, 1);
    CHECK_I(&out, 1, -7);
    CHECK_I(&out, 2, 3);
    CHECK_I(&out, 3, -7);
    t_free(&c, &out, 1);
}

TEST(reductions) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, F32, 2, S(2, 3), V(1, 2, 3, 4, 5, 6));
    ir_value *s0 = t_op(&c, IR_OP_SUM, IN(x), 1, ATTRS(a_ints("axes", 1, S(0))));
    ir_value *s1 = t_op(&c, IR_OP_SUM, IN(x), 1, ATTRS(a_ints("axes", 1, S(-1)), a_bool("keepdim", true)));
    ir_value *sa = t_op(&c, IR_OP_SUM, IN(x), 1, NOATTR);
    ir_value *mn = t_op(&c, IR_OP_MEAN, IN(x), 1, ATTRS(a_ints("axes", 1, S(1))));
    ir_value *pr = t_op(&c, IR_OP_PROD, IN(x), 1, ATTRS(a_ints("axes", 2, S(1, 0))));
    ir_value *mx = t_op(&c, IR_OP_MAX, IN(x), 1, ATTRS(a_ints("axes", 1, S(0))));
    ir_value *mi = t_op(&c, IR_OP_MIN, IN(x), 1, ATTRS(a_ints("axes", 1, S(1)), a_bool("keepdim", true)));
    ir_value *v1 = t_op(&c, IR_OP_VAR, IN(x), 1, ATTRS(a_ints("axes", 1, S(1))));
    ir_value *v0 = t_op(&c, IR_OP_VAR, IN(x), 1, ATTRS(a_int("correction", 0)));
    fusec_tensor o[9];
    CHECK_EQ_INT(t_run_n(&c, IN(s0, s1, sa, mn, pr, mx, mi, v1, v0), 9, o), FUSEC_OK);
    CHECK_SHAPE(&o[0], 3);
    CHECK_F(&o[0], 0, 5.0);
    CHECK_F(&o[0], 2, 9.0);
    CHECK_SHAPE(&o[1], 2, 1);
    CHECK_F(&o[1], 0, 6.0);
    CHECK_F(&o[1], 1, 15.0);
    CHECK_SHAPE(&o[2]);
    CHECK_F(&o[2], 0, 21.0);
    CHECK_F(&o[3], 0, 2.0);
    CHECK_F(&o[3], 1, 5.0);
    CHECK_F(&o[4], 0, 720.0);
    CHECK_F(&o[5], 0, 4.0);
    CHECK_F(&o[5], 2, 6.0);
    CHECK_SHAPE(&o[6], 2, 1);
    CHECK_F(&o[6], 1, 4.0);
    CHECK_F(&o[7], 0, 1.0); /* var([1,2,3]) with correction 1 */
    CHECK_F(&o[7], 1, 1.0);
    CHECK(near(at_f(&o[8], 0), 35.0 / 12.0, 1e-7)); /* population variance of 1..6, in f32 */
    t_free(&c, o, 9);
}

TEST(reductions_integer_and_bool) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, I8, 1, S(3), V(127, 127, 100));
    ir_value *b = t_in(&c, BOOL, 2, S(2, 2), V(1, 0, 0, 0));
    ir_value *s = t_op(&c, IR_OP_SUM, IN(x), 1, NOATTR);
    ir_value *p = t_op(&c, IR_OP_PROD, IN(x), 1, NOATTR);
    ir_value *sb = t_op(&c, IR_OP_SUM, IN(b), 1, NOATTR);
    ir_value *mb = t_op(&c, IR_OP_MAX, IN(b), 1, ATTRS(a_ints("axes", 1, S(1))));
    ir_value *mn = t_op(&c, IR_OP_MIN, IN(x), 1, NOATTR);
    fusec_tensor o[5];
    CHECK_EQ_INT(t_run_n(&c, IN(s, p, sb, mb, mn), 5, o), FUSEC_OK);
    CHECK_EQ_INT(o[0].dtype, I64);
    CHECK_I(&o[0], 0, 354); /* exact, no i8 wrap */
    CHECK_I(&o[1], 0, 1612900);
    CHECK_EQ_INT(o[2].dtype, I64);
    CHECK_I(&o[2], 0, 1);
    CHECK_EQ_INT(o[3].dtype, BOOL);
    CHECK_I(&o[3], 0, 1);
    CHECK_I(&o[3], 1, 0);
    CHECK_EQ_INT(o[4].dtype, I8);
    CHECK_I(&o[4], 0, 100);
    t_free(&c, o, 5);

    /* i64 sum wraps at 64 bits instead of overflowing */
    t_init(&c);
    x = t_in_i(&c, I64, 1, S(2), S(INT64_MAX, 2));
    fusec_tensor out;
    CHECK_EQ_INT(t_run(&c, t_op(&c, IR_OP_SUM, IN(x), 1, NOATTR), &out), FUSEC_OK);
    CHECK(at_i(&out, 0) == INT64_MIN + 1);
    t_free(&c, &out, 1);
}

TEST(reductions_empty_and_size_one) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, F32, 2, S(2, 0), NULL);
    ir_value *s = t_op(&c, IR_OP_SUM, IN(x), 1, ATTRS(a_ints("axes", 1, S(1))));
    ir_value *p = t_op(&c, IR_OP_PROD, IN(x), 1, ATTRS(a_ints("axes", 1, S(1))));
    ir_value *m = t_op(&c, IR_OP_MEAN, IN(x), 1, ATTRS(a_ints("axes", 1, S(1))));
    ir_value *v = t_op(&c, IR_OP_VAR, IN(x), 1, ATTRS(a_ints("axes", 1, S(1))));
    ir_value *s0 = t_op(&c, IR_OP_SUM, IN(x), 1, ATTRS(a_ints("axes", 1, S(0)))); /* f32[0] */
    ir_value *y = t_in(&c, F32, 2, S(1, 1), V(3));
    ir_value *v1 = t_op(&c, IR_OP_VAR, IN(y), 1, NOATTR);
    ir_value *m1 = t_op(&c, IR_OP_MAX, IN(y), 1, ATTRS(a_ints("axes", 1, S(0))));
    fusec_tensor o[7];
    CHECK_EQ_INT(t_run_n(&c, IN(s, p, m, v, s0, v1, m1), 7, o), FUSEC_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_F(&o[0], i, 0.0);
        CHECK_F(&o[1], i, 1.0);
        CHECK_F(&o[2], i, NAN);
        CHECK_F(&o[3], i, NAN);
    }
    CHECK_SHAPE(&o[4], 0);
    CHECK_F(&o[5], 0, NAN); /* one element, correction 1: 0/0 */
    CHECK_SHAPE(&o[6], 1);
    CHECK_F(&o[6], 0, 3.0);
    t_free(&c, o, 7);

    /* correction beyond N divides by 0: inf, as PyTorch */
    t_init(&c);
    x = t_in(&c, F64, 1, S(2), V(1, 2));
    fusec_tensor out;
    CHECK_EQ_INT(t_run(&c, t_op(&c, IR_OP_VAR, IN(x), 1, ATTRS(a_int("correction", 3))), &out), FUSEC_OK);
    CHECK_F(&out, 0, INFINITY);
    t_free(&c, &out, 1);
}

TEST(reductions_nan) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, F32, 2, S(2, 3), V(1, NAN, 3, -1, -INFINITY, 2));
    ir_value *mx = t_op(&c, IR_OP_MAX, IN(x), 1, ATTRS(a_ints("axes", 1, S(1))));
    ir_value *mn = t_op(&c, IR_OP_MIN, IN(x), 1, ATTRS(a_ints("axes", 1, S(1))));
    ir_value *sm = t_op(&c, IR_OP_SUM, IN(x), 1, ATTRS(a_ints("axes", 1, S(1))));
    fusec_tensor o[3];
    CHECK_EQ_INT(t_run_n(&c, IN(mx, mn, sm), 3, o), FUSEC_OK);
    CHECK_F(&o[0], 0, NAN);
    CHECK_F(&o[0], 1, 2.0);
    CHECK_F(&o[1], 0, NAN);
    CHECK_F(&o[1], 1, -INFINITY);
    CHECK_F(&o[2], 0, NAN);
    CHECK_F(&o[2], 1, -INFINITY);
    t_free(&c, o, 3);
}

TEST(compensated_sum) {
    /* 1e16 + 1 + 1 + ... - 1e16: plain double summation loses every 1 */
    tctx c;
    t_init(&c);
    double v[10] = {1e16, 1, 1, 1, 1, 1, 1, 1, 1, -1e16};
    ir_value *x = t_in(&c, F64, 1, S(10), v);
    fusec_tensor out;
    CHECK_EQ_INT(t_run(&c, t_op(&c, IR_OP_SUM, IN(x), 1, NOATTR), &out), FUSEC_OK);
    CHECK_F(&out, 0, 8.0);
    t_free(&c, &out, 1);
}

TEST(argmax_argmin) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, F32, 2, S(2, 4), V(3, 1, 3, 0, 1, NAN, 5, NAN));
    ir_value *a1 = t_op(&c, IR_OP_ARGMAX, IN(x), 1, ATTRS(a_int("axis", 1)));
    ir_value *i1 = t_op(&c, IR_OP_ARGMIN, IN(x), 1, ATTRS(a_int("axis", -1), a_bool("keepdim", true)));
    ir_value *a0 = t_op(&c, IR_OP_ARGMAX, IN(x), 1, ATTRS(a_int("axis", 0)));
    ir_value *af = t_op(&c, IR_OP_ARGMAX, IN(x), 1, NOATTR);
    ir_value *y = t_in(&c, I32, 1, S(5), V(2, -7, 9, -7, 9));
    ir_value *ay = t_op(&c, IR_OP_ARGMAX, IN(y), 1, NOATTR);
    ir_value *iy = t_op(&c, IR_OP_ARGMIN, IN(y), 1, ATTRS(a_int("axis", 0)));
    fusec_tensor o[6];
    CHECK_EQ_INT(t_run_n(&c, IN(a1, i1, a0, af, ay, iy), 6, o), FUSEC_OK);
    CHECK_EQ_INT(o[0].dtype, I64);
    CHECK_SHAPE(&o[0], 2);
    CHECK_I(&o[0], 0, 0); /* tie 3, 3: first */
    CHECK_I(&o[0], 1, 1); /* first NaN */
    CHECK_SHAPE(&o[1], 2, 1);
    CHECK_I(&o[1], 0, 3);
    CHECK_I(&o[1], 1, 1); /* NaN is also the minimum */
    CHECK_I(&o[2], 0, 0);
    CHECK_I(&o[2], 1, 1);
    CHECK_I(&o[2], 3, 1);
    CHECK_SHAPE(&o[3]);
    CHECK_I(&o[3], 0, 5); /* flattened: the first NaN */
    CHECK_I(&o[4], 0, 2);
    CHECK_I(&o[5], 0, 1);
    t_free(&c, o, 6);
}

TEST(softmax) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, F64, 2, S(3, 3), V(1, 2, 3, -INFINITY, -INFINITY, -INFINITY, -INFINITY, 0, NAN));
    ir_value *s = t_op(&c, IR_OP_SOFTMAX, IN(x), 1, NOATTR);
    ir_value *l = t_op(&c, IR_OP_LOG_SOFTMAX, IN(x), 1, ATTRS(a_int("axis", 1)));
    ir_value *y = t_in(&c, F32, 2, S(2, 2), V(0, 1, 0, 1));
    ir_value *s0 = t_op(&c, IR_OP_SOFTMAX, IN(y), 1, ATTRS(a_int("axis", 0)));
    fusec_tensor o[3];
    CHECK_EQ_INT(t_run_n(&c, IN(s, l, s0), 3, o), FUSEC_OK);
    CHECK_NEAR(&o[0], 0, 0.09003057317038046);
    CHECK_NEAR(&o[0], 1, 0.24472847105479764);
    CHECK_NEAR(&o[0], 2, 0.6652409557748218);
    for (int i = 3; i < 9; i++) CHECK_F(&o[0], i, NAN); /* all -inf row; a row with NaN */
    CHECK_NEAR(&o[1], 0, -2.4076059644443806);
    CHECK_NEAR(&o[1], 2, -0.4076059644443804);
    CHECK_F(&o[1], 4, NAN);
    for (int i = 0; i < 4; i++) CHECK_F(&o[2], i, 0.5);
    t_free(&c, o, 3);

    /* -inf next to finite values is an exact 0 (log: -inf) */
    t_init(&c);
    x = t_in(&c, F32, 1, S(2), V(-INFINITY, 1));
    s = t_op(&c, IR_OP_SOFTMAX, IN(x), 1, NOATTR);
    l = t_op(&c, IR_OP_LOG_SOFTMAX, IN(x), 1, NOATTR);
    CHECK_EQ_INT(t_run_n(&c, IN(s, l), 2, o), FUSEC_OK);
    CHECK_F(&o[0], 0, 0.0);
    CHECK_F(&o[0], 1, 1.0);
    CHECK_F(&o[1], 0, -INFINITY);
    CHECK_F(&o[1], 1, 0.0);
    t_free(&c, o, 2);
}

TEST(norms) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, F64, 2, S(2, 3), V(1, 2, 3, 5, 5, 5));
    ir_value *w = t_in(&c, F64, 1, S(3), V(1, 2, 3));
    ir_value *b = t_in(&c, F64, 1, S(3), V(0, 0.5, 1));
    ir_value *ln = t_op(&c, IR_OP_LAYER_NORM, IN(x), 1, NOATTR);
    ir_value *lwb = t_op(&c, IR_OP_LAYER_NORM, IN(x, w, b), 3, NOATTR);
    ir_value *l2 = t_op(&c, IR_OP_LAYER_NORM, IN(x), 1, ATTRS(a_ints("axes", 2, S(0, 1)), a_flt("eps", 0)));
    ir_value *rms = t_op(&c, IR_OP_RMS_NORM, IN(x, w), 2, NOATTR);
    fusec_tensor o[4];
    CHECK_EQ_INT(t_run_n(&c, IN(ln, lwb, l2, rms), 4, o), FUSEC_OK);
    CHECK_NEAR(&o[0], 0, -1.2247356859083902);
    CHECK_F(&o[0], 1, 0.0);
    CHECK_NEAR(&o[0], 2, 1.2247356859083902);
    CHECK_F(&o[0], 4, 0.0); /* a constant row */
    CHECK_NEAR(&o[1], 0, -1.2247356859083902);
    CHECK_NEAR(&o[1], 1, 0.5);
    CHECK_NEAR(&o[1], 2, 3 * 1.2247356859083902 + 1);
    CHECK_F(&o[1], 5, 1.0);
    /* over all 6: mean 3.5, var 15.5/6 */
    CHECK_NEAR(&o[2], 0, -2.5 / sqrt(15.5 / 6));
    CHECK_NEAR(&o[2], 5, 1.5 / sqrt(15.5 / 6));
    /* rms of [1,2,3] = sqrt(14/3) */
    CHECK_NEAR(&o[3], 0, 1 * 0.4629100002887783 * 1);
    CHECK_NEAR(&o[3], 2, 3 * 0.4629100002887783 * 3);
    t_free(&c, o, 4);

    t_init(&c);
    x = t_in(&c, F64, 3, S(1, 2, 2), V(1, 3, 5, 7));
    ir_value *mean = t_in(&c, F64, 1, S(2), V(1, 1));
    ir_value *var = t_in(&c, F64, 1, S(2), V(1, 4));
    w = t_in(&c, F64, 1, S(2), V(1, 2));
    b = t_in(&c, F64, 1, S(2), V(0, 0.5));
    ir_value *bn = t_op(&c, IR_OP_BATCH_NORM, IN(x, mean, var, w, b), 5, NOATTR);
    ir_value *bn3 = t_op(&c, IR_OP_BATCH_NORM, IN(x, mean, var), 3, ATTRS(a_flt("eps", 0)));
    CHECK_EQ_INT(t_run_n(&c, IN(bn, bn3), 2, o), FUSEC_OK);
    CHECK_NEAR(&o[0], 0, 0.0);
    CHECK_NEAR(&o[0], 1, 2 / sqrt(1 + 1e-5));
    CHECK_NEAR(&o[0], 2, 4.499995000009375);
    CHECK_F(&o[1], 3, 3.0);
    t_free(&c, o, 2);
}

TEST(creation) {
    tctx c;
    t_init(&c);
    ir_value *io = t_make(&c, IR_OP_IOTA, ty(I32, 2, S(2, 3)), ATTRS(a_int("axis", 1)));
    ir_value *io0 = t_make(&c, IR_OP_IOTA, ty(F16, 2, S(2, 3)), ATTRS(a_int("axis", -2)));
    ir_value *ib = t_make(&c, IR_OP_IOTA, ty(BOOL, 1, S(3)), ATTRS(a_int("axis", 0)));
    ir_value *fu = t_make(&c, IR_OP_FULL, ty(BF16, 1, S(2)), ATTRS(a_flt("value", -INFINITY)));
    ir_value *fi = t_make(&c, IR_OP_FULL, ty(U8, 0, NULL), ATTRS(a_flt("value", 200)));
    ir_value *co = t_make(&c, IR_OP_CONSTANT, ty(I16, 2, S(2, 2)), ATTRS(a_flts("data", 4, V(1, -2, 3, 4))));
    ir_value *cf = t_make(&c, IR_OP_CONSTANT, ty(F16, 1, S(2)), ATTRS(a_flts("data", 2, V(0.1, 1e6))));
    fusec_tensor o[7];
    CHECK_EQ_INT(t_run_n(&c, IN(io, io0, ib, fu, fi, co, cf), 7, o), FUSEC_OK);
    for (int i = 0; i < 6; i++) {
        CHECK_I(&o[0], i, i % 3);
        CHECK_F(&o[1], i, (double)(i / 3));
    }
    CHECK_I(&o[2], 0, 0);
    CHECK_I(&o[2], 2, 1);
    CHECK_F(&o[3], 1, -INFINITY);
    CHECK_I(&o[4], 0, 200);
    CHECK_I(&o[5], 1, -2);
    CHECK_I(&o[5], 3, 4);
    CHECK_F(&o[6], 0, (double)ir_f16_to_f32(0x2e66));
    CHECK_F(&o[6], 1, INFINITY);
    t_free(&c, o, 7);
}

TEST(size_zero_tensors) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, F32, 2, S(0, 3), NULL);
    ir_value *y = t_in(&c, F32, 1, S(3), V(1, 2, 3));
    ir_value *s = t_op(&c, IR_OP_ADD, IN(x, y), 2, NOATTR);
    ir_value *sm = t_op(&c, IR_OP_SOFTMAX, IN(s), 1, ATTRS(a_int("axis", 0)));
    ir_value *ln = t_op(&c, IR_OP_LAYER_NORM, IN(sm), 1, NOATTR);
    ir_value *r = t_op(&c, IR_OP_SUM, IN(ln), 1, ATTRS(a_ints("axes", 1, S(0))));
    fusec_tensor o[2];
    CHECK_EQ_INT(t_run_n(&c, IN(ln, r), 2, o), FUSEC_OK);
    CHECK_SHAPE(&o[0], 0, 3);
    CHECK(o[0].data != NULL);
    CHECK_F(&o[1], 2, 0.0);
    t_free(&c, o, 2);

    /* an empty input may have data NULL */
    t_init(&c);
    x = t_in(&c, I32, 1, S(0), NULL);
    free(c.in[0].data);
    c.in[0].data = NULL;
    fusec_tensor out;
    CHECK_EQ_INT(t_run(&c, x, &out), FUSEC_OK);
    CHECK(out.data != NULL);
    t_free(&c, &out, 1);
}

TEST(results_are_copies) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, F32, 1, S(2), V(1, 2));
    ir_value *e = t_op(&c, IR_OP_NEG, IN(x), 1, NOATTR);
    ir_value *dead = t_op(&c, IR_OP_EXP, IN(e), 1, NOATTR); /* never used */
    (void)dead;
    fusec_tensor o[3];
    CHECK_EQ_INT(t_run_n(&c, IN(e, e, x), 3, o), FUSEC_OK);
    CHECK(o[0].data != o[1].data);
    CHECK(o[2].data != c.in[0].data);
    CHECK_F(&o[1], 1, -2.0);
    CHECK_F(&o[2], 0, 1.0);
    t_free(&c, o, 3);
}

TEST(input_checks) {
    tctx c;
    t_init(&c);
    ir_value *x = t_in(&c, F32, 2, S(2, 3), NULL);
    ir_graph_add_result(c.g, t_op(&c, IR_OP_NEG, IN(x), 1, NOATTR));
    fusec_tensor out = {0};
    c.in[0].shape[1] = 4;
    CHECK_EQ_INT(rt_interp_run(c.g, c.in, 1, &out, 1, &c.d), FUSEC_ERR_INVALID);
    CHECK_MSG(&c, "input %x0: expected f32[2, 3], got f32[2, 4]");
    c.in[0].shape[1] = 3;
    c.in[0].dtype = F16;
    CHECK_EQ_INT(rt_interp_run(c.g, c.in, 1, &out, 1, &c.d), FUSEC_ERR_INVALID);
    CHECK_MSG(&c, "input %x0: expected f32[2, 3], got f16[2, 3]");
    c.in[0].dtype = F32;
    CHECK_EQ_INT(rt_interp_run(c.g, c.in, 0, &out, 1, &c.d), FUSEC_ERR_INVALID);
    CHECK_MSG(&c, "takes 1 input, got 0");
    CHECK_EQ_INT(rt_interp_run(c.g, c.in, 1, &out, 2, &c.d), FUSEC_ERR_INVALID);
    CHECK(out.data == NULL);
    CHECK_EQ_INT(rt_interp_run(c.g, c.in, 1, &out, 1, &c.d), FUSEC_OK);
    t_free(&c, &out, 1);
}

/* ---- every op has a kernel and runs ----------------------------------- */

/* Build a minimal valid node of `op` over inputs of value 0.5 (floats) or
 * 0 (integers, bool: every index is then in range).  A new op in ops.def
 * fails here until it gets a recipe, and then until it has a kernel. */
static ir_value *smoke_node(tctx *c, ir_op op) {
    ir_value *x = t_in(c, F32, 2, S(2, 3), V(0.5, 0.5, 0.5, 0.5, 0.5, 0.5));
    const ir_op_info *info = ir_op_get(op);
    switch (op) {
    case IR_OP_NOT: return t_op(c, op, IN(t_in(c, BOOL, 2, S(2, 3), NULL)), 1, NOATTR);
    case IR_OP_CAST: return t_op(c, op, IN(x), 1, ATTRS(a_dt("to", I8)));
    case IR_OP_CLAMP: return t_op(c, op, IN(x), 1, ATTRS(a_flt("min", 0)));
    case IR_OP_AND:
    case IR_OP_OR:
    case IR_OP_XOR: {
        ir_value *b = t_in(c, BOOL, 2, S(2, 3), NULL);
        return t_op(c, op, IN(b, b), 2, NOATTR);
    }
    case IR_OP_WHERE: return t_op(c, op, IN(t_in(c, BOOL, 1, S(3), NULL), x, x), 3, NOATTR);
    case IR_OP_MASKED_FILL:
        return t_op(c, op, IN(x, t_in(c, BOOL, 1, S(3), NULL)), 2, ATTRS(a_flt("value", 1)));
    case IR_OP_BATCH_NORM: {
        ir_value *m = t_in(c, F32, 1, S(3), NULL);
        return t_op(c, op, IN(x, m, m), 3, NOATTR);
    }
    case IR_OP_RESHAPE: return t_op(c, op, IN(x), 1, ATTRS(a_ints("shape", 2, S(3, -1))));
    case IR_OP_PERMUTE: return t_op(c, op, IN(x), 1, ATTRS(a_ints("dims", 2, S(1, 0))));
    case IR_OP_TRANSPOSE: return t_op(c, op, IN(x), 1, ATTRS(a_int("dim0", 0), a_int("dim1", 1)));
    case IR_OP_EXPAND: return t_op(c, op, IN(x), 1, ATTRS(a_ints("shape", 3, S(4, 2, 3))));
    case IR_OP_SQUEEZE: return t_op(c, op, IN(t_in(c, F32, 2, S(1, 3), NULL)), 1, NOATTR);
    case IR_OP_UNSQUEEZE: return t_op(c, op, IN(x), 1, ATTRS(a_int("axis", 1)));
    case IR_OP_SLICE: return t_op(c, op, IN(x), 1, ATTRS(a_int("axis", 1), a_int("start", 1)));
    case IR_OP_CONCAT: return t_op(c, op, IN(x, x), 2, ATTRS(a_int("axis", 0)));
    case IR_OP_PAD: return t_op(c, op, IN(x), 1, ATTRS(a_ints("pads", 2, S(1, 1))));
    case IR_OP_INDEX_SELECT:
        return t_op(c, op, IN(x, t_in(c, I64, 1, S(2), NULL)), 2, ATTRS(a_int("axis", 0)));
    case IR_OP_EMBEDDING: return t_op(c, op, IN(x, t_in(c, I64, 1, S(2), NULL)), 2, NOATTR);
    case IR_OP_GATHER:
        return t_op(c, op, IN(x, t_in(c, I64, 2, S(2, 3), NULL)), 2, ATTRS(a_int("axis", 1)));
    case IR_OP_FULL: return t_make(c, op, ty(F32, 1, S(2)), ATTRS(a_flt("value", 1)));
    case IR_OP_IOTA: return t_make(c, op, ty(I64, 1, S(2)), ATTRS(a_int("axis", 0)));
    case IR_OP_CONSTANT: return t_make(c, op, ty(F32, 1, S(2)), ATTRS(a_flts("data", 2, V(1, 2))));
    case IR_OP_MATMUL: return t_op(c, op, IN(x, t_in(c, F32, 2, S(3, 2), NULL)), 2, NOATTR);
    case IR_OP_LINEAR: return t_op(c, op, IN(x, t_in(c, F32, 2, S(4, 3), NULL)), 2, NOATTR);
    case IR_OP_CONV2D:
        return t_op(c, op, IN(t_in(c, F32, 4, S(1, 1, 4, 4), NULL), t_in(c, F32, 4, S(1, 1, 3, 3), NULL)),
                    2, NOATTR);
    case IR_OP_MAX_POOL2D:
    case IR_OP_AVG_POOL2D:
        return t_op(c, op, IN(t_in(c, F32, 4, S(1, 1, 4, 4), NULL)), 1, ATTRS(a_ints("kernel", 2, S(2, 2))));
    case IR_OP_ADAPTIVE_AVG_POOL2D:
        return t_op(c, op, IN(t_in(c, F32, 4, S(1, 1, 4, 4), NULL)), 1,
                    ATTRS(a_ints("output_size", 2, S(2, 2))));
    case IR_OP_SDPA: {
        ir_value *q = t_in(c, F32, 4, S(1, 1, 2, 4), NULL);
        return t_op(c, op, IN(q, q, q), 3, NOATTR);
    }
    default: break;
    }
    /* the rest take one or two f32 tensors and no required attribute */
    if (info->min_in == 1) return t_op(c, op, IN(x), 1, NOATTR);
    if (info->min_in == 2) return t_op(c, op, IN(x, x), 2, NOATTR);
    fprintf(stderr, "no smoke recipe for op %s\n", info->name);
    return NULL;
}

TEST(every_op_has_a_kernel) {
    for (int op = 0; op < IR_OP_COUNT; op++) {
        tctx c;
        t_init(&c);
        fusec_tensor out = {0};
        fusec_status st = t_run(&c, smoke_node(&c, (ir_op)op), &out);
        if (st != FUSEC_OK) {
            fprintf(stderr, "  op %s: status %d: %s", ir_op_get((ir_op)op)->name, (int)st, t_msg(&c));
            CHECK(st == FUSEC_OK);
        }
        t_free(&c, &out, 1);
    }
}

TEST_MAIN(broadcast_add, broadcast_scalar_literal_and_where, int_wraparound, int_div_remainder,
          int_division_by_zero_is_an_error, int_pow, int_logic_and_compare,
          float_division_and_remainder, nan_and_signed_zero_rules, unary_math, half_rounding,
          cast_rules, masked_fill, reductions, reductions_integer_and_bool,
          reductions_empty_and_size_one, reductions_nan, compensated_sum, argmax_argmin, softmax,
          norms, creation, size_zero_tensors, results_are_copies, input_checks,
          every_op_has_a_kernel)
