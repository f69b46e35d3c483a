/*
 * test_decompose.c - the decompose and fold_bn passes checked against the
 * reference interpreter.
 *
 * Every case is a small graph written as IR text.  The text is parsed
 * twice: one copy runs through the interpreter as it is (the composite's
 * own kernel is the reference), the other through the passes under test
 * (with the verifier after each pass) and then through the interpreter.
 * The two outputs must agree within the design's tolerances - f64 1e-10,
 * f32 1e-5 for elementwise composites and 1e-4 for those that reduce,
 * f16 1e-2, bf16 2e-2 - with NaN and inf at the same places.  Errors are
 * measured against a magnitude scale: for elementwise composites |ref| +
 * |x| (gelu's formula cancels x against x * erf(..)), for the others |ref|
 * + max |ref| over the output (a softmax or a norm combines a whole row,
 * whose rounding errors are bounded by the row's magnitude, not by a
 * single output's).  Selections (clamp, masked_fill) must be bit-exact,
 * signed zeros included.  The worst error seen, as a fraction of what is
 * allowed, is printed per dtype at the end.
 *
 * Inputs are seeded random data with a fill mode per parameter (see
 * fill()): plain, scattered NaN/+-inf, special rows (a row of all -inf, a
 * NaN, a +inf), halves (values that hit clamp bounds exactly, -0.0),
 * positive (variances) and offset data (large mean, small spread).
 */
#include <math.h>

#include "frontend/parse.h"
#include "ir/ir.h"
#include "passes/pass.h"
#include "runtime/interp.h"
#include "test.h"

/* ---- inputs -------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static double urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* Fill t by mode:
 *   '.' uniform [-3, 3)              's' the same with 1 in 8 NaN, inf or -inf
 *   'r' rows (last dim): row 0 all -inf, row 1 starts with NaN, row 2 with
 *       +inf, row 3 has a -inf second; bool: row 0 all false
 *   'h' halves in [-4, 4] and -0.0   'H' halves with NaN/inf scattered
 *   'p' positive [0.1, 2.1)          'b' 100 + [-1, 1): large mean
 *   'w' wide [-12, 12)               'f' bool all false
 * bool tensors are otherwise 3/4 true; integers are in [-6, 6] (u8 [0, 12]). */
static void fill(fusec_tensor *t, char mode) {
    int64_t n = fusec_tensor_numel(t), last = t->rank ? t->shape[t->rank - 1] : 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t row = last ? i / last : 0, col = last ? i % last : 0;
        if (t->dtype == FUSEC_DTYPE_BOOL) {
            bool v = mode == 'f' ? false : mode == 'r' && row == 0 ? false : urand() < 0.75;
            ir_store_i(t->dtype, t->data, i, v);
            continue;
        }
        if (!ir_dtype_is_float(t->dtype)) {
            int64_t v = (int64_t)floor(urand() * 13) - (t->dtype == FUSEC_DTYPE_U8 ? 0 : 6);
            ir_store_i(t->dtype, t->data, i, v);
            continue;
        }
        double v;
        switch (mode) {
        case 'h':
        case 'H':
            v = (floor(urand() * 17) - 8) * 0.5;
            if (v == 0 && urand() < 0.5) v = -0.0;
            break;
        case 'p': v = 0.1 + 2 * urand(); break;
        case 'b': v = 100 + 2 * urand() - 1; break;
        case 'w': v = 24 * urand() - 12; break;
        default: v = 6 * urand() - 3; break;
        }
        if ((mode == 's' || mode == 'H') && urand() < 0.125) {
            double sp[3] = {NAN, INFINITY, -INFINITY};
            v = sp[(int)(urand() * 3)];
        }
        if (mode == 'r') {
            if (row == 0) v = -INFINITY;
            else if (row == 1 && col == 0) v = NAN;
            else if (row == 2 && col == 0) v = INFINITY;
            else if (row == 3 && col == 1) v = -INFINITY;
        }
        ir_store_f(t->dtype, t->data, i, v);
    }
}

/* ---- comparison ------------------------------------------------------------ */

/* worst error / allowed error seen, per dtype */
static double worst[FUSEC_DTYPE_COUNT];
static int ncases;

static double tolerance(ir_dtype dt, char kind) {
    switch (dt) {
    case FUSEC_DTYPE_F64: return 1e-10;
    case FUSEC_DTYPE_F32: return kind == 'e' ? 1e-5 : 1e-4;
    case FUSEC_DTYPE_F16: return 1e-2;
    case FUSEC_DTYPE_BF16: return 2e-2;
    default: return 0;
    }
}

/* kind: 'x' exact, 'e' elementwise (scale |ref| + |x|), 'r' reducing (scale
 * |ref| + max |ref|).  x0 is the first input, used by 'e'. */
static bool agree(const fusec_tensor *ref, const fusec_tensor *got, char kind, const fusec_tensor *x0,
                  const char *src) {
    if (ref->dtype != got->dtype || ref->rank != got->rank) {
        fprintf(stderr, "result type differs\n%s", src);
        return false;
    }
    int64_t n = fusec_tensor_numel(ref);
    bool is_float = ir_dtype_is_float(ref->dtype);
    double tol = tolerance(ref->dtype, kind), rowmax = 0;
    for (int64_t i = 0; is_float && i < n; i++) {
        double r = fabs(ir_load_f(ref->dtype, ref->data, i));
        if (isfinite(r) && r > rowmax) rowmax = r;
    }
    bool x_matches = x0 && fusec_tensor_numel(x0) == n && ir_dtype_is_float(x0->dtype);
    for (int64_t i = 0; i < n; i++) {
        if (!is_float) {
            int64_t a = ir_load_i(ref->dtype, ref->data, i), b = ir_load_i(got->dtype, got->data, i);
            if (a != b) {
                fprintf(stderr, "element %lld: interpreter %lld, decomposed %lld\n%s", (long long)i,
                        (long long)a, (long long)b, src);
                return false;
            }
            continue;
        }
        double a = ir_load_f(ref->dtype, ref->data, i), b = ir_load_f(got->dtype, got->data, i);
        bool ok;
        double ratio = 0;
        if (isnan(a) || isnan(b)) ok = isnan(a) && isnan(b);
        else if (isinf(a) || isinf(b) || kind == 'x') ok = a == b && (kind != 'x' || signbit(a) == signbit(b));
        else {
            double scale = fabs(a) + (kind == 'e' ? (x_matches ? fabs(ir_load_f(x0->dtype, x0->data, i)) : 0) : rowmax);
            double allowed = tol * (scale > 1e-300 ? scale : 1e-300);
            ratio = fabs(a - b) / allowed;
            ok = ratio <= 1;
        }
        if (ratio > worst[ref->dtype]) worst[ref->dtype] = ratio;
        if (!ok) {
            fprintf(stderr, "element %lld: interpreter %.17g, decomposed %.17g (%s)\n%s", (long long)i, a, b,
                    ir_dtype_name(ref->dtype), src);
            return false;
        }
    }
    return true;
}

/* ---- running a case -------------------------------------------------------- */

static ir_graph *parse(const char *src, ir_diag *d) {
    ir_diag_init(d, "case.ir", src, strlen(src));
    ir_graph *g = fe_parse(src, strlen(src), "case.ir", NULL, d);
    if (!g) fprintf(stderr, "parse failed:\n%s\n%s", d->out.buf ? d->out.buf : "", src);
    return g;
}

static int count_op(const ir_graph *g, ir_op op) {
    int k = 0;
    for (const ir_node *n = g->first; n; n = n->next) k += n->op == op;
    return k;
}

/* Run src unchanged and after `passes`; compare.  `gone` (or IR_OP_COUNT)
 * must not remain after the passes.  Returns false (and reports) on any
 * difference. */
static bool check_passes(const char *passes, const char *src, const char *modes, char kind, ir_op gone) {
    ir_diag d0, d1;
    ir_graph *g0 = parse(src, &d0), *g1 = parse(src, &d1);
    fusec_tensor in[8] = {{0}}, out0[8] = {{0}}, out1[8] = {{0}};
    bool ok = g0 && g1 && g0->nparams <= 8 && g0->nresults <= 8;
    int np = ok ? g0->nparams : 0, nr = ok ? g0->nresults : 0;
    for (int i = 0; ok && i < np; i++) {
        const ir_type *t = &g0->params[i]->type;
        in[i].dtype = t->dtype;
        in[i].rank = t->rank;
        memcpy(in[i].shape, t->dim, sizeof(int64_t) * (size_t)t->rank);
        in[i].data = calloc((size_t)(ir_type_numel(t) + 1), ir_dtype_size(t->dtype));
        fill(&in[i], modes && (size_t)i < strlen(modes) ? modes[i] : '.');
    }
    if (ok && rt_interp_run(g0, in, np, out0, nr, &d0) != FUSEC_OK) {
        fprintf(stderr, "interpreter failed on the original:\n%s\n%s", d0.out.buf ? d0.out.buf : "", src);
        ok = false;
    }
    pass_ctx ctx = {.diag = &d1, .verify_each = true};
    if (ok && !pass_run_pipeline(g1, passes, &ctx)) {
        fprintf(stderr, "passes %s failed:\n%s\n%s", passes, d1.out.buf ? d1.out.buf : "", src);
        ok = false;
    }
    if (ok && gone != IR_OP_COUNT && count_op(g1, gone)) {
        fprintf(stderr, "%s is still there after %s:\n%s", ir_op_get(gone)->name, passes, src);
        ok = false;
    }
    if (ok && rt_interp_run(g1, in, np, out1, nr, &d1) != FUSEC_OK) {
        fprintf(stderr, "interpreter failed on the rewritten graph:\n%s\n%s", d1.out.buf ? d1.out.buf : "", src);
        ok = false;
    }
    for (int i = 0; ok && i < nr; i++) ok = agree(&out0[i], &out1[i], kind, np ? &in[0] : NULL, src);
    if (!ok && g1) {
        ir_str s = {0};
        ir_print_graph(&s, g1);
        fprintf(stderr, "after %s:\n%s\n", passes, s.buf ? s.buf : "");
        ir_str_free(&s);
    }
    for (int i = 0; i < np; i++) free(in[i].data);
    for (int i = 0; i < nr; i++) free(out0[i].data), free(out1[i].data);
    ir_graph_free(g0);
    ir_graph_free(g1);
    ir_diag_free(&d0);
    ir_diag_free(&d1);
    ncases++;
    return ok;
}

static bool check(const char *src, const char *modes, char kind, ir_op gone) {
    return check_passes("decompose,dce", src, modes, kind, gone);
}

static const char *const FLOATS[] = {"f32", "f16", "bf16", "f64"};
#define NFLOATS 4

/* A one-op function: @main(params) -> RTYPE { %y = BODY; return %y }. */
static char *fn1(const char *params, const char *rtype, const char *body) {
    ir_str s = {0};
    ir_str_printf(&s, "func @main(%s) -> %s {\n  %%y = %s\n  return %%y\n}\n", params, rtype, body);
    return ir_str_take(&s);
}

/* The same with every "T" in the three texts replaced by dtype dt. */
static bool check_t(const char *dt, const char *params, const char *rtype, const char *body, const char *modes,
                    char kind, ir_op gone) {
    char p[512], r[128], b[512];
    const char *srcs[3] = {params, rtype, body};
    char *dst[3] = {p, r, b};
    size_t cap[3] = {sizeof p, sizeof r, sizeof b};
    for (int k = 0; k < 3; k++) {
        size_t o = 0;
        for (const char *c = srcs[k]; *c && o + 8 < cap[k]; c++) {
            if (*c == 'T' && (c == srcs[k] || !((c[-1] >= 'a' && c[-1] <= 'z') || (c[-1] >= 'A' && c[-1] <= 'Z')))) {
                o += (size_t)snprintf(dst[k] + o, cap[k] - o, "%s", dt);
            } else {
                dst[k][o++] = *c;
            }
        }
        dst[k][o] = 0;
    }
    char *src = fn1(p, r, b);
    bool ok = check(src, modes, kind, gone);
    free(src);
    return ok;
}

/* ---- decompose: numerics --------------------------------------------------- */

TEST(softmax) {
    static const struct {
        const char *shape;
        int axis;
    } cs[] = {{"[4, 3, 5]", -1}, {"[2, 3, 5]", 1}, {"[4, 7]", 0}, {"[6]", 0}, {"[]", 0},
              {"[2, 0, 3]", 1}, {"[3, 4, 1]", -1}, {"[5, 9]", 1}};
    for (int op = 0; op < 2; op++)
        for (int d = 0; d < NFLOATS; d++)
            for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
                for (int m = 0; m < 3; m++) {
                    char params[80], ty[64], body[96];
                    snprintf(ty, sizeof ty, "T%s", cs[i].shape);
                    snprintf(params, sizeof params, "%%x: %s", ty);
                    snprintf(body, sizeof body, "%s(%%x) {axis = %d}", op ? "log_softmax" : "softmax", cs[i].axis);
                    CHECK(check_t(FLOATS[d], params, ty, body, (const char[]){".sr"[m], 0}, 'r',
                                  op ? IR_OP_LOG_SOFTMAX : IR_OP_SOFTMAX));
                }
}

TEST(layer_norm) {
    static const struct {
        const char *params, *body;
    } cs[] = {
        {"%x: T[2, 3, 8], %w: T[8], %b: T[8]", "layer_norm(%x, %w, %b)"},
        {"%x: T[2, 3, 8], %w: T[8]", "layer_norm(%x, %w) {eps = 0.001}"},
        {"%x: T[2, 3, 8]", "layer_norm(%x)"},
        {"%x: T[2, 3, 4], %w: T[3, 4], %b: T[3, 4]", "layer_norm(%x, %w, %b) {axes = [-2, -1]}"},
        {"%x: T[2, 3, 4]", "layer_norm(%x) {axes = [2, 1], eps = 0}"},
        {"%x: T[5]", "layer_norm(%x) {axes = [0]}"},
        {"%x: T[4, 1]", "layer_norm(%x) {eps = 0.5}"},
        {"%x: T[0, 4], %w: T[4]", "layer_norm(%x, %w)"},
    };
    static const char *shapes[] = {"T[2, 3, 8]", "T[2, 3, 8]", "T[2, 3, 8]", "T[2, 3, 4]",
                                   "T[2, 3, 4]", "T[5]", "T[4, 1]", "T[0, 4]"};
    for (int d = 0; d < NFLOATS; d++)
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
            for (int m = 0; m < 3; m++)
                CHECK(check_t(FLOATS[d], cs[i].params, shapes[i], cs[i].body, (const char[][4]){"...", "b..", "s.."}[m],
                              'r', IR_OP_LAYER_NORM));
}

TEST(rms_norm) {
    static const struct {
        const char *params, *rtype, *body;
    } cs[] = {
        {"%x: T[2, 3, 8], %w: T[8]", "T[2, 3, 8]", "rms_norm(%x, %w)"},
        {"%x: T[2, 3, 8]", "T[2, 3, 8]", "rms_norm(%x) {eps = 0.01}"},
        {"%x: T[3, 2, 5], %w: T[2, 5]", "T[3, 2, 5]", "rms_norm(%x, %w) {axes = [-2, -1]}"},
        {"%x: T[7]", "T[7]", "rms_norm(%x) {eps = 0}"},
        {"%x: T[3, 0]", "T[3, 0]", "rms_norm(%x)"},
    };
    for (int d = 0; d < NFLOATS; d++)
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
            for (int m = 0; m < 3; m++)
                CHECK(check_t(FLOATS[d], cs[i].params, cs[i].rtype, cs[i].body, (const char[][4]){"...", "b..", "s.."}[m],
                              'r', IR_OP_RMS_NORM));
}

TEST(batch_norm) {
    static const struct {
        const char *params, *rtype, *body;
    } cs[] = {
        {"%x: T[2, 3, 4, 5], %m: T[3], %v: T[3], %w: T[3], %b: T[3]", "T[2, 3, 4, 5]", "batch_norm(%x, %m, %v, %w, %b)"},
        {"%x: T[2, 3, 4, 5], %m: T[3], %v: T[3], %w: T[3]", "T[2, 3, 4, 5]", "batch_norm(%x, %m, %v, %w) {eps = 0.1}"},
        {"%x: T[2, 3, 4], %m: T[3], %v: T[3]", "T[2, 3, 4]", "batch_norm(%x, %m, %v)"},
        {"%x: T[4, 3], %m: T[3], %v: T[3], %w: T[3], %b: T[3]", "T[4, 3]", "batch_norm(%x, %m, %v, %w, %b)"},
        {"%x: T[1, 2, 2, 2, 3], %m: T[2], %v: T[2], %w: T[2], %b: T[2]", "T[1, 2, 2, 2, 3]",
         "batch_norm(%x, %m, %v, %w, %b) {eps = 0}"},
    };
    for (int d = 0; d < NFLOATS; d++)
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
            for (int m = 0; m < 3; m++)
                CHECK(check_t(FLOATS[d], cs[i].params, cs[i].rtype, cs[i].body,
                              (const char[][6]){"..p..", "b.p..", "ss.ss"}[m], 'r', IR_OP_BATCH_NORM));
}

TEST(gelu_silu) {
    static const char *bodies[] = {"gelu(%x)", "gelu(%x) {approximate = \"tanh\"}", "silu(%x)"};
    static const char *shapes[] = {"T[3, 17]", "T[]", "T[64]"};
    for (int d = 0; d < NFLOATS; d++)
        for (int b = 0; b < 3; b++)
            for (int s = 0; s < 3; s++)
                for (int m = 0; m < 3; m++) {
                    char params[64];
                    snprintf(params, sizeof params, "%%x: %s", shapes[s]);
                    CHECK(check_t(FLOATS[d], params, shapes[s], bodies[b], (const char[]){".sw"[m], 0}, 'e',
                                  b == 2 ? IR_OP_SILU : IR_OP_GELU));
                }
}

TEST(linear) {
    static const struct {
        const char *params, *rtype, *body;
    } cs[] = {
        {"%x: T[2, 3, 4], %w: T[5, 4], %b: T[5]", "T[2, 3, 5]", "linear(%x, %w, %b)"},
        {"%x: T[3, 4], %w: T[5, 4]", "T[3, 5]", "linear(%x, %w)"},
        {"%x: T[4], %w: T[5, 4], %b: T[5]", "T[5]", "linear(%x, %w, %b)"},
        {"%x: T[2, 0], %w: T[3, 0], %b: T[3]", "T[2, 3]", "linear(%x, %w, %b)"},
    };
    for (int d = 0; d < NFLOATS; d++)
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
            for (int m = 0; m < 2; m++)
                CHECK(check_t(FLOATS[d], cs[i].params, cs[i].rtype, cs[i].body, m ? "sss" : "...", 'r', IR_OP_LINEAR));
}

TEST(masked_fill) {
    static const char *dts[] = {"f32", "f16", "bf16", "f64", "i32", "u8", "bool"};
    static const struct {
        const char *params, *rtype, *value;
    } cs[] = {
        {"%x: T[3, 4], %m: bool[3, 4]", "T[3, 4]", "1"},
        {"%x: T[3, 4], %m: bool[3, 1]", "T[3, 4]", "0"},
        {"%x: T[4], %m: bool[2, 3, 4]", "T[2, 3, 4]", "1"},
        {"%x: T[], %m: bool[5]", "T[5]", "0"},
    };
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++)
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
            char body[96];
            snprintf(body, sizeof body, "masked_fill(%%x, %%m) {value = %s}", cs[i].value);
            CHECK(check_t(dts[d], cs[i].params, cs[i].rtype, body, "H.", 'x', IR_OP_MASKED_FILL));
            if (d < 4) { /* float values: -inf, NaN, one f16 cannot hold */
                static const char *fv[] = {"-inf", "nan", "0.1", "-0.0", "1e10"};
                for (int k = 0; k < 5; k++) {
                    snprintf(body, sizeof body, "masked_fill(%%x, %%m) {value = %s}", fv[k]);
                    CHECK(check_t(dts[d], cs[i].params, cs[i].rtype, body, "H.", 'x', IR_OP_MASKED_FILL));
                }
            }
        }
}

TEST(clamp) {
    static const char *fl[] = {"min = -1, max = 1", "min = 0.5", "max = -0.5", "min = 1, max = -1",
                               "min = nan, max = 2", "min = -inf, max = inf", "min = 0.1, max = 0.7",
                               "min = 0, max = -0.0", "min = -0.0", "max = 1e10", "min = -2, max = -2"};
    char params[] = "%x: T[5, 7]";
    for (int d = 0; d < NFLOATS; d++)
        for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
            char body[96];
            snprintf(body, sizeof body, "clamp(%%x) {%s}", fl[i]);
            CHECK(check_t(FLOATS[d], params, "T[5, 7]", body, "H", 'x', IR_OP_CLAMP));
        }
    /* integer bounds beyond the dtype are dropped where they never fire;
     * where they always fire (the result is the bound, wrapped) the clamp
     * stays: `stays` has bit d set for ints[d] */
    static const char *ints[] = {"i32", "i8", "u8", "i64"};
    static const struct {
        const char *bounds;
        int stays;
    } ic[] = {{"min = -1, max = 1", 0}, {"min = 2", 0},     {"max = -3", 4},   {"min = 3, max = -3", 4},
              {"min = -1000", 0},       {"max = 1000", 0},  {"min = 300", 6},  {"max = -300", 6},
              {"min = -inf, max = 4", 0}};
    for (int d = 0; d < 4; d++)
        for (size_t i = 0; i < sizeof ic / sizeof ic[0]; i++) {
            char body[96];
            snprintf(body, sizeof body, "clamp(%%x) {%s}", ic[i].bounds);
            bool stays = ic[i].stays >> d & 1;
            CHECK(check_t(ints[d], params, "T[5, 7]", body, ".", 'x', stays ? IR_OP_COUNT : IR_OP_CLAMP));
        }
}

TEST(mean_var) {
    static const struct {
        const char *shape, *attrs, *rtype;
    } cs[] = {
        {"[2, 3, 4]", "axes = [1]", "[2, 4]"},
        {"[2, 3, 4]", "axes = [0, 2], keepdim = true", "[1, 3, 1]"},
        {"[2, 3, 4]", "", "[]"},
        {"[2, 3, 4]", "keepdim = true", "[1, 1, 1]"},
        {"[2, 0, 3]", "axes = [1]", "[2, 3]"},
        {"[]", "axes = [0]", "[]"},
        {"[3, 1]", "axes = [-1]", "[3]"},
        {"[5, 6]", "axes = [-1]", "[5]"},
    };
    static const char *corr[] = {"", "correction = 0", "correction = 2"};
    for (int d = 0; d < NFLOATS; d++)
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
            for (int m = 0; m < 3; m++)
                for (int op = 0; op < 4; op++) {
                    char params[80], ty[64], rt[64], body[128], attrs[96];
                    snprintf(ty, sizeof ty, "T%s", cs[i].shape);
                    snprintf(rt, sizeof rt, "T%s", cs[i].rtype);
                    snprintf(params, sizeof params, "%%x: %s", ty);
                    /* the case's attributes, plus the correction for var */
                    const char *extra = op == 0 ? "" : corr[op - 1];
                    const char *sep = *cs[i].attrs && *extra ? ", " : "";
                    if (*cs[i].attrs || *extra) snprintf(attrs, sizeof attrs, "{%s%s%s}", cs[i].attrs, sep, extra);
                    else attrs[0] = 0;
                    snprintf(body, sizeof body, "%s(%%x) %s", op == 0 ? "mean" : "var", attrs);
                    CHECK(check_t(FLOATS[d], params, rt, body, (const char[]){".bs"[m], 0}, 'r',
                                  op == 0 ? IR_OP_MEAN : IR_OP_VAR));
                }
}

TEST(sdpa) {
    static const struct {
        const char *params, *rtype, *body, *modes;
    } cs[] = {
        {"%q: T[2, 3, 4, 8], %k: T[2, 3, 6, 8], %v: T[2, 3, 6, 5]", "T[2, 3, 4, 5]", "sdpa(%q, %k, %v)", "..."},
        {"%q: T[2, 3, 4, 8], %k: T[2, 3, 6, 8], %v: T[2, 3, 6, 5]", "T[2, 3, 4, 5]",
         "sdpa(%q, %k, %v) {is_causal = true}", "..."},
        {"%q: T[2, 3, 4, 8], %k: T[2, 3, 6, 8], %v: T[2, 3, 6, 5], %m: bool[4, 6]", "T[2, 3, 4, 5]",
         "sdpa(%q, %k, %v, %m)", "...r"},
        {"%q: T[2, 3, 4, 8], %k: T[2, 3, 6, 8], %v: T[2, 3, 6, 5], %m: bool[2, 1, 4, 6]", "T[2, 3, 4, 5]",
         "sdpa(%q, %k, %v, %m) {is_causal = true, scale = 0.3}", "...r"},
        {"%q: T[2, 3, 4, 8], %k: T[2, 3, 6, 8], %v: T[2, 3, 6, 5], %m: T[2, 3, 4, 6]", "T[2, 3, 4, 5]",
         "sdpa(%q, %k, %v, %m)", "...r"},
        {"%q: T[2, 3, 4, 8], %k: T[2, 3, 6, 8], %v: T[2, 3, 6, 5], %m: T[4, 6]", "T[2, 3, 4, 5]",
         "sdpa(%q, %k, %v, %m) {is_causal = true}", "...r"},
        {"%q: T[7, 4], %k: T[3, 4], %v: T[3, 2]", "T[7, 2]", "sdpa(%q, %k, %v) {is_causal = true}", "..."},
        {"%q: T[2, 1, 4, 8], %k: T[3, 6, 8], %v: T[6, 5]", "T[2, 3, 4, 5]", "sdpa(%q, %k, %v)", "..."},
        {"%q: T[2, 4, 8], %k: T[2, 0, 8], %v: T[2, 0, 5]", "T[2, 4, 5]", "sdpa(%q, %k, %v)", "..."},
        {"%q: T[2, 4, 8], %k: T[2, 5, 8], %v: T[2, 5, 3], %m: bool[2, 4, 5]", "T[2, 4, 3]",
         "sdpa(%q, %k, %v, %m)", "...f"},
        {"%q: T[2, 4, 0], %k: T[2, 5, 0], %v: T[2, 5, 3]", "T[2, 4, 3]", "sdpa(%q, %k, %v) {scale = 1}", "..."},
        {"%q: T[2, 4, 8], %k: T[2, 5, 8], %v: T[2, 5, 3]", "T[2, 4, 3]", "sdpa(%q, %k, %v)", "s.."},
        {"%q: T[2, 4, 8], %k: T[2, 5, 8], %v: T[2, 5, 3], %m: bool[4, 5]", "T[2, 4, 3]",
         "sdpa(%q, %k, %v, %m)", "..sr"},
        /* NaN and +-inf scores where keys are masked: they stay NaN */
        {"%q: T[2, 4, 8], %k: T[2, 5, 8], %v: T[2, 5, 3], %m: bool[4, 5]", "T[2, 4, 3]",
         "sdpa(%q, %k, %v, %m)", ".r.r"},
        {"%q: T[2, 4, 8], %k: T[2, 5, 8], %v: T[2, 5, 3], %m: T[2, 4, 5]", "T[2, 4, 3]",
         "sdpa(%q, %k, %v, %m) {is_causal = true}", ".r.r"},
        {"%q: T[5, 8], %k: T[5, 8], %v: T[5, 3]", "T[5, 3]", "sdpa(%q, %k, %v) {is_causal = true}", ".r."},
    };
    for (int d = 0; d < NFLOATS; d++)
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
            CHECK(check_t(FLOATS[d], cs[i].params, cs[i].rtype, cs[i].body, cs[i].modes, 'r', IR_OP_SDPA));
}

/* ---- decompose: structure ------------------------------------------------- */

static const char every_composite[] =
    "func @main(%x: f32[2, 4, 8], %w: f32[8], %m: bool[4, 8], %c: f32[4], %img: f32[2, 4, 3, 3],\n"
    "           %lw: f32[6, 8]) -> (f32[2, 4, 8], f32[2, 4, 6], f32[2, 4, 3, 3], f32[2, 4, 4], f32[2, 4]) {\n"
    "  %a = softmax(%x)\n"                        /* line 3 */
    "  %b = log_softmax(%a) {axis = 1}\n"
    "  %c1 = layer_norm(%b, %w, %w)\n"
    "  %d = rms_norm(%c1, %w)\n"
    "  %e = gelu(%d)\n"
    "  %f = gelu(%e) {approximate = \"tanh\"}\n"
    "  %g = silu(%f)\n"
    "  %h = masked_fill(%g, %m) {value = -1}\n"
    "  %i = clamp(%h) {min = -0.5, max = 0.5}\n"
    "  %j = add(%i, %x)\n"
    "  %k = linear(%j, %lw)\n"
    "  %bn = batch_norm(%img, %c, %c, %c, %c)\n" /* line 14 */
    "  %s = sdpa(%x, %x, %x) {is_causal = true}\n"
    "  %t = transpose(%x) {dim0 = -2, dim1 = -1}\n"
    "  %s2 = matmul(%s, %t) : f32[2, 4, 4]\n"
    "  %mu = mean(%j) {axes = [-1]}\n"
    "  %va = var(%j) {axes = [-1]}\n"
    "  %r = add(%mu, %va)\n"
    "  return %j, %k, %bn, %s2, %r\n"
    "}\n";

TEST(structure) {
    const char *src = every_composite;
    ir_diag d;
    ir_graph *g = parse(src, &d);
    CHECK(g != NULL);
    if (!g) return;
    int before_add = count_op(g, IR_OP_ADD), before_matmul = count_op(g, IR_OP_MATMUL);
    pass_ctx ctx = {.diag = &d, .verify_each = true};
    CHECK(pass_run_pipeline(g, "decompose", &ctx));
    for (const ir_node *n = g->first; n; n = n->next) {
        CHECK(ir_op_get(n->op)->category != IR_CAT_COMPOSITE);
        CHECK(n->op != IR_OP_GELU && n->op != IR_OP_SILU && n->op != IR_OP_LINEAR && n->op != IR_OP_MASKED_FILL &&
              n->op != IR_OP_CLAMP && n->op != IR_OP_MEAN && n->op != IR_OP_VAR);
        CHECK(n->loc.line >= 3 && n->loc.line <= 20); /* every node keeps a source line */
    }
    /* the user's add and matmul nodes are still there (next to new ones) */
    CHECK(count_op(g, IR_OP_ADD) > before_add);
    CHECK(count_op(g, IR_OP_MATMUL) > before_matmul);
    /* each rewrite is counted */
    int counted = 0;
    for (int i = 0; i < ctx.nstats; i++) counted += (int)ctx.stat[i].count;
    CHECK_EQ_INT(counted, 14);
    /* names carry over: %a is now the division of the softmax, on line 3 */
    bool found_a = false, found_bn = false;
    for (const ir_node *n = g->first; n; n = n->next) {
        if (n->out->name && strcmp(n->out->name, "a") == 0) {
            found_a = true;
            CHECK(n->op == IR_OP_DIV);
            CHECK_EQ_INT(n->loc.line, 3);
        }
        if (n->out->name && strcmp(n->out->name, "bn") == 0) {
            found_bn = true;
            CHECK_EQ_INT(n->loc.line, 14);
        }
    }
    CHECK(found_a && found_bn);
    CHECK(ir_verify(g, &d));
    ir_graph_free(g);
    ir_diag_free(&d);
    /* and the whole thing computes the same */
    CHECK(check(src, "...p..", 'r', IR_OP_COUNT));
}

TEST(leaves_primitives_alone) {
    const char *src = "func @main(%x: f32[4, 8], %y: f32[8, 3]) -> f32[4, 3] {\n"
                      "  %a = exp(%x)\n"
                      "  %b = sum(%a) {axes = [1], keepdim = true}\n"
                      "  %c = div(%a, %b)\n"
                      "  %d = matmul(%c, %y)\n"
                      "  %e = maximum(%d, 0.0)\n"
                      "  return %e\n"
                      "}\n";
    ir_diag d;
    ir_graph *g = parse(src, &d);
    CHECK(g != NULL);
    if (!g) return;
    ir_str before = {0}, after = {0};
    ir_print_graph(&before, g);
    pass_ctx ctx = {.diag = &d, .verify_each = true};
    CHECK(pass_decompose(g, &ctx));
    ir_print_graph(&after, g);
    CHECK_STR(before.buf, after.buf);
    CHECK_EQ_INT(ctx.nstats, 0);
    ir_str_free(&before);
    ir_str_free(&after);
    ir_graph_free(g);
    ir_diag_free(&d);
}

/* ---- fold_bn ------------------------------------------------------------------ */

/* "[v, v, ...]" of n seeded values in [lo, hi) */
static void data_list(ir_str *s, int64_t n, double lo, double hi) {
    ir_str_putc(s, '[');
    for (int64_t i = 0; i < n; i++) ir_str_printf(s, "%s%.9g", i ? ", " : "", lo + (hi - lo) * urand());
    ir_str_putc(s, ']');
}

/* A conv2d + batch_norm graph.  Each of W, B, mean, var, gamma, beta is a
 * constant ('c'), a parameter ('p') or absent ('-') per `roles` (W and
 * mean/var cannot be absent).  extra_use: the conv result is also returned. */
static char *conv_bn(const char *dt, const char *roles, const char *conv_attrs, int cin, int cout, int groups,
                     bool extra_use) {
    ir_str params = {0}, body = {0};
    static const char *names[6] = {"w", "b", "mean", "var", "gamma", "beta"};
    int64_t sizes[6] = {(int64_t)cout * (cin / groups) * 9, cout, cout, cout, cout, cout};
    double lo[6] = {-1, -1, -1, 0.2, 0.5, -1}, hi[6] = {1, 1, 1, 2, 1.5, 1};
    ir_str_printf(&params, "%%x: %s[2, %d, 6, 6]", dt, cin);
    for (int k = 0; k < 6; k++) {
        char type[64];
        if (k == 0) snprintf(type, sizeof type, "%s[%d, %d, 3, 3]", dt, cout, cin / groups);
        else snprintf(type, sizeof type, "%s[%d]", dt, cout);
        if (roles[k] == 'p') {
            ir_str_printf(&params, ", %%%s: %s", names[k], type);
        } else if (roles[k] == 'c') {
            ir_str_printf(&body, "  %%%s = constant() {data = ", names[k]);
            data_list(&body, sizes[k], lo[k], hi[k]);
            ir_str_printf(&body, "} : %s\n", type);
        }
    }
    ir_str_printf(&body, "  %%conv = conv2d(%%x, %%w%s) {%s, groups = %d}\n", roles[1] != '-' ? ", %b" : "",
                  conv_attrs, groups);
    ir_str_printf(&body, "  %%y = batch_norm(%%conv, %%mean, %%var%s%s) {eps = 0.001}\n",
                  roles[4] != '-' ? ", %gamma" : "", roles[4] != '-' && roles[5] != '-' ? ", %beta" : "");
    ir_str s = {0};
    ir_str_printf(&s, "func @main(%s) -> %s {\n%s  return %%y%s\n}\n", params.buf, extra_use ? "(TY, TY)" : "TY",
                  body.buf, extra_use ? ", %conv" : "");
    ir_str_free(&params);
    ir_str_free(&body);
    return ir_str_take(&s);
}

/* Replace "TY" by the conv's result type, worked out from the conv attrs. */
static char *typed(char *src, const char *dt, int cout, int oh) {
    char ty[64];
    snprintf(ty, sizeof ty, "%s[2, %d, %d, %d]", dt, cout, oh, oh);
    ir_str s = {0};
    for (const char *c = src; *c; c++) {
        if (c[0] == 'T' && c[1] == 'Y') {
            ir_str_puts(&s, ty);
            c++;
        } else {
            ir_str_putc(&s, *c);
        }
    }
    free(src);
    return ir_str_take(&s);
}

static bool fold_case(const char *dt, const char *roles, const char *attrs, int cin, int cout, int groups, int oh,
                      bool extra_use, bool expect_fold) {
    char *src = typed(conv_bn(dt, roles, attrs, cin, cout, groups, extra_use), dt, cout, oh);
    bool ok = check_passes("fold_bn,dce", src, ".", 'r', expect_fold ? IR_OP_BATCH_NORM : IR_OP_COUNT);
    /* structure: folded or not, and a constant fold leaves constants only */
    ir_diag d;
    ir_graph *g = parse(src, &d);
    if (g) {
        pass_ctx ctx = {.diag = &d, .verify_each = true};
        ok = ok && pass_run_pipeline(g, "fold_bn,dce", &ctx);
        int bn = count_op(g, IR_OP_BATCH_NORM), conv = count_op(g, IR_OP_CONV2D);
        if (expect_fold ? bn != 0 || conv != 1 : bn != 1) {
            fprintf(stderr, "fold_bn: expected %s, got %d batch_norm and %d conv2d\n%s",
                    expect_fold ? "a fold" : "no fold", bn, conv, src);
            ok = false;
        }
        bool all_const = !strchr(roles, 'p');
        if (expect_fold && all_const) {
            for (const ir_node *n = g->first; n; n = n->next)
                if (n->op != IR_OP_CONSTANT && n->op != IR_OP_CONV2D) {
                    fprintf(stderr, "fold_bn: %s left after a constant fold\n%s", ir_op_get(n->op)->name, src);
                    ok = false;
                }
        }
        ir_graph_free(g);
    } else {
        ok = false;
    }
    ir_diag_free(&d);
    /* and decompose after it handles whatever is left */
    ok = ok && check_passes("fold_bn,decompose,dce", src, ".", 'r', IR_OP_BATCH_NORM);
    free(src);
    return ok;
}

TEST(fold_bn_constant) {
    static const char *std = "stride = [1, 1], padding = [1, 1]";
    for (int d = 0; d < NFLOATS; d++) {
        CHECK(fold_case(FLOATS[d], "cccccc", std, 3, 4, 1, 6, false, true));
        CHECK(fold_case(FLOATS[d], "c-cccc", std, 3, 4, 1, 6, false, true));
        CHECK(fold_case(FLOATS[d], "c-cc--", std, 3, 4, 1, 6, false, true));
        CHECK(fold_case(FLOATS[d], "cccc--", "stride = [2, 2], padding = [0, 0]", 4, 6, 2, 2, false, true));
        CHECK(fold_case(FLOATS[d], "cccccc", "stride = [1, 1], padding = [0, 0], dilation = [2, 2]", 4, 4, 4, 2,
                        false, true));
    }
}

TEST(fold_bn_runtime) {
    static const char *std = "stride = [1, 1], padding = [1, 1]";
    for (int d = 0; d < NFLOATS; d++) {
        CHECK(fold_case(FLOATS[d], "pppppp", std, 3, 4, 1, 6, false, true));
        CHECK(fold_case(FLOATS[d], "p-pp--", std, 3, 4, 1, 6, false, true));
        CHECK(fold_case(FLOATS[d], "ccpccc", std, 3, 4, 1, 6, false, true)); /* one run-time operand */
        CHECK(fold_case(FLOATS[d], "pccp--", "stride = [1, 1], padding = [1, 1]", 4, 6, 2, 6, false, true));
    }
    /* a weight larger than the activation is not worth a pass per run */
    CHECK(fold_case("f32", "pppppp", "stride = [2, 2], padding = [0, 0]", 16, 16, 1, 2, false, false));
    /* ...but constants fold at compile time whatever their size */
    CHECK(fold_case("f32", "cccccc", "stride = [2, 2], padding = [0, 0]", 16, 16, 1, 2, false, true));
}

TEST(fold_bn_not_applied) {
    /* the conv result is needed elsewhere */
    CHECK(fold_case("f32", "cccccc", "stride = [1, 1], padding = [1, 1]", 3, 4, 1, 6, true, false));
    CHECK(fold_case("f32", "pppppp", "stride = [1, 1], padding = [1, 1]", 3, 4, 1, 6, true, false));
    /* the batch_norm's input is not a conv */
    const char *src = "func @main(%x: f32[2, 3, 4, 4], %m: f32[3], %v: f32[3]) -> f32[2, 3, 4, 4] {\n"
                      "  %r = relu(%x)\n"
                      "  %y = batch_norm(%r, %m, %v)\n"
                      "  return %y\n"
                      "}\n";
    CHECK(check_passes("fold_bn,dce", src, ".p.", 'r', IR_OP_COUNT));
    ir_diag d;
    ir_graph *g = parse(src, &d);
    if (g) {
        pass_ctx ctx = {.diag = &d, .verify_each = true};
        CHECK(pass_fold_bn(g, &ctx));
        CHECK_EQ_INT(count_op(g, IR_OP_BATCH_NORM), 1);
        ir_graph_free(g);
    }
    ir_diag_free(&d);
}

/* ---- summary ------------------------------------------------------------------ */

TEST(summary) {
    printf("%d cases; worst error as a fraction of the tolerance:", ncases);
    for (int dt = 0; dt < 4; dt++) printf(" %s %.3g", ir_dtype_name((ir_dtype)dt), worst[dt]);
    printf("\n");
}

TEST_MAIN(softmax, layer_norm, rms_norm, batch_norm, gelu_silu, linear, masked_fill, clamp, mean_var, sdpa,
          structure, leaves_primitives_alone, fold_bn_constant, fold_bn_runtime, fold_bn_not_applied, summary)
