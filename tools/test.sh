#!/usr/bin/env bash
# test.sh - Quick start, step 2 (and CI): the whole test suite.
#
#   bash tools/test.sh [CTEST ARGS...]     e.g.  bash tools/test.sh -L unit
#
# Installs what is missing (as tools/setup.sh does), builds into build/ and runs
# ctest there: unit tests, lit/FileCheck tests, the PyTorch oracle, the
# examples, 60 s of libFuzzer per target (FUSEC_FUZZ_SECONDS to change), the
# suite again under ASan + UBSan, and the install test.  Exit status 0 only if
# every test passed.
set -euo pipefail
# shellcheck source=tools/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

fusec_install_deps
fusec_build
fusec_log "ctest"
cd "$FUSEC_BUILD_DIR"
ctest --output-on-failure -j "$FUSEC_JOBS" "$@"
