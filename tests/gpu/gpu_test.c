/*
 * gpu_test.c - the CUDA backend on a real GPU, against the reference
 * interpreter.  Run by tests/gpu/run_gpu.sh on the GPU machine; anywhere
 * else it skips cleanly.
 *
 *   gpu_test [--require-gpu] [--fake-driver] [--seed S] [--count N] [--jobs J]
 *            [--only GROUP,GROUP...] [-v] [FILES.ir...]
 *
 * Groups, in order:
 *   basic         one small graph, host tensors, against the interpreter
 *   diff          the differential suite: N generated graphs (tests/diff/gen.h,
 *                 seeds S..S+N-1, default 2000) and every FILE given (examples,
 *                 lit test graphs, benchmarks; a file that does not parse, whose
 *                 reference run fails or that is too big to interpret is
 *                 skipped), each compiled for FUSEC_BACKEND_CUDA and compared
 *                 with FUSEC_BACKEND_INTERP on the same random inputs with the
 *                 design's tolerances (tests/diff/compare.h); J threads at once.
 *                 Plain tolerances: difftest's noise oracle (which excuses
 *                 elements a one-ulp rounding difference upstream flips) is
 *                 not repeated here, so a mismatch that `difftest --backend
 *                 cuda` does not report is rounding sensitivity, not a bug
 *   big           tensors of more than 2^31 elements (u8, 2 GiB each): an
 *                 elementwise op with a broadcast and a row sum, checked on the
 *                 host element by element (64-bit indexing)
 *   device_api    fusec_module_run_device: a caller's stream and the default
 *                 stream, repeated pointers with new data each time (CUDA
 *                 graph replay), new pointers, a result returned twice and an
 *                 input returned, argument errors
 *   misaligned    device inputs and outputs at offsets that are not 16-byte
 *                 aligned (the scalar entry points) against aligned ones and
 *                 the interpreter; a pointer not aligned to its element size
 *   threads       one module run from 8 threads at once
 *   cache         compiling a graph twice: the second time from the kernel cache
 *   bench         rt_bench (`fusec bench`) on a GEMM and a softmax: sane timings
 *                 for the whole graph and one per kernel, copies past twice the
 *                 L2, replay on the same inputs only, compile times with an
 *                 empty and a warm cache that leave the user's cache alone and
 *                 remove their own; the CPU backend's numbers; a bad input
 *   nvrtc_failure FUSEC_CUDA_INJECT_NVRTC_FAILURE=1: a clear error with NVRTC's
 *                 log and the path of the saved source
 *   oom           a plan whose arena needs 250 GB: fusec_compile fails naming
 *                 the bytes; the GPU still works afterwards
 *   lost_context  (in a child process) a kernel fed a bad device address: the
 *                 context is reported lost, later calls fail fast, nothing hangs
 *
 * Without a CUDA driver (or in a fusec built without CUDA) it prints "SKIP:
 * no CUDA driver ..." and "0 passed, 0 failed, N skipped" and exits 0;
 * --require-gpu makes that a failure (run_gpu.sh passes it).  Otherwise the
 * last line is "P passed, F failed, S skipped" (groups), exit 1 if F > 0.
 *
 * The test reaches device memory through the driver API itself (dlopen, as
 * a user of fusec_module_run_device would through cudaMalloc), in the same
 * primary context fusec uses.
 *
 * --fake-driver: FUSEC_CUDA_DRIVER names tests/gpu/fake_cuda.c's stand-in,
 * which runs no kernels.  Every flow above still runs (compiling, loading,
 * host and device runs, graph capture and replay, threads, the injected
 * NVRTC failure, running out of memory, the lost context) and every status
 * and message is checked, but results are not compared, and `big` is
 * skipped.  That is ctest gpu.fake, on machines without a GPU.
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frontend/api.h"
#include "fusec.h"
#include "ir/ir.h"
#include "runtime/bench.h"
#include "runtime/kcache.h"
#include "tests/diff/compare.h"
#include "tests/diff/gen.h"

/* ---- options, checks, reporting ------------------------------------------- */

typedef struct options {
    bool require_gpu, verbose, fake;
    uint64_t seed;
    long count;
    int jobs;
    const char *only;
    int nfiles;
    char **files;
} options;

static options opt = {.seed = 1, .count = 2000};
static atomic_int group_failed;
static pthread_mutex_t print_mu = PTHREAD_MUTEX_INITIALIZER;

#define EXPECT(c)                                                                         \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            pthread_mutex_lock(&print_mu);                                                \
            fprintf(stdout, "  %s:%d: expected: %s\n", __FILE__, __LINE__, #c);           \
            pthread_mutex_unlock(&print_mu);                                              \
            atomic_store(&group_failed, 1);                                               \
        }                                                                                 \
    } while (0)

/* Check status st is `want`; print the message otherwise. */
#define EXPECT_ST(st, want, err)                                                                  \
    do {                                                                                          \
        fusec_status st_ = (st);                                                                  \
        if (st_ != (want)) {                                                                      \
            pthread_mutex_lock(&print_mu);                                                        \
            fprintf(stdout, "  %s:%d: %s gave %s, expected %s%s%s\n", __FILE__, __LINE__, #st,   \
                    fusec_status_string(st_), fusec_status_string(want), (err) ? ":\n" : "",      \
                    (err) ? (const char *)(err) : "");                                            \
            pthread_mutex_unlock(&print_mu);                                                      \
            atomic_store(&group_failed, 1);                                                       \
        }                                                                                         \
    } while (0)

