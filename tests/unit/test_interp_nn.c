/*
 * test_interp_nn.c - the interpreter's data-movement, indexing, contraction,
 * window and attention kernels (runtime/interp_nn.c) against values worked
 * out by hand (or, for the pools and convolutions, checked once against
 * PyTorch 1.13 and written down here).
 *
 * Each test builds a node with ir_build (so shapes and attributes go through
 * the real inference), runs the kernel directly on hand-made tensors, and
 * compares every element.  The last tests run whole graphs through
 * rt_interp_run to check the dispatch and the run-time error path.
 */
#include <math.h>
#include <stdbool.h>

#include "ir/ir.h"
#include "runtime/interp.h"
#include "runtime/interp_kernels.h"
#include "test.h"

#define F64 FUSEC_DTYPE_F64
#define F32 FUSEC_DTYPE_F32
#define F16 FUSEC_DTYPE_F16
#define BF16 FUSEC_DTYPE_BF16
#define I64 FUSEC_DTYPE_I64
#define I32 FUSEC_DTYPE_I32
#define BOOL FUSEC_DTYPE_BOOL

#define SH(...) ((const int64_t[]){__VA_ARGS__})
#define NI(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define ND(...) ((int)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)))
#define NATTR(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- fixtures ---------------------------------------------------------- */

/* One test's graph, diagnostics and result buffers, freed together. */
typedef struct {
    ir_graph *g;
    ir_diag d;
    void *bufs[64];
    int nbufs;
} fx;

static void fx_init(fx *f) {
    f->g = ir_graph_new("t");
    ir_diag_init(&f->d, NULL, NULL, 0);
    f->nbufs = 0;
}

static void fx_done(fx *f) {
    for (int i = 0; i < f->nbufs; i++) free(f->bufs[i]);
    ir_graph_free(f->g);
    ir_diag_free(&f->d);
}

static const char *fx_msg(const fx *f) { return f->d.out.buf ? f->d.out.buf : ""; }

static fusec_tensor TN(fusec_dtype dt, int rank, const int64_t *shape, const void *data) {
    fusec_tensor t = {.dtype = dt, .rank = rank, .data = (void *)data};
    for (int i = 0; i < rank; i++) t.shape[i] = shape[i];
    return t;
}

static ir_attr_init AI(const char *name, int64_t v) {
    return (ir_attr_init){.name = name, .kind = IR_AK_INT, .val = {.i = v}};
}
static ir_attr_init AB(const char *name, bool v) {
    return (ir_attr_init){.name = name, .kind = IR_AK_BOOL, .val = {.i = v}};
}
static ir_attr_init AF(const char *name, double v) {
    return (ir_attr_init){.name = name, .kind = IR_AK_FLOAT, .val = {.f = v}};
}
#define AINTS(nm, ...)                                                                       \
    ((ir_attr_init){.name = nm, .kind = IR_AK_INTS,                                          \
                    .val = {.n = NI(__VA_ARGS__), .ints = (int64_t *)SH(__VA_ARGS__)}})

/* Build `op` over fresh parameters typed like ins[], run `fn` on ins and
 * leave the result in *out (a zeroed buffer of the inferred type, owned by
 * f).  False if the build or the kernel failed; the message is in f->d. */
static bool op_run(fx *f, ir_op op, rt_kernel_fn fn, const fusec_tensor *ins, int nin,
                   const ir_attr_init *attrs, int nattrs, fusec_tensor *out) {
    ir_value *ps[8];
    *out = (fusec_tensor){.rank = -1};
    for (int i = 0; i < nin; i++) {
        ir_type t = {.dtype = ins[i].dtype, .rank = ins[i].rank};
        for (int k = 0; k < t.rank; k++) t.dim[k] = ins[i].shape[k];
        ps[i] = ir_graph_add_param(f->g, NULL, &t, (ir_loc){0, 0});
    }
    ir_value *v = ir_build(f->g, op, ps, nin, attrs, nattrs, NULL, (ir_loc){0, 0}, &f->d);
    if (!v) {
        fprintf(stderr, "ir_build failed: %s", fx_msg(f));
        return false;
    }
    int64_t cnt = ir_type_numel(&v->type);
    out->dtype = v->type.dtype;
    out->rank = v->type.rank;
    for (int k = 0; k < out->rank; k++) out->shape[k] = v->type.dim[k];
    out->data = calloc((size_t)(cnt ? cnt : 1), ir_dtype_size(out->dtype));
    if (f->nbufs == (int)(sizeof f->bufs / sizeof f->bufs[0])) abort(); /* a test too long */
    f->bufs[f->nbufs++] = out->data;
    return fn(v->def, ins, out, &f->d);
}

/* ---- comparisons ------------------------------------------------------- */

static int64_t numel_of(const fusec_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->shape[i];
    return t->rank < 0 ? -1 : n;
}

/* Equal within a relative tolerance; NaN equals NaN, infinities and signed
 * zeros must match exactly. */
static bool near(double got, double want, double tol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want) || want == 0) return got == want && (want != 0 || signbit(got) == signbit(want));
    return fabs(got - want) <= tol * fabs(want);
}

static void expect_f(const fusec_tensor *t, double tol, const double *want, int n, int line) {
    if (numel_of(t) != n) {
        fprintf(stderr, "line %d: expected %d elements, got %lld\n", line, n, (long long)numel_of(t));
        test_failed_ = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        double got = ir_load_f(t->dtype, t->data, i);
        if (!near(got, want[i], tol)) {
            fprintf(stderr, "line %d: element %d is %.17g, expected %.17g\n", line, i, got, want[i]);
            test_failed_ = 1;
        }
    }
}

static void expect_i(const fusec_tensor *t, const int64_t *want, int n, int line) {
    if (numel_of(t) != n) {
        fprintf(stderr, "line %d: expected %d elements, got %lld\n", line, n, (long long)numel_of(t));
        test_failed_ = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        int64_t got = ir_load_i(t->dtype, t->data, i);
        if (got != want[i]) {
            fprintf(stderr, "line %d: element %d is %lld, expected %lld\n", line, i, (long long)got,
                    (long long)want[i]);
            test_failed_ = 1;
        }
    }
}

static void expect_shape(const fusec_tensor *t, const int64_t *shape, int rank, int line) {
    bool ok = t->rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        fprintf(stderr, "line %d: unexpected result shape (rank %d)\n", line, t->rank);
        test_failed_ = 1;
    }
}

/* exact (tolerance 0) and approximate float checks, integer checks */
#define EXPECT_F(t, ...) expect_f(&(t), 0, (const double[]){__VA_ARGS__}, ND(__VA_ARGS__), __LINE__)
#define EXPECT_NEAR(t, tol, ...) \
    expect_f(&(t), tol, (const double[]){__VA_ARGS__}, ND(__VA_ARGS__), __LINE__)
#define EXPECT_I(t, ...) expect_i(&(t), SH(__VA_ARGS__), NI(__VA_ARGS__), __LINE__)
#define EXPECT_SHAPE(t, ...) expect_shape(&(t), SH(__VA_ARGS__), NI(__VA_ARGS__), __LINE__)
#define EXPECT_ERROR(f, text) CHECK(strstr(fx_msg(f), text) != NULL)

static const float K1TO16[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* ---- data movement ------------------------------------------------------ */

TEST(copy_reshape_squeeze_unsqueeze) {
    fx f;
    fx_init(&f);
    fusec_tensor out, x = TN(F32, 2, SH(2, 3), K1TO16);
    ir_attr_init a[] = {AINTS("shape", 3, -1)};
    CHECK(op_run(&f, IR_OP_RESHAPE, rt_k_copy, &x, 1, a, 1, &out));
    EXPECT_SHAPE(out, 3, 2);
    EXPECT_F(out, 1, 2, 3, 4, 5, 6);

    const int64_t xi[] = {-5, INT64_MAX, INT64_MIN};
    fusec_tensor y = TN(I64, 3, SH(1, 3, 1), xi);
    CHECK(op_run(&f, IR_OP_SQUEEZE, rt_k_copy, &y, 1, NULL, 0, &out));
    EXPECT_SHAPE(out, 3);
    EXPECT_I(out, -5, INT64_MAX, INT64_MIN);

    const unsigned char xb[] = {1, 0};
    fusec_tensor z = TN(BOOL, 1, SH(2), xb);
    ir_attr_init u[] = {AI("axis", -1)};
    CHECK(op_run(&f, IR_OP_UNSQUEEZE, rt_k_copy, &z, 1, u, 1, &out));
    EXPECT_SHAPE(out, 2, 1);
    EXPECT_I(out, 1, 0);

    fusec_tensor e = TN(F32, 2, SH(0, 3), NULL);
    ir_attr_init a2[] = {AINTS("shape", 3, 0)};
    CHECK(op_run(&f, IR_OP_RESHAPE, rt_k_copy, &e, 1, a2, 1, &out));
    EXPECT_SHAPE(out, 3, 0);
    fx_done(&f);
}

TEST(permute_negative_dims) {
    fx f;
    fx_init(&f);
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)i;
    fusec_tensor out, in = TN(F32, 3, SH(2, 3, 4), x);
    ir_attr_init a[] = {AINTS("dims", 2, 0, -2)};
    CHECK(op_run(&f, IR_OP_PERMUTE, rt_k_permute, &in, 1, a, 1, &out));
    EXPECT_SHAPE(out, 4, 2, 3);
    /* out[i][j][k] = x[j][k][i] = 12 j + 4 k + i */
    EXPECT_F(out, 0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23);
    fx_done(&f);
}

TEST(transpose_dtypes_and_empty) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    const int64_t xi[] = {1, 2, 3, 4, 5, 6};
    fusec_tensor in = TN(I64, 2, SH(2, 3), xi);
    ir_attr_init a[] = {AI("dim0", -1), AI("dim1", 0)};
    CHECK(op_run(&f, IR_OP_TRANSPOSE, rt_k_permute, &in, 1, a, 2, &out));
    EXPECT_SHAPE(out, 3, 2);
    EXPECT_I(out, 1, 4, 2, 5, 3, 6);

    const unsigned char xb[] = {1, 1, 0, 0};
    fusec_tensor b = TN(BOOL, 2, SH(2, 2), xb);
    CHECK(op_run(&f, IR_OP_TRANSPOSE, rt_k_permute, &b, 1, a, 2, &out));
    EXPECT_I(out, 1, 0, 1, 0);

    /* a batched transpose of the last two dims */
    uint16_t h[8];
    for (int i = 0; i < 8; i++) h[i] = ir_f32_to_f16((float)i + 0.5f);
    fusec_tensor hx = TN(F16, 3, SH(2, 2, 2), h);
    ir_attr_init a3[] = {AI("dim0", -2), AI("dim1", -1)};
    CHECK(op_run(&f, IR_OP_TRANSPOSE, rt_k_permute, &hx, 1, a3, 2, &out));
    EXPECT_F(out, 0.5, 2.5, 1.5, 3.5, 4.5, 6.5, 5.5, 7.5);

    fusec_tensor e = TN(F32, 2, SH(0, 3), NULL);
    CHECK(op_run(&f, IR_OP_TRANSPOSE, rt_k_permute, &e, 1, a, 2, &out));
    EXPECT_SHAPE(out, 3, 0);
    fx_done(&f);
}

TEST(expand) {
    fx f;
    fx_init(&f);
    fusec_tensor out, x = TN(F32, 2, SH(3, 1), K1TO16);
    ir_attr_init a[] = {AINTS("shape", 2, -1, 4)};
    CHECK(op_run(&f, IR_OP_EXPAND, rt_k_expand, &x, 1, a, 1, &out));
    EXPECT_SHAPE(out, 2, 3, 4);
    EXPECT_F(out, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);

    const int64_t five = 5;
    fusec_tensor s = TN(I64, 0, NULL, &five);
    ir_attr_init a2[] = {AINTS("shape", 2, 2)};
    CHECK(op_run(&f, IR_OP_EXPAND, rt_k_expand, &s, 1, a2, 1, &out));
    EXPECT_I(out, 5, 5, 5, 5);

    const unsigned char xb[] = {1, 0};
    fusec_tensor b = TN(BOOL, 1, SH(2), xb);
    ir_attr_init a3[] = {AINTS("shape", 2, 2)};
    CHECK(op_run(&f, IR_OP_EXPAND, rt_k_expand, &b, 1, a3, 1, &out));
    EXPECT_I(out, 1, 0, 1, 0);

    ir_attr_init a4[] = {AINTS("shape", 0, 3, 1)};
    CHECK(op_run(&f, IR_OP_EXPAND, rt_k_expand, &x, 1, a4, 1, &out));
    EXPECT_SHAPE(out, 0, 3, 1);
    fx_done(&f);
}

