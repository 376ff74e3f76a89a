-- refresh() scheduled through pg_cron for real.
--
-- The cluster runs with shared_preload_libraries = pg_cron and cron.database_name =
-- leadscore_tap (scripts/test.sh also sets cron.use_background_workers = on, so jobs do not
-- need a libpq login). pg_cron has minute granularity and runs its jobs in their own
-- sessions, so this file cannot run inside a rolled-back transaction: it commits, and it
-- removes everything it created at the end (job, run history, tracking, tables, model,
-- and the extensions when it had to create them). Leftovers of an interrupted earlier run
-- are removed first.
--
-- Scenario: lead 1 has a demo request (50, never expires) and an e-mail open (2) whose
-- 90-day expiry falls 20 seconds after the setup; lead 2 has a fresh open. The stored
-- score of lead 1 is 52 (stage MQL, min 51). A job 'leadscore-refresh' runs
-- SELECT leadscore.refresh('cronmodel') every minute. Once a run that started after the
-- expiry has succeeded, lead 1's stored score is 50, its stage dropped out of MQL (recorded
-- in stage_change), its scored_at lies within that run, and lead 2 was not touched.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET TimeZone = 'UTC';

SELECT NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'leadscore') AS create_leadscore,
       NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') AS create_pg_cron \gset
CREATE EXTENSION IF NOT EXISTS leadscore;
CREATE EXTENSION IF NOT EXISTS pg_cron;

-- leftovers of an interrupted earlier run
DELETE FROM cron.job_run_details WHERE jobid IN (SELECT jobid FROM cron.job WHERE jobname = 'leadscore-refresh');
SELECT count(cron.unschedule(jobid)) AS old_jobs FROM cron.job WHERE jobname = 'leadscore-refresh' \gset
SELECT count(leadscore.untrack(model)) AS old_tracking FROM leadscore.tracking WHERE model = 'cronmodel' \gset
DELETE FROM leadscore.model WHERE name = 'cronmodel';
DROP SCHEMA IF EXISTS crm_cron CASCADE;

SELECT plan(12);

CREATE SCHEMA crm_cron;
CREATE TABLE crm_cron.activities (id bigserial PRIMARY KEY, lead_id int, type text, occurred_at timestamptz);
CREATE INDEX ON crm_cron.activities (lead_id);
CREATE TABLE crm_cron.meta (expires_at timestamptz, setup_at timestamptz);
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('cronmodel', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, expires_after)
VALUES ('cronmodel', 'e-mail open', 'email_open', 2, '90 days'),
       ('cronmodel', 'demo request', 'demo_request', 50, NULL);
INSERT INTO leadscore.stage (model, name, min_score, sticky) VALUES ('cronmodel', 'MQL', 51, false);

-- One transaction: the open counts now and expires 20 seconds from now.
BEGIN;
INSERT INTO crm_cron.meta VALUES (now() + interval '20 seconds', now());
INSERT INTO crm_cron.activities (lead_id, type, occurred_at)
VALUES (1, 'email_open', now() - interval '90 days' + interval '20 seconds'),
       (1, 'demo_request', now() - interval '1 day'),
       (2, 'email_open', now() - interval '1 day');
SELECT is(leadscore.track('cronmodel', 'crm_cron.activities', 'lead_id', 'type', 'occurred_at'), 2::bigint,
          'track() scores the 2 leads');
COMMIT;

SELECT is((SELECT string_agg(lead_id || ':' || trim_scale(score) || '/' || coalesce(stage, '-'), ' ' ORDER BY lead_id)
             FROM leadscore.lead_score WHERE model = 'cronmodel'),
          '1:52/MQL 2:2/-', 'before expiry: lead 1 has 52 (demo + open) and is MQL; lead 2 has 2');
SELECT is((SELECT next_change FROM leadscore.lead_state WHERE model = 'cronmodel' AND lead_id = '1'),
          (SELECT expires_at FROM crm_cron.meta), 'lead 1 is due for refresh exactly when its open expires');

