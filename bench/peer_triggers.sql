-- The peers' score tables and triggers, once bench/run.sh has filled the peers' activity
-- tables (bench/peers.sql defines them).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET timezone = 'UTC';

CREATE TABLE peer.score_row (lead_id bigint PRIMARY KEY, score numeric, stage text, scored_at timestamptz);
CREATE TABLE peer.score_stmt (lead_id bigint PRIMARY KEY, score numeric, stage text, scored_at timestamptz);
INSERT INTO peer.score_row SELECT lead_id, score, stage, now() FROM peer.scores_row_all(now());
INSERT INTO peer.score_stmt SELECT lead_id, score, stage, now() FROM peer.scores_stmt_all(now());

-- (b) the row trigger: recompute the lead of every inserted row.
CREATE FUNCTION peer.row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO peer.score_row AS s
    SELECT c.lead_id, c.score, c.stage, now() FROM peer.scores_row(ARRAY[NEW.lead_id], now()) c
    ON CONFLICT (lead_id) DO UPDATE SET score = excluded.score, stage = excluded.stage, scored_at = excluded.scored_at;
    RETURN NULL;
END
$$;
CREATE TRIGGER scores AFTER INSERT ON peer.act_row FOR EACH ROW EXECUTE FUNCTION peer.row_changed();

-- (c) the statement trigger: recompute every lead the statement touched, once.
CREATE FUNCTION peer.stmt_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO peer.score_stmt AS s
    SELECT c.lead_id, c.score, c.stage, now()
      FROM peer.scores_stmt(ARRAY(SELECT DISTINCT lead_id FROM new_rows ORDER BY 1), now()) c
     ORDER BY c.lead_id
    ON CONFLICT (lead_id) DO UPDATE SET score = excluded.score, stage = excluded.stage, scored_at = excluded.scored_at;
    RETURN NULL;
END
$$;
CREATE TRIGGER scores AFTER INSERT ON peer.act_stmt REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION peer.stmt_changed();

-- (e) the floor of the design: a statement trigger with a transition table that does nothing.
CREATE FUNCTION peer.noop_changed() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER noop AFTER INSERT ON peer.act_noop REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION peer.noop_changed();

-- (f) the floor of keeping any per-lead state current in the same statement: the untracked
-- insert plus an UPDATE of one small per-lead row by its key (the "upd" INSERT target), and
-- for COPY a statement trigger doing only that UPDATE, grouped by lead (peer.act_upd).
CREATE TABLE peer.lead_counter (lead_id bigint PRIMARY KEY, activities bigint NOT NULL, last_at timestamptz)
    WITH (fillfactor = 90);
INSERT INTO peer.lead_counter
SELECT l.id, count(a.lead_id), max(a.occurred_at) FROM crm.lead l LEFT JOIN crm.activity a ON a.lead_id = l.id GROUP BY l.id;
ANALYZE peer.lead_counter;
CREATE FUNCTION peer.upd_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE peer.lead_counter c SET activities = c.activities + n.n, last_at = greatest(c.last_at, n.last_at)
      FROM (SELECT lead_id, count(*) AS n, max(occurred_at) AS last_at FROM new_rows GROUP BY lead_id) n
     WHERE c.lead_id = n.lead_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER upd AFTER INSERT ON peer.act_upd REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION peer.upd_changed();

-- (g) issue #7's reference peers: they only add a per-type point value to a score row (the
-- first rule of each type in the demo model), with no caps, expiry, decay, fit or stages, so
-- they compute less than leadscore; the run checks their sums, not their equivalence.
CREATE TABLE peer.type_points (type text PRIMARY KEY, points numeric NOT NULL);
INSERT INTO peer.type_points
SELECT DISTINCT ON (activity_type) activity_type, points FROM peer.rule ORDER BY activity_type, id;
CREATE TABLE peer.simple_score_row (lead_id bigint PRIMARY KEY, score numeric NOT NULL) WITH (fillfactor = 90);
INSERT INTO peer.simple_score_row
SELECT l.id, coalesce(sum(p.points), 0)
  FROM crm.lead l LEFT JOIN crm.activity a ON a.lead_id = l.id LEFT JOIN peer.type_points p ON p.type = a.type
 GROUP BY l.id;
CREATE TABLE peer.simple_score_stmt (LIKE peer.simple_score_row INCLUDING ALL) WITH (fillfactor = 90);
INSERT INTO peer.simple_score_stmt SELECT * FROM peer.simple_score_row;
ANALYZE peer.type_points, peer.simple_score_row, peer.simple_score_stmt;

-- The cheapest correct row trigger: an UPDATE of the lead's row, an upsert only for a new lead.
CREATE FUNCTION peer.simple_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE peer.simple_score_row s SET score = s.score + p.points
      FROM peer.type_points p WHERE s.lead_id = NEW.lead_id AND p.type = NEW.type;
    IF NOT FOUND THEN
        INSERT INTO peer.simple_score_row AS s SELECT NEW.lead_id, p.points FROM peer.type_points p WHERE p.type = NEW.type
        ON CONFLICT (lead_id) DO UPDATE SET score = s.score + excluded.score;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER scores AFTER INSERT ON peer.act_simple_row FOR EACH ROW EXECUTE FUNCTION peer.simple_row_changed();

-- One grouped upsert per statement, in lead order (so concurrent statements cannot deadlock).
CREATE FUNCTION peer.simple_stmt_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO peer.simple_score_stmt AS s
    SELECT n.lead_id, sum(p.points) FROM new_rows n JOIN peer.type_points p ON p.type = n.type
     GROUP BY n.lead_id ORDER BY n.lead_id
    ON CONFLICT (lead_id) DO UPDATE SET score = s.score + excluded.score;
    RETURN NULL;
END
$$;
CREATE TRIGGER scores AFTER INSERT ON peer.act_simple_stmt REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION peer.simple_stmt_changed();
