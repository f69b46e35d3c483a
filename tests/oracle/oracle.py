#!/usr/bin/python3
"""
oracle.py - the reference interpreter checked op by op against PyTorch (CPU).

    /usr/bin/python3 tests/oracle/oracle.py --fusec PATH/TO/fusec
        [--filter OP[,OP...]] [--keep DIR] [--jobs N] [--no-run] [-v]

The ~70 ops of spec section 6 get about 2200 small cases between them.  A case
is one `.ir` file holding `func @main` with one statement (the op under test,
literal operands included), its inputs as `.npy` files, and one or more
PyTorch references.  The script writes the case, runs

    fusec run case.ir --inputs in --outputs out --backend interp

reads `out/result0.npy` (`result0.bf16.npy` for bf16) and compares.  Cases
that must fail (an index out of range, integer division by zero, a max over
an empty axis) expect exit status 1, a message naming the op, and no result.

How cases are made
------------------
Each op has a generator below (registered with @gen) that walks the op's
accepted dtypes (ir/ops.def and the infer rules in ir/infer.c), a rotating
list of shapes (rank 0, size-0 and size-1 dims included), broadcasting
operand pairs, negative axes, keepdim, the attribute variants, and a
"special" variant whose float inputs have NaN, +-inf, -0.0 and huge and tiny
(subnormal) magnitudes mixed in.  Every op has its own RNG seeded from its
name, so --filter never changes what a case contains.

How references are made
-----------------------
A reference is the torch function applied to the same inputs, in the case's
dtype (literal operands become 0-d tensors of the dtype the spec gives them,
section 5.2).  Floating point gets more than one acceptable reference, and a
case passes when it matches any of them within tolerance:

  * f64: torch in f64 only.
  * f32: torch in f32, and torch in f64 rounded to f32.  The interpreter
    computes in f64 internally (f32 reductions, matmul and conv accumulate in
    f64 by decision), which is the more exact of the two; torch's own f32
    kernels are less exact in places (gelu's tail cancels, a float sum of
    1e30, -1e30, 1 loses the 1, an f32 accumulator overflows where f64's
    does not).  Either answer is correct, so either is accepted.
  * f16 / bf16: torch in f32 rounded once to the storage dtype (what spec 5.2
    prescribes: "compute in f32 and round the result") and torch in f64
    rounded; for elementwise ops also torch's own CPU kernel in that dtype,
    where torch 1.13 has one.  It lacks f16 CPU kernels for ceil, clamp, cos,
    erf, exp, expm1, floor, gelu, log, log1p, log2, relu, round, rsqrt,
    sigmoid, silu, sin, sqrt, tan, tanh and max_pool2d (also for softmax,
    log_softmax, layer_norm, batch_norm, prod (and bf16 prod), matmul, linear,
    conv2d and the pools); there the f32-computed, rounded reference stands
    in, and `-v` lists the ops that fell back in a run.  torch's own f16/bf16
    kernels for reductions, norms, softmax, matmul and conv are not used as
    references: they round intermediates to the storage dtype (bf16
    layer_norm is off by tens of ulps on a row with a large mean), where the spec
    accumulates in f32.  Composite references written out here (rms_norm,
    sdpa) are meaningful only through the f32 path for the same reason.
  * `also`: a few cases list a further acceptable result (see the f64 ->
    f16/bf16 cast just above a tie below).

Tolerances (issue 2)
--------------------
  * integers and bool: exact.
  * NaN at exactly the same places; inf at the same places with the same sign.
  * data movement (reshape, permute, transpose, expand, squeeze, unsqueeze,
    slice, concat, pad, index_select, embedding, gather, triu, tril, where,
    masked_fill, full, iota, constant, and cast to a float dtype): bit-exact
    values, including the sign of zero.  Ops that compute but are exact in IEEE
    (neg, abs, sign, relu, clamp, floor, ceil, round, max, min, maximum,
    minimum, max_pool2d): exact values, sign of zero not checked.
  * f64: relative 1e-12.  f32: relative 1e-6 for elementwise ops, 1e-5 for
    reductions, matmul, linear, conv, pools, norms, softmax and sdpa
    ("red" below).  The absolute floor:
      - elementwise: 1e-300 (f64) / 1e-37 (f32), i.e. below the smallest
        normal number, where a relative test is meaningless because the
        result has fewer significant bits; otherwise torch and the
        interpreter both compute elementwise functions to about one ulp, so
        no absolute slack is needed.  Where an op's formula cancels
        (gelu: x * (1 + erf(..)) / 2; remainder: a - b * floor(a / b)) the
        floor is rtol * the magnitude that cancelled (|x|, max(|a|, |b|)).
      - red: rtol * the magnitude of the terms: the same op on |inputs|
        (sum(|x|), |a| @ |b|, conv(|x|, |w|), sum(x^2) / (n - correction))
        where that is defined, else rtol * max|ref| over the output (softmax,
        norms, sdpa: outputs are O(1) combinations of the row).  Rounding
        errors of a sum are bounded by eps * sum|x|, not eps * |sum x|.
  * f16 / bf16: within one ulp of the storage dtype at the reference value,
    plus, for ops with a magnitude scale as above, a few f32 ulps of that
    scale (HALF_EXTRA: the f32 computation's own error before the final
    rounding can move the result across a rounding boundary).

Where fusec deliberately differs from torch 1.13 (each follows the spec or
the team decisions, and the reference is written to match):
  * div on integers truncates toward zero (torch.div(.., rounding_mode=
    'trunc')); torch's plain div on integers returns floats.
  * sdpa: a query row whose keys are all masked gives zeros (PyTorch >= 2.5,
    `_safe_softmax`); torch 1.13 has no scaled_dot_product_attention, so the
    reference is written out: softmax(q k^T * scale + mask) v.
  * rms_norm: torch 1.13 has none; reference x * rsqrt(mean(x^2) + eps) * w.
  * literal operands are 0-d tensors of the operand's dtype (spec 5.2), so a
    literal in an f16 op is rounded to f16 first; torch would keep a Python
    scalar at higher precision.  The references pass 0-d tensors.
  * and / or / xor on integers are bitwise (torch.bitwise_*); on bool logical.
  * sum / prod of integers and bool give i64, as torch does.
  * masked_fill broadcasts the mask and x both ways (spec: = where(mask, value,
    x)); torch.masked_fill only broadcasts the mask.  Reference: torch.where.
  * avg_pool2d counts padding in the divisor (torch's default,
    count_include_pad=True); ceil_mode is false.
  * full with a value its float dtype cannot hold (1e5 in f16) gives inf by
    rounding; torch.full refuses it, so the reference goes through f64.
  * cast f64 -> f16 / bf16: torch converts through f32 and so rounds twice
    (1 + 2^-11 + 2^-40 becomes 1.0 in f16); rounding the double once gives
    1 + 2^-10.  Both are accepted (fusec rounds once).
Values the spec leaves undefined are not generated: integer overflow and
wrap-around in arithmetic, float-to-integer casts of NaN, inf or
out-of-range values, negative integer powers of integers.

Each case lives in a folder NNNN_OP.DTYPES[.TAG]: case.ir, in/ (the
parameters), out/ (what fusec wrote) and expected.npy (the first reference),
under a temporary folder that is removed afterwards, or under --keep DIR.
Output: one line per failing case (its name, the .ir path and the largest
error), per-op counts with -v, then "N passed, M failed".  Exit status 0 when
every case passed, 1 otherwise, 2 on a usage error.
"""

import argparse
import fnmatch
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    sys.exit("oracle: %s; run it with /usr/bin/python3 and Debian's python3-torch and "
             "python3-numpy installed" % e)

torch.set_num_threads(1)  # references are tiny; fusec processes get the cores

# ---- dtypes ------------------------------------------------------------------

DT = {
    "f64": torch.float64, "f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16,
    "i64": torch.int64, "i32": torch.int32, "i16": torch.int16, "i8": torch.int8,
    "u8": torch.uint8, "bool": torch.bool,
}
IRNAME = {v: k for k, v in DT.items()}
FLOATS = ["f64", "f32", "f16", "bf16"]
INTS = ["i64", "i32", "i16", "i8", "u8"]
NUMERIC = FLOATS + INTS
LOGICAL = ["bool"] + INTS
ALL = NUMERIC + ["bool"]
HALF = (torch.float16, torch.bfloat16)

# Inclusive value ranges of the integer dtypes.
IRANGE = {"i64": (-2**63, 2**63 - 1), "i32": (-2**31, 2**31 - 1), "i16": (-2**15, 2**15 - 1),
          "i8": (-128, 127), "u8": (0, 255), "bool": (0, 1)}

NAN, INF = float("nan"), float("inf")
# Special values mixed into float inputs: non-finite, signed zero, huge and tiny
# (the last of each list is subnormal in that dtype).
SPECIALS = {
    "f64": [NAN, INF, -INF, -0.0, 0.0, 1e300, -1e300, 1e-300, 5e-324],
    "f32": [NAN, INF, -INF, -0.0, 0.0, 1e30, -1e30, 1e-30, 1e-40],
    "f16": [NAN, INF, -INF, -0.0, 0.0, 6e4, -6e4, 1e-4, 6e-8],
    "bf16": [NAN, INF, -INF, -0.0, 0.0, 1e30, -1e30, 1e-30, 1e-40],
}

RTOL = {"f64": {"ew": 1e-12, "red": 1e-12}, "f32": {"ew": 1e-6, "red": 1e-5}}
FLOOR = {"f64": 1e-300, "f32": 1e-37}
ULP = {"f16": (10, -14), "bf16": (7, -126)}  # mantissa bits, minimum normal exponent
# f16/bf16: the error an f32 computation may carry before its final rounding,
# relative to the op's magnitude scale (a few f32 ulps; 16 summands for "red")
HALF_EXTRA = {"ew": 5e-7, "red": 2e-6}


def tyname(dtype, shape):
    return "%s[%s]" % (IRNAME[dtype], ", ".join(str(int(s)) for s in shape))


