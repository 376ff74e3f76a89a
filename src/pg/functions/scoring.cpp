// SQL API, "Tracking, scoring and maintenance functions" of the install script: score(),
// explain(), rescore(), refresh().
#include <map>

#include "pg/args.hpp"
#include "pg/matching.hpp"
#include "pg/model_cache.hpp"
#include "pg/recompute.hpp"
#include "pg/rule_edits.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "funcapi.h"
#include "utils/timestamp.h"
}

using namespace leadscore;
using namespace leadscore::pg;

namespace {

struct LeadExplanation {
    LeadScore score;
    std::vector<Contribution> contributions;
};

LeadExplanation explain_lead(const CompiledModel& cm, const std::string& key, Timestamp as_of) {
    std::vector<std::string> keys = {key};
    std::map<std::string, Summary> summaries;
    std::map<std::string, FitFacts> fits;
    {
        SpiConnection spi;
        collect_activities(cm, &keys, summaries);
        collect_fits(cm, &keys, fits);
    }
    Summary summary;
    if (auto it = summaries.find(key); it != summaries.end()) summary = std::move(it->second);
    FitFacts fit;
    if (auto it = fits.find(key); it != fits.end()) fit = it->second;
    LeadExplanation out;
    EngagementResult e = compute_engagement(*cm.model, summary, as_of, true);
    out.score = combine_score(*cm.model, fit.fit, fit.disqualified, e);
    FitResult fr = compute_fit(*cm.model, fit.matches);
    out.contributions = fr.contributions;
    out.contributions.insert(out.contributions.end(), e.contributions.begin(), e.contributions.end());
    return out;
}

}  // namespace

LEADSCORE_FUNCTION(leadscore_score) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) PG_RETURN_NULL();
    const std::string model = text_arg(fcinfo, 0, "model");
    std::shared_ptr<CompiledModel> cm = get_model(model, true);
    const std::string key = lead_key_arg(fcinfo, 1, cm->tracking->key_type);
    LeadExplanation e = explain_lead(*cm, key, as_of_arg(fcinfo, 2));
    return points_to_numeric(e.score.score);
}

LEADSCORE_FUNCTION(leadscore_explain) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) {
        pg_guard([&] { InitMaterializedSRF(fcinfo, 0); });
        return (Datum)0;
    }
    const std::string model = text_arg(fcinfo, 0, "model");
    std::shared_ptr<CompiledModel> cm = get_model(model, true);
    const std::string key = lead_key_arg(fcinfo, 1, cm->tracking->key_type);
    LeadExplanation e = explain_lead(*cm, key, as_of_arg(fcinfo, 2));
    pg_guard([&] { InitMaterializedSRF(fcinfo, 0); });
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (const Contribution& c : e.contributions) {
        Datum values[7];
        bool nulls[7] = {false, false, false, false, false, false, false};
        Datum name = string_to_text(c.rule_name);
        Datum family = string_to_text(c.family == Family::Fit ? "fit" : "engagement");
        Datum points = points_to_numeric(c.points);
        values[0] = Int64GetDatum(c.rule_id);
        values[1] = name;
        values[2] = family;
        values[3] = Int64GetDatum(c.occurrences);
        values[4] = points;
        if (c.next_expiry)
            values[5] = TimestampTzGetDatum(*c.next_expiry);
        else
            nulls[5] = true;
        values[6] = BoolGetDatum(c.disqualifies);
        pg_guard([&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
    }
    return (Datum)0;
}


LEADSCORE_FUNCTION(leadscore_rescore) {
    note_state_writer();
    const std::vector<std::string> models = models_arg(fcinfo, 0);
    std::int64_t changed = 0;
    for (const auto& m : models) changed += rescore_model(m, transaction_now(), true, nullptr);
    PG_RETURN_INT64(changed);
}

LEADSCORE_FUNCTION(leadscore_refresh) {
    note_state_writer();
    const std::vector<std::string> models = models_arg(fcinfo, 0);
    const Timestamp as_of = as_of_arg(fcinfo, 1);
    std::int64_t changed = 0;
    for (const auto& m : models) changed += refresh_model(m, as_of);
    PG_RETURN_INT64(changed);
}

