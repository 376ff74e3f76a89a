-- leadscore 0.1.0 -> 0.2.0. Every object added or changed in 0.2.0 appears here too;
-- tests/upgrade checks that an upgraded database equals a fresh 0.2.0 install.
\echo Use "ALTER EXTENSION leadscore UPDATE TO '0.2.0'" to load this file. \quit

-- 0.2.0 state tables have no next_change index (live updates stay HOT) and leave room on
-- each page for those updates; bring the state tables of models tracked under 0.1.0 in line.
DO $upgrade$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT state_table FROM leadscore.tracking LOOP
        EXECUTE format('DROP INDEX IF EXISTS leadscore.%I', t.state_table || '_due');
        EXECUTE format('ALTER TABLE leadscore.%I SET (fillfactor = 90)', t.state_table);
    END LOOP;
END
$upgrade$;

-- pg_restore loads extension tables in the order they were registered for pg_dump; 0.1.0
-- registered the lists after the rules that name them, so a restore failed. Register in the
-- 0.2.0 order: models, lists, then the rest as before.
UPDATE pg_catalog.pg_extension e
   SET extconfig = o.config, extcondition = o.conditions
  FROM (SELECT array_agg(c.oid ORDER BY c.ord) AS config, array_agg(c.cond ORDER BY c.ord) AS conditions
          FROM (SELECT x.oid, x.cond,
                       CASE x.oid WHEN 'leadscore.model'::regclass THEN 0
                                  WHEN 'leadscore.list_entry'::regclass THEN 1 ELSE 2 + x.pos END AS ord
                  FROM pg_catalog.pg_extension pe,
                       unnest(pe.extconfig, pe.extcondition) WITH ORDINALITY AS x(oid, cond, pos)
                 WHERE pe.extname = 'leadscore') AS c) AS o
 WHERE e.extname = 'leadscore';

-- ---------------------------------------------------------------------------
-- DDL on tracked tables: never a silent wrong score.
-- ---------------------------------------------------------------------------

-- ALTER TABLE on a tracked table rescores its models at once: the rules are compiled against
-- the new definition, so dropping, renaming or retyping a column that a model uses fails the
-- ALTER with the model's error, and any other change is reflected in the stored scores.
CREATE FUNCTION leadscore.tracked_table_altered() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    m text;
BEGIN
    FOR m IN SELECT DISTINCT t.model
               FROM pg_catalog.pg_event_trigger_ddl_commands() AS c
               JOIN leadscore.tracking AS t ON c.objid IN (t.activities, t.leads)
              WHERE c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
              ORDER BY 1
    LOOP
        PERFORM leadscore.rescore(m);
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION leadscore.tracked_table_altered() IS
    'Event trigger: rescores the models of a tracked table after ALTER TABLE, so an incompatible change fails with the model''s error.';

-- DROP TABLE of a tracked table untracks its models: triggers left on the other tracked table
-- and the state table go; models, rules and stage history stay.
CREATE FUNCTION leadscore.tracked_table_dropped() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    t record;
    trg record;
BEGIN
    FOR t IN SELECT DISTINCT tr.model, tr.state_table, tr.activities, tr.leads
               FROM leadscore.tracking AS tr
               JOIN pg_catalog.pg_event_trigger_dropped_objects() AS d
                 ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0
                AND d.objid IN (tr.activities, tr.leads)
              ORDER BY tr.model
    LOOP
        FOR trg IN SELECT g.tgname, g.tgrelid::pg_catalog.regclass AS rel
                     FROM pg_catalog.pg_trigger AS g
                    WHERE NOT g.tgisinternal
                      AND g.tgname LIKE 'leadscore\_' || t.state_table || '%'
                      AND EXISTS (SELECT 1 FROM pg_catalog.pg_class AS c WHERE c.oid = g.tgrelid)
        LOOP
            EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', trg.tgname, trg.rel);
        END LOOP;
        EXECUTE pg_catalog.format('DROP TABLE IF EXISTS leadscore.%I', t.state_table);
        DELETE FROM leadscore.tracking WHERE model = t.model;
        RAISE NOTICE 'leadscore: model "%" is no longer tracked: its table was dropped', t.model
            USING HINT = 'Its rules and stage history are kept; leadscore.track() attaches it again.';
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION leadscore.tracked_table_dropped() IS
    'Event trigger: a dropped tracked table untracks its models (rules and stage history are kept).';

