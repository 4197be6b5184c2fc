-- wrk script: POST /search by stored id (JSON), ids spread over the first 60,000 items.
-- wrk -t1 -c8 -d10s --latency -s benchmarks/wrk_search_id.lua http://127.0.0.1:PORT
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
request = function()
  counter = counter + 1
  local id = (counter * 7919) % 60000
  return wrk.format(nil, "/search", nil, '{"id": ' .. id .. ', "k": 10}')
end
