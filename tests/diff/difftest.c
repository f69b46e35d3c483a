/*
 * difftest.c - differential testing: the reference interpreter on the graph
 * as written against a backend on the optimized graph.
 *
 *   difftest [--seed S] [--count N] [--backend interp-opt|plan]
 *            [--pipeline P] [--tol-scale X] [--noise-k K | --no-noise]
 *            [--dump DIR] [-v] [FILES...]
 *   difftest --check-gen [--seed S] [--count N] [-v]
 *   difftest --print [--seed S] [--count N]
 *
 * Cases are the generated graphs of seeds S .. S+N-1 (tests/diff/gen.c)
 * followed by the .ir FILES (a file that does not parse, or whose reference
 * run fails, e.g. a diagnostics test, is skipped; a generated graph that
 * does either is a failure: the generator promised a valid graph).
 *
 * For each case: parse the text; make deterministic random inputs from the
 * case's seed (normal floats, with NaN, +-inf, -0.0 and 0.0 sprinkled into
 * one graph in four; small integers; bools); run the interpreter (the
 * reference).  Parse the text again, run the pass pipeline with the
 * verifier after every pass, and run the result on the same inputs through
 * the backend:
 *
 *   interp-opt  the interpreter on the optimized graph;
 *   plan        pass_fuse + memory planning + the plan executor
 *               (built when passes/memplan.h and runtime/plan_exec.h exist:
 *               DIFF_HAVE_PLAN, set by tests/diff/CMakeLists.txt).
 *
 * Outputs are compared by tests/diff/compare.c with the design's
 * tolerances, chosen per result from its cone in the reference graph: the
 * loosest tolerance of the float dtypes computed there (an f64 result of
 * f16 arithmetic is held to f16's), the looser f32 one where the cone holds
 * a reduction, contraction or composite.
 *
 * The noise oracle.  Fixed tolerances cannot tell a wrong kernel from an
 * ill-conditioned element (layer_norm of a row whose spread is 1e-3 of its
 * offset, inf times a value that is -1e-12 here and 0 in f32).  So the
 * reference runs three more times on a copy of the graph in which every
 * inexact float result (arithmetic, reductions, composites, contractions;
 * not selects, movement, casts or exact maps) is moved up or down at random,
 * one ulp for an elementwise op and 1-4 ulps for an op a backend decomposes
 * or accumulates in another order, the third run also flushing elements
 * within 8 ulps of zero to zero.  Each element then gets an extra absolute tolerance of K (16) times
 * how far it moved, and an element whose NaN-ness, infinity, integer or
 * bool value flipped is reported unstable and not compared.  A kernel bug
 * moves elements by the size of the values, far beyond that: over 2,000
 * graphs with each of ten injected bugs (wrong broadcast, slice step, pad
 * offset, NaN-swallowing min, var divisor, layer_norm eps, aliasing arena
 * slots, inverted mask folding, a shifting pad folded away) the oracle cost
 * at most 3 detections per bug.  --no-noise turns it off; --noise-k sets K.
 *
 * A mismatch, a pipeline or verifier failure, or a backend error prints
 * the seed, the graph, the optimized
 * graph and the first differing element; --dump DIR also writes
 * DIR/<case>/graph.ir, the inputs as NPY files (NAME.npy, NAME.bf16.npy)
 * and the expected and actual outputs, so that
 *
 *   fusec run DIR/<case>/graph.ir --inputs DIR/<case> --outputs /tmp/o
 *
 * reproduces it.  A crash prints the case it happened in before dying.
 * The last line is "N passed, M failed"; the exit status is 1 if any failed.
 *
 * --check-gen only generates, parses (which verifies) and prints/re-parses
 * each graph, and with -v prints histograms of ops, dtypes and features:
 * the generator's self-check (ctest diff.gen_valid).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/parse.h"
#include "ir/ir.h"
#include "passes/pass.h"
#include "runtime/interp.h"
#include "runtime/npy.h"
#include "tests/diff/compare.h"
#include "tests/diff/gen.h"

#ifdef DIFF_HAVE_PLAN
#include "ir/plan.h"
#include "passes/fuse.h"
#include "passes/memplan.h"
#include "runtime/plan_exec.h"
#endif

typedef enum backend { BK_INTERP_OPT, BK_PLAN } backend;

typedef struct options {
    uint64_t seed;
    long count;
    bool count_given;
    backend bk;
    const char *pipeline;
    const char *dump;
    double tol_scale;
    double noise_k;  /* slack = noise_k * observed sensitivity; 0 = no noise oracle */
    bool verbose, check_gen, print;
    int nfiles;
    char **files;
} options;

typedef struct totals {
    long passed, failed, skipped;
} totals;

/* ---- crash reporting ------------------------------------------------- */

static char crash_label[256];

