// SQL API, "Analytics" and "BI views" of the install script: scores_as_of() scores every lead
// as of any date from raw history (evaluate() and backtest() build on it); rule_usage_of()
// counts each rule's leads and points from the stored state, reading no activity rows.
#include <map>
#include <set>

#include "core/decimal.hpp"
#include "pg/args.hpp"
#include "pg/matching.hpp"
#include "pg/model_cache.hpp"
#include "pg/spi.hpp"
#include "pg/state_store.hpp"

extern "C" {
#include "funcapi.h"
#include "utils/builtins.h"
}

using namespace leadscore;
using namespace leadscore::pg;

LEADSCORE_FUNCTION(leadscore_scores_as_of) {
    const std::string model = text_arg(fcinfo, 0, "model");
    const Timestamp as_of = as_of_arg(fcinfo, 1);
    const std::string tables_from = PG_ARGISNULL(2) ? model : text_to_string(PG_GETARG_DATUM(2));
    std::shared_ptr<CompiledModel> cm = get_model_on_tables(model, tables_from);
    std::map<std::string, Summary> summaries;
    std::map<std::string, FitFacts> fits;
    {
        SpiConnection spi;
        collect_activities(*cm, nullptr, summaries);
        collect_fits(*cm, nullptr, fits);
    }
    const bool has_leads = OidIsValid(cm->tracking->leads);
    std::set<std::string> keys;
    for (const auto& [k, v] : fits) keys.insert(k);
    if (!has_leads)
        for (const auto& [k, v] : summaries) keys.insert(k);
    pg_guard([&] { InitMaterializedSRF(fcinfo, 0); });
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    static const Summary kEmpty;
    for (const std::string& key : keys) {
        auto sit = summaries.find(key);
        const Summary& summary = sit == summaries.end() ? kEmpty : sit->second;
        FitFacts fit;
        if (auto f = fits.find(key); f != fits.end()) fit = f->second;
        EngagementResult e = compute_engagement(*cm->model, summary, as_of, false);
        LeadScore ls = combine_score(*cm->model, fit.fit, fit.disqualified, e);
        Datum values[6];
        bool nulls[6] = {false, false, false, false, false, false};
        values[0] = string_to_text(key);
        values[1] = points_to_numeric(ls.score);
        values[2] = points_to_numeric(ls.fit);
        values[3] = points_to_numeric(ls.engagement);
        if (ls.stage)
            values[4] = string_to_text(*ls.stage);
        else
            nulls[4] = true;
        values[5] = BoolGetDatum(ls.disqualified);
        pg_guard([&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
        check_for_interrupts();
    }
    return (Datum)0;
}


namespace {

struct Usage {
    std::int64_t leads = 0;
    WideSum points = 0;
};

}  // namespace

LEADSCORE_FUNCTION(leadscore_rule_usage_of) {
    if (PG_ARGISNULL(0)) raise(sqlstate::kInvalidParameterValue, "leadscore.rule_usage_of: model must not be NULL");
    const std::string model = text_to_string(PG_GETARG_DATUM(0));
    std::shared_ptr<CompiledModel> cm = get_model(model, true);
    std::map<std::int64_t, Usage> engagement, fit;
    {
        SpiConnection spi;
        StateStore store(*cm);
        std::vector<StoredState> rows = store.lock_and_read(nullptr, false);
        std::vector<std::string> keys;
        for (const StoredState& s : rows) {
            if (!s.initialized) continue;
            keys.push_back(s.key);
            // Each stored score is exact as of its scored_at: so are its contributions.
            EngagementResult e = compute_engagement(*cm->model, s.summary, s.scored_at, true);
            for (const Contribution& c : e.contributions) {
                Usage& u = engagement[c.rule_id];
                u.leads++;
                u.points += c.points;
            }
            check_for_interrupts();
        }
        if (OidIsValid(cm->tracking->leads)) {
            std::map<std::string, FitFacts> fits;
            collect_fits(*cm, &keys, fits);
            for (const auto& [key, facts] : fits)
                for (const Contribution& c : compute_fit(*cm->model, facts.matches).contributions) {
                    Usage& u = fit[c.rule_id];
                    u.leads++;
                    u.points += c.points;
                }
        }
    }
    pg_guard([&] { InitMaterializedSRF(fcinfo, 0); });
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    auto emit = [&](const char* family, std::int64_t id, const std::string& name, const Usage& u) {
        Datum values[5];
        bool nulls[5] = {false, false, false, false, false};
        values[0] = string_to_text(family);
        values[1] = Int64GetDatum(id);
        values[2] = string_to_text(name);
        values[3] = Int64GetDatum(u.leads);
        values[4] = points_to_numeric(narrow_points(u.points, "total points of a rule"));
        pg_guard([&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
    };
    for (const ActivityRuleSpec& r : cm->model->activity_rules()) {
        if (!r.enabled) continue;
        auto it = engagement.find(r.id);
        emit("engagement", r.id, r.name, it == engagement.end() ? Usage{} : it->second);
    }
    for (const FitRuleSpec& r : cm->model->fit_rules()) {
        auto it = fit.find(r.id);
        emit("fit", r.id, r.name, it == fit.end() ? Usage{} : it->second);
    }
    return (Datum)0;
}