static bool has(const char *s, const char *needle) { return s && strstr(s, needle); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the test's own access to the driver ------------------------------------ */

#define TD_FUNCS(X)                                                                           \
    X(cuInit) X(cuDeviceGet) X(cuDevicePrimaryCtxRetain) X(cuCtxSetCurrent) X(cuMemAlloc)    \
    X(cuMemFree) X(cuMemcpyHtoD) X(cuMemcpyDtoH) X(cuMemsetD8) X(cuStreamCreate)             \
    X(cuStreamDestroy) X(cuStreamSynchronize) X(cuCtxSynchronize) X(cuGetErrorName)

#define TD_FIELD_(f) __typeof__(&f) f;
static struct {
    TD_FUNCS(TD_FIELD_)
} td;
#undef TD_FIELD_
#define TD_STR_(x) #x
#define TD_XSTR_(x) TD_STR_(x)

static const char *driver_lib(void) {
    const char *l = getenv("FUSEC_CUDA_DRIVER");
    return l && *l ? l : "libcuda.so.1";
}

/* Load the driver for the test; false with the reason in why. */
static bool td_load(char *why, size_t n) {
    void *h = dlopen(driver_lib(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, n, "%s", e ? e : "dlopen failed");
        return false;
    }
#define TD_LOOKUP_(f)                                                                   \
    {                                                                                   \
        void *s = dlsym(h, TD_XSTR_(f));                                                \
        if (!s) {                                                                       \
            snprintf(why, n, "the driver has no %s", TD_XSTR_(f));                      \
            return false;                                                               \
        }                                                                               \
        memcpy(&td.f, &s, sizeof s);                                                    \
    }
    TD_FUNCS(TD_LOOKUP_)
#undef TD_LOOKUP_
    return true;
}

/* Make fusec's context (device $FUSEC_CUDA_DEVICE's primary one) current. */
static bool td_enter(void) {
    const char *o = getenv("FUSEC_CUDA_DEVICE");
    CUdevice dev;
    CUcontext ctx;
    return td.cuInit(0) == CUDA_SUCCESS && td.cuDeviceGet(&dev, o && *o ? atoi(o) : 0) == CUDA_SUCCESS &&
           td.cuDevicePrimaryCtxRetain(&ctx, dev) == CUDA_SUCCESS && td.cuCtxSetCurrent(ctx) == CUDA_SUCCESS;
}

#define TD_OK(expr)                                                                           \
    do {                                                                                      \
        CUresult r_ = (expr);                                                                 \
        if (r_ != CUDA_SUCCESS) {                                                             \
            const char *n_ = "?";                                                             \
            td.cuGetErrorName(r_, &n_);                                                       \
            pthread_mutex_lock(&print_mu);                                                    \
            fprintf(stdout, "  %s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, n_);       \
            pthread_mutex_unlock(&print_mu);                                                  \
            atomic_store(&group_failed, 1);                                                   \
        }                                                                                     \
    } while (0)

/* ---- tensors ------------------------------------------------------------------ */

static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s) { return (double)(mix(s) >> 11) * 0x1.0p-53; }

/* Deterministic inputs: normal floats (with NaN, infinities and signed
 * zeros sprinkled in when `specials`), small integers, bools. */
static void fill(fusec_tensor *t, uint64_t seed, bool specials) {
    uint64_t s = seed * 0x100000001b3ull + 12345;
    int64_t n = fusec_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (ir_dtype_is_float(t->dtype)) {
            double u = unit(&s), v = unit(&s);
            if (u < 1e-300) u = 1e-300;
            double x = sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
            if (specials && mix(&s) % 20 == 0) {
                static const double sp[] = {NAN, INFINITY, -INFINITY, -0.0, 0.0};
                x = sp[mix(&s) % 5];
            }
            ir_store_f(t->dtype, t->data, i, x);
        } else if (t->dtype == FUSEC_DTYPE_BOOL) {
            ir_store_i(t->dtype, t->data, i, (int64_t)(mix(&s) & 1));
        } else if (t->dtype == FUSEC_DTYPE_U8) {
            ir_store_i(t->dtype, t->data, i, (int64_t)(mix(&s) % 11));
        } else {
            ir_store_i(t->dtype, t->data, i, (int64_t)(mix(&s) % 11) - 5);
        }
    }
}

static size_t tensor_bytes(const fusec_tensor *t) {
    return (size_t)fusec_tensor_numel(t) * fusec_dtype_size(t->dtype);
}

/* Inputs for g (NULL if a shape is symbolic or memory runs out). */
static fusec_tensor *make_inputs(const fusec_graph *g, uint64_t seed, bool specials) {
    int n = fusec_graph_num_inputs(g);
    fusec_tensor *in = calloc((size_t)(n > 0 ? n : 1), sizeof *in);
    for (int i = 0; in && i < n; i++) {
        const char *name;
        fusec_graph_input_info(g, i, &name, &in[i]);
        for (int k = 0; k < in[i].rank; k++)
            if (in[i].shape[k] < 0) goto fail;
        size_t b = tensor_bytes(&in[i]);
        in[i].data = malloc(b ? b : 1);
        if (!in[i].data) goto fail;
        fill(&in[i], seed * 131 + (uint64_t)i, specials);
    }
    return in;
fail:
    for (int i = 0; i < n; i++) free(in[i].data);
    free(in);
    return NULL;
}

static void free_tensors(fusec_tensor *t, int n) {
    for (int i = 0; t && i < n; i++) fusec_free(t[i].data);
    free(t);
}

/* The tolerance for a graph's results: the loosest of the float dtypes it
 * computes in, the looser f32 one if it reduces, contracts or holds a
 * composite. */
static cmp_tol graph_tolerance(const fusec_graph *g, fusec_dtype out_dt) {
    const ir_graph *ig = g->g;
    bool red = false, seen[FUSEC_DTYPE_COUNT] = {false};
    for (const ir_node *n = ig->first; n; n = n->next) {
        ir_category c = ir_op_get(n->op)->category;
        red |= c == IR_CAT_REDUCTION || c == IR_CAT_CONTRACTION || c == IR_CAT_COMPOSITE;
        if (ir_dtype_is_float(n->out->type.dtype)) seen[n->out->type.dtype] = true;
    }
    for (int i = 0; i < ig->nparams; i++)
        if (ir_dtype_is_float(ig->params[i]->type.dtype)) seen[ig->params[i]->type.dtype] = true;
    cmp_tol tol = cmp_tolerance(out_dt, red, 1.0);
    if (!ir_dtype_is_float(out_dt)) return tol;
    for (int dt = 0; dt < FUSEC_DTYPE_COUNT; dt++) {
        if (!seen[dt]) continue;
        cmp_tol t = cmp_tolerance((fusec_dtype)dt, red, 1.0);
        if (t.rtol > tol.rtol) tol.rtol = t.rtol;
        if (t.afloor > tol.afloor) tol.afloor = t.afloor;
    }
    return tol;
}

/* Elements a graph holds (skip files too big to interpret quickly). */
static double graph_elements(const fusec_graph *g) {
    const ir_graph *ig = g->g;
    double total = 0;
    for (int i = 0; i < ig->nparams; i++) total += (double)ir_type_numel(&ig->params[i]->type);
    for (const ir_node *n = ig->first; n; n = n->next) total += (double)ir_type_numel(&n->out->type);
    return total;
}

static fusec_graph *parse(const char *text, const char *name) {
    fusec_graph *g = NULL;
    char *err = NULL;
    if (fusec_graph_parse(text, strlen(text), name, NULL, &g, &err) != FUSEC_OK) {
        printf("  cannot parse %s:\n%s", name, err ? err : "");
        atomic_store(&group_failed, 1);
    }
    fusec_free(err);
    return g;
}

/* Print a whole report at once (threads share stdout), then free it. */
static void say(ir_str *s) {
    pthread_mutex_lock(&print_mu);
    if (s->buf) fputs(s->buf, stdout);
    pthread_mutex_unlock(&print_mu);
    ir_str_free(s);
}

/* Compare results one by one; false on a mismatch, described in *report
 * under `label` (report NULL: quiet). */
static bool compare_all(const char *label, const fusec_graph *g, const fusec_tensor *ref,
                        const fusec_tensor *got, int n, ir_str *report) {
    if (opt.fake) return true; /* the fake driver computes nothing */
    bool ok = true;
    for (int i = 0; i < n; i++) {
        cmp_result r;
        if (cmp_tensors(&ref[i], &got[i], graph_tolerance(g, ref[i].dtype), NULL, &r)) continue;
        ok = false;
        if (report) ir_str_printf(report, "  %s: output %d (%s): %s\n", label, i, fusec_dtype_name(ref[i].dtype), r.msg);
    }
    return ok;
}

/* compare_all, printing what differs. */
static bool compare_say(const char *label, const fusec_graph *g, const fusec_tensor *ref,
                        const fusec_tensor *got, int n) {
    ir_str s = {0};
    bool ok = compare_all(label, g, ref, got, n, &s);
    say(&s);
    return ok;
}

/* Run g on `in` through a backend; outputs allocated by fusec. */
static fusec_status run_backend(const fusec_graph *g, fusec_backend b, const fusec_tensor *in,
                                fusec_tensor **out, char **err) {
    int nin = fusec_graph_num_inputs(g), nout = fusec_graph_num_outputs(g);
    *out = calloc((size_t)(nout > 0 ? nout : 1), sizeof **out);
    fusec_module *m = NULL;
    fusec_status st = fusec_compile(g, b, &m, err);
    if (st == FUSEC_OK) {
        fusec_free(*err);
        *err = NULL;
        st = fusec_module_run(m, in, nin, *out, nout, err);
    }
    fusec_module_destroy(m);
    return st;
}

/* ---- basic ---------------------------------------------------------------------- */

static const char *const graph_ew =
    "func @ew(%x: f32[64, 100], %b: f32[100]) -> (f32[64, 100], f32[64]) {\n"
    "  %y = add(%x, %b)\n"
    "  %z = tanh(%y)\n"
    "  %s = softmax(%z) {axis = -1}\n"
    "  %r = sum(%x) {axes = [1]}\n"
    "  return %s, %r\n"
    "}\n";

/* Graph g against the interpreter on seeded inputs.  1 pass, 0 fail, -1 skip. */
static int diff_one(const char *label, const char *text, uint64_t seed, bool generated, bool verbose) {
    fusec_graph *g = NULL;
    char *err = NULL;
    if (fusec_graph_parse(text, strlen(text), label, NULL, &g, &err) != FUSEC_OK) {
        fusec_free(err);
        if (!generated) return -1;
        pthread_mutex_lock(&print_mu);
        printf("FAIL %s: the generated graph does not parse\n%s", label, text);
        pthread_mutex_unlock(&print_mu);
        return 0;
    }
    int rc = -1;
    int nout = fusec_graph_num_outputs(g);
    fusec_tensor *in = NULL, *ref = NULL, *got = NULL;
    if (!generated && graph_elements(g) > 2e7) goto done;
    in = make_inputs(g, seed, seed % 4 == 0);
    if (!in) goto done;
    fusec_status st = run_backend(g, FUSEC_BACKEND_INTERP, in, &ref, &err);
    if (st != FUSEC_OK) {
        if (verbose) printf("skip %s: the reference run fails: %s", label, err ? err : "\n");
        goto done; /* a graph the interpreter rejects at run time (or a diagnostics test) */
    }
    fusec_free(err);
    err = NULL;
    st = run_backend(g, FUSEC_BACKEND_CUDA, in, &got, &err);
    rc = 0;
    if (st != FUSEC_OK) {
        pthread_mutex_lock(&print_mu);
        printf("FAIL %s: the cuda backend failed (%s):\n%s%s", label, fusec_status_string(st), err ? err : "",
               generated ? text : "");
        pthread_mutex_unlock(&print_mu);
        goto done;
    }
    ir_str rep = {0};
    ir_str_printf(&rep, "FAIL %s: outputs differ\n", label);
    if (compare_all(label, g, ref, got, nout, &rep)) {
        rc = 1;
        ir_str_free(&rep);
    } else {
        if (generated) ir_str_puts(&rep, text);
        say(&rep);
    }
done:
    fusec_free(err);
    free_tensors(in, fusec_graph_num_inputs(g));
    free_tensors(ref, nout);
    free_tensors(got, nout);
    fusec_graph_destroy(g);
    return rc;
}

static void group_basic(void) {
    EXPECT(diff_one("basic", graph_ew, 7, true, true) == 1);
}

/* ---- diff ------------------------------------------------------------------------ */

typedef struct diff_state {
    atomic_long next, passed, failed, skipped;
    long total;
    double t0;
} diff_state;

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    ir_str s = {0};
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < k; i++) ir_str_putc(&s, buf[i]);
    fclose(f);
    if (!s.buf) ir_str_puts(&s, "");
    return ir_str_take(&s);
}

