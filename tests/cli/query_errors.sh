#!/usr/bin/env bash
# query_errors.sh: `mmsage query` when things around it go wrong (issue 12),
# against the fake query server of tests/unit/test_netserver.c
# (`test_netserver --serve`) and a flaky TCP front to it (a small python3
# script below: per connection it answers `unavailable` and closes, closes at
# once (EOF), resets, forwards, or forwards N bytes of answers and then resets).
#   1. output that cannot be written: `> /dev/full` for one query (table and
#      --json) and for --batch exits non-zero with "writing to standard output:
#      No space left on device"; --out FILE under a file-size limit (EFBIG) and
#      --out with a refused query leave neither FILE nor a temporary; a good
#      --out is complete; an existing --out is refused (and kept) unless --force.
#   2. retries: unavailable, EOF and reset each retried once (one log line per
#      retry) and the answer printed once; a --batch whose connection is cut
#      mid-stream is resumed (every line answered once, in order); a refused
#      request (vector_length, internal) is not retried; --retry-for 0 does not
#      retry; the window is bounded (a closed port with --retry-for 2 gives up
#      within a few seconds); --server-file is read again until it appears.
# Skipped (77) without the test server or python3.
# labels: unit
set -u
: "${MMSAGE:?set MMSAGE to the mmsage binary}"
SERVER_BIN="${MMS_BUILD:-}/tests/test_netserver"
if [ ! -x "$SERVER_BIN" ]; then
    echo "SKIP: test server $SERVER_BIN not built (set MMS_BUILD)"
    exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: no python3 (the flaky front is a python3 script)"
    exit 77
