#!/usr/bin/env bash
# pg_dump / pg_restore round trip: models, rules, lists, tracking, stored scores and stage
# history survive, and live scoring keeps working in the restored database. A model with a
# relation (an account table), fit and activity condition groups and multiply_by rules keeps
# its relation, conditions and scores, and its related-row triggers rescore after the restore.
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
-- Condition groups, a relation and multiply_by (no expiry or decay: scores do not depend on now).
CREATE SCHEMA rel;
CREATE TABLE rel.account (id bigint PRIMARY KEY, name text, revenue numeric, employees int, industry text);
CREATE TABLE rel.leads (id int PRIMARY KEY, title text, account_id bigint, seats numeric);
CREATE TABLE rel.acts (lead_id int, type text, url text, amount numeric, at timestamptz);
CREATE INDEX ON rel.acts (lead_id);
INSERT INTO rel.account VALUES (1, 'Big; Inc', 5000000, 1200, 'software'), (2, 'O''Small', 200000, 12, 'retail'),
    (3, 'Mid', 900000, 300, NULL);
INSERT INTO rel.leads SELECT i, (ARRAY['CEO', 'CTO', 'Engineer', 'Student'])[1 + i % 4],
       CASE WHEN i % 5 = 0 THEN NULL ELSE 1 + i % 4 END, CASE WHEN i % 3 = 0 THEN NULL ELSE i * 0.5 END
  FROM generate_series(1, 20) i;
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('rel', NULL, 500);
SELECT leadscore.track('rel', 'rel.acts', 'lead_id', 'type', 'at', 'rel.leads', 'id') AS tracked \gset
INSERT INTO leadscore.relation (model, name, lead_column, target, target_key) VALUES ('rel', 'account', 'account_id', 'rel.account', 'id');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (901, 'rel', 'webinar by a big-company exec', 'webinar', 50);
INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value) VALUES
    (901, 1, 'lead.title', 'in', '{CEO,CTO}'), (901, 1, 'account.revenue', '>=', '{1000000}'),
    (901, 2, 'account.industry', '=', '{retail}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, attribute, op, value, points, multiply_by, max_points) VALUES
    (902, 'rel', 'purchase amount', 'purchase', 'url', 'like', '{/shop%}', 0.1, 'amount', 100);
INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value) VALUES (902, 1, 'amount', '>', '{5}');
INSERT INTO leadscore.fit_rule (id, model, name, points) VALUES (903, 'rel', 'target account', 15);
INSERT INTO leadscore.fit_condition (rule_id, grp, attribute, op, value) VALUES
    (903, 1, 'account.employees', '>=', '{1000}'), (903, 2, 'account.industry', '=', '{retail}'), (903, 2, 'title', '=', '{CEO}');
INSERT INTO leadscore.fit_rule (id, model, name, points, multiply_by) VALUES (904, 'rel', 'per 100 employees', 0.01, 'account.employees'),
    (905, 'rel', 'per seat', 1.5, 'seats');
INSERT INTO rel.acts SELECT 1 + g % 20, (ARRAY['webinar', 'purchase', 'purchase', 'page'])[1 + g % 4],
       CASE WHEN g % 3 = 0 THEN '/blog' ELSE '/shop/' || g END, CASE WHEN g % 7 = 0 THEN NULL ELSE g * 1.25 END,
       timestamptz '2026-02-01 00:00+00' + g * interval '5 hours'
  FROM generate_series(1, 80) g;
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
compare relations "SELECT model, name, lead_column, target::text, target_key FROM leadscore.relation ORDER BY model, name"
compare "fit conditions" "SELECT * FROM leadscore.fit_condition ORDER BY id"
compare "activity conditions" "SELECT * FROM leadscore.activity_condition ORDER BY id"
compare "condition ids continue" "SELECT nextval('leadscore.fit_condition_id_seq') > max(id) FROM leadscore.fit_condition
                                  UNION ALL SELECT nextval('leadscore.activity_condition_id_seq') > max(id) FROM leadscore.activity_condition"
compare "explained scores with conditions, relation and multiply_by" \
    "SELECT l.id, e.rule, e.family, e.occurrences, e.points FROM rel.leads l, leadscore.explain('rel', l.id, '2026-06-01') e
     ORDER BY l.id, e.rule"

