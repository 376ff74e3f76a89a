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

-- Citus: a distributed model's state and history live in distributed tables of their own
-- (no table inheritance there); track() and untrack() keep distributed_state and
-- distributed_history listing them. The views BI tools read go through all_state and all_history.
CREATE VIEW leadscore.distributed_state AS
    SELECT model, lead_id, score, fit_score, engagement_score, stage, disqualified, fit_disqualified, stage_since, scored_at, next_change, summary FROM leadscore.lead_state WHERE false;
COMMENT ON VIEW leadscore.distributed_state IS 'State rows of the models tracked on Citus-distributed tables (rewritten by track() and untrack(); empty without Citus).';
CREATE VIEW leadscore.all_state AS
    SELECT model, lead_id, score, fit_score, engagement_score, stage, disqualified, fit_disqualified, stage_since, scored_at, next_change, summary FROM leadscore.lead_state
    UNION ALL
    SELECT model, lead_id, score, fit_score, engagement_score, stage, disqualified, fit_disqualified, stage_since, scored_at, next_change, summary FROM leadscore.distributed_state;
COMMENT ON VIEW leadscore.all_state IS 'Stored per-lead state of every tracked model, local and distributed.';
COMMENT ON COLUMN leadscore.distributed_state.model IS 'As in leadscore.lead_state.model.';
COMMENT ON COLUMN leadscore.distributed_state.lead_id IS 'As in leadscore.lead_state.lead_id.';
COMMENT ON COLUMN leadscore.distributed_state.score IS 'As in leadscore.lead_state.score.';
COMMENT ON COLUMN leadscore.distributed_state.fit_score IS 'As in leadscore.lead_state.fit_score.';
COMMENT ON COLUMN leadscore.distributed_state.engagement_score IS 'As in leadscore.lead_state.engagement_score.';
COMMENT ON COLUMN leadscore.distributed_state.stage IS 'As in leadscore.lead_state.stage.';
COMMENT ON COLUMN leadscore.distributed_state.disqualified IS 'As in leadscore.lead_state.disqualified.';
COMMENT ON COLUMN leadscore.distributed_state.fit_disqualified IS 'As in leadscore.lead_state.fit_disqualified.';
COMMENT ON COLUMN leadscore.distributed_state.stage_since IS 'As in leadscore.lead_state.stage_since.';
COMMENT ON COLUMN leadscore.distributed_state.scored_at IS 'As in leadscore.lead_state.scored_at.';
COMMENT ON COLUMN leadscore.distributed_state.next_change IS 'As in leadscore.lead_state.next_change.';
COMMENT ON COLUMN leadscore.distributed_state.summary IS 'As in leadscore.lead_state.summary.';
COMMENT ON COLUMN leadscore.all_state.model IS 'As in leadscore.lead_state.model.';
COMMENT ON COLUMN leadscore.all_state.lead_id IS 'As in leadscore.lead_state.lead_id.';
COMMENT ON COLUMN leadscore.all_state.score IS 'As in leadscore.lead_state.score.';
COMMENT ON COLUMN leadscore.all_state.fit_score IS 'As in leadscore.lead_state.fit_score.';
COMMENT ON COLUMN leadscore.all_state.engagement_score IS 'As in leadscore.lead_state.engagement_score.';
COMMENT ON COLUMN leadscore.all_state.stage IS 'As in leadscore.lead_state.stage.';
COMMENT ON COLUMN leadscore.all_state.disqualified IS 'As in leadscore.lead_state.disqualified.';
COMMENT ON COLUMN leadscore.all_state.fit_disqualified IS 'As in leadscore.lead_state.fit_disqualified.';
COMMENT ON COLUMN leadscore.all_state.stage_since IS 'As in leadscore.lead_state.stage_since.';
COMMENT ON COLUMN leadscore.all_state.scored_at IS 'As in leadscore.lead_state.scored_at.';
COMMENT ON COLUMN leadscore.all_state.next_change IS 'As in leadscore.lead_state.next_change.';
COMMENT ON COLUMN leadscore.all_state.summary IS 'As in leadscore.lead_state.summary.';
CREATE FUNCTION leadscore.cluster_model_changed() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'leadscore_cluster_model_changed';
COMMENT ON FUNCTION leadscore.cluster_model_changed() IS 'Trigger on each Citus node''s copy of leadscore.cluster_model: drops the node''s cached models when a distributed model''s rules change.';
CREATE FUNCTION leadscore.state_refreshed() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'leadscore_state_refreshed';
COMMENT ON FUNCTION leadscore.state_refreshed() IS 'Trigger on the shards of a Citus-distributed state table: computes a row''s refresh on its node when refresh() on the coordinator marks it (next_change = -infinity).';
CREATE FUNCTION leadscore.notify_stage_changes(model text DEFAULT NULL) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'leadscore_notify_stage_changes';
COMMENT ON FUNCTION leadscore.notify_stage_changes(text) IS 'Citus: sends on channel leadscore_stage the notifications of stage changes scored on the shards (live triggers, refresh) that were not sent yet, in the order they happened, from this node and in this transaction; returns how many. Run it on the coordinator, where listeners connect (leadscore.stage_notifier() calls it in a loop). Models that are not distributed have none.';
CREATE PROCEDURE leadscore.stage_notifier(run_for interval DEFAULT '55 seconds', every interval DEFAULT '1 second')
    LANGUAGE plpgsql
    AS $$
DECLARE
    stop_at timestamptz := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) run_for;
BEGIN
    -- One transaction per round: each round's notifications are delivered when it commits.
    LOOP
        PERFORM leadscore.notify_stage_changes();
        COMMIT;
        EXIT WHEN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>=) stop_at;
        PERFORM pg_catalog.pg_sleep(pg_catalog.date_part('epoch', every));
    END LOOP;
END
$$;
COMMENT ON PROCEDURE leadscore.stage_notifier(interval, interval) IS 'Citus: calls leadscore.notify_stage_changes() every "every" for "run_for", committing after each call; schedule it every minute with pg_cron (CALL leadscore.stage_notifier()) for notifications within about a second of the commit.';
REVOKE EXECUTE ON FUNCTION leadscore.notify_stage_changes(text) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE leadscore.stage_notifier(interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION leadscore.notify_stage_changes(text) TO leadscore_admin;
GRANT EXECUTE ON PROCEDURE leadscore.stage_notifier(interval, interval) TO leadscore_admin;

CREATE OR REPLACE VIEW leadscore.lead_score AS
    SELECT s.model, s.lead_id, s.score, s.fit_score, s.engagement_score, s.stage, s.disqualified, s.stage_since,
           s.scored_at,
           (SELECT g.name FROM leadscore.grade g
             WHERE g.model = s.model AND g.axis = 'fit' AND g.min_value <= s.fit_score
             ORDER BY g.min_value DESC LIMIT 1) AS fit_grade,
           (SELECT g.name FROM leadscore.grade g
             WHERE g.model = s.model AND g.axis = 'engagement' AND g.min_value <= s.engagement_score
             ORDER BY g.min_value DESC LIMIT 1) AS engagement_grade
      FROM leadscore.all_state s;
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
                               ADD COLUMN columns_fingerprint text,
                               ADD COLUMN disabled_rules_matched boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN leadscore.tracking.disabled_rules_matched IS 'Whether the stored summaries hold the occurrences of disabled activity rules (true once track() or rescore() of 0.5.0 or later built them): enabling a rule then reads no activity rows.';
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
-- (Citus) The history of distributed models, beside the local one.
CREATE VIEW leadscore.distributed_history AS
    SELECT model, lead_id, from_stage, to_stage, score, changed_at, id FROM leadscore.stage_history WHERE false;
COMMENT ON VIEW leadscore.distributed_history IS 'Stage history of the models tracked on Citus-distributed tables (rewritten by track() and untrack(); empty without Citus).';
CREATE VIEW leadscore.all_history AS
    SELECT model, lead_id, from_stage, to_stage, score, changed_at, id FROM leadscore.stage_history
    UNION ALL
    SELECT model, lead_id, from_stage, to_stage, score, changed_at, id FROM leadscore.distributed_history;
COMMENT ON VIEW leadscore.all_history IS 'Stage history of every tracked model, local and distributed.';
COMMENT ON COLUMN leadscore.distributed_history.model IS 'As in leadscore.stage_history.model.';
COMMENT ON COLUMN leadscore.distributed_history.lead_id IS 'As in leadscore.stage_history.lead_id.';
COMMENT ON COLUMN leadscore.distributed_history.from_stage IS 'As in leadscore.stage_history.from_stage.';
COMMENT ON COLUMN leadscore.distributed_history.to_stage IS 'As in leadscore.stage_history.to_stage.';
COMMENT ON COLUMN leadscore.distributed_history.score IS 'As in leadscore.stage_history.score.';
COMMENT ON COLUMN leadscore.distributed_history.changed_at IS 'As in leadscore.stage_history.changed_at.';
COMMENT ON COLUMN leadscore.distributed_history.id IS 'As in leadscore.stage_history.id.';
COMMENT ON COLUMN leadscore.all_history.model IS 'As in leadscore.stage_history.model.';
COMMENT ON COLUMN leadscore.all_history.lead_id IS 'As in leadscore.stage_history.lead_id.';
COMMENT ON COLUMN leadscore.all_history.from_stage IS 'As in leadscore.stage_history.from_stage.';
COMMENT ON COLUMN leadscore.all_history.to_stage IS 'As in leadscore.stage_history.to_stage.';
COMMENT ON COLUMN leadscore.all_history.score IS 'As in leadscore.stage_history.score.';
COMMENT ON COLUMN leadscore.all_history.changed_at IS 'As in leadscore.stage_history.changed_at.';
COMMENT ON COLUMN leadscore.all_history.id IS 'As in leadscore.stage_history.id.';

CREATE OR REPLACE VIEW leadscore.stage_change AS
    SELECT model, lead_id, from_stage, to_stage, score, changed_at, id
      FROM leadscore.all_history;
COMMENT ON COLUMN leadscore.tracking.replica IS 'Whether changes applied by logical replication (session_replication_role = replica) are scored too, by row triggers enabled REPLICA.';
COMMENT ON COLUMN leadscore.stage_history.id IS 'Stable key of the change (for change data capture consumers); increasing, but not in commit order.';
COMMENT ON COLUMN leadscore.stage_change.id IS 'Stable key of the change.';

-- Learning: at most max_rules features (greedy forward selection on the training rows,
-- leadscore.learn_select), count candidates for activities (min_count), and stage thresholds
-- from capacity or a target conversion rate (leadscore.suggest_stages).
DROP FUNCTION leadscore.write_draft(text, text, text, timestamptz, interval, float8, text[]);
DROP FUNCTION leadscore.learn_points(text, text, timestamptz, interval, float8, text[], integer, integer);
DROP FUNCTION leadscore.learn_report(text, text, text, integer, text[], float8, numeric);
CREATE FUNCTION leadscore.learn_select(design text, max_rules integer, l2 float8 DEFAULT 1.0)
    RETURNS TABLE (step integer, feature text, gain float8)
    LANGUAGE plpgsql SET client_min_messages = warning
AS $fn$
#variable_conflict use_column
DECLARE
    selected text[] := '{}';
    betas float8[];
    result float8[];
    total bigint;
    pos bigint;
    best text;
    best_gain float8;
    s int;
    it int;
BEGIN
    IF max_rules IS NULL OR max_rules < 1 THEN
        RAISE EXCEPTION 'leadscore: max_rules must be at least 1' USING ERRCODE = '22023';
    END IF;
    DROP TABLE IF EXISTS pg_temp.leadscore_learn_sel_rows;
    EXECUTE format('CREATE TEMP TABLE leadscore_learn_sel_rows AS
                      SELECT row_number() OVER () AS id, d.features, d.converted FROM (%s) AS d(lead, features, converted)',
                   design);
    SELECT count(*), count(*) FILTER (WHERE converted) INTO total, pos FROM leadscore_learn_sel_rows;
    IF total = 0 THEN RAISE EXCEPTION 'learning: there are no rows to learn from' USING ERRCODE = '22000'; END IF;
    IF pos = 0 OR pos = total THEN
        RAISE EXCEPTION 'learning: % lead converted: nothing to learn from', CASE WHEN pos = 0 THEN 'no' ELSE 'every' END
            USING ERRCODE = '22000';
    END IF;
    betas := ARRAY[ln(pos::float8 / (total - pos))];
    DROP TABLE IF EXISTS pg_temp.leadscore_learn_sel_coef;
    CREATE TEMP TABLE leadscore_learn_sel_coef (raw text, coefficient float8);
    FOR s IN 1 .. max_rules LOOP
        -- Refit on the features chosen so far, from the last fit (logit_step ignores the
        -- features it is not given, so the rows need no filtering).
        it := 0;
        WHILE s > 1 LOOP
            it := it + 1;
            SELECT leadscore.logit_step(ARRAY['(intercept)'] || selected, betas, l2, r.features, r.converted)
              INTO result FROM leadscore_learn_sel_rows r;
            betas := result[5:];
            EXIT WHEN result[1] < 1e-7;
            IF it >= 50 THEN
                RAISE EXCEPTION 'learning: logistic regression did not converge in 50 iterations' USING ERRCODE = '22000',
                    HINT = 'Raise l2.';
            END IF;
        END LOOP;
        TRUNCATE leadscore_learn_sel_coef;
        INSERT INTO leadscore_learn_sel_coef SELECT x.f, x.b FROM unnest(selected, betas[2:]) AS x(f, b);
        -- Score test: the gain in penalised log-likelihood of one Newton step on each new
        -- feature alone (times 2), g^2 / (h + l2), with g and h summed over the rows having it.
        SELECT q.u, q.g INTO best, best_gain
          FROM (SELECT p.u, sum(p.y - p.prob) ^ 2 / (sum(p.prob * (1 - p.prob)) + l2) AS g
                  FROM (SELECT u, t.converted::int AS y,
                               1 / (1 + exp(-(betas[1] + coalesce(sum(c.coefficient) OVER (PARTITION BY t.id), 0)))) AS prob
                          FROM leadscore_learn_sel_rows t CROSS JOIN LATERAL unnest(t.features) AS u
                          LEFT JOIN leadscore_learn_sel_coef c ON c.raw = u) AS p
                 WHERE NOT p.u = ANY (selected)
                 GROUP BY p.u) AS q
         ORDER BY q.g DESC, q.u LIMIT 1;
        EXIT WHEN best IS NULL OR best_gain < 1e-9;
        selected := selected || best;
        betas := betas || 0::float8;
        step := s; feature := best; gain := best_gain;
        RETURN NEXT;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION leadscore.learn_select(text, integer, float8) IS
    'Greedy forward selection of at most max_rules features of a design query (lead, features text[], converted): each step refits the L2 logistic model on the features chosen so far and adds the feature with the largest score-test gain in log-likelihood, g^2 / (h + l2); stops early when no feature gains. Returns the features (as in the design) in the order chosen.';

CREATE FUNCTION leadscore.learn_report(source text, key_column text, converted_column text, k integer DEFAULT 5,
                                       missing text[] DEFAULT ARRAY['Select', ''], l2 float8 DEFAULT 1.0,
                                       score_range numeric DEFAULT 100, max_rules integer DEFAULT NULL)
    RETURNS TABLE (fold text, method text, auc numeric, leads bigint, converted bigint, rules bigint)
    LANGUAGE plpgsql SET client_min_messages = warning
AS $fn$
#variable_conflict use_column
DECLARE
    f int;
    kept text;
BEGIN
    IF k < 2 THEN RAISE EXCEPTION 'leadscore: k must be at least 2' USING ERRCODE = '22023'; END IF;
    IF max_rules < 1 THEN RAISE EXCEPTION 'leadscore: max_rules must be at least 1' USING ERRCODE = '22023'; END IF;
    DROP TABLE IF EXISTS pg_temp.leadscore_learn_design;
    CREATE TEMP TABLE leadscore_learn_design AS
        SELECT d.lead, d.features, d.converted, abs(hashtext(d.lead)) % k AS part
          FROM leadscore.learn_design(source, key_column, converted_column, missing) AS d;
    DROP TABLE IF EXISTS pg_temp.leadscore_learn_scores;
    CREATE TEMP TABLE leadscore_learn_scores (part int, method text, lead text, score float8, converted boolean);
    DROP TABLE IF EXISTS pg_temp.leadscore_learn_rules;
    CREATE TEMP TABLE leadscore_learn_rules (part int, method text, rules bigint);
    DROP TABLE IF EXISTS pg_temp.leadscore_learn_selected;
    CREATE TEMP TABLE leadscore_learn_selected (part int, step int, feature text);
    FOR f IN 0 .. k - 1 LOOP
        -- (a) the logistic model; with max_rules, on the features chosen from this fold's
        -- training rows only, so that the held-out AUC stays honest
        kept := 'features';
        IF max_rules IS NOT NULL THEN
            INSERT INTO leadscore_learn_selected
            SELECT f, s.step, s.feature
              FROM leadscore.learn_select(format('SELECT lead, features, converted FROM leadscore_learn_design WHERE part <> %s', f),
                                          max_rules, l2) AS s;
            kept := format('ARRAY(SELECT u FROM unnest(features) AS u WHERE u IN (SELECT feature FROM leadscore_learn_selected WHERE part = %s))', f);
        END IF;
        DROP TABLE IF EXISTS pg_temp.leadscore_learn_coef;
        CREATE TEMP TABLE leadscore_learn_coef AS
            SELECT replace(c.feature, ' ', E'\x1f') AS raw, c.feature, c.coefficient
              FROM leadscore.learn_logistic(format('SELECT lead, %s, converted FROM leadscore_learn_design WHERE part <> %s', kept, f),
                                            l2) AS c;
        -- feature names were "column<US>condition": recover the column as the group
        UPDATE leadscore_learn_coef SET raw = x.r
          FROM (SELECT DISTINCT u AS r, replace(u, E'\x1f', ' ') AS shown
                  FROM leadscore_learn_design, unnest(features) AS u) AS x
         WHERE x.shown = leadscore_learn_coef.feature;
        INSERT INTO leadscore_learn_scores
        SELECT f, 'logistic', d.lead, coalesce(sum(c.coefficient), 0), d.converted
          FROM leadscore_learn_design d LEFT JOIN LATERAL unnest(d.features) AS u ON true
          LEFT JOIN leadscore_learn_coef c ON c.raw = u
         WHERE d.part = f GROUP BY d.lead, d.converted;
        INSERT INTO leadscore_learn_rules
        SELECT f, 'logistic', count(*) FILTER (WHERE c.coefficient <> 0) FROM leadscore_learn_coef c WHERE c.raw <> '(intercept)';
        -- (b) integer points: per column, the lowest level at 0 (with max_rules the levels not
        -- chosen stay at 0 instead), scaled so that the largest total spans the score range
        DROP TABLE IF EXISTS pg_temp.leadscore_learn_pts;
        CREATE TEMP TABLE leadscore_learn_pts AS
        WITH grouped AS (
            SELECT c.raw, split_part(c.raw, E'\x1f', 1) AS grp,
                   c.coefficient - CASE WHEN max_rules IS NULL
                                        THEN min(c.coefficient) OVER (PARTITION BY split_part(c.raw, E'\x1f', 1))
                                        ELSE 0 END AS shifted
              FROM leadscore_learn_coef c WHERE c.raw <> '(intercept)'
        ), scale AS (
            SELECT score_range::float8 / nullif(sum(m), 0) AS s
              FROM (SELECT greatest(max(shifted), 0) - least(min(shifted), 0) AS m FROM grouped GROUP BY grp) g
        )
        SELECT g.raw, round(g.shifted * coalesce((SELECT s FROM scale), 0)) AS points FROM grouped g;
        INSERT INTO leadscore_learn_rules
        SELECT f, 'integer points', count(*) FILTER (WHERE p.points <> 0) FROM leadscore_learn_pts p;
        INSERT INTO leadscore_learn_scores
        SELECT f, 'integer points', d.lead, coalesce(sum(p.points), 0), d.converted
          FROM leadscore_learn_design d LEFT JOIN LATERAL unnest(d.features) AS u ON true
          LEFT JOIN leadscore_learn_pts p ON p.raw = u
         WHERE d.part = f GROUP BY d.lead, d.converted;
        -- (c) naive Bayes: per feature, smoothed frequency among converted vs other leads
        INSERT INTO leadscore_learn_scores
        WITH train AS (SELECT * FROM leadscore_learn_design WHERE part <> f),
        totals AS (SELECT count(*) FILTER (WHERE converted) AS p, count(*) FILTER (WHERE NOT converted) AS n FROM train),
        counts AS (
            SELECT u AS feat, split_part(u, E'\x1f', 1) AS grp, count(*) FILTER (WHERE t.converted) AS p,
                   count(*) FILTER (WHERE NOT t.converted) AS n
              FROM train t, unnest(t.features) AS u GROUP BY u
        ), levels AS (SELECT grp, count(*) AS l FROM counts GROUP BY grp),
        lo AS (
            SELECT c.feat, ln((c.p + 1.0) / ((SELECT p FROM totals) + l.l)) - ln((c.n + 1.0) / ((SELECT n FROM totals) + l.l)) AS v
              FROM counts c JOIN levels l USING (grp)
        )
        SELECT f, 'naive Bayes', d.lead, coalesce(sum(lo.v), 0), d.converted
          FROM leadscore_learn_design d LEFT JOIN LATERAL unnest(d.features) AS u ON true
          LEFT JOIN lo ON lo.feat = u
         WHERE d.part = f GROUP BY d.lead, d.converted;
        INSERT INTO leadscore_learn_rules
        SELECT f, 'naive Bayes', count(DISTINCT u) FROM leadscore_learn_design d, unnest(d.features) AS u WHERE d.part <> f;
    END LOOP;
    RETURN QUERY
    WITH ranked AS (
        SELECT s.part, s.method, s.converted,
               rank() OVER (PARTITION BY s.part, s.method ORDER BY s.score)
               + (count(*) OVER (PARTITION BY s.part, s.method, s.score) - 1) / 2.0 AS r
          FROM leadscore_learn_scores s
    ), per_fold AS (
        SELECT r.part, r.method, count(*) AS n, count(*) FILTER (WHERE r.converted) AS pos,
               sum(r.r) FILTER (WHERE r.converted) AS rank_sum
          FROM ranked r GROUP BY r.part, r.method
    ), aucs AS (
        SELECT p.part, p.method, p.n, p.pos,
               CASE WHEN p.pos = 0 OR p.pos = p.n THEN NULL
                    ELSE (p.rank_sum - p.pos * (p.pos + 1) / 2.0) / (p.pos::numeric * (p.n - p.pos)) END AS auc
          FROM per_fold p
    )
    SELECT (a.part + 1)::text, a.method, round(a.auc, 4), a.n, a.pos, r.rules
      FROM aucs a JOIN leadscore_learn_rules r ON r.part = a.part AND r.method = a.method
    UNION ALL
    SELECT 'mean', a.method, round(avg(a.auc), 4), sum(a.n)::bigint, sum(a.pos)::bigint, max(r.rules)
      FROM aucs a JOIN leadscore_learn_rules r ON r.part = a.part AND r.method = a.method GROUP BY a.method
    ORDER BY 1, 2;
END
$fn$;
COMMENT ON FUNCTION leadscore.learn_report(text, text, text, integer, text[], float8, numeric, integer) IS
    'k-fold cross-validated ROC AUC on any table, view or query of leads with a converted flag: (a) the L2 logistic model, (b) the integer points derived from it (lowest level of each column at 0, scaled to score_range), (c) naive Bayes; rules is the number of features with a non-zero weight or points (mean: the most of any fold). With max_rules, (a) and (b) use at most that many features, chosen by leadscore.learn_select on each fold''s training rows only (the choices stay in pg_temp.leadscore_learn_selected). Values listed in missing (e.g. ''Select'', '''') count as missing.';
REVOKE EXECUTE ON FUNCTION leadscore.learn_report(text, text, text, integer, text[], float8, numeric, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION leadscore.learn_report(text, text, text, integer, text[], float8, numeric, integer) TO leadscore_admin;

CREATE FUNCTION leadscore.learn_points(model text, outcomes text, as_of timestamptz DEFAULT now(),
                                       activity_window interval DEFAULT '90 days', l2 float8 DEFAULT 1.0,
                                       missing text[] DEFAULT ARRAY['Select', ''], max_levels integer DEFAULT 20,
                                       bins integer DEFAULT 5, max_rules integer DEFAULT NULL)
    RETURNS TABLE (kind text, attribute text, activity_type text, op text, value text[], weight float8,
                   support bigint, points integer, min_count integer)
    LANGUAGE plpgsql SET client_min_messages = warning
AS $fn$
#variable_conflict use_column
DECLARE
    t leadscore.tracking;
    m leadscore.model;
    col record;
    exprs text[] := '{}';
    bounds numeric[];
    levels text[];
    is_missing text;
    n bigint;
    i int;
    scale float8;
    kept text := 'features';
BEGIN
    SELECT * INTO m FROM leadscore.model AS x WHERE x.name = learn_points.model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'leadscore model "%" does not exist', learn_points.model USING ERRCODE = '42704';
    END IF;
    SELECT * INTO t FROM leadscore.tracking AS x WHERE x.model = learn_points.model;
    IF NOT FOUND OR t.leads IS NULL THEN
        RAISE EXCEPTION 'leadscore: model "%" must be tracked with a leads table to learn from', learn_points.model
            USING ERRCODE = '55000';
    END IF;
    IF activity_window IS NULL OR activity_window <= interval '0' THEN
        RAISE EXCEPTION 'leadscore: activity_window must be positive' USING ERRCODE = '22023';
    END IF;
    IF max_rules < 1 THEN RAISE EXCEPTION 'leadscore: max_rules must be at least 1' USING ERRCODE = '22023'; END IF;
    EXECUTE format('SELECT count(*) FROM %s', t.leads) INTO n;
    -- Candidate fit rules: every column of the leads table but the key, as rules can express them:
    -- "= value" for frequent values, "is null" / "in (missing tokens)" for missing, ">= b" thresholds.
    FOR col IN SELECT a.attname::text AS name, ty.typcategory AS category
                 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
                WHERE a.attrelid = t.leads AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> t.lead_key
                  AND ty.typcategory IN ('N', 'S', 'B', 'E')
                ORDER BY a.attnum
    LOOP
        exprs := exprs || format('CASE WHEN l.%I IS NULL THEN %L END', col.name,
                                 'f' || E'\x1f' || col.name || E'\x1f' || 'is null' || E'\x1f');
        IF col.category = 'N' THEN
            EXECUTE format('SELECT array_agg(DISTINCT b ORDER BY b) FROM unnest((SELECT percentile_disc(%L::float8[])
                              WITHIN GROUP (ORDER BY %I) FROM %s)) AS b WHERE b IS NOT NULL',
                           (SELECT array_agg(g::float8 / bins) FROM generate_series(1, bins - 1) g), col.name, t.leads)
                INTO bounds;
            FOR i IN 1 .. coalesce(array_length(bounds, 1), 0) LOOP
                exprs := exprs || format('CASE WHEN l.%I >= %s THEN %L END', col.name, bounds[i],
                                         'f' || E'\x1f' || col.name || E'\x1f' || '>=' || E'\x1f' || bounds[i]);
            END LOOP;
        ELSE
            is_missing := format('btrim(l.%I::text) = ANY (%L::text[])', col.name, missing);
            exprs := exprs || format('CASE WHEN %s THEN %L END', is_missing,
                                     'f' || E'\x1f' || col.name || E'\x1f' || 'in' || E'\x1f' || array_to_string(missing, E'\x1e'));
            EXECUTE format('SELECT array_agg(v) FROM (SELECT l.%I::text AS v FROM %s l WHERE l.%I IS NOT NULL AND NOT %s
                              GROUP BY 1 HAVING count(*) >= greatest(2, %s) ORDER BY count(*) DESC, 1 LIMIT %s) s',
                           col.name, t.leads, col.name, is_missing, ceil(n * 0.005), max_levels)
                INTO levels;
            IF levels IS NOT NULL THEN
                exprs := exprs || format('CASE WHEN l.%I::text = ANY (%L::text[]) THEN %L || l.%I::text END',
                                         col.name, levels, 'f' || E'\x1f' || col.name || E'\x1f' || '=' || E'\x1f', col.name);
            END IF;
        END IF;
    END LOOP;
    DROP TABLE IF EXISTS pg_temp.leadscore_learn_points;
    EXECUTE format($q$
        CREATE TEMP TABLE leadscore_learn_points AS
        WITH o AS (%1$s),
        occurrences AS (
            -- As a rule with min_count k, within and expires_after = window counts them: an
            -- occurrence in the window that is the k-th or later in [t - window, t].
            SELECT a.%3$I::text AS lead, a.%4$I::text AS type, a.%5$I AS at,
                   count(*) OVER (PARTITION BY a.%3$I::text, a.%4$I::text ORDER BY a.%5$I
                                  RANGE BETWEEN $2 PRECEDING AND CURRENT ROW) AS n
              FROM %2$s a
             WHERE a.%5$I <= $1 AND a.%5$I > $1 - $2 - $2 AND a.%3$I IS NOT NULL AND a.%4$I IS NOT NULL
        ),
        acts AS (
            SELECT x.lead, array_agg('a' || E'\x1f' || x.type || CASE WHEN k = 1 THEN '' ELSE E'\x1f' || k END) AS f
              FROM (SELECT lead, type, max(n) AS n FROM occurrences WHERE at > $1 - $2 GROUP BY 1, 2) x,
                   unnest(ARRAY[1, 2, 3, 5, 10]) AS k
             WHERE x.n >= k
             GROUP BY 1
        )
        SELECT l.%7$I::text AS lead,
               array_remove(ARRAY[%8$s], NULL) || coalesce(acts.f, '{}') AS features,
               coalesce(bool_or(o.converted AND (o.converted_at IS NULL OR o.converted_at > $1)), false) AS converted
          FROM %6$s l
          LEFT JOIN acts ON acts.lead = l.%7$I::text
          LEFT JOIN o ON o.lead = l.%7$I::text
         GROUP BY l.%7$I, acts.f, %9$s
        HAVING NOT coalesce(bool_or(o.converted AND o.converted_at <= $1), false)
    $q$, leadscore.outcomes_query(outcomes), t.activities, t.lead_column, t.type_column, t.time_column, t.leads,
         t.lead_key, array_to_string(exprs, ', '),
         (SELECT string_agg(format('l.%I', a.attname), ', ') FROM pg_catalog.pg_attribute a
           WHERE a.attrelid = t.leads AND a.attnum > 0 AND NOT a.attisdropped))
    USING as_of, activity_window;
    -- Count candidates ("at least k times") are kept only where frequent enough, like values.
    DROP TABLE IF EXISTS pg_temp.leadscore_learn_rare;
    CREATE TEMP TABLE leadscore_learn_rare AS
        SELECT u FROM leadscore_learn_points, unnest(features) AS u
         WHERE u ~ ('^a' || E'\x1f' || '.*' || E'\x1f' || '[0-9]+$')
         GROUP BY u HAVING count(*) < greatest(2, ceil(n * 0.005));
    UPDATE leadscore_learn_points p
       SET features = ARRAY(SELECT u FROM unnest(p.features) AS u WHERE u NOT IN (SELECT r.u FROM leadscore_learn_rare r))
     WHERE p.features && (SELECT coalesce(array_agg(r.u), '{}') FROM leadscore_learn_rare r);
    IF max_rules IS NOT NULL THEN
        DROP TABLE IF EXISTS pg_temp.leadscore_learn_chosen;
        CREATE TEMP TABLE leadscore_learn_chosen AS
            SELECT s.feature FROM leadscore.learn_select('SELECT lead, features, converted FROM leadscore_learn_points',
                                                         max_rules, l2) AS s;
        kept := 'ARRAY(SELECT u FROM unnest(features) AS u WHERE u IN (SELECT c.feature FROM leadscore_learn_chosen c))';
    END IF;
    DROP TABLE IF EXISTS pg_temp.leadscore_learn_weights;
    CREATE TEMP TABLE leadscore_learn_weights AS
        SELECT replace(w.feature, ' ', E'\x1f') AS raw, w.feature, w.coefficient, w.support
          FROM leadscore.learn_logistic(format('SELECT lead, %s, converted FROM leadscore_learn_points', kept), l2) AS w;
    UPDATE leadscore_learn_weights SET raw = x.r
      FROM (SELECT DISTINCT u AS r, replace(u, E'\x1f', ' ') AS shown FROM leadscore_learn_points, unnest(features) AS u) AS x
     WHERE x.shown = leadscore_learn_weights.feature;
    -- Integer points: the largest total a lead can reach maps to the model's range (100 when unbounded).
    SELECT coalesce(m.score_max - coalesce(m.score_min, 0), 100)::float8
           / nullif(sum(greatest(w.coefficient, 0)), 0)
      INTO scale FROM leadscore_learn_weights w WHERE w.raw <> '(intercept)';
    RETURN QUERY
    SELECT CASE split_part(w.raw, E'\x1f', 1) WHEN 'a' THEN 'activity' ELSE 'fit' END,
           CASE WHEN split_part(w.raw, E'\x1f', 1) = 'f' THEN split_part(w.raw, E'\x1f', 2) END,
           CASE WHEN split_part(w.raw, E'\x1f', 1) = 'a' THEN split_part(w.raw, E'\x1f', 2) END,
           CASE WHEN split_part(w.raw, E'\x1f', 1) = 'f' THEN split_part(w.raw, E'\x1f', 3) END,
           CASE WHEN split_part(w.raw, E'\x1f', 1) <> 'f' THEN NULL
                WHEN split_part(w.raw, E'\x1f', 3) = 'is null' THEN NULL
                WHEN split_part(w.raw, E'\x1f', 3) = 'in' THEN string_to_array(split_part(w.raw, E'\x1f', 4), E'\x1e')
                ELSE ARRAY[split_part(w.raw, E'\x1f', 4)] END,
           w.coefficient, w.support, round(w.coefficient * coalesce(scale, 0))::integer,
           CASE WHEN split_part(w.raw, E'\x1f', 1) = 'a' THEN coalesce(nullif(split_part(w.raw, E'\x1f', 3), ''), '1')::integer END
      FROM leadscore_learn_weights w
     WHERE w.raw <> '(intercept)'
     ORDER BY abs(w.coefficient) DESC, w.raw;
END
$fn$;
COMMENT ON FUNCTION leadscore.learn_points(text, text, timestamptz, interval, float8, text[], integer, integer, integer) IS
    'Learns point values for a tracked model from the leads that converted after as_of: candidate rules are each activity type at least once, and at least 2, 3, 5 and 10 times (min_count), within activity_window before as_of, and every column of the leads table ("=" frequent values, "is null" and the missing tokens, ">=" quantile thresholds); returns each candidate''s logistic weight (log-odds), support (leads having it) and integer points scaled to the model''s score range. With max_rules, only the features chosen by leadscore.learn_select (at most max_rules) are fitted and returned.';

CREATE FUNCTION leadscore.write_draft(model text, draft text, outcomes text, as_of timestamptz DEFAULT now(),
                                      activity_window interval DEFAULT '90 days', l2 float8 DEFAULT 1.0,
                                      missing text[] DEFAULT ARRAY['Select', ''], max_rules integer DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql SET client_min_messages = warning
AS $fn$
#variable_conflict use_column
DECLARE
    written integer;
BEGIN
    IF draft IS NULL OR draft = model THEN
        RAISE EXCEPTION 'leadscore: the draft must be a model other than "%"', model USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM leadscore.tracking AS x WHERE x.model = draft) THEN
        RAISE EXCEPTION 'leadscore: "%" is tracked: a draft must be untracked', draft USING ERRCODE = '55000';
    END IF;
    DROP TABLE IF EXISTS pg_temp.leadscore_learn_proposed;
    CREATE TEMP TABLE leadscore_learn_proposed AS
        SELECT * FROM leadscore.learn_points(model, outcomes, as_of, activity_window, l2, missing,
                                                max_rules => max_rules) AS p WHERE p.points <> 0;
    DELETE FROM leadscore.model AS x WHERE x.name = draft;
    INSERT INTO leadscore.model (name, score_min, score_max, description)
    SELECT draft, NULL, NULL, format('Learned from "%s" as of %s (activity window %s); edit freely', model, as_of, activity_window);
    INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once, expires_after, min_count, within)
    SELECT draft, left('learned: ' || p.activity_type || CASE WHEN p.min_count > 1 THEN format(' at least %s times', p.min_count) ELSE '' END, 200),
           p.activity_type, p.points, true, activity_window,
           CASE WHEN p.min_count > 1 THEN p.min_count END, CASE WHEN p.min_count > 1 THEN activity_window END
      FROM leadscore_learn_proposed p WHERE p.kind = 'activity';
    INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points)
    SELECT draft, left('learned: ' || p.attribute || ' ' || p.op || coalesce(' ' || array_to_string(p.value, ','), ''), 200),
           p.attribute, p.op, p.value, p.points
      FROM leadscore_learn_proposed p WHERE p.kind = 'fit';
    SELECT count(*) INTO written FROM leadscore_learn_proposed;
    RETURN written;
END
$fn$;
COMMENT ON FUNCTION leadscore.write_draft(text, text, text, timestamptz, interval, float8, text[], integer) IS
    'Writes the points learned by leadscore.learn_points as ordinary rules of an untracked draft model (replacing it), ready for leadscore.backtest against the live model; count candidates become activity rules with min_count and within = activity_window; with max_rules at most that many rules are written; returns the number of rules written.';
REVOKE EXECUTE ON FUNCTION leadscore.write_draft(text, text, text, timestamptz, interval, float8, text[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION leadscore.learn_points(text, text, timestamptz, interval, float8, text[], integer, integer, integer),
                          leadscore.write_draft(text, text, text, timestamptz, interval, float8, text[], integer)
    TO leadscore_admin;

CREATE FUNCTION leadscore.suggest_stages(model text, outcomes text, as_of timestamptz DEFAULT now(),
                                         capacity numeric DEFAULT NULL, target_rate numeric DEFAULT NULL,
                                         tables_from text DEFAULT NULL)
    RETURNS TABLE (stage text, ordinal integer, min_score numeric, leads bigint, share numeric, converted bigint,
                   conversion_rate numeric, lift numeric)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET client_min_messages = warning
AS $fn$
#variable_conflict use_column
DECLARE
    total bigint;
    wins bigint;
    band bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM leadscore.model m WHERE m.name = suggest_stages.model) THEN
        RAISE EXCEPTION 'leadscore model "%" does not exist', suggest_stages.model
            USING ERRCODE = '42704', HINT = 'Insert it into leadscore.model first.';
    END IF;
    IF (capacity IS NULL) = (target_rate IS NULL) THEN
        RAISE EXCEPTION 'leadscore: give either capacity or target_rate' USING ERRCODE = '22023',
            HINT = 'capacity: the share (below 1) or number of leads the top stage takes; target_rate: the conversion rate it must reach.';
    END IF;
    IF capacity <= 0 OR target_rate <= 0 OR target_rate > 1 THEN
        RAISE EXCEPTION 'leadscore: capacity must be positive and target_rate in (0, 1]' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM leadscore.stage st WHERE st.model = suggest_stages.model AND st.min_score IS NOT NULL) THEN
        RAISE EXCEPTION 'leadscore: model "%" has no stages with a min_score', suggest_stages.model USING ERRCODE = '55000',
            HINT = 'Insert the stages into leadscore.stage first; their thresholds are what is suggested.';
    END IF;
    -- The history as evaluate() sees it: scores as of as_of, leads that converted before it left out.
    DROP TABLE IF EXISTS pg_temp.leadscore_stage_history;
    EXECUTE format($q$
        CREATE TEMP TABLE leadscore_stage_history AS
        WITH o AS (%s)
        SELECT sc.lead_id, sc.score,
               EXISTS (SELECT 1 FROM o WHERE o.lead = sc.lead_id AND o.converted
                                         AND (o.converted_at IS NULL OR o.converted_at > $2)) AS won
          FROM leadscore.scores_as_of($1, $2, $3) sc
         WHERE NOT EXISTS (SELECT 1 FROM o WHERE o.lead = sc.lead_id AND o.converted AND o.converted_at <= $2)
    $q$, leadscore.outcomes_query(outcomes)) USING model, as_of, coalesce(tables_from, model);
    SELECT count(*), count(*) FILTER (WHERE h.won) INTO total, wins FROM leadscore_stage_history h;
    IF total = 0 THEN
        RAISE EXCEPTION 'leadscore: model "%" has no leads as of %', model, as_of USING ERRCODE = '22000';
    END IF;
    -- The top stage's band: the leads sales can take, or the most leads that still convert at target_rate.
    IF capacity IS NOT NULL THEN
        band := CASE WHEN capacity < 1 THEN ceil(capacity * total) ELSE floor(capacity) END;
    ELSE
        SELECT max(c.n) INTO band
          FROM (SELECT count(*) OVER w AS n, count(*) FILTER (WHERE h.won) OVER w AS p
                  FROM leadscore_stage_history h
                WINDOW w AS (ORDER BY h.score DESC RANGE UNBOUNDED PRECEDING)) c
         WHERE c.p >= target_rate * c.n;
        band := coalesce(band, 0);
    END IF;
    -- Stage i from the top takes i bands: the lowest score with at most i * band leads at or
    -- above it (the top score when even its ties are more).
    RETURN QUERY
    WITH stages AS (
        SELECT st.name, row_number() OVER (ORDER BY st.min_score DESC, st.name)::int AS pos
          FROM leadscore.stage st WHERE st.model = suggest_stages.model AND st.min_score IS NOT NULL
    ), levels AS (
        SELECT h.score AS v, count(*) OVER (ORDER BY h.score DESC RANGE UNBOUNDED PRECEDING) AS n,
               count(*) FILTER (WHERE h.won) OVER (ORDER BY h.score DESC RANGE UNBOUNDED PRECEDING) AS p
          FROM leadscore_stage_history h
    ), thresholds AS (
        SELECT s.name, s.pos,
               coalesce((SELECT min(l.v) FROM levels l WHERE l.n <= s.pos * band),
                        (SELECT max(l.v) FROM levels l)) AS v
          FROM stages s
    )
    SELECT t.name, t.pos, t.v, x.n, round(x.n::numeric / total, 4), x.p,
           round(x.p::numeric / nullif(x.n, 0), 4),
           round(CASE WHEN wins > 0 THEN x.p::numeric / nullif(x.n, 0) / (wins::numeric / total) END, 2)
      FROM thresholds t
     CROSS JOIN LATERAL (SELECT count(*) AS n, count(*) FILTER (WHERE h.won) AS p
                           FROM leadscore_stage_history h WHERE h.score >= t.v) x
     ORDER BY t.pos;
END
$fn$;
COMMENT ON FUNCTION leadscore.suggest_stages(text, text, timestamptz, numeric, numeric, text) IS
    'Suggests min_score thresholds for the model''s stages (those with a min_score, top first) from its scores as of as_of and the later conversions: the top stage takes capacity (a share below 1, or a number of leads), or the most leads that still convert at target_rate; each stage below takes one more such band. Returns each threshold with the leads reaching it, their share, conversions, conversion rate and lift, ready for UPDATE leadscore.stage.';

ALTER TABLE leadscore.activity_rule ADD COLUMN multiply_by text;
ALTER TABLE leadscore.fit_rule ADD COLUMN multiply_by text;
ALTER TABLE leadscore.fit_rule ALTER COLUMN attribute DROP NOT NULL, ALTER COLUMN op DROP NOT NULL;
COMMENT ON COLUMN leadscore.activity_rule.multiply_by IS 'Numeric column of the activity row: each counted occurrence is worth points x its value (rounded to 6 decimals); an activity whose value is NULL is not an occurrence.';
COMMENT ON COLUMN leadscore.fit_rule.multiply_by IS 'Numeric column of the lead or relation.column: a matching lead gets points x its value (rounded to 6 decimals); a NULL value gives no points.';
COMMENT ON COLUMN leadscore.fit_rule.attribute IS 'Column of the tracked leads table (or relation.column) the rule tests; NULL: no inline condition (the rule''s condition rows decide, or it matches every lead).';
-- Richer rules: condition groups, related records, per-value points.
CREATE TABLE leadscore.relation (
    model       text NOT NULL REFERENCES leadscore.model (name) ON UPDATE CASCADE ON DELETE CASCADE,
    name        text NOT NULL,
    lead_column name NOT NULL,
    target      regclass NOT NULL,
    target_key  name NOT NULL,
    PRIMARY KEY (model, name)
);
COMMENT ON TABLE leadscore.relation IS 'Related records a model''s rules may test (an account): the lead''s lead_column refers to target.target_key; attributes "name.column" read that row, and changes to target rows rescore the leads that refer to them.';
COMMENT ON COLUMN leadscore.relation.model IS 'Model the relation belongs to.';
COMMENT ON COLUMN leadscore.relation.name IS 'Prefix of the attributes that read the related row ("account" in account.revenue); "lead" is reserved.';
COMMENT ON COLUMN leadscore.relation.lead_column IS 'Column of the tracked leads table that holds the related row''s key.';
COMMENT ON COLUMN leadscore.relation.target IS 'The related table.';
COMMENT ON COLUMN leadscore.relation.target_key IS 'Column of the related table that lead_column refers to (a NULL or dangling reference reads as NULL).';

CREATE TABLE leadscore.fit_condition (
    id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    rule_id   bigint NOT NULL REFERENCES leadscore.fit_rule (id) ON DELETE CASCADE,
    grp       integer NOT NULL DEFAULT 1,
    attribute text NOT NULL,
    op        text NOT NULL,
    value     text[]
);
CREATE INDEX fit_condition_rule_idx ON leadscore.fit_condition (rule_id);
COMMENT ON TABLE leadscore.fit_condition IS 'Extra conditions of a fit rule: the rule matches when its inline condition (if any) holds and, when it has condition rows, every condition of at least one group holds.';
COMMENT ON COLUMN leadscore.fit_condition.id IS 'Condition identifier.';
COMMENT ON COLUMN leadscore.fit_condition.rule_id IS 'The fit rule this condition belongs to.';
COMMENT ON COLUMN leadscore.fit_condition.grp IS 'Group number: conditions of one group are ANDed, groups are ORed.';
COMMENT ON COLUMN leadscore.fit_condition.attribute IS 'A column of the tracked leads table, or relation.column.';
COMMENT ON COLUMN leadscore.fit_condition.op IS 'Operator, as for rules: =, <>, <, <=, >, >=, between, in, not in, like, ilike, ~, ~*, is null, is not null, in list, domain in list.';
COMMENT ON COLUMN leadscore.fit_condition.value IS 'Operand(s) of op, converted to the attribute''s type when written.';

CREATE TABLE leadscore.activity_condition (
    id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    rule_id   bigint NOT NULL REFERENCES leadscore.activity_rule (id) ON DELETE CASCADE,
    grp       integer NOT NULL DEFAULT 1,
    attribute text NOT NULL,
    op        text NOT NULL,
    value     text[]
);
CREATE INDEX activity_condition_rule_idx ON leadscore.activity_condition (rule_id);
COMMENT ON TABLE leadscore.activity_condition IS 'Extra conditions of an activity rule: the rule matches an activity when its inline condition (if any) holds and, when it has condition rows, every condition of at least one group holds; lead and related attributes are read from the lead''s current row.';
COMMENT ON COLUMN leadscore.activity_condition.id IS 'Condition identifier.';
COMMENT ON COLUMN leadscore.activity_condition.rule_id IS 'The activity rule this condition belongs to.';
COMMENT ON COLUMN leadscore.activity_condition.grp IS 'Group number: conditions of one group are ANDed, groups are ORed.';
COMMENT ON COLUMN leadscore.activity_condition.attribute IS 'A column of the activity row, lead.column (the tracked leads table) or relation.column.';
COMMENT ON COLUMN leadscore.activity_condition.op IS 'Operator, as for rules: =, <>, <, <=, >, >=, between, in, not in, like, ilike, ~, ~*, is null, is not null, in list, domain in list.';
COMMENT ON COLUMN leadscore.activity_condition.value IS 'Operand(s) of op, converted to the attribute''s type when written.';

SELECT pg_catalog.pg_extension_config_dump('leadscore.relation', '');
SELECT pg_catalog.pg_extension_config_dump('leadscore.fit_condition', '');
SELECT pg_catalog.pg_extension_config_dump('leadscore.fit_condition_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('leadscore.activity_condition', '');
SELECT pg_catalog.pg_extension_config_dump('leadscore.activity_condition_id_seq', '');

CREATE TRIGGER validate BEFORE INSERT OR UPDATE ON leadscore.relation
    FOR EACH ROW EXECUTE FUNCTION leadscore.validate_rule();
CREATE TRIGGER validate BEFORE INSERT OR UPDATE ON leadscore.fit_condition
    FOR EACH ROW EXECUTE FUNCTION leadscore.validate_rule();
CREATE TRIGGER validate BEFORE INSERT OR UPDATE ON leadscore.activity_condition
    FOR EACH ROW EXECUTE FUNCTION leadscore.validate_rule();
CREATE TRIGGER changed_ins AFTER INSERT ON leadscore.relation REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();
CREATE TRIGGER changed_upd AFTER UPDATE ON leadscore.relation REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();
CREATE TRIGGER changed_del AFTER DELETE ON leadscore.relation REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();
CREATE TRIGGER changed_trunc AFTER TRUNCATE ON leadscore.relation
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();
CREATE TRIGGER changed_ins AFTER INSERT ON leadscore.fit_condition REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();
CREATE TRIGGER changed_upd AFTER UPDATE ON leadscore.fit_condition REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();
CREATE TRIGGER changed_del AFTER DELETE ON leadscore.fit_condition REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();
CREATE TRIGGER changed_trunc AFTER TRUNCATE ON leadscore.fit_condition
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();
CREATE TRIGGER changed_ins AFTER INSERT ON leadscore.activity_condition REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();
CREATE TRIGGER changed_upd AFTER UPDATE ON leadscore.activity_condition REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();
CREATE TRIGGER changed_del AFTER DELETE ON leadscore.activity_condition REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();
CREATE TRIGGER changed_trunc AFTER TRUNCATE ON leadscore.activity_condition
    FOR EACH STATEMENT EXECUTE FUNCTION leadscore.rules_changed();

CREATE FUNCTION leadscore.related_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'leadscore_related_changed';
COMMENT ON FUNCTION leadscore.related_changed() IS 'Trigger installed on a relation''s target table: rescores the leads that refer to changed rows, in the same transaction.';

GRANT SELECT ON leadscore.relation, leadscore.fit_condition, leadscore.activity_condition TO leadscore_reader;
GRANT INSERT, UPDATE, DELETE ON leadscore.relation, leadscore.fit_condition, leadscore.activity_condition
    TO leadscore_admin;
GRANT USAGE ON SEQUENCE leadscore.fit_condition_id_seq, leadscore.activity_condition_id_seq TO leadscore_admin;

-- Views and functions that read stored state now include distributed models'.

CREATE OR REPLACE VIEW leadscore.funnel AS
    WITH counts AS (
        SELECT model, stage, count(*) AS leads FROM leadscore.all_state GROUP BY model, stage
    ), stages AS (
        SELECT s.model, s.name AS stage, s.min_score,
               row_number() OVER (PARTITION BY s.model ORDER BY s.min_score DESC NULLS LAST, s.name) AS position
          FROM leadscore.stage s
         WHERE EXISTS (SELECT 1 FROM leadscore.tracking t WHERE t.model = s.model)
    )
    SELECT st.model, st.stage, coalesce(c.leads, 0) AS leads, st.position::integer AS position
      FROM stages st LEFT JOIN counts c ON c.model = st.model AND c.stage = st.stage
    UNION ALL
    SELECT c.model, c.stage, c.leads, NULL::integer
      FROM counts c
     WHERE c.stage IS NULL OR c.stage = 'disqualified'
        OR NOT EXISTS (SELECT 1 FROM leadscore.stage s WHERE s.model = c.model AND s.name = c.stage);

CREATE OR REPLACE VIEW leadscore.score_histogram AS
WITH bounds AS (
    SELECT s.model, coalesce(m.score_min, min(s.score)) AS lo, coalesce(m.score_max, max(s.score)) AS hi
      FROM leadscore.all_state AS s JOIN leadscore.model AS m ON m.name = s.model
     GROUP BY s.model, m.score_min, m.score_max
), counted AS (
    SELECT s.model,
           CASE WHEN b.hi <= b.lo THEN 1
                ELSE least(10, greatest(1, pg_catalog.width_bucket(s.score, b.lo, b.hi, 10))) END AS bucket,
           count(*) AS leads
      FROM leadscore.all_state AS s JOIN bounds AS b ON b.model = s.model
     GROUP BY 1, 2
)
SELECT b.model, g.bucket, round(b.lo + (b.hi - b.lo) * (g.bucket - 1) / 10.0, 6) AS score_from,
       round(b.lo + (b.hi - b.lo) * g.bucket / 10.0, 6) AS score_to, coalesce(c.leads, 0) AS leads
  FROM bounds AS b
 CROSS JOIN pg_catalog.generate_series(1, 10) AS g(bucket)
  LEFT JOIN counted AS c ON c.model = b.model AND c.bucket = g.bucket;

CREATE OR REPLACE VIEW leadscore.stage_entries AS
SELECT h.model, h.to_stage AS stage, (h.changed_at AT TIME ZONE 'UTC')::date AS day,
       pg_catalog.date_trunc('week', h.changed_at AT TIME ZONE 'UTC')::date AS week, count(*) AS entered
  FROM leadscore.all_history AS h
 WHERE h.to_stage IS NOT NULL
 GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW leadscore.top_leads AS
SELECT r.model, r.rank, r.lead_id, r.score, r.fit_score, r.engagement_score, r.stage, r.stage_since,
       (SELECT pg_catalog.string_agg(e.rule || ' (' || e.points || ')', ', ' ORDER BY abs(e.points) DESC, e.rule)
          FROM (SELECT x.rule, x.points FROM leadscore.explain(r.model, r.lead_id, r.scored_at) AS x
                 ORDER BY abs(x.points) DESC, x.rule LIMIT 3) AS e) AS top_rules
  FROM (SELECT s.*, row_number() OVER (PARTITION BY s.model ORDER BY s.score DESC, s.lead_id) AS rank
          FROM leadscore.all_state AS s) AS r
 WHERE r.rank <= 100;

CREATE OR REPLACE FUNCTION leadscore.account_scores(model text)
    RETURNS TABLE (account text, contacts bigint, score_sum numeric, score_max numeric, score_top_n_mean numeric,
                   account_score numeric, stage text)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    r leadscore.account_rollup;
    t leadscore.tracking;
BEGIN
    SELECT * INTO r FROM leadscore.account_rollup AS a WHERE a.model = account_scores.model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'leadscore: model "%" has no account roll-up', account_scores.model USING ERRCODE = '42704',
            HINT = 'INSERT INTO leadscore.account_rollup (model, account_column) VALUES (...).';
    END IF;
    SELECT * INTO t FROM leadscore.tracking AS tr WHERE tr.model = account_scores.model;
    IF NOT FOUND OR t.leads IS NULL THEN
        RAISE EXCEPTION 'leadscore: model "%" is not tracked with a leads table', account_scores.model
            USING ERRCODE = '55000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS att
                    WHERE att.attrelid = t.leads AND att.attname = r.account_column AND att.attnum > 0
                      AND NOT att.attisdropped) THEN
        RAISE EXCEPTION 'leadscore: account column "%" does not exist in %', r.account_column, t.leads
            USING ERRCODE = '42703';
    END IF;
    RETURN QUERY EXECUTE format($q$
        WITH c AS (
            SELECT l.%1$I::text AS account, s.score,
                   row_number() OVER (PARTITION BY l.%1$I ORDER BY s.score DESC) AS rn
              FROM %2$s AS l
              JOIN leadscore.all_state AS s ON s.model = $1 AND s.lead_id = l.%3$I::text
             WHERE l.%1$I IS NOT NULL
        ), a AS (
            SELECT c.account, count(*) AS contacts, sum(c.score) AS score_sum, max(c.score) AS score_max,
                   round(avg(c.score) FILTER (WHERE c.rn <= $2), 6) AS score_top_n_mean
              FROM c GROUP BY c.account
        )
        SELECT a.account, a.contacts, a.score_sum, a.score_max, a.score_top_n_mean, x.v,
               (SELECT st.name FROM leadscore.account_stage AS st
                 WHERE st.model = $1 AND x.v >= st.min_score ORDER BY st.min_score DESC, st.name LIMIT 1)
          FROM a CROSS JOIN LATERAL (SELECT CASE $3 WHEN 'sum' THEN a.score_sum WHEN 'max' THEN a.score_max
                                                  ELSE a.score_top_n_mean END AS v) AS x
    $q$, r.account_column, t.leads, t.lead_key) USING account_scores.model, r.top_n, r.score_method;
END
$fn$;

