/*
 * cgemu.c - run fusec's generated CUDA kernels on the host and compare
 * them with the plan executor, for machines without a GPU.
 *
 *   cgemu [--seed S --count N] [--max-numel M] [--keep DIR] [--cxx CXX] [--tol-scale X] [-v] [FILE.ir...]
 *
 * For each graph (the .ir FILES, then generated graphs of seeds S..S+N-1):
 * parse, run the default pipeline, fuse and plan memory as the runtime
 * does; generate every kernel; write them all into one C++ file after
 * tests/cg/emu_shim.h (which emulates threads, barriers and warp shuffles
 * with coroutines), compile it into a shared object with the host C++
 * compiler and load it; make deterministic random inputs; run the plan
 * twice - once through the vectorized entry points, once through the
 * `_scalar` ones - and, for plans with matmuls that have a BLAS form
 * (cg_cuda_gemm), a third time with those GEMMs computed here as a BLAS
 * library would and their epilogue kernels emulated, each in an arena
 * poisoned with 0xFF bytes like the plan executor's; and compare every result with rt_plan_run on the same plan
 * (tests/diff/compare.c, the design's tolerances with the looser f32 one).
 *
 * This checks the generated code's logic (indexing, vector lanes,
 * predicates, reductions, the GEMM/conv/pool kernels, rounding); not
 * NVRTC, not the GPU's float intrinsics, and not timing.  It is slow
 * (a host compile per graph), so it is a tool, not a ctest.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/plan_exec.h"
#include "tests/cg/cg_plans.h"
#include "tests/diff/compare.h"
#include "tests/diff/gen.h"

typedef int (*launch_fn)(void (*)(void **), void **, const unsigned *, const unsigned *);
typedef void (*tramp_fn)(void **);

static bool verbose;
static double tol_scale = 1.0;
static long max_numel = 0; /* 0: the generator's default */

static uint64_t rng_state;
static uint64_t rng_next(void) {
    rng_state += 0x9e3779b97f4a7c15ull;
    uint64_t z = rng_state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(void) { return (double)(rng_next() >> 11) * 0x1.0p-53; }

/* Random inputs; with `specials`, one float in 16 is NaN, +-inf, -0.0 or 0.0. */
static void fill(fusec_tensor *t, const ir_type *ty, bool specials) {
    static const double sp[5] = {NAN, INFINITY, -INFINITY, -0.0, 0.0};
    int64_t n = ir_type_numel(ty);
    for (int64_t i = 0; i < n; i++) {
        if (ir_dtype_is_float(ty->dtype)) {
            double v = (rng_unit() + rng_unit() + rng_unit() - 1.5) * 2.0;
            if (specials && rng_next() % 16 == 0) v = sp[rng_next() % 5];
            ir_store_f(ty->dtype, t->data, i, v);
        } else if (ty->dtype == FUSEC_DTYPE_BOOL) {
            ir_store_i(ty->dtype, t->data, i, (int64_t)(rng_next() & 1));
        } else if (ty->dtype == FUSEC_DTYPE_U8) {
            ir_store_i(ty->dtype, t->data, i, (int64_t)(rng_next() % 9));
        } else {
            ir_store_i(ty->dtype, t->data, i, (int64_t)(rng_next() % 9) - 4);
        }
    }
}

/* The C++ translation unit of all kernels of a plan, with trampolines
 * fcemu_t<k>_v (main entry), _s (scalar entry), _n (next). */
static char *emu_source(const cg_cuda_kernel *ks, int n) {
    ir_str s = {0};
    ir_str_puts(&s, "#include \"tests/cg/emu_shim.h\"\n");
    for (int i = 0; i < n; i++) {
        cgt_renames(&s, &ks[i], i, false);
        ir_str_printf(&s, "namespace fcq%d {\n%s\n", i, ks[i].source);
        ir_str_printf(&s, "extern \"C\" void fcemu_t%d_v(void **a) { fcemu_call(%s, a); }\n", i, ks[i].name);
        if (ks[i].scalar_name)
            ir_str_printf(&s, "extern \"C\" void fcemu_t%d_s(void **a) { fcemu_call(%s, a); }\n", i, ks[i].scalar_name);
        if (ks[i].next) ir_str_printf(&s, "extern \"C\" void fcemu_t%d_n(void **a) { fcemu_call(%s, a); }\n", i, ks[i].next->name);
        ir_str_puts(&s, "}\n");
        cgt_renames(&s, &ks[i], i, true);
        for (int j = 0; j < 2; j++) {
            const cg_cuda_kernel *e = cgt_blas_part(&ks[i], j);
            if (!e) continue;
            char c = "ep"[j];
            cgt_renames(&s, e, i, false);
            ir_str_printf(&s, "namespace fcq%d%c {\n%s\n", i, c, e->source);
            ir_str_printf(&s, "extern \"C\" void fcemu_t%d_%c(void **a) { fcemu_call(%s, a); }\n}\n", i, c, e->name);
            cgt_renames(&s, e, i, true);
        }
    }
    return ir_str_take(&s);
}

static void *aligned(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 256, bytes ? (bytes + 255) / 256 * 256 : 256)) return NULL;
    memset(p, 0xFF, bytes ? (bytes + 255) / 256 * 256 : 256);
    return p;
}

