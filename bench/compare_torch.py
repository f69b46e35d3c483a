#!/usr/bin/env python3
"""
compare_torch.py - fusec against PyTorch eager and torch.compile, side by side.

    python3 bench/compare_torch.py [FILE.ir ...] [--json PATH] [--lib libfusec.so]
    python3 bench/compare_torch.py --selftest [--fusec build/bin/fusec]   # CPU, no GPU

For each graph (default: every bench/graphs/*.ir) the script

  1. reads the .ir text with a small parser of its own and translates it into
     a PyTorch function (one line of Python per IR statement; spec section 6
     gives each op's PyTorch meaning), so that the very same computation runs
     in eager mode and under torch.compile;
  2. makes seeded random inputs on the GPU: floats ~ N(0, 1) (running
     variances of batch_norm |N(0, 1)| + 0.5; weights of linear and conv2d
     N(0, 1 / fan-in), so that activations stay O(1) as in a real model),
     integers in [0, 4), bools 50/50;
  3. compiles the graph with fusec through ctypes (fusec_graph_parse_file,
     fusec_compile with FUSEC_BACKEND_CUDA) and runs it zero-copy with
     fusec_module_run_device on the torch tensors' device pointers, outputs
     preallocated by torch, on torch's current stream;
  4. checks fusec's outputs against eager's (see "Checking" below);
  5. times eager, torch.compile (default mode, warmed up first) and fusec the
     same way: triton.testing.do_bench(fn, warmup=25, rep=100,
     return_mode="median"), and the device-to-device copy bandwidth (a copy
     of a 1 GiB tensor, 2 x bytes / time) that gives the roofline:
     roof = (every input read once + every output written once) / bandwidth,
     "% roof" = roof / time;
  6. prints a table and writes it as JSON (--json), rewritten after every
     graph so that a run cut short still leaves what it measured.

Then it measures compile latency in fresh processes (--no-latency skips it):
fusec parse + compile + first run of a small graph with an empty kernel cache
(FUSEC_CACHE_DIR a new folder) and a warm one (the same folder again), with
CUDA context creation and the input transfer timed separately before fusec is
called; and torch.compile's first call in a fresh process, with the same
split, with empty and warm inductor/Triton caches.

Robustness.  The graphs run in a worker process that reports one JSON line
per graph.  A graph that fusec cannot compile or run gets its error in its
row and the worker goes on.  If the worker dies (a crash in fusec), loses its
CUDA context (a sticky error) or overruns --graph-timeout, the parent marks
that graph's row and starts a new worker for the graphs still to do.  With
--deadline SECONDS the graphs not started in time are reported as not run
and the latency runs are skipped when fewer than 90 s are left, so that a
run under a time limit still ends with its JSON written.

Checking.  A float element of fusec's output passes when it is NaN where
eager's is, the same infinity, or within

    max(rtol * |ref|, atol) + 2 * |ref - ref_hi|,
    atol = max(rtol / 10 * max(max |ref|, 1), smallest normal)

with rtol 1e-5 for f32 graphs of elementwise ops only, 1e-4 for f32 graphs
with reductions, norms, softmax, matmul or conv, 1e-2 for f16 and 2e-2 for
bf16 (the tolerances of design.md and tests/diff/compare.c).  ref_hi is the
same graph run by torch one precision up (f32 -> f64, bf16/f16 -> f32): the
last term widens the bound exactly where eager's own answer is sensitive to
rounding (sqrt just above a cancellation in the elementwise chain, say),
where two correct implementations can differ by far more than rtol.  Integer
and bool outputs must be equal.  A mismatching row is marked FAIL; its times
are still shown.

f32 matmul and convolution run in full f32 in torch (TF32 is off unless
--allow-tf32), the precision fusec computes f32 in.

The CPU self-test (--selftest; /usr/bin/python3 with torch 1.13, no GPU)
checks the translator: every graph here, shrunk by its `# small:` line, plus
the examples and a set of small graphs that use the other ops, runs through
the translator in torch and through `fusec run --backend interp` (and
`plan`) on the same inputs (.npy files), and the outputs are compared as
above.  It also drives libfusec.so through the same ctypes structures with
fusec_module_run on host memory.  --device cpu runs the whole harness
(worker, table, JSON) on the CPU with a plain timer, to test it without a GPU.
"""
import argparse
import ctypes
import glob
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# =============================================================================
# The IR text: a tokenizer and a recursive-descent parser (docs/ir.md §2-3)
# =============================================================================

