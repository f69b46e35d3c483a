/*
 * fold_bn.c - fold an inference batch_norm into the conv2d that feeds it.
 *
 *   y = batch_norm(conv2d(x, W, B), mean, var, gamma, beta) {eps}
 *     = conv2d(x, W * s[co], (B - mean) * s + beta),  s = gamma / sqrt(var + eps)
 *
 * per output channel co (absent gamma = 1, beta = 0, B = 0).  The big
 * activation is then touched once, by the conv, instead of again by the
 * normalisation.
 *
 * When it applies:
 *  - the batch_norm's input is the result of a conv2d, and that result has
 *    no other use (no other operand, not a graph result): the unnormalised
 *    conv output must not be needed anywhere, or folding would compute the
 *    conv twice.
 *  - Constant form: W, B, mean, var, gamma and beta (those present) are all
 *    `constant` nodes.  The folded weight and bias are computed here, in
 *    double from the values the constants hold in their dtype, rounded once
 *    to it, and become new `constant` nodes; at run time nothing is left of
 *    the normalisation.  Always done (for weights of fewer than 2^31
 *    elements, the most an attribute holds).
 *  - Run-time form: some of them are graph inputs or computed values.  The
 *    same formula is emitted as graph ops on the small tensors (s on the
 *    [C] vectors, W * reshape(s, [C, 1, 1, 1]); in f32 for f16/bf16, cast
 *    back to the conv's dtype).  This costs one pass over W per run, so it
 *    is done only when W has no more elements than the conv's result (the
 *    activation the batch_norm would otherwise read and write); otherwise
 *    the batch_norm stays and decompose turns it into an elementwise
 *    epilogue of the conv.
 * Run this pass before decompose, which would otherwise rewrite the
 * batch_norm first.  The old conv and any constants left unused are dead
 * afterwards, for dce.
 *
 * Numerics: the interpreter rounds the conv's result before normalising;
 * folded, the weights are rounded once instead - the same order of error,
 * well within the tolerance of a conv.
 *
 * Requires: a verified graph.  Invalidates: nothing (uses are replaced).
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "passes/pass.h"

/* The data of a `constant` node, or NULL if v is not one. */
static const double *const_data(const ir_value *v) {
    if (!v || v->kind != IR_VAL_NODE || v->def->op != IR_OP_CONSTANT) return NULL;
    int cnt;
    return ir_attr_floats(v->def, "data", &cnt);
}

/* v as the constant node of dtype dt holds it. */
static double stored(ir_dtype dt, double v) {
    uint64_t buf = 0;
    ir_store_f(dt, &buf, 0, v);
    return ir_load_f(dt, &buf, 0);
}

/* The batch_norm's operands, by role; NULL where absent. */
typedef struct bn_parts {
    ir_node *bn, *conv;
    ir_value *x, *w, *b;             /* conv input, weight, bias */
    ir_value *mean, *var, *gamma, *beta;
    double eps;
} bn_parts;

static ir_value *build_conv(ir_graph *g, const bn_parts *p, ir_value *w, ir_value *b, ir_diag *d) {
    static const char *names[] = {"stride", "padding", "dilation"};
    ir_attr_init a[4];
    for (int i = 0; i < 3; i++) {
        int cnt;
        const int64_t *v = ir_attr_ints(p->conv, names[i], &cnt);
        a[i] = (ir_attr_init){.name = names[i], .kind = IR_AK_INTS, .val = {.ints = (int64_t *)v, .n = cnt}, .loc = p->conv->loc};
    }
    a[3] = (ir_attr_init){.name = "groups", .kind = IR_AK_INT, .val = {.i = ir_attr_i(p->conv, "groups")}, .loc = p->conv->loc};
    if (!w || !b) return NULL;
    ir_value *in[3] = {p->x, w, b};
    return ir_build(g, IR_OP_CONV2D, in, 3, a, 4, NULL, p->bn->loc, d);
}

