-- Shared by the wrk scripts of scripts/bench-ingest: per-thread ids, the 10-attribute
-- customer, status counting and a machine-readable result line.
--
-- wrk runs one Lua state per thread. setup() (main state) hands each thread its number as
-- the global `tid`; request()/response() then run in that thread's state, and done() (main
-- state again) reads every thread's counters back with thread:get().
--
-- Environment read here: BENCH_AUTH (the Authorization header), BENCH_WORKSPACE (path).

local M = {}

local threads = {}

M.workspace = os.getenv("BENCH_WORKSPACE") or "bench"

-- "Basic base64(workspace:key)", computed by the driver.
function M.auth_header()
  local auth = os.getenv("BENCH_AUTH")
  if not auth or auth == "" then error("BENCH_AUTH is not set") end
  return auth
end

local first_names = { "Amira", "Omar", "Lina", "Yusuf", "Sara", "Karim", "Noor", "Hadi" }
local last_names = { "Haddad", "Khalil", "Nasser", "Saleh", "Farouk", "Mansour", "Aziz" }
local cities = { "Dubai", "Abu Dhabi", "Sharjah", "Riyadh", "Doha", "Muscat", "Cairo" }
local plans = { "free", "basic", "pro", "enterprise" }
local countries = { "AE", "SA", "QA", "OM", "EG" }
local languages = { "ar", "en", "fr", "hi" }

local function pick(list, n) return list[n % #list + 1] end

-- The 10 attributes of customer number n of thread t (email unique per (t, n)).
function M.attributes(prefix, t, n)
  return string.format(
    '{"email":"%s%d-t%d@example.com","mobile":"+9715%08d","first_name":"%s","last_name":"%s",'
      .. '"city":"%s","plan":"%s","age":%d,"vip":%s,"country":"%s","language":"%s"}',
    prefix, n, t, (t * 7919 + n * 104729) % 100000000, pick(first_names, n), pick(last_names, n + t),
    pick(cities, n), pick(plans, n + 1), 18 + n % 60, (n % 7 == 0) and "true" or "false",
    pick(countries, n), pick(languages, n))
end

-- Thread bookkeeping: call from the script's setup().
function M.setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- Per-thread state: call from the script's init().
function M.init()
  statuses = {}
  counter = 0
  samples = {}
  nsamples = 0
end

-- Count every status; keep the first few non-200 bodies to explain failures.
function M.response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status ~= 200 and nsamples < 3 then
    nsamples = nsamples + 1
    samples[nsamples] = key .. " " .. string.sub(body or "", 1, 300)
  end
end

-- One line for the bash driver: RESULT key=value …, then STATUS and SAMPLE lines.
function M.done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local merged, all_samples = {}, {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      merged[status] = (merged[status] or 0) + count
    end
    for _, sample in ipairs(thread:get("samples") or {}) do table.insert(all_samples, sample) end
  end
  local ok, counted = merged["200"] or 0, 0
  for _, count in pairs(merged) do counted = counted + count end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      .. "status_counted=%d status_200=%d non200=%d wrk_non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, counted, ok, counted - ok, e.status, e.connect, e.read, e.write, e.timeout))
  for status, count in pairs(merged) do io.write(string.format("STATUS %s %d\n", status, count)) end
  for _, sample in ipairs(all_samples) do io.write("SAMPLE " .. sample:gsub("\n", " ") .. "\n") end
end

return M
