/*
 * interp_nn.c - the reference interpreter's kernels for data movement,
 * indexing, contractions, windows and attention (the contract is in
 * interp_kernels.h: operands arrive as dense row-major tensors, `out` is
 * allocated and zeroed with the node's inferred type, and a kernel only
 * computes values - every shape and attribute was checked by ir_build).
 *
 * Data movement never looks at element values: an element is `es` bytes
 * moved with memcpy, which is exact for every dtype (bool, i64 and the
 * sign of -0.0 included).  Most movement ops are "read the input through
 * a set of strides": permute permutes the input's row-major strides,
 * expand zeroes the strides of broadcast dims, and one loop (copy_strided)
 * walks the output in row-major order with a multi-index odometer and
 * computes the input offset from the strides.  Ops whose access pattern
 * is a contiguous run (slice, concat, index_select, embedding) copy
 * whole inner rows at once instead.
 *
 * Arithmetic ops (matmul, linear, conv2d, the pools, sdpa) first widen
 * their operands to double arrays, accumulate in double in the natural
 * order of the sum (k = 0, 1, ...), and round once on the final store
 * through ir_store_f.  f16/bf16/f32 values are exact in double, so the
 * storage dtype's rounding happens once, at the end, and the error of an
 * f32 result is far below the tolerances the differential tests use.
 *
 * Semantics are PyTorch's (docs/ir.md).  The points PyTorch leaves to the
 * implementation, and what we do:
 *   - out-of-range indices (negative included) are a run-time error that
 *     names the op, the index, the dimension and its size; index_select and
 *     embedding check every index even when the result is empty (as torch
 *     does), gather checks the indices it reads;
 *   - max_pool2d treats padding as -inf and lets NaN win (torch's CPU rule
 *     `v > max || isnan(v)`); avg_pool2d divides by the window clipped to
 *     the padded input (count_include_pad = True, ceil_mode = False);
 *   - sdpa follows torch's reference implementation with the safe softmax
 *     of PyTorch >= 2.5: masking adds -inf to a score (so a NaN score stays
 *     NaN, as in torch), and a query row whose scores are all -inf (every
 *     key masked by the bool mask, the causal rule or a -inf float mask)
 *     gets attention weights of zero, so its output is 0 @ v: zeros for
 *     finite v.  Masked keys in other rows get weight exactly 0 and still
 *     take part in the product with v, as in torch (0 * inf is NaN).
 *
 * Every loop is driven by the output's (or an operand's) extents, so a
 * size-0 dimension simply runs no iterations; kernels return before
 * touching data pointers when the output is empty, because a size-0 tensor
 * may carry a NULL data pointer and even NULL + 0 is undefined in C.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/interp_kernels.h"

/* ---- helpers -------------------------------------------------------- */

static const char *op_name(const ir_node *n) { return ir_op_get(n->op)->name; }

/* Product of dims[lo, hi). */
static int64_t prod(const int64_t *dims, int lo, int hi) {
    int64_t p = 1;
    for (int i = lo; i < hi; i++) p *= dims[i];
    return p;
}

static int64_t numel(const fusec_tensor *t) { return prod(t->shape, 0, t->rank); }

/* Element strides of t's row-major layout. */
static void row_strides(const fusec_tensor *t, int64_t *st) {
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= t->shape[i];
    }
}

/* Strides that read t as if broadcast to a shape of rank orank: t's first
 * `tdims` dims line up with its last `tdims` dims (NumPy alignment), a
 * size-1 dim of t repeats (stride 0), and output dims t lacks get stride
 * 0.  Strides count elements of t's own layout, so the trailing dims of t
 * beyond `tdims` (the matrix of a batched operand) are left to the caller. */
static void bcast_strides(const fusec_tensor *t, int tdims, int orank, int64_t *st) {
    int64_t ts[IR_MAX_RANK];
    row_strides(t, ts);
    for (int i = 0; i < orank; i++) st[i] = 0;
    for (int i = 0; i < tdims; i++) {
        int o = orank - tdims + i;
        if (o >= 0) st[o] = t->shape[i] == 1 ? 0 : ts[i];
    }
}

