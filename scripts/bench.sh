#!/usr/bin/env bash
# Benchmark (manual, not run in CI): portal-auth under wrk next to an nginx reference on the same
# machine, the Google Benchmark micro-suite (test/bench) and the memory of 1,000,000 sessions.
#
# HTTP scenarios (wrk -t1 -c64 -d10s --latency, scripts in scripts/bench/):
#   S0  GET /healthz                               portal-auth and nginx (`return 200`)
#   S1  GET /api/public/auth/session               with a bearer
#   S2  GET /api/public/coworkers/profiles         with a bearer
#   S3  GET /api/public/coworkers/{id}/impersonate an owner's bearer
#   S4  impersonate, then POST /api/public/auth/login/{token} with the token just received
#   S5  GET /healthz with Connection: close        new TLS connections, portal-auth and nginx
# Each scenario runs BENCH_RUNS times (default 3), in rounds over all scenarios, portal-auth and
# nginx alternating. Per row: req/s (median, min-max), p50, p99, errors, the ratio to nginx S0 and
# the server's CPU seconds per 1,000 requests. The table, the micro-suite's and the memory figure
# go to bench/results/latest.md (git-ignored) and to stdout.
#
# Usage: scripts/bench.sh [--quick]     --quick: wrk -d3s instead of -d10s
# Environment: BENCH_THREADS (portal-auth --threads, default 1), BENCH_RUNS (3 to 10, default 3)
# Everything listens on 127.0.0.1; both servers are started here, by hand, and stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() {
    echo "usage: scripts/bench.sh [--quick]   (env: BENCH_THREADS=1, BENCH_RUNS=3)" >&2
    exit 2
}
mode=full
duration=10
for arg in "$@"; do
    case $arg in
    --quick) mode=quick; duration=3 ;;
    -h | --help) usage ;;
    *) usage ;;
    esac
done
threads=${BENCH_THREADS:-1}
runs=${BENCH_RUNS:-3}
[[ $threads =~ ^[1-9][0-9]?$ ]] || { echo "bench: BENCH_THREADS must be 1-99" >&2; exit 2; }
[[ $runs =~ ^([3-9]|10)$ ]] || { echo "bench: BENCH_RUNS must be 3-10" >&2; exit 2; }
connections=64
micro_min_time=0.2

# --- processes and clean-up --------------------------------------------------------------------
work=""
server_pid=""
nginx_pid=""
wrk_pid=""

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
    stop_pid "$wrk_pid"
    stop_nginx
    stop_pid "$server_pid"
    [ -n "$work" ] && [ -d "$work" ] && rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. packages and builds ----------------------------------------------------------------------
scripts/install-deps.sh wrk nginx libbenchmark-dev
scripts/build.sh Release
binary=$root/build/app/portal-auth
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPORTAL_AUTH_BUILD_BENCHMARKS=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build build-bench -j2 --target portal_auth_micro portal_auth_session_memory
micro=$root/build-bench/test/bench/portal_auth_micro
memory_probe=$root/build-bench/test/bench/portal_auth_session_memory

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

# --- 3. portal-auth ------------------------------------------------------------------------------
"$binary" serve --listen 127.0.0.1:0 --threads "$threads" --cert "$cert" --key "$key" \
    --directory "$directory" --signing-key "$work/signing-keys.txt" \
    --audit-log "$work/audit.jsonl" --impersonation-issue-limit 0 \
    >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's|^listening on https://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$work/server.out")
    [ -n "$port" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "bench: portal-auth refused to start:" >&2
        cat "$work/server.err" >&2
        exit 1
    fi
    sleep 0.1
done
[ -n "$port" ] || { echo "bench: portal-auth printed no port within 10 s" >&2; exit 1; }
url=https://127.0.0.1:$port
server_err_lines=$(wc -l <"$work/server.err")
echo "bench: portal-auth pid $server_pid on $url (--threads $threads)"

# --- 4. bearer and coworker targets, through the API --------------------------------------------
login_json=$(curl -sS --max-time 10 --cacert "$cert" "$url/api/public/auth/login" \
    -H 'Content-Type: application/json' \
    -d "{\"email\":\"$owner_email\",\"password\":\"$owner_password\"}")
bearer=$(printf '%s' "$login_json" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])') || {
    echo "bench: login of $owner_email failed: $login_json" >&2
    exit 1
}
listing=$(curl -sS --fail --max-time 10 --cacert "$cert" "$url/api/public/coworkers/profiles" \
    -H "Authorization: Bearer $bearer")
