#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, which is then moved (the package must be
# relocatable). Checks what was installed: the binary, the library, the public headers with the
# generated version.hpp and none of the private ones, the CMake package and the pkg-config file.
# Then builds the embedding example from a copy outside the source tree twice, with the compiler
# and flags of this build: with CMake (find_package) and with pkg-config and the compiler alone.
# Each build must serve /healthz over TLS and exit 0 on SIGTERM.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR CXX_COMPILER BUILD_TYPE [CXX_FLAG...]
set -euo pipefail
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
CXX=$3
BUILD_TYPE=$4
shift 4
CXX_FLAGS=("$@")
TMP=$(mktemp -d)
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill -KILL "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    exit 1
}

# run LOG COMMAND...: runs a step quietly; on failure shows its output.
run() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 || {
        echo "--- $*"
        tail -50 "$log"
        fail "the command above failed"
    }
}

# --- 1. install, then move the prefix ------------------------------------------------------------
run "$TMP/install.log" cmake --install "$BUILD" --prefix "$TMP/a"
mv "$TMP/a" "$TMP/b"
P=$TMP/b
echo "PASS: installed, prefix moved to $P"

# --- 2. what was installed -----------------------------------------------------------------------
[ -x "$P/bin/portal-auth" ] || fail "bin/portal-auth missing"
lib=$(find "$P" -name libportal_auth.a)
[ -n "$lib" ] || fail "libportal_auth.a missing"
config_dir=$(dirname "$(find "$P" -name portal_authConfig.cmake)")
for f in portal_authConfig.cmake portal_authConfigVersion.cmake portal_authTargets.cmake; do
    [ -f "$config_dir/$f" ] || fail "$f missing"
done
pc=$(find "$P" -name portal_auth.pc)
[ -n "$pc" ] || fail "portal_auth.pc missing"
[ "$(dirname "$pc")" = "$(dirname "$lib")/pkgconfig" ] || fail "$pc is not in the library's folder"

# Headers: exactly the library's header file set as this build tree was configured (the public
# lib/include/portal_auth/*.hpp and the generated version.hpp), each of them public, none private,
# and every <portal_auth/...> they include installed too.
expected=$(sed 's|.*/\(portal_auth/[^/]*\)$|\1|' "$BUILD/portal_auth_header_set.txt" | sort)
installed=$( (cd "$P/include" && find . -type f | sed 's|^\./||') | sort)
if [ "$installed" != "$expected" ]; then
    diff <(echo "$expected") <(echo "$installed") || true
    fail "installed headers (>) differ from the library's header set (<)"
fi
mapfile -t installed_list <<<"$installed"
for h in "${installed_list[@]}"; do
    [ "$h" = portal_auth/version.hpp ] || [ -f "$SRC/lib/include/$h" ] ||
        fail "$h installed but not in lib/include"
done
for h in json_writer.hpp response_serializer.hpp base64.hpp rate_limiter.hpp router.hpp \
    openssl_handles.hpp $(cd "$SRC/lib/src" && ls -- *.hpp 2>/dev/null); do
    [ -f "$SRC/lib/include/portal_auth/$h" ] && continue # also a public header's name
    [ -z "$(find "$P" -name "$h")" ] || fail "private header $h installed"
done
[ -z "$(find "$P" -path '*/detail/*')" ] || fail "something under detail/ installed"
missing=$(cd "$P/include" &&
    sed -n 's|^#include <\(portal_auth/[^>]*\)>.*|\1|p' "${installed_list[@]}" | sort -u |
    while read -r h; do [ -f "$h" ] || echo "$h"; done)
[ -z "$missing" ] || fail "installed headers include headers not installed: $missing"
grep -q '^#define PORTAL_AUTH_VERSION_STRING "' "$P/include/portal_auth/version.hpp" ||
    fail "version.hpp has no PORTAL_AUTH_VERSION_STRING"
# Nothing installed as text points back to the source tree, the build tree or the first prefix.
if grep -rlF -e "$SRC" -e "$BUILD" -e "$TMP/a" "$P" --include='*.cmake' --include='*.pc' \
    --include='*.hpp'; then
    fail "the files above name the source, build or original install folder"
