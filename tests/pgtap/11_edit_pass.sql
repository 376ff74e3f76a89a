-- Rule edits write the stored rows they change in place (StateStore::rewrite_each): every row
-- read through the table AM, the leads of a few keys through the key index, many keys by
-- reading every row and keeping theirs; summaries pruned past the edit's time go to the SQL
-- path, which rebuilds them from raw rows. Each case ends with every stored row equal to a
-- from-scratch recompute as of its scored_at, rows the edit does not concern untouched,
-- stage history and scored_at as the edit kind wants; an unreadable stored summary stops the
-- edit with its own error and changes nothing.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SET LOCAL client_min_messages = warning;
SELECT plan(61);

CREATE SCHEMA ep;
CREATE TABLE ep.acts (id bigserial PRIMARY KEY, lead_id int, type text, at timestamptz);
CREATE INDEX ON ep.acts (lead_id);
CREATE INDEX ON ep.acts (type);
INSERT INTO leadscore.model (name) VALUES ('ep');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, expires_after) VALUES
    ('ep', 'open', 'open', 1, '10 days'),
    ('ep', 'rare', 'rare', 7, NULL),
    ('ep', 'mid', 'mid', 3, NULL);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('ep', 'warm', 10);
-- 300 leads: 1-300 open e-mails (lead n: n % 9 opens, some long expired), 3 have a rare
-- activity, 120 a mid one; the opens are most of the rows, mid ones under a tenth.
INSERT INTO ep.acts (lead_id, type, at)
SELECT l, 'open', now() - (g * 4) * interval '1 day' FROM generate_series(1, 300) l, generate_series(1, 9) g WHERE g <= l % 9 + 1;
INSERT INTO ep.acts (lead_id, type, at) SELECT l, 'rare', now() - interval '3 days' FROM unnest(ARRAY[5, 150, 299]) l;
INSERT INTO ep.acts (lead_id, type, at) SELECT l, 'mid', now() - interval '2 days' FROM generate_series(1, 120) l;
SELECT leadscore.track('ep', 'ep.acts', 'lead_id', 'type', 'at');
ANALYZE ep.acts;
-- (Statistics: the pass picks the key index or a full read by the table's row count.)
DO $$ BEGIN EXECUTE format('ANALYZE leadscore.%I', (SELECT state_table FROM leadscore.tracking WHERE model = 'ep')); END $$;

-- Rows not equal to a recompute as of their scored_at (score, fit, engagement, stage, disqualified).
CREATE FUNCTION ep.wrong() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM leadscore.lead_score s
     WHERE s.model = 'ep' AND NOT EXISTS (
        SELECT 1 FROM leadscore.scores_as_of('ep', s.scored_at) f
         WHERE f.lead_id = s.lead_id
           AND (f.score, f.fit_score, f.engagement_score, f.stage, f.disqualified)
               IS NOT DISTINCT FROM (s.score, s.fit_score, s.engagement_score, s.stage, s.disqualified)) $$;
-- (A row's version: its ctid, new at every write within this one transaction.)
CREATE TEMP TABLE before AS SELECT lead_id, score, scored_at, ctid::text AS version FROM leadscore.lead_state WHERE model = 'ep';
CREATE FUNCTION ep.rewritten(leads int[] DEFAULT NULL) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM leadscore.lead_state s JOIN before b USING (lead_id)
     WHERE s.model = 'ep' AND s.ctid::text <> b.version AND (leads IS NULL OR s.lead_id::int = ANY(leads)) $$;

SELECT is(ep.wrong(), 0::bigint, 'tracked: every stored row equals a recompute');

-- A few keys (the leads with a rare activity): through the key index.
UPDATE leadscore.activity_rule SET points = 9 WHERE model = 'ep' AND name = 'rare';
SELECT is(ep.wrong(), 0::bigint, 'points of a rule three leads have: every stored row equals a recompute');
SELECT is((SELECT array_agg(lead_id::int ORDER BY lead_id::int) FROM leadscore.lead_score s JOIN before b USING (lead_id)
            WHERE s.model = 'ep' AND s.score <> b.score), ARRAY[5, 150, 299], 'exactly those three leads changed, by 2 points');
SELECT is(ep.rewritten(), 3::bigint, 'and only their rows were written');

-- Many keys (120 of 300 leads with a mid activity, a small share of the rows): every row read, theirs kept.
UPDATE leadscore.activity_rule SET points = 4 WHERE model = 'ep' AND name = 'mid';
SELECT is(ep.wrong(), 0::bigint, 'points of a rule 120 leads have: every stored row equals a recompute');
SELECT is((SELECT count(*) FROM leadscore.lead_score s JOIN before b USING (lead_id)
            WHERE s.model = 'ep' AND s.score - b.score = CASE WHEN lead_id::int IN (5, 150, 299) THEN 3 ELSE 1 END
              AND s.lead_id::int <= 120), 120::bigint, 'the 120 leads gained a point (those with a rare activity 3)');
SELECT is(ep.rewritten(ARRAY(SELECT generate_series(121, 300))), 2::bigint, 'of the others, only the two rare ones were written');

-- Every row: a stage threshold (results only, scored_at kept) and a common rule's points.
CREATE TEMP TABLE history_before AS SELECT count(*) AS n FROM leadscore.stage_history WHERE model = 'ep';
UPDATE leadscore.stage SET min_score = 11 WHERE model = 'ep';
SELECT is(ep.wrong(), 0::bigint, 'stage threshold: every stored row equals a recompute');
SELECT is((SELECT count(*) FROM leadscore.lead_score s JOIN before b USING (lead_id) WHERE s.model = 'ep' AND s.scored_at <> b.scored_at),
          0::bigint, 'a stage edit keeps each row''s scored_at');
SELECT is((SELECT count(*) FROM leadscore.stage_history WHERE model = 'ep') - (SELECT n FROM history_before),
          (SELECT count(*) FROM leadscore.lead_score WHERE model = 'ep' AND score >= 10 AND score < 11),
          'every lead that left warm has its stage change recorded');
UPDATE leadscore.activity_rule SET points = 2 WHERE model = 'ep' AND name = 'open';
SELECT is(ep.wrong(), 0::bigint, 'points of the rule every lead has: every stored row equals a recompute');

-- What rules match (a condition, a new rule): only the leads whose summary changes are written,
-- the others keep their row (and its scored_at) even where time has moved their score.
DROP TABLE before;
CREATE TEMP TABLE before AS SELECT lead_id, score, scored_at, ctid::text AS version FROM leadscore.lead_state WHERE model = 'ep';
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value)
SELECT id, 'lead_id', '<>', ARRAY['150'] FROM leadscore.activity_rule WHERE model = 'ep' AND name = 'rare';
SELECT is(ep.wrong(), 0::bigint, 'a condition that drops one lead''s rare activity: every stored row equals a recompute');
SELECT is((SELECT array_agg(lead_id::int) FROM leadscore.lead_state s JOIN before b USING (lead_id)
            WHERE s.model = 'ep' AND s.ctid::text <> b.version), ARRAY[150], 'only that lead''s row was written');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('ep', 'mid again', 'mid', 1);
SELECT is(ep.wrong(), 0::bigint, 'a new rule for mid activities: every stored row equals a recompute');
SELECT is(ep.rewritten(ARRAY(SELECT generate_series(121, 300))), 1::bigint, 'no lead without a mid activity was written (150 was before)');
SELECT is(ep.rewritten(ARRAY(SELECT generate_series(1, 120))), 120::bigint, 'every lead with one was');

-- Summaries pruned past now (a refresh as of a month ahead drops the opens expired by then):
-- an edit as of now rebuilds those leads from raw rows.
SELECT ok(leadscore.refresh('ep', now() + interval '30 days') > 0, 'a refresh a month ahead changed scores');
SELECT ok((SELECT count(*) FROM leadscore.lead_state WHERE model = 'ep' AND get_byte(ltrim(summary, '\x00'::bytea), 0) IN (2, 3)) > 0,
          'and pruned summaries past now');
UPDATE leadscore.activity_rule SET points = 3 WHERE model = 'ep' AND name = 'open';
SELECT is(ep.wrong(), 0::bigint, 'points edit over pruned summaries: every stored row equals a recompute');
SELECT is((SELECT count(*) FROM leadscore.lead_score WHERE model = 'ep' AND scored_at > now()), 0::bigint,
          'every lead with opens is scored as of the edit again');

-- An unreadable stored summary: the edit fails with its own error, nothing changes.
UPDATE leadscore.lead_state SET summary = '\x09ff'::bytea WHERE model = 'ep' AND lead_id = '7';
CREATE TEMP TABLE snap AS SELECT lead_id, score, ctid::text AS version FROM leadscore.lead_state WHERE model = 'ep';
SELECT throws_ok($$UPDATE leadscore.activity_rule SET points = 4 WHERE model = 'ep' AND name = 'open'$$, 'XX001',
                 'leadscore: stored state of lead 7 is unreadable: leadscore summary has an unknown format version',
                 'an edit over an unreadable summary stops with data_corrupted, naming the lead');
SELECT is((SELECT count(*) FROM leadscore.lead_state s JOIN snap USING (lead_id) WHERE s.model = 'ep' AND s.ctid::text <> snap.version)
          + (SELECT count(*) FROM leadscore.activity_rule WHERE model = 'ep' AND name = 'open' AND points <> 3),
          0::bigint, 'and leaves every row and the rule as they were');

-- Lead-side condition edits of a one-group rule: only the leads whose lead-side test now
-- disagrees with their summary change (cleared, or rematched from their own rows: by key for a
-- few leads, by one scan of the type for many); two-group rules and activity-side changes take
-- the full rematch. 60 leads, lead n: seats 10 n, CEO when n % 7 = 0; two demo days each for
-- leads 1-56 (channel live for even n, recorded for odd), none for 57-60.
CREATE TABLE ep.leads (id int PRIMARY KEY, title text, seats int);
CREATE TABLE ep.acts2 (id bigserial PRIMARY KEY, lead_id int, type text, at timestamptz, channel text);
CREATE INDEX ON ep.acts2 (lead_id);
INSERT INTO ep.leads SELECT n, CASE WHEN n % 7 = 0 THEN 'CEO' ELSE 'Engineer' END, 10 * n FROM generate_series(1, 60) n;
INSERT INTO ep.acts2 (lead_id, type, at, channel)
SELECT n, 'demo_day', now() - (d || ' days')::interval, CASE WHEN n % 2 = 0 THEN 'live' ELSE 'recorded' END
  FROM generate_series(1, 56) n, generate_series(1, 2) d;
INSERT INTO leadscore.model (name) VALUES ('el');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES
    (9101, 'el', 'demo day of a big lead', 'demo_day', 5),
    (9102, 'el', 'demo day of a very big lead or a CEO', 'demo_day', 3),
    (9103, 'el', 'live demo day of a big lead', 'demo_day', 2);
INSERT INTO leadscore.activity_condition (id, rule_id, grp, attribute, op, value) VALUES
    (9201, 9101, 1, 'lead.seats', '>=', '{100}'),
    (9203, 9102, 1, 'lead.seats', '>=', '{500}'),
    (9204, 9102, 2, 'lead.title', '=', '{CEO}'),
    (9205, 9103, 1, 'lead.seats', '>=', '{100}'),
    (9206, 9103, 1, 'channel', '=', '{live}');
SELECT leadscore.track('el', 'ep.acts2', 'lead_id', 'type', 'at', 'ep.leads', 'id');
CREATE FUNCTION ep.el_wrong() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM leadscore.lead_score s
     WHERE s.model = 'el' AND (s.score <> leadscore.score('el', s.lead_id::int, s.scored_at) OR NOT EXISTS (
        SELECT 1 FROM leadscore.scores_as_of('el', s.scored_at) f
         WHERE f.lead_id = s.lead_id AND (f.score, f.engagement_score, f.stage)
               IS NOT DISTINCT FROM (s.score, s.engagement_score, s.stage))) $$;
CREATE FUNCTION ep.el_points(rule_key bigint) RETURNS int[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(l.id ORDER BY l.id), '{}') FROM ep.leads l
     WHERE EXISTS (SELECT 1 FROM leadscore.explain('el', l.id) e WHERE e.rule_id = rule_key AND e.points <> 0) $$;
CREATE TEMP TABLE el_before (lead_id text, version text);
CREATE FUNCTION ep.el_mark() RETURNS void LANGUAGE sql AS $$
    DELETE FROM el_before;
    INSERT INTO el_before SELECT lead_id, ctid::text FROM leadscore.lead_state WHERE model = 'el' $$;
CREATE FUNCTION ep.el_rewritten() RETURNS int[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(s.lead_id::int ORDER BY s.lead_id::int), '{}') FROM leadscore.lead_state s
      JOIN el_before b USING (lead_id) WHERE s.model = 'el' AND s.ctid::text <> b.version $$;
SELECT is(ep.el_wrong(), 0::bigint, 'lead-side rules tracked: every stored row equals a recompute');
SELECT is(ep.el_points(9101), ARRAY(SELECT generate_series(10, 56)), 'demo days of leads with 100+ seats count');

SELECT ep.el_mark();
UPDATE leadscore.activity_condition SET value = '{300}' WHERE id = 9201;
SELECT is(ep.el_wrong(), 0::bigint, 'lead-side test tightened (seats >= 300): exact');
SELECT is(ep.el_points(9101), ARRAY(SELECT generate_series(30, 56)), 'only leads with 300+ seats keep them');
SELECT is(ep.el_rewritten(), ARRAY(SELECT generate_series(10, 29)), 'only the leads that lost them were written');
SELECT ep.el_mark();
UPDATE leadscore.activity_condition SET value = '{250}' WHERE id = 9201;
SELECT is(ep.el_wrong(), 0::bigint, 'loosened a little (seats >= 250; 9 leads read by key): exact');
SELECT is(ep.el_rewritten(), ARRAY[25, 26, 27, 28, 29], 'only the leads that gained were written');
UPDATE leadscore.activity_condition SET value = '{0}' WHERE id = 9201;
SELECT is(ep.el_wrong(), 0::bigint, 'loosened for every lead (28 leads: one scan of the type): exact');
SELECT is(ep.el_points(9101), ARRAY(SELECT generate_series(1, 56)), 'every demo day counts');
SELECT ep.el_mark();
UPDATE leadscore.activity_condition SET value = '{300}' WHERE id = 9205;
SELECT is(ep.el_wrong(), 0::bigint, 'the lead-side test of a rule with an activity-side one too: exact');
SELECT is(ep.el_points(9103), ARRAY(SELECT generate_series(30, 56, 2)), 'live demo days of leads with 300+ seats');
SELECT is(ep.el_rewritten(), ARRAY(SELECT generate_series(10, 28, 2)), 'only the leads that lost them were written');
UPDATE leadscore.activity_condition SET value = '{450}' WHERE id = 9203;
SELECT is(ep.el_wrong(), 0::bigint, 'a two-group rule''s lead-side test (full rematch): exact');
SELECT is(ep.el_points(9102), ARRAY[7, 14, 21, 28, 35, 42, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56],
          'CEOs or 450+ seats, with demo days');
UPDATE leadscore.activity_condition SET value = '{recorded}' WHERE id = 9206;
SELECT is(ep.el_wrong(), 0::bigint, 'an activity-side test (full rematch): exact');
SELECT is(ep.el_points(9103), ARRAY(SELECT generate_series(31, 55, 2)), 'recorded demo days of leads with 300+ seats');
DELETE FROM leadscore.activity_condition WHERE id = 9201;
SELECT is(ep.el_wrong(), 0::bigint, 'a one-group rule''s only lead-side test deleted: exact');
SELECT is(ep.el_points(9101), ARRAY(SELECT generate_series(1, 56)), 'every demo day counts');
SELECT ep.el_mark();
INSERT INTO leadscore.activity_condition (id, rule_id, grp, attribute, op, value) VALUES (9207, 9101, 1, 'lead.title', '=', '{CEO}');
SELECT is(ep.el_wrong(), 0::bigint, 'a lead-side test added to it: exact');
SELECT is(ep.el_points(9101), ARRAY[7, 14, 21, 28, 35, 42, 49, 56], 'demo days of CEOs');
SELECT is(ep.el_rewritten(), ARRAY(SELECT n FROM generate_series(1, 56) n WHERE n % 7 <> 0), 'every other lead with demo days was written');
INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value) VALUES (9101, 2, 'lead.seats', '>=', '{590}');
SELECT is(ep.el_wrong(), 0::bigint, 'a second group added (full rematch): exact');
UPDATE ep.leads SET seats = 600 WHERE id = 50;
SELECT is(ep.el_points(9101), ARRAY[7, 14, 21, 28, 35, 42, 49, 50, 56], 'and live scoring follows the leads table');
SELECT is(ep.el_wrong(), 0::bigint, 'exact');

-- Points-only fit edits: a lead's stored fit moves by the points changes of the edited rules it
-- passes (only their tests are read); the leads that pass none are not written. Other fit
-- edits read every lead's fit again.
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points, disqualify) VALUES
    (9301, 'el', 'CEO', 'title', '=', '{CEO}', 10, false),
    (9302, 'el', 'big', NULL, NULL, NULL, 4, false),
    (9303, 'el', 'tiny', 'seats', '<', '{30}', 0, true);
-- (big: 400+ seats, or a CEO with 300+)
INSERT INTO leadscore.fit_condition (rule_id, grp, attribute, op, value) VALUES
    (9302, 1, 'seats', '>=', '{400}'), (9302, 2, 'title', '=', '{CEO}'), (9302, 2, 'seats', '>=', '{300}');
CREATE FUNCTION ep.el_fit_wrong() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM leadscore.lead_score s JOIN leadscore.scores_as_of('el', now()) f USING (lead_id)
     WHERE s.model = 'el' AND (s.fit_score, s.disqualified) IS DISTINCT FROM (f.fit_score, f.disqualified) $$;
SELECT is(ep.el_fit_wrong(), 0::bigint, 'fit rules added: every stored fit equals a recompute');
SELECT ep.el_mark();
UPDATE leadscore.fit_rule SET points = 12 WHERE id = 9301;
SELECT is(ep.el_wrong() + ep.el_fit_wrong(), 0::bigint, 'points of one fit rule: exact');
SELECT is(ep.el_rewritten(), ARRAY(SELECT n FROM generate_series(7, 56, 7) n), 'only the CEOs were written');
SELECT is((SELECT array_agg(fit_score ORDER BY lead_id::int) FROM leadscore.lead_score WHERE model = 'el' AND lead_id::int IN (7, 35, 42)),
          ARRAY[12, 16, 16]::numeric[], 'a CEO gains 2 points, 4 more when big');