CREATE EVENT TRIGGER leadscore_tracked_table_altered ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION leadscore.tracked_table_altered();
CREATE EVENT TRIGGER leadscore_tracked_table_dropped ON sql_drop
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED') EXECUTE FUNCTION leadscore.tracked_table_dropped();
REVOKE EXECUTE ON FUNCTION leadscore.tracked_table_altered() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION leadscore.tracked_table_dropped() FROM PUBLIC;

ALTER FUNCTION leadscore.validate_rule() SET search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------------------
-- Roles: leadscore_reader sees scores, explanations, rules and analytics;
-- leadscore_admin also edits rules and runs rescore/refresh. The CRM's writer needs no
-- grant at all (the triggers run as the extension owner). Roles are cluster-wide: they are
-- created when missing and survive DROP EXTENSION; the grants belong to this database.
-- ---------------------------------------------------------------------------
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'leadscore_reader') THEN
        CREATE ROLE leadscore_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'leadscore_admin') THEN
        CREATE ROLE leadscore_admin NOLOGIN;
    END IF;
END
$roles$;
GRANT USAGE ON SCHEMA leadscore TO leadscore_reader, leadscore_admin;
GRANT SELECT ON leadscore.model, leadscore.activity_rule, leadscore.fit_rule, leadscore.stage, leadscore.list_entry,
                leadscore.tracking, leadscore.lead_score, leadscore.stage_change, leadscore.funnel
    TO leadscore_reader;
GRANT leadscore_reader TO leadscore_admin;
GRANT INSERT, UPDATE, DELETE ON leadscore.model, leadscore.activity_rule, leadscore.fit_rule, leadscore.stage,
                                leadscore.list_entry TO leadscore_admin;
GRANT USAGE ON SEQUENCE leadscore.activity_rule_id_seq, leadscore.fit_rule_id_seq TO leadscore_admin;
GRANT EXECUTE ON FUNCTION leadscore.rescore(text), leadscore.refresh(text, timestamptz) TO leadscore_admin;

