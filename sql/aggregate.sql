-- The engagement aggregate: leadscore.engagement_score(model, activity row, as_of) GROUP BY lead.
-- It must equal the engagement of leadscore.score for every lead, in serial and parallel plans,
-- and work over subqueries and views. Rule ids are explicit (3xxx).
SET timezone = 'UTC';
CREATE SCHEMA ag;
CREATE TABLE ag.activities (
    id          bigserial PRIMARY KEY,
    lead_id     int,
    type        text,
    url         text,
    occurred_at timestamptz
);
CREATE INDEX ON ag.activities (lead_id);
INSERT INTO leadscore.model (name) VALUES ('ag_model');
INSERT INTO leadscore.activity_rule (id, model, name, activity_type, attribute, op, value, points, once,
                                     max_count, max_points, expires_after, half_life) VALUES
    (3001, 'ag_model', 'open',     'email_open',   NULL,  NULL,      NULL,         2,   false, NULL, NULL, '30 days', NULL),
    (3002, 'ag_model', 'click',    'link_click',   NULL,  NULL,      NULL,         5,   false, 3,    NULL, NULL,      NULL),
    (3003, 'ag_model', 'pricing',  'page_view',    'url', '=',       '{/pricing}', 3,   false, NULL, NULL, NULL,      '7 days'),
    (3004, 'ag_model', 'blog',     'page_view',    'url', 'like',    '{/blog%}',   1,   false, NULL, 10,   NULL,      NULL),
    (3005, 'ag_model', 'no url',   'page_view',    'url', 'is null', NULL,         0.5, false, NULL, NULL, NULL,      NULL),
    (3006, 'ag_model', 'newsletter', 'newsletter', NULL,  NULL,      NULL,         10,  true,  NULL, NULL, NULL,      NULL),
    (3007, 'ag_model', 'demo',     'demo_request', NULL,  NULL,      NULL,         50,  false, 1,    NULL, NULL,      NULL),
    (3008, 'ag_model', 'unsubscribe', 'unsubscribe', NULL, NULL,     NULL,         -15, false, NULL, 30,   NULL,      NULL);

-- A small hand-checked history first.
INSERT INTO ag.activities (lead_id, type, url, occurred_at) VALUES
    (1, 'email_open',   NULL,       '2024-01-10 00:00+00'),  -- expired by Feb 15 (Jan 10 + 30 days = Feb 9)
    (1, 'email_open',   NULL,       '2024-02-01 00:00+00'),  -- 2
    (1, 'link_click',   NULL,       '2024-01-02 00:00+00'),
    (1, 'link_click',   NULL,       '2024-01-03 00:00+00'),
    (1, 'link_click',   NULL,       '2024-01-04 00:00+00'),
    (1, 'link_click',   NULL,       '2024-01-05 00:00+00'),  -- 4 clicks, max_count 3: 15
    (1, 'page_view',    '/pricing', '2024-02-08 00:00+00'),  -- one half-life before Feb 15: 1.5
    (1, 'page_view',    NULL,       '2024-02-01 00:00+00'),  -- 0.5
    (1, 'newsletter',   NULL,       '2024-01-01 00:00+00'),
    (1, 'newsletter',   NULL,       '2024-01-02 00:00+00'),  -- once: 10
    (1, 'demo_request', NULL,       '2024-03-01 00:00+00'),  -- after as_of: ignored
    (2, 'page_view',    '/blog/a',  '2024-01-01 00:00+00'),
    (2, 'unsubscribe',  NULL,       '2024-01-01 00:00+00'),
    (2, 'unsubscribe',  NULL,       '2024-01-02 00:00+00'),
    (2, 'unsubscribe',  NULL,       '2024-01-03 00:00+00'),  -- 3 x -15 = -45, max_points 30: -30
    (2, 'webinar',      NULL,       '2024-01-03 00:00+00'),  -- no rule
    (3, 'webinar',      NULL,       '2024-01-03 00:00+00'),  -- no rule at all: 0
    (NULL, 'email_open', NULL,      '2024-01-03 00:00+00'),  -- no lead
    (4, NULL,           NULL,       '2024-01-03 00:00+00'),  -- no type
    (4, 'email_open',   NULL,       NULL);                   -- no time
