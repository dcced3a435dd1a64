#!/usr/bin/env bash
# labels: mpi e2e
# query_auth.sh: the client side of the query server's token (issue 12 item
# 12): a 1000-image synthetic index served by `mmsage serve --auth-token-file`
# (3 ranks, loopback), and
#   - `mmsage query` without a token gets `unauthorized` (exit 1) and does not
#     retry it; with --auth-token-file, and with MMS_AUTH_TOKEN_FILE as the
#     default, one query, a ping and a --batch are answered
#   - the token file is read like the server reads it: one trailing newline
#     stripped (a file with two newlines is a different token: unauthorized);
#     an empty or missing file is refused before connecting, naming it
#   - `mmsage web --server-auth-token-file` (and MMS_AUTH_TOKEN_FILE) forwards
#     the token on every request: /api/search answers 200; without it the page
#     gets 502 `unauthorized`
# Skipped (77) while `serve` has no --auth-token-file.
set -u
MMSAGE=${MMSAGE:?}
"$MMSAGE" serve --help 2>&1 | grep -q -- "--auth-token-file" || {
    echo "SKIP: this mmsage serve has no --auth-token-file"
    exit 77
}
tmp=$(mktemp -d)
server_pid='' web_pid=''
cleanup() {
    [ -n "$web_pid" ] && kill "$web_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
MPIRUN=(mpirun --oversubscribe --bind-to none)
unset MMS_AUTH_TOKEN_FILE

{ "$MMSAGE" synth --images 1000 --dim 32 --tags 40 --seed 5 --out "$tmp/C" &&
    "${MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog "$tmp/C" --out "$tmp/G" --threshold -1 &&
    "$MMSAGE" partition --graph "$tmp/G" --parts 2 &&
    "${MPIRUN[@]}" -np 2 "$MMSAGE" train --graph "$tmp/G" --out "$tmp/M" --max-steps 5 --lr 1e-3 &&
    "${MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph "$tmp/G" --model "$tmp/M" --out "$tmp/I"; } \
    >"$tmp/index.log" 2>&1 || { tail -20 "$tmp/index.log"; echo "FAIL: index pipeline"; exit 1; }
tag=$(head -n 1 "$tmp/I/tags.tsv" | cut -f1)
printf 'Tok-%s\n' "0123456789abcdef" >"$tmp/tok"
printf 'Tok-%s\n\n' "0123456789abcdef" >"$tmp/tok2nl"
: >"$tmp/empty"
chmod 600 "$tmp/tok" "$tmp/tok2nl" "$tmp/empty"

: >"$tmp/serve.err"
"${MPIRUN[@]}" -np 3 "$MMSAGE" serve --index "$tmp/I" --listen 127.0.0.1:0 --pid-file "$tmp/pid" \
    --auth-token-file "$tmp/tok" >/dev/null 2>"$tmp/serve.err" &
server_pid=$!
for _ in $(seq 600); do
    grep -q "^ready: listening on" "$tmp/serve.err" && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
addr=$(sed -n 's/^ready: listening on \([^ ]*\) .*/\1/p' "$tmp/serve.err")
[ -n "$addr" ] || { cat "$tmp/serve.err"; echo "FAIL: server did not start"; exit 1; }
q() { timeout 60 "$MMSAGE" query --server "$addr" --retry-for 5 "$@"; }

# ---- query
q --tags "$tag" --json >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] || fail "no token: exit $rc, expected 1"
grep -q '"name":"unauthorized"' "$tmp/out" || fail "no token: $(cat "$tmp/out")"
grep -q "; retry " "$tmp/err" && fail "unauthorized was retried: $(cat "$tmp/err")"
q --tags "$tag" --json --auth-token-file "$tmp/tok" >"$tmp/out" 2>"$tmp/err" || fail "with --auth-token-file: $(cat "$tmp/err")"
grep -q '"ok":true' "$tmp/out" || fail "with --auth-token-file: $(cat "$tmp/out")"
MMS_AUTH_TOKEN_FILE=$tmp/tok q --op ping >"$tmp/out" 2>"$tmp/err" || fail "ping with MMS_AUTH_TOKEN_FILE: $(cat "$tmp/err")"
printf -- '-\t%s\n0\n' "$tag" >"$tmp/b.tsv"
MMS_AUTH_TOKEN_FILE=$tmp/tok q --batch "$tmp/b.tsv" --image-features "$tmp/C/features.npy" >"$tmp/out" 2>"$tmp/err" ||
    fail "batch with MMS_AUTH_TOKEN_FILE: $(cat "$tmp/err")"
[ "$(grep -c '"ok":true' "$tmp/out")" = 2 ] || fail "batch with the token: $(cat "$tmp/out")"
q --op ping --auth-token-file "$tmp/tok2nl" >"$tmp/out" 2>"$tmp/err" && fail "a token with a second newline was accepted"
grep -q "unauthorized" "$tmp/err" || fail "two newlines: $(cat "$tmp/err")"
for f in "empty|is empty" "missing|: No such file or directory"; do
    name=${f%%|*} why=${f#*|}
    q --op ping --auth-token-file "$tmp/$name" >"$tmp/out" 2>"$tmp/err" && fail "token file $name accepted"
    grep -q "query: --auth-token-file $tmp/$name *$why" "$tmp/err" || fail "token file $name: $(cat "$tmp/err")"
    grep -q "cannot connect\|retry" "$tmp/err" && fail "token file $name: connected before refusing it"
done
MMS_AUTH_TOKEN_FILE=$tmp/empty q --op ping >"$tmp/out" 2>"$tmp/err" && fail "an empty MMS_AUTH_TOKEN_FILE accepted"
grep -q "MMS_AUTH_TOKEN_FILE $tmp/empty is empty" "$tmp/err" || fail "empty MMS_AUTH_TOKEN_FILE: $(cat "$tmp/err")"

# ---- web: forwards the server's token
# web_search ARGS...: start `mmsage web` with ARGS, POST one search, print the HTTP status, stop it
web_search() {
    : >"$tmp/web.err"
    "$MMSAGE" web --server "$addr" --catalog "$tmp/C" --listen 127.0.0.1:0 "$@" 2>"$tmp/web.err" &
    web_pid=$!
    local url=''
    for _ in $(seq 100); do
        url=$(sed -n 's/^ready: \(http:[^ ]*\) .*/\1/p' "$tmp/web.err")
        [ -n "$url" ] && break
        sleep 0.1
    done
    if [ -n "$url" ]; then
        curl -s -o "$tmp/web.json" -w '%{http_code}' -H 'Content-Type: application/json' \
            -d "{\"tags\":[\"$tag\"],\"k\":3}" "${url}api/search"
    else
        echo "web did not start: $(cat "$tmp/web.err")"
    fi
    kill "$web_pid" 2>/dev/null
    wait "$web_pid" 2>/dev/null
    web_pid=''
}
if command -v curl >/dev/null; then
    st=$(web_search --server-auth-token-file "$tmp/tok")
    [ "$st" = 200 ] && grep -q '"ok":true' "$tmp/web.json" || fail "web with the token: $st $(cat "$tmp/web.json")"
    st=$(MMS_AUTH_TOKEN_FILE=$tmp/tok web_search)
    [ "$st" = 200 ] || fail "web with MMS_AUTH_TOKEN_FILE: $st $(cat "$tmp/web.json")"
    st=$(web_search)
    [ "$st" = 502 ] && grep -q '"code":"unauthorized"' "$tmp/web.json" || fail "web without the token: $st $(cat "$tmp/web.json")"
    "$MMSAGE" web --server "$addr" --catalog "$tmp/C" --listen 127.0.0.1:0 --server-auth-token-file "$tmp/empty" \
        >/dev/null 2>"$tmp/web.err" && fail "web with an empty server token file started"
    grep -q "web: --server-auth-token-file $tmp/empty is empty" "$tmp/web.err" || fail "web, empty token file: $(cat "$tmp/web.err")"
else
    echo "query_auth: no curl, web part skipped"
fi

kill -TERM "$(cat "$tmp/pid")"
wait "$server_pid"
server_pid=''
[ "$fails" -eq 0 ] || { echo "query_auth: $fails failure(s)"; exit 1; }
echo "query_auth: ok"
