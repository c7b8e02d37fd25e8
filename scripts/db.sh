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
#
# Where the database comes from, first match wins:
#   1. DATABASE_URL (environment or .env) points at a server that answers: use it as it is.
#   2. A Docker engine answers: docker compose with docker-compose.yml (pgvector/pgvector:0.8.7-pg17).
#   3. Otherwise a local cluster in .pgdata/: PostgreSQL and pgvector are installed when missing
#      (the distribution's postgresql-N-pgvector package, or built from Debian's source package),
#      then initdb, started on 127.0.0.1 with password authentication.
# DB_MODE=env|docker|local forces one of them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say()  { printf '[db] %s\n' "$*" >&2; }
fail() { printf '[db] error: %s\n' "$*" >&2; exit 1; }

# --- settings: environment wins over .env, .env over the defaults -----------------------------------
env_file_value() { # NAME -> value from .env, if any
  [[ -f .env ]] || return 0
  sed -n -E "s/^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=[[:space:]]*//p" .env | tail -n 1 |
    sed -E 's/[[:space:]]+#.*$//; s/^"(.*)"$/\1/; s/^'"'"'(.*)'"'"'$/\1/'
}
setting() { # NAME DEFAULT
  local v="${!1:-}"
  [[ -n "$v" ]] || v="$(env_file_value "$1")"
  printf '%s' "${v:-$2}"
}
PG_USER="$(setting POSTGRES_USER postgres)"
PG_PASSWORD="$(setting POSTGRES_PASSWORD postgres)"
PG_DB="$(setting POSTGRES_DB agent_db)"
PG_PORT="$(setting POSTGRES_PORT 5432)"
REPLICA_PORT="$(setting REPLICA_PORT 5433)"
PGBOUNCER_PORT="$(setting PGBOUNCER_PORT 6432)"
DB_MODE="$(setting DB_MODE auto)"
CONFIGURED_URL="$(setting DATABASE_URL '')"

STATE_DIR="$ROOT/.pgdata"

url_for_port() { printf 'postgresql://%s:%s@127.0.0.1:%s/%s' "$PG_USER" "$PG_PASSWORD" "$1" "$PG_DB"; }
# The local cluster's companions live beside its data folder.
replica_dir() { printf '%s/replica' "$(local_state_dir)"; }
pgbouncer_dir() { printf '%s/pgbouncer' "$(local_state_dir)"; }

