#!/usr/bin/env bash
# run_gpu.sh - the one script for the GPU machine: builds fusec with the CUDA
# backend and runs the GPU tests (and, with --bench, the benchmarks).
#
#   bash tests/gpu/run_gpu.sh [--quick] [--bench] [--no-build] [-- GPU_TEST_ARGS...]
#
#   --quick     200 generated graphs instead of 2,000 (a smoke run)
#   --bench     afterwards, bench/run_gpu.sh on the same build
#   --no-build  use the build as it is (a second run on a warm machine)
#   GPU_TEST_ARGS go to gpu_test (e.g. --only big,oom  or  -v)
#
# Steps:
#   1. xxhash.h: the GPU machine (Ubuntu 24.04: CMake, ninja, the CUDA
#      toolkit, no registry, no LLVM) has none, so Debian's libxxhash-dev and
#      libxxhash0 .debs from $FUSEC_DEPS_DIR (default .deps/ in the tree: on
#      the development machine `mkdir -p .deps && cd .deps && apt-get download
#      libxxhash-dev libxxhash0`; .deps/ is ignored by git, so the device tool
#      must carry it) are unpacked with dpkg-deb and the header handed to
#      CMake (FUSEC_XXHASH_INCLUDE_DIR; fusec uses xxHash header-only);
#   2. configure and build everything (Release, CUDA on, LLVM off, warnings
#      not fatal: the GPU machine's compiler is not CI's) into $FUSEC_GPU_BUILD
#      (default build-gpu/ in the tree, ignored by git, so it survives between
#      commands on a warm machine and rebuilds are incremental), ninja -j16;
#   3. tests/unit/test_rt_cuda (NVRTC, architecture choice, no-driver path);
#   4. a CLI smoke run: `fusec run examples/*.ir --backend cuda`, then
#      `fusec bench examples/*.ir --json` (real CUDA events; cli_bench.log);
#   5. tests/gpu/gpu_test --require-gpu over the examples, every lit test graph
#      and the benchmark graphs, plus 2,000 generated graphs (every group:
#      diff, big, device_api, misaligned, blas, threads, cache, bench, nvrtc_failure,
#      oom, lost_context) with FUSEC_CUBLASLT=1, every GEMM through cuBLASLt;
#      then the diff and blas groups again with FUSEC_CUBLASLT=0, so that
#      fusec's own GEMM kernels stay tested;
#   6. tests/diff/difftest --backend cuda, when that difftest knows the cuda
#      backend (its noise oracle is the stricter differential check);
#   7. with --bench: bench/run_gpu.sh with FUSEC_BENCH_BUILD set to this build.
#
# The kernel cache lives in the build folder ($FUSEC_CACHE_DIR, default
# build-gpu/kcache), so a second run compiles nothing it compiled before.
# Logs go to $OUT (the device tool's result folder) when set, else to the
# build folder.  Exit status: 0 when every step passed, 1 when a test
# failed, 2 when the build or setup failed.
set -uo pipefail

t_start=$(date +%s)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${FUSEC_GPU_BUILD:-$ROOT/build-gpu}
DEPS=${FUSEC_DEPS_DIR:-$ROOT/.deps}
JOBS=${FUSEC_GPU_JOBS:-16}
COUNT=2000
bench=0
build=1
gpu_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) COUNT=200 ;;
    --bench) bench=1 ;;
    --no-build) build=0 ;;
    --) shift; gpu_args=("$@"); break ;;
    *) echo "run_gpu.sh: unknown option $1 (see the header of tests/gpu/run_gpu.sh)" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$BUILD"
LOGS=${OUT:-$BUILD/logs}
mkdir -p "$LOGS"
export FUSEC_CACHE_DIR=${FUSEC_CACHE_DIR:-$BUILD/kcache}
cd "$ROOT" || exit 2

log() { printf '\n== %s (%d s)\n' "$*" "$(( $(date +%s) - t_start ))"; }
failures=()

log "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>/dev/null ||
    echo "(nvidia-smi failed or is missing)"
command -v nvcc >/dev/null && nvcc --version | tail -n 2
echo "cores: $(nproc), build: ${BUILD#"$ROOT"/}, kernel cache: $FUSEC_CACHE_DIR"

