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
SELECT plan(22);

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

SELECT * FROM finish();
ROLLBACK;
