/*
 * test_masks.c - the masks and fold passes.
 *
 * 1. The mask analysis on a table of predicates over an [R, C] index box
 *    (%i = row, %j = column): each predicate is used as where(%m, %s, -inf)
 *    and the masks pass must turn that into %s (true everywhere), a full
 *    (false everywhere) or leave the where (undecided).  Each expectation
 *    is itself checked by interpreting the predicate: "always" must be all
 *    true, "never" all false, "sometimes" both.
 * 2. Random mask graphs (iota, compares, logic, triu/tril, movement,
 *    where, masked_fill, additive masks, a bool parameter) applied to
 *    random scores: the interpreter must give the same results before and
 *    after `masks` and after the whole default pipeline - equal as numbers
 *    (x + 0 may turn -0.0 into +0.0), NaN at the same places.
 * 3. fold: graphs of full / constant / literal values; after `fold` the
 *    interpreter must give bit-identical results, and what was meant to
 *    fold must be gone.
 */
#include <math.h>

#include "frontend/parse.h"
#include "ir/ir.h"
#include "passes/pass.h"
#include "runtime/interp.h"
#include "test.h"

/* ---- helpers --------------------------------------------------------------- */

static uint64_t rng = 0x2545f4914f6cdd1du;

static uint64_t next_u64(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int irand(int lo, int hi) { return lo + (int)(next_u64() % (uint64_t)(hi - lo + 1)); }

static ir_graph *parse(const char *src, ir_diag *d) {
    ir_diag_init(d, "case.ir", src, strlen(src));
    ir_graph *g = fe_parse(src, strlen(src), "case.ir", NULL, d);
    if (!g) fprintf(stderr, "parse failed:\n%s\n%s", d->out.buf ? d->out.buf : "", src);
    return g;
}

static bool run_passes(ir_graph *g, const char *passes, ir_diag *d, const char *src) {
    pass_ctx ctx = {.diag = d, .verify_each = true};
    if (pass_run_pipeline(g, passes, &ctx)) return true;
    fprintf(stderr, "passes %s failed:\n%s\n%s", passes ? passes : "(default)", d->out.buf ? d->out.buf : "", src);
    return false;
}

/* Random inputs: floats mostly in [-4, 4) with some NaN, +-inf and -0.0;
 * bools 50/50; integers in [-5, 5]. */
static void fill_random(fusec_tensor *t) {
    int64_t n = fusec_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == FUSEC_DTYPE_BOOL) {
            ir_store_i(t->dtype, t->data, i, (int64_t)(next_u64() & 1));
        } else if (!ir_dtype_is_float(t->dtype)) {
            ir_store_i(t->dtype, t->data, i, irand(-5, 5));
        } else {
            int r = irand(0, 31);
            double v = r == 0 ? NAN : r == 1 ? INFINITY : r == 2 ? -INFINITY : r == 3 ? -0.0
                                                                                     : (double)irand(-4000, 4000) / 1000;
            ir_store_f(t->dtype, t->data, i, v);
        }
    }
}

typedef struct run {
    int np, nr;
    fusec_tensor in[4], out[8];
} run;

static void run_free(run *r) {
    for (int i = 0; i < r->np; i++) free(r->in[i].data);
    for (int i = 0; i < r->nr; i++) free(r->out[i].data);
    memset(r, 0, sizeof *r);
}

/* Inputs for g's parameters (random unless `like` gives them). */
static bool make_inputs(const ir_graph *g, run *r, const run *like) {
    memset(r, 0, sizeof *r);
    if (g->nparams > 4 || g->nresults > 8) return false;
    r->np = g->nparams;
    for (int i = 0; i < r->np; i++) {
        const ir_type *t = &g->params[i]->type;
        fusec_tensor *x = &r->in[i];
        x->dtype = t->dtype;
        x->rank = t->rank;
        memcpy(x->shape, t->dim, sizeof(int64_t) * (size_t)t->rank);
        size_t bytes = (size_t)ir_type_numel(t) * ir_dtype_size(t->dtype);
        x->data = calloc(bytes + 1, 1);
        if (!x->data) return false;
        if (like) memcpy(x->data, like->in[i].data, bytes);
        else fill_random(x);
    }
    return true;
}

static bool interp(const ir_graph *g, run *r, ir_diag *d, const char *src) {
    r->nr = g->nresults;
    if (rt_interp_run(g, r->in, r->np, r->out, r->nr, d) == FUSEC_OK) return true;
    fprintf(stderr, "interpreter failed:\n%s\n%s", d->out.buf ? d->out.buf : "", src);
    r->nr = 0;
    return false;
}

