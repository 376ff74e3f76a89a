-- Rule tables: models, activity rules, fit rules, stages, list entries and their validation.
-- Rule ids are given explicitly (10xx) so that error messages do not depend on other tests.
SET timezone = 'UTC';
CREATE SCHEMA rt;
CREATE TABLE rt.leads (
    id         int PRIMARY KEY,
    title      text,
    industry   text,
    employees  int,
    revenue    numeric,
    country    text,
    email      text,
    created_at timestamptz
);
CREATE TABLE rt.activities (
    id          bigserial PRIMARY KEY,
    lead_id     int,
    type        text,
    url         text,
    occurred_at timestamptz
);
CREATE INDEX ON rt.activities (lead_id);

-- ---------------------------------------------------------------------------
-- Models
-- ---------------------------------------------------------------------------
INSERT INTO leadscore.model (name, score_min, score_max, description)
VALUES ('rt_draft', 0, 100, 'untracked draft'),
       ('rt_live', NULL, NULL, 'tracked with a leads table'),
       ('rt_noleads', -50, 50, 'tracked without a leads table');
SELECT name, score_min, score_max, description FROM leadscore.model WHERE name LIKE 'rt\_%' ORDER BY name;
-- score_min above score_max
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('rt_bad', 10, 5);
-- bounds must be finite numbers with at most 6 decimal places
INSERT INTO leadscore.model (name, score_min) VALUES ('rt_bad', 'NaN');
INSERT INTO leadscore.model (name, score_max) VALUES ('rt_bad', 'Infinity');
INSERT INTO leadscore.model (name, score_max) VALUES ('rt_bad', 1.0000001);
-- empty name
INSERT INTO leadscore.model (name) VALUES ('');
-- duplicate name
INSERT INTO leadscore.model (name) VALUES ('rt_draft');
-- an update is validated too
UPDATE leadscore.model SET score_min = 200 WHERE name = 'rt_draft';
SELECT count(*) AS bad_models FROM leadscore.model WHERE name = 'rt_bad';

SELECT leadscore.track('rt_live', 'rt.activities', 'lead_id', 'type', 'occurred_at', 'rt.leads', 'id');
SELECT leadscore.track(model => 'rt_noleads', activities => 'rt.activities', lead_column => 'lead_id',
                       type_column => 'type', time_column => 'occurred_at');
-- track() errors
SELECT leadscore.track('rt_nosuch', 'rt.activities', 'lead_id', 'type', 'occurred_at');
SELECT leadscore.track('rt_live', 'rt.activities', 'lead_id', 'type', 'occurred_at');
SELECT leadscore.track('rt_draft', 'rt.activities', 'nosuch', 'type', 'occurred_at');
SELECT leadscore.track('rt_draft', 'rt.activities', 'lead_id', 'type', 'url');
SELECT leadscore.track('rt_draft', 'rt.activities', 'lead_id', 'type', 'occurred_at', 'rt.leads');
SELECT leadscore.track('rt_draft', 'rt.activities', 'lead_id', 'type', 'occurred_at', 'rt.leads', 'title');
SELECT model, activities, lead_column, type_column, time_column, leads, lead_key
  FROM leadscore.tracking WHERE model LIKE 'rt\_%' ORDER BY model;

-- ---------------------------------------------------------------------------
-- Activity rules
-- ---------------------------------------------------------------------------
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES
    (1001, 'rt_live', 'newsletter', 'newsletter', 10);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, attribute, op, value, points, once,
                                     max_count, max_points, expires_after, half_life, disqualify, enabled) VALUES
    (1002, 'rt_live', 'pricing page', 'page_view', 'url', '=', '{/pricing}', 15, false, 2, NULL, NULL, '30 days', false, true),
    (1003, 'rt_live', 'e-mail open', 'email_open', NULL, NULL, NULL, 2, false, NULL, 20, '3 months', NULL, false, true),
    (1004, 'rt_live', 'careers', 'page_view', 'url', 'LIKE', '{/careers%}', -10, true, NULL, NULL, NULL, NULL, false, true),
    (1005, 'rt_live', 'spam trap', 'page_view', 'url', '  Not   IN ', '{/a,/b,/c}', 1.5, false, NULL, NULL, NULL, NULL, false, false),
    (1006, 'rt_live', 'not pricing', 'page_view', 'url', '!=', '{/pricing}', 1.000000, false, NULL, NULL, NULL, NULL, false, true),
    (1007, 'rt_live', 'tiny', 'page_view', 'url', 'is not null', NULL, 0.000001, false, NULL, NULL, NULL, NULL, false, true),
    (1008, 'rt_live', 'no url', 'page_view', 'url', 'is null', '{}', -0.5, false, NULL, NULL, NULL, NULL, false, true);
