-- Live-scoring invariants, step by step with hand-computed values.
--
-- After track(), every kind of write — multi-row INSERT, INSERT ... SELECT, UPDATE of
-- an activity's type / time / lead, DELETE, TRUNCATE of the activities, lead INSERT /
-- UPDATE of fit columns / DELETE, rule INSERT / UPDATE / DELETE / disable, a model range
-- change, a stage threshold change and list_entry changes — leaves every stored score,
-- fit_score, engagement_score and stage equal to a from-scratch recompute as of the
-- row's scored_at (leadscore.score for the score, leadscore.explain sums per family for
-- fit and engagement, the stage rules evaluated in plain SQL for the stage).
-- Each step also asserts the exact values, computed by hand in the comments.
-- Rolled-back savepoints leave no trace; sticky stages survive refresh() but not a data
-- or rule change; every stage transition is recorded in leadscore.stage_change.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SET LOCAL client_min_messages = warning;
SELECT plan(86);

CREATE SCHEMA inv;
CREATE TABLE inv.leads (id int PRIMARY KEY, title text, email text, employees int);
CREATE TABLE inv.act (id bigserial PRIMARY KEY, lead_id int, type text, url text, occurred_at timestamptz);
CREATE INDEX ON inv.act (lead_id);

-- Independent recompute. A lead is mismatched when its stored score differs from
-- leadscore.score() as of scored_at, its fit/engagement from the explain() sums, its
-- disqualified flag from explain(), or its stage from the stage rules evaluated here
-- (only for non-sticky stages: a sticky stage may legitimately be ahead after refresh).
CREATE FUNCTION inv.mismatches(m text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*)
      FROM leadscore.lead_score ls
     CROSS JOIN LATERAL (
           SELECT coalesce(sum(e.points) FILTER (WHERE e.family = 'fit'), 0) AS fit,
                  coalesce(sum(e.points) FILTER (WHERE e.family = 'engagement'), 0) AS eng,
                  coalesce(bool_or(e.disqualifies), false) AS dq
             FROM leadscore.explain(m, ls.lead_id::int, ls.scored_at) e) x
     CROSS JOIN LATERAL (SELECT leadscore.score(m, ls.lead_id::int, ls.scored_at) AS score) s
     WHERE ls.model = m
       AND (ls.score IS DISTINCT FROM s.score
            OR ls.fit_score IS DISTINCT FROM x.fit
            OR ls.engagement_score IS DISTINCT FROM x.eng
            OR ls.disqualified IS DISTINCT FROM x.dq
            OR ls.score IS DISTINCT FROM (
                   SELECT greatest(coalesce(md.score_min, x.fit + x.eng),
                                   least(coalesce(md.score_max, x.fit + x.eng), x.fit + x.eng))
                     FROM leadscore.model md WHERE md.name = m)
            OR ls.stage IS DISTINCT FROM (
                   CASE WHEN x.dq THEN 'disqualified' ELSE (
                       SELECT st.name FROM leadscore.stage st
                        WHERE st.model = m
                          AND (st.min_score IS NULL OR s.score >= st.min_score)
                          AND (st.min_fit IS NULL OR x.fit >= st.min_fit)
                          AND (st.min_engagement IS NULL OR x.eng >= st.min_engagement)
                        ORDER BY st.min_score DESC NULLS LAST, st.name
                        LIMIT 1) END))
$$;

-- Compact snapshot: "lead:score/fit/engagement/stage" per lead, in key order.
CREATE FUNCTION inv.snap(m text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(format('%s:%s/%s/%s/%s', lead_id, trim_scale(score), trim_scale(fit_score),
                                      trim_scale(engagement_score), coalesce(stage, '-')),
                               ' ' ORDER BY lead_id::int), '')
      FROM leadscore.lead_score WHERE model = m
$$;

-- Model: score in [0, 100].
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('inv', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once, max_count, max_points, expires_after)
VALUES ('inv', 'open',  'email_open',   2,   false, NULL, 10,   '90 days'),
       ('inv', 'demo',  'demo_request', 50,  true,  NULL, NULL, NULL),
       ('inv', 'click', 'link_click',   5,   false, 3,    NULL, NULL),
       ('inv', 'unsub', 'unsubscribe',  -30, false, NULL, NULL, NULL);
