/*
 * cuda.c - CUDA C code generation: the entry point, the preamble every
 * translation unit starts with, and the pieces all kernel kinds share.
 *
 * One plan kernel becomes one translation unit for NVRTC: a preamble of
 * helpers (no #include at all, so compilation never depends on where the
 * CUDA headers live), an `idx_t` typedef (int when every offset the kernel
 * computes fits in 31 bits, long long otherwise), a comment naming the
 * kernel and listing its IR ops with their source lines, constant tables,
 * and one or two `extern "C" __global__` entry points:
 *
 *   PLAN_POINTWISE  codegen/cuda_pointwise.c: one thread per vector of
 *                   16 bytes (or per element), 2-D launch over rows when
 *                   the innermost dim is wide enough;
 *   PLAN_REDUCE     codegen/cuda_reduce.c: block/warp-per-row kernels
 *                   (persistent or looped), thread-per-output column
 *                   kernels, split reductions for few long rows or
 *                   columns (a second kernel in cg_cuda_kernel.next);
 *   PLAN_LIBRARY    codegen/cuda_library.c: tiled GEMM, conv2d as an
 *                   implicit GEMM, pools, each with the kernel's
 *                   elementwise epilogue in registers.
 *
 * The other files: cuda_emit.c (context, cache, the C spelling of dtypes),
 * cuda_index.c (index forms, predicates), cuda_eval.c (a body's values at
 * a symbolic index); cuda_impl.h describes the model.
 *
 * A kernel with vector accesses also gets `<name>_scalar`, the same code
 * one element per lane, which the runtime launches when some pointer is not
 * 16-byte aligned.  A kernel with nothing to compute (an empty domain) is a
 * harmless launch of an empty body.  Parameters are not __restrict__: memory
 * planning may give an output the memory of an input read at the same
 * element, so loads and stores of one element keep their order.  Values are computed in float (f32, f16, bf16), double
 * (f64) or long long (integers, bool: 0/1) and rounded after every op to
 * their dtype as the interpreter's stores round them (cuda_emit.c), so
 * fused kernels agree with the interpreter op for op.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda_impl.h"

/* The helpers every generated translation unit starts with. */
static const char preamble[] =
    "/* ---- fusec preamble: self-contained, no includes ---- */\n"
    "#define INFINITY __int_as_float(0x7f800000)\n"
    "#define NAN __int_as_float(0x7fffffff)\n"
    "typedef unsigned long long fc_u64;\n"
    "\n"
    "/* f16 / bf16 are stored as bit patterns and computed in float; float ->\n"
    " * half rounds to nearest even (the PTX conversions, or the bit-level\n"
    " * versions with FC_SOFT_HALF), as fusec's ir/dtype.c does. */\n"
    "static __device__ __forceinline__ float fc_h2f(unsigned short h) {\n"
    "#if defined(FC_SOFT_HALF)\n"
    "    const unsigned s = (unsigned)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;\n"
    "    if (e == 0) { const float v = (float)m * 5.9604644775390625e-8f; return s ? -v : v; }\n"
    "    if (e == 31) return __uint_as_float(s | 0x7f800000u | (m << 13));\n"
    "    return __uint_as_float(s | ((e + 112u) << 23) | (m << 13));\n"
    "#else\n"
    "    float f;\n"
    "    asm(\"cvt.f32.f16 %0, %1;\" : \"=f\"(f) : \"h\"(h));\n"
    "    return f;\n"
    "#endif\n"
    "}\n"
    "static __device__ __forceinline__ unsigned short fc_f2h(float f) {\n"
    "#if defined(FC_SOFT_HALF)\n"
    "    const unsigned x = __float_as_uint(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;\n"
    "    if (a > 0x7f800000u) return (unsigned short)(sign | 0x7e00u);      /* NaN */\n"
    "    if (a >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);     /* rounds to inf */\n"
    "    if (a >= 0x38800000u) {                                            /* normal */\n"
    "        const unsigned r = a - 0x38000000u;\n"
    "        return (unsigned short)(sign | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13));\n"
    "    }\n"
    "    return (unsigned short)(sign | (unsigned)rintf(__uint_as_float(a) * 16777216.0f)); /* subnormal */\n"
    "#else\n"
    "    unsigned short h;\n"
    "    asm(\"cvt.rn.f16.f32 %0, %1;\" : \"=h\"(h) : \"f\"(f));\n"
    "    return h;\n"
    "#endif\n"
    "}\n"
    "static __device__ __forceinline__ float fc_b2f(unsigned short h) { return __uint_as_float((unsigned)h << 16); }\n"
    "static __device__ __forceinline__ unsigned short fc_f2b(float f) {\n"
    "#if defined(FC_SOFT_HALF) || (defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800)\n"
    "    const unsigned u = __float_as_uint(f);\n"
    "    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u); /* quiet NaN */\n"
    "    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);\n"
    "#else\n"
    "    unsigned short h;\n"
    "    asm(\"cvt.rn.bf16.f32 %0, %1;\" : \"=h\"(h) : \"f\"(f));\n"
    "    return h;\n"
    "#endif\n"
    "}\n"
    "static __device__ __forceinline__ float fc_rh(float x) { return fc_h2f(fc_f2h(x)); }\n"
    "static __device__ __forceinline__ float fc_rb(float x) { return fc_b2f(fc_f2b(x)); }\n"
    "/* The bits of a bf16 value, which is always held already rounded (every\n"
    " * op rounds its result): no conversion.  The emulator checks that. */\n"
    "static __device__ __forceinline__ unsigned short fc_b2s(float x) {\n"
    "#if defined(FC_SOFT_HALF)\n"
    "    if (x == x && fc_b2f(fc_f2b(x)) != x) return (unsigned short)0x7fc1u; /* a NaN the check sees */\n"
    "    return fc_f2b(x);\n"
    "#else\n"
    "    return (unsigned short)(__float_as_uint(x) >> 16);\n"
    "#endif\n"
    "}\n"
    "/* Two at once: one cvt.rn.bf16x2.f32 rounds a pair (conversions are a\n"
    " * slow pipe; a chain of bf16 ops rounds every result). */\n"
    "static __device__ __forceinline__ void fc_rb2(float a, float b, float &ra, float &rb) {\n"
    "#if defined(FC_SOFT_HALF) || (defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800)\n"
    "    ra = fc_rb(a);\n"
    "    rb = fc_rb(b);\n"
    "#else\n"
    "    unsigned p;\n"
    "    asm(\"cvt.rn.bf16x2.f32 %0, %1, %2;\" : \"=r\"(p) : \"f\"(b), \"f\"(a));\n"
    "    ra = __uint_as_float(p << 16);\n"
    "    rb = __uint_as_float(p & 0xffff0000u);\n"
    "#endif\n"
    "}\n"
    "\n"
    "/* Integers are computed in 64 bits and wrap (no signed overflow). */\n"
    "static __device__ __forceinline__ long long fc_iadd(long long a, long long b) { return (long long)((fc_u64)a + (fc_u64)b); }\n"
    "static __device__ __forceinline__ long long fc_isub(long long a, long long b) { return (long long)((fc_u64)a - (fc_u64)b); }\n"
    "static __device__ __forceinline__ long long fc_imul(long long a, long long b) { return (long long)((fc_u64)a * (fc_u64)b); }\n"
    "static __device__ __forceinline__ long long fc_ineg(long long a) { return (long long)(0ull - (fc_u64)a); }\n"
    "/* Division and remainder by zero give 0 (the interpreter reports an error). */\n"
    "static __device__ __forceinline__ long long fc_idiv(long long a, long long b) {\n"
    "    return b == 0 ? 0 : b == -1 ? fc_ineg(a) : a / b;\n"
    "}\n"
    "static __device__ __forceinline__ long long fc_irem(long long a, long long b) {\n"
    "    if (b == 0 || b == -1) return 0;\n"
    "    long long r = a % b;\n"
    "    if (r != 0 && ((r < 0) != (b < 0))) r += b;\n"
    "    return r;\n"
    "}\n"
    "static __device__ long long fc_ipow(long long b, long long e) {\n"
    "    if (e < 0) return b == 1 ? 1 : b == -1 ? ((e & 1) ? -1 : 1) : 0;\n"
    "    long long r = 1;\n"
    "    while (e) {\n"
    "        if (e & 1) r = fc_imul(r, b);\n"
    "        b = fc_imul(b, b);\n"
    "        e >>= 1;\n"
    "    }\n"
    "    return r;\n"
    "}\n"
    "/* float -> integer: truncate, NaN -> 0, saturate to int64 (then wrap). */\n"
    "static __device__ __forceinline__ long long fc_f2i(double v) {\n"
    "    if (v != v) return 0;\n"
    "    if (v >= 9223372036854775807.0) return 9223372036854775807LL;\n"
    "    if (v <= -9223372036854775808.0) return -9223372036854775807LL - 1;\n"
    "    return (long long)v;\n"
    "}\n"
    "static __device__ __forceinline__ long long fc_clampi(long long v, long long hi) { return v < 0 ? 0 : v > hi ? hi : v; }\n"
    "\n"
    "/* Float helpers: NaN wins maximum/minimum; remainder takes the divisor's sign. */\n"
    "static __device__ __forceinline__ float fc_fmax(float a, float b) { return a != a ? a : b != b ? b : a >= b ? a : b; }\n"
    "static __device__ __forceinline__ double fc_fmax(double a, double b) { return a != a ? a : b != b ? b : a >= b ? a : b; }\n"
    "static __device__ __forceinline__ float fc_fmin(float a, float b) { return a != a ? a : b != b ? b : a <= b ? a : b; }\n"
    "static __device__ __forceinline__ double fc_fmin(double a, double b) { return a != a ? a : b != b ? b : a <= b ? a : b; }\n"
    "static __device__ __forceinline__ float fc_frem(float a, float b) {\n"
    "    float m = fmodf(a, b);\n"
    "    if (m != 0 && ((b < 0) != (m < 0))) m += b;\n"
    "    return m;\n"
    "}\n"
    "static __device__ __forceinline__ double fc_frem(double a, double b) {\n"
    "    double m = fmod(a, b);\n"
    "    if (m != 0 && ((b < 0) != (m < 0))) m += b;\n"
    "    return m;\n"
    "}\n"
    "static __device__ __forceinline__ float fc_gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }\n"
    "static __device__ __forceinline__ double fc_gelu(double x) { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752)); }\n"
    "static __device__ __forceinline__ float fc_gelu_tanh(float x) {\n"
    "    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));\n"
    "}\n"
    "static __device__ __forceinline__ double fc_gelu_tanh(double x) {\n"
    "    return 0.5 * x * (1.0 + tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)));\n"
    "}\n"
    "\n"
    "/* Reduction operators.  All are commutative, so every lane of a xor\n"
    " * butterfly ends with the same bits: results are deterministic. */\n"
    "struct fc_sum { template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; } };\n"
    "struct fc_prod { template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a * b; } };\n"
    "struct fc_isum { __device__ __forceinline__ long long operator()(long long a, long long b) const { return fc_iadd(a, b); } };\n"
    "struct fc_iprod { __device__ __forceinline__ long long operator()(long long a, long long b) const { return fc_imul(a, b); } };\n"
    "struct fc_max {\n"
    "    __device__ __forceinline__ float operator()(float a, float b) const { return fc_fmax(a, b); }\n"
    "    __device__ __forceinline__ double operator()(double a, double b) const { return fc_fmax(a, b); }\n"
    "    __device__ __forceinline__ long long operator()(long long a, long long b) const { return a >= b ? a : b; }\n"
    "};\n"
    "struct fc_min {\n"
    "    __device__ __forceinline__ float operator()(float a, float b) const { return fc_fmin(a, b); }\n"
    "    __device__ __forceinline__ double operator()(double a, double b) const { return fc_fmin(a, b); }\n"
    "    __device__ __forceinline__ long long operator()(long long a, long long b) const { return a <= b ? a : b; }\n"
    "};\n"
    "template <class T, class F> static __device__ __forceinline__ T fc_warp_reduce(T v, F f) {\n"
    "#pragma unroll\n"
    "    for (int o = 16; o > 0; o >>= 1) v = f(v, __shfl_xor_sync(0xffffffffu, v, o));\n"
    "    return v;\n"
    "}\n"
    "/* Over a block of NT threads (a multiple of 32, threadIdx.x only); every\n"
    " * thread returns the result.  sh: NT / 32 elements of shared memory. */\n"
    "template <int NT, class T, class F> static __device__ __forceinline__ T fc_block_reduce(T v, F f, T *sh) {\n"
    "    v = fc_warp_reduce(v, f);\n"
    "    if (NT > 32) {\n"
    "        if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;\n"
    "        __syncthreads();\n"
    "        v = sh[0];\n"
    "#pragma unroll\n"
    "        for (int i = 1; i < NT / 32; i++) v = f(v, sh[i]);\n"
    "        __syncthreads();\n"
    "    }\n"
    "    return v;\n"
    "}\n"
    "/* argmax / argmin: (value, index) pairs, index < 0 = none yet.  NaN wins\n"
    " * (the first NaN), then the larger (smaller) value, then the lower index. */\n"
    "template <bool MAX, class T> static __device__ __forceinline__ void fc_arg_merge(T &v, long long &i, T v2, long long i2) {\n"
    "    bool take;\n"
    "    if (i2 < 0) take = false;\n"
    "    else if (i < 0) take = true;\n"
    "    else {\n"
    "        const bool n1 = v != v, n2 = v2 != v2;\n"
    "        if (n1 || n2) take = n2 && (!n1 || i2 < i);\n"
    "        else if (v2 != v) take = MAX ? v2 > v : v2 < v;\n"
    "        else take = i2 < i;\n"
    "    }\n"
    "    if (take) { v = v2; i = i2; }\n"
    "}\n"
    "template <bool MAX, class T> static __device__ __forceinline__ void fc_warp_arg(T &v, long long &i) {\n"
    "#pragma unroll\n"
    "    for (int o = 16; o > 0; o >>= 1) {\n"
    "        const T v2 = __shfl_xor_sync(0xffffffffu, v, o);\n"
    "        const long long i2 = __shfl_xor_sync(0xffffffffu, i, o);\n"
    "        fc_arg_merge<MAX>(v, i, v2, i2);\n"
    "    }\n"
    "}\n"
    "template <int NT, bool MAX, class T> static __device__ __forceinline__ void fc_block_arg(T &v, long long &i, T *shv, long long *shi) {\n"
    "    fc_warp_arg<MAX>(v, i);\n"
    "    if (NT > 32) {\n"
    "        if ((threadIdx.x & 31) == 0) { shv[threadIdx.x >> 5] = v; shi[threadIdx.x >> 5] = i; }\n"
    "        __syncthreads();\n"
    "        v = shv[0];\n"
    "        i = shi[0];\n"
    "        for (int k = 1; k < NT / 32; k++) fc_arg_merge<MAX>(v, i, shv[k], shi[k]);\n"
    "        __syncthreads();\n"
    "    }\n"
    "}\n"
    "/* ---- end of preamble ---- */\n";

