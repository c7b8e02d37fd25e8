# Sourced by db.sh: `db.sh pgbouncer install|up|down|status|url`, pgBouncer in transaction mode in front of the local
# cluster (its files beside the cluster's data folder), or docker compose's pgbouncer service. Expects cluster.sh.

pgbouncer_dir() { printf '%s/pgbouncer' "$(local_state_dir)"; }
pgbouncer_port() { sed -n -E 's/^listen_port = ([0-9]+).*/\1/p' "$(pgbouncer_dir)/pgbouncer.ini"; }

local_pgbouncer_running() { [[ -f "$(pgbouncer_dir)/pgbouncer.pid" ]] && kill -0 "$(cat "$(pgbouncer_dir)/pgbouncer.pid")" 2>/dev/null; }

local_pgbouncer_up() {
  local bindir primary_port dir port bin
  bindir="$(pg_bindir)" || fail "no PostgreSQL binaries: run 'scripts/db.sh up' first."
  local_running "$(local_state_dir)" "$bindir" || fail "the local cluster is not running: run 'scripts/db.sh up' first."
  pgbouncer_install; bin="$(pgbouncer_bin)"
  primary_port="$(local_port "$(local_state_dir)")"
  dir="$(pgbouncer_dir)"
  if local_pgbouncer_running; then
    port="$(pgbouncer_port)"
    say "pgbouncer already running on 127.0.0.1:$port"; url_for_port "$port"; return
  fi
  port="$(free_port_from "$PGBOUNCER_PORT")"
  [[ "$port" == "$PGBOUNCER_PORT" ]] || say "port $PGBOUNCER_PORT is taken: pgbouncer uses $port"
  # Its files are private from the start (umask); the one holding the password goes again when pgbouncer does not start
  # (and on down).
  ( umask 077
    mkdir -p "$dir"
    cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$primary_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
pool_mode = transaction
default_pool_size = 10
max_client_conn = 500
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
admin_users = $PG_USER
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    userlist_line "$PG_USER" "$(superuser_password)" > "$dir/userlist.txt"
  ) || { rm -f "$dir/userlist.txt"; fail "cannot write pgbouncer's files in $dir."; }
  [[ $EUID -ne 0 ]] || chown -R postgres: "$dir"
  say "starting pgbouncer (transaction mode) on 127.0.0.1:$port in front of 127.0.0.1:$primary_port"
  run_as_owner "$bin" -d -q "$dir/pgbouncer.ini" ||
    { rm -f "$dir/userlist.txt"; tail -n 20 "$dir/pgbouncer.log" >&2; fail "pgbouncer did not start (log above: $dir/pgbouncer.log)."; }
  url_for_port "$port"
}

# One line of pgbouncer's auth_file: "user" "password", a double quote inside either written twice.
userlist_line() { # USER PASSWORD
  printf '"%s" "%s"\n' "${1//\"/\"\"}" "${2//\"/\"\"}"
}

local_pgbouncer_down() {
  local_pgbouncer_running || return 0
  say "stopping pgbouncer ($(pgbouncer_dir))"
  kill -TERM "$(cat "$(pgbouncer_dir)/pgbouncer.pid")"
  # pgbouncer read the password at its start; the file need not outlive it.
  rm -f "$(pgbouncer_dir)/userlist.txt"
}

cmd_pgbouncer() {
  local url
  case "${1:-}" in
    install) pgbouncer_install ;;
    up)
      refuse_unmanaged_database_url "pgBouncer"
      if docker_running; then
        say "starting the pgbouncer service (docker compose --profile pgbouncer)"
        compose --profile pgbouncer up -d --wait pgbouncer >&2 || fail "docker compose could not start pgbouncer (see above; PGBOUNCER_PORT=$PGBOUNCER_PORT may be taken)."
        url_for_port "$PGBOUNCER_PORT"; echo
      else url="$(local_pgbouncer_up)" || exit 1; printf '%s\n' "$url"; fi ;;
    down)
      local_pgbouncer_down
      if docker_running; then compose --profile pgbouncer stop pgbouncer >&2; fi ;;
    status)
      if local_pgbouncer_running; then echo "pgbouncer: running, $(redact_url "$(url_for_port "$(pgbouncer_port)")")"
      elif [[ -n "$(pgbouncer_bin || true)" ]]; then echo "pgbouncer: installed ($("$(pgbouncer_bin)" --version | head -n 1)), not running"; return 1
      else echo "pgbouncer: not installed (scripts/db.sh pgbouncer install)"; return 1; fi ;;
    url)
      local_pgbouncer_running || fail "pgbouncer is not running: start it with scripts/db.sh pgbouncer up"
      url_for_port "$(pgbouncer_port)"; echo ;;
    *) fail "usage: scripts/db.sh pgbouncer install|up|down|status|url" ;;
  esac
}
