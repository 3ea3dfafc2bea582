-- wrk script: POSTs a payload file with a fresh id in place of __ID__ on every request, so the
-- daemon stores new events rather than recognising a vendor's retries.
-- Environment: PAYLOAD (file), CONTENT_TYPE, ID_BASE. (Fixed-rate runs use `bench-peer load`, not wrk.)
local payload = os.getenv("PAYLOAD")
local content_type = os.getenv("CONTENT_TYPE") or "application/json"
-- Distinct per run, so a second run against the same daemon sends new events too.
local id_base = tonumber(os.getenv("ID_BASE") or "0")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  local file = assert(io.open(payload, "rb"))
  local text = file:read("*a"):gsub("%s+$", "")
  file:close()
  prefix, suffix = text:match("^(.*)__ID__(.*)$")
  assert(prefix, payload .. " has no __ID__")
  counter = 0
  headers = { ["Content-Type"] = content_type }
end

function request()
  counter = counter + 1
  return wrk.format("POST", nil, headers, prefix .. string.format("%d", id_base + tid * 100000000 + counter) .. suffix)
end