/* Launch part c ('e' epilogue, 'p' prologue) of kernel k's BLAS form with
 * the kernel's buffers and one scratch pointer. */
static bool emu_part(const cg_cuda_kernel *e, int k, char c, void **args, void *scratch, void *so, launch_fn launch) {
    void *eargs[80];
    int na = 0;
    for (int i = 0; i < e->nbufs && na < 72; i++) eargs[na++] = args[i];
    eargs[na++] = scratch;
    char sym[64];
    snprintf(sym, sizeof sym, "fcemu_t%d_%c", k, c);
    tramp_fn f = (tramp_fn)dlsym(so, sym);
    return f && (!e->grid[0] || launch(f, eargs, e->grid, e->block) == 0);
}

/* A kernel's BLAS form as a BLAS library would run it (its prologue, a
 * plain triple loop in double, one rounding to D's type), then its
 * epilogue kernel. */
static bool emu_gemm(const cg_cuda_kernel *kk, int k, void **args, void *so, launch_fn launch) {
    const cg_cuda_gemm *gm = kk->gemm;
    ir_dtype ddt = gm->d_f32 ? FUSEC_DTYPE_F32 : (ir_dtype)gm->dt;
    size_t dbytes = (size_t)(gm->batch * gm->m * gm->n) * ir_dtype_size(ddt);
    unsigned char *scratch = aligned((size_t)gm->d_off + dbytes);
    if (!scratch) return false;
    bool ok = !gm->prologue || emu_part(gm->prologue, k, 'p', args, scratch, so, launch);
    void *d = gm->d_arg >= 0 ? args[gm->d_arg] : scratch + gm->d_off;
    const void *a = args[gm->a_arg], *b = gm->b_arg >= 0 ? args[gm->b_arg] : scratch;
    const void *bias = gm->bias_arg >= 0 ? args[gm->bias_arg] : NULL;
    for (int64_t z = 0; ok && z < gm->batch; z++)
        for (int64_t i = 0; i < gm->m; i++)
            for (int64_t j = 0; j < gm->n; j++) {
                double acc = bias ? ir_load_f(gm->dt, bias, j) : 0.0;
                for (int64_t q = 0; q < gm->k; q++)
                    acc += ir_load_f(gm->dt, a, z * gm->a_bs + i * gm->a_rs + q * gm->a_cs) *
                           ir_load_f(gm->dt, b, z * gm->b_bs + q * gm->b_rs + j * gm->b_cs);
                ir_store_f(ddt, d, (z * gm->m + i) * gm->n + j, acc);
            }
    if (ok && gm->epilogue) ok = emu_part(gm->epilogue, k, 'e', args, d, so, launch);
    free(scratch);
    return ok;
}

