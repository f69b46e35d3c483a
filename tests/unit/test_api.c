/*
 * test_api.c - the public API around graphs and modules: status strings,
 * version, dtype helpers, parsing (text and files) and its errors, input and
 * output descriptions, compiling for the interpreter and running, with the
 * errors of each call; and one module run from several threads at once.
 * Expected outputs are computed by hand in the comments.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, pthreads */

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "fusec.h"
#include "test.h"

/* ---- helpers ---------------------------------------------------------- */

static fusec_graph *parse(const char *text) {
    fusec_graph *g = NULL;
    char *err = NULL;
    fusec_status st = fusec_graph_parse(text, strlen(text), "t.ir", NULL, &g, &err);
    if (st != FUSEC_OK) fprintf(stderr, "parse failed: %s\n", err ? err : "");
    fusec_free(err);
    return g;
}

static fusec_tensor tensor(fusec_dtype dt, int rank, const int64_t *shape, void *data) {
    fusec_tensor t = {.dtype = dt, .rank = rank, .data = data};
    for (int i = 0; i < rank; i++) t.shape[i] = shape[i];
    return t;
}

static bool contains(const char *s, const char *part) {
    if (s && strstr(s, part)) return true;
    fprintf(stderr, "\"%s\" does not contain \"%s\"\n", s ? s : "(null)", part);
    return false;
}

/* ---- small helpers of the header ------------------------------------------ */

TEST(status_strings) {
    const fusec_status all[] = {FUSEC_OK,          FUSEC_ERR_INVALID, FUSEC_ERR_PARSE,
                                FUSEC_ERR_IO,      FUSEC_ERR_UNSUPPORTED, FUSEC_ERR_RUNTIME,
                                FUSEC_ERR_NOMEM,   FUSEC_ERR_BACKEND};
    int n = (int)(sizeof all / sizeof all[0]);
    for (int i = 0; i < n; i++) {
        const char *s = fusec_status_string(all[i]);
        CHECK(s && *s);
        for (int j = 0; j < i; j++) CHECK(strcmp(s, fusec_status_string(all[j])) != 0);
    }
    CHECK_STR(fusec_status_string(FUSEC_OK), "ok");
    CHECK_STR(fusec_status_string(FUSEC_ERR_PARSE), "parse error");
    CHECK_STR(fusec_status_string((fusec_status)99), "unknown status");
    CHECK_EQ_INT(FUSEC_ERR_BACKEND, 7); /* values are ABI */
}

TEST(version) {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", FUSEC_VERSION_MAJOR, FUSEC_VERSION_MINOR,
             FUSEC_VERSION_PATCH);
    CHECK_STR(fusec_version(), want);
    CHECK_STR(fusec_version(), FUSEC_VERSION_STRING);
}

TEST(dtypes) {
    static const char *names[FUSEC_DTYPE_COUNT] = {"f64", "f32", "f16", "bf16", "i64",
                                                   "i32", "i16", "i8",  "u8",   "bool"};
    static const size_t sizes[FUSEC_DTYPE_COUNT] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};
    for (int i = 0; i < FUSEC_DTYPE_COUNT; i++) {
        CHECK_STR(fusec_dtype_name((fusec_dtype)i), names[i]);
        CHECK_EQ_INT(fusec_dtype_size((fusec_dtype)i), sizes[i]);
    }
    CHECK(fusec_dtype_name((fusec_dtype)FUSEC_DTYPE_COUNT) == NULL);
    CHECK(fusec_dtype_name((fusec_dtype)-1) == NULL);
    CHECK_EQ_INT(fusec_dtype_size((fusec_dtype)FUSEC_DTYPE_COUNT), 0);
}

