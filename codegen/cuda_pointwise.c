/*
 * cuda_pointwise.c - PLAN_POINTWISE kernels: every output has the kernel's
 * domain as its shape, and each thread computes one vector of V
 * consecutive elements of the domain (V = 16 bytes over the widest dtype
 * the kernel touches, at most CG_MAX_LANES; V = 1 when the innermost dim is
 * not a multiple of it) - the "one vector per thread over a large grid"
 * that measured fastest on the H100 (docs: research/implementation.md e).
 *
 * Launch shape.  When the domain has rank >= 2 and its innermost dim holds
 * at least 32 vectors, the launch is 2-D: x runs over the vectors of a row
 * (the innermost dim), y over the rows (the product of the leading dims,
 * looped past 65535).  A row's coordinates then come from y alone and the
 * column is x * V + lane with no division: an operand broadcast along the
 * leading dims (a [cols] bias) is read at the column, a [rows, 1] operand
 * at the row.  Otherwise the launch is 1-D over all vectors (grid-stride
 * beyond the grid limit) and coordinates are split from the linear index
 * by compile-time divisions, which the index algebra (cuda_index.c) turns
 * back into plain offsets wherever it can.
 *
 * Every output value of an element is computed before any is stored: a
 * buffer written in place over an input (passes/memplan.c) is read at the
 * element being written, by the same thread, before the store.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda_impl.h"

static bool same_shape(const ir_type *a, const ir_type *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

typedef struct pw_shape {
    int V;          /* lanes */
    int split;      /* dims [0, split) are the rows (y), [split, rank) the row (x) */
    int64_t inner;  /* elements of a row */
    int64_t outer;  /* rows */
    int64_t nvec;   /* vectors of a row */
} pw_shape;

static pw_shape pw_plan(const ir_type *D, int V) {
    pw_shape s = {.V = V};
    int64_t last = D->rank ? D->dim[D->rank - 1] : 1;
    s.split = D->rank >= 2 && last / V >= 32 ? D->rank - 1 : 0;
    s.inner = 1;
    s.outer = 1;
    for (int i = 0; i < D->rank; i++) {
        if (i < s.split) s.outer *= D->dim[i];
        else s.inner *= D->dim[i];
    }
    s.nvec = s.inner / V;
    return s;
}

/* One entry point computing every output of the kernel with V lanes. */
static bool pw_entry(cg *g, ir_str *ks, const char *name, const int *bufs, int nbufs, int V, unsigned grid[3],
                     unsigned block[3]) {
    const plan_kernel *k = g->k;
    const ir_type *D = &k->domain;
    cg_reset(g);
    g->vec = V;
    pw_shape s = pw_plan(D, V);
    ir_str body = {0};
    g->out = &body;
    g->indent = 1;
    bool twod = s.split > 0;
    grid[0] = grid[1] = grid[2] = 1;
    block[0] = block[1] = block[2] = 1;
    if (twod) {
        int64_t bx = s.nvec < CG_BLOCK ? (s.nvec + 31) / 32 * 32 : CG_BLOCK;
        block[0] = (unsigned)bx;
        block[1] = (unsigned)(CG_BLOCK / bx);
        grid[0] = cg_clamp_grid((s.nvec + bx - 1) / bx, 0x7fffffffu);
        grid[1] = cg_clamp_grid((s.outer + block[1] - 1) / block[1], 65535u);
        cg_line(g, "const idx_t u = (idx_t)((long long)blockIdx.x * blockDim.x + threadIdx.x); /* vector in the row */");
        cg_line(g, "if (u >= %" PRId64 ") return;", s.nvec);
        cg_line(g, "for (long long ob = (long long)blockIdx.y * blockDim.y + threadIdx.y; ob < %" PRId64
                   "LL; ob += (long long)gridDim.y * blockDim.y) {", s.outer);
        g->indent++;
        cg_line(g, "const idx_t o = (idx_t)ob; /* row */");
    } else {
        block[0] = CG_BLOCK;
        grid[0] = cg_clamp_grid((s.nvec * s.outer + CG_BLOCK - 1) / CG_BLOCK, 0x7fffffffu);
        cg_line(g, "for (long long ub = (long long)blockIdx.x * blockDim.x + threadIdx.x; ub < %" PRId64
                   "LL; ub += (long long)gridDim.x * blockDim.x) {", s.nvec * s.outer);
        g->indent++;
        cg_line(g, "const idx_t u = (idx_t)ub; /* vector */");
    }
    int64_t nvec_all = twod ? s.nvec : s.nvec * s.outer;
    int uv = cg_var_new(g, "u", 0, nvec_all - 1);
    int ov = twod ? cg_var_new(g, "o", 0, s.outer - 1) : -1;
    cg_at *at = cg_at_new(g, V, D->rank);
    const char **names = calloc((size_t)k->nout * CG_MAX_LANES + 1, sizeof *names);
    bool ok = at && names;
    if (!names) cg_fail(g, NULL, "out of memory");
    cg_scope_push(g);
    cg_ix off[CG_MAX_LANES];
    for (int l = 0; ok && l < V; l++) {
        cg_ix e = cg_ixv(uv, V);
        e.c = l;
        cg_ix_split(g, &e, D->dim + s.split, D->rank - s.split, at->ix[l] + s.split);
        if (twod) {
            cg_ix o = cg_ixv(ov, 1);
            cg_ix_split(g, &o, D->dim, s.split, at->ix[l]);
            cg_ix_scale(g, &o, s.inner);
            cg_ix_add(g, &o, &e);
            off[l] = o;
        } else {
            off[l] = e;
        }
    }
    for (int o = 0; ok && o < k->nout; o++) ok = cg_eval(g, g->p->bufs[k->out[o]].value, at, names + o * CG_MAX_LANES);
    for (int o = 0; ok && o < k->nout; o++) cg_store(g, k->out[o], at, off, names + o * CG_MAX_LANES);
    cg_scope_pop(g);
    g->indent--;
    cg_line(g, "}");
    free(at);
    free(names);
    ok = cg_kernel_entry(g, ks, name, CG_BLOCK, bufs, nbufs, 0, &body, ok);
    return ok;
}

