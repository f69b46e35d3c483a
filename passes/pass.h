/*
 * pass.h - graph-to-graph passes and the pass manager.
 *
 * A pass is a plain function `bool pass_NAME(ir_graph *, pass_ctx *)` that
 * edits the graph in place and returns false only on error (after reporting
 * to ctx->diag).  Each counts what it did with pass_stat(), shown by
 * `fusec opt --stats`.  The registry and the default pipeline are in
 * passes/pipeline.c, one list each.
 */
#ifndef FUSEC_PASSES_PASS_H
#define FUSEC_PASSES_PASS_H

#include <stdio.h>

#include "ir/ir.h"

#define PASS_MAX_STATS 64

typedef struct pass_ctx {
    ir_diag *diag;
    bool verify_each;    /* run the verifier after every pass */
    const char *print_after; /* a pass name, "all", or NULL */
    bool time_passes;
    bool stats;
    FILE *dump;          /* where print-after, timings and stats go */
    /* statistics: "pass.what" -> count */
    int nstats;
    struct {
        const char *pass, *what;
        int64_t count;
    } stat[PASS_MAX_STATS];
    const char *current; /* the running pass */
} pass_ctx;

typedef bool (*pass_fn)(ir_graph *g, pass_ctx *ctx);

typedef struct pass_info {
    const char *name;
    const char *summary;
    pass_fn run;
} pass_info;

void pass_stat(pass_ctx *ctx, const char *what, int64_t n);

const pass_info *pass_lookup(const char *name);
int pass_count(void);
const pass_info *pass_at(int i);
/* The default pipeline, comma-separated. */
const char *pass_default_pipeline(void);

/* Run a comma-separated pipeline ("a,b,c"; NULL = the default).  Unknown
 * names are an error that lists the known ones. */
bool pass_run_pipeline(ir_graph *g, const char *pipeline, pass_ctx *ctx);

/* the passes */
bool pass_dce(ir_graph *g, pass_ctx *ctx);
bool pass_cse(ir_graph *g, pass_ctx *ctx);
bool pass_canonicalize(ir_graph *g, pass_ctx *ctx);
bool pass_decompose(ir_graph *g, pass_ctx *ctx);
bool pass_fold_bn(ir_graph *g, pass_ctx *ctx);
bool pass_fold(ir_graph *g, pass_ctx *ctx);
bool pass_masks(ir_graph *g, pass_ctx *ctx);

#endif