TEST(tensor_numel) {
    fusec_tensor t = tensor(FUSEC_DTYPE_F32, 0, NULL, NULL);
    CHECK_EQ_INT(fusec_tensor_numel(&t), 1);
    t = tensor(FUSEC_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, NULL);
    CHECK_EQ_INT(fusec_tensor_numel(&t), 24);
    t.shape[1] = 0;
    CHECK_EQ_INT(fusec_tensor_numel(&t), 0);
    t.shape[1] = -1;
    CHECK_EQ_INT(fusec_tensor_numel(&t), -1);
    t.rank = 9;
    CHECK_EQ_INT(fusec_tensor_numel(&t), -1);
    CHECK_EQ_INT(fusec_tensor_numel(NULL), -1);
    fusec_free(NULL);
}

/* ---- parsing ------------------------------------------------------------------ */

static const char *ADD_RELU_SUM =
    "# y = relu(x + b); s = row sums of y\n"
    "func @f(%x: f32[2, 3], %b: f32[3]) -> (f32[2, 3], f32[2]) {\n"
    "  %y = add(%x, %b)\n"
    "  %r = relu(%y)\n"
    "  %s = sum(%r) {axes = [1]}\n"
    "  return %r, %s\n"
    "}\n";

TEST(parse_print_and_info) {
    fusec_graph *g = parse(ADD_RELU_SUM);
    CHECK(g != NULL);
    if (!g) return;
    CHECK(fusec_graph_error(g) == NULL);
    char *t = fusec_graph_print(g);
    CHECK_STR(t, "func @f(%x: f32[2, 3], %b: f32[3]) -> (f32[2, 3], f32[2]) {\n"
                 "  %y = add(%x, %b) : f32[2, 3]\n"
                 "  %r = relu(%y) : f32[2, 3]\n"
                 "  %s = sum(%r) {axes = [1]} : f32[2]\n"
                 "  return %r, %s\n"
                 "}\n");
    fusec_free(t);
    CHECK_EQ_INT(fusec_graph_num_inputs(g), 2);
    CHECK_EQ_INT(fusec_graph_num_outputs(g), 2);
    const char *name = NULL;
    fusec_tensor d;
    CHECK_EQ_INT(fusec_graph_input_info(g, 1, &name, &d), FUSEC_OK);
    CHECK_STR(name, "b");
    CHECK_EQ_INT(d.dtype, FUSEC_DTYPE_F32);
    CHECK_EQ_INT(d.rank, 1);
    CHECK_EQ_INT(d.shape[0], 3);
    CHECK(d.data == NULL);
    CHECK_EQ_INT(fusec_graph_input_info(g, 0, NULL, NULL), FUSEC_OK);
    CHECK_EQ_INT(fusec_graph_output_info(g, 1, &d), FUSEC_OK);
    CHECK_EQ_INT(d.rank, 1);
    CHECK_EQ_INT(d.shape[0], 2);
    CHECK_EQ_INT(fusec_graph_input_info(g, 2, &name, &d), FUSEC_ERR_INVALID);
    CHECK_EQ_INT(fusec_graph_input_info(g, -1, &name, &d), FUSEC_ERR_INVALID);
    CHECK_EQ_INT(fusec_graph_output_info(g, 2, &d), FUSEC_ERR_INVALID);
    CHECK_EQ_INT(fusec_graph_output_info(NULL, 0, &d), FUSEC_ERR_INVALID);
    fusec_graph_destroy(g);
}

