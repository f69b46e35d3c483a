/*
 * plan.h - the plan: what fusion and memory planning produce and what the
 * executors and code generators consume.
 *
 * A plan partitions an optimized graph into kernels.  Every value that
 * lives in memory has a buffer: the graph's parameters (INPUT, the caller's
 * memory), its results (OUTPUT) and the intermediates that must be
 * materialised between kernels (TEMP, placed in one arena).  Everything else
 * is computed inside the kernel that needs it and never touches memory.
 *
 * A kernel computes the values of its `out` buffers.  Its body is the set of
 * IR nodes in `nodes` (program order): the IR is the kernel's language.  A
 * kernel evaluates each output element by evaluating the body at that
 * element's index; each op maps the index it is asked for to the indices of
 * its operands (elementwise ops: the same index, with broadcasting;
 * injective ops such as transpose, slice, pad, concat, gather: a remapped
 * index or a predicate; iota/full/constant: computed from the index alone).
 * Masks are therefore index predicates inside the kernel, never buffers.
 *
 *   PLAN_POINTWISE  domain = the output shape; no reduction in the body.
 *   PLAN_REDUCE     domain = the shape being reduced; every reduction in the
 *                   body reduces that domain over the same axes (`reduce`).
 *                   Outputs are either of the domain's shape (softmax) or of
 *                   the reduced shape (sum).  One kernel per row: the
 *                   reductions' results are per-row values shared by the
 *                   row's elements.
 *   PLAN_LIBRARY    one library node (matmul, linear, conv2d, pools,
 *                   undecomposed composites) computed by a library routine,
 *                   domain = its result's shape.  Its operands are buffers,
 *                   or a transpose of the last two dims of a buffer (read
 *                   as a transposed view).  The body may continue with an
 *                   elementwise epilogue at the library result's shape
 *                   (bias, activation, residual add): the kernel's output
 *                   is then the epilogue's root, and the library result
 *                   itself is never stored.
 */
#ifndef FUSEC_IR_PLAN_H
#define FUSEC_IR_PLAN_H

#include "ir/ir.h"

typedef enum plan_kind {
    PLAN_POINTWISE,
    PLAN_REDUCE,
    PLAN_LIBRARY,
} plan_kind;

typedef enum plan_buf_kind {
    PLAN_BUF_INPUT,  /* a graph parameter: caller's memory                  */
    PLAN_BUF_OUTPUT, /* a graph result: its own allocation (never reused)    */
    PLAN_BUF_TEMP,   /* an intermediate: a slot in the arena                 */
} plan_buf_kind;

#define PLAN_ARENA_ALIGN 256

typedef struct plan_buf {
    int id;
    plan_buf_kind kind;
    ir_value *value;  /* the graph value held */
    int64_t bytes;
    int64_t offset;   /* TEMP: byte offset in the arena; -1 otherwise */
    int def;          /* index of the kernel that writes it; -1 for inputs */
    int last_use;     /* index of the last kernel that reads it; -1 if none */
    int reuses;       /* TEMP written in place over this buffer id, or -1 */
} plan_buf;

typedef struct plan_kernel {
    int id;
    const char *name;  /* e.g. "k2_softmax": what it fuses */
    plan_kind kind;
    ir_type domain;    /* iteration domain (dtype unused) */
    bool reduce[IR_MAX_RANK]; /* PLAN_REDUCE: reduced axes of the domain */
    int nnodes;
    ir_node **nodes;   /* the body, in program order */
    int nin;
    int *in;           /* buffer ids read */
    int nout;
    int *out;          /* buffer ids written */
} plan_kernel;

typedef struct plan {
    ir_arena arena;
    ir_graph *g;       /* the optimized graph the plan refers to (not owned) */
    int nkernels;
    plan_kernel *kernels; /* in schedule order */
    int nbufs;
    plan_buf *bufs;
    int *buf_of;       /* value id -> buffer id, or -1 (computed inside a kernel) */
    int64_t arena_bytes; /* planned arena size */
    int64_t naive_bytes; /* every TEMP in its own allocation */
    int64_t eager_bytes; /* every intermediate value of the graph in its own
                            allocation, as op-by-op execution would need */
} plan;

/* A buffer id for value v, or -1. */
static inline int plan_buf_of(const plan *p, const ir_value *v) {
    return v->kind == IR_VAL_LITERAL ? -1 : p->buf_of[v->id];
}

void plan_free(plan *p);
/* Text form: kernels with domain, inputs (and how they are read), outputs,
 * body ops with source lines; buffers with sizes and arena offsets. */
void plan_print(ir_str *s, const plan *p);

#endif
