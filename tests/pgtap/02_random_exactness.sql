-- Seeded randomized exactness.
--
-- 300 leads, 70 batches of random operations: multi-row inserts of activities of random
-- types with random times (up to 120 days back and 10 days into the future), updates of
-- type / time / lead / attribute, deletes, two truncates, activity-rule edits (points,
-- once, max_count, max_points, expires_after, half_life, min_count / within, cooldown,
-- quiet_for, enabled), fit-rule edits, lead
-- inserts / updates / deletes, and refresh(model, t) at random increasing times.
-- After every batch, every stored score / fit_score / engagement_score / disqualified /
-- stage is compared with a from-scratch recompute as of its scored_at: leadscore.score()
-- for the score, leadscore.explain() sums per family for fit and engagement, the stage
-- rules evaluated in SQL for the stage (stages are not sticky here, so refresh() never
-- legitimately keeps a stage). After every refresh(model, t), every stored score equals
-- the score as of t and refresh() returns how many stored scores changed.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SET LOCAL client_min_messages = warning;
SELECT plan(12);

CREATE SCHEMA rx;
CREATE TABLE rx.leads (id int PRIMARY KEY, title text, email text, employees int, country text);
CREATE TABLE rx.act (id bigserial PRIMARY KEY, lead_id int, type text, url text, occurred_at timestamptz);
CREATE INDEX ON rx.act (lead_id);

SELECT setseed(0.4242);
INSERT INTO rx.leads
SELECT i,
       (ARRAY['CEO', 'CTO', 'engineer', 'student', 'VP Sales'])[1 + floor(random() * 5)::int],
       'u' || i || (ARRAY['@gmail.com', '@acme.com', '@hotmail.fr', '@rival.io', '@corp.de'])[1 + floor(random() * 5)::int],
       floor(random() * 5000)::int,
       (ARRAY['US', 'DE', 'FR', NULL])[1 + floor(random() * 4)::int]
  FROM generate_series(1, 300) i;

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

SELECT is(leadscore.track('rx', 'rx.act', 'lead_id', 'type', 'occurred_at', 'rx.leads', 'id'), 300::bigint,
          'track() scores the 300 leads');

-- A second model on the same activity table, without a leads table: engagement only,
-- month-based expiry and decay, a regular-expression attribute rule.
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('rx2', NULL, 80);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once, max_count, max_points, expires_after, half_life)
VALUES ('rx2', 'a', 'a', 4,  false, 2,    NULL, '1 mon', NULL),
       ('rx2', 'b', 'b', 1,  false, NULL, 5,    NULL,    '1 mon'),
       ('rx2', 'x', 'x', -2, false, NULL, NULL, NULL,    NULL);
INSERT INTO leadscore.activity_rule (model, name, activity_type, attribute, op, value, points)
VALUES ('rx2', 'pricing', 'f', 'url', '~', '{^/pri.*g$}', 9);
INSERT INTO leadscore.stage (model, name, min_score, min_fit, min_engagement, sticky)
VALUES ('rx2', 'warm', 5, NULL, NULL, false), ('rx2', 'hot', 15, NULL, NULL, false);
SELECT cmp_ok(leadscore.track('rx2', 'rx.act', 'lead_id', 'type', 'occurred_at'), '=', 0::bigint,
              'track() of the second model (no activities yet)');

-- One row per mismatching lead.
CREATE TABLE rx.mismatch (batch int, what text, lead_id text, stored text, expected text);

