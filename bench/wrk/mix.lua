-- bench/wrk/mix.lua — wrk script: a YCSB-A-like mix, 50% GET and 50% PUT,
-- both uniform over NKEYS (YCSB-A proper uses a zipfian key choice; uniform
-- keeps it comparable with the other rows). Arguments: PREFIX NKEYS
-- VALUE_SIZE.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")

function init(args)
   common_init(args)
end

function request()
   if math.random() < 0.5 then
      return wrk.format("GET", random_path())
   end
   return wrk.format("PUT", random_path(), nil, value)
end
