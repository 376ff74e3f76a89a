-- leadscore demo: a small CRM, a scoring model written as rows, live scores.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET timezone = 'UTC';
CREATE EXTENSION IF NOT EXISTS leadscore;
DROP SCHEMA IF EXISTS crm CASCADE;
CREATE SCHEMA crm;

-- The CRM's own tables, as it already has them.
CREATE TABLE crm.accounts (
    id        integer PRIMARY KEY,
    name      text NOT NULL,
    revenue   numeric,
    employees integer
);
CREATE TABLE crm.leads (
    id        integer PRIMARY KEY,
    account_id integer REFERENCES crm.accounts (id),
    name      text NOT NULL,
    title     text,
    industry  text,
    employees integer,
    revenue   numeric,
    country   text,
    email     text
);
CREATE TABLE crm.activities (
    id          bigserial PRIMARY KEY,
    lead_id     integer REFERENCES crm.leads (id) ON DELETE CASCADE,
    type        text NOT NULL,
    url         text,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX ON crm.activities (lead_id);

-- 60 leads and four months of activity, reproducible.
SELECT setseed(0.42) AS seeded \gset
INSERT INTO crm.accounts
SELECT a, (ARRAY['Acme','Globex','Initech','Umbrella','Hooli'])[1 + a % 5] || ' ' || a,
       (ARRAY[200000, 800000, 1500000, 9000000, 60000000])[1 + a % 5], (ARRAY[8, 40, 120, 900, 4000])[1 + a % 5]
FROM generate_series(1, 15) AS a;
INSERT INTO crm.leads
SELECT i, 1 + i % 15,
       (ARRAY['Ada','Ben','Chloe','Dev','Eva','Finn','Gita','Hugo','Iris','Jon'])[1 + (i % 10)] || ' ' ||
       (ARRAY['Meyer','Okafor','Rossi','Tanaka','Novak','Silva'])[1 + (i % 6)],
       (ARRAY['CEO','CTO','VP Marketing','Marketing Manager','Engineer','Student','Intern','Head of Sales'])[1 + floor(random() * 8)::int],
       (ARRAY['software','manufacturing','retail','education','finance'])[1 + floor(random() * 5)::int],
       (ARRAY[3, 25, 80, 250, 1200, 5000])[1 + floor(random() * 6)::int],
       round((random() * 50)::numeric, 1) * 1000000,
       (ARRAY['DE','FR','US','GB','NL','BR'])[1 + floor(random() * 6)::int],
       lower((ARRAY['ada','ben','chloe','dev','eva','finn','gita','hugo','iris','jon'])[1 + (i % 10)]) || i || '@' ||
       (ARRAY['acme.com','globex.io','initech.de','gmail.com','outlook.com','competitor.example'])[1 + floor(random() * 6)::int]
FROM generate_series(1, 60) AS i;

INSERT INTO crm.activities (lead_id, type, url, occurred_at)
SELECT 1 + floor(random() * 60)::int,
       t.type,
       CASE WHEN t.type = 'page_view' THEN (ARRAY['/pricing','/blog/scoring','/product','/careers'])[1 + floor(random() * 4)::int] END,
       now() - random() * interval '120 days'
FROM generate_series(1, 420) AS g,
     LATERAL (SELECT (ARRAY['email_open','email_open','email_open','email_open','email_open','email_open',
                            'link_click','link_click','page_view','page_view','page_view','page_view',
                            'newsletter','newsletter','ebook','case_study','webinar','unsubscribe',
                            'email_open','page_view','link_click','email_open','page_view','demo_request'])
                     [1 + floor(random() * 24 + g * 0)::int] AS type) AS t;

-- The scoring model: marketing operations writes rows.
INSERT INTO leadscore.model (name, score_min, score_max, description)
VALUES ('demo', 0, 100, 'Demo model: engagement plus fit, 0-100');

INSERT INTO leadscore.activity_rule (model, name, activity_type, attribute, op, value, points, once, max_count, max_points, expires_after, half_life) VALUES
 ('demo', 'newsletter sign-up', 'newsletter',   NULL,  NULL, NULL,          10, true,  NULL, NULL, NULL, NULL),
 ('demo', 'e-book download',    'ebook',        NULL,  NULL, NULL,          10, false, 3,    NULL, NULL, NULL),
 ('demo', 'case study',         'case_study',   NULL,  NULL, NULL,          25, false, 2,    NULL, NULL, NULL),
 ('demo', 'webinar attended',   'webinar',      NULL,  NULL, NULL,          10, false, NULL, 30,   NULL, NULL),
 ('demo', 'demo request',       'demo_request', NULL,  NULL, NULL,         100, true,  NULL, NULL, NULL, NULL),
 ('demo', 'e-mail open',        'email_open',   NULL,  NULL, NULL,           2, false, NULL, 20,   '3 months', NULL),
 ('demo', 'link click',         'link_click',   NULL,  NULL, NULL,           5, false, NULL, 25,   '3 months', NULL),
 ('demo', 'pricing page',       'page_view',    'url', '=',  '{/pricing}',  15, false, 2,    NULL, NULL, '30 days'),
 ('demo', 'careers page',       'page_view',    'url', 'like', '{/careers%}', -10, true, NULL, NULL, NULL, NULL),
 ('demo', 'unsubscribed',       'unsubscribe',  NULL,  NULL, NULL,         -20, true,  NULL, NULL, NULL, NULL);

-- Patterns over time: a burst of pricing visits (3 in a week, counted once), opens counted
-- at most once a week, and points taken away when a lead stops visiting for a month.
INSERT INTO leadscore.activity_rule (model, name, activity_type, attribute, op, value, points, once, min_count, within, cooldown, quiet_for) VALUES
 ('demo', 'pricing 3x in a week', 'page_view',  'url', '=',  '{/pricing}',  20, true,  3,    '7 days', NULL,     NULL),
 ('demo', 'weekly reader',        'email_open', NULL,  NULL, NULL,           3, false, NULL, NULL,     '7 days', NULL),
 ('demo', 'gone quiet',           'page_view',  NULL,  NULL, NULL,         -10, false, NULL, NULL,     NULL,     '30 days');

INSERT INTO leadscore.list_entry (list, value) VALUES ('competitor_domains', 'competitor.example');

INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points, disqualify) VALUES
 ('demo', 'C-level',            'title',     '~*',             '{^(ceo|cto|cfo)$}',         20, false),
 ('demo', 'VP or head',         'title',     '~*',             ARRAY['^(vp|head)\y'],             15, false),
 ('demo', 'target industry',    'industry',  'in',             '{software,finance}',         10, false),
 ('demo', 'mid-size company',   'employees', 'between',        '{50,2000}',                  10, false),
 ('demo', 'student',            'title',     'in',             '{Student,Intern}',          -30, false),
 ('demo', 'free-mail address',  'email',     'domain in list', '{free_email_domains}',      -10, false),
 ('demo', 'competitor',         'email',     'domain in list', '{competitor_domains}',        0, true);

