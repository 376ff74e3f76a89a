-- Seeded randomized exactness.
--
-- 300 leads, 70 batches of random operations: multi-row inserts of activities of random
-- types with random times (up to 120 days back and 10 days into the future) and random
-- amounts (NULL sometimes), updates of type / time / lead / attribute / amount, deletes, two
-- truncates, activity-rule edits (points, once, max_count, max_points, expires_after,
-- half_life, min_count / within, cooldown, quiet_for, enabled, multiply_by), fit-rule edits
-- (multiply_by on a lead or related column included), lead inserts / updates / deletes
-- (the columns conditions read and the related-record key included), and refresh(model, t)
-- at random increasing times.
-- Richer rules: a relation "account" (rx.leads.account_id -> rx.account.id, switched now
-- and then to alt_account_id); condition rows generated at random (groups; activity
-- columns, lead.column and account.column on activity rules; lead and account columns on
-- fit rules) and edited at random (inserted, re-pointed, regrouped, deleted, a lead-side test of
-- a one-group rule changed); account rows
-- inserted / upserted / updated (read and unread columns, the key) / deleted / truncated;
-- the model untracked and tracked again half-way.
-- After every batch, every stored score / fit_score / engagement_score / disqualified /
-- stage is compared with a from-scratch recompute as of its scored_at: leadscore.score()
-- for the score, leadscore.explain() sums per family for fit and engagement, the stage
-- rules evaluated in SQL for the stage (stages are not sticky here, so refresh() never
-- legitimately keeps a stage). An oracle independent of the extension's evaluator (each
-- rule's conditions turned into plain SQL over the lead, its account and the activity)
-- recomputes every lead's fit_score, and the points of two uncapped activity rules (one a
-- multiply_by rule) as of scored_at. After every refresh(model, t), every stored score
-- equals the score as of t and refresh() returns how many stored scores changed.
-- Whole-table reads (track(), full rescores, scores_as_of()) run with two parallel workers,
-- the leader scanning beside them in even batches and only merging in odd ones.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SET LOCAL client_min_messages = warning;
SELECT plan(16);

CREATE SCHEMA rx;
CREATE TABLE rx.leads (id int PRIMARY KEY, title text, email text, employees int, country text,
                       account_id int, alt_account_id int, seats numeric);
CREATE TABLE rx.act (id bigserial PRIMARY KEY, lead_id int, type text, url text, occurred_at timestamptz, amount numeric);
CREATE INDEX ON rx.act (lead_id);
ALTER TABLE rx.act SET (parallel_workers = 2);
SET LOCAL max_parallel_workers_per_gather = 2;
-- the related records (accounts 41..50 start missing: dangling references read as NULL)
CREATE TABLE rx.account (id int PRIMARY KEY, name text, revenue numeric, employees int, industry text);

SELECT setseed(0.4242);
INSERT INTO rx.leads
SELECT i,
       (ARRAY['CEO', 'CTO', 'engineer', 'student', 'VP Sales'])[1 + floor(random() * 5)::int],
       'u' || i || (ARRAY['@gmail.com', '@acme.com', '@hotmail.fr', '@rival.io', '@corp.de'])[1 + floor(random() * 5)::int],
       floor(random() * 5000)::int,
       (ARRAY['US', 'DE', 'FR', NULL])[1 + floor(random() * 4)::int],
       CASE WHEN random() < 0.1 THEN NULL ELSE 1 + floor(random() * 50)::int END,
       1 + floor(random() * 50)::int,
       CASE WHEN random() < 0.2 THEN NULL ELSE round((random() * 20)::numeric, 2) END
  FROM generate_series(1, 300) i;
INSERT INTO rx.account
SELECT i, 'acc' || i,
       CASE WHEN random() < 0.15 THEN NULL ELSE round((random() * 5000000)::numeric, 2) END,
       floor(random() * 5000)::int,
       (ARRAY['software', 'retail', 'finance', NULL])[1 + floor(random() * 4)::int]
  FROM generate_series(1, 40) i;

INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('rx', -50, 250);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once, max_count, max_points, expires_after, half_life, disqualify)
VALUES ('rx', 'a', 'a', 10,   false, NULL, NULL, NULL,      NULL,      false),
       ('rx', 'b', 'b', 3,    false, 3,    NULL, '10 days', NULL,      false),
       ('rx', 'c', 'c', 7.5,  true,  NULL, NULL, NULL,      '5 days',  false),
       ('rx', 'd', 'd', -4,   false, NULL, 10,   NULL,      NULL,      false),
       ('rx', 'e', 'e', 2.25, false, 2,    NULL, NULL,      '2 days',  false),
       ('rx', 'g', 'g', 1,    false, NULL, 6,    '3 days',  NULL,      false),
       ('rx', 'q', 'q', 0,    false, NULL, NULL, '20 days', NULL,      true);
INSERT INTO leadscore.activity_rule (model, name, activity_type, attribute, op, value, points)
VALUES ('rx', 'f', 'f', 'url', 'like', '{%pricing%}', 15);
-- Time patterns: the 2nd of 5 days, at most one per 4 days (of 3), and a gone-quiet rule on 'a'.
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, min_count, within, cooldown, max_count)
VALUES ('rx', 'h', 'h', 6, 2, '5 days', NULL, NULL),
       ('rx', 'k', 'k', 3, NULL, NULL, '4 days', 3);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, quiet_for)
VALUES ('rx', 'w', 'a', -7, '12 days');
INSERT INTO leadscore.list_entry (list, value) VALUES ('rx_competitors', 'rival.io');
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points, disqualify)
VALUES ('rx', 'ceo',     'title',     'in',             '{CEO,CTO}',            20, false),
       ('rx', 'big',     'employees', '>',              '{1000}',               10, false),
       ('rx', 'free',    'email',     'domain in list', '{free_email_domains}', -5, false),
       ('rx', 'target',  'country',   'in',             '{US,DE}',              8,  false),
       ('rx', 'nocty',   'country',   'is null',        NULL,                   -3, false),
       ('rx', 'rival',   'email',     'domain in list', '{rx_competitors}',     0,  true);
INSERT INTO leadscore.stage (model, name, min_score, min_fit, min_engagement, sticky)
VALUES ('rx', 'engaged', NULL, NULL, 1,    false),
       ('rx', 'low',     0,    NULL, NULL, false),
       ('rx', 'mid',     30,   NULL, 5,    false),
       ('rx', 'hi',      45,   10,   NULL, false);

-- Valued and conditioned rules (new activity types 'm', 'n', 'p'); the fit rules on the
-- account come once the relation exists (a relation needs the tracked leads table).
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, multiply_by, max_count, max_points, expires_after, half_life)
VALUES ('rx', 'm', 'm', 0.25,  'amount', 3,    NULL, '30 days', NULL),   -- capped, expiring, valued
       ('rx', 'n', 'n', 0.125, 'amount', NULL, NULL, NULL,      NULL),   -- plain valued (oracle below)
       ('rx', 'p', 'p', 4,     NULL,     NULL, NULL, NULL,      NULL);   -- plain conditioned (oracle below)
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points, multiply_by)
VALUES ('rx', 'permul', NULL, NULL, NULL, 1.5, 'seats'),   -- every lead: points x seats
       ('rx', 'tgt',    NULL, NULL, NULL, 15,  NULL);      -- condition rows decide

SELECT is(leadscore.track('rx', 'rx.act', 'lead_id', 'type', 'occurred_at', 'rx.leads', 'id'), 300::bigint,
          'track() scores the 300 leads');

