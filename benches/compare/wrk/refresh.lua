-- Refresh-token grant over a pool of token families (one line each in args[1], all issued to the
-- public client args[2]; args[3] = number of wrk threads). Each thread takes every n-th family.
-- A request takes the oldest token from the thread's pool; a 200 puts the rotated token back, so
-- a family is never used by two requests at once. A failed refresh loses its family; a request
-- made while the pool is empty ("starved") sends a token that cannot work and counts as failed.
local report = require "report"
setup = report.setup
ok, failed, starved = 0, 0, 0
local pool, head, tail = {}, 1, 0
local client_id
local checked

local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function init(args)
  -- wrk calls request() once on thread 1 (tid, set by setup) before the run to check the
  -- script, and discards that request: it must not take a token.
  checked = tid ~= 1
  client_id = args[2]
  local n, i = tonumber(args[3]), 0
  for line in io.lines(args[1]) do
    if i % n + 1 == tid then tail = tail + 1; pool[tail] = line end
    i = i + 1
  end
end

function request()
  local token = "starved"
  if not checked then
    checked = true
    token = pool[head] or token
  elseif head <= tail then
    token = pool[head]; pool[head] = nil; head = head + 1
  else
    starved = starved + 1
  end
  return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "grant_type=refresh_token&refresh_token=" .. enc(token) .. "&client_id=" .. enc(client_id))
end

function response(status, headers, body)
  local token = status == 200 and body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token then
    ok = ok + 1; tail = tail + 1; pool[tail] = token
  else
    failed = failed + 1
  end
end

function done(summary, latency) report.done(summary, latency, { "ok", "failed", "starved" }) end