/* Step a row-major multi-index over shape (the last dim fastest). */
static void next_index(int64_t *idx, const int64_t *shape, int rank) {
    for (int i = rank - 1; i >= 0; i--) {
        if (++idx[i] < shape[i]) return;
        idx[i] = 0;
    }
}

static int64_t offset_of(const int64_t *idx, const int64_t *st, int rank) {
    int64_t off = 0;
    for (int i = 0; i < rank; i++) off += idx[i] * st[i];
    return off;
}

/* An axis attribute, normalized; inference already rejected bad ones. */
static int axis_attr(const ir_node *n, const char *name, int rank) {
    int a = 0;
    bool ok = ir_norm_axis(ir_attr_i(n, name), rank, &a);
    FC_ASSERT(ok);
    return a;
}

/* A two-value integer attribute ([h, w]); `dflt` when the attribute is
 * optional and absent. */
static void attr_pair(const ir_node *n, const char *name, const int64_t *dflt, int64_t out[2]) {
    if (dflt && !ir_attr_has(n, name)) {
        out[0] = dflt[0], out[1] = dflt[1];
        return;
    }
    int cnt;
    const int64_t *v = ir_attr_ints(n, name, &cnt);
    FC_ASSERT(cnt == 2);
    out[0] = v[0], out[1] = v[1];
}

static void *alloc_array(const ir_node *n, int64_t count, size_t size, ir_diag *d) {
    void *p = (uint64_t)count <= SIZE_MAX / size ? malloc((size_t)(count > 0 ? count : 1) * size) : NULL;
    if (!p) ir_error(d, n->loc, "%s: out of memory", op_name(n));
    return p;
}

/* t's elements widened to a malloc'd double array (free with free()). */
static double *load_all(const ir_node *n, const fusec_tensor *t, ir_diag *d) {
    int64_t cnt = numel(t);
    double *p = alloc_array(n, cnt, sizeof(double), d);
    if (p)
        for (int64_t i = 0; i < cnt; i++) p[i] = ir_load_f(t->dtype, t->data, i);
    return p;
}

static bool index_error(const ir_node *n, int64_t index, int dim, int64_t size, ir_diag *d) {
    ir_error(d, n->loc, "%s: index %" PRId64 " is out of range for dimension %d of size %" PRId64,
             op_name(n), index, dim, size);
    return false;
}

/* Check that every index held by idx lies in [0, size). */
static bool check_indices(const ir_node *n, const fusec_tensor *idx, int dim, int64_t size,
                          ir_diag *d) {
    int64_t cnt = numel(idx);
    for (int64_t j = 0; j < cnt; j++) {
        int64_t v = ir_load_i(idx->dtype, idx->data, j);
        if (v < 0 || v >= size) return index_error(n, v, dim, size, d);
    }
    return true;
}

/* out[i] = t[offset(i)] for every output index i, the offset computed from
 * per-dim strides over out's shape: the one loop of permute and expand. */
static void copy_strided(const fusec_tensor *t, const int64_t *st, fusec_tensor *out) {
    int64_t cnt = numel(out), idx[IR_MAX_RANK] = {0};
    size_t es = ir_dtype_size(out->dtype);
    const char *src = t->data;
    char *dst = out->data;
    for (int64_t e = 0; e < cnt; e++) {
        memcpy(dst + (size_t)e * es, src + (size_t)offset_of(idx, st, out->rank) * es, es);
        next_index(idx, out->shape, out->rank);
    }
}

/* ---- data movement ------------------------------------------------- */

/* reshape, squeeze, unsqueeze: row-major order is unchanged. */
bool rt_k_copy(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)n, (void)d;
    int64_t cnt = numel(out);
    if (cnt > 0) memcpy(out->data, in[0].data, (size_t)cnt * ir_dtype_size(out->dtype));
    return true;
}

/* permute {dims} and transpose {dim0, dim1}: output dim i reads input dim
 * perm[i], so its stride is the input's stride of perm[i]. */
