-- Scoring: the PRODUCT.md examples as rows, scored from scratch with fixed as_of times,
-- then the stored state kept by the triggers (lead_score, stage_change, funnel, rescore, refresh).
-- Rule ids are explicit (2xxx); stored rows use now(), so their times are never printed.
SET timezone = 'UTC';
CREATE SCHEMA sc;
CREATE TABLE sc.leads (
    id         int PRIMARY KEY,
    title      text COLLATE "C",
    industry   text,
    employees  int,
    revenue    numeric,
    country    text,
    email      text,
    created_at timestamptz
);
CREATE TABLE sc.activities (
    id          bigserial PRIMARY KEY,
    lead_id     int,
    type        text,
    url         text,
    occurred_at timestamptz
);
CREATE INDEX ON sc.activities (lead_id);

-- ===========================================================================
-- 1. "newsletter 10, e-book 10, case study 25, demo request 100"
-- ===========================================================================
INSERT INTO leadscore.model (name) VALUES ('sc_seed');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, once) VALUES
    (2001, 'sc_seed', 'newsletter sign-up', 'newsletter', 10, true),
    (2002, 'sc_seed', 'e-book download', 'ebook', 10, false),
    (2003, 'sc_seed', 'case study', 'case_study', 25, false),
    (2004, 'sc_seed', 'demo request', 'demo_request', 100, false);
INSERT INTO sc.leads (id, title) VALUES (1, 'Engineer'), (2, 'Engineer');
INSERT INTO sc.activities (lead_id, type, occurred_at) VALUES
    (1, 'newsletter',   '2024-01-02 09:00+00'),
    (1, 'newsletter',   '2024-01-20 09:00+00'),  -- signed up twice: counts once
    (1, 'ebook',        '2024-01-05 09:00+00'),
    (1, 'case_study',   '2024-01-08 09:00+00'),
    (1, 'demo_request', '2024-01-10 09:00+00'),
    (1, 'email_open',   '2024-01-10 09:00+00'),  -- no rule of this model
    (2, 'ebook',        '2024-01-05 09:00+00'),
    (2, 'ebook',        '2024-01-06 09:00+00'),
    (2, 'case_study',   '2024-01-07 09:00+00');
SELECT leadscore.track('sc_seed', 'sc.activities', 'lead_id', 'type', 'occurred_at', 'sc.leads', 'id');
-- 10 + 10 + 25 + 100 = 145; lead 2: 10 + 10 + 25 = 45
SELECT id, leadscore.score('sc_seed', id, '2024-02-01 00:00+00') AS score FROM sc.leads ORDER BY id;
SELECT rule, family, occurrences, points, next_expiry, disqualifies
  FROM leadscore.explain('sc_seed', 1, '2024-02-01 00:00+00') ORDER BY rule_id;
-- as of Jan 6: only the first sign-up and the e-book had happened
SELECT leadscore.score('sc_seed', 1, '2024-01-06 00:00+00') AS score_jan6;
SELECT rule, occurrences, points FROM leadscore.explain('sc_seed', 1, '2024-01-06 00:00+00') ORDER BY rule_id;
-- before any activity; a lead the tables do not know
SELECT leadscore.score('sc_seed', 1, '2023-12-31 00:00+00') AS score_before,
       leadscore.score('sc_seed', 999, '2024-02-01 00:00+00') AS unknown_lead;
-- the key may be given as any type whose text converts to the key type
SELECT leadscore.score('sc_seed', '1'::text, '2024-02-01 00:00+00') AS by_text,
       leadscore.score('sc_seed', 1::bigint, '2024-02-01 00:00+00') AS by_bigint;
-- NULL arguments
SELECT leadscore.score('sc_seed', NULL::int, '2024-02-01 00:00+00') AS null_lead,
       leadscore.score('sc_seed', 1, NULL) AS null_as_of;
SELECT count(*) AS explain_null_lead FROM leadscore.explain('sc_seed', NULL::int, '2024-02-01 00:00+00');
-- errors: unknown model, untracked model
SELECT leadscore.score('sc_nosuch', 1, '2024-02-01 00:00+00');
INSERT INTO leadscore.model (name) VALUES ('sc_untracked');
SELECT leadscore.score('sc_untracked', 1, '2024-02-01 00:00+00');
SELECT * FROM leadscore.explain('sc_untracked', 1, '2024-02-01 00:00+00');
DELETE FROM leadscore.model WHERE name = 'sc_untracked';
-- stored: track() scored both leads as of now(); all activities are in the past
SELECT lead_id, score, fit_score, engagement_score, stage, disqualified
  FROM leadscore.lead_score WHERE model = 'sc_seed' ORDER BY lead_id;

