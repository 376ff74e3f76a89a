#!/usr/bin/env bash
# leadscore rule-edit benchmark (issue #20, items 1-3): what a rule, stage, grade or model edit
# costs against a full rescore, how long writers inserting single rows meanwhile stall, and
# a lead with a huge history against a normal one. Ratios against baselines measured in the
# same run on a throwaway cluster; no timing assertions.
#
#   bench/edits.sh               default: 100k leads, 5M activities, a heavy lead of 200k rows
#   bench/edits.sh --quick       smoke size (2k leads, 60k activities, heavy lead of 20k rows)
#   options: --leads N --activities N --heavy-rows N --seconds S --repeat R --out FILE
#
# It measures whatever leadscore is installed (CREATE EXTENSION in a fresh cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

if [ -z "${LEADSCORE_BENCH_INNER:-}" ]; then
    export BENCH_LEADS=100000 BENCH_ACTIVITIES=5000000 BENCH_HEAVY_ROWS=200000 BENCH_SECONDS=5 BENCH_REPEAT=3
    export BENCH_OUT="$root/bench/edits-results.txt" BENCH_QUICK=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --quick) BENCH_QUICK=1 BENCH_LEADS=2000 BENCH_ACTIVITIES=60000 BENCH_HEAVY_ROWS=20000 BENCH_SECONDS=2
                     BENCH_REPEAT=1 BENCH_OUT="$root/bench/edits-results-quick.txt" ;;
            --leads) BENCH_LEADS="$2"; shift ;;
            --activities) BENCH_ACTIVITIES="$2"; shift ;;
            --heavy-rows) BENCH_HEAVY_ROWS="$2"; shift ;;
            --seconds) BENCH_SECONDS="$2"; shift ;;
            --repeat) BENCH_REPEAT="$2"; shift ;;
            --out) BENCH_OUT="$2"; shift ;;
            *) echo "bench/edits.sh: unknown option $1" >&2; exit 2 ;;
        esac
        shift
    done
    export LEADSCORE_BENCH_INNER=1 PGUSER="${PGUSER:-postgres}"
    exec pg_virtualenv -t -v 15 -o shared_buffers=512MB -o max_wal_size=8GB -o checkpoint_timeout=30min \
        -o work_mem=16MB -o max_parallel_workers_per_gather=2 -o max_locks_per_transaction=256 \
        -o deadlock_timeout=100ms -o log_lock_waits=on "$0"
fi

PGBENCH=/usr/lib/postgresql/15/bin/pgbench
work="$(mktemp -d /tmp/leadscore-edits.XXXXXX)"
chmod 777 "$work"
writers_pid=""
cleanup() {
    # Writers still running (the script failed mid-run): stop them before the cluster goes.
    if [ -n "$writers_pid" ]; then
        touch "$work/stop-writers"
        wait "$writers_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@" </dev/null; }
now_s() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# a / b with 2 decimals (or $3), one line
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {if (b == 0 || a == "nan" || b == "nan" || a == "" || b == "") print "n/a"; else printf "%.*f\n", d, a / b}'; }

# Runs SQL in one session, timing only the statement between the markers; rolls back so every
# repetition starts from the same data. Prints milliseconds; the statement's result (first
# row, if any) goes to $work/last_result.
timed_rollback() {
    local setup="$1" stmt="$2" out
    out="$(psql -X -q -At -v ON_ERROR_STOP=1 <<SQL
BEGIN;
$setup
\\timing on
$stmt;
\\timing off
ROLLBACK;
SQL
)" || { log "FAILED: psql failed on: $stmt"; exit 1; }
    grep -v '^Time:' <<<"$out" | tail -n 1 >"$work/last_result" || true
    awk '/^Time:/ {print $2; exit}' <<<"$out"
}

results="$work/results"
: >"$results"
put() { echo "$1|$2|$3" >>"$results"; }   # key|value|unit
get() { awk -F'|' -v k="$1" '$1 == k {print $2}' "$results"; }

