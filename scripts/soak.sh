#!/usr/bin/env bash
# Soak test (manual, not run in CI): portal-auth under a steady mixed load for MINUTES minutes.
#   - wrk (scripts/soak/mixed.lua): GET /healthz, session info and the profile listing with one
#     owner's bearer, 32 keep-alive connections, as fast as it can;
#   - session churn (Python, stdlib only): ~30 logins/s of random customers, session info,
#     coworker impersonation + exchange by owners and admins (those sessions end after 15 s and
#     are swept), occasional operator impersonation and audit reads, logouts; at most 500
#     sessions are ever left logged in, so the live session count is bounded;
#   - a warm-up of 11,000 failed logins in the first seconds: the server keeps its newest 10,000
#     audit events in memory, and that ring must be full before the baseline, or its bounded
#     growth (~3 MiB) would read as a leak;
#   - the server's RSS sampled every 10 s. Baseline: the first sample at or after 60 s.
# FAIL (exit 1) if a later sample exceeds baseline x 1.10, if wrk saw a non-2xx answer or a socket
# error, if the churn saw anything unexpected, or if the server died or did not stop cleanly.
# The RSS samples and the summary are copied to bench/results/soak-latest.{csv,md}.
#
# Usage: scripts/soak.sh [MINUTES]     default 10; fractions allowed (1.5); 1 <= MINUTES <= 55
#   (the wrk bearer is a session with --session-ttl 3600, so runs stay well under an hour)
# Environment: SOAK_CHURN_RATE (logins/s, default 30), SOAK_CHURN_WORKERS (default 4).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() {
    echo "usage: scripts/soak.sh [MINUTES]   (default 10; a number from 1 to 55, e.g. 1.5)" >&2
    exit 2
}
[ $# -le 1 ] || usage
minutes=${1:-10}
[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || usage
duration=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 + 0.5 }')
if [ "$duration" -lt 60 ] || [ "$duration" -gt 3300 ]; then
    usage
fi
churn_rate=${SOAK_CHURN_RATE:-30}
churn_workers=${SOAK_CHURN_WORKERS:-4}
sample_every=10
baseline_at=60
growth_limit=1.10

# --- processes and clean-up --------------------------------------------------------------------
work=""
server_pid=""
wrk_pid=""
churn_pid=""
results_saved=0

stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_pid "$wrk_pid"
    stop_pid "$churn_pid"
    stop_pid "$server_pid"
    if [ -n "$work" ] && [ -d "$work" ]; then
        if [ "$results_saved" -eq 0 ] && [ -s "$work/rss.csv" ]; then
            mkdir -p "$root/bench/results"
            cp "$work/rss.csv" "$root/bench/results/soak-latest.csv"
            printf '# portal-auth soak: INCOMPLETE\n\nThe run was interrupted or failed before its summary (exit %s); the CSV holds the samples taken.\n' \
                "$status" >"$root/bench/results/soak-latest.md"
        fi
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. packages and build -----------------------------------------------------------------------
scripts/install-deps.sh wrk
scripts/build.sh Release
binary=$root/build/app/portal-auth

# --- 2. work dir, certificate, directory ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/portal-auth-soak.XXXXXX")
cert=$work/server.pem
key=$work/server.key
directory=$work/directory.json
(
    umask 077
    openssl ecparam -name prime256v1 -genkey -noout -out "$key"
)
openssl req -new -x509 -key "$key" -out "$cert" -days 2 -sha256 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null

cat >"$work/gen_directory.py" <<'PY'
"""Writes the soak directory: 50 teams, 1,000 customers, 1,200 profiles; prints the e-mail and
password of the owner of team 1 (the wrk bearer)."""
import base64, hashlib, json, os, random, sys

TEAMS, CUSTOMERS, SECOND_PROFILES = 50, 1000, 200
ADMINS_PER_TEAM = 2


def b64(raw):
    return base64.b64encode(raw).decode().rstrip("=")


def scrypt_hash(password):
    salt = os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 4, r=8, p=1, dklen=32)
    return "$scrypt$ln=4,r=8,p=1$" + b64(salt) + "$" + b64(key)


rng = random.Random(20240611)
teams = [{"id": t, "name": f"Soak Team {t}"} for t in range(1, TEAMS + 1)]
customers, profiles = [], []
operator_index = CUSTOMERS - 1
for i in range(CUSTOMERS):
    cid = 1001 + i
    team, position = i % TEAMS + 1, i // TEAMS
    role = "owner" if position == 0 else "admin" if position <= ADMINS_PER_TEAM else "member"
    customers.append({"id": cid, "email": f"c{cid}@soak.test", "name": f"Soak Customer {cid}",
                      "passwordHash": scrypt_hash(f"pw-{cid}"),
                      "operator": i == operator_index})
    # Primary profiles have the lower ids, so a login starts on the customer's home team.
    profiles.append({"id": 10001 + i, "customerId": cid, "teamId": team, "role": role})
for n, i in enumerate(sorted(rng.sample(range(CUSTOMERS - 1), SECOND_PROFILES))):
    home = i % TEAMS + 1
    other = rng.choice([t for t in range(1, TEAMS + 1) if t != home])
    profiles.append({"id": 20001 + n, "customerId": 1001 + i, "teamId": other,
                     "role": "admin" if rng.random() < 0.2 else "member"})

assert len(customers) == CUSTOMERS and len(profiles) == CUSTOMERS + SECOND_PROFILES
assert len({c["email"] for c in customers}) == CUSTOMERS
assert len({(p["customerId"], p["teamId"]) for p in profiles}) == len(profiles)
assert sum(p["role"] == "owner" for p in profiles) == TEAMS
with open(sys.argv[1], "w") as f:
    json.dump({"customers": customers, "teams": teams, "profiles": profiles}, f, indent=1)
owner = customers[0]
print(owner["email"], f"pw-{owner['id']}")
PY

cat >"$work/churn.py" <<'PY'
"""Session churn against portal-auth for a fixed time; counts everything unexpected.
usage: churn.py PORT CA_FILE DIRECTORY_JSON SECONDS RATE WORKERS RESULT_JSON"""
import collections, http.client, json, random, ssl, sys, threading, time

port, ca, dir_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seconds, rate, workers = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
result_path = sys.argv[7]
KEEP_LOGGED_IN = 500          # sessions never logged out are capped: no growth by design
IMPERSONATED_TTL = 15.0       # --impersonation-session-ttl
LOGOUT_NOW = 0.5              # share of plain sessions logged out right away
# The server keeps its newest 10,000 audit events in memory: growth by design until that ring is
# full, which the regular churn alone would take ~2.5 minutes to reach, past the 60 s RSS
# baseline. Failed logins (one audit line each, no session) fill it during the warm-up.
WARMUP_FAILED_LOGINS, WARMUP_THREADS, WARMUP_SECONDS = 11000, 2, 50.0

with open(dir_path) as f:
    directory = json.load(f)
customers = {c["id"]: c for c in directory["customers"]}
profiles = {p["id"]: p for p in directory["profiles"]}
by_customer = collections.defaultdict(list)
by_team = collections.defaultdict(list)
for p in directory["profiles"]:
    by_customer[p["customerId"]].append(p)
    by_team[p["teamId"]].append(p)
primary = {cid: min(ps, key=lambda p: p["id"])["id"] for cid, ps in by_customer.items()}
operators = [c["id"] for c in directory["customers"] if c["operator"]]
plain_customers = [c["id"] for c in directory["customers"] if not c["operator"]]
all_customers = list(customers)


def may_impersonate(actor, target):
    if target["teamId"] != actor["teamId"] or target["customerId"] == actor["customerId"]:
        return False
    if customers[target["customerId"]]["operator"]:
        return False
    if actor["role"] == "owner":
        return target["role"] != "owner"
    return actor["role"] == "admin" and target["role"] == "member"


targets = {pid: [t["id"] for t in by_team[p["teamId"]] if may_impersonate(p, t)]
           for pid, p in profiles.items()}

tls = ssl.create_default_context(cafile=ca)
lock = threading.Lock()
counts = collections.Counter()
error_samples = []
kept = collections.deque()            # plain sessions left logged in (bounded)
expiring = collections.deque()        # (due, impersonated access token): must be refused by then
deadline = time.monotonic() + seconds


class Unexpected(Exception):
    pass


def inc(name, n=1):
    with lock:
        counts[name] += n


