-- leadscore demo model "demo" for the CRM of demo/generate.sql: every rule kind (condition groups,
-- the lead's account as a relation, per-value points), four stages, grades,
-- tracked on crm.activity and crm.lead.  psql -X -f demo/model.sql
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS leadscore;
SELECT count(leadscore.untrack(model)) AS untracked FROM leadscore.tracking WHERE model = 'demo' \gset
DELETE FROM leadscore.model WHERE name = 'demo';
DELETE FROM leadscore.list_entry WHERE list = 'demo_competitors';

INSERT INTO leadscore.model (name, score_min, score_max, description)
VALUES ('demo', 0, 100, 'Demo model: engagement plus fit, clamped to 0..100');

INSERT INTO leadscore.list_entry (list, value) VALUES ('demo_competitors', 'rivalscore.example');

INSERT INTO leadscore.activity_rule
    (model, name, activity_type, attribute, op, value, points, once, max_count, max_points, expires_after, half_life, disqualify)
VALUES
 ('demo', 'newsletter sign-up', 'newsletter',    NULL,  NULL,   NULL,              5, true,  NULL, NULL, NULL,       NULL,      false),
 ('demo', 'e-mail open',        'email_open',    NULL,  NULL,   NULL,              1, false, NULL, 6,    '90 days',  NULL,      false),
 ('demo', 'e-mail click',       'email_click',   NULL,  NULL,   NULL,              3, false, NULL, 9,    '90 days',  NULL,      false),
 ('demo', 'pricing page',       'page_view',     'url', '=',    '{/pricing}',      8, false, 3,    NULL, NULL,       '30 days', false),
 ('demo', 'product pages',      'page_view',     'url', 'like', '{/product%}',     2, false, 5,    NULL, '60 days',  NULL,      false),
 ('demo', 'docs reader',        'page_view',     'url', '=',    '{/docs}',         2, false, 3,    NULL, NULL,       '45 days', false),
 ('demo', 'careers page',       'page_view',     'url', '=',    '{/careers}',     -5, true,  NULL, NULL, NULL,       NULL,      false),
 ('demo', 'e-book download',    'ebook',         NULL,  NULL,   NULL,              4, false, 3,    NULL, '180 days', NULL,      false),
 ('demo', 'case study',         'case_study',    NULL,  NULL,   NULL,              6, false, 2,    NULL, '180 days', NULL,      false),
 ('demo', 'webinar attended',   'webinar',       NULL,  NULL,   NULL,             10, false, NULL, 12,   NULL,       '60 days', false),
 ('demo', 'demo request',       'demo_request',  NULL,  NULL,   NULL,             25, true,  NULL, NULL, NULL,       '90 days', false),
 ('demo', 'trial sign-up',      'trial_signup',  NULL,  NULL,   NULL,             20, true,  NULL, NULL, '120 days', NULL,      false),
 ('demo', 'contact sales',      'contact_sales', NULL,  NULL,   NULL,             15, false, 2,    NULL, '60 days',  NULL,      false),
 ('demo', 'hard bounce',        'bounce',        NULL,  NULL,   NULL,            -10, true,  NULL, NULL, NULL,       NULL,      false),
 ('demo', 'unsubscribed',       'unsubscribe',   NULL,  NULL,   NULL,            -15, true,  NULL, NULL, NULL,       NULL,      false);

-- Time patterns: a burst of pricing visits, webinars more than once, sales contacts at most once
-- a month, and points taken away when a lead stops visiting (refresh() applies it when due).
INSERT INTO leadscore.activity_rule
    (model, name, activity_type, attribute, op, value, points, once, expires_after, min_count, within, cooldown, quiet_for)
VALUES
 ('demo', 'pricing 3x in a week', 'page_view',     'url', '=',  '{/pricing}', 10, true,  '90 days', 3,    '7 days', NULL,      NULL),
 ('demo', 'repeat webinar',       'webinar',       NULL,  NULL, NULL,          5, true,  NULL,      2,    NULL,     NULL,      NULL),
 ('demo', 'sales call, monthly',  'contact_sales', NULL,  NULL, NULL,          5, false, '180 days', NULL, NULL,     '30 days', NULL),
 ('demo', 'gone quiet',           'page_view',     NULL,  NULL, NULL,         -8, false, NULL,      NULL, NULL,     NULL,      '60 days');

INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points, disqualify) VALUES
 ('demo', 'C-level',           'title',           'in',             '{CEO,CTO,CFO}',             15, false),
 ('demo', 'VP or head',        'title',           '~*',             ARRAY['^(vp|head)\y'],             12, false),
 ('demo', 'manager',           'title',           'like',           '{%Manager}',                  5, false),
 ('demo', 'student or intern', 'title',           'in',             '{Student,Intern}',          -20, false),
 ('demo', 'target industry',   'industry',        'in',             '{software,finance}',          8, false),
 ('demo', 'mid-size company',  'employees',       'between',        '{50,5000}',                   8, false),
 ('demo', 'revenue 10M+',      'revenue',         '>=',             '{10000000}',                  4, false),
 ('demo', 'core country',      'country',         'in',             '{US,DE,GB,NL}',               3, false),
 ('demo', 'free-mail address', 'email',           'domain in list', '{free_email_domains}',      -10, false),
 ('demo', 'uses a competitor', 'uses_competitor', 'is not null',    NULL,                          4, false),
 ('demo', 'competitor',        'email',           'domain in list', '{demo_competitors}',          0, true);

