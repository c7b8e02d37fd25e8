# Sourced by db.sh: `db.sh citus build|up|down|status|url`, a Citus cluster on this machine for lesson 11, the bench and
# the tests: a coordinator and two workers on 127.0.0.1, each with citus and pgvector, registered with each other.
# Expects settings.sh, provision.sh and cluster.sh, and PG_USER, PG_DB from db.sh.
#
# Citus has no Debian package. It is built once per machine into the PostgreSQL 18 build of the cache (provision.sh
# builds that from Debian's source package), from the first of:
#   CITUS_SOURCE   a Citus source tarball or unpacked tree the learner points at (Citus 14 supports PostgreSQL 16-18)
#   the vendored   shared/vendor/citus-14.0.1-src.tar.gz beside the repository (or beside a folder above it), checked
#                  against its pinned SHA-256 before it is unpacked
# CITUS_BINDIR names an installation instead: the bin folder of a PostgreSQL that already has citus and pgvector.
# Without any of them, and with a Docker engine, `up` runs the compose profile citus (bound to 127.0.0.1).
#
# The cluster's superuser password is generated at its first start and kept in its state folder, 0600 from the start
# (citus_password); the servers and every client find it through a pgpass file there, so no password is ever printed.

CITUS_VERSION=14.0.1
CITUS_TARBALL="citus-$CITUS_VERSION-src.tar.gz"
CITUS_TARBALL_SHA256=8f2d5b9b0a74b28a2ad288e47153e8b9e904fcc9387be44850ac07e569479f28
CITUS_POSTGRES_MAJOR=18
CITUS_WORKERS=(worker1 worker2)

# One sentence for a machine where Citus cannot be had; the lesson skips its Citus part with the same advice.
CITUS_HOW_TO_GET="Citus cannot be had on this machine: put $CITUS_TARBALL in shared/vendor/ beside the repository or set CITUS_SOURCE to a Citus 14 source tarball or tree (then scripts/db.sh citus build), set CITUS_BINDIR to the bin folder of a PostgreSQL with citus and pgvector installed, or start Docker and run scripts/db.sh citus up (the compose profile citus)."

# --- where Citus comes from ------------------------------------------------------------------------------------------

citus_vendored_tarball() { # the pinned tarball in shared/vendor/ beside the repository or beside a folder above it
  local dir="$ROOT"
  while [[ "$dir" != / ]]; do
    dir="$(dirname "$dir")"
    if [[ -f "$dir/shared/vendor/$CITUS_TARBALL" ]]; then printf '%s' "$dir/shared/vendor/$CITUS_TARBALL"; return 0; fi
  done
  return 1
}

citus_source() { # the source to build: CITUS_SOURCE, else the vendored tarball; nothing when neither exists
  local configured; configured="$(setting CITUS_SOURCE)"
  if [[ -n "$configured" ]]; then
    [[ -e "$configured" ]] || fail "CITUS_SOURCE is '$configured', which does not exist: point it at a Citus 14 source tarball or tree, or unset it."
    printf '%s' "$configured"; return 0
  fi
  citus_vendored_tarball
}

has_citus() { # BINDIR: citus and pgvector installed for the PostgreSQL of that bin folder
  [[ -x "$1/pg_config" ]] || return 1
  [[ -f "$("$1/pg_config" --pkglibdir)/citus.so" && -f "$("$1/pg_config" --sharedir)/extension/citus.control" ]] &&
    [[ -f "$("$1/pg_config" --sharedir)/extension/vector.control" ]]
}

citus_bindir() { # the bin folder of a PostgreSQL with Citus: CITUS_BINDIR, else the cache's build; nothing when none
  local configured d; configured="$(setting CITUS_BINDIR)"
  if [[ -n "$configured" ]]; then
    has_citus "$configured" ||
      fail "CITUS_BINDIR is '$configured', which is not the bin folder of a PostgreSQL with citus and pgvector installed (pg_config there names no citus.so or vector.control): fix it, or unset it to build Citus with scripts/db.sh citus build."
    printf '%s' "$configured"; return 0
  fi
  d="$(built_postgres_bindir "$CITUS_POSTGRES_MAJOR" || true)"
  if [[ -n "$d" && -f "$(dirname "$d")/.citus-complete" ]] && has_citus "$d"; then printf '%s' "$d"; return 0; fi
  return 1
}

