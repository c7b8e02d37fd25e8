# Sourced by db.sh: `db.sh replica up|down|status|url`, a hot standby of the local cluster (pg_basebackup, streaming
# replication) beside its data folder, or docker compose's replica service. Expects cluster.sh.

replica_dir() { printf '%s/replica' "$(local_state_dir)"; }

local_replica_running() { # BINDIR
  [[ -f "$(replica_dir)/data/PG_VERSION" ]] && run_as_owner "$1/pg_ctl" -D "$(replica_dir)/data" status >/dev/null 2>&1
}

local_replica_up() {
  local bindir primary_port dir port
  bindir="$(pg_bindir)" || fail "no PostgreSQL binaries: run 'scripts/db.sh up' first."
  local_running "$(local_state_dir)" "$bindir" || fail "the local cluster is not running: run 'scripts/db.sh up' first."
  primary_port="$(local_port "$(local_state_dir)")"
  dir="$(replica_dir)"
  if local_replica_running "$bindir"; then
    port="$(conf_port "$dir/data")"
    say "replica already running on 127.0.0.1:$port ($dir)"; url_for_port "$port"; return
  fi
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    mkdir -p "$dir"; [[ $EUID -eq 0 ]] && chown postgres: "$dir"
    say "pg_basebackup from 127.0.0.1:$primary_port into $dir/data"
    # -R (--write-recovery-conf): standby.signal and primary_conninfo, so it starts as a streaming standby.
    PGPASSWORD="$(superuser_password)" run_as_owner "$bindir/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U "$PG_USER" \
      -D "$dir/data" --wal-method=stream --write-recovery-conf --checkpoint=fast >&2 ||
      fail "pg_basebackup failed (above): the primary needs a 'host replication' line in pg_hba.conf and a user with REPLICATION (the course cluster has both)."
  fi
  port="$(conf_port "$dir/data")"
  if [[ "$port" == "$primary_port" ]] || port_answers 127.0.0.1 "$port"; then
    local wanted="$REPLICA_PORT"; [[ "$wanted" == "$primary_port" ]] && wanted=$((primary_port + 1))
    port="$(free_port_from "$wanted")"
    [[ "$port" == "$REPLICA_PORT" ]] || say "port $REPLICA_PORT is taken: the replica uses $port"
    run_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF

# hot standby of the course database (scripts/db.sh replica)
port = $port
cluster_name = 'pgvector_module_replica'
shared_buffers = 128MB
CONF
  fi
  say "starting the replica on 127.0.0.1:$port"
  run_as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
    { tail -n 20 "$dir/postgres.log" >&2; fail "the replica did not start (log above: $dir/postgres.log)."; }
  url_for_port "$port"
}

local_replica_down() {
  local bindir; bindir="$(pg_bindir || true)"
  [[ -n "$bindir" ]] && local_replica_running "$bindir" || return 0
  say "stopping the replica ($(replica_dir))"
  run_as_owner "$bindir/pg_ctl" -D "$(replica_dir)/data" -m fast -w stop >/dev/null
}

local_replica_url() {
  local bindir; bindir="$(pg_bindir || true)"
  [[ -n "$bindir" ]] && local_replica_running "$bindir" && url_for_port "$(conf_port "$(replica_dir)/data")"
}

docker_replica_running() { docker_answers && [[ -n "$(compose --profile replica ps -q replica 2>/dev/null)" ]]; }

docker_replica_up() {
  docker_running || fail "the compose database is not running: run 'scripts/db.sh up' first."
  # The image's pg_hba.conf admits every database but not replication connections: add that line once.
  compose exec -T postgres sh -c 'grep -q "^host replication all all" "$PGDATA/pg_hba.conf" || { echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"; psql -U "$POSTGRES_USER" -d postgres -qc "SELECT pg_reload_conf()"; }' >&2 ||
    fail "could not allow replication connections on the compose database (see above)."
  say "starting the replica service (docker compose --profile replica)"
  compose --profile replica up -d --wait replica >&2 || fail "docker compose could not start the replica (see above; REPLICA_PORT=$REPLICA_PORT may be taken)."
  url_for_port "$REPLICA_PORT"
}

cmd_replica() {
  local url lu
  case "${1:-}" in
    up)
      refuse_unmanaged_database_url "a replica"
      if docker_running; then url="$(docker_replica_up)"; else url="$(local_replica_up)"; fi
      say "lesson 08 uses it when told: export STANDBY_URL=\$(scripts/db.sh replica url)"
      printf '%s\n' "$url" ;;
    down)
      local_replica_down
      if docker_running; then compose --profile replica stop replica >&2; fi ;;
    status)
      lu="$(local_replica_url || true)"
      if [[ -n "$lu" ]]; then echo "replica: running, $(redact_url "$lu") ($(replica_dir))"
      elif [[ -f "$(replica_dir)/data/PG_VERSION" ]]; then echo "replica: stopped ($(replica_dir))"
      elif docker_replica_running; then echo "replica: docker compose service running, $(redact_url "$(url_for_port "$REPLICA_PORT")")"
      else echo "replica: none"; return 1; fi ;;
    url)
      lu="$(local_replica_url || true)"
      if [[ -n "$lu" ]]; then printf '%s\n' "$lu"
      elif docker_replica_running; then url_for_port "$REPLICA_PORT"; echo
      else fail "no replica is running: start one with scripts/db.sh replica up"; fi ;;
    *) fail "usage: scripts/db.sh replica up|down|status|url" ;;
  esac
}