INSERT INTO leadscore.activity_rule (model, name, activity_type, attribute, op, value, points)
VALUES ('inv', 'pricing', 'page_view', 'url', 'like', '{%pricing%}', 25);
INSERT INTO leadscore.list_entry (list, value) VALUES ('inv_competitors', 'rival.com');
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points, disqualify)
VALUES ('inv', 'ceo',        'title',     '=',              '{CEO}',                20,  false),
       ('inv', 'big',        'employees', '>=',             '{500}',                10,  false),
       ('inv', 'free mail',  'email',     'domain in list', '{free_email_domains}', -15, false),
       ('inv', 'competitor', 'email',     'domain in list', '{inv_competitors}',    0,   true);
INSERT INTO leadscore.stage (model, name, min_score, min_fit, min_engagement, sticky)
VALUES ('inv', 'IQL', 10, NULL, NULL, false),
       ('inv', 'MQL', 40, NULL, NULL, false),
       ('inv', 'SQL', 65, 20,   30,   false);

INSERT INTO inv.leads VALUES (1, 'CEO', 'ann@acme.com', 1000),  -- fit 20 + 10 = 30
                             (2, 'dev', 'bob@gmail.com', 10),   -- fit -15
                             (3, 'CTO', 'cat@corp.io', 600);    -- fit 10
-- An activity of a lead that is not in the leads table yet: no state until the lead exists.
INSERT INTO inv.act (lead_id, type, occurred_at) VALUES (4, 'demo_request', now() - interval '2 days');

-- 1. track() scores what is there.
SELECT is(leadscore.track('inv', 'inv.act', 'lead_id', 'type', 'occurred_at', 'inv.leads', 'id'), 3::bigint,
          'track() scores the 3 existing leads');
SELECT is(inv.snap('inv'), '1:30/30/0/IQL 2:0/-15/0/- 3:10/10/0/IQL',
          'after track: fit only; lead 2 clamped from -15 to 0');
SELECT is(inv.mismatches('inv'), 0::bigint, 'after track: stored = recompute');
-- The checker itself is not vacuous: it sees a corrupted score, engagement or stage.
SAVEPOINT corrupt;
UPDATE leadscore.lead_state SET score = score + 1 WHERE model = 'inv' AND lead_id = '1';
UPDATE leadscore.lead_state SET engagement_score = 1 WHERE model = 'inv' AND lead_id = '2';
UPDATE leadscore.lead_state SET stage = 'MQL' WHERE model = 'inv' AND lead_id = '3';
SELECT is(inv.mismatches('inv'), 3::bigint, 'the recompute check detects 3 corrupted leads');
ROLLBACK TO SAVEPOINT corrupt;
SELECT is((SELECT count(*) FROM leadscore.lead_score WHERE model = 'inv' AND scored_at = now()), 3::bigint,
          'after track: scored_at is the transaction time');

-- 2. Multi-row INSERT.
INSERT INTO inv.act (lead_id, type, url, occurred_at) VALUES
    (1, 'demo_request', NULL,       now() - interval '1 day'),
    (1, 'email_open',   NULL,       now() - interval '1 hour'),
    (1, 'email_open',   NULL,       now() - interval '2 hours'),
    (1, 'webinar',      NULL,       now() - interval '3 hours'),   -- no rule (yet)
    (2, 'link_click',   NULL,       now() - interval '1 day'),
    (2, 'link_click',   NULL,       now() - interval '2 days'),
    (2, 'link_click',   NULL,       now() - interval '3 days'),
    (2, 'link_click',   NULL,       now() - interval '4 days'),    -- max_count 3: 15
    (3, 'page_view',    '/pricing', now() - interval '5 hours'),
    (3, 'page_view',    '/blog',    now() - interval '6 hours');   -- attribute does not match
-- 1: 30 + 50 + 4 = 84 (SQL: fit 30 >= 20, engagement 54 >= 30); 2: -15 + 15 = 0; 3: 10 + 25 = 35
SELECT is(inv.snap('inv'), '1:84/30/54/SQL 2:0/-15/15/- 3:35/10/25/IQL', 'multi-row insert scored');
SELECT is(inv.mismatches('inv'), 0::bigint, 'multi-row insert: stored = recompute');
SELECT is((SELECT count(*) FROM leadscore.lead_score WHERE model = 'inv' AND lead_id = '4'), 0::bigint,
          'no state for an activity whose lead is not in the leads table');

