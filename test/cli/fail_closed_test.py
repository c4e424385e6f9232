#!/usr/bin/env python3
"""The binary fails closed and stays fair (issue 9), tried from outside over real TLS:
- an audit file that cannot grow (RLIMIT_FSIZE): no token without its line, 503
  audit-unavailable, the file stays JSON Lines, stderr reports the episode once and the
  recovery, and the server serves on and recovers by itself after a rotation;
- 16 parallel wrong passwords at --threads 8: exactly the limit's 401s, 429 for the rest;
- a lockout aimed from another address does not lock the customer out;
- a flood of bad exchange tokens: 20 failures written, then 429 and one throttled line;
  /api/sys/audit?category=impersonation;
- tokens whose actor lost the right by a SIGHUP reload: 401, reason actor_lost_right;
- behind a trusted proxy: X-Forwarded-For names the client; connections per address capped;
- out of descriptors (RLIMIT_NOFILE 48): a warning at start, accept failures logged at most
  once a second, and service (and SIGHUP) back once the connections are gone.

usage: fail_closed_test.py PORTAL_AUTH_BINARY SOURCE_DIR
"""
import base64, concurrent.futures, http.client, json, os, resource, signal, socket, ssl, sys
import time

from harness import Harness

h = Harness(sys.argv[1], sys.argv[2], "fail-closed")
tls = h.tls
failures = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)))
    if not ok:
        failures.append(name)


def call(port, method, path, body=None, token=None, source="127.0.0.1"):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=20,
                                       source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data, r


def login(port, email, password, source="127.0.0.1"):
    return call(port, "POST", "/api/public/auth/login", {"email": email, "password": password},
                source=source)


def audit_lines(path):
    with open(path, "rb") as f:
        text = f.read().decode()
    return text, [json.loads(line) for line in text.splitlines()]


def jti_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


# --- 1. An audit file that cannot grow ------------------------------------------------------
def small_file_limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (6000, resource.RLIM_INFINITY))


stderr_path = os.path.join(h.work, "stderr.txt")
with open(stderr_path, "w") as stderr:
    proc, port = h.start_server("--impersonation-issue-limit", "0", "--audit-fsync", "always",
                                stderr=stderr, preexec_fn=small_file_limit)
status, body, _ = login(port, "alice@acme.test", "alice-demo")
check("login while the disk has room", status == 200, status)
access = json.loads(body)["accessToken"]
tokens, refusals = [], []
for _ in range(60):
    status, body, r = call(port, "GET", "/api/public/coworkers/12/impersonate", token=access)
    if status == 200:
        tokens.append(json.loads(body)["token"])
    else:
        refusals.append((status, json.loads(body).get("type"), r.getheader("Retry-After")))
check("some tokens were issued before the file was full", len(tokens) > 5, len(tokens))
check("the rest were refused", len(refusals) > 10, len(refusals))
check("refusals are 503 audit-unavailable with Retry-After",
      all(s == 503 and t == "urn:portal-auth:problem:audit-unavailable" and ra
          for s, t, ra in refusals), refusals[:3])
text, lines = audit_lines(h.audit)
check("the audit file is whole JSON Lines", text.endswith("\n") and len(lines) > 0)
written = {e["jti"] for e in lines if e["event"] == "impersonation.issued"}
check("every token handed out has its line", all(jti_of(t) in written for t in tokens))
check("no line without a token", len(written) == len(tokens), (len(written), len(tokens)))
status, _, _ = call(port, "GET", "/healthz")
check("healthz still answers", status == 200, status)
status, _, _ = call(port, "GET", "/api/public/auth/session", token=access)
check("reading a session needs no audit line", status == 200, status)
status, _, _ = login(port, "bob@acme.test", "bob-demo")
check("a login whose line cannot be written is 503", status == 503, status)
with open(stderr_path) as f:
    reported = [line for line in f if "audit log" in line]
check("the episode is reported once, with its errno",
      len(reported) == 1 and "errno 27" in reported[0], reported)
# logrotate: rename, SIGUSR1; the new file has room.
os.rename(h.audit, h.audit + ".1")
proc.send_signal(signal.SIGUSR1)
deadline = time.time() + 10
while not os.path.exists(h.audit) and time.time() < deadline:
    time.sleep(0.05)