/* exact: bit for bit (NaN payloads aside); else equal as numbers. */
static bool same_outputs(const run *a, const run *b, bool exact, const char *src, const char *what) {
    for (int k = 0; k < a->nr; k++) {
        const fusec_tensor *x = &a->out[k], *y = &b->out[k];
        if (x->dtype != y->dtype || x->rank != y->rank) {
            fprintf(stderr, "%s: result %d changed type\n%s", what, k, src);
            return false;
        }
        int64_t n = fusec_tensor_numel(x);
        for (int64_t i = 0; i < n; i++) {
            bool ok;
            double u = 0, v = 0;
            if (ir_dtype_is_float(x->dtype)) {
                u = ir_load_f(x->dtype, x->data, i);
                v = ir_load_f(y->dtype, y->data, i);
                ok = isnan(u) ? isnan(v) : u == v && (!exact || signbit(u) == signbit(v));
            } else {
                u = (double)ir_load_i(x->dtype, x->data, i);
                v = (double)ir_load_i(y->dtype, y->data, i);
                ok = u == v;
            }
            if (!ok) {
                fprintf(stderr, "%s: result %d element %lld: %.17g before, %.17g after\n%s", what, k,
                        (long long)i, u, v, src);
                return false;
            }
        }
    }
    return true;
}

/* Run src as is and after `passes`; the outputs must agree.  *after, if
 * given, receives the transformed graph (the caller frees it). */
static bool differential(const char *src, const char *passes, bool exact, ir_graph **after) {
    ir_diag d0, d1;
    ir_graph *g0 = parse(src, &d0), *g1 = g0 ? parse(src, &d1) : NULL;
    run r0 = {0}, r1 = {0};
    bool ok = g0 && g1 && make_inputs(g0, &r0, NULL) && make_inputs(g0, &r1, &r0) && interp(g0, &r0, &d0, src) &&
              run_passes(g1, passes, &d1, src) && interp(g1, &r1, &d1, src) &&
              same_outputs(&r0, &r1, exact, src, passes ? passes : "default pipeline");
    run_free(&r0);
    run_free(&r1);
    if (g0) ir_graph_free(g0);
    if (g0) ir_diag_free(&d0);
    if (g1) ir_diag_free(&d1);
    if (after && ok) *after = g1;
    else if (g1) ir_graph_free(g1);
    return ok;
}

/* ---- 1. the analysis on a table of predicates ------------------------------- */

typedef struct pred_case {
    int rows, cols;
    const char *body; /* defines %m : bool[rows, cols] from %i, %j, %pad */
    char expect;      /* 'A' always, 'N' never, 'S' sometimes, 'U' undecided by design */
} pred_case;

