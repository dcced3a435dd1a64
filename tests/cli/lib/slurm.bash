# tests/cli/lib/slurm.bash: the harness of the tests that bring up a private
# one-node SLURM cluster (slurm_cluster.sh, slurm_serve_requeue.sh); sourced,
# not a test. Needs MMSAGE and SRC in the caller.
#
#   slurm_test_init NAME TOOL...  skip (exit 77) unless every TOOL is installed;
#                                 forget any SLURM job the test runs inside;
#                                 fails=0, fail(), tmp (a fresh directory),
#                                 MMS_SLURM_DIR under it, and an EXIT trap
#                                 that tears the cluster down (cluster/down.sh),
#                                 fails the test if any of its processes is
#                                 left, prints the job output ($out) and the
#                                 daemons' logs on failure, and exits.
# Hooks the caller may define: slurm_test_before_down (e.g. scancel of its
# job) and slurm_test_more_leftovers (more "pid:comm" lines to check).

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

slurm_test_init() {
    MMS_SLURM_TEST_NAME=$1
    shift
    local b
    for b in "$@"; do
        if ! command -v "$b" >/dev/null 2>&1; then
            echo "skip: $b is not installed (scripts/setup.sh installs slurm-wlm, munge and Open MPI)"
            exit 77
        fi
    done
    # A test run inside someone's SLURM job must not talk to that cluster.
    # shellcheck disable=SC2046 # variable names
    unset $(compgen -v SLURM_) 2>/dev/null
    fails=0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/mms-cli-$MMS_SLURM_TEST_NAME.XXXXXX") && [ -d "$tmp" ] ||
        { echo "FAIL: cannot make a scratch directory"; exit 1; }
    export MMS_SLURM_DIR=$tmp/slurm MMS_SLURM_PORT=auto MMS_SRC=$SRC MMSAGE
    t_start=$SECONDS
    trap slurm_test_cleanup EXIT
    trap 'exit 1' INT TERM
}

# Daemons of this test's cluster still alive (their command line or working
# directory names $tmp), and whatever slurm_test_more_leftovers adds.
slurm_leftovers() {
    local p c
    for p in /proc/[0-9]*; do
        c=$(cat "$p/comm" 2>/dev/null) || continue
        case "$c" in slurmctld | slurmd | slurmstepd | munged) ;; *) continue ;; esac
        grep -q "$tmp" "$p/cmdline" 2>/dev/null || [[ "$(readlink "$p/cwd" 2>/dev/null)" == "$tmp"* ]] ||
            continue
        grep -q '^State:.*Z' "$p/status" 2>/dev/null && continue
        echo "${p#/proc/}:$c"
    done
    if declare -F slurm_test_more_leftovers >/dev/null; then slurm_test_more_leftovers; fi
}

# shellcheck disable=SC2317 # called from the EXIT trap
slurm_test_cleanup() {
    local rc=$? left f x
    trap - EXIT
    if declare -F slurm_test_before_down >/dev/null; then slurm_test_before_down; fi
    if ! bash "$SRC/cluster/down.sh" >"$tmp/down.log" 2>&1; then
        cat "$tmp/down.log" >&2
        fail "cluster/down.sh failed"
    fi
    left=$(slurm_leftovers)
    if [ -n "$left" ]; then
        fail "processes left running after cluster/down.sh: $left (killed now)"
        for x in $left; do kill -KILL "${x%%:*}" 2>/dev/null; done
    fi
    if [ "$fails" -ne 0 ] || [ "$rc" -ne 0 ]; then
        [ -n "${out:-}" ] && [ -s "$out" ] && { echo "---- job output $out" >&2; cat "$out" >&2; }
        for f in "$MMS_SLURM_DIR"/log/slurmctld.log "$MMS_SLURM_DIR"/log/slurmd.log; do
            [ -s "$f" ] && { echo "---- tail of $f" >&2; tail -n 20 "$f" >&2; }
        done
    fi
    rm -rf "$tmp"
    echo "$MMS_SLURM_TEST_NAME: $((SECONDS - t_start)) s" >&2
    if [ "$fails" -ne 0 ]; then
        echo "$MMS_SLURM_TEST_NAME: $fails failure(s)" >&2
        exit 1
    fi
    [ "$rc" -eq 0 ] && echo "$MMS_SLURM_TEST_NAME: ok"
    exit "$rc"
}