log "cluster ready; sizes: leads=$BENCH_LEADS activities=$BENCH_ACTIVITIES heavy lead=$BENCH_HEAVY_ROWS rows"
q -c "CREATE EXTENSION IF NOT EXISTS leadscore"
# A server crash anywhere in the run fails it (the server restarts, so the start time changes).
started="$(q -c "SELECT pg_postmaster_start_time()")"
ext_version="$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'leadscore'")"
# The build under test: if leadscore.so is reinstalled during the run, new sessions load the new
# build and the figures mix two builds (checked at the end).
so="$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)/leadscore.so"
so_id() { echo "$(md5sum <"$so" | cut -c1-12), installed $(date -u -r "$so" '+%Y-%m-%d %H:%M:%S UTC')"; }
so_start="$(so_id)"
t0=$(now_s)
psql -X -q -v ON_ERROR_STOP=1 -v seed=7 -v leads="$BENCH_LEADS" -v activities="$BENCH_ACTIVITIES" \
    -v anchor="$(date -u +%Y-%m-%d)" -f demo/generate.sql
# The index track() recommends for rule edits: what a rule matches is read again by type.
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE INDEX ON crm.activity (type)" -c "ANALYZE crm.activity"
t1=$(now_s)
psql -X -q -v ON_ERROR_STOP=1 -f demo/model.sql >/dev/null
t2=$(now_s)
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
put generate_seconds "$(elapsed "$t0" "$t1")" s
put track_seconds "$(elapsed "$t1" "$t2")" s
log "generated the CRM in $(elapsed "$t0" "$t1") s; track() scored every lead in $(elapsed "$t1" "$t2") s"
# Only peer.scores_all() is used here: the hand-written GROUP BY recompute (its activity tables stay empty).
psql -X -q -v ON_ERROR_STOP=1 -f bench/peers.sql

# The edits below name rows of demo/model.sql; fail clearly if the model no longer has them.
missing="$(q -c "SELECT string_agg(what, ', ') FROM (VALUES
    ('activity rule e-mail open', EXISTS (SELECT 1 FROM leadscore.activity_rule WHERE model = 'demo' AND name = 'e-mail open' AND max_points IS NOT NULL)),
    ('activity rule e-mail click', EXISTS (SELECT 1 FROM leadscore.activity_rule WHERE model = 'demo' AND name = 'e-mail click' AND enabled)),
    ('fit rule C-level', EXISTS (SELECT 1 FROM leadscore.fit_rule WHERE model = 'demo' AND name = 'C-level')),
    ('stage MQL', EXISTS (SELECT 1 FROM leadscore.stage WHERE model = 'demo' AND name = 'MQL' AND min_score IS NOT NULL)),
    ('fit grade A at 20', EXISTS (SELECT 1 FROM leadscore.grade WHERE model = 'demo' AND axis = 'fit' AND name = 'A' AND min_value = 20)),
    ('fit condition account.employees >= 1000', EXISTS (SELECT 1 FROM leadscore.fit_condition c JOIN leadscore.fit_rule r ON r.id = c.rule_id
        WHERE r.model = 'demo' AND r.name = 'enterprise decision maker' AND c.attribute = 'account.employees' AND c.value = '{1000}')),
    ('activity condition account.revenue >= 1000000', EXISTS (SELECT 1 FROM leadscore.activity_condition c JOIN leadscore.activity_rule r ON r.id = c.rule_id
        WHERE r.model = 'demo' AND r.name = 'webinar by a C-level of a 1M+ company' AND c.attribute = 'account.revenue' AND c.value = '{1000000}')),
    ('model score_max', EXISTS (SELECT 1 FROM leadscore.model WHERE name = 'demo' AND score_max IS NOT NULL)),
    ('no activity of type no_such_type', NOT EXISTS (SELECT 1 FROM crm.activity WHERE type = 'no_such_type'))
  ) AS c(what, ok) WHERE NOT ok")"
[ -z "$missing" ] || { log "FAILED: demo/model.sql lacks what the edits change: $missing"; exit 1; }

# Every table of the extension (rule tables, state tables, stage history): vacuumed after each
# timed edit, so the rolled-back rows of one do not slow the next.
ls_tables="$(q -c "SELECT string_agg(c.oid::regclass::text, ', ') FROM pg_class c
                    WHERE c.relnamespace = 'leadscore'::regnamespace AND c.relkind = 'r'")"
settle() { q -c "VACUUM $ls_tables" -c "CHECKPOINT"; }
q -c "VACUUM ANALYZE" -c "CHECKPOINT"
log "model tracked, peers ready"

