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
