/*
 * cse.c - common subexpression elimination.
 *
 * Two nodes compute the same value when they have the same op, the same
 * operands (the same values; literals by dtype and bits), the same attribute
 * values and the same result type.  Every op of fusec is pure, so the later
 * node's uses move to the earlier one and the later node goes.  Nodes are
 * found through an open-addressing hash table keyed by that identity, so
 * the pass is linear in the graph.
 *
 * Requires: a verified graph.  Invalidates: nothing but removed nodes.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/pass.h"

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t dbits(double f) {
    uint64_t u;
    memcpy(&u, &f, 8);
    return u;
}

static bool same_operand(const ir_value *a, const ir_value *b) {
    if (a == b) return true;
    if (a->kind != IR_VAL_LITERAL || b->kind != IR_VAL_LITERAL) return false;
    return a->type.dtype == b->type.dtype && a->lit_is_int == b->lit_is_int && a->lit_is_bool == b->lit_is_bool &&
           a->lit_i == b->lit_i && dbits(a->lit_f) == dbits(b->lit_f);
}

static uint64_t operand_hash(const ir_value *v) {
    if (v->kind != IR_VAL_LITERAL) return mix(1, (uint64_t)v->id);
    return mix(mix(mix(2, (uint64_t)v->type.dtype), (uint64_t)v->lit_i), dbits(v->lit_f));
}

static bool same_attr(const ir_attr_spec *sp, const ir_attr *a, const ir_attr *b) {
    switch (sp->kind) {
    case IR_AK_INT:
    case IR_AK_BOOL:
        return a->set == b->set && a->i == b->i;
    case IR_AK_FLOAT: return a->set == b->set && dbits(a->f) == dbits(b->f);
    case IR_AK_STR: return (a->s == b->s) || (a->s && b->s && strcmp(a->s, b->s) == 0);
    case IR_AK_DTYPE: return a->dt == b->dt;
    case IR_AK_INTS:
        return a->set == b->set && a->n == b->n && (a->n == 0 || memcmp(a->ints, b->ints, sizeof(int64_t) * (size_t)a->n) == 0);
    case IR_AK_FLOATS:
        return a->n == b->n && (a->n == 0 || memcmp(a->floats, b->floats, sizeof(double) * (size_t)a->n) == 0);
    }
    return false;
}

static uint64_t node_hash(const ir_node *n) {
    uint64_t h = mix(0, (uint64_t)n->op);
    for (int i = 0; i < n->nin; i++) h = mix(h, operand_hash(n->in[i]));
    const ir_op_info *info = ir_op_get(n->op);
    for (int k = 0; k < info->nattrs; k++) h = mix(h, (uint64_t)n->attrs[k].i ^ dbits(n->attrs[k].f));
    for (int i = 0; i < n->out->type.rank; i++) h = mix(h, (uint64_t)n->out->type.dim[i]);
    return h;
}

static bool same_node(const ir_node *a, const ir_node *b) {
    if (a->op != b->op || a->nin != b->nin || !ir_type_eq(&a->out->type, &b->out->type)) return false;
    for (int i = 0; i < a->nin; i++)
        if (!same_operand(a->in[i], b->in[i])) return false;
    const ir_op_info *info = ir_op_get(a->op);
    for (int k = 0; k < info->nattrs; k++)
        if (!same_attr(&info->attrs[k], &a->attrs[k], &b->attrs[k])) return false;
    return true;
}

bool pass_cse(ir_graph *g, pass_ctx *ctx) {
    size_t count = 0;
    for (ir_node *n = g->first; n; n = n->next) count++;
    size_t cap = 16;
    while (cap < count * 2) cap *= 2;
    ir_node **table = calloc(cap, sizeof *table);
    ir_value **repl = calloc((size_t)g->next_id + 1, sizeof *repl); /* id -> survivor */
    if (!table || !repl) {
        free(table);
        free(repl);
        ir_error(ctx->diag, (ir_loc){0}, "cse: out of memory");
        return false;
    }
    int64_t removed = 0;
    for (ir_node *n = g->first, *next; n; n = next) {
        next = n->next;
        for (int i = 0; i < n->nin; i++)
            if (repl[n->in[i]->id]) n->in[i] = repl[n->in[i]->id];
        size_t i = (size_t)node_hash(n) & (cap - 1);
        while (table[i] && !same_node(table[i], n)) i = (i + 1) & (cap - 1);
        if (!table[i]) {
            table[i] = n;
            continue;
        }
        repl[n->out->id] = table[i]->out;
        ir_node_remove(g, n);
        removed++;
    }
    for (int i = 0; i < g->nresults; i++)
        if (repl[g->results[i]->id]) g->results[i] = repl[g->results[i]->id];
    free(table);
    free(repl);
    pass_stat(ctx, "nodes-merged", removed);
    return true;
}
