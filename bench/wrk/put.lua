-- bench/wrk/put.lua — wrk script: PUT of random keys (uniform over NKEYS,
-- so mostly replacements of preloaded keys, like redis-benchmark's SET
-- with -r), VALUE_SIZE-byte bodies. Arguments: PREFIX NKEYS VALUE_SIZE.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")

function init(args)
   common_init(args)
end

function request()
   return wrk.format("PUT", random_path(), nil, value)
end