bool rt_k_permute(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)d;
    const fusec_tensor *x = &in[0];
    int r = x->rank, perm[IR_MAX_RANK];
    for (int i = 0; i < r; i++) perm[i] = i;
    if (n->op == IR_OP_TRANSPOSE) {
        int a = axis_attr(n, "dim0", r), b = axis_attr(n, "dim1", r);
        perm[a] = b, perm[b] = a;
    } else {
        int cnt;
        const int64_t *dims = ir_attr_ints(n, "dims", &cnt);
        FC_ASSERT(cnt == r);
        for (int i = 0; i < r; i++) {
            bool ok = ir_norm_axis(dims[i], r, &perm[i]);
            FC_ASSERT(ok);
        }
    }
    int64_t xs[IR_MAX_RANK], st[IR_MAX_RANK];
    row_strides(x, xs);
    for (int i = 0; i < r; i++) st[i] = xs[perm[i]];
    copy_strided(x, st, out);
    return true;
}

bool rt_k_expand(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)n, (void)d;
    int64_t st[IR_MAX_RANK];
    bcast_strides(&in[0], in[0].rank, out->rank, st);
    copy_strided(&in[0], st, out);
    return true;
}

/* Rows of `inner` contiguous elements: output row (o, j) is input row
 * (o, start + j * step) along the sliced axis. */
bool rt_k_slice(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)d;
    const fusec_tensor *x = &in[0];
    if (numel(out) == 0) return true;
    int a = axis_attr(n, "axis", x->rank);
    int64_t size = x->shape[a], start = ir_attr_i(n, "start"), step = ir_attr_i(n, "step");
    /* Python's clamping, as in inference; the length comes from out */
    if (start < 0) start = start < -size ? 0 : start + size;
    if (start > size) start = size;
    int64_t len = out->shape[a], outer = prod(x->shape, 0, a), inner = prod(x->shape, a + 1, x->rank);
    size_t es = ir_dtype_size(x->dtype), row = (size_t)inner * es;
    const char *src = x->data;
    char *dst = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < len; j++)
            memcpy(dst + (size_t)(o * len + j) * row, src + (size_t)(o * size + start + j * step) * row, row);
    return true;
}

/* For each outer index, the operands' blocks follow one another. */
bool rt_k_concat(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)d;
    if (numel(out) == 0) return true;
    int a = axis_attr(n, "axis", out->rank);
    int64_t outer = prod(out->shape, 0, a), inner = prod(out->shape, a + 1, out->rank);
    size_t es = ir_dtype_size(out->dtype);
    char *dst = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < n->nin; k++) {
            size_t block = (size_t)(in[k].shape[a] * inner) * es;
            if (block == 0) continue;
            memcpy(dst, (const char *)in[k].data + (size_t)o * block, block);
            dst += block;
        }
    return true;
}

/* Output element i reads input element i - before (per dim) when that lies
 * inside the input, else takes the fill value; negative pads make
 * `before` negative or the output shorter, which crops. */
bool rt_k_pad(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)d;
    const fusec_tensor *x = &in[0];
    int64_t cnt = numel(out);
    if (cnt == 0) return true;
    int np, r = x->rank;
    const int64_t *pads = ir_attr_ints(n, "pads", &np);
    int64_t before[IR_MAX_RANK] = {0}, xs[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
    for (int k = 0; k < np / 2; k++) before[r - np / 2 + k] = pads[2 * k];
    row_strides(x, xs);
    unsigned char fill[8];
    ir_store_f(x->dtype, fill, 0, ir_attr_f(n, "value")); /* bool: != 0; ints: exact (checked) */
    size_t es = ir_dtype_size(x->dtype);
    const char *src = x->data;
    char *dst = out->data;
    for (int64_t e = 0; e < cnt; e++) {
        int64_t off = 0;
        bool inside = true;
        for (int i = 0; i < r && inside; i++) {
            int64_t c = idx[i] - before[i];
            inside = c >= 0 && c < x->shape[i];
            off += c * xs[i];
        }
        memcpy(dst + (size_t)e * es, inside ? (const void *)(src + (size_t)off * es) : fill, es);
        next_index(idx, out->shape, r);
    }
    return true;
}

/* ---- indexing -------------------------------------------------------- */

bool rt_k_index_select(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    const fusec_tensor *x = &in[0], *ix = &in[1];
    int a = axis_attr(n, "axis", x->rank);
    int64_t size = x->shape[a], m = numel(ix);
    if (!check_indices(n, ix, a, size, d)) return false;
    if (numel(out) == 0) return true;
    int64_t outer = prod(x->shape, 0, a), inner = prod(x->shape, a + 1, x->rank);
    size_t row = (size_t)inner * ir_dtype_size(x->dtype);
    const char *src = x->data;
    char *dst = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < m; j++) {
            int64_t v = ir_load_i(ix->dtype, ix->data, j);
            memcpy(dst + (size_t)(o * m + j) * row, src + (size_t)(o * size + v) * row, row);
        }
    return true;
}

/* weight [V, D] rows picked by every index: out = idx.shape + [D]. */
bool rt_k_embedding(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    const fusec_tensor *w = &in[0], *ix = &in[1];
    if (!check_indices(n, ix, 0, w->shape[0], d)) return false;
    if (numel(out) == 0) return true;
    int64_t m = numel(ix);
    size_t row = (size_t)w->shape[1] * ir_dtype_size(w->dtype);
    const char *src = w->data;
    char *dst = out->data;
    for (int64_t j = 0; j < m; j++)
        memcpy(dst + (size_t)j * row, src + (size_t)ir_load_i(ix->dtype, ix->data, j) * row, row);
    return true;
}

/* out[i] = x[i with i[axis] replaced by idx[i]]; idx has x's rank and is
 * no larger than x outside `axis`, so the other coordinates are valid. */
bool rt_k_gather(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    const fusec_tensor *x = &in[0], *ix = &in[1];
    int r = x->rank, a = axis_attr(n, "axis", r);
    int64_t cnt = numel(out), xs[IR_MAX_RANK] = {0}, st[IR_MAX_RANK] = {0}, idx[IR_MAX_RANK] = {0};
    row_strides(x, xs);
    memcpy(st, xs, sizeof st);
    st[a] = 0; /* the axis coordinate comes from idx, not from the position */
    size_t es = ir_dtype_size(x->dtype);
    for (int64_t e = 0; e < cnt; e++) {
        int64_t v = ir_load_i(ix->dtype, ix->data, e);
        if (v < 0 || v >= x->shape[a]) return index_error(n, v, a, x->shape[a], d);
        memcpy((char *)out->data + (size_t)e * es,
               (const char *)x->data + (size_t)(offset_of(idx, st, r) + v * xs[a]) * es, es);
        next_index(idx, out->shape, r);
    }
    return true;
}

/* triu keeps column - row >= diagonal, tril keeps column - row <= diagonal
 * of every matrix in the last two dims; out is zero elsewhere already.
 * The difference j - i is bounded by the dims, so a huge `diagonal`
 * cannot overflow. */
bool rt_k_tri(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    (void)d;
    if (numel(out) == 0) return true;
    bool upper = n->op == IR_OP_TRIU;
    int64_t diag = ir_attr_i(n, "diagonal");
    int r = out->rank;
    int64_t batch = prod(out->shape, 0, r - 2), rows = out->shape[r - 2], cols = out->shape[r - 1];
    size_t es = ir_dtype_size(out->dtype);
    int64_t e = 0;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++, e++)
                if (upper ? j - i >= diag : j - i <= diag)
                    memcpy((char *)out->data + (size_t)e * es, (const char *)in[0].data + (size_t)e * es, es);
    return true;
}

/* ---- contractions ----------------------------------------------------- */

/* torch.matmul.  A 1-D a is a [1, K] matrix and a 1-D b a [K, 1] matrix;
 * the dropped size-1 dim does not change the row-major layout, so both
 * operands and the result are read and written as [batch.., M, K] x
 * [batch.., K, N] -> [batch.., M, N] with no copies.  Batch dims
 * broadcast through stride-0 batch strides.  Each output row accumulates
 * over k in order into a row of doubles. */