void cg_preamble(ir_str *s, bool idx64) {
    ir_str_puts(s, preamble);
    ir_str_printf(s, "\n/* offsets of this kernel %s */\ntypedef %s idx_t;\n",
                  idx64 ? "may exceed 31 bits" : "fit in 31 bits", idx64 ? "long long" : "int");
}

/* Print a node for a comment: its IR text with any comment terminator
 * broken up, and its source line. */
static void comment_node(ir_str *s, const ir_node *n) {
    ir_str t = {0};
    ir_print_node(&t, n);
    ir_str_puts(s, " *   ");
    for (const char *c = t.buf ? t.buf : ""; *c; c++) {
        if (c[0] == '*' && c[1] == '/') {
            ir_str_puts(s, "* ");
            continue;
        }
        ir_str_putc(s, *c == '\n' ? ' ' : *c);
    }
    if (n->loc.line > 0) ir_str_printf(s, "    (line %d)", n->loc.line);
    ir_str_putc(s, '\n');
    ir_str_free(&t);
}

static void comment_buf(ir_str *s, const plan *p, int b, const char *how) {
    const plan_buf *bf = &p->bufs[b];
    ir_str t = {0};
    ir_value_ref(&t, bf->value);
    ir_str_puts(&t, ": ");
    ir_type_print(&t, &bf->value->type);
    ir_str_printf(s, " *   b%d %s %s", b, how, t.buf ? t.buf : "?");
    ir_str_free(&t);
    ir_str_putc(s, '\n');
}

