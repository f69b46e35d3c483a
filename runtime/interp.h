/*
 * interp.h - the reference interpreter: runs a graph op by op on host
 * tensors.  It is the oracle of every differential test.
 */
#ifndef FUSEC_RUNTIME_INTERP_H
#define FUSEC_RUNTIME_INTERP_H

#include "ir/ir.h"

/* Run g on nin host inputs (parameter order; dtype and shape must equal the
 * parameters' types, else an error naming the parameter).  Fills nout ==
 * g->nresults outputs whose data is malloc'd here (free with free()).
 * Run-time errors (index out of range, integer division by zero) go to d
 * with the op and its source location, and no output is left allocated. */
fusec_status rt_interp_run(const ir_graph *g, const fusec_tensor *in, int nin, fusec_tensor *out,
                           int nout, ir_diag *d);

/* The checks every executor makes first: input and output counts, and each
 * input against its parameter (dtype, shape, non-NULL data; the message
 * names the parameter, the expected and the given type).  Sets every
 * out[i].data to NULL. */
fusec_status rt_check_io(const ir_graph *g, const fusec_tensor *in, int nin, fusec_tensor *out,
                         int nout, ir_diag *d);

#endif