SELECT cmp_ok(cron.schedule('leadscore-refresh', '* * * * *', $$SELECT leadscore.refresh('cronmodel')$$), '>', 0::bigint,
              'the refresh job is scheduled');

-- Wait (at most 150 s) until a run that started after the expiry has finished.
DO $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '150 seconds';
BEGIN
    LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                           WHERE j.jobname = 'leadscore-refresh' AND d.status IN ('succeeded', 'failed')
                             AND d.start_time > (SELECT expires_at FROM crm_cron.meta));
        EXIT WHEN clock_timestamp() > deadline;
        PERFORM pg_sleep(1);
    END LOOP;
END $$;

SELECT diag(format('cron run %s: status %s, %s', d.runid, d.status, d.return_message))
  FROM cron.job_run_details d JOIN cron.job j USING (jobid)
 WHERE j.jobname = 'leadscore-refresh' AND d.status <> 'succeeded';

CREATE TEMP VIEW cron_run AS
    SELECT d.* FROM cron.job_run_details d JOIN cron.job j USING (jobid)
     WHERE j.jobname = 'leadscore-refresh' AND d.status = 'succeeded'
       AND d.start_time > (SELECT expires_at FROM crm_cron.meta)
     ORDER BY d.start_time LIMIT 1;

SELECT ok(EXISTS (SELECT 1 FROM cron_run), 'pg_cron ran SELECT leadscore.refresh(''cronmodel'') successfully after the expiry');
SELECT is((SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
            WHERE j.jobname = 'leadscore-refresh' AND d.status = 'failed'), 0::bigint, 'no run failed');
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'cronmodel' AND lead_id = '1'), 50::numeric,
          'after the cron run the expired open no longer counts: 52 -> 50');
SELECT is((SELECT stage FROM leadscore.lead_score WHERE model = 'cronmodel' AND lead_id = '1'), NULL::text,
          'lead 1 dropped out of MQL (51)');
SELECT ok((SELECT ls.scored_at >= r.start_time AND ls.scored_at <= r.end_time AND ls.scored_at > m.expires_at
             FROM leadscore.lead_score ls, cron_run r, crm_cron.meta m
            WHERE ls.model = 'cronmodel' AND ls.lead_id = '1'),
          'lead 1 was rescored as of a time within the cron run, after the expiry');
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'cronmodel' AND lead_id = '1'),
          (SELECT leadscore.score('cronmodel', 1, scored_at) FROM leadscore.lead_score WHERE model = 'cronmodel' AND lead_id = '1'),
          'the stored score equals the from-scratch score as of scored_at');
SELECT is((SELECT from_stage || '>' || coalesce(to_stage, '-') || '@' || trim_scale(score) FROM leadscore.stage_change
            WHERE model = 'cronmodel' AND lead_id = '1' AND changed_at > (SELECT expires_at FROM crm_cron.meta)),
          'MQL>-@50', 'the demotion made by the cron run is recorded in stage_change');
SELECT is((SELECT trim_scale(score) || '@' || (scored_at = m.setup_at) FROM leadscore.lead_score, crm_cron.meta m
            WHERE model = 'cronmodel' AND lead_id = '2'),
          '2@true', 'lead 2 (nothing due) was not touched by the refresh');

-- cleanup: everything this file created
DELETE FROM cron.job_run_details WHERE jobid IN (SELECT jobid FROM cron.job WHERE jobname = 'leadscore-refresh');
SELECT cron.unschedule('leadscore-refresh') AS unscheduled \gset
SELECT leadscore.untrack('cronmodel') AS untracked \gset
DROP VIEW cron_run;
DROP SCHEMA crm_cron CASCADE;
DELETE FROM leadscore.model WHERE name = 'cronmodel';
\if :create_pg_cron
DROP EXTENSION pg_cron;
\endif
\if :create_leadscore
DROP EXTENSION leadscore;
\endif
SELECT * FROM finish();
