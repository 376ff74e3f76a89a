-- leadscore 0.3.0 -> 0.4.0
\echo Use "ALTER EXTENSION leadscore UPDATE TO '0.4.0'" to load this file. \quit

-- The live triggers run with the invoker's rights: the common path updates state rows directly
-- and needs none; the SQL they run switches to the function owner with search_path pinned.
ALTER FUNCTION leadscore.activity_changed() SECURITY INVOKER RESET search_path;
ALTER FUNCTION leadscore.lead_changed() SECURITY INVOKER RESET search_path;