static ir_value *build_constant(ir_graph *g, const ir_type *t, double *data, int64_t n, ir_loc loc, ir_diag *d) {
    ir_attr_init a = {.name = "data", .kind = IR_AK_FLOATS, .val = {.floats = data, .n = (int)n}, .loc = loc};
    return ir_build(g, IR_OP_CONSTANT, NULL, 0, &a, 1, t, loc, d);
}

/* Everything is a constant: compute the folded weight and bias here. */
static ir_value *fold_constant(ir_graph *g, const bn_parts *p, ir_diag *d) {
    const ir_type *wt = &p->w->type;
    ir_dtype dt = wt->dtype;
    int64_t C = wt->dim[0], per = C ? ir_type_numel(wt) / C : 0;
    double *w2 = malloc(sizeof(double) * (size_t)(C * per + 1)), *b2 = malloc(sizeof(double) * (size_t)(C + 1));
    if (!w2 || !b2) {
        free(w2), free(b2);
        ir_error(d, p->bn->loc, "fold_bn: out of memory");
        return NULL;
    }
    const double *W = const_data(p->w), *B = const_data(p->b), *M = const_data(p->mean);
    const double *V = const_data(p->var), *G = const_data(p->gamma), *Be = const_data(p->beta);
    for (int64_t c = 0; c < C; c++) {
        double s = (G ? stored(dt, G[c]) : 1.0) / sqrt(stored(dt, V[c]) + p->eps);
        for (int64_t i = 0; i < per; i++) w2[c * per + i] = stored(dt, stored(dt, W[c * per + i]) * s);
        double bc = ((B ? stored(dt, B[c]) : 0.0) - stored(dt, M[c])) * s + (Be ? stored(dt, Be[c]) : 0.0);
        b2[c] = stored(dt, bc);
    }
    ir_type bt = {.dtype = dt, .rank = 1, .dim = {C}};
    ir_value *nw = build_constant(g, wt, w2, C * per, p->conv->loc, d);
    ir_value *nb = nw ? build_constant(g, &bt, b2, C, p->conv->loc, d) : NULL;
    free(w2), free(b2);
    return build_conv(g, p, nw, nb, d);
}

/* Builders for the run-time form: a NULL operand (an earlier failure,
 * already reported to d) gives NULL. */
typedef struct fb_build {
    ir_graph *g;
    ir_diag *d;
    ir_loc loc;
} fb_build;

static ir_value *fb_un(fb_build *b, ir_op op, ir_value *x, const ir_attr_init *a, int na) {
    return x ? ir_build(b->g, op, &x, 1, a, na, NULL, b->loc, b->d) : NULL;
}

static ir_value *fb_bin(fb_build *b, ir_op op, ir_value *x, ir_value *y) {
    ir_value *in[2] = {x, y};
    return x && y ? ir_build(b->g, op, in, 2, NULL, 0, NULL, b->loc, b->d) : NULL;
}

static ir_value *fb_cast(fb_build *b, ir_value *x, ir_dtype to) {
    if (!x || x->type.dtype == to) return x;
    ir_attr_init a = {.name = "to", .kind = IR_AK_DTYPE, .val = {.dt = to}, .loc = b->loc};
    return fb_un(b, IR_OP_CAST, x, &a, 1);
}

/* Some operand is a run-time value: the same formula as graph ops, on the
 * [C] vectors and W only, in f32 for the half types. */
