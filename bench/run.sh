#!/usr/bin/env bash
# bench/run.sh — the caskd benchmark harness (`make bench` runs it).
#
# Runs caskd beside nginx (static file, and `return 200` from memory: the
# HTTP ceiling), redis (the peer users know) and the naive FastAPI design
# (what caskd replaces) on loopback, with the same workloads and client
# settings, and prints one report with a table of results and the target
# ratios. Then caskd alone: recovery, shared memory, compaction
# (throughput, and latency while compactions run), start-up, listing and
# batch; and the index alone, without HTTP (bench/idxbench). Everything
# it starts runs in its own process group under a temp dir and is stopped
# on exit, whatever the exit. docs/benchmarks.md explains the workloads
# and how to read the table.
#
# Settings (environment):
#   BENCH_DURATION   seconds per measured run (default 5)
#   BENCH_KEYS       preloaded 100-byte keys (default 100000)
#   BENCH_BIG_KEYS   preloaded 1 KiB and 64 KiB keys (default 1000)
#   BENCH_RECOVERY_MB size of the recovery file (default 1024; 256 when
#                    less than 3 GB is free)
#   BENCH_PACED_PCT  paced-client rate, % of caskd's measured max (50)
#   BENCH_STALE_OPS  PUT-then-GET pairs per thread of the stale check (250)
#   BENCH_COMPACT_MB size of the compaction file, a quarter of it live
#                    (default 1024; 256 when less than 3 GB is free)
#   BENCH_STARTUP_KEYS keys (16-byte values) of the start-up runs (1000000)
#   BENCH_LIST_KEYS  keys (100-byte values) stored for the listing runs
#                    (1000000)
#   BENCH_LIST_PAGES GET /keys pages timed one by one (50)
#   BENCH_BATCH_OPS  puts (100 B each) per POST /batch body (1000)
#   BENCH_INDEX_SECONDS seconds per N of the index-alone runs (2)
#   BENCH_WATCH_IDLE idle /watch streams held on one worker (10000)
#   BENCH_WATCH_SAMPLES PUT-to-event delays timed one by one (2000)
#   BENCH_ONLY       comma-separated sections to run, of: caskd nginx redis
#                    naive recovery shm compact compactlat startup keys batch
#                    index watch (default: all)
# Output: stdout, and in bench/results/: <UTC timestamp>.txt (the report),
# .log (raw output of every tool run), .tsv (every figure; bench/report.py
# renders it).

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

DURATION=${BENCH_DURATION:-5}
NKEYS=${BENCH_KEYS:-100000}
BIG_KEYS=${BENCH_BIG_KEYS:-1000}
PACED_PCT=${BENCH_PACED_PCT:-50}
STALE_OPS=${BENCH_STALE_OPS:-250}
STALE_THREADS=4
STARTUP_KEYS=${BENCH_STARTUP_KEYS:-1000000}
LIST_KEYS=${BENCH_LIST_KEYS:-1000000}
LIST_PAGES=${BENCH_LIST_PAGES:-50}
LIST_REF_KEYS=${BENCH_LIST_REF_KEYS:-10000} # the reference of the page ratio
BATCH_OPS=${BENCH_BATCH_OPS:-1000}
INDEX_SECONDS=${BENCH_INDEX_SECONDS:-2}
WATCH_IDLE=${BENCH_WATCH_IDLE:-10000}
WATCH_SAMPLES=${BENCH_WATCH_SAMPLES:-2000}
ONLY=${BENCH_ONLY:-}
SECTIONS="caskd nginx redis naive recovery shm compact compactlat startup keys batch index watch"
CONNS=64
THREADS=2
PY=/usr/bin/python3 # Debian's, which has fastapi/uvicorn (not a pyenv one)
DEB_PKGS="wrk nginx redis-server redis-tools python3-fastapi python3-uvicorn curl gcc"
CASKD_CONFIGS="1:periodic 1:group 2:periodic 2:group" # workers:fsync

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
REPORT=bench/results/$STAMP.txt
RAW=bench/results/$STAMP.log
: >"$REPORT"
: >"$RAW"

# --- output -----------------------------------------------------------------

# say: a line for the reader, on stdout and in the report.
say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
die() { say "bench: $*"; exit 1; }

# want SECTION: whether BENCH_ONLY (empty: everything) names SECTION.
want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

# --- servers: started in their own process group, stopped by group id ------

declare -A PIDS=()
TMP=""

# start_bg NAME CMD...: runs CMD in the background in a new session (so
# its workers share its process group), output to $TMP/NAME.log.
start_bg() {
	local name=$1
	shift
	setsid "$@" >"$TMP/$name.log" 2>&1 &
	PIDS[$name]=$!
}

# stop_bg NAME: SIGTERM to the group, then SIGKILL if it lingers (15 s).
stop_bg() {
	local name=$1 pid=${PIDS[$1]:-} i
	[ -n "$pid" ] || return 0
	kill -TERM -- "-$pid" 2>/dev/null
	for ((i = 0; i < 150; i++)); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "PIDS[$name]"
	if [ -f "$TMP/$name.log" ]; then
		echo "== server log: $name" >>"$RAW"
		tail -n 50 "$TMP/$name.log" >>"$RAW"
	fi
}

# kill9_bg NAME: SIGKILL to the whole group at once (a crash), and wait
# until every process of it is gone.
kill9_bg() {
	local name=$1 pid=${PIDS[$1]:-} i
	[ -n "$pid" ] || return 0
	kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	for ((i = 0; i < 500; i++)); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.01
	done
	unset "PIDS[$name]"
	if [ -f "$TMP/$name.log" ]; then
		echo "== server log: $name (killed with SIGKILL)" >>"$RAW"
		tail -n 50 "$TMP/$name.log" >>"$RAW"
	fi
}

