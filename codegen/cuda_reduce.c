/*
 * cuda_reduce.c - PLAN_REDUCE kernels: row kernels whose reductions all
 * reduce the domain D over the same axes, with prologues (anything the
 * reductions' operands compute) and epilogues at the row's full level (D:
 * softmax's output) or outer level (D without the reduced axes, kept as 1
 * or dropped: a sum, a mean).
 *
 * The reductions run in body (= dependency) order, grouped into stages:
 * a stage is a run of consecutive reductions none of which reads another
 * of the same stage, evaluated by one pass over the row (softmax: max,
 * then sum of exp(x - max); layer_norm: sum, then sum of squared
 * deviations).  Each reduction accumulates in a per-thread state, combines
 * across the threads of its row (warp shuffles, then shared memory across
 * warps, broadcast to every thread: fc_block_reduce), and is finished into
 * a per-row variable that later stages and the epilogue read.  Float sums,
 * means and products accumulate in double (the interpreter accumulates in
 * double too; sums and means of a row kernel with only f16/bf16 outputs in
 * float: narrow_sums says why); max/min let NaN win; argmax/argmin keep
 * the first index on ties and let the first NaN win; var is two-pass like
 * the interpreter
 * (a mean, then squared deviations); integer sums and products wrap in
 * int64.  Every combine is commutative and done in a fixed order, so
 * results are deterministic - no atomics.
 *
 * Shapes of kernel (D = kept dims K x reduced dims R; rows = |K|, row
 * length = |R|):
 *  - row kernel, when the reduced axes are the innermost ones and a row
 *    has more than 16 elements: a warp per row (8 rows per block) for rows
 *    of up to 128 vectors, else a block of up to 1024 threads per row.
 *    Rows of up to 16 KB (and at most 8 vectors per thread) are
 *    *persistent*: each thread's elements are evaluated once, in
 *    registers, and reused by every later stage and the epilogue, so the
 *    row is read from memory once.  Longer rows loop over the row once per
 *    stage and once more for full-level outputs, reading it again each
 *    time (simple; an online softmax / Welford single pass is future
 *    work).  V-wide vector accesses when the row length is a multiple of V.
 *  - split reduction, for fewer than 128 rows of at least 8192 vectors
 *    with only outer-level outputs, independent reductions and no var: a
 *    first kernel (`_partial`, grid parts x rows) reduces one part of a
 *    row per block into a scratch buffer; the second (`_finish`, launched
 *    next with the same arguments) combines the parts of each row in a
 *    fixed order and computes the outputs.
 *  - column kernel otherwise (reduced axes not innermost, or short rows):
 *    one thread per output row looping over the reduced elements in order;
 *    consecutive threads take consecutive kept indices, so reads coalesce
 *    when the innermost axis is kept.  With fewer than 16384 output rows
 *    of at least 1024 elements (and the split's other conditions) the
 *    columns are split too: a thread per output row and part (`_partial`,
 *    grid rows x parts) writes partial states that the same `_finish`
 *    kernel as above combines.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda_impl.h"

enum { LV_FULL, LV_KOUTER, LV_DOUTER };
enum { RM_ROW, RM_COLUMN, RM_SPLIT, RM_CSPLIT };
enum { MAX_CHUNKS = 8, PERSIST_BYTES = 16384 };

typedef struct red_info {
    int j;               /* body index */
    const ir_node *n;
    ir_dtype xdt, odt;
    bool isf, arg, is_max;
    const char *acc_t;   /* accumulator type */
    const char *fn;      /* combining functor */
    const char *init;
    const char *acc, *idx, *mean;
    int64_t count;
    int stage;
} red_info;

typedef struct rk {
    int mode;
    bool persistent, vecmode;
    int V, T, R, CH, nsplit;
    int64_t nrows, rowlen, nvec, chv;
    int nk, nr;
    int kept[IR_MAX_RANK], red[IR_MAX_RANK];
    int64_t kdims[IR_MAX_RANK], rdims[IR_MAX_RANK];
    int rowvar, tidvar;
    cg_ix kcomp[IR_MAX_RANK];
    red_info *reds;
    int nreds, nstages;
    int *level; /* per output */
} rk;

