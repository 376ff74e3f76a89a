-- Stage changes: leadscore.stage_change rows and the pg_notify('leadscore_stage', json)
-- payloads.
--
-- Part 1 (inside this file's rolled-back transaction): every kind of stage transition —
-- activity insert, activity delete, lead update, rule change, stage threshold change,
-- refresh() — appends a stage_change row with from_stage / to_stage / score / changed_at.
--
-- Part 2: notifications are delivered only on commit, and a session cannot observe its own
-- notifications inside a transaction, so this part works through two dblink connections
-- to the same database: a "listener" session that runs LISTEN leadscore_stage and a
-- "writer" session that commits its changes (autocommit). The notifications the listener
-- receives are read with dblink_get_notify(). The writer's objects are committed, so the
-- writer drops them again at the end (also when a step fails), including the extension
-- when it had to create it. Part 2 runs first, before this transaction touches leadscore,
-- so the writer never waits for a lock held here. When dblink cannot connect (e.g. an
-- authentication setup without peer/trust over the Unix socket), the part-2 assertions
-- are skipped with the reason.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(25);

-- ---------------------------------------------------------------------------
-- Part 2 first: the notifications themselves, through dblink.
-- ---------------------------------------------------------------------------
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE TEMP TABLE seen (step text, channel text, pid int, payload text);
CREATE TEMP TABLE outcome (connected boolean, error text, writer_pid int);

DO $do$
DECLARE
    conn text := format('dbname=%s port=%s host=%s user=%s', current_database(), current_setting('port'),
                        split_part(current_setting('unix_socket_directories'), ',', 1), current_user);
    wpid int;
    expect int;
    got int;
    deadline timestamptz;
    -- step name, SQL the writer runs (autocommit unless it says BEGIN), notifications expected
    steps text[][] := ARRAY[
        ['insert',    $$INSERT INTO nt_w.act (lead_id, type, occurred_at) VALUES (1, 'demo_request', now() - interval '1 hour'), (2, 'demo_request', now() - interval '1 hour'), (3, 'email_open', now())$$, '2'],
        ['rollback',  $$BEGIN; INSERT INTO nt_w.act (lead_id, type, occurred_at) VALUES (3, 'demo_request', now()); ROLLBACK$$, '0'],
        ['samestage', $$INSERT INTO nt_w.act (lead_id, type, occurred_at) VALUES (1, 'email_open', now())$$, '0'],
        ['rule',      $$UPDATE leadscore.activity_rule SET points = 20 WHERE model = 'nt_w' AND name = 'open'$$, '1'],
        ['threshold', $$UPDATE leadscore.stage SET min_score = 15 WHERE model = 'nt_w' AND name = 'MQL'$$, '1'],
        ['refresh',   $$SELECT leadscore.refresh('nt_w', now() + interval '8 days')$$, '2']];
    cleanup text := $$SET client_min_messages = warning;
            SELECT leadscore.untrack('nt_w') FROM leadscore.tracking WHERE model = 'nt_w';
            DELETE FROM leadscore.model WHERE name = 'nt_w';
            DROP SCHEMA IF EXISTS nt_w CASCADE$$;
    i int;
    created_ext boolean := false;
BEGIN
    BEGIN
        PERFORM dblink_connect('nt_listen', conn);
        PERFORM dblink_connect('nt_write', conn);
    EXCEPTION WHEN others THEN
        INSERT INTO outcome VALUES (false, SQLERRM, NULL);
        BEGIN PERFORM dblink_disconnect('nt_listen'); EXCEPTION WHEN others THEN NULL; END;
        RETURN;
    END;
    BEGIN
        SELECT p INTO wpid FROM dblink('nt_write', 'SELECT pg_backend_pid()') AS t(p int);
        PERFORM dblink_exec('nt_listen', 'LISTEN leadscore_stage');
        -- the writer needs leadscore committed: create it there when the database does not have it yet
        SELECT NOT e INTO created_ext
          FROM dblink('nt_write', $$SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'leadscore')$$) AS t(e boolean);
        PERFORM * FROM dblink('nt_write', 'CREATE EXTENSION IF NOT EXISTS leadscore') AS t(x text);
        PERFORM * FROM dblink('nt_write', cleanup) AS t(x text);   -- leftovers of an interrupted earlier run
        -- lead 9 already has a demo request (50, MQL) when the model is tracked
        PERFORM * FROM dblink('nt_write', $$CREATE SCHEMA nt_w;
            CREATE TABLE nt_w.act (id bigserial PRIMARY KEY, lead_id int, type text, occurred_at timestamptz);
            CREATE INDEX ON nt_w.act (lead_id);
            INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('nt_w', 0, 100);
            INSERT INTO leadscore.activity_rule (model, name, activity_type, points, expires_after)
            VALUES ('nt_w', 'demo', 'demo_request', 50, NULL), ('nt_w', 'open', 'email_open', 10, '7 days');
            INSERT INTO leadscore.stage (model, name, min_score) VALUES ('nt_w', 'MQL', 40), ('nt_w', 'SQL', 65);
            INSERT INTO nt_w.act (lead_id, type, occurred_at) VALUES (9, 'demo_request', now());
            SELECT leadscore.track('nt_w', 'nt_w.act', 'lead_id', 'type', 'occurred_at')$$) AS t(x text);
        PERFORM pg_sleep(0.3);
        INSERT INTO seen SELECT 'track', n.notify_name, n.be_pid, n.extra FROM dblink_get_notify('nt_listen') n;
        FOR i IN 1 .. array_length(steps, 1) LOOP
            PERFORM * FROM dblink('nt_write', steps[i][2]) AS t(x text);
            expect := steps[i][3]::int;
            deadline := clock_timestamp() + interval '5 seconds';
            LOOP
                INSERT INTO seen SELECT steps[i][1], n.notify_name, n.be_pid, n.extra FROM dblink_get_notify('nt_listen') n;
                SELECT count(*) INTO got FROM seen WHERE step = steps[i][1];
                EXIT WHEN expect > 0 AND got >= expect;
                EXIT WHEN clock_timestamp() > deadline;
                EXIT WHEN expect = 0 AND clock_timestamp() > deadline - interval '4.5 seconds';
                PERFORM pg_sleep(0.05);
            END LOOP;
            -- give unexpected extra notifications a moment to arrive too
            PERFORM pg_sleep(0.2);
            INSERT INTO seen SELECT steps[i][1], n.notify_name, n.be_pid, n.extra FROM dblink_get_notify('nt_listen') n;
        END LOOP;
        INSERT INTO outcome VALUES (true, NULL, wpid);
    EXCEPTION WHEN others THEN
        INSERT INTO outcome VALUES (true, SQLERRM, wpid);
    END;
    -- cleanup of the committed objects, always
    BEGIN
        PERFORM * FROM dblink('nt_write', cleanup) AS t(x text);
        IF created_ext THEN
            PERFORM * FROM dblink('nt_write', 'DROP EXTENSION leadscore') AS t(x text);
        END IF;
    EXCEPTION WHEN others THEN
        UPDATE outcome SET error = coalesce(error || '; ', '') || 'cleanup: ' || SQLERRM;
    END;
    PERFORM dblink_disconnect('nt_listen');
    PERFORM dblink_disconnect('nt_write');
