/*
 * cuda_library.c - PLAN_LIBRARY kernels: one library node computed by a
 * kernel of our own, followed in registers by the plan kernel's
 * elementwise epilogue (bias, activation, residual add), so the library
 * result never touches memory.
 *
 *  matmul, linear  a shared-memory tiled GEMM: 64 x 64 output tiles with
 *                  16-deep K slices (128 x 128 with 8-deep slices for large
 *                  problems), 256 threads each computing 4 x 4 (8 x 8)
 *                  outputs with fused multiply-adds in float (double for
 *                  f64), k in order; operands
 *                  are read through strides, so batch broadcasting (stride
 *                  0), 1-D operands and a transposed view of a buffer (the
 *                  transpose fusion leaves in front of a library op) need
 *                  no copies.  Tiles are loaded along whichever operand
 *                  dim is contiguous.  blockIdx.x walks the tiles, blockIdx.y
 *                  the batch.
 *  conv2d          the same tiled GEMM as an implicit GEMM (im2col on the
 *                  fly): rows are output pixels, columns output channels,
 *                  K runs over (input channel, kh, kw) of the group; each
 *                  group is a batch entry; taps in the padding read 0;
 *                  stride, padding, dilation, groups and bias.
 *  max_pool2d, avg_pool2d, adaptive_avg_pool2d
 *                  one thread per output element, the interpreter's window
 *                  rules (max: padding is -inf and NaN wins; avg: divisor
 *                  clipped to the padded input; adaptive: torch's windows).
 *
 * The library result is rounded to its dtype (as the interpreter stores
 * it), then the epilogue is evaluated at the output element through the
 * same evaluator as every other kernel (cuda_eval.c), with the library
 * node's value bound to that register (g->lib / g->lib_expr).
 *
 * The same matmul / linear for a BLAS library (gemm_alt): where the GEMM
 * fits one (f32, f16 or bf16; row- or column-major operands; one stride
 * per batch), the kernel also carries a cg_cuda_gemm that the runtime may
 * hand to cuBLASLt instead of compiling the tiled kernel.  A kernel whose
 * only output is the product needs nothing else (the library writes the
 * output buffer, bias included); any other gets a second, separate
 * translation unit, the epilogue kernel, which reads the product from
 * scratch (one rounding to the dtype, as the tiled kernel does) and
 * evaluates the rest of the kernel there through the same evaluator.
 * conv2d with groups of one gets a BLAS form too (conv_alt): per image,
 * weights @ im2col matrix, the im2col matrix written to scratch by a
 * prologue kernel (a 1x1, stride-1, unpadded conv reads the image
 * itself); its bias, one per output channel, is added by the epilogue to
 * an unrounded f32 product.
 *
 * Composite ops (softmax, layer_norm, sdpa, ...) are not generated: the
 * default pipeline decomposes them, and a plan made without decomposition
 * gets a clear error naming the op.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda_impl.h"

/* A library operand: a buffer read through strides (a transposed view
 * swaps the strides of its last two dims). */
typedef struct lib_opnd {
    int buf;
    ir_dtype dt;
    int rank;
    int64_t dim[IR_MAX_RANK], stride[IR_MAX_RANK];
} lib_opnd;

static bool get_operand(cg *g, const ir_node *L, int i, lib_opnd *o) {
    const ir_value *v = L->in[i];
    memset(o, 0, sizeof *o);
    o->dt = v->type.dtype;
    o->rank = v->type.rank;
    memcpy(o->dim, v->type.dim, sizeof(int64_t) * (size_t)o->rank);
    const ir_value *src = v;
    bool swap = false;
    if (cg_input_buf(g, v) < 0 && v->kind == IR_VAL_NODE && v->def->op == IR_OP_TRANSPOSE &&
        cg_body_index(g, v) >= 0) {
        int r = v->type.rank, a = 0, b = 0;
        bool ok = ir_norm_axis(ir_attr_i(v->def, "dim0"), r, &a) && ir_norm_axis(ir_attr_i(v->def, "dim1"), r, &b);
        if (ok && r >= 2 && ((a == r - 1 && b == r - 2) || (a == r - 2 && b == r - 1))) {
            src = v->def->in[0];
            swap = true;
        }
    }
    o->buf = cg_input_buf(g, src);
    if (o->buf < 0)
        return cg_fail(g, L, "operand %d of %s is neither a buffer nor a transposed view of one", i,
                       ir_op_get(L->op)->name);
    int64_t st = 1;
    for (int d = o->rank - 1; d >= 0; d--) {
        o->stride[d] = st;
        st *= src->type.dim[d];
    }
    if (swap) {
        int64_t t = o->stride[o->rank - 1];
        o->stride[o->rank - 1] = o->stride[o->rank - 2];
        o->stride[o->rank - 2] = t;
    }
    return true;
}

static bool same_shape(const ir_type *a, const ir_type *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

/* Evaluate and store every output of the kernel at coordinates comps of
 * the library result's shape (the caller guards validity). */
static bool epilogue(cg *g, const cg_ix *comps, int rank) {
    const plan_kernel *k = g->k;
    cg_scope_push(g);
    cg_at *at = cg_at_new(g, 1, rank);
    if (!at) return false;
    memcpy(at->ix[0], comps, sizeof(cg_ix) * (size_t)rank);
    const char *names[4][1];
    for (int o = 0; o < k->nout && o < 4 && g->ok; o++) cg_eval(g, g->p->bufs[k->out[o]].value, at, names[o]);
    const ir_type *t = &g->lib->type;
    cg_ix off = cg_ix_linear(g, comps, t->dim, t->rank);
    for (int o = 0; o < k->nout && o < 4 && g->ok; o++) cg_store(g, k->out[o], at, &off, names[o]);
    free(at);
    cg_scope_pop(g);
    return g->ok;
}

/* A 1-D grid-stride loop over the elements of the library result, with
 * its coordinates as named variables. */
static void elem_loop_open(cg *g, const ir_type *t, const char *const *names, cg_ix *comps) {
    int64_t n = ir_type_numel(t);
    cg_line(g, "for (long long ob = (long long)blockIdx.x * blockDim.x + threadIdx.x; ob < %" PRId64
               "LL; ob += (long long)gridDim.x * blockDim.x) {", n);
    g->indent++;
    cg_line(g, "const idx_t oi = (idx_t)ob;");
    cg_ix lin = cg_ixv(cg_var_new(g, "oi", 0, n - 1), 1);
    cg_ix c[IR_MAX_RANK];
    cg_ix_split(g, &lin, t->dim, t->rank, c);
    for (int i = 0; i < t->rank; i++) {
        cg_line(g, "const idx_t %s = %s;", names[i], cg_ix_str(g, &c[i]));
        comps[i] = cg_ixv(cg_var_new(g, names[i], 0, t->dim[i] - 1), 1);
    }
}

static void elem_loop_close(cg *g) {
    g->indent--;
    cg_line(g, "}");
}

static char *ld(cg *g, const lib_opnd *o, const char *off) { return cg_ld(g, o->dt, cg_strf(g, "b%d", o->buf), off); }

/* ---- the tiled GEMM core ------------------------------------------------------ */

/* One GEMM: C[z][m][n] = sum_k A(z, m, k) * B(z, k, n) for z < batch, as
 * C expressions of the emitted loop variables: `a_val` reads A at (m, k)
 * (after the statements `a_pre`, with `a_ok` as an extra condition, e.g. a
 * conv tap inside the padding), `b_val` reads B at (kq, n); `zpre` are
 * statements once per batch index z.  a_kfast / b_nfast: the operand is
 * contiguous along k / n, so consecutive threads load along it. */
typedef struct gemm_spec {
    int64_t M, N, K, batch;
    bool dbl;
    const char *zpre, *a_pre, *a_ok, *a_val, *b_val, *bias;
    bool a_kfast, b_nfast; /* an A element that fails a_ok (conv padding) reads 0, and 0 * an
                              inf or NaN weight is NaN, as in PyTorch's zero padding */
} gemm_spec;

/* Output coordinates of element (m, n) of batch z (variables mv, nv, zv). */
typedef void (*gemm_comps_fn)(cg *g, const void *ctx, int mv, int nv, int zv, cg_ix *comps);

/* Emit the kernel body: blocks of 256 threads (16 x 16) compute BM x BN
 * tiles, BM = 16 TM, each thread a TM x TN register tile; K advances in
 * slices of BK through shared memory.  Large problems take 128 x 128 tiles
 * (8 x 8 per thread), others 64 x 64 (4 x 4). */
static bool gemm_core(cg *g, const gemm_spec *sp, const ir_value *res, gemm_comps_fn comps_fn, const void *ctx,
                      ir_str *body, unsigned grid[3], unsigned block[3]) {
    const char *T = sp->dbl ? "double" : "float";
    int64_t M = sp->M, N = sp->N, K = sp->K;
    bool big = M >= 128 && N >= 128 && ((M + 127) / 128) * ((N + 127) / 128) * sp->batch >= 128;
    int TM = big ? 8 : 4, BM = 16 * TM, BK = big ? 8 : 16, PER = BM * BK / 256;
    int64_t MT = (M + BM - 1) / BM, NT = (N + BM - 1) / BM;
    block[0] = 256;
    block[1] = block[2] = 1;
    grid[0] = cg_clamp_grid(MT * NT, 0x7fffffffu);
    grid[1] = cg_clamp_grid(sp->batch, 65535u);
    grid[2] = 1;
    g->out = body;
    g->indent = 1;
    cg_line(g, "/* C[%" PRId64 " x %" PRId64 "] = A[%" PRId64 " x %" PRId64 "] @ B[%" PRId64 " x %" PRId64 "], %" PRId64
               " batch(es); %d x %d tiles, %d x %d per thread */",
            M, N, M, K, K, N, sp->batch, BM, BM, TM, TM);
    cg_line(g, "__shared__ %s As[%d][%d + 1];", T, BK, BM);
    cg_line(g, "__shared__ %s Bs[%d][%d + 1];", T, BK, BM);
    cg_line(g, "const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;");
    cg_line(g, "for (long long zb = blockIdx.y; zb < %" PRId64 "LL; zb += gridDim.y) {", sp->batch);
    g->indent++;
    cg_line(g, "const idx_t z = (idx_t)zb; /* batch */");
    cg_scope_push(g);
    int zv = cg_var_new(g, "z", 0, sp->batch - 1);
    if (sp->zpre) cg_line(g, "%s", sp->zpre);
    cg_line(g, "for (long long tb = blockIdx.x; tb < %" PRId64 "LL; tb += gridDim.x) {", MT * NT);
    g->indent++;
    cg_line(g, "const idx_t m0 = (idx_t)(tb / %" PRId64 ") * %d, n0 = (idx_t)(tb %% %" PRId64 ") * %d;", NT, BM, NT, BM);
    cg_line(g, "%s acc[%d][%d];", T, TM, TM);
    cg_line(g, "#pragma unroll");
    cg_line(g, "for (int i = 0; i < %d; i++)", TM);
    cg_line(g, "#pragma unroll");
    cg_line(g, "    for (int j = 0; j < %d; j++) acc[i][j] = 0;", TM);
    cg_line(g, "for (idx_t k0 = 0; k0 < %" PRId64 "; k0 += %d) {", K, BK);
    g->indent++;
    cg_line(g, "#pragma unroll");
    cg_line(g, "for (int r = 0; r < %d; r++) { /* the A tile, the contiguous dim fastest */", PER);
    g->indent++;
    cg_line(g, "const int l = threadIdx.x + r * 256;");
    if (sp->a_kfast) cg_line(g, "const int kk = l %% %d, mm = l / %d;", BK, BK);
    else cg_line(g, "const int mm = l %% %d, kk = l / %d;", BM, BM);
    cg_line(g, "const idx_t m = m0 + mm, k = k0 + kk;");
    if (sp->a_pre) cg_line(g, "%s", sp->a_pre);
    cg_line(g, "As[kk][mm] = (m < %" PRId64 " && k < %" PRId64 "%s%s) ? (%s)%s : (%s)0;", M, K,
            sp->a_ok ? " && " : "", sp->a_ok ? sp->a_ok : "", T, sp->a_val, T);
    g->indent--;
    cg_line(g, "}");
    cg_line(g, "#pragma unroll");
    cg_line(g, "for (int r = 0; r < %d; r++) { /* the B tile */", PER);
    g->indent++;
    cg_line(g, "const int l = threadIdx.x + r * 256;");
    if (sp->b_nfast) cg_line(g, "const int nn = l %% %d, kb = l / %d;", BM, BM);
    else cg_line(g, "const int kb = l %% %d, nn = l / %d;", BK, BK);
    cg_line(g, "const idx_t n = n0 + nn, kq = k0 + kb;");
    cg_line(g, "Bs[kb][nn] = (n < %" PRId64 " && kq < %" PRId64 ") ? (%s)%s : (%s)0;", N, K, T, sp->b_val, T);
    g->indent--;
    cg_line(g, "}");
    cg_line(g, "__syncthreads();");
    cg_line(g, "#pragma unroll");
    cg_line(g, "for (int kk = 0; kk < %d; kk++) {", BK);
    cg_line(g, "    %s a[%d], b[%d];", T, TM, TM);
    cg_line(g, "#pragma unroll");
    cg_line(g, "    for (int i = 0; i < %d; i++) a[i] = As[kk][ty * %d + i];", TM, TM);
    cg_line(g, "#pragma unroll");
    cg_line(g, "    for (int j = 0; j < %d; j++) b[j] = Bs[kk][tx * %d + j];", TM, TM);
    cg_line(g, "#pragma unroll");
    cg_line(g, "    for (int i = 0; i < %d; i++)", TM);
    cg_line(g, "#pragma unroll");
    cg_line(g, "        for (int j = 0; j < %d; j++) acc[i][j] = %s(a[i], b[j], acc[i][j]);", TM, sp->dbl ? "fma" : "fmaf");
    cg_line(g, "}");
    cg_line(g, "__syncthreads();");
    g->indent--;
    cg_line(g, "}");
    /* the epilogue, element by element */
    cg_line(g, "#pragma unroll");
    cg_line(g, "for (int i = 0; i < %d; i++) {", TM);
    cg_line(g, "#pragma unroll");
    cg_line(g, "    for (int j = 0; j < %d; j++) {", TM);
    g->indent += 2;
    cg_line(g, "const idx_t m = m0 + ty * %d + i, n = n0 + tx * %d + j;", TM, TM);
    cg_line(g, "if (m >= %" PRId64 " || n >= %" PRId64 ") continue;", M, N);
    int mv = cg_var_new(g, "m", 0, M - 1), nv = cg_var_new(g, "n", 0, N - 1);
    char *val = sp->bias ? cg_strf(g, "(acc[i][j] + (%s)%s)", T, sp->bias) : (char *)"acc[i][j]";
    const char *lv = cg_fresh(g, "lib");
    ir_dtype odt = res->type.dtype;
    cg_line(g, "const %s %s = %s; /* %s, rounded to %s */", cg_ctype(odt), lv, cg_round(g, odt, val),
            ir_op_get(res->def->op)->name, ir_dtype_name(odt));
    g->lib_expr = lv;
    cg_ix comps[IR_MAX_RANK];
    comps_fn(g, ctx, mv, nv, zv, comps);
    bool ok = epilogue(g, comps, res->type.rank);
    g->indent -= 2;
    cg_line(g, "    }");
    cg_line(g, "}");
    g->indent--;
    cg_line(g, "}");
    cg_scope_pop(g);
    g->indent--;
    cg_line(g, "}");
    return ok;
}

/* ---- matmul and linear ----------------------------------------------------------- */

typedef struct mm_ctx {
    const ir_type *ot;
    int nb;
    bool a2, b2;
} mm_ctx;

static void mm_comps(cg *g, const void *ctx, int mv, int nv, int zv, cg_ix *comps) {
    const mm_ctx *c = ctx;
    cg_ix zl = cg_ixv(zv, 1);
    cg_ix_split(g, &zl, c->ot->dim, c->nb, comps);
    int r = c->nb;
    if (c->a2) comps[r++] = cg_ixv(mv, 1);
    if (c->b2) comps[r++] = cg_ixv(nv, 1);
    FC_ASSERT(r == c->ot->rank);
}

/* A matmul or linear as one batched problem: [batch] x (M x K) @ (K x N),
 * each operand element at its strides; linear is matmul(x, transpose(w)):
 * w [N, K] read as B [K, N].  abs[i] / bbs[i]: the operands' strides along
 * batch dim i of the output (0 where broadcast). */
typedef struct mm_prob {
    lib_opnd A, B, bias;
    int64_t M, N, K, sam, sak, sbk, sbn, batch;
    int nb; /* batch dims of the output */
    bool a2, b2;
    int64_t abs[IR_MAX_RANK], bbs[IR_MAX_RANK];
} mm_prob;

static bool mm_problem(cg *g, const ir_node *L, mm_prob *q) {
    memset(q, 0, sizeof *q);
    q->bias.buf = -1;
    lib_opnd *A = &q->A, *B = &q->B;
    bool lin = L->op == IR_OP_LINEAR;
    if (!get_operand(g, L, 0, A) || !get_operand(g, L, 1, B)) return false;
    if (lin && L->nin > 2 && !get_operand(g, L, 2, &q->bias)) return false;
    const ir_type *ot = &L->out->type;
    q->a2 = A->rank >= 2;
    q->b2 = lin || B->rank >= 2;
    q->M = q->a2 ? A->dim[A->rank - 2] : 1;
    q->K = A->dim[A->rank - 1];
    q->sam = q->a2 ? A->stride[A->rank - 2] : 0;
    q->sak = A->stride[A->rank - 1];
    if (lin) {
        q->N = B->dim[0];
        q->sbk = B->stride[1];
        q->sbn = B->stride[0];
    } else {
        q->N = q->b2 ? B->dim[B->rank - 1] : 1;
        q->sbk = q->b2 ? B->stride[B->rank - 2] : B->stride[0];
        q->sbn = q->b2 ? B->stride[B->rank - 1] : 0;
    }
    int abatch = q->a2 ? A->rank - 2 : 0, bbatch = lin ? 0 : q->b2 ? B->rank - 2 : 0;
    q->nb = ot->rank - (q->a2 ? 1 : 0) - (q->b2 ? 1 : 0);
    q->batch = 1;
    for (int i = 0; i < q->nb; i++) {
        q->batch *= ot->dim[i];
        int ia = i - (q->nb - abatch), ib = i - (q->nb - bbatch);
        q->abs[i] = ia >= 0 && A->dim[ia] != 1 ? A->stride[ia] : 0;
        q->bbs[i] = ib >= 0 && B->dim[ib] != 1 ? B->stride[ib] : 0;
    }
    return true;
}

static bool gen_gemm(cg *g, const ir_node *L, ir_str *body, unsigned grid[3], unsigned block[3]) {
    mm_prob q;
    if (!mm_problem(g, L, &q)) return false;
    const ir_type *ot = &L->out->type;
    int nb = q.nb;
    int64_t batch = q.batch;
    /* batch offsets of A and B from z, through their broadcast strides */
    int zv = cg_var_new(g, "z", 0, batch - 1);
    cg_ix zc[IR_MAX_RANK], zl = cg_ixv(zv, 1);
    ir_str dummy = {0}, *saved = g->out;
    g->out = &dummy; /* forms only: nothing materialized goes to the body */
    cg_ix_split(g, &zl, ot->dim, nb, zc);
    cg_ix abase = cg_ixc(0), bbase = cg_ixc(0);
    for (int i = 0; i < nb; i++) {
        cg_ix t = zc[i];
        cg_ix_scale(g, &t, q.abs[i]);
        cg_ix_add(g, &abase, &t);
        t = zc[i];
        cg_ix_scale(g, &t, q.bbs[i]);
        cg_ix_add(g, &bbase, &t);
    }
    /* the batch offsets as plain expressions of z (any helper variables
     * they need are recomputed inline) */
    char *zpre = cg_strf(g, "%sconst idx_t abase = %s, bbase = %s;", dummy.buf ? dummy.buf : "",
                         cg_ix_str(g, &abase), cg_ix_str(g, &bbase));
    for (char *c = zpre; *c; c++)
        if (*c == '\n') *c = ' ';
    ir_str_free(&dummy);
    g->out = saved;
    gemm_spec sp = {
        .M = q.M, .N = q.N, .K = q.K, .batch = batch, .dbl = ot->dtype == FUSEC_DTYPE_F64, .zpre = zpre,
        .a_val = ld(g, &q.A, cg_strf(g, "abase + m * %" PRId64 " + k * %" PRId64, q.sam, q.sak)),
        .b_val = ld(g, &q.B, cg_strf(g, "bbase + kq * %" PRId64 " + n * %" PRId64, q.sbk, q.sbn)),
        .bias = q.bias.buf >= 0 ? ld(g, &q.bias, "n") : NULL,
        .a_kfast = q.sak == 1 || q.sam != 1, .b_nfast = q.sbn == 1 || q.sbk != 1,
    };
    mm_ctx c = {.ot = ot, .nb = nb, .a2 = q.a2, .b2 = q.b2};
    return gemm_core(g, &sp, L->out, mm_comps, &c, body, grid, block);
}

/* ---- the same GEMM for a BLAS library ----------------------------------------------- */

/* The single stride that walks the flattened batch of an operand whose
 * stride along output batch dim i is s[i]; false when none does (a
 * broadcast dim inside a strided one). */
static bool flat_stride(const int64_t *s, const int64_t *dim, int nb, int64_t *out) {
    int64_t span = 1;
    bool have = false;
    *out = 0;
    for (int i = nb - 1; i >= 0; i--) {
        if (dim[i] == 1) continue;
        if (!have) *out = s[i];
        else if (s[i] != *out * span) return false;
        have = true;
        span *= dim[i];
    }
    return true;
}

/* rows x cols at strides (*rs, *cs) as a row- or column-major matrix: one
 * stride 1, the other at least the extent it skips.  The stride of an
 * extent-1 dim never matters and is set to fit. */
static bool as_matrix(int64_t rows, int64_t cols, int64_t *rs, int64_t *cs) {
    if (rows == 1) *rs = *cs == 1 ? cols : 1;
    if (cols == 1) *cs = *rs == 1 ? rows : 1;
    if (rows == 1 && cols == 1) *rs = *cs = 1;
    return (*cs == 1 && *rs >= cols) || (*rs == 1 && *cs >= rows);
}

static int arg_of(const cg_cuda_kernel *k, int buf) {
    for (int i = 0; i < k->nbufs; i++)
        if (k->bufs[i] == buf) return i;
    return -1;
}

/* The frame of a kernel that runs beside a BLAS GEMM (its epilogue or
 * prologue): main's buffers and one scratch pointer (of `bytes`, written
 * before it is read), one thread per element of n, name main's + suffix. */
static bool blas_part(cg *g, const cg_cuda_kernel *main, const char *suffix, int64_t bytes, int64_t n,
                      cg_cuda_kernel *e) {
    e->bufs = malloc(sizeof(int) * (size_t)(main->nbufs + 1));
    e->name = cg_kernel_name(g, suffix);
    if (!e->bufs || !e->name) return cg_fail(g, NULL, "out of memory");
    memcpy(e->bufs, main->bufs, sizeof(int) * (size_t)main->nbufs);
    e->nbufs = main->nbufs;
    e->nscratch = 1;
    e->scratch_bytes[0] = bytes;
    e->scratch_unzeroed = true;
    e->block[0] = CG_BLOCK;
    e->block[1] = e->block[2] = 1;
    e->grid[0] = cg_clamp_grid((n + CG_BLOCK - 1) / CG_BLOCK, 0x7fffffffu);
    e->grid[1] = e->grid[2] = 1;
    cg_reset(g);
    return true;
}

/* The kernel `main` again, with the GEMM left to a library: the library
 * writes the rounded product to scratch 0, and this kernel reads it at
 * each element of the library result and finishes the kernel there, as
 * the tiled GEMM's epilogue does in registers. */
static bool gen_blas_epilogue(cg *g, const ir_node *L, const cg_cuda_kernel *main, const cg_cuda_gemm *gm,
                              const lib_opnd *rowbias, cg_cuda_kernel *e) {
    const ir_type *t = &L->out->type;
    ir_dtype dt = t->dtype;
    int64_t n = ir_type_numel(t);
    if (!blas_part(g, main, "_blas_epilogue", n * (int64_t)(gm->d_f32 ? 4 : ir_dtype_size(dt)), n, e)) return false;
    g->vec = 1;
    g->lib = L->out;
    ir_str body = {0}, ks = {0};
    g->out = &body;
    g->indent = 1;
    static const char *const nm[IR_MAX_RANK] = {"e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7"};
    cg_ix comps[IR_MAX_RANK];
    elem_loop_open(g, t, nm, comps);
    const char *lv = cg_fresh(g, "lib");
    if (!gm->d_f32) {
        cg_line(g, "const %s %s = %s; /* %s, computed by the BLAS library */", cg_ctype(dt), lv,
                cg_ld(g, dt, cg_strf(g, "((const %s *)scratch0)", cg_stype(dt)), "oi"), ir_op_get(L->op)->name);
    } else {
        /* D unrounded, in f32: add the bias of row (channel) comps[1], round once */
        const char *acc = "((const float *)scratch0)[oi]";
        if (rowbias) acc = cg_strf(g, "(%s + %s)", acc, ld(g, rowbias, cg_ix_str(g, &comps[1])));
        cg_line(g, "const %s %s = %s; /* %s: the BLAS library's sum%s, rounded */", cg_ctype(dt), lv,
                cg_round(g, dt, acc), ir_op_get(L->op)->name, rowbias ? " and the bias" : "");
    }
    g->lib_expr = lv;
    bool ok = epilogue(g, comps, t->rank);
    elem_loop_close(g);
    ok = cg_kernel_entry(g, &ks, e->name, CG_BLOCK, e->bufs, e->nbufs, 1, &body, ok);
    if (ok) {
        e->source = cg_assemble(g, "the epilogue of a GEMM that a BLAS library computes, one thread per element", &ks);
        ok = e->source != NULL;
    }
    ir_str_free(&ks);
    return ok;
}

/* Describe the kernel's matmul / linear as a BLAS GEMM (out->gemm) where
 * one fits: f32, f16 or bf16 throughout, every operand a row- or
 * column-major matrix, each batch walked by one stride.  Not fitting is
 * no error: the kernel's own source stays the only way to run it. */
static bool gemm_alt(cg *g, const ir_node *L, cg_cuda_kernel *out) {
    const plan_kernel *k = g->k;
    ir_dtype dt = L->out->type.dtype;
    if (dt != FUSEC_DTYPE_F32 && dt != FUSEC_DTYPE_F16 && dt != FUSEC_DTYPE_BF16) return true;
    mm_prob q;
    if (!mm_problem(g, L, &q)) return false;
    if (q.A.dt != dt || q.B.dt != dt || (q.bias.buf >= 0 && q.bias.dt != dt)) return true;
    if (q.M < 1 || q.N < 1 || q.K < 1) return true;
    cg_cuda_gemm gm = {.dt = dt, .m = q.M, .n = q.N, .k = q.K, .batch = q.batch,
                       .a_rs = q.sam, .a_cs = q.sak, .b_rs = q.sbk, .b_cs = q.sbn};
    const int64_t *od = L->out->type.dim;
    if (!flat_stride(q.abs, od, q.nb, &gm.a_bs) || !flat_stride(q.bbs, od, q.nb, &gm.b_bs)) return true;
    if (!as_matrix(q.M, q.K, &gm.a_rs, &gm.a_cs) || !as_matrix(q.K, q.N, &gm.b_rs, &gm.b_cs)) return true;
    gm.a_arg = arg_of(out, q.A.buf);
    gm.b_arg = arg_of(out, q.B.buf);
    gm.bias_arg = q.bias.buf >= 0 ? arg_of(out, q.bias.buf) : -1;
    if (gm.a_arg < 0 || gm.b_arg < 0 || (q.bias.buf >= 0 && gm.bias_arg < 0)) return true;
    bool whole = k->nout == 1 && g->p->bufs[k->out[0]].value == L->out;
    gm.d_arg = whole ? arg_of(out, k->out[0]) : -1;
    cg_cuda_kernel *e = NULL;
    if (!whole) {
        e = calloc(1, sizeof *e);
        if (!e) return cg_fail(g, NULL, "out of memory");
        if (!gen_blas_epilogue(g, L, out, &gm, NULL, e)) {
            cg_cuda_kernel_free(e);
            free(e);
            return false;
        }
    }
    gm.epilogue = e;
    out->gemm = malloc(sizeof *out->gemm);
    if (!out->gemm) {
        cg_cuda_kernel_free(e);
        free(e);
        return cg_fail(g, NULL, "out of memory");
    }
    *out->gemm = gm;
    return true;
}

/* ---- conv2d as an implicit GEMM ------------------------------------------------- */

static void attr_pair(const ir_node *n, const char *name, const int64_t *dflt, int64_t out[2]) {
    if (!ir_attr_has(n, name) && dflt) {
        out[0] = dflt[0], out[1] = dflt[1];
        return;
    }
    int cnt = 0;
    const int64_t *v = ir_attr_ints(n, name, &cnt);
    out[0] = cnt > 0 ? v[0] : 0;
    out[1] = cnt > 1 ? v[1] : out[0];
}

typedef struct conv_ctx {
    int64_t HO, WO, COG;
} conv_ctx;

/* Row m of the implicit GEMM is output pixel (image, oh, ow); column n is
 * output channel n of group z. */
static void conv_comps(cg *g, const void *ctx, int mv, int nv, int zv, cg_ix *comps) {
    const conv_ctx *c = ctx;
    cg_ix m = cg_ixv(mv, 1);
    int64_t dims[3] = {0, c->HO, c->WO};
    dims[0] = g->vars[mv].hi / (c->HO * c->WO) + 1;
    cg_ix pix[3];
    cg_ix_split(g, &m, dims, 3, pix);
    cg_ix co = cg_ixv(zv, c->COG), n = cg_ixv(nv, 1);
    cg_ix_add(g, &co, &n);
    comps[0] = pix[0];
    comps[1] = co;
    comps[2] = pix[1];
    comps[3] = pix[2];
}

/* conv2d, NCHW: per group z, C[pixel][co] = sum over (ci, kh, kw) of
 * x[image, z * CG + ci, oh * sh - ph + kh * dh, ow * sw - pw + kw * dw] *
 * w[z * COG + co, ci, kh, kw]; taps in the padding read 0. */
static bool gen_conv(cg *g, const ir_node *L, ir_str *body, unsigned grid[3], unsigned block[3]) {
    lib_opnd X, W, bias = {.buf = -1};
    if (!get_operand(g, L, 0, &X) || !get_operand(g, L, 1, &W)) return false;
    if (L->nin > 2 && !get_operand(g, L, 2, &bias)) return false;
    const ir_type *ot = &L->out->type;
    int64_t st[2], pd[2], dl[2], groups = ir_attr_i(L, "groups");
    attr_pair(L, "stride", NULL, st);
    attr_pair(L, "padding", NULL, pd);
    attr_pair(L, "dilation", NULL, dl);
    if (groups < 1) groups = 1;
    int64_t NI = X.dim[0], C = X.dim[1], H = X.dim[2], Wd = X.dim[3];
    int64_t CO = W.dim[0], CG = W.dim[1], KH = W.dim[2], KW = W.dim[3], COG = CO / groups;
    int64_t HO = ot->dim[2], WO = ot->dim[3], KK = CG * KH * KW;
    gemm_spec sp = {
        .M = NI * HO * WO, .N = COG, .K = KK, .batch = groups, .dbl = ot->dtype == FUSEC_DTYPE_F64,
        .a_pre = cg_strf(g,
                         "const idx_t img = m / %" PRId64 ", oh = m / %" PRId64 " %% %" PRId64 ", ow = m %% %" PRId64
                         ", ci = k / %" PRId64 ", kh = k / %" PRId64 " %% %" PRId64 ", kw = k %% %" PRId64
                         "; const idx_t ih = oh * %" PRId64 " - %" PRId64 " + kh * %" PRId64 ", iw = ow * %" PRId64
                         " - %" PRId64 " + kw * %" PRId64 ";",
                         HO * WO, WO, HO, WO, KH * KW, KW, KH, KW, st[0], pd[0], dl[0], st[1], pd[1], dl[1]),
        .a_ok = cg_strf(g, "ih >= 0 && ih < %" PRId64 " && iw >= 0 && iw < %" PRId64, H, Wd),
        .a_val = ld(g, &X, cg_strf(g, "((img * %" PRId64 " + z * %" PRId64 " + ci) * %" PRId64 " + ih) * %" PRId64 " + iw",
                                   C, CG, H, Wd)),
        .b_val = ld(g, &W, cg_strf(g, "(z * %" PRId64 " + n) * %" PRId64 " + kq", COG, KK)),
        .bias = bias.buf >= 0 ? ld(g, &bias, cg_strf(g, "z * %" PRId64 " + n", COG)) : NULL,
        .a_kfast = false, /* neighbouring pixels are (mostly) neighbours in memory */
        .b_nfast = false,
    };
    conv_ctx c = {.HO = HO, .WO = WO, .COG = COG};
    return gemm_core(g, &sp, L->out, conv_comps, &c, body, grid, block);
}

/* conv2d for a BLAS library: per image z, out[z] (CO x pixels) = W (CO x
 * C*KH*KW) @ col[z] (C*KH*KW x pixels), col being the image itself for a
 * 1x1 convolution with stride 1 and no padding and otherwise an im2col
 * matrix that a prologue kernel writes to scratch.  Groups of one only;
 * a bias (one per output channel: a row of D, which cuBLASLt's bias
 * epilogue does not do) is added by the epilogue kernel to an f32 D. */
static bool gen_im2col(cg *g, const lib_opnd *X, const ir_node *L, const cg_cuda_kernel *main, cg_cuda_kernel *e,
                       int64_t total) {
    const ir_type *ot = &L->out->type;
    int64_t st[2], pd[2], dl[2];
    attr_pair(L, "stride", NULL, st);
    attr_pair(L, "padding", NULL, pd);
    attr_pair(L, "dilation", NULL, dl);
    const ir_value *w = L->in[1];
    int64_t C = X->dim[1], H = X->dim[2], Wd = X->dim[3], KH = w->type.dim[2], KW = w->type.dim[3];
    int64_t HO = ot->dim[2], WO = ot->dim[3], P = HO * WO, KK = C * KH * KW;
    if (!blas_part(g, main, "_im2col", total * (int64_t)ir_dtype_size(X->dt), total, e)) return false;
    ir_str body = {0}, ks = {0};
    g->out = &body;
    g->indent = 1;
    const char *T = cg_stype(X->dt);
    cg_line(g, "for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < %" PRId64
               "LL; t += (long long)gridDim.x * blockDim.x) {", total);
    g->indent++;
    cg_line(g, "const idx_t i = (idx_t)t;");
    cg_line(g, "const idx_t pix = i %% %" PRId64 ", kk = i / %" PRId64 " %% %" PRId64 ", img = i / %" PRId64 ";", P, P,
            KK, P * KK);
    cg_line(g, "const idx_t oh = pix / %" PRId64 ", ow = pix %% %" PRId64 ", ci = kk / %" PRId64 ", kh = kk / %" PRId64
               " %% %" PRId64 ", kw = kk %% %" PRId64 ";", WO, WO, KH * KW, KW, KH, KW);
    cg_line(g, "const idx_t ih = oh * %" PRId64 " - %" PRId64 " + kh * %" PRId64 ", iw = ow * %" PRId64 " - %" PRId64
               " + kw * %" PRId64 ";", st[0], pd[0], dl[0], st[1], pd[1], dl[1]);
    cg_line(g, "((%s *)scratch0)[i] = ih >= 0 && ih < %" PRId64 " && iw >= 0 && iw < %" PRId64
               " ? b%d[((img * %" PRId64 " + ci) * %" PRId64 " + ih) * %" PRId64 " + iw] : (%s)0;",
            T, H, Wd, X->buf, C, H, Wd, T);
    g->indent--;
    cg_line(g, "}");
    bool ok = cg_kernel_entry(g, &ks, e->name, CG_BLOCK, e->bufs, e->nbufs, 1, &body, true);
    if (ok) {
        e->source = cg_assemble(g, "im2col for a convolution that a BLAS library computes, one thread per element", &ks);
        ok = e->source != NULL;
    }
    ir_str_free(&ks);
    return ok;
}

static bool contiguous(const lib_opnd *o) {
    int64_t st = 1;
    for (int d = o->rank - 1; d >= 0; d--) {
        if (o->dim[d] != 1 && o->stride[d] != st) return false;
        st *= o->dim[d];
    }
    return true;
}

static bool conv_alt(cg *g, const ir_node *L, cg_cuda_kernel *out) {
    const plan_kernel *k = g->k;
    ir_dtype dt = L->out->type.dtype;
    if (dt != FUSEC_DTYPE_F32 && dt != FUSEC_DTYPE_F16 && dt != FUSEC_DTYPE_BF16) return true;
    lib_opnd X, W, bias = {.buf = -1};
    if (!get_operand(g, L, 0, &X) || !get_operand(g, L, 1, &W)) return false;
    if (L->nin > 2 && !get_operand(g, L, 2, &bias)) return false;
    if (X.dt != dt || W.dt != dt || (bias.buf >= 0 && bias.dt != dt)) return true;
    if (ir_attr_i(L, "groups") > 1 || !contiguous(&X) || !contiguous(&W)) return true;
    int64_t st[2], pd[2];
    attr_pair(L, "stride", NULL, st);
    attr_pair(L, "padding", NULL, pd);
    const ir_type *ot = &L->out->type;
    int64_t NI = X.dim[0], C = X.dim[1], HW = X.dim[2] * X.dim[3], CO = W.dim[0];
    int64_t P = ot->dim[2] * ot->dim[3], KK = W.dim[1] * W.dim[2] * W.dim[3];
    if (NI < 1 || CO < 1 || P < 1 || KK < 1 || W.dim[1] != C) return true;
    bool direct = W.dim[2] == 1 && W.dim[3] == 1 && st[0] == 1 && st[1] == 1 && pd[0] == 0 && pd[1] == 0;
    int64_t total = NI * KK * P;
    if (!direct && total > ((int64_t)1 << 31) - ((int64_t)1 << 24)) return true;
    cg_cuda_gemm gm = {.dt = dt, .m = CO, .n = P, .k = KK, .batch = NI,
                       .a_rs = KK, .a_cs = 1, .a_bs = 0, .b_rs = P, .b_cs = 1,
                       .b_bs = direct ? C * HW : KK * P, .bias_arg = -1, .d_f32 = bias.buf >= 0};
    gm.a_arg = arg_of(out, W.buf);
    gm.b_arg = direct ? arg_of(out, X.buf) : -1;
    if (gm.a_arg < 0 || (direct && gm.b_arg < 0)) return true;
    gm.col_bytes = direct ? 0 : total * (int64_t)ir_dtype_size(dt);
    gm.d_off = (gm.col_bytes + PLAN_ARENA_ALIGN - 1) / PLAN_ARENA_ALIGN * PLAN_ARENA_ALIGN;
    bool whole = !gm.d_f32 && k->nout == 1 && g->p->bufs[k->out[0]].value == L->out;
    gm.d_arg = whole ? arg_of(out, k->out[0]) : -1;
    cg_cuda_kernel *e = whole ? NULL : calloc(1, sizeof *e), *pro = direct ? NULL : calloc(1, sizeof *pro);
    bool ok = (whole || e) && (direct || pro);
    if (!ok) cg_fail(g, NULL, "out of memory");
    if (ok && e) ok = gen_blas_epilogue(g, L, out, &gm, bias.buf >= 0 ? &bias : NULL, e);
    if (ok && pro) ok = gen_im2col(g, &X, L, out, pro, total);
    gm.epilogue = e;
    gm.prologue = pro;
    out->gemm = ok ? malloc(sizeof *out->gemm) : NULL;
    if (!out->gemm) {
        cg_cuda_kernel_free(e);
        free(e);
        cg_cuda_kernel_free(pro);
        free(pro);
        return ok ? cg_fail(g, NULL, "out of memory") : false;
    }
    *out->gemm = gm;
    return true;
}

/* ---- pools ------------------------------------------------------------------- */

static bool gen_pool(cg *g, const ir_node *L, ir_str *body, unsigned grid[3], unsigned block[3]) {
    lib_opnd X;
    if (!get_operand(g, L, 0, &X)) return false;
    const ir_type *ot = &L->out->type;
    int r = ot->rank;
    bool dbl = ot->dtype == FUSEC_DTYPE_F64;
    const char *T = dbl ? "double" : "float";
    int64_t H = X.dim[r - 2], Wd = X.dim[r - 1], HO = ot->dim[r - 2], WO = ot->dim[r - 1];
    block[0] = CG_BLOCK;
    block[1] = block[2] = 1;
    grid[0] = cg_clamp_grid((ir_type_numel(ot) + CG_BLOCK - 1) / CG_BLOCK, 0x7fffffffu);
    grid[1] = grid[2] = 1;
    g->out = body;
    g->indent = 1;
    static const char *const nm4[4] = {"pb", "pc", "oh", "ow"}, *const nm3[3] = {"pc", "oh", "ow"};
    cg_ix comps[4];
    elem_loop_open(g, ot, r == 4 ? nm4 : nm3, comps);
    cg_line(g, "const idx_t plane = %s;", r == 4 ? cg_strf(g, "pb * %" PRId64 " + pc", ot->dim[1]) : "pc");
    bool is_max = L->op == IR_OP_MAX_POOL2D;
    if (L->op == IR_OP_ADAPTIVE_AVG_POOL2D) {
        cg_line(g, "const idx_t h0 = oh * %" PRId64 " / %" PRId64 ", h1 = ((oh + 1) * %" PRId64 " + %" PRId64
                   ") / %" PRId64 ";", H, HO, H, HO - 1, HO);
        cg_line(g, "const idx_t w0 = ow * %" PRId64 " / %" PRId64 ", w1 = ((ow + 1) * %" PRId64 " + %" PRId64
                   ") / %" PRId64 ";", Wd, WO, Wd, WO - 1, WO);
        cg_line(g, "const double area = (double)((h1 - h0) * (w1 - w0));");
    } else {
        int64_t k[2], st[2], pd[2];
        attr_pair(L, "kernel", NULL, k);
        attr_pair(L, "stride", k, st);
        attr_pair(L, "padding", NULL, pd);
        cg_line(g, "idx_t h0 = oh * %" PRId64 " - %" PRId64 ", w0 = ow * %" PRId64 " - %" PRId64 ";", st[0], pd[0],
                st[1], pd[1]);
        cg_line(g, "idx_t h1 = h0 + %" PRId64 ", w1 = w0 + %" PRId64 ";", k[0], k[1]);
        if (!is_max)
            cg_line(g, "const double area = (double)((h1 < %" PRId64 " ? h1 : %" PRId64 ") - h0) * "
                       "(double)((w1 < %" PRId64 " ? w1 : %" PRId64 ") - w0);",
                    H + pd[0], H + pd[0], Wd + pd[1], Wd + pd[1]);
        cg_line(g, "h0 = h0 > 0 ? h0 : 0;");
        cg_line(g, "w0 = w0 > 0 ? w0 : 0;");
        cg_line(g, "h1 = h1 < %" PRId64 " ? h1 : %" PRId64 ";", H, H);
        cg_line(g, "w1 = w1 < %" PRId64 " ? w1 : %" PRId64 ";", Wd, Wd);
    }
    if (is_max) cg_line(g, "%s acc = %s;", T, dbl ? "(double)-INFINITY" : "-INFINITY");
    else cg_line(g, "double acc = 0;");
    cg_line(g, "for (idx_t ih = h0; ih < h1; ih++)");
    cg_line(g, "    for (idx_t iw = w0; iw < w1; iw++) {");
    cg_line(g, "        const %s v = %s;", T,
            ld(g, &X, cg_strf(g, "(plane * %" PRId64 " + ih) * %" PRId64 " + iw", H, Wd)));
    if (is_max) cg_line(g, "        if (v > acc || v != v) acc = v; /* NaN sticks */");
    else cg_line(g, "        acc += v;");
    cg_line(g, "    }");
    const char *lv = cg_fresh(g, "lib");
    cg_line(g, "const %s %s = %s; /* %s, rounded to %s */", cg_ctype(ot->dtype), lv,
            cg_round(g, ot->dtype, is_max ? "acc" : cg_strf(g, "(%s)(acc / area)", T)), ir_op_get(L->op)->name,
            ir_dtype_name(ot->dtype));
    g->lib_expr = lv;
    bool ok = epilogue(g, comps, r);
    elem_loop_close(g);
    return ok;
}

/* ---- the kernel ----------------------------------------------------------------- */

static const ir_node *library_node(cg *g) {
    const ir_node *L = NULL;
    for (int i = 0; i < g->k->nnodes; i++) {
        const ir_node *n = g->k->nodes[i];
        ir_category c = ir_op_get(n->op)->category;
        if (c != IR_CAT_CONTRACTION && c != IR_CAT_COMPOSITE) continue;
        if (L) {
            cg_fail(g, n, "a library kernel with two library ops (%s and %s)", ir_op_get(L->op)->name,
                    ir_op_get(n->op)->name);
            return NULL;
        }
        L = n;
    }
    if (!L) cg_fail(g, NULL, "a library kernel without a library op");
    return L;
}

bool cg_gen_library(cg *g, cg_cuda_kernel *out) {
    const plan_kernel *k = g->k;
    const ir_node *L = library_node(g);
    if (!L) return false;
    if (ir_op_get(L->op)->category == IR_CAT_COMPOSITE)
        return cg_fail(g, L, "op %s is not supported by the cuda backend without the decompose pass",
                       ir_op_get(L->op)->name);
    for (int o = 0; o < k->nout; o++) {
        const ir_value *v = g->p->bufs[k->out[o]].value;
        if (!same_shape(&v->type, &L->out->type))
            return cg_fail(g, v->def, "output %%%s of a library kernel does not have the %s result's shape",
                           v->name ? v->name : "?", ir_op_get(L->op)->name);
    }
    if (k->nout > 4) return cg_fail(g, L, "a library kernel with more than 4 outputs");
    int nbufs = k->nin + k->nout;
    out->bufs = malloc(sizeof(int) * (size_t)(nbufs + 1));
    if (!out->bufs) return cg_fail(g, NULL, "out of memory");
    memcpy(out->bufs, k->in, sizeof(int) * (size_t)k->nin);
    memcpy(out->bufs + k->nin, k->out, sizeof(int) * (size_t)k->nout);
    out->nbufs = nbufs;
    out->name = cg_kernel_name(g, "");
    if (!out->name) return false;
    cg_reset(g);
    g->vec = 1;
    g->lib = L->out;
    ir_str body = {0}, ks = {0};
    bool ok;
    const char *what;
    if (ir_type_numel(&L->out->type) == 0) {
        ok = true;
        out->block[0] = out->block[1] = out->block[2] = 1;
        out->grid[0] = out->grid[1] = out->grid[2] = 1; /* a harmless launch: no special case */
        ir_str_puts(&body, "    /* the result is empty: nothing to compute */\n");
        what = "library op with an empty result";
    } else {
        switch (L->op) {
        case IR_OP_MATMUL:
        case IR_OP_LINEAR:
            ok = gen_gemm(g, L, &body, out->grid, out->block);
            what = "tiled GEMM (256 threads, a register tile each) with the epilogue in registers";
            break;
        case IR_OP_CONV2D:
            ok = gen_conv(g, L, &body, out->grid, out->block);
            what = "conv2d as an implicit GEMM (tiled, im2col on the fly), epilogue in registers";
            break;
        case IR_OP_MAX_POOL2D:
        case IR_OP_AVG_POOL2D:
        case IR_OP_ADAPTIVE_AVG_POOL2D:
            ok = gen_pool(g, L, &body, out->grid, out->block);
            what = "2-D pooling, one thread per output element, epilogue in registers";
            break;
        default:
            ok = cg_fail(g, L, "op %s is not supported by the cuda backend", ir_op_get(L->op)->name);
            what = "";
            break;
        }
    }
    ok = cg_kernel_entry(g, &ks, out->name, CG_BLOCK, out->bufs, nbufs, 0, &body, ok);
    if (ok) {
        out->source = cg_assemble(g, what, &ks);
        ok = out->source != NULL;
    }
    ir_str_free(&ks);
    if (ok && ir_type_numel(&L->out->type) > 0 && (L->op == IR_OP_MATMUL || L->op == IR_OP_LINEAR))
        ok = gemm_alt(g, L, out);
    if (ok && ir_type_numel(&L->out->type) > 0 && L->op == IR_OP_CONV2D) ok = conv_alt(g, L, out);
    return ok;
}