DTYPES = ("f64", "f32", "f16", "bf16", "i64", "i32", "i16", "i8", "u8", "bool")
FLOAT_DTYPES = ("f64", "f32", "f16", "bf16")
INT_DTYPES = ("i64", "i32", "i16", "i8", "u8")
# fusec_dtype enum values (include/fusec.h) and element sizes, in that order.
FUSEC_DTYPE_CODE = {name: i for i, name in enumerate(DTYPES)}
DTYPE_SIZE = {"f64": 8, "f32": 4, "f16": 2, "bf16": 2, "i64": 8, "i32": 4, "i16": 2,
              "i8": 1, "u8": 1, "bool": 1}

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<comment>\#[^\n]*)
  | (?P<arrow>->)
  | (?P<value>%[A-Za-z0-9_.]+)
  | (?P<func>@[A-Za-z0-9_.]+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>[-+]?(?:(?:inf|nan)(?![A-Za-z0-9_])
                     |(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(){}\[\],=:])
""", re.X)


class IRError(Exception):
    pass


class Tok:
    __slots__ = ("kind", "text", "line", "col")

    def __init__(self, kind, text, line, col):
        self.kind, self.text, self.line, self.col = kind, text, line, col


def tokenize(text, filename):
    toks, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise IRError("%s:%d:%d: unexpected character %r"
                          % (filename, line, pos - line_start + 1, text[pos]))
        kind = m.lastgroup
        if kind not in ("ws", "comment"):
            toks.append(Tok(kind, m.group(), line, pos - line_start + 1))
        nl = m.group().count("\n")
        if nl:
            line += nl
            line_start = m.start() + m.group().rfind("\n") + 1
        pos = m.end()
    toks.append(Tok("eof", "", line, pos - line_start + 1))
    return toks


def number_value(text):
    t = text.lstrip("+")
    if t in ("inf", "-inf"):
        return -math.inf if t.startswith("-") else math.inf
    if t in ("nan", "-nan"):
        return math.nan
    if re.fullmatch(r"-?\d+", t):
        return int(t)
    return float(t)


class Type:
    def __init__(self, dtype, shape):
        self.dtype, self.shape = dtype, tuple(shape)

    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def nbytes(self):
        return self.numel() * DTYPE_SIZE[self.dtype]

    def __repr__(self):
        return "%s[%s]" % (self.dtype, ", ".join(str(d) for d in self.shape))


class Stmt:
    def __init__(self, name, op, operands, attrs, type_, line):
        self.name, self.op, self.operands = name, op, operands  # operands: ("v", name) | ("lit", x)
        self.attrs, self.type, self.line = attrs, type_, line


class Func:
    def __init__(self, name, params, results, stmts, rets):
        self.name, self.params, self.results = name, params, results
        self.stmts, self.rets = stmts, rets


class Parser:
    def __init__(self, text, filename):
        self.toks = tokenize(text, filename)
        self.i = 0
        self.filename = filename

    def peek(self):
        return self.toks[self.i]

    def next(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def error(self, msg, tok=None):
        tok = tok or self.peek()
        raise IRError("%s:%d:%d: %s (at %r)" % (self.filename, tok.line, tok.col, msg, tok.text))

    def accept(self, text):
        if self.peek().text == text and self.peek().kind in ("punct", "arrow", "name"):
            return self.next()
        return None

    def expect(self, text):
        t = self.accept(text)
        if t is None:
            self.error("expected '%s'" % text)
        return t

    def expect_kind(self, kind, what):
        if self.peek().kind != kind:
            self.error("expected %s" % what)
        return self.next()

    def module(self):
        funcs = []
        while self.peek().kind != "eof":
            funcs.append(self.func())
        if not funcs:
            self.error("no function in the file")
        return funcs

    def func(self):
        if self.peek().text != "func":
            self.error("expected 'func'")
        self.next()
        name = self.expect_kind("func", "@name").text[1:]
        self.expect("(")
        params = []
        if not self.accept(")"):
            while True:
                pname = self.expect_kind("value", "a parameter %name").text[1:]
                self.expect(":")
                params.append((pname, self.type_()))
                if self.accept(")"):
                    break
                self.expect(",")
        self.expect("->")
        results = []
        if self.accept("("):
            while True:
                results.append(self.type_())
                if self.accept(")"):
                    break
                self.expect(",")
        else:
            results.append(self.type_())
        self.expect("{")
        stmts, rets = [], None
        while rets is None:
            t = self.peek()
            if t.kind == "name" and t.text == "return":
                self.next()
                rets = [self.expect_kind("value", "a %value").text[1:]]
                while self.accept(","):
                    rets.append(self.expect_kind("value", "a %value").text[1:])
            elif t.kind == "value":
                stmts.append(self.stmt())
            else:
                self.error("expected a statement or 'return'")
        self.expect("}")
        return Func(name, params, results, stmts, rets)

    def type_(self):
        t = self.expect_kind("name", "a dtype")
        if t.text not in DTYPES:
            self.error("unknown dtype", t)
        self.expect("[")
        dims = []
        if not self.accept("]"):
            while True:
                d = self.next()
                if d.kind == "number" and re.fullmatch(r"\d+", d.text):
                    dims.append(int(d.text))
                elif d.kind == "name":
                    raise IRError("%s:%d:%d: symbolic size '%s' is not supported by this harness"
                                  % (self.filename, d.line, d.col, d.text))
                else:
                    self.error("expected a size", d)
                if self.accept("]"):
                    break
                self.expect(",")
        return Type(t.text, dims)

    def stmt(self):
        v = self.next()
        self.expect("=")
        op = self.expect_kind("name", "an op name")
        self.expect("(")
        operands = []
        if not self.accept(")"):
            while True:
                t = self.next()
                if t.kind == "value":
                    operands.append(("v", t.text[1:]))
                elif t.kind == "number":
                    operands.append(("lit", number_value(t.text)))
                elif t.kind == "name" and t.text in ("true", "false"):
                    operands.append(("lit", t.text == "true"))
                else:
                    self.error("expected an operand", t)
                if self.accept(")"):
                    break
                self.expect(",")
        attrs = {}
        if self.accept("{"):
            while True:
                key = self.expect_kind("name", "an attribute name").text
                self.expect("=")
                attrs[key] = self.attrval()
                if self.accept("}"):
                    break
                self.expect(",")
        type_ = None
        if self.accept(":"):
            type_ = self.type_()
        return Stmt(v.text[1:], op.text, operands, attrs, type_, v.line)

    def attrval(self):
        t = self.next()
        if t.kind == "number":
            return number_value(t.text)
        if t.kind == "string":
            return bytes(t.text[1:-1], "utf-8").decode("unicode_escape")
        if t.kind == "name" and t.text in ("true", "false"):
            return t.text == "true"
        if t.kind == "name" and t.text in DTYPES:
            return ("dtype", t.text)
        if t.text == "[":
            items = []
            if not self.accept("]"):
                while True:
                    items.append(self.attrval())
                    if self.accept("]"):
                        break
                    self.expect(",")
            return items
        self.error("expected an attribute value", t)


def parse_ir(text, filename="<ir>", func=None):
    """The function of the module that fusec would pick: `func`, else @main, else the first."""
    funcs = Parser(text, filename).module()
    want = func or ("main" if any(f.name == "main" for f in funcs) else funcs[0].name)
    for f in funcs:
        if f.name == want:
            return f
    raise IRError("%s: no function @%s" % (filename, want))


# ---- text rewrites: small shapes and one precision up ------------------------

def small_map(text):
    """The `# small: A->a, B->b` map of a bench graph ({} if it has none)."""
    m = re.search(r"^#\s*small:\s*(.+)$", text, re.M)
    if not m:
        return {}
    pairs = {}
    for item in m.group(1).split(","):
        a, b = item.split("->")
        pairs[a.strip()] = b.strip()
    return pairs


def shrink(text):
    """Rewrite every whole integer token of the small map (never a digit of a float)."""
    pairs = small_map(text)
    if not pairs:
        return text
    return re.sub(r"(?<![\w.])(?<![eE][-+])(\d+)(?![\w.])", lambda m: pairs.get(m.group(1), m.group(1)), text)


_PROMOTE = {"f32": "f64", "bf16": "f32", "f16": "f32"}


def promote(text):
    """The same graph one precision up: f32 -> f64, bf16 and f16 -> f32."""
    return re.sub(r"\b(f32|bf16|f16)\b", lambda m: _PROMOTE[m.group(1)], text)


# =============================================================================
# Translation to PyTorch
# =============================================================================
#
# The translator writes Python source, one assignment per IR statement, and
# execs it: the function is then plain straight-line torch code, which is what
# eager is timed on and what torch.compile traces.  It needs each value's
# dtype (a literal operand takes the dtype of the op's tensor operand, spec
# 5.2); the rules below are the ones of ir/infer.c that decide the dtype.

UNARY_TORCH = {
    "neg": "torch.neg", "abs": "torch.abs", "sign": "torch.sign", "exp": "torch.exp",
    "exp2": "torch.exp2", "log": "torch.log", "log2": "torch.log2", "log1p": "torch.log1p",
    "expm1": "torch.expm1", "sqrt": "torch.sqrt", "rsqrt": "torch.rsqrt",
    "reciprocal": "torch.reciprocal", "sin": "torch.sin", "cos": "torch.cos", "tan": "torch.tan",
    "tanh": "torch.tanh", "sigmoid": "torch.sigmoid", "erf": "torch.erf", "relu": "torch.relu",
    "silu": "F.silu", "floor": "torch.floor", "ceil": "torch.ceil", "round": "torch.round",
    "not": "torch.logical_not", "isnan": "torch.isnan", "isinf": "torch.isinf",
}
BINARY_OPERATOR = {"add": "+", "sub": "-", "mul": "*", "eq": "==", "ne": "!=", "lt": "<",
                   "le": "<=", "gt": ">", "ge": ">="}
COMPARE_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
# Ops whose presence makes a graph "with reductions" for the f32 tolerance.
REDUCING_OPS = {"sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "softmax",
                "log_softmax", "layer_norm", "rms_norm", "batch_norm", "matmul", "linear",
                "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "sdpa"}


def round_to(value, dt):
    """A Python number as the spec's literal of dtype dt (spec 5.2)."""
    if dt == "bool":
        return bool(value)
    if dt in INT_DTYPES:
        if isinstance(value, float):
            if math.isnan(value):
                return 0
            value = math.trunc(value) if math.isfinite(value) else 0
        bits = DTYPE_SIZE[dt] * 8
        v = int(value) & ((1 << bits) - 1)
        if dt != "u8" and v >= 1 << (bits - 1):
            v -= 1 << bits
        return v
    value = float(value)
    if dt == "f64" or not math.isfinite(value):
        return value
    if dt == "f32":
        return struct.unpack("f", struct.pack("f", value))[0] if abs(value) < 3.5e38 else \
            math.copysign(math.inf, value)
    import torch
    return float(torch.tensor(value, dtype=torch.float64).to(torch_dtype(dt)))


def torch_dtype(dt):
    import torch
    return {"f64": torch.float64, "f32": torch.float32, "f16": torch.float16,
            "bf16": torch.bfloat16, "i64": torch.int64, "i32": torch.int32,
            "i16": torch.int16, "i8": torch.int8, "u8": torch.uint8, "bool": torch.bool}[dt]


def dtype_of_torch(tdt):
    for name in DTYPES:
        if torch_dtype(name) == tdt:
            return name
    raise ValueError("no fusec dtype for %s" % tdt)


def py_lit(v):
    """Source text of a Python number (inf and nan are names in the namespace)."""
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


# Helpers the generated code calls, for ops that need more than one torch call.
HELPERS = r'''
def _dims(x, axes):
    return tuple(range(x.dim())) if axes is None else tuple(a % max(x.dim(), 1) for a in axes)

def _prod(x, axes, keepdim):
    dims = _dims(x, axes)
    if not dims:
        return torch.prod(x) if not keepdim else torch.prod(x).reshape([1] * x.dim())
    for d in sorted(dims, reverse=True):
        x = torch.prod(x, d, keepdim=keepdim)
    return x

def _arg(fn, x, axis, keepdim):
    if axis is None:
        r = fn(x.reshape(-1))
        return r.reshape([1] * x.dim()) if keepdim else r
    return fn(x, dim=axis, keepdim=keepdim)

def _var(x, axes, keepdim, correction):
    dims = _dims(x, axes)
    if TORCH2:
        return torch.var(x, dim=dims, correction=correction, keepdim=keepdim)
    n = 1
    for d in dims:
        n *= x.shape[d]
    m = torch.mean(x, dim=dims, keepdim=True)
    s = torch.sum((x - m) * (x - m), dim=dims, keepdim=keepdim)
    return s / max(0, n - correction)

def _squeeze(x, axes):
    if axes is None:
        return torch.squeeze(x)
    for d in sorted((a % x.dim() for a in axes), reverse=True):
        if x.shape[d] == 1:
            x = torch.squeeze(x, d)
    return x

def _slice(x, axis, start, end, step):
    axis %= x.dim()
    return x[(slice(None),) * axis + (slice(start, end, step),)]

def _pad(x, pads, value):
    k = len(pads) // 2
    tp = []
    for i in reversed(range(k)):
        tp += [pads[2 * i], pads[2 * i + 1]]
    return F.pad(x, tp, value=value)

def _iota(shape, axis, dtype):
    axis %= len(shape)
    view = [1] * len(shape)
    view[axis] = shape[axis]
    r = torch.arange(shape[axis], dtype=torch.int64, device=DEVICE).reshape(view)
    return r.to(dtype).expand(shape)

def _masked_fill(x, m, value):
    # torch's masked_fill keeps x's shape; use it when the mask broadcasts to x
    if m.dim() <= x.dim() and all(a == 1 or a == b for a, b in
                                  zip(reversed(tuple(m.shape)), reversed(tuple(x.shape)))):
        return x.masked_fill(m, value)
    return torch.where(m, torch.tensor(value, dtype=x.dtype, device=x.device), x)

def _layer_norm(x, w, b, axes, eps):
    k = len(axes)
    shape = tuple(x.shape[x.dim() - k:])
    if w is not None and tuple(w.shape) != shape:
        w = w.expand(shape)
    if b is not None and tuple(b.shape) != shape:
        b = b.expand(shape)
    return F.layer_norm(x, shape, w, b, eps)

def _rms_norm(x, w, axes, eps):
    k = len(axes)
    shape = tuple(x.shape[x.dim() - k:])
    if hasattr(F, "rms_norm"):
        if w is not None and tuple(w.shape) != shape:
            w = w.expand(shape)
        return F.rms_norm(x, shape, w, eps)
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    dims = tuple(range(x.dim() - k, x.dim()))
    y = xf * torch.rsqrt(torch.mean(xf * xf, dim=dims, keepdim=True) + eps)
    if w is not None:
        y = y * w.to(y.dtype)
    return y.to(x.dtype)

def _batch_norm(x, mean, var, w, b, eps):
    if x.device.type == "cpu" and x.dtype in (torch.float16, torch.bfloat16):
        # torch 1.13 on the CPU has no half kernels here: compute in f32, round once.
        y = F.batch_norm(x.float(), mean.float(), var.float(),
                         None if w is None else w.float(), None if b is None else b.float(),
                         False, 0.0, eps)
        return y.to(x.dtype)
    return F.batch_norm(x, mean, var, w, b, False, 0.0, eps)

def _sdpa(q, k, v, mask, is_causal, scale):
    if TORCH2 and not (is_causal and mask is not None):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                              scale=scale)
    dt = q.dtype
    hi = torch.float32 if dt in (torch.float16, torch.bfloat16) else dt
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    s = torch.matmul(q.to(hi), k.to(hi).transpose(-2, -1)) * scale
    if mask is not None:
        s = s.masked_fill(~mask, -inf) if mask.dtype == torch.bool else s + mask.to(hi)
    if is_causal:
        L, S = s.shape[-2], s.shape[-1]
        s = s.masked_fill(torch.ones(L, S, dtype=torch.bool, device=s.device).triu(1), -inf)
    p = torch.softmax(s, dim=-1)
    p = torch.where((s == -inf).all(dim=-1, keepdim=True), torch.zeros_like(p), p)
    return torch.matmul(p, v.to(hi)).to(dt)

def _check(v, name, dtype, shape):
    if v.dtype != dtype or tuple(v.shape) != shape:
        raise RuntimeError("translator: %%%s is %s%s, the IR says %s%s"
                           % (name, v.dtype, tuple(v.shape), dtype, shape))
    return v
'''


class Translation:
    """A graph as PyTorch: the source text, the function, and what it needs."""

    def __init__(self, func, source, fn, value_dtypes):
        self.func, self.source, self.fn, self.value_dtypes = func, source, fn, value_dtypes


def translate(func, device, checked=False):
    """Translate an IR function into a Python function of torch tensors (in parameter order)
    returning a tuple of the results.  checked=True adds a dtype/shape check of every value
    that has a type in the IR (parameters, annotated statements, results)."""
    import torch
    import torch.nn.functional as F

    names = {}      # IR value name -> Python identifier
    dts = {}        # IR value name -> dtype
    consts = {}     # namespace constants (constant op data)

    def ident(irname):
        base = "v_" + re.sub(r"[^A-Za-z0-9_]", "_", irname)
        cand, k = base, 1
        while cand in names.values():
            k += 1
            cand = "%s_%d" % (base, k)
        names[irname] = cand
        return cand

    lines = []
    params = []
    for pname, ptype in func.params:
        params.append(ident(pname))
        dts[pname] = ptype.dtype
        if checked:
            lines.append("    _check(%s, %r, torch.%s, %r)" % (
                names[pname], pname, str(torch_dtype(ptype.dtype)).split(".")[1], ptype.shape))

    for st in func.stmts:
        try:
            expr, dt = translate_stmt(st, names, dts, consts, device)
        except IRError:
            raise
        except Exception as e:  # a translator bug or an unsupported form: say where
            raise IRError("line %d: %s: cannot translate: %s" % (st.line, st.op, e))
        if st.type is not None and st.type.dtype != dt:
            raise IRError("line %d: %s: the translator infers %s, the IR says %s"
                          % (st.line, st.op, dt, st.type.dtype))
        if st.name in names:
            raise IRError("line %d: %%%s redefined" % (st.line, st.name))
        var = ident(st.name)
        dts[st.name] = dt
        lines.append("    %s = %s  # line %d: %s" % (var, expr, st.line, st.op))
        if checked and st.type is not None:
            lines.append("    _check(%s, %r, torch.%s, %r)" % (
                var, st.name, str(torch_dtype(dt)).split(".")[1], st.type.shape))
    outs = []
    if len(func.rets) != len(func.results):
        raise IRError("@%s returns %d values but declares %d"
                      % (func.name, len(func.rets), len(func.results)))
    for r, rtype in zip(func.rets, func.results):
        if r not in names:
            raise IRError("return of undefined %%%s" % r)
        outs.append(names[r])
        if checked:
            lines.append("    _check(%s, %r, torch.%s, %r)" % (
                names[r], r, str(torch_dtype(rtype.dtype)).split(".")[1], rtype.shape))
    src = "def graph_%s(%s):\n%s\n    return (%s,)\n" % (
        re.sub(r"\W", "_", func.name), ", ".join(params),
        "\n".join(lines) if lines else "    pass", ", ".join(outs))
    ns = {"torch": torch, "F": F, "math": math, "inf": math.inf, "nan": math.nan,
          "DEVICE": torch.device(device),
          "TORCH2": int(torch.__version__.split(".")[0]) >= 2}
    exec(compile(HELPERS, "<compare_torch helpers>", "exec"), ns)
    ns.update(consts)
    exec(compile(src, "<%s as torch>" % func.name, "exec"), ns)
    fn = ns["graph_" + re.sub(r"\W", "_", func.name)]
    return Translation(func, src, fn, dts)


def translate_stmt(st, names, dts, consts, device):
    """(Python expression, result dtype) of one statement."""
    op, a = st.op, st.attrs

    def tdt(dt):
        return "torch." + {"f64": "float64", "f32": "float32", "f16": "float16",
                           "bf16": "bfloat16", "i64": "int64", "i32": "int32",
                           "i16": "int16", "i8": "int8", "u8": "uint8", "bool": "bool"}[dt]

    def val(o):
        if o[0] != "v":
            raise IRError("line %d: %s: operand must be a value" % (st.line, op))
        if o[1] not in names:
            raise IRError("line %d: use of undefined %%%s" % (st.line, o[1]))
        return names[o[1]]

    ops = st.operands
    tensors = [o for o in ops if o[0] == "v"]
    for o in tensors:
        val(o)
    # the dtype a literal operand takes (spec 5.2; where: of operand 1 or 2)
    if op == "where":
        ref = [o for o in ops[1:] if o[0] == "v"]
    else:
        ref = [o for o in tensors if dts[o[1]] != "bool"] or tensors
    lit_dt = dts[ref[0][1]] if ref else None

    def arg(o):
        """An operand as a tensor expression, or a Python scalar for a literal."""
        if o[0] == "v":
            return val(o)
        if lit_dt is None:
            raise IRError("line %d: %s: only literal operands" % (st.line, op))
        return py_lit(round_to(o[1], lit_dt))

    def targ(o):
        """An operand as a tensor expression (a literal becomes a 0-d tensor)."""
        if o[0] == "v":
            return val(o)
        return "torch.tensor(%s, dtype=%s, device=DEVICE)" % (arg(o), tdt(lit_dt))

    def axes_attr(name="axes"):
        v = a.get(name)
        return None if v is None else [int(x) for x in v]

    dt0 = lit_dt
    if op in UNARY_TORCH:
        x = val(ops[0])
        dt = "bool" if op in ("isnan", "isinf") else dts[ops[0][1]]
        return "%s(%s)" % (UNARY_TORCH[op], x), dt
    if op == "gelu":
        return "F.gelu(%s, approximate=%r)" % (val(ops[0]), a.get("approximate", "none")), \
            dts[ops[0][1]]
    if op == "cast":
        to = a["to"][1]
        return "%s.to(%s)" % (val(ops[0]), tdt(to)), to
    if op == "clamp":
        x, dt = val(ops[0]), dts[ops[0][1]]
        lo = py_lit(round_to(a["min"], dt)) if "min" in a else "None"
        hi = py_lit(round_to(a["max"], dt)) if "max" in a else "None"
        return "torch.clamp(%s, min=%s, max=%s)" % (x, lo, hi), dt
    if op in BINARY_OPERATOR:
        dt = "bool" if op in COMPARE_OPS else dt0
        if op == "sub" and dt == "bool":
            raise IRError("sub of bool")
        return "(%s %s %s)" % (arg(ops[0]), BINARY_OPERATOR[op], arg(ops[1])), dt
    if op == "div":
        if dt0 in FLOAT_DTYPES:
            return "(%s / %s)" % (arg(ops[0]), arg(ops[1])), dt0
        return "torch.div(%s, %s, rounding_mode='trunc')" % (targ(ops[0]), arg(ops[1])), dt0
    if op == "pow":
        return "torch.pow(%s, %s)" % (targ(ops[0]), arg(ops[1])), dt0
    if op in ("maximum", "minimum", "remainder"):
        return "torch.%s(%s, %s)" % (op, targ(ops[0]), targ(ops[1])), dt0
    if op in ("and", "or", "xor"):
        fn = ("torch.logical_" if dt0 == "bool" else "torch.bitwise_") + op
        return "%s(%s, %s)" % (fn, targ(ops[0]), targ(ops[1])), dt0
    if op == "where":
        c = val(ops[0])
        x, y = ops[1], ops[2]
        if x[0] == "lit" and y[0] == "lit":
            raise IRError("where with two literal branches")
        # torch >= 2 takes Python scalars for either branch (no tensor per call)
        import torch
        two = int(torch.__version__.split(".")[0]) >= 2
        xs = arg(x) if two else targ(x)
        ys = arg(y) if two else targ(y)
        return "torch.where(%s, %s, %s)" % (c, xs, ys), dt0
    if op == "masked_fill":
        x = val(ops[0])
        dt = dts[ops[0][1]]
        return "_masked_fill(%s, %s, %s)" % (x, val(ops[1]), py_lit(round_to(a["value"], dt))), dt
    # reductions
    if op in ("sum", "mean", "prod", "max", "min"):
        x, dt = val(ops[0]), dts[ops[0][1]]
        axes, keep = axes_attr(), bool(a.get("keepdim", False))
        rdt = "i64" if op in ("sum", "prod") and dt not in FLOAT_DTYPES else dt
        if axes == []:  # reduce over nothing
            return ("%s.to(%s)" % (x, tdt(rdt)) if rdt != dt else x), rdt
        if op == "prod":
            return "_prod(%s, %r, %r)" % (x, axes, keep), rdt
        fn = {"sum": "torch.sum", "mean": "torch.mean", "max": "torch.amax",
              "min": "torch.amin"}[op]
        return "%s(%s, dim=_dims(%s, %r), keepdim=%r)" % (fn, x, x, axes, keep), rdt
    if op in ("argmax", "argmin"):
        x = val(ops[0])
        axis = a.get("axis")
        return "_arg(torch.%s, %s, %r, %r)" % (op, x, axis, bool(a.get("keepdim", False))), "i64"
    if op == "var":
        x = val(ops[0])
        return "_var(%s, %r, %r, %r)" % (x, axes_attr(), bool(a.get("keepdim", False)),
                                         int(a.get("correction", 1))), dts[ops[0][1]]
    # composites
    if op in ("softmax", "log_softmax"):
        return "torch.%s(%s, dim=%d)" % (op, val(ops[0]), int(a.get("axis", -1))), \
            dts[ops[0][1]]
    if op == "layer_norm":
        x = val(ops[0])
        w = val(ops[1]) if len(ops) > 1 else "None"
        b = val(ops[2]) if len(ops) > 2 else "None"
        return "_layer_norm(%s, %s, %s, %r, %r)" % (x, w, b, axes_attr() or [-1],
                                                   float(a.get("eps", 1e-5))), dts[ops[0][1]]
    if op == "rms_norm":
        x = val(ops[0])
        w = val(ops[1]) if len(ops) > 1 else "None"
        return "_rms_norm(%s, %s, %r, %r)" % (x, w, axes_attr() or [-1],
                                             float(a.get("eps", 1e-6))), dts[ops[0][1]]
    if op == "batch_norm":
        xs = [val(o) for o in ops] + ["None"] * (5 - len(ops))
        return "_batch_norm(%s, %s, %s, %s, %s, %r)" % (tuple(xs) + (float(a.get("eps", 1e-5)),)), \
            dts[ops[0][1]]
    # shape and data movement
    if op == "reshape":
        return "torch.reshape(%s, %r)" % (val(ops[0]), tuple(int(d) for d in a["shape"])), \
            dts[ops[0][1]]
    if op == "permute":
        return "%s.permute(%r)" % (val(ops[0]), tuple(int(d) for d in a["dims"])), dts[ops[0][1]]
    if op == "transpose":
        return "torch.transpose(%s, %d, %d)" % (val(ops[0]), int(a["dim0"]), int(a["dim1"])), \
            dts[ops[0][1]]
    if op == "expand":
        return "%s.expand(%r)" % (val(ops[0]), tuple(int(d) for d in a["shape"])), dts[ops[0][1]]
    if op == "squeeze":
        return "_squeeze(%s, %r)" % (val(ops[0]), axes_attr()), dts[ops[0][1]]
    if op == "unsqueeze":
        return "torch.unsqueeze(%s, %d)" % (val(ops[0]), int(a["axis"])), dts[ops[0][1]]
    if op == "slice":
        return "_slice(%s, %d, %d, %d, %d)" % (val(ops[0]), int(a["axis"]), int(a.get("start", 0)),
                                               int(a.get("end", 2**63 - 1)),
                                               int(a.get("step", 1))), dts[ops[0][1]]
    if op == "concat":
        return "torch.cat([%s], dim=%d)" % (", ".join(val(o) for o in ops), int(a["axis"])), \
            dts[ops[0][1]]
    if op == "pad":
        dt = dts[ops[0][1]]
        return "_pad(%s, %r, %s)" % (val(ops[0]), [int(p) for p in a["pads"]],
                                     py_lit(round_to(a.get("value", 0), dt))), dt
    if op == "index_select":
        return "torch.index_select(%s, %d, %s.long())" % (val(ops[0]), int(a["axis"]),
                                                          val(ops[1])), dts[ops[0][1]]
    if op == "embedding":
        return "F.embedding(%s.long(), %s)" % (val(ops[1]), val(ops[0])), dts[ops[0][1]]
    if op == "gather":
        return "torch.gather(%s, %d, %s.long())" % (val(ops[0]), int(a["axis"]), val(ops[1])), \
            dts[ops[0][1]]
    # creation
    if op in ("full", "iota", "constant"):
        if st.type is None:
            raise IRError("line %d: %s needs a result type" % (st.line, op))
        dt, shape = st.type.dtype, st.type.shape
        if op == "full":
            return "torch.full(%r, %s, dtype=%s, device=DEVICE)" % (
                shape, py_lit(round_to(a["value"], dt)), tdt(dt)), dt
        if op == "iota":
            return "_iota(%r, %d, %s)" % (shape, int(a["axis"]), tdt(dt)), dt
        import torch
        cname = "_C%d" % len(consts)
        data = [round_to(x, dt) for x in a["data"]]
        consts[cname] = torch.tensor(data, dtype=torch_dtype(dt), device=device).reshape(shape)
        return cname, dt
    if op in ("triu", "tril"):
        return "torch.%s(%s, diagonal=%d)" % (op, val(ops[0]), int(a.get("diagonal", 0))), \
            dts[ops[0][1]]
    # contractions and windows
    if op == "matmul":
        return "torch.matmul(%s, %s)" % (val(ops[0]), val(ops[1])), dts[ops[0][1]]
    if op == "linear":
        b = val(ops[2]) if len(ops) > 2 else "None"
        return "F.linear(%s, %s, %s)" % (val(ops[0]), val(ops[1]), b), dts[ops[0][1]]
    if op == "conv2d":
        b = val(ops[2]) if len(ops) > 2 else "None"
        return "F.conv2d(%s, %s, %s, stride=%r, padding=%r, dilation=%r, groups=%d)" % (
            val(ops[0]), val(ops[1]), b, tuple(a.get("stride", [1, 1])),
            tuple(a.get("padding", [0, 0])), tuple(a.get("dilation", [1, 1])),
            int(a.get("groups", 1))), dts[ops[0][1]]
    if op in ("max_pool2d", "avg_pool2d"):
        k = tuple(a["kernel"])
        s = tuple(a.get("stride", k))
        p = tuple(a.get("padding", [0, 0]))
        extra = ", count_include_pad=True" if op == "avg_pool2d" else ""
        return "F.%s(%s, %r, stride=%r, padding=%r%s)" % (op, val(ops[0]), k, s, p, extra), \
            dts[ops[0][1]]
    if op == "adaptive_avg_pool2d":
        return "F.adaptive_avg_pool2d(%s, %r)" % (val(ops[0]), tuple(a["output_size"])), \
            dts[ops[0][1]]
    if op == "sdpa":
        q, k, v = (val(o) for o in ops[:3])
        mask = val(ops[3]) if len(ops) > 3 else "None"
        scale = a.get("scale")
        return "_sdpa(%s, %s, %s, %s, %r, %r)" % (q, k, v, mask, bool(a.get("is_causal", False)),
                                                  None if scale is None else float(scale)), \
            dts[ops[0][1]]
    raise IRError("line %d: op '%s' is not known to the translator" % (st.line, op))


def graph_reduces(func):
    return any(st.op in REDUCING_OPS for st in func.stmts)


# =============================================================================
# Inputs, tolerances, comparison
# =============================================================================

def input_roles(func):
    """Parameter name -> (role, number): 'var' (a batch_norm variance), 'weight' (the
    weight of a linear or conv2d, with its fan-in) or 'index' (an index operand, with the
    size of the axis it selects from where a parameter fixes it)."""
    roles = {}
    ptype = dict(func.params)
    for st in func.stmts:
        o = st.operands
        if st.op in ("linear", "conv2d") and len(o) > 1 and o[1][0] == "v" and o[1][1] in ptype:
            fan_in = 1
            for d in ptype[o[1][1]].shape[1:]:
                fan_in *= d
            roles[o[1][1]] = ("weight", fan_in)
        if st.op == "batch_norm" and len(o) > 2 and o[2][0] == "v":
            roles[o[2][1]] = ("var", None)
        if st.op in ("index_select", "gather", "embedding") and len(o) > 1 and o[1][0] == "v":
            src = o[0][1] if o[0][0] == "v" else None
            bound = None
            if src in ptype:
                shape = ptype[src].shape
                axis = 0 if st.op == "embedding" else int(st.attrs.get("axis", 0)) % len(shape)
                bound = shape[axis]
            roles[o[1][1]] = ("index", bound)
    return roles


def make_inputs(func, device, seed):
    """Seeded random tensors of the parameter types, on device."""
    import torch
    roles = input_roles(func)
    out = []
    for i, (name, t) in enumerate(func.params):
        g = torch.Generator(device=device)
        g.manual_seed(seed * 1000003 + i)
        role, bound = roles.get(name, (None, None))
        if t.dtype in FLOAT_DTYPES:
            x = torch.randn(t.shape, generator=g, device=device, dtype=torch.float32)
            if role == "var":
                x = x.abs() + 0.5
            elif role == "weight":
                # as torch.nn initialises them: activations stay O(1) through the
                # block, as in a real model, instead of growing by sqrt(fan-in) per
                # layer until a bf16 softmax is one-hot and ill-conditioned
                x = x / math.sqrt(max(1, bound))
            x = x.to(torch_dtype(t.dtype))
        elif t.dtype == "bool":
            x = torch.rand(t.shape, generator=g, device=device) < 0.5
        else:
            hi = 4 if bound is None else max(1, min(4, bound))
            x = torch.randint(0, hi, t.shape, generator=g, device=device,
                              dtype=torch.int64).to(torch_dtype(t.dtype))
        out.append(x.contiguous())
    return out


SMALLEST_NORMAL = {"f64": 2.2250738585072014e-308, "f32": 1.1754943508222875e-38,
                   "bf16": 1.1754943508222875e-38, "f16": 6.103515625e-05}


def tolerance(dt, reductions):
    """(rtol, afloor) as tests/diff/compare.c has them."""
    if dt == "f64":
        return 1e-9, 1e-12
    if dt == "f32":
        return (1e-4, 1e-5) if reductions else (1e-5, 1e-6)
    if dt == "f16":
        return 1e-2, 1e-3
    if dt == "bf16":
        return 2e-2, 4e-3
    return 0.0, 0.0


def compare(got, ref, ref_hi, reductions, chunk=1 << 24):
    """None if got matches ref (see the file's comment), else a one-line reason."""
    import torch
    if tuple(got.shape) != tuple(ref.shape) or got.dtype != ref.dtype:
        return "got %s%s, expected %s%s" % (got.dtype, tuple(got.shape), ref.dtype,
                                           tuple(ref.shape))
    dt = dtype_of_torch(ref.dtype)
    g = got.reshape(-1)
    r = ref.reshape(-1)
    n = r.numel()
    if dt not in FLOAT_DTYPES:
        bad = (g.to(torch.int64) != r.to(torch.int64))
        nbad = int(bad.sum())
        if nbad:
            i = int(bad.nonzero()[0])
            return "%d of %d elements differ; first at %s: got %s, expected %s" % (
                nbad, n, unravel(i, ref.shape), g[i].item(), r[i].item())
        return None
    h = ref_hi.reshape(-1) if ref_hi is not None else None
    rtol, afloor = tolerance(dt, reductions)
    maxabs = 0.0
    for s in range(0, n, chunk):
        rc = r[s:s + chunk].double()
        fin = rc[torch.isfinite(rc)]
        if fin.numel():
            maxabs = max(maxabs, float(fin.abs().max()))
    atol = max(afloor * max(maxabs, 1.0), SMALLEST_NORMAL[dt])
    nbad, first, max_err = 0, None, 0.0
    for s in range(0, n, chunk):
        gc = g[s:s + chunk].double()
        rc = r[s:s + chunk].double()
        gn, rn = torch.isnan(gc), torch.isnan(rc)
        fin = torch.isfinite(gc) & torch.isfinite(rc)
        # NaN in the same places; an infinity must be the same infinity
        bad = (gn != rn) | (~fin & ~gn & ~rn & (gc != rc))
        err = torch.where(fin, (gc - rc).abs(), torch.zeros_like(gc))
        bound = torch.clamp(rtol * rc.abs(), min=atol)
        if h is not None:
            hc = h[s:s + chunk].double()
            slack = torch.where(torch.isfinite(hc) & fin, (rc - hc).abs(), torch.zeros_like(rc))
            bound = bound + 2 * slack
        bad |= fin & (err > bound)
        k = int(bad.sum())
        if fin.any():
            max_err = max(max_err, float(err.max()))
        if k and first is None:
            first = s + int(bad.nonzero()[0])
        nbad += k
    if nbad:
        return ("%d of %d elements differ (max |err| %.3g, max |ref| %.3g); first at %s: "
                "got %r, expected %r" % (nbad, n, max_err, maxabs, unravel(first, ref.shape),
                                         float(g[first]), float(r[first])))
    return None


def unravel(i, shape):
    idx = []
    for d in reversed(tuple(shape)):
        idx.append(i % d if d else 0)
        i = i // d if d else 0
    return "[%s]" % ", ".join(str(x) for x in reversed(idx))


# =============================================================================
# fusec through ctypes
# =============================================================================

class FusecTensor(ctypes.Structure):
    # include/fusec.h: typedef struct fusec_tensor { fusec_dtype dtype; int rank;
    #                  int64_t shape[FUSEC_MAX_RANK]; void *data; } fusec_tensor;
    _fields_ = [("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                ("shape", ctypes.c_int64 * 8), ("data", ctypes.c_void_p)]


assert ctypes.sizeof(FusecTensor) == 80 and FusecTensor.data.offset == 72, \
    "fusec_tensor mirror has the wrong layout"

BACKENDS = {"interp": 0, "cpu": 1, "cuda": 2, "plan": 3}


class FusecError(Exception):
    pass


class Fusec:
    """libfusec.so through ctypes: parse, compile, run (host or device memory)."""

    def __init__(self, path):
        if not os.path.exists(path):
            raise FusecError("%s not found (build fusec first)" % path)
        lib = self.lib = ctypes.CDLL(path)
        P, I, VP = ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p
        PVP = ctypes.POINTER(ctypes.c_void_p)
        PT = ctypes.POINTER(FusecTensor)

        def sig(name, res, *args):
            f = getattr(lib, name)
            f.restype, f.argtypes = res, list(args)

        sig("fusec_version", P)
        sig("fusec_status_string", P, I)
        sig("fusec_dtype_name", P, I)
        sig("fusec_dtype_size", ctypes.c_size_t, I)
        sig("fusec_free", None, VP)
        sig("fusec_graph_parse_file", I, P, P, PVP, PVP)
        sig("fusec_graph_parse", I, P, ctypes.c_size_t, P, P, PVP, PVP)
        sig("fusec_graph_destroy", None, VP)
        sig("fusec_graph_num_inputs", I, VP)
        sig("fusec_graph_num_outputs", I, VP)
        sig("fusec_graph_input_info", I, VP, I, ctypes.POINTER(P), PT)
        sig("fusec_graph_output_info", I, VP, I, PT)
        sig("fusec_compile", I, VP, I, PVP, PVP)
        sig("fusec_module_destroy", None, VP)
        sig("fusec_module_describe", VP, VP)
        sig("fusec_module_run", I, VP, PT, I, PT, I, PVP)
        self.has_run_device = hasattr(lib, "fusec_module_run_device")
        if self.has_run_device:
            sig("fusec_module_run_device", I, VP, PT, I, PT, I, VP, PVP)
        # The ABI as the library sees it: dtype codes and sizes.
        for name, code in FUSEC_DTYPE_CODE.items():
            got = lib.fusec_dtype_name(code)
            if got is None or got.decode() != name or lib.fusec_dtype_size(code) != DTYPE_SIZE[name]:
                raise FusecError("libfusec's dtype %d is %r (size %d), expected %s (size %d)"
                                 % (code, got, lib.fusec_dtype_size(code), name, DTYPE_SIZE[name]))
        self.version = lib.fusec_version().decode()

    def _msg(self, status, err):
        text = ""
        if err.value:
            text = ctypes.string_at(err.value).decode("utf-8", "replace").strip()
            self.lib.fusec_free(err)
        s = self.lib.fusec_status_string(status)
        return "%s: %s" % (s.decode() if s else "status %d" % status, text)

    def parse(self, path, text=None):
        """A graph handle from a file (fusec_graph_parse_file) or from text."""
        g, err = ctypes.c_void_p(), ctypes.c_void_p()
        if text is None:
            st = self.lib.fusec_graph_parse_file(path.encode(), None, ctypes.byref(g),
                                                 ctypes.byref(err))
        else:
            b = text.encode()
            st = self.lib.fusec_graph_parse(b, len(b), path.encode(), None, ctypes.byref(g),
                                            ctypes.byref(err))
        if st != 0:
            raise FusecError("parse: " + self._msg(st, err))
        return g

    def check_signature(self, g, func):
        """The graph's inputs and outputs as libfusec reports them (through the mirrored
        fusec_tensor) must be the ones our parser read: a layout or parser mismatch shows."""
        lib = self.lib
        if lib.fusec_graph_num_inputs(g) != len(func.params) or \
                lib.fusec_graph_num_outputs(g) != len(func.results):
            raise FusecError("fusec sees %d inputs / %d outputs, the harness %d / %d"
                             % (lib.fusec_graph_num_inputs(g), lib.fusec_graph_num_outputs(g),
                                len(func.params), len(func.results)))
        for i, (pname, t) in enumerate(func.params):
            name, desc = ctypes.c_char_p(), FusecTensor()
            lib.fusec_graph_input_info(g, i, ctypes.byref(name), ctypes.byref(desc))
            shape = tuple(desc.shape[:desc.rank])
            if name.value.decode() != pname or desc.dtype != FUSEC_DTYPE_CODE[t.dtype] or \
                    shape != t.shape:
                raise FusecError("input %d: fusec says %s %s%s, the harness %s %s"
                                 % (i, name.value, DTYPES[desc.dtype], shape, pname, t))
        for i, t in enumerate(func.results):
            desc = FusecTensor()
            lib.fusec_graph_output_info(g, i, ctypes.byref(desc))
            if desc.dtype != FUSEC_DTYPE_CODE[t.dtype] or tuple(desc.shape[:desc.rank]) != t.shape:
                raise FusecError("output %d: fusec says %s%s, the harness %s"
                                 % (i, DTYPES[desc.dtype], tuple(desc.shape[:desc.rank]), t))

    def compile(self, g, backend):
        m, err = ctypes.c_void_p(), ctypes.c_void_p()
        st = self.lib.fusec_compile(g, BACKENDS[backend], ctypes.byref(m), ctypes.byref(err))
        if st != 0:
            raise FusecError("compile: " + self._msg(st, err))
        return m

    def describe(self, m):
        p = self.lib.fusec_module_describe(m)
        if not p:
            return ""
        s = ctypes.string_at(p).decode("utf-8", "replace")
        self.lib.fusec_free(p)
        return s

    @staticmethod
    def tensors(ts):
        """A fusec_tensor array over torch tensors' memory (contiguous, kept alive by caller)."""
        arr = (FusecTensor * max(1, len(ts)))()
        for i, t in enumerate(ts):
            assert t.is_contiguous()
            arr[i].dtype = FUSEC_DTYPE_CODE[dtype_of_torch(t.dtype)]
            arr[i].rank = t.dim()
            for k, d in enumerate(t.shape):
                arr[i].shape[k] = d
            arr[i].data = t.data_ptr()
        return arr

    def runner_device(self, m, inputs, outputs, stream):
        """A zero-argument function running m on device tensors; it raises on failure."""
        if not self.has_run_device:
            raise FusecError("libfusec has no fusec_module_run_device")
        ins, outs = self.tensors(inputs), self.tensors(outputs)
        n_in, n_out = len(inputs), len(outputs)
        fn = self.lib.fusec_module_run_device
        err = ctypes.c_void_p()
        errp = ctypes.byref(err)
        stream = ctypes.c_void_p(stream)

        def run():
            st = fn(m, ins, n_in, outs, n_out, stream, errp)
            if st != 0:
                raise FusecError("run: " + self._msg(st, err))
        run.keep = (ins, outs, inputs, outputs)
        return run

    def runner_host(self, m, inputs, outputs):
        """The same on host tensors through fusec_module_run (outputs copied into `outputs`)."""
        import torch
        ins = self.tensors(inputs)
        n_in, n_out = len(inputs), len(outputs)

        def run():
            outs = (FusecTensor * max(1, n_out))()
            err = ctypes.c_void_p()
            st = self.lib.fusec_module_run(m, ins, n_in, outs, n_out, ctypes.byref(err))
            if st != 0:
                raise FusecError("run: " + self._msg(st, err))
            for i, o in enumerate(outputs):
                t = outs[i]
                shape = tuple(t.shape[:t.rank])
                nbytes = DTYPE_SIZE[DTYPES[t.dtype]]
                for d in shape:
                    nbytes *= d
                if DTYPES[t.dtype] != dtype_of_torch(o.dtype) or shape != tuple(o.shape):
                    raise FusecError("output %d is %s%s, expected %s%s" % (
                        i, DTYPES[t.dtype], shape, o.dtype, tuple(o.shape)))
                if nbytes:
                    buf = (ctypes.c_uint8 * nbytes).from_address(t.data)
                    o.view(-1).view(torch.uint8).copy_(
                        torch.frombuffer(bytearray(buf), dtype=torch.uint8))
                self.lib.fusec_free(t.data)
        run.keep = (ins, inputs, outputs)
        return run


# =============================================================================
# Timing
# =============================================================================

def bench_fn(fn, device):
    """Median ms of fn: triton's do_bench on the GPU (the anchors' method), else a plain timer."""
    if device == "cuda":
        import triton.testing
        return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))
    fn()
    times = []
    t_end = time.perf_counter() + 0.2
    while len(times) < 3 or (time.perf_counter() < t_end and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def copy_bandwidth(device):
    """Device-to-device copy bandwidth in bytes/s: 2 x 1 GiB / median time of a copy."""
    import torch
    n = 1 << 30 if device == "cuda" else 1 << 26
    src = torch.empty(n, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    ms = bench_fn(lambda: dst.copy_(src), device)
    return 2 * n / (ms * 1e-3)


def sync(device):
    if device == "cuda":
        import torch
        torch.cuda.synchronize()


# =============================================================================
# The worker: one graph at a time, one JSON line each
# =============================================================================

def graph_label(path):
    base = os.path.basename(path)
    m = re.match(r"(.+?)\.(f64|f32|f16|bf16)\.ir$", base)
    return (m.group(1), m.group(2)) if m else (re.sub(r"\.ir$", "", base), None)


def measure_graph(path, args, fz, bw, emit_event):
    """Everything about one graph, as a row dict.  Raises only for a lost CUDA context."""
    import torch
    device = args.device
    name, dt_label = graph_label(path)
    row = {"file": os.path.relpath(path, ROOT), "graph": name, "dtype": dt_label,
           "status": "ok", "errors": [], "notes": []}

    def err(stage, e):
        # a problem of fusec, of the translation or of the check: the row is not "ok"
        row["errors"].append("%s: %s" % (stage, str(e).strip()))
        if row["status"] == "ok":
            row["status"] = "ERROR"

    def note(stage, e):
        # a problem on torch's side (torch.compile missing or failing): reported only
        row["notes"].append("%s: %s" % (stage, str(e).strip()))

    with open(path) as f:
        text = f.read()
    if args.small:
        text = shrink(text)
    try:
        func = parse_ir(text, path)
    except IRError as e:
        err("parse", e)
        return row
    row["dtype"] = row["dtype"] or (func.results[0].dtype if func.results else "?")
    row["bytes"] = sum(t.nbytes() for _, t in func.params) + sum(t.nbytes() for t in func.results)
    row["roof_ms"] = row["bytes"] / bw * 1e3 if bw else None
    reductions = graph_reduces(func)

    try:
        inputs = make_inputs(func, device, args.seed)
    except Exception as e:
        err("inputs", e)
        return row
    # eager, checked: the reference.  Without it fusec is still compiled and
    # timed, but not checked.
    fast = ref = None
    try:
        tr = translate(func, device, checked=True)
        fast = translate(func, device, checked=False)
        with torch.no_grad():
            ref = tr.fn(*inputs)
        sync(device)
    except Exception as e:
        err("torch eager", e)
        check_cuda_alive(device)

    # fusec: compile and one run
    fusec_run = None
    fz_out = None
    if fz is None:
        err("fusec", args.fusec_load_error)
    else:
        g = m = None
        try:
            g = fz.parse(path, text if args.small else None)
            fz.check_signature(g, func)
            t0 = time.perf_counter()
            m = fz.compile(g, args.backend)
            row["fusec_compile_s"] = time.perf_counter() - t0
            desc = fz.describe(m)
            km = re.search(r"(\d+) kernels?\b|\bkernels?: (\d+)", desc)
            if km:
                row["fusec_kernels"] = int(km.group(1) or km.group(2))
            fz_out = [torch.empty(t.shape, dtype=torch_dtype(t.dtype), device=device)
                      for t in func.results]
            if device == "cuda":
                fusec_run = fz.runner_device(m, inputs, fz_out, torch.cuda.current_stream().cuda_stream)
            else:
                fusec_run = fz.runner_host(m, inputs, fz_out)
            fusec_run()
            sync(device)
        except FusecError as e:
            err("fusec", e)
            fusec_run = None
        except RuntimeError as e:  # torch saw a CUDA error after fusec ran
            err("fusec", e)
            fusec_run = None
            check_cuda_alive(device)
        finally:
            if g is not None:
                fz.lib.fusec_graph_destroy(g)
        row["_module"] = m

    # correctness against eager (and eager one precision up)
    if fusec_run is not None and ref is not None:
        try:
            ref_hi = None
            if any(t.dtype in _PROMOTE for t in func.results):
                hi_func = parse_ir(promote(text), path)
                hi = translate(hi_func, device, checked=False)
                hi_inputs = [x.to(torch_dtype(_PROMOTE[p[1].dtype])) if p[1].dtype in _PROMOTE
                             else x for x, p in zip(inputs, func.params)]
                with torch.no_grad():
                    ref_hi = hi.fn(*hi_inputs)
                del hi_inputs
            problems = []
            for i, (got, want) in enumerate(zip(fz_out, ref)):
                why = compare(got, want, None if ref_hi is None else ref_hi[i], reductions)
                if why:
                    problems.append("output %d: %s" % (i, why))
            row["correct"] = not problems
            if problems:
                row["status"] = "FAIL"
                row["errors"].extend(problems)
            del ref_hi
        except Exception as e:
            err("check", e)
            row["correct"] = None
    del ref

    # timings
    emit_event({"event": "phase", "file": row["file"], "phase": "timing"})
    if fast is not None:
        try:
            with torch.no_grad():
                row["eager_ms"] = bench_fn(lambda: fast.fn(*inputs), device)
        except Exception as e:
            err("eager timing", e)
    if args.no_compile or fast is None:
        pass
    elif not hasattr(torch, "compile"):
        note("torch.compile", "not available in torch %s" % torch.__version__)
    else:
        try:
            cfn = torch.compile(fast.fn)
            t0 = time.perf_counter()
            with torch.no_grad():
                for _ in range(3):
                    cfn(*inputs)
            sync(device)
            row["compile_warmup_s"] = time.perf_counter() - t0
            with torch.no_grad():
                row["compile_ms"] = bench_fn(lambda: cfn(*inputs), device)
        except Exception as e:
            note("torch.compile", e)
        finally:
            cfn = None
            try:
                torch._dynamo.reset()
            except Exception:
                pass
    if fusec_run is not None:
        try:
            row["fusec_ms"] = bench_fn(fusec_run, device)
            sync(device)
        except Exception as e:
            err("fusec timing", e)
            check_cuda_alive(device)

    m = row.pop("_module", None)
    if m:
        fz.lib.fusec_module_destroy(m)
    for key in ("eager", "compile", "fusec"):
        ms = row.get(key + "_ms")
        if ms and row.get("roof_ms"):
            row[key + "_roof_pct"] = 100.0 * row["roof_ms"] / ms
    if row.get("compile_ms") and row.get("fusec_ms"):
        row["speedup_vs_compile"] = row["compile_ms"] / row["fusec_ms"]
    if row["errors"] and row["status"] == "ok":
        row["status"] = "ERROR"
    return row


class ContextLost(Exception):
    pass


def check_cuda_alive(device):
    if device != "cuda":
        return
    import torch
    try:
        torch.cuda.synchronize()
        torch.zeros(1, device="cuda").add_(1).item()
    except Exception as e:
        raise ContextLost(str(e))


def worker_main(args):
    import torch
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.allow_tf32
        torch.backends.cudnn.allow_tf32 = args.allow_tf32
    out = open(args.worker_out, "a")

    def emit(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    fz = None
    try:
        fz = Fusec(args.lib)
    except (FusecError, OSError) as e:
        args.fusec_load_error = str(e)
    bw = args.bandwidth
    if bw is None:
        bw = copy_bandwidth(args.device)
        emit({"event": "meta", "copy_bw": bw, "fusec_version": fz.version if fz else None,
              "run_device": fz.has_run_device if fz else None})
    crash_on = os.environ.get("FUSEC_BENCH_TEST_CRASH")  # the harness's own test hook
    for path in args.files:
        emit({"event": "start", "file": os.path.relpath(path, ROOT)})
        if crash_on and crash_on in path:
            os.kill(os.getpid(), signal.SIGSEGV)
        try:
            row = measure_graph(path, args, fz, bw, emit)
        except ContextLost as e:
            emit({"event": "lost", "file": os.path.relpath(path, ROOT), "error": str(e)})
            return 3
        except Exception:  # a bug of the harness: say so in the row, go on
            import traceback
            name, dt = graph_label(path)
            row = {"file": os.path.relpath(path, ROOT), "graph": name, "dtype": dt,
                   "status": "ERROR", "errors": ["harness: " + traceback.format_exc()]}
        emit({"event": "row", "row": row})
        if args.device == "cuda":
            torch.cuda.empty_cache()
    return 0


# =============================================================================
# The parent: workers, the table, the JSON
# =============================================================================

GRAPH_ORDER = ["gelu_bias_residual", "layer_norm", "rms_norm", "elementwise_chain",
               "causal_softmax", "padding_softmax", "softmax", "causal_attention",
               "gpt2_attention", "llama_mlp", "resnet_bottleneck"]
DTYPE_ORDER = {"f32": 0, "bf16": 1, "f16": 2, "f64": 3}


def sort_files(files):
    """anchors.md's order: memory-bound graphs f32 then bf16, then the blocks."""
    def key(p):
        name, dt = graph_label(p)
        rank = GRAPH_ORDER.index(name) if name in GRAPH_ORDER else len(GRAPH_ORDER)
        block = rank >= GRAPH_ORDER.index("gpt2_attention")
        return (block, DTYPE_ORDER.get(dt, 9) if not block else 0, rank, name,
                DTYPE_ORDER.get(dt, 9))
    return sorted(files, key=key)


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(rows):
    head = ("graph", "dtype", "eager ms", "compile ms", "compile %roof", "fusec ms",
            "fusec %roof", "vs compile", "check")
    lines = []
    for r in rows:
        check = {"ok": "ok", "FAIL": "FAIL", "ERROR": "ERROR", "SKIP": "not run"}.get(
            r.get("status"), "?")
        lines.append((r["graph"], r.get("dtype") or "", fmt(r.get("eager_ms"), ".3f"),
                      fmt(r.get("compile_ms"), ".3f"), fmt(r.get("compile_roof_pct"), ".0f"),
                      fmt(r.get("fusec_ms"), ".3f"), fmt(r.get("fusec_roof_pct"), ".0f"),
                      fmt(r.get("speedup_vs_compile"), ".2f") + ("x" if r.get(
                          "speedup_vs_compile") else ""), check))
    w = [max(len(head[i]), *(len(l[i]) for l in lines)) if lines else len(head[i])
         for i in range(len(head))]
    out = ["| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(head)) + " |",
           "|" + "|".join("-" * (x + 2) for x in w) + "|"]
    for l in lines:
        out.append("| " + " | ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i])
                                     for i, c in enumerate(l)) + " |")
    # one line per distinct message, naming the rows that had it
    by_msg = {}
    for r in rows:
        for e in r.get("errors", []) + r.get("notes", []):
            msg = e.splitlines()[0][:300] if e else ""
            by_msg.setdefault(msg, []).append("%s.%s" % (r["graph"], r.get("dtype")))
    notes = []
    for msg, who in by_msg.items():
        notes.append("%s: %s" % ("every graph" if len(who) == len(rows) > 1 else ", ".join(who),
                                 msg))
    return "\n".join(out), notes


def run_meta(args):
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
            "commit": os.environ.get("FUSEC_COMMIT") or git_commit(),
            "method": "triton.testing.do_bench(fn, warmup=25, rep=100, return_mode='median')"
                      if args.device == "cuda" else "median of a plain timer (CPU harness test)",
            "tf32": bool(args.allow_tf32), "small": bool(args.small),
            "fusec_backend": args.backend, "seed": args.seed}
    try:
        import torch
        meta["torch"] = torch.__version__
        if args.device == "cuda":
            meta["device"] = torch.cuda.get_device_name(0)
            meta["cuda"] = torch.version.cuda
        else:
            meta["device"] = "cpu"
    except Exception:
        pass
    try:
        import triton
        meta["triton"] = triton.__version__
    except Exception:
        pass
    try:
        meta["driver"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except Exception:
        meta["driver"] = None
    return meta


def git_commit():
    try:
        r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode == 0:
            dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "-uno"],
                                   capture_output=True, text=True, timeout=20).stdout.strip()
            return r.stdout.strip() + ("-dirty" if dirty else "")
    except Exception:
        pass
    return "unknown"


def worker_argv(args, files, out, bw):
    argv = [sys.executable, os.path.abspath(__file__), "--worker-out", out,
            "--lib", args.lib, "--device", args.device, "--backend", args.backend,
            "--seed", str(args.seed)]
    if bw is not None:
        argv += ["--bandwidth", repr(bw)]
    for flag in ("small", "no_compile", "allow_tf32"):
        if getattr(args, flag):
            argv.append("--" + flag.replace("_", "-"))
    return argv + files


def run_workers(args, files, on_row):
    """Run the graphs in worker processes, restarting after a crash, a lost context or a
    timeout; on_row(row) for each finished graph.  Returns (meta from the worker, rows)."""
    todo = list(files)
    rows, wmeta, bw = [], {}, None
    tmp = tempfile.mkdtemp(prefix="fusec-bench-")
    over_budget = "not run: the time budget (--deadline %s s) was spent" % args.deadline
    procs = []
    try:
        while todo:
            if args.deadline_at and time.time() > args.deadline_at:
                for p in todo:
                    name, dt = graph_label(p)
                    row = {"file": os.path.relpath(p, ROOT), "graph": name, "dtype": dt,
                           "status": "SKIP", "errors": ["harness: " + over_budget]}
                    rows.append(row)
                    on_row(row, bw)
                break
            out = os.path.join(tmp, "worker%d.jsonl" % len(rows))
            open(out, "w").close()
            # its own process group (not session), so that a kill takes its
            # children (inductor's compile workers) too
            proc = subprocess.Popen(worker_argv(args, todo, out, bw), preexec_fn=os.setpgrp)
            procs.append(proc)
            pos, current, started = 0, None, None
            finished = set()
            dead_reason = None
            while True:
                time.sleep(0.2)
                with open(out) as f:
                    f.seek(pos)
                    chunk = f.read()
                # only whole lines
                if chunk and not chunk.endswith("\n"):
                    chunk = chunk[:chunk.rfind("\n") + 1]
                pos += len(chunk.encode())
                for line in chunk.splitlines():
                    ev = json.loads(line)
                    kind = ev["event"]
                    if kind == "meta":
                        wmeta = ev
                        bw = ev["copy_bw"]
                    elif kind == "start":
                        current, started = ev["file"], time.time()
                    elif kind == "row":
                        rows.append(ev["row"])
                        finished.add(ev["row"]["file"])
                        on_row(ev["row"], bw)
                        current = None
                    elif kind == "lost":
                        dead_reason = "the CUDA context was lost: " + ev["error"]
                rc = proc.poll()
                if rc is not None:
                    if rc != 0 and dead_reason is None:
                        dead_reason = ("the worker died (signal %d)" % -rc if rc < 0
                                       else "the worker exited with status %d" % rc)
                    break
                if current and time.time() - started > args.graph_timeout:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    dead_reason = "timed out after %d s" % args.graph_timeout
                    break
                if args.deadline_at and time.time() > args.deadline_at:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    dead_reason = over_budget
                    break
            todo = [p for p in todo if os.path.relpath(p, ROOT) not in finished]
            if todo and dead_reason is None and current is None:
                dead_reason = "the worker stopped before this graph"
            if dead_reason == over_budget:
                current = None  # every graph left, the current one too, is "not run"
            if current is not None and todo:
                name, dt = graph_label(current)
                row = {"file": current, "graph": name, "dtype": dt, "status": "ERROR",
                       "errors": ["harness: %s" % dead_reason]}
                rows.append(row)
                on_row(row, bw)
                todo = [p for p in todo if os.path.relpath(p, ROOT) != current]
            elif todo and dead_reason:
                # died between graphs (or before the first): report and stop
                for p in todo:
                    name, dt = graph_label(p)
                    row = {"file": os.path.relpath(p, ROOT), "graph": name, "dtype": dt,
                           "status": "SKIP" if dead_reason == over_budget else "ERROR",
                           "errors": ["harness: %s" % dead_reason]}
                    rows.append(row)
                    on_row(row, bw)
                todo = []
    finally:
        for p in procs:  # never leave a worker behind, whatever stopped us
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return wmeta, rows


# =============================================================================
# Compile latency, in fresh processes
# =============================================================================

LATENCY_GRAPH = os.path.join(HERE, "graphs", "latency", "gelu_layer_norm.f32.ir")
LATENCY_FUSEC_ONLY = [os.path.join(ROOT, "examples", "gpt2_attention.ir")]


def latency_child(args):
    """One fresh-process measurement, printed as one JSON line on stdout."""
    t_start = time.perf_counter()
    r = {"what": args.latency_child, "graph": os.path.relpath(args.files[0], ROOT)}
    import torch
    r["import_torch_s"] = time.perf_counter() - t_start
    device = args.device
    with open(args.files[0]) as f:
        text = f.read()
    func = parse_ir(text, args.files[0])
    t0 = time.perf_counter()
    if device == "cuda":
        torch.cuda.init()
        torch.zeros(1, device="cuda").add_(1)
        torch.cuda.synchronize()
    r["cuda_context_s"] = time.perf_counter() - t0
    host = make_inputs(func, "cpu", args.seed)
    t0 = time.perf_counter()
    inputs = [x.to(device) for x in host]
    outputs = [torch.empty(t.shape, dtype=torch_dtype(t.dtype), device=device)
               for t in func.results]
    sync(device)
    r["input_transfer_s"] = time.perf_counter() - t0
    if args.latency_child == "fusec":
        t0 = time.perf_counter()
        fz = Fusec(args.lib)
        r["load_library_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        g = fz.parse(args.files[0])
        t1 = time.perf_counter()
        m = fz.compile(g, args.backend)
        t2 = time.perf_counter()
        if device == "cuda":
            fz.runner_device(m, inputs, outputs, torch.cuda.current_stream().cuda_stream)()
        else:
            fz.runner_host(m, inputs, outputs)()
        sync(device)
        t3 = time.perf_counter()
        r.update(parse_s=t1 - t0, compile_s=t2 - t1, first_run_s=t3 - t2,
                 total_s=r["load_library_s"] + t3 - t0)
        desc = fz.describe(m)
        km = re.search(r"(\d+ kernels?\b|\bkernels?: \d+).*", desc)
        if km:
            r["describe"] = km.group(0)[:200]
    else:
        tr = translate(func, device)
        t0 = time.perf_counter()
        cfn = torch.compile(tr.fn)
        with torch.no_grad():
            cfn(*inputs)
        sync(device)
        r["first_call_s"] = time.perf_counter() - t0
        r["total_s"] = r["first_call_s"]
    print("LATENCY " + json.dumps(r), flush=True)
    return 0


def measure_latency(args):
    """fusec (empty and warm cache) and torch.compile (empty and warm caches), each in a
    fresh process.  Returns a list of result dicts (an "error" key where one failed)."""
    results = []
    base = tempfile.mkdtemp(prefix="fusec-latency-")

    def child(what, graph, env_extra, label):
        env = dict(os.environ)
        env.update(env_extra)
        argv = [sys.executable, os.path.abspath(__file__), "--latency-child", what,
                "--lib", args.lib, "--device", args.device, "--backend", args.backend, graph]
        # a process group of its own, killed whole on a timeout or if we are stopped
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, preexec_fn=os.setpgrp)
        try:
            stdout, stderr = p.communicate(timeout=300)
            line = [l for l in stdout.splitlines() if l.startswith("LATENCY ")]
            if p.returncode == 0 and line:
                r = json.loads(line[-1][8:])
            else:
                r = {"what": what, "graph": os.path.relpath(graph, ROOT),
                     "error": (stderr.strip().splitlines() or ["status %d" % p.returncode])[-1]}
        except subprocess.TimeoutExpired:
            r = {"what": what, "graph": os.path.relpath(graph, ROOT), "error": "timed out"}
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        r["cache"] = label
        results.append(r)
        print("latency: %-8s %-5s %-40s %s" % (what, label, r["graph"],
              "%.3f s" % r["total_s"] if "total_s" in r else r.get("error")), flush=True)

    try:
        for graph in [LATENCY_GRAPH] + LATENCY_FUSEC_ONLY:
            cache = os.path.join(base, "fusec-" + os.path.basename(graph))
            os.makedirs(cache, mode=0o700)
            child("fusec", graph, {"FUSEC_CACHE_DIR": cache}, "empty")
            child("fusec", graph, {"FUSEC_CACHE_DIR": cache}, "warm")
        if not args.no_compile:
            env = {"TORCHINDUCTOR_CACHE_DIR": os.path.join(base, "inductor"),
                   "TRITON_CACHE_DIR": os.path.join(base, "triton")}
            child("compile", LATENCY_GRAPH, env, "empty")
            child("compile", LATENCY_GRAPH, env, "warm")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return results


def latency_table(results):
    head = ("what", "cache", "graph", "import", "CUDA context", "input transfer",
            "load lib + parse", "compile", "first run", "total")
    lines = []
    for r in results:
        def s(k):
            return "-" if r.get(k) is None else "%.1f ms" % (r[k] * 1e3)
        what = "fusec" if r["what"] == "fusec" else "torch.compile"
        if "error" in r:
            lines.append((what, r["cache"], r["graph"], "error: " + r["error"][:120],
                          "", "", "", "", "", ""))
            continue
        if r["what"] == "fusec":
            r["load_parse_s"] = r.get("load_library_s", 0) + r.get("parse_s", 0)
            lines.append((what, r["cache"], r["graph"], s("import_torch_s") + " (torch)",
                          s("cuda_context_s"), s("input_transfer_s"), s("load_parse_s"),
                          s("compile_s"), s("first_run_s"), s("total_s")))
        else:
            lines.append((what, r["cache"], r["graph"], s("import_torch_s"),
                          s("cuda_context_s"), s("input_transfer_s"), "-", "-",
                          s("first_call_s") + " (trace+compile+run)", s("total_s")))
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(l) + " |" for l in lines]
    return "\n".join(out)


