-- Roles and rights: the reader reads, the rule administrator edits rules (condition rows and
-- relations included, with their identity ids), the CRM writer only writes its own tables (a
-- related account row included, rescoring its leads); nobody else gets in. A malicious object earlier on the search_path
-- cannot hijack a leadscore trigger or function.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SELECT plan(51);

CREATE SCHEMA crm_r;
CREATE TABLE crm_r.leads (id int PRIMARY KEY, title text, email text, account_id int);
CREATE TABLE crm_r.account (id int PRIMARY KEY, revenue numeric);
INSERT INTO crm_r.account VALUES (1, 5000000), (2, 10);
CREATE TABLE crm_r.acts (lead_id int, type text, at timestamptz);
CREATE INDEX ON crm_r.acts (lead_id);
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('rights', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('rights', 'demo', 'demo', 50);
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES
    ('rights', 'ceo', 'title', '=', '{CEO}', 20),
    ('rights', 'free mail', 'email', 'domain in list', '{free_email_domains}', -10);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('rights', 'MQL', 60);
INSERT INTO crm_r.leads VALUES (1, 'CEO', 'a@acme.com', 1);
SELECT leadscore.track('rights', 'crm_r.acts', 'lead_id', 'type', 'at', 'crm_r.leads', 'id');

CREATE ROLE lsr_reader LOGIN;
CREATE ROLE lsr_admin LOGIN;
CREATE ROLE lsr_writer LOGIN;
CREATE ROLE lsr_nobody LOGIN;
GRANT leadscore_reader TO lsr_reader;
GRANT leadscore_admin TO lsr_admin;
GRANT USAGE ON SCHEMA crm_r TO lsr_writer, lsr_reader, lsr_admin, lsr_nobody;
GRANT SELECT, INSERT, UPDATE, DELETE ON crm_r.leads, crm_r.acts, crm_r.account TO lsr_writer;
GRANT SELECT ON crm_r.leads, crm_r.acts, crm_r.account TO lsr_reader, lsr_admin;

-- The CRM writer: writes activities and leads, scored; nothing of leadscore's.
SET LOCAL ROLE lsr_writer;
SELECT lives_ok($$INSERT INTO crm_r.acts VALUES (1, 'demo', now())$$, 'writer: inserts an activity');
SELECT lives_ok($$INSERT INTO crm_r.leads VALUES (2, 'Engineer', 'b@gmail.com')$$, 'writer: inserts a lead');
SELECT throws_ok($$SELECT * FROM leadscore.lead_score$$, '42501', NULL, 'writer: cannot read scores');
SELECT throws_ok($$UPDATE leadscore.activity_rule SET points = 1$$, '42501', NULL, 'writer: cannot edit rules');
SELECT throws_ok($$SELECT leadscore.rescore('rights')$$, '42501', NULL, 'writer: cannot rescore');
RESET ROLE;
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'rights' AND lead_id = '1'), 70::numeric,
          'the writer''s activity was scored');

-- The reader: scores, explanations, stage changes, funnel, rules; no writes.
SET LOCAL ROLE lsr_reader;
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'rights' AND lead_id = '1'), 70::numeric,
          'reader: reads stored scores');
SELECT is((SELECT count(*)::int FROM leadscore.explain('rights', 1)), 2, 'reader: explains a score');
SELECT is(leadscore.score('rights', 2), 0::numeric, 'reader: computes a score from scratch');
SELECT lives_ok($$SELECT * FROM leadscore.stage_change, leadscore.funnel$$, 'reader: reads stage changes and the funnel');
SELECT lives_ok($$SELECT * FROM leadscore.activity_rule$$, 'reader: reads the rules');
SELECT throws_ok($$INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('rights', 'x', 'x', 1)$$,
                 '42501', NULL, 'reader: cannot add rules');
SELECT throws_ok($$SELECT leadscore.refresh('rights')$$, '42501', NULL, 'reader: cannot refresh');
SELECT throws_ok($$DELETE FROM leadscore.stage_history$$, '42501', NULL, 'reader: cannot touch history');
SELECT lives_ok($$SELECT * FROM leadscore.relation, leadscore.fit_condition, leadscore.activity_condition$$,
                'reader: reads relations and condition rows');
SELECT throws_ok($$INSERT INTO leadscore.relation VALUES ('rights', 'account', 'account_id', 'crm_r.account', 'id')$$,
                 '42501', NULL, 'reader: cannot add relations');
