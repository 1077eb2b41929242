-- Dynamic Client Registration: the same JSON body each time (a public client with one loopback
-- redirect URI, args[1]). Only 201s count as registrations.
local report = require "report"
setup = report.setup
created, other = 0, 0

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"client_name":"wrk agent","redirect_uris":["' .. args[1] .. '"],'
    .. '"grant_types":["authorization_code","refresh_token"],"response_types":["code"],'
    .. '"token_endpoint_auth_method":"none"}'
end

function response(status)
  if status == 201 then created = created + 1 else other = other + 1 end
end

function done(summary, latency) report.done(summary, latency, { "created", "other" }) end
