#!/usr/bin/env bash
#SBATCH --job-name=mmsage-million
#SBATCH --ntasks=2
#SBATCH --time=02:00:00
#SBATCH --output=%x-%j.out
# jobs/million.sh: a million images end to end on one node (issue 13), as a
# plain script or an sbatch job. Stages, each timed with its peak resident
# memory per rank:
#   synth      mmsage synth --images N (planted clusters and concepts: the truth
#              the evaluation judges against; docs/synth.md)
#   build      the kNN graph, approximate (IVF) unless MMS_BUILD_ARGS says otherwise
#   partition  METIS into MMS_RANKS parts with halos
#   train      GraphSAGE for a fixed number of steps (MMS_MILLION_STEPS): at a
#              million images an epoch of the random-walk pairs is far out of
#              reach here, so the stage reports the share of an epoch it did
#   embed      the sharded index (with its inverted lists when embed makes them)
#   serve      a query server on loopback answering example queries and a
#              batch through the wire (mmsage query)
#   bench      bench_query in process: single fused query p50/p99, batched QPS,
#              recall of the approximate path against the exact one
#   eval       the evaluation on MMS_MILLION_QUERIES test images against the
#              catalog's planted ground truth
# Results: WORK/million.tsv (stage, rank, seconds, peak RSS, CPU seconds),
# WORK/disk.tsv (bytes per stage output), WORK/*.log, WORK/report/.
#
#   jobs/million.sh [WORKDIR]                     (default: runs/million)
#   sbatch jobs/million.sh                        (WORKDIR: runs/million-JOBID)
#   MMS_MILLION_IMAGES=50000 jobs/million.sh W    (the test suite's size)
# Environment:
#   MMS_MILLION_IMAGES   catalog size [1000000]
#   MMS_RANKS            ranks of every MPI stage [SLURM_NTASKS or 2]
#   MMS_MILLION_STEPS    training steps [2000]
#   MMS_MILLION_QUERIES  test queries evaluated and benchmarked [1000]
#   MMS_MILLION_STAGES   stages to run [synth build partition train embed serve bench eval];
#                        a later stage reuses an earlier run's outputs in WORKDIR
#   MMS_SYNTH_ARGS, MMS_BUILD_ARGS, MMS_PARTITION_ARGS, MMS_TRAIN_ARGS,
#   MMS_EMBED_ARGS, MMS_QUERY_ARGS (bench and eval search options, e.g. "--nprobe 32"),
#   MMS_EVAL_ARGS        extra options per stage
#   MMSAGE, MMS_BUILD_DIR, MMS_MPIRUN, ...   see jobs/common.sh
# The job never builds (scripts/setup.sh does). Peak memory per rank comes from
# /usr/bin/time (Debian package `time`, installed by scripts/setup.sh).
set -euo pipefail

if [ -z "${MMS_SRC:-}" ]; then
    for d in "${SLURM_SUBMIT_DIR:-}" "$(dirname "${BASH_SOURCE[0]}")/.." "$PWD"; do
        if [ -n "$d" ] && [ -f "$d/jobs/common.sh" ]; then MMS_SRC="$(cd "$d" && pwd)"; break; fi
    done
fi
[ -f "${MMS_SRC:-}/jobs/common.sh" ] || {
    echo "error: cannot find the mmsage repository: submit from its root or set MMS_SRC" >&2
    exit 1
}
export MMS_SRC
# shellcheck source=jobs/common.sh
. "$MMS_SRC/jobs/common.sh"

mms_find_binary
BENCH_QUERY="${MMS_BENCH_QUERY:-$(dirname "$MMSAGE")/../bench/bench_query}"
N="${MMS_MILLION_IMAGES:-1000000}"
RANKS="${MMS_RANKS:-${SLURM_NTASKS:-2}}"
STEPS="${MMS_MILLION_STEPS:-2000}"
NQ="${MMS_MILLION_QUERIES:-1000}"
STAGES="${MMS_MILLION_STAGES:-synth build partition train embed serve bench eval}"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || mms_die "MMS_MILLION_IMAGES: '$N' is not a positive integer"
[[ "$RANKS" =~ ^[1-9][0-9]*$ ]] || mms_die "MMS_RANKS: '$RANKS' is not a positive integer"
[[ "$STEPS" =~ ^[1-9][0-9]*$ ]] || mms_die "MMS_MILLION_STEPS: '$STEPS' is not a positive integer"
[[ "$NQ" =~ ^[1-9][0-9]*$ ]] || mms_die "MMS_MILLION_QUERIES: '$NQ' is not a positive integer"
for s in $STAGES; do
    case " synth build partition train embed serve bench eval " in
        *" $s "*) ;;
        *) mms_die "MMS_MILLION_STAGES: unknown stage '$s' (synth build partition train embed serve bench eval)" ;;
    esac
