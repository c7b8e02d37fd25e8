# Sourced by db.sh: the course database's lifecycle, as a local cluster in .pgdata/ or as docker compose's service, and
# the superuser's password. Expects settings.sh and provision.sh, and PG_USER, PG_PASSWORD_SETTING, PG_DB, PG_PORT from
# db.sh.

# --- The superuser's password --------------------------------------------------------------------------------------
# POSTGRES_PASSWORD when it is set; otherwise one generated the first time a cluster is made, kept in the state folder
# in a file only its owner can read, and used by every command here. Other users of the machine reach 127.0.0.1 too,
# so a password anyone could guess would give them the superuser. It is printed in one place: inside the URL that
# `up` and `url` write to stdout, which is their output; everything said on stderr shows URLs through redact_url.

password_file() { printf '%s/superuser-password' "$(local_state_dir)"; }

generate_password() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; } # 48 hex digits: 192 bits, nothing to escape

superuser_password() { # -> the password, or nothing when none is set or generated yet
  if [[ -n "$PG_PASSWORD_SETTING" ]]; then printf '%s' "$PG_PASSWORD_SETTING"
  elif [[ -s "$(password_file)" ]]; then tr -d '\n' < "$(password_file)"; fi
}

write_password_file() { # PASSWORD: created readable by its owner alone from the start (umask), never chmod-ed after
  local file; file="$(password_file)"
  make_state_dir "$(dirname "$file")"
  ( umask 077; printf '%s\n' "$1" > "$file.new" && mv -f "$file.new" "$file" ) || fail "cannot write $file."
}

ensure_superuser_password() {
  [[ -n "$(superuser_password)" ]] || write_password_file "$(generate_password)"
}

