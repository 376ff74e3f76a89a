-- Condition groups, lead and related-record (relation) attributes, and multiply_by, live.
--
-- Every write that can change what a condition sees is followed by the hand-worked values of
-- every lead and by c10.check(): stored score == leadscore.score(model, lead, scored_at),
-- the whole stored row (score, fit, engagement, stage, disqualified) == scores_as_of(),
-- the engagement_score aggregate over the raw activity rows grouped by lead == stored
-- engagement, every lead of the leads table has a state row and no state row is an orphan.
-- Writes covered: multi-row INSERT and COPY of activities for several leads, lead row INSERT
-- and (multi-row) UPDATE of title / account / seats, relation-target (account) INSERT /
-- UPDATE / DELETE / TRUNCATE and a key change, an UPDATE of an unrelated account column, a
-- rolled-back account update (savepoint), UPDATE / DELETE of activity rows of multiply_by
-- rules (value, time, lead, NULL), condition row INSERT / UPDATE / DELETE, rules disabled and
-- re-enabled; lead keys int, text and uuid.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SET LOCAL client_min_messages = warning;
SET LOCAL timezone = 'UTC';
SELECT plan(108);

CREATE SCHEMA c10;
-- leads.account_id is integer, account.id bigint: the relation compares across integer types.
CREATE TABLE c10.account (id bigint PRIMARY KEY, name text, revenue numeric, employees integer, industry text);
CREATE TABLE c10.leads (id int PRIMARY KEY, title text, email text, account_id int, seats numeric);
CREATE TABLE c10.acts (id bigserial PRIMARY KEY, lead_id int, type text, url text, amount numeric, at timestamptz);
CREATE INDEX ON c10.acts (lead_id);

INSERT INTO c10.account VALUES
    (1, 'Big', 5000000, 1200, 'software'), (2, 'Small', 200000, 12, 'retail'), (3, 'Mid', 1500000, 300, 'software');
INSERT INTO c10.leads VALUES
    (1, 'CEO', 'ann@big.example', 1, 3), (2, 'CEO', 'bob@small.example', 2, NULL),
    (3, 'Engineer', 'cy@big.example', 1, 10), (4, 'CFO', 'di@nowhere.example', 99, 1),
    (5, 'Founder', 'ed@x.example', NULL, 2), (6, 'CTO', 'fay@mid.example', 3, 0.5);
INSERT INTO leadscore.model (name) VALUES ('c10');
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('c10', 'MQL', 60);

-- Every lead as "lead:fit/engagement", in key order.
CREATE FUNCTION c10.st() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(format('%s:%s/%s', lead_id, trim_scale(fit_score), trim_scale(engagement_score)),
                               ' ' ORDER BY lead_id::int), '')
      FROM leadscore.lead_score WHERE model = 'c10' $$;
-- 'ok', or the list of problems.
CREATE FUNCTION c10.check() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(problem, '; ' ORDER BY problem), 'ok') FROM (
        SELECT 'score ' || s.lead_id FROM leadscore.lead_score s
         WHERE s.model = 'c10' AND s.score IS DISTINCT FROM leadscore.score('c10', s.lead_id::int, s.scored_at)
        UNION ALL
        SELECT 'row ' || s.lead_id FROM leadscore.lead_score s
         WHERE s.model = 'c10' AND NOT EXISTS (
               SELECT 1 FROM leadscore.scores_as_of('c10', s.scored_at) f
                WHERE f.lead_id = s.lead_id
                  AND (f.score, f.fit_score, f.engagement_score, f.stage, f.disqualified)
                      IS NOT DISTINCT FROM (s.score, s.fit_score, s.engagement_score, s.stage, s.disqualified))
        UNION ALL
        SELECT 'aggregate ' || s.lead_id FROM leadscore.lead_score s
          LEFT JOIN (SELECT a.lead_id, leadscore.engagement_score('c10', a, now()) AS e
                       FROM c10.acts a GROUP BY a.lead_id) g ON g.lead_id::text = s.lead_id
         WHERE s.model = 'c10' AND (s.scored_at <> now() OR coalesce(g.e, 0) IS DISTINCT FROM s.engagement_score)
        UNION ALL
        SELECT 'no state ' || l.id FROM c10.leads l
         WHERE NOT EXISTS (SELECT 1 FROM leadscore.lead_score s WHERE s.model = 'c10' AND s.lead_id = l.id::text)
        UNION ALL
        SELECT 'orphan ' || s.lead_id FROM leadscore.lead_score s
         WHERE s.model = 'c10' AND NOT EXISTS (SELECT 1 FROM c10.leads l WHERE l.id::text = s.lead_id)) p(problem) $$;
-- One rule's explain() row for a lead: "occurrences/points".
CREATE FUNCTION c10.ex(lead int, rule_name text) RETURNS text LANGUAGE sql AS $$
    SELECT occurrences || '/' || trim_scale(points) FROM leadscore.explain('c10', lead, now()) WHERE rule = rule_name $$;

SELECT lives_ok($$SELECT leadscore.track('c10', 'c10.acts', 'lead_id', 'type', 'at', 'c10.leads', 'id')$$,
                'track() attaches the model');
INSERT INTO leadscore.relation VALUES ('c10', 'account', 'account_id', 'c10.account', 'id');

