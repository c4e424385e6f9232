#!/usr/bin/env bash
# The README's embedding example, run for real. With no arguments (from another working
# directory) it makes its own certificate, serves /healthz over TLS on the port it prints, with a
# certificate valid for 127.0.0.1 and localhost, and exits 0 on SIGTERM and on SIGINT (a graceful
# stop through cancellation of server::run()). Given CERT KEY DIRECTORY it uses those instead.
# Usage: embed_example_test.sh EXAMPLE_BINARY SOURCE_DIR
set -euo pipefail
BIN=$(realpath "$1")
SRC=$2
TMP=$(mktemp -d)
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill -KILL "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    [ -s "$TMP/err" ] && { echo "--- stderr"; cat "$TMP/err"; }
    exit 1
}

# start ARGS...: runs the example from / and sets PID and PORT.
start() {
    (cd / && exec "$BIN" "$@") >"$TMP/out" 2>"$TMP/err" &
    PID=$!
    for _ in $(seq 200); do
        grep -q '^listening on ' "$TMP/out" 2>/dev/null && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    PORT=$(sed -n 's|^listening on https://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$TMP/out")
    [ -n "$PORT" ] || fail "no 'listening on https://127.0.0.1:PORT' line (args: $*)"
}

# stop SIGNAL: the example must exit 0.
stop() {
    kill "-$1" "$PID"
    local code=0
    wait "$PID" || code=$?
    PID=""
    [ "$code" = 0 ] || fail "exit code $code after SIG$1"
    echo "PASS: exit 0 after SIG$1"
}

healthz() { # healthz CURL_ARGS... -> the status code
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true
}

# 1. No arguments, SIGTERM.
start
status=$(healthz -k "https://127.0.0.1:$PORT/healthz")
[ "$status" = 200 ] || fail "/healthz answered $status (no arguments)"
echo "PASS: no arguments: /healthz 200 on port $PORT"
# The certificate it made verifies for 127.0.0.1 and for localhost once trusted.
openssl s_client -connect "127.0.0.1:$PORT" </dev/null 2>/dev/null |
    openssl x509 -out "$TMP/served.pem" 2>/dev/null || fail "no certificate from s_client"
status=$(healthz --cacert "$TMP/served.pem" "https://127.0.0.1:$PORT/healthz")
[ "$status" = 200 ] || fail "/healthz with the served certificate trusted, by IP: $status"
status=$(healthz --cacert "$TMP/served.pem" --resolve "localhost:$PORT:127.0.0.1" \
    "https://localhost:$PORT/healthz")
[ "$status" = 200 ] || fail "/healthz with the served certificate trusted, by name: $status"
echo "PASS: the self-signed certificate verifies for 127.0.0.1 and localhost"
stop TERM

# 2. No arguments, SIGINT.
start
status=$(healthz -k "https://127.0.0.1:$PORT/healthz")
[ "$status" = 200 ] || fail "/healthz answered $status (before SIGINT)"
stop INT

# 3. CERT KEY DIRECTORY given.
openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/key.pem" 2>/dev/null
openssl req -new -x509 -key "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 -sha256 \
    -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
start "$TMP/cert.pem" "$TMP/key.pem" "$SRC/app/demo-directory.json"
status=$(healthz --cacert "$TMP/cert.pem" "https://127.0.0.1:$PORT/healthz")
[ "$status" = 200 ] || fail "/healthz answered $status (CERT KEY DIRECTORY)"
echo "PASS: CERT KEY DIRECTORY: /healthz 200 with the given certificate"
stop TERM

# 4. Too many arguments: usage, exit 2.
code=0
"$BIN" a b c d >/dev/null 2>"$TMP/err" || code=$?
if [ "$code" != 2 ] || ! grep -q '^usage: ' "$TMP/err"; then
    fail "4 arguments: exit $code, no usage line"
fi
echo "PASS: usage and exit 2 for 4 arguments"
