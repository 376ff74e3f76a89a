-- The CRM's writer role needs no rights on leadscore's internals: the triggers run as
-- the extension owner. A role without rights cannot change rules or read internals.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SELECT plan(12);

CREATE SCHEMA crm_roles;
CREATE TABLE crm_roles.leads (id int PRIMARY KEY, title text);
CREATE TABLE crm_roles.activities (lead_id int, type text, occurred_at timestamptz);
CREATE INDEX ON crm_roles.activities (lead_id);
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('roles_m', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('roles_m', 'demo', 'demo_request', 50);
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES ('roles_m', 'ceo', 'title', '=', '{CEO}', 20);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('roles_m', 'MQL', 60);
INSERT INTO crm_roles.leads VALUES (1, 'CEO');
SELECT is(leadscore.track('roles_m', 'crm_roles.activities', 'lead_id', 'type', 'occurred_at', 'crm_roles.leads', 'id'),
          1::bigint, 'track() scores the one existing lead');

CREATE ROLE leadscore_test_writer;
GRANT USAGE ON SCHEMA crm_roles TO leadscore_test_writer;
GRANT INSERT, UPDATE, DELETE, SELECT ON crm_roles.activities, crm_roles.leads TO leadscore_test_writer;

SET LOCAL ROLE leadscore_test_writer;
SELECT lives_ok(
    $$INSERT INTO crm_roles.activities VALUES (1, 'demo_request', now())$$,
    'the CRM writer inserts an activity without any grant on leadscore');
SELECT lives_ok(
    $$INSERT INTO crm_roles.leads VALUES (2, 'CEO')$$,
    'the CRM writer inserts a lead without any grant on leadscore');
SELECT throws_ok(
    $$INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('roles_m', 'x', 'x', 1)$$,
    '42501', NULL, 'the CRM writer cannot write rules');
SELECT throws_ok(
    $$SELECT * FROM leadscore.lead_state$$,
    '42501', NULL, 'the CRM writer cannot read leadscore internals');
SELECT throws_ok(
    $$SELECT leadscore.rescore('roles_m')$$,
    '42501', NULL, 'the CRM writer cannot run rescore');
SELECT throws_ok(
    $$INSERT INTO leadscore.grade (model, axis, name, min_value) VALUES ('roles_m', 'fit', 'A', 10)$$,
    '42501', NULL, 'the CRM writer cannot write grades');
SELECT throws_ok(
    $$SELECT leadscore.set_replica('roles_m', false)$$,
    '42501', NULL, 'the CRM writer cannot turn off scoring of replicated changes');
RESET ROLE;

SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'roles_m' AND lead_id = '1'), 70::numeric,
          'the writer''s insert was scored: fit 20 + demo request 50');
SELECT is((SELECT stage FROM leadscore.lead_score WHERE model = 'roles_m' AND lead_id = '1'), 'MQL',
          'and the stage moved to MQL');
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'roles_m' AND lead_id = '2'), 20::numeric,
          'the writer''s new lead was scored with its fit');
SELECT is((SELECT count(*)::int FROM leadscore.stage_change WHERE model = 'roles_m' AND lead_id = '1' AND to_stage = 'MQL'), 1,
          'the stage change was recorded');

SELECT * FROM finish();
ROLLBACK;
