# Functions to reach (and if needed start) the local PostgreSQL and Redis. Sourced by test.sh.
# A service that cannot be reached is an error, in CI and on a developer machine alike.

wait_for() { # description, command...
  local what=$1; shift
  for _ in $(seq 1 50); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "error: $what is not reachable" >&2
  return 1
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  if ! command -v pg_isready >/dev/null 2>&1; then
    echo "error: PostgreSQL client tools are not installed (apt-get install postgresql)" >&2
    return 1
  fi
  wait_for "PostgreSQL at 127.0.0.1:5432" pg_isready -q -h 127.0.0.1 -p 5432
}

redis_ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]
  else
    # Without redis-cli, speak RESP over bash's /dev/tcp.
    exec 3<>/dev/tcp/127.0.0.1/6379 || return 1
    printf 'PING\r\n' >&3
    local reply
    read -r -t 2 reply <&3 || true
    exec 3>&-
    [ "${reply%$'\r'}" = "+PONG" ]
  fi
}

ensure_redis() {
  if redis_ping; then return 0; fi
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  else
    echo "error: redis-server is not installed (apt-get install redis-server)" >&2
    return 1
  fi
  wait_for "Redis at 127.0.0.1:6379" redis_ping
}
