#!/usr/bin/env python3
"""
generate.py - writes the benchmark graphs of bench/graphs/ from one template each.

    python3 bench/graphs/generate.py           # (re)write every .ir file here
    python3 bench/graphs/generate.py --check   # exit 1 if a file differs from its template

The .ir files are the benchmark: they are checked in, read by `fusec` and by
bench/compare_torch.py, and may be edited by hand for an experiment.  They
come from this script only so that the f32 and bf16 versions of a graph never
drift apart: a template is written once with `$dt` where the dtype goes.

The memory-bound graphs are those of ../shared/bench/anchors.md at exactly its
shapes (M=16384, N=4096; attention B=8, H=16, S=1024, D=64); the three blocks
(GPT-2 attention, LLaMA-7B MLP, ResNet-50 bottleneck) are at the sizes of
issue 5.

Every file carries a line `# small: A->a, B->b, ...`.  bench/compare_torch.py
--small rewrites each integer token A of the file into a (whole tokens only,
never a digit of a float such as 0.125 or 1e-5) to get a version that the
reference interpreter runs in a blink; the CPU self-test uses it.  The map
must be consistent: every occurrence of A in a file is the same size (a
batch of 64 and 64 channels both become 4 in the ResNet block, which is
fine, since both change alike).
"""
import os
import string
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (dtypes, small map, text).  The text's first comment lines say what
# the graph is; `$dt` is replaced by the dtype and `$small` by the small map.
GRAPHS = {}


def graph(name, dtypes, small, text):
    GRAPHS[name] = (dtypes, small, text)


graph("gelu_bias_residual", ["f32", "bf16"], "16384->16, 4096->64", """\
# gelu_tanh(x + b) + r: a bias add, the tanh approximation of GELU and a
# residual add, as at the end of a transformer MLP.  One pass over x and r.
# Shapes of bench/anchors.md: M=16384 rows of N=4096.
# small: $small
func @gelu_bias_residual(%x: $dt[16384, 4096], %b: $dt[4096],
                         %r: $dt[16384, 4096]) -> $dt[16384, 4096] {
  %h   = add(%x, %b)                                    # b broadcasts over rows
  %g   = gelu(%h) {approximate = "tanh"}
  %out = add(%g, %r)
  return %out
}
""")

graph("layer_norm", ["f32", "bf16"], "16384->16, 4096->64", """\
# layer_norm(x, w, b) over the last dim (N): one row of 4096 per statistic.
# Shapes of bench/anchors.md: M=16384 rows of N=4096.
# small: $small
func @layer_norm(%x: $dt[16384, 4096], %w: $dt[4096], %b: $dt[4096]) -> $dt[16384, 4096] {
  %out = layer_norm(%x, %w, %b) {axes = [-1], eps = 1e-5}
  return %out
}
""")

graph("rms_norm", ["f32", "bf16"], "16384->16, 4096->64", """\
# RMS norm written out by hand, as models write it (not the rms_norm op):
#   x * rsqrt(mean(x^2) + eps) * w
# so that fusion, not a template, has to find the row reduction and its
# prologue and epilogue.  In bf16 every op rounds its result to bf16, as
# PyTorch eager does; the mean accumulates in f32.
# Shapes of bench/anchors.md: M=16384 rows of N=4096.
# small: $small
func @rms_norm(%x: $dt[16384, 4096], %w: $dt[4096]) -> $dt[16384, 4096] {
  %sq  = mul(%x, %x)
  %ms  = mean(%sq) {axes = [-1], keepdim = true}        # [16384, 1]
  %e   = add(%ms, 1e-6)
  %inv = rsqrt(%e)
  %n   = mul(%x, %inv)
  %out = mul(%n, %w)
  return %out
}
""")

