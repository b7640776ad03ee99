-- GET /health/live: the HTTP ceiling.
package.path = (os.getenv("BENCH_LUA_DIR") or "scripts/bench") .. "/?.lua;" .. package.path
local bench = require("common")

function setup(thread) bench.setup(thread) end
function init(args) bench.init() end
response = bench.response
done = bench.done

wrk.method = "GET"
wrk.path = "/health/live"
