#!/usr/bin/env bash
# Scoring on a Citus cluster: a coordinator and two workers on this machine, the CRM's leads
# and activities distributed and co-located by lead key. Checks track() on distributed tables,
# live scoring on the shards (single rows, COPY, rollback, writes through a worker), the
# notification of stage changes scored on the shards, rule, stage and fit edits made on the
# coordinator, the views and functions read from the coordinator, stored == recomputed after a
# randomized load from 4 clients, a shard move, TRUNCATE, and untrack().
# Citus is not in Debian: when it is not installed, the suite says so and passes.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/citus/cluster.sh
if ! citus_installed; then
    echo "citus: skipped (Citus is not installed for PostgreSQL 15; see docs/scale-out.md)"
    exit 0
fi
citus_start "${LEADSCORE_CITUS_PORT:-5821}"
base=$citus_base
coord=$citus_base
dir=$citus_dir
q() { psql -X -q -At -v ON_ERROR_STOP=1 -p "$coord" "$@"; }

fail=0
n=0
check() {
    n=$((n + 1))
    if [ "$2" = "$3" ]; then echo "ok $n - citus: $1"; else echo "not ok $n - citus: $1 (got '$2', want '$3')"; fail=1; fi
}

# Sessions on the coordinator load leadscore, so that a write's stage changes scored on the
# shards are notified when it commits (docs/scale-out.md).
q -c "ALTER DATABASE postgres SET session_preload_libraries = 'leadscore'"
q >/dev/null <<'SQL'
CREATE EXTENSION leadscore;
CREATE SCHEMA crm;
CREATE TABLE crm.lead (id bigint PRIMARY KEY, title text, employees int, country text);
CREATE TABLE crm.activity (id bigserial, lead_id bigint NOT NULL, type text NOT NULL,
                           occurred_at timestamptz NOT NULL, url text, PRIMARY KEY (lead_id, id));
SELECT create_distributed_table('crm.lead', 'id', shard_count => 8);
SELECT create_distributed_table('crm.activity', 'lead_id', colocate_with => 'crm.lead');
INSERT INTO crm.lead SELECT i, (ARRAY['CEO', 'Engineer', 'Student', 'VP Sales'])[1 + i % 4], 10 * (i % 50),
       (ARRAY['DE', 'US', 'FR'])[1 + i % 3] FROM generate_series(1, 400) i;
INSERT INTO crm.activity (lead_id, type, occurred_at, url)
SELECT 1 + (g * 7919) % 400, (ARRAY['page view', 'e-mail open', 'form fill', 'demo request', 'unsubscribe'])[1 + g % 5],
       now() - (g % 90) * interval '1 day' - g * interval '1 minute', CASE WHEN g % 3 = 0 THEN '/pricing' ELSE '/blog' END
  FROM generate_series(1, 8000) g;
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('demo', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, max_count) VALUES ('demo', 'views', 'page view', 2, 10);
INSERT INTO leadscore.activity_rule (model, name, activity_type, attribute, op, value, points)
     VALUES ('demo', 'pricing', 'page view', 'url', '=', '{/pricing}', 3);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, expires_after) VALUES ('demo', 'opens', 'e-mail open', 1, '30 days');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once) VALUES ('demo', 'form', 'form fill', 10, true);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, half_life) VALUES ('demo', 'demo', 'demo request', 25, '14 days');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('demo', 'unsub', 'unsubscribe', -15);
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES ('demo', 'ceo', 'title', '=', '{CEO}', 15);
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES ('demo', 'big', 'employees', '>=', '{300}', 10);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('demo', 'MQL', 40), ('demo', 'SQL', 70);
SQL

check "track() scores every lead of the distributed tables" \
    "$(q -c "SELECT leadscore.track('demo', 'crm.activity', 'lead_id', 'type', 'occurred_at', 'crm.lead', 'id')")" 400
check "the state table is distributed and co-located with the activities" \
    "$(q -c "SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE logicalrelid IN
             ('crm.activity'::regclass, (SELECT ('leadscore.' || state_table)::regclass FROM leadscore.tracking))")" 1

# stored == recomputed from the coordinator: score() as of each row's scored_at.
mismatches() {
    q -c "SELECT count(*) FROM leadscore.lead_score s
           WHERE s.model = 'demo' AND s.score IS DISTINCT FROM leadscore.score('demo', s.lead_id::bigint, s.scored_at)"
}
check "every stored score equals score() after track()" "$(mismatches)" 0
history=$(q -c "SELECT 'leadscore.' || quote_ident(state_table || '_history') FROM leadscore.tracking WHERE model = 'demo'")
pending() { q -c "SELECT count(*) FROM $history WHERE notify_pending"; }
check "track()'s initial scoring records stage changes without notifying them" \
    "$(q -c "SELECT count(*) > 0 FROM $history")|$(pending)" "t|0"
