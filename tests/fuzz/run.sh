#!/usr/bin/env bash
# run.sh - build one libFuzzer target and fuzz it for a while.
#
#   tests/fuzz/run.sh NAME WORKDIR [SECONDS]
#
# NAME is parse, roundtrip, passes or npy (tests/fuzz/fuzz_NAME.c).  The library
# sources (ir/ frontend/ passes/ codegen/ runtime/) are compiled directly with
# clang-14 -fsanitize=fuzzer-no-link,address,undefined into WORKDIR/obj -
# once, shared by every target, under a lock, and again only for files that
# changed - then linked with the target and -fsanitize=fuzzer.
#
# The fuzzer starts from the seed corpus tests/fuzz/corpus_NAME/ (read only)
# and keeps what it finds in WORKDIR/corpus_NAME/, so later runs start
# further in.  It runs for SECONDS (default 60; the FUSEC_FUZZ_SECONDS
# environment variable wins over both).  Any crash, sanitizer report, leak,
# timeout or out-of-memory fails the run; the input that caused it is saved
# under WORKDIR/artifacts_NAME/ and its path printed.  Reproduce it with
#   WORKDIR/fuzz_NAME WORKDIR/artifacts_NAME/crash-...
#
# Environment: FUSEC_FUZZ_CC (default clang-14), FUSEC_FUZZ_SECONDS.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 parse|roundtrip|passes|npy WORKDIR [SECONDS]" >&2
    exit 2
fi
name=$1
work=$2
secs=${FUSEC_FUZZ_SECONDS:-${3:-60}}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cc=${FUSEC_FUZZ_CC:-clang-14}

case $name in
    parse | roundtrip | passes) max_len=8192 dict=ir ;;
    npy) max_len=4096 dict= ;;
    *) echo "run.sh: unknown fuzz target '$name'" >&2; exit 2 ;;
esac
if ! command -v "$cc" >/dev/null; then
    echo "run.sh: $cc not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 1
fi

mkdir -p "$work/obj"
work=$(cd "$work" && pwd)
san=(-fno-omit-frame-pointer -fno-sanitize-recover=all)
cflags=(-std=c11 -g -O1 -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror
        -I"$root" -I"$root/include")

# ---- the library, compiled once for every target --------------------------
build_lib() {
    # Any header change rebuilds everything: simpler than dependency files,
    # and the whole library compiles in well under a minute.
    local newest_hdr=0 t src obj
    for hdr in "$root"/include/*.h "$root"/{ir,frontend,passes,codegen,runtime}/*.{h,def}; do
        [ -e "$hdr" ] || continue
        t=$(stat -c %Y "$hdr")
        [ "$t" -gt "$newest_hdr" ] && newest_hdr=$t
    done
    objs=()
    for src in "$root"/{ir,frontend,passes,codegen,runtime}/*.c; do
        [ -e "$src" ] || continue
        rel=${src#"$root"/}
        obj="$work/obj/${rel//\//_}.o"
        objs+=("$obj")
        if [ ! -e "$obj" ] || [ "$src" -nt "$obj" ] || [ "$(stat -c %Y "$obj")" -lt "$newest_hdr" ]; then
            echo "  CC $rel"
            "$cc" "${cflags[@]}" -fsanitize=fuzzer-no-link,address,undefined "${san[@]}" \
                -c "$src" -o "$obj.tmp"
            mv "$obj.tmp" "$obj"
        fi
    done
    printf '%s\n' "${objs[@]}" >"$work/obj/list"
}

echo "== building fuzz_$name with $cc"
exec 9>"$work/obj/.lock"
flock 9
build_lib
mapfile -t objs <"$work/obj/list"
bin="$work/fuzz_$name"
"$cc" "${cflags[@]}" -fsanitize=fuzzer,address,undefined "${san[@]}" \
    "$root/tests/fuzz/fuzz_$name.c" "${objs[@]}" -lm -o "$bin.tmp"
mv "$bin.tmp" "$bin"
flock -u 9

# ---- a dictionary of the IR's words, from the op table -----------------------
fuzz_args=()
if [ "$dict" = ir ]; then
    dictfile="$work/ir.dict"
    {
        for w in func return true false inf -inf nan '->' '@main' '%x' '%0' ':' '=' \
                 f64 f32 f16 bf16 i64 i32 i16 i8 u8 bool '[' ']' '{' '}' '(' ')' ',' '#' \
                 '"none"' '"tanh"' 1e-5 -1 0.125; do
            printf '"%s"\n' "${w//\"/\\\"}"
        done
        # ops and attribute names as written in ir/ops.def
        grep -o '"[a-z_0-9]*"' "$root/ir/ops.def" | sort -u
    } >"$dictfile"
    fuzz_args+=("-dict=$dictfile")
fi

# ---- fuzz --------------------------------------------------------------------
corpus="$work/corpus_$name"
seeds="$root/tests/fuzz/corpus_$name"
art="$work/artifacts_$name"
mkdir -p "$corpus" "$art"
rm -f "$art"/* # what is listed on failure comes from this run
echo "== fuzzing $name for ${secs}s (seeds: tests/fuzz/corpus_$name, max_len $max_len)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
set +e
"$bin" -max_total_time="$secs" -max_len="$max_len" -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$art/" "${fuzz_args[@]}" "$corpus" "$seeds"
rc=$?
set -e
if [ $rc -ne 0 ]; then
    echo "== fuzz.$name FAILED (exit $rc); inputs that failed:" >&2
    for f in "$art"/*; do
        [ -e "$f" ] || continue
        echo "--- $f (reproduce: $bin $f)" >&2
        head -c 2048 "$f" | od -c | head -40 >&2
    done
    exit 1
fi
echo "== fuzz.$name: no crash in ${secs}s"