def markdown(result):
    """The results in bench/RESULTS.md's layout, to paste there."""
    meta = result["meta"]
    t, notes = table(result["rows"])
    out = ["## Run of %s" % meta.get("date"), "",
           "| | |", "|---|---|",
           "| date | %s |" % meta.get("date"),
           "| device | %s |" % meta.get("device"),
           "| driver | %s (CUDA %s) |" % (meta.get("driver"), meta.get("cuda")),
           "| torch / triton | %s / %s |" % (meta.get("torch"), meta.get("triton")),
           "| fusec | %s, commit %s, backend %s |" % (meta.get("fusec_version"),
                                                    meta.get("commit"),
                                                    meta.get("fusec_backend")),
           "| copy bandwidth | %s GB/s |" % fmt(meta.get("copy_bw_GBps"), ".0f"),
           "| method | %s; TF32 %s |" % (meta.get("method"), "on" if meta.get("tf32") else "off"),
           "| command | `%s` |" % meta.get("command"), "",
           "### Throughput", "", t if result["rows"] else "(not run)", ""]
    if notes:
        out += ["Problems:", ""] + ["- " + n for n in notes] + [""]
    if result.get("latency"):
        out += ["### Compile latency (fresh processes)", "", latency_table(result["latency"]), ""]
    elif meta.get("latency_skipped"):
        out += ["Compile latency: skipped (%s)." % meta["latency_skipped"], ""]
    return "\n".join(out)


