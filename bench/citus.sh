#!/usr/bin/env bash
# Ingest on Citus: COPY and single-row INSERT into the distributed activity table, untracked
# and tracked, on one node (the coordinator holds every shard) and on a coordinator with two
# workers, and tracked with sessions that notify stage changes at commit (session_preload_libraries).
# Prints each setup's ratios to untracked, measured in the same run. On one
# machine the workers share its cores: this shows leadscore's overhead on Citus, not speed-up.
#
#   bench/citus.sh [--leads N] [--activities N] [--copy-rows N] [--seconds S] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
leads=20000 activities=400000 copy_rows=200000 seconds=10 out="$root/bench/citus-results.txt"
while [ $# -gt 0 ]; do
    case "$1" in
        --leads) leads=$2; shift ;;
        --activities) activities=$2; shift ;;
        --copy-rows) copy_rows=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --out) out=$2; shift ;;
        *) echo "bench/citus.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
. tests/citus/cluster.sh
citus_installed || { echo "bench/citus.sh: Citus is not installed for PostgreSQL 15 (see docs/scale-out.md)"; exit 1; }
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f\n", a / b}'; }
work=$(mktemp -d /tmp/leadscore-citus-bench.XXXXXX)
chmod 777 "$work"
awk -v n="$copy_rows" -v l="$leads" 'BEGIN {srand(7); for (i = 0; i < n; i++)
    printf "%d\t%s\t2026-12-01 %02d:%02d:00+00\tbench\n", 1 + int(rand() * l), (rand() < 0.7 ? "page view" : "e-mail open"), int(rand() * 24), int(rand() * 60)}' \
    > "$work/copy.tsv"
cat > "$work/insert.sql" <<SQL
\set l random(1, $leads)
INSERT INTO crm.activity (lead_id, type, occurred_at, url) VALUES (:l, 'page view', now(), 'bench');
SQL
: > "$out.tmp"

run_setup() {
    local name=$1 workers=$2 port=$3
    citus_start "$port" "$workers"
    local q="psql -X -q -At -v ON_ERROR_STOP=1 -p $port"
    $q >/dev/null <<SQL
CREATE EXTENSION leadscore;
CREATE SCHEMA crm;
CREATE TABLE crm.lead (id bigint PRIMARY KEY, title text, employees int);
CREATE TABLE crm.activity (id bigserial, lead_id bigint NOT NULL, type text NOT NULL, occurred_at timestamptz NOT NULL,
                           url text, PRIMARY KEY (lead_id, id));
SELECT create_distributed_table('crm.lead', 'id');
SELECT create_distributed_table('crm.activity', 'lead_id', colocate_with => 'crm.lead');
INSERT INTO crm.lead SELECT i, (ARRAY['CEO', 'Engineer', 'VP Sales'])[1 + i % 3], i % 1000 FROM generate_series(1, $leads) i;
INSERT INTO crm.activity (lead_id, type, occurred_at)
SELECT 1 + (g::bigint * 7919) % $leads, (ARRAY['page view', 'e-mail open', 'form fill', 'demo request'])[1 + g % 4],
       now() - (g % 120) * interval '1 day' FROM generate_series(1, $activities) g;
INSERT INTO leadscore.model (name) VALUES ('bench');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, max_count) VALUES ('bench', 'views', 'page view', 1, 50);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, expires_after) VALUES ('bench', 'opens', 'e-mail open', 2, '30 days');
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, once) VALUES ('bench', 'form', 'form fill', 10, true);
INSERT INTO leadscore.activity_rule (model, name, activity_type, points, half_life) VALUES ('bench', 'demo', 'demo request', 30, '14 days');
INSERT INTO leadscore.fit_rule (model, name, attribute, op, value, points) VALUES ('bench', 'ceo', 'title', '=', '{CEO}', 15);
INSERT INTO leadscore.stage (model, name, min_score) VALUES ('bench', 'MQL', 40), ('bench', 'SQL', 80);
SQL
    measure() {
        local label=$1
        local t0 t1
        t0=$(date +%s%N)
        $q -c "\\copy crm.activity (lead_id, type, occurred_at, url) FROM '$work/copy.tsv'"
        t1=$(date +%s%N)
        echo "$name|copy_$label|$(( (t1 - t0) / 1000000 ))|ms" >> "$out.tmp"
        $q -c "DELETE FROM crm.activity WHERE url = 'bench'"
        for c in 2 8; do
            local tps
            tps=$($PGBENCH -n -p "$port" -c $c -j 2 -T "$seconds" -f "$work/insert.sql" postgres 2>/dev/null |
                  awk '/^tps/ {print $3; exit}')
            echo "$name|insert_${c}cl_$label|$tps|tps" >> "$out.tmp"
            $q -c "DELETE FROM crm.activity WHERE url = 'bench'"
        done
        log "$name $label: $(grep "^$name|.*_$label|" "$out.tmp" | cut -d'|' -f2,3 | tr '\n' ' ')"
    }
    measure untracked
    log "$name: track() took $( { /usr/bin/time -f %e $q -c "SELECT leadscore.track('bench', 'crm.activity', 'lead_id', 'type', 'occurred_at', 'crm.lead', 'id')" >/dev/null; } 2>&1 ) s"
    measure tracked
    # Sessions that load leadscore notify their shards' stage changes at commit (one read of
    # every node per transaction that wrote through Citus).
    $q -c "ALTER DATABASE postgres SET session_preload_libraries = 'leadscore'"
    measure notified
    local bad
    bad=$($q -c "SELECT count(*) FROM leadscore.lead_score s WHERE s.model = 'bench'
                  AND s.score IS DISTINCT FROM leadscore.score('bench', s.lead_id::bigint, s.scored_at)")
    echo "$name|exactness_mismatches|$bad|leads" >> "$out.tmp"
    citus_stop
    trap - EXIT
}

log "sizes: leads=$leads activities=$activities copy=$copy_rows rows, pgbench $seconds s"
run_setup one_node 0 5841
run_setup two_workers 2 5851
rm -rf "$work"
{
    echo "# leadscore on Citus (bench/citus.sh): setup|key|value|unit; $leads leads, $activities activities, COPY of $copy_rows rows, pgbench ${seconds}s"
    cat "$out.tmp"
} > "$out"
rm -f "$out.tmp"
v() { grep "^$1|$2|" "$out" | cut -d'|' -f3; }
# One table of ratios to untracked per measured set-up (label: tracked, notified).
ratios() {
    local label=$1 title=$2
    printf '\n%-32s %12s %12s\n' "$title" "one node" "two workers"
    printf '%-32s %12s %12s\n' "COPY time" "$(ratio "$(v one_node copy_$label)" "$(v one_node copy_untracked)")" \
        "$(ratio "$(v two_workers copy_$label)" "$(v two_workers copy_untracked)")"
    for c in 2 8; do
        printf '%-32s %12s %12s\n' "single-row INSERT TPS, $c clients" \
            "$(ratio "$(v one_node insert_${c}cl_$label)" "$(v one_node insert_${c}cl_untracked)")" \
            "$(ratio "$(v two_workers insert_${c}cl_$label)" "$(v two_workers insert_${c}cl_untracked)")"
    done
}
ratios tracked "tracked / untracked"
ratios notified "tracked, notify at commit / untracked"
printf '%-32s %12s %12s\n' "stored != recomputed afterwards" "$(v one_node exactness_mismatches)" "$(v two_workers exactness_mismatches)"
