-- Learning: features from any table (numeric bins, one-hot categories, 'Select' and '' as
-- missing), logistic regression by Newton steps of the logit_step aggregate, and the
-- cross-validated report of logistic, integer points and naive Bayes.
SET extra_float_digits = 0;
SELECT setseed(0.25);
CREATE TABLE learn_leads AS
SELECT g AS "Prospect ID",
       (ARRAY['API', 'Landing Page Submission', 'Lead Add Form', 'Lead Import'])[1 + (g % 4)] AS "Lead Origin",
       (ARRAY['Google', 'Direct Traffic', 'Select', NULL, 'Reference'])[1 + (g / 4) % 5] AS "Lead Source",
       CASE WHEN g % 11 = 0 THEN NULL ELSE (g * 37) % 2000 END AS "Total Time Spent on Website",
       (ARRAY['Unemployed', 'Working Professional', 'Student', 'Select', ''])[1 + (g / 20) % 5] AS "Occupation"
  FROM generate_series(1, 3000) AS g;
ALTER TABLE learn_leads ADD COLUMN converted boolean;
UPDATE learn_leads SET converted = random() < 1 / (1 + exp(-(-1.5 + CASE "Lead Origin" WHEN 'Lead Add Form' THEN 2.5 ELSE 0 END
        + CASE WHEN "Total Time Spent on Website" > 1000 THEN 1.2 ELSE 0 END
        + CASE "Occupation" WHEN 'Working Professional' THEN 1.5 ELSE 0 END)));

-- The features: 'Select' and '' are missing like NULL; the time is cut into quintiles.
SELECT replace(f, E'\x1f', ' | ') AS feature, count(*)
  FROM leadscore.learn_design('learn_leads', 'Prospect ID', 'converted') AS d, unnest(d.features) AS f
 GROUP BY f ORDER BY f;

-- The coefficients: the planted effects come out strongest.
SELECT replace(feature, E'\x1f', ' | ') AS feature, round(coefficient::numeric, 1) AS coefficient, support
  FROM leadscore.learn_logistic($$SELECT * FROM leadscore.learn_design('learn_leads', 'Prospect ID', 'converted')$$)
 ORDER BY abs(coefficient) DESC LIMIT 5;

-- Cross-validated AUC: integer points lose less than 0.01 against the logistic model.
SELECT fold, method, auc, leads FROM leadscore.learn_report('learn_leads', 'Prospect ID', 'converted', 3) WHERE fold = 'mean';
SELECT bool_and(abs(i.auc - l.auc) <= 0.01) AS integer_points_within_001
  FROM leadscore.learn_report('learn_leads', 'Prospect ID', 'converted', 3) AS i
  JOIN leadscore.learn_report('learn_leads', 'Prospect ID', 'converted', 3) AS l USING (fold)
 WHERE i.method = 'integer points' AND l.method = 'logistic';

-- The training aggregate is parallel safe (combine, serialize and deserialize functions).
SELECT proparallel FROM pg_proc WHERE oid = 'leadscore.logit_step'::regproc;

-- Errors.
\set VERBOSITY terse
SELECT * FROM leadscore.learn_design('no_such_table', 'id', 'converted');
SELECT * FROM leadscore.learn_design('learn_leads', 'id', 'converted');
SELECT * FROM leadscore.learn_design('learn_leads', 'Prospect ID', 'won');
SELECT * FROM leadscore.learn_report('learn_leads', 'Prospect ID', 'converted', 1);
SELECT * FROM leadscore.learn_logistic($$SELECT lead, features, false FROM leadscore.learn_design('learn_leads', 'Prospect ID', 'converted')$$);
SELECT * FROM leadscore.learn_logistic($$SELECT lead, features, converted FROM leadscore.learn_design('learn_leads', 'Prospect ID', 'converted')$$, -1);
\set VERBOSITY default
DROP TABLE learn_leads;