cleanup() {
	local name
	for name in "${!PIDS[@]}"; do
		stop_bg "$name"
	done
	[ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	$PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http NAME PORT PATH: until PATH answers 200 (60 s), or NAME died.
wait_http() {
	local name=$1 port=$2 path=$3 i
	for ((i = 0; i < 6000; i++)); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path")" = 200 ] && return 0
		kill -0 "${PIDS[$name]}" 2>/dev/null || break
		sleep 0.01
	done
	say "bench: $name did not come up on port $port; its log:"
	tail -n 20 "$TMP/$name.log" | tee -a "$REPORT"
	return 1
}

# --- results: one TSV line per figure: server, workload, metric, value -----

RES=""

put_res() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RES"; }

# record SERVER WORKLOAD "TAG k=v k=v ...": every k=v becomes a result.
record() {
	local server=$1 workload=$2 kv
	for kv in ${3#* }; do
		put_res "$server" "$workload" "${kv%%=*}" "${kv#*=}"
	done
}

# get_res SERVER WORKLOAD METRIC
get_res() {
	awk -F'\t' -v s="$1" -v w="$2" -v m="$3" '$1 == s && $2 == w && $3 == m { v = $4 } END { print v }' "$RES"
}

# caskd_worker_counts PORT: requests answered so far by each worker slot
# (caskd_worker_requests_total), one number per line.
caskd_worker_counts() {
	curl -s "http://127.0.0.1:$1/metrics" | awk '/^caskd_worker_requests_total\{/ { print $NF }'
}

# busiest_share BEFORE AFTER: % of the requests between two
# caskd_worker_counts snapshots that the busiest worker answered. With a
# shared listening socket the kernel does not spread connections evenly,
# and 64 long-lived connections stay where they landed.
busiest_share() {
	paste <(echo "$1") <(echo "$2") |
		awk '{ d = $2 - $1; t += d; if (d > m) m = d } END { if (t > 0) printf "%.0f", 100 * m / t }'
}

# wrk_run SERVER WORKLOAD SCRIPT PORT SCRIPT_ARGS...
wrk_run() {
	local server=$1 workload=$2 script=$3 port=$4 out line before=""
	shift 4
	[[ $server == caskd-w2* ]] && before=$(caskd_worker_counts "$port")
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency \
		-s "bench/wrk/$script" "http://127.0.0.1:$port" -- "$@" 2>&1)
	printf '== wrk %s %s (%s %s)\n%s\n' "$server" "$workload" "$script" "$*" "$out" >>"$RAW"
	line=$(grep '^WRK ' <<<"$out" | tail -n 1)
	if [ -z "$line" ]; then
		say "  $server $workload: wrk failed (see $RAW)"
		return 1
	fi
	record "$server" "$workload" "$line"
	[ -n "$before" ] && put_res "$server" "$workload" busiest_worker_pct \
		"$(busiest_share "$before" "$(caskd_worker_counts "$port")")"
	say "$(printf '  %-18s %-8s %9.0f req/s  p50 %6.2f  p99 %7.2f  p99.9 %7.2f ms  errors(status/other) %s/%s' \
		"$server" "$workload" "$(get_res "$server" "$workload" rps)" \
		"$(awk -v v="$(get_res "$server" "$workload" p50_us)" 'BEGIN { print v / 1000 }')" \
		"$(awk -v v="$(get_res "$server" "$workload" p99_us)" 'BEGIN { print v / 1000 }')" \
		"$(awk -v v="$(get_res "$server" "$workload" p999_us)" 'BEGIN { print v / 1000 }')" \
		"$(get_res "$server" "$workload" err_status)" \
		"$(awk -v a="$(get_res "$server" "$workload" err_connect)" -v b="$(get_res "$server" "$workload" err_read)" \
			-v c="$(get_res "$server" "$workload" err_write)" -v d="$(get_res "$server" "$workload" err_timeout)" \
			'BEGIN { print a + b + c + d }')")"
}

# paced_run SERVER WORKLOAD PORT RATE MODE: the open-loop client.
paced_run() {
	local server=$1 workload=$2 port=$3 rate=$4 mode=$5 out line
	out=$(build/bench/paced -p "$port" -c "$CONNS" -r "$rate" -d "$DURATION" -m "$mode" \
		-k "$NKEYS" -x key: -s 100 2>&1)
	printf '== paced %s %s\n%s\n' "$server" "$workload" "$out" >>"$RAW"
	line=$(grep '^PACED ' <<<"$out" | tail -n 1)
	if [ -z "$line" ]; then
		say "  $server $workload: paced failed: $out"
		return 1
	fi
	record "$server" "$workload" "$line"
	say "  $server $workload: $line"
}

# stale_run SERVER PORT: the read-your-write check (bench/stale.py).
stale_run() {
	local out line
	out=$($PY bench/stale.py "$2" "$STALE_OPS" "$STALE_THREADS" 2>&1)
	printf '== stale %s\n%s\n' "$1" "$out" >>"$RAW"
	line=$(grep '^STALE ' <<<"$out" | tail -n 1)
	[ -n "$line" ] || { say "  $1 stale check failed: $out"; return 1; }
	record "$1" stale "$line"
	say "  $1 read-your-write: $line"
}

# --- setup --------------------------------------------------------------------

install_deps() {
	local missing="" p sudo=""
	for p in $DEB_PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	[ "$(id -u)" = 0 ] || sudo=sudo
	say "installing:$missing"
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >>"$RAW" 2>&1 ||
		die "apt-get install$missing failed"
}

build_tools() {
	mkdir -p build/bench
	cc -O2 -std=c11 -Wall -Wextra -D_GNU_SOURCE -o build/bench/paced bench/paced.c &&
		cc -O2 -std=c11 -Wall -Wextra -D_GNU_SOURCE -I. -o build/bench/mkdb bench/mkdb.c \
			build/libcaskd.a &&
		cc -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -pthread -o build/bench/idxbench \
			bench/idxbench.c build/libcaskd.a &&
		cc -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -o build/bench/watchbench \
			bench/watchbench.c ||
		die "building bench/paced.c, bench/mkdb.c, bench/idxbench.c or bench/watchbench.c failed"
}

record_env() {
	local rev
	rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	git diff --quiet HEAD 2>/dev/null || rev="$rev (+ uncommitted changes)"
	say "caskd benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	say ""
	say "machine:   $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
	say "kernel:    $(uname -sr), $(. /etc/os-release && echo "$PRETTY_NAME")"
	say "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, at start; other work on the machine skews every figure)"
	say "caskd:     git $rev"
	say "nginx:     $(nginx -v 2>&1 | sed 's/^nginx version: //')"
	say "redis:     $(redis-server --version | cut -d' ' -f3-4), $(redis-benchmark --version 2>/dev/null | head -n 1)"
	say "wrk:       $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
	say "python:    $($PY --version 2>&1 | cut -d' ' -f2), $($PY -c 'import uvicorn, fastapi, starlette, h11; print("uvicorn", uvicorn.__version__, "fastapi", fastapi.__version__, "starlette", starlette.__version__, "h11", h11.__version__)')"
	say "compiler:  $(cc --version | head -n 1)"
	say "settings:  ${DURATION} s per run; wrk -t$THREADS -c$CONNS (keep-alive, no pipelining), --timeout 10s;"
	say "           $NKEYS keys x 100 B, $BIG_KEYS keys x 1 KiB and x 64 KiB preloaded; paced at $PACED_PCT% of max;"
	say "           stale check $STALE_THREADS threads x $STALE_OPS PUT+GET pairs; recovery file $RECOVERY_MB MiB;"
	say "           compaction file $COMPACT_MB MiB; start-up $STARTUP_KEYS keys; listing $LIST_KEYS keys,"
	say "           $LIST_PAGES pages; batch $BATCH_OPS puts per body; index alone $INDEX_SECONDS s per N${ONLY:+;}"
	[ -n "$ONLY" ] && say "           sections: $ONLY"
	say ""
}

# --- caskd ----------------------------------------------------------------

# bench_caskd WORKERS FSYNC
bench_caskd() {
	local w=$1 f=$2 name="caskd-w$1-$2" dir port rate
	dir="$TMP/$name"
	mkdir -p "$dir"
	build/bench/mkdb "$dir/database.bin" "key:,$NKEYS,100" "k1k:,$BIG_KEYS,1024" \
		"k64k:,$BIG_KEYS,65536" >>"$RAW" || die "mkdb failed"
	port=$(free_port)
	start_bg "$name" build/caskd --listen "127.0.0.1:$port" --workers "$w" \
		--data-dir "$dir" --fsync "$f"
	wait_http "$name" "$port" /healthz || { stop_bg "$name"; return 1; }
	say "$name (port $port)"
	wrk_run "$name" get100 get.lua "$port" key: "$NKEYS" 100
	wrk_run "$name" get1k get.lua "$port" k1k: "$BIG_KEYS" 1024
	wrk_run "$name" get64k get.lua "$port" k64k: "$BIG_KEYS" 65536
	wrk_run "$name" put100 put.lua "$port" key: "$NKEYS" 100
	wrk_run "$name" mix100 mix.lua "$port" key: "$NKEYS" 100
	if [ "$w" = 2 ] && [ "$f" = periodic ]; then
		rate=$(awk -v r="$(get_res "$name" get100 rps)" -v p="$PACED_PCT" 'BEGIN { printf "%d", r * p / 100 }')
		[ "${rate:-0}" -gt 0 ] && paced_run "$name" paced_get "$port" "$rate" get
		PACED_GET_RATE=$rate
		rate=$(awk -v r="$(get_res "$name" put100 rps)" -v p="$PACED_PCT" 'BEGIN { printf "%d", r * p / 100 }')
		[ "${rate:-0}" -gt 0 ] && paced_run "$name" paced_put "$port" "$rate" put
	fi
	if [ "$w" = 2 ] && [ "$f" = group ]; then
		rate=$(awk -v r="$(get_res "$name" put100 rps)" -v p="$PACED_PCT" 'BEGIN { printf "%d", r * p / 100 }')
		[ "${rate:-0}" -gt 0 ] && paced_run "$name" paced_put "$port" "$rate" put
	fi
	[ "$w" = 2 ] && stale_run "$name" "$port"
	# What the server itself counted: answers other than 2xx/3xx, and
	# its warnings/errors.
	put_res "$name" server non2xx "$(curl -s "http://127.0.0.1:$port/metrics" |
		awk '/^caskd_requests_total\{/ && !/code="[23]/ { n += $NF } END { print n + 0 }')"
	stop_bg "$name"
	note_warnings "$name"
	rm -rf "$dir"
}

