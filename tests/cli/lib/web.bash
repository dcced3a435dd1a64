# tests/cli/lib/web.bash: shared steps of the browser tests of `mmsage web`
# (web_browser.sh on COCO, web_corel5k.sh on Corel5k); sourced, not a test.
# Needs MMSAGE, T (scratch dir) and a `fails` counter in the caller.

WEB_SRC=${MMS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
WEB_ART=${MMS_WEB_ARTIFACTS:-${MMS_BUILD:-$WEB_SRC/build}/tests/web-artifacts}
WEB_CHROMIUM=${MMS_CHROMIUM:-/usr/bin/chromium}
WEB_MPIRUN=(mpirun --oversubscribe --bind-to none)
serve_pid= web_pid=

# web_tools_or_skip NAME: chromium, node and tests/web/node_modules, or exit:
# 77 (skipped) normally, 1 under CI=true (scripts/setup.sh installs them).
web_tools_or_skip() {
    local why=
    [ -x "$WEB_CHROMIUM" ] || why="no chromium at $WEB_CHROMIUM"
    command -v node >/dev/null 2>&1 || why="no node"
    [ -d "$WEB_SRC/tests/web/node_modules/puppeteer-core" ] || why="no $WEB_SRC/tests/web/node_modules/puppeteer-core"
    [ -z "$why" ] && return 0
    if [ "${CI:-}" = true ]; then
        echo "FAIL: $why (scripts/setup.sh installs it, and CI runs setup first)"
        exit 1
    fi
    echo "$1: skipped: $why (run scripts/setup.sh)"
    exit 77
}

# web_stop_pid PID [PIDFILE]: SIGTERM to the process in PIDFILE (the serve
# coordinator, which stops its workers) and to PID (mpirun forwards it to every
# rank), SIGKILL after 10 s; so no rank is left behind.
web_stop_pid() {
    [ -n "$1" ] || return 0
    [ -n "${2:-}" ] && [ -s "$2" ] && kill -TERM "$(cat "$2")" 2>/dev/null
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# web_cleanup: stop what is left (for trap ... EXIT)
web_cleanup() {
    web_stop_pid "$web_pid"
    web_stop_pid "$serve_pid" "$T/serve.pid"
    web_pid= serve_pid=
}

# web_start INDEX CATALOG: `mpirun -np 3 mmsage serve` and `mmsage web` on
# free loopback ports; sets serve_pid, sport, web_pid, wport. Exits 1 on failure.
# MMS_WEB_BIN runs another binary as the web server (e.g. build/app/mmsage-asan,
# with ASAN_OPTIONS=detect_leaks=1: the sanitizer's report fails the test).
# web_start_serve INDEX PORT: `serve` on 3 ranks at 127.0.0.1:PORT (0: any),
# waiting up to 60 s for its ready line; sets serve_pid and sport (empty and
# status 1 if it did not start; its stderr is in $T/serve.err).
web_start_serve() {
    : >"$T/serve.err"
    "${WEB_MPIRUN[@]}" -np 3 "$MMSAGE" serve --index "$1" --listen "127.0.0.1:$2" --pid-file "$T/serve.pid" \
        >"$T/serve.out" 2>"$T/serve.err" &
    serve_pid=$!
    for _ in $(seq 600); do
        grep -q "^ready: listening on" "$T/serve.err" && [ -s "$T/serve.pid" ] && break
        kill -0 "$serve_pid" 2>/dev/null || break
        sleep 0.1
    done
    sport=$(sed -n 's/^ready: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$T/serve.err")
    [ -n "$sport" ]
}

web_start() {
    web_start_serve "$1" 0 || { cat "$T/serve.err"; echo "FAIL: the query server did not start"; exit 1; }
    : >"$T/web.err"
    "${MMS_WEB_BIN:-$MMSAGE}" web --server "127.0.0.1:$sport" --catalog "$2" --listen 127.0.0.1:0 --pid-file "$T/web.pid" \
        2>"$T/web.err" &
    web_pid=$!
    for _ in $(seq 300); do
        grep -q "^ready: http://" "$T/web.err" && break
        kill -0 "$web_pid" 2>/dev/null || break
        sleep 0.1
    done
    wport=$(sed -n 's|^ready: http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$T/web.err")
    [ -n "$wport" ] || { cat "$T/web.err"; echo "FAIL: mmsage web did not start"; exit 1; }
    echo "web: query server on port $sport, page on http://127.0.0.1:$wport/"
}

# web_pick_query CATALOG: sets qid, qtags (|-separated), keyword and negative.
# The query is the first test image with tags; the keyword the most frequent
# training tag it does not carry among tags on at most 40% of the training
# images (so that the keyword's share among the results can rise); the
# negative keyword the most frequent training tag.
web_pick_query() {
    IFS=$'\t' read -r qid qtags < <(awk -F'\t' '$2 == "test" && $3 != "" { print $1 "\t" $3; exit }' "$1/images.tsv")
    awk -F'\t' '$2 == "train" { n++; k = split($3, a, "|"); for (i = 1; i <= k; i++) c[a[i]]++ }
        END { for (t in c) printf "%d\t%d\t%s\n", c[t], n, t }' "$1/images.tsv" | sort -t$'\t' -k1,1nr -k3,3 >"$T/tagfreq"
    negative=$(head -1 "$T/tagfreq" | cut -f3)
    keyword=$(awk -F'\t' -v q="|$qtags|" '$1 <= 0.4 * $2 && index(q, "|" $3 "|") == 0 { print $3; exit }' "$T/tagfreq")
}

# web_browser ARTDIR ARGS...: tests/web/browser_test.mjs on the running page
# (a screenshot per state in ARTDIR, the slider latency in ARTDIR/latency.txt).
web_browser() {
    local art=$1
    shift
    rm -rf "$art"
    mkdir -p "$art"
    (cd "$WEB_SRC/tests/web" && timeout 300 node browser_test.mjs --url "http://127.0.0.1:$wport/" \
        --chromium "$WEB_CHROMIUM" --artifacts "$art" --id "$qid" --keyword "$keyword" --negative "$negative" "$@") |
        tee "$T/browser.out"
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "FAIL: browser test"; fails=$((fails + 1)); }
    grep "slider latency" "$T/browser.out" >"$art/latency.txt"
}

# web_stop: SIGTERM to both servers; each must exit 0 and remove its pid file.
web_stop() {
    local rc
    kill -TERM "$(cat "$T/web.pid")"
    wait "$web_pid"
    rc=$?
    web_pid=
    [ "$rc" -eq 0 ] || { echo "FAIL: mmsage web exited $rc after SIGTERM"; tail -5 "$T/web.err"; fails=$((fails + 1)); }
    [ ! -e "$T/web.pid" ] || { echo "FAIL: web pid file left behind"; fails=$((fails + 1)); }
    kill -TERM "$(cat "$T/serve.pid")"
    wait "$serve_pid"
    rc=$?
    serve_pid=
    [ "$rc" -eq 0 ] || { echo "FAIL: the query server exited $rc after SIGTERM"; fails=$((fails + 1)); }
    if grep -q 'Sanitizer\|runtime error' "$T/web.err"; then
        echo "FAIL: sanitizer report"
        cat "$T/web.err"
        fails=$((fails + 1))
    fi
}
