-- State tables are filled so that one statement can update every lead in place: after
-- track(), a bulk insert touching all leads updates every state row HOT (no index writes,
-- no new pages), and the table keeps fillfactor 90 for what comes later.
BEGIN;
CREATE EXTENSION IF NOT EXISTS leadscore;
SELECT plan(7);

CREATE SCHEMA crm_s;
CREATE TABLE crm_s.acts (id bigserial PRIMARY KEY, lead_id bigint, type text, at timestamptz);
CREATE INDEX ON crm_s.acts (lead_id);
INSERT INTO leadscore.model (name) VALUES ('store');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, half_life) VALUES
    ('store', 'open', 'open', 1, '30 days'),
    ('store', 'visit', 'visit', 2, NULL);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('store', 'warm', 10), ('store', 'hot', 40);
-- 3000 leads with a dozen activities each over the last months.
INSERT INTO crm_s.acts (lead_id, type, at)
SELECT l, CASE WHEN g % 3 = 0 THEN 'visit' ELSE 'open' END, now() - (g * 7 + l % 5) * interval '1 day'
  FROM generate_series(1, 3000) l, generate_series(0, 11) g;
SELECT is(leadscore.track('store', 'crm_s.acts', 'lead_id', 'type', 'at'), 3000::bigint, 'track() scores 3000 leads');

CREATE FUNCTION pg_temp.state_table() RETURNS regclass LANGUAGE sql AS
    $$ SELECT ('leadscore.' || quote_ident(state_table))::regclass FROM leadscore.tracking WHERE model = 'store' $$;

SELECT is((SELECT reloptions FROM pg_class WHERE oid = pg_temp.state_table()), ARRAY['fillfactor=90'],
          'the state table keeps fillfactor 90 after the fill');
SELECT cmp_ok((SELECT pg_relation_size(pg_temp.state_table())::numeric / current_setting('block_size')::int
                 / (SELECT count(*) FROM leadscore.lead_state WHERE model = 'store')), '>', 1.0 / 20,
              'its rows were written about half a page''s worth apart (fewer than 20 per page)');

SELECT pg_stat_get_xact_tuples_updated(pg_temp.state_table()) AS upd0,
       pg_stat_get_xact_tuples_hot_updated(pg_temp.state_table()) AS hot0,
       pg_relation_size(pg_temp.state_table()) AS size0 \gset
INSERT INTO crm_s.acts (lead_id, type, at) SELECT l, 'visit', now() FROM generate_series(1, 3000) l;
SELECT is(pg_stat_get_xact_tuples_updated(pg_temp.state_table()) - :upd0, 3000::bigint,
          'one statement with an activity of every lead updates every state row');
SELECT is(pg_stat_get_xact_tuples_hot_updated(pg_temp.state_table()) - :hot0, 3000::bigint,
          'all of them in place (HOT)');
SELECT is(pg_relation_size(pg_temp.state_table()), :size0::bigint, 'without a new page');
SELECT is((SELECT count(*) FROM leadscore.lead_score s
            WHERE s.model = 'store' AND s.score IS DISTINCT FROM leadscore.score('store', s.lead_id::bigint)),
          0::bigint, 'and every stored score equals a recompute');

SELECT * FROM finish();
ROLLBACK;
