/*
 * bench.c - `fusec bench`: compile a graph, time its runs, count the bytes
 * they move, measure a copy bandwidth to hold them against, and time
 * compiling again with an empty and with a warm kernel cache.  What each
 * number means is in runtime/bench.h; the CUDA timings are rt_cuda_bench's
 * (runtime/cuda_exec.c, "Benchmarking").
 *
 * The CPU backends.  Each run is timed whole around fusec_module_run with
 * CLOCK_MONOTONIC, the allocation of its outputs included (the call makes
 * them).  Kernels are not timed one by one: the interpreter has none, and
 * the plan executor runs a plan in one call.  The inputs are not rotated:
 * these backends are far from memory-bound.  The roofline is memcpy of a
 * buffer larger than CPU caches, median of a few runs.
 *
 * Compile times with an empty and a warm kernel cache (CUDA).  The graph is
 * compiled through a kernel cache in a new temporary folder ($TMPDIR, else
 * /tmp): once empty, then again through a cache opened afresh on the same
 * folder.  The second open starts with nothing in memory, so every kernel
 * is read from disk, as in a new process with a warm cache (the OS may
 * still hold the files in its page cache, as it would right after a
 * compile).  Both come after the first compile of rt_bench, which paid for
 * loading and initializing the driver.  The folder is removed afterwards;
 * the user's kernel cache is not touched by them.
 */
#define _GNU_SOURCE /* mkdtemp */
#include "runtime/bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "frontend/api.h"
#include "runtime/kcache.h"
#include "runtime/module.h"

/* The memcpy that measures the CPU's bandwidth, and how often it is timed. */
#define BENCH_HOST_COPY_BYTES ((size_t)128 << 20)
#define BENCH_HOST_COPY_RUNS 5

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void rt_bench_stat_of(double *ms, int n, rt_bench_stat *out) {
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    out->min_ms = ms[0];
    out->max_ms = ms[n - 1];
    out->median_ms = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
}

void rt_bench_result_free(rt_bench_result *r) {
    if (!r) return;
    free(r->graph);
    free(r->device);
    for (int k = 0; r->kernels && k < r->nkernels; k++) free(r->kernels[k].name);
    free(r->kernels);
    memset(r, 0, sizeof *r);
}


/* Whether buffer id b is among ids[0..n). */
static bool listed(const int *ids, int n, int b) {
    for (int i = 0; i < n; i++)
        if (ids[i] == b) return true;
    return false;
}

/* The distinct buffers kernel k reads and writes, each counted once. */
static int64_t kernel_bytes(const plan *p, const plan_kernel *k) {
    int64_t bytes = 0;
    for (int i = 0; i < k->nin; i++)
        if (!listed(k->in, i, k->in[i])) bytes += p->bufs[k->in[i]].bytes;
    for (int i = 0; i < k->nout; i++)
        if (!listed(k->in, k->nin, k->out[i]) && !listed(k->out, i, k->out[i])) bytes += p->bufs[k->out[i]].bytes;
    return bytes;
}

/* Names and bytes of the plan's kernels; the sum, and the graph's own. */
static bool count_bytes(const fusec_module *m, rt_bench_result *r) {
    const ir_graph *g = m->g;
    for (int i = 0; i < g->nparams; i++) r->min_bytes += ir_type_bytes(&g->params[i]->type);
    for (int i = 0; i < g->nresults; i++) r->min_bytes += ir_type_bytes(&g->results[i]->type);
    r->plan_bytes = -1;
    if (!m->plan) return true;
    const plan *p = m->plan;
    r->kernels = calloc((size_t)(p->nkernels > 0 ? p->nkernels : 1), sizeof *r->kernels);
    if (!r->kernels) return false;
    r->nkernels = p->nkernels;
    r->plan_bytes = 0;
    for (int k = 0; k < p->nkernels; k++) {
        const plan_kernel *pk = &p->kernels[k];
        r->kernels[k].name = strdup(pk->name ? pk->name : "kernel");
        if (!r->kernels[k].name) return false;
        r->kernels[k].bytes = kernel_bytes(p, pk);
        r->plan_bytes += r->kernels[k].bytes;
    }
    return true;
}

/* memcpy's bandwidth into r (left 0 when the buffers cannot be had). */
static void host_bandwidth(rt_bench_result *r) {
    size_t n = BENCH_HOST_COPY_BYTES;
    char *src = malloc(n), *dst = malloc(n);
    /* Called through a volatile pointer: a copy into memory that is freed
     * unread must not be optimized away. */
    void *(*volatile copy)(void *, const void *, size_t) = memcpy;
    if (src && dst) {
        memset(src, 1, n);
        copy(dst, src, n); /* the first touch of dst's pages is not timed */
        double ms[BENCH_HOST_COPY_RUNS];
        for (int i = 0; i < BENCH_HOST_COPY_RUNS; i++) {
            double t0 = now_ms();
            copy(dst, src, n);
            ms[i] = now_ms() - t0;
        }
        rt_bench_stat t;
        rt_bench_stat_of(ms, BENCH_HOST_COPY_RUNS, &t);
        r->copy_test_bytes = (int64_t)n;
        if (t.median_ms > 0) r->copy_gbps = 2.0 * (double)n / (t.median_ms * 1e-3) / 1e9;
    }
    free(src);
    free(dst);
}

