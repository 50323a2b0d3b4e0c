-- bench/wrk/common.lua — shared by the wrk scripts of the benchmark
-- (get.lua, put.lua, mix.lua): script arguments, key choice, and the
-- done() hook that prints one machine-readable result line.
--
-- Script arguments (after `--` on the wrk command line):
--   PREFIX NKEYS VALUE_SIZE
-- Keys are /kv/PREFIX%012d, uniform over 0..NKEYS-1 — the names bench/mkdb
-- preloads, and the same 12-digit form redis-benchmark's __rand_int__ uses.

local threads_started = 0

-- Runs in the main Lua state once per thread: give each a distinct id so
-- the threads do not draw the same random key sequence.
function setup(thread)
   threads_started = threads_started + 1
   thread:set("thread_id", threads_started)
end

-- Called from each script's init(args), in the thread's own Lua state.
function common_init(args)
   key_prefix = args[1] or "key:"
   nkeys = tonumber(args[2] or "100000")
   value = string.rep("v", tonumber(args[3] or "100"))
   math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
   wrk.headers["Content-Type"] = nil
end

function random_path()
   return string.format("/kv/%s%012d", key_prefix, math.random(0, nkeys - 1))
end

-- Exact percentiles from wrk's own histogram (microseconds), plus the
-- error counters (status = responses with a status above 399).
function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "WRK requests=%d duration_s=%.3f rps=%.1f p50_us=%d p99_us=%d p999_us=%d max_us=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
      latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