-- 3. INSERT ... SELECT (COPY-like bulk): 8 opens for lead 3, max_points 10.
INSERT INTO inv.act (lead_id, type, occurred_at)
SELECT 3, 'email_open', now() - g * interval '1 day' FROM generate_series(1, 8) g;
-- 3: 10 + 25 + min(16, 10) = 45 -> MQL
SELECT is(inv.snap('inv'), '1:84/30/54/SQL 2:0/-15/15/- 3:45/10/35/MQL', 'INSERT ... SELECT scored, max_points caps opens at 10');
SELECT is(inv.mismatches('inv'), 0::bigint, 'INSERT ... SELECT: stored = recompute');

-- 4. UPDATE of the activity type: lead 3's /blog page view becomes a demo request.
UPDATE inv.act SET type = 'demo_request' WHERE lead_id = 3 AND url = '/blog';
-- 3: 10 + 25 + 10 + 50 = 95; not SQL because fit 10 < min_fit 20 -> MQL
SELECT is(inv.snap('inv'), '1:84/30/54/SQL 2:0/-15/15/- 3:95/10/85/MQL', 'type update scored; min_fit keeps lead 3 out of SQL');
SELECT is(inv.mismatches('inv'), 0::bigint, 'type update: stored = recompute');

-- 5. UPDATE of the activity time: lead 1's demo moves into the future (does not count yet).
UPDATE inv.act SET occurred_at = now() + interval '1 day' WHERE lead_id = 1 AND type = 'demo_request';
-- 1: 30 + 4 = 34 -> IQL
SELECT is(inv.snap('inv'), '1:34/30/4/IQL 2:0/-15/15/- 3:95/10/85/MQL', 'time update: a future-dated demo does not count');
SELECT is(inv.mismatches('inv'), 0::bigint, 'time update: stored = recompute');
-- and 3 of lead 3's opens move out of the 90-day window.
UPDATE inv.act SET occurred_at = now() - interval '4 months'
 WHERE id IN (SELECT id FROM inv.act WHERE lead_id = 3 AND type = 'email_open' ORDER BY id LIMIT 3);
-- 3: 5 opens left = 10 (still capped) -> unchanged
UPDATE inv.act SET occurred_at = now() - interval '4 months'
 WHERE id IN (SELECT id FROM inv.act WHERE lead_id = 3 AND type = 'email_open' AND occurred_at > now() - interval '90 days'
              ORDER BY id LIMIT 2);
-- 3: 3 opens left = 6 -> 10 + 25 + 6 + 50 = 91
SELECT is(inv.snap('inv'), '1:34/30/4/IQL 2:0/-15/15/- 3:91/10/81/MQL', 'time update: expired opens drop out');
SELECT is(inv.mismatches('inv'), 0::bigint, 'expiry by time update: stored = recompute');

-- 6. UPDATE of the activity's lead: lead 1's (future) demo goes to lead 2, dated an hour ago.
UPDATE inv.act SET lead_id = 2, occurred_at = now() - interval '1 hour' WHERE lead_id = 1 AND type = 'demo_request';
-- 2: -15 + 15 + 50 = 50 -> MQL
SELECT is(inv.snap('inv'), '1:34/30/4/IQL 2:50/-15/65/MQL 3:91/10/81/MQL', 'lead update moves the demo to lead 2');
SELECT is(inv.mismatches('inv'), 0::bigint, 'lead-column update: stored = recompute');

-- 7. DELETE: lead 2's clicks.
DELETE FROM inv.act WHERE lead_id = 2 AND type = 'link_click';
-- 2: -15 + 50 = 35 -> IQL
SELECT is(inv.snap('inv'), '1:34/30/4/IQL 2:35/-15/50/IQL 3:91/10/81/MQL', 'delete scored');
SELECT is(inv.mismatches('inv'), 0::bigint, 'delete: stored = recompute');

-- 8. Lead INSERT: lead 4 already has a demo request.
INSERT INTO inv.leads VALUES (4, 'CFO', 'dan@hotmail.com', 5000);
-- 4: fit 10 - 15 = -5, engagement 50 -> 45 MQL
SELECT is(inv.snap('inv'), '1:34/30/4/IQL 2:35/-15/50/IQL 3:91/10/81/MQL 4:45/-5/50/MQL',
          'lead insert scores the lead''s existing activities');
