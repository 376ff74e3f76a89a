-- track(), rescore() and scores_as_of() read the whole activity table with parallel workers
-- where they may: each worker matches a share of the blocks into partial summaries that the
-- leader merges. The stored rows (summaries byte for byte) equal those of a serial read, with
-- the leader scanning beside the workers or not, with rules that read the lead's account
-- (the leader hands the workers its leads' condition results); a worker's error reaches the
-- caller with its SQLSTATE (and "parallel worker" in its context); tables PostgreSQL would
-- not read in parallel (too small, row security) and max_parallel_workers_per_gather = 0
-- are read by the one backend.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SET LOCAL client_min_messages = warning;
SELECT plan(20);

CREATE SCHEMA ps;
CREATE TABLE ps.account (id int PRIMARY KEY, revenue numeric);
CREATE TABLE ps.leads (id int PRIMARY KEY, title text, account_id int);
CREATE TABLE ps.acts (id bigserial PRIMARY KEY, lead_id int, type text, url text, at timestamptz, amount numeric);
SELECT setseed(0.1212);
INSERT INTO ps.account SELECT i, CASE WHEN i % 3 = 0 THEN 2000000 ELSE 10 END FROM generate_series(1, 50) i;
INSERT INTO ps.leads SELECT i, (ARRAY['CEO', 'engineer', 'student'])[1 + i % 3], 1 + i % 60 FROM generate_series(1, 1500) i;
-- 60k rows in random lead order, so every lead has rows in many blocks; leads 1501-1600 are
-- not in the leads table; some keys, types, times and amounts are NULL.
INSERT INTO ps.acts (lead_id, type, url, at, amount)
SELECT CASE WHEN random() < 0.01 THEN NULL ELSE 1 + floor(random() * 1600)::int END,
       CASE WHEN random() < 0.01 THEN NULL ELSE (ARRAY['open', 'click', 'visit', 'form', 'buy', 'demo'])[1 + floor(random() * 6)::int] END,
       CASE WHEN random() < 0.3 THEN '/pricing' ELSE '/blog' END,
       CASE WHEN random() < 0.01 THEN NULL ELSE now() - random() * interval '60 days' END,
       CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 100)::numeric, 2) END
  FROM generate_series(1, 60000);

INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('ps', -100, 500);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once, max_count, max_points, expires_after, half_life)
VALUES ('ps', 'open',  'open',  1,   false, NULL, NULL, '30 days', NULL),
       ('ps', 'click', 'click', 2,   false, 5,    NULL, NULL,      '10 days'),
       ('ps', 'form',  'form',  10,  true,  NULL, NULL, NULL,      NULL),
       ('ps', 'visit', 'visit', 0.5, false, NULL, 20,   NULL,      NULL);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, multiply_by) VALUES ('ps', 'buy', 'buy', 0.1, 'amount');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, min_count, within) VALUES ('ps', 'demo2', 'demo', 6, 2, '7 days');
INSERT INTO leadscore.activity_rule (model, name, activity_type, attribute, op, value, points)
VALUES ('ps', 'pricing', 'visit', 'url', '=', '{/pricing}', 3);
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES ('ps', 'ceo', 'title', '=', '{CEO}', 15);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('ps', 'warm', 20), ('ps', 'hot', 60);

-- Two workers read every row (the leader only merges what they send).
ALTER TABLE ps.acts SET (parallel_workers = 2);
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;

CREATE FUNCTION ps.state() RETURNS TABLE (lead_id text, score numeric, fit_score numeric, engagement_score numeric,
                                          stage text, disqualified boolean, summary bytea)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT lead_id, score, fit_score, engagement_score, stage, disqualified, summary FROM leadscore.%I',
                                (SELECT state_table FROM leadscore.tracking WHERE model = 'ps'));
END $$;
-- The SQLSTATE and context of the error sql raises (NULL: none), rolled back.
CREATE FUNCTION ps.error_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE state text; context text;
BEGIN
    EXECUTE sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, context = PG_EXCEPTION_CONTEXT;
    RETURN state || CASE WHEN context LIKE '%parallel worker%' THEN ' in a parallel worker' ELSE ' in the backend' END;
END $$;

SELECT is(leadscore.track('ps', 'ps.acts', 'lead_id', 'type', 'at', 'ps.leads', 'id'), 1500::bigint,
          'track() with parallel workers scores the 1500 leads');
CREATE TEMP TABLE parallel_state AS SELECT * FROM ps.state();
SELECT cmp_ok((SELECT count(*) FROM parallel_state WHERE summary IS NOT NULL), '>', 1400::bigint,
              'nearly every lead has occurrences');

SET LOCAL max_parallel_workers_per_gather = 0;
SELECT is(leadscore.rescore('ps'), 0::bigint, 'a serial rescore after the parallel track() changes no score');
SELECT set_eq('SELECT * FROM ps.state()', 'SELECT * FROM parallel_state',
              'and the stored rows, summaries byte for byte, are those the workers built');
CREATE TEMP TABLE serial_scores AS SELECT * FROM leadscore.scores_as_of('ps', now());
SELECT is((SELECT count(*) FROM serial_scores s JOIN parallel_state p USING (lead_id)
            WHERE (s.score, s.fit_score, s.engagement_score, s.stage, s.disqualified)
                  IS NOT DISTINCT FROM (p.score, p.fit_score, p.engagement_score, p.stage, p.disqualified)), 1500::bigint,
          'every stored row equals a serial recompute');

