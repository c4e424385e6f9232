#!/usr/bin/env bash
# Configures and builds into build/ (or $BUILD_DIR) with Ninja, two jobs.
# Usage: scripts/build.sh [Release|Debug|RelWithDebInfo] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
build_type=${1:-Release}
shift || true
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "$@" >/dev/null
cmake --build "$build_dir" -j2
