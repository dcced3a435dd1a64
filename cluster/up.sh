#!/usr/bin/env bash
# cluster/up.sh: bring up a one-node SLURM cluster on loopback for testing the
# job scripts (slurmctld + slurmd + a private munged), idempotently.
#
#   eval "$(bash cluster/up.sh)"     # starts what is not running, exports SLURM_CONF
#
# Everything lives in a state directory ($MMS_SLURM_DIR, default
# /tmp/mmsage-slurm): munge key and socket, slurm.conf (from
# cluster/slurm.conf.in), state, spool, pid and log files. Nothing under /etc
# is read or written, so it cannot break a machine's own SLURM or munge; it
# does not replace a real cluster (no cgroups, no accounting, one node).
# stdout carries only the `export SLURM_CONF=...` line; progress goes to stderr.
#
# Environment:
#   MMS_SLURM_DIR        state directory [/tmp/mmsage-slurm]
#   MMS_SLURM_PORT       slurmctld port; slurmd uses the next one [6817];
#                        "auto" picks a free pair (tests use it)
#   MMS_SLURM_NODENAME   node name [hostname -s]
#   MMS_SLURM_CPUS       advertise this many CPUs instead of the detected ones
#                        (e.g. 4 on a 2-core laptop to try 4 ranks); sets
#                        SlurmdParameters=config_overrides
#   MMS_SLURM_MEMORY_MB  RealMemory of the node [as `slurmd -C` reports]
#   MMS_SLURM_TIMEOUT    seconds to wait for the node to become idle [60]
#   MMS_MUNGE_SOCKET     use this running munged instead of starting one
#   MMS_MUNGE_KEY        key for the private munged [$MMS_SLURM_DIR/munge/munge.key],
#                        created if absent
# Stop it with cluster/down.sh, look at it with cluster/status.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { echo "cluster/up: $*" >&2; }
die() { echo "cluster/up: error: $*" >&2; exit 1; }
# shellcheck source=cluster/lib.sh
. "$here/lib.sh"


# port_listening PORT: something listens on TCP PORT (IPv4 or IPv6), from /proc
# so that it works without ss/netstat.
port_listening() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v p="$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# log_tails: the end of every daemon log, for a failure message.
log_tails() {
    local f
    for f in "$D/log/slurmctld.log" "$D/log/slurmd.log" "$D/log/slurmctld.out" \
             "$D/log/slurmd.out" "$D/munge/munged.log"; do
        [ -s "$f" ] || continue
        echo "---- tail of $f" >&2
        tail -n 15 "$f" >&2
    done
}

for b in slurmctld slurmd sinfo scontrol; do
    command -v "$b" >/dev/null 2>&1 ||
        die "$b not found: install slurm-wlm and munge (bash scripts/setup.sh does, as root)"
done

D="${MMS_SLURM_DIR:-/tmp/mmsage-slurm}"
mkdir -p "$D"
D="$(cd "$D" && pwd)"
mkdir -p "$D/munge" "$D/state" "$D/spool" "$D/log"
# munged refuses a socket in a directory that others cannot traverse, and a
# key in a directory that others can write: 0755 satisfies both.
chmod 0755 "$D" "$D/munge"
conf="$D/slurm.conf"
export SLURM_CONF="$conf"

ctld_up=0; slurmd_up=0
pid_alive "$D/slurmctld.pid" slurmctld && ctld_up=1
pid_alive "$D/slurmd.pid" slurmd && slurmd_up=1

if [ -f "$conf" ] && { [ $ctld_up = 1 ] || [ $slurmd_up = 1 ]; }; then
    # Some daemon runs with this configuration: keep it (ports, munge socket).
    say "reusing $conf (daemons already running)"
    node=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' "$conf")
    munge_socket=$(sed -n 's/^AuthInfo=socket=//p' "$conf")
    ctld_port=$(sed -n 's/^SlurmctldPort=//p' "$conf")
