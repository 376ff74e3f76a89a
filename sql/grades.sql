-- Grades beside the score: lead_score.fit_grade / engagement_grade and the grade_matrix view,
-- including axes without grades, leads below the lowest grade, edits and bad input.
SET timezone = 'UTC';
\set VERBOSITY terse
CREATE SCHEMA gr;
CREATE TABLE gr.leads (id int PRIMARY KEY, title text);
CREATE TABLE gr.acts (lead_id int, type text, at timestamptz);
INSERT INTO leadscore.model (name) VALUES ('gr');
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES
    ('gr', 'ceo', 'title', '=', '{CEO}', 30), ('gr', 'manager', 'title', '=', '{Manager}', 15);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('gr', 'visit', 'visit', 10);
INSERT INTO gr.leads VALUES (1, 'CEO'), (2, 'Manager'), (3, 'Student'), (4, 'CEO');
INSERT INTO gr.acts VALUES (1, 'visit', '2026-01-01'), (1, 'visit', '2026-01-02'), (1, 'visit', '2026-01-03'),
    (2, 'visit', '2026-01-01'), (4, 'visit', '2026-01-01');
SELECT leadscore.track('gr', 'gr.acts', 'lead_id', 'type', 'at', leads => 'gr.leads', lead_key => 'id');

-- no grades yet: grades are NULL and the matrix is one NULL cell
SELECT lead_id, fit_score, engagement_score, fit_grade, engagement_grade FROM leadscore.lead_score
 WHERE model = 'gr' ORDER BY lead_id;
SELECT fit_grade, engagement_grade, leads FROM leadscore.grade_matrix WHERE model = 'gr';

-- fit grades only: one NULL engagement column
INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES
    ('gr', 'fit', 'A', 30), ('gr', 'fit', 'B', 15), ('gr', 'fit', 'C', 0);
SELECT fit_grade, engagement_grade, leads FROM leadscore.grade_matrix WHERE model = 'gr' ORDER BY fit_grade, engagement_grade;

-- both axes: every cell, 0 when empty; a threshold equal to the score earns the grade
INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES
    ('gr', 'engagement', '1', 30), ('gr', 'engagement', '2', 10), ('gr', 'engagement', '3', 1);
SELECT lead_id, fit_score, engagement_score, fit_grade, engagement_grade FROM leadscore.lead_score
 WHERE model = 'gr' ORDER BY lead_id;
SELECT fit_grade, engagement_grade, leads FROM leadscore.grade_matrix WHERE model = 'gr'
 ORDER BY fit_grade NULLS LAST, engagement_grade NULLS LAST;

-- grades follow live changes and grade edits without a rescore
INSERT INTO gr.acts VALUES (2, 'visit', '2026-01-05'), (2, 'visit', '2026-01-06');
UPDATE gr.leads SET title = 'Manager' WHERE id = 3;
UPDATE leadscore.grade SET min_value = 20 WHERE model = 'gr' AND axis = 'engagement' AND name = '1';
SELECT lead_id, fit_grade, engagement_grade FROM leadscore.lead_score WHERE model = 'gr' ORDER BY lead_id;

-- bad input
INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES ('gr', 'score', 'X', 1);
INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES ('gr', 'fit', 'D', NULL);
INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES ('gr', 'fit', 'A2', 30);
INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES ('gr', 'fit', '', 5);
INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES ('nope', 'fit', 'A', 5);

-- readers read grades, only admins write them
SET ROLE leadscore_reader;
SELECT count(*) FROM leadscore.grade WHERE model = 'gr';
SELECT sum(leads) FROM leadscore.grade_matrix WHERE model = 'gr';
INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES ('gr', 'fit', 'D', -10);
RESET ROLE;

-- deleting the model removes its grades
SELECT leadscore.untrack('gr');
DELETE FROM leadscore.model WHERE name = 'gr';
SELECT count(*) FROM leadscore.grade WHERE model = 'gr';
DROP SCHEMA gr CASCADE;
