# tests/cli/lib/expect.bash: shared checks of the CLI tests (sourced; not a test).
# Needs MMSAGE, T (scratch dir) and (for expect_import_fail) a `failures`
# counter in the caller.

# expect_import_fail FORMAT NAME PATTERN ARGS...: `mmsage import FORMAT ARGS --out $T/out`
# must exit non-zero, print PATTERN on stderr, report no sanitizer error and
# leave neither $T/out nor a temporary behind.
expect_import_fail() {
    local fmt=$1 name=$2 pat=$3 bad=0
    shift 3
    rm -rf "$T/out"
    "$MMSAGE" import "$fmt" "$@" --out "$T/out" >"$T/stdout" 2>"$T/stderr"
    local rc=$?
    if [ "$rc" -eq 0 ]; then echo "FAIL $name: exit code 0"; bad=1; fi
    if ! grep -qF -- "$pat" "$T/stderr"; then
        echo "FAIL $name: stderr lacks '$pat'; it was:"; sed 's/^/    /' "$T/stderr"; bad=1
    fi
    if grep -q 'Sanitizer\|runtime error' "$T/stderr"; then echo "FAIL $name: sanitizer report:"; cat "$T/stderr"; bad=1; fi
    if [ -e "$T/out" ]; then echo "FAIL $name: output directory $T/out exists"; bad=1; fi
    if ls -a "$T" | grep -q '\.tmp\.'; then echo "FAIL $name: temporary left: $(ls -a "$T")"; bad=1; fi
    if [ $bad -eq 0 ]; then echo "ok   $name (exit $rc)"; fi
    failures=$((failures + bad))
}

# corel5k_or_skip: set D to $MMS_SHARED_DATA/corel5k, or exit 77 (skipped) with
# a message when its Mulan files are absent.
corel5k_or_skip() {
    D="${MMS_SHARED_DATA:-}/corel5k"
    local f
    for f in Corel5k-train-sparse.arff Corel5k-test-sparse.arff Corel5k.xml; do
        if [ ! -f "$D/$f" ]; then
            echo "skipped: $D/$f not found (set MMS_SHARED_DATA to the real data directory)"
            exit 77
        fi
    done
}

# step NAME CMD...: run CMD with its output in $T/log; on failure show the
# log's tail, say which step failed and exit 1.
step() {
    local name=$1
    shift
    "$@" >"$T/log" 2>&1 || { tail -20 "$T/log"; echo "FAIL: $name"; exit 1; }
}

# import_corel5k OUT: the Mulan importer on $D (after corel5k_or_skip), as a step.
import_corel5k() {
    step import "$MMSAGE" import mulan --train "$D/Corel5k-train-sparse.arff" \
        --test "$D/Corel5k-test-sparse.arff" --xml "$D/Corel5k.xml" --out "$1"
}

# recall_of EXACT APPROX: recall@k of the result ids of APPROX's lines against
# EXACT's (two `mmsage search --out` files of the same queries, line by line):
# the share of EXACT's ids that APPROX also returns.
recall_of() {
    jq -s -r '
    def ids: [.results[].id];
    . as $all | ($all | length / 2) as $n
    | [range(0; $n) | . as $i | ($all[$i] | ids) as $e | ($all[$n + $i] | ids) as $a
       | [$e[] | select(. as $x | $a | index([$x]))] | length] | add as $hit
    | [range(0; $n) | $all[.] | ids | length] | add as $tot
    | ($hit / $tot)' "$1" "$2"
}
