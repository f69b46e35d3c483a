/*
 * parse.h - the text IR parser (spec: docs/ir.md, sections 2-4).
 */
#ifndef FUSEC_FRONTEND_PARSE_H
#define FUSEC_FRONTEND_PARSE_H

#include "ir/ir.h"

/* Parse a whole module (every func is parsed and verified), then return the
 * func named `func` (without '@'), or @main if func is NULL and one exists,
 * else the first.  On any error: diagnostics in d (FILE:LINE:COL: error:
 * ..., the source line, a caret), returns NULL.  d must have been set up with
 * ir_diag_init(d, filename, src, len) so that messages can quote the line. */
ir_graph *fe_parse(const char *src, size_t len, const char *filename, const char *func,
                   ir_diag *d);

#endif