static const pred_case pred_cases[] = {
    {8, 8, "%m = gt(%j, %i)", 'S'},                                  /* causal: future */
    {8, 8, "%m = le(%j, %i)", 'S'},                                  /* causal: keep */
    {8, 8, "%m = ge(%j, 0)", 'A'},
    {8, 8, "%m = lt(%j, 8)", 'A'},                                   /* padding to the full length */
    {8, 8, "%m = lt(%j, 7)", 'S'},
    {8, 8, "%m = gt(%i, 7)", 'N'},
    {8, 8, "%a = le(%j, %i)\n%b = gt(%j, %i)\n%m = and(%a, %b)", 'N'},
    {8, 8, "%a = le(%j, %i)\n%b = gt(%j, %i)\n%m = or(%a, %b)", 'A'},
    {8, 8, "%d = sub(%i, %j)\n%m = le(%d, 7)", 'A'},
    {8, 8, "%d = sub(%i, %j)\n%m = le(%d, 6)", 'S'},
    {8, 8, "%a = le(%j, %i)\n%w = sub(%i, 3)\n%b = gt(%j, %w)\n%m = and(%a, %b)", 'S'}, /* window 3 */
    {8, 8, "%w = sub(%i, 8)\n%m = gt(%j, %w)", 'A'},                 /* window >= S */
    {8, 8, "%a = le(%j, %i)\n%w = sub(%i, 8)\n%b = gt(%j, %w)\n%m = and(%a, %b)", 'S'},
    {8, 8, "%m = ne(%i, %j)", 'S'},
    {8, 8, "%a = mul(%i, 2)\n%b = mul(%j, 2)\n%c = add(%b, 1)\n%m = eq(%a, %c)", 'N'}, /* parity */
    {8, 8, "%a = add(%i, %j)\n%m = le(%a, 14)", 'A'},
    {8, 8, "%a = add(%i, %j)\n%m = gt(%a, 14)", 'N'},
    {8, 8, "%a = neg(%i)\n%m = le(%a, 0)", 'A'},
    {3, 3, "%f = cast(%j) {to = f32}\n%m = lt(%f, 2.5)", 'A'},
    {3, 3, "%f = cast(%j) {to = f32}\n%m = eq(%f, 0.5)", 'N'},
    {3, 3, "%f = cast(%j) {to = f32}\n%m = lt(%f, inf)", 'A'},
    {3, 3, "%f = cast(%j) {to = f32}\n%m = ne(%f, nan)", 'A'},
    {3, 3, "%f = cast(%j) {to = f32}\n%m = gt(%f, 0.5)", 'S'},
    {8, 8, "%t = full() {value = 1} : bool[8, 8]\n%m = triu(%t) {diagonal = -7}", 'A'},
    {8, 8, "%t = full() {value = 1} : bool[8, 8]\n%m = triu(%t) {diagonal = 8}", 'N'},
    {8, 8, "%t = full() {value = 1} : bool[8, 8]\n%m = tril(%t) {diagonal = 0}", 'S'},
    {8, 8, "%t = full() {value = 1} : bool[8, 8]\n%m = tril(%t) {diagonal = 7}", 'A'},
    {8, 8, "%a = le(%j, %i)\n%m = xor(%a, %a)", 'N'},
    {8, 8, "%a = le(%j, %i)\n%b = not(%a)\n%m = xor(%a, %b)", 'A'},
    {8, 8, "%a = le(%j, %i)\n%b = gt(%i, %j)\n%c = or(%b, %a)\n%m = eq(%c, %a)", 'A'}, /* b implies a */
    {8, 8, "%a = le(%j, %i)\n%b = gt(%i, %j)\n%c = or(%b, %a)\n%m = eq(%c, %b)", 'S'},
    {8, 8, "%a = le(%j, %i)\n%b = cast(%a) {to = i32}\n%m = ge(%b, 0)", 'A'},
    {8, 8, "%a = le(%j, %i)\n%b = cast(%a) {to = f32}\n%n = not(%a)\n%z = full() {value = 0} : f32[8, 8]\n"
           "%c = masked_fill(%z, %n) {value = -inf}\n%d = add(%b, %c)\n%m = lt(%d, 2.0)", 'A'},
    {8, 8, "%a = le(%j, %i)\n%b = cast(%a) {to = f32}\n%n = not(%a)\n%z = full() {value = 0} : f32[8, 8]\n"
           "%c = masked_fill(%z, %n) {value = -inf}\n%d = add(%b, %c)\n%m = gt(%d, 0.5)", 'S'},
    /* movement: slice with a step, transpose, a split reshape, expand */
    {8, 8, "%w = iota() {axis = 1} : i64[8, 16]\n%v = slice(%w) {axis = 1, start = 1, step = 2}\n%m = lt(%v, 16)", 'A'},
    {8, 8, "%w = iota() {axis = 1} : i64[8, 16]\n%v = slice(%w) {axis = 1, start = 1, step = 2}\n%m = eq(%v, 4)", 'N'},
    {8, 8, "%t = transpose(%j) {dim0 = 0, dim1 = 1}\n%m = eq(%t, %i)", 'A'},
    {8, 8, "%w = iota() {axis = 0} : i64[64]\n%v = reshape(%w) {shape = [8, 8]}\n%m = lt(%v, 64)", 'A'},
    {8, 8, "%w = iota() {axis = 0} : i64[64]\n%v = reshape(%w) {shape = [8, 8]}\n%m = lt(%v, 63)", 'S'},
    {8, 8, "%w = iota() {axis = 0} : i64[8]\n%v = unsqueeze(%w) {axis = 0}\n%e = expand(%v) {shape = [8, 8]}\n%m = eq(%e, %j)", 'A'},
    {8, 8, "%w = iota() {axis = 0} : i64[8]\n%v = reshape(%w) {shape = [8, 1]}\n%m = lt(%j, %v)", 'S'},
    /* a reshape that merges dims is not affine: undecided although true */
    {8, 8, "%w = reshape(%j) {shape = [64]}\n%v = reshape(%w) {shape = [8, 8]}\n%m = lt(%v, 8)", 'U'},
    /* narrow integers wrap: never mistaken for affine */
    {2, 200, "%w = iota() {axis = 1} : i8[2, 200]\n%m = ge(%w, 0)", 'S'},
    {2, 8, "%w = add(%j, 250)\n%u = cast(%w) {to = u8}\n%m = ge(%u, 250)", 'S'},
    {2, 8, "%w = add(%j, 120)\n%u = cast(%w) {to = i8}\n%m = le(%u, 127)", 'A'}, /* fits: no wrap */
    {2, 8, "%w = add(%j, 121)\n%u = cast(%w) {to = i8}\n%m = ge(%u, 121)", 'S'}, /* 128 wraps */
    /* an opaque bool parameter: free, but the same on both sides */
    {8, 8, "%n = not(%pad)\n%m = or(%pad, %n)", 'A'},
    {8, 8, "%n = not(%pad)\n%m = and(%n, %pad)", 'N'},
    {8, 8, "%e = expand(%pad) {shape = [8, 8]}\n%m = xor(%e, %pad)", 'N'},
    {8, 8, "%m = and(%pad, true)", 'S'},
    {8, 8, "%a = lt(%j, 8)\n%m = and(%pad, %a)", 'S'},
};

/* Truth of a predicate case by running it: 'A', 'N' or 'S'. */
static char truth_of(const pred_case *pc) {
    char src[2048];
    snprintf(src, sizeof src,
             "func @main(%%pad: bool[1, %d]) -> bool[%d, %d] {\n"
             "%%i = iota() {axis = 0} : i64[%d, %d]\n%%j = iota() {axis = 1} : i64[%d, %d]\n%s\n"
             "%%zero_ = full() {value = 0} : bool[%d, %d]\n%%r = or(%%m, %%zero_)\nreturn %%r\n}\n",
             pc->cols, pc->rows, pc->cols, pc->rows, pc->cols, pc->rows, pc->cols, pc->body, pc->rows, pc->cols);
    ir_diag d;
    ir_graph *g = parse(src, &d);
    run r = {0};
    char t = '?';
    bool seen[2] = {false, false};
    /* the parameter takes every pattern we try: all false, all true, mixed */
    for (int trial = 0; g && trial < 3; trial++) {
        if (!make_inputs(g, &r, NULL)) break;
        for (int k = 0; k < pc->cols && trial < 2; k++) ir_store_i(FUSEC_DTYPE_BOOL, r.in[0].data, k, trial);
        if (!interp(g, &r, &d, src)) break;
        for (int64_t i = 0; i < fusec_tensor_numel(&r.out[0]); i++) seen[ir_load_i(FUSEC_DTYPE_BOOL, r.out[0].data, i) != 0] = true;
        run_free(&r);
    }
    run_free(&r);
    if (g) ir_graph_free(g);
    ir_diag_free(&d);
    if (seen[0] || seen[1]) t = seen[0] && seen[1] ? 'S' : seen[1] ? 'A' : 'N';
    return t;
}

