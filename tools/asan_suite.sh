#!/usr/bin/env bash
# asan_suite.sh - the test suite again, in a build with ASan + UBSan.
#
#   tools/asan_suite.sh SRC BUILDDIR [GENERATOR] [CC] [FUSEC_CUDA] [FUSEC_LLVM]
#
# Configures BUILDDIR as a Debug build with FUSEC_SANITIZE=address,undefined
# and FUSEC_SUITE_INNER=ON (so the inner tree registers the unit, lit and
# oracle tests but not fuzz.*, install or asan_suite itself), builds it and
# runs its ctest.  ctest's `asan_suite` test calls this with the outer tree's
# generator, compiler and backend options; it can also be run by hand.
# Any sanitizer report aborts the process that made it (-fno-sanitize-recover),
# so it fails the test it happened in.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 SRC BUILDDIR [GENERATOR] [CC] [FUSEC_CUDA] [FUSEC_LLVM]" >&2
    exit 2
fi
src=$1
build=$2
gen=${3:-Ninja}
cc=${4:-cc}
cuda=${5:-AUTO}
llvm=${6:-AUTO}
jobs=${FUSEC_JOBS:-$(nproc 2>/dev/null || echo 2)}

cmake -S "$src" -B "$build" -G "$gen" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Debug \
    -DFUSEC_SANITIZE=address,undefined -DFUSEC_SUITE_INNER=ON \
    -DFUSEC_CUDA="$cuda" -DFUSEC_LLVM="$llvm"
cmake --build "$build" -j "$jobs"

# Leaks are errors; halt on the first UBSan report with a stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure -j "$jobs"
