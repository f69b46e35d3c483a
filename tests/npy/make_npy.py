#!/usr/bin/python3
"""make_npy.py - write one .npy file with NumPy, for the CLI's lit tests.

  make_npy.py PATH EXPR [--version MAJOR] [--cut N] [--append N]

EXPR is a Python expression with `np` in scope, e.g. "np.zeros((2, 3), 'f4')",
"np.arange(6, dtype='>f4')" or "np.asfortranarray(np.ones((2, 3)))".  The
array is written with numpy.lib.format.write_array (format version 1.0 unless
--version 2 or 3), then --cut N drops the last N bytes (a truncated file) and
--append N adds N zero bytes (trailing garbage).  Object arrays are
pickled, as np.save does, so the reader's refusal of them can be tested.
Folders are created.
"""
import argparse
import os

import numpy as np
from numpy.lib import format as npf

ap = argparse.ArgumentParser()
ap.add_argument("path")
ap.add_argument("expr")
ap.add_argument("--version", type=int, default=1)
ap.add_argument("--cut", type=int, default=0)
ap.add_argument("--append", type=int, default=0)
args = ap.parse_args()

arr = eval(args.expr, {"np": np})
os.makedirs(os.path.dirname(os.path.abspath(args.path)), exist_ok=True)
with open(args.path, "wb") as f:
    npf.write_array(f, np.asanyarray(arr), version=(args.version, 0), allow_pickle=True)
    f.write(b"\0" * args.append)
if args.cut:
    size = os.path.getsize(args.path)
    os.truncate(args.path, size - args.cut)