static void on_crash(int sig) {
    static const char pre[] = "\ndifftest: crashed (signal) while running ";
    ssize_t w = write(2, pre, sizeof pre - 1);
    w = write(2, crash_label, strlen(crash_label));
    w = write(2, "\n", 1);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_crash_handler(void) {
    int sigs[] = {SIGSEGV, SIGABRT, SIGFPE, SIGBUS, SIGILL};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_crash;
        sigaction(sigs[i], &sa, NULL);
    }
}

/* ---- inputs ------------------------------------------------------------ */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static double rng_normal(rng *r) {
    double u = rng_unit(r), v = rng_unit(r);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Does the case of this seed get special values in its float inputs? */
static bool has_specials(uint64_t seed) {
    rng r = {seed ^ 0x5bd1e995u};
    return rng_next(&r) % 4 == 0;
}

static void fill_input(fusec_tensor *t, uint64_t seed, int index) {
    rng r = {seed * 0x100000001b3ull + (uint64_t)index * 0x9e3779b97f4a7c15ull + 7};
    int64_t n = fusec_tensor_numel(t);
    bool specials = has_specials(seed);
    static const double scales[] = {1, 1, 1, 1, 1, 0.01, 30};
    double scale = scales[rng_next(&r) % 7];
    for (int64_t i = 0; i < n; i++) {
        if (ir_dtype_is_float(t->dtype)) {
            double v = rng_normal(&r) * scale;
            if (specials && rng_next(&r) % 20 == 0) {
                static const double sp[] = {NAN, INFINITY, -INFINITY, -0.0, 0.0};
                v = sp[rng_next(&r) % 5];
            }
            ir_store_f(t->dtype, t->data, i, v);
        } else if (t->dtype == FUSEC_DTYPE_BOOL) {
            ir_store_i(t->dtype, t->data, i, (int64_t)(rng_next(&r) & 1));
        } else if (t->dtype == FUSEC_DTYPE_U8) {
            ir_store_i(t->dtype, t->data, i, (int64_t)(rng_next(&r) % 11));
        } else {
            ir_store_i(t->dtype, t->data, i, (int64_t)(rng_next(&r) % 11) - 5);
        }
    }
}

static void free_tensors(fusec_tensor *t, int n) {
    for (int i = 0; t && i < n; i++) free(t[i].data);
    free(t);
}

/* Inputs for g's parameters (NULL on OOM). */
static fusec_tensor *make_inputs(const ir_graph *g, uint64_t seed) {
    fusec_tensor *in = calloc((size_t)(g->nparams ? g->nparams : 1), sizeof *in);
    if (!in) return NULL;
    for (int i = 0; i < g->nparams; i++) {
        const ir_type *ty = &g->params[i]->type;
        in[i].dtype = ty->dtype;
        in[i].rank = ty->rank;
        for (int k = 0; k < ty->rank; k++) in[i].shape[k] = ty->dim[k];
        int64_t n = ir_type_numel(ty);
        in[i].data = calloc((size_t)(n ? n : 1), ir_dtype_size(ty->dtype));
        if (!in[i].data) {
            free_tensors(in, i);
            return NULL;
        }
        fill_input(&in[i], seed, i);
    }
    return in;
}

/* ---- helpers ----------------------------------------------------------- */

/* The tolerance for result `r` of g.  Precision is lost where values are
 * computed, so the tolerance is the loosest of the float dtypes computed in
 * the result's cone (an f64 result of f32 arithmetic is good to f32's
 * tolerance only), the looser f32 one where the cone holds a reduction,
 * contraction or composite. */
static cmp_tol result_tolerance(const ir_graph *g, const ir_value *r, double scale) {
    bool *seen = calloc((size_t)g->next_id + 1, sizeof *seen);
    const ir_value **stack = calloc((size_t)g->next_id + 1, sizeof *stack);
    cmp_tol tol = cmp_tolerance(r->type.dtype, false, scale);
    if (!seen || !stack) {
        free(seen);
        free(stack);
        return cmp_tolerance(FUSEC_DTYPE_BF16, true, scale); /* out of memory: be lenient */
    }
    bool red = false;
    bool dt_seen[FUSEC_DTYPE_COUNT] = {false};
    int sp = 0;
    stack[sp++] = r;
    seen[r->id] = true;
    while (sp) {
        const ir_value *v = stack[--sp];
        if (v->kind != IR_VAL_NODE) continue;
        const ir_node *n = v->def;
        ir_category c = ir_op_get(n->op)->category;
        red |= c == IR_CAT_REDUCTION || c == IR_CAT_CONTRACTION || c == IR_CAT_COMPOSITE;
        if (ir_dtype_is_float(v->type.dtype)) dt_seen[v->type.dtype] = true;
        for (int i = 0; i < n->nin; i++) {
            const ir_value *u = n->in[i];
            if (u->kind == IR_VAL_LITERAL || seen[u->id]) continue;
            seen[u->id] = true;
            stack[sp++] = u;
        }
    }
    free(seen);
    free(stack);
    if (!ir_dtype_is_float(r->type.dtype)) return tol; /* exact */
    tol = cmp_tolerance(r->type.dtype, red, scale);
    for (int dt = 0; dt < FUSEC_DTYPE_COUNT; dt++) {
        if (!dt_seen[dt]) continue;
        cmp_tol t = cmp_tolerance((fusec_dtype)dt, red, scale);
        if (t.rtol > tol.rtol) tol.rtol = t.rtol;
        if (t.afloor > tol.afloor) tol.afloor = t.afloor;
    }
    return tol;
}

/* Elements held by the graph's values, to skip test files too big to run. */
static double graph_elements(const ir_graph *g) {
    double total = 0;
    for (int i = 0; i < g->nparams; i++) total += (double)ir_type_numel(&g->params[i]->type);
    for (const ir_node *n = g->first; n; n = n->next) total += (double)ir_type_numel(&n->out->type);
    return total;
}

static char *print_graph(const ir_graph *g) {
    ir_str s = {0};
    ir_print_graph(&s, g);
    return ir_str_take(&s);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    ir_str s = {0};
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < k; i++) ir_str_putc(&s, buf[i]);
    fclose(f);
    if (!s.buf) ir_str_puts(&s, "");
    *len = s.len;
    return ir_str_take(&s);
}

