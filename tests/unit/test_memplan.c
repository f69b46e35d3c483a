/*
 * test_memplan.c - unit tests of memory planning (passes/memplan.c).
 *
 * Plans are built by hand: over a parsed graph where in-place reuse is at
 * stake (it depends on the kernel bodies), and synthetic ones (no graph,
 * library kernels, buffers with chosen sizes and live ranges) for
 * placement.  Every planned result is also run through memplan_check, and
 * random buffer sets check the invariants (no two live TEMPs overlap,
 * alignment, arena <= naive) on a few hundred plans.  Whether the planned
 * memory computes the right values is test_plan_exec.c's job.
 */
#include "plan_util.h"

static bool plan_ok(plan *p) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    bool ok = pass_memplan(p, &d) && memplan_check(p, &d);
    if (!ok) fprintf(stderr, "%s", d.out.buf ? d.out.buf : "");
    ir_diag_free(&d);
    return ok;
}

static plan_buf *buf(plan *p, const char *name) {
    return &p->bufs[p->buf_of[hp_val(p->g, name, strlen(name))->id]];
}

/* ---- in-place reuse ------------------------------------------------------ */

static const char *chain_src =
    "func @f(%x: f32[4, 16]) -> f32[4, 16] {\n"
    "  %a = exp(%x)\n"
    "  %b = neg(%a)\n"
    "  %c = add(%b, 1.0)\n"
    "  %y = mul(%c, 2.0)\n"
    "  return %y\n"
    "}\n";

TEST(inplace_chain_shares_one_slot) {
    ir_graph *g = hp_parse(chain_src);
    plan *p = hp_per_node(g);
    CHECK(plan_ok(p));
    CHECK_EQ_INT(buf(p, "a")->reuses, -1);
    CHECK_EQ_INT(buf(p, "b")->reuses, buf(p, "a")->id);
    CHECK_EQ_INT(buf(p, "c")->reuses, buf(p, "b")->id);
    CHECK_EQ_INT(buf(p, "c")->offset, 0);
    CHECK_EQ_INT(p->arena_bytes, 256);
    CHECK_EQ_INT(p->naive_bytes, 3 * 256);
    /* live ranges: def, last use; the result lives to the end */
    CHECK_EQ_INT(buf(p, "b")->def, 1);
    CHECK_EQ_INT(buf(p, "b")->last_use, 2);
    CHECK_EQ_INT(buf(p, "x")->def, -1);
    CHECK_EQ_INT(buf(p, "x")->offset, -1);
    CHECK_EQ_INT(buf(p, "y")->offset, -1);
    CHECK_EQ_INT(buf(p, "y")->last_use, 3);
    plan_free(p);
    ir_graph_free(g);
}

/* Each graph: %t is a TEMP that dies at the kernel writing %o, but the
 * kernel reads it at another index, or it is not the same size. */
static void refused(const char *src, const char *body) {
    ir_graph *g = hp_parse(src);
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "t", "x", "t");
    hp_kernel(p, PLAN_POINTWISE, body, "t x", "o");
    hp_kernel(p, PLAN_POINTWISE, "y", "o", "y");
    CHECK(plan_ok(p));
    CHECK_EQ_INT(buf(p, "o")->reuses, -1);
    CHECK(buf(p, "o")->offset != buf(p, "t")->offset);
    plan_free(p);
    ir_graph_free(g);
}

