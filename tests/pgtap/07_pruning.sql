-- Stored summaries drop occurrences that have expired for good (a day or more before the
-- scoring time, in whole weeks). Scores stay exact: deleting or moving a dropped activity
-- rebuilds the lead from raw rows, a backdated activity changes nothing, a rescore agrees.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SELECT plan(15);

CREATE SCHEMA crm_p;
CREATE TABLE crm_p.acts (id bigserial PRIMARY KEY, lead_id int, type text, at timestamptz);
CREATE INDEX ON crm_p.acts (lead_id);
INSERT INTO leadscore.model (name) VALUES ('prune');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, expires_after, max_count) VALUES
    ('prune', 'open', 'open', 1, '30 days', NULL),
    ('prune', 'click', 'click', 3, '10 days', 2),
    ('prune', 'visit', 'visit', 2, NULL, NULL);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once) VALUES ('prune', 'demo', 'demo', 10, true);
-- Lead 1: opens every 5 days, clicks every 3 days, visits every 20 days, about ten months back.
INSERT INTO crm_p.acts (lead_id, type, at) SELECT 1, 'open', now() - g * interval '5 days' FROM generate_series(0, 60) g;
INSERT INTO crm_p.acts (lead_id, type, at) SELECT 1, 'click', now() - g * interval '3 days' FROM generate_series(0, 30) g;
INSERT INTO crm_p.acts (lead_id, type, at) SELECT 1, 'visit', now() - g * interval '20 days' FROM generate_series(0, 10) g;
INSERT INTO crm_p.acts (lead_id, type, at) SELECT 2, 'open', now() - interval '1 hour';
SELECT leadscore.track('prune', 'crm_p.acts', 'lead_id', 'type', 'at');

CREATE FUNCTION pg_temp.stored(lead int) RETURNS numeric LANGUAGE sql AS
    $$ SELECT score FROM leadscore.lead_score WHERE model = 'prune' AND lead_id = lead::text $$;
CREATE FUNCTION pg_temp.marked(lead int) RETURNS boolean LANGUAGE sql AS
    $$ SELECT get_byte(ltrim(summary, '\x00'::bytea), 0) IN (2, 3) FROM leadscore.lead_state WHERE model = 'prune' AND lead_id = lead::text $$;

-- 6 opens within 30 days + 2 of 4 clicks within 10 days (cap 2) + 11 visits (marked: format 2, or 3
-- once the visits, which only count, are kept as a count)
SELECT is(pg_temp.stored(1), 34::numeric, 'scored: 6 opens, 2 capped clicks, 11 visits');
SELECT ok(pg_temp.marked(1), 'the stored summary dropped what expired for good and says from when it is exact');
SELECT ok(NOT pg_temp.marked(2), 'a lead with nothing expired keeps the plain format');

DELETE FROM crm_p.acts WHERE lead_id = 1 AND type = 'open' AND at < now() - interval '200 days';
SELECT is(pg_temp.stored(1), leadscore.score('prune', 1), 'deleting dropped (long expired) activities: still exact');
SELECT is(pg_temp.stored(1), 34::numeric, 'and unchanged');

DELETE FROM crm_p.acts WHERE lead_id = 1 AND type = 'click' AND at > now() - interval '7 days';
SELECT is(pg_temp.stored(1), 31::numeric, 'deleting the newest clicks: the one left counts (31)');

INSERT INTO crm_p.acts (lead_id, type, at) VALUES (1, 'open', now() - interval '200 days');
SELECT is(pg_temp.stored(1), 31::numeric, 'a backdated, long expired open changes nothing');

UPDATE crm_p.acts SET at = now()
 WHERE id = (SELECT id FROM crm_p.acts WHERE lead_id = 1 AND type = 'click' ORDER BY at LIMIT 1);
SELECT is(pg_temp.stored(1), 34::numeric, 'moving a dropped click to now counts it again (34)');

UPDATE crm_p.acts SET lead_id = 2 WHERE lead_id = 1 AND type = 'open' AND at < now() - interval '100 days';
SELECT is(pg_temp.stored(1) || ' / ' || pg_temp.stored(2), leadscore.score('prune', 1) || ' / ' || leadscore.score('prune', 2),
          'moving dropped activities to another lead: both exact');

-- A once rule keeps only its latest occurrence up to the watermark; deleting that one brings
-- an older one back (the lead is rebuilt from raw rows).
INSERT INTO crm_p.acts (lead_id, type, at) SELECT 3, 'demo', now() - g * interval '10 days' FROM generate_series(1, 3) g;
SELECT ok(pg_temp.stored(3) = 10 AND pg_temp.marked(3), 'three demo requests count once; the older two are dropped');
DELETE FROM crm_p.acts WHERE lead_id = 3 AND at > now() - interval '15 days';
SELECT is(pg_temp.stored(3), 10::numeric, 'deleting the kept one: a dropped one counts again');
DELETE FROM crm_p.acts WHERE lead_id = 3;
SELECT is(pg_temp.stored(3), 0::numeric, 'deleting them all: nothing counts');

SELECT is(leadscore.rescore('prune'), 0::bigint, 'a rescore from raw rows changes no score');
SELECT is((SELECT count(*)::int FROM leadscore.lead_score s WHERE s.model = 'prune'
            AND s.score IS DISTINCT FROM leadscore.score('prune', s.lead_id::int)), 0,
          'every stored score equals a from-scratch score');
SELECT ok(pg_temp.marked(1), 'and the rescored summary is pruned again');

SELECT * FROM finish();
ROLLBACK;
