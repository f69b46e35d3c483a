/*
 * fusec.h - the one public header of fusec, a graph-capture and kernel-fusion
 * compiler.
 *
 * A fusec_graph is built either by tracing (one builder call per op, below) or
 * by parsing the text IR (docs/ir.md).  A graph is compiled into a
 * fusec_module for one backend and run on host tensors.
 *
 * Errors.  Calls that can fail return a fusec_status.  Builders return a
 * fusec_value, or NULL on misuse; the graph then keeps the first error
 * (fusec_graph_error) and every later builder given a NULL operand returns
 * NULL without overwriting it, so a whole model can be traced and checked
 * once at the end.  No call aborts or exits on bad input.
 *
 * Ownership.  fusec_graph_create / fusec_graph_parse pair with
 * fusec_graph_destroy; a graph owns its values, attributes and strings.
 * fusec_compile pairs with fusec_module_destroy.  Strings returned as char*
 * are owned by the caller and freed with fusec_free; strings returned as
 * const char* are owned by the handle and live until its next call.
 *
 * Threads.  A fusec_graph is not thread-safe: use one thread at a time per
 * graph.  Distinct graphs may be used from distinct threads at once.
 * A fusec_module is immutable after fusec_compile; fusec_module_run may be
 * called from several threads at once.
 */
#ifndef FUSEC_H
#define FUSEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FUSEC_BUILD) && defined(__GNUC__)
#define FUSEC_API __attribute__((visibility("default")))
#else
#define FUSEC_API
#endif

#define FUSEC_VERSION_MAJOR 0
#define FUSEC_VERSION_MINOR 1
#define FUSEC_VERSION_PATCH 0
#define FUSEC_VERSION_STRING "0.1.0"

/* Status codes.  Append-only; values are part of the ABI. */
typedef enum fusec_status {
    FUSEC_OK = 0,
    FUSEC_ERR_INVALID = 1,     /* bad argument or ill-formed graph           */
    FUSEC_ERR_PARSE = 2,       /* text IR could not be parsed or verified    */
    FUSEC_ERR_IO = 3,          /* a file could not be read or written        */
    FUSEC_ERR_UNSUPPORTED = 4, /* valid, but not supported (yet)             */
    FUSEC_ERR_RUNTIME = 5,     /* failed while running (e.g. index range)    */
    FUSEC_ERR_NOMEM = 6,       /* out of memory                              */
    FUSEC_ERR_BACKEND = 7,     /* a backend toolkit call failed              */
} fusec_status;

FUSEC_API const char *fusec_status_string(fusec_status s);
FUSEC_API const char *fusec_version(void);

/* Element types.  Append-only; values are part of the ABI. */
typedef enum fusec_dtype {
    FUSEC_DTYPE_F64 = 0,
    FUSEC_DTYPE_F32 = 1,
    FUSEC_DTYPE_F16 = 2,
    FUSEC_DTYPE_BF16 = 3,
    FUSEC_DTYPE_I64 = 4,
    FUSEC_DTYPE_I32 = 5,
    FUSEC_DTYPE_I16 = 6,
    FUSEC_DTYPE_I8 = 7,
    FUSEC_DTYPE_U8 = 8,
    FUSEC_DTYPE_BOOL = 9,
} fusec_dtype;
#define FUSEC_DTYPE_COUNT 10

FUSEC_API const char *fusec_dtype_name(fusec_dtype dt);  /* "f32", ...; NULL if invalid */
FUSEC_API size_t fusec_dtype_size(fusec_dtype dt);       /* bytes; 0 if invalid */

#define FUSEC_MAX_RANK 8

/* A dense row-major host tensor.  `data` is not owned by the struct unless a
 * call says so (fusec_module_run allocates outputs: free with fusec_free). */
typedef struct fusec_tensor {
    fusec_dtype dtype;
    int rank;
    int64_t shape[FUSEC_MAX_RANK];
    void *data;
} fusec_tensor;

