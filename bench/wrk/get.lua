-- bench/wrk/get.lua — wrk script: GET of existing keys, uniform over the
-- preloaded key set. Arguments: PREFIX NKEYS VALUE_SIZE (see common.lua).
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")

function init(args)
   common_init(args)
end

function request()
   return wrk.format("GET", random_path())
end