# Equivalence: the hand-written recompute computes exactly leadscore's scores, so the ratio
# against it compares the same work.
asof="$(q -c "SELECT now()")"
eq="$(q -c "SELECT count(*) FILTER (WHERE p.lead_id IS NULL OR l.lead_id IS NULL OR abs(p.score - l.score) > 0.00001
                                   OR p.stage IS DISTINCT FROM l.stage) || '/' || count(*)
          FROM peer.scores_all('$asof') p
          FULL JOIN leadscore.scores_as_of('demo', '$asof') l ON l.lead_id = p.lead_id::text")"
put equivalence_mismatches "${eq%%/*}" leads
log "equivalence at $asof: mismatches/leads = $eq"
[ "${eq%%/*}" = 0 ] || { log "FAILED: the hand-written recompute differs from leadscore's scores"; exit 1; }

# ---------------------------------------------------------------------------------------------
# The edits: each in its own transaction, timed alone, then rolled back.
#   kind|label|setup (untimed, same transaction)|the edit|its revert (for the committed run below)
# One line per edit: the statements must not contain newlines or '|'.
# ---------------------------------------------------------------------------------------------
fit_cond="leadscore.fit_condition SET value = '{%s}' WHERE attribute = 'account.employees' AND rule_id = (SELECT id FROM leadscore.fit_rule WHERE model = 'demo' AND name = 'enterprise decision maker')"
act_cond="leadscore.activity_condition SET value = '{%s}' WHERE attribute = 'account.revenue' AND rule_id = (SELECT id FROM leadscore.activity_rule WHERE model = 'demo' AND name = 'webinar by a C-level of a 1M+ company')"
act_rule="leadscore.activity_rule SET %s WHERE model = 'demo' AND name = '%s'"
edits="$work/edits"
# shellcheck disable=SC2059
cat >"$edits" <<EOF
act_points|+1 point, activity rule 'e-mail open'||UPDATE $(printf "$act_rule" "points = points + 1" "e-mail open")|UPDATE $(printf "$act_rule" "points = points - 1" "e-mail open")
act_cap|cap tightened, 'e-mail open' max_points 6 -> 5||UPDATE $(printf "$act_rule" "max_points = max_points - 1" "e-mail open")|UPDATE $(printf "$act_rule" "max_points = max_points + 1" "e-mail open")
fit_points|+1 point, fit rule 'C-level'||UPDATE leadscore.fit_rule SET points = points + 1 WHERE model = 'demo' AND name = 'C-level'|UPDATE leadscore.fit_rule SET points = points - 1 WHERE model = 'demo' AND name = 'C-level'
fit_condition|fit_condition: account.employees >= 2000||UPDATE $(printf "$fit_cond" 2000)|UPDATE $(printf "$fit_cond" 1000)
act_condition|activity_condition: account.revenue >= 2M||UPDATE $(printf "$act_cond" 2000000)|UPDATE $(printf "$act_cond" 1000000)
stage|+1 on stage threshold (MQL min_score)||UPDATE leadscore.stage SET min_score = min_score + 1 WHERE model = 'demo' AND name = 'MQL'|UPDATE leadscore.stage SET min_score = min_score - 1 WHERE model = 'demo' AND name = 'MQL'
grade|grade: fit A from 20 to 21||UPDATE leadscore.grade SET min_value = 21 WHERE model = 'demo' AND axis = 'fit' AND name = 'A'|UPDATE leadscore.grade SET min_value = 20 WHERE model = 'demo' AND axis = 'fit' AND name = 'A'
model_range|model range: score_max - 1||UPDATE leadscore.model SET score_max = score_max - 1 WHERE name = 'demo'|UPDATE leadscore.model SET score_max = score_max + 1 WHERE name = 'demo'
new_rule|new activity rule, type nobody has||INSERT INTO leadscore.activity_rule (model, name, activity_type, points) VALUES ('demo', 'bench: unseen type', 'no_such_type', 5)|DELETE FROM leadscore.activity_rule WHERE model = 'demo' AND name = 'bench: unseen type'
disable|disable activity rule 'e-mail click'||UPDATE $(printf "$act_rule" "enabled = false" "e-mail click")|UPDATE $(printf "$act_rule" "enabled = true" "e-mail click")
enable|enable it again|UPDATE $(printf "$act_rule" "enabled = false" "e-mail click");|UPDATE $(printf "$act_rule" "enabled = true" "e-mail click")|
EOF
awk -F'|' 'NF != 5 {bad = 1} END {exit bad}' "$edits" || { log "bench/edits.sh: an edit definition is not one line of 5 fields"; exit 1; }
# The baselines run in the same rounds as the edits, so a drift of this machine's speed hits
# them alike: the full rescore (with and without parallel workers) and the hand-written
# GROUP BY recompute.
retrack="SELECT leadscore.track('demo', 'crm.activity', 'lead_id', 'type', 'occurred_at', leads => 'crm.lead', lead_key => 'id')"
for round in $(seq "$BENCH_REPEAT"); do
    timed_rollback "" "SELECT leadscore.rescore('demo')" >>"$work/t-rescore"
    [ "$round" = 1 ] && put rescore_changed "$(cat "$work/last_result")" leads
    settle
    timed_rollback "SET LOCAL max_parallel_workers_per_gather = 0;" "SELECT leadscore.rescore('demo')" >>"$work/t-rescore_serial"
    settle
    timed_rollback "" "SELECT count(*) FROM peer.scores_all(now())" >>"$work/t-hand"
    # Item 3: track() from scratch (after an untimed untrack) with and without parallel workers.
    timed_rollback "SELECT leadscore.untrack('demo');" "$retrack" >>"$work/t-track"
    settle
    timed_rollback "SET LOCAL max_parallel_workers_per_gather = 0; SELECT leadscore.untrack('demo');" "$retrack" >>"$work/t-track_serial"
    settle
    while IFS='|' read -r kind label setup stmt revert; do
        timed_rollback "$setup" "$stmt" >>"$work/t-$kind"
        settle
    done <"$edits"
    log "round $round: rescore $(tail -n1 "$work/t-rescore") ms, hand recompute $(tail -n1 "$work/t-hand") ms, +1 point on an activity rule $(tail -n1 "$work/t-act_points") ms"
