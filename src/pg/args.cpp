// Argument readers, trigger checks and transition-table scans for the entry points.
#include <memory>
#include <vector>

#include "pg/args.hpp"
#include "pg/datum.hpp"
#include "pg/model_cache.hpp"
#include "pg/rule_edits.hpp"

extern "C" {
#include "access/htup_details.h"
#include "executor/tuptable.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

namespace leadscore::pg {

std::string text_arg(FunctionCallInfo fcinfo, int n, const char* what) {
    if (PG_ARGISNULL(n)) raise(sqlstate::kInvalidParameterValue, std::string(what) + " must not be NULL");
    return text_to_string(PG_GETARG_DATUM(n));
}

std::string name_arg(FunctionCallInfo fcinfo, int n) { return std::string(NameStr(*PG_GETARG_NAME(n))); }

Timestamp as_of_arg(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return transaction_now();
    return static_cast<Timestamp>(PG_GETARG_TIMESTAMPTZ(n));
}

std::vector<std::string> models_arg(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return tracked_models();
    return {text_to_string(PG_GETARG_DATUM(n))};
}

std::string lead_key_arg(FunctionCallInfo fcinfo, int n, Oid key_type) {
    const Oid arg_type = get_fn_expr_argtype(fcinfo->flinfo, n);
    std::string out;
    pg_guard([&] {
        char* given = key_to_cstring(PG_GETARG_DATUM(n), arg_type);
        Oid input_fn, ioparam;
        getTypeInputInfo(key_type, &input_fn, &ioparam);
        Datum k = OidInputFunctionCall(input_fn, given, ioparam, -1);
        out = key_to_cstring(k, key_type);
    });
    return out;
}

TriggerData* trigger_arg(FunctionCallInfo fcinfo, const char* name) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        raise(sqlstate::kObjectNotInPrerequisiteState, std::string(name) + " must be called as a trigger");
    return reinterpret_cast<TriggerData*>(fcinfo->context);
}

TriggerData* live_trigger_arg(FunctionCallInfo fcinfo, const char* name) {
    TriggerData* trig = trigger_arg(fcinfo, name);
    if (!TRIGGER_FIRED_AFTER(trig->tg_event))
        raise(sqlstate::kObjectNotInPrerequisiteState, std::string(name) + " must be an AFTER trigger");
    if (trig->tg_trigger->tgnargs < 1)
        raise(sqlstate::kObjectNotInPrerequisiteState, std::string(name) + " needs the model name as argument");
    note_state_writer();
    return trig;
}

void scan_trigger_rows(TriggerData* trig, bool old_rows, TupleDesc desc, void (*on_row)(void*, Datum*, bool*),
                       void* ctx) {
    if (TRIGGER_FIRED_FOR_STATEMENT(trig->tg_event)) {
        scan_transition_rows(old_rows ? trig->tg_oldtable : trig->tg_newtable, desc, on_row, ctx);
        return;
    }
    // A row trigger: INSERT and DELETE pass their row as tg_trigtuple, UPDATE old and new.
    const bool update = TRIGGER_FIRED_BY_UPDATE(trig->tg_event);
    HeapTuple tuple = nullptr;
    if (update)
        tuple = old_rows ? trig->tg_trigtuple : trig->tg_newtuple;
    else if (TRIGGER_FIRED_BY_INSERT(trig->tg_event) != old_rows)
        tuple = trig->tg_trigtuple;
    if (!tuple) return;
    std::vector<Datum> values(static_cast<std::size_t>(desc->natts));
    std::unique_ptr<bool[]> nulls(new bool[static_cast<std::size_t>(desc->natts)]);
    pg_guard([&] { heap_deform_tuple(tuple, desc, values.data(), nulls.get()); });
    on_row(ctx, values.data(), nulls.get());
}

void scan_transition_rows(Tuplestorestate* store, TupleDesc desc, void (*on_row)(void*, Datum*, bool*), void* ctx) {
    if (!store) return;
    TupleTableSlot* slot = nullptr;
    pg_guard([&] {
        slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
        tuplestore_rescan(store);
    });
    std::uint64_t n = 0;
    while (true) {
        bool got = false;
        pg_guard([&] {
            got = tuplestore_gettupleslot(store, true, false, slot);
            if (got) slot_getallattrs(slot);
        });
        if (!got) break;
        on_row(ctx, slot->tts_values, slot->tts_isnull);
        if (++n % 4096 == 0) check_for_interrupts();
    }
    pg_guard([&] { ExecDropSingleTupleTableSlot(slot); });
}

}  // namespace leadscore::pg