-- evaluate() names an unknown model up front.
CREATE OR REPLACE FUNCTION leadscore.evaluate(model text, outcomes text, as_of timestamptz DEFAULT now(),
                                   tables_from text DEFAULT NULL)
    RETURNS TABLE (section text, bucket text, ordinal integer, leads bigint, converted bigint,
                   conversion_rate numeric, lift numeric, value numeric)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM leadscore.model m WHERE m.name = evaluate.model) THEN
        RAISE EXCEPTION 'leadscore model "%" does not exist', evaluate.model
            USING ERRCODE = '42704', HINT = 'Insert it into leadscore.model first.';
    END IF;
    RETURN QUERY EXECUTE format($q$
        WITH o AS (%s),
        positives AS (
            SELECT DISTINCT lead FROM o WHERE converted AND (converted_at IS NULL OR converted_at > $2)
        ),
        already AS (
            SELECT DISTINCT lead FROM o WHERE converted AND converted_at <= $2
        ),
        s AS (
            SELECT sc.*, (p.lead IS NOT NULL) AS won
              FROM leadscore.scores_as_of($1, $2, $3) sc
              LEFT JOIN positives p ON p.lead = sc.lead_id
             WHERE NOT EXISTS (SELECT 1 FROM already a WHERE a.lead = sc.lead_id)
        ),
        totals AS (
            SELECT count(*) AS n, count(*) FILTER (WHERE won) AS pos FROM s
        ),
        ranked AS (
            SELECT won, (rank() OVER (ORDER BY score) + (count(*) OVER (PARTITION BY score) - 1) / 2.0) AS r FROM s
        ),
        auc AS (
            SELECT CASE WHEN t.pos = 0 OR t.pos = t.n THEN NULL
                        ELSE round(((SELECT sum(r) FROM ranked WHERE won) - t.pos * (t.pos + 1) / 2.0)
                                   / (t.pos::numeric * (t.n - t.pos)), 6) END AS v
              FROM totals t
        ),
        deciles AS (
            SELECT ntile(10) OVER (ORDER BY score DESC, lead_id) AS d, won FROM s
        ),
        stages AS (
            SELECT st.name, row_number() OVER (ORDER BY st.min_score DESC NULLS LAST, st.name)::int AS pos
              FROM leadscore.stage st WHERE st.model = $1
        ),
        rate AS (SELECT CASE WHEN n = 0 THEN NULL ELSE pos::numeric / n END AS overall FROM totals)
        SELECT 'overall'::text, 'all'::text, NULL::int, t.n, t.pos,
               round(CASE WHEN t.n = 0 THEN NULL ELSE t.pos::numeric / t.n END, 6), NULL::numeric,
               (SELECT v FROM auc)
          FROM totals t
        UNION ALL
        SELECT 'decile', d::text, d, count(*), count(*) FILTER (WHERE won),
               round(count(*) FILTER (WHERE won)::numeric / count(*), 6),
               round(CASE WHEN (SELECT overall FROM rate) > 0
                          THEN count(*) FILTER (WHERE won)::numeric / count(*) / (SELECT overall FROM rate) END, 6),
               NULL
          FROM deciles GROUP BY d
        UNION ALL
        SELECT 'stage', coalesce(s.stage, '(none)'), coalesce(st.pos, CASE WHEN s.stage = 'disqualified' THEN 1000 ELSE 999 END),
               count(*), count(*) FILTER (WHERE won),
               round(count(*) FILTER (WHERE won)::numeric / count(*), 6),
               round(CASE WHEN (SELECT overall FROM rate) > 0
                          THEN count(*) FILTER (WHERE won)::numeric / count(*) / (SELECT overall FROM rate) END, 6),
               NULL
          FROM s LEFT JOIN stages st ON st.name = s.stage
         GROUP BY s.stage, st.pos
        UNION ALL
        SELECT 'reached', st.name, st.pos, count(s.lead_id), count(s.lead_id) FILTER (WHERE s.won),
               round(count(s.lead_id) FILTER (WHERE s.won)::numeric / nullif(count(s.lead_id), 0), 6),
               round(CASE WHEN (SELECT overall FROM rate) > 0 AND count(s.lead_id) > 0
                          THEN count(s.lead_id) FILTER (WHERE s.won)::numeric / count(s.lead_id) / (SELECT overall FROM rate) END, 6),
               NULL
          FROM stages st
          LEFT JOIN stages at_or_above ON at_or_above.pos <= st.pos
          LEFT JOIN s ON s.stage = at_or_above.name
         GROUP BY st.name, st.pos
    $q$, leadscore.outcomes_query(outcomes)) USING model, as_of, coalesce(tables_from, model);
END
$fn$;

-- ---------------------------------------------------------------------------
-- BI views and the account roll-up: stable names, every column commented.
-- ---------------------------------------------------------------------------

CREATE VIEW leadscore.score_histogram AS
WITH bounds AS (
    SELECT s.model, coalesce(m.score_min, min(s.score)) AS lo, coalesce(m.score_max, max(s.score)) AS hi
      FROM leadscore.lead_state AS s JOIN leadscore.model AS m ON m.name = s.model
     GROUP BY s.model, m.score_min, m.score_max
), counted AS (
    SELECT s.model,
           CASE WHEN b.hi <= b.lo THEN 1
                ELSE least(10, greatest(1, pg_catalog.width_bucket(s.score, b.lo, b.hi, 10))) END AS bucket,
           count(*) AS leads
      FROM leadscore.lead_state AS s JOIN bounds AS b ON b.model = s.model
     GROUP BY 1, 2
)
SELECT b.model, g.bucket, round(b.lo + (b.hi - b.lo) * (g.bucket - 1) / 10.0, 6) AS score_from,
       round(b.lo + (b.hi - b.lo) * g.bucket / 10.0, 6) AS score_to, coalesce(c.leads, 0) AS leads
  FROM bounds AS b
 CROSS JOIN pg_catalog.generate_series(1, 10) AS g(bucket)
  LEFT JOIN counted AS c ON c.model = b.model AND c.bucket = g.bucket;
COMMENT ON VIEW leadscore.score_histogram IS 'Score distribution of every tracked model: ten equal buckets over the model''s score range (or the observed range when unbounded).';
COMMENT ON COLUMN leadscore.score_histogram.model IS 'Model.';
COMMENT ON COLUMN leadscore.score_histogram.bucket IS 'Bucket number, 1 (lowest scores) to 10.';
COMMENT ON COLUMN leadscore.score_histogram.score_from IS 'Lowest score of the bucket (inclusive).';
COMMENT ON COLUMN leadscore.score_histogram.score_to IS 'Highest score of the bucket (exclusive, inclusive for bucket 10).';
COMMENT ON COLUMN leadscore.score_histogram.leads IS 'Leads whose stored score falls in the bucket.';

