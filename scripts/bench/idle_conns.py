"""Idle-connection memory for scripts/bench.sh: the server's RSS cost of idle TLS keep-alive
connections.

Opens COUNT TLS connections to 127.0.0.1:PORT one after another; each completes the handshake
and one GET /healthz, then stays open and idle. The server's RSS (VmRSS of /proc/PID/status,
summed over the --pid processes: portal-auth itself, or nginx's workers) is read before and
after, each time SETTLE seconds after the last connection activity. A few connections opened and
closed first make the server's one-time set-up (TLS, allocator arenas) part of the baseline.
Before closing, every connection is checked to still be open (a closed one reads EOF).

usage: idle_conns.py --port P --cafile CA --pid PID [--pid PID...] [--count N] [--label NAME]
prints: bench-idle: label=NAME opened=N failed=N alive=N rss_before_kib=N rss_after_kib=N
        kib_per_conn=X open_seconds=X
"""
import argparse
import resource
import ssl
import sys
import time

from tlsget import client_context, connect, get, request_bytes


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
    return total


def still_open(conn):
    conn.setblocking(False)
    try:
        return conn.recv(1) != b""  # data on an idle connection would be odd, but it is open
    except ssl.SSLWantReadError:
        return True  # nothing to read: open
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--pid", type=int, action="append", required=True)
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--label", default="server")
    args = ap.parse_args()

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < args.count + 64:
        print(f"idle_conns: ulimit -n is {soft}, {args.count + 64} needed", file=sys.stderr)
        return 2

    ctx = client_context(args.cafile)
    request = request_bytes("/healthz")
    for _ in range(args.warmup):
        conn = connect(ctx, args.port)
        get(conn, request)
        conn.close()
    time.sleep(args.settle)
    before = rss_kib(args.pid)

    conns, failed = [], 0
    first_error = ""
    t0 = time.monotonic()
    for _ in range(args.count):
        conn = None
        try:
            conn = connect(ctx, args.port)
            status, keep = get(conn, request)
            if status != 200 or not keep:
                raise ConnectionError(f"answer {status}, keep-alive {keep}")
            conns.append(conn)
        except (OSError, ValueError, IndexError) as e:
            failed += 1
            first_error = first_error or repr(e)
            if conn is not None:
                conn.close()
    open_seconds = time.monotonic() - t0
    time.sleep(args.settle)
    after = rss_kib(args.pid)
    alive = sum(still_open(c) for c in conns)
    for c in conns:
        c.close()

    per = (after - before) / len(conns) if conns else float("nan")
    print(f"bench-idle: label={args.label} opened={len(conns)} failed={failed} alive={alive} "
          f"rss_before_kib={before} rss_after_kib={after} kib_per_conn={per:.1f} "
          f"open_seconds={open_seconds:.1f}")
    if first_error:
        print(f"bench-idle: first failure: {first_error}", file=sys.stderr)
    return 0 if conns and not failed and alive == len(conns) else 1


if __name__ == "__main__":
    sys.exit(main())