TEST(predicate_table) {
    for (size_t k = 0; k < sizeof pred_cases / sizeof pred_cases[0]; k++) {
        const pred_case *pc = &pred_cases[k];
        char src[2048];
        snprintf(src, sizeof src,
                 "func @main(%%s: f32[%d, %d], %%pad: bool[1, %d]) -> f32[%d, %d] {\n"
                 "%%i = iota() {axis = 0} : i64[%d, %d]\n%%j = iota() {axis = 1} : i64[%d, %d]\n%s\n"
                 "%%r = where(%%m, %%s, -inf)\nreturn %%r\n}\n",
                 pc->rows, pc->cols, pc->cols, pc->rows, pc->cols, pc->rows, pc->cols, pc->rows, pc->cols,
                 pc->body);
        /* the table itself: what the predicate really is */
        char truth = truth_of(pc);
        char want_truth = pc->expect == 'U' ? truth : pc->expect;
        if (truth != want_truth) {
            fprintf(stderr, "case %zu: the predicate is '%c', the table says '%c'\n%s", k, truth, pc->expect, src);
            CHECK(truth == want_truth);
        }
        ir_graph *g = NULL;
        CHECK(differential(src, "masks", false, &g));
        if (!g) continue;
        const ir_value *r = g->results[0];
        char got = r == g->params[0] ? 'A'
                   : r->kind == IR_VAL_NODE && r->def->op == IR_OP_FULL ? 'N'
                   : r->kind == IR_VAL_NODE && r->def->op == IR_OP_WHERE ? 'S'
                                                                          : '?';
        char want = pc->expect == 'U' ? 'S' : pc->expect;
        if (got != want) {
            ir_str s = {0};
            ir_print_graph(&s, g);
            fprintf(stderr, "case %zu: masks decided '%c', expected '%c'\n%s\nafter masks:\n%s", k, got, want, src,
                    s.buf);
            ir_str_free(&s);
            CHECK(got == want);
        }
        ir_graph_free(g);
    }
}

/* ---- 2. random mask graphs ---------------------------------------------------- */

typedef struct gen {
    ir_str s;
    int next, rows, cols;
} gen;

static int fresh(gen *g) { return g->next++; }

/* An i64[rows, cols] value built from the index. */
static int gen_int(gen *g, int depth) {
    int v = fresh(g), a, b, R = g->rows, C = g->cols;
    int pick = depth <= 0 ? irand(0, 3) : irand(0, 11);
    switch (pick) {
    case 0:
    case 1: ir_str_printf(&g->s, "%%v%d = iota() {axis = %d} : i64[%d, %d]\n", v, pick, R, C); break;
    case 2: /* a slice of a wider iota, with a step */
        ir_str_printf(&g->s, "%%w%d = iota() {axis = 1} : i64[%d, %d]\n", v, R, 2 * C + 1);
        ir_str_printf(&g->s, "%%v%d = slice(%%w%d) {axis = 1, start = 1, step = 2}\n", v, v);
        break;
    case 3: /* a row vector of the row index, reshaped and broadcast */
        ir_str_printf(&g->s, "%%w%d = iota() {axis = 0} : i64[%d]\n", v, R);
        ir_str_printf(&g->s, "%%x%d = reshape(%%w%d) {shape = [%d, 1]}\n", v, v, R);
        ir_str_printf(&g->s, "%%v%d = expand(%%x%d) {shape = [%d, %d]}\n", v, v, R, C);
        break;
    case 4:
    case 5:
        a = gen_int(g, depth - 1);
        ir_str_printf(&g->s, "%%v%d = %s(%%v%d, %d)\n", v, pick == 4 ? "add" : "sub", a, irand(-4, 4));
        break;
    case 6:
        a = gen_int(g, depth - 1);
        ir_str_printf(&g->s, "%%v%d = mul(%%v%d, %d)\n", v, a, irand(-2, 3));
        break;
    case 7:
    case 8:
        a = gen_int(g, depth - 1);
        b = gen_int(g, depth - 1);
        ir_str_printf(&g->s, "%%v%d = %s(%%v%d, %%v%d)\n", v, pick == 7 ? "add" : "sub", a, b);
        break;
    case 9:
        a = gen_int(g, depth - 1);
        ir_str_printf(&g->s, "%%v%d = neg(%%v%d)\n", v, a);
        break;
    case 10: /* through a narrow dtype and back: wraps only if out of range */
        a = gen_int(g, depth - 1);
        ir_str_printf(&g->s, "%%w%d = cast(%%v%d) {to = i8}\n", v, a);
        ir_str_printf(&g->s, "%%v%d = cast(%%w%d) {to = i64}\n", v, v);
        break;
    default:
        if (R == C) {
            a = gen_int(g, depth - 1);
            ir_str_printf(&g->s, "%%v%d = transpose(%%v%d) {dim0 = 0, dim1 = 1}\n", v, a);
        } else {
            ir_str_printf(&g->s, "%%v%d = full() {value = %d} : i64[%d, %d]\n", v, irand(-3, 3), R, C);
        }
        break;
    }
    return v;
}

