#!/usr/bin/python3
"""npy_compat.py - NumPy's side of the .npy compatibility test
(tests/lit/cli/npy-numpy.ir).

  npy_compat.py gen DIR          write one input per parameter of npy-numpy.ir
                                 with NumPy (format versions 1.0, 2.0 and 3.0)
  npy_compat.py check IN OUT     load fusec's result<i>.npy files with NumPy and
                                 check each equals input i bit for bit, and that
                                 fusec wrote format 1.0 with 64-byte aligned data

The graph returns its parameters unchanged, so every byte fusec read from a
NumPy file must come back out in a file NumPy reads.  bf16 travels as '<u2'
bit patterns in NAME.bf16.npy.  Prints "npy-compat: ok" on success; raises
(non-zero exit) with the first difference otherwise.
"""
import os
import sys

import numpy as np
from numpy.lib import format as npf

# (parameter name, dtype, shape, format version); order = the IR's parameters.
PARAMS = [
    ("a_f64", "<f8", (2, 3), (1, 0)),
    ("b_f32", "<f4", (4,), (1, 0)),
    ("c_f16", "<f2", (3, 2), (2, 0)),
    ("d_bf16", "<u2", (2, 2), (1, 0)),
    ("e_i64", "<i8", (2, 2, 2), (3, 0)),
    ("f_i32", "<i4", (5,), (1, 0)),
    ("g_i16", "<i2", (0, 3), (1, 0)),
    ("h_i8", "|i1", (3,), (1, 0)),
    ("i_u8", "|u1", (2, 3), (1, 0)),
    ("j_bool", "|b1", (4,), (1, 0)),
    ("k_scalar", "<f4", (), (1, 0)),
]


def file_name(name, descr):
    return name + (".bf16.npy" if descr == "<u2" else ".npy")


def make(descr, shape, rng):
    dt = np.dtype(descr)
    n = int(np.prod(shape))
    if dt.kind == "f":
        v = rng.standard_normal(n).astype(dt)
        specials = np.array([np.nan, np.inf, -np.inf, -0.0], dtype=dt)
        v[: min(n, 4)] = specials[: min(n, 4)]
    elif descr == "<u2":  # bf16 bits of some floats, with inf and NaN
        f = rng.standard_normal(n).astype("<f4")
        f[:2] = [np.inf, np.nan][: min(n, 2)]
        v = (f.view("<u4") >> 16).astype("<u2")
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        v = rng.integers(info.min, info.max, n, endpoint=True, dtype=dt)
        v[: min(n, 2)] = [info.min, info.max][: min(n, 2)]
    else:
        v = np.array([True, False, True, True][:n], dtype=dt)
    return v.reshape(shape)


def gen(d):
    rng = np.random.default_rng(7)
    for name, descr, shape, version in PARAMS:
        a = make(descr, shape, rng)
        with open(os.path.join(d, file_name(name, descr)), "wb") as f:
            npf.write_array(f, a, version=version, allow_pickle=False)


def check(ind, outd):
    for i, (name, descr, shape, _) in enumerate(PARAMS):
        want = np.load(os.path.join(ind, file_name(name, descr)))
        path = os.path.join(outd, file_name("result%d" % i, descr))
        got = np.load(path, allow_pickle=False)
        with open(path, "rb") as f:
            version = npf.read_magic(f)
            assert version == (1, 0), "%s: version %s" % (path, version)
            hshape, fortran, dtype = npf.read_array_header_1_0(f)
            assert f.tell() % 64 == 0, "%s: data at offset %d" % (path, f.tell())
            assert not fortran
        assert got.dtype == np.dtype(descr), "%s: dtype %s, want %s" % (path, got.dtype, descr)
        assert got.shape == shape and hshape == shape, "%s: shape %s" % (path, got.shape)
        # bit for bit, so NaN payloads and -0.0 count too
        assert want.tobytes() == got.tobytes(), "%s: data differs" % path
    print("npy-compat: ok")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