-- ===========================================================================
-- 2. Time: expiry, caps over unexpired occurrences, max_points, decay, negative points,
--    occurrences after as_of. Tracked without a leads table.
-- ===========================================================================
INSERT INTO leadscore.model (name) VALUES ('sc_time');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, once, max_count, max_points,
                                     expires_after, half_life) VALUES
    (2101, 'sc_time', 'e-mail open',   'email_open',   2,   false, NULL, NULL, '3 months', NULL),
    (2102, 'sc_time', 'link click',    'link_click',   5,   false, 2,    NULL, '30 days',  NULL),
    (2103, 'sc_time', 'page view',     'page_view',    1,   false, NULL, 3,    NULL,       NULL),
    (2104, 'sc_time', 'careers page',  'careers_view', -4,  false, NULL, 10,   NULL,       NULL),
    (2105, 'sc_time', 'pricing page',  'pricing_view', 40,  false, NULL, NULL, NULL,       '7 days'),
    (2106, 'sc_time', 'trial',         'trial',        16,  false, NULL, NULL, NULL,       '1 month'),
    (2107, 'sc_time', 'unsubscribe',   'unsubscribe',  -20, true,  NULL, NULL, NULL,       NULL),
    (2108, 'sc_time', 'site visit',    'visit',        3,   true,  NULL, NULL, '10 days',  NULL),
    (2109, 'sc_time', 'demo request',  'demo_request', 100, false, 1,    NULL, NULL,       NULL);
INSERT INTO sc.activities (lead_id, type, occurred_at) VALUES
    (10, 'email_open',   '2024-01-15 12:00+00'),
    (10, 'email_open',   '2024-01-31 10:00+00'),
    (11, 'link_click',   '2024-01-01 00:00+00'),
    (11, 'link_click',   '2024-01-10 00:00+00'),
    (11, 'link_click',   '2024-01-20 00:00+00'),
    (11, 'link_click',   '2024-01-25 00:00+00'),
    (12, 'page_view',    '2024-01-01 00:00+00'),
    (12, 'page_view',    '2024-01-02 00:00+00'),
    (12, 'page_view',    '2024-01-03 00:00+00'),
    (12, 'page_view',    '2024-01-04 00:00+00'),
    (12, 'page_view',    '2024-01-05 00:00+00'),
    (12, 'careers_view', '2024-01-01 00:00+00'),
    (12, 'careers_view', '2024-01-02 00:00+00'),
    (12, 'careers_view', '2024-01-03 00:00+00'),
    (13, 'pricing_view', '2024-01-15 12:00+00'),
    (13, 'trial',        '2024-01-15 12:00+00'),
    (14, 'unsubscribe',  '2024-01-01 00:00+00'),
    (14, 'unsubscribe',  '2024-01-09 00:00+00'),
    (15, 'visit',        '2024-01-01 00:00+00'),
    (15, 'visit',        '2024-01-05 00:00+00'),
    (16, 'demo_request', '2024-03-01 00:00+00');
SELECT leadscore.track('sc_time', 'sc.activities', 'lead_id', 'type', 'occurred_at');

-- e-mail open, 2 points expiring after 3 months: an occurrence at t counts while as_of < t + 3 months
-- (Jan 31 + 3 months = Apr 30, calendar arithmetic as in PostgreSQL)
SELECT '2024-01-15 12:00+00'::timestamptz + interval '3 months' AS first_expires,
       '2024-01-31 10:00+00'::timestamptz + interval '3 months' AS second_expires;
SELECT t AS as_of, leadscore.score('sc_time', 10, t) AS score
  FROM unnest(ARRAY['2024-01-15 11:59:59+00', '2024-01-15 12:00:00+00', '2024-02-01 00:00+00',
                    '2024-04-15 11:59:59.999999+00', '2024-04-15 12:00:00+00', '2024-04-30 09:59:59+00',
                    '2024-04-30 10:00:00+00']::timestamptz[]) AS t
 ORDER BY t;
SELECT rule, occurrences, points, next_expiry FROM leadscore.explain('sc_time', 10, '2024-02-01 00:00+00');
SELECT rule, occurrences, points, next_expiry FROM leadscore.explain('sc_time', 10, '2024-04-20 00:00+00');
SELECT count(*) AS rows_after_expiry FROM leadscore.explain('sc_time', 10, '2024-05-01 00:00+00');

-- max_count 2 over clicks that expire after 30 days: the most recent unexpired ones count
SELECT t AS as_of, leadscore.score('sc_time', 11, t) AS score
  FROM unnest(ARRAY['2024-01-05 00:00+00', '2024-01-26 00:00+00', '2024-02-05 00:00+00',
                    '2024-02-22 00:00+00', '2024-02-24 00:00+00']::timestamptz[]) AS t
 ORDER BY t;
