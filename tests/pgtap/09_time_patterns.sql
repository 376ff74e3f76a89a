-- Time patterns and gone-quiet rules, live and through refresh(): "3 pricing visits in 7
-- days, once", "more than once", a 30-day cooldown, and a rule that subtracts points when a
-- lead has not visited for 14 days. Expected values are worked out by hand in the comments.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SELECT plan(25);

CREATE SCHEMA crm_t;
CREATE TABLE crm_t.acts (id bigserial PRIMARY KEY, lead_id int, type text, url text, at timestamptz);
CREATE INDEX ON crm_t.acts (lead_id);
INSERT INTO leadscore.model (name) VALUES ('tp');
INSERT INTO leadscore.activity_rule (model, name, activity_type, attribute, op, value, points, min_count, within, once)
VALUES ('tp', 'pricing 3x in 7 days', 'page_view', 'url', '=', '{/pricing}', 20, 3, '7 days', true);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, min_count)
VALUES ('tp', 'webinar more than once', 'webinar', 5, 2);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, cooldown)
VALUES ('tp', 'open, once a month', 'open', 2, '30 days');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, quiet_for)
VALUES ('tp', 'gone quiet', 'visit', -10, '14 days');
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('tp', 'warm', 10);

-- Lead 1: pricing views 20, 10, 5 and 1 days ago: no 7-day window holds three of them.
INSERT INTO crm_t.acts (lead_id, type, url, at)
SELECT 1, 'page_view', '/pricing', now() - d * interval '1 day' FROM unnest(ARRAY[20, 10, 5, 1]) d;
-- Lead 2: one webinar. Lead 3: opens 40, 35 and 5 days ago. Lead 4: a visit 20 days ago.
-- Lead 5: a visit 10 days ago.
INSERT INTO crm_t.acts (lead_id, type, at) VALUES
    (2, 'webinar', now() - interval '3 days'),
    (3, 'open', now() - interval '40 days'), (3, 'open', now() - interval '35 days'), (3, 'open', now() - interval '5 days'),
    (4, 'visit', now() - interval '20 days'),
    (5, 'visit', now() - interval '10 days');
SELECT is(leadscore.track('tp', 'crm_t.acts', 'lead_id', 'type', 'at'), 5::bigint, 'track() scores five leads');

CREATE FUNCTION pg_temp.stored(lead int) RETURNS numeric LANGUAGE sql AS
    $$ SELECT score FROM leadscore.lead_score WHERE model = 'tp' AND lead_id = lead::text $$;
CREATE FUNCTION pg_temp.exact() RETURNS bigint LANGUAGE sql AS
    $$ SELECT count(*) FROM leadscore.lead_score s WHERE s.model = 'tp'
        AND s.score IS DISTINCT FROM leadscore.score('tp', s.lead_id::int, s.scored_at) $$;

SELECT is(pg_temp.stored(1), 0::numeric, 'four pricing views, never three within 7 days: 0');
INSERT INTO crm_t.acts (lead_id, type, url, at) VALUES (1, 'page_view', '/pricing', now() - interval '3 days');
-- The view 3 days ago has 10, 5 and 3 days ago in [t - 7 days, t]: the third of the window.
SELECT is(pg_temp.stored(1), 20::numeric, 'a view 3 days ago makes three within 7 days: 20, in the same statement');
INSERT INTO crm_t.acts (lead_id, type, url, at) VALUES (1, 'page_view', '/pricing', now() - interval '2 days');
SELECT is(pg_temp.stored(1), 20::numeric, 'more qualifying views still count once');
INSERT INTO crm_t.acts (lead_id, type, url, at) VALUES (6, 'page_view', '/pricing', now() - interval '8 days'),
    (6, 'page_view', '/pricing', now() - interval '4 days'), (6, 'page_view', '/pricing', now() - interval '1 day');
SELECT is(pg_temp.stored(6), 20::numeric, 'three views within exactly 7 days, in one statement: 20');
SELECT is(leadscore.score('tp', 6, now() - interval '2 days'), 0::numeric, 'as of before the third view: 0');

SELECT is(pg_temp.stored(2), 0::numeric, 'one webinar is not more than once');
INSERT INTO crm_t.acts (lead_id, type, at) VALUES (2, 'webinar', now() - interval '1 day');
SELECT is(pg_temp.stored(2), 5::numeric, 'the second webinar counts');
DELETE FROM crm_t.acts WHERE lead_id = 2 AND at < now() - interval '2 days';
SELECT is(pg_temp.stored(2), 0::numeric, 'deleting the first: the remaining one is the first again');

-- Opens 40 and 5 days ago count; 35 days ago is within 30 days of the counted one at 40.
SELECT is(pg_temp.stored(3), 4::numeric, 'cooldown: the open 35 days ago does not count (4)');
SELECT is((SELECT occurrences FROM leadscore.explain('tp', 3) WHERE rule = 'open, once a month'), 2::bigint,
          'explain() shows the two counted opens');
DELETE FROM crm_t.acts WHERE lead_id = 3 AND at < now() - interval '38 days';
-- Left: 35 and 5 days ago; 5 days ago is exactly the cooldown after 35 days ago, so it counts.
SELECT is(pg_temp.stored(3), 4::numeric, 'deleting the first: 35 days ago counts, and 5 days ago at exactly the cooldown (4)');
UPDATE crm_t.acts SET at = now() - interval '6 days' WHERE lead_id = 3 AND at > now() - interval '10 days';
SELECT is(pg_temp.stored(3), 2::numeric, 'moved to 6 days ago it falls inside the cooldown (2)');
INSERT INTO crm_t.acts (lead_id, type, at) VALUES (3, 'open', now() - interval '37 days');
-- Counted now: 37 days ago, then 6 days ago (31 days later); 35 days ago is skipped.
SELECT is(pg_temp.stored(3), 4::numeric, 'a backdated open starts the cooldown earlier: 6 days ago counts again (4)');

SELECT is(pg_temp.stored(4), -10::numeric, 'a visit 20 days ago: gone quiet (-10)');
SELECT is(pg_temp.stored(5), 0::numeric, 'a visit 10 days ago: not yet quiet');
INSERT INTO crm_t.acts (lead_id, type, at) VALUES (4, 'visit', now());
SELECT is(pg_temp.stored(4), 0::numeric, 'a new visit ends the quiet spell in the same transaction');

-- Lead 5 comes due 14 days after its visit, 4 days from now; lead 4 18 days after its last.
SELECT is(leadscore.refresh('tp', now() + interval '3 days'), 0::bigint, 'refresh before anyone is due: nothing');
SELECT is(leadscore.refresh('tp', now() + interval '5 days'), 1::bigint, 'refresh when lead 5 is due: one lead');
SELECT is(pg_temp.stored(5), -10::numeric, 'lead 5 has gone quiet');
SELECT is(pg_temp.stored(4), 0::numeric, 'lead 4 has not');
SELECT is(pg_temp.exact(), 0::bigint, 'every stored score equals a recompute as of its scored_at');
-- rescore() recomputes as of now, before lead 5's quiet time: only lead 5 changes back.
SELECT is(leadscore.rescore('tp'), 1::bigint, 'a rescore as of now changes only the lead refreshed ahead');
SELECT is(pg_temp.stored(5), 0::numeric, 'as of now lead 5 is not quiet yet');
SELECT is(pg_temp.exact(), 0::bigint, 'still every stored score equals a recompute');

SELECT * FROM finish();
ROLLBACK;