status, body, _ = call(port, "GET", "/api/public/coworkers/12/impersonate", token=access)
check("issuing works again after the rotation", status == 200, status)
_, fresh = audit_lines(h.audit)
check("its line is in the new file",
      status == 200 and any(e.get("jti") == jti_of(json.loads(body)["token"]) for e in fresh))
stop(proc)
with open(stderr_path) as f:
    text = f.read()
check("the recovery is reported", "writing again" in text, text[-500:])
os.remove(h.audit)
os.remove(h.audit + ".1")

# --- 2. Exact throttles under concurrency ---------------------------------------------------
proc, port = h.start_server(threads=8)
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    statuses = list(pool.map(lambda _: login(port, "carol@acme.test", "guess")[0], range(16)))
check("16 parallel wrong passwords: exactly five 401s",
      statuses.count(401) == 5 and statuses.count(429) == 11, sorted(statuses))

# --- 3. A lockout cannot be aimed -----------------------------------------------------------
for _ in range(5):
    login(port, "ALICE@acme.test", "guess", source="127.0.0.2")
status, _, r = login(port, "alice@acme.test", "alice-demo", source="127.0.0.2")
check("the guessing address is throttled", status == 429 and r.getheader("Retry-After"), status)
status, _, _ = login(port, "alice@acme.test", "alice-demo", source="127.0.0.3")
check("Alice from her own address is not", status == 200, status)
_, lines = audit_lines(h.audit)
throttled = [e for e in lines if e["event"] == "login.throttled"]
check("login.throttled names the customer and the limit",
      any(e.get("customerId") == 100 and e.get("limit") == "email_and_address"
          and e["remote"].startswith("127.0.0.2:") for e in throttled), throttled)

# --- 4. A flood of bad exchange tokens ------------------------------------------------------
statuses = [call(port, "POST", "/api/public/auth/login/not-a-token", source="127.0.0.4")
            for _ in range(40)]
codes = [s for s, _, _ in statuses]
check("20 failed exchanges, then 429", codes == [401] * 20 + [429] * 20, codes)
check("429 says when to come back", all(r.getheader("Retry-After") for s, _, r in statuses
                                         if s == 429))
_, lines = audit_lines(h.audit)
failed = [e for e in lines if e["event"] == "impersonation.exchange_failed"]
flood_lines = [e for e in lines if e["event"] == "impersonation.throttled"]
check("20 failure lines and one throttled line",
      len(failed) == 20 and len(flood_lines) == 1 and flood_lines[0]["limit"] ==
      "exchange_address", (len(failed), flood_lines))
status, body, _ = login(port, "olga@portal.test", "olga-demo")
olga = json.loads(body)["accessToken"]
status, body, _ = call(port, "GET", "/api/sys/audit?category=impersonation&limit=1000",
                       token=olga)
events = json.loads(body)["Events"] if status == 200 else []
check("the impersonation category lists impersonation events only",
      status == 200 and len(events) == 21 and
      all(e["event"].startswith("impersonation.") for e in events), (status, len(events)))
status, _, _ = call(port, "GET", "/api/sys/audit?category=logins", token=olga)
check("an unknown category is 400", status == 400, status)
stop(proc)
os.remove(h.audit)

# --- 5. Rights are checked again at redemption ----------------------------------------------
directory = os.path.join(h.work, "directory.json")
with open(os.path.join(h.source, "app/demo-directory.json")) as f:
    doc = json.load(f)
with open(directory, "w") as f:
    json.dump(doc, f)
proc, port = h.start_server(directory=directory)
bob = json.loads(login(port, "bob@acme.test", "bob-demo")[1])["accessToken"]
olga = json.loads(login(port, "olga@portal.test", "olga-demo")[1])["accessToken"]
status, body, _ = call(port, "GET", "/api/public/coworkers/12/impersonate", token=bob)
bob_token = json.loads(body)["token"]
status, body, _ = call(port, "GET", "/api/sys/users/impersonate?customerId=101", token=olga)
olga_token = json.loads(body)["token"]
for p in doc["profiles"]:
    if p["id"] == 11:
        p["role"] = "member"
for c in doc["customers"]:
    if c["id"] == 900:
        c["operator"] = False
with open(directory, "w") as f:
    json.dump(doc, f)
proc.send_signal(signal.SIGHUP)
deadline = time.time() + 10
while time.time() < deadline:
    _, lines = audit_lines(h.audit)
    if sum(e["event"] == "impersonation.ended" for e in lines) >= 2:
        break
    time.sleep(0.05)
