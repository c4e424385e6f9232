#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running server on https://127.0.0.1:8443
# with the demo directory. Extra arguments go to portal-auth (e.g. --threads 1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh Release
scripts/make-dev-certs.sh build/app/portal-auth

cat <<'INFO'

portal-auth demo: https://127.0.0.1:8443   (self-signed certificate: certs/server.pem)
demo logins (password = first name + "-demo"):
  alice@acme.test   alice-demo   owner of Acme Corp
  bob@acme.test     bob-demo     admin of Acme Corp, member of Globex
  carol@acme.test   carol-demo   member of Acme Corp
  dave@globex.test  dave-demo    owner of Globex
  olga@portal.test  olga-demo    operator
try:
  curl --cacert certs/server.pem https://127.0.0.1:8443/api/public/auth/login \
       -H 'Content-Type: application/json' -d '{"email":"alice@acme.test","password":"alice-demo"}'
audit log: build/audit.jsonl        stop with Ctrl-C

INFO
exec build/app/portal-auth serve \
    --listen 127.0.0.1:8443 \
    --cert certs/server.pem --key certs/server.key \
    --directory app/demo-directory.json \
    --signing-key certs/signing-keys.txt \
    --audit-log build/audit.jsonl \
    "$@"
