-- wrk script: OCSP requests for random certificates from a file of "HEX BASE64URL" lines.
-- Usage: wrk ... -s bench/ocsp.lua URL -- FILE post|get
-- An `openssl ocsp` responder wedges on a connection that closes without a request, which
-- wrk's start-up address probe does: resolve without probing.
wrk.resolve = function(host, service) wrk.addrs = wrk.lookup(host, service) end

local requests = {}
local mode = "post"

local function unhex(h)
  return (h:gsub("..", function(cc) return string.char(tonumber(cc, 16)) end))
end

function init(args)
  mode = args[2] or "post"
  for line in io.lines(args[1]) do
    local hex, b64 = line:match("^(%x+) (%S+)$")
    if hex then table.insert(requests, { body = unhex(hex), path = "/ocsp/" .. b64 }) end
  end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "1", 16) % 1000)
end

function request()
  local r = requests[math.random(#requests)]
  if mode == "get" then
    return wrk.format("GET", r.path)
  end
  return wrk.format("POST", "/ocsp", { ["Content-Type"] = "application/ocsp-request" }, r.body)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
