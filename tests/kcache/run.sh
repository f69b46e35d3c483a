#!/bin/bash
# tests/kcache/run.sh - the kernel cache's robustness tests, optionally at
# the scale of the reliability plan (T3 of /work/shared/research/reliability.md).
#
#   tests/kcache/run.sh [BUILD_DIR] [--stress]
#
# Without options: runs the cache unit test (tests/unit/test_kcache.c, which
# ctest also runs as unit.kcache): keys, corruption at every byte, refused
# directories, injected / EFBIG / tmpfs ENOSPC write failures (the tmpfs is
# mounted by the test itself in a private mount namespace, as root or in a
# user namespace, and skipped where neither is permitted), 8 processes x 200
# operations, threads, SIGKILLed writers, stats and clear.
#
# --stress: the concurrency tests again at T3 scale: 64 processes x 500
#   operations over 50 keys in one directory, ROUNDS times (default 10, env
#   ROUNDS), and 1,002 SIGKILLs of writers; every get must be a miss or the
#   exact payload, and no partial entry may ever be seen.
#
# Exit status: 0 when everything ran and passed (skips are not failures).
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=""
stress=0
for a in "$@"; do
  case "$a" in
    --stress) stress=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) build=$a ;;
  esac
done
if [ -z "$build" ]; then
  for d in "$src/build" /tmp/build-*; do
    if [ -x "$d/tests/unit/test_kcache" ]; then build=$d; break; fi
  done
fi
bin="$build/tests/unit/test_kcache"
if [ ! -x "$bin" ]; then
  echo "run.sh: $bin not found: build it first (ninja -C BUILD_DIR test_kcache)" >&2
  exit 2
fi

status=0
step() { echo "== $*"; }

step "unit test: $bin"
"$bin" || status=1

if [ $stress = 1 ]; then
  rounds=${ROUNDS:-10}
  for r in $(seq 1 "$rounds"); do
    step "stress round $r/$rounds: 64 processes x 500 ops, 50 keys"
    FUSEC_KCACHE_STRESS_PROCS=64 FUSEC_KCACHE_STRESS_OPS=500 FUSEC_KCACHE_STRESS_KEYS=50 \
      "$bin" many_processes || { status=1; break; }
  done
  step "stress: 334 rounds x 3 writers killed with SIGKILL"
  FUSEC_KCACHE_STRESS_KILL_ROUNDS=334 "$bin" killed_writers || status=1
fi

[ $status = 0 ] && echo "kcache: all passed" || echo "kcache: FAILED"
exit $status