-- Related records: a lead's account (crm.lead.account_id -> crm.account.id). Rules read its
-- columns as account.column; an account change rescores its leads.
INSERT INTO leadscore.relation (model, name, lead_column, target, target_key)
VALUES ('demo', 'account', 'account_id', 'crm.account', 'id');

-- Condition groups: a C-level lead of a company with 1M+ revenue who attended a webinar (AND
-- within a group), and an enterprise decision maker: a VP/head or a C-level lead (OR across
-- groups) of an account with 1,000+ employees.
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once)
VALUES ('demo', 'webinar by a C-level of a 1M+ company', 'webinar', 10, true);
INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value)
SELECT id, 1, 'lead.title', 'in', '{CEO,CTO,CFO}'::text[] FROM leadscore.activity_rule
 WHERE model = 'demo' AND name = 'webinar by a C-level of a 1M+ company'
UNION ALL
SELECT id, 1, 'account.revenue', '>=', '{1000000}'::text[] FROM leadscore.activity_rule
 WHERE model = 'demo' AND name = 'webinar by a C-level of a 1M+ company';
INSERT INTO leadscore.fit_rule (model, name, points) VALUES ('demo', 'enterprise decision maker', 6);
INSERT INTO leadscore.fit_condition (rule_id, grp, attribute, op, value)
SELECT r.id, c.grp, c.attribute, c.op, c.value
  FROM leadscore.fit_rule r,
       (VALUES (1, 'title', '~*', ARRAY['^(vp|head)\y']), (1, 'account.employees', '>=', ARRAY['1000']),
               (2, 'title', 'in', ARRAY['CEO', 'CTO', 'CFO']), (2, 'account.employees', '>=', ARRAY['1000'])
       ) AS c(grp, attribute, op, value)
 WHERE r.model = 'demo' AND r.name = 'enterprise decision maker';
-- Per-value points: 1 point per 1,000 employees of the lead's account.
INSERT INTO leadscore.fit_rule (model, name, points, multiply_by)
VALUES ('demo', 'account size', 0.001, 'account.employees');

INSERT INTO leadscore.stage (model, name, min_score, min_fit, min_engagement, sticky) VALUES
 ('demo', 'Subscriber', 0,  NULL, NULL, false),
 ('demo', 'Lead',       25, NULL, NULL, false),
 ('demo', 'MQL',        50, NULL, 20,   false),
 ('demo', 'SQL',        70, 15,   NULL, true);

-- Grades beside the score (A1 .. C3): fit A/B/C, engagement 1/2/3.
INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES
 ('demo', 'fit', 'A', 20), ('demo', 'fit', 'B', 8), ('demo', 'fit', 'C', -1000),
 ('demo', 'engagement', '1', 30), ('demo', 'engagement', '2', 12), ('demo', 'engagement', '3', -1000);

SELECT leadscore.track('demo', 'crm.activity', 'lead_id', 'type', 'occurred_at',
                       leads => 'crm.lead', lead_key => 'id') AS leads_scored;
