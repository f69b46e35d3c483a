/*
 * test_cg_cuda.c - unit tests of the CUDA code generator (codegen/cuda*.c).
 *
 * The first tests plan small graphs the way the runtime does (the default
 * pipeline, fusion, memory planning) and check the generated source: kernel
 * names, the comment listing the fused ops, whether the vector path and
 * the 2-D launch were chosen, that a broadcast bias is indexed without a
 * division, 32- or 64-bit indices, the shape of reduction kernels (row,
 * persistent or looped, split, column), library kernels, and the error for
 * an undecomposed composite.
 *
 * The last test compiles generated kernels through NVRTC (where the build
 * found CUDA): every kernel of every .ir file in examples/, of every tests/lit
 * .ir file that parses, and of 300 generated graphs (tests/diff/gen.c)
 * for sm_90; the examples, lit files and 60 graphs for sm_80; the examples
 * once more with the bit-level f16/bf16 helpers (-DFC_SOFT_HALF).  Kernels
 * are batched into programs (tests/cg/nvrtc_batch.h) and compiled on two
 * threads; a failure prints NVRTC's log and the kernel's source.
 *
 * The generator's semantics (that the kernels compute what the plan
 * executor computes) are checked on the host by tests/cg/cgemu.c, and on a
 * GPU by the differential suite.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>

#include "tests/cg/cg_plans.h"
#include "test.h"

/* The random graph generator is a test helper of its own translation unit
 * (tests/diff/gen.c); unit tests link only the library, so it is included
 * here whole. */
#include "tests/diff/gen.c"

/* ---- helpers ----------------------------------------------------------------- */

typedef struct planned {
    ir_graph *g;
    plan *p;
    cg_cuda_kernel *k; /* one per plan kernel */
    bool ok;
    ir_diag d;
} planned;

static planned plan_text(const char *src, bool pipeline) {
    planned r;
    memset(&r, 0, sizeof r);
    ir_diag_init(&r.d, "test.ir", src, strlen(src));
    r.g = fe_parse(src, strlen(src), "test.ir", NULL, &r.d);
    if (!r.g) {
        fprintf(stderr, "parse failed:\n%s", r.d.out.buf ? r.d.out.buf : "");
        abort();
    }
    pass_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.diag = &r.d;
    if (pipeline && !pass_run_pipeline(r.g, NULL, &ctx)) return r;
    r.p = pass_fuse(r.g, &r.d);
    if (!r.p || !pass_memplan(r.p, &r.d)) return r;
    r.k = calloc((size_t)r.p->nkernels + 1, sizeof *r.k);
    r.ok = true;
    for (int i = 0; i < r.p->nkernels; i++) r.ok &= cg_cuda_generate(r.p, i, &r.k[i], &r.d);
    if (!r.ok && pipeline) fprintf(stderr, "%s", r.d.out.buf ? r.d.out.buf : "");
    return r;
}

static void planned_free(planned *r) {
    for (int i = 0; r->k && r->p && i < r->p->nkernels; i++) cg_cuda_kernel_free(&r->k[i]);
    free(r->k);
    if (r->p) plan_free(r->p);
    if (r->g) ir_graph_free(r->g);
    ir_diag_free(&r->d);
}

static bool has(const char *s, const char *needle) { return s && strstr(s, needle) != NULL; }

/* The buffer id of the graph parameter or value named `name`. */
static int buf_named(const plan *p, const char *name) {
    for (int b = 0; b < p->nbufs; b++)
        if (p->bufs[b].value->name && strcmp(p->bufs[b].value->name, name) == 0) return b;
    return -1;
}

/* The text of every line of src that reads buffer b ("(bN + " or "bN["),
 * concatenated. */
static char *lines_reading(const char *src, int b) {
    char pat1[32], pat2[32];
    snprintf(pat1, sizeof pat1, "(b%d + ", b);
    snprintf(pat2, sizeof pat2, " b%d[", b);
    ir_str out = {0};
    for (const char *l = src; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        char *line = malloc(n + 1);
        memcpy(line, l, n);
        line[n] = 0;
        if ((strstr(line, pat1) || strstr(line, pat2)) && !strstr(line, "__global__")) {
            ir_str_puts(&out, line);
            ir_str_putc(&out, '\n');
        }
        free(line);
        l = e ? e + 1 : l + n;
    }
    return ir_str_take(&out);
}

/* ---- pointwise ------------------------------------------------------------------- */