SET LOCAL max_parallel_workers_per_gather = 2;
SELECT set_eq('SELECT * FROM leadscore.scores_as_of(''ps'', now())', 'SELECT * FROM serial_scores',
              'scores_as_of() with parallel workers returns what it returns serially');

-- The leader scans beside the workers: the same rows.
SET LOCAL parallel_leader_participation = on;
UPDATE ps.acts SET at = at;   -- (new row versions all over the table; the triggers see no change)
SELECT is(leadscore.rescore('ps'), 0::bigint, 'a rescore read by the leader and the workers changes no score');
SELECT set_eq('SELECT * FROM ps.state()', 'SELECT * FROM parallel_state', 'and leaves the same stored rows');
SET LOCAL parallel_leader_participation = off;

-- An activity rule that reads the lead's account: the workers test it from the leader's facts.
INSERT INTO leadscore.relation (model, name, lead_column, target, target_key) VALUES ('ps', 'account', 'account_id', 'ps.account', 'id');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('ps', 'bigbuy', 'buy', 5);
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value)
SELECT id, 'account.revenue', '>=', '{1000000}' FROM leadscore.activity_rule WHERE model = 'ps' AND name = 'bigbuy';
SELECT cmp_ok(leadscore.rescore('ps'), '>=', 0::bigint, 'rescore() with a rule on the account, read by the workers');
CREATE TEMP TABLE account_state AS SELECT * FROM ps.state();
SELECT is((SELECT count(*) FROM account_state a JOIN parallel_state p USING (lead_id) WHERE a.engagement_score > p.engagement_score),
          (SELECT count(DISTINCT a.lead_id) FROM ps.acts a JOIN ps.leads l ON l.id = a.lead_id JOIN ps.account c ON c.id = l.account_id
            WHERE a.type = 'buy' AND a.at IS NOT NULL AND c.revenue >= 1000000),
          'exactly the leads with a purchase whose account makes 1M or more gained points');
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT is(leadscore.rescore('ps'), 0::bigint, 'a serial rescore then changes no score');
SELECT set_eq('SELECT * FROM ps.state()', 'SELECT * FROM account_state', 'and leaves the rows the workers built');
SET LOCAL max_parallel_workers_per_gather = 2;

-- A draft model scored on the tracked model's tables: the workers read the same tables.
INSERT INTO leadscore.model (name) VALUES ('ps draft');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, max_count) VALUES ('ps draft', 'open', 'open', 2, 4);
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE draft_serial AS SELECT * FROM leadscore.scores_as_of('ps draft', now(), 'ps');
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT set_eq('SELECT * FROM leadscore.scores_as_of(''ps draft'', now(), ''ps'')', 'SELECT * FROM draft_serial',
              'a draft model on the tracked tables: workers and the serial read agree');

-- A row whose value overflows a multiply_by rule (inserted with the live triggers off): the
-- worker that reads it raises the error.
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, multiply_by) VALUES ('ps', 'huge', 'huge', 1000, 'amount');
CREATE TEMP TABLE live_triggers AS SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'ps.acts'::regclass AND NOT tgisinternal;
ALTER TABLE ps.acts DISABLE TRIGGER USER;
INSERT INTO ps.acts (lead_id, type, at, amount) VALUES (7, 'huge', now() - interval '1 day', 1e15);
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT * FROM live_triggers LOOP
        EXECUTE format('ALTER TABLE ps.acts %s TRIGGER %I',
                       CASE t.tgenabled WHEN 'R' THEN 'ENABLE REPLICA' WHEN 'A' THEN 'ENABLE ALWAYS' ELSE 'ENABLE' END, t.tgname);
    END LOOP;
END $$;
SELECT is(ps.error_of($$SELECT leadscore.rescore('ps')$$), '22003 in a parallel worker',
          'a worker''s error reaches the caller with its SQLSTATE');
SELECT set_eq('SELECT * FROM ps.state()', 'SELECT * FROM account_state', 'and the failed rescore changed nothing');
SELECT is(ps.error_of($$SELECT count(*) FROM leadscore.scores_as_of('ps', now())$$), '22003 in a parallel worker',
          'scores_as_of() reads with workers too');

-- What PostgreSQL would not read in parallel is read by the backend alone.
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT is(ps.error_of($$SELECT leadscore.rescore('ps')$$), '22003 in the backend',
          'max_parallel_workers_per_gather = 0: no workers');
SET LOCAL max_parallel_workers_per_gather = 2;
ALTER TABLE ps.acts RESET (parallel_workers);
SET LOCAL min_parallel_table_scan_size = '1GB';
SELECT is(ps.error_of($$SELECT leadscore.rescore('ps')$$), '22003 in the backend',
          'a table smaller than min_parallel_table_scan_size: no workers');
SET LOCAL min_parallel_table_scan_size = 0;
SELECT is(ps.error_of($$SELECT leadscore.rescore('ps')$$), '22003 in a parallel worker',
          'min_parallel_table_scan_size = 0: workers');
ALTER TABLE ps.acts ENABLE ROW LEVEL SECURITY;
SELECT is(ps.error_of($$SELECT leadscore.rescore('ps')$$), '22003 in the backend',
          'a table with row security: read through SQL, no workers');

SELECT * FROM finish();
ROLLBACK;