END
$do$;

SELECT diag('dblink part: ' || error) FROM outcome WHERE error IS NOT NULL;
SELECT diag('track() sent ' || count(*) || ' notification(s) for the leads it scored initially (lead 9 -> MQL)') FROM seen WHERE step = 'track';

CREATE FUNCTION pg_temp.payloads(s text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(format('%s:%s:%s>%s@%s', p->>'model', p->>'lead_id', coalesce(p->>'from_stage', '-'),
                                      coalesce(p->>'to_stage', '-'), p->>'score'), ' '
                               ORDER BY p->>'lead_id', p->>'score'), '')
      FROM (SELECT payload::json AS p FROM seen WHERE step = s) x
$$;
CREATE FUNCTION pg_temp.ran() RETURNS boolean LANGUAGE sql AS $$ SELECT connected AND error IS NULL FROM outcome $$;

SELECT CASE WHEN pg_temp.ran() THEN ok(true, 'dblink listener and writer sessions ran every step')
            ELSE skip('dblink could not connect or a step failed: ' || (SELECT coalesce(error, '?') FROM outcome), 11) END;
SELECT is((SELECT count(*) FROM seen WHERE step = 'insert' AND channel = 'leadscore_stage'
                                         AND pid = (SELECT writer_pid FROM outcome)), 2::bigint,
          'a committed insert that moves 2 leads sends 2 notifications on leadscore_stage from the writer''s backend')
 WHERE pg_temp.ran();