SELECT leadscore.track('ag_model', 'ag.activities', 'lead_id', 'type', 'occurred_at');
-- lead 1: 2 + 15 + 1.5 + 0.5 + 10 = 29; lead 2: 1 - 30 = -29; lead 3 and 4: 0
SELECT a.lead_id, leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00') AS engagement,
       leadscore.score('ag_model', a.lead_id, '2024-02-15 00:00+00') AS score
  FROM ag.activities a GROUP BY a.lead_id ORDER BY a.lead_id NULLS LAST;
-- a different as_of: Mar 1 counts the demo request; the pricing view has decayed to 3 * 0.5 ^ (22/7)
SELECT a.lead_id, leadscore.engagement_score('ag_model', a, '2024-03-01 00:00+00') AS engagement,
       leadscore.score('ag_model', a.lead_id, '2024-03-01 00:00+00') AS score
  FROM ag.activities a WHERE a.lead_id = 1 GROUP BY a.lead_id;
SELECT round(3 * 0.5 ^ (22 / 7.0), 6) AS pricing_mar1;
-- without GROUP BY: one group of all rows (caps apply to the group as a whole)
SELECT leadscore.engagement_score('ag_model', a, '2024-01-01 12:00+00') AS all_rows_jan1 FROM ag.activities a;
-- no rows: NULL
SELECT leadscore.engagement_score('ag_model', a, '2024-01-01 12:00+00') AS no_rows FROM ag.activities a WHERE false;

-- Over a subquery and a view: any row with the tracked column names works.
SELECT a.lead_id, leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00') AS january_only
  FROM (SELECT * FROM ag.activities WHERE occurred_at < '2024-02-01 00:00+00') a
 GROUP BY a.lead_id ORDER BY a.lead_id NULLS LAST;
SELECT a.lead_id, leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00') AS engagement
  FROM (SELECT occurred_at, url, type, lead_id FROM ag.activities WHERE lead_id IN (1, 2)) a
 GROUP BY a.lead_id ORDER BY a.lead_id;
CREATE VIEW ag.recent AS SELECT lead_id, type, url, occurred_at, 'extra'::text AS note
  FROM ag.activities WHERE occurred_at >= '2024-01-04 00:00+00';
-- lead 1 from Jan 4: open 2 + clicks 2 x 5 + 1.5 + 0.5 = 14; lead 2: nothing
SELECT r.lead_id, leadscore.engagement_score('ag_model', r, '2024-02-15 00:00+00') AS engagement
  FROM ag.recent r GROUP BY r.lead_id ORDER BY r.lead_id NULLS LAST;
-- a row without a column a rule needs, and an argument that is not a row
SELECT leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00')
  FROM (SELECT lead_id, type, occurred_at FROM ag.activities) a GROUP BY a.lead_id;
SELECT leadscore.engagement_score('ag_model', a.type, '2024-02-15 00:00+00') FROM ag.activities a;
SELECT leadscore.engagement_score('ag_nosuch', a, '2024-02-15 00:00+00') FROM ag.activities a;
SELECT leadscore.engagement_score(NULL, a, '2024-02-15 00:00+00') FROM ag.activities a;

-- ---------------------------------------------------------------------------
-- A few thousand rows: serial and parallel results equal each other and leadscore.score.
-- ---------------------------------------------------------------------------
INSERT INTO ag.activities (lead_id, type, url, occurred_at)
SELECT 100 + g % 200,
       (ARRAY['email_open', 'link_click', 'page_view', 'newsletter', 'demo_request', 'unsubscribe', 'webinar'])[1 + (g / 200) % 7],
       (ARRAY['/pricing', '/blog/x', NULL, '/careers'])[1 + (g / 7) % 4],
       '2024-01-01 00:00+00'::timestamptz + ((g * 7919) % 100000) * interval '1 minute'
  FROM generate_series(1, 6000) AS g;
ANALYZE ag.activities;
SELECT count(*) AS activities, count(DISTINCT lead_id) AS leads FROM ag.activities;

SET max_parallel_workers_per_gather = 0;
SELECT leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00') AS serial_total
  FROM ag.activities a WHERE a.lead_id >= 100 \gset
CREATE TEMP TABLE serial_result AS
SELECT a.lead_id, leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00') AS engagement
  FROM ag.activities a GROUP BY a.lead_id;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF)
SELECT a.lead_id, leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00') AS engagement
  FROM ag.activities a GROUP BY a.lead_id;
