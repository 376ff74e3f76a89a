-- The peers leadscore is compared with: what a DBA would write by hand for the demo model
-- (demo/model.sql), with the same rules and the same results.
--   peer.act_plain  no trigger: the physical limit of ingest
--   peer.act_row    PL/pgSQL FOR EACH ROW trigger keeping peer.score_row current
--   peer.act_stmt   PL/pgSQL statement trigger with a transition table keeping peer.score_stmt current
--   peer.act_simple_row / act_simple_stmt  issue #7's reference peers: per-type points only
--   peer.scores_all()  recompute on read: one GROUP BY over activities joined to the rules
-- Every peer reads the same rule rows (a copy of the model's activity rules); the fit rules
-- and stage thresholds of the demo model are written out in SQL, as a DBA would.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET timezone = 'UTC';
DROP SCHEMA IF EXISTS peer CASCADE;
CREATE SCHEMA peer;

CREATE TABLE peer.rule AS
SELECT id, name, activity_type, attribute, op, value, points, once, max_count, max_points, expires_after, half_life,
       disqualify, min_count, within, cooldown, quiet_for
  FROM leadscore.activity_rule WHERE model = 'demo' AND enabled;
CREATE INDEX ON peer.rule (activity_type);
ANALYZE peer.rule;
-- The hand-written window below is the demo model's 7 days, as a DBA would write it.
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM peer.rule WHERE within IS NOT NULL AND within <> interval '7 days') THEN
        RAISE EXCEPTION 'bench/peers.sql: the peers count min_count windows of 7 days only';
    END IF;
END $$;

-- A cooldown: in time order, an occurrence counts when it is at least `cooldown` after the
-- last one that counted.
CREATE FUNCTION peer.cooldown_pass(times timestamptz[], cooldown interval) RETURNS SETOF timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t timestamptz;
    last timestamptz;
BEGIN
    FOREACH t IN ARRAY times LOOP
        IF last IS NULL OR t >= last + cooldown THEN
            last := t;
            RETURN NEXT t;
        END IF;
    END LOOP;
END
$$;

-- Fit: the demo model's fit rules, written out.
CREATE TABLE peer.lead_fit AS
SELECT l.id AS lead_id,
       (CASE WHEN l.title IN ('CEO','CTO','CFO') THEN 15 ELSE 0 END
      + CASE WHEN l.title ~* '^(vp|head)\y' THEN 12 ELSE 0 END
      + CASE WHEN l.title LIKE '%Manager' THEN 5 ELSE 0 END
      + CASE WHEN l.title IN ('Student','Intern') THEN -20 ELSE 0 END
      + CASE WHEN l.industry IN ('software','finance') THEN 8 ELSE 0 END
      + CASE WHEN l.employees BETWEEN 50 AND 5000 THEN 8 ELSE 0 END
      + CASE WHEN l.revenue >= 10000000 THEN 4 ELSE 0 END
      + CASE WHEN l.country IN ('US','DE','GB','NL') THEN 3 ELSE 0 END
      + CASE WHEN lower(split_part(l.email, '@', 2)) IN (SELECT lower(value) FROM leadscore.list_entry
                                                          WHERE list = 'free_email_domains') THEN -10 ELSE 0 END
      + CASE WHEN l.uses_competitor IS NOT NULL THEN 4 ELSE 0 END
      + CASE WHEN ac.employees >= 1000 AND (l.title ~* '^(vp|head)\y' OR l.title IN ('CEO','CTO','CFO'))
             THEN 6 ELSE 0 END
      + coalesce(round(0.001 * ac.employees, 6), 0))::numeric AS fit,
       lower(split_part(l.email, '@', 2)) = 'rivalscore.example' AS fit_dq,
       -- what the one lead-reading activity rule asks of the lead and its account
       coalesce(l.title IN ('CEO','CTO','CFO') AND ac.revenue >= 1000000, false) AS exec_of_1m
  FROM crm.lead l LEFT JOIN crm.account ac ON ac.id = l.account_id;
ALTER TABLE peer.lead_fit ADD PRIMARY KEY (lead_id);