/* Run the plan through the emulated kernels (mode 0: the vector entry
 * points, 1: the scalar ones, 2: BLAS forms where kernels have them);
 * out[] gets each result. */
static bool emu_run(const plan *p, const cg_cuda_kernel *ks, void *so, launch_fn launch, int mode,
                    const fusec_tensor *in, fusec_tensor *out) {
    void **data = calloc((size_t)p->nbufs + 1, sizeof *data);
    unsigned char *arena = aligned((size_t)p->arena_bytes);
    bool ok = data && arena;
    for (int b = 0; ok && b < p->nbufs; b++) {
        const plan_buf *bf = &p->bufs[b];
        if (bf->kind == PLAN_BUF_INPUT) data[b] = in[bf->value->param_index].data;
        else if (bf->kind == PLAN_BUF_TEMP) data[b] = arena + bf->offset;
        else ok = (data[b] = aligned((size_t)bf->bytes)) != NULL;
    }
    for (int k = 0; ok && k < p->nkernels; k++) {
        const cg_cuda_kernel *kk = &ks[k];
        void *args[80];
        int na = 0;
        for (int i = 0; i < kk->nbufs && na < 72; i++) args[na++] = data[kk->bufs[i]];
        if (mode == 2 && kk->gemm) {
            ok = emu_gemm(kk, k, args, so, launch);
            continue;
        }
        void *scratch[4] = {0};
        for (int i = 0; i < kk->nscratch; i++) args[na++] = scratch[i] = aligned((size_t)kk->scratch_bytes[i]);
        char sym[64];
        bool use_s = mode == 1 && kk->scalar_name;
        snprintf(sym, sizeof sym, "fcemu_t%d_%c", k, use_s ? 's' : 'v');
        tramp_fn f = (tramp_fn)dlsym(so, sym);
        if (!f) {
            fprintf(stderr, "cgemu: no symbol %s\n", sym);
            ok = false;
        }
        const unsigned *grid = use_s ? kk->scalar_grid : kk->grid, *block = use_s ? kk->scalar_block : kk->block;
        if (ok && grid[0] && grid[1] && grid[2]) ok = launch(f, args, grid, block) == 0;
        if (ok && kk->next) {
            snprintf(sym, sizeof sym, "fcemu_t%d_n", k);
            f = (tramp_fn)dlsym(so, sym);
            ok = f && launch(f, args, kk->next->grid, kk->next->block) == 0;
        }
        for (int i = 0; i < kk->nscratch; i++) free(scratch[i]);
    }
    for (int i = 0; ok && i < p->g->nresults; i++) {
        const ir_value *v = p->g->results[i];
        int b = plan_buf_of(p, v);
        size_t bytes = (size_t)ir_type_numel(&v->type) * ir_dtype_size(v->type.dtype);
        out[i].dtype = v->type.dtype;
        out[i].rank = v->type.rank;
        for (int d = 0; d < v->type.rank; d++) out[i].shape[d] = v->type.dim[d];
        out[i].data = malloc(bytes ? bytes : 1);
        if (b >= 0 && out[i].data) memcpy(out[i].data, data[b], bytes);
    }
    for (int b = 0; data && b < p->nbufs; b++)
        if (p->bufs[b].kind == PLAN_BUF_OUTPUT) free(data[b]);
    free(data);
    free(arena);
    return ok;
}

/* The loosest tolerance of the float dtypes computed anywhere in g (an
 * f64 result of f32 arithmetic is good to f32's), with the looser f32 one
 * (every plan here may hold reductions or contractions). */
static cmp_tol graph_tolerance(const ir_graph *g, fusec_dtype dt) {
    cmp_tol t = cmp_tolerance(dt, true, tol_scale);
    for (const ir_node *n = g->first; n; n = n->next) {
        if (!ir_dtype_is_float(n->out->type.dtype)) continue;
        cmp_tol u = cmp_tolerance(n->out->type.dtype, true, tol_scale);
        if (ir_dtype_is_float(dt) && u.rtol > t.rtol) t = u;
    }
    return t;
}