TEST(slice_python_clamping) {
    fx f;
    fx_init(&f);
    const int64_t x[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    fusec_tensor out, in = TN(I64, 1, SH(10), x);
    ir_attr_init a1[] = {AI("axis", 0), AI("start", -3)};
    CHECK(op_run(&f, IR_OP_SLICE, rt_k_slice, &in, 1, a1, NATTR(a1), &out));
    EXPECT_I(out, 7, 8, 9);
    ir_attr_init a2[] = {AI("axis", -1), AI("start", 1), AI("end", -1), AI("step", 3)};
    CHECK(op_run(&f, IR_OP_SLICE, rt_k_slice, &in, 1, a2, NATTR(a2), &out));
    EXPECT_I(out, 1, 4, 7);
    ir_attr_init a3[] = {AI("axis", 0), AI("start", -100), AI("end", 2)};
    CHECK(op_run(&f, IR_OP_SLICE, rt_k_slice, &in, 1, a3, NATTR(a3), &out));
    EXPECT_I(out, 0, 1);
    ir_attr_init a4[] = {AI("axis", 0), AI("start", 20)};
    CHECK(op_run(&f, IR_OP_SLICE, rt_k_slice, &in, 1, a4, NATTR(a4), &out));
    EXPECT_SHAPE(out, 0);
    ir_attr_init a5[] = {AI("axis", 0), AI("start", 5), AI("end", -20)};
    CHECK(op_run(&f, IR_OP_SLICE, rt_k_slice, &in, 1, a5, NATTR(a5), &out));
    EXPECT_SHAPE(out, 0);
    ir_attr_init a6[] = {AI("axis", 0), AI("start", INT64_MIN), AI("end", INT64_MAX), AI("step", 4)};
    CHECK(op_run(&f, IR_OP_SLICE, rt_k_slice, &in, 1, a6, NATTR(a6), &out));
    EXPECT_I(out, 0, 4, 8);

    fusec_tensor m = TN(F32, 2, SH(2, 5), K1TO16);
    ir_attr_init b1[] = {AI("axis", -1), AI("start", 1), AI("end", 4), AI("step", 2)};
    CHECK(op_run(&f, IR_OP_SLICE, rt_k_slice, &m, 1, b1, NATTR(b1), &out));
    EXPECT_SHAPE(out, 2, 2);
    EXPECT_F(out, 2, 4, 7, 9);
    ir_attr_init b2[] = {AI("axis", 0), AI("start", 1)};
    CHECK(op_run(&f, IR_OP_SLICE, rt_k_slice, &m, 1, b2, NATTR(b2), &out));
    EXPECT_F(out, 6, 7, 8, 9, 10);

    fusec_tensor e = TN(F32, 2, SH(0, 5), NULL);
    CHECK(op_run(&f, IR_OP_SLICE, rt_k_slice, &e, 1, b1, NATTR(b1), &out));
    EXPECT_SHAPE(out, 0, 2);
    fx_done(&f);
}

TEST(concat) {
    fx f;
    fx_init(&f);
    const float a[] = {1, 2}, b[] = {3, 4, 5, 6};
    fusec_tensor out, ins[] = {TN(F32, 2, SH(2, 1), a), TN(F32, 2, SH(2, 2), b), TN(F32, 2, SH(2, 0), NULL)};
    ir_attr_init ax[] = {AI("axis", -1)};
    CHECK(op_run(&f, IR_OP_CONCAT, rt_k_concat, ins, 3, ax, 1, &out));
    EXPECT_SHAPE(out, 2, 3);
    EXPECT_F(out, 1, 3, 4, 2, 5, 6);

    const int64_t c[] = {1, 2}, d[] = {3, 4, 5, 6};
    fusec_tensor ins2[] = {TN(I64, 2, SH(1, 2), c), TN(I64, 2, SH(2, 2), d)};
    ir_attr_init a0[] = {AI("axis", 0)};
    CHECK(op_run(&f, IR_OP_CONCAT, rt_k_concat, ins2, 2, a0, 1, &out));
    EXPECT_SHAPE(out, 3, 2);
    EXPECT_I(out, 1, 2, 3, 4, 5, 6);

    const unsigned char p[] = {1}, q[] = {0, 1};
    fusec_tensor ins3[] = {TN(BOOL, 1, SH(1), p), TN(BOOL, 1, SH(2), q), TN(BOOL, 1, SH(1), p)};
    CHECK(op_run(&f, IR_OP_CONCAT, rt_k_concat, ins3, 3, a0, 1, &out));
    EXPECT_I(out, 1, 0, 1, 1);

    fusec_tensor ins4[] = {TN(F32, 2, SH(0, 2), NULL), TN(F32, 2, SH(0, 3), NULL)};
    CHECK(op_run(&f, IR_OP_CONCAT, rt_k_concat, ins4, 2, ax, 1, &out));
    EXPECT_SHAPE(out, 0, 5);
    fx_done(&f);
}

TEST(pad_and_crop) {
    fx f;
    fx_init(&f);
    const int32_t x[] = {0, 1, 2, 3, 4, 5};
    fusec_tensor out, in = TN(I32, 2, SH(2, 3), x);
    ir_attr_init a1[] = {AINTS("pads", 1, 1), AF("value", 7)};
    CHECK(op_run(&f, IR_OP_PAD, rt_k_pad, &in, 1, a1, 2, &out));
    EXPECT_SHAPE(out, 2, 5);
    EXPECT_I(out, 7, 0, 1, 2, 7, 7, 3, 4, 5, 7);

    /* dim 0: one row before; dim 1: crop one column in front, two after */
    ir_attr_init a2[] = {AINTS("pads", 1, 0, -1, 2), AF("value", -1)};
    CHECK(op_run(&f, IR_OP_PAD, rt_k_pad, &in, 1, a2, 2, &out));
    EXPECT_SHAPE(out, 3, 4);
    EXPECT_I(out, -1, -1, -1, -1, 1, 2, -1, -1, 4, 5, -1, -1);

    uint16_t h[] = {ir_f32_to_f16(1.5f), ir_f32_to_f16(-0.0f)};
    fusec_tensor hx = TN(F16, 1, SH(2), h);
    ir_attr_init a3[] = {AINTS("pads", 2, 0), AF("value", 0.25)};
    CHECK(op_run(&f, IR_OP_PAD, rt_k_pad, &hx, 1, a3, 2, &out));
    EXPECT_F(out, 0.25, 0.25, 1.5, -0.0);

    const unsigned char b[] = {1};
    fusec_tensor bx = TN(BOOL, 1, SH(1), b);
    ir_attr_init a4[] = {AINTS("pads", 0, 2)};
    CHECK(op_run(&f, IR_OP_PAD, rt_k_pad, &bx, 1, a4, 1, &out));
    EXPECT_I(out, 1, 0, 0);
    ir_attr_init a5[] = {AINTS("pads", 1, 0), AF("value", 1)};
    CHECK(op_run(&f, IR_OP_PAD, rt_k_pad, &bx, 1, a5, 2, &out));
    EXPECT_I(out, 1, 1);

    ir_attr_init a6[] = {AINTS("pads", -2, -1)};
    CHECK(op_run(&f, IR_OP_PAD, rt_k_pad, &in, 1, a6, 1, &out));
    EXPECT_SHAPE(out, 2, 0);

    /* padding an empty tensor gives only the fill value */
    fusec_tensor e = TN(F32, 1, SH(0), NULL);
    ir_attr_init a7[] = {AINTS("pads", 1, 2), AF("value", -INFINITY)};
    CHECK(op_run(&f, IR_OP_PAD, rt_k_pad, &e, 1, a7, 2, &out));
    EXPECT_F(out, -INFINITY, -INFINITY, -INFINITY);
    fx_done(&f);
}

/* ---- indexing ----------------------------------------------------------- */

TEST(index_select) {
    fx f;
    fx_init(&f);
    const int64_t i64[] = {2, 0, 2};
    const int32_t i32[] = {1, 1, 0};
    fusec_tensor out, ins[] = {TN(F32, 2, SH(3, 2), K1TO16), TN(I64, 1, SH(3), i64)};
    ir_attr_init a0[] = {AI("axis", 0)};
    CHECK(op_run(&f, IR_OP_INDEX_SELECT, rt_k_index_select, ins, 2, a0, 1, &out));
    EXPECT_SHAPE(out, 3, 2);
    EXPECT_F(out, 5, 6, 1, 2, 5, 6);

    ins[1] = TN(I32, 1, SH(3), i32);
    ir_attr_init a1[] = {AI("axis", -1)};
    CHECK(op_run(&f, IR_OP_INDEX_SELECT, rt_k_index_select, ins, 2, a1, 1, &out));
    EXPECT_SHAPE(out, 3, 3);
    EXPECT_F(out, 2, 2, 1, 4, 4, 3, 6, 6, 5);

    ins[1] = TN(I64, 1, SH(0), NULL);
    CHECK(op_run(&f, IR_OP_INDEX_SELECT, rt_k_index_select, ins, 2, a0, 1, &out));
    EXPECT_SHAPE(out, 0, 2);
    fx_done(&f);
}

TEST(index_select_errors) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    const int64_t bad[] = {1, 7}, neg[] = {-1}, zero[] = {0}, two[] = {2};
    ir_attr_init a0[] = {AI("axis", 0)};
    fusec_tensor ins[] = {TN(F32, 1, SH(5), K1TO16), TN(I64, 1, SH(2), bad)};
    CHECK(!op_run(&f, IR_OP_INDEX_SELECT, rt_k_index_select, ins, 2, a0, 1, &out));
    EXPECT_ERROR(&f, "error: index_select: index 7 is out of range for dimension 0 of size 5");
    fx_done(&f);

    fx_init(&f);
    ins[1] = TN(I64, 1, SH(1), neg);
    CHECK(!op_run(&f, IR_OP_INDEX_SELECT, rt_k_index_select, ins, 2, a0, 1, &out));
    EXPECT_ERROR(&f, "index_select: index -1 is out of range for dimension 0 of size 5");
    fx_done(&f);

    /* selecting from an empty dimension */
    fx_init(&f);
    fusec_tensor e[] = {TN(F32, 2, SH(0, 2), NULL), TN(I64, 1, SH(1), zero)};
    CHECK(!op_run(&f, IR_OP_INDEX_SELECT, rt_k_index_select, e, 2, a0, 1, &out));
    EXPECT_ERROR(&f, "index_select: index 0 is out of range for dimension 0 of size 0");
    fx_done(&f);

    /* checked even when the result has no elements (as torch does) */
    fx_init(&f);
    ir_attr_init a1[] = {AI("axis", 1)};
    fusec_tensor e2[] = {TN(F32, 2, SH(0, 2), NULL), TN(I64, 1, SH(1), two)};
    CHECK(!op_run(&f, IR_OP_INDEX_SELECT, rt_k_index_select, e2, 2, a1, 1, &out));
    EXPECT_ERROR(&f, "index_select: index 2 is out of range for dimension 1 of size 2");
    fx_done(&f);
}

