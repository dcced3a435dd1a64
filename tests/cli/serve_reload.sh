#!/usr/bin/env bash
# labels: mpi e2e
# serve_reload.sh: a query server that reloads without dropping a query
# (issue 14, item 4; docs/query.md, "Reload").
#   - one synthetic catalog and graph, two indexes of it trained differently
#     (A: hidden 16, seed 1; B: hidden 24, seed 2: their answers differ, and so
#     do their widths) and C, a copy of A with 16 bytes of shard-0/emb.npy
#     flipped (its manifest checksum fails on the worker that holds shard 0)
#   - `serve` (3 ranks, a token) through the symlink cur/index, as the nightly
#     job's `current` link; the answers of A and B to the query file are taken
#     first (the switch A -> B by `query --reload`)
#   - a client loop streams the query file again and again (`query --queries`,
#     pipelined) while the link moves and the server is told: SIGHUP to the
#     coordinator (-> A), C by `query --reload` (refused, naming the file),
#     `query --reload` (-> B), SIGHUP to every rank as a launcher that
#     forwards it would (-> A: the workers ignore it, one reload), C by SIGHUP
#     (refused); a reload without the token is `unauthorized` and reloads
#     nothing; after each step `info` reports the directory (and version) served
#   - counted: every answer of the loop is ok and equals A's or B's answer to
#     its line (ids and scores): zero failed, zero mixed; the loop saw both
#     versions, ran at least 2000 queries, and every client exited 0
#   - a reload request pipelined between two searches on one connection (one
#     batch): all three answered ok (on the AddressSanitizer twin, when built,
#     a version freed while its strings are still borrowed is reported)
#   - SIGTERM drains and exits 0; the summary counts 8 reloads, 2 refused.
set -u
MMSAGE=${MMSAGE:?}
tmp=$(mktemp -d)
server_pid=''
loop_pid=''
cleanup() {
    [ -n "$loop_pid" ] && kill "$loop_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
MPIRUN=(mpirun --oversubscribe --bind-to none)
# the server runs on the AddressSanitizer twin when the build has one: responses
# borrow strings from the index, so a version freed too early is a
# use-after-free it reports (leak checking is serve_asan.sh's)
SERVER=$MMSAGE
if [ -n "${MMSAGE_ASAN:-}" ] && [ -x "$MMSAGE_ASAN" ]; then
    SERVER=$MMSAGE_ASAN
    export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
    echo "serve_reload: the server is the AddressSanitizer build"
fi
command -v jq >/dev/null || { echo "SKIP: jq not found"; exit 77; }

# ---- the indexes
"$MMSAGE" synth --images 2000 --dim 32 --tags 50 --seed 11 --out "$tmp/C" >/dev/null 2>&1 ||
    { echo "synth failed"; exit 1; }
{
    "${MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog "$tmp/C" --out "$tmp/G" --threshold -1 &&
        "$MMSAGE" partition --graph "$tmp/G" --parts 2 &&
        "${MPIRUN[@]}" -np 2 "$MMSAGE" train --graph "$tmp/G" --out "$tmp/MA" --max-steps 20 \
            --lr 1e-3 --hidden 16 --seed 1 &&
        "${MPIRUN[@]}" -np 2 "$MMSAGE" train --graph "$tmp/G" --out "$tmp/MB" --max-steps 20 \
            --lr 1e-3 --hidden 24 --seed 2 &&
        "${MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph "$tmp/G" --model "$tmp/MA" --out "$tmp/IA" &&
        "${MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph "$tmp/G" --model "$tmp/MB" --out "$tmp/IB"
} >"$tmp/log" 2>&1 || { tail -20 "$tmp/log"; echo "index pipeline failed"; exit 1; }
cp -r "$tmp/IA" "$tmp/IC"
python3 - "$tmp/IC/shard-0/emb.npy" <<'EOF' || { echo "cannot corrupt the copy"; exit 1; }
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(300)
    b = f.read(16)
    f.seek(300)
    f.write(bytes(x ^ 0x5A for x in b))
EOF
IA=$(realpath "$tmp/IA") IB=$(realpath "$tmp/IB") IC=$(realpath "$tmp/IC")
mkdir "$tmp/cur"
ln -sfn "$IA" "$tmp/cur/index"
# the link moves the way the nightly job moves it: a new link renamed over the old
relink() { ln -sfn "$1" "$tmp/cur/index.new" && mv -T "$tmp/cur/index.new" "$tmp/cur/index"; }

# the queries: 100 catalog rows, every other one with its tags, a few fused
awk -F'\t' 'NR <= 100 { r = NR - 1; t = $3; gsub(/\|/, ",", t)
    if (r % 2) print r; else if (r % 4) print r "\t" t; else print r "\t" t "\t0.5" }' \
    "$tmp/C/images.tsv" >"$tmp/q.tsv"
