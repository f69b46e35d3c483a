/*
 * cuda.h - the CUDA runtime: compiles the CUDA C that codegen/cuda.c
 * writes for each kernel of a plan with NVRTC (through the kernel cache),
 * loads it with the Driver API and runs the plan on a stream.
 *
 * The driver (libcuda.so.1) is loaded with dlopen at first use, so a fusec
 * built with CUDA starts and runs its other backends on machines without
 * one; NVRTC is linked (it ships with the toolkit fusec was built with).
 * Nothing here exposes a CUDA type: callers see plain C, so the rest of
 * the tree and the tests compile without the toolkit's headers.  In a
 * build without the toolkit (no FUSEC_HAVE_CUDA) every call fails with
 * FUSEC_ERR_UNSUPPORTED and says so.
 *
 * Errors go to an ir_diag.  Every driver and NVRTC call is checked; one
 * that fails a way that leaves the CUDA context unusable (an illegal
 * address, a failed launch, ...) marks the runtime lost for the rest of the
 * process, and every later call fails at once with "the CUDA context is
 * lost after an earlier error: ..." instead of retrying.
 *
 * Environment:
 *   FUSEC_CUDA_DRIVER              the driver library to dlopen (default libcuda.so.1)
 *   FUSEC_CUDA_DEVICE              the device ordinal (default 0)
 *   FUSEC_CUDA_GRAPHS              0: never replay CUDA graphs; 1: capture at the
 *                                  first run; default: capture when a run repeats
 *                                  the previous run's pointers
 *   FUSEC_CUBLASLT                 0: run GEMMs on fusec's own kernels; 1: every GEMM
 *                                  through cuBLASLt (default: those of 2^26 flops
 *                                  or more); a path: the libcublasLt to dlopen
 *                                  (default: the toolkit's, then
 *                                  libcublasLt.so.<major>; runtime/cublaslt.c)
 *   FUSEC_CUDA_INJECT_NVRTC_FAILURE  non-empty and not "0": append a syntax
 *                                  error to every generated source (tests)
 *   FUSEC_CACHE_DIR                the kernel cache (runtime/kcache.h)
 */
#ifndef FUSEC_RUNTIME_CUDA_H
#define FUSEC_RUNTIME_CUDA_H

#include "ir/plan.h"
#include "runtime/bench.h"

struct rt_kcache;

/* ---- the process-wide runtime ----------------------------------------- */

/* Load the driver, initialize it, pick the device and retain its primary
 * context, open the kernel cache: once per process (later calls return the
 * first call's outcome; a lost context is reported here too).  Also called
 * by everything below that needs the driver. */
fusec_status rt_cuda_init(ir_diag *d);

/* One line about the device and toolchain, e.g. "NVIDIA H100 80GB HBM3,
 * compute capability 9.0, 132 SMs, 79.1 GiB; driver 13.0, NVRTC 13.0,
 * compiling for sm_90 (CUBIN)", or NULL when rt_cuda_init failed.  Owned by
 * the runtime. */
const char *rt_cuda_device_summary(void);

/* ---- compiled plans ------------------------------------------------------ */

typedef struct rt_cuda_module rt_cuda_module;

/* Generate (codegen/cuda.h), compile (in parallel, one NVRTC program per
 * kernel, through the kernel cache `cache`, or the process's when NULL:
 * the one rt_cuda_init opens) and load every kernel of plan p (after
 * pass_memplan), and allocate the first execution context: one arena
 * allocation of the plan's arena size plus its kernels' scratch.  p must
 * outlive the module.  On failure *out is NULL and d says why: an NVRTC
 * failure (FUSEC_ERR_BACKEND) brings its log and the path of the saved
 * source; running out of GPU memory (FUSEC_ERR_NOMEM) names the bytes
 * requested; an op the code generator cannot handle is
 * FUSEC_ERR_UNSUPPORTED. */
fusec_status rt_cuda_load(const plan *p, struct rt_kcache *cache, rt_cuda_module **out, ir_diag *d);
/* Waits for work still queued on callers' streams, then frees everything.
 * NULL is a no-op. */
void rt_cuda_unload(rt_cuda_module *m);

/* Run on host tensors: rt_plan_run's contract (runtime/plan_exec.h):
 * inputs checked against the parameters, nout outputs filled with malloc'd
 * data (free()), nothing allocated on failure.  The inputs are copied to
 * the device, the kernels run in plan order, the outputs are copied back;
 * returns when all of it is done.  Safe from several threads at once: each
 * concurrent run takes its own execution context (stream, arena, buffers)
 * from a pool. */
fusec_status rt_cuda_run(rt_cuda_module *m, const fusec_tensor *in, int nin, fusec_tensor *out,
                         int nout, ir_diag *d);

/* Run on device memory, without copies: in[i].data and out[i].data are
 * device addresses (CUdeviceptr values) in the runtime's context (the
 * device's primary context, the one the CUDA runtime API uses).  Inputs
 * are checked against the parameters; out[i] gets the result's dtype,
 * rank and shape, and its data must hold that many bytes.  Outputs must
 * not overlap inputs or each other.  stream is a CUstream (NULL: the
 * legacy default stream); the work is queued on it and the call returns
 * without waiting: the outputs are ready when the stream gets there.
 * Pointers that are not 16-byte aligned make the kernels that touch them
 * take their scalar entry points; a pointer not aligned to its element
 * size is an error. */
fusec_status rt_cuda_run_device(rt_cuda_module *m, const fusec_tensor *in, int nin,
                                fusec_tensor *out, int nout, void *stream, ir_diag *d);

/* Load, run on host tensors, unload: rt_plan_run's signature, for
 * differential tests that hold a plan rather than a module. */
fusec_status rt_cuda_plan_run(const plan *p, const fusec_tensor *in, int nin, fusec_tensor *out,
                              int nout, ir_diag *d);

/* Time the module's runs on the device, nin host inputs as their data:
 * `fusec bench` (runtime/bench.h; how, in cuda_exec.c "Benchmarking").
 * Fills r's l2_bytes, copies, copy_bytes, whole, same, have_same,
 * *_replays, copy_gbps, copy_test_bytes and kernel_times, and the times
 * r->kernels[k].t of the plan's kernels (r->kernels has the plan's
 * nkernels entries).  Returns when the device is done with all of it. */
fusec_status rt_cuda_bench(rt_cuda_module *m, const fusec_tensor *in, int nin, const rt_bench_opts *o,
                           rt_bench_result *r, ir_diag *d);

/* Compile and load statistics of a module, as text lines ("kernels: 3
 * (2 from the kernel cache), NVRTC 412.0 ms, module load 0.6 ms, ...").
 * Appended to s. */
void rt_cuda_describe(const rt_cuda_module *m, ir_str *s);

/* ---- pieces, exposed for tests -------------------------------------------- */

/* The target for a device of compute capability cc (major * 10 + minor)
 * given the architectures NVRTC supports (supported[0..n), any order):
 * cc itself when supported (*ptx = false: CUBIN); otherwise the newest
 * supported architecture below cc, as PTX the driver compiles for the
 * device (*ptx = true).  False (with a message in d) when cc is older than
 * everything NVRTC supports, or n is 0. */
bool rt_cuda_pick_arch(int cc, const int *supported, int n, int *arch, bool *ptx, ir_diag *d);

/* The NVRTC option naming the target: "--gpu-architecture=sm_90" for a
 * CUBIN, "--gpu-architecture=compute_90" for PTX; the short form ("sm_90",
 * "compute_90") goes into the kernel cache key. */
void rt_cuda_arch_option(int arch, bool ptx, char opt[48], char shortname[16]);

/* The architectures this NVRTC supports (malloc'd, free()), *n of them;
 * NULL on failure (reported to d).  Needs no device. */
int *rt_cuda_nvrtc_archs(int *n, ir_diag *d);

/* Compile one translation unit with NVRTC: cg_cuda_options() plus the
 * target's option, and `extra` options (NULL-terminated, may be NULL).
 * On success *bin is the malloc'd CUBIN (ptx false) or NUL-terminated PTX
 * (ptx true) of *len bytes.  On failure d gets NVRTC's error, its log and
 * the path of a file in $TMPDIR (default /tmp) holding the source; `name`
 * (the kernel's) names the program and that file.  Honors
 * FUSEC_CUDA_INJECT_NVRTC_FAILURE.  Needs no device. */
fusec_status rt_cuda_nvrtc_compile(const char *name, const char *source, int arch, bool ptx,
                                   const char *const *extra, void **bin, size_t *len, ir_diag *d);

#endif
