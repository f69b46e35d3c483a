/*
 * plan_util.h - helpers shared by the plan tests (test_memplan.c,
 * test_plan_exec.c): parse a graph from text, build plans by hand (kernel
 * bodies, inputs and outputs named by value), fill inputs with
 * deterministic pseudo-random data, and run a plan through the plan
 * executor and its graph through the interpreter to compare the results
 * bit for bit (NaN equal to NaN).
 */
#ifndef FUSEC_TEST_PLAN_UTIL_H
#define FUSEC_TEST_PLAN_UTIL_H

#include <math.h>

#include "frontend/parse.h"
#include "ir/plan.h"
#include "passes/memplan.h"
#include "runtime/interp.h"
#include "runtime/plan_exec.h"
#include "test.h"

static ir_graph *hp_parse(const char *src) {
    ir_diag d;
    ir_diag_init(&d, "test.ir", src, strlen(src));
    ir_graph *g = fe_parse(src, strlen(src), "test.ir", NULL, &d);
    if (!g) { /* a broken test, not a failed check */
        fprintf(stderr, "parse failed:\n%s", d.out.buf ? d.out.buf : "");
        abort();
    }
    ir_diag_free(&d);
    return g;
}

/* The parameter or node result named `name` (without '%'). */
static ir_value *hp_val(const ir_graph *g, const char *name, size_t len) {
    for (int i = 0; i < g->nparams; i++)
        if (g->params[i]->name && strlen(g->params[i]->name) == len && !strncmp(g->params[i]->name, name, len))
            return g->params[i];
    for (ir_node *n = g->first; n; n = n->next)
        if (n->out->name && strlen(n->out->name) == len && !strncmp(n->out->name, name, len)) return n->out;
    fprintf(stderr, "no value %%%.*s\n", (int)len, name);
    abort();
}

static bool hp_is_result(const ir_graph *g, const ir_value *v) {
    for (int i = 0; i < g->nresults; i++)
        if (g->results[i] == v) return true;
    return false;
}

static int hp_nnodes(const ir_graph *g) {
    int n = 0;
    for (ir_node *x = g->first; x; x = x->next) n++;
    return n;
}

/* An empty plan over g (or a synthetic one, g NULL, for memory planning
 * alone) with room for `maxk` kernels and `maxb` buffers. */
static plan *hp_new_sized(ir_graph *g, int maxk, int maxb) {
    plan *p = calloc(1, sizeof *p);
    p->g = g;
    int nv = g ? g->next_id + 1 : 1;
    p->buf_of = ir_arena_alloc(&p->arena, sizeof(int) * (size_t)nv);
    for (int i = 0; i < nv; i++) p->buf_of[i] = -1;
    p->bufs = ir_arena_alloc(&p->arena, sizeof(plan_buf) * (size_t)(maxb + 1));
    p->kernels = ir_arena_alloc(&p->arena, sizeof(plan_kernel) * (size_t)(maxk + 1));
    return p;
}

static plan *hp_new(ir_graph *g) {
    int n = hp_nnodes(g);
    return hp_new_sized(g, n + 1, g->next_id + 1);
}

/* A buffer of the given kind for v (or the one v already has). */
static int hp_buf_kind(plan *p, ir_value *v, plan_buf_kind kind) {
    if (p->buf_of[v->id] >= 0) return p->buf_of[v->id];
    plan_buf *b = &p->bufs[p->nbufs];
    b->id = p->nbufs;
    b->kind = kind;
    b->value = v;
    b->bytes = ir_type_numel(&v->type) * (int64_t)ir_dtype_size(v->type.dtype);
    b->offset = b->def = b->last_use = b->reuses = -1;
    p->buf_of[v->id] = b->id;
    return p->nbufs++;
}

/* Parameters are INPUT, results OUTPUT, everything else TEMP. */
static int hp_buf(plan *p, ir_value *v) {
    plan_buf_kind kind = v->kind == IR_VAL_PARAM ? PLAN_BUF_INPUT
                         : hp_is_result(p->g, v) ? PLAN_BUF_OUTPUT
                                                 : PLAN_BUF_TEMP;
    return hp_buf_kind(p, v, kind);
}

/* Split "a b c" into value names and call fn on each. */
#define HP_EACH(list, tok, len, body)                                    \
    for (const char *tok = (list); tok && *tok;) {                       \
        while (*tok == ' ') tok++;                                       \
        size_t len = strcspn(tok, " ");                                  \
        if (len) body;                                                   \
        tok += len;                                                      \
    }

static int *hp_ids(plan *p, const char *names, int *count) {
    int n = 0;
    HP_EACH(names, t, len, n++)
    int *ids = ir_arena_alloc(&p->arena, sizeof(int) * (size_t)(n + 1));
    n = 0;
    HP_EACH(names, t, len, ids[n++] = hp_buf(p, hp_val(p->g, t, len)))
    *count = n;
    return ids;
}