done
for k in rescore rescore_serial hand track track_serial; do put "$k" "$(median <"$work/t-$k")" ms; done
while IFS='|' read -r kind label setup stmt revert; do
    put "edit_$kind" "$(median <"$work/t-$kind")" ms
    log "edit $kind ($label): $(median <"$work/t-$kind") ms"
done <"$edits"

# ---------------------------------------------------------------------------------------------
# Writers: 2 pgbench clients insert single activity rows (random leads) throughout; their
# worst latency with no edit, during a committed full rescore, and during each edit kind
# committed and then reverted, one after another.
# ---------------------------------------------------------------------------------------------
cat >"$work/writer.pgb" <<EOF
\\set l random(1, $BENCH_LEADS)
INSERT INTO crm.activity (lead_id, type, occurred_at) VALUES (:l, 'email_open', now());
EOF
deadlocks0="$(q -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")"
# pgbench in chunks until told to stop: a chunk's clients finish the transaction they are in,
# so a stalled insert is logged whenever it completes; every chunk's log is kept.
(
    i=0
    while [ ! -e "$work/stop-writers" ]; do
        i=$((i + 1))
        (cd "$work" && $PGBENCH -n -M prepared -c 2 -j 2 -T "$BENCH_SECONDS" -l --failures-detailed \
            --log-prefix="wr_$i" -f "$work/writer.pgb" >"$work/writers_$i.out" 2>&1) ||
            echo "chunk $i: pgbench exit $?" >>"$work/writer-errors"
    done
) &
writers_pid=$!
windows="$work/windows"   # name start end (epoch seconds)
: >"$windows"
sleep 1
ws=$(now_s); sleep "$BENCH_SECONDS"; echo "quiet $ws $(now_s)" >>"$windows"
sleep 0.5
ws=$(now_s); q -c "SELECT leadscore.rescore('demo')" >/dev/null; echo "rescore $ws $(now_s)" >>"$windows"
sleep 1
edits_start=$(now_s)
while IFS='|' read -r kind label setup stmt revert; do
    [ -n "$revert" ] || continue   # 'enable' is the revert of 'disable'
    ws=$(now_s)
    q -c "$stmt" >/dev/null || { log "FAILED: edit $kind failed while the writers ran"; exit 1; }
    q -c "$revert" >/dev/null || { log "FAILED: the revert of edit $kind failed while the writers ran"; exit 1; }
    echo "$kind $ws $(now_s)" >>"$windows"
    sleep 0.3
