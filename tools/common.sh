# shellcheck shell=bash
# common.sh - shared by tools/setup.sh and tools/test.sh (source it, don't run it).
#
#   fusec_install_deps   apt-get install whatever of FUSEC_PACKAGES is missing
#   fusec_build          configure and build into $FUSEC_BUILD_DIR (default build/)
#
# Both are idempotent: on a machine that has everything and an up-to-date
# build they cost a few seconds.  Environment knobs:
#   FUSEC_BUILD_DIR   build folder (default <repo>/build)
#   FUSEC_BUILD_TYPE  CMake build type (default RelWithDebInfo)
#   FUSEC_JOBS        parallel jobs (default: number of CPUs)
#   FUSEC_CMAKE_ARGS  extra configure arguments, e.g. "-DFUSEC_CUDA=OFF"

FUSEC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUSEC_BUILD_DIR=${FUSEC_BUILD_DIR:-$FUSEC_ROOT/build}
FUSEC_BUILD_TYPE=${FUSEC_BUILD_TYPE:-RelWithDebInfo}
FUSEC_JOBS=${FUSEC_JOBS:-$(nproc 2>/dev/null || echo 2)}

# Debian 12 packages: the toolchain, lit + FileCheck (llvm-14-tools), LLVM 14
# for the CPU backend, libFuzzer (libclang-rt-14-dev), xxHash for the kernel
# cache, and PyTorch + NumPy for the oracle tests.
FUSEC_PACKAGES=(cmake ninja-build gcc libc6-dev clang-14 llvm-14 llvm-14-dev llvm-14-tools
                libclang-rt-14-dev libxxhash-dev pkgconf python3 python3-numpy python3-torch
                binutils util-linux)

fusec_log() { printf '\033[1m== %s\033[0m\n' "$*"; }

fusec_install_deps() {
    local missing=() p
    for p in "${FUSEC_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        fusec_log "dependencies: all installed"
        return 0
    fi
    fusec_log "installing: ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null; then
            sudo=(sudo)
        else
            echo "not root and no sudo: run as root, or install: ${missing[*]}" >&2
            return 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

fusec_build() {
    fusec_log "configuring $FUSEC_BUILD_DIR ($FUSEC_BUILD_TYPE)"
    # shellcheck disable=SC2086
    cmake -S "$FUSEC_ROOT" -B "$FUSEC_BUILD_DIR" -G Ninja \
        -DCMAKE_BUILD_TYPE="$FUSEC_BUILD_TYPE" ${FUSEC_CMAKE_ARGS:-}
    fusec_log "building"
    cmake --build "$FUSEC_BUILD_DIR" -j "$FUSEC_JOBS"
}
