#!/usr/bin/env bash
# End-to-end checks of the portal-auth command line: flag validation, the hash-password and
# gen-key helpers, and a real HTTPS server driven with curl.
# Usage: test/cli/cli_test.sh PATH/TO/portal-auth SOURCE_DIR
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 PATH/TO/portal-auth SOURCE_DIR" >&2
    exit 2
fi
BIN=$1
SRC=$2
DEMO_DIR="$SRC/app/demo-directory.json"
export LC_ALL=C

for tool in curl openssl python3 timeout; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "FAIL: required tool '$tool' is not installed" >&2
        exit 1
    fi
done
if [ ! -x "$BIN" ]; then
    echo "FAIL: $BIN is not an executable" >&2
    exit 1
fi
if [ ! -f "$DEMO_DIR" ]; then
    echo "FAIL: $DEMO_DIR not found" >&2
    exit 1
fi

# PORTAL_AUTH_* variables set options (and unknown ones draw a warning): the caller's must not
# reach the binary.
while IFS= read -r variable; do
    unset "$variable"
done < <(compgen -e | grep '^PORTAL_AUTH_')

TMP=$(mktemp -d "${TMPDIR:-/tmp}/portal-auth-cli.XXXXXX") || exit 1
SERVER_PIDS=()

cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PASSED=0
FAILED=0
FAILED_NAMES=()

pass() {
    PASSED=$((PASSED + 1))
    echo "PASS: $1"
}

# fail NAME DETAIL...: each DETAIL is printed on its own indented line.
fail() {
    local name=$1
    shift
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    echo "FAIL: $name"
    local line
    for line in "$@"; do
        printf '      %s\n' "$line"
    done
}

# Number of lines in a file, counting a final line without a newline.
line_count() {
    awk 'END { print NR }' "$1"
}

# Runs the binary with a bounded run time. Sets RC; output goes to $TMP/run.out and run.err.
run_bin() {
    timeout -k 2 15 "$BIN" "$@" </dev/null >"$TMP/run.out" 2>"$TMP/run.err"
    RC=$?
}

