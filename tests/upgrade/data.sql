-- Data for the upgrade test: the same rows go into a 0.1.0 database (before ALTER EXTENSION
-- UPDATE) and a fresh 0.2.0 one. No expiry or decay, so stored scores do not depend on when
-- they were computed.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA up;
CREATE TABLE up.leads (id int PRIMARY KEY, title text, email text, employees int);
CREATE TABLE up.acts (id bigserial PRIMARY KEY, lead_id int, type text, url text, occurred_at timestamptz);
CREATE INDEX ON up.acts (lead_id);
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('up', 0, 200);
INSERT INTO leadscore.list_entry (list, value) VALUES ('up_competitors', 'rival.example');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, attribute, op, value, points, once, max_count, max_points) VALUES
    (501, 'up', 'demo request', 'demo', NULL, NULL, NULL, 50, true, NULL, NULL),
    (502, 'up', 'open', 'open', NULL, NULL, NULL, 3, false, 5, NULL),
    (503, 'up', 'pricing', 'page', 'url', '=', '{/pricing}', 10, false, NULL, 25);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points, disqualify) VALUES
    (601, 'up', 'director', 'title', '~*', ARRAY['director'], 30, false),
    (602, 'up', 'free mail', 'email', 'domain in list', '{free_email_domains}', -10, false),
    (603, 'up', 'competitor', 'email', 'domain in list', '{up_competitors}', 0, true),
    (604, 'up', 'mid-size', 'employees', 'between', '{50,5000}', 15, false);
INSERT INTO leadscore.stage (model, name, min_score, min_fit) VALUES ('up', 'IQL', 10, NULL), ('up', 'MQL', 60, NULL), ('up', 'SQL', 100, 30);
INSERT INTO up.leads
SELECT i, (ARRAY['Sales Director','Engineer','IT Director','Student'])[1 + i % 4],
       'p' || i || '@' || (ARRAY['acme.com','gmail.com','rival.example','initech.de'])[1 + (i / 4) % 4],
       (ARRAY[10, 120, 800, 9000])[1 + (i / 3) % 4]
  FROM generate_series(1, 40) AS i;
INSERT INTO up.acts (lead_id, type, url, occurred_at)
SELECT 1 + (g * 7) % 40, (ARRAY['open','open','page','demo','other'])[1 + g % 5],
       CASE WHEN g % 3 = 0 THEN '/pricing' ELSE '/blog' END, timestamptz '2026-01-01 00:00+00' + g * interval '3 hours'
  FROM generate_series(1, 300) AS g;
SELECT leadscore.track('up', 'up.acts', 'lead_id', 'type', 'occurred_at', 'up.leads', 'id') AS tracked \gset
-- Live changes before the upgrade: stage history and state updates.
INSERT INTO up.acts (lead_id, type, occurred_at) VALUES (2, 'demo', '2026-03-01'), (3, 'demo', '2026-03-01');
DELETE FROM up.acts WHERE lead_id = 5 AND type = 'open';
-- A rule disabled before the upgrade, with activities while disabled; enabled after it (run.sh).
UPDATE leadscore.activity_rule SET enabled = false WHERE id = 502;
INSERT INTO up.acts (lead_id, type, occurred_at) VALUES (4, 'open', '2026-03-02'), (6, 'open', '2026-03-02');
