# shellcheck shell=bash
# jobs/common.sh: helpers shared by the SLURM job scripts (jobs/*.sbatch) and
# usable from any bash script; source it, do not run it. It never builds
# anything: a job that finds no mmsage binary stops and says to run
# scripts/setup.sh before submitting.
#
#   mms_log MSG / mms_die MSG     a line on stderr (mms_die exits 1)
#   mms_find_binary               set MMSAGE: $MMSAGE, $MMS_BUILD_DIR/app/mmsage,
#                                 $MMS_SRC/build/app/mmsage, or mmsage on PATH
#   mms_mpi_env                   export what Open MPI needs here (root, containers),
#                                 so that a plain `mpirun` in a called script works
#   mms_mpirun NP CMD...          run CMD on NP ranks with the launcher and flags below
#   mms_mpirun_cmd NP             print that launcher command line (for logs)
#   mms_have_stage S              true if `mmsage S --help` works in this build
#   mms_require_stage S [--opt..] stop with "mmsage S is not available in this build"
#                                 (or which options it lacks)
#   mms_stage NAME CMD...         banner, run, time: sets MMS_STAGE_SECONDS, returns CMD's status
#   mms_seconds_left              seconds until the job's time limit (empty if none)
#   mms_work_dir NAME             $MMS_WORK, else $SLURM_SUBMIT_DIR/runs/NAME-$SLURM_JOB_ID
#   mms_job_header                one block describing the job, for the output file
#
# Settings the jobs use unless told otherwise: MMS_DEFAULT_BUILD_ARGS and
# MMS_DEFAULT_TRAIN_ARGS below, empty because the commands' own defaults are
# the settings measured best (their "measured" preset, docs/results.md), so a
# user typing the README's commands gets what the jobs get.
#
# Launcher (mms_mpirun): $MMS_MPIRUN (default mpirun; "srun" also works on a
# cluster whose SLURM has PMIx), plus, for Open MPI's mpirun:
#   --allow-run-as-root                    when run as root
#   --oversubscribe                        outside a SLURM allocation, or MMS_OVERSUBSCRIBE=1
#   --mca btl self,vader (one node)        or self,vader,tcp (several); MMS_MPI_BTL overrides
#   --mca btl_vader_single_copy_mechanism none   (CMA is blocked in many containers)
#   $MMS_MPIRUN_ARGS                       anything else, word-split
# Inside an allocation mpirun takes its hosts and slots from SLURM: NP must not
# exceed the allocated tasks unless MMS_OVERSUBSCRIBE=1.
# build: top-5 visual neighbours without a threshold, L2-normalised node
# inputs; train: Adam 1e-3, 8 epochs, tag inputs starting at their images'
# mean input, dropout 0.5 ("--preset paper" in either gives the paper's)
MMS_DEFAULT_BUILD_ARGS=""
MMS_DEFAULT_TRAIN_ARGS=""


mms_log() { echo "[${SLURM_JOB_ID:+job $SLURM_JOB_ID }$(date +%H:%M:%S)] $*" >&2; }
mms_die() { echo "error: $*" >&2; exit 1; }

mms_find_binary() {
    local c
    # an explicit MMSAGE is taken at its word: a wrong path is an error, not a hint to look elsewhere
    if [ -n "${MMSAGE:-}" ]; then
        [ -x "$MMSAGE" ] && [ -f "$MMSAGE" ] && { export MMSAGE; return 0; }
        mms_die "MMSAGE=$MMSAGE is not an executable file: build it with scripts/setup.sh before submitting (jobs never build)"
    fi
    for c in ${MMS_BUILD_DIR:+"$MMS_BUILD_DIR/app/mmsage"} ${MMS_SRC:+"$MMS_SRC/build/app/mmsage"}; do
        if [ -x "$c" ] && [ -f "$c" ]; then MMSAGE="$c"; export MMSAGE; return 0; fi
    done
    if c=$(command -v mmsage 2>/dev/null); then MMSAGE="$c"; export MMSAGE; return 0; fi
    mms_die "no mmsage binary (looked at \$MMSAGE, \$MMS_BUILD_DIR/app/mmsage, ${MMS_SRC:-\$MMS_SRC}/build/app/mmsage and PATH): run scripts/setup.sh first, then submit again (jobs never build)"
}

_mms_nodes() { echo "${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}"; }

