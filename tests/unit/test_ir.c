/*
 * test_ir.c - unit tests of ir/: dtype conversions, ir_build's checks and
 * inference, the printer, and the verifier.
 */
#include <math.h>

#include "ir/ir.h"
#include "test.h"

static ir_type ty(ir_dtype dt, int rank, const int64_t *dims) {
    ir_type t = {.dtype = dt, .rank = rank};
    for (int i = 0; i < rank; i++) t.dim[i] = dims[i];
    return t;
}

TEST(f16_conversions) {
    /* values checked against numpy.float16 */
    CHECK_EQ_INT(ir_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(ir_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_INT(ir_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_INT(ir_f32_to_f16(65520.0f), 0x7c00);     /* rounds to inf */
    CHECK_EQ_INT(ir_f32_to_f16(65519.0f), 0x7bff);
    CHECK_EQ_INT(ir_f32_to_f16(5.9604645e-08f), 0x0001); /* smallest subnormal */
    CHECK_EQ_INT(ir_f32_to_f16(2.9802322e-08f), 0x0000); /* half of it: ties to even */
    CHECK_EQ_INT(ir_f32_to_f16(1.0009765625f), 0x3c01);
    CHECK_EQ_INT(ir_f32_to_f16(1.00048828125f), 0x3c00); /* tie -> even */
    CHECK_EQ_INT(ir_f32_to_f16(1.00146484375f), 0x3c02); /* tie -> even (up) */
    CHECK_EQ_INT(ir_f32_to_f16(-0.0f), 0x8000);
    CHECK_EQ_INT(ir_f32_to_f16(INFINITY), 0x7c00);
    CHECK(ir_f32_to_f16(NAN) == 0x7e00);
    CHECK(ir_f16_to_f32(0x3c00) == 1.0f);
    CHECK(ir_f16_to_f32(0x0001) == 5.9604645e-08f);
    CHECK(ir_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(isinf(ir_f16_to_f32(0xfc00)) && ir_f16_to_f32(0xfc00) < 0);
    CHECK(isnan(ir_f16_to_f32(0x7e00)));
    for (uint32_t h = 0; h < 0x10000; h++) { /* every finite half round-trips */
        float f = ir_f16_to_f32((uint16_t)h);
        if (!isnan(f)) CHECK_EQ_INT(ir_f32_to_f16(f), h);
    }
}

TEST(bf16_conversions) {
    CHECK_EQ_INT(ir_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(ir_f32_to_bf16(1.00390625f), 0x3f80); /* tie -> even */
    CHECK_EQ_INT(ir_f32_to_bf16(1.01171875f), 0x3f82); /* tie -> even (up) */
    CHECK_EQ_INT(ir_f32_to_bf16(3.4028235e38f), 0x7f80); /* max f32 rounds to inf */
    CHECK_EQ_INT(ir_f32_to_bf16(3.3895314e38f), 0x7f7f); /* max bf16 */
    CHECK(isnan(ir_bf16_to_f32(ir_f32_to_bf16(NAN))));
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = ir_bf16_to_f32((uint16_t)h);
        if (!isnan(f)) CHECK_EQ_INT(ir_f32_to_bf16(f), h);
    }
}

TEST(store_load) {
    unsigned char buf[16];
    ir_store_f(FUSEC_DTYPE_I8, buf, 0, 300.7); /* trunc to 300, wraps to 44 */
    CHECK_EQ_INT(ir_load_i(FUSEC_DTYPE_I8, buf, 0), 44);
    ir_store_f(FUSEC_DTYPE_I32, buf, 0, NAN);
    CHECK_EQ_INT(ir_load_i(FUSEC_DTYPE_I32, buf, 0), 0);
    ir_store_f(FUSEC_DTYPE_BOOL, buf, 0, NAN);
    CHECK_EQ_INT(ir_load_i(FUSEC_DTYPE_BOOL, buf, 0), 1);
    ir_store_f(FUSEC_DTYPE_F16, buf, 1, 0.1);
    CHECK(ir_load_f(FUSEC_DTYPE_F16, buf, 1) == (double)ir_f16_to_f32(0x2e66));
    ir_store_i(FUSEC_DTYPE_I64, buf, 1, INT64_MIN);
    CHECK(ir_load_i(FUSEC_DTYPE_I64, buf, 1) == INT64_MIN);
}

TEST(build_and_print) {
    ir_graph *g = ir_graph_new("f");
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    ir_type a = ty(FUSEC_DTYPE_F32, 2, (int64_t[]){2, 3}), b = ty(FUSEC_DTYPE_F32, 1, (int64_t[]){3});
    ir_value *x = ir_graph_add_param(g, "x", &a, (ir_loc){0});
    ir_value *y = ir_graph_add_param(g, "y", &b, (ir_loc){0});
    ir_value *s = ir_build(g, IR_OP_ADD, (ir_value *[]){x, y}, 2, NULL, 0, NULL, (ir_loc){0}, &d);
    CHECK(s && s->type.rank == 2 && s->type.dim[1] == 3);
    ir_value *lit = ir_graph_literal_f(g, 0.125, (ir_loc){0});
    ir_value *m = ir_build(g, IR_OP_MUL, (ir_value *[]){s, lit}, 2, NULL, 0, NULL, (ir_loc){0}, &d);
    CHECK(m && m->def->in[1]->type.dtype == FUSEC_DTYPE_F32);
    ir_attr_init at[] = {{.name = "axes", .kind = IR_AK_INTS, .val = {.n = 1, .ints = (int64_t[]){-1}}},
                         {.name = "keepdim", .kind = IR_AK_BOOL, .val = {.i = 0}}};
    ir_value *r = ir_build(g, IR_OP_SUM, (ir_value *[]){m}, 1, at, 2, NULL, (ir_loc){0}, &d);
    CHECK(r && r->type.rank == 1 && r->type.dim[0] == 2);
    CHECK(ir_graph_add_result(g, r));
    CHECK_EQ_INT(d.nerr, 0);
    ir_str out = {0};
    ir_print_graph(&out, g);
    CHECK_STR(out.buf, "func @f(%x: f32[2, 3], %y: f32[3]) -> f32[2] {\n"
                       "  %2 = add(%x, %y) : f32[2, 3]\n"
                       "  %4 = mul(%2, 0.125) : f32[2, 3]\n"
                       "  %6 = sum(%4) {axes = [-1]} : f32[2]\n"
                       "  return %6\n"
                       "}\n");
    CHECK(ir_verify(g, &d));
    ir_str_free(&out);
    ir_diag_free(&d);
    ir_graph_free(g);
}

/* Build op on operands and return the diagnostic text (or "" on success). */
static char *build_err(ir_graph *g, ir_op op, ir_value **in, int nin, const ir_attr_init *at, int nat,
                       const ir_type *decl) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    ir_value *v = ir_build(g, op, in, nin, at, nat, decl, (ir_loc){0}, &d);
    char *msg = ir_str_take(&d.out);
    CHECK((v == NULL) == (msg[0] != 0));
    return msg;
}

#define CHECK_ERR(expr, want)                \
    do {                                     \
        char *m_ = (expr);                   \
        CHECK_STR(m_, want);                 \
        free(m_);                            \
    } while (0)

TEST(build_errors) {
    ir_graph *g = ir_graph_new("f");
    ir_type a = ty(FUSEC_DTYPE_F32, 2, (int64_t[]){2, 3}), b = ty(FUSEC_DTYPE_F32, 1, (int64_t[]){4});
    ir_type c = ty(FUSEC_DTYPE_I32, 1, (int64_t[]){3});
    ir_value *x = ir_graph_add_param(g, "x", &a, (ir_loc){0});
    ir_value *y = ir_graph_add_param(g, "y", &b, (ir_loc){0});
    ir_value *z = ir_graph_add_param(g, "z", &c, (ir_loc){0});
    CHECK_ERR(build_err(g, IR_OP_ADD, (ir_value *[]){x, y}, 2, NULL, 0, NULL),
              "error: add: cannot broadcast %x (f32[2, 3]) with %y (f32[4])\n");
    CHECK_ERR(build_err(g, IR_OP_ADD, (ir_value *[]){x, z}, 2, NULL, 0, NULL),
              "error: add: operands must share a dtype, got %x (f32[2, 3]) and %z (i32[3]) (insert a cast)\n");
    CHECK_ERR(build_err(g, IR_OP_EXP, (ir_value *[]){z}, 1, NULL, 0, NULL),
              "error: exp: expected a float dtype (f64, f32, f16, bf16), got %z (i32[3])\n");
    CHECK_ERR(build_err(g, IR_OP_ADD, (ir_value *[]){x}, 1, NULL, 0, NULL), "error: add: expected 2 operands, got 1\n");
    ir_attr_init bad[] = {{.name = "axis", .kind = IR_AK_INT, .val = {.i = 1}}};
    CHECK_ERR(build_err(g, IR_OP_SUM, (ir_value *[]){x}, 1, bad, 1, NULL),
              "error: sum: unknown attribute 'axis' (expected one of: axes, keepdim)\n");
    CHECK_ERR(build_err(g, IR_OP_RESHAPE, (ir_value *[]){x}, 1, NULL, 0, NULL),
              "error: reshape: missing required attribute 'shape' (a list of integers)\n");
    ir_attr_init ax[] = {{.name = "axis", .kind = IR_AK_INT, .val = {.i = 2}}};
    CHECK_ERR(build_err(g, IR_OP_SOFTMAX, (ir_value *[]){x}, 1, ax, 1, NULL),
              "error: softmax: axis = 2 is out of range for rank 2 (expected -2 to 1)\n");
    ir_type wrong = ty(FUSEC_DTYPE_F32, 1, (int64_t[]){6});
    CHECK_ERR(build_err(g, IR_OP_NEG, (ir_value *[]){x}, 1, NULL, 0, &wrong),
              "error: neg: declared result type f32[6] does not match the inferred type f32[2, 3]\n");
    ir_value *half = ir_graph_literal_f(g, 0.5, (ir_loc){0});
    CHECK_ERR(build_err(g, IR_OP_MUL, (ir_value *[]){z, half}, 2, NULL, 0, NULL),
              "error: mul: literal 0.5 cannot be represented in i32\n");
    ir_attr_init val[] = {{.name = "value", .kind = IR_AK_FLOAT, .val = {.f = 1}}};
    CHECK_ERR(build_err(g, IR_OP_FULL, NULL, 0, val, 1, NULL),
              "error: full: the result type is required: write 'full(...) {...} : f32[...]'\n");
    CHECK_EQ_INT(g->first == NULL, 1); /* nothing was linked */
    ir_graph_free(g);
}

TEST(verify_catches_use_before_def) {
    ir_graph *g = ir_graph_new("f");
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    ir_type a = ty(FUSEC_DTYPE_F32, 1, (int64_t[]){4});
    ir_value *x = ir_graph_add_param(g, "x", &a, (ir_loc){0});
    ir_value *e = ir_build(g, IR_OP_EXP, (ir_value *[]){x}, 1, NULL, 0, NULL, (ir_loc){0}, &d);
    ir_value *t = ir_build(g, IR_OP_TANH, (ir_value *[]){e}, 1, NULL, 0, NULL, (ir_loc){0}, &d);
    ir_graph_add_result(g, t);
    CHECK(ir_verify(g, &d));
    /* swap the two nodes: tanh now uses exp's result before it is defined */
    ir_node *n1 = g->first, *n2 = g->last;
    g->first = n2, g->last = n1;
    n2->prev = NULL, n2->next = n1, n1->prev = n2, n1->next = NULL;
    CHECK(!ir_verify(g, &d));
    CHECK(strstr(d.out.buf, "before its definition") != NULL);
    /* a stored result type that its operands do not give */
    g->first = n1, g->last = n2;
    n1->prev = NULL, n1->next = n2, n2->prev = n1, n2->next = NULL;
    ir_diag_free(&d);
    ir_diag_init(&d, NULL, NULL, 0);
    t->type.dim[0] = 5;
    CHECK(!ir_verify(g, &d));
    CHECK(strstr(d.out.buf, "result has type f32[5] but its operands give f32[4]") != NULL);
    ir_diag_free(&d);
    ir_graph_free(g);
}

TEST(every_op_has_a_rule) {
    for (int op = 0; op < IR_OP_COUNT; op++) {
        const ir_op_info *info = ir_op_get((ir_op)op);
        CHECK(info->name && info->infer);
        ir_op back;
        CHECK(ir_op_lookup(info->name, strlen(info->name), &back) && back == (ir_op)op);
    }
}

TEST_MAIN(f16_conversions, bf16_conversions, store_load, build_and_print, build_errors,
          verify_catches_use_before_def, every_op_has_a_rule)
