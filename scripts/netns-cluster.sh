#!/usr/bin/env bash
# A local Chorus cluster whose channel nodes each run in their own Linux network namespace, so
# that faults can be injected the way they happen: a process killed or frozen, or the network
# between nodes cut. It is what the load tester's `chaos` scenario drives (its --ctl), and what
# loadtest/tests/chaos.rs starts. docs/CLUSTER.md ("Chaos") explains it.
#
#   scripts/netns-cluster.sh up              namespaces, bridge, relays, 3 channel nodes, 2 gateways
#   scripts/netns-cluster.sh status [--json] every node, shard, leader, term, commit index
#   scripts/netns-cluster.sh endpoints       the gateways' addresses
#   scripts/netns-cluster.sh kill NAME       kill -9 (node-1..3, gateway-1..2)
#   scripts/netns-cluster.sh restart NAME    start it again (after kill or stop), wait until it serves
#   scripts/netns-cluster.sh stop NAME       SIGTERM and wait for the exit (a graceful stop)
#   scripts/netns-cluster.sh pause NAME      SIGSTOP (the process freezes; its sockets stay open)
#   scripts/netns-cluster.sh resume NAME     SIGCONT
#   scripts/netns-cluster.sh partition NODE  cut NODE off from the other channel nodes (both ways);
#                                            gateways still reach it. NODE may be `leader`: the node
#                                            leading the most shards. Prints the node's name.
#   scripts/netns-cluster.sh heal            undo every partition
#   scripts/netns-cluster.sh down            stop everything, remove namespaces, bridge and relays
#
# Topology: a bridge in the root namespace holds SUBNET.1; node-N lives in namespace
# chorus-TAG-node-N with SUBNET.1N on a veth attached to the bridge, and listens there (QUIC
# transport 7101, ops 9461). Gateways run in the root namespace (they reach the nodes through the
# bridge) on 127.0.0.1. The machine's PostgreSQL and Redis listen on 127.0.0.1 of the root
# namespace only, so the script relays SUBNET.1:5432 and SUBNET.1:6379 to them
# (scripts/tcp-relay.py). A partition is made with static neighbour (ARP) entries that send the
# other side's packets to a MAC address nobody has: they leave and are silently lost, as on a cut
# link (this kernel has no tc classifiers, and a blackhole route would fail the sends rather than
# lose them).
#
# Settings (environment): CHORUS_CLUSTER_DIR (state, default ./chorus-netns-cluster), CHORUS_BIN
# (default target/release/chorus), CHORUS_NETNS_TAG (names: default c), CHORUS_NETNS_SUBNET
# (first three octets, default 10.77.0), CHORUS_NETNS_PORT_BASE (gateway ports: REST BASE,
# WS BASE+1, gateway-2 BASE+2/BASE+3; ops BASE+10, BASE+11; default 8180), CHORUS_CLUSTER_DB,
# CHORUS_CLUSTER_PG, CHORUS_CLUSTER_REDIS, CHORUS_SHARD_COUNT (16), CHORUS_CLUSTER_CONFIG.
# Needs root (network namespaces) and iproute2.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${CHORUS_CLUSTER_DIR:-$PWD/chorus-netns-cluster}
BIN=${CHORUS_BIN:-$PWD/target/release/chorus}
TAG=${CHORUS_NETNS_TAG:-c}
SUBNET=${CHORUS_NETNS_SUBNET:-10.77.0}
BASE=${CHORUS_NETNS_PORT_BASE:-8180}
DB=${CHORUS_CLUSTER_DB:-chorus_netns_cluster}
PG_HOST=${CHORUS_CLUSTER_PG_HOST:-127.0.0.1}
PG_PORT=${CHORUS_CLUSTER_PG_PORT:-5432}
REDIS_HOST=${CHORUS_CLUSTER_REDIS_HOST:-127.0.0.1}
REDIS_PORT=${CHORUS_CLUSTER_REDIS_PORT:-6379}
SHARDS=${CHORUS_SHARD_COUNT:-16}
NODES=(node-1 node-2 node-3)
GATEWAYS=(gateway-1 gateway-2)
BRIDGE="chbr-$TAG"
# A MAC address no interface has: frames sent to it are lost.
NOWHERE=02:00:00:00:00:00

