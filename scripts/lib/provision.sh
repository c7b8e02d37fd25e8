# Sourced by db.sh: installing what a local cluster needs on a Debian or Ubuntu machine, finding it elsewhere (Homebrew's
# keg-only formulae on macOS, pg_config on PATH), and the users it runs as.
#   ensure_server         PostgreSQL's server programs of POSTGRES_VERSION (unset: the newest found, else the
#                         distribution's package; a major the distribution lacks: built once from a pinned Debian source
#                         package into a cache outside the checkout); prints their bin folder
#   ensure_pgvector BIN   pgvector >= PGVECTOR_MIN_VERSION: the distribution's package, else a pinned Debian source package
#   pgbouncer_install     Debian's pgbouncer package
#   as_root / run_as_owner: install steps run as root (directly or through sudo); the cluster runs as 'postgres' under root

as_root() { # run a command as root: directly, or through sudo with a clear word when neither works
  if [[ $EUID -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then
    say "needs administrator rights for: $*"
    sudo "$@" || fail "'sudo $*' failed. Run it yourself, or set DATABASE_URL to a PostgreSQL server with pgvector, or start Docker."
  else
    fail "installing PostgreSQL/pgvector needs root and sudo is not available. Ask an administrator to run '$*', set DATABASE_URL to a PostgreSQL server with pgvector, or start Docker."
  fi
}

# The local cluster cannot run as root: as root it runs as the 'postgres' user (runuser on Linux, su elsewhere), as
# anyone else as themselves. Both keep the environment, so a password travels in PGPASSWORD, never on a command line.
run_as_owner() {
  if [[ $EUID -ne 0 ]]; then "$@"
  elif command -v runuser >/dev/null 2>&1; then (cd / && runuser -u postgres -- "$@")
  # su reads options after the user name on Linux but not on macOS, so the command goes in -c, each word quoted (%q).
  else (cd / && su postgres -c "exec $(printf '%q ' "$@")"); fi
}

on_macos() { [[ "$(uname -s)" == Darwin ]]; }

# What to install when no PostgreSQL server programs were found, in one sentence for this system.
server_install_hint() { # MAJOR|""
  local major="${1:-18}"
  if on_macos; then
    printf 'no PostgreSQL %s server programs found: brew install postgresql@%s pgvector (scripts/db.sh finds the keg-only formula in %s/opt/postgresql@%s/bin), or start Docker Desktop.' \
      "$major" "$major" "${HOMEBREW_PREFIX:-/opt/homebrew}" "$major"
  else
    printf 'no PostgreSQL %s server programs found and this machine has no apt-get: install PostgreSQL %s with pgvector from your system'"'"'s packages and set PG_BINDIR to its bin folder (or put pg_config on PATH), set DATABASE_URL to a server with pgvector, or start Docker.' \
      "$major" "$major"
  fi
}

apt_updated=""
apt_update_once() { [[ -n "$apt_updated" ]] || { as_root apt-get update -qq; apt_updated=1; }; }
apt_install() {
  command -v apt-get >/dev/null 2>&1 || fail "this machine has no apt-get to install $*: install them yourself and set DATABASE_URL, or start Docker."
  apt_update_once
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# POSTGRES_VERSION picks the server's major version; unset, the newest the distribution installed (Debian 12: 15).
POSTGRES_VERSION="$(setting POSTGRES_VERSION)"

# Majors the distribution may not ship, as pinned Debian source packages: MAJOR, version and SHA-256 of the .dsc (which
# in turn pins the tarballs). They build into postgres_cache_dir, once per machine, and every checkout shares the build.
POSTGRES_SOURCES=(
  "18 18.6-3 a4254c4548ebeea683832de193460ee8a9f1271418e884803b44ded1aead1776"
)

# Outside the checkout, so a fresh clone (CI's) reuses what an earlier one built. PGVECTOR_MODULE_CACHE overrides it.
postgres_cache_dir() {
  local dir="${PGVECTOR_MODULE_CACHE:-}"
  if [[ -z "$dir" ]]; then
    if [[ $EUID -eq 0 ]]; then dir=/var/cache/pgvector-module; else dir="${XDG_CACHE_HOME:-$HOME/.cache}/pgvector-module"; fi
  fi
  printf '%s' "$dir"
}

postgres_source_entry() { # MAJOR -> "MAJOR VERSION SHA" of a pinned source package, or nothing
  local entry
  for entry in "${POSTGRES_SOURCES[@]}"; do [[ "${entry%% *}" == "$1" ]] && printf '%s' "$entry"; done
}

built_postgres_bindir() { # MAJOR -> the bin folder of a finished build of that major in the cache, or nothing
  local entry version prefix
  entry="$(postgres_source_entry "$1")"; [[ -n "$entry" ]] || return 1
  version="$(printf '%s' "$entry" | cut -d' ' -f2)"; version="${version%%-*}"
  prefix="$(postgres_cache_dir)/postgresql-$version"
  [[ -f "$prefix/.complete" && -x "$prefix/bin/pg_ctl" ]] && printf '%s' "$prefix/bin"
}

pg_major() { "$1/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/'; } # BINDIR

# Homebrew's PostgreSQL formulae are keg-only: their programs are not on PATH, but in PREFIX/opt/postgresql@N/bin.
homebrew_bindirs() { # MAJOR|"" -> those bin folders that exist, newest major first
  local prefix major majors="${1:-18 17 16 15 14}"
  for prefix in ${HOMEBREW_PREFIX:-} /opt/homebrew /usr/local; do
    for major in $majors; do
      [[ -x "$prefix/opt/postgresql@$major/bin/pg_ctl" ]] && printf '%s\n' "$prefix/opt/postgresql@$major/bin"
    done
  done
  return 0
}

# The server programs of POSTGRES_VERSION (unset: any major), first found: PG_BINDIR, the distribution's
# /usr/lib/postgresql/N/bin, this machine's build cache, Homebrew's kegs, then pg_config on PATH.
pg_bindir() {
  local d candidates=() configured
  configured="$(setting PG_BINDIR)"
  [[ -z "$configured" ]] || candidates+=("$configured")
  if [[ -n "$POSTGRES_VERSION" ]]; then
    candidates+=("/usr/lib/postgresql/$POSTGRES_VERSION/bin" "$(built_postgres_bindir "$POSTGRES_VERSION" || true)")
  else
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    candidates+=("$d")
  fi
  while IFS= read -r d; do candidates+=("$d"); done < <(homebrew_bindirs "$POSTGRES_VERSION")
  if command -v pg_config >/dev/null 2>&1; then candidates+=("$(pg_config --bindir 2>/dev/null || true)"); fi
  for d in ${candidates[@]+"${candidates[@]}"}; do
    [[ -n "$d" && -x "$d/pg_ctl" && -x "$d/pg_config" ]] || continue
    [[ -z "$POSTGRES_VERSION" || "$(pg_major "$d")" == "$POSTGRES_VERSION" ]] || continue
    printf '%s' "$d"; return 0
  done
  return 1
}

ensure_server() {
  local bindir; bindir="$(pg_bindir || true)"
  [[ -z "$bindir" ]] || { printf '%s' "$bindir"; return 0; }
  command -v apt-get >/dev/null 2>&1 || fail "$(server_install_hint "$POSTGRES_VERSION")"
  if [[ -n "$POSTGRES_VERSION" && -n "$(postgres_source_entry "$POSTGRES_VERSION")" ]]; then
    build_postgres_from_debian_source "$POSTGRES_VERSION"
    bindir="$(pg_bindir)" || fail "PostgreSQL $POSTGRES_VERSION was built but $(postgres_cache_dir) holds no finished build."
  else
    local package=postgresql; [[ -z "$POSTGRES_VERSION" ]] || package="postgresql-$POSTGRES_VERSION"
    say "no PostgreSQL ${POSTGRES_VERSION:-server} found: installing the distribution's package $package"
    apt_install "$package" "postgresql-contrib" ||
      fail "the distribution has no $package; POSTGRES_VERSION can be unset (the distribution's version) or one of: $(printf '%s ' "${POSTGRES_SOURCES[@]%% *}")"
    # Debian's package creates and starts a cluster of its own on 5432; ours is separate, so stop theirs.
    as_root sh -c 'command -v pg_ctlcluster >/dev/null && for c in $(ls /etc/postgresql 2>/dev/null); do for n in $(ls /etc/postgresql/$c); do pg_ctlcluster "$c" "$n" stop || true; done; done' || true
    bindir="$(pg_bindir)" || fail "PostgreSQL installed but no server binaries under /usr/lib/postgresql."
  fi
  printf '%s' "$bindir"
}

# Builds PostgreSQL MAJOR from its pinned Debian source package (upstream's tarball, Debian's patches left out) with
# pg_stat_statements, into the cache, once: a second checkout, or CI's fresh clone, finds the finished build. A lock
# keeps two builds from racing; the build goes to a temporary folder and is renamed only when it is complete.
build_postgres_from_debian_source() { # MAJOR
  local major="$1" entry version sha cache prefix work srcdir started
  entry="$(postgres_source_entry "$major")"
  version="$(printf '%s' "$entry" | cut -d' ' -f2)"; sha="$(printf '%s' "$entry" | cut -d' ' -f3)"
  cache="$(postgres_cache_dir)"; prefix="$cache/postgresql-${version%%-*}"
  mkdir -p "$cache" || fail "cannot create the build cache $cache: set PGVECTOR_MODULE_CACHE to a folder you may write."
  exec 9>"$cache/.build-postgresql-$major.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  if [[ -f "$prefix/.complete" ]]; then exec 9>&-; return 0; fi
  say "building PostgreSQL ${version%%-*} from Debian's source package into $prefix (once per machine; about 6 minutes on 2 cores)"
  apt_install build-essential dpkg-dev bison flex pkg-config libssl-dev zlib1g-dev liblz4-dev libzstd-dev ||
    fail "the packages needed to build PostgreSQL $major could not be installed (above)."
  work="$(mktemp -d)"; chmod 755 "$work"
  # The .dsc alone names the tarballs and their sums; --skip-patches gives upstream's tree as released.
  srcdir="$(DPKG_SOURCE_OPTIONS=--skip-patches debian_source "postgresql-$major" "$version" "$sha" "$work")" ||
    { rm -rf "$work"; fail "the Debian mirror does not serve postgresql-$major $version (pinned by its .dsc's SHA-256): unset POSTGRES_VERSION to use the distribution's PostgreSQL, or install PostgreSQL $major yourself and set PG_BINDIR."; }
  started=$SECONDS
  rm -rf "$prefix.partial"
  ( cd "$srcdir" &&
    ./configure --prefix="$prefix" --without-icu --without-readline --with-openssl --with-lz4 --with-zstd >"$work/configure.log" 2>&1 &&
    make -s -j"$(nproc)" >"$work/make.log" 2>&1 &&
    make -s -C contrib/pg_stat_statements >>"$work/make.log" 2>&1 &&
    make -s install DESTDIR="$work/stage" >>"$work/make.log" 2>&1 &&
    make -s -C contrib/pg_stat_statements install DESTDIR="$work/stage" >>"$work/make.log" 2>&1 ) ||
    { tail -n 30 "$work/configure.log" "$work/make.log" >&2 2>/dev/null; rm -rf "$work"; fail "PostgreSQL $major did not build (the end of its log is above)."; }
  mkdir -p "$(dirname "$prefix")"
  mv "$work/stage$prefix" "$prefix.partial"
  chmod -R a+rX "$prefix.partial"
  rm -rf "$prefix"; mv "$prefix.partial" "$prefix"
  # The build is relocatable only at its prefix, which it now has; pgvector goes into it before it counts as complete.
  build_pgvector_from_debian_source "$prefix/bin" "$major"
  touch "$prefix/.complete"
  rm -rf "$work"
  say "PostgreSQL ${version%%-*} built in $((SECONDS - started)) s: $prefix"
  exec 9>&-
}

# --- pgvector --------------------------------------------------------------------------------------------------------
# Debian 12 has no pgvector package; Debian's newer releases ship its source. The local cluster builds a pinned source
# package (version and SHA-256 of its .dsc, which in turn pins the tarballs), trying the newest first and taking the
# first one the machine's Debian mirror serves. pgvector 0.6.0-0.8.1 carry CVE-2026-3172 (parallel HNSW builds, fixed
# in 0.8.2) and 0.8.3-0.8.4 fixed HNSW vacuum errors, so nothing older than 0.8.5 is listed.
PGVECTOR_SOURCES=(
  "0.8.7-1 1fb13ac21fa1a21eee32fe7da1cc7aac7c4974bb5872737e90b9fce037883224"
  "0.8.6-1 d08de2aa48b7cb70319cc896aa3d95514690d1009f96579dbe6b23c59634f4e6"
)
PGVECTOR_MIN_VERSION="0.8.5"

version_at_least() { # MIN VERSION
  [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" == "$1" ]]
}

pgvector_version() { # BINDIR -> the installed default_version, or nothing
  sed -n -E "s/^default_version = '([^']+)'.*/\1/p" "$("$1/pg_config" --sharedir)/extension/vector.control" 2>/dev/null || true
}

have_pgvector() { # BINDIR: installed, and not older than the first release without CVE-2026-3172
  local v; v="$(pgvector_version "$1")"
  [[ -n "$v" ]] && version_at_least "$PGVECTOR_MIN_VERSION" "$v"
}

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
  # shellcheck disable=SC2086 # DPKG_SOURCE_OPTIONS holds whole options (--skip-patches) or nothing
  (cd "$work" && dpkg-source -q ${DPKG_SOURCE_OPTIONS:-} -x "$dsc" "$package-src" >&2) || fail "the $package $version source package did not pass its checksums."
  printf '%s' "$work/$package-src"
}

build_pgvector_from_debian_source() { # BINDIR MAJOR
  local bindir="$1" major="$2" work srcdir="" entry
  # The distribution's server needs its -dev package for the headers; a source build installed its own.
  if [[ "$bindir" == /usr/lib/postgresql/* ]]; then apt_install "postgresql-server-dev-$major" build-essential dpkg-dev
  else apt_install build-essential dpkg-dev; fi
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

ensure_pgvector() { # BINDIR
  local bindir="$1" major candidate installed
  have_pgvector "$bindir" && return 0
  installed="$(pgvector_version "$bindir")"
  [[ -z "$installed" ]] || say "pgvector $installed is installed but older than $PGVECTOR_MIN_VERSION (CVE-2026-3172): replacing it"
  major="$(pg_major "$bindir")"
  if ! command -v apt-cache >/dev/null 2>&1; then
    on_macos && fail "pgvector >= $PGVECTOR_MIN_VERSION is not installed for the PostgreSQL $major in $bindir: brew install pgvector (it builds for Homebrew's postgresql@17 and @18), or start Docker Desktop."
    fail "pgvector >= $PGVECTOR_MIN_VERSION is not installed for PostgreSQL $major and this machine has no apt: see https://github.com/pgvector/pgvector#installation, or use Docker."
  fi
  apt_update_once
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

# --- pgbouncer -------------------------------------------------------------------------------------------------------
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