static const char *const cmp_ops[] = {"eq", "ne", "lt", "le", "gt", "ge"};

/* A bool[rows, cols] value. */
static int gen_bool(gen *g, int depth) {
    int v = fresh(g), a, b, c, R = g->rows, C = g->cols;
    int pick = depth <= 0 ? irand(0, 2) : irand(0, 12);
    switch (pick) {
    case 0:
    case 1:
        a = gen_int(g, depth - 1);
        if (pick == 0) {
            b = gen_int(g, depth - 1);
            ir_str_printf(&g->s, "%%v%d = %s(%%v%d, %%v%d)\n", v, cmp_ops[irand(0, 5)], a, b);
        } else {
            ir_str_printf(&g->s, "%%v%d = %s(%%v%d, %d)\n", v, cmp_ops[irand(0, 5)], a, irand(-2, 9));
        }
        break;
    case 2: /* the parameter, broadcast by an and with the index */
        a = gen_int(g, 0);
        ir_str_printf(&g->s, "%%w%d = ge(%%v%d, %d)\n", v, a, irand(-1, 2));
        ir_str_printf(&g->s, "%%v%d = %s(%%w%d, %%pad)\n", v, irand(0, 1) ? "and" : "or", v);
        break;
    case 3:
    case 4:
    case 5:
        a = gen_bool(g, depth - 1);
        b = gen_bool(g, depth - 1);
        ir_str_printf(&g->s, "%%v%d = %s(%%v%d, %%v%d)\n", v, pick == 3 ? "and" : pick == 4 ? "or" : "xor", a, b);
        break;
    case 6:
        a = gen_bool(g, depth - 1);
        ir_str_printf(&g->s, "%%v%d = not(%%v%d)\n", v, a);
        break;
    case 7:
        a = gen_bool(g, depth - 1);
        ir_str_printf(&g->s, "%%v%d = %s(%%v%d) {diagonal = %d}\n", v, irand(0, 1) ? "triu" : "tril", a,
                      irand(-C, C));
        break;
    case 8:
        ir_str_printf(&g->s, "%%v%d = full() {value = %d} : bool[%d, %d]\n", v, irand(0, 1), R, C);
        break;
    case 9:
        a = gen_int(g, depth - 1);
        ir_str_printf(&g->s, "%%v%d = cast(%%v%d) {to = bool}\n", v, a);
        break;
    case 10:
        a = gen_bool(g, depth - 1);
        b = gen_bool(g, depth - 1);
        c = gen_bool(g, depth - 1);
        ir_str_printf(&g->s, "%%v%d = where(%%v%d, %%v%d, %%v%d)\n", v, a, b, c);
        break;
    case 11:
        a = gen_bool(g, depth - 1);
        b = gen_bool(g, depth - 1);
        ir_str_printf(&g->s, "%%v%d = %s(%%v%d, %%v%d)\n", v, irand(0, 1) ? "eq" : "ne", a, b);
        break;
    default: /* a float index compared with a non-integer */
        a = gen_int(g, depth - 1);
        ir_str_printf(&g->s, "%%w%d = cast(%%v%d) {to = f32}\n", v, a);
        ir_str_printf(&g->s, "%%v%d = %s(%%w%d, %g)\n", v, cmp_ops[irand(0, 5)], v, irand(-10, 10) + 0.5);
        break;
    }
    return v;
}