-- A1: a webinar by a C-level/Founder lead of a 1M+ account (group 1: activity-free, lead +
-- relation), OR an /enterprise webinar of a software account (group 2: activity + relation).
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (8001, 'c10', 'webinar exec', 'webinar', 50);
INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value) VALUES
    (8001, 1, 'lead.title', 'in', '{CEO,Founder}'), (8001, 1, 'account.revenue', '>=', '{1000000}'),
    (8001, 2, 'url', 'like', '{%/enterprise%}'), (8001, 2, 'account.industry', '=', '{software}');
-- A2: pricing page (inline activity condition) by a C-level lead, at most 2 occurrences.
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, attribute, op, value, points, max_count)
VALUES (8002, 'c10', 'pricing by C-level', 'page', 'url', '=', '{/pricing}', 20, 2);
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (8002, 'lead.title', '~', '{"^C[EFT]O$"}');
-- A3: 0.1 x purchase amount, the 3 most recent valued purchases, at most 50 points.
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, multiply_by, max_count, max_points)
VALUES (8003, 'c10', 'purchase amount', 'purchase', 0.1, 'amount', 3, 50);
-- A4: 1 x gift amount, halving every 10 days.
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, multiply_by, half_life)
VALUES (8004, 'c10', 'gift', 'gift', 1, 'amount', '10 days');
-- F1: no inline condition; (1000+ employees AND revenue > 1M) OR (retail account AND title CEO).
INSERT INTO leadscore.fit_rule (id, model, name, points) VALUES (8101, 'c10', 'target account', 15);
INSERT INTO leadscore.fit_condition (rule_id, grp, attribute, op, value) VALUES
    (8101, 1, 'account.employees', '>=', '{1000}'), (8101, 1, 'account.revenue', '>', '{1000000}'),
    (8101, 2, 'account.industry', '=', '{retail}'), (8101, 2, 'title', '=', '{CEO}');
-- F2: 0.01 x account.employees (relation column). F3: 2 x seats (lead column) when titled.
INSERT INTO leadscore.fit_rule (id, model, name, points, multiply_by) VALUES (8102, 'c10', 'per 100 employees', 0.01, 'account.employees');
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, points, multiply_by)
VALUES (8103, 'c10', 'seats', 'title', 'is not null', 2, 'seats');

-- Fit:  F1  F2    F3 | total
--   1   15  12    6  | 33      (acc 1: 1200 employees, 5M)
--   2   15  0.12  0  | 15.12   (acc 2 retail, CEO; seats NULL gives nothing)
--   3   15  12    20 | 47
--   4   0   0     2  | 2       (account 99 dangling: every account attribute NULL)
--   5   0   0     4  | 4       (no account)
--   6   0   3     1  | 4       (acc 3: 300 employees)
SELECT is(c10.st(), '1:33/0 2:15.12/0 3:47/0 4:2/0 5:4/0 6:4/0', 'fit with condition groups, relation and multiply_by');
SELECT is(c10.check(), 'ok', 'rules written: exact');

-- One multi-row INSERT for several leads (and lead 7, not in the leads table yet).
INSERT INTO c10.acts (lead_id, type, url, amount, at) VALUES
    (1, 'webinar', NULL, NULL, now() - interval '5 days'),            -- 1: group 1 (CEO, 5M)        50
    (3, 'webinar', '/enterprise/x', NULL, now() - interval '5 days'), -- 3: group 2 (url, software)  50
    (3, 'webinar', '/blog', NULL, now() - interval '4 days'),         -- 3: Engineer, no group        0
    (2, 'webinar', NULL, NULL, now() - interval '5 days'),            -- 2: 200k revenue, no url      0
    (5, 'webinar', NULL, NULL, now() - interval '5 days'),            -- 5: no account                0
    (6, 'webinar', '/enterprise', NULL, now() - interval '5 days'),   -- 6: group 2                  50
    (1, 'page', '/pricing', NULL, now() - interval '3 days'),         -- 1: CEO                      20
    (3, 'page', '/pricing', NULL, now() - interval '3 days'),         -- 3: Engineer                  0
    (4, 'page', '/pricing', NULL, now() - interval '3 days'),         -- 4: CFO                      20
    (6, 'page', '/pricing', NULL, now() - interval '3 days'),         -- 6: CTO, max_count 2:        40
    (6, 'page', '/pricing', NULL, now() - interval '2 days'),
    (6, 'page', '/pricing', NULL, now() - interval '1 day'),
    (6, 'page', '/docs', NULL, now() - interval '1 day'),             -- 6: inline url fails          0
    (7, 'page', '/pricing', NULL, now() - interval '3 days'),         -- 7: no lead row yet
    (5, 'gift', NULL, 8, now() - interval '10 days'),                 -- 5: 8 x 0.5 (one half-life)   4
    (5, 'gift', NULL, NULL, now() - interval '1 day');                -- 5: NULL: not an occurrence
SELECT is(c10.st(), '1:33/70 2:15.12/0 3:47/50 4:2/20 5:4/4 6:4/90', 'multi-row INSERT for several leads');
SELECT is(c10.check(), 'ok', 'multi-row INSERT: exact');

