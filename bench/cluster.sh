#!/usr/bin/env bash
# bench/cluster.sh — a group's figures (docs/cluster.md, issue 19), all
# measured in one run on this machine, as ratios where a reference exists:
#  1. PUT throughput and tails acknowledged by a majority of a group of 3,
#     direct to the primary and through HAProxy, against one caskd in
#     group mode (the same workers, the same wrk load);
#  2. the write outage clients see through HAProxy when the primary is
#     killed (kill -9 of all its processes) or paused (SIGSTOP past its
#     lease, then SIGCONT): p50 and max over CLUSTER_KILLS + CLUSTER_PAUSES;
#  3. catch-up of a member started with an empty directory (MB/s) against
#     GET /admin/snapshot of the same store on the primary.
# Members, etcd, HAProxy and wrk share the machine's cores: absolute
# figures are this machine's, the ratios are the result.
#
# Environment: BENCH_DURATION (s per wrk run, 5), CLUSTER_KILLS (20),
# CLUSTER_PAUSES (10), CLUSTER_CATCHUP_MB (256), CLUSTER_WORKERS (2).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
DURATION=${BENCH_DURATION:-5}
KILLS=${CLUSTER_KILLS:-20}
PAUSES=${CLUSTER_PAUSES:-10}
CATCHUP_MB=${CLUSTER_CATCHUP_MB:-256}
WORKERS=${CLUSTER_WORKERS:-2}
TTL=5
BASE=17400
ETCD=$((BASE + 79))
FRONT=$((BASE + 0))
SINGLE=$((BASE + 9))
TMP=$(mktemp -d /tmp/caskd-clbench.XXXXXX)
mkdir -p bench/results
OUT=bench/results/cluster-$(date -u +%Y%m%dT%H%M%SZ).txt
pids=()
say() { echo "$*" | tee -a "$OUT"; }
cleanup() {
	pkill -CONT -f "cluster clbench" 2>/dev/null
	pkill -TERM -f "cluster clbench" 2>/dev/null
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 1
	pkill -KILL -f "cluster clbench" 2>/dev/null
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
gcc -O2 -o "$TMP/failover" bench/failover.c || exit 1

member() { # member I
	mkdir -p "$TMP/n$1"
	build/caskd --listen "127.0.0.1:$((BASE + $1))" --data-dir "$TMP/n$1" --workers "$WORKERS" \
		--cluster clbench --etcd "http://127.0.0.1:$ETCD" --node "n$1" --lease-ttl $TTL \
		--advertise "http://127.0.0.1:$((BASE + $1))" >>"$TMP/n$1.log" 2>&1 &
}
primary() { # the member index answering /cluster/primary, or nothing
	for i in 1 2 3; do
		curl -sf -m 1 "http://127.0.0.1:$((BASE + i))/cluster/primary" >/dev/null && { echo "$i"; return; }
	done
}
wait_primary() {
	for _ in $(seq 1 150); do [ -n "$(primary)" ] && return 0; sleep 0.2; done
	return 1
}
wrk_put() { # NAME PORT -> "rps p50 p99 p999 errors" (ms)
	local out
	out=$(wrk -t2 -c64 -d"${DURATION}s" --timeout 10s --latency -s bench/wrk/put.lua \
		"http://127.0.0.1:$2" -- key: 10000 100 2>&1)
	echo "$out" >>"$TMP/wrk.log"
	awk -v name="$1" '
		/Requests\/sec/ { rps = $2 }
		/^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 } /^ +99.900%/ { p999 = $2 }
		/Non-2xx/ { err = $NF }
		function ms(s) { if (s ~ /us$/) return s / 1000; if (s ~ /ms$/) return s + 0; if (s ~ /s$/) return s * 1000; return s }
		END { printf "%s %.0f %.2f %.2f %.2f %d\n", name, rps, ms(p50), ms(p99), ms(p999), err }' <<<"$out"
}

say "== caskd group figures, $(date -u +%FT%TZ), $(nproc) cores, $WORKERS workers per member, lease $TTL s"
# --- 1. throughput and tails --------------------------------------------------
mkdir -p "$TMP/single"
build/caskd --listen "127.0.0.1:$SINGLE" --data-dir "$TMP/single" --workers "$WORKERS" \
	--fsync group >"$TMP/single.log" 2>&1 &
pids+=($!)
sleep 1.5
S=$(wrk_put single "$SINGLE")
kill -TERM "${pids[0]}"; sleep 1
etcd --data-dir "$TMP/etcd" --listen-client-urls "http://127.0.0.1:$ETCD" \
	--advertise-client-urls "http://127.0.0.1:$ETCD" --listen-peer-urls "http://127.0.0.1:$((ETCD + 1))" \
	--initial-advertise-peer-urls "http://127.0.0.1:$((ETCD + 1))" \
	--initial-cluster "default=http://127.0.0.1:$((ETCD + 1))" >"$TMP/etcd.log" 2>&1 &
pids+=($!)
sleep 1.5
for i in 1 2 3; do member $i; done
contrib/haproxy-local.sh "$FRONT" $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) >"$TMP/hap.cfg"
haproxy -f "$TMP/hap.cfg" -db >"$TMP/hap.log" 2>&1 &
pids+=($!)
wait_primary || { say "no primary came up"; exit 1; }
sleep 1.5
P=$(primary)
D=$(wrk_put direct "$((BASE + P))")
H=$(wrk_put haproxy "$FRONT")
say ""
say "PUT 100 B, wrk -t2 -c64 ${DURATION}s   req/s      p50 ms   p99 ms   p99.9 ms  non-2xx"
for l in "$S" "$D" "$H"; do
	read -r n r a b c e <<<"$l"
	say "$(printf '  %-32s %8s %9s %8s %9s %6s' "$n" "$r" "$a" "$b" "$c" "$e")"