# expect_usage_error NAME SUBSTRING... -- ARGS...
# The command must exit 2, print nothing on stdout and exactly one line on stderr that
# contains every SUBSTRING.
expect_usage_error() {
    local name=$1
    shift
    local expected=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        expected+=("$1")
        shift
    done
    shift
    run_bin "$@"
    local err lines problems=() s
    err=$(cat "$TMP/run.err")
    lines=$(line_count "$TMP/run.err")
    [ "$RC" -eq 2 ] || problems+=("exit code: expected 2, got $RC")
    [ "$lines" -eq 1 ] || problems+=("stderr lines: expected 1, got $lines")
    for s in "${expected[@]}"; do
        [[ "$err" == *"$s"* ]] || problems+=("stderr: expected to contain '$s'")
    done
    if [ -s "$TMP/run.out" ]; then
        problems+=("stdout: expected nothing, got: $(head -c 300 "$TMP/run.out")")
    fi
    if [ ${#problems[@]} -eq 0 ]; then
        pass "$name"
    else
        fail "$name" "command: portal-auth $*" "${problems[@]}" "stderr was: $err"
    fi
}

# Waits up to 10 s for the listening line of a server started in the background.
# Sets PORT (empty on failure).
wait_for_listening() {
    local pid=$1 out=$2 i
    PORT=""
    for ((i = 0; i < 100; i++)); do
        if [ -s "$out" ] && grep -q '^listening on ' "$out"; then
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    local line
    line=$(head -n 1 "$out" 2>/dev/null)
    if [[ "$line" =~ ^listening\ on\ https://127\.0\.0\.1:([0-9]+)$ ]]; then
        PORT=${BASH_REMATCH[1]}
    fi
}

# Sends SIGTERM and waits up to 15 s. Sets STOP_RC (empty when the process did not exit).
stop_server() {
    local pid=$1 i
    STOP_RC=""
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return
    fi
    wait "$pid"
    STOP_RC=$?
}

# Reads a field from a JSON file: json_get FILE PATH where PATH is dot-separated keys.
# Strings are printed raw, everything else as JSON; prints nothing when absent or not JSON.
json_get() {
    python3 - "$1" "$2" <<'EOF' 2>/dev/null
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        value = json.load(f)
    for key in sys.argv[2].split("."):
        value = value[key]
except Exception:
    sys.exit(1)
print(value if isinstance(value, str) else json.dumps(value))
EOF
}

# HTTPS request against the running server. Usage: http METHOD PATH NAME [curl args...]
# Writes $TMP/NAME.body and $TMP/NAME.headers; sets STATUS ("000" on transport failure).
http() {
    local method=$1 path=$2 name=$3
    shift 3
    STATUS=$(curl -sS --noproxy '*' --max-time 10 --cacert "$TMP/cert.pem" -X "$method" \
        -D "$TMP/$name.headers" -o "$TMP/$name.body" -w '%{http_code}' "$@" \
        "https://127.0.0.1:$PORT$path" 2>"$TMP/$name.curlerr")
    [ -n "$STATUS" ] || STATUS=000
    [ -f "$TMP/$name.body" ] || : >"$TMP/$name.body"
    [ -f "$TMP/$name.headers" ] || : >"$TMP/$name.headers"
}

# Value of a response header (last occurrence, CR stripped), case-insensitive name.
header_value() {
    awk -v want="$(printf '%s' "$2" | tr 'A-Z' 'a-z')" '
        {
            sub(/\r$/, "")
            i = index($0, ":")
            if (i > 0 && tolower(substr($0, 1, i - 1)) == want) {
                v = substr($0, i + 1)
                sub(/^[ \t]+/, "", v)
                found = v
            }
        }
        END { printf "%s", found }' "$1"
}

body_of() {
    head -c 500 "$TMP/$1.body"
    if [ -s "$TMP/$1.curlerr" ]; then
        printf ' [curl: %s]' "$(head -c 300 "$TMP/$1.curlerr")"
    fi
}

echo "== portal-auth CLI tests: $BIN"

# ---------------------------------------------------------------------------------------------
# Fixtures: certificate, signing keys, broken files.
# ---------------------------------------------------------------------------------------------
if ! openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/key.pem" 2>"$TMP/openssl.err" ||
    ! openssl req -new -x509 -key "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 -sha256 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        2>>"$TMP/openssl.err"; then
    echo "FAIL: cannot create a test certificate with openssl:"
    cat "$TMP/openssl.err"
    exit 1
fi

if ! timeout 15 "$BIN" gen-key t1 >"$TMP/signing-keys.txt" 2>"$TMP/gen-key.err" </dev/null; then
    echo "FAIL: 'portal-auth gen-key t1' failed: $(cat "$TMP/gen-key.err")"
    exit 1
fi

printf '{"customers": [\n  {"id": 1,\n' >"$TMP/invalid-json.json"

python3 - "$DEMO_DIR" "$TMP/bad-role.json" <<'EOF'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    data = json.load(f)
data["profiles"][0]["role"] = "boss"
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(data, f, indent=2)
EOF

# A valid first key, then a key whose secret is 16 bytes (32 are required).
SHORT_SECRET=$(python3 -c 'import base64; print(base64.urlsafe_b64encode(b"0123456789abcdef").decode().rstrip("="))')
{
    cat "$TMP/signing-keys.txt"
    echo "short $SHORT_SECRET"
} >"$TMP/short-key.txt"

echo "this is not a PEM certificate" >"$TMP/not-pem.pem"

# ---------------------------------------------------------------------------------------------
# 1. Bad flags: exit 2, one line on stderr, nothing started.
# ---------------------------------------------------------------------------------------------
L=(--listen 127.0.0.1:0)
D=(--directory "$DEMO_DIR")
K=(--signing-key "$TMP/signing-keys.txt")
C=(--cert "$TMP/cert.pem" --key "$TMP/key.pem")

expect_usage_error "flags: unknown option" '--no-such-option' -- \
    serve "${L[@]}" "${D[@]}" --no-such-option
expect_usage_error "flags: --threads 0" '--threads' -- serve "${L[@]}" "${D[@]}" --threads 0
expect_usage_error "flags: --threads abc" '--threads' '"abc"' -- \
    serve "${L[@]}" "${D[@]}" --threads abc
expect_usage_error "flags: --hash-threads 0" '--hash-threads' -- \
    serve "${L[@]}" "${D[@]}" --hash-threads 0
expect_usage_error "flags: --hash-queue x" '--hash-queue' '"x"' -- \
    serve "${L[@]}" "${D[@]}" --hash-queue x
expect_usage_error "flags: --listen nonsense" '--listen' 'nonsense' -- \
    serve --listen nonsense "${D[@]}" "${K[@]}" "${C[@]}"
expect_usage_error "flags: --listen port out of range" '--listen' '99999' -- \
    serve --listen 127.0.0.1:99999 "${D[@]}" "${K[@]}" "${C[@]}"
expect_usage_error "flags: --session-ttl -5" '--session-ttl' -- \
    serve "${L[@]}" "${D[@]}" --session-ttl -5
expect_usage_error "flags: --trusted-proxy bad CIDR" '--trusted-proxy' '10.0.0.0/33' -- \
    serve "${L[@]}" "${D[@]}" --trusted-proxy 10.0.0.0/33
expect_usage_error "flags: --proxy-protocol without a trusted proxy" '--proxy-protocol' -- \
    serve "${L[@]}" "${D[@]}" --proxy-protocol
expect_usage_error "flags: --exchange-max-failures-per-address x" \
    '--exchange-max-failures-per-address' -- \
    serve "${L[@]}" "${D[@]}" --exchange-max-failures-per-address x
expect_usage_error "flags: missing --directory" '--directory' -- \
    serve "${L[@]}" "${K[@]}" "${C[@]}"
expect_usage_error "flags: --directory nonexistent file" "$TMP/nonexistent.json" -- \
    serve "${L[@]}" --directory "$TMP/nonexistent.json" "${K[@]}" "${C[@]}"
expect_usage_error "flags: --directory invalid JSON" "$TMP/invalid-json.json" 'line' -- \
    serve "${L[@]}" --directory "$TMP/invalid-json.json" "${K[@]}" "${C[@]}"
expect_usage_error "flags: --directory bad role" "$TMP/bad-role.json" 'profiles[0].role' -- \
    serve "${L[@]}" --directory "$TMP/bad-role.json" "${K[@]}" "${C[@]}"
expect_usage_error "flags: --signing-key short secret" "$TMP/short-key.txt" 'line 2' -- \
    serve "${L[@]}" "${D[@]}" --signing-key "$TMP/short-key.txt" "${C[@]}"
if grep -qF -- "$SHORT_SECRET" "$TMP/run.err" ||
    grep -qF -- "$(awk '{print $2}' "$TMP/signing-keys.txt")" "$TMP/run.err"; then
    fail "flags: --signing-key error does not echo a secret" "stderr: $(cat "$TMP/run.err")"
else
    pass "flags: --signing-key error does not echo a secret"
fi
expect_usage_error "flags: --cert not PEM" "$TMP/not-pem.pem" -- \
    serve "${L[@]}" "${D[@]}" "${K[@]}" --cert "$TMP/not-pem.pem" --key "$TMP/key.pem"

# ---------------------------------------------------------------------------------------------
# 2. hash-password: PHC-style scrypt string, verifiable with Python's hashlib.scrypt.
# ---------------------------------------------------------------------------------------------
HASH=$(printf 'secret-pw\n' | timeout 30 "$BIN" hash-password 2>"$TMP/hash.err")
RC=$?
HASH_LINES=$(printf '%s\n' "$HASH" | awk 'END { print NR }')
HASH_RE='^\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$'
if [ "$RC" -eq 0 ] && [ "$HASH_LINES" -eq 1 ] && [[ "$HASH" =~ $HASH_RE ]]; then
    pass "hash-password: output format"
else
    fail "hash-password: output format" "expected exit 0 and one line matching $HASH_RE" \
        "got exit $RC, $HASH_LINES line(s): $HASH" "stderr: $(cat "$TMP/hash.err")"
fi

VERIFY=$(python3 - "$HASH" 'secret-pw' <<'EOF' 2>&1
import base64, hashlib, hmac, re, sys
encoded, password = sys.argv[1], sys.argv[2]
m = re.fullmatch(r"\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)", encoded)
if not m:
    print("not a scrypt hash string")
    sys.exit(1)
def b64(text):
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
ln, r, p = int(m.group(1)), int(m.group(2)), int(m.group(3))
salt, expected = b64(m.group(4)), b64(m.group(5))
actual = hashlib.scrypt(password.encode(), salt=salt, n=2 ** ln, r=r, p=p,
                        maxmem=256 * 1024 * 1024, dklen=len(expected))
if not hmac.compare_digest(actual, expected):
    print("hash mismatch: python computed " + base64.b64encode(actual).decode())
    sys.exit(1)
wrong = hashlib.scrypt(b"other-pw", salt=salt, n=2 ** ln, r=r, p=p,
                       maxmem=256 * 1024 * 1024, dklen=len(expected))
if hmac.compare_digest(wrong, expected):
    print("a different password matches too")
    sys.exit(1)
print("ok salt=%d bytes hash=%d bytes" % (len(salt), len(expected)))
EOF
)
if [ $? -eq 0 ]; then
    pass "hash-password: verifies with python hashlib.scrypt ($VERIFY)"
else
    fail "hash-password: verifies with python hashlib.scrypt" "hash: $HASH" "got: $VERIFY"
fi

# ---------------------------------------------------------------------------------------------
# 3. gen-key.
# ---------------------------------------------------------------------------------------------
run_bin gen-key k1
GEN=$(cat "$TMP/run.out")
GEN_LINES=$(line_count "$TMP/run.out")
if [ "$RC" -eq 0 ] && [ "$GEN_LINES" -eq 1 ] && [[ "$GEN" =~ ^k1\ ([A-Za-z0-9_-]+)$ ]]; then
    SECRET_LEN=$(python3 -c '
import base64, sys
s = sys.argv[1]
print(len(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))))' "${BASH_REMATCH[1]}" 2>&1)
    if [[ "$SECRET_LEN" =~ ^[0-9]+$ ]] && [ "$SECRET_LEN" -ge 32 ]; then
        pass "gen-key k1: prints 'k1 SECRET' with a $SECRET_LEN-byte secret"
    else
        fail "gen-key k1: secret length" "expected >= 32 decoded bytes" "got: $SECRET_LEN"
    fi
else
    fail "gen-key k1: output format" "expected exit 0 and one line 'k1 <base64url>'" \
        "got exit $RC: $GEN" "stderr: $(cat "$TMP/run.err")"
fi

expect_usage_error "gen-key: missing KID" 'gen-key' -- gen-key
expect_usage_error "gen-key: invalid KID" 'bad kid!' -- gen-key 'bad kid!'

# ---------------------------------------------------------------------------------------------
# 4. Serving over HTTPS.
# ---------------------------------------------------------------------------------------------
AUDIT="$TMP/audit.jsonl"
"$BIN" serve --listen 127.0.0.1:0 --cert "$TMP/cert.pem" --key "$TMP/key.pem" \
    --directory "$DEMO_DIR" --signing-key "$TMP/signing-keys.txt" --audit-log "$AUDIT" \
    --threads 2 </dev/null >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
SERVER_PIDS+=("$SERVER_PID")
wait_for_listening "$SERVER_PID" "$TMP/server.out"

if [ -n "$PORT" ] && [ "$PORT" -gt 0 ] && [ "$(line_count "$TMP/server.out")" -eq 1 ]; then
    pass "serve: prints 'listening on https://127.0.0.1:$PORT'"
else
    fail "serve: listening line" \
        "expected exactly one stdout line matching ^listening on https://127.0.0.1:[0-9]+\$ (port != 0)" \
        "got stdout: $(head -c 300 "$TMP/server.out")" "stderr: $(head -c 500 "$TMP/server.err")"
    echo "== the server did not start; skipping the HTTP checks"
    echo "== $PASSED passed, $((FAILED)) failed"
    exit 1
fi

if [ -s "$TMP/server.err" ]; then
    fail "serve: no warnings with --signing-key" "stderr: $(head -c 300 "$TMP/server.err")"
else
    pass "serve: no warnings with --signing-key"
fi

# healthz
http GET /healthz health
HEALTH_OK=$(python3 -c '
import json, sys
print(json.load(open(sys.argv[1])) == {"status": "ok"})' "$TMP/health.body" 2>/dev/null)
if [ "$STATUS" = 200 ] && [ "$HEALTH_OK" = True ]; then
    pass "GET /healthz: 200 {\"status\":\"ok\"}"
else
    fail "GET /healthz" "expected 200 {\"status\":\"ok\"}" "got $STATUS: $(body_of health)"
fi

# login
http POST /api/public/auth/login login -H 'Content-Type: application/json' \
    --data-binary '{"email":"alice@acme.test","password":"alice-demo"}'
ACCESS=$(json_get "$TMP/login.body" accessToken)
REFRESH=$(json_get "$TMP/login.body" refreshToken)
LOGIN_CUSTOMER=$(json_get "$TMP/login.body" customerId)
if [ "$STATUS" = 200 ] && [ -n "$ACCESS" ] && [ "$LOGIN_CUSTOMER" = 100 ]; then
    pass "POST /api/public/auth/login (alice): 200 with accessToken"
else
    fail "POST /api/public/auth/login (alice)" "expected 200 with accessToken and customerId 100" \
        "got $STATUS: $(body_of login)"
fi

# impersonate coworker profile 12 (carol)
http GET /api/public/coworkers/12/impersonate impersonate -H "Authorization: Bearer $ACCESS"
IMP_TOKEN=$(json_get "$TMP/impersonate.body" token)
if [ "$STATUS" = 200 ] && [ -n "$IMP_TOKEN" ]; then
    pass "GET /api/public/coworkers/12/impersonate: 200 with token"
else
    fail "GET /api/public/coworkers/12/impersonate" "expected 200 with a token" \
        "got $STATUS: $(body_of impersonate)"
fi

# exchange the token
http POST "/api/public/auth/login/$IMP_TOKEN" exchange --data-binary ''
EXCH_CUSTOMER=$(json_get "$TMP/exchange.body" customerId)
EXCH_IMPERSONATOR=$(json_get "$TMP/exchange.body" impersonator.customerId)
EXCH_ACCESS=$(json_get "$TMP/exchange.body" accessToken)
if [ "$STATUS" = 200 ] && [ "$EXCH_CUSTOMER" = 102 ] && [ "$EXCH_IMPERSONATOR" = 100 ] &&
    [ -n "$EXCH_ACCESS" ]; then
    pass "POST /api/public/auth/login/{token}: 200 as customer 102, impersonator 100"
else
    fail "POST /api/public/auth/login/{token}" \
        "expected 200 with customerId 102, impersonator.customerId 100 and an accessToken" \
        "got $STATUS: $(body_of exchange)"
fi

# the same token again
http POST "/api/public/auth/login/$IMP_TOKEN" replay --data-binary ''
WWW_AUTH=$(header_value "$TMP/replay.headers" WWW-Authenticate)
CONTENT_TYPE=$(header_value "$TMP/replay.headers" Content-Type)
EXPECTED_WWW='Bearer realm="portal-auth", error="invalid_token"'
if [ "$STATUS" = 401 ]; then
    pass "POST /api/public/auth/login/{token} again: 401"
else
    fail "POST /api/public/auth/login/{token} again" "expected 401" \
        "got $STATUS: $(body_of replay)"
fi
if [ "$WWW_AUTH" = "$EXPECTED_WWW" ]; then
    pass "replayed token: WWW-Authenticate: $EXPECTED_WWW"
else
    fail "replayed token: WWW-Authenticate" "expected: $EXPECTED_WWW" "got: $WWW_AUTH"
fi
if [[ "$CONTENT_TYPE" == application/problem+json* ]] &&
    python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$TMP/replay.body" 2>/dev/null; then
    pass "replayed token: Content-Type: application/problem+json"
else
    fail "replayed token: Content-Type" "expected application/problem+json with a JSON body" \
        "got: $CONTENT_TYPE, body: $(body_of replay)"
fi

# ---------------------------------------------------------------------------------------------
# 7. A port already in use (while the first server runs).
# ---------------------------------------------------------------------------------------------
expect_usage_error "flags: --listen port already in use" '--listen' -- \
    serve --listen "127.0.0.1:$PORT" "${D[@]}" "${K[@]}" "${C[@]}"

# ---------------------------------------------------------------------------------------------
# 5. No --signing-key: a warning on stderr, the server still starts.
# ---------------------------------------------------------------------------------------------
FIRST_PORT=$PORT
"$BIN" serve --listen 127.0.0.1:0 "${C[@]}" "${D[@]}" --threads 1 \
    </dev/null >"$TMP/nokey.out" 2>"$TMP/nokey.err" &
NOKEY_PID=$!
SERVER_PIDS+=("$NOKEY_PID")
wait_for_listening "$NOKEY_PID" "$TMP/nokey.out"
NOKEY_ERR=$(cat "$TMP/nokey.err")
if [ -n "$PORT" ] && [ "$PORT" -gt 0 ] && [[ "$NOKEY_ERR" == *signing-key* ]]; then
    http GET /healthz nokey-health
    if [ "$STATUS" = 200 ]; then
        pass "serve without --signing-key: warns about signing-key and serves"
    else
        fail "serve without --signing-key: serves" "expected GET /healthz 200" \
            "got $STATUS: $(body_of nokey-health)"
    fi
else
    fail "serve without --signing-key" \
        "expected a listening line and a stderr warning mentioning signing-key" \
        "got stdout: $(head -c 300 "$TMP/nokey.out")" "stderr: $NOKEY_ERR"
fi
stop_server "$NOKEY_PID"
if [ "$STOP_RC" = 0 ]; then
    pass "serve without --signing-key: SIGTERM exits 0"
else
    fail "serve without --signing-key: SIGTERM" "expected exit 0 within 15 s" \
        "got: ${STOP_RC:-still running after 15 s}"
fi
PORT=$FIRST_PORT

# ---------------------------------------------------------------------------------------------
# 6. Graceful stop and the audit trail.
# ---------------------------------------------------------------------------------------------
stop_server "$SERVER_PID"
if [ "$STOP_RC" = 0 ]; then
    pass "SIGTERM: server exits with code 0"
else
    fail "SIGTERM: server exit" "expected exit 0 within 15 s" \
        "got: ${STOP_RC:-still running after 15 s}" "stderr: $(head -c 500 "$TMP/server.err")"
fi

AUDIT_CHECK=$(python3 - "$AUDIT" <<'EOF' 2>&1
import json, sys
problems = []
events = []
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        lines = f.read().split("\n")
except OSError as e:
    print("cannot read the audit log: %s" % e)
    sys.exit(1)
if lines and lines[-1] == "":
    lines.pop()
else:
    problems.append("the last line does not end with a newline")
for n, line in enumerate(lines, 1):
    try:
        record = json.loads(line)
    except ValueError as e:
        problems.append("line %d is not JSON (%s): %r" % (n, e, line[:200]))
        continue
    if not isinstance(record, dict):
        problems.append("line %d is not a JSON object" % n)
        continue
    events.append(record.get("event"))
for wanted in ("login.succeeded", "impersonation.issued", "impersonation.exchanged"):
    if wanted not in events:
        problems.append("event %s missing (events: %s)" % (wanted, events))
if problems:
    print("; ".join(problems))
    sys.exit(1)
print("%d records" % len(lines))
EOF
)
if [ $? -eq 0 ]; then
    pass "audit log: valid JSON Lines with login.succeeded, impersonation.issued, impersonation.exchanged ($AUDIT_CHECK)"
else
    fail "audit log: JSON Lines and events" "got: $AUDIT_CHECK"
fi

LEAKS=()
[ -n "$ACCESS" ] && grep -qF -- "$ACCESS" "$AUDIT" && LEAKS+=("alice's access token")
[ -n "$REFRESH" ] && grep -qF -- "$REFRESH" "$AUDIT" && LEAKS+=("alice's refresh token")
[ -n "$IMP_TOKEN" ] && grep -qF -- "$IMP_TOKEN" "$AUDIT" && LEAKS+=("the impersonation token")
[ -n "$EXCH_ACCESS" ] && grep -qF -- "$EXCH_ACCESS" "$AUDIT" &&
    LEAKS+=("the impersonated session's access token")
grep -qF -- 'alice-demo' "$AUDIT" && LEAKS+=("the password alice-demo")
if [ -z "$ACCESS" ] || [ -z "$IMP_TOKEN" ]; then
    fail "audit log: no secrets" "cannot check: the login or impersonation step failed"
elif [ ${#LEAKS[@]} -eq 0 ]; then
    pass "audit log: contains no tokens or passwords"
else
    fail "audit log: no secrets" "expected no tokens or passwords" "found: ${LEAKS[*]}"
fi

# ---------------------------------------------------------------------------------------------
# 9. SIGHUP reload: a bad file changes nothing; a good one applies without a restart.
# ---------------------------------------------------------------------------------------------
RELOAD_DIR="$TMP/reload-directory.json"
cp "$DEMO_DIR" "$RELOAD_DIR"
"$BIN" serve --listen 127.0.0.1:0 --cert "$TMP/cert.pem" --key "$TMP/key.pem" \
    --directory "$RELOAD_DIR" --signing-key "$TMP/signing-keys.txt" --threads 2 \
    </dev/null >"$TMP/reload.out" 2>"$TMP/reload.err" &
RELOAD_PID=$!
SERVER_PIDS+=("$RELOAD_PID")
wait_for_listening "$RELOAD_PID" "$TMP/reload.out"

# Waits up to 10 s for a line matching $2 in file $1.
wait_for_line() {
    for _ in $(seq 100); do
        grep -q -- "$2" "$1" && return 0
        sleep 0.1
    done
    return 1
}

http POST /api/public/auth/login reload_login -H 'Content-Type: application/json' \
    --data-binary '{"email":"alice@acme.test","password":"alice-demo"}'
RELOAD_ACCESS=$(json_get "$TMP/reload_login.body" accessToken)
printf '{"customers": [' >"$RELOAD_DIR"
kill -HUP "$RELOAD_PID"
if wait_for_line "$TMP/reload.err" "reload failed" &&
    [ "$(grep -c . "$TMP/reload.err")" -eq 1 ] && grep -qF "$RELOAD_DIR" "$TMP/reload.err"; then
    http GET /api/public/auth/session reload_session1 -H "Authorization: Bearer $RELOAD_ACCESS"
    if [ "$STATUS" = 200 ]; then
        pass "SIGHUP with a broken directory: one error line naming the file, sessions kept"
    else
        fail "SIGHUP with a broken directory" "expected the session to survive" "got $STATUS"
    fi
else
    fail "SIGHUP with a broken directory" "expected one 'reload failed' line naming the file" \
        "stderr: $(head -c 400 "$TMP/reload.err")"
fi

python3 - "$DEMO_DIR" "$RELOAD_DIR" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["impersonationEnabled"] = False
json.dump(d, open(sys.argv[2], "w"))
PY
kill -HUP "$RELOAD_PID"
if wait_for_line "$TMP/reload.err" "reloaded"; then
    http GET /api/public/coworkers/12/impersonate reload_imp -H "Authorization: Bearer $RELOAD_ACCESS"
    IMP_STATUS=$STATUS
    http GET /api/public/auth/session reload_session2 -H "Authorization: Bearer $RELOAD_ACCESS"
    if [ "$IMP_STATUS" = 403 ] && [ "$STATUS" = 200 ]; then
        pass "SIGHUP with impersonationEnabled false: impersonation 403 at once, session kept"
    else
        fail "SIGHUP kill switch" "expected impersonate 403 and session 200" \
            "got impersonate $IMP_STATUS, session $STATUS"
    fi
else
    fail "SIGHUP with a valid directory" "expected a 'reloaded' line" \
        "stderr: $(head -c 400 "$TMP/reload.err")"
fi
stop_server "$RELOAD_PID"

# ---------------------------------------------------------------------------------------------
# 8. --help.
# ---------------------------------------------------------------------------------------------
run_bin --help
if [ "$RC" -eq 0 ] && grep -qF -- '--listen' "$TMP/run.out"; then
    pass "--help: exit 0, mentions --listen"
else
    fail "--help" "expected exit 0 and --listen in stdout" \
        "got exit $RC, stdout: $(head -c 200 "$TMP/run.out")"
fi

# ---------------------------------------------------------------------------------------------
# SIGUSR1 reopens the audit log (logrotate: rename, then signal); the process keeps serving.
# ---------------------------------------------------------------------------------------------
ROTATE_LOG="$TMP/rotate.jsonl"
"$BIN" serve --listen 127.0.0.1:0 --cert "$TMP/cert.pem" --key "$TMP/key.pem" \
    --directory "$DEMO_DIR" --signing-key "$TMP/signing-keys.txt" --audit-log "$ROTATE_LOG" \
    --threads 1 </dev/null >"$TMP/rotate.out" 2>"$TMP/rotate.err" &
ROTATE_PID=$!
SERVER_PIDS+=("$ROTATE_PID")
wait_for_listening "$ROTATE_PID" "$TMP/rotate.out"
rotate_login() {
    http POST /api/public/auth/login "$1" -H 'Content-Type: application/json' \
        --data-binary '{"email":"alice@acme.test","password":"alice-demo"}'
}
rotate_login rotate_before
mv "$ROTATE_LOG" "$ROTATE_LOG.1"
kill -USR1 "$ROTATE_PID"
for _ in $(seq 100); do
    grep -q 'reopened the audit log' "$TMP/rotate.err" && break
    sleep 0.05
done
rotate_login rotate_after
if kill -0 "$ROTATE_PID" 2>/dev/null && [ "$STATUS" = 200 ] &&
    [ "$(grep -c '"event":"login.succeeded"' "$ROTATE_LOG.1")" = 1 ] &&
    [ "$(grep -c '"event":"login.succeeded"' "$ROTATE_LOG" 2>/dev/null)" = 1 ]; then
    pass "SIGUSR1: the audit log is reopened at its path; the renamed file keeps its lines"
else
    fail "SIGUSR1" "expected one login line in each file and the server alive" \
        "renamed: $(cat "$ROTATE_LOG.1" 2>/dev/null | head -c 300); new: $(cat "$ROTATE_LOG" 2>/dev/null | head -c 300); stderr: $(head -c 300 "$TMP/rotate.err")"
fi
stop_server "$ROTATE_PID"

echo "== $PASSED passed, $FAILED failed"
if [ "$FAILED" -ne 0 ]; then
    printf 'failed: %s\n' "${FAILED_NAMES[@]}"
    exit 1
fi
exit 0
