-- Condition groups (AND within a group, OR across), lead and related-record attributes, and
-- multiply_by: the SQL surface, the errors bad input gets when written, and live scores.
SET timezone = 'UTC';
\set VERBOSITY terse
CREATE SCHEMA cg;
CREATE TABLE cg.account (id bigint PRIMARY KEY, name text, revenue numeric, employees integer, industry text);
CREATE TABLE cg.leads (id int PRIMARY KEY, title text, email text, account_id bigint, seats smallint);
CREATE TABLE cg.acts (lead_id int, type text, url text, amount numeric, at timestamptz);
CREATE INDEX ON cg.acts (lead_id);
CREATE TABLE cg.not_unique (code text, label text);
INSERT INTO cg.account VALUES (1, 'Big', 5000000, 1200, 'software'), (2, 'Small', 200000, 12, 'retail');
INSERT INTO cg.leads VALUES (1, 'CEO', 'ann@big.example', 1, 3), (2, 'CEO', 'bob@small.example', 2, NULL),
    (3, 'Engineer', 'cy@big.example', 1, 10), (4, 'CFO', 'di@nowhere.example', 99, 1), (5, 'CEO', 'ed@x.example', NULL, 2);
INSERT INTO leadscore.model (name) VALUES ('cg');
SELECT leadscore.track('cg', 'cg.acts', 'lead_id', 'type', 'at', 'cg.leads', 'id');

-- relations: bad ones are rejected when written, naming the relation and the problem
INSERT INTO leadscore.relation VALUES ('cg', 'lead', 'account_id', 'cg.account', 'id');
INSERT INTO leadscore.relation VALUES ('cg', 'acc.x', 'account_id', 'cg.account', 'id');
INSERT INTO leadscore.relation VALUES ('cg', 'account', 'account_id', 'cg.account', 'nope');
INSERT INTO leadscore.relation VALUES ('cg', 'account', 'no_column', 'cg.account', 'id');
INSERT INTO leadscore.relation VALUES ('cg', 'account', 'title', 'cg.account', 'id');
INSERT INTO leadscore.relation VALUES ('cg', 'code', 'title', 'cg.not_unique', 'code');
INSERT INTO leadscore.relation VALUES ('nosuch', 'account', 'account_id', 'cg.account', 'id');
INSERT INTO leadscore.relation VALUES ('cg', 'account', 'account_id', 'cg.account', 'id');

-- the seed: a CEO of a business with 1M+ revenue who attended a webinar
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (7001, 'cg', 'webinar by a big-company CEO', 'webinar', 50);
INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value) VALUES
    (7001, 1, 'lead.title', 'in', '{CEO,Founder}'), (7001, 1, 'account.revenue', '>=', '{1000000}');
-- pricing page viewed by a C-level lead (inline activity condition AND a lead condition)
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, attribute, op, value, points) VALUES
    (7002, 'cg', 'pricing by C-level', 'page', 'url', '=', '{/pricing}', 20);
INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value) VALUES
    (7002, 1, 'lead.title', '~', '{"^C[EFT]O$"}');
-- OR across groups: a big account (group 1) or a software company (group 2)
INSERT INTO leadscore.fit_rule (id, model, name, points) VALUES (7003, 'cg', 'target account', 15);
INSERT INTO leadscore.fit_condition (rule_id, grp, attribute, op, value) VALUES
    (7003, 1, 'account.employees', '>=', '{1000}'), (7003, 1, 'account.revenue', '>', '{1000000}'),
    (7003, 2, 'account.industry', '=', '{retail}'), (7003, 2, 'title', '=', '{CEO}');
-- 1 point per 100 employees of the lead's account
INSERT INTO leadscore.fit_rule (id, model, name, points, multiply_by) VALUES (7004, 'cg', 'per 100 employees', 0.01, 'account.employees');
-- points per seat on the lead's own row, and per purchase amount on the activity
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, points, multiply_by) VALUES
    (7005, 'cg', 'seats', 'title', 'is not null', 2, 'seats');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, multiply_by, max_points) VALUES
    (7006, 'cg', 'purchase amount', 'purchase', 0.1, 'amount', 100);

-- bad conditions and multipliers are rejected when written, naming rule, attribute and problem
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (9999, 'lead.title', '=', '{CEO}');
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (7001, 'company.revenue', '>', '{1}');
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (7001, 'account.turnover', '>', '{1}');
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (7001, 'lead.seniority', '=', '{x}');
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (7001, 'account.revenue', '>', '{lots}');
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (7001, 'url', 'between', '{a}');
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (7001, 'url', 'sounds like', '{a}');
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (7001, 'referrer', '=', '{x}');
INSERT INTO leadscore.fit_condition (rule_id, attribute, op, value) VALUES (7003, 'account.employees', '~', '{[}');
INSERT INTO leadscore.fit_condition (rule_id, attribute, op, value) VALUES (7003, 'account.name', 'in list', '{nosuchlist}');
INSERT INTO leadscore.fit_rule (id, model, name, points, multiply_by) VALUES (7011, 'cg', 'per title', 1, 'title');
INSERT INTO leadscore.fit_rule (id, model, name, points, multiply_by) VALUES (7012, 'cg', 'per nothing', 1, 'account.nothing');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, multiply_by) VALUES (7013, 'cg', 'per url', 'page', 1, 'url');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, multiply_by) VALUES (7014, 'cg', 'per seat', 'page', 1, 'lead.seats');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, multiply_by, min_count) VALUES (7015, 'cg', 'per 2', 'page', 1, 'amount', 2);
UPDATE leadscore.fit_rule SET multiply_by = 'email' WHERE id = 7005;
SELECT count(*) AS conditions, (SELECT count(*) FROM leadscore.fit_rule WHERE model = 'cg') AS fit_rules,
       (SELECT multiply_by FROM leadscore.fit_rule WHERE id = 7005) AS seats_multiplier
  FROM leadscore.activity_condition;