TEST(parse_errors) {
    const char *bad = "func @f(%x: f32[2]) -> f32[2] {\n  %y = frobnicate(%x)\n  return %y\n}\n";
    fusec_graph *g = (fusec_graph *)1;
    char *err = NULL;
    CHECK_EQ_INT(fusec_graph_parse(bad, strlen(bad), "bad.ir", NULL, &g, &err), FUSEC_ERR_PARSE);
    CHECK(g == NULL);
    CHECK(contains(err, "bad.ir:2:"));
    CHECK(contains(err, "error: "));
    CHECK(contains(err, "frobnicate"));
    CHECK(contains(err, "^")); /* the caret line */
    fusec_free(err);

    /* errmsg may be NULL; filename may be NULL */
    CHECK_EQ_INT(fusec_graph_parse(bad, strlen(bad), NULL, NULL, &g, NULL), FUSEC_ERR_PARSE);
    CHECK(g == NULL);

    /* a shape error is a parse error too, with the location */
    const char *shape = "func @f(%a: f32[2, 3], %b: f32[4]) -> f32[2, 3] {\n"
                        "  %c = add(%a, %b)\n  return %c\n}\n";
    CHECK_EQ_INT(fusec_graph_parse(shape, strlen(shape), "s.ir", NULL, &g, &err), FUSEC_ERR_PARSE);
    CHECK(contains(err, "s.ir:2:"));
    CHECK(contains(err, "cannot broadcast %a (f32[2, 3]) with %b (f32[4])"));
    fusec_free(err);

    /* the empty text, and argument misuse */
    CHECK_EQ_INT(fusec_graph_parse("", 0, "e.ir", NULL, &g, &err), FUSEC_ERR_PARSE);
    fusec_free(err);
    CHECK_EQ_INT(fusec_graph_parse(bad, strlen(bad), "x.ir", NULL, NULL, &err), FUSEC_ERR_INVALID);
    CHECK(err != NULL);
    fusec_free(err);
    CHECK_EQ_INT(fusec_graph_parse(NULL, 5, "x.ir", NULL, &g, &err), FUSEC_ERR_INVALID);
    CHECK(g == NULL);
    fusec_free(err);
}

TEST(parse_selects_func) {
    const char *two = "func @a(%x: f32[2]) -> f32[2] {\n  %y = neg(%x)\n  return %y\n}\n"
                      "func @main(%x: f32[3]) -> f32[3] {\n  %y = exp(%x)\n  return %y\n}\n";
    fusec_graph *g = NULL;
    char *err = NULL;
    fusec_tensor d;
    CHECK_EQ_INT(fusec_graph_parse(two, strlen(two), "two.ir", NULL, &g, &err), FUSEC_OK);
    CHECK_EQ_INT(fusec_graph_input_info(g, 0, NULL, &d), FUSEC_OK);
    CHECK_EQ_INT(d.shape[0], 3);
    fusec_graph_destroy(g);
    CHECK_EQ_INT(fusec_graph_parse(two, strlen(two), "two.ir", "a", &g, &err), FUSEC_OK);
    CHECK_EQ_INT(fusec_graph_input_info(g, 0, NULL, &d), FUSEC_OK);
    CHECK_EQ_INT(d.shape[0], 2);
    fusec_graph_destroy(g);
    CHECK_EQ_INT(fusec_graph_parse(two, strlen(two), "two.ir", "nope", &g, &err),
                 FUSEC_ERR_PARSE);
    CHECK(contains(err, "nope"));
    CHECK(g == NULL);
    fusec_free(err);
}

TEST(parse_file) {
    char dir[] = "/tmp/fusec_test_api.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/model.ir", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(ADD_RELU_SUM, f);
    fclose(f);

    fusec_graph *g = NULL;
    char *err = NULL;
    CHECK_EQ_INT(fusec_graph_parse_file(path, NULL, &g, &err), FUSEC_OK);
    CHECK(g != NULL && err == NULL);
    CHECK_EQ_INT(fusec_graph_num_outputs(g), 2);
    fusec_graph_destroy(g);

    /* errors in a file name the file */
    f = fopen(path, "w");
    if (f) {
        fputs("func @f() -> f32[] {\n  return %nope\n}\n", f);
        fclose(f);
    }
    CHECK_EQ_INT(fusec_graph_parse_file(path, NULL, &g, &err), FUSEC_ERR_PARSE);
    CHECK(contains(err, "model.ir:2:"));
    fusec_free(err);

    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.ir", dir);
    CHECK_EQ_INT(fusec_graph_parse_file(missing, NULL, &g, &err), FUSEC_ERR_IO);
    CHECK(g == NULL);
    CHECK(contains(err, missing));
    CHECK(contains(err, "No such file"));
    fusec_free(err);

    CHECK_EQ_INT(fusec_graph_parse_file(dir, NULL, &g, &err), FUSEC_ERR_IO); /* a directory */
    CHECK(contains(err, dir));
    fusec_free(err);

    CHECK_EQ_INT(fusec_graph_parse_file(NULL, NULL, &g, &err), FUSEC_ERR_INVALID);
    fusec_free(err);
    CHECK_EQ_INT(fusec_graph_parse_file(missing, NULL, &g, NULL), FUSEC_ERR_IO);

    remove(path);
    rmdir(dir);
}

