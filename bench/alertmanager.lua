-- wrk script: Alertmanager webhook v4 payloads of ALERTS alerts (env), unique fingerprints per request,
-- 20 alert groups per thread so most alerts join their group's open incident (as in production).
local alerts_per_request = tonumber(os.getenv("ALERTS") or "1")
local counter = 0
local thread_id = 0
local ids = 0

function setup(thread)
  ids = ids + 1
  thread:set("tid", ids)
end

function init(args)
  thread_id = tid or 0
  math.randomseed(os.time() + thread_id * 7919)
end

local function alert(n, group)
  return string.format(
    '{"status":"firing","labels":{"alertname":"BenchAlert","severity":"critical","group":"g%d","n":"%s"},' ..
    '"annotations":{"summary":"bench alert %s"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z",' ..
    '"generatorURL":"http://prometheus/graph","fingerprint":"%s"}', group, n, n, n)
end

function request()
  counter = counter + 1
  local group = math.random(1, 20)
  local parts = {}
  for i = 1, alerts_per_request do
    local n = string.format("w%d-%d-%d-%d", thread_id, math.random(1, 1000000000), counter, i)
    parts[i] = alert(n, group)
  end
  local body = string.format(
    '{"version":"4","groupKey":"{}:{group=\\"g%d-t%d\\"}","status":"firing","receiver":"firebreak",' ..
    '"groupLabels":{"group":"g%d"},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am",' ..
    '"truncatedAlerts":0,"alerts":[%s]}', group, thread_id, group, table.concat(parts, ","))
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
