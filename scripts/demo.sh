#!/usr/bin/env bash
# Command one: set up, build, install, then load the demo CRM into a throwaway cluster and
# show the ranked leads with their stages and one lead's explanation.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PGUSER="${PGUSER:-postgres}"
pg_virtualenv -t -v 15 psql -X -v ON_ERROR_STOP=1 -q -f demo/demo.sql
