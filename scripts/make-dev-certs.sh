#!/usr/bin/env bash
# Creates a development ECDSA P-256 certificate for localhost/127.0.0.1/::1 and a signing key
# under certs/ when they are absent. Generated files are git-ignored.
# Usage: scripts/make-dev-certs.sh [path/to/portal-auth]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-build/app/portal-auth}
umask 077
if [ ! -f certs/server.pem ] || [ ! -f certs/server.key ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out certs/server.key
    openssl req -new -x509 -key certs/server.key -out certs/server.pem -days 365 -sha256 \
        -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" 2>/dev/null
    chmod 644 certs/server.pem
    echo "created certs/server.pem and certs/server.key (self-signed, ECDSA P-256)"
fi
if [ ! -f certs/signing-keys.txt ]; then
    "$binary" gen-key "dev-$(date +%Y%m%d)" > certs/signing-keys.txt
    echo "created certs/signing-keys.txt"
fi
