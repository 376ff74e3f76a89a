// The live triggers that track() installs on the CRM's tables: activity_changed() and
// lead_changed() keep stored scores current in the transaction that changed the data.
#include <algorithm>
#include <map>
#include <set>
#include <unordered_set>

#include "pg/args.hpp"
#include "pg/matching.hpp"
#include "pg/model_cache.hpp"
#include "pg/recompute.hpp"
#include "pg/relations.hpp"
#include "pg/settings.hpp"
#include "pg/spi.hpp"
#include "pg/state_store.hpp"

extern "C" {
#include "access/htup_details.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

namespace leadscore::pg {

namespace {

Datum trigger_result() { return PointerGetDatum(nullptr); }

// Leads rebuilt from raw rows: those rows already hold the whole statement, so the
// statement's later occurrences of these leads must not be applied again.
using KeySet = std::unordered_set<std::string>;

// Applies per-lead deltas under row locks; leads without usable state are rebuilt from raw rows.
void apply_activity_deltas(std::shared_ptr<CompiledModel> cm, DeltaMap& deltas, KeySet& rebuilt) {
    if (deltas.empty()) return;
    deltas.group();
    StateStore store(*cm);
    const Timestamp as_of = transaction_now();
    std::vector<StageChange> stage_changes;
    const std::vector<std::string> keys = store.apply_deltas_directly(deltas, as_of, stage_changes);
    if (keys.empty() && stage_changes.empty()) return;
    SpiConnection spi;
    store.record_stage_changes(stage_changes, as_of, true);
    if (keys.empty()) return;
    // Leads without usable state meet a concurrent insert or delete of the lead row here; leads
    // with state were updated in place, where row versions settle every conflict.
    store.lock_keys(keys);
    // New leads, and summaries that must be rebuilt, take the SQL path.
    std::vector<std::string> creating;
    for (const std::string& k : keys)
        if (!deltas.added(deltas.find(k)).empty()) creating.push_back(k);
    store.create_placeholders(creating, as_of);
    std::vector<StoredState> rows = store.lock_and_read(&keys);
    // A placeholder made while its lead was being deleted: check again with a fresh snapshot.
    std::vector<std::string> fresh_keys;
    for (const StoredState& s : rows)
        if (!s.initialized) fresh_keys.push_back(s.key);
    if (!fresh_keys.empty() && OidIsValid(cm->tracking->leads)) {
        store.remove_absent_leads(&fresh_keys);
        rows = store.lock_and_read(&keys);
    }
    std::vector<std::string> rebuild, need_fit;
    std::set<std::string> rebuilding;
    for (StoredState& s : rows) {
        if (!s.initialized) {
            rebuild.push_back(s.key);
            need_fit.push_back(s.key);
            continue;
        }
        const std::uint32_t lead = deltas.find(s.key);
        // Pruned by a later transaction, or without a deleted occurrence: rebuilt, not trusted.
        if (!apply_deltas(s.summary, deltas.added(lead), deltas.removed(lead), as_of)) rebuild.push_back(s.key);
    }
    rebuilding.insert(rebuild.begin(), rebuild.end());
    rebuilt.insert(rebuild.begin(), rebuild.end());
    std::map<std::string, Summary> fresh;
    collect_activities(*cm, &rebuild, fresh);
    std::map<std::string, FitFacts> fits;
    collect_fits(*cm, &need_fit, fits);

    std::vector<NewState> out;
    out.reserve(rows.size());
    for (StoredState& s : rows) {
        Summary summary;
        if (rebuilding.count(s.key)) {
            if (auto it = fresh.find(s.key); it != fresh.end()) summary = std::move(it->second);
        } else {
            summary = std::move(s.summary);
        }
        MicroPoints fit = s.fit;
        bool fit_disqualified = s.fit_disqualified;
        if (!s.initialized) {
            FitFacts f;
            if (auto it = fits.find(s.key); it != fits.end()) f = it->second;
            fit = f.fit;
            fit_disqualified = f.disqualified;
        }
        out.push_back(compute_new_state(*cm->model, s.key, &s, std::move(summary), fit, fit_disqualified, as_of,
                                        StageMode::Fresh));
    }
    store.write(out, as_of, true);
}

}  // namespace

}  // namespace leadscore::pg

using namespace leadscore;
using namespace leadscore::pg;

LEADSCORE_FUNCTION(leadscore_activity_changed) {
    TriggerData* trig = live_trigger_arg(fcinfo, "leadscore.activity_changed()");
    const InvokerTrigger invoker(fcinfo);
    const std::string model = trig->tg_trigger->tgargs[0];
    if (TRIGGER_FIRED_BY_TRUNCATE(trig->tg_event)) {
        std::shared_ptr<CompiledModel> cm = get_model_for_trigger(model, RelationGetRelid(trig->tg_relation));
        // A Citus shard (one that a shard move gave the table's truncate trigger): the
        // distributed table's own trigger rescores every shard.
        if (!cm->tracking->on_shard) rescore_model(cm, transaction_now(), true, nullptr);
        return trigger_result();
    }
    // Lock first, then load the rules: a rule change committed meanwhile is seen.
    {
        const std::shared_ptr<CompiledModel> locking = get_model_for_trigger(model, RelationGetRelid(trig->tg_relation));
        StateStore store(*locking);
        if (TRIGGER_FIRED_FOR_ROW(trig->tg_event)) store.lock_replica_writer();
        store.lock_for_write();
    }
    for (int attempt = 0;; attempt++) {
        const std::uint64_t generation = cache_generation();
        std::shared_ptr<CompiledModel> cm = get_model_for_trigger(model, RelationGetRelid(trig->tg_relation));
        DeltaMap deltas;
        TupleDesc desc = RelationGetDescr(trig->tg_relation);
        RowLayout layout = activity_layout(*cm, desc, *cm->activity_matcher);
        ActivityMatch match;
        bool flushed = false;
        KeySet rebuilt;
        // Activity rules that read the lead: lock the leads of the statement's rows such rules
        // could match, then read their rows (a concurrent change of a lead or related row then
        // rebuilds after us, or we see it).
        LeadFactsMap facts;
        LeadConditions lead;
        if (cm->activity_reads_lead) {
            std::set<std::string> keys;
            const bool update = TRIGGER_FIRED_BY_UPDATE(trig->tg_event);
            std::string k, type;
            for (bool adding : {false, true}) {
                if (!update && adding != TRIGGER_FIRED_BY_INSERT(trig->tg_event)) continue;
                scan_trigger(trig, !adding, desc, [&](Datum* values, bool* nulls) {
                    if (nulls[layout.lead - 1] || nulls[layout.type - 1]) return;
                    pg_guard([&] { layout.type_text.write(values[layout.type - 1], type); });
                    if (!cm->type_reads_lead(type)) return;
                    pg_guard([&] { layout.key_text.write(values[layout.lead - 1], k); });
                    keys.insert(k);
                });
            }
            const std::vector<std::string> key_list(keys.begin(), keys.end());
            if (!key_list.empty()) {
                SpiConnection spi;
                StateStore(*cm).lock_keys(key_list);
                collect_fits(*cm, &key_list, facts, LeadRead::ActivityConditions);
            }
            lead = lead_conditions_from(*cm, facts);
        }
        auto collect = [&](bool adding) {
            // Sized for the statement's rows (at most one lead each, at most 128k buckets): little
            // rehashing while the rows are read.
            Tuplestorestate* ts = adding ? trig->tg_newtable : trig->tg_oldtable;
            if (ts) deltas.reserve(static_cast<std::size_t>(std::min<std::int64_t>(tuplestore_tuple_count(ts), 1 << 17)));
            scan_trigger(trig, !adding, desc, [&](Datum* values, bool* nulls) {
                if (!match_activity_row(*cm, *cm->activity_matcher, layout, values, nulls, match, &lead)) return;
                if (match.rules.empty() || (flushed && rebuilt.count(match.key))) return;
                const std::uint32_t index = deltas.lead(match.key);
                for (std::size_t i = 0; i < match.rules.size(); i++)
                    deltas.add(index, Occurrence{match.rules[i], match.time, match.values[i]}, adding);
                // Memory stays bounded by the statement's leads, not its rows: once the
                // occurrences outnumber 16 per lead (and the setting), apply and go on.
                if (deltas.occurrence_count() >=
                    std::max(static_cast<std::size_t>(batch_occurrences), 16 * deltas.size())) {
                    apply_activity_deltas(cm, deltas, rebuilt);
                    deltas.clear();
                    flushed = true;
                }
            });
        };
        if (TRIGGER_FIRED_BY_DELETE(trig->tg_event) || TRIGGER_FIRED_BY_UPDATE(trig->tg_event)) collect(false);
        if (TRIGGER_FIRED_BY_INSERT(trig->tg_event) || TRIGGER_FIRED_BY_UPDATE(trig->tg_event)) collect(true);
        if (deltas.empty()) return trigger_result();
        StateStore(*cm).lock_for_write();
        // Rules committed by another session before our lock: match again with them (not
        // once some deltas are applied, which holding our lock made safe to do).
        if (cache_generation() != generation && attempt < 3 && !flushed) continue;
        apply_activity_deltas(cm, deltas, rebuilt);
        return trigger_result();
    }
}

namespace {

// Lead keys whose fit or existence may have changed in this statement.
std::vector<std::string> changed_lead_keys(const CompiledModel& cm, TriggerData* trig) {
    TupleDesc desc = RelationGetDescr(trig->tg_relation);
    RowLayout layout = lead_table_layout(cm, desc);
    std::set<std::string> keys;
    auto key_of = [&](Datum* values, bool* nulls) -> std::optional<std::string> {
        if (nulls[layout.lead - 1]) return std::nullopt;
        char* c = nullptr;
        pg_guard([&] { c = key_to_cstring(values[layout.lead - 1], layout.key_type); });
        std::string k(c);
        pg_guard([&] { pfree(c); });
        return k;
    };
    if (TRIGGER_FIRED_BY_UPDATE(trig->tg_event)) {
        // Old and new rows come in the same order; a row whose key and scored columns are
        // unchanged needs no work.
        std::vector<std::vector<Datum>> old_values;
        std::vector<std::vector<char>> old_nulls;
        std::vector<int> attnos = {layout.lead};
        attnos.insert(attnos.end(), layout.columns.begin(), layout.columns.end());
        scan_trigger(trig, true, desc, [&](Datum* values, bool* nulls) {
            std::vector<Datum> v;
            std::vector<char> n;
            pg_guard([&] {
                for (int a : attnos) {
                    Form_pg_attribute att = TupleDescAttr(desc, a - 1);
                    n.push_back(nulls[a - 1]);
                    v.push_back(nulls[a - 1] ? (Datum)0 : datumCopy(values[a - 1], att->attbyval, att->attlen));
                }
            });
            old_values.push_back(std::move(v));
            old_nulls.push_back(std::move(n));
            if (auto k = key_of(values, nulls)) keys.insert(*k);
        });
        std::size_t row = 0;
        std::set<std::string> changed;
        scan_trigger(trig, false, desc, [&](Datum* values, bool* nulls) {
            bool same = row < old_values.size();
            if (same) {
                pg_guard([&] {
                    for (std::size_t i = 0; i < attnos.size() && same; i++) {
                        const int a = attnos[i];
                        Form_pg_attribute att = TupleDescAttr(desc, a - 1);
                        if (static_cast<bool>(old_nulls[row][i]) != nulls[a - 1]) {
                            same = false;
                        } else if (!nulls[a - 1] &&
                                   !datum_image_eq(old_values[row][i], values[a - 1], att->attbyval, att->attlen)) {
                            same = false;
                        }
                    }
                });
            }
            if (!same) {
                if (row < old_values.size() && !old_nulls[row][0]) {
                    char* c = nullptr;
                    pg_guard([&] { c = key_to_cstring(old_values[row][0], layout.key_type); });
                    changed.insert(c);
                }
                if (auto k = key_of(values, nulls)) changed.insert(*k);
            }
            row++;
        });
        if (row != old_values.size()) return std::vector<std::string>(keys.begin(), keys.end());
        return std::vector<std::string>(changed.begin(), changed.end());
    }
    scan_trigger(trig, !TRIGGER_FIRED_BY_INSERT(trig->tg_event), desc, [&](Datum* values, bool* nulls) {
        if (auto k = key_of(values, nulls)) keys.insert(*k);
    });
    return std::vector<std::string>(keys.begin(), keys.end());
}

// The related rows the statement's leads refer to, before and after: a concurrent change of
// one of them waits for us, or we wait and then read it committed (StateStore::lock_related_keys).
void lock_related_rows(CompiledModel& cm, TriggerData* trig) {
    if (cm.relations.empty()) return;
    TupleDesc desc = RelationGetDescr(trig->tg_relation);
    StateStore store(cm);
    for (const RelationInfo& rel : cm.relations) {
        const int att = find_attribute(desc, rel.lead_column);
        if (att == 0) continue;
        const TextOutput text(TupleDescAttr(desc, att - 1)->atttypid);
        std::set<std::string> refs;
        std::string ref;
        for (bool old_rows : {true, false}) {
            if (old_rows && TRIGGER_FIRED_BY_INSERT(trig->tg_event)) continue;
            if (!old_rows && TRIGGER_FIRED_BY_DELETE(trig->tg_event)) continue;
            scan_trigger(trig, old_rows, desc, [&](Datum* values, bool* nulls) {
                if (nulls[att - 1]) return;
                pg_guard([&] { text.write(values[att - 1], ref); });
                refs.insert(ref);
            });
        }
        const std::vector<std::string> list(refs.begin(), refs.end());
        if (!list.empty()) store.lock_related_keys(rel.name, &list);
    }
}

}  // namespace

LEADSCORE_FUNCTION(leadscore_lead_changed) {
    TriggerData* trig = live_trigger_arg(fcinfo, "leadscore.lead_changed()");
    const InvokerTrigger invoker(fcinfo);
    const std::string model = trig->tg_trigger->tgargs[0];
    if (TRIGGER_FIRED_BY_TRUNCATE(trig->tg_event)) {
        std::shared_ptr<CompiledModel> cm = get_model_for_trigger(model, RelationGetRelid(trig->tg_relation));
        if (cm->tracking->on_shard) return trigger_result();
        SpiConnection spi;
        StateStore store(*cm);
        store.lock_for_write();
        store.remove_absent_leads(nullptr);
        return trigger_result();
    }
    {
        const std::shared_ptr<CompiledModel> locking = get_model_for_trigger(model, RelationGetRelid(trig->tg_relation));
        StateStore store(*locking);
        if (TRIGGER_FIRED_FOR_ROW(trig->tg_event)) store.lock_replica_writer();
        store.lock_for_write();
    }
    for (int attempt = 0;; attempt++) {
        const std::uint64_t generation = cache_generation();
        std::shared_ptr<CompiledModel> cm = get_model_for_trigger(model, RelationGetRelid(trig->tg_relation));
        std::vector<std::string> keys = changed_lead_keys(*cm, trig);
        if (keys.empty()) return trigger_result();
        StateStore(*cm).lock_for_write();
        if (cache_generation() != generation && attempt < 3) continue;
        lock_related_rows(*cm, trig);
        resync_leads(cm, keys);
        return trigger_result();
    }
}