/* An f32[rows, cols] additive mask. */
static int gen_mask(gen *g, int depth) {
    int v = fresh(g), a, b, R = g->rows, C = g->cols;
    static const char *const vals[] = {"0.0", "-inf", "-3.4028234663852886e38", "-10000.0", "1.0"};
    int pick = depth <= 0 ? irand(0, 2) : irand(0, 6);
    switch (pick) {
    case 0:
        a = gen_bool(g, depth - 1);
        ir_str_printf(&g->s, "%%w%d = full() {value = %s} : f32[%d, %d]\n", v, vals[irand(0, 1)], R, C);
        if (irand(0, 1)) ir_str_printf(&g->s, "%%v%d = where(%%v%d, %%w%d, %s)\n", v, a, v, vals[irand(0, 1)]);
        else ir_str_printf(&g->s, "%%v%d = where(%%v%d, %s, %%w%d)\n", v, a, vals[irand(0, 1)], v);
        break;
    case 1:
        ir_str_printf(&g->s, "%%w%d = full() {value = %s} : f32[%d, %d]\n", v, vals[irand(1, 2)], R, C);
        ir_str_printf(&g->s, "%%v%d = %s(%%w%d) {diagonal = %d}\n", v, irand(0, 1) ? "triu" : "tril", v,
                      irand(-C - 1, C + 1));
        break;
    case 2:
        ir_str_printf(&g->s, "%%v%d = full() {value = %s} : f32[%d, %d]\n", v, vals[irand(0, 1)], R, C);
        break;
    case 3:
        a = gen_bool(g, depth - 1);
        ir_str_printf(&g->s, "%%w%d = full() {value = 0} : f32[%d, %d]\n", v, R, C);
        ir_str_printf(&g->s, "%%v%d = masked_fill(%%w%d, %%v%d) {value = %s}\n", v, v, a, vals[irand(1, 2)]);
        break;
    case 4: /* BERT: (1 - keep) * -10000 */
        a = gen_bool(g, depth - 1);
        ir_str_printf(&g->s, "%%x%d = cast(%%v%d) {to = f32}\n", v, a);
        ir_str_printf(&g->s, "%%w%d = sub(1.0, %%x%d)\n", v, v);
        ir_str_printf(&g->s, "%%v%d = mul(%%w%d, %s)\n", v, v, vals[irand(3, 4)]);
        break;
    default:
        a = gen_mask(g, depth - 1);
        b = gen_mask(g, depth - 1);
        ir_str_printf(&g->s, "%%v%d = add(%%v%d, %%v%d)\n", v, a, b);
        break;
    }
    return v;
}

/* One random graph: a masking form over %s, and the mask as a second result. */
static char *gen_graph(void) {
    gen g = {.next = 0, .rows = irand(1, 5), .cols = irand(1, 5)};
    int B = irand(1, 2), R = g.rows, C = g.cols, depth = irand(1, 3);
    int m = gen_bool(&g, depth), r = fresh(&g), a, b;
    switch (irand(0, 8)) {
    case 0: ir_str_printf(&g.s, "%%v%d = where(%%v%d, %%s, -inf)\n", r, m); break;
    case 1: ir_str_printf(&g.s, "%%v%d = masked_fill(%%s, %%v%d) {value = -inf}\n", r, m); break;
    case 2:
        a = gen_mask(&g, depth);
        ir_str_printf(&g.s, "%%v%d = add(%%s, %%v%d)\n", r, a);
        break;
    case 3:
        a = gen_mask(&g, depth);
        b = irand(0, 1) ? a : gen_mask(&g, depth);
        ir_str_printf(&g.s, "%%w%d = add(%%s, %%v%d)\n%%v%d = add(%%w%d, %%v%d)\n", r, a, r, r, b);
        break;
    case 4:
        a = gen_mask(&g, depth);
        ir_str_printf(&g.s, "%%w%d = add(%%v%d, %%s)\n%%v%d = where(%%v%d, %%w%d, -inf)\n", r, a, r, m, r);
        break;
    case 5:
        b = irand(0, 1) ? m : gen_bool(&g, depth);
        ir_str_printf(&g.s, "%%w%d = where(%%v%d, %%s, -1.0)\n%%v%d = where(%%v%d, %%w%d, -inf)\n", r, b, r, m, r);
        break;
    case 6:
        b = irand(0, 1) ? m : gen_bool(&g, depth);
        ir_str_printf(&g.s, "%%w%d = where(%%v%d, -1.0, %%s)\n%%v%d = where(%%v%d, -inf, %%w%d)\n", r, b, r, m, r);
        break;
    case 7:
        b = irand(0, 1) ? m : gen_bool(&g, depth);
        ir_str_printf(&g.s, "%%w%d = masked_fill(%%s, %%v%d) {value = -1.0}\n", r, b);
        ir_str_printf(&g.s, "%%v%d = masked_fill(%%w%d, %%v%d) {value = -inf}\n", r, r, m);
        break;
    default:
        a = gen_mask(&g, depth);
        ir_str_printf(&g.s, "%%w%d = mul(%%s, %%v%d)\n%%v%d = where(%%v%d, %%w%d, %%s)\n", r, a, r, m, r);
        break;
    }
    ir_str head = {0};
    ir_str_printf(&head, "func @main(%%s: f32[%d, %d, %d], %%pad: bool[1, %d]) -> (f32[%d, %d, %d], bool[%d, %d]) {\n%s",
                  B, R, C, C, B, R, C, R, C, g.s.buf);
    ir_str_printf(&head, "return %%v%d, %%v%d\n}\n", r, m);
    ir_str_free(&g.s);
    return ir_str_take(&head);
}

TEST(random_mask_graphs) {
    int failures = 0;
    for (int k = 0; k < 600 && failures < 3; k++) {
        char *src = gen_graph();
        bool ok = differential(src, "masks", false, NULL) &&
                  differential(src, "canonicalize,fold,masks,fold,canonicalize,cse,dce", false, NULL) &&
                  differential(src, NULL, false, NULL);
        if (!ok) failures++;
        CHECK(ok);
        free(src);
    }
}

/* The masks pass rewrites what the lit tests show; here: the results stay. */
TEST(rewrites_keep_results) {
    static const char *const cases[] = {
        /* the HF causal mask, added twice, and as masked_fill over the scores */
        "func @main(%s: f32[2, 2, 6, 6]) -> f32[2, 2, 6, 6] {\n"
        "%f = full() {value = -inf} : f32[6, 6]\n%t = triu(%f) {diagonal = 1}\n"
        "%a = add(%s, %t)\n%b = add(%a, %t)\n%i = iota() {axis = 0} : i64[6, 6]\n"
        "%j = iota() {axis = 1} : i64[6, 6]\n%k = le(%j, %i)\n%w = where(%k, %b, -inf)\nreturn %w\n}\n",
        /* a padding mask applied twice, through expand */
        "func @main(%s: f32[2, 2, 6, 6], %pad: bool[2, 1, 1, 6]) -> f32[2, 2, 6, 6] {\n"
        "%e = expand(%pad) {shape = [2, 1, 6, 6]}\n%a = masked_fill(%s, %pad) {value = -inf}\n"
        "%b = masked_fill(%a, %e) {value = -inf}\nreturn %b\n}\n",
        /* keeps everything: a window wider than the sequence, broadcast up */
        "func @main(%s: f32[3, 5, 5]) -> f32[3, 5, 5] {\n"
        "%i = iota() {axis = 0} : i64[5, 1]\n%j = iota() {axis = 1} : i64[1, 5]\n%d = sub(%i, %j)\n"
        "%a = lt(%d, 5)\n%b = gt(%d, -5)\n%m = and(%a, %b)\n%r = where(%m, %s, -inf)\nreturn %r\n}\n",
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        CHECK(differential(cases[k], "masks", false, NULL));
        CHECK(differential(cases[k], NULL, false, NULL));
    }
}

/* ---- 3. fold ---------------------------------------------------------------------- */

typedef struct fold_case {
    const char *src;
    bool all_folded; /* no op but full / constant / iota may remain */
} fold_case;

static const fold_case fold_cases[] = {
    {"func @main() -> f32[3, 4] {\n%a = full() {value = 0.1} : f32[3, 4]\n%b = mul(%a, 3.0)\n"
     "%c = exp(%b)\n%d = add(%c, 1e-3)\n%e = sigmoid(%d)\nreturn %e\n}\n", true},
    {"func @main() -> (f16[5], bf16[5]) {\n%a = full() {value = 0.1} : f16[5]\n%b = add(%a, 0.2)\n"
     "%c = full() {value = 3.3} : bf16[5]\n%d = tanh(%c)\n%e = mul(%d, 7.1)\nreturn %b, %e\n}\n", true},
    {"func @main() -> (i32[2], i32[2], i8[2], u8[2], i8[2]) {\n%a = full() {value = -7} : i32[2]\n%b = div(%a, 2)\n"
     "%c = remainder(%a, 3)\n%d = full() {value = 100} : i8[2]\n%e = add(%d, 100)\n%f = full() {value = 3} : u8[2]\n"
     "%g = sub(%f, 5)\n%h = full() {value = 300.7} : f32[2]\n%k = cast(%h) {to = i8}\nreturn %b, %c, %e, %g, %k\n}\n",
     true},
    {"func @main() -> (bool[2, 2], f32[2, 2], f32[2, 2], i64[2, 2]) {\n%a = full() {value = 1.5} : f32[2, 2]\n"
     "%b = gt(%a, 1.0)\n%c = where(%b, %a, -inf)\n%d = masked_fill(%a, %b) {value = -2.5}\n"
     "%e = full() {value = 2} : i64[2, 2]\n%f = pow(%e, 62)\nreturn %b, %c, %d, %f\n}\n", true},
    /* reductions */
    {"func @main() -> (f32[], f32[], f32[], f32[], f32[], f64[], f32[]) {\n"
     "%a = full() {value = 0.1} : f32[10, 100]\n%s = sum(%a)\n%m = mean(%a)\n%v = var(%a)\n"
     "%one = full() {value = 0.1} : f32[1]\n%v1 = var(%one)\n%p = prod(%a)\n"
     "%b = full() {value = 1.0001} : f64[500]\n%pb = prod(%b)\n%c = full() {value = -0.5} : f32[33]\n%pc = prod(%c)\n"
     "return %s, %m, %v, %v1, %p, %pb, %pc\n}\n", true},
    {"func @main() -> (i64[], i64[], bool[], i64[10], f32[3], f32[3]) {\n"
     "%a = full() {value = 0.1} : f32[10, 100]\n%i = full() {value = 3} : i64[30]\n%pi = prod(%i)\n"
     "%t = full() {value = 1} : bool[7]\n%st = sum(%t)\n%mt = max(%t)\n%am = argmax(%a) {axis = 1}\n"
     "%e = full() {value = 2.0} : f32[0, 3]\n%se = sum(%e) {axes = [0]}\n%me = mean(%e) {axes = [0]}\n"
     "return %pi, %st, %mt, %am, %se, %me\n}\n", true},
    {"func @main() -> (f64[], f32[], f32[2, 1]) {\n%a = full() {value = 0.1} : f64[3]\n%s = sum(%a)\n"
     "%n = full() {value = -0.0} : f32[4]\n%sn = sum(%n)\n%k = full() {value = inf} : f32[2, 5]\n"
     "%sk = max(%k) {axes = [1], keepdim = true}\nreturn %s, %sn, %sk\n}\n", false},
    /* constants and movement */
    {"func @main() -> (f32[2, 3], f32[3, 2], f32[2], f32[2, 2, 3], bool[3], f32[4]) {\n"
     "%a = constant() {data = [1, 2, 3, 4, 5, 6]} : f32[2, 3]\n%b = constant() {data = [0.5, -1, 2]} : f32[3]\n"
     "%c = mul(%a, %b)\n%t = transpose(%c) {dim0 = 0, dim1 = 1}\n%s = slice(%b) {axis = 0, start = 1}\n"
     "%e = expand(%c) {shape = [2, 2, 3]}\n%g = gt(%b, 0.0)\n%f = full() {value = 2.5} : f32[2]\n"
     "%h = concat(%f, %f) {axis = 0}\nreturn %c, %t, %s, %e, %g, %h\n}\n", true},
    {"func @main() -> (f32[3, 2], i32[2, 3], f32[6]) {\n%a = constant() {data = [1, 2, 3, 4, 5, 6]} : f32[2, 3]\n"
     "%p = permute(%a) {dims = [1, 0]}\n%r = reshape(%a) {shape = [6]}\n%q = neg(%r)\n"
     "%k = constant() {data = [3, 2, 1]} : i32[3]\n%u = unsqueeze(%k) {axis = 0}\n%x = expand(%u) {shape = [2, 3]}\n"
     "%y = sub(%x, 1)\nreturn %p, %y, %q\n}\n", true},
    /* left alone, but still right: integer division by zero is checked at run time elsewhere */
    {"func @main(%x: f32[4]) -> (f32[4], f32[200]) {\n%a = full() {value = 2.0} : f32[4]\n%b = mul(%x, %a)\n"
     "%c = iota() {axis = 0} : f32[200]\n%d = add(%c, 1.0)\nreturn %b, %d\n}\n", false},
};

