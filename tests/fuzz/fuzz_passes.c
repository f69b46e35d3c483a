/*
 * fuzz_passes.c - libFuzzer target: parse, run the default pass pipeline
 * with the verifier after every pass, fuse, plan memory, check the plan.
 *
 * llvm-opt-fuzzer's pattern: any input the parser accepts is a valid graph,
 * so every pass must leave it valid ("the graph is invalid after pass X" is
 * a compiler bug), fusion must produce a plan, and the memory plan must pass
 * its own checker (no two live temporaries overlap).  A failure prints the
 * input's canonical text and the diagnostic, and aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/parse.h"
#include "passes/fuse.h"
#include "passes/memplan.h"
#include "passes/pass.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(ir_graph *g, ir_diag *d, const char *what) {
    ir_str s = {0};
    ir_print_graph(&s, g);
    fprintf(stderr, "%s\n--- graph:\n%s\n--- diagnostic:\n%s\n", what, s.buf ? s.buf : "",
            d->out.buf ? d->out.buf : "(none)");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ir_diag d;
    ir_diag_init(&d, "fuzz.ir", (const char *)data, size);
    ir_graph *g = fe_parse((const char *)data, size, "fuzz.ir", NULL, &d);
    ir_diag_free(&d);
    if (!g) return 0;
    ir_diag_init(&d, NULL, NULL, 0);
    pass_ctx ctx = {.diag = &d, .verify_each = true};
    if (!pass_run_pipeline(g, NULL, &ctx)) die(g, &d, "the default pipeline failed");
    plan *p = pass_fuse(g, &d);
    if (!p && d.out.buf && strstr(d.out.buf, "too large to plan")) { /* a reported limit */
        ir_diag_free(&d);
        ir_graph_free(g);
        return 0;
    }
    if (!p) die(g, &d, "fusion failed");
    if (!pass_memplan(p, &d)) die(g, &d, "memory planning failed");
    if (!memplan_check(p, &d)) die(g, &d, "the memory plan is invalid");
    plan_free(p);
    ir_diag_free(&d);
    ir_graph_free(g);
    return 0;
}