TEST(inplace_refused_when_not_at_the_same_index) {
    /* read transposed (a square matrix: same shape, other index) */
    refused("func @f(%x: f32[8, 8]) -> f32[8, 8] {\n"
            "  %t = exp(%x)\n  %u = transpose(%t) {dim0 = 0, dim1 = 1}\n"
            "  %o = add(%u, %x)\n  %y = neg(%o)\n  return %y\n}\n",
            "u o");
    /* read elementwise, but that node's value is then transposed */
    refused("func @f(%x: f32[8, 8]) -> f32[8, 8] {\n"
            "  %t = exp(%x)\n  %u = add(%t, 1.0)\n  %w = transpose(%u) {dim0 = 0, dim1 = 1}\n"
            "  %o = add(%w, %u)\n  %y = neg(%o)\n  return %y\n}\n",
            "u w o");
    /* read shifted through a slice of a pad */
    refused("func @f(%x: f32[8]) -> f32[8] {\n"
            "  %t = exp(%x)\n  %u = pad(%t) {pads = [1, 0]}\n  %o = slice(%u) {axis = 0, end = 8}\n"
            "  %y = neg(%o)\n  return %y\n}\n",
            "u o");
    /* broadcast: t is a row read by every row of o */
    refused("func @f(%x: f32[4, 8]) -> f32[4, 8] {\n"
            "  %t = exp(%x)\n  %r = slice(%t) {axis = 0, end = 1}\n  %o = add(%r, %x)\n"
            "  %y = neg(%o)\n  return %y\n}\n",
            "r o");
    /* not the same size: f32 -> f64 */
    refused("func @f(%x: f32[8]) -> f64[8] {\n"
            "  %t = exp(%x)\n  %o = cast(%t) {to = f64}\n  %y = neg(%o)\n  return %y\n}\n",
            "o");
}

TEST(inplace_refused_when_t_lives_on) {
    ir_graph *g = hp_parse("func @f(%x: f32[8]) -> f32[8] {\n"
                           "  %t = exp(%x)\n  %o = neg(%t)\n  %y = add(%o, %t)\n  return %y\n}\n");
    plan *p = hp_per_node(g);
    CHECK(plan_ok(p));
    CHECK_EQ_INT(buf(p, "o")->reuses, -1);
    CHECK(buf(p, "o")->offset != buf(p, "t")->offset);
    plan_free(p);
    ir_graph_free(g);
}

/* REDUCE kernels never write in place; LIBRARY kernels only from their
 * elementwise epilogue, never over the library node's operands. */
