#!/usr/bin/env bash
# bench/side_by_side.sh: mmsage's approximate query path beside faiss IVF and
# hnswlib on the same vectors, in one run on the same cores (issue 13; the
# tables of docs/benchmarks.md "A million images"). Not part of the suite:
# it prints figures and asserts nothing.
#
#   bench/side_by_side.sh INDEX [NPROBE...]        (default nprobe: 128 192 256)
#
# Steps, each line stamped with the time and the load average:
#   1. bench_query at each nprobe with each list scan of docs/query.md:
#      --list-scan codes4, int8 and auto (the default, which picks one of the
#      two per round); with MMS_SKIP_PEERS=1 this is the measurement behind
#      auto's threshold ("Which list scan");
#   2. bench_query --dump-queries (the vectors its two rounds send), then
#      bench/peers_ann.py on the index's own rows: faiss IVF-Flat at the same
#      nprobe values and hnswlib at ef 20..640 (MMS_PEERS_ARGS overrides), with
#      Debian's python3 (scripts/setup.sh --peers installs faiss and hnswlib);
#   3. bench_query again at each nprobe (--list-scan auto), so drift of the
#      machine during the peers shows.
# Environment: MMS_BUILD_DIR (default: build), MMS_RANKS (2), MMS_QUERIES (1000),
# MMS_SKIP_PEERS=1 (only steps 1 and 3), MMS_PEERS_ARGS.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 INDEX [NPROBE...]" >&2; exit 2; }
INDEX=$1
shift
[ -f "$INDEX/manifest.msgpack" ] || { echo "error: $INDEX: not an mmsage index (no manifest.msgpack)" >&2; exit 1; }
NPROBES=("$@")
[ ${#NPROBES[@]} -gt 0 ] || NPROBES=(128 192 256)
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${MMS_BUILD_DIR:-$SRC/build}
BQ=$B/bench/bench_query
[ -x "$BQ" ] || { echo "error: $BQ missing (scripts/setup.sh builds it)" >&2; exit 1; }
RANKS=${MMS_RANKS:-2}
NQ=${MMS_QUERIES:-1000}
MPI=(mpirun --oversubscribe --bind-to none -np "$RANKS")
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
stamp() { echo "== $* $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
ours() { # ARGS...: one bench_query run, its figures only
    "${MPI[@]}" "$BQ" --index "$INDEX" --queries "$NQ" --batch-queries 1024 "$@" 2>&1 |
        grep -v '^\[[0-9]*/' || true
}
lscpu | grep -m1 "Model name" || true
for np in "${NPROBES[@]}"; do
    for scan in codes4 int8 auto; do
        stamp "mmsage nprobe $np, --list-scan $scan"
        ours --nprobe "$np" --list-scan "$scan"
    done
done
if [ "${MMS_SKIP_PEERS:-0}" != 1 ]; then
    Q=$(mktemp -d)
    trap 'rm -rf "$Q"' EXIT
    stamp "dump queries"
    "${MPI[@]}" "$BQ" --index "$INDEX" --queries "$NQ" --batch-queries 64 --dump-queries "$Q" >/dev/null 2>&1
    stamp "peers"
    read -r -a PA <<<"${MMS_PEERS_ARGS:---faiss flat --ef 20 40 80 160 320 640}"
    /usr/bin/python3 "$SRC/bench/peers_ann.py" --index "$INDEX" --queries-dir "$Q" \
        --nprobe "${NPROBES[@]}" --threads "$RANKS" "${PA[@]}"
fi
for np in "${NPROBES[@]}"; do
    stamp "mmsage nprobe $np, --list-scan auto (after)"
    ours --nprobe "$np"
done
stamp end
