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