/* mkdir -p */
static bool mkdirs(const char *path) {
    size_t n = strlen(path);
    char *buf = malloc(n + 1);
    if (!buf) return false;
    memcpy(buf, path, n + 1);
    bool ok = true;
    for (char *p = buf + 1; ok && *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        ok = mkdir(buf, 0755) == 0 || errno == EEXIST;
        *p = '/';
    }
    ok = ok && (mkdir(buf, 0755) == 0 || errno == EEXIST);
    free(buf);
    return ok;
}

static bool write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fputs(text, f);
    return fclose(f) == 0;
}

/* dir/name (malloc'd; NULL on OOM). */
static char *path_join(const char *dir, const char *name, const char *suffix) {
    ir_str s = {0};
    ir_str_printf(&s, "%s/%s%s", dir, name, suffix);
    if (s.oom) {
        ir_str_free(&s);
        return NULL;
    }
    return ir_str_take(&s);
}

static void write_npy(const char *dir, const char *stem, const fusec_tensor *t) {
    char *path = path_join(dir, stem, t->dtype == FUSEC_DTYPE_BF16 ? ".bf16.npy" : ".npy");
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    if (!path || rt_npy_write(path, t, &d) != FUSEC_OK)
        fprintf(stderr, "difftest: %s", d.out.buf ? d.out.buf : "npy write failed\n");
    ir_diag_free(&d);
    free(path);
}

typedef struct case_info {
    const char *label; /* "seed 12" or the file name */
    const char *dumpname;
    const char *text;
    size_t len;
    uint64_t input_seed;
    bool generated;
} case_info;

/* ---- the noise oracle ------------------------------------------------------ */

/* Ops whose result every correct backend computes bit for bit from the same
 * operands: selects, movement, creation, exact maps, max/min.  Everything
 * else that yields a float rounds, and a backend may round differently. */
static bool op_is_exact(const ir_node *n) {
    switch (ir_op_get(n->op)->category) {
    case IR_CAT_INJECTIVE:
    case IR_CAT_BROADCAST:
    case IR_CAT_OPAQUE: return true;
    case IR_CAT_CONTRACTION:
    case IR_CAT_COMPOSITE: return false;
    default: break;
    }
    switch (n->op) {
    case IR_OP_NEG: case IR_OP_ABS: case IR_OP_SIGN: case IR_OP_RELU: case IR_OP_FLOOR:
    case IR_OP_CEIL: case IR_OP_ROUND: case IR_OP_CLAMP: case IR_OP_MAXIMUM: case IR_OP_MINIMUM:
    case IR_OP_WHERE: case IR_OP_MASKED_FILL: case IR_OP_CAST: case IR_OP_NOT: case IR_OP_ISNAN:
    case IR_OP_ISINF: case IR_OP_MAX: case IR_OP_MIN: case IR_OP_ARGMAX: case IR_OP_ARGMIN:
    case IR_OP_MAX_POOL2D: return true;
    default: return !ir_dtype_is_float(n->out->type.dtype);
    }
}

/* k ulps up (k > 0) or down (k < 0) from 1 in dt: exactly representable. */
static double ulp_noise(fusec_dtype dt, int k) {
    int p = dt == FUSEC_DTYPE_F64 ? 53 : dt == FUSEC_DTYPE_F32 ? 24 : dt == FUSEC_DTYPE_F16 ? 11 : 8;
    return k > 0 ? 1.0 + k * ldexp(1.0, 1 - p) : 1.0 + k * ldexp(1.0, -p);
}

/* How many ulps a backend may be off at n's result: one for an elementwise
 * op, a few for ops it decomposes or accumulates in another order. */
