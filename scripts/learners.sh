#!/usr/bin/env bash
# For an instructor on a class server: the learners' schemas in DATABASE_URL's database. Each learner's lessons and
# checks work in schemas named for them (alice_lesson05, alice_check_0501_1a2b3c4d; README's Configuration, LEARNER).
#   scripts/learners.sh list          every learner's schemas, with owner, tables and size
#   scripts/learners.sh reset ROLE    drops the learner schemas that login role owns (its next lesson run makes them again)
#   scripts/learners.sh reset --all   drops every learner's schemas (never the plain lessonNN ones, nor anything else)
# A schema whose lesson is running is skipped and named (exit 1). Run it as a role that may drop the learners' schemas
# (the database's owner or a superuser).
set -euo pipefail
SCRIPT_TAG=learners
source "$(dirname "${BASH_SOURCE[0]}")/lib/settings.sh"
cd "$ROOT"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

case "${1:-}" in
  list|reset) ;;
  *) echo "Usage: scripts/learners.sh list | reset ROLE | reset --all" >&2; exit 64 ;;
esac

DATABASE_URL="$(scripts/db.sh up)"
export DATABASE_URL
dotnet run --project src/PgVectorModule.Bench -- learners "$@"
