#!/usr/bin/env bash
# Command one: set up, build, install, then on a throwaway cluster: the five-minute tour on a
# small CRM (demo/demo.sql), then a realistic generated CRM (demo/generate.sql) scored by the
# demo model, its evaluation against conversions, and the HTML report (leadscore-report).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
scripts/setup.sh
make -s -C tools/leadscore-report
export PGUSER="${PGUSER:-postgres}" LEADSCORE_ROOT="$root"
pg_virtualenv -t -v 15 bash -euo pipefail -c '
    cd "$LEADSCORE_ROOT"
    psql -X -v ON_ERROR_STOP=1 -q -f demo/demo.sql
    echo
    echo "== A realistic CRM: 2,000 leads, a year of activity, conversions (demo/generate.sql + demo/model.sql)"
    psql -X -q -v ON_ERROR_STOP=1 -v seed=42 -v leads=2000 -f demo/generate.sql
    psql -X -q -v ON_ERROR_STOP=1 -f demo/model.sql
    as_of="$(psql -X -At -c "SELECT (current_date - 60)::text")"
    echo "== How well the demo model predicts conversions (scores as of $as_of, conversions after)"
    psql -X -c "SELECT section, bucket, leads, converted, conversion_rate, lift, value AS auc
                  FROM leadscore.evaluate('"'"'demo'"'"', '"'"'crm.outcome'"'"', '"'"'$as_of'"'"')
                 WHERE section IN ('"'"'overall'"'"', '"'"'stage'"'"') ORDER BY section, ordinal NULLS FIRST"
    tools/leadscore-report/leadscore-report --model demo --outcomes crm.outcome --as-of "$as_of" \
        -o "$LEADSCORE_ROOT/demo-report.html"
    echo "Open $LEADSCORE_ROOT/demo-report.html in a browser (self-contained: funnel, histogram, deciles, stage entries, top leads)."
'