SELECT is(inv.mismatches('inv'), 0::bigint, 'lead insert: stored = recompute');

-- 9. Lead UPDATE of fit columns.
UPDATE inv.leads SET email = 'bob@acme.com' WHERE id = 2;   -- 2: fit 0 -> 50 MQL
UPDATE inv.leads SET title = 'CEO' WHERE id = 3;            -- 3: fit 30 -> clamp(111) = 100 SQL
SELECT is(inv.snap('inv'), '1:34/30/4/IQL 2:50/0/50/MQL 3:100/30/81/SQL 4:45/-5/50/MQL',
          'fit column updates rescored; 111 clamped to 100');
SELECT is(inv.mismatches('inv'), 0::bigint, 'lead update: stored = recompute');
UPDATE inv.leads SET employees = 499 WHERE id = 1;          -- 1: fit 20 -> 24 IQL
UPDATE inv.leads SET id = 5 WHERE id = 4;                   -- key change: lead 4 becomes lead 5 (no activities)
-- 5: fit -5, engagement 0 -> 0
SELECT is(inv.snap('inv'), '1:24/20/4/IQL 2:50/0/50/MQL 3:100/30/81/SQL 5:0/-5/0/-',
          'fit boundary (499 < 500) and a lead key update');
SELECT is(inv.mismatches('inv'), 0::bigint, 'lead key update: stored = recompute');

-- 10. Lead DELETE.
DELETE FROM inv.leads WHERE id = 5;
SELECT is(inv.snap('inv'), '1:24/20/4/IQL 2:50/0/50/MQL 3:100/30/81/SQL', 'lead delete removes its state');

-- 11. Rule UPDATE: demo 50 -> 60.
UPDATE leadscore.activity_rule SET points = 60 WHERE model = 'inv' AND name = 'demo';
-- 2: 0 + 60 = 60 MQL; 3: 30 + 25 + 6 + 60 = 121 -> 100
SELECT is(inv.snap('inv'), '1:24/20/4/IQL 2:60/0/60/MQL 3:100/30/91/SQL', 'rule points update rescored');
SELECT is(inv.mismatches('inv'), 0::bigint, 'rule update: stored = recompute');

-- 12. Rule INSERT: lead 1's webinar now counts 15.
INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('inv', 'webinar', 'webinar', 15);
-- 1: 20 + 4 + 15 = 39 IQL
SELECT is(inv.snap('inv'), '1:39/20/19/IQL 2:60/0/60/MQL 3:100/30/91/SQL', 'rule insert applies to past activities');
SELECT is(inv.mismatches('inv'), 0::bigint, 'rule insert: stored = recompute');

-- 13. Rule disable: 'ceo' fit rule off.
UPDATE leadscore.fit_rule SET enabled = false WHERE model = 'inv' AND name = 'ceo';
-- 1: 0 + 19 = 19; 3: 10 + 91 = 101 -> 100, but fit 10 < 20 -> MQL
SELECT is(inv.snap('inv'), '1:19/0/19/IQL 2:60/0/60/MQL 3:100/10/91/MQL', 'disabled fit rule no longer counts');
SELECT is(inv.mismatches('inv'), 0::bigint, 'rule disable: stored = recompute');
UPDATE leadscore.activity_rule SET enabled = false WHERE model = 'inv' AND name = 'pricing';
-- 3: 10 + 66 = 76 MQL
SELECT is(inv.snap('inv'), '1:19/0/19/IQL 2:60/0/60/MQL 3:76/10/66/MQL', 'disabled activity rule no longer counts');
UPDATE leadscore.fit_rule SET enabled = true WHERE model = 'inv' AND name = 'ceo';
UPDATE leadscore.activity_rule SET enabled = true WHERE model = 'inv' AND name = 'pricing';
SELECT is(inv.snap('inv'), '1:39/20/19/IQL 2:60/0/60/MQL 3:100/30/91/SQL', 're-enabled rules count again');

