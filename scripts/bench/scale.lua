-- scripts/bench-scale's requests, chosen by BENCH_MODE:
--   import  POST /v1/transition/{ws}: 100 new customers a request, ids "s<round>-t<thread>-<n>",
--           each thread stopping after BENCH_PER_THREAD requests (BENCH_ROUND names the round)
--   read    GET  …/customers/{id}: a random id among the rounds imported so far
--   lookup  GET  …/customers?email=…: the e-mail of such a random customer
--   erase   POST /v1/opengdpr_requests/{ws}: erasure of one customer of round 0 a request
-- Rounds, threads and requests per thread of the import: BENCH_ROUNDS, BENCH_IMPORT_THREADS,
-- BENCH_PER_THREAD (the same for every round).
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench") .. "/?.lua;" .. package.path
local bench = require("common")

local mode = os.getenv("BENCH_MODE") or "import"
local round = tonumber(os.getenv("BENCH_ROUND") or "0")
local rounds = tonumber(os.getenv("BENCH_ROUNDS") or "1")
local import_threads = tonumber(os.getenv("BENCH_IMPORT_THREADS") or "2")
local per_thread = tonumber(os.getenv("BENCH_PER_THREAD") or "1000")
local batch = 100
local auth = bench.auth_header()

function setup(thread) bench.setup(thread) end
function init(args)
  bench.init()
  sent = 0
  math.randomseed(os.time() * 100 + tid)
end
done = bench.done

-- A thread that has sent its share stops and leaves a file in BENCH_DONE_DIR: wrk itself runs
-- until its duration ends, so the driver interrupts it once every thread's file is there.
function response(status, headers, body)
  bench.response(status, headers, body)
  if mode == "import" and sent >= per_thread and not finished then
    finished = true
    local marker = io.open((os.getenv("BENCH_DONE_DIR") or ".") .. "/done-" .. tid, "w")
    if marker then marker:close() end
    wrk.thread:stop()
  end
end

-- A customer imported in some round: its round, thread and number. The first request a thread
-- makes can be one wrk builds and never sends, and the last ones may be cut off when the thread
-- stops: both ends are left out.
local function someone()
  return math.random(0, rounds - 1), math.random(1, import_threads), math.random(batch + 1, (per_thread - 16) * batch)
end

function request()
  if mode == "import" then
    sent = sent + 1
    local elements = {}
    for i = 1, batch do
      counter = counter + 1
      elements[i] = string.format('{"type":"customer","customer_id":"s%d-t%d-%d","attributes":%s}',
        round, tid, counter, bench.attributes("s" .. round .. "x", tid, counter))
    end
    return wrk.format("POST", "/v1/transition/" .. bench.workspace,
      { ["Content-Type"] = "application/json", ["Authorization"] = auth },
      '{"type":"transition","elements":[' .. table.concat(elements, ",") .. "]}")
  elseif mode == "read" then
    local r, t, n = someone()
    return wrk.format("GET", string.format("/v1/workspaces/%s/customers/s%d-t%d-%d", bench.workspace, r, t, n),
      { ["Authorization"] = auth })
  elseif mode == "lookup" then
    local r, t, n = someone()
    return wrk.format("GET", string.format("/v1/workspaces/%s/customers?email=s%dx%d-t%d%%40example.com", bench.workspace, r, n, t),
      { ["Authorization"] = auth })
  else
    counter = counter + 1
    return wrk.format("POST", "/v1/opengdpr_requests/" .. bench.workspace,
      { ["Content-Type"] = "application/json", ["Authorization"] = auth },
      string.format('{"request_type":"erasure","identities":[{"identity_type":"id","identity_value":"s0-t%d-%d"}]}',
        (tid - 1) % import_threads + 1, counter))
  end
end
