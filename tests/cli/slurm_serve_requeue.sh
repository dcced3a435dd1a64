#!/bin/bash
# labels: e2e
# slurm_serve_requeue.sh: jobs/serve.sbatch under a real SLURM, and a query
# server that loses a rank. Brings up a private one-node cluster
# (cluster/up.sh, free ports, state in a temporary directory), builds a small
# synthetic index outside SLURM, submits jobs/serve.sbatch (3 ranks on 2 tasks,
# MMS_SERVE_RESTARTS=1), and:
#   1. waits for the address file; `mmsage query --server-file` answers (when
#      serve has --auth-token-file, the job serves with MMS_AUTH_TOKEN_FILE on
#      this host's name and the queries take the token from the same variable)
#   2. kill -9 of worker rank 1: the job restarts the server in its allocation;
#      `mmsage query --retry-for 120` started right after the kill answers
#      again (time measured and printed), the address file names the new run
#   3. kill -9 of a worker again: the restarts are used up, the job requeues
#      itself (scontrol requeue) and goes PENDING; SLURM would hold it ~2 min
#      (BeginTime), so the test releases it with `scontrol update
#      StartTime=now` and a query retrying meanwhile answers once the requeued
#      job serves (time measured and printed); MMS_TEST_NATURAL_REQUEUE=1
#      leaves the job to SLURM's delay instead (about 2.5 minutes more)
#   4. scancel drains the server: the job ends, the address file is removed and
#      no rank of this test's server is left
# The cluster is torn down in an EXIT trap, failure or not. Skipped (77) where
# slurm-wlm or munge is not installed or the cluster cannot start (a failure
# under CI=true).
# shellcheck disable=SC2317 # functions called from traps
set -u
MMSAGE=${MMSAGE:?set MMSAGE to the mmsage binary}
SRC=${MMS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/cli/lib/slurm.bash
. "$SRC/tests/cli/lib/slurm.bash"
slurm_test_init slurm_serve_requeue slurmctld slurmd sbatch squeue scontrol munged mpirun python3
"$MMSAGE" serve --help 2>&1 | grep -q -- "--pid-file" || { echo "skip: this mmsage has no serve --pid-file"; exit 77; }
jobid=
# ranks of this test's server still alive, besides the cluster's daemons
slurm_test_more_leftovers() {
    local p c
    for p in /proc/[0-9]*; do
        c=$(cat "$p/comm" 2>/dev/null) || continue
        case "$c" in mmsage | mpirun | orterun | prterun) ;; *) continue ;; esac
        grep -q "$tmp/I" "$p/cmdline" 2>/dev/null || continue
        grep -q '^State:.*Z' "$p/status" 2>/dev/null && continue
        echo "${p#/proc/}:$c"
    done
}
slurm_test_before_down() { [ -n "$jobid" ] && scancel "$jobid" 2>/dev/null; }
leftovers() { slurm_leftovers; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- the cluster
if ! up=$(bash "$SRC/cluster/up.sh" 2>"$tmp/up.log"); then
    cat "$tmp/up.log" >&2
    if [ "${CI:-}" = true ]; then fail "cluster/up.sh failed"; exit 1; fi
    echo "skip: the local SLURM cluster cannot start here (cluster/up.sh failed, above)"
    exit 77
fi
eval "$up"

# ---- a small index (outside SLURM: jobs never build, and neither does this test in one)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader \
    OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN=(mpirun --oversubscribe --bind-to none)
{ "$MMSAGE" synth --images 1000 --dim 32 --tags 40 --seed 5 --out "$tmp/C" &&
    "${MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog "$tmp/C" --out "$tmp/G" --threshold -1 &&
    "$MMSAGE" partition --graph "$tmp/G" --parts 2 &&
    "${MPIRUN[@]}" -np 2 "$MMSAGE" train --graph "$tmp/G" --out "$tmp/M" --max-steps 5 --lr 1e-3 &&
    "${MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph "$tmp/G" --model "$tmp/M" --out "$tmp/I"; } \
    >"$tmp/index.log" 2>&1 || { tail -20 "$tmp/index.log"; fail "index pipeline"; exit 1; }
tag=$(head -n 1 "$tmp/I/tags.tsv" | cut -f1)
addr_file=$tmp/serve/server.addr
Q=(timeout 300 "$MMSAGE" query --server-file "$addr_file" --tags "$tag" --k 3 --json --timeout 10)

# worker_pid RANK: the pid of that rank of this test's server
worker_pid() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = mmsage ] || continue
        grep -q "$tmp/I" "$p/cmdline" 2>/dev/null || continue
        tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" || continue
        echo "${p#/proc/}"
        return 0
    done
    return 1
}
# wait_for SECONDS CMD...: poll CMD every 0.2 s
wait_for() {
    local end=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.2; done
    return 1
}
job_state() { squeue -h -j "$jobid" -o %T 2>/dev/null; }
job_pending() { [ "$(job_state)" = PENDING ]; }
job_gone() { [ -z "$(job_state)" ]; }
old_run_gone() { [ -z "$(leftovers | grep -E ':(slurmstepd|mmsage|mpirun|orterun|prterun)$')" ]; }