static int noise_ulps(const ir_node *n) {
    ir_category c = ir_op_get(n->op)->category;
    return c == IR_CAT_REDUCTION || c == IR_CAT_COMPOSITE || c == IR_CAT_CONTRACTION ? 4 : 1;
}

/* The case's graph with every inexact float result multiplied by a new
 * parameter (its noise), so a run can round each of them one ulp off or
 * flush it to zero.  Parameters of g come first, then the noise parameters;
 * results of g come first, then each perturbed node's own (pre-noise) value,
 * in the same order as the noise parameters. */
static ir_graph *noisy_graph(const case_info *c, ir_diag *d, int *ulps) {
    ir_graph *gp = fe_parse(c->text, c->len, c->label, NULL, d);
    if (!gp) return NULL;
    ir_node *nodes[4096];
    int nn = 0;
    for (ir_node *n = gp->first; n && nn < 4096; n = n->next)
        if (ir_dtype_is_float(n->out->type.dtype) && !op_is_exact(n)) ulps[nn] = noise_ulps(n), nodes[nn++] = n;
    for (int k = 0; k < nn; k++) {
        ir_node *n = nodes[k];
        char name[32];
        snprintf(name, sizeof name, "difftest_noise%d", k);
        ir_value *p = ir_graph_add_param(gp, name, &n->out->type, n->loc);
        gp->ip = n->next;
        ir_value *ops[2] = {n->out, p};
        ir_value *m = p ? ir_build(gp, IR_OP_MUL, ops, 2, NULL, 0, NULL, n->loc, d) : NULL;
        gp->ip = NULL;
        if (!m) {
            ir_graph_free(gp);
            return NULL;
        }
        ir_replace_uses(gp, n->out, m);
        m->def->in[0] = n->out; /* the one use that must stay */
    }
    for (int k = 0; k < nn; k++)
        if (!ir_graph_add_result(gp, nodes[k]->out)) {
            ir_graph_free(gp);
            return NULL;
        }
    return gp;
}

/* Per result, per element: an absolute slack of noise_k times how far the
 * reference moves when its inexact float results are computed slightly
 * differently, or INFINITY where that flips a NaN, an infinity, an integer
 * or a bool.  Run 0 multiplies every noise by 1 and must reproduce the
 * reference exactly (else the oracle is not trusted); it also records each
 * perturbed node's values.  Runs 1 and 2 move every element up or down at
 * random, by one ulp for elementwise ops and by 1-4 ulps for reductions,
 * composites and contractions (noise_ulps); run 3 does that and also
 * flushes to zero the elements
 * within 8 ulps (of the node's largest magnitude) of zero, as absorption
 * does in a kernel that sums in another order (log(1 + 1e-12) is 0 in f32,
 * -1e-12 here: times an infinity, NaN against -inf).  NULL (no slack) when
 * the oracle is off or could not run. */
#define NOISE_RUNS 3
static double **noise_slack(const options *o, const case_info *c, const ir_graph *g, const fusec_tensor *in,
                            const fusec_tensor *ref, int nout) {
    if (o->noise_k <= 0) return NULL;
    ir_diag d;
    ir_diag_init(&d, c->label, c->text, c->len);
    static _Thread_local int ulps[4096];
    ir_graph *gp = noisy_graph(c, &d, ulps);
    int nnoise = gp ? gp->nparams - g->nparams : 0, npout = nout + nnoise;
    double **slack = calloc((size_t)(nout ? nout : 1), sizeof *slack);
    fusec_tensor *pin = gp ? calloc((size_t)gp->nparams, sizeof *pin) : NULL;
    fusec_tensor *pout = calloc((size_t)(npout ? npout : 1), sizeof *pout);
    fusec_tensor *vals = calloc((size_t)(nnoise ? nnoise : 1), sizeof *vals); /* run 0's node values */
    double *tiny = calloc((size_t)(nnoise ? nnoise : 1), sizeof *tiny);
    bool ok = gp && slack && pin && pout && vals && tiny && gp->nresults == npout;
    for (int i = 0; ok && i < nout; i++) {
        int64_t n = fusec_tensor_numel(&ref[i]);
        ok = (slack[i] = calloc((size_t)(n ? n : 1), sizeof **slack)) != NULL;
    }
    if (ok) {
        for (int i = 0; i < g->nparams; i++) pin[i] = in[i];
        for (int i = g->nparams; ok && i < gp->nparams; i++) {
            const ir_type *ty = &gp->params[i]->type;
            pin[i].dtype = ty->dtype;
            pin[i].rank = ty->rank;
            for (int k = 0; k < ty->rank; k++) pin[i].shape[k] = ty->dim[k];
            int64_t n = ir_type_numel(ty);
            ok = (pin[i].data = calloc((size_t)(n ? n : 1), ir_dtype_size(ty->dtype))) != NULL;
        }
    }
    for (int run = 0; ok && run <= NOISE_RUNS; run++) {
        rng r = {c->input_seed * 31 + 17 + (uint64_t)run * 0x632be59bd9b4e019ull};
        for (int k = 0; k < nnoise; k++) {
            fusec_tensor *t = &pin[g->nparams + k];
            int64_t n = fusec_tensor_numel(t);
            for (int64_t e = 0; e < n; e++) {
                int u = ulps[k] > 1 ? 1 + (int)(rng_next(&r) % (uint64_t)ulps[k]) : 1;
                double v = run == 0 ? 1.0 : ulp_noise(t->dtype, (rng_next(&r) & 1) ? u : -u);
                if (run == 3) {
                    double x = fabs(ir_load_f(vals[k].dtype, vals[k].data, e));
                    if (x != 0 && x <= tiny[k]) v = 0;
                }
                ir_store_f(t->dtype, t->data, e, v);
            }
        }
        if (rt_interp_run(gp, pin, gp->nparams, pout, npout, &d) != FUSEC_OK) {
            ok = false;
            break;
        }
        for (int i = 0; i < nout; i++) {
            int64_t n = fusec_tensor_numel(&ref[i]);
            fusec_dtype dt = ref[i].dtype;
            size_t bytes = (size_t)n * ir_dtype_size(dt);
            if (run == 0) { /* must be the reference, bit for bit */
                if (n && memcmp(ref[i].data, pout[i].data, bytes) != 0) ok = false;
                continue;
            }
            for (int64_t k = 0; k < n; k++) {
                double *s = &slack[i][k];
                if (ir_dtype_is_float(dt)) {
                    double a = ir_load_f(dt, ref[i].data, k), b = ir_load_f(dt, pout[i].data, k);
                    if (isnan(a) != isnan(b) || ((isinf(a) || isinf(b)) && a != b)) *s = INFINITY;
                    else if (isfinite(a) && o->noise_k * fabs(a - b) > *s) *s = o->noise_k * fabs(a - b);
                } else if (ir_load_i(dt, ref[i].data, k) != ir_load_i(dt, pout[i].data, k)) {
                    *s = INFINITY;
                }
            }
        }
        for (int k = 0; k < nnoise; k++) {
            fusec_tensor *t = &pout[nout + k];
            if (run == 0) { /* keep the node's values and its flush threshold */
                vals[k] = *t;
                double mx = 0;
                int64_t n = fusec_tensor_numel(t);
                for (int64_t e = 0; e < n; e++) {
                    double x = fabs(ir_load_f(t->dtype, t->data, e));
                    if (isfinite(x) && x > mx) mx = x;
                }
                tiny[k] = mx * 8 * (1.0 - ulp_noise(t->dtype, -1));
                t->data = NULL;
            }
        }
        for (int i = 0; i < npout; i++) {
            free(pout[i].data);
            pout[i].data = NULL;
        }
    }
    if (pin && gp)
        for (int i = g->nparams; i < gp->nparams; i++) free(pin[i].data);
    for (int k = 0; vals && k < nnoise; k++) free(vals[k].data);
    free(vals);
    free(tiny);
    free(pin);
    free(pout);
    if (gp) ir_graph_free(gp);
    ir_diag_free(&d);
    if (!ok) {
        if (o->verbose) printf("note %s: the noise oracle could not run; comparing without it\n", c->label);
        for (int i = 0; slack && i < nout; i++) free(slack[i]);
        free(slack);
        return NULL;
    }
    return slack;
}

static void free_slack(double **s, int n) {
    for (int i = 0; s && i < n; i++) free(s[i]);
    free(s);
}

/* ---- one case ------------------------------------------------------------ */

typedef struct run_out {
    fusec_tensor *t;
    int n;
} run_out;

static void report_header(const case_info *c, const char *what) {
    printf("FAIL %s: %s\n", c->label, what);
}

static void dump_case(const options *o, const case_info *c, const ir_graph *g, const fusec_tensor *in,
                      const fusec_tensor *ref, const fusec_tensor *got, int nout) {
    if (!o->dump) return;
    char *dir = path_join(o->dump, c->dumpname, ""), *file = dir ? path_join(dir, "graph.ir", "") : NULL;
    char *exp = dir ? path_join(dir, "expected", "") : NULL, *act = dir ? path_join(dir, "actual", "") : NULL;
    if (!dir || !file || !exp || !act || !mkdirs(dir)) {
        fprintf(stderr, "difftest: cannot create %s: %s\n", dir ? dir : o->dump, strerror(errno));
    } else {
        write_text(file, c->text);
        for (int i = 0; in && i < g->nparams; i++) { /* parameter %NAME -> NAME.npy */
            ir_str stem = {0};
            ir_value_ref(&stem, g->params[i]);
            write_npy(dir, stem.buf && stem.buf[0] == '%' ? stem.buf + 1 : "x", &in[i]);
            ir_str_free(&stem);
        }
        for (int i = 0; i < nout; i++) {
            char stem[32];
            snprintf(stem, sizeof stem, "result%d", i);
            if (ref && mkdirs(exp)) write_npy(exp, stem, &ref[i]);
            if (got && mkdirs(act)) write_npy(act, stem, &got[i]);
        }
        printf("  dumped to %s (fusec run %s --inputs %s --outputs OUT)\n", dir, file, dir);
    }
    free(dir);
    free(file);
    free(exp);
    free(act);
}

/* Run the backend on the optimized graph g2.  Fills out (nout tensors). */
static bool run_backend(const options *o, ir_graph *g2, const fusec_tensor *in, fusec_tensor *out, int nout,
                        ir_diag *d) {
    if (o->bk == BK_INTERP_OPT) return rt_interp_run(g2, in, g2->nparams, out, nout, d) == FUSEC_OK;
#ifdef DIFF_HAVE_PLAN
    plan *p = pass_fuse(g2, d);
    if (!p) {
        if (!d->nerr) ir_error(d, (ir_loc){0}, "pass_fuse returned no plan");
        return false;
    }
    bool ok = pass_memplan(p, d) && memplan_check(p, d) &&
              rt_plan_run(p, in, g2->nparams, out, nout, d) == FUSEC_OK;
    if (!ok && o->verbose) {
        ir_str s = {0};
        plan_print(&s, p);
        printf("  plan:\n%s", s.buf ? s.buf : "");
        ir_str_free(&s);
    }
    plan_free(p);
    return ok;
#else
    (void)in, (void)out, (void)nout;
    ir_error(d, (ir_loc){0}, "this difftest was built without the plan backend");
    return false;
#endif
}

/* 1 passed, 0 failed, -1 skipped. */
static int run_case(const options *o, const case_info *c) {
    snprintf(crash_label, sizeof crash_label, "%s", c->label);
    int rc = 0;
    ir_diag d1, d2, d3;
    ir_diag_init(&d1, c->label, c->text, c->len);
    ir_diag_init(&d2, c->label, c->text, c->len);
    ir_diag_init(&d3, c->label, c->text, c->len);
    ir_graph *g = NULL, *g2 = NULL;
    fusec_tensor *in = NULL, *ref = NULL, *got = NULL;
    char *opt_text = NULL;
    double **slack = NULL;
    int nout = 0;

    g = fe_parse(c->text, c->len, c->label, NULL, &d1);
    if (!g) {
        if (c->generated) {
            report_header(c, "the generated graph does not parse or verify (generator bug)");
            printf("%s%s", c->text, d1.out.buf ? d1.out.buf : "");
            goto done;
        }
        if (o->verbose) printf("skip %s: does not parse\n", c->label);
        rc = -1;
        goto done;
    }
    if (!c->generated && graph_elements(g) > 2e7) {
        if (o->verbose) printf("skip %s: too large to interpret quickly\n", c->label);
        rc = -1;
        goto done;
    }
    nout = g->nresults;
    in = make_inputs(g, c->input_seed);
    ref = calloc((size_t)(nout ? nout : 1), sizeof *ref);
    got = calloc((size_t)(nout ? nout : 1), sizeof *got);
    if (!in || !ref || !got) {
        report_header(c, "out of memory");
        goto done;
    }
    if (rt_interp_run(g, in, g->nparams, ref, nout, &d1) != FUSEC_OK) {
        if (c->generated) {
            report_header(c, "the reference interpreter failed on a generated graph");
            printf("%s%s", c->text, d1.out.buf ? d1.out.buf : "");
            goto done;
        }
        if (o->verbose) printf("skip %s: the reference run fails: %s", c->label, d1.out.buf ? d1.out.buf : "\n");
        memset(ref, 0, sizeof *ref * (size_t)nout);
        rc = -1;
        goto done;
    }

    g2 = fe_parse(c->text, c->len, c->label, NULL, &d2);
    if (!g2) {
        report_header(c, "the second parse failed");
        goto done;
    }
    pass_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.diag = &d2;
    ctx.verify_each = true;
    if (!pass_run_pipeline(g2, o->pipeline, &ctx) || !ir_verify(g2, &d2)) {
        report_header(c, "the pass pipeline failed");
        opt_text = print_graph(g2);
        printf("%s%s--- graph after the failing pass:\n%s", c->text, d2.out.buf ? d2.out.buf : "", opt_text);
        goto done;
    }
    opt_text = print_graph(g2);
    if (g2->nresults != nout) {
        report_header(c, "the optimized graph has a different number of results");
        printf("%s--- optimized:\n%s", c->text, opt_text);
        goto done;
    }
    if (!run_backend(o, g2, in, got, nout, &d3)) {
        report_header(c, "the backend failed where the reference ran");
        printf("%s--- optimized:\n%s%s", c->text, opt_text, d3.out.buf ? d3.out.buf : "");
        memset(got, 0, sizeof *got * (size_t)nout);
        dump_case(o, c, g, in, ref, NULL, nout);
        goto done;
    }
    slack = noise_slack(o, c, g, in, ref, nout);
    rc = 1;
    for (int i = 0; i < nout; i++) {
        cmp_result r;
        if (cmp_tensors(&ref[i], &got[i], result_tolerance(g, g->results[i], o->tol_scale), slack ? slack[i] : NULL,
                        &r))
            continue;
        if (rc == 1) {
            report_header(c, "outputs differ");
            printf("%s--- optimized:\n%s", c->text, opt_text);
        }
        printf("  output %d (%s): %s\n", i, ir_dtype_name(ref[i].dtype), r.msg);
        rc = 0;
    }
    if (rc == 0) dump_case(o, c, g, in, ref, got, nout);

done:
    if (rc == 0) fflush(stdout);
    free_tensors(in, g ? g->nparams : 0);
    free_tensors(ref, nout);
    free_tensors(got, nout);
    free_slack(slack, nout);
    free(opt_text);
    if (g) ir_graph_free(g);
    if (g2) ir_graph_free(g2);
    ir_diag_free(&d1);
    ir_diag_free(&d2);
    ir_diag_free(&d3);
    return rc;
}

/* ---- --check-gen ------------------------------------------------------- */

static int check_gen(const options *o) {
    gen_stats st;
    memset(&st, 0, sizeof st);
    gen_opts go;
    gen_opts_default(&go);
    go.stats = &st;
    long ops[IR_OP_COUNT] = {0}, cats[8] = {0};
    long passed = 0, failed = 0;
    for (long k = 0; k < o->count; k++) {
        uint64_t seed = o->seed + (uint64_t)k;
        snprintf(crash_label, sizeof crash_label, "seed %llu (check-gen)", (unsigned long long)seed);
        char *text = gen_graph(seed, &go);
        if (!text) {
            printf("FAIL seed %llu: out of memory\n", (unsigned long long)seed);
            failed++;
            continue;
        }
        size_t len = strlen(text);
        ir_diag d;
        ir_diag_init(&d, "gen", text, len);
        ir_graph *g = fe_parse(text, len, "gen", NULL, &d);
        bool ok = g != NULL;
        if (!ok) {
            printf("FAIL seed %llu: the generated graph does not parse or verify\n%s%s", (unsigned long long)seed,
                   text, d.out.buf ? d.out.buf : "");
        } else {
            /* printing and parsing again gives the same text */
            char *p1 = print_graph(g);
            ir_diag d2;
            ir_diag_init(&d2, "printed", p1, strlen(p1));
            ir_graph *g2 = fe_parse(p1, strlen(p1), "printed", NULL, &d2);
            char *p2 = g2 ? print_graph(g2) : NULL;
            if (!p2 || strcmp(p1, p2) != 0) {
                printf("FAIL seed %llu: print -> parse -> print is not stable\n%s--- printed:\n%s%s",
                       (unsigned long long)seed, text, p1, d2.out.buf ? d2.out.buf : "");
                ok = false;
            }
            for (const ir_node *n = g->first; n; n = n->next) {
                ops[n->op]++;
                cats[ir_op_get(n->op)->category]++;
            }
            free(p1);
            free(p2);
            if (g2) ir_graph_free(g2);
            ir_diag_free(&d2);
            ir_graph_free(g);
        }
        ir_diag_free(&d);
        free(text);
        if (ok) passed++;
        else failed++;
    }
    if (o->verbose) {
        static const char *const catname[] = {"elementwise", "broadcast", "injective", "reduction",
                                              "contraction", "composite", "opaque"};
        printf("graphs %ld, nodes %ld (%.1f per graph), params %ld, results %ld\n", st.graphs, st.nodes,
               st.graphs ? (double)st.nodes / (double)st.graphs : 0.0, st.params, st.results);
        printf("\nops (parsed nodes):\n");
        for (int op = 0; op < IR_OP_COUNT; op++)
            printf("  %-20s %8ld%s\n", ir_op_get((ir_op)op)->name, ops[op], ops[op] ? "" : "   (never)");
        printf("\ncategories:\n");
        for (int c = 0; c <= IR_CAT_OPAQUE; c++) printf("  %-20s %8ld\n", catname[c], cats[c]);
        printf("\ndtypes of generated values:\n");
        for (int dt = 0; dt < FUSEC_DTYPE_COUNT; dt++)
            printf("  %-20s %8ld\n", ir_dtype_name((ir_dtype)dt), st.dtype_values[dt]);
        printf("\nfeatures:\n");
        for (int f = 0; f < GEN_F_COUNT; f++) printf("  %-26s %8ld\n", gen_feature_name((gen_feature)f), st.feature[f]);
    }
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* ---- main ---------------------------------------------------------------- */

static int usage(const char *msg) {
    if (msg) fprintf(stderr, "difftest: %s\n", msg);
    fprintf(stderr,
            "usage: difftest [--seed S] [--count N] [--backend interp-opt|plan] [--pipeline P]\n"
            "                [--tol-scale X] [--noise-k K | --no-noise] [--dump DIR] [-v] [FILES...]\n"
            "       difftest --check-gen [--seed S] [--count N] [-v]\n"
            "       difftest --print [--seed S] [--count N]\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out) {
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 0);
    if (errno || e == s || *e || s[0] == '-') return false;
    *out = v;
    return true;
}

int main(int argc, char **argv) {
    options o = {.seed = 1, .count = 100, .tol_scale = 1.0, .noise_k = 16.0};
    o.files = calloc((size_t)argc, sizeof *o.files);
    if (!o.files) return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--seed") && has_val) {
            if (!parse_u64(argv[++i], &o.seed)) return usage("--seed needs a non-negative integer");
        } else if (!strcmp(a, "--count") && has_val) {
            uint64_t v;
            if (!parse_u64(argv[++i], &v) || v > 100000000) return usage("--count needs a non-negative integer");
            o.count = (long)v;
            o.count_given = true;
        } else if (!strcmp(a, "--backend") && has_val) {
            const char *b = argv[++i];
            if (!strcmp(b, "interp-opt")) o.bk = BK_INTERP_OPT;
            else if (!strcmp(b, "plan")) o.bk = BK_PLAN;
            else return usage("--backend is interp-opt or plan");
        } else if (!strcmp(a, "--pipeline") && has_val) {
            o.pipeline = argv[++i];
        } else if (!strcmp(a, "--tol-scale") && has_val) {
            o.tol_scale = strtod(argv[++i], NULL);
            if (!(o.tol_scale > 0)) return usage("--tol-scale needs a positive number");
        } else if (!strcmp(a, "--noise-k") && has_val) {
            o.noise_k = strtod(argv[++i], NULL);
            if (!(o.noise_k >= 0)) return usage("--noise-k needs a number >= 0");
        } else if (!strcmp(a, "--no-noise")) {
            o.noise_k = 0;
        } else if (!strcmp(a, "--dump") && has_val) {
            o.dump = argv[++i];
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o.verbose = true;
        } else if (!strcmp(a, "--check-gen")) {
            o.check_gen = true;
        } else if (!strcmp(a, "--print")) {
            o.print = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(NULL);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            return usage("unknown option (or missing value)");
        } else {
            o.files[o.nfiles++] = argv[i];
        }
    }
    if (o.nfiles && !o.count_given) o.count = 0;