FUSEC_API int64_t fusec_tensor_numel(const fusec_tensor *t); /* -1 if t is NULL or invalid */
FUSEC_API void fusec_free(void *p);

typedef struct fusec_graph fusec_graph;
typedef struct fusec_value fusec_value;
typedef struct fusec_module fusec_module;

/* ---- graphs ------------------------------------------------------------ */

FUSEC_API fusec_graph *fusec_graph_create(const char *name);
FUSEC_API void fusec_graph_destroy(fusec_graph *g);
/* The first error recorded on g, or NULL. */
FUSEC_API const char *fusec_graph_error(const fusec_graph *g);

/* Parse text IR.  `func` selects a function by name (without '@'); NULL picks
 * @main if present, else the first.  On failure *out is NULL and *errmsg (if
 * errmsg is not NULL) receives the diagnostics, to free with fusec_free. */
FUSEC_API fusec_status fusec_graph_parse(const char *src, size_t len, const char *filename,
                                         const char *func, fusec_graph **out, char **errmsg);
FUSEC_API fusec_status fusec_graph_parse_file(const char *path, const char *func,
                                              fusec_graph **out, char **errmsg);
/* Canonical text of g; free with fusec_free.  NULL if g holds an error. */
FUSEC_API char *fusec_graph_print(const fusec_graph *g);

FUSEC_API int fusec_graph_num_inputs(const fusec_graph *g);
FUSEC_API int fusec_graph_num_outputs(const fusec_graph *g);
/* Describe input/output i: name (owned by g), dtype, rank and shape. */
FUSEC_API fusec_status fusec_graph_input_info(const fusec_graph *g, int i, const char **name,
                                              fusec_tensor *desc);
FUSEC_API fusec_status fusec_graph_output_info(const fusec_graph *g, int i, fusec_tensor *desc);

/* ---- tracing: inputs, outputs, and one builder per op ------------------- */
/* Axes may be negative (counted from the end).  A list argument given as
 * (NULL, 0) means "not given" for an optional attribute (its default) and
 * the empty list for a required one (reshape to 0-d).  A fixed-size array
 * given as NULL (stride, padding, ...) means "not given".  An optional
 * trailing operand (bias, mask, weight) given as NULL means "not given";
 * giving a bias without a weight is an error.  fusec_input, fusec_output and
 * fusec_value_set_name record misuse on the graph like the builders do.
 * Accessors given NULL or an out-of-range axis return -1;
 * fusec_graph_error(NULL) returns a fixed message. */

FUSEC_API fusec_value *fusec_input(fusec_graph *g, const char *name, fusec_dtype dt, int rank,
                                   const int64_t *shape);
FUSEC_API fusec_status fusec_output(fusec_graph *g, fusec_value *v);
/* A literal operand, as written `add(%x, 2.0)` in the text IR.  Like a
 * literal in the text, it takes the dtype of the tensor operand of the op it
 * is used in (for `where`, of the first tensor branch); `dt` only says how it
 * is written (bool: true/false, integer dtypes: an integer, else a float)
 * and what fusec_value_dtype reports.  An op whose operands are all scalars
 * is refused: there is no tensor to take the dtype from. */
FUSEC_API fusec_value *fusec_scalar(fusec_graph *g, double value, fusec_dtype dt);
FUSEC_API fusec_dtype fusec_value_dtype(const fusec_value *v);
FUSEC_API int fusec_value_rank(const fusec_value *v);
FUSEC_API int64_t fusec_value_dim(const fusec_value *v, int axis);
/* Give a value a name for printing (optional). */
FUSEC_API fusec_status fusec_value_set_name(fusec_graph *g, fusec_value *v, const char *name);

/* elementwise, unary */
FUSEC_API fusec_value *fusec_neg(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_abs(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_sign(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_exp(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_exp2(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_log(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_log2(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_log1p(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_expm1(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_sqrt(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_rsqrt(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_reciprocal(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_sin(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_cos(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_tan(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_tanh(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_sigmoid(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_erf(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_relu(fusec_graph *g, fusec_value *x);
/* approximate: "none" or "tanh" (NULL = "none") */
FUSEC_API fusec_value *fusec_gelu(fusec_graph *g, fusec_value *x, const char *approximate);
FUSEC_API fusec_value *fusec_silu(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_floor(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_ceil(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_round(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_not(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_isnan(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_isinf(fusec_graph *g, fusec_value *x);
FUSEC_API fusec_value *fusec_cast(fusec_graph *g, fusec_value *x, fusec_dtype to);
/* Either bound may be omitted: pass has_min / has_max false. */
FUSEC_API fusec_value *fusec_clamp(fusec_graph *g, fusec_value *x, bool has_min, double min,
                                   bool has_max, double max);

/* elementwise, binary and ternary, with broadcasting */
FUSEC_API fusec_value *fusec_add(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_sub(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_mul(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_div(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_pow(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_maximum(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_minimum(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_remainder(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_and(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_or(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_xor(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_eq(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_ne(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_lt(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_le(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_gt(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_ge(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_where(fusec_graph *g, fusec_value *cond, fusec_value *a,
                                   fusec_value *b);
FUSEC_API fusec_value *fusec_masked_fill(fusec_graph *g, fusec_value *x, fusec_value *mask,
                                         double value);

/* reductions: axes (NULL, 0) = all axes */
FUSEC_API fusec_value *fusec_sum(fusec_graph *g, fusec_value *x, const int64_t *axes, int naxes,
                                 bool keepdim);
FUSEC_API fusec_value *fusec_mean(fusec_graph *g, fusec_value *x, const int64_t *axes, int naxes,
                                  bool keepdim);
FUSEC_API fusec_value *fusec_prod(fusec_graph *g, fusec_value *x, const int64_t *axes, int naxes,
                                  bool keepdim);
FUSEC_API fusec_value *fusec_max(fusec_graph *g, fusec_value *x, const int64_t *axes, int naxes,
                                 bool keepdim);
FUSEC_API fusec_value *fusec_min(fusec_graph *g, fusec_value *x, const int64_t *axes, int naxes,
                                 bool keepdim);
FUSEC_API fusec_value *fusec_var(fusec_graph *g, fusec_value *x, const int64_t *axes, int naxes,
                                 bool keepdim, int64_t correction);
FUSEC_API fusec_value *fusec_argmax(fusec_graph *g, fusec_value *x, int64_t axis, bool keepdim);
FUSEC_API fusec_value *fusec_argmin(fusec_graph *g, fusec_value *x, int64_t axis, bool keepdim);

/* normalisation and activation composites; weight/bias may be NULL */
FUSEC_API fusec_value *fusec_softmax(fusec_graph *g, fusec_value *x, int64_t axis);
FUSEC_API fusec_value *fusec_log_softmax(fusec_graph *g, fusec_value *x, int64_t axis);
FUSEC_API fusec_value *fusec_layer_norm(fusec_graph *g, fusec_value *x, fusec_value *weight,
                                        fusec_value *bias, const int64_t *axes, int naxes,
                                        double eps);
FUSEC_API fusec_value *fusec_rms_norm(fusec_graph *g, fusec_value *x, fusec_value *weight,
                                      const int64_t *axes, int naxes, double eps);
FUSEC_API fusec_value *fusec_batch_norm(fusec_graph *g, fusec_value *x, fusec_value *mean,
                                        fusec_value *var, fusec_value *weight, fusec_value *bias,
                                        double eps);

/* shape and data movement */
FUSEC_API fusec_value *fusec_reshape(fusec_graph *g, fusec_value *x, const int64_t *shape, int rank);
FUSEC_API fusec_value *fusec_permute(fusec_graph *g, fusec_value *x, const int64_t *dims, int rank);
FUSEC_API fusec_value *fusec_transpose(fusec_graph *g, fusec_value *x, int64_t dim0, int64_t dim1);
FUSEC_API fusec_value *fusec_expand(fusec_graph *g, fusec_value *x, const int64_t *shape, int rank);
/* axes (NULL, 0) = every size-1 axis */
FUSEC_API fusec_value *fusec_squeeze(fusec_graph *g, fusec_value *x, const int64_t *axes, int naxes);
FUSEC_API fusec_value *fusec_unsqueeze(fusec_graph *g, fusec_value *x, int64_t axis);
FUSEC_API fusec_value *fusec_slice(fusec_graph *g, fusec_value *x, int64_t axis, int64_t start,
                                   int64_t end, int64_t step);
FUSEC_API fusec_value *fusec_concat(fusec_graph *g, fusec_value *const *xs, int n, int64_t axis);
/* pads: npads values, (before, after) pairs for the last npads/2 dims */
FUSEC_API fusec_value *fusec_pad(fusec_graph *g, fusec_value *x, const int64_t *pads, int npads,
                                 double value);
FUSEC_API fusec_value *fusec_index_select(fusec_graph *g, fusec_value *x, fusec_value *idx,
                                          int64_t axis);
FUSEC_API fusec_value *fusec_embedding(fusec_graph *g, fusec_value *weight, fusec_value *idx);
FUSEC_API fusec_value *fusec_gather(fusec_graph *g, fusec_value *x, fusec_value *idx, int64_t axis);

/* creation */
FUSEC_API fusec_value *fusec_full(fusec_graph *g, double value, fusec_dtype dt, int rank,
                                  const int64_t *shape);
FUSEC_API fusec_value *fusec_iota(fusec_graph *g, int64_t axis, fusec_dtype dt, int rank,
                                  const int64_t *shape);
/* data: numel(shape) values, row-major, converted to dt */
FUSEC_API fusec_value *fusec_constant(fusec_graph *g, const double *data, fusec_dtype dt,
                                      int rank, const int64_t *shape);
FUSEC_API fusec_value *fusec_triu(fusec_graph *g, fusec_value *x, int64_t diagonal);
FUSEC_API fusec_value *fusec_tril(fusec_graph *g, fusec_value *x, int64_t diagonal);

/* contractions and windows; stride/padding/dilation NULL = defaults */
FUSEC_API fusec_value *fusec_matmul(fusec_graph *g, fusec_value *a, fusec_value *b);
FUSEC_API fusec_value *fusec_linear(fusec_graph *g, fusec_value *x, fusec_value *w, fusec_value *b);
FUSEC_API fusec_value *fusec_conv2d(fusec_graph *g, fusec_value *x, fusec_value *w, fusec_value *b,
                                    const int64_t stride[2], const int64_t padding[2],
                                    const int64_t dilation[2], int64_t groups);
FUSEC_API fusec_value *fusec_max_pool2d(fusec_graph *g, fusec_value *x, const int64_t kernel[2],
                                        const int64_t stride[2], const int64_t padding[2]);
FUSEC_API fusec_value *fusec_avg_pool2d(fusec_graph *g, fusec_value *x, const int64_t kernel[2],
                                        const int64_t stride[2], const int64_t padding[2]);
FUSEC_API fusec_value *fusec_adaptive_avg_pool2d(fusec_graph *g, fusec_value *x,
                                                 const int64_t output_size[2]);

/* attention: mask may be NULL; scale <= 0 means 1/sqrt(head dim) */
FUSEC_API fusec_value *fusec_sdpa(fusec_graph *g, fusec_value *q, fusec_value *k, fusec_value *v,
                                  fusec_value *mask, bool is_causal, double scale);

/* ---- compiling and running --------------------------------------------- */

typedef enum fusec_backend {
    FUSEC_BACKEND_INTERP = 0, /* the reference interpreter (always present) */
    FUSEC_BACKEND_CPU = 1,    /* LLVM ORC JIT                               */
    FUSEC_BACKEND_CUDA = 2,   /* NVRTC + CUDA Driver API                    */
    FUSEC_BACKEND_PLAN = 3,   /* the optimized, fused, memory-planned plan,
                                 executed on the CPU element by element: slow
                                 by design, it checks the passes            */
} fusec_backend;

/* ---- optimizing ---------------------------------------------------------- */

typedef struct fusec_opt_options {
    const char *passes;      /* comma-separated pass names; NULL = the default pipeline */
    const char *print_after; /* a pass name or "all": the IR after it goes to *report */
    bool time_passes;        /* per-pass timings into *report */
    bool stats;              /* per-pass counters into *report */
} fusec_opt_options;

/* Run passes over g in place (o may be NULL: the default pipeline).  The
 * verifier runs after every pass.  If report is not NULL it receives what
 * print_after, time_passes and stats asked for (free with fusec_free).  On
 * failure g is left valid but may be partly optimized. */
FUSEC_API fusec_status fusec_graph_optimize(fusec_graph *g, const fusec_opt_options *o,
                                            char **report, char **errmsg);
/* The names and one-line summaries of the passes, one per line, and the
 * default pipeline (free with fusec_free). */
FUSEC_API char *fusec_pass_list(void);

/* Compile g for a backend.  g may be destroyed afterwards.  On failure *out
 * is NULL and *errmsg (if not NULL) says why; free it with fusec_free. */
FUSEC_API fusec_status fusec_compile(const fusec_graph *g, fusec_backend backend,
                                     fusec_module **out, char **errmsg);
FUSEC_API void fusec_module_destroy(fusec_module *m);
/* What the module runs, as text (FUSEC_BACKEND_PLAN: the plan with its
 * kernels, buffers and arena; other backends: the graph).  Free with
 * fusec_free. */
FUSEC_API char *fusec_module_describe(const fusec_module *m);
/* Run with n_in host inputs (in parameter order; shapes and dtypes must match
 * exactly).  Run-time errors (an index out of range, integer division by
 * zero) name the op and quote its line of the module's canonical text as
 * `@func:LINE:COL`.  Fills n_out outputs whose data the call allocates: free each
 * outputs[i].data with fusec_free.  On failure no output is allocated and
 * *errmsg (if not NULL) says why. */
FUSEC_API fusec_status fusec_module_run(const fusec_module *m, const fusec_tensor *inputs,
                                        int n_in, fusec_tensor *outputs, int n_out,
                                        char **errmsg);

/* Run a FUSEC_BACKEND_CUDA module on GPU memory, without copies (zero copy).
 * inputs[i].data are device addresses (CUdeviceptr values cast to void*)
 * holding the parameters (dtype and shape checked as in fusec_module_run);
 * outputs[i].data are device addresses the caller allocated, each large
 * enough for result i (fusec_graph_output_info: numel * dtype size bytes);
 * the call fills outputs[i]'s dtype, rank and shape and keeps its data.
 * Memory must belong to the CUDA context fusec uses: the primary context of
 * device 0 ($FUSEC_CUDA_DEVICE), the one the CUDA runtime API uses, so
 * cudaMalloc'd pointers work.  Outputs must not overlap inputs or each
 * other.  Any address alignment is accepted (multiple of the element size):
 * kernels whose pointers are not 16-byte aligned take a scalar path.
 * `stream` is a CUstream (NULL = the legacy default stream): the work is
 * queued on it and the call returns without waiting, so results are ready
 * (and errors of the kernels themselves show) when the stream gets there.
 * When the same pointers come back, the kernels are replayed as a CUDA
 * graph (FUSEC_CUDA_GRAPHS=0 turns that off); a stream that the caller is
 * capturing into a graph of its own is refused (FUSEC_ERR_UNSUPPORTED).
 * Safe from several threads; other backends give FUSEC_ERR_UNSUPPORTED. */
FUSEC_API fusec_status fusec_module_run_device(const fusec_module *m, const fusec_tensor *inputs,
                                               int n_in, fusec_tensor *outputs, int n_out,
                                               void *stream, char **errmsg);

#ifdef __cplusplus
}
#endif
#endif /* FUSEC_H */
