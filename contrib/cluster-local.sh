#!/usr/bin/env bash
# `make cluster`: etcd, three caskd members and HAProxy on loopback ports
# of this machine, to try a group (docs/cluster.md). Ctrl-C stops all.
set -euo pipefail
CASKD=${CASKD:-build/caskd}
DIR=${CLUSTER_DIR:-./cluster-data}
BASE=${CLUSTER_PORT:-7100}
ETCD_PORT=$((BASE + 79)); ETCD_PEER=$((BASE + 80)); FRONT=$((BASE))
mkdir -p "$DIR"
pids=()
stop() {
	trap - INT TERM EXIT
	echo; echo "stopping..."
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "stopped; data left in $DIR"
}
trap stop INT TERM EXIT
etcd --name caskd-try --data-dir "$DIR/etcd" \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
	--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
	--initial-cluster "caskd-try=http://127.0.0.1:$ETCD_PEER" >"$DIR/etcd.log" 2>&1 &
pids+=($!)
for i in 1 2 3; do
	mkdir -p "$DIR/n$i"
	"$CASKD" --listen "127.0.0.1:$((BASE + i))" --data-dir "$DIR/n$i" --workers 2 \
		--cluster try --etcd "http://127.0.0.1:$ETCD_PORT" --node "n$i" \
		--advertise "http://127.0.0.1:$((BASE + i))" >"$DIR/n$i.log" 2>&1 &
	pids+=($!)
done
cat >"$DIR/haproxy.cfg" <<CFG
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend caskd
    bind 127.0.0.1:$FRONT
    default_backend members
backend members
    option httpchk GET /cluster/primary
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
    server n1 127.0.0.1:$((BASE + 1)) check
    server n2 127.0.0.1:$((BASE + 2)) check
    server n3 127.0.0.1:$((BASE + 3)) check
CFG
haproxy -f "$DIR/haproxy.cfg" -db >"$DIR/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$FRONT/cluster/primary" >/dev/null 2>&1 && break
	sleep 0.2
done
cat <<MSG
A caskd group is up (logs and data in $DIR):
  etcd        http://127.0.0.1:$ETCD_PORT
  members     http://127.0.0.1:$((BASE + 1))  :$((BASE + 2))  :$((BASE + 3))
  HAProxy     http://127.0.0.1:$FRONT   (to the primary)

Try:
  curl -i -X PUT --data-binary hello http://127.0.0.1:$FRONT/kv/greeting
  curl -i http://127.0.0.1:$FRONT/kv/greeting
  curl -s http://127.0.0.1:$((BASE + 1))/cluster/status
  kill the primary's master (see "role":"primary" in the status above)
  and watch another member take over within seconds.
Ctrl-C stops everything.
MSG
wait