# --- nginx ------------------------------------------------------------------

bench_nginx() {
	local dir="$TMP/nginx" port body
	port=$(free_port)
	body=$(head -c 100 /dev/zero | tr '\0' v)
	mkdir -p "$dir/www" "$dir/tmp"
	head -c 100 /dev/zero | tr '\0' v >"$dir/www/v100"
	head -c 1024 /dev/zero | tr '\0' v >"$dir/www/v1k"
	head -c 65536 /dev/zero | tr '\0' v >"$dir/www/v64k"
	# One worker, no access log, keep-alive without a request cap; the
	# /kv/<prefix>... paths of the wrk scripts all map to one static file,
	# but /kv/mem:... is answered from memory by `return` (no file at all).
	cat >"$dir/nginx.conf" <<-EOF
		worker_processes 1;
		daemon off;
		pid $dir/nginx.pid;
		error_log $dir/error.log warn;
		events { worker_connections 1024; }
		http {
		    access_log off;
		    sendfile on;
		    tcp_nopush on;
		    tcp_nodelay on;
		    keepalive_timeout 65;
		    keepalive_requests 100000000;
		    default_type application/octet-stream;
		    client_body_temp_path $dir/tmp;
		    proxy_temp_path $dir/tmp;
		    fastcgi_temp_path $dir/tmp;
		    uwsgi_temp_path $dir/tmp;
		    scgi_temp_path $dir/tmp;
		    server {
		        listen 127.0.0.1:$port;
		        root $dir/www;
		        location ^~ /kv/key: { try_files /v100 =404; }
		        location ^~ /kv/k1k: { try_files /v1k =404; }
		        location ^~ /kv/k64k: { try_files /v64k =404; }
		        location ^~ /kv/mem: { default_type application/octet-stream; return 200 "$body"; }
		        location = /healthz { try_files /v100 =404; }
		    }
		}
	EOF
	start_bg nginx nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
	wait_http nginx "$port" /healthz || { stop_bg nginx; return 1; }
	say "nginx (port $port, static files; nginx-mem: the same server's return 200 of 100 bytes)"
	wrk_run nginx get100 get.lua "$port" key: "$NKEYS" 100
	wrk_run nginx get1k get.lua "$port" k1k: "$BIG_KEYS" 1024
	wrk_run nginx get64k get.lua "$port" k64k: "$BIG_KEYS" 65536
	[ "${PACED_GET_RATE:-0}" -gt 0 ] && paced_run nginx paced_get "$port" "$PACED_GET_RATE" get
	wrk_run nginx-mem get100 get.lua "$port" mem: "$NKEYS" 100
	stop_bg nginx
}

# --- redis ------------------------------------------------------------------

# redis_fill PORT COUNT SIZE: FLUSHALL, then SET key:%012d (the names
# redis-benchmark's -r draws) for 0..COUNT-1, pipelined.
redis_fill() {
	redis-cli -p "$1" flushall >/dev/null
	$PY -c '
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
v = b"v" * size
out = sys.stdout.buffer
for i in range(n):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
' "$2" "$3" | redis-cli -p "$1" --pipe >>"$RAW" 2>&1
}

# redis_run SERVER WORKLOAD PORT TEST RANGE SIZE: redis-benchmark with the
# same client settings as wrk; -n is sized from a short calibration run so
# the measured run takes about DURATION seconds.
redis_run() {
	local server=$1 workload=$2 port=$3 test=$4 range=$5 size=$6 n=1000 t0 t1 out line
	local bench=(redis-benchmark -p "$port" -c "$CONNS" --threads "$THREADS" -d "$size"
		-t "$test" -r "$range" -q --csv)
	while :; do
		t0=$(date +%s.%N)
		"${bench[@]}" -n "$n" >/dev/null 2>&1
		t1=$(date +%s.%N)
		awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 0.5) }' && break
		[ "$n" -ge 10000000 ] && break
		n=$((n * 4))
	done
	n=$(awk -v n="$n" -v a="$t0" -v b="$t1" -v d="$DURATION" 'BEGIN { printf "%d", n / (b - a) * d }')
	out=$("${bench[@]}" -n "$n" 2>&1)
	printf '== redis-benchmark %s %s -n %s\n%s\n' "$server" "$workload" "$n" "$out" >>"$RAW"
	# "GET","rps","avg","min","p50","p95","p99","max" (ms)
	line=$(awk -F'"' -v t="${test^^}" '$2 == t {
		printf "REDIS rps=%s p50_us=%d p99_us=%d max_us=%d requests='"$n"'", $4, $10 * 1000, $14 * 1000, $16 * 1000 }' <<<"$out")
	if [ -z "$line" ]; then
		say "  $server $workload: redis-benchmark failed: $out"
		return 1
	fi
	record "$server" "$workload" "$line"
	say "$(printf '  %-18s %-8s %9.0f req/s  p50 %6.2f  p99 %7.2f ms (redis-benchmark -n %s)' "$server" "$workload" \
		"$(get_res "$server" "$workload" rps)" \
		"$(awk -v v="$(get_res "$server" "$workload" p50_us)" 'BEGIN { print v / 1000 }')" \
		"$(awk -v v="$(get_res "$server" "$workload" p99_us)" 'BEGIN { print v / 1000 }')" "$n")"
}

# bench_redis NAME EXTRA_ARGS...
bench_redis() {
	local name=$1 dir="$TMP/$1" port
	shift
	port=$(free_port)
	mkdir -p "$dir"
	start_bg "$name" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
		--daemonize no --save '' "$@"
	for ((i = 0; i < 500; i++)); do
		redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
		sleep 0.02
	done
	say "$name (port $port: $*)"
	if [ "$name" = redis ]; then
		redis_fill "$port" "$NKEYS" 100
		redis_run "$name" put100 "$port" set "$NKEYS" 100
		redis_run "$name" get100 "$port" get "$NKEYS" 100
		redis_fill "$port" "$BIG_KEYS" 1024
		redis_run "$name" get1k "$port" get "$BIG_KEYS" 1024
		redis_fill "$port" "$BIG_KEYS" 65536
		redis_run "$name" get64k "$port" get "$BIG_KEYS" 65536
	else
		redis_fill "$port" "$NKEYS" 100
		redis_run "$name" put100 "$port" set "$NKEYS" 100
	fi
	stop_bg "$name"
	rm -rf "$dir"
}

# --- the naive design -------------------------------------------------------