done
[ -x /usr/bin/time ] || mms_die "/usr/bin/time is missing (Debian package 'time'): run scripts/setup.sh"
[ -x "$BENCH_QUERY" ] || mms_die "no bench_query next to $MMSAGE (looked at $BENCH_QUERY): build with scripts/setup.sh or set MMS_BENCH_QUERY"

read -r -a SYNTH_ARGS <<<"${MMS_SYNTH_ARGS:-}"
read -r -a BUILD_ARGS <<<"${MMS_BUILD_ARGS---approx --threshold -1}"
read -r -a PART_ARGS <<<"${MMS_PARTITION_ARGS:-}"
read -r -a TRAIN_ARGS <<<"${MMS_TRAIN_ARGS:-}"
read -r -a EMBED_ARGS <<<"${MMS_EMBED_ARGS:-}"
read -r -a QUERY_ARGS <<<"${MMS_QUERY_ARGS:-}"
read -r -a EVAL_ARGS <<<"${MMS_EVAL_ARGS:-}"

WORK="${1:-$(mms_work_dir million)}"
mkdir -p "$WORK/rusage"
WORK="$(cd "$WORK" && pwd)"
C="$WORK/catalog" G="$WORK/graph" M="$WORK/model" I="$WORK/index"
TSV="$WORK/million.tsv" DISK="$WORK/disk.tsv"
[ -f "$TSV" ] || printf 'stage\trank\tseconds\tpeak_rss_mib\tuser_s\tsys_s\n' >"$TSV"
[ -f "$DISK" ] || printf 'stage\toutput\tbytes\n' >"$DISK"
mms_mpi_env
mms_job_header
{
    echo "cpu      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "images   $N, ranks $RANKS, train steps $STEPS, queries $NQ"
    echo "stages   $STAGES"
    echo "load     $(cut -d' ' -f1-3 /proc/loadavg)"
} >&2

export MMS_RUSAGE_DIR="$WORK/rusage"
record() { mms_rusage_rows "$1" >>"$TSV"; }
run_stage() { # STAGE NP CMD...: NP 0 = one plain process, else mpirun NP
    local stage=$1 np=$2 cmd
    shift 2
    rm -f "$MMS_RUSAGE_DIR/$stage".rank-*
    mapfile -d '' cmd < <(mms_rusage_cmd "$stage" "$@")
    local rc
    set +e
    if [ "$np" = 0 ]; then
        mms_stage "$stage" "${cmd[@]}" 2>&1 | tee "$WORK/$stage.log" >&2
    else
        mms_stage "$stage ($np ranks)" mms_mpirun "$np" "${cmd[@]}" 2>&1 | tee "$WORK/$stage.log" >&2
    fi
    rc=${PIPESTATUS[0]}
    set -e
    record "$stage"
    [ "$rc" = 0 ] || mms_die "stage $stage failed (exit $rc): see $WORK/$stage.log"
    printf '%s\ttotal\t%s\t\t\t\n' "$stage" "$(sed -n "s/.*\] $stage.*: done in \([0-9.]*\) s.*/\1/p" "$WORK/$stage.log" | tail -n 1)" >>"$TSV"
}
disk() { # STAGE DIR
    printf '%s\t%s\t%s\n' "$1" "$2" "$(du -sb "$2" | cut -f1)" >>"$DISK"
}
want() { [[ " $STAGES " == *" $1 "* ]]; }

if want synth; then
    run_stage synth 0 "$MMSAGE" synth --images "$N" --seed 1 --out "$C" --force "${SYNTH_ARGS[@]}"
    disk synth "$C"
