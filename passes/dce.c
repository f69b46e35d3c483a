/*
 * dce.c - dead code elimination.
 *
 * A node is live if its result is a graph result or an operand of a live
 * node.  One backward walk over the program order marks liveness (every use
 * comes after its definition), a second unlinks the dead nodes.
 *
 * Requires: a verified graph.  Invalidates: nothing but removed nodes.
 */
#include <stdlib.h>

#include "passes/pass.h"

bool pass_dce(ir_graph *g, pass_ctx *ctx) {
    bool *live = calloc((size_t)g->next_id + 1, 1);
    if (!live) {
        ir_error(ctx->diag, (ir_loc){0}, "dce: out of memory");
        return false;
    }
    for (int i = 0; i < g->nresults; i++) live[g->results[i]->id] = true;
    for (ir_node *n = g->last; n; n = n->prev) {
        if (!live[n->out->id]) continue;
        for (int i = 0; i < n->nin; i++) live[n->in[i]->id] = true;
    }
    int64_t removed = 0;
    for (ir_node *n = g->first, *next; n; n = next) {
        next = n->next;
        if (!live[n->out->id]) {
            ir_node_remove(g, n);
            removed++;
        }
    }
    free(live);
    pass_stat(ctx, "nodes-removed", removed);
    return true;
}
