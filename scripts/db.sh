#!/usr/bin/env bash
# Gives the lessons and the tests a PostgreSQL server with the pgvector extension available.
#
#   scripts/db.sh up       start (or reuse) a database and print its connection string
#   scripts/db.sh down     stop the database this script started (data is kept)
#   scripts/db.sh reset    stop it and delete its data
#   scripts/db.sh status   say what is running and where
#   scripts/db.sh url      print the connection string (exit 1 when nothing answers)
#   scripts/db.sh replica up|down|status|url
#                          a hot standby of the database (pg_basebackup, streaming replication) on its own port
#   scripts/db.sh pgbouncer install|up|down|status|url
#                          pgBouncer in transaction mode in front of the database (install: Debian's package)
#   scripts/db.sh citus build|up|down|reset|status|url
#                          a Citus coordinator and two workers with pgvector on 127.0.0.1 (build: Citus into PostgreSQL 18)
#
# Where the database comes from, first match wins:
#   1. DATABASE_URL (environment or .env) points at a server that answers: use it as it is.
#   2. A Docker engine answers: docker compose with docker-compose.yml (pgvector/pgvector:0.8.7-pg17).
#   3. Otherwise a local cluster in .pgdata/: PostgreSQL and pgvector are installed when missing
#      (the distribution's postgresql-N-pgvector package, or built from Debian's source package),
#      then initdb, started on 127.0.0.1 with password authentication.
# DB_MODE=env|docker|local forces one of them.
#
# This file is the commands; lib/ holds the rest: settings.sh (environment over .env, shared with lesson.sh and
# test.sh), provision.sh (installing), cluster.sh (the local cluster and compose), replica.sh, pgbouncer.sh, citus.sh.
set -euo pipefail
SCRIPT_TAG=db
LIB="$(dirname "${BASH_SOURCE[0]}")/lib"
source "$LIB/settings.sh"
source "$LIB/provision.sh"
source "$LIB/cluster.sh"
source "$LIB/replica.sh"
source "$LIB/pgbouncer.sh"
source "$LIB/citus.sh"
cd "$ROOT"

PG_USER="$(setting POSTGRES_USER postgres)"
PG_PASSWORD="$(setting POSTGRES_PASSWORD postgres)"
PG_DB="$(setting POSTGRES_DB agent_db)"
PG_PORT="$(setting POSTGRES_PORT 5432)"
REPLICA_PORT="$(setting REPLICA_PORT 5433)"
PGBOUNCER_PORT="$(setting PGBOUNCER_PORT 6432)"
DB_MODE="$(setting DB_MODE auto)"
CONFIGURED_URL="$(setting DATABASE_URL)"

choose_mode() {
  case "$DB_MODE" in
    env|docker|local) printf '%s' "$DB_MODE"; return ;;
    auto) ;;
    *) fail "DB_MODE must be env, docker, local or auto (it is '$DB_MODE')." ;;
  esac
  # A configured URL that already answers wins, unless it is the local cluster this script manages.
  if url_answers "$CONFIGURED_URL" && [[ -z "$(local_url || true)" ]]; then printf env
  elif [[ -n "$(local_url || true)" ]]; then printf local
  elif docker_answers; then printf docker
  else printf local; fi
}

cmd_up() {
  local mode url; mode="$(choose_mode)"
  case "$mode" in
    env)
      [[ -n "$CONFIGURED_URL" ]] || fail "DB_MODE=env but DATABASE_URL is not set."
      url_answers "$CONFIGURED_URL" || fail "DATABASE_URL ($(url_host_port "$CONFIGURED_URL" | tr ' ' ':')) does not answer."
      say "using DATABASE_URL"; url="$CONFIGURED_URL" ;;
    docker) docker_answers || fail "DB_MODE=docker but no Docker engine answers: start Docker Desktop or the docker service."
            url="$(docker_up)" ;;
    local)  url="$(local_up)" ;;
  esac
  if [[ -n "$CONFIGURED_URL" && "$url" != "$CONFIGURED_URL" && "$mode" != env ]]; then
    say "note: DATABASE_URL is set to another server; lessons use DATABASE_URL, so run: export DATABASE_URL='$url'"
  elif [[ -z "$CONFIGURED_URL" && "$url" != "$(url_for_port 5432)" ]]; then
    say "note: not on the default port; run: export DATABASE_URL='$url'"
  fi
  printf '%s\n' "$url"
}

cmd_down() {
  local_citus_down
  local_pgbouncer_down
  local_replica_down
  local_down
  if docker_running; then say "stopping docker compose services"; docker compose stop >&2; fi
}

cmd_reset() {
  cmd_down
  local state; state="$(local_state_dir)"
  if [[ -d "$state" ]]; then say "deleting $state"; rm -rf "$state"; fi
  if docker_answers && [[ -n "$(docker compose ps -aq 2>/dev/null)" ]]; then
    say "removing docker compose services and their volume"; docker compose down -v >&2
  fi
}

cmd_status() {
  local any="" lu
  if [[ -n "$CONFIGURED_URL" ]]; then
    if url_answers "$CONFIGURED_URL"; then echo "DATABASE_URL: answers ($(url_host_port "$CONFIGURED_URL" | tr ' ' ':'))"; any=1
    else echo "DATABASE_URL: set, does not answer ($(url_host_port "$CONFIGURED_URL" | tr ' ' ':'))"; fi
  fi
  lu="$(local_url || true)"
  if [[ -n "$lu" ]]; then echo "local cluster: running, $lu ($(local_state_dir))"; any=1
  elif [[ -f "$(local_state_dir)/data/PG_VERSION" ]]; then echo "local cluster: stopped ($(local_state_dir))"
  else echo "local cluster: none"; fi
  if docker_answers; then
    if docker_running; then echo "docker compose: running"; any=1; else echo "docker compose: not running"; fi
  else echo "docker: no engine answers"; fi
  cmd_replica status || true
  cmd_pgbouncer status || true
  [[ -n "$any" ]]
}

cmd_url() {
  if url_answers "$CONFIGURED_URL" && [[ -z "$(local_url || true)" ]]; then printf '%s\n' "$CONFIGURED_URL"; return; fi
  local lu; lu="$(local_url || true)"
  if [[ -n "$lu" ]]; then printf '%s\n' "$lu"; return; fi
  if docker_running; then url_for_port "$PG_PORT"; echo; return; fi
  fail "no database is running: start one with scripts/db.sh up"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  reset) cmd_reset ;;
  status) cmd_status ;;
  url) cmd_url ;;
  replica) shift; cmd_replica "$@" ;;
  pgbouncer) shift; cmd_pgbouncer "$@" ;;
  citus) shift; cmd_citus "$@" ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac
