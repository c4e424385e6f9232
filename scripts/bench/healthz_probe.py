"""Low-rate /healthz latency probe for scenario S6 of scripts/bench.sh.

Opens one keep-alive TLS connection and sends one untimed GET /healthz, then creates READY_FILE
(so the caller can start the load on a connection that already exists: under a login storm a
new handshake itself can wait seconds). Then, for SECONDS, one GET /healthz every INTERVAL
(100/s by default: negligible next to wrk) on that connection, one at a time.

Two latencies are kept:
- service: from sending a request to having the whole answer;
- corrected: the service latencies plus, for a request slower than INTERVAL, the latencies the
  requests due meanwhile would have seen (L - INTERVAL, L - 2 x INTERVAL, ... down to INTERVAL,
  as HdrHistogram's expected-interval correction does). A probe that waits on a stalled server
  sends fewer requests; without this, one 600 ms stall would be a single sample.
If the server closes the connection the probe reconnects; that handshake counts in the latency
of the request it carries.

usage: healthz_probe.py --port P --cafile CA --seconds S --out FILE [--ready-file F] [--interval I]
FILE gets one line per sample: "<ms> s" (service, measured) or "<ms> c" (added by the correction).
Prints: bench-healthz: requests=N p50_ms=X p99_ms=X max_ms=X corrected_p99_ms=X non200=N
        errors=N reconnects=N
"""
import argparse
import math
import sys
import time

from tlsget import client_context, connect, get, request_bytes


def percentile(sorted_values, pct):
    if not sorted_values:
        return float("nan")
    # nearest rank: the smallest value with at least pct % of the samples at or below it
    k = math.ceil(pct / 100 * len(sorted_values)) - 1
    return sorted_values[max(0, min(len(sorted_values) - 1, k))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--path", default="/healthz")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ready-file")
    args = ap.parse_args()

    ctx = client_context(args.cafile)
    request = request_bytes(args.path)
    conn = connect(ctx, args.port)
    get(conn, request)
    if args.ready_file:
        open(args.ready_file, "w").close()

    interval_ms = args.interval * 1000
    service, added = [], []
    non200, errors, reconnects = 0, 0, 0
    end = time.monotonic() + args.seconds
    next_send = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if next_send > now:
            time.sleep(next_send - now)
        t0 = time.perf_counter()
        try:
            if conn is None:
                conn = connect(ctx, args.port)
                reconnects += 1
            status, keep = get(conn, request)
            if status != 200:
                non200 += 1
            if not keep:
                conn.close()
                conn = None
        except (OSError, ValueError, IndexError):
            errors += 1
            if conn is not None:
                conn.close()
            conn = None
            next_send = max(next_send + args.interval, time.monotonic())
            continue
        ms = (time.perf_counter() - t0) * 1000
        service.append(ms)
        late = ms - interval_ms
        while late >= interval_ms:
            added.append(late)
            late -= interval_ms
        # the next request goes out on schedule, or at once when this one made it late
        next_send = max(next_send + args.interval, time.monotonic())
    if conn is not None:
        conn.close()

    with open(args.out, "w") as f:
        f.write("".join(f"{v:.3f} s\n" for v in service))
        f.write("".join(f"{v:.3f} c\n" for v in added))
    s, c = sorted(service), sorted(service + added)
    print(f"bench-healthz: requests={len(s)} p50_ms={percentile(s, 50):.2f} "
          f"p99_ms={percentile(s, 99):.2f} max_ms={(s[-1] if s else float('nan')):.2f} "
          f"corrected_p99_ms={percentile(c, 99):.2f} non200={non200} errors={errors} "
          f"reconnects={reconnects}")
    return 0 if s else 1


if __name__ == "__main__":
    sys.exit(main())
