#!/usr/bin/env bash
# Checks the learner's exercises (exercises/PgVectorModule.Exercises) against a real database, each in a schema of its
# own with data the check sets up, and prints one line per exercise; for one that does not pass yet, what was expected,
# what came back, and the hint.
#   scripts/check.sh              every lesson's exercises
#   scripts/check.sh 05           lesson 05's
#   scripts/check.sh --reset 05   restores lesson 05's untouched exercise files (from git) and checks nothing
#   scripts/check.sh --reset      restores every lesson's
# Exit code: 0 when every exercise checked passes, 1 when one does not, 65 when an exercise file does not compile (the
# compiler's errors are shown as file:line:column: error ...), 64 for an argument it does not know; the database's own
# failures keep the lessons' codes (README's exit code table).
# The database: DATABASE_URL's server when it is set, else the one scripts/db.sh starts (as scripts/lesson.sh does).
set -euo pipefail
SCRIPT_TAG=check
source "$(dirname "${BASH_SOURCE[0]}")/lib/settings.sh"
cd "$ROOT"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

EXERCISES=exercises/PgVectorModule.Exercises
CHECKER=exercises/PgVectorModule.Exercises.Check

usage() { echo "Usage: scripts/check.sh [--reset] [NN]   (NN: a lesson with exercises: $(lessons_with_exercises | tr '\n' ' '))" >&2; }
lessons_with_exercises() { find "$EXERCISES" -mindepth 1 -maxdepth 1 -type d -name 'Lesson[0-9][0-9]' | sed 's/.*Lesson//' | sort; }

reset=false
lesson=""
for arg in "$@"; do
  case "$arg" in
    --reset) reset=true ;;
    -h|--help) usage; exit 0 ;;
    [0-9]|[0-9][0-9])
      [[ -z "$lesson" ]] || { usage; exit 64; }
      lesson="$(printf '%02d' "$((10#$arg))")"
      [[ -d "$EXERCISES/Lesson$lesson" ]] || { echo "[check] No exercises for lesson $arg." >&2; usage; exit 64; } ;;
    *) echo "[check] Unknown argument: $arg" >&2; usage; exit 64 ;;
  esac
done

if $reset; then
  target="$EXERCISES"
  [[ -z "$lesson" ]] || target="$EXERCISES/Lesson$lesson"
  if ! git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    fail "this copy of the module is not a git checkout, so the untouched exercises cannot be restored from it: take $target from a fresh clone."
  fi
  # Only the learner's files: the exercise folders, as the last commit has them (files the learner added are left alone).
  git -C "$ROOT" checkout HEAD -- "$target"
  say "restored $target as it was committed"
  exit 0
fi

# The learner's project first: its compile errors, as the compiler gives them, and nothing else. Warnings do not stop a
# learner's half-written code from being checked.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# MSBuild recompiles only what is newer than its last build, and files copied with their old times (cp -p, an unpacked
# archive, a solution pasted from a copy) are not: when the exercises' text differs from what the last check compiled,
# they are touched, so the build sees them.
sources="$(find "$EXERCISES" -name '*.cs' -not -path '*/obj/*' -not -path '*/bin/*' -exec cksum {} + | LC_ALL=C sort)"
compiled="$EXERCISES/obj/check-sources.txt"
program="$CHECKER/bin/Debug/net10.0/$(basename "$CHECKER").dll"
if [[ ! -f "$compiled" || "$(cat "$compiled")" != "$sources" ]]; then
  find "$EXERCISES" -name '*.cs' -not -path '*/obj/*' -not -path '*/bin/*' -exec touch {} +
elif program_is_current "$program" exercises src/PgVectorModule Directory.Build.props Directory.Packages.props; then
  # The same text as the last check compiled, and nothing newer than the checker: run it again without a build, as
  # scripts/lesson.sh runs a lesson (a check after a check costs the check alone).
  up_to_date=true
fi
if [[ "${up_to_date:-false}" != true ]] &&
   ! dotnet build "$CHECKER" -nologo -v quiet -clp:NoSummary -p:TreatWarningsAsErrors=false >"$log" 2>&1; then
  # "/abs/path/File.cs(12,5): error CS1002: ; expected [/abs/path/Project.csproj]" -> "path/File.cs:12:5: error CS1002: ; expected"
  errors="$(sed -n -E 's#^[[:space:]]*(.*)\(([0-9]+),([0-9]+)\): error ([A-Z]+[0-9]+): (.*) \[[^]]*\]$#\1:\2:\3: error \4: \5#p' "$log" |
            sed "s#^$ROOT/##" | awk '!seen[$0]++')"
  if [[ -n "$errors" ]]; then
    echo "The exercises do not compile:" >&2
    printf '%s\n' "$errors" >&2
    echo "Fix the lines above (scripts/check.sh --reset NN restores a lesson's untouched exercises)." >&2
  else
    # Not a compile error (a restore that failed, say): what dotnet said.
    tail -n 20 "$log" >&2
  fi
  exit 65
fi

mkdir -p "$EXERCISES/obj" && printf '%s\n' "$sources" >"$compiled"

DATABASE_URL="$(scripts/db.sh up)"
export DATABASE_URL
dotnet "$program" ${lesson:+"$lesson"}
