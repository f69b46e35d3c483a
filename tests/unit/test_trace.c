/*
 * test_trace.c - the tracer against the parser.
 *
 * Each round-trip test builds one graph twice: through the builders of
 * include/fusec.h and from its text form through fusec_graph_parse.  Both
 * must print the same canonical text, and that text must parse and print
 * back to itself.  Together the tests call every builder at least once,
 * then trace the kinds of graph the examples hold (attention with a causal
 * mask built in the graph, a gated MLP, a conv block).  The misuse tests
 * check that a bad call returns NULL or an error status with a message that
 * names the builder and its operands, that the first error sticks, and that
 * nothing aborts.
 */
#include <math.h>
#include <stdbool.h>

#include "fusec.h"
#include "test.h"

/* ---- helpers --------------------------------------------------------- */

static int64_t S2[2] = {2, 3};

static fusec_value *in(fusec_graph *g, const char *name, fusec_dtype dt, int rank,
                       const int64_t *shape) {
    return fusec_input(g, name, dt, rank, shape);
}

/* Name v (for a readable text form) and return it. */
static fusec_value *nm(fusec_graph *g, fusec_value *v, const char *name) {
    if (v) CHECK_EQ_INT(fusec_value_set_name(g, v, name), FUSEC_OK);
    return v;
}

static void out(fusec_graph *g, fusec_value *v) { CHECK_EQ_INT(fusec_output(g, v), FUSEC_OK); }

/* Does the traced g print as `text` parses and prints?  Also: the printed
 * text parses back to itself.  Destroys g; reports mismatches on stderr. */
static bool same(fusec_graph *g, const char *text) {
    bool ok = true;
    const char *terr = fusec_graph_error(g);
    char *a = fusec_graph_print(g);
    fusec_graph *p = NULL;
    char *err = NULL;
    fusec_status st = fusec_graph_parse(text, strlen(text), "test.ir", NULL, &p, &err);
    char *b = st == FUSEC_OK ? fusec_graph_print(p) : NULL;
    if (terr || !a) {
        fprintf(stderr, "traced graph has an error: %s\n", terr ? terr : "(print failed)");
        ok = false;
    }
    if (st != FUSEC_OK || !b) {
        fprintf(stderr, "text does not parse: %s\n%s", fusec_status_string(st), err ? err : "");
        ok = false;
    }
    if (ok && strcmp(a, b) != 0) {
        fprintf(stderr, "traced:\n%s--- parsed:\n%s", a, b);
        ok = false;
    }
    if (ok) { /* the canonical text is a fixed point */
        fusec_graph *q = NULL;
        char *err2 = NULL;
        if (fusec_graph_parse(a, strlen(a), "printed.ir", NULL, &q, &err2) != FUSEC_OK) {
            fprintf(stderr, "printed text does not parse:\n%s%s", a, err2 ? err2 : "");
            ok = false;
        } else {
            char *c = fusec_graph_print(q);
            if (!c || strcmp(a, c) != 0) {
                fprintf(stderr, "reprint differs:\n%s---\n%s", a, c ? c : "(null)");
                ok = false;
            }
            fusec_free(c);
        }
        fusec_free(err2);
        fusec_graph_destroy(q);
    }
    fusec_free(a);
    fusec_free(b);
    fusec_free(err);
    fusec_graph_destroy(p);
    fusec_graph_destroy(g);
    return ok;
}

/* Does g's first error start with `prefix` and contain `part`? */
static bool err_has(const fusec_graph *g, const char *prefix, const char *part) {
    const char *e = fusec_graph_error(g);
    if (!e || strncmp(e, prefix, strlen(prefix)) != 0 || (part && !strstr(e, part))) {
        fprintf(stderr, "error is \"%s\", wanted \"%s...%s\"\n", e ? e : "(none)", prefix,
                part ? part : "");
        return false;
    }
    return true;
}

/* ---- round trips: elementwise ----------------------------------------- */

typedef fusec_value *(*unary_fn)(fusec_graph *, fusec_value *);
typedef fusec_value *(*binary_fn)(fusec_graph *, fusec_value *, fusec_value *);

static const struct {
    unary_fn fn;
    const char *name;
    fusec_dtype in, out;
} unary_ops[] = {
    {fusec_neg, "neg", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_neg, "neg", FUSEC_DTYPE_I32, FUSEC_DTYPE_I32},
    {fusec_abs, "abs", FUSEC_DTYPE_F64, FUSEC_DTYPE_F64},
    {fusec_sign, "sign", FUSEC_DTYPE_I64, FUSEC_DTYPE_I64},
    {fusec_exp, "exp", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_exp2, "exp2", FUSEC_DTYPE_F16, FUSEC_DTYPE_F16},
    {fusec_log, "log", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_log2, "log2", FUSEC_DTYPE_BF16, FUSEC_DTYPE_BF16},
    {fusec_log1p, "log1p", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_expm1, "expm1", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_sqrt, "sqrt", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_rsqrt, "rsqrt", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_reciprocal, "reciprocal", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_sin, "sin", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_cos, "cos", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_tan, "tan", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_tanh, "tanh", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_sigmoid, "sigmoid", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_erf, "erf", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_relu, "relu", FUSEC_DTYPE_I8, FUSEC_DTYPE_I8},
    {fusec_silu, "silu", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_floor, "floor", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_ceil, "ceil", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_round, "round", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_not, "not", FUSEC_DTYPE_BOOL, FUSEC_DTYPE_BOOL},
    {fusec_isnan, "isnan", FUSEC_DTYPE_F32, FUSEC_DTYPE_BOOL},
    {fusec_isinf, "isinf", FUSEC_DTYPE_F64, FUSEC_DTYPE_BOOL},
};

TEST(unary_round_trip) {
    for (size_t i = 0; i < sizeof unary_ops / sizeof unary_ops[0]; i++) {
        fusec_graph *g = fusec_graph_create("f");
        fusec_value *x = in(g, "x", unary_ops[i].in, 2, S2);
        out(g, nm(g, unary_ops[i].fn(g, x), "y"));
        char text[256];
        snprintf(text, sizeof text,
                 "func @f(%%x: %s[2, 3]) -> %s[2, 3] {\n  %%y = %s(%%x)\n  return %%y\n}\n",
                 fusec_dtype_name(unary_ops[i].in), fusec_dtype_name(unary_ops[i].out),
                 unary_ops[i].name);
        bool ok = same(g, text);
        if (!ok) fprintf(stderr, "  (op %s)\n", unary_ops[i].name);
        CHECK(ok);
    }
}