done <"$edits"
echo "edits $edits_start $(now_s)" >>"$windows"
sleep 0.5
touch "$work/stop-writers"
wait "$writers_pid"
writers_pid=""
deadlocks1="$(q -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")"
# pgbench -l lines: client txno latency_us script epoch_s epoch_us; a failed transaction has
# a word in place of its latency.
cat "$work"/wr_*.* >"$work/writer-log"
failed="$(awk '$3 !~ /^[0-9]+$/' "$work/writer-log" | wc -l)"
aborted="$(cat "$work"/writers_*.out | grep -c 'aborted' || true)"
put writer_transactions "$(wc -l <"$work/writer-log")" transactions
put writer_failed "$failed" "failed transactions"
put writer_aborted "$aborted" "aborted pgbench clients"
put writer_deadlocks "$(( deadlocks1 - deadlocks0 ))" deadlocks
# The worst latency of the inserts that overlap a window, and their rate within it.
while read -r name ws we; do
    read -r worst n <<<"$(awk -v s="$ws" -v e="$we" '$3 ~ /^[0-9]+$/ {
            end = $5 + $6 / 1e6; start = end - $3 / 1e6
            if (end >= s && start <= e) { n++; if ($3 > m) m = $3 } }
        END {printf "%.3f %d\n", m / 1000, n}' "$work/writer-log")"
    put "writer_max_$name" "$worst" ms
    put "writer_tps_$name" "$(awk -v n="$n" -v s="$ws" -v e="$we" 'BEGIN {printf "%.0f", n / (e - s)}')" tps
    put "window_$name" "$(awk -v s="$ws" -v e="$we" 'BEGIN {printf "%.0f", (e - s) * 1000}')" ms
done <"$windows"
log "writers: worst latency quiet $(get writer_max_quiet) ms, during a rescore $(get writer_max_rescore) ms, during the edits $(get writer_max_edits) ms; failed $failed"

# ---------------------------------------------------------------------------------------------
# A lead with a huge history: page views of /blog, matched by an uncapped, non-expiring,
# non-decaying rule added here (the demo model has none). Single-row INSERT TPS (1 client)
# for it against normal leads (random, each with its ordinary history), interleaved rounds.
# ---------------------------------------------------------------------------------------------
heavy="$(q -c "SELECT max(lead_id::bigint) FROM leadscore.lead_score WHERE model = 'demo' AND NOT disqualified")"
q -c "INSERT INTO leadscore.activity_rule (model, name, activity_type, attribute, op, value, points)
      VALUES ('demo', 'bench: blog reader', 'page_view', 'url', '=', '{/blog}', 0.0001)" >/dev/null
t0=$(now_s)
q -c "INSERT INTO crm.activity (lead_id, type, url, occurred_at)
      SELECT $heavy, 'page_view', '/blog', now() - interval '300 days' * random() FROM generate_series(1, $BENCH_HEAVY_ROWS)"
put heavy_insert_seconds "$(elapsed "$t0" "$(now_s)")" s
q -c "ANALYZE crm.activity"
settle
put heavy_lead "$heavy" ""
put normal_history "$(q -c "SELECT round(count(*)::numeric / $BENCH_LEADS) FROM crm.activity WHERE lead_id <> $heavy")" rows
log "heavy lead $heavy: $BENCH_HEAVY_ROWS page views of /blog inserted in $(get heavy_insert_seconds) s"
printf '%s\n' "\\set l random(1, $(( heavy - 1 )))" \
    "INSERT INTO crm.activity (lead_id, type, url, occurred_at) VALUES (:l, 'page_view', '/blog', now());" >"$work/normal.pgb"