# Builds Citus into the cache's PostgreSQL 18 (building that first when it is missing), once per machine: a lock keeps
# two builds from racing, and .citus-complete beside bin/ marks a finished one. Prints the bin folder.
citus_build() {
  local bindir prefix source work srcdir started
  bindir="$(citus_bindir || true)"
  if [[ -n "$bindir" ]]; then say "Citus is installed for $("$bindir/pg_config" --version) ($bindir)"; printf '%s' "$bindir"; return 0; fi
  source="$(citus_source || true)"
  [[ -n "$source" ]] || fail "$CITUS_HOW_TO_GET"
  bindir="$(POSTGRES_VERSION=$CITUS_POSTGRES_MAJOR ensure_server)"
  ensure_pgvector "$bindir"
  [[ "$bindir" == "$(built_postgres_bindir "$CITUS_POSTGRES_MAJOR" || true)" ]] ||
    fail "PostgreSQL $CITUS_POSTGRES_MAJOR is the distribution's ($bindir), not the cache's build: install Citus for it yourself and set CITUS_BINDIR=$bindir."
  prefix="$(dirname "$bindir")"
  exec 8>"$(postgres_cache_dir)/.build-citus.lock"
  if command -v flock >/dev/null 2>&1; then flock 8; fi
  if [[ -f "$prefix/.citus-complete" ]] && has_citus "$bindir"; then exec 8>&-; printf '%s' "$bindir"; return 0; fi
  dpkg -s build-essential liblz4-dev libzstd-dev >/dev/null 2>&1 || apt_install build-essential liblz4-dev libzstd-dev || fail "the packages needed to build Citus could not be installed (above)."
  work="$(mktemp -d)"
  if [[ -d "$source" ]]; then
    say "building Citus from the tree $source"
    cp -a "$source/." "$work/src"; srcdir="$work/src"
  else
    if [[ "$source" == "$(citus_vendored_tarball || true)" ]]; then
      printf '%s  %s\n' "$CITUS_TARBALL_SHA256" "$source" | sha256sum -c --status ||
        { rm -rf "$work"; fail "$source does not match its pinned SHA-256 ($CITUS_TARBALL_SHA256): it is damaged or another release; fetch Citus $CITUS_VERSION again from its publisher."; }
      say "$CITUS_TARBALL matches its pinned SHA-256"
    else
      say "building Citus from $source (CITUS_SOURCE: not checked against a pinned checksum)"
    fi
    tar -xzf "$source" -C "$work" || { rm -rf "$work"; fail "$source is not a gzip tarball of a Citus source tree."; }
    srcdir="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
  fi
  [[ -x "$srcdir/configure" ]] || { rm -rf "$work"; fail "$source holds no Citus source tree (no configure script at its top)."; }
  say "building Citus into $prefix (once per machine; about 1-3 minutes on 2 cores)"
  started=$SECONDS
  # --without-libcurl: Citus's anonymous usage statistics need libcurl and a network; neither is wanted here.
  ( cd "$srcdir" &&
    ./configure PG_CONFIG="$bindir/pg_config" --without-libcurl >"$work/configure.log" 2>&1 &&
    make -s -j"$(nproc)" >"$work/make.log" 2>&1 &&
    as_root make -s install >>"$work/make.log" 2>&1 ) ||
    { tail -n 30 "$work/configure.log" "$work/make.log" >&2 2>/dev/null; rm -rf "$work"; fail "Citus did not build (the end of its log is above)."; }
  has_citus "$bindir" || { rm -rf "$work"; fail "Citus was built but pg_config's folders hold no citus.so."; }
  as_root touch "$prefix/.citus-complete"
  rm -rf "$work"
  exec 8>&-
  say "Citus $CITUS_VERSION built in $((SECONDS - started)) s for $("$bindir/pg_config" --version)"
  printf '%s' "$bindir"
}

# --- the local cluster -----------------------------------------------------------------------------------------------

citus_state_dir() { # beside the course cluster's: .pgdata-citus/ in the repository, or below /var/lib/postgresql
  printf '%s-citus' "$(POSTGRES_VERSION='' local_state_dir)"
}

citus_nodes() { printf '%s\n' coordinator "${CITUS_WORKERS[@]}"; }

# The cluster's superuser password: made at the first start, kept 0600 in the state folder, never printed.
citus_password() { cat "$(citus_state_dir)/password"; }

citus_passfile() { printf '%s/pgpass' "$(citus_state_dir)"; }

# The password file and the pgpass file the servers and clients read, private from the moment they exist.
citus_make_password() {
  local state; state="$(citus_state_dir)"
  mkdir -p "$state"
  [[ -s "$state/password" ]] || ( umask 077; od -An -tx1 -N16 /dev/urandom | tr -d ' \n' > "$state/password" )
  ( umask 077; printf '*:*:*:%s:%s\n' "$PG_USER" "$(citus_password)" > "$(citus_passfile)" )
  if [[ $EUID -eq 0 ]]; then chown postgres: "$state" "$state/password" "$(citus_passfile)"; fi
}

