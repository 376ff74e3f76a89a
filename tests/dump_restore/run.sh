#!/usr/bin/env bash
# pg_dump / pg_restore round trip: models, rules, lists, tracking, stored scores and stage
# history survive, and live scoring keeps working in the restored database.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${LEADSCORE_DUMP_INNER:-}" ]; then
    export LEADSCORE_DUMP_INNER=1 PGUSER="${PGUSER:-postgres}"
    exec pg_virtualenv -t -v 15 "$0"
fi
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

createdb src
q -d src -c "CREATE EXTENSION leadscore"
q -d src -f tests/upgrade/data.sql
# A second model without a leads table, a user list entry and some history with decay.
q -d src <<'SQL'
CREATE TABLE up.events (account text, kind text, at timestamptz);
CREATE INDEX ON up.events (account);
INSERT INTO leadscore.model (name) VALUES ('accounts');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, half_life) VALUES ('accounts', 'visit', 'visit', 8, '30 days');
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('accounts', 'engaged', 5);
SELECT leadscore.track('accounts', 'up.events', 'account', 'kind', 'at') AS tracked \gset
INSERT INTO up.events SELECT 'acct-' || (g % 7), 'visit', now() - (g || ' days')::interval FROM generate_series(1, 40) g;
INSERT INTO leadscore.list_entry (list, value) VALUES ('free_email_domains', 'my-own-freemail.example');
-- 0.5.0: grades, a time pattern, a cooldown and a gone-quiet rule.
INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES ('up', 'fit', 'A', 30), ('up', 'fit', 'B', 0),
    ('up', 'engagement', '1', 40), ('up', 'engagement', '2', 10);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, min_count, within, cooldown) VALUES
    ('up', 'opens 2 in a day', 'open', 4, 2, '1 day', '2 days');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, quiet_for) VALUES ('accounts', 'quiet', 'visit', -3, '20 days');
SQL
pg_dump -Fc -f "$work/src.dump" src
createdb dst
pg_restore -d dst --exit-on-error "$work/src.dump"

fail=0
compare() {   # what sql
    q -d src -c "$2" >"$work/a"; q -d dst -c "$2" >"$work/b"
    if diff -u "$work/a" "$work/b" >"$work/d"; then echo "dump/restore: $1 equal ($(wc -l <"$work/a") rows)"
    else echo "dump/restore: $1 differ:"; cat "$work/d"; fail=1; fi
}
compare models "SELECT * FROM leadscore.model ORDER BY name"
compare "activity rules" "SELECT * FROM leadscore.activity_rule ORDER BY id"
compare "fit rules" "SELECT * FROM leadscore.fit_rule ORDER BY id"
compare stages "SELECT * FROM leadscore.stage ORDER BY model, name"
compare grades "SELECT * FROM leadscore.grade ORDER BY model, axis, name"
compare "grade matrix" "SELECT * FROM leadscore.grade_matrix ORDER BY model, fit_grade, engagement_grade"
compare "list entries (shipped and user)" "SELECT list, value, shipped FROM leadscore.list_entry ORDER BY 1, 2, 3"
compare tracking "SELECT model, activities::text, lead_column, type_column, time_column, leads::text, lead_key, state_table
                  FROM leadscore.tracking ORDER BY model"
compare "stored scores" "SELECT model, lead_id, score, fit_score, engagement_score, stage, disqualified, stage_since, scored_at
                         FROM leadscore.lead_score ORDER BY model, lead_id"
compare "stage history" "SELECT model, lead_id, from_stage, to_stage, score, changed_at FROM leadscore.stage_change
                         ORDER BY model, lead_id, changed_at, to_stage"
compare "rule ids continue" "SELECT nextval('leadscore.activity_rule_id_seq') > 1000"

# Live scoring after the restore: same changes, same results, equal to a recompute.
live="INSERT INTO up.acts (lead_id, type, url, occurred_at) VALUES (7, 'demo', NULL, '2026-04-01'), (8, 'page', '/pricing', '2026-04-01');
      INSERT INTO up.leads VALUES (41, 'Finance Director', 'x@my-own-freemail.example', 300);
      INSERT INTO up.acts (lead_id, type, occurred_at) VALUES (41, 'demo', '2026-04-02');
      DELETE FROM up.leads WHERE id = 3;
      INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES ('up', 'ceo', 'title', '=', '{CEO}', 5);"
for db in src dst; do q -d $db -c "$live"; done
compare "scores after live changes" "SELECT lead_id, score, fit_score, engagement_score, stage FROM leadscore.lead_score
                                     WHERE model = 'up' ORDER BY lead_id"
bad="$(q -d dst -c "SELECT count(*) FROM leadscore.lead_score s WHERE model = 'up'
                     AND s.score <> leadscore.score('up', s.lead_id::int, s.scored_at)")"
[ "$bad" = 0 ] || { echo "dump/restore: $bad restored scores differ from a recompute"; fail=1; }
q -d dst -c "INSERT INTO up.events VALUES ('acct-new', 'visit', now())"
[ "$(q -d dst -c "SELECT count(*) FROM leadscore.lead_score WHERE model = 'accounts' AND lead_id = 'acct-new'")" = 1 ] ||
    { echo "dump/restore: the second model does not score new activity"; fail=1; }
if [ $fail -ne 0 ]; then echo "dump/restore test: FAILED"; exit 1; fi
echo "dump/restore test: ok"
