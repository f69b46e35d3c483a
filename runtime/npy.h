/*
 * npy.h - NumPy .npy files (format 1.0 written; 1.0, 2.0 and 3.0 read),
 * little-endian, C order.  bf16 has no NumPy dtype: it is stored as '<u2'
 * bit patterns in a file whose name ends in ".bf16.npy".
 */
#ifndef FUSEC_RUNTIME_NPY_H
#define FUSEC_RUNTIME_NPY_H

#include "ir/ir.h"

/* Read `path` into *t (t->data malloc'd; free with free()).  `bf16` says
 * that '<u2' data holds bf16 bit patterns (callers pass true for names
 * ending in ".bf16.npy").  Errors name the file and the problem. */
fusec_status rt_npy_read(const char *path, bool bf16, fusec_tensor *t, ir_diag *d);
/* The same from a buffer (fuzzing, tests); `name` is used in messages. */
fusec_status rt_npy_parse(const void *buf, size_t len, const char *name, bool bf16,
                          fusec_tensor *t, ir_diag *d);
/* Write t to path: a temporary file in the same folder, fsynced, then
 * renamed, so a failure never leaves a half-written file. bf16 is written
 * as '<u2'. */
fusec_status rt_npy_write(const char *path, const fusec_tensor *t, ir_diag *d);

#endif
