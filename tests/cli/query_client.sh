#!/usr/bin/env bash
# query_client.sh: `mmsage query` against the fake query server of
# tests/unit/test_netserver.c (`test_netserver --serve`, 8-d features) on
# 127.0.0.1 with an ephemeral port: ping and info; a search from a feature row
# with tags (table, predicted tags, the unknown-keyword warning); --json; a
# server-side error (exit status and message); a feature width the index does
# not have; --batch with pipelining (one JSON line per query, a summary on
# stderr) and a bad batch line; bad options; no server listening; SIGTERM
# stops the server cleanly. Skipped (77) while `query` is not in the command
# table or the test server is not built.
# labels: unit
set -u
: "${MMSAGE:?set MMSAGE to the mmsage binary}"
SERVER_BIN="${MMS_BUILD:-}/tests/test_netserver"
if ! "$MMSAGE" query --help >/dev/null 2>&1; then
    echo "SKIP: this mmsage has no 'query' command yet"
    exit 77
fi
if [ ! -x "$SERVER_BIN" ]; then
    echo "SKIP: test server $SERVER_BIN not built (set MMS_BUILD)"
    exit 77
fi
T=$(mktemp -d)
SP=
cleanup() {
    [ -n "$SP" ] && kill "$SP" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
q() { timeout 30 "$MMSAGE" query --server "$ADDR" --timeout 10 "$@"; }

# the fake server, ready when it prints its address
"$SERVER_BIN" --serve --dim 8 >"$T/srv.out" 2>"$T/srv.err" &
SP=$!
ADDR=
for _ in $(seq 1 100); do
    ADDR=$(sed -n 's/^listening on //p' "$T/srv.out")
    [ -n "$ADDR" ] && break
    sleep 0.05
done
if [ -z "$ADDR" ]; then
    echo "FAIL the test server did not start:"
    cat "$T/srv.err"
    exit 1
fi
case "$ADDR" in 127.0.0.1:[0-9]*) ;; *) fail "server address '$ADDR' is not on loopback" ;; esac

"$MMSAGE" synth --out "$T/cat8" --images 40 --dim 8 --seed 3 >/dev/null 2>&1 || fail "synth 8-d"
"$MMSAGE" synth --out "$T/cat9" --images 10 --dim 9 --seed 3 >/dev/null 2>&1 || fail "synth 9-d"
F8="$T/cat8/features.npy"

# 1. ping and info
q --op ping >"$T/out" 2>"$T/err" || { fail "ping"; cat "$T/err"; }
grep -Eq "^pong from $ADDR in [0-9.]+ ms$" "$T/out" || { fail "ping output:"; cat "$T/out"; }
q --op info >"$T/out" 2>"$T/err" || { fail "info"; cat "$T/err"; }
grep -Eq '^kind +fake$' "$T/out" && grep -Eq '^dim +8$' "$T/out" || { fail "info output:"; cat "$T/out"; }

# 2. a search: image row + multi-word tags, predicted tags, warning
q --image-features "$F8" --row 3 --tags "white background, zebra,studio" --k 5 --predict-tags \
    --tag-k 3 --neighbors 4 >"$T/out" 2>"$T/err" || { fail "search"; cat "$T/err"; }
[ "$(grep -Ec '^ +[1-5]  [0-9.]+ +img[0-9]+  tag_a, tag_b$' "$T/out")" -eq 5 ] ||
    { fail "search table is not 5 rows:"; cat "$T/out"; }
grep -q '^predicted tags:$' "$T/out" && grep -Eq '^ +3  0\.33333 +tag2$' "$T/out" ||
    { fail "no predicted tags:"; cat "$T/out"; }
grep -q "unknown keyword 'zebra'" "$T/out" || { fail "no warning:"; cat "$T/out"; }
grep -Eq '^ +1  0\.50000 ' "$T/out" || fail "visual default for image+tags is not 0.5 (the fake echoes it)"
grep -Eq 'timing_us: fake 4, server [0-9]+' "$T/out" || { fail "timings:"; cat "$T/out"; }

# 3. --json: one line, the documented keys; --visual and --exclude reach the server
q --image-features "$F8" --row 0 --k 2 --visual 0.25 --exclude self_id --json >"$T/out" 2>"$T/err" ||
    { fail "json search"; cat "$T/err"; }
[ "$(wc -l <"$T/out")" -eq 1 ] || fail "--json printed $(wc -l <"$T/out") lines"
grep -q '^{"id":1,"ok":true,"results":\[{"id":"self_id","score":0.25,"tags":\["tag_a","tag_b"\]},{"id":"img00001"' "$T/out" ||
    { fail "json output:"; cat "$T/out"; }
if command -v python3 >/dev/null; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and len(d["results"])==2 and "server" in d["timing_us"]' "$T/out" ||
        fail "--json output is not the expected JSON"
fi

# 4. errors from the server: exit status and message
if q --tags fail >"$T/out" 2>"$T/err"; then fail "a failed query exited 0"; fi
grep -q 'error internal (12): fake handler: asked to fail' "$T/err" || { fail "internal error message:"; cat "$T/err"; }
q --image-features "$T/cat9/features.npy" --json >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -eq 1 ] || fail "vector_length exit status $rc, expected 1"
grep -q '"code":3,"name":"vector_length"' "$T/out" || { fail "vector_length json:"; cat "$T/out"; }

# 5. batch: 60 queries pipelined (rows, tags-only, visual, exclude), one JSON line each
{
    echo "# row<TAB>tags<TAB>visual<TAB>exclude"
    for i in $(seq 0 39); do printf '%d\tsky,white background\t0.%d\timg%d\n' "$i" $((i % 10)) "$i"; done
    for i in $(seq 1 10); do printf -- '-\tzebra,sea\n'; done
    echo
    for i in $(seq 1 10); do printf '%d\n' "$i"; done
} >"$T/q.tsv"
q --image-features "$F8" --batch "$T/q.tsv" --k 3 --pipeline 8 >"$T/out" 2>"$T/err" ||
    { fail "batch"; cat "$T/err"; }
[ "$(wc -l <"$T/out")" -eq 60 ] || fail "batch printed $(wc -l <"$T/out") lines, expected 60"
[ "$(grep -c '"ok":true' "$T/out")" -eq 60 ] || fail "batch: not all 60 ok"
grep -q '"id":1,.*"results":\[{"id":"img0","score":0.0,' "$T/out" || { fail "batch line 1:"; head -1 "$T/out"; }
grep -q '"line":2,' "$T/out" && grep -q '"line":54,' "$T/out" || fail "batch lines lack 'line'"
grep -Eq '^query: 60 queries in [0-9.]+ s, [0-9.]+ QPS \(pipeline 8\), latency p50 [0-9.]+ ms, p99 [0-9.]+ ms, max [0-9.]+ ms; 0 answered with an error$' "$T/err" ||
    { fail "batch summary:"; cat "$T/err"; }
printf '0\tsky\n99\tsky\n' >"$T/bad.tsv"
if q --image-features "$F8" --batch "$T/bad.tsv" >"$T/out" 2>"$T/err"; then fail "bad batch row exited 0"; fi
grep -q "bad.tsv:2: bad row '99'" "$T/err" || { fail "bad row message:"; cat "$T/err"; }
[ "$(wc -l <"$T/out")" -eq 1 ] || fail "the good line before the bad one was not answered"

# 6. bad options are refused before connecting
for args in "--k 0" "--visual 2" "--op zebra" "--tags a --jpeg /nonexistent.jpg --image-features $F8" \
    "--image-features $F8 --row 40" "--neighbors 1001"; do
    # shellcheck disable=SC2086
    if q $args >"$T/out" 2>"$T/err"; then fail "query $args exited 0"; fi
    [ -s "$T/err" ] || fail "query $args gave no message"
done
if timeout 30 "$MMSAGE" query --server 127.0.0.1:1 --op ping --timeout 2 --retry-for 0 >"$T/out" 2>"$T/err"; then
    fail "query to a closed port exited 0"
fi
grep -q 'cannot connect to 127.0.0.1:1' "$T/err" || { fail "closed port message:"; cat "$T/err"; }

# 6b. the handshake (docs/protocol.md, "Handshake"): another kind of server is
# "not an mmsage server" at once, whatever it answers; HTTP on the query port
# gets a plain 400 that says what the port is
cat >"$T/other.py" <<'EOF2'
# other.py MODE: listen on an ephemeral port (printed) and answer every
# connection as MODE does: http (python's http.server), ssh (a banner first),
# v9 (an mmsage hello of protocol 9), silent (reads, says nothing for 5 s).
import socket, sys, threading, time, http.server
mode = sys.argv[1]
if mode == "http":
    srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
ls = socket.socket()
ls.bind(("127.0.0.1", 0)); ls.listen(16)
print(ls.getsockname()[1], flush=True)
def handle(c):
    if mode == "ssh": c.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"); c.recv(100)
    elif mode == "v9": c.sendall(b"MMSG\x00\x09\r\n"); c.recv(100)
    elif mode == "silent": c.recv(100); time.sleep(5)
    c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
EOF2
other() { # MODE EXPECTED_MESSAGE [TIMEOUT]: mmsage query against it fails at once with the message
    python3 "$T/other.py" "$1" >"$T/other.$1" 2>/dev/null & # (a file per mode: no stale port)
    local op=$! port= t0 t1
    for _ in $(seq 1 100); do port=$(head -n 1 "$T/other.$1"); [ -n "$port" ] && break; sleep 0.05; done
    t0=$(date +%s.%N)
    # final failures are never retried (--retry-for 5); a silent peer is a timeout, which
    # would be (transient), so it gets none
    local rf=5; [ -n "${3:-}" ] && rf=0
    timeout 20 "$MMSAGE" query --server "127.0.0.1:$port" --timeout "${3:-10}" --retry-for "$rf" --tags x >"$T/out" 2>"$T/err"
    local rc=$?
    t1=$(date +%s.%N)
    kill "$op" 2>/dev/null; wait "$op" 2>/dev/null
    [ "$rc" -ne 0 ] || fail "query against $1 exited 0"
    grep -qF "$2" "$T/err" || { fail "query against $1: no '$2':"; cat "$T/err"; }
    grep -q "retry" "$T/err" && { fail "query against $1 was retried:"; cat "$T/err"; }
    awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 3) }' || fail "query against $1 took $t0..$t1"
}
other http "is not an mmsage server (it answered '"
other ssh "is not an mmsage server (it answered 'SSH-2.0-OpenSSH_9.2p1 Debian-2')"
other v9 "the server speaks protocol 9, this client 2"
other silent "within 1 s (not even a hello: is it an mmsage server?)" 1
if command -v curl >/dev/null; then
    out=$(curl -sS --max-time 5 -w '\n%{http_code}' "http://$ADDR/" 2>&1)
    [ "$(echo "$out" | tail -n 1)" = 400 ] && echo "$out" | grep -q "is an mmsage query server" ||
        fail "curl on the query port: $out"
fi

# 7. SIGTERM drains and stops the server
kill -TERM "$SP"
wait "$SP"
rc=$?
SP=
[ "$rc" -eq 0 ] || fail "server exit status $rc after SIGTERM"
grep -q 'stopped by signal 15' "$T/srv.err" || { fail "server stop:"; cat "$T/srv.err"; }

if [ "$failures" -ne 0 ]; then
    echo "query_client: $failures failures"
    exit 1
fi
echo "query_client: all checks passed"
