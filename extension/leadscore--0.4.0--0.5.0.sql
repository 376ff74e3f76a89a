-- leadscore 0.4.0 -> 0.5.0
\echo Use "ALTER EXTENSION leadscore UPDATE TO '0.5.0'" to load this file. \quit

-- Time patterns and gone-quiet rules on activity rules.
ALTER TABLE leadscore.activity_rule
    ADD COLUMN min_count integer,
    ADD COLUMN within interval,
    ADD COLUMN cooldown interval,
    ADD COLUMN quiet_for interval;
COMMENT ON COLUMN leadscore.activity_rule.min_count IS 'Time pattern: an occurrence counts only when it is at least the min_count-th matching activity of the rule in [t - within, t] (2 = "more than once").';
COMMENT ON COLUMN leadscore.activity_rule.within IS 'Time pattern: the interval ending at each occurrence in which min_count is counted; NULL means ever. Needs min_count.';
COMMENT ON COLUMN leadscore.activity_rule.cooldown IS 'After an occurrence that counts, matching activities strictly before t + cooldown do not count (applied after min_count, before the caps).';
COMMENT ON COLUMN leadscore.activity_rule.quiet_for IS 'Gone-quiet rule: adds points (once) while the lead''s latest matching activity is at least this old; refresh() applies it when it comes due.';

-- Grades beside the score.
CREATE TABLE leadscore.grade (
    model     text NOT NULL REFERENCES leadscore.model (name) ON UPDATE CASCADE ON DELETE CASCADE,
    axis      text NOT NULL CHECK (axis IN ('fit', 'engagement')),
    name      text NOT NULL CHECK (name <> ''),
    min_value numeric NOT NULL,
    PRIMARY KEY (model, axis, name),
    -- Two grades of one axis at the same threshold would make a lead's grade ambiguous.
    CONSTRAINT grade_threshold_unique UNIQUE (model, axis, min_value)
);
COMMENT ON TABLE leadscore.grade IS 'Grades shown beside the score (A/B/C fit, 1/2/3 engagement ...): a lead''s grade on an axis is the grade with the highest min_value at or below its score on that axis.';
COMMENT ON COLUMN leadscore.grade.model IS 'Model the grade belongs to.';
COMMENT ON COLUMN leadscore.grade.axis IS 'fit (graded on fit_score) or engagement (graded on engagement_score).';
COMMENT ON COLUMN leadscore.grade.name IS 'Grade name (A, B, C, 1, 2, 3, hot ...).';
COMMENT ON COLUMN leadscore.grade.min_value IS 'Lowest fit_score or engagement_score that earns the grade; unique per model and axis.';
SELECT pg_catalog.pg_extension_config_dump('leadscore.grade', '');

CREATE OR REPLACE VIEW leadscore.lead_score AS
    SELECT s.model, s.lead_id, s.score, s.fit_score, s.engagement_score, s.stage, s.disqualified, s.stage_since,
           s.scored_at,
           (SELECT g.name FROM leadscore.grade g
             WHERE g.model = s.model AND g.axis = 'fit' AND g.min_value <= s.fit_score
             ORDER BY g.min_value DESC LIMIT 1) AS fit_grade,
           (SELECT g.name FROM leadscore.grade g
             WHERE g.model = s.model AND g.axis = 'engagement' AND g.min_value <= s.engagement_score
             ORDER BY g.min_value DESC LIMIT 1) AS engagement_grade
      FROM leadscore.lead_state s;
COMMENT ON COLUMN leadscore.lead_score.fit_grade IS 'Fit-axis grade with the highest min_value <= fit_score; NULL when none.';
COMMENT ON COLUMN leadscore.lead_score.engagement_grade IS 'Engagement-axis grade with the highest min_value <= engagement_score; NULL when none.';
CREATE VIEW leadscore.grade_matrix AS
    WITH axes AS (
        -- An axis without grades is one NULL column (or row) of the matrix.
        SELECT t.model, x.axis, g.name
          FROM leadscore.tracking t
         CROSS JOIN (VALUES ('fit'), ('engagement')) AS x (axis)
          LEFT JOIN leadscore.grade g ON g.model = t.model AND g.axis = x.axis
    ), cells AS (
        SELECT f.model, f.name AS fit_grade, e.name AS engagement_grade
          FROM axes f JOIN axes e ON e.model = f.model AND e.axis = 'engagement'
         WHERE f.axis = 'fit'
    ), counts AS (
        SELECT model, fit_grade, engagement_grade, count(*) AS leads
          FROM leadscore.lead_score GROUP BY model, fit_grade, engagement_grade
    )
    SELECT c.model, c.fit_grade, c.engagement_grade, coalesce(n.leads, 0) AS leads
      FROM cells c
      LEFT JOIN counts n ON n.model = c.model AND n.fit_grade IS NOT DISTINCT FROM c.fit_grade
                        AND n.engagement_grade IS NOT DISTINCT FROM c.engagement_grade
    UNION ALL
    -- Leads below the lowest grade of an axis that has grades.
    SELECT n.model, n.fit_grade, n.engagement_grade, n.leads
      FROM counts n
     WHERE NOT EXISTS (SELECT 1 FROM cells c WHERE c.model = n.model
                          AND c.fit_grade IS NOT DISTINCT FROM n.fit_grade
                          AND c.engagement_grade IS NOT DISTINCT FROM n.engagement_grade);
COMMENT ON VIEW leadscore.grade_matrix IS 'Leads per fit grade and engagement grade per tracked model: every cell of the model''s grades (0 when empty), plus cells of leads below an axis''s lowest grade (NULL grade).';
COMMENT ON COLUMN leadscore.grade_matrix.model IS 'Model.';
COMMENT ON COLUMN leadscore.grade_matrix.fit_grade IS 'Fit grade; NULL for leads below the lowest fit grade, or when the model has no fit grades.';
COMMENT ON COLUMN leadscore.grade_matrix.engagement_grade IS 'Engagement grade; NULL for leads below the lowest engagement grade, or when the model has none.';
COMMENT ON COLUMN leadscore.grade_matrix.leads IS 'Number of leads currently in the cell.';

GRANT SELECT ON leadscore.grade, leadscore.grade_matrix TO leadscore_reader;
GRANT INSERT, UPDATE, DELETE ON leadscore.grade TO leadscore_admin;
