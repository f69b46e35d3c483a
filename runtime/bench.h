/*
 * bench.h - timing a graph: what `fusec bench` reports (runtime/bench.c).
 *
 * rt_bench compiles a graph once (timed), then times its runs: on the CPU
 * backends fusec_module_run with a monotonic clock; on CUDA the device run
 * path with CUDA events, the whole graph and each kernel, on inputs
 * rotated through enough copies that the L2 cache does not hold them
 * (rt_cuda_bench, runtime/cuda_exec.c says how).  Each timing is the
 * median, min and max of the timed runs, after untimed warmup runs.  On
 * CUDA it also times compiling the graph again with an empty and with a
 * warm kernel cache.
 *
 * Bytes.  A kernel moves the plan buffers it reads and writes, each
 * distinct buffer once: the least it can touch (a kernel that rereads a
 * tile from memory moves more).  The whole graph moves at least its inputs
 * and its outputs, as if every intermediate stayed on chip; the sum over
 * its kernels is what the plan makes it move.
 *
 * The roofline.  The copy bandwidth is measured in the same process: a
 * device-to-device copy on CUDA, memcpy on the CPU, of a buffer far larger
 * than the caches, median of a few runs; a copy reads and writes, so the
 * bandwidth is 2 x bytes / time.  "% of roof" is (bytes / time) over that
 * bandwidth: how close a kernel or the graph comes to moving its bytes as
 * fast as a copy does.
 *
 * Nothing here exits or aborts; errors come back as a status and a message.
 */
#ifndef FUSEC_RUNTIME_BENCH_H
#define FUSEC_RUNTIME_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "fusec.h"

typedef struct rt_bench_opts {
    int iters;  /* timed runs, >= 1 */
    int warmup; /* untimed runs before them, >= 0 */
} rt_bench_opts;

/* Milliseconds over the timed runs. */
typedef struct rt_bench_stat {
    double median_ms, min_ms, max_ms;
} rt_bench_stat;

typedef struct rt_bench_kernel {
    char *name;    /* the plan kernel's, e.g. "k1_softmax" */
    int64_t bytes; /* the distinct buffers it reads and writes */
    rt_bench_stat t;
} rt_bench_kernel;

typedef struct rt_bench_result {
    char *graph;            /* the function's name, without '@' */
    fusec_backend backend;
    char *device;           /* CUDA: the device summary line; else NULL */
    int iters, warmup;
    /* The inputs (and room for the outputs) of one run, and how many
     * copies of them the runs rotate through: CUDA, enough to exceed twice
     * the L2 (l2_bytes) as far as free memory allows; the CPU backends: 1. */
    int copies;
    int64_t copy_bytes, l2_bytes;
    /* The whole graph: on CUDA the device run path (fusec_module_run_device)
     * on the rotated copies, and again on one copy every run (`same`), where
     * runs repeat their pointers and so replay as a CUDA graph; *_replays
     * counts the runs of each pass, warmup included, that did.  On the CPU,
     * fusec_module_run. */
    rt_bench_stat whole, same;
    bool have_same;
    int whole_replays, same_replays;
    int64_t min_bytes;       /* the graph's inputs and outputs */
    int64_t plan_bytes;      /* the sum over the plan's kernels; -1: no plan (interp) */
    double copy_gbps;        /* the copy bandwidth, 1e9 bytes/s; 0: not measured */
    int64_t copy_test_bytes; /* ... with a copy of this many bytes */
    /* The plan's kernels, in schedule order, with bytes; times only where
     * kernel_times (CUDA: each kernel between two events, launched directly
     * without graph replay, on the rotated copies). */
    int nkernels;
    rt_bench_kernel *kernels;
    bool kernel_times;
    /* fusec_compile wall-clock: the first compile (CUDA: with the driver's
     * initialization, through the usual kernel cache), then (CUDA only, else
     * < 0) with an empty kernel cache and with a warm one. */
    double compile_ms, compile_empty_ms, compile_warm_ms;
} rt_bench_result;

/* Compile g for backend b and time it on nin host inputs (parameter order,
 * types checked), as o says.  On success *r is filled (free it with
 * rt_bench_result_free); on failure *r holds nothing to free and *errmsg
 * (if not NULL) says why, as fusec_compile or fusec_module_run would have
 * (free it with fusec_free): FUSEC_ERR_UNSUPPORTED for a backend that is
 * not built in. */
fusec_status rt_bench(const fusec_graph *g, fusec_backend b, const fusec_tensor *in, int nin,
                      const rt_bench_opts *o, rt_bench_result *r, char **errmsg);
void rt_bench_result_free(rt_bench_result *r);

/* Median, min and max of ms[0..n) (n >= 1; reorders ms). */
void rt_bench_stat_of(double *ms, int n, rt_bench_stat *out);

#endif
