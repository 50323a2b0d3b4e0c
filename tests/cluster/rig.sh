#!/usr/bin/env bash
# tests/cluster/rig.sh — the network-namespace rig of the cluster drills.
#
# One network namespace per machine: etcd (198.51.100.2), members n1..n3
# (198.51.100.11..13, port 7070) and the client with HAProxy
# (198.51.100.100, frontend port 8080). A sixth namespace holds only the
# bridge ("the switch"), so the host's own network is never touched: every
# address is TEST-NET-2 and lives inside the namespaces. Partitions are nft
# drop rules in the machines' namespaces (a table `rig`, symmetric: both
# ends drop), stalls are SIGSTOP/SIGCONT of a member's process group,
# crashes are SIGKILL of the group.
#
# State lives in $RIG_STATE (a directory: pids, logs, data dirs, configs);
# the namespaces are named $RIG_NAME-<machine> and derived from the state
# dir, so two rigs (two engineers) never collide.
#
#   rig.sh up                  namespaces, bridge, etcd, HAProxy
#   rig.sh start NODE [ARGS]   start member NODE (n1..n3), extra caskd args
#   rig.sh kill9 NODE|all      SIGKILL a member's process group
#   rig.sh term NODE           SIGTERM and wait (graceful stop)
#   rig.sh pause NODE / resume NODE   SIGSTOP / SIGCONT
#   rig.sh wipe NODE           replace NODE's data dir by an empty one
#   rig.sh cut A B             drop all traffic between machines A and B
#   rig.sh isolate A           cut A from every other machine
#   rig.sh heal                remove every partition rule
#   rig.sh primary             print the member whose /cluster/primary is 200
#   rig.sh alive NODE          exit 0 if the member's master runs
#   rig.sh exec MACHINE CMD... run CMD inside MACHINE's namespace
#   rig.sh down                stop everything, delete namespaces and state
#   rig.sh ready               exit 0 when there is 1 primary, 2 replicas
#   rig.sh run CMD...          up, run CMD with RIG_* exported, down (trap)
#   rig.sh guard CMD...        run CMD, then down (trap) whatever happens
#
# Needs root, iproute2, nftables, etcd (etcd-server), haproxy, curl.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
RIG_STATE=${RIG_STATE:-/tmp/caskd-rig}
RIG_NAME=${RIG_NAME:-ckd$(printf '%s' "$RIG_STATE" | cksum | cut -c1-6)}
CASKD_BIN=${CASKD_BIN:-$HERE/../../build/caskd}
RIG_CLUSTER=${RIG_CLUSTER:-drill}
RIG_LEASE_TTL=${RIG_LEASE_TTL:-5}
export RIG_STATE RIG_NAME

NET=198.51.100
ETCD_IP=$NET.2
CLIENT_IP=$NET.100
MEMBER_PORT=7070
FRONT_PORT=8080
MACHINES="etcd n1 n2 n3 cl"

ip_of() {
	case $1 in
	etcd) echo $ETCD_IP ;;
	n1) echo $NET.11 ;;
	n2) echo $NET.12 ;;
	n3) echo $NET.13 ;;
	cl | client | haproxy) echo $CLIENT_IP ;;
	*) echo "rig: unknown machine '$1'" >&2; exit 2 ;;
	esac
}
ns() { echo "$RIG_NAME-$1"; }
nsx() { local m=$1; shift; ip netns exec "$(ns "$m")" "$@"; }
log() { echo "rig: $*" >&2; }

need_tools() {
	local t miss=""
	[ "$(id -u)" = 0 ] || { log "must run as root"; exit 3; }
	for t in ip nft etcd haproxy curl setsid; do
		command -v $t >/dev/null || miss="$miss $t"
	done
	[ -z "$miss" ] || { log "missing tools:$miss (etcd-server haproxy nftables curl iproute2)"; exit 3; }
}

# Spawns CMD in machine M's namespace as a new session; records its pid.
spawn() {
	local m=$1 name=$2; shift 2
	ip netns exec "$(ns "$m")" setsid "$@" >>"$RIG_STATE/$name.log" 2>&1 </dev/null &
	echo $! >"$RIG_STATE/$name.pid"
}

