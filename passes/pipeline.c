/*
 * pipeline.c - the pass registry, the default pipeline, and the manager
 * that runs a pipeline with the verifier, dumps, timings and statistics.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "passes/pass.h"

static const pass_info passes[] = {
    {"canonicalize", "algebraic identities and folding of constant conditions", pass_canonicalize},
    {"cse", "common subexpression elimination", pass_cse},
    {"dce", "dead code elimination", pass_dce},
    {"decompose", "rewrite composites (softmax, norms, gelu, sdpa, ...) into primitives", pass_decompose},
    {"fold_bn", "fold inference batch_norm into the preceding conv2d", pass_fold_bn},
    {"fold", "constant folding: ops of full/constant values become full/constant", pass_fold},
    {"masks", "mask elimination: masks that keep everything, masks applied twice, zero additive masks", pass_masks},
};

/* The default pipeline: one visible list. */
static const char default_pipeline[] = "canonicalize,fold_bn,fold,decompose,masks,fold,canonicalize,cse,dce";

int pass_count(void) { return (int)(sizeof passes / sizeof passes[0]); }
const pass_info *pass_at(int i) { return &passes[i]; }
const char *pass_default_pipeline(void) { return default_pipeline; }

const pass_info *pass_lookup(const char *name) {
    for (int i = 0; i < pass_count(); i++)
        if (strcmp(passes[i].name, name) == 0) return &passes[i];
    return NULL;
}

void pass_stat(pass_ctx *ctx, const char *what, int64_t n) {
    if (n == 0) return;
    for (int i = 0; i < ctx->nstats; i++)
        if (strcmp(ctx->stat[i].what, what) == 0 && strcmp(ctx->stat[i].pass, ctx->current) == 0) {
            ctx->stat[i].count += n;
            return;
        }
    if (ctx->nstats < PASS_MAX_STATS) {
        ctx->stat[ctx->nstats].pass = ctx->current;
        ctx->stat[ctx->nstats].what = what;
        ctx->stat[ctx->nstats++].count = n;
    }
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

bool pass_run_pipeline(ir_graph *g, const char *pipeline, pass_ctx *ctx) {
    if (!pipeline) pipeline = default_pipeline;
    FILE *out = ctx->dump ? ctx->dump : stderr;
    /* resolve every name before running anything */
    const pass_info *list[64];
    int n = 0;
    const char *p = pipeline;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[64];
        if (len == 0 || len >= sizeof name) {
            ir_error(ctx->diag, (ir_loc){0}, "bad pass pipeline '%s'", pipeline);
            return false;
        }
        memcpy(name, p, len);
        name[len] = 0;
        const pass_info *pi = pass_lookup(name);
        if (!pi) {
            ir_str known = {0};
            for (int i = 0; i < pass_count(); i++) ir_str_printf(&known, "%s%s", i ? ", " : "", passes[i].name);
            ir_error(ctx->diag, (ir_loc){0}, "unknown pass '%s' (known passes: %s)", name, known.buf);
            ir_str_free(&known);
            return false;
        }
        if (n == (int)(sizeof list / sizeof list[0])) {
            ir_error(ctx->diag, (ir_loc){0}, "pipeline has too many passes");
            return false;
        }
        list[n++] = pi;
        p += len + (e ? 1 : 0);
    }
    double total = 0, times[64];
    for (int i = 0; i < n; i++) {
        ctx->current = list[i]->name;
        double t0 = now_ms();
        bool ok = list[i]->run(g, ctx);
        times[i] = now_ms() - t0;
        total += times[i];
        if (!ok) return false;
        if (ctx->verify_each && !ir_verify(g, ctx->diag)) {
            ir_error(ctx->diag, (ir_loc){0}, "the graph is invalid after pass '%s' (a compiler bug)", list[i]->name);
            return false;
        }
        if (ctx->print_after && (strcmp(ctx->print_after, "all") == 0 || strcmp(ctx->print_after, list[i]->name) == 0)) {
            ir_str s = {0};
            ir_print_graph(&s, g);
            fprintf(out, "// ----- IR after %s -----\n%s", list[i]->name, s.buf ? s.buf : "");
            ir_str_free(&s);
        }
    }
    if (ctx->time_passes) {
        fprintf(out, "===== pass timings =====\n");
        for (int i = 0; i < n; i++) fprintf(out, "%10.3f ms  %s\n", times[i], list[i]->name);
        fprintf(out, "%10.3f ms  total\n", total);
    }
    if (ctx->stats) {
        fprintf(out, "===== statistics =====\n");
        for (int i = 0; i < ctx->nstats; i++)
            fprintf(out, "%8lld %s.%s\n", (long long)ctx->stat[i].count, ctx->stat[i].pass, ctx->stat[i].what);
    }
    return true;
}
