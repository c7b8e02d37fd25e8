#!/usr/bin/env bash
# Gives the lessons and the tests a PostgreSQL server with the pgvector extension available.
#
#   scripts/db.sh up       start (or reuse) a database and print its connection string
#   scripts/db.sh down     stop the database this script started (data is kept)
#   scripts/db.sh reset    stop it and delete its data
#   scripts/db.sh status   say what is running and where
#   scripts/db.sh url      print the connection string (exit 1 when nothing answers)
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
DB_MODE="$(setting DB_MODE auto)"
CONFIGURED_URL="$(setting DATABASE_URL '')"

STATE_DIR="$ROOT/.pgdata"

url_for_port() { printf 'postgresql://%s:%s@127.0.0.1:%s/%s' "$PG_USER" "$PG_PASSWORD" "$1" "$PG_DB"; }

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
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac
