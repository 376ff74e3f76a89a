#!/usr/bin/env bash
# Learning benchmark: (1) training time of the logistic model on N leads x F binary features
# (one parallel-safe aggregate pass per Newton step); (2) on realistic data (the demo CRM's
# leads and conversions), the cross-validated AUC of the raw logistic model, the integer
# points and naive Bayes; (3) the full model against max_rules => 15 (timed) on the demo
# CRM's table and on a seeded table shaped like the public lead-scoring data.
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

# Full model against at most 15 rules (max_rules: greedy forward selection inside each fold).
full_vs_sparse() {
    psql -X -v ON_ERROR_STOP=1 -c "\\timing on" -c "
      SELECT f.method, f.auc AS full_auc, f.rules AS full_rules, s.auc AS auc_max_rules_15, s.rules AS rules_15,
             s.auc - f.auc AS change
        FROM leadscore.learn_report('$1', '$2', '$3', 5) AS f
        JOIN leadscore.learn_report('$1', '$2', '$3', 5, max_rules => 15) AS s USING (fold, method)
       WHERE fold = 'mean' AND method <> 'naive Bayes' ORDER BY 1"
}
echo "realistic data, full model and at most 15 rules (5-fold, both timed together):"
full_vs_sparse crm.learn_table id converted

# A table shaped like the public lead-scoring data: columns with spaces and capitals, 'Select'
# for unknown, an integer Converted, a few strong effects and many weak ones.
q -c "SET max_parallel_workers_per_gather = 0; SELECT setseed(0.3);
      CREATE TABLE public_leads AS
      SELECT md5(g::text) AS \"Prospect ID\", x.*
        FROM generate_series(1, 9000) g,
        LATERAL (SELECT
          (ARRAY['Landing Page Submission', 'Landing Page Submission', 'API', 'API', 'Lead Add Form', 'Lead Import'])[1 + floor(random() * 6)::int + g * 0] AS \"Lead Origin\",
          (ARRAY['Google', 'Google', 'Direct Traffic', 'Olark Chat', 'Organic Search', 'Reference', 'Welingak Website', 'Referral Sites', NULL])[1 + floor(random() * 9)::int] AS \"Lead Source\",
          CASE WHEN random() < 0.08 THEN 'Yes' ELSE 'No' END AS \"Do Not Email\",
          CASE WHEN random() < 0.02 THEN NULL ELSE floor(random() * random() * 20) END AS \"TotalVisits\",
          floor(random() * random() * 2200)::int AS \"Total Time Spent on Website\",
          round((random() * 6)::numeric, 2) AS \"Page Views Per Visit\",
          (ARRAY['Email Opened', 'Email Opened', 'SMS Sent', 'SMS Sent', 'Olark Chat Conversation', 'Page Visited on Website', 'Converted to Lead', 'Email Bounced', 'Email Link Clicked', 'Form Submitted on Website'])[1 + floor(random() * 10)::int] AS \"Last Activity\",
          (ARRAY['India', 'India', 'India', 'India', 'United States', 'United Arab Emirates', 'Singapore', 'Saudi Arabia', 'United Kingdom', NULL])[1 + floor(random() * 10)::int] AS \"Country\",
          (ARRAY['Select', 'Select', 'Finance Management', 'Human Resource Management', 'Marketing Management', 'Operations Management', 'Business Administration', 'IT Projects Management', 'Supply Chain Management', 'Banking, Investment And Insurance', 'Media and Advertising', 'Travel and Tourism', 'International Business', 'Healthcare Management', 'E-COMMERCE', 'Retail Management', 'Rural and Agribusiness', 'E-Business', 'Services Excellence'])[1 + floor(random() * 19)::int] AS \"Specialization\",
          (ARRAY['Unemployed', 'Unemployed', 'Unemployed', 'Unemployed', 'Working Professional', 'Student', 'Select', NULL, 'Other', 'Housewife', 'Businessman'])[1 + floor(random() * 11)::int] AS \"What is your current occupation\",
          (ARRAY[NULL, NULL, NULL, 'Will revert after reading the email', 'Will revert after reading the email', 'Ringing', 'Interested in other courses', 'Already a student', 'Closed by Horizzon', 'switched off', 'Busy', 'Lost to EINS', 'Not doing further education', 'Interested  in full time MBA', 'Graduation in progress', 'invalid number', 'Diploma holder (Not Eligible)', 'wrong number given', 'opp hangup', 'number not provided', 'in touch with EINS', 'Lost to Others', 'Still Thinking', 'Want to take admission but has financial problems', 'In confusion whether part time or DLP', 'Interested in Next batch', 'Lateral student', 'Shall take in the next coming month', 'University not recognized', 'Recognition issue (DEC approval)'])[1 + floor(random() * 30)::int] AS \"Tags\",
          (ARRAY['Mumbai', 'Mumbai', 'Select', 'Select', 'Thane & Outskirts', 'Other Cities', 'Other Cities of Maharashtra', 'Other Metro Cities', 'Tier II Cities', NULL])[1 + floor(random() * 10)::int] AS \"City\",
          (ARRAY['Modified', 'Email Opened', 'SMS Sent', 'Page Visited on Website', 'Olark Chat Conversation', 'Email Link Clicked', 'Email Bounced', 'Unsubscribed', 'Unreachable', 'Had a Phone Conversation'])[1 + floor(random() * 10)::int] AS \"Last Notable Activity\"
        ) x;
      ALTER TABLE public_leads ADD COLUMN \"Converted\" integer;
      UPDATE public_leads SET \"Converted\" = (random() < 1 / (1 + exp(-(-2.0
          + CASE \"Lead Origin\" WHEN 'Lead Add Form' THEN 2.5 WHEN 'Lead Import' THEN -0.5 WHEN 'Landing Page Submission' THEN 0.3 ELSE 0 END
          + CASE \"Lead Source\" WHEN 'Welingak Website' THEN 1.8 WHEN 'Reference' THEN 1.2 WHEN 'Olark Chat' THEN -0.4 ELSE 0 END
          + CASE \"Do Not Email\" WHEN 'Yes' THEN -1.0 ELSE 0 END
          + 0.0012 * \"Total Time Spent on Website\"
          + 0.03 * coalesce(\"TotalVisits\", 0) - 0.05 * \"Page Views Per Visit\"
          + CASE \"Last Activity\" WHEN 'SMS Sent' THEN 1.3 WHEN 'Email Opened' THEN 0.4 WHEN 'Olark Chat Conversation' THEN -1.0
                                   WHEN 'Email Bounced' THEN -1.0 WHEN 'Converted to Lead' THEN -0.6 ELSE 0 END
          + CASE \"What is your current occupation\" WHEN 'Working Professional' THEN 2.3 WHEN 'Select' THEN -0.6
                                                     WHEN 'Housewife' THEN 1.5 WHEN 'Student' THEN -0.2 ELSE 0 END
          + CASE WHEN \"Tags\" IN ('Will revert after reading the email', 'Closed by Horizzon', 'Lost to EINS') THEN 3.0
                 WHEN \"Tags\" IN ('Ringing', 'switched off', 'Interested in other courses', 'Already a student', 'invalid number',
                                  'wrong number given', 'Not doing further education', 'Busy') THEN -2.0
                 WHEN \"Tags\" IS NULL THEN 0 ELSE -0.8 END
          + (hashtext(coalesce(\"Country\", '') || coalesce(\"City\", '') || \"Specialization\") % 100) / 400.0
          + CASE \"Last Notable Activity\" WHEN 'Had a Phone Conversation' THEN 1.5 WHEN 'SMS Sent' THEN 0.5 WHEN 'Modified' THEN -0.4 ELSE 0 END))))::int;"
echo "public-shaped data, 9,000 leads, full model and at most 15 rules (5-fold, both timed together):"
full_vs_sparse public_leads "Prospect ID" Converted
