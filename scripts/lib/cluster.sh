# Sourced by db.sh: the course database's lifecycle, as a local cluster in .pgdata/ or as docker compose's service.
# Expects settings.sh and provision.sh, and PG_USER, PG_PASSWORD, PG_DB, PG_PORT from db.sh.

url_for_port() { printf 'postgresql://%s:%s@127.0.0.1:%s/%s' "$PG_USER" "$PG_PASSWORD" "$1" "$PG_DB"; }

# The cluster lives in .pgdata/ inside the repository (.pgdata-18/ with POSTGRES_VERSION=18, so two majors can run side
# by side). As root it is run by 'postgres', which must be able to reach that folder; where it cannot (a clone under
# /root, say), it moves below /var/lib/postgresql.
local_state_dir() {
  local name=.pgdata; [[ -z "$POSTGRES_VERSION" ]] || name=".pgdata-$POSTGRES_VERSION"
  if [[ $EUID -eq 0 ]] && ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
    printf '/var/lib/postgresql/pgvector-module/%s%s' "$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)" "${name#.pgdata}"
  else
    printf '%s' "$ROOT/$name"
  fi
}

# A data folder made by another major cannot be started by these programs: say so instead of letting pg_ctl fail.
check_cluster_major() { # STATE BINDIR
  local made running
  [[ -f "$1/data/PG_VERSION" ]] || return 0
  made="$(cat "$1/data/PG_VERSION")"
  running="$("$2/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')"
  [[ "$made" == "$running" ]] ||
    fail "$1 holds a PostgreSQL $made cluster but the programs found are PostgreSQL $running: set POSTGRES_VERSION=$made, or 'scripts/db.sh reset' to start over."
}

conf_port() { sed -n -E 's/^port = ([0-9]+).*/\1/p' "$1/postgresql.conf" 2>/dev/null | tail -n 1; } # DATA_DIR
local_port() { conf_port "$1/data"; } # STATE_DIR

local_running() { # STATE BINDIR
  [[ -f "$1/data/PG_VERSION" ]] && run_as_owner "$2/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

free_port_from() {
  local p="$1"
  while port_answers 127.0.0.1 "$p"; do p=$((p + 1)); done
  printf '%s' "$p"
}

local_init() { # BINDIR STATE: initdb with the course's user and password, on the first free port from POSTGRES_PORT
  local bindir="$1" state="$2" port pwfile
  mkdir -p "$state"
  [[ $EUID -eq 0 ]] && chown postgres: "$state"
  pwfile="$state/.pw"
  printf '%s\n' "$PG_PASSWORD" > "$pwfile"; chmod 600 "$pwfile"
  [[ $EUID -eq 0 ]] && chown postgres: "$pwfile"
  say "initdb $state/data"
  run_as_owner "$bindir/initdb" -D "$state/data" -U "$PG_USER" --pwfile="$pwfile" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1 ||
    { cat "$state/initdb.log" >&2; fail "initdb failed (log above)."; }
  rm -f "$pwfile"
  port="$(free_port_from "$PG_PORT")"
  [[ "$port" == "$PG_PORT" ]] || say "port $PG_PORT is taken: using $port"
  run_as_owner tee -a "$state/data/postgresql.conf" >/dev/null <<CONF

# pgvector course module
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
shared_preload_libraries = 'pg_stat_statements'
max_connections = 200
# Vector indexes are fastest when they fit in memory; the default 128MB holds a 100k x 384 HNSW index only in part.
shared_buffers = 512MB
CONF
}

local_up() {
  local bindir state port exists
  bindir="$(ensure_server)"
  ensure_pgvector "$bindir"
  state="$(local_state_dir)"
  check_cluster_major "$state" "$bindir"
  [[ -f "$state/data/PG_VERSION" ]] || local_init "$bindir" "$state"
  port="$(local_port "$state")"
  if local_running "$state" "$bindir"; then
    say "local cluster already running on 127.0.0.1:$port ($state)"
  else
    if port_answers 127.0.0.1 "$port"; then
      local newport; newport="$(free_port_from "$port")"
      say "port $port is taken by another server: moving the local cluster to $newport"
      run_as_owner sed -i -E "s/^port = [0-9]+/port = $newport/" "$state/data/postgresql.conf"
      port="$newport"
    fi
    say "starting local cluster on 127.0.0.1:$port"
    run_as_owner "$bindir/pg_ctl" -D "$state/data" -l "$state/postgres.log" -w -t 60 start >/dev/null ||
      { tail -n 20 "$state/postgres.log" >&2; fail "PostgreSQL did not start (log above: $state/postgres.log)."; }
  fi
  # Create the database on first use.
  exists="$(PGPASSWORD="$PG_PASSWORD" "$bindir/psql" -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" || fail "cannot log in to 127.0.0.1:$port as $PG_USER (password from POSTGRES_PASSWORD)."
  if [[ "$exists" != "1" ]]; then
    say "creating database $PG_DB"
    PGPASSWORD="$PG_PASSWORD" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U "$PG_USER" "$PG_DB"
  fi
  url_for_port "$port"
}

local_down() {
  local bindir state; bindir="$(pg_bindir || true)"; state="$(local_state_dir)"
  [[ -n "$bindir" && -f "$state/data/PG_VERSION" ]] || return 0
  if local_running "$state" "$bindir"; then
    say "stopping local cluster ($state)"
    run_as_owner "$bindir/pg_ctl" -D "$state/data" -m fast -w stop >/dev/null
  fi
}

local_url() {
  local bindir state; bindir="$(pg_bindir || true)"; state="$(local_state_dir)"
  [[ -n "$bindir" ]] && local_running "$state" "$bindir" && url_for_port "$(local_port "$state")"
}

docker_up() {
  say "starting pgvector/pgvector:0.8.7-pg17 with docker compose"
  docker compose up -d --wait >&2 || fail "docker compose up failed (see above)."
  url_for_port "$PG_PORT"
}

docker_running() { docker_answers && [[ -n "$(docker compose ps -q 2>/dev/null)" ]]; }
