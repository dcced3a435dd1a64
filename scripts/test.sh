#!/usr/bin/env bash
# scripts/test.sh: install dependencies, build, and run the whole CTest suite
# (labels unit, mpi, e2e, fuzz, slow). CI runs exactly this (.ci/run).
#   MMS_TEST_LABELS="unit|mpi"  run only these labels (regex)
#   MMS_SKIP_SLOW=1             leave out tests labelled slow
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MMS_BUILD_DIR:-$here/build}"
bash "$here/scripts/setup.sh"
args=(--output-on-failure --test-dir "$build" -j 2 --timeout 1800)
[ -n "${MMS_TEST_LABELS:-}" ] && args+=(-L "$MMS_TEST_LABELS")
[ -n "${MMS_SKIP_SLOW:-}" ] && args+=(-LE slow)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest "${args[@]}"