-- 14. Rule DELETE.
DELETE FROM leadscore.activity_rule WHERE model = 'inv' AND name = 'webinar';
SELECT is(inv.snap('inv'), '1:24/20/4/IQL 2:60/0/60/MQL 3:100/30/91/SQL', 'rule delete rescored');
SELECT is(inv.mismatches('inv'), 0::bigint, 'rule delete: stored = recompute');

-- 15. Model range change: [0, 100] -> [-100, 80].
UPDATE leadscore.model SET score_min = -100, score_max = 80 WHERE name = 'inv';
INSERT INTO inv.act (lead_id, type, occurred_at) VALUES (1, 'unsubscribe', now() - interval '1 minute');
-- 1: 20 + 4 - 30 = -6 (no longer clamped to 0); 3: 121 -> 80
SELECT is(inv.snap('inv'), '1:-6/20/-26/- 2:60/0/60/MQL 3:80/30/91/SQL', 'model range change re-clamps');
SELECT is(inv.mismatches('inv'), 0::bigint, 'model range change: stored = recompute');
UPDATE leadscore.model SET score_min = 0, score_max = 100 WHERE name = 'inv';
SELECT is(inv.snap('inv'), '1:0/20/-26/- 2:60/0/60/MQL 3:100/30/91/SQL', 'range restored');

-- 16. Stage threshold change.
UPDATE leadscore.stage SET min_score = 60 WHERE model = 'inv' AND name = 'MQL';      -- 2: 60 still MQL
UPDATE leadscore.stage SET min_engagement = 95 WHERE model = 'inv' AND name = 'SQL'; -- 3: 91 < 95 -> MQL
SELECT is(inv.snap('inv'), '1:0/20/-26/- 2:60/0/60/MQL 3:100/30/91/MQL', 'stage threshold changes re-stage');
SELECT is(inv.mismatches('inv'), 0::bigint, 'stage change: stored = recompute');
UPDATE leadscore.stage SET min_score = 61 WHERE model = 'inv' AND name = 'MQL';      -- 2: 60 < 61 -> IQL
SELECT is(inv.snap('inv'), '1:0/20/-26/- 2:60/0/60/IQL 3:100/30/91/MQL', 'raised MQL threshold demotes lead 2');
UPDATE leadscore.stage SET min_score = 40 WHERE model = 'inv' AND name = 'MQL';
UPDATE leadscore.stage SET min_engagement = 30 WHERE model = 'inv' AND name = 'SQL';
SELECT is(inv.snap('inv'), '1:0/20/-26/- 2:60/0/60/MQL 3:100/30/91/SQL', 'thresholds restored');

-- 17. list_entry changes: acme.com becomes a competitor -> leads 1 and 2 disqualified.
INSERT INTO leadscore.list_entry (list, value) VALUES ('inv_competitors', 'ACME.com');
SELECT is((SELECT string_agg(lead_id || ':' || disqualified || '/' || coalesce(stage, '-'), ' ' ORDER BY lead_id)
             FROM leadscore.lead_score WHERE model = 'inv'),
          '1:true/disqualified 2:true/disqualified 3:false/SQL',
          'list entry added: competitor domain (case-insensitive) disqualifies');
SELECT is(inv.mismatches('inv'), 0::bigint, 'list entry insert: stored = recompute');
UPDATE leadscore.list_entry SET value = 'corp.io' WHERE list = 'inv_competitors' AND value = 'ACME.com';
SELECT is((SELECT string_agg(lead_id || ':' || disqualified || '/' || coalesce(stage, '-'), ' ' ORDER BY lead_id)
             FROM leadscore.lead_score WHERE model = 'inv'),
          '1:false/- 2:false/MQL 3:true/disqualified',
          'list entry updated: the disqualification moves to lead 3');
