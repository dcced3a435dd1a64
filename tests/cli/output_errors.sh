#!/usr/bin/env bash
# labels: mpi e2e
# output_errors.sh: outputs that cannot be written, outputs that exist, and the
# debris of killed runs (issue 12, items 8-11; docs/reliability.md, "Outputs").
#   - stdout that cannot take the results (> /dev/full): info, search --out -,
#     import npy, eval exit non-zero naming the cause
#   - an existing search --out / --summary and eval --report are refused
#     without --force and left untouched; with --force replaced
#   - a catalog path with a space: eval's default dataset name is made valid
#     ("my cat" -> "my-cat") and logged
#   - stale "<name>.tmp.<pid>" / "<name>.tmp.<host>.<pid>" of dead runs are
#     removed by the next run of the same stage, one log line each (synth after
#     a real SIGKILL, embed, eval, search); a live pid's and another host's are
#     kept
#   - a full disk (a 1 MiB tmpfs; skipped with a message where mount is not
#     permitted): search --out, eval --report, synth, import npy fail with "No
#     space left on device" and leave nothing, neither under the final name nor
#     a temporary; an existing output under --force survives a failed run
set -u
MMSAGE=${MMSAGE:?}
T=$(mktemp -d)
live=
mnt=
cleanup() {
    [ -n "$live" ] && kill "$live" 2>/dev/null
    [ -n "$mnt" ] && umount "$mnt" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
mark=0
begin() { mark=$fails; }
ok() { [ "$fails" -eq "$mark" ] && echo "ok   $*"; }
MPIRUN=(mpirun --oversubscribe --bind-to none)
host=$(uname -n | cut -d. -f1 | sed 's/[^A-Za-z0-9-]/-/g')
[ -n "$host" ] || host=host
dead_pid() { sh -c 'exit 0' & local p=$!; wait "$p"; echo "$p"; }
sleep 600 & live=$!
# no_debris DIR WHAT: no *.tmp.* in DIR
no_debris() {
    if compgen -G "$1/*.tmp.*" >/dev/null; then fail "$2: temporary left: $(ls -d "$1"/*.tmp.*)"; fi
}

# ---- a small index of a catalog whose path has a space
C="$T/my cat"
"$MMSAGE" synth --images 600 --dim 32 --tags 40 --seed 3 --out "$C" >/dev/null 2>"$T/log" &&
    "$MMSAGE" build --catalog "$C" --out "$T/G" --threshold -1 >>"$T/log" 2>&1 &&
    "$MMSAGE" partition --graph "$T/G" --parts 1 >>"$T/log" 2>&1 &&
    "${MPIRUN[@]}" -np 1 "$MMSAGE" train --graph "$T/G" --out "$T/M" --max-steps 5 >>"$T/log" 2>&1 &&
    "${MPIRUN[@]}" -np 1 "$MMSAGE" embed --graph "$T/G" --model "$T/M" --out "$T/I" >>"$T/log" 2>&1 ||
    { tail -20 "$T/log"; echo "FAIL: index pipeline"; exit 1; }
ntest=$(awk -F'\t' '$2 == "test"' "$C/images.tsv" | wc -l)
search() { "${MPIRUN[@]}" -np 1 "$MMSAGE" search --index "$T/I" --catalog "$C" --k 5 "$@"; }
evalr() { "${MPIRUN[@]}" -np 1 "$MMSAGE" eval --catalog "$C" --index "$T/I" --max-queries 20 --plots 0 "$@"; }
# one process without mpirun (MPI singleton): under mpirun, rank 0's stdout is a
# pipe to mpirun, which drops its own write errors (docs/reliability.md, "Outputs")
search1() { "$MMSAGE" search --index "$T/I" --catalog "$C" --k 5 "$@"; }
evalr1() { "$MMSAGE" eval --catalog "$C" --index "$T/I" --max-queries 20 --plots 0 "$@"; }

# ---- 1. stdout that cannot take the results
# expect_full NAME CMD...: CMD > /dev/full must fail naming ENOSPC
expect_full() {
    local name=$1
    shift
    begin
    if "$@" >/dev/full 2>"$T/err"; then
        fail "$name > /dev/full exited 0 (output lost)"
    elif ! grep -q "No space left on device" "$T/err"; then
        fail "$name > /dev/full: no 'No space left on device' in:"; tail -3 "$T/err"
    else
        ok "$name > /dev/full fails: $(grep -m1 'No space' "$T/err" | sed 's/^\[[^]]*\] //')"
    fi
}
expect_full "info" "$MMSAGE" info --catalog "$C"
expect_full "search --out -" search1 --out -
awk -F'\t' '{ print $1 "\t" $2 "\t" $3 }' "$C/images.tsv" >"$T/tags.tsv"
expect_full "import npy" "$MMSAGE" import npy --features "$C/features.npy" --tags "$T/tags.tsv" --out "$T/N"
[ -e "$T/N" ] && ok "import npy: the catalog itself was written" # its stdout line is what failed
rm -rf "$T/N"
expect_full "eval" evalr1 --report "$T/R0"

# ---- 2. existing outputs: refused without --force, untouched; replaced with it
begin
echo sentinel >"$T/r.jsonl"
echo sentinel >"$T/s.json"
if search --out "$T/r.jsonl" >/dev/null 2>"$T/err"; then
    fail "search --out EXISTING without --force exited 0"
elif ! grep -q -- "--force" "$T/err"; then
    fail "search --out EXISTING: no hint of --force:"; tail -3 "$T/err"
else
    ok "search --out EXISTING refused"
fi
[ "$(cat "$T/r.jsonl")" = sentinel ] || fail "search --out EXISTING without --force changed it"
search --out "$T/new.jsonl" --summary "$T/s.json" >/dev/null 2>"$T/err" &&
    fail "search --summary EXISTING without --force exited 0"
[ "$(cat "$T/s.json")" = sentinel ] || fail "search --summary EXISTING without --force changed it"
[ -e "$T/new.jsonl" ] && fail "a refused search still wrote --out"
begin
if search --out "$T/r.jsonl" --summary "$T/s.json" --force >/dev/null 2>"$T/err"; then
    n=$(wc -l <"$T/r.jsonl")
    [ "$n" -eq "$ntest" ] || fail "search --force: $n lines, expected $ntest"
    grep -q mean_tag_overlap "$T/s.json" || fail "search --force: summary not replaced"
    ok "search --out/--summary EXISTING --force replaced ($n lines)"
else
    fail "search --force failed:"; tail -3 "$T/err"
fi
no_debris "$T" "search"

begin
mkdir -p "$T/R"
echo sentinel >"$T/R/keep.txt"
if evalr --report "$T/R" >/dev/null 2>"$T/err"; then
    fail "eval --report EXISTING without --force exited 0"
else
    grep -q -- "--force" "$T/err" || { fail "eval --report EXISTING: no hint of --force:"; tail -3 "$T/err"; }
    [ "$(cat "$T/R/keep.txt" 2>/dev/null)" = sentinel ] && [ ! -e "$T/R/metrics.tsv" ] ||
        fail "eval --report EXISTING without --force changed it"
    grep -q "test queries" "$T/err" && fail "eval ran its queries before refusing the report"
    ok "eval --report EXISTING refused, untouched"
fi

# ---- 3. the catalog path with a space; --force replaces the report
begin
if evalr --report "$T/R" --force >"$T/out" 2>"$T/err"; then
    [ -e "$T/R/keep.txt" ] && fail "eval --force: the old report's files are still there"
    [ -s "$T/R/report.md" ] || fail "eval --force: no report.md"
    grep -q "^my-cat	gnn-image	" "$T/R/metrics.tsv" ||
        fail "eval: dataset of 'my cat' is not 'my-cat': $(sed -n 2p "$T/R/metrics.tsv")"
    grep -q "dataset name 'my-cat'" "$T/err" || fail "eval does not log the dataset name it chose"
    ok "eval --force replaced the report; 'my cat' -> dataset 'my-cat'"
else
    fail "eval --force on 'my cat' failed:"; tail -5 "$T/err"
fi
no_debris "$T" "eval"

# ---- 4. stale temporaries of dead runs are reaped; live and foreign ones kept
# synth killed with SIGKILL while writing, then run again
begin
"$MMSAGE" synth --images 3000000 --dim 64 --out "$T/S" >/dev/null 2>&1 &
sp=$!
for _ in $(seq 200); do compgen -G "$T/S.tmp.*" >/dev/null && break; sleep 0.05; done
sleep 0.2
kill -9 "$sp" 2>/dev/null
wait "$sp" 2>/dev/null
killed=$(ls -d "$T"/S.tmp.* 2>/dev/null)
if [ -z "$killed" ]; then
    fail "synth killed with SIGKILL left no temporary to test with"
else
    d=$(dead_pid)
    mkdir "$T/S.tmp.$live" "$T/S.tmp.otherhost.$d" "$T/S.tmp.$d" "$T/S.tmp.${d}x"
    "$MMSAGE" synth --images 300 --dim 16 --out "$T/S" >/dev/null 2>"$T/err" || fail "synth after a kill failed"
    for x in $killed "$T/S.tmp.$d"; do
        [ -e "$x" ] && fail "synth: stale $x survived"
        grep -q "removed '$x', left by an earlier run" "$T/err" || fail "synth: no log line for $x"
    done
    for x in "$T/S.tmp.$live" "$T/S.tmp.otherhost.$d" "$T/S.tmp.${d}x"; do
        [ -e "$x" ] || fail "synth removed $x (live pid, another host or not a pid)"
    done
    [ "$(grep -c "left by an earlier run" "$T/err")" -eq 2 ] || fail "synth: not one line per removal"
    ok "synth reaped the SIGKILLed run's $(basename "$killed") and a legacy one; kept the others"
    rm -rf "$T"/S.tmp.*
fi
# embed, eval, search: the same through their own stage
for stage in embed eval search; do
    begin
    d=$(dead_pid)
    case $stage in
    embed) out="$T/I2" ;;
    eval) out="$T/R2" ;;
    search) out="$T/r2.jsonl" ;;
    esac
    mkdir -p "$out.tmp.$host.$d/shard-0" "$out.tmp.$d" "$out.tmp.$host.$live"
    case $stage in
    embed) "${MPIRUN[@]}" -np 1 "$MMSAGE" embed --graph "$T/G" --model "$T/M" --out "$out" >/dev/null 2>"$T/err" ;;
    eval) evalr --report "$out" >/dev/null 2>"$T/err" ;;
    search) search --out "$out" >/dev/null 2>"$T/err" ;;
    esac || { fail "$stage with stale temporaries failed"; tail -3 "$T/err"; }
    [ -e "$out.tmp.$host.$d" ] || [ -e "$out.tmp.$d" ] && fail "$stage: a stale temporary survived"
    [ -e "$out.tmp.$host.$live" ] || fail "$stage removed a live run's temporary"
    [ "$(grep -c "left by an earlier run" "$T/err")" -eq 2 ] || fail "$stage: not one log line per removal"
    [ -e "$out" ] || fail "$stage: no output"
    ok "$stage reaped 2 stale temporaries, kept the live one"
    rm -rf "$out.tmp.$host.$live"
done

# ---- 5. a full disk
mnt="$T/full"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=1m tmpfs "$mnt" 2>"$T/err"; then
    mnt=
    echo "skipped: the full-disk cases (cannot mount a tmpfs here: $(cat "$T/err"))"
    echo "$fails failures"
    [ "$fails" -eq 0 ] && exit 77
    exit 1
fi
# fill the disk: leave 8 KiB free, less than any output below
fill() { head -c 1016k /dev/zero >"$mnt/filler" 2>/dev/null; }
fill
# expect_enospc NAME FINAL CMD...: fails with ENOSPC named, nothing at FINAL, no temporary
expect_enospc() {
    local name=$1 final=$2
    shift 2
    begin
    if "$@" >/dev/null 2>"$T/err"; then
        fail "$name on a full disk exited 0"
    else
        grep -q "No space left on device" "$T/err" || { fail "$name on a full disk: cause not named:"; tail -3 "$T/err"; }
        grep -q "Inappropriate ioctl" "$T/err" && fail "$name: a stale errno in the message"
        [ -e "$final" ] && fail "$name on a full disk left $final"
        no_debris "$mnt" "$name on a full disk"
        ok "$name on a full disk fails, leaves nothing"
    fi
}
expect_enospc "search --out" "$mnt/r.jsonl" search --out "$mnt/r.jsonl"
expect_enospc "eval --report" "$mnt/R" evalr --report "$mnt/R"
expect_enospc "synth" "$mnt/S" "$MMSAGE" synth --images 3000 --dim 32 --out "$mnt/S"
expect_enospc "import npy" "$mnt/N" "$MMSAGE" import npy --features "$C/features.npy" --tags "$T/tags.tsv" --out "$mnt/N"
# --force over an existing output: a failed run keeps the old one
begin
rm -f "$mnt/filler"
echo sentinel >"$mnt/r.jsonl"
mkdir "$mnt/R" && echo sentinel >"$mnt/R/keep.txt"
fill
search --out "$mnt/r.jsonl" --force >/dev/null 2>&1 && fail "search --force on a full disk exited 0"
[ "$(cat "$mnt/r.jsonl")" = sentinel ] || fail "search --force on a full disk lost the old output"
evalr --report "$mnt/R" --force >/dev/null 2>&1 && fail "eval --force on a full disk exited 0"
[ "$(cat "$mnt/R/keep.txt")" = sentinel ] || fail "eval --force on a full disk lost the old report"
no_debris "$mnt" "--force on a full disk"
ok "--force on a full disk: the old outputs survive"

echo "$fails failures"
[ "$fails" -eq 0 ]
