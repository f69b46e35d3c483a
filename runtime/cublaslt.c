/*
 * cublaslt.c - GEMMs through cuBLASLt.
 *
 * Loading.  libcublasLt is opened with dlopen at the first plan that has a
 * GEMM of at least RT_BLAS_MIN_FLOP (every GEMM with FUSEC_CUBLASLT=1),
 * like the driver: a fusec binary never needs it to start, and a
 * machine without it runs every GEMM on fusec's own kernels.  The library
 * tried first is $FUSEC_CUBLASLT when that is a path ("0" turns cuBLASLt
 * off), then the toolkit fusec was built against (its lib directory, baked
 * in at configure time), then libcublasLt.so.<major> on the loader's path.
 * Its major version must be the headers' (the descriptors' attributes and
 * the heuristic result's layout are fixed per major version).  Every
 * function is looked up once into a table declared with the headers' own
 * prototypes, as the driver's is (cuda_impl.h), and every call goes through
 * BLAS_CHECK.
 *
 * The mapping.  fusec's GEMM is row-major: D[m x n] = A[m x k] B[k x n].
 * cuBLAS is column-major, and a row-major m x n matrix is a column-major
 * n x m one, so cuBLASLt computes D^T = B^T A^T: its A is our B, its B our
 * A.  A row-major operand is already its own transpose in column-major
 * terms (op N); a column-major one is transposed by cuBLASLt (op T); see
 * layout_of.  A bias added to
 * every row of our D is cuBLASLt's bias epilogue (one value per row of its
 * column-major D), broadcast over the batch (bias batch stride 0).  The
 * accumulation is f32 (CUBLAS_COMPUTE_32F: no TF32 for f32 operands, which
 * is what the interpreter and PyTorch's default compute) and D is rounded
 * once, as the generated kernel does; or D is f32, unrounded, when an
 * epilogue kernel adds more before rounding (a convolution's bias).
 *
 * Algorithms.  The heuristic is asked twice per GEMM: once for the default
 * 256-byte pointer alignment (what the arena gives every buffer), once for
 * 16-byte alignment (a caller's device pointers, e.g. an offset view).  A
 * run picks by its pointers; one aligned less than 16 bytes runs the
 * generated kernel.  The workspace (at most RT_BLAS_WORKSPACE bytes, the
 * algorithm's own need) lives in the execution context's scratch region, so
 * runs never allocate and a whole plan can be captured into a CUDA graph.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda.h"

#ifdef FUSEC_HAVE_CUDA

#include <cublasLt.h>

#include "runtime/cublaslt.h"

#define RT_BLAS_WORKSPACE (32 << 20)
/* The smallest GEMM (2 m n k batch flops) sent to cuBLASLt by default.
 * Opening the library costs about 200 ms once per process (measured on
 * the H100 machine: a warm-cache compile of examples/gpt2_attention.ir
 * went from 5 to 222 ms), and a small GEMM runs about as fast on fusec's
 * own kernel, its epilogue fused; FUSEC_CUBLASLT=1 sends every GEMM. */
#define RT_BLAS_MIN_FLOP (1LL << 26)

#define RT_BLAS_FUNCS(X)                                                                    \
    X(cublasLtGetVersion) X(cublasLtGetStatusName) X(cublasLtGetStatusString)              \
    X(cublasLtCreate) X(cublasLtMatmulDescCreate) X(cublasLtMatmulDescDestroy)              \
    X(cublasLtMatmulDescSetAttribute) X(cublasLtMatrixLayoutCreate)                        \
    X(cublasLtMatrixLayoutDestroy) X(cublasLtMatrixLayoutSetAttribute)                     \
    X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy)                   \
    X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatmulAlgoGetHeuristic) X(cublasLtMatmul)

#define RT_BLAS_FIELD_(name) __typeof__(&name) name;
static struct {
    RT_BLAS_FUNCS(RT_BLAS_FIELD_)
} lt;
#undef RT_BLAS_FIELD_

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_bool opened; /* init_once has run */
static bool usable;
static cublasLtHandle_t handle;
static char summary[512];

/* FUSEC_CUBLASLT is "v" ("0": off, "1": every GEMM; anything else is a path). */
static bool env_is(const char *v) {
    const char *e = getenv("FUSEC_CUBLASLT");
    return e && strcmp(e, v) == 0;
}

