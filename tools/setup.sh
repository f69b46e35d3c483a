#!/usr/bin/env bash
# setup.sh - Quick start, step 1: install what is missing, build, and run an
# example model through the reference interpreter with random inputs.
#
#   bash tools/setup.sh [EXAMPLE.ir]      (default examples/gpt2_attention.ir)
#
# On Debian 12 as root (or with sudo) it apt-get installs the missing build and
# test dependencies (tools/common.sh lists them), configures and builds into
# build/, then runs `fusec run EXAMPLE --random-inputs 0`, which prints a
# short summary of each output.
set -euo pipefail
# shellcheck source=tools/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

example=${1:-$FUSEC_ROOT/examples/gpt2_attention.ir}
fusec_install_deps
fusec_build
fusec_log "fusec run ${example#"$FUSEC_ROOT"/} --random-inputs 0"
"$FUSEC_BUILD_DIR/bin/fusec" run "$example" --random-inputs 0