-- A second model on the same activity table, without a leads table: engagement only,
-- month-based expiry and decay, a regular-expression attribute rule, activity-column
-- condition groups and a valued rule.
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('rx2', NULL, 80);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once, max_count, max_points, expires_after, half_life)
VALUES ('rx2', 'a', 'a', 4,  false, 2,    NULL, '1 mon', NULL),
       ('rx2', 'b', 'b', 1,  false, NULL, 5,    NULL,    '1 mon'),
       ('rx2', 'x', 'x', -2, false, NULL, NULL, NULL,    NULL);
INSERT INTO leadscore.activity_rule (model, name, activity_type, attribute, op, value, points)
VALUES ('rx2', 'pricing', 'f', 'url', '~', '{^/pri.*g$}', 9);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, multiply_by, max_count)
VALUES ('rx2', 'mm', 'm', 0.5, 'amount', 2);
INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value)
SELECT id, g, attr, o, v::text[] FROM leadscore.activity_rule,
       (VALUES (1, 'amount', 'is null', NULL), (2, 'url', '=', '{/pricing}'), (2, 'amount', '>', '{20}')) c(g, attr, o, v)
 WHERE model = 'rx2' AND name = 'a';
INSERT INTO leadscore.stage (model, name, min_score, min_fit, min_engagement, sticky)
VALUES ('rx2', 'warm', 5, NULL, NULL, false), ('rx2', 'hot', 15, NULL, NULL, false);
SELECT cmp_ok(leadscore.track('rx2', 'rx.act', 'lead_id', 'type', 'occurred_at'), '=', 0::bigint,
              'track() of the second model (no activities yet)');

CREATE FUNCTION rx.rnd(lo int, hi int) RETURNS int LANGUAGE sql AS $$ SELECT lo + floor(random() * (hi - lo + 1))::int $$;
CREATE FUNCTION rx.rtime() RETURNS timestamptz LANGUAGE sql AS $$ SELECT now() + (random() * 130 - 120) * interval '1 day' $$;
CREATE FUNCTION rx.rtype() RETURNS text LANGUAGE sql AS $$
    SELECT (ARRAY['a', 'b', 'b', 'c', 'd', 'e', 'e', 'f', 'g', 'g', 'x', 'q', 'h', 'h', 'k', 'k', 'm', 'm', 'n', 'n', 'p', 'p'])[1 + floor(random() * 22)::int] $$;
-- an amount: NULL a quarter of the time (not an occurrence of a valued rule), up to 6 decimals
CREATE FUNCTION rx.ramount() RETURNS numeric LANGUAGE sql AS $$
    SELECT CASE WHEN random() < 0.25 THEN NULL ELSE round((random() * 120 - 10)::numeric, floor(random() * 7)::int) END $$;
-- n of the ids at random, whatever the physical order of the rows they came from (rule and
-- condition tables hold other tests' dead rows, so ORDER BY random() over them would not replay)
CREATE FUNCTION rx.pick(ids bigint[], n int) RETURNS SETOF bigint LANGUAGE sql AS $$
    SELECT id FROM (SELECT id FROM unnest(ids) id ORDER BY id) s ORDER BY random() LIMIT n $$;
CREATE FUNCTION rx.pick1(ids bigint[]) RETURNS bigint LANGUAGE sql AS $$ SELECT rx.pick(ids, 1) $$;
CREATE FUNCTION rx.rurl() RETURNS text LANGUAGE sql AS $$
    SELECT (ARRAY['/pricing', '/pricing', '/blog', '/blog', '/docs'])[1 + floor(random() * 5)::int] $$;

-- A random condition (attribute, op, value) that validation accepts. fam 'activity': an
-- activity column, lead.column or account.column; fam 'fit': a lead column or account.column.
CREATE FUNCTION rx.rcond(fam text, OUT attribute text, OUT op text, OUT value text[]) LANGUAGE plpgsql AS $$
DECLARE
    src int := CASE WHEN fam = 'activity' THEN rx.rnd(1, 3) ELSE rx.rnd(2, 3) END;
    lp text := CASE WHEN fam = 'activity' THEN 'lead.' ELSE '' END;
    k int;
BEGIN
    IF src = 1 THEN
        CASE rx.rnd(1, 6)
        WHEN 1 THEN attribute := 'url'; op := '='; value := '{/pricing}';
        WHEN 2 THEN attribute := 'url'; op := (ARRAY['like', 'ilike'])[rx.rnd(1, 2)]; value := ARRAY[(ARRAY['%PRI%', '%blog%', '/d%'])[rx.rnd(1, 3)]];
        WHEN 3 THEN attribute := 'url'; op := (ARRAY['in', 'not in'])[rx.rnd(1, 2)]; value := '{/pricing,/docs}';
        WHEN 4 THEN attribute := 'amount'; op := (ARRAY['>', '<=', '<>'])[rx.rnd(1, 3)]; value := ARRAY[rx.rnd(0, 80)::text];
        WHEN 5 THEN attribute := 'amount'; op := 'between'; k := rx.rnd(-10, 60); value := ARRAY[k::text, (k + rx.rnd(0, 50))::text];
        ELSE attribute := 'amount'; op := (ARRAY['is null', 'is not null'])[rx.rnd(1, 2)]; value := NULL;
        END CASE;
    ELSIF src = 2 THEN
        CASE rx.rnd(1, 8)
        WHEN 1 THEN attribute := lp || 'title'; op := (ARRAY['in', 'not in'])[rx.rnd(1, 2)];
                    value := (ARRAY['{CEO,CTO}', '{engineer,student}', '{"VP Sales",CEO}'])[rx.rnd(1, 3)]::text[];
        WHEN 2 THEN attribute := lp || 'title'; op := (ARRAY['~', '~*', 'ilike'])[rx.rnd(1, 3)];
                    value := ARRAY[CASE op WHEN 'ilike' THEN 'vp%' ELSE (ARRAY['^C', '^(ceo|cto)$', 's'])[rx.rnd(1, 3)] END];
        WHEN 3 THEN attribute := lp || 'employees'; op := (ARRAY['>=', '<', '='])[rx.rnd(1, 3)]; value := ARRAY[rx.rnd(0, 4500)::text];
        WHEN 4 THEN attribute := lp || 'employees'; op := 'between'; k := rx.rnd(0, 4000); value := ARRAY[k::text, (k + rx.rnd(0, 2000))::text];
        WHEN 5 THEN attribute := lp || 'country'; op := (ARRAY['=', '<>', 'is null', 'not in'])[rx.rnd(1, 4)];
                    value := CASE op WHEN 'is null' THEN NULL WHEN 'not in' THEN '{US,DE}'::text[] ELSE ARRAY[(ARRAY['US', 'DE', 'FR'])[rx.rnd(1, 3)]] END;
        WHEN 6 THEN attribute := lp || 'email'; op := 'domain in list'; value := ARRAY[(ARRAY['free_email_domains', 'rx_competitors'])[rx.rnd(1, 2)]];
        WHEN 7 THEN attribute := lp || 'seats'; op := (ARRAY['>', '<=', 'is null', 'is not null'])[rx.rnd(1, 4)];
                    value := CASE WHEN op LIKE 'is%' THEN NULL ELSE ARRAY[round(rx.rnd(0, 150) / 10.0, 1)::text] END;
        ELSE attribute := lp || 'account_id'; op := (ARRAY['<=', 'is null'])[rx.rnd(1, 2)];
             value := CASE op WHEN 'is null' THEN NULL ELSE ARRAY[rx.rnd(5, 45)::text] END;
        END CASE;
    ELSE
        CASE rx.rnd(1, 6)
        WHEN 1 THEN attribute := 'account.revenue'; op := (ARRAY['>=', '<'])[rx.rnd(1, 2)]; value := ARRAY[(rx.rnd(0, 50) * 100000)::text];
        WHEN 2 THEN attribute := 'account.revenue'; op := (ARRAY['is null', 'is not null'])[rx.rnd(1, 2)]; value := NULL;
        WHEN 3 THEN attribute := 'account.employees'; op := (ARRAY['>', '<=', 'between'])[rx.rnd(1, 3)]; k := rx.rnd(0, 3000);
                    value := CASE op WHEN 'between' THEN ARRAY[k::text, (k + rx.rnd(0, 3000))::text] ELSE ARRAY[k::text] END;
        WHEN 4 THEN attribute := 'account.industry'; op := (ARRAY['in', '=', '<>', 'is null'])[rx.rnd(1, 4)];
                    value := CASE op WHEN 'in' THEN '{software,finance}'::text[] WHEN 'is null' THEN NULL
                                     ELSE ARRAY[(ARRAY['software', 'retail', 'finance'])[rx.rnd(1, 3)]] END;
        WHEN 5 THEN attribute := 'account.name'; op := (ARRAY['like', '~'])[rx.rnd(1, 2)];
                    value := CASE op WHEN 'like' THEN '{acc1%}'::text[] ELSE '{[02468]$}'::text[] END;
        ELSE attribute := 'account.id'; op := '>'; value := ARRAY[rx.rnd(1, 40)::text];
        END CASE;
    END IF;
END
$$;

-- Adds one to three groups of one or two random conditions to a rule; each group is one
-- multi-row INSERT (group numbers may repeat, which merges groups).
CREATE TABLE rx.pending_cond (grp int, attribute text, op text, value text[]);
CREATE FUNCTION rx.add_conditions(fam text, rid bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE g int; c int; gn int;
BEGIN
    IF rid IS NULL THEN RETURN; END IF;
    FOR g IN 1..rx.rnd(1, 3) LOOP
        gn := (ARRAY[1, 2, 3, 0, -4, 100])[rx.rnd(1, 6)];
        FOR c IN 1..rx.rnd(1, 2) LOOP
            INSERT INTO rx.pending_cond SELECT gn, r.* FROM rx.rcond(fam) r;
        END LOOP;
        IF fam = 'activity' THEN
            INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value)
            SELECT rid, p.grp, p.attribute, p.op, p.value FROM rx.pending_cond p;
        ELSE
            INSERT INTO leadscore.fit_condition (rule_id, grp, attribute, op, value)
            SELECT rid, p.grp, p.attribute, p.op, p.value FROM rx.pending_cond p;
        END IF;
        DELETE FROM rx.pending_cond;
    END LOOP;
END
$$;

-- The relation, then random condition rows: on about 40% of the rules, always on 'p' and 'tgt'.
INSERT INTO leadscore.relation (model, name, lead_column, target, target_key) VALUES ('rx', 'account', 'account_id', 'rx.account', 'id');
-- fit rules on the account (an inline relation.column condition, a relation multiplier)
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points, multiply_by)
VALUES ('rx', 'perrev', 'account.industry', 'is not null', NULL,         0.000002, 'account.revenue'),
       ('rx', 'sw',     'account.industry', '=',           '{software}', 6,        NULL);
