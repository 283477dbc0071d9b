-- wrk script for bench/api_messages.py: POSTs JSON texts to /api/v1/messages.
-- Script arguments: the file of bodies (one JSON object a line, a different "to" each),
-- the Host header, the number of wrk threads and the API key. Each wrk thread takes every
-- n-th line and cycles through its share, so the threads send to different numbers.
-- Counts the 202s itself (every answer must be one), besides wrk's non-2xx/3xx count.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  local host = args[2]
  local thread_count = tonumber(args[3])
  local key = args[4]
  requests = {}
  local index = 0
  for line in io.lines(path) do
    if index % thread_count == id then
      requests[#requests + 1] = wrk.format("POST", "/api/v1/messages", {
        ["Host"] = host,
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Api-Key " .. key,
      }, line)
    end
    index = index + 1
  end
  position = 0
  accepted = 0
end

function request()
  position = position % #requests + 1
  return requests[position]
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  end
end

function done(summary, latency, requests)
  local accepted_total = 0
  for _, thread in ipairs(threads) do
    accepted_total = accepted_total + thread:get("accepted")
  end
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "non_2xx_3xx=%d accepted=%d connect_errors=%d read_errors=%d write_errors=%d " ..
    "timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, accepted_total,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout))
end