bool rt_k_matmul(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    const fusec_tensor *a = &in[0], *b = &in[1];
    if (numel(out) == 0) return true;
    int ab = a->rank >= 2 ? a->rank - 2 : 0, bb = b->rank >= 2 ? b->rank - 2 : 0;
    int nb = ab > bb ? ab : bb;
    int64_t M = a->rank >= 2 ? a->shape[a->rank - 2] : 1, K = a->shape[a->rank - 1];
    int64_t N = b->rank >= 2 ? b->shape[b->rank - 1] : 1;
    int64_t ast[IR_MAX_RANK], bst[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
    bcast_strides(a, ab, nb, ast);
    bcast_strides(b, bb, nb, bst);
    int64_t batches = prod(out->shape, 0, nb);
    double *A = load_all(n, a, d), *B = load_all(n, b, d), *acc = alloc_array(n, N, sizeof(double), d);
    bool ok = A && B && acc;
    for (int64_t bi = 0; ok && bi < batches; bi++) {
        const double *Ab = A + offset_of(idx, ast, nb), *Bb = B + offset_of(idx, bst, nb);
        for (int64_t m = 0; m < M; m++) {
            for (int64_t j = 0; j < N; j++) acc[j] = 0;
            for (int64_t k = 0; k < K; k++) {
                double amk = Ab[m * K + k];
                const double *brow = Bb + k * N;
                for (int64_t j = 0; j < N; j++) acc[j] += amk * brow[j];
            }
            for (int64_t j = 0; j < N; j++) ir_store_f(out->dtype, out->data, (bi * M + m) * N + j, acc[j]);
        }
        next_index(idx, out->shape, nb);
    }
    free(A), free(B), free(acc);
    return ok;
}

/* y[r, o] = sum_k x[r, k] * w[o, k] + b[o] over the rows r of x's leading
 * dims; the bias joins the double sum before the one rounding store. */
bool rt_k_linear(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    const fusec_tensor *x = &in[0], *w = &in[1], *bias = n->nin > 2 ? &in[2] : NULL;
    if (numel(out) == 0) return true;
    int64_t rows = prod(x->shape, 0, x->rank - 1), K = x->shape[x->rank - 1], O = w->shape[0];
    double *X = load_all(n, x, d), *W = load_all(n, w, d);
    bool ok = X && W;
    for (int64_t r = 0; ok && r < rows; r++)
        for (int64_t o = 0; o < O; o++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) acc += X[r * K + k] * W[o * K + k];
            if (bias) acc += ir_load_f(bias->dtype, bias->data, o);
            ir_store_f(out->dtype, out->data, r * O + o, acc);
        }
    free(X), free(W);
    return ok;
}

/* Direct convolution, NCHW.  Output channel co belongs to group
 * co / (Cout / groups) and reads that group's Cin / groups input channels;
 * input row = oh * stride - padding + kh * dilation, and taps that fall in
 * the zero padding are skipped. */
bool rt_k_conv2d(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    const fusec_tensor *x = &in[0], *w = &in[1], *bias = n->nin > 2 ? &in[2] : NULL;
    if (numel(out) == 0) return true;
    int64_t st[2], pd[2], dl[2], groups = ir_attr_i(n, "groups");
    attr_pair(n, "stride", NULL, st);
    attr_pair(n, "padding", NULL, pd);
    attr_pair(n, "dilation", NULL, dl);
    FC_ASSERT(groups >= 1);
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t CO = w->shape[0], CG = w->shape[1], KH = w->shape[2], KW = w->shape[3];
    int64_t HO = out->shape[2], WO = out->shape[3], COG = CO / groups;
    double *X = load_all(n, x, d), *Wt = load_all(n, w, d);
    bool ok = X && Wt;
    int64_t e = 0;
    for (int64_t b = 0; ok && b < N; b++)
        for (int64_t co = 0; co < CO; co++) {
            int64_t c0 = co / COG * CG; /* first input channel of co's group */
            double bv = bias ? ir_load_f(bias->dtype, bias->data, co) : 0;
            for (int64_t oh = 0; oh < HO; oh++)
                for (int64_t ow = 0; ow < WO; ow++, e++) {
                    /* A tap in the padding multiplies a zero, as PyTorch's zero
                     * padding does: an inf or NaN weight there gives NaN. */
                    double acc = 0;
                    for (int64_t ci = 0; ci < CG; ci++)
                        for (int64_t kh = 0; kh < KH; kh++) {
                            int64_t ih = oh * st[0] - pd[0] + kh * dl[0];
                            bool hin = ih >= 0 && ih < H;
                            const double *xrow = hin ? X + ((b * C + c0 + ci) * H + ih) * W : NULL;
                            const double *wrow = Wt + ((co * CG + ci) * KH + kh) * KW;
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t iw = ow * st[1] - pd[1] + kw * dl[1];
                                acc += (hin && iw >= 0 && iw < W ? xrow[iw] : 0.0) * wrow[kw];
                            }
                        }
                    ir_store_f(out->dtype, out->data, e, acc + bv);
                }
        }
    free(X), free(Wt);
    return ok;
}

