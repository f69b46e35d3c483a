/*
 * fuse.c - fusion: partition an optimized graph into the kernels of a plan.
 *
 * The idea (tinygrad's "fuse by default, store only where necessary", with
 * TVM's categories deciding what may be inlined): a value lives in memory
 * only if it must, and every other value is computed inside each kernel
 * that needs it, at the index that kernel asks for.  So the whole question
 * is which values to materialise.  The set M starts with
 *
 *   - the graph's parameters and results;
 *   - the operands of library ops (contractions, windows and undecomposed
 *     composites: categories CONTRACTION and COMPOSITE), which a library
 *     routine reads from memory - except a transpose of the last two dims,
 *     which the routine reads as a transposed view (its operand is stored);
 *
 * and grows until every kernel is legal and nothing expensive is computed
 * twice.  The kernel of a materialised value v is v's node plus everything
 * it reaches through operands that are not in M (its body); operands in M
 * are the kernel's inputs.  Elementwise, broadcast and injective producers
 * thus fuse as prologues, consumers as epilogues, and masks built from
 * iota / compare / full / triu / where become index predicates of the
 * consuming kernel: they have no operand in memory, so nothing of them is
 * ever stored.
 *
 * A body may contain reductions when they form one row kernel: every
 * reduction reduces the same domain D over the same axes A, and the path
 * from each reduction to the kernel's root passes only through elementwise
 * ops whose shapes are D itself ("full"), D with the axes kept as 1
 * ("outer", keepdim) or D without them ("outer", dropped) - with a dropped
 * outer never broadcast back into full, where its dims would no longer line
 * up with D's.  That admits softmax, log_softmax, layer_norm, rms_norm and
 * var after decomposition as one kernel each, with their masks and
 * epilogues.  Rules that grow M, applied until nothing changes:
 *
 *   1. a reduction on an edge that breaks the row rule is materialised
 *      (its own kernel then computes it);
 *   2. a reduction that two kernels would compute is materialised
 *      (reductions are never recomputed);
 *   3. a non-reduction value that two kernels would compute, whose body
 *      holds more than RECOMPUTE_MAX ops, is materialised (recompute only
 *      what is cheap).
 *
 * A library op's result need not be stored either: it becomes the head of
 * the one kernel that consumes it when the path from it to that kernel's
 * root is elementwise at the library result's own shape (an epilogue: bias,
 * activation, residual add - what cuBLASLt and cuDNN fuse into the call).
 * A kernel holds at most one library op and then no reduction; otherwise
 * the library result is materialised (rule 1 again), and rule 2 applies to
 * library ops as to reductions.
 *
 * Every kernel reads only values defined earlier in program order, so
 * ordering kernels by their root's position is a valid schedule and no
 * cycle can arise.  Finally pointwise kernels over the same domain that
 * read a common buffer are merged (horizontal fusion) when no kernel
 * between them reads the earlier one's results.
 *
 * Requires: a verified graph (normally after the default pipeline).
 * Produces: a plan with kernels and buffers; memory planning fills in the
 * arena offsets (passes/memplan.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/fuse.h"

enum { RECOMPUTE_MAX = 12 };

typedef enum level { LV_NONE, LV_FULL, LV_KOUTER, LV_DOUTER } level;

typedef struct fuse_state {
    ir_graph *g;
    int nval;          /* g->next_id */
    ir_node **nodes;   /* program order */
    int nnodes;
    int *pos;          /* value id -> position of its node, -1 if none */
    bool *mat;         /* value id -> materialised */
    /* per kernel-building scratch */
    int *mark;         /* value id -> stamp of the last DFS that visited it */
    int stamp;
    int *kcount;       /* value id -> number of kernels whose body holds it */
    int *subsize;      /* value id -> ops in its body subtree (this DFS) */
} fuse_state;

static bool is_library(const ir_node *n) {
    ir_category c = ir_op_get(n->op)->category;
    return c == IR_CAT_CONTRACTION || c == IR_CAT_COMPOSITE;
}

static bool is_reduction(const ir_node *n) { return ir_op_get(n->op)->category == IR_CAT_REDUCTION; }

