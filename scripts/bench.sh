#!/usr/bin/env bash
# Benchmark (manual, not run in CI): portal-auth under wrk next to an nginx reference on the same
# machine, the Google Benchmark micro-suite (test/bench) and the memory of 1,000,000 sessions.
#
# HTTP scenarios (wrk -t1 -c64 -d10s --latency, scripts in scripts/bench/):
#   S0  GET /healthz                               portal-auth and nginx (`return 200`)
#   S1  GET /api/public/auth/session               with a bearer
#   S2  GET /api/public/coworkers/profiles         with a bearer; next to it the row "S2 nginx
#       (static file, same size)": nginx serving portal-auth's S2 body, fetched once from
#       portal-auth at start-up, as a static file (GET /s2-static.json, same bytes, same TLS
#       setup and certificate as nginx S0). Goal: portal-auth S2 req/s >= 1.0 x that row's.
#   S3  GET /api/public/coworkers/{id}/impersonate an owner's bearer
#   S4  impersonate, then POST /api/public/auth/login/{token} with the token just received
#   S5  GET /healthz with Connection: close        new TLS connections, portal-auth and nginx
#   S6  login storm: S1 against a second portal-auth (its defaults plus a directory hashed with
#       scrypt ln=14), first alone, then while a second wrk (-t1 -c8, login.lua, 1 s longer to
#       bracket the S1 run) sends valid logins. Both times healthz_probe.py sends GET /healthz
#       100 times a second over one keep-alive TLS connection and times each answer. Reported:
#       S6 req/s, its ratio to S1 alone (goal >= 0.4), /healthz p99 under the storm (goal
#       <= 20 ms; counting the requests a stall held back) and the login side's statuses: 2xx,
#       503 (load shed: expected) and any other (goal 0).
# Each scenario runs BENCH_RUNS times (default 3), in rounds over all scenarios, portal-auth and
# nginx alternating (S0, S2, S5). Per row: req/s (median, min-max), p50, p99, errors, the ratio
# to nginx S0 and the server's CPU seconds per 1,000 requests.
#
# Idle connections (idle_conns.py): 3,000 TLS keep-alive connections, each after its handshake and
# one GET /healthz left open and idle, to a fresh portal-auth and then to the nginx worker; the
# server's RSS growth (VmRSS) per connection (goal <= 32 KiB per idle connection; nginx is the
# reference).
#
# The tables, the micro-suite's and the memory figure go to bench/results/latest.md (git-ignored;
# bench/results/only.md with --only) and to stdout.
#
# Usage: scripts/bench.sh [--quick] [--only LIST]
#   --quick      wrk -d3s instead of -d10s
#   --only LIST  only these, comma-separated: S0 S1 S2 S3 S4 S5 S6 idle micro (micro: the
#                micro-suite and the session memory probe; S2: both S2 rows, nginx's too);
#                e.g. --only S6,idle
# Environment: BENCH_THREADS (portal-auth --threads, default 1; not for S6, which runs the
#   defaults), BENCH_RUNS (3 to 10, default 3; 1 to 10 with --only), BENCH_BINARY (a portal-auth
#   already built: skips scripts/build.sh), BENCH_HASH_THREADS / BENCH_HASH_QUEUE (when set,
#   passed to the S6 server as --hash-threads / --hash-queue)
# Everything listens on 127.0.0.1; all servers are started here, by hand, and stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PYTHONDONTWRITEBYTECODE=1    # no __pycache__ next to scripts/bench/*.py

usage() {
    echo "usage: scripts/bench.sh [--quick] [--only S0,S1,S2,S3,S4,S5,S6,idle,micro]" \
        "(env: BENCH_THREADS=1, BENCH_RUNS=3, BENCH_BINARY," \
        "BENCH_HASH_THREADS, BENCH_HASH_QUEUE)" >&2
    exit 2
}
all_parts=S0,S1,S2,S3,S4,S5,S6,idle,micro
mode=full
duration=10
only=""
while [ $# -gt 0 ]; do
    case $1 in
    --quick) mode=quick; duration=3 ;;
    --only)
        [ $# -ge 2 ] || usage
        only=$2
        shift
        ;;
    --only=*) only=${1#--only=} ;;
    -h | --help) usage ;;
    *) usage ;;
    esac
    shift
