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