/* A transpose of the last two dims: a library op reads it as a view. */
static bool is_view_transpose(const ir_value *v) {
    if (v->kind != IR_VAL_NODE || v->def->op != IR_OP_TRANSPOSE) return false;
    int r = v->type.rank, a, b;
    if (r < 2 || !ir_norm_axis(ir_attr_i(v->def, "dim0"), r, &a) || !ir_norm_axis(ir_attr_i(v->def, "dim1"), r, &b))
        return false;
    return (a == r - 1 && b == r - 2) || (a == r - 2 && b == r - 1);
}

/* The reduced axes of reduction n over its operand's rank. */
static void reduce_mask(const ir_node *n, bool mask[IR_MAX_RANK]) {
    int rank = n->in[0]->type.rank;
    memset(mask, 0, sizeof(bool) * IR_MAX_RANK);
    bool all = true;
    int cnt = 0;
    const int64_t *ax = NULL;
    int64_t one;
    if (n->op == IR_OP_ARGMAX || n->op == IR_OP_ARGMIN) {
        if (ir_attr_has(n, "axis")) {
            one = ir_attr_i(n, "axis");
            ax = &one;
            cnt = 1;
            all = false;
        }
    } else if (ir_attr_has(n, "axes")) {
        ax = ir_attr_ints(n, "axes", &cnt);
        all = false;
    }
    for (int i = 0; i < rank; i++) mask[i] = all;
    for (int i = 0; i < cnt; i++) {
        int a;
        if (ir_norm_axis(ax[i], rank, &a)) mask[a] = true;
    }
}

/* The row domain of a kernel: D and A. */
typedef struct row {
    bool set;
    ir_type dom;
    bool axes[IR_MAX_RANK];
} row;

static bool same_row(const row *r, const ir_node *red) {
    bool m[IR_MAX_RANK];
    reduce_mask(red, m);
    ir_type d = red->in[0]->type;
    if (d.rank != r->dom.rank) return false;
    for (int i = 0; i < d.rank; i++)
        if (d.dim[i] != r->dom.dim[i] || m[i] != r->axes[i]) return false;
    return true;
}

static level level_of(const row *r, const ir_type *t) {
    const ir_type *d = &r->dom;
    if (t->rank == d->rank) {
        bool full = true, kouter = true;
        for (int i = 0; i < d->rank; i++) {
            full &= t->dim[i] == d->dim[i];
            kouter &= t->dim[i] == (r->axes[i] ? 1 : d->dim[i]);
        }
        if (full) return LV_FULL;
        if (kouter) return LV_KOUTER;
    }
    int k = 0;
    for (int i = 0; i < d->rank; i++) {
        if (r->axes[i]) continue;
        if (k >= t->rank || t->dim[k] != d->dim[i]) return LV_NONE;
        k++;
    }
    return k == t->rank ? LV_DOUTER : LV_NONE;
}

/* Does an operand at level `from` line up inside a consumer at level `to`? */
static bool aligned(level to, level from) {
    if (to == LV_NONE || from == LV_NONE) return false;
    if (to == from) return true;
    return to == LV_FULL && from == LV_KOUTER;
}

/* ---- one kernel's body ---------------------------------------------- */

typedef struct body {
    ir_node **nodes;
    int n, cap;
    int *inputs; /* value ids in M read by the body */
    int nin, incap;
    bool has_red;
    int nlib;
} body;

static bool push_int(int **a, int *n, int *cap, int v) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        int *na = realloc(*a, sizeof(int) * (size_t)nc);
        if (!na) return false;
        *a = na;
        *cap = nc;
    }
    (*a)[(*n)++] = v;
    return true;
}

static bool push_node(body *b, ir_node *n) {
    if (b->n == b->cap) {
        int nc = b->cap ? b->cap * 2 : 16;
        ir_node **na = realloc(b->nodes, sizeof(ir_node *) * (size_t)nc);
        if (!na) return false;
        b->nodes = na;
        b->cap = nc;
    }
    b->nodes[b->n++] = n;
    return true;
}

/* Collect the body of the kernel rooted at `root` (a materialised value's
 * node): every node reachable through operands not in M.  Returns false on
 * OOM. */
