-- wrk script: send pre-built raw requests from a file, one per wrk request, in order.
--
--   wrk -t1 -c64 -d5s --latency -s replay.lua http://127.0.0.1:PORT -- REQUESTS_FILE
--
-- The file holds complete HTTP/1.1 requests without bodies, back to back (each ends with the
-- blank line). A file of one request is the same request every time; a file of pre-signed
-- CAMS requests gives each its own nonce. Past the end it starts over (then CAMS nonces
-- repeat and the server refuses them): done() prints how many were sent and wraps.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  requests = {}
  local start = 1
  while true do
    local stop = string.find(data, "\r\n\r\n", start, true)
    if stop == nil then break end
    requests[#requests + 1] = string.sub(data, start, stop + 3)
    start = stop + 4
  end
  data = nil
  count = #requests
  index = 0
  sent = 0
  io.write(string.format("replay: ready %d requests\n", count))
  io.flush()
end

function request()
  index = index + 1
  if index > count then index = 1 end
  sent = sent + 1
  return requests[index]
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local n, sent = thread:get("count"), thread:get("sent")
    io.write(string.format("replay: requests=%d sent=%d\n", n, sent))
  end
end
