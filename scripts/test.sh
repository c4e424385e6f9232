#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with CTest, twice: a Release
# build and an AddressSanitizer + UndefinedBehaviorSanitizer build.
#   scripts/test.sh          both runs (what .ci/run does)
#   scripts/test.sh --tsan   the unit, integration and command-line tests under ThreadSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

if [ "${1:-}" = "--tsan" ]; then
    BUILD_DIR=build-tsan scripts/build.sh RelWithDebInfo \
        -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer"
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
        ctest --test-dir build-tsan --output-on-failure --timeout 900
    exit 0
fi

echo "== Release build"
scripts/build.sh Release
ctest --test-dir build --output-on-failure --timeout 900

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build"
BUILD_DIR=build-asan scripts/build.sh RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1" \
    ctest --test-dir build-asan --output-on-failure --timeout 900
