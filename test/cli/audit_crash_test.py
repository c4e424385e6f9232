#!/usr/bin/env python3
"""SIGKILL in the middle of an impersonation load: every token a client received has its
impersonation.issued line in the audit file, the file is JSON Lines up to at most one torn
last line, and the next start repairs that line.

usage: audit_crash_test.py PORTAL_AUTH_BINARY SOURCE_DIR
"""
import base64, http.client, json, signal, sys, threading, time

from harness import Harness

h = Harness(sys.argv[1], sys.argv[2], "crash")
audit, tls = h.audit, h.tls
failures = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
    if not ok:
        failures.append(name)


def start_server():
    return h.start_server("--impersonation-issue-limit", "0")


def call(port, method, path, body=None, token=None):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


proc, port = start_server()
status, body = call(port, "POST", "/api/public/auth/login",
                    {"email": "alice@acme.test", "password": "alice-demo"})
check("login", status == 200, str(status))
access = json.loads(body)["accessToken"]

received = []
lock = threading.Lock()
stop = threading.Event()


def load():
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=10)
    while not stop.is_set():
        try:
            conn.request("GET", "/api/public/coworkers/12/impersonate",
                         headers={"Authorization": "Bearer " + access})
            r = conn.getresponse()
            data = r.read()
        except Exception:
            return  # the server died mid-request: that token was never received
        if r.status == 200:
            with lock:
                received.append(json.loads(data)["token"])


threads = [threading.Thread(target=load) for _ in range(4)]
for t in threads:
    t.start()
deadline = time.time() + 10
while time.time() < deadline and len(received) < 300:
    time.sleep(0.01)
proc.send_signal(signal.SIGKILL)
proc.wait(timeout=10)
stop.set()
for t in threads:
    t.join(timeout=15)
check("load ran", len(received) >= 50, "only %d tokens" % len(received))

with open(audit, "rb") as f:
    raw = f.read()
lines = raw.split(b"\n")
torn = lines[-1]  # b"" when the file ends with a newline
parsed = []
bad = 0
for line in lines[:-1]:
    try:
        parsed.append(json.loads(line))
    except ValueError:
        bad += 1
check("audit file is JSON Lines up to at most one torn last line", bad == 0, "%d bad lines" % bad)
issued = {e.get("jti") for e in parsed if e.get("event") == "impersonation.issued"}


def jti_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


missing = [t for t in received if jti_of(t) not in issued]
check("every received token has its impersonation.issued line", not missing,
      "%d of %d missing" % (len(missing), len(received)))
check("no token in the audit file", not any(t.encode() in raw for t in received[:50]))

# Make sure a torn line is present for the repair check, then restart.
with open(audit, "ab") as f:
    f.write(b'{"time":"2026-01-01T00:00:00.000Z","event":"torn')
proc, port = start_server()
status, _ = call(port, "POST", "/api/public/auth/login",
                 {"email": "bob@acme.test", "password": "bob-demo"})
proc.send_signal(signal.SIGTERM)
check("restarted server exits 0 on SIGTERM", proc.wait(timeout=20) == 0)
with open(audit, "rb") as f:
    after = f.read().split(b"\n")
check("file ends with a newline", after[-1] == b"")
check("torn line closed, new lines whole",
      after[-3].endswith(b'"event":"torn') and json.loads(after[-2])["event"] == "login.succeeded",
      repr(after[-3:]))
print("tokens received before SIGKILL: %d" % len(received))
sys.exit(1 if failures else 0)
