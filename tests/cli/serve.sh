#!/usr/bin/env bash
# labels: mpi e2e
# serve.sh: the query server end to end (`mmsage serve`, `mmsage query`, `mmsage search`).
#   - a 3000-image synthetic index (2 shards), served by 3 ranks on an ephemeral port
#   - image, tags, both, slider ends (visual 1 = image only, visual 0 = tags only),
#     predict_tags, info, an unknown keyword (warning)
#   - bad requests get their error code and the server keeps serving: malformed
#     MessagePack, k 0, a wrong vector length, NaN in a vector, visual 1.5,
#     a search with no usable input
#   - `search` over the same queries gives the server's results (ids, scores)
#   - SIGTERM to the coordinator drains and exits 0; a taken port and a
#     one-rank server fail cleanly
#   - with $MMS_SHARED_DATA/coco-subset: a JPEG-descriptor index answers a JPEG
#     query and refuses a JPEG that does not decode (code 9, "jpeg")
# On an AddressSanitizer build (MMS_SANITIZE=ON) the server's leak check is on:
# a leak makes its exit status non-zero (Open MPI's own allocations suppressed).
set -u
MMSAGE=${MMSAGE:?}
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

if ldd "$MMSAGE" 2>/dev/null | grep -q libasan; then
    printf '%s\n' leak:ompi_mpi_init leak:ompi_mpi_finalize leak:event_base_loop leak:libevent \
        leak:libopen-pal leak:libpmix leak:libhwloc > "$tmp/lsan.supp"
    export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0
    export LSAN_OPTIONS="suppressions=$tmp/lsan.supp"
    echo "serve: AddressSanitizer build: leak checking on"
fi

# ---- the index
"$MMSAGE" synth --images 3000 --dim 64 --tags 80 --seed 11 --out "$tmp/C" >/dev/null 2>&1 ||
    { echo "synth failed"; exit 1; }
"${MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog "$tmp/C" --out "$tmp/G" --threshold -1 >"$tmp/log" 2>&1 &&
    "$MMSAGE" partition --graph "$tmp/G" --parts 2 >>"$tmp/log" 2>&1 &&
    "${MPIRUN[@]}" -np 2 "$MMSAGE" train --graph "$tmp/G" --out "$tmp/M" --max-steps 30 --lr 1e-3 \
        >>"$tmp/log" 2>&1 &&
    "${MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph "$tmp/G" --model "$tmp/M" --out "$tmp/I" >>"$tmp/log" 2>&1 ||
    { cat "$tmp/log"; echo "index pipeline failed"; exit 1; }

# start_server INDEX NP: background server, sets $server_pid, $port, $coord_pid
start_server() {
    rm -f "$tmp/pid"
    : >"$tmp/serve.err" # exists before the background job opens it
    "${MPIRUN[@]}" -np "$2" "$MMSAGE" serve --index "$1" --listen 127.0.0.1:0 --pid-file "$tmp/pid" \
        >"$tmp/serve.out" 2>"$tmp/serve.err" &
    server_pid=$!
    for _ in $(seq 600); do
        grep -q "^ready: listening on" "$tmp/serve.err" && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    port=$(sed -n 's/^ready: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/serve.err")
    coord_pid=$(cat "$tmp/pid" 2>/dev/null)
    [ -n "$port" ] && [ -n "$coord_pid" ]
}

# stop_server: SIGTERM to the coordinator, expect exit 0
stop_server() {
    kill -TERM "$coord_pid"
    local rc=0
    for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$server_pid" 2>/dev/null; then
        fail "server still running 30 s after SIGTERM"
        kill -9 "$server_pid"
    fi
    wait "$server_pid"; rc=$?
    server_pid=
    [ "$rc" -eq 0 ] || { fail "server exited $rc after SIGTERM"; tail -20 "$tmp/serve.err"; }
    grep -q "serve: stopped:" "$tmp/serve.err" || fail "no drain summary in the server log"
    [ ! -e "$tmp/pid" ] || fail "pid file left behind"
}

start_server "$tmp/I" 3 || { cat "$tmp/serve.err"; echo "server did not start"; exit 1; }
grep -q "(2 shards on 2 ranks)" "$tmp/serve.err" || fail "ready line: $(grep ready "$tmp/serve.err")"
S=(--server "127.0.0.1:$port" --json)

# a test image and its tags
row=$(awk -F'\t' '$2 == "test" { print NR - 1; exit }' "$tmp/C/images.tsv")
tags=$(awk -F'\t' -v r="$row" 'NR == r + 1 { gsub(/\|/, ",", $3); print $3 }' "$tmp/C/images.tsv")
q() { "$MMSAGE" query "${S[@]}" "$@" 2>"$tmp/qerr"; }
ids() { jq -c '[.results[]?.id]'; }

q --image-features "$tmp/C/features.npy" --row "$row" --k 5 >"$tmp/img" || fail "image query: $(cat "$tmp/qerr")"
[ "$(jq '.results | length' "$tmp/img")" = 5 ] || fail "image query: $(cat "$tmp/img")"
q --tags "$tags" --k 5 >"$tmp/tags" || fail "tags query: $(cat "$tmp/qerr")"
[ "$(jq '.results | length' "$tmp/tags")" = 5 ] || fail "tags query: $(cat "$tmp/tags")"
q --image-features "$tmp/C/features.npy" --row "$row" --tags "$tags" --k 5 >"$tmp/both" ||
    fail "image+tags query: $(cat "$tmp/qerr")"
[ "$(jq '.results | length' "$tmp/both")" = 5 ] || fail "image+tags query: $(cat "$tmp/both")"
for v in 1 0; do
    q --image-features "$tmp/C/features.npy" --row "$row" --tags "$tags" --visual $v --k 5 >"$tmp/v$v" ||
        fail "visual $v: $(cat "$tmp/qerr")"
done
[ "$(ids <"$tmp/v1")" = "$(ids <"$tmp/img")" ] || fail "visual 1 differs from the image-only query"
[ "$(ids <"$tmp/v0")" = "$(ids <"$tmp/tags")" ] || fail "visual 0 differs from the tags-only query"
# the slider moves the results: 0.5 is neither end
jq -e '.results[0].score < 1' "$tmp/v1" >/dev/null || fail "visual 1 scores: $(cat "$tmp/v1")"
q --op predict_tags --image-features "$tmp/C/features.npy" --row "$row" --tag-k 3 >"$tmp/pred" ||
    fail "predict_tags: $(cat "$tmp/qerr")"
[ "$(jq '.tags | length' "$tmp/pred")" = 3 ] || fail "predict_tags: $(cat "$tmp/pred")"
q --tags "zebra-unknown,${tags%%,*}" >"$tmp/warn" || fail "unknown keyword query: $(cat "$tmp/qerr")"
jq -e '.warnings | index("unknown keyword '"'"'zebra-unknown'"'"'")' "$tmp/warn" >/dev/null ||
    fail "no warning for an unknown keyword: $(cat "$tmp/warn")"
q --tags "zebra-unknown,nope" >"$tmp/noinput"
[ "$(jq '.error.name' "$tmp/noinput")" = '"no_input"' ] || fail "no usable input: $(cat "$tmp/noinput")"
q --op info >"$tmp/info" || fail "info: $(cat "$tmp/qerr")"
[ "$(jq '.info.images' "$tmp/info")" -gt 2000 ] 2>/dev/null || fail "info: $(cat "$tmp/info")"

# connection modes, when the client has --connect (request field "connect"):
# the server and `search --connect` agree, and the modes differ
if "$MMSAGE" query --help 2>/dev/null | grep -q -- '--connect'; then
    printf '%s\t%s\t0.5\n' "$row" "$tags" >"$tmp/c.tsv"
    for c in image tags both; do
        "$MMSAGE" query --server "127.0.0.1:$port" --batch "$tmp/c.tsv" --image-features "$tmp/C/features.npy" \
            --connect $c --k 7 >"$tmp/c_$c.srv" 2>"$tmp/qerr" || fail "connect $c: $(cat "$tmp/qerr")"
        "${MPIRUN[@]}" -np 2 "$MMSAGE" search --index "$tmp/I" --queries "$tmp/c.tsv" \
            --features "$tmp/C/features.npy" --connect $c --k 7 --out "$tmp/c_$c.jsonl" >"$tmp/slog" 2>&1 ||
            fail "search --connect $c: $(tail -2 "$tmp/slog")"
        [ "$(ids <"$tmp/c_$c.srv")" = "$(ids <"$tmp/c_$c.jsonl")" ] || fail "connect $c: server and search differ"
    done
    [ "$(ids <"$tmp/c_image.srv")" != "$(ids <"$tmp/c_tags.srv")" ] || fail "connect image and tags give the same results"
    [ "$(ids <"$tmp/c_image.srv")" != "$(ids <"$tmp/c_both.srv")" ] || fail "connect image and both give the same results"
    q --tags "$tags" --connect sideways >"$tmp/cbad" 2>&1 && fail "--connect sideways accepted"
else
    echo "serve: connect part skipped (this mmsage query has no --connect)"
fi

# raw frames after the hello ("MMSG", protocol version 2 as a big-endian u16, CRLF):
# 4-byte big-endian length + MessagePack map; the answer names the error
raw() { # HEX_PAYLOAD EXPECTED_NAME
    local hex=$1 name=$2 len
    len=$(( ${#hex} / 2 ))
    exec 3<>"/dev/tcp/127.0.0.1/$port" || { fail "raw: cannot connect"; return; }
    printf "MMSG\x00\x02\r\n$(printf '%08x' "$len" | sed 's/../\\x&/g')$(echo "$hex" | sed 's/../\\x&/g')" >&3
    timeout 1 cat <&3 >"$tmp/raw" 2>/dev/null # the connection stays open: read for a second
    exec 3<&-
    grep -aq "$name" "$tmp/raw" || fail "raw request $hex: no '$name' in the answer"
}
raw c1c1c1 malformed                                       # not MessagePack
raw 82a16b00a47461677391a178 k_range                       # {k: 0, tags: ["x"]}
raw 81a5696d616765c4080000803f00000040 vector_length       # {image: 2 floats}
v64=$(for _ in $(seq 63); do printf '0000803f'; done)
raw "81a5696d616765c50100${v64}0000c07f" non_finite          # {image: 63 floats + NaN} (bin16, 256 bytes)
raw "82a676697375616ccb3ff8000000000000a47461677391a178" visual_range   # {visual: 1.5, tags: ["x"]}
# still serving, same answer as before
q --image-features "$tmp/C/features.npy" --row "$row" --k 5 >"$tmp/img2" || fail "query after bad input"
[ "$(ids <"$tmp/img2")" = "$(ids <"$tmp/img")" ] || fail "answers changed after bad input"

# ---- the same queries through `search` (no server): identical results
{
    echo "# row tags visual exclude"
    printf '%s\n' "$row"
    printf '%s\t%s\n' "$row" "$tags"
    printf -- '-\t%s\n' "$tags"
    printf '%s\t%s\t1\n' "$row" "$tags"
    printf '%s\t%s\t0\n' "$row" "$tags"
    printf '%s\t%s\t0.3\n' "$row" "$tags"
    for r in 3 7 11 19 23; do printf '%s\t-\t-\t%s\n' "$r" "$(awk -F'\t' -v r=$r 'NR == r + 1 {print $1}' "$tmp/C/images.tsv")"; done
    printf -- '-\tzebra-unknown\n'
} >"$tmp/q.tsv"
"$MMSAGE" query --server "127.0.0.1:$port" --batch "$tmp/q.tsv" --image-features "$tmp/C/features.npy" \
    --k 7 >"$tmp/served.jsonl" 2>"$tmp/qerr" || true
[ "$(wc -l <"$tmp/served.jsonl")" -eq 12 ] || fail "batch query: $(cat "$tmp/qerr")"
"${MPIRUN[@]}" -np 2 "$MMSAGE" search --index "$tmp/I" --queries "$tmp/q.tsv" --features "$tmp/C/features.npy" \
    --k 7 --out "$tmp/search.jsonl" >"$tmp/slog" 2>&1 || fail "search: $(tail -3 "$tmp/slog")"
norm() { jq -c '{line, ok, ids: [.results[]?.id], sc: [.results[]?.score], err: .error.name}' "$1"; }
if ! paste -d'\n' <(norm "$tmp/served.jsonl") <(norm "$tmp/search.jsonl") | jq -s -e '
    length == 24 and ([range(0; length; 2) as $i | .[$i] as $a | .[$i + 1] as $b |
      $a.line == $b.line and $a.ok == $b.ok and $a.ids == $b.ids and $a.err == $b.err and
      ([range(0; $a.sc | length) | ($a.sc[.] - $b.sc[.]) | fabs] | max // 0) <= 1e-6] | all)' >/dev/null; then
    fail "search results differ from the server's"
    paste -d'\n' <(norm "$tmp/served.jsonl") <(norm "$tmp/search.jsonl") | head -6
fi
# excluded ids never come back
jq -r 'select(.line >= 8 and .line <= 12) | [.line, (.results | map(.id) | join(","))] | @tsv' "$tmp/search.jsonl" |
    while IFS=$'\t' read -r line got; do
        ex=$(sed -n "${line}p" "$tmp/q.tsv" | cut -f4)
        case ",$got," in *",$ex,"*) fail "line $line: excluded $ex returned" ;; esac
    done
# a bad line in Q.tsv stops search with its file:line on every rank, no hang
printf '0\n99999999\n' >"$tmp/bad.tsv"
timeout 120 "${MPIRUN[@]}" -np 2 "$MMSAGE" search --index "$tmp/I" --queries "$tmp/bad.tsv" \
    --features "$tmp/C/features.npy" --out "$tmp/bad.jsonl" >"$tmp/slog" 2>&1
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "search with a bad row: exit $rc"
grep -q "bad.tsv:2: bad row '99999999'" "$tmp/slog" || fail "search with a bad row: $(grep -i error "$tmp/slog" | head -2)"
# search at 1 rank (shards 0 and 1 on one rank) gives the same answers
"${MPIRUN[@]}" -np 1 "$MMSAGE" search --index "$tmp/I" --queries "$tmp/q.tsv" --features "$tmp/C/features.npy" \
    --k 7 --out "$tmp/search1.jsonl" >"$tmp/slog" 2>&1 || fail "search at 1 rank: $(tail -3 "$tmp/slog")"
[ "$(norm "$tmp/search1.jsonl" | jq -c '[.ids, .err]')" = "$(norm "$tmp/search.jsonl" | jq -c '[.ids, .err]')" ] ||
    fail "search at 1 rank differs from 2 ranks"

# ---- a taken port: a clear error on every rank, no hang
timeout 120 "${MPIRUN[@]}" -np 2 "$MMSAGE" serve --index "$tmp/I" --listen "127.0.0.1:$port" >"$tmp/dup" 2>&1
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "second server on a taken port: exit $rc"
grep -qi "127.0.0.1:$port" "$tmp/dup" || fail "taken port: $(tail -3 "$tmp/dup")"

stop_server

# ---- one rank cannot serve
timeout 120 "${MPIRUN[@]}" -np 1 "$MMSAGE" serve --index "$tmp/I" --listen 127.0.0.1:0 >"$tmp/one" 2>&1
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "one-rank server: exit $rc"
grep -q "at least 2 ranks" "$tmp/one" || fail "one-rank server: $(tail -3 "$tmp/one")"

# ---- JPEG queries on an index built from the COCO importer's descriptor
D="${MMS_SHARED_DATA:-}/coco-subset/coco-tiny"
if [ -d "$D/val2017" ] && [ -f "$D/annotations/instances_val2017.json" ]; then
    "$MMSAGE" import coco --images "$D/train2017" --instances "$D/annotations/instances_train2017.json" \
        --images "$D/val2017" --instances "$D/annotations/instances_val2017.json" --test-fraction 0.2 \
        --out "$tmp/CC" >"$tmp/log" 2>&1 &&
        "${MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog "$tmp/CC" --out "$tmp/CG" --threshold -1 >>"$tmp/log" 2>&1 &&
        "$MMSAGE" partition --graph "$tmp/CG" --parts 2 >>"$tmp/log" 2>&1 &&
        "${MPIRUN[@]}" -np 2 "$MMSAGE" train --graph "$tmp/CG" --out "$tmp/CM" --max-steps 5 --lr 1e-3 \
            >>"$tmp/log" 2>&1 &&
        "${MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph "$tmp/CG" --model "$tmp/CM" --out "$tmp/CI" >>"$tmp/log" 2>&1 ||
        { tail -5 "$tmp/log"; fail "COCO index pipeline"; }
    if start_server "$tmp/CI" 2; then
        jpg=$(ls "$D/val2017"/*.jpg | head -1)
        "$MMSAGE" query --server "127.0.0.1:$port" --json --jpeg "$jpg" --k 3 >"$tmp/jq" 2>"$tmp/qerr" ||
            fail "JPEG query: $(cat "$tmp/qerr")"
        [ "$(jq '.results | length' "$tmp/jq")" = 3 ] || fail "JPEG query: $(cat "$tmp/jq")"
        jq -e '.results[0].path | test("\\.jpg$")' "$tmp/jq" >/dev/null || fail "JPEG query: no image path"
        head -c 600 "$jpg" >"$tmp/broken.jpg"
        "$MMSAGE" query --server "127.0.0.1:$port" --json --jpeg "$tmp/broken.jpg" >"$tmp/jbad" 2>/dev/null
        [ "$(jq '.error.name' "$tmp/jbad")" = '"jpeg"' ] || fail "broken JPEG: $(cat "$tmp/jbad")"
        "$MMSAGE" query --server "127.0.0.1:$port" --json --jpeg "$jpg" --k 3 >"$tmp/jq2" 2>/dev/null
        [ "$(ids <"$tmp/jq2")" = "$(ids <"$tmp/jq")" ] || fail "JPEG query after a broken one"
        stop_server
    else
        cat "$tmp/serve.err"
        fail "COCO server did not start"
    fi
else
    echo "serve: JPEG part skipped: $D is absent (set MMS_SHARED_DATA)"
fi

echo "$fails failures"
[ "$fails" -eq 0 ]
