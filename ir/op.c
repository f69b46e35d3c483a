/*
 * op.c - the op table, expanded from ops.def, and lookups over it.
 *
 * The table is the single source of truth for each op's name, category,
 * operand count, operand-0 dtype class, shape rule and attributes.  Lookup by
 * name is a linear scan: there are fewer than a hundred ops and the parser
 * looks each op name up once.
 */
#include <string.h>

#include "ir/ir.h"

/* ATTRS(...) expands to the two trailing fields of ir_op_info. */
#define ATTRS(...)                                                  \
    (const ir_attr_spec[]){__VA_ARGS__},                            \
        (int)(sizeof((const ir_attr_spec[]){__VA_ARGS__}) / sizeof(ir_attr_spec))
#define NOATTRS NULL, 0

#define OP(E, nm, cat, lo, hi, dtc, inf, attrs) bool inf(ir_node *n, ir_diag *d);
#include "ir/ops.def"
#undef OP

static const ir_op_info op_table[IR_OP_COUNT] = {
#define OP(E, nm, cat, lo, hi, dtc, inf, attrs) \
    [IR_OP_##E] = {nm, IR_CAT_##cat, lo, hi, IR_DT_##dtc, inf, attrs},
#include "ir/ops.def"
#undef OP
};

const ir_op_info *ir_op_get(ir_op op) {
    FC_ASSERT((unsigned)op < IR_OP_COUNT);
    return &op_table[op];
}

bool ir_op_lookup(const char *name, size_t n, ir_op *out) {
    for (int i = 0; i < IR_OP_COUNT; i++) {
        if (strlen(op_table[i].name) == n && memcmp(op_table[i].name, name, n) == 0) {
            *out = (ir_op)i;
            return true;
        }
    }
    return false;
}

int ir_op_attr_index(ir_op op, const char *name) {
    const ir_op_info *info = ir_op_get(op);
    for (int i = 0; i < info->nattrs; i++)
        if (strcmp(info->attrs[i].name, name) == 0) return i;
    return -1;
}

bool ir_dtclass_has(ir_dtclass c, ir_dtype dt) {
    switch (c) {
    case IR_DT_ANY: return true;
    case IR_DT_NUMERIC: return dt != FUSEC_DTYPE_BOOL;
    case IR_DT_FLOAT: return ir_dtype_is_float(dt);
    case IR_DT_LOGICAL: return dt == FUSEC_DTYPE_BOOL || ir_dtype_is_int(dt);
    case IR_DT_BOOL: return dt == FUSEC_DTYPE_BOOL;
    }
    return false;
}

const char *ir_dtclass_desc(ir_dtclass c) {
    switch (c) {
    case IR_DT_ANY: return "any dtype";
    case IR_DT_NUMERIC: return "a numeric dtype (not bool)";
    case IR_DT_FLOAT: return "a float dtype (f64, f32, f16, bf16)";
    case IR_DT_LOGICAL: return "bool or an integer dtype";
    case IR_DT_BOOL: return "bool";
    }
    return "?";
}

const char *ir_attr_kind_name(ir_attr_kind k) {
    switch (k) {
    case IR_AK_INT: return "an integer";
    case IR_AK_FLOAT: return "a number";
    case IR_AK_BOOL: return "a boolean";
    case IR_AK_STR: return "a string";
    case IR_AK_DTYPE: return "a dtype";
    case IR_AK_INTS: return "a list of integers";
    case IR_AK_FLOATS: return "a list of numbers";
    }
    return "?";
}