DO $$
DECLARE r record;
BEGIN
    PERFORM setseed(0.5151);
    FOR r IN SELECT id, name FROM leadscore.activity_rule WHERE model = 'rx' ORDER BY id LOOP
        IF r.name = 'p' OR random() < 0.4 THEN PERFORM rx.add_conditions('activity', r.id); END IF;
    END LOOP;
    FOR r IN SELECT id, name FROM leadscore.fit_rule WHERE model = 'rx' ORDER BY id LOOP
        IF r.name = 'tgt' OR random() < 0.4 THEN PERFORM rx.add_conditions('fit', r.id); END IF;
    END LOOP;
END $$;

-- One row per mismatching lead.
CREATE TABLE rx.mismatch (batch int, what text, lead_id text, stored text, expected text);
-- explain() of every stored lead of the model checked last, as of its scored_at.
CREATE TABLE rx.ex (model text, lead_id text, rule_id bigint, family text, points numeric, disqualifies boolean);
CREATE INDEX ON rx.ex (lead_id);

-- The oracle: a condition as a plain SQL boolean over the aliases a (rx.act), l (rx.leads)
-- and acc (the lead's rx.account row); operands are literals of the column's type.
CREATE FUNCTION rx.cond_sql(fam text, attr text, op text, val text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE alias text; tbl regclass; col text; typ text; x text; lits text;
BEGIN
    IF attr LIKE 'account.%' THEN alias := 'acc'; tbl := 'rx.account'; col := substr(attr, 9);
    ELSIF attr LIKE 'lead.%' THEN alias := 'l'; tbl := 'rx.leads'; col := substr(attr, 6);
    ELSIF fam = 'fit' THEN alias := 'l'; tbl := 'rx.leads'; col := attr;
    ELSE alias := 'a'; tbl := 'rx.act'; col := attr;
    END IF;
    SELECT format_type(atttypid, atttypmod) INTO STRICT typ FROM pg_attribute WHERE attrelid = tbl AND attname = col;
    x := format('%s.%I', alias, col);
    SELECT string_agg(format('%L::%s', v, typ), ', ') INTO lits FROM unnest(val) v;
    RETURN CASE lower(op)
        WHEN 'is null' THEN format('(%s IS NULL)', x)
        WHEN 'is not null' THEN format('(%s IS NOT NULL)', x)
        WHEN 'between' THEN format('coalesce(%s BETWEEN %L::%s AND %L::%s, false)', x, val[1], typ, val[2], typ)
        WHEN 'in' THEN format('coalesce(%s IN (%s), false)', x, lits)
        WHEN 'not in' THEN format('coalesce(%s NOT IN (%s), false)', x, lits)
        WHEN 'domain in list' THEN format('coalesce(strpos(%1$s, ''@'') > 0 AND lower(split_part(%1$s, ''@'', -1)) IN '
                                          '(SELECT lower(value) FROM leadscore.list_entry WHERE list = %2$L), false)', x, val[1])
        ELSE format('coalesce(%s %s %L::%s, false)', x, op, val[1], typ)
    END;
END
$$;
-- A rule's whole condition: its inline condition AND (any group whose conditions all hold).
CREATE FUNCTION rx.rule_sql(fam text, rid bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r record; expr text; groups text;
BEGIN
    IF fam = 'fit' THEN
        SELECT attribute, op, value INTO r FROM leadscore.fit_rule WHERE id = rid;
        SELECT string_agg('(' || g || ')', ' OR ') INTO groups FROM (
            SELECT string_agg(rx.cond_sql(fam, attribute, op, value), ' AND ') g FROM leadscore.fit_condition WHERE rule_id = rid GROUP BY grp) s;
    ELSE
        SELECT attribute, op, value INTO r FROM leadscore.activity_rule WHERE id = rid;
        SELECT string_agg('(' || g || ')', ' OR ') INTO groups FROM (
            SELECT string_agg(rx.cond_sql(fam, attribute, op, value), ' AND ') g FROM leadscore.activity_condition WHERE rule_id = rid GROUP BY grp) s;
    END IF;
    expr := CASE WHEN r.attribute IS NULL THEN 'true' ELSE rx.cond_sql(fam, r.attribute, r.op, r.value) END;
    RETURN expr || coalesce(' AND (' || groups || ')', '');
END
$$;
-- Each lead's fit_score, and the points of the uncapped rules 'p' and 'n' as of scored_at,
-- recomputed by the oracle; mismatches recorded as 'oracle'.
CREATE FUNCTION rx.oracle(b int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE r record; lc name; mul text;
BEGIN
    SELECT lead_column INTO STRICT lc FROM leadscore.relation WHERE model = 'rx' AND name = 'account';
    CREATE TEMP TABLE oracle_fit (lead_id int, points numeric) ON COMMIT DROP;
    FOR r IN SELECT * FROM leadscore.fit_rule WHERE model = 'rx' AND enabled LOOP
        mul := CASE WHEN r.multiply_by LIKE 'account.%' THEN format('acc.%I', substr(r.multiply_by, 9))
                    WHEN r.multiply_by IS NOT NULL THEN format('l.%I', r.multiply_by) END;
        EXECUTE format('INSERT INTO oracle_fit SELECT l.id, %s FROM rx.leads l LEFT JOIN rx.account acc ON acc.id = l.%I WHERE %s %s',
                       CASE WHEN mul IS NULL THEN format('%s::numeric', r.points) ELSE format('round(%s::numeric * %s, 6)', r.points, mul) END,
                       lc, rx.rule_sql('fit', r.id), CASE WHEN mul IS NULL THEN '' ELSE format('AND %s IS NOT NULL', mul) END);
    END LOOP;
    INSERT INTO rx.mismatch
    SELECT b, 'oracle', ls.lead_id, ls.fit_score::text, coalesce(o.fit, 0)::text
      FROM leadscore.lead_score ls LEFT JOIN (SELECT lead_id, sum(points) AS fit FROM oracle_fit GROUP BY lead_id) o ON o.lead_id::text = ls.lead_id
     WHERE ls.model = 'rx' AND ls.fit_score IS DISTINCT FROM coalesce(o.fit, 0);
    DROP TABLE oracle_fit;
    FOR r IN SELECT * FROM leadscore.activity_rule WHERE model = 'rx' AND name IN ('p', 'n') AND enabled LOOP
        EXECUTE format($q$
            INSERT INTO rx.mismatch
            SELECT %1$s, 'oracle', ls.lead_id, 'rule ' || %2$L || ': ' || coalesce(x.points, 0), coalesce(o.points, 0)::text
              FROM leadscore.lead_score ls
              LEFT JOIN (SELECT lead_id, sum(points) AS points FROM rx.ex WHERE model = 'rx' AND family = 'engagement' AND rule_id = %3$s GROUP BY lead_id) x ON x.lead_id = ls.lead_id
              LEFT JOIN (SELECT l.id, sum(%4$s) AS points
                           FROM rx.leads l LEFT JOIN rx.account acc ON acc.id = l.%5$I
                           JOIN leadscore.lead_score s ON s.model = 'rx' AND s.lead_id = l.id::text
                           JOIN rx.act a ON a.lead_id = l.id AND a.type = %6$L AND a.occurred_at <= s.scored_at
                          WHERE %7$s %8$s GROUP BY l.id) o ON o.id::text = ls.lead_id
             WHERE ls.model = 'rx' AND coalesce(x.points, 0) <> coalesce(o.points, 0) $q$,
            b, r.name, r.id,
            CASE WHEN r.multiply_by IS NULL THEN format('%s::numeric', r.points) ELSE format('round(%s::numeric * a.%I, 6)', r.points, r.multiply_by) END,
            lc, r.activity_type, rx.rule_sql('activity', r.id),
            CASE WHEN r.multiply_by IS NULL THEN '' ELSE format('AND a.%I IS NOT NULL', r.multiply_by) END);
    END LOOP;
END
$$;

-- Compare every stored row with a from-scratch recompute as of its scored_at.
CREATE FUNCTION rx.check(b int, m text DEFAULT 'rx') RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    TRUNCATE rx.ex;   -- (a DELETE would leave every earlier check's rows to scan: they stay until the test ends)
    INSERT INTO rx.ex
    SELECT m, ls.lead_id, e.rule_id, e.family, e.points, e.disqualifies
      FROM leadscore.lead_score ls CROSS JOIN LATERAL leadscore.explain(m, ls.lead_id::int, ls.scored_at) e
     WHERE ls.model = m;
    INSERT INTO rx.mismatch
    SELECT b, 'state ' || m, ls.lead_id,
           format('%s/%s/%s/%s/%s', ls.score, ls.fit_score, ls.engagement_score, ls.disqualified, ls.stage),
           format('%s/%s/%s/%s/%s', s.score, x.fit, x.eng, x.dq, exp_stage.name)
      FROM leadscore.lead_score ls
      LEFT JOIN (
           SELECT e.lead_id,
                  sum(e.points) FILTER (WHERE e.family = 'fit') AS fit,
                  sum(e.points) FILTER (WHERE e.family = 'engagement') AS eng,
                  bool_or(e.disqualifies) AS dq
             FROM rx.ex e GROUP BY e.lead_id) xa ON xa.lead_id = ls.lead_id
     CROSS JOIN LATERAL (SELECT coalesce(xa.fit, 0) AS fit, coalesce(xa.eng, 0) AS eng, coalesce(xa.dq, false) AS dq) x
     CROSS JOIN LATERAL (SELECT leadscore.score(m, ls.lead_id::int, ls.scored_at) AS score OFFSET 0) s   -- (once per lead)
     CROSS JOIN LATERAL (
           SELECT CASE WHEN x.dq THEN 'disqualified' ELSE (
                      SELECT st.name FROM leadscore.stage st
                       WHERE st.model = m
                         AND (st.min_score IS NULL OR s.score >= st.min_score)
                         AND (st.min_fit IS NULL OR x.fit >= st.min_fit)
                         AND (st.min_engagement IS NULL OR x.eng >= st.min_engagement)
                       ORDER BY st.min_score DESC NULLS LAST, st.name
                       LIMIT 1) END AS name) exp_stage
     CROSS JOIN (SELECT score_min, score_max FROM leadscore.model WHERE name = m) md
     WHERE ls.model = m
       AND (ls.score IS DISTINCT FROM s.score
            OR ls.score IS DISTINCT FROM CASE WHEN x.fit + x.eng > md.score_max THEN md.score_max
                                              WHEN x.fit + x.eng < md.score_min THEN md.score_min
                                              ELSE x.fit + x.eng END
            OR ls.fit_score IS DISTINCT FROM x.fit
            OR ls.engagement_score IS DISTINCT FROM x.eng
            OR ls.disqualified IS DISTINCT FROM x.dq
            OR ls.stage IS DISTINCT FROM exp_stage.name);
    -- exactly the leads of the leads table have state (model rx, which has a leads table)
    INSERT INTO rx.mismatch
    SELECT b, 'membership', coalesce(l.id::text, ls.lead_id), (ls.lead_id IS NOT NULL)::text, (l.id IS NOT NULL)::text
      FROM rx.leads l FULL JOIN (SELECT lead_id FROM leadscore.lead_score WHERE model = 'rx') ls ON ls.lead_id = l.id::text
     WHERE m = 'rx' AND (l.id IS NULL OR ls.lead_id IS NULL);
    IF m = 'rx' THEN
        PERFORM rx.oracle(b);
        -- how often conditions admitted and rejected, and multipliers weighed (the run is not vacuous)
        INSERT INTO rx.stats
        SELECT b, 'p admitted', count(DISTINCT e.lead_id)
          FROM rx.ex e JOIN leadscore.activity_rule r ON r.id = e.rule_id AND r.model = 'rx' AND r.name = 'p'
         WHERE e.model = 'rx' AND e.family = 'engagement'
        UNION ALL
        SELECT b, 'p rejected', count(DISTINCT a.lead_id)
          FROM rx.act a JOIN leadscore.lead_score ls ON ls.model = 'rx' AND ls.lead_id = a.lead_id::text
         WHERE a.type = 'p' AND a.occurred_at <= ls.scored_at
           AND NOT EXISTS (SELECT 1 FROM rx.ex e JOIN leadscore.activity_rule r ON r.id = e.rule_id AND r.model = 'rx' AND r.name = 'p'
                            WHERE e.model = 'rx' AND e.family = 'engagement' AND e.lead_id = a.lead_id::text)
        UNION ALL
        SELECT b, 'valued engagement', count(*)
          FROM rx.ex e JOIN leadscore.activity_rule r ON r.id = e.rule_id AND r.model = 'rx'
         WHERE e.model = 'rx' AND e.family = 'engagement' AND r.multiply_by IS NOT NULL AND r.points <> 0 AND e.points % r.points <> 0
        UNION ALL
        SELECT b, 'valued fit', count(*)
          FROM rx.ex e JOIN leadscore.fit_rule r ON r.id = e.rule_id AND r.model = 'rx'
         WHERE e.model = 'rx' AND e.family = 'fit' AND r.multiply_by IS NOT NULL AND e.points % r.points <> 0;
    END IF;
    SELECT count(*) INTO n FROM rx.mismatch m WHERE m.batch = b;
    RETURN n;
END
$$;

-- refresh(t): afterwards every stored score is the score as of t, and the return value is
-- the number of stored scores that changed.
CREATE FUNCTION rx.refresh_at(batch int, t timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE returned bigint; changed bigint;
BEGIN
    CREATE TEMP TABLE before_refresh ON COMMIT DROP AS
        SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'rx';
    returned := leadscore.refresh('rx', t);
    SELECT count(*) INTO changed FROM before_refresh b JOIN leadscore.lead_score ls ON ls.model = 'rx' AND ls.lead_id = b.lead_id
     WHERE ls.score IS DISTINCT FROM b.score;
    IF returned <> changed THEN
        INSERT INTO rx.mismatch VALUES (batch, 'refresh count', NULL, returned::text, changed::text);
    END IF;
    INSERT INTO rx.mismatch
    SELECT batch, 'refresh as of t', ls.lead_id, ls.score::text || ' @' || ls.scored_at, s.score::text || ' @' || t
      FROM leadscore.lead_score ls
     CROSS JOIN LATERAL (SELECT leadscore.score('rx', ls.lead_id::int, t) AS score) s
     WHERE ls.model = 'rx' AND ls.score IS DISTINCT FROM s.score;
    INSERT INTO rx.stats VALUES (batch, 'refresh', returned);
    DROP TABLE before_refresh;
END
$$;

CREATE TABLE rx.stats (batch int, what text, n bigint);

DO $$
DECLARE
    i int;
    k int;
    rule text;
    t timestamptz := now();
    n bigint;
    newkey int;
    rid bigint;
    ra text;
    ro text;
    rv text[];
BEGIN
    PERFORM setseed(0.1234);
    INSERT INTO rx.stats VALUES (0, 'check', rx.check(0));
    FOR i IN 1..70 LOOP
        PERFORM set_config('parallel_leader_participation', (i % 2 = 0)::text, true);
        -- multi-row insert; 'q' (disqualifying) kept rare
        INSERT INTO rx.act (lead_id, type, url, occurred_at, amount)
        SELECT rx.rnd(1, 330), CASE WHEN ty = 'q' AND random() < 0.8 THEN 'x' ELSE ty END,
               rx.rurl(), rx.rtime(), rx.ramount()
          FROM (SELECT rx.rtype() AS ty FROM generate_series(1, rx.rnd(20, 80))) g;
        -- updates of type, time, lead, attribute, amount; several at once
        FOR k IN 1..rx.rnd(0, 3) LOOP
            CASE rx.rnd(1, 5)
            WHEN 1 THEN UPDATE rx.act SET type = rx.rtype() WHERE id IN (SELECT id FROM rx.act ORDER BY random() LIMIT rx.rnd(1, 15));
            WHEN 2 THEN UPDATE rx.act SET occurred_at = rx.rtime() WHERE id IN (SELECT id FROM rx.act ORDER BY random() LIMIT rx.rnd(1, 15));
            WHEN 3 THEN UPDATE rx.act SET lead_id = rx.rnd(1, 330) WHERE id IN (SELECT id FROM rx.act ORDER BY random() LIMIT rx.rnd(1, 15));
            WHEN 4 THEN UPDATE rx.act SET url = CASE WHEN url = '/blog' THEN '/pricing' ELSE '/blog' END
                  WHERE id IN (SELECT id FROM rx.act ORDER BY random() LIMIT rx.rnd(1, 15));
            ELSE UPDATE rx.act SET amount = rx.ramount()
                  WHERE id IN (SELECT id FROM rx.act WHERE type IN ('m', 'n', 'p', 'b', 'a') ORDER BY random() LIMIT rx.rnd(1, 15));
            END CASE;
        END LOOP;
        IF random() < 0.5 THEN
            DELETE FROM rx.act WHERE id IN (SELECT id FROM rx.act ORDER BY random() LIMIT rx.rnd(1, 25));
        END IF;
        IF i IN (25, 52) THEN
            TRUNCATE rx.act;
        END IF;
        -- activity-rule edits (time patterns only on rules without multiply_by)
        IF random() < 0.3 THEN
            rule := (ARRAY['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'k'])[rx.rnd(1, 9)];
            CASE rx.rnd(1, 10)
            WHEN 1 THEN UPDATE leadscore.activity_rule SET points = round((random() * 30 - 8)::numeric, 2) WHERE model = 'rx' AND name = rule;
            WHEN 2 THEN UPDATE leadscore.activity_rule SET once = NOT once WHERE model = 'rx' AND name = rule;
            WHEN 3 THEN UPDATE leadscore.activity_rule SET max_count = CASE WHEN random() < 0.3 THEN NULL ELSE rx.rnd(1, 5) END WHERE model = 'rx' AND name = rule;
            WHEN 4 THEN UPDATE leadscore.activity_rule SET max_points = CASE WHEN random() < 0.3 THEN NULL ELSE rx.rnd(2, 40) END WHERE model = 'rx' AND name = rule;
            WHEN 5 THEN UPDATE leadscore.activity_rule SET expires_after = CASE WHEN random() < 0.3 THEN NULL ELSE rx.rnd(1, 60) * interval '1 day' END,
                                                           half_life = NULL WHERE model = 'rx' AND name = rule;
            WHEN 6 THEN UPDATE leadscore.activity_rule SET half_life = CASE WHEN random() < 0.3 THEN NULL ELSE rx.rnd(1, 20) * interval '1 day' + rx.rnd(0, 23) * interval '1 hour' END,
                                                           expires_after = NULL WHERE model = 'rx' AND name = rule;
            WHEN 7 THEN
                k := CASE WHEN random() < 0.3 THEN NULL ELSE rx.rnd(1, 4) END;
                UPDATE leadscore.activity_rule SET min_count = k,
                       within = CASE WHEN k IS NULL OR random() < 0.3 THEN NULL ELSE rx.rnd(1, 15) * interval '1 day' + rx.rnd(0, 23) * interval '1 hour' END
                 WHERE model = 'rx' AND name = rule AND multiply_by IS NULL;
            WHEN 8 THEN UPDATE leadscore.activity_rule SET cooldown = CASE WHEN random() < 0.3 THEN NULL ELSE rx.rnd(1, 20) * interval '1 day' END
                 WHERE model = 'rx' AND name = rule AND multiply_by IS NULL;
            WHEN 9 THEN UPDATE leadscore.activity_rule SET quiet_for = rx.rnd(1, 30) * interval '1 day', points = rx.rnd(-12, 5)
                 WHERE model = 'rx' AND name = 'w';
            ELSE UPDATE leadscore.activity_rule SET enabled = NOT enabled WHERE model = 'rx' AND name = rule;
            END CASE;
        END IF;
        -- multiply_by edits: switched on and off (never with a time pattern), points of the valued rules
        IF random() < 0.15 THEN
            CASE rx.rnd(1, 4)
            WHEN 1 THEN UPDATE leadscore.activity_rule SET multiply_by = CASE WHEN multiply_by IS NULL THEN 'amount' END
                 WHERE model = 'rx' AND name = (SELECT (ARRAY['a', 'b', 'c', 'd', 'e', 'f', 'g', 'm'])[rx.rnd(1, 8)])
                   AND min_count IS NULL AND cooldown IS NULL AND quiet_for IS NULL;
            WHEN 2 THEN UPDATE leadscore.activity_rule SET points = round((random() * 2 - 0.5)::numeric, rx.rnd(0, 6))
                 WHERE model = 'rx' AND name = (SELECT (ARRAY['m', 'n'])[rx.rnd(1, 2)]);
            WHEN 3 THEN
                k := rx.rnd(1, 5);
                UPDATE leadscore.fit_rule SET multiply_by = (ARRAY['seats', 'account.employees', 'account.revenue', 'employees', NULL])[k],
                                              points = (ARRAY[1.5, 0.01, 0.000003, 0.002, 2])[k]
                 WHERE model = 'rx' AND name = 'permul';
            ELSE UPDATE leadscore.fit_rule SET multiply_by = CASE WHEN multiply_by IS NULL THEN 'seats' END
                 WHERE model = 'rx' AND name = (SELECT (ARRAY['ceo', 'target', 'sw', 'tgt'])[rx.rnd(1, 4)]);
            END CASE;
            INSERT INTO rx.stats VALUES (i, 'multiply edit', 1);
        END IF;
        -- condition-row edits: new groups, re-pointed / regrouped conditions, deletions
        IF i <= 9 OR random() < 0.4 THEN
            k := CASE WHEN i <= 9 THEN i ELSE rx.rnd(1, 9) END;   -- each kind at least once
            IF k IN (1, 2, 9) AND (SELECT count(*) FROM leadscore.activity_condition) + (SELECT count(*) FROM leadscore.fit_condition) > 60 THEN
                k := CASE k WHEN 2 THEN 7 ELSE 6 END;
            END IF;
            CASE k
            WHEN 1 THEN PERFORM rx.add_conditions('activity', rx.pick1(ARRAY(SELECT id FROM leadscore.activity_rule WHERE model = 'rx')));
            WHEN 2 THEN PERFORM rx.add_conditions('fit', rx.pick1(ARRAY(SELECT id FROM leadscore.fit_rule WHERE model = 'rx')));
            WHEN 3 THEN
                UPDATE leadscore.activity_condition SET (attribute, op, value) = (SELECT r.attribute, r.op, r.value FROM rx.rcond('activity') r)
                 WHERE id = (SELECT rx.pick1(ARRAY(SELECT c.id FROM leadscore.activity_condition c JOIN leadscore.activity_rule ar ON ar.id = c.rule_id
                                          WHERE ar.model = 'rx')));
            WHEN 4 THEN
                UPDATE leadscore.fit_condition SET (attribute, op, value) = (SELECT r.attribute, r.op, r.value FROM rx.rcond('fit') r)
                 WHERE id = (SELECT rx.pick1(ARRAY(SELECT id FROM leadscore.fit_condition)));
            WHEN 5 THEN
                UPDATE leadscore.activity_condition SET grp = (SELECT rx.rnd(1, 3))
                 WHERE id = ANY (ARRAY(SELECT rx.pick(ARRAY(SELECT c.id FROM leadscore.activity_condition c JOIN leadscore.activity_rule ar ON ar.id = c.rule_id
                                                    WHERE ar.model = 'rx'), rx.rnd(1, 3))));
                UPDATE leadscore.fit_condition SET grp = (SELECT rx.rnd(1, 3)) WHERE id = ANY (ARRAY(SELECT rx.pick(ARRAY(SELECT id FROM leadscore.fit_condition), rx.rnd(1, 3))));
            WHEN 6 THEN
                DELETE FROM leadscore.activity_condition
                 WHERE id = ANY (ARRAY(SELECT rx.pick(ARRAY(SELECT c.id FROM leadscore.activity_condition c JOIN leadscore.activity_rule ar ON ar.id = c.rule_id
                                                    WHERE ar.model = 'rx'), rx.rnd(1, 2))));
            WHEN 7 THEN DELETE FROM leadscore.fit_condition WHERE id = ANY (ARRAY(SELECT rx.pick(ARRAY(SELECT id FROM leadscore.fit_condition), rx.rnd(1, 2))));
            WHEN 8 THEN
                -- a rule loses all its condition rows
                IF random() < 0.5 THEN
                    rid := rx.pick1(ARRAY(SELECT DISTINCT c.rule_id FROM leadscore.activity_condition c JOIN leadscore.activity_rule ar ON ar.id = c.rule_id
                                          WHERE ar.model = 'rx'));
                    DELETE FROM leadscore.activity_condition WHERE rule_id = rid;
                ELSE
                    rid := rx.pick1(ARRAY(SELECT DISTINCT rule_id FROM leadscore.fit_condition));
                    DELETE FROM leadscore.fit_condition WHERE rule_id = rid;
                END IF;
            ELSE
                -- activity rules get new conditions twice as often as fit rules
                PERFORM rx.add_conditions('activity', rx.pick1(ARRAY(SELECT id FROM leadscore.activity_rule WHERE model = 'rx')));
                k := 1;
            END CASE;
            INSERT INTO rx.stats VALUES (i, 'condition edit', k);
        END IF;
        -- a lead-side test of a one-group activity rule changed: the edit reads the leads and the
        -- stored summaries, and the activity rows only of leads whose test now disagrees with them
        IF random() < 0.3 THEN
            rid := rx.pick1(ARRAY(SELECT c.id FROM leadscore.activity_condition c JOIN leadscore.activity_rule ar ON ar.id = c.rule_id
                                   WHERE ar.model = 'rx' AND c.attribute LIKE '%.%'
                                     AND (SELECT count(DISTINCT o.grp) FROM leadscore.activity_condition o WHERE o.rule_id = c.rule_id) = 1));
            IF rid IS NOT NULL THEN
                FOR k IN 1..20 LOOP
                    SELECT r.attribute, r.op, r.value INTO ra, ro, rv FROM rx.rcond('activity') r;
                    EXIT WHEN ra LIKE '%.%';
                END LOOP;
                IF ra LIKE '%.%' THEN
                    UPDATE leadscore.activity_condition SET (attribute, op, value) = (ra, ro, rv) WHERE id = rid;
                    INSERT INTO rx.stats VALUES (i, 'lead-side condition edit', 1);
                END IF;
            END IF;
        END IF;
        -- fit-rule edits
        IF random() < 0.15 THEN
            CASE rx.rnd(1, 4)
            -- (points only, of one or two rules: each lead's stored fit moved by the rules it passes)
            WHEN 1 THEN UPDATE leadscore.fit_rule SET points = rx.rnd(-10, 30) WHERE model = 'rx'
                           AND name IN (SELECT (ARRAY['ceo', 'big', 'free', 'target', 'nocty', 'sw', 'tgt', 'rival'])[rx.rnd(1, 8)] FROM generate_series(1, rx.rnd(1, 2)));
            WHEN 2 THEN UPDATE leadscore.fit_rule SET value = ARRAY[rx.rnd(100, 4000)::text] WHERE model = 'rx' AND name = 'big';
            WHEN 3 THEN UPDATE leadscore.fit_rule SET enabled = NOT enabled WHERE model = 'rx' AND name = (SELECT (ARRAY['ceo', 'big', 'free', 'target', 'nocty', 'rival', 'permul', 'perrev', 'sw', 'tgt'])[rx.rnd(1, 10)]);
            ELSE UPDATE leadscore.fit_rule SET value = (ARRAY['{US,DE}', '{FR}', '{US,FR,DE}'])[rx.rnd(1, 3)]::text[] WHERE model = 'rx' AND name = 'target';
            END CASE;
        END IF;
        -- lead updates, inserts, deletes
        IF random() < 0.4 THEN
            UPDATE rx.leads SET title = (ARRAY['CEO', 'CTO', 'engineer', 'student', 'VP Sales'])[rx.rnd(1, 5)],
                                employees = rx.rnd(0, 5000),
                                country = (ARRAY['US', 'DE', 'FR', NULL])[rx.rnd(1, 4)]
             WHERE id IN (SELECT id FROM rx.leads ORDER BY random() LIMIT rx.rnd(1, 20));
        END IF;
        IF random() < 0.15 THEN
            UPDATE rx.leads SET email = 'v' || id || (ARRAY['@gmail.com', '@acme.com', '@rival.io'])[rx.rnd(1, 3)]
             WHERE id IN (SELECT id FROM rx.leads ORDER BY random() LIMIT rx.rnd(1, 10));
        END IF;
        -- the related-record key (the one in use or the other), the multiplier column
        IF random() < 0.4 THEN
            CASE rx.rnd(1, 3)
            WHEN 1 THEN UPDATE rx.leads SET account_id = CASE WHEN random() < 0.1 THEN NULL ELSE rx.rnd(1, 50) END
                 WHERE id IN (SELECT id FROM rx.leads ORDER BY random() LIMIT rx.rnd(1, 15));
            WHEN 2 THEN UPDATE rx.leads SET alt_account_id = rx.rnd(1, 50)
                 WHERE id IN (SELECT id FROM rx.leads ORDER BY random() LIMIT rx.rnd(1, 15));
            ELSE UPDATE rx.leads SET seats = CASE WHEN random() < 0.2 THEN NULL ELSE round((random() * 20)::numeric, rx.rnd(0, 4)) END
                 WHERE id IN (SELECT id FROM rx.leads ORDER BY random() LIMIT rx.rnd(1, 15));
            END CASE;
            INSERT INTO rx.stats VALUES (i, 'lead relation/seat update', 1);
        END IF;
        IF random() < 0.15 THEN
            DELETE FROM rx.leads WHERE id IN (SELECT id FROM rx.leads ORDER BY random() LIMIT rx.rnd(1, 3));
        END IF;
        IF random() < 0.1 THEN
            -- lead key update, possibly onto a key that already has activities
            newkey := rx.rnd(301, 400);
            UPDATE rx.leads SET id = newkey WHERE id = (SELECT id FROM rx.leads ORDER BY random() LIMIT 1)
               AND NOT EXISTS (SELECT 1 FROM rx.leads WHERE id = newkey);
        END IF;
        -- related rows: inserts / upserts, updates of read and unread columns, key changes, deletes, truncates
        IF i <= 7 OR random() < 0.5 THEN
            k := CASE WHEN i <= 7 THEN i ELSE rx.rnd(1, 7) END;   -- each kind at least once
            CASE k
            WHEN 1 THEN
                INSERT INTO rx.account
                SELECT g, 'acc' || g, round((random() * 5000000)::numeric, 2), rx.rnd(0, 5000), (ARRAY['software', 'retail', 'finance', NULL])[rx.rnd(1, 4)]
                  FROM generate_series(rx.rnd(1, 50), rx.rnd(1, 50)) g
                ON CONFLICT (id) DO NOTHING;
            WHEN 2 THEN
                INSERT INTO rx.account
                SELECT g, 'acc' || g, CASE WHEN random() < 0.2 THEN NULL ELSE round((random() * 5000000)::numeric, 2) END, rx.rnd(0, 5000), 'finance'
                  FROM (SELECT DISTINCT g FROM (SELECT rx.rnd(1, 50) AS g FROM generate_series(1, rx.rnd(1, 3))) s ORDER BY g) x
                ON CONFLICT (id) DO UPDATE SET revenue = excluded.revenue, employees = excluded.employees;
            WHEN 3 THEN
                UPDATE rx.account SET revenue = CASE WHEN random() < 0.15 THEN NULL ELSE round((random() * 5000000)::numeric, 2) END,
                                      employees = rx.rnd(0, 5000)
                 WHERE id IN (SELECT id FROM rx.account ORDER BY random() LIMIT rx.rnd(1, 5));
            WHEN 4 THEN
                UPDATE rx.account SET industry = (ARRAY['software', 'retail', 'finance', NULL])[rx.rnd(1, 4)]
                 WHERE id IN (SELECT id FROM rx.account ORDER BY random() LIMIT rx.rnd(1, 5));
            WHEN 5 THEN
                UPDATE rx.account SET name = 'acc' || rx.rnd(1, 99) WHERE id IN (SELECT id FROM rx.account ORDER BY random() LIMIT rx.rnd(1, 3));
            WHEN 6 THEN
                newkey := rx.rnd(1, 50);
                UPDATE rx.account SET id = newkey WHERE id = (SELECT id FROM rx.account ORDER BY random() LIMIT 1)
                   AND NOT EXISTS (SELECT 1 FROM rx.account WHERE id = newkey);
            ELSE
                DELETE FROM rx.account WHERE id IN (SELECT id FROM rx.account ORDER BY random() LIMIT rx.rnd(1, 3));
            END CASE;
            INSERT INTO rx.stats VALUES (i, 'account op', k);
        END IF;
        IF i IN (33, 61) THEN
            TRUNCATE rx.account;
            IF i = 33 THEN
                INSERT INTO rx.account
                SELECT g, 'acc' || g, round((random() * 5000000)::numeric, 2), rx.rnd(0, 5000), (ARRAY['software', 'retail', 'finance', NULL])[rx.rnd(1, 4)]
                  FROM generate_series(1, 30) g;
            END IF;
        END IF;
        -- the relation reads the other key column now and then
        IF random() < 0.05 THEN
            UPDATE leadscore.relation SET lead_column = CASE lead_column WHEN 'account_id' THEN 'alt_account_id' ELSE 'account_id' END
             WHERE model = 'rx' AND name = 'account';
            INSERT INTO rx.stats VALUES (i, 'relation edit', 1);
        END IF;
        -- attached again half-way: track() scores the leads with the relation and conditions in place
        IF i = 40 THEN
            PERFORM leadscore.untrack('rx');
            n := leadscore.track('rx', 'rx.act', 'lead_id', 'type', 'occurred_at', 'rx.leads', 'id');
            IF n <> (SELECT count(*) FROM rx.leads) THEN
                INSERT INTO rx.mismatch VALUES (i, 'track again', NULL, n::text, (SELECT count(*) FROM rx.leads)::text);
            END IF;
        END IF;
        IF random() < 0.1 THEN
            -- rule inserts and deletes
            IF EXISTS (SELECT 1 FROM leadscore.activity_rule WHERE model = 'rx' AND name = 'x') THEN
                DELETE FROM leadscore.activity_rule WHERE model = 'rx' AND name = 'x';
            ELSE
                INSERT INTO leadscore.activity_rule (model, name, activity_type, points, max_count, expires_after)
                VALUES ('rx', 'x', 'x', rx.rnd(-5, 12), rx.rnd(1, 4), rx.rnd(1, 30) * interval '1 day') RETURNING id INTO rid;
                IF random() < 0.5 THEN PERFORM rx.add_conditions('activity', rid); END IF;
            END IF;
        END IF;
        IF random() < 0.05 THEN
            UPDATE leadscore.activity_rule SET points = rx.rnd(-3, 6) WHERE model = 'rx2' AND name = (SELECT (ARRAY['a', 'b', 'x', 'pricing', 'mm'])[rx.rnd(1, 5)]);
        END IF;
        IF random() < 0.2 THEN
            INSERT INTO rx.leads
            SELECT g, 'CEO', 'n' || g || '@corp.de', rx.rnd(0, 5000), 'US', rx.rnd(1, 50), rx.rnd(1, 50), rx.rnd(0, 9)
              FROM generate_series(rx.rnd(290, 330), rx.rnd(290, 330)) g
            ON CONFLICT (id) DO NOTHING;
        END IF;
        -- stage threshold edit
        IF random() < 0.05 THEN
            UPDATE leadscore.stage SET min_score = rx.rnd(20, 50) WHERE model = 'rx' AND name = 'mid';
        END IF;
        -- model range edit: the clamp moves, and with it some scores and stages
        IF random() < 0.04 THEN
            UPDATE leadscore.model SET score_max = (ARRAY[60, 90, 250, NULL])[rx.rnd(1, 4)],
                                       score_min = (ARRAY[-50, -5, 0, NULL])[rx.rnd(1, 4)]
             WHERE name = 'rx';
            INSERT INTO rx.stats VALUES (i, 'range edit', 1);
        END IF;
        -- refresh at random later times: mostly hours apart, sometimes weeks (gone-quiet rules come due)
        IF i % 4 = 0 THEN
            t := t + CASE WHEN random() < 0.25 THEN rx.rnd(1, 20) * interval '1 day' + rx.rnd(0, 86399) * interval '1 second'
                          ELSE rx.rnd(1, 72) * interval '1 hour' END;
            PERFORM rx.refresh_at(i, t);
            PERFORM leadscore.refresh('rx2', t);
        END IF;
        n := rx.check(i);
        INSERT INTO rx.stats VALUES (i, 'check', n);
        IF i % 2 = 0 THEN
            INSERT INTO rx.stats VALUES (i, 'check rx2', rx.check(i, 'rx2'));
        END IF;
    END LOOP;
END $$;

SELECT is((SELECT count(*) FROM rx.mismatch WHERE what = 'state rx'), 0::bigint,
          'every stored score/fit/engagement/stage equals the recompute as of scored_at, after every batch');
SELECT is((SELECT count(*) FROM rx.mismatch WHERE what = 'state rx2'), 0::bigint,
          'second model on the same table: every stored row equals the recompute, every other batch');
SELECT is((SELECT count(*) FROM rx.mismatch WHERE what = 'membership'), 0::bigint,
          'exactly the leads of the leads table have stored state, after every batch');
SELECT is((SELECT count(*) FROM rx.mismatch WHERE what = 'oracle'), 0::bigint,
          'the SQL oracle of conditions, relation and multiply_by agrees on every fit_score and on the uncapped rules, after every batch');
SELECT is((SELECT count(*) FROM rx.mismatch WHERE what = 'track again'), 0::bigint,
          'track() again with the relation and conditions in place scores every lead');
SELECT is((SELECT count(*) FROM rx.mismatch WHERE what = 'refresh as of t'), 0::bigint,
          'after every refresh(model, t) every stored score equals the score as of t');
SELECT is((SELECT count(*) FROM rx.mismatch WHERE what = 'refresh count'), 0::bigint,
          'refresh() returns how many stored scores changed');
SELECT diag(format('first mismatches: %s', (SELECT string_agg(format('[batch %s %s lead %s: stored %s, expected %s]',
                                                                       batch, what, lead_id, stored, expected), ' ')
                                              FROM (SELECT * FROM rx.mismatch ORDER BY batch, lead_id LIMIT 10) m)))
 WHERE EXISTS (SELECT 1 FROM rx.mismatch);

-- The run exercised what it claims to (guards against a vacuous pass).
SELECT cmp_ok((SELECT count(*) FROM rx.stats WHERE what = 'check'), '=', 71::bigint, 'all 70 batches were checked');
SELECT cmp_ok((SELECT sum(n) FROM rx.stats WHERE what = 'refresh'), '>', 0::numeric, 'refresh() changed some scores');
SELECT ok((SELECT count(DISTINCT stage) FROM leadscore.lead_score WHERE model = 'rx') >= 3
          AND (SELECT count(*) FROM leadscore.lead_score WHERE model = 'rx2') >= 100
          AND (SELECT count(*) FROM leadscore.lead_score WHERE model = 'rx' AND engagement_score <> 0) >= 50,
          'the final state has leads in several stages and many leads with engagement');
SELECT ok((SELECT count(DISTINCT n) FROM rx.stats WHERE what = 'condition edit') = 8
          AND (SELECT count(DISTINCT n) FROM rx.stats WHERE what = 'account op') = 7
          AND (SELECT count(*) FROM rx.stats WHERE what = 'multiply edit') >= 3
          AND (SELECT count(*) FROM rx.stats WHERE what = 'lead relation/seat update') >= 10
          AND (SELECT count(*) FROM rx.stats WHERE what = 'relation edit') >= 1
          AND (SELECT count(*) FROM rx.stats WHERE what = 'lead-side condition edit') >= 5,
          'every kind of condition edit and account operation ran, and multiply_by, lead key / seat, relation and lead-side condition edits');
-- Conditions and multipliers decided for real: over the checks, the conditioned rule 'p'
-- scored for leads with 'p' activities and did not for others; valued rules gave points that
-- are not whole multiples of their points.
SELECT ok((SELECT sum(n) FROM rx.stats WHERE what = 'p admitted') >= 200
          AND (SELECT sum(n) FROM rx.stats WHERE what = 'p rejected') >= 200
          AND (SELECT sum(n) FROM rx.stats WHERE what = 'valued engagement') >= 200
          AND (SELECT sum(n) FROM rx.stats WHERE what = 'valued fit') >= 200,
          'conditions both admitted and rejected, and multiply_by weighed occurrences and fit');
-- A final from-scratch rescore as of now changes nothing for leads already scored as of now.
CREATE TEMP TABLE final_state AS SELECT * FROM leadscore.lead_score WHERE model = 'rx';
SELECT is(leadscore.rescore('rx'), (SELECT count(*) FROM final_state WHERE scored_at <> now()
                                       AND score <> leadscore.score('rx', lead_id::int, now())),
          'rescore() changes exactly the leads whose score as of now differs from the stored one');

-- The checker is not vacuous: it sees one corrupted engagement score.
UPDATE leadscore.lead_state SET engagement_score = engagement_score + 0.000001
 WHERE model = 'rx' AND lead_id = (SELECT min(lead_id) FROM leadscore.lead_score WHERE model = 'rx');
SELECT is(rx.check(1000), 1::bigint, 'the recompute check detects a single corrupted row');

SELECT * FROM finish();
ROLLBACK;