/* ---- compiling and running ------------------------------------------------------ */

/* x = [[1, -2, 3], [-4, 5, -6]], b = [0.5, 1, -1]
 * x + b = [[1.5, -1, 2], [-3.5, 6, -7]]
 * relu  = [[1.5, 0, 2], [0, 6, 0]]; row sums = [3.5, 6] */
static float X[6] = {1, -2, 3, -4, 5, -6}, B[3] = {0.5f, 1, -1};
static const float R_WANT[6] = {1.5f, 0, 2, 0, 6, 0}, S_WANT[2] = {3.5f, 6};

static bool run_add_relu_sum(const fusec_module *m) {
    fusec_tensor in[2] = {tensor(FUSEC_DTYPE_F32, 2, (int64_t[]){2, 3}, X),
                          tensor(FUSEC_DTYPE_F32, 1, (int64_t[]){3}, B)};
    fusec_tensor out[2];
    char *err = NULL;
    fusec_status st = fusec_module_run(m, in, 2, out, 2, &err);
    bool ok = st == FUSEC_OK;
    if (!ok) fprintf(stderr, "run failed: %s\n", err ? err : "");
    fusec_free(err);
    if (!ok) return false;
    ok = out[0].dtype == FUSEC_DTYPE_F32 && out[0].rank == 2 && out[0].shape[0] == 2 &&
         out[0].shape[1] == 3 && out[1].rank == 1 && out[1].shape[0] == 2 &&
         memcmp(out[0].data, R_WANT, sizeof R_WANT) == 0 &&
         memcmp(out[1].data, S_WANT, sizeof S_WANT) == 0;
    fusec_free(out[0].data);
    fusec_free(out[1].data);
    return ok;
}

TEST(compile_and_run_parsed) {
    fusec_graph *g = parse(ADD_RELU_SUM);
    fusec_module *m = NULL;
    char *err = NULL;
    CHECK_EQ_INT(fusec_compile(g, FUSEC_BACKEND_INTERP, &m, &err), FUSEC_OK);
    CHECK(m != NULL && err == NULL);
    fusec_graph_destroy(g); /* the module keeps its own copy */
    CHECK(run_add_relu_sum(m));
    CHECK(run_add_relu_sum(m)); /* a module runs any number of times */
    fusec_module_destroy(m);
}

TEST(compile_and_run_traced) {
    fusec_graph *g = fusec_graph_create("traced");
    fusec_value *x = fusec_input(g, "x", FUSEC_DTYPE_F32, 2, (int64_t[]){2, 3});
    fusec_value *b = fusec_input(g, "b", FUSEC_DTYPE_F32, 1, (int64_t[]){3});
    fusec_value *r = fusec_relu(g, fusec_add(g, x, b));
    fusec_value *s = fusec_sum(g, r, (int64_t[]){-1}, 1, false);
    CHECK_EQ_INT(fusec_output(g, r), FUSEC_OK);
    CHECK_EQ_INT(fusec_output(g, s), FUSEC_OK);
    fusec_module *m = NULL;
    CHECK_EQ_INT(fusec_compile(g, FUSEC_BACKEND_INTERP, &m, NULL), FUSEC_OK);
    /* tracing on after compiling does not touch the module */
    CHECK(fusec_exp(g, r) != NULL);
    fusec_graph_destroy(g);
    CHECK(run_add_relu_sum(m));
    fusec_module_destroy(m);
}