# =============================================================================
# CPU self-test of the translator against the reference interpreter
# =============================================================================

# Small graphs that use the ops the benchmark graphs do not, so that every
# branch of the translator is checked against fusec's interpreter.
SELFTEST_GRAPHS = r"""
func @unary(%x: f32[3, 5]) -> (f32[3, 5], f32[3, 5], f32[3, 5], f32[3, 5], f32[3, 5]) {
  %a = neg(%x)
  %b = exp2(%a)
  %c = log1p(%b)
  %d = expm1(%c)
  %e = cos(%x)
  %f = tan(%e)
  %g = erf(%f)
  %h = gelu(%g)
  %i = silu(%h)
  %j = relu(%x)
  %k = sign(%x)
  %l = floor(%x)
  %m = ceil(%x)
  %n = round(%x)
  %o = reciprocal(%m)
  %p = clamp(%x) {min = -0.5, max = 0.75}
  %q = log2(%b)
  %r = log(%b)
  return %i, %k, %o, %p, %q
}
func @binary(%x: f32[4, 6], %y: f32[6], %n: i32[4, 6], %m: i32[6]) -> (f32[4, 6], i32[4, 6], bool[4, 6], f32[4, 6], i32[4, 6]) {
  %a = div(%x, %y)
  %b = pow(%a, 2.0)
  %c = maximum(%b, %y)
  %d = minimum(%c, 1.5)
  %e = remainder(%x, %y)
  %f = add(%d, %e)
  %g = sub(1.0, %f)
  %h = mul(%n, 3)
  %i = add(%h, 1)
  %j = div(%i, 2)
  %k = remainder(%j, 3)
  %l = xor(%k, %m)
  %p = ge(%x, %y)
  %q = lt(%n, 2)
  %r = and(%p, %q)
  %s = or(%r, false)
  %t = isnan(%a)
  %u = not(%t)
  %v = and(%s, %u)
  %w = where(%v, %g, 0.0)
  %z = where(%v, -inf, %x)
  %cast = cast(%x) {to = i32}
  %cast2 = cast(%cast) {to = f32}
  %sum = add(%z, %cast2)
  %isinf = isinf(%sum)
  %mf = masked_fill(%sum, %isinf) {value = 7.0}
  return %w, %l, %v, %mf, %cast
}
func @reductions(%x: f32[3, 4, 5], %b: bool[3, 4, 5], %n: i32[3, 4, 5]) -> (f32[3], f32[3, 1, 5], f32[], i64[4], i64[3, 1, 5], f32[3, 5], i64[], f32[3, 4]) {
  %s = sum(%x) {axes = [1, 2]}
  %m = mean(%x) {axes = [1], keepdim = true}
  %p = prod(%x)
  %c = sum(%b) {axes = [0, -1]}
  %am = argmax(%x) {axis = 1, keepdim = true}
  %mx = max(%x) {axes = [1]}
  %mn = min(%x) {axes = [2]}
  %v = var(%x) {axes = [1], correction = 0}
  %w = add(%mx, %v)
  %ai = argmin(%x)
  %pi = prod(%n) {axes = [1, 2]}
  %q = add(%mn, %mn)
  return %s, %m, %p, %c, %am, %w, %ai, %q
}
func @composites(%x: f32[2, 3, 8], %w: f32[8], %b: f32[8], %w2: f32[3, 8]) -> (f32[2, 3, 8], f32[2, 3, 8], f32[2, 3, 8], f32[2, 3, 8]) {
  %a = softmax(%x) {axis = 1}
  %l = log_softmax(%x) {axis = -1}
  %n = layer_norm(%x, %w, %b) {axes = [-1], eps = 1e-5}
  %n2 = layer_norm(%x, %w2) {axes = [1, 2]}
  %r = rms_norm(%x, %w) {axes = [-1], eps = 1e-6}
  %r2 = rms_norm(%x)
  %s = add(%n2, %r2)
  return %a, %l, %n, %s
}
func @movement(%x: f32[2, 3, 4], %i: i64[5], %j: i32[2, 2, 4], %e: f32[6, 3], %k: i64[2, 3]) -> (f32[4, 2, 3], f32[2, 4, 5], f32[2, 1, 3, 6], f32[2, 3, 4], f32[2, 2, 4], f32[2, 3, 3], f32[2, 3, 4]) {
  %r = reshape(%x) {shape = [6, -1]}
  %r2 = reshape(%r) {shape = [2, 3, 4]}
  %p = permute(%r2) {dims = [2, 0, 1]}
  %t = transpose(%x) {dim0 = 0, dim1 = -1}
  %u = unsqueeze(%x) {axis = 1}
  %sq = squeeze(%u) {axes = [1, 2]}
  %sl = slice(%x) {axis = -1, start = 1, end = 100, step = 2}
  %sl2 = slice(%x) {axis = 1, start = -2}
  %c = concat(%sl, %sl, %sl) {axis = 2}
  %pd = pad(%x) {pads = [1, 0, -1, 2], value = 0.5}
  %ix = index_select(%x, %i) {axis = 1}
  %g = gather(%x, %j) {axis = 1}
  %em = embedding(%e, %k)
  %one = slice(%x) {axis = 1, start = 0, end = 1}
  %ex = expand(%one) {shape = [-1, 3, 4]}
  %pp = unsqueeze(%c) {axis = 1}
  return %p, %pd, %pp, %ex, %g, %em, %sq
}
func @creation(%x: f32[4, 4]) -> (f32[4, 4], i32[2, 3], f32[2, 2], bool[4, 4]) {
  %f = full() {value = 2.5} : f32[4, 4]
  %t = triu(%x) {diagonal = -1}
  %l = tril(%f) {diagonal = 1}
  %s = add(%t, %l)
  %io = iota() {axis = 1} : i32[2, 3]
  %c = constant() {data = [1.0, -2.0, 3.5, 0.25]} : f32[2, 2]
  %b = full() {value = 1} : bool[4, 4]
  %bt = triu(%b) {diagonal = 1}
  return %s, %io, %c, %bt
}
func @contractions(%a: f32[2, 3, 4], %b: f32[4, 5], %v: f32[4], %w: f32[6, 4], %bias: f32[6], %img: f32[2, 3, 9, 9], %k: f32[4, 3, 3, 3], %kb: f32[4], %dw: f32[3, 1, 3, 3]) -> (f32[2, 3, 5], f32[2, 3], f32[2, 3, 6], f32[2, 4, 4, 4], f32[2, 4, 2, 2], f32[2, 4, 4, 4], f32[2, 4, 3, 2], f32[2, 3, 5, 5]) {
  %m = matmul(%a, %b)
  %mv = matmul(%a, %v)
  %l = linear(%a, %w, %bias)
  %c = conv2d(%img, %k, %kb) {stride = [2, 2], padding = [0, 0]}
  %mp = max_pool2d(%c) {kernel = [2, 2]}
  %c2 = conv2d(%img, %k) {padding = [1, 1], dilation = [2, 2], stride = [2, 2]}
  %ap = avg_pool2d(%c2) {kernel = [3, 3], stride = [1, 1], padding = [1, 1]}
  %ad = adaptive_avg_pool2d(%c2) {output_size = [3, 2]}
  %g = conv2d(%img, %dw) {groups = 3, stride = [2, 2], padding = [1, 1]}
  return %m, %mv, %l, %c, %mp, %ap, %ad, %g
}
func @attention(%q: f32[2, 2, 5, 8], %k: f32[2, 2, 7, 8], %v: f32[2, 2, 7, 8], %m: bool[5, 7], %fm: f32[2, 1, 5, 7]) -> (f32[2, 2, 5, 8], f32[2, 2, 5, 8], f32[2, 2, 5, 8]) {
  %a = sdpa(%q, %k, %v) {is_causal = true}
  %b = sdpa(%q, %k, %v, %m) {scale = 0.5}
  %c = sdpa(%q, %k, %v, %fm)
  return %a, %b, %c
}
func @lowp(%x: bf16[4, 8], %y: f16[4, 8], %w: bf16[8]) -> (bf16[4, 8], f16[4, 8], bf16[4], bf16[4, 8]) {
  %a = mul(%x, 0.1)
  %b = exp(%a)
  %c = add(%b, %w)
  %d = mul(%y, %y)   # torch 1.13 has few f16 CPU kernels
  %e = mul(%d, 3.3)
  %s = sum(%c) {axes = [1]}
  %n = layer_norm(%x, %w)
  return %c, %e, %s, %n
}
"""