SELECT is(pg_temp.payloads('insert'), 'nt_w:1:->MQL@50 nt_w:2:->MQL@50',
          'payloads: model, lead_id, from_stage null, to_stage, score; nothing for lead 3 (10 points, no stage)')
 WHERE pg_temp.ran();
SELECT ok((SELECT bool_and((payload::json->>'changed_at') IS NOT NULL AND json_typeof(payload::json->'lead_id') = 'string'
                           AND json_typeof(payload::json->'score') = 'number')
             FROM seen WHERE step = 'insert'),
          'payloads carry changed_at, lead_id as the key''s text form and a numeric score')
 WHERE pg_temp.ran();
SELECT is((SELECT count(*) FROM seen WHERE step = 'rollback'), 0::bigint,
          'a rolled-back transaction that would move lead 3 sends nothing')
 WHERE pg_temp.ran();
SELECT is((SELECT count(*) FROM seen WHERE step = 'samestage'), 0::bigint,
          'a score change within the same stage (lead 1: 50 -> 60, MQL) sends nothing')
 WHERE pg_temp.ran();
SELECT is(pg_temp.payloads('rule'), 'nt_w:1:MQL>SQL@70',
          'a rule change (open 10 -> 20) that promotes lead 1 notifies it')
 WHERE pg_temp.ran();
SELECT is(pg_temp.payloads('threshold'), 'nt_w:3:->MQL@20',
          'a stage threshold change (MQL 40 -> 15) that promotes lead 3 notifies it')
 WHERE pg_temp.ran();
SELECT is(pg_temp.payloads('refresh'), 'nt_w:1:SQL>MQL@50 nt_w:3:MQL>-@0',
          'refresh() that demotes 2 leads (expired opens) notifies both; to_stage is null for lead 3')
 WHERE pg_temp.ran();
SELECT is((SELECT count(*) FROM seen WHERE channel IS DISTINCT FROM 'leadscore_stage'), 0::bigint,
          'nothing arrives on other channels')
 WHERE pg_temp.ran();
SELECT is((SELECT count(*) FROM pg_namespace WHERE nspname = 'nt_w'), 0::bigint,
          'the writer''s committed objects were removed again')
 WHERE pg_temp.ran();

-- ---------------------------------------------------------------------------
-- Part 1: stage_change rows.
-- ---------------------------------------------------------------------------
CREATE EXTENSION IF NOT EXISTS leadscore;
CREATE SCHEMA nt;
CREATE TABLE nt.leads (id int PRIMARY KEY, title text);
CREATE TABLE nt.act (id bigserial PRIMARY KEY, lead_id int, type text, occurred_at timestamptz);
CREATE INDEX ON nt.act (lead_id);
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('nt', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, expires_after)
VALUES ('nt', 'demo', 'demo_request', 50, NULL), ('nt', 'open', 'email_open', 10, '7 days');
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES ('nt', 'ceo', 'title', '=', '{CEO}', 20);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('nt', 'IQL', 10), ('nt', 'MQL', 40), ('nt', 'SQL', 65);
INSERT INTO nt.leads VALUES (1, 'dev'), (2, 'CEO');
SELECT is(leadscore.track('nt', 'nt.act', 'lead_id', 'type', 'occurred_at', 'nt.leads', 'id'), 2::bigint, 'track() scores 2 leads');

