# Sourced by db.sh, lesson.sh and test.sh: the settings every script reads and the checks they share.
# The same rule as the C# side (ModuleConfiguration): the environment wins over .env, .env over the default, and a
# variable that is set but blank counts as unset.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRIPT_TAG="${SCRIPT_TAG:-scripts}"

say()  { printf '[%s] %s\n' "$SCRIPT_TAG" "$*" >&2; }
fail() { printf '[%s] error: %s\n' "$SCRIPT_TAG" "$*" >&2; exit 1; }

dotenv_value() { # NAME -> its value in the repository's .env (the last line naming it), quotes and comments stripped
  [[ -f "$ROOT/.env" ]] || return 0
  sed -n -E "s/^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=[[:space:]]*//p" "$ROOT/.env" | tail -n 1 |
    sed -E 's/[[:space:]]+#.*$//; s/[[:space:]]+$//; s/^"(.*)"$/\1/; s/^'"'"'(.*)'"'"'$/\1/'
}

setting() { # NAME [DEFAULT]
  local v="${!1:-}"
  [[ -n "${v//[[:space:]]/}" ]] || v="$(dotenv_value "$1")"
  printf '%s' "${v:-${2:-}}"
}

docker_answers() {
  command -v docker >/dev/null 2>&1 && timeout 5 docker info >/dev/null 2>&1
}

port_answers() { # HOST PORT
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# Host and port out of either form of DATABASE_URL: postgresql://u:p@host:port/db or Host=..;Port=..
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

url_answers() {
  [[ -n "$1" ]] || return 1
  local hp; hp="$(url_host_port "$1")"
  port_answers ${hp}
}

pgbouncer_bin() { command -v pgbouncer 2>/dev/null || { [[ -x /usr/sbin/pgbouncer ]] && printf /usr/sbin/pgbouncer; }; }

# A connection string with its password replaced by ***, for anything printed: postgresql://user:***@host/db, Password=***.
redact_url() {
  printf '%s' "$1" | sed -E 's#(://[^:/@]*:)[^/]*@#\1***@#; s#((^|;)[[:space:]]*(password|pwd)[[:space:]]*=)[^;]*#\1***#Ig; s#([?&]password=)[^&]*#\1***#Ig'
}