# bench_naive NAME NODELAY(0|1)
bench_naive() {
	local name=$1 dir="$TMP/$1" port pypath=""
	port=$(free_port)
	mkdir -p "$dir"
	$PY bench/naive/app.py preload "$dir/database.bin" key: "$NKEYS" 100 &&
		$PY bench/naive/app.py preload "$dir/database.bin" k1k: "$BIG_KEYS" 1024 &&
		$PY bench/naive/app.py preload "$dir/database.bin" k64k: "$BIG_KEYS" 65536 ||
		die "naive preload failed"
	[ "$2" = 1 ] && pypath="$ROOT/bench/naive/nodelay"
	start_bg "$name" env PYTHONPATH="$pypath" NAIVE_DB="$dir/database.bin" \
		$PY -m uvicorn --app-dir "$ROOT/bench/naive" app:app --host 127.0.0.1 --port "$port" \
		--workers 2 --no-access-log --log-level warning
	wait_http "$name" "$port" /healthz || { stop_bg "$name"; return 1; }
	say "$name (port $port, uvicorn --workers 2$([ "$2" = 1 ] && echo ', TCP_NODELAY restored'))"
	wrk_run "$name" get100 get.lua "$port" key: "$NKEYS" 100
	wrk_run "$name" get1k get.lua "$port" k1k: "$BIG_KEYS" 1024
	wrk_run "$name" get64k get.lua "$port" k64k: "$BIG_KEYS" 65536
	wrk_run "$name" put100 put.lua "$port" key: "$NKEYS" 100
	wrk_run "$name" mix100 mix.lua "$port" key: "$NKEYS" 100
	stale_run "$name" "$port"
	stop_bg "$name"
	rm -rf "$dir"
}

# --- caskd only: recovery time and shared memory per key -------------------

bench_recovery() {
	local dir="$TMP/recovery" port t0 t1 line run
	mkdir -p "$dir"
	# 1 KiB values over 500k keys, rewritten until the file is big enough:
	# recovery sees replacements as well as new keys.
	build/bench/mkdb -b $((RECOVERY_MB * 1048576)) "$dir/database.bin" "rec:,500000,1024" >>"$RAW" ||
		die "mkdb failed"
	cat "$dir/database.bin" >/dev/null # in the page cache (it is; make sure)
	say "recovery of a $RECOVERY_MB MiB database.bin (1 KiB values, 500k keys; from page cache)"
	for run in 1 2; do
		# A clean stop writes database.idx; without it the start scans.
		rm -f "$dir/database.idx"
		port=$(free_port)
		t0=$(date +%s.%N)
		start_bg recovery build/caskd --listen "127.0.0.1:$port" --workers 1 \
			--data-dir "$dir" --fsync periodic
		wait_http recovery "$port" /healthz || { stop_bg recovery; return 1; }
		t1=$(date +%s.%N)
		stop_bg recovery
		line=$(grep -m1 'recovered ' "$TMP/recovery.log")
		echo "== recovery run $run: $line" >>"$RAW"
	done
	# "... in X s (full scan; N bytes scanned, ...)" from the last (warm) run.
	put_res caskd recovery seconds "$(sed -nE 's/.* in ([0-9.]+) s \(.*/\1/p' <<<"$line")"
	put_res caskd recovery mb_per_s "$(sed -nE 's/.* in ([0-9.]+) s \(.* ([0-9]+) bytes scanned.*/\2 \1/p' <<<"$line" |
		awk '$2 > 0 { printf "%.0f", $1 / $2 / 1e6 }')"
	put_res caskd recovery start_to_healthz_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
	put_res caskd recovery file_mib "$RECOVERY_MB"
	say "  ${line#*info: }"
	say "  start to /healthz 200: $(get_res caskd recovery start_to_healthz_s) s"
	rm -rf "$dir"
}

# Shared memory per key, as used, not as reserved: the table grows with
# the keys (its areas are MAP_NORESERVE address space). 1 M keys stored;
# caskd_index_shared_bytes counts the pages the control region and the
# table use, and the Rss of the master's shared mappings says the same
# from the kernel's side. A table is at its fullest just before it grows
# (0.7 of its slots live), so bytes/key there = bytes / (0.7 x slots).
bench_shm() {
	local dir="$TMP/shm" port pid keys idx slots rss
	mkdir -p "$dir"
	build/bench/mkdb "$dir/database.bin" "shm:,1000000,16" >>"$RAW" || die "mkdb failed"
	port=$(free_port)
	start_bg shm build/caskd --listen "127.0.0.1:$port" --workers 1 --data-dir "$dir"
	wait_http shm "$port" /healthz || { stop_bg shm; return 1; }
	pid=${PIDS[shm]}
	keys=$(metric "$port" caskd_keys)
	idx=$(metric "$port" caskd_index_shared_bytes)
	slots=$(metric "$port" caskd_index_slots)
	rss=$(awk '/^[0-9a-f]+-[0-9a-f]+ ...s / { shared = ($6 == "" || $6 ~ /^\/dev\/zero/ || $6 ~ /^\/SYSV/ || $6 ~ /^\/memfd:/) }
		shared && /^Rss:/ { kb += $2 } END { print kb * 1024 }' "/proc/$pid/smaps")
	stop_bg shm
	put_res caskd shm bytes "$idx"
	put_res caskd shm keys "$keys"
	put_res caskd shm slots "$slots"
	put_res caskd shm rss "$rss"
	put_res caskd shm fullest_per_key "$(awk -v b="$idx" -v s="$slots" 'BEGIN { printf "%.1f", b / (0.7 * s) }')"
	say "shared memory with $keys keys stored: caskd_index_shared_bytes $idx ($slots slots), Rss of shared mappings $rss;" \
		"at the table's fullest $(get_res caskd shm fullest_per_key) bytes/key"
	rm -rf "$dir"
}

# --- caskd only: compaction, start-up, listing, batch (issues 9, 10) -------

# note_warnings NAME: counts the warn/error/fatal lines of NAME's log and
# shows the first five.
note_warnings() {
	put_res "$1" server log_warnings "$(grep -cE ' (warn|error|fatal):' "$TMP/$1.log")"
	grep -E ' (warn|error|fatal):' "$TMP/$1.log" | head -n 5 | sed "s/^/  $1 log: /" | tee -a "$REPORT"
}

# json_field JSON NAME: the value of "NAME" in a flat JSON object.
json_field() {
	sed -nE 's/.*"'"$2"'":("([^"]*)"|([^,}]*)).*/\2\3/p' <<<"$1"
}

# metric PORT NAME: the value of an unlabelled metric from /metrics.
metric() {
	curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $NF }'
}

# median V...: the middle value (the lower of the two middle ones).
median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'
}

# job_wait PORT ID TIMEOUT_S: polls GET /admin/jobs/ID until the job is no
# longer running; prints its last answer. 1 on timeout.
job_wait() {
	local port=$1 id=$2 end json
	end=$(($(date +%s) + $3))
	while :; do
		json=$(curl -s "http://127.0.0.1:$port/admin/jobs/$id")
		[ "$(json_field "$json" state)" != running ] && [ -n "$json" ] && break
		[ "$(date +%s)" -ge "$end" ] && { echo "$json"; return 1; }
		sleep 0.01
	done
	echo "$json"
}

# compact_loop PORT: starts compactions back to back: POST /admin/compact,
# wait until that job is no longer running, start the next one. One line
# per finished job. Runs under start_bg (bash -c), hence self-contained.
compact_loop() {
	local port=$1 id state
	while :; do
		id=$(curl -s -X POST "http://127.0.0.1:$port/admin/compact" | sed -nE 's/.*"job":"([^"]*)".*/\1/p')
		[ -n "$id" ] || { sleep 0.1; continue; }
		while :; do
			state=$(curl -s "http://127.0.0.1:$port/admin/jobs/$id" | sed -nE 's/.*"state":"([^"]*)".*/\1/p')
			[ "$state" = running ] || break
			sleep 0.05
		done
		echo "job $id $state"
	done
}
export -f compact_loop

