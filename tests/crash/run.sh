#!/usr/bin/env bash
# Crash safety: kill the postmaster with SIGKILL in the middle of a large multi-statement load
# (one transaction still open), restart it, and check that every committed activity is
# scored, no uncommitted one is, and every stored score equals a recompute.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${LEADSCORE_CRASH_INNER:-}" ]; then
    export LEADSCORE_CRASH_INNER=1 PGUSER="${PGUSER:-postgres}"
    exec pg_virtualenv -t -v 15 "$0"
fi
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
data_dir="$(q -c "SHOW data_directory")"

q <<'SQL'
CREATE EXTENSION leadscore;
CREATE SCHEMA c;
CREATE TABLE c.leads (id int PRIMARY KEY, title text);
CREATE TABLE c.acts (id bigserial PRIMARY KEY, lead_id int, type text, occurred_at timestamptz, batch int);
CREATE INDEX ON c.acts (lead_id);
-- batch numbers that committed, written in the same transaction as their rows
CREATE TABLE c.committed (batch int PRIMARY KEY);
INSERT INTO c.leads SELECT i, CASE WHEN i % 5 = 0 THEN 'CEO' ELSE 'Engineer' END FROM generate_series(1, 2100) i;
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('crash', 0, 10000);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, max_count, expires_after) VALUES
    ('crash', 'open', 'open', 1, 50, NULL), ('crash', 'click', 'click', 3, NULL, '400 days'), ('crash', 'demo', 'demo', 40, 1, NULL);
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES ('crash', 'ceo', 'title', '=', '{CEO}', 25);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('crash', 'warm', 30), ('crash', 'hot', 100);
SELECT leadscore.track('crash', 'c.acts', 'lead_id', 'type', 'occurred_at', 'c.leads', 'id') AS tracked \gset
SQL

# The load: committed batches of 2000 rows, each also recording its number.
(
    for b in $(seq 1 100000); do
        echo "BEGIN;
INSERT INTO c.acts (lead_id, type, occurred_at, batch)
SELECT 1 + (g * 7919 + $b * 104729) % 2000, (ARRAY['open','open','click','demo'])[1 + (g + $b) % 4],
       now() - ((g % 300) || ' days')::interval, $b FROM generate_series(1, 2000) g;
INSERT INTO c.committed VALUES ($b);
COMMIT;"
    done
) | psql -X -q >/dev/null 2>&1 &
loader=$!
# An open transaction whose rows must vanish.
psql -X -q -c "BEGIN" -c "INSERT INTO c.acts (lead_id, type, occurred_at, batch) SELECT 2001 + g % 100, 'demo', now(), -1 FROM generate_series(1, 5000) g" \
    -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
open_tx=$!
sleep 4
before="$(q -c "SELECT count(*) FROM c.committed")"
postmaster="$(head -1 "$data_dir/postmaster.pid")"
kill -9 "$postmaster"
echo "crash: killed the postmaster (pid $postmaster) after $before committed batches"
wait $loader 2>/dev/null || true
wait $open_tx 2>/dev/null || true
# The backends die with the postmaster's shared memory gone; make sure none is left behind.
for _ in $(seq 50); do pgrep -f "postgres: 15/regress" >/dev/null || break; sleep 0.2; done
pkill -9 -f "postgres: 15/regress" 2>/dev/null || true
# The killed postmaster may linger as a zombie (nothing reaps it here): then its socket lock
# file looks owned by a live process, so remove lock files whose owner is dead or a zombie.
for lock in /var/run/postgresql/.s.PGSQL.*.lock "$data_dir/postmaster.pid"; do
    [ -f "$lock" ] || continue
    owner="$(head -1 "$lock")"
    state="$(ps -o stat= -p "$owner" 2>/dev/null | tr -d ' ')"
    if [ -z "$state" ] || [ "${state#Z}" != "$state" ]; then rm -f "$lock"; fi
done
pg_ctlcluster 15 regress start || { tail -20 "$(ls -d /tmp/pg_virtualenv.*/log 2>/dev/null | head -1)"/*.log; exit 1; }
for _ in $(seq 100); do q -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done

fail=0
check() { local what="$1" got="$2" want="$3"
    if [ "$got" = "$want" ]; then echo "crash: $what: $got"; else echo "crash: $what: got $got, want $want"; fail=1; fi; }
committed="$(q -c "SELECT count(*) FROM c.committed")"
[ "$committed" -ge "$before" ] || { echo "crash: committed batches went down ($before -> $committed)"; fail=1; }
check "batches committed before the kill" "$([ "$committed" -gt 0 ] && echo yes)" yes
check "rows of committed batches all present" \
    "$(q -c "SELECT count(*) FROM c.acts a WHERE a.batch IN (SELECT batch FROM c.committed)")" "$(( committed * 2000 ))"
check "rows of batches that never committed" "$(q -c "SELECT count(*) FROM c.acts WHERE batch NOT IN (SELECT batch FROM c.committed)")" 0
check "leads with state" "$(q -c "SELECT count(*) FROM leadscore.lead_score WHERE model = 'crash'")" 2100
check "stored scores that differ from a recompute" \
    "$(q -c "SELECT count(*) FROM leadscore.lead_score s WHERE model = 'crash'
              AND s.score <> leadscore.score('crash', s.lead_id::int, s.scored_at)")" 0
check "a rescore changes nothing" "$(q -c "SELECT leadscore.rescore('crash')")" 0
# Live scoring works after recovery.
q -c "INSERT INTO c.acts (lead_id, type, occurred_at, batch) VALUES (1, 'demo', now(), 0)"
check "live scoring after recovery" "$(q -c "SELECT count(*) FROM leadscore.lead_score s WHERE model = 'crash' AND lead_id = '1'
                                             AND s.score = leadscore.score('crash', 1, s.scored_at)")" 1
if [ $fail -ne 0 ]; then echo "crash test: FAILED"; exit 1; fi
echo "crash test: ok"
