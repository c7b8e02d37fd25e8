#!/usr/bin/env bash
# Runs a lesson end to end from a fresh clone: the database from scripts/db.sh up (DATABASE_URL's server when it is set,
# and none when that one does not answer; else the one db.sh starts), then the lesson's program: built first when any of
# its sources (the lesson's folder, the library, the shared build files) is newer than it, as dotnet run would, and
# otherwise run at once (dotnet run checks the build every time, which costs seconds when nothing changed).
#   scripts/lesson.sh 01            lesson 01
#   scripts/lesson.sh 05 "how do vector indexes work?"   lesson 05 with its arguments
#   scripts/lesson.sh 01 --step     pause before each step (classroom walkthrough)
#   scripts/lesson.sh               every lesson, in order
set -euo pipefail
SCRIPT_TAG=lesson
source "$(dirname "${BASH_SOURCE[0]}")/lib/settings.sh"
cd "$ROOT"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

# db.sh prints the URL and nothing else on stdout; when it fails it has said why, and no lesson runs.
DATABASE_URL="$(scripts/db.sh up)"
export DATABASE_URL

run_one() { # NN [args...]
  local number="$1"; shift
  local folder
  folder="$(find lessons -mindepth 1 -maxdepth 1 -type d -name "${number}-*" | head -n 1)"
  [[ -n "$folder" ]] || { echo "No lesson $number: the lessons are $(ls lessons | cut -d- -f1 | tr '\n' ' ')" >&2; exit 64; }
  # Lesson 08 runs pgBouncer on this machine: install it first when it is missing (Docker or not).
  if [[ "$number" == 08 && -z "$(pgbouncer_bin || true)" ]]; then
    scripts/db.sh pgbouncer install || true
  fi
  # Lesson 11 runs a Citus cluster: build Citus once when its source is at hand (the lesson says how to get it otherwise).
  if [[ "$number" == 11 && -z "$(setting CITUS_URL)" ]]; then
    scripts/db.sh citus build >/dev/null || say "Citus could not be built (above): lesson 11 says how to get it and skips its cluster"
  fi
  run_program "$folder" "$@"
}

run_program() { # FOLDER [args...]
  local folder="$1"; shift
  local project program
  project="$(basename "$(find "$folder" -maxdepth 1 -name '*.csproj' | head -n 1)" .csproj)"
  program="$folder/bin/Debug/net10.0/$project.dll"
  if ! program_is_current "$program" "$folder" src/PgVectorModule Directory.Build.props Directory.Packages.props; then
    # Build output goes to stderr: standard output is the lesson's alone.
    dotnet build "$folder" -nologo -v q >&2
  fi
  dotnet "$program" "$@"
}

if [[ $# -eq 0 ]]; then
  for folder in $(find lessons -mindepth 1 -maxdepth 1 -type d | sort); do
    run_one "$(basename "$folder" | cut -d- -f1)"
  done
else
  run_one "$@"
fi
