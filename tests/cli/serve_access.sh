#!/usr/bin/env bash
# labels: mpi e2e
# serve_access.sh: who may use `mmsage serve` (issue 12 item 12), end to end.
#   - refused before the index is opened (exit 1, a message naming the fix):
#     --listen 0.0.0.0 / [::] without --auth-token-file; a token file that is
#     missing or empty
#   - a small synthetic index served on 0.0.0.0 with a token (mode 600: no
#     warning; a group-readable file gets one): a ping without the token or with
#     a wrong one is answered `unauthorized`, with the token `ok`; `mmsage query`
#     without it fails naming `unauthorized`
#   - --max-clients-per-address 2: a third connection from 127.0.0.1 gets
#     `unavailable`
#   - --first-frame-timeout 3: a connection that sends nothing is closed after
#     about 3 s without an answer (1 s was flaky under load: the silent
#     connections timed out before the third one arrived to be refused)
#   - SIGTERM drains and exits 0; the stop line counts the refusals
# The client is `test_netserver --call` (one ping, with --auth TOKEN).
set -u
MMSAGE=${MMSAGE:?}
CALL="${MMS_BUILD:-}/tests/test_netserver"
[ -x "$CALL" ] || { echo "SKIP: $CALL not built (set MMS_BUILD)"; exit 77; }
tmp=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
MPIRUN=(mpirun --oversubscribe --bind-to none)

# ---- refusals: no index needed, nothing opened
refused() { # WHAT EXPECTED_TEXT ARGS...
    local what=$1 want=$2 rc
    shift 2
    timeout 60 "$MMSAGE" serve --index "$tmp/no-index" "$@" >"$tmp/out" 2>&1
    rc=$?
    [ "$rc" -eq 1 ] || fail "$what: exit $rc, expected 1 (usage): $(tail -2 "$tmp/out")"
    grep -q -- "$want" "$tmp/out" || fail "$what: no '$want' in: $(tail -2 "$tmp/out")"
}
refused "0.0.0.0 without a token" "is not a loopback address" --listen 0.0.0.0:0
refused "[::] without a token" "auth-token-file" --listen "[::]:0"
refused "missing token file" "No such file" --auth-token-file "$tmp/none"
: >"$tmp/empty"
refused "empty token file" "is empty" --auth-token-file "$tmp/empty"

# ---- the index
"$MMSAGE" synth --images 1500 --dim 32 --tags 60 --seed 5 --out "$tmp/C" >/dev/null 2>&1 ||
    { echo "synth failed"; exit 1; }
"${MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog "$tmp/C" --out "$tmp/G" --threshold -1 >"$tmp/log" 2>&1 &&
    "$MMSAGE" partition --graph "$tmp/G" --parts 1 >>"$tmp/log" 2>&1 &&
    "${MPIRUN[@]}" -np 1 "$MMSAGE" train --graph "$tmp/G" --out "$tmp/M" --max-steps 5 >>"$tmp/log" 2>&1 &&
    "${MPIRUN[@]}" -np 1 "$MMSAGE" embed --graph "$tmp/G" --model "$tmp/M" --out "$tmp/I" >>"$tmp/log" 2>&1 ||
    { tail -20 "$tmp/log"; echo "index pipeline failed"; exit 1; }

# ---- served on 0.0.0.0 with a token
printf 'correct horse battery staple\n' >"$tmp/token"
chmod 600 "$tmp/token"
: >"$tmp/serve.err"
"${MPIRUN[@]}" -np 2 "$MMSAGE" serve --index "$tmp/I" --listen 0.0.0.0:0 --auth-token-file "$tmp/token" \
    --max-clients-per-address 2 --first-frame-timeout 3 --pid-file "$tmp/pid" \
    >"$tmp/serve.out" 2>"$tmp/serve.err" &
server_pid=$!
for _ in $(seq 600); do
    grep -q "^ready: listening on" "$tmp/serve.err" && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
port=$(sed -n 's/^ready: listening on 0\.0\.0\.0:\([0-9]*\) .*/\1/p' "$tmp/serve.err")
if [ -z "$port" ]; then
    tail -20 "$tmp/serve.err"
    echo "the server did not start"
    exit 1
fi
coord_pid=$(cat "$tmp/pid")
A="127.0.0.1:$port"
grep -q "can be read by its group" "$tmp/serve.err" && fail "a mode-600 token file was warned about"
grep -q "requests must carry the token" "$tmp/serve.err" || fail "no start-up line about the token"

out=$("$CALL" --call "$A"); rc=$?
[ "$rc" -eq 1 ] && [[ "$out" == "error unauthorized: "*"requires a token"* ]] || fail "no token: rc $rc, '$out'"
out=$("$CALL" --call "$A" --auth "correct horse battery stapler"); rc=$?
[ "$rc" -eq 1 ] && [[ "$out" == "error unauthorized: "*"does not match"* ]] || fail "wrong token: rc $rc, '$out'"
out=$("$CALL" --call "$A" --auth "correct horse battery staple"); rc=$?
[ "$rc" -eq 0 ] && [ "$out" = ok ] || fail "right token: rc $rc, '$out'"
timeout 30 "$MMSAGE" query --server "$A" --tags "$(head -1 "$tmp/C/images.tsv" | cut -f3 | cut -d'|' -f1)" \
    --k 3 >"$tmp/q.out" 2>&1
rc=$?
[ "$rc" -ne 0 ] && grep -q "unauthorized" "$tmp/q.out" ||
    fail "mmsage query without a token: exit $rc, $(tail -2 "$tmp/q.out")"

# per-address cap 2: two silent connections held, the third is refused
exec 4<>"/dev/tcp/127.0.0.1/$port" 5<>"/dev/tcp/127.0.0.1/$port"
sleep 0.2
out=$("$CALL" --call "$A" --auth "correct horse battery staple"); rc=$?
[ "$rc" -eq 1 ] && [[ "$out" == "error unavailable: "*"per-address"* ]] || fail "third connection: rc $rc, '$out'"
# first-frame timeout 3 s: the silent ones are closed without an answer
t0=$(date +%s.%N)
got=$(timeout 10 cat <&4 | wc -c)
t1=$(date +%s.%N)
exec 4<&- 5<&-
[ "$got" -eq 0 ] || fail "the silent connection got $got bytes"
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 9) }' || fail "the silent connection was not closed within 9 s"
out=$("$CALL" --call "$A" --auth "correct horse battery staple"); rc=$?
[ "$rc" -eq 0 ] || fail "after the silent ones were closed: rc $rc, '$out'"

# ---- SIGTERM: drain, exit 0, the counts
kill -TERM "$coord_pid"
for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
wait "$server_pid"; rc=$?
server_pid=
[ "$rc" -eq 0 ] || { fail "server exited $rc after SIGTERM"; tail -5 "$tmp/serve.err"; }
grep -Eq "serve: stopped: .* [1-9][0-9]* unauthorized" "$tmp/serve.err" || fail "stop line: $(grep 'serve: stopped' "$tmp/serve.err")"
grep -Eq "[1-9][0-9]* of them for the per-address cap" "$tmp/serve.err" || fail "no per-address refusal counted"

# ---- a group-readable token file: a warning (the server then stops at once)
chmod 640 "$tmp/token"
timeout 60 "$MMSAGE" serve --index "$tmp/no-index" --auth-token-file "$tmp/token" >"$tmp/out" 2>&1
grep -q "can be read by its group or by others" "$tmp/out" || fail "no warning for a mode-640 token file"

echo "$fails failures"
[ "$fails" -eq 0 ]