-- COPY (one statement, several leads) of purchases. Lead 2: 120.55 x 0.1 = 12.055 plus
-- 0.000005 x 0.1 = 0.0000005 -> 0.000001 (half away from zero) = 12.055001; NULL is not an
-- occurrence. Lead 1: valued 100, 200, 50, 30 then NULL (most recent): max_count 3 keeps
-- 200, 50, 30 (the NULL takes no slot) = 20 + 5 + 3 = 28.
COPY c10.acts (lead_id, type, url, amount, at) FROM stdin;
2	purchase	\N	120.55	2025-06-01 00:00:00+00
2	purchase	\N	\N	2025-06-02 00:00:00+00
2	purchase	\N	0.000005	2025-06-03 00:00:00+00
1	purchase	\N	100	2025-07-01 00:00:00+00
1	purchase	\N	200	2025-07-02 00:00:00+00
1	purchase	\N	50	2025-07-03 00:00:00+00
1	purchase	\N	30	2025-07-04 00:00:00+00
1	purchase	\N	\N	2025-07-05 00:00:00+00
\.
SELECT is(c10.st(), '1:33/98 2:15.12/12.055001 3:47/50 4:2/20 5:4/4 6:4/90', 'COPY of valued purchases');
SELECT is(c10.check(), 'ok', 'COPY: exact');
SELECT is(c10.ex(1, 'purchase amount'), '3/28', 'explain: max_count keeps the 3 most recent valued purchases, each with its own value');
SELECT is(c10.ex(2, 'purchase amount'), '2/12.055001', 'explain: a NULL amount is not an occurrence');
SELECT is(c10.ex(5, 'gift'), '1/4', 'explain: multiply_by with decay, one half-life old');

-- Lead 7's row arrives: CEO of account 3. Fit 0 + 3 + 0 (seats NULL) = 3; its earlier
-- pricing page now counts: 20.
INSERT INTO c10.leads VALUES (7, 'CEO', 'gus@mid.example', 3, NULL);
SELECT is(c10.st(), '1:33/98 2:15.12/12.055001 3:47/50 4:2/20 5:4/4 6:4/90 7:3/20', 'lead row INSERT scores its earlier activities');
SELECT is(c10.check(), 'ok', 'lead INSERT: exact');

-- Lead 3 becomes CTO: its pricing page now counts (+20); the /blog webinar still matches no group.
UPDATE c10.leads SET title = 'CTO' WHERE id = 3;
SELECT is(c10.st(), '1:33/98 2:15.12/12.055001 3:47/70 4:2/20 5:4/4 6:4/90 7:3/20', 'title change gains activity points');
SELECT is(c10.check(), 'ok', 'title to CTO: exact');
-- Founder: pricing lost (-20); the /blog webinar matches group 1 (+50); the /enterprise one
-- now matches both groups and still counts once: 50 + 50 = 100.
UPDATE c10.leads SET title = 'Founder' WHERE id = 3;
SELECT is(c10.st(), '1:33/98 2:15.12/12.055001 3:47/100 4:2/20 5:4/4 6:4/90 7:3/20', 'title change gains and loses activity points');
SELECT is(c10.check(), 'ok', 'title to Founder: exact');
SELECT is(c10.ex(3, 'webinar exec'), '2/100', 'explain: an activity matching both groups is one occurrence');
SELECT results_eq(
    $$SELECT rule, family, occurrences, points FROM leadscore.explain('c10', 3, now()) ORDER BY family, rule$$,
    $$VALUES ('webinar exec', 'engagement', 2::bigint, 100::numeric), ('per 100 employees', 'fit', 1, 12),
             ('seats', 'fit', 1, 20), ('target account', 'fit', 1, 15)$$,
    'explain(): one row per contributing rule, condition rules included');

-- One UPDATE, two leads: 1 -> Intern (loses webinar 50 and pricing 20; fit unchanged: F1 is
-- group 1 on the account), 2 -> COO (loses F1 group 2: fit 0.12).
UPDATE c10.leads SET title = CASE id WHEN 1 THEN 'Intern' ELSE 'COO' END WHERE id IN (1, 2);
SELECT is(c10.st(), '1:33/28 2:0.12/12.055001 3:47/100 4:2/20 5:4/4 6:4/90 7:3/20', 'multi-row lead UPDATE');
SELECT is(c10.check(), 'ok', 'multi-row lead UPDATE: exact');
UPDATE c10.leads SET title = 'CEO' WHERE id IN (1, 2);
SELECT is(c10.st(), '1:33/98 2:15.12/12.055001 3:47/100 4:2/20 5:4/4 6:4/90 7:3/20', 'titles back');
SELECT is(c10.check(), 'ok', 'titles back: exact');

-- Account 1 (leads 1 and 3) drops to 900k revenue: F1 group 1 fails (fit -15); the webinars
-- that matched group 1 stop counting. 1: 18 / 20 + 28 = 48. 3: 32 / the /enterprise webinar
-- (group 2, software) 50.
UPDATE c10.account SET revenue = 900000 WHERE id = 1;
SELECT is(c10.st(), '1:18/48 2:15.12/12.055001 3:32/50 4:2/20 5:4/4 6:4/90 7:3/20', 'account UPDATE rescores its leads');
SELECT is(c10.check(), 'ok', 'account UPDATE: exact');

-- An unrelated column of a referred account, and an account nobody refers to: no change.
CREATE TEMP TABLE before_unrelated AS
    SELECT lead_id, score, fit_score, engagement_score, stage, stage_since FROM leadscore.lead_score WHERE model = 'c10';