mms_mpi_env() {
    if [ "$(id -u)" -eq 0 ]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
    export OMPI_MCA_btl_vader_single_copy_mechanism=none
    if [ -n "${MMS_MPI_BTL:-}" ]; then
        export OMPI_MCA_btl="$MMS_MPI_BTL"
    elif [ -z "${OMPI_MCA_btl:-}" ]; then
        if [ "$(_mms_nodes)" -gt 1 ]; then export OMPI_MCA_btl=self,vader,tcp; else export OMPI_MCA_btl=self,vader; fi
    fi
    if [ -z "${SLURM_JOB_ID:-}" ] || [ "${MMS_OVERSUBSCRIBE:-0}" = 1 ]; then
        export OMPI_MCA_rmaps_base_oversubscribe=1
    fi
    export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
}

# _mms_launcher NP: fill the array MMS_LAUNCH with the launcher command line.
_mms_launcher() {
    local np=$1 l
    read -r -a l <<<"${MMS_MPIRUN:-mpirun}"
    MMS_LAUNCH=("${l[@]}")
    case "$(basename "${l[0]}")" in
        srun)
            MMS_LAUNCH+=(-n "$np") ;;
        *)
            MMS_LAUNCH+=(-np "$np")
            [ "$(id -u)" -eq 0 ] && MMS_LAUNCH+=(--allow-run-as-root)
            if [ -z "${SLURM_JOB_ID:-}" ] || [ "${MMS_OVERSUBSCRIBE:-0}" = 1 ]; then
                MMS_LAUNCH+=(--oversubscribe)
            fi
            local btl="${MMS_MPI_BTL:-${OMPI_MCA_btl:-}}"
            if [ -z "$btl" ]; then
                if [ "$(_mms_nodes)" -gt 1 ]; then btl=self,vader,tcp; else btl=self,vader; fi
            fi
            MMS_LAUNCH+=(--mca btl "$btl" --mca btl_vader_single_copy_mechanism none) ;;
    esac
    if [ -n "${MMS_MPIRUN_ARGS:-}" ]; then
        read -r -a l <<<"$MMS_MPIRUN_ARGS"
        MMS_LAUNCH+=("${l[@]}")
    fi
}

mms_mpirun_cmd() { _mms_launcher "$1"; echo "${MMS_LAUNCH[*]}"; }

mms_mpirun() {
    local np=$1
    shift
    [[ "$np" =~ ^[1-9][0-9]*$ ]] || mms_die "mms_mpirun: rank count '$np' is not a positive integer"
    _mms_launcher "$np"
    mms_mpi_env
    "${MMS_LAUNCH[@]}" "$@"
}

mms_have_stage() {
    [ -n "${MMSAGE:-}" ] || mms_find_binary
    "$MMSAGE" "$1" --help >/dev/null 2>&1
}

# mms_stage_missing_opts S --opt...: print the options S's --help does not mention.
mms_stage_missing_opts() {
    local s=$1 help o miss=""
    shift
    help=$("$MMSAGE" "$s" --help 2>&1) || return 0
    for o in "$@"; do
        grep -qE -e "$o([^-A-Za-z0-9_]|\$)" <<<"$help" || miss+=" $o"
    done
    echo "${miss# }"
}

mms_require_stage() {
    local s=$1 miss
    shift
    mms_have_stage "$s" ||
        mms_die "mmsage $s is not available in this build ($MMSAGE, $("$MMSAGE" --version 2>/dev/null)); update and rebuild with scripts/setup.sh, then resubmit"
    if [ $# -gt 0 ]; then
        miss=$(mms_stage_missing_opts "$s" "$@")
        [ -z "$miss" ] ||
            mms_die "mmsage $s in this build has no option(s) $miss that this job script passes: the script and the binary disagree (see mmsage $s --help)"
    fi
}

_mms_now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME/,/.}"; else date +%s.%N; fi; }

MMS_STAGE_N=0
MMS_STAGE_SECONDS=0
mms_stage() {
    local name=$1 t0 t1 rc=0
    shift
    MMS_STAGE_N=$((MMS_STAGE_N + 1))
    printf '\n==== [%d] %s  (%s) ====\n' "$MMS_STAGE_N" "$name" "$(date '+%F %T')" >&2
    t0=$(_mms_now)
    "$@" || rc=$?
    t1=$(_mms_now)
    MMS_STAGE_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    if [ $rc -eq 0 ]; then
        printf '==== [%d] %s: done in %s s\n' "$MMS_STAGE_N" "$name" "$MMS_STAGE_SECONDS" >&2
    else
        printf '==== [%d] %s: FAILED (exit %d) after %s s\n' "$MMS_STAGE_N" "$name" "$rc" "$MMS_STAGE_SECONDS" >&2
    fi
    return $rc
}

