-- Everything the extension owns, described so that two databases can be diffed.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET search_path = pg_catalog;
-- Members of the extension.
SELECT 'member ' || pg_describe_object(classid, objid, objsubid)
  FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'leadscore')
 ORDER BY 1;
-- Functions: full definitions (arguments, volatility, security, settings, body) and ACLs.
SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid) || E'\nacl ' || coalesce(p.proacl::text, '-')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'leadscore' AND p.prokind IN ('f', 'p')
 ORDER BY 1;
SELECT 'aggregate ' || p.oid::regprocedure || ' ' || a.aggtransfn || ' ' || a.aggfinalfn || ' ' || a.aggcombinefn || ' '
       || a.aggserialfn || ' ' || a.aggdeserialfn || ' ' || p.proparallel::text || ' sspace ' || a.aggtransspace
       || ' finalextra ' || a.aggfinalextra || ' ' || a.aggfinalmodify::text
  FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'leadscore' ORDER BY 1;
-- Tables and views: columns, defaults, constraints, indexes, triggers, options, ACLs.
SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' acl ' || coalesce(c.relacl::text, '-') || ' options '
       || coalesce(c.reloptions::text, '-')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'leadscore' ORDER BY 1;
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || coalesce(' identity ' || nullif(a.attidentity::text, ''), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = 'leadscore' AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'p')
 ORDER BY c.relname, a.attnum;
SELECT 'constraint ' || c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'leadscore' ORDER BY 1;
SELECT 'index ' || regexp_replace(pg_get_indexdef(i.indexrelid), 'state_[0-9a-f]+', 'state_*', 'g')
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'leadscore' ORDER BY 1;
SELECT 'view ' || c.relname || E'\n' || pg_get_viewdef(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'leadscore' AND c.relkind = 'v' ORDER BY 1;
SELECT 'trigger ' || regexp_replace(pg_get_triggerdef(t.oid), 'state_[0-9a-f]+', 'state_*', 'g')
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT t.tgisinternal AND (n.nspname IN ('leadscore', 'up')) ORDER BY 1;
-- Comments on everything in the schema.
SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ': ' || d.description
  FROM pg_description d
 WHERE (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                                         WHERE n.nspname = 'leadscore' AND c.relname NOT LIKE 'state\_%'))
    OR (d.classoid = 'pg_proc'::regclass AND d.objoid IN (SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                                                        WHERE n.nspname = 'leadscore'))
 ORDER BY 1;
-- Tables dumped by pg_dump and their filters.
SELECT 'config ' || c.relname || ' ' || coalesce(e.extcondition[i], '')
  FROM pg_extension e, generate_subscripts(e.extconfig, 1) AS i, pg_class c
 WHERE e.extname = 'leadscore' AND c.oid = e.extconfig[i] ORDER BY 1;
SELECT 'version ' || extversion FROM pg_extension WHERE extname = 'leadscore';