/* ---- windows ------------------------------------------------------------ */

/* max_pool2d / avg_pool2d over the last two dims ([N, C, H, W] or
 * [C, H, W]).  Window (oh, ow) starts at oh * stride - padding. */
bool rt_k_pool2d(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    const fusec_tensor *x = &in[0];
    if (numel(out) == 0) return true;
    int r = x->rank;
    int64_t k[2], st[2], pd[2];
    attr_pair(n, "kernel", NULL, k);
    attr_pair(n, "stride", k, st);
    attr_pair(n, "padding", NULL, pd);
    int64_t planes = prod(x->shape, 0, r - 2), H = x->shape[r - 2], W = x->shape[r - 1];
    int64_t HO = out->shape[r - 2], WO = out->shape[r - 1];
    bool is_max = n->op == IR_OP_MAX_POOL2D;
    double *X = load_all(n, x, d);
    if (!X) return false;
    int64_t e = 0;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oh = 0; oh < HO; oh++)
            for (int64_t ow = 0; ow < WO; ow++, e++) {
                int64_t h0 = oh * st[0] - pd[0], w0 = ow * st[1] - pd[1];
                int64_t h1 = h0 + k[0], w1 = w0 + k[1];
                /* avg: torch's divisor, the window clipped to the padded input */
                double area = (double)((h1 < H + pd[0] ? h1 : H + pd[0]) - h0) *
                              (double)((w1 < W + pd[1] ? w1 : W + pd[1]) - w0);
                h0 = h0 > 0 ? h0 : 0, w0 = w0 > 0 ? w0 : 0;
                h1 = h1 < H ? h1 : H, w1 = w1 < W ? w1 : W;
                double acc = is_max ? -INFINITY : 0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        double v = X[(p * H + ih) * W + iw];
                        if (!is_max) acc += v;
                        else if (v > acc || isnan(v)) acc = v; /* NaN sticks: nothing is > NaN */
                    }
                ir_store_f(out->dtype, out->data, e, is_max ? acc : acc / area);
            }
    free(X);
    return true;
}

/* Output cell i averages input cells [floor(i * in / out), ceil((i + 1) *
 * in / out)), torch's windows, which cover the input and may overlap. */
bool rt_k_adaptive_avg_pool2d(const ir_node *n, const fusec_tensor *in, fusec_tensor *out,
                              ir_diag *d) {
    const fusec_tensor *x = &in[0];
    if (numel(out) == 0) return true;
    int r = x->rank;
    int64_t planes = prod(x->shape, 0, r - 2), H = x->shape[r - 2], W = x->shape[r - 1];
    int64_t HO = out->shape[r - 2], WO = out->shape[r - 1];
    double *X = load_all(n, x, d);
    if (!X) return false;
    int64_t e = 0;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oh = 0; oh < HO; oh++)
            for (int64_t ow = 0; ow < WO; ow++, e++) {
                int64_t h0 = oh * H / HO, h1 = ((oh + 1) * H + HO - 1) / HO;
                int64_t w0 = ow * W / WO, w1 = ((ow + 1) * W + WO - 1) / WO;
                double acc = 0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) acc += X[(p * H + ih) * W + iw];
                ir_store_f(out->dtype, out->data, e, acc / (double)((h1 - h0) * (w1 - w0)));
            }
    free(X);
    return true;
}

/* ---- attention ------------------------------------------------------------ */

/* The attention weights of one query row, in place: scores -> softmax,
 * or all zeros when every score is -inf (PyTorch >= 2.5's safe softmax).
 * NaN scores propagate to the whole row as in torch.softmax. */
