# tests/cli/lib/expect.bash: shared checks of the CLI tests (sourced; not a test).
# Needs MMSAGE, T (scratch dir) and a `failures` counter in the caller.

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