SELECT rule, occurrences, points, next_expiry FROM leadscore.explain('sc_time', 11, '2024-01-26 00:00+00');
SELECT rule, occurrences, points, next_expiry FROM leadscore.explain('sc_time', 11, '2024-02-22 00:00+00');

-- max_points limits the magnitude of a rule's total, positive or negative: 5 views -> 3, 3 x -4 -> -10
SELECT leadscore.score('sc_time', 12, '2024-02-01 00:00+00') AS score;
SELECT rule, occurrences, points FROM leadscore.explain('sc_time', 12, '2024-02-01 00:00+00') ORDER BY rule_id;
SELECT rule, occurrences, points FROM leadscore.explain('sc_time', 12, '2024-01-02 00:00+00') ORDER BY rule_id;

-- half_life: 40 * 0.5 ^ (age / 7 days), 16 * 0.5 ^ (age / 30 days); exactly halved at one half-life
SELECT t AS as_of, leadscore.score('sc_time', 13, t) AS score
  FROM unnest(ARRAY['2024-01-15 12:00+00', '2024-01-19 00:00+00', '2024-01-22 12:00+00',
                    '2024-01-29 12:00+00', '2024-02-14 12:00+00', '2024-03-15 12:00+00']::timestamptz[]) AS t
 ORDER BY t;
SELECT rule, occurrences, points, next_expiry FROM leadscore.explain('sc_time', 13, '2024-01-22 12:00+00') ORDER BY rule_id;
SELECT rule, occurrences, points FROM leadscore.explain('sc_time', 13, '2024-02-14 12:00+00') ORDER BY rule_id;
-- the same numbers computed in SQL
SELECT round(40 * 0.5 ^ (extract(epoch FROM timestamptz '2024-01-19 00:00+00' - timestamptz '2024-01-15 12:00+00')
                          / extract(epoch FROM interval '7 days')), 6)
     + round(16 * 0.5 ^ (extract(epoch FROM timestamptz '2024-01-19 00:00+00' - timestamptz '2024-01-15 12:00+00')
                          / extract(epoch FROM interval '1 month')), 6) AS expected_jan19;

-- negative points, once: two unsubscribes count once
SELECT leadscore.score('sc_time', 14, '2024-02-01 00:00+00') AS score;
SELECT rule, occurrences, points FROM leadscore.explain('sc_time', 14, '2024-02-01 00:00+00');
SELECT leadscore.score('sc_time', 14, '2024-01-05 00:00+00') AS score_after_first;

-- once with expiry: the most recent unexpired visit counts
SELECT t AS as_of, leadscore.score('sc_time', 15, t) AS score
  FROM unnest(ARRAY['2024-01-03 00:00+00', '2024-01-12 00:00+00', '2024-01-15 00:00+00']::timestamptz[]) AS t
 ORDER BY t;
SELECT rule, occurrences, points, next_expiry FROM leadscore.explain('sc_time', 15, '2024-01-12 00:00+00');

-- occurrences after as_of never count
SELECT t AS as_of, leadscore.score('sc_time', 16, t) AS score
  FROM unnest(ARRAY['2024-02-29 23:59:59+00', '2024-03-01 00:00+00', '2024-06-01 00:00+00']::timestamptz[]) AS t
 ORDER BY t;
SELECT count(*) AS contributions_before FROM leadscore.explain('sc_time', 16, '2024-02-01 00:00+00');

-- ===========================================================================
-- 3. Fit + engagement, stages, clamping, disqualification.
--    "CEO +20 fit, webinar +10, over 65/100 to sales"
-- ===========================================================================
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('sc_fit', 0, 100);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points, disqualify) VALUES
    (2201, 'sc_fit', 'CEO', 'title', '=', '{CEO}', 20, false),
    (2202, 'sc_fit', 'large company', 'employees', '>=', '{1000}', 50, false),
    (2203, 'sc_fit', 'free mail', 'email', 'domain in list', '{free_email_domains}', -10, true);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, disqualify) VALUES
    (2211, 'sc_fit', 'webinar', 'webinar', 10, false),
    (2212, 'sc_fit', 'unsubscribe', 'unsubscribe_fit', -30, false),
    (2213, 'sc_fit', 'competitor sign-up', 'competitor_signup', 0, true);
INSERT INTO leadscore.stage (model, name, min_score, min_fit, min_engagement, sticky) VALUES
    ('sc_fit', 'IQL', 20, NULL, NULL, false),
    ('sc_fit', 'MQL', 40, NULL, NULL, false),
    ('sc_fit', 'SQL', 65, 20, 30, false);
