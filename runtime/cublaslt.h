/*
 * cublaslt.h - matmul and linear kernels through cuBLASLt (private to the
 * CUDA runtime; needs the toolkit's headers, FUSEC_HAVE_CUDA only).
 *
 * codegen describes a GEMM it could hand to a library (cg_cuda_gemm); this
 * turns one into a prepared cuBLASLt matmul and runs it on a stream.  The
 * library is optional: it is opened at run time, and wherever it is
 * missing, refuses a problem, or the pointers of a run are not aligned
 * well enough, the kernel's own generated GEMM runs instead.
 */
#ifndef FUSEC_RUNTIME_CUBLASLT_H
#define FUSEC_RUNTIME_CUBLASLT_H

#include <cuda.h>

#include "codegen/cuda.h"

typedef struct rt_blas rt_blas;

/* Open cuBLASLt and create its handle (once; the runtime's context must be
 * current).  False when it is not to be used: FUSEC_CUBLASLT=0, no library,
 * a different major version than the headers fusec was built with, or a
 * failed handle creation; rt_blas_summary() says which. */
bool rt_blas_init(void);
/* "cuBLASLt 13.0.2 (libcublasLt.so.13)", "cuBLASLt off: <why>", or, when
 * nothing has opened it, what runs the GEMMs instead (never opens it). */
const char *rt_blas_summary(void);

/* Whether g goes to cuBLASLt: FUSEC_CUBLASLT=0 never, =1 always, else
 * when it is large enough to pay for opening the library. */
bool rt_blas_wanted(const cg_cuda_gemm *g);

/* A prepared GEMM, or NULL where cuBLASLt has no algorithm for it (or
 * preparing failed; either way the generated kernel is used).  *workspace
 * receives the device workspace bytes rt_blas_run needs. */
rt_blas *rt_blas_prepare(const cg_cuda_gemm *g, int64_t *workspace);
void rt_blas_free(rt_blas *b);

/* Whether some prepared algorithm takes these pointers (bias 0: none). */
bool rt_blas_fits(const rt_blas *b, CUdeviceptr A, CUdeviceptr B, CUdeviceptr bias, CUdeviceptr D);

/* Queue the GEMM on s (bias 0 when it has none), for pointers that
 * rt_blas_fits takes.  False when cuBLASLt fails (reported to d). */
bool rt_blas_run(rt_blas *b, CUdeviceptr A, CUdeviceptr B, CUdeviceptr bias, CUdeviceptr D,
                 CUdeviceptr workspace, CUstream s, ir_diag *d);

#endif