graph("elementwise_chain", ["f32", "bf16"], "16384->16, 4096->64", """\
# The elementwise chain of bench/anchors.md, one op per statement:
#   ((((x*1.5+0.5).sin().exp()-1).abs().sqrt()*x).tanh()+x).sigmoid()*2-1
# One read of x and one write: everything else must stay in registers.  In
# bf16 each op rounds its result to bf16, as PyTorch eager does.
# Shapes of bench/anchors.md: M=16384 rows of N=4096.
# small: $small
func @elementwise_chain(%x: $dt[16384, 4096]) -> $dt[16384, 4096] {
  %a0  = mul(%x, 1.5)
  %a1  = add(%a0, 0.5)
  %a2  = sin(%a1)
  %a3  = exp(%a2)
  %a4  = sub(%a3, 1.0)
  %a5  = abs(%a4)
  %a6  = sqrt(%a5)
  %a7  = mul(%a6, %x)
  %a8  = tanh(%a7)
  %a9  = add(%a8, %x)
  %a10 = sigmoid(%a9)
  %a11 = mul(%a10, 2.0)
  %out = sub(%a11, 1.0)
  return %out
}
""")

graph("causal_softmax", ["f32", "bf16"], "8->2, 16->2, 1024->32", """\
# softmax(s * 0.125 + triu(full(-inf), 1)): attention scores with an additive
# causal mask built in the graph (-inf above the diagonal, 0 elsewhere).  The
# mask must never reach memory: the masked softmax should cost what an
# unmasked one costs.  Shapes of bench/anchors.md: B=8, H=16, S=1024.
# small: $small
func @causal_softmax(%s: $dt[8, 16, 1024, 1024]) -> $dt[8, 16, 1024, 1024] {
  %ninf = full() {value = -inf} : $dt[1024, 1024]
  %mask = triu(%ninf) {diagonal = 1}                    # -inf where key > query
  %t    = mul(%s, 0.125)
  %u    = add(%t, %mask)                                # broadcasts over B and H
  %p    = softmax(%u) {axis = -1}
  return %p
}
""")

graph("padding_softmax", ["f32", "bf16"], "8->2, 16->2, 1024->32", """\
# softmax(masked_fill(s * 0.125, ~pad, -inf)): a key-padding mask.  %pad is
# true at the keys to keep, one row per sequence, shaped [B, 1, 1, S] so that
# it broadcasts over heads and queries.  Shapes of bench/anchors.md: B=8,
# H=16, S=1024.
# small: $small
func @padding_softmax(%s: $dt[8, 16, 1024, 1024],
                      %pad: bool[8, 1, 1, 1024]) -> $dt[8, 16, 1024, 1024] {
  %t    = mul(%s, 0.125)
  %drop = not(%pad)
  %m    = masked_fill(%t, %drop) {value = -inf}
  %p    = softmax(%m) {axis = -1}
  return %p
}
""")

graph("softmax", ["f32", "bf16"], "8->2, 16->2, 1024->32", """\
# softmax(s * 0.125) with no mask: the yardstick for the two masked softmaxes
# above, which should cost no more than this (issue 4: masks are never
# materialised).  Shapes of bench/anchors.md: B=8, H=16, S=1024.
# small: $small
func @softmax(%s: $dt[8, 16, 1024, 1024]) -> $dt[8, 16, 1024, 1024] {
  %t = mul(%s, 0.125)
  %p = softmax(%t) {axis = -1}
  return %p
}
""")

graph("causal_attention", ["f32", "bf16"], "8->2, 16->2, 1024->32, 64->16", """\
# Decomposed causal attention, as written without a fused attention op:
#   softmax(masked_fill(q @ k^T * 0.125, triu(ones, 1), -inf)) @ v
# The boolean mask is built in the graph the way PyTorch code builds it
# (torch.triu(torch.ones(S, S, dtype=torch.bool), 1)).  Shapes of
# bench/anchors.md: B=8, H=16, S=1024, D=64.
# small: $small
func @causal_attention(%q: $dt[8, 16, 1024, 64], %k: $dt[8, 16, 1024, 64],
                       %v: $dt[8, 16, 1024, 64]) -> $dt[8, 16, 1024, 64] {
  %kt   = transpose(%k) {dim0 = -2, dim1 = -1}          # [8, 16, 64, 1024]
  %s    = matmul(%q, %kt)                               # [8, 16, 1024, 1024]
  %s2   = mul(%s, 0.125)                                # 1 / sqrt(64)
  %ones = full() {value = 1} : bool[1024, 1024]
  %fut  = triu(%ones) {diagonal = 1}                    # true where key > query
  %sm   = masked_fill(%s2, %fut) {value = -inf}
  %p    = softmax(%sm) {axis = -1}
  %o    = matmul(%p, %v)                                # [8, 16, 1024, 64]
  return %o
}
""")