void cg_header(cg *g, ir_str *s, const char *what) {
    const plan_kernel *k = g->k;
    ir_str dom = {0};
    ir_type_print(&dom, &k->domain);
    ir_str_printf(s, "\n/*\n * fusec kernel %s: %s\n * domain %s", k->name ? k->name : "?", what,
                  dom.buf ? dom.buf : "?");
    ir_str_free(&dom);
    if (k->kind == PLAN_REDUCE) {
        ir_str_puts(s, ", reducing axes [");
        for (int i = 0, first = 1; i < k->domain.rank; i++)
            if (k->reduce[i]) {
                ir_str_printf(s, "%s%d", first ? "" : ", ", i);
                first = 0;
            }
        ir_str_puts(s, "]");
    }
    ir_str_puts(s, "\n * fused IR ops:\n");
    for (int i = 0; i < k->nnodes; i++) comment_node(s, k->nodes[i]);
    ir_str_puts(s, " * buffers (kernel parameters, in order):\n");
    for (int i = 0; i < k->nin; i++) comment_buf(s, g->p, k->in[i], "read");
    for (int i = 0; i < k->nout; i++) comment_buf(s, g->p, k->out[i], "written");
    ir_str_puts(s, " */\n");
}

void cg_params(cg *g, ir_str *s, const int *bufs, int nbufs, int nscratch) {
    ir_str_putc(s, '(');
    for (int i = 0; i < nbufs; i++) {
        bool written = false;
        for (int o = 0; o < g->k->nout; o++) written |= g->k->out[o] == bufs[i];
        ir_str_printf(s, "%s%s%s *b%d", i ? ", " : "", written ? "" : "const ",
                      cg_stype(g->p->bufs[bufs[i]].value->type.dtype), bufs[i]);
    }
    for (int i = 0; i < nscratch; i++) ir_str_printf(s, "%sunsigned char *scratch%d", nbufs + i ? ", " : "", i);
    ir_str_putc(s, ')');
}

