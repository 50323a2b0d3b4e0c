-- bench/wrk/batch.lua — wrk script: POST /batch, each body OPS lines of
-- "put <key> <value>" with VALUE_SIZE-byte values. Arguments: PREFIX OPS
-- VALUE_SIZE [BODIES] (BODIES default 32).
--
-- The requests are built once, in init: each thread makes BODIES bodies
-- over disjoint key ranges (PREFIX%012d, distinct across threads too) and
-- sends them in turn, so concurrent batches rarely write the same keys
-- (writes to one key are serialised). Keys and values need no
-- percent-encoding: the prefix is used as given, digits and "v"s follow.
-- Keys per second = requests per second * OPS.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")

local requests = {}
local next_req = 1

function init(args)
   local prefix = args[1] or "bat:"
   local ops = tonumber(args[2] or "1000")
   local value = string.rep("v", tonumber(args[3] or "100"))
   local bodies = tonumber(args[4] or "32")
   wrk.headers["Content-Type"] = nil
   for b = 1, bodies do
      local first = (((thread_id or 1) - 1) * bodies + (b - 1)) * ops
      local lines = {}
      for i = 0, ops - 1 do
         lines[#lines + 1] = string.format("put %s%012d %s\n", prefix, first + i, value)
      end
      requests[b] = wrk.format("POST", "/batch", nil, table.concat(lines))
   end
end

function request()
   local r = requests[next_req]
   next_req = next_req % #requests + 1
   return r
end
