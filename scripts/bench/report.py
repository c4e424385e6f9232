"""Turns the raw results of scripts/bench.sh into markdown.

usage: report.py WORK_DIR OUT.md
Reads from WORK_DIR: runs.tsv (scenario, server, round, wrk output file, server CPU ticks,
CLK_TCK), meta.json (machine, versions, settings, resumption check), and, when present:
storm.tsv (S6: round, login wrk output, /healthz latencies alone, /healthz latencies under the
storm), idle.txt (idle_conns.py output), micro.json (Google Benchmark JSON output) and
memory.txt (portal_auth_session_memory output).
Writes the report to OUT.md and prints it.
"""
import json
import math
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
    ("S6-alone", "S1 alone on the S6 server (ln=14 directory, defaults)"),
    ("S6", "S1 during a login storm (valid logins, ln=14)"),
]
GOAL_STORM_RATIO = 0.4     # S1 under the storm / S1 alone, at least
GOAL_HEALTHZ_P99_MS = 20   # /healthz p99 under the storm, at most
GOAL_IDLE_KIB = 32         # portal-auth RSS per idle TLS connection, at most
GOAL_S2_STATIC_RATIO = 1.0  # portal-auth S2 / nginx serving the same body as a static file
SERVERS = ["portal-auth", "nginx"]
# Rows whose nginx side is not the scenario's request: S2's is the same body as a static file.
ROW_NAMES = {("S2", "nginx"): "S2 nginx (static file, same size): GET /s2-static.json"}
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


def parse_login(path):
    """The login side of S6: login.lua's status counts and wrk's summary."""
    text = open(path, errors="replace").read()
    out = {"text": text}
    m = re.search(r"bench-login: 2xx=(\d+) 503=(\d+) other=(\d+) codes=(\S*)", text)
    if m:
        out["2xx"], out["503"], out["other"] = (int(x) for x in m.groups()[:3])
        out["codes"] = m.group(4)
    fb = re.search(r"bench-login: first other: (.*)", text)
    out["first_other"] = fb.group(1).strip() if fb else ""
    rps = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    out["rps"] = float(rps.group(1)) if rps else None
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["sock"] = tuple(int(x) for x in se.groups()) if se else (0, 0, 0, 0)
    return out


def read_latencies(path):
    """healthz_probe.py's samples: (service, added by the correction), in ms."""
    service, added = [], []
    if os.path.exists(path):
        for line in open(path):
            ms, kind = line.split()
            (service if kind == "s" else added).append(float(ms))
    return service, added


def percentile(sorted_values, pct):
    """Nearest rank: the smallest value with at least pct % of the samples at or below it."""
    if not sorted_values:
        return None
    k = math.ceil(pct / 100 * len(sorted_values)) - 1
    return sorted_values[max(0, min(len(sorted_values) - 1, k))]


def lat_summary(values):
    s = sorted(values)
    return {"n": len(s), "p50": percentile(s, 50), "p99": percentile(s, 99),
            "max": s[-1] if s else None}


def fmt_lat(d):
    if not d["n"]:
        return "n/a"
    return f"{fmt_ms(d['p50'])} / {fmt_ms(d['p99'])} / {fmt_ms(d['max'])} ({d['n']:,})"


def fmt_corr(service, added):
    if not service:
        return "n/a"
    return f"{fmt_ms(lat_summary(service + added)['p99'])} (+{len(added):,})"


def verdict(ok):
    return "PASS" if ok else "MISS"


