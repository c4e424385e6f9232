-- wrk script for scripts/bench.sh: one fixed GET, sent as a static request (no per-request Lua,
-- so wrk spends as little of the shared CPU as it can).
-- Environment:
--   BENCH_PATH    request path (default /healthz)
--   BENCH_BEARER  when set: Authorization: Bearer <value>
--   BENCH_CLOSE   when 1: Connection: close, so every request opens a new TLS connection
-- Non-2xx answers and socket errors are read from wrk's own summary lines.
wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH") or "/healthz"

local bearer = os.getenv("BENCH_BEARER")
if bearer ~= nil and bearer ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. bearer
end
if os.getenv("BENCH_CLOSE") == "1" then
   wrk.headers["Connection"] = "close"
end