SELECT throws_ok($$UPDATE leadscore.relation SET target_key = 'id'$$, '42501', NULL, 'reader: cannot edit relations');
SELECT throws_ok($$DELETE FROM leadscore.relation$$, '42501', NULL, 'reader: cannot delete relations');
SELECT throws_ok($$INSERT INTO leadscore.fit_condition (rule_id, attribute, op, value)
                   SELECT id, 'title', '=', '{CEO}' FROM leadscore.fit_rule WHERE model = 'rights' AND name = 'ceo'$$,
                 '42501', NULL, 'reader: cannot add fit conditions');
SELECT throws_ok($$UPDATE leadscore.fit_condition SET grp = 2$$, '42501', NULL, 'reader: cannot edit fit conditions');
SELECT throws_ok($$DELETE FROM leadscore.fit_condition$$, '42501', NULL, 'reader: cannot delete fit conditions');
SELECT throws_ok($$INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value)
                   SELECT id, 'lead.title', '=', '{CEO}' FROM leadscore.activity_rule WHERE model = 'rights' AND name = 'demo'$$,
                 '42501', NULL, 'reader: cannot add activity conditions');
SELECT throws_ok($$UPDATE leadscore.activity_condition SET grp = 2$$, '42501', NULL, 'reader: cannot edit activity conditions');
SELECT throws_ok($$DELETE FROM leadscore.activity_condition$$, '42501', NULL, 'reader: cannot delete activity conditions');
SELECT throws_ok($$SELECT nextval('leadscore.fit_condition_id_seq')$$, '42501', NULL, 'reader: cannot draw condition ids');
RESET ROLE;

-- The rule administrator: edits rules (the model is rescored at once), refreshes; cannot
-- write stored state or history, cannot attach models to tables.
SET LOCAL ROLE lsr_admin;
SELECT lives_ok($$UPDATE leadscore.activity_rule SET points = 60 WHERE model = 'rights' AND name = 'demo'$$,
                'admin: edits a rule');
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'rights' AND lead_id = '1'), 80::numeric,
          'admin: the edit rescored the model');
SELECT lives_ok($$INSERT INTO leadscore.list_entry (list, value) VALUES ('rights_list', 'x.example')$$, 'admin: edits lists');
SELECT lives_ok($$SELECT leadscore.refresh('rights')$$, 'admin: refreshes');
SELECT throws_ok($$UPDATE leadscore.lead_state SET score = 0$$, '42501', NULL, 'admin: cannot write stored scores');
SELECT throws_ok($$SELECT leadscore.untrack('rights')$$, '42501', NULL, 'admin: cannot untrack');
-- Relations and condition rows: ids drawn from their identity sequences, or given.
SELECT lives_ok($$INSERT INTO leadscore.relation (model, name, lead_column, target, target_key)
                  VALUES ('rights', 'account', 'account_id', 'crm_r.account', 'id')$$, 'admin: adds a relation');
SELECT lives_ok($$INSERT INTO leadscore.fit_condition (rule_id, attribute, op, value)
                  SELECT id, 'account.revenue', '>=', '{1000000}' FROM leadscore.fit_rule WHERE model = 'rights' AND name = 'ceo'$$,
                'admin: adds a fit condition (identity id)');
SELECT lives_ok($$INSERT INTO leadscore.activity_condition (rule_id, attribute, op, value)
                  SELECT id, 'lead.title', '=', '{CEO}' FROM leadscore.activity_rule WHERE model = 'rights' AND name = 'demo'$$,
                'admin: adds an activity condition (identity id)');
SELECT lives_ok($$INSERT INTO leadscore.activity_condition (id, rule_id, grp, attribute, op, value)
                  SELECT 990001, id, 2, 'account.revenue', '<', '{0}' FROM leadscore.activity_rule WHERE model = 'rights' AND name = 'demo'$$,
                'admin: adds an activity condition with an id of its own');
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'rights' AND lead_id = '1'), 80::numeric,
          'admin: lead 1 (CEO of a 5M account) still matches both rules');
RESET ROLE;
-- The CRM writer changes the related account: its leads are rescored, with no leadscore rights.
SET LOCAL ROLE lsr_writer;
SELECT lives_ok($$UPDATE crm_r.account SET revenue = 10 WHERE id = 1$$, 'writer: updates a related account');
RESET ROLE;
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'rights' AND lead_id = '1'), 60::numeric,
          'the account update rescored its lead: the CEO rule''s account condition no longer holds');
