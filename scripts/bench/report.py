"""Turns the raw results of scripts/bench.sh into markdown.

usage: report.py WORK_DIR OUT.md
Reads from WORK_DIR: runs.tsv (scenario, server, round, wrk output file, server CPU ticks,
CLK_TCK), meta.json (machine, versions, settings, resumption check), micro.json (Google
Benchmark JSON output, optional) and memory.txt (portal_auth_session_memory output, optional).
Writes the report to OUT.md and prints it.
"""
import json
import os
import re
import statistics
import sys

SCENARIOS = [
    ("S0", "GET /healthz"),
    ("S1", "GET /api/public/auth/session"),
    ("S2", "GET /api/public/coworkers/profiles"),
    ("S3", "GET /api/public/coworkers/{id}/impersonate"),
    ("S4", "hand-off: impersonate + POST /api/public/auth/login/{token}"),
    ("S5", "GET /healthz, Connection: close (new TLS connection each)"),
]
SERVERS = ["portal-auth", "nginx"]
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def latency_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def parse_wrk(path):
    text = open(path, errors="replace").read()
    out = {"ok": False, "text": text}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", text, re.M)
    rps = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    if not m or not rps:
        return out
    out["ok"] = True
    out["requests"] = int(m.group(1))
    out["rps"] = float(rps.group(1))
    for pct in ("50", "99"):
        lm = re.search(rf"^\s*{pct}(?:\.000)?%\s+(\S+)", text, re.M)
        out[f"p{pct}"] = latency_ms(lm.group(1)) if lm else None
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["sock"] = tuple(int(x) for x in se.groups()) if se else (0, 0, 0, 0)
    nm = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non2xx"] = int(nm.group(1)) if nm else 0
    hm = re.search(r"bench-handoff: issued=(\d+) exchanged=(\d+) non2xx=(\d+) unparsed=(\d+)", text)
    if hm:
        out["handoff"] = tuple(int(x) for x in hm.groups())
        fb = re.search(r"bench-handoff: first non-2xx: (.*)", text)
        out["handoff_first_bad"] = fb.group(1) if fb else ""
    return out


def fmt_ms(v):
    if v is None:
        return "n/a"
    return f"{v * 1000:.0f} µs" if v < 1 else f"{v:.2f} ms"


def fmt_rate(v):
    return f"{v:,.0f}"


def micro_table(path, version):
    data = json.load(open(path))
    rows = ["| benchmark | time/op | CPU/op | items/s | notes |", "|---|---:|---:|---:|---|"]
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        f = scale.get(b.get("time_unit", "ns"), 1.0)
        real, cpu = b["real_time"] * f, b["cpu_time"] * f
        ips = b.get("items_per_second")
        extra = []
        for key in ("sessions", "rows", "body_bytes"):
            if key in b:
                extra.append(f"{key}={b[key]:,.0f}")
        if b.get("error_occurred"):
            extra.append("ERROR: " + b.get("error_message", ""))
        rows.append(f"| {b['name']} | {real:,.1f} ns | {cpu:,.1f} ns | "
                    f"{(f'{ips / 1e6:,.2f} M' if ips else 'n/a')} | {', '.join(extra)} |")
    ctx = data.get("context", {})
    head = (f"Google Benchmark {ctx.get('library_version') or version} (library build: "
            f"{ctx.get('library_build_type', '?')}), {ctx.get('num_cpus', '?')} CPUs at "
            f"{ctx.get('mhz_per_cpu', '?')} MHz, load average "
            f"{', '.join(f'{x:.2f}' for x in ctx.get('load_avg', []))}")
    return head, rows


