-- Lead keys of type bigint, uuid and text; a partitioned activity table; rows with NULL lead,
-- type or time; deleting leads; untrack(). Rule ids are explicit (4xxx).
SET timezone = 'UTC';
CREATE SCHEMA lk;

-- ---------------------------------------------------------------------------
-- bigint keys, activity time of type date (read as midnight UTC)
-- ---------------------------------------------------------------------------
CREATE TABLE lk.leads_big (id bigint PRIMARY KEY, title text);
CREATE TABLE lk.acts_big (id bigserial PRIMARY KEY, lead_id bigint, kind text, occurred_on date);
CREATE INDEX ON lk.acts_big (lead_id);
INSERT INTO leadscore.model (name) VALUES ('lk_big');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES
    (4001, 'lk_big', 'visit', 'visit', 5);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, expires_after) VALUES
    (4002, 'lk_big', 'open', 'open', 1, '1 day');
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES
    (4003, 'lk_big', 'boss', 'title', '=', '{Boss}', 100);
INSERT INTO lk.leads_big VALUES (5000000000, 'Boss'), (-1, 'Intern'), (9223372036854775807, NULL);
INSERT INTO lk.acts_big (lead_id, kind, occurred_on) VALUES
    (5000000000, 'visit', '2024-01-01'), (5000000000, 'visit', '2024-01-02'),
    (-1, 'visit', '2024-01-01'), (9223372036854775807, 'visit', '2024-01-03');
SELECT leadscore.track('lk_big', 'lk.acts_big', 'lead_id', 'kind', 'occurred_on', 'lk.leads_big', 'id');
SELECT lead_id, score, fit_score, engagement_score FROM leadscore.lead_score WHERE model = 'lk_big' ORDER BY lead_id::bigint;
SELECT leadscore.score('lk_big', 5000000000::bigint, '2024-02-01 00:00+00') AS by_bigint,
       leadscore.score('lk_big', '5000000000'::text, '2024-02-01 00:00+00') AS by_text,
       leadscore.score('lk_big', 9223372036854775807, '2024-02-01 00:00+00') AS max_key;
-- a date counts from midnight UTC: the open of Jan 5 counts during Jan 5 only (expires after 1 day)
INSERT INTO lk.acts_big (lead_id, kind, occurred_on) VALUES (-1, 'open', '2024-01-05');
SELECT t AS as_of, leadscore.score('lk_big', -1::bigint, t) AS score
  FROM unnest(ARRAY['2024-01-04 23:59:59+00', '2024-01-05 00:00+00', '2024-01-05 23:59:59+00', '2024-01-06 00:00+00']::timestamptz[]) AS t
 ORDER BY t;
-- the per-lead state is keyed by the key in its own type
SELECT format_type(a.atttypid, a.atttypmod) AS state_key_type
  FROM leadscore.tracking t JOIN pg_attribute a ON a.attrelid = ('leadscore.' || quote_ident(t.state_table))::regclass
 WHERE t.model = 'lk_big' AND a.attname = 'lead';

-- ---------------------------------------------------------------------------
-- uuid keys
-- ---------------------------------------------------------------------------
CREATE TABLE lk.leads_uuid (id uuid PRIMARY KEY, email text);
CREATE TABLE lk.acts_uuid (id bigserial PRIMARY KEY, lead uuid, type text, at timestamptz);
CREATE INDEX ON lk.acts_uuid (lead);
INSERT INTO leadscore.model (name) VALUES ('lk_uuid');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (4101, 'lk_uuid', 'demo', 'demo', 100);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES
    (4102, 'lk_uuid', 'free mail', 'email', 'domain in list', '{free_email_domains}', -25);
INSERT INTO lk.leads_uuid VALUES
    ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'x@gmail.com'),
    ('00000000-0000-0000-0000-000000000001', 'y@corp.example');
INSERT INTO lk.acts_uuid (lead, type, at) VALUES
    ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'demo', '2024-01-01 00:00+00'),
    ('{00000000-0000-0000-0000-000000000001}', 'demo', '2024-01-01 00:00+00'),
    ('00000000-0000-0000-0000-000000000001', 'demo', '2024-01-02 00:00+00');
SELECT leadscore.track(model => 'lk_uuid', activities => 'lk.acts_uuid', lead_column => 'lead', type_column => 'type',
                       time_column => 'at', leads => 'lk.leads_uuid', lead_key => 'id');
