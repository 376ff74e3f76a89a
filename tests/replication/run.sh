#!/usr/bin/env bash
# Scoring on a logical-replication subscriber: a publication of the CRM's tables in one
# database, a subscription in a second one where the model is tracked. The initial copy and
# every applied insert, update, delete and truncate are scored live; stored == recomputed;
# local writes on the subscriber still score once; set_replica(false) stops applied changes
# from firing leadscore's triggers.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${LEADSCORE_REPL_INNER:-}" ]; then
    export LEADSCORE_REPL_INNER=1 PGUSER="${PGUSER:-postgres}"
    exec pg_virtualenv -t -v 15 -o log_min_messages=warning -o wal_level=logical -o max_replication_slots=10 -o max_wal_senders=10 \
        -o max_logical_replication_workers=6 -o max_sync_workers_per_subscription=2 "$0"
fi
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
fail=0
check() { if [ "$2" = "$3" ]; then echo "replication: $1"; else echo "replication: FAILED: $1 (got '$2', want '$3')"; fail=1; fi; }

schema="CREATE SCHEMA crm;
CREATE TABLE crm.account (id int PRIMARY KEY, employees int);
CREATE TABLE crm.lead (id int PRIMARY KEY, title text, email text, account_id int);
CREATE TABLE crm.activity (id bigint PRIMARY KEY, lead_id int, type text, url text, at timestamptz);
CREATE INDEX ON crm.activity (lead_id);
CREATE TABLE crm.marker (n int PRIMARY KEY);"
createdb pub
createdb sub
q -d pub -c "$schema"
q -d sub -c "$schema"

# The primary's data before the subscription: 300 leads, 6000 activities.
q -d pub >/dev/null <<'SQL'
INSERT INTO crm.account SELECT a, 10 * a FROM generate_series(1, 20) a;
INSERT INTO crm.lead SELECT i, (ARRAY['CEO','Engineer','Student','VP Sales'])[1 + i % 4], 'p' || i || '@' ||
       (ARRAY['acme.com','gmail.com','initech.de'])[1 + i % 3], 1 + i % 25 FROM generate_series(1, 300) i;
INSERT INTO crm.activity SELECT g, 1 + (g * 7919) % 320, (ARRAY['open','page','demo','webinar','click'])[1 + g % 5],
       CASE WHEN g % 3 = 0 THEN '/pricing' ELSE '/blog' END, now() - (g % 200) * interval '1 day' - g * interval '1 minute'
  FROM generate_series(1, 6000) g;
CREATE PUBLICATION crm_pub FOR TABLE crm.account, crm.lead, crm.activity, crm.marker;
SELECT pg_create_logical_replication_slot('crm_sub', 'pgoutput');
SQL

# The scoring database: the model is tracked before the subscription, so the initial copy is scored live.
q -d sub >/dev/null <<'SQL'
CREATE EXTENSION leadscore;
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('rep', 0, 500);
INSERT INTO leadscore.activity_rule (model, name, activity_type, attribute, op, value, points, once, max_count, expires_after, min_count, within) VALUES
    ('rep', 'demo', 'demo', NULL, NULL, NULL, 50, true, NULL, NULL, NULL, NULL),
    ('rep', 'open', 'open', NULL, NULL, NULL, 2, false, 10, '90 days', NULL, NULL),
    ('rep', 'pricing', 'page', 'url', '=', '{/pricing}', 5, false, NULL, NULL, 2, '30 days'),
    ('rep', 'webinar', 'webinar', NULL, NULL, NULL, 8, false, 3, NULL, NULL, NULL);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, quiet_for) VALUES ('rep', 'quiet', 'click', -4, '60 days');
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES
    ('rep', 'ceo', 'title', '=', '{CEO}', 20), ('rep', 'free mail', 'email', 'domain in list', '{free_email_domains}', -10);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('rep', 'warm', 30), ('rep', 'hot', 100);