# compact_data DIR [SPEC...]: a database.bin of COMPACT_MB MiB: 1 KiB
# values over cmp: keys (and the mkdb SPECs, 100-byte values only), all
# rewritten about 4 times, so about a quarter is live. The number of cmp:
# keys goes to CMP_KEYS.
compact_data() {
	local dir=$1 round=$((COMPACT_MB * 1048576 / 4)) spec n
	shift
	# A record: 32-byte header, 16-byte key, value, padding to 8.
	for spec in "$@"; do
		n=${spec#*,}
		round=$((round - ${n%,*} * 152))
	done
	CMP_KEYS=$((round / 1072))
	[ "$CMP_KEYS" -ge 1000 ] || CMP_KEYS=1000
	build/bench/mkdb -b $((COMPACT_MB * 1048576)) "$dir/database.bin" "cmp:,$CMP_KEYS,1024" "$@" >>"$RAW" ||
		die "mkdb failed"
}

# start_caskd NAME DIR CASKD_ARGS...: caskd with 2 workers, group commit,
# on a free port (in PORT), up when it returns 0.
start_caskd() {
	local name=$1 dir=$2
	shift 2
	PORT=$(free_port)
	start_bg "$name" build/caskd --listen "127.0.0.1:$PORT" --workers 2 --data-dir "$dir" \
		--fsync group "$@"
	wait_http "$name" "$PORT" /healthz || { stop_bg "$name"; rm -rf "$dir"; return 1; }
}

bench_compact() {
	local name=caskd-compact dir="$TMP/compact" port t0 t1 json id state secs line phases i
	mkdir -p "$dir"
	compact_data "$dir"
	start_caskd "$name" "$dir" --compact-garbage-pct 0 || return 1
	port=$PORT
	say "compaction of a $COMPACT_MB MiB database.bin ($CMP_KEYS keys x 1 KiB, about 1/4 live; caskd w2 group)"
	t0=$(date +%s.%N)
	json=$(curl -s -X POST "http://127.0.0.1:$port/admin/compact")
	id=$(json_field "$json" job)
	if [ -z "$id" ]; then
		say "  POST /admin/compact failed: $json"
		stop_bg "$name"; rm -rf "$dir"; return 1
	fi
	json=$(job_wait "$port" "$id" 900)
	t1=$(date +%s.%N)
	echo "== compaction job $id: $json" >>"$RAW"
	state=$(json_field "$json" state)
	if [ "$state" != "done" ]; then
		say "  compaction job $id: ${state:-no answer}: $json"
		stop_bg "$name"; rm -rf "$dir"; return 1
	fi
	# The job's own started/finished (ms); the log line has 10 ms steps.
	secs=$(awk -v a="$(date -d "$(json_field "$json" started)" +%s.%N)" \
		-v b="$(date -d "$(json_field "$json" finished)" +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
	put_res caskd compact seconds "$secs"
	put_res caskd compact wall_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
	put_res caskd compact bytes_before "$(json_field "$json" bytes_before)"
	put_res caskd compact bytes_after "$(json_field "$json" bytes_after)"
	put_res caskd compact keys "$(json_field "$json" keys)"
	put_res caskd compact file_mib "$COMPACT_MB"
	put_res caskd compact live_mb_s "$(awk -v b="$(json_field "$json" bytes_after)" -v s="$secs" \
		'BEGIN { if (s > 0) printf "%.1f", b / s / 1e6 }')"
	put_res caskd compact total_mb_s "$(awk -v b="$(json_field "$json" bytes_before)" -v s="$secs" \
		'BEGIN { if (s > 0) printf "%.1f", b / s / 1e6 }')"
	# "compaction N done in X s: database.bin A -> B bytes, K keys (copy C s,
	# catch-up U s, sync S s, writes held off H ms)"
	for ((i = 0; i < 100; i++)); do
		line=$(grep -m1 "compaction $id done in" "$TMP/$name.log") && break
		sleep 0.01
	done
	phases=$(sed -nE 's/.* done in ([0-9.]+) s: .*\(copy ([0-9.]+) s, catch-up ([0-9.]+) s, sync ([0-9.]+) s, writes held off ([0-9.]+) ms\).*/log_s=\1 copy_s=\2 catchup_s=\3 sync_s=\4 held_ms=\5/p' <<<"$line")
	printf '== compaction log: %s\n== compaction phases: %s\n' "$line" "${phases:-(not found)}" >>"$RAW"
	[ -n "$phases" ] && record caskd compact "LOG $phases"
	say "  job $id: $(json_field "$json" bytes_before) -> $(json_field "$json" bytes_after) bytes in $secs s" \
		"(live $(get_res caskd compact live_mb_s) MB/s, total $(get_res caskd compact total_mb_s) MB/s)"
	say "  ${line#*info: }"
	stop_bg "$name"
	note_warnings "$name"
	rm -rf "$dir"
}

# compactlat_cmp NAME PORT SUFFIX: GET and PUT 100 B (workloads get_SUFFIX,
# put_SUFFIX) while a background loop starts a compaction each time the
# previous one is done; records how many finished, the share of the runs
# one was running, and a finished job's mean seconds (job_s).
compactlat_cmp() {
	local name=$1 port=$2 sfx=$3 i c0 s0 s1 d0 d1 t0 t1 n_st n_ok n_bad
	c0=$(metric "$port" caskd_compactions_started_total)
	start_bg compactloop bash -c 'compact_loop "$@"' _ "$port"
	for ((i = 0; i < 500; i++)); do
		[ "$(metric "$port" caskd_compactions_started_total)" != "$c0" ] && break
		sleep 0.01
	done
	d0=$(metric "$port" caskd_compactions_done_total)
	s0=$(metric "$port" caskd_compaction_seconds_total)
	t0=$(date +%s.%N)
	wrk_run "$name" "get_$sfx" get.lua "$port" key: "$NKEYS" 100
	wrk_run "$name" "put_$sfx" put.lua "$port" key: "$NKEYS" 100
	t1=$(date +%s.%N)
	stop_bg compactloop
	# Let the last job finish: a stop would kill it (a warning in the log).
	for ((i = 0; i < 6000; i++)); do
		n_st=$(metric "$port" caskd_compactions_started_total)
		n_ok=$(metric "$port" caskd_compactions_done_total)
		n_bad=$(metric "$port" caskd_compactions_failed_total)
		[ -n "$n_st" ] && [ "$n_st" -le $((${n_ok:-0} + ${n_bad:-0})) ] && break
		kill -0 "${PIDS[$name]}" 2>/dev/null || break
		sleep 0.01
	done
	d1=$(metric "$port" caskd_compactions_done_total)
	s1=$(metric "$port" caskd_compaction_seconds_total)
	put_res "$name" "compacting_$sfx" finished "$((${d1:-0} - ${d0:-0}))"
	put_res "$name" "compacting_$sfx" failed "$(metric "$port" caskd_compactions_failed_total)"
	# share of the two runs that a compaction was running (finished ones)
	put_res "$name" "compacting_$sfx" busy_pct "$(awk -v a="${s0:-0}" -v b="${s1:-0}" -v t0="$t0" -v t1="$t1" \
		'BEGIN { if (t1 > t0) printf "%.0f", 100 * (b - a) / (t1 - t0) }')"
	# a job's mean duration, from its start to its end (the last one
	# finishes after the runs)
	put_res "$name" "compacting_$sfx" job_s "$(awk -v a="${s0:-0}" -v b="${s1:-0}" -v n="$((${d1:-0} - ${d0:-0}))" \
		'BEGIN { if (n > 0) printf "%.2f", (b - a) / n }')"
	say "  compactions finished: $(get_res "$name" "compacting_$sfx" finished)" \
		"(compacting $(get_res "$name" "compacting_$sfx" busy_pct)% of the time; failed:" \
		"$(get_res "$name" "compacting_$sfx" failed); a job took $(get_res "$name" "compacting_$sfx" job_s) s on average)"
}

# Latency with and without compactions running: paced as caskd paces them
# by default (--compaction-rate auto), then again on a fresh file of the
# same kind with --compaction-rate off (unpaced, as before issue 21).
bench_compactlat() {
	local name=caskd-compactlat dir="$TMP/compactlat" port
	mkdir -p "$dir"
	compact_data "$dir" "key:,$NKEYS,100"
	start_caskd "$name" "$dir" --compact-garbage-pct 0 || return 1
	port=$PORT
	say "latency while compactions run ($COMPACT_MB MiB: $CMP_KEYS keys x 1 KiB and $NKEYS x 100 B, about 1/4 live;" \
		"GET and PUT 100 B; caskd w2 group)"
	wrk_run "$name" get get.lua "$port" key: "$NKEYS" 100
	wrk_run "$name" put put.lua "$port" key: "$NKEYS" 100
	say "  compactions paced (--compaction-rate auto):"
	compactlat_cmp "$name" "$port" cmp
	stop_bg "$name"
	note_warnings "$name"
	rm -rf "$dir"
	mkdir -p "$dir"
	compact_data "$dir" "key:,$NKEYS,100"
	start_caskd "$name" "$dir" --compact-garbage-pct 0 --compaction-rate off || return 1
	port=$PORT
	say "  compactions unpaced (--compaction-rate off), a fresh file of the same kind:"
	compactlat_cmp "$name" "$port" off
	stop_bg "$name"
	note_warnings "$name"
	rm -rf "$dir"
}

# startup_once NAME DIR: starts caskd, times start to /healthz 200 (in
# STARTUP_S) and keeps its "recovered" log line (in STARTUP_LINE).
startup_once() {
	local name=$1 dir=$2 port t0 t1
	port=$(free_port)
	t0=$(date +%s.%N)
	start_bg "$name" build/caskd --listen "127.0.0.1:$port" --workers 2 --data-dir "$dir" --fsync group
	wait_http "$name" "$port" /healthz || { stop_bg "$name"; return 1; }
	t1=$(date +%s.%N)
	STARTUP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	STARTUP_LINE=$(grep -m1 'recovered ' "$TMP/$name.log")
}

bench_startup() {
	local name=caskd-startup dir="$TMP/startup" kind run rs idx what
	local -a start rec
	mkdir -p "$dir"
	build/bench/mkdb "$dir/database.bin" "st:,$STARTUP_KEYS,16" >>"$RAW" || die "mkdb failed"
	say "start-up with $STARTUP_KEYS keys x 16 B (caskd w2 group; 3 starts each, medians)"
	# clean: after a clean stop (SIGTERM writes database.idx); crash: after
	# kill -9 of the whole group (the database.idx of the last clean stop
	# is still there, and caskd may use it and replay the log after it);
	# scan: after kill -9 with database.idx removed, a full scan.
	# The first start scans; its clean stop writes database.idx.
	startup_once "$name" "$dir" || { rm -rf "$dir"; return 1; }
	echo "== startup first: $STARTUP_S s: $STARTUP_LINE" >>"$RAW"
	stop_bg "$name"
	[ -f "$dir/database.idx" ] || say "  note: no database.idx after a clean stop"
	for kind in clean crash scan; do
		start=() rec=() idx=0
		for run in 1 2 3; do
			[ "$kind" = scan ] && rm -f "$dir/database.idx"
			startup_once "$name" "$dir" || { rm -rf "$dir"; return 1; }
			echo "== startup after $kind stop, run $run: $STARTUP_S s: $STARTUP_LINE" >>"$RAW"
			start+=("$STARTUP_S")
			rs=$(sed -nE 's/.* in ([0-9.]+) s \(.*/\1/p' <<<"$STARTUP_LINE")
			[ -n "$rs" ] && rec+=("$rs")
			[[ $STARTUP_LINE == *"index from database.idx"* ]] && idx=$((idx + 1))
			# Ends the way the next start is to be measured after.
			if [ "$kind" = clean ] && [ "$run" -lt 3 ]; then
				stop_bg "$name"
			else
				kill9_bg "$name"
			fi
		done
		put_res caskd startup "${kind}_start_s" "$(median "${start[@]}")"
		put_res caskd startup "${kind}_recover_s" "$(median "${rec[@]}")"
		put_res caskd startup "${kind}_from_idx" "$idx"
		case $kind in
		clean) what="a clean stop" ;;
		crash) what="kill -9 of the group" ;;
		*) what="kill -9, database.idx removed" ;;
		esac
		say "  after $what:" \
			"start to /healthz 200 $(get_res caskd startup "${kind}_start_s") s" \
			"(runs: ${start[*]}; caskd's recovery $(get_res caskd startup "${kind}_recover_s") s;" \
			"index from database.idx in $idx of 3)"
	done
	put_res caskd startup keys "$STARTUP_KEYS"
	put_res caskd startup runs 3
	say "  last: ${STARTUP_LINE#*info: }"
	note_warnings "$name"
	rm -rf "$dir"
}