TEST(inplace_by_kernel_kind) {
    ir_graph *g = hp_parse("func @f(%x: f32[8, 8], %w: f32[8, 8]) -> f32[8, 8] {\n"
                           "  %t = exp(%x)\n"
                           "  %m = max(%t) {axes = [1], keepdim = true}\n"
                           "  %o = sub(%t, %m)\n"
                           "  %u = exp(%o)\n"
                           "  %mm = matmul(%u, %w)\n"
                           "  %e = neg(%mm)\n"
                           "  %s = sigmoid(%x)\n"
                           "  %mm2 = matmul(%x, %w)\n"
                           "  %e2 = mul(%mm2, %s)\n"
                           "  %y = add(%e, %e2)\n"
                           "  return %y\n"
                           "}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "t", "x", "t");
    hp_kernel(p, PLAN_REDUCE, "m o", "t", "o");        /* t dies here: refused (REDUCE) */
    hp_kernel(p, PLAN_POINTWISE, "u", "o", "u");       /* o dies here: taken */
    hp_kernel(p, PLAN_POINTWISE, "s", "x", "s");
    hp_kernel(p, PLAN_LIBRARY, "mm e", "u w", "e");    /* u is the library operand: refused */
    hp_kernel(p, PLAN_LIBRARY, "mm2 e2", "x w s", "e2"); /* s read by the epilogue: taken */
    hp_kernel(p, PLAN_POINTWISE, "y", "e e2", "y");
    CHECK(plan_ok(p));
    CHECK_EQ_INT(buf(p, "o")->reuses, -1);
    CHECK_EQ_INT(buf(p, "u")->reuses, buf(p, "o")->id);
    CHECK_EQ_INT(buf(p, "e")->reuses, -1);
    CHECK_EQ_INT(buf(p, "e2")->reuses, buf(p, "s")->id);
    CHECK(hp_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

/* Two outputs of one kernel cannot both take the same dying input. */
TEST(inplace_slot_taken_once) {
    ir_graph *g = hp_parse("func @f(%x: f32[64]) -> f32[64] {\n"
                           "  %t = exp(%x)\n  %o1 = neg(%t)\n  %o2 = abs(%t)\n"
                           "  %y = add(%o1, %o2)\n  return %y\n}\n");
    plan *p = hp_new(g);
    hp_kernel(p, PLAN_POINTWISE, "t", "x", "t");
    hp_kernel(p, PLAN_POINTWISE, "o1 o2", "t", "o1 o2");
    hp_kernel(p, PLAN_POINTWISE, "y", "o1 o2", "y");
    CHECK(plan_ok(p));
    CHECK_EQ_INT(buf(p, "o1")->reuses, buf(p, "t")->id);
    CHECK_EQ_INT(buf(p, "o2")->reuses, -1);
    CHECK(hp_agree(p));
    plan_free(p);
    ir_graph_free(g);
}

/* ---- placement ------------------------------------------------------------ */

/* A synthetic plan: nk library kernels and TEMPs of chosen sizes and
 * live ranges (written by kernel def, read by last). */
static plan *synthetic(int nk, int maxb) {
    plan *p = hp_new_sized(NULL, nk, maxb);
    p->nkernels = nk;
    for (int k = 0; k < nk; k++) {
        plan_kernel *kn = &p->kernels[k];
        kn->id = k;
        kn->kind = PLAN_LIBRARY;
        kn->in = ir_arena_alloc(&p->arena, sizeof(int) * (size_t)maxb);
        kn->out = ir_arena_alloc(&p->arena, sizeof(int) * (size_t)maxb);
    }
    return p;
}

static int temp(plan *p, int64_t bytes, int def, int last) {
    plan_buf *b = &p->bufs[p->nbufs];
    b->id = p->nbufs;
    b->kind = PLAN_BUF_TEMP;
    b->bytes = bytes;
    plan_kernel *w = &p->kernels[def];
    w->out[w->nout++] = b->id;
    if (last > def) {
        plan_kernel *r = &p->kernels[last];
        r->in[r->nin++] = b->id;
    }
    return p->nbufs++;
}

TEST(best_fit_gap) {
    plan *p = synthetic(10, 8);
    int a = temp(p, 4096, 0, 1), b = temp(p, 2048, 0, 9), c = temp(p, 1024, 0, 1);
    int d = temp(p, 1000, 0, 9), x = temp(p, 768, 5, 6);
    CHECK(plan_ok(p));
    CHECK_EQ_INT(p->bufs[a].offset, 0);
    CHECK_EQ_INT(p->bufs[b].offset, 4096);
    CHECK_EQ_INT(p->bufs[c].offset, 6144);
    CHECK_EQ_INT(p->bufs[d].offset, 7168);
    /* gaps among x's overlapping slots (b, d): [0, 4096) and [6144, 7168):
     * the smaller one that fits */
    CHECK_EQ_INT(p->bufs[x].offset, 6144);
    CHECK_EQ_INT(p->arena_bytes, 7168 + 1000);
    CHECK_EQ_INT(p->naive_bytes, 4096 + 2048 + 1024 + 1024 + 768);
    plan_free(p);
}

/* Sizes that are not multiples of 256 still start on 256-byte offsets;
 * the arena ends where the highest slot ends. */
TEST(alignment) {
    plan *p = synthetic(3, 8);
    int a = temp(p, 1, 0, 2), b = temp(p, 255, 0, 2), c = temp(p, 257, 0, 2), z = temp(p, 0, 1, 2);
    CHECK(plan_ok(p));
    int64_t offs[3] = {p->bufs[a].offset, p->bufs[b].offset, p->bufs[c].offset};
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(offs[i] % PLAN_ARENA_ALIGN, 0);
    CHECK_EQ_INT(p->bufs[c].offset, 0); /* largest first */
    CHECK_EQ_INT(p->bufs[b].offset, 512);
    CHECK_EQ_INT(p->bufs[a].offset, 768);
    CHECK_EQ_INT(p->bufs[z].offset, 0);
    CHECK_EQ_INT(p->arena_bytes, 769);
    CHECK_EQ_INT(p->naive_bytes, 256 + 256 + 512);
    plan_free(p);
}

/* t_k lives over kernels [k, k+1]: only neighbours overlap, so the slots
 * alternate.  Largest first: t4 at 0, t3 above it at 1536, t2 back at 0
 * (it overlaps t3 only), t1 at 1280 above t2, t0 at 0. */
TEST(disjoint_lifetimes_share) {
    plan *p = synthetic(6, 8);
    for (int k = 0; k < 5; k++) temp(p, 1000 + 100 * k, k, k + 1);
    CHECK(plan_ok(p));
    int64_t want[5] = {0, 1280, 0, 1536, 0};
    for (int k = 0; k < 5; k++) CHECK_EQ_INT(p->bufs[k].offset, want[k]);
    CHECK_EQ_INT(p->arena_bytes, 1536 + 1300);
    CHECK_EQ_INT(p->naive_bytes, 1024 + 1280 + 1280 + 1536 + 1536);
    plan_free(p);
}

/* ---- errors and the checker ------------------------------------------- */

TEST(inconsistent_plans_are_reported) {
    plan *p = synthetic(3, 4);
    int a = temp(p, 64, 1, 2);
    p->kernels[0].in[p->kernels[0].nin++] = a; /* read before written */
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK(!pass_memplan(p, &d));
    CHECK(d.out.buf && strstr(d.out.buf, "buffer 0 is read before it is written, by kernel 0"));
    ir_diag_free(&d);
    p->kernels[0].nin = 0;
    p->kernels[2].out[p->kernels[2].nout++] = a; /* written twice */
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK(!pass_memplan(p, &d));
    CHECK(d.out.buf && strstr(d.out.buf, "is written twice"));
    ir_diag_free(&d);
    p->kernels[2].nout = 0;
    p->kernels[1].nout = 0; /* never written */
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK(!pass_memplan(p, &d));
    CHECK(d.out.buf && strstr(d.out.buf, "buffer 0 is never written"));
    ir_diag_free(&d);
    plan_free(p);
}

TEST(checker_catches_bad_plans) {
    plan *p = synthetic(4, 8);
    int a = temp(p, 300, 0, 2), b = temp(p, 300, 1, 3), c = temp(p, 300, 3, 3);
    CHECK(plan_ok(p));
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    int64_t saved = p->bufs[b].offset;
    p->bufs[b].offset = p->bufs[a].offset + 256; /* overlaps a while both live */
    CHECK(!memplan_check(p, &d));
    CHECK(d.out.buf && strstr(d.out.buf, "overlaps buffer 0"));
    p->bufs[b].offset = 100; /* misaligned */
    CHECK(!memplan_check(p, &d));
    CHECK(strstr(d.out.buf, "offset 100 is not an aligned arena offset"));
    p->bufs[b].offset = saved;
    p->bufs[a].last_use = 1; /* read by kernel 2 after its recorded death */
    CHECK(!memplan_check(p, &d));
    CHECK(strstr(d.out.buf, "read by kernel 2 outside its live range"));
    p->bufs[a].last_use = 2;
    p->bufs[c].reuses = a; /* a died at 2, c is born at 3: not an in-place pair */
    CHECK(!memplan_check(p, &d));
    CHECK(strstr(d.out.buf, "invalid in-place reuse of buffer 0"));
    p->bufs[c].reuses = -1;
    p->arena_bytes = p->naive_bytes + 1;
    CHECK(!memplan_check(p, &d));
    ir_diag_free(&d);
    plan_free(p);
}

/* ---- random buffer sets --------------------------------------------------- */

TEST(random_plans_keep_the_invariants) {
    hp_rng_state = 12345;
    int worse = 0;
    for (int iter = 0; iter < 400; iter++) {
        int nk = 1 + (int)(hp_rand() % 12), nb = 1 + (int)(hp_rand() % 30);
        plan *p = synthetic(nk, nb);
        for (int i = 0; i < nb; i++) {
            int def = (int)(hp_rand() % (uint64_t)nk);
            int last = def + (int)(hp_rand() % (uint64_t)(nk - def));
            int64_t bytes = hp_rand() % 8 == 0 ? 0 : (int64_t)(hp_rand() % 5000);
            if (hp_rand() % 4 == 0) bytes = 1024; /* many equal sizes */
            temp(p, bytes, def, last);
            /* extra readers between def and last */
            for (int k = def + 1; k < last; k++)
                if (hp_rand() % 3 == 0) p->kernels[k].in[p->kernels[k].nin++] = i;
        }
        bool ok = plan_ok(p);
        CHECK(ok);
        CHECK(p->arena_bytes <= p->naive_bytes);
        /* brute force, independent of the checker: no two live TEMPs share a byte */
        for (int i = 0; i < nb; i++)
            for (int j = 0; j < i; j++) {
                const plan_buf *x = &p->bufs[i], *y = &p->bufs[j];
                int xe = x->last_use > x->def ? x->last_use : x->def;
                int ye = y->last_use > y->def ? y->last_use : y->def;
                bool together = x->def <= ye && y->def <= xe;
                bool apart = x->offset + x->bytes <= y->offset || y->offset + y->bytes <= x->offset;
                if (together && x->bytes && y->bytes && !apart) {
                    fprintf(stderr, "iteration %d: buffers %d and %d overlap\n", iter, i, j);
                    CHECK(false);
                }
                CHECK_EQ_INT(x->offset % PLAN_ARENA_ALIGN, 0);
            }
        worse += p->arena_bytes == p->naive_bytes;
        plan_free(p);
        if (!ok) break;
    }
    CHECK(worse < 400); /* reuse happens */
}

/* Random pointwise chains with in-place reuse, executed and compared with
 * the interpreter: the plan executor poisons what dies, so a wrong reuse
 * shows up. */
TEST(random_inplace_chains_execute) {
    static const char *unary[] = {"exp", "neg", "abs", "tanh", "sigmoid", "sqrt"};
    static const char *binary[] = {"add", "sub", "mul", "maximum"};
    hp_rng_state = 777;
    int reused = 0;
    for (int iter = 0; iter < 60; iter++) {
        char src[4096];
        int len = snprintf(src, sizeof src, "func @f(%%x: f32[3, 5], %%r: f32[5]) -> f32[3, 5] {\n");
        int nv = 6 + (int)(hp_rand() % 10);
        for (int i = 0; i < nv; i++) {
            char a[8], b[8];
            int ia = i == 0 ? -1 : (int)(hp_rand() % (uint64_t)i), ib = (int)(hp_rand() % (uint64_t)(i + 1)) - 1;
            snprintf(a, sizeof a, ia < 0 ? "x" : "v%d", ia);
            snprintf(b, sizeof b, ib < 0 ? (hp_rand() % 2 ? "x" : "r") : "v%d", ib);
            if (hp_rand() % 2)
                len += snprintf(src + len, sizeof src - (size_t)len, "  %%v%d = %s(%%%s)\n", i,
                                unary[hp_rand() % 6], a);
            else
                len += snprintf(src + len, sizeof src - (size_t)len, "  %%v%d = %s(%%%s, %%%s)\n", i,
                                binary[hp_rand() % 4], a, b);
        }
        snprintf(src + len, sizeof src - (size_t)len, "  return %%v%d\n}\n", nv - 1);
        ir_graph *g = hp_parse(src);
        plan *p = hp_per_node(g);
        bool ok = hp_plan_and_agree(p);
        if (!ok) fprintf(stderr, "graph:\n%s", src);
        CHECK(ok);
        for (int i = 0; i < p->nbufs; i++) reused += p->bufs[i].reuses >= 0;
        plan_free(p);
        ir_graph_free(g);
        if (!ok) break;
    }
    CHECK(reused >= 30); /* the chains do exercise in-place reuse */
    printf("  %d in-place reuses in 60 random chains\n", reused);
}

TEST_MAIN(inplace_chain_shares_one_slot, inplace_refused_when_not_at_the_same_index,
          inplace_refused_when_t_lives_on, inplace_by_kernel_kind, inplace_slot_taken_once,
          best_fit_gap, alignment, disjoint_lifetimes_share, inconsistent_plans_are_reported,
          checker_catches_bad_plans, random_plans_keep_the_invariants, random_inplace_chains_execute)
