#!/usr/bin/env bash
# bench/run.sh — the caskd benchmark harness (`make bench` runs it).
#
# Runs caskd beside nginx (static file, the HTTP ceiling), redis (the peer
# users know) and the naive FastAPI design (what caskd replaces) on
# loopback, with the same workloads and client settings, and prints one
# report with a table of results and the target ratios. Everything it
# starts runs in its own process group under a temp dir and is stopped
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
			build/libcaskd.a || die "building bench/paced.c or bench/mkdb.c failed"
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
	say "           stale check $STALE_THREADS threads x $STALE_OPS PUT+GET pairs; recovery file $RECOVERY_MB MiB"
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
	[ "$w" = 2 ] && stale_run "$name" "$port"
	# What the server itself counted: answers other than 2xx/3xx, and
	# its warnings/errors.
	put_res "$name" server non2xx "$(curl -s "http://127.0.0.1:$port/metrics" |
		awk '/^caskd_requests_total\{/ && !/code="[23]/ { n += $NF } END { print n + 0 }')"
	stop_bg "$name"
	put_res "$name" server log_warnings "$(grep -cE ' (warn|error|fatal):' "$TMP/$name.log")"
	grep -E ' (warn|error|fatal):' "$TMP/$name.log" | head -n 5 | sed "s/^/  $name log: /" | tee -a "$REPORT"
	rm -rf "$dir"
}

# --- nginx ------------------------------------------------------------------

bench_nginx() {
	local dir="$TMP/nginx" port
	port=$(free_port)
	mkdir -p "$dir/www" "$dir/tmp"
	head -c 100 /dev/zero | tr '\0' v >"$dir/www/v100"
	head -c 1024 /dev/zero | tr '\0' v >"$dir/www/v1k"
	head -c 65536 /dev/zero | tr '\0' v >"$dir/www/v64k"
	# One worker, no access log, keep-alive without a request cap; the
	# /kv/<prefix>... paths of the wrk scripts all map to one static file.
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
		        location = /healthz { try_files /v100 =404; }
		    }
		}
	EOF
	start_bg nginx nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
	wait_http nginx "$port" /healthz || { stop_bg nginx; return 1; }
	say "nginx (port $port, static files)"
	wrk_run nginx get100 get.lua "$port" key: "$NKEYS" 100
	wrk_run nginx get1k get.lua "$port" k1k: "$BIG_KEYS" 1024
	wrk_run nginx get64k get.lua "$port" k64k: "$BIG_KEYS" 65536
	[ "${PACED_GET_RATE:-0}" -gt 0 ] && paced_run nginx paced_get "$port" "$PACED_GET_RATE" get
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
	# "... N bytes in X s (Y MB/s)" from the last (warm) run.
	put_res caskd recovery seconds "$(sed -E 's/.* in ([0-9.]+) s .*/\1/' <<<"$line")"
	put_res caskd recovery mb_per_s "$(sed -E 's/.*\(([0-9.]+) MB\/s\).*/\1/' <<<"$line")"
	put_res caskd recovery start_to_healthz_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
	put_res caskd recovery file_mib "$RECOVERY_MB"
	say "  ${line#*info: }"
	say "  start to /healthz 200: $(get_res caskd recovery start_to_healthz_s) s"
	rm -rf "$dir"
}

# Sums the shared anonymous mappings (MAP_SHARED|MAP_ANONYMOUS shows as
# "/dev/zero (deleted)"; SysV and memfd shm also count) of the master.
bench_shm() {
	local dir="$TMP/shm" port pid bytes largest n
	mkdir -p "$dir"
	port=$(free_port)
	start_bg shm build/caskd --listen "127.0.0.1:$port" --workers 1 --data-dir "$dir" \
		--max-keys 1000000
	wait_http shm "$port" /healthz || { stop_bg shm; return 1; }
	pid=${PIDS[shm]}
	grep -E '^[0-9a-f]+-[0-9a-f]+ ...s ' "/proc/$pid/maps" >>"$RAW"
	bytes=0 largest=0
	while read -r range perms _ _ _ path; do
		case "$perms:$path" in
		???s:|???s:/dev/zero*|???s:/SYSV*|???s:/memfd:*|???s:/dev/shm/*)
			n=$((16#${range#*-} - 16#${range%-*}))
			bytes=$((bytes + n))
			[ "$n" -gt "$largest" ] && largest=$n ;;
		esac
	done <"/proc/$pid/maps"
	stop_bg shm
	put_res caskd shm bytes "$bytes"
	put_res caskd shm largest "$largest"
	put_res caskd shm max_keys 1000000
	say "shared memory: $bytes bytes of shared anonymous mappings at --max-keys 1000000 (largest: $largest)"
	rm -rf "$dir"
}

# --- main -------------------------------------------------------------------

[ -x build/caskd ] || die "build/caskd is missing: run 'make bench' (it builds it)"
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
record_env
[ "$RECOVERY_MB" -lt 1024 ] && say "note: recovery file is $RECOVERY_MB MiB, not 1 GiB ($FREE_MB MB free under $TMP)"

START=$(date +%s)
PACED_GET_RATE=0
for cfg in $CASKD_CONFIGS; do
	bench_caskd "${cfg%%:*}" "${cfg#*:}"
done
bench_nginx
bench_redis redis --appendonly no
bench_redis redis-aof --appendonly yes --appendfsync always
bench_naive naive-shipped 0
bench_naive naive-nodelay 1
bench_recovery
bench_shm
say ""
say "load at end: $(cut -d' ' -f1-3 /proc/loadavg); took $(($(date +%s) - START)) s"
say ""
$PY bench/report.py "$RES" | tee -a "$REPORT"
cp "$RES" "bench/results/$STAMP.tsv"
say ""
say "report: $REPORT  raw tool output: $RAW  figures: bench/results/$STAMP.tsv"
