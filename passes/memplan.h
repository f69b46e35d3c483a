/*
 * memplan.h - memory planning: live ranges over the kernel schedule and one
 * arena for every intermediate (TEMP) buffer of a plan (ir/plan.h).
 */
#ifndef FUSEC_PASSES_MEMPLAN_H
#define FUSEC_PASSES_MEMPLAN_H

#include "ir/plan.h"

/* Fill every buffer's def, last_use, offset and reuses, and the plan's
 * arena_bytes and naive_bytes.  Requires: the kernels' in/out lists name
 * every buffer read and written, each buffer written by at most one kernel
 * and read only after it.  False (reported to d) if the plan breaks that. */
bool pass_memplan(plan *p, ir_diag *d);

/* Check what pass_memplan promises, from the kernels' in/out lists and the
 * buffers' recorded fields: live ranges cover every access, TEMP offsets
 * are aligned and inside the arena, INPUT and OUTPUT have offset -1, no two
 * TEMPs that are live at the same kernel share a byte (the declared
 * in-place pairs excepted), arena_bytes <= naive_bytes.  Reports every
 * violation to d; true if there is none. */
bool memplan_check(const plan *p, ir_diag *d);

#endif
