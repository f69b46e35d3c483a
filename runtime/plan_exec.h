/*
 * plan_exec.h - the plan executor: runs a fused, memory-planned plan
 * (ir/plan.h) on the CPU, kernel by kernel, element by element, inside the
 * planned arena.  Slow by design: it exists to prove fusion and memory
 * planning right against the reference interpreter.
 */
#ifndef FUSEC_RUNTIME_PLAN_EXEC_H
#define FUSEC_RUNTIME_PLAN_EXEC_H

#include "ir/plan.h"

/* Run plan p (after pass_memplan) on nin host inputs, in parameter order of
 * p->g.  The contract is rt_interp_run's (runtime/interp.h): inputs are
 * checked against the parameters; nout == p->g->nresults outputs are
 * filled with malloc'd data (free with free()); run-time errors (index out
 * of range, integer division by zero) go to d naming the op and its source
 * location, and leave no output allocated.  A plan that is inconsistent
 * (a kernel reading a value it neither computes nor lists as an input, a
 * TEMP without an arena slot) is reported as an error, never a crash. */
fusec_status rt_plan_run(const plan *p, const fusec_tensor *in, int nin, fusec_tensor *out,
                         int nout, ir_diag *d);

#endif
