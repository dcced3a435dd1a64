#!/bin/bash
# jobs/rollback.sh: point WORK/current back at the previous published version
# of the nightly directory (jobs/nightly.sbatch), atomically, and tell a
# running query server to reload (when given its address).
#
#   bash jobs/rollback.sh WORK [SERVER]      SERVER: host:port, or a server file
#
# The version rolled back from keeps its files (and its .published mark is
# removed, so the next night's clean-up treats it as failed). Exit 1 when
# there is no earlier published version.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: rollback.sh WORK [SERVER]" >&2; exit 2; }
W=$(cd "$1" && pwd)
here="$(cd "$(dirname "$0")" && pwd)"
[ -L "$W/current" ] || { echo "rollback: $W/current is not a version link (nothing published yet)" >&2; exit 1; }
cur=$(basename "$(readlink "$W/current")")
prev=""
for v in $(cd "$W/versions" && printf '%s\n' * | sort -r); do
    [ "$v" \< "$cur" ] && [ -e "$W/versions/$v/.published" ] && [ -d "$W/versions/$v/index" ] && { prev=$v; break; }
done
[ -n "$prev" ] || { echo "rollback: no published version older than $cur in $W/versions" >&2; exit 1; }
ln -sfn "versions/$prev" "$W/current.tmp.$$"
mv -Tf "$W/current.tmp.$$" "$W/current"
rm -f "$W/versions/$cur/.published"
echo "rollback: $W/current -> versions/$prev (was $cur)" >&2
if [ $# -ge 2 ]; then
    # shellcheck source=jobs/common.sh
    MMS_SRC="$(cd "$here/.." && pwd)" . "$here/common.sh"
    mms_find_binary
    if [ -f "$2" ]; then
        "$MMSAGE" query --server-file "$2" --reload
    else
        "$MMSAGE" query --server "$2" --reload
    fi
fi