# Live scoring after the restore: same changes, same results, equal to a recompute.
live="INSERT INTO up.acts (lead_id, type, url, occurred_at) VALUES (7, 'demo', NULL, '2026-04-01'), (8, 'page', '/pricing', '2026-04-01');
      INSERT INTO up.leads VALUES (41, 'Finance Director', 'x@my-own-freemail.example', 300);
      INSERT INTO up.acts (lead_id, type, occurred_at) VALUES (41, 'demo', '2026-04-02');
      DELETE FROM up.leads WHERE id = 3;
      INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES ('up', 'ceo', 'title', '=', '{CEO}', 5);"
for db in src dst; do q -d $db -c "$live"; done
compare "scores after live changes" "SELECT lead_id, score, fit_score, engagement_score, stage FROM leadscore.lead_score
                                     WHERE model = 'up' ORDER BY lead_id"
# The relation model after the restore: related-row update (every referring lead), a new
# account, a lead moved to it, a valued activity, a condition edit.
before="$(q -d dst -c "SELECT string_agg(lead_id || ':' || score, ' ' ORDER BY lead_id) FROM leadscore.lead_score WHERE model = 'rel'")"
rel_live="UPDATE rel.account SET revenue = 100, employees = 5000 WHERE id = 1;
          INSERT INTO rel.account VALUES (4, 'New', 2000000, 2500, 'retail');
          UPDATE rel.leads SET account_id = 4, title = 'CEO' WHERE id = 5;
          INSERT INTO rel.acts VALUES (5, 'webinar', NULL, NULL, '2026-03-01'), (6, 'purchase', '/shop/x', 40.5, '2026-03-01');
          UPDATE leadscore.activity_condition SET value = '{CEO,CTO,Engineer}' WHERE rule_id = 901 AND attribute = 'lead.title';
          DELETE FROM rel.account WHERE id = 3;"
for db in src dst; do q -d $db -c "$rel_live"; done
compare "relation model after live changes (related rows, lead, activity, condition)" \
    "SELECT lead_id, score, fit_score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'rel' ORDER BY lead_id"
after="$(q -d dst -c "SELECT string_agg(lead_id || ':' || score, ' ' ORDER BY lead_id) FROM leadscore.lead_score WHERE model = 'rel'")"
[ "$before" != "$after" ] || { echo "dump/restore: the relation model's scores did not move"; fail=1; }
bad="$(q -d dst -c "SELECT count(*) FROM leadscore.lead_score s WHERE model = 'rel'
                     AND s.score <> leadscore.score('rel', s.lead_id::int, s.scored_at)")"
[ "$bad" = 0 ] || { echo "dump/restore: $bad relation-model scores differ from a recompute after the restore"; fail=1; }
# The account update alone moved the scores of the leads of account 1 (every one of them).
moved="$(q -d dst -c "BEGIN;
    CREATE TEMP TABLE b AS SELECT lead_id, fit_score FROM leadscore.lead_score WHERE model = 'rel';
    UPDATE rel.account SET employees = 100 WHERE id = 1;
    SELECT count(*) FILTER (WHERE s.fit_score <> b.fit_score) || '/' || count(*) FROM rel.leads l
      JOIN leadscore.lead_score s ON s.model = 'rel' AND s.lead_id = l.id::text JOIN b ON b.lead_id = s.lead_id
     WHERE l.account_id = 1;
    ROLLBACK;" | tail -1)"
[ "$moved" = "4/4" ] || { echo "dump/restore: a related-row update after the restore rescored $moved of the leads of account 1"; fail=1; }
bad="$(q -d dst -c "SELECT count(*) FROM leadscore.lead_score s WHERE model = 'up'
                     AND s.score <> leadscore.score('up', s.lead_id::int, s.scored_at)")"
[ "$bad" = 0 ] || { echo "dump/restore: $bad restored scores differ from a recompute"; fail=1; }
q -d dst -c "INSERT INTO up.events VALUES ('acct-new', 'visit', now())"
[ "$(q -d dst -c "SELECT count(*) FROM leadscore.lead_score WHERE model = 'accounts' AND lead_id = 'acct-new'")" = 1 ] ||
    { echo "dump/restore: the second model does not score new activity"; fail=1; }
if [ $fail -ne 0 ]; then echo "dump/restore test: FAILED"; exit 1; fi
echo "dump/restore test: ok"
