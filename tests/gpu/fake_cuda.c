/*
 * fake_cuda.c - a stand-in for the CUDA driver (built as libcuda.so.1) so
 * that the runtime's plumbing runs on machines without a GPU: loading the
 * driver table, initialization, compiling and loading modules, execution
 * contexts, host and device runs, CUDA graph capture and replay, running
 * out of memory and a lost context.  gpu_test --fake-driver uses it
 * (ctest gpu.fake), under the sanitizers too.
 *
 * "Device memory" is host memory (so the test's own copies work), filled
 * with 0xAB when allocated.  Kernels do not run: a launch only checks its
 * shape and is counted, so results are garbage and gpu_test does not
 * compare them.  Streams do nothing and events only note when they were
 * recorded (work is done when queued, so that is when it was reached); a
 * stream being captured counts what is queued on it instead.
 *
 * Knobs (environment):
 *   FAKE_CUDA_LIMIT=BYTES  device memory size (default 64 GiB): larger
 *                          allocations fail with CUDA_ERROR_OUT_OF_MEMORY
 *   FAKE_CUDA_CC=NN        compute capability (default 90)
 *   FAKE_CUDA_L2=BYTES     the L2 size the device reports (default 4 MiB)
 *   FAKE_CUDA_FAULTS=1     a launch whose first pointer argument is 0x100000
 *                          "faults": every later call returns
 *                          CUDA_ERROR_ILLEGAL_ADDRESS, as a real context
 *                          does after an illegal access
 *   FAKE_CUDA_VERBOSE=1    counters on stderr at exit
 *
 * NVRTC dlopens libcuda.so.1 itself and asks for cuGetExportTable, so that
 * is here too (answering "not supported").
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_API __attribute__((visibility("default")))

static atomic_long n_alloc, n_free, n_launch, n_graph_launch, n_capture;
static atomic_int faulted;

typedef struct fake_stream {
    int capturing;
    long queued; /* while capturing */
} fake_stream;

typedef struct fake_graph {
    long nodes;
} fake_graph;

/* Work runs when it is queued, so an event's time is when it was recorded. */
typedef struct fake_event {
    unsigned flags;
    int recorded;
    double ms;
} fake_event;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static size_t limit(void) {
    const char *l = getenv("FAKE_CUDA_LIMIT");
    return l && *l ? (size_t)strtoull(l, NULL, 0) : (size_t)64 << 30;
}

/* The L2 the benchmark rotates its copies past: small, so that tests make
 * several copies of small graphs without much memory. */
static int l2_bytes(void) {
    const char *l = getenv("FAKE_CUDA_L2");
    return l && *l ? atoi(l) : 4 << 20;
}

static CUresult state(void) { return atomic_load(&faulted) ? CUDA_ERROR_ILLEGAL_ADDRESS : CUDA_SUCCESS; }

static void *ptr(CUdeviceptr p) { return (void *)(uintptr_t)p; }

__attribute__((destructor)) static void report(void) {
    if (getenv("FAKE_CUDA_VERBOSE"))
        fprintf(stderr, "[fake cuda] allocations %ld, frees %ld, launches %ld, graph launches %ld, captures %ld\n",
                atomic_load(&n_alloc), atomic_load(&n_free), atomic_load(&n_launch), atomic_load(&n_graph_launch),
                atomic_load(&n_capture));
}

/* ---- errors, device, context ------------------------------------------------ */

FAKE_API CUresult cuInit(unsigned flags) {
    (void)flags;
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuDriverGetVersion(int *v) {
    *v = CUDA_VERSION;
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuGetErrorName(CUresult r, const char **s) {
    switch (r) {
    case CUDA_SUCCESS: *s = "CUDA_SUCCESS"; break;
    case CUDA_ERROR_OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case CUDA_ERROR_ILLEGAL_ADDRESS: *s = "CUDA_ERROR_ILLEGAL_ADDRESS"; break;
    case CUDA_ERROR_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; break;
    case CUDA_ERROR_INVALID_IMAGE: *s = "CUDA_ERROR_INVALID_IMAGE"; break;
    default: *s = "CUDA_ERROR_FAKE"; break;
    }
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuGetErrorString(CUresult r, const char **s) {
    *s = r == CUDA_ERROR_OUT_OF_MEMORY     ? "out of memory"
         : r == CUDA_ERROR_ILLEGAL_ADDRESS ? "an illegal memory access was encountered"
                                           : "an error of the fake driver";
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuGetExportTable(const void **table, const CUuuid *id) {
    (void)id;
    *table = NULL;
    return CUDA_ERROR_NOT_SUPPORTED;
}
FAKE_API CUresult cuDeviceGetCount(int *n) {
    *n = 1;
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuDeviceGet(CUdevice *d, int ordinal) {
    *d = ordinal;
    return ordinal == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}
FAKE_API CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice d) {
    (void)d;
    const char *e = getenv("FAKE_CUDA_CC");
    int cc = e && *e ? atoi(e) : 90;
    *v = a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR   ? cc / 10
         : a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR ? cc % 10
         : a == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT     ? 132
         : a == CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE            ? l2_bytes()
                                                             : 0;
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
    (void)d;
    snprintf(name, (size_t)len, "fusec fake GPU");
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuDeviceTotalMem(size_t *bytes, CUdevice d) {
    (void)d;
    *bytes = limit();
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) {
    (void)d;
    static int ctx;
    *c = (CUcontext)&ctx;
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuCtxSetCurrent(CUcontext c) {
    (void)c;
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuCtxSynchronize(void) { return state(); }

/* ---- memory ------------------------------------------------------------------- */

FAKE_API CUresult cuMemGetInfo(size_t *free_bytes, size_t *total) {
    *total = limit();
    *free_bytes = *total;
    return state();
}
FAKE_API CUresult cuMemAlloc(CUdeviceptr *p, size_t n) {
    if (state()) return state();
    if (n == 0) return CUDA_ERROR_INVALID_VALUE;
    if (n > limit()) return CUDA_ERROR_OUT_OF_MEMORY;
    void *m = aligned_alloc(256, (n + 255) / 256 * 256);
    if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
    memset(m, 0xAB, n);
    atomic_fetch_add(&n_alloc, 1);
    *p = (CUdeviceptr)(uintptr_t)m;
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuMemFree(CUdeviceptr p) {
    atomic_fetch_add(&n_free, 1);
    free(ptr(p));
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuMemcpyHtoD(CUdeviceptr d, const void *s, size_t n) {
    if (!state()) memcpy(ptr(d), s, n);
    return state();
}
FAKE_API CUresult cuMemcpyDtoH(void *d, CUdeviceptr s, size_t n) {
    if (!state()) memcpy(d, ptr(s), n);
    return state();
}
FAKE_API CUresult cuMemsetD8(CUdeviceptr d, unsigned char v, size_t n) {
    if (!state()) memset(ptr(d), v, n);
    return state();
}
FAKE_API CUresult cuMemcpyHtoDAsync(CUdeviceptr d, const void *s, size_t n, CUstream h) {
    (void)h;
    return cuMemcpyHtoD(d, s, n);
}
FAKE_API CUresult cuMemcpyDtoHAsync(void *d, CUdeviceptr s, size_t n, CUstream h) {
    (void)h;
    return cuMemcpyDtoH(d, s, n);
}
FAKE_API CUresult cuMemcpyDtoDAsync(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream h) {
    (void)h;
    if (!state()) memmove(ptr(d), ptr(s), n);
    return state();
}
FAKE_API CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream h) {
    fake_stream *s = (fake_stream *)h;
    if (s && s->capturing) {
        s->queued++;
        return state();
    }
    return cuMemsetD8(d, v, n);
}

/* ---- streams, events, graphs ---------------------------------------------------------- */

FAKE_API CUresult cuStreamCreate(CUstream *s, unsigned flags) {
    (void)flags;
    *s = (CUstream)calloc(1, sizeof(fake_stream));
    return *s ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
FAKE_API CUresult cuStreamDestroy(CUstream s) {
    free(s);
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuStreamSynchronize(CUstream s) {
    (void)s;
    return state();
}
FAKE_API CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned flags) {
    (void)s, (void)e, (void)flags;
    return state();
}
FAKE_API CUresult cuStreamIsCapturing(CUstream h, CUstreamCaptureStatus *status) {
    fake_stream *s = (fake_stream *)h;
    *status = s && s->capturing ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
    return state();
}
FAKE_API CUresult cuEventCreate(CUevent *e, unsigned flags) {
    fake_event *x = calloc(1, sizeof *x);
    if (!x) return CUDA_ERROR_OUT_OF_MEMORY;
    x->flags = flags;
    *e = (CUevent)x;
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuEventDestroy(CUevent e) {
    free(e);
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuEventRecord(CUevent e, CUstream s) {
    (void)s;
    fake_event *x = (fake_event *)e;
    x->ms = now_ms();
    x->recorded = 1;
    return state();
}
/* As the driver: an event made with CU_EVENT_DISABLE_TIMING, or one never
 * recorded, cannot be timed. */
FAKE_API CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end) {
    const fake_event *a = (const fake_event *)start, *b = (const fake_event *)end;
    if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING) return CUDA_ERROR_INVALID_HANDLE;
    if (!a->recorded || !b->recorded) return CUDA_ERROR_INVALID_HANDLE;
    *ms = (float)(b->ms - a->ms);
    return state();
}
FAKE_API CUresult cuEventSynchronize(CUevent e) {
    (void)e;
    return state();
}
FAKE_API CUresult cuStreamBeginCapture(CUstream h, CUstreamCaptureMode mode) {
    (void)mode;
    fake_stream *s = (fake_stream *)h;
    if (!s) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    s->capturing = 1;
    s->queued = 0;
    atomic_fetch_add(&n_capture, 1);
    return state();
}
FAKE_API CUresult cuStreamEndCapture(CUstream h, CUgraph *g) {
    fake_stream *s = (fake_stream *)h;
    s->capturing = 0;
    fake_graph *x = malloc(sizeof *x);
    if (!x) return CUDA_ERROR_OUT_OF_MEMORY;
    x->nodes = s->queued;
    *g = (CUgraph)x;
    return state();
}
FAKE_API CUresult cuGraphInstantiateWithFlags(CUgraphExec *e, CUgraph g, unsigned long long flags) {
    (void)flags;
    fake_graph *x = malloc(sizeof *x);
    if (!x) return CUDA_ERROR_OUT_OF_MEMORY;
    *x = *(fake_graph *)g;
    *e = (CUgraphExec)x;
    return state();
}
FAKE_API CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
    (void)e, (void)s;
    atomic_fetch_add(&n_graph_launch, 1);
    return state();
}
FAKE_API CUresult cuGraphExecDestroy(CUgraphExec e) {
    free(e);
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuGraphDestroy(CUgraph g) {
    free(g);
    return CUDA_SUCCESS;
}

/* ---- modules and launches --------------------------------------------------------------- */

typedef struct fake_module {
    int nfn;
    char *fn[16]; /* names handed out as CUfunctions, freed with the module */
} fake_module;

FAKE_API CUresult cuModuleLoadData(CUmodule *m, const void *image) {
    if (memcmp(image, "\177ELF", 4) != 0) return CUDA_ERROR_INVALID_IMAGE;
    *m = (CUmodule)calloc(1, sizeof(fake_module));
    return *m ? state() : CUDA_ERROR_OUT_OF_MEMORY;
}
FAKE_API CUresult cuModuleLoadDataEx(CUmodule *m, const void *image, unsigned n, CUjit_option *o, void **v) {
    (void)n, (void)o, (void)v;
    if (!strstr(image, ".version")) return CUDA_ERROR_INVALID_PTX;
    *m = (CUmodule)calloc(1, sizeof(fake_module));
    return *m ? state() : CUDA_ERROR_OUT_OF_MEMORY;
}
FAKE_API CUresult cuModuleUnload(CUmodule h) {
    fake_module *m = (fake_module *)h;
    for (int i = 0; m && i < m->nfn; i++) free(m->fn[i]);
    free(m);
    return CUDA_SUCCESS;
}
FAKE_API CUresult cuModuleGetFunction(CUfunction *f, CUmodule h, const char *name) {
    fake_module *m = (fake_module *)h;
    if (m->nfn == 16) return CUDA_ERROR_OUT_OF_MEMORY;
    char *n = strdup(name);
    if (!n) return CUDA_ERROR_OUT_OF_MEMORY;
    m->fn[m->nfn++] = n;
    *f = (CUfunction)n;
    return state();
}
FAKE_API CUresult cuFuncSetAttribute(CUfunction f, CUfunction_attribute a, int v) {
    (void)f, (void)a, (void)v;
    return state();
}
FAKE_API CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                 unsigned bz, unsigned shmem, CUstream h, void **params, void **extra) {
    (void)f, (void)shmem, (void)extra;
    if (state()) return state();
    if (!gx || !gy || !gz || !bx || !by || !bz || (unsigned long)bx * by * bz > 1024 || gy > 65535 || gz > 65535)
        return CUDA_ERROR_INVALID_VALUE;
    fake_stream *s = (fake_stream *)h;
    atomic_fetch_add(&n_launch, 1);
    if (s && s->capturing) {
        s->queued++;
        return state();
    }
    if (params && params[0] && getenv("FAKE_CUDA_FAULTS") && *(CUdeviceptr *)params[0] == 0x100000) atomic_store(&faulted, 1);
    return CUDA_SUCCESS;
}