bool cg_kernel_entry(cg *g, ir_str *ks, const char *name, int threads, const int *bufs, int nbufs,
                     int nscratch, ir_str *body, bool ok) {
    ok = ok && g->ok;
    if (ok) {
        ir_str_printf(ks, "\nextern \"C\" __global__ void __launch_bounds__(%d) %s", threads, name);
        cg_params(g, ks, bufs, nbufs, nscratch);
        ir_str_printf(ks, " {\n%s}\n", body->buf ? body->buf : "");
    }
    ir_str_free(body);
    return ok;
}

unsigned cg_clamp_grid(int64_t blocks, unsigned limit) {
    if (blocks <= 0) return 0;
    return blocks > (int64_t)limit ? limit : (unsigned)blocks;
}

int cg_vec_width(const cg *g, const int *bufs, int nbufs) {
    size_t mx = 1;
    for (int i = 0; i < nbufs; i++) {
        size_t es = ir_dtype_size(g->p->bufs[bufs[i]].value->type.dtype);
        if (es > mx) mx = es;
    }
    int v = (int)(16 / mx);
    return v > CG_MAX_LANES ? CG_MAX_LANES : v;
}

/* 32-bit indices: every tensor the kernel touches or computes has fewer
 * elements than 2^31 minus a margin (lanes past a row's end compute
 * offsets a little beyond it before their predicate discards them). */
