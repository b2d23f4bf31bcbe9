-- wrk script for bench/api_load.py: rotate through a list of request paths.
--
--   wrk ... -s bench/api_load.lua URL -- PATHS_FILE [TOKEN_FILE]
--
-- PATHS_FILE holds one path (with its query) a line; each thread starts at its own place
-- in the list and walks it round. TOKEN_FILE, if given, holds an API token sent as
-- "Authorization: Bearer ...". done() prints one line, "WRK_JSON {...}", that the
-- benchmark parses: latency percentiles in microseconds, requests, errors and the
-- status codes seen.

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count)
  table.insert(threads, thread)
end

local paths = {}
local next_index = 1
statuses = {}

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      paths[#paths + 1] = line
    end
  end
  assert(#paths > 0, "no paths in " .. args[1])
  if args[2] ~= nil and #args[2] > 0 then
    local f = assert(io.open(args[2], "r"))
    local token = f:read("*l")
    f:close()
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  wrk.headers["Accept"] = "application/json"
  -- threads start apart so that they do not ask for the same page at the same moment
  next_index = math.floor((id - 1) * #paths / 2) % #paths + 1
end

function request()
  local path = paths[next_index]
  next_index = next_index % #paths + 1
  return wrk.format("GET", path)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    if seen ~= nil then
      for code, n in pairs(seen) do
        merged[code] = (merged[code] or 0) + n
      end
    end
  end
  local codes = {}
  for code, n in pairs(merged) do
    codes[#codes + 1] = string.format('"%s": %d', code, n)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, "max": %d, ' ..
    '"p50": %d, "p90": %d, "p99": %d, "p999": %d}, "statuses": {%s}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), table.concat(codes, ", ")))
end