fi
T=$(mktemp -d)
SP='' PP=''
cleanup() {
    [ -n "$SP" ] && kill "$SP" 2>/dev/null
    [ -n "$PP" ] && kill "$PP" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
now() { date +%s.%N; }

# the fake server, ready when it prints its address
"$SERVER_BIN" --serve --dim 8 >"$T/srv.out" 2>"$T/srv.err" &
SP=$!
ADDR=
for _ in $(seq 1 100); do
    ADDR=$(sed -n 's/^listening on //p' "$T/srv.out")
    [ -n "$ADDR" ] && break
    sleep 0.05
done
[ -n "$ADDR" ] || { echo "FAIL the test server did not start:"; cat "$T/srv.err"; exit 1; }
"$MMSAGE" synth --out "$T/cat8" --images 40 --dim 8 --seed 3 >/dev/null 2>&1 || fail "synth 8-d"
"$MMSAGE" synth --out "$T/cat9" --images 10 --dim 9 --seed 3 >/dev/null 2>&1 || fail "synth 9-d"
F8="$T/cat8/features.npy"
q() { timeout 60 "$MMSAGE" query --timeout 10 "$@"; }
{
    for i in $(seq 0 39); do printf '%d\tsky,white background\t0.5\n' "$i"; done
    for i in $(seq 0 39); do printf '%d\n' "$i"; done
} >"$T/q.tsv" # 80 queries

# ---- 1. outputs that cannot be written
nospace='writing to standard output: No space left on device'
for args in "--op ping" "--op info" "--op info --json" "--image-features $F8 --row 2 --json" \
    "--image-features $F8 --batch $T/q.tsv --pipeline 8"; do
    # shellcheck disable=SC2086
    q --server "$ADDR" $args >/dev/full 2>"$T/err"
    rc=$?
    [ "$rc" -ne 0 ] || fail "query $args > /dev/full exited 0"
    grep -q "$nospace" "$T/err" || { fail "query $args > /dev/full: no message:"; cat "$T/err"; }
done
# a batch stops at the first lost answer instead of running to the end
grep -q "(output lost)" "$T/err" || { fail "batch > /dev/full: summary does not say the output was lost:"; cat "$T/err"; }

# --out: complete on success; nothing under its name (nor a temporary) on failure
q --server "$ADDR" --image-features "$F8" --batch "$T/q.tsv" --out "$T/res.jsonl" >"$T/out" 2>"$T/err" ||
    { fail "batch --out"; cat "$T/err"; }
[ "$(wc -l <"$T/res.jsonl" 2>/dev/null)" = 80 ] || fail "batch --out wrote $(wc -l <"$T/res.jsonl" 2>/dev/null) lines, expected 80"
[ -s "$T/out" ] && fail "batch --out also printed on stdout"
echo old >"$T/old.jsonl"
q --server "$ADDR" --op ping --json --out "$T/old.jsonl" >/dev/null 2>"$T/err" && fail "an existing --out was replaced without --force"
grep -q "already exists (pass --force" "$T/err" || { fail "existing --out message:"; cat "$T/err"; }
[ "$(cat "$T/old.jsonl")" = old ] || fail "a refused --out was modified"
q --server "$ADDR" --op ping --json --out "$T/old.jsonl" --force >/dev/null 2>"$T/err" || { fail "--out --force"; cat "$T/err"; }
grep -q '"ok":true' "$T/old.jsonl" || fail "--out --force did not replace the file"
mkdir "$T/lim"
( trap '' XFSZ; ulimit -f 4; q --server "$ADDR" --image-features "$F8" --batch "$T/q.tsv" --out "$T/lim/res.jsonl" ) \
    >/dev/null 2>"$T/err"
rc=$?
[ "$rc" -ne 0 ] || fail "batch --out over the file size limit exited 0"
grep -q "writing to $T/lim/res.jsonl: File too large" "$T/err" || { fail "file size limit message:"; cat "$T/err"; }
[ -z "$(ls -A "$T/lim")" ] || fail "a failed --out left files: $(ls -A "$T/lim")"
q --server "$ADDR" --image-features "$T/cat9/features.npy" --json --out "$T/lim/refused.json" >/dev/null 2>"$T/err" &&
    fail "a refused query with --out exited 0"
[ -z "$(ls -A "$T/lim")" ] || fail "a refused query left files: $(ls -A "$T/lim")"

# ---- 2. retries
cat >"$T/flaky.py" <<'EOF'
# flaky.py PLAN TARGET_PORT: listen on an ephemeral port (printed), and treat
# connection i with PLAN's i-th comma-separated mode (the last one repeats):
# unavail (an `unavailable` frame, then close), eof (close at once), reset
# (close with RST), proxy (forward both ways), cut:N (forward, and reset the
# client after N bytes of answers).
import socket, struct, sys, threading

def enc(o):
    if isinstance(o, bool): return b"\xc3" if o else b"\xc2"
    if isinstance(o, int): return bytes([o])  # 0..127 only
    if isinstance(o, str):
        b = o.encode(); return bytes([0xa0 | len(b)]) + b  # < 32 bytes only
    if isinstance(o, dict):
        return bytes([0x80 | len(o)]) + b"".join(enc(k) + enc(v) for k, v in o.items())
    raise TypeError(o)

body = enc({"id": 0, "ok": False, "error": {"code": 13, "name": "unavailable", "message": "flaky: busy"}})
HELLO = b"MMSG" + struct.pack(">H", 2) + b"\r\n"  # the server's hello (protocol 2) comes first
UNAVAIL = HELLO + struct.pack(">I", len(body)) + body
plan, target = sys.argv[1].split(","), int(sys.argv[2])

def rst(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

def pump(a, b, limit, client):
    n = 0
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            if limit is not None and n + len(d) >= limit:
                b.sendall(d[: limit - n]); rst(client); return
            b.sendall(d); n += len(d)
    except OSError:
        pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass

def handle(c, mode):
    if mode == "unavail": c.sendall(UNAVAIL); c.close()
    elif mode == "eof": c.close()
    elif mode == "reset": rst(c)
    else:
        limit = int(mode[4:]) if mode.startswith("cut:") else None
        s = socket.create_connection(("127.0.0.1", target))
        threading.Thread(target=pump, args=(c, s, None, c), daemon=True).start()
        pump(s, c, limit, c)

ls = socket.socket()
ls.bind(("127.0.0.1", 0)); ls.listen(64)
print(ls.getsockname()[1], flush=True)
i = 0
while True:
    c, _ = ls.accept()
    mode = plan[min(i, len(plan) - 1)]; i += 1
    print("connection %d: %s" % (i, mode), file=sys.stderr, flush=True)
    threading.Thread(target=handle, args=(c, mode), daemon=True).start()
EOF
# start_flaky PLAN: (re)start the front; sets PP and FLAKY (its address)
start_flaky() {
    [ -n "$PP" ] && { kill "$PP" 2>/dev/null; wait "$PP" 2>/dev/null; }
    : >"$T/flaky.out"
    python3 "$T/flaky.py" "$1" "${ADDR##*:}" >"$T/flaky.out" 2>"$T/flaky.err" &
    PP=$!
    FLAKY=
    for _ in $(seq 1 100); do
        FLAKY=$(head -n 1 "$T/flaky.out")
        [ -n "$FLAKY" ] && break
        sleep 0.05
    done
    FLAKY=127.0.0.1:$FLAKY
}
retries() { grep -c "; retry [0-9]* in " "$1"; }

start_flaky unavail,eof,reset,proxy
q --server "$FLAKY" --retry-for 20 --image-features "$F8" --row 1 --json >"$T/out" 2>"$T/err" ||
    { fail "query through unavail,eof,reset"; cat "$T/err"; }
[ "$(wc -l <"$T/out")" = 1 ] && grep -q '^{"id":1,"ok":true' "$T/out" || { fail "answer after retries:"; cat "$T/out"; }
[ "$(retries "$T/err")" = 3 ] || { fail "expected 3 retry lines:"; cat "$T/err"; }
grep -q "is unavailable: flaky: busy; retry 1 in" "$T/err" || { fail "no unavailable retry line:"; cat "$T/err"; }
# the closed connection shows as EOF on read, a reset, or (when the close wins
# the race with the client's write, as on a loaded machine) a broken pipe
grep -q "the server closed the connection; retry 2 in\|Connection reset by peer; retry 2 in\|Broken pipe; retry 2 in" "$T/err" ||
    { fail "no EOF retry line:"; cat "$T/err"; }

# a batch cut after 3000 bytes of answers, and again on the next connection
start_flaky cut:3000,cut:5000,proxy
q --server "$FLAKY" --retry-for 20 --image-features "$F8" --batch "$T/q.tsv" --pipeline 16 >"$T/out" 2>"$T/err" ||
    { fail "batch through cuts"; cat "$T/err"; }
[ "$(wc -l <"$T/out")" = 80 ] || fail "batch through cuts printed $(wc -l <"$T/out") lines, expected 80"
[ "$(jq -r .line "$T/out" | tr '\n' ' ')" = "$(seq 1 80 | tr '\n' ' ')" ] || fail "batch through cuts: lines not 1..80 once each in order"
[ "$(grep -c '"ok":true' "$T/out")" = 80 ] || fail "batch through cuts: not all ok"
[ "$(retries "$T/err")" = 2 ] || { fail "batch through cuts: expected 2 retry lines:"; cat "$T/err"; }

# never retried: a refused request, an internal error, --retry-for 0
start_flaky proxy
q --server "$FLAKY" --retry-for 20 --image-features "$T/cat9/features.npy" --json >"$T/out" 2>"$T/err"
[ $? = 1 ] || fail "vector_length through the front: exit status not 1"
[ "$(retries "$T/err")" = 0 ] || { fail "a refused request was retried:"; cat "$T/err"; }
q --server "$FLAKY" --retry-for 20 --tags fail >"$T/out" 2>"$T/err" && fail "internal error exited 0"
[ "$(retries "$T/err")" = 0 ] || { fail "an internal error was retried:"; cat "$T/err"; }
start_flaky reset,proxy
q --server "$FLAKY" --retry-for 0 --op ping >"$T/out" 2>"$T/err" && fail "--retry-for 0 through a reset exited 0"
[ "$(retries "$T/err")" = 0 ] || { fail "--retry-for 0 retried:"; cat "$T/err"; }

# bounded: a closed port, --retry-for 2
t0=$(now)
q --server 127.0.0.1:1 --retry-for 2 --op ping >"$T/out" 2>"$T/err"
rc=$?
t1=$(now)
[ "$rc" = 2 ] || fail "closed port with retries: exit $rc, expected 2"
grep -q "Connection refused; retry 1 in" "$T/err" && grep -q "giving up after [0-9]* retries in 2\.[0-9] s" "$T/err" &&
    grep -q "cannot connect to 127.0.0.1:1: Connection refused" "$T/err" || { fail "closed port messages:"; cat "$T/err"; }
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 1.9 && b - a < 6) }' ||
    fail "closed port with --retry-for 2 took $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s"

# --server-file: absent, then written
(sleep 1; echo "$ADDR" >"$T/addr.tmp" && mv "$T/addr.tmp" "$T/server.addr") &
writer=$!
q --server-file "$T/server.addr" --retry-for 20 --op ping >"$T/out" 2>"$T/err" ||
    { fail "--server-file written late"; cat "$T/err"; }
grep -q "^pong from $ADDR in" "$T/out" || { fail "--server-file: ping output:"; cat "$T/out"; }
grep -q "cannot read the server address file $T/server.addr: No such file or directory; retry 1 in" "$T/err" ||
    { fail "--server-file: no retry line while the file is absent:"; cat "$T/err"; }
wait "$writer"

if [ "$failures" -ne 0 ]; then
    echo "query_errors: $failures failures"
    exit 1
fi
echo "query_errors: all checks passed"
