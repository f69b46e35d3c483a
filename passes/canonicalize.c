/*
 * canonicalize.c - algebraic identities.
 *
 * Each rule below rewrites one node into a simpler equivalent; the pass
 * sweeps the graph until no rule fires.  A node that becomes an identity is
 * replaced by the value it passes through only when the types match
 * exactly, so no rule ever changes a broadcast shape or a dtype.  Rewritten
 * nodes are left for dce to delete.
 *
 * Floating point: x + 0 -> x turns (-0.0) + 0 into -0.0 where IEEE gives
 * +0.0; every compiler of this kind accepts that (they compare equal).  x * 0
 * is folded for integers only: for floats it is NaN for NaN and inf.
 *
 * Requires: a verified graph.  Invalidates: nothing (results are replaced).
 */
#include <stdlib.h>
#include <string.h>

#include "passes/pass.h"

static bool is_lit(const ir_value *v, double x) {
    return v->kind == IR_VAL_LITERAL && (v->lit_is_int ? (double)v->lit_i == x : v->lit_f == x);
}

static bool lit_bool(const ir_value *v, bool *out) {
    if (v->kind != IR_VAL_LITERAL) return false;
    *out = v->lit_is_int ? v->lit_i != 0 : v->lit_f != 0;
    return true;
}

static ir_node *def_of(const ir_value *v, ir_op op) {
    return v->kind == IR_VAL_NODE && v->def->op == op ? v->def : NULL;
}

/* The value n passes through unchanged, or NULL. */
static ir_value *identity_of(const ir_node *n) {
    ir_value *const *in = n->in;
    ir_node *d;
    bool c;
    switch (n->op) {
    case IR_OP_ADD:
        if (is_lit(in[1], 0)) return in[0];
        if (is_lit(in[0], 0)) return in[1];
        return NULL;
    case IR_OP_SUB: return is_lit(in[1], 0) ? in[0] : NULL;
    case IR_OP_MUL:
        if (is_lit(in[1], 1)) return in[0];
        if (is_lit(in[0], 1)) return in[1];
        return NULL;
    case IR_OP_DIV:
    case IR_OP_POW: return is_lit(in[1], 1) ? in[0] : NULL;
    case IR_OP_NEG:
    case IR_OP_NOT:
        return (d = def_of(in[0], n->op)) ? d->in[0] : NULL;
    case IR_OP_TRANSPOSE:
        if (ir_attr_i(n, "dim0") == ir_attr_i(n, "dim1")) return in[0];
        if ((d = def_of(in[0], IR_OP_TRANSPOSE))) {
            int r = n->out->type.rank, a0, a1, b0, b1;
            ir_norm_axis(ir_attr_i(n, "dim0"), r, &a0);
            ir_norm_axis(ir_attr_i(n, "dim1"), r, &a1);
            ir_norm_axis(ir_attr_i(d, "dim0"), r, &b0);
            ir_norm_axis(ir_attr_i(d, "dim1"), r, &b1);
            if ((a0 == b0 && a1 == b1) || (a0 == b1 && a1 == b0)) return d->in[0];
        }
        return NULL;
    case IR_OP_PERMUTE: {
        int cnt, a;
        const int64_t *p = ir_attr_ints(n, "dims", &cnt);
        for (int i = 0; i < cnt; i++)
            if (!ir_norm_axis(p[i], cnt, &a) || a != i) return NULL;
        return in[0];
    }
    case IR_OP_WHERE:
        if (lit_bool(in[0], &c)) return c ? in[1] : in[2];
        return in[1] == in[2] ? in[1] : NULL;
    case IR_OP_PAD: {
        /* only all-zero pads: (1, -1) keeps the type but shifts the data */
        int cnt;
        const int64_t *p = ir_attr_ints(n, "pads", &cnt);
        for (int i = 0; i < cnt; i++)
            if (p[i] != 0) return NULL;
        return in[0];
    }
    case IR_OP_CAST:
    case IR_OP_RESHAPE:
    case IR_OP_EXPAND:
    case IR_OP_SQUEEZE:
    case IR_OP_UNSQUEEZE:
    case IR_OP_SLICE:
    case IR_OP_CONCAT:
        /* with the same type in and out these move no element: a slice
         * that keeps every element of an axis must start at 0 with step 1 */
        return n->nin == 1 ? in[0] : NULL;
    default: return NULL;
    }
}

/* Rewrite n's operands in place where a chain collapses; true if changed. */
static bool fold_chain(ir_node *n) {
    ir_node *d;
    switch (n->op) {
    case IR_OP_RESHAPE: /* reshape(reshape-like(x)) -> reshape(x) */
        if ((d = def_of(n->in[0], IR_OP_RESHAPE)) || (d = def_of(n->in[0], IR_OP_SQUEEZE)) ||
            (d = def_of(n->in[0], IR_OP_UNSQUEEZE))) {
            n->in[0] = d->in[0];
            return true;
        }
        return false;
    case IR_OP_ABS:
    case IR_OP_RELU: /* idempotent */
        if ((d = def_of(n->in[0], n->op))) {
            n->in[0] = d->in[0];
            return true;
        }
        return false;
    default: return false;
    }
}

bool pass_canonicalize(ir_graph *g, pass_ctx *ctx) {
    ir_value **repl = calloc((size_t)g->next_id + 1, sizeof *repl); /* id -> replacement */
    if (!repl) {
        ir_error(ctx->diag, (ir_loc){0}, "canonicalize: out of memory");
        return false;
    }
    int64_t identities = 0, chains = 0;
    for (int round = 0; round < 16; round++) {
        bool changed = false;
        memset(repl, 0, sizeof *repl * ((size_t)g->next_id + 1));
        for (ir_node *n = g->first; n; n = n->next) {
            /* uses follow definitions, so one forward walk forwards them all */
            for (int i = 0; i < n->nin; i++)
                if (repl[n->in[i]->id]) n->in[i] = repl[n->in[i]->id];
            if (fold_chain(n)) {
                chains++;
                changed = true;
            }
            ir_value *id = identity_of(n);
            if (id && id->kind != IR_VAL_LITERAL && ir_type_eq(&id->type, &n->out->type)) {
                repl[n->out->id] = id;
                identities++;
                changed = true;
            }
        }
        for (int i = 0; i < g->nresults; i++)
            if (repl[g->results[i]->id]) g->results[i] = repl[g->results[i]->id];
        if (!changed) break;
        /* replaced nodes are dead now; drop them so the next round is clean */
        if (!pass_dce(g, ctx)) {
            free(repl);
            return false;
        }
    }
    free(repl);
    pass_stat(ctx, "identities", identities);
    pass_stat(ctx, "chains-folded", chains);
    return true;
}