def save_npy(t, path_base):
    """A tensor as fusec reads it (spec 7): NAME.npy, or NAME.bf16.npy with '<u2' bits."""
    import numpy as np
    import torch
    t = t.contiguous().cpu()
    if t.dtype == torch.bfloat16:
        np.save(path_base + ".bf16.npy", t.view(torch.int16).numpy().view(np.uint16))
    else:
        np.save(path_base + ".npy", t.numpy())


def load_npy(path_base, dt):
    import numpy as np
    import torch
    if dt == "bf16":
        a = np.load(path_base + ".bf16.npy")
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.load(path_base + ".npy"))


def selftest_one(label, text, fusec_bin, backends, tmp, fz, verbose):
    """Translate `text`, run it in torch (CPU) and in fusec, compare.  Returns a list of
    failure messages (empty on success)."""
    import torch
    fails = []
    funcs = Parser(text, label).module()
    for func in funcs:
        tag = "%s @%s" % (label, func.name)
        try:
            tr = translate(func, "cpu", checked=True)
            inputs = make_inputs(func, "cpu", 1)
            with torch.no_grad():
                ref = tr.fn(*inputs)
            ref_hi = None
            if any(t.dtype in _PROMOTE for t in func.results):
                hi_text = promote(text)
                hi_func = [f for f in Parser(hi_text, label).module() if f.name == func.name][0]
                hi = translate(hi_func, "cpu", checked=True)
                hi_inputs = [x.to(torch_dtype(_PROMOTE[p[1].dtype])) if p[1].dtype in _PROMOTE
                             else x for x, p in zip(inputs, func.params)]
                with torch.no_grad():
                    ref_hi = hi.fn(*hi_inputs)
        except Exception as e:
            fails.append("%s: translator: %s" % (tag, e))
            continue
        d = os.path.join(tmp, re.sub(r"\W", "_", tag))
        os.makedirs(os.path.join(d, "in"), exist_ok=True)
        src = os.path.join(d, "graph.ir")
        with open(src, "w") as f:
            f.write(text)
        for (pname, _), x in zip(func.params, inputs):
            save_npy(x, os.path.join(d, "in", pname))
        reductions = graph_reduces(func)
        for be in backends:
            outd = os.path.join(d, "out-" + be)
            p = subprocess.run([fusec_bin, "run", src, "--func", func.name, "--inputs",
                                os.path.join(d, "in"), "--outputs", outd, "--backend", be],
                               capture_output=True, text=True, timeout=600)
            if p.returncode != 0:
                fails.append("%s: fusec run --backend %s: %s" % (tag, be, p.stderr.strip()))
                continue
            for i, t in enumerate(func.results):
                got = load_npy(os.path.join(outd, "result%d" % i), t.dtype)
                why = compare(got, ref[i], None if ref_hi is None else ref_hi[i], reductions)
                if why:
                    fails.append("%s: output %d vs fusec --backend %s: %s" % (tag, i, be, why))
        # the library through ctypes, host memory: the fusec_tensor mirror in use
        if fz is not None:
            g = m = None
            try:
                g = fz.parse(label, text) if len(funcs) == 1 else None
                if g is not None:
                    fz.check_signature(g, func)
                    m = fz.compile(g, "interp")
                    outs = [torch.empty(t.shape, dtype=torch_dtype(t.dtype)) for t in func.results]
                    fz.runner_host(m, inputs, outs)()
                    for i, o in enumerate(outs):
                        why = compare(o, ref[i], None if ref_hi is None else ref_hi[i], reductions)
                        if why:
                            fails.append("%s: output %d via ctypes: %s" % (tag, i, why))
            except FusecError as e:
                fails.append("%s: ctypes: %s" % (tag, e))
            finally:
                if m:
                    fz.lib.fusec_module_destroy(m)
                if g:
                    fz.lib.fusec_graph_destroy(g)
        if verbose:
            print("  %-45s %s" % (tag, "FAIL" if any(f.startswith(tag) for f in fails)
                                  else "ok"), flush=True)
    return fails