# Seconds left before SLURM ends this job, from squeue's %L
# ([days-]hours:minutes:seconds, minutes:seconds, or UNLIMITED); empty outside
# a job or without a limit.
mms_seconds_left() {
    local l d=0 h=0 m=0 s=0 f
    [ -n "${SLURM_JOB_ID:-}" ] || return 0
    l=$(squeue -h -j "$SLURM_JOB_ID" -o %L 2>/dev/null | head -n 1) || return 0
    [[ "$l" =~ ^([0-9]+-)?[0-9:]+$ ]] || return 0
    if [[ "$l" == *-* ]]; then d=${l%%-*}; l=${l#*-}; fi
    IFS=: read -r -a f <<<"$l"
    case ${#f[@]} in
        3) h=${f[0]}; m=${f[1]}; s=${f[2]} ;;
        2) m=${f[0]}; s=${f[1]} ;;
        1) s=${f[0]} ;;
    esac
    echo $(((10#$d * 24 + 10#$h) * 3600 + 10#$m * 60 + 10#$s))
}

mms_work_dir() {
    if [ -n "${MMS_WORK:-}" ]; then
        echo "$MMS_WORK"
    else
        echo "${SLURM_SUBMIT_DIR:-$PWD}/runs/$1${SLURM_JOB_ID:+-$SLURM_JOB_ID}"
    fi
}

mms_job_header() {
    {
        echo "job      ${SLURM_JOB_NAME:-(not in SLURM)} ${SLURM_JOB_ID:+id $SLURM_JOB_ID}"
        echo "nodes    ${SLURM_JOB_NODELIST:-$(hostname -s)} (${SLURM_JOB_NUM_NODES:-1}), tasks ${SLURM_NTASKS:-?}"
        echo "binary   $MMSAGE ($("$MMSAGE" --version 2>/dev/null || echo 'no --version'))"
        echo "launcher $(mms_mpirun_cmd "${SLURM_NTASKS:-1}") ..."
        echo "started  $(date '+%F %T')"
    } >&2
}

# Per-rank time and peak memory of a command, with /usr/bin/time (Debian
# package `time`) around every process the launcher starts.
# mms_rusage_cmd STAGE BIN ARGS...: print (NUL-separated, for mapfile -d '')
# BIN ARGS wrapped so that the process of rank r writes
# "$MMS_RUSAGE_DIR/STAGE.rank-r": wall seconds, peak RSS KiB, user and system
# CPU seconds (rank from OMPI_COMM_WORLD_RANK, SLURM_PROCID or PMI_RANK; 0
# for a plain process).
mms_rusage_cmd() {
    local stage=$1
    shift
    [ -n "${MMS_RUSAGE_DIR:-}" ] || mms_die "mms_rusage_cmd: MMS_RUSAGE_DIR is not set"
    mkdir -p "$MMS_RUSAGE_DIR"
    # shellcheck disable=SC2016
    printf '%s\0' bash -c 'r="${OMPI_COMM_WORLD_RANK:-${SLURM_PROCID:-${PMI_RANK:-0}}}"; f="$1.rank-$r"; shift; exec /usr/bin/time -f "%e %M %U %S" -o "$f" "$@"' \
        rank-usage "$MMS_RUSAGE_DIR/$stage" "$@"
}
# mms_rusage_rows STAGE: one line per rank, "STAGE rank seconds peak_MiB user_s sys_s"
# (tab-separated), from the files mms_rusage_cmd's processes wrote.
mms_rusage_rows() {
    local stage=$1 f r
    for f in "$MMS_RUSAGE_DIR/$stage".rank-*; do
        [ -f "$f" ] || continue
        r=${f##*.rank-}
        # on failure /usr/bin/time writes "Command exited with non-zero status N" first
        tail -n 1 "$f" | awk -v s="$stage" -v r="$r" '{ printf "%s\t%s\t%.2f\t%.1f\t%.2f\t%.2f\n", s, r, $1, $2 / 1024, $3, $4 }'
    done
}
