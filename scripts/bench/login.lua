-- wrk script for scripts/bench.sh, scenario S6 (login storm): valid logins,
-- POST /api/public/auth/login, rotating over the bench directory's customers that have their own
-- password (c<id>@bench.test / pw-<id>, see gen_directory.py --own-passwords).
-- Environment:
--   BENCH_LOGIN_FIRST  first customer id (default 100001)
--   BENCH_LOGIN_COUNT  how many customers from there (default 32)
-- Statuses are counted here because wrk's own "Non-2xx" line cannot tell a 503 (load shed,
-- expected under the storm) from any other failure. done() prints one line for scripts/bench.sh:
--   bench-login: 2xx=N 503=N other=N codes=<status>:<count>,...
-- and, when there was one, the first answer that was neither 2xx nor 503.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local first = tonumber(os.getenv("BENCH_LOGIN_FIRST") or "100001")
   local count = tonumber(os.getenv("BENCH_LOGIN_COUNT") or "32")
   if first == nil or count == nil or count < 1 then
      error("login.lua: BENCH_LOGIN_FIRST and BENCH_LOGIN_COUNT must be numbers")
   end
   local headers = { ["Content-Type"] = "application/json" }
   login_requests = {}
   for id = first, first + count - 1 do
      local body = string.format('{"email":"c%d@bench.test","password":"pw-%d"}', id, id)
      table.insert(login_requests, wrk.format("POST", "/api/public/auth/login", headers, body))
   end
   next_request = 0
   n2xx, n503, nother = 0, 0, 0
   -- wrk copies only scalars between threads, so the other codes travel as a string.
   other_codes = {}
   other_text = ""
   first_bad = ""
end

function request()
   next_request = next_request % #login_requests + 1
   return login_requests[next_request]
end

function response(status, headers, body)
   if status >= 200 and status <= 299 then
      n2xx = n2xx + 1
   elseif status == 503 then
      n503 = n503 + 1
   else
      nother = nother + 1
      other_codes[status] = (other_codes[status] or 0) + 1
      local parts = {}
      for code, n in pairs(other_codes) do
         table.insert(parts, code .. ":" .. n)
      end
      table.sort(parts)
      other_text = table.concat(parts, ",")
      if first_bad == "" then
         first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 160)
      end
   end
end

function done(summary, latency, requests)
   local t = { n2xx = 0, n503 = 0, nother = 0 }
   local codes, sample = {}, ""
   for _, thread in ipairs(threads) do
      for k, _ in pairs(t) do
         t[k] = t[k] + (thread:get(k) or 0)
      end
      local text = thread:get("other_text") or ""
      if text ~= "" then
         table.insert(codes, text)
      end
      if sample == "" then
         sample = thread:get("first_bad") or ""
      end
   end
   io.write(string.format("bench-login: 2xx=%d 503=%d other=%d codes=%s\n",
      t.n2xx, t.n503, t.nother, table.concat(codes, ",")))
   if sample ~= "" then
      io.write("bench-login: first other: " .. sample:gsub("[\r\n]", " ") .. "\n")
   end
end
