-- BI views and the account roll-up on a small fixture with hand-checked figures.
SET timezone = 'UTC';
CREATE SCHEMA bi;
CREATE TABLE bi.leads (id int PRIMARY KEY, company text, title text);
CREATE TABLE bi.acts (lead_id int, type text, at timestamptz);
CREATE INDEX ON bi.acts (lead_id);
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('bi', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, max_count) VALUES
    ('bi', 'demo', 'demo', 40, 1), ('bi', 'open', 'open', 5, 4), ('bi', 'unsubscribe', 'unsub', -15, 1);
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES ('bi', 'ceo', 'title', '=', '{CEO}', 30);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('bi', 'MQL', 40), ('bi', 'SQL', 70);
-- scores: 1 = 30 + 40 + 20 = 90 (SQL); 2 = 40 + 5 = 45 (MQL); 3 = 30 (none); 4 = 10 - 15 -> 0; 5 = 0; 6 = 30 + 40 = 70 (SQL)
INSERT INTO bi.leads VALUES (1, 'acme', 'CEO'), (2, 'acme', 'Engineer'), (3, 'acme', 'CEO'),
                            (4, 'globex', 'Engineer'), (5, 'globex', 'Engineer'), (6, NULL, 'CEO');
SELECT leadscore.track('bi', 'bi.acts', 'lead_id', 'type', 'at', 'bi.leads', 'id');
INSERT INTO bi.acts VALUES (1, 'demo', '2026-01-01'), (1, 'open', '2026-01-02'), (1, 'open', '2026-01-03'),
                           (1, 'open', '2026-01-04'), (1, 'open', '2026-01-05'), (1, 'open', '2026-01-06'),
                           (2, 'demo', '2026-01-01'), (2, 'open', '2026-01-02'),
                           (4, 'open', '2026-01-01'), (4, 'open', '2026-01-02'), (4, 'unsub', '2026-01-03'),
                           (6, 'demo', '2026-01-01');
SELECT lead_id, score, stage FROM leadscore.lead_score WHERE model = 'bi' ORDER BY lead_id;

-- Histogram over 0..100 in tens: 0 (4, 5), 30 (3), 45 (2), 70 (6), 90 (1)
SELECT bucket, score_from, score_to, leads FROM leadscore.score_histogram WHERE model = 'bi' ORDER BY bucket;

-- Stage entries: every stage reached today (stage changes happen as of now())
SELECT stage, day = (now() AT TIME ZONE 'UTC')::date AS today, entered
  FROM leadscore.stage_entries WHERE model = 'bi' ORDER BY stage;

-- Top leads with their top rules
SELECT rank, lead_id, score, stage, top_rules FROM leadscore.top_leads WHERE model = 'bi' ORDER BY rank;

-- Rule usage: demo counts for 1, 2, 6 (120); open for 1 (4 capped: 20), 2 (5), 4 (10); unsubscribe for 4;
-- ceo for 1, 3, 6 (90)
SELECT family, rule, leads, total_points FROM leadscore.rule_usage WHERE model = 'bi' ORDER BY family, rule_id;

-- Account roll-up: acme = {90, 45, 30}: sum 165, max 90, top-2 mean 67.5; globex = {0, 0}; lead 6 has no company
INSERT INTO leadscore.account_rollup (model, account_column, top_n) VALUES ('bi', 'company', 2);
INSERT INTO leadscore.account_stage (model, name, min_score) VALUES ('bi', 'engaged', 20), ('bi', 'target', 60);
SELECT account, contacts, score_sum, score_max, score_top_n_mean, account_score, stage
  FROM leadscore.account_score WHERE model = 'bi' ORDER BY account;
UPDATE leadscore.account_rollup SET score_method = 'sum' WHERE model = 'bi';
SELECT account, account_score, stage FROM leadscore.account_score WHERE model = 'bi' ORDER BY account;
-- bad configurations
\set VERBOSITY terse
INSERT INTO leadscore.account_rollup (model, account_column) VALUES ('no_such_model', 'company');
UPDATE leadscore.account_rollup SET score_method = 'median' WHERE model = 'bi';
UPDATE leadscore.account_rollup SET account_column = 'region' WHERE model = 'bi';
SELECT * FROM leadscore.account_score WHERE model = 'bi';
SELECT * FROM leadscore.account_scores('nope');
\set VERBOSITY default

SELECT leadscore.untrack('bi');
DELETE FROM leadscore.model WHERE name = 'bi';
DROP SCHEMA bi CASCADE;