static bool hp_is_reduction(const ir_node *n) {
    return ir_op_get(n->op)->category == IR_CAT_REDUCTION && n->op != IR_OP_MAX_POOL2D &&
           n->op != IR_OP_AVG_POOL2D && n->op != IR_OP_ADAPTIVE_AVG_POOL2D;
}

/* A REDUCE kernel's domain and axes, from reduction n. */
static void hp_reduce_domain(plan_kernel *k, const ir_node *n) {
    const ir_type *x = &n->in[0]->type;
    k->domain = *x;
    const char *name = n->op == IR_OP_ARGMAX || n->op == IR_OP_ARGMIN ? "axis" : "axes";
    bool all = !ir_attr_has(n, name);
    for (int i = 0; i < x->rank; i++) k->reduce[i] = all;
    if (!all && (n->op == IR_OP_ARGMAX || n->op == IR_OP_ARGMIN)) {
        int a;
        if (ir_norm_axis(ir_attr_i(n, "axis"), x->rank, &a)) k->reduce[a] = true;
    } else if (!all) {
        int cnt;
        const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
        for (int i = 0; i < cnt; i++) {
            int a;
            if (ir_norm_axis(ax[i], x->rank, &a)) k->reduce[a] = true;
        }
    }
}

/* Append a kernel: body values, input buffer values, output buffer values,
 * each a space-separated list of names.  The domain is the first output's
 * shape (POINTWISE, LIBRARY) or the last reduction's operand (REDUCE). */
static plan_kernel *hp_kernel(plan *p, plan_kind kind, const char *body, const char *ins,
                              const char *outs) {
    plan_kernel *k = &p->kernels[p->nkernels];
    k->id = p->nkernels++;
    char name[16];
    snprintf(name, sizeof name, "k%d", k->id);
    k->name = ir_arena_strdup(&p->arena, name);
    k->kind = kind;
    int n = 0;
    HP_EACH(body, t, len, n++)
    k->nodes = ir_arena_alloc(&p->arena, sizeof(ir_node *) * (size_t)(n + 1));
    HP_EACH(body, t, len, k->nodes[k->nnodes++] = hp_val(p->g, t, len)->def)
    k->in = hp_ids(p, ins, &k->nin);
    k->out = hp_ids(p, outs, &k->nout);
    k->domain = p->bufs[k->out[0]].value->type;
    if (kind == PLAN_REDUCE)
        for (int i = k->nnodes - 1; i >= 0; i--)
            if (hp_is_reduction(k->nodes[i])) {
                hp_reduce_domain(k, k->nodes[i]);
                break;
            }
    return k;
}

/* The unfused plan: every node its own kernel, every value in memory. */
static plan *hp_per_node(ir_graph *g) {
    plan *p = hp_new(g);
    for (int i = 0; i < g->nparams; i++) hp_buf(p, g->params[i]);
    for (ir_node *n = g->first; n; n = n->next) {
        ir_category c = ir_op_get(n->op)->category;
        plan_kernel *k = &p->kernels[p->nkernels];
        k->id = p->nkernels++;
        k->name = ir_arena_strdup(&p->arena, ir_op_get(n->op)->name);
        k->kind = c == IR_CAT_CONTRACTION || c == IR_CAT_COMPOSITE || c == IR_CAT_REDUCTION
                      ? PLAN_LIBRARY : PLAN_POINTWISE;
        if (hp_is_reduction(n)) k->kind = PLAN_REDUCE;
        k->nodes = ir_arena_alloc(&p->arena, sizeof(ir_node *));
        k->nodes[0] = n;
        k->nnodes = 1;
        k->in = ir_arena_alloc(&p->arena, sizeof(int) * (size_t)(n->nin + 1));
        for (int j = 0; j < n->nin; j++) {
            if (n->in[j]->kind == IR_VAL_LITERAL) continue;
            int b = hp_buf(p, n->in[j]);
            bool dup = false;
            for (int q = 0; q < k->nin; q++) dup |= k->in[q] == b;
            if (!dup) k->in[k->nin++] = b;
        }
        k->out = ir_arena_alloc(&p->arena, sizeof(int));
        k->out[0] = hp_buf(p, n->out);
        k->nout = 1;
        k->domain = n->out->type;
        if (k->kind == PLAN_REDUCE) hp_reduce_domain(k, n);
    }
    return p;
}

/* ---- data ---------------------------------------------------------------- */

static uint64_t hp_rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t hp_rand(void) { /* xorshift64* */
    hp_rng_state ^= hp_rng_state >> 12;
    hp_rng_state ^= hp_rng_state << 25;
    hp_rng_state ^= hp_rng_state >> 27;
    return hp_rng_state * 2685821657736338717ull;
}
static double hp_unit(void) { return (double)(hp_rand() >> 11) / 9007199254740992.0; }

/* Fill the parameters' tensors: floats in [-2, 2), integers in [-5, 5],
 * u8 in [0, 10], bool half and half. */
