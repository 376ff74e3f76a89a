#!/usr/bin/env bash
# Upgrade test: every released version with data, ALTER EXTENSION leadscore UPDATE, then compare
# with a fresh install of the current version holding the same data: same objects and
# definitions, same scores, and live scoring keeps working. Prints a diff of whatever differs.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PGHOST:-}${PGPORT:-}" ] || [ -z "${LEADSCORE_UPGRADE_INNER:-}" ]; then
    export LEADSCORE_UPGRADE_INNER=1 PGUSER="${PGUSER:-postgres}"
    exec pg_virtualenv -t -v 15 "$0"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
current="$(sed -n "s/^default_version = '\(.*\)'/\1/p" leadscore.control)"
released="$(make -s --no-print-directory print-released-versions PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config)"
fail=0
check_upgrade() {
    local from="$1"

    createdb up_old
    createdb up_new
    q -d up_old -c "CREATE EXTENSION leadscore VERSION '$from'"
    q -d up_old -f tests/upgrade/data.sql
    q -d up_old -c "ALTER EXTENSION leadscore UPDATE"
    q -d up_new -c "CREATE EXTENSION leadscore"
    q -d up_new -f tests/upgrade/data.sql

    for db in up_old up_new; do q -d $db -f tests/upgrade/catalog.sql >"$work/$db.catalog"; done
    if ! diff -u "$work/up_new.catalog" "$work/up_old.catalog" >"$work/catalog.diff"; then
        echo "upgrade: the upgraded database differs from a fresh install (- fresh $current, + upgraded $from):"
        cat "$work/catalog.diff"
        fail=1
    fi
    echo "upgrade from $from: compared $(wc -l <"$work/up_new.catalog") catalog lines"

    scores="SELECT lead_id, score, fit_score, engagement_score, stage, disqualified FROM leadscore.lead_score
             WHERE model = 'up' ORDER BY lead_id::int"
    history="SELECT lead_id, from_stage, to_stage, score FROM leadscore.stage_change WHERE model = 'up'
              ORDER BY lead_id::int, changed_at, to_stage"
    for db in up_old up_new; do q -d $db -c "$scores" >"$work/$db.scores"; q -d $db -c "$history" >"$work/$db.history"; done
    diff -u "$work/up_new.scores" "$work/up_old.scores" || { echo "upgrade: stored scores differ"; fail=1; }
    diff -u "$work/up_new.history" "$work/up_old.history" || { echo "upgrade: stage history differs"; fail=1; }

    # Live scoring after the upgrade: the same changes give the same results, equal to a recompute.
    live="INSERT INTO up.acts (lead_id, type, url, occurred_at) VALUES (7, 'demo', NULL, '2026-04-01'), (8, 'page', '/pricing', '2026-04-01');
          INSERT INTO up.leads VALUES (41, 'Finance Director', 'x@acme.com', 300);
          INSERT INTO up.acts (lead_id, type, occurred_at) VALUES (41, 'demo', '2026-04-02');
          UPDATE up.leads SET title = 'Student' WHERE id = 9;
          UPDATE leadscore.activity_rule SET enabled = true WHERE id = 502;"
    for db in up_old up_new; do
        q -d $db -c "$live"
        q -d $db -c "$scores" >"$work/$db.scores2"
        bad="$(q -d $db -c "SELECT count(*) FROM leadscore.lead_score s WHERE model = 'up'
                             AND s.score <> leadscore.score('up', s.lead_id::int, s.scored_at)")"
        [ "$bad" = 0 ] || { echo "upgrade: $db has $bad stored scores that differ from a recompute"; fail=1; }
    done
    diff -u "$work/up_new.scores2" "$work/up_old.scores2" || { echo "upgrade: scores after live changes differ"; fail=1; }
    [ "$(q -d up_old -c "SELECT extversion FROM pg_extension WHERE extname = 'leadscore'")" = "$current" ] ||
        { echo "upgrade: extversion is not $current after updating from $from"; fail=1; }
    # Updating again is a no-op.
    q -d up_old -c "ALTER EXTENSION leadscore UPDATE" 2>&1 | grep -v "already installed" || true

    dropdb up_old
    dropdb up_new
}
for from in $released; do check_upgrade "$from"; done

if [ $fail -ne 0 ]; then echo "upgrade test: FAILED"; exit 1; fi
echo "upgrade test: ok (from $released to $current: same objects, same scores, live scoring works)"
