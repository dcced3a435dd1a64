#!/usr/bin/env bash
# cluster/status.sh: show the local cluster in $MMS_SLURM_DIR (default
# /tmp/mmsage-slurm): which daemons run, the node (sinfo) and the queue
# (squeue). Exit status 0 if slurmctld answers, 1 otherwise.
set -uo pipefail
D="${MMS_SLURM_DIR:-/tmp/mmsage-slurm}"
if [ ! -f "$D/slurm.conf" ]; then
    echo "cluster/status: no cluster configured in $D (start one with cluster/up.sh)"
    exit 1
fi
D="$(cd "$D" && pwd)"
export SLURM_CONF="$D/slurm.conf"

pid_alive() { # PIDFILE COMM (as in up.sh)
    local pid st
    [ -s "$1" ] || return 1
    pid=$(tr -dc 0-9 <"$1")
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
    st=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

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
