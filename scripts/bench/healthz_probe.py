"""Low-rate /healthz latency probe for scenario S6 of scripts/bench.sh.

One keep-alive TLS connection; a GET /healthz every INTERVAL seconds (100/s by default, a load
negligible next to wrk's) for SECONDS; each latency is the time from sending the request to
having the whole answer. A request that is late because the previous one was slow goes out at
once (no catching up in bursts). If the server closes the connection, the probe reconnects and
counts it; the handshake is not part of any latency.

usage: healthz_probe.py --port P --cafile CA --seconds S [--interval I] --out FILE
Writes one latency in ms per line to FILE and prints:
  bench-healthz: requests=N p50_ms=X p99_ms=X max_ms=X non200=N errors=N reconnects=N
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
    args = ap.parse_args()

    ctx = client_context(args.cafile)
    request = request_bytes(args.path)
    latencies, non200, errors, reconnects = [], 0, 0, 0
    conn = None
    end = time.monotonic() + args.seconds
    next_send = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if next_send > now:
            time.sleep(next_send - now)
        next_send = max(next_send + args.interval, time.monotonic())
        try:
            if conn is None:
                conn = connect(ctx, args.port)
                reconnects += 1
            t0 = time.perf_counter()
            status, keep = get(conn, request)
            latencies.append((time.perf_counter() - t0) * 1000)
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
    if conn is not None:
        conn.close()

    with open(args.out, "w") as f:
        f.write("".join(f"{v:.3f}\n" for v in latencies))
    s = sorted(latencies)
    print(f"bench-healthz: requests={len(s)} p50_ms={percentile(s, 50):.2f} "
          f"p99_ms={percentile(s, 99):.2f} max_ms={(s[-1] if s else float('nan')):.2f} "
          f"non200={non200} errors={errors} reconnects={max(0, reconnects - 1)}")
    return 0 if s else 1


if __name__ == "__main__":
    sys.exit(main())
