# Sourced by db.sh, lesson.sh and test.sh: the settings every script reads and the checks they share.
# The same rule as the C# side (ModuleConfiguration): the environment wins over .env, .env over the default, and a
# variable that is set but blank counts as unset.
# Portable on purpose (Linux and macOS): no GNU-only tools (timeout, sha1sum, sed -i, sed's I flag), and nothing read from
# a setting is ever pasted into code that a shell evaluates.

# A function that fails inside $(...) stops what called it too (bash 4.4+; older bash needs the explicit '|| exit 1'
# the scripts write after such calls).
shopt -s inherit_errexit 2>/dev/null || true

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRIPT_TAG="${SCRIPT_TAG:-scripts}"

say()  { printf '[%s] %s\n' "$SCRIPT_TAG" "$*" >&2; }
fail() { printf '[%s] error: %s\n' "$SCRIPT_TAG" "$*" >&2; exit 1; }

dotenv_value() { # NAME -> its value in the repository's .env (the last line naming it), quotes and comments stripped
  [[ -f "$ROOT/.env" ]] || return 0
  # tr: a .env saved with Windows line endings reads the same.
  tr -d '\r' < "$ROOT/.env" | sed -n -E "s/^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=[[:space:]]*//p" | tail -n 1 |
    sed -E 's/[[:space:]]+#.*$//; s/[[:space:]]+$//; s/^"(.*)"$/\1/; s/^'"'"'(.*)'"'"'$/\1/'
}

setting() { # NAME [DEFAULT]
  local v="${!1:-}"
  [[ -n "${v//[[:space:]]/}" ]] || v="$(dotenv_value "$1")"
  printf '%s' "${v:-${2:-}}"
}

# COMMAND with a time limit: GNU timeout where there is one (stock macOS has none; Homebrew's coreutils call it
# gtimeout), else perl (on macOS and in Debian's essential set), which starts COMMAND, sends it SIGTERM when the time is
# up and waits for it, so nothing is left running.
with_timeout() { # SECONDS COMMAND...
  local seconds="$1"; shift
  if command -v timeout >/dev/null 2>&1; then timeout "$seconds" "$@"
  elif command -v gtimeout >/dev/null 2>&1; then gtimeout "$seconds" "$@"
  else
    perl -e 'my $s = shift; my $p = fork; defined $p or exit 125; if (!$p) { exec { $ARGV[0] } @ARGV; exit 127 }
             $SIG{ALRM} = sub { kill "TERM", $p }; alarm $s; waitpid($p, 0);
             exit($? & 127 ? 128 + ($? & 127) : $? >> 8)' "$seconds" "$@"
  fi
}

docker_answers() {
  command -v docker >/dev/null 2>&1 && with_timeout 5 docker info >/dev/null 2>&1
}

# A host is a DNS name, an IPv4 or IPv6 address, or (Npgsql's Host=/folder) the folder of a Unix socket. Anything else,
# a '$(...)' or a space, is refused before it reaches a command.
HOST_NAME_PATTERN='^[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9_])?$'
HOST_IPV6_PATTERN='^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9_.-]+)?$'
HOST_SOCKET_PATTERN='^/[A-Za-z0-9._/-]*$'
PORT_PATTERN='^[0-9]{1,5}$'
valid_host() { [[ "$1" =~ $HOST_NAME_PATTERN || "$1" =~ $HOST_IPV6_PATTERN || "$1" =~ $HOST_SOCKET_PATTERN ]]; }
valid_port() { [[ "$1" =~ $PORT_PATTERN ]] && (( 10#$1 >= 1 && 10#$1 <= 65535 )); }

port_answers() { # HOST PORT: something accepts connections there
  local host="$1" port="$2"
  valid_host "$host" && valid_port "$port" || return 1
  if [[ "$host" == /* ]]; then [[ -S "$host/.s.PGSQL.$port" ]]; return; fi
  # Host and port reach bash's /dev/tcp as arguments, never as part of the script text.
  with_timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

# Host and port out of either form of DATABASE_URL: postgresql://u:p@host:port/db or Host=..;Port=..
url_host_port() {
  local url="$1" host="" port=""
  if [[ "$url" =~ ^postgres(ql)?:// ]]; then
    local rest="${url#*://}"; rest="${rest##*@}"; rest="${rest%%/*}"; rest="${rest%%\?*}"
    if [[ "$rest" == \[* ]]; then host="${rest%%]*}"; host="${host#[}"; port="${rest##*]:}"; [[ "$port" == "$rest" ]] && port=""
    else host="${rest%%:*}"; [[ "$rest" == *:* ]] && port="${rest##*:}"; fi
  else
    local part key val parts=()
    IFS=';' read -ra parts <<< "$url"
    for part in ${parts[@]+"${parts[@]}"}; do
      key="$(printf '%s' "${part%%=*}" | tr '[:upper:]' '[:lower:]' | tr -d ' ')"; val="${part#*=}"
      val="${val#"${val%%[![:space:]]*}"}"; val="${val%"${val##*[![:space:]]}"}"
      case "$key" in host|server) host="$val" ;; port) port="$val" ;; esac
    done
  fi
  printf '%s %s' "${host:-localhost}" "${port:-5432}"
}

# Refuses, in one sentence, a connection string whose host or port could not be a host or a port (NAME: where it came
# from, for the sentence). Run before anything connects or prints.
check_url() { # URL NAME
  local hp host port
  hp="$(url_host_port "$1")"; host="${hp% *}"; port="${hp##* }"
  valid_host "$host" || fail "$2's host '$host' is not a host name or an address: correct $2 (environment or .env)."
  valid_port "$port" || fail "$2's port '$port' is not a port number: correct $2 (environment or .env)."
}

url_answers() {
  [[ -n "$1" ]] || return 1
  local hp; hp="$(url_host_port "$1")"
  port_answers "${hp% *}" "${hp##* }"
}

program_is_current() { # PROGRAM SOURCE...: the built program exists and no file of the sources (bin and obj left out) is newer
  local program="$1"; shift
  [[ -f "$program" && -z "$(find "$@" \( -name bin -o -name obj \) -prune -o -type f -newer "$program" -print -quit)" ]]
}

pgbouncer_bin() { command -v pgbouncer 2>/dev/null || { [[ -x /usr/sbin/pgbouncer ]] && printf /usr/sbin/pgbouncer; }; }

# A connection string with its password replaced by ***, for anything printed: postgresql://user:***@host/db, Password=***.
# The letter classes spell out case-insensitivity: BSD sed has no I flag.
redact_url() {
  printf '%s' "$1" | sed -E 's#(://[^:/@]*:)[^/]*@#\1***@#; s#((^|;)[[:space:]]*([Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]|[Pp][Ww][Dd])[[:space:]]*=)[^;]*#\1***#g; s#([?&][Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]=)[^&]*#\1***#g'
}

# The image docker-compose.yml pins for the course database (its x-postgres-image line), for messages.
compose_image() { sed -n -E 's/^x-postgres-image:[[:space:]]*&[A-Za-z0-9_-]+[[:space:]]+//p' "$ROOT/docker-compose.yml"; }