TEST(pointwise_bias_is_vectorized_and_2d) {
    planned r = plan_text("func @f(%x: f32[64, 512], %b: f32[512], %s: f32[64, 1]) -> f32[64, 512] {\n"
                          "  %a = add(%x, %b)\n"
                          "  %y = mul(%a, %s)\n"
                          "  return %y\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    if (!r.ok) return planned_free(&r);
    CHECK_EQ_INT(r.p->nkernels, 1);
    cg_cuda_kernel *k = &r.k[0];
    CHECK(has(k->name, "k0_"));
    CHECK(k->scalar_name && has(k->scalar_name, "_scalar"));
    CHECK(has(k->source, "fusec kernel k0_"));
    CHECK(has(k->source, "%a = add(%x, %b)") && has(k->source, "(line 2)"));
    CHECK(has(k->source, "%y = mul(%a, %s)") && has(k->source, "(line 3)"));
    CHECK(has(k->source, "const uint4 ")); /* 16-byte vector loads */
    CHECK(has(k->source, "blockIdx.y"));   /* rows on y */
    CHECK(!has(k->source, "#include"));
    CHECK(has(k->source, "#define INFINITY"));
    CHECK(has(k->source, "typedef int idx_t"));
    CHECK_EQ_INT(k->nbufs, 4);
    CHECK_EQ_INT(k->block[0] * k->block[1], 256);
    CHECK(k->grid[1] > 1);
    /* the [512] bias and the [64, 1] scale are read without division */
    char *lb = lines_reading(k->source, buf_named(r.p, "b"));
    char *ls = lines_reading(k->source, buf_named(r.p, "s"));
    CHECK(lb && lb[0] && !strchr(lb, '/') && !strchr(lb, '%'));
    CHECK(ls && ls[0] && !strchr(ls, '/') && !strchr(ls, '%'));
    free(lb);
    free(ls);
    planned_free(&r);
}

TEST(pointwise_odd_inner_dim_is_scalar) {
    planned r = plan_text("func @f(%x: f32[5, 7]) -> f32[5, 7] {\n"
                          "  %y = exp(%x)\n"
                          "  return %y\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    if (r.ok) {
        CHECK(r.k[0].scalar_name == NULL);
        CHECK(!has(r.k[0].source, "uint4"));
        CHECK(has(r.k[0].source, "expf("));
        CHECK(r.k[0].grid[0] >= 1);
    }
    planned_free(&r);
}

TEST(index_width_follows_the_largest_tensor) {
    planned small = plan_text("func @f(%x: f32[1024, 1024]) -> f32[1024, 1024] {\n"
                              "  %y = neg(%x)\n"
                              "  return %y\n"
                              "}\n",
                              true);
    planned big = plan_text("func @f(%x: u8[65536, 40000]) -> u8[65536, 40000] {\n"
                            "  %y = add(%x, 1)\n"
                            "  return %y\n"
                            "}\n",
                            true);
    CHECK(small.ok && big.ok);
    if (small.ok) CHECK(has(small.k[0].source, "typedef int idx_t"));
    if (big.ok) CHECK(has(big.k[0].source, "typedef long long idx_t"));
    planned_free(&small);
    planned_free(&big);
}

TEST(half_precision_rounds_every_op) {
    planned r = plan_text("func @f(%x: f16[8, 64], %y: bf16[8, 64]) -> (f16[8, 64], bf16[8, 64]) {\n"
                          "  %a = exp(%x)\n"
                          "  %b = mul(%a, 3.0)\n"
                          "  %c = add(%y, 1.0)\n"
                          "  return %b, %c\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    for (int i = 0; r.ok && i < r.p->nkernels; i++) {
        const char *s = r.k[i].source;
        CHECK(has(s, "fc_rh(") || has(s, "fc_rb("));
        CHECK(has(s, "fc_h2f(") || has(s, "fc_b2f("));
        CHECK(r.k[i].scalar_name != NULL); /* 8 halves = 16 bytes */
    }
    planned_free(&r);
}

TEST(horizontal_fusion_writes_every_output) {
    planned r = plan_text("func @f(%x: f32[32, 64]) -> (f32[32, 64], f32[32, 64]) {\n"
                          "  %a = exp(%x)\n"
                          "  %b = sin(%x)\n"
                          "  return %a, %b\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    if (r.ok && r.p->nkernels == 1) {
        CHECK_EQ_INT(r.p->kernels[0].nout, 2);
        char pa[16], pb[16];
        snprintf(pa, sizeof pa, "(b%d + ", buf_named(r.p, "a"));
        snprintf(pb, sizeof pb, "(b%d + ", buf_named(r.p, "b"));
        CHECK(has(r.k[0].source, pa) && has(r.k[0].source, pb));
    }
    planned_free(&r);
}

TEST(masks_are_predicates_not_buffers) {
    planned r = plan_text("func @f(%s: f32[4, 64, 64]) -> f32[4, 64, 64] {\n"
                          "  %row = iota() {axis = 0} : i64[64, 64]\n"
                          "  %col = iota() {axis = 1} : i64[64, 64]\n"
                          "  %fut = gt(%col, %row)\n"
                          "  %m = where(%fut, -inf, %s)\n"
                          "  %p = softmax(%m) {axis = -1}\n"
                          "  return %p\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    if (r.ok) {
        CHECK_EQ_INT(r.p->nkernels, 1);
        CHECK_EQ_INT(r.k[0].nbufs, 2); /* %s in, %p out: the mask is computed */
        CHECK(has(r.k[0].source, "(-INFINITY)"));
    }
    planned_free(&r);
}

TEST(empty_domain_does_nothing) {
    planned r = plan_text("func @f(%x: f32[0, 4]) -> f32[0, 4] {\n"
                          "  %y = exp(%x)\n"
                          "  return %y\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    if (r.ok && r.p->nkernels == 1) {
        CHECK_EQ_INT(r.k[0].grid[0], 1); /* launching it is harmless */
        CHECK(has(r.k[0].source, "nothing to compute"));
    }
    planned_free(&r);
}

/* ---- reductions ------------------------------------------------------------------ */

TEST(softmax_is_a_persistent_row_kernel) {
    planned r = plan_text("func @f(%x: f32[32, 1024]) -> f32[32, 1024] {\n"
                          "  %p = softmax(%x) {axis = -1}\n"
                          "  return %p\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    if (r.ok) {
        CHECK_EQ_INT(r.p->nkernels, 1);
        CHECK_EQ_INT(r.p->kernels[0].kind, PLAN_REDUCE);
        const char *s = r.k[0].source;
        CHECK(has(s, "row reduction") && has(s, "persistent"));
        CHECK(has(s, "fc_block_reduce<") || has(s, "fc_warp_reduce("));
        const char *mx = strstr(s, "fc_max()("), *sm = strstr(s, "fc_sum()(");
        CHECK(mx && sm && mx < sm); /* the max stage first */
        CHECK(has(s, "expf("));
        CHECK(r.k[0].scalar_name != NULL);
        CHECK(r.k[0].next == NULL);
    }
    planned_free(&r);
}

TEST(long_rows_loop) {
    planned r = plan_text("func @f(%x: f32[64, 65536]) -> f32[64, 65536] {\n"
                          "  %p = softmax(%x) {axis = -1}\n"
                          "  return %p\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    if (r.ok) {
        CHECK(has(r.k[0].source, "looped"));
        CHECK(has(r.k[0].source, "for (idx_t q = tid;"));
        CHECK_EQ_INT(r.k[0].block[0], 1024);
    }
    planned_free(&r);
}

TEST(few_long_rows_split) {
    planned r = plan_text("func @f(%x: f32[1048576]) -> f32[] {\n"
                          "  %s = sum(%x)\n"
                          "  return %s\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    if (r.ok) {
        cg_cuda_kernel *k = &r.k[0];
        CHECK(has(k->name, "_partial"));
        CHECK(k->next != NULL);
        if (k->next) {
            CHECK(has(k->next->name, "_finish"));
            CHECK_EQ_INT(k->next->nscratch, 1);
            CHECK(k->next->source != NULL);
        }
        CHECK_EQ_INT(k->nscratch, 1);
        CHECK(k->scratch_bytes[0] >= 8 * (int64_t)k->grid[0]);
        CHECK(k->grid[0] >= 2);
        CHECK(has(k->source, "split reduction"));
        CHECK(!has(k->source, "atomic"));
    }
    planned_free(&r);
}

TEST(few_long_columns_split) {
    planned r = plan_text("func @f(%x: f32[8, 16, 12, 12]) -> f32[16] {\n"
                          "  %m = mean(%x) {axes = [0, 2, 3]}\n"
                          "  return %m\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    if (r.ok) {
        CHECK(has(r.k[0].source, "split column reduction"));
        CHECK(r.k[0].next != NULL);
        CHECK(r.k[0].grid[1] >= 2); /* parts on y */
    }
    planned_free(&r);
}

TEST(column_reduction) {
    planned r = plan_text("func @f(%x: f32[256, 64]) -> f32[64] {\n"
                          "  %s = sum(%x) {axes = [0]}\n"
                          "  return %s\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    if (r.ok) {
        CHECK(has(r.k[0].source, "column reduction"));
        CHECK(has(r.k[0].source, "for (idx_t e = 0; e < 256; e++)"));
    }
    planned_free(&r);
}

TEST(argmax_and_integer_sums) {
    planned r = plan_text("func @f(%x: i32[16, 100], %y: f32[16, 100]) -> (i64[16], i64[16], f32[16]) {\n"
                          "  %a = argmax(%x) {axis = 1}\n"
                          "  %s = sum(%x) {axes = [1]}\n"
                          "  %m = min(%y) {axes = [1]}\n"
                          "  return %a, %s, %m\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    bool arg = false, isum = false, fmin = false;
    for (int i = 0; r.ok && i < r.p->nkernels; i++) {
        arg |= has(r.k[i].source, "fc_arg_merge<true>");
        isum |= has(r.k[i].source, "fc_isum()");
        fmin |= has(r.k[i].source, "fc_min()");
    }
    CHECK(arg && isum && fmin);
    planned_free(&r);
}

/* ---- library kernels ---------------------------------------------------------------- */

TEST(matmul_with_epilogue) {
    planned r = plan_text("func @f(%a: f32[2, 100, 64], %w: f32[96, 64], %b: f32[96]) -> f32[2, 100, 96] {\n"
                          "  %y = linear(%a, %w, %b)\n"
                          "  %z = relu(%y)\n"
                          "  return %z\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    bool gemm = false;
    for (int i = 0; r.ok && i < r.p->nkernels; i++) {
        if (r.p->kernels[i].kind != PLAN_LIBRARY) continue;
        gemm = true;
        const char *s = r.k[i].source;
        CHECK(has(s, "As[16][64 + 1]") && has(s, "fmaf("));
        CHECK(has(s, "matmul"));
        CHECK(has(s, "relu(") && has(s, "0.0f ? 0.0f"));
        CHECK_EQ_INT(r.k[i].block[0], 256);
    }
    CHECK(gemm);
    planned_free(&r);
}

TEST(conv_and_pools) {
    planned r = plan_text("func @f(%x: f32[2, 4, 9, 9], %w: f32[8, 2, 3, 3], %b: f32[8]) -> (f32[2, 8, 5, 5], f32[2, 8, 2, 2]) {\n"
                          "  %c = conv2d(%x, %w, %b) {stride = [2, 2], padding = [1, 1], groups = 2}\n"
                          "  %r = relu(%c)\n"
                          "  %p = max_pool2d(%r) {kernel = [2, 2]}\n"
                          "  %q = adaptive_avg_pool2d(%p) {output_size = [2, 2]}\n"
                          "  return %r, %q\n"
                          "}\n",
                          true);
    CHECK(r.ok);
    int lib = 0;
    bool implicit = false;
    for (int i = 0; r.ok && i < r.p->nkernels; i++) {
        lib += r.p->kernels[i].kind == PLAN_LIBRARY;
        if (has(r.k[i].source, "conv2d as an implicit GEMM")) {
            implicit = true;
            /* padded taps read 0 and are multiplied like any other (PyTorch's
             * zero padding: 0 * an inf weight is NaN) */
            CHECK(!has(r.k[i].source, "nonfinite"));
        }
    }
    CHECK(lib >= 3);
    CHECK(implicit);
    planned_free(&r);
}

TEST(undecomposed_composite_is_a_clear_error) {
    planned r = plan_text("func @f(%x: f32[4, 8]) -> f32[4, 8] {\n"
                          "  %p = softmax(%x) {axis = -1}\n"
                          "  return %p\n"
                          "}\n",
                          false);
    CHECK(!r.ok);
    CHECK(has(r.d.out.buf, "softmax is not supported by the cuda backend without the decompose pass"));
    planned_free(&r);
}

/* ---- NVRTC ------------------------------------------------------------------------ */

typedef struct job {
    cgt_item *items;
    int n;
    const char *arch;
    const char *const *extra;
    int next, failed; /* shared: next item to take, failures */
    pthread_mutex_t mu;
} job;

enum { BATCH = 48 };

static void *worker(void *arg) {
    job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        int at = j->next;
        j->next += BATCH;
        pthread_mutex_unlock(&j->mu);
        if (at >= j->n) break;
        int cnt = j->n - at < BATCH ? j->n - at : BATCH;
        int bad = cgt_compile_batch(j->items + at, cnt, j->arch, j->extra, stderr);
        pthread_mutex_lock(&j->mu);
        j->failed += bad;
        pthread_mutex_unlock(&j->mu);
    }
    return NULL;
}

/* Compile items on two threads; the number of failures. */
static int compile_all(cgt_item *items, int n, const char *arch, const char *const *extra) {
    job j = {.items = items, .n = n, .arch = arch, .extra = extra};
    pthread_mutex_init(&j.mu, NULL);
    pthread_t t[2];
    int started = 0;
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, worker, &j) == 0) started++;
    if (started == 0) worker(&j);
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    pthread_mutex_destroy(&j.mu);
    return j.failed;
}