SELECT ep.el_mark();
UPDATE leadscore.fit_rule SET points = points + 1, name = name || ' (v2)' WHERE id IN (9301, 9302);
SELECT is(ep.el_wrong() + ep.el_fit_wrong(), 0::bigint, 'points of two rules (and a rename): exact');
SELECT is(ep.el_rewritten(), ARRAY(SELECT n FROM generate_series(7, 60) n WHERE n % 7 = 0 OR n >= 40), 'only the leads that pass either were written');
UPDATE leadscore.fit_rule SET points = -5 WHERE id = 9303;
SELECT is(ep.el_wrong() + ep.el_fit_wrong(), 0::bigint, 'points of a disqualifying rule (leads 1 and 2, disqualified by fit): exact');
SELECT is((SELECT array_agg(fit_score ORDER BY lead_id::int) FROM leadscore.lead_score WHERE model = 'el' AND lead_id::int IN (1, 2, 3)),
          ARRAY[-5, -5, 0]::numeric[], 'their fit moved by -5');
UPDATE leadscore.fit_rule SET points = -6, value = '{20}' WHERE id = 9303;
SELECT is(ep.el_wrong() + ep.el_fit_wrong(), 0::bigint, 'points and a test changed together (every fit read again): exact');
UPDATE leadscore.fit_rule SET points = 2, multiply_by = 'seats' WHERE id = 9302;
UPDATE leadscore.fit_rule SET points = 3 WHERE id = 9302;
SELECT is(ep.el_wrong() + ep.el_fit_wrong(), 0::bigint, 'points of a multiply_by rule (every fit read again): exact');
UPDATE leadscore.fit_rule SET enabled = false WHERE id = 9301;
SELECT ep.el_mark();
UPDATE leadscore.fit_rule SET points = 99 WHERE id = 9301;
SELECT is(ep.el_rewritten(), '{}'::int[], 'points of a disabled rule: nothing written');
SELECT is(ep.el_wrong() + ep.el_fit_wrong(), 0::bigint, 'exact');
UPDATE leadscore.fit_rule SET enabled = true WHERE id = 9301;
-- One query that also changes other fit inputs (data-modifying CTEs: every AFTER trigger fires
-- at its end, seeing the final rules): the points are not added twice.
WITH c AS (UPDATE leadscore.fit_condition SET value = '{350}' WHERE rule_id = 9302 AND grp = 1 RETURNING rule_id)
UPDATE leadscore.fit_rule SET points = points + 10 WHERE id = 9301;
SELECT is(ep.el_wrong() + ep.el_fit_wrong(), 0::bigint, 'points and a fit condition in one query: exact');
WITH r AS (UPDATE leadscore.fit_rule SET points = points - 10 WHERE id = 9301 RETURNING id)
UPDATE leadscore.fit_condition SET value = '{400}' WHERE rule_id = 9302 AND grp = 1;
SELECT is(ep.el_wrong() + ep.el_fit_wrong(), 0::bigint, 'the same, the other way round: exact');
WITH l AS (UPDATE ep.leads SET title = 'CEO' WHERE id IN (1, 2, 3) RETURNING id)
UPDATE leadscore.fit_rule SET points = points + 5 WHERE id = 9301;
SELECT is(ep.el_wrong() + ep.el_fit_wrong(), 0::bigint, 'points and leads that now pass the rule in one query: exact');

SELECT * FROM finish();
ROLLBACK;