fi
echo "PASS: binary, library, $(echo "$installed" | wc -l) public headers, CMake package," \
    "pkg-config file; no private header"

# --- 3. pkg-config sees the moved prefix ---------------------------------------------------------
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
# shellcheck disable=SC2016 # a literal ${pcfiledir}
grep -qx 'prefix=${pcfiledir}/[./]*' "$pc" || fail "prefix in $pc is not relative to \${pcfiledir}"
[ "$(realpath "$(pkg-config --variable=prefix portal_auth)")" = "$(realpath "$P")" ] ||
    fail "pkg-config prefix $(pkg-config --variable=prefix portal_auth) is not $P"
version=$(pkg-config --modversion portal_auth)
grep -q "^#define PORTAL_AUTH_VERSION_STRING \"$version\"$" "$P/include/portal_auth/version.hpp" ||
    fail "version.hpp does not say $version"
cflags=$(pkg-config --cflags portal_auth | sed "s/ *$//")
[[ " $cflags " == *" -DBOOST_BEAST_USE_STD_STRING_VIEW "* ]] ||
    fail "Cflags lack -DBOOST_BEAST_USE_STD_STRING_VIEW: $cflags"
echo "PASS: pkg-config: portal_auth $version, Cflags $cflags"

# --- 4. the example, on its own, against the prefix ----------------------------------------------
cp -r "$SRC/examples/embed" "$TMP/embed"
rm -rf "$TMP/embed/build"

# serve NAME BINARY: starts it from /, expects /healthz 200 over TLS, then exit 0 on SIGTERM.
serve() {
    local name=$1 binary=$2 port="" status code=0
    (cd / && exec "$binary") >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PID=$!
    for _ in $(seq 200); do
        port=$(sed -n 's|^listening on https://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' \
            "$TMP/$name.out")
        [ -n "$port" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$port" ] || { cat "$TMP/$name.err"; fail "$name: no listening line"; }
    status=$(curl -s -k -o /dev/null -w '%{http_code}' --max-time 10 \
        "https://127.0.0.1:$port/healthz" || true)
    [ "$status" = 200 ] || { cat "$TMP/$name.err"; fail "$name: /healthz answered $status"; }
    kill -TERM "$PID"
    wait "$PID" || code=$?
    PID=""
    [ "$code" = 0 ] || { cat "$TMP/$name.err"; fail "$name: exit code $code after SIGTERM"; }
    echo "PASS: $name: /healthz 200 on port $port, exit 0 after SIGTERM"
}

started=$SECONDS
run "$TMP/cmake-configure.log" cmake -S "$TMP/embed" -B "$TMP/embed-cmake" -G Ninja \
    -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DCMAKE_CXX_COMPILER="$CXX" \
    -DCMAKE_CXX_FLAGS="${CXX_FLAGS[*]}" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
found=$(sed -n 's/^portal_auth_DIR:PATH=//p' "$TMP/embed-cmake/CMakeCache.txt")
[ "$(realpath "$found")" = "$(realpath "$config_dir")" ] ||
    fail "find_package found portal_auth in $found, not in $config_dir"
run "$TMP/cmake-build.log" cmake --build "$TMP/embed-cmake" -j2
! grep -qF "$SRC" "$TMP/embed-cmake/compile_commands.json" ||
    fail "the CMake consumer's compile commands name the source tree"
echo "PASS: CMake consumer built in $((SECONDS - started)) s"
serve cmake-consumer "$TMP/embed-cmake/portal-auth-embed"

started=$SECONDS
# shellcheck disable=SC2046 # pkg-config's output is meant to be split into words
run "$TMP/pkg-config-build.log" "$CXX" "${CXX_FLAGS[@]}" \
    -DPORTAL_AUTH_EMBED_DIRECTORY="\"$TMP/embed/directory.json\"" \
    "$TMP/embed/main.cpp" -o "$TMP/embed-pkg-config" $(pkg-config --cflags --libs portal_auth)
echo "PASS: pkg-config consumer built in $((SECONDS - started)) s"
serve pkg-config-consumer "$TMP/embed-pkg-config"