def error(what):
    with lock:
        counts["errors"] += 1
        if len(error_samples) < 20:
            error_samples.append(what)
            print("churn: unexpected: " + what, file=sys.stderr, flush=True)


class Client:
    def __init__(self):
        self.conn = None

    def call(self, method, path, body=None, token=None, expect=200):
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = "Bearer " + token
        if self.conn is None:
            self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=15)
            inc("connections")
        try:
            self.conn.request(method, path, body=None if body is None else json.dumps(body),
                              headers=headers)
            r = self.conn.getresponse()
            raw = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
        except (OSError, http.client.HTTPException) as e:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            raise Unexpected(f"{method} {path}: {type(e).__name__}: {e}")
        inc("requests")
        if r.status != expect:
            raise Unexpected(f"{method} {path}: status {r.status}, expected {expect}: "
                             f"{raw[:200]!r}")
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise Unexpected(f"{method} {path}: body is not JSON: {raw[:200]!r}")


def check(ok, what):
    if not ok:
        raise Unexpected(what)


def login(client, cid):
    s = client.call("POST", "/api/public/auth/login",
                    {"email": customers[cid]["email"], "password": f"pw-{cid}"})
    check(s["customerId"] == cid and s["profileId"] == primary[cid] and s["impersonator"] is None
          and s["tokenType"] == "Bearer", f"login of {cid}: unexpected session {s}")
    inc("logins")
    return s


def logout(client, token, verify):
    client.call("POST", "/api/public/auth/logout", token=token, expect=204)
    inc("logouts")
    if verify:
        client.call("GET", "/api/public/auth/session", token=token, expect=401)
        inc("logout_checks")


def exchange(client, token, target_profile, actor_customer, actor_profile, as_operator):
    s = client.call("POST", "/api/public/auth/login/" + token)
    imp = s["impersonator"]
    check(s["profileId"] == target_profile
          and s["customerId"] == profiles[target_profile]["customerId"]
          and imp is not None and imp["customerId"] == actor_customer
          and imp["profileId"] == actor_profile and imp["operator"] == as_operator,
          f"exchange for {target_profile}: unexpected session {s}")
    inc("exchanges")
    info = client.call("GET", "/api/public/auth/session", token=s["accessToken"])
    check(info["impersonator"] is not None and info["profileId"] == target_profile,
          f"impersonated session info {info}")
    with lock:
        expiring.append((time.monotonic() + IMPERSONATED_TTL + 1.0, s["accessToken"]))


def plain_cycle(client, rng):
    cid = rng.choice(plain_customers)
    s = login(client, cid)
    token = s["accessToken"]
    info = client.call("GET", "/api/public/auth/session", token=token)
    check(info["customerId"] == cid and info["profileId"] == s["profileId"],
          f"session info of {cid}: {info}")
    actor = profiles[s["profileId"]]
    if targets[actor["id"]]:
        target = rng.choice(targets[actor["id"]])
        t = client.call("GET", f"/api/public/coworkers/{target}/impersonate", token=token)
        inc("impersonations")
        exchange(client, t["token"], target, cid, actor["id"], False)
        if rng.random() < 0.2:  # single use
            client.call("POST", "/api/public/auth/login/" + t["token"], expect=401)
            inc("reuse_checks")
    if rng.random() < LOGOUT_NOW:
        logout(client, token, verify=rng.random() < 0.2)
        return
    with lock:
        kept.append(token)
        excess = [kept.popleft() for _ in range(len(kept) - KEEP_LOGGED_IN)]
    for old in excess:
        logout(client, old, verify=False)


def operator_cycle(client, rng):
    op = rng.choice(operators)
    s = login(client, op)
    token = s["accessToken"]
    events = client.call("GET", "/api/sys/audit?limit=50", token=token)["Events"]
    check(0 < len(events) <= 50, f"audit listing of {len(events)} events")
    target = rng.choice(plain_customers)
    t = client.call("GET", f"/api/sys/users/impersonate?customerId={target}", token=token)
    inc("operator_impersonations")
    exchange(client, t["token"], primary[target], op, None, True)
    logout(client, token, verify=False)


