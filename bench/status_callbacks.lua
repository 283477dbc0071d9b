-- wrk script for bench/status_callbacks.py: POSTs pre-signed Twilio status callbacks.
-- The file named by the first script argument holds one request a line:
-- "<X-Twilio-Signature>\t<form-encoded body>". Each wrk thread takes every n-th line and
-- cycles through its share, so the threads send different callbacks.

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
  requests = {}
  local index = 0
  for line in io.lines(path) do
    if index % thread_count == id then
      local signature, body = line:match("^([^\t]+)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", "/webhooks/twilio/status", {
        ["Host"] = host,
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = signature,
      }, body)
    end
    index = index + 1
  end
  position = 0
end

function request()
  position = position % #requests + 1
  return requests[position]
end

function done(summary, latency, requests)
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "non_2xx_3xx=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
end