UPDATE c10.account SET name = 'Big Inc' WHERE id = 1;
INSERT INTO c10.account VALUES (4, 'Nobody', 1, 1, 'retail');
UPDATE c10.account SET revenue = 7, employees = 7000 WHERE id = 4;
SELECT is((SELECT count(*) FROM (
              SELECT lead_id, score, fit_score, engagement_score, stage, stage_since FROM leadscore.lead_score WHERE model = 'c10'
              EXCEPT SELECT * FROM before_unrelated) d), 0::bigint,
          'an unrelated account column, an unreferenced account: nothing changes');
SELECT is(c10.check(), 'ok', 'unrelated account changes: exact');

-- Account 99 appears (lead 4's dangling reference resolves): 15 + 50 + 2 = 67 / 20.
INSERT INTO c10.account VALUES (99, 'Late', 2000000, 5000, 'software'), (5, 'Other', 1, 1, 'x');
SELECT is(c10.st(), '1:18/48 2:15.12/12.055001 3:32/50 4:67/20 5:4/4 6:4/90 7:3/20', 'account INSERT resolves a dangling reference');
SELECT is(c10.check(), 'ok', 'account INSERT: exact');
DELETE FROM c10.account WHERE id = 99;
SELECT is(c10.st(), '1:18/48 2:15.12/12.055001 3:32/50 4:2/20 5:4/4 6:4/90 7:3/20', 'account DELETE: related attributes NULL again');
SELECT is(c10.check(), 'ok', 'account DELETE: exact');

-- Lead 1 moves to account 3 (1.5M, 300 employees, software): F1 0, F2 3, F3 6 = 9; the
-- webinar matches group 1 again: 50 + 20 + 28 = 98.
UPDATE c10.leads SET account_id = 3 WHERE id = 1;
SELECT is(c10.st(), '1:9/98 2:15.12/12.055001 3:32/50 4:2/20 5:4/4 6:4/90 7:3/20', 'moving a lead to another account');
SELECT is(c10.check(), 'ok', 'lead moved: exact');
SELECT is(c10.ex(1, 'per 100 employees'), '1/3', 'explain: relation multiply_by reads the new account');
-- Account 1 back to 5M: lead 3 only (47 / 100); lead 1 no longer refers to it.
UPDATE c10.account SET revenue = 5000000 WHERE id = 1;
SELECT is(c10.st(), '1:9/98 2:15.12/12.055001 3:47/100 4:2/20 5:4/4 6:4/90 7:3/20', 'old account no longer affects the moved lead');
SELECT is(c10.check(), 'ok', 'account 1 back: exact');

-- A rolled-back account update leaves no trace. Account 3 to 100 revenue: lead 1's webinar
-- (group 1) stops counting (98 -> 48); lead 6's matches group 2 (unchanged); lead 7 has none.
SAVEPOINT before_account3;
UPDATE c10.account SET revenue = 100 WHERE id = 3;
SELECT is(c10.st(), '1:9/48 2:15.12/12.055001 3:47/100 4:2/20 5:4/4 6:4/90 7:3/20', 'account 3 update inside a savepoint');
SELECT is(c10.check(), 'ok', 'inside the savepoint: exact');
ROLLBACK TO SAVEPOINT before_account3;
SELECT is(c10.st(), '1:9/98 2:15.12/12.055001 3:47/100 4:2/20 5:4/4 6:4/90 7:3/20', 'rolled back: scores as before');
SELECT is(c10.check(), 'ok', 'rolled back: exact');

-- TRUNCATE of the accounts: every related attribute NULL. F1 and F2 give 0 everywhere and
-- A1 matches nothing. 1: 6 / 20 + 28. 2: 0 / 12.055001. 3: 20 / 0. 4: 2 / 20. 5: 4 / 4.
-- 6: 1 / 40. 7: 0 / 20.
TRUNCATE c10.account;
SELECT is(c10.st(), '1:6/48 2:0/12.055001 3:20/0 4:2/20 5:4/4 6:1/40 7:0/20', 'account TRUNCATE');
SELECT is(c10.check(), 'ok', 'account TRUNCATE: exact');
INSERT INTO c10.account VALUES
    (1, 'Big', 5000000, 1200, 'software'), (2, 'Small', 200000, 12, 'retail'), (3, 'Mid', 1500000, 300, 'software');
SELECT is(c10.st(), '1:9/98 2:15.12/12.055001 3:47/100 4:2/20 5:4/4 6:4/90 7:3/20', 'accounts back in one INSERT');
SELECT is(c10.check(), 'ok', 'accounts back: exact');

-- Activity rows of multiply_by rules. Lead 1: webinar 50 + pricing 20 + purchases; valued
-- purchases by time: 07-01 100, 07-02 200, 07-03 50, 07-04 30 (07-05 NULL).
INSERT INTO c10.acts (lead_id, type, amount, at) VALUES (1, 'purchase', 400, '2025-07-06+00');
-- 50, 30, 400: 5 + 3 + 40 = 48.
SELECT is(c10.ex(1, 'purchase amount'), '3/48', 'a more recent purchase pushes the oldest counted one out');
INSERT INTO c10.acts (lead_id, type, amount, at) VALUES (1, 'purchase', 100, '2025-07-07+00');
-- 30, 400, 100: 3 + 40 + 10 = 53, capped at 50.
SELECT is(c10.ex(1, 'purchase amount'), '3/50', 'max_points caps valued occurrences');
SELECT is(c10.check(), 'ok', 'purchases inserted: exact');
DELETE FROM c10.acts WHERE lead_id = 1 AND amount = 400;
-- 50, 30, 100: 5 + 3 + 10 = 18.
SELECT is(c10.ex(1, 'purchase amount'), '3/18', 'DELETE of a valued purchase removes its own value');
SELECT is(c10.check(), 'ok', 'purchase deleted: exact');
UPDATE c10.acts SET amount = NULL WHERE lead_id = 1 AND at = '2025-07-07+00';
-- the 07-07 purchase is no occurrence any more: 200, 50, 30 = 28.
SELECT is(c10.ex(1, 'purchase amount'), '3/28', 'UPDATE of an amount to NULL: no longer an occurrence');
SELECT is(c10.check(), 'ok', 'amount to NULL: exact');
UPDATE c10.acts SET amount = 60 WHERE lead_id = 1 AND at = '2025-07-05+00';
-- 07-05 becomes valued: 50, 30, 60 = 14.
SELECT is(c10.ex(1, 'purchase amount'), '3/14', 'UPDATE of a NULL amount to a value: an occurrence');
UPDATE c10.acts SET amount = -500 WHERE lead_id = 1 AND at = '2025-07-03+00';
-- -500, 30, 60: -50 + 3 + 6 = -41.
SELECT is(c10.ex(1, 'purchase amount'), '3/-41', 'UPDATE of a counted amount');
SELECT is(c10.st(), '1:9/29 2:15.12/12.055001 3:47/100 4:2/20 5:4/4 6:4/90 7:3/20', 'lead 1: 50 + 20 - 41 = 29');
SELECT is(c10.check(), 'ok', 'amounts updated: exact');
UPDATE c10.acts SET at = '2025-08-01+00' WHERE lead_id = 1 AND at = '2025-07-01+00';
-- the 100 moves to 08-01, the most recent: 30, 60, 100 = 3 + 6 + 10 = 19.
SELECT is(c10.ex(1, 'purchase amount'), '3/19', 'UPDATE of a valued purchase''s time');
DELETE FROM c10.acts WHERE lead_id = 1 AND type = 'purchase' AND amount IN (30, 60);
-- left valued: 07-02 200, 07-03 -500, 08-01 100: 20 - 50 + 10 = -20.
SELECT is(c10.ex(1, 'purchase amount'), '3/-20', 'multi-row DELETE of valued purchases');
SELECT is(c10.check(), 'ok', 'time update and multi-row delete: exact');
UPDATE c10.acts SET lead_id = 2 WHERE lead_id = 1 AND amount = 100;
-- lead 1: 200, -500 = -30 (eng 50 + 20 - 30 = 40); lead 2: 12.055 + 0.000001 + 10 = 22.055001.
SELECT is(c10.st(), '1:9/40 2:15.12/22.055001 3:47/100 4:2/20 5:4/4 6:4/90 7:3/20', 'a valued purchase moved to another lead');
SELECT is(c10.check(), 'ok', 'purchase moved: exact');
-- Lead 5's gifts: 8 -> 20 ten days ago = 10; the NULL one a day ago becomes 4:
-- 4 x 0.5^(1/10) = 3.7321319... -> 3.732132. 10 + 3.732132 = 13.732132.
UPDATE c10.acts SET amount = 20 WHERE lead_id = 5 AND type = 'gift' AND amount = 8;
UPDATE c10.acts SET amount = 4 WHERE lead_id = 5 AND type = 'gift' AND amount IS NULL;
SELECT is(c10.ex(5, 'gift'), '2/13.732132', 'decayed valued gifts updated');
SELECT is(c10.check(), 'ok', 'gifts updated: exact');

-- Fit multiply_by. Lead 2's seats NULL -> 4: F3 8 (fit 23.12); back to NULL: nothing.
UPDATE c10.leads SET seats = 4 WHERE id = 2;
SELECT is(c10.ex(2, 'seats'), '1/8', 'fit multiply_by on a lead column');
SELECT is(c10.check(), 'ok', 'seats set: exact');
UPDATE c10.leads SET seats = NULL WHERE id = 2;
SELECT is(c10.ex(2, 'seats'), NULL, 'a NULL lead value gives no points');
-- Account 2's employees NULL: F2 gives nothing (fit 15); 250: 2.5 (fit 17.5).
UPDATE c10.account SET employees = NULL WHERE id = 2;
SELECT is(c10.st(), '1:9/40 2:15/22.055001 3:47/100 4:2/20 5:4/13.732132 6:4/90 7:3/20', 'a NULL related value gives no points');
SELECT is(c10.check(), 'ok', 'employees NULL: exact');
UPDATE c10.account SET employees = 250 WHERE id = 2;
SELECT is(c10.st(), '1:9/40 2:17.5/22.055001 3:47/100 4:2/20 5:4/13.732132 6:4/90 7:3/20', 'fit multiply_by on a relation column');
SELECT is(c10.check(), 'ok', 'employees 250: exact');

-- Condition edits.
-- A1 group 1 titles -> {Founder}: lead 1 (CEO) loses its webinar (40 - 50 = -10); lead 3
-- (Founder) keeps both.
UPDATE leadscore.activity_condition SET value = '{Founder}' WHERE rule_id = 8001 AND attribute = 'lead.title';
SELECT is(c10.st(), '1:9/-10 2:17.5/22.055001 3:47/100 4:2/20 5:4/13.732132 6:4/90 7:3/20', 'condition UPDATE');
SELECT is(c10.check(), 'ok', 'condition UPDATE: exact');
-- F1 group 2 removed: lead 2 (retail CEO) loses 15.
DELETE FROM leadscore.fit_condition WHERE rule_id = 8101 AND grp = 2;
SELECT is(c10.st(), '1:9/-10 2:2.5/22.055001 3:47/100 4:2/20 5:4/13.732132 6:4/90 7:3/20', 'condition group DELETE');
SELECT is(c10.check(), 'ok', 'condition group DELETE: exact');
-- A1 group 3, an e-mail condition: lead 2's webinar counts (+50).
INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value) VALUES (8001, 3, 'lead.email', 'like', '{%@small.example}');
SELECT is(c10.st(), '1:9/-10 2:2.5/72.055001 3:47/100 4:2/20 5:4/13.732132 6:4/90 7:3/20', 'condition INSERT, new group');
SELECT is(c10.check(), 'ok', 'condition INSERT: exact');
-- ... moved into group 1 (Founder AND 1M+ AND small.example): lead 2 loses it, and lead 3's
-- /blog webinar no longer matches group 1 (100 -> 50).
UPDATE leadscore.activity_condition SET grp = 1 WHERE rule_id = 8001 AND grp = 3;
SELECT is(c10.st(), '1:9/-10 2:2.5/22.055001 3:47/50 4:2/20 5:4/13.732132 6:4/90 7:3/20', 'condition moved to another group');
SELECT is(c10.check(), 'ok', 'condition moved: exact');
-- A2 disabled: pricing points gone (1: -30, 3: none, 4: 0, 6: 50, 7: 0); enabled again.
UPDATE leadscore.activity_rule SET enabled = false WHERE id = 8002;
SELECT is(c10.st(), '1:9/-30 2:2.5/22.055001 3:47/50 4:2/0 5:4/13.732132 6:4/50 7:3/0', 'condition rule disabled');
SELECT is(c10.check(), 'ok', 'rule disabled: exact');
UPDATE leadscore.activity_rule SET enabled = true WHERE id = 8002;
SELECT is(c10.st(), '1:9/-10 2:2.5/22.055001 3:47/50 4:2/20 5:4/13.732132 6:4/90 7:3/20', 'condition rule enabled again');
-- F1 disabled: lead 3 loses 15 (the only lead still matching).
UPDATE leadscore.fit_rule SET enabled = false WHERE id = 8101;
SELECT is(c10.st(), '1:9/-10 2:2.5/22.055001 3:32/50 4:2/20 5:4/13.732132 6:4/90 7:3/20', 'fit condition rule disabled');
SELECT is(c10.check(), 'ok', 'fit rule disabled: exact');
-- Every A1 condition deleted: every webinar counts. 1: +50, 2: +50, 3: 2 webinars (100),
-- 5: +50, 6: unchanged (it matched already).
DELETE FROM leadscore.activity_condition WHERE rule_id = 8001;
SELECT is(c10.st(), '1:9/40 2:2.5/72.055001 3:32/100 4:2/20 5:4/63.732132 6:4/90 7:3/20', 'all conditions of a rule deleted');
SELECT is(c10.check(), 'ok', 'conditions deleted: exact');
-- A lead row change after all these edits: 6 becomes VP (A2 reads lead.title: pricing -40).
UPDATE c10.leads SET title = 'VP' WHERE id = 6;
SELECT is(c10.st(), '1:9/40 2:2.5/72.055001 3:32/100 4:2/20 5:4/63.732132 6:4/50 7:3/20', 'lead UPDATE after the rule edits');
SELECT is(c10.check(), 'ok', 'final: exact');
SELECT is(leadscore.rescore('c10'), 0::bigint, 'rescore() finds nothing to change');