TEST(embedding) {
    fx f;
    fx_init(&f);
    const double w[] = {0, 1, 10, 11, 20, 21, 30, 31};
    const int32_t idx[] = {3, 0, 1, 1};
    fusec_tensor out, ins[] = {TN(F64, 2, SH(4, 2), w), TN(I32, 2, SH(2, 2), idx)};
    CHECK(op_run(&f, IR_OP_EMBEDDING, rt_k_embedding, ins, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 2, 2, 2);
    EXPECT_F(out, 30, 31, 0, 1, 10, 11, 10, 11);

    const int64_t two = 2;
    ins[1] = TN(I64, 0, NULL, &two);
    CHECK(op_run(&f, IR_OP_EMBEDDING, rt_k_embedding, ins, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 2);
    EXPECT_F(out, 20, 21);

    ins[1] = TN(I64, 1, SH(0), NULL);
    CHECK(op_run(&f, IR_OP_EMBEDDING, rt_k_embedding, ins, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 0, 2);

    const int64_t bad[] = {0, 4}, neg[] = {-2};
    ins[1] = TN(I64, 1, SH(2), bad);
    CHECK(!op_run(&f, IR_OP_EMBEDDING, rt_k_embedding, ins, 2, NULL, 0, &out));
    EXPECT_ERROR(&f, "embedding: index 4 is out of range for dimension 0 of size 4");
    ins[1] = TN(I64, 1, SH(1), neg);
    CHECK(!op_run(&f, IR_OP_EMBEDDING, rt_k_embedding, ins, 2, NULL, 0, &out));
    EXPECT_ERROR(&f, "embedding: index -2 is out of range for dimension 0 of size 4");
    fx_done(&f);
}

TEST(gather) {
    fx f;
    fx_init(&f);
    const int64_t i1[] = {2, 0, 1, 1}, i0[] = {1, 0, 1};
    fusec_tensor out, ins[] = {TN(F32, 2, SH(2, 3), K1TO16), TN(I64, 2, SH(2, 2), i1)};
    ir_attr_init a1[] = {AI("axis", 1)};
    CHECK(op_run(&f, IR_OP_GATHER, rt_k_gather, ins, 2, a1, 1, &out));
    EXPECT_SHAPE(out, 2, 2);
    EXPECT_F(out, 3, 1, 5, 5);

    ins[1] = TN(I64, 2, SH(1, 3), i0);
    ir_attr_init a0[] = {AI("axis", -2)};
    CHECK(op_run(&f, IR_OP_GATHER, rt_k_gather, ins, 2, a0, 1, &out));
    EXPECT_SHAPE(out, 1, 3);
    EXPECT_F(out, 4, 2, 6);

    /* the index tensor may be longer than x along the axis */
    const int32_t i2[] = {1, 1, 1, 0};
    ins[1] = TN(I32, 2, SH(1, 4), i2);
    CHECK(op_run(&f, IR_OP_GATHER, rt_k_gather, ins, 2, a1, 1, &out));
    EXPECT_F(out, 2, 2, 2, 1);

    ins[1] = TN(I64, 2, SH(0, 3), NULL);
    CHECK(op_run(&f, IR_OP_GATHER, rt_k_gather, ins, 2, a1, 1, &out));
    EXPECT_SHAPE(out, 0, 3);

    const int64_t bad[] = {3};
    ins[1] = TN(I64, 2, SH(1, 1), bad);
    CHECK(!op_run(&f, IR_OP_GATHER, rt_k_gather, ins, 2, a1, 1, &out));
    EXPECT_ERROR(&f, "gather: index 3 is out of range for dimension 1 of size 3");
    fx_done(&f);
}

TEST(triu_tril) {
    fx f;
    fx_init(&f);
    fusec_tensor out, x = TN(F32, 2, SH(3, 4), K1TO16);
    ir_attr_init d0[] = {AI("diagonal", 0)}, d1[] = {AI("diagonal", 1)}, dm1[] = {AI("diagonal", -1)};
    CHECK(op_run(&f, IR_OP_TRIU, rt_k_tri, &x, 1, d0, 1, &out));
    EXPECT_F(out, 1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12);
    CHECK(op_run(&f, IR_OP_TRIU, rt_k_tri, &x, 1, d1, 1, &out));
    EXPECT_F(out, 0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12);
    CHECK(op_run(&f, IR_OP_TRIU, rt_k_tri, &x, 1, dm1, 1, &out));
    EXPECT_F(out, 1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 11, 12);
    CHECK(op_run(&f, IR_OP_TRIL, rt_k_tri, &x, 1, NULL, 0, &out));
    EXPECT_F(out, 1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0);
    CHECK(op_run(&f, IR_OP_TRIL, rt_k_tri, &x, 1, dm1, 1, &out));
    EXPECT_F(out, 0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0);

    /* extreme diagonals must not overflow */
    ir_attr_init big[] = {AI("diagonal", INT64_MAX)}, small[] = {AI("diagonal", INT64_MIN)};
    CHECK(op_run(&f, IR_OP_TRIL, rt_k_tri, &x, 1, big, 1, &out));
    EXPECT_F(out, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
    CHECK(op_run(&f, IR_OP_TRIU, rt_k_tri, &x, 1, big, 1, &out));
    EXPECT_F(out, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK(op_run(&f, IR_OP_TRIU, rt_k_tri, &x, 1, small, 1, &out));
    EXPECT_F(out, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);

    const int64_t xi[] = {1, 2, 3, 4, 5, 6, 7, 8};
    fusec_tensor bi = TN(I64, 3, SH(2, 2, 2), xi);
    CHECK(op_run(&f, IR_OP_TRIL, rt_k_tri, &bi, 1, NULL, 0, &out));
    EXPECT_I(out, 1, 0, 3, 4, 5, 0, 7, 8);

    const unsigned char xb[] = {1, 1, 1, 1};
    fusec_tensor b = TN(BOOL, 2, SH(2, 2), xb);
    CHECK(op_run(&f, IR_OP_TRIU, rt_k_tri, &b, 1, NULL, 0, &out));
    EXPECT_I(out, 1, 1, 0, 1);

    /* NaN is kept where kept and replaced by 0 elsewhere */
    const double xn[] = {NAN, NAN, NAN, NAN};
    fusec_tensor n = TN(F64, 2, SH(2, 2), xn);
    CHECK(op_run(&f, IR_OP_TRIU, rt_k_tri, &n, 1, NULL, 0, &out));
    EXPECT_F(out, NAN, NAN, 0, NAN);

    fusec_tensor e = TN(F32, 3, SH(2, 0, 3), NULL);
    CHECK(op_run(&f, IR_OP_TRIU, rt_k_tri, &e, 1, NULL, 0, &out));
    EXPECT_SHAPE(out, 2, 0, 3);
    fx_done(&f);
}

/* ---- contractions -------------------------------------------------------- */

TEST(matmul_shapes) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    const float a3[] = {1, 2, 3}, b3[] = {4, 5, 6};
    fusec_tensor dot[] = {TN(F32, 1, SH(3), a3), TN(F32, 1, SH(3), b3)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, dot, 2, NULL, 0, &out));
    CHECK_EQ_INT(out.rank, 0);
    EXPECT_F(out, 32);

    const float b32[] = {7, 8, 9, 10, 11, 12};
    fusec_tensor mm[] = {TN(F32, 2, SH(2, 3), K1TO16), TN(F32, 2, SH(3, 2), b32)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, mm, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 2, 2);
    EXPECT_F(out, 58, 64, 139, 154);

    /* 1-D on the left: prepended 1, removed */
    fusec_tensor vm[] = {TN(F32, 1, SH(2), K1TO16), TN(F32, 2, SH(2, 3), K1TO16)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, vm, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 3);
    EXPECT_F(out, 9, 12, 15);

    /* 1-D on the right: appended 1, removed */
    const float v[] = {1, 0, -1};
    fusec_tensor mv[] = {TN(F32, 2, SH(2, 3), K1TO16), TN(F32, 1, SH(3), v)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, mv, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 2);
    EXPECT_F(out, -2, -2);

    /* 1-D times a batch of matrices */
    const float ones[] = {1, 1};
    fusec_tensor vb[] = {TN(F32, 1, SH(2), ones), TN(F32, 3, SH(2, 2, 3), K1TO16)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, vb, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 2, 3);
    EXPECT_F(out, 5, 7, 9, 17, 19, 21);

    /* a batch of matrices times one matrix */
    const float eye2[] = {1, 0, 0, 1};
    fusec_tensor bm[] = {TN(F32, 3, SH(2, 1, 2), eye2), TN(F32, 2, SH(2, 2), K1TO16)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, bm, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 2, 1, 2);
    EXPECT_F(out, 1, 2, 3, 4);
    fx_done(&f);
}

TEST(matmul_broadcast_batches) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    /* [2, 1, 1, 2] x [3, 2, 1] -> [2, 3, 1, 1]: out[i][j] = a_i . b_j */
    const double a[] = {1, 2, 3, 4}, b[] = {1, 0, 0, 1, 1, 1};
    fusec_tensor ins[] = {TN(F64, 4, SH(2, 1, 1, 2), a), TN(F64, 3, SH(3, 2, 1), b)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, ins, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 2, 3, 1, 1);
    EXPECT_F(out, 1, 2, 3, 3, 4, 7);

    /* size-1 batch dims on both sides: [1, 2, 1, 2] x [3, 1, 2, 1] -> [3, 2, 1, 1] */
    ins[0] = TN(F64, 4, SH(1, 2, 1, 2), a);
    ins[1] = TN(F64, 4, SH(3, 1, 2, 1), b);
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, ins, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 3, 2, 1, 1);
    EXPECT_F(out, 1, 3, 2, 4, 3, 7);
    fx_done(&f);
}

TEST(matmul_empty_and_precision) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    /* K = 0: a sum of nothing is 0 */
    fusec_tensor k0[] = {TN(F32, 2, SH(2, 0), NULL), TN(F32, 2, SH(0, 3), NULL)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, k0, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 2, 3);
    EXPECT_F(out, 0, 0, 0, 0, 0, 0);
    fusec_tensor m0[] = {TN(F32, 2, SH(0, 3), NULL), TN(F32, 2, SH(3, 2), K1TO16)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, m0, 2, NULL, 0, &out));
    EXPECT_SHAPE(out, 0, 2);

    /* f32 accumulated in double: 1e8 + 1 - 1e8 is 1, not 0 */
    const float a[] = {1e8f, 1, -1e8f}, ones[] = {1, 1, 1};
    fusec_tensor p[] = {TN(F32, 1, SH(3), a), TN(F32, 1, SH(3), ones)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, p, 2, NULL, 0, &out));
    EXPECT_F(out, 1);

    /* f16: 1024 + 0.5 - 1024 would be 0 in f16 arithmetic */
    uint16_t h[] = {ir_f32_to_f16(1024), ir_f32_to_f16(0.5f), ir_f32_to_f16(-1024)};
    uint16_t h1[] = {ir_f32_to_f16(1), ir_f32_to_f16(1), ir_f32_to_f16(1)};
    fusec_tensor ph[] = {TN(F16, 1, SH(3), h), TN(F16, 1, SH(3), h1)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, ph, 2, NULL, 0, &out));
    EXPECT_F(out, 0.5);

    /* bf16: 1 + 2^-8 is a tie between 1 and 1 + 2^-7; it rounds to even */
    uint16_t bb[] = {ir_f32_to_bf16(1), ir_f32_to_bf16(0.00390625f)};
    uint16_t b1[] = {ir_f32_to_bf16(1), ir_f32_to_bf16(1)};
    fusec_tensor pb[] = {TN(BF16, 1, SH(2), bb), TN(BF16, 1, SH(2), b1)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, pb, 2, NULL, 0, &out));
    EXPECT_F(out, 1);

    /* NaN and inf follow IEEE: 0 * inf is NaN */
    const double an[] = {0, 1}, bn[] = {INFINITY, 1, 2, 3};
    fusec_tensor pn[] = {TN(F64, 1, SH(2), an), TN(F64, 2, SH(2, 2), bn)};
    CHECK(op_run(&f, IR_OP_MATMUL, rt_k_matmul, pn, 2, NULL, 0, &out));
    EXPECT_F(out, NAN, 3);
    fx_done(&f);
}

