// Applying a rule edit's plan (rule_edits.hpp) at the cost of what it changes: the stored rows
// it concerns go through one pass over the state table (state_pass.cpp), each decided here —
// recomputed from its stored summary, its new fit or its rematched occurrences, written only
// when something in it changes.
#include <algorithm>
#include <functional>

#include "core/decimal.hpp"
#include "pg/datum.hpp"
#include "pg/lead_row.hpp"
#include "pg/matching.hpp"
#include "pg/model_cache.hpp"
#include "pg/relations.hpp"
#include "pg/recompute.hpp"
#include "pg/rule_edits.hpp"
#include "pg/spi.hpp"
#include "pg/state_store.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace leadscore::pg {

namespace {

// The leads with activity rows of these types (through an index on the type column when one
// exists), as key text.
std::vector<std::string> leads_with_types(const CompiledModel& cm, const std::set<std::string>& types) {
    const TrackingInfo& t = *cm.tracking;
    std::vector<std::string> keys;
    if (types.empty()) return keys;
    Oid type_type = InvalidOid;
    pg_guard([&] { type_type = get_atttype(t.activities, get_attnum(t.activities, t.type_column.c_str())); });
    const std::vector<std::string> list(types.begin(), types.end());
    const std::uint64_t n = spi_exec("SELECT DISTINCT " + quote_ident(t.lead_column) + "::text FROM " + t.activities_name +
                                         " WHERE " + quote_ident(t.lead_column) + " IS NOT NULL AND " +
                                         quote_ident(t.type_column) + " = ANY($1::text[]::" + type_name(type_type) + "[])",
                                     {{TEXTARRAYOID, key_array_literal(list)}}, true);
    keys.reserve(n);
    for (std::uint64_t i = 0; i < n; i++) keys.push_back(*spi_text(i, 1));
    return keys;
}

// Whether the types' rows are a large share of the activity table (by its statistics): then
// reading every stored summary costs less than finding the leads that have such rows.
bool common_types(const CompiledModel& cm, const std::set<std::string>& types) {
    constexpr double kCommonShare = 0.1;
    if (types.empty()) return false;
    const TrackingInfo& t = *cm.tracking;
    std::string schema, table;
    pg_guard([&] {
        schema = get_namespace_name(get_rel_namespace(t.activities));
        table = get_rel_name(t.activities);
    });
    const std::vector<std::string> list(types.begin(), types.end());
    spi_exec("SELECT coalesce(sum(m.freq), 0)::float8 FROM pg_catalog.pg_stats s, "
             "unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS m(value, freq) "
             "WHERE s.schemaname = $1 AND s.tablename = $2 AND s.attname = $3 AND m.value = ANY($4::text[])",
             {{TEXTOID, schema}, {TEXTOID, table}, {TEXTOID, t.type_column}, {TEXTARRAYOID, key_array_literal(list)}},
             true);
    return DatumGetFloat8(*spi_datum(0, 1)) > kCommonShare;
}

// Whether a summary holds occurrences of a current activity rule of one of these types.
bool has_rules_of_types(const Model& model, const Summary& summary, const std::set<std::string>& types) {
    if (types.empty()) return false;
    for (std::int64_t id : summary.rule_ids())
        if (const ActivityRuleSpec* rule = model.activity_rule(id); rule && types.count(rule->activity_type))
            return true;
    return false;
}

using PassVerdict = StateStore::PassVerdict;

// A lead's fit as a fit edit leaves it (a lead not in the leads table has none).
struct FitScore {
    MicroPoints fit = 0;
    bool disqualified = false;
};
using FitScores = std::unordered_map<std::string, FitScore>;
// A stored lead's fit as the edit leaves it.
using FitOf = std::function<FitScore(const StoredState&)>;

// What a stage, range or fit edit changes in one stored row, from its results alone (refit:
// the lead's new fit, null when the edit changes no fit): a lead keeps its engagement sums as of its scored_at,
// so its new result follows from them (written, scored_at kept) — unless a stored fit
// disqualification hides whether its activities disqualify too: those leads are deferred, to
// be recomputed from their summaries.
PassVerdict result_change(const CompiledModel& cm, const FitOf* refit, Timestamp as_of, const StoredState& s,
                          NewState& out) {
    if (!s.initialized) return PassVerdict::Keep;
    const FitScore f = refit ? (*refit)(s) : FitScore{s.fit, s.fit_disqualified};
    const bool fit_changed = f.fit != s.fit || f.disqualified != s.fit_disqualified;
    if (fit_changed && s.fit_disqualified) return PassVerdict::Defer;
    EngagementResult engagement;
    engagement.engagement = s.engagement;
    engagement.disqualified = s.disqualified;
    engagement.next_change = s.next_change;
    out = new_state_of(*cm.model, s.key, &s, combine_score(*cm.model, f.fit, f.disqualified, engagement),
                       f.disqualified, Summary(), as_of, StageMode::Fresh);
    if (!fit_changed && out.result.score == s.score && out.result.stage == s.stage) return PassVerdict::Keep;
    return PassVerdict::WriteResultsKeepScoredAt;
}

// The leads table's row count as its statistics say (0 when never analyzed): a size to reserve.
std::size_t lead_count_estimate(const CompiledModel& cm) {
    double rows = 0;
    pg_guard([&] {
        HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(cm.tracking->leads));
        if (!HeapTupleIsValid(tuple)) return;
        rows = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->reltuples;
        ReleaseSysCache(tuple);
    });
    return rows > 0 && rows < 1e9 ? static_cast<std::size_t>(rows) : 0;
}

