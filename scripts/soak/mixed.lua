-- wrk script for scripts/soak.sh: rotates GET /healthz, GET /api/public/auth/session and
-- GET /api/public/coworkers/profiles (the last two with the bearer from $BEARER), counts every
-- response outside 2xx and reports the totals in done() as one machine-readable line:
--   soak-wrk: requests=N non2xx=N connect=N read=N write=N timeout=N status=N duration_us=N rps=X
-- Usage: BEARER=<accessToken> wrk -t1 -c32 -d60s -s scripts/soak/mixed.lua https://127.0.0.1:PORT

local threads = {}

-- Runs in the main Lua state once per wrk thread; done() reads each thread's counters back.
function setup(thread)
   table.insert(threads, thread)
end

-- Runs in each thread's own Lua state.
function init(args)
   local bearer = os.getenv("BEARER")
   if bearer == nil or bearer == "" then
      error("mixed.lua: the BEARER environment variable is not set")
   end
   local auth = { ["Authorization"] = "Bearer " .. bearer }
   requests_list = {
      wrk.format("GET", "/healthz"),
      wrk.format("GET", "/api/public/auth/session", auth),
      wrk.format("GET", "/api/public/coworkers/profiles", auth),
   }
   next_index = 0
   non2xx = 0
   first_bad = ""
end

function request()
   next_index = next_index % #requests_list + 1
   return requests_list[next_index]
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_bad == "" then
         first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200)
      end
   end
end

function done(summary, latency, requests)
   local bad = 0
   local sample = ""
   for _, thread in ipairs(threads) do
      bad = bad + (thread:get("non2xx") or 0)
      local first = thread:get("first_bad") or ""
      if sample == "" and first ~= "" then
         sample = first
      end
   end
   local e = summary.errors
   local rps = 0
   if summary.duration > 0 then
      rps = summary.requests / (summary.duration / 1e6)
   end
   io.write(string.format(
      "soak-wrk: requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d status=%d duration_us=%d rps=%.1f\n",
      summary.requests, bad, e.connect, e.read, e.write, e.timeout, e.status,
      summary.duration, rps))
   io.write(string.format("soak-wrk: latency_ms p50=%.2f p99=%.2f max=%.2f\n",
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
   if sample ~= "" then
      io.write("soak-wrk: first non-2xx: " .. sample .. "\n")
   end
end