INSERT INTO sc.leads (id, title, employees, email) VALUES
    (21, 'CEO', 10, 'ceo@acme.example'),        -- 20 + 5 webinars = 70 -> SQL
    (22, 'CEO', 10, 'ceo@beta.example'),        -- 20 + 4 webinars = 60 -> MQL
    (23, 'Engineer', 10, 'dev@gamma.example'),  -- 7 webinars = 70 but fit 0 -> MQL
    (24, 'CEO', 5000, 'boss@delta.example'),    -- fit 70, engagement 0 -> MQL (SQL needs engagement 30)
    (25, 'CEO', 5000, 'boss@eps.example'),      -- 70 + 9 webinars = 160 -> clamped to 100 -> SQL
    (26, 'Engineer', 10, 'someone@zeta.example'), -- unsubscribe -30 -> clamped to 0, no stage
    (27, 'CEO', 10, 'Ceo@GMail.COM'),           -- free mail: disqualified by a fit rule
    (28, 'CEO', 10, 'ceo@eta.example');         -- competitor sign-up: disqualified by an activity rule
INSERT INTO sc.activities (lead_id, type, occurred_at)
SELECT l, 'webinar', '2024-01-01 00:00+00'::timestamptz + n * interval '1 day'
  FROM (VALUES (21, 5), (22, 4), (23, 7), (25, 9), (27, 5), (28, 5)) AS v(l, c), generate_series(1, c) AS n;
INSERT INTO sc.activities (lead_id, type, occurred_at) VALUES
    (26, 'unsubscribe_fit', '2024-01-03 00:00+00'),
    (28, 'competitor_signup', '2024-01-20 00:00+00');
SELECT leadscore.track('sc_fit', 'sc.activities', 'lead_id', 'type', 'occurred_at', 'sc.leads', 'id');
-- from scratch, as of a fixed time
SELECT id, leadscore.score('sc_fit', id, '2024-02-01 00:00+00') AS score FROM sc.leads WHERE id BETWEEN 21 AND 28 ORDER BY id;
SELECT l.id, e.rule, e.family, e.occurrences, e.points, e.disqualifies
  FROM sc.leads l, LATERAL leadscore.explain('sc_fit', l.id, '2024-02-01 00:00+00') e
 WHERE l.id BETWEEN 21 AND 28
 ORDER BY l.id, e.rule_id;
SELECT lead_id, score, fit_score, engagement_score, stage, disqualified
  FROM leadscore.scores_as_of('sc_fit', '2024-02-01 00:00+00') WHERE lead_id::int BETWEEN 21 AND 28 ORDER BY lead_id::int;
-- before the webinars: stages follow the score of that time
SELECT lead_id, score, stage FROM leadscore.scores_as_of('sc_fit', '2024-01-03 12:00+00')
 WHERE lead_id::int BETWEEN 21 AND 28 ORDER BY lead_id::int;
-- stored state after track()
SELECT lead_id, score, fit_score, engagement_score, stage, disqualified, stage_since IS NOT NULL AS has_stage_since
  FROM leadscore.lead_score WHERE model = 'sc_fit' ORDER BY lead_id::int;
SELECT lead_id, from_stage, to_stage, score, changed_at IS NOT NULL AS has_changed_at
  FROM leadscore.stage_change WHERE model = 'sc_fit' ORDER BY lead_id::int, changed_at, to_stage;
SELECT stage, leads, position FROM leadscore.funnel WHERE model = 'sc_fit' ORDER BY position NULLS LAST, stage NULLS FIRST;

-- live changes: a webinar lifts lead 22 to 70 -> SQL
INSERT INTO sc.activities (lead_id, type, occurred_at) VALUES (22, 'webinar', '2024-01-25 00:00+00');
SELECT lead_id, score, fit_score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'sc_fit' AND lead_id = '22';
-- deleting two of lead 21's webinars: 50 -> MQL
DELETE FROM sc.activities WHERE id IN (SELECT id FROM sc.activities WHERE lead_id = 21 ORDER BY occurred_at LIMIT 2);
SELECT lead_id, score, fit_score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'sc_fit' AND lead_id = '21';
-- an activity whose type changes to one without a rule stops counting: 23 goes from 70 to 60
UPDATE sc.activities SET type = 'webinar_noshow' WHERE id = (SELECT min(id) FROM sc.activities WHERE lead_id = 23);
SELECT lead_id, score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'sc_fit' AND lead_id = '23';
-- moving an activity to another lead re-scores both
UPDATE sc.activities SET lead_id = 24 WHERE id = (SELECT min(id) FROM sc.activities WHERE lead_id = 23 AND type = 'webinar');
SELECT lead_id, score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'sc_fit' AND lead_id IN ('23', '24') ORDER BY lead_id;
-- lead changes: the CEO of 24 leaves (fit 70 -> 50), 26 becomes CEO (fit 20, engagement -30 -> 0)
UPDATE sc.leads SET title = 'Engineer' WHERE id = 24;
UPDATE sc.leads SET title = 'CEO' WHERE id = 26;
SELECT lead_id, score, fit_score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'sc_fit' AND lead_id IN ('24', '26') ORDER BY lead_id;
-- the free-mail lead changes its e-mail: no longer disqualified
UPDATE sc.leads SET email = 'ceo@theta.example' WHERE id = 27;
SELECT lead_id, score, fit_score, stage, disqualified FROM leadscore.lead_score WHERE model = 'sc_fit' AND lead_id = '27';
-- a new lead is scored on insert; a deleted lead loses its state
INSERT INTO sc.leads (id, title, employees, email) VALUES (29, 'CEO', 10, 'new@iota.example');
DELETE FROM sc.leads WHERE id = 25;
SELECT lead_id, score, fit_score, engagement_score, stage, disqualified
  FROM leadscore.lead_score WHERE model = 'sc_fit' ORDER BY lead_id::int;
SELECT lead_id, from_stage, to_stage, score
  FROM leadscore.stage_change WHERE model = 'sc_fit' ORDER BY lead_id::int, changed_at, to_stage;
SELECT stage, leads, position FROM leadscore.funnel WHERE model = 'sc_fit' ORDER BY position NULLS LAST, stage NULLS FIRST;
-- a rule change rescoring every lead in the same transaction: webinars are now worth 15
UPDATE leadscore.activity_rule SET points = 15 WHERE id = 2211;
SELECT lead_id, score, fit_score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'sc_fit' ORDER BY lead_id::int;
-- rescore(): nothing to change, then repair a tampered stored score
SELECT leadscore.rescore('sc_fit') AS changed;
UPDATE leadscore.lead_state SET score = score + 1 WHERE model = 'sc_fit' AND lead_id IN ('21', '22');
SELECT leadscore.rescore('sc_fit') AS changed;
SELECT leadscore.rescore('sc_fit') AS changed;
-- every stored score equals the score computed from scratch as of its scored_at
SELECT count(*) AS leads,
       count(*) FILTER (WHERE s.score = leadscore.score('sc_fit', s.lead_id::int, s.scored_at)) AS exact
  FROM leadscore.lead_score s WHERE s.model = 'sc_fit';

-- ===========================================================================
-- 4. Every operator on text, integer, numeric and timestamptz columns; NULL attributes.
-- ===========================================================================
INSERT INTO leadscore.model (name) VALUES ('sc_ops');
INSERT INTO leadscore.list_entry (list, value) VALUES ('sc_titles', 'CEO'), ('sc_titles', 'Student'),
    ('sc_domains', 'Acme.Example');
INSERT INTO sc.leads (id, title, employees, revenue, email, created_at) VALUES
    (31, 'CEO',      50,   1000000.00, 'a@GMail.COM',        '2024-01-01 00:00+00'),
    (32, 'CTO',      10,   0.5,        'b@acme.example',     '2023-12-31 23:59:59+00'),
    (33, 'VP_Ops',   51,   2.5,        'c@sub.gmail.com',    '2024-03-01 12:00+00'),
    (34, 'VP Sales', 5,    -3,         'no-at-sign',         '2024-06-30 23:59:59+00'),
    (35, 'ceo',      1000, 1000000.50, 'd@x.example@gmail.com', '2024-07-01 00:00+00'),
    (36, NULL,       NULL, NULL,       NULL,                 NULL),
    (37, 'Student',  50,   2.50,       'e@ACME.example',     '2024-01-01 01:00+01');
SELECT leadscore.track('sc_ops', 'sc.activities', 'lead_id', 'type', 'occurred_at', 'sc.leads', 'id');
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES
    -- text (collation "C")
    (2301, 'sc_ops', 't=',          'title', '=',           '{CEO}', 1),
    (2302, 'sc_ops', 't<>',         'title', '<>',          '{CEO}', 1),
    (2303, 'sc_ops', 't<',          'title', '<',           '{D}', 1),
    (2304, 'sc_ops', 't<=',         'title', '<=',          '{CTO}', 1),
    (2305, 'sc_ops', 't>',          'title', '>',           '{V}', 1),
    (2306, 'sc_ops', 't>=',         'title', '>=',          '{VP_Ops}', 1),
    (2307, 'sc_ops', 't between',   'title', 'between',     '{CEO,CTO}', 1),
    (2308, 'sc_ops', 't in',        'title', 'in',          '{CEO,Student,Nobody}', 1),
    (2309, 'sc_ops', 't not in',    'title', 'not in',      '{CEO,Student}', 1),
    (2310, 'sc_ops', 't like',      'title', 'like',        '{C_O}', 1),
    (2311, 'sc_ops', 't like esc',  'title', 'like',        ARRAY['VP\_%'], 1),
    (2312, 'sc_ops', 't ilike',     'title', 'ilike',       '{vp%}', 1),
    (2313, 'sc_ops', 't ~',         'title', '~',           '{^C.O$}', 1),
    (2314, 'sc_ops', 't ~*',        'title', '~*',          '{^ceo$}', 1),
    (2315, 'sc_ops', 't is null',   'title', 'is null',     NULL, 1),
    (2316, 'sc_ops', 't not null',  'title', 'is not null', NULL, 1),
    (2317, 'sc_ops', 't in list',   'title', 'in list',     '{sc_titles}', 1),
    (2318, 'sc_ops', 'free domain', 'email', 'domain in list', '{free_email_domains}', 1),
    (2319, 'sc_ops', 'own domain',  'email', 'domain in list', '{sc_domains}', 1),
    -- integer
    (2331, 'sc_ops', 'i=',          'employees', '=',       '{50}', 1),
    (2332, 'sc_ops', 'i<>',         'employees', '<>',      '{50}', 1),
    (2333, 'sc_ops', 'i<',          'employees', '<',       '{50}', 1),
    (2334, 'sc_ops', 'i<=',         'employees', '<=',      '{50}', 1),
    (2335, 'sc_ops', 'i>',          'employees', '>',       '{50}', 1),
    (2336, 'sc_ops', 'i>=',         'employees', '>=',      '{50}', 1),
    (2337, 'sc_ops', 'i between',   'employees', 'between', '{10,50}', 1),
    (2338, 'sc_ops', 'i in',        'employees', 'in',      '{5,1000}', 1),
    (2339, 'sc_ops', 'i not in',    'employees', 'not in',  '{5,1000}', 1),
    (2340, 'sc_ops', 'i is null',   'employees', 'is null', NULL, 1),
    -- numeric
    (2351, 'sc_ops', 'n=',          'revenue', '=',         '{1e6}', 1),
    (2352, 'sc_ops', 'n<',          'revenue', '<',         '{0}', 1),
    (2353, 'sc_ops', 'n>=',         'revenue', '>=',        '{1000000.5}', 1),
    (2354, 'sc_ops', 'n between',   'revenue', 'between',   '{0.5,2.5}', 1),
    (2355, 'sc_ops', 'n in',        'revenue', 'in',        '{2.5000,-3}', 1),
    (2356, 'sc_ops', 'n <>',        'revenue', '<>',        '{2.5}', 1),
    -- timestamptz
    (2371, 'sc_ops', 'ts<',         'created_at', '<',       '{2024-01-01 00:00:00+00}', 1),
    (2372, 'sc_ops', 'ts=',         'created_at', '=',       '{2024-01-01 01:00:00+01}', 1),
    (2373, 'sc_ops', 'ts between',  'created_at', 'between', '{2024-01-01 00:00:00+00,2024-06-30 23:59:59+00}', 1),
    (2374, 'sc_ops', 'ts>',         'created_at', '>',       '{2024-06-30 23:59:59+00}', 1),
    (2375, 'sc_ops', 'ts not null', 'created_at', 'is not null', NULL, 1);
SELECT l.id, l.title, leadscore.score('sc_ops', l.id, '2024-08-01 00:00+00') AS score,
       (SELECT string_agg(e.rule, ', ' ORDER BY e.rule_id)
          FROM leadscore.explain('sc_ops', l.id, '2024-08-01 00:00+00') e) AS matched
  FROM sc.leads l WHERE l.id BETWEEN 31 AND 37 ORDER BY l.id;