-- The lead's account is a related record: rules read its columns as account.column, and an
-- account change rescores its leads.
INSERT INTO leadscore.relation (model, name, lead_column, target, target_key)
VALUES ('demo', 'account', 'account_id', 'crm.accounts', 'id');
-- One rule, several conditions (AND within a group, OR across groups): the CEO of a company with
-- 1M+ revenue who attended a webinar.
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once)
VALUES ('demo', 'webinar by a CEO of a 1M+ company', 'webinar', 25, true);
INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value)
SELECT r.id, 1, c.attribute, c.op, c.value
  FROM leadscore.activity_rule r,
       (VALUES ('lead.title', '=', '{CEO}'::text[]), ('account.revenue', '>=', '{1000000}'::text[])) AS c(attribute, op, value)
 WHERE r.model = 'demo' AND r.name = 'webinar by a CEO of a 1M+ company';
-- Points per value: a fit rule's points times a numeric column, here 1 point per 200 employees
-- of the lead's account.
INSERT INTO leadscore.fit_rule (model, name, points, multiply_by)
VALUES ('demo', 'account size', 0.005, 'account.employees');

INSERT INTO leadscore.stage (model, name, min_score, min_fit, min_engagement, sticky) VALUES
 ('demo', 'cold', 0,  NULL, NULL, false),
 ('demo', 'IQL',  25, NULL, NULL, false),
 ('demo', 'MQL',  45, NULL, 20,   false),
 ('demo', 'SQL',  65, 20,   NULL, true);

