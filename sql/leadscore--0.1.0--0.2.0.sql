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
