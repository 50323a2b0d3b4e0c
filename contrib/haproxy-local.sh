#!/usr/bin/env bash
# contrib/haproxy-local.sh FRONT_PORT PORT... — prints an HAProxy config
# for a caskd group on loopback: FRONT_PORT to whichever member answers
# GET /cluster/primary with 200 (the checks of contrib/haproxy.cfg).
# Used by `make cluster` (contrib/cluster-local.sh) and bench/cluster.sh.
set -euo pipefail
front=$1
shift
cat <<CFG
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend caskd
    bind 127.0.0.1:$front
    default_backend members
backend members
    option httpchk GET /cluster/primary
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
CFG
i=0
for port in "$@"; do
	i=$((i + 1))
	echo "    server n$i 127.0.0.1:$port check"
done