# The listing loop of bench_keys: GET /keys?limit=1000 after a random key,
# one after another on one keep-alive connection; a line per listing.
KEYS_LOOP='
import http.client, random, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = None
while True:
    try:
        if c is None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/keys?prefix=lst:&limit=1000&start_after=lst:%012d" % random.randrange(n))
        r = c.getresponse()
        r.read()
        print(r.status, flush=True)
    except (OSError, http.client.HTTPException):
        c = None
'

# The full listing of bench_keys: every key under a prefix, page after page
# of 1000 on one keep-alive connection; prints the keys and the seconds.
KEYS_ALL='
import http.client, sys, time, urllib.parse
port, prefix = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
after, n, t0 = "", 0, time.monotonic()
while True:
    q = "/keys?limit=1000&prefix=" + urllib.parse.quote(prefix)
    if after:
        q += "&start_after=" + urllib.parse.quote(after)
    c.request("GET", q)
    r = c.getresponse()
    body = r.read().decode()
    if r.status != 200:
        sys.exit("status %d" % r.status)
    keys = body.split()
    n += len(keys)
    if r.getheader("X-Truncated") != "true" or not keys:
        break
    after = urllib.parse.unquote(keys[-1])
print(n, "%.3f" % (time.monotonic() - t0))
'

# keys_pages RESULT_SET PORT NKEYS: LIST_PAGES pages of 1000, after keys
# spread over the key space, on one keep-alive connection, one at a time
# (the first one also builds the worker's ordered view: not counted).
keys_pages() {
	local set=$1 port=$2 n=$3 i out
	local -a urls=() times=()
	curl -s -o /dev/null "http://127.0.0.1:$port/keys?prefix=lst:&limit=1000"
	for ((i = 0; i < LIST_PAGES; i++)); do
		urls+=(-o /dev/null "http://127.0.0.1:$port/keys?prefix=lst:&limit=1000&start_after=$(printf 'lst:%012d' \
			$(((i * n / LIST_PAGES + RANDOM) % n)))")
	done
	out=$(curl -s -w '%{http_code} %{time_total}\n' "${urls[@]}")
	printf '== keys pages, %s keys (code, seconds)\n%s\n' "$n" "$out" >>"$RAW"
	mapfile -t times < <(awk '$1 == 200 { printf "%.3f\n", $2 * 1000 }' <<<"$out")
	put_res caskd-keys "$set" pages "${#times[@]}"
	put_res caskd-keys "$set" keys "$n"
	put_res caskd-keys "$set" p50_ms "$(median "${times[@]}")"
	put_res caskd-keys "$set" p99_ms "$(printf '%s\n' "${times[@]}" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) { i = int(NR * 0.99); if (i < NR * 0.99) i++; print a[i] } }')"
	say "  $n keys: GET /keys?limit=1000: median $(get_res caskd-keys "$set" p50_ms) ms," \
		"p99 $(get_res caskd-keys "$set" p99_ms) ms (${#times[@]} of $LIST_PAGES pages answered 200)"
}