SELECT id, name, activity_type, attribute, op, value, points, once, max_count, max_points, expires_after,
       half_life, disqualify, enabled
  FROM leadscore.activity_rule WHERE model = 'rt_live' ORDER BY id;

-- unknown model (the trigger names the rule)
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (1010, 'rt_nosuch', 'r', 'x', 1);
-- empty activity type
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (1011, 'rt_live', 'r', '', 1);
-- empty name
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (1012, 'rt_live', '', 'x', 1);
-- duplicate name within a model
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (1013, 'rt_live', 'newsletter', 'x', 1);
-- points: NULL, NaN, infinity, more than 6 decimal places, out of range
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (1014, 'rt_live', 'r', 'x', NULL);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (1015, 'rt_live', 'r', 'x', 'NaN');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (1016, 'rt_live', 'r', 'x', 'Infinity');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (1017, 'rt_live', 'r', 'x', '-Infinity');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (1018, 'rt_live', 'r', 'x', 0.1234567);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (1019, 'rt_live', 'r', 'x', 1e13);
-- max_points: NaN, too precise, zero, negative
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, max_points) VALUES (1020, 'rt_live', 'r', 'x', 1, 'NaN');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, max_points) VALUES (1021, 'rt_live', 'r', 'x', 1, 0.00000001);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, max_points) VALUES (1022, 'rt_live', 'r', 'x', 1, 0);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, max_points) VALUES (1023, 'rt_live', 'r', 'x', 1, -5);
-- max_count: zero, negative
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, max_count) VALUES (1024, 'rt_live', 'r', 'x', 1, 0);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, max_count) VALUES (1025, 'rt_live', 'r', 'x', 1, -1);
-- intervals: zero, negative, partly negative
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, expires_after) VALUES (1026, 'rt_live', 'r', 'x', 1, '0 days');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, expires_after) VALUES (1027, 'rt_live', 'r', 'x', 1, '-1 day');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, expires_after) VALUES (1028, 'rt_live', 'r', 'x', 1, '1 month -1 day');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, half_life) VALUES (1029, 'rt_live', 'r', 'x', 1, '0');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, half_life) VALUES (1030, 'rt_live', 'r', 'x', 1, '-2 hours');
-- expiry and decay together
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, expires_after, half_life) VALUES (1031, 'rt_live', 'r', 'x', 1, '3 months', '30 days');
-- condition without attribute, attribute without operator
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, op) VALUES (1032, 'rt_live', 'r', 'x', 1, '=');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, value) VALUES (1033, 'rt_live', 'r', 'x', 1, '{a}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute) VALUES (1034, 'rt_live', 'r', 'x', 1, 'url');
-- unknown operator
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1035, 'rt_live', 'r', 'x', 1, 'url', '==', '{a}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1036, 'rt_live', 'r', 'x', 1, 'url', 'contains', '{a}');
-- wrong number of values
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1037, 'rt_live', 'r', 'x', 1, 'url', '=', NULL);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1038, 'rt_live', 'r', 'x', 1, 'url', '=', '{}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1039, 'rt_live', 'r', 'x', 1, 'url', '=', '{a,b}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1040, 'rt_live', 'r', 'x', 1, 'url', 'between', '{a}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1041, 'rt_live', 'r', 'x', 1, 'url', 'between', '{a,b,c}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1042, 'rt_live', 'r', 'x', 1, 'url', 'in', '{}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1043, 'rt_live', 'r', 'x', 1, 'url', 'not in', NULL);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1044, 'rt_live', 'r', 'x', 1, 'url', 'is null', '{a}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1045, 'rt_live', 'r', 'x', 1, 'url', 'in list', '{}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1046, 'rt_live', 'r', 'x', 1, 'url', 'in list', '{a,b}');
-- NULL element
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1047, 'rt_live', 'r', 'x', 1, 'url', 'in', '{a,NULL}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1048, 'rt_live', 'r', 'x', 1, 'url', '=', '{NULL}');
-- invalid regular expressions
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1049, 'rt_live', 'r', 'x', 1, 'url', '~', '{(}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1050, 'rt_live', 'r', 'x', 1, 'url', '~*', '{[a-}');
-- unknown list
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1051, 'rt_live', 'r', 'x', 1, 'url', 'in list', '{rt_nosuch_list}');
-- column the activity table lacks (model is tracked)
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1052, 'rt_live', 'r', 'x', 1, 'referrer', '=', '{a}');
-- value that does not convert to the column's type / operator not defined for the type
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1053, 'rt_live', 'r', 'x', 1, 'occurred_at', '>', '{yesterday-ish}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1054, 'rt_live', 'r', 'x', 1, 'lead_id', 'between', '{1,two}');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points, attribute, op, value) VALUES (1055, 'rt_live', 'r', 'x', 1, 'lead_id', 'like', '{1%}');
-- an UPDATE is validated the same way
UPDATE leadscore.activity_rule SET points = 'NaN' WHERE id = 1001;
UPDATE leadscore.activity_rule SET op = 'between' WHERE id = 1002;
UPDATE leadscore.activity_rule SET expires_after = '1 day' WHERE id = 1002;
-- nothing of the above was stored
SELECT count(*) AS rejected_rules_stored FROM leadscore.activity_rule WHERE id BETWEEN 1010 AND 1099;
-- a valid update is accepted
UPDATE leadscore.activity_rule SET points = 12.5, max_count = 3 WHERE id = 1001;
SELECT id, name, points, max_count FROM leadscore.activity_rule WHERE id = 1001;

-- ---------------------------------------------------------------------------
-- Lists
-- ---------------------------------------------------------------------------
SELECT count(*) AS shipped_free_domains, bool_and(shipped) AS all_shipped
  FROM leadscore.list_entry WHERE list = 'free_email_domains';
SELECT value FROM leadscore.list_entry WHERE list = 'free_email_domains' AND value IN ('gmail.com', 'hotmail.com', 'outlook.com', 'icloud.com') ORDER BY value;
INSERT INTO leadscore.list_entry (list, value) VALUES ('rt_competitors', 'rival.example'), ('rt_competitors', 'Foe.Example');
INSERT INTO leadscore.list_entry (list, value) VALUES ('', 'x');
INSERT INTO leadscore.list_entry (list, value) VALUES ('rt_competitors', NULL);
INSERT INTO leadscore.list_entry (list, value) VALUES ('rt_competitors', 'rival.example');
SELECT list, value, shipped FROM leadscore.list_entry WHERE list = 'rt_competitors' ORDER BY value;

-- ---------------------------------------------------------------------------
-- Fit rules
-- ---------------------------------------------------------------------------
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points, disqualify) VALUES
    (1101, 'rt_live', 'C-level', 'title', '~*', '{^(ceo|cto)$}', 20, false),
    (1102, 'rt_live', 'mid-size', 'employees', 'between', '{50,2000}', 10, false),
    (1103, 'rt_live', 'revenue', 'revenue', '>=', '{1e6}', 5.25, false),
    (1104, 'rt_live', 'recent', 'created_at', '>', '{2024-01-01 00:00:00+00}', 1, false),
    (1105, 'rt_live', 'free mail', 'email', 'domain in list', '{free_email_domains}', -10, false),
    (1106, 'rt_live', 'competitor', 'email', 'domain in list', '{rt_competitors}', 0, true),
    (1107, 'rt_live', 'country', 'country', 'in', '{DE,FR,"United States"}', 3, false),
    (1108, 'rt_live', 'no industry', 'industry', 'is null', NULL, -1, false);
SELECT id, name, attribute, op, value, points, disqualify, enabled
  FROM leadscore.fit_rule WHERE model = 'rt_live' ORDER BY id;