static const struct {
    binary_fn fn;
    const char *name;
    fusec_dtype in, out;
} binary_ops[] = {
    {fusec_add, "add", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_sub, "sub", FUSEC_DTYPE_I64, FUSEC_DTYPE_I64},
    {fusec_mul, "mul", FUSEC_DTYPE_F16, FUSEC_DTYPE_F16},
    {fusec_div, "div", FUSEC_DTYPE_I32, FUSEC_DTYPE_I32},
    {fusec_pow, "pow", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_maximum, "maximum", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_minimum, "minimum", FUSEC_DTYPE_U8, FUSEC_DTYPE_U8},
    {fusec_remainder, "remainder", FUSEC_DTYPE_F32, FUSEC_DTYPE_F32},
    {fusec_and, "and", FUSEC_DTYPE_BOOL, FUSEC_DTYPE_BOOL},
    {fusec_or, "or", FUSEC_DTYPE_I16, FUSEC_DTYPE_I16},
    {fusec_xor, "xor", FUSEC_DTYPE_BOOL, FUSEC_DTYPE_BOOL},
    {fusec_eq, "eq", FUSEC_DTYPE_F32, FUSEC_DTYPE_BOOL},
    {fusec_ne, "ne", FUSEC_DTYPE_BOOL, FUSEC_DTYPE_BOOL},
    {fusec_lt, "lt", FUSEC_DTYPE_I64, FUSEC_DTYPE_BOOL},
    {fusec_le, "le", FUSEC_DTYPE_F32, FUSEC_DTYPE_BOOL},
    {fusec_gt, "gt", FUSEC_DTYPE_F32, FUSEC_DTYPE_BOOL},
    {fusec_ge, "ge", FUSEC_DTYPE_BF16, FUSEC_DTYPE_BOOL},
};

/* a: [2, 3] with b: [3], broadcasting. */
TEST(binary_round_trip) {
    for (size_t i = 0; i < sizeof binary_ops / sizeof binary_ops[0]; i++) {
        fusec_graph *g = fusec_graph_create("f");
        fusec_value *a = in(g, "a", binary_ops[i].in, 2, S2);
        fusec_value *b = in(g, "b", binary_ops[i].in, 1, (int64_t[]){3});
        out(g, nm(g, binary_ops[i].fn(g, a, b), "y"));
        const char *dn = fusec_dtype_name(binary_ops[i].in);
        char text[256];
        snprintf(text, sizeof text,
                 "func @f(%%a: %s[2, 3], %%b: %s[3]) -> %s[2, 3] {\n  %%y = %s(%%a, %%b)\n"
                 "  return %%y\n}\n",
                 dn, dn, fusec_dtype_name(binary_ops[i].out), binary_ops[i].name);
        bool ok = same(g, text);
        if (!ok) fprintf(stderr, "  (op %s)\n", binary_ops[i].name);
        CHECK(ok);
    }
}

TEST(unary_with_attributes) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    fusec_value *a = nm(g, fusec_gelu(g, x, NULL), "a");
    fusec_value *b = nm(g, fusec_gelu(g, a, "tanh"), "b");
    fusec_value *c = nm(g, fusec_clamp(g, b, true, -1.5, false, 0), "c");
    fusec_value *d = nm(g, fusec_clamp(g, c, false, 0, true, 2), "d");
    fusec_value *e = nm(g, fusec_clamp(g, d, true, -1, true, 1), "e");
    fusec_value *f = nm(g, fusec_cast(g, e, FUSEC_DTYPE_I32), "f");
    out(g, f);
    CHECK(same(g, "func @f(%x: f32[2, 3]) -> i32[2, 3] {\n"
                  "  %a = gelu(%x) {approximate = \"none\"}\n"
                  "  %b = gelu(%a) {approximate = \"tanh\"}\n"
                  "  %c = clamp(%b) {min = -1.5}\n"
                  "  %d = clamp(%c) {max = 2}\n"
                  "  %e = clamp(%d) {min = -1.0, max = 1}\n"
                  "  %f = cast(%e) {to = i32}\n"
                  "  return %f\n}\n"));
}

TEST(where_and_masked_fill) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *c = in(g, "c", FUSEC_DTYPE_BOOL, 1, (int64_t[]){3});
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    fusec_value *y = in(g, "y", FUSEC_DTYPE_F32, 2, S2);
    fusec_value *w = nm(g, fusec_where(g, c, x, y), "w");
    fusec_value *m = nm(g, fusec_masked_fill(g, w, c, -INFINITY), "m");
    fusec_value *n = nm(g, fusec_where(g, c, fusec_scalar(g, 0, FUSEC_DTYPE_F32), m), "n");
    out(g, n);
    CHECK(same(g, "func @f(%c: bool[3], %x: f32[2, 3], %y: f32[2, 3]) -> f32[2, 3] {\n"
                  "  %w = where(%c, %x, %y)\n"
                  "  %m = masked_fill(%w, %c) {value = -inf}\n"
                  "  %n = where(%c, 0.0, %m)\n"
                  "  return %n\n}\n"));
}

TEST(scalars) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    fusec_value *i = in(g, "i", FUSEC_DTYPE_I32, 1, (int64_t[]){3});
    fusec_value *two = fusec_scalar(g, 2, FUSEC_DTYPE_F32);
    CHECK_EQ_INT(fusec_value_dtype(two), FUSEC_DTYPE_F32);
    CHECK_EQ_INT(fusec_value_rank(two), 0);
    fusec_value *a = nm(g, fusec_mul(g, x, two), "a");
    fusec_value *b = nm(g, fusec_add(g, fusec_scalar(g, 0.125, FUSEC_DTYPE_F32), a), "b");
    /* an i64 scalar next to f32 takes f32, as `sub(%b, 1)` does in text */
    fusec_value *c = nm(g, fusec_sub(g, b, fusec_scalar(g, 1, FUSEC_DTYPE_I64)), "c");
    fusec_value *d = nm(g, fusec_mul(g, i, fusec_scalar(g, -3, FUSEC_DTYPE_I32)), "d");
    fusec_value *e = nm(g, fusec_gt(g, d, fusec_scalar(g, 0, FUSEC_DTYPE_I32)), "e");
    fusec_value *f = nm(g, fusec_and(g, e, fusec_scalar(g, 1, FUSEC_DTYPE_BOOL)), "f");
    /* the same scalar may serve ops of different dtypes */
    fusec_value *h = nm(g, fusec_add(g, d, two), "h");
    fusec_value *k = nm(g, fusec_add(g, c, two), "k");
    out(g, f);
    out(g, h);
    out(g, k);
    CHECK(same(g, "func @f(%x: f32[2, 3], %i: i32[3]) -> (bool[3], i32[3], f32[2, 3]) {\n"
                  "  %a = mul(%x, 2.0)\n"
                  "  %b = add(0.125, %a)\n"
                  "  %c = sub(%b, 1)\n"
                  "  %d = mul(%i, -3)\n"
                  "  %e = gt(%d, 0)\n"
                  "  %f = and(%e, true)\n"
                  "  %h = add(%d, 2.0)\n"
                  "  %k = add(%c, 2.0)\n"
                  "  return %f, %h, %k\n}\n"));
}

/* Auto-named values print as %<id>; the exact canonical text. */
TEST(auto_names_exact_text) {
    fusec_graph *g = fusec_graph_create(NULL);
    fusec_value *x = in(g, NULL, FUSEC_DTYPE_F32, 2, S2);
    fusec_value *y = fusec_relu(g, x);
    fusec_value *z = fusec_sum(g, y, (int64_t[]){-1}, 1, true);
    out(g, z);
    char *t = fusec_graph_print(g);
    CHECK_STR(t, "func @main(%0: f32[2, 3]) -> f32[2, 1] {\n"
                 "  %1 = relu(%0) : f32[2, 3]\n"
                 "  %2 = sum(%1) {axes = [-1], keepdim = true} : f32[2, 1]\n"
                 "  return %2\n}\n");
    fusec_free(t);
    const char *name = NULL;
    CHECK_EQ_INT(fusec_graph_input_info(g, 0, &name, NULL), FUSEC_OK);
    CHECK_STR(name, "0");
    fusec_graph_destroy(g);
}

/* ---- round trips: reductions and composites ----------------------------- */

TEST(reductions) {
    fusec_graph *g = fusec_graph_create("f");
    int64_t shp[3] = {2, 3, 4};
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 3, shp);
    fusec_value *n = in(g, "n", FUSEC_DTYPE_I32, 3, shp);
    int64_t ax1[1] = {1}, ax02[2] = {0, -1};
    out(g, nm(g, fusec_sum(g, x, ax1, 1, false), "s"));
    out(g, nm(g, fusec_sum(g, n, NULL, 0, false), "si"));
    out(g, nm(g, fusec_mean(g, x, ax02, 2, true), "m"));
    out(g, nm(g, fusec_prod(g, x, NULL, 0, true), "p"));
    out(g, nm(g, fusec_max(g, n, ax1, 1, false), "mx"));
    out(g, nm(g, fusec_min(g, x, ax02, 2, false), "mn"));
    out(g, nm(g, fusec_var(g, x, ax1, 1, false, 1), "v1"));
    out(g, nm(g, fusec_var(g, x, NULL, 0, true, 0), "v0"));
    out(g, nm(g, fusec_argmax(g, x, -1, false), "am"));
    out(g, nm(g, fusec_argmin(g, n, 0, true), "an"));
    CHECK(same(g, "func @f(%x: f32[2, 3, 4], %n: i32[2, 3, 4]) -> (f32[2, 4], i64[], "
                  "f32[1, 3, 1], f32[1, 1, 1], i32[2, 4], f32[3], f32[2, 4], f32[1, 1, 1], "
                  "i64[2, 3], i64[1, 3, 4]) {\n"
                  "  %s = sum(%x) {axes = [1]}\n"
                  "  %si = sum(%n)\n"
                  "  %m = mean(%x) {axes = [0, -1], keepdim = true}\n"
                  "  %p = prod(%x) {keepdim = true}\n"
                  "  %mx = max(%n) {axes = [1], keepdim = false}\n"
                  "  %mn = min(%x) {axes = [0, -1]}\n"
                  "  %v1 = var(%x) {axes = [1], correction = 1}\n"
                  "  %v0 = var(%x) {keepdim = true, correction = 0}\n"
                  "  %am = argmax(%x) {axis = -1}\n"
                  "  %an = argmin(%n) {axis = 0, keepdim = true}\n"
                  "  return %s, %si, %m, %p, %mx, %mn, %v1, %v0, %am, %an\n}\n"));
}

TEST(norms_and_softmax) {
    fusec_graph *g = fusec_graph_create("f");
    int64_t shp[3] = {2, 4, 8};
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 3, shp);
    fusec_value *w = in(g, "w", FUSEC_DTYPE_F32, 1, (int64_t[]){8});
    fusec_value *b = in(g, "b", FUSEC_DTYPE_F32, 1, (int64_t[]){8});
    fusec_value *w2 = in(g, "w2", FUSEC_DTYPE_F32, 2, (int64_t[]){4, 8});
    fusec_value *c = in(g, "c", FUSEC_DTYPE_F32, 1, (int64_t[]){4});
    out(g, nm(g, fusec_softmax(g, x, -1), "sm"));
    out(g, nm(g, fusec_log_softmax(g, x, 1), "lsm"));
    out(g, nm(g, fusec_layer_norm(g, x, w, b, NULL, 0, 1e-5), "ln"));
    out(g, nm(g, fusec_layer_norm(g, x, NULL, NULL, NULL, 0, 1e-6), "ln0"));
    out(g, nm(g, fusec_layer_norm(g, x, w2, NULL, (int64_t[]){-2, -1}, 2, 1e-5), "ln2"));
    out(g, nm(g, fusec_rms_norm(g, x, w, NULL, 0, 1e-6), "rms"));
    out(g, nm(g, fusec_rms_norm(g, x, NULL, (int64_t[]){-1}, 1, 1e-5), "rms0"));
    out(g, nm(g, fusec_batch_norm(g, x, c, c, NULL, NULL, 1e-5), "bn0"));
    out(g, nm(g, fusec_batch_norm(g, x, c, c, c, c, 1e-3), "bn"));
    CHECK(same(g, "func @f(%x: f32[2, 4, 8], %w: f32[8], %b: f32[8], %w2: f32[4, 8], "
                  "%c: f32[4]) -> (f32[2, 4, 8], f32[2, 4, 8], f32[2, 4, 8], f32[2, 4, 8], "
                  "f32[2, 4, 8], f32[2, 4, 8], f32[2, 4, 8], f32[2, 4, 8], f32[2, 4, 8]) {\n"
                  "  %sm = softmax(%x) {axis = -1}\n"
                  "  %lsm = log_softmax(%x) {axis = 1}\n"
                  "  %ln = layer_norm(%x, %w, %b)\n"
                  "  %ln0 = layer_norm(%x) {eps = 1e-06}\n"
                  "  %ln2 = layer_norm(%x, %w2) {axes = [-2, -1]}\n"
                  "  %rms = rms_norm(%x, %w)\n"
                  "  %rms0 = rms_norm(%x) {axes = [-1], eps = 0.00001}\n"
                  "  %bn0 = batch_norm(%x, %c, %c)\n"
                  "  %bn = batch_norm(%x, %c, %c, %c, %c) {eps = 0.001}\n"
                  "  return %sm, %lsm, %ln, %ln0, %ln2, %rms, %rms0, %bn0, %bn\n}\n"));
}

/* ---- round trips: shape and data movement ---------------------------------- */

TEST(shape_ops) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    fusec_value *one = in(g, "one", FUSEC_DTYPE_I64, 1, (int64_t[]){1});
    out(g, nm(g, fusec_reshape(g, x, (int64_t[]){3, -1}, 2), "r"));
    out(g, nm(g, fusec_reshape(g, one, NULL, 0), "r0"));
    out(g, nm(g, fusec_permute(g, x, (int64_t[]){1, 0}, 2), "p"));
    out(g, nm(g, fusec_transpose(g, x, -2, -1), "t"));
    fusec_value *u = nm(g, fusec_unsqueeze(g, x, 1), "u");
    out(g, nm(g, fusec_expand(g, u, (int64_t[]){4, 2, 5, -1}, 4), "e"));
    out(g, nm(g, fusec_squeeze(g, u, NULL, 0), "sq"));
    out(g, nm(g, fusec_squeeze(g, u, (int64_t[]){-2}, 1), "sq1"));
    out(g, nm(g, fusec_slice(g, x, 1, 1, INT64_MAX, 1), "sl"));
    out(g, nm(g, fusec_slice(g, x, -1, -3, -1, 2), "sl2"));
    fusec_value *xs[3] = {x, x, x};
    out(g, nm(g, fusec_concat(g, xs, 3, 0), "cat"));
    out(g, nm(g, fusec_concat(g, xs, 1, -1), "cat1"));
    out(g, nm(g, fusec_pad(g, x, (int64_t[]){1, 2}, 2, 0), "pd"));
    out(g, nm(g, fusec_pad(g, x, (int64_t[]){0, 1, -1, 0}, 4, -2.5), "pd2"));
    CHECK(same(g, "func @f(%x: f32[2, 3], %one: i64[1]) -> (f32[3, 2], i64[], f32[3, 2], "
                  "f32[3, 2], f32[4, 2, 5, 3], f32[2, 3], f32[2, 3], f32[2, 2], f32[2, 1], "
                  "f32[6, 3], f32[2, 3], f32[2, 6], f32[3, 2]) {\n"
                  "  %r = reshape(%x) {shape = [3, -1]}\n"
                  "  %r0 = reshape(%one) {shape = []}\n"
                  "  %p = permute(%x) {dims = [1, 0]}\n"
                  "  %t = transpose(%x) {dim0 = -2, dim1 = -1}\n"
                  "  %u = unsqueeze(%x) {axis = 1}\n"
                  "  %e = expand(%u) {shape = [4, 2, 5, -1]}\n"
                  "  %sq = squeeze(%u)\n"
                  "  %sq1 = squeeze(%u) {axes = [-2]}\n"
                  "  %sl = slice(%x) {axis = 1, start = 1}\n"
                  "  %sl2 = slice(%x) {axis = -1, start = -3, end = -1, step = 2}\n"
                  "  %cat = concat(%x, %x, %x) {axis = 0}\n"
                  "  %cat1 = concat(%x) {axis = -1}\n"
                  "  %pd = pad(%x) {pads = [1, 2]}\n"
                  "  %pd2 = pad(%x) {pads = [0, 1, -1, 0], value = -2.5}\n"
                  "  return %r, %r0, %p, %t, %e, %sq, %sq1, %sl, %sl2, %cat, %cat1, %pd, %pd2\n"
                  "}\n"));
}

TEST(indexing) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *w = in(g, "w", FUSEC_DTYPE_F32, 2, (int64_t[]){10, 4});
    fusec_value *ids = in(g, "ids", FUSEC_DTYPE_I64, 2, (int64_t[]){2, 3});
    fusec_value *sel = in(g, "sel", FUSEC_DTYPE_I32, 1, (int64_t[]){5});
    fusec_value *gi = in(g, "gi", FUSEC_DTYPE_I64, 2, (int64_t[]){10, 2});
    out(g, nm(g, fusec_embedding(g, w, ids), "emb"));
    out(g, nm(g, fusec_index_select(g, w, sel, 0), "is"));
    out(g, nm(g, fusec_gather(g, w, gi, -1), "ga"));
    CHECK(same(g, "func @f(%w: f32[10, 4], %ids: i64[2, 3], %sel: i32[5], %gi: i64[10, 2])"
                  " -> (f32[2, 3, 4], f32[5, 4], f32[10, 2]) {\n"
                  "  %emb = embedding(%w, %ids)\n"
                  "  %is = index_select(%w, %sel) {axis = 0}\n"
                  "  %ga = gather(%w, %gi) {axis = -1}\n"
                  "  return %emb, %is, %ga\n}\n"));
}

TEST(creation) {
    fusec_graph *g = fusec_graph_create("f");
    int64_t s[2] = {2, 2};
    out(g, nm(g, fusec_full(g, 0.5, FUSEC_DTYPE_F32, 2, s), "fu"));
    out(g, nm(g, fusec_full(g, 7, FUSEC_DTYPE_I32, 0, NULL), "f0"));
    fusec_value *io = nm(g, fusec_iota(g, 1, FUSEC_DTYPE_I64, 2, s), "io");
    out(g, io);
    double data[4] = {1, -2.5, 0, 1e-3};
    fusec_value *k = nm(g, fusec_constant(g, data, FUSEC_DTYPE_F32, 2, s), "k");
    out(g, k);
    out(g, nm(g, fusec_constant(g, (double[]){1, 0, 1}, FUSEC_DTYPE_BOOL, 1, (int64_t[]){3}),
              "kb"));
    out(g, nm(g, fusec_triu(g, k, 0), "tu"));
    out(g, nm(g, fusec_tril(g, io, -1), "tl"));
    CHECK(same(g, "func @f() -> (f32[2, 2], i32[], i64[2, 2], f32[2, 2], bool[3], f32[2, 2], "
                  "i64[2, 2]) {\n"
                  "  %fu = full() {value = 0.5} : f32[2, 2]\n"
                  "  %f0 = full() {value = 7} : i32[]\n"
                  "  %io = iota() {axis = 1} : i64[2, 2]\n"
                  "  %k = constant() {data = [1, -2.5, 0, 0.001]} : f32[2, 2]\n"
                  "  %kb = constant() {data = [1, 0, 1]} : bool[3]\n"
                  "  %tu = triu(%k)\n"
                  "  %tl = tril(%io) {diagonal = -1}\n"
                  "  return %fu, %f0, %io, %k, %kb, %tu, %tl\n}\n"));
}

TEST(contractions_and_windows) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *a = in(g, "a", FUSEC_DTYPE_F32, 3, (int64_t[]){2, 4, 8});
    fusec_value *b = in(g, "b", FUSEC_DTYPE_F32, 2, (int64_t[]){8, 5});
    fusec_value *w = in(g, "w", FUSEC_DTYPE_F32, 2, (int64_t[]){5, 8});
    fusec_value *bias = in(g, "bias", FUSEC_DTYPE_F32, 1, (int64_t[]){5});
    fusec_value *img = in(g, "img", FUSEC_DTYPE_F32, 4, (int64_t[]){1, 4, 8, 8});
    fusec_value *k = in(g, "k", FUSEC_DTYPE_F32, 4, (int64_t[]){6, 2, 3, 3});
    out(g, nm(g, fusec_matmul(g, a, b), "mm"));
    out(g, nm(g, fusec_linear(g, a, w, NULL), "l0"));
    out(g, nm(g, fusec_linear(g, a, w, bias), "l1"));
    out(g, nm(g, fusec_conv2d(g, img, k, NULL, NULL, (int64_t[]){1, 1}, NULL, 2), "cv"));
    out(g, nm(g, fusec_conv2d(g, img, k, NULL, (int64_t[]){2, 2}, (int64_t[]){0, 0},
                              (int64_t[]){2, 1}, 2),
              "cv2"));
    out(g, nm(g, fusec_max_pool2d(g, img, (int64_t[]){2, 2}, NULL, NULL), "mp"));
    out(g, nm(g, fusec_max_pool2d(g, img, (int64_t[]){3, 3}, (int64_t[]){1, 1},
                                  (int64_t[]){1, 1}),
              "mp2"));
    out(g, nm(g, fusec_avg_pool2d(g, img, (int64_t[]){2, 2}, (int64_t[]){2, 2}, NULL), "ap"));
    out(g, nm(g, fusec_adaptive_avg_pool2d(g, img, (int64_t[]){1, 1}), "aap"));
    CHECK(same(g, "func @f(%a: f32[2, 4, 8], %b: f32[8, 5], %w: f32[5, 8], %bias: f32[5], "
                  "%img: f32[1, 4, 8, 8], %k: f32[6, 2, 3, 3]) -> (f32[2, 4, 5], f32[2, 4, 5], "
                  "f32[2, 4, 5], f32[1, 6, 8, 8], f32[1, 6, 2, 3], f32[1, 4, 4, 4], "
                  "f32[1, 4, 8, 8], f32[1, 4, 4, 4], f32[1, 4, 1, 1]) {\n"
                  "  %mm = matmul(%a, %b)\n"
                  "  %l0 = linear(%a, %w)\n"
                  "  %l1 = linear(%a, %w, %bias)\n"
                  "  %cv = conv2d(%img, %k) {padding = [1, 1], groups = 2}\n"
                  "  %cv2 = conv2d(%img, %k) {stride = [2, 2], dilation = [2, 1], groups = 2}\n"
                  "  %mp = max_pool2d(%img) {kernel = [2, 2]}\n"
                  "  %mp2 = max_pool2d(%img) {kernel = [3, 3], stride = [1, 1], padding = [1, 1]}\n"
                  "  %ap = avg_pool2d(%img) {kernel = [2, 2], stride = [2, 2]}\n"
                  "  %aap = adaptive_avg_pool2d(%img) {output_size = [1, 1]}\n"
                  "  return %mm, %l0, %l1, %cv, %cv2, %mp, %mp2, %ap, %aap\n}\n"));
}

TEST(attention_op) {
    fusec_graph *g = fusec_graph_create("f");
    int64_t s[4] = {1, 2, 4, 8};
    fusec_value *q = in(g, "q", FUSEC_DTYPE_F32, 4, s);
    fusec_value *k = in(g, "k", FUSEC_DTYPE_F32, 4, s);
    fusec_value *v = in(g, "v", FUSEC_DTYPE_F32, 4, s);
    fusec_value *m = in(g, "m", FUSEC_DTYPE_BOOL, 2, (int64_t[]){4, 4});
    out(g, nm(g, fusec_sdpa(g, q, k, v, NULL, false, 0), "a0"));
    out(g, nm(g, fusec_sdpa(g, q, k, v, NULL, true, 0.25), "a1"));
    out(g, nm(g, fusec_sdpa(g, q, k, v, m, false, -1), "a2"));
    CHECK(same(g, "func @f(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8], "
                  "%m: bool[4, 4]) -> (f32[1, 2, 4, 8], f32[1, 2, 4, 8], f32[1, 2, 4, 8]) {\n"
                  "  %a0 = sdpa(%q, %k, %v)\n"
                  "  %a1 = sdpa(%q, %k, %v) {is_causal = true, scale = 0.25}\n"
                  "  %a2 = sdpa(%q, %k, %v, %m) {is_causal = false}\n"
                  "  return %a0, %a1, %a2\n}\n"));
}

/* ---- round trips: the examples' kinds of graph ------------------------------ */

/* GPT-2 style attention scores with the causal mask built in the graph
 * (spec section 1, smaller). */
TEST(causal_attention) {
    fusec_graph *g = fusec_graph_create("masked_scores");
    int64_t s[4] = {2, 3, 16, 8}, sq[2] = {16, 16};
    fusec_value *q = in(g, "q", FUSEC_DTYPE_F32, 4, s);
    fusec_value *k = in(g, "k", FUSEC_DTYPE_F32, 4, s);
    fusec_value *v = in(g, "v", FUSEC_DTYPE_F32, 4, s);
    fusec_value *kt = nm(g, fusec_transpose(g, k, -2, -1), "kt");
    fusec_value *sc = nm(g, fusec_matmul(g, q, kt), "s");
    fusec_value *s2 = nm(g, fusec_mul(g, sc, fusec_scalar(g, 0.125, FUSEC_DTYPE_F32)), "s2");
    fusec_value *row = nm(g, fusec_iota(g, 0, FUSEC_DTYPE_I64, 2, sq), "row");
    fusec_value *col = nm(g, fusec_iota(g, 1, FUSEC_DTYPE_I64, 2, sq), "col");
    fusec_value *fut = nm(g, fusec_gt(g, col, row), "fut");
    fusec_value *m = nm(g, fusec_where(g, fut, fusec_scalar(g, -INFINITY, FUSEC_DTYPE_F32), s2),
                        "m");
    fusec_value *p = nm(g, fusec_softmax(g, m, -1), "p");
    fusec_value *o = nm(g, fusec_matmul(g, p, v), "o");
    out(g, o);
    CHECK(same(g, "# attention with a causal mask\n"
                  "func @masked_scores(%q: f32[2, 3, 16, 8], %k: f32[2, 3, 16, 8],\n"
                  "                    %v: f32[2, 3, 16, 8]) -> f32[2, 3, 16, 8] {\n"
                  "  %kt  = transpose(%k) {dim0 = -2, dim1 = -1}\n"
                  "  %s   = matmul(%q, %kt)\n"
                  "  %s2  = mul(%s, 0.125)\n"
                  "  %row = iota() {axis = 0} : i64[16, 16]\n"
                  "  %col = iota() {axis = 1} : i64[16, 16]\n"
                  "  %fut = gt(%col, %row)\n"
                  "  %m   = where(%fut, -inf, %s2)\n"
                  "  %p   = softmax(%m) {axis = -1}\n"
                  "  %o   = matmul(%p, %v)\n"
                  "  return %o\n}\n"));
}

/* A LLaMA-style gated MLP in bf16 with an RMS norm in front. */
TEST(llama_mlp) {
    fusec_graph *g = fusec_graph_create("mlp");
    fusec_dtype bf = FUSEC_DTYPE_BF16;
    fusec_value *x = in(g, "x", bf, 3, (int64_t[]){2, 4, 16});
    fusec_value *nw = in(g, "norm_w", bf, 1, (int64_t[]){16});
    fusec_value *wg = in(g, "w_gate", bf, 2, (int64_t[]){32, 16});
    fusec_value *wu = in(g, "w_up", bf, 2, (int64_t[]){32, 16});
    fusec_value *wd = in(g, "w_down", bf, 2, (int64_t[]){16, 32});
    fusec_value *h = nm(g, fusec_rms_norm(g, x, nw, NULL, 0, 1e-6), "h");
    fusec_value *gt = nm(g, fusec_linear(g, h, wg, NULL), "gate");
    fusec_value *up = nm(g, fusec_linear(g, h, wu, NULL), "up");
    fusec_value *act = nm(g, fusec_mul(g, nm(g, fusec_silu(g, gt), "sg"), up), "act");
    fusec_value *dn = nm(g, fusec_linear(g, act, wd, NULL), "down");
    fusec_value *y = nm(g, fusec_add(g, x, dn), "y");
    out(g, y);
    CHECK(same(g, "func @mlp(%x: bf16[2, 4, 16], %norm_w: bf16[16], %w_gate: bf16[32, 16],\n"
                  "          %w_up: bf16[32, 16], %w_down: bf16[16, 32]) -> bf16[2, 4, 16] {\n"
                  "  %h    = rms_norm(%x, %norm_w)\n"
                  "  %gate = linear(%h, %w_gate)\n"
                  "  %up   = linear(%h, %w_up)\n"
                  "  %sg   = silu(%gate)\n"
                  "  %act  = mul(%sg, %up)\n"
                  "  %down = linear(%act, %w_down)\n"
                  "  %y    = add(%x, %down)\n"
                  "  return %y\n}\n"));
}

/* A ResNet-style block: conv, batch norm, relu, conv, batch norm, residual
 * add, relu, then a pooled head. */