static bool only_creation(const ir_graph *g) {
    for (const ir_node *n = g->first; n; n = n->next)
        if (n->op != IR_OP_FULL && n->op != IR_OP_CONSTANT && n->op != IR_OP_IOTA) return false;
    return true;
}

TEST(fold_bit_exact) {
    for (size_t k = 0; k < sizeof fold_cases / sizeof fold_cases[0]; k++) {
        ir_graph *g = NULL;
        CHECK(differential(fold_cases[k].src, "fold", true, &g));
        if (g && fold_cases[k].all_folded && !only_creation(g)) {
            ir_str s = {0};
            ir_print_graph(&s, g);
            fprintf(stderr, "fold case %zu left ops behind:\n%s", k, s.buf);
            ir_str_free(&s);
            CHECK(false);
        }
        if (g) ir_graph_free(g);
    }
}

/* Every reduction of a full folds to the interpreter's value, bit for bit,
 * over a grid of values, counts and dtypes. */
TEST(fold_reductions_grid) {
    static const char *const vals[] = {"0.1", "-0.0", "3", "1e30", "-2.5", "inf", "nan", "1.0001", "0.999", "-1", "7e-40"};
    static const char *const ops[] = {"sum", "mean", "prod", "max", "min", "var"};
    static const char *const dts[] = {"f32", "f64", "f16", "bf16"};
    static const int counts[] = {0, 1, 2, 3, 7, 1000, 20000};
    for (size_t d = 0; d < 4; d++)
        for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++)
            for (size_t o = 0; o < 6; o++)
                for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
                    if (counts[c] == 0 && (o == 3 || o == 4)) continue; /* no identity */
                    char src[512];
                    snprintf(src, sizeof src,
                             "func @main() -> %s[2] {\n%%a = full() {value = %s} : %s[2, %d]\n"
                             "%%r = %s(%%a) {axes = [1]}\nreturn %%r\n}\n",
                             dts[d], vals[v], dts[d], counts[c], ops[o]);
                    CHECK(differential(src, "fold", true, NULL));
                }
    static const char *const ivals[] = {"0", "1", "-1", "3", "127", "-128"};
    static const char *const idts[] = {"i64", "i32", "i8", "u8", "bool"};
    static const char *const iops[] = {"sum", "prod", "max", "min"};
    for (size_t d = 0; d < 5; d++)
        for (size_t v = 0; v < sizeof ivals / sizeof ivals[0]; v++)
            for (size_t o = 0; o < 4; o++)
                for (size_t c = 1; c < 6; c++) {
                    if ((d == 3 && ivals[v][0] == '-') || (d == 4 && v > 1)) continue; /* not representable */
                    char src[512];
                    snprintf(src, sizeof src,
                             "func @main() -> %s[2] {\n%%a = full() {value = %s} : %s[2, %d]\n"
                             "%%r = %s(%%a) {axes = [1]}\nreturn %%r\n}\n",
                             o < 2 ? "i64" : idts[d], ivals[v], idts[d], counts[c] * 13, iops[o]);
                    CHECK(differential(src, "fold", true, NULL));
                }
}

TEST_MAIN(predicate_table, random_mask_graphs, rewrites_keep_results, fold_bit_exact, fold_reductions_grid)