static bool collect(fuse_state *s, ir_node *root, body *b) {
    s->stamp++;
    ir_node **stack = malloc(sizeof(ir_node *) * (size_t)(s->nnodes + 1));
    if (!stack) return false;
    int sp = 0;
    stack[sp++] = root;
    s->mark[root->out->id] = s->stamp;
    bool ok = true;
    while (sp && ok) {
        ir_node *n = stack[--sp];
        ok = push_node(b, n);
        if (is_reduction(n)) b->has_red = true;
        if (is_library(n)) b->nlib++;
        for (int i = 0; i < n->nin && ok; i++) {
            ir_value *v = n->in[i];
            if (v->kind == IR_VAL_LITERAL || s->mark[v->id] == s->stamp) continue;
            s->mark[v->id] = s->stamp;
            if (s->mat[v->id]) ok = push_int(&b->inputs, &b->nin, &b->incap, v->id);
            else stack[sp++] = v->def;
        }
    }
    free(stack);
    return ok;
}

/* qsort has no context argument: the position table of the graph being
 * fused.  pass_fuse is not reentrant across threads for this reason only
 * within one call; it is set at the start of each call. */
static _Thread_local const int *cmp_pos_table;
static int cmp_nodes(const void *a, const void *b) {
    const ir_node *x = *(ir_node *const *)a, *y = *(ir_node *const *)b;
    return cmp_pos_table[x->out->id] - cmp_pos_table[y->out->id];
}

/* Sort a body's nodes into program order. */
static void sort_body(fuse_state *s, body *b) {
    cmp_pos_table = s->pos;
    qsort(b->nodes, (size_t)b->n, sizeof(ir_node *), cmp_nodes);
}

/* Check the row rule on a body (in program order); materialise the first
 * offender.  Returns true if M changed. */
static bool enforce_row_rule(fuse_state *s, body *b, ir_node *root) {
    if (!b->has_red || b->nlib) return false;
    /* in_body: stamp from collect() */
    row r = {0};
    /* the row is defined by the reduction nearest the root: scan from the end */
    for (int i = b->n - 1; i >= 0; i--) {
        ir_node *n = b->nodes[i];
        if (!is_reduction(n)) continue;
        if (!r.set) {
            r.set = true;
            r.dom = n->in[0]->type;
            reduce_mask(n, r.axes);
        } else if (!same_row(&r, n)) {
            s->mat[n->out->id] = true;
            return true;
        }
    }
    /* has_red[] for the body: does a node's subtree (within the body) hold
     * a reduction?  Program order means operands come first. */
    int stamp = s->mark[root->out->id];
    bool changed = false;
    for (int i = 0; i < b->n && !changed; i++) {
        ir_node *n = b->nodes[i];
        bool red = is_reduction(n);
        s->subsize[n->out->id] = red ? 1 : 0; /* reuse: 1 = subtree has a reduction */
        for (int k = 0; k < n->nin; k++) {
            ir_value *v = n->in[k];
            if (v->kind == IR_VAL_LITERAL || s->mat[v->id] || s->mark[v->id] != stamp) continue;
            if (!s->subsize[v->id]) continue;
            s->subsize[n->out->id] = 1;
            /* edge n <- v carries a reduction: n must be elementwise (or a
             * reduction of the row reading a full operand) and aligned */
            level to = level_of(&r, &n->out->type), from = level_of(&r, &v->type);
            bool ok;
            if (red) ok = from == LV_FULL;
            else ok = ir_op_get(n->op)->category == IR_CAT_ELEMENTWISE && aligned(to, from);
            if (!ok) {
                /* materialise the reduction-carrying operand's nearest
                 * reduction: v itself if it is one, else v */
                s->mat[v->id] = true;
                changed = true;
                break;
            }
        }
    }
    if (!changed) {
        level lv = level_of(&r, &root->out->type);
        if (lv == LV_NONE) {
            /* the root does not line up with the row: store its operands */
            for (int k = 0; k < root->nin; k++) {
                ir_value *v = root->in[k];
                if (v->kind != IR_VAL_LITERAL && !s->mat[v->id] && s->subsize[v->id]) {
                    s->mat[v->id] = true;
                    changed = true;
                }
            }
        }
    }
    for (int i = 0; i < b->n; i++) s->subsize[b->nodes[i]->out->id] = 0;
    return changed;
}

/* The library rule: a library op inside a body (not its root) must be the
 * only library op, with no reduction beside it, and reach the root only
 * through elementwise ops of its own shape.  Materialise the first
 * offender; true if M changed. */
static bool enforce_library_rule(fuse_state *s, body *b, ir_node *root) {
    if (b->nlib == 0 || (b->nlib == 1 && is_library(root))) return false;
    ir_node *lib = NULL;
    for (int i = b->n - 1; i >= 0; i--) {
        ir_node *n = b->nodes[i];
        if (!is_library(n) || n == root) continue;
        if (lib || b->has_red || is_library(root)) {
            s->mat[n->out->id] = true;
            return true;
        }
        lib = n;
    }
    if (!lib) return false;
    const ir_type *shape = &lib->out->type;
    int stamp = s->mark[root->out->id];
    bool bad = false;
    /* carries[id] (in subsize[]): the node's body subtree holds lib */
    for (int i = 0; i < b->n && !bad; i++) {
        ir_node *n = b->nodes[i];
        s->subsize[n->out->id] = n == lib;
        for (int k = 0; k < n->nin && n != lib; k++) {
            ir_value *v = n->in[k];
            if (v->kind == IR_VAL_LITERAL || s->mat[v->id] || s->mark[v->id] != stamp || !s->subsize[v->id])
                continue;
            s->subsize[n->out->id] = 1;
            bool same = ir_op_get(n->op)->category == IR_CAT_ELEMENTWISE && v->type.rank == shape->rank &&
                        n->out->type.rank == shape->rank;
            for (int d = 0; same && d < shape->rank; d++)
                same = v->type.dim[d] == shape->dim[d] && n->out->type.dim[d] == shape->dim[d];
            if (!same) bad = true;
        }
    }
    for (int i = 0; i < b->n; i++) s->subsize[b->nodes[i]->out->id] = 0;
    if (bad) s->mat[lib->out->id] = true;
    return bad;
}

static void body_free(body *b) {
    free(b->nodes);
    free(b->inputs);
    memset(b, 0, sizeof *b);
}

/* ---- the plan --------------------------------------------------------- */

static const char *kernel_name(ir_arena *a, int idx, ir_node *const *nodes, int nnodes) {
    char buf[96];
    int len = snprintf(buf, sizeof buf, "k%d", idx);
    const char *seen[4];
    int nseen = 0;
    /* name after the distinctive ops: reductions and library ops first */
    for (int pass = 0; pass < 2 && nseen < 3; pass++) {
        for (int i = nnodes - 1; i >= 0 && nseen < 3; i--) {
            const ir_node *n = nodes[i];
            bool distinctive = is_reduction(n) || is_library(n);
            if ((pass == 0) != distinctive) continue;
            const char *nm = ir_op_get(n->op)->name;
            bool dup = false;
            for (int k = 0; k < nseen; k++) dup |= strcmp(seen[k], nm) == 0;
            if (dup) continue;
            seen[nseen++] = nm;
        }
    }
    for (int k = 0; k < nseen && len < (int)sizeof buf - 16; k++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, "_%s", seen[k]);
    return ir_arena_strdup(a, buf);
}

/* The largest value fusec plans: 2^56 bytes (64 PiB) keeps every sum of
 * sizes and offsets far from int64 overflow.  The verifier allows up to
 * 2^62 elements, whose bytes would not fit in an int64. */
#define PLAN_MAX_BYTES ((int64_t)1 << 56)

/* v's bytes, rounded up to the arena alignment; -1 beyond PLAN_MAX_BYTES. */
static int64_t value_bytes(const ir_value *v, bool aligned) {
    int64_t n = ir_type_numel(&v->type), es = (int64_t)ir_dtype_size(v->type.dtype);
    if (n > PLAN_MAX_BYTES / es) return -1;
    return aligned ? (n * es + PLAN_ARENA_ALIGN - 1) / PLAN_ARENA_ALIGN * PLAN_ARENA_ALIGN : n * es;
}