static ir_value *fold_runtime(ir_graph *g, const bn_parts *p, ir_diag *d) {
    ir_dtype dt = p->w->type.dtype;
    ir_dtype wt = dt == FUSEC_DTYPE_F16 || dt == FUSEC_DTYPE_BF16 ? FUSEC_DTYPE_F32 : dt;
    fb_build b = {.g = g, .d = d, .loc = p->bn->loc};
    ir_value *eps = ir_graph_literal_f(g, p->eps, b.loc);
    if (!eps) {
        ir_error(d, b.loc, "fold_bn: out of memory");
        return NULL;
    }
    ir_value *s = fb_un(&b, IR_OP_RSQRT, fb_bin(&b, IR_OP_ADD, fb_cast(&b, p->var, wt), eps), NULL, 0);
    if (p->gamma) s = fb_bin(&b, IR_OP_MUL, s, fb_cast(&b, p->gamma, wt));
    int64_t shape[4] = {p->w->type.dim[0], 1, 1, 1};
    ir_attr_init ra = {.name = "shape", .kind = IR_AK_INTS, .val = {.ints = shape, .n = 4}, .loc = b.loc};
    ir_value *w = fb_cast(&b, p->w, wt); /* one building argument per call: a fixed order */
    ir_value *w2 = fb_bin(&b, IR_OP_MUL, w, fb_un(&b, IR_OP_RESHAPE, s, &ra, 1));
    ir_value *mean = fb_cast(&b, p->mean, wt);
    ir_value *dev = p->b ? fb_bin(&b, IR_OP_SUB, fb_cast(&b, p->b, wt), mean) : fb_un(&b, IR_OP_NEG, mean, NULL, 0);
    ir_value *b2 = fb_bin(&b, IR_OP_MUL, dev, s);
    if (p->beta) b2 = fb_bin(&b, IR_OP_ADD, b2, fb_cast(&b, p->beta, wt));
    w2 = fb_cast(&b, w2, dt);
    return build_conv(g, p, w2, fb_cast(&b, b2, dt), d);
}

bool pass_fold_bn(ir_graph *g, pass_ctx *ctx) {
    int *uses = calloc((size_t)g->next_id + 1, sizeof *uses);
    if (!uses) {
        ir_error(ctx->diag, (ir_loc){0}, "fold_bn: out of memory");
        return false;
    }
    for (ir_node *n = g->first; n; n = n->next)
        for (int i = 0; i < n->nin; i++) uses[n->in[i]->id]++;
    for (int i = 0; i < g->nresults; i++) uses[g->results[i]->id]++;

    bool ok = true;
    int64_t nconst = 0, nruntime = 0, nlarge = 0;
    for (ir_node *n = g->first, *next; n && ok; n = next) {
        next = n->next;
        if (n->op != IR_OP_BATCH_NORM) continue;
        ir_value *c = n->in[0];
        if (c->kind != IR_VAL_NODE || c->def->op != IR_OP_CONV2D || uses[c->id] != 1) continue;
        ir_node *conv = c->def;
        bn_parts p = {
            .bn = n, .conv = conv, .x = conv->in[0], .w = conv->in[1], .b = conv->nin > 2 ? conv->in[2] : NULL,
            .mean = n->in[1], .var = n->in[2], .gamma = n->nin > 3 ? n->in[3] : NULL,
            .beta = n->nin > 4 ? n->in[4] : NULL, .eps = ir_attr_f(n, "eps"),
        };
        bool all_const = const_data(p.w) && const_data(p.mean) && const_data(p.var) &&
                         (!p.b || const_data(p.b)) && (!p.gamma || const_data(p.gamma)) &&
                         (!p.beta || const_data(p.beta));
        if (ir_type_numel(&p.w->type) > INT_MAX) all_const = false; /* beyond an attribute's length */
        if (!all_const && ir_type_numel(&p.w->type) > ir_type_numel(&c->type)) {
            nlarge++;
            continue;
        }
        ir_node *ip = g->ip;
        g->ip = n;
        ir_value *v = all_const ? fold_constant(g, &p, ctx->diag) : fold_runtime(g, &p, ctx->diag);
        g->ip = ip;
        if (!v || !ir_type_eq(&v->type, &n->out->type)) {
            ir_error(ctx->diag, n->loc, "fold_bn: internal error folding batch_norm into conv2d");
            ok = false;
            break;
        }
        if (!v->name) v->name = n->out->name;
        ir_replace_uses(g, n->out, v);
        ir_node_remove(g, n);
        if (all_const) nconst++;
        else nruntime++;
    }
    free(uses);
    pass_stat(ctx, "folded-constant", nconst);
    pass_stat(ctx, "folded-runtime", nruntime);
    pass_stat(ctx, "skipped-large-weight", nlarge);
    return ok;
}
