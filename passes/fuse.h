/*
 * fuse.h - fusion (graph -> plan).  See passes/fuse.c.
 */
#ifndef FUSEC_PASSES_FUSE_H
#define FUSEC_PASSES_FUSE_H

#include "ir/plan.h"

/* Partition g into kernels.  The plan refers to g's nodes (g must outlive
 * it) and has no arena offsets yet (passes/memplan.c).  NULL, with the
 * reason in d, on OOM or when a value is too large to plan (> 2^56 bytes). */
plan *pass_fuse(ir_graph *g, ir_diag *d);

#endif