def expiry_checks(client):
    now = time.monotonic()
    due = []
    with lock:
        while expiring and expiring[0][0] <= now:
            due.append(expiring.popleft()[1])
    for token in due:
        client.call("GET", "/api/public/auth/session", token=token, expect=401)
        inc("expiry_checks")


def worker(index):
    rng = random.Random(index * 7919 + int(time.time()))
    client = Client()
    interval = workers / rate
    next_start = time.monotonic() + index * interval / workers
    cycle = 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if next_start > now:
            time.sleep(min(next_start - now, deadline - now))
            continue
        next_start = max(next_start + interval, now - 1.0)  # never burst to catch up
        cycle += 1
        try:
            if cycle % 25 == 0 and operators:
                operator_cycle(client, rng)
            else:
                plain_cycle(client, rng)
            expiry_checks(client)
        except Unexpected as e:
            error(str(e))
        except Exception as e:  # a malformed answer (missing field, wrong type)
            error(f"{type(e).__name__}: {e}")
    if client.conn is not None:
        client.conn.close()


def warmup(index):
    rng = random.Random(index + 104729)
    client = Client()
    stop = min(deadline, started + WARMUP_SECONDS)
    for _ in range(WARMUP_FAILED_LOGINS // WARMUP_THREADS):
        if time.monotonic() >= stop:
            break
        cid = rng.choice(plain_customers)
        try:
            client.call("POST", "/api/public/auth/login",
                        {"email": customers[cid]["email"], "password": "not-the-password"},
                        expect=401)
            inc("warmup_failed_logins")
        except Unexpected as e:
            error(str(e))
    if client.conn is not None:
        client.conn.close()
    with lock:
        counts["warmup_seconds"] = max(counts["warmup_seconds"],
                                       round(time.monotonic() - started, 1))


started = time.monotonic()
warmers = [threading.Thread(target=warmup, args=(i,), daemon=True) for i in range(WARMUP_THREADS)]
for t in warmers:
    t.start()
threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
for t in threads:
    t.start()
last_report = started
warmup_reported = False
while any(t.is_alive() for t in threads):
    time.sleep(1)
    if not warmup_reported and not any(t.is_alive() for t in warmers):
        warmup_reported = True
        print(f"churn: warm-up: {counts['warmup_failed_logins']} failed logins in "
              f"{counts['warmup_seconds']} s (fills the server's in-memory audit ring)", flush=True)
    if time.monotonic() - last_report >= 30:
        last_report = time.monotonic()
        el = last_report - started
        print(f"churn: t={el:.0f}s logins={counts['logins']} ({counts['logins'] / el:.1f}/s) "
              f"impersonations={counts['impersonations'] + counts['operator_impersonations']} "
              f"logouts={counts['logouts']} errors={counts['errors']}", flush=True)
for t in threads:
    t.join()
elapsed = time.monotonic() - started
result = dict(counts)
result.update(seconds=round(elapsed, 1), logins_per_s=round(counts["logins"] / elapsed, 1),
              left_logged_in=len(kept), error_samples=error_samples)
for k in ("warmup_failed_logins", "warmup_seconds", "logins", "logouts", "impersonations", "operator_impersonations", "exchanges",
          "expiry_checks", "logout_checks", "reuse_checks", "requests", "connections", "errors"):
    result.setdefault(k, 0)
with open(result_path, "w") as f:
    json.dump(result, f)
print("churn: done: " + " ".join(f"{k}={result[k]}" for k in (
    "seconds", "warmup_failed_logins", "logins", "logins_per_s", "impersonations", "operator_impersonations",
    "exchanges", "logouts", "expiry_checks", "requests", "errors")), flush=True)
sys.exit(1 if counts["errors"] else 0)
PY

cat >"$work/summary.py" <<'PY'
"""Evaluates a soak run and writes the Markdown summary. Exit 0 = PASS, 1 = FAIL.
usage: summary.py WORK_DIR SUMMARY_MD key=value..."""
import csv, json, re, sys, time

work, out_md = sys.argv[1], sys.argv[2]
info = dict(a.split("=", 1) for a in sys.argv[3:])
baseline_at, limit = float(info["baseline_at"]), float(info["growth_limit"])
failures = []

with open(f"{work}/rss.csv") as f:
    samples = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
mib = lambda kib: kib / 1024.0
base = next((s for s in samples if s["t_s"] >= baseline_at), None)
later = [s for s in samples if base is not None and s["t_s"] > base["t_s"]]
if base is None:
    failures.append(f"no RSS sample at or after {baseline_at:.0f} s")
else:
    over = [s for s in later if s["rss_kib"] > base["rss_kib"] * limit]
    if over:
        worst = max(over, key=lambda s: s["rss_kib"])
        failures.append(f"RSS grew past baseline x {limit:.2f}: {mib(worst['rss_kib']):.1f} MiB "
                        f"at {worst['t_s']:.0f} s vs baseline {mib(base['rss_kib']):.1f} MiB")
if not later:
    failures.append("no RSS sample after the baseline")

wrk_text = open(f"{work}/wrk.out").read()
m = re.search(r"soak-wrk: requests=(\d+) non2xx=(\d+) connect=(\d+) read=(\d+) write=(\d+) "
              r"timeout=(\d+) status=(\d+) duration_us=(\d+) rps=([\d.]+)", wrk_text)
lat = re.search(r"soak-wrk: latency_ms p50=([\d.]+) p99=([\d.]+) max=([\d.]+)", wrk_text)
if not m:
    failures.append("wrk did not report (see its output above)")
    wrk = None
else:
    keys = ["requests", "non2xx", "connect", "read", "write", "timeout", "status", "duration_us"]
    wrk = {k: int(v) for k, v in zip(keys, m.groups()[:8])}
    wrk["rps"] = float(m.group(9))
    if wrk["non2xx"] or wrk["status"]:
        failures.append(f"wrk: {wrk['non2xx']} non-2xx responses")
    sock = wrk["connect"] + wrk["read"] + wrk["write"] + wrk["timeout"]
    if sock:
        failures.append(f"wrk: {sock} socket errors (connect {wrk['connect']}, read "
                        f"{wrk['read']}, write {wrk['write']}, timeout {wrk['timeout']})")
    if wrk["requests"] == 0:
        failures.append("wrk: no requests completed")
if info["wrk_rc"] != "0":
    failures.append(f"wrk exited with {info['wrk_rc']}")

try:
    churn = json.load(open(f"{work}/churn.json"))
except (OSError, ValueError):
    churn = None
    failures.append("the churn did not report")
if churn is not None:
    if churn["errors"]:
        failures.append(f"churn: {churn['errors']} unexpected results")
    if churn["logins"] == 0:
        failures.append("churn: no logins")
if info["churn_rc"] != "0" and not (churn and churn["errors"]):
    failures.append(f"the churn exited with {info['churn_rc']}")
if info["server_alive"] != "1":
    failures.append("the server died during the run")
if info["server_rc"] != "0":
    failures.append(f"the server exited with {info['server_rc']} after SIGTERM (expected 0)")
if info["load_finished"] != "1":
    failures.append("the load did not finish in time and was killed")

verdict = "FAIL" if failures else "PASS"
L = []
L.append(f"# portal-auth soak: {verdict}")
L.append("")
L.append(f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
L.append(f"- duration: {info['minutes']} min ({info['duration']} s of load); server "
         f"`--threads 2`, {info['directory']}")
if wrk:
    L.append(f"- wrk (-t1 -c32, mixed.lua): {wrk['requests']} requests, {wrk['rps']:.1f} req/s, "
             f"non-2xx {wrk['non2xx']}, socket errors connect {wrk['connect']} read "
             f"{wrk['read']} write {wrk['write']} timeout {wrk['timeout']}" +
             (f"; latency p50 {lat.group(1)} ms, p99 {lat.group(2)} ms, max {lat.group(3)} ms"
              if lat else ""))
if churn:
    L.append(f"- warm-up: {churn['warmup_failed_logins']} failed logins in "
             f"{churn['warmup_seconds']} s, to fill the server's 10,000-event in-memory audit "
             f"ring before the baseline")
    L.append(f"- churn ({info['churn_workers']} keep-alive clients): {churn['logins']} logins "
             f"({churn['logins_per_s']}/s), {churn['impersonations']} coworker + "
             f"{churn['operator_impersonations']} operator impersonations, "
             f"{churn['exchanges']} exchanges, {churn['logouts']} logouts, "
             f"{churn['expiry_checks']} expired-session checks, {churn['logout_checks']} "
             f"post-logout checks, {churn['reuse_checks']} token-reuse checks, "
             f"{churn['requests']} requests, {churn['connections']} connections, "
             f"{churn['left_logged_in']} sessions left logged in, errors {churn['errors']}")
    for e in churn.get("error_samples", [])[:5]:
        L.append(f"  - {e}")
if base is not None:
    rss_max = max(s["rss_kib"] for s in (later or [base]))
    last = samples[-1]
    L.append(f"- RSS: baseline {mib(base['rss_kib']):.1f} MiB (t={base['t_s']:.0f} s), max after "
             f"baseline {mib(rss_max):.1f} MiB ({(rss_max / base['rss_kib'] - 1) * 100:+.1f}%), "
             f"last {mib(last['rss_kib']):.1f} MiB (t={last['t_s']:.0f} s), limit "
             f"{mib(base['rss_kib'] * limit):.1f} MiB; first sample "
             f"{mib(samples[0]['rss_kib']):.1f} MiB, peak (VmHWM) "
             f"{mib(max(s['hwm_kib'] for s in samples)):.1f} MiB; fds "
             f"{samples[0]['fds']:.0f} -> {last['fds']:.0f}")
L.append(f"- server stderr: {info['server_log_lines']} line(s) besides the signing-key warning")
L.append(f"- result: **{verdict}**")
for f_ in failures:
    L.append(f"  - {f_}")
table = ["", "| t (s) | RSS (MiB) | VmHWM (MiB) | threads | fds |", "|---:|---:|---:|---:|---:|"]
for s in samples:
    table.append(f"| {s['t_s']:.0f} | {mib(s['rss_kib']):.1f} | {mib(s['hwm_kib']):.1f} | "
                 f"{s['threads']:.0f} | {s['fds']:.0f} |")
with open(out_md, "w") as f:
    f.write("\n".join(L + table) + "\n")
print("\n".join(L))
sys.exit(1 if failures else 0)
PY

owner=$(python3 "$work/gen_directory.py" "$directory")
read -r owner_email owner_password <<<"$owner"
echo "soak: directory: 50 teams, 1000 customers, 1200 profiles ($(wc -c <"$directory") bytes)"

# --- 3. server -----------------------------------------------------------------------------------
"$binary" serve --listen 127.0.0.1:0 --cert "$cert" --key "$key" --directory "$directory" \
    --threads 2 --session-ttl 3600 --impersonation-token-ttl 30 --impersonation-session-ttl 15 \
    --impersonation-issue-limit 0 --login-max-failures-per-email 0 \
    --login-max-failures-per-address 0 --audit-log "$work/audit.jsonl" \
    >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's|^listening on https://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$work/server.out")
    [ -n "$port" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "soak: the server refused to start:" >&2
        cat "$work/server.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "soak: the server did not print its port within 10 s" >&2
    cat "$work/server.err" >&2
    exit 1
fi
url=https://127.0.0.1:$port
echo "soak: server pid $server_pid on $url"

# --- 4. bearer for wrk ---------------------------------------------------------------------------
login_json=$(curl -sS --cacert "$cert" "$url/api/public/auth/login" \
    -H 'Content-Type: application/json' \
    -d "{\"email\":\"$owner_email\",\"password\":\"$owner_password\"}")
bearer=$(printf '%s' "$login_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])') || {
    echo "soak: login of $owner_email failed: $login_json" >&2
    exit 1
}
curl -sS --fail --cacert "$cert" -o /dev/null "$url/api/public/coworkers/profiles" \
    -H "Authorization: Bearer $bearer"
echo "soak: wrk bearer: $owner_email (owner of team 1)"

# --- 5. load: wrk and the churn, for the whole duration -----------------------------------------
echo "soak: $duration s of load: wrk -t1 -c32 + churn at ~$churn_rate logins/s; RSS every ${sample_every} s"
python3 -u "$work/churn.py" "$port" "$cert" "$directory" "$duration" "$churn_rate" \
    "$churn_workers" "$work/churn.json" &
churn_pid=$!
BEARER=$bearer wrk -t1 -c32 -d"${duration}s" --latency -s "$root/scripts/soak/mixed.lua" "$url" \
    >"$work/wrk.out" 2>&1 &
wrk_pid=$!

# --- 6. RSS samples while the load runs ----------------------------------------------------------
now_ms() { date +%s%3N; }
csv=$work/rss.csv
echo "t_s,rss_kib,hwm_kib,threads,fds" >"$csv"
server_alive=1
sample() {
    local t_ms=$(($(now_ms) - start_ms)) rss hwm threads fds
    if ! [ -r "/proc/$server_pid/status" ] || ! kill -0 "$server_pid" 2>/dev/null; then
        server_alive=0
        echo "soak: t=$((t_ms / 1000))s: the server is gone" >&2
        return 1
    fi
    read -r rss hwm threads < <(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 }
        /^Threads:/ { t = $2 } END { print r, h, t }' "/proc/$server_pid/status")
    fds=$( (find "/proc/$server_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null || true) | wc -l)
    local t_s
    t_s=$(awk -v ms="$t_ms" 'BEGIN { printf "%.1f", ms / 1000 }')
    echo "$t_s,$rss,$hwm,$threads,$fds" >>"$csv"
    awk -v t="$t_s" -v r="$rss" -v h="$hwm" -v th="$threads" -v f="$fds" 'BEGIN {
        printf "soak: t=%6.1fs  RSS %7.1f MiB  (VmHWM %.1f MiB, %d threads, %d fds)\n",
            t, r / 1024, h / 1024, th, f }'
}
start_ms=$(now_ms)
next_ms=$start_ms
give_up_ms=$((start_ms + (duration + 120) * 1000))
load_finished=1
while :; do
    if [ "$(now_ms)" -ge "$next_ms" ]; then
        sample || break
        next_ms=$((next_ms + sample_every * 1000))
    fi
    if ! kill -0 "$wrk_pid" 2>/dev/null && ! kill -0 "$churn_pid" 2>/dev/null; then
        sample || true
        break
    fi
    if [ "$(now_ms)" -ge "$give_up_ms" ]; then
        echo "soak: the load is still running 120 s after its end; stopping it" >&2
        load_finished=0
        break
    fi
    sleep 0.5
done

# Both should have ended on their own; whatever still runs (a give-up, a dead server) is stopped.
wrk_rc=0
churn_rc=0
kill -0 "$wrk_pid" 2>/dev/null && kill -TERM "$wrk_pid" 2>/dev/null
wait "$wrk_pid" || wrk_rc=$?
kill -0 "$churn_pid" 2>/dev/null && kill -TERM "$churn_pid" 2>/dev/null
wait "$churn_pid" || churn_rc=$?
wrk_pid=""
churn_pid=""
echo "--- wrk output"
cat "$work/wrk.out"
echo "---"

# The server: still alive after the load, then a clean SIGTERM shutdown.
kill -0 "$server_pid" 2>/dev/null || server_alive=0
server_rc=0
if [ "$server_alive" -eq 1 ]; then
    kill -TERM "$server_pid"
    for _ in $(seq 150); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid"
fi
wait "$server_pid" || server_rc=$?
server_pid=""
server_log_lines=$(grep -vc 'warning: no --signing-key' "$work/server.err" || true)
if [ "$server_log_lines" -gt 0 ]; then
    echo "--- server stderr (first 20 lines)"
    grep -v 'warning: no --signing-key' "$work/server.err" | head -20
    echo "---"
fi

# --- summary -------------------------------------------------------------------------------------
mkdir -p "$root/bench/results"
verdict_rc=0
python3 "$work/summary.py" "$work" "$work/summary.md" \
    minutes="$minutes" duration="$duration" baseline_at="$baseline_at" \
    growth_limit="$growth_limit" wrk_rc="$wrk_rc" churn_rc="$churn_rc" \
    server_alive="$server_alive" server_rc="$server_rc" load_finished="$load_finished" \
    churn_workers="$churn_workers" server_log_lines="$server_log_lines" \
    directory="50 teams / 1000 customers / 1200 profiles" || verdict_rc=$?
cp "$csv" "$root/bench/results/soak-latest.csv"
cp "$work/summary.md" "$root/bench/results/soak-latest.md"
results_saved=1
echo "soak: samples and summary in bench/results/soak-latest.{csv,md}"
exit "$verdict_rc"