CREATE VIEW leadscore.stage_entries AS
SELECT h.model, h.to_stage AS stage, (h.changed_at AT TIME ZONE 'UTC')::date AS day,
       pg_catalog.date_trunc('week', h.changed_at AT TIME ZONE 'UTC')::date AS week, count(*) AS entered
  FROM leadscore.stage_history AS h
 WHERE h.to_stage IS NOT NULL
 GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW leadscore.stage_entries IS 'Funnel over time: leads entering each stage per day (UTC), with the week for weekly roll-ups.';
COMMENT ON COLUMN leadscore.stage_entries.model IS 'Model.';
COMMENT ON COLUMN leadscore.stage_entries.stage IS 'Stage entered.';
COMMENT ON COLUMN leadscore.stage_entries.day IS 'Day of the entries (UTC).';
COMMENT ON COLUMN leadscore.stage_entries.week IS 'Monday of the week of the entries (UTC); group by it for weekly figures.';
COMMENT ON COLUMN leadscore.stage_entries.entered IS 'Number of stage entries that day.';

CREATE VIEW leadscore.top_leads AS
SELECT r.model, r.rank, r.lead_id, r.score, r.fit_score, r.engagement_score, r.stage, r.stage_since,
       (SELECT pg_catalog.string_agg(e.rule || ' (' || e.points || ')', ', ' ORDER BY abs(e.points) DESC, e.rule)
          FROM (SELECT x.rule, x.points FROM leadscore.explain(r.model, r.lead_id, r.scored_at) AS x
                 ORDER BY abs(x.points) DESC, x.rule LIMIT 3) AS e) AS top_rules
  FROM (SELECT s.*, row_number() OVER (PARTITION BY s.model ORDER BY s.score DESC, s.lead_id) AS rank
          FROM leadscore.lead_state AS s) AS r
 WHERE r.rank <= 100;
COMMENT ON VIEW leadscore.top_leads IS 'The 100 best-scored leads of every tracked model with the three rules that contribute most to each score.';
COMMENT ON COLUMN leadscore.top_leads.model IS 'Model.';
COMMENT ON COLUMN leadscore.top_leads.rank IS 'Rank by score within the model (1 = best; ties by lead id).';
COMMENT ON COLUMN leadscore.top_leads.lead_id IS 'Text form of the lead key.';
COMMENT ON COLUMN leadscore.top_leads.score IS 'Stored score.';
COMMENT ON COLUMN leadscore.top_leads.fit_score IS 'Fit part of the score.';
COMMENT ON COLUMN leadscore.top_leads.engagement_score IS 'Engagement part of the score.';
COMMENT ON COLUMN leadscore.top_leads.stage IS 'Current stage.';
COMMENT ON COLUMN leadscore.top_leads.stage_since IS 'When the lead entered its current stage.';
COMMENT ON COLUMN leadscore.top_leads.top_rules IS 'The three largest contributions, as "rule (points)", from leadscore.explain as of the stored score''s time.';

CREATE FUNCTION leadscore.rule_usage_of(model text)
    RETURNS TABLE (family text, rule_id bigint, rule text, leads bigint, total_points numeric)
    LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'leadscore_rule_usage_of';
COMMENT ON FUNCTION leadscore.rule_usage_of(text) IS
    'Every rule of a tracked model with the number of leads it contributes to now and its total points, from the stored state.';
CREATE VIEW leadscore.rule_usage AS
SELECT t.model, u.family, u.rule_id, u.rule, u.leads, u.total_points
  FROM leadscore.tracking AS t CROSS JOIN LATERAL leadscore.rule_usage_of(t.model) AS u;
COMMENT ON VIEW leadscore.rule_usage IS 'How many leads each rule of each tracked model currently contributes to, and its total points.';
COMMENT ON COLUMN leadscore.rule_usage.model IS 'Model.';
COMMENT ON COLUMN leadscore.rule_usage.family IS '"engagement" (activity rule) or "fit" (fit rule).';
COMMENT ON COLUMN leadscore.rule_usage.rule_id IS 'Rule id.';
COMMENT ON COLUMN leadscore.rule_usage.rule IS 'Rule name.';
COMMENT ON COLUMN leadscore.rule_usage.leads IS 'Leads whose stored score the rule contributes to (0 when none).';
COMMENT ON COLUMN leadscore.rule_usage.total_points IS 'Sum of the rule''s contributions over those leads, after caps, expiry and decay.';

