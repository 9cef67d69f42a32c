-- One wrk script for every figure; BENCH_MODE picks the requests.
--   plain   GET the URL given on the command line (baselines)
--   page    GET /p/<token> for random contacts           (BENCH_DATA: one path a line)
--   toggle  POST /p/<token>/lists/<slug> with CSRF         (BENCH_DATA + BENCH_SESSIONS)
--   api     GET /api/v1/consent?email=…&list=… with a key  (BENCH_DATA + BENCH_API_KEY)
-- done() prints one JSON line the runner parses.

local mode = os.getenv("BENCH_MODE") or "plain"
local lines, sessions, slugs = {}, {}, {}
local api_key = os.getenv("BENCH_API_KEY") or ""

local function read_lines(path)
  local out = {}
  if path == nil or path == "" then return out end
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

local function split(line)
  local out = {}
  for field in string.gmatch(line, "[^\t]+") do out[#out + 1] = field end
  return out
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  lines = read_lines(os.getenv("BENCH_DATA"))
  for _, line in ipairs(read_lines(os.getenv("BENCH_SESSIONS"))) do
    sessions[#sessions + 1] = split(line) -- cookie, csrf token
  end
  for slug in string.gmatch(os.getenv("BENCH_SLUGS") or "", "[^,]+") do
    slugs[#slugs + 1] = slug
  end
end

local function pick(list) return list[math.random(#list)] end

function request()
  if mode == "page" then
    return wrk.format("GET", pick(lines))
  elseif mode == "toggle" then
    -- A session from a real GET of the page: its cookie and the CSRF token it issued.
    local session = pick(sessions)
    local body = "csrf_token=" .. session[2]
    if math.random() < 0.5 then body = body .. "&subscribed=yes" end
    local headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Cookie"] = session[1],
      ["HX-Request"] = "true",
    }
    return wrk.format("POST", pick(lines) .. "/lists/" .. pick(slugs), headers, body)
  elseif mode == "api" then
    local fields = split(pick(lines))
    local path = "/api/v1/consent?email=" .. fields[1] .. "&list=" .. fields[2]
    return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. api_key })
  end
  return wrk.format("GET")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
