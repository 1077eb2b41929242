-- Shared by the bench's wrk scripts. setup() numbers the threads (tid = 1..n, for scripts that
-- split work between them); done() prints one line, "JSON {...}", that bench.mjs reads: wrk's
-- totals and latency percentiles, plus per-thread counters (globals of each thread) added up.
local M = {}
local threads = {}

function M.setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function M.done(summary, latency, counters)
  local sums = {}
  for _, name in ipairs(counters or {}) do
    local n = 0
    for _, t in ipairs(threads) do n = n + (t:get(name) or 0) end
    table.insert(sums, string.format('"%s":%d', name, n))
  end
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"counters":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(sums, ",")))
end

return M