SELECT lead_id, score, fit_score, engagement_score FROM leadscore.lead_score WHERE model = 'lk_uuid' ORDER BY lead_id COLLATE "C";
SELECT leadscore.score('lk_uuid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '2024-02-01 00:00+00') AS by_uuid,
       leadscore.score('lk_uuid', '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}'::text, '2024-02-01 00:00+00') AS by_text;
SELECT rule, family, points FROM leadscore.explain('lk_uuid', '00000000-0000-0000-0000-000000000001'::uuid, '2024-02-01 00:00+00') ORDER BY rule_id;
-- a key that is not a uuid
SELECT leadscore.score('lk_uuid', 'not-a-uuid'::text, '2024-02-01 00:00+00');
DELETE FROM lk.leads_uuid WHERE id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'lk_uuid' ORDER BY lead_id COLLATE "C";

-- ---------------------------------------------------------------------------
-- text keys
-- ---------------------------------------------------------------------------
CREATE TABLE lk.leads_text (key text PRIMARY KEY, country text);
CREATE TABLE lk.acts_text (id bigserial PRIMARY KEY, lead_key text, type text, occurred_at timestamp);
CREATE INDEX ON lk.acts_text (lead_key);
INSERT INTO leadscore.model (name) VALUES ('lk_text');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (4201, 'lk_text', 'call', 'call', 7);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES
    (4202, 'lk_text', 'DACH', 'country', 'in', '{DE,AT,CH}', 3);
INSERT INTO lk.leads_text VALUES ('ACME-1', 'DE'), ('acme-1', 'FR'), ('O''Brien & Co; DROP', 'AT'), (' spaced ', NULL), ('', 'CH');
INSERT INTO lk.acts_text (lead_key, type, occurred_at) VALUES
    ('ACME-1', 'call', '2024-01-01 10:00'),
    ('acme-1', 'call', '2024-01-01 10:00'), ('acme-1', 'call', '2024-01-02 10:00'),
    ('O''Brien & Co; DROP', 'call', '2024-01-01 10:00'),
    (' spaced ', 'call', '2024-01-01 10:00'),
    ('', 'call', '2024-01-01 10:00'),
    ('nobody', 'call', '2024-01-01 10:00');  -- no such lead: not scored
SELECT leadscore.track('lk_text', 'lk.acts_text', 'lead_key', 'type', 'occurred_at', 'lk.leads_text', 'key');
SELECT '"' || lead_id || '"' AS lead_id, score, fit_score, engagement_score
  FROM leadscore.lead_score WHERE model = 'lk_text' ORDER BY lead_id COLLATE "C";
SELECT '"' || k || '"' AS lead, leadscore.score('lk_text', k, '2024-02-01 00:00+00') AS score
  FROM unnest(ARRAY['ACME-1', 'acme-1', 'O''Brien & Co; DROP', ' spaced ', '']) AS k ORDER BY k COLLATE "C";
-- a timestamp without time zone is read as UTC: the 10:00 call counts from 10:00 UTC
SET timezone = 'America/New_York';
SELECT leadscore.score('lk_text', 'ACME-1'::text, '2024-01-01 09:59:59+00') AS before_call,
       leadscore.score('lk_text', 'ACME-1'::text, '2024-01-01 10:00:00+00') AS at_call;
SET timezone = 'UTC';
-- key updates move the state
UPDATE lk.leads_text SET key = 'ACME-2' WHERE key = 'ACME-1';
UPDATE lk.acts_text SET lead_key = 'ACME-2' WHERE lead_key = 'ACME-1';
SELECT '"' || lead_id || '"' AS lead_id, score, fit_score, engagement_score
  FROM leadscore.lead_score WHERE model = 'lk_text' ORDER BY lead_id COLLATE "C";

-- ---------------------------------------------------------------------------
-- A declaratively partitioned activity table (integer keys)
-- ---------------------------------------------------------------------------
CREATE TABLE lk.leads (id int PRIMARY KEY, title text);
CREATE TABLE lk.activities (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    lead_id     int,
    type        text,
    url         text,
    occurred_at timestamptz
) PARTITION BY RANGE (occurred_at);
CREATE TABLE lk.activities_2024h1 PARTITION OF lk.activities FOR VALUES FROM ('2024-01-01 00:00+00') TO ('2024-07-01 00:00+00');
CREATE TABLE lk.activities_2024h2 PARTITION OF lk.activities FOR VALUES FROM ('2024-07-01 00:00+00') TO ('2025-01-01 00:00+00');
CREATE TABLE lk.activities_other PARTITION OF lk.activities DEFAULT;
CREATE INDEX ON lk.activities (lead_id);
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('lk_part', 0, 100);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, attribute, op, value, points) VALUES
    (4301, 'lk_part', 'pricing', 'page_view', 'url', '=', '{/pricing}', 10),
    (4302, 'lk_part', 'any page', 'page_view', NULL, NULL, NULL, 1),
    (4303, 'lk_part', 'demo', 'demo', NULL, NULL, NULL, 50);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('lk_part', 'MQL', 50);
