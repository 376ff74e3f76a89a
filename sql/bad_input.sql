-- Bad input beyond the rule forms of rules.sql: DDL on tracked tables, track() on the wrong
-- columns, odd activity times, overflowing points, huge lists, pathological regular
-- expressions. Every case is a clear error or a documented handling, never a wrong score.
SET timezone = 'UTC';
\set VERBOSITY terse
CREATE SCHEMA bad;
CREATE TABLE bad.leads (id int PRIMARY KEY, title text, employees int);
CREATE TABLE bad.acts (lead_id int, type text, url text, at timestamptz);
CREATE INDEX ON bad.acts (lead_id);
INSERT INTO bad.leads VALUES (1, 'CEO', 100), (2, 'Engineer', 10);
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('bad', NULL, NULL);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, attribute, op, value, points) VALUES
    (4001, 'bad', 'pricing', 'page', 'url', '=', '{/pricing}', 5),
    (4002, 'bad', 'open', 'open', NULL, NULL, NULL, 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES
    (4101, 'bad', 'ceo', 'title', '=', '{CEO}', 10),
    (4102, 'bad', 'size', 'employees', 'between', '{50,500}', 3);

-- track() on columns the tables lack
SELECT leadscore.track('bad', 'bad.acts', 'lead', 'type', 'at', 'bad.leads', 'id');
SELECT leadscore.track('bad', 'bad.acts', 'lead_id', 'kind', 'at', 'bad.leads', 'id');
SELECT leadscore.track('bad', 'bad.acts', 'lead_id', 'type', 'url', 'bad.leads', 'id');
SELECT leadscore.track('bad', 'bad.acts', 'lead_id', 'type', 'at', 'bad.leads', 'key');
SELECT leadscore.track('bad', 'bad.no_such_table', 'lead_id', 'type', 'at');
SELECT leadscore.track('nope', 'bad.acts', 'lead_id', 'type', 'at');
SELECT leadscore.track('bad', 'bad.acts', 'lead_id', 'type', 'at', 'bad.leads', 'id');

-- a fit rule on a column the tracked leads table lacks
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES ('bad', 'x', 'revenue', '>', '{1}', 1);

-- activity rows with NULL, future and far-past times: NULL is not scored, a future row counts
-- once its time comes, a far-past row counts (no expiry on these rules)
INSERT INTO bad.acts VALUES (1, 'open', NULL, NULL), (1, 'open', NULL, '2999-01-01'), (1, 'open', NULL, '1900-01-01'),
                            (1, 'page', '/pricing', 'infinity'), (1, 'page', '/pricing', '-infinity');
SELECT lead_id, score, engagement_score FROM leadscore.lead_score WHERE model = 'bad' ORDER BY lead_id;
SELECT leadscore.score('bad', 1, '3000-01-01') AS score_in_3000;

-- points that overflow: a single rule is capped at 1e12, and sums beyond the int64 range of
-- millionths are refused with a clear error rather than wrapped
UPDATE leadscore.activity_rule SET points = 1e13 WHERE id = 4002;
UPDATE leadscore.activity_rule SET points = 999999999999 WHERE id = 4002;
INSERT INTO bad.acts SELECT 2, 'open', NULL, '2020-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 10000) g;
SELECT count(*) AS leads_with_state FROM leadscore.lead_score WHERE model = 'bad';
UPDATE leadscore.activity_rule SET points = 1 WHERE id = 4002;

-- a 10,000-element "in" list is accepted and matched
UPDATE leadscore.fit_rule SET op = 'in', value = (SELECT array_agg('title ' || g) || ARRAY['Engineer'] FROM generate_series(1, 10000) g)
 WHERE id = 4101;
SELECT lead_id, fit_score FROM leadscore.lead_score WHERE model = 'bad' ORDER BY lead_id;
UPDATE leadscore.fit_rule SET op = '=', value = '{CEO}' WHERE id = 4101;

-- a pathological regular expression runs inside PostgreSQL's own regex engine: its limits
-- apply, and a statement timeout cancels it
UPDATE leadscore.fit_rule SET op = '~', value = ARRAY['(a*)*(b*)*(c*)*$x'] WHERE id = 4101;
UPDATE bad.leads SET title = repeat('a', 30) || 'z' WHERE id = 2;
SET statement_timeout = '2s';
UPDATE leadscore.fit_rule SET op = '~', value = ARRAY['^(((a+)+)+)+$'] WHERE id = 4101;
SELECT lead_id, fit_score FROM leadscore.lead_score WHERE model = 'bad' ORDER BY lead_id;
-- beyond the engine's limits: refused when the rule is written
UPDATE leadscore.fit_rule SET op = '~', value = ARRAY['((((a{1,200}){1,200}){1,200}){1,200})'] WHERE id = 4101;
RESET statement_timeout;
UPDATE leadscore.fit_rule SET op = '=', value = '{CEO}' WHERE id = 4101;

-- DDL on tracked tables
ALTER TABLE bad.acts RENAME COLUMN url TO link;          -- a rule uses it: refused
ALTER TABLE bad.acts DROP COLUMN url;                     -- refused
ALTER TABLE bad.acts RENAME COLUMN at TO occurred_at;     -- a tracked column: refused
ALTER TABLE bad.leads ALTER COLUMN employees TYPE boolean USING employees > 50;  -- "between 50 and 500": refused
ALTER TABLE bad.leads ALTER COLUMN employees TYPE bigint; -- compatible: accepted, rules recompiled, scores recomputed
ALTER TABLE bad.leads ALTER COLUMN title TYPE varchar(40);
ALTER TABLE bad.acts ADD COLUMN note text;                -- unrelated: accepted
ALTER TABLE bad.acts RENAME TO activities;                -- tables are tracked by identity
INSERT INTO bad.activities (lead_id, type, at) VALUES (1, 'open', '2021-01-01');
SELECT model, activities FROM leadscore.tracking WHERE model = 'bad';
SELECT bool_and(s.score = leadscore.score('bad', s.lead_id::int, s.scored_at)) AS exact
  FROM leadscore.lead_score s WHERE s.model = 'bad';
DROP TABLE bad.activities;                                -- untracks the model, keeps its rules
SELECT count(*) AS tracked FROM leadscore.tracking WHERE model = 'bad';
SELECT count(*) AS rules FROM leadscore.activity_rule WHERE model = 'bad';
INSERT INTO bad.leads VALUES (3, 'CEO', 1);               -- the leads table works without the model
SELECT leadscore.score('bad', 1);

DELETE FROM leadscore.model WHERE name = 'bad';
DROP SCHEMA bad CASCADE;
