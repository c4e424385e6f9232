#!/usr/bin/env bash
# Lints api/openapi.yaml with Redocly CLI, pinned, under the rules of api/redocly.yaml. The CLI is
# installed with npm once into a cache directory (PORTAL_AUTH_TOOLS_CACHE, default
# ~/.cache/portal-auth) and reused; Node.js and npm come from Debian when missing.
#   scripts/lint-api.sh
set -euo pipefail
cd "$(dirname "$0")/.."

redocly_version=1.34.20 # installs and runs on Debian 12's Node.js 18 as on Node.js 20
cache=${PORTAL_AUTH_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portal-auth}
prefix=$cache/redocly-cli-$redocly_version
redocly=$prefix/node_modules/.bin/redocly

if [ ! -e "$prefix/.complete" ]; then
    command -v npm >/dev/null || scripts/install-deps.sh nodejs npm
    mkdir -p "$cache"
    # Installed beside its final place, then moved there: an interrupted install leaves nothing
    # that looks complete.
    staging=$(mktemp -d "$cache/.redocly-cli-XXXXXX")
    trap 'rm -rf "$staging"' EXIT
    echo "installing @redocly/cli@$redocly_version into $prefix"
    npm install --prefix "$staging" --no-save --no-audit --no-fund --loglevel=error \
        "@redocly/cli@$redocly_version" >/dev/null
    touch "$staging/.complete"
    rm -rf "$prefix"
    mv "$staging" "$prefix"
fi

REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
    "$redocly" lint --config api/redocly.yaml api/openapi.yaml