-- Final score and stage from fit and engagement (demo model: clamp 0..100, four stages).
CREATE FUNCTION peer.finish(fit numeric, engagement numeric, dq boolean, OUT score numeric, OUT stage text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT s, CASE WHEN dq THEN 'disqualified'
                   WHEN s >= 70 AND fit >= 15 THEN 'SQL'
                   WHEN s >= 50 AND engagement >= 20 THEN 'MQL'
                   WHEN s >= 25 THEN 'Lead'
                   WHEN s >= 0 THEN 'Subscriber' END
      FROM (SELECT greatest(0, least(100, fit + engagement)) AS s) AS c
$$;

-- Scores as of a time from the raw activity rows of one activity table: peer.<fname>(leads)
-- for some leads (index scans), peer.<fname>_all() for every lead. Generated per table so that
-- each function's SQL is static, as a DBA would write it.
CREATE FUNCTION peer.make_scores(tab regclass, fname text) RETURNS void LANGUAGE plpgsql AS $make$
DECLARE
    body text := $b$
WITH matched AS (
    SELECT a.lead_id, r.id, a.occurred_at AS t,
           -- time patterns: the n-th matching activity ever, and within the 7 days ending at it
           row_number() OVER (PARTITION BY a.lead_id, r.id ORDER BY a.occurred_at) AS nth,
           count(*) OVER (PARTITION BY a.lead_id, r.id ORDER BY a.occurred_at
                          RANGE BETWEEN '7 days' PRECEDING AND CURRENT ROW) AS in_week
      FROM %1$s a
      JOIN peer.rule r ON r.activity_type = a.type
     WHERE %2$s
       AND a.occurred_at <= as_of
       AND (r.attribute IS NULL OR (r.op = '=' AND a.url = ANY (r.value)) OR (r.op = 'like' AND a.url LIKE r.value[1]))
       -- the one rule that reads the lead and its account: one key lookup per matching row (a
       -- scalar subquery, never a hashed EXISTS rebuilt at every call)
       AND (r.name <> 'webinar by a C-level of a 1M+ company'
            OR (SELECT f.exec_of_1m FROM peer.lead_fit f WHERE f.lead_id = a.lead_id))
), passed AS (
    SELECT m.lead_id, m.id, m.t FROM matched m JOIN peer.rule r ON r.id = m.id
     WHERE r.quiet_for IS NULL AND r.cooldown IS NULL
       AND (r.min_count IS NULL OR CASE WHEN r.within IS NULL THEN m.nth ELSE m.in_week END >= r.min_count)
    UNION ALL
    SELECT c.lead_id, c.id, c.t
      FROM (SELECT m.lead_id, m.id, array_agg(m.t ORDER BY m.t) AS times, max(r.cooldown) AS cooldown
              FROM matched m JOIN peer.rule r ON r.id = m.id
             WHERE r.cooldown IS NOT NULL
               AND (r.min_count IS NULL OR CASE WHEN r.within IS NULL THEN m.nth ELSE m.in_week END >= r.min_count)
             GROUP BY m.lead_id, m.id) g
     CROSS JOIN LATERAL (SELECT g.lead_id, g.id, p AS t FROM peer.cooldown_pass(g.times, g.cooldown) p) c
), occ AS (
    SELECT p.lead_id, r.id, r.points, r.max_points, r.half_life, r.disqualify, p.t,
           CASE WHEN r.once THEN 1 ELSE r.max_count END AS cap,
           row_number() OVER (PARTITION BY p.lead_id, r.id ORDER BY p.t DESC) AS rn
      FROM passed p JOIN peer.rule r ON r.id = p.id
     WHERE r.expires_after IS NULL OR as_of < p.t + r.expires_after
), per_rule AS (
    SELECT o.lead_id, max(o.max_points) AS mp, bool_or(o.disqualify) AS dq,
           sum(CASE WHEN o.half_life IS NULL THEN o.points
                    ELSE round((o.points * power(0.5::float8, extract(epoch FROM as_of - o.t)::float8
                                                        / extract(epoch FROM o.half_life)::float8))::numeric, 6)
               END) AS s
      FROM occ o WHERE o.cap IS NULL OR o.rn <= o.cap
     GROUP BY o.lead_id, o.id
    UNION ALL
    -- gone quiet: the rule's points while the latest matching activity is quiet_for old
    SELECT m.lead_id, NULL, bool_or(r.disqualify), max(r.points)
      FROM matched m JOIN peer.rule r ON r.id = m.id
     WHERE r.quiet_for IS NOT NULL
     GROUP BY m.lead_id, m.id
    HAVING as_of >= max(m.t) + max(r.quiet_for)
), eng AS (
    SELECT p.lead_id, sum(CASE WHEN p.mp IS NULL THEN p.s ELSE greatest(-p.mp, least(p.mp, p.s)) END) AS e,
           bool_or(p.dq) AS dq
      FROM per_rule p GROUP BY p.lead_id
)
SELECT f.lead_id, x.score, x.stage, f.fit, coalesce(e.e, 0)
  FROM peer.lead_fit f
  LEFT JOIN eng e ON e.lead_id = f.lead_id
  CROSS JOIN LATERAL peer.finish(f.fit, coalesce(e.e, 0), f.fit_dq OR coalesce(e.dq, false)) AS x
 WHERE %3$s
$b$;
BEGIN
    EXECUTE format($f$CREATE FUNCTION peer.%I(leads bigint[], as_of timestamptz)
        RETURNS TABLE (lead_id bigint, score numeric, stage text, fit numeric, engagement numeric)
        LANGUAGE sql STABLE AS %L$f$, fname,
        format(body, tab, 'a.lead_id = ANY (leads)', 'f.lead_id = ANY (leads)'));
    EXECUTE format($f$CREATE FUNCTION peer.%I(as_of timestamptz)
        RETURNS TABLE (lead_id bigint, score numeric, stage text, fit numeric, engagement numeric)
        LANGUAGE sql STABLE AS %L$f$, fname || '_all',
        format(body, tab, 'true', 'true'));
END
$make$;

-- Each peer's table is the tracked table without the tracking: same columns, defaults and
-- indexes (primary key and lead index), so every ratio measures the scoring alone.
-- (e) peer.act_noop, the floor of the design, gets a statement trigger with a transition table
-- that does nothing: what any AFTER ... REFERENCING NEW TABLE trigger costs before it computes.
-- bench/run.sh copies the CRM's activities into all of them (two sessions at a time), then runs
-- bench/peer_triggers.sql.
-- Built as demo/generate.sql builds crm.activity: the primary key while the rows go in, the
-- lead index after them (bench/run.sh checks that the indexes match).
CREATE TABLE peer.act_plain (LIKE crm.activity INCLUDING DEFAULTS, PRIMARY KEY (id));
CREATE TABLE peer.act_row (LIKE crm.activity INCLUDING DEFAULTS, PRIMARY KEY (id));
CREATE TABLE peer.act_stmt (LIKE crm.activity INCLUDING DEFAULTS, PRIMARY KEY (id));
CREATE TABLE peer.act_noop (LIKE crm.activity INCLUDING DEFAULTS, PRIMARY KEY (id));
-- (f) peer.act_upd: a statement trigger doing only one grouped UPDATE of small per-lead rows.
CREATE TABLE peer.act_upd (LIKE crm.activity INCLUDING DEFAULTS, PRIMARY KEY (id));
-- (g) the issue's reference peers, which only add a per-type point value to a score row (no
-- caps, expiry, fit or stages): a PL/pgSQL row trigger and a statement trigger.
CREATE TABLE peer.act_simple_row (LIKE crm.activity INCLUDING DEFAULTS, PRIMARY KEY (id));
CREATE TABLE peer.act_simple_stmt (LIKE crm.activity INCLUDING DEFAULTS, PRIMARY KEY (id));

SELECT peer.make_scores('crm.activity', 'scores') \gset
SELECT peer.make_scores('peer.act_row', 'scores_row') \gset
SELECT peer.make_scores('peer.act_stmt', 'scores_stmt') \gset

