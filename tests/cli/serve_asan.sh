#!/usr/bin/env bash
# labels: mpi e2e slow
# The query server test (serve.sh) on mmsage-asan, the AddressSanitizer + UBSan
# build of the same sources: bad requests, disconnects and SIGTERM drain must
# not leak or touch freed memory. Skipped (77) where the twin is not built.
set -u
[ -n "${MMSAGE_ASAN:-}" ] && [ -x "$MMSAGE_ASAN" ] || { echo "skip: no mmsage-asan in this build (MMS_ASAN_TWIN=OFF)"; exit 77; }
MMSAGE="$MMSAGE_ASAN" exec bash "$(dirname "$0")/serve.sh"