# keys_restart NAME DIR: a clean stop and a start of the same data, then
# the first pages after it, each on a new connection (so each worker's
# first listing is among them: with an ordered view loaded from
# database.idx it is a page like any other, built by a sort it is the
# build); reports the stop, the start and the first and slowest of
# RESTART_PAGES pages, with their ratio to a warm page (page p50_ms, on
# a kept-alive connection), and to the median of RESTART_PAGES more
# pages on new connections once warm (a new connection costs its own).
RESTART_PAGES=4
keys_restart() {
	local name=$1 dir=$2 t0 t1 t2 out i
	local -a times=() warm=()
	t0=$(date +%s.%N)
	stop_bg "$name"
	t1=$(date +%s.%N)
	start_caskd "$name" "$dir" --compact-garbage-pct 0 || return 1
	t2=$(date +%s.%N)
	# then as many again, the workers warm by now: the same kind of
	# page (a new connection each, a part of the keys not read yet)
	for ((i = 0; i < 2 * RESTART_PAGES; i++)); do
		out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' \
			"http://127.0.0.1:$PORT/keys?prefix=lst:&limit=1000&start_after=$(printf 'lst:%012d' \
			$((((2 * i + 1) * LIST_KEYS / (4 * RESTART_PAGES) + RANDOM) % LIST_KEYS)))")
		printf '== keys page %d after restart (code, seconds): %s\n' "$i" "$out" >>"$RAW"
		[ "${out%% *}" = 200 ] || continue
		if ((i < RESTART_PAGES)); then
			times+=("$(awk -v s="${out##* }" 'BEGIN { printf "%.3f", s * 1000 }')")
		else
			warm+=("$(awk -v s="${out##* }" 'BEGIN { printf "%.3f", s * 1000 }')")
		fi
	done
	put_res "$name" restart stop_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
	put_res "$name" restart start_s "$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }')"
	put_res "$name" restart pages "${#times[@]}"
	put_res "$name" restart first_ms "${times[0]:-}"
	put_res "$name" restart max_ms "$(printf '%s\n' "${times[@]}" | sort -g | tail -n 1)"
	put_res "$name" restart warm_new_conn_ms "$(median "${warm[@]}")"
	say "  first GET /keys page after restart, $LIST_KEYS keys: $(get_res "$name" restart first_ms) ms" \
		"($(awk -v a="$(get_res "$name" restart first_ms)" -v b="$(get_res "$name" page p50_ms)" \
		'BEGIN { if (b > 0) printf "%.1fx", a / b }') a warm page); slowest of the first" \
		"$RESTART_PAGES: $(get_res "$name" restart max_ms) ms" \
		"($(awk -v a="$(get_res "$name" restart max_ms)" -v b="$(get_res "$name" page p50_ms)" \
		'BEGIN { if (b > 0) printf "%.1fx", a / b }')); the next $RESTART_PAGES (warm, also on new" \
		"connections): median $(get_res "$name" restart warm_new_conn_ms) ms, so the slowest first page is" \
		"$(awk -v a="$(get_res "$name" restart max_ms)" -v b="$(get_res "$name" restart warm_new_conn_ms)" \
		'BEGIN { if (b > 0) printf "%.1fx", a / b }') of that; clean stop $(get_res "$name" restart stop_s) s," \
		"start $(get_res "$name" restart start_s) s"
}

bench_keys() {
	local name=caskd-keys dir="$TMP/keys" port i out lines n0 n1 t0 t1
	# the reference: the same pages with 10 k keys stored
	mkdir -p "$dir"
	build/bench/mkdb "$dir/database.bin" "lst:,$LIST_REF_KEYS,100" >>"$RAW" || die "mkdb failed"
	start_caskd "$name" "$dir" --compact-garbage-pct 0 || return 1
	say "listing with $LIST_REF_KEYS and with $LIST_KEYS keys stored (caskd w2 group)"
	keys_pages page_ref "$PORT" "$LIST_REF_KEYS"
	stop_bg "$name"
	rm -rf "$dir"
	mkdir -p "$dir"
	build/bench/mkdb "$dir/database.bin" "lst:,$LIST_KEYS,100" >>"$RAW" || die "mkdb failed"
	start_caskd "$name" "$dir" --compact-garbage-pct 0 || return 1
	port=$PORT
	keys_pages page "$port" "$LIST_KEYS"
	say "  a page at $LIST_KEYS keys / at $LIST_REF_KEYS keys (medians):" \
		"$(awk -v a="$(get_res "$name" page p50_ms)" -v b="$(get_res "$name" page_ref p50_ms)" \
		'BEGIN { if (b > 0) printf "%.2fx", a / b }')"
	lines=$(curl -s "http://127.0.0.1:$port/keys?prefix=lst:&limit=1000" | wc -l)
	put_res "$name" page lines "$lines"
	# both workers have built their views by now (two connections each
	# went to one): the full listing measures pages, not the builds
	for ((i = 0; i < 2; i++)); do
		out=$($PY -c "$KEYS_ALL" "$port" lst: 2>&1)
		printf '== keys full listing %d: %s\n' "$i" "$out" >>"$RAW"
	done
	put_res "$name" full keys "${out%% *}"
	put_res "$name" full seconds "${out##* }"
	say "  all $(get_res "$name" full keys) keys listed, 1000 a page: $(get_res "$name" full seconds) s"
	keys_restart "$name" "$dir" || return 1
	port=$PORT
	wrk_run "$name" put put.lua "$port" lst: "$LIST_KEYS" 100
	start_bg keysloop $PY -c "$KEYS_LOOP" "$port" "$LIST_KEYS"
	for ((i = 0; i < 500; i++)); do
		[ -s "$TMP/keysloop.log" ] && break
		sleep 0.01
	done
	n0=$(wc -l <"$TMP/keysloop.log")
	t0=$(date +%s.%N)
	wrk_run "$name" put_lst put.lua "$port" lst: "$LIST_KEYS" 100
	t1=$(date +%s.%N)
	n1=$(wc -l <"$TMP/keysloop.log")
	put_res "$name" put_lst listings_per_s "$(awk -v a="$n0" -v b="$n1" -v t0="$t0" -v t1="$t1" \
		'BEGIN { if (t1 > t0) printf "%.1f", (b - a) / (t1 - t0) }')"
	put_res "$name" put_lst listings_non200 "$(grep -vc '^200$' "$TMP/keysloop.log")"
	stop_bg keysloop
	say "  listings during the PUT run: $(get_res "$name" put_lst listings_per_s)/s" \
		"(non-200: $(get_res "$name" put_lst listings_non200))"
	stop_bg "$name"
	note_warnings "$name"
	rm -rf "$dir"
}

bench_batch() {
	local name=caskd-batch dir="$TMP/batch" port
	mkdir -p "$dir"
	build/bench/mkdb "$dir/database.bin" "key:,$NKEYS,100" >>"$RAW" || die "mkdb failed"
	# No compaction by itself: 1000-key batches make garbage fast.
	start_caskd "$name" "$dir" --compact-garbage-pct 0 || return 1
	port=$PORT
	say "batch: POST /batch of $BATCH_OPS puts x 100 B beside single PUTs (caskd w2 group)"
	wrk_run "$name" put100 put.lua "$port" key: "$NKEYS" 100
	wrk_run "$name" batch batch.lua "$port" bat: "$BATCH_OPS" 100
	put_res "$name" batch ops "$BATCH_OPS"
	put_res "$name" batch keys_per_s "$(awk -v r="$(get_res "$name" batch rps)" -v n="$BATCH_OPS" \
		'BEGIN { if (r != "") printf "%.0f", r * n }')"
	say "  batch: $(get_res "$name" batch keys_per_s) keys/s = $(awk -v k="$(get_res "$name" batch keys_per_s)" \
		-v p="$(get_res "$name" put100 rps)" 'BEGIN { if (p > 0) printf "%.1f", k / p }')x single PUT req/s"
	stop_bg "$name"
	note_warnings "$name"
	rm -rf "$dir"
}

# --- caskd only: the index alone (issue 14) ----------------------------------

# bench/idxbench: no HTTP, no daemon. N reader and N writer processes on
# a store of NKEYS keys x 100 B, for N = 1 .. 2 x nproc, INDEX_SECONDS
# each. One result set per N (workload nN), and the tool's settings
# (workload setup).
bench_index() {
	local out rc line n name pass fail=0
	for pass in 1 16; do
		name=caskd-index
		[ "$pass" = 1 ] || name=caskd-index-pass
		say "index alone: bench/idxbench, $NKEYS keys x 100 B; N reader + N writer processes," \
			"N = 1 .. $((2 * $(nproc))), $INDEX_SECONDS s each (no HTTP); writers: $pass PUT(s) a call"
		out=$(build/bench/idxbench -k "$NKEYS" -d "$INDEX_SECONDS" -p "$pass" 2>&1)
		rc=$?
		printf '== idxbench -p %s (exit %s)\n%s\n' "$pass" "$rc" "$out" >>"$RAW"
		line=$(grep '^IDXBENCH ' <<<"$out" | tail -n 1)
		[ -n "$line" ] && record "$name" setup "$line"
		while read -r line; do
			n=$(sed -nE 's/^IDX n=([0-9]+) .*/\1/p' <<<"$line")
			[ -n "$n" ] || continue
			record "$name" "n$n" "$line"
			say "$(printf '  N=%-3s GET/s per process %9.0f  PUT/s per process %8.0f  PUT/CPU-s %8.0f  GET/s total %9.0f  PUT/s total %8.0f  lock wait %7.1f ms' \
				"$n" "$(get_res "$name" "n$n" get_per_proc)" "$(get_res "$name" "n$n" put_per_proc)" \
				"$(get_res "$name" "n$n" put_per_cpu_s)" \
				"$(get_res "$name" "n$n" get_total)" "$(get_res "$name" "n$n" put_total)" \
				"$(get_res "$name" "n$n" lock_wait_ms)")"
		done < <(grep '^IDX ' <<<"$out")
		if [ "$rc" != 0 ]; then
			say "  idxbench failed (exit $rc):"
			grep -v '^IDX' <<<"$out" | tail -n 5 | sed 's/^/  /' | tee -a "$REPORT"
			fail=1
		fi
	done
	return $fail
}

# --- caskd only: /watch (issue 20) -------------------------------------------

# One worker in group mode: WATCH_IDLE idle watches (memory each, the
# worker's CPU while they idle); a watcher of everything beside PUT of
# 100 B at full rate (its events per second against the PUT rate); and
# the delay from a PUT's answer to its line on a watch.
bench_watch() {
	local name=caskd-watch dir="$TMP/watch" port worker out line fpid
	mkdir -p "$dir"
	start_caskd "$name" "$dir" --workers 1 --max-conns $((WATCH_IDLE + 1000)) \
		--max-watches $((WATCH_IDLE + 10)) || return 1
	port=$PORT
	worker=$(pgrep -P "${PIDS[$name]}" | head -n 1)
	say "watch: $WATCH_IDLE idle watches on one worker; one watcher beside PUT 100 B at full rate;" \
		"PUT-to-event delay x $WATCH_SAMPLES (caskd w1 group)"
	out=$(ulimit -n $((WATCH_IDLE + 1000)) 2>/dev/null
		build/bench/watchbench idle "$port" "$WATCH_IDLE" "$worker" "$DURATION" 2>&1)
	printf '== watchbench idle\n%s\n' "$out" >>"$RAW"
	line=$(grep '^WATCH mode=idle' <<<"$out")
	if [ -n "$line" ]; then
		record "$name" idle "$line"
		say "  idle: $(get_res "$name" idle bytes_per_watch) bytes of the worker's memory per watch;" \
			"worker CPU $(get_res "$name" idle cpu_pct)% over ${DURATION} s of idle watches"
	else
		say "  idle: watchbench failed: $(tail -n 1 <<<"$out")"
	fi
	build/bench/watchbench follow "$port" "$DURATION" >"$TMP/watch-follow.out" 2>&1 &
	fpid=$!
	wrk_run "$name" put100 put.lua "$port" key: "$NKEYS" 100
	wait "$fpid"
	out=$(cat "$TMP/watch-follow.out")
	printf '== watchbench follow\n%s\n' "$out" >>"$RAW"
	line=$(grep '^WATCH mode=follow' <<<"$out")
	if [ -n "$line" ]; then
		record "$name" follow "$line"
		say "  follow: $(get_res "$name" follow events_per_s) events/s seen while PUT ran at" \
			"$(get_res "$name" put100 rps) req/s: $(awk -v e="$(get_res "$name" follow events_per_s)" \
			-v p="$(get_res "$name" put100 rps)" 'BEGIN { if (p > 0) printf "%.2f", e / p }')x (goal: 1.00x)"
	fi
	out=$(build/bench/watchbench latency "$port" "$WATCH_SAMPLES" 2>&1)
	printf '== watchbench latency\n%s\n' "$out" >>"$RAW"
	line=$(grep '^WATCH mode=latency' <<<"$out")
	if [ -n "$line" ]; then
		record "$name" latency "$line"
		say "  PUT answered -> its line on a watch: p50 $(get_res "$name" latency p50_ms) ms," \
			"p99 $(get_res "$name" latency p99_ms) ms, p99.9 $(get_res "$name" latency p999_ms) ms," \
			"max $(get_res "$name" latency max_ms) ms"
	fi
	stop_bg "$name"
	note_warnings "$name"
	rm -rf "$dir"
}

# --- main -------------------------------------------------------------------

[ -x build/caskd ] || die "build/caskd is missing: run 'make bench' (it builds it)"
for s in ${ONLY//,/ }; do
	[[ " $SECTIONS " == *" $s "* ]] || die "BENCH_ONLY: unknown section '$s' (sections: $SECTIONS)"
done
install_deps
build_tools
TMP=$(mktemp -d /tmp/caskd-bench.XXXXXX) || die "mktemp failed"
chmod 755 "$TMP" # nginx's worker (user nobody) reads its files from here
RES="$TMP/results.tsv"
: >"$RES"

FREE_MB=$(df -Pm "$TMP" | awk 'NR == 2 { print $4 }')
RECOVERY_MB=${BENCH_RECOVERY_MB:-1024}
if [ -z "${BENCH_RECOVERY_MB:-}" ] && [ "$FREE_MB" -lt 3072 ]; then
	RECOVERY_MB=256
fi
COMPACT_MB=${BENCH_COMPACT_MB:-1024}
if [ -z "${BENCH_COMPACT_MB:-}" ] && [ "$FREE_MB" -lt 3072 ]; then
	COMPACT_MB=256
fi
record_env
[ "$RECOVERY_MB" -lt 1024 ] && say "note: recovery file is $RECOVERY_MB MiB, not 1 GiB ($FREE_MB MB free under $TMP)"
[ "$COMPACT_MB" -lt 1024 ] && say "note: compaction file is $COMPACT_MB MiB, not 1 GiB ($FREE_MB MB free under $TMP)"

START=$(date +%s)
PACED_GET_RATE=0
if want caskd; then
	for cfg in $CASKD_CONFIGS; do
		bench_caskd "${cfg%%:*}" "${cfg#*:}"
	done
fi
want nginx && bench_nginx
if want redis; then
	bench_redis redis --appendonly no
	bench_redis redis-aof --appendonly yes --appendfsync always
fi
if want naive; then
	bench_naive naive-shipped 0
	bench_naive naive-nodelay 1
fi
want recovery && bench_recovery
want shm && bench_shm
want compact && bench_compact
want compactlat && bench_compactlat
want startup && bench_startup
want keys && bench_keys
want batch && bench_batch
want index && bench_index
want watch && bench_watch
say ""
say "load at end: $(cut -d' ' -f1-3 /proc/loadavg); took $(($(date +%s) - START)) s"
say ""
$PY bench/report.py "$RES" | tee -a "$REPORT"
cp "$RES" "bench/results/$STAMP.tsv"
say ""
say "report: $REPORT  raw tool output: $RAW  figures: bench/results/$STAMP.tsv"
