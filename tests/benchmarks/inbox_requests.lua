-- wrk script for bench_inbox.py: sends each pre-signed request of a file once,
-- then stops. Arguments: the file (length-prefixed raw HTTP requests), the count.
-- A connection that comes free after the last request repeats it (a duplicate)
-- until the last response arrives. It prints FIRST when the first request is
-- made and LAST when the last expected response arrived, for the caller to time
-- (wrk itself runs on until its -d duration or SIGINT).
local requests = {}
local position = 0
local responses = 0
local expected = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  while true do
    local header = file:read("*l")
    if not header then break end
    requests[#requests + 1] = file:read(tonumber(header))
  end
  file:close()
  expected = tonumber(args[2]) or (#requests - 1)
end

function request()
  if position == 1 then
    io.write("FIRST\n")
    io.flush()
  end
  if position < #requests then
    position = position + 1
  end
  return requests[position]
end

function response(status, headers, body)
  responses = responses + 1
  if responses == expected then
    io.write("LAST\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p99_us": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(99), summary.errors.status
  ))
end