# The connection string a client uses: keyword form, the password read from the pgpass file (so none is printed).
citus_url_for_port() { printf 'Host=127.0.0.1;Port=%s;Username=%s;Database=%s;Passfile=%s' "$1" "$PG_USER" "$PG_DB" "$(citus_passfile)"; }

citus_node_data() { printf '%s/%s/data' "$(citus_state_dir)" "$1"; }
citus_node_port() { conf_port "$(citus_node_data "$1")"; }
citus_node_running() { # BINDIR NODE
  [[ -f "$(citus_node_data "$2")/PG_VERSION" ]] && run_as_owner "$1/pg_ctl" -D "$(citus_node_data "$2")" status >/dev/null 2>&1
}

citus_psql() { # BINDIR PORT DATABASE SQL
  run_as_owner env PGPASSFILE="$(citus_passfile)" "$1/psql" -h 127.0.0.1 -p "$2" -U "$PG_USER" -d "$3" -v ON_ERROR_STOP=1 -qtAc "$4"
}

citus_init_node() { # BINDIR NODE PORT
  local bindir="$1" node="$2" port="$3" dir; dir="$(dirname "$(citus_node_data "$node")")"
  mkdir -p "$dir"; [[ $EUID -eq 0 ]] && chown postgres: "$dir"
  say "initdb $dir/data ($node)"
  run_as_owner "$bindir/initdb" -D "$dir/data" -U "$PG_USER" --pwfile="$(citus_state_dir)/password" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; fail "initdb failed for the Citus $node (log above)."; }
  run_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF

# Citus node of the pgvector course module ($node)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
shared_preload_libraries = 'citus'
# The address a node uses to reach itself (Citus's default, localhost, may resolve to ::1, where nothing listens).
citus.local_hostname = '127.0.0.1'
# Shard moves (citus_rebalance_start) copy a shard and follow its changes by logical replication.
wal_level = logical
max_connections = 200
shared_buffers = 256MB
CONF
}

citus_start_node() { # BINDIR NODE
  local bindir="$1" node="$2" dir port
  dir="$(dirname "$(citus_node_data "$node")")"; port="$(citus_node_port "$node")"
  if citus_node_running "$bindir" "$node"; then return 0; fi
  if port_answers 127.0.0.1 "$port"; then
    local newport; newport="$(free_port_from "$port")"
    say "port $port is taken: the Citus $node moves to $newport"
    run_as_owner sed -i -E "s/^port = [0-9]+/port = $newport/" "$dir/data/postgresql.conf"
    port="$newport"
  fi
  say "starting the Citus $node on 127.0.0.1:$port"
  # PGPASSFILE in the server's environment: the coordinator's connections to the workers (and theirs to each other, for
  # shard moves) authenticate with the same password, read from the private file.
  run_as_owner env PGPASSFILE="$(citus_passfile)" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
    { tail -n 20 "$dir/postgres.log" >&2; fail "the Citus $node did not start (log above: $dir/postgres.log)."; }
}

local_citus_up() {
  local bindir node port next exists coordinator_port
  bindir="$(citus_build)"
  citus_make_password
  next="$(setting CITUS_PORT 5440)"
  for node in $(citus_nodes); do
    if [[ ! -f "$(citus_node_data "$node")/PG_VERSION" ]]; then
      port="$(free_port_from "$next")"
      citus_init_node "$bindir" "$node" "$port"
    fi
    next=$(( $(citus_node_port "$node") + 1 ))
  done
  for node in $(citus_nodes); do
    citus_start_node "$bindir" "$node"
    port="$(citus_node_port "$node")"
    exists="$(citus_psql "$bindir" "$port" postgres "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")"
    [[ "$exists" == 1 ]] || citus_psql "$bindir" "$port" postgres "CREATE DATABASE $PG_DB" >/dev/null
    citus_psql "$bindir" "$port" "$PG_DB" "CREATE EXTENSION IF NOT EXISTS citus; CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
  done
  coordinator_port="$(citus_node_port coordinator)"
  citus_psql "$bindir" "$coordinator_port" "$PG_DB" "SELECT citus_set_coordinator_host('127.0.0.1', $coordinator_port)" >/dev/null
  for node in "${CITUS_WORKERS[@]}"; do
    port="$(citus_node_port "$node")"
    citus_psql "$bindir" "$coordinator_port" "$PG_DB" \
      "SELECT citus_add_node('127.0.0.1', $port) WHERE NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodeport = $port AND noderole = 'primary')" >/dev/null
  done
  say "Citus cluster up: coordinator 127.0.0.1:$coordinator_port, workers $(for n in "${CITUS_WORKERS[@]}"; do printf '127.0.0.1:%s ' "$(citus_node_port "$n")"; done)"
  citus_url_for_port "$coordinator_port"
}

local_citus_down() {
  local bindir node; bindir="$(citus_bindir 2>/dev/null || true)"
  [[ -n "$bindir" ]] || return 0
  for node in $(citus_nodes | tac); do
    if citus_node_running "$bindir" "$node"; then
      say "stopping the Citus $node"
      run_as_owner "$bindir/pg_ctl" -D "$(citus_node_data "$node")" -m fast -w stop >/dev/null
    fi
  done
}

local_citus_running() {
  local bindir; bindir="$(citus_bindir 2>/dev/null || true)"
  [[ -n "$bindir" ]] && citus_node_running "$bindir" coordinator
}

# --- the compose profile ---------------------------------------------------------------------------------------------

docker_citus_running() { docker_answers && [[ -n "$(docker compose --profile citus ps -q citus-coordinator 2>/dev/null)" ]]; }

docker_citus_up() {
  local port; port="$(setting CITUS_PORT 5440)"
  say "no local Citus: starting the compose profile citus (a coordinator and two workers, pgvector installed)"
  docker compose --profile citus up -d --wait citus-coordinator citus-worker-1 citus-worker-2 >&2 &&
    docker compose --profile citus run --rm citus-setup >&2 ||
    fail "docker compose could not start the citus profile (see above; CITUS_PORT=$port may be taken)."
  # The compose nodes use POSTGRES_PASSWORD; clients read it from the same private pgpass file as the local cluster's.
  mkdir -p "$(citus_state_dir)"
  ( umask 077; printf '127.0.0.1:%s:*:%s:%s\n' "$port" "$PG_USER" "$(setting POSTGRES_PASSWORD postgres)" > "$(citus_passfile)" )
  citus_url_for_port "$port"
}

# --- the command -----------------------------------------------------------------------------------------------------

cmd_citus() {
  local url bindir node
  case "${1:-}" in
    build) bindir="$(citus_build)"; printf '%s\n' "$bindir" ;;
    up)
      if [[ -n "$(citus_bindir || true)" || -n "$(citus_source || true)" ]]; then url="$(local_citus_up)"
      elif docker_answers; then url="$(docker_citus_up)"
      else fail "$CITUS_HOW_TO_GET"; fi
      say "lesson 11 and bench scale --citus use it when told: export CITUS_URL='$url'"
      printf '%s\n' "$url" ;;
    down)
      local_citus_down
      if docker_citus_running; then docker compose --profile citus stop citus-coordinator citus-worker-1 citus-worker-2 >&2; fi ;;
    reset)
      cmd_citus down
      if [[ -d "$(citus_state_dir)" ]]; then say "deleting $(citus_state_dir)"; rm -rf "$(citus_state_dir)"; fi ;;
    status)
      bindir="$(citus_bindir 2>/dev/null || true)"
      if [[ -z "$bindir" ]]; then
        if [[ -n "$(citus_source 2>/dev/null || true)" ]]; then echo "citus: not built yet (scripts/db.sh citus build)"
        else echo "citus: not installed ($CITUS_HOW_TO_GET)"; fi
      else echo "citus: installed for $("$bindir/pg_config" --version) ($bindir)"; fi
      if local_citus_running; then
        for node in $(citus_nodes); do
          if citus_node_running "$bindir" "$node"; then echo "citus $node: running on 127.0.0.1:$(citus_node_port "$node")"
          else echo "citus $node: stopped"; fi
        done
        citus_psql "$bindir" "$(citus_node_port coordinator)" "$PG_DB" \
          "SELECT 'registered: ' || string_agg(nodename || ':' || nodeport || CASE WHEN groupid = 0 THEN ' (coordinator)' ELSE '' END, ', ' ORDER BY groupid) FROM pg_dist_node"
      elif docker_citus_running; then echo "citus: docker compose profile running, $(citus_url_for_port "$(setting CITUS_PORT 5440)")"
      elif [[ -f "$(citus_node_data coordinator)/PG_VERSION" ]]; then echo "citus cluster: stopped ($(citus_state_dir))"; return 1
      else echo "citus cluster: none"; return 1; fi ;;
    url)
      if local_citus_running; then citus_url_for_port "$(citus_node_port coordinator)"; echo
      elif docker_citus_running; then citus_url_for_port "$(setting CITUS_PORT 5440)"; echo
      else fail "no Citus cluster is running: start one with scripts/db.sh citus up"; fi ;;
    *) fail "usage: scripts/db.sh citus build|up|down|reset|status|url" ;;
  esac
}