/* The CPU backends: fusec_module_run, timed whole. */
static fusec_status time_host(const fusec_module *m, const fusec_tensor *in, int nin, const rt_bench_opts *o,
                              rt_bench_result *r, char **errmsg) {
    int nout = m->g->nresults;
    fusec_tensor *out = calloc((size_t)nout + 1, sizeof *out);
    double *ms = calloc((size_t)o->iters, sizeof *ms);
    fusec_status st = FUSEC_OK;
    if (!out || !ms) {
        fe_set_errmsg(errmsg, "fusec bench: out of memory");
        st = FUSEC_ERR_NOMEM;
    }
    for (int i = -o->warmup; st == FUSEC_OK && i < o->iters; i++) {
        double t0 = now_ms();
        st = fusec_module_run(m, in, nin, out, nout, errmsg);
        double t = now_ms() - t0;
        if (st != FUSEC_OK) break;
        for (int j = 0; j < nout; j++) fusec_free(out[j].data);
        if (i >= 0) ms[i] = t;
    }
    if (st == FUSEC_OK) {
        rt_bench_stat_of(ms, o->iters, &r->whole);
        host_bandwidth(r);
    }
    free(out);
    free(ms);
    return st;
}

/* Compile g for CUDA with an empty and then a warm kernel cache in a
 * temporary folder (see the top). */
static fusec_status time_cache_compiles(const fusec_graph *g, rt_bench_result *r, char **errmsg) {
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    ir_str path = {0};
    ir_str_printf(&path, "%s/fusec-bench-cache-XXXXXX", tmp);
    char *dir = ir_str_take(&path);
    if (!dir) {
        fe_set_errmsg(errmsg, "fusec bench: out of memory");
        return FUSEC_ERR_NOMEM;
    }
    if (!mkdtemp(dir)) {
        fe_set_errmsg(errmsg, "fusec bench: cannot make a temporary kernel cache folder %s: %s", dir,
                      strerror(errno));
        free(dir);
        return FUSEC_ERR_IO;
    }
    fusec_status st = FUSEC_OK;
    double *ms[2] = {&r->compile_empty_ms, &r->compile_warm_ms};
    for (int pass = 0; st == FUSEC_OK && pass < 2; pass++) {
        rt_kcache *c = rt_kcache_open(dir, NULL);
        if (!c) {
            fe_set_errmsg(errmsg, "fusec bench: out of memory");
            st = FUSEC_ERR_NOMEM;
            break;
        }
        if (!rt_kcache_disk_enabled(c)) {
            /* A cache in memory only would make the warm compile a cold one. */
            const char *why = rt_kcache_warning(c);
            fe_set_errmsg(errmsg, "fusec bench: the temporary kernel cache %s cannot be used: %s", dir,
                          why ? why : "refused");
            st = FUSEC_ERR_IO;
        } else {
            fusec_module *mm = NULL;
            double t0 = now_ms();
            st = rt_module_compile(g, FUSEC_BACKEND_CUDA, c, &mm, errmsg);
            *ms[pass] = now_ms() - t0;
            fusec_module_destroy(mm);
        }
        rt_kcache_close(c);
    }
    rt_kcache_clear(dir, NULL);
    rmdir(dir);
    free(dir);
    if (st != FUSEC_OK) r->compile_empty_ms = r->compile_warm_ms = -1;
    return st;
}

fusec_status rt_bench(const fusec_graph *g, fusec_backend b, const fusec_tensor *in, int nin,
                      const rt_bench_opts *o, rt_bench_result *r, char **errmsg) {
    if (errmsg) *errmsg = NULL;
    memset(r, 0, sizeof *r);
    if (!o || o->iters < 1 || o->warmup < 0) {
        fe_set_errmsg(errmsg, "fusec bench: needs at least 1 timed run and no negative warmup");
        return FUSEC_ERR_INVALID;
    }
    fusec_module *m = NULL;
    double t0 = now_ms();
    fusec_status st = fusec_compile(g, b, &m, errmsg);
    r->compile_ms = now_ms() - t0;
    if (st != FUSEC_OK) return st;
    r->compile_empty_ms = r->compile_warm_ms = -1;
    r->backend = b;
    r->iters = o->iters;
    r->warmup = o->warmup;
    r->copies = 1;
    r->graph = strdup(m->g->name);
    if (!r->graph || !count_bytes(m, r)) {
        fe_set_errmsg(errmsg, "fusec bench: out of memory");
        st = FUSEC_ERR_NOMEM;
    }
    r->copy_bytes = r->min_bytes;
    if (st == FUSEC_OK && m->cuda) {
        const char *dev = rt_cuda_device_summary();
        r->device = dev ? strdup(dev) : NULL;
        ir_diag d;
        ir_diag_init(&d, m->srcname, m->text, m->textlen);
        st = rt_cuda_bench(m->cuda, in, nin, o, r, &d);
        if (st != FUSEC_OK) fe_take_diag(errmsg, &d);
        ir_diag_free(&d);
    } else if (st == FUSEC_OK) {
        st = time_host(m, in, nin, o, r, errmsg);
    }
    fusec_module_destroy(m);
    /* After the module is gone, so that its device memory is free again. */
    if (st == FUSEC_OK && b == FUSEC_BACKEND_CUDA) st = time_cache_compiles(g, r, errmsg);
    if (st != FUSEC_OK) rt_bench_result_free(r);
    return st;
}
