#!/usr/bin/env bash
# Runs once, when the compose database is first initialised: the image's pg_hba.conf admits every database from
# other hosts but not replication connections, which the replica service's pg_basebackup makes.
set -euo pipefail
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