bool cg_fits32(const cg *g) {
    const int64_t lim = ((int64_t)1 << 31) - ((int64_t)1 << 24);
    const plan_kernel *k = g->k;
    if (ir_type_numel(&k->domain) > lim) return false;
    for (int i = 0; i < k->nin; i++)
        if (ir_type_numel(&g->p->bufs[k->in[i]].value->type) > lim) return false;
    for (int i = 0; i < k->nout; i++)
        if (ir_type_numel(&g->p->bufs[k->out[i]].value->type) > lim) return false;
    for (int i = 0; i < k->nnodes; i++) {
        const ir_node *n = k->nodes[i];
        if (ir_type_numel(&n->out->type) > lim) return false;
        for (int j = 0; j < n->nin; j++)
            if (ir_type_numel(&n->in[j]->type) > lim) return false;
    }
    return true;
}

char *cg_assemble(cg *g, const char *what, const ir_str *kernels) {
    ir_str s = {0};
    cg_preamble(&s, g->idx64);
    cg_header(g, &s, what);
    if (g->consts.len) ir_str_printf(&s, "\n%s", g->consts.buf);
    if (kernels->buf) ir_str_puts(&s, kernels->buf);
    if (s.oom) {
        ir_str_free(&s);
        cg_fail(g, NULL, "out of memory");
        return NULL;
    }
    return ir_str_take(&s);
}

