#!/usr/bin/env bash
# labels: e2e
# web_hostile.sh: `mmsage web` against hostile and broken requests, with curl
# (docs/web.md, "Security"). On a small synthetic index (no shared data needed):
#   - the query server down: /api/info says so, /api/search answers 503 with a
#     JSON error; after the server starts, and after it restarts on the same
#     port, searches work again (the connection is re-made)
#   - path traversal in image ids (raw, %2e%2e, %2f, %00), unknown ids and
#     routes, wrong methods (405 with Allow), malformed / oversized / wrongly
#     typed JSON, a non-JPEG upload, a JPEG on an index without a pixel
#     descriptor, oversized uploads (with Content-Length and chunked), bad query
#     strings, a foreign Host header, a cross-origin POST: each gets a 4xx
#     JSON error {ok: false, error: {status, code, message}} and changes
#     nothing (the same search gives the same answer; the server keeps serving)
#   - a token: 401 without it, Bearer and the ?token= cookie login work, a
#     wrong token is refused; a non-loopback address without a token and a
#     short token are refused at start
#   - SIGTERM: exit 0, pid file removed
# With the AddressSanitizer twin (MMSAGE_ASAN, -DMMS_ASAN_TWIN=ON) the web
# server runs under ASan/UBSan with the leak checker: a report fails the test.
set -u
MMSAGE=${MMSAGE:?}
WEB=${MMSAGE_ASAN:-$MMSAGE}
SRC=${MMS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
command -v curl >/dev/null || { echo "web_hostile: skipped: no curl (run scripts/setup.sh)"; exit 77; }
command -v jq >/dev/null || { echo "web_hostile: skipped: no jq (run scripts/setup.sh)"; exit 77; }
T=$(mktemp -d)
# shellcheck source=tests/cli/lib/web.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib/web.bash"
serve_pid= web_pid= web2_pid=
cleanup() {
    web_stop_pid "$web_pid"
    web_stop_pid "$web2_pid"
    web_stop_pid "$serve_pid" "$T/serve.pid"
    rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
MPIRUN=(mpirun --oversubscribe --bind-to none)
if [ "$WEB" != "$MMSAGE" ]; then
    export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0
    echo "web_hostile: the web server is the AddressSanitizer build ($WEB)"
fi

"$MMSAGE" synth --images 800 --dim 32 --tags 40 --seed 3 --out "$T/C" >"$T/log" 2>&1 &&
    "${MPIRUN[@]}" -np 2 "$MMSAGE" build --catalog "$T/C" --out "$T/G" --threshold -1 >>"$T/log" 2>&1 &&
    "$MMSAGE" partition --graph "$T/G" --parts 2 >>"$T/log" 2>&1 &&
    "${MPIRUN[@]}" -np 2 "$MMSAGE" train --graph "$T/G" --out "$T/M" --max-steps 20 >>"$T/log" 2>&1 &&
    "${MPIRUN[@]}" -np 2 "$MMSAGE" embed --graph "$T/G" --model "$T/M" --out "$T/I" >>"$T/log" 2>&1 ||
    { tail -20 "$T/log"; echo "FAIL: index pipeline"; exit 1; }

# start_web VAR_PID VAR_PORT ERRFILE ARGS...: background `mmsage web`, wait for ready
start_web() {
    local pv=$1 portv=$2 err=$3 p port=
    shift 3
    : >"$err"
    "$WEB" web "$@" 2>"$err" &
    p=$!
    for _ in $(seq 300); do
        grep -q "^ready: http://" "$err" && break
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    port=$(sed -n 's|^ready: http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$err")
    printf -v "$pv" '%s' "$p"
    printf -v "$portv" '%s' "$port"
    [ -n "$port" ]
}
start_serve() { # PORT (0 = any)
    web_start_serve "$T/I" "$1"
}
stop_serve() {
    kill -TERM "$(cat "$T/serve.pid")" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
    serve_pid=
}

# a free port for the query server, so the web server can be started first
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_web web_pid wport "$T/web.err" --server "127.0.0.1:$sport" --catalog "$T/C" --listen 127.0.0.1:0 \
    --pid-file "$T/web.pid" --max-upload-mb 1 --timeout 5 ||
    { cat "$T/web.err"; echo "FAIL: mmsage web did not start"; exit 1; }
U="http://127.0.0.1:$wport"
C=(curl -sS --max-time 20 -o "$T/body" -w '%{http_code} %{content_type}')

# expect STATUS CODE NAME CURL_ARGS...: the answer's status, a JSON error with
# that code (CODE "-" = a success, no error expected)
expect() {
    local want=$1 code=$2 name=$3 out st ct
    shift 3
    out=$("${C[@]}" "$@" 2>"$T/curl.err")
    st=${out%% *}
    ct=${out#* }
    if [ "$st" != "$want" ]; then
        fail "$name: HTTP $st, expected $want: $(head -c 300 "$T/body")"
        return
    fi
    case "$ct" in application/json*) ;; *) fail "$name: content type '$ct'"; return ;; esac
    if [ "$code" != "-" ]; then
        if ! jq -e --arg c "$code" --argjson s "$want" \
            '.ok == false and .error.code == $c and .error.status == $s and (.error.message | length > 0)' \
            "$T/body" >/dev/null 2>&1; then
            fail "$name: not the JSON error '$code': $(head -c 300 "$T/body")"
            return
        fi
    fi
    if grep -q 'root:' "$T/body"; then fail "$name: the answer contains /etc/passwd"; return; fi
    echo "ok   $name ($st${code:+ $code})"
}
JSON=(-H 'Content-Type: application/json')

# ---- the query server is down
expect 200 - "info with the query server down" "$U/api/info"
jq -e '.server.reachable == false and (.server.error | test("cannot reach"))' "$T/body" >/dev/null ||
    fail "info does not say the server is down: $(cat "$T/body")"
expect 503 query_server_unavailable "search with the query server down" "${JSON[@]}" -d '{"tags":["x"]}' "$U/api/search"

start_serve "$sport" || { cat "$T/serve.err"; echo "FAIL: the query server did not start"; exit 1; }
id=$(awk -F'\t' '$2 == "test" { print $1; exit }' "$T/C/images.tsv")
tag=$(awk -F'\t' '$2 == "train" && $3 != "" { split($3, a, "|"); print a[1]; exit }' "$T/C/images.tsv")
good='{"id":"'"$id"'","tags":["'"$tag"'"],"visual":0.5,"k":10}'
expect 200 - "search once the server is up" "${JSON[@]}" -d "$good" "$U/api/search"
jq -c '[.results[].id]' "$T/body" >"$T/baseline"
[ "$(jq length "$T/baseline")" = 10 ] || fail "baseline search: $(cat "$T/body")"

# ---- images by id only
expect 400 bad_id "raw ../../etc/passwd" --path-as-is "$U/img/../../etc/passwd"
expect 400 bad_id "thumb raw ../../etc/passwd" --path-as-is "$U/thumb/../../../../etc/passwd"
expect 400 bad_id "%2e%2e%2f traversal" "$U/img/%2e%2e%2f%2e%2e%2fetc%2fpasswd"
expect 400 bad_id "%2e%2e alone" "$U/img/%2e%2e"
expect 400 bad_id "..%2f mixed" "$U/thumb/..%2F..%2Fetc%2Fpasswd"
expect 400 bad_id "backslash" "$U/img/..%5c..%5cetc%5cpasswd"
expect 400 bad_id "%00 in an id" "$U/img/abc%00def"
expect 400 bad_id "bad escape" "$U/img/abc%zz"
expect 400 bad_id "absolute path as id" "$U/img/%2fetc%2fpasswd"
expect 404 unknown_id "unknown id" "$U/img/no-such-image"
expect 404 no_image "an id without an image file" "$U/thumb/$id"
expect 404 not_found "traversal outside the routes" --path-as-is "$U/../../etc/passwd"
expect 404 not_found "traversal after a page file" --path-as-is "$U/app.js/../../../etc/passwd"
expect 404 not_found "unknown route" "$U/etc/passwd"
expect 404 not_found "unknown API route" "$U/api/nope"

# ---- methods
expect 405 method_not_allowed "DELETE /api/info" -X DELETE "$U/api/info"
grep -qi '^allow: GET, HEAD' <(curl -sS -D - -o /dev/null -X DELETE "$U/api/info") || fail "405 without an Allow header"
expect 405 method_not_allowed "GET /api/search" "$U/api/search"
expect 405 method_not_allowed "PUT /api/upload" -X PUT --data-binary 'x' "$U/api/upload"
expect 405 method_not_allowed "POST /api/info" -X POST -d '{}' "${JSON[@]}" "$U/api/info"
expect 405 method_not_allowed "OPTIONS /" -X OPTIONS "$U/"

# ---- the search body
expect 400 bad_json "truncated JSON" "${JSON[@]}" -d '{"id":' "$U/api/search"
expect 400 bad_json "not an object" "${JSON[@]}" -d '[1,2]' "$U/api/search"
expect 400 bad_json "empty body" "${JSON[@]}" -d '' "$U/api/search"
expect 400 bad_json "duplicate key" "${JSON[@]}" -d '{"k":3,"k":4,"tags":["a"]}' "$U/api/search"
expect 400 unknown_field "unknown field" "${JSON[@]}" -d '{"tags":["a"],"path":"/etc/passwd"}' "$U/api/search"
expect 400 bad_field "visual 2" "${JSON[@]}" -d '{"tags":["a"],"visual":2}' "$U/api/search"
expect 400 bad_field "k 0" "${JSON[@]}" -d '{"tags":["a"],"k":0}' "$U/api/search"
expect 400 bad_field "tags not an array" "${JSON[@]}" -d '{"tags":"a"}' "$U/api/search"
expect 400 bad_field "an empty tag" "${JSON[@]}" -d '{"tags":[""]}' "$U/api/search"
expect 400 bad_field "id and upload" "${JSON[@]}" \
    -d '{"id":"'"$id"'","upload":"0123456789abcdef0123456789abcdef"}' "$U/api/search"
expect 400 bad_id "a traversal id in the body" "${JSON[@]}" -d '{"id":"../../etc/passwd"}' "$U/api/search"
expect 400 no_input "nothing to search with" "${JSON[@]}" -d '{"negative_tags":["a"]}' "$U/api/search"
expect 404 unknown_id "unknown id in the body" "${JSON[@]}" -d '{"id":"no-such-image"}' "$U/api/search"
jq -e '.error.message | contains("no-such-image")' "$T/body" >/dev/null || fail "the unknown id is not named: $(cat "$T/body")"
expect 404 unknown_upload "unknown upload handle" "${JSON[@]}" \
    -d '{"upload":"0123456789abcdef0123456789abcdef"}' "$U/api/search"
expect 415 bad_content_type "search as a form" -d 'tags=a' "$U/api/search"
head -c 70000 /dev/zero | tr '\0' ' ' | sed 's/^/{"tags":["a"]}/' >"$T/big.json"
expect 413 too_large "a 70 kB JSON body" "${JSON[@]}" --data-binary @"$T/big.json" "$U/api/search"
expect 422 no_input "only unknown keywords" "${JSON[@]}" -d '{"tags":["zebra-unknown"]}' "$U/api/search"
jq -e '.unknown_tags == ["zebra-unknown"]' "$T/body" >/dev/null || fail "unknown keyword not reported: $(cat "$T/body")"

# ---- uploads
JPG="$SRC/tests/fuzz/corpus/fuzz_jpeg/rgb420_32x24.jpg"
printf 'not a jpeg at all' >"$T/text.jpg"
expect 415 not_jpeg "a text file as a JPEG" -H 'Content-Type: image/jpeg' --data-binary @"$T/text.jpg" "$U/api/upload"
expect 415 not_jpeg "a JPEG as a form" --data-binary @"$JPG" "$U/api/upload"
expect 422 unsupported "a JPEG on an index without a pixel descriptor" -H 'Content-Type: image/jpeg' \
    --data-binary @"$JPG" "$U/api/upload"
{ printf '\xff\xd8\xff'; head -c 2000000 /dev/zero; } >"$T/huge.jpg"
expect 413 too_large "a 2 MB upload (limit 1 MiB)" -H 'Content-Type: image/jpeg' --data-binary @"$T/huge.jpg" "$U/api/upload"
expect 413 too_large "a 2 MB chunked upload" -H 'Content-Type: image/jpeg' -H 'Transfer-Encoding: chunked' \
    --data-binary @"$T/huge.jpg" "$U/api/upload"

# ---- query strings, Host, Origin
expect 400 bad_query "n=0" "$U/api/random?n=0"
expect 400 bad_query "n=abc" "$U/api/random?n=abc"
expect 400 bad_query "n given twice" "$U/api/random?n=1&n=2"
expect 400 bad_query "split=../x" "$U/api/random?split=../x"
expect 400 bad_query "unknown parameter" "$U/api/random?file=/etc/passwd"
expect 400 bad_query "bad escape in a query" "$U/api/tags?prefix=%zz"
expect 400 bad_query "limit 1000" "$U/api/tags?limit=1000"
expect 200 - "tags completion" "$U/api/tags?prefix=${tag:0:2}&limit=5"
jq -e --arg t "$tag" '[.tags[].tag] | index($t) != null' "$T/body" >/dev/null || fail "completion misses $tag"
expect 200 - "random test ids" "$U/api/random?n=5&split=test&seed=42"
[ "$(jq '.images | length' "$T/body")" = 5 ] || fail "random: $(cat "$T/body")"
expect 403 bad_host "a foreign Host header" -H 'Host: evil.example:80' "$U/api/info"
expect 403 cross_origin "a cross-origin POST" -H 'Origin: http://evil.example' "${JSON[@]}" -d "$good" "$U/api/search"

# ---- nothing changed
expect 200 - "the same search after all that" "${JSON[@]}" -d "$good" "$U/api/search"
[ "$(jq -c '[.results[].id]' "$T/body")" = "$(cat "$T/baseline")" ] || fail "the answer changed after hostile requests"
kill -0 "$web_pid" 2>/dev/null || fail "mmsage web died"

# ---- the query server restarts on the same port: the web server reconnects
stop_serve
expect 503 query_server_unavailable "search while the server is stopped" "${JSON[@]}" -d "$good" "$U/api/search"
start_serve "$sport" || { cat "$T/serve.err"; fail "the query server did not restart"; }
expect 200 - "search after the server restarted" "${JSON[@]}" -d "$good" "$U/api/search"
[ "$(jq -c '[.results[].id]' "$T/body")" = "$(cat "$T/baseline")" ] || fail "the answer changed after a restart"

# ---- a token
printf 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n' >"$T/token"
chmod 600 "$T/token"
start_web web2_pid w2port "$T/web2.err" --server "127.0.0.1:$sport" --catalog "$T/C" --listen 127.0.0.1:0 \
    --auth-token-file "$T/token" || { cat "$T/web2.err"; fail "mmsage web with a token did not start"; }
U2="http://127.0.0.1:$w2port"
expect 401 unauthorized "no token" "$U2/api/info"
expect 401 unauthorized "no token for the page" "$U2/"
expect 401 unauthorized "a wrong Bearer token" -H 'Authorization: Bearer ABCDEFGHIJKLMNOPQRSTUVWXYZ012345678X' "$U2/api/info"
expect 401 unauthorized "a prefix of the token" -H 'Authorization: Bearer ABCDEFGHIJKLMNOP' "$U2/api/info"
expect 200 - "the Bearer token" -H 'Authorization: Bearer ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789' "$U2/api/info"
expect 401 unauthorized "a wrong ?token= login" "$U2/?token=nope"
hdr=$(curl -sS -D - -o /dev/null "$U2/?token=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
grep -q '^HTTP/1.1 303' <<<"$hdr" && grep -qi '^set-cookie: mms_token=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789; Path=/; HttpOnly; SameSite=Strict' <<<"$hdr" &&
    grep -qi '^location: /' <<<"$hdr" && ! grep -qi '^location:.*token' <<<"$hdr" ||
    fail "the ?token= login: $hdr"
expect 200 - "the cookie" -H 'Cookie: theme=x; mms_token=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789' "$U2/api/info"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -H 'Cookie: mms_token=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789' "$U2/")" = 200 ] ||
    fail "the page with the cookie"
kill -TERM "$web2_pid"
wait "$web2_pid" || fail "mmsage web with a token: exit $? after SIGTERM"
web2_pid=
grep -q 'ABCDEFGHIJ' "$T/web2.err" && fail "the token appears in the log"

# ---- refused at start
"$WEB" web --server "127.0.0.1:$sport" --catalog "$T/C" --listen 0.0.0.0:0 >"$T/out" 2>&1 &&
    fail "listening on 0.0.0.0 without a token was accepted"
grep -q "refusing to listen on 0.0.0.0:0 without --auth-token-file" "$T/out" || fail "0.0.0.0: $(tail -2 "$T/out")"
printf 'short\n' >"$T/short"
"$WEB" web --server "127.0.0.1:$sport" --catalog "$T/C" --listen 127.0.0.1:0 --auth-token-file "$T/short" \
    >"$T/out" 2>&1 && fail "a 5-byte token was accepted"
grep -q "at least 16 bytes" "$T/out" || fail "short token: $(tail -2 "$T/out")"

# ---- SIGTERM
kill -TERM "$web_pid"
wait "$web_pid"
rc=$?
web_pid=
[ "$rc" -eq 0 ] || { fail "mmsage web exited $rc after SIGTERM"; tail -20 "$T/web.err"; }
[ ! -e "$T/web.pid" ] || fail "pid file left behind"
for f in "$T/web.err" "$T/web2.err"; do
    if grep -q 'Sanitizer\|runtime error' "$f"; then fail "sanitizer report in $f"; cat "$f"; fi
done
stop_serve

echo "web_hostile: $fails failures"
[ "$fails" -eq 0 ]
