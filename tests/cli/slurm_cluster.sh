#!/bin/bash
# labels: e2e slow
# slurm_cluster.sh: the job scripts under a real SLURM. Brings up a private
# one-node cluster (cluster/up.sh: munged + slurmctld + slurmd on loopback,
# free ports, state in a temporary directory) and submits with `sbatch --wait`:
#   1. a tiny job: jobs/common.sh's mpirun on 2 ranks of hostname and of
#      `mmsage --version`, and the job's time left from mms_seconds_left
#   2. jobs/pipeline.sbatch on a synthetic 2000-image catalog: every stage,
#      the query server within the allocation, the report, into its default
#      work directory under the submit directory
#   3. jobs/pipeline.sbatch with a missing binary: must fail, and say to run
#      scripts/setup.sh (jobs never build)
#   4. jobs/scaling.sbatch on 2000 images, stages build + partition: the TSV has
#      its synth row, and a row per rank count for each stage this mmsage has
#   5. jobs/submit.sh's preflight refuses 64 tasks (nothing queued); then
#      jobs/nightly.sbatch (rebuild) with its shipped #SBATCH defaults on 2000
#      images publishes WORK/current
#   6. the nightly add chain: a base night, then an add night (import of new
#      images, withdrawn ids, remove, add, gate, publish, reload) submitted
#      while a query server answers a query loop; the job reloads the server
#      (version 3), and no query of the loop fails
# Jobs 2 and 5 are submitted as a user submits them: shipped #SBATCH defaults,
# through jobs/submit.sh, without the suite's Open MPI oversubscription.
# and checks each job's exit code (sbatch --wait) and output file (no sacct:
# the cluster has no accounting). The cluster is torn down in an EXIT trap,
# failure or not, and the test fails if any daemon of it is left running.
# Skipped (77) only where slurm-wlm or munge is not installed.
# shellcheck disable=SC2317 # functions called from traps
set -u
MMSAGE=${MMSAGE:?set MMSAGE to the mmsage binary}
SRC=${MMS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/cli/lib/slurm.bash
. "$SRC/tests/cli/lib/slurm.bash"
slurm_test_init slurm_cluster slurmctld slurmd sbatch sinfo munged
# The jobs are submitted as a user submits them: without the suite's Open MPI
# settings (its rmaps_base_oversubscribe would hide a job that asks for more
# ranks than its allocation has; sbatch passes the environment on).
# shellcheck disable=SC2046
unset $(compgen -v OMPI_MCA_) 2>/dev/null

# ---- bring the cluster up (twice: the second call must be a no-op)
if ! out=$(bash "$SRC/cluster/up.sh" 2>"$tmp/up.log"); then
    cat "$tmp/up.log" >&2
    fail "cluster/up.sh failed"
    exit 1
fi
eval "$out"
[ "${SLURM_CONF:-}" = "$MMS_SLURM_DIR/slurm.conf" ] || fail "up.sh printed '$out', not the export of SLURM_CONF"
grep -q '^ClusterName=mmsage' "$SLURM_CONF" || fail "no ClusterName=mmsage in $SLURM_CONF"
out2=$(bash "$SRC/cluster/up.sh" 2>"$tmp/up2.log") || fail "second cluster/up.sh failed: $(cat "$tmp/up2.log")"
[ "$out2" = "$out" ] || fail "second up.sh printed '$out2', first '$out'"
grep -q "already running" "$tmp/up2.log" || fail "second up.sh restarted daemons: $(cat "$tmp/up2.log")"
bash "$SRC/cluster/status.sh" >"$tmp/status" 2>&1 || fail "cluster/status.sh failed: $(cat "$tmp/status")"
grep -q " idle " "$tmp/status" || fail "status.sh shows no idle node: $(cat "$tmp/status")"

mkdir -p "$tmp/submit"
cd "$tmp/submit" || exit 1
# submit NAME SBATCH-ARGS... : sbatch --wait through jobs/submit.sh (its
# preflight, then sbatch); sets jobid, rc and out (the output file).
submit() {
    local name=$1
    shift
    jobid=$(timeout 300 bash "$SRC/jobs/submit.sh" --wait --parsable "$@" 2>"$tmp/sbatch-$name.err")
    rc=$?
    jobid=${jobid%%;*}
    out=$(compgen -G "$tmp/submit/*-$jobid.out" | head -n 1)
    if [ -z "$jobid" ] || [ -z "$out" ]; then
        fail "$name: no job id or no output file (sbatch: $(cat "$tmp/sbatch-$name.err"))"
        out=/dev/null
    fi
}
show() { echo "---- $1 (job $jobid, exit $rc):" >&2; cat "$out" >&2; }

# ---- 1. mpirun on 2 ranks through jobs/common.sh
cat >"$tmp/hello.sbatch" <<'EOF'
#!/bin/bash
#SBATCH --job-name=mms-hello
#SBATCH --ntasks=2
#SBATCH --time=2
#SBATCH --output=%x-%j.out
set -euo pipefail
. "$MMS_SRC/jobs/common.sh"
mms_find_binary
echo "ntasks=$SLURM_NTASKS"
echo "left=$(mms_seconds_left)"
echo "launcher: $(mms_mpirun_cmd 2)"
mms_mpirun 2 hostname | sed 's/^/host: /'
mms_mpirun 2 "$MMSAGE" --version | sed 's/^/version: /'
EOF
submit hello "$tmp/hello.sbatch"
ok=1
[ "$rc" -eq 0 ] || { fail "hello job exited $rc"; ok=0; }
grep -q '^ntasks=2$' "$out" || { fail "hello: SLURM_NTASKS is not 2"; ok=0; }
[ "$(grep -c '^host: ' "$out")" -eq 2 ] || { fail "hello: not 2 ranks of hostname"; ok=0; }
[ "$(grep -c '^version: mmsage ' "$out")" -eq 2 ] || { fail "hello: not 2 ranks of mmsage --version"; ok=0; }
left=$(sed -n 's/^left=//p' "$out")
if ! [[ "$left" =~ ^[0-9]+$ ]] || [ "$left" -gt 120 ] || [ "$left" -lt 30 ]; then
    fail "hello: mms_seconds_left gave '$left' in a 2-minute job"; ok=0
fi
[ $ok = 1 ] || show hello

# ---- 2. the pipeline job on a synthetic catalog
mkdir -p "$tmp/nodata"
MMS_SHARED_DATA=$tmp/nodata MMS_SYNTH_IMAGES=2000 MMS_TRAIN_SECONDS=10 submit pipeline "$SRC/jobs/pipeline.sbatch"
ok=1
[ "$rc" -eq 0 ] || { fail "pipeline job exited $rc"; ok=0; }
[[ "$out" == */mmsage-pipeline-$jobid.out ]] || { fail "pipeline: output not named %x-%j.out: $out"; ok=0; }
cat_dir="$tmp/submit/runs/pipeline-$jobid/synth/catalog"
[ -d "$cat_dir" ] || { fail "pipeline: no catalog in its default work directory ($cat_dir)"; ok=0; }
grep -qE '^images +2000 ' "$out" || { fail "pipeline: mmsage info did not report 2000 images"; ok=0; }
grep -q "main: done" "$out" || { fail "pipeline: jobs/main.sh did not finish"; ok=0; }
if "$MMSAGE" info --catalog "$cat_dir" >/dev/null 2>"$tmp/info.err"; then :; else
    fail "pipeline: the job's catalog does not validate: $(cat "$tmp/info.err")"; ok=0
fi
[ -d "$tmp/submit/runs/pipeline-$jobid/synth/index" ] || { fail "pipeline: no index (build, partition, train, embed did not all run)"; ok=0; }
[ -s "$tmp/submit/runs/pipeline-$jobid/synth/report/report.md" ] || { fail "pipeline: no evaluation report"; ok=0; }
grep -q "ready: listening" "$tmp/submit/runs/pipeline-$jobid/synth/serve.log" 2>/dev/null || { fail "pipeline: the query server did not become ready within the allocation"; ok=0; }
[ $ok = 1 ] || show pipeline

# ---- 3. a missing binary: the job stops and says how to build (never builds)
MMSAGE=$tmp/no-such-mmsage submit nobinary --time=2 "$SRC/jobs/pipeline.sbatch"
ok=1
[ "$rc" -ne 0 ] || { fail "pipeline with a missing binary exited 0"; ok=0; }
grep -q "scripts/setup.sh" "$out" || { fail "missing binary: no hint to run scripts/setup.sh"; ok=0; }
[ $ok = 1 ] || show nobinary

# ---- 4. the scaling job, 2000 images, 1 and 2 ranks
MMS_SCALING_SIZES=2000 MMS_SCALING_STAGES="build partition" MMS_WORK=$tmp/scaling \
    submit scaling --ntasks=2 --time=10 "$SRC/jobs/scaling.sbatch"
ok=1
tsv=$tmp/scaling/scaling.tsv
[ "$rc" -eq 0 ] || { fail "scaling job exited $rc"; ok=0; }
[ "$(head -n 1 "$tsv" 2>/dev/null)" = "$(printf 'images\tranks\tstage\tseconds')" ] ||
    { fail "scaling: $tsv has no header"; ok=0; }
grep -qP '^2000\t1\tsynth\t[0-9.]+$' "$tsv" 2>/dev/null || { fail "scaling: no synth row"; ok=0; }
for s in build partition; do
    if grep -q "mmsage $s: stage not available in this version" "$out"; then
        echo "note: mmsage $s not in this build; scaling skipped it"
    elif grep -q "mmsage $s: stage not usable" "$out"; then
        fail "scaling: jobs/scaling.sbatch passes options mmsage $s lacks: update the job script"; ok=0
    elif [ "$s" = build ] || grep -qP '^2000\t1\tbuild\t' "$tsv"; then
        for r in 1 2; do
            grep -qP "^2000\t$r\t$s\t[0-9.]+\$" "$tsv" || { fail "scaling: no $s row for $r ranks"; ok=0; }
        done
    fi
done
[ $ok = 1 ] || { show scaling; cat "$tsv" >&2; }

# ---- 5. the nightly job as shipped (its own --ntasks): publishes, or stops at
# a stage this build lacks; first, a request the cluster can never meet is
# refused by jobs/submit.sh's preflight, with what the cluster has, and nothing
# is queued (sbatch alone would leave it pending forever: PartitionConfig)
queued=$(squeue -h | wc -l)
if bash "$SRC/jobs/submit.sh" --ntasks=64 "$SRC/jobs/nightly.sbatch" >"$tmp/pre.out" 2>"$tmp/pre.err"; then
    fail "preflight: 64 tasks on this cluster were submitted"
else
    grep -q "cannot run this request" "$tmp/pre.err" && grep -q "at most [0-9]* tasks" "$tmp/pre.err" ||
        fail "preflight: no clear refusal: $(cat "$tmp/pre.err")"
fi
[ "$(squeue -h | wc -l)" -eq "$queued" ] || fail "preflight: a job was queued anyway"
MMS_SYNTH_IMAGES=2000 MMS_TRAIN_SECONDS=10 MMS_WORK=$tmp/nightly \
    submit nightly "$SRC/jobs/nightly.sbatch"
ok=1
if grep -q "has no option(s)" "$out"; then
    fail "nightly: jobs/nightly.sbatch passes options this mmsage lacks: update the job script"; ok=0
elif [ "$rc" -eq 0 ]; then
    [ -d "$tmp/nightly/current/index" ] || { fail "nightly exited 0 but published no current/index"; ok=0; }
else
    # the rebuild night (the default mode) has every stage: it must publish
    fail "nightly job (rebuild, its shipped defaults) exited $rc: $(grep -m1 -E 'FAILED|error' "$out")"; ok=0
    [ -e "$tmp/nightly/current" ] && { fail "nightly: a failed night moved current"; ok=0; }
fi
[ $ok = 1 ] || show nightly

# ---- 6. the nightly add chain (issue 14): a rebuild night on a base catalog,
# then an add night (new images, withdrawn ids) submitted while a query server
# (outside the allocation, serving WORK/current/index) answers a query loop;
# the job's last stage tells the server to reload
"$MMSAGE" synth --images 1800 --dim 32 --tags 60 --seed 7 --out "$tmp/full" >/dev/null 2>&1 &&
    awk -F'\t' '$2 == "train" {print $1}' "$tmp/full/images.tsv" | awk 'NR % 8 == 0' >"$tmp/delta.ids" &&
    awk -F'\t' '$2 == "train" {print $1}' "$tmp/full/images.tsv" | grep -vxFf "$tmp/delta.ids" | head -5 >"$tmp/withdrawn.ids" ||
    fail "nightly add: could not make the catalogs"
chmod -R a+rX "$tmp/full" "$tmp/delta.ids" "$tmp/withdrawn.ids" 2>/dev/null
MMS_NIGHTLY_IMPORT="catalog --from $tmp/full --ids $tmp/delta.ids --exclude" MMS_TRAIN_SECONDS=10 \
    MMS_WORK=$tmp/nightly-add submit nightly-base "$SRC/jobs/nightly.sbatch"
[ "$rc" -eq 0 ] && [ -d "$tmp/nightly-add/current/index" ] || { fail "nightly add: the base night exited $rc"; show nightly-base; }
if [ -d "$tmp/nightly-add/current/index" ]; then
    awk -F'\t' '$2 == "test" { print NR - 1 }' "$tmp/full/images.tsv" | head -40 >"$tmp/loop-q.tsv"
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
        mpirun -np 3 "$MMSAGE" serve --index "$tmp/nightly-add/current/index" \
        --listen 127.0.0.1:0 >"$tmp/nserve.out" 2>"$tmp/nserve.err" &
    nserve_pid=$!
    for _ in $(seq 600); do
        grep -q "^ready: listening on" "$tmp/nserve.err" && break
        kill -0 "$nserve_pid" 2>/dev/null || break
        sleep 0.1
    done
    nport=$(sed -n 's/^ready: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/nserve.err")
    [ -n "$nport" ] || { fail "nightly add: the server did not start: $(tail -3 "$tmp/nserve.err")"; }
    : >"$tmp/loop.status"
    (
        i=0
        while [ ! -e "$tmp/loop.stop" ]; do
            "$MMSAGE" query --server "127.0.0.1:$nport" --retry-for 5 --queries "$tmp/loop-q.tsv" \
                --image-features "$tmp/full/features.npy" --k 5 --pipeline 8 >"$tmp/loop.$i.jsonl" 2>"$tmp/loop.$i.err"
            echo "$i $? $(grep -c '"ok":true' "$tmp/loop.$i.jsonl")" >>"$tmp/loop.status"
            i=$((i + 1))
        done
    ) &
    loop_pid=$!
    MMS_NIGHTLY_MODE=add MMS_NIGHTLY_IMPORT="catalog --from $tmp/full --ids $tmp/delta.ids --split train" \
        MMS_NIGHTLY_REMOVE=$tmp/withdrawn.ids MMS_SERVER=127.0.0.1:$nport MMS_WORK=$tmp/nightly-add \
        submit nightly-add "$SRC/jobs/nightly.sbatch"
    ok=1
    [ "$rc" -eq 0 ] || { fail "nightly add job exited $rc: $(grep -m1 -E 'FAILED|error' "$out")"; ok=0; }
    for st in remove add gate publish reload; do
        grep -q "==== \[[0-9]*\] $st: done" "$out" || { fail "nightly add: stage $st did not finish"; ok=0; }
    done
    grep -q "^gate: gnn-image nDCG@5 new - current" "$out" || { fail "nightly add: no gate verdict"; ok=0; }
    v=$("$MMSAGE" query --server "127.0.0.1:$nport" --op info --json 2>/dev/null | jq -r '.info.version')
    [ "$v" = 3 ] || { fail "nightly add: the server reports version '$v' after the job, expected 3 (remove, then add)"; ok=0; }
    sleep 1
    touch "$tmp/loop.stop"
    wait "$loop_pid"
    answered=$(awk '{ s += $3 } END { print s + 0 }' "$tmp/loop.status")
    badpass=$(awk '$2 != 0 || $3 != 40' "$tmp/loop.status" | wc -l)
    [ "$badpass" = 0 ] && [ "$answered" -ge 40 ] ||
        { fail "nightly add: the query loop had $badpass failed passes ($answered answers)"; ok=0; }
    echo "nightly add: $answered answers in the loop while the job ran, server at version $v"
    kill -TERM "$nserve_pid" 2>/dev/null
    wait "$nserve_pid" 2>/dev/null
    [ $ok = 1 ] || { show nightly-add; tail -5 "$tmp/nserve.err" >&2; }
fi

# ---- no job left behind
q=$(squeue -h -o '%i %T' 2>/dev/null)
[ -z "$q" ] || fail "jobs still queued after sbatch --wait: $q"
exit 0