TEST(linear) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    const float w[] = {1, 0, 0, 1, 1, 1}, b[] = {10, 20};
    fusec_tensor ins[] = {TN(F32, 2, SH(2, 3), K1TO16), TN(F32, 2, SH(2, 3), w), TN(F32, 1, SH(2), b)};
    CHECK(op_run(&f, IR_OP_LINEAR, rt_k_linear, ins, 3, NULL, 0, &out));
    EXPECT_SHAPE(out, 2, 2);
    EXPECT_F(out, 11, 26, 14, 35);
    CHECK(op_run(&f, IR_OP_LINEAR, rt_k_linear, ins, 2, NULL, 0, &out));
    EXPECT_F(out, 1, 6, 4, 15);

    ins[0] = TN(F32, 1, SH(3), K1TO16);
    CHECK(op_run(&f, IR_OP_LINEAR, rt_k_linear, ins, 3, NULL, 0, &out));
    EXPECT_SHAPE(out, 2);
    EXPECT_F(out, 11, 26);

    ins[0] = TN(F32, 3, SH(2, 1, 3), K1TO16);
    CHECK(op_run(&f, IR_OP_LINEAR, rt_k_linear, ins, 3, NULL, 0, &out));
    EXPECT_SHAPE(out, 2, 1, 2);
    EXPECT_F(out, 11, 26, 14, 35);

    /* no input features: only the bias is left */
    const float b3[] = {1, 2, 3};
    fusec_tensor z[] = {TN(F32, 2, SH(2, 0), NULL), TN(F32, 2, SH(3, 0), NULL), TN(F32, 1, SH(3), b3)};
    CHECK(op_run(&f, IR_OP_LINEAR, rt_k_linear, z, 3, NULL, 0, &out));
    EXPECT_F(out, 1, 2, 3, 1, 2, 3);
    fx_done(&f);
}