/* 0 passed, 1 failed, -1 skipped. */
static int run_case(const char *text, const char *label, const char *dir, const char *cxx) {
    ir_diag d;
    ir_diag_init(&d, label, text, strlen(text));
    ir_graph *g = fe_parse(text, strlen(text), label, NULL, &d);
    if (!g) {
        ir_diag_free(&d);
        return -1;
    }
    int rc = 1;
    pass_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.diag = &d;
    plan *p = NULL;
    cg_cuda_kernel *ks = NULL;
    fusec_tensor *in = NULL, *ref = NULL, *got = NULL;
    void *so = NULL;
    char *src = NULL;
    char cpp[512], lib[512], cmd[2048];
    if (!pass_run_pipeline(g, NULL, &ctx) || !(p = pass_fuse(g, &d)) || !pass_memplan(p, &d)) goto fail;
    for (int i = 0; i < g->nparams; i++)
        if (ir_type_numel(&g->params[i]->type) > ((int64_t)1 << 24)) {
            rc = -1; /* too large to run here */
            goto done;
        }
    ks = calloc((size_t)p->nkernels + 1, sizeof *ks);
    for (int k = 0; k < p->nkernels; k++)
        if (!cg_cuda_generate(p, k, &ks[k], &d)) goto fail;
    src = emu_source(ks, p->nkernels);
    snprintf(cpp, sizeof cpp, "%s/case.cpp", dir);
    snprintf(lib, sizeof lib, "%s/case%d.so", dir, (int)getpid());
    FILE *f = fopen(cpp, "w");
    if (!f) goto fail;
    fputs(src, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s -std=c++17 -O1 -w -shared -fPIC -I%s -o %s %s", cxx,
             getenv("FUSEC_SOURCE_DIR") ? getenv("FUSEC_SOURCE_DIR") : ".", lib, cpp);
    if (system(cmd) != 0) {
        fprintf(stderr, "%s: host compile failed: %s\n", label, cmd);
        goto fail;
    }
    so = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    unlink(lib);
    if (!so) {
        fprintf(stderr, "%s: dlopen: %s\n", label, dlerror());
        goto fail;
    }
    launch_fn launch = (launch_fn)dlsym(so, "fcemu_launch");
    in = calloc((size_t)g->nparams + 1, sizeof *in);
    ref = calloc((size_t)g->nresults + 1, sizeof *ref);
    got = calloc((size_t)g->nresults + 1, sizeof *got);
    rng_state = 0;
    for (int i = 0; label[i]; i++) rng_state = rng_state * 131 + (unsigned char)label[i];
    bool specials = rng_next() % 4 == 0;
    for (int i = 0; i < g->nparams; i++) {
        const ir_type *ty = &g->params[i]->type;
        in[i].dtype = ty->dtype;
        in[i].rank = ty->rank;
        for (int k = 0; k < ty->rank; k++) in[i].shape[k] = ty->dim[k];
        int64_t n = ir_type_numel(ty);
        in[i].data = aligned((size_t)(n ? n : 1) * ir_dtype_size(ty->dtype));
        fill(&in[i], ty, specials);
    }
    if (rt_plan_run(p, in, g->nparams, ref, g->nresults, &d) != FUSEC_OK) {
        rc = -1; /* the reference cannot run it (e.g. an integer division by zero) */
        goto done;
    }
    rc = 0;
    static const char *const mode_name[3] = {"vector", "scalar", "BLAS"};
    bool blas = false;
    for (int k = 0; k < p->nkernels; k++) blas |= ks[k].gemm != NULL;
    for (int pass = 0; pass < (blas ? 3 : 2); pass++) {
        if (!emu_run(p, ks, so, launch, pass, in, got)) {
            fprintf(stderr, "%s: emulated run failed (%s entries)\n", label, mode_name[pass]);
            rc = 1;
        }
        for (int i = 0; i < g->nresults && rc == 0; i++) {
            cmp_result cr;
            cmp_tol tol = graph_tolerance(g, ref[i].dtype);
            if (!cmp_tensors(&ref[i], &got[i], tol, NULL, &cr)) {
                fprintf(stderr, "%s: result %d differs (%s entries): %s\n", label, i, mode_name[pass], cr.msg);
                rc = 1;
            }
        }
        for (int i = 0; i < g->nresults; i++) {
            free(got[i].data);
            got[i].data = NULL;
        }
    }
    if (rc == 0 && verbose) {
        int nblas = 0;
        for (int k = 0; k < p->nkernels; k++) nblas += ks[k].gemm != NULL;
        printf("ok %s (%d kernels, %d with a BLAS form)\n", label, p->nkernels, nblas);
    }
    goto done;
fail:
    if (d.nerr) fprintf(stderr, "%s", d.out.buf);
    rc = 1;
done:
    if (rc == 1) {
        fprintf(stderr, "---- %s: graph ----\n%s\n", label, text);
        if (p) {
            ir_str s = {0};
            plan_print(&s, p);
            fprintf(stderr, "---- plan ----\n%s", s.buf ? s.buf : "");
            ir_str_free(&s);
        }
        fprintf(stderr, "---- kernels: %s ----\n", cpp);
        char keep[600];
        snprintf(keep, sizeof keep, "%s/fail_%s.cpp", dir, label);
        for (char *c = keep + strlen(dir) + 1; *c; c++)
            if (*c == ' ' || *c == '/') *c = '_';
        if (src) {
            FILE *kf = fopen(keep, "w");
            if (kf) {
                fputs(src, kf);
                fclose(kf);
                fprintf(stderr, "kept in %s\n", keep);
            }
        }
    }
    for (int i = 0; in && i < g->nparams; i++) free(in[i].data);
    for (int i = 0; ref && i < g->nresults; i++) free(ref[i].data);
    free(in);
    free(ref);
    free(got);
    if (so) {
        void (*cleanup)(void) = (void (*)(void))dlsym(so, "fcemu_cleanup");
        if (cleanup) cleanup();
        dlclose(so);
    }
    for (int k = 0; ks && p && k < p->nkernels; k++) cg_cuda_kernel_free(&ks[k]);
    free(ks);
    free(src);
    if (p) plan_free(p);
    ir_graph_free(g);
    ir_diag_free(&d);
    return rc;
}

