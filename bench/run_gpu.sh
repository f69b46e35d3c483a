#!/usr/bin/env bash
# run_gpu.sh - the whole benchmark in one command, on the GPU machine.
#
#   bash bench/run_gpu.sh [compare_torch.py options]     e.g. --small, --no-latency
#
# 1. builds fusec (Release, CUDA on, LLVM off) into build/ (FUSEC_BENCH_BUILD
#    to change it): only the tool and libfusec.so, not the tests;
# 2. runs bench/compare_torch.py over bench/graphs/*.ir: fusec against torch
#    eager and torch.compile, checked and timed, then compile latency in
#    fresh processes; writes results.json, results.md and bench.log;
# 3. draws results.png with bench/plot.py.
# Everything lands in $OUT (the device tool's result folder) when it is set,
# else in bench/out/.  The exit status is compare_torch.py's: non-zero when
# a graph failed its check or could not run (the table says which).
#
# What the GPU machine lacks.  It has CMake, ninja, the CUDA toolkit, python3
# with torch, triton and matplotlib, but no package registry, and fusec's
# kernel cache needs xxhash.h (Debian's libxxhash-dev; header only).  Where
# the system has no xxhash.h, the .deb files in $FUSEC_DEPS_DIR (default
# .deps/ in the repository root; put them there on the development machine
# with `apt-get download libxxhash-dev libxxhash0`, and carry the folder if
# it is ignored) are unpacked with dpkg-deb into the build folder and the
# header is passed to CMake, which is how tests/gpu/run_gpu.sh gets it too.
#
# Time.  The device tool stops a command after 10 minutes.  FUSEC_BENCH_BUDGET
# (seconds, default 570) bounds the whole script: compare_torch.py gets
# what is left after the build as --deadline, skips the graphs it has no time
# for (their rows say so) and the latency runs if fewer than 90 s remain, so
# that the JSON and the plot are always written.  results.json is also
# rewritten after every graph.
#
# The commit shown in the results is $FUSEC_COMMIT when set (the device
# machine's copy of the tree may have no .git), else `git rev-parse`.
set -euo pipefail

t_start=$(date +%s)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FUSEC_BENCH_BUILD:-$ROOT/build}
DEPS=${FUSEC_DEPS_DIR:-$ROOT/.deps}
OUTDIR=${OUT:-$ROOT/bench/out}
BUDGET=${FUSEC_BENCH_BUDGET:-570}
PY=${PYTHON:-python3}
mkdir -p "$OUTDIR"
cd "$ROOT"

log() { printf '\033[1m== %s\033[0m\n' "$*"; }

log "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null ||
    echo "(nvidia-smi failed)"
"$PY" -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda,
      "triton", triton.__version__, "gpu", torch.cuda.is_available())' || true

# ---- xxhash.h ---------------------------------------------------------------
cmake_args=()
have_xxhash=0
for d in /usr/include /usr/local/include; do
    [ -f "$d/xxhash.h" ] && have_xxhash=1
done
if [ "$have_xxhash" = 0 ]; then
    debs=()
    if [ -d "$DEPS" ]; then
        mapfile -t debs < <(find "$DEPS" -maxdepth 1 -name 'libxxhash*.deb' | sort)
    fi
    if [ ${#debs[@]} -eq 0 ]; then
        echo "run_gpu.sh: no xxhash.h on this machine and no libxxhash-dev .deb in $DEPS" >&2
        echo "  on the development machine: mkdir -p .deps && (cd .deps && apt-get download libxxhash-dev libxxhash0)" >&2
        exit 2
    fi
    root="$BUILD/.deps-root"
    mkdir -p "$root"
    for deb in "${debs[@]}"; do
        dpkg-deb -x "$deb" "$root"
    done
    if [ ! -f "$root/usr/include/xxhash.h" ]; then
        echo "run_gpu.sh: the .debs in $DEPS hold no usr/include/xxhash.h" >&2
        exit 2
    fi
    cmake_args+=("-DFUSEC_XXHASH_INCLUDE_DIR=$root/usr/include")
    log "xxhash.h from ${debs[*]##*/}"
fi

# ---- build ------------------------------------------------------------------
log "building fusec into ${BUILD#"$ROOT"/} (Release, CUDA on, LLVM off)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# FUSEC_WERROR=OFF: the GPU machine's compiler is not the one CI checks
# warnings with, and a new warning there must not stop a measurement.
if ! { cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
         -DFUSEC_LLVM=OFF -DFUSEC_CUDA=ON -DFUSEC_WERROR=OFF "${cmake_args[@]}" &&
       cmake --build "$BUILD" -j "$(nproc)" --target fusec fusec_shared; } \
       >"$OUTDIR/build.log" 2>&1; then
    tail -n 40 "$OUTDIR/build.log"
    echo "run_gpu.sh: the build failed (whole log: build.log in $OUTDIR)" >&2
    exit 2
fi
log "built in $(( $(date +%s) - t_start )) s"

# ---- benchmark ----------------------------------------------------------------
left=$(( BUDGET - ($(date +%s) - t_start) - 15 ))   # 15 s for the plot
log "bench/compare_torch.py (time budget ${left} s)"
set +e
PYTHONUNBUFFERED=1 "$PY" bench/compare_torch.py --lib "$BUILD/lib/libfusec.so" \
    --json "$OUTDIR/results.json" --markdown "$OUTDIR/results.md" --deadline "$left" "$@" \
    2>&1 | tee "$OUTDIR/bench.log"
status=${PIPESTATUS[0]}
set -e

if [ -f "$OUTDIR/results.json" ]; then
    log "plot"
    "$PY" bench/plot.py "$OUTDIR/results.json" -o "$OUTDIR/results.png" || true
fi
log "done in $(( $(date +%s) - t_start )) s; results in $OUTDIR"
exit "$status"
