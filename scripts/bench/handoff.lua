-- wrk script for scripts/bench.sh, scenario S4: the whole impersonation hand-off.
-- Requests alternate between GET /api/public/coworkers/{id}/impersonate (with the owner's bearer)
-- and POST /api/public/auth/login/{token}, where the token is the one parsed from the previous
-- impersonation answer (a queue shared by the thread's connections: a token is used once).
-- Environment:
--   BENCH_BEARER   the owner's access token (required)
--   BENCH_TARGETS  coworker profile ids, separated by commas (required)
-- done() prints one line that scripts/bench.sh reads:
--   bench-handoff: issued=N exchanged=N non2xx=N unparsed=N
-- (unparsed: a 2xx answer that was neither a token nor a session.)

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local bearer = os.getenv("BENCH_BEARER")
   local targets = os.getenv("BENCH_TARGETS")
   if bearer == nil or bearer == "" or targets == nil or targets == "" then
      error("handoff.lua: BENCH_BEARER and BENCH_TARGETS must be set")
   end
   auth = { ["Authorization"] = "Bearer " .. bearer }
   impersonate_paths = {}
   for id in string.gmatch(targets, "%d+") do
      table.insert(impersonate_paths, "/api/public/coworkers/" .. id .. "/impersonate")
   end
   next_target = 0
   queue = {}
   queue_head, queue_tail = 1, 0
   issued, exchanged, non2xx, unparsed = 0, 0, 0, 0
   first_bad = ""
end

function request()
   if queue_head <= queue_tail then
      local token = queue[queue_head]
      queue[queue_head] = nil
      queue_head = queue_head + 1
      return wrk.format("POST", "/api/public/auth/login/" .. token, {})
   end
   next_target = next_target % #impersonate_paths + 1
   return wrk.format("GET", impersonate_paths[next_target], auth)
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_bad == "" then
         first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 160)
      end
      return
   end
   local token = string.match(body, '"token"%s*:%s*"([^"]+)"')
   if token ~= nil then
      issued = issued + 1
      queue_tail = queue_tail + 1
      queue[queue_tail] = token
   elseif string.find(body, '"accessToken"', 1, true) then
      exchanged = exchanged + 1
   else
      unparsed = unparsed + 1
   end
end

function done(summary, latency, requests)
   local t = { issued = 0, exchanged = 0, non2xx = 0, unparsed = 0 }
   local sample = ""
   for _, thread in ipairs(threads) do
      for k, _ in pairs(t) do
         t[k] = t[k] + (thread:get(k) or 0)
      end
      local first = thread:get("first_bad") or ""
      if sample == "" then
         sample = first
      end
   end
   io.write(string.format("bench-handoff: issued=%d exchanged=%d non2xx=%d unparsed=%d\n",
      t.issued, t.exchanged, t.non2xx, t.unparsed))
   if sample ~= "" then
      io.write("bench-handoff: first non-2xx: " .. sample .. "\n")
   end
end