-- Grades beside the score: fit A/B/C, engagement 1/2/3 (A1 is the best cell).
INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES
 ('demo', 'fit', 'A', 20), ('demo', 'fit', 'B', 5), ('demo', 'fit', 'C', -1000),
 ('demo', 'engagement', '1', 40), ('demo', 'engagement', '2', 15), ('demo', 'engagement', '3', -1000);

-- Attach the model to the CRM's tables: triggers keep every score current from now on.
SELECT leadscore.track('demo', 'crm.activities', 'lead_id', 'type', 'occurred_at',
                       leads => 'crm.leads', lead_key => 'id') AS leads_scored;

\echo
\echo '== Top 15 leads'
SELECT ls.lead_id, l.name, l.title, l.email, ls.score, ls.fit_score AS fit, ls.engagement_score AS engagement, ls.stage,
       ls.fit_grade || ls.engagement_grade AS grade
  FROM leadscore.lead_score ls JOIN crm.leads l ON l.id = ls.lead_id::int
 WHERE ls.model = 'demo'
 ORDER BY ls.score DESC, ls.lead_id::int
 LIMIT 15;

\echo '== Funnel'
SELECT stage, leads FROM leadscore.funnel WHERE model = 'demo' ORDER BY position NULLS LAST, stage;

\echo '== Grades: leads per fit grade (rows) and engagement grade (columns)'
SELECT fit_grade,
       sum(leads) FILTER (WHERE engagement_grade = '1') AS "1",
       sum(leads) FILTER (WHERE engagement_grade = '2') AS "2",
       sum(leads) FILTER (WHERE engagement_grade = '3') AS "3"
  FROM leadscore.grade_matrix WHERE model = 'demo' GROUP BY fit_grade ORDER BY fit_grade;

-- A new demo request arrives: the score and stage change in the same transaction.
\echo '== Lead 7 requests a demo'
INSERT INTO crm.activities (lead_id, type, occurred_at) VALUES (7, 'demo_request', now());
SELECT lead_id, score, stage FROM leadscore.lead_score WHERE model = 'demo' AND lead_id = '7';

\echo '== Why lead 7 has that score'
SELECT rule, family, occurrences, points, next_expiry FROM leadscore.explain('demo', 7) ORDER BY family, points DESC;

\echo '== Stage changes so far'
SELECT lead_id, from_stage, to_stage, score FROM leadscore.stage_change WHERE model = 'demo' AND lead_id = '7';

\echo '== Lead 61, the CEO of a company with 1M+ revenue, attends a webinar'
INSERT INTO crm.leads (id, account_id, name, title, email) VALUES (61, 4, 'Grace Hopper', 'CEO', 'grace@initech.de');
INSERT INTO crm.activities (lead_id, type, occurred_at) VALUES (61, 'webinar', now());
SELECT rule, family, occurrences, points FROM leadscore.explain('demo', 61) ORDER BY family, points DESC;
\echo '== Her account shrinks below 1M revenue: she is rescored in the same statement'
UPDATE crm.accounts SET revenue = 900000 WHERE id = 4;
SELECT lead_id, score, fit_score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'demo' AND lead_id = '61';
