/*
 * verify.c - the IR verifier.
 *
 * ir_build only ever makes well-formed nodes, but passes edit graphs in
 * place; the verifier re-checks a whole graph after each of them.  It checks
 * SSA (every operand is a parameter, a literal or the result of an earlier
 * node of this graph; no value defined twice), names (unique), arity,
 * attributes (required ones given), dtypes (operand 0's class, literal
 * dtypes), and re-runs each op's shape rule on a scratch copy of the node to
 * compare with the stored result type.  Every problem is reported, not just
 * the first.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

/* Names seen so far: an open-addressing set of strings (the parser and the
 * tracer keep names unique, so this only catches passes that break it). */
typedef struct name_set {
    const char **slot;
    size_t cap;
} name_set;

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Insert v's name; true if it was already there. */
static bool name_clash(name_set *ns, const ir_value *v) {
    if (!v->name) return false;
    size_t i = (size_t)name_hash(v->name) & (ns->cap - 1);
    for (; ns->slot[i]; i = (i + 1) & (ns->cap - 1))
        if (strcmp(ns->slot[i], v->name) == 0) return true;
    ns->slot[i] = v->name;
    return false;
}

static bool verify_node(const ir_node *n, const bool *defined, int maxid, ir_diag *d) {
    const ir_op_info *info = ir_op_get(n->op);
    bool ok = true;
    if (n->nin < info->min_in || (info->max_in >= 0 && n->nin > info->max_in)) {
        ir_error(d, n->loc, "verifier: %s has %d operands", info->name, n->nin);
        return false;
    }
    const ir_value *ref = NULL;
    for (int i = n->op == IR_OP_WHERE ? 1 : 0; i < n->nin && !ref; i++)
        if (n->in[i]->kind != IR_VAL_LITERAL) ref = n->in[i];
    for (int i = 0; i < n->nin; i++) {
        const ir_value *v = n->in[i];
        if (!v) {
            ir_error(d, n->loc, "verifier: %s operand %d is missing", info->name, i);
            return false;
        }
        if (v->kind == IR_VAL_LITERAL) {
            bool cond = (n->op == IR_OP_WHERE && i == 0) || (n->op == IR_OP_MASKED_FILL && i == 1);
            ir_dtype want = cond ? FUSEC_DTYPE_BOOL : ref ? ref->type.dtype : v->type.dtype;
            if (v->type.rank != 0 || v->type.dtype != want) {
                ir_error(d, n->loc, "verifier: %s literal operand %d has type %s, expected %s[]", info->name, i,
                         ir_dtype_name(v->type.dtype), ir_dtype_name(want));
                ok = false;
            }
        } else if (v->id < 0 || v->id >= maxid || !defined[v->id]) {
            ir_str s = {0};
            ir_value_ref(&s, v);
            ir_error(d, n->loc, "verifier: %s uses %s before its definition", info->name, s.buf);
            ir_str_free(&s);
            ok = false;
        }
    }
    for (int k = 0; k < info->nattrs; k++)
        if (info->attrs[k].presence == IR_AP_REQUIRED && !n->attrs[k].set) {
            ir_error(d, n->loc, "verifier: %s lacks required attribute '%s'", info->name, info->attrs[k].name);
            ok = false;
        }
    if (!ok) return false;
    if (n->nin > 0 && !ir_dtclass_has(info->dtclass, n->in[0]->type.dtype)) {
        ir_error(d, n->loc, "verifier: %s operand 0 must have %s", info->name, ir_dtclass_desc(info->dtclass));
        return false;
    }
    /* re-infer on a scratch copy */
    ir_node tmp = *n;
    ir_value out = *n->out;
    tmp.out = &out;
    if (!(info->min_in == 0 && info->max_in == 0)) out.type.rank = -1;
    if (!info->infer(&tmp, d)) return false;
    if (!ir_type_eq(&out.type, &n->out->type)) {
        ir_str a = {0}, b = {0};
        ir_type_print(&a, &n->out->type);
        ir_type_print(&b, &out.type);
        ir_error(d, n->loc, "verifier: %s result has type %s but its operands give %s", info->name, a.buf, b.buf);
        ir_str_free(&a);
        ir_str_free(&b);
        return false;
    }
    return true;
}

bool ir_verify(const ir_graph *g, ir_diag *d) {
    int before = d->nerr;
    int maxid = g->next_id;
    bool *defined = calloc((size_t)maxid + 1, 1);
    name_set ns = {.cap = 16};
    while (ns.cap < 2 * ((size_t)maxid + 1)) ns.cap *= 2;
    ns.slot = calloc(ns.cap, sizeof *ns.slot);
    if (!defined || !ns.slot) {
        free(defined);
        free(ns.slot);
        ir_error(d, g->loc, "verifier: out of memory");
        return false;
    }
    for (int i = 0; i < g->nparams; i++) {
        const ir_value *p = g->params[i];
        if (p->kind != IR_VAL_PARAM || p->param_index != i || p->id < 0 || p->id >= maxid) {
            ir_error(d, p->loc, "verifier: parameter %d is malformed", i);
            continue;
        }
        if (name_clash(&ns, p)) ir_error(d, p->loc, "verifier: redefinition of '%%%s'", p->name);
        defined[p->id] = true;
    }
    for (const ir_node *n = g->first; n; n = n->next) {
        if (n->next && n->next->prev != n) ir_error(d, n->loc, "verifier: broken node list");
        const ir_value *o = n->out;
        if (!o || o->def != n || o->kind != IR_VAL_NODE || o->id < 0 || o->id >= maxid) {
            ir_error(d, n->loc, "verifier: %s has a malformed result", ir_op_get(n->op)->name);
            continue;
        }
        if (defined[o->id]) {
            ir_str s = {0};
            ir_value_ref(&s, o);
            ir_error(d, n->loc, "verifier: %s is defined twice", s.buf);
            ir_str_free(&s);
        }
        verify_node(n, defined, maxid, d);
        if (name_clash(&ns, o)) ir_error(d, n->loc, "verifier: redefinition of '%%%s'", o->name);
        defined[o->id] = true;
    }
    if (g->nresults == 0) ir_error(d, g->loc, "verifier: @%s returns nothing", g->name);
    for (int i = 0; i < g->nresults; i++) {
        const ir_value *r = g->results[i];
        if (r->kind == IR_VAL_LITERAL || r->id < 0 || r->id >= maxid || !defined[r->id])
            ir_error(d, g->loc, "verifier: result %d of @%s is not a value of the graph", i, g->name);
    }
    free(defined);
    free(ns.slot);
    return d->nerr == before;
}