def selftest(args):
    fusec_bin = args.fusec
    if not os.path.exists(fusec_bin):
        print("selftest: %s not found (give --fusec PATH)" % fusec_bin)
        return 1
    backends = args.selftest_backends.split(",")
    fz = None
    try:
        fz = Fusec(args.lib)
    except (FusecError, OSError) as e:
        print("selftest: the ctypes part is skipped: %s" % e)
    failures = []
    checked = 0
    tmp = tempfile.mkdtemp(prefix="fusec-selftest-")
    try:
        # 1. the full-size graphs are valid for fusec
        files = args.files or sort_files(glob.glob(os.path.join(HERE, "graphs", "*.ir")) +
                                         glob.glob(os.path.join(HERE, "graphs", "latency", "*.ir")))
        for path in files:
            p = subprocess.run([fusec_bin, "check", path], capture_output=True, text=True)
            if p.returncode != 0:
                failures.append("%s: fusec check: %s" % (path, p.stderr.strip()))
            with open(path) as f:
                full = f.read()
            try:
                parse_ir(full, path)
            except IRError as e:
                failures.append("%s: harness parser: %s" % (path, e))
        # 2. each graph, shrunk, against the interpreter; examples and the op set as they are
        cases = []
        for path in files:
            with open(path) as f:
                full = f.read()
            if not small_map(full) and not args.files:
                failures.append("%s: no '# small:' line" % path)
            cases.append((os.path.relpath(path, ROOT), shrink(full)))
        if not args.files:
            for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.ir"))):
                with open(path) as f:
                    cases.append((os.path.relpath(path, ROOT), f.read()))
            cases.append(("selftest-ops", SELFTEST_GRAPHS))
        for label, text in cases:
            fails = selftest_one(label, text, fusec_bin, backends, tmp, fz, args.verbose)
            checked += 1
            failures += fails
            if not args.verbose:
                print("  %-45s %s" % (label, "FAIL" if fails else "ok"), flush=True)
        # 3. the harness's own pieces
        failures += selftest_units()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL: " + f)
    print("selftest: %d graph files, %d failures" % (checked, len(failures)))
    return 1 if failures else 0


