#!/usr/bin/env bash
# run.sh - the install test: does an installed fusec work for its users?
#
#   tests/install/run.sh SRC BUILDDIR WORKDIR [GENERATOR] [CC]
#
# 1. cmake --install BUILDDIR into WORKDIR/prefix (a fresh prefix each time);
# 2. check the layout: header, both libraries, fusec.pc, the CMake package;
# 3. build examples/embed.c against it through pkg-config (shared, and
#    static with --static) and through find_package(fusec) (fusec::fusec and
#    fusec::fusec_static, tests/install/CMakeLists.txt);
# 4. run every one of those programs; each must exit 0.
# The shared builds must find libfusec.so.0 in the prefix only: the build
# tree's copy is out of reach (LD_LIBRARY_PATH set to the prefix, rpath too).
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 SRC BUILDDIR WORKDIR [GENERATOR] [CC]" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
work=$3
gen=${4:-Ninja}
cc=${5:-cc}
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
prefix="$work/prefix"

step() { echo "== $*"; }

step "install into $prefix"
cmake --install "$build" --prefix "$prefix"

step "check the installed layout"
libdir=
for d in lib lib64 lib/x86_64-linux-gnu; do
    if [ -e "$prefix/$d/pkgconfig/fusec.pc" ]; then libdir="$prefix/$d"; fi
done
[ -n "$libdir" ] || { echo "fusec.pc not installed" >&2; exit 1; }
for f in "$prefix/include/fusec.h" "$libdir/libfusec.a" "$libdir/libfusec.so.0" \
         "$libdir/cmake/fusec/fusecConfig.cmake" "$libdir/cmake/fusec/fusecConfigVersion.cmake"; do
    [ -e "$f" ] || { echo "missing after install: $f" >&2; exit 1; }
done
if [ -e "$src/tools/fusec.c" ] && [ ! -x "$prefix/bin/fusec" ]; then
    echo "missing after install: $prefix/bin/fusec" >&2
    exit 1
fi
# Only the public API leaves the shared library: no internal ir_/fe_/rt_ symbols.
if command -v nm >/dev/null; then
    leaked=$(nm -D --defined-only "$libdir/libfusec.so.0" | awk '{print $3}' |
             grep -Ev '^(fusec_|_init$|_fini$|_edata$|_end$|__bss_start$)' || true)
    if [ -n "$leaked" ]; then
        echo "libfusec.so exports non-API symbols:" >&2
        echo "$leaked" | head -20 >&2
        exit 1
    fi
fi

embed="$src/examples/embed.c"
cflags=(-std=c11 -Wall -Wextra -Werror)
export PKG_CONFIG_PATH="$libdir/pkgconfig"

step "build embed.c with pkg-config (shared)"
# shellcheck disable=SC2046
"$cc" "${cflags[@]}" $(pkg-config --cflags fusec) "$embed" -o "$work/embed_pc" \
    $(pkg-config --libs fusec) -Wl,-rpath,"$libdir"

step "build embed.c with pkg-config --static"
# shellcheck disable=SC2046
# libfusec.a by path, then the private libraries pkg-config lists for it.
"$cc" "${cflags[@]}" $(pkg-config --cflags fusec) "$embed" -o "$work/embed_pc_static" \
    "$libdir/libfusec.a" $(pkg-config --static --libs fusec | sed -e 's/-lfusec\b//')

step "build embed.c with find_package(fusec)"
cmake -S "$src/tests/install" -B "$work/consumer" -G "$gen" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" -DFUSEC_EMBED_SRC="$embed" -DCMAKE_BUILD_TYPE=Release
cmake --build "$work/consumer"

for exe in "$work/embed_pc" "$work/embed_pc_static" "$work/consumer/embed_shared" \
           "$work/consumer/embed_static"; do
    step "run ${exe#"$work"/}"
    LD_LIBRARY_PATH="$libdir" "$exe"
done
# The shared programs really use the installed library, the static ones none.
if command -v ldd >/dev/null; then
    for exe in "$work/embed_pc" "$work/consumer/embed_shared"; do
        ldd "$exe" | grep -q "$libdir/libfusec.so.0" || {
            echo "$exe does not load $libdir/libfusec.so.0" >&2
            exit 1
        }
    done
    for exe in "$work/embed_pc_static" "$work/consumer/embed_static"; do
        if ldd "$exe" | grep -q libfusec; then
            echo "$exe is linked against libfusec.so, not libfusec.a" >&2
            exit 1
        fi
    done
fi
step "install test passed"