def main():
    work, out_md = sys.argv[1], sys.argv[2]
    meta = json.load(open(os.path.join(work, "meta.json")))
    runs = {}
    bad_runs = []
    for line in open(os.path.join(work, "runs.tsv")):
        scenario, server, rnd, wrk_file, ticks, clk_tck = line.rstrip("\n").split("\t")
        r = parse_wrk(wrk_file)
        if not r["ok"]:
            bad_runs.append(f"{scenario} {server} round {rnd}: wrk reported nothing:\n"
                            + r["text"][-600:])
            continue
        r["cpu_s"] = int(ticks) / int(clk_tck)
        r["round"] = int(rnd)
        runs.setdefault((scenario, server), []).append(r)

    base = runs.get(("S0", "nginx"))
    base_rps = statistics.median(x["rps"] for x in base) if base else None
    L = ["| scenario | server | req/s median (min–max) | p50 | p99 | errors | ratio to nginx S0 "
         "| server CPU s per 1k req |",
         "|---|---|---:|---:|---:|---|---:|---:|"]
    summary = {}
    for sid, desc in SCENARIOS:
        for server in SERVERS:
            rs = runs.get((sid, server))
            if not rs:
                continue
            rps = [x["rps"] for x in rs]
            med = statistics.median(rps)
            p50 = statistics.median(x["p50"] for x in rs if x["p50"] is not None) \
                if any(x["p50"] is not None for x in rs) else None
            p99 = statistics.median(x["p99"] for x in rs if x["p99"] is not None) \
                if any(x["p99"] is not None for x in rs) else None
            non2xx = sum(x["non2xx"] for x in rs)
            sock = [sum(x["sock"][i] for x in rs) for i in range(4)]
            errs = []
            if non2xx:
                errs.append(f"{non2xx:,} non-2xx")
            if sum(sock):
                errs.append("socket " + ", ".join(
                    f"{n} {k}" for n, k in zip(sock, ("connect", "read", "write", "timeout")) if n))
            cpu_k = statistics.median(x["cpu_s"] / x["requests"] * 1000 for x in rs
                                      if x["requests"])
            ratio = f"{med / base_rps:.2f}" if base_rps else "n/a"
            L.append(f"| {sid} {desc} | {server} | {fmt_rate(med)} ({fmt_rate(min(rps))}–"
                     f"{fmt_rate(max(rps))}) | {fmt_ms(p50)} | {fmt_ms(p99)} | "
                     f"{'; '.join(errs) if errs else '0'} | {ratio} | {cpu_k:.4f} |")
            summary[f"{sid}/{server}"] = {"rps_median": med, "runs": len(rs),
                                          "cpu_s_per_1k": cpu_k, "non2xx": non2xx,
                                          "socket_errors": sock}

    notes = []
    notes.append(f"- {meta['runs']} runs per row (`wrk -t1 -c{meta['connections']} "
                 f"-d{meta['duration']}s --latency`), in {meta['runs']} rounds of every scenario; "
                 "portal-auth and nginx alternate inside each round (their order flips from one "
                 "round to the next). p50/p99: medians over the runs of wrk's latency distribution.")
    notes.append("- **ratio to nginx S0**: the row's median req/s divided by the median req/s of "
                 "nginx S0 in this same run. **server CPU s per 1k req**: the server's "
                 "utime+stime (`/proc/PID/stat`, nginx master + worker) over a run divided by "
                 "its completed requests × 1000, median over runs (1 s per 1k = 1 ms per request).")
    notes.append("- **errors**: sums over the runs of wrk's `Non-2xx or 3xx responses` (counts "
                 "status ≥ 400) and `Socket errors` lines.")
    notes.append(f"- portal-auth: `--threads {meta['threads']}`, audit log to a file in the work "
                 "directory (default `--audit-fsync batch`), and **`--impersonation-issue-limit 0`** "
                 "for S3/S4: at the default of 30 tokens per actor per minute nearly every "
                 "request of those scenarios would be a 429. One server process serves all "
                 "scenarios; the limit is consulted only by the impersonation endpoints.")
    notes.append(f"- nginx: {meta['nginx_version']}, 1 worker, `return 200` of a "
                 f"{meta['health_body_bytes']}-byte JSON body (the size of portal-auth's "
                 "`/healthz` answer) with the same `Cache-Control`, `Strict-Transport-Security` "
                 "and `X-Content-Type-Options` headers, same certificate, TLS 1.2/1.3, session "
                 "tickets on (`scripts/bench/nginx.conf.template`).")
    s4 = runs.get(("S4", "portal-auth"), [])
    if s4:
        parts = []
        for x in s4:
            h = x.get("handoff")
            if h:
                parts.append(f"{h[0]:,} issued / {h[1]:,} exchanged / {h[2]:,} non-2xx"
                             + (f" / {h[3]:,} unparsed" if h[3] else ""))
        if parts:
            ids = meta["targets"].split(",")
            notes.append("- S4 (`scripts/bench/handoff.lua`, the owner of team 1 rotating over "
                         f"its {len(ids)} coworker profiles {ids[0]}…{ids[-1]}; S3 uses "
                         f"{ids[0]} only) per run: " + "; ".join(parts) + ". Each exchange "
                         "answers a full session as the coworker, so a hand-off is two requests."
                         + (f" First non-2xx: `{s4[0].get('handoff_first_bad')}`"
                            if any(x.get("handoff_first_bad") for x in s4) else ""))
    res = meta.get("resumption", {})
    if res:
        notes.append("- TLS session resumption, checked with `openssl s_client -sess_out` then "
                     "`-sess_in` (`Reused` = resumed): " + "; ".join(
                         f"{k}: {v}" for k, v in res.items()) +
                     ". wrk resumes the session when it reconnects, so S5 measures mostly "
                     "resumed handshakes where the server allows it.")
    if meta.get("server_stderr"):
        notes.append(f"- portal-auth stderr during the run (besides start-up): "
                     f"{meta['server_stderr']}")
    for b in bad_runs:
        notes.append("- FAILED RUN: " + b.replace("\n", " "))

    H = ["# portal-auth benchmark", ""]
    H.append(f"- date: {meta['date']}")
    H.append(f"- machine: `nproc` = {meta['nproc']}, {meta['cpu_model']}, {meta['mem']}, "
             f"kernel {meta['kernel']}; load average before: {meta['load_before']}, "
             f"after: {meta.get('load_after', '?')}")
    H.append(f"- versions: {meta['wrk_version']}; {meta['nginx_version']}; {meta['openssl_version']}; "
             f"{meta['compiler']}")
    H.append(f"- mode: {meta['mode']}; directory: 1,000 teams, 20,000 customers, 25,000 profiles "
             "(scrypt ln=4); certificate ECDSA P-256; everything on 127.0.0.1, wrk and the "
             "servers share the machine's cores")
    H.append("")
    H.append("## HTTP scenarios")
    H.append("")
    text = H + L + [""] + notes

    micro_path = os.path.join(work, "micro.json")
    if os.path.exists(micro_path):
        head, rows = micro_table(micro_path, meta.get("benchmark_version", "?"))
        text += ["", "## Micro-benchmarks (`test/bench`, `portal_auth_micro`)", "",
                 f"{head}; `--benchmark_min_time={meta.get('micro_min_time', '?')}`.", ""] + rows
        text += ["",
                 "- Session lookup/create at 1k and 1M sessions: a store filled once per size; "
                 "lookups walk its tokens in a shuffled order, so at 1M most of them miss the "
                 "CPU caches. Creates into a store of n sessions revoke their new sessions every "
                 "1,024 (not timed), so it stays between n and n + 1,024.",
                 "- JWT: HS256 over impersonation-token claims. Listing: "
                 "`auth_service::list_profiles` for the owner of team 1 in the bench directory. "
                 "Router: `router::match` over the README's API table (items = matches). "
                 "Handle*: `request_handler::handle` without sockets or TLS.",
                 "- The Debian package of Google Benchmark is built without `NDEBUG`, hence its "
                 "\"Library was built as DEBUG\" warning; that concerns the harness only, the code "
                 "measured is this project's Release build."]
    mem_path = os.path.join(work, "memory.txt")
    if os.path.exists(mem_path):
        mt = open(mem_path).read()
        m = re.search(r"sessions=(\d+) baseline_kib=(\d+) peak_kib=(\d+) growth_kib=(\d+) "
                      r"bytes_per_session=([\d.]+) create_seconds=([\d.]+)", mt)
        if m:
            n, basek, peak, growth, per, secs = m.groups()
            text += ["", "## Memory", "",
                     f"{int(n):,} sessions: {int(growth) / 1024:.0f} MiB RSS (VmHWM {int(peak) / 1024:.1f} MiB "
                     f"minus a baseline of {int(basek) / 1024:.1f} MiB; {float(per):.0f} bytes per "
                     f"session; created through `session_store::create` in {float(secs):.1f} s, "
                     f"`portal_auth_session_memory`)."]
    with open(out_md, "w") as f:
        f.write("\n".join(text) + "\n")
    with open(os.path.join(work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("\n".join(text))
    return 1 if bad_runs else 0


if __name__ == "__main__":
    sys.exit(main())