DELETE FROM leadscore.list_entry WHERE list = 'inv_competitors' AND value = 'corp.io';
SELECT is(inv.snap('inv'), '1:0/20/-26/- 2:60/0/60/MQL 3:100/30/91/SQL', 'list entry deleted: nobody disqualified');
SELECT is(inv.mismatches('inv'), 0::bigint, 'list entry delete: stored = recompute');
-- the free-mail list: lead 2 back on gmail, then gmail removed from the shipped list (in this transaction only).
UPDATE inv.leads SET email = 'bob@GMail.com' WHERE id = 2;     -- 2: -15 + 60 = 45 MQL
SELECT is(inv.snap('inv'), '1:0/20/-26/- 2:45/-15/60/MQL 3:100/30/91/SQL', 'domain in list is case-insensitive');
DELETE FROM leadscore.list_entry WHERE list = 'free_email_domains' AND value = 'gmail.com';
SELECT is(inv.snap('inv'), '1:0/20/-26/- 2:60/0/60/MQL 3:100/30/91/SQL', 'removing gmail.com from the list rescored lead 2');
SELECT is(inv.mismatches('inv'), 0::bigint, 'free-mail list change: stored = recompute');

-- 18. Stage history so far (lead 2 as an example of every kind of transition).
SELECT is((SELECT string_agg(coalesce(from_stage, '-') || '>' || coalesce(to_stage, '-') || '@' || trim_scale(score), ' '
                             ORDER BY ctid)
             FROM leadscore.stage_history WHERE model = 'inv' AND lead_id = '2'),
          '->MQL@50 MQL>IQL@35 IQL>MQL@50 MQL>IQL@60 IQL>MQL@60 MQL>disqualified@60 disqualified>MQL@60',
          'stage_change records each transition of lead 2 with the score after it');
SELECT is((SELECT count(*) FROM leadscore.stage_change sc
            WHERE sc.model = 'inv' AND sc.changed_at <> now()), 0::bigint,
          'every live stage change is stamped with the transaction time');

-- 19. Transactional: a rolled-back insert leaves no trace.
CREATE TEMP TABLE before_sp AS SELECT * FROM leadscore.lead_score WHERE model = 'inv';
CREATE TEMP TABLE before_sc AS SELECT * FROM leadscore.stage_change WHERE model = 'inv';
SAVEPOINT sp;
INSERT INTO inv.act (lead_id, type, occurred_at) VALUES (1, 'demo_request', now()), (1, 'link_click', now());
-- 1: 20 - 26 + 60 + 5 = 59 -> MQL
SELECT is(inv.snap('inv'), '1:59/20/39/MQL 2:60/0/60/MQL 3:100/30/91/SQL', 'inside the savepoint the insert is scored');
ROLLBACK TO SAVEPOINT sp;
SELECT set_eq('SELECT * FROM leadscore.lead_score WHERE model = ''inv''', 'SELECT * FROM before_sp',
              'ROLLBACK TO SAVEPOINT restores lead_score exactly');
SELECT set_eq('SELECT * FROM leadscore.stage_change WHERE model = ''inv''', 'SELECT * FROM before_sc',
              'ROLLBACK TO SAVEPOINT leaves no stage_change row');
-- and the state read after the rollback is still exact for the next write
INSERT INTO inv.act (lead_id, type, occurred_at) VALUES (1, 'demo_request', now());
-- 1: 20 - 26 + 60 = 54 -> MQL
SELECT is(inv.snap('inv'), '1:54/20/34/MQL 2:60/0/60/MQL 3:100/30/91/SQL', 'the next write after the rollback builds on the right state');
SELECT is(inv.mismatches('inv'), 0::bigint, 'after the rolled-back savepoint: stored = recompute');

-- 20. TRUNCATE of the activities.
TRUNCATE inv.act;
SELECT is(inv.snap('inv'), '1:20/20/0/IQL 2:0/0/0/- 3:30/30/0/IQL', 'TRUNCATE leaves fit only');
SELECT is(inv.mismatches('inv'), 0::bigint, 'truncate: stored = recompute');

-- 21. Sticky stages: kept by refresh() when points expire; a data change or a rule change demotes.
UPDATE leadscore.stage SET sticky = true WHERE model = 'inv' AND name = 'MQL';
-- 4 opens for lead 1 (8 points) expiring 1, 2, 3, 4 days from now, and a demo request for lead 2.
INSERT INTO inv.act (lead_id, type, occurred_at)
SELECT 1, 'email_open', now() - interval '90 days' + g * interval '1 day' FROM generate_series(1, 4) g;
INSERT INTO inv.act (lead_id, type, occurred_at) VALUES (1, 'link_click', now() - interval '1 hour'),
                                                          (1, 'link_click', now() - interval '2 hours'),
                                                          (2, 'email_open', now() - interval '90 days' + interval '12 hours');
