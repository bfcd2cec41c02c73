#!/usr/bin/env bash
# A real local Chorus cluster on this machine: 3 channel nodes and 2 gateways (each also serving
# the REST API), on the machine's PostgreSQL and Redis. docs/CLUSTER.md explains what runs.
#
#   scripts/cluster.sh up              build (release) if needed, make certificates, start all
#   scripts/cluster.sh status          every node, shard, replica set, leader, term, commit index
#   scripts/cluster.sh kill NAME       kill -9 one process (node-1..3, gateway-1..N)
#   scripts/cluster.sh kill-leader     kill -9 the channel node leading the most shards; prints its name
#   scripts/cluster.sh restart NAME    start it again (after kill), same data directory
#   scripts/cluster.sh join N          start channel node-N (N >= 4) with --join: the cluster moves
#                                      about a 1/(nodes) share of the replicas onto it
#   scripts/cluster.sh drain N         move every replica off node-N (undrain N takes it back)
#   scripts/cluster.sh decommission N  drain node-N, then remove it from the cluster for good
#   scripts/cluster.sh down            stop everything (SIGTERM, then SIGKILL after 10 s)
#   scripts/cluster.sh endpoints       print the addresses
#   scripts/cluster.sh cpu             CPU seconds used so far by each running process, and their sum
#
# Settings (environment): CHORUS_CLUSTER_DIR (state, default ./chorus-cluster), CHORUS_BIN
# (default target/release/chorus), CHORUS_CLUSTER_DB (PostgreSQL database, default
# chorus_cluster), CHORUS_SHARD_COUNT (16), CHORUS_REPLICATION (3), CHORUS_CLUSTER_CONFIG (a
# config file every process reads before its flags, e.g. deploy/bench.toml for load tests),
# CHORUS_GATEWAYS (how many gateway processes, 1-9, default 2: one process holds at most ~19,900
# sockets here, so 100,000 connections need six).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${CHORUS_CLUSTER_DIR:-$PWD/chorus-cluster}
BIN=${CHORUS_BIN:-$PWD/target/release/chorus}
DB=${CHORUS_CLUSTER_DB:-chorus_cluster}
PG=${CHORUS_CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
REDIS=${CHORUS_CLUSTER_REDIS:-redis://127.0.0.1:6379}
SHARDS=${CHORUS_SHARD_COUNT:-16}
REPLICATION=${CHORUS_REPLICATION:-3}
NODES=(node-1 node-2 node-3)
GATEWAY_COUNT=${CHORUS_GATEWAYS:-2}
[[ "$GATEWAY_COUNT" =~ ^[1-9]$ ]] || { echo "CHORUS_GATEWAYS must be 1-9" >&2; exit 2; }
GATEWAYS=()
for g in $(seq 1 "$GATEWAY_COUNT"); do GATEWAYS+=("gateway-$g"); done
SEEDS="1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103"

transport_port() { echo $((7100 + ${1#node-})); }
api_port() { echo $((8080 + 2 * (${1#gateway-} - 1))); }
ws_port() { echo $((8081 + 2 * (${1#gateway-} - 1))); }
# /metrics, /livez, /readyz (docs/OPERATIONS.md): node-N on 946N, gateway-N on 947N.
ops_port() { case $1 in node-*) echo $((9460 + ${1#node-})) ;; *) echo $((9470 + ${1#gateway-})) ;; esac; }

pid_of() { cat "$DIR/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

start() {
  local name=$1
  if alive "$name"; then echo "$name is already running (pid $(pid_of "$name"))"; return; fi
  local config=()
  if [ -n "${CHORUS_CLUSTER_CONFIG:-}" ]; then config=(--config "$CHORUS_CLUSTER_CONFIG"); fi
  local common=(serve "${config[@]}" --data-dir "$DIR/$name" --seeds "$SEEDS"
    --shard-count "$SHARDS" --replication "$REPLICATION"
    --tls-ca "$DIR/certs/ca.pem" --tls-cert "$DIR/certs/$name.pem" --tls-key "$DIR/certs/$name.key"
    --messages-url "$PG/$DB" --bus-url "$REDIS" --ops-addr "127.0.0.1:$(ops_port "$name")")
  case $name in
    node-*)
      local id=${name#node-} join=()
      # A node beyond the three seeds joins the running cluster (and again after a restart).
      if [ "$id" -gt 3 ]; then join=(--join); fi
      nohup "$BIN" "${common[@]}" --role channel --node-id "$id" "${join[@]}" \
        --metadata-url "$PG/$DB" --presence-url "$REDIS" --cluster-listen "127.0.0.1:$(transport_port "$name")" >>"$DIR/$name.log" 2>&1 &
      ;;
    gateway-*)
      nohup "$BIN" "${common[@]}" --role gateway,api --metadata-url "$PG/$DB" \
        --presence-url "$REDIS" --rate-limit-url "$REDIS" --session-url "$REDIS" --jwt-secret "$(cat "$DIR/jwt-secret")" \
        --api-addr "127.0.0.1:$(api_port "$name")" --ws-addr "127.0.0.1:$(ws_port "$name")" \
        >>"$DIR/$name.log" 2>&1 &
      ;;
    *) echo "unknown process $name (node-N, gateway-1..$GATEWAY_COUNT)" >&2; exit 2 ;;
  esac
  echo $! >"$DIR/$name.pid"
  echo "started $name (pid $!, log $DIR/$name.log)"
}

wait_ready() {
  local name=$1 port
  port=$(api_port "$name")
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then return 0; fi
    if ! alive "$name"; then echo "$name exited; see $DIR/$name.log" >&2; tail -20 "$DIR/$name.log" >&2; return 1; fi
    sleep 0.5
  done
  echo "$name did not become ready; see $DIR/$name.log" >&2
  return 1
}

endpoints() {
  for g in "${GATEWAYS[@]}"; do
    echo "$g: REST http://127.0.0.1:$(api_port "$g")  WebSocket ws://127.0.0.1:$(ws_port "$g")  ops http://127.0.0.1:$(ops_port "$g")"
  done
  for n in "${NODES[@]}"; do echo "$n: transport quic://127.0.0.1:$(transport_port "$n")  ops http://127.0.0.1:$(ops_port "$n")"; done
}

# The channel nodes started here: the three seeds and any that joined.
all_nodes() {
  { printf '%s\n' "${NODES[@]}"; ls "$DIR" 2>/dev/null | sed -n 's/^\(node-[0-9]*\)\.pid$/\1/p'; } | sort -u -t- -k2n
}

# The gateways started here (however many CHORUS_GATEWAYS said at `up`).
all_gateways() {
  { printf '%s\n' "${GATEWAYS[@]}"; ls "$DIR" 2>/dev/null | sed -n 's/^\(gateway-[0-9]*\)\.pid$/\1/p'; } | sort -u -t- -k2n
}

ADMIN_SEEDS=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
admin_tls() { echo --tls-ca "$DIR/certs/ca.pem" --tls-cert "$DIR/certs/admin.pem" --tls-key "$DIR/certs/admin.key"; }

status() {
  # shellcheck disable=SC2046
  "$BIN" cluster status --seeds "$ADMIN_SEEDS" $(admin_tls) "$@"
}

case ${1:-} in
  up)
    source scripts/services.sh
    ensure_postgres
    ensure_redis
    if [ -z "${CHORUS_BIN:-}" ]; then cargo build --release --locked -p chorus; fi
    mkdir -p "$DIR"
    [ -f "$DIR/certs/ca.pem" ] || "$BIN" cluster certs --dir "$DIR/certs" "${NODES[@]}" "${GATEWAYS[@]}" admin >/dev/null
    # Gateways added since the certificates were made (a larger CHORUS_GATEWAYS) get theirs.
    for g in "${GATEWAYS[@]}"; do
      [ -f "$DIR/certs/$g.pem" ] || "$BIN" cluster certs --dir "$DIR/certs" "$g" >/dev/null
    done
    [ -f "$DIR/jwt-secret" ] || head -c 48 /dev/urandom | base64 | tr -d '\n' >"$DIR/jwt-secret"
    psql "$PG/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 \
      || psql "$PG/postgres" -qc "CREATE DATABASE $DB"
    for n in "${NODES[@]}"; do start "$n"; done
    for g in "${GATEWAYS[@]}"; do start "$g"; done
    for g in "${GATEWAYS[@]}"; do wait_ready "$g"; done
    endpoints
    ;;
  status) shift; status "$@" ;;
  endpoints) endpoints ;;
  cpu)
    tck=$(getconf CLK_TCK)
    total=0
    for p in $(all_nodes) $(all_gateways); do
      alive "$p" || continue
      ticks=$(awk '{ print $14 + $15 }' "/proc/$(pid_of "$p")/stat")
      total=$((total + ticks))
      echo "$p $(awk -v t="$ticks" -v h="$tck" 'BEGIN { printf "%.2f", t / h }')"
    done
    echo "total $(awk -v t="$total" -v h="$tck" 'BEGIN { printf "%.2f", t / h }')"
    ;;
  kill)
    name=${2:?kill NAME}
    pid=$(pid_of "$name")
    if [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; then echo "killed $name (pid $pid) with SIGKILL"; else echo "$name is not running"; fi
    ;;
  kill-leader)
    name=$(status --json | python3 -c '
import json, sys
leads = {}
for node in json.load(sys.stdin).values():
    if "node_id" in node:
        leads[node["node_id"]] = sum(1 for s in node["shards"] if s["group"]["state"] == "Leader")
best = max(leads, key=lambda n: leads[n]) if leads else None
if best is None or leads[best] == 0:
    sys.exit("no channel node leads a shard")
print(f"node-{best}")
')
    kill -9 "$(pid_of "$name")"
    echo "killed $name (leader of the most shards) with SIGKILL" >&2
    echo "$name"
    ;;
  join)
    n=${2:?join N}
    [ "$n" -gt 3 ] || { echo "node-1..3 are the seeds; join a node numbered 4 or more" >&2; exit 2; }
    [ -f "$DIR/certs/node-$n.pem" ] || "$BIN" cluster certs --dir "$DIR/certs" "node-$n" >/dev/null
    start "node-$n"
    ;;
  drain|undrain|decommission)
    n=${2:?$1 N}
    # shellcheck disable=SC2046
    "$BIN" cluster "$1" "${n#node-}" --seeds "$ADMIN_SEEDS" $(admin_tls)
    ;;
  restart)
    name=${2:?restart NAME}
    if alive "$name"; then kill "$(pid_of "$name")"; sleep 1; fi
    start "$name"
    case $name in gateway-*) wait_ready "$name" ;; esac
    ;;
  down)
    procs=($(all_gateways) $(all_nodes))
    for p in "${procs[@]}"; do
      if alive "$p"; then kill "$(pid_of "$p")"; fi
    done
    for _ in $(seq 1 20); do
      running=0
      for p in "${procs[@]}"; do alive "$p" && running=1; done
      [ $running = 0 ] && break
      sleep 0.5
    done
    for p in "${procs[@]}"; do alive "$p" && kill -9 "$(pid_of "$p")"; rm -f "$DIR/$p.pid"; done
    echo "cluster stopped (data kept in $DIR; remove it and drop database $DB for a fresh start)"
    ;;
  *) sed -n '2,25p' "$0"; exit 2 ;;
esac