ns_of() { echo "chorus-$TAG-$1"; }
ip_of() { echo "$SUBNET.1${1#node-}"; }
host_veth() { echo "ch$TAG-n${1#node-}"; }
api_port() { echo $((BASE + 2 * (${1#gateway-} - 1))); }
ws_port() { echo $((BASE + 1 + 2 * (${1#gateway-} - 1))); }
gw_ops_port() { echo $((BASE + 9 + ${1#gateway-})); }
seeds() { echo "1=$(ip_of node-1):7101,2=$(ip_of node-2):7101,3=$(ip_of node-3):7101"; }
seed_addrs() { echo "$(ip_of node-1):7101,$(ip_of node-2):7101,$(ip_of node-3):7101"; }

pid_of() { cat "$DIR/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
known() { case $1 in node-[123] | gateway-[12]) return 0 ;; *) echo "unknown process $1 (node-1..3, gateway-1..2)" >&2; exit 2 ;; esac; }

net_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$SUBNET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  fi
  for n in "${NODES[@]}"; do
    local ns veth
    ns=$(ns_of "$n")
    veth=$(host_veth "$n")
    ip netns list | grep -qx "$ns\( .*\)\?" || ip netns add "$ns"
    if ! ip link show "$veth" >/dev/null 2>&1; then
      ip link add "$veth" type veth peer name eth0 netns "$ns"
      ip link set "$veth" master "$BRIDGE" up
      ip -n "$ns" link set lo up
      ip -n "$ns" addr add "$(ip_of "$n")/24" dev eth0
      ip -n "$ns" link set eth0 up
    fi
  done
  relay redis "$REDIS_HOST:$REDIS_PORT" 6379
  relay postgres "$PG_HOST:$PG_PORT" 5432
}

relay() {
  local name=relay-$1 target=$2 port=$3
  alive "$name" && return
  nohup python3 scripts/tcp-relay.py "$SUBNET.1:$port" "$target" >>"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
  for _ in $(seq 1 50); do
    python3 - "$SUBNET.1" "$port" <<'EOF' 2>/dev/null && return
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.2).close()
EOF
    sleep 0.1
  done
  echo "the $1 relay did not start; see $DIR/$name.log" >&2
  exit 1
}

net_down() {
  for n in "${NODES[@]}"; do
    ip netns del "$(ns_of "$n")" 2>/dev/null || true
    ip link del "$(host_veth "$n")" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
}

start() {
  local name=$1
  known "$name"
  if alive "$name"; then echo "$name is already running (pid $(pid_of "$name"))"; return; fi
  local config=()
  if [ -n "${CHORUS_CLUSTER_CONFIG:-}" ]; then config=(--config "$CHORUS_CLUSTER_CONFIG"); fi
  local common=(serve "${config[@]}" --data-dir "$DIR/$name" --seeds "$(seeds)"
    --shard-count "$SHARDS" --replication 3
    --tls-ca "$DIR/certs/ca.pem" --tls-cert "$DIR/certs/$name.pem" --tls-key "$DIR/certs/$name.key")
  case $name in
    node-*)
      local id=${name#node-} here
      here=$(ip_of "$name")
      nohup ip netns exec "$(ns_of "$name")" "$BIN" "${common[@]}" --role channel --node-id "$id" \
        --messages-url "postgres://postgres@$SUBNET.1:5432/$DB" --bus-url "redis://$SUBNET.1:6379" \
        --metadata-url "postgres://postgres@$SUBNET.1:5432/$DB" --presence-url "redis://$SUBNET.1:6379" \
        --ops-addr "$here:9461" --cluster-listen "$here:7101" >>"$DIR/$name.log" 2>&1 &
      ;;
    gateway-*)
      local pg="postgres://postgres@$PG_HOST:$PG_PORT/$DB" redis="redis://$REDIS_HOST:$REDIS_PORT"
      nohup "$BIN" "${common[@]}" --role gateway,api --metadata-url "$pg" --messages-url "$pg" \
        --bus-url "$redis" --presence-url "$redis" --rate-limit-url "$redis" --session-url "$redis" \
        --jwt-secret "$(cat "$DIR/jwt-secret")" --ops-addr "127.0.0.1:$(gw_ops_port "$name")" \
        --api-addr "127.0.0.1:$(api_port "$name")" --ws-addr "127.0.0.1:$(ws_port "$name")" \
        >>"$DIR/$name.log" 2>&1 &
      ;;
  esac
  # `ip netns exec` and nohup exec the binary: the pid is the chorus process's.
  echo $! >"$DIR/$name.pid"
  echo "started $name (pid $!, log $DIR/$name.log)" >&2
}

# A gateway serves once its REST API answers; a node once its ops listener says it is live.
wait_serving() {
  local name=$1 url
  case $name in
    gateway-*) url="http://127.0.0.1:$(api_port "$name")/healthz" ;;
    node-*) url="http://$(ip_of "$name"):9461/livez" ;;
  esac
  for _ in $(seq 1 240); do
    if curl -fsS -m 1 "$url" >/dev/null 2>&1; then return 0; fi
    if ! alive "$name"; then echo "$name exited; see $DIR/$name.log" >&2; tail -20 "$DIR/$name.log" >&2; return 1; fi
    sleep 0.25
  done
  echo "$name did not start serving; see $DIR/$name.log" >&2
  return 1
}

status() {
  "$BIN" cluster status --seeds "$(seed_addrs)" \
    --tls-ca "$DIR/certs/ca.pem" --tls-cert "$DIR/certs/admin.pem" --tls-key "$DIR/certs/admin.key" "$@"
}

# The node leading the most shards, from `status --json`.
leader() {
  status --json | python3 -c '
import json, sys
leads = {}
for node in json.load(sys.stdin).values():
    if isinstance(node, dict) and "node_id" in node:
        leads[node["node_id"]] = sum(1 for s in node["shards"] if s["group"]["state"] == "Leader")
best = max(leads, key=lambda n: leads[n]) if leads else None
if best is None or leads[best] == 0:
    sys.exit("no channel node leads a shard")
print(f"node-{best}")
'
}

# Waits up to $2 tenths of a second for NAME's process to be gone.
wait_gone() {
  for _ in $(seq 1 "$2"); do alive "$1" || return 0; sleep 0.1; done
  ! alive "$1"
}

signal() {
  local sig=$1 name=$2 pid
  known "$name"
  pid=$(pid_of "$name")
  if [ -n "$pid" ] && kill "-$sig" "$pid" 2>/dev/null; then echo "$name"; else echo "$name is not running" >&2; exit 1; fi
}

case ${1:-} in
  up)
    [ "$(id -u)" = 0 ] || { echo "network namespaces need root" >&2; exit 1; }
    mkdir -p "$DIR"
    if [ -z "${CHORUS_BIN:-}" ]; then cargo build --release --locked -p chorus; fi
    [ -f "$DIR/certs/ca.pem" ] || "$BIN" cluster certs --dir "$DIR/certs" "${NODES[@]}" "${GATEWAYS[@]}" admin >/dev/null
    [ -f "$DIR/jwt-secret" ] || head -c 48 /dev/urandom | base64 | tr -d '\n' >"$DIR/jwt-secret"
    psql "postgres://postgres@$PG_HOST:$PG_PORT/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 \
      || psql "postgres://postgres@$PG_HOST:$PG_PORT/postgres" -qc "CREATE DATABASE $DB"
    net_up
    for n in "${NODES[@]}"; do start "$n"; done
    for n in "${NODES[@]}"; do wait_serving "$n"; done
    for g in "${GATEWAYS[@]}"; do start "$g"; done
    for g in "${GATEWAYS[@]}"; do wait_serving "$g"; done
    "$0" endpoints
    ;;
  endpoints)
    for g in "${GATEWAYS[@]}"; do
      echo "$g: REST http://127.0.0.1:$(api_port "$g")  WebSocket ws://127.0.0.1:$(ws_port "$g")"
    done
    for n in "${NODES[@]}"; do echo "$n: namespace $(ns_of "$n")  transport quic://$(ip_of "$n"):7101  ops http://$(ip_of "$n"):9461"; done
    ;;
  status) shift; status "$@" ;;
  leader) leader ;;
  kill)
    signal KILL "${2:?kill NAME}"
    wait_gone "$2" 50 || { echo "$2 survived SIGKILL for 5 s" >&2; exit 1; }
    ;;
  pause) signal STOP "${2:?pause NAME}" ;;
  resume) signal CONT "${2:?resume NAME}" ;;
  stop)
    name=${2:?stop NAME}
    kill -CONT "$(pid_of "$name")" 2>/dev/null || true
    signal TERM "$name" >/dev/null
    if ! wait_gone "$name" 100; then
      kill -9 "$(pid_of "$name")"; wait_gone "$name" 50 || true
      echo "$name did not stop in 10 s: killed" >&2
    fi
    echo "$name"
    ;;
  restart)
    name=${2:?restart NAME}
    known "$name"
    if alive "$name"; then "$0" stop "$name" >/dev/null; fi
    start "$name"
    wait_serving "$name"
    echo "$name"
    ;;
  partition)
    name=${2:?partition NODE|leader}
    [ "$name" = leader ] && name=$(leader)
    known "$name"
    for other in "${NODES[@]}"; do
      [ "$other" = "$name" ] && continue
      ip -n "$(ns_of "$name")" neigh replace "$(ip_of "$other")" lladdr $NOWHERE dev eth0 nud permanent
      ip -n "$(ns_of "$other")" neigh replace "$(ip_of "$name")" lladdr $NOWHERE dev eth0 nud permanent
    done
    echo "$name"
    ;;
  heal)
    for n in "${NODES[@]}"; do
      for other in "${NODES[@]}"; do
        [ "$other" = "$n" ] || ip -n "$(ns_of "$n")" neigh del "$(ip_of "$other")" dev eth0 2>/dev/null || true
      done
    done
    echo healed
    ;;
  down)
    for p in "${GATEWAYS[@]}" "${NODES[@]}"; do
      if alive "$p"; then kill -CONT "$(pid_of "$p")" 2>/dev/null || true; kill "$(pid_of "$p")"; fi
    done
    for _ in $(seq 1 20); do
      running=0
      for p in "${GATEWAYS[@]}" "${NODES[@]}"; do alive "$p" && running=1; done
      [ $running = 0 ] && break
      sleep 0.5
    done
    for p in "${GATEWAYS[@]}" "${NODES[@]}" relay-redis relay-postgres; do
      alive "$p" && kill -9 "$(pid_of "$p")"
      rm -f "$DIR/$p.pid"
    done
    net_down
    echo "cluster stopped (data kept in $DIR; remove it and drop database $DB for a fresh start)"
    ;;
  *) sed -n '2,36p' "$0"; exit 2 ;;
esac