-- the same conditions written as SQL give the same matches
SELECT l.id,
       concat_ws(', ',
         CASE WHEN title = 'CEO' THEN 't=' END, CASE WHEN title <> 'CEO' THEN 't<>' END,
         CASE WHEN title < 'D' THEN 't<' END, CASE WHEN title <= 'CTO' THEN 't<=' END,
         CASE WHEN title > 'V' THEN 't>' END, CASE WHEN title >= 'VP_Ops' THEN 't>=' END,
         CASE WHEN title BETWEEN 'CEO' AND 'CTO' THEN 't between' END,
         CASE WHEN title IN ('CEO', 'Student', 'Nobody') THEN 't in' END,
         CASE WHEN title NOT IN ('CEO', 'Student') THEN 't not in' END,
         CASE WHEN title LIKE 'C_O' THEN 't like' END, CASE WHEN title LIKE 'VP\_%' THEN 't like esc' END,
         CASE WHEN title ILIKE 'vp%' THEN 't ilike' END, CASE WHEN title ~ '^C.O$' THEN 't ~' END,
         CASE WHEN title ~* '^ceo$' THEN 't ~*' END, CASE WHEN title IS NULL THEN 't is null' END,
         CASE WHEN title IS NOT NULL THEN 't not null' END,
         CASE WHEN title IN (SELECT value FROM leadscore.list_entry WHERE list = 'sc_titles') THEN 't in list' END,
         CASE WHEN lower(substring(email FROM '@([^@]*)$')) IN (SELECT value FROM leadscore.list_entry WHERE list = 'free_email_domains') THEN 'free domain' END,
         CASE WHEN lower(substring(email FROM '@([^@]*)$')) IN (SELECT lower(value) FROM leadscore.list_entry WHERE list = 'sc_domains') THEN 'own domain' END,
         CASE WHEN employees = 50 THEN 'i=' END, CASE WHEN employees <> 50 THEN 'i<>' END,
         CASE WHEN employees < 50 THEN 'i<' END, CASE WHEN employees <= 50 THEN 'i<=' END,
         CASE WHEN employees > 50 THEN 'i>' END, CASE WHEN employees >= 50 THEN 'i>=' END,
         CASE WHEN employees BETWEEN 10 AND 50 THEN 'i between' END,
         CASE WHEN employees IN (5, 1000) THEN 'i in' END, CASE WHEN employees NOT IN (5, 1000) THEN 'i not in' END,
         CASE WHEN employees IS NULL THEN 'i is null' END,
         CASE WHEN revenue = 1e6 THEN 'n=' END, CASE WHEN revenue < 0 THEN 'n<' END,
         CASE WHEN revenue >= 1000000.5 THEN 'n>=' END, CASE WHEN revenue BETWEEN 0.5 AND 2.5 THEN 'n between' END,
         CASE WHEN revenue IN (2.5000, -3) THEN 'n in' END, CASE WHEN revenue <> 2.5 THEN 'n <>' END,
         CASE WHEN created_at < '2024-01-01 00:00:00+00' THEN 'ts<' END,
         CASE WHEN created_at = '2024-01-01 01:00:00+01' THEN 'ts=' END,
         CASE WHEN created_at BETWEEN '2024-01-01 00:00:00+00' AND '2024-06-30 23:59:59+00' THEN 'ts between' END,
         CASE WHEN created_at > '2024-06-30 23:59:59+00' THEN 'ts>' END,
         CASE WHEN created_at IS NOT NULL THEN 'ts not null' END) AS sql_matches
  FROM sc.leads l WHERE l.id BETWEEN 31 AND 37 ORDER BY l.id;
-- lists are read when the rules are compiled: a new list entry takes effect at once
INSERT INTO leadscore.list_entry (list, value) VALUES ('sc_titles', 'CTO');
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'sc_ops' AND lead_id IN ('31', '32') ORDER BY lead_id;
SELECT leadscore.score('sc_ops', 32, '2024-08-01 00:00+00') AS score_32;

-- ===========================================================================
-- 5. refresh(model, as_of): expiry that comes due, sticky stages. Activities lie in 2100.
-- ===========================================================================
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('sc_refresh', 0, 100);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, expires_after) VALUES
    (2401, 'sc_refresh', 'future open', 'future_open', 10, '3 months');
INSERT INTO leadscore.stage (model, name, min_score, sticky) VALUES
    ('sc_refresh', 'warm', 5, true),
    ('sc_refresh', 'hot', 15, false);
INSERT INTO sc.activities (lead_id, type, occurred_at) VALUES
    (41, 'future_open', '2100-01-01 00:00+00'),
    (41, 'future_open', '2100-02-01 00:00+00'),
    (42, 'future_open', '2100-01-01 00:00+00');