TEST(conv2d_basic_padding_stride_dilation) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    const float w[] = {1, 0, 0, 1}, b[] = {1};
    fusec_tensor ins[] = {TN(F32, 4, SH(1, 1, 3, 3), K1TO16), TN(F32, 4, SH(1, 1, 2, 2), w), TN(F32, 1, SH(1), b)};
    CHECK(op_run(&f, IR_OP_CONV2D, rt_k_conv2d, ins, 3, NULL, 0, &out));
    EXPECT_SHAPE(out, 1, 1, 2, 2);
    EXPECT_F(out, 7, 9, 13, 15);

    const float ones[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    ins[1] = TN(F32, 4, SH(1, 1, 3, 3), ones);
    ir_attr_init ps[] = {AINTS("padding", 1, 1), AINTS("stride", 2, 2)};
    CHECK(op_run(&f, IR_OP_CONV2D, rt_k_conv2d, ins, 2, ps, 2, &out));
    EXPECT_SHAPE(out, 1, 1, 2, 2);
    EXPECT_F(out, 12, 16, 24, 28);

    ins[1] = TN(F32, 4, SH(1, 1, 2, 2), ones);
    ir_attr_init dl[] = {AINTS("dilation", 2, 2)};
    CHECK(op_run(&f, IR_OP_CONV2D, rt_k_conv2d, ins, 2, dl, 1, &out));
    EXPECT_SHAPE(out, 1, 1, 1, 1);
    EXPECT_F(out, 20);

    /* batch 2, two output channels, a 1x2 kernel, stride [1, 2] */
    const float w2[] = {1, 1, 1, -1};
    fusec_tensor in2[] = {TN(F32, 4, SH(2, 1, 2, 3), K1TO16), TN(F32, 4, SH(2, 1, 1, 2), w2)};
    ir_attr_init st[] = {AINTS("stride", 1, 2)};
    CHECK(op_run(&f, IR_OP_CONV2D, rt_k_conv2d, in2, 2, st, 1, &out));
    EXPECT_SHAPE(out, 2, 2, 2, 1);
    EXPECT_F(out, 3, 9, -1, -1, 15, 21, -1, -1);

    /* f64 with padding and dilation together: 3x3 taps two apart on a 3x3 input, padded by 2 */
    const double x9[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w9[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    fusec_tensor in3[] = {TN(F64, 4, SH(1, 1, 3, 3), x9), TN(F64, 4, SH(1, 1, 3, 3), w9)};
    ir_attr_init pdl[] = {AINTS("padding", 2, 2), AINTS("dilation", 2, 2)};
    CHECK(op_run(&f, IR_OP_CONV2D, rt_k_conv2d, in3, 2, pdl, 2, &out));
    EXPECT_SHAPE(out, 1, 1, 3, 3);
    /* out[i][j] sums x at rows {i-2, i, i+2} and cols {j-2, j, j+2} inside the input */
    EXPECT_F(out, 1 + 3 + 7 + 9, 2 + 8, 1 + 3 + 7 + 9, 4 + 6, 5, 4 + 6, 1 + 3 + 7 + 9, 2 + 8, 1 + 3 + 7 + 9);
    fx_done(&f);
}

TEST(conv2d_groups) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    /* depthwise-style: two groups of one input channel, two outputs each */
    const float x[] = {2, 3}, w[] = {1, 2, 3, 4};
    fusec_tensor ins[] = {TN(F32, 4, SH(1, 2, 1, 1), x), TN(F32, 4, SH(4, 1, 1, 1), w)};
    ir_attr_init g2[] = {AI("groups", 2)};
    CHECK(op_run(&f, IR_OP_CONV2D, rt_k_conv2d, ins, 2, g2, 1, &out));
    EXPECT_SHAPE(out, 1, 4, 1, 1);
    EXPECT_F(out, 2, 4, 9, 12);

    /* two groups of two input channels: no channel crosses its group */
    const float w2[] = {1, 10, 100, 1000};
    fusec_tensor in2[] = {TN(F32, 4, SH(1, 4, 1, 1), K1TO16), TN(F32, 4, SH(2, 2, 1, 1), w2)};
    CHECK(op_run(&f, IR_OP_CONV2D, rt_k_conv2d, in2, 2, g2, 1, &out));
    EXPECT_F(out, 21, 4300);

    fusec_tensor e[] = {TN(F32, 4, SH(0, 4, 1, 1), NULL), TN(F32, 4, SH(2, 2, 1, 1), w2)};
    CHECK(op_run(&f, IR_OP_CONV2D, rt_k_conv2d, e, 2, g2, 1, &out));
    EXPECT_SHAPE(out, 0, 2, 1, 1);
    fx_done(&f);
}

/* ---- windows ------------------------------------------------------------ */

TEST(max_pool2d) {
    fx f;
    fx_init(&f);
    fusec_tensor out, x = TN(F32, 4, SH(1, 1, 4, 4), K1TO16);
    ir_attr_init k2[] = {AINTS("kernel", 2, 2)};
    CHECK(op_run(&f, IR_OP_MAX_POOL2D, rt_k_pool2d, &x, 1, k2, 1, &out));
    EXPECT_SHAPE(out, 1, 1, 2, 2);
    EXPECT_F(out, 6, 8, 14, 16);

    /* padding acts as -inf: all-negative input */
    const float neg[] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
    fusec_tensor xn = TN(F32, 4, SH(1, 1, 3, 3), neg);
    ir_attr_init kp[] = {AINTS("kernel", 2, 2), AINTS("stride", 2, 2), AINTS("padding", 1, 1)};
    CHECK(op_run(&f, IR_OP_MAX_POOL2D, rt_k_pool2d, &xn, 1, kp, 3, &out));
    EXPECT_SHAPE(out, 1, 1, 2, 2);
    EXPECT_F(out, -1, -2, -4, -5);

    /* an explicit stride other than the kernel */
    fusec_tensor x3 = TN(F32, 4, SH(1, 1, 3, 3), K1TO16);
    ir_attr_init ks[] = {AINTS("kernel", 2, 2), AINTS("stride", 1, 1)};
    CHECK(op_run(&f, IR_OP_MAX_POOL2D, rt_k_pool2d, &x3, 1, ks, 2, &out));
    EXPECT_F(out, 5, 6, 8, 9);

    /* NaN wins wherever it is in the window */
    const double n1[] = {1, NAN, 3, 4, NAN, 1, 3, 4};
    fusec_tensor xnan = TN(F64, 4, SH(2, 1, 2, 2), n1);
    CHECK(op_run(&f, IR_OP_MAX_POOL2D, rt_k_pool2d, &xnan, 1, k2, 1, &out));
    EXPECT_F(out, NAN, NAN);

    /* CHW input */
    const float c[] = {1, 2, 3, 4, 8, 7, 6, 5};
    fusec_tensor xc = TN(F32, 3, SH(2, 2, 2), c);
    CHECK(op_run(&f, IR_OP_MAX_POOL2D, rt_k_pool2d, &xc, 1, k2, 1, &out));
    EXPECT_SHAPE(out, 2, 1, 1);
    EXPECT_F(out, 4, 8);

    fusec_tensor e = TN(F32, 4, SH(0, 3, 4, 4), NULL);
    CHECK(op_run(&f, IR_OP_MAX_POOL2D, rt_k_pool2d, &e, 1, k2, 1, &out));
    EXPECT_SHAPE(out, 0, 3, 2, 2);
    fx_done(&f);
}

TEST(avg_pool2d) {
    fx f;
    fx_init(&f);
    fusec_tensor out, x = TN(F32, 4, SH(1, 1, 4, 4), K1TO16);
    ir_attr_init k2[] = {AINTS("kernel", 2, 2)};
    CHECK(op_run(&f, IR_OP_AVG_POOL2D, rt_k_pool2d, &x, 1, k2, 1, &out));
    EXPECT_F(out, 3.5, 5.5, 11.5, 13.5);

    /* count_include_pad: every 3x3 window over a 2x2 input padded by 1 divides by 9 */
    fusec_tensor x2 = TN(F32, 4, SH(1, 1, 2, 2), K1TO16);
    ir_attr_init k3[] = {AINTS("kernel", 3, 3), AINTS("stride", 1, 1), AINTS("padding", 1, 1)};
    CHECK(op_run(&f, IR_OP_AVG_POOL2D, rt_k_pool2d, &x2, 1, k3, 3, &out));
    EXPECT_NEAR(out, 1e-7, 10.0 / 9, 10.0 / 9, 10.0 / 9, 10.0 / 9);

    /* torch: avg_pool2d(arange(1, 10).view(1, 1, 3, 3), 2, 2, 1) */
    fusec_tensor x3 = TN(F64, 4, SH(1, 1, 3, 3), (const double[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
    ir_attr_init kp[] = {AINTS("kernel", 2, 2), AINTS("stride", 2, 2), AINTS("padding", 1, 1)};
    CHECK(op_run(&f, IR_OP_AVG_POOL2D, rt_k_pool2d, &x3, 1, kp, 3, &out));
    EXPECT_F(out, 0.25, 1.25, 2.75, 7);

    /* bf16 (8 significant bits): the means 1 + 2^-8 (a tie: to even, 1) and
     * 1 + 3 * 2^-9 (nearer 1 + 2^-7) are rounded once, on the store */
    const uint16_t one = ir_f32_to_bf16(1), up = ir_f32_to_bf16(1.0078125f);
    uint16_t h[] = {one, one, up, up, one, up, up, up};
    fusec_tensor xb = TN(BF16, 3, SH(2, 2, 2), h);
    CHECK(op_run(&f, IR_OP_AVG_POOL2D, rt_k_pool2d, &xb, 1, k2, 1, &out));
    EXPECT_F(out, 1, 1.0078125);
    fx_done(&f);
}

TEST(adaptive_avg_pool2d) {
    fx f;
    fx_init(&f);
    fusec_tensor out, x = TN(F32, 4, SH(1, 1, 1, 5), K1TO16);
    ir_attr_init o13[] = {AINTS("output_size", 1, 3)};
    CHECK(op_run(&f, IR_OP_ADAPTIVE_AVG_POOL2D, rt_k_adaptive_avg_pool2d, &x, 1, o13, 1, &out));
    EXPECT_SHAPE(out, 1, 1, 1, 3);
    EXPECT_F(out, 1.5, 3, 4.5);

    /* upsampling 2x2 -> 3x3: windows {0}, {0, 1}, {1} per dim, overlapping */
    fusec_tensor x2 = TN(F32, 4, SH(1, 1, 2, 2), K1TO16);
    ir_attr_init o33[] = {AINTS("output_size", 3, 3)};
    CHECK(op_run(&f, IR_OP_ADAPTIVE_AVG_POOL2D, rt_k_adaptive_avg_pool2d, &x2, 1, o33, 1, &out));
    EXPECT_F(out, 1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4);

    fusec_tensor x3 = TN(F32, 3, SH(1, 2, 2), K1TO16);
    ir_attr_init o11[] = {AINTS("output_size", 1, 1)};
    CHECK(op_run(&f, IR_OP_ADAPTIVE_AVG_POOL2D, rt_k_adaptive_avg_pool2d, &x3, 1, o11, 1, &out));
    EXPECT_SHAPE(out, 1, 1, 1);
    EXPECT_F(out, 2.5);

    fusec_tensor e = TN(F32, 4, SH(2, 0, 2, 2), NULL);
    CHECK(op_run(&f, IR_OP_ADAPTIVE_AVG_POOL2D, rt_k_adaptive_avg_pool2d, &e, 1, o33, 1, &out));
    EXPECT_SHAPE(out, 2, 0, 3, 3);
    fx_done(&f);
}

/* ---- attention -------------------------------------------------------------- */

TEST(sdpa_scale) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    const double e = exp(1.0);
    /* scores [1, 0] -> weights [e, 1] / (e + 1) */
    const double q[] = {1, 0}, k[] = {1, 0, 0, 1}, v[] = {10, 20};
    fusec_tensor ins[] = {TN(F64, 2, SH(1, 2), q), TN(F64, 2, SH(2, 2), k), TN(F64, 2, SH(2, 1), v)};
    ir_attr_init s1[] = {AF("scale", 1)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, ins, 3, s1, 1, &out));
    EXPECT_SHAPE(out, 1, 1);
    EXPECT_NEAR(out, 1e-14, (10 * e + 20) / (e + 1));

    /* default scale 1/sqrt(4) turns the dot products [2, 0] into [1, 0] */
    const double q4[] = {2, 0, 0, 0}, k4[] = {1, 0, 0, 0, 0, 0, 0, 0};
    fusec_tensor in4[] = {TN(F64, 2, SH(1, 4), q4), TN(F64, 2, SH(2, 4), k4), TN(F64, 2, SH(2, 1), v)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, in4, 3, NULL, 0, &out));
    EXPECT_NEAR(out, 1e-14, (10 * e + 20) / (e + 1));

    /* f32 result; Ev = 2 */
    const float qf[] = {0, 0}, kf[] = {1, 2, 3, 4}, vf[] = {1, 2, 3, 4};
    fusec_tensor inf[] = {TN(F32, 2, SH(1, 2), qf), TN(F32, 2, SH(2, 2), kf), TN(F32, 2, SH(2, 2), vf)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, inf, 3, NULL, 0, &out));
    CHECK(out.dtype == F32);
    EXPECT_F(out, 2, 3);
    fx_done(&f);
}