pid_of() { cat "$RIG_STATE/$1.pid" 2>/dev/null || true; }
# A dead process nobody reaped yet (a zombie) does not count as alive.
alive_pid() {
	local st
	[ -n "$1" ] || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Waits up to $2 tenths of a second for curl URL (run in the client ns)
# to answer 200.
wait_http() {
	local url=$1 tries=$2
	while [ "$tries" -gt 0 ]; do
		if [ "$(nsx cl curl -s -o /dev/null -m 1 -w '%{http_code}' "$url" || true)" = 200 ]; then
			return 0
		fi
		sleep 0.1
		tries=$((tries - 1))
	done
	return 1
}

up_net() {
	ip netns add "$(ns sw)"
	ip -n "$(ns sw)" link set lo up
	ip -n "$(ns sw)" link add br0 type bridge
	ip -n "$(ns sw)" link set br0 up
	for m in $MACHINES; do
		ip netns add "$(ns $m)"
		ip -n "$(ns sw)" link add "v-$m" type veth peer name eth0 netns "$(ns $m)"
		ip -n "$(ns sw)" link set "v-$m" master br0 up
		ip -n "$(ns $m)" link set lo up
		ip -n "$(ns $m)" addr add "$(ip_of $m)/24" dev eth0
		ip -n "$(ns $m)" link set eth0 up
	done
}

up_etcd() {
	spawn etcd etcd etcd --name e1 --data-dir "$RIG_STATE/etcd.data" \
		--listen-client-urls "http://$ETCD_IP:2379" \
		--advertise-client-urls "http://$ETCD_IP:2379" \
		--listen-peer-urls "http://$ETCD_IP:2380" \
		--initial-advertise-peer-urls "http://$ETCD_IP:2380" \
		--initial-cluster "e1=http://$ETCD_IP:2380" \
		--initial-cluster-state new --log-level warn
	wait_http "http://$ETCD_IP:2379/health" 150 || { log "etcd did not come up"; tail -20 "$RIG_STATE/etcd.log" >&2; exit 1; }
}

up_haproxy() {
	cat >"$RIG_STATE/haproxy.cfg" <<EOF
global
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 0
frontend caskd
    bind $CLIENT_IP:$FRONT_PORT
    default_backend members
backend members
    option httpchk GET /cluster/primary
    default-server inter 300ms fastinter 200ms downinter 300ms fall 2 rise 1 on-marked-down shutdown-sessions
    server n1 $(ip_of n1):$MEMBER_PORT check
    server n2 $(ip_of n2):$MEMBER_PORT check
    server n3 $(ip_of n3):$MEMBER_PORT check
EOF
	haproxy -c -q -f "$RIG_STATE/haproxy.cfg"
	spawn cl haproxy haproxy -db -f "$RIG_STATE/haproxy.cfg"
	sleep 0.3
	alive_pid "$(pid_of haproxy)" || { log "haproxy did not start"; tail -20 "$RIG_STATE/haproxy.log" >&2; exit 1; }
}

cmd_up() {
	need_tools
	cmd_down 2>/dev/null || true
	mkdir -p "$RIG_STATE"
	up_net
	up_etcd
	up_haproxy
	log "up: $RIG_NAME (state $RIG_STATE)"
}

member_url() { echo "http://$(ip_of $1):$MEMBER_PORT"; }

cmd_start() {
	local n=$1; shift
	local p
	p=$(pid_of "$n")
	if alive_pid "$p"; then log "$n already runs ($p)"; return 0; fi
	mkdir -p "$RIG_STATE/$n.data"
	spawn "$n" "$n" "$CASKD_BIN" --listen "$(ip_of $n):$MEMBER_PORT" \
		--data-dir "$RIG_STATE/$n.data" --workers 2 \
		--cluster "$RIG_CLUSTER" --etcd "http://$ETCD_IP:2379" \
		--node "$n" --advertise "$(member_url $n)" --group-size 3 \
		--lease-ttl "$RIG_LEASE_TTL" "$@"
}

# SIG to the member's process group (master and workers).
signal_member() {
	local sig=$1 n=$2 p
	p=$(pid_of "$n")
	alive_pid "$p" || return 0
	kill "-$sig" -- "-$p" 2>/dev/null || kill "-$sig" "$p" 2>/dev/null || true
}

members_of() { if [ "$1" = all ]; then echo n1 n2 n3; else echo "$1"; fi; }

wait_gone() {
	local p=$1 tries=$2
	while alive_pid "$p" && [ "$tries" -gt 0 ]; do sleep 0.1; tries=$((tries - 1)); done
	! alive_pid "$p"
}

cmd_kill9() {
	local n p
	for n in $(members_of "$1"); do
		p=$(pid_of "$n")
		signal_member KILL "$n"
		# Workers are in the same group; the master is our child only
		# in the shell that spawned it, so poll instead of wait.
		[ -z "$p" ] || wait_gone "$p" 50 || log "$n ($p) survived SIGKILL"
	done
}

cmd_term() {
	local n=$1 p
	p=$(pid_of "$n")
	signal_member CONT "$n"
	signal_member TERM "$n"
	wait_gone "$p" 150 || { log "$n ignored SIGTERM; SIGKILL"; cmd_kill9 "$n"; }
}

cmd_wipe() {
	local n=$1
	alive_pid "$(pid_of "$n")" && { log "wipe: $n still runs"; exit 1; }
	rm -rf "$RIG_STATE/$n.data"
	mkdir -p "$RIG_STATE/$n.data"
}

rules_for() {
	local m=$1 peer
	shift
	printf 'table inet rig {\n chain in { type filter hook input priority -10;\n'
	for peer in "$@"; do printf '  ip saddr %s drop\n' "$(ip_of $peer)"; done
	printf ' }\n chain out { type filter hook output priority -10;\n'
	for peer in "$@"; do printf '  ip daddr %s drop\n' "$(ip_of $peer)"; done
	printf ' }\n}\n'
}

# Adds peers to machine m's drop list (the table is rebuilt from a file).
block() {
	local m=$1 peer=$2 f="$RIG_STATE/cut.$1"
	touch "$f"
	grep -qx "$peer" "$f" || echo "$peer" >>"$f"
	# shellcheck disable=SC2046
	rules_for "$m" $(cat "$f") >"$f.nft"
	nsx "$m" nft delete table inet rig 2>/dev/null || true
	nsx "$m" nft -f "$f.nft"
}

cmd_cut() { block "$1" "$2"; block "$2" "$1"; }

cmd_isolate() {
	local a=$1 m
	for m in $MACHINES; do [ "$m" = "$a" ] || cmd_cut "$a" "$m"; done
}

cmd_heal() {
	local m
	for m in $MACHINES; do
		nsx "$m" nft delete table inet rig 2>/dev/null || true
		rm -f "$RIG_STATE/cut.$m" "$RIG_STATE/cut.$m.nft"
	done
}

cmd_primary() {
	local n
	for n in n1 n2 n3; do
		if [ "$(nsx cl curl -s -o /dev/null -m 1 -w '%{http_code}' "$(member_url $n)/cluster/primary" || true)" = 200 ]; then
			echo "$n"
			return 0
		fi
	done
	return 1
}

cmd_down() {
	local m n p
	for n in n1 n2 n3; do signal_member CONT "$n"; signal_member KILL "$n"; done
	for n in haproxy etcd; do
		p=$(pid_of "$n")
		alive_pid "$p" && kill -KILL "$p" 2>/dev/null || true
	done
	# Anything else still running inside a namespace (a workload).
	for m in $MACHINES sw; do
		if ip netns list | grep -qw "$(ns $m)"; then
			for p in $(ip netns pids "$(ns $m)" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
			ip netns delete "$(ns $m)" 2>/dev/null || true
		fi
	done
	if [ -d "$RIG_STATE" ] && [ -z "${RIG_KEEP:-}" ]; then rm -rf "$RIG_STATE"; fi
	log "down: $RIG_NAME"
}

# 0 when one member is primary and the two others are caught-up replicas.
cmd_ready() {
	local n p=0 r=0
	for n in n1 n2 n3; do
		[ "$(nsx cl curl -s -o /dev/null -m 1 -w '%{http_code}' "$(member_url $n)/cluster/primary" || true)" = 200 ] && p=$((p + 1))
		[ "$(nsx cl curl -s -o /dev/null -m 1 -w '%{http_code}' "$(member_url $n)/cluster/replica" || true)" = 200 ] && r=$((r + 1))
	done
	[ $p = 1 ] && [ $r = 2 ]
}

# Runs CMD (the drill) and takes down whatever rig it left, however it ends.
cmd_guard() {
	trap 'cmd_down' EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$RIG_STATE"
	"$@"
}

cmd_run() {
	trap 'cmd_down' EXIT
	trap 'exit 130' INT TERM
	cmd_up
	"$@"
}

cmd=${1:-}
[ -n "$cmd" ] || { sed -n '2,35p' "$0"; exit 2; }
shift
case $cmd in
up) cmd_up ;;
down) cmd_down ;;
start) cmd_start "$@" ;;
kill9) cmd_kill9 "$1" ;;
term) for n in $(members_of "$1"); do cmd_term "$n"; done ;;
pause) for n in $(members_of "$1"); do signal_member STOP "$n"; done ;;
resume) for n in $(members_of "$1"); do signal_member CONT "$n"; done ;;
wipe) cmd_wipe "$1" ;;
cut) cmd_cut "$1" "$2" ;;
isolate) cmd_isolate "$1" ;;
heal) cmd_heal ;;
primary) cmd_primary ;;
alive) alive_pid "$(pid_of "$1")" ;;
url) if [ "$1" = front ]; then echo "http://$CLIENT_IP:$FRONT_PORT"; else member_url "$1"; fi ;;
exec) m=$1; shift; exec ip netns exec "$(ns "$m")" "$@" ;;
ready) cmd_ready ;;
guard) cmd_guard "$@" ;;
run) cmd_run "$@" ;;
*) log "unknown command '$cmd'"; exit 2 ;;
esac