def storm_section(work, meta, runs, summary, bad_runs):
    """Scenario S6: S1 alone and under the login storm, per round and over all rounds."""
    path = os.path.join(work, "storm.tsv")
    rows = [line.rstrip("\n").split("\t") for line in open(path)] if os.path.exists(path) else []
    alone = {x["round"]: x for x in runs.get(("S6-alone", "portal-auth"), [])}
    storm = {x["round"]: x for x in runs.get(("S6", "portal-auth"), [])}
    if not rows:
        return []
    st = meta.get("storm", {})
    L = ["## S6: login storm", "",
         "| round | S1 alone req/s | S6 req/s (S1 under the storm) | ratio | /healthz alone "
         "p50 / p99 / max (n) | /healthz storm p50 / p99 / max (n) | /healthz storm corrected "
         "p99 (+added) | logins 2xx | 503 (shed) | other non-2xx | login req/s "
         "| login socket errors |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    all_alone, all_storm, all_added = [], [], []
    totals = {"2xx": 0, "503": 0, "other": 0}
    codes, first_other, login_rps, sock_total = [], "", [], [0, 0, 0, 0]
    for rnd, login_file, lat_alone_file, lat_storm_file in rows:
        rnd = int(rnd)
        lg = parse_login(login_file)
        la, _ = read_latencies(lat_alone_file)
        ls, ladd = read_latencies(lat_storm_file)
        all_alone += la
        all_storm += ls
        all_added += ladd
        if "2xx" not in lg:
            bad_runs.append(f"S6 round {rnd}: login wrk reported no status counts:\n"
                            + lg["text"][-600:])
            continue
        for k in totals:
            totals[k] += lg[k]
        if lg["codes"]:
            codes.append(lg["codes"])
        first_other = first_other or lg["first_other"]
        if lg["rps"] is not None:
            login_rps.append(lg["rps"])
        sock_total = [a + b for a, b in zip(sock_total, lg["sock"])]
        a, b = alone.get(rnd), storm.get(rnd)
        ratio = fmt_ratio(b["rps"] / a["rps"] if a and b and a["rps"] else None)
        sock = ", ".join(f"{n} {k}" for n, k in zip(lg["sock"], ("connect", "read", "write",
                                                                   "timeout")) if n) or "0"
        L.append(f"| {rnd} | {fmt_rate(a['rps']) if a else 'n/a'} | "
                 f"{fmt_rate(b['rps']) if b else 'n/a'} | {ratio} | {fmt_lat(lat_summary(la))} | "
                 f"{fmt_lat(lat_summary(ls))} | {fmt_corr(ls, ladd)} | {lg['2xx']:,} | "
                 f"{lg['503']:,} | {lg['other']:,} | "
                 f"{fmt_rate(lg['rps']) if lg['rps'] is not None else 'n/a'} | {sock} |")
    med_alone = statistics.median(x["rps"] for x in alone.values()) if alone else None
    med_storm = statistics.median(x["rps"] for x in storm.values()) if storm else None
    ratio = med_storm / med_alone if med_alone and med_storm is not None else None
    sa, ss = lat_summary(all_alone), lat_summary(all_storm)
    sc = lat_summary(all_storm + all_added)
    sock = ", ".join(f"{n} {k}" for n, k in zip(sock_total, ("connect", "read", "write",
                                                              "timeout")) if n) or "0"
    L.append(f"| **all ({len(rows)})** | **{fmt_rate(med_alone) if med_alone else 'n/a'}** | "
             f"**{fmt_rate(med_storm) if med_storm is not None else 'n/a'}** | "
             f"**{fmt_ratio(ratio)}** | {fmt_lat(sa)} | "
             f"{fmt_lat(ss)} | **{fmt_corr(all_storm, all_added)}** | {totals['2xx']:,} | "
             f"{totals['503']:,} | **{totals['other']:,}** | "
             f"{fmt_rate(statistics.median(login_rps)) if login_rps else 'n/a'} | {sock} |")
    p99 = sc["p99"]
    L += ["",
          f"- Goal S1 under the storm >= {GOAL_STORM_RATIO} x S1 alone: "
          + (f"{fmt_ratio(ratio)} — {verdict(ratio >= GOAL_STORM_RATIO)}" if ratio is not None
             else "n/a"),
          f"- Goal /healthz p99 under the storm <= {GOAL_HEALTHZ_P99_MS} ms (corrected): "
          + (f"{p99:.2f} ms — {verdict(p99 <= GOAL_HEALTHZ_P99_MS)} (service latency alone: "
             f"{ss['p99']:.2f} ms over {ss['n']:,} requests)" if p99 is not None else "n/a"),
          f"- Goal login side without non-2xx other than 503: {totals['other']:,}"
          + (f" ({','.join(codes)}; first: `{first_other}`)" if totals["other"] else "")
          + f" — {verdict(totals['other'] == 0)}; 503 (shed, expected): {totals['503']:,}; "
          f"2xx: {totals['2xx']:,}",
          "",
          f"- Server: a second portal-auth with its defaults (`--threads` = hardware threads = "
          f"{st.get('threads') or '?'}, no `--audit-log`) plus a directory of the bench's shape "
          f"whose hashes all use scrypt ln={st.get('ln', '?')} (r=8, p=1); the first "
          f"{st.get('accounts', '?')} customers have their own password, the others share one "
          "(`gen_directory.py --ln --own-passwords`). Extra flags: "
          + (f"`{st['flags']}`" if st.get("flags") else "none")
          + " (`BENCH_HASH_THREADS` / `BENCH_HASH_QUEUE`).",
          f"- Per round: S1 alone (`wrk -t1 -c{meta['connections']} -d{meta['duration']}s`, "
          "bearer of the owner of team 1 on this server), then the same under the storm. The "
          f"storm: `wrk -t1 -c{st.get('login_connections', '?')} --timeout 10s` with "
          "`scripts/bench/login.lua`, valid logins rotating over those customers, started 0.5 s "
          f"before the S1 run and lasting {meta['duration']} + 1 s so that it covers the whole "
          "S1 run; its statuses are counted by the script (2xx, 503, other). **ratio**: S6 "
          "req/s over S1-alone req/s of the same round; **all**: median over median.",
          "- /healthz: `scripts/bench/healthz_probe.py` (Python, one keep-alive TLS connection "
          "opened before the storm, a GET every 10 ms, one at a time) during both S1 runs of "
          "each round. p50 / p99 / max: service latency, from sending to the whole answer "
          "(n = requests). **corrected p99**: the same samples plus, for each answer slower than "
          "10 ms, the waits of the requests that were due meanwhile and could not be sent (L − "
          "10 ms, L − 20 ms, … ≥ 10 ms; + = how many were added), so that a stall counts for "
          "the time it lasted, not once; the goal is checked on it. The **all** row pools every "
          "sample of every round."]
    if st.get("stderr"):
        L.append(f"- S6 portal-auth stderr during the runs: {st['stderr']}")
    summary["S6"] = {"s1_alone_rps_median": med_alone, "s1_storm_rps_median": med_storm,
                     "ratio": ratio, "healthz_storm": ss, "healthz_storm_corrected": sc,
                     "healthz_alone": sa,
                     "login_status": totals, "login_socket_errors": sock_total}
    return L


def idle_section(work, meta, summary, bad_runs):
    """Idle TLS keep-alive connections: RSS growth per connection, portal-auth and nginx."""
    path = os.path.join(work, "idle.txt")
    if not os.path.exists(path):
        return []
    text = open(path).read()
    found = re.findall(r"bench-idle: label=(\S+) opened=(\d+) failed=(\d+) alive=(\d+) "
                       r"rss_before_kib=(\d+) rss_after_kib=(\d+) kib_per_conn=(\S+) "
                       r"open_seconds=(\S+)", text)
    if not found and not text.strip():
        return []
    L = ["## Idle TLS connections", "",
         "| server | connections opened / still open at the end | RSS before | RSS after "
         "| KiB per idle connection | goal |",
         "|---|---:|---:|---:|---:|---|"]
    for label, opened, failed, alive, before, after, per, secs in found:
        opened, failed, alive = int(opened), int(failed), int(alive)
        per_f = float(per)
        goal = (f"<= {GOAL_IDLE_KIB} KiB per idle connection: "
                f"{verdict(per_f <= GOAL_IDLE_KIB)}") if label == "portal-auth" else "reference"
        L.append(f"| {label} | {opened:,} / {alive:,}"
                 + (f" ({failed:,} failed to open)" if failed else "")
                 + f" | {int(before) / 1024:.1f} MiB | {int(after) / 1024:.1f} MiB | "
                 f"**{per_f:.1f}** | {goal} |")
        summary[f"idle/{label}"] = {"opened": opened, "failed": failed, "alive": alive,
                                    "rss_before_kib": int(before), "rss_after_kib": int(after),
                                    "kib_per_conn": per_f, "open_seconds": float(secs)}
        if failed or alive != opened:
            bad_runs.append(f"idle {label}: {failed} connections failed to open, "
                            f"{opened - alive} closed before the end")
    idle = meta.get("idle", {})
    L += ["",
          f"- `scripts/bench/idle_conns.py` (Python ssl + socket) opens {idle.get('count', '?'):,} "
          "TLS connections one after another; each completes its handshake and one `GET "
          "/healthz`, then stays open and idle. RSS is `VmRSS` of `/proc/PID/status` (the "
          "nginx worker's for nginx), read 1 s after the last activity, before and after; "
          "**KiB per idle connection** = (after - before) / connections. 8 connections opened "
          "and closed first put one-time set-up into the baseline.",
          f"- portal-auth: a fresh server (`--threads {meta['threads']} --max-connections "
          f"{idle.get('count', 0) + 1000} --idle-timeout 600`, the ln=4 bench directory); nginx: "
          "the worker that served the HTTP scenarios, `keepalive_timeout 75s`."]
    for line in text.splitlines():
        if not line.startswith("bench-idle: label="):
            L.append(f"- idle_conns.py: {line}")
    if idle.get("stderr"):
        L.append(f"- idle portal-auth stderr: {idle['stderr']}")
    return L


def fmt_ms(v):
    if v is None:
        return "n/a"
    return f"{v * 1000:.0f} µs" if v < 1 else f"{v:.2f} ms"


def fmt_rate(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"  # a collapsed S6 can be below 1 req/s


def fmt_ratio(v):
    return "n/a" if v is None else f"{v:.3f}" if v >= 0.001 else f"{v:.1e}"


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
            name = ROW_NAMES.get((sid, server), f"{sid} {desc}")
            L.append(f"| {name} | {server} | {fmt_rate(med)} ({fmt_rate(min(rps))}–"
                     f"{fmt_rate(max(rps))}) | {fmt_ms(p50)} | {fmt_ms(p99)} | "
                     f"{'; '.join(errs) if errs else '0'} | {ratio} | {cpu_k:.4f} |")
            summary[f"{sid}/{server}"] = {"rps_median": med, "runs": len(rs),
                                          "cpu_s_per_1k": cpu_k, "non2xx": non2xx,
                                          "socket_errors": sock}

    # The S2 goal, from the medians of this run only (the two rows alternate inside each round).
    goal_lines = []
    s2_pa, s2_ng = summary.get("S2/portal-auth"), summary.get("S2/nginx")
    if s2_pa and s2_ng:
        s2_ratio = s2_pa["rps_median"] / s2_ng["rps_median"]
        size = meta.get("s2_body_bytes")
        goal_lines = [
            f"- S2 goal: portal-auth S2 >= {GOAL_S2_STATIC_RATIO:.1f} x nginx serving a static "
            f"file of the same size over the same TLS: {s2_ratio:.3f} — "
            f"{verdict(s2_ratio >= GOAL_S2_STATIC_RATIO)} ({fmt_rate(s2_pa['rps_median'])} / "
            f"{fmt_rate(s2_ng['rps_median'])} req/s, medians"
            + (f"; body {size:,} bytes" if size else "") + ")",
            # s per 1k requests = ms per request; µs reads better at these rates.
            f"- S2 server CPU per request: portal-auth {s2_pa['cpu_s_per_1k'] * 1000:.1f} µs, "
            f"nginx (static file) {s2_ng['cpu_s_per_1k'] * 1000:.1f} µs"
            + (f" ({s2_pa['cpu_s_per_1k'] / s2_ng['cpu_s_per_1k']:.2f} x)"
               if s2_ng["cpu_s_per_1k"] else ""),
        ]
        summary["S2/goal"] = {"ratio": s2_ratio, "goal": GOAL_S2_STATIC_RATIO,
                              "pass": s2_ratio >= GOAL_S2_STATIC_RATIO, "body_bytes": size}

    # The sections first: they add their failures to bad_runs, listed under the main table.
    sections = [storm_section(work, meta, runs, summary, bad_runs),
                idle_section(work, meta, summary, bad_runs)]
    main_rows = len(L) > 2
    nginx_rows = any(server == "nginx" for _, server in runs)
    pa_rows = any(server == "portal-auth" and not sid.startswith("S6") for sid, server in runs)

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
    if ("S6", "portal-auth") in runs:
        notes.append("- S6 rows: the CPU column divides all the S6 server's CPU time, the "
                     "logins' scrypt included, by the S1 requests alone.")
    if pa_rows:
        notes.append(f"- portal-auth: `--threads {meta['threads']}`, audit log to a file in the work "
                     "directory (default `--audit-fsync batch`), and "
                     "**`--impersonation-issue-limit 0`** for S3/S4: at the default of 30 tokens "
                     "per actor per minute nearly every request of those scenarios would be a "
                     "429. One server process serves S0–S5; the limit is consulted only by the "
                     "impersonation endpoints. S6 has a server of its own (below).")
    if nginx_rows or "idle/nginx" in summary:
        notes.append(f"- nginx: {meta['nginx_version']}, 1 worker, `return 200` of a "
                     f"{meta['health_body_bytes']}-byte JSON body (the size of portal-auth's "
                     "`/healthz` answer) with the same `Cache-Control`, "
                     "`Strict-Transport-Security` and `X-Content-Type-Options` headers, same "
                     "certificate, TLS 1.2/1.3, session tickets on "
                     "(`scripts/bench/nginx.conf.template`).")
    if ("S2", "nginx") in runs:
        size = meta.get("s2_body_bytes")
        notes.append("- S2 nginx (static file, same size): portal-auth's S2 answer"
                     + (f" ({size:,} bytes)" if size else "")
                     + ", fetched once with the bench's bearer before the runs, written to the "
                     "work directory and served by the same nginx server block (same certificate "
                     "and TLS settings as nginx S0) as `/s2-static.json` from disk: "
                     "`application/json`, the same three extra headers, nginx's defaults "
                     "otherwise (its own `ETag`, `Last-Modified`, `Accept-Ranges`); checked "
                     "byte for byte against portal-auth's body before the runs. No bearer.")
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
    run_parts = meta.get("parts", [])
    H.append(f"- mode: {meta['mode']}; parts: {', '.join(run_parts) if run_parts else 'all'}; "
             "directory: 1,000 teams, 20,000 customers, 25,000 profiles (scrypt ln=4"
             + (f"; S6: ln={meta['storm']['ln']}" if "S6" in run_parts else "")
             + "); certificate ECDSA P-256; everything on 127.0.0.1, wrk and the servers share "
             "the machine's cores")
    H.append("")
    text = H
    if main_rows or bad_runs:
        text += ["## HTTP scenarios", ""] + (L + [""] if main_rows else []) \
            + (goal_lines + [""] if goal_lines else []) + notes
    for section in sections:
        if section:
            text += [""] + section

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
                 "Handle*: the `request_handler` awaited by one coroutine in batches of 100 requests, "
                 "without sockets or TLS; per request read items/s (time/op is per batch); each "
                 "request is a copy of the same request (BM_RequestCopy prices that copy). "
                 "BM_SessionLookupAwaitable: `memory_store::find_by_access_token` awaited in "
                 "batches of 1,000 over 1,000 sessions (compare its items/s with "
                 "BM_SessionLookup/1000).",
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