done
read -r _ sr _ sp99 _ _ <<<"$S"
read -r _ dr _ dp99 _ _ <<<"$D"
read -r _ hr _ hp99 _ _ <<<"$H"
say "  group (direct) / single:  throughput $(awk -v a="$dr" -v b="$sr" 'BEGIN{printf "%.2f", a/b}')x (goal >= 0.5x), p99 $(awk -v a="$dp99" -v b="$sp99" 'BEGIN{printf "%.2f", a/b}')x (goal <= 3x)"
say "  group (HAProxy) / single: throughput $(awk -v a="$hr" -v b="$sr" 'BEGIN{printf "%.2f", a/b}')x, p99 $(awk -v a="$hp99" -v b="$sp99" 'BEGIN{printf "%.2f", a/b}')x"

# --- 2. failover ----------------------------------------------------------------
total=$((KILLS + PAUSES))
secs=$((total * 14 + 10))
"$TMP/failover" 127.0.0.1 "$FRONT" "$secs" >"$TMP/failover.out" &
FPID=$!
sleep 3
for f in $(seq 1 "$total"); do
	P=$(primary)
	[ -n "$P" ] || { sleep 2; P=$(primary); }
	[ -n "$P" ] || continue
	mp=$(pgrep -f "node n$P " | head -n 50)
	if [ "$f" -le "$KILLS" ]; then
		kill -KILL $mp 2>/dev/null
		sleep 8
		member "$P"
		sleep 6
	else
		kill -STOP $mp 2>/dev/null
		sleep $((TTL + 3))
		kill -CONT $mp 2>/dev/null
		sleep 6
	fi
done
wait "$FPID"
say ""
say "Failover through HAProxy ($KILLS kill -9 of the primary, $PAUSES pauses of $((TTL + 3)) s; lease $TTL s):"
awk -v kills="$KILLS" '
	/^OUTAGE/ { split($3, a, "="); ms[++n] = a[2] }
	/^FAILOVER/ { w = $0 }
	END {
		if (!n) { print "  no outage seen"; exit }
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (ms[j] < ms[i]) { t = ms[i]; ms[i] = ms[j]; ms[j] = t }
		printf "  outages seen: %d; write outage p50 %.1f s, max %.1f s (goal p50 <= 5 s, max <= 10 s)\n", n, ms[int((n + 1) / 2)] / 1000, ms[n] / 1000
		print "  " w
	}' "$TMP/failover.out" | tee -a "$OUT"
cp "$TMP/failover.out" "${OUT%.txt}.failover"

# --- 3. catch-up ------------------------------------------------------------------
wait_primary
P=$(primary)
PU="http://127.0.0.1:$((BASE + P))"
head -c 65536 /dev/urandom >"$TMP/val"
n=$((CATCHUP_MB * 16))
for i in $(seq 1 "$n"); do echo "url = \"$PU/kv/big$((i % (n / 2)))\""; echo "upload-file = \"$TMP/val\""; echo "output = /dev/null"; echo "request = PUT"; done >"$TMP/curl.cfg"
curl -s --parallel --parallel-max 8 -K "$TMP/curl.cfg" >/dev/null
bytes=$(stat -c %s "$TMP/n$P/database.bin")
t0=$(date +%s.%N)
curl -s -o "$TMP/snap.bin" "$PU/admin/snapshot"
t1=$(date +%s.%N)
sbytes=$(stat -c %s "$TMP/snap.bin")
snap=$(awk -v b="$sbytes" -v a="$t0" -v c="$t1" 'BEGIN{printf "%.1f", b / 1048576 / (c - a)}')
R=$(( P % 3 + 1 ))
pkill -KILL -f "node n$R " ; sleep 1
rm -rf "$TMP/n$R"
top=$(curl -s "$PU/cluster/status" | grep -o '"version":[0-9]*' | head -n 1 | cut -d: -f2)
t0=$(date +%s.%N)
member "$R"
for _ in $(seq 1 1200); do
	v=$(curl -s -m 1 "http://127.0.0.1:$((BASE + R))/cluster/status" | grep -o '"version":[0-9]*' | head -n 1 | cut -d: -f2)
	[ -n "$v" ] && [ "$v" -ge "$top" ] && break
	sleep 0.1
done
t1=$(date +%s.%N)
cu=$(awk -v b="$sbytes" -v a="$t0" -v c="$t1" 'BEGIN{printf "%.1f", b / 1048576 / (c - a)}')
say ""
say "Catch-up of a member with an empty directory ($((sbytes / 1048576)) MiB store, database.bin $((bytes / 1048576)) MiB):"
say "  snapshot from the primary: $snap MB/s; the new member caught up at $cu MB/s (start to holding the primary's version): $(awk -v a="$cu" -v b="$snap" 'BEGIN{printf "%.2f", a/b}')x of the snapshot"
grep -h "full copy\|copying" "$TMP/n$R.log" | tail -n 2 | sed 's/^/  log: /' | tee -a "$OUT"
say ""
say "(report: $OUT)"
