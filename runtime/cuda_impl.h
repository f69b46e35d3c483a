/*
 * cuda_impl.h - private interface between runtime/cuda.c (the driver table,
 * the process-wide runtime, NVRTC) and runtime/cuda_exec.c (compiled
 * modules, execution contexts, runs).  Only those two include it; it needs
 * the toolkit's headers, so it is used under FUSEC_HAVE_CUDA only.
 *
 * The driver table.  Every driver function fusec calls is listed once in
 * RT_CU_FUNCS.  Each entry becomes a field of `rt_cu` declared with the
 * type of the prototype in <cuda.h> (so calls are type-checked against the
 * header), named by what the header's name expands to: <cuda.h> maps
 * cuMemAlloc to cuMemAlloc_v2, cuStreamBeginCapture to
 * cuStreamBeginCapture_v2 and so on, exactly the symbols a program linked
 * against libcuda would bind, so those are the names looked up with dlsym.
 * Code writes `rt_cu.cuMemAlloc(...)` and gets the header's version.
 */
#ifndef FUSEC_RUNTIME_CUDA_IMPL_H
#define FUSEC_RUNTIME_CUDA_IMPL_H

#include <cuda.h>
#include <nvrtc.h>
#include <stdatomic.h>

#include "runtime/cuda.h"

#define RT_CU_FUNCS(X)                                                                   \
    X(cuInit) X(cuDriverGetVersion) X(cuGetErrorName) X(cuGetErrorString)               \
    X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetAttribute) X(cuDeviceGetName)       \
    X(cuDeviceTotalMem) X(cuDevicePrimaryCtxRetain) X(cuCtxSetCurrent) X(cuMemGetInfo) \
    X(cuMemAlloc) X(cuMemFree) X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync)                 \
    X(cuMemcpyDtoDAsync) X(cuMemsetD8Async) X(cuStreamCreate) X(cuStreamDestroy)         \
    X(cuStreamSynchronize) X(cuStreamWaitEvent) X(cuEventCreate) X(cuEventDestroy)       \
    X(cuEventRecord) X(cuEventSynchronize) X(cuEventElapsedTime) X(cuModuleLoadData)     \
    X(cuModuleLoadDataEx) X(cuModuleUnload) X(cuModuleGetFunction) X(cuFuncSetAttribute) \
    X(cuLaunchKernel) X(cuStreamBeginCapture) X(cuStreamEndCapture)                      \
    X(cuGraphInstantiateWithFlags) X(cuGraphLaunch) X(cuGraphExecDestroy)                \
    X(cuGraphDestroy) X(cuStreamIsCapturing)

#define RT_CU_FIELD_(name) __typeof__(&name) name;
typedef struct rt_cu_api {
    RT_CU_FUNCS(RT_CU_FIELD_)
} rt_cu_api;
#undef RT_CU_FIELD_

/* The table; filled by rt_cuda_init (read-only afterwards). */
extern rt_cu_api rt_cu;

/* The one check every driver and NVRTC call goes through.  On failure it
 * records the call's text, its file:line and the error's name and
 * description in d (which may be NULL) and returns false; an error that
 * leaves the context unusable also marks the runtime lost. */
#define CU_CHECK(d, expr) rt_cu_check((expr), #expr, __FILE__, __LINE__, (d))
#define NVRTC_CHECK(d, expr) rt_nvrtc_check((expr), #expr, __FILE__, __LINE__, (d))
bool rt_cu_check(CUresult r, const char *expr, const char *file, int line, ir_diag *d);
bool rt_nvrtc_check(nvrtcResult r, const char *expr, const char *file, int line, ir_diag *d);

/* Whether an error of this kind leaves the context unusable. */
bool rt_cu_sticky(CUresult r);
/* True (and an error in d, which may be NULL) when the runtime is lost. */
bool rt_cuda_is_lost(ir_diag *d);

/* The process-wide state rt_cuda_init sets up. */
typedef struct rt_cuda_state {
    CUdevice dev;
    CUcontext ctx;
    int ordinal;
    int cc;                /* compute capability, major * 10 + minor */
    int arch;              /* what NVRTC compiles for */
    bool ptx;              /* ... as PTX (the device is newer than NVRTC) */
    int driver_version;    /* cuDriverGetVersion */
    int nvrtc_major, nvrtc_minor;
    int ncores;            /* online CPUs: compile threads */
    int graph_mode;        /* RT_GRAPHS_* */
    struct rt_kcache *cache;
    char summary[512];
} rt_cuda_state;

enum { RT_GRAPHS_OFF, RT_GRAPHS_ALWAYS, RT_GRAPHS_AUTO };

extern rt_cuda_state rt_cuda;

/* Make the runtime's context current on the calling thread. */
bool rt_cuda_enter(ir_diag *d);

/* Compile (through `cache`, a kernel cache) and load one translation unit
 * into a module for the runtime's device.  *cached says whether the kernel
 * cache had it; *ms_compile and *ms_load receive the time spent in NVRTC
 * and in the module load.  Thread-safe. */
bool rt_cuda_build(struct rt_kcache *cache, const char *name, const char *source, CUmodule *mod, bool *cached,
                   double *ms_compile, double *ms_load, ir_diag *d);

/* Append the messages of `from` (an ir_diag's text, "error: ..." lines and
 * their continuation lines) to d as errors of d. */
void rt_cuda_diag_merge(ir_diag *d, const ir_diag *from);

/* Monotonic time in milliseconds. */
double rt_cuda_now_ms(void);

#endif
