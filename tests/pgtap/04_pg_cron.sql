-- refresh() scheduled through pg_cron for real: an expiring occurrence's points disappear
-- from the stored score once the cron job has run. Runs outside a transaction (the job
-- runs in its own session), so it cleans up after itself.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS leadscore;
CREATE EXTENSION IF NOT EXISTS pg_cron;
SELECT plan(4);

CREATE SCHEMA crm_cron;
CREATE TABLE crm_cron.activities (lead_id int, type text, occurred_at timestamptz);
CREATE INDEX ON crm_cron.activities (lead_id);
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('cronmodel', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, expires_after)
VALUES ('cronmodel', 'e-mail open', 'email_open', 2, '3 months');
-- Counts now, expires 5 seconds from now.
INSERT INTO crm_cron.activities VALUES (1, 'email_open', now() - interval '3 months' + interval '5 seconds');
SELECT is(leadscore.track('cronmodel', 'crm_cron.activities', 'lead_id', 'type', 'occurred_at'), 1::bigint,
          'the lead is scored at track time');
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'cronmodel'), 2::numeric,
          'the open counts before it expires');

SELECT cron.schedule('leadscore-refresh-test', '* * * * *', $$SELECT leadscore.refresh('cronmodel')$$) > 0 AS scheduled \gset

DO $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '150 seconds';
BEGIN
    LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                           WHERE j.jobname = 'leadscore-refresh-test' AND d.status = 'succeeded');
        EXIT WHEN clock_timestamp() > deadline;
        PERFORM pg_sleep(2);
    END LOOP;
END $$;

SELECT ok(EXISTS (SELECT 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                   WHERE j.jobname = 'leadscore-refresh-test' AND d.status = 'succeeded'),
          'pg_cron ran leadscore.refresh()');
SELECT is((SELECT score FROM leadscore.lead_score WHERE model = 'cronmodel'), 0::numeric,
          'after the cron run the expired open no longer counts');

SELECT cron.unschedule('leadscore-refresh-test') AS unscheduled \gset
SELECT leadscore.untrack('cronmodel') AS untracked \gset
DROP SCHEMA crm_cron CASCADE;
DELETE FROM leadscore.model WHERE name = 'cronmodel';
SELECT * FROM finish();
