-- leadscore demo CRM generator: a realistic, seeded, reproducible CRM of any size.
--
--   psql -X -v seed=42 -v leads=1000 -f demo/generate.sql
--   optional: -v activities=N (default 50 per lead)  -v months=12  -v anchor=2026-11-01
--
-- Drops and recreates schema crm (and crm_hidden). Every lead has a hidden propensity drawn
-- from its firmographics plus noise; the intensity and kind of its activity stream and its
-- chance to convert both follow that propensity, so evaluation numbers are meaningful.
-- Same seed, size and anchor give the same rows (parallel query is switched off).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
SET timezone = 'UTC';
\if :{?seed}
\else
  \set seed 42
\endif
\if :{?leads}
\else
  \set leads 1000
\endif
\if :{?months}
\else
  \set months 12
\endif
\if :{?activities}
\else
  SELECT (:leads)::bigint * 50 AS activities \gset
\endif
\if :{?anchor}
\else
  SELECT current_date AS anchor \gset
\endif

DROP SCHEMA IF EXISTS crm CASCADE;
DROP SCHEMA IF EXISTS crm_hidden CASCADE;
CREATE SCHEMA crm;
CREATE SCHEMA crm_hidden;

SELECT setseed(((:seed)::bigint % 1000000) / 1000000.0 * 2 - 1) AS seeded \gset

-- Accounts: about one per four leads.
CREATE TABLE crm.account (
    id        int PRIMARY KEY,
    name      text NOT NULL,
    domain    text NOT NULL,
    industry  text,
    employees int,
    revenue   numeric,
    country   text
);
INSERT INTO crm.account
SELECT a,
       initcap(w1) || ' ' || initcap(w2) || ' ' || suffix,
       w1 || w2 || a || '.' || tld,
       industry, employees,
       round((employees * (40000 + random() * 260000))::numeric, -3),
       country
  FROM generate_series(1, greatest(1, (:leads) / 4)) AS a,
       LATERAL (SELECT (ARRAY['blue','north','bright','prime','nova','delta','summit','river','apex','lumen',
                              'iron','cedar','pixel','quantum','silver','vertex'])[1 + floor(random() * 16)::int] AS w1,
                       (ARRAY['soft','labs','works','tech','data','logic','systems','cloud','forge','bridge'])
                           [1 + floor(random() * 10)::int] AS w2,
                       (ARRAY['Inc','GmbH','Ltd','SA','BV','LLC'])[1 + floor(random() * 6)::int] AS suffix,
                       (ARRAY['com','io','de','co.uk','fr','nl'])[1 + floor(random() * 6)::int] AS tld,
                       (ARRAY['software','software','finance','manufacturing','retail','healthcare','education',
                              'logistics','media','government'])[1 + floor(random() * 10)::int] AS industry,
                       (ARRAY[5, 20, 60, 150, 400, 1200, 3500, 12000])[1 + floor(random() * 8)::int]
                           + floor(random() * 10)::int AS employees,
                       (ARRAY['US','US','US','DE','GB','FR','NL','IN','BR','CA','AU','ES'])
                           [1 + floor(random() * 12)::int] AS country,
                       a AS pin) AS r;

CREATE TABLE crm.lead (
    id              bigint PRIMARY KEY,
    account_id      int REFERENCES crm.account (id),
    first_name      text,
    last_name       text,
    title           text,
    email           text,
    industry        text,
    employees       int,
    revenue         numeric,
    country         text,
    lead_source     text,
    uses_competitor text,
    created_at      timestamptz NOT NULL
);
CREATE TABLE crm_hidden.truth (
    lead_id    bigint PRIMARY KEY,
    propensity double precision NOT NULL
);

-- Leads, their hidden propensity, and an e-mail that is sometimes free-mail or a competitor's.
CREATE TEMP TABLE gen_lead AS
SELECT l AS id,
       1 + floor(random() * greatest(1, (:leads) / 4))::int AS account_id,
       (ARRAY['Ada','Ben','Chloe','Dev','Eva','Finn','Gita','Hugo','Iris','Jon','Kai','Lena','Mo','Nia','Omar',
              'Pia','Quinn','Rosa','Sam','Tara'])[1 + floor(random() * 20)::int] AS first_name,
       (ARRAY['Meyer','Okafor','Rossi','Tanaka','Novak','Silva','Smith','Kowalski','Haddad','Larsen','Nguyen',
              'Garcia'])[1 + floor(random() * 12)::int] AS last_name,
       floor(random() * 100)::int AS title_roll,
       random() AS mail_roll,
       random() AS source_roll,
       random() AS competitor_roll,
       random() AS noise1,
       random() AS noise2,
       random() AS created_roll
  FROM generate_series(1, (:leads)::bigint) AS l;

INSERT INTO crm.lead
SELECT g.id, g.account_id, g.first_name, g.last_name, t.title,
       lower(g.first_name) || '.' || lower(g.last_name) || g.id || '@' ||
       CASE WHEN g.mail_roll < 0.22 THEN (ARRAY['gmail.com','outlook.com','yahoo.com','hotmail.com','gmx.de',
                                                  'web.de','icloud.com'])[1 + (g.id % 7)::int]
            WHEN g.mail_roll < 0.235 THEN 'rivalscore.example'
            ELSE a.domain END,
       a.industry, a.employees, a.revenue, a.country,
       (ARRAY['organic search','paid search','webinar','referral','event','outbound','partner','social'])
           [1 + floor(g.source_roll * 8)::int],
       CASE WHEN g.competitor_roll < 0.15 THEN (ARRAY['HubSpot','Marketo','Pardot','ActiveCampaign'])
                                                   [1 + floor(g.competitor_roll / 0.15 * 4)::int] END,
       (:'anchor')::timestamptz - (:months) * interval '1 month' * g.created_roll
  FROM gen_lead g
  JOIN crm.account a ON a.id = g.account_id
  CROSS JOIN LATERAL (SELECT CASE
        WHEN g.title_roll < 4 THEN 'CEO' WHEN g.title_roll < 7 THEN 'CTO' WHEN g.title_roll < 9 THEN 'CFO'
        WHEN g.title_roll < 16 THEN 'VP Marketing' WHEN g.title_roll < 21 THEN 'VP Sales'
        WHEN g.title_roll < 27 THEN 'Head of Operations' WHEN g.title_roll < 40 THEN 'Marketing Manager'
        WHEN g.title_roll < 50 THEN 'Sales Manager' WHEN g.title_roll < 68 THEN 'Engineer'
        WHEN g.title_roll < 78 THEN 'Analyst' WHEN g.title_roll < 85 THEN 'Consultant'
        WHEN g.title_roll < 92 THEN 'Student' ELSE 'Intern' END AS title) AS t;

-- Propensity: a logistic function of seniority, industry, size, e-mail kind, source, plus noise.
INSERT INTO crm_hidden.truth
SELECT l.id,
       1 / (1 + exp(-(
           -2.2
           + CASE WHEN l.title IN ('CEO','CTO','CFO') THEN 1.1 WHEN l.title LIKE 'VP%' OR l.title LIKE 'Head%' THEN 0.9
                  WHEN l.title LIKE '%Manager' THEN 0.4 WHEN l.title IN ('Student','Intern') THEN -1.6 ELSE 0 END
           + CASE WHEN l.industry IN ('software','finance') THEN 0.6 WHEN l.industry = 'government' THEN -0.5 ELSE 0 END
           + CASE WHEN l.employees BETWEEN 50 AND 5000 THEN 0.5 WHEN l.employees < 20 THEN -0.6 ELSE 0 END
           + CASE WHEN split_part(l.email, '@', 2) IN ('gmail.com','outlook.com','yahoo.com','hotmail.com','gmx.de',
                                                       'web.de','icloud.com') THEN -0.7
                  WHEN split_part(l.email, '@', 2) = 'rivalscore.example' THEN -2.5 ELSE 0 END
           + CASE WHEN l.lead_source IN ('referral','event','webinar') THEN 0.5 ELSE 0 END
           + CASE WHEN l.uses_competitor IS NOT NULL THEN 0.3 ELSE 0 END
           + 1.4 * (g.noise1 + g.noise2 - 1))))
  FROM crm.lead l JOIN gen_lead g ON g.id = l.id;

CREATE TABLE crm.activity (
    id          bigserial PRIMARY KEY,
    lead_id     bigint NOT NULL,
    type        text NOT NULL,
    url         text,
    occurred_at timestamptz NOT NULL
);

-- Activity streams: more, and more purchase-minded, activity for leads with a high propensity.
-- Each lead's count is its share of the requested total, weighted by its propensity.
CREATE TEMP TABLE gen_count AS
SELECT t.lead_id, t.propensity, l.created_at,
       floor((:activities)::double precision * w.weight / sum(w.weight) OVER () + random())::int AS n
  FROM crm_hidden.truth t
  JOIN crm.lead l ON l.id = t.lead_id
  CROSS JOIN LATERAL (SELECT (0.25 + 2.5 * t.propensity) * (0.5 + random()) AS weight) AS w;

INSERT INTO crm.activity (lead_id, type, url, occurred_at)
SELECT c.lead_id, k.type,
       CASE WHEN k.type = 'page_view' THEN
           CASE WHEN random() < 0.15 + 0.5 * c.propensity THEN '/pricing'
                ELSE (ARRAY['/blog/lead-scoring','/product','/product/integrations','/careers','/about','/docs'])
                         [1 + floor(random() * 6)::int] END END,
       -- recent months are busier for leads that are about to buy
       least((:'anchor')::timestamptz,
             greatest(c.created_at, (:'anchor')::timestamptz
                 - (:months) * interval '1 month' * power(random(), 1 + 1.5 * c.propensity)))
  FROM gen_count c
  CROSS JOIN LATERAL generate_series(1, c.n) AS s
  CROSS JOIN LATERAL (SELECT random() AS r, c.propensity AS p, s AS pin) AS x
  CROSS JOIN LATERAL (SELECT CASE
        WHEN x.r < 0.36 - 0.10 * x.p THEN 'email_open'
        WHEN x.r < 0.50 - 0.08 * x.p THEN 'email_click'
        WHEN x.r < 0.76 THEN 'page_view'
        WHEN x.r < 0.80 THEN 'newsletter'
        WHEN x.r < 0.85 THEN 'ebook'
        WHEN x.r < 0.89 THEN 'case_study'
        WHEN x.r < 0.92 THEN 'webinar'
        WHEN x.r < 0.925 + 0.05 * x.p THEN 'demo_request'
        WHEN x.r < 0.935 + 0.06 * x.p THEN 'trial_signup'
        WHEN x.r < 0.94 + 0.07 * x.p THEN 'contact_sales'
        WHEN x.r < 0.975 THEN 'bounce'
        ELSE 'unsubscribe' END AS type) AS k
 ORDER BY 4;
CREATE INDEX activity_lead_idx ON crm.activity (lead_id);

-- Outcomes in the last two months before the anchor, drawn from the propensity.
CREATE TABLE crm.outcome (
    lead_id      bigint PRIMARY KEY,
    converted    boolean NOT NULL,
    converted_at timestamptz
);
INSERT INTO crm.outcome
SELECT t.lead_id, x.won,
       CASE WHEN x.won THEN (:'anchor')::timestamptz - interval '60 days' * random() END
  FROM crm_hidden.truth t
  CROSS JOIN LATERAL (SELECT random() < t.propensity AS won, t.lead_id AS pin) AS x;

COMMENT ON SCHEMA crm IS 'leadscore demo CRM (demo/generate.sql): accounts, leads, activities, outcomes.';
COMMENT ON SCHEMA crm_hidden IS 'The generator''s hidden truth (propensity per lead); never used for scoring.';
ANALYZE crm.account;
ANALYZE crm.lead;
ANALYZE crm.activity;
ANALYZE crm.outcome;