-- Compare every stored row with a from-scratch recompute as of its scored_at.
CREATE FUNCTION rx.check(b int, m text DEFAULT 'rx') RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    INSERT INTO rx.mismatch
    SELECT b, 'state ' || m, ls.lead_id,
           format('%s/%s/%s/%s/%s', ls.score, ls.fit_score, ls.engagement_score, ls.disqualified, ls.stage),
           format('%s/%s/%s/%s/%s', s.score, x.fit, x.eng, x.dq, exp_stage.name)
      FROM leadscore.lead_score ls
     CROSS JOIN LATERAL (
           SELECT coalesce(sum(e.points) FILTER (WHERE e.family = 'fit'), 0) AS fit,
                  coalesce(sum(e.points) FILTER (WHERE e.family = 'engagement'), 0) AS eng,
                  coalesce(bool_or(e.disqualifies), false) AS dq
             FROM leadscore.explain(m, ls.lead_id::int, ls.scored_at) e) x
     CROSS JOIN LATERAL (SELECT leadscore.score(m, ls.lead_id::int, ls.scored_at) AS score) s
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
            OR ls.score IS DISTINCT FROM greatest(coalesce(md.score_min, x.fit + x.eng),
                                                  least(coalesce(md.score_max, x.fit + x.eng), x.fit + x.eng))
            OR ls.fit_score IS DISTINCT FROM x.fit
            OR ls.engagement_score IS DISTINCT FROM x.eng
            OR ls.disqualified IS DISTINCT FROM x.dq
            OR ls.stage IS DISTINCT FROM exp_stage.name);
    -- exactly the leads of the leads table have state (model rx, which has a leads table)
    INSERT INTO rx.mismatch
    SELECT b, 'membership', coalesce(l.id::text, ls.lead_id), (ls.lead_id IS NOT NULL)::text, (l.id IS NOT NULL)::text
      FROM rx.leads l FULL JOIN (SELECT lead_id FROM leadscore.lead_score WHERE model = 'rx') ls ON ls.lead_id = l.id::text
     WHERE m = 'rx' AND (l.id IS NULL OR ls.lead_id IS NULL);
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

CREATE FUNCTION rx.rnd(lo int, hi int) RETURNS int LANGUAGE sql AS $$ SELECT lo + floor(random() * (hi - lo + 1))::int $$;
CREATE FUNCTION rx.rtime() RETURNS timestamptz LANGUAGE sql AS $$ SELECT now() + (random() * 130 - 120) * interval '1 day' $$;
CREATE FUNCTION rx.rtype() RETURNS text LANGUAGE sql AS $$
    SELECT (ARRAY['a', 'b', 'b', 'c', 'd', 'e', 'e', 'f', 'g', 'g', 'x', 'q', 'h', 'h', 'k', 'k'])[1 + floor(random() * 16)::int] $$;

DO $$
DECLARE
    i int;
    k int;
    rule text;
    t timestamptz := now();
    n bigint;
    newkey int;
