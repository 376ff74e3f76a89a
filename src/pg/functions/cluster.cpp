// SQL API for Citus clusters (docs/scale-out.md): the trigger that drops a node's cached
// models when its copy of their rules changes, the per-shard refresh that the coordinator's
// refresh() fans out to every state shard at once, and the notifications of stage changes
// scored on the shards.
#include <cstring>
#include <map>
#include <memory>

#include "pg/args.hpp"
#include "pg/matching.hpp"
#include "pg/model_cache.hpp"
#include "pg/recompute.hpp"
#include "pg/rule_edits.hpp"
#include "pg/spi.hpp"
#include "pg/state_store.hpp"

extern "C" {
#include "access/htup_details.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

using namespace leadscore;
using namespace leadscore::pg;

LEADSCORE_FUNCTION(leadscore_cluster_model_changed) {
    TriggerData* trig = trigger_arg(fcinfo, "leadscore.cluster_model_changed()");
    // Every session of this node drops its cached models when the copy's change commits.
    pg_guard([&] { CacheInvalidateRelcache(trig->tg_relation); });
    invalidate_cache();
    return PointerGetDatum(nullptr);
}

// BEFORE UPDATE of a distributed state table's row, fired on its shard only by refresh()'s
// "SET scored_at = t, next_change = '-infinity'" (the trigger's WHEN): the row's new results
// as of t, computed on this node from its summary (rebuilt from the co-located activities
// when it was pruned past t); its stage change is recorded here.
LEADSCORE_FUNCTION(leadscore_state_refreshed) {
    TriggerData* trig = trigger_arg(fcinfo, "leadscore.state_refreshed()");
    note_state_writer();
    if (!TRIGGER_FIRED_BEFORE(trig->tg_event) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event) ||
        !TRIGGER_FIRED_BY_UPDATE(trig->tg_event) || trig->tg_trigger->tgnargs < 1)
        raise(sqlstate::kInvalidParameterValue,
              "leadscore.state_refreshed() must be a BEFORE UPDATE row trigger with the model as argument");
    const std::string model = trig->tg_trigger->tgargs[0];
    std::shared_ptr<CompiledModel> cm = get_model_for_trigger(model, RelationGetRelid(trig->tg_relation));
    SpiConnection spi;
    StateStore store(*cm);
    TupleDesc desc = RelationGetDescr(trig->tg_relation);
    const std::vector<std::int16_t>& attnum = cm->state_attnums;
    pg_guard([&] { resolve_state_attnums(trig->tg_relation, cm->tracking->key_type, cm->state_attnums); });
    // C++ objects out here: an ERROR inside pg_guard longjmps past the lambda's frame.
    const int natts = desc->natts;
    std::unique_ptr<Datum[]> values(new Datum[natts]), new_values(new Datum[natts]);
    std::unique_ptr<bool[]> nulls(new bool[natts]), new_nulls(new bool[natts]);
    StateDatums row;
    StateFields fields;
    Timestamp as_of = 0;
    pg_guard([&] {
        heap_deform_tuple(trig->tg_newtuple, desc, values.get(), nulls.get());
    });
    for (int c = 0; c < kStateColumnCount; c++) {
        row.values[c] = values[attnum[c] - 1];
        row.nulls[c] = nulls[attnum[c] - 1];
    }
    pg_guard([&] {
        as_of = DatumGetTimestampTz(row.values[kStateScoredAt]);
        read_state_fields(row, StateFieldsNeeded::All, fields);
    });
    StoredState stored;
    parse_state_fields(row, fields, StateFieldsNeeded::All, stored);
    HeapTuple result = trig->tg_newtuple;
    if (!stored.initialized) return PointerGetDatum(result);
    std::map<std::string, Summary> rebuilt;
    if (!stored.summary.exact_at(as_of)) {
        const std::vector<std::string> key = {stored.key};
        collect_activities(*cm, &key, rebuilt);
    }
    NewState ns = refreshed_state(*cm->model, stored, rebuilt, as_of);
    const std::string bytes = stored_summary(*cm->model, ns.summary, as_of).serialize();
    pg_guard([&] {
        encode_results(ns, bytes, as_of, row);
        memcpy(new_values.get(), values.get(), sizeof(Datum) * natts);
        memcpy(new_nulls.get(), nulls.get(), sizeof(bool) * natts);
        for (int c = kFirstResultColumn; c < kStateColumnCount; c++) {
            new_values[attnum[c] - 1] = row.values[c];
            new_nulls[attnum[c] - 1] = row.nulls[c];
        }
        result = heap_form_tuple(desc, new_values.get(), new_nulls.get());
    });
    if (ns.stage_changed)
        store.record_stage_changes({StageChange{ns.key, ns.previous_stage, ns.result.stage, ns.result.score}}, as_of,
                                   true);
    return PointerGetDatum(result);
}

// The stage changes scored on the shards of distributed models, notified from the node this
// runs on (the coordinator: where listeners connect), in this transaction.
LEADSCORE_FUNCTION(leadscore_notify_stage_changes) {
    const std::vector<std::string> models = models_arg(fcinfo, 0);
    std::int64_t sent = 0;
    for (const std::string& m : models) {
        std::shared_ptr<CompiledModel> cm = get_model(m, true);
        SpiConnection spi;
        sent += StateStore(*cm).notify_pending_changes();
    }
    PG_RETURN_INT64(sent);
}
