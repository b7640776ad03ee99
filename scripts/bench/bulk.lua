-- POST /v1/transition/{workspace}: BENCH_BATCH (default 100) new customers per request.
-- Ids "b-t<thread>-<n>" are distinct across requests and threads.
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench") .. "/?.lua;" .. package.path
local bench = require("common")

local path = "/v1/transition/" .. bench.workspace
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = bench.auth_header() }
local batch = tonumber(os.getenv("BENCH_BATCH") or "100")

function setup(thread) bench.setup(thread) end
function init(args) bench.init() end
response = bench.response
done = bench.done

function request()
  local elements = {}
  for i = 1, batch do
    counter = counter + 1
    elements[i] = string.format('{"type":"customer","customer_id":"b-t%d-%d","attributes":%s}',
      tid, counter, bench.attributes("b", tid, counter))
  end
  local body = '{"type":"transition","elements":[' .. table.concat(elements, ",") .. "]}"
  return wrk.format("POST", path, headers, body)
end
