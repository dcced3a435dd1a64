# cluster/lib.sh: what up.sh, down.sh and status.sh share (sourced, not run).

# pid_alive PIDFILE COMM: the process of PIDFILE runs and is COMM (a pid file
# left by a dead daemon, or whose pid was reused by another program, is not).
pid_alive() {
    local pid st
    [ -s "$1" ] || return 1
    pid=$(tr -dc 0-9 <"$1")
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
    st=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# mms_cluster_dir [DIR]: the state directory of the cluster to act on: DIR if
# given, else $MMS_SLURM_DIR, else the directory of $SLURM_CONF when it is one
# of ours (the variable up.sh told the shell to export), else the default.
mms_cluster_dir() {
    if [ -n "${1:-}" ]; then
        echo "$1"
    elif [ -n "${MMS_SLURM_DIR:-}" ]; then
        echo "$MMS_SLURM_DIR"
    elif [ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ] && [ -d "$(dirname "$SLURM_CONF")/state" ]; then
        dirname "$SLURM_CONF"
    else
        echo /tmp/mmsage-slurm
    fi
}