SET LOCAL ROLE lsr_admin;
SELECT lives_ok($$UPDATE leadscore.fit_condition SET value = '{5}'$$, 'admin: edits a fit condition');
SELECT lives_ok($$UPDATE leadscore.activity_condition SET value = '{Engineer}' WHERE grp = 1$$, 'admin: edits an activity condition');
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'rights' AND lead_id = '1'), 20::numeric,
          'admin: the condition edits rescored the model (CEO 20 again, demo no longer)');
SELECT lives_ok($$UPDATE leadscore.relation SET target_key = 'id' WHERE model = 'rights'$$, 'admin: edits a relation');
SELECT lives_ok($$DELETE FROM leadscore.activity_condition WHERE rule_id IN (SELECT id FROM leadscore.activity_rule WHERE model = 'rights')$$,
                'admin: deletes activity conditions');
SELECT lives_ok($$DELETE FROM leadscore.fit_condition WHERE rule_id IN (SELECT id FROM leadscore.fit_rule WHERE model = 'rights')$$,
                'admin: deletes fit conditions');
SELECT lives_ok($$DELETE FROM leadscore.relation WHERE model = 'rights'$$, 'admin: deletes the relation');
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'rights' AND lead_id = '1'), 80::numeric,
          'admin: without conditions the lead scores as before (CEO 20, demo 60)');
RESET ROLE;

-- Someone with no role: nothing.
SET LOCAL ROLE lsr_nobody;
SELECT throws_ok($$SELECT * FROM leadscore.lead_score$$, '42501', NULL, 'nobody: cannot read scores');
RESET ROLE;

-- Hijack attempt: a user-owned schema first on the search_path with a text = operator and a
-- lower() that record being called. The triggers and SECURITY DEFINER functions pin their
-- search_path, so nothing of the attacker's runs.
CREATE SCHEMA evil AUTHORIZATION lsr_writer;
CREATE TABLE evil.calls (what text);
GRANT INSERT ON evil.calls TO PUBLIC;
CREATE FUNCTION evil.texteq(text, text) RETURNS boolean LANGUAGE sql AS
    $$ INSERT INTO evil.calls VALUES ('texteq') RETURNING true $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS $$ INSERT INTO evil.calls VALUES ('lower') RETURNING $1 $$;
SET LOCAL search_path = evil, pg_catalog, public;
INSERT INTO crm_r.acts VALUES (2, 'demo', now());
INSERT INTO crm_r.leads VALUES (3, 'CEO', 'c@gmail.com');
UPDATE leadscore.fit_rule SET points = 21 WHERE model OPERATOR(pg_catalog.=) 'rights' AND name OPERATOR(pg_catalog.=) 'ceo';
SELECT leadscore.refresh('rights');
-- The triggers run with the writer's rights and switch to their owner only for their SQL:
-- the writer's own attacker path changes nothing, and the writer is the writer again after.
-- (Assertions wait for a clean search_path: the attacker's = would fool pgTAP itself.)
SET LOCAL ROLE lsr_writer;
INSERT INTO crm_r.leads VALUES (4, 'CEO', 'd@acme.com');
INSERT INTO crm_r.acts VALUES (4, 'demo', now());
INSERT INTO crm_r.acts VALUES (2, 'demo', now());
CREATE TEMP TABLE after_triggers AS SELECT current_user::text AS who, current_setting('search_path') AS path;
RESET ROLE;

RESET search_path;
SELECT is((SELECT string_agg(what, ',') FROM evil.calls), NULL, 'no attacker object ran in triggers or leadscore functions');
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'rights' AND lead_id = '3'), 11::numeric,
          'and the new lead was scored normally (CEO 21, free mail -10)');
SELECT is((SELECT who || ' / ' || path FROM after_triggers), 'lsr_writer / evil, pg_catalog, public',
          'after the triggers the writer is the writer again, with its own search_path');
SELECT is((SELECT score || ' ' || stage || ' / ' || (SELECT score FROM leadscore.lead_score WHERE model = 'rights' AND lead_id = '2')
             FROM leadscore.lead_score WHERE model = 'rights' AND lead_id = '4'), '81 MQL / 100',
          'the writer''s activities were scored: a new lead staged (CEO 21, demo 60), a known one capped at the maximum');

SELECT * FROM finish();
ROLLBACK;
