/*
 * ir.h - fusec's shared vocabulary: dtypes, types, values, nodes, graphs, the
 * op table, diagnostics, the verifier and the printer.
 *
 * A graph is one function of the text IR: parameters, a list of nodes in
 * program order (each node defines exactly one value) and result values.
 * Everything a graph holds is allocated from its arena and freed with it.
 *
 * Every node is made by ir_build(), which checks arity, attributes, operand
 * dtypes and broadcasting and infers the result type through the op table,
 * so the parser, the tracer and the passes share one set of rules and one
 * set of messages.  This directory depends on nothing else in the tree.
 */
#ifndef FUSEC_IR_H
#define FUSEC_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fusec.h"

#define IR_MAX_RANK FUSEC_MAX_RANK

#if defined(__GNUC__)
#define IR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define IR_PRINTF(a, b)
#endif

/* Internal invariant check: a failure is a compiler bug, never user error. */
#define FC_ASSERT(c) ((c) ? (void)0 : ir_assert_fail(#c, __FILE__, __LINE__))
_Noreturn void ir_assert_fail(const char *expr, const char *file, int line);

/* ---- strings and arenas --------------------------------------------- */

typedef struct ir_str {
    char *buf;
    size_t len, cap;
    bool oom; /* an allocation failed; buf holds what fit */
} ir_str;

void ir_str_printf(ir_str *s, const char *fmt, ...) IR_PRINTF(2, 3);
void ir_str_vprintf(ir_str *s, const char *fmt, va_list ap);
void ir_str_putc(ir_str *s, char c);
void ir_str_puts(ir_str *s, const char *str);
char *ir_str_take(ir_str *s); /* returns buf (malloc'd, NUL-terminated), resets s */
void ir_str_free(ir_str *s);

typedef struct ir_arena_chunk ir_arena_chunk;
typedef struct ir_arena {
    ir_arena_chunk *head;
} ir_arena;

void *ir_arena_alloc(ir_arena *a, size_t size); /* zeroed, 16-byte aligned; NULL on OOM */
char *ir_arena_strdup(ir_arena *a, const char *s);
char *ir_arena_strndup(ir_arena *a, const char *s, size_t n);
void ir_arena_free(ir_arena *a);

/* ---- diagnostics ---------------------------------------------------- */

typedef struct ir_loc {
    int line, col; /* 1-based; line 0 = no source location */
} ir_loc;

/* Collects error messages.  With a source attached, an error at a location
 * prints as clang does:  FILE:LINE:COL: error: MSG, the line, a caret. */
typedef struct ir_diag {
    ir_str out;
    int nerr;
    const char *file; /* source name, or NULL */
    const char *src;  /* source text (not owned), or NULL */
    size_t srclen;
} ir_diag;

void ir_diag_init(ir_diag *d, const char *file, const char *src, size_t srclen);
void ir_error(ir_diag *d, ir_loc loc, const char *fmt, ...) IR_PRINTF(3, 4);
void ir_verror(ir_diag *d, ir_loc loc, const char *fmt, va_list ap);
void ir_diag_free(ir_diag *d);

/* ---- dtypes --------------------------------------------------------- */

typedef fusec_dtype ir_dtype;

const char *ir_dtype_name(ir_dtype dt);
bool ir_dtype_parse(const char *s, size_t n, ir_dtype *out);
size_t ir_dtype_size(ir_dtype dt);
bool ir_dtype_is_float(ir_dtype dt); /* f64 f32 f16 bf16 */
bool ir_dtype_is_int(ir_dtype dt);   /* i64 i32 i16 i8 u8 (not bool) */

/* f16/bf16 conversions; f32 -> half rounds to nearest even. */
float ir_f16_to_f32(uint16_t h);
uint16_t ir_f32_to_f16(float f);
float ir_bf16_to_f32(uint16_t h);
uint16_t ir_f32_to_bf16(float f);

/* Element access as double / int64, with the storage dtype's rounding. */
double ir_load_f(ir_dtype dt, const void *base, int64_t i);
int64_t ir_load_i(ir_dtype dt, const void *base, int64_t i);
void ir_store_f(ir_dtype dt, void *base, int64_t i, double v);
void ir_store_i(ir_dtype dt, void *base, int64_t i, int64_t v);

/* ---- scalar semantics of elementwise ops ---------------------------- */

/* One element: floats in .f (double), integers and bool in .i (int64). */
typedef union ir_scalar {
    double f;
    int64_t i;
} ir_scalar;

/* Round v (in dt's domain: .f for float dtypes, .i otherwise) exactly as
 * storing it as dt and loading it back would. */
ir_scalar ir_scalar_round(ir_dtype dt, ir_scalar v);
/* Convert v from dtype `from`'s domain to dtype `to` (the cast op). */
ir_scalar ir_scalar_cast(ir_dtype from, ir_dtype to, ir_scalar v);

struct ir_node;
/* The per-node constants of an elementwise op (attributes looked up once). */
typedef struct ir_ew {
    const struct ir_node *n;
    ir_dtype in_dtype;  /* the operands' dtype (where: the branches') */
    ir_dtype out_dtype;
    bool gelu_tanh, has_lo, has_hi;
    double lo, hi;
    ir_scalar fill; /* masked_fill's value in out_dtype's domain */
} ir_ew;

/* For every op of category IR_CAT_ELEMENTWISE (cast, where and masked_fill
 * included): set up e for node n, then compute one element from its
 * operand elements x[0..nin) (each in its operand's dtype domain) into *r
 * (in the result dtype's domain, NOT yet rounded to it: round with
 * ir_scalar_round).  The one place that defines what these ops compute; the
 * interpreter, the plan executor and constant folding all call it.  Fails
 * (reporting to d at n->loc) only for integer division or remainder by
 * zero. */
void ir_ew_init(ir_ew *e, const struct ir_node *n);
bool ir_ew_eval(const ir_ew *e, const ir_scalar *x, ir_scalar *r, struct ir_diag *d);

/* Neumaier-compensated summation, how every reference executor sums
 * floats.  The correction is only updated while the running sum is
 * finite, so inf and NaN come out as plain summation gives them. */
typedef struct ir_ksum {
    double s, c;
} ir_ksum;
void ir_ksum_add(ir_ksum *a, double x);
double ir_ksum_get(const ir_ksum *a);

/* ---- types ---------------------------------------------------------- */

typedef struct ir_type {
    ir_dtype dtype;
    int rank;
    int64_t dim[IR_MAX_RANK];
} ir_type;

int64_t ir_type_numel(const ir_type *t);
int64_t ir_type_bytes(const ir_type *t); /* numel x the dtype's size */
bool ir_type_eq(const ir_type *a, const ir_type *b);
void ir_type_print(ir_str *s, const ir_type *t); /* f32[2, 3] */
/* Broadcast a and b (NumPy rules) into *out (dtype untouched); false if they do not. */
bool ir_broadcast_shape(const ir_type *a, const ir_type *b, ir_type *out);
/* Normalize axis for a rank (negatives from the end); false if out of range. */
bool ir_norm_axis(int64_t axis, int rank, int *out);

/* ---- the op table --------------------------------------------------- */

typedef enum ir_category {
    IR_CAT_ELEMENTWISE,
    IR_CAT_BROADCAST,
    IR_CAT_INJECTIVE,
    IR_CAT_REDUCTION,
    IR_CAT_CONTRACTION,
    IR_CAT_COMPOSITE,
    IR_CAT_OPAQUE,
} ir_category;

/* The dtype class operand 0 must belong to. */
typedef enum ir_dtclass {
    IR_DT_ANY,     /* every dtype        */
    IR_DT_NUMERIC, /* every dtype but bool */
    IR_DT_FLOAT,   /* f64 f32 f16 bf16   */
    IR_DT_LOGICAL, /* bool and integers  */
    IR_DT_BOOL,    /* bool               */
} ir_dtclass;
bool ir_dtclass_has(ir_dtclass c, ir_dtype dt);
const char *ir_dtclass_desc(ir_dtclass c); /* "a float dtype", ... */

typedef enum ir_attr_kind {
    IR_AK_INT,
    IR_AK_FLOAT,
    IR_AK_BOOL,
    IR_AK_STR,
    IR_AK_DTYPE,
    IR_AK_INTS,
    IR_AK_FLOATS,
} ir_attr_kind;
const char *ir_attr_kind_name(ir_attr_kind k); /* "an integer", ... */

typedef enum ir_attr_presence {
    IR_AP_DEFAULT,  /* may be omitted; then takes the default below */
    IR_AP_OPTIONAL, /* may be omitted; then absent (ir_attr_has false) */
    IR_AP_REQUIRED, /* must be given */
} ir_attr_presence;

typedef struct ir_attr_spec {
    const char *name;
    ir_attr_kind kind;
    ir_attr_presence presence;
    int64_t i; /* default of INT / BOOL  */
    double f;  /* default of FLOAT       */
    const char *s;
    int n;     /* default of INTS        */
    const int64_t *ints;
} ir_attr_spec;

#define IR_NARGS_I64(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define A_INT(nm, d) {.name = nm, .kind = IR_AK_INT, .presence = IR_AP_DEFAULT, .i = (d)}
#define A_INT_REQ(nm) {.name = nm, .kind = IR_AK_INT, .presence = IR_AP_REQUIRED}
#define A_INT_OPT(nm) {.name = nm, .kind = IR_AK_INT, .presence = IR_AP_OPTIONAL}
#define A_BOOL(nm, d) {.name = nm, .kind = IR_AK_BOOL, .presence = IR_AP_DEFAULT, .i = (d)}
#define A_FLOAT(nm, d) {.name = nm, .kind = IR_AK_FLOAT, .presence = IR_AP_DEFAULT, .f = (d)}
#define A_FLOAT_REQ(nm) {.name = nm, .kind = IR_AK_FLOAT, .presence = IR_AP_REQUIRED}
#define A_FLOAT_OPT(nm) {.name = nm, .kind = IR_AK_FLOAT, .presence = IR_AP_OPTIONAL}
#define A_STR(nm, d) {.name = nm, .kind = IR_AK_STR, .presence = IR_AP_DEFAULT, .s = (d)}
#define A_DTYPE_REQ(nm) {.name = nm, .kind = IR_AK_DTYPE, .presence = IR_AP_REQUIRED}
#define A_INTS(nm, ...)                                                                      \
    {.name = nm, .kind = IR_AK_INTS, .presence = IR_AP_DEFAULT, .n = IR_NARGS_I64(__VA_ARGS__), \
     .ints = (const int64_t[]){__VA_ARGS__}}
#define A_INTS_REQ(nm) {.name = nm, .kind = IR_AK_INTS, .presence = IR_AP_REQUIRED}
#define A_INTS_OPT(nm) {.name = nm, .kind = IR_AK_INTS, .presence = IR_AP_OPTIONAL}
#define A_FLOATS_REQ(nm) {.name = nm, .kind = IR_AK_FLOATS, .presence = IR_AP_REQUIRED}

typedef enum ir_op {
#define OP(E, name, cat, lo, hi, dtc, infer, attrs) IR_OP_##E,
#include "ops.def"
#undef OP
    IR_OP_COUNT
} ir_op;

struct ir_node;
struct ir_diag;
typedef bool (*ir_infer_fn)(struct ir_node *n, struct ir_diag *d);

typedef struct ir_op_info {
    const char *name;
    ir_category category;
    int min_in, max_in; /* max_in -1 = variadic */
    ir_dtclass dtclass;
    ir_infer_fn infer;
    const ir_attr_spec *attrs;
    int nattrs;
} ir_op_info;

const ir_op_info *ir_op_get(ir_op op);
bool ir_op_lookup(const char *name, size_t n, ir_op *out);
/* Index of attribute `name` in op's spec, or -1. */
int ir_op_attr_index(ir_op op, const char *name);

/* ---- values, nodes, graphs ----------------------------------------- */

typedef enum ir_value_kind {
    IR_VAL_PARAM,   /* a graph input                                  */
    IR_VAL_NODE,    /* the result of a node                           */
    IR_VAL_LITERAL, /* a 0-d constant written inline: add(%x, 2.0)     */
} ir_value_kind;

typedef struct ir_value {
    ir_value_kind kind;
    int id;           /* unique in the graph */
    const char *name; /* without '%'; NULL = print as its id */
    ir_type type;
    struct ir_node *def; /* IR_VAL_NODE */
    int param_index;     /* IR_VAL_PARAM */
    /* IR_VAL_LITERAL: the value as written.  lit_is_int: written as an
     * integer (or true/false), exact in lit_i; lit_f always holds it too. */
    bool lit_is_int, lit_is_bool;
    int64_t lit_i;
    double lit_f;
    ir_loc loc;
} ir_value;

/* One attribute value on a node, in the slot of its spec. */
typedef struct ir_attr {
    bool set; /* given explicitly (else the spec's default, if any) */
    int64_t i;
    double f;
    const char *s;
    ir_dtype dt;
    int n;
    int64_t *ints;
    double *floats;
} ir_attr;

typedef struct ir_node {
    ir_op op;
    int nin;
    ir_value **in;
    ir_value *out;
    ir_attr *attrs; /* ir_op_get(op)->nattrs slots */
    ir_loc loc;
    struct ir_node *prev, *next;
} ir_node;

typedef struct ir_graph {
    ir_arena arena;
    const char *name; /* without '@' */
    int nparams, params_cap;
    ir_value **params;
    int nresults, results_cap;
    ir_value **results;
    ir_node *first, *last;
    ir_node *ip; /* ir_build links new nodes before ip; at the end when NULL */
    int next_id;
    ir_loc loc;
} ir_graph;

ir_graph *ir_graph_new(const char *name);
void ir_graph_free(ir_graph *g);
ir_value *ir_graph_add_param(ir_graph *g, const char *name, const ir_type *t, ir_loc loc);
/* A literal; its dtype is fixed by ir_build from the op's other operands. */
ir_value *ir_graph_literal_f(ir_graph *g, double v, ir_loc loc);
ir_value *ir_graph_literal_i(ir_graph *g, int64_t v, bool is_bool, ir_loc loc);
bool ir_graph_add_result(ir_graph *g, ir_value *v);
/* Graph editing for passes.  Replace every use of `old` (node operands and
 * graph results) by `repl`; unlink a node (its memory stays in the arena). */
void ir_replace_uses(ir_graph *g, ir_value *old, ir_value *repl);
void ir_node_remove(ir_graph *g, ir_node *n);

/* Can a number be stored in dt without changing it?  Floats take any number
 * (rounded like a store); integers need an integral value in range; bool
 * takes 0 and 1 (true and false). */
bool ir_value_fits(double v, ir_dtype dt);
/* The same for a literal value (exact for integers beyond 2^53). */
bool ir_literal_fits(const ir_value *v, ir_dtype dt);

/* Attributes handed to ir_build, by name. */
typedef struct ir_attr_init {
    const char *name;
    ir_attr_kind kind; /* the kind as written; ints are accepted for FLOAT(S) */
    ir_attr val;
    ir_loc loc;
} ir_attr_init;

/* Build a node at the end of g: checks operand count, attribute names and
 * kinds, operand dtypes, then infers the result type.  `declared` (may be
 * NULL) is the type written after ':' - required by ops with no operand,
 * checked against the inferred type otherwise.  Literal operands get their
 * dtype here.  On error: reports to d, returns NULL, g unchanged. */
ir_value *ir_build(ir_graph *g, ir_op op, ir_value *const *in, int nin, const ir_attr_init *attrs,
                   int nattrs, const ir_type *declared, ir_loc loc, ir_diag *d);

/* Attribute access on a built node (the default where not given).
 * Asking for a name the op does not have is a compiler bug. */
bool ir_attr_has(const ir_node *n, const char *name);
int64_t ir_attr_i(const ir_node *n, const char *name);
double ir_attr_f(const ir_node *n, const char *name);
const char *ir_attr_s(const ir_node *n, const char *name);
ir_dtype ir_attr_dt(const ir_node *n, const char *name);
const int64_t *ir_attr_ints(const ir_node *n, const char *name, int *count);
const double *ir_attr_floats(const ir_node *n, const char *name, int *count);

/* Printing: the canonical text of spec §3.  ir_value_ref prints %name. */
void ir_print_graph(ir_str *s, const ir_graph *g);
/* One node as in a graph's text, without indentation or newline. */
void ir_print_node(ir_str *s, const ir_node *n);
void ir_value_ref(ir_str *s, const ir_value *v);
/* Shortest decimal that reads back to exactly v ("inf", "-inf", "nan"). */
void ir_print_double(ir_str *s, double v);

/* Verifier: SSA order, arity, attributes, dtypes, broadcast rules, and each
 * node's stored type against re-inference.  Reports every problem to d. */
bool ir_verify(const ir_graph *g, ir_diag *d);

/* Short description of an operand for messages: "%x (f32[2, 3])". */
void ir_describe(ir_str *s, const ir_value *v);

#endif /* FUSEC_IR_H */