// Whether a plan's fit change can be applied as points deltas (EditPlan::fit_points_only): only
// fit rules changed, each delta's rule is one the model matches alone (no multiply_by), at most 64.
bool fit_deltas_apply(const CompiledModel& cm, const EditPlan& plan) {
    if (!plan.fit_points_only || plan.recompute || plan.full || !plan.types.empty() || !plan.rematch.empty() ||
        plan.fit_point_deltas.size() > 64)
        return false;
    for (const auto& [id, delta] : plan.fit_point_deltas) {
        auto it = cm.fit_refs.find(id);
        if (!cm.model->fit_rule(id) || it == cm.fit_refs.end() || it->second.multiply_column >= 0) return false;
    }
    return true;
}

// The rematched rules whose edit changed only lead-side conditions of their one condition group
// (before and after): a rule then matches a row when its activity-side test holds on the row and
// its lead-side test on the lead, so a lead's occurrences of it change only when the lead-side
// test now disagrees with them. Empty when the plan is anything else.
std::vector<std::int64_t> lead_side_rematch(const CompiledModel& cm, const EditPlan& plan,
                                            const std::set<std::int64_t>& rematch, bool shards) {
    constexpr std::size_t kMaxRules = 64;
    if (shards || plan.recompute || plan.refit || rematch.empty() || rematch.size() > kMaxRules ||
        !OidIsValid(cm.tracking->leads) || rule_types(*cm.model, rematch) != plan.types)
        return {};
    for (std::int64_t id : rematch) {
        auto edited = plan.lead_side_groups.find(id);
        const ActivityRuleSpec* rule = cm.model->activity_rule(id);
        if (edited == plan.lead_side_groups.end() || !rule || edited->second.size() > 1) return {};
        for (const ConditionRowSpec& c : rule->conditions)
            if (c.grp != rule->conditions.front().grp || !edited->second.count(c.grp)) return {};
    }
    return std::vector<std::int64_t>(rematch.begin(), rematch.end());
}

// Whether a lead-side test holds for a lead's condition results (one bit per rule).
std::uint64_t lead_side_holds(const CompiledModel& cm, const std::vector<std::int64_t>& rules,
                              const std::vector<char>& conditions) {
    std::uint64_t bits = 0;
    for (std::size_t i = 0; i < rules.size(); i++) {
        bool holds = true;
        if (auto it = cm.activity_refs.find(rules[i]); it != cm.activity_refs.end()) {
            const RuleRefs& refs = it->second;
            auto test = [&](const ConditionRef& ref) {
                return !ref.lead_side || conditions[static_cast<std::size_t>(ref.index)] != 0;
            };
            if (refs.inline_condition) holds = test(*refs.inline_condition);
            for (const ConditionRef& ref : refs.rows) holds = holds && test(ref);
        }
        if (holds) bits |= std::uint64_t{1} << i;
    }
    return bits;
}

std::uint64_t state_writers = 0;
std::uint64_t state_writers_at_fit_rule_rows = 0;

}  // namespace

void note_state_writer() { state_writers++; }

void note_fit_rule_rows_written() { state_writers_at_fit_rule_rows = state_writers; }

