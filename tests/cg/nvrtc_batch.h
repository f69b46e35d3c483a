/*
 * nvrtc_batch.h - compile generated CUDA kernels through NVRTC in batches,
 * for the tests of the CUDA code generator (tests/unit/test_cg_cuda.c,
 * tests/cg/cgdump.c).  Header-only: each test is one translation unit.
 *
 * NVRTC costs a few tenths of a second per program whatever its size, so
 * many kernels go into one program: each translation unit is wrapped in a
 * namespace of its own (its preamble helpers and tables then cannot clash)
 * and its extern "C" entry points, which would, are renamed with a #define
 * around it.  A failing batch is recompiled kernel by kernel so the report
 * names the kernel and carries NVRTC's log and the source.
 *
 * Needs FUSEC_HAVE_CUDA and <nvrtc.h>; cgt_available() is false otherwise.
 */
#ifndef FUSEC_TESTS_CG_NVRTC_BATCH_H
#define FUSEC_TESTS_CG_NVRTC_BATCH_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda.h"

#if defined(FUSEC_HAVE_CUDA) && defined(__has_include)
#if __has_include(<nvrtc.h>)
#define CGT_HAVE_NVRTC 1
#include <nvrtc.h>
#endif
#endif

/* One generated kernel to compile, with a label for messages. */
typedef struct cgt_item {
    char *label;
    cg_cuda_kernel k;
} cgt_item;

static inline char *cgt_strdup(const char *s) {
    char *r = malloc(strlen(s) + 1);
    if (r) strcpy(r, s);
    return r;
}

static inline bool cgt_available(void) {
#ifdef CGT_HAVE_NVRTC
    return true;
#else
    return false;
#endif
}

/* The kernels of k's BLAS form: j 0 its epilogue, 1 its prologue; NULL
 * where it has none. */
static inline const cg_cuda_kernel *cgt_blas_part(const cg_cuda_kernel *k, int j) {
    return !k->gemm ? NULL : j == 0 ? k->gemm->epilogue : k->gemm->prologue;
}

/* Append "#define NAME fcqI_NAME" for every entry point of k (or the
 * matching #undef). */
static inline void cgt_renames(ir_str *s, const cg_cuda_kernel *k, int i, bool undef) {
    for (const cg_cuda_kernel *x = k; x; x = x->next) {
        const char *names[2] = {x->name, x->scalar_name};
        for (int j = 0; j < 2; j++) {
            if (!names[j]) continue;
            if (undef) ir_str_printf(s, "#undef %s\n", names[j]);
            else ir_str_printf(s, "#define %s fcq%d_%s\n", names[j], i, names[j]);
        }
    }
}

#ifdef CGT_HAVE_NVRTC
/* Compile one program; on failure *log gets NVRTC's log (malloc'd). */
static inline bool cgt_compile_src(const char *src, const char *arch, const char *const *extra, char **log) {
    nvrtcProgram prog;
    *log = NULL;
    if (nvrtcCreateProgram(&prog, src, "fusec_kernel.cu", 0, NULL, NULL) != NVRTC_SUCCESS) {
        *log = cgt_strdup("nvrtcCreateProgram failed");
        return false;
    }
    const char *opts[16];
    int n = 0;
    char archopt[64];
    snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
    opts[n++] = archopt;
    for (const char *const *o = cg_cuda_options(); *o && n < 12; o++) opts[n++] = *o;
    for (int i = 0; extra && extra[i] && n < 15; i++) opts[n++] = extra[i];
    nvrtcResult r = nvrtcCompileProgram(prog, n, opts);
    if (r != NVRTC_SUCCESS) {
        size_t len = 0;
        nvrtcGetProgramLogSize(prog, &len);
        char *l = malloc(len + 64);
        if (l) {
            snprintf(l, 64, "%s\n", nvrtcGetErrorString(r));
            nvrtcGetProgramLog(prog, l + strlen(l));
        }
        *log = l;
    }
    nvrtcDestroyProgram(&prog);
    return r == NVRTC_SUCCESS;
}
#else
static inline bool cgt_compile_src(const char *src, const char *arch, const char *const *extra, char **log) {
    (void)src, (void)arch, (void)extra;
    *log = cgt_strdup("built without NVRTC");
    return false;
}
#endif

/* Compile items[0..n) for arch in one program; if that fails, one by one,
 * printing each failure (label, log, source) to `report`.  Returns the
 * number of kernels that failed. */
static inline int cgt_compile_batch(cgt_item *items, int n, const char *arch, const char *const *extra,
                                    FILE *report) {
    if (n == 0) return 0;
    ir_str s = {0};
    for (int i = 0; i < n; i++) {
        cgt_renames(&s, &items[i].k, i, false);
        ir_str_printf(&s, "namespace fcq%d {\n", i);
        ir_str_puts(&s, items[i].k.source);
        ir_str_puts(&s, "\n} /* namespace */\n");
        cgt_renames(&s, &items[i].k, i, true);
        for (int j = 0; j < 2; j++) {
            const cg_cuda_kernel *e = cgt_blas_part(&items[i].k, j);
            if (!e) continue;
            cgt_renames(&s, e, i, false);
            ir_str_printf(&s, "namespace fcq%d%c {\n%s\n} /* namespace */\n", i, "ep"[j], e->source);
            cgt_renames(&s, e, i, true);
        }
    }
    char *log = NULL;
    bool ok = cgt_compile_src(s.buf, arch, extra, &log);
    ir_str_free(&s);
    free(log);
    if (ok) return 0;
    int bad = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 3; j++) {
            const cg_cuda_kernel *k = j ? cgt_blas_part(&items[i].k, j - 1) : &items[i].k;
            if (!k || cgt_compile_src(k->source, arch, extra, &log)) continue;
            bad++;
            if (report)
                fprintf(report, "NVRTC (%s) failed on %s (kernel %s):\n%s\n---- source ----\n%s\n---- end ----\n",
                        arch, items[i].label, k->name, log ? log : "", k->source);
            free(log);
        }
    if (bad == 0 && report) fprintf(report, "NVRTC (%s): a batch failed but each kernel alone compiled\n", arch);
    return bad ? bad : 1;
}

#endif