-- Text lead keys and text relation keys (including a change of the related row's key).
CREATE TABLE c10.acc_t (code text PRIMARY KEY, revenue numeric, tier text);
CREATE TABLE c10.leads_t (id text PRIMARY KEY, title text, acc text);
CREATE TABLE c10.acts_t (lead_id text, type text, at timestamptz);
INSERT INTO c10.acc_t VALUES ('A-1', 50000, 'gold'), ('A-2', 1000, 'silver');
INSERT INTO c10.leads_t VALUES ('x1', 'CEO', 'A-1'), ('x2', 'CTO', 'A-2'), ('x3', 'Dev', NULL);
INSERT INTO leadscore.model (name) VALUES ('c10t');
SELECT lives_ok($$SELECT leadscore.track('c10t', 'c10.acts_t', 'lead_id', 'type', 'at', 'c10.leads_t', 'id')$$, 'track() text keys');
INSERT INTO leadscore.relation VALUES ('c10t', 'acct', 'acc', 'c10.acc_t', 'code');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (8201, 'c10t', 'gold demo', 'demo', 30);
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (8201, 'acct.tier', '=', '{gold}');
INSERT INTO leadscore.fit_rule (id, model, name, points, multiply_by) VALUES (8202, 'c10t', 'per 1000 revenue', 0.001, 'acct.revenue');
CREATE FUNCTION c10.st_t(m text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(format('%s:%s/%s', lead_id, trim_scale(fit_score), trim_scale(engagement_score)),
                               ' ' ORDER BY lead_id), '')
      FROM leadscore.lead_score WHERE model = m $$;
INSERT INTO c10.acts_t VALUES ('x1', 'demo', now() - interval '1 day'), ('x2', 'demo', now() - interval '1 day'),
                              ('x3', 'demo', now() - interval '1 day');
-- x1: 50 / 30; x2: 1 / 0 (silver); x3: 0 / 0.
SELECT is(c10.st_t('c10t'), 'x1:50/30 x2:1/0 x3:0/0', 'text keys: relation attributes in activity and fit rules');
UPDATE c10.acc_t SET tier = 'gold', revenue = 2000 WHERE code = 'A-2';
SELECT is(c10.st_t('c10t'), 'x1:50/30 x2:2/30 x3:0/0', 'text keys: related row update');
-- A-1 renamed: x1's reference dangles (0 / 0).
UPDATE c10.acc_t SET code = 'A-9' WHERE code = 'A-1';
SELECT is(c10.st_t('c10t'), 'x1:0/0 x2:2/30 x3:0/0', 'text keys: related key change leaves the old reference dangling');
UPDATE c10.leads_t SET acc = 'A-9' WHERE id = 'x1';
SELECT is(c10.st_t('c10t'), 'x1:50/30 x2:2/30 x3:0/0', 'text keys: lead follows the new key');
SELECT is((SELECT count(*) FROM leadscore.lead_score s WHERE s.model = 'c10t'
            AND s.score IS DISTINCT FROM leadscore.score('c10t', s.lead_id, s.scored_at)), 0::bigint,
          'text keys: exact');

-- An activity's lead row is read by primary-key lookups when its tables allow it (c10t), by the
-- lead-row query otherwise (c10k: neither the lead key nor the related key is a primary key,
-- only unique); both see what the transaction (this file is one) changed before the insert.
UPDATE c10.acc_t SET tier = 'silver' WHERE code = 'A-2';
INSERT INTO c10.acts_t VALUES ('x2', 'demo', now() - interval '1 hour');
SELECT is(c10.st_t('c10t'), 'x1:50/30 x2:2/0 x3:0/0', 'key lookups: a related row changed earlier in the transaction');
UPDATE c10.leads_t SET acc = 'A-9' WHERE id = 'x3';
INSERT INTO c10.acts_t VALUES ('x3', 'demo', now() - interval '1 hour');
SELECT is(c10.st_t('c10t'), 'x1:50/30 x2:2/0 x3:50/60', 'key lookups: a lead row changed earlier in the transaction');
INSERT INTO c10.acc_t VALUES ('A-3', 3000, 'gold');
INSERT INTO c10.leads_t VALUES ('x4', 'CEO', 'A-3');
INSERT INTO c10.acts_t VALUES ('x4', 'demo', now() - interval '1 hour'), ('x5', 'demo', now() - interval '1 hour');
SELECT is(c10.st_t('c10t'), 'x1:50/30 x2:2/0 x3:50/60 x4:3/30', 'key lookups: rows inserted earlier in the transaction (x5 has no lead row)');
CREATE TABLE c10.acc_k (code text UNIQUE, tier text);
CREATE TABLE c10.leads_k (n serial PRIMARY KEY, id text UNIQUE NOT NULL, acc text);
CREATE TABLE c10.acts_k (lead_id text, type text, at timestamptz);
INSERT INTO c10.acc_k VALUES ('K-1', 'gold'), ('K-2', 'silver');
INSERT INTO c10.leads_k (id, acc) VALUES ('k1', 'K-1'), ('k2', 'K-2');
INSERT INTO leadscore.model (name) VALUES ('c10k');
SELECT lives_ok($$SELECT leadscore.track('c10k', 'c10.acts_k', 'lead_id', 'type', 'at', 'c10.leads_k', 'id')$$,
                'track() a lead key that is not the primary key');
INSERT INTO leadscore.relation VALUES ('c10k', 'acc', 'acc', 'c10.acc_k', 'code');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (8401, 'c10k', 'gold demo', 'demo', 30);
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (8401, 'acc.tier', '=', '{gold}');
UPDATE c10.acc_k SET tier = 'gold' WHERE code = 'K-2';
INSERT INTO c10.leads_k (id, acc) VALUES ('k3', 'K-1');
INSERT INTO c10.acts_k VALUES ('k1', 'demo', now() - interval '1 day'), ('k2', 'demo', now() - interval '1 day'),
                              ('k3', 'demo', now() - interval '1 day'), ('k4', 'demo', now() - interval '1 day');
INSERT INTO c10.acts_k VALUES ('k2', 'demo', now() - interval '1 hour');
SELECT is(c10.st_t('c10k'), 'k1:0/30 k2:0/60 k3:0/30', 'the lead-row query: same results in the same cases');
SELECT is((SELECT count(*) FROM leadscore.lead_score s WHERE s.model IN ('c10t', 'c10k')
            AND s.score IS DISTINCT FROM leadscore.score(s.model, s.lead_id, s.scored_at)), 0::bigint,
          'key lookups and the lead-row query: exact');

-- uuid lead keys and uuid relation keys.
CREATE TABLE c10.acc_u (id uuid PRIMARY KEY, revenue numeric);
CREATE TABLE c10.leads_u (id uuid PRIMARY KEY, acc uuid);
CREATE TABLE c10.acts_u (lead_id uuid, type text, at timestamptz);
INSERT INTO c10.acc_u VALUES ('a0000000-0000-0000-0000-000000000001', 5000), ('a0000000-0000-0000-0000-000000000002', 50);
INSERT INTO c10.leads_u VALUES ('00000000-0000-0000-0000-000000000001', 'a0000000-0000-0000-0000-000000000001'),
                               ('00000000-0000-0000-0000-000000000002', 'a0000000-0000-0000-0000-000000000002');
INSERT INTO leadscore.model (name) VALUES ('c10u');
SELECT lives_ok($$SELECT leadscore.track('c10u', 'c10.acts_u', 'lead_id', 'type', 'at', 'c10.leads_u', 'id')$$, 'track() uuid keys');
INSERT INTO leadscore.relation VALUES ('c10u', 'acc', 'acc', 'c10.acc_u', 'id');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (8301, 'c10u', 'demo at 100+', 'demo', 10);
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (8301, 'acc.revenue', '>', '{100}');
INSERT INTO leadscore.fit_rule (id, model, name, points) VALUES (8302, 'c10u', 'rich', 5);
INSERT INTO leadscore.fit_condition (rule_id, attribute, op, value) VALUES (8302, 'acc.revenue', '>=', '{1000}');
INSERT INTO c10.acts_u VALUES ('00000000-0000-0000-0000-000000000001', 'demo', now() - interval '1 day'),
                              ('00000000-0000-0000-0000-000000000002', 'demo', now() - interval '1 day');
-- u1: 5 / 10; u2: 0 / 0. Then account 2 to 500: u2 0 / 10; account 1 deleted: u1 0 / 0.
SELECT is(c10.st_t('c10u'), '00000000-0000-0000-0000-000000000001:5/10 00000000-0000-0000-0000-000000000002:0/0',
          'uuid keys: relation conditions');
UPDATE c10.acc_u SET revenue = 500 WHERE id = 'a0000000-0000-0000-0000-000000000002';
DELETE FROM c10.acc_u WHERE id = 'a0000000-0000-0000-0000-000000000001';
SELECT is(c10.st_t('c10u'), '00000000-0000-0000-0000-000000000001:0/0 00000000-0000-0000-0000-000000000002:0/10',
          'uuid keys: related UPDATE and DELETE');
SELECT is((SELECT count(*) FROM leadscore.lead_score s WHERE s.model = 'c10u'
            AND s.score IS DISTINCT FROM leadscore.score('c10u', s.lead_id::uuid, s.scored_at)), 0::bigint,
          'uuid keys: exact');

-- A declaratively partitioned relation target (two partitions). Lead 1 -> account 1 (5000),
-- lead 2 -> account 500 (10); fit rule "big" +5 when acc.revenue >= 1000.
CREATE TABLE c10.acc_p (id int PRIMARY KEY, revenue numeric) PARTITION BY RANGE (id);
CREATE TABLE c10.acc_p1 PARTITION OF c10.acc_p FOR VALUES FROM (0) TO (100);
CREATE TABLE c10.acc_p2 PARTITION OF c10.acc_p FOR VALUES FROM (100) TO (1000);
CREATE TABLE c10.leads_p (id int PRIMARY KEY, acc int, partner int);
CREATE TABLE c10.acts_p (lead_id int, type text, at timestamptz);
CREATE INDEX ON c10.acts_p (lead_id);
INSERT INTO c10.acc_p VALUES (1, 5000), (500, 10);
INSERT INTO c10.leads_p VALUES (1, 1, 500), (2, 500, NULL);
INSERT INTO leadscore.model (name) VALUES ('c10p');
SELECT lives_ok($$SELECT leadscore.track('c10p', 'c10.acts_p', 'lead_id', 'type', 'at', 'c10.leads_p', 'id')$$, 'track() partitioned target model');
INSERT INTO leadscore.relation VALUES ('c10p', 'acc', 'acc', 'c10.acc_p', 'id');
INSERT INTO leadscore.fit_rule (id, model, name, points) VALUES (8401, 'c10p', 'big', 5);
INSERT INTO leadscore.fit_condition (rule_id, attribute, op, value) VALUES (8401, 'acc.revenue', '>=', '{1000}');
SELECT is(c10.st_t('c10p'), '1:5/0 2:0/0', 'partitioned target: related attributes');
-- account 500 to 2000: lead 2 +5; account 1 moves to the other partition as 200: lead 1 dangles.
UPDATE c10.acc_p SET revenue = 2000 WHERE id = 500;
UPDATE c10.acc_p SET id = 200 WHERE id = 1;
SELECT is(c10.st_t('c10p'), '1:0/0 2:5/0', 'partitioned target: UPDATE, cross-partition key change');
SELECT is((SELECT count(*) FROM leadscore.lead_score s WHERE s.model = 'c10p'
            AND s.score IS DISTINCT FROM leadscore.score('c10p', s.lead_id::int, s.scored_at)), 0::bigint,
          'partitioned target: exact');
-- Fails at the time of writing: re-installing the relation triggers drops the clones of the row
-- trigger on the partitions after the parent's (ERROR: trigger "leadscore_<state>_rel_<hash>_row"
-- for table "acc_p1" does not exist), so no relation of the model can be added, changed or
-- removed, and untrack() fails.
SELECT lives_ok($$INSERT INTO leadscore.relation VALUES ('c10p', 'partner', 'partner', 'c10.acc_p', 'id')$$,
                'partitioned target: another relation can be added');
SELECT lives_ok($$SELECT leadscore.untrack('c10p')$$, 'partitioned target: untrack() works');

SELECT * FROM finish();
ROLLBACK;