printf '%s\n' "INSERT INTO crm.activity (lead_id, type, url, occurred_at) VALUES ($heavy, 'page_view', '/blog', now());" >"$work/heavy.pgb"
for _ in $(seq "$BENCH_REPEAT"); do
    for target in normal heavy; do
        $PGBENCH -n -M prepared -c 1 -j 1 -T "$BENCH_SECONDS" -f "$work/$target.pgb" >"$work/$target.out" 2>&1 ||
            { cat "$work/$target.out" >&2; exit 1; }
        awk '/^tps/ {print $3; exit}' "$work/$target.out" | tee "$work/tps-last-$target" >>"$work/tps-$target"
    done
    ratio "$(cat "$work/tps-last-heavy")" "$(cat "$work/tps-last-normal")" 3 >>"$work/tps-paired"
    settle
done
put tps_normal "$(median <"$work/tps-normal")" tps
put tps_heavy "$(median <"$work/tps-heavy")" tps
put heavy_paired "$(median <"$work/tps-paired")" x
put heavy_history "$(q -c "SELECT count(*) FROM crm.activity WHERE lead_id = $heavy")" rows
log "INSERT TPS, normal leads $(get tps_normal), heavy lead $(get tps_heavy); heavy / normal per round: $(paste -sd ' ' "$work/tps-paired")"

# Exactness after all of it: the heavy lead and a sample of leads, stored score = recompute.
wrong="$(q -c "SELECT count(*) FROM leadscore.lead_score s
               WHERE s.model = 'demo' AND (s.lead_id::bigint = $heavy OR s.lead_id::bigint % greatest(1, $BENCH_LEADS / 1000) = 0)
                 AND s.score <> leadscore.score('demo', s.lead_id::bigint, s.scored_at)")"
put exactness_wrong "$wrong" "sampled leads whose stored score differs from a recompute"
q -c "DELETE FROM leadscore.activity_rule WHERE model = 'demo' AND name = 'bench: blog reader'" >/dev/null

so_end="$(so_id)"
[ "$so_end" = "$so_start" ] || log "WARNING: leadscore.so was reinstalled during the run; the figures mix two builds"
put leadscore_so "${so_start%%,*}" md5
put leadscore_so_changed "$([ "$so_end" = "$so_start" ] && echo no || echo "yes (${so_end%%,*})")" ""
# The ratios the targets read, into the results file too.
put ratio_rescore_hand "$(ratio "$(get rescore)" "$(get hand)" 3)" x
put ratio_rescore_parallel "$(ratio "$(get rescore)" "$(get rescore_serial)" 3)" x
put ratio_track_parallel "$(ratio "$(get track)" "$(get track_serial)" 3)" x
while IFS='|' read -r kind label setup stmt revert; do
    put "ratio_edit_$kind" "$(ratio "$(get "edit_$kind")" "$(get rescore)" 3)" x
done <"$edits"
for w in rescore edits; do put "ratio_writer_max_$w" "$(ratio "$(get "writer_max_$w")" "$(get rescore)" 3)" x; done
# Item 5's writers' target is "during those": the edit kinds it gives targets for (activity-rule
# points, fit rule and fit condition, stage threshold, new rule for an unseen type), each with
# its revert. The worst over every edit kind is reported beside it.
targeted=""
for k in act_points fit_points fit_condition stage new_rule; do
    v="$(get "writer_max_$k")"
    if [ -z "$targeted" ] || awk -v a="$v" -v b="$targeted" 'BEGIN {exit !(a + 0 > b + 0)}'; then targeted="$v"; fi
done
put writer_max_targeted "$targeted" ms
put ratio_writer_max_targeted "$(ratio "$targeted" "$(get rescore)" 3)" x
worst_kind="$(awk -F'|' '$1 ~ /^writer_max_/ && $1 !~ /_(quiet|rescore|edits|targeted)$/ {sub(/^writer_max_/, "", $1); if ($2 + 0 > m) {m = $2 + 0; k = $1}} END {print k}' "$results")"
put writer_max_worst_kind "$worst_kind" ""