static int add_buf(plan *p, ir_value *v, plan_buf_kind kind) {
    plan_buf *bf = &p->bufs[p->nbufs];
    bf->id = p->nbufs;
    bf->kind = kind;
    bf->value = v;
    bf->bytes = value_bytes(v, false);
    bf->offset = -1;
    bf->def = -1;
    bf->last_use = -1;
    bf->reuses = -1;
    p->buf_of[v->id] = p->nbufs;
    return p->nbufs++;
}

static bool is_result(const ir_graph *g, const ir_value *v) {
    for (int i = 0; i < g->nresults; i++)
        if (g->results[i] == v) return true;
    return false;
}

/* Fill kernel k from body b (nodes already in program order). */
static bool make_kernel(plan *p, plan_kernel *k, body *b, ir_node *root) {
    k->nnodes = b->n;
    k->nodes = ir_arena_alloc(&p->arena, sizeof(ir_node *) * (size_t)(b->n ? b->n : 1));
    k->in = ir_arena_alloc(&p->arena, sizeof(int) * (size_t)(b->nin ? b->nin : 1));
    k->out = ir_arena_alloc(&p->arena, sizeof(int) * 4);
    if (!k->nodes || !k->in || !k->out) return false;
    memcpy(k->nodes, b->nodes, sizeof(ir_node *) * (size_t)b->n);
    k->nin = b->nin;
    for (int i = 0; i < b->nin; i++) k->in[i] = p->buf_of[b->inputs[i]];
    k->nout = 1;
    k->out[0] = p->buf_of[root->out->id];
    if (b->nlib) {
        k->kind = PLAN_LIBRARY;
        for (int i = 0; i < b->n; i++)
            if (is_library(b->nodes[i])) k->domain = b->nodes[i]->out->type;
    } else if (b->has_red) {
        k->kind = PLAN_REDUCE;
        for (int i = b->n - 1; i >= 0; i--)
            if (is_reduction(b->nodes[i])) {
                k->domain = b->nodes[i]->in[0]->type;
                reduce_mask(b->nodes[i], k->reduce);
                break;
            }
    } else {
        k->kind = PLAN_POINTWISE;
        k->domain = root->out->type;
    }
    return true;
}

/* Horizontal fusion: merge pointwise kernel a into a later kernel b over
 * the same domain that shares an input, if no kernel in between reads a's
 * outputs.  b then writes both; a disappears. */
static bool merge_horizontal(plan *p) {
    for (int bi = 1; bi < p->nkernels; bi++) {
        plan_kernel *b = &p->kernels[bi];
        if (b->kind != PLAN_POINTWISE) continue;
        for (int ai = bi - 1; ai >= 0; ai--) {
            plan_kernel *a = &p->kernels[ai];
            if (a->kind != PLAN_POINTWISE) continue;
            bool same = a->domain.rank == b->domain.rank;
            for (int i = 0; same && i < a->domain.rank; i++) same = a->domain.dim[i] == b->domain.dim[i];
            if (!same || a->nout + b->nout > 4) continue;
            bool share = false;
            for (int i = 0; i < a->nin && !share; i++)
                for (int j = 0; j < b->nin && !share; j++) share = a->in[i] == b->in[j];
            if (!share) continue;
            /* nobody in (a, b] may read a's outputs */
            bool blocked = false;
            for (int ci = ai + 1; ci <= bi && !blocked; ci++)
                for (int j = 0; j < p->kernels[ci].nin && !blocked; j++)
                    for (int o = 0; o < a->nout; o++) blocked |= p->kernels[ci].in[j] == a->out[o];
            if (blocked) continue;
            /* union of nodes (program order by merge), inputs and outputs */
            int nn = a->nnodes + b->nnodes, ni = a->nin + b->nin;
            ir_node **nodes = ir_arena_alloc(&p->arena, sizeof(ir_node *) * (size_t)nn);
            int *in = ir_arena_alloc(&p->arena, sizeof(int) * (size_t)ni);
            if (!nodes || !in) return false;
            int cnt = 0;
            for (int i = 0, j = 0; i < a->nnodes || j < b->nnodes;) {
                ir_node *x = i < a->nnodes ? a->nodes[i] : NULL, *y = j < b->nnodes ? b->nodes[j] : NULL;
                ir_node *pick;
                if (x && y && x == y) pick = x, i++, j++;
                else if (!y || (x && cmp_pos_table[x->out->id] < cmp_pos_table[y->out->id])) pick = x, i++;
                else pick = y, j++;
                nodes[cnt++] = pick;
            }
            int cin = 0;
            for (int i = 0; i < a->nin + b->nin; i++) {
                int id = i < a->nin ? a->in[i] : b->in[i - a->nin];
                bool dup = false;
                for (int k = 0; k < cin; k++) dup |= in[k] == id;
                if (!dup) in[cin++] = id;
            }
            /* outputs in program order: a's come first */
            int outs[4], no = 0;
            for (int o = 0; o < a->nout; o++) outs[no++] = a->out[o];
            for (int o = 0; o < b->nout; o++) outs[no++] = b->out[o];
            memcpy(b->out, outs, sizeof(int) * (size_t)no);
            b->nout = no;
            b->nodes = nodes;
            b->nnodes = cnt;
            b->in = in;
            b->nin = cin;
            /* drop a */
            memmove(a, a + 1, sizeof(plan_kernel) * (size_t)(p->nkernels - ai - 1));
            p->nkernels--;
            bi--;
            break;
        }
    }
    return true;
}