graph("gpt2_attention", ["f32", "bf16"],
      "8->2, 1024->32, 768->96, 2304->288, 1536->192, 12->3, 64->32", """\
# GPT-2 causal self-attention block (pre-LayerNorm) at GPT-2 small's sizes:
# batch 8, 1024 tokens, hidden 768, 12 heads of 64.
#
#   out = x + c_proj(merge_heads(softmax(mask(q @ k^T / sqrt(64))) @ v))
#   q, k, v = split(c_attn(layer_norm(x)))
#
# Weights in torch.nn.Linear's layout (out_features, in_features).  The
# causal mask is built from iota and a comparison; key > query gets -inf.
# small: $small
func @gpt2_attention(%x: $dt[8, 1024, 768],
                     %ln_w: $dt[768], %ln_b: $dt[768],
                     %attn_w: $dt[2304, 768], %attn_b: $dt[2304],
                     %proj_w: $dt[768, 768], %proj_b: $dt[768]) -> $dt[8, 1024, 768] {
  %h    = layer_norm(%x, %ln_w, %ln_b) {axes = [-1], eps = 1e-5}
  %qkv  = linear(%h, %attn_w, %attn_b)                  # [8, 1024, 2304]

  # split into q, k, v and each into 12 heads: [8, 1024, 768] -> [8, 12, 1024, 64]
  %q0   = slice(%qkv) {axis = -1, start = 0, end = 768}
  %k0   = slice(%qkv) {axis = -1, start = 768, end = 1536}
  %v0   = slice(%qkv) {axis = -1, start = 1536, end = 2304}
  %q1   = reshape(%q0) {shape = [8, 1024, 12, 64]}
  %k1   = reshape(%k0) {shape = [8, 1024, 12, 64]}
  %v1   = reshape(%v0) {shape = [8, 1024, 12, 64]}
  %q    = permute(%q1) {dims = [0, 2, 1, 3]}
  %k    = permute(%k1) {dims = [0, 2, 1, 3]}
  %v    = permute(%v1) {dims = [0, 2, 1, 3]}

  # scaled scores with the causal mask
  %kt   = transpose(%k) {dim0 = -2, dim1 = -1}          # [8, 12, 64, 1024]
  %s    = matmul(%q, %kt)                               # [8, 12, 1024, 1024]
  %s2   = mul(%s, 0.125)                                # 1 / sqrt(64)
  %row  = iota() {axis = 0} : i64[1024, 1024]
  %col  = iota() {axis = 1} : i64[1024, 1024]
  %fut  = gt(%col, %row)                                # a future key
  %sm   = where(%fut, -inf, %s2)
  %p    = softmax(%sm) {axis = -1}

  # attend, merge heads, project, residual
  %o    = matmul(%p, %v)                                # [8, 12, 1024, 64]
  %o1   = permute(%o) {dims = [0, 2, 1, 3]}             # [8, 1024, 12, 64]
  %o2   = reshape(%o1) {shape = [8, 1024, 768]}
  %y    = linear(%o2, %proj_w, %proj_b)
  %out  = add(%x, %y)
  return %out
}
""")

graph("llama_mlp", ["bf16"], "2048->16, 4096->64, 11008->176", """\
# LLaMA-7B feed-forward block (SwiGLU) in bf16: 2048 tokens, hidden 4096,
# intermediate 11008.
#
#   out = x + down(silu(gate(n)) * up(n)),   n = rms_norm(x) * norm_w
#
# Weights in torch.nn.Linear's layout (out_features, in_features), without
# biases as in LLaMA.
# small: $small
func @llama_mlp(%x: $dt[2048, 4096], %norm_w: $dt[4096],
                %gate_w: $dt[11008, 4096], %up_w: $dt[11008, 4096],
                %down_w: $dt[4096, 11008]) -> $dt[2048, 4096] {
  %n    = rms_norm(%x, %norm_w) {axes = [-1], eps = 1e-6}
  %gate = linear(%n, %gate_w)                           # [2048, 11008]
  %up   = linear(%n, %up_w)
  %act  = silu(%gate)
  %h    = mul(%act, %up)
  %down = linear(%h, %down_w)                           # [2048, 4096]
  %out  = add(%x, %down)
  return %out
}
""")

