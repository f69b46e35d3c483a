/*
 * plan.c - freeing and printing plans (ir/plan.h).
 *
 * The printed plan is for people reading what fusion did: each kernel with
 * its loop domain, the buffers it reads and how (the first op of the body
 * that reads each, which is its index map: elementwise, broadcast, or a
 * remapping op such as transpose or slice), the buffers it writes, and its
 * body with the source line each op came from.  Ops that compute from the
 * index alone (iota, full, triu, pad, ...) are the kernel's predicates.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/plan.h"

void plan_free(plan *p) {
    if (!p) return;
    ir_arena_free(&p->arena);
    free(p);
}

static const char *kind_name(plan_kind k) {
    switch (k) {
    case PLAN_POINTWISE: return "pointwise";
    case PLAN_REDUCE: return "reduce";
    case PLAN_LIBRARY: return "library";
    }
    return "?";
}

static const char *buf_kind_name(plan_buf_kind k) {
    switch (k) {
    case PLAN_BUF_INPUT: return "input";
    case PLAN_BUF_OUTPUT: return "output";
    case PLAN_BUF_TEMP: return "temp";
    }
    return "?";
}

static void print_shape(ir_str *s, const ir_type *t) {
    ir_str_putc(s, '[');
    for (int i = 0; i < t->rank; i++) ir_str_printf(s, i ? ", %lld" : "%lld", (long long)t->dim[i]);
    ir_str_putc(s, ']');
}

/* How a kernel reads buffer value v: through which op of its body. */
static void print_access(ir_str *s, const plan_kernel *k, const ir_value *v) {
    for (int i = 0; i < k->nnodes; i++) {
        const ir_node *n = k->nodes[i];
        for (int j = 0; j < n->nin; j++) {
            if (n->in[j] != v) continue;
            const ir_op_info *info = ir_op_get(n->op);
            bool bcast = !ir_type_eq(&v->type, &n->out->type) && info->category == IR_CAT_ELEMENTWISE;
            if (info->category == IR_CAT_ELEMENTWISE || info->category == IR_CAT_REDUCTION)
                ir_str_printf(s, "%s by %s", bcast ? "broadcast" : "elementwise", info->name);
            else if (info->category == IR_CAT_CONTRACTION || info->category == IR_CAT_COMPOSITE)
                ir_str_printf(s, "operand %d of %s", j, info->name);
            else
                ir_str_printf(s, "remapped by %s", info->name);
            return;
        }
    }
    ir_str_puts(s, "unused");
}

void plan_print(ir_str *s, const plan *p) {
    int ntemp = 0;
    for (int i = 0; i < p->nbufs; i++) ntemp += p->bufs[i].kind == PLAN_BUF_TEMP;
    ir_str_printf(s, "plan @%s: %d kernel%s, %d temporar%s\n", p->g->name, p->nkernels,
                  p->nkernels == 1 ? "" : "s", ntemp, ntemp == 1 ? "y" : "ies");
    ir_str_printf(s, "memory: arena %lld bytes; the temporaries unplanned %lld bytes; every "
                  "intermediate value stored (op by op) %lld bytes\n",
                  (long long)p->arena_bytes, (long long)p->naive_bytes, (long long)p->eager_bytes);
    ir_str_puts(s, "buffers:\n");
    for (int i = 0; i < p->nbufs; i++) {
        const plan_buf *b = &p->bufs[i];
        ir_str_printf(s, "  b%d %-6s ", b->id, buf_kind_name(b->kind));
        ir_value_ref(s, b->value);
        ir_str_puts(s, ": ");
        ir_type_print(s, &b->value->type);
        ir_str_printf(s, ", %lld bytes", (long long)b->bytes);
        if (b->kind == PLAN_BUF_TEMP) {
            ir_str_printf(s, ", arena +%lld", (long long)b->offset);
            if (b->reuses >= 0) ir_str_printf(s, " (in place of b%d)", b->reuses);
        }
        if (b->def >= 0) ir_str_printf(s, ", written by k%d", b->def);
        if (b->last_use >= 0) ir_str_printf(s, ", last read by k%d", b->last_use);
        ir_str_putc(s, '\n');
    }
    for (int ki = 0; ki < p->nkernels; ki++) {
        const plan_kernel *k = &p->kernels[ki];
        ir_str_printf(s, "kernel %s: %s over ", k->name, kind_name(k->kind));
        print_shape(s, &k->domain);
        if (k->kind == PLAN_REDUCE) {
            ir_str_puts(s, " reducing axes [");
            for (int i = 0, c = 0; i < k->domain.rank; i++)
                if (k->reduce[i]) ir_str_printf(s, c++ ? ", %d" : "%d", i);
            ir_str_putc(s, ']');
        }
        ir_str_putc(s, '\n');
        for (int i = 0; i < k->nin; i++) {
            const plan_buf *b = &p->bufs[k->in[i]];
            ir_str_printf(s, "  reads  b%d ", b->id);
            ir_value_ref(s, b->value);
            ir_str_puts(s, ": ");
            print_access(s, k, b->value);
            ir_str_putc(s, '\n');
        }
        for (int i = 0; i < k->nout; i++) {
            const plan_buf *b = &p->bufs[k->out[i]];
            ir_str_printf(s, "  writes b%d ", b->id);
            ir_value_ref(s, b->value);
            ir_str_putc(s, '\n');
        }
        for (int i = 0; i < k->nnodes; i++) {
            const ir_node *n = k->nodes[i];
            ir_str_puts(s, "    ");
            ir_print_node(s, n);
            if (n->loc.line > 0) ir_str_printf(s, "  # line %d", n->loc.line);
            ir_str_putc(s, '\n');
        }
    }
}