static void state_free(fuse_state *s, body *bodies, ir_node **roots) {
    if (bodies)
        for (int i = 0; i < s->nnodes; i++) body_free(&bodies[i]);
    free(bodies);
    free(roots);
    free(s->nodes);
    free(s->pos);
    free(s->mat);
    free(s->mark);
    free(s->kcount);
    free(s->subsize);
}

plan *pass_fuse(ir_graph *g, ir_diag *d) {
    fuse_state s = {.g = g, .nval = g->next_id};
    for (ir_node *n = g->first; n; n = n->next) s.nnodes++;
    size_t nv = (size_t)s.nval + 1;
    s.nodes = malloc(sizeof(ir_node *) * (size_t)(s.nnodes + 1));
    s.pos = malloc(sizeof(int) * nv);
    s.mat = calloc(nv, 1);
    s.mark = calloc(nv, sizeof(int));
    s.kcount = calloc(nv, sizeof(int));
    s.subsize = calloc(nv, sizeof(int));
    plan *p = calloc(1, sizeof *p);
    body *bodies = calloc((size_t)s.nnodes + 1, sizeof *bodies);
    ir_node **roots = malloc(sizeof(ir_node *) * (size_t)(s.nnodes + 1));
    bool ok = s.nodes && s.pos && s.mat && s.mark && s.kcount && s.subsize && p && bodies && roots;
    if (!ok) goto oom;

    for (size_t i = 0; i < nv; i++) s.pos[i] = -1;
    int i0 = 0;
    for (ir_node *n = g->first; n; n = n->next) {
        s.pos[n->out->id] = i0;
        s.nodes[i0++] = n;
    }
    cmp_pos_table = s.pos;

    /* the initial M */
    for (int i = 0; i < g->nparams; i++) s.mat[g->params[i]->id] = true;
    for (int i = 0; i < g->nresults; i++) s.mat[g->results[i]->id] = true;
    for (int i = 0; i < s.nnodes; i++) {
        ir_node *n = s.nodes[i];
        if (!is_library(n)) continue;
        for (int k = 0; k < n->nin; k++) {
            ir_value *v = n->in[k];
            if (v->kind == IR_VAL_LITERAL) continue;
            if (is_view_transpose(v) && !s.mat[v->id] && v->def->in[0]->kind != IR_VAL_LITERAL)
                s.mat[v->def->in[0]->id] = true;
            else
                s.mat[v->id] = true;
        }
    }

    /* grow M to a fixed point */
    int nroots = 0;
    for (int round = 0;; round++) {
        bool changed = false;
        nroots = 0;
        for (int i = 0; i < s.nnodes; i++) body_free(&bodies[i]);
        memset(s.kcount, 0, sizeof(int) * nv);
        for (int i = 0; i < s.nnodes && !changed; i++) {
            ir_node *n = s.nodes[i];
            if (!s.mat[n->out->id]) continue;
            body *b = &bodies[nroots];
            roots[nroots++] = n;
            if (!collect(&s, n, b)) goto oom;
            sort_body(&s, b);
            if (enforce_library_rule(&s, b, n) || enforce_row_rule(&s, b, n)) changed = true;
            for (int k = 0; k < b->n; k++) {
                int id = b->nodes[k]->out->id;
                if (b->nodes[k] != n) s.kcount[id]++;
            }
        }
        if (!changed) {
            /* rules 2 and 3: values computed by two kernels */
            for (int i = 0; i < s.nnodes; i++) {
                ir_node *n = s.nodes[i];
                int id = n->out->id;
                if (s.mat[id] || s.kcount[id] < 2) continue;
                if (is_reduction(n) || is_library(n)) {
                    s.mat[id] = true;
                    changed = true;
                    continue;
                }
                /* size of n's body subtree */
                body sub = {0};
                bool was = s.mat[id];
                s.mat[id] = false;
                if (!collect(&s, n, &sub)) {
                    body_free(&sub);
                    goto oom;
                }
                s.mat[id] = was;
                if (sub.n > RECOMPUTE_MAX) {
                    s.mat[id] = true;
                    changed = true;
                }
                body_free(&sub);
            }
        }
        if (!changed) break;
        if (round > s.nnodes + 2) break; /* M only grows: cannot happen */
    }

    /* buffers and kernels */
    if (ir_arena_alloc(&p->arena, 1) == NULL) goto oom;
    p->g = g;
    p->buf_of = ir_arena_alloc(&p->arena, sizeof(int) * nv);
    p->bufs = ir_arena_alloc(&p->arena, sizeof(plan_buf) * nv);
    p->kernels = ir_arena_alloc(&p->arena, sizeof(plan_kernel) * (size_t)(nroots + 1));
    if (!p->buf_of || !p->bufs || !p->kernels) goto oom;
    for (size_t i = 0; i < nv; i++) p->buf_of[i] = -1;
    for (int i = 0; i < g->nparams + s.nnodes; i++) {
        const ir_value *v = i < g->nparams ? g->params[i] : s.nodes[i - g->nparams]->out;
        if (value_bytes(v, true) < 0) {
            ir_str t = {0};
            ir_describe(&t, v);
            ir_error(d, v->loc, "%s is too large to plan: more than 2^56 bytes", t.buf ? t.buf : "a value");
            ir_str_free(&t);
            state_free(&s, bodies, roots);
            plan_free(p);
            return NULL;
        }
    }
    for (int i = 0; i < g->nparams; i++) add_buf(p, g->params[i], PLAN_BUF_INPUT);
    for (int i = 0; i < nroots; i++) {
        ir_value *v = roots[i]->out;
        add_buf(p, v, is_result(g, v) ? PLAN_BUF_OUTPUT : PLAN_BUF_TEMP);
    }
    for (int i = 0; i < nroots; i++)
        if (!make_kernel(p, &p->kernels[i], &bodies[i], roots[i])) goto oom;
    p->nkernels = nroots;
    if (!merge_horizontal(p)) goto oom;
    for (int i = 0; i < p->nkernels; i++) {
        p->kernels[i].id = i;
        p->kernels[i].name = kernel_name(&p->arena, i, p->kernels[i].nodes, p->kernels[i].nnodes);
        if (!p->kernels[i].name) goto oom;
        for (int o = 0; o < p->kernels[i].nout; o++) p->bufs[p->kernels[i].out[o]].def = i;
        for (int j = 0; j < p->kernels[i].nin; j++) p->bufs[p->kernels[i].in[j]].last_use = i;
    }
    for (int i = 0; i < s.nnodes; i++) {
        const ir_value *v = s.nodes[i]->out;
        if (!is_result(g, v)) p->eager_bytes += value_bytes(v, true);
    }
    for (int i = 0; i < p->nbufs; i++) {
        plan_buf *bf = &p->bufs[i];
        if (bf->kind == PLAN_BUF_TEMP) p->naive_bytes += (bf->bytes + PLAN_ARENA_ALIGN - 1) / PLAN_ARENA_ALIGN * PLAN_ARENA_ALIGN;
    }

    state_free(&s, bodies, roots);
    return p;

oom:
    state_free(&s, bodies, roots);
    plan_free(p);
    ir_error(d, (ir_loc){0}, "fusion: out of memory");
    return NULL;
}
