/*
 * cuda_impl.h - private interface between the parts of the CUDA code
 * generator (codegen/cuda*.c).  Nothing outside codegen/ includes it.
 *
 * The generator works like the plan executor (runtime/plan_exec.c), but
 * symbolically: instead of evaluating a value at a concrete index it emits
 * C code that evaluates it at a *symbolic* index, where each coordinate is
 * an affine form over the kernel's index variables (cg_ix: a constant plus
 * terms coef * ((var / div) % mod)).  Movement ops map the form they are
 * asked for to their operand's form (transpose permutes coordinates, slice
 * scales and offsets one, reshape linearizes and splits again), so the code
 * that finally loads from a buffer knows its offset as a form and can tell
 * whether consecutive lanes read consecutive, aligned elements (a 16-byte
 * vector load) or whether a broadcast operand's offset involves no
 * division at all.  Division and remainder of a form by a constant are
 * simplified with interval arithmetic over the variables' ranges (see
 * cuda_index.c); what cannot be simplified is computed into a new variable.
 *
 * Files: cuda.c (entry, preamble, shared pieces), cuda_emit.c (context,
 * cache, dtypes), cuda_index.c (forms, predicates), cuda_eval.c (values at
 * an index), cuda_pointwise.c, cuda_reduce.c, cuda_library.c (the kinds).
 *
 * Evaluation happens for several lanes at once (cg_at): the elements a
 * thread handles together, one per vector lane.  Each lane has its own
 * coordinates and its own predicate (a C bool variable, 0 = true): pad and
 * concat read their operands only where the coordinates are in range
 * (validity predicates, which also keep every address in bounds), and
 * where / masked_fill / triu read the branch they need (optimization
 * predicates, scalar accesses only).  Code is emitted straight-line; every
 * evaluated (value, coordinates, predicate) is remembered in a scoped cache,
 * so a value used twice at the same index is computed once, and a
 * persistent row kernel that evaluates its row once per reduction reads
 * memory only the first time.
 */
#ifndef FUSEC_CODEGEN_CUDA_IMPL_H
#define FUSEC_CODEGEN_CUDA_IMPL_H

#include "codegen/cuda.h"

enum {
    CG_MAX_LANES = 8,  /* elements per thread-vector (16 bytes of f16) */
    CG_IX_TERMS = 10,  /* terms in one affine form before it is materialized */
    CG_BLOCK = 256,    /* threads per block of elementwise kernels */
};

/* One term of an index form: coef * ((var / div) % mod); mod 0 = no mod. */
typedef struct cg_term {
    int var;
    int64_t coef, div, mod;
} cg_term;

/* An index form: c + sum of terms (kept sorted by var, div, mod). */
typedef struct cg_ix {
    int n;
    int64_t c;
    cg_term t[CG_IX_TERMS];
} cg_ix;

/* An index variable of the emitted code, with its value range. */
typedef struct cg_var {
    const char *name;
    int64_t lo, hi;
} cg_var;

/* Where a value is evaluated: nl lanes, each with coordinates of `rank`
 * and predicates (ids from cg_pred_and; 0 = always true).  `pred` is the
 * full condition of the lane, `vpred` its validity part (the conditions
 * that keep addresses in bounds). */
typedef struct cg_at {
    int nl, rank;
    int pred[CG_MAX_LANES], vpred[CG_MAX_LANES];
    cg_ix ix[CG_MAX_LANES][IR_MAX_RANK];
} cg_at;

/* A remembered evaluation (or predicate, or materialized form). */
typedef struct cg_entry {
    uint64_t hash;
    char *key;
    int scope;
    int nl;
    const char *names[CG_MAX_LANES];
    int ival; /* predicate id / variable id for those kinds */
} cg_entry;

typedef struct cg {
    const plan *p;
    const plan_kernel *k;
    ir_diag *d;
    bool ok;       /* false once an error is reported */
    ir_arena mem;  /* names, keys and forms of this generation */
    ir_str *out;   /* where cg_line writes */
    int indent;
    bool idx64;    /* idx_t is long long (some offset exceeds int32) */
    int vec;       /* lanes of the entry point being emitted (1 = scalar) */
    int counter;   /* unique suffix of emitted names */
    cg_var *vars;
    int nvars, cvars;
    const char **preds; /* predicate id -> C name ("true" for 0) */
    int npreds, cpreds;
    cg_entry *ent;
    int nent, cent, scope;
    int nvals;          /* the graph's value ids */
    int *body_of;       /* value id -> index in the kernel body, or -1 */
    bool *has_load;     /* by body index: the node's body subtree reads memory */
    const char **red;   /* by body index: a reduction's result, once computed */
    bool *const_done;   /* by body index: a constant's table was emitted */
    const ir_value *lib;  /* a library kernel's library result ... */
    const char *lib_expr; /* ... and its value at the element being finished */
    ir_str consts;      /* namespace-scope tables (constant op) */
} cg;

/* ---- context, errors, emission, the cache (cuda_emit.c) ---- */
bool cg_init(cg *g, const plan *p, int k, ir_diag *d);
void cg_free(cg *g);
/* Forget every variable, predicate and cached value: a new entry point. */
void cg_reset(cg *g);
bool cg_fail(cg *g, const ir_node *n, const char *fmt, ...) IR_PRINTF(3, 4);
void cg_line(cg *g, const char *fmt, ...) IR_PRINTF(2, 3);
char *cg_strf(cg *g, const char *fmt, ...) IR_PRINTF(2, 3); /* arena-allocated */
const char *cg_fresh(cg *g, const char *base);                /* base_<n> */
void cg_scope_push(cg *g);
void cg_scope_pop(cg *g);
/* The entry remembered under key in the open scopes, or NULL; a new one. */
cg_entry *cg_cache_find(cg *g, const char *key);
cg_entry *cg_cache_add(cg *g, const char *key);
/* Contractions and composites: what only a library kernel computes. */
bool cg_is_library_op(const ir_node *n);

/* ---- dtypes in the emitted code ---- */
const char *cg_ctype(ir_dtype dt);  /* compute type: float, double, long long */
const char *cg_stype(ir_dtype dt);  /* storage element type of a pointer */
bool cg_is_f(ir_dtype dt);          /* computed in float or double */
/* expr (compute type of dt's domain) rounded to dt as a store would. */
char *cg_round(cg *g, ir_dtype dt, const char *expr);
/* A number as a literal of dt's compute type, after rounding to dt. */
char *cg_lit_f(cg *g, ir_dtype dt, double v);
char *cg_lit_i(cg *g, ir_dtype dt, int64_t v);
/* A double (f64 compute type when dt is f64, else float) / int64 literal
 * of exactly v. */
char *cg_lit_double(cg *g, ir_dtype dt, double v);
char *cg_lit_int64(cg *g, int64_t v);
/* Convert expr of compute type of `from` to the compute value of `to`
 * (the cast op: ir_scalar_cast). */
char *cg_cast(cg *g, ir_dtype from, ir_dtype to, const char *expr);
/* Scalar load / store expressions at an element offset. */
char *cg_ld(cg *g, ir_dtype dt, const char *ptr, const char *off);
void cg_st(cg *g, ir_dtype dt, const char *ptr, const char *off, const char *val);
/* A compute value converted to dt's storage type. */
char *cg_st_conv(cg *g, ir_dtype dt, const char *x);

/* ---- index forms and predicates (cuda_index.c) ---- */
int cg_var_new(cg *g, const char *name, int64_t lo, int64_t hi);
cg_ix cg_ixc(int64_t c);
cg_ix cg_ixv(int var, int64_t coef);
void cg_ix_add(cg *g, cg_ix *a, const cg_ix *b);
void cg_ix_scale(cg *g, cg_ix *a, int64_t k);
cg_ix cg_ix_div(cg *g, const cg_ix *a, int64_t s);
cg_ix cg_ix_mod(cg *g, const cg_ix *a, int64_t m);
void cg_ix_range(const cg *g, const cg_ix *a, int64_t *lo, int64_t *hi);
bool cg_ix_eq(const cg_ix *a, const cg_ix *b);
char *cg_ix_str(cg *g, const cg_ix *a);
/* A form computed into a variable (reused while in scope). */
cg_ix cg_ix_materialize(cg *g, const cg_ix *a);
/* Coordinates of the linear index `lin` over dims[0..n) (row-major). */
void cg_ix_split(cg *g, const cg_ix *lin, const int64_t *dims, int n, cg_ix *out);
/* The row-major linear offset of coordinates over a shape. */
cg_ix cg_ix_linear(cg *g, const cg_ix *comps, const int64_t *dims, int n);

/* ---- predicates ---- */
/* parent && cond; cond "1" keeps parent.  Returns a predicate id. */
int cg_pred_and(cg *g, int parent, const char *cond);
const char *cg_pred_name(const cg *g, int id);

/* ---- evaluation (cuda_eval.c) ---- */
cg_at *cg_at_new(cg *g, int nl, int rank); /* zeroed; freed by the caller (free) */
/* The value of v at `at`, one C expression per lane (variables or literals
 * of v's compute type).  False after an error (reported). */
bool cg_eval(cg *g, const ir_value *v, const cg_at *at, const char **names);
/* Store names[] (compute type of buffer b's dtype) at lanes whose element
 * offsets are off[lane]; vectorized when they are consecutive and aligned
 * and the lanes' validity predicate is shared. */
void cg_store(cg *g, int b, const cg_at *at, const cg_ix *off, const char **names);
/* The buffer id of v if the running kernel reads it from memory, else -1. */
int cg_input_buf(const cg *g, const ir_value *v);
/* The body index of a node of the kernel, or -1. */
int cg_body_index(const cg *g, const ir_value *v);

/* ---- the pieces of a translation unit (cuda.c) ---- */
void cg_preamble(ir_str *s, bool idx64);
void cg_header(cg *g, ir_str *s, const char *what);
void cg_params(cg *g, ir_str *s, const int *bufs, int nbufs, int nscratch);
/* If ok (and g->ok), append to ks the entry point `name` (launch bounds
 * `threads`, parameters from cg_params) whose body is *body; free *body
 * either way.  Returns whether the kernel was emitted. */
bool cg_kernel_entry(cg *g, ir_str *ks, const char *name, int threads, const int *bufs, int nbufs,
                     int nscratch, ir_str *body, bool ok);
/* The whole translation unit: preamble, header comment (`what` says how
 * the kernel is organised), constant tables, then `kernels`.  malloc'd. */
char *cg_assemble(cg *g, const char *what, const ir_str *kernels);
/* The plan kernel's name as a C identifier, plus suffix.  malloc'd. */
char *cg_kernel_name(cg *g, const char *suffix);

/* ---- the kernel kinds ---- */
bool cg_gen_pointwise(cg *g, cg_cuda_kernel *out);
bool cg_gen_reduce(cg *g, cg_cuda_kernel *out);
bool cg_gen_library(cg *g, cg_cuda_kernel *out);

/* Shared launch helpers. */
unsigned cg_clamp_grid(int64_t blocks, unsigned limit);
int cg_vec_width(const cg *g, const int *bufs, int nbufs);
bool cg_fits32(const cg *g);
char *cg_strdup(const char *s);

#endif