BEGIN
    PERFORM setseed(0.1234);
    INSERT INTO rx.stats VALUES (0, 'check', rx.check(0));
    FOR i IN 1..70 LOOP
        -- multi-row insert; 'q' (disqualifying) kept rare
        INSERT INTO rx.act (lead_id, type, url, occurred_at)
        SELECT rx.rnd(1, 330), CASE WHEN ty = 'q' AND random() < 0.8 THEN 'x' ELSE ty END,
               CASE WHEN random() < 0.5 THEN '/pricing' ELSE '/blog' END, rx.rtime()
          FROM (SELECT rx.rtype() AS ty FROM generate_series(1, rx.rnd(20, 80))) g;
        -- updates of type, time, lead, attribute; several at once
        FOR k IN 1..rx.rnd(0, 3) LOOP
            CASE rx.rnd(1, 4)
            WHEN 1 THEN UPDATE rx.act SET type = rx.rtype() WHERE id IN (SELECT id FROM rx.act ORDER BY random() LIMIT rx.rnd(1, 15));
            WHEN 2 THEN UPDATE rx.act SET occurred_at = rx.rtime() WHERE id IN (SELECT id FROM rx.act ORDER BY random() LIMIT rx.rnd(1, 15));
            WHEN 3 THEN UPDATE rx.act SET lead_id = rx.rnd(1, 330) WHERE id IN (SELECT id FROM rx.act ORDER BY random() LIMIT rx.rnd(1, 15));
            ELSE UPDATE rx.act SET url = CASE WHEN url = '/blog' THEN '/pricing' ELSE '/blog' END
                  WHERE id IN (SELECT id FROM rx.act ORDER BY random() LIMIT rx.rnd(1, 15));
            END CASE;
        END LOOP;
        IF random() < 0.5 THEN
            DELETE FROM rx.act WHERE id IN (SELECT id FROM rx.act ORDER BY random() LIMIT rx.rnd(1, 25));
        END IF;
        IF i IN (25, 52) THEN
            TRUNCATE rx.act;
        END IF;
        -- activity-rule edits
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
                 WHERE model = 'rx' AND name = rule;
            WHEN 8 THEN UPDATE leadscore.activity_rule SET cooldown = CASE WHEN random() < 0.3 THEN NULL ELSE rx.rnd(1, 20) * interval '1 day' END
                 WHERE model = 'rx' AND name = rule;
            WHEN 9 THEN UPDATE leadscore.activity_rule SET quiet_for = rx.rnd(1, 30) * interval '1 day', points = rx.rnd(-12, 5)
                 WHERE model = 'rx' AND name = 'w';
            ELSE UPDATE leadscore.activity_rule SET enabled = NOT enabled WHERE model = 'rx' AND name = rule;
            END CASE;
        END IF;
        -- fit-rule edits
        IF random() < 0.15 THEN
            CASE rx.rnd(1, 4)
            WHEN 1 THEN UPDATE leadscore.fit_rule SET points = rx.rnd(-10, 30) WHERE model = 'rx' AND name = (ARRAY['ceo', 'big', 'free', 'target', 'nocty'])[rx.rnd(1, 5)];
            WHEN 2 THEN UPDATE leadscore.fit_rule SET value = ARRAY[rx.rnd(100, 4000)::text] WHERE model = 'rx' AND name = 'big';
            WHEN 3 THEN UPDATE leadscore.fit_rule SET enabled = NOT enabled WHERE model = 'rx' AND name = (ARRAY['ceo', 'big', 'free', 'target', 'nocty', 'rival'])[rx.rnd(1, 6)];
            ELSE UPDATE leadscore.fit_rule SET value = (ARRAY['{US,DE}', '{FR}', '{US,FR,DE}'])[rx.rnd(1, 3)]::text[] WHERE model = 'rx' AND name = 'target';
            END CASE;
        END IF;
        -- lead updates, inserts, deletes
        IF random() < 0.4 THEN
            UPDATE rx.leads SET title = (ARRAY['CEO', 'CTO', 'engineer', 'student'])[rx.rnd(1, 4)],
                                employees = rx.rnd(0, 5000),
                                country = (ARRAY['US', 'DE', 'FR', NULL])[rx.rnd(1, 4)]
             WHERE id IN (SELECT id FROM rx.leads ORDER BY random() LIMIT rx.rnd(1, 20));
        END IF;
        IF random() < 0.15 THEN
            UPDATE rx.leads SET email = 'v' || id || (ARRAY['@gmail.com', '@acme.com', '@rival.io'])[rx.rnd(1, 3)]
             WHERE id IN (SELECT id FROM rx.leads ORDER BY random() LIMIT rx.rnd(1, 10));
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
        IF random() < 0.1 THEN
            -- rule inserts and deletes
            IF EXISTS (SELECT 1 FROM leadscore.activity_rule WHERE model = 'rx' AND name = 'x') THEN
                DELETE FROM leadscore.activity_rule WHERE model = 'rx' AND name = 'x';
            ELSE
                INSERT INTO leadscore.activity_rule (model, name, activity_type, points, max_count, expires_after)
                VALUES ('rx', 'x', 'x', rx.rnd(-5, 12), rx.rnd(1, 4), rx.rnd(1, 30) * interval '1 day');
            END IF;
        END IF;
        IF random() < 0.05 THEN
            UPDATE leadscore.activity_rule SET points = rx.rnd(-3, 6) WHERE model = 'rx2' AND name = (ARRAY['a', 'b', 'x', 'pricing'])[rx.rnd(1, 4)];
        END IF;
        IF random() < 0.2 THEN
            INSERT INTO rx.leads
            SELECT g, 'CEO', 'n' || g || '@corp.de', rx.rnd(0, 5000), 'US'
              FROM generate_series(rx.rnd(290, 330), rx.rnd(290, 330)) g
            ON CONFLICT (id) DO NOTHING;
        END IF;
        -- stage threshold edit
        IF random() < 0.05 THEN
            UPDATE leadscore.stage SET min_score = rx.rnd(20, 50) WHERE model = 'rx' AND name = 'mid';
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
