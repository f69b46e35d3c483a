/*
 * test_plan_exec.c - unit tests of the plan executor (runtime/plan_exec.c).
 *
 * Each test parses a graph, builds a plan by hand (which nodes form which
 * kernel, which values live in memory), plans its memory and runs it; the
 * results must equal the interpreter's on the same graph bit for bit (the
 * executor rounds every node as the interpreter stores it and accumulates
 * in the same order).  The kernels exercise each index mapping (broadcast,
 * reshape, permute, slice, pad, concat, the gathers), masks computed from
 * the index (iota / compare / where, triu), row kernels with nested
 * reductions (softmax, layer norm, var, argmax), library kernels, run-time
 * errors, and the poison: a deliberately wrong plan must give a different
 * result.  The end-to-end tests run every example through the default
 * pipeline, fusion and memory planning.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>

#include "passes/fuse.h"
#include "passes/pass.h"
#include "plan_util.h"

/* ---- pointwise kernels --------------------------------------------------- */

TEST(pointwise_chain_one_kernel) {
    ir_graph *g = hp_parse("func @f(%x: f32[4, 8], %b: f32[8], %r: f32[4, 8]) -> f32[4, 8] {\n"
                           "  %a = add(%x, %b)\n"
                           "  %h = gelu(%a)\n"
                           "  %s = mul(%h, 2.5)\n"
                           "  %y = add(%s, %r)\n"
                           "  return %y\n"
                           "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "a h s y", "x b r", "y");
    CHECK(hp_plan_and_agree(p));
    CHECK_EQ_INT(p->arena_bytes, 0);
    plan_free(p);
    ir_graph_free(g);
}

/* f16 and bf16: every op rounds to its dtype, as the interpreter stores. */
TEST(half_precision_rounds_per_op) {
    ir_graph *g = hp_parse("func @f(%x: f16[3, 5], %y: bf16[5]) -> (f16[3, 5], bf16[3, 5]) {\n"
                           "  %a = mul(%x, 1.1)\n"
                           "  %b = exp(%a)\n"
                           "  %c = sub(%b, %a)\n"
                           "  %d = cast(%c) {to = bf16}\n"
                           "  %e = add(%d, %y)\n"
                           "  %f = sqrt(%e)\n"
                           "  return %c, %f\n"
                           "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "a b c", "x", "c");
    hp_kernel(p, PLAN_POINTWISE, "d e f", "c y", "f");
    CHECK(hp_plan_and_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

TEST(index_remapping_ops) {
    ir_graph *g = hp_parse(
        "func @f(%x: f32[4, 6], %y: f32[3, 1], %z: f32[2, 3, 4]) -> (f32[6, 4], f32[2, 6], f32[3, 8],\n"
        "                                                           f32[4, 3, 2], f32[5, 8], f32[2, 4, 3]) {\n"
        "  %t  = transpose(%x) {dim0 = 0, dim1 = 1}\n"
        "  %t2 = neg(%t)\n"
        "  %s  = slice(%x) {axis = 0, start = -3, end = 100, step = 2}\n"
        "  %s2 = mul(%s, %s)\n"
        "  %e  = expand(%y) {shape = [3, 8]}\n"
        "  %e2 = add(%e, 1.0)\n"
        "  %r  = reshape(%z) {shape = [4, 6]}\n"
        "  %r1 = unsqueeze(%r) {axis = 0}\n"
        "  %r2 = squeeze(%r1)\n"
        "  %r3 = reshape(%r2) {shape = [4, 3, 2]}\n"
        "  %pd = pad(%x) {pads = [1, 1, 2, 1], value = 7.5}\n"
        "  %pn = pad(%pd) {pads = [0, -1], value = 0}\n"
        "  %z0 = slice(%t) {axis = 1, start = 2, end = 2}\n"
        "  %tt = concat(%t, %z0, %t) {axis = 1}\n"
        "  %c  = concat(%pn, %tt) {axis = 0}\n"
        "  %cs = slice(%c) {axis = 0, start = 3, end = 12, step = 2}\n"
        "  %pm = permute(%z) {dims = [0, 2, 1]}\n"
        "  %q  = sigmoid(%pm)\n"
        "  return %t2, %s2, %e2, %r3, %cs, %q\n"
        "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "t t2", "x", "t2");
    hp_kernel(p, PLAN_POINTWISE, "s s2", "x", "s2");
    hp_kernel(p, PLAN_POINTWISE, "e e2", "y", "e2");
    hp_kernel(p, PLAN_POINTWISE, "r r1 r2 r3", "z", "r3");
    hp_kernel(p, PLAN_POINTWISE, "t pd pn z0 tt c cs", "x", "cs");
    hp_kernel(p, PLAN_POINTWISE, "pm q", "z", "q");
    CHECK(hp_plan_and_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

/* A causal mask built from iota and a comparison, and an upper-triangle
 * mask from full + triu: index predicates, never in memory. */
TEST(masks_from_the_index) {
    ir_graph *g = hp_parse("func @f(%s: f32[2, 6, 6]) -> (f32[2, 6, 6], f32[2, 6, 6]) {\n"
                           "  %row  = iota() {axis = 0} : i64[6, 6]\n"
                           "  %col  = iota() {axis = 1} : i64[6, 6]\n"
                           "  %fut  = gt(%col, %row)\n"
                           "  %m    = where(%fut, -inf, %s)\n"
                           "  %ninf = full() {value = -inf} : f32[6, 6]\n"
                           "  %tri  = triu(%ninf) {diagonal = 1}\n"
                           "  %u    = add(%s, %tri)\n"
                           "  %low  = tril(%s) {diagonal = -1}\n"
                           "  %v    = add(%u, %low)\n"
                           "  return %m, %v\n"
                           "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "row col fut m ninf tri u low v", "s", "m v");
    CHECK(hp_plan_and_agree(p));
    CHECK_EQ_INT(p->nbufs, 3); /* s, m, v: no mask buffer */
    plan_free(p);
    ir_graph_free(g);
}

/* Two outputs of one kernel, one read back by a later kernel; a constant. */
TEST(multiple_outputs_and_constants) {
    ir_graph *g = hp_parse("func @f(%x: f32[2, 3]) -> (f32[2, 3], f32[2, 3]) {\n"
                           "  %k = constant() {data = [1, 2, 3, 4, 5, 6]} : f32[2, 3]\n"
                           "  %a = mul(%x, %k)\n"
                           "  %b = add(%x, %k)\n"
                           "  %c = div(%a, %b)\n"
                           "  return %a, %c\n"
                           "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "k a b", "x", "a b");
    hp_kernel(p, PLAN_POINTWISE, "c", "a b", "c");
    CHECK(hp_plan_and_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

/* ---- reduce kernels --------------------------------------------------- */

/* softmax(s * 0.125 + causal mask) as one row kernel: max and sum nested. */
TEST(softmax_row_kernel) {
    ir_graph *g = hp_parse("func @f(%s: f32[2, 4, 8, 8]) -> f32[2, 4, 8, 8] {\n"
                           "  %row = iota() {axis = 0} : i64[8, 8]\n"
                           "  %col = iota() {axis = 1} : i64[8, 8]\n"
                           "  %fut = gt(%col, %row)\n"
                           "  %t   = mul(%s, 0.125)\n"
                           "  %sm  = where(%fut, -inf, %t)\n"
                           "  %mx  = max(%sm) {axes = [-1], keepdim = true}\n"
                           "  %d   = sub(%sm, %mx)\n"
                           "  %e   = exp(%d)\n"
                           "  %z   = sum(%e) {axes = [-1], keepdim = true}\n"
                           "  %p   = div(%e, %z)\n"
                           "  return %p\n"
                           "}\n");
    plan *p = hp_new(g);
    plan_kernel *k = hp_kernel(p, PLAN_REDUCE, "row col fut t sm mx d e z p", "s", "p");
    CHECK_EQ_INT(k->domain.rank, 4);
    CHECK(k->reduce[3] && !k->reduce[2]);
    CHECK(hp_plan_and_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

/* layer norm decomposed: mean, centred values, var over two axes; outputs
 * of the domain's shape and of the reduced shape from one kernel. */
TEST(layer_norm_row_kernel) {
    ir_graph *g = hp_parse("func @f(%x: f32[3, 4, 5], %w: f32[4, 5]) -> (f32[3, 4, 5], f32[3], f32[3, 1, 1]) {\n"
                           "  %mu  = mean(%x) {axes = [1, 2], keepdim = true}\n"
                           "  %c   = sub(%x, %mu)\n"
                           "  %sq  = mul(%c, %c)\n"
                           "  %v   = mean(%sq) {axes = [1, 2], keepdim = true}\n"
                           "  %ve  = add(%v, 1e-5)\n"
                           "  %rs  = rsqrt(%ve)\n"
                           "  %n   = mul(%c, %rs)\n"
                           "  %y   = mul(%n, %w)\n"
                           "  %vr  = var(%x) {axes = [1, 2], correction = 1}\n"
                           "  %vk  = var(%x) {axes = [1, 2], keepdim = true, correction = 0}\n"
                           "  return %y, %vr, %vk\n"
                           "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_REDUCE, "mu c sq v ve rs n y vr vk", "x w", "y vr vk");
    CHECK(hp_plan_and_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

/* Reductions over a leading and a middle axis, integer sums and products
 * (i64 results, wrapping), bool max, argmax/argmin with ties and NaN. */
TEST(reductions_of_every_kind) {
    ir_graph *g = hp_parse(
        "func @f(%x: f32[4, 3, 5], %i: i32[4, 6], %b: bool[3, 4]) -> (f32[3, 5], f32[4, 5], i64[6],\n"
        "                                           i64[4], bool[4], i64[4, 5], i64[], i32[1, 6], f32[4, 1, 5]) {\n"
        "  %s0 = sum(%x) {axes = [0]}\n"
        "  %p1 = prod(%x) {axes = [1]}\n"
        "  %si = sum(%i) {axes = [0]}\n"
        "  %pi = prod(%i) {axes = [-1]}\n"
        "  %bm = max(%b) {axes = [0]}\n"
        "  %am = argmax(%x) {axis = 1}\n"
        "  %fl = round(%x)\n"
        "  %an = argmin(%fl)\n"
        "  %mi = min(%i) {axes = [0], keepdim = true}\n"
        "  %mx = max(%x) {axes = [1], keepdim = true}\n"
        "  return %s0, %p1, %si, %pi, %bm, %am, %an, %mi, %mx\n"
        "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_REDUCE, "s0", "x", "s0");
    hp_kernel(p, PLAN_REDUCE, "p1 am mx", "x", "p1 am mx");
    hp_kernel(p, PLAN_REDUCE, "si mi", "i", "si mi");
    hp_kernel(p, PLAN_REDUCE, "pi", "i", "pi");
    hp_kernel(p, PLAN_REDUCE, "bm", "b", "bm");
    hp_kernel(p, PLAN_REDUCE, "fl an", "x", "an");
    CHECK(hp_plan_and_agree(p));
    /* NaN and ties: argmax takes the first NaN, then the first maximum */
    fusec_tensor in[3];
    hp_inputs(g, in);
    for (int e = 0; e < 60; e++) ir_store_f(FUSEC_DTYPE_F32, in[0].data, e, (double)(e % 3));
    ir_store_f(FUSEC_DTYPE_F32, in[0].data, 7, NAN);
    ir_store_f(FUSEC_DTYPE_F32, in[0].data, 12, NAN);
    CHECK(hp_agree_with(g, p, in));
    hp_free_tensors(in, 3);
    plan_free(p);
    ir_graph_free(g);
}

/* A row's max and sum are computed once per row: with rows of 2^16
 * elements, evaluating them again for every element would take 2^33
 * evaluations per row; memoized, the kernel takes a few per element. */
TEST(reductions_are_memoized) {
    ir_graph *g = hp_parse("func @f(%s: f32[4, 65536]) -> f32[4, 65536] {\n"
                           "  %mx = max(%s) {axes = [-1], keepdim = true}\n"
                           "  %d  = sub(%s, %mx)\n"
                           "  %e  = exp(%d)\n"
                           "  %z  = sum(%e) {axes = [-1], keepdim = true}\n"
                           "  %p  = div(%e, %z)\n"
                           "  return %p\n"
                           "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_REDUCE, "mx d e z p", "s", "p");
    CHECK(hp_plan_and_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

/* ---- gathers and errors -------------------------------------------------- */

TEST(gathers) {
    ir_graph *g = hp_parse(
        "func @f(%w: f32[5, 3], %ix: i64[4], %g: i32[5, 2]) -> (f32[4, 3], f32[4, 3], f32[5, 2], f32[4, 3]) {\n"
        "  %sel = index_select(%w, %ix) {axis = 0}\n"
        "  %e   = embedding(%w, %ix)\n"
        "  %wt  = transpose(%w) {dim0 = 0, dim1 = 1}\n"
        "  %col = index_select(%wt, %ix) {axis = 1}\n"
        "  %c2  = transpose(%col) {dim0 = 0, dim1 = 1}\n"
        "  %ga  = gather(%w, %g) {axis = 1}\n"
        "  %s2  = exp(%e)\n"
        "  return %s2, %c2, %ga, %sel\n"
        "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "sel", "w ix", "sel"); /* program order: the first error is the same */
    hp_kernel(p, PLAN_POINTWISE, "e s2", "w ix", "s2");
    hp_kernel(p, PLAN_POINTWISE, "wt col c2", "w ix", "c2");
    hp_kernel(p, PLAN_POINTWISE, "ga", "w g", "ga");
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK(pass_memplan(p, &d));
    ir_diag_free(&d);
    fusec_tensor in[3];
    hp_inputs(g, in);
    int64_t ix[4] = {4, 0, 2, 2}, gi[10] = {0, 2, 1, 1, 2, 0, 0, 0, 1, 2};
    for (int e = 0; e < 4; e++) ir_store_i(FUSEC_DTYPE_I64, in[1].data, e, ix[e]);
    for (int e = 0; e < 10; e++) ir_store_i(FUSEC_DTYPE_I32, in[2].data, e, gi[e]);
    CHECK(hp_agree_with(g, p, in));
    /* out of range: the same run-time error as the interpreter's */
    ir_store_i(FUSEC_DTYPE_I64, in[1].data, 3, 5);
    CHECK(hp_agree_with(g, p, in));
    ir_store_i(FUSEC_DTYPE_I64, in[1].data, 3, 1);
    ir_store_i(FUSEC_DTYPE_I32, in[2].data, 9, -1);
    CHECK(hp_agree_with(g, p, in));
    hp_free_tensors(in, 3);
    plan_free(p);
    ir_graph_free(g);
}

TEST(integer_division_by_zero) {
    ir_graph *g = hp_parse("func @f(%a: i32[6], %b: i32[6]) -> i32[6] {\n"
                           "  %q = div(%a, %b)\n"
                           "  %r = remainder(%q, 3)\n"
                           "  return %r\n"
                           "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "q r", "a b", "r");
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK(pass_memplan(p, &d));
    fusec_tensor in[2], out[1];
    hp_inputs(g, in);
    for (int e = 0; e < 6; e++) ir_store_i(FUSEC_DTYPE_I32, in[1].data, e, e + 1);
    CHECK(hp_agree_with(g, p, in));
    ir_store_i(FUSEC_DTYPE_I32, in[1].data, 4, 0);
    CHECK(hp_agree_with(g, p, in));
    CHECK_EQ_INT(rt_plan_run(p, in, 2, out, 1, &d), FUSEC_ERR_RUNTIME);
    CHECK(out[0].data == NULL);
    CHECK(strstr(d.out.buf, "div: integer division by zero") != NULL);
    ir_diag_free(&d);
    hp_free_tensors(in, 2);
    plan_free(p);
    ir_graph_free(g);
}

TEST(input_checks) {
    ir_graph *g = hp_parse("func @f(%x: f32[2, 3]) -> f32[2, 3] {\n"
                           "  %y = neg(%x)\n"
                           "  return %y\n"
                           "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "y", "x", "y");
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK(pass_memplan(p, &d));
    float buf[6] = {0};
    fusec_tensor in = {.dtype = FUSEC_DTYPE_F32, .rank = 2, .shape = {3, 2}, .data = buf}, out;
    CHECK_EQ_INT(rt_plan_run(p, &in, 1, &out, 1, &d), FUSEC_ERR_INVALID);
    CHECK(strstr(d.out.buf, "input %x: expected f32[2, 3], got f32[3, 2]") != NULL);
    CHECK_EQ_INT(rt_plan_run(p, &in, 0, &out, 1, &d), FUSEC_ERR_INVALID);
    ir_diag_free(&d);
    plan_free(p);
    ir_graph_free(g);
}

/* ---- library kernels ------------------------------------------------------ */

TEST(library_kernels_with_epilogues) {
    ir_graph *g = hp_parse(
        "func @f(%a: f32[2, 3, 4], %b: f32[4, 5], %q: f32[2, 2, 3, 4], %x: f32[1, 2, 5, 5],\n"
        "        %w: f32[3, 2, 3, 3]) -> (f32[2, 3, 5], f32[2, 2, 3, 4], f32[1, 3, 3, 3]) {\n"
        "  %m  = matmul(%a, %b)\n"
        "  %r  = relu(%m)\n"
        "  %sm = softmax(%m) {axis = 1}\n"
        "  %y  = add(%r, %sm)\n"
        "  %at = sdpa(%q, %q, %q) {is_causal = true}\n"
        "  %o  = mul(%at, 3.0)\n"
        "  %c  = conv2d(%x, %w)\n"
        "  %mp = max_pool2d(%c) {kernel = [1, 1]}\n"
        "  return %y, %o, %mp\n"
        "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_LIBRARY, "m", "a b", "m");
    hp_kernel(p, PLAN_LIBRARY, "sm", "m", "sm");
    hp_kernel(p, PLAN_POINTWISE, "r y", "m sm", "y");
    hp_kernel(p, PLAN_LIBRARY, "at", "q", "at");
    hp_kernel(p, PLAN_POINTWISE, "o", "at", "o");
    hp_kernel(p, PLAN_LIBRARY, "c", "x w", "c");
    hp_kernel(p, PLAN_LIBRARY, "mp", "c", "mp");
    CHECK(hp_plan_and_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

/* ---- results ----------------------------------------------------------- */

/* A result that is an input, a result returned twice, a result that a
 * later kernel also reads. */
TEST(results_copied_where_needed) {
    ir_graph *g = hp_parse("func @f(%x: f32[3]) -> (f32[3], f32[3], f32[3], f32[3]) {\n"
                           "  %a = exp(%x)\n"
                           "  %b = add(%a, %x)\n"
                           "  return %x, %a, %b, %a\n"
                           "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "a", "x", "a");
    hp_kernel(p, PLAN_POINTWISE, "b", "a x", "b");
    CHECK(hp_plan_and_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

/* ---- wrong plans ------------------------------------------------------------ */

static const char *three_kernels =
    "func @f(%x: f32[64]) -> f32[64] {\n"
    "  %a = exp(%x)\n"
    "  %b = neg(%x)\n"
    "  %c = add(%a, %b)\n"
    "  return %c\n"
    "}\n";

static plan *three_kernel_plan(ir_graph *g) {
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "a", "x", "a");
    hp_kernel(p, PLAN_POINTWISE, "b", "x", "b");
    hp_kernel(p, PLAN_POINTWISE, "c", "a b", "c");
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    bool ok = pass_memplan(p, &d) && memplan_check(p, &d);
    CHECK(ok);
    ir_diag_free(&d);
    return p;
}

/* Two live TEMPs in one slot: the checker says so and the result differs. */
TEST(poison_overlapping_slot) {
    ir_graph *g = hp_parse(three_kernels);
    plan *p = three_kernel_plan(g);
    CHECK(hp_agree(p));
    plan_buf *a = &p->bufs[p->buf_of[hp_val(g, "a", 1)->id]], *b = &p->bufs[p->buf_of[hp_val(g, "b", 1)->id]];
    CHECK(a->offset != b->offset);
    b->offset = a->offset; /* b overwrites a while a is live */
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK(!memplan_check(p, &d));
    CHECK(d.out.buf && strstr(d.out.buf, "overlaps") != NULL);
    ir_diag_free(&d);
    fprintf(stderr, "(a mismatch is expected next)\n");
    CHECK(!hp_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

/* A TEMP whose recorded last use is too early is poisoned before its
 * reader runs: the reader sees NaN. */
TEST(poison_after_last_use) {
    ir_graph *g = hp_parse(three_kernels);
    plan *p = three_kernel_plan(g);
    plan_buf *a = &p->bufs[p->buf_of[hp_val(g, "a", 1)->id]];
    a->last_use = 0;
    fusec_tensor in[1], out[1];
    hp_inputs(g, in);
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK_EQ_INT(rt_plan_run(p, in, 1, out, 1, &d), FUSEC_OK);
    int nan = 0;
    for (int e = 0; e < 64; e++) nan += isnan(ir_load_f(FUSEC_DTYPE_F32, out[0].data, e));
    CHECK_EQ_INT(nan, 64);
    CHECK(!memplan_check(p, &d));
    hp_free_tensors(out, 1);
    hp_free_tensors(in, 1);
    ir_diag_free(&d);
    plan_free(p);
    ir_graph_free(g);
}

/* In place over an input read at another index (transposed): pass_memplan
 * refuses it; forced, the checker rejects it and the result is wrong,
 * because o[i, j] overwrites t[i, j] before t[j, i] is read. */
TEST(wrong_inplace_reuse_shows) {
    ir_graph *g = hp_parse("func @f(%x: f32[8, 8]) -> f32[8, 8] {\n"
                           "  %t = exp(%x)\n"
                           "  %u = transpose(%t) {dim0 = 0, dim1 = 1}\n"
                           "  %o = add(%u, %x)\n"
                           "  %y = neg(%o)\n"
                           "  return %y\n"
                           "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "t", "x", "t");
    hp_kernel(p, PLAN_POINTWISE, "u o", "t x", "o");
    hp_kernel(p, PLAN_POINTWISE, "y", "o", "y");
    CHECK(hp_plan_and_agree(p));
    plan_buf *t = &p->bufs[p->buf_of[hp_val(g, "t", 1)->id]], *o = &p->bufs[p->buf_of[hp_val(g, "o", 1)->id]];
    CHECK_EQ_INT(o->reuses, -1);
    o->offset = t->offset;
    o->reuses = t->id;
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK(!memplan_check(p, &d));
    CHECK(d.out.buf && strstr(d.out.buf, "invalid in-place reuse"));
    ir_diag_free(&d);
    fprintf(stderr, "(a mismatch is expected next)\n");
    CHECK(!hp_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

/* A kernel that reads a buffer it does not list, or needs a value nobody
 * computes, is an error, not a crash. */
TEST(inconsistent_plans_are_errors) {
    ir_graph *g = hp_parse(three_kernels);
    plan *p = three_kernel_plan(g);
    p->kernels[2].nin = 1; /* k2 reads b without listing it */
    fusec_tensor in[1], out[1];
    hp_inputs(g, in);
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK_EQ_INT(rt_plan_run(p, in, 1, out, 1, &d), FUSEC_ERR_RUNTIME);
    CHECK(d.out.buf && strstr(d.out.buf, "does not list as an input: %b") != NULL);
    CHECK(out[0].data == NULL);
    p->kernels[2].nin = 2;
    p->buf_of[hp_val(g, "b", 1)->id] = -1; /* b no longer in memory */
    ir_diag_free(&d);
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK_EQ_INT(rt_plan_run(p, in, 1, out, 1, &d), FUSEC_ERR_RUNTIME);
    CHECK(d.out.buf && strstr(d.out.buf, "neither in memory nor in its body: %b") != NULL);
    hp_free_tensors(in, 1);
    ir_diag_free(&d);
    plan_free(p);
    ir_graph_free(g);
}

/* ---- in-place reuse, executed ------------------------------------------- */

/* A chain of pointwise kernels each written in place over its input: one
 * slot for all, and the results still agree. */
TEST(inplace_chain_executes) {
    ir_graph *g = hp_parse("func @f(%x: f32[8, 16], %y: f32[16]) -> f32[8, 16] {\n"
                           "  %a = exp(%x)\n"
                           "  %b = add(%a, %y)\n"
                           "  %c = mul(%b, %b)\n"
                           "  %d = sub(%c, %a)\n"
                           "  %e = sqrt(%d)\n"
                           "  return %e\n"
                           "}\n");
    plan *p = hp_per_node(g);
    CHECK(hp_plan_and_agree(p));
    int reused = 0;
    for (int i = 0; i < p->nbufs; i++) reused += p->bufs[i].reuses >= 0;
    CHECK_EQ_INT(reused, 2); /* c over b, then d over c (a lives on until d) */
    CHECK_EQ_INT(p->arena_bytes, 512 + 512);
    plan_free(p);
    ir_graph_free(g);
}

/* ---- whole graphs --------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    *len = fread(s, 1, (size_t)n, f);
    s[*len] = 0;
    fclose(f);
    return s;
}

/* Apply fn to the source of every .ir file in examples/. */
static int for_each_example(void (*fn)(const char *name, const char *src)) {
    const char *root = getenv("FUSEC_SOURCE_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/examples", root ? root : ".");
    DIR *dp = opendir(dir);
    if (!dp) {
        fprintf(stderr, "no examples directory at %s\n", dir);
        return 0;
    }
    int count = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        size_t n = strlen(de->d_name);
        if (n < 4 || strcmp(de->d_name + n - 3, ".ir")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len;
        char *src = read_file(path, &len);
        if (!src) continue;
        fn(de->d_name, src);
        free(src);
        count++;
    }
    closedir(dp);
    return count;
}

/* Running batch_norm variances must be non-negative: make them so. */
static void sane_inputs(const ir_graph *g, fusec_tensor *in) {
    hp_inputs(g, in);
    for (int i = 0; i < g->nparams; i++)
        if (g->params[i]->name && strstr(g->params[i]->name, "var"))
            for (int64_t e = 0; e < ir_type_numel(&g->params[i]->type); e++)
                ir_store_f(in[i].dtype, in[i].data, e, fabs(ir_load_f(in[i].dtype, in[i].data, e)) + 0.5);
}

static void example_per_node(const char *name, const char *src) {
    ir_graph *g = hp_parse(src);
    CHECK(g != NULL);
    if (!g) return;
    plan *p = hp_per_node(g);
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    bool ok = pass_memplan(p, &d) && memplan_check(p, &d);
    CHECK(ok);
    fusec_tensor in[HP_MAXIO];
    sane_inputs(g, in);
    bool agree = ok && hp_agree_with(g, p, in);
    if (!agree) fprintf(stderr, "example %s (per-node plan) disagrees\n", name);
    CHECK(agree);
    hp_free_tensors(in, g->nparams);
    ir_diag_free(&d);
    plan_free(p);
    ir_graph_free(g);
}

TEST(examples_unfused) { CHECK(for_each_example(example_per_node) >= 5); }

/* parse -> default pipeline -> fusion -> memory planning -> executor,
 * bit for bit against the interpreter on the same optimized graph (the
 * optimized graph against the graph as written, within tolerances, is the
 * differential tests' job: tests/diff). */
static void example_fused(const char *name, const char *src) {
    ir_graph *g = hp_parse(src);
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    pass_ctx ctx = {.diag = &d, .verify_each = true};
    bool ok = pass_run_pipeline(g, NULL, &ctx);
    plan *p = ok ? pass_fuse(g, &d) : NULL;
    ok = p && pass_memplan(p, &d) && memplan_check(p, &d);
    if (!ok) fprintf(stderr, "example %s: %s\n", name, d.out.buf ? d.out.buf : "");
    CHECK(ok);
    fusec_tensor in[HP_MAXIO];
    sane_inputs(g, in);
    bool agree = ok && hp_agree_with(g, p, in);
    if (!agree) fprintf(stderr, "example %s (fused plan) disagrees\n", name);
    CHECK(agree);
    if (p)
        printf("  %-24s %2d kernels, arena %7lld bytes, naive %7lld bytes\n", name, p->nkernels,
               (long long)p->arena_bytes, (long long)p->naive_bytes);
    hp_free_tensors(in, g->nparams);
    ir_diag_free(&d);
    plan_free(p);
    ir_graph_free(g);
}

TEST(examples_fused) { CHECK(for_each_example(example_fused) >= 5); }

TEST_MAIN(pointwise_chain_one_kernel, half_precision_rounds_per_op, index_remapping_ops,
          masks_from_the_index, multiple_outputs_and_constants, softmax_row_kernel,
          layer_norm_row_kernel, reductions_of_every_kind, reductions_are_memoized, gathers,
          integer_division_by_zero, input_checks, library_kernels_with_epilogues,
          results_copied_where_needed, poison_overlapping_slot, poison_after_last_use,
          wrong_inplace_reuse_shows, inconsistent_plans_are_errors, inplace_chain_executes, examples_unfused, examples_fused)