#ifndef DIFF_HAVE_PLAN
    if (o.bk == BK_PLAN && !o.check_gen && !o.print) {
        fprintf(stderr, "difftest: the plan backend is not built in (passes/memplan.h or runtime/plan_exec.h "
                        "was missing when this tree was configured; re-run cmake)\n");
        return 2;
    }
#endif
    install_crash_handler();
    if (o.check_gen) {
        int rc = check_gen(&o);
        free(o.files);
        return rc;
    }
    if (o.print) {
        for (long k = 0; k < o.count; k++) {
            char *t = gen_graph(o.seed + (uint64_t)k, NULL);
            if (t) fputs(t, stdout);
            free(t);
        }
        free(o.files);
        return 0;
    }

    totals tot = {0, 0, 0};
    gen_opts go;
    gen_opts_default(&go);
    for (long k = 0; k < o.count; k++) {
        uint64_t seed = o.seed + (uint64_t)k;
        char *text = gen_graph(seed, &go);
        if (!text) {
            printf("FAIL seed %llu: out of memory\n", (unsigned long long)seed);
            tot.failed++;
            continue;
        }
        char label[64], dname[64];
        snprintf(label, sizeof label, "seed %llu", (unsigned long long)seed);
        snprintf(dname, sizeof dname, "seed_%llu", (unsigned long long)seed);
        case_info c = {label, dname, text, strlen(text), seed, true};
        int r = run_case(&o, &c);
        if (r > 0) tot.passed++;
        else if (r == 0) tot.failed++;
        else tot.skipped++;
        free(text);
    }
    for (int f = 0; f < o.nfiles; f++) {
        size_t len;
        char *text = read_file(o.files[f], &len);
        if (!text) {
            printf("FAIL %s: cannot read: %s\n", o.files[f], strerror(errno));
            tot.failed++;
            continue;
        }
        char dname[256];
        const char *base = strrchr(o.files[f], '/');
        snprintf(dname, sizeof dname, "file_%s", base ? base + 1 : o.files[f]);
        case_info c = {o.files[f], dname, text, len, o.seed + 1000003u * (uint64_t)(f + 1), false};
        int r = run_case(&o, &c);
        if (r > 0) tot.passed++;
        else if (r == 0) tot.failed++;
        else tot.skipped++;
        free(text);
    }
    if (tot.skipped) printf("%ld skipped (files that do not parse or whose reference run fails)\n", tot.skipped);
    printf("%ld passed, %ld failed\n", tot.passed, tot.failed);
    free(o.files);
    return tot.failed ? 1 : 0;
}