def fmt_num(v):
    """A number as the text IR writes it (spec section 2)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0 and math.copysign(1, v) < 0:
        return "-0.0"
    return repr(v)


class Dtype(str):
    """An attribute value written as a bare dtype name (`to = f16`)."""


def fmt_attr(v):
    if isinstance(v, Dtype):
        return str(v)
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_attr(x) for x in v) + "]"
    return fmt_num(v)


# ---- inputs ------------------------------------------------------------------

class Gen:
    """Random inputs from one op's seeded generator."""

    def __init__(self, seed):
        self.r = np.random.default_rng(seed)
        self.turn = 0

    def pick(self, seq):
        """Rotate through seq, so consecutive cases see every entry."""
        self.turn += 1
        return seq[self.turn % len(seq)]

    def floats(self, shape, dt, scale=2.0, kind="normal", special=False, lo=None, hi=None):
        n = int(np.prod(shape, dtype=np.int64))
        if lo is not None:
            a = self.r.uniform(lo, hi, n)
        else:
            a = self.r.standard_normal(n) * scale
        if kind == "pos":  # mostly positive (log, sqrt), a few negatives
            a = np.abs(a) + 0.05
            if n >= 4:
                a[self.r.choice(n, max(1, n // 6), replace=False)] *= -1
        elif kind == "halves":  # ties for round, exact integers for floor/ceil
            a = np.where(self.r.random(n) < 0.5, np.round(a * 2) / 2, a * 3)
        elif kind == "grid":  # coarse values so comparisons and argmax see ties
            a = np.round(a)
        if special and n:
            k = max(1, n // 4)
            a[self.r.choice(n, k, replace=False)] = self.r.choice(SPECIALS[dt], k)
        return torch.from_numpy(a.reshape(shape).astype(np.float64)).to(DT[dt])

    def ints(self, shape, dt, lo, hi):
        a = self.r.integers(lo, hi + 1, size=int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
        return torch.from_numpy(a.reshape(shape)).to(DT[dt])

    def bools(self, shape, p=0.5):
        n = int(np.prod(shape, dtype=np.int64))
        return torch.from_numpy((self.r.random(n) < p).reshape(shape))

    def tensor(self, shape, dt, special=False, irange=None, **kw):
        """Any dtype: floats normal (special values optional), integers small."""
        if dt in FLOATS:
            return self.floats(shape, dt, special=special, **kw)
        if dt == "bool":
            return self.bools(shape)
        lo, hi = irange or ((0, 40) if dt == "u8" else (-20, 20))
        return self.ints(shape, dt, lo, hi)


# ---- cases -------------------------------------------------------------------

class Lit:
    """A literal operand (`mul(%x, 0.125)`).  Its dtype is fixed by the op's
    other operands (spec 5.2)."""

    def __init__(self, value):
        self.value = value


PARAM_NAMES = ["x", "y", "z", "w", "u", "v"]
FALLBACKS = {}  # op -> set of dtypes where torch lacked a kernel


class Case:
    def __init__(self, op, name, ir, inputs, refs=None, tol="ew", scale=None, error=None):
        self.op = op
        self.name = name
        self.ir = ir          # text of the .ir file
        self.inputs = inputs  # [(param name, tensor)]
        self.refs = refs      # acceptable results (same dtype and shape), or None
        self.tol = tol        # "ew" | "red" | "exact" | "move"
        self.scale = scale    # f64 tensor or float: the magnitude for the absolute floor
        self.error = error    # expected failure: text the message must contain
        self.matched = None   # index of the reference the result matched


CASES = []


def _literal_dtype(op, operands, i):
    """The dtype spec 5.2 gives literal operand i."""
    order = [1, 2] if op == "where" else range(len(operands))
    for j in order:
        if not isinstance(operands[j], Lit):
            return operands[j].dtype
    raise ValueError("a literal needs a tensor operand beside it")


def _is_not_implemented(e):
    return "not implemented for" in str(e)


def _refs(op, fn, args, upcast, native_half):
    """Acceptable results of fn(*args): torch in the case dtype, then (floats)
    in wider dtypes, rounded back.  See the header."""
    fdt = next((a.dtype for a in args if a.is_floating_point()), None)
    out = []
    native = None
    if fdt not in HALF or native_half or not upcast:
        try:
            native = fn(*args)
        except RuntimeError as e:
            if not _is_not_implemented(e):
                raise
            FALLBACKS.setdefault(op, set()).add(IRNAME[fdt])
    if native is not None:
        out.append(native)
    if upcast and fdt is not None:
        wider = {torch.float32: [torch.float64], torch.float16: [torch.float32, torch.float64],
                 torch.bfloat16: [torch.float32, torch.float64]}.get(fdt, [])
        target = native.dtype if native is not None else fdt
        for w in wider:
            r = fn(*[a.to(w) if a.is_floating_point() else a for a in args])
            out.append(r.to(target) if r.is_floating_point() else r)
    if not out:
        raise RuntimeError("no reference for %s" % op)
    for r in out[1:]:
        assert r.dtype == out[0].dtype and r.shape == out[0].shape, (op, r.dtype, out[0].dtype)
    return [r.contiguous() for r in out]


def case(op, operands, attrs=None, ref=None, tol="ew", absref=None, decl=None, upcast=True,
         error=None, out_type=None, tag="", also=()):
    """Make one case: `op(operands) {attrs}`, checked against ref(*tensors).

    operands  torch tensors (become parameters %x, %y, ...) and Lit literals
    ref       the torch reference; None for an error case (then out_type, the
              declared result as (dtype, shape), makes the file verify)
    absref    fn(|inputs| in f64) -> the magnitude behind each result element
    decl      result type written after ':' (creation ops)
    also      further acceptable results (tensors)
    """
    attrs = attrs or {}
    params, texts, args = [], [], []
    for i, o in enumerate(operands):
        if isinstance(o, Lit):
            dt = _literal_dtype(op, operands, i)
            texts.append(fmt_num(o.value))
            args.append(torch.tensor(o.value, dtype=dt))
        else:
            nm = PARAM_NAMES[len(params)]
            params.append((nm, o.contiguous()))
            texts.append("%" + nm)
            args.append(o)
    # torch's own f16/bf16 CPU kernels are a reference for elementwise ops only;
    # its reductions and composites round intermediates (see the header)
    refs = _refs(op, ref, args, upcast, tol != "red") if ref else None
    if refs is not None:
        refs += [t.contiguous() for t in also]
    if refs is not None:
        rtype = tyname(refs[0].dtype, refs[0].shape)
    else:
        rtype = tyname(DT[out_type[0]], out_type[1])
    stmt = "%%r = %s(%s)" % (op, ", ".join(texts))
    if attrs:
        stmt += " {" + ", ".join("%s = %s" % (k, fmt_attr(v)) for k, v in attrs.items()) + "}"
    if decl is not None:
        stmt += " : " + rtype
    sig = ", ".join("%%%s: %s" % (nm, tyname(t.dtype, t.shape)) for nm, t in params)
    dts = sorted({IRNAME[a.dtype] for a in args}, key=ALL.index) or [IRNAME[refs[0].dtype]]
    name = "%04d_%s.%s%s" % (len(CASES), op, "_".join(dts), "." + tag if tag else "")
    ir = "# oracle case %s\nfunc @main(%s) -> %s {\n  %s\n  return %%r\n}\n" % (
        name, sig, rtype, stmt)
    scale = None
    if refs is not None and absref is not None:
        a64 = [a.abs().double() if a.is_floating_point() else a for a in args]
        with torch.no_grad():
            s = absref(*a64).double()
        scale = torch.where(torch.isfinite(s), s, torch.zeros(())).expand(refs[0].shape)
    CASES.append(Case(op, name, ir, params, refs, tol, scale, error))


def err_case(op, operands, attrs, out_type, message=None):
    """A case fusec must reject at run (or verify) time: exit 1, a message
    naming the op, no result file."""
    case(op, operands, attrs, ref=None, out_type=out_type, error=message or op, tag="error")


# ---- generators --------------------------------------------------------------

GENERATORS = []  # (op names, fn(op, gen))


def gen(*ops):
    def reg(fn):
        GENERATORS.append((ops, fn))
        return fn
    return reg


SHAPES = [[2, 3], [], [5], [0, 3], [1, 4, 1], [2, 3, 4], [3, 1], [1]]
NONEMPTY = [s for s in SHAPES if int(np.prod(s)) > 0 and len(s) > 0]
BIN_SHAPES = [([2, 3], [2, 3]), ([2, 1, 3], [4, 1]), ([], [3]), ([3], [2, 1]), ([0, 3], [1, 3]),
              ([2, 3, 4], [4]), ([1], []), ([4, 1, 2], [4, 3, 1]), ([2, 3], [])]


def _abs_x(x):
    """gelu's magnitude scale: x * (1 + erf(x / sqrt 2)) / 2 cancels to
    |x| * eps in absolute terms in the tail."""
    return x


UNARY_FLOAT = {
    "exp": (torch.exp, "normal"), "exp2": (torch.exp2, "normal"), "log": (torch.log, "pos"),
    "log2": (torch.log2, "pos"), "log1p": (torch.log1p, "pos"), "expm1": (torch.expm1, "normal"),
    "sqrt": (torch.sqrt, "pos"), "rsqrt": (torch.rsqrt, "pos"),
    "reciprocal": (torch.reciprocal, "normal"), "sin": (torch.sin, "normal"),
    "cos": (torch.cos, "normal"), "tan": (torch.tan, "normal"), "tanh": (torch.tanh, "normal"),
    "sigmoid": (torch.sigmoid, "normal"), "erf": (torch.erf, "normal"), "silu": (F.silu, "normal"),
}


@gen(*UNARY_FLOAT)
def g_unary_float(op, g):
    fn, kind = UNARY_FLOAT[op]
    for dt in FLOATS:
        case(op, [g.floats(g.pick(SHAPES), dt, kind=kind)], ref=fn)
        case(op, [g.floats(g.pick(NONEMPTY), dt, kind=kind, special=True)], ref=fn, tag="special")
    # a wider range (overflow, underflow, large arguments) in f32
    case(op, [g.floats([4, 5], "f32", scale=30.0, kind=kind)], ref=fn, tag="wide")


@gen("gelu")
def g_gelu(op, g):
    for dt in FLOATS:
        for approx in ["none", "tanh"]:
            attrs = {} if approx == "none" and dt != "f32" else {"approximate": approx}
            f = lambda x, a=approx: F.gelu(x, approximate=a)
            case(op, [g.floats(g.pick(SHAPES), dt, scale=3.0)], attrs, f, absref=_abs_x)
            case(op, [g.floats(g.pick(NONEMPTY), dt, scale=4.0, special=True)], attrs, f,
                 absref=_abs_x, tag="special")


@gen("floor", "ceil", "round")
def g_rounding(op, g):
    fn = getattr(torch, op)
    for dt in FLOATS:
        case(op, [g.floats(g.pick(SHAPES), dt, kind="halves")], ref=fn, tol="exact")
        case(op, [g.floats([3, 4], dt, kind="halves", special=True)], ref=fn, tol="exact",
             tag="special")


@gen("isnan", "isinf")
def g_isx(op, g):
    fn = getattr(torch, op)
    for dt in FLOATS:
        case(op, [g.floats(g.pick(NONEMPTY), dt, special=True)], ref=fn)
        case(op, [g.floats(g.pick(SHAPES), dt)], ref=fn)


@gen("not")
def g_not(op, g):
    for shp in [[2, 3], [], [0, 2], [4, 1, 2]]:
        case(op, [g.bools(shp)], ref=torch.logical_not)


@gen("neg", "abs", "sign", "relu")
def g_unary_numeric(op, g):
    fn = getattr(torch, op)
    for dt in NUMERIC:
        rng = (0, 100) if dt == "u8" else (-100, 100)
        case(op, [g.tensor(g.pick(SHAPES), dt, irange=rng)], ref=fn, tol="exact")
        if dt in FLOATS:
            case(op, [g.floats(g.pick(NONEMPTY), dt, special=True)], ref=fn, tol="exact",
                 tag="special")


@gen("clamp")
def g_clamp(op, g):
    for dt in NUMERIC:
        if dt in FLOATS:
            variants = [{"min": -0.5}, {"max": 1.25}, {"min": -1.0, "max": 0.75},
                        {"min": 1.0, "max": -1.0},  # min > max: everything becomes max
                        {"min": -0.1, "max": 0.1}]  # bounds the dtype rounds
        else:
            lo = 5 if dt == "u8" else -5
            variants = [{"min": lo}, {"max": 7}, {"min": lo, "max": 12}]
        for i, at in enumerate(variants):
            f = lambda x, at=at: torch.clamp(x, **at)
            case(op, [g.tensor(g.pick(NONEMPTY if i == 0 else SHAPES), dt,
                               special=(i == 0))], at, f, tol="exact")


def _cast_source(g, src, dst, shape):
    """Inputs of dtype src whose cast to dst the spec defines."""
    if src == "bool":
        return g.bools(shape)
    if src in FLOATS:
        if dst in FLOATS:
            return g.floats(shape, src, scale=3.0, special=True)
        if dst == "bool":
            t = g.floats(shape, src, kind="grid", special=True)  # zeros, -0.0, NaN, inf
            return t
        lo, hi = (0.0, 200.0) if dst == "u8" else (-120.0, 120.0)
        t = g.floats(shape, src, lo=lo, hi=hi)
        t.view(-1)[0] = -0.0 if dst != "u8" else 0.75  # -0.0 and a fraction truncate to 0
        return t
    slo, shi = IRANGE[src]
    if dst in INTS:
        dlo, dhi = IRANGE[dst]
        lo, hi = max(slo, dlo, -1000), min(shi, dhi, 1000)
    elif dst == "bool":
        lo, hi = max(slo, -3), min(shi, 3)
    else:
        lo, hi = max(slo, -2_000_000), min(shi, 2_000_000)  # i32/i64 overflow f16
    t = g.ints(shape, src, lo, hi)
    return t


@gen("cast")
def g_cast(op, g):
    for src in ALL:
        for dst in ALL:
            shape = g.pick([[2, 3], [7], [3, 4], [2, 2, 2]])
            x = _cast_source(g, src, dst, shape)
            tol = "move" if dst in FLOATS else "exact"
            case(op, [x], {"to": Dtype(dst)}, lambda t, d=DT[dst]: t.to(d), tol=tol, upcast=False)
    case(op, [g.floats([], "f32")], {"to": Dtype("f16")}, lambda t: t.to(torch.float16),
         upcast=False, tol="move")
    case(op, [g.ints([0, 2], "i32", 0, 1)], {"to": Dtype("f64")}, lambda t: t.to(torch.float64),
         upcast=False, tol="move")


def _bits(vals, itype, ftype):
    return torch.tensor(vals, dtype=itype).view(ftype)


@gen("cast")
def g_cast_rounding(op, g):
    """Round-to-nearest-even on store: ties both ways, just above a tie,
    overflow to inf at the threshold, subnormal results, and NaNs whose
    payload sits only in the bits that rounding drops (a bad rounding turns
    them into inf)."""
    i32, f32 = torch.int32, torch.float32
    to = lambda d: (lambda t: t.to(DT[d]))
    # f32 -> bf16
    x = _bits([0x3F808000, 0x3F818000, 0x3F808001, 0x7F800001, -0x007FFFFF, 0x7F7FFFFF,
               0x00008000, 0x00018000, -0x7FFFFFFF, 0x3F7FFFFF], i32, f32)
    case(op, [x], {"to": Dtype("bf16")}, to("bf16"), upcast=False, tol="move", tag="round")
    # f32 -> f16
    x = torch.tensor([65519.0, 65520.0, -65520.0, 1 + 2**-11, 1 + 3 * 2**-11, 2**-25, 3 * 2**-25,
                      2**-26, 2**-14 - 2**-25, 1e-8], dtype=f32)
    x = torch.cat([x, _bits([0x7F800001, 0x7F801000], i32, f32)])
    case(op, [x], {"to": Dtype("f16")}, to("f16"), upcast=False, tol="move", tag="round")
    # f64 -> f32
    x = torch.tensor([1 + 2**-24, 1 + 3 * 2**-24, 1 + 2**-24 + 2**-60, 2**-150, 3 * 2**-150,
                      3.4028235677973366e38, 3.4028234663852886e38 * (1 + 2**-25), 1e-46, -1e39],
                     dtype=torch.float64)
    case(op, [x], {"to": Dtype("f32")}, to("f32"), upcast=False, tol="move", tag="round")
    # f16 <-> bf16: different exponent and mantissa ranges
    x = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, 65504.0, 6e-8, -2**-14, 1 + 2**-8 + 2**-10],
                     dtype=torch.float16)
    case(op, [x], {"to": Dtype("bf16")}, to("bf16"), upcast=False, tol="move", tag="round")
    x = torch.tensor([1e5, -7e4, 1e-6, 3e-8, 2.0**-24, 1.5 * 2**-24, 2.5 * 2**-24, 1e-20, 300.0],
                     dtype=torch.bfloat16)
    case(op, [x], {"to": Dtype("f16")}, to("f16"), upcast=False, tol="move", tag="round")
    # f64 -> f16 / bf16 just above a tie of the narrow type: torch converts
    # through f32, whose rounding lands on the tie, then ties to even (down);
    # rounding the double once goes up.  Both are accepted (spec 5.2 says
    # "rounded to the storage dtype" without naming the path).
    for d, v, up in (("f16", 1 + 2**-11 + 2**-40, 1 + 2**-10),
                     ("bf16", 1 + 2**-8 + 2**-40, 1 + 2**-7)):
        x = torch.tensor([v, -v, 2.5], dtype=torch.float64)
        once = torch.tensor([up, -up, 2.5], dtype=torch.float64).to(DT[d])
        case(op, [x], {"to": Dtype(d)}, to(d), upcast=False, tol="move", tag="double_round",
             also=[once])
    # integers to floats beyond the float's exact range round to nearest even
    x = torch.tensor([2**24 + 1, 2**24 + 3, -(2**24 + 1), 2**31 - 1, -2**31], dtype=torch.int32)
    case(op, [x], {"to": Dtype("f32")}, to("f32"), upcast=False, tol="move", tag="round")
    x = torch.tensor([2**53 + 1, 2**62 + 2**9, -2**63, 2**63 - 1], dtype=torch.int64)
    case(op, [x], {"to": Dtype("f64")}, to("f64"), upcast=False, tol="move", tag="round")
    x = torch.tensor([2049, 2051, 65504, 65519, 65520, 70000, -70000], dtype=torch.int32)
    case(op, [x], {"to": Dtype("f16")}, to("f16"), upcast=False, tol="move", tag="round")
    x = torch.tensor([257, 259, 32767, -32768, 255], dtype=torch.int16)
    case(op, [x], {"to": Dtype("bf16")}, to("bf16"), upcast=False, tol="move", tag="round")


# -- binary --------------------------------------------------------------------

def _int_range(op, dt, role):
    """Operand ranges that keep integer arithmetic away from overflow (whose
    result the spec does not define) and divisors away from zero."""
    u8 = dt == "u8"
    small = dt in ("i8", "u8")
    if op in ("add", "maximum", "minimum"):
        return (0, 100) if u8 else (-50, 50) if small else (-1000, 1000)
    if op == "sub":
        if u8:
            return (100, 200) if role == 0 else (0, 100)
        return (-50, 50) if small else (-1000, 1000)
    if op == "mul":
        return (0, 15) if u8 else (-11, 11) if small else (-150, 150)
    if op == "div":
        if role == 0:
            return (0, 200) if u8 else (-100, 100)
        return (1, 9) if u8 else (-9, 9)
    if op == "remainder":
        if role == 0:
            return (0, 200) if u8 else (-50, 50)
        return (1, 9) if u8 else (-7, 7)
    if op == "pow":
        return ((0, 5) if u8 else (-4, 4)) if role == 0 else (0, 3)
    if op in ("and", "or", "xor"):
        return IRANGE[dt] if small else (-1000, 1000)
    return (0, 5) if u8 else (-3, 3)  # comparisons: frequent ties


def _nonzero(t):
    t = t.clone()
    t[t == 0] = 1
    return t


def _binary_operand(g, op, dt, shape, role, special=False):
    if dt == "bool":
        return g.bools(shape)
    if dt in INTS:
        lo, hi = _int_range(op, dt, role)
        t = g.ints(shape, dt, lo, hi)
        return _nonzero(t) if (op in ("div", "remainder") and role == 1) else t
    kind = "grid" if op in ("eq", "ne", "lt", "le", "gt", "ge", "maximum", "minimum") else "normal"
    if op == "pow" and role == 1:
        return g.floats(shape, dt, scale=1.5, kind=kind, special=special)
    return g.floats(shape, dt, kind=kind, special=special)


def _div(a, b):
    if a.is_floating_point():
        return torch.div(a, b)
    return torch.div(a, b, rounding_mode="trunc")  # spec: integer div truncates


BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": _div, "pow": torch.pow,
    "maximum": torch.maximum, "minimum": torch.minimum, "remainder": torch.remainder,
    "and": torch.bitwise_and, "or": torch.bitwise_or, "xor": torch.bitwise_xor,
    "eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge,
}
# Literal operands per op: (float literal position/value, integer ones).
# A position 0 literal is written first (`sub(1.0, %x)`).
BIN_LITS = {
    "add": ([(1, 1.5)], [(1, 3)]), "sub": ([(0, 1.0)], [(0, 200)]),
    "mul": ([(1, 0.125), (1, -INF)], [(1, 2)]), "div": ([(1, 0.0), (0, 1.0)], [(1, 3), (0, 100)]),
    "pow": ([(1, 2.0), (1, 0.5), (0, 2.0)], [(1, 2)]), "maximum": ([(1, 0.0)], [(1, 2)]),
    "minimum": ([(1, -INF)], [(1, 5)]), "remainder": ([(1, 1.5), (0, -7.0)], [(1, 3), (0, 7)]),
    "and": ([], [(1, 6)]), "or": ([], [(1, 6)]), "xor": ([], [(1, 6)]),
    "eq": ([(1, 0.0)], [(1, 1)]), "ne": ([(1, NAN)], [(1, 1)]), "lt": ([(1, 0.5)], [(0, 1)]),
    "le": ([(0, -INF)], [(1, 2)]), "gt": ([(1, INF)], [(1, 0)]), "ge": ([(1, 1.0)], [(1, 2)]),
}


def _bin_tol(op):
    if op in ("maximum", "minimum"):
        return "exact"
    return "ew"


def _remainder_abs(a, b):
    return torch.maximum(a, b)


@gen(*BINARY)
def g_binary(op, g):
    fn = BINARY[op]
    if op in ("and", "or", "xor"):
        dts = LOGICAL
    elif op in ("eq", "ne", "lt", "le", "gt", "ge"):
        dts = ALL
    else:
        dts = NUMERIC
    absref = _remainder_abs if op == "remainder" else None
    tol = _bin_tol(op)
    for dt in dts:
        nvar = 2 if op in ("eq", "ne", "lt", "le", "gt", "ge", "and", "or", "xor") else 3
        for k in range(nvar):
            sa, sb = g.pick(BIN_SHAPES)
            if k == 1:
                sa, sb = sb, sa
            special = dt in FLOATS and k == 2
            if special:
                sa, sb = [2, 4], [4]
            a = _binary_operand(g, op, dt, sa, 0, special)
            b = _binary_operand(g, op, dt, sb, 1, special)
            if special and op in ("div", "remainder"):
                b.view(-1)[0], b.view(-1)[1] = 0.0, -0.0
            case(op, [a, b], ref=fn, tol=tol, absref=absref, tag="special" if special else "")
        # literal operands
        flits, ilits = BIN_LITS[op]
        lits = flits if dt in FLOATS else ilits if dt in INTS else [(1, True)]
        for pos, val in lits:
            if dt == "u8" and isinstance(val, int) and val < 0:
                continue
            if op == "sub" and dt in INTS and pos == 0 and dt != "u8":
                val = 10
            if dt in ("i8",) and val == 200:
                val = 100
            x = _binary_operand(g, op, dt, g.pick([[2, 3], [4], [2, 1, 3]]), 1 - pos)
            if op == "sub" and dt == "u8" and pos == 0:
                x = g.ints(x.shape, dt, 0, 100)
            if op in ("div", "remainder") and pos == 0 and dt in INTS:
                x = _nonzero(x)
            operands = [Lit(val), x] if pos == 0 else [x, Lit(val)]
            case(op, operands, ref=fn, tol=tol, absref=absref, tag="lit")


@gen("eq", "ne", "lt", "ge")
def g_literal_rounding(op, g):
    """A literal takes its operand's dtype (spec 5.2): 0.1 in an f16
    comparison is f16's 0.1, so eq(%x, 0.1) holds where x holds f16(0.1).
    Comparing against the unrounded double would not."""
    for dt in ["f32", "f16", "bf16"]:
        x = torch.tensor([0.1, 0.2, -0.1, 0.1, 0.10001, 0.09999], dtype=torch.float64).to(DT[dt])
        case(op, [x, Lit(0.1)], ref=BINARY[op], tag="litround")


@gen("where")
def g_where(op, g):
    shapes = [([2, 3], [2, 3], [2, 3]), ([2, 1, 3], [4, 1], [3]), ([], [2, 2], [1]),
              ([1, 3], [], [0, 1]), ([4], [3, 1], [])]
    for dt in ALL:
        for _ in range(2):
            sc, sa, sb = g.pick(shapes)
            case(op, [g.bools(sc), g.tensor(sa, dt, special=True), g.tensor(sb, dt)],
                 ref=torch.where, tol="move")
        lit = -INF if dt in FLOATS else True if dt == "bool" else 7
        x = g.tensor([2, 3], dt, special=True)
        case(op, [g.bools([3]), Lit(lit), x], ref=torch.where, tol="move", tag="lit")
        if dt in FLOATS:
            case(op, [g.bools([2, 1]), x, Lit(-0.0)], ref=torch.where, tol="move", tag="lit")


@gen("masked_fill")
def g_masked_fill(op, g):
    for dt in ALL:
        vals = [-INF, 0.5, NAN] if dt in FLOATS else [1] if dt == "bool" else [7, 0]
        for i, v in enumerate(vals):
            if i % 2 == 0:
                x, m = g.tensor([2, 3], dt, special=True), g.bools([3])
            else:  # the mask widens x: spec says = where(mask, value, x)
                x, m = g.tensor([1, 3], dt), g.bools([2, 1])
            f = lambda x, m, v=v: torch.where(m, torch.tensor(v, dtype=x.dtype), x)
            case(op, [x, m], {"value": v}, f, tol="move")


# -- reductions ----------------------------------------------------------------

def _dims(x, axes):
    if axes is None:
        return list(range(x.dim()))
    return [a % x.dim() for a in axes] if x.dim() else []


def _reduce(fn_dims, x, axes, keepdim):
    """Apply a torch reduction taking a dim list, with the all-axes and 0-d cases."""
    dims = _dims(x, axes)
    if not dims:
        return fn_dims(x.unsqueeze(0), [0], False) if x.dim() == 0 else x.clone()
    return fn_dims(x, dims, keepdim)


def _prod_dims(x, dims, keepdim):
    for d in sorted(dims, reverse=True):
        x = torch.prod(x, d, keepdim=True)
    if not keepdim:
        for d in sorted(dims, reverse=True):
            x = x.squeeze(d)
    return x


RED_FN = {
    "sum": lambda x, d, k: torch.sum(x, d, keepdim=k),
    "mean": lambda x, d, k: torch.mean(x, d, keepdim=k),
    "prod": _prod_dims,
    "max": lambda x, d, k: torch.amax(x, d, keepdim=k),
    "min": lambda x, d, k: torch.amin(x, d, keepdim=k),
}
# (shape, axes, keepdim); axes None = attribute omitted
RED_VARIANTS = [([2, 3, 4], None, False), ([2, 3, 4], [-1], True), ([2, 3, 4], [0, 2], False),
                ([3, 5], [0], False), ([], None, False), ([4, 0], [0], False),
                ([2, 3, 4], [-3, -2], True), ([5], None, True), ([], [-1], True)]
EMPTY_RED = [([0, 3], [0], True), ([2, 0, 2], None, False)]


def _red_attrs(axes, keepdim):
    at = {}
    if axes is not None:
        at["axes"] = axes
    if keepdim:
        at["keepdim"] = True
    return at


@gen("sum", "mean", "prod", "max", "min")
def g_reduce(op, g):
    dts = FLOATS if op == "mean" else ALL
    fn = RED_FN[op]
    exact = op in ("max", "min")
    for n, dt in enumerate(dts):
        variants = list(RED_VARIANTS)
        if dt not in FLOATS:  # integer dtypes share the variants between them
            variants = variants[n % 2::2]
        if not exact:
            variants += EMPTY_RED[:1] if dt in INTS or dt == "bool" else EMPTY_RED
        for i, (shape, axes, keep) in enumerate(variants):
            special = dt in FLOATS and i == 2
            if op == "prod" and dt in FLOATS:
                x = g.floats(shape, dt, lo=0.6, hi=1.6, special=special)
                sign = torch.from_numpy(np.asarray(g.r.standard_normal(list(shape)))).sign()
                x = x * sign.to(x.dtype)
            elif op == "prod" and dt in INTS:
                x = g.ints(shape, dt, 0 if dt == "u8" else -2, 2)
            else:
                x = g.tensor(shape, dt, special=special)
            f = lambda x, a=axes, k=keep: _reduce(fn, x, a, k)
            absref = None
            if op in ("sum", "mean"):
                absref = f
            elif op == "prod":
                absref = lambda x, a=axes, k=keep: _reduce(fn, x, a, k)
            case(op, [x], _red_attrs(axes, keep), f, tol="exact" if exact else "red",
                 absref=absref, tag="special" if special else "")
    if exact:
        err_case(op, [g.floats([0, 3], "f32")], {"axes": [0]}, ("f32", [3]))


@gen("var")
def g_var(op, g):
    variants = [([3, 5], None, False, None), ([2, 3, 4], [-1], True, 0),
                ([2, 3, 4], [0, 2], False, 2),
                ([4, 1], [1], False, 1), ([], None, False, 0), ([3, 6], [1], True, None),
                ([0, 3], [0], False, None), ([2, 3, 4], [1], False, 3),
                ([2, 3], [1], False, 5)]  # correction > n: torch divides by max(0, n - c)
    for dt in FLOATS:
        for i, (shape, axes, keep, corr) in enumerate(variants):
            special = i == 5
            x = g.floats(shape, dt, special=special)
            if i == 1:
                x = x + 100  # a large mean: a one-pass formula would cancel
            c = 1 if corr is None else corr
            at = _red_attrs(axes, keep)
            if corr is not None:
                at["correction"] = corr
            f = lambda x, a=axes, k=keep, c=c: _reduce(
                lambda t, d, kk: torch.var(t, d, correction=c, keepdim=kk), x, a, k)

            def absref(x, a=axes, k=keep, c=c):
                n = int(np.prod([x.shape[d] for d in _dims(x, a)])) if x.dim() else 1
                s = _reduce(lambda t, d, kk: torch.sum(t * t, d, keepdim=kk), x, a, k)
                return s / max(n - c, 1)
            case(op, [x], at, f, tol="red", absref=absref, tag="special" if special else "")


@gen("argmax", "argmin")
def g_argreduce(op, g):
    fn = getattr(torch, op)
    variants = [([3, 4], None, False), ([3, 4], None, True), ([2, 3, 4], -1, True),
                ([4, 3], 0, False), ([], None, False), ([2, 5], 1, False), ([0, 3], 1, False),
                ([], 0, True)]
    for n, dt in enumerate(NUMERIC):
        for i, (shape, axis, keep) in enumerate(variants):
            if dt not in FLOATS and i % 2 != n % 2:  # integer dtypes share the variants
                continue
            special = dt in FLOATS and i == 5
            if dt in FLOATS:
                x = g.floats(shape, dt, kind="grid", special=special)  # ties: first index wins
            else:
                x = g.ints(shape, dt, 0, 3)
            at = {}
            if axis is not None:
                at["axis"] = axis
            if keep:
                at["keepdim"] = True
            if axis is None:
                f = lambda x, k=keep: fn(x, keepdim=k) if k else fn(x)
            else:
                f = lambda x, a=axis, k=keep: fn(x, a, keepdim=k)
            case(op, [x], at, f, tag="special" if special else "")
    err_case(op, [g.floats([0, 3], "f32")], {"axis": 0}, ("i64", [3]))


# -- normalisation -------------------------------------------------------------

@gen("softmax", "log_softmax")
def g_softmax(op, g):
    fn = torch.softmax if op == "softmax" else torch.log_softmax
    variants = [([2, 5], None), ([3, 4], 0), ([2, 3, 4], 1), ([2, 3, 4], -2), ([], -1),
                ([0, 4], -1), ([4, 1], -1)]
    for dt in FLOATS:
        for shape, axis in variants:
            x = g.floats(shape, dt, scale=3.0)
            at = {} if axis is None else {"axis": axis}
            f = lambda x, a=(-1 if axis is None else axis): fn(x, a)
            case(op, [x], at, f, tol="red")
        # special values; row 0 all -inf gives NaN (spec 5.5), row 1 a single +inf
        x = g.floats([5, 6], dt, scale=3.0, special=True)
        x[0, :] = -INF
        x[1, :] = g.floats([6], dt)
        x[1, 2] = INF
        x[2, :] = g.floats([6], dt)
        x[2, 1:3] = -INF
        x[3, :] = 1e4 if dt != "f16" else 6e4  # overflow if not shifted by the max
        case(op, [x], {"axis": -1}, lambda x: fn(x, -1), tol="red", tag="special")


def _ln(x, w=None, b=None, axes=(-1,), eps=1e-5):
    k = len(axes)
    return F.layer_norm(x, x.shape[x.dim() - k:], w, b, eps)


@gen("layer_norm")
def g_layer_norm(op, g):
    variants = [([2, 5], None, 0, None), ([3, 4], [-1], 1, 1e-3), ([2, 3, 4], [-2, -1], 2, None),
                ([2, 3, 4], [1, 2], 1, None), ([4, 1], None, 2, None), ([0, 3], None, 2, None)]
    for dt in FLOATS:
        for i, (shape, axes, nw, eps) in enumerate(variants):
            k = len(axes) if axes else 1
            ns = shape[len(shape) - k:]
            x = g.floats(shape, dt, scale=2.0) + (50 if i == 1 else 0)
            ops = [x] + [g.floats(ns, dt) for _ in range(nw)]
            at = {}
            if axes is not None:
                at["axes"] = axes
            if eps is not None:
                at["eps"] = eps
            f = lambda x, *wb, a=tuple(axes or [-1]), e=(eps or 1e-5): _ln(x, *wb, axes=a, eps=e)
            case(op, ops, at, f, tol="red")
        x = g.floats([3, 6], dt, special=True)
        x[0] = 2.5  # a constant row: variance 0, output 0 (times weight) plus bias
        case(op, [x, g.floats([6], dt), g.floats([6], dt)], {}, _ln, tol="red", tag="special")


def _rms(x, w=None, axes=(-1,), eps=1e-6):
    dims = [a % x.dim() for a in axes]
    y = x * torch.rsqrt(torch.mean(x * x, dims, keepdim=True) + eps)
    return y * w if w is not None else y


@gen("rms_norm")
def g_rms_norm(op, g):
    variants = [([2, 5], None, False, None), ([3, 4], [-1], True, 1e-2),
                ([2, 3, 4], [-2, -1], True, None),
                ([2, 3, 4], [2], False, None), ([0, 4], None, True, None)]
    for dt in FLOATS:
        for shape, axes, hw, eps in variants:
            k = len(axes) if axes else 1
            x = g.floats(shape, dt)
            ops = [x] + ([g.floats(shape[len(shape) - k:], dt)] if hw else [])
            at = {}
            if axes is not None:
                at["axes"] = axes
            if eps is not None:
                at["eps"] = eps
            f = lambda x, *w, a=tuple(axes or [-1]), e=(eps or 1e-6): _rms(x, *w, axes=a, eps=e)
            case(op, ops, at, f, tol="red")
        x = g.floats([3, 5], dt, special=True)
        x[0] = 0.0  # all zeros: rsqrt(eps) * 0 = 0
        case(op, [x], {}, _rms, tol="red", tag="special")


def _bn(x, m, v, w=None, b=None, eps=1e-5):
    return F.batch_norm(x, m, v, w, b, training=False, eps=eps)


@gen("batch_norm")
def g_batch_norm(op, g):
    variants = [([2, 3, 4, 4], 0, None), ([4, 3], 1, 1e-3), ([2, 3, 5], 2, None),
                ([1, 2, 2, 3], 2, None)]
    for dt in FLOATS:
        for i, (shape, nw, eps) in enumerate(variants):
            c = shape[1]
            special = i == 3
            ops = [g.floats(shape, dt, special=special), g.floats([c], dt),
                   g.floats([c], dt, lo=0.1, hi=3.0)]
            ops += [g.floats([c], dt) for _ in range(nw)]
            at = {} if eps is None else {"eps": eps}
            f = lambda *a, e=(eps or 1e-5): _bn(*a, eps=e)

            def absref(x, m, v, *wb, e=(eps or 1e-5)):
                sh = [1, -1] + [1] * (x.dim() - 2)
                s = (x + m.view(sh)) / torch.sqrt(v.view(sh) + e)
                if wb:
                    s = s * wb[0].view(sh)
                if len(wb) > 1:
                    s = s + wb[1].view(sh)
                return s
            case(op, ops, at, f, tol="red", absref=absref, tag="special" if special else "")


# -- shape and data movement ---------------------------------------------------

def _move_input(g, shape, dt):
    return g.tensor(shape, dt, special=dt in FLOATS and int(np.prod(shape)) > 2)


def _each_dtype(g, variants):
    """Spread the variants over all dtypes so that every dtype and every
    variant is seen, in about max(len) cases."""
    out = []
    n = max(len(variants), len(ALL))
    for i in range(n):
        out.append((ALL[i % len(ALL)], variants[i % len(variants)]))
    return out


@gen("reshape")
def g_reshape(op, g):
    variants = [([2, 3, 4], [4, -1]), ([2, 3], [3, 2]), ([1, 1], []), ([0, 3], [3, 0]),
                ([6], [1, 2, 1, 3]), ([], [1, 1]), ([2, 3, 4], [-1]), ([4, 0, 2], [8, 0])]
    for dt, (shape, to) in _each_dtype(g, variants) + _each_dtype(g, variants[::-1]):
        case(op, [_move_input(g, shape, dt)], {"shape": to}, lambda x, s=to: x.reshape(s),
             tol="move")


@gen("permute")
def g_permute(op, g):
    variants = [([2, 3, 4], [2, 0, 1]), ([2, 3, 4, 5], [-1, 0, 2, 1]), ([0, 2, 3], [1, 2, 0]),
                ([3, 4], [1, 0]), ([5], [0]), ([], [])]
    for dt, (shape, dims) in _each_dtype(g, variants):
        case(op, [_move_input(g, shape, dt)], {"dims": dims}, lambda x, d=dims: x.permute(d),
             tol="move")


@gen("transpose")
def g_transpose(op, g):
    variants = [([2, 3], 0, 1), ([2, 3, 4], -1, -3), ([2, 0, 3], 1, 2), ([3, 4], 1, 1),
                ([2, 3, 4, 2], 1, -1)]
    for dt, (shape, a, b) in _each_dtype(g, variants):
        case(op, [_move_input(g, shape, dt)], {"dim0": a, "dim1": b},
             lambda x, a=a, b=b: x.transpose(a, b), tol="move")


@gen("expand")
def g_expand(op, g):
    variants = [([3, 1], [3, 4]), ([1, 3], [2, 4, 3]), ([], [2, 3]), ([2, 1], [-1, 0]),
                ([1, 3], [-1, -1]), ([2, 1, 1], [2, 2, 3]), ([1], [1])]
    for dt, (shape, to) in _each_dtype(g, variants):
        case(op, [_move_input(g, shape, dt)], {"shape": to},
             lambda x, s=to: x.expand(s).contiguous(), tol="move")


def _squeeze(x, axes):
    if axes is None:
        return x.squeeze()
    for a in sorted({a % x.dim() for a in axes}, reverse=True):
        x = x.squeeze(a)
    return x


@gen("squeeze")
def g_squeeze(op, g):
    variants = [([1, 3, 1], None), ([1, 3, 1], [0]), ([2, 1, 3], [-2]), ([2, 3], [0]),
                ([1, 1], None), ([1, 0, 1], [0, 2]), ([2, 1, 1, 3], [1, -2]), ([], None)]
    for dt, (shape, axes) in _each_dtype(g, variants):
        at = {} if axes is None else {"axes": axes}
        case(op, [_move_input(g, shape, dt)], at, lambda x, a=axes: _squeeze(x, a), tol="move")


@gen("unsqueeze")
def g_unsqueeze(op, g):
    variants = [([2, 3], 0), ([2, 3], -1), ([], 0), ([2, 3], 1), ([0, 2], -2), ([3], -2)]
    for dt, (shape, a) in _each_dtype(g, variants):
        case(op, [_move_input(g, shape, dt)], {"axis": a}, lambda x, a=a: x.unsqueeze(a),
             tol="move")


def _slice(x, axis, start, end, step):
    idx = [slice(None)] * x.dim()
    idx[axis] = slice(start, end, step)
    return x[tuple(idx)].contiguous()


@gen("slice")
def g_slice(op, g):
    # (shape, axis, start, end, step); None = attribute omitted
    variants = [([5, 6], 1, 1, 4, None), ([5, 6], 0, -3, None, None), ([5, 6], 1, None, None, 2),
                ([5, 6], -1, -100, 100, 3), ([5, 6], 0, 4, 2, None), ([5, 6], 1, -2, -1, None),
                ([7], 0, 2, None, 4), ([2, 3, 4], -2, 1, 9223372036854775807, None),
                ([0, 4], 1, 1, 3, None), ([4, 3], 0, -9, -2, 2), ([3, 5], 1, 5, 9, None)]
    for dt, (shape, axis, s, e, st) in _each_dtype(g, variants) + _each_dtype(g, variants[3:]):
        at = {"axis": axis}
        for k, v in (("start", s), ("end", e), ("step", st)):
            if v is not None:
                at[k] = v
        case(op, [_move_input(g, shape, dt)], at,
             lambda x, a=axis, s=s, e=e, st=st: _slice(x, a, s, e, st), tol="move")


@gen("concat")
def g_concat(op, g):
    variants = [([[2, 3], [2, 1], [2, 0]], -1), ([[1, 3], [2, 3]], 0), ([[2, 3]], 1),
                ([[2, 3, 4], [2, 2, 4], [2, 1, 4], [2, 3, 4]], 1), ([[0, 2], [0, 2]], 0),
                ([[3], [4]], 0)]
    for dt, (shapes, axis) in _each_dtype(g, variants):
        xs = [_move_input(g, s, dt) for s in shapes]
        case(op, xs, {"axis": axis}, lambda *xs, a=axis: torch.cat(xs, a), tol="move")


def _pad(x, pads, value):
    tp = []
    for k in range(len(pads) // 2 - 1, -1, -1):  # spec order is dimension order: reverse pairs
        tp += [pads[2 * k], pads[2 * k + 1]]
    return F.pad(x, tp, value=value)


@gen("pad")
def g_pad(op, g):
    variants = [([2, 3], [1, 2]), ([2, 3], [1, 0, 0, 2]), ([3, 4], [-1, 1]),
                ([2, 3, 4], [0, 0, -1, -1, 2, 0]), ([0, 2], [1, 1, 0, 1]), ([3], [-3, 2]),
                ([2, 2], [2, -1, -1, 3])]
    plan = _each_dtype(g, variants) + _each_dtype(g, variants[::-1])
    for i, (dt, (shape, pads)) in enumerate(plan):
        if dt in FLOATS:
            value = [None, 1.5, -INF, NAN][i % 4]
        elif dt == "bool":
            value = [None, 1][i % 2]
        else:
            value = [None, 3][i % 2]
        at = {"pads": pads}
        if value is not None:
            at["value"] = value
        f = lambda x, p=pads, v=(value or 0): _pad(x, p, v)
        case(op, [_move_input(g, shape, dt)], at, f, tol="move")


@gen("index_select")
def g_index_select(op, g):
    variants = [([4, 3], 0, [3, 0, 3], "i64"), ([2, 5], -1, [4, 0], "i32"), ([3, 2], 1, [], "i64"),
                ([3], 0, [2, 2, 1, 0], "i32"), ([2, 3, 4], 1, [2], "i64"),
                ([0, 3], 1, [1, 0], "i64")]
    for dt, (shape, axis, idx, idt) in _each_dtype(g, variants):
        i = torch.tensor(idx, dtype=DT[idt])
        case(op, [_move_input(g, shape, dt), i], {"axis": axis},
             lambda x, i, a=axis: torch.index_select(x, a, i.long()), tol="move")
    for idt, bad in (("i64", [0, 4]), ("i32", [-1]), ("i64", [3])):
        err_case(op, [g.floats([3, 2], "f32"), torch.tensor(bad, dtype=DT[idt])], {"axis": 0},
                 ("f32", [len(bad), 2]))


def _embedding(w, idx):
    return torch.index_select(w, 0, idx.reshape(-1).long()).reshape(list(idx.shape) + [w.shape[1]])


@gen("embedding")
def g_embedding(op, g):
    variants = [([6, 4], [2, 3], "i64"), ([5, 3], [5], "i32"), ([4, 2], [], "i64"),
                ([3, 5], [2, 0], "i32"),
                ([1, 0], [3], "i64")]
    for dt, (ws, ishape, idt) in _each_dtype(g, variants):
        idx = g.ints(ishape, idt, 0, ws[0] - 1)
        case(op, [_move_input(g, ws, dt), idx], {}, _embedding, tol="move")
    err_case(op, [g.floats([4, 3], "f32"), torch.tensor([[1, 4]], dtype=torch.int64)], {},
             ("f32", [1, 2, 3]))
    err_case(op, [g.floats([4, 3], "bf16"), torch.tensor([-1], dtype=torch.int32)], {},
             ("bf16", [1, 3]))


@gen("gather")
def g_gather(op, g):
    variants = [([3, 4], 1, [3, 2], "i64"), ([3, 4], 0, [2, 4], "i64"), ([3, 4], -1, [2, 2], "i32"),
                ([2, 3, 4], 1, [2, 5, 3], "i64"), ([4], 0, [6], "i32"), ([3, 2], 0, [0, 2], "i64")]
    for dt, (shape, axis, ishape, idt) in _each_dtype(g, variants):
        idx = g.ints(ishape, idt, 0, shape[axis] - 1)
        case(op, [_move_input(g, shape, dt), idx], {"axis": axis},
             lambda x, i, a=axis: torch.gather(x, a, i.long()), tol="move")
    err_case(op, [g.floats([3, 4], "f32"), torch.tensor([[0, 4]], dtype=torch.int64)], {"axis": 1},
             ("f32", [1, 2]))
    err_case(op, [g.floats([3, 4], "f16"), torch.tensor([[3], [0]], dtype=torch.int32)],
             {"axis": 0}, ("f16", [2, 1]))


# -- creation ------------------------------------------------------------------

@gen("full")
def g_full(op, g):
    for dt in ALL:
        if dt in FLOATS:
            vals = [0.1, -INF, NAN, -0.0, 1e5]
        elif dt == "bool":
            vals = [1, 0]
        else:
            vals = [7, 0] if dt == "u8" else [-3, 100]
        for v in vals:
            shape = g.pick([[2, 3], [], [0, 4], [1, 2, 1]])
            # via f64: 1e5 becomes inf in f16 by rounding (torch.full refuses it)
            f = lambda s=shape, v=v, d=DT[dt]: (
                torch.full(s, v, dtype=torch.float64).to(d) if d.is_floating_point
                else torch.full(s, v, dtype=d))
            case(op, [], {"value": v}, f, decl=True, tol="move")


@gen("iota")
def g_iota(op, g):
    variants = [([3, 4], 1), ([2, 3, 4], -3), ([5], 0), ([2, 0], 0), ([300], 0), ([2, 3], -1)]
    for i, dt in enumerate(NUMERIC + NUMERIC[::-1]):
        shape, axis = variants[i % len(variants)]

        def f(s=shape, a=axis, d=DT[dt]):
            n = s[a]
            v = torch.arange(n, dtype=torch.float64 if DT[dt].is_floating_point else torch.int64)
            sh = [1] * len(s)
            sh[a] = n
            return v.reshape(sh).expand(s).to(d).contiguous()
        case(op, [], {"axis": axis}, f, decl=True, tol="move")


@gen("constant")
def g_constant(op, g):
    for dt in ALL:
        for shape in ([2, 3], [], [0]):
            n = int(np.prod(shape))
            if dt in FLOATS:
                data = [float(v) for v in g.r.standard_normal(n) * 3]
                for j, s in enumerate([INF, -INF, NAN, -0.0, 0.1]):
                    if j < n:
                        data[j] = s
            elif dt == "bool":
                data = [int(v) for v in g.r.integers(0, 2, n)]
            else:
                lo, hi = IRANGE[dt]
                data = [int(v) for v in g.r.integers(max(lo, -10**6), min(hi, 10**6) + 1, n)]
                if n:
                    # the extreme of the dtype; i64's is not a double (the attribute's
                    # type), so 2^53 stands in for it
                    data[0] = 2**53 if dt == "i64" else hi
            f = lambda s=shape, data=data, d=DT[dt]: (
                torch.tensor(data, dtype=torch.float64).to(d).reshape(s)
                if DT[dt].is_floating_point else torch.tensor(data, dtype=d).reshape(s))
            case(op, [], {"data": data}, f, decl=True, tol="move")


@gen("triu", "tril")
def g_tri(op, g):
    fn = getattr(torch, op)
    variants = [([3, 4], None), ([4, 3], 1), ([2, 3, 3], -1), ([0, 3], 0), ([3, 5], 2),
                ([2, 2, 4, 3], -5),
                ([3, 3], 9)]
    for dt, (shape, dg) in _each_dtype(g, variants):
        at = {} if dg is None else {"diagonal": dg}
        case(op, [_move_input(g, shape, dt)], at, lambda x, d=(dg or 0): fn(x, d), tol="move")


# -- contractions and windows --------------------------------------------------

def _absmm(a, b):
    return torch.matmul(a, b)


@gen("matmul")
def g_matmul(op, g):
    shapes = [([3], [3]), ([2, 3], [3]), ([3], [3, 4]), ([2, 3], [3, 4]), ([2, 2, 3], [3, 4]),
              ([2, 1, 2, 3], [3, 3, 4]), ([2, 0], [0, 3]), ([0, 3], [3, 2]), ([3], [2, 3, 5]),
              ([2, 4, 3], [2, 3, 1]), ([1, 16], [16, 2])]
    for dt in FLOATS:
        for _ in range(6):
            sa, sb = g.pick(shapes)
            case(op, [g.floats(sa, dt), g.floats(sb, dt)], {}, torch.matmul, tol="red",
                 absref=_absmm)
        case(op, [g.floats([3, 4], dt, special=True), g.floats([4, 2], dt)], {}, torch.matmul,
             tol="red", absref=_absmm, tag="special")


def _absl(x, w, b=None):
    r = torch.matmul(x, w.t())
    return r + b if b is not None else r


@gen("linear")
def g_linear(op, g):
    shapes = [([2, 3], [4, 3], True), ([3], [2, 3], False), ([2, 2, 3], [4, 3], True),
              ([0, 5], [2, 5], True),
              ([2, 6], [3, 6], False)]
    for dt in FLOATS:
        for sx, sw, hb in shapes:
            ops = [g.floats(sx, dt), g.floats(sw, dt)] + ([g.floats([sw[0]], dt)] if hb else [])
            case(op, ops, {}, F.linear, tol="red", absref=_absl)


def _conv_variants():
    # x shape, w shape, bias, attrs
    return [([1, 2, 5, 5], [3, 2, 3, 3], False, {}),
            ([2, 2, 6, 5], [4, 2, 3, 2], True, {"stride": [2, 1], "padding": [1, 2]}),
            ([1, 4, 7, 7], [4, 2, 3, 3], False,
             {"groups": 2, "dilation": [2, 2], "padding": [2, 1]}),
            ([1, 3, 4, 4], [6, 1, 1, 1], True, {"groups": 3}),
            ([2, 1, 4, 6], [2, 1, 2, 4], True,
             {"stride": [3, 2], "dilation": [1, 2], "padding": [0, 1]}),
            ([0, 2, 4, 4], [3, 2, 3, 3], True, {}),
            ([1, 1, 3, 3], [1, 1, 2, 2], False, {"padding": [3, 2]})]  # wider than the kernel


@gen("conv2d")
def g_conv2d(op, g):
    for dt in FLOATS:
        for sx, sw, hb, at in _conv_variants():
            ops = [g.floats(sx, dt), g.floats(sw, dt)] + ([g.floats([sw[0]], dt)] if hb else [])
            f = lambda x, w, b=None, at=at: F.conv2d(x, w, b, **at)
            case(op, ops, at, f, tol="red", absref=f)
        x = g.floats([1, 2, 4, 4], dt, special=True)
        f = lambda x, w, at={"padding": [1, 1]}: F.conv2d(x, w, None, **at)
        case(op, [x, g.floats([2, 2, 2, 2], dt)], {"padding": [1, 1]}, f, tol="red", absref=f,
             tag="special")
        # inf and NaN weights meet the zero padding: 0 * inf is NaN, as in PyTorch
        w = g.floats([2, 2, 3, 3], dt, special=True)
        case(op, [g.floats([1, 2, 4, 4], dt), w], {"padding": [1, 1]}, f, tol="red", absref=f,
             tag="special")


POOL_VARIANTS = [([1, 2, 5, 5], {"kernel": [2, 2]}),
                 ([2, 3, 6, 5], {"kernel": [3, 3], "stride": [2, 1], "padding": [1, 1]}),
                 ([2, 4, 4], {"kernel": [2, 3], "stride": [1, 1]}),
                 ([1, 1, 7, 6], {"kernel": [3, 2], "stride": [2, 3], "padding": [1, 0]}),
                 ([0, 2, 4, 4], {"kernel": [2, 2]})]


def _pool_args(at):
    return dict(kernel_size=at["kernel"], stride=at.get("stride", at["kernel"]),
                padding=at.get("padding", [0, 0]))


@gen("max_pool2d", "avg_pool2d")
def g_pool(op, g):
    fn = F.max_pool2d if op == "max_pool2d" else F.avg_pool2d
    tol = "exact" if op == "max_pool2d" else "red"
    for dt in FLOATS:
        for i, (shape, at) in enumerate(POOL_VARIANTS):
            special = i == 1
            x = g.floats(shape, dt, special=special)
            f = lambda x, at=at: fn(x, **_pool_args(at))
            case(op, [x], at, f, tol=tol, absref=f if tol == "red" else None,
                 tag="special" if special else "")


@gen("adaptive_avg_pool2d")
def g_adaptive(op, g):
    variants = [([1, 2, 5, 7], [2, 3]), ([2, 3, 4, 4], [1, 1]), ([2, 6, 6], [3, 4]),
                ([1, 1, 3, 3], [5, 5]),
                ([1, 2, 7, 5], [3, 2])]
    for dt in FLOATS:
        for i, (shape, osz) in enumerate(variants):
            f = lambda x, o=osz: F.adaptive_avg_pool2d(x, o)
            case(op, [g.floats(shape, dt, special=(i == 4))], {"output_size": osz}, f, tol="red",
                 absref=f, tag="special" if i == 4 else "")


def _sdpa(q, k, v, mask=None, is_causal=False, scale=None):
    """scaled_dot_product_attention as PyTorch >= 2.5 defines it, including
    zeros for a query row with every key masked (torch 1.13 has none)."""
    sc = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    s = torch.matmul(q, k.transpose(-2, -1)) * sc
    L, S = s.shape[-2], s.shape[-1]
    if is_causal:
        s = s.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), -INF)
    if mask is not None:
        s = s.masked_fill(~mask, -INF) if mask.dtype == torch.bool else s + mask
    dead = torch.isneginf(s).all(-1, keepdim=True)
    p = torch.where(dead, torch.zeros((), dtype=s.dtype), torch.softmax(s, -1))
    return torch.matmul(p, v)


@gen("sdpa")
def g_sdpa(op, g):
    for dt in FLOATS:
        B = []
        B.append(([2, 3, 4], [2, 5, 4], [2, 5, 6], None, {}))
        B.append(([1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], None, {"is_causal": True}))
        m = g.bools([3, 5])
        m[1, :] = False  # a fully masked row: zeros
        m[0, 0] = True
        B.append(([2, 3, 4], [2, 5, 4], [2, 5, 3], m, {}))
        fm = g.floats([2, 1, 3, 5], dt, scale=1.0)
        fm[0, 0, 2, :] = -INF
        fm[1, 0, 0, 1] = -INF
        B.append(([2, 2, 3, 8], [2, 2, 5, 8], [2, 2, 5, 8], fm, {"scale": 0.3}))
        B.append(([2, 2, 4, 8], [1, 2, 6, 8], [2, 1, 6, 4], None, {}))
        B.append(([4, 2], [2, 2], [2, 3], None, {"is_causal": True}))
        B.append(([1, 2, 4], [1, 0, 4], [1, 0, 2], None, {}))  # no keys at all: zeros
        for sq, sk, sv, mask, at in B:
            ops = [g.floats(sq, dt), g.floats(sk, dt), g.floats(sv, dt)]
            if mask is not None:
                ops.append(mask)
            f = lambda q, k, v, m=None, at=at: _sdpa(q, k, v, m, **at)
            case(op, ops, at, f, tol="red")


# -- across ops: wide integers, the largest rank -------------------------------

BIG = [2**62 + 1, -(2**62) - 3, 2**53 + 1, -(2**53) - 1, 2**61 + 7, 9007199254740993, -5, 0]


@gen("add", "sub", "maximum", "minimum", "eq", "lt", "ge", "neg", "abs", "sign", "div",
     "remainder", "sum", "max", "min", "argmax", "where", "concat", "gather", "clamp", "relu")
def g_big_i64(op, g):
    """i64 values beyond 2^53, where a double loses the low bits: an integer
    path through double shows here."""
    x = torch.tensor(BIG, dtype=torch.int64).reshape(2, 4)
    y = torch.tensor(BIG[::-1], dtype=torch.int64).reshape(2, 4)
    y2 = torch.tensor([2**61 + 1, -(2**60) + 5, 2**53 + 1, -(2**53), 3, 9007199254740992, 7, 1],
                      dtype=torch.int64).reshape(2, 4)
    tag = "big"
    if op in ("add", "sub"):
        case(op, [x // 2, y // 2], ref=BINARY[op], tol="exact", tag=tag)
        case(op, [x // 2, Lit(2**61 + 1)], ref=BINARY[op], tol="exact", tag=tag)
    elif op in ("maximum", "minimum", "eq", "lt", "ge"):
        case(op, [x, y2], ref=BINARY[op], tol="exact", tag=tag)
        case(op, [x, Lit(2**53 + 1)], ref=BINARY[op], tol="exact", tag=tag)
    elif op in ("neg", "abs", "sign", "relu"):
        case(op, [x], ref=getattr(torch, op), tol="exact", tag=tag)
    elif op in ("div", "remainder"):
        case(op, [x, _nonzero(torch.tensor([3, -7, 2**40 + 1, 5, -1, 2**62, 9, 11],
                                           dtype=torch.int64).reshape(2, 4))],
             ref=BINARY[op], tol="exact", tag=tag)
    elif op == "sum":
        case(op, [x // 4], {"axes": [-1]}, lambda t: torch.sum(t, -1), tol="exact", tag=tag)
    elif op in ("max", "min"):
        case(op, [y2], {"axes": [0]}, lambda t: RED_FN[op](t, [0], False), tol="exact", tag=tag)
    elif op == "argmax":
        t = torch.tensor([2**60 + 1, 2**60 + 2, 2**60, 2**60 + 2], dtype=torch.int64)
        case(op, [t], {}, torch.argmax, tag=tag)
    elif op == "where":
        case(op, [g.bools([2, 4]), x, y2], ref=torch.where, tol="exact", tag=tag)
    elif op == "concat":
        case(op, [x, y2], {"axis": 0}, lambda a, b: torch.cat([a, b], 0), tol="exact", tag=tag)
    elif op == "gather":
        idx = torch.tensor([[3, 0], [1, 1]], dtype=torch.int64)
        case(op, [x, idx], {"axis": 1}, lambda a, i: torch.gather(a, 1, i), tol="exact", tag=tag)
    elif op == "clamp":
        case(op, [x], {"min": -2**53, "max": 2**53}, lambda t: torch.clamp(t, -2**53, 2**53),
             tol="exact", tag=tag)


@gen("add", "where", "permute", "sum", "expand")
def g_rank8(op, g):
    """The largest rank (FUSEC_MAX_RANK = 8), broadcasting in every dim."""
    sa, sb = [1, 2, 1, 2, 1, 2, 1, 3], [2, 1, 2, 1, 2, 1, 2, 1]
    if op == "add":
        case(op, [g.floats(sa, "f32"), g.floats(sb, "f32")], ref=torch.add, tag="rank8")
    elif op == "where":
        case(op, [g.bools(sb), g.ints(sa, "i16", -9, 9), g.ints([3], "i16", -9, 9)],
             ref=torch.where, tol="move", tag="rank8")
    elif op == "permute":
        dims = [7, 0, 6, 1, 5, 2, 4, 3]
        case(op, [g.floats([2, 1, 2, 3, 1, 2, 2, 2], "bf16")], {"dims": dims},
             lambda x: x.permute(dims), tol="move", tag="rank8")
    elif op == "sum":
        case(op, [g.floats(sa, "f64")], {"axes": [1, 3, -1]}, lambda x: torch.sum(x, [1, 3, 7]),
             tol="red", absref=lambda x: torch.sum(x, [1, 3, 7]), tag="rank8")
    elif op == "expand":
        case(op, [g.ints(sb, "u8", 0, 9)], {"shape": [2, 3, 2, 3, 2, 3, 2, 3]},
             lambda x: x.expand(2, 3, 2, 3, 2, 3, 2, 3).contiguous(), tol="move", tag="rank8")


# -- integer division by zero (run-time errors) --------------------------------

@gen("div", "remainder")
def g_int_div_by_zero(op, g):
    for dt in ["i64", "i32", "i8", "u8"]:
        x = g.ints([2, 3], dt, 1, 9)
        y = g.ints([3], dt, 1, 9)
        y[1] = 0
        err_case(op, [x, y], {}, (dt, [2, 3]))
    err_case(op, [g.ints([4], "i16", 1, 9), Lit(0)], {}, ("i16", [4]))


# ---- comparison --------------------------------------------------------------

def _ulp(r, dtype):
    mant, emin = ULP[IRNAME[dtype]]
    a = np.abs(r)
    e = np.floor(np.log2(np.where(a > 0, a, 1.0)))
    e = np.maximum(np.where(a > 0, e, emin), emin)
    return np.exp2(e - mant)


def compare(got, ref, tol, scale):
    """(ok, message): got against one reference (torch tensors, same dtype)."""
    if got.shape != ref.shape:
        return False, "shape %s, expected %s" % (list(got.shape), list(ref.shape))
    if not ref.is_floating_point():
        g, r = got.numpy(), ref.numpy()
        bad = np.argwhere(g != r)
        if len(bad):
            i = tuple(bad[0])
            return False, "%d of %d elements differ; at %s got %s, expected %s" % (
                len(bad), g.size, list(i), g[i], r[i])
        return True, "exact"
    g = got.double().numpy()
    r = ref.double().numpy()
    gn, rn = np.isnan(g), np.isnan(r)
    if (gn != rn).any():
        i = tuple(np.argwhere(gn != rn)[0])
        return False, "NaN in different places; at %s got %r, expected %r" % (list(i), g[i], r[i])
    fin = ~rn
    inf = fin & (np.isinf(g) | np.isinf(r))
    if (g[inf] != r[inf]).any():
        i = tuple(np.argwhere(inf & (g != r))[0])
        return False, "inf mismatch at %s: got %r, expected %r" % (list(i), g[i], r[i])
    fin &= ~inf
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.where(fin, np.abs(g - r), 0.0)
    if tol in ("exact", "move"):
        if (d > 0).any():
            i = tuple(np.argwhere(d > 0)[0])
            return False, "not exact: at %s got %r, expected %r (max |diff| %.3g)" % (
                list(i), g[i], r[i], d.max())
        if tol == "move":
            z = fin & (r == 0) & (np.signbit(g) != np.signbit(r))
            if z.any():
                i = tuple(np.argwhere(z)[0])
                return False, "sign of zero differs at %s: got %r, expected %r" % (
                    list(i), g[i], r[i])
        return True, "exact"
    s = np.zeros(r.shape) if scale is None else scale.numpy()
    if scale is None and tol == "red":
        s = np.full(r.shape, np.abs(r[fin]).max() if fin.any() else 0.0)
    name = IRNAME[ref.dtype]
    if name in RTOL:
        rtol = RTOL[name][tol]
        allowed = rtol * np.abs(r) + rtol * s + FLOOR[name]
    else:
        allowed = _ulp(r, ref.dtype) + HALF_EXTRA[tol] * s
    ratio = np.where(fin, d / allowed, 0.0)
    if ratio.size and ratio.max() > 1:
        i = tuple(np.unravel_index(np.argmax(ratio), ratio.shape))
        return False, "max error %.3g at %s: got %r, expected %r (allowed %.3g, %.2fx)" % (
            d[i], list(i), g[i], r[i], allowed[i], ratio[i])
    err = float(d.max()) if d.size else 0.0
    return True, "max error %.3g" % err


# ---- running -----------------------------------------------------------------

def save_npy(t, folder, name):
    if t.dtype == torch.bfloat16:
        np.save(os.path.join(folder, name + ".bf16.npy"),
                t.contiguous().view(torch.int16).numpy().view(np.uint16))
    else:
        np.save(os.path.join(folder, name + ".npy"), t.contiguous().numpy())


def load_npy(folder, name, dtype):
    """The i-th result as a torch tensor, or (None, why)."""
    bf = os.path.join(folder, name + ".bf16.npy")
    plain = os.path.join(folder, name + ".npy")
    if dtype == torch.bfloat16:
        if not os.path.exists(bf):
            found = " (found %s.npy)" % name if os.path.exists(plain) else ""
            return None, "no %s.bf16.npy%s" % (name, found)
        a = np.load(bf)
        if a.dtype != np.uint16:
            return None, "%s.bf16.npy holds %s, expected <u2" % (name, a.dtype)
        bits = torch.from_numpy(a.astype(np.uint16).view(np.int16).copy())
        return bits.view(torch.bfloat16), None
    if not os.path.exists(plain):
        return None, "no %s.npy" % name
    a = np.load(plain)
    t = torch.from_numpy(a.copy(order="C"))  # not ascontiguousarray: it makes 0-d 1-d
    if t.dtype != dtype:
        return None, "%s.npy holds %s, expected %s" % (name, a.dtype, IRNAME[dtype])
    return t, None


def run_case(c, folder, fusec, no_run):
    """Write the case into folder, run fusec, check.  Returns (ok, message)."""
    os.makedirs(os.path.join(folder, "in"), exist_ok=True)
    os.makedirs(os.path.join(folder, "out"), exist_ok=True)
    irp = os.path.join(folder, "case.ir")
    with open(irp, "w") as f:
        f.write(c.ir)
    for nm, t in c.inputs:
        save_npy(t, os.path.join(folder, "in"), nm)
    if c.refs is not None:
        save_npy(c.refs[0], folder, "expected")
    if no_run:
        return True, "written"
    cmd = [fusec, "run", irp, "--inputs", os.path.join(folder, "in"),
           "--outputs", os.path.join(folder, "out"), "--backend", "interp"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False, "fusec timed out"
    msg = (p.stderr.strip() or p.stdout.strip()).replace("\n", " | ")[:300]
    if "runtime error:" in p.stderr or "Sanitizer" in p.stderr:  # UBSan may let it go on
        return False, "sanitizer report: " + msg
    if c.error is not None:
        outs = os.listdir(os.path.join(folder, "out"))
        if p.returncode != 1:
            return False, "expected exit 1 (%s error), got %d: %s" % (c.error, p.returncode, msg)
        if c.error not in p.stderr:
            return False, "exit 1 but the message does not mention '%s': %s" % (c.error, msg)
        if any(o.startswith("result") for o in outs):
            return False, "exit 1 but result files were written: %s" % outs
        return True, "error: " + msg
    if p.returncode != 0:
        return False, "fusec exited %d: %s" % (p.returncode, msg)
    got, why = load_npy(os.path.join(folder, "out"), "result0", c.refs[0].dtype)
    if got is None:
        return False, why
    best = None
    for k, r in enumerate(c.refs):
        ok, m = compare(got, r, c.tol, c.scale)
        if ok:
            c.matched = k
            return True, m
        best = best or m
    return False, best


def main():
    ap = argparse.ArgumentParser(description="Check fusec's reference interpreter against PyTorch.")
    ap.add_argument("--fusec", default=os.environ.get("FUSEC"), help="path to the fusec binary")
    ap.add_argument("--filter", help="comma-separated op names or globs (fnmatch)")
    ap.add_argument("--keep", help="write the cases into this folder and keep them")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--no-run", action="store_true", help="only write the cases (with --keep)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if not args.no_run:
        if not args.fusec:
            ap.error("--fusec PATH is required")
        if not os.access(args.fusec, os.X_OK):
            print("oracle: fusec binary %s not found or not executable" % args.fusec,
                  file=sys.stderr)
            return 2
        args.fusec = os.path.abspath(args.fusec)
    pats = [p.strip() for p in args.filter.split(",")] if args.filter else None

    t0 = time.time()
    for ops, fn in GENERATORS:
        for op in ops:
            if pats and not any(fnmatch.fnmatchcase(op, p) for p in pats):
                continue
            fn(op, Gen(zlib.crc32(op.encode())))
    if pats and not CASES:
        print("oracle: no op matches --filter %s" % args.filter, file=sys.stderr)
        return 2
    t1 = time.time()

    root = args.keep or tempfile.mkdtemp(prefix="fusec-oracle-")
    if args.keep:
        os.makedirs(root, exist_ok=True)
    if args.keep and not pats:  # a full run replaces every case folder of an earlier one
        for old in os.listdir(root):
            if old[:4].isdigit() and old[4:5] == "_":
                shutil.rmtree(os.path.join(root, old), ignore_errors=True)
    folders = [os.path.join(root, c.name) for c in CASES]
    for f in folders:
        shutil.rmtree(f, ignore_errors=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        results = list(ex.map(lambda ic: run_case(ic[1], folders[ic[0]], args.fusec, args.no_run),
                              enumerate(CASES)))
    t2 = time.time()

    per_op = {}
    npass = nfail = 0
    for c, f, (ok, m) in zip(CASES, folders, results):
        po = per_op.setdefault(c.op, [0, 0])
        if ok:
            npass += 1
            po[0] += 1
        else:
            nfail += 1
            po[1] += 1
            print("FAIL %s: %s: %s" % (c.name, os.path.join(f, "case.ir"), m))
    if args.verbose:
        print("per op (passed/failed):")
        for op in sorted(per_op):
            p, q = per_op[op]
            print("  %-20s %4d passed %4d failed" % (op, p, q))
        alt = {}
        for c in CASES:
            if c.matched:
                alt.setdefault(c.op, []).append(c.name.split(".")[1].split("_")[0])
        if alt:
            print("cases matching only a reference computed in a wider dtype (or an 'also'):")
            for op in sorted(alt):
                print("  %-20s %d (%s)" % (op, len(alt[op]), ", ".join(sorted(set(alt[op])))))
        if FALLBACKS:
            print("torch 1.13 had no CPU kernel, reference computed in f32 and rounded:")
            for op in sorted(FALLBACKS):
                print("  %-20s %s" % (op, ", ".join(sorted(FALLBACKS[op]))))
        print("generated %d cases in %.1fs, ran them in %.1fs (%d jobs)" % (
            len(CASES), t1 - t0, t2 - t1, args.jobs))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
        if nfail:
            print("(rerun with --keep DIR to keep the failing cases' files)")
    print("%d passed, %d failed" % (npass, nfail))
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