def selftest_units():
    """Checks of the parser, the rewrites and compare() that need no fusec."""
    import torch
    fails = []

    def expect(cond, what):
        if not cond:
            fails.append("unit: " + what)

    f = parse_ir('func @f(%x: f32[2, 3]) -> f32[2, 3] {\n  %y = mul(%x, -inf) # c\n'
                 '  %z = add(%y, 1e-5)\n  return %z\n}\n')
    expect(f.stmts[0].operands[1] == ("lit", -math.inf), "-inf literal")
    expect(f.stmts[1].operands[1] == ("lit", 1e-5), "1e-5 literal")
    expect(shrink("# small: 16384->16, 4096->64\nf32[16384, 4096] 0.4096 4096.0 1e-4096 %a4096")
           == "# small: 16->16, 64->64\nf32[16, 64] 0.4096 4096.0 1e-4096 %a4096",
           "shrink rewrites whole integer tokens only")
    expect(promote("f32[2] bf16[3] f16[1] i32[4] {to = bf16}") ==
           "f64[2] f32[3] f32[1] i32[4] {to = f32}", "promote")
    expect(round_to(0.1, "bf16") == 0.10009765625, "bf16 rounding of a literal")
    expect(round_to(300.7, "i8") == 44 and round_to(-1.5, "u8") == 255, "integer literals wrap")
    a = torch.tensor([1.0, float("nan"), float("inf"), 0.0])
    expect(compare(a.clone(), a, None, False) is None, "compare equal")
    b = a.clone()
    b[3] = 1e-3
    expect(compare(b, a, None, False) is not None, "compare catches an error")
    expect(compare(b, a, torch.tensor([1.0, 0.0, 0.0, 1e-3], dtype=torch.float64), False) is None,
           "compare widens by |ref - ref_hi|")
    c = a.clone()
    c[1] = 0.0
    expect(compare(c, a, None, False) is not None, "compare catches a lost NaN")
    d = a.clone()
    d[2] = -math.inf
    expect(compare(d, a, None, False) is not None, "compare catches a wrong infinity")
    expect(compare(torch.tensor([1, 2]), torch.tensor([1, 3]), None, False) is not None,
           "compare integers exactly")
    # the checked-in graphs are what their templates say
    sys.path.insert(0, os.path.join(HERE, "graphs"))
    try:
        import generate
        for fname, text in generate.render().items():
            path = os.path.join(HERE, "graphs", fname)
            expect(os.path.exists(path) and open(path).read() == text,
                   "%s differs from bench/graphs/generate.py's template" % fname)
    finally:
        sys.path.pop(0)
    expect(sort_files(["x/gpt2_attention.f32.ir", "x/layer_norm.bf16.ir", "x/layer_norm.f32.ir",
                       "x/gelu_bias_residual.bf16.ir"]) ==
           ["x/layer_norm.f32.ir", "x/gelu_bias_residual.bf16.ir", "x/layer_norm.bf16.ir",
            "x/gpt2_attention.f32.ir"], "table order")
    return fails