INSERT INTO lk.leads VALUES (1, 'CEO'), (2, 'CTO'), (3, 'Intern');
INSERT INTO lk.activities (lead_id, type, url, occurred_at) VALUES
    (1, 'page_view', '/pricing', '2024-02-01 00:00+00'),
    (1, 'page_view', '/blog',    '2024-08-01 00:00+00'),
    (2, 'page_view', '/pricing', '2023-06-01 00:00+00');
SELECT leadscore.track('lk_part', 'lk.activities', 'lead_id', 'type', 'occurred_at', 'lk.leads', 'id');
SELECT lead_id, score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'lk_part' ORDER BY lead_id::int;
-- one statement across all partitions, with rows whose lead, type or time is NULL: those are ignored
INSERT INTO lk.activities (lead_id, type, url, occurred_at) VALUES
    (1, 'demo', NULL, '2024-03-01 00:00+00'),
    (2, 'demo', NULL, '2024-09-01 00:00+00'),
    (3, 'page_view', '/pricing', '2022-01-01 00:00+00'),
    (NULL, 'demo', NULL, '2024-03-01 00:00+00'),
    (3, NULL, '/pricing', '2024-03-01 00:00+00'),
    (3, 'demo', NULL, NULL);
SELECT tableoid::regclass AS partition, lead_id, type, url, occurred_at
  FROM lk.activities ORDER BY id;
SELECT lead_id, score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'lk_part' ORDER BY lead_id::int;
SELECT id, leadscore.score('lk_part', id, '2025-01-01 00:00+00') AS score FROM lk.leads ORDER BY id;
-- filling in the NULL type and time makes the rows count
UPDATE lk.activities SET type = 'page_view' WHERE lead_id = 3 AND type IS NULL;
UPDATE lk.activities SET occurred_at = '2024-05-01 00:00+00' WHERE lead_id = 3 AND occurred_at IS NULL;
SELECT lead_id, score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'lk_part' ORDER BY lead_id::int;
-- an update that moves a row to another partition; then setting a lead to NULL
UPDATE lk.activities SET occurred_at = '2024-10-01 00:00+00' WHERE lead_id = 1 AND type = 'demo';
SELECT tableoid::regclass AS partition, count(*) FROM lk.activities WHERE lead_id = 1 GROUP BY 1 ORDER BY 1::text;
SELECT lead_id, score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'lk_part' AND lead_id = '1';
UPDATE lk.activities SET lead_id = NULL WHERE lead_id = 2 AND type = 'demo';
SELECT lead_id, score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'lk_part' AND lead_id = '2';
-- deleting rows that live in one partition (through the parent table): 62 - 11 = 51
DELETE FROM lk.activities WHERE lead_id = 1 AND occurred_at < '2024-07-01 00:00+00';
SELECT lead_id, score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'lk_part' AND lead_id = '1';
TRUNCATE lk.activities;
SELECT lead_id, score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'lk_part' ORDER BY lead_id::int;
-- every stored score is exact
SELECT count(*) AS leads,
       count(*) FILTER (WHERE s.score = leadscore.score('lk_part', s.lead_id::int, s.scored_at)) AS exact
  FROM leadscore.lead_score s WHERE s.model = 'lk_part';