# ---- 1. xxhash.h ------------------------------------------------------------------
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DFUSEC_LLVM=OFF -DFUSEC_CUDA=ON -DFUSEC_WERROR=OFF)
if [ ! -f /usr/include/xxhash.h ] && [ ! -f /usr/local/include/xxhash.h ]; then
    mapfile -t debs < <(find "$DEPS" -maxdepth 1 -name 'libxxhash*.deb' 2>/dev/null | sort)
    if [ ${#debs[@]} -eq 0 ]; then
        echo "run_gpu.sh: no xxhash.h here and no libxxhash-dev .deb in $DEPS" >&2
        echo "  on the development machine: mkdir -p .deps && (cd .deps && apt-get download libxxhash-dev libxxhash0)," >&2
        echo "  and carry .deps to this machine (it is ignored by git)" >&2
        exit 2
    fi
    prefix="$BUILD/.deps-root" # where bench/run_gpu.sh unpacks them too
    mkdir -p "$prefix"
    for deb in "${debs[@]}"; do
        dpkg-deb -x "$deb" "$prefix" || { echo "run_gpu.sh: cannot unpack $deb" >&2; exit 2; }
    done
    if [ ! -f "$prefix/usr/include/xxhash.h" ]; then
        echo "run_gpu.sh: the .debs in $DEPS hold no usr/include/xxhash.h" >&2
        exit 2
    fi
    cmake_args+=("-DFUSEC_XXHASH_INCLUDE_DIR=$prefix/usr/include")
    echo "xxhash.h from ${debs[*]##*/}"
fi

# ---- 2. build ------------------------------------------------------------------------
if [ "$build" = 1 ]; then
    log "configure and build (Release, CUDA on, LLVM off, -j$JOBS)"
    generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    [ -f "$BUILD/CMakeCache.txt" ] && generator=() # keep the generator it was made with
    if ! cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" "${cmake_args[@]}" >"$LOGS/configure.log" 2>&1; then
        tail -n 40 "$LOGS/configure.log"
        echo "run_gpu.sh: configuring failed (configure.log)" >&2
        exit 2
    fi
    grep -E "fusec: CUDA|fusec [0-9]" "$LOGS/configure.log" || true
    if ! cmake --build "$BUILD" -j "$JOBS" >"$LOGS/build.log" 2>&1; then
        grep -E "error|FAILED" "$LOGS/build.log" | head -n 40
        echo "run_gpu.sh: the build failed (build.log)" >&2
        exit 2
    fi
fi
FUSEC="$BUILD/bin/fusec"
[ -x "$FUSEC" ] || { echo "run_gpu.sh: no $FUSEC (build first)" >&2; exit 2; }

# gpu_test: built by tests/gpu/CMakeLists.txt when tests/CMakeLists.txt adds
# that folder; otherwise compiled here against the library just built.
GPU_TEST="$BUILD/tests/gpu/gpu_test"
if [ ! -x "$GPU_TEST" ] || [ "$ROOT/tests/gpu/gpu_test.c" -nt "$GPU_TEST" ]; then
    cuda_inc=$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")/../include
    nvrtc=$(sed -n 's/^CUDA_nvrtc_LIBRARY:FILEPATH=//p' "$BUILD/CMakeCache.txt" | head -n 1)
    mkdir -p "$BUILD/tests/gpu"
    xx=()
    [ -n "${prefix:-}" ] && xx=(-isystem "$prefix/usr/include")
    if ! cc -std=c11 -O2 -g -I"$ROOT" -I"$ROOT/include" -isystem "$cuda_inc" "${xx[@]}" \
            "$ROOT/tests/gpu/gpu_test.c" "$ROOT/tests/diff/gen.c" "$ROOT/tests/diff/compare.c" \
            "$BUILD/lib/libfusec.a" "${nvrtc:--lnvrtc}" -Wl,-rpath,"$(dirname "${nvrtc:-/usr/local/cuda/lib64/x}")" \
            -lm -lpthread -ldl -o "$GPU_TEST" >"$LOGS/gpu_test_build.log" 2>&1; then
        cat "$LOGS/gpu_test_build.log"
        echo "run_gpu.sh: cannot build gpu_test (gpu_test_build.log)" >&2
        exit 2
    fi
fi

# ---- 3. unit test of the runtime ----------------------------------------------------------
log "tests/unit/test_rt_cuda"
if [ -x "$BUILD/tests/unit/test_rt_cuda" ]; then
    "$BUILD/tests/unit/test_rt_cuda" 2>&1 | tee "$LOGS/test_rt_cuda.log" | tail -n 20
    [ "${PIPESTATUS[0]}" = 0 ] || failures+=("test_rt_cuda")
else
    echo "(not built)"
fi

# ---- 4. CLI smoke ---------------------------------------------------------------------------
log "fusec run examples/*.ir --backend cuda"
for ex in "$ROOT"/examples/*.ir; do
    t0=$(date +%s.%N)
    if timeout 300 "$FUSEC" run "$ex" --random-inputs 0 --backend cuda >"$LOGS/cli_$(basename "$ex" .ir).log" 2>&1; then
        printf '  ok    %-28s %s s\n' "$(basename "$ex")" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')"
    else
        printf '  FAIL  %s\n' "$(basename "$ex")"
        tail -n 15 "$LOGS/cli_$(basename "$ex" .ir).log" | sed 's/^/        /'
        failures+=("cli $(basename "$ex")")
    fi
done
log "fusec bench examples/*.ir --json (into cli_bench.log)"
: >"$LOGS/cli_bench.log"
for ex in "$ROOT"/examples/*.ir; do
    echo "# $(basename "$ex")" >>"$LOGS/cli_bench.log"
    if timeout 300 "$FUSEC" bench "$ex" --iters 20 --warmup 3 --json >>"$LOGS/cli_bench.log" 2>&1; then
        printf '  ok    %s\n' "$(basename "$ex")"
    else
        printf '  FAIL  %s\n' "$(basename "$ex")"
        failures+=("bench $(basename "$ex") (cli_bench.log)")
    fi
done

# ---- 5. gpu_test ---------------------------------------------------------------------------------
log "tests/gpu/gpu_test ($COUNT generated graphs, the examples, lit and benchmark graphs)"
mapfile -t files < <( { ls "$ROOT"/examples/*.ir; find "$ROOT/tests/lit" "$ROOT/tests/cg/graphs" "$ROOT/bench" -name '*.ir' 2>/dev/null; } | sort -u)
# FUSEC_CUBLASLT=1: every GEMM through cuBLASLt, small ones too (by default
# only those of 2^26 flops or more go there).
FUSEC_CUBLASLT=1 "$GPU_TEST" --require-gpu --count "$COUNT" --jobs "$(nproc)" "${gpu_args[@]}" "${files[@]}" 2>&1 |
    tee "$LOGS/gpu_test.log" | grep -E "^(RUN|PASS|FAIL|SKIP)|^  [^ %r]|passed, .* failed" | awk 'NR <= 400'
# (awk, not head: a reader that stops early would kill gpu_test with SIGPIPE)
[ "${PIPESTATUS[0]}" = 0 ] || failures+=("gpu_test (gpu_test.log)")
# The same files with cuBLASLt off: fusec's own GEMM kernels stay tested.
log "tests/gpu/gpu_test with FUSEC_CUBLASLT=0 (diff and blas groups, the same files, $((COUNT / 4)) generated graphs)"
FUSEC_CUBLASLT=0 "$GPU_TEST" --require-gpu --only diff,blas --count "$((COUNT / 4))" --jobs "$(nproc)" "${files[@]}" 2>&1 |
    tee "$LOGS/gpu_test_noblas.log" | grep -E "^(RUN|PASS|FAIL|SKIP)|passed, .* failed" | awk 'NR <= 100'
[ "${PIPESTATUS[0]}" = 0 ] || failures+=("gpu_test with FUSEC_CUBLASLT=0 (gpu_test_noblas.log)")

# ---- 6. difftest --backend cuda, when it exists ------------------------------------------------------
DIFFTEST="$BUILD/tests/diff/difftest"
if [ -x "$DIFFTEST" ] && "$DIFFTEST" --help 2>&1 | grep -q cuda; then
    log "tests/diff/difftest --backend cuda ($COUNT graphs)"
    "$DIFFTEST" --backend cuda --seed 1 --count "$COUNT" "$ROOT"/examples/*.ir >"$LOGS/difftest_cuda.log" 2>&1
    st=$?
    grep -E "^FAIL" "$LOGS/difftest_cuda.log" | head -n 40
    tail -n 2 "$LOGS/difftest_cuda.log"
    [ "$st" = 0 ] || failures+=("difftest --backend cuda (difftest_cuda.log)")
fi

# ---- 7. benchmarks ------------------------------------------------------------------------------------
if [ "$bench" = 1 ]; then
    log "bench/run_gpu.sh"
    FUSEC_BENCH_BUILD="$BUILD" bash "$ROOT/bench/run_gpu.sh" || failures+=("bench/run_gpu.sh")
fi

log "done"
if [ ${#failures[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${failures[@]}"
    echo "logs: $LOGS"
    exit 1
fi
echo "all GPU tests passed; logs: $LOGS"
exit 0
