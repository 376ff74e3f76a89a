// Scoring a lead's new state, rescore() and refresh().
#include <map>
#include <set>

#include "pg/matching.hpp"
#include "pg/model_cache.hpp"
#include "pg/recompute.hpp"
#include "pg/rule_loading.hpp"
#include "pg/spi.hpp"
#include "pg/state_store.hpp"

namespace leadscore::pg {

NewState compute_new_state(const Model& model, const std::string& key, const StoredState* stored, Summary summary,
                           MicroPoints fit, bool fit_disqualified, Timestamp as_of, StageMode mode) {
    NewState ns = compute_new_results(model, key, stored, summary, fit, fit_disqualified, as_of, mode);
    ns.summary = std::move(summary);
    return ns;
}

NewState compute_new_results(const Model& model, const std::string& key, const StoredState* stored,
                             const Summary& summary, MicroPoints fit, bool fit_disqualified, Timestamp as_of,
                             StageMode mode) {
    const EngagementResult e = compute_engagement(model, summary, as_of, false);
    return new_state_of(model, key, stored, combine_score(model, fit, fit_disqualified, e), fit_disqualified,
                        Summary(), as_of, mode);
}

NewState new_state_of(const Model& model, const std::string& key, const StoredState* stored, LeadScore result,
                      bool fit_disqualified, Summary summary, Timestamp as_of, StageMode mode) {
    NewState ns;
    ns.key = key;
    ns.result = std::move(result);
    ns.fit_disqualified = fit_disqualified;
    ns.summary = std::move(summary);
    if (stored && stored->initialized) {
        ns.previous_stage = stored->stage;
        if (mode == StageMode::KeepSticky)
            ns.result.stage = apply_sticky(model, stored->stage, ns.result.stage, ns.result.disqualified);
        ns.stage_changed = ns.result.stage != stored->stage;
        ns.stage_since = ns.stage_changed ? std::optional<Timestamp>(as_of) : stored->stage_since;
    } else {
        ns.stage_changed = ns.result.stage.has_value();
        ns.stage_since = as_of;
    }
    return ns;
}

namespace {

}  // namespace

bool same_results(const StoredState& s, const NewState& n) {
    return s.initialized && s.score == n.result.score && s.fit == n.result.fit &&
           s.engagement == n.result.engagement && s.disqualified == n.result.disqualified &&
           s.fit_disqualified == n.fit_disqualified && s.stage == n.result.stage &&
           s.next_change == n.result.next_change;
}

bool same_result(const StoredState& s, const NewState& n, const Summary& summary) {
    return same_results(s, n) && s.summary == summary;
}

void rebuild_leads(const std::shared_ptr<CompiledModel>& cm, const std::vector<std::string>& keys, Timestamp as_of) {
    if (keys.empty()) return;
    SpiConnection spi;
    StateStore store(*cm);
    store.create_placeholders(keys, as_of);
    std::vector<StoredState> rows = store.lock_and_read(&keys);
    std::vector<std::string> present;
    for (const StoredState& s : rows) present.push_back(s.key);
    std::map<std::string, FitFacts> fits;
    collect_fits(*cm, &present, fits);
    std::map<std::string, Summary> fresh;
    collect_activities(*cm, &present, fresh, &fits);
    std::vector<NewState> out;
    for (StoredState& s : rows) {
        Summary summary;
        if (auto it = fresh.find(s.key); it != fresh.end()) summary = std::move(it->second);
        const FitFacts& fit = fits[s.key];
        out.push_back(compute_new_state(*cm->model, s.key, &s, std::move(summary), fit.fit, fit.disqualified, as_of,
                                        StageMode::Fresh));
    }
    store.write(out, as_of, true);
}

std::int64_t rescore_model(const std::string& model, Timestamp as_of, bool notify, std::int64_t* leads_scored) {
    return rescore_model(get_model(model, true), as_of, notify, leads_scored);
}

std::int64_t rescore_model(std::shared_ptr<CompiledModel> cm, Timestamp as_of, bool notify,
                           std::int64_t* leads_scored) {
    SpiConnection spi;
    const std::uint64_t generation = cache_generation();
    // Writers of this model wait until the rescore commits; it then reads a settled state.
    StateStore(*cm).lock_exclusive();
    // Rules that a transaction holding the lock changed and committed meanwhile: the rows are
    // read as of after the lock, so the rules are too (parallel workers load them that way).
    if (cache_generation() != generation && !cm->tracking->on_shard && cm->tracking->tables_from == cm->model->spec().name)
        cm = get_model(cm->model->spec().name, true);
    StateStore store(*cm);
    std::map<std::string, Summary> summaries;
    std::map<std::string, FitFacts> fits;
    const bool has_leads = OidIsValid(cm->tracking->leads);
    if (has_leads) collect_fits(*cm, nullptr, fits);
    collect_activities(*cm, nullptr, summaries, &fits);
    store.remove_absent_leads(nullptr);
    std::vector<StoredState> stored = store.lock_and_read(nullptr, false);
    std::map<std::string, const StoredState*> by_key;
    for (const auto& s : stored) by_key[s.key] = &s;

    std::set<std::string> keys;
    for (const auto& [k, v] : summaries) keys.insert(k);
    for (const auto& [k, v] : fits) keys.insert(k);
    for (const auto& [k, v] : by_key) keys.insert(k);

    std::vector<NewState> changed;
    std::int64_t score_changes = 0, scored = 0;
    for (const std::string& key : keys) {
        if (has_leads && !fits.count(key)) continue;  // activities of unknown leads are not scored
        auto sit = summaries.find(key);
        Summary summary = sit == summaries.end() ? Summary() : std::move(sit->second);
        static const FitFacts kNoFit;
        auto f = fits.find(key);
        const FitFacts& fit = f == fits.end() ? kNoFit : f->second;
        auto st = by_key.find(key);
        const StoredState* prev = st == by_key.end() ? nullptr : st->second;
        scored++;
        NewState ns = compute_new_state(*cm->model, key, prev, std::move(summary), fit.fit, fit.disqualified, as_of,
                                        StageMode::Fresh);
        if (prev && prev->initialized) {
            const Summary stored_form = stored_summary(*cm->model, ns.summary, as_of);
            if (same_result(*prev, ns, stored_form)) {
                // Unchanged now; also unchanged as of the stored time, so the stored row stays exact.
                NewState then = compute_new_state(*cm->model, key, prev, ns.summary, fit.fit, fit.disqualified,
                                                  prev->scored_at, StageMode::Fresh);
                if (same_result(*prev, then, stored_form)) continue;
            }
        }
        if (!prev || prev->score != ns.result.score) score_changes++;
        changed.push_back(std::move(ns));
        if (changed.size() >= 10000) {
            store.write(changed, as_of, notify);
            changed.clear();
        }
        check_for_interrupts();
    }
    store.write(changed, as_of, notify);
    if (!cm->tracking->disabled_rules_matched && !cm->tracking->on_shard &&
        rule_table_has_column("tracking", "disabled_rules_matched")) {
        // Every summary now holds disabled rules' occurrences: enabling one needs no rows.
        spi_exec("UPDATE leadscore.tracking SET disabled_rules_matched = true WHERE model = $1",
                 {{TEXTOID, cm->tracking->model}});
        cm->tracking->disabled_rules_matched = true;
    }
    if (leads_scored) *leads_scored = scored;
    return score_changes;
}

NewState refreshed_state(const Model& model, const StoredState& s, std::map<std::string, Summary>& rebuilt,
                         Timestamp as_of) {
    Summary summary = s.summary;
    if (!s.summary.exact_at(as_of)) {
        auto it = rebuilt.find(s.key);
        summary = it == rebuilt.end() ? Summary() : std::move(it->second);
    }
    return compute_new_state(model, s.key, &s, std::move(summary), s.fit, s.fit_disqualified, as_of,
                             StageMode::KeepSticky);
}

std::int64_t refresh_model(const std::string& model, Timestamp as_of) {
    // Lock first: a rule change committed while we waited is seen when the model is loaded.
    StateStore(*get_model(model, true)).lock_for_write();
    std::shared_ptr<CompiledModel> cm = get_model(model, true);
    SpiConnection spi;
    StateStore store(*cm);
    if (store.coordinates_shards()) {
        // Citus: one UPDATE marks the due rows of every shard; each shard's trigger
        // (state_refreshed) computes them on its node, all shards at once.
        const std::string table = "leadscore." + quote_ident(cm->tracking->state_table);
        spi_exec("WITH due AS MATERIALIZED (SELECT lead, score FROM " + table + " WHERE next_change <= $1), "
                 "done AS (UPDATE " + table + " SET scored_at = $1, next_change = '-infinity' WHERE next_change <= $1 "
                 "RETURNING lead, score) "
                 "SELECT count(*) FROM done JOIN due USING (lead) WHERE done.score IS DISTINCT FROM due.score",
                 {{TIMESTAMPTZOID, timestamp_text(as_of)}});
        const std::int64_t score_changes = DatumGetInt64(*spi_datum(0, 1));
        // Notified in this transaction, like a refresh on one machine.
        store.notify_pending_changes();
        return score_changes;
    }
    std::vector<StoredState> due = store.read_due(as_of);
    // Summaries pruned past as_of (a refresh as of an earlier time) are rebuilt from raw rows.
    std::vector<std::string> rebuild;
    for (const StoredState& s : due)
        if (s.initialized && !s.summary.exact_at(as_of)) rebuild.push_back(s.key);
    std::map<std::string, Summary> fresh;
    if (!rebuild.empty()) collect_activities(*cm, &rebuild, fresh);
    std::vector<NewState> changed;
    std::int64_t score_changes = 0;
    for (const StoredState& s : due) {
        if (!s.initialized) continue;
        NewState ns = refreshed_state(*cm->model, s, fresh, as_of);
        if (s.score != ns.result.score) score_changes++;
        changed.push_back(std::move(ns));
    }
    store.write(changed, as_of, true);
    return score_changes;
}

void resync_leads(std::shared_ptr<CompiledModel> cm, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    SpiConnection spi;
    StateStore store(*cm);
    const Timestamp as_of = transaction_now();
    store.lock_keys(keys);
    std::map<std::string, FitFacts> fits;
    collect_fits(*cm, &keys, fits);
    store.remove_absent_leads(&keys);
    std::vector<std::string> present;
    for (const auto& [k, f] : fits) present.push_back(k);
    store.create_placeholders(present, as_of);
    std::vector<StoredState> rows = store.lock_and_read(&present);
    // Activity rules that read the lead match its activities again with its new row.
    const bool rematch = cm->activity_reads_lead;
    std::vector<std::string> rebuild;
    for (const StoredState& s : rows)
        if (rematch || !s.initialized || !s.summary.exact_at(as_of)) rebuild.push_back(s.key);
    std::map<std::string, Summary> fresh;
    collect_activities(*cm, &rebuild, fresh, &fits);
    std::vector<NewState> out;
    for (StoredState& s : rows) {
        Summary summary;
        if (!rematch && s.initialized && s.summary.exact_at(as_of)) {
            summary = std::move(s.summary);
        } else if (auto it = fresh.find(s.key); it != fresh.end()) {
            summary = std::move(it->second);
        }
        const FitFacts& fit = fits[s.key];
        out.push_back(compute_new_state(*cm->model, s.key, &s, std::move(summary), fit.fit, fit.disqualified, as_of,
                                        StageMode::Fresh));
    }
    store.write(out, as_of, true);
}


}  // namespace leadscore::pg