INSERT INTO cg.acts VALUES
    (1, 'webinar', NULL, NULL, '2026-03-01'), (2, 'webinar', NULL, NULL, '2026-03-01'),
    (3, 'webinar', NULL, NULL, '2026-03-01'), (4, 'webinar', NULL, NULL, '2026-03-01'),
    (1, 'page', '/pricing', NULL, '2026-03-02'), (3, 'page', '/pricing', NULL, '2026-03-02'),
    (4, 'page', '/pricing', NULL, '2026-03-02'), (7, 'page', '/pricing', NULL, '2026-03-02'),
    (2, 'purchase', NULL, 120.55, '2026-03-03'), (2, 'purchase', NULL, NULL, '2026-03-04'),
    (2, 'purchase', NULL, 0.000005, '2026-03-05');
SELECT lead_id, score, fit_score, engagement_score FROM leadscore.lead_score WHERE model = 'cg' ORDER BY lead_id;
SELECT l AS lead, rule, family, occurrences, points FROM generate_series(1, 5) l,
       LATERAL leadscore.explain('cg', l, '2026-04-01') ORDER BY l, family, rule;

-- a lead's row changes: its fit and the activity rules that read it, in the same statement
UPDATE cg.leads SET title = 'CTO' WHERE id = 3;
SELECT lead_id, score, fit_score, engagement_score FROM leadscore.lead_score WHERE model = 'cg' AND lead_id = '3';
-- the related row changes: every lead that refers to it is rescored
UPDATE cg.account SET revenue = 900000 WHERE id = 1;
SELECT lead_id, score, fit_score, engagement_score FROM leadscore.lead_score WHERE model = 'cg' ORDER BY lead_id;
-- an unrelated column of the account: nothing to do; a dangling reference reads as NULL
UPDATE cg.account SET name = 'Big Inc' WHERE id = 1;
INSERT INTO cg.account VALUES (99, 'Late', 2000000, 5000, 'software');
SELECT lead_id, score, fit_score, engagement_score FROM leadscore.lead_score WHERE model = 'cg' AND lead_id = '4';
DELETE FROM cg.account WHERE id = 99;
SELECT lead_id, score, fit_score, engagement_score FROM leadscore.lead_score WHERE model = 'cg' AND lead_id = '4';
-- moving a lead to another account
UPDATE cg.leads SET account_id = 2 WHERE id = 1;
SELECT lead_id, score, fit_score, engagement_score FROM leadscore.lead_score WHERE model = 'cg' AND lead_id = '1';
TRUNCATE cg.account CASCADE;
INSERT INTO cg.account VALUES (1, 'Big', 5000000, 1200, 'software'), (2, 'Small', 200000, 12, 'retail');

-- stored == recomputed, for every lead; the aggregate agrees with the stored engagement
SELECT count(*) AS mismatches FROM leadscore.lead_score s
 WHERE s.model = 'cg' AND s.score <> leadscore.score('cg', s.lead_id::int, s.scored_at);
SELECT count(*) AS aggregate_mismatches FROM (
    SELECT a.lead_id, leadscore.engagement_score('cg', a, now()) AS e FROM cg.acts a GROUP BY a.lead_id) g
  JOIN leadscore.lead_score s ON s.model = 'cg' AND s.lead_id = g.lead_id::text
 WHERE s.engagement_score <> g.e;

-- rule edits: a condition edit, a group removed, a relation removed while rules use it
UPDATE leadscore.activity_condition SET value = '{CEO,CTO}' WHERE rule_id = 7001 AND attribute = 'lead.title';
DELETE FROM leadscore.fit_condition WHERE rule_id = 7003 AND grp = 2;
SELECT lead_id, score, fit_score, engagement_score FROM leadscore.lead_score WHERE model = 'cg' ORDER BY lead_id;
DELETE FROM leadscore.relation WHERE model = 'cg' AND name = 'account';
SELECT count(*) AS relations FROM leadscore.relation;
-- deleting a rule deletes its conditions
DELETE FROM leadscore.activity_rule WHERE id = 7001;
SELECT count(*) AS conditions_of_7001 FROM leadscore.activity_condition WHERE rule_id = 7001;

-- points x value is rounded once, in numeric: 3 x 0.0000005 = 0.0000015 -> 0.000002
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, multiply_by) VALUES (7020, 'cg', 'tiny', 'tiny', 3, 'amount');
INSERT INTO cg.acts VALUES (1, 'tiny', NULL, 0.0000005, '2026-03-06');
SELECT rule, occurrences, points FROM leadscore.explain('cg', 1, '2026-04-01') WHERE rule = 'tiny';

-- a model whose activity rules read the lead needs a leads table
INSERT INTO leadscore.model (name) VALUES ('cg_noleads');
SELECT leadscore.track('cg_noleads', 'cg.acts', 'lead_id', 'type', 'at');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (7101, 'cg_noleads', 'x', 'page', 1);
INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value) VALUES (7101, 'lead.title', '=', '{CEO}');
SELECT leadscore.untrack('cg_noleads');
SELECT leadscore.untrack('cg');
SELECT count(*) AS relation_triggers_left FROM pg_trigger WHERE tgname LIKE 'leadscore%rel%';