-- Related records: the lead's account (an applied account change rescores its leads), and an
-- activity rule that reads the lead's row.
INSERT INTO leadscore.relation VALUES ('rep', 'account', 'account_id', 'crm.account', 'id');
INSERT INTO leadscore.fit_rule (model, name, points, multiply_by) VALUES ('rep', 'per 100 employees', 0.01, 'account.employees');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (900, 'rep', 'webinar by a CEO', 'webinar', 3);
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (900, 'lead.title', '=', '{CEO}');
SELECT leadscore.track('rep', 'crm.activity', 'lead_id', 'type', 'at', 'crm.lead', 'id');
SQL
check "track() with no rows yet" "$(q -d sub -c "SELECT count(*) FROM leadscore.lead_score WHERE model = 'rep'")" 0
check "replica triggers installed, enabled REPLICA" \
    "$(q -d sub -c "SELECT string_agg(tgrelid::regclass::text || ':' || tgenabled::text, ',' ORDER BY tgrelid::regclass::text) FROM pg_trigger WHERE tgname LIKE 'leadscore_%_row'")" \
    "crm.account:R,crm.activity:R,crm.lead:R"

conn="host=${PGHOST:-/var/run/postgresql} port=${PGPORT:-5432} dbname=pub user=$PGUSER${PGPASSWORD:+ password=$PGPASSWORD}"
q -d sub -c "CREATE SUBSCRIPTION crm_sub CONNECTION '$conn' PUBLICATION crm_pub WITH (create_slot = false, slot_name = 'crm_sub')"

wait_for() {   # sql expected: poll the subscriber until the query returns the expected value
    for _ in $(seq 1 300); do
        [ "$(q -d sub -c "$1")" = "$2" ] && return 0
        sleep 0.2
    done
    echo "replication: FAILED: timed out waiting for: $1 = $2"; fail=1
}
marker=0
synced() {     # a marker row written last on the primary has arrived: everything before it has
    marker=$((marker + 1))
    q -d pub -c "INSERT INTO crm.marker VALUES ($marker)"
    wait_for "SELECT count(*) FROM crm.marker WHERE n = $marker" 1
}
recompute_differs="SELECT count(*) FROM leadscore.lead_score s WHERE s.model = 'rep'
                     AND s.score IS DISTINCT FROM leadscore.score('rep', s.lead_id::int, s.scored_at)"

wait_for "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'" 0
synced
check "initial copy: every lead of the copied leads table scored" "$(q -d sub -c "SELECT count(*) FROM leadscore.lead_score WHERE model = 'rep'")" 300
check "initial copy: stored == recomputed" "$(q -d sub -c "$recompute_differs")" 0
check "initial copy: leads with engagement" "$(q -d sub -c "SELECT count(*) > 200 FROM leadscore.lead_score WHERE model = 'rep' AND engagement_score <> 0")" t
check "initial copy: stage history recorded" "$(q -d sub -c "SELECT count(*) > 0 FROM leadscore.stage_change WHERE model = 'rep'")" t

# Applied changes: inserts, updates (type, time, lead), deletes, lead changes, in several transactions.
q -d pub <<'SQL'
INSERT INTO crm.activity SELECT 10000 + g, 1 + g % 40, 'demo', NULL, now() - g * interval '1 hour' FROM generate_series(1, 40) g;
BEGIN;
UPDATE crm.activity SET type = 'webinar' WHERE id % 17 = 0;
UPDATE crm.activity SET at = at - interval '100 days' WHERE id % 23 = 0;
UPDATE crm.activity SET lead_id = lead_id + 1 WHERE id % 29 = 0;
COMMIT;
DELETE FROM crm.activity WHERE id % 11 = 0;
UPDATE crm.lead SET title = 'CEO' WHERE id % 10 = 1;
DELETE FROM crm.lead WHERE id > 290;
INSERT INTO crm.lead VALUES (1001, 'CEO', 'x@acme.com'), (1002, 'Student', 'y@gmail.com');
INSERT INTO crm.activity VALUES (20001, 1001, 'demo', NULL, now()), (20002, 1002, 'page', '/pricing', now()),
                                (20003, 1002, 'page', '/pricing', now() - interval '1 day');
SQL
synced
check "applied changes: stored == recomputed" "$(q -d sub -c "$recompute_differs")" 0
check "applied changes: leads table membership" "$(q -d sub -c "SELECT count(*) FROM leadscore.lead_score WHERE model = 'rep'")" 292
check "applied insert scored in its transaction (lead 1001: CEO + demo)" "$(q -d sub -c "SELECT score FROM leadscore.lead_score WHERE model = 'rep' AND lead_id = '1001'")" 70
check "a pattern rule over applied rows (lead 1002: second pricing view)" "$(q -d sub -c "SELECT score FROM leadscore.lead_score WHERE model = 'rep' AND lead_id = '1002'")" 0
# Applied changes of related rows: the referring leads are rescored.
q -d pub -c "UPDATE crm.account SET employees = employees * 10 WHERE id % 2 = 0" -c "DELETE FROM crm.account WHERE id = 3" \
    -c "INSERT INTO crm.account VALUES (21, 5000)"