int main(int argc, char **argv) {
    long seed = 1, count = 0;
    const char *dir = "/tmp/cgemu", *cxx = "g++";
    int passed = 0, failed = 0, skipped = 0;
    char **files = calloc((size_t)argc + 1, sizeof *files);
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) seed = atol(argv[++i]);
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) count = atol(argv[++i]);
        else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--cxx") == 0 && i + 1 < argc) cxx = argv[++i];
        else if (strcmp(argv[i], "--tol-scale") == 0 && i + 1 < argc) tol_scale = atof(argv[++i]);
        else if (strcmp(argv[i], "--max-numel") == 0 && i + 1 < argc) max_numel = atol(argv[++i]);
        else if (strcmp(argv[i], "-v") == 0) verbose = true;
        else files[nfiles++] = argv[i];
    }
    char mk[600];
    snprintf(mk, sizeof mk, "mkdir -p %s", dir);
    if (system(mk) != 0) return 2;
    for (int i = 0; i < nfiles; i++) {
        char *text = cgt_read_file(files[i], NULL);
        if (!text) continue;
        int rc = run_case(text, files[i], dir, cxx);
        passed += rc == 0, failed += rc == 1, skipped += rc < 0;
        free(text);
    }
    for (long s = seed; s < seed + count; s++) {
        gen_opts go;
        gen_opts_default(&go);
        if (max_numel > 0) go.max_numel = max_numel;
        char *text = gen_graph((uint64_t)s, &go), label[64];
        snprintf(label, sizeof label, "seed%ld", s);
        int rc = run_case(text, label, dir, cxx);
        passed += rc == 0, failed += rc == 1, skipped += rc < 0;
        free(text);
    }
    free(files);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
