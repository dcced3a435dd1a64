#!/usr/bin/env bash
# fuzz_long.sh: coverage-guided fuzzing of every fuzz target for a CPU-time
# budget each, under ASan + UBSan (docs/reliability.md, "Fuzzing").
#
#   bash scripts/fuzz_long.sh OUT [--minutes M] [--targets "fuzz_arff fuzz_npy_header ..."] [--resume]
#
# Builds the libFuzzer binaries with clang in OUT/build (-DMMS_LIBFUZZER=ON),
# starts each target from a copy of its seed corpus (tests/fuzz/corpus/<target>)
# at nice 19, and stops it with SIGINT once the process has used M CPU-minutes
# (default 30; user + system time from /proc, so a busy machine stretches the
# wall time, not the budget). Appends one line per target to OUT/fuzz.tsv:
# target, CPU seconds, executions, corpus files, findings (crash/leak/timeout
# artifacts in OUT/artifacts; libFuzzer's slow-unit reports are listed apart:
# on a loaded machine they are wall-clock artifacts, re-run them to judge).
# Exit status 1 if any target has a finding.
# --resume: a target runs only what its budget lacks: the CPU seconds of its
# earlier lines in OUT/fuzz.tsv since its last line with a finding are
# counted (the corpus in OUT/corpus carries over), so fuzzing stopped with
# SIGINT (the line says "interrupted") can go on in a later session.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 OUT [--minutes M] [--targets LIST]" >&2; exit 2; }
out="$1"; shift
minutes=30
targets=""
resume=0
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --targets) targets="$2"; shift 2 ;;
        --resume) resume=1; shift ;;
        *) echo "fuzz_long.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
command -v clang >/dev/null || { echo "fuzz_long.sh: clang is not installed (scripts/setup.sh installs it)" >&2; exit 2; }
[ -n "$targets" ] || targets="$(cd "$src/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//' | tr '\n' ' ')"
mkdir -p "$out/artifacts" "$out/corpus" "$out/logs"
out="$(cd "$out" && pwd)"

bins=""
for t in $targets; do bins="$bins ${t}_libfuzzer"; done
CC=clang cmake -S "$src" -B "$out/build" -DMMS_LIBFUZZER=ON -DMMS_NATIVE=OFF >"$out/logs/cmake.log" 2>&1
# shellcheck disable=SC2086
nice cmake --build "$out/build" -j"$(nproc)" --target $bins >"$out/logs/build.log" 2>&1

budget=$((minutes * 60))
tck=$(getconf CLK_TCK)
[ -f "$out/fuzz.tsv" ] || printf 'target\tcpu_s\texecutions\tcorpus_files\tfindings\tdate\n' >"$out/fuzz.tsv"
status=0
# CPU seconds target $1 already had since its last finding (--resume)
done_before() {
    awk -F'\t' -v t="$1" '$1 == t { if ($5 + 0 > 0) s = 0; else s += $2 + 0 } END { print s + 0 }' "$out/fuzz.tsv"
}
for t in $targets; do
    corpus="$out/corpus/$t"
    tbudget=$budget
    if [ "$resume" = 1 ]; then
        tbudget=$((budget - $(done_before "$t")))
        if [ "$tbudget" -le 0 ]; then
            echo "fuzz_long.sh: $t: its ${minutes} CPU-minutes are done ($out/fuzz.tsv)"
            continue
        fi
    fi
    mkdir -p "$corpus"
    [ -d "$src/tests/fuzz/corpus/$t" ] && cp -n "$src/tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
    log="$out/logs/$t.$$.log" # per process: two runs of one target side by side keep their own stats
    nice -n 19 "$out/build/tests/${t}_libfuzzer" -print_final_stats=1 -rss_limit_mb=2048 -timeout=20 \
        -artifact_prefix="$out/artifacts/$t-" "$corpus" >"$log" 2>&1 &
    pid=$!
    cpu=0
    while kill -0 "$pid" 2>/dev/null; do
        sleep 5
        { read -r -a st <"/proc/$pid/stat"; } 2>/dev/null || break
        cpu=$(((st[13] + st[14]) / tck))
        if [ "$cpu" -ge "$tbudget" ]; then kill -INT "$pid" 2>/dev/null || true; fi
    done
    wait "$pid" || true
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
    files=$(find "$corpus" -type f | wc -l)
    finds=$(find "$out/artifacts" -type f \( -name "$t-crash-*" -o -name "$t-leak-*" -o -name "$t-timeout-*" -o -name "$t-oom-*" \) | wc -l)
    slow=$(find "$out/artifacts" -type f -name "$t-slow-unit-*" | wc -l)
    [ "$finds" -eq 0 ] || status=1
    [ "$cpu" -ge "$tbudget" ] || cpu="$cpu interrupted"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$cpu" "${execs:-?}" "$files" "$finds" "$(date -u +%FT%TZ)" >>"$out/fuzz.tsv"
    echo "fuzz_long.sh: $t: ${cpu} CPU-s, ${execs:-?} executions, $files corpus files, $finds findings, $slow slow-unit reports"
done
exit "$status"