-- Learned points for a tracked model, written into a draft of ordinary rules and backtested.
CREATE SCHEMA lp;
CREATE TABLE lp.leads (id int PRIMARY KEY, title text, employees int);
CREATE TABLE lp.acts (lead_id int, type text, at timestamptz);
CREATE INDEX ON lp.acts (lead_id);
CREATE TABLE lp.outcomes (lead_id int, converted boolean, converted_at timestamptz);
INSERT INTO lp.leads SELECT g, (ARRAY['CEO', 'Engineer', 'Student', 'Select'])[1 + g % 4], (g * 13) % 900 FROM generate_series(1, 2000) g;
-- demo requests within 90 days before June 1 and CEOs convert more; webinars long before do not count
INSERT INTO lp.acts SELECT g, 'demo', '2026-05-01'::timestamptz - (g % 20) * interval '1 day' FROM generate_series(1, 2000) g WHERE g % 3 = 0;
INSERT INTO lp.acts SELECT g, 'webinar', '2025-06-01' FROM generate_series(1, 2000) g WHERE g % 2 = 0;
INSERT INTO lp.outcomes SELECT l.id, random() < 1 / (1 + exp(-(-2 + CASE WHEN l.id % 3 = 0 THEN 2 ELSE 0 END
                                                          + CASE l.title WHEN 'CEO' THEN 1.5 ELSE 0 END))), '2026-07-01'
  FROM lp.leads l;
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('lp', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('lp', 'webinar', 'webinar', 50);
SELECT leadscore.track('lp', 'lp.acts', 'lead_id', 'type', 'at', 'lp.leads', 'id');
SELECT kind, attribute, activity_type, op, value, weight > 0 AS positive, support, points
  FROM leadscore.learn_points('lp', 'lp.outcomes', '2026-06-01', '90 days')
 WHERE abs(weight) > 0.5 ORDER BY kind, attribute, activity_type;
SELECT leadscore.write_draft('lp', 'lp_learned', 'lp.outcomes', '2026-06-01', '90 days') > 0 AS written;
SELECT name, activity_type, points > 0 AS positive, once, expires_after FROM leadscore.activity_rule
 WHERE model = 'lp_learned' ORDER BY name;
SELECT count(*) > 0 AS fit_rules FROM leadscore.fit_rule WHERE model = 'lp_learned';
-- the learned draft ranks the outcomes better than the hand-made model (webinars a year ago)
SELECT (SELECT value FROM leadscore.backtest(ARRAY['lp_learned'], 'lp.outcomes', '2026-06-01', 'lp') WHERE section = 'overall')
     > (SELECT value FROM leadscore.backtest(ARRAY['lp'], 'lp.outcomes', '2026-06-01', 'lp') WHERE section = 'overall')
       AS learned_is_better;
\set VERBOSITY terse
SELECT leadscore.write_draft('lp', 'lp', 'lp.outcomes');
SELECT * FROM leadscore.learn_points('nope', 'lp.outcomes');
SELECT * FROM leadscore.learn_points('lp', 'lp.outcomes', '2026-06-01', '-1 day');
\set VERBOSITY default
SELECT leadscore.untrack('lp');
DELETE FROM leadscore.model WHERE name IN ('lp', 'lp_learned');
DROP SCHEMA lp CASCADE;

-- Stage thresholds from capacity or a target conversion rate, on hand-checked data: lead i
-- has i visits worth 10 points each (score 10 i); leads 4, 7, 9 and 10 converted later
-- (overall rate 0.4); lead 11 converted before as_of and is left out.
CREATE SCHEMA ss;
CREATE TABLE ss.leads (id int PRIMARY KEY);
CREATE TABLE ss.acts (lead_id int, type text, at timestamptz);
CREATE INDEX ON ss.acts (lead_id);
CREATE TABLE ss.outcomes (lead_id int, converted boolean, converted_at timestamptz);
INSERT INTO ss.leads SELECT g FROM generate_series(1, 11) g;
INSERT INTO ss.acts SELECT g, 'visit', '2026-05-01'::timestamptz + v * interval '1 hour'
  FROM generate_series(1, 11) g, generate_series(1, least(g, 10)) v;
INSERT INTO ss.outcomes VALUES (4, true, '2026-07-01'), (7, true, '2026-07-01'), (9, true, '2026-07-01'),
                               (10, true, NULL), (1, false, NULL), (11, true, '2026-05-15');
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('ss', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('ss', 'visit', 'visit', 10);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('ss', 'SQL', 60), ('ss', 'MQL', 30), ('ss', 'IQL', 10),
                                                             ('ss', 'cold', NULL);
SELECT leadscore.track('ss', 'ss.acts', 'lead_id', 'type', 'at', 'ss.leads', 'id');
-- sales take 20% (2 leads) per stage: SQL >= 90 (leads 9, 10: rate 1, lift 2.5), MQL >= 70
-- (4 leads, 3 converted: 0.75), IQL >= 50 (6 leads, 3 converted: 0.5)
SELECT * FROM leadscore.suggest_stages('ss', 'ss.outcomes', '2026-06-01', capacity => 0.2);
-- 3 leads per stage: 80, 50, 20
SELECT stage, min_score, leads, converted FROM leadscore.suggest_stages('ss', 'ss.outcomes', '2026-06-01', capacity => 3);
-- a 70% conversion rate: the top 4 convert at 0.75 (the top 5 at 0.6), so bands of 4 leads:
-- SQL >= 70, MQL >= 30 (8 leads), IQL: all 10 (>= 10)
SELECT * FROM leadscore.suggest_stages('ss', 'ss.outcomes', '2026-06-01', target_rate => 0.7);
-- more than all leads: every stage reaches the lowest score; ties are never split: with
-- lead 10's score equal to lead 9's, 1 lead per stage puts SQL at 90 reached by 2 (ties over capacity)
SELECT stage, min_score, leads FROM leadscore.suggest_stages('ss', 'ss.outcomes', '2026-06-01', capacity => 50);
DELETE FROM ss.acts WHERE lead_id = 10 AND at = (SELECT max(at) FROM ss.acts WHERE lead_id = 10);
SELECT stage, min_score, leads FROM leadscore.suggest_stages('ss', 'ss.outcomes', '2026-06-01', capacity => 1);
-- ready to write into leadscore.stage
UPDATE leadscore.stage s SET min_score = x.min_score
  FROM leadscore.suggest_stages('ss', 'ss.outcomes', '2026-06-01', capacity => 0.2) x
 WHERE s.model = 'ss' AND s.name = x.stage;
SELECT name, min_score FROM leadscore.stage WHERE model = 'ss' ORDER BY min_score DESC NULLS LAST;
\set VERBOSITY terse
SELECT * FROM leadscore.suggest_stages('ss', 'ss.outcomes', '2026-06-01');
SELECT * FROM leadscore.suggest_stages('ss', 'ss.outcomes', '2026-06-01', capacity => 0.1, target_rate => 0.5);
SELECT * FROM leadscore.suggest_stages('ss', 'ss.outcomes', '2026-06-01', capacity => -1);
SELECT * FROM leadscore.suggest_stages('ss', 'ss.outcomes', '2026-06-01', target_rate => 1.5);
SELECT * FROM leadscore.suggest_stages('nope', 'ss.outcomes', '2026-06-01', capacity => 0.1);
DELETE FROM leadscore.stage WHERE model = 'ss';
SELECT * FROM leadscore.suggest_stages('ss', 'ss.outcomes', '2026-06-01', capacity => 0.1);
\set VERBOSITY default
SELECT leadscore.untrack('ss');
DELETE FROM leadscore.model WHERE name = 'ss';
DROP SCHEMA ss CASCADE;

-- At most max_rules features, chosen on each fold's training rows only.
SELECT setseed(0.5);
CREATE TABLE sparse_leads AS
SELECT g AS id, abs(hashtext(g::text)) % 2 AS part,
       (ARRAY['API', 'Landing Page Submission', 'Lead Add Form', 'Lead Import'])[1 + (g % 4)] AS origin,
       (ARRAY['Google', 'Direct Traffic', 'Select', NULL, 'Reference', 'Olark Chat', 'Organic Search'])[1 + (g / 4) % 7] AS source,
       (g * 37) % 2000 AS time_on_site,
       (ARRAY['Unemployed', 'Working Professional', 'Student', 'Select', ''])[1 + (g / 28) % 5] AS occupation,
       (ARRAY['India', 'UAE', 'US', 'Singapore'])[1 + (g / 3) % 4] AS country
  FROM generate_series(1, 3000) AS g;
ALTER TABLE sparse_leads ADD COLUMN converted boolean;
UPDATE sparse_leads SET converted = random() < 1 / (1 + exp(-(-1.5 + CASE origin WHEN 'Lead Add Form' THEN 2.5 ELSE 0 END
        + CASE WHEN time_on_site >= 1200 THEN 1.2 ELSE 0 END
        + CASE occupation WHEN 'Working Professional' THEN 1.5 ELSE 0 END)));
CREATE VIEW sparse_view AS SELECT id, origin, source, time_on_site, occupation, country, converted FROM sparse_leads;
SELECT fold, method, auc, rules FROM leadscore.learn_report('sparse_view', 'id', 'converted', 3, max_rules => 4)
 ORDER BY method, fold;
SELECT part, step, replace(feature, E'\x1f', ' | ') AS feature FROM pg_temp.leadscore_learn_selected ORDER BY part, step;
-- against the full model (every level of every column): within 0.02
SELECT bool_and(s.auc >= f.auc - 0.02) AS sparse_within_002, max(f.rules) AS full_rules, max(s.rules) AS sparse_rules
  FROM leadscore.learn_report('sparse_view', 'id', 'converted', 3) AS f
  JOIN leadscore.learn_report('sparse_view', 'id', 'converted', 3, max_rules => 4) AS s USING (fold, method)
 WHERE fold = 'mean' AND method <> 'naive Bayes';
-- Honesty: "probe" is 'hot' exactly for the converted leads of the first fold's held-out part.
-- Chosen from all rows it would come first (learn_select below); chosen from the training
-- rows, it cannot be chosen when that part is held out, and held-out scores of the other
-- fold are all equal (AUC 0.5).
CREATE VIEW probe_view AS
SELECT id, origin, CASE WHEN part = 0 AND converted THEN 'hot' ELSE 'cold' END AS probe, converted FROM sparse_leads;
SELECT replace(feature, E'\x1f', ' | ') AS feature
  FROM leadscore.learn_select($$SELECT * FROM leadscore.learn_design('probe_view', 'id', 'converted')$$, 1);
SELECT fold, method, auc > 0.6 AS better_than_chance, auc = 0.5 AS chance, rules
  FROM leadscore.learn_report('probe_view', 'id', 'converted', 2, max_rules => 1)
 WHERE method <> 'naive Bayes' AND fold <> 'mean' ORDER BY fold, method;
SELECT part, replace(feature, E'\x1f', ' | ') AS feature FROM pg_temp.leadscore_learn_selected ORDER BY part;
\set VERBOSITY terse
SELECT * FROM leadscore.learn_report('sparse_view', 'id', 'converted', 3, max_rules => 0);
SELECT * FROM leadscore.learn_select('SELECT 1::text, ARRAY[''a''], true', 0);
\set VERBOSITY default
DROP VIEW probe_view, sparse_view;
DROP TABLE sparse_leads;

-- Count candidates and max_rules for a tracked model: conversion follows 3 or more visits.
-- Lead i has i % 5 visits 10 days apart in the 90 days before June 1, and leads divisible
-- by 7 two more visits 100 and 95 days before (counted by a rule whose window ends at a
-- later visit, as by the rule: min_count within the window).
SELECT setseed(0.75);
CREATE SCHEMA lc;
CREATE TABLE lc.leads (id int PRIMARY KEY, title text);
CREATE TABLE lc.acts (lead_id int, type text, at timestamptz);
CREATE INDEX ON lc.acts (lead_id);
CREATE TABLE lc.outcomes (lead_id int, converted boolean, converted_at timestamptz);
INSERT INTO lc.leads SELECT g, (ARRAY['CEO', 'Engineer', 'Student'])[1 + g % 3] FROM generate_series(1, 3000) g;
INSERT INTO lc.acts SELECT g, 'visit', '2026-06-01'::timestamptz - v * interval '10 days'
  FROM generate_series(1, 3000) g, generate_series(1, g % 5) v;
INSERT INTO lc.acts SELECT g, 'visit', '2026-06-01'::timestamptz - d * interval '1 day'
  FROM generate_series(7, 3000, 7) g, unnest(ARRAY[100, 95]) d;
INSERT INTO lc.outcomes
SELECT l.id, random() < 1 / (1 + exp(-(-2 + CASE WHEN n >= 3 THEN 2.5 ELSE 0 END))), '2026-07-01'
  FROM lc.leads l
  CROSS JOIN LATERAL (SELECT max(c) AS n FROM (
      SELECT a.at, count(*) OVER (ORDER BY a.at RANGE BETWEEN '90 days' PRECEDING AND CURRENT ROW) AS c
        FROM lc.acts a WHERE a.lead_id = l.id AND a.at <= '2026-06-01' AND a.at > '2026-06-01'::timestamptz - interval '180 days') x
   WHERE x.at > '2026-06-01'::timestamptz - interval '90 days') m;
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('lc', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('lc', 'visit', 'visit', 10);
SELECT leadscore.track('lc', 'lc.acts', 'lead_id', 'type', 'at', 'lc.leads', 'id');
SELECT kind, activity_type, min_count, support, weight > 1 AS strong
  FROM leadscore.learn_points('lc', 'lc.outcomes', '2026-06-01') WHERE kind = 'activity' ORDER BY min_count;
SELECT count(*) AS rules, count(*) FILTER (WHERE points <> 0) <= 2 AS at_most_2
  FROM leadscore.learn_points('lc', 'lc.outcomes', '2026-06-01', max_rules => 2);
SELECT leadscore.write_draft('lc', 'lc_learned', 'lc.outcomes', '2026-06-01', max_rules => 2) AS written;
SELECT name, activity_type, points > 0 AS positive, once, expires_after, min_count, within
  FROM leadscore.activity_rule WHERE model = 'lc_learned' ORDER BY name;
SELECT count(*) AS fit_rules FROM leadscore.fit_rule WHERE model = 'lc_learned';
-- a rule as write_draft writes it scores exactly the leads that had the candidate feature
INSERT INTO leadscore.model (name) VALUES ('lc_check');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once, expires_after, min_count, within)
VALUES ('lc_check', 'visit at least 3 times', 'visit', 1, true, '90 days', 3, '90 days');
SELECT count(*) FILTER (WHERE (s.score > 0) <> (f.features @> ARRAY['a' || E'\x1f' || 'visit' || E'\x1f' || '3'])) AS disagreeing,
       count(*) FILTER (WHERE s.score > 0) AS scored
  FROM leadscore.scores_as_of('lc_check', '2026-06-01', 'lc') s
  JOIN pg_temp.leadscore_learn_points f ON f.lead = s.lead_id;
SELECT (SELECT value FROM leadscore.backtest(ARRAY['lc_learned'], 'lc.outcomes', '2026-06-01', 'lc') WHERE section = 'overall')
     > (SELECT value FROM leadscore.backtest(ARRAY['lc'], 'lc.outcomes', '2026-06-01', 'lc') WHERE section = 'overall')
       AS learned_is_better;
\set VERBOSITY terse
SELECT * FROM leadscore.learn_points('lc', 'lc.outcomes', '2026-06-01', max_rules => 0);
\set VERBOSITY default
SELECT leadscore.untrack('lc');
DELETE FROM leadscore.model WHERE name IN ('lc', 'lc_learned', 'lc_check');
DROP SCHEMA lc CASCADE;
