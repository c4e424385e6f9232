#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with CTest, twice: a Release
# build (g++) and an AddressSanitizer + UndefinedBehaviorSanitizer build (clang), which also
# builds the libFuzzer targets and runs each for FUZZ_SECONDS (default 15) on its seed corpus.
#   scripts/test.sh          both runs (what .ci/run does)
#   scripts/test.sh --tsan   the unit, integration and command-line tests under ThreadSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh clang libclang-rt-14-dev

if [ "${1:-}" = "--tsan" ]; then
    BUILD_DIR=build-tsan scripts/build.sh RelWithDebInfo \
        -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer"
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/test/tsan.supp" \
        ctest --test-dir build-tsan --output-on-failure --timeout 900
    exit 0
fi

echo "== OpenAPI description: lint"
scripts/lint-api.sh

echo "== Release build"
scripts/build.sh Release
ctest --test-dir build --output-on-failure --timeout 900

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build, with the fuzz targets"
# fuzzer-no-link only adds coverage counters, so the same objects serve the tests and the
# fuzzers. -fno-sanitize=function: clang 14 cannot compile coroutines with that one check
# (llvm/llvm-project#49689). -fno-sanitize=vptr: the vptr check's runtime needs free file
# descriptors, and fail_closed_test.py exhausts them on purpose (RLIMIT_NOFILE 48), where it
# reported virtual calls of a system error category and of Asio's cancellation handler as
# invalid. Every other UBSan check stays on.
CC=clang CXX=clang++ BUILD_DIR=build-asan scripts/build.sh RelWithDebInfo \
    -DPORTAL_AUTH_BUILD_FUZZERS=ON \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize=function,vptr -fno-sanitize-recover=all -fno-omit-frame-pointer"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1" \
    ctest --test-dir build-asan --output-on-failure --timeout 900

echo "== fuzzing, ${FUZZ_SECONDS:-15} s per target"
FUZZ_BUILD_DIR=build-asan FUZZ_SKIP_BUILD=1 scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
