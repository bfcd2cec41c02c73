#!/usr/bin/env bash
# The cluster benchmarks of docs/BENCHMARKS.md ("Cluster"), each run RUNS times (default 3)
# against a fresh local cluster (scripts/cluster.sh: 3 channel nodes, 2 gateways, this machine's
# PostgreSQL and Redis) on deploy/bench.toml, the load tester on the same cores:
#
#   throughput  acknowledged, 3-way replicated, fsynced messages/s and ack p50/p99
#               (64 channels, 1 member each, 32 publishers over both gateways, RATE msg/s, 10 s)
#   failover    write unavailability after kill -9 of the node leading the most shards,
#               10 kills under 2,000 msg/s, the node restarted between kills
#   fanout1     20 channels x 100 members, 1,000 msg/s (100,000 deliveries/s), one gateway
#   fanout2     the same load with connections spread over both gateways
#   connections CONNECTIONS (100,000) idle connections over 6 gateways (one process holds at most
#               ~19,900 sockets here), from 6 load-tester workers on 8 loopback addresses: connect
#               rate, handshake p99, memory per connection of each gateway; then 1 message/s for
#               10 s to the 2 channels every connection is subscribed to (a delivery to every
#               connection, through all six gateways): deliveries/s, post → delivery p50/p99, lost
#
#   scripts/bench-cluster.sh [BENCH ...]     (default: the first four)
#
# Results: target/bench-cluster/BENCH-RUN.json (the load tester's result; CPU is that of the five
# cluster processes from the first publish to the end of the drain), and a summary of the median
# and range over the runs at the end.
# Settings (environment): RUNS (3), RATE (throughput's offered rate, 10000), CONNECTIONS
# (connections' count, 100000), CHORUS_CLUSTER_CONFIG
# (deploy/bench.toml; a copy with other [cluster] settings compares them).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
RATE=${RATE:-10000}
CONNECTIONS=${CONNECTIONS:-100000}
OUT=target/bench-cluster
LT=(target/release/loadtest --api http://127.0.0.1:8080 --ws 127.0.0.1:8081)
BOTH=127.0.0.1:8081,127.0.0.1:8083
export CHORUS_CLUSTER_CONFIG=${CHORUS_CLUSTER_CONFIG:-deploy/bench.toml}
export CHORUS_CLUSTER_DIR=${CHORUS_CLUSTER_DIR:-$PWD/target/bench-cluster/cluster}
export CHORUS_CLUSTER_DB=${CHORUS_CLUSTER_DB:-chorus_bench_cluster}
PG=${CHORUS_CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}

cargo build --release --locked -p chorus -p chorus-loadtest
export CHORUS_BIN=$PWD/target/release/chorus
ulimit -n 20000
mkdir -p "$OUT"

fresh_cluster() {
  scripts/cluster.sh down >/dev/null 2>&1 || true
  rm -rf "$CHORUS_CLUSTER_DIR"
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $CHORUS_CLUSTER_DB" >/dev/null
  scripts/cluster.sh up >/dev/null
  # Every shard has a leader before the load starts.
  for _ in $(seq 1 60); do
    if scripts/cluster.sh status --json | python3 -c '
import json, sys
nodes = [n for n in json.load(sys.stdin).values() if "node_id" in n]
shards = {s["shard"] for n in nodes for s in n["shards"]}
led = {s["shard"] for n in nodes for s in n["shards"] if s["group"]["state"] == "Leader"}
sys.exit(0 if shards and shards == led else 1)'; then return 0; fi
    sleep 0.5
  done
  echo "the cluster did not elect a leader for every shard" >&2
  exit 1
}

# The pids of the cluster's processes, comma-separated (for the load tester's CPU accounting).
pids() { cat "$CHORUS_CLUSTER_DIR"/*.pid | paste -sd, -; }

# The WebSocket addresses of gateways 1..N, and their pids in the same order.
gateway_addrs() { for g in $(seq 1 "$1"); do printf '127.0.0.1:%s\n' $((8081 + 2 * (g - 1))); done | paste -sd, -; }
gateway_pids() { for g in $(seq 1 "$1"); do cat "$CHORUS_CLUSTER_DIR/gateway-$g.pid"; done | paste -sd, -; }

run_one() {
  local bench=$1 run=$2 args=()
  if [ "$bench" = connections ]; then export CHORUS_GATEWAYS=6; else export CHORUS_GATEWAYS=2; fi
  fresh_cluster
  case $bench in
    throughput) args=(fanout --channels 64 --members 1 --users-per-channel 1 --publishers 32
                      --rate "$RATE" --duration-secs 10 --gateways "$BOTH" --server-pids "$(pids)") ;;
    failover) args=(failover --kill-cmd "scripts/cluster.sh kill-leader"
                    --restart-cmd "scripts/cluster.sh restart" --gateways "$BOTH") ;;
    fanout1) args=(fanout --channels 20 --members 100 --users-per-channel 10 --publishers 20
                   --rate 1000 --duration-secs 10 --server-pids "$(pids)") ;;
    fanout2) args=(fanout --channels 20 --members 100 --users-per-channel 10 --publishers 20
                   --rate 1000 --duration-secs 10 --gateways "$BOTH" --server-pids "$(pids)") ;;
    connections) args=(hold --connections "$CONNECTIONS" --users 500 --channels 2 --hold-secs 10
                       --workers 6 --source-ips 8 --gateways "$(gateway_addrs 6)"
                       --server-pid "$(gateway_pids 6)" --publish-per-sec 1 --publish-secs 10
                       --drain-secs 10) ;;
    *) echo "unknown benchmark $bench (throughput, failover, fanout1, fanout2, connections)" >&2; exit 2 ;;
  esac
  "${LT[@]}" --out "$OUT/$bench-$run.raw.json" "${args[@]}" >"$OUT/$bench-$run.log" 2>&1 \
    || { echo "$bench run $run failed; see $OUT/$bench-$run.log" >&2; tail -20 "$OUT/$bench-$run.log" >&2; exit 1; }
  python3 - "$OUT/$bench-$run.raw.json" >"$OUT/$bench-$run.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
result.pop("timeseries", None)
if result.get("duration_s"):
    result["acked_per_s"] = result["acked"] / result["duration_s"]
per_gateway = [s["bytes_per_connection"] for s in result.get("servers", []) if s.get("bytes_per_connection")]
if per_gateway:
    result["gateway_bytes_per_connection_min"] = min(per_gateway)
    result["gateway_bytes_per_connection_max"] = max(per_gateway)
print(json.dumps(result, indent=1))
PY
  rm -f "$OUT/$bench-$run.raw.json"
  echo "$bench run $run: $OUT/$bench-$run.json"
}

BENCHES=("$@")
[ ${#BENCHES[@]} -gt 0 ] || BENCHES=(throughput failover fanout1 fanout2)
for bench in "${BENCHES[@]}"; do
  rm -f "$OUT/$bench"-*.json
  for run in $(seq 1 "$RUNS"); do run_one "$bench" "$run"; done
done
scripts/cluster.sh down >/dev/null 2>&1 || true

python3 - "$OUT" "${BENCHES[@]}" <<'PY'
import glob, json, statistics, sys
out, benches = sys.argv[1], sys.argv[2:]
def get(r, path):
    for key in path.split("."):
        r = r.get(key) if isinstance(r, dict) else None
    return r
fields = {
    "throughput": ["acked_per_s", "send_to_ack_ms.p50", "send_to_ack_ms.p99", "lost", "server_cpu_seconds"],
    "failover": ["unavailability_ms.p50", "unavailability_ms.p99", "unavailability_ms.max", "never_recovered"],
    "fanout1": ["deliveries_per_s", "send_to_receipt_ms.p50", "send_to_receipt_ms.p99", "lost", "server_cpu_us_per_delivery"],
    "fanout2": ["deliveries_per_s", "send_to_receipt_ms.p50", "send_to_receipt_ms.p99", "lost", "server_cpu_us_per_delivery"],
    "connections": ["connections_open", "connection_failures", "connect_rate_per_s",
                    "handshake_plus_identify_ms.p50", "handshake_plus_identify_ms.p99",
                    "server_bytes_per_connection", "gateway_bytes_per_connection_min",
                    "gateway_bytes_per_connection_max", "dropped_while_holding",
                    "fanout.deliveries_per_s", "fanout.post_to_delivery_ms.p50",
                    "fanout.post_to_delivery_ms.p99", "fanout.lost"],
}
for bench in benches:
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{bench}-*.json"))]
    print(f"{bench} ({len(runs)} runs): median [min – max]")
    for field in fields.get(bench, []):
        values = [v for v in (get(r, field) for r in runs) if isinstance(v, (int, float))]
        if values:
            print(f"  {field:<28} {statistics.median(values):>12.2f}  [{min(values):.2f} – {max(values):.2f}]")
PY
