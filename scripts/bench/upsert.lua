-- POST /v1/customer/{workspace}: one new customer per request, 10 attributes.
-- Ids "u-t<thread>-<n>" are distinct across requests and threads.
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench") .. "/?.lua;" .. package.path
local bench = require("common")

local path = "/v1/customer/" .. bench.workspace
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = bench.auth_header() }

function setup(thread) bench.setup(thread) end
function init(args) bench.init() end
response = bench.response
done = bench.done

function request()
  counter = counter + 1
  local body = string.format('{"customer_id":"u-t%d-%d","attributes":%s}',
    tid, counter, bench.attributes("u", tid, counter))
  return wrk.format("POST", path, headers, body)
end