synced
check "applied account changes: stored == recomputed" "$(q -d sub -c "$recompute_differs")" 0
q -d pub -c "INSERT INTO crm.account VALUES (22, 1000)" >/dev/null
synced
check "lead 21 (CEO of account 22, absent before) gets 20 + 1000 x 0.01 once the account arrives" \
    "$(q -d sub -c "SELECT fit_score FROM leadscore.lead_score WHERE model = 'rep' AND lead_id = '21'")" 30
check "lead 1002's engagement: 5 from the second view" "$(q -d sub -c "SELECT engagement_score FROM leadscore.lead_score WHERE model = 'rep' AND lead_id = '1002'")" 5

# A rolled-back transaction on the primary leaves nothing.
before="$(q -d sub -c "SELECT sum(score) FROM leadscore.lead_score WHERE model = 'rep'")"
q -d pub -c "BEGIN; INSERT INTO crm.activity VALUES (30001, 5, 'demo', NULL, now()); ROLLBACK;"
synced
check "rolled back on the primary: no trace" "$(q -d sub -c "SELECT sum(score) FROM leadscore.lead_score WHERE model = 'rep'")" "$before"

# Local writes on the subscriber are scored once (statement triggers; the row triggers stay quiet).
q -d sub -c "INSERT INTO crm.lead VALUES (500, 'CEO', 'z@acme.com'); INSERT INTO crm.activity VALUES (50001, 500, 'demo', NULL, now())"
check "local write on the subscriber scored once" "$(q -d sub -c "SELECT score FROM leadscore.lead_score WHERE model = 'rep' AND lead_id = '500'")" 70

# TRUNCATE replicates and fires the replica truncate trigger.
q -d pub -c "TRUNCATE crm.activity"
synced
check "applied truncate: engagement gone, stored == recomputed" \
    "$(q -d sub -c "SELECT count(*) FILTER (WHERE engagement_score <> 0 AND lead_id <> '500') || '/' || count(*) FILTER (WHERE score IS DISTINCT FROM leadscore.score('rep', lead_id::int, scored_at)) FROM leadscore.lead_score WHERE model = 'rep'")" "0/0"
q -d pub -c "INSERT INTO crm.activity SELECT 40000 + g, 1 + g % 50, 'open', NULL, now() - g * interval '1 day' FROM generate_series(1, 500) g"
synced
check "after the truncate, new rows scored: stored == recomputed" "$(q -d sub -c "$recompute_differs")" 0

# set_replica(false) removes the replica triggers; set_replica(true) puts them back.
check "set_replica(false) returns the previous setting" "$(q -d sub -c "SELECT leadscore.set_replica('rep', false)")" t
check "no replica triggers left" "$(q -d sub -c "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'leadscore_%_row' OR tgname LIKE 'leadscore_%_rtrunc'")" 0
check "set_replica(true)" "$(q -d sub -c "SELECT leadscore.set_replica('rep', true)")" f
check "tracking.replica" "$(q -d sub -c "SELECT replica FROM leadscore.tracking WHERE model = 'rep'")" t
check "set_replica on an untracked model is an error" \
    "$(q -d sub -c "SELECT leadscore.set_replica('nope', true)" 2>&1 | grep -c 'is not tracked')" 1

# A model tracked with replica => false ignores applied changes (documented opt-out).
q -d sub -c "SELECT leadscore.untrack('rep')" >/dev/null
check "replica => false on a subscribed table: a NOTICE says so" \
    "$(q -d sub -c "SELECT leadscore.track('rep', 'crm.activity', 'lead_id', 'type', 'at', 'crm.lead', 'id', replica => false)" 2>&1 | grep -c 'is subscribed')" 1
check "replica => false: no replica triggers" "$(q -d sub -c "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'leadscore_%_row'")" 0

# No worker hit an error on the way (a deadlock between table-sync workers would show here).
check "no apply or table-sync errors" \
    "$(q -d sub -c "SELECT apply_error_count + sync_error_count FROM pg_stat_subscription_stats WHERE subname = 'crm_sub'")" 0
q -d sub -c "DROP SUBSCRIPTION crm_sub" 2>/dev/null
[ $fail -eq 0 ] && echo "replication test: ok" || { echo "replication test: FAILED"; exit 1; }
