/*
 * fileio.h - writing files so that a failure never leaves a half-written
 * one: every file fusec writes (results, printed IR, cache entries) goes
 * through here.
 */
#ifndef FUSEC_RUNTIME_FILEIO_H
#define FUSEC_RUNTIME_FILEIO_H

#include "ir/ir.h"

/* Write the concatenation of nparts buffers to `path`: a temporary file in
 * the same folder (".NAME.XXXXXX", mode `mode`), written, fsynced, closed,
 * then renamed over `path` (and the folder fsynced, best effort).  On any
 * failure the temporary file is removed, `path` is untouched, and the
 * error goes to d as "PATH: error: STEP: REASON". */
fusec_status rt_write_file_atomic(const char *path, const void *const *parts, const size_t *lens,
                                  int nparts, unsigned mode, ir_diag *d);

#endif
