/*
 * fuzz_roundtrip.c - libFuzzer target: parse, print, parse again, print again.
 *
 * The printer's contract (spec section 3) is that its output parses back to
 * the same graph.  So for every input the parser accepts:
 *   text1 = print(parse(input))   must parse without error, and
 *   text2 = print(parse(text1))   must be byte-identical to text1.
 * Either failure shows both texts (and the diagnostic) and aborts, which
 * libFuzzer reports as a crash with the input saved as an artifact.
 * Inputs the parser rejects are uninteresting here (fuzz_parse covers them).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/parse.h"
#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse `src` and return its canonical text (malloc'd), or NULL if the
 * parser rejects it; the diagnostic is left in *d for the caller. */
static char *parse_print(const char *src, size_t len, const char *name, ir_diag *d) {
    ir_diag_init(d, name, src, len);
    ir_graph *g = fe_parse(src, len, name, NULL, d);
    if (!g)
        return NULL;
    ir_str s = {0};
    ir_print_graph(&s, g);
    ir_graph_free(g);
    if (s.oom) {
        ir_str_free(&s);
        return NULL;
    }
    return ir_str_take(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ir_diag d1, d2;
    char *text1 = parse_print((const char *)data, size, "fuzz.ir", &d1);
    ir_diag_free(&d1);
    if (!text1)
        return 0;

    char *text2 = parse_print(text1, strlen(text1), "printed.ir", &d2);
    if (!text2) {
        fprintf(stderr, "printed text does not parse:\n%s\n--- diagnostic:\n%s\n", text1,
                d2.out.buf ? d2.out.buf : "(none)");
        abort();
    }
    ir_diag_free(&d2);

    if (strcmp(text1, text2) != 0) {
        fprintf(stderr, "print(parse(print(parse(x)))) differs from print(parse(x)):\n"
                        "--- first print:\n%s\n--- second print:\n%s\n", text1, text2);
        abort();
    }
    free(text1);
    free(text2);
    return 0;
}
