-- wrk script for .ci/tests/overload.py: GET /api/me/ with a Bearer token, statuses tallied per
-- thread and printed at the end as one "statuses {json}" line.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.path = "/api/me/"
end

function response(status, headers, body)
  local key = tostring(status)
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for k, v in pairs(c) do
      total[k] = (total[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(total) do
    table.insert(parts, string.format('"%s": %d', k, v))
  end
  io.write("statuses {" .. table.concat(parts, ", ") .. "}\n")
end