/* Integers: div truncates toward zero, remainder takes the divisor's sign.
 * a = [7, -7, 7, -7], b = [2, 2, -2, -2]
 * div = [3, -3, -3, 3]; remainder = [1, 1, -1, -1]; a * 3 + 1 = [22, -20, 22, -20]
 * and a scalar literal: (a > 0) = [true, false, true, false] */
TEST(integer_graph) {
    fusec_graph *g = fusec_graph_create("ints");
    int64_t s4[1] = {4};
    fusec_value *a = fusec_input(g, "a", FUSEC_DTYPE_I32, 1, s4);
    fusec_value *b = fusec_input(g, "b", FUSEC_DTYPE_I32, 1, s4);
    fusec_output(g, fusec_div(g, a, b));
    fusec_output(g, fusec_remainder(g, a, b));
    fusec_output(g, fusec_add(g, fusec_mul(g, a, fusec_scalar(g, 3, FUSEC_DTYPE_I32)),
                              fusec_scalar(g, 1, FUSEC_DTYPE_I32)));
    fusec_output(g, fusec_gt(g, a, fusec_scalar(g, 0, FUSEC_DTYPE_I32)));
    CHECK(fusec_graph_error(g) == NULL);
    fusec_module *m = NULL;
    CHECK_EQ_INT(fusec_compile(g, FUSEC_BACKEND_INTERP, &m, NULL), FUSEC_OK);
    fusec_graph_destroy(g);
    int32_t av[4] = {7, -7, 7, -7}, bv[4] = {2, 2, -2, -2};
    fusec_tensor in[2] = {tensor(FUSEC_DTYPE_I32, 1, s4, av), tensor(FUSEC_DTYPE_I32, 1, s4, bv)};
    fusec_tensor out[4];
    CHECK_EQ_INT(fusec_module_run(m, in, 2, out, 4, NULL), FUSEC_OK);
    static const int32_t dv[4] = {3, -3, -3, 3}, rv[4] = {1, 1, -1, -1}, lv[4] = {22, -20, 22, -20};
    static const bool gv[4] = {true, false, true, false};
    CHECK(memcmp(out[0].data, dv, sizeof dv) == 0);
    CHECK(memcmp(out[1].data, rv, sizeof rv) == 0);
    CHECK(memcmp(out[2].data, lv, sizeof lv) == 0);
    CHECK_EQ_INT(out[3].dtype, FUSEC_DTYPE_BOOL);
    CHECK(memcmp(out[3].data, gv, sizeof gv) == 0);
    for (int i = 0; i < 4; i++) fusec_free(out[i].data);

    /* integer division by zero is a run-time error naming the op */
    bv[1] = 0;
    char *err = NULL;
    for (int i = 0; i < 4; i++) out[i].data = (void *)&out[i]; /* must be cleared */
    CHECK_EQ_INT(fusec_module_run(m, in, 2, out, 4, &err), FUSEC_ERR_RUNTIME);
    CHECK(contains(err, "div"));
    CHECK(contains(err, "zero"));
    for (int i = 0; i < 4; i++) CHECK(out[i].data == NULL);
    fusec_free(err);
    fusec_module_destroy(m);
}

