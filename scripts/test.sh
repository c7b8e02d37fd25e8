#!/usr/bin/env bash
# Runs the whole test suite against a real PostgreSQL with pgvector and ends with one line:
#   N passed, N failed
# Database: TEST_DATABASE_URL or DATABASE_URL when set; else Testcontainers when Docker answers;
# else scripts/db.sh up (a local cluster) and TEST_DATABASE_URL pointing at it.
# Lesson 08's tests run pgBouncer: it is installed first when missing (scripts/db.sh pgbouncer install).
# Extra arguments go to dotnet test (e.g. --filter-class '*Lesson01Tests').
set -euo pipefail
SCRIPT_TAG=test
source "$(dirname "${BASH_SOURCE[0]}")/lib/settings.sh"
cd "$ROOT"

if [[ -z "$(pgbouncer_bin || true)" ]]; then
  scripts/db.sh pgbouncer install || say "pgbouncer could not be installed: lesson 08's tests will say what is missing"
fi

if [[ -n "$(setting TEST_DATABASE_URL)" ]]; then
  echo "[test] database: TEST_DATABASE_URL"
elif [[ -n "$(setting DATABASE_URL)" ]] && DB_MODE=env scripts/db.sh up >/dev/null 2>&1; then
  echo "[test] database: DATABASE_URL"
elif docker_answers; then
  echo "[test] database: Testcontainers (pgvector/pgvector:0.8.7-pg17)"
else
  TEST_DATABASE_URL="$(DB_MODE=local scripts/db.sh up)"
  export TEST_DATABASE_URL
  echo "[test] database: local cluster ($TEST_DATABASE_URL)"
fi

export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
dotnet test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# Microsoft.Testing.Platform closes with "total: N / failed: N / succeeded: N / skipped: N".
succeeded="$(sed -n -E 's/^[[:space:]]*succeeded:[[:space:]]*([0-9]+).*/\1/p' "$log" | tail -n 1)"
failed="$(sed -n -E 's/^[[:space:]]*failed:[[:space:]]*([0-9]+).*/\1/p' "$log" | tail -n 1)"
skipped="$(sed -n -E 's/^[[:space:]]*skipped:[[:space:]]*([0-9]+).*/\1/p' "$log" | tail -n 1)"
if [[ -z "$succeeded" ]]; then
  # The build failed, or the runner never started: count that as a failure, not as zero tests.
  echo "0 passed, 1 failed"
  exit "$([[ $status -ne 0 ]] && echo "$status" || echo 1)"
fi
echo "${succeeded} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$status"
