#!/usr/bin/env bash
# cluster/status.sh: show a local cluster of cluster/up.sh: which daemons run,
# the node (sinfo) and the queue (squeue). Exit status 0 if slurmctld answers,
# 1 otherwise.
#   bash cluster/status.sh [DIR]    DIR, else $MMS_SLURM_DIR, else the directory
#                                   of $SLURM_CONF (as up.sh exported), else
#                                   /tmp/mmsage-slurm
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cluster/lib.sh
. "$here/lib.sh"
D="$(mms_cluster_dir "${1:-}")"
if [ ! -f "$D/slurm.conf" ]; then
    echo "cluster/status: no cluster configured in $D (start one with cluster/up.sh)"
    exit 1
fi
D="$(cd "$D" && pwd)"
export SLURM_CONF="$D/slurm.conf"


echo "state directory: $D"
echo "export SLURM_CONF=$SLURM_CONF"
for d in slurmctld:slurmctld.pid slurmd:slurmd.pid munged:munge/munged.pid; do
    IFS=: read -r comm f <<<"$d"
    if pid_alive "$D/$f" "$comm"; then
        printf '  %-10s running (pid %s)\n' "$comm" "$(tr -dc 0-9 <"$D/$f")"
    elif [ "$comm" = munged ] && ! grep -q "^AuthInfo=socket=$D/munge/" "$SLURM_CONF"; then
        printf '  %-10s external (%s)\n' "$comm" "$(sed -n 's/^AuthInfo=socket=//p' "$SLURM_CONF")"
    else
        printf '  %-10s not running\n' "$comm"
    fi
done
echo
if ! timeout 10 sinfo -N -o '%N %P %T %c %m %E' 2>&1; then
    echo "cluster/status: slurmctld does not answer (logs in $D/log)"
    exit 1
fi
echo
timeout 10 squeue -o '%.8i %.12j %.8u %.3t %.10M %.10L %.5D %.5C %R' 2>&1
