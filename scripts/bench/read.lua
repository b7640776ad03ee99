-- GET /v1/workspaces/{workspace}/customers/{id}: random ids among the preloaded
-- "r-1" … "r-<BENCH_READ_IDS>" (written by scripts/bench-ingest before this runs).
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench") .. "/?.lua;" .. package.path
local bench = require("common")

local prefix = "/v1/workspaces/" .. bench.workspace .. "/customers/r-"
local headers = { ["Authorization"] = bench.auth_header() }
local ids = tonumber(os.getenv("BENCH_READ_IDS") or "20000")

function setup(thread) bench.setup(thread) end
function init(args)
  bench.init()
  math.randomseed(os.time() * 100 + tid)
end
response = bench.response
done = bench.done

function request()
  return wrk.format("GET", prefix .. math.random(1, ids), headers)
end
