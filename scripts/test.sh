#!/usr/bin/env bash
# Runs the whole test suite against a real PostgreSQL with pgvector and ends with one line:
#   N passed, N failed
# Database: TEST_DATABASE_URL or DATABASE_URL when set (DATABASE_URL must answer: no other server replaces it); else
# Testcontainers when Docker answers (the image docker-compose.yml pins); else scripts/db.sh up (a local cluster) and
# TEST_DATABASE_URL pointing at it. No password is printed: URLs shown go through redact_url.
# Lesson 08's tests run pgBouncer: it is installed first when missing (scripts/db.sh pgbouncer install); lesson 11's run
# Citus: scripts/db.sh citus build makes it once per machine.
# Extra arguments go to dotnet test (e.g. --filter-class '*Lesson01Tests').
# TEST_ALSO_ON_POSTGRES=18 (CI sets it) runs the version-dependent tests a second time on a local PostgreSQL 18 cluster.
set -euo pipefail
SCRIPT_TAG=test
source "$(dirname "${BASH_SOURCE[0]}")/lib/settings.sh"
cd "$ROOT"

if [[ -z "$(pgbouncer_bin || true)" ]]; then
  scripts/db.sh pgbouncer install || say "pgbouncer could not be installed: lesson 08's tests will say what is missing"
fi

# Lesson 11's tests start Citus clusters: Citus is built once per machine (with the PostgreSQL 18 it goes into) from the
# source vendored beside the repository or CITUS_SOURCE; an existing build is found at once.
scripts/db.sh citus build >/dev/null || say "Citus could not be built: lesson 11's tests will say what is missing"

# A local cluster this run starts is stopped when the run ends, however it ends (its data is kept, so the next run
# starts it again in seconds); one that was already running is left as it was. TEST_KEEP_DATABASE=1 keeps them all.
started_versions=()
start_local_cluster() { # VERSION ("" for the default major)
  if ! POSTGRES_VERSION="$1" DB_MODE=local scripts/db.sh url >/dev/null 2>&1; then started_versions+=("$1"); fi
}
stop_started_clusters() {
  [[ "$(setting TEST_KEEP_DATABASE)" != 1 ]] || return 0
  local version
  for version in ${started_versions[@]+"${started_versions[@]}"}; do
    POSTGRES_VERSION="$version" SCRIPT_TAG=test bash -c 'source scripts/lib/settings.sh; source scripts/lib/provision.sh; source scripts/lib/cluster.sh; local_down' || true
  done
}

if [[ -n "$(setting TEST_DATABASE_URL)" ]]; then
  echo "[test] database: TEST_DATABASE_URL"
elif [[ -n "$(setting DATABASE_URL)" ]]; then
  # An explicit DATABASE_URL is the tests' server or nothing: db.sh says in one sentence why it does not answer.
  DB_MODE=env scripts/db.sh up >/dev/null || exit 1
  echo "[test] database: DATABASE_URL"
elif docker_answers; then
  echo "[test] database: Testcontainers ($(compose_image))"
else
  start_local_cluster ""
  TEST_DATABASE_URL="$(DB_MODE=local scripts/db.sh up)"
  export TEST_DATABASE_URL
  echo "[test] database: local cluster ($(redact_url "$TEST_DATABASE_URL"))"
fi

export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
log="$(mktemp)"
trap 'exit 130' INT TERM HUP
trap 'rm -f "$log"; stop_started_clusters' EXIT
total_passed=0 total_failed=0 total_skipped=0 final_status=0

# One run of dotnet test; adds its counts to the totals and prints them as one line with LABEL.
run_lane() { # LABEL [dotnet test arguments...]
  local label="$1" status succeeded failed skipped; shift
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
    succeeded=0 failed=1 skipped=0
    [[ $status -ne 0 ]] || status=1
  fi
  echo "[test] $label: ${succeeded} passed, ${failed:-0} failed, ${skipped:-0} skipped"
  total_passed=$((total_passed + succeeded)); total_failed=$((total_failed + ${failed:-0})); total_skipped=$((total_skipped + ${skipped:-0}))
  [[ $status -eq 0 ]] || final_status=$status
}

run_lane "the whole suite" "$@"

# A second server version for what depends on it (plans, iterative scans, re-sorts, BM25's SQL, the lessons that show
# them: the trait Server=VersionDependent). CI sets TEST_ALSO_ON_POSTGRES=18; a local cluster of that major is built once
# per machine (scripts/db.sh with POSTGRES_VERSION) and its programs serve the tests' private clusters and lesson 08.
also="$(setting TEST_ALSO_ON_POSTGRES)"
if [[ -n "$also" ]]; then
  start_local_cluster "$also"
  if second_url="$(POSTGRES_VERSION="$also" DB_MODE=local scripts/db.sh up)" &&
     second_bin="$(POSTGRES_VERSION="$also" bash -c 'source scripts/lib/settings.sh; source scripts/lib/provision.sh; pg_bindir')"; then
    echo "[test] database for PostgreSQL $also: local cluster ($(redact_url "$second_url"))"
    TEST_DATABASE_URL="$second_url" PG_BINDIR="$second_bin" run_lane "PostgreSQL $also, Server=VersionDependent" \
      --filter-trait "${TEST_TRAIT:-Server=VersionDependent}" "$@"
  else
    echo "[test] PostgreSQL $also: no server of that version could be started (the reason is above), so its tests did not run."
    total_failed=$((total_failed + 1)); final_status=1
  fi
fi

# Stopped before the summary, so that the summary stays the last line printed.
stop_started_clusters
started_versions=()
echo "${total_passed} passed, ${total_failed} failed, ${total_skipped} skipped"
exit "$final_status"
