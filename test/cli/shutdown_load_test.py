#!/usr/bin/env python3
"""SIGTERM while clients keep sending requests: the server exits 0 within its grace period, and
no request it received and processed lost its response: every login.succeeded line in the audit
log (written while handling the request) matches a 200 a client actually read.

usage: shutdown_load_test.py PORTAL_AUTH_BINARY SOURCE_DIR
"""
import http.client, json, signal, ssl, subprocess, sys, threading, time

from harness import Harness

h = Harness(sys.argv[1], sys.argv[2], "shutdown")
server, port = h.start_server("--shutdown-grace", "5", "--login-max-failures-per-email", "0")
tls, audit = h.tls, h.audit
body = json.dumps({"email": "bob@acme.test", "password": "bob-demo"})
lock = threading.Lock()
counts = {"ok": 0, "partial": 0, "connection_errors": 0}
stop_at = time.time() + 15


def client():
    conn = None
    while time.time() < stop_at:
        try:
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=10)
            conn.request("POST", "/api/public/auth/login", body=body,
                         headers={"Content-Type": "application/json"})
        except OSError:
            with lock:
                counts["connection_errors"] += 1
            conn = None
            if server.poll() is not None:
                return
            time.sleep(0.01)
            continue
        try:
            r = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError):
            # Closed before any byte of a response: the request was not taken in.
            with lock:
                counts["connection_errors"] += 1
            conn = None
            continue
        try:
            data = r.read()
            ok = r.status == 200 and "accessToken" in json.loads(data)
        except Exception:
            ok = False
        with lock:
            counts["ok" if ok else "partial"] += 1
        if r.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = None


threads = [threading.Thread(target=client) for _ in range(4)]
for t in threads:
    t.start()
time.sleep(1.5)
server.send_signal(signal.SIGTERM)
sent = time.time()
try:
    rc = server.wait(timeout=15)
except subprocess.TimeoutExpired:
    rc = None
took = time.time() - sent
for t in threads:
    t.join(timeout=20)

with open(audit) as f:
    processed = sum(1 for l in f if json.loads(l)["event"] == "login.succeeded")
print("responses read: %(ok)d, broken responses: %(partial)d, connection errors: "
      "%(connection_errors)d" % counts)
print("logins processed by the server: %d; exit code %s after %.2f s" % (processed, rc, took))
failures = []
if rc != 0:
    failures.append("server exit code %s" % rc)
if took > 6:
    failures.append("shutdown took %.1f s (grace 5 s)" % took)
if counts["partial"]:
    failures.append("%d responses broken off" % counts["partial"])
if counts["ok"] < 5:
    failures.append("load too small to mean anything")
if processed != counts["ok"]:
    failures.append("server processed %d logins, clients read %d responses"
                    % (processed, counts["ok"]))
print("FAIL: " + "; ".join(failures) if failures else "PASS")
sys.exit(1 if failures else 0)