check "lead_score lists every lead once" "$(q -c "SELECT count(*), count(DISTINCT lead_id) FROM leadscore.lead_score WHERE model = 'demo'")" "400|400"

# Live scoring on the shards: a single row, a COPY, a rollback.
before=$(q -c "SELECT score FROM leadscore.lead_score WHERE model = 'demo' AND lead_id = '7'")
q -c "INSERT INTO crm.activity (lead_id, type, occurred_at) VALUES (7, 'form fill', now())"
check "a single-row insert is scored in its transaction" \
    "$(q -c "SELECT score = leadscore.score('demo', 7::bigint) FROM leadscore.lead_score WHERE model = 'demo' AND lead_id = '7'")" t
now=$(date -u '+%Y-%m-%d %H:%M:%S+00')
for i in $(seq 1 300); do printf '%s\tdemo request\t%s\n' "$i" "$now"; done > "$dir/copy.tsv"
q -c "\\copy crm.activity (lead_id, type, occurred_at) FROM '$dir/copy.tsv'"
q <<SQL
CREATE TEMP TABLE c (lead_id bigint, type text, occurred_at timestamptz);
\\copy c FROM '$dir/copy.tsv'
INSERT INTO crm.activity (lead_id, type, occurred_at) SELECT lead_id, 'form fill', occurred_at FROM c;
SQL
check "COPY and INSERT ... SELECT of 300 rows each are scored" "$(mismatches)" 0
q -c "BEGIN; INSERT INTO crm.activity (lead_id, type, occurred_at) VALUES (9, 'demo request', now()); ROLLBACK;"
check "a rolled-back insert leaves no trace" \
    "$(q -c "SELECT score = leadscore.score('demo', 9::bigint, scored_at) FROM leadscore.lead_score WHERE model = 'demo' AND lead_id = '9'")" t
check "stage changes are recorded in stage_change" \
    "$(q -c "SELECT count(*) > 0 FROM leadscore.stage_change WHERE model = 'demo' AND to_stage = 'SQL'")" t
psql -X -q -At -v ON_ERROR_STOP=1 -p $((base + 1)) -c "INSERT INTO crm.activity (lead_id, type, occurred_at) SELECT i, 'form fill', now() FROM generate_series(350, 360) i"
check "writes made through a worker are scored" "$(mismatches)" 0
check "the first write went unchanged: lead 7's score moved by the form" \
    "$(q -c "SELECT (SELECT score FROM leadscore.lead_score WHERE model = 'demo' AND lead_id = '7') >= $before")" t

# Lead changes: a fit change, a new lead, a deleted lead.
q -c "UPDATE crm.lead SET title = 'CEO' WHERE id IN (2, 3)"
q -c "INSERT INTO crm.lead VALUES (401, 'CEO', 900, 'DE')"
q -c "INSERT INTO crm.activity (lead_id, type, occurred_at) VALUES (401, 'demo request', now())"
q -c "DELETE FROM crm.lead WHERE id = 5"
check "lead updates, inserts and deletes are scored" "$(mismatches)|$(q -c "SELECT count(*) FROM leadscore.lead_score WHERE model = 'demo'")" "0|400"

# Notifications of the changes scored on the shards: the coordinator's session sends those of
# its transaction when it commits, as on one machine.
quiet() { q -c "SELECT lead_id FROM leadscore.lead_score WHERE model = 'demo' AND stage IS NULL ORDER BY score DESC, lead_id LIMIT 1"; }
lead=$(quiet)
q -c "LISTEN leadscore_stage" -c "INSERT INTO crm.activity (lead_id, type, occurred_at) SELECT $lead, 'demo request', now() FROM generate_series(1, 3)" > "$dir/commit.out"
check "a write through the coordinator notifies its shards' stage changes when it commits" \
    "$(grep -c "^Asynchronous notification \"leadscore_stage\" with payload \"{\"model\":\"demo\",\"lead_id\":\"$lead\"" "$dir/commit.out")|$(pending)" "1|0"
lead=$(quiet)
q -c "LISTEN leadscore_stage" -c "BEGIN" \
  -c "INSERT INTO crm.activity (lead_id, type, occurred_at) SELECT $lead, 'demo request', now() FROM generate_series(1, 3)" \
  -c "ROLLBACK" -c "SELECT 1" > "$dir/rollback.out"