-- 1: 20 + 8 + 10 = 38 IQL; 2: 0 + 2 = 2 -
SELECT is(inv.snap('inv'), '1:38/20/18/IQL 2:2/0/2/- 3:30/30/0/IQL', 'opens and clicks scored');
INSERT INTO inv.act (lead_id, type, occurred_at) VALUES (1, 'link_click', now() - interval '3 hours');
-- 1: 20 + 8 + 15 = 43 -> MQL (sticky)
SELECT is(inv.snap('inv'), '1:43/20/23/MQL 2:2/0/2/- 3:30/30/0/IQL', 'lead 1 reaches the sticky MQL');
-- refresh 2.5 days ahead: 2 of lead 1's opens and lead 2's open expired.
SELECT is(leadscore.refresh('inv', now() + interval '60 hours'), 2::bigint, 'refresh changes the 2 leads with expired opens');
SELECT is(inv.snap('inv'), '1:39/20/19/MQL 2:0/0/0/- 3:30/30/0/IQL', 'refresh: lead 1 keeps the sticky MQL at 39 < 40');
SELECT ok((SELECT scored_at = now() + interval '60 hours' AND score = leadscore.score('inv', 1, now() + interval '60 hours')
             FROM leadscore.lead_score WHERE model = 'inv' AND lead_id = '1'),
          'after refresh(model, t) the stored score is the score as of t');
SELECT is((SELECT scored_at FROM leadscore.lead_score WHERE model = 'inv' AND lead_id = '3'), now(),
          'refresh does not touch a lead whose score does not change');
SELECT is((SELECT count(*) FROM leadscore.stage_change WHERE model = 'inv' AND lead_id = '1' AND changed_at > now()), 0::bigint,
          'no stage change recorded for the sticky lead');
-- A data change demotes: delete lead 1's clicks -> as of now: 20 + 8 = 28 -> IQL.
DELETE FROM inv.act WHERE lead_id = 1 AND type = 'link_click';
SELECT is(inv.snap('inv'), '1:28/20/8/IQL 2:0/0/0/- 3:30/30/0/IQL', 'a data change demotes the sticky lead');
SELECT is((SELECT from_stage || '>' || to_stage || '@' || trim_scale(score) FROM leadscore.stage_history
            WHERE model = 'inv' AND lead_id = '1' ORDER BY ctid DESC LIMIT 1),
          'MQL>IQL@28', 'the demotion is recorded');
-- back to MQL, then a rule change demotes: opens 2 -> 1 point: 20 + 4 + 15 = 39 < 40.
INSERT INTO inv.act (lead_id, type, occurred_at)
SELECT 1, 'link_click', now() - g * interval '1 hour' FROM generate_series(1, 3) g;
SELECT is(inv.snap('inv'), '1:43/20/23/MQL 2:0/0/0/- 3:30/30/0/IQL', 'lead 1 back in MQL');
UPDATE leadscore.activity_rule SET points = 1 WHERE model = 'inv' AND name = 'open';
SELECT is(inv.snap('inv'), '1:39/20/19/IQL 2:1/0/1/- 3:30/30/0/IQL', 'a rule change demotes the sticky lead');
SELECT is(inv.mismatches('inv'), 0::bigint, 'after the sticky scenario: stored = recompute');

-- 22. Unusual statement shapes: NULL columns, upsert, attribute updates, writable CTE, MERGE,
--     a multi-lead swap in one UPDATE, a lead key update onto a key that has activities.
TRUNCATE inv.act;
UPDATE leadscore.stage SET sticky = false WHERE model = 'inv' AND name = 'MQL';
UPDATE leadscore.activity_rule SET points = 2 WHERE model = 'inv' AND name = 'open';
SELECT is(inv.snap('inv'), '1:20/20/0/IQL 2:0/0/0/- 3:30/30/0/IQL', 'reset: fit only');
INSERT INTO inv.act (lead_id, type, occurred_at) VALUES (NULL, 'demo_request', now()), (1, NULL, now()), (1, 'demo_request', NULL);
SELECT is(inv.snap('inv'), '1:20/20/0/IQL 2:0/0/0/- 3:30/30/0/IQL', 'rows with a NULL lead, type or time are ignored');
INSERT INTO inv.act (id, lead_id, type, url, occurred_at) VALUES (1000, 1, 'page_view', '/blog', now() - interval '1 hour');
INSERT INTO inv.act (id, lead_id, type, url, occurred_at)
VALUES (1000, 1, 'page_view', '/pricing', now() - interval '1 hour'),
       (1001, 1, 'email_open', NULL, now() - interval '1 hour')
