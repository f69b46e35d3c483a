/*
 * embed.c - using fusec from C: trace a graph, compile it, run it.
 *
 * The graph is a tiny classifier head,
 *
 *     probs = softmax(relu(x @ w^T + b) * 0.5, axis -1)
 *
 * traced with one builder call per op, printed as text IR, compiled for the
 * reference interpreter and run on host data.  It then shows how misuse is
 * reported: a builder given operands whose shapes do not fit returns NULL,
 * and the graph keeps a message naming the op and the operands.
 *
 * Build against an installed fusec with either of
 *     cc embed.c $(pkg-config --cflags --libs fusec) -o embed
 *     find_package(fusec) + target_link_libraries(embed PRIVATE fusec::fusec)
 * Exits 0 when everything behaved as expected, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fusec.h"

/* Report a failed call with its message, free the message, and fail. */
static int fail(const char *what, fusec_status st, char *msg) {
    fprintf(stderr, "embed: %s failed: %s\n%s\n", what, fusec_status_string(st),
            msg ? msg : "");
    fusec_free(msg);
    return 1;
}

static int run_classifier(void) {
    enum { N = 2, IN = 3, OUT = 4 };
    const int64_t x_shape[] = {N, IN}, w_shape[] = {OUT, IN}, b_shape[] = {OUT};

    /* 1. Trace. Builders chain: a NULL operand (after an error) yields NULL,
     *    so one check of fusec_graph_error at the end covers every call. */
    fusec_graph *g = fusec_graph_create("classifier");
    if (!g)
        return fail("fusec_graph_create", FUSEC_ERR_NOMEM, NULL);
    fusec_value *x = fusec_input(g, "x", FUSEC_DTYPE_F32, 2, x_shape);
    fusec_value *w = fusec_input(g, "w", FUSEC_DTYPE_F32, 2, w_shape);
    fusec_value *b = fusec_input(g, "b", FUSEC_DTYPE_F32, 1, b_shape);
    fusec_value *h = fusec_relu(g, fusec_linear(g, x, w, b));
    fusec_value *s = fusec_mul(g, h, fusec_scalar(g, 0.5, FUSEC_DTYPE_F32));
    fusec_value *p = fusec_softmax(g, s, -1);
    fusec_status st = fusec_output(g, p);
    if (st != FUSEC_OK || fusec_graph_error(g)) {
        fprintf(stderr, "embed: tracing failed: %s\n", fusec_graph_error(g));
        fusec_graph_destroy(g);
        return 1;
    }

    /* 2. Look at it: the same text `fusec print` would show. */
    char *text = fusec_graph_print(g);
    if (!text) {
        fusec_graph_destroy(g);
        return fail("fusec_graph_print", FUSEC_ERR_NOMEM, NULL);
    }
    printf("%s\n", text);
    fusec_free(text);

    /* 3. Compile for the reference interpreter; the graph may go now. */
    fusec_module *m = NULL;
    char *err = NULL;
    st = fusec_compile(g, FUSEC_BACKEND_INTERP, &m, &err);
    fusec_graph_destroy(g);
    if (st != FUSEC_OK)
        return fail("fusec_compile", st, err);

    /* 4. Run on host tensors; outputs are allocated by the call. */
    float xd[N * IN] = {1.0f, -2.0f, 0.5f, 0.0f, 3.0f, -1.0f};
    float wd[OUT * IN] = {0.1f, 0.2f, 0.3f, -0.4f, 0.5f, 0.6f,
                          0.7f, -0.8f, 0.9f, 1.0f, 1.1f, -1.2f};
    float bd[OUT] = {0.0f, 0.1f, -0.1f, 0.2f};
    fusec_tensor in[3] = {
        {.dtype = FUSEC_DTYPE_F32, .rank = 2, .shape = {N, IN}, .data = xd},
        {.dtype = FUSEC_DTYPE_F32, .rank = 2, .shape = {OUT, IN}, .data = wd},
        {.dtype = FUSEC_DTYPE_F32, .rank = 1, .shape = {OUT}, .data = bd},
    };
    fusec_tensor out[1];
    st = fusec_module_run(m, in, 3, out, 1, &err);
    fusec_module_destroy(m);
    if (st != FUSEC_OK)
        return fail("fusec_module_run", st, err);

    int bad = out[0].dtype != FUSEC_DTYPE_F32 || out[0].rank != 2 || out[0].shape[0] != N ||
              out[0].shape[1] != OUT;
    const float *pd = out[0].data;
    for (int i = 0; i < N && !bad; i++) {
        float row = 0.0f;
        printf("probs[%d] =", i);
        for (int j = 0; j < OUT; j++) {
            printf(" %.6f", pd[i * OUT + j]);
            row += pd[i * OUT + j];
        }
        printf("   (sum %.6f)\n", row);
        bad |= row < 0.999f || row > 1.001f; /* a softmax row sums to 1 */
    }
    fusec_free(out[0].data);
    if (bad)
        fprintf(stderr, "embed: unexpected output\n");
    return bad;
}

/* Misuse is data, not a crash: matmul of [2, 3] by [2, 3] must be refused. */
static int show_error(void) {
    const int64_t shape[] = {2, 3};
    fusec_graph *g = fusec_graph_create("bad");
    if (!g)
        return fail("fusec_graph_create", FUSEC_ERR_NOMEM, NULL);
    fusec_value *a = fusec_input(g, "a", FUSEC_DTYPE_F32, 2, shape);
    fusec_value *c = fusec_input(g, "c", FUSEC_DTYPE_F32, 2, shape);
    fusec_value *r = fusec_matmul(g, a, c);
    const char *msg = fusec_graph_error(g);
    int bad = r != NULL || msg == NULL;
    printf("expected error: %s\n", msg ? msg : "(none)");
    fusec_graph_destroy(g);
    if (bad)
        fprintf(stderr, "embed: a bad matmul was not reported\n");
    return bad;
}

int main(void) {
    printf("fusec %s\n", fusec_version());
    int rc = run_classifier();
    rc |= show_error();
    return rc ? 1 : 0;
}
