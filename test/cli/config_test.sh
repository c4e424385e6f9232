#!/usr/bin/env bash
# Where portal-auth's settings come from and how it runs under systemd: flags, PORTAL_AUTH_*
# variables and the --config file with their precedence; check-config; --version and --help;
# --cors-origin against the real binary with curl; the unit, example config and logrotate rules
# of packaging/ (systemd-analyze verify, a real rotation); sd_notify READY/RELOADING/STOPPING on a
# NOTIFY_SOCKET this script listens on.
# Usage: test/cli/config_test.sh PATH/TO/portal-auth SOURCE_DIR
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 PATH/TO/portal-auth SOURCE_DIR" >&2
    exit 2
fi
BIN=$(realpath "$1")
SRC=$(realpath "$2")
DEMO_DIR="$SRC/app/demo-directory.json"
export LC_ALL=C

for tool in curl openssl python3 timeout systemd-analyze logrotate; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "FAIL: required tool '$tool' is not installed (scripts/install-deps.sh)" >&2
        exit 1
    fi
done
if [ ! -x "$BIN" ]; then
    echo "FAIL: $BIN is not an executable" >&2
    exit 1
fi

# Variables of the caller's environment must not leak into the checks (other tools share the
# prefix), nor a NOTIFY_SOCKET of whatever runs this script.
while IFS= read -r variable; do
    unset "$variable"
done < <(compgen -e | grep -E '^(PORTAL_AUTH_|NOTIFY_SOCKET$)')

TMP=$(mktemp -d "${TMPDIR:-/tmp}/portal-auth-config.XXXXXX") || exit 1
BACKGROUND_PIDS=()