ON CONFLICT (id) DO UPDATE SET url = excluded.url;
-- 1: 20 + 25 + 2 = 47 -> MQL
SELECT is(inv.snap('inv'), '1:47/20/27/MQL 2:0/0/0/- 3:30/30/0/IQL', 'INSERT ... ON CONFLICT DO UPDATE: both the insert and the update are scored');
UPDATE inv.act SET url = '/PRICING' WHERE id = 1000;
SELECT is(inv.snap('inv'), '1:22/20/2/IQL 2:0/0/0/- 3:30/30/0/IQL', 'attribute update: LIKE is case-sensitive, /PRICING does not match');
UPDATE inv.act SET url = '/pricing?plan=pro' WHERE id = 1000;
SELECT is(inv.snap('inv'), '1:47/20/27/MQL 2:0/0/0/- 3:30/30/0/IQL', 'attribute update: matches again');
WITH moved AS (DELETE FROM inv.act WHERE id = 1000 RETURNING *)
INSERT INTO inv.act (lead_id, type, url, occurred_at) SELECT 2, type, url, occurred_at FROM moved;
SELECT is(inv.snap('inv'), '1:22/20/2/IQL 2:25/0/25/IQL 3:30/30/0/IQL', 'writable CTE (DELETE ... RETURNING into INSERT) scored');
MERGE INTO inv.act a
USING (VALUES (2, 'demo_request'), (3, 'demo_request')) AS v(lead, type)
   ON a.lead_id = v.lead AND a.type = 'page_view'
 WHEN MATCHED THEN UPDATE SET type = v.type
 WHEN NOT MATCHED THEN INSERT (lead_id, type, occurred_at) VALUES (v.lead, v.type, now() - interval '30 minutes');
-- 2: page view -> demo: 60 MQL; 3: new demo: 30 + 60 = 90 SQL
SELECT is(inv.snap('inv'), '1:22/20/2/IQL 2:60/0/60/MQL 3:90/30/60/SQL', 'MERGE with UPDATE and INSERT actions scored');
MERGE INTO inv.act a USING (VALUES (3)) AS v(lead) ON a.lead_id = v.lead WHEN MATCHED THEN DELETE;
SELECT is(inv.snap('inv'), '1:22/20/2/IQL 2:60/0/60/MQL 3:30/30/0/IQL', 'MERGE with a DELETE action scored');
INSERT INTO inv.act (lead_id, type, occurred_at) VALUES (3, 'link_click', now() - interval '5 minutes');
UPDATE inv.act SET lead_id = CASE lead_id WHEN 2 THEN 3 ELSE 2 END WHERE lead_id IN (2, 3);
-- 2 gets the click: 5; 3 gets the demo: 30 + 60 = 90
SELECT is(inv.snap('inv'), '1:22/20/2/IQL 2:5/0/5/- 3:90/30/60/SQL', 'one UPDATE swapping the activities of two leads');
SELECT is(inv.mismatches('inv'), 0::bigint, 'unusual statements: stored = recompute');
INSERT INTO inv.act (lead_id, type, occurred_at) VALUES (9, 'demo_request', now() - interval '1 day');
UPDATE inv.leads SET id = 9 WHERE id = 1;
-- 9: fit 20 (CEO, 499 employees) + its own demo 60 = 80 -> SQL; lead 1's open stays with the gone key 1
SELECT is(inv.snap('inv'), '2:5/0/5/- 3:90/30/60/SQL 9:80/20/60/SQL', 'lead key update onto a key that has activities');
SELECT is((SELECT coalesce(from_stage, '-') || '>' || to_stage || '@' || trim_scale(score)
             FROM leadscore.stage_change WHERE model = 'inv' AND lead_id = '9'),
          '->SQL@80', 'the new key''s first stage is recorded');
SELECT is(inv.mismatches('inv'), 0::bigint, 'lead key update: stored = recompute');

SELECT * FROM finish();
ROLLBACK;
