#!/usr/bin/env bash
# scripts/check_layers.sh: every quoted #include of the source folders points
# down or within its own folder, in the documented order (lowest first):
#   common < ingest < partition < worker < coordinator < eval < app
# (docs/architecture.md). bench/ and tests/ may include any layer. Also: no
# header is defined in two folders, no quoted include names a header that
# exists nowhere, and only common/mms_mpi.* of common/ includes <mpi.h>, and
# the MPI-free scan layer (worker/shard_scan.*) includes no MPI at all.
# Headers generated at build time (mms_version.h, cmake/version.cmake) belong
# to app/ and only app/ may include them.
# Prints each violation as FILE:LINE and exits 1 if there is one.
set -euo pipefail
root="$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)"
layers=(common ingest partition worker coordinator eval app)
declare -A rank_of owner
owner[mms_version.h]=app # generated into the build tree
for i in "${!layers[@]}"; do rank_of[${layers[$i]}]=$i; done
bad=0
for d in "${layers[@]}"; do
    for h in "$root/$d"/*.h; do
        [ -e "$h" ] || continue
        b=$(basename "$h")
        if [ -n "${owner[$b]:-}" ]; then
            echo "$d/$b: header name also defined in ${owner[$b]}/"; bad=1
        fi
        owner[$b]=$d
    done
done
for d in "${layers[@]}"; do
    for f in "$root/$d"/*.[ch]; do
        [ -e "$f" ] || continue
        rel=${f#"$root/"}
        me=${rank_of[$d]:-99}
        while IFS=: read -r ln inc; do
            h=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$inc")
            o=${owner[$h]:-}
            if [ -z "$o" ]; then
                [ -e "$(dirname "$f")/$h" ] || { echo "$rel:$ln: includes \"$h\", a header of no source folder"; bad=1; }
                continue
            fi
            if [ "${rank_of[$o]}" -gt "$me" ]; then
                echo "$rel:$ln: $d/ includes \"$h\" of $o/, a layer above it (${layers[*]})"; bad=1
            fi
        done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
    done
done
for f in "$root"/common/*.[ch]; do
    case $(basename "$f") in mms_mpi.*) continue ;; esac
    if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<mpi\.h>' "$f" >/dev/null; then
        echo "${f#"$root/"}: common/ outside mms_mpi includes <mpi.h>"; bad=1
    fi
done
for f in "$root"/worker/shard_scan.[ch]; do
    [ -e "$f" ] || continue
    if grep -nE '#[[:space:]]*include[[:space:]]*(<mpi\.h>|"mms_mpi\.h"|"index\.h"|"protocol\.h")' "$f" >/dev/null; then
        echo "${f#"$root/"}: the scan layer must not include MPI, the index or the protocol"; bad=1
    fi
done
if [ $bad -eq 0 ]; then echo "check_layers: ok (${layers[*]})"; fi
exit $bad