TEST(conv_block) {
    fusec_graph *g = fusec_graph_create("block");
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 4, (int64_t[]){1, 8, 8, 8});
    fusec_value *w1 = in(g, "w1", FUSEC_DTYPE_F32, 4, (int64_t[]){8, 8, 3, 3});
    fusec_value *w2 = in(g, "w2", FUSEC_DTYPE_F32, 4, (int64_t[]){8, 8, 3, 3});
    fusec_value *mu = in(g, "mu", FUSEC_DTYPE_F32, 1, (int64_t[]){8});
    fusec_value *var = in(g, "var", FUSEC_DTYPE_F32, 1, (int64_t[]){8});
    fusec_value *ga = in(g, "gamma", FUSEC_DTYPE_F32, 1, (int64_t[]){8});
    fusec_value *be = in(g, "beta", FUSEC_DTYPE_F32, 1, (int64_t[]){8});
    int64_t pad1[2] = {1, 1};
    fusec_value *c1 = nm(g, fusec_conv2d(g, x, w1, NULL, NULL, pad1, NULL, 1), "c1");
    fusec_value *b1 = nm(g, fusec_batch_norm(g, c1, mu, var, ga, be, 1e-5), "b1");
    fusec_value *r1 = nm(g, fusec_relu(g, b1), "r1");
    fusec_value *c2 = nm(g, fusec_conv2d(g, r1, w2, NULL, NULL, pad1, NULL, 1), "c2");
    fusec_value *b2 = nm(g, fusec_batch_norm(g, c2, mu, var, ga, be, 1e-5), "b2");
    fusec_value *s = nm(g, fusec_add(g, b2, x), "sum");
    fusec_value *r2 = nm(g, fusec_relu(g, s), "r2");
    fusec_value *mp = nm(g, fusec_max_pool2d(g, r2, (int64_t[]){2, 2}, NULL, NULL), "mp");
    fusec_value *gp = nm(g, fusec_adaptive_avg_pool2d(g, mp, (int64_t[]){1, 1}), "gp");
    fusec_value *fl = nm(g, fusec_reshape(g, gp, (int64_t[]){1, -1}, 2), "flat");
    out(g, r2);
    out(g, fl);
    CHECK(same(g, "func @block(%x: f32[1, 8, 8, 8], %w1: f32[8, 8, 3, 3], %w2: f32[8, 8, 3, 3],\n"
                  "  %mu: f32[8], %var: f32[8], %gamma: f32[8], %beta: f32[8])\n"
                  "    -> (f32[1, 8, 8, 8], f32[1, 8]) {\n"
                  "  %c1 = conv2d(%x, %w1) {padding = [1, 1]}\n"
                  "  %b1 = batch_norm(%c1, %mu, %var, %gamma, %beta)\n"
                  "  %r1 = relu(%b1)\n"
                  "  %c2 = conv2d(%r1, %w2) {stride = [1, 1], padding = [1, 1]}\n"
                  "  %b2 = batch_norm(%c2, %mu, %var, %gamma, %beta) {eps = 1e-5}\n"
                  "  %sum = add(%b2, %x)\n"
                  "  %r2 = relu(%sum)\n"
                  "  %mp = max_pool2d(%r2) {kernel = [2, 2]}\n"
                  "  %gp = adaptive_avg_pool2d(%mp) {output_size = [1, 1]}\n"
                  "  %flat = reshape(%gp) {shape = [1, -1]}\n"
                  "  return %r2, %flat\n}\n"));
}

/* ---- misuse ------------------------------------------------------------------ */

