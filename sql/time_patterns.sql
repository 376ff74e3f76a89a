-- Time patterns (min_count / within, cooldown) and gone-quiet rules: the SQL surface, the
-- errors a bad combination gets when it is written, and scores on fixed dates.
SET timezone = 'UTC';
\set VERBOSITY terse
CREATE SCHEMA tp;
CREATE TABLE tp.acts (lead_id int, type text, url text, at timestamptz);
CREATE INDEX ON tp.acts (lead_id);
INSERT INTO leadscore.model (name) VALUES ('tp');

-- rejected when written, naming the rule and the column
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, min_count) VALUES (5001, 'tp', 'zero', 'page', 1, 0);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, within) VALUES (5002, 'tp', 'no count', 'page', 1, '7 days');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, min_count, within) VALUES (5003, 'tp', 'empty window', 'page', 1, 2, '0 days');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, cooldown) VALUES (5004, 'tp', 'back', 'page', 1, '-1 day');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, quiet_for) VALUES (5005, 'tp', 'never', 'visit', -5, '0 days');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, quiet_for, once) VALUES (5006, 'tp', 'quiet once', 'visit', -5, '30 days', true);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, quiet_for, expires_after) VALUES (5007, 'tp', 'quiet expiring', 'visit', -5, '30 days', '10 days');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, quiet_for, min_count) VALUES (5008, 'tp', 'quiet count', 'visit', -5, '30 days', 2);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, quiet_for, cooldown) VALUES (5009, 'tp', 'quiet cooldown', 'visit', -5, '30 days', '1 day');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, quiet_for, max_points) VALUES (5010, 'tp', 'quiet capped', 'visit', -5, '30 days', 3);
-- an edit that makes a rule invalid is rejected too, and the rule stays as it was
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, attribute, op, value, points, min_count, within)
VALUES (5011, 'tp', 'pricing 3x', 'page', 'url', '=', '{/pricing}', 20, 3, '7 days');
UPDATE leadscore.activity_rule SET min_count = NULL WHERE id = 5011;
SELECT min_count, within FROM leadscore.activity_rule WHERE id = 5011;

-- accepted: the seeds' examples
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, attribute, op, value, points, min_count) VALUES
    (5012, 'tp', 'pricing more than once', 'page', 'url', '=', '{/pricing}', 5, 2);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, cooldown) VALUES (5013, 'tp', 'open monthly', 'open', 2, '1 mon');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, quiet_for) VALUES (5014, 'tp', 'gone quiet', 'visit', -10, '14 days');
UPDATE leadscore.activity_rule SET once = true WHERE id = 5011;

INSERT INTO tp.acts VALUES
    (1, 'page', '/pricing', '2026-03-01'), (1, 'page', '/pricing', '2026-03-05'), (1, 'page', '/blog', '2026-03-06'),
    (1, 'page', '/pricing', '2026-03-08'), (1, 'page', '/pricing', '2026-03-20'),
    (2, 'open', NULL, '2026-01-31'), (2, 'open', NULL, '2026-02-15'), (2, 'open', NULL, '2026-02-28'),
    (2, 'open', NULL, '2026-03-01'),
    (3, 'visit', NULL, '2026-03-01');
SELECT leadscore.track('tp', 'tp.acts', 'lead_id', 'type', 'at');

-- Lead 1: four /pricing views (1, 5, 8, 20 March) and one /blog view. "pricing 3x" in 7 days:
-- the view of 8 March has 1, 5 and 8 March in [1 March, 8 March] (exactly 7 days): 20, once.
-- "more than once": the 2nd, 3rd and 4th views count, 5 each.
SELECT rule, occurrences, points FROM leadscore.explain('tp', 1, '2026-04-01') ORDER BY rule;
-- As of 7 March: only "more than once" (5); 8 March: 20 + 5 + 5; 1 April: 20 + 3 x 5.
SELECT leadscore.score('tp', 1, '2026-03-07'), leadscore.score('tp', 1, '2026-03-08'), leadscore.score('tp', 1, '2026-04-01');
-- Lead 2: opens on 31 Jan, 15 Feb, 28 Feb, 1 March with a one-month cooldown: 31 Jan + 1 month
-- is 28 Feb (the calendar, as PostgreSQL adds months), so 28 Feb counts and 1 March does not.
SELECT rule, occurrences, points FROM leadscore.explain('tp', 2, '2026-04-01') ORDER BY rule;
-- Lead 3: a visit on 1 March; quiet 14 days later, on 15 March at midnight exactly.
SELECT leadscore.score('tp', 3, '2026-03-14 23:59:59.999999'), leadscore.score('tp', 3, '2026-03-15'),
       leadscore.score('tp', 3, '2026-02-01');
SELECT rule, occurrences, points, next_expiry FROM leadscore.explain('tp', 3, '2026-03-20');

-- the engagement aggregate agrees with score() on any slice of history
SELECT lead_id, leadscore.engagement_score('tp', a, '2026-04-01') AS aggregate, leadscore.score('tp', lead_id, '2026-04-01')
  FROM tp.acts a GROUP BY lead_id ORDER BY lead_id;
SELECT leadscore.untrack('tp');
DELETE FROM leadscore.model WHERE name = 'tp';
DROP SCHEMA tp CASCADE;