static void *diff_worker(void *arg) {
    diff_state *ds = arg;
    gen_opts go;
    gen_opts_default(&go);
    for (;;) {
        long c = atomic_fetch_add(&ds->next, 1);
        if (c >= ds->total) break;
        int r;
        if (c < opt.count) {
            uint64_t seed = opt.seed + (uint64_t)c;
            char label[64];
            snprintf(label, sizeof label, "seed %" PRIu64, seed);
            char *text = gen_graph(seed, &go);
            r = text ? diff_one(label, text, seed, true, opt.verbose) : 0;
            free(text);
        } else {
            const char *path = opt.files[c - opt.count];
            char *text = read_text(path);
            r = text ? diff_one(path, text, opt.seed + 1000003u * (uint64_t)(c - opt.count + 1), false, opt.verbose)
                     : -1;
            free(text);
        }
        if (r > 0) atomic_fetch_add(&ds->passed, 1);
        else if (r == 0) atomic_fetch_add(&ds->failed, 1);
        else atomic_fetch_add(&ds->skipped, 1);
        long done = atomic_load(&ds->passed) + atomic_load(&ds->failed) + atomic_load(&ds->skipped);
        if (done % 250 == 0) {
            pthread_mutex_lock(&print_mu);
            printf("  diff: %ld of %ld cases, %.0f s\n", done, ds->total, now_s() - ds->t0);
            fflush(stdout);
            pthread_mutex_unlock(&print_mu);
        }
    }
    return NULL;
}

static void group_diff(void) {
    diff_state ds = {.total = opt.count + opt.nfiles, .t0 = now_s()};
    int nt = opt.jobs > 0 ? opt.jobs : 1;
    pthread_t *t = calloc((size_t)nt, sizeof *t);
    int started = 0;
    for (int i = 0; t && i < nt; i++, started++)
        if (pthread_create(&t[i], NULL, diff_worker, &ds) != 0) break;
    if (!started) diff_worker(&ds);
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    free(t);
    printf("  diff: %ld generated graphs and %d files: %ld passed, %ld failed, %ld skipped (%.0f s, %d threads)\n",
           opt.count, opt.nfiles, atomic_load(&ds.passed), atomic_load(&ds.failed), atomic_load(&ds.skipped),
           now_s() - ds.t0, nt);
    if (atomic_load(&ds.failed)) atomic_store(&group_failed, 1);
}

/* ---- big: more than 2^31 elements ------------------------------------------------------ */

static void group_big(void) {
    const int64_t R = 3, C = 715827883; /* R * C = 2^31 + 1 */
    static const char *const text =
        "func @big(%x: u8[3, 715827883], %b: u8[715827883]) -> (u8[3, 715827883], i64[3]) {\n"
        "  %y = add(%x, %b)\n"
        "  %s = sum(%x) {axes = [1]}\n"
        "  return %y, %s\n"
        "}\n";
    fusec_graph *g = parse(text, "big.ir");
    if (!g) return;
    fusec_module *m = NULL;
    char *err = NULL;
    double t0 = now_s();
    fusec_status st = fusec_compile(g, FUSEC_BACKEND_CUDA, &m, &err);
    EXPECT_ST(st, FUSEC_OK, err);
    fusec_free(err);
    err = NULL;
    fusec_tensor in[2] = {{FUSEC_DTYPE_U8, 2, {R, C}, NULL}, {FUSEC_DTYPE_U8, 1, {C}, NULL}};
    fusec_tensor out[2] = {{0}};
    in[0].data = malloc((size_t)(R * C));
    in[1].data = malloc((size_t)C);
    if (m && in[0].data && in[1].data) {
        uint8_t *x = in[0].data, *b = in[1].data;
        for (int64_t i = 0; i < R * C; i++) x[i] = (uint8_t)((uint64_t)i * 2654435761u >> 13);
        for (int64_t j = 0; j < C; j++) b[j] = (uint8_t)(j * 7 + 3);
        st = fusec_module_run(m, in, 2, out, 2, &err);
        EXPECT_ST(st, FUSEC_OK, err);
        if (st == FUSEC_OK) {
            const uint8_t *y = out[0].data;
            const int64_t *s = out[1].data;
            int64_t bad = 0, first = -1;
            for (int64_t r = 0; r < R; r++) {
                int64_t sum = 0;
                for (int64_t j = 0; j < C; j++) {
                    int64_t i = r * C + j;
                    sum += x[i];
                    if (y[i] != (uint8_t)(x[i] + b[j]) && bad++ == 0) first = i;
                }
                if (s[r] != sum) {
                    printf("  big: sum of row %" PRId64 " is %" PRId64 ", expected %" PRId64 "\n", r, s[r], sum);
                    atomic_store(&group_failed, 1);
                }
            }
            if (bad) {
                printf("  big: %" PRId64 " elements of add differ, the first at flat index %" PRId64 "\n", bad, first);
                atomic_store(&group_failed, 1);
            }
            /* the element past 2^31 specifically */
            EXPECT(y[R * C - 1] == (uint8_t)(x[R * C - 1] + b[C - 1]));
        }
    } else if (m) {
        printf("  big: cannot allocate 2.8 GB of host memory\n");
        atomic_store(&group_failed, 1);
    }
    printf("  big: %.1f s\n", now_s() - t0);
    fusec_free(err);
    fusec_free(out[0].data);
    fusec_free(out[1].data);
    free(in[0].data);
    free(in[1].data);
    fusec_module_destroy(m);
    fusec_graph_destroy(g);
}