# ---------------------------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------------------------
{
    echo "leadscore rule-edit benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, PostgreSQL $(q -c 'SHOW server_version')"
    # A backend's first touch of each shared-buffer page costs a page fault (dear on a VM);
    # PostgreSQL uses huge pages (huge_pages = try) when the OS reserves them.
    echo "huge pages reserved by the OS: $(awk '/^HugePages_Total/ {print $2}' /proc/meminfo 2>/dev/null || echo unknown)"
    echo "leadscore $ext_version, leadscore.so md5 $so_start"
    if [ "$so_end" != "$so_start" ]; then
        echo "WARNING: leadscore.so was reinstalled during the run (now md5 $so_end): these figures mix two builds"
    fi
    echo "data: $BENCH_LEADS leads, $BENCH_ACTIVITIES activities over 12 months; model demo: $(q -c "SELECT count(*) FROM leadscore.activity_rule WHERE model='demo'") activity rules, $(q -c "SELECT count(*) FROM leadscore.fit_rule WHERE model='demo'") fit rules, $(q -c "SELECT count(*) FROM leadscore.stage WHERE model='demo'") stages; medians of $BENCH_REPEAT round(s)"
    echo "setup: generator $(get generate_seconds) s; track() $(get track_seconds) s; hand recompute equals leadscore on all leads (mismatches $(get equivalence_mismatches))"
    echo "each edit: its own transaction, only the edit statement timed, rolled back; baselines in the same rounds"
    echo
    printf '%-52s %12s %14s\n' "measure" "time" "vs rescore"
    printf '%-52s %9.0f ms %13s   (%s leads changed)\n' "full rescore: leadscore.rescore('demo')" "$(get rescore)" "1.00x" "$(get rescore_changed)"
    printf '%-52s %9.0f ms %13s\n' "full rescore, no parallel workers" "$(get rescore_serial)" "$(ratio "$(get rescore_serial)" "$(get rescore)")x"
    printf '%-52s %9.0f ms %13s\n' "hand-written GROUP BY recompute (peer.scores_all)" "$(get hand)" "$(ratio "$(get hand)" "$(get rescore)")x"
    printf '%-52s %9.0f ms %13s\n' "track() from scratch (after untrack)" "$(get track)" "$(ratio "$(get track)" "$(get rescore)")x"
    printf '%-52s %9.0f ms %13s\n' "track() from scratch, no parallel workers" "$(get track_serial)" "$(ratio "$(get track_serial)" "$(get rescore)")x"
    while IFS='|' read -r kind label setup stmt revert; do
        printf '%-52s %9.1f ms %13s\n' "edit: $label" "$(get "edit_$kind")" "$(get "ratio_edit_$kind")x"
    done <"$edits"
    echo
    echo "writers: 2 pgbench clients, single-row INSERT of an e-mail open for a random lead; each edit committed, then reverted"
    printf '%-52s %12s %14s %10s\n' "window" "worst insert" "vs rescore" "writer tps"
    while read -r name ws we; do
        case $name in
            quiet) label="no edit ($(get window_quiet) ms)" ;;
            rescore) label="a full rescore ($(get window_rescore) ms)" ;;
            edits) label="all edits below, one after another ($(get window_edits) ms)" ;;
            *) label="  $name + revert ($(get "window_$name") ms)" ;;
        esac
        printf '%-52s %9.1f ms %13s %10s\n' "$label" "$(get "writer_max_$name")" \
            "$(ratio "$(get "writer_max_$name")" "$(get rescore)" 3)x" "$(get "writer_tps_$name")"
    done < <(grep -v '^edits ' "$windows" | head -n 2; grep '^edits ' "$windows"; grep -vE '^(quiet|rescore|edits) ' "$windows")
    echo "writers: $(get writer_transactions) inserts, failed $(get writer_failed), aborted clients $(get writer_aborted), deadlocks $(get writer_deadlocks)"
    echo
    echo "heavy lead $(get heavy_lead): $BENCH_HEAVY_ROWS page views of /blog (rule 'bench: blog reader': uncapped, no expiry, no decay),"
    echo "  inserted in one statement in $(get heavy_insert_seconds) s; $(get heavy_history) rows at the end; normal leads have ~$(get normal_history) rows"
    printf '%-52s %9.0f tps\n' "INSERT TPS, 1 client, normal leads (random)" "$(get tps_normal)"
    printf '%-52s %9.0f tps %13s\n' "INSERT TPS, 1 client, the heavy lead" "$(get tps_heavy)" "$(get heavy_paired)x"
    echo "exactness afterwards: sampled leads whose stored score differs from a recompute: $(get exactness_wrong)"
    echo
    if [ "$BENCH_QUICK" = 1 ]; then echo "targets (issue #20; the quick size only smoke-tests the run, its verdicts mean nothing)"; else echo "targets (issue #20)"; fi
    # Verdicts on 3-decimal ratios, so 0.153 is not read as 0.15.
    verdict() { awk -v v="$1" -v lim="$2" -v op="$3" 'BEGIN {if (v == "n/a") print "n/a"; else if ((op == "le" && v + 0 <= lim + 0) || (op == "ge" && v + 0 >= lim + 0)) print "met"; else print "missed"}'; }
    target() { printf '  %-64s %8s   %s\n' "$1" "$2" "$(verdict "$2" "$3" "$4")"; }
    target "full rescore / hand-written GROUP BY recompute (<= 0.5)" "$(get ratio_rescore_hand)" 0.5 le
    target "+1 point on an activity rule / full rescore (<= 0.15)" "$(get ratio_edit_act_points)" 0.15 le
    target "+1 point on a fit rule / full rescore (<= 0.10)" "$(get ratio_edit_fit_points)" 0.10 le
    target "fit_condition edit / full rescore (<= 0.10)" "$(get ratio_edit_fit_condition)" 0.10 le
    target "+1 on a stage threshold / full rescore (<= 0.05)" "$(get ratio_edit_stage)" 0.05 le
    target "new rule for an unseen activity type / full rescore (<= 0.05)" "$(get ratio_edit_new_rule)" 0.05 le
    target "writers' worst insert during those edits* / rescore (<= 0.20)" "$(get ratio_writer_max_targeted)" 0.20 le
    target "heavy lead's INSERT TPS / normal leads' (>= 0.5)" "$(get heavy_paired)" 0.5 ge
    target "writers' failed inserts + deadlocks, exactness sample (= 0)" "$(( $(get writer_failed) + $(get writer_deadlocks) + $(get exactness_wrong) ))" 0 le
    echo "  * those the issue gives targets for: activity points, fit rule, fit condition, stage, new rule (each with its revert)"
    echo "  (no numeric target in the issue for: cap tightened, activity_condition, grade, model range, disable/enable;"
    echo "   item 1 asks that they too cost what they change, not a full rescore)"
    printf '  %-64s %8s   %s\n' "writers' worst insert during every edit kind / full rescore" "$(get ratio_writer_max_edits)" \
        "(no target; $(get writer_max_worst_kind) + revert)"
    echo "  item 3 (parallel workers where the machine has them; no numeric target, $(nproc) cores):"
    printf '  %-64s %8s\n' "full rescore with workers / without" "$(get ratio_rescore_parallel)"
    printf '  %-64s %8s\n' "track() with workers / without" "$(get ratio_track_parallel)"
} >"$work/table"
cat "$work/table"
# The results file: key|value|unit lines, then the table above as comments.
{
    echo "# leadscore rule-edit benchmark (bench/edits.sh): key|value|unit; $BENCH_LEADS leads, $BENCH_ACTIVITIES activities, heavy lead $BENCH_HEAVY_ROWS rows, $BENCH_REPEAT round(s)"
    cat "$results"
    sed 's/^/# /' "$work/table"
} >"$BENCH_OUT"
log "results written to $BENCH_OUT"
failed_run=0
if [ "$(q -c "SELECT pg_postmaster_start_time()")" != "$started" ]; then
    log "FAILED: the server crashed and restarted during the run"; failed_run=1
fi
if [ "$(get exactness_wrong)" != 0 ]; then
    log "FAILED: $(get exactness_wrong) sampled leads have a stored score that differs from a recompute"; failed_run=1
fi
if [ -s "$work/writer-errors" ] || [ "$(get writer_aborted)" != 0 ] || [ "$(get writer_failed)" != 0 ] ||
   [ "$(get writer_deadlocks)" != 0 ]; then
    log "FAILED: the writers failed: $(get writer_failed) failed inserts, $(get writer_deadlocks) deadlocks, $(get writer_aborted) aborted clients $(paste -sd ';' "$work/writer-errors" 2>/dev/null || true)"
    cat "$work"/writers_*.out | grep -iE 'error|abort' | head -5 >&2 || true
    failed_run=1
fi
for k in rescore hand edit_act_points writer_max_edits tps_heavy; do
    [ -n "$(get $k)" ] || { log "FAILED: no result for $k"; failed_run=1; }
done
exit "$failed_run"