-- deleting a lead removes its state; its activities no longer create state
INSERT INTO lk.activities (lead_id, type, url, occurred_at) VALUES (3, 'demo', NULL, '2024-03-01 00:00+00');
DELETE FROM lk.leads WHERE id = 3;
INSERT INTO lk.activities (lead_id, type, url, occurred_at) VALUES (3, 'demo', NULL, '2024-03-02 00:00+00');
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'lk_part' ORDER BY lead_id::int;
-- re-inserting the lead scores its existing activities
INSERT INTO lk.leads VALUES (3, 'Intern');
SELECT lead_id, score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'lk_part' AND lead_id = '3';
-- a partition created after track() gets the triggers: rows inserted straight into it are scored
CREATE TABLE lk.activities_2025 PARTITION OF lk.activities FOR VALUES FROM ('2025-01-01 00:00+00') TO ('2026-01-01 00:00+00');
INSERT INTO lk.activities_2025 (id, lead_id, type, url, occurred_at) VALUES (2000, 2, 'demo', NULL, '2025-02-01 00:00+00');
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'lk_part' AND lead_id = '2';
-- an attached table with rows: its rows are scored at once, and later rows too
CREATE TABLE lk.activities_2026 (id bigint NOT NULL, lead_id int, type text, url text, occurred_at timestamptz);
INSERT INTO lk.activities_2026 VALUES (1000, 1, 'demo', NULL, '2026-03-01 00:00+00');
ALTER TABLE lk.activities ATTACH PARTITION lk.activities_2026 FOR VALUES FROM ('2026-01-01 00:00+00') TO ('2027-01-01 00:00+00');
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'lk_part' AND lead_id = '1';
INSERT INTO lk.activities_2026 VALUES (1001, 1, 'page_view', '/pricing', '2026-03-02 00:00+00');
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'lk_part' AND lead_id = '1';
SELECT count(*) AS leads,
       count(*) FILTER (WHERE s.score = leadscore.score('lk_part', s.lead_id::int, s.scored_at)) AS exact
  FROM leadscore.lead_score s WHERE s.model = 'lk_part';

-- ---------------------------------------------------------------------------
-- untrack(): triggers, state and stage history go; rules stay; the CRM tables keep working
-- ---------------------------------------------------------------------------
SELECT t.model, c.relname AS on_table, count(*) AS triggers
  FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN leadscore.tracking t ON g.tgname LIKE 'leadscore\_' || t.state_table || '\_%'
 WHERE n.nspname = 'lk' AND NOT g.tgisinternal
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT state_table AS lk_part_state FROM leadscore.tracking WHERE model = 'lk_part' \gset
SELECT to_regclass('leadscore.' || :'lk_part_state') IS NOT NULL AS state_table_exists;
SELECT count(*) AS history FROM leadscore.stage_change WHERE model = 'lk_part';
SELECT leadscore.untrack('lk_part');
SELECT to_regclass('leadscore.' || :'lk_part_state') IS NOT NULL AS state_table_exists;
SELECT count(*) AS triggers FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
 WHERE c.relnamespace = 'lk'::regnamespace AND c.relname IN ('activities', 'leads') AND NOT g.tgisinternal;
SELECT (SELECT count(*) FROM leadscore.lead_score WHERE model = 'lk_part') AS state_rows,
       (SELECT count(*) FROM leadscore.stage_change WHERE model = 'lk_part') AS history,
       (SELECT count(*) FROM leadscore.tracking WHERE model = 'lk_part') AS tracking,
       (SELECT count(*) FROM leadscore.activity_rule WHERE model = 'lk_part') AS rules_kept;
INSERT INTO lk.activities (lead_id, type, url, occurred_at) VALUES (1, 'demo', NULL, '2024-03-01 00:00+00');
DELETE FROM lk.leads WHERE id = 2;
SELECT leadscore.score('lk_part', 1, '2025-01-01 00:00+00');
SELECT leadscore.untrack('lk_part');
-- tracked again, it scores what is there
SELECT leadscore.track('lk_part', 'lk.activities', 'lead_id', 'type', 'occurred_at', 'lk.leads', 'id');
SELECT lead_id, score, engagement_score, stage FROM leadscore.lead_score WHERE model = 'lk_part' ORDER BY lead_id::int;

-- Clean up
SELECT leadscore.untrack(m) FROM unnest(ARRAY['lk_big', 'lk_uuid', 'lk_text', 'lk_part']) AS m;
SELECT count(*) AS state_rows FROM leadscore.lead_score WHERE model LIKE 'lk\_%';
DELETE FROM leadscore.model WHERE name LIKE 'lk\_%';
DROP SCHEMA lk CASCADE;
