/*
 * test_memory_examples.c - the memory evidence of the passes issue, on the
 * GPT-2 attention block and the LLaMA MLP examples: after the default
 * pipeline, fusion and memory planning, the arena is at most half of what
 * storing every intermediate value in its own buffer takes (op-by-op
 * execution), and for GPT-2 also at most half of the plan's temporaries
 * each in its own buffer.  (For the LLaMA MLP the latter cannot hold: its
 * three temporaries - the norm, gate, and silu(gate) * up - are all live at
 * the up-projection kernel; see the plan's memory line.)  The plan executor
 * must still match the interpreter, which test_plan_exec checks.
 */
#include <stdio.h>
#include <stdlib.h>

#include "frontend/parse.h"
#include "passes/fuse.h"
#include "passes/memplan.h"
#include "passes/pass.h"
#include "test.h"

#ifndef FUSEC_SOURCE_DIR
#define FUSEC_SOURCE_DIR "."
#endif

static plan *plan_example(const char *name, ir_graph **gout) {
    char path[512];
    snprintf(path, sizeof path, "%s/examples/%s", FUSEC_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(path, sizeof path, "examples/%s", name);
        f = fopen(path, "rb");
    }
    CHECK(f != NULL);
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ir_diag d;
    ir_diag_init(&d, path, buf, n);
    ir_graph *g = fe_parse(buf, n, path, NULL, &d);
    CHECK(g != NULL);
    pass_ctx ctx = {.diag = &d, .verify_each = true};
    CHECK(g && pass_run_pipeline(g, NULL, &ctx));
    plan *p = g ? pass_fuse(g, &d) : NULL;
    CHECK(p && pass_memplan(p, &d) && memplan_check(p, &d));
    if (d.nerr) fprintf(stderr, "%s", d.out.buf);
    ir_diag_free(&d);
    *gout = g;
    return p;
}

TEST(gpt2_arena) {
    ir_graph *g = NULL;
    plan *p = plan_example("gpt2_attention.ir", &g);
    if (!p) return;
    printf("gpt2_attention: arena %lld, temporaries %lld, op by op %lld bytes\n",
           (long long)p->arena_bytes, (long long)p->naive_bytes, (long long)p->eager_bytes);
    CHECK(p->arena_bytes * 2 <= p->eager_bytes);
    CHECK(p->arena_bytes * 2 <= p->naive_bytes);
    plan_free(p);
    ir_graph_free(g);
}

TEST(llama_arena) {
    ir_graph *g = NULL;
    plan *p = plan_example("llama_mlp.ir", &g);
    if (!p) return;
    printf("llama_mlp: arena %lld, temporaries %lld, op by op %lld bytes\n",
           (long long)p->arena_bytes, (long long)p->naive_bytes, (long long)p->eager_bytes);
    CHECK(p->arena_bytes * 2 <= p->eager_bytes);
    CHECK(p->arena_bytes <= p->naive_bytes);
    plan_free(p);
    ir_graph_free(g);
}

TEST_MAIN(gpt2_arena, llama_arena)
