#!/usr/bin/env bash
# Runs Debian's testssl.sh against a portal-auth started on 127.0.0.1 and fails on any finding
# rated HIGH or CRITICAL, and on SSLv2/SSLv3/TLS 1.0/TLS 1.1 being offered.
# Usage: scripts/tls-check.sh [path/to/portal-auth]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-build/app/portal-auth}
scripts/install-deps.sh testssl.sh bsdextrautils dnsutils

work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# A certificate shaped like a real deployment's (a CA-issued leaf valid for months, with a CRL
# location), so that the findings are about the server's TLS, not about a throwaway cert.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key"
openssl req -new -x509 -key "$work/ca.key" -out "$work/ca.pem" -days 400 -sha256 \
    -subj "/CN=portal-auth check CA" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$work/key.pem"
openssl req -new -key "$work/key.pem" -out "$work/leaf.csr" -subj "/CN=localhost" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    "crlDistributionPoints=URI:http://127.0.0.1/portal-auth-check.crl" \
    "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature" >"$work/leaf.ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -out "$work/leaf.pem" -days 90 -sha256 -extfile "$work/leaf.ext" 2>/dev/null
cat "$work/leaf.pem" "$work/ca.pem" >"$work/cert.pem"
"$binary" --listen 127.0.0.1:0 --cert "$work/cert.pem" --key "$work/key.pem" \
    --directory app/demo-directory.json --threads 2 >"$work/out" 2>"$work/err" &
server_pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" && break; sleep 0.1; done
port=$(sed -n 's|^listening on https://127.0.0.1:\([0-9]*\)$|\1|p' "$work/out")
[ -n "$port" ] || { echo "server did not start"; cat "$work/err"; exit 1; }

timeout 600 testssl --quiet --color 0 --warnings off --sneaky --fast \
    --add-ca "$work/ca.pem" --jsonfile "$work/result.json" "127.0.0.1:$port" >"$work/testssl.log" 2>&1 || true
[ -s "$work/result.json" ] || { echo "testssl.sh produced no result"; tail -20 "$work/testssl.log"; exit 1; }

python3 - "$work/result.json" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
bad = [f for f in findings if f.get("severity") in ("HIGH", "CRITICAL")]
offered_old = [f for f in findings
               if f.get("id") in ("SSLv2", "SSLv3", "TLS1", "TLS1_1")
               and "not offered" not in f.get("finding", "")]
for f in findings:
    if f.get("severity") in ("LOW", "MEDIUM", "WARN"):
        print("note %s %s: %s" % (f.get("severity"), f.get("id"), f.get("finding")))
for f in bad + offered_old:
    print("FINDING %s %s: %s" % (f.get("severity"), f.get("id"), f.get("finding")))
summary = {}
for f in findings:
    summary[f.get("severity")] = summary.get(f.get("severity"), 0) + 1
print("testssl.sh findings by severity:", dict(sorted(summary.items())))
sys.exit(1 if bad or offered_old else 0)
PY