bool state_written_since_fit_rule_rows() { return state_writers != state_writers_at_fit_rule_rows; }

std::int64_t apply_edit_plan(const std::string& model, const EditPlan& plan, Timestamp as_of) {
    if (plan.full) return rescore_model(model, as_of, true, nullptr);
    std::shared_ptr<CompiledModel> cm = get_model(model, true);
    std::set<std::int64_t> rematch = plan.rematch;
    // Summaries built before disabled rules' occurrences were kept lack those of a rule enabled now.
    if (!cm->tracking->disabled_rules_matched) rematch.insert(plan.enabled.begin(), plan.enabled.end());
    SpiConnection spi;
    StateStore store(*cm);
    const bool shards = store.coordinates_shards();
    // Writers of this model wait until the edit commits; they wait only for the work below.
    store.lock_exclusive();
    const bool refit = plan.refit && OidIsValid(cm->tracking->leads);
    FitScores fits;
    // A points-only fit edit: the stored fits are exact, so a lead's new fit is its stored one
    // plus the points changes of the edited rules it passes (only their tests are read).
    const bool by_delta = refit && fit_deltas_apply(*cm, plan);
    std::unordered_map<std::string, WideSum> fit_deltas;
    if (by_delta) {
        std::vector<std::int64_t> ids;
        std::vector<MicroPoints> deltas;
        for (const auto& [id, delta] : plan.fit_point_deltas) {
            ids.push_back(id);
            deltas.push_back(delta);
        }
        collect_fit_rule_matches(*cm, ids, [&](std::string& key, std::uint64_t passed) {
            WideSum sum = 0;
            for (std::size_t i = 0; i < ids.size(); i++)
                if ((passed >> i) & 1) sum += deltas[i];
            fit_deltas.emplace(std::move(key), sum);
        });
    } else if (refit) {
        fits.reserve(lead_count_estimate(*cm));
        collect_fits(
            *cm, nullptr,
            [&](std::string& key, FitFacts& f) { fits.insert_or_assign(std::move(key), FitScore{f.fit, f.disqualified}); },
            LeadRead::FitOnly);
    }
    const FitOf fit_of = [&](const StoredState& s) -> FitScore {
        if (by_delta) {
            auto it = fit_deltas.find(s.key);
            if (it == fit_deltas.end()) return FitScore{s.fit, s.fit_disqualified};
            return FitScore{narrow_points(WideSum{s.fit} + it->second, "fit score"), s.fit_disqualified};
        }
        auto it = fits.find(s.key);
        return it == fits.end() ? FitScore() : it->second;
    };
    std::int64_t score_changes = 0;
    std::map<std::string, Summary> fresh;
    std::unordered_set<std::string> have;

    // A lead-side condition edit (lead_side_rematch): the leads table says, lead by lead, whether
    // each rule's lead-side test holds now; the pass clears the rule's occurrences where it does
    // not, and the leads where it holds but the summary has none are rematched from their rows.
    const std::vector<std::int64_t> lead_side = lead_side_rematch(*cm, plan, rematch, shards);
    std::unordered_map<std::string, std::uint64_t> lead_holds;
    std::uint64_t absent_holds = 0;
    std::unordered_set<std::string> candidates;
    bool lead_side_pass = !lead_side.empty();
    if (lead_side_pass) {
        absent_holds = lead_side_holds(*cm, lead_side, cm->absent_lead_conditions);
        collect_fits(*cm, nullptr, [&](std::string& key, FitFacts& f) {
            lead_holds.insert_or_assign(std::move(key), lead_side_holds(*cm, lead_side, f.conditions));
        });
    }

    // One stored row's new state under the edit. rebuilt: the lead's summary read from its raw
    // rows, for a stored one pruned past as_of (by a refresh as of a later time), which cannot
    // say what counts now; without it such a row is deferred.
    auto edit_row = [&](StoredState& s, NewState& out, std::optional<Summary>* rebuilt) -> PassVerdict {
        if (!fresh.empty() || lead_side_pass) have.insert(s.key);
        if (!s.initialized) return PassVerdict::Keep;
        // The summary as the edit leaves it, copied only when something in it changes.
        std::optional<Summary> edited;
        bool touched =
            plan.recompute || plan.refit || (!plan.summaries_only && has_rules_of_types(*cm->model, s.summary, plan.types));
        bool summary_changed = false;
        if (!s.summary.exact_at(as_of)) {
            if (!rebuilt) return PassVerdict::Defer;
            edited = std::move(*rebuilt);
            if (!edited) edited = Summary();
            touched = summary_changed = true;
        }
        // Occurrences of deleted rules go, as a rebuild would not find them (a disabled rule's stay).
        const std::vector<std::int64_t> ids = (edited ? *edited : s.summary).rule_ids();
        for (std::int64_t id : ids) {
            if (cm->model->activity_rule(id)) continue;
            if (!edited) edited = s.summary;
            summary_changed |= edited->replace_rule(id, RuleOccurrences{});
        }
        if (lead_side_pass) {
            auto it = lead_holds.find(s.key);
            const std::uint64_t holds = it == lead_holds.end() ? absent_holds : it->second;
            for (std::size_t i = 0; i < lead_side.size(); i++) {
                const RuleOccurrences* entry = (edited ? *edited : s.summary).entry_of(lead_side[i]);
                const bool has = entry && !entry->empty();
                const bool now = (holds >> i) & 1;
                // Its rows may match now: read them (after the pass).
                if (now && !has) return PassVerdict::Defer;
                if (has && !now) {
                    if (!edited) edited = s.summary;
                    summary_changed |= edited->replace_rule(lead_side[i], RuleOccurrences{});
                }
            }
        } else if (!rematch.empty() && (lead_side.empty() || candidates.count(s.key) > 0)) {
            // (After a lead-side pass, only its candidates are rematched; a summary rebuilt from
            // raw rows already holds the new rules' occurrences.)
            if (!edited) edited = s.summary;
            auto it = fresh.find(s.key);
            for (std::int64_t id : rematch) {
                const RuleOccurrences* entry = it == fresh.end() ? nullptr : it->second.entry_of(id);
                summary_changed |= edited->replace_rule(id, entry ? *entry : RuleOccurrences{});
            }
        }
        touched |= summary_changed;
        if (!touched) return PassVerdict::Keep;
        // (A summary stored as it was, once pruned: the lead's results stand.)
        if (plan.summaries_only && !plan.recompute && !plan.refit && stored_summary(*cm->model, *edited, as_of) == s.summary)
            return PassVerdict::Keep;
        MicroPoints fit = s.fit;
        bool fit_dq = s.fit_disqualified;
        if (refit) {
            const FitScore f = fit_of(s);
            fit = f.fit;
            fit_dq = f.disqualified;
        }
        const Summary& summary = summary_changed ? *edited : s.summary;
        out = compute_new_results(*cm->model, s.key, &s, summary, fit, fit_dq, as_of, StageMode::Fresh);
        // An unchanged summary is stored already: only the results can differ.
        std::optional<Summary> stored_form;
        auto same = [&](const NewState& n) {
            if (!same_results(s, n)) return false;
            if (!summary_changed) return true;
            if (!stored_form) stored_form = stored_summary(*cm->model, summary, as_of);
            return s.summary == *stored_form;
        };
        if (same(out)) {
            const NewState then =
                compute_new_results(*cm->model, s.key, &s, summary, fit, fit_dq, s.scored_at, StageMode::Fresh);
            if (same(then)) return PassVerdict::Keep;
        }
        if (s.score != out.result.score) score_changes++;
        // (A results-only write leaves the stored summary as it is.)
        if (!summary_changed && !shards) return PassVerdict::WriteResults;
        out.summary = summary_changed ? std::move(*edited) : std::move(s.summary);
        return PassVerdict::WriteWhole;
    };

    // The SQL path (a distributed model's coordinator, and the rows the direct pass deferred):
    // a cursor batch at a time, written in batches.
    std::vector<NewState> changed, results_only;
    auto process = [&](std::vector<StoredState>& batch) {
        std::vector<std::string> inexact;
        for (const StoredState& s : batch)
            if (s.initialized && !s.summary.exact_at(as_of)) inexact.push_back(s.key);
        std::map<std::string, Summary> rebuilt;
        collect_activities(*cm, &inexact, rebuilt);
        for (StoredState& s : batch) {
            std::optional<Summary> from_rows;
            if (s.initialized && !s.summary.exact_at(as_of))
                if (auto it = rebuilt.find(s.key); it != rebuilt.end()) from_rows = std::move(it->second);
            NewState ns;
            const PassVerdict verdict = edit_row(s, ns, &from_rows);
            if (verdict == PassVerdict::WriteWhole) changed.push_back(std::move(ns));
            if (verdict == PassVerdict::WriteResults) results_only.push_back(std::move(ns));
            if (changed.size() >= 10000) {
                store.write(changed, as_of, true);
                changed.clear();
            }
            if (results_only.size() >= 200000) {
                store.write_results(results_only, as_of, as_of);
                results_only.clear();
            }
            check_for_interrupts();
        }
    };
    // The rows of keys (every row when null): in place through the table AM, then the deferred
    // ones through SQL.
    auto run_edit = [&](const std::vector<std::string>* keys) {
        if (shards) return store.read_each(keys, process);
        const std::vector<std::string> deferred = store.rewrite_each(
            keys, true, [&](StoredState& s, NewState& out) { return edit_row(s, out, nullptr); }, as_of);
        store.read_each(&deferred, process);
    };

    if (lead_side_pass) {
        // Every state row once; then the leads whose rows may match now: those deferred by the
        // pass (and those it deferred for a rebuild), and leads with no state row yet.
        const std::vector<std::string> deferred = store.rewrite_each(
            nullptr, true, [&](StoredState& st, NewState& out) { return edit_row(st, out, nullptr); }, as_of);
        lead_side_pass = false;
        candidates.insert(deferred.begin(), deferred.end());
        for (const auto& [key, holds] : lead_holds)
            if (holds && !have.count(key)) candidates.insert(key);
        const std::vector<std::string> keys(candidates.begin(), candidates.end());
        // (Many of them: one scan of the rules' activity types costs less than a lookup each.)
        constexpr double kKeyedShare = 0.2;
        const bool keyed = static_cast<double>(keys.size()) <= kKeyedShare * static_cast<double>(lead_holds.size());
        if (!keys.empty()) collect_rule_occurrences(*cm, rematch, fresh, nullptr, keyed ? &keys : nullptr);
        store.read_each(&deferred, process);
    } else if ((plan.recompute || plan.refit) && plan.types.empty() && rematch.empty()) {
        // A stage, range or fit edit checks every row's stored results first, not its summary.
        std::vector<std::string> full;
        auto check = [&](StoredState& s, NewState& out) {
            PassVerdict v = result_change(*cm, refit ? &fit_of : nullptr, as_of, s, out);
            if (v == PassVerdict::WriteResultsKeepScoredAt && out.result.score != s.score) score_changes++;
            return v;
        };
        if (shards) {
            // (Citus: one upsert path to the shards, through the summaries.)
            store.read_each(
                nullptr,
                [&](std::vector<StoredState>& batch) {
                    NewState unused;
                    for (StoredState& s : batch)
                        if (result_change(*cm, refit ? &fit_of : nullptr, as_of, s, unused) != PassVerdict::Keep)
                            full.push_back(s.key);
                },
                false);
        } else {
            full = store.rewrite_each(nullptr, false, check, as_of);
        }
        run_edit(&full);
    } else if (plan.recompute || plan.refit || (rematch.empty() && common_types(*cm, plan.types))) {
        if (!rematch.empty()) collect_rule_occurrences(*cm, rematch, fresh);
        run_edit(nullptr);
    } else if (!rematch.empty() && rule_types(*cm->model, rematch) == plan.types) {
        // An edit of activity rules alone concerns only the leads with rows of their types: the
        // rematch reads those rows anyway, and names the leads on the way.
        std::unordered_set<std::string> seen;
        collect_rule_occurrences(*cm, rematch, fresh, &seen);
        const std::vector<std::string> keys(seen.begin(), seen.end());
        run_edit(&keys);
    } else {
        // The rematched rules' occurrences, from the rows of their activity types only.
        if (!rematch.empty()) collect_rule_occurrences(*cm, rematch, fresh);
        const std::vector<std::string> keys = leads_with_types(*cm, plan.types);
        run_edit(&keys);
    }
    // Leads that had no state yet (no rows matched before): built from their raw rows.
    std::vector<std::string> missing;
    for (const auto& [k, v] : fresh)
        if (!have.count(k)) missing.push_back(k);
    rebuild_leads(cm, missing, as_of);
    store.write(changed, as_of, true);
    store.write_results(results_only, as_of, as_of);
    return score_changes;
}

}  // namespace leadscore::pg