static bool same_shape(const ir_type *a, const ir_type *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

/* The level of an output value's shape relative to the row. */
static int out_level(const rk *r, const ir_type *D, const ir_type *t) {
    if (same_shape(t, D)) return LV_FULL;
    if (t->rank == D->rank) {
        bool ok = true;
        for (int i = 0; i < D->rank; i++) {
            bool isred = false;
            for (int k = 0; k < r->nr; k++) isred |= r->red[k] == i;
            ok &= t->dim[i] == (isred ? 1 : D->dim[i]);
        }
        if (ok) return LV_KOUTER;
    }
    if (t->rank == r->nk) {
        bool ok = true;
        for (int i = 0; i < r->nk; i++) ok &= t->dim[i] == r->kdims[i];
        if (ok) return LV_DOUTER;
    }
    return -1;
}

/* Does body node `from`'s subtree (within the body) hold body node `target`? */
static bool reaches(const cg *g, int from, int target, bool *seen) {
    if (from == target) return true;
    if (seen[from]) return false;
    seen[from] = true;
    const ir_node *n = g->k->nodes[from];
    for (int i = 0; i < n->nin; i++) {
        int b = cg_input_buf(g, n->in[i]) >= 0 ? -1 : cg_body_index(g, n->in[i]);
        if (b >= 0 && reaches(g, b, target, seen)) return true;
    }
    return false;
}

static bool setup_reds(cg *g, rk *r) {
    const plan_kernel *k = g->k;
    r->reds = calloc((size_t)k->nnodes + 1, sizeof *r->reds);
    bool *seen = calloc((size_t)k->nnodes + 1, sizeof(bool));
    if (!r->reds || !seen) {
        free(seen);
        return cg_fail(g, NULL, "out of memory");
    }
    for (int j = 0; j < k->nnodes; j++) {
        const ir_node *n = k->nodes[j];
        if (ir_op_get(n->op)->category != IR_CAT_REDUCTION) continue;
        if (!same_shape(&n->in[0]->type, &k->domain)) {
            free(seen);
            return cg_fail(g, n, "reduction %s does not reduce the kernel's domain", ir_op_get(n->op)->name);
        }
        red_info *ri = &r->reds[r->nreds];
        ri->j = j;
        ri->n = n;
        ri->xdt = n->in[0]->type.dtype;
        ri->odt = n->out->type.dtype;
        ri->isf = ir_dtype_is_float(ri->xdt);
        ri->arg = n->op == IR_OP_ARGMAX || n->op == IR_OP_ARGMIN;
        ri->is_max = n->op == IR_OP_ARGMAX || n->op == IR_OP_MAX;
        ri->count = r->rowlen;
        const char *ct = cg_ctype(ri->xdt);
        bool dbl = ri->xdt == FUSEC_DTYPE_F64;
        switch (n->op) {
        case IR_OP_SUM:
        case IR_OP_MEAN:
        case IR_OP_VAR:
            ri->acc_t = ri->isf ? "double" : "long long";
            ri->fn = ri->isf ? "fc_sum" : "fc_isum";
            ri->init = ri->isf ? "0.0" : "0LL";
            break;
        case IR_OP_PROD:
            ri->acc_t = ri->isf ? "double" : "long long";
            ri->fn = ri->isf ? "fc_prod" : "fc_iprod";
            ri->init = ri->isf ? "1.0" : "1LL";
            break;
        case IR_OP_MAX:
        case IR_OP_MIN:
        case IR_OP_ARGMAX:
        case IR_OP_ARGMIN:
            ri->acc_t = ct;
            ri->fn = ri->is_max ? "fc_max" : "fc_min";
            if (ri->arg) ri->init = ri->isf ? (dbl ? "0.0" : "0.0f") : "0LL";
            else if (ri->isf) ri->init = ri->is_max ? (dbl ? "((double)-INFINITY)" : "(-INFINITY)")
                                                    : (dbl ? "((double)INFINITY)" : "INFINITY");
            else ri->init = ri->is_max ? "(-9223372036854775807LL - 1)" : "9223372036854775807LL";
            break;
        default:
            free(seen);
            return cg_fail(g, n, "reduction %s is not supported by the cuda backend", ir_op_get(n->op)->name);
        }
        /* stages: a reduction reading one of the current stage starts a new one;
         * var (two passes) always has a stage of its own */
        int stage = r->nreds ? r->reds[r->nreds - 1].stage : 0;
        bool newstage = r->nreds == 0;
        for (int i = r->nreds - 1; i >= 0 && !newstage && r->reds[i].stage == stage; i--) {
            memset(seen, 0, sizeof(bool) * (size_t)k->nnodes);
            int opb = cg_input_buf(g, n->in[0]) >= 0 ? -1 : cg_body_index(g, n->in[0]);
            if (opb >= 0 && reaches(g, opb, r->reds[i].j, seen)) newstage = true;
            if (r->reds[i].n->op == IR_OP_VAR) newstage = true;
        }
        if (n->op == IR_OP_VAR && r->nreds) newstage = true;
        ri->stage = newstage && r->nreds ? stage + 1 : stage;
        r->nstages = ri->stage + 1;
        r->nreds++;
    }
    free(seen);
    return true;
}

/* ---- the pieces of a row ------------------------------------------------- */

/* Coordinates of the elements a thread handles in chunk `c` (persistent)
 * or at loop variable `lv` (looped / column / split): e[] gets each lane's
 * index within the row. */
static cg_at *elem_at(cg *g, rk *r, int c, int lv, cg_ix *e) {
    const ir_type *D = &g->k->domain;
    int V = r->vecmode ? r->V : 1;
    cg_at *at = cg_at_new(g, V, D->rank);
    if (!at) return NULL;
    int pred = 0;
    for (int l = 0; l < V; l++) {
        cg_ix el;
        if (r->persistent) {
            el = cg_ixv(r->tidvar, V);
            el.c = (int64_t)c * r->T * V + l;
        } else {
            el = cg_ixv(lv, V);
            el.c = l;
        }
        e[l] = el;
        if (r->persistent && l == 0) {
            int64_t lo, hi;
            cg_ix_range(g, &el, &lo, &hi);
            if (hi >= r->rowlen) pred = cg_pred_and(g, 0, cg_strf(g, "%s < %" PRId64, cg_ix_str(g, &el), r->rowlen));
        }
        cg_ix rc[IR_MAX_RANK];
        cg_ix_split(g, &el, r->rdims, r->nr, rc);
        for (int i = 0; i < r->nk; i++) at->ix[l][r->kept[i]] = r->kcomp[i];
        for (int i = 0; i < r->nr; i++) at->ix[l][r->red[i]] = rc[i];
        at->pred[l] = at->vpred[l] = pred;
    }
    return at;
}

/* Open the loop over this thread's elements; returns the number of
 * element sets (chunks) to evaluate and the loop variable. */
static int loop_open(cg *g, rk *r, int *lv) {
    *lv = -1;
    if (r->persistent) return r->CH;
    switch (r->mode) {
    case RM_COLUMN:
        cg_line(g, "for (idx_t e = 0; e < %" PRId64 "; e++) {", r->rowlen);
        *lv = cg_var_new(g, "e", 0, r->rowlen - 1);
        break;
    case RM_CSPLIT:
        cg_line(g, "for (idx_t e = part * %" PRId64 "; e < eend; e++) {", r->chv);
        *lv = cg_var_new(g, "e", 0, r->rowlen - 1);
        break;
    case RM_SPLIT:
        cg_line(g, "for (idx_t q = part * %" PRId64 " + tid; q < qend; q += %d) {", r->chv, r->T);
        *lv = cg_var_new(g, "q", 0, r->nvec - 1);
        break;
    default:
        cg_line(g, "for (idx_t q = tid; q < %" PRId64 "; q += %d) {", r->nvec, r->T);
        *lv = cg_var_new(g, "q", 0, r->nvec - 1);
        break;
    }
    g->indent++;
    cg_scope_push(g);
    return 1;
}

static void loop_close(cg *g, rk *r) {
    if (r->persistent) return;
    cg_scope_pop(g);
    g->indent--;
    cg_line(g, "}");
}

/* Combine this thread's elements of stage s into the reductions' states
 * (pass 2: var's squared deviations). */
static bool accumulate(cg *g, rk *r, int s, int pass) {
    int lv;
    int nch = loop_open(g, r, &lv);
    for (int c = 0; c < nch && g->ok; c++) {
        cg_ix e[CG_MAX_LANES];
        cg_at *at = elem_at(g, r, c, lv, e);
        if (!at) return false;
        for (int i = 0; i < r->nreds && g->ok; i++) {
            red_info *ri = &r->reds[i];
            if (ri->stage != s || (pass == 2 && ri->n->op != IR_OP_VAR)) continue;
            const char *x[CG_MAX_LANES];
            if (!cg_eval(g, ri->n->in[0], at, x)) break;
            for (int l = 0; l < at->nl; l++) {
                const char *guard = at->vpred[l] ? cg_strf(g, "if (%s) ", cg_pred_name(g, at->vpred[l])) : "";
                if (ri->arg) {
                    cg_line(g, "%sfc_arg_merge<%s>(%s, %s, (%s)%s, (long long)(%s));", guard,
                            ri->is_max ? "true" : "false", ri->acc, ri->idx, ri->acc_t, x[l], cg_ix_str(g, &e[l]));
                } else if (pass == 2) {
                    cg_line(g, "%s{ const double d = (double)%s - %s; %s += d * d; }", guard, x[l], ri->mean, ri->acc);
                } else {
                    cg_line(g, "%s%s = %s()(%s, (%s)%s);", guard, ri->acc, ri->fn, ri->acc, ri->acc_t, x[l]);
                }
            }
        }
        free(at);
    }
    loop_close(g, r);
    return g->ok;
}

/* Combine the states of stage s across the threads of a row. */
static void combine(cg *g, rk *r, int s, int pass, const char *const *sh) {
    if (r->mode == RM_COLUMN || r->mode == RM_CSPLIT) return;
    for (int i = 0; i < r->nreds; i++) {
        red_info *ri = &r->reds[i];
        if (ri->stage != s || (pass == 2 && ri->n->op != IR_OP_VAR)) continue;
        if (r->T == 32) {
            if (ri->arg) cg_line(g, "fc_warp_arg<%s>(%s, %s);", ri->is_max ? "true" : "false", ri->acc, ri->idx);
            else cg_line(g, "%s = fc_warp_reduce(%s, %s());", ri->acc, ri->acc, pass == 2 ? "fc_sum" : ri->fn);
        } else if (ri->arg) {
            cg_line(g, "fc_block_arg<%d, %s>(%s, %s, %sv, %si);", r->T, ri->is_max ? "true" : "false", ri->acc, ri->idx,
                    sh[i], sh[i]);
        } else {
            cg_line(g, "%s = fc_block_reduce<%d>(%s, %s(), %s);", ri->acc, r->T, ri->acc, pass == 2 ? "fc_sum" : ri->fn,
                    sh[i]);
        }
    }
}

/* The per-row result of a finished reduction, in its dtype. */
static void finish_red(cg *g, red_info *ri) {
    const char *ct = cg_ctype(ri->odt);
    char *v;
    switch (ri->n->op) {
    case IR_OP_ARGMAX:
    case IR_OP_ARGMIN: v = cg_strf(g, "%s", ri->idx); break;
    case IR_OP_MEAN: v = cg_round(g, ri->odt, cg_strf(g, "(%s)(%s / %" PRId64 ".0)", ct, ri->acc, ri->count)); break;
    case IR_OP_VAR: {
        int64_t den = ri->count - ir_attr_i(ri->n, "correction");
        if (den < 0) den = 0;
        v = cg_round(g, ri->odt, cg_strf(g, "(%s)(%s / %" PRId64 ".0)", ct, ri->acc, den));
        break;
    }
    case IR_OP_MAX:
    case IR_OP_MIN: v = cg_strf(g, "%s", ri->acc); break;
    default: v = ri->isf ? cg_round(g, ri->odt, cg_strf(g, "(%s)%s", ct, ri->acc)) : cg_strf(g, "%s", ri->acc); break;
    }
    const char *nm = cg_fresh(g, cg_strf(g, "r_%s", ir_op_get(ri->n->op)->name));
    cg_line(g, "const %s %s = %s; /* %s */", ct, nm, v, ir_op_get(ri->n->op)->name);
    g->red[ri->j] = nm;
}

static void declare_state(cg *g, red_info *ri) {
    ri->acc = cg_fresh(g, "acc");
    cg_line(g, "%s %s = %s;", ri->acc_t, ri->acc, ri->init);
    if (ri->arg) {
        ri->idx = cg_fresh(g, "at");
        cg_line(g, "long long %s = -1;", ri->idx);
    }
}

/* Full-level outputs: every element of the row; outer ones: once per row. */
static bool write_outputs(cg *g, rk *r, const char *leader) {
    const plan_kernel *k = g->k;
    const ir_type *D = &k->domain;
    bool anyfull = false, anyouter = false;
    for (int o = 0; o < k->nout; o++) {
        if (r->level[o] == LV_FULL) anyfull = true;
        else anyouter = true;
    }
    if (anyfull) {
        int lv;
        int nch = loop_open(g, r, &lv);
        for (int c = 0; c < nch && g->ok; c++) {
            cg_ix e[CG_MAX_LANES];
            cg_at *at = elem_at(g, r, c, lv, e);
            if (!at) return false;
            const char *names[4][CG_MAX_LANES];
            for (int o = 0; o < k->nout && o < 4 && g->ok; o++)
                if (r->level[o] == LV_FULL) cg_eval(g, g->p->bufs[k->out[o]].value, at, names[o]);
            cg_ix off[CG_MAX_LANES];
            for (int l = 0; l < at->nl; l++) off[l] = cg_ix_linear(g, at->ix[l], D->dim, D->rank);
            for (int o = 0; o < k->nout && o < 4 && g->ok; o++)
                if (r->level[o] == LV_FULL) cg_store(g, k->out[o], at, off, names[o]);
            free(at);
        }
        loop_close(g, r);
    }
    if (anyouter && g->ok) {
        if (leader) {
            cg_line(g, "if (%s) {", leader);
            g->indent++;
        }
        cg_scope_push(g);
        for (int o = 0; o < k->nout && g->ok; o++) {
            if (r->level[o] == LV_FULL) continue;
            const ir_value *v = g->p->bufs[k->out[o]].value;
            cg_at *at = cg_at_new(g, 1, v->type.rank);
            if (!at) return false;
            if (r->level[o] == LV_KOUTER) {
                for (int i = 0; i < D->rank; i++) at->ix[0][i] = cg_ixc(0);
                for (int i = 0; i < r->nk; i++) at->ix[0][r->kept[i]] = r->kcomp[i];
            } else {
                for (int i = 0; i < r->nk; i++) at->ix[0][i] = r->kcomp[i];
            }
            const char *names[1];
            if (cg_eval(g, v, at, names)) {
                cg_ix off = cg_ixv(r->rowvar, 1);
                cg_store(g, k->out[o], at, &off, names);
            }
            free(at);
        }
        cg_scope_pop(g);
        if (leader) {
            g->indent--;
            cg_line(g, "}");
        }
    }
    return g->ok;
}

/* Row index variable, kept coordinates, the stages, the outputs. */
static bool row_body(cg *g, rk *r, const char *const *sh, const char *leader) {
    r->rowvar = cg_var_new(g, "row", 0, r->nrows - 1);
    cg_ix row = cg_ixv(r->rowvar, 1);
    cg_ix_split(g, &row, r->kdims, r->nk, r->kcomp);
    for (int s = 0; s < r->nstages && g->ok; s++) {
        for (int i = 0; i < r->nreds; i++)
            if (r->reds[i].stage == s) declare_state(g, &r->reds[i]);
        if (!accumulate(g, r, s, 1)) return false;
        combine(g, r, s, 1, sh);
        for (int i = 0; i < r->nreds; i++) {
            red_info *ri = &r->reds[i];
            if (ri->stage != s || ri->n->op != IR_OP_VAR) continue;
            ri->mean = cg_fresh(g, "mean");
            cg_line(g, "const double %s = %s / %" PRId64 ".0;", ri->mean, ri->acc, ri->count);
            cg_line(g, "%s = 0.0;", ri->acc);
            if (!accumulate(g, r, s, 2)) return false;
            combine(g, r, s, 2, sh);
        }
        for (int i = 0; i < r->nreds; i++)
            if (r->reds[i].stage == s) finish_red(g, &r->reds[i]);
    }
    return write_outputs(g, r, leader);
}

/* Shared memory for the block reductions of a row kernel. */
static const char **declare_shared(cg *g, rk *r) {
    const char **sh = calloc((size_t)r->nreds + 1, sizeof *sh);
    if (!sh) {
        cg_fail(g, NULL, "out of memory");
        return NULL;
    }
    if (r->mode == RM_COLUMN || r->mode == RM_CSPLIT || r->T == 32) return sh;
    for (int i = 0; i < r->nreds; i++) {
        red_info *ri = &r->reds[i];
        sh[i] = cg_fresh(g, "sh");
        if (ri->arg) {
            cg_line(g, "__shared__ %s %sv[%d];", ri->acc_t, sh[i], r->T / 32);
            cg_line(g, "__shared__ long long %si[%d];", sh[i], r->T / 32);
        } else {
            cg_line(g, "__shared__ %s %s[%d];", ri->n->op == IR_OP_VAR ? "double" : ri->acc_t, sh[i], r->T / 32);
        }
    }
    return sh;
}

/* One entry point of a row or column kernel. */
static bool row_entry(cg *g, rk *r, ir_str *ks, const char *name, const int *bufs, int nbufs, unsigned grid[3],
                      unsigned block[3]) {
    cg_reset(g);
    g->vec = r->vecmode ? r->V : 1;
    ir_str body = {0};
    g->out = &body;
    g->indent = 1;
    grid[0] = grid[1] = grid[2] = 1;
    block[0] = block[1] = block[2] = 1;
    const char **sh = declare_shared(g, r);
    bool ok = sh != NULL;
    int nt;
    if (ok && r->mode == RM_COLUMN) {
        nt = CG_BLOCK;
        block[0] = CG_BLOCK;
        grid[0] = cg_clamp_grid((r->nrows + CG_BLOCK - 1) / CG_BLOCK, 0x7fffffffu);
        cg_line(g, "for (long long rb = (long long)blockIdx.x * blockDim.x + threadIdx.x; rb < %" PRId64
                   "LL; rb += (long long)gridDim.x * blockDim.x) {", r->nrows);
        g->indent++;
        cg_line(g, "const idx_t row = (idx_t)rb; /* this thread's output row */");
        cg_scope_push(g);
        ok = row_body(g, r, sh, NULL);
    } else if (ok) {
        nt = r->T * r->R;
        block[0] = (unsigned)r->T;
        block[1] = (unsigned)r->R;
        grid[0] = cg_clamp_grid((r->nrows + r->R - 1) / r->R, 0x7fffffffu);
        if (r->R > 1)
            cg_line(g, "for (long long rb = (long long)blockIdx.x * blockDim.y + threadIdx.y; rb < %" PRId64
                       "LL; rb += (long long)gridDim.x * blockDim.y) {", r->nrows);
        else
            cg_line(g, "for (long long rb = blockIdx.x; rb < %" PRId64 "LL; rb += gridDim.x) {", r->nrows);
        g->indent++;
        cg_line(g, "const idx_t row = (idx_t)rb;");
        cg_line(g, "const idx_t tid = (idx_t)threadIdx.x; /* thread in the row */");
        r->tidvar = cg_var_new(g, "tid", 0, r->T - 1);
        cg_scope_push(g);
        ok = row_body(g, r, sh, "tid == 0");
    } else {
        nt = CG_BLOCK;
    }
    if (ok) {
        cg_scope_pop(g);
        g->indent--;
        cg_line(g, "}");
    }
    free(sh);
    ok = cg_kernel_entry(g, ks, name, nt, bufs, nbufs, 0, &body, ok);
    return ok;
}

/* ---- split reductions ------------------------------------------------------ */

static int64_t align256(int64_t x) { return (x + 255) / 256 * 256; }

/* Byte offsets of each reduction's partial states in the scratch buffer. */
static int64_t scratch_layout(rk *r, int64_t *off, int64_t *ioff) {
    int64_t at = 0, per = r->nrows * r->nsplit;
    for (int i = 0; i < r->nreds; i++) {
        red_info *ri = &r->reds[i];
        size_t es = strcmp(ri->acc_t, "float") == 0 ? 4 : 8;
        off[i] = at;
        at = align256(at + per * (int64_t)es);
        ioff[i] = at;
        if (ri->arg) at = align256(at + per * 8);
    }
    return at;
}

static bool split_partial(cg *g, rk *r, ir_str *ks, const char *name, const int *bufs, int nbufs, unsigned grid[3],
                          unsigned block[3]) {
    cg_reset(g);
    g->vec = r->vecmode ? r->V : 1;
    ir_str body = {0};
    g->out = &body;
    g->indent = 1;
    int64_t off[64], ioff[64];
    scratch_layout(r, off, ioff);
    block[0] = (unsigned)r->T;
    block[1] = block[2] = 1;
    grid[0] = (unsigned)r->nsplit;
    grid[1] = (unsigned)r->nrows;
    grid[2] = 1;
    const char **sh = declare_shared(g, r);
    bool ok = sh != NULL;
    if (ok) {
        cg_line(g, "const idx_t row = (idx_t)blockIdx.y, part = (idx_t)blockIdx.x, tid = (idx_t)threadIdx.x;");
        cg_line(g, "const idx_t qend = part * %" PRId64 " + %" PRId64 " < %" PRId64 " ? part * %" PRId64
                   " + %" PRId64 " : %" PRId64 ";",
                r->chv, r->chv, r->nvec, r->chv, r->chv, r->nvec);
        r->rowvar = cg_var_new(g, "row", 0, r->nrows - 1);
        r->tidvar = cg_var_new(g, "tid", 0, r->T - 1);
        cg_ix row = cg_ixv(r->rowvar, 1);
        cg_ix_split(g, &row, r->kdims, r->nk, r->kcomp);
        for (int i = 0; i < r->nreds; i++) declare_state(g, &r->reds[i]);
        ok = accumulate(g, r, 0, 1);
        if (ok) {
            combine(g, r, 0, 1, sh);
            cg_line(g, "if (tid == 0) {");
            for (int i = 0; i < r->nreds; i++) {
                red_info *ri = &r->reds[i];
                cg_line(g, "    ((%s *)(scratch0 + %" PRId64 "))[row * %d + part] = %s;", ri->acc_t, off[i], r->nsplit,
                        ri->acc);
                if (ri->arg)
                    cg_line(g, "    ((long long *)(scratch0 + %" PRId64 "))[row * %d + part] = %s;", ioff[i], r->nsplit,
                            ri->idx);
            }
            cg_line(g, "}");
        }
    }
    free(sh);
    ok = cg_kernel_entry(g, ks, name, r->T, bufs, nbufs, 1, &body, ok);
    return ok;
}

/* The partial kernel of a split column reduction: a thread per output row
 * and part (x: rows, y: parts), each reducing its part of the column. */
static bool csplit_partial(cg *g, rk *r, ir_str *ks, const char *name, const int *bufs, int nbufs, unsigned grid[3],
                           unsigned block[3]) {
    cg_reset(g);
    g->vec = 1;
    ir_str body = {0};
    g->out = &body;
    g->indent = 1;
    int64_t off[64], ioff[64];
    scratch_layout(r, off, ioff);
    block[0] = CG_BLOCK;
    block[1] = block[2] = 1;
    grid[0] = cg_clamp_grid((r->nrows + CG_BLOCK - 1) / CG_BLOCK, 0x7fffffffu);
    grid[1] = (unsigned)r->nsplit;
    grid[2] = 1;
    cg_line(g, "const idx_t part = (idx_t)blockIdx.y;");
    cg_line(g, "const idx_t eend = part * %" PRId64 " + %" PRId64 " < %" PRId64 " ? part * %" PRId64 " + %" PRId64
               " : %" PRId64 ";",
            r->chv, r->chv, r->rowlen, r->chv, r->chv, r->rowlen);
    cg_line(g, "for (long long rb = (long long)blockIdx.x * blockDim.x + threadIdx.x; rb < %" PRId64
               "LL; rb += (long long)gridDim.x * blockDim.x) {", r->nrows);
    g->indent++;
    cg_line(g, "const idx_t row = (idx_t)rb; /* this thread's output row */");
    cg_scope_push(g);
    r->rowvar = cg_var_new(g, "row", 0, r->nrows - 1);
    cg_ix row = cg_ixv(r->rowvar, 1);
    cg_ix_split(g, &row, r->kdims, r->nk, r->kcomp);
    for (int i = 0; i < r->nreds; i++) declare_state(g, &r->reds[i]);
    bool ok = accumulate(g, r, 0, 1);
    for (int i = 0; ok && i < r->nreds; i++) {
        red_info *ri = &r->reds[i];
        cg_line(g, "((%s *)(scratch0 + %" PRId64 "))[row * %d + part] = %s;", ri->acc_t, off[i], r->nsplit, ri->acc);
        if (ri->arg)
            cg_line(g, "((long long *)(scratch0 + %" PRId64 "))[row * %d + part] = %s;", ioff[i], r->nsplit, ri->idx);
    }
    cg_scope_pop(g);
    g->indent--;
    cg_line(g, "}");
    ok = cg_kernel_entry(g, ks, name, CG_BLOCK, bufs, nbufs, 1, &body, ok);
    return ok;
}

static bool split_finish(cg *g, rk *r, ir_str *ks, const char *name, const int *bufs, int nbufs, unsigned grid[3],
                         unsigned block[3]) {
    cg_reset(g);
    g->vec = 1;
    ir_str body = {0};
    g->out = &body;
    g->indent = 1;
    int64_t off[64], ioff[64];
    scratch_layout(r, off, ioff);
    block[0] = 32;
    block[1] = 8;
    block[2] = 1;
    grid[0] = cg_clamp_grid((r->nrows + 7) / 8, 0x7fffffffu);
    grid[1] = grid[2] = 1;
    cg_line(g, "for (long long rb = (long long)blockIdx.x * blockDim.y + threadIdx.y; rb < %" PRId64
               "LL; rb += (long long)gridDim.x * blockDim.y) {", r->nrows);
    g->indent++;
    cg_line(g, "const idx_t row = (idx_t)rb;");
    r->rowvar = cg_var_new(g, "row", 0, r->nrows - 1);
    cg_ix row = cg_ixv(r->rowvar, 1);
    cg_scope_push(g);
    cg_ix_split(g, &row, r->kdims, r->nk, r->kcomp);
    for (int i = 0; i < r->nreds; i++) {
        red_info *ri = &r->reds[i];
        declare_state(g, ri);
        cg_line(g, "for (int i = threadIdx.x; i < %d; i += 32) {", r->nsplit);
        if (ri->arg) {
            cg_line(g, "    fc_arg_merge<%s>(%s, %s, ((const %s *)(scratch0 + %" PRId64 "))[row * %d + i], "
                       "((const long long *)(scratch0 + %" PRId64 "))[row * %d + i]);",
                    ri->is_max ? "true" : "false", ri->acc, ri->idx, ri->acc_t, off[i], r->nsplit, ioff[i], r->nsplit);
            cg_line(g, "}");
            cg_line(g, "fc_warp_arg<%s>(%s, %s);", ri->is_max ? "true" : "false", ri->acc, ri->idx);
        } else {
            cg_line(g, "    %s = %s()(%s, ((const %s *)(scratch0 + %" PRId64 "))[row * %d + i]);", ri->acc, ri->fn,
                    ri->acc, ri->acc_t, off[i], r->nsplit);
            cg_line(g, "}");
            cg_line(g, "%s = fc_warp_reduce(%s, %s());", ri->acc, ri->acc, ri->fn);
        }
        finish_red(g, ri);
    }
    bool ok = write_outputs(g, r, "threadIdx.x == 0");
    cg_scope_pop(g);
    g->indent--;
    cg_line(g, "}");
    ok = cg_kernel_entry(g, ks, name, 256, bufs, nbufs, 1, &body, ok);
    return ok;
}

/* ---- the kernel ----------------------------------------------------------- */

/* Float sums and means of a row kernel whose every output is f16 or bf16
 * accumulate in float instead of double: over rows of up to 2^22
 * elements (at most rowlen / T + log2 T additions in sequence) the float
 * sum's relative error stays under 2^-12, far inside the half ulp (2^-9
 * for bf16) that the rounded outputs keep, and a widening conversion plus
 * a double add per element is what made 16-bit softmaxes and norms
 * compute-bound. */
static void narrow_sums(const cg *g, rk *r) {
    const plan_kernel *k = g->k;
    if (r->mode != RM_ROW || r->rowlen > ((int64_t)1 << 22)) return;
    for (int o = 0; o < k->nout; o++) {
        ir_dtype dt = g->p->bufs[k->out[o]].value->type.dtype;
        if (dt != FUSEC_DTYPE_F16 && dt != FUSEC_DTYPE_BF16) return;
    }
    for (int i = 0; i < r->nreds; i++) {
        red_info *ri = &r->reds[i];
        if ((ri->n->op == IR_OP_SUM || ri->n->op == IR_OP_MEAN) && ri->isf && ri->xdt != FUSEC_DTYPE_F64)
            ri->acc_t = "float";
    }
}

static void choose_shape(cg *g, rk *r) {
    const plan_kernel *k = g->k;
    bool trailing = true, seen_red = false;
    for (int i = 0; i < k->domain.rank; i++) {
        if (k->reduce[i]) seen_red = true;
        else if (seen_red) trailing = false;
    }
    bool anyfull = false, indep = r->nstages <= 1;
    for (int o = 0; o < k->nout; o++) anyfull |= r->level[o] == LV_FULL;
    for (int i = 0; i < r->nreds; i++) indep &= r->reds[i].n->op != IR_OP_VAR;
    /* vector width over the buffers read and the full-level outputs */
    int vb[64], nvb = 0;
    for (int i = 0; i < k->nin && nvb < 64; i++) vb[nvb++] = k->in[i];
    for (int o = 0; o < k->nout && nvb < 64; o++)
        if (r->level[o] == LV_FULL) vb[nvb++] = k->out[o];
    r->V = cg_vec_width(g, vb, nvb);
    size_t maxes = 1;
    for (int i = 0; i < k->nin; i++) {
        size_t es = ir_dtype_size(g->p->bufs[k->in[i]].value->type.dtype);
        if (es > maxes) maxes = es;
    }
    if (!trailing || r->rowlen <= 16) {
        r->mode = RM_COLUMN;
        r->V = 1;
        r->vecmode = false;
        r->nvec = r->rowlen;
        /* few output rows with long columns: split the columns too */
        if (r->nrows < 16384 && r->rowlen >= 1024 && !anyfull && indep && r->nreds <= 8) {
            int64_t ns = (65536 + r->nrows - 1) / r->nrows, maxns = (r->rowlen + 255) / 256;
            if (ns > maxns) ns = maxns;
            if (ns >= 2) {
                r->mode = RM_CSPLIT;
                r->chv = (r->rowlen + ns - 1) / ns;
                r->nsplit = (int)((r->rowlen + r->chv - 1) / r->chv);
            }
        }
        return;
    }
    r->vecmode = r->V > 1 && r->rowlen % r->V == 0;
    if (!r->vecmode) r->V = 1;
    r->nvec = r->rowlen / r->V;
    if (r->nrows < 128 && r->nvec >= 8192 && !anyfull && indep && r->nreds <= 8) {
        r->mode = RM_SPLIT;
        r->T = CG_BLOCK;
        r->R = 1;
        int64_t ns = (512 + r->nrows - 1) / r->nrows, maxns = (r->nvec + 4 * CG_BLOCK - 1) / (4 * CG_BLOCK);
        if (ns > maxns) ns = maxns;
        if (ns < 2) ns = 2;
        r->chv = (r->nvec + ns - 1) / ns;
        r->nsplit = (int)((r->nvec + r->chv - 1) / r->chv);
        return;
    }
    r->mode = RM_ROW;
    if (r->nvec <= 128) {
        r->T = 32;
        r->R = 8;
    } else {
        int64_t t = (r->nvec + 3) / 4;
        t = (t + 31) / 32 * 32;
        r->T = t > 1024 ? 1024 : (int)t;
        r->R = 1;
    }
    r->CH = (int)((r->nvec + r->T - 1) / r->T);
    r->persistent = r->CH <= MAX_CHUNKS && (int64_t)maxes * r->rowlen <= PERSIST_BYTES;
    narrow_sums(g, r);
}

bool cg_gen_reduce(cg *g, cg_cuda_kernel *out) {
    const plan_kernel *k = g->k;
    const ir_type *D = &k->domain;
    rk r;
    memset(&r, 0, sizeof r);
    r.nrows = 1;
    r.rowlen = 1;
    for (int i = 0; i < D->rank; i++) {
        if (k->reduce[i]) {
            r.red[r.nr] = i;
            r.rdims[r.nr++] = D->dim[i];
            r.rowlen *= D->dim[i];
        } else {
            r.kept[r.nk] = i;
            r.kdims[r.nk++] = D->dim[i];
            r.nrows *= D->dim[i];
        }
    }
    r.level = calloc((size_t)k->nout + 1, sizeof(int));
    if (!r.level) return cg_fail(g, NULL, "out of memory");
    bool ok = true;
    for (int o = 0; o < k->nout && ok; o++) {
        const ir_value *v = g->p->bufs[k->out[o]].value;
        r.level[o] = out_level(&r, D, &v->type);
        if (r.level[o] < 0)
            ok = cg_fail(g, v->def, "output %%%s of a reduce kernel is neither at the row's shape nor at its reduced shape",
                         v->name ? v->name : "?");
    }
    if (k->nout > 4) ok = cg_fail(g, NULL, "a reduce kernel with more than 4 outputs");
    if (ok) ok = setup_reds(g, &r);
    if (ok && r.nreds == 0) ok = cg_fail(g, NULL, "a reduce kernel without a reduction");
    if (ok && r.nreds > 64) ok = cg_fail(g, NULL, "a reduce kernel with more than 64 reductions");
    int nbufs = k->nin + k->nout;
    if (ok) {
        out->bufs = malloc(sizeof(int) * (size_t)(nbufs + 1));
        if (!out->bufs) ok = cg_fail(g, NULL, "out of memory");
    }
    if (!ok) {
        free(r.level);
        free(r.reds);
        return false;
    }
    memcpy(out->bufs, k->in, sizeof(int) * (size_t)k->nin);
    memcpy(out->bufs + k->nin, k->out, sizeof(int) * (size_t)k->nout);
    out->nbufs = nbufs;
    choose_shape(g, &r);
    ir_str ks = {0};
    char what[320];
    if (r.nrows == 0) {
        out->name = cg_kernel_name(g, "");
        if (out->name) {
            ir_str_printf(&ks, "\nextern \"C\" __global__ void %s", out->name);
            cg_params(g, &ks, out->bufs, nbufs, 0);
            ir_str_puts(&ks, " {\n    /* no rows: nothing to compute */\n}\n");
        }
        out->block[0] = out->block[1] = out->block[2] = 1;
        out->grid[0] = out->grid[1] = out->grid[2] = 1; /* a harmless launch: no special case */
        snprintf(what, sizeof what, "reduction with no rows");
        ok = out->name != NULL;
    } else if (r.mode == RM_SPLIT || r.mode == RM_CSPLIT) {
        cg_cuda_kernel *nx = calloc(1, sizeof *nx);
        out->next = nx;
        out->name = cg_kernel_name(g, "_partial");
        if (r.vecmode) out->scalar_name = cg_kernel_name(g, "_partial_scalar");
        ok = nx && out->name && (!r.vecmode || out->scalar_name);
        if (ok) {
            nx->name = cg_kernel_name(g, "_finish");
            nx->bufs = malloc(sizeof(int) * (size_t)(nbufs + 1));
            ok = nx->name && nx->bufs;
        }
        int64_t off[64], ioff[64];
        int64_t bytes = ok ? scratch_layout(&r, off, ioff) : 0;
        if (ok) {
            memcpy(nx->bufs, out->bufs, sizeof(int) * (size_t)nbufs);
            nx->nbufs = nbufs;
            out->nscratch = nx->nscratch = 1;
            out->scratch_bytes[0] = nx->scratch_bytes[0] = bytes > 0 ? bytes : 256;
            ok = r.mode == RM_CSPLIT ? csplit_partial(g, &r, &ks, out->name, out->bufs, nbufs, out->grid, out->block)
                                     : split_partial(g, &r, &ks, out->name, out->bufs, nbufs, out->grid, out->block);
        }
        if (ok && r.vecmode) {
            /* the scalar twin: the same parts, counted in elements */
            rk s = r;
            s.vecmode = false;
            s.V = 1;
            s.nvec = s.rowlen;
            s.chv = r.chv * r.V;
            ok = split_partial(g, &s, &ks, out->scalar_name, out->bufs, nbufs, out->scalar_grid, out->scalar_block);
        }
        if (ok) ok = split_finish(g, &r, &ks, nx->name, out->bufs, nbufs, nx->grid, nx->block);
        if (r.mode == RM_CSPLIT)
            snprintf(what, sizeof what,
                     "split column reduction: %" PRId64 " output rows of %" PRId64 " in %d parts each; %s (a thread "
                     "per row and part) writes partial states to scratch0, %s (a warp per row) combines them in "
                     "order and writes the outputs",
                     r.nrows, r.rowlen, r.nsplit, out->name ? out->name : "?", nx && nx->name ? nx->name : "?");
        else
            snprintf(what, sizeof what,
                     "split reduction: %" PRId64 " rows of %" PRId64 " in %d parts each; %s (%d threads per part%s) "
                     "writes partial states to scratch0, %s (a warp per row) combines them in order and writes the "
                     "outputs",
                     r.nrows, r.rowlen, r.nsplit, out->name ? out->name : "?", r.T,
                     r.vecmode ? cg_strf(g, ", %d-wide vectors", r.V) : "", nx && nx->name ? nx->name : "?");
    } else {
        out->name = cg_kernel_name(g, "");
        if (r.vecmode) out->scalar_name = cg_kernel_name(g, "_scalar");
        ok = out->name && (!r.vecmode || out->scalar_name);
        if (ok) ok = row_entry(g, &r, &ks, out->name, out->bufs, nbufs, out->grid, out->block);
        if (ok && r.vecmode) {
            /* the scalar twin: same shape, one element per lane */
            rk s = r;
            s.vecmode = false;
            s.V = 1;
            s.nvec = s.rowlen;
            if (s.mode == RM_ROW) {
                s.CH = (int)((s.nvec + s.T - 1) / s.T);
                s.persistent = r.persistent && s.CH <= MAX_CHUNKS * CG_MAX_LANES;
            }
            ok = row_entry(g, &s, &ks, out->scalar_name, out->bufs, nbufs, out->scalar_grid, out->scalar_block);
        }
        if (r.mode == RM_COLUMN)
            snprintf(what, sizeof what,
                     "column reduction: one thread per output row (%" PRId64 " rows), looping over its %" PRId64
                     " reduced elements in order",
                     r.nrows, r.rowlen);
        else
            snprintf(what, sizeof what,
                     "row reduction: %" PRId64 " rows of %" PRId64 ", %s per row, %s%s; %d stage%s",
                     r.nrows, r.rowlen, r.T == 32 ? "a warp" : cg_strf(g, "a block of %d threads", r.T),
                     r.persistent ? "persistent (each thread keeps its elements in registers: the row is read once)"
                                  : "looped (the row is read once per stage and once for full-level outputs)",
                     r.vecmode ? cg_strf(g, ", %d-wide vectors; %s_scalar for unaligned pointers", r.V,
                                         out->name ? out->name : "?")
                               : "",
                     r.nstages, r.nstages == 1 ? "" : "s");
    }
    if (ok) out->source = cg_assemble(g, what, &ks);
    ok = ok && out->source;
    if (ok && out->next) {
        out->next->source = cg_strdup(out->source);
        ok = out->next->source != NULL;
        if (!ok) cg_fail(g, NULL, "out of memory");
    }
    ir_str_free(&ks);
    free(r.level);
    free(r.reds);
    return ok;
}