fi
if want build; then
    run_stage build "$RANKS" "$MMSAGE" build --catalog "$C" --out "$G" --force "${BUILD_ARGS[@]}"
    disk build "$G"
fi
if want partition; then
    run_stage partition 0 "$MMSAGE" partition --graph "$G" --parts "$RANKS" --force "${PART_ARGS[@]}"
    disk partition "$G"
fi
if want train; then
    run_stage train "$RANKS" "$MMSAGE" train --graph "$G" --out "$M" --max-steps "$STEPS" --log-every 200 \
        --force "${TRAIN_ARGS[@]}"
    disk train "$M"
fi
if want embed; then
    run_stage embed "$RANKS" "$MMSAGE" embed --graph "$G" --model "$M" --out "$I" --force "${EMBED_ARGS[@]}"
    disk embed "$I"
fi

# The server: a coordinator plus RANKS workers outside SLURM; inside an
# allocation of RANKS tasks, RANKS ranks (RANKS - 1 workers), as jobs/main.sh.
serve_np=$((RANKS + 1))
if [ -n "${SLURM_JOB_ID:-}" ]; then
    serve_np=$RANKS
    [ "$serve_np" -ge 2 ] || { serve_np=2; export MMS_OVERSUBSCRIBE=1; }
fi
if want serve; then
    log="$WORK/serve.log" pidf="$WORK/serve.pid"
    rm -f "$pidf" "$MMS_RUSAGE_DIR"/serve.rank-*
    mapfile -d '' cmd < <(mms_rusage_cmd serve "$MMSAGE" serve --index "$I" --listen 127.0.0.1:0 --pid-file "$pidf" \
        "${QUERY_ARGS[@]}")
    t0=$(date +%s.%N)
    mms_mpirun "$serve_np" "${cmd[@]}" >"$log" 2>&1 &
    mpirun_pid=$!
    port=""
    for _ in $(seq 1 3000); do
        port=$(sed -n 's/.*ready: listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n 1)
        [ -n "$port" ] && [ -s "$pidf" ] && break
        kill -0 "$mpirun_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$log" >&2; mms_die "serve: the query server did not become ready (see $log)"; }
    mms_log "serve: ready on 127.0.0.1:$port after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
    row=$(awk -F'\t' '$2 == "test" { print NR - 1; exit }' "$C/images.tsv")
    {
        echo "---- a test image alone, visual 1 ----"
        "$MMSAGE" query --server "127.0.0.1:$port" --image-features "$C/features.npy" --row "$row" --k 5 \
            --predict-tags --tag-k 5
        echo "---- the same with its own first tag, visual 0.5 ----"
        tag=$(sed -n "$((row + 1))p" "$C/images.tsv" | cut -f3 | cut -d' ' -f1 | cut -d, -f1)
        "$MMSAGE" query --server "127.0.0.1:$port" --image-features "$C/features.npy" --row "$row" \
            --tags "$tag" --visual 0.5 --k 5
    } 2>&1 | tee "$WORK/serve-examples.log" >&2 || true
    kill -TERM "$(cat "$pidf")" 2>/dev/null || true
    wait "$mpirun_pid" 2>/dev/null || true
    record serve
    grep -q "ready:" "$log" || mms_die "serve: no ready line (see $log)"
fi
if want bench; then
    # Worker ranks only (every rank holds shards, rank 0 also coordinates),
    # the layout the issue's latency target names: RANKS worker ranks.
    run_stage bench "$RANKS" "$BENCH_QUERY" --index "$I" --queries "$NQ" "${QUERY_ARGS[@]}"
fi
if want eval; then
    run_stage eval "$RANKS" "$MMSAGE" eval --catalog "$C" --index "$I" --report "$WORK/report" --force \
        --max-queries "$NQ" --plots 0 "${QUERY_ARGS[@]}" "${EVAL_ARGS[@]}"
fi

echo >&2
column -t -s $'\t' "$TSV" >&2 2>/dev/null || cat "$TSV" >&2
column -t -s $'\t' "$DISK" >&2 2>/dev/null || cat "$DISK" >&2
mms_log "million: done; $TSV, $DISK, report $WORK/report/report.md"
