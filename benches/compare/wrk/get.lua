-- A plain GET (metadata, hello). No response() hook, so wrk parses nothing in Lua: the
-- non-2xx count is wrk's own errors.status.
local report = require "report"
setup = report.setup
function done(summary, latency) report.done(summary, latency) end
