#!/usr/bin/env bash
# cluster/down.sh: stop the local cluster that cluster/up.sh started (in DIR,
# else $MMS_SLURM_DIR, else the directory of $SLURM_CONF as up.sh exported it,
# else /tmp/mmsage-slurm): cancel its jobs, shut down
# slurmctld and slurmd, stop its private munged, and kill leftovers of this
# cluster only (job steps whose working directory is under the state
# directory). Safe to run twice or on a cluster that never came up.
#
#   bash cluster/down.sh [DIR] [--purge]   # --purge also deletes the state directory
# Exit status 0 when no daemon of this cluster is left running.
set -uo pipefail
say() { echo "cluster/down: $*" >&2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cluster/lib.sh
. "$here/lib.sh"


# stop PIDFILE COMM SECONDS: wait for a graceful exit, then TERM, then KILL.
stop() {
    local f=$1 comm=$2 wait_s=$3 i pid
    for ((i = 0; i < wait_s * 5; i++)); do
        pid_alive "$f" "$comm" || return 0
        sleep 0.2
    done
    pid=$(tr -dc 0-9 <"$f")
    say "$comm (pid $pid) still running: SIGTERM"
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 25; i++)); do
        pid_alive "$f" "$comm" || return 0
        sleep 0.2
    done
    say "$comm (pid $pid) still running: SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
    ! pid_alive "$f" "$comm"
}

purge=0 dir_arg=
for a in "$@"; do
    case "$a" in
        --purge) purge=1 ;;
        *) dir_arg=$a ;;
    esac
done
D="$(mms_cluster_dir "$dir_arg")"
if [ ! -d "$D" ]; then
    say "no state directory $D: nothing to stop"
    exit 0
fi
D="$(cd "$D" && pwd)"
export SLURM_CONF="$D/slurm.conf"

if pid_alive "$D/slurmctld.pid" slurmctld && [ -f "$SLURM_CONF" ]; then
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        say "cancelling jobs $jobs"
        # shellcheck disable=SC2086 # a list of job ids
        timeout 10 scancel $jobs 2>/dev/null
        for ((i = 0; i < 30; i++)); do
            [ -z "$(timeout 5 squeue -h -t R,CG,PD -o %A 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    # Stops slurmctld and every slurmd it knows about.
    timeout 15 scontrol shutdown >/dev/null 2>&1 || say "scontrol shutdown failed; killing by pid file"
fi
stop "$D/slurmd.pid" slurmd 10
stop "$D/slurmctld.pid" slurmctld 10

# Job steps of this cluster that outlived their slurmd (their cwd is in $D).
for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] || continue
    case "$(readlink "$p/cwd" 2>/dev/null)" in
        "$D" | "$D"/*)
            say "killing leftover slurmstepd ${p#/proc/}"
            kill -KILL "${p#/proc/}" 2>/dev/null ;;
    esac
done

if pid_alive "$D/munge/munged.pid" munged; then
    munged --stop --socket="$D/munge/munge.socket" >/dev/null 2>&1
    stop "$D/munge/munged.pid" munged 5
fi

left=""
pid_alive "$D/slurmctld.pid" slurmctld && left+=" slurmctld"
pid_alive "$D/slurmd.pid" slurmd && left+=" slurmd"
pid_alive "$D/munge/munged.pid" munged && left+=" munged"
if [ -n "$left" ]; then
    say "error: still running:$left (state in $D)"
    exit 1
fi
rm -f "$D/slurmctld.pid" "$D/slurmd.pid" "$D/munge/munged.pid" "$D/env.sh"
if [ $purge = 1 ]; then
    rm -rf "$D"
    say "stopped; removed $D"
else
    say "stopped (state and logs kept in $D; --purge removes them)"
fi