#define BLAS_CHECK(d, expr) blas_check((expr), #expr, __FILE__, __LINE__, (d))

static bool blas_check(cublasStatus_t s, const char *expr, const char *file, int line, ir_diag *d) {
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    const char *f = strstr(file, "runtime/");
    if (d)
        ir_error(d, (ir_loc){0}, "cuBLASLt error %s (%s) in %s at %s:%d", lt.cublasLtGetStatusName(s),
                 lt.cublasLtGetStatusString(s), strncmp(expr, "lt.", 3) == 0 ? expr + 3 : expr, f ? f : file,
                 line);
    return false;
}

static void *open_lib(char *tried, size_t cap, const char **which) {
    const char *env = getenv("FUSEC_CUBLASLT");
    char soname[64];
    snprintf(soname, sizeof soname, "libcublasLt.so.%d", CUBLAS_VER_MAJOR);
    const char *cand[3];
    int n = 0;
    if (env && *env && !env_is("1")) cand[n++] = env;
#ifdef FUSEC_CUDA_LIBDIR
    static char baked[512];
    snprintf(baked, sizeof baked, "%s/%s", FUSEC_CUDA_LIBDIR, soname);
    cand[n++] = baked;
#endif
    cand[n++] = soname;
    size_t used = 0;
    tried[0] = 0;
    for (int i = 0; i < n; i++) {
        void *h = dlopen(cand[i], RTLD_NOW | RTLD_LOCAL);
        if (h) {
            *which = cand[i];
            return h;
        }
        const char *e = dlerror();
        int w = snprintf(tried + used, cap - used, "%s%s", used ? "; " : "", e ? e : cand[i]);
        if (w > 0 && (size_t)w < cap - used) used += (size_t)w;
    }
    return NULL;
}

