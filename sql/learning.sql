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