cleanup() {
    local pid
    for pid in "${BACKGROUND_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PASSED=0
FAILED=0
FAILED_NAMES=()

pass() {
    PASSED=$((PASSED + 1))
    echo "PASS: $1"
}

# fail NAME DETAIL...: each DETAIL is printed on its own indented line.
fail() {
    local name=$1
    shift
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    echo "FAIL: $name"
    local line
    for line in "$@"; do
        printf '      %s\n' "$line"
    done
}

# check NAME CONDITION-COMMAND... [-- DETAIL...]: pass when the command succeeds.
check() {
    local name=$1
    shift
    local cmd=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        cmd+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    if "${cmd[@]}"; then
        pass "$name"
    else
        fail "$name" "$@"
    fi
}

line_count() {
    awk 'END { print NR }' "$1"
}

# Runs the binary with a bounded run time. Sets RC; output goes to $TMP/run.out and run.err.
# Variables set on the call (VAR=x run_bin ...) reach the binary.
run_bin() {
    timeout -k 2 15 "$BIN" "$@" </dev/null >"$TMP/run.out" 2>"$TMP/run.err"
    RC=$?
}

outputs() {
    printf 'exit %s\nstdout: %s\nstderr: %s' "$RC" "$(head -c 400 "$TMP/run.out")" \
        "$(head -c 600 "$TMP/run.err")"
}

# expect_usage_error NAME SUBSTRING... -- ARGS...
# Exit 2, nothing on stdout, exactly one line on stderr containing every SUBSTRING. The line is
# left in $TMP/run.err.
expect_usage_error() {
    local name=$1
    shift
    local expected=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        expected+=("$1")
        shift
    done
    shift
    run_bin "$@"
    local err problems=() s
    err=$(cat "$TMP/run.err")
    [ "$RC" -eq 2 ] || problems+=("exit code: expected 2, got $RC")
    [ "$(line_count "$TMP/run.err")" -eq 1 ] ||
        problems+=("stderr lines: expected 1, got $(line_count "$TMP/run.err")")
    for s in "${expected[@]}"; do
        [[ "$err" == *"$s"* ]] || problems+=("stderr: expected to contain '$s'")
    done
    [ -s "$TMP/run.out" ] && problems+=("stdout: expected nothing, got: $(head -c 300 "$TMP/run.out")")
    if [ ${#problems[@]} -eq 0 ]; then
        pass "$name"
    else
        fail "$name" "command: portal-auth $*" "${problems[@]}" "stderr was: $err"
    fi
}

# expect_ok NAME SUBSTRING... -- ARGS...: check-config style success: exit 0, one stdout line
# containing "configuration OK" and every SUBSTRING, nothing on stderr.
expect_ok() {
    local name=$1
    shift
    local expected=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        expected+=("$1")
        shift
    done
    shift
    run_bin "$@"
    local out problems=() s
    out=$(cat "$TMP/run.out")
    [ "$RC" -eq 0 ] || problems+=("exit code: expected 0, got $RC")
    [ "$(line_count "$TMP/run.out")" -eq 1 ] ||
        problems+=("stdout lines: expected 1, got $(line_count "$TMP/run.out")")
    for s in "configuration OK" "${expected[@]}"; do
        [[ "$out" == *"$s"* ]] || problems+=("stdout: expected to contain '$s'")
    done
    [ -s "$TMP/run.err" ] && problems+=("stderr: expected nothing, got: $(head -c 300 "$TMP/run.err")")
    if [ ${#problems[@]} -eq 0 ]; then
        pass "$name"
    else
        fail "$name" "command: portal-auth $*" "${problems[@]}" "stdout was: $out"
    fi
}

# start_server OUT ERR ARGS...: starts the binary in the background (variables set on the call
# reach it); sets SERVER_PID and PORT (empty when no listening line came within 10 s).
start_server() {
    local out=$1 err=$2 i line
    shift 2
    "$BIN" "$@" </dev/null >"$out" 2>"$err" &
    SERVER_PID=$!
    BACKGROUND_PIDS+=("$SERVER_PID")
    PORT=""
    for ((i = 0; i < 100; i++)); do
        grep -q '^listening on ' "$out" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    line=$(head -n 1 "$out" 2>/dev/null)
    if [[ "$line" =~ ^listening\ on\ https://127\.0\.0\.1:([0-9]+)$ ]]; then
        PORT=${BASH_REMATCH[1]}
    fi
}

# stop_server PID: SIGTERM, then up to 15 s. Sets STOP_RC (empty when it did not exit).
stop_server() {
    local pid=$1 i
    STOP_RC=""
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return
    fi
    wait "$pid"
    STOP_RC=$?
}

# curl against 127.0.0.1:$PORT. Usage: https NAME METHOD PATH [curl args...]
# Writes $TMP/NAME.headers and NAME.body; sets STATUS ("000" on transport failure).
https() {
    local name=$1 method=$2 path=$3
    shift 3
    STATUS=$(curl -sS --noproxy '*' --max-time 10 --cacert "$TMP/cert.pem" -X "$method" \
        -D "$TMP/$name.headers" -o "$TMP/$name.body" -w '%{http_code}' "$@" \
        "https://127.0.0.1:$PORT$path" 2>"$TMP/$name.curlerr")
    [ -n "$STATUS" ] || STATUS=000
    [ -f "$TMP/$name.headers" ] || : >"$TMP/$name.headers"
}

# header_value FILE NAME: the last value of a response header, CR stripped, case-insensitive.
header_value() {
    awk -v want="$(printf '%s' "$2" | tr 'A-Z' 'a-z')" '
        {
            sub(/\r$/, "")
            i = index($0, ":")
            if (i > 0 && tolower(substr($0, 1, i - 1)) == want) {
                v = substr($0, i + 1)
                sub(/^[ \t]+/, "", v)
                found = v
            }
        }
        END { printf "%s", found }' "$1"
}

# same_line NAME ARGS...: check-config and serve both exit 2 with the same one line.
same_line() {
    local name=$1
    shift
    run_bin check-config "$@"
    local check_rc=$RC check_err
    check_err=$(cat "$TMP/run.err")
    run_bin serve "$@"
    if [ "$check_rc" -eq 2 ] && [ "$RC" -eq 2 ] && [ "$check_err" = "$(cat "$TMP/run.err")" ] &&
        [ "$(line_count "$TMP/run.err")" -eq 1 ] && [ ! -s "$TMP/run.out" ]; then
        pass "$name: check-config and serve exit 2 with the same line"
    else
        fail "$name" "check-config: exit $check_rc: $check_err" "serve: $(outputs)"
    fi
}
cors_headers_in() {
    grep -i '^access-control-' "$1" | tr -d '\r'
}

echo "== portal-auth configuration and packaging tests: $BIN"

# ---------------------------------------------------------------------------------------------
# Fixtures: a certificate, signing keys, a config file with everything serve needs.
# ---------------------------------------------------------------------------------------------
if ! openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/key.pem" 2>"$TMP/openssl.err" ||
    ! openssl req -new -x509 -key "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 -sha256 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        2>>"$TMP/openssl.err"; then
    echo "FAIL: cannot create a test certificate with openssl:"
    cat "$TMP/openssl.err"
    exit 1
fi
if ! timeout 15 "$BIN" gen-key t1 >"$TMP/signing-keys.txt" 2>"$TMP/gen-key.err" </dev/null; then
    echo "FAIL: 'portal-auth gen-key t1' failed: $(cat "$TMP/gen-key.err")"
    exit 1
fi

FILES=(--cert "$TMP/cert.pem" --key "$TMP/key.pem" --signing-key "$TMP/signing-keys.txt"
    --directory "$DEMO_DIR")
L=(--listen 127.0.0.1:0)
CONF="$TMP/portal-auth.conf"
cat >"$CONF" <<EOF
# everything serve needs
listen = 127.0.0.1:1111
cert = $TMP/cert.pem
key = $TMP/key.pem
signing-key = $TMP/signing-keys.txt
directory = $DEMO_DIR
trusted-proxy = 10.0.0.1
trusted-proxy = 10.0.0.2
trusted-proxy = 10.0.0.3
EOF

# ---------------------------------------------------------------------------------------------
# 1. --version and --help.
# ---------------------------------------------------------------------------------------------
run_bin --version
PROJECT_VERSION=$(sed -n 's/^ *VERSION \([0-9][0-9.]*\)$/\1/p' "$SRC/CMakeLists.txt" | head -n 1)
mapfile -t VERSION_LINES <"$TMP/run.out"
OPENSSL_CLI=$(openssl version | awk '{ print $1 " " $2 }')
problems=()
[ "$RC" -eq 0 ] || problems+=("exit $RC")
[ "${#VERSION_LINES[@]}" -eq 4 ] || problems+=("expected 4 lines, got ${#VERSION_LINES[@]}")
[ -n "$PROJECT_VERSION" ] && [ "${VERSION_LINES[0]:-}" = "portal-auth $PROJECT_VERSION" ] ||
    problems+=("line 1: expected 'portal-auth $PROJECT_VERSION'")
[[ "${VERSION_LINES[1]:-}" =~ ^commit\ ([0-9a-f]{4,40}|unknown)$ ]] ||
    problems+=("line 2: expected 'commit <hash>' or 'commit unknown'")
[[ "${VERSION_LINES[2]:-}" =~ ^Boost\ 1\.[0-9]+$ ]] || problems+=("line 3: expected 'Boost 1.NN'")
[[ "${VERSION_LINES[3]:-}" == "$OPENSSL_CLI "* ]] ||
    problems+=("line 4: expected to start with '$OPENSSL_CLI' (openssl version)")
[ -s "$TMP/run.err" ] && problems+=("stderr: $(cat "$TMP/run.err")")
COMMIT=${VERSION_LINES[1]#commit }
if [ "$COMMIT" != unknown ] && command -v git >/dev/null 2>&1 &&
    git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1 &&
    ! git -C "$SRC" cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
    problems+=("commit $COMMIT is not a commit of $SRC")
fi
if [ ${#problems[@]} -eq 0 ]; then
    pass "--version: version, commit, Boost and OpenSSL (${VERSION_LINES[*]})"
else
    fail "--version" "${problems[@]}" "$(outputs)"
fi

run_bin serve --version
if [ "$RC" -eq 0 ] && [ "$(head -n 1 "$TMP/run.out")" = "portal-auth $PROJECT_VERSION" ]; then
    pass "serve --version: exit 0, the version"
else
    fail "serve --version" "$(outputs)"
fi

for args in "--help" "serve --help" "check-config --help" "-h" "help"; do
    # shellcheck disable=SC2086 # split on purpose
    run_bin $args
    if [ "$RC" -eq 0 ] && [ ! -s "$TMP/run.err" ] && grep -q -e '--cors-origin ORIGIN' "$TMP/run.out" &&
        grep -q -e '--config FILE' "$TMP/run.out" && grep -q 'portal-auth check-config' "$TMP/run.out" &&
        grep -q 'PORTAL_AUTH_<OPTION>' "$TMP/run.out"; then
        pass "$args: exit 0 with the usage"
    else
        fail "$args" "$(outputs)"
    fi
done
# --help beats everything after it, even a missing config file.
run_bin serve --config "$TMP/nonexistent.conf" --help
check "serve --config MISSING --help: exit 0" [ "$RC" -eq 0 ] -- "$(outputs)"

# ---------------------------------------------------------------------------------------------
# 2. Environment variables.
# ---------------------------------------------------------------------------------------------
# PORTAL_AUTH_LISTEN sets --listen: without it the server would take 8443.
PORTAL_AUTH_LISTEN=127.0.0.1:0 start_server "$TMP/env.out" "$TMP/env.err" serve "${FILES[@]}" \
    --threads 1
if [ -n "$PORT" ] && [ "$PORT" != 8443 ] && [ ! -s "$TMP/env.err" ]; then
    pass "PORTAL_AUTH_LISTEN=127.0.0.1:0: serves on port $PORT"
else
    fail "PORTAL_AUTH_LISTEN" "stdout: $(head -c 300 "$TMP/env.out")" \
        "stderr: $(head -c 300 "$TMP/env.err")"
fi
ENV_PID=$SERVER_PID
TAKEN_PORT=$PORT

PORTAL_AUTH_THREADS=abc expect_usage_error "PORTAL_AUTH_THREADS=abc: check-config names the variable" \
    'PORTAL_AUTH_THREADS: ' '"abc"' -- check-config "${FILES[@]}"
PORTAL_AUTH_THREADS=abc expect_usage_error "PORTAL_AUTH_THREADS=abc: serve names the variable" \
    'PORTAL_AUTH_THREADS: ' '"abc"' -- serve "${FILES[@]}" --listen 127.0.0.1:0
PORTAL_AUTH_THREADS=abc same_line "PORTAL_AUTH_THREADS=abc" "${FILES[@]}" --listen 127.0.0.1:0

PORTAL_AUTH_TRUSTED_PROXY="10.0.0.1, 10.0.0.0/33" expect_usage_error \
    "PORTAL_AUTH_TRUSTED_PROXY: comma-separated values, each checked" \
    'PORTAL_AUTH_TRUSTED_PROXY' '10.0.0.0/33' -- check-config "${FILES[@]}"
PORTAL_AUTH_TRUSTED_PROXY="10.0.0.1,fd00::/8" PORTAL_AUTH_CORS_ORIGIN="https://a.test, http://b.test:8080" \
    expect_ok "PORTAL_AUTH_TRUSTED_PROXY and PORTAL_AUTH_CORS_ORIGIN: lists" \
    '2 trusted proxies' 'CORS origins https://a.test http://b.test:8080' -- \
    check-config "${FILES[@]}"
PORTAL_AUTH_PROXY_PROTOCOL=true expect_usage_error "PORTAL_AUTH_PROXY_PROTOCOL=true: a switch" \
    '--proxy-protocol needs --trusted-proxy' -- check-config "${FILES[@]}"
PORTAL_AUTH_PROXY_PROTOCOL=maybe expect_usage_error "PORTAL_AUTH_PROXY_PROTOCOL=maybe" \
    'PORTAL_AUTH_PROXY_PROTOCOL' '"maybe"' -- check-config "${FILES[@]}"
PORTAL_AUTH_THREADS= expect_ok "an empty PORTAL_AUTH_THREADS counts as unset" -- \
    check-config "${FILES[@]}"

# An unknown PORTAL_AUTH_* variable: one warning line, and the command goes on.
PORTAL_AUTH_FOO=1 run_bin check-config "${FILES[@]}"
if [ "$RC" -eq 0 ] && [ "$(line_count "$TMP/run.err")" -eq 1 ] &&
    grep -q 'warning.*PORTAL_AUTH_FOO' "$TMP/run.err" && grep -q 'configuration OK' "$TMP/run.out"; then
    pass "PORTAL_AUTH_FOO: one warning line, check-config still OK"
else
    fail "PORTAL_AUTH_FOO with check-config" "$(outputs)"
fi
PORTAL_AUTH_FOO=1 start_server "$TMP/foo.out" "$TMP/foo.err" serve "${FILES[@]}" \
    --listen 127.0.0.1:0 --threads 1
if [ -n "$PORT" ] && [ "$(line_count "$TMP/foo.err")" -eq 1 ] &&
    grep -q 'warning.*PORTAL_AUTH_FOO' "$TMP/foo.err"; then
    pass "PORTAL_AUTH_FOO: one warning line, serve still runs"
else
    fail "PORTAL_AUTH_FOO with serve" "stdout: $(head -c 300 "$TMP/foo.out")" \
        "stderr: $(head -c 300 "$TMP/foo.err")"
fi
stop_server "$SERVER_PID"

# ---------------------------------------------------------------------------------------------
# 3. The config file, and precedence: flag > environment > file.
# ---------------------------------------------------------------------------------------------
expect_ok "--config FILE sets every option" 'listen 127.0.0.1:1111' '3 trusted proxies' \
    "config file $CONF" -- check-config --config "$CONF"
PORTAL_AUTH_LISTEN=127.0.0.1:2222 expect_ok "the environment beats the file" \
    'listen 127.0.0.1:2222' -- check-config --config "$CONF"
PORTAL_AUTH_LISTEN=127.0.0.1:2222 expect_ok "a flag beats the environment and the file" \
    'listen 127.0.0.1:3333' -- check-config --config "$CONF" --listen 127.0.0.1:3333
PORTAL_AUTH_TRUSTED_PROXY=10.0.0.9 expect_ok "a repeatable option: the environment's values replace the file's" \
    '1 trusted proxies' -- check-config --config "$CONF"
PORTAL_AUTH_TRUSTED_PROXY=10.0.0.9 expect_ok "a repeatable option: the flags' values replace the rest" \
    '2 trusted proxies' -- check-config --config "$CONF" --trusted-proxy 10.1.0.1 \
    --trusted-proxy 10.1.0.2
PORTAL_AUTH_CONFIG="$CONF" expect_ok "PORTAL_AUTH_CONFIG names the file" \
    'listen 127.0.0.1:1111' -- check-config

sed 's/^listen = .*/listen = 127.0.0.1:0/' "$CONF" >"$TMP/listen0.conf"
start_server "$TMP/conf.out" "$TMP/conf.err" serve --config "$TMP/listen0.conf" --threads 1
if [ -n "$PORT" ]; then
    pass "serve --config FILE: listens where the file says (port $PORT)"
else
    fail "serve --config FILE" "stdout: $(head -c 300 "$TMP/conf.out")" \
        "stderr: $(head -c 300 "$TMP/conf.err")"
fi
stop_server "$SERVER_PID"

{
    cat "$CONF"
    echo "sesion-ttl = 60"
} >"$TMP/unknown.conf"
expect_usage_error "an unknown option in the file: one line naming it and the file" \
    "$TMP/unknown.conf" '"sesion-ttl"' -- check-config --config "$TMP/unknown.conf"
expect_usage_error "an unknown option in the file stops serve too" \
    "$TMP/unknown.conf" '"sesion-ttl"' -- serve --config "$TMP/unknown.conf"
printf 'config = %s\n' "$CONF" >"$TMP/nested.conf"
expect_usage_error "a config file cannot name another" '"config"' -- \
    check-config --config "$TMP/nested.conf"
printf 'session-ttl = 0\n' >"$TMP/bad-value.conf"
expect_usage_error "a bad value in the file names the file and the key" \
    "$TMP/bad-value.conf: session-ttl" '"0"' -- \
    check-config "${FILES[@]}" --config "$TMP/bad-value.conf"
printf 'this line has no equals sign\n' >"$TMP/syntax.conf"
expect_usage_error "a line that is not 'key = value'" "$TMP/syntax.conf" -- \
    check-config "${FILES[@]}" --config "$TMP/syntax.conf"
expect_usage_error "a missing config file: one line naming it" "$TMP/missing.conf" -- \
    serve "${FILES[@]}" --config "$TMP/missing.conf"
expect_usage_error "a missing config file: check-config too" "$TMP/missing.conf" -- \
    check-config "${FILES[@]}" --config "$TMP/missing.conf"
printf 'proxy-protocol = true\n' >"$TMP/switch.conf"
expect_usage_error "a switch in the file: proxy-protocol = true" \
    '--proxy-protocol needs --trusted-proxy' -- \
    check-config "${FILES[@]}" --config "$TMP/switch.conf"
printf 'proxy-protocol = true\ntrusted-proxy = 127.0.0.2\n' >"$TMP/switch-ok.conf"
expect_ok "a switch in the file with its trusted proxy" '1 trusted proxies' -- \
    check-config "${FILES[@]}" --config "$TMP/switch-ok.conf"

# ---------------------------------------------------------------------------------------------
# 4. check-config binds nothing, and fails with serve's own line.
# ---------------------------------------------------------------------------------------------
if [ -n "$TAKEN_PORT" ]; then
    expect_ok "check-config: OK with --listen on a port already taken" \
        "listen 127.0.0.1:$TAKEN_PORT" -- check-config "${FILES[@]}" \
        --listen "127.0.0.1:$TAKEN_PORT"
    expect_usage_error "serve: the same port is refused" '--listen' -- \
        serve "${FILES[@]}" --listen "127.0.0.1:$TAKEN_PORT"
else
    fail "check-config with a taken port" "no server from section 2 to take a port"
fi
stop_server "$ENV_PID"

same_line "a missing directory" "${L[@]}" --cert "$TMP/cert.pem" --key "$TMP/key.pem" \
    --signing-key "$TMP/signing-keys.txt" --directory "$TMP/nonexistent.json"
printf '{"customers": [' >"$TMP/broken.json"
same_line "a broken directory" "${L[@]}" --cert "$TMP/cert.pem" --key "$TMP/key.pem" \
    --signing-key "$TMP/signing-keys.txt" --directory "$TMP/broken.json"
echo "not a certificate" >"$TMP/not-pem.pem"
same_line "a bad certificate" "${L[@]}" "${FILES[@]}" --cert "$TMP/not-pem.pem"
same_line "a key that does not match" "${L[@]}" "${FILES[@]}" --key "$TMP/signing-keys.txt"
same_line "a bad listen address" "${FILES[@]}" --listen nonsense
same_line "an audit log in a missing directory" "${L[@]}" "${FILES[@]}" \
    --audit-log "$TMP/no-such-dir/audit.jsonl"
same_line "an audit log that is a directory" "${L[@]}" "${FILES[@]}" --audit-log "$TMP"
same_line "a bad limit" "${L[@]}" "${FILES[@]}" --max-connections 0
same_line "a bad CORS origin" "${L[@]}" "${FILES[@]}" --cors-origin 'https://app.example.com/'

expect_ok "check-config does not create the audit log" -- check-config "${FILES[@]}" \
    --audit-log "$TMP/new-audit.jsonl"
check "check-config left no audit file behind" [ ! -e "$TMP/new-audit.jsonl" ]

# ---------------------------------------------------------------------------------------------
# 5. --cors-origin against the binary.
# ---------------------------------------------------------------------------------------------
APP=https://app.example.com
expect_usage_error "--cors-origin with a path" '--cors-origin' 'https://app.example.com/login' -- \
    serve "${FILES[@]}" "${L[@]}" --cors-origin https://app.example.com/login
expect_usage_error "--cors-origin '*'" '--cors-origin' '"*"' -- \
    serve "${FILES[@]}" "${L[@]}" --cors-origin '*'
expect_usage_error "--cors-origin ftp://" '--cors-origin' -- \
    serve "${FILES[@]}" "${L[@]}" --cors-origin ftp://app.example.com

start_server "$TMP/cors.out" "$TMP/cors.err" serve "${FILES[@]}" "${L[@]}" --threads 1 \
    --cors-origin "$APP" --cors-origin http://localhost:5173
if [ -z "$PORT" ]; then
    fail "serve --cors-origin" "stdout: $(head -c 300 "$TMP/cors.out")" \
        "stderr: $(head -c 300 "$TMP/cors.err")"
else
    https preflight OPTIONS /api/public/auth/login -H "Origin: $APP" \
        -H 'Access-Control-Request-Method: POST' \
        -H 'Access-Control-Request-Headers: authorization, content-type'
    H="$TMP/preflight.headers"
    if [ "$STATUS" = 204 ] && [ "$(header_value "$H" Access-Control-Allow-Origin)" = "$APP" ] &&
        [[ "$(header_value "$H" Access-Control-Allow-Methods)" == *POST* ]] &&
        [[ "$(header_value "$H" Access-Control-Allow-Headers)" == *authorization*content-type* ]] &&
        [ -n "$(header_value "$H" Access-Control-Max-Age)" ] &&
        [ "$(header_value "$H" Vary)" = Origin ] &&
        [ "$(header_value "$H" Cache-Control)" = no-store ] &&
        [ -z "$(header_value "$H" Access-Control-Allow-Credentials)" ]; then
        pass "CORS: a preflight from a listed origin: 204 with the CORS headers"
    else
        fail "CORS preflight from $APP" "status $STATUS" "$(tr -d '\r' <"$H")"
    fi

    https login POST /api/public/auth/login -H "Origin: $APP" \
        -H 'Content-Type: application/json' \
        --data-binary '{"email":"alice@acme.test","password":"alice-demo"}'
    H="$TMP/login.headers"
    if [ "$STATUS" = 200 ] && [ "$(header_value "$H" Access-Control-Allow-Origin)" = "$APP" ] &&
        [ "$(header_value "$H" Vary)" = Origin ] &&
        [ -z "$(header_value "$H" Access-Control-Allow-Credentials)" ]; then
        pass "CORS: a login from a listed origin carries Access-Control-Allow-Origin and Vary"
    else
        fail "CORS login from $APP" "status $STATUS" "$(tr -d '\r' <"$H")"
    fi

    https other_preflight OPTIONS /api/public/auth/login -H 'Origin: https://evil.example.net' \
        -H 'Access-Control-Request-Method: POST'
    if [ "$STATUS" = 405 ] && [ -z "$(cors_headers_in "$TMP/other_preflight.headers")" ]; then
        pass "CORS: a preflight from another origin: 405, no CORS header"
    else
        fail "CORS preflight from another origin" "status $STATUS" \
            "$(tr -d '\r' <"$TMP/other_preflight.headers")"
    fi
    https other_get GET /healthz -H 'Origin: https://evil.example.net'
    if [ "$STATUS" = 200 ] && [ -z "$(cors_headers_in "$TMP/other_get.headers")" ]; then
        pass "CORS: a request from another origin: no CORS header"
    else
        fail "CORS request from another origin" "status $STATUS" \
            "$(tr -d '\r' <"$TMP/other_get.headers")"
    fi
    https no_origin GET /healthz
    check "CORS: a request without Origin: no CORS header" \
        [ "$STATUS" = 200 -a -z "$(cors_headers_in "$TMP/no_origin.headers")" ] -- "status $STATUS"
    stop_server "$SERVER_PID"
fi

start_server "$TMP/nocors.out" "$TMP/nocors.err" serve "${FILES[@]}" "${L[@]}" --threads 1
https nocors_preflight OPTIONS /api/public/auth/login -H "Origin: $APP" \
    -H 'Access-Control-Request-Method: POST'
check "CORS: without --cors-origin a preflight gets 405 and no CORS header" \
    [ "$STATUS" = 405 -a -z "$(cors_headers_in "$TMP/nocors_preflight.headers")" ] -- \
    "status $STATUS"
stop_server "$SERVER_PID"

# ---------------------------------------------------------------------------------------------
# 6. packaging/: the systemd unit, the example config, logrotate.
# ---------------------------------------------------------------------------------------------
UNIT_DIR="$TMP/unit"
mkdir -p "$UNIT_DIR"
# The unit as shipped, with the binary this build made in place of /usr/local/bin/portal-auth.
sed "s|/usr/local/bin/portal-auth|$BIN|g" "$SRC/packaging/portal-auth.service" \
    >"$UNIT_DIR/portal-auth.service"
# Without systemd as PID 1 (a container), verify still loads and checks the unit; it needs no
# user to exist. Any message at all is a finding.
SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$UNIT_DIR/portal-auth.service" \
    >"$TMP/verify.out" 2>&1
VERIFY_RC=$?
if [ "$VERIFY_RC" -eq 0 ] && [ ! -s "$TMP/verify.out" ]; then
    pass "systemd-analyze verify packaging/portal-auth.service: clean"
else
    fail "systemd-analyze verify packaging/portal-auth.service" "exit $VERIFY_RC" \
        "$(head -c 1500 "$TMP/verify.out")"
fi
# The control: the same check does see a broken unit here.
{
    cat "$UNIT_DIR/portal-auth.service"
    printf '[Service]\nTypo=1\n'
} >"$UNIT_DIR/broken.service"
SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$UNIT_DIR/broken.service" \
    >"$TMP/verify-broken.out" 2>&1
check "systemd-analyze verify: the control with a typo is reported" \
    grep -q "Typo" "$TMP/verify-broken.out" -- "$(cat "$TMP/verify-broken.out")"
UNIT="$SRC/packaging/portal-auth.service"
UNIT_PROBLEMS=()
for line in 'Type=notify' 'ExecReload=/bin/kill -HUP $MAINPID' 'User=portal-auth' \
    'ProtectSystem=strict' 'NoNewPrivileges=yes' 'CapabilityBoundingSet=' 'LimitNOFILE=65536' \
    'LogsDirectory=portal-auth' \
    'ExecStart=/usr/local/bin/portal-auth serve --config /etc/portal-auth/portal-auth.conf'; do
    grep -qxF -- "$line" "$UNIT" || UNIT_PROBLEMS+=("no line '$line'")
done
check "the unit: Type=notify, reload by SIGHUP, a dedicated user and the hardening" \
    [ ${#UNIT_PROBLEMS[@]} -eq 0 ] -- "${UNIT_PROBLEMS[@]}"

# The example config, its paths moved to this test's files: every key in it is an option.
sed -e "s|/etc/portal-auth/server.pem|$TMP/cert.pem|" -e "s|/etc/portal-auth/server.key|$TMP/key.pem|" \
    -e "s|/etc/portal-auth/directory.json|$DEMO_DIR|" \
    -e "s|/etc/portal-auth/signing-keys|$TMP/signing-keys.txt|" \
    -e "s|/var/log/portal-auth/|$TMP/|" "$SRC/packaging/portal-auth.conf" >"$TMP/example.conf"
expect_ok "packaging/portal-auth.conf: check-config OK" 'listen 0.0.0.0:8443' -- \
    check-config --config "$TMP/example.conf"
# Uncommented, each example line must still parse (values are examples).
sed -e 's/^# \([a-z-]* = \)/\1/' "$TMP/example.conf" >"$TMP/example-all.conf"
expect_ok "packaging/portal-auth.conf: the commented examples parse too" '2 trusted proxies' \
    'CORS origins https://portal.example.com' -- check-config --config "$TMP/example-all.conf"

# logrotate, for real: the rules as shipped, on this test's audit log, with the signal sent to
# this test's server instead of through systemctl.
AUDIT="$TMP/rotate/audit.jsonl"
mkdir -p "$TMP/rotate"
start_server "$TMP/rotate.out" "$TMP/rotate.err" serve "${FILES[@]}" "${L[@]}" --threads 1 \
    --audit-log "$AUDIT"
ROTATE_PID=$SERVER_PID
https rotate_login1 POST /api/public/auth/login -H 'Content-Type: application/json' \
    --data-binary '{"email":"alice@acme.test","password":"alice-demo"}'
sed -e "s|/var/log/portal-auth/audit.jsonl|$AUDIT|" \
    -e "s|systemctl kill -s USR1 portal-auth.service|kill -USR1 $ROTATE_PID|" \
    "$SRC/packaging/portal-auth.logrotate" >"$TMP/logrotate.conf"
chmod 0644 "$TMP/logrotate.conf"
logrotate --force --state "$TMP/logrotate.state" "$TMP/logrotate.conf" >"$TMP/logrotate.log" 2>&1
LOGROTATE_RC=$?
for _ in $(seq 100); do
    grep -q 'reopened the audit log' "$TMP/rotate.err" && break
    sleep 0.05
done
https rotate_login2 POST /api/public/auth/login -H 'Content-Type: application/json' \
    --data-binary '{"email":"alice@acme.test","password":"alice-demo"}'
ROTATED=$(find "$TMP/rotate" -name 'audit.jsonl-*' | head -n 1)
if [ "$LOGROTATE_RC" -eq 0 ] && [ -n "$ROTATED" ] &&
    [ "$(grep -c '"event":"login.succeeded"' "$ROTATED")" = 1 ] &&
    [ "$(grep -c '"event":"login.succeeded"' "$AUDIT" 2>/dev/null)" = 1 ]; then
    pass "packaging/portal-auth.logrotate: rotates, USR1 reopens, one login in each file"
else
    fail "packaging/portal-auth.logrotate" "logrotate exit $LOGROTATE_RC: $(head -c 500 "$TMP/logrotate.log")" \
        "files: $(ls "$TMP/rotate" | tr '\n' ' ')" "stderr: $(head -c 300 "$TMP/rotate.err")"
fi
stop_server "$ROTATE_PID"

# ---------------------------------------------------------------------------------------------
# 7. sd_notify: READY=1 once listening, RELOADING=1 and READY=1 around SIGHUP, STOPPING=1.
# ---------------------------------------------------------------------------------------------
NOTIFY_SOCK="$TMP/notify.sock"
NOTIFY_LOG="$TMP/notify.log"
# Each datagram on one line, newlines as '|'.
python3 - "$NOTIFY_SOCK" "$NOTIFY_LOG" <<'EOF' &
import socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(60)
with open(log, "a", buffering=1) as out:
    while True:
        try:
            data = s.recv(4096)
        except socket.timeout:
            break
        out.write(data.decode("utf-8", "replace").strip("\n").replace("\n", "|") + "\n")
EOF
LISTENER_PID=$!
BACKGROUND_PIDS+=("$LISTENER_PID")
for _ in $(seq 100); do
    [ -S "$NOTIFY_SOCK" ] && break
    sleep 0.05
done
: >>"$NOTIFY_LOG"

# wait_for_notify PATTERN: up to 10 s for a datagram matching the extended regex.
wait_for_notify() {
    local i
    for ((i = 0; i < 100; i++)); do
        grep -Eq -- "$1" "$NOTIFY_LOG" && return 0
        sleep 0.1
    done
    return 1
}

NOTIFY_SOCKET="$NOTIFY_SOCK" start_server "$TMP/notify.out" "$TMP/notify.err" serve \
    "${FILES[@]}" "${L[@]}" --threads 2
NOTIFY_PID=$SERVER_PID
if [ -n "$PORT" ] && wait_for_notify '(^|\|)READY=1(\||$)'; then
    pass "sd_notify: READY=1 once listening ($(head -n 1 "$NOTIFY_LOG"))"
else
    fail "sd_notify: READY=1" "datagrams: $(tr '\n' ' ' <"$NOTIFY_LOG")" \
        "stdout: $(head -c 200 "$TMP/notify.out")" "stderr: $(head -c 300 "$TMP/notify.err")"
fi
# ready_after_reloading: a READY=1 datagram came after a RELOADING=1 one.
ready_after_reloading() {
    awk '/(^|\|)RELOADING=1(\||$)/ { r = NR } /(^|\|)READY=1(\||$)/ && r && NR > r { ok = 1 }
         END { exit !ok }' "$NOTIFY_LOG"
}
kill -HUP "$NOTIFY_PID"
for _ in $(seq 100); do
    ready_after_reloading && break
    sleep 0.1
done
if ready_after_reloading && grep -q 'reloaded' "$TMP/notify.err"; then
    RELOADING_LINE=$(grep 'RELOADING=1' "$NOTIFY_LOG" | head -n 1)
    if [[ "$RELOADING_LINE" =~ MONOTONIC_USEC=[0-9]+ ]]; then
        pass "sd_notify: SIGHUP sends RELOADING=1 (with MONOTONIC_USEC) then READY=1"
    else
        fail "sd_notify: RELOADING=1 has MONOTONIC_USEC" "$RELOADING_LINE"
    fi
else
    fail "sd_notify: SIGHUP" "datagrams: $(tr '\n' ' ' <"$NOTIFY_LOG")" \
        "stderr: $(head -c 300 "$TMP/notify.err")"
fi
kill -TERM "$NOTIFY_PID"
if wait_for_notify '(^|\|)STOPPING=1(\||$)'; then
    pass "sd_notify: SIGTERM sends STOPPING=1"
else
    fail "sd_notify: STOPPING=1" "datagrams: $(tr '\n' ' ' <"$NOTIFY_LOG")"
fi
# The one SIGTERM sent above is the whole stop: wait for the exit without sending another.
for _ in $(seq 150); do
    kill -0 "$NOTIFY_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$NOTIFY_PID" 2>/dev/null; then
    fail "sd_notify: exit after SIGTERM" "still running after 15 s"
    stop_server "$NOTIFY_PID"
else
    wait "$NOTIFY_PID"
    STOP_RC=$?
    check "sd_notify: exit 0 after SIGTERM" [ "$STOP_RC" = 0 ] -- "exit $STOP_RC"
fi
kill "$LISTENER_PID" 2>/dev/null
wait "$LISTENER_PID" 2>/dev/null

# Without NOTIFY_SOCKET nothing is sent and nothing complains (the earlier servers had none).
check "no NOTIFY_SOCKET: no complaint on stderr" [ ! -s "$TMP/conf.err" ] -- \
    "$(head -c 300 "$TMP/conf.err")"

echo "== $PASSED passed, $FAILED failed"
if [ "$FAILED" -ne 0 ]; then
    printf 'failed: %s\n' "${FAILED_NAMES[@]}"
    exit 1
fi
exit 0
