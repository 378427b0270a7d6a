-- wrk script for benches/hub-api.sh: creates COUNT users through JupyterHub's
-- API, spread over wrk's threads. Each thread, once its share is answered,
-- prints "DONE thread created failed first_sent last_answered" (monotonic
-- seconds) and stops; the bench stops wrk when every thread has.
--   MODE=one   POST /hub/api/users/{PREFIX}{thread}-{n}, no body
--   MODE=bulk  POST /hub/api/users {"usernames": [BATCH names]}
-- A connection that asks once its thread's share is sent gets GET /hub/api/
-- (cheap, told apart by its answer, not counted) until the thread stops.
-- Names are lowercase letters, digits and hyphens, which both hubs accept.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } berth_timespec;
  int clock_gettime(int clock, berth_timespec *t);
]]
local function now()
  local t = ffi.new("berth_timespec")
  ffi.C.clock_gettime(1, t) -- CLOCK_MONOTONIC
  return tonumber(t.tv_sec) + tonumber(t.tv_nsec) / 1e9
end

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  mode = os.getenv("MODE") or "one"
  prefix = os.getenv("PREFIX") or "u"
  batch = tonumber(os.getenv("BATCH") or "100")
  local count = tonumber(os.getenv("COUNT") or "1000")
  local nthreads = tonumber(os.getenv("THREADS") or "2")
  -- This thread's share of the users (the first threads take the rest).
  share = math.floor(count / nthreads)
  if id <= count % nthreads then
    share = share + 1
  end
  if mode == "bulk" then
    requests = math.ceil(share / batch)
  else
    requests = share
  end
  issued, answered, created, failed = 0, 0, 0, 0
  -- wrk asks the first thread for one request right after init() to check
  -- the script, and never sends it.
  checked = id ~= 1
end

function request()
  if not checked then
    checked = true
    return wrk.format("GET", "/hub/api/")
  end
  if issued >= requests then
    return wrk.format("GET", "/hub/api/")
  end
  if issued == 0 then
    first_sent = now()
  end
  local n = issued
  issued = issued + 1
  if mode == "bulk" then
    local names = {}
    for i = n * batch, math.min((n + 1) * batch, share) - 1 do
      table.insert(names, string.format('"%s%d-%d"', prefix, id, i))
    end
    local body = '{"usernames": [' .. table.concat(names, ", ") .. ']}'
    local headers = { ["Content-Type"] = "application/json" }
    for k, v in pairs(wrk.headers) do
      headers[k] = v
    end
    return wrk.format("POST", "/hub/api/users", headers, body)
  end
  return wrk.format("POST", string.format("/hub/api/users/%s%d-%d", prefix, id, n))
end

function response(status, headers, body)
  if answered >= requests or (status == 200 and string.find(body, '"version"', 1, true)) then
    return -- a filler's answer
  end
  answered = answered + 1
  if status == 201 then
    if mode == "bulk" then
      local _, k = string.gsub(body, '"kind"', "")
      created = created + k
    else
      created = created + 1
    end
  else
    failed = failed + 1
  end
  if answered >= requests then
    io.write(string.format("DONE %d %d %d %.6f %.6f\n", id, created, failed, first_sent, now()))
    io.flush()
    wrk.thread:stop()
  end
end