CREATE FUNCTION nt.history(lead text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(coalesce(from_stage, '-') || '>' || coalesce(to_stage, '-') || '@' || trim_scale(score), ' '
                               ORDER BY ctid), '')
      FROM leadscore.stage_history WHERE model = 'nt' AND lead_id = lead
$$;
SELECT is(nt.history('2'), '->IQL@20', 'track(): lead 2 (fit 20) enters IQL, recorded');
SELECT is(nt.history('1'), '', 'track(): lead 1 (score 0) has no stage and no stage change');

INSERT INTO nt.act (lead_id, type, occurred_at) VALUES (1, 'demo_request', now() - interval '1 hour');  -- 1: 50 MQL
SELECT is(nt.history('1'), '->MQL@50', 'activity insert: lead 1 enters MQL directly (skipping IQL) with score 50');
INSERT INTO nt.act (lead_id, type, occurred_at) VALUES (1, 'email_open', now() - interval '6 days'),    -- 1: 60 MQL
                                                     (1, 'email_open', now() - interval '1 hour'),     -- 1: 70 SQL
                                                     (2, 'email_open', now() - interval '1 hour');     -- 2: 30 IQL
SELECT is(nt.history('1'), '->MQL@50 MQL>SQL@70', 'activity insert: MQL -> SQL at 70');
SELECT is(nt.history('2'), '->IQL@20', 'a score change within the same stage records nothing');
SELECT is((SELECT count(*) FROM leadscore.stage_change WHERE model = 'nt' AND changed_at = now()), 3::bigint,
          'live changes are stamped with the transaction time');

-- refresh(): lead 1's older open expires 6 days ago + 7 days = 1 day from now; the other lasts 7 days.
SELECT is(leadscore.refresh('nt', now() + interval '2 days'), 1::bigint, 'refresh() changes lead 1 only');
SELECT is(nt.history('1'), '->MQL@50 MQL>SQL@70 SQL>MQL@60', 'refresh(): the expiry demotes SQL -> MQL at 60');
SELECT is((SELECT changed_at FROM leadscore.stage_history WHERE model = 'nt' AND lead_id = '1' ORDER BY ctid DESC LIMIT 1),
          now() + interval '2 days', 'a change made by refresh(model, t) is stamped t');

UPDATE nt.leads SET title = 'CEO' WHERE id = 1;                                       -- 1: 20 + 50 + 20 = 90 SQL
SELECT is(nt.history('1'), '->MQL@50 MQL>SQL@70 SQL>MQL@60 MQL>SQL@90', 'lead update: fit +20 promotes to SQL at 90');
UPDATE leadscore.activity_rule SET points = 5 WHERE model = 'nt' AND name = 'demo';   -- 1: 45 MQL; 2: 20 + 10 = 30 IQL
SELECT is(nt.history('1'), '->MQL@50 MQL>SQL@70 SQL>MQL@60 MQL>SQL@90 SQL>MQL@45', 'rule change: demo 50 -> 5 demotes to MQL at 45');
UPDATE leadscore.stage SET min_score = 30 WHERE model = 'nt' AND name = 'MQL';        -- 2: 30 MQL
SELECT is(nt.history('2'), '->IQL@20 IQL>MQL@30', 'stage threshold change: lead 2 promoted to MQL at 30');
DELETE FROM nt.act WHERE lead_id = 1;                                                  -- 1: 20 IQL
SELECT is(nt.history('1'), '->MQL@50 MQL>SQL@70 SQL>MQL@60 MQL>SQL@90 SQL>MQL@45 MQL>IQL@20',
          'activity delete: MQL -> IQL at 20');

SELECT * FROM finish();
ROLLBACK;