graph("resnet_bottleneck", ["f32", "bf16"], "64->4, 256->16, 56->8", """\
# ResNet-50 bottleneck block of stage 2 (conv2_x), inference: batch 64,
# 256 -> 64 (1x1) -> 64 (3x3) -> 256 (1x1) channels on 56x56 maps, stride 1,
# identity shortcut.
#
#   out = relu(x + bn3(conv1x1(relu(bn2(conv3x3(relu(bn1(conv1x1(x)))))))))
#
# batch_norm is the inference form (running mean and variance, affine weight
# and bias, all parameters); the convolutions have no bias, as in torchvision.
# small: $small
func @resnet_bottleneck(%x: $dt[64, 256, 56, 56],
                        %conv1_w: $dt[64, 256, 1, 1],
                        %bn1_mean: $dt[64], %bn1_var: $dt[64], %bn1_w: $dt[64], %bn1_b: $dt[64],
                        %conv2_w: $dt[64, 64, 3, 3],
                        %bn2_mean: $dt[64], %bn2_var: $dt[64], %bn2_w: $dt[64], %bn2_b: $dt[64],
                        %conv3_w: $dt[256, 64, 1, 1],
                        %bn3_mean: $dt[256], %bn3_var: $dt[256], %bn3_w: $dt[256], %bn3_b: $dt[256])
                        -> $dt[64, 256, 56, 56] {
  %c1  = conv2d(%x, %conv1_w)                                         # [64, 64, 56, 56]
  %b1  = batch_norm(%c1, %bn1_mean, %bn1_var, %bn1_w, %bn1_b) {eps = 1e-5}
  %r1  = relu(%b1)
  %c2  = conv2d(%r1, %conv2_w) {stride = [1, 1], padding = [1, 1]}    # [64, 64, 56, 56]
  %b2  = batch_norm(%c2, %bn2_mean, %bn2_var, %bn2_w, %bn2_b) {eps = 1e-5}
  %r2  = relu(%b2)
  %c3  = conv2d(%r2, %conv3_w)                                        # [64, 256, 56, 56]
  %b3  = batch_norm(%c3, %bn3_mean, %bn3_var, %bn3_w, %bn3_b) {eps = 1e-5}
  %sum = add(%b3, %x)                                                 # identity shortcut
  %out = relu(%sum)
  return %out
}
""")

graph("latency/gelu_layer_norm", ["f32"], "4096->64", """\
# gelu(layer_norm(x)) + x on 4096 x 4096 f32: the small graph of the compile
# latency measurement in bench/anchors.md (a fresh process parses, compiles
# and runs it, with an empty and with a warm kernel cache).  Not part of the
# throughput table (bench/compare_torch.py reads bench/graphs/*.ir only).
# small: $small
func @gelu_layer_norm(%x: $dt[4096, 4096]) -> $dt[4096, 4096] {
  %n   = layer_norm(%x) {axes = [-1], eps = 1e-5}
  %g   = gelu(%n)
  %out = add(%g, %x)
  return %out
}
""")

HEADER = "# Generated by bench/graphs/generate.py from its template; the f32 and bf16\n" \
         "# versions come from the same one.\n"


def render():
    """{file name: text} for every graph and dtype."""
    out = {}
    for name, (dtypes, small, text) in GRAPHS.items():
        for dt in dtypes:
            body = string.Template(text).substitute(dt=dt, small=small)
            out["%s.%s.ir" % (name, dt)] = HEADER + body
    return out


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for fname, text in sorted(render().items()):
        path = os.path.join(HERE, fname)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        old = None
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
        if old == text:
            continue
        if check:
            stale.append(fname)
        else:
            with open(path, "w") as f:
                f.write(text)
            print("wrote", path)
    if stale:
        print("out of date (run bench/graphs/generate.py):", " ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