static void hp_inputs(const ir_graph *g, fusec_tensor *in) {
    for (int i = 0; i < g->nparams; i++) {
        const ir_type *t = &g->params[i]->type;
        fusec_tensor *x = &in[i];
        x->dtype = t->dtype;
        x->rank = t->rank;
        for (int j = 0; j < t->rank; j++) x->shape[j] = t->dim[j];
        int64_t n = ir_type_numel(t);
        x->data = calloc(n ? (size_t)n : 1, ir_dtype_size(t->dtype));
        for (int64_t e = 0; e < n; e++) {
            if (ir_dtype_is_float(t->dtype)) ir_store_f(t->dtype, x->data, e, 4 * hp_unit() - 2);
            else if (t->dtype == FUSEC_DTYPE_BOOL) ir_store_i(t->dtype, x->data, e, hp_rand() >> 63);
            else if (t->dtype == FUSEC_DTYPE_U8) ir_store_i(t->dtype, x->data, e, (int64_t)(hp_rand() % 11));
            else ir_store_i(t->dtype, x->data, e, (int64_t)(hp_rand() % 11) - 5);
        }
    }
}

static void hp_free_tensors(fusec_tensor *t, int n) {
    for (int i = 0; i < n; i++) {
        free(t[i].data);
        t[i].data = NULL;
    }
}

/* Same dtype, shape and elements (bitwise, NaN equal to any NaN). */
static bool hp_same(const fusec_tensor *a, const fusec_tensor *b, int which) {
    if (a->dtype != b->dtype || a->rank != b->rank) {
        fprintf(stderr, "result %d: dtype/rank differ\n", which);
        return false;
    }
    int64_t n = 1;
    for (int i = 0; i < a->rank; i++) {
        if (a->shape[i] != b->shape[i]) {
            fprintf(stderr, "result %d: shapes differ\n", which);
            return false;
        }
        n *= a->shape[i];
    }
    size_t es = ir_dtype_size(a->dtype);
    for (int64_t e = 0; e < n; e++) {
        const unsigned char *x = (const unsigned char *)a->data + (size_t)e * es;
        const unsigned char *y = (const unsigned char *)b->data + (size_t)e * es;
        if (!memcmp(x, y, es)) continue;
        if (ir_dtype_is_float(a->dtype) && isnan(ir_load_f(a->dtype, x, 0)) && isnan(ir_load_f(a->dtype, y, 0)))
            continue;
        if (ir_dtype_is_float(a->dtype))
            fprintf(stderr, "result %d element %lld: %.17g vs %.17g\n", which, (long long)e,
                    ir_load_f(a->dtype, x, 0), ir_load_f(a->dtype, y, 0));
        else
            fprintf(stderr, "result %d element %lld: %lld vs %lld\n", which, (long long)e,
                    (long long)ir_load_i(a->dtype, x, 0), (long long)ir_load_i(a->dtype, y, 0));
        return false;
    }
    return true;
}

#define HP_MAXIO 32

/* Run the interpreter on `ref` (the unfused graph, parameters in the same
 * order) and the plan executor on p with the same inputs; true if both
 * succeed with identical results, or both fail with the same message. */
static bool hp_agree_with(const ir_graph *ref, const plan *p, const fusec_tensor *in) {
    fusec_tensor a[HP_MAXIO], b[HP_MAXIO];
    ir_diag da, db;
    ir_diag_init(&da, NULL, NULL, 0);
    ir_diag_init(&db, NULL, NULL, 0);
    int nr = ref->nresults;
    fusec_status sa = rt_interp_run(ref, in, ref->nparams, a, nr, &da);
    fusec_status sb = rt_plan_run(p, in, p->g->nparams, b, nr, &db);
    bool ok = sa == sb;
    if (!ok) fprintf(stderr, "interp: %d %s\nplan:   %d %s\n", sa, da.out.buf ? da.out.buf : "", sb,
                     db.out.buf ? db.out.buf : "");
    if (ok && sa == FUSEC_OK) {
        for (int i = 0; i < nr; i++) ok &= hp_same(&a[i], &b[i], i);
        hp_free_tensors(a, nr);
        hp_free_tensors(b, nr);
    } else if (ok) {
        ok = da.out.buf && db.out.buf && !strcmp(da.out.buf, db.out.buf);
        if (!ok) fprintf(stderr, "messages differ:\n%s%s", da.out.buf, db.out.buf);
    }
    ir_diag_free(&da);
    ir_diag_free(&db);
    return ok;
}

/* The same on p's own graph with fresh random inputs. */
static bool hp_agree(const plan *p) {
    fusec_tensor in[HP_MAXIO];
    hp_inputs(p->g, in);
    bool ok = hp_agree_with(p->g, p, in);
    hp_free_tensors(in, p->g->nparams);
    return ok;
}

/* Plan memory, check the plan, and compare with the interpreter. */
static bool hp_plan_and_agree(plan *p) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    bool ok = pass_memplan(p, &d) && memplan_check(p, &d);
    if (!ok) fprintf(stderr, "memory planning failed:\n%s", d.out.buf ? d.out.buf : "");
    ir_diag_free(&d);
    return ok && hp_agree(p);
}

#endif