-- value that does not convert to the column's type (the model is tracked)
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1110, 'rt_live', 'big', 'employees', '>', '{abc}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1111, 'rt_live', 'big', 'employees', 'in', '{10,2.5}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1112, 'rt_live', 'rich', 'revenue', 'between', '{1,lots}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1113, 'rt_live', 'new', 'created_at', '>=', '{not a date}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1114, 'rt_live', 'huge', 'employees', '>', '{99999999999}', 1);
-- operator not defined for the column type
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1115, 'rt_live', 'pat', 'employees', 'like', '{1%}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1116, 'rt_live', 'rx', 'revenue', '~', '{^1}', 1);
-- invalid regular expression
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1117, 'rt_live', 'rx', 'title', '~', '{(}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1118, 'rt_live', 'rx', 'title', '~*', ARRAY['a{2,1}'], 1);
-- unknown operator, wrong number of values, NULL element
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1119, 'rt_live', 'r', 'title', 'equals', '{x}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1120, 'rt_live', 'r', 'title', '<', '{}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1121, 'rt_live', 'r', 'title', 'like', '{a,b}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1122, 'rt_live', 'r', 'employees', 'between', '{1}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1123, 'rt_live', 'r', 'title', 'not in', '{}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1124, 'rt_live', 'r', 'title', 'is not null', '{x}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1125, 'rt_live', 'r', 'employees', 'between', '{1,NULL}', 1);
-- points
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1126, 'rt_live', 'r', 'title', 'is null', NULL, 'NaN');
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1127, 'rt_live', 'r', 'title', 'is null', NULL, 'Infinity');
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1128, 'rt_live', 'r', 'title', 'is null', NULL, 3.1415926);
-- unknown list
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1129, 'rt_live', 'r', 'email', 'domain in list', '{rt_nosuch_list}', 1);
-- column the leads table lacks
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1130, 'rt_live', 'r', 'seniority', '=', '{senior}', 1);
-- a fit rule needs an attribute
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1131, 'rt_live', 'r', '', '=', '{x}', 1);
-- unknown model
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1132, 'rt_nosuch', 'r', 'title', '=', '{x}', 1);
-- fit rule for a model tracked without a leads table
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1133, 'rt_noleads', 'r', 'title', '=', '{x}', 1);
-- an UPDATE is validated too
UPDATE leadscore.fit_rule SET value = '{50,many}' WHERE id = 1102;
UPDATE leadscore.fit_rule SET attribute = 'seniority' WHERE id = 1101;
SELECT count(*) AS rejected_fit_rules_stored FROM leadscore.fit_rule WHERE id BETWEEN 1110 AND 1199;

-- A draft (untracked) model accepts rules on any column: nothing to check types against yet.
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES
    (1140, 'rt_draft', 'seniority', 'seniority', '=', '{senior}', 5),
    (1141, 'rt_draft', 'big', 'employees', '>', '{abc}', 5);