char *cg_kernel_name(cg *g, const char *suffix) {
    const char *n = g->k->name ? g->k->name : "kernel";
    ir_str s = {0};
    if (!((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z') || n[0] == '_')) ir_str_putc(&s, 'k');
    for (; *n; n++)
        ir_str_putc(&s, ((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9')) ? *n : '_');
    ir_str_puts(&s, suffix);
    char *r = ir_str_take(&s);
    if (!r) cg_fail(g, NULL, "out of memory");
    return r;
}

static const char *const options[] = {"--std=c++17", "-default-device", "--fmad=true", "-DNDEBUG",
                                      "--diag-suppress=177", NULL};

const char *const *cg_cuda_options(void) { return options; }

void cg_cuda_kernel_free(cg_cuda_kernel *k) {
    if (!k) return;
    if (k->next) {
        cg_cuda_kernel_free(k->next);
        free(k->next);
    }
    if (k->gemm) {
        cg_cuda_kernel_free(k->gemm->epilogue);
        free(k->gemm->epilogue);
        cg_cuda_kernel_free(k->gemm->prologue);
        free(k->gemm->prologue);
        free(k->gemm);
    }
    free(k->name);
    free(k->scalar_name);
    free(k->source);
    free(k->bufs);
    memset(k, 0, sizeof *k);
}

bool cg_cuda_generate(const plan *p, int k, cg_cuda_kernel *out, ir_diag *d) {
    memset(out, 0, sizeof *out);
    if (!p || k < 0 || k >= p->nkernels) {
        ir_error(d, (ir_loc){0}, "cuda codegen: no kernel %d in the plan", k);
        return false;
    }
    cg g;
    bool ok = cg_init(&g, p, k, d);
    if (ok) {
        g.idx64 = !cg_fits32(&g);
        switch (p->kernels[k].kind) {
        case PLAN_POINTWISE: ok = cg_gen_pointwise(&g, out); break;
        case PLAN_REDUCE: ok = cg_gen_reduce(&g, out); break;
        case PLAN_LIBRARY: ok = cg_gen_library(&g, out); break;
        default: ok = cg_fail(&g, NULL, "unknown kernel kind"); break;
        }
        ok = ok && g.ok;
    }
    cg_free(&g);
    if (!ok) cg_cuda_kernel_free(out);
    return ok;
}