static void safe_softmax(double *s, int64_t len) {
    double mx = -INFINITY;
    bool all_masked = true;
    for (int64_t j = 0; j < len; j++) {
        if (s[j] != -INFINITY) all_masked = false;
        if (s[j] > mx) mx = s[j];
    }
    if (all_masked) {
        for (int64_t j = 0; j < len; j++) s[j] = 0;
        return;
    }
    double sum = 0;
    for (int64_t j = 0; j < len; j++) {
        s[j] = exp(s[j] - mx);
        sum += s[j];
    }
    for (int64_t j = 0; j < len; j++) s[j] /= sum;
}

/* softmax(q @ k^T * scale + mask) @ v, one query row at a time:
 * q [.., L, E], k [.., S, E], v [.., S, Ev], batch dims broadcast to the
 * output's; the mask broadcasts to the scores [.., L, S].  A bool mask or
 * the causal rule (keep key j <= query i, top-left aligned) sets a score
 * to -inf; a float mask is added. */
bool rt_k_sdpa(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d) {
    const fusec_tensor *q = &in[0], *k = &in[1], *v = &in[2], *mask = n->nin > 3 ? &in[3] : NULL;
    if (numel(out) == 0) return true;
    int nb = out->rank - 2;
    int64_t L = q->shape[q->rank - 2], E = q->shape[q->rank - 1];
    int64_t S = k->shape[k->rank - 2], EV = v->shape[v->rank - 1];
    double scale = ir_attr_has(n, "scale") ? ir_attr_f(n, "scale") : 1.0 / sqrt((double)E);
    bool causal = ir_attr_i(n, "is_causal") != 0;
    int64_t qst[IR_MAX_RANK], kst[IR_MAX_RANK], vst[IR_MAX_RANK], mst[IR_MAX_RANK];
    int64_t idx[IR_MAX_RANK] = {0};
    bcast_strides(q, q->rank - 2, nb, qst);
    bcast_strides(k, k->rank - 2, nb, kst);
    bcast_strides(v, v->rank - 2, nb, vst);
    if (mask) bcast_strides(mask, mask->rank, nb + 2, mst);
    int64_t batches = prod(out->shape, 0, nb);
    double *Q = load_all(n, q, d), *K = load_all(n, k, d), *V = load_all(n, v, d);
    double *sc = alloc_array(n, S, sizeof(double), d), *acc = alloc_array(n, EV, sizeof(double), d);
    bool ok = Q && K && V && sc && acc;
    for (int64_t bi = 0; ok && bi < batches; bi++) {
        const double *Qb = Q + offset_of(idx, qst, nb), *Kb = K + offset_of(idx, kst, nb);
        const double *Vb = V + offset_of(idx, vst, nb);
        int64_t mb = mask ? offset_of(idx, mst, nb) : 0;
        for (int64_t i = 0; i < L; i++) {
            for (int64_t j = 0; j < S; j++) {
                double dot = 0;
                for (int64_t e = 0; e < E; e++) dot += Qb[i * E + e] * Kb[j * E + e];
                double s = dot * scale;
                bool keep = !causal || j <= i;
                if (mask) {
                    int64_t mo = mb + i * mst[nb] + j * mst[nb + 1];
                    if (mask->dtype == FUSEC_DTYPE_BOOL)
                        keep = keep && ir_load_i(mask->dtype, mask->data, mo) != 0;
                    else
                        s += ir_load_f(mask->dtype, mask->data, mo);
                }
                /* torch adds -inf rather than overwriting: a NaN or +inf
                 * score stays NaN even where masked */
                sc[j] = keep ? s : s - INFINITY;
            }
            safe_softmax(sc, S);
            for (int64_t c = 0; c < EV; c++) acc[c] = 0;
            for (int64_t j = 0; j < S; j++)
                for (int64_t c = 0; c < EV; c++) acc[c] += sc[j] * Vb[j * EV + c];
            for (int64_t c = 0; c < EV; c++) ir_store_f(out->dtype, out->data, (bi * L + i) * EV + c, acc[c]);
        }
        next_index(idx, out->shape, nb);
    }
    free(Q), free(K), free(V), free(sc), free(acc);
    return ok;
}
