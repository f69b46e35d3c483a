/*
 * fuzz_npy.c - libFuzzer target: the NPY reader on arbitrary bytes.
 *
 * Each input is parsed twice, as a plain .npy and as a .bf16.npy (where
 * '<u2' data means bf16 bit patterns), since the two take different paths
 * through the dtype check.  A malformed file must be rejected with an error
 * in the diagnostic - never a crash, an over-read, a huge allocation driven
 * by a lying header, or a leak.  An accepted file must describe a tensor
 * whose bytes fit in the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ir/ir.h"
#include "runtime/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_one(const uint8_t *data, size_t size, bool bf16) {
    const char *name = bf16 ? "fuzz.bf16.npy" : "fuzz.npy";
    ir_diag d;
    ir_diag_init(&d, name, NULL, 0);
    fusec_tensor t = {0};
    fusec_status st = rt_npy_parse(data, size, name, bf16, &t, &d);
    if (st == FUSEC_OK) {
        if (t.rank < 0 || t.rank > FUSEC_MAX_RANK) {
            fprintf(stderr, "rt_npy_parse accepted a tensor of rank %d\n", t.rank);
            abort();
        }
        /* The data came from the input, so unless a dim is 0 its byte
         * count bounds every partial product of the shape. */
        bool empty = false;
        for (int i = 0; i < t.rank; i++) {
            if (t.shape[i] < 0) {
                fprintf(stderr, "rt_npy_parse accepted a negative dim\n");
                abort();
            }
            empty |= t.shape[i] == 0;
        }
        uint64_t bytes = ir_dtype_size(t.dtype);
        for (int i = 0; i < t.rank && !empty && bytes <= size; i++) {
            /* both factors are <= size here unless the check trips, so no overflow */
            if ((uint64_t)t.shape[i] > size)
                bytes = (uint64_t)size + 1;
            else
                bytes *= (uint64_t)t.shape[i];
        }
        if (!empty && bytes > size) {
            fprintf(stderr, "rt_npy_parse accepted more elements than %zu bytes hold\n", size);
            abort();
        }
        free(t.data);
    } else if (d.nerr == 0) {
        fprintf(stderr, "rt_npy_parse failed (status %d) without an error message\n", (int)st);
        abort();
    }
    ir_diag_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    parse_one(data, size, false);
    parse_one(data, size, true);
    return 0;
}