check "a rolled-back write notifies nothing" "$(grep -c '^Asynchronous notification' "$dir/rollback.out")|$(pending)" "0|0"
# With leadscore.notify_on_commit off (or sessions that do not load leadscore) they wait,
# marked, in the distributed history; notify_stage_changes() sends them, in order, once.
export PGOPTIONS="-c leadscore.notify_on_commit=off"
q -c "\\copy crm.activity (lead_id, type, occurred_at) FROM '$dir/copy.tsv'"
unset PGOPTIONS
waiting=$(pending)
check "stage changes scored on the shards wait to be notified" "$((waiting > 0))" 1
q -c "BEGIN; SELECT leadscore.notify_stage_changes(); ROLLBACK;" >/dev/null
check "a rolled-back notify_stage_changes() leaves them waiting" "$(pending)" "$waiting"
quiet=$(quiet)
PGOPTIONS="-c leadscore.notify_on_commit=off" q -c "INSERT INTO crm.activity (lead_id, type, occurred_at) SELECT $quiet, 'demo request', now() FROM generate_series(1, 3)" >/dev/null
waiting=$(pending)
q -c "LISTEN leadscore_stage; SELECT leadscore.notify_stage_changes();" > "$dir/notify.out"
check "notify_stage_changes() sends each waiting change once and says how many" \
    "$(head -1 "$dir/notify.out")|$(grep -c '^Asynchronous notification "leadscore_stage"' "$dir/notify.out")|$(pending)" "$waiting|$waiting|0"
payload=$(grep "\"lead_id\":\"$quiet\"" "$dir/notify.out" | tail -1 | sed -e 's/^Asynchronous notification "leadscore_stage" with payload "//' -e 's/" received from server process with PID [0-9]*\.$//')
check "the payload is the change as recorded (model, lead, stages, score, time)" \
    "$(q -c "SELECT ('$payload'::jsonb - 'changed_at') = jsonb_build_object('model', model, 'lead_id', lead_id, 'from_stage', from_stage,
                    'to_stage', to_stage, 'score', score) AND ('$payload'::jsonb ->> 'changed_at')::timestamptz = changed_at
             FROM leadscore.stage_change WHERE model = 'demo' AND lead_id = '$quiet' ORDER BY changed_at DESC LIMIT 1")" t
check "a second call has nothing left to send" "$(q -c "SELECT leadscore.notify_stage_changes()")" 0
PGOPTIONS="-c leadscore.notify_on_commit=off" q -c "INSERT INTO crm.activity (lead_id, type, occurred_at) SELECT i, 'demo request', now() FROM generate_series(20, 30) i" >/dev/null
waiting=$(pending)
q -c "LISTEN leadscore_stage" -c "CALL leadscore.stage_notifier('0 seconds')" > "$dir/notifier.out"
check "stage_notifier() sends them and commits" \
    "$(grep -c '^Asynchronous notification "leadscore_stage"' "$dir/notifier.out")|$(pending)" "$waiting|0"

# Rule, stage and fit edits on the coordinator rescore every shard in the same transaction.
q -c "UPDATE leadscore.activity_rule SET points = 3 WHERE model = 'demo' AND name = 'views'"
check "an activity rule edit" "$(mismatches)" 0
q -c "UPDATE leadscore.fit_rule SET points = 20 WHERE model = 'demo' AND name = 'ceo'"
check "a fit rule edit" "$(mismatches)" 0
q -c "UPDATE leadscore.stage SET min_score = 35 WHERE model = 'demo' AND name = 'MQL'"
check "a stage threshold edit" \
    "$(q -c "SELECT count(*) FROM leadscore.lead_score WHERE model = 'demo' AND stage IS DISTINCT FROM
             CASE WHEN score >= 70 THEN 'SQL' WHEN score >= 35 THEN 'MQL' END")" 0
q -c "BEGIN; UPDATE leadscore.activity_rule SET points = 50 WHERE model = 'demo' AND name = 'form'; ROLLBACK;"
check "a rolled-back rule edit leaves no trace" "$(mismatches)" 0
q -c "BEGIN; UPDATE leadscore.activity_rule SET points = 4 WHERE model = 'demo' AND name = 'views';
      INSERT INTO crm.activity (lead_id, type, occurred_at) SELECT i, 'page view', now() FROM generate_series(1, 40) i; COMMIT;"
check "inserts after a rule edit in the same transaction use the new rule" "$(mismatches)" 0
q -c "INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('demo', 'webinar', 'webinar', 8)"
psql -X -q -At -v ON_ERROR_STOP=1 -p $((base + 2)) -c "INSERT INTO crm.activity (lead_id, type, occurred_at) VALUES (11, 'webinar', now())"
check "a new rule reaches the workers' live triggers" "$(mismatches)" 0

# What analysts read from the coordinator.
check "funnel counts every lead" "$(q -c "SELECT sum(leads) FROM leadscore.funnel WHERE model = 'demo'")" 400
check "explain() sums to the score" \
    "$(q -c "SELECT sum(points) = (SELECT engagement_score + fit_score FROM leadscore.lead_score WHERE model = 'demo' AND lead_id = '401')
             FROM leadscore.explain('demo', 401::bigint, (SELECT scored_at FROM leadscore.lead_score WHERE model = 'demo' AND lead_id = '401'))")" t
q -c "LISTEN leadscore_stage; SELECT leadscore.refresh('demo', now() + interval '40 days') > 0;" > "$dir/refresh.out"
check "refresh() runs on every shard and says how many scores changed" "$(head -1 "$dir/refresh.out")" t
check "refresh() notifies the stage changes computed on the shards in its transaction" \
    "$(($(grep -c '^Asynchronous notification "leadscore_stage"' "$dir/refresh.out") > 0))|$(pending)" "1|0"
check "every refreshed row was computed on its shard (none left marked)" \
    "$(q -c "SELECT count(*) FROM leadscore.all_state WHERE model = 'demo' AND next_change = '-infinity'")" 0
check "after refresh(t) every score is the score as of t" \
    "$(q -c "SELECT count(*) FROM leadscore.lead_score s WHERE s.model = 'demo'
              AND s.score IS DISTINCT FROM leadscore.score('demo', s.lead_id::bigint, s.scored_at)")" 0
# (The aggregate runs on the shards; score() reads the distributed activities, so it runs on
# the coordinator over the materialized results: Citus runs no distributed query inside one.)
# (now() pushed to a node is that node's transaction time: one fixed time for both.)
asof=$(q -c "SELECT now()")
check "the engagement aggregate over the distributed activities agrees with score()" \
    "$(q -c "WITH x AS MATERIALIZED (SELECT lead_id, leadscore.engagement_score('demo', a, '$asof') AS e FROM crm.activity a GROUP BY lead_id),
                  s AS MATERIALIZED (SELECT lead_id::bigint AS lead_id, fit_score FROM leadscore.lead_score WHERE model = 'demo'),
                  y AS MATERIALIZED (SELECT x.lead_id, x.e, s.fit_score, leadscore.score('demo', x.lead_id, '$asof') AS sc FROM x JOIN s USING (lead_id))
             SELECT count(*) FILTER (WHERE e IS DISTINCT FROM sc - fit_score AND sc > 0 AND sc < 100) || '|' || (count(*) > 300)::text FROM y")" "0|true"
check "scores_as_of() from the coordinator covers every lead" \
    "$(q -c "SELECT count(*) FROM leadscore.scores_as_of('demo', now())")" 400
check "evaluate() from the coordinator sees every lead and a third converted" \
    "$(q -c "SELECT leads || '|' || converted FROM leadscore.evaluate('demo', 'SELECT id, id % 3 = 0 FROM crm.lead')
             WHERE section = 'overall'")" "400|133"
q -c "SELECT leadscore.rescore('demo')" >/dev/null
check "rescore() from the coordinator" "$(mismatches)" 0
check "backtest() from the coordinator sees every lead" \
    "$(q -c "SELECT leads FROM leadscore.backtest(ARRAY['demo'], 'SELECT id, id % 3 = 0 FROM crm.lead') WHERE section = 'overall'")" 400
check "learn_points() from the coordinator learns from the distributed activities" \
    "$(q -c "SELECT count(*) > 0 FROM leadscore.learn_points('demo', 'SELECT id, id % 3 = 0 FROM crm.lead')")" t
check "suggest_stages() from the coordinator" \
    "$(q -c "SELECT count(*) > 0 FROM leadscore.suggest_stages('demo', 'SELECT id, id % 3 = 0 FROM crm.lead', capacity => 0.2)")" t

