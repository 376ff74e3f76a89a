#!/usr/bin/env bash
# Learning benchmark: (1) training time of the logistic model on N leads x F binary features
# (one parallel-safe aggregate pass per Newton step); (2) on realistic data (the demo CRM's
# leads and conversions), the cross-validated AUC of the raw logistic model, the integer
# points and naive Bayes.
#   bench/learning/run.sh [--leads N] [--features F]      (default 1,000,000 x 50)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${LEADSCORE_LEARN_INNER:-}" ]; then
    export LEARN_LEADS=1000000 LEARN_FEATURES=50
    while [ $# -gt 0 ]; do
        case "$1" in
            --leads) LEARN_LEADS="$2"; shift ;;
            --features) LEARN_FEATURES="$2"; shift ;;
            *) echo "unknown option $1" >&2; exit 2 ;;
        esac
        shift
    done
    export LEADSCORE_LEARN_INNER=1 PGUSER="${PGUSER:-postgres}"
    exec pg_virtualenv -t -v 15 -o shared_buffers=512MB -o work_mem=64MB -o max_parallel_workers_per_gather=2 "$0"
fi
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION leadscore"
echo "learning benchmark: $(nproc) cores; $LEARN_LEADS leads x $LEARN_FEATURES binary features"
# Each lead has each feature with probability 0.3; conversion follows planted weights.
q -c "SET max_parallel_workers_per_gather = 0; SELECT setseed(0.1);
      CREATE TABLE design AS
      SELECT g::text AS lead, f.features,
             random() < 1 / (1 + exp(-(-1 + (SELECT coalesce(sum(CASE WHEN substr(x, 2)::int % 5 = 0 THEN 0.8
                                                                      WHEN substr(x, 2)::int % 7 = 0 THEN -0.6 ELSE 0.05 END), 0)
                                               FROM unnest(f.features) x)))) AS converted
        FROM generate_series(1, $LEARN_LEADS) g,
             LATERAL (SELECT array_agg('f' || j) AS features FROM generate_series(1, $LEARN_FEATURES) j
                       WHERE random() < 0.3 + g * 0) f;
      ALTER TABLE design SET (parallel_workers = 2); ANALYZE design;"
start=$(date +%s.%N)
iterations=$(q -c "SELECT count(*) FROM leadscore.learn_logistic('SELECT lead, features, converted FROM design', 1.0)")
end=$(date +%s.%N)
echo "training: $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s for $LEARN_LEADS leads x $LEARN_FEATURES features ($iterations coefficients)"

psql -X -q -v ON_ERROR_STOP=1 -v seed=42 -v leads=20000 -f demo/generate.sql
q -c "CREATE TABLE crm.learn_table AS
      SELECT l.id, l.title, l.industry, l.employees, l.revenue, l.country, l.lead_source, l.uses_competitor,
             split_part(l.email, '@', 2) AS email_domain, o.converted
        FROM crm.lead l JOIN crm.outcome o ON o.lead_id = l.id"
echo "realistic data: 20,000 generated leads, 5-fold cross-validated ROC AUC:"
psql -X -c "SELECT method, auc FROM leadscore.learn_report('crm.learn_table', 'id', 'converted', 5) WHERE fold = 'mean' ORDER BY method"
