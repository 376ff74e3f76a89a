-- Injection: names, values, list entries, activity types, lead keys and column names made
-- of quotes, semicolons, dollar quotes, backslashes and SQL text are stored and matched
-- literally. A canary proves that none of the SQL text is ever executed.
SET timezone = 'UTC';
CREATE SCHEMA inj;
CREATE TABLE inj.canary (note text);
-- Any execution of the injected SQL below would call this and leave a row.
CREATE FUNCTION inj.pwned() RETURNS int LANGUAGE sql AS $$ INSERT INTO inj.canary VALUES ('executed') RETURNING 1 $$;
CREATE TABLE inj.leads (
    "lead key"             text PRIMARY KEY,
    "we'ird; col"""        text,
    email                  text
);
CREATE TABLE inj.acts ("lead key" text, "type; DROP" text, "at""" timestamptz, "url'" text);
CREATE INDEX ON inj.acts ("lead key");

INSERT INTO leadscore.model (name, score_min, score_max) VALUES ($m$x'); SELECT inj.pwned(); --$m$, 0, 1000);
INSERT INTO leadscore.list_entry (list, value) VALUES
    ($l$evil'list$l$, $v$o'brien.example$v$),
    ($l$evil'list$l$, $v$$$; SELECT inj.pwned(); $$.example$v$);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, attribute, op, value, points) VALUES
    (3001, $m$x'); SELECT inj.pwned(); --$m$, $n$a'; DROP TABLE inj.canary; --$n$, $t$'; SELECT inj.pwned(); --$t$, NULL, NULL, NULL, 10),
    (3002, $m$x'); SELECT inj.pwned(); --$m$, 'dollar', $t$$$ || inj.pwned() || $$$t$, NULL, NULL, NULL, 20),
    (3003, $m$x'); SELECT inj.pwned(); --$m$, 'backslash', E'a\\b\\''c', NULL, NULL, NULL, 40),
    (3004, $m$x'); SELECT inj.pwned(); --$m$, 'url equals SQL', 'view', $c$url'$c$, '=', ARRAY[$v$'); SELECT inj.pwned(); --$v$], 80),
    (3005, $m$x'); SELECT inj.pwned(); --$m$, 'url like', 'view', $c$url'$c$, 'like', ARRAY[$v$%\%pct%$v$], 160);
INSERT INTO leadscore.fit_rule (id, model, name, attribute, op, value, points) VALUES
    (3101, $m$x'); SELECT inj.pwned(); --$m$, $n$"quoted"; fit$n$, $c$we'ird; col"$c$, 'in',
        ARRAY[$v$1'); SELECT inj.pwned(); --$v$, $v$a"b$v$], 1000),
    (3102, $m$x'); SELECT inj.pwned(); --$m$, 'evil list', 'email', 'domain in list', ARRAY[$l$evil'list$l$], 500);
INSERT INTO leadscore.stage (model, name, min_score) VALUES
    ($m$x'); SELECT inj.pwned(); --$m$, $s$hot'; DELETE FROM inj.leads; --$s$, 100);

INSERT INTO inj.leads VALUES
    ($k$k1'); SELECT inj.pwned(); --$k$, $v$1'); SELECT inj.pwned(); --$v$, $e$someone@O'Brien.example$e$),
    ($k$k2$$ \x $$$k$, $v$a"b$v$, $e$x@$$; SELECT inj.pwned(); $$.example$e$),
    ('k3', 'plain', 'k3@plain.example');
SELECT leadscore.track($m$x'); SELECT inj.pwned(); --$m$, 'inj.acts', 'lead key', 'type; DROP', 'at"',
                       'inj.leads', 'lead key') AS tracked;
INSERT INTO inj.acts VALUES
    ($k$k1'); SELECT inj.pwned(); --$k$, $t$'; SELECT inj.pwned(); --$t$, '2026-01-01', NULL),
    ($k$k1'); SELECT inj.pwned(); --$k$, $t$$$ || inj.pwned() || $$$t$, '2026-01-01', NULL),
    ($k$k2$$ \x $$$k$, E'a\\b\\''c', '2026-01-01', NULL),
    ($k$k2$$ \x $$$k$, 'view', '2026-01-01', $v$'); SELECT inj.pwned(); --$v$),
    ('k3', 'view', '2026-01-01', $v$x%pct%y$v$),
    ('k3', 'view', '2026-01-01', 'x-pct-y'),
    -- near misses: not equal to any rule's type or value
    ('k3', $t$'; SELECT inj.pwned();$t$, '2026-01-01', NULL),
    ('k3', E'a\\b''c', '2026-01-01', NULL);

-- Scores: k1 = 1000 (fit "in") + 500 (O'Brien domain in the evil list) + 10 + 20;
-- k2 = 1000 (a"b) + 500 ($$ domain) + 40 + 80 -> clamped to 1000; k3 = 160 (LIKE with an escaped %).
SELECT lead_id, score, fit_score, engagement_score, stage
  FROM leadscore.lead_score WHERE model = $m$x'); SELECT inj.pwned(); --$m$ ORDER BY lead_id;
SELECT rule, family, points FROM leadscore.explain($m$x'); SELECT inj.pwned(); --$m$, 'k3'::text, '2026-02-01')
 ORDER BY rule;
SELECT lead_id, to_stage FROM leadscore.stage_change WHERE model = $m$x'); SELECT inj.pwned(); --$m$ ORDER BY lead_id;
-- Stored literally.
SELECT name, activity_type FROM leadscore.activity_rule WHERE id BETWEEN 3001 AND 3003 ORDER BY id;
SELECT value FROM leadscore.list_entry WHERE list = $l$evil'list$l$ ORDER BY value;
-- A rescore and a rule change go through the same code paths.
SELECT leadscore.rescore($m$x'); SELECT inj.pwned(); --$m$) AS changed;
UPDATE leadscore.activity_rule SET points = 11 WHERE id = 3001;
SELECT lead_id, score FROM leadscore.lead_score WHERE model = $m$x'); SELECT inj.pwned(); --$m$ ORDER BY lead_id;
-- Related records and condition rows: a relation whose name (no dot allowed, so no canary
-- call), target table, key and columns are quotes and SQL text, condition values and a
-- multiply_by naming them; a related-row update rescores through the same paths.
CREATE TABLE inj."acc'ount; DROP TABLE inj.leads; --" ("k'ey" text PRIMARY KEY, "na""me" text, "rev;enue" numeric);
ALTER TABLE inj.leads ADD COLUMN "acc; id'" text;
INSERT INTO inj."acc'ount; DROP TABLE inj.leads; --" VALUES
    ($a$a'1; --$a$, $v$O'Neil; DROP TABLE inj.leads; --$v$, 150000), ($a$$$x$$$a$, $v$$$ || inj.pwned() || $$$v$, 50);
UPDATE inj.leads SET "acc; id'" = $a$a'1; --$a$ WHERE "lead key" LIKE 'k1%';
UPDATE inj.leads SET "acc; id'" = $a$$$x$$$a$ WHERE "lead key" LIKE 'k2%';
INSERT INTO leadscore.relation (model, name, lead_column, target, target_key) VALUES
    ($m$x'); SELECT inj.pwned(); --$m$, $r$r"'; DELETE FROM leads; $$ --$r$, $c$acc; id'$c$,
     'inj."acc''ount; DROP TABLE inj.leads; --"', $c$k'ey$c$);
INSERT INTO leadscore.fit_rule (id, model, name, points) VALUES (3201, $m$x'); SELECT inj.pwned(); --$m$, 'account name', 7);
INSERT INTO leadscore.fit_condition (rule_id, attribute, op, value) VALUES
    (3201, $r$r"'; DELETE FROM leads; $$ --.na"me$r$, 'in', ARRAY[$v$O'Neil; DROP TABLE inj.leads; --$v$, $v$$$ || inj.pwned() || $$$v$]);
INSERT INTO leadscore.fit_rule (id, model, name, points, multiply_by) VALUES
    (3203, $m$x'); SELECT inj.pwned(); --$m$, 'per revenue', 0.001, $r$r"'; DELETE FROM leads; $$ --.rev;enue$r$);
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, points) VALUES (3202, $m$x'); SELECT inj.pwned(); --$m$, 'view by', 'view', 3);
INSERT INTO leadscore.activity_condition (rule_id, grp, attribute, op, value) VALUES
    (3202, 1, $c$lead.we'ird; col"$c$, '=', ARRAY[$v$1'); SELECT inj.pwned(); --$v$]),
    (3202, 1, $r$r"'; DELETE FROM leads; $$ --.rev;enue$r$, '>', '{100}'),
    (3202, 2, $c$url'$c$, '=', ARRAY[$v$'); SELECT inj.pwned(); --$v$]);
INSERT INTO inj.acts VALUES ($k$k1'); SELECT inj.pwned(); --$k$, 'view', '2026-01-02', 'plain');
-- k1: its account's name (7), its own column and the account's revenue (3), 150000 x 0.001;
-- k2: the other name (7), the url (3), 50 x 0.001; k3: no account, no match.
SELECT ls.lead_id, e.rule, e.points
  FROM leadscore.lead_score ls, leadscore.explain(ls.model, ls.lead_id, '2026-02-01') e
 WHERE ls.model = $m$x'); SELECT inj.pwned(); --$m$ AND e.rule_id >= 3201 ORDER BY 1, 2;
UPDATE inj."acc'ount; DROP TABLE inj.leads; --" SET "rev;enue" = 10 WHERE "k'ey" = $a$a'1; --$a$;
SELECT ls.lead_id, e.rule, e.points
  FROM leadscore.lead_score ls, leadscore.explain(ls.model, ls.lead_id, '2026-02-01') e
 WHERE ls.model = $m$x'); SELECT inj.pwned(); --$m$ AND e.rule_id >= 3201 ORDER BY 1, 2;
SELECT count(*) AS mismatches FROM leadscore.lead_score s
 WHERE s.model = $m$x'); SELECT inj.pwned(); --$m$ AND s.score <> leadscore.score(s.model, s.lead_id, s.scored_at);
-- Stored literally.
SELECT name, lead_column, target, target_key FROM leadscore.relation WHERE model = $m$x'); SELECT inj.pwned(); --$m$;
SELECT attribute, value FROM leadscore.fit_condition WHERE rule_id = 3201
UNION ALL SELECT attribute, value FROM leadscore.activity_condition WHERE rule_id = 3202 ORDER BY 1, 2;
DELETE FROM leadscore.activity_rule WHERE id = 3202;
DELETE FROM leadscore.fit_rule WHERE id IN (3201, 3203);
DELETE FROM leadscore.relation WHERE model = $m$x'); SELECT inj.pwned(); --$m$;
-- Nothing was executed: the canary is empty, and the tables the names mention still exist.
SELECT count(*) AS executed FROM inj.canary;
SELECT count(*) AS leads FROM inj.leads;

SELECT leadscore.untrack($m$x'); SELECT inj.pwned(); --$m$);
DELETE FROM leadscore.model WHERE name = $m$x'); SELECT inj.pwned(); --$m$;
DELETE FROM leadscore.list_entry WHERE list = $l$evil'list$l$;
DROP SCHEMA inj CASCADE;