TEST(run_errors) {
    fusec_graph *g = parse(ADD_RELU_SUM);
    fusec_module *m = NULL;
    CHECK_EQ_INT(fusec_compile(g, FUSEC_BACKEND_INTERP, &m, NULL), FUSEC_OK);
    fusec_graph_destroy(g);
    fusec_tensor in[2] = {tensor(FUSEC_DTYPE_F32, 2, (int64_t[]){2, 3}, X),
                          tensor(FUSEC_DTYPE_F32, 1, (int64_t[]){3}, B)};
    fusec_tensor out[2];
    char *err = NULL;

    CHECK_EQ_INT(fusec_module_run(m, in, 1, out, 2, &err), FUSEC_ERR_INVALID);
    CHECK(contains(err, "takes 2 inputs, got 1"));
    fusec_free(err);
    CHECK_EQ_INT(fusec_module_run(m, in, 2, out, 1, &err), FUSEC_ERR_INVALID);
    CHECK(contains(err, "returns 2 outputs"));
    fusec_free(err);
    CHECK_EQ_INT(fusec_module_run(m, NULL, 2, out, 2, &err), FUSEC_ERR_INVALID);
    fusec_free(err);
    CHECK_EQ_INT(fusec_module_run(m, in, 2, NULL, 2, &err), FUSEC_ERR_INVALID);
    fusec_free(err);
    CHECK_EQ_INT(fusec_module_run(NULL, in, 2, out, 2, &err), FUSEC_ERR_INVALID);
    fusec_free(err);

    /* wrong shape: names the parameter, the expected and the given type */
    in[1].shape[0] = 4;
    CHECK_EQ_INT(fusec_module_run(m, in, 2, out, 2, &err), FUSEC_ERR_INVALID);
    CHECK(contains(err, "%b"));
    CHECK(contains(err, "f32[3]"));
    CHECK(contains(err, "f32[4]"));
    fusec_free(err);
    in[1].shape[0] = 3;

    /* wrong dtype, wrong rank, invalid dtype, missing data */
    in[0].dtype = FUSEC_DTYPE_F64;
    CHECK_EQ_INT(fusec_module_run(m, in, 2, out, 2, &err), FUSEC_ERR_INVALID);
    CHECK(contains(err, "%x"));
    CHECK(contains(err, "f64[2, 3]"));
    fusec_free(err);
    in[0].dtype = (fusec_dtype)77;
    CHECK_EQ_INT(fusec_module_run(m, in, 2, out, 2, &err), FUSEC_ERR_INVALID);
    fusec_free(err);
    in[0].dtype = FUSEC_DTYPE_F32;
    in[0].rank = 12;
    CHECK_EQ_INT(fusec_module_run(m, in, 2, out, 2, &err), FUSEC_ERR_INVALID);
    fusec_free(err);
    in[0].rank = 2;
    in[0].data = NULL;
    CHECK_EQ_INT(fusec_module_run(m, in, 2, out, 2, NULL), FUSEC_ERR_INVALID);
    in[0].data = X;

    CHECK(run_add_relu_sum(m)); /* still fine after all that */
    fusec_module_destroy(m);
    fusec_module_destroy(NULL);
}

TEST(compile_errors) {
    fusec_module *m = (fusec_module *)1;
    char *err = NULL;
    CHECK_EQ_INT(fusec_compile(NULL, FUSEC_BACKEND_INTERP, &m, &err), FUSEC_ERR_INVALID);
    CHECK(m == NULL);
    fusec_free(err);

    fusec_graph *g = parse(ADD_RELU_SUM);
    /* cuda: not built (no toolkit), no driver (toolkit, no GPU), or a module */
    fusec_status st = fusec_compile(g, FUSEC_BACKEND_CUDA, &m, &err);
    if (st == FUSEC_OK) {
        fusec_module_destroy(m);
        m = NULL;
    } else {
        CHECK(st == FUSEC_ERR_UNSUPPORTED || st == FUSEC_ERR_BACKEND);
        CHECK(contains(err, "backend 'cuda' is not built into this fusec") ||
              contains(err, "no CUDA driver found"));
    }
    fusec_free(err);
    CHECK_EQ_INT(fusec_compile(g, FUSEC_BACKEND_CPU, &m, &err), FUSEC_ERR_UNSUPPORTED);
    CHECK_STR(err, "fusec_compile: backend 'cpu' is not built into this fusec");
    fusec_free(err);
    CHECK_EQ_INT(fusec_compile(g, (fusec_backend)9, &m, &err), FUSEC_ERR_INVALID);
    CHECK(contains(err, "9"));
    fusec_free(err);
    CHECK_EQ_INT(fusec_compile(g, FUSEC_BACKEND_INTERP, NULL, &err), FUSEC_ERR_INVALID);
    fusec_free(err);
    fusec_graph_destroy(g);

    g = fusec_graph_create("empty");
    fusec_input(g, "x", FUSEC_DTYPE_F32, 0, NULL);
    CHECK_EQ_INT(fusec_compile(g, FUSEC_BACKEND_INTERP, &m, &err), FUSEC_ERR_INVALID);
    CHECK(contains(err, "no outputs"));
    fusec_free(err);
    fusec_graph_destroy(g);

    g = fusec_graph_create("broken");
    fusec_value *x = fusec_input(g, "x", FUSEC_DTYPE_I32, 0, NULL);
    fusec_output(g, fusec_exp(g, x));
    CHECK_EQ_INT(fusec_compile(g, FUSEC_BACKEND_INTERP, &m, &err), FUSEC_ERR_INVALID);
    CHECK(contains(err, "fusec_exp: "));
    CHECK(m == NULL);
    fusec_free(err);
    fusec_graph_destroy(g);
}