-- the workers really run (the count of launched workers depends on free slots, so only > 0 is shown)
CREATE FUNCTION ag.plan_lines(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query;
END
$$;
SELECT bool_or(line ~ 'Workers Launched: [1-9]') AS workers_launched
  FROM ag.plan_lines($q$SELECT a.lead_id, leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00')
                         FROM ag.activities a GROUP BY a.lead_id$q$) AS line;
CREATE TEMP TABLE parallel_result AS
SELECT a.lead_id, leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00') AS engagement
  FROM ag.activities a GROUP BY a.lead_id;
-- one group over the whole table, combined from the workers' partial states
EXPLAIN (COSTS OFF)
SELECT leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00') FROM ag.activities a WHERE a.lead_id >= 100;
SELECT leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00') AS parallel_total,
       leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00') = :serial_total AS same_as_serial
  FROM ag.activities a WHERE a.lead_id >= 100;
RESET parallel_leader_participation;
RESET max_parallel_workers_per_gather;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;

SELECT count(*) AS leads, count(*) FILTER (WHERE engagement <> 0) AS nonzero FROM serial_result;
SELECT count(*) AS serial_minus_parallel FROM (SELECT * FROM serial_result EXCEPT SELECT * FROM parallel_result) d;
SELECT count(*) AS parallel_minus_serial FROM (SELECT * FROM parallel_result EXCEPT SELECT * FROM serial_result) d;
-- equal to leadscore.score for every lead (the model has no fit rules and no bounds)
SELECT count(*) AS aggregate_differs_from_score
  FROM serial_result s
 WHERE s.lead_id IS NOT NULL
   AND s.engagement IS DISTINCT FROM leadscore.score('ag_model', s.lead_id, '2024-02-15 00:00+00');
SELECT count(*) AS aggregate_differs_from_scores_as_of
  FROM serial_result s
  LEFT JOIN leadscore.scores_as_of('ag_model', '2024-02-15 00:00+00') x ON x.lead_id = s.lead_id::text
 WHERE s.lead_id IS NOT NULL AND s.engagement IS DISTINCT FROM coalesce(x.engagement_score, 0);
-- and equal to the stored engagement computed by the triggers, taken as of each lead's scored_at
SELECT count(*) AS aggregate_differs_from_stored
  FROM leadscore.lead_score st
  JOIN LATERAL (SELECT leadscore.engagement_score('ag_model', a, st.scored_at) AS e
                  FROM ag.activities a WHERE a.lead_id = st.lead_id::int) agg ON true
 WHERE st.model = 'ag_model' AND agg.e IS DISTINCT FROM st.engagement_score;

-- ---------------------------------------------------------------------------
-- Group states live in the aggregate's memory context, so hash aggregation sees them: with
-- a tiny work_mem it spills to disk in several batches, and the results stay the same.
-- ---------------------------------------------------------------------------
SET max_parallel_workers_per_gather = 0;
SET enable_sort = off;
SET enable_indexscan = off;
SET work_mem = '64kB';
SET hash_mem_multiplier = 1;
SELECT bool_or(substring(line FROM 'Batches: ([0-9]+)')::int > 1) AS spilled
  FROM ag.plan_lines($q$SELECT a.lead_id, leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00')
                         FROM ag.activities a GROUP BY a.lead_id$q$) AS line;
CREATE TEMP TABLE spilled_result AS
SELECT a.lead_id, leadscore.engagement_score('ag_model', a, '2024-02-15 00:00+00') AS engagement
  FROM ag.activities a GROUP BY a.lead_id;
RESET hash_mem_multiplier;
RESET work_mem;
RESET enable_indexscan;
RESET enable_sort;
RESET max_parallel_workers_per_gather;
SELECT count(*) AS spilled_leads,
       (SELECT count(*) FROM (SELECT * FROM serial_result EXCEPT SELECT * FROM spilled_result) d) AS serial_minus_spilled,
       (SELECT count(*) FROM (SELECT * FROM spilled_result EXCEPT SELECT * FROM serial_result) d) AS spilled_minus_serial
  FROM spilled_result;
-- a few values, hand-checkable through explain
SELECT s.lead_id, s.engagement,
       (SELECT sum(points) FROM leadscore.explain('ag_model', s.lead_id, '2024-02-15 00:00+00')) AS explained
  FROM serial_result s WHERE s.lead_id IN (100, 101, 299) ORDER BY s.lead_id;

-- Clean up
SELECT leadscore.untrack('ag_model');
DELETE FROM leadscore.model WHERE name = 'ag_model';
DROP TABLE serial_result, parallel_result;
DROP SCHEMA ag CASCADE;
