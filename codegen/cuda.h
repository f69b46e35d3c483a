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
typedef struct cg_cuda_kernel {
    char *name;         /* the extern "C" __global__ entry point */
    char *scalar_name;  /* an entry point without vector accesses, or NULL:
                           used when some pointer is not 16-byte aligned */
    char *source;       /* the whole translation unit (malloc'd) */
    int nbufs;
    int *bufs;          /* malloc'd */
    int nscratch;
    int64_t scratch_bytes[4];
    unsigned grid[3], block[3]; /* launch shape of `name` */
    unsigned scalar_grid[3], scalar_block[3]; /* of `scalar_name` */
    unsigned shmem;     /* dynamic shared memory bytes */
    /* Several launches in sequence (e.g. a split reduction's second pass):
     * `next` is launched right after this one with the same arguments. */
    struct cg_cuda_kernel *next;
} cg_cuda_kernel;

/* Generate kernel k of plan p.  False (with a message in d naming the
 * kernel and the op) if some op of the body cannot be generated. */
bool cg_cuda_generate(const plan *p, int k, cg_cuda_kernel *out, ir_diag *d);
void cg_cuda_kernel_free(cg_cuda_kernel *k);

/* The NVRTC options the generated source expects besides the architecture
 * (NULL-terminated). */
const char *const *cg_cuda_options(void);

#endif