-- ... but list names, operators, counts and regular expressions are still checked
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1142, 'rt_draft', 'r', 'email', 'in list', '{rt_nosuch_list}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1143, 'rt_draft', 'r', 'title', '~', '{(}', 1);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES (1144, 'rt_draft', 'r', 'title', 'between', '{a}', 1);
-- tracking the draft later: its rules are compiled against the tables and the bad one is reported
SELECT leadscore.track('rt_draft', 'rt.activities', 'lead_id', 'type', 'occurred_at', 'rt.leads', 'id');
-- tracking it without a leads table while it has fit rules
SELECT leadscore.track('rt_draft', 'rt.activities', 'lead_id', 'type', 'occurred_at');
SELECT count(*) AS draft_tracked FROM leadscore.tracking WHERE model = 'rt_draft';
DELETE FROM leadscore.fit_rule WHERE model = 'rt_draft';

-- ---------------------------------------------------------------------------
-- Stages
-- ---------------------------------------------------------------------------
INSERT INTO leadscore.stage (model, name, min_score, min_fit, min_engagement, sticky) VALUES
    ('rt_live', 'IQL', 20, NULL, NULL, false),
    ('rt_live', 'MQL', 40, 10, NULL, false),
    ('rt_live', 'SQL', 65, 20, 30, true);
SELECT model, name, min_score, min_fit, min_engagement, sticky FROM leadscore.stage WHERE model = 'rt_live' ORDER BY min_score;
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('rt_live', 'disqualified', 0);
UPDATE leadscore.stage SET name = 'disqualified' WHERE model = 'rt_live' AND name = 'IQL';
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('rt_live', '', 0);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('rt_nosuch', 'IQL', 0);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('rt_live', 'hot', 'NaN');
INSERT INTO leadscore.stage (model, name, min_fit) VALUES ('rt_live', 'hot', 'Infinity');
INSERT INTO leadscore.stage (model, name, min_engagement) VALUES ('rt_live', 'hot', 0.0000001);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('rt_live', 'MQL', 50);
SELECT count(*) AS stages FROM leadscore.stage WHERE model = 'rt_live';

-- ---------------------------------------------------------------------------
-- Rule values are data: quotes, semicolons, $$, backslashes and SQL text are matched literally.
-- ---------------------------------------------------------------------------
INSERT INTO leadscore.model (name) VALUES ('rt_lit');
SELECT leadscore.track('rt_lit', 'rt.activities', 'lead_id', 'type', 'occurred_at', 'rt.leads', 'id');
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES
    (1201, 'rt_lit', 'injection', 'title', '=', ARRAY['x''; DROP TABLE rt.leads; --'], 1),
    (1202, 'rt_lit', 'dollar', 'industry', '=', ARRAY['$$; SELECT 1; $$'], 10),
    (1203, 'rt_lit', 'backslash', 'country', '=', ARRAY['C:\temp\n'], 100),
    (1204, 'rt_lit', 'in quotes', 'email', 'in', ARRAY['a"b@x.com', 'it''s@x.com', 'semi;colon@x.com'], 1000),
    (1205, 'rt_lit', 'like literal', 'title', 'like', ARRAY['%'' OR ''1''=''1%'], 10000),
    (1206, 'rt_lit', 'regex text', 'industry', '~', ARRAY['^\$\$; SELECT'], 100000);
SELECT id, name, value, value[1] AS first_value, length(value[1]) AS len
  FROM leadscore.fit_rule WHERE model = 'rt_lit' ORDER BY id;
INSERT INTO rt.leads (id, title, industry, country, email) VALUES
    (1, 'x''; DROP TABLE rt.leads; --', '$$; SELECT 1; $$', 'C:\temp\n', 'it''s@x.com'),
    (2, 'x', '$$', E'C:\temp\n', 'a"b@x.com'),
    (3, 'Boss '' OR ''1''=''1 here', 'retail', 'c:\temp\n', 'semi;colon@x.com'),
    (4, 'x''; DROP TABLE rt.leads;', NULL, NULL, 'a"b@X.com');
-- lead 1: injection 1 + dollar 10 + backslash 100 + in quotes 1000 + regex text 100000
-- lead 2: in quotes 1000 only (E'' gives a real tab/newline, not backslash-n)
-- lead 3: in quotes 1000 + like literal 10000
-- lead 4: nothing (different title, e-mail compared case-sensitively by "in")
SELECT id, leadscore.score('rt_lit', id, '2024-06-01 00:00+00') AS score FROM rt.leads ORDER BY id;
SELECT l.id, e.rule, e.family, e.points
  FROM rt.leads l, LATERAL leadscore.explain('rt_lit', l.id, '2024-06-01 00:00+00') e
 ORDER BY l.id, e.rule_id;
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'rt_lit' ORDER BY lead_id;
-- the leads table is still there
SELECT to_regclass('rt.leads') IS NOT NULL AS leads_table_exists, count(*) AS leads FROM rt.leads;

-- Rule changes take effect for tracked leads in the same transaction, and roll back cleanly.
BEGIN;
UPDATE leadscore.fit_rule SET points = 2 WHERE id = 1201;
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'rt_lit' ORDER BY lead_id;
ROLLBACK;
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'rt_lit' ORDER BY lead_id;
UPDATE leadscore.fit_rule SET enabled = false WHERE id = 1206;
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'rt_lit' ORDER BY lead_id;
DELETE FROM leadscore.fit_rule WHERE id = 1205;
SELECT lead_id, score FROM leadscore.lead_score WHERE model = 'rt_lit' ORDER BY lead_id;

-- ---------------------------------------------------------------------------
-- Clean up
-- ---------------------------------------------------------------------------
SELECT leadscore.untrack('rt_lit'), leadscore.untrack('rt_live'), leadscore.untrack('rt_noleads');
SELECT leadscore.untrack('rt_live');
DELETE FROM leadscore.list_entry WHERE list = 'rt_competitors';
DELETE FROM leadscore.model WHERE name LIKE 'rt\_%';
SELECT (SELECT count(*) FROM leadscore.activity_rule WHERE model LIKE 'rt\_%') AS activity_rules,
       (SELECT count(*) FROM leadscore.fit_rule WHERE model LIKE 'rt\_%') AS fit_rules,
       (SELECT count(*) FROM leadscore.stage WHERE model LIKE 'rt\_%') AS stages;
DROP SCHEMA rt CASCADE;