# Host and port out of either URL form: postgresql://u:p@host:port/db or Host=..;Port=..
url_host_port() {
  local url="$1" host="" port=""
  if [[ "$url" =~ ^postgres(ql)?:// ]]; then
    local rest="${url#*://}"; rest="${rest##*@}"; rest="${rest%%/*}"; rest="${rest%%\?*}"
    if [[ "$rest" == \[* ]]; then host="${rest%%]*}"; host="${host#[}"; port="${rest##*]:}"; [[ "$port" == "$rest" ]] && port=""
    else host="${rest%%:*}"; [[ "$rest" == *:* ]] && port="${rest##*:}"; fi
  else
    local part key val
    IFS=';' read -ra parts <<< "$url"
    for part in "${parts[@]}"; do
      key="$(printf '%s' "${part%%=*}" | tr '[:upper:]' '[:lower:]' | tr -d ' ')"; val="${part#*=}"
      case "$key" in host|server) host="$val" ;; port) port="$val" ;; esac
    done
  fi
  printf '%s %s' "${host:-localhost}" "${port:-5432}"
}

port_answers() { # HOST PORT
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

url_answers() {
  [[ -n "$1" ]] || return 1
  local hp; hp="$(url_host_port "$1")"
  port_answers ${hp}
}

docker_answers() {
  command -v docker >/dev/null 2>&1 && timeout 5 docker info >/dev/null 2>&1
}

# --- privileges --------------------------------------------------------------------------------------
as_root() { # run a command as root: directly, or through sudo with a clear word when neither works
  if [[ $EUID -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then
    say "needs administrator rights for: $*"
    sudo "$@" || fail "'sudo $*' failed. Run it yourself, or set DATABASE_URL to a PostgreSQL server with pgvector, or start Docker."
  else
    fail "installing PostgreSQL/pgvector needs root and sudo is not available. Ask an administrator to run '$*', set DATABASE_URL to a PostgreSQL server with pgvector, or start Docker."
  fi
}

# The local cluster cannot run as root: as root it runs as the 'postgres' user, as anyone else as themselves.
run_as_owner() {
  if [[ $EUID -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

apt_updated=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || fail "this machine has no apt-get: install PostgreSQL with pgvector yourself and set DATABASE_URL, or start Docker."
  if [[ -z "$apt_updated" ]]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# --- local cluster: server, extension, cluster ----------------------------------------------------------
pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$d" && -x "$d/pg_ctl" ]] && printf '%s' "$d"
}

ensure_server() {
  local bindir; bindir="$(pg_bindir || true)"
  if [[ -z "$bindir" ]]; then
    say "no PostgreSQL server found: installing the distribution's package"
    apt_install postgresql postgresql-contrib
    # Debian's package creates and starts a cluster of its own on 5432; ours is separate, so stop theirs.
    as_root sh -c 'command -v pg_ctlcluster >/dev/null && for c in $(ls /etc/postgresql 2>/dev/null); do for n in $(ls /etc/postgresql/$c); do pg_ctlcluster "$c" "$n" stop || true; done; done' || true
    bindir="$(pg_bindir)" || fail "PostgreSQL installed but no server binaries under /usr/lib/postgresql."
  fi
  printf '%s' "$bindir"
}

pgvector_version() { # BINDIR -> the installed default_version, or nothing
  sed -n -E "s/^default_version = '([^']+)'.*/\1/p" "$("$1/pg_config" --sharedir)/extension/vector.control" 2>/dev/null
}
# Installed, and not older than the first release without CVE-2026-3172.
have_pgvector() {
  local v; v="$(pgvector_version "$1")"
  [[ -n "$v" ]] && version_at_least "$PGVECTOR_MIN_VERSION" "$v"
}

# Debian 12 has no pgvector package; Debian's newer releases ship its source. The local cluster builds a pinned
# source package (version and SHA-256 of its .dsc, which in turn pins the tarballs), trying the newest first and
# taking the first one the machine's Debian mirror serves. pgvector 0.6.0-0.8.1 carry CVE-2026-3172 (parallel
# HNSW builds, fixed in 0.8.2) and 0.8.3-0.8.4 fixed HNSW vacuum errors, so nothing older than 0.8.5 is listed.
PGVECTOR_SOURCES=(
  "0.8.7-1 1fb13ac21fa1a21eee32fe7da1cc7aac7c4974bb5872737e90b9fce037883224"
  "0.8.6-1 d08de2aa48b7cb70319cc896aa3d95514690d1009f96579dbe6b23c59634f4e6"
)
PGVECTOR_MIN_VERSION="0.8.5"

# Fetches one pinned Debian source package from the pool of the mirror in debian.sources, checks it and unpacks it
# into WORK; prints the source tree's path. Returns 1 when the mirror does not serve that version.
debian_source() { # PACKAGE VERSION DSC_SHA256 WORK
  local package="$1" version="$2" sha="$3" work="$4" src_uri pool dsc
  local sources=/etc/apt/sources.list.d/debian.sources
  [[ -f "$sources" ]] || fail "cannot build $package: $sources not found (expected on Debian 12). Install $package yourself or use Docker."
  src_uri="$(awk '/^URIs:/ {print $2; exit}' "$sources")"
  [[ -n "$src_uri" ]] || fail "cannot read a URIs line from $sources."
  pool="$src_uri/pool/main/${package:0:1}/$package"
  dsc="${package}_${version}.dsc"
  /usr/lib/apt/apt-helper download-file "$pool/$dsc" "$work/$dsc" "SHA256:$sha" >/dev/null 2>&1 || return 1
  local file
  for file in $(awk '/^Checksums-Sha256:/ {on=1; next} /^[^ ]/ {on=0} on {print $3}' "$work/$dsc"); do
    /usr/lib/apt/apt-helper download-file "$pool/$file" "$work/$file" >/dev/null 2>&1 || return 1
  done
  # dpkg-source checks every tarball against the sums in the .dsc before it unpacks.
  (cd "$work" && dpkg-source -q -x "$dsc" "$package-src" >&2) || fail "the $package $version source package did not pass its checksums."
  printf '%s' "$work/$package-src"
}

build_pgvector_from_debian_source() {
  local bindir="$1" major="$2" work srcdir="" entry
  apt_install "postgresql-server-dev-$major" build-essential dpkg-dev
  work="$(mktemp -d)"; chmod 755 "$work"
  for entry in "${PGVECTOR_SOURCES[@]}"; do
    set -- $entry
    if srcdir="$(debian_source pgvector "$1" "$2" "$work")"; then
      say "building pgvector $1 from Debian's source package for PostgreSQL $major"; break
    fi
    say "the Debian mirror does not serve pgvector $1; trying the next pinned version"
    srcdir=""
  done
  [[ -n "$srcdir" ]] || fail "the Debian mirror serves none of the pinned pgvector source packages (${PGVECTOR_SOURCES[*]%% *}): install pgvector >= $PGVECTOR_MIN_VERSION yourself, or use Docker."
  # with_llvm=no: skip the JIT bitcode, which would need clang and adds nothing to the lessons.
  as_root make -s -C "$srcdir" PG_CONFIG="$bindir/pg_config" with_llvm=no >&2
  as_root make -s -C "$srcdir" PG_CONFIG="$bindir/pg_config" with_llvm=no install >&2
  as_root rm -rf "$work"
}

version_at_least() { # MIN VERSION
  [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" == "$1" ]]
}

ensure_pgvector() {
  local bindir="$1" major candidate
  have_pgvector "$bindir" && return 0
  local installed; installed="$(pgvector_version "$bindir")"
  [[ -z "$installed" ]] || say "pgvector $installed is installed but older than $PGVECTOR_MIN_VERSION (CVE-2026-3172): replacing it"
  major="$("$bindir/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')"
  command -v apt-cache >/dev/null 2>&1 ||
    fail "pgvector >= $PGVECTOR_MIN_VERSION is not installed for PostgreSQL $major and this machine has no apt: see https://github.com/pgvector/pgvector#installation, or use Docker."
  [[ -n "$apt_updated" ]] || { as_root apt-get update -qq; apt_updated=1; }
  candidate="$(apt-cache policy "postgresql-$major-pgvector" 2>/dev/null | sed -n -E 's/^ *Candidate: ([0-9][^-+~]*).*/\1/p')"
  if [[ -n "$candidate" ]] && version_at_least "$PGVECTOR_MIN_VERSION" "$candidate"; then
    say "installing postgresql-$major-pgvector $candidate"
    apt_install "postgresql-$major-pgvector"
  else
    build_pgvector_from_debian_source "$bindir" "$major"
  fi
  have_pgvector "$bindir" || fail "pgvector >= $PGVECTOR_MIN_VERSION still missing after installation."
  say "pgvector $(pgvector_version "$bindir") installed"
}

# The cluster lives in .pgdata/ inside the repository. As root it is run by 'postgres', which must be
# able to reach that folder; where it cannot (a clone under /root, say), it moves below /var/lib/postgresql.
local_state_dir() {
  if [[ $EUID -eq 0 ]] && ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
    printf '/var/lib/postgresql/pgvector-module/%s' "$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
  else
    printf '%s' "$STATE_DIR"
  fi
}

local_port() { sed -n -E 's/^port = ([0-9]+).*/\1/p' "$1/data/postgresql.conf" 2>/dev/null | tail -n 1; }

local_running() { # STATE BINDIR
  [[ -f "$1/data/PG_VERSION" ]] && run_as_owner "$2/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

free_port_from() {
  local p="$1"
  while port_answers 127.0.0.1 "$p"; do p=$((p + 1)); done
  printf '%s' "$p"
}

local_up() {
  local bindir state port
  bindir="$(ensure_server)"
  ensure_pgvector "$bindir"
  state="$(local_state_dir)"
  if [[ ! -f "$state/data/PG_VERSION" ]]; then
    mkdir -p "$state"
    [[ $EUID -eq 0 ]] && chown postgres: "$state"
    local pwfile="$state/.pw"
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
  fi
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
  local exists
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

# --- docker ----------------------------------------------------------------------------------------------
docker_up() {
  say "starting pgvector/pgvector:0.8.7-pg17 with docker compose"
  docker compose up -d --wait >&2 || fail "docker compose up failed (see above)."
  url_for_port "$PG_PORT"
}
docker_running() { docker_answers && [[ -n "$(docker compose ps -q 2>/dev/null)" ]]; }

# --- replica: a hot standby of the local cluster, or compose's replica service -----------------------------
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
    port="$(sed -n -E 's/^port = ([0-9]+).*/\1/p' "$dir/data/postgresql.conf" | tail -n 1)"
    say "replica already running on 127.0.0.1:$port ($dir)"; url_for_port "$port"; return
  fi
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    mkdir -p "$dir"; [[ $EUID -eq 0 ]] && chown postgres: "$dir"
    say "pg_basebackup from 127.0.0.1:$primary_port into $dir/data"
    # -R (--write-recovery-conf): standby.signal and primary_conninfo, so it starts as a streaming standby.
    run_as_owner env PGPASSWORD="$PG_PASSWORD" "$bindir/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U "$PG_USER" \
      -D "$dir/data" --wal-method=stream --write-recovery-conf --checkpoint=fast >&2 ||
      fail "pg_basebackup failed (above): the primary needs a 'host replication' line in pg_hba.conf and a user with REPLICATION (the course cluster has both)."
  fi
  port="$(sed -n -E 's/^port = ([0-9]+).*/\1/p' "$dir/data/postgresql.conf" | tail -n 1)"
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
  [[ -n "$bindir" ]] && local_replica_running "$bindir" &&
    url_for_port "$(sed -n -E 's/^port = ([0-9]+).*/\1/p' "$(replica_dir)/data/postgresql.conf" | tail -n 1)"
}

docker_replica_up() {
  docker_running || fail "the compose database is not running: run 'scripts/db.sh up' first."
  # The image's pg_hba.conf admits every database but not replication connections: add that line once.
  docker compose exec -T postgres sh -c 'grep -q "^host replication all all" "$PGDATA/pg_hba.conf" || { echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"; psql -U "$POSTGRES_USER" -d postgres -qc "SELECT pg_reload_conf()"; }' >&2 ||
    fail "could not allow replication connections on the compose database (see above)."
  say "starting the replica service (docker compose --profile replica)"
  docker compose --profile replica up -d --wait replica >&2 || fail "docker compose could not start the replica (see above; REPLICA_PORT=$REPLICA_PORT may be taken)."
  url_for_port "$REPLICA_PORT"
}

cmd_replica() {
  local action="${1:-}" url
  case "$action" in
    up)
      if docker_running; then url="$(docker_replica_up)"; else url="$(local_replica_up)"; fi
      say "lesson 08 uses it when told: export STANDBY_URL='$url'"
      printf '%s\n' "$url" ;;
    down)
      local_replica_down
      if docker_running; then docker compose --profile replica stop replica >&2; fi ;;
    status)
      local lu; lu="$(local_replica_url || true)"
      if [[ -n "$lu" ]]; then echo "replica: running, $lu ($(replica_dir))"
      elif [[ -f "$(replica_dir)/data/PG_VERSION" ]]; then echo "replica: stopped ($(replica_dir))"
      elif docker_answers && [[ -n "$(docker compose --profile replica ps -q replica 2>/dev/null)" ]]; then echo "replica: docker compose service running, $(url_for_port "$REPLICA_PORT")"
      else echo "replica: none"; return 1; fi ;;
    url)
      local lu; lu="$(local_replica_url || true)"
      if [[ -n "$lu" ]]; then printf '%s\n' "$lu"
      elif docker_answers && [[ -n "$(docker compose --profile replica ps -q replica 2>/dev/null)" ]]; then url_for_port "$REPLICA_PORT"; echo
      else fail "no replica is running: start one with scripts/db.sh replica up"; fi ;;
    *) fail "usage: scripts/db.sh replica up|down|status|url" ;;
  esac
}

# --- pgbouncer: Debian's package, run in transaction mode in front of the local cluster ----------------------
pgbouncer_bin() { command -v pgbouncer 2>/dev/null || { [[ -x /usr/sbin/pgbouncer ]] && printf /usr/sbin/pgbouncer; }; }

pgbouncer_install() {
  local bin; bin="$(pgbouncer_bin || true)"
  if [[ -n "$bin" ]]; then say "$("$bin" --version | head -n 1) is installed ($bin)"; return 0; fi
  command -v apt-get >/dev/null 2>&1 || fail "pgbouncer is not installed and this machine has no apt-get: install it (brew install pgbouncer, dnf install pgbouncer) or set PGBOUNCER to a pgbouncer binary."
  say "installing Debian's pgbouncer package"
  # Without a network an existing package list may still do: try it before updating the list.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer >&2 2>/dev/null ||
    apt_install pgbouncer
  # The package may start a service of its own on 6432; ours runs per use, on a port it picks.
  as_root sh -c 'if command -v systemctl >/dev/null && systemctl is-active --quiet pgbouncer 2>/dev/null; then systemctl disable --now pgbouncer; elif [ -x /etc/init.d/pgbouncer ]; then /etc/init.d/pgbouncer stop; fi' >/dev/null 2>&1 || true
  bin="$(pgbouncer_bin)" || fail "pgbouncer installed but not found on PATH or in /usr/sbin."
  say "$("$bin" --version | head -n 1) installed ($bin)"
}

local_pgbouncer_running() { [[ -f "$(pgbouncer_dir)/pgbouncer.pid" ]] && kill -0 "$(cat "$(pgbouncer_dir)/pgbouncer.pid")" 2>/dev/null; }

local_pgbouncer_up() {
  local bindir primary_port dir port bin
  bindir="$(pg_bindir)" || fail "no PostgreSQL binaries: run 'scripts/db.sh up' first."
  local_running "$(local_state_dir)" "$bindir" || fail "the local cluster is not running: run 'scripts/db.sh up' first."
  pgbouncer_install; bin="$(pgbouncer_bin)"
  primary_port="$(local_port "$(local_state_dir)")"
  dir="$(pgbouncer_dir)"
  if local_pgbouncer_running; then
    port="$(sed -n -E 's/^listen_port = ([0-9]+).*/\1/p' "$dir/pgbouncer.ini")"
    say "pgbouncer already running on 127.0.0.1:$port"; url_for_port "$port"; return
  fi
  port="$(free_port_from "$PGBOUNCER_PORT")"
  [[ "$port" == "$PGBOUNCER_PORT" ]] || say "port $PGBOUNCER_PORT is taken: pgbouncer uses $port"
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
  printf '"%s" "%s"\n' "$PG_USER" "$PG_PASSWORD" > "$dir/userlist.txt"
  chmod 600 "$dir/userlist.txt" "$dir/pgbouncer.ini"
  [[ $EUID -eq 0 ]] && chown -R postgres: "$dir"
  say "starting pgbouncer (transaction mode) on 127.0.0.1:$port in front of 127.0.0.1:$primary_port"
  run_as_owner "$bin" -d -q "$dir/pgbouncer.ini" || { tail -n 20 "$dir/pgbouncer.log" >&2; fail "pgbouncer did not start (log above: $dir/pgbouncer.log)."; }
  url_for_port "$port"
}

local_pgbouncer_down() {
  local_pgbouncer_running || return 0
  say "stopping pgbouncer ($(pgbouncer_dir))"
  kill -TERM "$(cat "$(pgbouncer_dir)/pgbouncer.pid")"
}

cmd_pgbouncer() {
  case "${1:-}" in
    install) pgbouncer_install ;;
    up)
      if docker_running; then
        say "starting the pgbouncer service (docker compose --profile pgbouncer)"
        docker compose --profile pgbouncer up -d --wait pgbouncer >&2 || fail "docker compose could not start pgbouncer (see above; PGBOUNCER_PORT=$PGBOUNCER_PORT may be taken)."
        url_for_port "$PGBOUNCER_PORT"; echo
      else printf '%s\n' "$(local_pgbouncer_up)"; fi ;;
    down)
      local_pgbouncer_down
      if docker_running; then docker compose --profile pgbouncer stop pgbouncer >&2; fi ;;
    status)
      if local_pgbouncer_running; then echo "pgbouncer: running, $(url_for_port "$(sed -n -E 's/^listen_port = ([0-9]+).*/\1/p' "$(pgbouncer_dir)/pgbouncer.ini")")"
      elif [[ -n "$(pgbouncer_bin || true)" ]]; then echo "pgbouncer: installed ($("$(pgbouncer_bin)" --version | head -n 1)), not running"; return 1
      else echo "pgbouncer: not installed (scripts/db.sh pgbouncer install)"; return 1; fi ;;
    url)
      local_pgbouncer_running || fail "pgbouncer is not running: start it with scripts/db.sh pgbouncer up"
      url_for_port "$(sed -n -E 's/^listen_port = ([0-9]+).*/\1/p' "$(pgbouncer_dir)/pgbouncer.ini")"; echo ;;
    *) fail "usage: scripts/db.sh pgbouncer install|up|down|status|url" ;;
  esac
}

# --- commands --------------------------------------------------------------------------------------------
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
  local any=""
  if [[ -n "$CONFIGURED_URL" ]]; then
    if url_answers "$CONFIGURED_URL"; then echo "DATABASE_URL: answers ($(url_host_port "$CONFIGURED_URL" | tr ' ' ':'))"; any=1
    else echo "DATABASE_URL: set, does not answer ($(url_host_port "$CONFIGURED_URL" | tr ' ' ':'))"; fi
  fi
  local lu; lu="$(local_url || true)"
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
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac
