#!/usr/bin/env bash
# labels: unit
# check_layers.sh: scripts/check_layers.sh passes on the source tree and fails
# on a copy of it with an include planted against the documented order
# (partition/ including a coordinator header) and with <mpi.h> in the scan layer.
set -u
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
if bash "$root/scripts/check_layers.sh" "$root"; then echo "ok:   the tree keeps its layers"; else echo "FAIL: the tree breaks its layers"; fails=1; fi
for d in common ingest partition worker coordinator eval app; do mkdir -p "$T/$d"; cp "$root/$d"/*.[ch] "$T/$d/"; done
cp -r "$T" "$T.2"
trap 'rm -rf "$T" "$T.2"' EXIT
sed -i '0,/#include "/s//#include "engine.h"\n#include "/' "$T/partition/pca.c"
if bash "$root/scripts/check_layers.sh" "$T" >"$T/out" 2>&1; then
    echo "FAIL: an upward include was not found"; fails=1
elif grep -q 'partition/pca.c:.*"engine.h" of coordinator/' "$T/out"; then
    echo "ok:   partition/pca.c including engine.h is named"
else
    echo "FAIL: unexpected report:"; cat "$T/out"; fails=1
fi
sed -i '0,/#include </s//#include <mpi.h>\n#include </' "$T.2/worker/shard_scan.c"
if bash "$root/scripts/check_layers.sh" "$T.2" >"$T/out2" 2>&1; then
    echo "FAIL: <mpi.h> in the scan layer was not found"; fails=1
else
    echo "ok:   <mpi.h> in the scan layer is named: $(head -1 "$T/out2")"
fi
exit $fails