printf 's3cret-reload-token\n' >"$tmp/token"
chmod 600 "$tmp/token"
export MMS_AUTH_TOKEN_FILE="$tmp/token"

# ---- the server, through the link
: >"$tmp/serve.err"
"${MPIRUN[@]}" -np 3 "$SERVER" serve --index "$tmp/cur/index" --listen 127.0.0.1:0 \
    --auth-token-file "$tmp/token" --pid-file "$tmp/pid" >"$tmp/serve.out" 2>"$tmp/serve.err" &
server_pid=$!
for _ in $(seq 600); do
    grep -q "^ready: listening on" "$tmp/serve.err" && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
port=$(sed -n 's/^ready: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/serve.err")
coord_pid=$(cat "$tmp/pid" 2>/dev/null)
[ -n "$port" ] && [ -n "$coord_pid" ] || { cat "$tmp/serve.err"; echo "server did not start"; exit 1; }
S=(--server "127.0.0.1:$port" --retry-for 3)
# alive WHEN: the server is still up, else the test ends here
alive() {
    kill -0 "$server_pid" 2>/dev/null && return 0
    fail "$1: the server died"
    tail -30 "$tmp/serve.err"
    exit 1
}
Q=(--queries "$tmp/q.tsv" --image-features "$tmp/C/features.npy" --k 5)

# info_is DIR WHEN: `info` reports DIR (and a version) within 10 s
info_is() {
    local got='' v=''
    for _ in $(seq 100); do
        alive "$2"
        "$MMSAGE" query "${S[@]}" --op info --json >"$tmp/info" 2>"$tmp/info.err"
        got=$(jq -r '.info.index' "$tmp/info" 2>/dev/null)
        v=$(jq -r '.info.version' "$tmp/info" 2>/dev/null)
        [ "$got" = "$1" ] && break
        sleep 0.1
    done
    [ "$got" = "$1" ] || { fail "$2: info reports '$got', expected '$1'"; return; }
    [ "$v" = 1 ] || fail "$2: info reports version '$v', expected 1"
    echo "ok   $2: serving $(basename "$got"), version $v"
}
# canon FILE: one line per answer, "LINE<TAB>ids<TAB>scores", sorted by line
canon() { jq -r '[.line, ([.results[].id] | join(",")), ([.results[].score | tostring] | join(","))] | @tsv' "$1" | sort -n; }
reloads_logged() { grep -c "engine: reloaded" "$tmp/serve.err"; }
refusals_logged() { grep -c "engine: reload of .* refused" "$tmp/serve.err"; }

info_is "$IA" "opened through the link"
"$MMSAGE" query "${S[@]}" "${Q[@]}" >"$tmp/refA.jsonl" 2>"$tmp/qerr" ||
    fail "the queries on A: $(cat "$tmp/qerr")"
relink "$IB"
"$MMSAGE" query "${S[@]}" --reload --json >"$tmp/r1" 2>"$tmp/r1.err" ||
    fail "query --reload to B: $(cat "$tmp/r1.err")"
[ "$(jq -r '.info.index' "$tmp/r1")" = "$IB" ] && [ "$(jq -r '.info.old_index' "$tmp/r1")" = "$IA" ] &&
    [ "$(jq -r '.info.version' "$tmp/r1")" = 1 ] && [ "$(jq -r '.info.old_version' "$tmp/r1")" = 1 ] ||
    fail "the reload reply does not name A -> B: $(cat "$tmp/r1")"
info_is "$IB" "query --reload (B)"
"$MMSAGE" query "${S[@]}" "${Q[@]}" >"$tmp/refB.jsonl" 2>"$tmp/qerr" ||
    fail "the queries on B: $(cat "$tmp/qerr")"
canon "$tmp/refA.jsonl" >"$tmp/refA"
canon "$tmp/refB.jsonl" >"$tmp/refB"
[ "$(wc -l <"$tmp/refA")" = 100 ] && [ "$(wc -l <"$tmp/refB")" = 100 ] ||
    fail "the reference answers are not 100 lines each"
ndiff=$(join -t $'\t' "$tmp/refA" "$tmp/refB" | awk -F'\t' '$2 != $4 || $3 != $5' | wc -l)
[ "$ndiff" -ge 50 ] || fail "A and B answer alike ($ndiff of 100 lines differ): the test could not see a mix"

# ---- the client loop
: >"$tmp/loop.status"
(
    i=0
    while [ ! -e "$tmp/stop" ]; do
        "$MMSAGE" query "${S[@]}" "${Q[@]}" --pipeline 16 \
            >"$tmp/loop.$i.jsonl" 2>"$tmp/loop.$i.err"
        echo "$i $?" >>"$tmp/loop.status"
        i=$((i + 1))
    done
) &
loop_pid=$!
sleep 1

# 1. SIGHUP to the coordinator -> A
relink "$IA"
kill -HUP "$coord_pid"
info_is "$IA" "SIGHUP to the coordinator (A)"
sleep 1
# 2. the corrupt copy by a reload request: refused, naming the file
relink "$IC"
"$MMSAGE" query "${S[@]}" --reload --json >"$tmp/r2" 2>"$tmp/r2.err"
rc=$?
[ "$rc" = 1 ] || fail "a reload to the corrupt copy exited $rc, expected 1"
[ "$(jq -r '.error.name' "$tmp/r2")" = reload_refused ] || fail "corrupt copy: not reload_refused: $(cat "$tmp/r2")"
jq -r '.error.message' "$tmp/r2" | grep -q "IC/shard-0/emb.npy' is corrupt" ||
    fail "corrupt copy: the reply does not name the file: $(cat "$tmp/r2")"
grep -q "engine: reload of .*IC) refused, still serving version 1 ($IA): .*IC/shard-0/emb.npy' is corrupt" \
    "$tmp/serve.err" || fail "no log line naming the corrupt file"
info_is "$IA" "corrupt copy by query --reload refused (still A)"
sleep 1
# 3. without the token: unauthorized, nothing reloaded
relink "$IB"
n0=$(reloads_logged)
MMS_AUTH_TOKEN_FILE='' "$MMSAGE" query "${S[@]}" --reload --json >"$tmp/r3" 2>/dev/null
rc=$?
[ "$rc" = 1 ] && [ "$(jq -r '.error.name' "$tmp/r3")" = unauthorized ] ||
    fail "a reload without the token: exit $rc, $(cat "$tmp/r3")"
[ "$(reloads_logged)" = "$n0" ] || fail "a reload without the token reloaded"
info_is "$IA" "reload without the token refused (still A)"
# 4. with the token -> B
"$MMSAGE" query "${S[@]}" --reload >"$tmp/r4" 2>"$tmp/r4.err" || fail "query --reload to B: $(cat "$tmp/r4.err")"
grep -q "^old_index *$IA\$" "$tmp/r4" && grep -q "^index *$IB\$" "$tmp/r4" ||
    fail "query --reload does not print the old and new directories: $(cat "$tmp/r4")"
info_is "$IB" "query --reload (B)"
sleep 1
# 5. a reload request in the same batch as searches (one connection, three
#    frames in one write): the searches are answered by the old version B, whose
#    strings their results borrow; the reload -> A; all three ok
relink "$IA"
tags0=$(awk -F'\t' 'NR == 1 { print $3 }' "$tmp/C/images.tsv")
python3 - "$port" "$tmp/token" "$tags0" >"$tmp/batch.out" 2>&1 <<'PY' ||
import socket, struct, sys
port, token, tags = int(sys.argv[1]), open(sys.argv[2], "rb").read().rstrip(b"\n"), sys.argv[3].split("|")
def s(b):
    b = b if isinstance(b, bytes) else b.encode()
    return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
def frame(fields):
    m = bytes([0x80 | len(fields)])
    for k, v in fields:
        m += s(k)
        if isinstance(v, int): m += bytes([v])
        elif isinstance(v, list): m += bytes([0x90 | len(v)]) + b"".join(s(x) for x in v)
        else: m += s(v)
    return struct.pack(">I", len(m)) + m
search = lambda i: frame([("id", i), ("op", "search"), ("tags", tags[:3]), ("k", 5), ("auth", token)])
c = socket.create_connection(("127.0.0.1", port), timeout=30)
c.sendall(b"MMSG\x00\x02\r\n" + search(1) + frame([("id", 2), ("op", "reload"), ("auth", token)]) + search(3))
buf = b""
def need(n):
    global buf
    while len(buf) < n:
        d = c.recv(65536)
        if not d: sys.exit("the server closed the connection after %d bytes" % len(buf))
        buf += d
need(8)
buf = buf[8:]
for i in range(3):
    need(4)
    n = struct.unpack(">I", buf[:4])[0]
    need(4 + n)
    r, buf = buf[4:4 + n], buf[4 + n:]
    if b"\xa2ok\xc3" not in r: sys.exit("response %d is not ok: %r" % (i + 1, r[:300]))
print("3 responses ok")
PY
    fail "searches around a reload in one batch: $(cat "$tmp/batch.out")"
info_is "$IA" "a reload in a batch of searches (A)"
sleep 1
relink "$IB"
kill -HUP "$coord_pid"
info_is "$IB" "SIGHUP to the coordinator (B)"
# 6. SIGHUP to every rank (as a launcher that forwards it): one reload -> A
relink "$IA"
n0=$(reloads_logged)
mapfile -t ranks < <(pgrep -f -- "serve --index $tmp/cur/index" | grep -vx "$server_pid")
[ "${#ranks[@]}" = 3 ] || fail "expected 3 rank processes, found ${#ranks[@]}: ${ranks[*]}"
kill -HUP "${ranks[@]}"
info_is "$IA" "SIGHUP to every rank (A)"
sleep 1
[ "$(reloads_logged)" = $((n0 + 1)) ] || fail "SIGHUP to every rank: $(($(reloads_logged) - n0)) reloads, expected 1"
for p in "${ranks[@]}"; do kill -0 "$p" 2>/dev/null || fail "rank process $p died of SIGHUP"; done
# 7. the corrupt copy by SIGHUP: refused, still A
relink "$IC"
n1=$(refusals_logged)
kill -HUP "$coord_pid"
for _ in $(seq 100); do [ "$(refusals_logged)" -gt "$n1" ] && break; sleep 0.1; done
[ "$(refusals_logged)" = $((n1 + 1)) ] || fail "SIGHUP to the corrupt copy: no refusal logged"
info_is "$IA" "corrupt copy by SIGHUP refused (still A)"
sleep 1

# ---- the loop's answers
touch "$tmp/stop"
wait "$loop_pid"
loop_pid=''
runs=$(wc -l <"$tmp/loop.status")
bad_runs=$(awk '$2 != 0' "$tmp/loop.status" | wc -l)
[ "$bad_runs" = 0 ] || fail "$bad_runs of $runs client runs exited non-zero: $(awk '$2 != 0' "$tmp/loop.status" | head -3)"
cat "$tmp"/loop.*.jsonl >"$tmp/all.jsonl"
total=$(wc -l <"$tmp/all.jsonl")
failed=$(jq -r 'select(.ok != true) | .line' "$tmp/all.jsonl" | wc -l)
jq -r '[.line, ([.results[].id] | join(",")), ([.results[].score | tostring] | join(","))] | @tsv' \
    "$tmp/all.jsonl" | awk -F'\t' -v A="$tmp/refA" -v B="$tmp/refB" '
    BEGIN { while ((getline l < A) > 0) { split(l, f, "\t"); a[f[1]] = f[2] "\t" f[3] }
            while ((getline l < B) > 0) { split(l, f, "\t"); b[f[1]] = f[2] "\t" f[3] } }
    { k = $2 "\t" $3; if (k == a[$1]) na++; else if (k == b[$1]) nb++; else nx++ }
    END { printf "%d %d %d\n", na, nb, nx }' >"$tmp/count"
read -r na nb nx <"$tmp/count"
echo "loop: $runs runs, $total answers: $failed failed; $na equal to A's, $nb to B's, $nx to neither"
[ "$failed" = 0 ] || fail "$failed queries failed during the reloads"
[ "$nx" = 0 ] || fail "$nx answers are neither A's nor B's"
[ "$total" -ge 2000 ] || fail "only $total queries answered (at least 2000 wanted)"
[ "$na" -gt 0 ] && [ "$nb" -gt 0 ] || fail "the loop did not see both versions (A $na, B $nb)"
[ $((na + nb + nx)) = "$total" ] || fail "counted $((na + nb + nx)) of $total answers"

# ---- stop
kill -TERM "$coord_pid"
for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$server_pid" 2>/dev/null && { fail "server still running 30 s after SIGTERM"; kill -9 "$server_pid"; }
wait "$server_pid"
rc=$?
server_pid=''
[ "$rc" = 0 ] || { fail "server exited $rc after SIGTERM"; tail -20 "$tmp/serve.err"; }
grep -q "ERROR: AddressSanitizer\|runtime error" "$tmp/serve.err" && fail "sanitizer report in the server log"
grep -q "serve: stopped: .* 8 reloads (2 refused)" "$tmp/serve.err" ||
    fail "the summary does not count 8 reloads, 2 refused: $(grep 'serve: stopped' "$tmp/serve.err")"

if [ "$fails" -ne 0 ]; then
    echo "--- server log (tail)"
    tail -30 "$tmp/serve.err"
    echo "serve_reload: $fails failures"
    exit 1
fi
echo "serve_reload: all checks passed"