/* ---- device memory helpers ----------------------------------------------------------- */

/* A device copy of t at byte offset `off` into a fresh allocation. */
typedef struct dbuf {
    CUdeviceptr base;
    void *ptr; /* base + off */
    size_t bytes;
} dbuf;

static dbuf dev_copy(const fusec_tensor *t, size_t off) {
    dbuf b = {0, NULL, tensor_bytes(t)};
    TD_OK(td.cuMemAlloc(&b.base, b.bytes + off + 64));
    b.ptr = (void *)(uintptr_t)(b.base + off);
    if (b.bytes) TD_OK(td.cuMemcpyHtoD((CUdeviceptr)(uintptr_t)b.ptr, t->data, b.bytes));
    return b;
}

/* Room for result `desc` at offset `off`, filled with 0xFF bytes. */
static dbuf dev_room(const fusec_tensor *desc, size_t off) {
    dbuf b = {0, NULL, tensor_bytes(desc)};
    TD_OK(td.cuMemAlloc(&b.base, b.bytes + off + 64));
    TD_OK(td.cuMemsetD8(b.base, 0xFF, b.bytes + off + 64));
    b.ptr = (void *)(uintptr_t)(b.base + off);
    return b;
}

static void dev_free(dbuf *b) {
    if (b->base) TD_OK(td.cuMemFree(b->base));
    b->base = 0;
}

/* Host copies of device results described by out[] (fusec_free-able). */
static fusec_tensor *to_host(const fusec_tensor *out, int n) {
    fusec_tensor *h = calloc((size_t)n, sizeof *h);
    for (int i = 0; i < n; i++) {
        h[i] = out[i];
        size_t b = tensor_bytes(&out[i]);
        h[i].data = malloc(b ? b : 1);
        if (b) TD_OK(td.cuMemcpyDtoH(h[i].data, (CUdeviceptr)(uintptr_t)out[i].data, b));
    }
    return h;
}

/* ---- device_api ---------------------------------------------------------------------- */

static void group_device_api(void) {
    static const char *const text =
        "func @dev(%x: f32[1000], %y: f32[1000]) -> (f32[1000], f32[1000], f32[1000], f32[]) {\n"
        "  %a = add(%x, %y)\n"
        "  %e = mul(%a, %a)\n"
        "  %s = sum(%e)\n"
        "  return %a, %a, %x, %s\n"
        "}\n";
    fusec_graph *g = parse(text, "dev.ir");
    if (!g) return;
    fusec_module *m = NULL, *mi = NULL;
    char *err = NULL;
    EXPECT_ST(fusec_compile(g, FUSEC_BACKEND_CUDA, &m, &err), FUSEC_OK, err);
    fusec_free(err);
    err = NULL;
    EXPECT_ST(fusec_compile(g, FUSEC_BACKEND_INTERP, &mi, &err), FUSEC_OK, err);
    fusec_free(err);
    err = NULL;
    if (!m || !mi) goto out;
    CUstream s;
    TD_OK(td.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    dbuf xb = {0}, yb = {0}, ob[4] = {{0}};
    for (int round = 0; round < 8; round++) {
        /* rounds 0-4: the same pointers (round 1 captures a graph, 2-4 replay
         * it) with new data; round 5 new pointers; 6-7 the default stream */
        fusec_tensor *in = make_inputs(g, 100 + (uint64_t)round, false);
        fusec_tensor *ref = calloc(4, sizeof *ref);
        EXPECT_ST(fusec_module_run(mi, in, 2, ref, 4, &err), FUSEC_OK, err);
        fusec_free(err);
        err = NULL;
        if (round == 0 || round == 5) {
            dev_free(&xb);
            dev_free(&yb);
            for (int i = 0; i < 4; i++) dev_free(&ob[i]);
            xb = dev_copy(&in[0], 0);
            yb = dev_copy(&in[1], 256);
            for (int i = 0; i < 4; i++) ob[i] = dev_room(&ref[i], 512);
        } else {
            TD_OK(td.cuMemcpyHtoD((CUdeviceptr)(uintptr_t)xb.ptr, in[0].data, xb.bytes));
            TD_OK(td.cuMemcpyHtoD((CUdeviceptr)(uintptr_t)yb.ptr, in[1].data, yb.bytes));
        }
        fusec_tensor din[2] = {in[0], in[1]}, dout[4];
        din[0].data = xb.ptr;
        din[1].data = yb.ptr;
        for (int i = 0; i < 4; i++) {
            memset(&dout[i], 0, sizeof dout[i]);
            dout[i].data = ob[i].ptr;
        }
        CUstream use = round >= 6 ? NULL : s;
        fusec_status st = fusec_module_run_device(m, din, 2, dout, 4, use, &err);
        EXPECT_ST(st, FUSEC_OK, err);
        fusec_free(err);
        err = NULL;
        if (st == FUSEC_OK) {
            EXPECT(dout[0].dtype == FUSEC_DTYPE_F32 && dout[0].rank == 1 && dout[0].shape[0] == 1000);
            EXPECT(dout[3].rank == 0 && dout[0].data == ob[0].ptr);
            TD_OK(use ? td.cuStreamSynchronize(use) : td.cuCtxSynchronize());
            fusec_tensor *got = to_host(dout, 4);
            char label[64];
            snprintf(label, sizeof label, "device_api round %d", round);
            EXPECT(compare_say(label, g, ref, got, 4));
            free_tensors(got, 4);
        }
        free_tensors(in, 2);
        free_tensors(ref, 4);
    }
    /* argument errors */
    {
        fusec_tensor din[2] = {{FUSEC_DTYPE_F32, 1, {1000}, xb.ptr}, {FUSEC_DTYPE_F32, 1, {1000}, yb.ptr}};
        fusec_tensor dout[4];
        for (int i = 0; i < 4; i++) dout[i] = (fusec_tensor){.data = ob[i].ptr};
        EXPECT_ST(fusec_module_run_device(mi, din, 2, dout, 4, NULL, &err), FUSEC_ERR_UNSUPPORTED, err);
        EXPECT(has(err, "FUSEC_BACKEND_CUDA"));
        fusec_free(err);
        EXPECT_ST(fusec_module_run_device(m, din, 1, dout, 4, NULL, &err), FUSEC_ERR_INVALID, err);
        fusec_free(err);
        dout[2].data = NULL;
        EXPECT_ST(fusec_module_run_device(m, din, 2, dout, 4, NULL, &err), FUSEC_ERR_INVALID, err);
        EXPECT(has(err, "device pointer is NULL"));
        fusec_free(err);
        for (int i = 0; i < 4; i++) dout[i] = (fusec_tensor){.data = ob[i].ptr};
        din[1].shape[0] = 999;
        EXPECT_ST(fusec_module_run_device(m, din, 2, dout, 4, NULL, &err), FUSEC_ERR_INVALID, err);
        EXPECT(has(err, "expected f32[1000]"));
        fusec_free(err);
        err = NULL;
    }
    TD_OK(td.cuCtxSynchronize());
    dev_free(&xb);
    dev_free(&yb);
    for (int i = 0; i < 4; i++) dev_free(&ob[i]);
    TD_OK(td.cuStreamDestroy(s));
out:
    fusec_module_destroy(m);
    fusec_module_destroy(mi);
    fusec_graph_destroy(g);
}

/* ---- misaligned ----------------------------------------------------------------------- */

/* Parse text, compile it for CUDA (*m) and run it on the interpreter on
 * seeded inputs (*in, *ref); failures are recorded, and the caller checks
 * *m and *ref before going on. */
static fusec_graph *compile_with_ref(const char *text, const char *name, uint64_t seed, fusec_module **m,
                                     fusec_tensor **in, fusec_tensor **ref) {
    *m = NULL;
    *in = *ref = NULL;
    fusec_graph *g = parse(text, name);
    if (!g) return NULL;
    char *err = NULL;
    EXPECT_ST(fusec_compile(g, FUSEC_BACKEND_CUDA, m, &err), FUSEC_OK, err);
    fusec_free(err);
    err = NULL;
    *in = make_inputs(g, seed, false);
    EXPECT_ST(run_backend(g, FUSEC_BACKEND_INTERP, *in, ref, &err), FUSEC_OK, err);
    fusec_free(err);
    return g;
}

static void group_misaligned(void) {
    static const char *const text =
        "func @mis(%x: f32[256, 64], %y: f32[64], %h: f16[256, 64])\n"
        "    -> (f32[256, 64], f16[256, 64], f32[256], f32[256, 64]) {\n"
        "  %a = add(%x, %y)\n"
        "  %b = mul(%a, 2.0)\n"
        "  %hh = mul(%h, 0.5)\n"
        "  %r = sum(%x) {axes = [1]}\n"
        "  %s = softmax(%x) {axis = -1}\n"
        "  return %b, %hh, %r, %s\n"
        "}\n";
    fusec_module *m;
    fusec_tensor *in, *ref;
    fusec_graph *g = compile_with_ref(text, "mis.ir", 5, &m, &in, &ref);
    if (!g) return;
    char *err = NULL;
    if (!m || !ref) goto out;
    /* offsets in elements: aligned, then every input and output off by one
     * element, then only the f16 input off */
    static const int shifts[3][7] = {{0, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 1, 1, 1, 1}, {0, 0, 3, 0, 0, 0, 0}};
    for (int v = 0; v < 3; v++) {
        dbuf ib[3], ob[4];
        fusec_tensor din[3], dout[4];
        for (int i = 0; i < 3; i++) {
            ib[i] = dev_copy(&in[i], (size_t)shifts[v][i] * fusec_dtype_size(in[i].dtype));
            din[i] = in[i];
            din[i].data = ib[i].ptr;
        }
        for (int i = 0; i < 4; i++) {
            ob[i] = dev_room(&ref[i], (size_t)shifts[v][3 + i] * fusec_dtype_size(ref[i].dtype));
            dout[i] = (fusec_tensor){.data = ob[i].ptr};
        }
        fusec_status st = fusec_module_run_device(m, din, 3, dout, 4, NULL, &err);
        EXPECT_ST(st, FUSEC_OK, err);
        fusec_free(err);
        err = NULL;
        if (st == FUSEC_OK) {
            TD_OK(td.cuCtxSynchronize());
            fusec_tensor *got = to_host(dout, 4);
            char label[64];
            snprintf(label, sizeof label, "misaligned variant %d", v);
            EXPECT(compare_say(label, g, ref, got, 4));
            free_tensors(got, 4);
        }
        /* not even aligned to the element size: refused */
        if (v == 0) {
            din[0].data = (char *)ib[0].ptr + 1;
            EXPECT_ST(fusec_module_run_device(m, din, 3, dout, 4, NULL, &err), FUSEC_ERR_INVALID, err);
            EXPECT(has(err, "not aligned to its element size"));
            fusec_free(err);
            err = NULL;
        }
        for (int i = 0; i < 3; i++) dev_free(&ib[i]);
        for (int i = 0; i < 4; i++) dev_free(&ob[i]);
    }
out:
    free_tensors(in, 3);
    free_tensors(ref, 4);
    fusec_module_destroy(m);
    fusec_graph_destroy(g);
}

/* ---- blas ---------------------------------------------------------------------------- */

/* GEMMs through cuBLASLt: a linear with bias and an epilogue, a batched
 * matmul with a broadcast operand, a transposed operand, a bf16 GEMM that
 * is its kernel's whole output, a 3x3 convolution with a bias (im2col,
 * f32 D, the bias in the epilogue) and a 1x1 one (the image is B); host runs, then device runs whose pointers
 * are 256-byte aligned, 16-byte aligned (cuBLASLt's second algorithm) and
 * only element aligned (fusec's own kernel), each against the interpreter.
 * Run with FUSEC_CUBLASLT=1 (tests/gpu/run_gpu.sh does): they are below the
 * size cuBLASLt takes by default.  With FUSEC_CUBLASLT=0 the same runs
 * check that nothing goes to it. */
static void group_blas(void) {
    static const char *const text =
        "func @blas(%x: f32[96, 80], %w: f32[48, 80], %bias: f32[48], %a: f32[4, 40, 24], %b: f32[24, 56],\n"
        "           %p: bf16[64, 72], %q: bf16[72, 40], %cx: bf16[2, 8, 10, 10], %cw: bf16[12, 8, 3, 3],\n"
        "           %cb: bf16[12], %cw1: bf16[6, 12, 1, 1])\n"
        "    -> (f32[96, 48], f32[4, 40, 56], f32[80, 48], bf16[64, 40], bf16[2, 6, 10, 10]) {\n"
        "  %l = linear(%x, %w, %bias)\n"
        "  %g = gelu(%l)\n"
        "  %m = matmul(%a, %b)\n"
        "  %xt = transpose(%x) {dim0 = 0, dim1 = 1}\n"
        "  %t = matmul(%xt, %g)\n"
        "  %pq = matmul(%p, %q)\n"
        "  %c = conv2d(%cx, %cw, %cb) {padding = [1, 1]}\n"
        "  %c1 = conv2d(%c, %cw1)\n"
        "  return %g, %m, %t, %pq, %c1\n"
        "}\n";
    enum { NI = 11, NO = 5 };
    fusec_module *m;
    fusec_tensor *in, *ref, got[NO];
    fusec_graph *g = compile_with_ref(text, "blas.ir", 11, &m, &in, &ref);
    if (!g) return;
    char *err = NULL;
    if (!m || !ref) goto out;
    char *desc = fusec_module_describe(m);
    /* these GEMMs are small: cuBLASLt takes them only when told to */
    const char *env = getenv("FUSEC_CUBLASLT");
    if (env && strcmp(env, "0") == 0) EXPECT(has(desc, "0 of 6 GEMMs through cuBLASLt off"));
    else if (env && strcmp(env, "1") == 0) EXPECT(has(desc, "6 of 6 GEMMs through cuBLASLt 1"));
    else EXPECT(has(desc, "0 of 6 GEMMs through"));
    if (opt.verbose || !has(desc, "GEMMs through")) {
        pthread_mutex_lock(&print_mu);
        printf("%s", desc ? desc : "(no description)\n");
        pthread_mutex_unlock(&print_mu);
    }
    fusec_free(desc);
    EXPECT_ST(fusec_module_run(m, in, NI, got, NO, &err), FUSEC_OK, err);
    fusec_free(err);
    err = NULL;
    EXPECT(compare_say("blas host run", g, ref, got, NO));
    for (int i = 0; i < NO; i++) fusec_free(got[i].data);
    /* offsets in bytes: 256-byte aligned, 16-byte aligned, 4-byte aligned
     * (element-aligned for f32; 2 elements for bf16) */
    static const size_t shift[3] = {0, 16, 4};
    for (int v = 0; v < 3; v++) {
        dbuf ib[NI], ob[NO];
        fusec_tensor din[NI], dout[NO];
        for (int i = 0; i < NI; i++) {
            ib[i] = dev_copy(&in[i], shift[v]);
            din[i] = in[i];
            din[i].data = ib[i].ptr;
        }
        for (int i = 0; i < NO; i++) {
            ob[i] = dev_room(&ref[i], shift[v]);
            dout[i] = (fusec_tensor){.data = ob[i].ptr};
        }
        fusec_status st = fusec_module_run_device(m, din, NI, dout, NO, NULL, &err);
        EXPECT_ST(st, FUSEC_OK, err);
        fusec_free(err);
        err = NULL;
        if (st == FUSEC_OK) {
            TD_OK(td.cuCtxSynchronize());
            fusec_tensor *dev = to_host(dout, NO);
            char label[64];
            snprintf(label, sizeof label, "blas device run, pointers off by %zu bytes", shift[v]);
            EXPECT(compare_say(label, g, ref, dev, NO));
            free_tensors(dev, NO);
        }
        for (int i = 0; i < NI; i++) dev_free(&ib[i]);
        for (int i = 0; i < NO; i++) dev_free(&ob[i]);
    }
out:
    free_tensors(in, NI);
    free_tensors(ref, NO);
    fusec_module_destroy(m);
    fusec_graph_destroy(g);
}

/* ---- threads ------------------------------------------------------------------------------ */

typedef struct thread_job {
    const fusec_module *m;
    const fusec_graph *g;
    int id;
    bool ok;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    j->ok = true;
    for (int it = 0; it < 10; it++) {
        fusec_tensor *in = make_inputs(j->g, 1000 + (uint64_t)j->id * 100 + (uint64_t)it, false);
        fusec_tensor *ref = NULL, got[2] = {{0}};
        char *err = NULL;
        bool ok = run_backend(j->g, FUSEC_BACKEND_INTERP, in, &ref, &err) == FUSEC_OK;
        fusec_free(err);
        err = NULL;
        fusec_status st = fusec_module_run(j->m, in, 2, got, 2, &err);
        EXPECT_ST(st, FUSEC_OK, err);
        fusec_free(err);
        if (ok && st == FUSEC_OK) ok = compare_say("threads", j->g, ref, got, 2);
        if (!ok || st != FUSEC_OK) j->ok = false;
        fusec_free(got[0].data);
        fusec_free(got[1].data);
        free_tensors(in, 2);
        free_tensors(ref, 2);
    }
    return NULL;
}

static void group_threads(void) {
    fusec_graph *g = parse(graph_ew, "ew.ir");
    if (!g) return;
    fusec_module *m = NULL;
    char *err = NULL;
    EXPECT_ST(fusec_compile(g, FUSEC_BACKEND_CUDA, &m, &err), FUSEC_OK, err);
    fusec_free(err);
    enum { NT = 8 };
    thread_job jobs[NT];
    pthread_t t[NT];
    for (int i = 0; m && i < NT; i++) {
        jobs[i] = (thread_job){m, g, i, false};
        EXPECT(pthread_create(&t[i], NULL, thread_main, &jobs[i]) == 0);
    }
    for (int i = 0; m && i < NT; i++) {
        pthread_join(t[i], NULL);
        EXPECT(jobs[i].ok);
    }
    fusec_module_destroy(m);
    fusec_graph_destroy(g);
}

/* ---- cache -------------------------------------------------------------------------------- */

static void group_cache(void) {
    static const char *const text =
        "func @cached(%x: f32[32, 48]) -> f32[32, 48] {\n"
        "  %s = softmax(%x) {axis = -1}\n"
        "  %t = mul(%s, 3.0)\n"
        "  return %t\n"
        "}\n";
    fusec_graph *g = parse(text, "cached.ir");
    if (!g) return;
    char *desc[2] = {NULL, NULL};
    double ms[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        fusec_module *m = NULL;
        char *err = NULL;
        double t0 = now_s();
        EXPECT_ST(fusec_compile(g, FUSEC_BACKEND_CUDA, &m, &err), FUSEC_OK, err);
        ms[k] = (now_s() - t0) * 1e3;
        fusec_free(err);
        desc[k] = m ? fusec_module_describe(m) : NULL;
        fusec_module_destroy(m);
    }
    EXPECT(has(desc[0], "# cuda: "));
    /* the second compile found every unit in the cache: "# cuda: K kernels
     * in U translation units (C from the kernel cache)" */
    int units = -1, cached = -2;
    const char *line = desc[1] ? strstr(desc[1], "translation unit") : NULL;
    if (line) {
        const char *a = line;
        while (a > desc[1] && a[-1] != '\n') a--;
        const char *in = strstr(a, " in "), *par = strchr(line, '(');
        if (in) units = atoi(in + 4);
        if (par) cached = atoi(par + 1);
    }
    EXPECT(units > 0 && units == cached);
    printf("  cache: compile %.1f ms, then %.1f ms from the cache (%d units)\n", ms[0], ms[1], units);
    if (opt.verbose && desc[1]) printf("%s", desc[1]);
    free(desc[0]);
    free(desc[1]);
    fusec_graph_destroy(g);
}

/* ---- bench -------------------------------------------------------------------------------- */

/* A timing that makes sense: min <= median <= max, none negative. */
static bool sane(const rt_bench_stat *t) {
    return t->min_ms >= 0 && t->min_ms <= t->median_ms && t->median_ms <= t->max_ms && isfinite(t->max_ms);
}

/* Entries in the kernel cache folder fusec uses ($FUSEC_CACHE_DIR). */
static uint64_t cache_entries(void) {
    uint64_t entries = 0, bytes = 0;
    char *dir = rt_kcache_dir(NULL);
    if (dir) rt_kcache_disk_usage(dir, &entries, &bytes);
    free(dir);
    return entries;
}

static void group_bench(void) {
    /* A GEMM with its bias (through cuBLASLt on a real GPU with FUSEC_CUBLASLT=1,
     * as run_gpu.sh runs it), then a row reduction. */
    static const char *const text =
        "func @timed(%x: f32[64, 128], %w: f32[256, 128], %b: f32[256]) -> f32[64, 256] {\n"
        "  %y = linear(%x, %w, %b)\n"
        "  %p = softmax(%y) {axis = -1}\n"
        "  return %p\n"
        "}\n";
    fusec_graph *g = parse(text, "timed.ir");
    if (!g) return;
    int nin = fusec_graph_num_inputs(g);
    fusec_tensor *in = make_inputs(g, 7, false);
    EXPECT(in != NULL);
    if (!in) {
        fusec_graph_destroy(g);
        return;
    }
    /* The temporary caches of the compile timings go to TMPDIR: a folder
     * of the test's own, to see that they are removed. */
    char tmp[] = "/tmp/fusec-gpu-bench-XXXXXX";
    EXPECT(mkdtemp(tmp) != NULL);
    char *old_tmp = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
    setenv("TMPDIR", tmp, 1);

    rt_bench_opts o = {.iters = 7, .warmup = 3};
    rt_bench_result r, again, cpu;
    char *err = NULL;
    EXPECT_ST(rt_bench(g, FUSEC_BACKEND_CUDA, in, nin, &o, &r, &err), FUSEC_OK, err);
    fusec_free(err);
    uint64_t entries = cache_entries();
    err = NULL;
    EXPECT_ST(rt_bench(g, FUSEC_BACKEND_CUDA, in, nin, &o, &again, &err), FUSEC_OK, err);
    fusec_free(err);
    /* The empty- and warm-cache compiles leave the user's cache alone and
     * remove their own. */
    EXPECT(cache_entries() == entries && entries > 0);
    DIR *dir = opendir(tmp);
    int left = 0;
    for (struct dirent *e; dir && (e = readdir(dir));) left += e->d_name[0] != '.';
    if (dir) closedir(dir);
    EXPECT(left == 0);
    rmdir(tmp);
    if (old_tmp) setenv("TMPDIR", old_tmp, 1);
    else unsetenv("TMPDIR");
    free(old_tmp);

    int64_t io = (64 * 128 + 256 * 128 + 256 + 64 * 256) * 4;
    EXPECT(r.backend == FUSEC_BACKEND_CUDA && r.graph && strcmp(r.graph, "timed") == 0 && r.device);
    EXPECT(r.iters == 7 && r.warmup == 3);
    EXPECT(r.min_bytes == io && r.plan_bytes >= io);
    EXPECT(sane(&r.whole) && r.whole.min_ms > 0 && sane(&r.same) && r.have_same);
    /* Rotated past twice the L2, as far as memory allows. */
    EXPECT(r.copies >= 1 && r.copy_bytes >= io);
    EXPECT(r.copies == 1 || (int64_t)r.copies * r.copy_bytes > 2 * r.l2_bytes);
    EXPECT(r.copy_gbps > 0 && r.copy_test_bytes > 0);
    /* The same pointers every run replay as a CUDA graph from the second
     * run on; rotated ones change every run and so never do. */
    if (!getenv("FUSEC_CUDA_GRAPHS")) {
        EXPECT(r.same_replays >= o.iters);
        EXPECT(r.copies == 1 || r.whole_replays == 0);
    }
    /* One timing per plan kernel, the same plan the CPU backend runs. */
    EXPECT(r.kernel_times && r.nkernels >= 2);
    int64_t sum = 0;
    for (int k = 0; k < r.nkernels; k++) {
        EXPECT(r.kernels[k].name && r.kernels[k].bytes > 0 && sane(&r.kernels[k].t));
        sum += r.kernels[k].bytes;
    }
    EXPECT(sum == r.plan_bytes);
    EXPECT(r.compile_ms > 0 && r.compile_empty_ms > 0 && r.compile_warm_ms > 0);
    printf("  bench: whole graph %.4f ms (%.4f ms on the same inputs), %d kernels, %d copies; compile %.1f ms "
           "empty cache, %.1f ms warm\n",
           r.whole.median_ms, r.same.median_ms, r.nkernels, r.copies, r.compile_empty_ms, r.compile_warm_ms);

    o.iters = 2;
    o.warmup = 0;
    err = NULL;
    EXPECT_ST(rt_bench(g, FUSEC_BACKEND_PLAN, in, nin, &o, &cpu, &err), FUSEC_OK, err);
    fusec_free(err);
    EXPECT(cpu.nkernels == r.nkernels && cpu.plan_bytes == r.plan_bytes && !cpu.kernel_times);
    EXPECT(sane(&cpu.whole) && !cpu.have_same && cpu.copies == 1 && cpu.compile_empty_ms < 0);

    /* An input of the wrong shape is refused, naming it, before any copy. */
    in[0].shape[0] = 63;
    rt_bench_result bad;
    err = NULL;
    EXPECT_ST(rt_bench(g, FUSEC_BACKEND_CUDA, in, nin, &o, &bad, &err), FUSEC_ERR_INVALID, err);
    EXPECT(has(err, "input %x: expected f32[64, 128], got f32[63, 128]"));
    fusec_free(err);
    in[0].shape[0] = 64;

    rt_bench_result_free(&r);
    rt_bench_result_free(&again);
    rt_bench_result_free(&cpu);
    free_tensors(in, nin);
    fusec_graph_destroy(g);
}

/* ---- nvrtc_failure ------------------------------------------------------------------------ */

static void group_nvrtc_failure(void) {
    static const char *const text =
        "func @inject(%x: f32[17, 19]) -> f32[17, 19] {\n"
        "  %y = sigmoid(%x)\n"
        "  return %y\n"
        "}\n";
    fusec_graph *g = parse(text, "inject.ir");
    if (!g) return;
    setenv("FUSEC_CUDA_INJECT_NVRTC_FAILURE", "1", 1);
    fusec_module *m = NULL;
    char *err = NULL;
    EXPECT_ST(fusec_compile(g, FUSEC_BACKEND_CUDA, &m, &err), FUSEC_ERR_BACKEND, err);
    unsetenv("FUSEC_CUDA_INJECT_NVRTC_FAILURE");
    EXPECT(m == NULL);
    EXPECT(has(err, "NVRTC could not compile kernel"));
    EXPECT(has(err, "NVRTC_ERROR_COMPILATION"));
    EXPECT(has(err, "its source is saved in /"));
    const char *p = err ? strstr(err, "its source is saved in ") : NULL;
    if (p) {
        p += strlen("its source is saved in ");
        char path[1024];
        size_t n = strcspn(p, "\n");
        snprintf(path, sizeof path, "%.*s", (int)n, p);
        char *src = read_text(path);
        EXPECT(has(src, "FUSEC_CUDA_INJECT_NVRTC_FAILURE"));
        EXPECT(has(src, "__global__"));
        free(src);
        unlink(path);
    }
    if (opt.verbose && err) printf("%s", err);
    fusec_free(err);
    /* without the injection the same graph compiles and runs */
    EXPECT(diff_one("inject.ir", text, 3, true, true) == 1);
    fusec_graph_destroy(g);
}

/* ---- oom ------------------------------------------------------------------------------------ */

static void group_oom(void) {
    /* the matmul's [250000, 250000] f32 result is a 250 GB temporary */
    static const char *const text =
        "func @oom(%a: f32[250000, 1], %b: f32[1, 250000]) -> f32[250000] {\n"
        "  %m = matmul(%a, %b)\n"
        "  %s = softmax(%m) {axis = -1}\n"
        "  %r = sum(%s) {axes = [1]}\n"
        "  return %r\n"
        "}\n";
    fusec_graph *g = parse(text, "oom.ir");
    if (!g) return;
    fusec_module *m = NULL;
    char *err = NULL;
    EXPECT_ST(fusec_compile(g, FUSEC_BACKEND_CUDA, &m, &err), FUSEC_ERR_NOMEM, err);
    EXPECT(m == NULL);
    EXPECT(has(err, "cannot allocate 250000000000 bytes (232.83 GiB) of GPU memory for the arena"));
    EXPECT(has(err, "CUDA_ERROR_OUT_OF_MEMORY"));
    if (opt.verbose && err) printf("%s", err);
    fusec_free(err);
    fusec_module_destroy(m);
    fusec_graph_destroy(g);
    /* not a lost context: work goes on */
    EXPECT(diff_one("after oom", graph_ew, 11, true, true) == 1);
}

/* ---- lost_context (a child process) ------------------------------------------------------------ */

static int lost_context_child(void) {
    alarm(120); /* a hang is a failure too */
    fusec_graph *g = parse(graph_ew, "ew.ir");
    if (!g) return 10;
    fusec_module *m = NULL;
    char *err = NULL;
    if (fusec_compile(g, FUSEC_BACKEND_CUDA, &m, &err) != FUSEC_OK) {
        printf("  child: compile failed: %s", err ? err : "");
        return 11;
    }
    char why[256];
    if (!td_load(why, sizeof why) || !td_enter()) return 12;
    /* a device address nothing is mapped at */
    fusec_tensor din[2] = {{FUSEC_DTYPE_F32, 2, {64, 100}, (void *)(uintptr_t)0x100000}, {FUSEC_DTYPE_F32, 1, {100}, NULL}};
    dbuf b = {0};
    CUdeviceptr outp = 0;
    td.cuMemAlloc(&b.base, 400);
    td.cuMemAlloc(&outp, 64 * 100 * 4 + 1024);
    din[1].data = (void *)(uintptr_t)b.base;
    fusec_tensor dout[2] = {{.data = (void *)(uintptr_t)outp}, {.data = (void *)(uintptr_t)(outp + 64 * 100 * 4 + 256)}};
    fusec_status st = fusec_module_run_device(m, din, 2, dout, 2, NULL, &err);
    printf("  child: run_device with a bad address: %s: %s", fusec_status_string(st), err ? err : "\n");
    /* The fault shows in this call or (the launch being asynchronous) in
     * the next one that waits; either says the context is now lost. */
    bool seen = st == FUSEC_ERR_BACKEND && has(err, "CUDA_ERROR_") && has(err, "the CUDA context is now lost");
    fusec_free(err);
    err = NULL;
    fusec_tensor *in = make_inputs(g, 1, false), out[2] = {{0}};
    int bad = 0;
    if (!seen) {
        st = fusec_module_run(m, in, 2, out, 2, &err);
        printf("  child: next run: %s: %s", fusec_status_string(st), err ? err : "\n");
        if (st != FUSEC_ERR_BACKEND || !has(err, "CUDA_ERROR_") || !has(err, "the CUDA context is now lost")) bad |= 1;
        fusec_free(err);
        err = NULL;
    }
    /* from now on: fail fast */
    st = fusec_module_run(m, in, 2, out, 2, &err);
    if (st != FUSEC_ERR_BACKEND || !has(err, "the CUDA context is lost after an earlier error: CUDA error CUDA_ERROR_"))
        bad |= 2;
    printf("  child: then: %s", err ? err : "\n");
    fusec_free(err);
    err = NULL;
    fusec_module *m2 = NULL;
    st = fusec_compile(g, FUSEC_BACKEND_CUDA, &m2, &err);
    if (st != FUSEC_ERR_BACKEND || !has(err, "the CUDA context is lost after an earlier error")) bad |= 4;
    fusec_free(err);
    err = NULL;
    /* the interpreter is unaffected */
    st = fusec_compile(g, FUSEC_BACKEND_INTERP, &m2, &err);
    if (st != FUSEC_OK || fusec_module_run(m2, in, 2, out, 2, &err) != FUSEC_OK) bad |= 8;
    fusec_free(out[0].data);
    fusec_free(out[1].data);
    fusec_free(err);
    fusec_module_destroy(m2);
    fusec_module_destroy(m); /* frees host memory only; must not hang or crash */
    free_tensors(in, 2);
    fusec_graph_destroy(g);
    printf("  child: done (%d)\n", bad);
    return bad;
}

static void group_lost_context(void) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* A fresh process: CUDA state does not survive fork.  The device
         * memory of a lost context is never freed (every call would fail);
         * under the fake driver that memory is the host's, so a leak checker
         * would report it. */
        const char *asan = getenv("ASAN_OPTIONS");
        char buf[1024];
        snprintf(buf, sizeof buf, "%s%sdetect_leaks=0", asan ? asan : "", asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", buf, 1);
        execl("/proc/self/exe", "gpu_test", "--lost-context-child", (char *)NULL);
        _exit(99);
    }
    int status = 0;
    EXPECT(pid > 0 && waitpid(pid, &status, 0) == pid);
    EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status)) printf("  lost_context: the child died (signal %d)\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* ---- main ---------------------------------------------------------------------------------- */

typedef struct group {
    const char *name;
    void (*fn)(void);
    bool real_gpu; /* skipped under the fake driver */
} group;

static const group groups[] = {
    {"basic", group_basic, false},
    {"diff", group_diff, false},
    {"big", group_big, true},
    {"device_api", group_device_api, false},
    {"misaligned", group_misaligned, false},
    {"blas", group_blas, false},
    {"threads", group_threads, false},
    {"cache", group_cache, false},
    {"bench", group_bench, false},
    {"nvrtc_failure", group_nvrtc_failure, false},
    {"oom", group_oom, false},
    {"lost_context", group_lost_context, false},
};
enum { NGROUPS = (int)(sizeof groups / sizeof groups[0]) };

static bool selected(const char *name) {
    if (!opt.only) return true;
    size_t n = strlen(name);
    for (const char *p = opt.only; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && strncmp(p, name, n) == 0) return true;
        p += k;
        if (*p == ',') p++;
    }
    return false;
}

static int usage(void) {
    fprintf(stderr, "usage: gpu_test [--require-gpu] [--fake-driver] [--seed S] [--count N] [--jobs J] [--only G,G...]\n"
                    "                [-v] [FILES.ir...]\n");
    return 2;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "--lost-context-child") == 0) return lost_context_child();
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    opt.jobs = nc > 0 ? (int)nc : 1;
    opt.files = calloc((size_t)argc, sizeof *opt.files);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool v = i + 1 < argc;
        if (!strcmp(a, "--require-gpu")) opt.require_gpu = true;
        else if (!strcmp(a, "--fake-driver")) opt.fake = true;
        else if (!strcmp(a, "-v")) opt.verbose = true;
        else if (!strcmp(a, "--seed") && v) opt.seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--count") && v) opt.count = strtol(argv[++i], NULL, 0);
        else if (!strcmp(a, "--jobs") && v) opt.jobs = atoi(argv[++i]);
        else if (!strcmp(a, "--only") && v) opt.only = argv[++i];
        else if (a[0] == '-') return usage();
        else opt.files[opt.nfiles++] = argv[i];
    }

    int nsel = 0;
    for (int i = 0; i < NGROUPS; i++) nsel += selected(groups[i].name);

    /* Is there a GPU to test?  Without a driver, or without CUDA in this
     * fusec, skip; --require-gpu makes that a failure. */
    char why[512] = "";
    bool have = td_load(why, sizeof why);
    if (have) {
        fusec_graph *g = NULL;
        fusec_module *m = NULL;
        char *err = NULL;
        fusec_graph_parse(graph_ew, strlen(graph_ew), "probe.ir", NULL, &g, &err);
        fusec_free(err);
        err = NULL;
        fusec_status st = fusec_compile(g, FUSEC_BACKEND_CUDA, &m, &err);
        if (st != FUSEC_OK) {
            have = false;
            snprintf(why, sizeof why, "%s", err ? err : fusec_status_string(st));
            size_t n = strlen(why);
            if (n && why[n - 1] == '\n') why[n - 1] = 0;
        }
        fusec_free(err);
        fusec_module_destroy(m);
        fusec_graph_destroy(g);
        if (have && !td_enter()) {
            have = false;
            snprintf(why, sizeof why, "the test cannot enter the device's primary context");
        }
    }
    if (!have) {
        printf("SKIP: no CUDA driver or device usable (%s): %s\n", driver_lib(), why);
        printf("0 passed, %d failed, %d skipped\n", opt.require_gpu ? 1 : 0, opt.require_gpu ? nsel - 1 : nsel);
        return opt.require_gpu ? 1 : 0;
    }

    if (opt.fake) {
        printf("fake driver (%s): results are not compared\n", driver_lib());
        setenv("FAKE_CUDA_FAULTS", "1", 1); /* lost_context's child needs its faults */
    }
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < NGROUPS; i++) {
        if (!selected(groups[i].name)) continue;
        if (opt.fake && groups[i].real_gpu) {
            printf("SKIP %s (needs a real GPU)\n", groups[i].name);
            skipped++;
            continue;
        }
        printf("RUN  %s\n", groups[i].name);
        atomic_store(&group_failed, 0);
        double t0 = now_s();
        groups[i].fn();
        bool ok = !atomic_load(&group_failed);
        printf("%s %s (%.1f s)\n", ok ? "PASS" : "FAIL", groups[i].name, now_s() - t0);
        if (ok) passed++;
        else failed++;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    free(opt.files);
    return failed ? 1 : 0;
}