TEST(wrong_dtype) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *i = in(g, "i", FUSEC_DTYPE_I32, 2, S2);
    CHECK(fusec_exp(g, i) == NULL);
    CHECK(err_has(g, "fusec_exp: ", "%i (i32[2, 3])"));
    CHECK(fusec_graph_print(g) == NULL);
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    fusec_value *a = in(g, "a", FUSEC_DTYPE_F32, 2, S2);
    fusec_value *b = in(g, "b", FUSEC_DTYPE_F16, 2, S2);
    CHECK(fusec_add(g, a, b) == NULL);
    CHECK(err_has(g, "fusec_add: ", "%a (f32[2, 3])"));
    CHECK(err_has(g, "fusec_add: ", "%b (f16[2, 3])"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    a = in(g, "a", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_not(g, a) == NULL);
    CHECK(err_has(g, "fusec_not: ", "%a"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    a = in(g, "a", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_where(g, a, a, a) == NULL);
    CHECK(err_has(g, "fusec_where: ", "%a"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    i = in(g, "i", FUSEC_DTYPE_I32, 2, S2);
    CHECK(fusec_add(g, i, fusec_scalar(g, 2.5, FUSEC_DTYPE_F32)) == NULL);
    CHECK(err_has(g, "fusec_add: ", "2.5"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    a = in(g, "a", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_cast(g, a, (fusec_dtype)42) == NULL);
    CHECK(err_has(g, "fusec_cast: ", "dtype"));
    fusec_graph_destroy(g);
}

TEST(bad_broadcast) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *a = in(g, "a", FUSEC_DTYPE_F32, 2, S2);
    fusec_value *b = in(g, "b", FUSEC_DTYPE_F32, 1, (int64_t[]){4});
    CHECK(fusec_add(g, a, b) == NULL);
    CHECK_STR(fusec_graph_error(g), "fusec_add: cannot broadcast %a (f32[2, 3]) with %b (f32[4])");
    fusec_graph_destroy(g);
}

TEST(bad_axis) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_softmax(g, x, 2) == NULL);
    CHECK(err_has(g, "fusec_softmax: ", "axis"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_sum(g, x, (int64_t[]){-3}, 1, false) == NULL);
    CHECK(err_has(g, "fusec_sum: ", "-3"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_transpose(g, x, 0, 7) == NULL);
    CHECK(err_has(g, "fusec_transpose: ", "7"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_concat(g, (fusec_value *[]){x, x}, 2, 2) == NULL);
    CHECK(err_has(g, "fusec_concat: ", "axis"));
    fusec_graph_destroy(g);
}

TEST(bad_attribute_values) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *img = in(g, "img", FUSEC_DTYPE_F32, 4, (int64_t[]){1, 2, 8, 8});
    fusec_value *k = in(g, "k", FUSEC_DTYPE_F32, 4, (int64_t[]){4, 2, 3, 3});
    CHECK(fusec_max_pool2d(g, img, (int64_t[]){-1, 2}, NULL, NULL) == NULL);
    CHECK(err_has(g, "fusec_max_pool2d: ", "kernel"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    img = in(g, "img", FUSEC_DTYPE_F32, 4, (int64_t[]){1, 2, 8, 8});
    k = in(g, "k", FUSEC_DTYPE_F32, 4, (int64_t[]){4, 2, 3, 3});
    CHECK(fusec_conv2d(g, img, k, NULL, NULL, NULL, NULL, 0) == NULL);
    CHECK(err_has(g, "fusec_conv2d: ", "groups"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    img = in(g, "img", FUSEC_DTYPE_F32, 4, (int64_t[]){1, 2, 8, 8});
    CHECK(fusec_max_pool2d(g, img, NULL, NULL, NULL) == NULL);
    CHECK(err_has(g, "fusec_max_pool2d: ", "kernel"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_pad(g, x, (int64_t[]){1, 2, 3}, 3, 0) == NULL);
    CHECK(err_has(g, "fusec_pad: ", "pairs"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_reshape(g, x, (int64_t[]){4, 2}, 2) == NULL);
    CHECK(err_has(g, "fusec_reshape: ", "%x (f32[2, 3])"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_gelu(g, x, "fast") == NULL);
    CHECK(err_has(g, "fusec_gelu: ", "fast"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_slice(g, x, 0, 0, 1, 0) == NULL);
    CHECK(err_has(g, "fusec_slice: ", "step"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_clamp(g, x, false, 0, false, 0) == NULL);
    CHECK(err_has(g, "fusec_clamp: ", "min"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_sum(g, x, NULL, 2, false) == NULL); /* (NULL, 2): a malformed list */
    CHECK(err_has(g, "fusec_sum: ", "axes"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    CHECK(fusec_constant(g, NULL, FUSEC_DTYPE_F32, 1, (int64_t[]){3}) == NULL);
    CHECK(err_has(g, "fusec_constant: ", "data"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    CHECK(fusec_full(g, 1, FUSEC_DTYPE_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}) == NULL);
    CHECK(err_has(g, "fusec_full: ", "rank 9"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    CHECK(fusec_input(g, "x", FUSEC_DTYPE_F32, 2, (int64_t[]){2, -3}) == NULL);
    CHECK(err_has(g, "fusec_input: ", "negative"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    CHECK(fusec_full(g, 2.5, FUSEC_DTYPE_U8, 1, (int64_t[]){2}) == NULL);
    CHECK(err_has(g, "fusec_full: ", "u8"));
    fusec_graph_destroy(g);
}

TEST(optional_operands) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    fusec_value *b = in(g, "b", FUSEC_DTYPE_F32, 1, (int64_t[]){3});
    CHECK(fusec_layer_norm(g, x, NULL, b, NULL, 0, 1e-5) == NULL);
    CHECK_STR(fusec_graph_error(g), "fusec_layer_norm: bias given without weight");
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    b = in(g, "b", FUSEC_DTYPE_F32, 1, (int64_t[]){5});
    fusec_value *w = in(g, "w", FUSEC_DTYPE_F32, 2, (int64_t[]){4, 3});
    CHECK(fusec_linear(g, x, w, b) == NULL);
    CHECK(err_has(g, "fusec_linear: ", "%b (f32[5])"));
    fusec_graph_destroy(g);
}

TEST(null_operands_are_sticky) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    /* a NULL operand on a graph with no error is itself the error */
    CHECK(fusec_relu(g, NULL) == NULL);
    CHECK_STR(fusec_graph_error(g), "fusec_relu: operand x is NULL");
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    fusec_value *bad = fusec_softmax(g, x, 9); /* first error */
    CHECK(bad == NULL);
    const char *first = fusec_graph_error(g);
    CHECK(first && strncmp(first, "fusec_softmax: ", 15) == 0);
    /* every later builder given the NULL returns NULL; the error stays */
    fusec_value *y = fusec_add(g, x, bad);
    y = fusec_exp(g, y);
    y = fusec_sum(g, y, NULL, 0, false);
    y = fusec_where(g, bad, x, x);
    y = fusec_layer_norm(g, x, bad, NULL, NULL, 0, 1e-5); /* ambiguous NULL: refused */
    y = fusec_linear(g, x, x, NULL);
    CHECK(y == NULL);
    fusec_value *xs[2] = {x, bad};
    CHECK(fusec_concat(g, xs, 2, 0) == NULL);
    CHECK_EQ_INT(fusec_output(g, bad), FUSEC_ERR_INVALID);
    CHECK(fusec_graph_error(g) == first);
    CHECK(strncmp(fusec_graph_error(g), "fusec_softmax: ", 15) == 0);
    /* later errors do not overwrite it either */
    CHECK(fusec_matmul(g, x, fusec_input(g, "z", FUSEC_DTYPE_F32, 1, (int64_t[]){7})) == NULL);
    CHECK(strncmp(fusec_graph_error(g), "fusec_softmax: ", 15) == 0);
    CHECK(fusec_graph_print(g) == NULL);
    fusec_module *m = NULL;
    char *msg = NULL;
    CHECK_EQ_INT(fusec_compile(g, FUSEC_BACKEND_INTERP, &m, &msg), FUSEC_ERR_INVALID);
    CHECK(m == NULL);
    CHECK(msg && strstr(msg, "fusec_softmax: "));
    fusec_free(msg);
    fusec_graph_destroy(g);
}

TEST(null_graph) {
    fusec_value *v = NULL;
    CHECK(fusec_input(NULL, "x", FUSEC_DTYPE_F32, 0, NULL) == NULL);
    CHECK(fusec_scalar(NULL, 1, FUSEC_DTYPE_F32) == NULL);
    CHECK(fusec_relu(NULL, v) == NULL);
    CHECK(fusec_add(NULL, v, v) == NULL);
    CHECK(fusec_full(NULL, 1, FUSEC_DTYPE_F32, 0, NULL) == NULL);
    CHECK(fusec_concat(NULL, &v, 1, 0) == NULL);
    CHECK(fusec_sdpa(NULL, v, v, v, NULL, true, 0) == NULL);
    CHECK(fusec_conv2d(NULL, v, v, NULL, NULL, NULL, NULL, 1) == NULL);
    CHECK_EQ_INT(fusec_output(NULL, v), FUSEC_ERR_INVALID);
    CHECK_EQ_INT(fusec_value_set_name(NULL, v, "x"), FUSEC_ERR_INVALID);
    CHECK(fusec_graph_error(NULL) != NULL);
    CHECK(fusec_graph_print(NULL) == NULL);
    CHECK_EQ_INT(fusec_graph_num_inputs(NULL), -1);
    CHECK_EQ_INT(fusec_graph_num_outputs(NULL), -1);
    fusec_graph_destroy(NULL);
    CHECK_EQ_INT(fusec_value_rank(NULL), -1);
    CHECK_EQ_INT(fusec_value_dim(NULL, 0), -1);
}

TEST(foreign_values) {
    fusec_graph *g1 = fusec_graph_create("a");
    fusec_graph *g2 = fusec_graph_create("b");
    fusec_value *x1 = in(g1, "x", FUSEC_DTYPE_F32, 2, S2);
    fusec_value *x2 = in(g2, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_add(g1, x1, x2) == NULL);
    CHECK_STR(fusec_graph_error(g1), "fusec_add: operand b is not a value of graph @a");
    CHECK(fusec_graph_error(g2) == NULL);
    CHECK_EQ_INT(fusec_output(g2, x1), FUSEC_ERR_INVALID);
    CHECK(err_has(g2, "fusec_output: ", "@b"));
    fusec_graph *g3 = fusec_graph_create("c");
    CHECK_EQ_INT(fusec_value_set_name(g3, x1, "q"), FUSEC_ERR_INVALID);
    CHECK(err_has(g3, "fusec_value_set_name: ", "@c"));
    fusec_graph_destroy(g1);
    fusec_graph_destroy(g2);
    fusec_graph_destroy(g3);
}

TEST(scalar_misuse) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *s = fusec_scalar(g, 1, FUSEC_DTYPE_F32);
    CHECK(fusec_neg(g, s) == NULL);
    CHECK(err_has(g, "fusec_neg: ", "tensor"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    fusec_value *c = in(g, "c", FUSEC_DTYPE_BOOL, 1, (int64_t[]){3});
    s = fusec_scalar(g, 1, FUSEC_DTYPE_F32);
    CHECK(fusec_where(g, c, s, s) == NULL);
    CHECK(err_has(g, "fusec_where: ", "a or b"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    s = fusec_scalar(g, 1, FUSEC_DTYPE_F32);
    CHECK_EQ_INT(fusec_output(g, s), FUSEC_ERR_INVALID);
    CHECK(err_has(g, "fusec_output: ", "scalar"));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    s = fusec_scalar(g, 1, FUSEC_DTYPE_F32);
    CHECK_EQ_INT(fusec_value_set_name(g, s, "s"), FUSEC_ERR_INVALID);
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    CHECK(fusec_scalar(g, 1, (fusec_dtype)-3) == NULL);
    CHECK(err_has(g, "fusec_scalar: ", "dtype"));
    fusec_graph_destroy(g);
}

TEST(names) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    CHECK(fusec_input(g, "x", FUSEC_DTYPE_F32, 0, NULL) == NULL);
    CHECK_STR(fusec_graph_error(g), "fusec_input: the name %x is already used in graph @f");
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    fusec_value *y = fusec_relu(g, x);
    CHECK_EQ_INT(fusec_value_set_name(g, y, "x"), FUSEC_ERR_INVALID);
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);
    y = fusec_relu(g, x);
    CHECK_EQ_INT(fusec_value_set_name(g, y, "bad name"), FUSEC_ERR_INVALID);
    CHECK(err_has(g, "fusec_value_set_name: invalid name 'bad name'", NULL));
    fusec_graph_destroy(g);

    g = fusec_graph_create("f");
    x = in(g, NULL, FUSEC_DTYPE_F32, 2, S2); /* %0 */
    y = fusec_relu(g, x);                    /* %1 */
    CHECK_EQ_INT(fusec_value_set_name(g, y, "0"), FUSEC_ERR_INVALID); /* %0 is x's */
    fusec_graph_destroy(g);

    /* renaming frees the old name; a digit name may not clash with a later id */
    g = fusec_graph_create("f");
    x = in(g, "x", FUSEC_DTYPE_F32, 2, S2);              /* id 0 */
    y = nm(g, fusec_relu(g, x), "y");                    /* id 1 */
    CHECK_EQ_INT(fusec_value_set_name(g, y, "y2"), FUSEC_OK);
    fusec_value *z = nm(g, fusec_exp(g, y), "y");        /* "y" is free again; id 2 */
    CHECK_EQ_INT(fusec_value_set_name(g, z, "3"), FUSEC_OK); /* names id 3's spelling */
    fusec_value *u = fusec_neg(g, z);                    /* id 3: must not print as %3 */
    fusec_value *w = fusec_neg(g, u);                    /* id 4 */
    CHECK(u && w);
    out(g, w);
    char *t = fusec_graph_print(g);
    CHECK(t && strstr(t, "  %3 = exp(%y2)"));
    CHECK(t && strstr(t, "  %_3 = neg(%3)"));
    CHECK(t && strstr(t, "  %4 = neg(%_3)"));
    fusec_free(t);
    CHECK(fusec_graph_error(g) == NULL);
    CHECK(same(g, "func @f(%x: f32[2, 3]) -> f32[2, 3] {\n"
                  "  %y2 = relu(%x)\n  %3 = exp(%y2)\n  %_3 = neg(%3)\n  %4 = neg(%_3)\n"
                  "  return %4\n}\n"));

    /* graph names */
    g = fusec_graph_create("not valid");
    CHECK(g != NULL);
    CHECK(err_has(g, "fusec_graph_create: invalid graph name", NULL));
    fusec_graph_destroy(g);
}

/* Tracing onto a parsed graph: the parsed values are the graph's own, and
 * a new value never takes a printed name a parsed value already has (the
 * file names values %2 ... %6, the ids new values would print as). */
TEST(trace_on_parsed_graph) {
    const char *text = "func @f(%x: f32[3]) -> f32[3] {\n  %2 = exp(%x)\n  %3 = neg(%2)\n"
                       "  %4 = neg(%3)\n  %5 = neg(%4)\n  %6 = neg(%5)\n  return %6\n}\n";
    fusec_graph *g = NULL;
    CHECK_EQ_INT(fusec_graph_parse(text, strlen(text), "t.ir", NULL, &g, NULL), FUSEC_OK);
    CHECK_EQ_INT(fusec_graph_num_inputs(g), 1);
    fusec_value *y = fusec_input(g, NULL, FUSEC_DTYPE_F32, 1, (int64_t[]){3});
    fusec_value *s = fusec_add(g, y, y);
    fusec_value *t2 = fusec_exp(g, s);
    CHECK(t2 != NULL);
    out(g, t2);
    CHECK_EQ_INT(fusec_value_set_name(g, t2, "6"), FUSEC_ERR_INVALID); /* taken by the file */
    CHECK(fusec_graph_error(g) != NULL);
    fusec_graph_destroy(g);

    CHECK_EQ_INT(fusec_graph_parse(text, strlen(text), "t.ir", NULL, &g, NULL), FUSEC_OK);
    y = fusec_input(g, NULL, FUSEC_DTYPE_F32, 1, (int64_t[]){3});
    s = fusec_add(g, y, y);
    out(g, fusec_exp(g, s));
    char *t = fusec_graph_print(g);
    CHECK(t != NULL);
    if (t) { /* the parser refuses a redefinition, so this checks uniqueness */
        fusec_graph *q = NULL;
        char *err = NULL;
        CHECK_EQ_INT(fusec_graph_parse(t, strlen(t), "t2.ir", NULL, &q, &err), FUSEC_OK);
        if (err) fprintf(stderr, "%s---\n%s", t, err);
        fusec_free(err);
        fusec_graph_destroy(q);
    }
    fusec_free(t);
    fusec_graph_destroy(g);
}

TEST(value_accessors) {
    fusec_graph *g = fusec_graph_create("f");
    fusec_value *x = in(g, "x", FUSEC_DTYPE_BF16, 3, (int64_t[]){2, 3, 5});
    CHECK_EQ_INT(fusec_value_dtype(x), FUSEC_DTYPE_BF16);
    CHECK_EQ_INT(fusec_value_rank(x), 3);
    CHECK_EQ_INT(fusec_value_dim(x, 0), 2);
    CHECK_EQ_INT(fusec_value_dim(x, -1), 5);
    CHECK_EQ_INT(fusec_value_dim(x, 3), -1);
    CHECK_EQ_INT(fusec_value_dim(x, -4), -1);
    fusec_value *s = fusec_sum(g, fusec_cast(g, x, FUSEC_DTYPE_I32), (int64_t[]){1}, 1, false);
    CHECK_EQ_INT(fusec_value_dtype(s), FUSEC_DTYPE_I64);
    CHECK_EQ_INT(fusec_value_rank(s), 2);
    CHECK_EQ_INT(fusec_value_dim(s, 1), 5);
    fusec_graph_destroy(g);
}

TEST_MAIN(unary_round_trip, binary_round_trip, unary_with_attributes, where_and_masked_fill,
          scalars, auto_names_exact_text, reductions, norms_and_softmax, shape_ops, indexing,
          creation, contractions_and_windows, attention_op, causal_attention, llama_mlp,
          conv_block, wrong_dtype, bad_broadcast, bad_axis, bad_attribute_values,
          optional_operands, null_operands_are_sticky, null_graph, foreign_values, scalar_misuse,
          names, trace_on_parsed_graph, value_accessors)