CREATE TABLE leadscore.account_rollup (
    model          text PRIMARY KEY REFERENCES leadscore.model (name) ON UPDATE CASCADE ON DELETE CASCADE,
    account_column name NOT NULL,
    top_n          integer NOT NULL DEFAULT 3 CHECK (top_n > 0),
    score_method   text NOT NULL DEFAULT 'top_n_mean' CHECK (score_method IN ('sum', 'max', 'top_n_mean'))
);
COMMENT ON TABLE leadscore.account_rollup IS 'Account (company) scores of a model: which column of the tracked leads table names the account, and how contacts'' scores roll up.';
COMMENT ON COLUMN leadscore.account_rollup.model IS 'Tracked model (with a leads table).';
COMMENT ON COLUMN leadscore.account_rollup.account_column IS 'Column of the leads table holding the account (company) key.';
COMMENT ON COLUMN leadscore.account_rollup.top_n IS 'N of the top-N mean: the mean score of the account''s N best contacts.';
COMMENT ON COLUMN leadscore.account_rollup.score_method IS 'Which figure is the account score used for account stages: sum, max or top_n_mean.';
CREATE TABLE leadscore.account_stage (
    model     text NOT NULL REFERENCES leadscore.account_rollup (model) ON UPDATE CASCADE ON DELETE CASCADE,
    name      text NOT NULL CHECK (name <> ''),
    min_score numeric NOT NULL,
    PRIMARY KEY (model, name)
);
COMMENT ON TABLE leadscore.account_stage IS 'Account-level stages: an account is in the stage with the highest min_score its account score reaches.';
COMMENT ON COLUMN leadscore.account_stage.model IS 'Model with an account roll-up.';
COMMENT ON COLUMN leadscore.account_stage.name IS 'Stage name.';
COMMENT ON COLUMN leadscore.account_stage.min_score IS 'Lowest account score of the stage.';
SELECT pg_catalog.pg_extension_config_dump('leadscore.account_rollup', '');
SELECT pg_catalog.pg_extension_config_dump('leadscore.account_stage', '');

CREATE FUNCTION leadscore.account_scores(model text)
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
              JOIN leadscore.lead_state AS s ON s.model = $1 AND s.lead_id = l.%3$I::text
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
COMMENT ON FUNCTION leadscore.account_scores(text) IS
    'Account scores of a model from its contacts'' stored scores (sum, max, top-N mean) and the account stage.';
CREATE VIEW leadscore.account_score AS
SELECT r.model, a.account, a.contacts, a.score_sum, a.score_max, a.score_top_n_mean, a.account_score, a.stage
  FROM leadscore.account_rollup AS r CROSS JOIN LATERAL leadscore.account_scores(r.model) AS a;
COMMENT ON VIEW leadscore.account_score IS 'Account (company) scores and stages of every model with an account roll-up.';
COMMENT ON COLUMN leadscore.account_score.model IS 'Model.';
COMMENT ON COLUMN leadscore.account_score.account IS 'Account key (text form of the leads table''s account column).';
COMMENT ON COLUMN leadscore.account_score.contacts IS 'Tracked leads of the account.';
COMMENT ON COLUMN leadscore.account_score.score_sum IS 'Sum of the contacts'' scores.';
COMMENT ON COLUMN leadscore.account_score.score_max IS 'Best contact score.';
COMMENT ON COLUMN leadscore.account_score.score_top_n_mean IS 'Mean score of the account''s top_n best contacts.';
COMMENT ON COLUMN leadscore.account_score.account_score IS 'The figure chosen by account_rollup.score_method.';
COMMENT ON COLUMN leadscore.account_score.stage IS 'Account stage (highest account_stage.min_score reached); NULL when none.';

GRANT SELECT ON leadscore.score_histogram, leadscore.stage_entries, leadscore.top_leads, leadscore.rule_usage,
                leadscore.account_score, leadscore.account_rollup, leadscore.account_stage TO leadscore_reader;
GRANT INSERT, UPDATE, DELETE ON leadscore.account_rollup, leadscore.account_stage TO leadscore_admin;
