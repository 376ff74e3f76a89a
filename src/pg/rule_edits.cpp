// Rule edits that cost what they change. An edit is classified by comparing the old and new
// rule rows: a change of points, of a cap or an expiry that only tightens, of stages or of the
// model's range recomputes every lead from its stored summary; a fit change reads the leads
// (and related) tables; a change of what an activity rule matches collects that rule's
// occurrences again from the rows of its activity type only, for the leads that have them.
#include <algorithm>

#include "pg/args.hpp"
#include "pg/datum.hpp"
#include "pg/matching.hpp"
#include "pg/model_cache.hpp"
#include "pg/relations.hpp"
#include "pg/recompute.hpp"
#include "pg/rule_edits.hpp"
#include "pg/spi.hpp"
#include "pg/state_store.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

namespace leadscore::pg {

namespace {

using Row = std::map<std::string, std::optional<std::string>>;

// Every row of a transition table, each column in its text form.
std::vector<Row> read_rows(Tuplestorestate* store, TupleDesc desc) {
    std::vector<Row> rows;
    if (!store) return rows;
    scan_transition(store, desc, [&](Datum* values, bool* nulls) {
        Row row;
        for (int i = 0; i < desc->natts; i++) {
            Form_pg_attribute att = TupleDescAttr(desc, i);
            if (att->attisdropped) continue;
            std::optional<std::string> v;
            if (!nulls[i]) {
                char* s = nullptr;
                pg_guard([&] { s = key_to_cstring(values[i], att->atttypid); });
                v = s;
                pg_guard([&] { pfree(s); });
            }
            row.emplace(NameStr(att->attname), std::move(v));
        }
        rows.push_back(std::move(row));
    });
    return rows;
}

std::optional<std::string> field(const Row& r, const char* column) {
    auto it = r.find(column);
    return it == r.end() ? std::nullopt : it->second;
}

bool same(const Row& a, const Row& b, const char* column) { return field(a, column) == field(b, column); }

// An interval text as PostgreSQL prints it, to its parts; nullopt when NULL.
std::optional<Interval> interval_of(const std::optional<std::string>& text) {
    if (!text) return std::nullopt;
    Interval iv;
    pg_guard([&] {
        Datum d = DirectFunctionCall3(interval_in, CStringGetDatum(text->c_str()), ObjectIdGetDatum(InvalidOid),
                                      Int32GetDatum(-1));
        iv = to_core_interval(d);
    });
    return iv;
}

// Whether a new limit keeps at most what the old one kept: pruning by the old limit dropped
// nothing the new one needs (NULL is no limit).
bool interval_tightens(const std::optional<std::string>& before, const std::optional<std::string>& after) {
    if (before == after) return true;
    const auto b = interval_of(before), a = interval_of(after);
    if (!a) return false;
    if (!b) return true;
    return a->months <= b->months && a->days <= b->days && a->micros <= b->micros;
}

std::optional<long long> number_of(const std::optional<std::string>& text) {
    if (!text) return std::nullopt;
    return std::stoll(*text);
}

// An occurrence cap (once, max_count) that keeps at most what the old one kept.
bool cap_tightens(const Row& before, const Row& after) {
    auto cap = [](const Row& r) -> std::optional<long long> {
        std::optional<long long> c = number_of(field(r, "max_count"));
        if (field(r, "once") == std::optional<std::string>("t") && (!c || *c > 1)) c = 1;
        return c;
    };
    const auto b = cap(before), a = cap(after);
    if (!a) return !b;
    return !b || *a <= *b;
}

// What an UPDATE of one activity rule needs: its occurrences collected again, or only a
// recompute from stored summaries.
void plan_activity_rule_update(const Row& before, const Row& after, EditPlan& plan) {
    const std::int64_t id = std::stoll(*field(after, "id"));
    const bool enabled_before = field(before, "enabled") == std::optional<std::string>("t");
    const bool enabled_after = field(after, "enabled") == std::optional<std::string>("t");
    // Only leads with rows of the rule's type (before or after) can have its occurrences.
    plan.types.insert(*field(before, "activity_type"));
    plan.types.insert(*field(after, "activity_type"));
    // (Enabled or not, its stored occurrences are kept right: enabling it counts them again.)
    if (!enabled_before && enabled_after) plan.enabled.insert(id);
    const bool pattern = field(after, "min_count") || field(after, "cooldown") || field(before, "min_count") ||
                         field(before, "cooldown");
    const char* matching[] = {"activity_type", "attribute", "op", "value", "multiply_by", "min_count", "within",
                              "cooldown"};
    bool rematch = false;
    // A multiply_by rule's occurrences carry their points (points x value): new points, new values.
    if ((field(before, "multiply_by") || field(after, "multiply_by")) && !same(before, after, "points")) rematch = true;
    for (const char* c : matching) rematch = rematch || !same(before, after, c);
    // A quiet rule keeps only its latest occurrences; other rules more: adding or removing
    // quiet_for changes what the summary must hold.
    rematch = rematch || field(before, "quiet_for").has_value() != field(after, "quiet_for").has_value();
    // Pruning dropped what the old caps and expiry could never count again; a pattern rule's
    // settled counting depends on all of them.
    if (pattern) {
        const char* settled_by[] = {"once", "max_count", "expires_after", "half_life"};
        for (const char* c : settled_by) rematch = rematch || !same(before, after, c);
    } else {
        rematch = rematch || !cap_tightens(before, after) ||
                  !interval_tightens(field(before, "expires_after"), field(after, "expires_after"));
        // Without expiry and decay, past occurrences may be kept as a count (only_counts):
        // expiry or decay added needs their times again.
        if ((!field(before, "expires_after") && field(after, "expires_after")) ||
            (!field(before, "half_life") && field(after, "half_life")))
            rematch = true;
    }
    if (rematch) plan.rematch.insert(id);
}

}  // namespace

std::map<std::string, EditPlan> plan_rule_edit(const std::string& table, TriggerData* trig) {
    std::map<std::string, EditPlan> plans;
    TupleDesc desc = RelationGetDescr(trig->tg_relation);
    if (TRIGGER_FIRED_BY_TRUNCATE(trig->tg_event) || table == "list_entry") return plans;
    const std::vector<Row> old_rows = read_rows(trig->tg_oldtable, desc);
    const std::vector<Row> new_rows = read_rows(trig->tg_newtable, desc);
    if (table == "stage" || table == "model") {
        const char* column = table == "model" ? "name" : "model";
        for (const auto* rows : {&old_rows, &new_rows})
            for (const Row& r : *rows)
                if (auto m = field(r, column)) plans[*m].recompute = true;
        return plans;
    }
    if (table == "fit_rule") {
        for (const auto* rows : {&old_rows, &new_rows})
            for (const Row& r : *rows)
                if (auto m = field(r, "model")) plans[*m].refit = true;
        return plans;
    }
    if (table == "fit_condition" || table == "activity_condition") {
        std::vector<std::optional<std::string>> ids;
        for (const auto* rows : {&old_rows, &new_rows})
            for (const Row& r : *rows) ids.push_back(field(r, "rule_id"));
        const bool fit = table == "fit_condition";
        const std::uint64_t n =
            spi_exec(std::string("SELECT model, id, ") + (fit ? "NULL::text" : "activity_type") + " FROM leadscore." +
                         (fit ? "fit_rule" : "activity_rule") + " WHERE id = ANY($1::bigint[])" + (fit ? " AND enabled" : ""),
                     {{TEXTOID, text_array_literal(ids)}}, true);
        for (std::uint64_t i = 0; i < n; i++) {
            EditPlan& p = plans[*spi_text(i, 1)];
            p.summaries_only = !fit;
            if (fit) {
                p.refit = true;
            } else {
                p.rematch.insert(std::stoll(*spi_text(i, 2)));
                p.types.insert(*spi_text(i, 3));
            }
        }
        return plans;
    }
    if (table == "relation") {
        for (const auto* rows : {&old_rows, &new_rows})
            for (const Row& r : *rows)
                if (auto m = field(r, "model")) plans[*m].full = true;
        return plans;
    }
    // activity_rule: pair old and new rows by id.
    std::map<std::string, const Row*> before;
    for (const Row& r : old_rows) before[*field(r, "id")] = &r;
    // New rules alone change only the summaries of the leads with rows they match.
    if (old_rows.empty())
        for (const Row& r : new_rows) plans[*field(r, "model")].summaries_only = true;
    for (const Row& r : new_rows) {
        const std::string model = *field(r, "model");
        auto it = before.find(*field(r, "id"));
        if (it == before.end() || !same(*it->second, r, "model")) {
            // A new rule (or one moved from another model): its occurrences, from its rows (a
            // disabled one's too, kept for when it is enabled).
            plans[model].rematch.insert(std::stoll(*field(r, "id")));
            plans[model].types.insert(*field(r, "activity_type"));
            if (it != before.end()) plans[*field(*it->second, "model")].types.insert(*field(*it->second, "activity_type"));
        } else {
            plan_activity_rule_update(*it->second, r, plans[model]);
        }
        if (it != before.end()) before.erase(it);
    }
    // Deleted rules: their stored occurrences are no longer counted.
    for (const auto& [id, r] : before) plans[*field(*r, "model")].types.insert(*field(*r, "activity_type"));
    return plans;
}

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

// What a stage, range or fit edit changes in one stored row, from its results alone (refit:
// fits holds the leads' new fit facts): a lead keeps its engagement sums as of its scored_at,
// so its new result follows from them (written, scored_at kept) — unless a stored fit
// disqualification hides whether its activities disqualify too: those leads are deferred, to
// be recomputed from their summaries.
PassVerdict result_change(const CompiledModel& cm, bool refit, const std::map<std::string, FitFacts>& fits,
                          Timestamp as_of, const StoredState& s, NewState& out) {
    if (!s.initialized) return PassVerdict::Keep;
    FitFacts f;
    f.fit = s.fit;
    f.disqualified = s.fit_disqualified;
    if (refit) {
        auto it = fits.find(s.key);
        f = it == fits.end() ? FitFacts() : it->second;
    }
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

}  // namespace

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
    std::map<std::string, FitFacts> fits;
    if (refit) collect_fits(*cm, nullptr, fits);
    std::int64_t score_changes = 0;
    std::map<std::string, Summary> fresh;
    std::unordered_set<std::string> have;

    // One stored row's new state under the edit. rebuilt: the lead's summary read from its raw
    // rows, for a stored one pruned past as_of (by a refresh as of a later time), which cannot
    // say what counts now; without it such a row is deferred.
    auto edit_row = [&](StoredState& s, NewState& out, std::optional<Summary>* rebuilt) -> PassVerdict {
        if (!fresh.empty()) have.insert(s.key);
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
        if (!rematch.empty()) {
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
            FitFacts f;
            if (auto it = fits.find(s.key); it != fits.end()) f = it->second;
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

    if ((plan.recompute || plan.refit) && plan.types.empty() && rematch.empty()) {
        // A stage, range or fit edit checks every row's stored results first, not its summary.
        std::vector<std::string> full;
        auto check = [&](StoredState& s, NewState& out) {
            PassVerdict v = result_change(*cm, refit, fits, as_of, s, out);
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
                        if (result_change(*cm, refit, fits, as_of, s, unused) != PassVerdict::Keep) full.push_back(s.key);
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
