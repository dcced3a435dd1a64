#!/usr/bin/env bash
# labels: unit
# version.sh: the CLI explains itself (issue 16, item 5): --version names the
# git commit the binary was built from and the build type; help exit-codes
# lists every status; MMS_LOG=quiet keeps errors, an unknown MMS_LOG is refused.
set -u
MMSAGE=${MMSAGE:?}
src=$(cd "$(dirname "$0")/../.." && pwd)
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

v=$("$MMSAGE" --version) || fail "--version exited non-zero"
echo "$v" | grep -Eq '^mmsage [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{12}(-dirty)?|unknown), [A-Za-z]+ build\)$' ||
    fail "--version: unexpected '$v'"
if head=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null); then
    # the binary may be older than HEAD in a developer's tree; in CI they match
    [ "${CI:-}" = true ] && { echo "$v" | grep -q "commit $head" || fail "--version: '$v' is not HEAD $head"; }
fi
"$MMSAGE" --help | grep -q -- "--version" || fail "--help does not list --version"
"$MMSAGE" --help | grep -q "help exit-codes" || fail "--help does not list help exit-codes"
codes=$("$MMSAGE" help exit-codes) || fail "help exit-codes exited non-zero"
for c in 0 1 2 3 4 5 6 7 8 9 10; do
    echo "$codes" | grep -Eq "^ +$c  " || fail "help exit-codes: no line for $c"
done
"$MMSAGE" help nosuchtopic 2>/dev/null && fail "help with an unknown topic succeeded"

out=$(MMS_LOG=verbose "$MMSAGE" info --catalog /nonexistent 2>&1); rc=$?
[ "$rc" -eq 1 ] || fail "unknown MMS_LOG: exit $rc, expected 1"
echo "$out" | grep -q "MMS_LOG='verbose' is not one of" || fail "unknown MMS_LOG: no clear message: $out"
out=$(MMS_LOG=quiet "$MMSAGE" info --catalog /nonexistent 2>&1); rc=$?
[ "$rc" -ne 0 ] || fail "info of a missing catalog succeeded"
echo "$out" | grep -q "/nonexistent" || fail "MMS_LOG=quiet hid the error"
[ "$(MMS_LOG=quiet "$MMSAGE" info --catalog /nonexistent 2>&1 | grep -c .)" -le 2 ] || fail "MMS_LOG=quiet printed more than the error"

# one name per idea: build's neighbours are --neighbors like query's, query
# streams --queries like search; the old names still work, with a warning,
# and are not shown
"$MMSAGE" build --help | grep -q -- "--neighbors N" || fail "build --help lacks --neighbors"
"$MMSAGE" build --help | grep -q -- "--k N" && fail "build --help still shows --k"
"$MMSAGE" query --help | grep -q -- "--queries VALUE" || fail "query --help lacks --queries"
"$MMSAGE" query --help | grep -q -- "--batch" && fail "query --help still shows --batch"
"$MMSAGE" search --help | grep -q -- "--per-round N" || fail "search --help lacks --per-round"
out=$("$MMSAGE" query --batch /nonexistent.tsv --server 127.0.0.1:1 --retry-for 0 2>&1)
echo "$out" | grep -q "query: --batch is an old name of --queries" || fail "query --batch: no old-name warning: $out"

# the man page and the bash completion, generated at build time from the option tables
if [ -n "${MMS_BUILD:-}" ] && [ -f "$MMS_BUILD/mmsage.1" ]; then
    page=$(MANWIDTH=100 man -l "$MMS_BUILD/mmsage.1" 2>&1) || fail "man -l mmsage.1 failed: $page"
    for c in "import mulan" build partition train embed serve search eval query info web "EXIT STATUS"; do
        echo "$page" | grep -q "^ *$c" || fail "the man page has no section '$c'"
    done
    echo "$page" | grep -q -- "--preset" || fail "the man page lacks train --preset (not from the option tables?)"
    comp=$(bash -c 'source "$1" && complete -p mmsage && COMP_WORDS=(mmsage train --pre) COMP_CWORD=2 && _mmsage && echo "${COMPREPLY[*]}"' _ "$MMS_BUILD/mmsage.bash" 2>&1) ||
        fail "sourcing mmsage.bash: $comp"
    echo "$comp" | grep -q "complete .*-F _mmsage mmsage" || fail "complete -p mmsage: $comp"
    echo "$comp" | tail -1 | grep -qx -- "--preset" || fail "completion of 'train --pre': $(echo "$comp" | tail -1)"
else
    echo "note: no mmsage.1 in \$MMS_BUILD: man page and completion not checked"
fi

echo "version: $fails failures"
[ "$fails" -eq 0 ]