bool cg_gen_pointwise(cg *g, cg_cuda_kernel *out) {
    const plan_kernel *k = g->k;
    const ir_type *D = &k->domain;
    for (int o = 0; o < k->nout; o++) {
        const ir_value *v = g->p->bufs[k->out[o]].value;
        if (!same_shape(&v->type, D))
            return cg_fail(g, v->def, "pointwise output %%%s does not have the kernel's domain as its shape",
                           v->name ? v->name : "?");
    }
    int nbufs = k->nin + k->nout;
    out->bufs = malloc(sizeof(int) * (size_t)(nbufs + 1));
    if (!out->bufs) return cg_fail(g, NULL, "out of memory");
    memcpy(out->bufs, k->in, sizeof(int) * (size_t)k->nin);
    memcpy(out->bufs + k->nin, k->out, sizeof(int) * (size_t)k->nout);
    out->nbufs = nbufs;
    int64_t numel = ir_type_numel(D);
    int V = cg_vec_width(g, out->bufs, nbufs);
    int64_t last = D->rank ? D->dim[D->rank - 1] : 1;
    bool vec = V > 1 && numel > 0 && last % V == 0;
    out->name = cg_kernel_name(g, "");
    if (vec) out->scalar_name = cg_kernel_name(g, "_scalar");
    if (!out->name || (vec && !out->scalar_name)) return false;
    ir_str ks = {0};
    bool ok = true;
    char what[256];
    if (numel == 0) {
        ir_str_printf(&ks, "\nextern \"C\" __global__ void %s", out->name);
        cg_params(g, &ks, out->bufs, nbufs, 0);
        ir_str_puts(&ks, " {\n    /* the domain is empty: nothing to compute */\n}\n");
        out->block[0] = out->block[1] = out->block[2] = 1;
        out->grid[0] = out->grid[1] = out->grid[2] = 1; /* a harmless launch: no special case */
        snprintf(what, sizeof what, "pointwise over an empty domain");
    } else {
        ok = pw_entry(g, &ks, out->name, out->bufs, nbufs, vec ? V : 1, out->grid, out->block);
        if (ok && vec) ok = pw_entry(g, &ks, out->scalar_name, out->bufs, nbufs, 1, out->scalar_grid, out->scalar_block);
        pw_shape s = pw_plan(D, vec ? V : 1);
        snprintf(what, sizeof what, "pointwise, %s, %s launch%s%s", vec ? "vectorized" : "scalar",
                 s.split ? "2-D (x: vectors of a row, y: rows)" : "1-D",
                 vec ? cg_strf(g, ": %d elements per thread (16-byte accesses where contiguous); ", V) : "",
                 vec ? cg_strf(g, "%s_scalar: one element per thread, for unaligned pointers", out->name) : "");
    }
    if (ok) out->source = cg_assemble(g, what, &ks);
    ir_str_free(&ks);
    return ok && out->source;
}