static void init_once(void) {
    atomic_store(&opened, true);
    if (env_is("0")) {
        snprintf(summary, sizeof summary, "cuBLASLt off (FUSEC_CUBLASLT=0): GEMMs run on fusec's kernels");
        return;
    }
    char tried[384];
    const char *which = NULL;
    void *h = open_lib(tried, sizeof tried, &which);
    if (!h) {
        snprintf(summary, sizeof summary, "cuBLASLt off (%s): GEMMs run on fusec's kernels", tried);
        return;
    }
#define RT_BLAS_LOOKUP_(fn)                                     \
    if (ok) {                                                   \
        void *sym = dlsym(h, #fn);                              \
        if (sym) memcpy(&lt.fn, &sym, sizeof sym);              \
        else {                                                  \
            snprintf(summary, sizeof summary, "cuBLASLt off (%s has no %s)", which, #fn); \
            ok = false;                                         \
        }                                                       \
    }
    bool ok = true;
    RT_BLAS_FUNCS(RT_BLAS_LOOKUP_)
#undef RT_BLAS_LOOKUP_
    size_t v = ok ? lt.cublasLtGetVersion() : 0;
    if (ok && (int)(v / 10000) != CUBLAS_VER_MAJOR) {
        snprintf(summary, sizeof summary, "cuBLASLt off (%s is version %zu.%zu, fusec was built for %d.x)", which,
                 v / 10000, v / 100 % 100, CUBLAS_VER_MAJOR);
        ok = false;
    }
    ir_diag tmp;
    ir_diag_init(&tmp, NULL, NULL, 0);
    if (ok && !BLAS_CHECK(&tmp, lt.cublasLtCreate(&handle))) {
        const char *m = tmp.out.buf ? tmp.out.buf : "?";
        int len = (int)strcspn(m, "\n");
        snprintf(summary, sizeof summary, "cuBLASLt off (%.*s)", len, m);
        ok = false;
    }
    ir_diag_free(&tmp);
    if (!ok) {
        memset(&lt, 0, sizeof lt);
        dlclose(h);
        return;
    }
    snprintf(summary, sizeof summary, "cuBLASLt %zu.%zu.%zu (%s) for GEMMs", v / 10000, v / 100 % 100, v % 100,
             which);
    usable = true;
}

bool rt_blas_init(void) {
    pthread_once(&once, init_once);
    return usable;
}

const char *rt_blas_summary(void) {
    if (!env_is("0") && !atomic_load(&opened)) /* with "0", init_once opens nothing */
        return "fusec's kernels (cuBLASLt not opened: it takes GEMMs of 2^26 flops or more, or every GEMM with "
               "FUSEC_CUBLASLT=1)";
    pthread_once(&once, init_once);
    return summary;
}

bool rt_blas_wanted(const cg_cuda_gemm *g) {
    if (env_is("0")) return false;
    if (env_is("1")) return true;
    return 2.0 * (double)g->m * (double)g->n * (double)g->k * (double)g->batch >= (double)RT_BLAS_MIN_FLOP;
}

/* ---- preparing --------------------------------------------------------------- */

struct rt_blas {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, dd; /* cuBLASLt's A (our B), B (our A), D */
    cublasLtMatmulAlgo_t algo[2];    /* 256-byte and 16-byte aligned pointers */
    bool have[2];
    size_t ws[2];
    bool bias;
    pthread_mutex_t mu; /* the bias pointer is set on `op` for each run */
};

void rt_blas_free(rt_blas *b) {
    if (!b) return;
    pthread_mutex_destroy(&b->mu);
    if (b->op) lt.cublasLtMatmulDescDestroy(b->op);
    if (b->a) lt.cublasLtMatrixLayoutDestroy(b->a);
    if (b->b) lt.cublasLtMatrixLayoutDestroy(b->b);
    if (b->dd) lt.cublasLtMatrixLayoutDestroy(b->dd);
    free(b);
}

/* The column-major layout of a rows x cols operand with strides (rs, cs),
 * one of them 1 (codegen guarantees it), seen transposed: "N" with the
 * transposed shape when its columns are contiguous, else "T". */
static bool layout_of(cudaDataType_t t, int64_t rows, int64_t cols, int64_t rs, int64_t cs, int64_t batch,
                      int64_t bstride, cublasLtMatrixLayout_t *l, cublasOperation_t *op) {
    bool ok;
    if (cs == 1) { /* row-major: column-major cols x rows, ld rs, used as-is for the transpose */
        *op = CUBLAS_OP_N;
        ok = BLAS_CHECK(NULL, lt.cublasLtMatrixLayoutCreate(l, t, (uint64_t)cols, (uint64_t)rows, rs));
    } else { /* column-major rows x cols, ld cs, transposed by cuBLASLt */
        *op = CUBLAS_OP_T;
        ok = BLAS_CHECK(NULL, lt.cublasLtMatrixLayoutCreate(l, t, (uint64_t)rows, (uint64_t)cols, cs));
    }
    int32_t bc = (int32_t)batch;
    return ok && (batch == 1 || (BLAS_CHECK(NULL, lt.cublasLtMatrixLayoutSetAttribute(
                                                      *l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc)) &&
                                 BLAS_CHECK(NULL, lt.cublasLtMatrixLayoutSetAttribute(
                                                      *l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &bstride,
                                                      sizeof bstride))));
}

/* The best algorithm for pointers aligned to `align` bytes. */
static bool pick(rt_blas *b, uint32_t align, cublasLtMatmulAlgo_t *algo, size_t *ws) {
    cublasLtMatmulPreference_t pref = NULL;
    uint64_t max_ws = RT_BLAS_WORKSPACE;
    cublasLtMatmulHeuristicResult_t r;
    memset(&r, 0, sizeof r);
    int found = 0;
    bool ok = BLAS_CHECK(NULL, lt.cublasLtMatmulPreferenceCreate(&pref)) &&
              BLAS_CHECK(NULL, lt.cublasLtMatmulPreferenceSetAttribute(
                                   pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof max_ws));
    const cublasLtMatmulPreferenceAttributes_t al[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; ok && i < 4; i++)
        ok = BLAS_CHECK(NULL, lt.cublasLtMatmulPreferenceSetAttribute(pref, al[i], &align, sizeof align));
    ok = ok && BLAS_CHECK(NULL, lt.cublasLtMatmulAlgoGetHeuristic(handle, b->op, b->a, b->b, b->dd, b->dd, pref, 1,
                                                                  &r, &found)) &&
         found > 0 && r.state == CUBLAS_STATUS_SUCCESS;
    if (pref) lt.cublasLtMatmulPreferenceDestroy(pref);
    if (ok) {
        *algo = r.algo;
        *ws = r.workspaceSize;
    }
    return ok;
}

rt_blas *rt_blas_prepare(const cg_cuda_gemm *g, int64_t *workspace) {
    *workspace = 0;
    if (!rt_blas_wanted(g) || !rt_blas_init()) return NULL;
    cudaDataType_t t = g->dt == FUSEC_DTYPE_F32 ? CUDA_R_32F : g->dt == FUSEC_DTYPE_F16 ? CUDA_R_16F
                       : g->dt == FUSEC_DTYPE_BF16                                    ? CUDA_R_16BF
                                                                                      : (cudaDataType_t)-1;
    if ((int)t < 0 || g->batch < 1 || g->batch > INT32_MAX) return NULL;
    rt_blas *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->mu, NULL);
    b->bias = g->bias_arg >= 0;
    cublasOperation_t ta, tb;
    bool ok = BLAS_CHECK(NULL, lt.cublasLtMatmulDescCreate(&b->op, CUBLAS_COMPUTE_32F, CUDA_R_32F)) &&
              layout_of(t, g->k, g->n, g->b_rs, g->b_cs, g->batch, g->b_bs, &b->a, &ta) &&
              layout_of(t, g->m, g->k, g->a_rs, g->a_cs, g->batch, g->a_bs, &b->b, &tb) &&
              layout_of(g->d_f32 ? CUDA_R_32F : t, g->m, g->n, g->n, 1, g->batch, g->m * g->n, &b->dd,
                        &(cublasOperation_t){0}) &&
              BLAS_CHECK(NULL, lt.cublasLtMatmulDescSetAttribute(b->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta)) &&
              BLAS_CHECK(NULL, lt.cublasLtMatmulDescSetAttribute(b->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (ok && g->bias_arg >= 0) {
        cublasLtEpilogue_t e = CUBLASLT_EPILOGUE_BIAS;
        ok = BLAS_CHECK(NULL, lt.cublasLtMatmulDescSetAttribute(b->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e));
    }
    if (ok) {
        b->have[0] = pick(b, 256, &b->algo[0], &b->ws[0]);
        b->have[1] = pick(b, 16, &b->algo[1], &b->ws[1]);
        ok = b->have[0] || b->have[1];
    }
    if (!ok) {
        rt_blas_free(b);
        return NULL;
    }
    size_t ws = b->ws[0] > b->ws[1] ? b->ws[0] : b->ws[1];
    *workspace = (int64_t)ws;
    return b;
}

/* ---- running --------------------------------------------------------------------- */

/* The prepared algorithm for these pointers: 0, 1, or -1 for none. */
static int algo_for(const rt_blas *b, CUdeviceptr A, CUdeviceptr B, CUdeviceptr bias, CUdeviceptr D) {
    CUdeviceptr any = A | B | D | (b->bias ? bias : 0);
    return any % 256 == 0 && b->have[0] ? 0 : any % 16 == 0 && b->have[1] ? 1 : -1;
}

bool rt_blas_fits(const rt_blas *b, CUdeviceptr A, CUdeviceptr B, CUdeviceptr bias, CUdeviceptr D) {
    return algo_for(b, A, B, bias, D) >= 0;
}

bool rt_blas_run(rt_blas *b, CUdeviceptr A, CUdeviceptr B, CUdeviceptr bias, CUdeviceptr D,
                 CUdeviceptr workspace, CUstream s, ir_diag *d) {
    int which = algo_for(b, A, B, bias, D);
    if (which < 0) {
        ir_error(d, (ir_loc){0}, "cuBLASLt has no algorithm for these pointers (check rt_blas_fits first)");
        return false;
    }
    static const float one = 1.0f, zero = 0.0f;
    void *dp = (void *)(uintptr_t)D, *bp = (void *)(uintptr_t)bias;
    /* The bias pointer is the one per-run attribute of the descriptor;
     * cuBLASLt reads it when the call queues the work. */
    pthread_mutex_lock(&b->mu);
    bool ok = (!b->bias || BLAS_CHECK(d, lt.cublasLtMatmulDescSetAttribute(
                                                    b->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp))) &&
              BLAS_CHECK(d, lt.cublasLtMatmul(handle, b->op, &one, (const void *)(uintptr_t)B, b->a,
                                              (const void *)(uintptr_t)A, b->b, &zero, dp, b->dd, dp, b->dd,
                                              &b->algo[which], (void *)(uintptr_t)workspace, b->ws[which],
                                              (cudaStream_t)s));
    pthread_mutex_unlock(&b->mu);
    return ok;
}

#else
typedef int rt_cublaslt_unused_;
#endif
