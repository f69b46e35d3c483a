/*
 * interp_kernels.h - the interpreter's per-op kernels, shared by
 * runtime/interp.c (dispatch, elementwise, reductions, normalisation,
 * creation) and runtime/interp_nn.c (data movement, indexing, contractions,
 * windows, attention).
 *
 * A kernel gets the node, its operands as dense row-major host tensors of
 * the operands' types (literals arrive as 0-d tensors of their dtype), and
 * `out`, already allocated (zeroed) with the node's result type.  It returns
 * false after reporting to d on a run-time error.
 */
#ifndef FUSEC_RUNTIME_INTERP_KERNELS_H
#define FUSEC_RUNTIME_INTERP_KERNELS_H

#include "ir/ir.h"

typedef bool (*rt_kernel_fn)(const ir_node *n, const fusec_tensor *in, fusec_tensor *out,
                             ir_diag *d);

/* interp_nn.c */
bool rt_k_copy(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);  /* reshape, squeeze, unsqueeze */
bool rt_k_permute(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d); /* permute, transpose */
bool rt_k_expand(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);
bool rt_k_slice(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);
bool rt_k_concat(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);
bool rt_k_pad(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);
bool rt_k_index_select(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);
bool rt_k_embedding(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);
bool rt_k_gather(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);
bool rt_k_tri(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);     /* triu, tril */
bool rt_k_matmul(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);
bool rt_k_linear(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);
bool rt_k_conv2d(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);
bool rt_k_pool2d(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);  /* max, avg */
bool rt_k_adaptive_avg_pool2d(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);
bool rt_k_sdpa(const ir_node *n, const fusec_tensor *in, fusec_tensor *out, ir_diag *d);

#endif