# ---- 1. submit, wait for the address, ask
mkdir -p "$tmp/submit"
cd "$tmp/submit" || exit 1
if "$MMSAGE" serve --help 2>&1 | grep -q -- "--auth-token-file"; then
    printf 'serve-requeue-%s\n' "$RANDOM$RANDOM$RANDOM" >"$tmp/token"
    chmod 600 "$tmp/token"
    export MMS_AUTH_TOKEN_FILE=$tmp/token
else
    echo "note: this mmsage serve has no --auth-token-file: served on loopback without a token"
fi
jobid=$(MMS_INDEX=$tmp/I MMS_RANKS=3 MMS_OVERSUBSCRIBE=1 MMS_SERVE_RESTARTS=1 MMS_WORK=$tmp/serve \
    sbatch --parsable --ntasks=2 --time=15 "$SRC/jobs/serve.sbatch" 2>"$tmp/sbatch.err")
jobid=${jobid%%;*}
[ -n "$jobid" ] || { fail "sbatch: $(cat "$tmp/sbatch.err")"; exit 1; }
out=$tmp/submit/mmsage-serve-$jobid.out
wait_for 120 test -s "$addr_file" || { fail "no address file after 120 s"; exit 1; }
addr1=$(cat "$addr_file")
if ! "${Q[@]}" >"$tmp/q1" 2>"$tmp/q1.err" || ! grep -q '"ok":true' "$tmp/q1"; then
    fail "first query: $(cat "$tmp/q1" "$tmp/q1.err")"
    exit 1
fi

# ---- 2. a worker dies: restart inside the allocation
w=$(worker_pid 1) || { fail "no rank 1 of the server found"; exit 1; }
t0=$(now)
kill -9 "$w"
"${Q[@]}" --retry-for 120 >"$tmp/q2" 2>"$tmp/q2.err"
rc=$?
rec1=$(since "$t0")
if [ $rc -ne 0 ] || ! grep -q '"ok":true' "$tmp/q2"; then
    fail "query after the worker kill (exit $rc): $(cat "$tmp/q2" "$tmp/q2.err")"
fi
echo "recovery after kill -9 of rank 1 (restart in the allocation): $rec1 s; $(grep -c '; retry ' "$tmp/q2.err") retries logged"
grep -q "serve: the server died (mpirun exit" "$out" || fail "the job did not report the server's death"
grep -q "serve: restart 1 of 1" "$out" || fail "the job did not restart the server"
grep -q "serve: run 2 ready at" "$out" || fail "no second run ready"
[ "$(cat "$addr_file" 2>/dev/null)" != "" ] || fail "no address file after the restart"
echo "address: run 1 $addr1, run 2 $(cat "$addr_file" 2>/dev/null)"

# ---- 3. dies again: restarts used up, the job requeues itself
w=$(worker_pid 2) || { fail "no rank 2 of the restarted server found"; exit 1; }
t0=$(now)
kill -9 "$w"
"${Q[@]}" --retry-for 240 >"$tmp/q3" 2>"$tmp/q3.err" &
qpid=$!
if wait_for 60 job_pending; then
    echo "requeued: PENDING $(since "$t0") s after the kill ($(scontrol show job "$jobid" | grep -o 'Restarts=[0-9]*'), $(scontrol show job "$jobid" | grep -o 'EligibleTime=[^ ]*'))"
    # Release it only once the old run's step is gone from the node: released
    # earlier, slurmd may still be cleaning up the old run and refuses the new
    # launch ("Job N already killed, do not launch batch job"), which leaves
    # the job stuck; the BeginTime delay is there to avoid exactly that.
    if [ "${MMS_TEST_NATURAL_REQUEUE:-0}" != 1 ]; then
        wait_for 30 old_run_gone || fail "the old run's processes are still there: $(leftovers)"
        sleep 1
        scontrol update JobId="$jobid" StartTime=now || fail "scontrol update StartTime=now"
    fi
else
    fail "the job did not go back to PENDING after the second death (state $(job_state))"
fi
wait "$qpid"
rc=$?
rec2=$(since "$t0")
if [ $rc -ne 0 ] || ! grep -q '"ok":true' "$tmp/q3"; then
    fail "query across the requeue (exit $rc): $(cat "$tmp/q3" "$tmp/q3.err")"
fi
how="BeginTime released by hand"
[ "${MMS_TEST_NATURAL_REQUEUE:-0}" = 1 ] && how="SLURM's own BeginTime delay"
echo "recovery after the second kill (through scontrol requeue, $how): $rec2 s; $(grep -c '; retry ' "$tmp/q3.err") retries logged"
if ! grep -q "restarts in this allocation used up" "$out" ||
    ! grep -q "requeueing job $jobid (requeue 1 of 3)" "$out"; then
    fail "the job did not say it requeues itself"
fi
grep -q "(requeue 1 of the job)" "$out" || fail "the requeued run did not start (no 'requeue 1 of the job')"

# ---- 4. scancel drains and ends
scancel "$jobid"
wait_for 60 job_gone || fail "job $jobid still there 60 s after scancel"
grep -q "serve: stopped (server exit" "$out" || fail "no drain after scancel"
[ ! -e "$addr_file" ] || fail "address file left after the job ended"
jobid=
servers_left() { leftovers | grep -E ':(mmsage|mpirun|orterun|prterun)$'; }
no_servers() { [ -z "$(servers_left)" ]; }
wait_for 20 no_servers || fail "server ranks left after scancel: $(servers_left)"
exit 0
