/*
 * fuzz_parse.c - libFuzzer target: the text IR parser on arbitrary bytes.
 *
 * The input is handed to fe_parse exactly as libFuzzer gives it: not
 * NUL-terminated, so any read past `size` is caught by ASan.  Whatever the
 * bytes, the parser must return a graph or NULL with a diagnostic, never
 * crash, hang, leak or hit undefined behaviour.  A graph it does return has
 * been verified (parse.h promises it), so running the verifier again must
 * agree; a disagreement is a bug in one of them and aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "frontend/parse.h"
#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *src = (const char *)data;
    ir_diag d;
    ir_diag_init(&d, "fuzz.ir", src, size);
    ir_graph *g = fe_parse(src, size, "fuzz.ir", NULL, &d);
    if (g) {
        ir_diag vd;
        ir_diag_init(&vd, "fuzz.ir", src, size);
        if (!ir_verify(g, &vd)) {
            fprintf(stderr, "fe_parse returned a graph the verifier rejects:\n%s\n",
                    vd.out.buf ? vd.out.buf : "");
            abort();
        }
        ir_diag_free(&vd);
        ir_graph_free(g);
    } else if (d.nerr == 0) {
        fprintf(stderr, "fe_parse failed without reporting an error\n");
        abort();
    }
    ir_diag_free(&d);
    return 0;
}
