/*
 * cg_plans.h - for the CUDA code generator's tests: turn IR text into a
 * plan the way the runtime does (parse, the default pipeline, fusion,
 * memory planning) and generate every kernel of it.  Header-only.
 */
#ifndef FUSEC_TESTS_CG_PLANS_H
#define FUSEC_TESTS_CG_PLANS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda.h"
#include "frontend/parse.h"
#include "passes/fuse.h"
#include "passes/memplan.h"
#include "passes/pass.h"
#include "tests/cg/nvrtc_batch.h"

typedef enum cgt_status { CGT_OK, CGT_SKIP, CGT_FAIL } cgt_status;

/* Read a whole file (malloc'd, NUL-terminated) or NULL. */
static inline char *cgt_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* Parse `text`, optimize, plan and generate every kernel, appending them to
 * *items (grown as needed, labelled "<label> kN").  A text that does not
 * parse is skipped (many lit files are error tests); anything failing
 * after parsing is a failure, reported to `report`.  Graphs with tensors
 * of more than 2^40 elements are skipped too. */
static inline cgt_status cgt_plan_kernels(const char *text, const char *label, cgt_item **items, int *nitems,
                                          int *cap, FILE *report) {
    ir_diag d;
    ir_diag_init(&d, label, text, strlen(text));
    ir_graph *g = fe_parse(text, strlen(text), label, NULL, &d);
    if (!g) {
        ir_diag_free(&d);
        return CGT_SKIP;
    }
    /* tensors beyond 2^40 elements (parser tests of huge types) would
     * overflow byte counts in planning; no GPU holds them anyway */
    bool huge = false;
    for (int i = 0; i < g->nparams; i++) huge |= ir_type_numel(&g->params[i]->type) > ((int64_t)1 << 40);
    for (const ir_node *n = g->first; n; n = n->next) huge |= ir_type_numel(&n->out->type) > ((int64_t)1 << 40);
    if (huge) {
        ir_graph_free(g);
        ir_diag_free(&d);
        return CGT_SKIP;
    }
    cgt_status st = CGT_OK;
    pass_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.diag = &d;
    plan *p = NULL;
    if (!pass_run_pipeline(g, NULL, &ctx) || !(p = pass_fuse(g, &d)) || !pass_memplan(p, &d)) {
        st = CGT_FAIL;
    } else {
        for (int k = 0; k < p->nkernels; k++) {
            if (*nitems == *cap) {
                int nc = *cap ? *cap * 2 : 64;
                cgt_item *ni = realloc(*items, sizeof *ni * (size_t)nc);
                if (!ni) {
                    st = CGT_FAIL;
                    break;
                }
                *items = ni;
                *cap = nc;
            }
            cgt_item *it = &(*items)[*nitems];
            memset(it, 0, sizeof *it);
            if (!cg_cuda_generate(p, k, &it->k, &d)) {
                st = CGT_FAIL;
                continue;
            }
            char buf[1040]; /* callers build labels in 1024-byte buffers: room for " k<index>" too */
            snprintf(buf, sizeof buf, "%s k%d", label, k);
            it->label = cgt_strdup(buf);
            (*nitems)++;
        }
    }
    if (st == CGT_FAIL && report)
        fprintf(report, "%s: %s\n", label, d.out.buf ? d.out.buf : "failed without a message\n");
    if (p) plan_free(p);
    ir_graph_free(g);
    ir_diag_free(&d);
    return st;
}

static inline void cgt_items_free(cgt_item *items, int n) {
    for (int i = 0; i < n; i++) {
        free(items[i].label);
        cg_cuda_kernel_free(&items[i].k);
    }
    free(items);
}

#endif
