#!/usr/bin/env bash
# jobs/submit.sh: sbatch with a preflight. A request the cluster can never
# meet (more tasks than its nodes have CPUs, a partition that does not exist,
# a time above the partition's limit) is accepted by sbatch and then pends
# forever (reason PartitionConfig); this asks SLURM first (sbatch --test-only)
# and, when the answer is no, says why and what the cluster has, and submits
# nothing. Otherwise it submits exactly what it was given.
#   usage: bash jobs/submit.sh [sbatch options] JOB.sbatch [job arguments]
#   e.g.   bash jobs/submit.sh --ntasks=8 --begin=02:00 jobs/nightly.sbatch
# Prints sbatch's own output (the job id); exit status: sbatch's, 1 when the
# preflight refuses, 2 when SLURM's commands are missing.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bash jobs/submit.sh [sbatch options] JOB.sbatch [job arguments]" >&2; exit 2; }
for c in sbatch sinfo; do
    command -v "$c" >/dev/null 2>&1 ||
        { echo "submit.sh: '$c' not found: SLURM's client commands are needed (scripts/setup.sh installs slurm-wlm)" >&2; exit 2; }
done
if ! answer=$(sbatch --test-only "$@" 2>&1); then
    why=$(printf '%s\n' "$answer" | grep -iE 'error|failure|invalid|not available' | head -n 3)
    echo "submit.sh: SLURM cannot run this request, so nothing was submitted:" >&2
    printf '  %s\n' "${why:-$answer}" >&2
    # what the cluster offers: per partition, nodes, CPUs per node and time limit
    echo "submit.sh: the cluster has (partition, nodes, CPUs per node, time limit):" >&2
    { sinfo -h -o '%P %D %c %l' 2>/dev/null || true; } | sed 's/^/  /' >&2
    total=$(sinfo -h -o '%C' 2>/dev/null | awk -F/ 'NR == 1 {print $4}')
    [ -n "$total" ] && echo "submit.sh: at most $total tasks in all: pass --ntasks=N (N <= $total) before the job script" >&2
    exit 1
fi
exec sbatch "$@"
