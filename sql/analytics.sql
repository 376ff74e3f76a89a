-- Evaluation and backtesting against hand-computed values on a small fixture: ties in the
-- ROC AUC, deciles, lift, conversion per stage and per stage reached, outcomes before the
-- as-of date excluded, activity after it ignored, a model with no positives, and a draft
-- model compared with the live one without touching stored scores.
SET timezone = 'UTC';
CREATE SCHEMA ev;
CREATE TABLE ev.leads (id int PRIMARY KEY, title text);
CREATE TABLE ev.acts (lead_id int, type text, at timestamptz);
CREATE TABLE ev.outcomes (lead_id int, won boolean, won_at timestamptz);
INSERT INTO ev.leads SELECT g, 'x' FROM generate_series(1, 9) g;
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('ev', 0, 100), ('ev_draft', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, max_count) VALUES
    ('ev', 'demo', 'demo', 30, NULL), ('ev', 'open', 'open', 10, 3), ('ev_draft', 'open', 'open', 20, 3);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('ev', 'MQL', 30), ('ev', 'SQL', 50);
-- as of 2026-06-01 the scores are: 1: 50, 2: 50, 3: 30, 4: 30, 5: 20, 6: 10, 7: 0, 8: 0 (9 converted earlier)
INSERT INTO ev.acts VALUES
    (1, 'demo', '2026-05-01'), (1, 'open', '2026-05-02'), (1, 'open', '2026-05-03'),
    (2, 'demo', '2026-05-01'), (2, 'open', '2026-05-02'), (2, 'open', '2026-05-03'),
    (3, 'demo', '2026-05-01'), (4, 'demo', '2026-05-01'),
    (5, 'open', '2026-05-02'), (5, 'open', '2026-05-03'), (6, 'open', '2026-05-02'),
    (7, 'demo', '2026-07-01'),   -- after the as-of date: does not count
    (9, 'demo', '2026-04-01');
-- converted after the date: 1, 3, 5; lead 9 converted before it and is left out
INSERT INTO ev.outcomes VALUES (1, true, '2026-06-10'), (2, false, NULL), (3, true, '2026-06-20'), (4, false, NULL),
                               (5, true, '2026-07-01'), (6, false, NULL), (7, false, NULL), (8, false, NULL),
                               (9, true, '2026-05-01');
SELECT leadscore.track('ev', 'ev.acts', 'lead_id', 'type', 'at', 'ev.leads', 'id');
SELECT lead_id, score, stage FROM leadscore.scores_as_of('ev', '2026-06-01') ORDER BY lead_id::int;

-- AUC by hand: positives {50, 30, 20}, negatives {50, 30, 10, 0, 0}; pairs won 4.5 + 3.5 + 3
-- = 11 of 15 -> 0.733333. Overall 3 of 8 = 0.375. Each of the 8 leads is its own decile
-- (score order, ties by lead id). Stages: SQL {1, 2} 1 of 2, MQL {3, 4} 1 of 2, none 1 of 4;
-- reached SQL 1 of 2, reached MQL (or SQL) 2 of 4; lift = rate / 0.375.
SELECT section, bucket, ordinal, leads, converted, conversion_rate, lift, value
  FROM leadscore.evaluate('ev', 'ev.outcomes', '2026-06-01')
 ORDER BY section, ordinal NULLS FIRST, bucket;

-- The same outcomes as a query with two columns (no conversion times: every "true" counts).
-- Lead 9 has no outcome row now, so it is a negative scored 30: pairs 5.5 + 4 + 3 = 12.5 of 18.
SELECT value AS auc FROM leadscore.evaluate('ev', 'SELECT lead_id, won FROM ev.outcomes WHERE lead_id <> 9', '2026-06-01')
 WHERE section = 'overall';

-- No positives: rates are 0, AUC and lift are NULL (undefined), never an error.
SELECT section, bucket, leads, converted, conversion_rate, lift, value
  FROM leadscore.evaluate('ev', 'SELECT lead_id, false FROM ev.outcomes', '2026-06-01')
 WHERE section IN ('overall', 'stage') ORDER BY section, bucket;

-- Bad outcome sources are clear errors.
\set VERBOSITY terse
SELECT * FROM leadscore.evaluate('ev', 'ev.no_such_table', '2026-06-01');
SELECT * FROM leadscore.evaluate('ev', '', '2026-06-01');
SELECT * FROM leadscore.evaluate('no_such_model', 'ev.outcomes', '2026-06-01');
\set VERBOSITY default

-- Backtest: the untracked draft (open 20, no demo) scored on the live model's tables.
-- Draft scores: 1: 40, 2: 40, 3: 0, 4: 0, 5: 40, 6: 20, 7: 0, 8: 0; positives {40, 0, 40},
-- negatives {40, 0, 20, 0, 0}: pairs 4.5 + 4.5 + 1.5 = 10.5 of 15 -> 0.7.
SELECT model, value AS auc FROM leadscore.backtest(ARRAY['ev', 'ev_draft'], 'ev.outcomes', '2026-06-01', 'ev')
 WHERE section = 'overall' ORDER BY model;
-- stored scores were not touched by either
SELECT count(*) AS draft_rows FROM leadscore.lead_score WHERE model = 'ev_draft';
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'ev' ORDER BY lead_id::int;

SELECT leadscore.untrack('ev');
DELETE FROM leadscore.model WHERE name IN ('ev', 'ev_draft');
DROP SCHEMA ev CASCADE;
