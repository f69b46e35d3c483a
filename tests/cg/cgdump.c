/*
 * cgdump.c - a developer's tool for the CUDA code generator: plan .ir
 * files (or generated graphs) like the runtime does, print the generated
 * CUDA C of every kernel, and optionally compile it all through NVRTC.
 *
 *   cgdump [--print] [--compile ARCH]... [--soft-half] [--seed S --count N] FILE.ir...
 *
 * --print        write every kernel's translation unit to stdout
 * --compile A    compile every kernel for architecture A (sm_80, sm_90)
 * --soft-half    compile with -DFC_SOFT_HALF (the bit-level f16/bf16 path)
 * --seed/--count also plan N generated graphs (tests/diff/gen.h) from seed S
 * Exit status: 0 if every graph planned, generated and compiled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cg/cg_plans.h"
#include "tests/diff/gen.h"

#ifndef BATCH
#define BATCH 32 /* kernels per NVRTC program */
#endif

int main(int argc, char **argv) {
    bool print = false, soft = false;
    const char *archs[4];
    int narch = 0;
    long seed = 1, count = 0;
    cgt_item *items = NULL;
    int n = 0, cap = 0, fails = 0, skipped = 0, graphs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--print") == 0) print = true;
        else if (strcmp(argv[i], "--soft-half") == 0) soft = true;
        else if (strcmp(argv[i], "--compile") == 0 && i + 1 < argc && narch < 4) archs[narch++] = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) seed = atol(argv[++i]);
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) count = atol(argv[++i]);
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: cgdump [--print] [--compile ARCH] [--soft-half] [--seed S --count N] FILE.ir...\n");
            return 2;
        } else {
            char *text = cgt_read_file(argv[i], NULL);
            if (!text) {
                fprintf(stderr, "cgdump: cannot read %s\n", argv[i]);
                fails++;
                continue;
            }
            cgt_status st = cgt_plan_kernels(text, argv[i], &items, &n, &cap, stderr);
            fails += st == CGT_FAIL;
            skipped += st == CGT_SKIP;
            graphs++;
            free(text);
        }
    }
    for (long s = seed; s < seed + count; s++) {
        char *text = gen_graph((uint64_t)s, NULL), label[64];
        snprintf(label, sizeof label, "seed %ld", s);
        if (!text) continue;
        cgt_status st = cgt_plan_kernels(text, label, &items, &n, &cap, stderr);
        if (st != CGT_OK) fprintf(stderr, "---- graph of %s ----\n%s\n", label, text);
        fails += st != CGT_OK;
        graphs++;
        free(text);
    }
    if (print)
        for (int i = 0; i < n; i++) printf("// ==== %s ====\n%s\n", items[i].label, items[i].k.source);
    const char *extra[2] = {soft ? "-DFC_SOFT_HALF" : NULL, NULL};
    for (int a = 0; a < narch; a++)
        for (int i = 0; i < n; i += BATCH) fails += cgt_compile_batch(items + i, n - i < BATCH ? n - i : BATCH, archs[a], extra, stderr);
    fprintf(stderr, "cgdump: %d graphs (%d not parsed), %d kernels, %d failures\n", graphs, skipped, n, fails);
    cgt_items_free(items, n);
    return fails ? 1 : 0;
}