else
    # ---- node name, address and hardware
    host=$(hostname -s 2>/dev/null || hostname)
    node="${MMS_SLURM_NODENAME:-$host}"
    addr=127.0.0.1
    hw=$(slurmd -C 2>/dev/null | head -n 1 || true)
    field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $hw"; }
    cpus=$(field CPUs); mem=$(field RealMemory)
    [ -n "$cpus" ] || cpus=$(nproc)
    [ -n "$mem" ] || mem=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
    mem="${MMS_SLURM_MEMORY_MB:-$mem}"
    if [ -n "${MMS_SLURM_CPUS:-}" ]; then
        # Advertise more (or fewer) CPUs than detected; slurmd must be told to
        # trust the configuration over the hardware.
        node_hw="CPUs=$MMS_SLURM_CPUS"
        slurmd_params="SlurmdParameters=config_overrides"
    elif [ -n "$(field CoresPerSocket)" ]; then
        node_hw="CPUs=$cpus Boards=$(field Boards) SocketsPerBoard=$(field SocketsPerBoard)"
        node_hw+=" CoresPerSocket=$(field CoresPerSocket) ThreadsPerCore=$(field ThreadsPerCore)"
        slurmd_params="# SlurmdParameters: none (hardware as slurmd -C detects it)"
    else
        node_hw="CPUs=$cpus"
        slurmd_params="# SlurmdParameters: none"
    fi

    # ---- ports
    port="${MMS_SLURM_PORT:-6817}"
    if [ "$port" = auto ]; then
        port=""
        # below the kernel's ephemeral range: a port there can be taken by any
        # outgoing connection between our check and slurmctld's bind
        # (seen: "Address already in use" beside a parallel test)
        eph_lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
        [[ "$eph_lo" =~ ^[0-9]+$ ]] && [ "$eph_lo" -gt 12000 ] || eph_lo=32768
        for _ in $(seq 1 200); do
            p=$((10000 + (RANDOM * 32768 + RANDOM) % (eph_lo - 10002)))
            if ! port_listening "$p" && ! port_listening $((p + 1)); then port=$p; break; fi
        done
        [ -n "$port" ] || die "no free pair of TCP ports found for MMS_SLURM_PORT=auto"
    fi
    [[ "$port" =~ ^[0-9]+$ ]] || die "MMS_SLURM_PORT must be a port number or 'auto', not '$port'"
    for p in "$port" $((port + 1)); do
        port_listening "$p" &&
            die "TCP port $p is in use (another SLURM?): set MMS_SLURM_PORT to a free port or 'auto'"
    done
    ctld_port=$port

    # ---- munge
    munge_socket="${MMS_MUNGE_SOCKET:-$D/munge/munge.socket}"

    # ---- slurm.conf from the template
    esc() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }
    [ -f "$here/slurm.conf.in" ] || die "template $here/slurm.conf.in missing"
    sed -e "s|@HOST@|$(esc "$host")|g" -e "s|@NODE@|$(esc "$node")|g" -e "s|@ADDR@|$addr|g" \
        -e "s|@CTLD_PORT@|$port|g" -e "s|@SLURMD_PORT@|$((port + 1))|g" \
        -e "s|@USER@|$(esc "$(id -un)")|g" -e "s|@MUNGE_SOCKET@|$(esc "$munge_socket")|g" \
        -e "s|@DIR@|$(esc "$D")|g" -e "s|@NODE_HW@|$(esc "$node_hw")|g" \
        -e "s|@MEMORY_MB@|$mem|g" -e "s|@SLURMD_PARAMETERS@|$(esc "$slurmd_params")|g" \
        "$here/slurm.conf.in" >"$conf.tmp.$$"
    mv -f "$conf.tmp.$$" "$conf"
    say "wrote $conf (node $node: $node_hw RealMemory=$mem; ports $port/$((port + 1)))"
fi
[ "$(id -u)" -eq 0 ] ||
    say "warning: not root: SlurmUser=$(id -un); jobs can only run as this user (tested as root only)"

