#!/usr/bin/env bash
# Change data capture with tools/leadscore-sync on a pgoutput slot: exactly the committed stage
# changes reach the command (none of a rolled-back transaction, each once, as stored), in commit
# order rather than id order, at least once across kill -9 and a failing command, and a rerun
# delivers nothing new; the slot moves past WAL without stage changes; SIGTERM stops between
# changes; clear errors for what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${LEADSCORE_SYNC_INNER:-}" ]; then
    export LEADSCORE_SYNC_INNER=1 PGUSER="${PGUSER:-postgres}"
    make -s -C tools/leadscore-sync
    exec pg_virtualenv -t -v 15 -o wal_level=logical -o max_replication_slots=10 -o max_wal_senders=10 "$0"
fi
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -d sync "$@"; }
tool=tools/leadscore-sync/leadscore-sync
conn="dbname=sync"
work="$(mktemp -d /tmp/leadscore-sync.XXXXXX)"
background=()
cleanup() {
    local rc=$?
    for p in "${background[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    if [ $rc -ne 0 ] && [ -z "$reported" ]; then
        for f in "$work"/*.err; do [ -s "$f" ] && { echo "--- $(basename "$f"):"; tail -n 5 "$f"; }; done
        echo "sync test: FAILED (exit status $rc)"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail=0
reported=""
check() { if [ "$2" = "$3" ]; then echo "sync: $1"; else echo "sync: FAILED: $1 (got '$2', want '$3')"; fail=1; fi; }
wait_for() {   # sql expected: poll until the query returns the expected value (at most 30 s)
    for _ in $(seq 1 300); do
        [ "$(q -c "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    echo "sync: FAILED: timed out waiting for: $1 = $2"; exit 1
}
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
# Appends each change (one JSON object, no newline) to a file as one line.
append() { echo "cat >> '$1'; echo >> '$1'${2:+; $2}"; }
# Loads a file of delivered changes into table $2 (n: line number, line: raw text, j: the JSON).
load() {
    q -c "DROP TABLE IF EXISTS got.$2; CREATE TABLE got.$2 (n serial, line text, j jsonb)"
    if [ -s "$1" ]; then
        q -c "\\copy got.$2 (line) FROM '$1' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
        q -c "UPDATE got.$2 SET j = line::jsonb"   # fails on anything that is not JSON
    fi
}
sync_once() {   # file [extra options]: one --once run appending to file; stderr to file.err
    local file="$1"; shift
    "$tool" "$conn" --once --command "$(append "$file")" "$@" 2>"$file.err"
}

createdb -E UTF8 -T template0 --locale=C sync
q >/dev/null <<'SQL'
CREATE EXTENSION leadscore;
CREATE SCHEMA crm;
CREATE SCHEMA got;
CREATE TABLE crm.act (id bigserial PRIMARY KEY, lead_id text, type text, at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON crm.act (lead_id);
CREATE TABLE crm.coord (step text PRIMARY KEY);
INSERT INTO leadscore.model (name, score_min, score_max) VALUES ('sync', 0, 100);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES
    ('sync', 'demo', 'demo', 50), ('sync', 'open', 'open', 20);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('sync', 'MQL', 40), ('sync', 'SQL', 65);
SELECT leadscore.track('sync', 'crm.act', 'lead_id', 'type', 'at');
SQL

# (d) --help, and clear errors before anything exists.
if "$tool" --help >"$work/help" 2>&1; then rc=0; else rc=$?; fi
check "--help exits 0" "$rc" 0
for word in CONNINFO --command --slot --publication --create --once --interval --batch --help example: idempotency; do
    grep -q -e "$word" "$work/help" || { echo "sync: FAILED: --help does not mention $word"; fail=1; }
done
if "$tool" --once >/dev/null 2>"$work/err"; then rc=0; else rc=$?; fi
check "no --command: usage error (exit 2)" "$rc:$(grep -c 'command is required' "$work/err")" "2:1"
if "$tool" "dbname=no_such_db" --once --command true 2>"$work/err"; then rc=0; else rc=$?; fi
check "a bad connection: exit 1, 'cannot connect'" "$rc:$(grep -c '^leadscore-sync: cannot connect' "$work/err")" "1:1"
if "$tool" "$conn" --once --command true 2>"$work/err"; then rc=0; else rc=$?; fi
check "no publication yet, without --create: exit 1 with a hint to use --create" \
    "$rc:$(grep -c 'publication "leadscore_stage_changes" does not exist: run with --create' "$work/err")" "1:1"

# (a) --create, then committed and rolled-back transactions.
sync_once "$work/a0.jsonl" --create
check "--create: the publication publishes inserts into leadscore.stage_history only" \
    "$(q -c "SELECT pubinsert AND NOT pubupdate AND NOT pubdelete AND NOT pubtruncate
               AND (SELECT array_agg(schemaname || '.' || tablename) FROM pg_publication_tables t WHERE t.pubname = p.pubname)
                   = '{leadscore.stage_history}'
               FROM pg_publication p WHERE pubname = 'leadscore_stage_changes'")" t
check "--create: the slot is a pgoutput slot of this database" \
    "$(q -c "SELECT plugin || ' ' || database FROM pg_replication_slots WHERE slot_name = 'leadscore_sync'")" "pgoutput sync"
check "--create: nothing to deliver yet" "$(lines "$work/a0.jsonl")" 0
if "$tool" "$conn" --slot other_slot --once --command true 2>"$work/err"; then rc=0; else rc=$?; fi
check "a missing slot without --create: exit 1 with a hint to use --create" \
    "$rc:$(grep -c 'replication slot "other_slot" does not exist: run with --create' "$work/err")" "1:1"
check "... and the slot is not created" "$(q -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'other_slot'")" 0

q <<'SQL'
INSERT INTO crm.act (lead_id, type) VALUES ('a1', 'demo'), ('a2', 'demo'), (E'we"ird\\ \n\tlead \u00e9', 'demo');
BEGIN;
INSERT INTO crm.act (lead_id, type) VALUES ('a3', 'demo'), ('a1', 'open');
ROLLBACK;
BEGIN;
INSERT INTO crm.act (lead_id, type) VALUES ('a1', 'open');
INSERT INTO crm.act (lead_id, type) VALUES ('a4', 'demo');
COMMIT;
DELETE FROM crm.act WHERE lead_id = 'a2';
SQL
sync_once "$work/a.jsonl"
load "$work/a.jsonl" a
check "(a) the committed changes are in the history" "$(q -c "SELECT count(*) FROM leadscore.stage_change")" 6
check "(a) each delivered once" "$(q -c "SELECT count(*) || ' ' || count(DISTINCT j->'id') FROM got.a")" "6 6"
check "(a) the delivered set is the set of committed changes" \
    "$(q -c "SELECT count(*) FROM leadscore.stage_change s FULL JOIN got.a g ON (g.j->>'id')::bigint = s.id
              WHERE s.id IS NULL OR g.n IS NULL")" 0
check "(a) nothing of the rolled-back transaction" "$(q -c "SELECT count(*) FROM got.a WHERE j->>'lead_id' = 'a3'")" 0
check "(a) every change as stored: numbers, strings, nulls, times, commit LSN and time" \
    "$(q -c "SELECT count(*) FROM got.a g JOIN leadscore.stage_change s ON s.id = (g.j->>'id')::bigint
              WHERE jsonb_typeof(g.j->'id') = 'number' AND jsonb_typeof(g.j->'score') = 'number'
                AND g.j->'model' = to_jsonb(s.model) AND g.j->'lead_id' = to_jsonb(s.lead_id)
                AND g.j->'from_stage' = coalesce(to_jsonb(s.from_stage), 'null')
                AND g.j->'to_stage' = coalesce(to_jsonb(s.to_stage), 'null')
                AND g.j->'score' = to_jsonb(s.score)
                AND (g.j->>'changed_at')::timestamptz = s.changed_at
                AND (g.j->>'commit_lsn')::pg_lsn <= pg_current_wal_lsn()
                AND (g.j->>'commit_time')::timestamptz BETWEEN s.changed_at AND now()
                AND g.line ~ '^\{\"id\":[0-9]+,\"model\":\".*\",\"lead_id\":\".*\",\"from_stage\":(null|\".*\"),\"to_stage\":(null|\".*\"),\"score\":[0-9.]+,\"changed_at\":\"[^\"]+\",\"commit_lsn\":\"[0-9A-F]+/[0-9A-F]+\",\"commit_time\":\"[^\"]+\"\}$'")" 6
check "(a) a lead key with quote, backslash, newline, tab and UTF-8 arrives intact" \
    "$(q -c "SELECT count(*) FROM got.a WHERE j->>'lead_id' = E'we\"ird\\\\ \n\tlead \u00e9'")" 1
check "(a) a change to no stage has to_stage null" \
    "$(q -c "SELECT string_agg(coalesce(j->>'from_stage', '-') || '>' || coalesce(j->>'to_stage', '-'), ' ' ORDER BY n)
              FROM got.a WHERE j->>'lead_id' = 'a2'")" "->MQL MQL>-"
check "(a) in commit order" \
    "$(q -c "SELECT bool_and(ok) FROM (SELECT (j->>'commit_lsn')::pg_lsn >= coalesce(lag((j->>'commit_lsn')::pg_lsn) OVER (ORDER BY n), '0/0') AS ok FROM got.a) x")" t
check "(a) the summary counts 6 changes of 3 transactions" "$(grep -c 'delivered 6 change(s) of 3 transaction(s)' "$work/a.jsonl.err")" 1
sync_once "$work/a2.jsonl"
check "(a) a second run delivers nothing" "$(lines "$work/a2.jsonl")" 0

# (b) Commit order: session A takes the smaller ids and commits after session B.
session_a() {   # lead...: inserts demo activities for the leads, waits for step 'b committed', commits
    local values=""
    for l in "$@"; do values+="${values:+, }('$l', 'demo')"; done
    cat >"$work/session_a.sql" <<SQL
\\set ON_ERROR_STOP 1
BEGIN;
INSERT INTO crm.act (lead_id, type) VALUES $values;
DO \$\$ BEGIN
    WHILE NOT EXISTS (SELECT 1 FROM crm.coord WHERE step = 'b committed') LOOP
        IF clock_timestamp() > now() + interval '60 seconds' THEN RAISE EXCEPTION 'session B never committed'; END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END \$\$;
COMMIT;
SQL
    q -c "DELETE FROM crm.coord"
    PGAPPNAME=sync_session_a psql -X -q -v ON_ERROR_STOP=1 -d sync -f "$work/session_a.sql" >"$work/session_a.out" 2>&1 &
    apid=$!
    background+=("$apid")
    wait_for "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sync_session_a' AND state = 'active' AND query LIKE 'DO%'" 1
}
b_committed() {
    q -c "INSERT INTO crm.coord VALUES ('b committed')"
    if wait "$apid"; then rc=0; else rc=$?; fi
    check "(b) session A committed" "$rc" 0
}
order_of() {   # table: the delivered lead ids in delivery order
    q -c "SELECT string_agg(j->>'lead_id', ' ' ORDER BY n) FROM got.$1"
}
ids_a_smaller() {   # table leads of A (regex) : max id of A < min id of B, and A's commit LSN > B's
    q -c "SELECT max((j->>'id')::bigint) FILTER (WHERE j->>'lead_id' ~ '$2') < min((j->>'id')::bigint) FILTER (WHERE j->>'lead_id' !~ '$2')
             AND min((j->>'commit_lsn')::pg_lsn) FILTER (WHERE j->>'lead_id' ~ '$2') > max((j->>'commit_lsn')::pg_lsn) FILTER (WHERE j->>'lead_id' !~ '$2')
            FROM got.$1"
}
# b1: the tool runs while A is still open (delivers B only), and again after A committed.
session_a ba1 ba2
q -c "INSERT INTO crm.act (lead_id, type) VALUES ('bb1', 'demo'), ('bb2', 'demo')"
sync_once "$work/b1.jsonl"
check "(b) while A is open only B's committed changes are delivered" "$(lines "$work/b1.jsonl")" 2
b_committed
sync_once "$work/b1.jsonl"
load "$work/b1.jsonl" b1
check "(b) then A's, each once: B's before A's" "$(order_of b1)" "bb1 bb2 ba1 ba2"
check "(b) although A's ids are smaller (and its commit later)" "$(ids_a_smaller b1 '^ba')" t
# b2: both committed before one run.
session_a ca1 ca2
q -c "INSERT INTO crm.act (lead_id, type) VALUES ('cb1', 'demo'), ('cb2', 'demo')"
b_committed
sync_once "$work/b2.jsonl"
load "$work/b2.jsonl" b2
check "(b) one run after both commits: B's before A's" "$(order_of b2)" "cb1 cb2 ca1 ca2"
check "(b) although A's ids are smaller" "$(ids_a_smaller b2 '^ca')" t

# (c) kill -9 midway through 300 changes (60 transactions of 5), restart with --once.
q >/dev/null <<'SQL'
SELECT format('INSERT INTO crm.act (lead_id, type) SELECT ''k-'' || g, ''demo'' FROM generate_series(%s, %s) g',
              i * 5 + 1, i * 5 + 5) FROM generate_series(0, 59) i \gexec
SQL
check "(c) 300 stage changes committed" "$(q -c "SELECT count(*) FROM leadscore.stage_change WHERE lead_id LIKE 'k-%'")" 300
"$tool" "$conn" --batch 40 --interval 0.2 --command "$(append "$work/c.jsonl" 'sleep 0.02')" 2>"$work/c1.err" &
cpid=$!
background+=("$cpid")
for _ in $(seq 1 600); do [ "$(lines "$work/c.jsonl")" -ge 60 ] && break; sleep 0.05; done
kill -9 "$cpid"
wait "$cpid" 2>/dev/null || true
sleep 1   # the killed tool's last command may still be appending
killed_at="$(lines "$work/c.jsonl")"
check "(c) killed midway" "$([ "$killed_at" -ge 60 ] && [ "$killed_at" -lt 300 ] && echo yes || echo "no: $killed_at of 300 delivered")" yes
sync_once "$work/c.jsonl"
load "$work/c.jsonl" c
check "(c) after the restart every committed change was delivered: same set of ids" \
    "$(q -c "SELECT count(*) FROM (SELECT id FROM leadscore.stage_change WHERE lead_id LIKE 'k-%') s
              FULL JOIN (SELECT DISTINCT (j->>'id')::bigint AS id FROM got.c) g USING (id) WHERE s IS NULL OR g IS NULL")" 0
duplicates="$(q -c "SELECT count(*) - count(DISTINCT j->'id') FROM got.c")"
echo "sync: (c) killed after $killed_at lines; $duplicates change(s) delivered twice (at least once; id is the key)"
check "(c) only changes of the transaction in flight can repeat (at most 5)" "$([ "$duplicates" -le 5 ] && echo yes || echo "$duplicates")" yes
sync_once "$work/c2.jsonl"
check "(c) a second --once delivers nothing new" "$(lines "$work/c2.jsonl")" 0

# (e) A failing command stops the tool without advancing; the next run delivers the transaction again.
cat >"$work/fail_on_e2.sh" <<'SH'
in=$(cat)
case "$in" in *'"lead_id":"e2"'*) exit 3;; esac
printf '%s\n' "$in" >> "$1"
SH
q -c "INSERT INTO crm.act (lead_id, type) VALUES ('e1', 'demo'), ('e2', 'demo'), ('e3', 'demo')"
if "$tool" "$conn" --once --command "sh '$work/fail_on_e2.sh' '$work/e.jsonl'" 2>"$work/e.err"; then rc=0; else rc=$?; fi
check "(e) a failing command: exit 1" "$rc" 1
check "(e) ... with a clear error" "$(grep -c 'the command exited with status 3 on change id [0-9]* .*the next run delivers it again' "$work/e.err")" 1
check "(e) e2 was not delivered" "$(grep -c '"lead_id":"e2"' "$work/e.jsonl" || true)" 0
sync_once "$work/e.jsonl"
load "$work/e.jsonl" e
check "(e) the next run delivers the whole transaction again" "$(grep -c 'delivered 3 change(s) of 1 transaction(s)' "$work/e.jsonl.err")" 1
check "(e) every change of it arrived (e2 once)" \
    "$(q -c "SELECT string_agg(DISTINCT j->>'lead_id', ' ' ORDER BY j->>'lead_id') || ' / ' || count(*) FILTER (WHERE j->>'lead_id' = 'e2') FROM got.e")" "e1 e2 e3 / 1"

# (f) WAL without stage changes: nothing delivered, yet the slot moves on (it would retain the WAL).
q -c "INSERT INTO crm.act (lead_id, type) SELECT 'f' || g, 'page' FROM generate_series(1, 500) g"
flushed="$(q -c "SELECT pg_current_wal_flush_lsn()")"
sync_once "$work/f.jsonl"
check "(f) activity without stage changes delivers nothing" "$(lines "$work/f.jsonl")" 0
check "(f) and the slot is confirmed past it" \
    "$(q -c "SELECT confirmed_flush_lsn >= '$flushed' FROM pg_replication_slots WHERE slot_name = 'leadscore_sync'")" t

# (g) SIGTERM while the command runs: the change completes, the tool stops before the next one.
q -c "INSERT INTO crm.act (lead_id, type) VALUES ('g1', 'demo')"
q -c "INSERT INTO crm.act (lead_id, type) VALUES ('g2', 'demo')"
"$tool" "$conn" --interval 0.2 --command "$(append "$work/g.jsonl" 'sleep 1')" 2>"$work/g.err" &
gpid=$!
background+=("$gpid")
for _ in $(seq 1 300); do [ "$(lines "$work/g.jsonl")" -ge 1 ] && break; sleep 0.05; done
kill -TERM "$gpid"
if wait "$gpid"; then rc=0; else rc=$?; fi
check "(g) SIGTERM: exit 0" "$rc" 0
check "(g) ... after the change in progress, before the next" "$(lines "$work/g.jsonl"):$(grep -c 'stopped on signal 15' "$work/g.err")" "1:1"
sync_once "$work/g2.jsonl"
load "$work/g2.jsonl" g2
check "(g) the next run delivers the next change only" "$(order_of g2)" g2

if [ $fail -ne 0 ]; then
    for f in "$work"/*.err; do [ -s "$f" ] && { echo "--- $(basename "$f"):"; tail -n 5 "$f"; }; done
    echo "sync test: FAILED"; reported=1; exit 1
fi
echo "sync test: ok"