# A randomized load from 4 clients through the coordinator, then stored == recomputed. Each
# step is its own transaction. Two multi-shard batches that touch the same leads on two nodes
# can wait for each other across nodes: Citus's deadlock detection then cancels one, which
# leaves no trace (docs/scale-out.md); any other error fails the suite.
q >/dev/null <<'SQL'
CREATE FUNCTION crm.load_step() RETURNS void LANGUAGE plpgsql AS $$
DECLARE k int := 1 + (random() * 399)::int;
BEGIN
    -- (Citus refuses volatile functions in a distributed UPDATE's or DELETE's WHERE)
    CASE (random() * 6)::int
        WHEN 0 THEN INSERT INTO crm.activity (lead_id, type, occurred_at)
                    SELECT k, (ARRAY['page view','e-mail open','form fill','demo request','unsubscribe'])[1 + (random() * 4)::int],
                           now() - random() * interval '60 days' FROM generate_series(1, 1 + (random() * 20)::int);
        WHEN 5 THEN INSERT INTO crm.activity (lead_id, type, occurred_at)
                    SELECT 1 + (random() * 399)::int, (ARRAY['page view','e-mail open','form fill','demo request','unsubscribe'])[1 + (random() * 4)::int],
                           now() - random() * interval '60 days' FROM generate_series(1, 1 + (random() * 20)::int);
        WHEN 1 THEN DELETE FROM crm.activity WHERE lead_id = k AND type = 'page view' AND id % 7 = 0;
        WHEN 2 THEN UPDATE crm.lead SET employees = k WHERE id = k;
        ELSE INSERT INTO crm.activity (lead_id, type, occurred_at) VALUES (k, 'page view', now());
    END CASE;
END $$;
SQL
load() {
    { echo "SELECT setseed(0.$1);"
      for i in $(seq 1 150); do echo "SELECT crm.load_step();"; done; } |
        psql -X -q -At -p "$coord" >/dev/null 2>"$dir/load$1.err"
}
for c in 1 2 3 4; do load $c & done
wait
echo "# citus: multi-shard batches cancelled by Citus's distributed deadlock detection: $(cat "$dir"/load*.err | grep -c 'distributed deadlock' || true)"
check "4 clients loaded without other errors" "$(grep -h '^ERROR' "$dir"/load*.err | grep -v 'distributed deadlock' | head -3)" ""
check "stored == recomputed after the randomized load" "$(mismatches)" 0

# Rebalancing: a shard group (leads, activities, state, history of those leads) moves to
# another node with its triggers; that node scores its leads from then on.
moved=$(q -c "SELECT lead_id FROM leadscore.lead_score WHERE model = 'demo' AND score > 0 AND score < 50 ORDER BY lead_id LIMIT 1")
shard=$(q -c "SELECT get_shard_id_for_distribution_column('crm.activity', $moved)")
from=$(q -c "SELECT nodeport FROM pg_dist_shard_placement WHERE shardid = $shard")
to=$(q -c "SELECT nodeport FROM pg_dist_node WHERE shouldhaveshards AND nodeport <> $from ORDER BY nodeport LIMIT 1")
q -c "SELECT citus_move_shard_placement($shard, '127.0.0.1', $from, '127.0.0.1', $to, shard_transfer_mode => 'block_writes')" >/dev/null
before=$(q -c "SELECT score FROM leadscore.lead_score WHERE model = 'demo' AND lead_id = '$moved'")
q -c "INSERT INTO crm.activity (lead_id, type, occurred_at) VALUES ($moved, 'webinar', now())"
check "after a shard move the new node scores the moved leads" \
    "$(q -c "SELECT nodeport FROM pg_dist_shard_placement WHERE shardid = $shard")|$(q -c "SELECT score > $before FROM leadscore.lead_score WHERE model = 'demo' AND lead_id = '$moved'")|$(mismatches)" "$to|t|0"

# TRUNCATE of the distributed tables (Citus empties the shards in its own truncate trigger;
# leadscore's comes after it).
q -c "TRUNCATE crm.activity"
check "TRUNCATE of the activities leaves every lead its fit score alone" \
    "$(q -c "SELECT count(*) FILTER (WHERE engagement_score <> 0) || '|' || count(*) FROM leadscore.lead_score WHERE model = 'demo'")|$(mismatches)" "0|400|0"
q -c "TRUNCATE crm.lead"
check "TRUNCATE of the leads removes their state" "$(q -c "SELECT count(*) FROM leadscore.lead_score WHERE model = 'demo'")" 0

q -c "SELECT leadscore.untrack('demo')" >/dev/null
check "untrack() drops the distributed state and history, and its triggers" \
    "$(q -c "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'leadscore.state_%'")|$(q -c "SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('crm.activity'::regclass, 'crm.lead'::regclass) AND NOT tgisinternal")" "0|0"

if [ "$fail" = 0 ]; then echo "citus: all $n checks passed"; fi
exit $fail
