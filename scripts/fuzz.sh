#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz (clang, ASan + UBSan) into build-fuzz/ and runs each
# for SECONDS on a copy of its seed corpus, so test/fuzz/corpus/ never grows.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60)
# FUZZ_BUILD_DIR=dir FUZZ_SKIP_BUILD=1 runs targets already built in dir (scripts/test.sh does).
# Crash reproducers land in build-fuzz/artifacts/<target>-*, logs in build-fuzz/fuzz-logs/.
# Exits 1 when any target crashed (or otherwise failed).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS]  (a positive whole number, default 60)" >&2
    exit 2
fi

targets=(fuzz_http_request fuzz_jwt_verify fuzz_json_body fuzz_directory fuzz_password_hash
    fuzz_proxy_protocol)
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}

if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ]; then
scripts/install-deps.sh clang libclang-rt-14-dev

CC=clang CXX=clang++ cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPORTAL_AUTH_BUILD_FUZZERS=ON -DBUILD_TESTING=OFF \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=function -fno-sanitize-recover=all" \
    >/dev/null
cmake --build "$build_dir" -j2 --target "${targets[@]}"
fi

rm -rf "$build_dir/corpus-work" "$build_dir/artifacts" "$build_dir/fuzz-logs"
mkdir -p "$build_dir/corpus-work" "$build_dir/artifacts" "$build_dir/fuzz-logs"

declare -A execs result
failed=0
for t in "${targets[@]}"; do
    work="$build_dir/corpus-work/$t"
    log="$build_dir/fuzz-logs/$t.log"
    mkdir -p "$work"
    cp -R "test/fuzz/corpus/$t/." "$work/"
    echo "== $t: ${seconds}s"
    rc=0
    # UBSan findings abort (-fno-sanitize-recover=all) and print a stack like ASan's.
    UBSAN_OPTIONS=print_stacktrace=1 \
        "$build_dir/test/fuzz/$t" "$work" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build_dir/artifacts/$t-" >"$log" 2>&1 || rc=$?
    execs[$t]=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' |
        tail -n 1 || true)
    artifacts=$(find "$build_dir/artifacts" -maxdepth 1 -name "$t-*" | sort)
    if [ "$rc" -eq 0 ] && [ -z "$artifacts" ]; then
        result[$t]=ok
    else
        result[$t]="FAILED (exit $rc)"
        failed=1
        grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_[a-z_]+: )|runtime error' "$log" | head -n 5 || true
        [ -n "$artifacts" ] && echo "reproducer: $artifacts"
        echo "log: $log"
    fi
done

echo
printf '%-20s %14s  %s\n' target executions result
for t in "${targets[@]}"; do
    printf '%-20s %14s  %s\n' "$t" "${execs[$t]:-?}" "${result[$t]}"
done
exit "$failed"