/* A module is immutable: run it from several threads at once. */
enum { NTHREADS = 4, NRUNS = 50 };

static void *run_many(void *arg) {
    const fusec_module *m = arg;
    for (int i = 0; i < NRUNS; i++)
        if (!run_add_relu_sum(m)) return (void *)1;
    return NULL;
}

TEST(run_from_threads) {
    fusec_graph *g = parse(ADD_RELU_SUM);
    fusec_module *m = NULL;
    CHECK_EQ_INT(fusec_compile(g, FUSEC_BACKEND_INTERP, &m, NULL), FUSEC_OK);
    fusec_graph_destroy(g);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) CHECK(pthread_create(&th[i], NULL, run_many, m) == 0);
    for (int i = 0; i < NTHREADS; i++) {
        void *r = (void *)1;
        pthread_join(th[i], &r);
        CHECK(r == NULL);
    }
    fusec_module_destroy(m);
}

/* f16 and bf16 results come back as their bit patterns. */
TEST(half_outputs) {
    const char *text = "func @h(%x: f32[3]) -> (f16[3], bf16[3]) {\n"
                       "  %a = cast(%x) {to = f16}\n"
                       "  %b = cast(%x) {to = bf16}\n"
                       "  return %a, %b\n}\n";
    fusec_graph *g = parse(text);
    fusec_module *m = NULL;
    CHECK_EQ_INT(fusec_compile(g, FUSEC_BACKEND_INTERP, &m, NULL), FUSEC_OK);
    fusec_graph_destroy(g);
    float xv[3] = {1.0f, -2.0f, 0.5f};
    fusec_tensor in = tensor(FUSEC_DTYPE_F32, 1, (int64_t[]){3}, xv);
    fusec_tensor out[2];
    CHECK_EQ_INT(fusec_module_run(m, &in, 1, out, 2, NULL), FUSEC_OK);
    static const uint16_t h[3] = {0x3C00, 0xC000, 0x3800}, bh[3] = {0x3F80, 0xC000, 0x3F00};
    CHECK_EQ_INT(out[0].dtype, FUSEC_DTYPE_F16);
    CHECK(memcmp(out[0].data, h, sizeof h) == 0);
    CHECK_EQ_INT(out[1].dtype, FUSEC_DTYPE_BF16);
    CHECK(memcmp(out[1].data, bh, sizeof bh) == 0);
    fusec_free(out[0].data);
    fusec_free(out[1].data);
    fusec_module_destroy(m);
}

TEST_MAIN(status_strings, version, dtypes, tensor_numel, parse_print_and_info, parse_errors,
          parse_selects_func, parse_file, compile_and_run_parsed, compile_and_run_traced,
          integer_graph, run_errors, compile_errors, run_from_threads, half_outputs)
