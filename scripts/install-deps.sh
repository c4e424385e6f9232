#!/usr/bin/env bash
# Installs the Debian 12 packages portal-auth needs to build, test and run; skips what is there.
# Usage: scripts/install-deps.sh [extra-package...]
set -euo pipefail

packages=(
    cmake g++ make ninja-build pkg-config openssl curl ca-certificates python3
    libssl-dev
    libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-test1.81-dev
    python3-jsonschema python3-yaml
    libboost-program-options1.81-dev libsystemd-dev systemd logrotate
    libhiredis-dev redis-server
    "$@"
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