targets=$(printf '%s' "$listing" | python3 -c '
import json, sys
rows = json.load(sys.stdin)["Profiles"]
print(",".join(str(r["Id"]) for r in rows if r["CanImpersonate"])[:200].rstrip(","))')
[ -n "$targets" ] || { echo "bench: $owner_email may impersonate nobody" >&2; exit 1; }
first_target=${targets%%,*}
code=$(curl -sS --max-time 10 --cacert "$cert" -o /dev/null -w '%{http_code}' \
    "$url/api/public/coworkers/$first_target/impersonate" -H "Authorization: Bearer $bearer")
[ "$code" = 200 ] || { echo "bench: impersonation check answered $code" >&2; exit 1; }
echo "bench: bearer: $owner_email (owner of team 1); coworker targets: $targets"

# --- 5. nginx, by hand ---------------------------------------------------------------------------
health_body=$(curl -sS --fail --max-time 10 --cacert "$cert" "$url/healthz")
mkdir -p "$work/nginx-tmp"
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
declare -A resumed
for v in -tls1_3 -tls1_2; do
    resumed["portal-auth ${v#-}"]=$(resumption "$port" "$v")
    resumed["nginx ${v#-}"]=$(resumption "$nginx_port" "$v")
done
for k in "portal-auth tls1_3" "portal-auth tls1_2" "nginx tls1_3" "nginx tls1_2"; do
    echo "bench: resumption $k: ${resumed[$k]}"
done

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
# when ROUND > 0 (round 0 is a warm-up).
run_wrk() {
    local scenario=$1 server=$2 round=$3 secs=$4 lua=$5
    shift 5
    local target pids before after out rc=0
    if [ "$server" = nginx ]; then
        target=$nginx_url
        # shellcheck disable=SC2206
        pids=("$nginx_pid" $nginx_workers)
    else
        target=$url
        pids=("$server_pid")
    fi
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
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$server" "$round" "$out" \
            $((after - before)) "$clk_tck" >>"$work/runs.tsv"
        local rps
        rps=$(sed -n 's/^Requests\/sec: *//p' "$out")
        printf 'bench: round %s %-3s %-12s %10s req/s  %s\n' "$round" "$scenario" "$server" \
            "${rps:-?}" "$(grep -E 'Non-2xx|Socket errors|bench-handoff: issued' "$out" | tr -s ' ' |
                tr '\n' ' ')"
    fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/runs.tsv"
echo "bench: warm-up (1 s each), then $runs rounds of S0-S5, wrk -t1 -c$connections -d${duration}s"
run_wrk S0 portal-auth 0 1 get.lua
run_wrk S0 nginx 0 1 get.lua
for round in $(seq "$runs"); do
    if [ $((round % 2)) -eq 1 ]; then order=(portal-auth nginx); else order=(nginx portal-auth); fi
    for s in "${order[@]}"; do
        run_wrk S0 "$s" "$round" "$duration" get.lua BENCH_PATH=/healthz
    done
    run_wrk S1 portal-auth "$round" "$duration" get.lua \
        BENCH_PATH=/api/public/auth/session BENCH_BEARER="$bearer"
    run_wrk S2 portal-auth "$round" "$duration" get.lua \
        BENCH_PATH=/api/public/coworkers/profiles BENCH_BEARER="$bearer"
    run_wrk S3 portal-auth "$round" "$duration" get.lua \
        BENCH_PATH="/api/public/coworkers/$first_target/impersonate" BENCH_BEARER="$bearer"
    run_wrk S4 portal-auth "$round" "$duration" handoff.lua \
        BENCH_BEARER="$bearer" BENCH_TARGETS="$targets"
    for s in "${order[@]}"; do
        run_wrk S5 "$s" "$round" "$duration" get.lua BENCH_PATH=/healthz BENCH_CLOSE=1
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Anything portal-auth wrote to stderr during the runs (it writes nothing in normal operation).
server_stderr=$(tail -n +"$((server_err_lines + 1))" "$work/server.err" | head -5 | tr '\n' ' ')
stop_nginx
stop_pid "$server_pid"
server_pid=""

# --- 8. micro-suite and memory -------------------------------------------------------------------
echo "bench: micro-suite (--benchmark_min_time=$micro_min_time)"
"$micro" --benchmark_min_time="$micro_min_time" --benchmark_out="$work/micro.json" \
    --benchmark_out_format=json
echo "bench: memory probe"
"$memory_probe" 1000000 | tee "$work/memory.txt"

# --- 9. report -----------------------------------------------------------------------------------
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
META_HEALTH_BYTES=${#health_body} META_LOAD_BEFORE=$load_before META_LOAD_AFTER=$load_after \
META_MICRO_MIN_TIME=$micro_min_time META_SERVER_STDERR=$server_stderr \
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
    "load_before": e["META_LOAD_BEFORE"], "load_after": e["META_LOAD_AFTER"],
    "micro_min_time": e["META_MICRO_MIN_TIME"], "server_stderr": e["META_SERVER_STDERR"].strip(),
    "resumption": {
        "portal-auth TLS 1.3": e["META_RES_PA13"], "portal-auth TLS 1.2": e["META_RES_PA12"],
        "nginx TLS 1.3": e["META_RES_NG13"], "nginx TLS 1.2": e["META_RES_NG12"],
    },
}
with open(sys.argv[1], "w") as f:
    json.dump(meta, f, indent=1)
PY
mkdir -p bench/results
report_rc=0
echo
python3 scripts/bench/report.py "$work" "$work/latest.md" || report_rc=$?
cp "$work/latest.md" bench/results/latest.md
echo
memory_line=$(sed -n 's/.*growth_kib=\([0-9]*\).*/\1/p' "$work/memory.txt")
if [ -n "$memory_line" ]; then
    awk -v k="$memory_line" 'BEGIN { printf "1,000,000 sessions: %.0f MiB RSS\n", k / 1024 }'
fi
echo "bench: report in bench/results/latest.md"
exit "$report_rc"