# ---- munged: ours if the socket is in the state directory
if [ "$munge_socket" = "$D/munge/munge.socket" ]; then
    command -v munged >/dev/null 2>&1 || die "munged not found: install munge (bash scripts/setup.sh)"
    if pid_alive "$D/munge/munged.pid" munged; then
        say "munged already running (pid $(cat "$D/munge/munged.pid"))"
    else
        key="${MMS_MUNGE_KEY:-$D/munge/munge.key}"
        if [ ! -s "$key" ]; then
            if command -v mungekey >/dev/null 2>&1; then
                mungekey --create --keyfile="$key" >/dev/null 2>&1 || die "mungekey could not create $key"
            else
                (umask 077 && dd if=/dev/urandom of="$key" bs=1024 count=1 status=none)
            fi
            say "created munge key $key"
        fi
        chmod 0600 "$key"
        rm -f "$munge_socket" "$munge_socket.lock"
        margs=(--socket="$munge_socket" --key-file="$key" --log-file="$D/munge/munged.log"
               --pid-file="$D/munge/munged.pid" --seed-file="$D/munge/munged.seed")
        # --force: as root munged may refuse ownership/permission details of
        # the paths that are harmless for a private test daemon.
        if ! munged "${margs[@]}" </dev/null >>"$D/log/munged.out" 2>&1 &&
           ! munged --force "${margs[@]}" </dev/null >>"$D/log/munged.out" 2>&1; then
            log_tails
            die "munged did not start (see $D/munge/munged.log)"
        fi
        say "munged started (socket $munge_socket)"
    fi
fi
if command -v munge >/dev/null 2>&1 && command -v unmunge >/dev/null 2>&1; then
    munge -n -S "$munge_socket" 2>/dev/null | unmunge -S "$munge_socket" >/dev/null 2>&1 ||
        { log_tails; die "munge credential round trip through $munge_socket failed"; }
fi

# ---- slurmctld and slurmd (both daemonise and write their pid files)
if [ $ctld_up = 1 ]; then
    say "slurmctld already running (pid $(cat "$D/slurmctld.pid"))"
else
    slurmctld -f "$conf" </dev/null >>"$D/log/slurmctld.out" 2>&1 ||
        { log_tails; die "slurmctld failed to start"; }
    say "slurmctld started (port $ctld_port)"
fi
if [ $slurmd_up = 1 ]; then
    say "slurmd already running (pid $(cat "$D/slurmd.pid"))"
else
    # -N: the node name need not be the host name (MMS_SLURM_NODENAME).
    slurmd -f "$conf" -N "$node" </dev/null >>"$D/log/slurmd.out" 2>&1 ||
        { log_tails; die "slurmd failed to start"; }
    say "slurmd started (node $node)"
fi

# ---- wait for the node to be usable
timeout_s="${MMS_SLURM_TIMEOUT:-60}"
t0=$SECONDS
state=""
resumed=0
while :; do
    state=$(sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1 || true)
    case "$state" in
        idle | mixed | allocated | completing) break ;;
        drained | draining)
            # Drained in an earlier session (state is recovered): resume once.
            # A configuration the hardware does not meet drains it again.
            if [ $resumed = 0 ]; then
                resumed=1
                say "node $node is $state ($(sinfo -h -n "$node" -o %E 2>/dev/null)): resuming it"
                scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
            fi ;;
    esac
    if [ "$state" = inval ] || ((SECONDS - t0 >= timeout_s)); then
        sinfo -R >&2 2>/dev/null || true
        log_tails
        if [ "$state" = inval ]; then
            die "slurmctld rejected node $node (state inval: reason above; check MMS_SLURM_CPUS/MMS_SLURM_MEMORY_MB against slurmd -C); logs in $D/log"
        fi
        die "node $node not idle after ${timeout_s}s (state '${state:-no answer from slurmctld}'); logs in $D/log"
    fi
    sleep 1
done
say "node $node is $state after $((SECONDS - t0))s; stop with: MMS_SLURM_DIR=$D bash $here/down.sh"
printf 'export SLURM_CONF=%q\n' "$conf" >"$D/env.sh"
printf 'export SLURM_CONF=%q\n' "$conf"
