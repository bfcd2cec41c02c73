#!/usr/bin/env bash
# The project's test command (README: "Test it").
#
# Makes sure the machine's PostgreSQL and Redis are running — starting them if they are installed
# but down — and fails if they cannot be reached: backend suites never skip silently. Then runs
# every test of the workspace: unit tests, and integration tests that start real nodes on port 0
# and talk to them over real HTTP and WebSocket connections; then the web client's browser tests
# (scripts/browser-tests.sh: Debian's Chromium, installed if missing, against a real node).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ensure_postgres
ensure_redis
export CHORUS_TEST_POSTGRES_URL="${CHORUS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CHORUS_TEST_REDIS_URL="${CHORUS_TEST_REDIS_URL:-redis://127.0.0.1:6379}"

# docs/openapi.json is checked by a real OpenAPI validator (openapi-spec-validator, from PyPI,
# in a virtualenv kept under target/); tests/openapi_doc.rs checks that it is the served one.
validate_openapi() {
  local venv=target/openapi-venv
  if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "openapi-spec-validator==0.7.*"
  fi
  "$venv/bin/openapi-spec-validator" docs/openapi.json
}
validate_openapi

# Keep cargo's output, then close with one total line ("N passed, N failed") over every test binary.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" = 0 ]; then
  # The browser tests start target/debug/chorus. A full `cargo test --workspace` has just built it
  # for the integration tests; a `cargo build` here would link it a second time with other feature
  # unification (minutes and gigabytes on a cold CI machine), so build only when the run was narrowed.
  if [ $# -gt 0 ] || [ ! -x target/debug/chorus ]; then
    cargo build --locked -p chorus --bin chorus || status=1
  fi
fi
if [ "$status" = 0 ]; then
  scripts/browser-tests.sh 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
else
  echo "not run: browser tests (the cargo tests failed first)"
fi
set -e
if [ -z "${SCYLLA_URI:-}" ]; then
  echo "not run: ScyllaDB message-store conformance suite (no ScyllaDB here; set SCYLLA_URI=scylla://host:9042/keyspace?replication_factor=1)"
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     /^ℹ pass / { p += $3 } /^ℹ fail / { f += $3 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
