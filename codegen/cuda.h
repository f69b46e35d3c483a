/*
 * cuda.h - CUDA C code generation: one kernel (one translation unit for
 * NVRTC) per plan kernel.  The runtime (runtime/cuda.c) compiles, caches,
 * loads and launches what this produces; it never looks inside the source.
 */
#ifndef FUSEC_CODEGEN_CUDA_H
#define FUSEC_CODEGEN_CUDA_H

#include "ir/plan.h"

/* How the runtime launches one generated kernel.  The kernel's parameters
 * are, in order: one device pointer per entry of `bufs` (plan buffer ids:
 * inputs, outputs and temporaries, each at its arena offset or caller
 * address), then `nscratch` pointers to per-launch scratch allocations of
 * scratch_bytes[i] bytes each (zeroed before the launch; used by split
 * reductions), and nothing else: every size is a compile-time constant. */
struct cg_cuda_kernel;

/* A GEMM that a runtime may hand to a BLAS library (cuBLASLt) instead of
 * compiling and launching the kernel's own source.  For z < batch:
 *
 *     D[z] = A[z] @ B[z]  (+ bias[j] on every row, then one rounding to dt)
 *
 * D is m x n, row-major and contiguous (batch stride m * n); A(i, kk) is at
 * element a_bs * z + a_rs * i + a_cs * kk of argument a_arg, B(kk, j) at
 * b_bs * z + b_rs * kk + b_cs * j of b_arg (a batch stride 0 broadcasts).
 * One of a_rs, a_cs is 1 and the other at least the extent of the dim
 * it does not stride (likewise for B): every operand is a column- or
 * row-major matrix.  Arguments are indices into the kernel's bufs.  When
 * d_arg >= 0, D is that argument and the GEMM is the whole kernel;
 * otherwise D is scratch 0 of `epilogue`, a kernel launched next with the
 * same bufs that reads D (as dt) and computes and stores the kernel's
 * outputs.
 *
 * A convolution is the same GEMM per image (A the weights, batch stride 0;
 * B the image's im2col matrix; D the image's output channels x pixels).
 * When b_arg < 0, B is not a buffer: `prologue`, launched first with the
 * same bufs and one scratch pointer, writes it (col_bytes bytes, B(kk, j)
 * at b_bs * z + b_rs * kk + b_cs * j) to the scratch region's start, and D
 * (when the epilogue reads it) follows at d_off.  With d_f32, D is f32
 * and not rounded: the epilogue adds what the library could not (a bias
 * per row) and rounds once. */
typedef struct cg_cuda_gemm {
    int dt; /* fusec_dtype of A, B, bias and D: f32, f16 or bf16 */
    int64_t m, n, k, batch;
    int a_arg, b_arg, bias_arg, d_arg; /* bias_arg -1: none; b_arg -1: the prologue's */
    int64_t a_rs, a_cs, a_bs, b_rs, b_cs, b_bs;
    bool d_f32;
    int64_t col_bytes, d_off;        /* scratch layout: B (prologue), then D */
    struct cg_cuda_kernel *prologue; /* NULL unless b_arg < 0 */
    struct cg_cuda_kernel *epilogue; /* NULL when d_arg >= 0 */
} cg_cuda_gemm;

typedef struct cg_cuda_kernel {
    char *name;         /* the extern "C" __global__ entry point */
    char *scalar_name;  /* an entry point without vector accesses, or NULL:
                           used when some pointer is not 16-byte aligned */
    char *source;       /* the whole translation unit (malloc'd) */
    int nbufs;
    int *bufs;          /* malloc'd */
    int nscratch;
    int64_t scratch_bytes[4];
    bool scratch_unzeroed; /* the kernel writes its scratch before reading it:
                              no zeroing needed */
    unsigned grid[3], block[3]; /* launch shape of `name` */
    unsigned scalar_grid[3], scalar_block[3]; /* of `scalar_name` */
    unsigned shmem;     /* dynamic shared memory bytes */
    /* Several launches in sequence (e.g. a split reduction's second pass):
     * `next` is launched right after this one with the same arguments. */
    struct cg_cuda_kernel *next;
    /* Matmul and linear kernels: the same computation as a BLAS GEMM (and
     * an epilogue kernel), for a runtime that prefers it; else NULL. */
    cg_cuda_gemm *gemm;
} cg_cuda_kernel;

/* Generate kernel k of plan p.  False (with a message in d naming the
 * kernel and the op) if some op of the body cannot be generated. */
bool cg_cuda_generate(const plan *p, int k, cg_cuda_kernel *out, ir_diag *d);
void cg_cuda_kernel_free(cg_cuda_kernel *k);

/* The NVRTC options the generated source expects besides the architecture
 * (NULL-terminated). */
const char *const *cg_cuda_options(void);

#endif