static const char *src_dir(void) {
    const char *s = getenv("FUSEC_SOURCE_DIR");
    return s && *s ? s : ".";
}

/* Plan every .ir file under dir (recursively, sorted by name). */
static int plan_dir(const char *dir, cgt_item **items, int *n, int *cap, int *graphs) {
    struct dirent **ents = NULL;
    int ne = scandir(dir, &ents, NULL, alphasort), fails = 0;
    for (int i = 0; i < ne; i++) {
        const char *nm = ents[i]->d_name;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, nm);
        struct stat st;
        if (nm[0] != '.' && stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                fails += plan_dir(path, items, n, cap, graphs);
            } else if (strlen(nm) > 3 && strcmp(nm + strlen(nm) - 3, ".ir") == 0) {
                char *text = cgt_read_file(path, NULL);
                if (text) {
                    cgt_status s = cgt_plan_kernels(text, path, items, n, cap, stderr);
                    fails += s == CGT_FAIL;
                    *graphs += s == CGT_OK;
                    free(text);
                }
            }
        }
        free(ents[i]);
    }
    free(ents);
    return fails;
}

TEST(every_kernel_compiles_with_nvrtc) {
    if (!cgt_available()) {
        printf("skip: built without NVRTC\n");
        return;
    }
    cgt_item *items = NULL;
    int n = 0, cap = 0, graphs = 0, fails = 0;
    char path[1024];
    snprintf(path, sizeof path, "%s/examples", src_dir());
    fails += plan_dir(path, &items, &n, &cap, &graphs);
    int n_examples = n;
    snprintf(path, sizeof path, "%s/tests/lit", src_dir());
    fails += plan_dir(path, &items, &n, &cap, &graphs);
    int n_files = n;
    int n_sm80 = n;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        char *text = gen_graph(seed, NULL), label[64];
        snprintf(label, sizeof label, "generated graph, seed %" PRIu64, seed);
        if (!text) continue;
        cgt_status s = cgt_plan_kernels(text, label, &items, &n, &cap, stderr);
        if (s != CGT_OK) fprintf(stderr, "%s:\n%s\n", label, text);
        fails += s != CGT_OK;
        graphs++;
        if (seed == 60) n_sm80 = n;
        free(text);
    }
    CHECK_EQ_INT(fails, 0);
    CHECK(n_examples >= 5);
    CHECK(n_files > n_examples);
    printf("compiling %d kernels of %d graphs for sm_90, %d for sm_80, %d with FC_SOFT_HALF\n", n, graphs, n_sm80,
           n_examples);
    CHECK_EQ_INT(compile_all(items, n, "sm_90", NULL), 0);
    CHECK_EQ_INT(compile_all(items, n_sm80, "sm_80", NULL), 0);
    static const char *const soft[] = {"-DFC_SOFT_HALF", NULL};
    CHECK_EQ_INT(compile_all(items, n_examples, "sm_90", soft), 0);
    (void)n_files;
    cgt_items_free(items, n);
}

TEST_MAIN(pointwise_bias_is_vectorized_and_2d, pointwise_odd_inner_dim_is_scalar,
          index_width_follows_the_largest_tensor, half_precision_rounds_every_op,
          horizontal_fusion_writes_every_output, masks_are_predicates_not_buffers, empty_domain_does_nothing,
          softmax_is_a_persistent_row_kernel, long_rows_loop, few_long_rows_split, few_long_columns_split,
          column_reduction,
          argmax_and_integer_sums, matmul_with_epilogue, conv_and_pools, undecomposed_composite_is_a_clear_error,
          every_kernel_compiles_with_nvrtc)
