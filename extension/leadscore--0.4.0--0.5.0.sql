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

-- Scoring on logical-replication subscribers: row triggers enabled REPLICA.
ALTER TABLE leadscore.tracking ADD COLUMN replica boolean NOT NULL DEFAULT false,
                               ADD COLUMN columns_fingerprint text;
COMMENT ON COLUMN leadscore.tracking.columns_fingerprint IS 'Fingerprint of the tracked tables'' columns and partitions when last scored (ALTER TABLE rescores only when it changes).';
-- What of the tracked tables can change a score: their columns (name, type, collation) and
-- partitions. The event trigger below rescores only when it changed.
CREATE FUNCTION leadscore.tracked_tables_fingerprint(activities regclass, leads regclass) RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    -- Names, not OIDs: a restored database has the same fingerprint.
    SELECT md5(string_agg(format('%s:%s:%s:%s:%s', c.relid::regclass, a.attnum, a.attname,
                                 format_type(a.atttypid, a.atttypmod), coll.collname),
                          ',' ORDER BY c.relid::regclass::text, a.attnum))
      FROM (SELECT activities AS relid
            UNION SELECT p.relid FROM pg_partition_tree(activities) AS p
            UNION SELECT leads WHERE leads IS NOT NULL
            UNION SELECT p.relid FROM pg_partition_tree(leads) AS p) AS c
      JOIN pg_attribute AS a ON a.attrelid = c.relid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_collation AS coll ON coll.oid = a.attcollation
$fn$;
COMMENT ON FUNCTION leadscore.tracked_tables_fingerprint(regclass, regclass) IS
    'Fingerprint of the tracked tables'' columns and partitions (internal: lets ALTER TABLE skip needless rescores).';

DROP FUNCTION leadscore.track(text, regclass, name, name, name, regclass, name);
CREATE FUNCTION leadscore.track(model text, activities regclass, lead_column name, type_column name,
                                time_column name, leads regclass DEFAULT NULL, lead_key name DEFAULT NULL,
                                replica boolean DEFAULT true)
    RETURNS bigint
    LANGUAGE c SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'leadscore_track';
COMMENT ON FUNCTION leadscore.track(text, regclass, name, name, name, regclass, name, boolean) IS
    'Attaches a model to the CRM''s activity table (and optionally its leads table), installs the triggers and scores what is already there; returns the number of leads scored. With replica (the default), changes applied by logical replication on a subscriber are scored too.';

CREATE FUNCTION leadscore.set_replica(model text, replica boolean) RETURNS boolean
    LANGUAGE c SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'leadscore_set_replica';
COMMENT ON FUNCTION leadscore.set_replica(text, boolean) IS
    'Turns scoring of changes applied by logical replication (row triggers enabled REPLICA) on or off for a tracked model; returns the previous setting.';
REVOKE EXECUTE ON FUNCTION leadscore.track(text, regclass, name, name, name, regclass, name, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION leadscore.set_replica(text, boolean) FROM PUBLIC;
CREATE OR REPLACE FUNCTION leadscore.tracked_table_altered() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    t record;
    part regclass;
    fn text;
    fingerprint text;
BEGIN
    FOR t IN SELECT DISTINCT tr.model, tr.state_table, tr.activities, tr.leads, tr.replica
               FROM pg_catalog.pg_event_trigger_ddl_commands() AS c
               JOIN leadscore.tracking AS tr
                 ON c.objid IN (tr.activities, tr.leads)
                 OR EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(c.objid) AS a
                             WHERE a.relid IN (tr.activities, tr.leads))
              WHERE c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
              ORDER BY tr.model
    LOOP
        -- Partitions created or attached later get the triggers the tracked table's partitions have.
        FOR part, fn IN
            SELECT p.relid, CASE WHEN tbl.oid = t.activities THEN 'activity_changed' ELSE 'lead_changed' END
              FROM (SELECT t.activities AS oid UNION ALL SELECT t.leads WHERE t.leads IS NOT NULL) AS tbl,
                   pg_catalog.pg_partition_tree(tbl.oid) AS p
             WHERE p.relid <> tbl.oid
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                                WHERE g.tgrelid = p.relid AND g.tgname = 'leadscore_' || t.state_table || '_ins')
        LOOP
            EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS leadscore_new '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION leadscore.%I(%L)',
                                      'leadscore_' || t.state_table || '_ins', part, fn, t.model);
            EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS leadscore_old '
                                      'NEW TABLE AS leadscore_new FOR EACH STATEMENT EXECUTE FUNCTION leadscore.%I(%L)',
                                      'leadscore_' || t.state_table || '_upd', part, fn, t.model);
            EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS leadscore_old '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION leadscore.%I(%L)',
                                      'leadscore_' || t.state_table || '_del', part, fn, t.model);
            EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER TRUNCATE ON %s FOR EACH STATEMENT '
                                      'EXECUTE FUNCTION leadscore.%I(%L)',
                                      'leadscore_' || t.state_table || '_trunc', part, fn, t.model);
            -- Row triggers reach new partitions by themselves; a replicated TRUNCATE fires statement triggers.
            IF t.replica THEN
                EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER TRUNCATE ON %s FOR EACH STATEMENT '
                                          'EXECUTE FUNCTION leadscore.%I(%L)',
                                          'leadscore_' || t.state_table || '_rtrunc', part, fn, t.model);
                EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE REPLICA TRIGGER %I',
                                          part, 'leadscore_' || t.state_table || '_rtrunc');
            END IF;
        END LOOP;
        -- ALTER TABLE that leaves the columns and partitions as they were (a constraint, a
        -- default, enabling a trigger, pg_restore's post-data) changes no score.
        fingerprint := leadscore.tracked_tables_fingerprint(t.activities, t.leads);
        IF fingerprint IS DISTINCT FROM (SELECT tr.columns_fingerprint FROM leadscore.tracking AS tr
                                          WHERE tr.model = t.model) THEN
            UPDATE leadscore.tracking SET columns_fingerprint = fingerprint WHERE model = t.model;
            PERFORM leadscore.rescore(t.model);
        END IF;
    END LOOP;
END
$fn$;

COMMENT ON FUNCTION leadscore.tracked_table_altered() IS
    'Event trigger: after ALTER TABLE on a tracked table (or CREATE TABLE of one of its partitions) puts the triggers on new partitions and, when the tables'' columns or partitions changed, rescores the models, so an incompatible change fails with the model''s error.';
UPDATE leadscore.tracking SET columns_fingerprint = leadscore.tracked_tables_fingerprint(activities, leads);
-- Models tracked before 0.5.0 score replicated changes too, as track() now does by default.
SELECT leadscore.set_replica(model, true) FROM leadscore.tracking;

-- A stable key per stage change, for change data capture.
ALTER TABLE leadscore.stage_history ADD COLUMN id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY;
SELECT pg_catalog.pg_extension_config_dump('leadscore.stage_history_id_seq', '');
CREATE OR REPLACE VIEW leadscore.stage_change AS
    SELECT model, lead_id, from_stage, to_stage, score, changed_at, id
      FROM leadscore.stage_history;
COMMENT ON COLUMN leadscore.tracking.replica IS 'Whether changes applied by logical replication (session_replication_role = replica) are scored too, by row triggers enabled REPLICA.';
COMMENT ON COLUMN leadscore.stage_history.id IS 'Stable key of the change (for change data capture consumers); increasing, but not in commit order.';
COMMENT ON COLUMN leadscore.stage_change.id IS 'Stable key of the change.';