TEST(sdpa_causal) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    const double e = exp(1.0);
    const double q[] = {1, 0, 1, 0}, k[] = {1, 0, 0, 1}, v[] = {10, 20};
    fusec_tensor ins[] = {TN(F64, 2, SH(2, 2), q), TN(F64, 2, SH(2, 2), k), TN(F64, 2, SH(2, 1), v)};
    ir_attr_init c[] = {AB("is_causal", true), AF("scale", 1)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, ins, 3, c, 2, &out));
    EXPECT_NEAR(out, 1e-14, 10, (10 * e + 20) / (e + 1));

    /* L = 2, S = 3: top-left aligned, query i sees keys 0..i */
    const double z[] = {0, 0, 0}, v3[] = {3, 6, 9};
    fusec_tensor in3[] = {TN(F64, 2, SH(2, 1), z), TN(F64, 2, SH(3, 1), z), TN(F64, 2, SH(3, 1), v3)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, in3, 3, c, 1, &out));
    EXPECT_SHAPE(out, 2, 1);
    EXPECT_NEAR(out, 1e-14, 3, 4.5);
    fx_done(&f);
}

TEST(sdpa_masks) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    const double z[] = {0, 0}, v[] = {10, 20};
    /* bool mask: row 0 has every key masked -> zeros (PyTorch >= 2.5) */
    const unsigned char mb[] = {0, 0, 1, 0};
    fusec_tensor ins[] = {TN(F64, 2, SH(2, 1), z), TN(F64, 2, SH(2, 1), z), TN(F64, 2, SH(2, 1), v),
                          TN(BOOL, 2, SH(2, 2), mb)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, ins, 4, NULL, 0, &out));
    EXPECT_F(out, 0, 10);

    /* float mask is added; a row of -inf gives zeros too */
    const double mf[] = {0, log(3.0), -INFINITY, -INFINITY};
    ins[3] = TN(F64, 2, SH(2, 2), mf);
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, ins, 4, NULL, 0, &out));
    EXPECT_NEAR(out, 1e-14, 17.5, 0);

    /* causal and a mask together: row 0 loses key 1 to the rule and key 0 to the mask */
    const unsigned char mk[] = {0, 1, 1, 1};
    ins[3] = TN(BOOL, 2, SH(2, 2), mk);
    ir_attr_init c[] = {AB("is_causal", true)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, ins, 4, c, 1, &out));
    EXPECT_F(out, 0, 15);

    /* a rank-1 mask broadcasts over queries */
    const unsigned char m1[] = {1, 0};
    ins[3] = TN(BOOL, 1, SH(2), m1);
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, ins, 4, NULL, 0, &out));
    EXPECT_F(out, 10, 10);

    /* masking adds -inf as torch does: a NaN score stays NaN */
    const double kn[] = {0, NAN};
    ins[1] = TN(F64, 2, SH(2, 1), kn);
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, ins, 4, NULL, 0, &out));
    EXPECT_F(out, NAN, NAN);
    fx_done(&f);
}