# =============================================================================
# main
# =============================================================================

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help=".ir graphs (default: bench/graphs/*.ir)")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--markdown", help="write the tables as Markdown to this file "
                    "(the layout of bench/RESULTS.md)")
    ap.add_argument("--deadline", type=float,
                    help="seconds the whole run may take: graphs not started by then are "
                         "reported as not run, and the latency runs need 90 s of it")
    ap.add_argument("--lib", default=os.environ.get("FUSEC_LIB",
                                                    os.path.join(ROOT, "build", "lib", "libfusec.so")),
                    help="libfusec.so (default build/lib/libfusec.so, or $FUSEC_LIB)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu: run the harness without a GPU (a test of the harness)")
    ap.add_argument("--backend", default=None, choices=sorted(BACKENDS),
                    help="fusec backend (default cuda; interp with --device cpu)")
    ap.add_argument("--small", action="store_true",
                    help="shrink every graph by its '# small:' line (a quick run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--no-latency", action="store_true", help="skip the compile-latency runs")
    ap.add_argument("--latency-only", action="store_true",
                    help="only the compile-latency runs (no graphs)")
    ap.add_argument("--allow-tf32", action="store_true",
                    help="let torch use TF32 for f32 matmul/conv (default: full f32)")
    ap.add_argument("--graph-timeout", type=int, default=240,
                    help="seconds one graph may take before its worker is killed")
    ap.add_argument("--show-torch", action="store_true",
                    help="print the PyTorch translation of each file and exit")
    ap.add_argument("--selftest", action="store_true",
                    help="CPU self-test of the translator against fusec's interpreter")
    ap.add_argument("--fusec", default=os.path.join(ROOT, "build", "bin", "fusec"),
                    help="the fusec tool, for --selftest")
    ap.add_argument("--selftest-backends", default="interp,plan")
    ap.add_argument("-v", "--verbose", action="store_true")
    # internal: the worker and the latency children
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--bandwidth", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--latency-child", choices=["fusec", "compile"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.backend is None:
        args.backend = "cuda" if args.device == "cuda" else "interp"
    args.fusec_load_error = None
    args.deadline_at = time.time() + args.deadline if args.deadline else None
    args.files = [os.path.abspath(f) for f in args.files]

    if args.selftest:
        return selftest(args)
    if args.latency_child:
        return latency_child(args)
    if args.worker_out:
        return worker_main(args)
    if args.show_torch:
        for path in args.files:
            with open(path) as f:
                text = f.read()
            print(translate(parse_ir(shrink(text) if args.small else text, path),
                            "cpu").source)
        return 0

    files = args.files or sort_files(glob.glob(os.path.join(HERE, "graphs", "*.ir")))
    if not files:
        print("no graphs", file=sys.stderr)
        return 2
    meta = run_meta(args)
    result = {"meta": meta, "rows": [], "latency": [], "complete": False}

    def write_json():
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            tmp = args.json + ".tmp"
            with open(tmp, "w") as f:
                json.dump(result, f, indent=1)
            os.replace(tmp, args.json)

    def on_row(row, bw):
        meta["copy_bw_GBps"] = bw / 1e9 if bw else None
        result["rows"].append(row)
        t, notes = table([row])
        print(t.splitlines()[-1] + ("   " + notes[0] if notes else ""), flush=True)
        write_json()

    # SIGTERM (a tool's time limit) ends us through the finally blocks, which
    # kill the worker and remove temporary folders
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.latency_only:
        print("fusec benchmark: %d graphs on %s, fusec backend %s" % (
            len(files), meta.get("device"), args.backend), flush=True)
        wmeta, _ = run_workers(args, files, on_row)
        meta["fusec_version"] = wmeta.get("fusec_version")
        meta["fusec_run_device"] = wmeta.get("run_device")
    if args.no_latency:
        pass
    elif args.deadline_at and args.deadline_at - time.time() < 90:
        meta["latency_skipped"] = "less than 90 s of the time budget (--deadline) was left"
        print("latency: skipped, " + meta["latency_skipped"])
    else:
        result["latency"] = measure_latency(args)
    result["complete"] = True
    write_json()
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(result))

    t, notes = table(result["rows"])
    print()
    print("device %s, driver %s, torch %s, triton %s, copy bandwidth %s GB/s, commit %s" % (
        meta.get("device"), meta.get("driver"), meta.get("torch"), meta.get("triton"),
        fmt(meta.get("copy_bw_GBps"), ".0f"), meta.get("commit")))
    if result["rows"]:
        print(t)
    if notes:
        print("\nproblems:")
        for n in notes:
            print("  " + n)
    if result["latency"]:
        print("\ncompile latency (fresh processes):")
        print(latency_table(result["latency"]))
    bad = [r for r in result["rows"] if r["status"] in ("FAIL", "ERROR")]
    skipped = [r for r in result["rows"] if r["status"] == "SKIP"]
    if bad or skipped:
        print("\n%d of %d graphs FAILED or had errors, %d not run"
              % (len(bad), len(result["rows"]), len(skipped)))
    return 1 if bad or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