url_encode() { # TEXT -> TEXT with every character but A-Z a-z 0-9 - . _ ~ percent-encoded (RFC 3986)
  local LC_ALL=C text="$1" out="" c i
  for (( i = 0; i < ${#text}; i++ )); do
    c="${text:i:1}"
    case "$c" in [A-Za-z0-9._~-]) out+="$c" ;; *) out+="$(printf '%%%02X' "'$c")" ;; esac
  done
  printf '%s' "$out"
}

url_for_port() {
  printf 'postgresql://%s:%s@127.0.0.1:%s/%s' "$(url_encode "$PG_USER")" "$(url_encode "$(superuser_password)")" "$1" "$PG_DB"
}

# Clusters made before passwords were generated have the fixed password 'postgres'. The first command that needs the
# password gives the superuser a generated one. psql's \password sends it hashed (the SCRAM verifier is computed on
# this side), so neither the server's log nor pg_stat_statements ever holds it; setsid takes psql off the terminal,
# so it reads the new password from its standard input instead of asking.
adopt_legacy_cluster() { # BINDIR PORT
  local bindir="$1" port="$2" file new errors
  file="$(password_file)"
  PGPASSWORD=postgres "$bindir/psql" -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -tAc 'SELECT 1' >/dev/null 2>&1 ||
    fail "cannot log in to the local cluster on 127.0.0.1:$port: set POSTGRES_PASSWORD to its superuser's password (environment or .env), or run 'scripts/db.sh reset' to start over (its data is deleted)."
  command -v setsid >/dev/null 2>&1 ||
    fail "the local cluster on 127.0.0.1:$port still has the old password 'postgres': change it with psql -h 127.0.0.1 -p $port -U $PG_USER -d postgres -c '\\password $PG_USER' and put the new one in POSTGRES_PASSWORD (.env)."
  say "the local cluster still has the old password 'postgres': giving $PG_USER a generated one, kept in $file (readable by you alone)"
  new="$(generate_password)"
  write_password_file "$new"
  if ! errors="$(printf '%s\n%s\n' "$new" "$new" | PGPASSWORD=postgres setsid -w "$bindir/psql" -h 127.0.0.1 -p "$port" \
        -U "$PG_USER" -d postgres -c "\\password $PG_USER" 2>&1 >/dev/null)" ||
     ! PGPASSWORD="$new" "$bindir/psql" -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
    rm -f "$file"
    fail "could not change the old password of the local cluster on 127.0.0.1:$port (psql said: ${errors//$'\n'/ })."
  fi
  [[ ! -f "$(replica_dir)/data/PG_VERSION" ]] ||
    say "the replica in $(replica_dir) was copied with the old password: make it again with scripts/db.sh replica down, then rm -rf $(replica_dir), then scripts/db.sh replica up"
}

# The password of the running local cluster, adopting a cluster made with the old fixed one first.
ensure_cluster_password() { # BINDIR PORT
  [[ -n "$(superuser_password)" ]] || adopt_legacy_cluster "$1" "$2"
}

# --- Where the cluster lives -----------------------------------------------------------------------------------------
# The cluster lives in .pgdata/ inside the repository (.pgdata-18/ with POSTGRES_VERSION=18, so two majors can run side
# by side). As root it is run by 'postgres', which must be able to reach that folder; where it cannot (a clone under
# /root, say), it moves below /var/lib/postgresql.
# The answer is worked out once per run (_local_state_dir, set by db.sh): asking the postgres user takes a process each time.
local_state_dir() {
  [[ -z "${_local_state_dir:-}" ]] || { printf '%s' "$_local_state_dir"; return; }
  # PGVECTOR_MODULE_STATE names the folder outright, for the scripts and the lessons alike (tests use a folder of their own).
  local configured; configured="$(setting PGVECTOR_MODULE_STATE)"
  [[ -z "$configured" ]] || { printf '%s' "$configured"; return; }
  local name=.pgdata; [[ -z "$POSTGRES_VERSION" ]] || name=".pgdata-$POSTGRES_VERSION"
  if [[ $EUID -eq 0 ]] && ! run_as_owner test -x "$ROOT" 2>/dev/null; then
    printf '/var/lib/postgresql/pgvector-module/%s%s' "$(path_hash "$ROOT")" "${name#.pgdata}"
  else
    printf '%s' "$ROOT/$name"
  fi
}

path_hash() { # TEXT -> 12 hex digits of its SHA-1 (sha1sum on Linux, shasum on macOS; cksum's number where neither is)
  if command -v sha1sum >/dev/null 2>&1; then printf '%s' "$1" | sha1sum | cut -c1-12
  elif command -v shasum >/dev/null 2>&1; then printf '%s' "$1" | shasum -a 1 | cut -c1-12
  else printf '%s' "$1" | cksum | cut -d' ' -f1; fi
}

make_state_dir() { # DIR: readable by the cluster's owner alone (the postgres user under root)
  [[ -d "$1" ]] || { mkdir -p "$(dirname "$1")" && ( umask 077; mkdir -p "$1" ); } || fail "cannot create $1."
  chmod 700 "$1"
  [[ $EUID -ne 0 ]] || chown postgres: "$1"
}

# A data folder made by another major cannot be started by these programs: say so instead of letting pg_ctl fail.
check_cluster_major() { # STATE BINDIR
  local made running
  [[ -f "$1/data/PG_VERSION" ]] || return 0
  made="$(cat "$1/data/PG_VERSION")"
  running="$(pg_major "$2")"
  [[ "$made" == "$running" ]] ||
    fail "$1 holds a PostgreSQL $made cluster but the programs found are PostgreSQL $running: set POSTGRES_VERSION=$made, or 'scripts/db.sh reset' to start over."
}

conf_port() { sed -n -E 's/^port = ([0-9]+).*/\1/p' "$1/postgresql.conf" 2>/dev/null | tail -n 1; } # DATA_DIR
local_port() { conf_port "$1/data"; } # STATE_DIR

# Sets NAME's lines in a postgresql.conf, as the file's owner. Written to a new file and copied back (BSD sed's -i
# takes an argument GNU sed's does not), which keeps the file's owner and mode.
set_conf_value() { # FILE NAME VALUE
  run_as_owner sh -c 'sed -E "s|^$1 = .*|$1 = $2|" "$0" > "$0.new" && cat "$0.new" > "$0" && rm -f "$0.new"' "$1" "$2" "$3" ||
    fail "cannot change $2 in $1."
}

local_running() { # STATE BINDIR
  [[ -f "$1/data/PG_VERSION" ]] && run_as_owner "$2/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

free_port_from() {
  local p="$1"
  while port_answers 127.0.0.1 "$p"; do p=$((p + 1)); done
  printf '%s' "$p"
}

# initdb's locale: C.UTF-8 where the C library has it (glibc); macOS has none, so en_US.UTF-8 there.
cluster_locale() { if [[ "$(uname -s)" == Darwin ]]; then printf en_US.UTF-8; else printf C.UTF-8; fi; }

local_init() { # BINDIR STATE: initdb with the course's user and password, on the first free port from POSTGRES_PORT
  local bindir="$1" state="$2" port
  make_state_dir "$state"
  ensure_superuser_password
  say "initdb $state/data"
  # initdb reads the password from a file: made private from the start, readable by the server's user, and removed
  # when this subshell ends, however it ends.
  ( pwfile="$state/initdb-password"
    trap 'rm -f "$pwfile"' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM
    umask 077
    superuser_password > "$pwfile"; printf '\n' >> "$pwfile"
    [[ $EUID -ne 0 ]] || chown postgres: "$pwfile"
    run_as_owner "$bindir/initdb" -D "$state/data" -U "$PG_USER" --pwfile="$pwfile" \
      --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale="$(cluster_locale)" >"$state/initdb.log" 2>&1 ||
      { cat "$state/initdb.log" >&2; fail "initdb failed (log above)."; }
  ) || exit 1
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
  bindir="$(ensure_server)" || exit 1
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
      set_conf_value "$state/data/postgresql.conf" port "$newport"
      port="$newport"
    fi
    say "starting local cluster on 127.0.0.1:$port"
    run_as_owner "$bindir/pg_ctl" -D "$state/data" -l "$state/postgres.log" -w -t 60 start >/dev/null ||
      { tail -n 20 "$state/postgres.log" >&2; fail "PostgreSQL did not start (log above: $state/postgres.log)."; }
  fi
  ensure_cluster_password "$bindir" "$port"
  # Create the database on first use.
  exists="$(PGPASSWORD="$(superuser_password)" "$bindir/psql" -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ||
    fail "cannot log in to 127.0.0.1:$port as $PG_USER with $(password_source): set POSTGRES_PASSWORD to its password, or 'scripts/db.sh reset' to start over."
  if [[ "$exists" != "1" ]]; then
    say "creating database $PG_DB"
    PGPASSWORD="$(superuser_password)" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U "$PG_USER" "$PG_DB"
  fi
  url_for_port "$port"
}

password_source() { if [[ -n "$PG_PASSWORD_SETTING" ]]; then printf 'POSTGRES_PASSWORD'; else printf 'the password in %s' "$(password_file)"; fi; }

local_down() {
  local bindir state; bindir="$(pg_bindir || true)"; state="$(local_state_dir)"
  [[ -n "$bindir" && -f "$state/data/PG_VERSION" ]] || return 0
  if local_running "$state" "$bindir"; then
    say "stopping local cluster ($state)"
    run_as_owner "$bindir/pg_ctl" -D "$state/data" -m fast -w stop >/dev/null
  fi
}

local_url() {
  local bindir state port; bindir="$(pg_bindir || true)"; state="$(local_state_dir)"
  [[ -n "$bindir" ]] && local_running "$state" "$bindir" || return 1
  port="$(local_port "$state")"
  ensure_cluster_password "$bindir" "$port"
  url_for_port "$port"
}

# --- docker compose --------------------------------------------------------------------------------------------------
# docker-compose.yml requires POSTGRES_PASSWORD: the scripts hand it the same password as the local cluster's (set, or
# generated into the state folder). Commands that create nothing (ps, stop, down) read no password, but compose reads
# the whole file first, so they get a stand-in when none exists yet.
compose() {
  local password; password="$(superuser_password)"
  POSTGRES_PASSWORD="${password:-none-generated-yet}" docker compose "$@"
}

docker_up() {
  ensure_superuser_password
  say "starting $(compose_image) with docker compose"
  compose up -d --wait >&2 || fail "docker compose up failed (see above)."
  url_for_port "$PG_PORT"
}

docker_running() { docker_answers && [[ -n "$(compose ps -q 2>/dev/null)" ]]; }
