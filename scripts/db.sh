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
# Where the database comes from:
#   1. DATABASE_URL (environment or .env), when it is set: that server, as it is. When it does not answer, db.sh says
#      so and stops; it never starts or picks another server in its place.
#   2. A local cluster this script started that is running.
#   3. A Docker engine answers: docker compose with docker-compose.yml (the pgvector image it pins).
#   4. Otherwise a local cluster in .pgdata/: PostgreSQL and pgvector are found (Debian's, Homebrew's, PG_BINDIR) or
#      installed on Debian and Ubuntu, then initdb, started on 127.0.0.1 with password authentication.
# DB_MODE=env|docker|local forces one of them (docker and local over DATABASE_URL).
# The superuser's password is POSTGRES_PASSWORD, or one generated per cluster into .pgdata/superuser-password
# (readable by you alone); only the URL that up and url print holds it: export DATABASE_URL=$(scripts/db.sh url).
#
# This file is the commands; lib/ holds the rest: settings.sh (environment over .env, shared with lesson.sh and
# test.sh), provision.sh (finding and installing), cluster.sh (the local cluster, compose and the password),
# replica.sh, pgbouncer.sh, citus.sh.
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
PG_PASSWORD_SETTING="$(setting POSTGRES_PASSWORD)"
PG_DB="$(setting POSTGRES_DB agent_db)"
PG_PORT="$(setting POSTGRES_PORT 5432)"
REPLICA_PORT="$(setting REPLICA_PORT 5433)"
PGBOUNCER_PORT="$(setting PGBOUNCER_PORT 6432)"
DB_MODE="$(setting DB_MODE auto)"
CONFIGURED_URL="$(setting DATABASE_URL)"
_local_state_dir="$(local_state_dir)"

# Settings reach commands and arithmetic: refuse what could not be a port or a host before anything runs.
valid_port "$PG_PORT" || fail "POSTGRES_PORT must be a port number (1-65535); it is '$PG_PORT'."
valid_port "$REPLICA_PORT" || fail "REPLICA_PORT must be a port number (1-65535); it is '$REPLICA_PORT'."
valid_port "$PGBOUNCER_PORT" || fail "PGBOUNCER_PORT must be a port number (1-65535); it is '$PGBOUNCER_PORT'."
[[ -z "$CONFIGURED_URL" ]] || check_url "$CONFIGURED_URL" DATABASE_URL

configured_where() { url_host_port "$CONFIGURED_URL" | tr ' ' ':'; }

refuse_silent_database_url() {
  url_answers "$CONFIGURED_URL" ||
    fail "DATABASE_URL ($(configured_where)) does not answer: start that server, or unset DATABASE_URL (environment and .env) to use the database scripts/db.sh starts."
}

choose_mode() {
  case "$DB_MODE" in
    env|docker|local) printf '%s' "$DB_MODE"; return ;;
    auto) ;;
    *) fail "DB_MODE must be env, docker, local or auto (it is '$DB_MODE')." ;;
  esac
  if [[ -n "$CONFIGURED_URL" ]]; then printf env
  elif [[ -n "$(local_url || true)" ]]; then printf local
  elif docker_answers; then printf docker
  else printf local; fi
}

# Where DATABASE_URL names a server, replica and pgbouncer (which stand beside the server this script manages) refuse
# to stand beside another one.
refuse_unmanaged_database_url() { # WHAT
  [[ -n "$CONFIGURED_URL" && "$DB_MODE" != docker && "$DB_MODE" != local ]] || return 0
  local hp host port managed=""
  hp="$(url_host_port "$CONFIGURED_URL")"; host="${hp% *}"; port="${hp##* }"
  case "$host" in 127.0.0.1|localhost|::1) ;; *) port="" ;; esac
  if [[ -n "$port" ]]; then
    if [[ -n "$(local_url || true)" && "$port" == "$(local_port "$(local_state_dir)")" ]]; then managed=1
    elif docker_running && [[ "$port" == "$PG_PORT" ]]; then managed=1; fi
  fi
  [[ -n "$managed" ]] ||
    fail "DATABASE_URL names a server this script does not run ($(configured_where)), so it cannot put $1 beside it (lesson 08 starts its own beside DATABASE_URL's server): unset DATABASE_URL to use the database scripts/db.sh runs."
}

cmd_up() {
  local mode url; mode="$(choose_mode)"
  case "$mode" in
    env)
      [[ -n "$CONFIGURED_URL" ]] || fail "DB_MODE=env but DATABASE_URL is not set."
      refuse_silent_database_url
      say "using DATABASE_URL ($(configured_where))"; url="$CONFIGURED_URL" ;;
    docker) docker_answers || fail "DB_MODE=docker but no Docker engine answers: start Docker Desktop or the docker service."
            url="$(docker_up)" ;;
    local)  url="$(local_up)" ;;
  esac
  if [[ -n "$CONFIGURED_URL" && "$mode" != env ]]; then
    say "note: DB_MODE=$mode, so this is not the server DATABASE_URL names ($(configured_where))"
  elif [[ -z "$CONFIGURED_URL" && -t 1 ]]; then
    say "for dotnet run and dotnet test in this shell: export DATABASE_URL=\$(scripts/db.sh url)"
  fi
  printf '%s\n' "$url"
}

cmd_down() {
  local_citus_down
  local_pgbouncer_down
  local_replica_down
  local_down
  if docker_running; then say "stopping docker compose services"; compose stop >&2; fi
}

cmd_reset() {
  cmd_down
  local state; state="$(local_state_dir)"
  if docker_answers && [[ -n "$(compose ps -aq 2>/dev/null)" ]]; then
    say "removing docker compose services and their volume"; compose down -v >&2
  fi
  if [[ -d "$state" ]]; then say "deleting $state (the cluster and its password)"; rm -rf "$state"; fi
}

cmd_status() {
  local any="" lu
  if [[ -n "$CONFIGURED_URL" ]]; then
    if url_answers "$CONFIGURED_URL"; then echo "DATABASE_URL: answers ($(configured_where))"; any=1
    else echo "DATABASE_URL: set, does not answer ($(configured_where))"; fi
  fi
  lu="$(local_url || true)"
  if [[ -n "$lu" ]]; then echo "local cluster: running, $(redact_url "$lu") ($(local_state_dir))"; any=1
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
  if [[ -n "$CONFIGURED_URL" && "$DB_MODE" != docker && "$DB_MODE" != local ]]; then
    refuse_silent_database_url; printf '%s\n' "$CONFIGURED_URL"; return
  fi
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
  *) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac
