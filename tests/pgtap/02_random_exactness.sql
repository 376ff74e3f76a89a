-- Seeded randomized exactness: inserts, updates, deletes, truncates, rule edits, lead
-- changes and refreshes; after every batch each stored score, fit, engagement and
-- stage equals a from-scratch recompute as of its scored_at.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SET LOCAL client_min_messages = warning;
SELECT plan(3);
CREATE SCHEMA rx;
SET LOCAL search_path = rx, public;
CREATE TABLE leads (id int PRIMARY KEY, title text, email text, employees int);
CREATE TABLE act (id bigserial, lead_id int, type text, url text, occurred_at timestamptz);
CREATE INDEX ON act(lead_id);
INSERT INTO leads SELECT i, (ARRAY['CEO','eng','student'])[1+i%3], 'u'||i||(ARRAY['@gmail.com','@acme.com'])[1+i%2], i*10 FROM generate_series(1,200) i;
INSERT INTO leadscore.model VALUES ('m', -50, 300);
INSERT INTO leadscore.activity_rule (model,name,activity_type,points,once,max_count,max_points,expires_after,half_life) VALUES
 ('m','a','a',10,false,null,null,null,null),
 ('m','b','b',3,false,3,null,'10 days',null),
 ('m','c','c',7,true,null,null,null,'5 days'),
 ('m','d','d',-4,false,null,10,null,null),
 ('m','e','e',2.5,false,2,null,null,'2 days');
INSERT INTO leadscore.activity_rule (model,name,activity_type,attribute,op,value,points) VALUES ('m','f','f','url','like','{%pricing%}',15);
INSERT INTO leadscore.fit_rule (model,name,attribute,op,value,points) VALUES ('m','ceo','title','=','{CEO}',20),('m','big','employees','>','{1000}',10),('m','free','email','domain in list','{free_email_domains}',-5);
INSERT INTO leadscore.stage VALUES ('m','low',0,null,null,false),('m','mid',30,null,5,false),('m','hi',60,10,null,false);
SELECT is(leadscore.track('m','rx.act','lead_id','type','occurred_at','rx.leads','id'), 200::bigint, 'track scores 200 leads');
SELECT setseed(0.1);
CREATE FUNCTION rx.check_all() RETURNS bigint LANGUAGE sql AS $$
  WITH recomputed AS (
      SELECT t.at, s.* FROM (SELECT DISTINCT scored_at AS at FROM leadscore.lead_score WHERE model = 'm') t
      CROSS JOIN LATERAL leadscore.scores_as_of('m', t.at) s)
  SELECT count(*) FROM leadscore.lead_score ls
   CROSS JOIN LATERAL (SELECT coalesce(sum(points) FILTER (WHERE family = 'fit'), 0) AS fit,
                              coalesce(sum(points) FILTER (WHERE family = 'engagement'), 0) AS eng
                         FROM leadscore.explain('m', ls.lead_id::int, ls.scored_at)) e
   WHERE ls.model = 'm'
     AND (ls.score IS DISTINCT FROM leadscore.score('m', ls.lead_id::int, ls.scored_at)
          OR ls.fit_score <> e.fit OR ls.engagement_score <> e.eng
          OR ls.stage IS DISTINCT FROM (SELECT s.stage FROM recomputed s WHERE s.lead_id = ls.lead_id AND s.at = ls.scored_at))
$$;
CREATE TABLE rx.mismatches (iteration int, bad bigint);


DO $$
DECLARE i int; bad bigint; t timestamptz := now();
BEGIN
  FOR i IN 1..60 LOOP
    INSERT INTO act (lead_id, type, url, occurred_at)
      SELECT 1+floor(random()*220)::int, (ARRAY['a','b','c','d','e','f','x'])[1+floor(random()*7)::int],
             CASE WHEN random()<0.5 THEN '/pricing' END, now() - random()*interval '30 days' + interval '3 days'
      FROM generate_series(1, 50);
    IF i % 3 = 0 THEN DELETE FROM act WHERE id IN (SELECT id FROM act ORDER BY random() LIMIT 20); END IF;
    IF i % 4 = 0 THEN UPDATE act SET lead_id = 1+floor(random()*200)::int WHERE id IN (SELECT id FROM act ORDER BY random() LIMIT 10); END IF;
    IF i % 5 = 0 THEN UPDATE act SET occurred_at = occurred_at - interval '4 days' WHERE id IN (SELECT id FROM act ORDER BY random() LIMIT 10); END IF;
    IF i % 7 = 0 THEN UPDATE leadscore.activity_rule SET points = points + 1 WHERE model = 'm' AND name = (ARRAY['a','b','c','d','e'])[1+floor(random()*5)::int]; END IF;
    IF i % 9 = 0 THEN UPDATE leads SET title = (ARRAY['CEO','eng','student'])[1+floor(random()*3)::int] WHERE id IN (SELECT id FROM leads ORDER BY random() LIMIT 20); END IF;
    IF i % 11 = 0 THEN DELETE FROM leads WHERE id = 1+floor(random()*200)::int; END IF;
    IF i % 13 = 0 THEN INSERT INTO leads VALUES (200+i, 'CEO', 'x@y.com', 5000); END IF;
    IF i % 17 = 0 THEN UPDATE leadscore.activity_rule SET enabled = NOT enabled WHERE model = 'm' AND name = 'f'; END IF;
    IF i % 19 = 0 THEN PERFORM leadscore.refresh('m', now() + interval '1 day' * (i/19)); END IF;
    IF i = 40 THEN TRUNCATE act; END IF;
    bad := check_all();
    IF bad > 0 THEN INSERT INTO rx.mismatches VALUES (i, bad); END IF;
  END LOOP;
END $$;
SELECT is((SELECT count(*) FROM rx.mismatches), 0::bigint, 'zero mismatches after 60 random batches');
SELECT cmp_ok((SELECT count(*) FROM leadscore.lead_score WHERE model = 'm'), '>', 150::bigint, 'leads are still tracked');
SELECT * FROM finish();
ROLLBACK;