ended = [e for e in lines if e["event"] == "impersonation.ended"]
check("the reload withdraws both tokens, audited",
      len(ended) == 2 and all(e["endReason"] == "actor_lost_right" for e in ended), ended)
for name, token in (("bob", bob_token), ("olga", olga_token)):
    status, _, _ = call(port, "POST", "/api/public/auth/login/" + token)
    _, lines = audit_lines(h.audit)
    check("%s's token no longer exchanges" % name, status == 401, status)
    check("%s's exchange failure says actor_lost_right" % name,
          lines[-1]["event"] == "impersonation.exchange_failed" and
          lines[-1]["reason"] == "actor_lost_right", lines[-1])
stop(proc)

# --- 5b. Time ends impersonations on the record: the binary's periodic sweep ---------------
os.remove(h.audit)
proc, port = h.start_server("--impersonation-token-ttl", "1")
alice = json.loads(login(port, "alice@acme.test", "alice-demo")[1])["accessToken"]
status, body, _ = call(port, "GET", "/api/public/coworkers/12/impersonate?reason=sweep", token=alice)
unused = jti_of(json.loads(body)["token"])
deadline, ended = time.time() + 25, []
while time.time() < deadline and not ended:
    time.sleep(0.5)
    _, lines = audit_lines(h.audit)
    ended = [e for e in lines if e["event"] == "impersonation.ended"]
check("an unredeemed token that expires is ended by the sweep, once",
      len(ended) == 1 and ended[0]["endReason"] == "not_redeemed" and
      ended[0]["impersonationId"] == unused and ended[0]["impersonationReason"] == "sweep", ended)
stop(proc)
os.remove(h.audit)

# --- 6. Behind a reverse proxy ------------------------------------------------------------
def tls_connection(port, source):
    raw = socket.create_connection(("127.0.0.1", port), source_address=(source, 0), timeout=5)
    return tls.wrap_socket(raw, server_hostname="127.0.0.1")


proc, port = h.start_server("--trusted-proxy", "127.0.0.1", "--max-connections-per-address", "3")
conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=20)
conn.request("POST", "/api/public/auth/login",
             body=json.dumps({"email": "carol@acme.test", "password": "guess"}),
             headers={"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.77"})
status = conn.getresponse().status
_, lines = audit_lines(h.audit)
check("behind a trusted proxy the client is X-Forwarded-For's",
      status == 401 and lines[-1]["remote"] == "198.51.100.77" and
      lines[-1]["peer"].startswith("127.0.0.1:"), lines[-1])
held = [tls_connection(port, "127.0.0.2") for _ in range(3)]
try:
    extra = tls_connection(port, "127.0.0.2")
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    refused = extra.recv(100) == b""
except (OSError, ssl.SSLError):
    refused = True
check("a fourth connection from one address is closed", refused)
other = tls_connection(port, "127.0.0.3")
other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
check("another address is served", other.recv(100).startswith(b"HTTP/1.1 200"))
for s in held + [other]:
    s.close()
stop(proc)

# --- 7. Out of descriptors ------------------------------------------------------------------
def few_descriptors():
    resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))


stderr_path = os.path.join(h.work, "stderr-nofile.txt")
with open(stderr_path, "w") as stderr:
    proc, port = h.start_server("--max-connections", "1000", stderr=stderr,
                                preexec_fn=few_descriptors)
held = []
for _ in range(80):
    s = socket.create_connection(("127.0.0.1", port))
    held.append(s)
time.sleep(3.0)
with open(stderr_path) as f:
    text = f.read()
accept_lines = [l for l in text.splitlines() if "accept failed" in l]
check("a warning at start names the open-file limit",
      "exceeds the open-file limit of 48" in text, text[:300])
check("accept failures are logged at most once a second",
      1 <= len(accept_lines) <= 4, accept_lines)
for s in held:
    s.close()
deadline, status = time.time() + 15, 0
while time.time() < deadline and status != 200:
    try:
        status = call(port, "GET", "/healthz")[0]
    except OSError:
        time.sleep(0.2)
check("service resumes once the connections are gone", status == 200, status)
proc.send_signal(signal.SIGHUP)
time.sleep(0.5)
stop(proc)
with open(stderr_path) as f:
    text = f.read()
check("the reload after the storm can read its files",
      "reload failed" not in text and "reloaded" in text, text[-300:])

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
