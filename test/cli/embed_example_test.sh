#!/usr/bin/env bash
# The README's embedding example, run for real: it serves /healthz over TLS on the port it
# prints and exits 0 on SIGTERM (a graceful stop through cancellation of server::run()).
# Usage: embed_example_test.sh EXAMPLE_BINARY SOURCE_DIR
set -euo pipefail
BIN=$1
SRC=$2
TMP=$(mktemp -d)
PID=""
cleanup() {
    [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/key.pem" 2>/dev/null
openssl req -new -x509 -key "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 -sha256 \
    -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null

"$BIN" "$TMP/cert.pem" "$TMP/key.pem" "$SRC/app/demo-directory.json" >"$TMP/out" 2>"$TMP/err" &
PID=$!
for _ in $(seq 100); do
    grep -q '^listening on ' "$TMP/out" 2>/dev/null && break
    sleep 0.05
done
URL=$(sed -n 's/^listening on //p' "$TMP/out")
[ -n "$URL" ] || { echo "FAIL: no listening line"; cat "$TMP/err"; exit 1; }

status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$TMP/cert.pem" "$URL/healthz")
[ "$status" = 200 ] || { echo "FAIL: /healthz answered $status"; exit 1; }
echo "PASS: /healthz 200 at $URL"

kill -TERM "$PID"
code=0
wait "$PID" || code=$?
PID=""
[ "$code" = 0 ] || { echo "FAIL: exit code $code after SIGTERM"; cat "$TMP/err"; exit 1; }
echo "PASS: exit 0 after SIGTERM"