done
if [ -n "$only" ]; then
    for part in ${only//,/ }; do
        if [[ ,$all_parts, != *,$part,* ]]; then
            echo "bench: --only: unknown part '$part'" >&2
            usage
        fi
    done
fi
parts=${only:-$all_parts}
want() { [[ ,$parts, == *,$1,* ]]; }
want_any() {
    local p
    for p in "$@"; do want "$p" && return 0; done
    return 1
}
threads=${BENCH_THREADS:-1}
runs=${BENCH_RUNS:-3}
[[ $threads =~ ^[1-9][0-9]?$ ]] || { echo "bench: BENCH_THREADS must be 1-99" >&2; exit 2; }
if [ -n "$only" ]; then
    [[ $runs =~ ^([1-9]|10)$ ]] || { echo "bench: BENCH_RUNS must be 1-10" >&2; exit 2; }
else
    [[ $runs =~ ^([3-9]|10)$ ]] || { echo "bench: BENCH_RUNS must be 3-10" >&2; exit 2; }
fi
# Hash-pool flags of newer binaries: passed to the S6 server only when set, so that a binary
# without them still runs the bench.
storm_flags=()
if [ -n "${BENCH_HASH_THREADS:-}" ]; then
    if ! [[ $BENCH_HASH_THREADS =~ ^[0-9]{1,3}$ ]]; then
        echo "bench: BENCH_HASH_THREADS must be a number" >&2
        exit 2
    fi
    storm_flags+=(--hash-threads "$BENCH_HASH_THREADS")
fi
if [ -n "${BENCH_HASH_QUEUE:-}" ]; then
    if ! [[ $BENCH_HASH_QUEUE =~ ^[0-9]{1,6}$ ]]; then
        echo "bench: BENCH_HASH_QUEUE must be a number" >&2
        exit 2
    fi
    storm_flags+=(--hash-queue "$BENCH_HASH_QUEUE")
fi
connections=64
micro_min_time=0.2
storm_ln=14
storm_accounts=32    # customers with their own ln=14 password: the login side rotates over them
storm_login_connections=8
idle_count=3000

# Which servers the chosen parts need. nginx's body copies portal-auth's /healthz and its S2 file
# portal-auth's S2 body, so nginx needs the main server too.
need_nginx=0
want_any S0 S2 S5 idle && need_nginx=1
need_main=$need_nginx
want_any S1 S2 S3 S4 && need_main=1
need_bearer=0
want_any S1 S2 S3 S4 && need_bearer=1

# --- processes and clean-up --------------------------------------------------------------------
work=""
server_pid=""
storm_pid=""
idle_pid=""
nginx_pid=""
wrk_pid=""
login_wrk_pid=""
probe_pid=""

stop_pid() {
    local pid=$1 signal=${2:-TERM}
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill "-$signal" "$pid" 2>/dev/null || true
        for _ in $(seq 75); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# nginx: a graceful stop of the master, then its workers by pid should any outlive it.
nginx_workers=""
stop_nginx() {
    local w
    stop_pid "$nginx_pid" QUIT
    for w in $nginx_workers; do
        if [ "$(ps -o comm= -p "$w" 2>/dev/null)" = nginx ]; then
            kill -KILL "$w" 2>/dev/null || true
        fi
    done
    nginx_pid=""
    nginx_workers=""
    return 0
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_pid "$probe_pid"
    stop_pid "$login_wrk_pid"
    stop_pid "$wrk_pid"
    stop_nginx
    stop_pid "$server_pid"
    stop_pid "$storm_pid"
    stop_pid "$idle_pid"
    if [ "$status" -ne 0 ] && [ -n "$work" ] && [ -d "$work" ]; then
        # A failed run keeps the servers' stderr for the post-mortem.
        for f in "$work"/*.err; do
            [ -s "$f" ] && { echo "bench: $(basename "$f"):" >&2; tail -20 "$f" >&2; }
        done
    fi
    [ -n "$work" ] && [ -d "$work" ] && rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. packages and builds ----------------------------------------------------------------------
scripts/install-deps.sh wrk nginx libbenchmark-dev
if [ -n "${BENCH_BINARY:-}" ]; then
    binary=$(realpath "$BENCH_BINARY")
    [ -x "$binary" ] || { echo "bench: BENCH_BINARY $BENCH_BINARY is not executable" >&2; exit 2; }
else
    scripts/build.sh Release
    binary=$root/build/app/portal-auth
fi
echo "bench: portal-auth binary $binary"
if want micro; then
    cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DPORTAL_AUTH_BUILD_BENCHMARKS=ON -DBUILD_TESTING=OFF >/dev/null
    cmake --build build-bench -j2 --target portal_auth_micro portal_auth_session_memory
    micro=$root/build-bench/test/bench/portal_auth_micro
    memory_probe=$root/build-bench/test/bench/portal_auth_session_memory
fi

# 3,000 idle connections are 3,000 descriptors in the server and as many in the client (both
# inherit this shell's limit), plus the listener, files and wrk's.
if want idle; then
    need_fds=$((idle_count + 256))
    if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$need_fds" ]; then
        ulimit -Sn "$need_fds" 2>/dev/null || {
            echo "bench: idle: ulimit -n $need_fds refused (hard limit $(ulimit -Hn))" >&2
            exit 1
        }
    fi
    echo "bench: ulimit -n $(ulimit -Sn)"
fi

# --- 2. work dir: certificate, signing key, directory -------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/portal-auth-bench.XXXXXX")
cert=$work/server.pem
key=$work/server.key
directory=$work/directory.json
(
    umask 077
    openssl ecparam -name prime256v1 -genkey -noout -out "$key"
    "$binary" gen-key bench >"$work/signing-keys.txt"
)
openssl req -new -x509 -key "$key" -out "$cert" -days 2 -sha256 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
owner=$(python3 scripts/bench/gen_directory.py "$directory")
read -r owner_email owner_password <<<"$owner"
echo "bench: directory: 1000 teams, 20000 customers, 25000 profiles ($(wc -c <"$directory") bytes)"
if want S6; then
    # Same shape; ln=14 hashes are slow to make, so only $storm_accounts customers get their own.
    storm_directory=$work/directory-ln$storm_ln.json
    started=$SECONDS
    python3 scripts/bench/gen_directory.py --ln "$storm_ln" --own-passwords "$storm_accounts" \
        "$storm_directory" >/dev/null
    echo "bench: S6 directory: scrypt ln=$storm_ln, $storm_accounts own passwords" \
        "($((SECONDS - started)) s to hash)"
fi

# --- 3. portal-auth ------------------------------------------------------------------------------
# start_server NAME ARGS...: portal-auth serve on a free port of 127.0.0.1 with the bench's
# certificate and signing key plus ARGS; sets NAME_pid (at once, for the clean-up) and NAME_port;
# its stdout and stderr go to $work/NAME.out and NAME.err.
start_server() {
    local name=$1 pid p=""
    shift
    "$binary" serve --listen 127.0.0.1:0 --cert "$cert" --key "$key" \
        --signing-key "$work/signing-keys.txt" "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pid=$!
    printf -v "${name}_pid" '%s' "$pid"
    for _ in $(seq 100); do
        p=$(sed -n 's|^listening on https://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$work/$name.out")
        [ -n "$p" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench: portal-auth ($name) refused to start:" >&2
            cat "$work/$name.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    [ -n "$p" ] || { echo "bench: portal-auth ($name) printed no port within 10 s" >&2; exit 1; }
    printf -v "${name}_port" '%s' "$p"
}

# login_bearer URL EMAIL PASSWORD: prints the access token of a login through the API.
login_bearer() {
    local answer
    answer=$(curl -sS --max-time 30 --cacert "$cert" "$1/api/public/auth/login" \
        -H 'Content-Type: application/json' -d "{\"email\":\"$2\",\"password\":\"$3\"}")
    printf '%s' "$answer" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])' 2>/dev/null || {
        echo "bench: login of $2 on $1 failed: $answer" >&2
        return 1
    }
}

url=""
server_port=""
storm_port=""
idle_port=""
if [ "$need_main" -eq 1 ]; then
    start_server server --threads "$threads" --directory "$directory" \
        --audit-log "$work/audit.jsonl" --impersonation-issue-limit 0
    port=$server_port
    url=https://127.0.0.1:$port
    server_err_lines=$(wc -l <"$work/server.err")
    echo "bench: portal-auth pid $server_pid on $url (--threads $threads)"
fi
server_stderr=""

# --- 4. bearer and coworker targets, through the API --------------------------------------------
# The S2 answer is kept byte for byte in a file ($(...) would drop a trailing newline): the
# coworker targets come from it, and nginx serves it as its S2 static file.
targets=""
s2_body=$work/s2-body.json
s2_bytes=""
if [ "$need_bearer" -eq 1 ]; then
    bearer=$(login_bearer "$url" "$owner_email" "$owner_password")
    s2_downloaded=$(curl -sS --fail --max-time 10 --cacert "$cert" -o "$s2_body" \
        -w '%{size_download}' "$url/api/public/coworkers/profiles" \
        -H "Authorization: Bearer $bearer")
    s2_bytes=$(wc -c <"$s2_body")
    [ "$s2_bytes" = "$s2_downloaded" ] || {
        echo "bench: S2 body: $s2_bytes bytes on disk, curl read $s2_downloaded" >&2
        exit 1
    }
    targets=$(python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))["Profiles"]
print(",".join(str(r["Id"]) for r in rows if r["CanImpersonate"])[:200].rstrip(","))' "$s2_body")
    [ -n "$targets" ] || { echo "bench: $owner_email may impersonate nobody" >&2; exit 1; }
    first_target=${targets%%,*}
    code=$(curl -sS --max-time 10 --cacert "$cert" -o /dev/null -w '%{http_code}' \
        "$url/api/public/coworkers/$first_target/impersonate" -H "Authorization: Bearer $bearer")
    [ "$code" = 200 ] || { echo "bench: impersonation check answered $code" >&2; exit 1; }
    echo "bench: bearer: $owner_email (owner of team 1); coworker targets: $targets"
    echo "bench: S2 body: $s2_bytes bytes"
fi

# --- 5. nginx, by hand ---------------------------------------------------------------------------
health_body=""
if [ "$need_nginx" -eq 1 ]; then
    health_body=$(curl -sS --fail --max-time 10 --cacert "$cert" "$url/healthz")
    mkdir -p "$work/nginx-tmp" "$work/www"
    # The template's document root; its S2 location serves this file. Started as root, nginx's
    # worker runs as nobody: it needs to pass through the mktemp dir (0700) and read the file.
    # o+x only: no listing, and the key stays 0600.
    if want S2; then
        install -m 0644 "$s2_body" "$work/www/s2-static.json"
        chmod o+x "$work"
        chmod 0755 "$work/www"
    fi
    nginx_port=""
    for attempt in 1 2 3 4 5; do
        candidate=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
        python3 - "$root/scripts/bench/nginx.conf.template" "$work/nginx.conf" "$work" "$candidate" \
            "$cert" "$key" "$health_body" <<'PY'
import re, sys
template, out, work, port, cert, key, body = sys.argv[1:8]
# The same number of bytes as portal-auth's /healthz body; padded JSON if it has characters
# that would need escaping in nginx's single-quoted string.
if not re.fullmatch(r'[A-Za-z0-9{}":,._ -]*', body) or len(body) < 12:
    n = max(len(body), 12)
    body = '{"pad":"' + "x" * (n - 10) + '"}'
text = open(template).read()
for k, v in {"@WORK@": work, "@PORT@": port, "@CERT@": cert, "@KEY@": key, "@BODY@": body}.items():
    text = text.replace(k, v)
open(out, "w").write(text)
PY
        nginx -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log" &
        nginx_pid=$!
        ready=0
        for _ in $(seq 50); do
            kill -0 "$nginx_pid" 2>/dev/null || break
            if curl -s --max-time 2 --cacert "$cert" -o /dev/null "https://127.0.0.1:$candidate/"; then
                ready=1
                break
            fi
            sleep 0.1
        done
        if [ "$ready" -eq 1 ]; then
            nginx_port=$candidate
            break
        fi
        echo "bench: nginx did not start on port $candidate (attempt $attempt):" >&2
        tail -3 "$work/nginx-error.log" >&2 || true
        stop_nginx
    done
    [ -n "$nginx_port" ] || { echo "bench: nginx would not start" >&2; exit 1; }
    nginx_url=https://127.0.0.1:$nginx_port
    nginx_body=$(curl -sS --fail --max-time 10 --cacert "$cert" "$nginx_url/")
    for _ in $(seq 50); do
        nginx_workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ' || true)
        [ -n "$nginx_workers" ] && break
        sleep 0.1
    done
    [ -n "$nginx_workers" ] || { echo "bench: no nginx worker process found" >&2; exit 1; }
    echo "bench: nginx master $nginx_pid (worker $nginx_workers) on $nginx_url;" \
        "bodies: portal-auth ${#health_body} bytes, nginx ${#nginx_body} bytes"
    if want S2; then
        # The static row compares like with like only if nginx sends exactly portal-auth's bytes.
        if ! curl -sS --fail --max-time 10 --cacert "$cert" -o "$work/s2-nginx.json" \
            "$nginx_url/s2-static.json" || ! cmp -s "$s2_body" "$work/s2-nginx.json"; then
            echo "bench: nginx's /s2-static.json differs from portal-auth's S2 body" >&2
            exit 1
        fi
        echo "bench: S2 static file: nginx $nginx_url/s2-static.json," \
            "$(wc -c <"$work/s2-nginx.json") bytes (portal-auth S2: $s2_bytes bytes)"
    fi
fi

# --- 6. TLS resumption check (openssl s_client, session saved then offered) ---------------------
resumption() { # PORT -tls1_3|-tls1_2 -> "Reused" / "New" / "no session"
    local p=$1 version=$2 sess=$work/session-$1$2.pem answer
    local request=$'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'
    rm -f "$sess"
    printf '%s' "$request" | timeout 10 openssl s_client -connect "127.0.0.1:$p" "$version" \
        -CAfile "$cert" -sess_out "$sess" -ign_eof >/dev/null 2>&1 || true
    if [ ! -s "$sess" ]; then
        echo "no session received"
        return
    fi
    answer=$(printf '%s' "$request" | timeout 10 openssl s_client -connect "127.0.0.1:$p" \
        "$version" -CAfile "$cert" -sess_in "$sess" -ign_eof 2>/dev/null |
        sed -n 's/^\(Reused\|New\), .*/\1/p' | head -1 || true)
    echo "${answer:-no answer}"
}
# Only S5 depends on it.
declare -A resumed
for k in "portal-auth tls1_3" "portal-auth tls1_2" "nginx tls1_3" "nginx tls1_2"; do
    resumed[$k]=""
done
if want S5; then
    for v in -tls1_3 -tls1_2; do
        resumed["portal-auth ${v#-}"]=$(resumption "$port" "$v")
        resumed["nginx ${v#-}"]=$(resumption "$nginx_port" "$v")
    done
    for k in "portal-auth tls1_3" "portal-auth tls1_2" "nginx tls1_3" "nginx tls1_2"; do
        echo "bench: resumption $k: ${resumed[$k]}"
    done
fi

# --- 7. the scenarios ----------------------------------------------------------------------------
clk_tck=$(getconf CLK_TCK)
cpu_ticks() { # PID... -> utime + stime of all of them, in clock ticks
    local total=0 pid stat rest
    for pid in "$@"; do
        stat=$(<"/proc/$pid/stat")
        rest=${stat##*) }
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# run_wrk SCENARIO SERVER ROUND DURATION LUA [VAR=VALUE...]: one wrk run, recorded in runs.tsv
# when ROUND > 0 (round 0 is a warm-up). SERVER: portal-auth, nginx, or storm (the S6
# portal-auth, recorded as portal-auth).
run_wrk() {
    local scenario=$1 server=$2 round=$3 secs=$4 lua=$5
    shift 5
    local target pids before after out rc=0 label=$server
    case $server in
    nginx)
        target=$nginx_url
        # shellcheck disable=SC2206
        pids=("$nginx_pid" $nginx_workers)
        ;;
    storm)
        target=$storm_url
        pids=("$storm_pid")
        label=portal-auth
        ;;
    *)
        target=$url
        pids=("$server_pid")
        ;;
    esac
    for p in "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null || { echo "bench: $server (pid $p) is gone" >&2; exit 1; }
    done
    out=$work/wrk-$scenario-$server-$round.txt
    before=$(cpu_ticks "${pids[@]}")
    env "$@" timeout --kill-after=5 $((secs + 30)) wrk -t1 -c"$connections" -d"${secs}s" \
        --latency -s "$root/scripts/bench/$lua" "$target" >"$out" 2>&1 &
    wrk_pid=$!
    wait "$wrk_pid" || rc=$?
    wrk_pid=""
    after=$(cpu_ticks "${pids[@]}")
    if [ "$rc" -ne 0 ]; then
        echo "bench: wrk exited with $rc ($scenario $server round $round):" >&2
        tail -5 "$out" >&2
    fi
    if [ "$round" -gt 0 ]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$label" "$round" "$out" \
            $((after - before)) "$clk_tck" >>"$work/runs.tsv"
        local rps
        rps=$(sed -n 's/^Requests\/sec: *//p' "$out")
        printf 'bench: round %s %-8s %-12s %10s req/s  %s\n' "$round" "$scenario" "$server" \
            "${rps:-?}" "$(grep -E 'Non-2xx|Socket errors|bench-handoff: issued' "$out" | tr -s ' ' |
                tr '\n' ' ')"
    fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/runs.tsv"
: >"$work/storm.tsv"
: >"$work/idle.txt"
if want_any S0 S1 S2 S3 S4 S5; then
    listed=""
    for sc in S0 S1 S2 S3 S4 S5; do
        if want "$sc"; then listed+=" $sc"; fi
    done
    echo "bench: warm-up (1 s each), then $runs rounds of$listed," \
        "wrk -t1 -c$connections -d${duration}s"
    run_wrk S0 portal-auth 0 1 get.lua
    if [ "$need_nginx" -eq 1 ]; then run_wrk S0 nginx 0 1 get.lua; fi
    for round in $(seq "$runs"); do
        if [ $((round % 2)) -eq 1 ]; then order=(portal-auth nginx); else order=(nginx portal-auth); fi
        if want S0; then
            for s in "${order[@]}"; do
                run_wrk S0 "$s" "$round" "$duration" get.lua BENCH_PATH=/healthz
            done
        fi
        if want S1; then
            run_wrk S1 portal-auth "$round" "$duration" get.lua \
                BENCH_PATH=/api/public/auth/session BENCH_BEARER="$bearer"
        fi
        if want S2; then
            # nginx's row: the same body as a static file, no bearer (nothing to check there).
            for s in "${order[@]}"; do
                if [ "$s" = nginx ]; then
                    run_wrk S2 nginx "$round" "$duration" get.lua BENCH_PATH=/s2-static.json
                else
                    run_wrk S2 portal-auth "$round" "$duration" get.lua \
                        BENCH_PATH=/api/public/coworkers/profiles BENCH_BEARER="$bearer"
                fi
            done
        fi
        if want S3; then
            run_wrk S3 portal-auth "$round" "$duration" get.lua \
                BENCH_PATH="/api/public/coworkers/$first_target/impersonate" BENCH_BEARER="$bearer"
        fi
        if want S4; then
            run_wrk S4 portal-auth "$round" "$duration" handoff.lua \
                BENCH_BEARER="$bearer" BENCH_TARGETS="$targets"
        fi
        if want S5; then
            for s in "${order[@]}"; do
                run_wrk S5 "$s" "$round" "$duration" get.lua BENCH_PATH=/healthz BENCH_CLOSE=1
            done
        fi
    done
fi
if [ -n "$server_pid" ]; then
    # Anything portal-auth wrote to stderr during the runs (it writes nothing in normal operation).
    server_stderr=$(tail -n +"$((server_err_lines + 1))" "$work/server.err" | head -5 | tr '\n' ' ')
    stop_pid "$server_pid"
    server_pid=""
fi

# --- 8. S6, login storm -------------------------------------------------------------------------
# start_probe SCENARIO ROUND: the /healthz probe on the S6 server, in the background, for one
# wrk run's duration; returns once its connection is up (made before any storm: under one, a
# handshake alone can take seconds and the probe would time little else).
start_probe() {
    local ready=$work/healthz-$1-$2.ready
    python3 "$root/scripts/bench/healthz_probe.py" --port "$storm_port" --cafile "$cert" \
        --seconds "$duration" --out "$work/healthz-$1-$2.txt" --ready-file "$ready" \
        >"$work/healthz-$1-$2.log" 2>&1 &
    probe_pid=$!
    for _ in $(seq 150); do
        [ -e "$ready" ] && return 0
        kill -0 "$probe_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench: the /healthz probe did not connect: $(tail -2 "$work/healthz-$1-$2.log")" >&2
    exit 1
}
wait_probe() {
    local rc=0
    wait "$probe_pid" || rc=$?
    probe_pid=""
    [ "$rc" -eq 0 ] || echo "bench: the /healthz probe exited with $rc: $(tail -2 "$1")" >&2
}

storm_stderr=""
storm_threads=""
if want S6; then
    start_server storm --directory "$storm_directory" "${storm_flags[@]}"
    storm_url=https://127.0.0.1:$storm_port
    storm_threads=$(nproc)    # the default of --threads: hardware threads
    storm_bearer=$(login_bearer "$storm_url" "$owner_email" "$owner_password")
    storm_err_lines=$(wc -l <"$work/storm.err")
    echo "bench: S6 portal-auth pid $storm_pid on $storm_url" \
        "(defaults${storm_flags[*]:+, ${storm_flags[*]}})"
    echo "bench: S6: $runs rounds of S1 alone, then S1 under $storm_login_connections connections" \
        "of logins; /healthz probe 100/s on one keep-alive connection"
    run_wrk S6-alone storm 0 1 get.lua \
        BENCH_PATH=/api/public/auth/session BENCH_BEARER="$storm_bearer"
    for round in $(seq "$runs"); do
        start_probe S6-alone "$round"
        run_wrk S6-alone storm "$round" "$duration" get.lua \
            BENCH_PATH=/api/public/auth/session BENCH_BEARER="$storm_bearer"
        wait_probe "$work/healthz-S6-alone-$round.log"

        # The login side starts 0.5 s early and ends 0.5 s late, so the storm covers the whole
        # S1 run and the probe's window; --timeout 10s: a slow login is then counted by its
        # status, not as a timeout.
        start_probe S6 "$round"
        login_out=$work/wrk-S6-login-$round.txt
        env BENCH_LOGIN_FIRST=100001 BENCH_LOGIN_COUNT="$storm_accounts" \
            timeout --kill-after=5 $((duration + 31)) wrk -t1 -c"$storm_login_connections" \
            -d"$((duration + 1))s" --timeout 10s -s "$root/scripts/bench/login.lua" "$storm_url" \
            >"$login_out" 2>&1 &
        login_wrk_pid=$!
        sleep 0.5
        run_wrk S6 storm "$round" "$duration" get.lua \
            BENCH_PATH=/api/public/auth/session BENCH_BEARER="$storm_bearer"
        wait_probe "$work/healthz-S6-$round.log"
        login_rc=0
        wait "$login_wrk_pid" || login_rc=$?
        login_wrk_pid=""
        if [ "$login_rc" -ne 0 ]; then
            echo "bench: login wrk exited with $login_rc:" >&2
            tail -5 "$login_out" >&2
        fi
        printf '%s\t%s\t%s\t%s\n' "$round" "$login_out" "$work/healthz-S6-alone-$round.txt" \
            "$work/healthz-S6-$round.txt" >>"$work/storm.tsv"
        echo "bench: round $round S6 login side:" \
            "$(sed -n 's/^Requests\/sec: *//p' "$login_out") req/s," \
            "$(sed -n 's/^bench-login: //p' "$login_out" | head -1)"
        echo "bench: round $round S6 /healthz: alone $(sed -n 's/^bench-healthz: //p' \
            "$work/healthz-S6-alone-$round.log"); storm $(sed -n 's/^bench-healthz: //p' \
            "$work/healthz-S6-$round.log")"
    done
    kill -0 "$storm_pid" 2>/dev/null || { echo "bench: the S6 portal-auth is gone" >&2; exit 1; }
    storm_stderr=$(tail -n +"$((storm_err_lines + 1))" "$work/storm.err" | head -5 | tr '\n' ' ')
    stop_pid "$storm_pid"
    storm_pid=""
fi

# --- 9. idle connections ------------------------------------------------------------------------
idle_stderr=""
if want idle; then
    # A fresh server, so that no earlier load's buffers are in the baseline. --idle-timeout 600:
    # the default 60 s could close the first connections before the last ones are open on a
    # loaded machine.
    start_server idle --threads "$threads" --directory "$directory" \
        --max-connections $((idle_count + 1000)) --idle-timeout 600
    echo "bench: idle: portal-auth pid $idle_pid on port $idle_port (--threads $threads" \
        "--max-connections $((idle_count + 1000)) --idle-timeout 600); $idle_count connections"
    idle_rc=0
    python3 scripts/bench/idle_conns.py --port "$idle_port" --cafile "$cert" --pid "$idle_pid" \
        --count "$idle_count" --label portal-auth >>"$work/idle.txt" 2>&1 || idle_rc=$?
    idle_stderr=$(head -5 "$work/idle.err" | tr '\n' ' ')
    stop_pid "$idle_pid"
    idle_pid=""
    if [ -n "$nginx_pid" ]; then
        # nginx's connections live in its worker(s); the master holds none.
        worker_args=()
        for w in $nginx_workers; do worker_args+=(--pid "$w"); done
        python3 scripts/bench/idle_conns.py --port "$nginx_port" --cafile "$cert" \
            "${worker_args[@]}" --count "$idle_count" --label nginx >>"$work/idle.txt" 2>&1 ||
            idle_rc=$?
    fi
    sed 's/^/bench: /' "$work/idle.txt"
    [ "$idle_rc" -eq 0 ] || echo "bench: idle connections: a client reported failures (above)" >&2
fi
stop_nginx
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 10. micro-suite and memory ------------------------------------------------------------------
if want micro; then
    echo "bench: micro-suite (--benchmark_min_time=$micro_min_time)"
    "$micro" --benchmark_min_time="$micro_min_time" --benchmark_out="$work/micro.json" \
        --benchmark_out_format=json
    echo "bench: memory probe"
    "$memory_probe" 1000000 | tee "$work/memory.txt"
fi

# --- 11. report ----------------------------------------------------------------------------------
META_DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC') \
META_NPROC=$(nproc) \
META_CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1) \
META_MEM=$(awk '/^MemTotal:/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo) \
META_KERNEL=$(uname -r) \
META_WRK=$(wrk -v 2>&1 | head -1 | sed 's/ *Copyright.*//') \
META_NGINX=$(nginx -v 2>&1 | sed 's/^nginx version: //') \
META_OPENSSL=$(openssl version) \
META_COMPILER=$(c++ --version | head -1) \
META_BENCHMARK=$(dpkg-query -W -f='${Version}' libbenchmark-dev 2>/dev/null || echo '?') \
META_MODE="$mode (wrk -d${duration}s)" META_DURATION=$duration META_RUNS=$runs \
META_CONNECTIONS=$connections META_THREADS=$threads META_TARGETS=$targets \
META_HEALTH_BYTES=${#health_body} META_S2_BYTES=$s2_bytes \
META_LOAD_BEFORE=$load_before META_LOAD_AFTER=$load_after \
META_MICRO_MIN_TIME=$micro_min_time META_SERVER_STDERR=$server_stderr \
META_PARTS=$parts META_STORM_LN=$storm_ln META_STORM_ACCOUNTS=$storm_accounts \
META_STORM_LOGIN_CONNECTIONS=$storm_login_connections META_STORM_THREADS=$storm_threads \
META_STORM_FLAGS="${storm_flags[*]}" META_STORM_STDERR=$storm_stderr \
META_IDLE_COUNT=$idle_count META_IDLE_STDERR=$idle_stderr \
META_RES_PA13=${resumed[portal-auth tls1_3]} META_RES_PA12=${resumed[portal-auth tls1_2]} \
META_RES_NG13=${resumed[nginx tls1_3]} META_RES_NG12=${resumed[nginx tls1_2]} \
    python3 - "$work/meta.json" <<'PY'
import json, os, sys
e = os.environ
meta = {
    "date": e["META_DATE"], "nproc": e["META_NPROC"],
    "cpu_model": e["META_CPU"].strip() or "unknown CPU", "mem": e["META_MEM"],
    "kernel": e["META_KERNEL"], "wrk_version": e["META_WRK"].strip(),
    "nginx_version": e["META_NGINX"].strip(), "openssl_version": e["META_OPENSSL"].strip(),
    "compiler": e["META_COMPILER"].strip(), "mode": e["META_MODE"],
    "benchmark_version": e["META_BENCHMARK"],
    "duration": e["META_DURATION"], "runs": int(e["META_RUNS"]),
    "connections": int(e["META_CONNECTIONS"]), "threads": int(e["META_THREADS"]),
    "targets": e["META_TARGETS"], "health_body_bytes": int(e["META_HEALTH_BYTES"]),
    "s2_body_bytes": int(e["META_S2_BYTES"]) if e["META_S2_BYTES"] else None,
    "load_before": e["META_LOAD_BEFORE"], "load_after": e["META_LOAD_AFTER"],
    "micro_min_time": e["META_MICRO_MIN_TIME"], "server_stderr": e["META_SERVER_STDERR"].strip(),
    "parts": e["META_PARTS"].split(","),
    "storm": {"ln": int(e["META_STORM_LN"]), "accounts": int(e["META_STORM_ACCOUNTS"]),
              "login_connections": int(e["META_STORM_LOGIN_CONNECTIONS"]),
              "threads": e["META_STORM_THREADS"], "flags": e["META_STORM_FLAGS"],
              "stderr": e["META_STORM_STDERR"].strip()},
    "idle": {"count": int(e["META_IDLE_COUNT"]), "stderr": e["META_IDLE_STDERR"].strip()},
    "resumption": {
        "portal-auth TLS 1.3": e["META_RES_PA13"], "portal-auth TLS 1.2": e["META_RES_PA12"],
        "nginx TLS 1.3": e["META_RES_NG13"], "nginx TLS 1.2": e["META_RES_NG12"],
    } if e["META_RES_PA13"] else {},
}
with open(sys.argv[1], "w") as f:
    json.dump(meta, f, indent=1)
PY
mkdir -p bench/results
report_name=latest.md
[ -n "$only" ] && report_name=only.md    # a partial run keeps the last full report
report_rc=0
echo
python3 scripts/bench/report.py "$work" "$work/$report_name" || report_rc=$?
cp "$work/$report_name" "bench/results/$report_name"
echo
if [ -f "$work/memory.txt" ]; then
    memory_line=$(sed -n 's/.*growth_kib=\([0-9]*\).*/\1/p' "$work/memory.txt")
    if [ -n "$memory_line" ]; then
        awk -v k="$memory_line" 'BEGIN { printf "1,000,000 sessions: %.0f MiB RSS\n", k / 1024 }'
    fi
fi
echo "bench: report in bench/results/$report_name"
exit "$report_rc"