SELECT leadscore.track('sc_refresh', 'sc.activities', 'lead_id', 'type', 'occurred_at');
-- nothing has happened yet as of now()
SELECT lead_id, score, stage FROM leadscore.lead_score WHERE model = 'sc_refresh' ORDER BY lead_id;
SELECT leadscore.refresh('sc_refresh', '2099-12-31 00:00+00') AS changed;
SELECT leadscore.refresh('sc_refresh', '2100-02-15 00:00+00') AS changed;
SELECT lead_id, score, stage, scored_at FROM leadscore.lead_score WHERE model = 'sc_refresh' ORDER BY lead_id;
SELECT leadscore.refresh('sc_refresh', '2100-02-15 00:00+00') AS changed_again;
-- Apr 15: lead 41's first open expired (20 -> 10, hot is not sticky -> warm); lead 42's only one (10 -> 0, warm is sticky)
SELECT leadscore.refresh('sc_refresh', '2100-04-15 00:00+00') AS changed;
SELECT lead_id, score, stage, scored_at FROM leadscore.lead_score WHERE model = 'sc_refresh' ORDER BY lead_id;
SELECT leadscore.refresh('sc_refresh', '2100-05-15 00:00+00') AS changed;
SELECT lead_id, score, stage, scored_at FROM leadscore.lead_score WHERE model = 'sc_refresh' ORDER BY lead_id;
SELECT lead_id, from_stage, to_stage, score, changed_at
  FROM leadscore.stage_change WHERE model = 'sc_refresh' ORDER BY lead_id, changed_at;
-- from scratch, the stage as of May 15 is none (sticky only holds stored stages)
SELECT lead_id, score, stage FROM leadscore.scores_as_of('sc_refresh', '2100-05-15 00:00+00') ORDER BY lead_id;
SELECT stage, leads, position FROM leadscore.funnel WHERE model = 'sc_refresh' ORDER BY position NULLS LAST, stage NULLS FIRST;
-- stored scores equal the scores from scratch as of their scored_at
SELECT bool_and(s.score = leadscore.score('sc_refresh', s.lead_id::int, s.scored_at)) AS exact
  FROM leadscore.lead_score s WHERE s.model = 'sc_refresh';
-- on one machine changes are notified as they happen: nothing waits for notify_stage_changes()
SELECT leadscore.notify_stage_changes('sc_refresh') AS waiting, leadscore.notify_stage_changes() AS waiting_in_any_model;
SELECT leadscore.notify_stage_changes('no_such_model');

-- ===========================================================================
-- Huge statements apply their occurrences in batches (leadscore.batch_occurrences)
-- ===========================================================================
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('sc_batch', 0, 1000);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, max_count) VALUES
    (2901, 'sc_batch', 'open', 'open', 3, 4),
    (2902, 'sc_batch', 'demo', 'demo', 40, NULL);
CREATE TABLE sc.batch_acts (lead_id int, type text, occurred_at timestamptz);
CREATE INDEX ON sc.batch_acts (lead_id);
SELECT leadscore.track('sc_batch', 'sc.batch_acts', 'lead_id', 'type', 'occurred_at');
SHOW leadscore.batch_occurrences;
SET leadscore.batch_occurrences = 3;
INSERT INTO sc.batch_acts
SELECT 1 + g % 5, CASE WHEN g % 7 = 0 THEN 'demo' ELSE 'open' END, timestamptz '2024-03-01 00:00+00' + g * interval '1 hour'
  FROM generate_series(1, 200) AS g;
UPDATE sc.batch_acts SET type = 'demo' WHERE lead_id = 2 AND type = 'open';
DELETE FROM sc.batch_acts WHERE lead_id = 3 AND occurred_at < '2024-03-02';
-- every lead has state now: several in-place updates of the same rows in one statement
-- (a batch is applied at max(setting, 16 per lead) = 80 occurrences here)
SET leadscore.batch_occurrences = 2;
INSERT INTO sc.batch_acts
SELECT 1 + g % 5, CASE WHEN g % 3 = 0 THEN 'demo' ELSE 'open' END, timestamptz '2024-04-01 00:00+00' + g * interval '1 hour'
  FROM generate_series(1, 100) AS g;
RESET leadscore.batch_occurrences;
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'sc_batch' ORDER BY lead_id;
SELECT bool_and(s.score = leadscore.score('sc_batch', s.lead_id::int, s.scored_at)) AS exact
  FROM leadscore.lead_score s WHERE s.model = 'sc_batch';
SET leadscore.batch_occurrences = 0;  -- out of range

-- ===========================================================================
-- Clean up
-- ===========================================================================
SELECT leadscore.untrack(m) FROM unnest(ARRAY['sc_seed', 'sc_time', 'sc_fit', 'sc_ops', 'sc_refresh', 'sc_batch']) AS m;
SELECT count(*) AS state_rows FROM leadscore.lead_score WHERE model LIKE 'sc\_%';
SELECT count(*) AS history_rows FROM leadscore.stage_change WHERE model LIKE 'sc\_%';
DELETE FROM leadscore.list_entry WHERE list IN ('sc_titles', 'sc_domains');
DELETE FROM leadscore.model WHERE name LIKE 'sc\_%';
DROP SCHEMA sc CASCADE;