TEST(sdpa_batch_broadcast) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    const double e = exp(1.0);
    const double lo = (10 * e + 20 / e) / (e + 1 / e), hi = (10 / e + 20 * e) / (e + 1 / e);
    /* q batched [2, 1, 1], k and v shared [2, 1] */
    const double q[] = {1, -1}, k[] = {1, -1}, v[] = {10, 20};
    fusec_tensor ins[] = {TN(F64, 3, SH(2, 1, 1), q), TN(F64, 2, SH(2, 1), k), TN(F64, 2, SH(2, 1), v)};
    ir_attr_init s1[] = {AF("scale", 1)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, ins, 3, s1, 1, &out));
    EXPECT_SHAPE(out, 2, 1, 1);
    EXPECT_NEAR(out, 1e-14, lo, hi);

    /* k batched [2, 2, 1] against one query [1, 1, 1] */
    const double kb[] = {1, -1, 0, 0};
    fusec_tensor in2[] = {TN(F64, 3, SH(1, 1, 1), q), TN(F64, 3, SH(2, 2, 1), kb), TN(F64, 2, SH(2, 1), v)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, in2, 3, s1, 1, &out));
    EXPECT_SHAPE(out, 2, 1, 1);
    EXPECT_NEAR(out, 1e-14, lo, 15);

    /* batch dims [2, 1] x [1, 3] -> [2, 3]; a per-batch mask [2, 1, 1, 2] */
    const double qq[] = {1, -1}, kk[] = {0, 0, 0, 0, 1, -1}, vv[] = {10, 20};
    const unsigned char mm[] = {1, 1, 0, 1};
    fusec_tensor in3[] = {TN(F64, 4, SH(2, 1, 1, 1), qq), TN(F64, 4, SH(1, 3, 2, 1), kk),
                          TN(F64, 2, SH(2, 1), vv), TN(BOOL, 4, SH(2, 1, 1, 2), mm)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, in3, 4, s1, 1, &out));
    EXPECT_SHAPE(out, 2, 3, 1, 1);
    /* batch 0 (q = 1, all keys): 15, 15, lo; batch 1 (key 0 masked): 20 everywhere */
    EXPECT_NEAR(out, 1e-14, 15, 15, lo, 20, 20, 20);
    fx_done(&f);
}

TEST(sdpa_empty_and_half) {
    fx f;
    fx_init(&f);
    fusec_tensor out;
    /* no keys: every row is empty, the output is zero */
    const float q[] = {1, 2, 3, 4};
    fusec_tensor ins[] = {TN(F32, 2, SH(2, 2), q), TN(F32, 2, SH(0, 2), NULL), TN(F32, 2, SH(0, 3), NULL)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, ins, 3, NULL, 0, &out));
    EXPECT_SHAPE(out, 2, 3);
    EXPECT_F(out, 0, 0, 0, 0, 0, 0);

    /* no queries */
    fusec_tensor in0[] = {TN(F32, 3, SH(2, 0, 2), NULL), TN(F32, 2, SH(3, 2), K1TO16), TN(F32, 2, SH(3, 1), q)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, in0, 3, NULL, 0, &out));
    EXPECT_SHAPE(out, 2, 0, 1);

    /* f16 in, f16 out, one rounding: equal weights over the values 1 and
     * 1 + 2^-10 give 1 + 2^-11, a tie in f16 that rounds to even (1), and
     * over 1 + 2^-10 and 1 + 2^-9 give 1 + 3 * 2^-11, a tie that rounds up */
    uint16_t hq[] = {ir_f32_to_f16(0)}, hk[] = {ir_f32_to_f16(0), ir_f32_to_f16(0)};
    uint16_t hv[] = {ir_f32_to_f16(1), ir_f32_to_f16(1.0f + 1.0f / 1024), ir_f32_to_f16(1.0f + 1.0f / 512)};
    fusec_tensor inh[] = {TN(F16, 2, SH(1, 1), hq), TN(F16, 2, SH(2, 1), hk), TN(F16, 2, SH(2, 1), hv)};
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, inh, 3, NULL, 0, &out));
    CHECK(out.dtype == F16);
    EXPECT_F(out, 1);
    inh[2] = TN(F16, 2, SH(2, 1), hv + 1);
    CHECK(op_run(&f, IR_OP_SDPA, rt_k_sdpa, inh, 3, NULL, 0, &out));
    EXPECT_F(out, 1.0 + 1.0 / 512);
    fx_done(&f);
}

/* ---- through the interpreter ------------------------------------------------ */

TEST(interp_runtime_index_error) {
    fx f;
    fx_init(&f);
    ir_type tx = {.dtype = F32, .rank = 1, .dim = {5}}, ti = {.dtype = I64, .rank = 1, .dim = {2}};
    ir_value *ps[] = {ir_graph_add_param(f.g, "x", &tx, (ir_loc){0, 0}),
                      ir_graph_add_param(f.g, "i", &ti, (ir_loc){0, 0})};
    ir_attr_init a0[] = {AI("axis", 0)};
    ir_value *v = ir_build(f.g, IR_OP_INDEX_SELECT, ps, 2, a0, 1, NULL, (ir_loc){3, 7}, &f.d);
    CHECK(v != NULL);
    if (!v) {
        fx_done(&f);
        return;
    }
    CHECK(ir_graph_add_result(f.g, v));
    const int64_t idx[] = {1, 7};
    fusec_tensor ins[] = {TN(F32, 1, SH(5), K1TO16), TN(I64, 1, SH(2), idx)}, out = {0};
    CHECK_EQ_INT(rt_interp_run(f.g, ins, 2, &out, 1, &f.d), FUSEC_ERR_RUNTIME);
    EXPECT_ERROR(&f, "index_select: index 7 is out of range for dimension 0 of size 5");
    CHECK(out.data == NULL);

    const int64_t ok[] = {4, 0};
    ins[1] = TN(I64, 1, SH(2), ok);
    CHECK_EQ_INT(rt_interp_run(f.g, ins, 2, &out, 1, &f.d), FUSEC_OK);
    EXPECT_F(out, 5, 1);
    free(out.data);
    fx_done(&f);
}

/* reshape -> transpose -> matmul -> pad, run as one graph */
TEST(interp_chain) {
    fx f;
    fx_init(&f);
    ir_type tx = {.dtype = F32, .rank = 1, .dim = {6}};
    ir_value *x = ir_graph_add_param(f.g, "x", &tx, (ir_loc){0, 0});
    ir_attr_init rs[] = {AINTS("shape", 2, 3)}, tr[] = {AI("dim0", 0), AI("dim1", -1)};
    ir_attr_init pd[] = {AINTS("pads", 0, 1), AF("value", -1)};
    ir_value *r = ir_build(f.g, IR_OP_RESHAPE, &x, 1, rs, 1, NULL, (ir_loc){0, 0}, &f.d);
    ir_value *t = r ? ir_build(f.g, IR_OP_TRANSPOSE, &r, 1, tr, 2, NULL, (ir_loc){0, 0}, &f.d) : NULL;
    ir_value *mm[] = {r, t};
    ir_value *m = t ? ir_build(f.g, IR_OP_MATMUL, mm, 2, NULL, 0, NULL, (ir_loc){0, 0}, &f.d) : NULL;
    ir_value *p = m ? ir_build(f.g, IR_OP_PAD, &m, 1, pd, 2, NULL, (ir_loc){0, 0}, &f.d) : NULL;
    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "%s", fx_msg(&f));
        fx_done(&f);
        return;
    }
    CHECK(ir_graph_add_result(f.g, p));
    fusec_tensor in = TN(F32, 1, SH(6), K1TO16), out = {0};
    CHECK_EQ_INT(rt_interp_run(f.g, &in, 1, &out, 1, &f.d), FUSEC_OK);
    /* [[1,2,3],[4,5,6]] @ its transpose = [[14, 32], [32, 77]], one column of -1 appended */
    EXPECT_SHAPE(out, 2, 3);
    EXPECT_F(out, 14, 32, -1, 32, 77, -1);
    free(out.data);
    fx_done(&f);
}

TEST_MAIN(copy_reshape_squeeze_unsqueeze, permute_negative_dims, transpose_dtypes_and_empty, expand,
          slice_python_clamping, concat, pad_and_crop, index_select, index_select_errors, embedding,
          gather, triu_tril, matmul_shapes, matmul_broadcast_batches, matmul_empty_and_precision,
          linear, conv2d_basic_padding_stride_dilation, conv2d_groups, max_pool2d, avg_pool2d,
          adaptive_avg_pool2d, sdpa_scale, sdpa_causal, sdpa_masks, sdpa_batch_broadcast,
          sdpa_empty_and_half, interp_runtime_index_error, interp_chain)
